/* statelog.c - the log + snapshot files under a small durable state store.
 *
 * Files in the store's directory (the formats are the store's: docs/FORMAT.md
 * sections 4 and 6): <log>, append-only framed records after an optional
 * store header; <snap>, the whole state at a compaction; <snap>.tmp, a
 * snapshot being written, removed at open.
 *
 * Write path (group commit). A record is encoded into the staging batch and
 * the flush is queued at the end of the loop tick (sl_ring_defer). One batch
 * is in flight at a time: one write of all its records at the end of the log
 * (a short write is continued where it stopped), then one fdatasync; when
 * that completes the store's `durable` hook sees the records, then their
 * callbacks run in append order. Records appended meanwhile (also from those
 * callbacks) form the next batch. A failed write or fdatasync is not retried:
 * every record not yet durable fails with SL_EFATAL and new ones are refused
 * until the store is reopened.
 *
 * Compaction is SYNCHRONOUS (it blocks the loop thread; once per
 * log_bytes_max of records), when the log has passed log_bytes_max and no
 * batch is in flight (right after an fdatasync completed, and at open):
 *   write <snap>.tmp -> fsync it -> rename over <snap> -> fsync the directory
 *   -> truncate the log to 0 -> fsync -> [write the store header -> fsync].
 * The log is never cut before the rename is durable, and a new header never
 * precedes old records. A failure before the rename changes nothing recovery
 * reads: it is logged and retried after another log_bytes_max; after the
 * rename, the log is fatal.
 *
 * Recovery: the store reads the snapshot, then the log is replayed up to the
 * first record whose length is out of bounds, is incomplete, or that the
 * store finds invalid; the log is truncated there (the dropped byte count is
 * logged) and fsynced. A torn group-commit write can persist its pages in any
 * order, so everything after a bad record is dropped with it.
 *
 * Descriptors: with a cache (cfg.cache), an idle store's files are closed and
 * reopened by its next write (storage/statelog_park.c): only a store with
 * nothing staged, in flight or written but not fdatasynced is parked, so the
 * order above holds unchanged and reopening replays nothing.
 *
 * Threading: everything runs on the thread of the log's ring.
 */
#include "storage/statelog_int.h"

#include "common/assert.h"
#include "common/checksum.h"
#include "common/error.h"
#include "common/fileio.h"
#include "common/log.h"
#include "common/ring.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define REPLAY_CHUNK_BYTES (1u << 20)
#define PEND_FIRST         64u
#define STAGE_BYTES_FIRST  (16u << 10)

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

uint32_t sl_statelog_rec_check(const uint8_t *rec, uint32_t len)
{
    SL_ASSERT(len >= SL_STATELOG_REC_HEAD);
    struct sl_checksum_state st;
    sl_checksum_init(&st);
    sl_checksum_update(&st, rec, 4);
    sl_checksum_update(&st, rec + SL_STATELOG_REC_HEAD, len - SL_STATELOG_REC_HEAD);
    return (uint32_t)sl_checksum_final(&st);
}

static int grow(void **arr, uint32_t *cap, uint32_t need, size_t elem, uint32_t first)
{
    if (need <= *cap) {
        return SL_OK;
    }
    uint32_t n = *cap > 0 ? *cap : first;
    while (n < need) {
        n = n > UINT32_MAX / 2 ? UINT32_MAX : n * 2;
    }
    void *p = realloc(*arr, (size_t)n * elem);
    if (p == NULL) {
        return SL_ENOMEM;
    }
    *arr = p;
    *cap = n;
    return SL_OK;
}

/* ------------------------------------------------------------------ */
/* write path                                                          */

static void fail_batch(struct sl_statelog_batch *b, int err)
{
    uint32_t n = b->count;
    b->count = 0;
    b->marks = 0;
    b->len = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (b->p[i].cb != NULL) {
            b->p[i].cb(b->p[i].ctx, err);
        }
    }
}

