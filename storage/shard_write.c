/* shard_write.c - the shard log's write path.
 *
 * Write path. An append validates the batch, copies it into the shard's
 * staging buffer (one of write_bufs), stamps base sequence and append time,
 * and queues a pending ack. At the end of the loop tick (sl_ring_defer) the
 * staging buffer becomes one io_uring write; writes are never linked, several
 * may be in flight, and they complete in any order: written_pos advances over
 * the contiguous completed prefix (the in-flight FIFO). One fdatasync per
 * shard is in flight at a time and covers every write completed before it
 * was issued (group commit). Acks run in append order once the batch is
 * durable (ALWAYS: synced_pos >= end and the segment's directory entry is
 * synced) or written (INTERVAL).
 *
 * Crash-safety order:
 *   new segment: create .log/.idx -> fsync(dir) before any batch in it is
 *     acknowledged as durable;
 *   data: write -> fdatasync(log) -> ack;
 *   index: an entry is written to .idx only after the data it points to is
 *     durable, so any entry found on disk points at durable batches;
 *   seal (roll): last data fdatasync -> zero tail cut (ftruncate) ->
 *     fdatasync(log) -> final entry written -> fsync(idx).
 *   A sealed segment is every segment but the newest, and is trusted.
 *   zeroed run-ahead (shard_prezero.c): zeros only past every data byte
 *     staged or submitted; a data write never issued over a zero write in
 *     flight; no ack waits for a zero op.
 * Recovery reads the active (newest) segment from its last index entry whose
 * batch verifies, checks every batch after it, truncates after the last valid
 * one (logging the byte count, unless all that follows is zeros: the
 * run-ahead, cut quietly) and fdatasyncs.
 *
 * Errors. A failed write or fsync (other than ENOSPC on write) makes the shard
 * refuse writes for good (SL_EFATAL): pending appends fail, nothing is
 * retried. ENOSPC on a write fails that batch and every later one, rewinds
 * the sequence and the file to the last good batch, and lets the next append
 * try again. Reads keep working in both cases. Running out of descriptors
 * (EMFILE/ENFILE) when a roll creates the new segment's files is no I/O
 * error: idle shards of the loop are parked to free some, and if that is not
 * enough the batches waiting for the files fail with SL_ELIMIT, the sequence
 * rewinds, and the next append creates the files first (owe_files). The
 * crash-safety order above is unchanged: the files still come only after the
 * seal, and the directory fsync before any ack in them.
 */
#include "storage/shard_int.h"

#include "common/assert.h"
#include "common/checksum.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/fileio.h"
#include "common/log.h"
#include "common/ring.h"
#include "storage/batch.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define SEG_FILES_FDS 3u /* a new segment's files: its .log and .idx (and direct: O_DIRECT .log) */

static void wbuf_release(struct sl_shard *s, struct wbuf *w);
static void persist_index(struct sl_shard *s, struct segment *g);
static void process_acks(struct sl_shard *s);

/* The end of an I/O completion: the next fsync or seal step, and - if that left
 * the shard quiet while the loop's descriptor budget is exceeded - a trim at the
 * end of the tick (shard_settle). */
static void after_io(struct sl_shard *s)
{
    shard_maybe_sync(s);
    shard_settle(s);
}

static void pend_pop(struct sl_shard *s)
{
    s->pend_head = (s->pend_head + 1) % s->pend_cap;
    s->pend_len--;
    s->pend_written -= s->pend_written > 0 ? 1 : 0; /* (an acknowledged append was written) */
}

/* Fails every pending append from index `from` on (newest last), calling
 * their callbacks oldest first. */
void shard_fail_pending_from(struct sl_shard *s, uint32_t from, int err)
{
    uint32_t n = s->pend_len - from;
    for (uint32_t i = from; i < s->pend_len; i++) {
        s->pend_durable -= pend_at(s, i)->durable ? 1 : 0;
    }
    s->pend_len = from;
    if (s->pend_written > from) {
        s->pend_written = from; /* (written_seq stays: what it covers was in the file) */
    }
    for (uint32_t i = 0; i < n; i++) {
        struct pending p = s->pend[(s->pend_head + from + i) % s->pend_cap];
        if (p.cb != NULL) {
            p.cb(p.ctx, err, p.base_seq, p.count);
        }
    }
}

void shard_fatal(struct sl_shard *s, const char *what, int errnum)
{
    if (s->state != SL_EFATAL) {
        s->fatal_errno = errnum;
        s->fatal_what = what;
        sl_error("storage",
                 "%s: %s failed: %s; the shard refuses writes from now on (restart to "
                 "recover what is durable)",
                 s->dir, what, strerror(errnum));
    }
    s->state = SL_EFATAL;
    if (s->filling != NULL) {
        /* staged but never written: their pending entries fail below */
        wbuf_release(s, s->filling);
        s->filling = NULL;
    }
    shard_fail_pending_from(s, 0, SL_EFATAL);
}

/* Doubles the pending ring (up to pending_max), keeping its order. */
static int pend_grow(struct sl_shard *s)
{
    SL_ASSERT(s->pend_len == s->pend_cap && s->pend_cap < s->cfg.pending_max);
    uint32_t cap = s->pend_cap == 0 ? PEND_INITIAL : s->pend_cap * 2;
    cap = cap > s->cfg.pending_max ? s->cfg.pending_max : cap;
    struct pending *n = malloc((size_t)cap * sizeof(*n));
    if (n == NULL) {
        return SL_ENOMEM;
    }
    for (uint32_t i = 0; i < s->pend_len; i++) {
        n[i] = *pend_at(s, i);
    }
    free(s->pend);
    s->pend = n;
    s->pend_cap = cap;
    s->pend_head = 0;
    return SL_OK;
}

