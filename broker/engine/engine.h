/* engine.h - what the engine modules share: the catalog, the limits every
 * front-end's requests are held to, and the main loop's scratch space.
 *
 * The engines (streams, produce, fetch, consumer, queue) know no wire
 * format: they take plain C requests, report completion through callbacks
 * with plain C results, and name errors with enum sl_err and a message. The
 * front-ends (broker/native, broker/http) translate.
 *
 * Threading: the main loop's thread only.
 */
#ifndef SL_ENGINE_H
#define SL_ENGINE_H

#include "broker/engine/counters.h"
#include "broker/engine/filter.h"

#include <stdbool.h>
#include <stdint.h>

struct sl_catalog;
struct sl_stream;
struct sl_bshard;
struct sl_zctx;

/* All fetch buffers of the broker together stay below this: with it, memory
 * does not grow with connections x requests in flight x fetch size. */
#define SL_FETCH_MEMORY_MAX (512ull << 20)

/* A position in a shard (the numbering is stored in queue-group
 * definitions: never renumber). */
enum sl_pos_kind {
    SL_POS_TRIM_HORIZON = 0, /* the oldest retained record */
    SL_POS_LATEST = 1,       /* after the newest record */
    SL_POS_AT_SEQ = 2,       /* the record with sequence `seq` */
    SL_POS_AFTER_SEQ = 3,    /* the record after `seq` */
    SL_POS_AT_TIME = 4,      /* the first record appended at or after `time_ms` */
};

struct sl_position {
    uint32_t kind; /* enum sl_pos_kind */
    uint64_t seq;
    uint64_t time_ms;
};

struct sl_engine_config {
    uint32_t fetch_wait_max_ms;  /* longest long-poll (fetch, receive) */
    uint32_t fetch_bytes_max;    /* largest fetch answer */
    uint32_t batch_bytes_max;    /* largest batch a produce may carry */
    bool auto_create_streams;    /* a produce to an unknown stream creates it */
    uint32_t dedup_window_ms;    /* sluice.dedup_id window; 0 = off */
    uint32_t default_shards;     /* shards of an auto-created stream */
    uint32_t retention_check_ms; /* how often retention runs over every shard */
};

struct fetch_op;       /* fetch.c */
struct sl_queue_state; /* queue.c */
struct sl_filter_memo; /* filter_set.h */
struct dlq_op;         /* queue_recv.c */
struct sl_cgroup;      /* coord.c */

/* The outcome of an append forwarded to a shard's leader (struct sl_engine_repl.forward). */
typedef void (*sl_engine_forwarded_fn)(void *ctx, int err, const char *why, uint64_t base_seq);
/* The outcome of a stream created or deleted in the cluster (struct sl_engine_repl.create,
 * .remove); `why` borrowed for the call. */
typedef void (*sl_engine_done_fn)(void *ctx, int err, const char *why);

/* Cluster mode (#14): what the replica manager (broker/cluster/replicas.c) does for the
 * engine on a shard that has a replica (b->repl != NULL). Installed once at start-up; NULL
 * on a single broker. The engine knows nothing more of replication: the manager answers
 * appends (sl_produce_repl_ack) and wakes fetches as its high watermark moves. */
struct sl_engine_repl {
    void *ctx;
    /* An append of `count` records to b: SL_OK with the leader epoch to stamp and the end
     * sequence the batch will have (its ACK covers it), or why not (SL_ENOT_LEADER,
     * SL_ENOT_ENOUGH_REPLICAS, SL_EAGAIN, SL_EFATAL), with `why` naming the cause. */
    int (*append)(void *ctx, struct sl_bshard *b, uint32_t count, uint32_t *epoch, uint64_t *end,
                  char *why, size_t why_len);
    /* The shard's log completed an accepted append (in the order they were accepted). */
    void (*written)(void *ctx, struct sl_bshard *b, int err);
    /* Where the leader's committed records end: its high watermark; SL_OK, or SL_ENOT_LEADER
     * when this broker does not lead b (what only the leader decides: a retry answered as a
     * duplicate, a checkpoint taken). Reads use `replica`: any live replica serves them. */
    int (*readable)(void *ctx, const struct sl_bshard *b, uint64_t *end);
    /* This broker's replica of b, for the broker's own readers (a queue group's home reads
     * every shard of its stream from its replicas): SL_OK with *end its high watermark (a
     * follower's is what its leader said is committed, capped at its own durable log: never
     * truncated) and *leader_epoch the epoch it leads, or -1 when it follows; SL_ENOT_LEADER
     * when this broker holds no replica of b (or a failed one), SL_EAGAIN when it holds one
     * that is not live yet (its state not read: a stream just made; or idle, no leader). */
    int (*replica)(void *ctx, const struct sl_bshard *b, uint64_t *end, int32_t *leader_epoch);
    /* Whether cluster stream `name` is published in ZooKeeper and being made in this
     * broker's catalog (a lookup then answers SL_EAGAIN, not SL_ENOTFOUND). */
    bool (*creating)(void *ctx, const char *name);
    /* Appends `batch` (len bytes, copied) to cluster shard b through its leader, another
     * broker, with ack = durable; cb on the main loop (SL_OK once durable there). Errors at
     * once: SL_ENOT_LEADER (no leader known, or it is this broker: append here, through the
     * replicated produce), SL_ELIMIT (the peer's queue is full), SL_ENOMEM. */
    int (*forward)(void *ctx, const struct sl_bshard *b, const uint8_t *batch, size_t len,
                   bool caller_routed, sl_engine_forwarded_fn cb, void *cb_ctx);
    /* Creates a replicated stream in the cluster (rf replicas per shard, 0: the default):
     * cb once it exists in this broker's catalog, or why not (SL_EEXIST: the cluster has
     * it). Errors at once, with `why`: no session, more replicas than live brokers,
     * SL_ENOMEM. */
    int (*create)(void *ctx, const char *name, uint32_t shard_count, uint32_t retention_hours,
                  uint64_t retention_bytes, const char *compression, uint32_t rf,
                  sl_engine_done_fn cb, void *cb_ctx, char *why, size_t why_len);
    /* Deletes a replicated stream in the cluster: cb once it is removed from ZooKeeper and
     * this broker dropped its copy (every other broker drops its own as it sees it). */
    int (*remove)(void *ctx, const char *name, sl_engine_done_fn cb, void *cb_ctx, char *why,
                  size_t why_len);
};