static void go_fatal(struct sl_statelog *sl, const char *what, const char *why)
{
    if (sl->state != SL_EFATAL) {
        sl_error("storage",
                 "%s: %s %s failed: %s; writes are refused from now on (reopen to recover what "
                 "is durable)",
                 sl->dir, sl->cfg.what, what, why);
    }
    sl->state = SL_EFATAL;
    sl->busy = false;
    fail_batch(&sl->fly, SL_EFATAL);
    fail_batch(&sl->stage, SL_EFATAL);
}

static void write_issue(struct sl_statelog *sl)
{
    SL_ASSERT(sl->fly_done < sl->fly.len);
    sl->ops++;
    sl->stats.writes++;
    sl_ring_write(sl->ring, &sl->write_op, sl->log_fd, sl->fly.buf + sl->fly_done,
                  sl->fly.len - sl->fly_done, sl->log_bytes + sl->fly_done);
}

/* Makes the staged batch the one in flight (an empty batch takes its place). */
static void stage_to_fly(struct sl_statelog *sl)
{
    SL_ASSERT(sl->fly.count == 0 && !sl->busy);
    struct sl_statelog_batch t = sl->fly;
    sl->fly = sl->stage;
    sl->stage = t;
    sl->stage.count = 0;
    sl->stage.marks = 0;
    sl->stage.len = 0;
    sl->busy = true;
}

/* Issues the staged records as one write (then one fdatasync). */
static void issue(struct sl_statelog *sl)
{
    if (sl->busy || sl->stage.count == 0 || sl->state != SL_OK) {
        return;
    }
    /* Staged records keep a store from being parked (sl_statelog_touch
     * reopened it before the first of them). */
    SL_ASSERT(sl->stage.len > 0 && !sl->parked && sl->log_fd >= 0);
    stage_to_fly(sl);
    sl->fly_done = 0;
    write_issue(sl);
}

static void fly_written(struct sl_statelog *sl);
static void sync_written(struct sl_statelog *sl);

static void flush_deferred(struct sl_deferred *d)
{
    struct sl_statelog *sl = sl_container_of(d, struct sl_statelog, flush);
    issue(sl);
    if (sl->trim_due) {
        sl->trim_due = false;
        statelog_cache_trim(sl); /* outside any callback: parking is safe here */
    }
}

static void write_done(struct sl_io_op *op, int res)
{
    struct sl_statelog *sl = sl_container_of(op, struct sl_statelog, write_op);
    sl->ops--;
    if (res <= 0) {
        go_fatal(sl, "log write", strerror(res < 0 ? -res : EIO));
        return;
    }
    sl->fly_done += (uint32_t)res;
    if (sl->fly_done < sl->fly.len) {
        write_issue(sl); /* short write: continue where it stopped */
        return;
    }
    if (sl->cfg.sync_interval_ms == 0) {
        sl->ops++;
        sl->stats.fsyncs++;
        sl_ring_fsync(sl->ring, &sl->sync_op, sl->log_fd, 1);
        return;
    }
    /* Interval mode: written is enough to answer; an fdatasync follows
     * within sync_interval_ms (the timer), or now if one was due. */
    sl->dirty = true;
    fly_written(sl);
    if (sl->sync_due) {
        sl->sync_due = false;
        sync_written(sl); /* staged records wait for it: syncs never starve */
    } else if (!sl->timer_armed && sl->state == SL_OK && !sl->closing) {
        sl->timer_armed = true;
        sl->ops++;
        sl_ring_timeout(sl->ring, &sl->timer_op, (uint64_t)sl->cfg.sync_interval_ms * 1000000u);
    }
    issue(sl);
}

/* Interval mode: an fdatasync of what is written, nothing waiting on it. */
static void sync_written(struct sl_statelog *sl)
{
    if (sl->busy || !sl->dirty || sl->state != SL_OK) {
        return;
    }
    sl->busy = true;
    sl->sync_only = true;
    sl->dirty = false;
    sl->ops++;
    sl->stats.fsyncs++;
    sl_ring_fsync(sl->ring, &sl->sync_op, sl->log_fd, 1);
}

