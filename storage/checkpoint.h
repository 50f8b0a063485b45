/* checkpoint.h - durable consumer-group checkpoints of one stream.
 *
 * One store per stream, in the stream's `groups/` directory: for each
 * (group, shard) the next sequence to read and the time of the commit.
 * Format and crash-safety order: storage/checkpoint.c and docs/FORMAT.md
 * section 4.
 *
 * Threading: a store belongs to the thread that owns its ring; every call is
 * made on that thread, and every callback runs on it from sl_ring_run().
 * Commits are asynchronous (one write + one fdatasync through the ring per
 * group of commits); open and compaction are synchronous (see checkpoint.c).
 */
#ifndef SL_CHECKPOINT_H
#define SL_CHECKPOINT_H

#include "common/ring.h"

#include <stdbool.h>
#include <stdint.h>

#define SL_CKPT_GROUP_NAME_MAX 128u   /* bytes of a group name, NUL excluded */
#define SL_CKPT_SHARDS_MAX     65536u /* distinct shards with a checkpoint, per group */

struct sl_ckpt_store;
struct sl_statelog_cache; /* storage/statelog.h */

struct sl_ckpt_config {
    uint32_t groups_max;    /* default 1024; [1, 1 Mi] */
    uint32_t log_bytes_max; /* compact when the log exceeds this; default 4 MiB; [4 KiB, 1 GiB] */
    uint32_t pending_max;   /* commits not yet durable; default 16384; [1, 16 Mi] */
    uint32_t sync_interval_ms; /* 0 (default): a commit is answered once fsynced; else
                                  once written, fsynced within this (flush = interval) */
    /* The descriptor budget shared with the ring's other stores (borrowed, the
     * ring's thread only): an idle store's files are closed, reopened by its
     * next commit. NULL (default): open until closed. */
    struct sl_statelog_cache *cache;
};

void sl_ckpt_config_default(struct sl_ckpt_config *cfg);

/* Whether `dir` (borrowed) holds checkpoints: a snapshot or a non-empty
 * log (sl_statelog_present). A directory without is opened on first use. */
bool sl_ckpt_present(const char *dir);

/* Opens (creating `dir` if missing, and fsyncing its parent) the store in
 * `dir` (borrowed for the call) and loads it: the snapshot, then the log; a
 * torn or corrupt log tail is truncated after the last valid record (logged
 * with the byte count). Synchronous; call at start-up. `ring` is borrowed
 * for the store's lifetime. More groups on disk than groups_max are kept
 * (logged); only new groups are refused. Errors: SL_EINVAL (config),
 * SL_ECORRUPT (the snapshot fails its checksum or structure: nothing is
 * loaded, never a silent loss), SL_ENOMEM, SL_EIO, SL_ENOSPC, SL_ESYS. */
int sl_ckpt_open(struct sl_ring *ring, const char *dir, const struct sl_ckpt_config *cfg,
                 struct sl_ckpt_store **out);

/* Writes the commits not yet issued, runs the ring until the store's I/O
 * in flight has completed (their callbacks run), and frees the store.
 * NULL-safe. Never call it from a checkpoint callback. Commits made from
 * the callbacks it runs get SL_ECLOSED. */
void sl_ckpt_close(struct sl_ckpt_store *cs);

/* err: SL_OK once durable; SL_EFATAL when the write or fdatasync failed. */
typedef void (*sl_ckpt_cb)(void *ctx, int err);

/* Records that `group` (borrowed for the call) has read `shard` up to `seq`
 * (the next sequence to read), at `now_ms`. `cb` (may be NULL) runs from
 * the ring loop once the checkpoint is durable, never from inside this call.
 * Group commit: every commit made before a write is issued shares one write
 * and one fdatasync. Checkpoints may move backwards (a replay): the last
 * commit wins. Errors, returned at once with no side effect:
 * SL_EINVAL (group empty or longer than SL_CKPT_GROUP_NAME_MAX bytes),
 * SL_ELIMIT (groups_max reached for a new group, or SL_CKPT_SHARDS_MAX shards
 * in the group; or, with cfg.cache, out of descriptors reopening a parked
 * store: logged naming the limit), SL_EAGAIN (pending_max commits not yet
 * durable: run the loop, retry), SL_EFATAL (an earlier write or fsync failed,
 * or the log changed on disk while the store was parked: the store refuses
 * commits until it is reopened), SL_ECLOSED (from a callback run by
 * sl_ckpt_close), SL_EIO / SL_ESYS (reopening a parked store), SL_ENOMEM. */
int sl_ckpt_commit(struct sl_ckpt_store *cs, const char *group, uint32_t shard, uint64_t seq,
                   uint64_t now_ms, sl_ckpt_cb cb, void *ctx);

/* A barrier: true when `cb` runs once every commit made so far is durable (or failed: with
 * the error); false when none is waiting (all durable, or the store failed) and cb will not
 * run. */
bool sl_ckpt_sync(struct sl_ckpt_store *cs, sl_ckpt_cb cb, void *ctx);

/* The durable (confirmed) checkpoint of (group, shard). Errors: SL_ENOTFOUND. */
int sl_ckpt_get(const struct sl_ckpt_store *cs, const char *group, uint32_t shard, uint64_t *seq,
                uint64_t *updated_ms);

/* Calls fn for each durable (group, shard, seq, updated_ms), groups in byte
 * order of their names (strcmp), shards ascending; only `group_or_null`'s
 * when not NULL. The group string is borrowed for the call of fn. fn must not
 * call sl_ckpt_commit or sl_ckpt_close. */
void sl_ckpt_foreach(const struct sl_ckpt_store *cs, const char *group_or_null,
                     void (*fn)(void *ctx, const char *group, uint32_t shard, uint64_t seq,
                                uint64_t updated_ms),
                     void *ctx);

struct sl_ckpt_stats {
    uint32_t groups;                   /* groups in memory (with or without a durable value) */
    uint32_t entries;                  /* (group, shard) pairs in memory */
    uint32_t pending;                  /* commits not yet durable */
    uint64_t commits;                  /* commits accepted */
    uint64_t writes;                   /* log write ops issued (a short write's retry counts) */
    uint64_t fsyncs;                   /* log fdatasync ops issued */
    uint64_t records;                  /* log records written */
    uint64_t compactions;              /* snapshots written */
    uint64_t log_bytes;                /* durable log size */
    uint64_t recovery_truncated_bytes; /* dropped from the log tail by the last open */
    int state;                         /* SL_OK or SL_EFATAL */
    bool parked; /* files closed under cfg.cache's budget (reopened by the next commit) */
};

void sl_ckpt_stats(const struct sl_ckpt_store *cs, struct sl_ckpt_stats *st);

#endif