/* A free staging buffer for `g`, of at least the shard's current buffer size
 * (and of `need` bytes, when that is within write_buf_bytes). The buffer is
 * (re)allocated only while free: no write points into it. */
static struct wbuf *wbuf_take(struct sl_shard *s, struct segment *g, size_t need)
{
    uint32_t want = s->wbuf_size;
    if (need > want && need <= s->cfg.write_buf_bytes) {
        while (want < need) {
            want *= 2;
        }
        want = want > s->cfg.write_buf_bytes ? s->cfg.write_buf_bytes : want;
    }
    for (uint32_t i = 0; i < s->cfg.write_bufs; i++) {
        struct wbuf *w = &s->wbufs[i];
        if (w->state != WBUF_FREE) {
            continue;
        }
        struct sl_shard_cache *c = s->cfg.cache;
        bool direct = shard_direct(s);
        if (w->data == NULL && want == WBUF_INITIAL && c != NULL && c->spare_len > 0 &&
            !direct) {
            w->data = c->spare[--c->spare_len]; /* a parked shard's, pages already in */
            w->data_cap = WBUF_INITIAL;
        }
        if (w->data_cap < want) {
            free(w->data);
            w->data = direct ? shard_dio_alloc(want) : malloc(want);
            w->data_cap = w->data != NULL ? want : 0;
            if (w->data == NULL) {
                return NULL;
            }
        }
        w->state = WBUF_FILLING;
        w->seg = g;
        w->pos = g->bytes;
        w->head = direct ? (uint32_t)(g->bytes % SL_DIO_ALIGN) : 0;
        w->len = 0;
        w->io_len = 0;
        w->done = 0;
        w->err = 0;
        w->cap = w->data_cap;
        s->wbuf_free--;
        return w;
    }
    return NULL;
}

static void wbuf_issue(struct sl_shard *s, struct wbuf *w)
{
    struct segment *g = w->seg;
    SL_ASSERT(seg_write_fd(s, g) >= 0 && !shard_zero_holds(s, w));
    SL_ASSERT(w->io_len >= w->len && w->done < w->io_len);
    if (s->cfg.prezero_bytes > 0 && w->done == 0 && w->pos + w->len > g->zero_end) {
        s->stats.zero_misses++;
    }
    uint64_t at = w->pos - w->head; /* direct: the block under pos */
    if (shard_direct(s) && at + w->io_len > g->zero_end) {
        g->zero_end = at + w->io_len; /* the padding: cut with the zero tail (shard_direct.c) */
    }
    w->issued = true;
    s->ops++;
    s->stats.writes++;
    sl_ring_write(s->ring, &w->op, seg_write_fd(s, g), wbuf_bytes(w) - w->head + w->done,
                  w->io_len - w->done, at + w->done);
}

/* A submitted write may be issued: its files exist, no zero write in flight
 * covers it, and (direct) it is the oldest write in flight - the one before
 * it rewrites the block it starts in (shard_direct.c). */
static bool wbuf_may_issue(const struct sl_shard *s, const struct wbuf *w)
{
    return seg_write_fd(s, w->seg) >= 0 && !shard_zero_holds(s, w) &&
           (!shard_direct(s) || s->fifo[s->fifo_head] == w);
}

static void wbuf_submit(struct sl_shard *s, struct wbuf *w)
{
    SL_ASSERT(w->state == WBUF_FILLING && w->len > 0);
    SL_ASSERT(s->fifo_len < s->cfg.write_bufs);
    w->state = WBUF_INFLIGHT;
    s->fifo[(s->fifo_head + s->fifo_len) % s->cfg.write_bufs] = w;
    s->fifo_len++;
    if (s->filling == w) {
        s->filling = NULL;
    }
    w->issued = false;
    w->io_len = w->len;
    w->submit_ns = sl_clock_mono_ns();
    if (shard_direct(s)) {
        int rc = shard_dio_prepare(s, w);
        if (rc != SL_OK) {
            shard_fatal(s, "direct write staging (reading back the last block)",
                        rc == SL_ENOMEM ? ENOMEM : EIO);
            return;
        }
    }
    if (wbuf_may_issue(s, w)) {
        wbuf_issue(s, w);
    }
}

/* Issues g's writes that waited - for g's files, or for a zero write over
 * their bytes - in file order, as far as nothing holds them still. */
void shard_wbufs_issue_waiting(struct sl_shard *s, const struct segment *g)
{
    if (seg_write_fd(s, g) < 0 || s->state == SL_EFATAL) {
        return;
    }
    for (uint32_t k = 0; k < s->fifo_len; k++) {
        struct wbuf *w = s->fifo[(s->fifo_head + k) % s->cfg.write_bufs];
        if (w->seg == g && !w->issued && wbuf_may_issue(s, w)) {
            wbuf_issue(s, w);
        }
    }
}

static void wbuf_release(struct sl_shard *s, struct wbuf *w)
{
    free(w->big);
    w->big = NULL;
    w->state = WBUF_FREE;
    w->len = 0;
    w->head = 0;
    w->io_len = 0;
    s->wbuf_free++;
}

/* After an ENOSPC write: once every write has drained, cut the log back to
 * the failed write's offset, fail the batches from there on and rewind the
 * sequence, so that the next append continues right after the last good
 * batch. */
/* Drops the segments after `g`, none of which has files, and makes `g`
 * active again (unsealed). Leaves things alone if one has files. */
