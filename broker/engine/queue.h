/* queue.h - queue groups (competing consumers) and topic subscriptions on a
 * stream's log: leases with visibility timeouts, acks, nacks, redelivery,
 * dead letters, FIFO per key, filters.
 *
 * Threading: the main loop. The durable state (ack floors, acked ranges,
 * delivery counts, group definitions) lives in the stream's storage/qstate;
 * this module keeps the runtime state: leases (at most max_inflight per
 * group), the read frontier per shard, parked receives. Memory per group:
 * O(max_inflight + acked ranges), not O(backlog).
 *
 * Every asynchronous call runs its callback exactly once, possibly before
 * it returns; what the callback is given is borrowed for its duration.
 */
#ifndef SL_QUEUE_H
#define SL_QUEUE_H

#include "broker/engine/consumer.h"
#include "broker/engine/engine.h"
#include "storage/batch.h"

#include <stdbool.h>
#include <stdint.h>

struct sl_bshard;
struct sl_stream;

#define SL_QUEUE_GROUP_NAME_MAX 128u
#define SL_QUEUE_INFLIGHT_MAX 1000000u
#define SL_QUEUE_RECEIVE_MAX 10000u

struct sl_qgroup_config {
    uint32_t visibility_timeout_ms; /* 0: 30 s */
    uint32_t max_deliveries;        /* 0: no dead-lettering */
    uint32_t max_inflight;          /* 0: 10,000 leases */
    bool ordered;                   /* FIFO per partition key */
    const char *dead_letter_stream; /* NULL or "": <stream>.<group>.dlq */
    const char *filter;             /* NULL or "": every record; else an event pattern */
    bool filter_body;               /* the pattern reads the value as JSON, not attributes */
    struct sl_position start;       /* where a new group starts on each shard */
    uint64_t end_time_ms;           /* 0: none; else records appended at or after it are
                                       skipped (acked, never delivered): a replay's end */
};

/* Errors: SL_ENOTFOUND, SL_EINVAL (name, limits, filter: why says which),
 * those of the queue-state store. */
void sl_queue_create_group(struct sl_engine *e, const char *stream, const char *group,
                           const struct sl_qgroup_config *cfg, sl_done_cb cb, void *ctx);
/* Errors: SL_ENOTFOUND and those of the queue-state store. Receives on the
 * group, parked or reading, end with SL_ENOTFOUND. */
void sl_queue_delete_group(struct sl_engine *e, const char *stream, const char *group,
                           sl_done_cb cb, void *ctx);
/* Calls fn for each group of the stream (name borrowed for the call).
 * Errors: SL_ENOTFOUND. */
int sl_queue_groups(struct sl_engine *e, const char *stream,
                    void (*fn)(void *ctx, const char *name), void *ctx, char *why,
                    uint32_t why_len);

struct sl_qrecord {
    const char *receipt; /* opaque; names this lease */
    uint32_t shard;
    uint64_t seq;
    uint64_t timestamp_ms; /* appended */
    uint64_t produced_ms;  /* the producer's timestamp */
    uint32_t delivery_count;
    const uint8_t *key;
    uint32_t key_len;
    const uint8_t *value;
    uint32_t value_len;
    const struct sl_attr *attrs;
    uint32_t attr_count;
};

struct sl_receive_req {
    const char *stream;
    const char *group;
    uint32_t max_records;           /* 1 .. SL_QUEUE_RECEIVE_MAX */
    uint32_t wait_ms;               /* long-poll; at most fetch_wait_max_ms */
    uint32_t visibility_timeout_ms; /* 0: the group's */
};

struct sl_receive_result {
    int err;
    const char *why;
    const struct sl_qrecord *records;
    uint32_t n;
};

typedef void (*sl_receive_cb)(void *ctx, const struct sl_receive_result *r);

/* Leases up to max_records records (redeliveries first), answering once
 * their delivery counts are durable; waits up to wait_ms when none is
 * visible. */
void sl_queue_receive(struct sl_engine *e, const struct sl_receive_req *req, sl_receive_cb cb,
                      void *ctx);

enum sl_settle_kind {
    SL_SETTLE_ACK = 0,    /* done: durable before the callback */
    SL_SETTLE_NACK = 1,   /* visible again after `ms` */
    SL_SETTLE_EXTEND = 2, /* the lease runs `ms` longer (0: the group's visibility) */
};

struct sl_settle_req {
    const char *stream;
    const char *group;
    enum sl_settle_kind kind;
    const char *const *receipts;
    uint32_t n;
    uint32_t ms;
};

/* The receipts are read before sl_queue_settle returns (borrowed for the call only);
 * the callback may run before it returns too.
 * results[i]: SL_OK, or SL_ENOTFOUND for a stale or forged receipt. */
typedef void (*sl_settle_cb)(void *ctx, int err, const char *why, const int *results,
                             uint32_t n);

void sl_queue_settle(struct sl_engine *e, const struct sl_settle_req *req, sl_settle_cb cb,
                     void *ctx);

struct sl_qgroup_stats {
    uint64_t visible;
    uint64_t inflight;
    uint64_t delayed;
    uint64_t dead_lettered;
    uint64_t filtered_out;
    uint64_t oldest_age_ms;
    struct sl_qgroup_config config; /* strings borrowed until the next engine call */
};

/* Errors: SL_ENOTFOUND. */
int sl_queue_stats(struct sl_engine *e, const char *stream, const char *group,
                   struct sl_qgroup_stats *out, char *why, uint32_t why_len);
/* Acknowledges everything visible now. Errors: SL_ENOTFOUND, SL_EAGAIN. */
void sl_queue_purge(struct sl_engine *e, const char *stream, const char *group, sl_done_cb cb,
                    void *ctx);

/* Lease expiry and long-poll deadlines; from the tick. */
void sl_queue_tick(struct sl_engine *e);
/* New records on a shard: wake receives parked on its stream's groups. */
void sl_queue_shard_progress(struct sl_bshard *b);
/* Shutdown: answer parked receives now. */
void sl_queue_stop(struct sl_engine *e);
/* The stream was deleted: its parked receives answer SL_ENOTFOUND now. */
void sl_queue_stream_deleted(struct sl_stream *st);
/* Frees a stream's runtime queue state (stream deleted or catalog closed). */
void sl_queue_stream_free(struct sl_stream *st);
/* Before a reshard that gives the stream `count` shards commits: every queue
 * group of the stream (built or not) takes the new shards, read from their
 * start; ordered groups read a child only once its ancestors are closed and
 * fully acknowledged. Errors (why says which): SL_ELIMIT (more shards than a
 * group holds, SL_QSTATE_SHARDS_MAX), SL_ENOMEM, the store's errors. */
int sl_queue_stream_grow(struct sl_stream *st, uint32_t count, char *why, size_t why_len);

#endif