struct sl_engine {
    struct sl_engine_config cfg;
    const struct sl_engine_repl *repl;    /* NULL: a single broker */
    struct sl_catalog *catalog;           /* borrowed */
    bool stopping;                        /* shutting down: long-polls answer at once */
    uint64_t fetch_bytes;                 /* fetch buffers allocated now (<= SL_FETCH_MEMORY_MAX) */
    struct fetch_op *fetch_parked;        /* fetch.c: every parked fetch, for the tick */
    struct sl_queue_state *queue_streams; /* queue.c: streams with queue groups built */
    struct dlq_op *dlq_retry;        /* queue_recv.c: dead letters waiting to be appended again */
    struct sl_qlog_batch *qlog_open; /* qlog.c: queue changes being gathered, or NULL */
    uint32_t dlq_retry_count;
    struct sl_cgroup *coord_groups; /* coord.c: groups with members */
    uint32_t coord_group_count;
    uint64_t coord_serial;        /* member ids */
    uint64_t next_retention_ms;   /* monotonic */
    struct sl_engine_stats stats; /* per operation: results and latency */
    /* decompression scratch for routing and de-dup checks, and queue reads */
    struct sl_zctx *zctx;
    uint8_t *scratch;
    uint32_t scratch_cap;
    /* the record being matched against filters on the main loop (its scratch
     * for reading values as JSON grows to the largest value matched) */
    struct sl_filter_subject filter_subject;
    /* queue.c: answers of streams' filter sets by record, shared by their
     * groups (filter_set.h); NULL until a filtered group is built */
    struct sl_filter_memo *filter_memo;
};

/* Errors: SL_ENOMEM. */
int sl_engine_init(struct sl_engine *e, const struct sl_engine_config *cfg,
                   struct sl_catalog *catalog);
void sl_engine_fini(struct sl_engine *e); /* idempotent */

/* Makes the scratch hold the records of a batch with codec `codec` (a zstd
 * batch; uncompressed ones need none). Bounded: at most 4 x batch_bytes_max
 * (a small frame must not expand into unbounded memory). Errors: SL_ETOOBIG,
 * SL_ENOMEM. */
int sl_engine_scratch_reserve(struct sl_engine *e, uint32_t codec, uint32_t records_len);

/* The stream `name`, or NULL with SL_ENOTFOUND in *err and the reason in
 * `why` ("stream X not found"). */
struct sl_stream *sl_engine_stream(struct sl_engine *e, const char *name, char *why,
                                   uint32_t why_len, int *err);
/* Where reads of a replicated shard end on this broker (#14): its replica's high watermark,
 * leading or following - a follower's is what its leader said is committed, capped at its
 * own durable log, so it serves nothing a failover could lose (Kafka's fetch from followers,
 * KIP-392): the HTTP APIs' clients read through whichever broker they reach. SL_ENOT_LEADER
 * (no replica here, or a failed one) or SL_EAGAIN (one not live yet) otherwise. */
int sl_engine_read_end(const struct sl_engine *e, const struct sl_bshard *b, uint64_t *end);
/* Shard `shard` of stream `name`, or NULL with SL_ENOTFOUND and why. */
struct sl_bshard *sl_engine_shard(struct sl_engine *e, const char *name, uint32_t shard, char *why,
                                  uint32_t why_len, int *err);

#endif
