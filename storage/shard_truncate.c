/* shard_truncate.c - cutting the log back to a batch boundary
 * (sl_shard_truncate): what a replica does when it rejoins and finds that its
 * tail diverges from its leader's (docs/REPLICATION.md, KIP-101).
 *
 * Shape: the call only checks its arguments and queues the work; the work
 * runs from the loop once the shard is quiet (nothing in flight, pending or
 * staged; every byte written and synced, every index entry on disk, no
 * sealing segment), then does the cut with blocking syscalls on the loop's
 * thread, and calls back. Appends meanwhile are refused with SL_EAGAIN.
 * Why blocking is fine here: a truncate runs once per rejoin of a follower
 * whose log diverged (never on the produce or fetch path), and its cost is a
 * handful of metadata syscalls - one unlink pair and one directory fsync per
 * dropped segment (usually none: a divergent tail is the unacknowledged end
 * of the active segment), two ftruncates and two fsyncs. Doing it through
 * the ring would need the write path's state machine to learn a new state
 * for a rare operation; waiting for quiet and doing it in one step keeps
 * every invariant of shard_write.c untouched (the step starts from, and
 * ends in, exactly the state recovery produces).
 *
 * Crash-safety order (each step durable before the next):
 *   1. for each segment after the one holding the cut, newest first:
 *      unlink its .log, unlink its .idx, fsync the directory;
 *   2. cut the .idx of the segment holding the cut to the entries before it,
 *      fsync it;
 *   3. cut its .log at the cut position, fsync it.
 * So a crash at any point leaves, at restart, the log as it was cut at one
 * of: the target, the first sequence of a segment the truncate was dropping
 * (the newest left), or its old end - a batch boundary at or after the
 * target, never before it, never a hole: deleting newest first keeps the
 * segments on disk a prefix of the old ones, and the one holding the cut is
 * cut only once nothing follows it. Step 2 before 3: an index shorter than
 * its log is what recovery expects (it scans forward from the last entry);
 * an entry past the end of its log would be dropped too, but is never left.
 * A truncate that finds that state after a crash simply runs again (the
 * replica asks where its epoch ended at every start).
 *
 * In memory: once on disk, the segments are freed and the shard's state is
 * rebuilt by recovery itself (shard_recover_load): the same code that a
 * restart would run, over the same files - so the state after a truncate is
 * by construction the state after a restart (end sequence, index, times,
 * visible end). Readers that ask beyond the new end get SL_EINVAL (beyond the
 * tail), as any read past the end does; a read in flight when the truncate
 * was called completes before the cut (the cut waits for quiet).
 *
 * A failure after the first destructive step makes the shard refuse writes
 * (SL_EFATAL, like a failed fsync): what is on disk is then one of the
 * states above, which a restart recovers.
 *
 * The reset (sl_shard_reset): the log made empty and started at a sequence
 * `seq` - a replica whose log ends below its leader's first retained sequence
 * (retention trimmed the leader's head) starts over there (`seq` >= its end,
 * Kafka's truncateFullyAndStartAt), and a replica removed from its shard drops
 * its copy (`seq` = 0, below its end). Same shape: it waits for quiet, works
 * with blocking syscalls, reloads through recovery. Crash-safety order:
 *   1. create the empty marker `reset-<seq, 20 digits>`, fsync the directory:
 *      the commit point - from here on the log IS the empty one at `seq`;
 *   2. (shard_reset_finish) for each segment: unlink its .idx, then its .log
 *      (the .log last: a segment is listed by its .log, so a crash leaves no
 *      .idx without it); create `seq`'s .log (empty); fsync the directory;
 *      unlink the marker; fsync the directory.
 * Recovery that finds a marker runs step 2 before anything else (with the
 * largest marker, were there several), so a kill at any point leaves either
 * the old log (no marker yet) or the empty log at `seq` - never a mix, never
 * a gap between segments read as data. Step 2 removes every segment, `seq`'s
 * own too (a reset below the end may find it full), which is right only
 * because no append reaches the log while a marker exists: the reset answers
 * (and appends resume) once the marker's unlink is durable. A first segment
 * whose base is > 0 is what retention leaves too: readers below it get
 * SL_ETRIMMED with first_seq = `seq`.
 */