static void timer_done(struct sl_io_op *op, int res)
{
    (void)res;
    struct sl_statelog *sl = sl_container_of(op, struct sl_statelog, timer_op);
    sl->ops--;
    sl->timer_armed = false;
    if (sl->busy) {
        sl->sync_due = sl->dirty || !sl->sync_only; /* after the write in flight */
        return;
    }
    sync_written(sl);
}

static void cancel_done(struct sl_io_op *op, int res)
{
    (void)res;
    struct sl_statelog *sl = sl_container_of(op, struct sl_statelog, cancel_op);
    sl->ops--;
}

/* Runs the callbacks of `fly` (durable) with SL_OK. busy stays set, so the
 * records the callbacks append go to `stage`. */
static void complete_fly(struct sl_statelog *sl)
{
    uint32_t n = sl->fly.count;
    sl->fly.count = 0;
    sl->fly.marks = 0;
    sl->fly.len = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (sl->fly.p[i].cb != NULL) {
            sl->fly.p[i].cb(sl->fly.p[i].ctx, SL_OK);
        }
    }
    sl->busy = false;
}

static void sync_done(struct sl_io_op *op, int res)
{
    struct sl_statelog *sl = sl_container_of(op, struct sl_statelog, sync_op);
    sl->ops--;
    if (res < 0) {
        go_fatal(sl, "log fdatasync", strerror(-res));
        return;
    }
    if (sl->sync_only) {
        sl->sync_only = false;
        sl->busy = false;
        issue(sl);
        statelog_settle(sl);
        return;
    }
    fly_written(sl);
    issue(sl);
    statelog_settle(sl); /* may be idle now: back within the budget */
}

/* The batch in flight is complete (durable, or written in interval mode):
 * the log grows, its callbacks run, and a due compaction happens. */
static void fly_written(struct sl_statelog *sl)
{
    sl->log_bytes += sl->fly.len;
    sl->stats.records += sl->fly.count - sl->fly.marks;
    if (sl->cfg.durable != NULL) {
        sl->cfg.durable(sl, sl->fly.buf, sl->fly.len);
    }
    complete_fly(sl);
    if (sl->state == SL_OK && sl->log_bytes > sl->compact_at && sl->cfg.compact(sl)) {
        /* The snapshot holds the staged records: durable without a write. */
        stage_to_fly(sl);
        complete_fly(sl);
    }
}

int sl_statelog_admit(const struct sl_statelog *sl)
{
    if (sl->state != SL_OK) {
        return SL_EFATAL;
    }
    if (sl->closing) {
        return SL_ECLOSED;
    }
    if (sl->stage.count + sl->fly.count >= sl->cfg.pending_max) {
        return SL_EAGAIN;
    }
    return SL_OK;
}

int sl_statelog_reserve(struct sl_statelog *sl, uint32_t len)
{
    SL_ASSERT(len >= sl->cfg.rec_min && len <= sl->cfg.rec_max);
    struct sl_statelog_batch *b = &sl->stage;
    int rc = grow((void **)&b->p, &b->cap, b->count + 1, sizeof(*b->p), PEND_FIRST);
    if (rc == SL_OK) {
        rc = grow((void **)&b->buf, &b->buf_cap, b->len + len, 1, STAGE_BYTES_FIRST);
    }
    return rc;
}

uint8_t *sl_statelog_tail(struct sl_statelog *sl)
{
    return sl->stage.buf + sl->stage.len;
}

void sl_statelog_append(struct sl_statelog *sl, uint32_t len, sl_statelog_cb cb, void *ctx)
{
    struct sl_statelog_batch *b = &sl->stage;
    SL_ASSERT(b->count < b->cap && b->len + len <= b->buf_cap && !sl->parked);
    /* Check both sides: the framing the store wrote is the one replay reads. */
    const uint8_t *rec = b->buf + b->len;
    SL_ASSERT(len >= sl->cfg.rec_min && len <= sl->cfg.rec_max && get_u32(rec) == len &&
              get_u32(rec + 4) == sl_statelog_rec_check(rec, len));
    b->len += len;
    b->p[b->count++] = (struct sl_statelog_pend){.cb = cb, .ctx = ctx};
    sl_ring_defer(sl->ring, &sl->flush);
}

