/* statelog.h - the log + snapshot files under a small durable state store
 * (storage/checkpoint.c, storage/qstate.c).
 *
 * A store keeps its record encoding, its in-memory state and what its
 * snapshot holds; this module owns the files and the write path: a staging
 * batch of encoded records, one ring write + one fdatasync in flight,
 * callbacks in call order once durable, short writes continued, a failed
 * write or fdatasync making the log fatal; opening and replaying the log with
 * torn-tail truncation; cutting the log (with an optional store header); and
 * reading and installing the snapshot (tmp, fsync, rename, fsync dir).
 *
 * Record framing shared by the stores (docs/FORMAT.md sections 4 and 6):
 *   u32 length   the whole record, these 8 bytes included
 *   u32 check    sl_statelog_rec_check(): check32 of bytes [0, 4) then
 *                bytes [8, length)
 * What follows is the store's. A log may start with a store header (its
 * bytes are the store's; this module only writes them after a cut).
 *
 * Descriptor budget (storage/statelog_park.c): a store holds two descriptors,
 * its directory and its log. With cfg.cache set, a store that is idle - nothing
 * staged or in flight, no timer, everything written fdatasynced - may be
 * PARKED: both closed, its staging buffers freed. The store calls
 * sl_statelog_touch before it changes anything for a new record; a parked
 * store's files are reopened there (the log checked to be the file it left, at
 * the size it left: parking happens only when all is durable, so no replay).
 * While a cache holds more than files_max, its least recently used idle stores
 * are parked.
 *
 * Threading: the thread of `ring`; the hooks run on it, from sl_ring_run()
 * (write path) or from the calls below (open). A cache belongs to one ring's
 * thread, like its stores.
 */
#ifndef SL_STATELOG_H
#define SL_STATELOG_H

#include "common/log.h"
#include "common/ring.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SL_STATELOG_REC_HEAD 8u /* u32 length + u32 check */
#define SL_STATELOG_FDS      2u /* what an open store holds: its directory and its log */

struct sl_statelog;

/* The descriptor budget of the stores on one ring (the broker: one for the
 * main loop's checkpoint and queue-state stores). Zeroed by init; a store
 * joins it at open (cfg.cache) and leaves it at fini, so every store using it
 * is closed before the cache goes. */
struct sl_statelog_cache {
    uint32_t files_max;              /* 0: no limit (stores are never parked) */
    uint32_t files;                  /* descriptors of the unparked stores */
    struct sl_statelog *head, *tail; /* unparked stores, most recently used first */
    uint64_t parks;                  /* stores parked (budget, or shed on EMFILE) */
    uint64_t unparks;                /* parked stores reopened by their next use */
};

void sl_statelog_cache_init(struct sl_statelog_cache *c, uint32_t files_max);

/* err: SL_OK once durable (with sync_interval_ms: once written); SL_EFATAL
 * when the write or fdatasync failed. */
typedef void (*sl_statelog_cb)(void *ctx, int err);

struct sl_statelog_config {
    const char *what;     /* names the store in log lines ("checkpoints") */
    const char *log_name; /* file names inside the directory */
    const char *snap_name;
    const char *snap_tmp_name;
    uint32_t rec_min, rec_max; /* bounds of a record's length field; rec_max <= 1 MiB */
    uint64_t snap_bytes_max;   /* a larger snapshot file is damage, not read */
    uint32_t log_bytes_max;    /* compact when the log passes this */
    uint32_t pending_max;      /* records staged or in flight */
    /* 0: a batch's callbacks run once an fdatasync covers it (the default).
     * > 0: they run once it is written (in the page cache: it survives a
     * crash of the process, not a power cut), and an fdatasync follows
     * within this many ms - the broker's `flush = interval` policy. */
    uint32_t sync_interval_ms;
    /* The budget this store's descriptors count against (borrowed; used on
     * the ring's thread only). NULL: none, the files stay open until fini. */
    struct sl_statelog_cache *cache;
    /* Open: applies one record whose length field is in bounds (rec, len
     * borrowed for the call). Sets *valid = false when it fails its check or
     * structure: it and all after it are the torn tail. Another error than
     * SL_OK fails the open. */
    int (*replay)(struct sl_statelog *sl, const uint8_t *rec, uint32_t len, bool *valid);
    /* A batch is durable: its records (borrowed for the call), before its
     * callbacks run. May be NULL. */
    void (*durable)(struct sl_statelog *sl, const uint8_t *recs, uint32_t len);
    /* The log passed log_bytes_max and nothing is in flight: build a snapshot
     * and call sl_statelog_compact. Returns true when the snapshot also holds
     * the staged records (they are then complete without a log write). */
    bool (*compact)(struct sl_statelog *sl);
};