#include "storage/shard_int.h"

#include "common/assert.h"
#include "common/error.h"
#include "common/fileio.h"
#include "common/log.h"
#include "storage/batch.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TRUNC_POLL_NS (1000ull * 1000) /* re-check for quiet every 1 ms while waiting */

static int trunc_queue(struct sl_shard *s, uint64_t seq, bool reset, sl_truncate_cb cb, void *ctx);

/* Nothing in flight, pending or staged, everything written synced and
 * indexed on disk, one writing segment: the state parking and recovery
 * leave, in which the files alone describe the log. */
static bool trunc_quiet(const struct sl_shard *s)
{
    if (s->ops > 0 || s->pend_len > 0 || s->fifo_len > 0 || s->filling != NULL || s->flush.queued ||
        s->writing_count != 1 || s->failing || s->sync_busy || s->dir_busy || s->wb_busy ||
        s->zero_busy || s->timer_armed || s->retain_armed || s->dir_synced_gen != s->dir_gen) {
        return false;
    }
    const struct segment *g = s->segs[s->seg_count - 1];
    for (uint32_t i = 0; i < s->seg_count; i++) {
        if (s->segs[i]->refs > 0) {
            return false;
        }
    }
    return g->writing && !g->idx_busy && g->idx_written == g->idx_count && g->idx_partial == 0 &&
           g->written_pos == g->bytes && g->synced_pos == g->bytes;
}

static void trunc_check(const struct sl_shard *s)
{
    SL_ASSERT(s->seg_count > 0);
    SL_ASSERT(s->visible_seq <= s->next_seq);
    SL_ASSERT(s->segs[s->seg_count - 1]->base_seq <= s->next_seq);
    for (uint32_t i = 1; i < s->seg_count; i++) {
        SL_ASSERT(s->segs[i - 1]->base_seq < s->segs[i]->base_seq);
    }
}

/* Finds where batch `seq` starts in segment g (loaded): the last index entry
 * at or before it, then headers forward. SL_EINVAL when `seq` is inside a
 * batch (the message says which), SL_ECORRUPT when a header does not
 * check. */
static int trunc_locate(struct sl_shard *s, struct segment *g, uint64_t seq, uint64_t end,
                        uint64_t *pos_out)
{
    uint64_t pos = 0, expect = g->base_seq;
    for (uint32_t i = 0; i < g->idx_count && g->idx[i].seq <= seq; i++) {
        pos = g->idx[i].pos;
        expect = g->idx[i].seq;
    }
    while (expect < seq) {
        uint8_t hdr[SL_BATCH_HEADER_BYTES];
        size_t got = 0;
        int rc = pos < end ? sl_pread_full(g->log_fd, hdr, sizeof(hdr), pos, &got) : SL_OK;
        if (rc != SL_OK) {
            return rc;
        }
        struct sl_batch_header h;
        if (got < sizeof(hdr) || sl_batch_peek(hdr, got, &h) != SL_OK || h.base_seq != expect ||
            pos + h.length > end) {
            sl_error("storage",
                     "%s: truncate: segment %" PRIu64 ": no valid batch header at offset %" PRIu64
                     " (sequence %" PRIu64 ")",
                     s->dir, g->base_seq, pos, expect);
            return SL_ECORRUPT;
        }
        if (seq <= sl_batch_last_seq(&h)) {
            sl_error("storage",
                     "%s: truncate to sequence %" PRIu64 " refused: it is inside the batch of "
                     "sequences %" PRIu64 "..%" PRIu64 "; a log is cut at a batch's first "
                     "sequence or at its end",
                     s->dir, seq, h.base_seq, sl_batch_last_seq(&h));
            return SL_EINVAL;
        }
        pos += h.length;
        expect = sl_batch_last_seq(&h) + 1;
    }
    *pos_out = pos;
    return SL_OK;
}

/* Tests: SIGKILL the process once this many steps are done (a step: each
 * unlink, ftruncate and fsync of the cut, so a kill lands between any two). */
