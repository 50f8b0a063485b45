/* qstate.h - durable state of a stream's queue groups (competing consumers).
 *
 * One store per stream, in `<data>/streams/<stream>/queues/`: for each queue
 * group its definition and, per shard, an ack floor (every seq below it is
 * done), the acked ranges above the floor, and the delivery counts of the
 * records at or above the floor that are not acked; plus two counters.
 * Format and crash-safety order: storage/qstate.c and docs/FORMAT.md
 * section 6.
 *
 * Threading: a store belongs to the thread that owns its ring; every call is
 * made on that thread, and every callback runs on it from sl_ring_run().
 * Mutations are applied to memory at once (the getters see them) and made
 * durable asynchronously (one write + one fdatasync through the ring per
 * group of mutations); open and compaction are synchronous (see qstate.c).
 */
#ifndef SL_QSTATE_H
#define SL_QSTATE_H

#include "common/ring.h"

#include <stdbool.h>
#include <stdint.h>

#define SL_QSTATE_NAME_MAX   128u  /* bytes of a group or dead-letter stream name, NUL excluded */
#define SL_QSTATE_FILTER_MAX 4096u /* bytes of a filter, NUL excluded */
#define SL_QSTATE_SHARDS_MAX 1024u /* shards of a group (a stream's, closed ones included) */

enum sl_qstate_start {
    SL_QSTART_TRIM_HORIZON = 0,
    SL_QSTART_LATEST = 1,
    SL_QSTART_AT_SEQUENCE = 2,
    SL_QSTART_AFTER_SEQUENCE = 3,
    SL_QSTART_AT_TIMESTAMP = 4,
};

struct sl_qstate;
struct sl_statelog_cache; /* storage/statelog.h */

struct sl_qstate_config {
    uint32_t groups_max;    /* default 256; [1, 1 Mi] */
    uint32_t log_bytes_max; /* compact when the log exceeds this; default 8 MiB; [4 KiB, 1 GiB] */
    uint32_t pending_max;   /* mutations not yet durable; default 65536; [1, 16 Mi] */
    uint32_t ranges_max;    /* acked ranges, and also delivery counts, per (group, shard);
                               default 65536; [1, 16 Mi] */
    uint32_t sync_interval_ms; /* 0 (default): a change is answered once fsynced; else
                                  once written, fsynced within this (flush = interval) */
    /* The descriptor budget shared with the ring's other stores (borrowed, the
     * ring's thread only): an idle store's files are closed, reopened by its
     * next mutation. NULL (default): open until closed. */
    struct sl_statelog_cache *cache;
};

void sl_qstate_config_default(struct sl_qstate_config *cfg);

struct sl_qgroup_def {
    char name[SL_QSTATE_NAME_MAX + 1];
    uint32_t visibility_timeout_ms, max_deliveries, max_inflight;
    char dead_letter_stream[SL_QSTATE_NAME_MAX + 1]; /* "" allowed */
    bool ordered;
    char *filter;        /* JSON text or NULL (<= SL_QSTATE_FILTER_MAX bytes); in a def the
                            store returns, owned by the store */
    bool filter_body;    /* the filter reads the record's value, not its attributes */
    uint32_t start_kind; /* enum sl_qstate_start */
    uint64_t start_seq, start_time_ms;
    uint64_t created_ms;
    uint64_t end_time_ms; /* 0: none; else records appended at or after it are skipped */
};

/* Whether `dir` (borrowed) holds queue-group state: a snapshot, or a log
 * with more than the header of an empty store (sl_statelog_present). A
 * directory without is opened on first use. */
bool sl_qstate_present(const char *dir);

/* Opens (creating `dir` if missing, and fsyncing its parent) the store in
 * `dir` (borrowed for the call) and loads it: the snapshot, then the log; a
 * torn or corrupt log tail is truncated after the last valid record (logged
 * with the byte count). Synchronous; call at start-up. `ring` is borrowed for
 * the store's lifetime. State on disk is never refused for a limit (groups_max
 * or ranges_max lowered since): it is kept and logged; only new growth is
 * refused. Errors: SL_EINVAL (config), SL_ECORRUPT (the snapshot fails its
 * checksum or structure, a valid log record contradicts the state, or the log
 * follows a snapshot that is missing: nothing is loaded, never a silent
 * loss), SL_ENOMEM, SL_EIO, SL_ENOSPC, SL_ESYS. */
int sl_qstate_open(struct sl_ring *ring, const char *dir, const struct sl_qstate_config *cfg,
                   struct sl_qstate **out);

/* Writes the mutations not yet issued, runs the ring until the store's I/O in
 * flight has completed (their callbacks run), and frees the store. NULL-safe.
 * Never call it from a qstate callback. Mutations made from the callbacks it
 * runs get SL_ECLOSED. */
void sl_qstate_close(struct sl_qstate *qs);

/* err: SL_OK once durable; SL_EFATAL when the write or fdatasync failed. */
typedef void (*sl_qstate_cb)(void *ctx, int err);

/* Mutations. Each is applied to memory at once (visible to the getters) and
 * made durable by one write + one fdatasync shared with every other mutation
 * issued before that write; `cb` (may be NULL) runs from the ring loop once
 * it is durable, never from inside the call, in call order. Strings and
 * arrays are borrowed for the call. Errors, returned at once with no side
 * effect: SL_EINVAL (bad name, shard >= the group's shard count, bad
 * definition, first >= end), SL_EEXIST / SL_ENOTFOUND (the group),
 * SL_ELIMIT (groups_max, or ranges_max ranges or counts in the shard; or,
 * with cfg.cache, out of descriptors reopening a parked store: logged naming
 * the limit), SL_EAGAIN (pending_max mutations not yet durable: run the loop,
 * retry), SL_EFATAL (an earlier write or fsync failed, or the log changed on
 * disk while the store was parked: refused until reopened), SL_ECLOSED (from
 * a callback run by sl_qstate_close), SL_EIO / SL_ESYS (reopening a parked
 * store), SL_ENOMEM. */

