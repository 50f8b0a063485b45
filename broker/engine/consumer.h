/* consumer.h - stream consumers' groups: durable checkpoints per (group,
 * shard), the list of groups, and lag in records and in milliseconds.
 *
 * Threading: the main loop. sl_consumer_commit's callback runs exactly
 * once, possibly before the call returns; the others are synchronous.
 */
#ifndef SL_CONSUMER_H
#define SL_CONSUMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sl_engine;
struct sl_stream;
struct sl_bshard;
struct sl_batch_header;

struct sl_commit_req {
    const char *stream; /* borrowed for the call */
    const char *group;
    uint32_t shard;
    uint64_t seq; /* the next record the group will read */
    /* A member of the group's coordinator (coord.h) or NULL/"": a member's
     * commit is refused (SL_EFENCED) unless it holds the shard now, and
     * (SL_EINVAL) when it would move the checkpoint backwards without an
     * explicit seek. */
    const char *member_id;
    bool seek;
};

/* `why` is borrowed for the duration of the call ("" when OK). */
typedef void (*sl_done_cb)(void *ctx, int err, const char *why);

/* Durable before the callback says SL_OK - on a cluster stream, durable on the ISR of the
 * group's shard (a control batch in its log) and in this broker's store. Errors:
 * SL_ENOTFOUND, SL_EINVAL (beyond the shard's tail), SL_ENOT_LEADER (a cluster stream's
 * group whose shard another broker leads), those of a replicated append, those of the
 * checkpoint store. */
void sl_consumer_commit(struct sl_engine *e, const struct sl_commit_req *req, sl_done_cb cb,
                        void *ctx);

/* Cluster mode (#14): a group's checkpoints on a cluster stream live in the log of one of
 * its shards (common/partition.h sl_partition_group_shard), and the leader of that shard is
 * the group's home - its coordinator, the only broker that commits or answers for it.
 * *home: that shard when this broker leads it, NULL on a single broker or a local stream
 * (SL_OK, the group lives here). Errors: SL_ENOT_LEADER (another broker leads it; `why`
 * names the shard). */
int sl_consumer_group_home(struct sl_engine *e, struct sl_stream *st, const char *group,
                           struct sl_bshard **home, char *why, size_t why_len);

/* A follower wrote the control batch `batch` (header `h`, verified) of shard b: its
 * checkpoints go to this broker's store, so that it holds them should it lead the group's
 * shard. A batch that cannot be applied is logged (the log keeps it). */
void sl_consumer_apply_control(struct sl_engine *e, struct sl_bshard *b, const uint8_t *batch,
                               const struct sl_batch_header *h);

/* An explicit seek of the whole group: sets the checkpoints of `n` shards
 * (backwards too), durable before cb says SL_OK. Refused (SL_EINVAL) while
 * the group has active members unless `force`, which removes them first
 * (they join again and resume from the new checkpoints). */
struct sl_reset_req {
    const char *stream; /* borrowed for the call, as the arrays */
    const char *group;
    const uint32_t *shards;
    const uint64_t *seqs;
    uint32_t n;
    bool force;
};
void sl_consumer_reset(struct sl_engine *e, const struct sl_reset_req *req, sl_done_cb cb,
                       void *ctx);

typedef void (*sl_checkpoint_fn)(void *ctx, const char *group, uint32_t shard, uint64_t seq,
                                 uint64_t updated_ms);
/* Calls fn for every checkpoint of `group` (NULL: of every group, in group
 * name order) on the stream. Errors: SL_ENOTFOUND (why says so). */
int sl_consumer_checkpoints(struct sl_engine *e, const char *stream, const char *group,
                            sl_checkpoint_fn fn, void *ctx, char *why, uint32_t why_len);

struct sl_shard_lag {
    uint32_t shard;
    uint64_t checkpoint; /* where the group stands (at least the oldest retained) */
    uint64_t tail_seq;
    uint64_t records_behind;
    uint64_t ms_behind; /* append time of the tail - that of the checkpoint */
};

/* The group's lag on every shard of the stream: *out (returned owned,
 * free()) has *n = shard_count entries. Errors: SL_ENOTFOUND, SL_ENOMEM. */
int sl_consumer_lag(struct sl_engine *e, const char *stream, const char *group,
                    struct sl_shard_lag **out, uint32_t *n, char *why, uint32_t why_len);

/* The lag of every group with a checkpoint, on every stream: one entry per
 * shard of each such group (a shard it has no checkpoint on counts from the
 * oldest retained record). Time lookups are batched (one
 * synchronous call per worker, not per shard), so a scrape of many shards
 * does not stall the loop per shard. *out returns owned (free with
 * sl_consumer_lag_all_free). Errors: SL_ENOMEM. */
struct sl_group_lag {
    const char *stream; /* borrowed from the catalog until the loop's next turn */
    char *group;        /* owned by the array */
    struct sl_shard_lag lag;
};
int sl_consumer_lag_all(struct sl_engine *e, struct sl_group_lag **out, size_t *n);
void sl_consumer_lag_all_free(struct sl_group_lag *v, size_t n);

#endif
