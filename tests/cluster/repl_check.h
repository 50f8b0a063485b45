/* repl_check.h - what the replicated-shard tests (replication.c, workload_repl.c) share: the
 * values writers produce and how each outcome is logged, and the checker that reads a
 * replicated stream back against that log.
 *
 * Values are "v" + 8 decimal digits, unique over a run (the index in the outcome log). An
 * outcome is RC_OK (acknowledged: must be stored exactly once), RC_FAILED (refused: the
 * broker was not the leader or had too few in sync; stored at most once) or RC_UNKNOWN (a
 * timeout, a lost connection, never reported: stored at most once).
 */
#ifndef SL_CLUSTER_REPL_CHECK_H
#define SL_CLUSTER_REPL_CHECK_H

#include "client/sluice.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

enum { RC_NONE = 0, RC_OK, RC_FAILED, RC_UNKNOWN };

#define RC_VALUE_LEN  9u        /* "v%08u" */
#define RC_VALUES_MAX 99999999u /* what 8 digits hold */
#define RC_SHARDS_MAX 16u

/* The outcome a delivery callback's error means (RC_OK, RC_FAILED or RC_UNKNOWN). */
int rc_outcome(int err);

/* Writes value v ("v%08u", not NUL-terminated in the record) into buf (>= 16 bytes); returns
 * RC_VALUE_LEN. */
size_t rc_value_format(char *buf, uint32_t v);
/* The value `value` (len bytes) holds, or -1 when it is not one rc_value_format wrote. */
int64_t rc_value_parse(const uint8_t *value, uint32_t len);

/* Where one shard's log is on one broker, as that broker describes it (its own copy). */
struct rc_shard_end {
    uint64_t first_seq;
    uint64_t next_seq;
    uint64_t bytes;
};

/* Describes `stream` on the broker at `addr` alone (not a bootstrap list): ends[s] for each
 * shard s < *n_shards (at most max). Returns 0, or -1 with why[] saying what failed. */
int rc_shard_ends(const char *addr, const char *stream, struct rc_shard_end *ends, uint32_t max,
                  uint32_t *n_shards, char *why, size_t whylen);

/* What one read of the whole stream found. */
struct rc_result {
    uint64_t records;
    uint32_t values, ok, lost, failed, failed_stored, unknown, unknown_stored;
};

/* Reads every shard of `stream` through `c` (a bootstrap client: each shard from its leader)
 * from its first record to ends[s].next_seq, within timeout_ms, and checks against the log
 * outcome[0..n_values): every record a value of the log, no value twice, sequences strictly
 * increasing within a shard, every RC_OK value present. Fills *res (the counts), returns 0,
 * or -1 with why[] naming the first violation (value, shard, sequence). */
int rc_read_check(sluice_client *c, const char *stream, const struct rc_shard_end *ends,
                  uint32_t n_shards, const uint8_t *outcome, uint32_t n_values, uint32_t timeout_ms,
                  struct rc_result *res, char *why, size_t whylen);

/* Where each acknowledged value was said to be stored (the delivery's shard and sequence),
 * for the report of a missing one; set before rc_read_check, NULL for none. */
struct rc_acked_at {
    const uint8_t *shard;
    const uint32_t *seq;
};
void rc_set_acked_at(const struct rc_acked_at *at);

/* The outcome table the producers' delivery callback fills (rc_on_delivery: ctx is the value
 * number, the outcome written under `mu`); both borrowed for the process's life. */
void rc_set_outcomes(uint8_t *outcome, pthread_mutex_t *mu);
void rc_on_delivery(void *ctx, int err, uint32_t shard, uint64_t seq);

#endif