static void undo_rolls(struct sl_shard *s, struct segment *g)
{
    uint32_t i = s->seg_count;
    while (i > 0 && s->segs[i - 1] != g) {
        if (s->segs[i - 1]->log_fd >= 0) {
            return;
        }
        i--;
    }
    if (i == 0) {
        return;
    }
    while (s->seg_count > i) {
        struct segment *x = s->segs[--s->seg_count];
        if (x->writing) {
            s->writing_count--;
        }
        shard_seg_free(x);
    }
    g->seal = SEAL_NONE;
}

static void rewind_after_enospc(struct sl_shard *s)
{
    SL_ASSERT(s->failing && s->fifo_len > 0);
    struct wbuf *f = s->fifo[s->fifo_head];
    struct segment *g = f->seg;
    uint64_t cut = f->pos;
    if (g != active(s) && s->state != SL_EFATAL) {
        /* The failed write was in a segment being sealed: the segments
         * after it have no files yet (they are created only after a seal),
         * so g becomes the active segment again. */
        undo_rolls(s, g);
    }
    if (g != active(s) || s->state == SL_EFATAL) {
        shard_fatal(s, "write (ENOSPC across a segment roll)", ENOSPC);
    } else if (sl_ftruncate(g->log_fd, (off_t)cut) != 0) {
        shard_fatal(s, "ftruncate after ENOSPC", errno);
    } else {
        /* The cut took the zero tail too, unless a zero write is still in
         * flight: it lands past `cut` (a hole before it), and data written
         * there later waits for it as usual (shard_zero_holds). */
        g->zero_end = s->zero_busy && !s->zero_syncing && s->zero_seg == g ? s->zero_to : 0;
        uint32_t i = 0;
        while (i < s->pend_len && !(pend_at(s, i)->seg == g && pend_at(s, i)->end > cut)) {
            i++;
        }
        if (i < s->pend_len) {
            s->next_seq = pend_at(s, i)->base_seq;
        }
        SL_ASSERT(g->written_pos == cut);
        /* The last good batch: still pending, the newest acknowledged, or
         * (nothing acknowledged since start-up) the one recovery found. */
        struct pending last = g->acked_last;
        if (i > 0 && pend_at(s, i - 1)->seg == g) {
            last = *pend_at(s, i - 1);
        }
        if (last.count > 0 && last.end == cut) {
            g->last_pos = last.end - last.len;
            g->last_len = last.len;
            g->last_base = last.base_seq;
            g->last_seq = last.base_seq + last.count - 1;
            g->last_time_ms = last.time_ms;
        } else if (cut == 0) {
            g->first_time_ms = 0;
            g->last_time_ms = 0;
        } else {
            SL_ASSERT(g->last_pos + g->last_len == cut);
        }
        g->bytes = cut;
        s->dio_tail_seg = NULL; /* direct: the block under `cut` is read back */
        while (g->idx_count > g->idx_written && g->idx[g->idx_count - 1].pos >= cut) {
            g->idx_count--;
        }
        if (s->filling != NULL) {
            wbuf_release(s, s->filling);
            s->filling = NULL;
        }
        s->state = SL_ENOSPC;
        sl_warn("storage", "%s: disk full: appends from seq %" PRIu64 " failed; will retry", s->dir,
                s->next_seq);
        shard_fail_pending_from(s, i, SL_ENOSPC);
    }
    while (s->fifo_len > 0) {
        wbuf_release(s, s->fifo[s->fifo_head]);
        s->fifo_head = (s->fifo_head + 1) % s->cfg.write_bufs;
        s->fifo_len--;
    }
    s->failing = false;
}

void shard_write_done(struct sl_io_op *op, int res)
{
    struct wbuf *w = sl_container_of(op, struct wbuf, op);
    struct sl_shard *s = w->shard;
    s->ops--;
    if (res > 0 && w->done + (uint32_t)res < w->io_len) {
        /* short write: continue where it stopped (direct: from the block it
         * stopped in, rewritten whole) */
        uint32_t done = w->done + (uint32_t)res;
        done = shard_direct(s) ? done / SL_DIO_ALIGN * SL_DIO_ALIGN : done;
        if (done > w->done) {
            w->done = done;
            wbuf_issue(s, w);
            return;
        }
        res = -EIO; /* a direct write that wrote less than a block: no way on */
    }
    if (res <= 0) {
        int errnum = res < 0 ? -res : EIO;
        w->err = errnum;
        if (errnum == ENOSPC || errnum == EDQUOT) {
            s->failing = true;
        } else {
            shard_fatal(s, "write", errnum);
        }
    } else {
        w->done = w->io_len;
        s->io_last.write_submit_ns = w->submit_ns;
        s->io_last.write_done_ns = sl_clock_mono_ns();
    }
    /* Advance the contiguous written prefix. */
    while (s->fifo_len > 0) {
        struct wbuf *h = s->fifo[s->fifo_head];
        if (h->done != h->io_len || h->err != 0) {
            break;
        }
        SL_ASSERT(h->seg->written_pos == h->pos);
        h->seg->written_pos = h->pos + h->len;
        s->fifo_head = (s->fifo_head + 1) % s->cfg.write_bufs;
        s->fifo_len--;
        wbuf_release(s, h);
    }
    if (s->failing) {
        bool drained = true;
        for (uint32_t i = 0; i < s->fifo_len; i++) {
            struct wbuf *x = s->fifo[(s->fifo_head + i) % s->cfg.write_bufs];
            drained = drained && (x->err != 0 || x->done == x->io_len || !x->issued);
        }
        if (drained) {
            rewind_after_enospc(s);
        }
    } else if (s->state == SL_ENOSPC && res > 0) {
        sl_info("storage", "%s: writes succeed again after a full disk", s->dir);
        s->state = SL_OK;
    }
    if (shard_direct(s) && !s->failing && s->fifo_len > 0) {
        shard_wbufs_issue_waiting(s, s->fifo[s->fifo_head]->seg); /* the next one in file order */
    }
    process_acks(s);
    after_io(s);
}