struct sl_statelog_stats {
    uint64_t writes;          /* log write ops issued (a short write's retry counts) */
    uint64_t fsyncs;          /* log fdatasync ops issued */
    uint64_t records;         /* log records written */
    uint64_t compactions;     /* snapshots installed */
    uint64_t log_bytes;       /* durable log size, header included */
    uint64_t truncated_bytes; /* dropped from the log by the last open */
    uint32_t pending;         /* records staged or in flight */
    int state;                /* SL_OK or SL_EFATAL */
    bool parked;              /* its files closed under cfg.cache's budget */
};

struct sl_statelog_pend {
    sl_statelog_cb cb;
    void *ctx;
};

struct sl_statelog_batch {
    struct sl_statelog_pend *p;
    uint32_t count, cap;
    uint32_t marks; /* of count: barriers (sl_statelog_sync), no record of their own */
    uint8_t *buf;   /* the encoded records, back to back */
    uint32_t len, buf_cap;
};

/* Embedded in its store (hooks find the store with sl_container_of). The
 * store may read dir, log_fd and log_bytes; everything else is private.
 * log_fd is open from sl_statelog_open_log on, except while parked (-1). */
struct sl_statelog {
    char *dir;
    int dir_fd;
    int log_fd;
    struct sl_ring *ring;
    struct sl_statelog_config cfg;
    int state;        /* SL_OK or SL_EFATAL */
    bool busy;        /* a batch's write or fdatasync is in flight */
    bool dirty;       /* sync_interval_ms: written since the last fdatasync */
    bool sync_only;   /* the fdatasync in flight covers written batches only */
    bool timer_armed; /* the sync_interval_ms timeout is queued */
    bool sync_due;    /* it expired while a write was in flight */
    bool cancel_armed;
    bool closing;
    uint32_t ops;        /* ring ops in flight */
    uint64_t log_bytes;  /* durable end of the log: the next write's offset */
    uint64_t compact_at; /* compact when log_bytes passes this */
    uint32_t fly_done;   /* bytes of `fly` written so far (short writes) */
    struct sl_statelog_batch stage, fly;
    struct sl_io_op write_op, sync_op, timer_op, cancel_op;
    struct sl_deferred flush;
    struct sl_statelog_stats stats;
    /* the budget (statelog_park.c) */
    struct sl_statelog *lru_prev, *lru_next; /* in cfg.cache's list while in_lru */
    bool in_lru;                             /* charged SL_STATELOG_FDS to cfg.cache */
    bool parked;                /* dir_fd and log_fd closed, buffers freed: reopened by touch */
    bool trim_due;              /* the deferred flush also trims the cache (over budget) */
    uint64_t log_dev, log_ino;  /* the log file a parked store left */
    struct sl_log_ratelimit rl; /* "cannot reopen": out of descriptors repeats */
};

/* check32 of a framed record (len >= SL_STATELOG_REC_HEAD). */
uint32_t sl_statelog_rec_check(const uint8_t *rec, uint32_t len);

/* Creates `dir` (borrowed) if missing, opens it and removes a leftover
 * snapshot tmp file. `cfg` is copied. fini is safe after any result.
 * Errors: SL_ENOMEM, SL_EINVAL, SL_EIO, SL_ENOSPC, SL_ESYS. */
int sl_statelog_init(struct sl_statelog *sl, struct sl_ring *ring, const char *dir,
                     const struct sl_statelog_config *cfg);
/* Whether `dir` (borrowed) holds a store's state: its snapshot, or a log
 * with more than `empty_head` (head_len bytes, <= 64; the log of an empty
 * store). False when `dir` or both files are missing, true on any other
 * error (the open then names it). A few syscalls, no store opened: the
 * broker opens a stream's stores at start-up only when this says so. */
bool sl_statelog_present(const char *dir, const char *log_name, const char *snap_name,
                         const uint8_t *empty_head, uint32_t head_len);
