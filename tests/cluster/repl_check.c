/* repl_check.c - the values, outcomes and read-back check of the replicated-shard tests (see
 * repl_check.h). The reader keeps one byte per value written (bounded by the run's values,
 * at most RC_VALUES_MAX) and reads in pages of RC_POLL_MAX records.
 */
#include "repl_check.h"

#include "tests/integration/harness.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RC_POLL_MAX     256u
#define RC_POLL_WAIT_MS 50u /* short: a shard read to its end must not hold up the others */

int rc_outcome(int err)
{
    /* refused before anything was stored: the broker is not the leader, or has too few in
     * sync (after the client's own retries); anything else (a lost connection, a timeout)
     * may have been stored */
    return err == SLUICE_OK                                                  ? RC_OK
           : err == SLUICE_ENOT_LEADER || err == SLUICE_ENOT_ENOUGH_REPLICAS ? RC_FAILED
                                                                             : RC_UNKNOWN;
}

size_t rc_value_format(char *buf, uint32_t v)
{
    snprintf(buf, 16, "v%08" PRIu32, v % (RC_VALUES_MAX + 1u));
    return RC_VALUE_LEN;
}

int64_t rc_value_parse(const uint8_t *value, uint32_t len)
{
    if (len != RC_VALUE_LEN || value[0] != 'v') {
        return -1;
    }
    uint32_t v = 0;
    for (uint32_t k = 1; k < RC_VALUE_LEN; k++) {
        if (value[k] < '0' || value[k] > '9') {
            return -1;
        }
        v = v * 10u + (uint32_t)(value[k] - '0');
    }
    return v;
}

int rc_shard_ends(const char *addr, const char *stream, struct rc_shard_end *ends, uint32_t max,
                  uint32_t *n_shards, char *why, size_t whylen)
{
    struct sluice_client_opts o = {
        .connect_timeout_ms = 1000, .request_timeout_ms = 3000, .client_id = "repl-check"};
    sluice_client *c = NULL;
    int rc = sluice_client_new(addr, &o, &c);
    if (rc != SLUICE_OK) {
        snprintf(why, whylen, "connect %s: %s (%s)", addr, sluice_strerror(rc),
                 sluice_last_error());
        return -1;
    }
    struct sluice_stream_info *si = NULL;
    rc = sluice_stream_describe(c, stream, &si);
    int ret = -1;
    if (rc != SLUICE_OK) {
        snprintf(why, whylen, "describe %s on %s: %s (%s)", stream, addr, sluice_strerror(rc),
                 sluice_last_error());
    } else if (si->shards_len > max) {
        snprintf(why, whylen, "describe %s on %s: %" PRIu32 " shards, at most %" PRIu32 " expected",
                 stream, addr, si->shards_len, max);
    } else {
        for (uint32_t k = 0; k < si->shards_len; k++) {
            ends[k] = (struct rc_shard_end){.first_seq = si->shards[k].first_seq,
                                            .next_seq = si->shards[k].next_seq,
                                            .bytes = si->shards[k].bytes};
        }
        *n_shards = si->shards_len;
        ret = 0;
    }
    sluice_stream_info_free(si);
    sluice_client_free(c);
    return ret;
}

static struct rc_acked_at acked_at; /* (the test's thread only) */
static uint8_t *outcomes;
static pthread_mutex_t *outcomes_mu;

void rc_set_outcomes(uint8_t *outcome, pthread_mutex_t *mu)
{
    outcomes = outcome;
    outcomes_mu = mu;
}

void rc_on_delivery(void *ctx, int err, uint32_t shard, uint64_t seq)
{
    (void)shard;
    (void)seq;
    uint32_t v = (uint32_t)(uintptr_t)ctx;
    pthread_mutex_lock(outcomes_mu);
    outcomes[v] = (uint8_t)rc_outcome(err);
    pthread_mutex_unlock(outcomes_mu);
}

void rc_set_acked_at(const struct rc_acked_at *at)
{
    acked_at = at != NULL ? *at : (struct rc_acked_at){0};
}

