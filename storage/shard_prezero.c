/* shard_prezero.c - the zeroed run-ahead of the active segment's .log.
 *
 * Why. An append that grows the file makes its fdatasync commit the new
 * size through the filesystem's journal as well as the data; with several
 * shards doing so at once their journal commits queue behind each other
 * (ext4 on this machine: p99 durable ack 14 ms at 4 shards, 3 ms at one;
 * a data-only overwrite's fdatasync p99 is a fraction of a growing one's).
 * So the file is kept cfg.prezero_bytes ahead of the data with real zeros -
 * not fallocate: an unwritten extent is converted on the first write, which
 * is the same journal commit again - written through the ring a chunk at a
 * time and then fdatasynced, once per chunk instead of once per append.
 *
 * What must hold.
 *   - Zeros never land over data: a zero write starts at or after the end
 *     of every data byte submitted or staged (g->bytes) when it is issued,
 *     and a data write whose bytes overlap a zero write in flight is not
 *     issued until it completes (shard_zero_holds; wbuf.issued false). Both
 *     are asserted.
 *   - Nothing depends on the zeros being durable: they are an accelerator. A
 *     data write past the durable zeroed size is today's growing append, and
 *     its fdatasync commits the size; no ack waits for a zero op.
 *   - A sealed segment has no zero tail (seal_step cuts it and fdatasyncs
 *     before the index's fsync), nor a parked or a cleanly closed one (not
 *     synced: a crash leaves the zeros, which recovery cuts as the clean end
 *     of the data). Sizes the rest of the shard uses (g->bytes) are data.
 *   - One zero op per shard in flight (zero_op), counted in s->ops, so close
 *     waits for it and a shard with one in flight is not parkable.
 *   - Bounded memory: one zero buffer for the whole process, never written.
 *
 * When. Only where it pays: once the segment took a chunk of traffic since
 * it was opened (an idle shard keeps no zero tail), and while the shard's
 * data fdatasyncs are small (ZERO_SYNC_BYTES_MAX): big group commits - batched
 * producers, flush = interval - amortise the size commit already, and zeros
 * would double the bytes they write.
 */
#include "storage/shard_int.h"

#include "common/assert.h"
#include "common/error.h"
#include "common/fileio.h"
#include "common/log.h"
#include "common/ring.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

/* The source of every zero write: in .bss and never written, so its pages
 * are the kernel's shared zero page and cost no memory. Read concurrently by
 * every loop's ring. */
static _Alignas(SL_DIO_ALIGN) uint8_t zero_chunk[ZERO_CHUNK_MAX]; /* (direct: aligned) */

/* One zero write's length: a quarter of the run-ahead, at most
 * ZERO_CHUNK_MAX; a zero write starts at least one chunk past the data. */
static uint64_t chunk_bytes(const struct sl_shard *s)
{
    uint64_t c = s->cfg.prezero_bytes / 4;
    c = c > ZERO_CHUNK_MAX ? ZERO_CHUNK_MAX : c;
    /* direct: whole blocks (prezero_bytes >= 64 KiB: at least 4 of them) */
    return shard_direct(s) ? c / SL_DIO_ALIGN * SL_DIO_ALIGN : c;
}

bool shard_zero_holds(const struct sl_shard *s, const struct wbuf *w)
{
    /* (direct: the whole blocks the write covers) */
    uint64_t from = w->pos - w->head;
    uint64_t to = w->pos - w->head + (w->io_len > w->len ? w->io_len : w->len);
    return s->zero_busy && !s->zero_syncing && s->zero_seg == w->seg && to > s->zero_from &&
           from < s->zero_to;
}

static void zero_issue_write(struct sl_shard *s)
{
    struct segment *g = s->zero_seg;
    uint64_t at = s->zero_from + s->zero_done;
    uint64_t left = s->zero_to - at;
    SL_ASSERT(s->zero_busy && !s->zero_syncing && left > 0 && left <= ZERO_CHUNK_MAX);
    s->ops++;
    sl_ring_write(s->ring, &s->zero_op, seg_write_fd(s, g), zero_chunk, (uint32_t)left, at);
}

/* Issues the next zero chunk of the active segment when its run-ahead fell
 * below cfg.prezero_bytes by a chunk. From shard_maybe_sync (after every
 * completion and at the end of an appending tick): no syscall of its own on
 * the append path. */
