/* queue_int.h - what queue.c (groups, their table of leases, settles, stats, the tick) and
 * queue_recv.c (receives and dead letters) share: the runtime state of a queue group and the
 * calls on it. Main loop only, as queue.h. Not for other modules.
 */
#ifndef SL_QUEUE_INT_H
#define SL_QUEUE_INT_H

#include "broker/engine/catalog.h"
#include "broker/engine/engine.h"
#include "broker/engine/queue.h"

#include <stdbool.h>
#include <stdint.h>

#define QUEUE_VISIBILITY_DEFAULT_MS 30000u
#define QUEUE_INFLIGHT_DEFAULT      10000u
#define QUEUE_TABLE_MIN             64u /* entries first allocated; doubled up to max_inflight */
#define QUEUE_READ_BYTES            (256u << 10)
#define RECEIPT_MAX                 64u

enum { QE_FREE = 0, QE_LEASED, QE_READY, QE_CLAIMED, QE_BLOCKED };

#define NO_SLOT UINT32_MAX
#define NO_SEQ  UINT64_MAX
/* Control batches skipped at a shard's frontier are acked with the group's next change of
 * that shard, or once this many sequences of them gathered (see on_frontier_read). */
#define QUEUE_CTL_LAZY_MAX 1024u

struct qentry {
    uint64_t seq;
    uint64_t due_ms;
    uint64_t key_hash; /* ordered groups: the record's key (when keyed) */
    uint32_t shard;
    uint32_t count;
    uint32_t gen;
    uint32_t next_free;
    uint32_t next_same; /* ordered: the next entry of the same key */
    uint8_t state;
    bool keyed;
};

/* Ordered groups: key hash -> chain of entries (head is the one that may be
 * leased). Open addressing, linear probing, tombstones. */
enum { KS_EMPTY = 0, KS_USED, KS_TOMB };
struct keyslot {
    uint64_t hash;
    uint32_t head;
    uint32_t tail;
    uint8_t state;
};

struct recv_op;

/* Per stream: its groups' runtime state, built on first use; linked in
 * e->queue_streams so that the tick walks the streams with groups, not the
 * catalog. */
struct sl_queue_state {
    struct qgroup *groups;
    struct sl_filter_set *filters; /* the groups' filters; NULL until one has one */
    struct sl_engine *e;
    struct sl_stream *st;
    struct sl_queue_state *prev;
    struct sl_queue_state *next;
};

struct qgroup {
    struct qgroup *next;
    struct sl_stream *stream;
    char name[SL_QUEUE_GROUP_NAME_MAX + 1];
    uint32_t visibility_ms;
    uint32_t max_deliveries;
    uint32_t max_inflight;
    uint64_t start_time_ms; /* AT_TIMESTAMP groups skip records appended before */
    uint64_t end_time_ms;   /* 0 or: records appended at or after it are skipped */
    char dlq[SL_STREAM_NAME_MAX + 1];
    struct sl_filter *filter;
    uint32_t filter_slot; /* in the stream's filter set, or NO_SLOT: matched alone */
    bool ordered;
    struct keyslot *keys; /* ordered: 2 x cap slots */
    uint32_t keys_cap;
    uint32_t keys_tomb;
    uint64_t *frontier; /* n_shards of them (the stream's shards may grow: reshard) */
    bool *reading;
    uint8_t *readable; /* ordered groups: shards known readable (it only ever becomes true) */
    uint32_t n_shards;
    struct qentry *e; /* cap entries (<= max_inflight) */
    uint32_t cap;
    uint32_t free_head; /* UINT32_MAX: none */
    uint32_t used;      /* entries not FREE */
    uint32_t rr;
    struct recv_op *waiters;
    /* Receives holding this group. A deleted group leaves its stream's list
     * at once (nothing new finds it) and is freed when the last one ends. */
    uint32_t receives;
    bool deleted;
    bool deposed;       /* (deleted too) this broker no longer leads its cluster home */
    int32_t home_epoch; /* cluster stream: the home shard's epoch it was built in; else -1 */
    /* Per shard, the start of a run of control batches skipped at the frontier but not acked
     * yet (NO_SEQ: none): see on_frontier_read. */
    uint64_t *ctl_from;
};

