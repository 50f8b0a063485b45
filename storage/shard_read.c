/* shard_read.c - reads by sequence and by append time: whole, verified
 * batches, never one whose append is not yet acknowledged (unless the reader
 * asked for unsynced data: then never one not yet written).
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
#include <sys/uio.h>
#include <unistd.h>

static void read_done(struct sl_io_op *op, int res);

/* Where a read stops: the acknowledged end, or for an unsynced read the written one. */
static uint64_t read_end_seq(const struct sl_shard *s, const struct sl_shard_read *rd)
{
    return rd->unsynced ? s->written_seq : s->visible_seq;
}

static uint64_t read_seg_end(const struct segment *g, const struct sl_shard_read *rd)
{
    return rd->unsynced && g->writing ? g->written_pos : seg_visible_end(g);
}

/* A buffered read this small is first tried synchronously from the page cache
 * (preadv2 RWF_NOWAIT: it never waits for I/O, and fails with EAGAIN when a
 * page is not cached); only a miss goes to the ring. The copy is the one an
 * inline ring read makes on this thread anyway; what it saves is a ring round
 * trip: a long-poll woken by an append answers in the turn the append became
 * visible, not after the next io_uring_enter. (64 KiB: reads at the tail; a
 * catch-up read's 1 MiB keeps the ring.) */
#define READ_NOWAIT_MAX (64u << 10)

/* Whether the page cache served [pos, pos + len) into buf now. */
static bool read_nowait(struct sl_shard *s, struct segment *g, struct sl_shard_read *rd,
                        uint32_t len)
{
    if (shard_direct(s) || len > READ_NOWAIT_MAX || g->log_fd < 0 ||
        sl_ring_faults_armed(s->ring, SL_FAULT_READ)) {
        return false; /* (injected read faults are the ring's: tests/fault) */
    }
    struct iovec v = {.iov_base = rd->buf, .iov_len = len};
    ssize_t n = preadv2(g->log_fd, &v, 1, (off_t)rd->pos_, RWF_NOWAIT);
    if (n != (ssize_t)len) {
        return false; /* EAGAIN, a short read, anything else: the ring read says */
    }
    s->stats.cache_reads++;
    return true;
}

/* A read the recent-data cache served (io_mode direct): completes as a ring
 * read would, from the loop, never from inside sl_shard_read. */
static void read_cached_deferred(struct sl_deferred *d)
{
    struct sl_shard_read *rd = sl_container_of(d, struct sl_shard_read, defer_);
    read_done(&rd->op_, (int)rd->want_);
}

static void read_finish_deferred(struct sl_deferred *d)
{
    struct sl_shard_read *rd = sl_container_of(d, struct sl_shard_read, defer_);
    rd->cb(rd, rd->err_);
}

/* Completes a read: releases its segment and calls back (deferred when we
 * are still inside sl_shard_read, so the callback never runs from it). */
static void read_finish(struct sl_shard_read *rd, int err, bool from_submit)
{
    struct sl_shard *s = rd->shard_;
    if (rd->seg_ != NULL) {
        shard_seg_release(s, rd->seg_);
        rd->seg_ = NULL;
    }
    /* A read burst over many shards, each busy when the others' touches trimmed, left
     * them all open, over the budget, once quiet (the parked crash loop's final read). */
    shard_settle(s);
    if (err != SL_OK) {
        rd->len = 0;
        rd->batch_count = 0;
    }
    rd->err_ = err;
    if (from_submit) {
        rd->defer_.fn = read_finish_deferred;
        sl_ring_defer(s->ring, &rd->defer_);
    } else {
        rd->cb(rd, err);
    }
}

static uint64_t seg_first_time(struct sl_shard *s, struct segment *g)
{
    if (!g->writing && shard_seg_load(s, g) != SL_OK) {
        return 0;
    }
    return g->first_time_ms;
}

/* Index of the last segment whose first append time is < t (or 0): the
 * first batch at or after t is in it or a later one. Loads O(log n) sealed
 * indexes. */