static void trunc_step_done(struct sl_shard *s)
{
    s->trunc_steps++;
    if (s->trunc_kill_after > 0 && s->trunc_steps >= s->trunc_kill_after) {
        (void)raise(SIGKILL);
    }
}

/* A failed syscall of the cut (errno set): before anything changed on disk,
 * the truncate fails and the shard carries on as it was; after, the shard
 * refuses writes (its files are in one of the states a restart recovers). */
static int trunc_fail(struct sl_shard *s, const char *what)
{
    int e = errno;
    if (s->trunc_touched) {
        shard_fatal(s, what, e);
        return SL_EFATAL;
    }
    sl_error("storage", "%s: %s failed: %s; nothing was cut", s->dir, what, strerror(e));
    return sl_err_from_errno(e);
}

/* Steps 1-3 of the order above, for a cut of segment k at `pos` keeping
 * `idx_keep` of its index entries. */
static int trunc_files(struct sl_shard *s, uint32_t k, uint64_t pos, uint32_t idx_keep)
{
    char name[64];
    for (uint32_t j = s->seg_count - 1; j > k; j--) {
        /* (the segment's descriptors and index stay as they are until the
         * reload: an unlinked file stays readable through them) */
        const struct segment *g = s->segs[j];
        seg_name(name, sizeof(name), g->base_seq, "log");
        if (sl_unlinkat(s->dir_fd, name, 0) != 0 && errno != ENOENT) {
            return trunc_fail(s, "truncate: unlink of a segment's .log");
        }
        s->trunc_touched = true;
        trunc_step_done(s);
        seg_name(name, sizeof(name), g->base_seq, "idx");
        if (sl_unlinkat(s->dir_fd, name, 0) != 0 && errno != ENOENT) {
            return trunc_fail(s, "truncate: unlink of a segment's .idx");
        }
        trunc_step_done(s);
        if (fsync(s->dir_fd) != 0) {
            return trunc_fail(s, "truncate: directory fsync");
        }
        trunc_step_done(s);
    }
    struct segment *g = s->segs[k];
    if (g->idx_map_len > 0) {
        /* A sealed segment's index is a map of the file about to shrink:
         * touching a page past the new end would fault (SIGBUS). Unloaded,
         * it is mapped again on next use (or freed by the reload). */
        shard_seg_unload(g);
        s->segs_open--;
    }
    const char *ext[2] = {"idx", "log"};
    const uint64_t len[2] = {(uint64_t)idx_keep * sizeof(struct idx_entry), pos};
    for (int i = 0; i < 2; i++) {
        seg_name(name, sizeof(name), g->base_seq, ext[i]);
        int fd = sl_openat(s->dir_fd, name, O_RDWR | O_CLOEXEC, 0);
        struct stat st;
        int rc = SL_OK;
        if (fd < 0 && i == 0 && errno == ENOENT) {
            /* a sealed segment without its index (rebuilt in memory on use):
             * recovery makes one for the active segment */
        } else if (fd < 0 || fstat(fd, &st) != 0) {
            rc = trunc_fail(s, "truncate: open of the segment to cut");
        } else if ((uint64_t)st.st_size > len[i]) {
            if (sl_ftruncate(fd, len[i]) != 0) {
                rc = trunc_fail(s,
                                i == 0 ? "truncate: cut of the .idx" : "truncate: cut of the .log");
            } else {
                s->trunc_touched = true;
                trunc_step_done(s);
                if (fsync(fd) != 0) {
                    rc = trunc_fail(s, "truncate: fsync of the cut segment");
                }
            }
        }
        if (fd >= 0) {
            close(fd);
        }
        if (rc != SL_OK) {
            return rc;
        }
        trunc_step_done(s);
    }
    return SL_OK;
}

/* A syscall of the reset's step 2 failed (errno set): the marker is durable, so the log
 * is the reset one whatever is left on disk; a restart finishes it. */
static int reset_fail(struct sl_shard *s, const char *what)
{
    int e = errno;
    if (!s->trunc_reset) {
        /* (recovery: the open fails and says why) */
        sl_error("storage", "%s: reset: %s failed: %s", s->dir, what, strerror(e));
        return sl_err_from_errno(e);
    }
    shard_fatal(s, what, e);
    return SL_EFATAL;
}