/* An operation answered once every durable step it started is done. */
struct simple_op {
    struct sl_engine *e;
    uint64_t start_ns;
    struct sl_stream *stream;
    sl_done_cb done;      /* create, delete, purge */
    sl_settle_cb settled; /* ack, nack, extend: with per-receipt results */
    void *ctx;
    uint32_t outstanding;
    int err;
    int *results;
    uint32_t n_results;
};

/* ---- queue.c ---- */

/* Finds stream and group (on a cluster stream at the group's home), or says why not. */
struct qgroup *qg_lookup(struct sl_engine *e, const char *stream, const char *group, char *why,
                         uint32_t why_len, int *err);
/* A cluster stream's group is served by its home, the leader of the group's shard: SL_OK
 * with *epoch its leader epoch (-1 on a local stream), or SL_ENOT_LEADER with why. */
int qg_group_home(struct sl_engine *e, struct sl_stream *st, const char *group, int32_t *epoch,
                  char *why, size_t why_len);
/* Takes g off its stream's list; its parked receives end with err (SL_ENOT_LEADER: deposed),
 * and it is freed with its last receive. */
void qg_group_retire(struct qgroup *g, int err);
/* A new operation on st (held: st->inflight) answering `done` or `settled`; each durable
 * step it starts takes one `outstanding` and completes through qg_simple_cb; qg_simple_start
 * releases the creator's and answers if nothing is left. NULL: no memory. */
struct simple_op *qg_simple_new(struct sl_engine *e, struct sl_stream *st, sl_done_cb done,
                                sl_settle_cb settled, void *ctx);
void qg_simple_cb(void *ctx, int err);
void qg_simple_start(struct simple_op *op);
/* Lets go of a receive's hold on g; a deleted group is freed with its last. */
void qg_group_put(struct qgroup *g);
/* Where this broker's reads of shard b end: the log's visible tail and, on a cluster
 * stream, its replica's high watermark (0 without a live replica here). */
uint64_t qg_shard_end(const struct sl_engine *e, const struct sl_bshard *b,
                      const struct sl_shard_stats *ss);
/* Ordered groups: every ancestor of shard s closed and fully acknowledged. */
bool qg_shard_readable(struct qgroup *g, uint32_t s);
/* A free entry of the table (grown up to max_inflight), or NULL. */
struct qentry *qg_entry_alloc(struct qgroup *g);
/* Frees entry e (and takes it off its key's chain, making the next READY). */
void qg_entry_release(struct qgroup *g, struct qentry *e);
/* Ordered groups: the slot of key `hash` (NULL: none, or no room for_insert). */
struct keyslot *qg_key_find(struct qgroup *g, uint64_t hash, bool for_insert);
/* Ordered: adds e to its key's chain; true when it is the head (may be leased now). */
bool qg_key_chain_add(struct qgroup *g, struct qentry *e);
/* The receipt naming e's lease (slot and generation), NUL-terminated in out[n]. */
void qg_receipt_format(const struct qgroup *g, const struct qentry *e, char *out, size_t n);

/* ---- queue_admin.c ---- (create, delete, list, stats, purge: queue.h) */

/* ---- queue_recv.c ---- */

/* Parked receives look again (a record became visible or due). */
void qg_recv_wake(struct qgroup *g);
/* Parked receives answer now with err (they hold no record). */
void qg_recv_fail_waiters(struct qgroup *g, int err);
/* Long-polls past their deadline answer empty. */
void qg_recv_expire(struct qgroup *g, uint64_t now);
/* Dead letters whose wait is over are tried again; give_up: answered now (stopping). */
void qg_dlq_retry_due(struct sl_engine *e, uint64_t now, bool give_up);

#endif