void shard_sync_done(struct sl_io_op *op, int res)
{
    struct sl_shard *s = sl_container_of(op, struct sl_shard, sync_op);
    s->ops--;
    s->sync_busy = false;
    uint64_t now = sl_clock_mono_ns();
    s->stats.fsync_ns += now - s->sync_start_ns;
    s->io_last.sync_submit_ns = s->sync_start_ns;
    s->io_last.sync_done_ns = now;
    struct segment *g = s->sync_seg;
    s->sync_seg = NULL;
    if (res < 0) {
        shard_fatal(s, "fdatasync", -res);
        after_io(s);
        return;
    }
    SL_ASSERT(s->sync_target >= g->synced_pos);
    s->sync_bytes_avg = s->sync_bytes_avg - s->sync_bytes_avg / 8 +
                        (s->sync_target - g->synced_pos) / 8;
    g->synced_pos = s->sync_target;
    if (s->sync_size) {
        g->size_dirty = false; /* the seal's cut of the zero tail is durable */
        s->sync_size = false;
    }
    process_acks(s);
    persist_index(s, g);
    after_io(s);
}

void shard_dir_sync_done(struct sl_io_op *op, int res)
{
    struct sl_shard *s = sl_container_of(op, struct sl_shard, dir_op);
    s->ops--;
    s->dir_busy = false;
    if (res < 0) {
        shard_fatal(s, "directory fsync", -res);
        return;
    }
    s->dir_synced_gen = s->dir_target;
    process_acks(s);
    after_io(s);
}

void shard_wb_done(struct sl_io_op *op, int res)
{
    struct sl_shard *s = sl_container_of(op, struct sl_shard, wb_op);
    s->ops--;
    s->wb_busy = false;
    struct segment *g = s->wb_seg;
    s->wb_seg = NULL;
    if (res >= 0) {
        g->wb_pos = s->wb_target;
    } /* else: advisory; the interval fdatasync reports real trouble */
    shard_seg_release(s, g);
    after_io(s);
}

void shard_timer_done(struct sl_io_op *op, int res)
{
    (void)res; /* -ETIME on expiry; any other result also just means "now" */
    struct sl_shard *s = sl_container_of(op, struct sl_shard, timer_op);
    s->ops--;
    s->timer_armed = false;
    s->sync_due = true;
    after_io(s);
}

/* Writes index entries whose batches are durable (see the file comment). */
static void persist_index(struct sl_shard *s, struct segment *g)
{
    if (g->idx_busy || g->idx_fd < 0 || s->state == SL_EFATAL) {
        return;
    }
    uint32_t n = 0;
    while (g->idx_written + n < g->idx_count) {
        const struct idx_entry *e = &g->idx[g->idx_written + n];
        if (e->pos + e->len > g->synced_pos) {
            break;
        }
        n++;
    }
    if (n == 0) {
        return;
    }
    g->idx_busy = true;
    s->ops++;
    uint64_t off = (uint64_t)g->idx_written * sizeof(struct idx_entry) + g->idx_partial;
    sl_ring_write(s->ring, &g->idx_op, g->idx_fd,
                  (const uint8_t *)&g->idx[g->idx_written] + g->idx_partial,
                  n * (uint32_t)sizeof(struct idx_entry) - g->idx_partial, off);
}

/* Creates g's files. Out of descriptors, parks idle shards of the loop's
 * cache (shard_cache_shed) and tries once more; still out, logs why
 * (rate-limited) and returns SL_ELIMIT. */
static int create_files_or_shed(struct sl_shard *s, struct segment *g)
{
    int rc = shard_seg_create_files(s, g);
    if (rc == SL_ELIMIT && shard_cache_shed(s, SEG_FILES_FDS) > 0) {
        rc = shard_seg_create_files(s, g); /* once: another thread may take what was freed */
    }
    if (rc == SL_ELIMIT && sl_log_level_min <= SL_LOG_ERROR && sl_log_ratelimit_ok(&s->rl)) {
        char why[160];
        sl_nofile_why(why, sizeof(why));
        sl_error("storage",
                 "%s: cannot create segment %" PRIu64 ": %s; appends fail with SL_ELIMIT "
                 "until it can",
                 s->dir, g->base_seq, why);
    }
    return rc;
}

/* The files of `g`, the segment after one just sealed, could not be created
 * for want of descriptors. That is no I/O error: nothing of g is on disk and
 * nothing in it was acknowledged (its writes wait for its files, and an ack
 * waits for its write). So the batches staged for g, and for any segment
 * rolled after it, fail with SL_ELIMIT; the sequence rewinds to g's base; g
 * stays the empty active segment without files, which recovery never sees
 * (the sealed segment before it is the newest on disk); and the next append
 * creates g's files before anything else (files_owed). The shard stays
 * SL_OK. */