void shard_zero_step(struct sl_shard *s)
{
    uint64_t want = s->cfg.prezero_bytes;
    if (want == 0 || s->zero_busy || s->state != SL_OK || s->failing || s->closing ||
        s->parked || s->seg_count == 0 || s->sync_bytes_avg > ZERO_SYNC_BYTES_MAX) {
        return;
    }
    struct segment *g = active(s);
    if (!g->writing || g->seal != SEAL_NONE || seg_write_fd(s, g) < 0 || g->zero_off) {
        return;
    }
    uint64_t chunk = chunk_bytes(s);
    if (g->bytes < g->zero_gate + chunk) {
        return; /* too little traffic yet: an idle shard keeps no zero tail */
    }
    /* At least a chunk past the data, so that data reaches a zero write in
     * flight (and waits for it) only when it outruns the run-ahead by that
     * much during one zero write. Should the run-ahead have fallen behind
     * (or be starting), [zero_end, from) stays a hole: appends into it are
     * what appends were without the run-ahead, no worse. */
    uint64_t lead = g->bytes + chunk;
    uint64_t from = g->zero_end > lead ? g->zero_end : lead;
    from = shard_direct(s) ? dio_align_up(from) : from;
    if (from + chunk > g->bytes + want || from + chunk > s->cfg.segment_bytes) {
        return; /* far enough ahead; or past where the segment rolls (zeros the seal cuts) */
    }
    /* Zeros start past every data byte staged or in flight. */
    for (uint32_t i = 0; i < s->fifo_len; i++) {
        const struct wbuf *w = s->fifo[(s->fifo_head + i) % s->cfg.write_bufs];
        SL_ASSERT(w->seg != g || w->pos - w->head + w->io_len <= from);
    }
    SL_ASSERT(s->filling == NULL || s->filling->seg != g ||
              s->filling->pos + s->filling->len <= from);
    s->zero_busy = true;
    s->zero_syncing = false;
    s->zero_seg = g;
    s->zero_from = from;
    s->zero_to = from + chunk;
    s->zero_done = 0;
    s->zero_keep = g->zero_end;
    g->zero_end = s->zero_to;
    s->stats.zero_writes++;
    s->stats.zero_bytes += chunk;
    zero_issue_write(s);
}

static void zero_finish(struct sl_shard *s)
{
    s->zero_busy = false;
    s->zero_syncing = false;
    s->zero_seg = NULL;
}

void shard_zero_done(struct sl_io_op *op, int res)
{
    struct sl_shard *s = sl_container_of(op, struct sl_shard, zero_op);
    struct segment *g = s->zero_seg;
    SL_ASSERT(s->zero_busy && g != NULL);
    s->ops--;
    if (s->zero_syncing) {
        zero_finish(s);
        if (res < 0) {
            /* The file's data may be lost with it, as for any fdatasync. */
            shard_fatal(s, "fdatasync of the zeroed run-ahead", -res);
        }
        shard_maybe_sync(s);
        shard_settle(s);
        return;
    }
    if (res > 0 && s->zero_from + s->zero_done + (uint64_t)res < s->zero_to) {
        /* short write: continue where it stopped (direct: at a block) */
        uint64_t done = s->zero_done + (uint64_t)res;
        done = shard_direct(s) ? done / SL_DIO_ALIGN * SL_DIO_ALIGN : done;
        if (done > s->zero_done) {
            s->zero_done = done;
            zero_issue_write(s);
            return;
        }
        res = -EIO;
    }
    if (res <= 0) {
        int errnum = res < 0 ? -res : EIO;
        if (errnum != ENOSPC && errnum != EDQUOT) {
            zero_finish(s);
            shard_fatal(s, "zero-fill write", errnum); /* (the writes it held stay unissued) */
            shard_settle(s);
            return;
        }
        /* Full disk: the zeros must not take the space the data needs. Give
         * back what this write took - the file back to where it ended before
         * it, or to the data end: every data write in flight ends at or
         * before g->bytes, so no data is cut - and stop the run-ahead in this
         * segment. */
        /* (direct: the block under the data end is a data write's too) */
        uint64_t data_end = shard_direct(s) ? dio_align_up(g->bytes) : g->bytes;
        uint64_t keep = s->zero_keep > data_end ? s->zero_keep : data_end;
        uint64_t end = s->zero_done > 0 ? s->zero_from + s->zero_done : keep;
        g->zero_off = true;
        if (s->zero_done > 0 && sl_ftruncate(g->log_fd, keep) == 0) {
            end = keep;
        }
        g->zero_end = end > g->bytes ? end : 0;
        if (sl_log_ratelimit_ok(&s->rl)) {
            sl_warn("storage", "%s: segment %" PRIu64 ": disk full: no zeroed run-ahead", s->dir,
                    g->base_seq);
        }
        zero_finish(s);
    } else if (g->writing && g->seal == SEAL_NONE && !s->closing && s->state == SL_OK) {
        /* Commit the extension once, here, rather than in the next data
         * fdatasyncs. (A sealing segment's zeros are cut instead.) */
        s->zero_syncing = true;
        s->ops++;
        sl_ring_fsync(s->ring, &s->zero_op, g->log_fd, 1);
    } else {
        zero_finish(s);
    }
    shard_wbufs_issue_waiting(s, g);
    shard_maybe_sync(s);
    shard_settle(s);
}

/* Cuts g's zero tail (the file back to its data). Only with no zero write of
 * g in flight and every data write of g completed (so `bytes` is the file's
 * data end). The cut is not synced: the caller syncs when it must. */
int shard_zero_cut(struct sl_shard *s, struct segment *g)
{
    SL_ASSERT(!(s->zero_busy && s->zero_seg == g));
    SL_ASSERT(g->log_fd >= 0 && g->written_pos == g->bytes);
    if (g->zero_end <= g->bytes) {
        g->zero_end = 0;
        return SL_OK;
    }
    if (sl_ftruncate(g->log_fd, g->bytes) != 0) {
        return sl_err_from_errno(errno);
    }
    g->zero_end = 0;
    return SL_OK;
}