struct reader {
    const struct rc_shard_end *ends;
    uint32_t n_shards;
    uint32_t n_values;
    uint8_t *seen;               /* per value: read once */
    uint64_t got[RC_SHARDS_MAX]; /* records read per shard */
    uint64_t last_seq[RC_SHARDS_MAX];
    bool any[RC_SHARDS_MAX];
    uint64_t records;
    uint32_t *at[RC_SHARDS_MAX]; /* value + 1 read at each position (0: none) */
    /* the consumer's position reached the end: the rest are control batches (a group's
     * state: broker/engine/control.h), no records */
    bool reached[RC_SHARDS_MAX];
};

/* One record: ours, never seen, in sequence order. Returns 0 or -1 (why[]). */
static int reader_take(struct reader *rd, const struct sluice_record *r, char *why, size_t whylen)
{
    if (r->shard >= rd->n_shards) {
        snprintf(why, whylen, "a record of shard %" PRIu32 ", the stream has %" PRIu32, r->shard,
                 rd->n_shards);
        return -1;
    }
    if (r->seq >= rd->ends[r->shard].next_seq) {
        return 0; /* past the end described (a write after it); not counted */
    }
    int64_t v = rc_value_parse(r->value, r->value_len);
    if (v < 0 || (uint64_t)v >= rd->n_values) {
        snprintf(why, whylen,
                 "shard %" PRIu32 " seq %" PRIu64 ": a value never written (%u "
                 "bytes)",
                 r->shard, r->seq, r->value_len);
        return -1;
    }
    if (rd->any[r->shard] && r->seq <= rd->last_seq[r->shard]) {
        snprintf(why, whylen,
                 "shard %" PRIu32 ": seq %" PRIu64 " after %" PRIu64 " (positions must increase)",
                 r->shard, r->seq, rd->last_seq[r->shard]);
        return -1;
    }
    if (rd->seen[v]) {
        snprintf(why, whylen,
                 "value %" PRId64 " stored twice (again at shard %" PRIu32 " seq %" PRIu64 ")", v,
                 r->shard, r->seq);
        return -1;
    }
    rd->seen[v] = 1;
    if (rd->at[r->shard] != NULL && r->seq >= rd->ends[r->shard].first_seq) {
        rd->at[r->shard][r->seq - rd->ends[r->shard].first_seq] = (uint32_t)v + 1u;
    }
    rd->any[r->shard] = true;
    rd->last_seq[r->shard] = r->seq;
    rd->got[r->shard]++;
    rd->records++;
    return 0;
}

static bool reader_done(const struct reader *rd)
{
    for (uint32_t s = 0; s < rd->n_shards; s++) {
        if (!rd->reached[s] && rd->got[s] < rd->ends[s].next_seq - rd->ends[s].first_seq) {
            return false;
        }
    }
    return true;
}

/* The log against what was read: every acknowledged value present; the counts. */
static int reader_verdict(const struct reader *rd, const uint8_t *outcome, struct rc_result *res,
                          char *why, size_t whylen)
{
    memset(res, 0, sizeof(*res));
    res->records = rd->records;
    res->values = rd->n_values;
    int64_t first_lost = -1;
    for (uint32_t v = 0; v < rd->n_values; v++) {
        res->ok += outcome[v] == RC_OK;
        res->failed += outcome[v] == RC_FAILED;
        res->unknown += outcome[v] == RC_UNKNOWN;
        res->failed_stored += outcome[v] == RC_FAILED && rd->seen[v];
        res->unknown_stored += outcome[v] == RC_UNKNOWN && rd->seen[v];
        if (outcome[v] == RC_OK && !rd->seen[v]) {
            first_lost = first_lost < 0 ? v : first_lost;
            res->lost++;
        }
    }
    if (res->lost > 0) {
        char where[200] = "";
        if (acked_at.shard != NULL && acked_at.seq != NULL) {
            uint32_t s = acked_at.shard[first_lost];
            uint64_t q = acked_at.seq[first_lost];
            uint32_t there = 0;
            if (s < rd->n_shards && q >= rd->ends[s].first_seq && q < rd->ends[s].next_seq) {
                there = rd->at[s][q - rd->ends[s].first_seq];
            }
            snprintf(where, sizeof(where),
                     "; acknowledged at shard %" PRIu32 " seq %" PRIu64
                     ", where the log holds %s%08" PRIu32,
                     s, q, there > 0 ? "v" : "nothing ", there > 0 ? there - 1u : 0u);
        }
        snprintf(why, whylen,
                 "%" PRIu32 " acknowledged values missing (the first: v%08" PRId64 "%s)", res->lost,
                 first_lost, where);
        return -1;
    }
    return 0;
}