static void owe_files(struct sl_shard *s, struct segment *g)
{
    SL_ASSERT(g->log_fd < 0 && g->idx_fd < 0 && g->writing && !g->idx_busy);
    SL_ASSERT(!s->failing && !s->files_owed);
    /* The sealed segment's writes have all completed: what is left in the
     * FIFO waits for g's (or a later segment's) files, never issued. */
    while (s->fifo_len > 0) {
        struct wbuf *w = s->fifo[s->fifo_head];
        SL_ASSERT(!w->issued && w->seg->base_seq >= g->base_seq);
        wbuf_release(s, w);
        s->fifo_head = (s->fifo_head + 1) % s->cfg.write_bufs;
        s->fifo_len--;
    }
    if (s->filling != NULL) {
        SL_ASSERT(s->filling->seg->base_seq >= g->base_seq);
        wbuf_release(s, s->filling);
        s->filling = NULL;
    }
    while (active(s) != g) {
        struct segment *x = s->segs[--s->seg_count];
        SL_ASSERT(x->log_fd < 0 && x->writing && x->refs == 0);
        s->writing_count--;
        shard_seg_free(x);
    }
    uint32_t from = 0;
    while (from < s->pend_len && pend_at(s, from)->base_seq < g->base_seq) {
        from++;
    }
    SL_ASSERT(s->next_seq >= g->base_seq);
    s->next_seq = g->base_seq;
    g->bytes = 0;
    g->first_time_ms = g->last_time_ms = 0;
    g->idx_count = 0;
    g->index_next = false;
    g->last_pos = g->last_base = g->last_seq = 0;
    g->last_len = 0;
    g->seal = SEAL_NONE;
    SL_ASSERT(g->written_pos == 0 && g->synced_pos == 0 && g->idx_written == 0);
    SL_ASSERT(s->writing_count == 1);
    s->files_owed = true;
    shard_fail_pending_from(s, from, SL_ELIMIT);
}

/* The next append on a shard that owes its active segment's files creates
 * them first; until it can, appends fail at once with SL_ELIMIT. Another
 * error creating them is what it was at a roll: the shard goes fatal. */
static int pay_files(struct sl_shard *s)
{
    struct segment *g = active(s);
    SL_ASSERT(s->files_owed && g->log_fd < 0 && g->bytes == 0 && s->writing_count == 1);
    int rc = create_files_or_shed(s, g);
    if (rc == SL_ELIMIT) {
        return rc;
    }
    if (rc != SL_OK) {
        shard_fatal(s, "segment file creation", rc == SL_ENOSPC ? ENOSPC : EIO);
        return SL_EFATAL;
    }
    s->files_owed = false;
    if (g->base_seq > 0) { /* (a first segment is owed by every new shard) */
        sl_info("storage", "%s: segment %" PRIu64 " created; appends go on", s->dir, g->base_seq);
    }
    return SL_OK;
}

/* `sealed` has just been sealed: create the next segment's files and issue
 * the writes that waited for them, in file order. */
static void create_next_files(struct sl_shard *s, const struct segment *sealed)
{
    uint32_t i = shard_seg_find_seq(s, sealed->base_seq);
    if (s->segs[i] != sealed || i + 1 >= s->seg_count) {
        return;
    }
    struct segment *g = s->segs[i + 1];
    if (g->log_fd >= 0) {
        return;
    }
    int rc = create_files_or_shed(s, g);
    if (rc == SL_ELIMIT) {
        owe_files(s, g);
        return;
    }
    if (rc != SL_OK) {
        shard_fatal(s, "segment file creation", rc == SL_ENOSPC ? ENOSPC : EIO);
        return;
    }
    shard_wbufs_issue_waiting(s, g);
}

void shard_idx_done(struct sl_io_op *op, int res)
{
    struct segment *g = sl_container_of(op, struct segment, idx_op);
    struct sl_shard *s = g->shard;
    s->ops--;
    g->idx_busy = false;
    if (g->seal == SEAL_IDX_SYNC) {
        if (res < 0) {
            shard_fatal(s, "index fsync at segment seal", -res);
            return;
        }
        g->seal = SEAL_DONE;
        g->writing = false;
        s->writing_count--;
        shard_dio_close(g); /* written no more */
        if (g->idx_fd >= 0) {
            close(g->idx_fd);
            g->idx_fd = -1;
        }
        s->segs_open++; /* now a loaded sealed segment */
        shard_evict_cold(s, NULL);
        create_next_files(s, g);
        after_io(s);
        return;
    }
    if (res == -ENOSPC || res == -EDQUOT) {
        /* The index is an accelerator. The active segment's entries stay in
         * memory and are written again at the next durable point (each
         * completed fdatasync tries once; no timer spins on a full disk;
         * unwritten entries only cost recovery a longer scan). A sealing
         * segment's data is already durable: it seals without a complete
         * index rather than hold every later append (shard_seg_load finds the
         * index incomplete and rebuilds it from the log). */
        if (g != active(s)) {
            sl_warn("storage",
                    "%s: segment %" PRIu64 " sealed without a complete index (disk full); "
                    "it is rebuilt from the log when next opened",
                    s->dir, g->base_seq);
            g->idx_written = g->idx_count;
            g->idx_partial = 0;
            after_io(s);
            return;
        }
        if (sl_log_ratelimit_ok(&s->rl)) {
            sl_warn("storage", "%s: index write: disk full; will retry", s->dir);
        }
        return;
    }
    if (res <= 0) {
        shard_fatal(s, "index write", res < 0 ? -res : EIO);
        return;
    }
    /* A short write resumes where it stopped, byte for byte (as data
     * writes do). */
    uint32_t done = g->idx_partial + (uint32_t)res;
    g->idx_written += done / (uint32_t)sizeof(struct idx_entry);
    g->idx_partial = done % (uint32_t)sizeof(struct idx_entry);
    persist_index(s, g);
    after_io(s);
}