int shard_reset_finish(struct sl_shard *s, uint64_t seq)
{
    uint64_t *bases = NULL;
    uint32_t n = 0;
    uint64_t marker = UINT64_MAX;
    int rc = shard_list_segments(s, &bases, &n, &marker);
    if (rc != SL_OK) {
        return rc;
    }
    SL_ASSERT(marker != UINT64_MAX && marker >= seq); /* step 1 came first */
    char name[64];
    for (uint32_t i = 0; i < n; i++) {
        const char *ext[2] = {"idx", "log"};
        for (int j = 0; j < 2; j++) {
            seg_name(name, sizeof(name), bases[i], ext[j]);
            if (sl_unlinkat(s->dir_fd, name, 0) != 0 && errno != ENOENT) {
                free(bases);
                return reset_fail(s, "reset: unlink of an old segment");
            }
            trunc_step_done(s);
        }
    }
    free(bases);
    seg_name(name, sizeof(name), seq, "log");
    int fd = sl_openat(s->dir_fd, name, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        return reset_fail(s, "reset: creating the new segment");
    }
    close(fd);
    trunc_step_done(s);
    if (fsync(s->dir_fd) != 0) {
        return reset_fail(s, "reset: directory fsync");
    }
    trunc_step_done(s);
    /* every marker (a lost directory update may have left an older one too) */
    while (marker != UINT64_MAX) {
        snprintf(name, sizeof(name), SHARD_RESET_MARKER "%0*" PRIu64, SEG_NAME_DIGITS, marker);
        if (sl_unlinkat(s->dir_fd, name, 0) != 0 && errno != ENOENT) {
            return reset_fail(s, "reset: unlink of its marker");
        }
        rc = shard_list_segments(s, &bases, &n, &marker);
        free(bases);
        if (rc != SL_OK) {
            return rc;
        }
    }
    trunc_step_done(s);
    if (fsync(s->dir_fd) != 0) {
        return reset_fail(s, "reset: directory fsync");
    }
    trunc_step_done(s);
    return SL_OK;
}

/* Frees every segment and rebuilds the shard's state from its files, as a
 * restart would, and checks it. */
static int trunc_reload(struct sl_shard *s)
{
    for (uint32_t i = 0; i < s->seg_count; i++) {
        shard_seg_free(s->segs[i]);
        s->segs[i] = NULL;
    }
    s->seg_count = 0;
    s->segs_open = 0;
    s->writing_count = 0;
    s->files_owed = false;
    s->sync_seg = s->wb_seg = s->zero_seg = NULL;
    s->stats.recovery_read_bytes = 0;
    s->stats.recovery_truncated_bytes = 0;
    int rc = shard_recover_load(s);
    if (rc != SL_OK) {
        shard_fatal(s, "truncate: reload of the cut log", rc == SL_ENOMEM ? ENOMEM : EIO);
        return SL_EFATAL;
    }
    SL_ASSERT(s->pend_len == 0 && s->pend_written == 0);
    s->visible_seq = s->written_seq = s->next_seq;
    s->visible_time_ms = s->last_append_ms;
    rc = shard_touch(s); /* charges the budget with the descriptors recovery opened */
    if (rc == SL_OK) {
        trunc_check(s);
    }
    return rc;
}

