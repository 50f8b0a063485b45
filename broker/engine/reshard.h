/* reshard.h - splitting and merging a stream's shards (#16), for every
 * front-end: the native ReshardStream, the Kinesis SplitShard, MergeShards
 * and UpdateShardCount.
 *
 * A change runs in three steps on the main loop:
 *   1. the new lineage built (lineage.h checks each split and merge) and
 *      checked against the limits (catalog: sl_catalog_reshard_prepare);
 *   2. the shards it closes stop taking appends: new ones wait in their
 *      shard's FIFO (produce.c) while those already handed to the shard's
 *      owner complete - so a closed shard's log ends before any record of
 *      its range reaches a child, which is what keeps each key in order;
 *   3. committed (catalog: sl_catalog_reshard_commit, one durable write of
 *      stream.meta); the waiting appends are then refused SL_ESHARD_CLOSED
 *      with the children, and the producers re-route. A failed commit
 *      starts them instead: the stream is as before.
 * Producers of the closed shards see a pause of step 2 + 3: the appends in
 * flight (a group-commit fdatasync) and one file replace.
 *
 * Readers follow the lineage: consumer groups (coord.c) and ordered queue
 * groups (queue.c) read a child once its ancestors are finished; queue groups
 * take the new shards before the commit (sl_queue_stream_grow).
 *
 * Not yet: retention forgetting closed shards.
 *
 * Threading: the main loop.
 */
#ifndef SL_RESHARD_H
#define SL_RESHARD_H

#include <stdbool.h>
#include <stdint.h>

struct sl_engine;
struct sl_stream;

enum sl_reshard_kind {
    SL_RESHARD_SPLIT = 0,  /* shard at `at` (has_at) or its middle */
    SL_RESHARD_MERGE = 1,  /* shard with `adjacent` */
    SL_RESHARD_TARGET = 2, /* `target` open shards of uniform ranges */
};

struct sl_reshard_req {
    const char *stream;
    enum sl_reshard_kind kind;
    uint32_t shard;
    bool has_at;
    uint64_t at; /* split: the hash the second child starts at */
    uint32_t adjacent;
    uint32_t target;
};

struct sl_reshard_result {
    int err;
    const char *why; /* "" when OK */
    const uint32_t *closed;
    uint32_t n_closed;
    uint32_t first_new; /* ids first_new .. first_new + n_new - 1 were opened */
    uint32_t n_new;
};

/* Everything in `r` is borrowed for the call. */
typedef void (*sl_reshard_cb)(void *ctx, const struct sl_reshard_result *r);

/* Runs the change; cb runs once, possibly before this returns. Errors:
 * those of sl_catalog_reshard_prepare and _commit and sl_queue_stream_grow,
 * SL_ENOTFOUND (stream), SL_EAGAIN (another change of the stream is under
 * way), SL_ECLOSED (the stream was deleted or the broker stopped while
 * waiting). */
void sl_reshard_submit(struct sl_engine *e, const struct sl_reshard_req *req, sl_reshard_cb cb,
                       void *ctx);

/* produce.c: the last append in flight to a closing shard of st completed. */
void sl_reshard_drained(struct sl_stream *st);

/* The stream is going (deleted, or the broker stopping): a change waiting
 * for its appends is answered SL_ECLOSED. */
void sl_reshard_stream_gone(struct sl_stream *st);

#endif