/* Reads the snapshot, if there is one, and hands it to `parse` (image
 * borrowed for the call; *why names a SL_ECORRUPT). SL_OK without a file.
 * Errors: parse's, SL_ECORRUPT (also: too large; logged), SL_ENOMEM, SL_EIO. */
int sl_statelog_load_snap(struct sl_statelog *sl,
                          int (*parse)(struct sl_statelog *sl, const uint8_t *image, size_t len,
                                       const char **why));
/* Opens the log, or creates it holding `head` (head_len bytes, may be 0)
 * and fsyncs the directory; *size is its size. Errors: SL_EIO, SL_ENOSPC,
 * SL_ESYS. */
int sl_statelog_open_log(struct sl_statelog *sl, const uint8_t *head, uint32_t head_len,
                         uint64_t *size);
/* Empties the log and writes `head`, each step fsynced, so no old record
 * ever follows a new header. `dropped` bytes are counted as truncated by
 * recovery. Errors (logged): SL_EIO, SL_ENOSPC, SL_ESYS. */
int sl_statelog_reset(struct sl_statelog *sl, const uint8_t *head, uint32_t head_len,
                      uint64_t dropped);
/* Replays the records in [start, size) through cfg.replay, then truncates
 * the log after the last valid one (logged) and fsyncs it. Errors: the
 * hook's, SL_ENOMEM, SL_EIO, SL_ESYS. */
int sl_statelog_replay(struct sl_statelog *sl, uint64_t start, uint64_t size);
/* Open is done: compacts if the log is already over log_bytes_max.
 * Errors: SL_EIO (the compaction made the log fatal). */
int sl_statelog_start(struct sl_statelog *sl);

/* Drains: issues what is staged, runs the ring until the log's I/O has
 * completed (callbacks run; new appends get SL_ECLOSED), then frees. The
 * store's state must still be there. NULL-safe after init; idempotent. */
void sl_statelog_fini(struct sl_statelog *sl);

/* Whether one more record may be staged: SL_OK, or SL_EFATAL, SL_ECLOSED,
 * SL_EAGAIN (pending_max reached). No side effect. */
int sl_statelog_admit(const struct sl_statelog *sl);
/* After admit said SL_OK, before the store changes anything for the record:
 * reopens the files of a parked store and makes it the cache's most recently
 * used (parking others while the cache is over budget). Out of descriptors,
 * it parks idle stores of the cache and tries once more. Errors, the store
 * unchanged: SL_ELIMIT (out of descriptors; logged, rate-limited, naming the
 * limit), SL_EIO, SL_ESYS (reopening failed; logged); SL_EFATAL (the log is
 * missing or is not the file, or not the size, the store left: logged, the
 * store refuses writes from now on rather than write at a wrong offset). */
int sl_statelog_touch(struct sl_statelog *sl);
/* Room for one more record of up to `len` bytes. Errors: SL_ENOMEM. */
int sl_statelog_reserve(struct sl_statelog *sl, uint32_t len);
/* Where the next record is encoded (room from sl_statelog_reserve). */
uint8_t *sl_statelog_tail(struct sl_statelog *sl);
/* Stages the `len` bytes encoded at the tail (the store is not parked:
 * sl_statelog_touch came first); `cb` (may be NULL) runs once
 * they are durable, in append order, from the ring loop; the write is
 * issued at the end of the loop tick, shared with every record staged
 * before it. */
void sl_statelog_append(struct sl_statelog *sl, uint32_t len, sl_statelog_cb cb, void *ctx);
/* A barrier: true when `cb` will run (from the ring loop, in append order) once every record
 * appended so far is durable - or failed, with the error; false when none is waiting (all is
 * durable, or the store failed: its state says which) and cb will not run. */
bool sl_statelog_sync(struct sl_statelog *sl, sl_statelog_cb cb, void *ctx);

/* From cfg.compact only. Installs `image` (borrowed) as the snapshot: tmp,
 * fsync, rename, fsync dir; then cuts the log to `head`. build_rc is the
 * result of building the image: an error skips the write. A failure before
 * the rename is logged and retried after another log_bytes_max; after it,
 * the log is fatal. Returns SL_OK when the snapshot is in place and the log
 * cut, or the error. */
int sl_statelog_compact(struct sl_statelog *sl, int build_rc, const uint8_t *image,
                        size_t image_len, const uint8_t *head, uint32_t head_len);

void sl_statelog_stats(const struct sl_statelog *sl, struct sl_statelog_stats *st);

#endif