/* The cut itself, on a quiet shard. */
static int trunc_run(struct sl_shard *s, uint64_t seq)
{
    trunc_check(s);
    SL_ASSERT(trunc_quiet(s));
    if (seq == s->next_seq) {
        return SL_OK; /* the log ends there already */
    }
    /* Checked again: while the truncate waited, retention may have dropped
     * the oldest segments, and a full disk may have rewound the end. */
    if (seq < s->segs[0]->base_seq) {
        return SL_ETRIMMED;
    }
    if (seq > s->next_seq) {
        return SL_EINVAL;
    }
    uint32_t k = shard_seg_find_seq(s, seq);
    struct segment *g = s->segs[k];
    SL_ASSERT(g->base_seq <= seq && seq < s->next_seq);
    int rc = g->writing ? SL_OK : shard_seg_load(s, g);
    if (rc != SL_OK) {
        return rc;
    }
    uint64_t pos = 0;
    rc = trunc_locate(s, g, seq, g->bytes, &pos);
    if (rc != SL_OK) {
        return rc;
    }
    uint32_t idx_keep = 0;
    while (idx_keep < g->idx_count && g->idx[idx_keep].pos < pos) {
        idx_keep++;
    }
    SL_ASSERT(pos <= g->bytes && (pos > 0 || seq == g->base_seq));
    sl_info("storage",
            "%s: truncating the log from sequence %" PRIu64 " back to %" PRIu64 ": %u newer "
            "segment(s) dropped, segment %" PRIu64 " cut at byte %" PRIu64,
            s->dir, s->next_seq, seq, s->seg_count - 1 - k, g->base_seq, pos);
    rc = trunc_files(s, k, pos, idx_keep);
    if (rc != SL_OK) {
        return rc;
    }
    rc = trunc_reload(s);
    if (rc != SL_OK) {
        return rc;
    }
    SL_ASSERT(s->next_seq == seq && s->visible_seq == seq && active(s)->base_seq <= seq);
    SL_ASSERT(active(s)->bytes == pos && trunc_quiet(s));
    return SL_OK;
}

/* The reset itself, on a quiet shard: step 1 (the commit), step 2, the reload. */
static int reset_run(struct sl_shard *s, uint64_t seq)
{
    trunc_check(s);
    SL_ASSERT(trunc_quiet(s));
    if (s->seg_count == 1 && s->segs[0]->base_seq == seq && s->next_seq == seq) {
        return SL_OK; /* empty, starting there already */
    }
    sl_info("storage",
            "%s: resetting the log: sequences %" PRIu64 "..%" PRIu64 " (%u segment(s)) "
            "dropped, it starts empty at %" PRIu64,
            s->dir, s->segs[0]->base_seq, s->next_seq, s->seg_count, seq);
    char name[64];
    snprintf(name, sizeof(name), SHARD_RESET_MARKER "%0*" PRIu64, SEG_NAME_DIGITS, seq);
    int fd = sl_openat(s->dir_fd, name, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        return trunc_fail(s, "reset: creating its marker");
    }
    close(fd);
    s->trunc_touched = true;
    trunc_step_done(s);
    if (fsync(s->dir_fd) != 0) {
        shard_fatal(s, "reset: directory fsync of its marker", errno);
        return SL_EFATAL; /* the marker may or may not be durable: a restart decides */
    }
    trunc_step_done(s);
    /* (the segments' descriptors and maps stay until the reload frees them: unlinked files
     * stay readable through them, and none is cut) */
    int rc = shard_reset_finish(s, seq);
    if (rc != SL_OK) {
        return rc;
    }
    rc = trunc_reload(s);
    if (rc != SL_OK) {
        return rc;
    }
    SL_ASSERT(s->seg_count == 1 && s->segs[0]->base_seq == seq && s->next_seq == seq);
    SL_ASSERT(s->visible_seq == seq && active(s)->bytes == 0 && trunc_quiet(s));
    return SL_OK;
}

static void trunc_complete(struct sl_shard *s, int err)
{
    SL_ASSERT(s->trunc_busy);
    sl_truncate_cb cb = s->trunc_cb;
    void *ctx = s->trunc_ctx;
    s->trunc_busy = false;
    s->trunc_reset = false;
    s->trunc_cb = NULL;
    s->trunc_ctx = NULL;
    trunc_check(s);
    if (cb != NULL) {
        cb(ctx, err, s->next_seq);
    }
}

static void trunc_step(struct sl_shard *s)
{
    SL_ASSERT(s->trunc_busy);
    if (s->closing) {
        trunc_complete(s, SL_ECLOSED);
        return;
    }
    if (s->state == SL_EFATAL) {
        trunc_complete(s, SL_EFATAL);
        return;
    }
    int rc = shard_touch(s); /* a parked shard reopens its files */
    if (rc != SL_OK) {
        trunc_complete(s, rc);
        return;
    }
    if (!trunc_quiet(s)) {
        /* Drive what is left (staged bytes written, a sync started: a
         * waiting truncate makes shard_maybe_sync sync at once), then look
         * again in a moment: completions do not call us. The INTERVAL timer
         * (up to flush_interval_ms, an op in flight) is cancelled: the sync
         * it would start is started now. */
        shard_flush_deferred(&s->flush);
        shard_timer_cancel(s);
        s->ops++;
        sl_ring_timeout(s->ring, &s->trunc_timer, TRUNC_POLL_NS);
        return;
    }
    s->trunc_steps = 0;
    s->trunc_touched = false;
    rc = s->trunc_reset ? reset_run(s, s->trunc_seq) : trunc_run(s, s->trunc_seq);
    trunc_complete(s, rc);
}