/* A sealing segment whose data is all durable: add the final index entry
 * (the last batch), write what is left of the index, fsync it. */
static void seal_step(struct sl_shard *s, struct segment *g)
{
    if (g->written_pos != g->bytes || g->synced_pos != g->bytes) {
        return;
    }
    if (s->zero_busy && s->zero_seg == g) {
        return; /* shard_zero_done runs maybe_sync: back here then */
    }
    if (g->zero_end > g->bytes) {
        /* A sealed segment holds its data only: cut the zero tail, and let
         * an fdatasync commit the size before the index's fsync (after
         * which the next segment's files may appear, and this one is
         * trusted as it is). */
        int rc = shard_zero_cut(s, g);
        if (rc != SL_OK) {
            shard_fatal(s, "ftruncate of the zero tail at segment seal", errno);
            return;
        }
        g->size_dirty = true;
    }
    if (g->size_dirty) {
        return; /* shard_maybe_sync issues the fdatasync */
    }
    if (g->idx_busy) {
        return; /* idx_done runs maybe_sync: back here once the array may move */
    }
    if (g->idx_count == 0 || g->idx[g->idx_count - 1].pos != g->last_pos) {
        if (shard_idx_reserve(g, IDX_MAX) != SL_OK) {
            shard_fatal(s, "index memory at segment seal", ENOMEM);
            return;
        }
        g->idx[g->idx_count++] =
            make_entry(g->last_base, g->last_pos, g->last_time_ms, g->last_len);
    }
    persist_index(s, g);
    if (g->idx_busy || g->idx_written != g->idx_count) {
        return;
    }
    g->seal = SEAL_IDX_SYNC;
    g->idx_busy = true;
    s->ops++;
    sl_ring_fsync(s->ring, &g->idx_op, g->idx_fd, 0);
}

/* Issues the next fsync the shard needs: the directory (new files), then the
 * oldest segment with written-but-unsynced data; drives segment seals. */
void shard_maybe_sync(struct sl_shard *s)
{
    if (s->state == SL_EFATAL) {
        return;
    }
    if (!s->dir_busy && s->dir_synced_gen < s->dir_gen) {
        s->dir_busy = true;
        s->dir_target = s->dir_gen;
        s->ops++;
        sl_ring_fsync(s->ring, &s->dir_op, s->dir_fd, 0);
    }
    bool dirty = false;
    /* Writing segments are the newest few: start where the oldest of them
     * can be, so this stays O(segments being written), not O(segments). */
    uint32_t from = s->seg_count;
    for (uint32_t seen = 0; from > 0 && seen < s->writing_count; from--) {
        seen += s->segs[from - 1]->writing ? 1 : 0;
    }
    for (uint32_t i = from; i < s->seg_count; i++) {
        struct segment *g = s->segs[i];
        if (!g->writing) {
            continue;
        }
        bool sealing = g != active(s);
        if (sealing && g->seal == SEAL_WAIT) {
            seal_step(s, g);
        }
        if (g->written_pos <= g->synced_pos && !(sealing && g->size_dirty)) {
            continue;
        }
        dirty = true;
        bool want = s->cfg.flush == SL_FLUSH_ALWAYS || sealing || s->sync_due || s->closing ||
                    s->pend_durable > 0 || s->trunc_busy; /* a truncate waits for quiet */
        if (!s->sync_busy && want) {
            s->sync_busy = true;
            s->sync_seg = g;
            s->sync_target = g->written_pos;
            s->sync_size = g->size_dirty;
            s->sync_due = false;
            s->ops++;
            s->stats.fsyncs++;
            s->sync_start_ns = sl_clock_mono_ns();
            sl_ring_fsync(s->ring, &s->sync_op, g->log_fd, 1);
        }
    }
    /* INTERVAL: start the writeback of every WB_CHUNK written, so the periodic
     * fdatasync finds little dirty data and does not stall the writes behind
     * it (measured: ack p99 10 ms at 100 k records/s without this). */
    struct segment *a = s->seg_count > 0 ? active(s) : NULL;
    if (s->cfg.flush == SL_FLUSH_INTERVAL && !shard_direct(s) && a != NULL && a->writing &&
        !s->wb_busy &&
        !s->closing && a->log_fd >= 0 && a->written_pos >= a->wb_pos + WB_CHUNK) {
        uint64_t left = a->written_pos - a->wb_pos;
        uint32_t len = left > UINT32_MAX ? UINT32_MAX : (uint32_t)left;
        s->wb_busy = true;
        s->wb_seg = a;
        s->wb_target = a->wb_pos + len;
        a->refs++;
        s->ops++;
        s->stats.writebacks++;
        sl_ring_writeback(s->ring, &s->wb_op, a->log_fd, a->wb_pos, len);
    }
    shard_zero_step(s);
    if (dirty && s->cfg.flush == SL_FLUSH_INTERVAL && !s->timer_armed && !s->sync_busy) {
        s->timer_armed = true;
        s->ops++;
        sl_ring_timeout(s->ring, &s->timer_op, (uint64_t)s->cfg.flush_interval_ms * 1000000u);
    }
}

/* Acknowledges pending appends, oldest first, while each is durable (ALWAYS)
 * or written (INTERVAL); acknowledged batches become visible to readers.
 * Before that, the written prefix grows and its listener runs (a replicated
 * leader's followers fetch what is written, not yet durable: their fdatasyncs
 * overlap the leader's own). Visible first, then the listener, then the callbacks: a reader waiting at
 * the tail (a long-poll) reads and answers before the producers' acks are
 * queued - its answer goes out first in the same loop turn (on a 2-core VM the
 * inline send of an ack ahead of it cost the reader ~30 us). The pending
 * entries stay queued until their callbacks run (so the shard is not quiet,
 * and cannot park, while the listener reads it). */