int rc_read_check(sluice_client *c, const char *stream, const struct rc_shard_end *ends,
                  uint32_t n_shards, const uint8_t *outcome, uint32_t n_values, uint32_t timeout_ms,
                  struct rc_result *res, char *why, size_t whylen)
{
    if (n_shards == 0 || n_shards > RC_SHARDS_MAX) {
        snprintf(why, whylen, "%" PRIu32 " shards (1..%u)", n_shards, RC_SHARDS_MAX);
        return -1;
    }
    struct reader rd = {.ends = ends, .n_shards = n_shards, .n_values = n_values};
    rd.seen = calloc(n_values > 0 ? n_values : 1, 1);
    bool nomem = rd.seen == NULL;
    for (uint32_t s = 0; s < n_shards && !nomem; s++) {
        rd.at[s] = calloc(ends[s].next_seq - ends[s].first_seq + 1u, sizeof(uint32_t));
        nomem = rd.at[s] == NULL;
    }
    if (nomem) {
        snprintf(why, whylen, "out of memory for %" PRIu32 " values", n_values);
        free(rd.seen);
        for (uint32_t s = 0; s < n_shards; s++) {
            free(rd.at[s]);
        }
        return -1;
    }
    struct sluice_consumer_opts co = {.start = {.kind = SLUICE_TRIM_HORIZON}};
    sluice_consumer *cons = NULL;
    int rc = sluice_consumer_new(c, stream, NULL, &co, &cons);
    int ret = -1;
    if (rc != SLUICE_OK) {
        snprintf(why, whylen, "consumer of %s: %s (%s)", stream, sluice_strerror(rc),
                 sluice_last_error());
        goto out;
    }
    struct sluice_record recs[RC_POLL_MAX];
    uint64_t t0 = it_mono_ms();
    int last_err = SLUICE_OK;
    while (!reader_done(&rd)) {
        if (it_mono_ms() - t0 > timeout_ms) {
            char got[160];
            size_t len = 0;
            for (uint32_t s = 0; s < n_shards && len < sizeof(got); s++) {
                len += (size_t)snprintf(got + len, sizeof(got) - len,
                                        " shard %" PRIu32 ": %" PRIu64 "/%" PRIu64, s, rd.got[s],
                                        ends[s].next_seq - ends[s].first_seq);
            }
            snprintf(why, whylen,
                     "read %" PRIu64 " records in %" PRIu32 " ms, not the log's end "
                     "(the leaders' high watermark stays below it?):%s (last error %s)",
                     rd.records, timeout_ms, got, sluice_strerror(last_err));
            goto out;
        }
        size_t n = 0;
        rc = sluice_consumer_poll(cons, recs, RC_POLL_MAX, &n, RC_POLL_WAIT_MS);
        if (rc != SLUICE_OK) {
            last_err = rc; /* a leader moving or unreachable: poll again */
            it_sleep_ms(100);
            continue;
        }
        for (size_t k = 0; k < n; k++) {
            if (reader_take(&rd, &recs[k], why, whylen) != 0) {
                goto out;
            }
        }
        /* every record up to the tail its last fetch saw returned, and that tail at the end:
         * the shard's records are all read (its next_seq stays before trailing control
         * batches: client/consumer_int.h) */
        bool caught_up = sluice_consumer_caught_up(cons) != 0;
        for (uint32_t s = 0; s < n_shards && caught_up; s++) {
            uint64_t next = 0, tail = 0;
            rd.reached[s] =
                rd.reached[s] || (sluice_consumer_shard_state(cons, s, &next, &tail) == SLUICE_OK &&
                                  tail >= ends[s].next_seq);
        }
    }
    ret = reader_verdict(&rd, outcome, res, why, whylen);
out:
    sluice_consumer_free(cons);
    free(rd.seen);
    for (uint32_t s = 0; s < n_shards; s++) {
        free(rd.at[s]);
    }
    return ret;
}