/* Creates group def->name with `shard_count` (1 .. SL_QSTATE_SHARDS_MAX)
 * shards whose floors start at start_floor[0 .. shard_count). The store
 * copies `def` (and its filter). */
int sl_qstate_create_group(struct sl_qstate *qs, const struct sl_qgroup_def *def,
                           uint32_t shard_count, const uint64_t *start_floor, sl_qstate_cb cb,
                           void *ctx);
/* Deletes the group and all its state; its def pointer becomes invalid. */
int sl_qstate_delete_group(struct sl_qstate *qs, const char *group, sl_qstate_cb cb, void *ctx);
/* Marks [first, end) done; idempotent. Acking the range at the floor
 * advances the floor past every contiguous acked range and drops the counts
 * below it. O(log r + r + c) with r ranges and c counts in the shard. */
int sl_qstate_ack(struct sl_qstate *qs, const char *group, uint32_t shard, uint64_t first,
                  uint64_t end, sl_qstate_cb cb, void *ctx);
/* Sets the delivery count of `seq` (0 removes it). Ignored (still SL_OK, still
 * logged) if seq is already acked. O(log c + c). */
int sl_qstate_set_count(struct sl_qstate *qs, const char *group, uint32_t shard, uint64_t seq,
                        uint32_t count, sl_qstate_cb cb, void *ctx);
/* The group gains shards [its count, shard_count), nothing acked in them:
 * its stream was resharded (#16). SL_EINVAL when shard_count is not more
 * than the group's or passes SL_QSTATE_SHARDS_MAX. */
int sl_qstate_grow_group(struct sl_qstate *qs, const char *group, uint32_t shard_count,
                         sl_qstate_cb cb, void *ctx);
/* Adds to the group's counters (saturating). */
int sl_qstate_add_counters(struct sl_qstate *qs, const char *group, uint64_t dead_lettered,
                           uint64_t filtered, sl_qstate_cb cb, void *ctx);

/* A barrier: true when `cb` runs once every mutation made so far is durable (or failed: with
 * the error); false when none is waiting (all durable, or the store failed) and cb will not
 * run. */
bool sl_qstate_sync(struct sl_qstate *qs, sl_qstate_cb cb, void *ctx);

/* Getters: memory only (they include mutations not yet durable). An unknown
 * group or shard reads as empty: floor 0, nothing acked, counts 0. */
/* The group's definition (owned by the store, valid until the group is
 * deleted or the store closed), or NULL. O(log g). */
const struct sl_qgroup_def *sl_qstate_group(const struct sl_qstate *qs, const char *group);
/* The group's shard count, 0 if no such group. O(log g). */
uint32_t sl_qstate_shard_count(const struct sl_qstate *qs, const char *group);
/* Calls fn for each group in byte order of names (strcmp). fn must not
 * create or delete groups. */
void sl_qstate_foreach_group(const struct sl_qstate *qs,
                             void (*fn)(void *ctx, const struct sl_qgroup_def *def), void *ctx);
uint64_t sl_qstate_floor(const struct sl_qstate *qs, const char *group, uint32_t shard);
bool sl_qstate_is_acked(const struct sl_qstate *qs, const char *group, uint32_t shard,
                        uint64_t seq);
/* The first seq >= from that is not acked (skips acked ranges): where
 * delivery resumes. */
uint64_t sl_qstate_next_unacked(const struct sl_qstate *qs, const char *group, uint32_t shard,
                                uint64_t from);
/* Delivery count of `seq`; 0 = never delivered (or acked). */
uint32_t sl_qstate_count(const struct sl_qstate *qs, const char *group, uint32_t shard,
                         uint64_t seq);
/* Calls fn for each (seq, count) of the shard in seq order. fn must not
 * mutate the store. */
void sl_qstate_foreach_count(const struct sl_qstate *qs, const char *group, uint32_t shard,
                             void (*fn)(void *ctx, uint64_t seq, uint32_t count), void *ctx);
/* Either out-pointer may be NULL. */
void sl_qstate_counters(const struct sl_qstate *qs, const char *group, uint64_t *dead_lettered,
                        uint64_t *filtered);

struct sl_qstate_stats {
    uint64_t writes;          /* log write ops issued (a short write's retry counts) */
    uint64_t fsyncs;          /* log fdatasync ops issued */
    uint64_t records;         /* log records written */
    uint64_t compactions;     /* snapshots written */
    uint64_t log_bytes;       /* durable log size, header included */
    uint64_t truncated_bytes; /* dropped from the log tail by the last open */
    int state;                /* SL_OK or SL_EFATAL */
    bool parked;              /* files closed under cfg.cache's budget (reopened by use) */
    uint32_t groups;          /* groups in memory */
    uint32_t pending;         /* mutations not yet durable */
    uint64_t mutations;       /* mutations accepted */
    uint64_t ranges;          /* acked ranges above the floors, all groups and shards */
    uint64_t counts;          /* delivery counts held, all groups and shards */
};

void sl_qstate_stats(const struct sl_qstate *qs, struct sl_qstate_stats *out);

#endif