bool sl_statelog_sync(struct sl_statelog *sl, sl_statelog_cb cb, void *ctx)
{
    /* The newest records are staged, else in flight: the barrier completes with them. (A
     * pending entry without bytes: the write path counts entries, never their records.) */
    struct sl_statelog_batch *b = sl->stage.count > 0 ? &sl->stage
                                  : sl->fly.count > 0 ? &sl->fly
                                                      : NULL;
    if (b == NULL || sl->state != SL_OK ||
        grow((void **)&b->p, &b->cap, b->count + 1, sizeof(*b->p), PEND_FIRST) != SL_OK) {
        return false;
    }
    b->p[b->count++] = (struct sl_statelog_pend){.cb = cb, .ctx = ctx};
    b->marks++;
    return true;
}

/* ------------------------------------------------------------------ */
/* log and snapshot files                                              */

/* Cuts the log to `head`; *what names the step that failed. */
static int log_cut(struct sl_statelog *sl, const uint8_t *head, uint32_t head_len,
                   const char **what)
{
    *what = "log truncate";
    if (sl_ftruncate(sl->log_fd, 0) != 0) {
        return sl_err_from_errno(errno);
    }
    *what = "log fsync after the truncate";
    int rc = sl_fsync_fd(sl->log_fd);
    if (rc == SL_OK && head_len > 0) {
        *what = "log header write";
        rc = sl_pwrite_full(sl->log_fd, head, head_len, 0);
        if (rc == SL_OK) {
            *what = "log fsync after the header";
            rc = sl_fsync_fd(sl->log_fd);
        }
    }
    if (rc == SL_OK) {
        sl->log_bytes = head_len;
    }
    return rc;
}

int sl_statelog_reset(struct sl_statelog *sl, const uint8_t *head, uint32_t head_len,
                      uint64_t dropped)
{
    const char *what = NULL;
    sl->stats.truncated_bytes += dropped;
    int rc = log_cut(sl, head, head_len, &what);
    if (rc != SL_OK) {
        sl_error("storage", "%s/%s: %s failed: %s", sl->dir, sl->cfg.log_name, what,
                 sl_strerror(rc));
    }
    return rc;
}