static uint32_t seg_find_time(struct sl_shard *s, uint64_t t)
{
    uint32_t lo = 0, hi = s->seg_count;
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        struct segment *g = s->segs[mid];
        uint64_t ft = seg_first_time(s, g);
        if (g->bytes > 0 && ft < t) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    return lo;
}

/* Start offset in a loaded segment: the last index entry at or before the
 * target (by sequence, or strictly before it in time). */
static uint64_t seg_start_pos(const struct segment *g, const struct sl_shard_read *rd)
{
    uint32_t lo = 0, hi = g->idx_count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        bool before = rd->from == SL_READ_SEQ ? g->idx[mid].seq <= rd->seq
                                              : g->idx[mid].time_ms < rd->time_ms;
        if (before) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo == 0 ? 0 : g->idx[lo - 1].pos;
}

/* The number of index entries whose position is below `pos` (entries are
 * sorted by position). */
static uint32_t idx_below_pos(const struct segment *g, uint64_t pos)
{
    uint32_t lo = 0, hi = g->idx_count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (g->idx[mid].pos < pos) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

/* Issues the ring read at rd->pos_ in the held segment, moving on to the
 * next segment at the end of this one (time reads, or reads that start at a
 * segment's end). Returns false when the read finished instead. */
static bool read_issue(struct sl_shard *s, struct sl_shard_read *rd, bool from_submit)
{
    for (;;) {
        struct segment *g = rd->seg_;
        uint64_t end = read_seg_end(g, rd);
        if (rd->pos_ < end) {
            uint64_t n = end - rd->pos_;
            uint32_t len = n < rd->buf_cap ? (uint32_t)n : rd->buf_cap;
            s->ops++;
            rd->op_.cb = read_done;
            rd->want_ = len;
            rd->retries_ = 0;
            bool cached = len <= INT32_MAX && shard_rc_get(s, g, rd->pos_, len, rd->buf);
            s->stats.cache_reads += cached ? 1 : 0;
            if (cached || read_nowait(s, g, rd, len)) {
                if (rd->inline_ok && from_submit) {
                    read_done(&rd->op_, (int)len); /* (nothing of rd is touched after) */
                    return true;
                }
                rd->defer_.fn = read_cached_deferred;
                sl_ring_defer(s->ring, &rd->defer_);
                return true;
            }
            sl_ring_read(s->ring, &rd->op_, g->log_fd, rd->buf, len, rd->pos_);
            return true;
        }
        /* At the visible end of this segment: the next one, if any. */
        uint32_t i = shard_seg_find_seq(s, g->base_seq);
        if (s->segs[i] != g || i + 1 >= s->seg_count || end < g->bytes) {
            rd->next_seq = read_end_seq(s, rd);
            read_finish(rd, SL_OK, from_submit);
            return false;
        }
        struct segment *next = s->segs[i + 1];
        int rc = next->writing ? SL_OK : shard_seg_load(s, next);
        if (rc != SL_OK) {
            read_finish(rd, rc, from_submit);
            return false;
        }
        next->refs++;
        shard_seg_release(s, g);
        rd->seg_ = next;
        rd->pos_ = 0;
    }
}

void sl_shard_read(struct sl_shard *s, struct sl_shard_read *rd)
{
    rd->shard_ = s;
    rd->seg_ = NULL;
    rd->retries_ = 0;
    rd->len = 0;
    rd->batch_count = 0;
    rd->need_bytes = 0;
    rd->first_seq = s->seg_count > 0 ? s->segs[0]->base_seq : 0;
    rd->next_seq = read_end_seq(s, rd);
    if (rd->buf_cap < SL_BATCH_HEADER_BYTES) {
        rd->need_bytes = SL_BATCH_HEADER_BYTES;
        read_finish(rd, SL_ETOOBIG, true);
        return;
    }
    uint32_t i;
    if (rd->from == SL_READ_SEQ) {
        if (rd->seq < rd->first_seq) {
            read_finish(rd, SL_ETRIMMED, true);
            return;
        }
        uint64_t tail = read_end_seq(s, rd);
        if (rd->seq >= tail) {
            read_finish(rd, rd->seq == tail ? SL_OK : SL_EINVAL, true);
            return;
        }
    }
    /* A read at the tail (above) needs no file: a parked shard stays parked. */
    int trc = shard_touch(s);
    if (trc != SL_OK) {
        read_finish(rd, trc, true);
        return;
    }
    if (rd->from == SL_READ_SEQ) {
        i = shard_seg_find_seq(s, rd->seq);
    } else {
        i = seg_find_time(s, rd->time_ms);
    }
    struct segment *g = s->segs[i];
    int rc = g->writing ? SL_OK : shard_seg_load(s, g);
    if (rc != SL_OK) {
        read_finish(rd, rc, true);
        return;
    }
    g->refs++;
    rd->seg_ = g;
    rd->pos_ = seg_start_pos(g, rd);
    read_issue(s, rd, true);
}

static bool read_matches(const struct sl_shard_read *rd, const struct sl_batch_header *h)
{
    return rd->from == SL_READ_SEQ ? sl_batch_last_seq(h) >= rd->seq
                                   : h->append_time_ms >= rd->time_ms;
}

static int read_corrupt(struct sl_shard *s, struct sl_shard_read *rd, uint64_t off)
{
    struct segment *g = rd->seg_;
    if (sl_log_ratelimit_ok(&s->rl)) {
        sl_error("storage",
                 "%s: segment %" PRIu64 ": corrupt batch at offset %" PRIu64 "; not served", s->dir,
                 g->base_seq, rd->pos_ + off);
    }
    return SL_ECORRUPT;
}

/* Collects whole verified batches from buf[off, got) into buf[0, len). */
static int read_collect(struct sl_shard *s, struct sl_shard_read *rd, uint32_t off, uint32_t got)
{
    uint32_t o = off, total = 0;
    uint64_t expect = 0;
    while (o < got) {
        struct sl_batch_header h;
        int rc = sl_batch_peek(rd->buf + o, got - o, &h);
        if (rc == SL_EAGAIN || (rc == SL_OK && h.length > got - o)) {
            break;
        }
        if (rc != SL_OK || sl_batch_verify(rd->buf + o, &h) != SL_OK ||
            (total > 0 && h.base_seq != expect)) {
            if (total > 0) {
                break; /* serve the good prefix; the next read reports it */
            }
            return read_corrupt(s, rd, o);
        }
        if (total > 0 && total + h.length > rd->max_bytes) {
            break;
        }
        total += h.length;
        o += h.length;
        expect = sl_batch_last_seq(&h) + 1;
        rd->batch_count++;
        rd->next_seq = expect;
    }
    SL_ASSERT(total > 0);
    memmove(rd->buf, rd->buf + off, total);
    rd->len = total;
    return SL_OK;
}

static void read_done(struct sl_io_op *op, int res)
{
    struct sl_shard_read *rd = sl_container_of(op, struct sl_shard_read, op_);
    struct sl_shard *s = rd->shard_;
    s->ops--;
    if (res < 0) {
        read_finish(rd, sl_err_from_errno(-res), false);
        return;
    }
    if (res > 0 && rd->retries_ + (uint32_t)res < rd->want_) {
        /* A short read: read the rest (retries_ counts the bytes so far). */
        rd->retries_ += (uint32_t)res;
        s->ops++;
        sl_ring_read(s->ring, &rd->op_, ((struct segment *)rd->seg_)->log_fd,
                     rd->buf + rd->retries_, rd->want_ - rd->retries_, rd->pos_ + rd->retries_);
        return;
    }
    uint32_t got = rd->retries_ + (uint32_t)res;
    rd->retries_ = 0;
    if (got == 0) {
        /* the file is shorter than the index and the visible end say */
        read_finish(rd, read_corrupt(s, rd, 0), false);
        return;
    }
    uint32_t off = 0;
    bool have_expect = false;
    uint64_t expect = 0;
    while (off < got) {
        struct sl_batch_header h;
        int rc = sl_batch_peek(rd->buf + off, got - off, &h);
        if (rc == SL_EAGAIN) {
            break; /* header cut by the buffer end: read on from here */
        }
        if (rc != SL_OK || (have_expect && h.base_seq != expect)) {
            read_finish(rd, read_corrupt(s, rd, off), false);
            return;
        }
        if (!read_matches(rd, &h)) {
            off += h.length; /* skipped on its (stamp-checked) header alone */
            expect = sl_batch_last_seq(&h) + 1;
            have_expect = true;
            continue;
        }
        if (h.length > got - off) {
            if (h.length > rd->buf_cap) {
                rd->need_bytes = h.length;
                read_finish(rd, SL_ETOOBIG, false);
                return;
            }
            break; /* the wanted batch is cut: read again from its start */
        }
        read_finish(rd, read_collect(s, rd, off, got), false);
        return;
    }
    if (off == 0) {
        /* No progress: a batch runs past the visible end of the segment. */
        read_finish(rd, read_corrupt(s, rd, 0), false);
        return;
    }
    rd->pos_ += off;
    read_issue(s, rd, false);
}

int sl_shard_time_near_seq(struct sl_shard *s, uint64_t seq, uint64_t *time_ms)
{
    if (seq < s->segs[0]->base_seq) {
        return SL_ETRIMMED;
    }
    if (seq >= s->visible_seq) {
        return seq == s->visible_seq ? SL_ENOTFOUND : SL_EINVAL;
    }
    int trc = shard_touch(s); /* after the checks above: they need no file */
    if (trc != SL_OK) {
        return trc;
    }
    struct segment *g = s->segs[shard_seg_find_seq(s, seq)];
    int rc = g->writing ? SL_OK : shard_seg_load(s, g);
    if (rc != SL_OK) {
        return rc;
    }
    struct sl_shard_read probe = {.from = SL_READ_SEQ, .seq = seq};
    uint32_t lo = idx_below_pos(g, seg_start_pos(g, &probe)); /* the entry at that pos */
    if (lo >= g->idx_count) {
        return SL_ENOTFOUND;
    }
    *time_ms = g->idx[lo].time_ms;
    return SL_OK;
}

/* The position of a batch boundary at or before `target` in `g`, from its
 * index (in memory when the segment is loaded or being written, else read
 * from its .idx with descriptors of our own). 0 when no entry qualifies or
 * the index cannot be read: the scan then covers the whole segment, which
 * is bounded by segment_bytes. */
static uint64_t boundary_at_or_before(struct sl_shard *s, struct segment *g, uint64_t target)
{
    if (target == 0) {
        return 0;
    }
    if (g->idx != NULL) {
        uint32_t n = idx_below_pos(g, target + 1);
        return n > 0 ? g->idx[n - 1].pos : 0;
    }
    char path[PATH_MAX];
    char name[64];
    seg_name(name, sizeof(name), g->base_seq, "idx");
    snprintf(path, sizeof(path), "%s/%s", s->dir, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        if (fd >= 0) {
            close(fd);
        }
        return 0;
    }
    uint64_t best = 0;
    uint32_t n = (uint32_t)((uint64_t)st.st_size / sizeof(struct idx_entry));
    struct idx_entry e[256];
    for (uint32_t at = 0; at < n;) {
        uint32_t k = n - at < 256 ? n - at : 256;
        size_t got = 0;
        if (sl_pread_full(fd, e, k * sizeof(e[0]), (uint64_t)at * sizeof(e[0]), &got) != SL_OK ||
            got != k * sizeof(e[0])) {
            break;
        }
        for (uint32_t i = 0; i < k; i++) {
            if (!entry_ok(&e[i]) || e[i].pos > target || e[i].pos < best) {
                close(fd);
                return best;
            }
            best = e[i].pos;
        }
        at += k;
    }
    close(fd);
    return best;
}

/* Walks the batch headers of segment `g` from `pos` to its end. */
static int scan_headers(struct sl_shard *s, struct segment *g, uint64_t pos, uint64_t since_ms,
                        uint8_t *buf, size_t cap, sl_shard_scan_fn fn, void *ctx)
{
    uint64_t end = seg_visible_end(g);
    if (pos + SL_BATCH_HEADER_BYTES > end) {
        return SL_OK; /* (an empty segment may have no files: files_owed) */
    }
    char path[PATH_MAX];
    char name[64];
    seg_name(name, sizeof(name), g->base_seq, "log");
    snprintf(path, sizeof(path), "%s/%s", s->dir, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return sl_err_from_errno(errno);
    }
    int rc = SL_OK;
    while (pos + SL_BATCH_HEADER_BYTES <= end) {
        size_t want = end - pos < cap ? (size_t)(end - pos) : cap;
        size_t got = 0;
        rc = sl_pread_full(fd, buf, want, pos, &got);
        if (rc != SL_OK || got < SL_BATCH_HEADER_BYTES) {
            break;
        }
        /* Headers only: a batch cut by the chunk is skipped by its length,
         * and the next read starts at the header after it. */
        uint64_t off = 0;
        while (off + SL_BATCH_HEADER_BYTES <= got) {
            struct sl_batch_header h;
            if (sl_batch_peek(buf + off, got - off, &h) != SL_OK || pos + off + h.length > end) {
                close(fd);
                return SL_OK; /* (damage is the reader's to find and report) */
            }
            if (h.append_time_ms >= since_ms) {
                fn(ctx, &h);
            }
            off += h.length;
        }
        pos += off;
    }
    close(fd);
    return rc;
}

int sl_shard_scan_recent(struct sl_shard *s, uint64_t since_ms, uint64_t bytes,
                         sl_shard_scan_fn fn, void *ctx)
{
    if (s->seg_count == 0 || bytes == 0) {
        return SL_OK;
    }
    struct segment *last = active(s);
    if (seg_visible_end(last) > 0 && last->last_time_ms != 0 && last->last_time_ms < since_ms) {
        return SL_OK; /* the newest batch is older than the window: nothing to walk */
    }
    /* The newest `bytes` of the log: from a boundary in segment `first`. */
    uint32_t first = s->seg_count - 1;
    uint64_t remaining = bytes;
    while (first > 0 && seg_visible_end(s->segs[first]) < remaining) {
        remaining -= seg_visible_end(s->segs[first]);
        first--;
    }
    uint64_t end = seg_visible_end(s->segs[first]);
    uint64_t pos = boundary_at_or_before(s, s->segs[first], end > remaining ? end - remaining : 0);
    uint8_t *buf = malloc(RECOVERY_CHUNK_BYTES);
    if (buf == NULL) {
        return SL_ENOMEM;
    }
    int rc = SL_OK;
    for (uint32_t i = first; i < s->seg_count && rc == SL_OK; i++) {
        rc = scan_headers(s, s->segs[i], i == first ? pos : 0, since_ms, buf,
                          RECOVERY_CHUNK_BYTES, fn, ctx);
    }
    free(buf);
    return rc;
}

/* ---- the leader epochs along the log (sl_shard_scan_epochs) ------------- */

struct epoch_walk {
    sl_shard_epoch_fn fn;
    void *ctx;
    uint64_t from;
    bool have; /* `last` holds the epoch of the batch before */
    uint32_t last;
    int rc;
};

static void epoch_walk_one(void *ctx, const struct sl_batch_header *h)
{
    struct epoch_walk *w = ctx;
    if (w->rc != SL_OK || sl_batch_last_seq(h) < w->from) {
        return;
    }
    if (!w->have || h->leader_epoch != w->last) {
        w->have = true;
        w->last = h->leader_epoch;
        w->rc = w->fn(w->ctx, h->leader_epoch, h->base_seq < w->from ? w->from : h->base_seq);
    }
}

/* Reads the header at `pos` of segment g's .log (descriptor `fd`); false
 * when it is not a valid header of the sequence `seq` (when seq != UINT64_MAX). */
static bool header_at(int fd, uint64_t pos, uint64_t seq, struct sl_batch_header *h)
{
    uint8_t hdr[SL_BATCH_HEADER_BYTES];
    size_t got = 0;
    return sl_pread_full(fd, hdr, sizeof(hdr), pos, &got) == SL_OK && got == sizeof(hdr) &&
           sl_batch_peek(hdr, got, h) == SL_OK && (seq == UINT64_MAX || h->base_seq == seq);
}

/* The epochs of g's first and last batches, from two headers: the last one
 * found through the index (a sealed segment's index ends with an entry for
 * its last batch; the writing segment knows where its last batch is).
 * false when either is unknown (the caller walks the segment). */
static bool seg_edge_epochs(struct sl_shard *s, struct segment *g, uint32_t *first, uint32_t *last)
{
    uint64_t end = seg_visible_end(g);
    char path[PATH_MAX];
    char name[64];
    struct idx_entry e = {0};
    bool have_last = false;
    if (g->writing) {
        have_last = end > 0 && g->last_pos + g->last_len == end;
        e = (struct idx_entry){.seq = g->last_base, .pos = g->last_pos};
    } else {
        seg_name(name, sizeof(name), g->base_seq, "idx");
        snprintf(path, sizeof(path), "%s/%s", s->dir, name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (fd >= 0 && fstat(fd, &st) == 0 && (uint64_t)st.st_size >= sizeof(e)) {
            size_t got = 0;
            uint64_t at = ((uint64_t)st.st_size / sizeof(e) - 1) * sizeof(e);
            have_last = sl_pread_full(fd, &e, sizeof(e), at, &got) == SL_OK && got == sizeof(e) &&
                        entry_ok(&e) && e.pos + e.len == end;
        }
        if (fd >= 0) {
            close(fd);
        }
    }
    if (!have_last) {
        return false;
    }
    seg_name(name, sizeof(name), g->base_seq, "log");
    snprintf(path, sizeof(path), "%s/%s", s->dir, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct sl_batch_header a, b;
    bool ok = fd >= 0 && header_at(fd, 0, g->base_seq, &a) && header_at(fd, e.pos, e.seq, &b);
    if (fd >= 0) {
        close(fd);
    }
    if (ok) {
        *first = a.leader_epoch;
        *last = b.leader_epoch;
    }
    return ok;
}

int sl_shard_scan_epochs(struct sl_shard *s, uint64_t from_seq, sl_shard_epoch_fn fn, void *ctx)
{
    SL_ASSERT(s->seg_count > 0 && fn != NULL);
    struct epoch_walk w = {.fn = fn, .ctx = ctx, .from = from_seq, .rc = SL_OK};
    if (from_seq >= s->visible_seq) {
        return SL_OK;
    }
    uint8_t *buf = NULL;
    int rc = SL_OK;
    for (uint32_t i = shard_seg_find_seq(s, from_seq); i < s->seg_count && rc == SL_OK; i++) {
        struct segment *g = s->segs[i];
        uint32_t first = 0, last = 0;
        if (seg_visible_end(g) == 0) {
            continue;
        }
        /* Epochs never decrease along a replica's log (docs/REPLICATION.md,
         * invariant 3): a segment whose first and last batches carry the
         * epoch of the batch before it holds no change, and is skipped on
         * two headers. A segment starting (or, first, holding) a new epoch
         * is walked. */
        if (seg_edge_epochs(s, g, &first, &last) && first == last && (!w.have || first == w.last)) {
            if (!w.have) { /* (the first segment holds from_seq, or starts after it) */
                w.have = true;
                w.last = first;
                w.rc = fn(ctx, first, g->base_seq < from_seq ? from_seq : g->base_seq);
            }
            rc = w.rc;
            continue;
        }
        if (buf == NULL && (buf = malloc(RECOVERY_CHUNK_BYTES)) == NULL) {
            return SL_ENOMEM;
        }
        rc = scan_headers(s, g, 0, 0, buf, RECOVERY_CHUNK_BYTES, epoch_walk_one, &w);
        rc = rc != SL_OK ? rc : w.rc;
    }
    free(buf);
    return rc;
}