static void process_acks(struct sl_shard *s)
{
    /* The written prefix first: an append is written once its bytes are, in log order. */
    uint64_t written_before = s->written_seq;
    while (s->pend_written < s->pend_len) {
        const struct pending *p = pend_at(s, s->pend_written);
        if (p->seg->written_pos < p->end) {
            break;
        }
        s->written_seq = p->base_seq + p->count;
        s->pend_written++;
    }
    uint32_t k = 0;
    while (k < s->pend_len) {
        struct pending *p = pend_at(s, k);
        struct segment *g = p->seg;
        bool ok = p->durable ? (g->synced_pos >= p->end && seg_dir_synced(s, g))
                             : g->written_pos >= p->end;
        if (!ok) {
            break;
        }
        g->acked_last = *p;
        g->visible_pos = p->end;
        s->visible_seq = p->base_seq + p->count;
        s->visible_time_ms = p->time_ms;
        k++;
    }
    /* an acknowledged append was written: the acknowledged prefix is within the written one */
    SL_ASSERT(k <= s->pend_written && s->pend_written <= s->pend_len);
    SL_ASSERT(s->visible_seq <= s->written_seq && s->written_seq <= s->next_seq);
    if (s->written_seq > written_before && s->written_listener != NULL) {
        s->written_listener(s->written_listener_ctx, s); /* (first: followers fetch sooner) */
    }
    if (k == 0) {
        return;
    }
    if (s->listener != NULL) {
        s->listener(s->listener_ctx, s);
    }
    /* (pend_len re-checked: a callback may close the shard, failing the rest) */
    for (uint32_t i = 0; i < k && s->pend_len > 0; i++) {
        struct pending done = *pend_at(s, 0);
        SL_ASSERT(done.base_seq + done.count <= s->visible_seq);
        pend_pop(s);
        s->pend_durable -= done.durable ? 1 : 0;
        if (done.cb != NULL) {
            done.cb(done.ctx, SL_OK, done.base_seq, done.count);
        }
    }
}

void shard_flush_deferred(struct sl_deferred *d)
{
    struct sl_shard *s = sl_container_of(d, struct sl_shard, flush);
    if (s->filling != NULL && s->filling->len > 0 && !s->failing) {
        wbuf_submit(s, s->filling);
    }
    shard_maybe_sync(s);
    if (s->trim_due) {
        /* last: the trim may park this very shard (it is quiet) */
        s->trim_due = false;
        shard_cache_trim(s);
    }
}

/* Seals the active segment and starts a new one at next_seq. */
int shard_roll(struct sl_shard *s)
{
    struct segment *old = active(s);
    struct segment *g = shard_seg_new(s, s->next_seq);
    if (g == NULL) {
        return SL_ENOMEM;
    }
    /* The new segment's files are created only once `old` is sealed (see
     * create_next_files): so at most the newest segment file on disk is ever
     * unsealed, which is what recovery assumes. Until then its batches wait
     * in the staging buffers. */
    int rc = shard_seg_start_writing(s, g);
    if (rc == SL_OK) {
        rc = shard_segs_push(s, g);
    }
    if (rc != SL_OK) {
        if (g->writing) {
            s->writing_count--;
        }
        shard_seg_free(g);
        return rc;
    }
    if (s->filling != NULL && s->filling->seg == old && s->filling->len > 0) {
        wbuf_submit(s, s->filling);
    }
    old->seal = SEAL_WAIT;
    sl_debug("storage", "%s: rolled to segment %" PRIu64, s->dir, g->base_seq);
    shard_maybe_sync(s);
    return SL_OK;
}

static bool need_roll(struct sl_shard *s, size_t len, uint64_t t)
{
    struct segment *g = active(s);
    if (g->bytes == 0) {
        return false;
    }
    if (g->bytes + len > s->cfg.segment_bytes) {
        return true;
    }
    return s->cfg.segment_age_ms > 0 && t >= g->first_time_ms + s->cfg.segment_age_ms;
}

int sl_shard_append(struct sl_shard *s, const void *batch, size_t len, sl_append_cb cb, void *ctx)
{
    return sl_shard_append_ex(s, batch, len, 0, cb, ctx);
}

int sl_shard_append_ex(struct sl_shard *s, const void *batch, size_t len, unsigned flags,
                       sl_append_cb cb, void *ctx)
{
    const struct sl_append_opts o = {.flags = flags, .leader_epoch = 0};
    return sl_shard_append_opt(s, batch, len, &o, cb, ctx);
}