int sl_statelog_open_log(struct sl_statelog *sl, const uint8_t *head, uint32_t head_len,
                         uint64_t *size)
{
    sl->log_fd = openat(sl->dir_fd, sl->cfg.log_name, O_RDWR | O_CLOEXEC);
    if (sl->log_fd < 0 && errno == ENOENT) {
        sl->log_fd =
            sl_openat(sl->dir_fd, sl->cfg.log_name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (sl->log_fd < 0) {
            return sl_err_from_errno(errno);
        }
        int rc = head_len > 0 ? sl_statelog_reset(sl, head, head_len, 0) : SL_OK;
        *size = head_len;
        return rc == SL_OK ? sl_fsync_fd(sl->dir_fd) : rc; /* the new entry is durable */
    }
    struct stat st;
    if (sl->log_fd < 0 || fstat(sl->log_fd, &st) != 0) {
        return sl_err_from_errno(errno);
    }
    *size = (uint64_t)st.st_size;
    return SL_OK;
}

/* Applies the valid records from `start`; *end is the offset after the last. */
static int replay_range(struct sl_statelog *sl, uint64_t start, uint64_t file_size, uint64_t *end)
{
    uint8_t *buf = malloc(REPLAY_CHUNK_BYTES);
    if (buf == NULL) {
        return SL_ENOMEM;
    }
    uint64_t base = start; /* file offset of buf[0] */
    size_t have = 0, off = 0;
    int rc = SL_OK;
    bool valid = true;
    for (;;) {
        while (have - off >= 4) {
            uint32_t len = get_u32(buf + off);
            if (len < sl->cfg.rec_min || len > sl->cfg.rec_max) {
                valid = false;
                break;
            }
            if (have - off < len) {
                break;
            }
            rc = sl->cfg.replay(sl, buf + off, len, &valid);
            if (rc != SL_OK) {
                free(buf);
                return rc;
            }
            if (!valid) {
                break;
            }
            off += len;
        }
        if (!valid || base + have >= file_size) {
            break;
        }
        memmove(buf, buf + off, have - off);
        base += off;
        have -= off;
        off = 0;
        size_t want = REPLAY_CHUNK_BYTES - have;
        if (want > file_size - base - have) {
            want = (size_t)(file_size - base - have);
        }
        size_t got = 0;
        rc = sl_pread_full(sl->log_fd, buf + have, want, base + have, &got);
        if (rc != SL_OK || got == 0) {
            break;
        }
        have += got;
    }
    free(buf);
    *end = base + off;
    return rc;
}

int sl_statelog_replay(struct sl_statelog *sl, uint64_t start, uint64_t size)
{
    SL_ASSERT(start <= size);
    uint64_t end = 0;
    int rc = replay_range(sl, start, size, &end);
    if (rc != SL_OK) {
        return rc;
    }
    SL_ASSERT(end >= start && end <= size);
    if (end < size) {
        sl->stats.truncated_bytes += size - end;
        sl_warn("storage",
                "%s/%s: truncated %" PRIu64 " bytes of torn or corrupt tail at offset %" PRIu64,
                sl->dir, sl->cfg.log_name, size - end, end);
        if (sl_ftruncate(sl->log_fd, (off_t)end) != 0) {
            return sl_err_from_errno(errno);
        }
        rc = sl_fsync_fd(sl->log_fd);
    }
    sl->log_bytes = end;
    return rc;
}

int sl_statelog_load_snap(struct sl_statelog *sl,
                          int (*parse)(struct sl_statelog *sl, const uint8_t *image, size_t len,
                                       const char **why))
{
    int fd = openat(sl->dir_fd, sl->cfg.snap_name, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return errno == ENOENT ? SL_OK : sl_err_from_errno(errno);
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int rc = sl_err_from_errno(errno);
        close(fd);
        return rc;
    }
    const char *why = "larger than any snapshot";
    int rc = SL_ECORRUPT;
    uint8_t *buf = NULL;
    size_t size = (size_t)st.st_size;
    if ((uint64_t)st.st_size <= sl->cfg.snap_bytes_max) {
        buf = malloc(size > 0 ? size : 1);
        size_t got = 0;
        rc = buf == NULL ? SL_ENOMEM : sl_pread_full(fd, buf, size, 0, &got);
        if (rc == SL_OK && got != size) {
            rc = SL_EIO;
        }
        if (rc == SL_OK) {
            rc = parse(sl, buf, size, &why);
        }
    }
    free(buf);
    close(fd);
    if (rc == SL_ECORRUPT) {
        sl_error("storage",
                 "%s/%s: snapshot is corrupt (%s); refusing to open the %s rather than lose "
                 "them: restore the file, or move it away to start without them",
                 sl->dir, sl->cfg.snap_name, why, sl->cfg.what);
    }
    return rc;
}

static int snap_write_tmp(struct sl_statelog *sl, const uint8_t *buf, size_t len)
{
    int fd = sl_openat(sl->dir_fd, sl->cfg.snap_tmp_name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                       0644);
    if (fd < 0) {
        return sl_err_from_errno(errno);
    }
    int rc = sl_pwrite_full(fd, buf, len, 0);
    if (rc == SL_OK) {
        rc = sl_fsync_fd(fd);
    }
    close(fd);
    return rc;
}

int sl_statelog_compact(struct sl_statelog *sl, int build_rc, const uint8_t *image,
                        size_t image_len, const uint8_t *head, uint32_t head_len)
{
    SL_ASSERT(!sl->busy && sl->state == SL_OK && sl->fly.count == 0);
    int rc = build_rc;
    if (rc == SL_OK) {
        rc = snap_write_tmp(sl, image, image_len);
    }
    if (rc == SL_OK &&
        sl_renameat(sl->dir_fd, sl->cfg.snap_tmp_name, sl->dir_fd, sl->cfg.snap_name) != 0) {
        rc = sl_err_from_errno(errno);
    }
    if (rc != SL_OK) {
        /* Nothing changed on disk that recovery reads: keep the log. */
        (void)sl_unlinkat(sl->dir_fd, sl->cfg.snap_tmp_name, 0);
        sl->compact_at = sl->log_bytes + sl->cfg.log_bytes_max;
        sl_warn("storage",
                "%s: %s compaction failed: %s; the log keeps growing (%" PRIu64
                " bytes), retried at %" PRIu64,
                sl->dir, sl->cfg.what, sl_strerror(rc), sl->log_bytes, sl->compact_at);
        return rc;
    }
    /* The new snapshot is in place; the log must not be cut before the
     * rename is durable. */
    uint64_t cut = sl->log_bytes;
    const char *what = "directory fsync after the snapshot rename";
    rc = sl_fsync_fd(sl->dir_fd);
    if (rc == SL_OK) {
        rc = log_cut(sl, head, head_len, &what);
    }
    if (rc != SL_OK) {
        go_fatal(sl, what, sl_strerror(rc));
        return rc;
    }
    sl_info("storage", "%s: %s compacted (%zu-byte snapshot, %" PRIu64 "-byte log cut)", sl->dir,
            sl->cfg.what, image_len, cut);
    sl->compact_at = sl->cfg.log_bytes_max;
    sl->stats.compactions++;
    return SL_OK;
}

/* ------------------------------------------------------------------ */
/* open and close                                                      */

int sl_statelog_init(struct sl_statelog *sl, struct sl_ring *ring, const char *dir,
                     const struct sl_statelog_config *cfg)
{
    SL_ASSERT(ring != NULL && dir != NULL && cfg != NULL);
    SL_ASSERT(cfg->rec_min >= SL_STATELOG_REC_HEAD && cfg->rec_min <= cfg->rec_max &&
              cfg->rec_max <= REPLAY_CHUNK_BYTES && cfg->pending_max >= 1);
    SL_ASSERT(cfg->replay != NULL && cfg->compact != NULL);
    memset(sl, 0, sizeof(*sl));
    sl->dir_fd = -1;
    sl->log_fd = -1;
    sl->ring = ring;
    sl->cfg = *cfg;
    sl->state = SL_OK;
    sl->write_op.cb = write_done;
    sl->sync_op.cb = sync_done;
    sl->timer_op.cb = timer_done;
    sl->cancel_op.cb = cancel_done;
    sl->flush.fn = flush_deferred;
    sl->compact_at = cfg->log_bytes_max;
    sl->rl = (struct sl_log_ratelimit){.interval_ms = 10000, .burst = 5};
    sl->dir = strdup(dir);
    if (sl->dir == NULL) {
        return SL_ENOMEM;
    }
    int rc = sl_mkdir_p(sl->dir);
    if (rc != SL_OK) {
        return rc;
    }
    /* The files are charged at sl_statelog_start; room for them first, so an
     * opening store does not take the budget over. */
    statelog_cache_room(cfg->cache);
    sl->dir_fd = open(sl->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    rc = sl->dir_fd < 0 ? sl_err_from_errno(errno) : SL_OK;
    if (rc == SL_ELIMIT && statelog_cache_shed(sl) > 0) {
        sl->dir_fd = open(sl->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC); /* once */
        rc = sl->dir_fd < 0 ? sl_err_from_errno(errno) : SL_OK;
    }
    if (rc != SL_OK) {
        return rc;
    }
    /* A snapshot being written when the process died: never renamed, so
     * never part of the state. */
    if (sl_unlinkat(sl->dir_fd, sl->cfg.snap_tmp_name, 0) != 0 && errno != ENOENT) {
        return sl_err_from_errno(errno);
    }
    return SL_OK;
}

bool sl_statelog_present(const char *dir, const char *log_name, const char *snap_name,
                         const uint8_t *empty_head, uint32_t head_len)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        return errno != ENOENT; /* another error: let the open name it */
    }
    struct stat sb;
    bool present = fstatat(dfd, snap_name, &sb, 0) == 0 || errno != ENOENT;
    if (!present && fstatat(dfd, log_name, &sb, 0) != 0) {
        present = errno != ENOENT;
    } else if (!present && sb.st_size != 0) {
        present = true;
        uint8_t head[64];
        int fd = head_len <= sizeof(head) && (uint64_t)sb.st_size == head_len
                     ? openat(dfd, log_name, O_RDONLY | O_CLOEXEC)
                     : -1;
        size_t n = 0;
        if (fd >= 0 && sl_pread_full(fd, head, head_len, 0, &n) == SL_OK && n == head_len &&
            memcmp(head, empty_head, head_len) == 0) {
            present = false; /* the header of an empty store alone */
        }
        if (fd >= 0) {
            close(fd);
        }
    }
    close(dfd);
    return present;
}