static void trunc_deferred(struct sl_deferred *d)
{
    trunc_step(sl_container_of(d, struct sl_shard, trunc_defer));
}

static void trunc_cancel_done(struct sl_io_op *op, int res)
{
    (void)res; /* -ENOENT/-EALREADY: the timer fired first; either way it is gone or going */
    struct sl_shard *s = sl_container_of(op, struct sl_shard, trunc_cancel);
    SL_ASSERT(s->ops > 0 && s->trunc_cancel_busy);
    s->ops--;
    s->trunc_cancel_busy = false;
}

void shard_timer_cancel(struct sl_shard *s)
{
    if (s->timer_armed && !s->trunc_cancel_busy) {
        s->trunc_cancel.cb = trunc_cancel_done;
        s->trunc_cancel_busy = true;
        s->ops++;
        sl_ring_cancel(s->ring, &s->trunc_cancel, &s->timer_op);
    }
}

static void trunc_timer_done(struct sl_io_op *op, int res)
{
    (void)res;
    struct sl_shard *s = sl_container_of(op, struct sl_shard, trunc_timer);
    SL_ASSERT(s->ops > 0);
    s->ops--;
    trunc_step(s);
}

/* What refuses a truncate or a reset whatever its argument (SL_OK: none). */
static int trunc_admit(const struct sl_shard *s)
{
    trunc_check(s);
    if (s->closing) {
        return SL_ECLOSED;
    }
    if (s->state == SL_EFATAL) {
        return SL_EFATAL;
    }
    return s->trunc_busy ? SL_EAGAIN : SL_OK;
}

int sl_shard_truncate(struct sl_shard *s, uint64_t seq, sl_truncate_cb cb, void *ctx)
{
    int rc = trunc_admit(s);
    if (rc != SL_OK) {
        return rc;
    }
    if (seq > s->next_seq) {
        sl_error("storage",
                 "%s: truncate to sequence %" PRIu64 " refused: the log ends at %" PRIu64
                 " (a truncate only shortens it)",
                 s->dir, seq, s->next_seq);
        return SL_EINVAL;
    }
    if (seq < s->segs[0]->base_seq) {
        return SL_ETRIMMED;
    }
    return trunc_queue(s, seq, false, cb, ctx);
}

int sl_shard_reset(struct sl_shard *s, uint64_t seq, sl_truncate_cb cb, void *ctx)
{
    int rc = trunc_admit(s);
    if (rc != SL_OK) {
        return rc;
    }
    if (seq > SL_SHARD_RESET_SEQ_MAX) {
        sl_error("storage",
                 "%s: reset to sequence %" PRIu64 " refused: past the largest a reset takes "
                 "(%" PRIu64 ")",
                 s->dir, seq, (uint64_t)SL_SHARD_RESET_SEQ_MAX);
        return SL_EINVAL;
    }
    return trunc_queue(s, seq, true, cb, ctx);
}

static int trunc_queue(struct sl_shard *s, uint64_t seq, bool reset, sl_truncate_cb cb, void *ctx)
{
    s->trunc_busy = true;
    s->trunc_reset = reset;
    s->trunc_seq = seq;
    s->trunc_cb = cb;
    s->trunc_ctx = ctx;
    s->trunc_defer.fn = trunc_deferred;
    s->trunc_timer.cb = trunc_timer_done;
    sl_ring_defer(s->ring, &s->trunc_defer);
    trunc_check(s);
    return SL_OK;
}

void sl_shard_truncate_test_kill_after(struct sl_shard *s, uint32_t steps)
{
    s->trunc_kill_after = steps;
}