int sl_shard_append_opt(struct sl_shard *s, const void *batch, size_t len,
                        const struct sl_append_opts *o, sl_append_cb cb, void *ctx)
{
    SL_ASSERT(o != NULL && (o->flags & ~(SL_APPEND_DURABLE | SL_APPEND_KEEP_STAMPS)) == 0);
    unsigned flags = o->flags;
    if (s->closing) {
        return SL_ECLOSED;
    }
    if (s->state == SL_EFATAL) {
        return SL_EFATAL;
    }
    if (s->failing) {
        return SL_ENOSPC;
    }
    if (s->trunc_busy) {
        return SL_EAGAIN; /* the log is being cut (rare: a replica rejoining) */
    }
    if (len > s->cfg.batch_bytes_max) {
        return SL_ETOOBIG;
    }
    int trc = shard_touch(s);
    if (trc == SL_OK && s->files_owed) {
        trc = pay_files(s);
    }
    if (trc != SL_OK) {
        return trc;
    }
    /* The header now; the body checksum while copying (below). */
    struct sl_batch_header h;
    int rc = sl_batch_peek(batch, len, &h);
    if (rc == SL_EAGAIN || (rc == SL_OK && h.length != len)) {
        return SL_EPROTO; /* the declared length disagrees with the bytes given */
    }
    if (rc != SL_OK) {
        return rc;
    }
    if ((flags & SL_APPEND_KEEP_STAMPS) != 0 &&
        (h.base_seq != s->next_seq || h.append_time_ms < s->last_append_ms)) {
        return SL_EINVAL; /* not the continuation of this log: the caller truncates first */
    }
    if (s->pend_len == s->pend_cap) {
        if (s->pend_cap == s->cfg.pending_max) {
            return SL_EAGAIN;
        }
        rc = pend_grow(s);
        if (rc != SL_OK) {
            return rc;
        }
    }
    uint64_t t = now_ms(s);
    if (t < s->last_append_ms) {
        t = s->last_append_ms; /* append times never go backwards in a shard */
    }
    if ((flags & SL_APPEND_KEEP_STAMPS) != 0) {
        t = h.append_time_ms; /* checked above: not before the last */
    }
    bool rolling = need_roll(s, len, t);
    struct wbuf *w = s->filling;
    bool fits = w != NULL && !rolling && w->big == NULL && w->len + len <= w->cap;
    if (!fits) {
        /* A new staging buffer is needed (the current one, if any, is
         * submitted; the FIFO has a slot for every buffer). */
        if (s->wbuf_free == 0) {
            return SL_EAGAIN;
        }
        if (w != NULL && !rolling && w->big == NULL && w->len > 0 &&
            s->wbuf_size < s->cfg.write_buf_bytes) {
            /* a tick's appends outgrew the buffer: take bigger ones from now on */
            s->wbuf_size = s->wbuf_size * 2 > s->cfg.write_buf_bytes ? s->cfg.write_buf_bytes
                                                                     : s->wbuf_size * 2;
        }
    }
    if (rolling) {
        rc = shard_roll(s);
        if (rc != SL_OK) {
            return rc;
        }
        w = s->filling;
    }
    struct segment *g = active(s);
    if (!fits) {
        if (w != NULL && w->len > 0) {
            wbuf_submit(s, w);
            if (s->state == SL_EFATAL) {
                return SL_EFATAL; /* (direct: the staging failed; logged) */
            }
        } else if (w != NULL) {
            wbuf_release(s, w);
        }
        s->filling = NULL;
        w = wbuf_take(s, g, len);
        if (w == NULL) {
            return SL_ENOMEM;
        }
        if (len > w->cap) {
            w->big = shard_direct(s) ? shard_dio_alloc(len) : malloc(len);
            if (w->big == NULL) {
                wbuf_release(s, w);
                return SL_ENOMEM;
            }
            w->cap = (uint32_t)len;
        }
        s->filling = w;
    }
    uint64_t pos = g->bytes;
    SL_ASSERT(w->seg == g && w->pos + w->len == pos);
    uint8_t *dst = wbuf_bytes(w) + w->len;
    rc = sl_batch_copy_verify(dst, batch, &h);
    if (rc != SL_OK) {
        if (w->len == 0) {
            wbuf_release(s, w);
            s->filling = NULL;
        }
        return rc;
    }
    if ((flags & SL_APPEND_KEEP_STAMPS) == 0) {
        sl_batch_stamp_epoch(dst, s->next_seq, t, o->leader_epoch);
    }
    w->len +=
        (uint32_t)len; /* The index grows with the segment, but not while an index write points
                        * into it: then this batch goes unindexed and the next one is indexed
                        * instead (index_next). A missing entry only makes lookups scan further;
                        * so does the cap (shard_idx_cap_for: a full segment's worth). */
    if (g->idx_count == 0 || g->index_next ||
        pos >= g->idx[g->idx_count - 1].pos + s->cfg.index_interval_bytes) {
        if (g->idx_count < g->idx_cap ||
            (!g->idx_busy && shard_idx_reserve(g, shard_idx_cap_for(&s->cfg, 0)) == SL_OK)) {
            g->idx[g->idx_count++] = make_entry(s->next_seq, pos, t, (uint32_t)len);
            g->index_next = false;
        } else {
            g->index_next = true;
        }
    }
    if (g->bytes == 0) {
        g->first_time_ms = t;
    }
    g->bytes += len;
    g->last_time_ms = t;
    g->last_pos = pos;
    g->last_len = (uint32_t)len;
    g->last_base = s->next_seq;
    g->last_seq = s->next_seq + h.record_count - 1;
    s->last_append_ms = t;
    struct pending *p = &s->pend[(s->pend_head + s->pend_len) % s->pend_cap];
    bool durable = s->cfg.flush == SL_FLUSH_ALWAYS || (flags & SL_APPEND_DURABLE) != 0;
    *p = (struct pending){.seg = g,
                          .end = g->bytes,
                          .base_seq = s->next_seq,
                          .time_ms = t,
                          .count = h.record_count,
                          .len = (uint32_t)len,
                          .durable = durable,
                          .cb = cb,
                          .ctx = ctx};
    s->pend_len++;
    s->pend_durable += durable ? 1 : 0;
    s->next_seq += h.record_count;
    sl_ring_defer(s->ring, &s->flush);
    return SL_OK;
}