int sl_statelog_start(struct sl_statelog *sl)
{
    SL_ASSERT(!sl->busy && sl->stage.count == 0 && sl->log_fd >= 0 && !sl->in_lru);
    statelog_lru_use(sl); /* its files count from here (fini uncharges them) */
    sl->compact_at = sl->cfg.log_bytes_max;
    if (sl->log_bytes > sl->compact_at) {
        (void)sl->cfg.compact(sl);
        if (sl->state != SL_OK) {
            return SL_EIO;
        }
    }
    return SL_OK;
}

void sl_statelog_fini(struct sl_statelog *sl)
{
    if (sl == NULL) {
        return;
    }
    sl->closing = true;
    /* Write what is staged, make it durable (interval mode: the last
     * fdatasync now, the timer cancelled) and wait for our I/O; the
     * deferred flush must also have run before the memory goes. */
    while (sl->ops > 0 || sl->flush.queued || (sl->stage.count > 0 && sl->state == SL_OK) ||
           (sl->dirty && sl->state == SL_OK)) {
        issue(sl);
        if (!sl->busy && sl->stage.count == 0) {
            sync_written(sl);
        }
        if (sl->timer_armed && !sl->cancel_armed) {
            sl->cancel_armed = true;
            sl->ops++;
            sl_ring_cancel(sl->ring, &sl->cancel_op, &sl->timer_op);
        }
        sl_ring_run(sl->ring, sl->ops > 0 ? 1 : 0, 0);
    }
    SL_ASSERT(sl->fly.count == 0 && sl->stage.count == 0);
    SL_ASSERT(!sl->parked || (sl->log_fd < 0 && sl->dir_fd < 0 && !sl->in_lru));
    statelog_lru_remove(sl);
    free(sl->stage.p);
    free(sl->stage.buf);
    free(sl->fly.p);
    free(sl->fly.buf);
    sl->stage = (struct sl_statelog_batch){0};
    sl->fly = (struct sl_statelog_batch){0};
    if (sl->log_fd >= 0) {
        close(sl->log_fd);
        sl->log_fd = -1;
    }
    if (sl->dir_fd >= 0) {
        close(sl->dir_fd);
        sl->dir_fd = -1;
    }
    free(sl->dir);
    sl->dir = NULL;
}

void sl_statelog_stats(const struct sl_statelog *sl, struct sl_statelog_stats *st)
{
    *st = sl->stats;
    st->pending = sl->stage.count + sl->fly.count;
    st->log_bytes = sl->log_bytes;
    st->state = sl->state;
    st->parked = sl->parked;
}
