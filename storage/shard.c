/* shard.c - the shard log: configuration, open and close, stats.
 *
 * The log's parts and files are listed in shard_int.h.
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

void sl_shard_config_default(struct sl_shard_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->segment_bytes = 256ull << 20;
    cfg->segment_age_ms = 7ull * 24 * 3600 * 1000;
    cfg->retention_ms = 7ull * 24 * 3600 * 1000;
    cfg->retention_bytes = 0;
    cfg->index_interval_bytes = 16u << 10;
    cfg->write_buf_bytes = 1u << 20;
    cfg->write_bufs = 4;
    cfg->pending_max = 4096;
    cfg->batch_bytes_max = 8u << 20;
    cfg->flush_interval_ms = 1000;
    cfg->open_segments_max = 16;
    cfg->prezero_bytes = SL_PREZERO_DEFAULT;
    cfg->io_mode = SL_IO_BUFFERED;
    cfg->read_cache_bytes = SL_READ_CACHE_DEFAULT;
    cfg->flush = SL_FLUSH_ALWAYS;
    cfg->clock = NULL;
}

int sl_shard_config_check(const struct sl_shard_config *cfg, char *why, size_t why_len)
{
    const char *msg = NULL;
    if (cfg->segment_bytes < 4096 || cfg->segment_bytes > (1ull << 40)) {
        msg = "segment_bytes must be in [4 KiB, 1 TiB]";
    } else if (cfg->retention_ms == 0 || cfg->retention_ms > SL_RETENTION_MS_MAX) {
        msg = "retention must be in (0, 8760 h]";
    } else if (cfg->index_interval_bytes < 256 || cfg->index_interval_bytes > (64u << 20)) {
        msg = "index_interval_bytes must be in [256, 64 MiB]";
    } else if (cfg->write_buf_bytes < 4096 || cfg->write_buf_bytes > (256u << 20)) {
        msg = "write_buf_bytes must be in [4 KiB, 256 MiB]";
    } else if (cfg->write_bufs < 2 || cfg->write_bufs > 64) {
        msg = "write_bufs must be in [2, 64]";
    } else if (cfg->pending_max < 1 || cfg->pending_max > (1u << 24)) {
        msg = "pending_max must be in [1, 16 Mi]";
    } else if (cfg->batch_bytes_max <= SL_BATCH_HEADER_BYTES ||
               cfg->batch_bytes_max > SL_BATCH_BYTES_MAX) {
        msg = "batch_bytes_max must be in (88 B, 64 MiB]";
    } else if (cfg->flush != SL_FLUSH_ALWAYS && cfg->flush != SL_FLUSH_INTERVAL) {
        msg = "flush must be always or interval";
    } else if (cfg->flush == SL_FLUSH_INTERVAL &&
               (cfg->flush_interval_ms < 1 || cfg->flush_interval_ms > 3600000)) {
        msg = "flush_interval_ms must be in [1, 3600000]";
    } else if (cfg->open_segments_max < 1 || cfg->open_segments_max > 65536) {
        msg = "open_segments_max must be in [1, 65536]";
    } else if (cfg->io_mode != SL_IO_BUFFERED && cfg->io_mode != SL_IO_DIRECT) {
        msg = "io_mode must be buffered or direct";
    } else if (cfg->read_cache_bytes != 0 && (cfg->read_cache_bytes < SL_READ_CACHE_MIN ||
                                              cfg->read_cache_bytes > SL_READ_CACHE_MAX)) {
        msg = "read_cache_bytes (direct_read_cache_bytes) must be 0 (off) or in [64 KiB, 1 GiB]";
    } else if (cfg->prezero_bytes != 0 &&
               (cfg->prezero_bytes < SL_PREZERO_MIN || cfg->prezero_bytes > SL_PREZERO_MAX)) {
        msg = "prezero_bytes (segment_prezero_bytes) must be 0 (off) or in [64 KiB, 1 GiB]";
    }
    if (msg != NULL) {
        snprintf(why, why_len, "%s", msg);
        return SL_EINVAL;
    }
    return SL_OK;
}

void sl_shard_set_listener(struct sl_shard *s, sl_shard_listener fn, void *ctx)
{
    s->listener = fn;
    s->listener_ctx = ctx;
}

void sl_shard_set_written_listener(struct sl_shard *s, sl_shard_listener fn, void *ctx)
{
    s->written_listener = fn;
    s->written_listener_ctx = ctx;
}

uint64_t sl_shard_written_seq(const struct sl_shard *s)
{
    return s->written_seq;
}

int sl_shard_open(struct sl_ring *ring, const char *dir, const struct sl_shard_config *cfg,
                  struct sl_shard **out)
{
    char why[128];
    int rc = sl_shard_config_check(cfg, why, sizeof(why));
    if (rc != SL_OK) {
        sl_error("storage", "%s: bad shard config: %s", dir, why);
        return rc;
    }
    struct sl_shard *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return SL_ENOMEM;
    }
    s->ring = ring;
    s->cfg = *cfg;
    s->clock = cfg->clock != NULL ? cfg->clock : &sl_clock_real;
    s->dir_fd = -1;
    s->flush.fn = shard_flush_deferred;
    s->sync_op.cb = shard_sync_done;
    s->dir_op.cb = shard_dir_sync_done;
    s->timer_op.cb = shard_timer_done;
    s->retain_op.cb = shard_retain_done;
    s->wb_op.cb = shard_wb_done;
    s->zero_op.cb = shard_zero_done;
    s->rl = (struct sl_log_ratelimit){.interval_ms = 10000, .burst = 5};
    s->dir = strdup(dir);
    s->wbufs = calloc(cfg->write_bufs, sizeof(*s->wbufs));
    s->fifo = calloc(cfg->write_bufs, sizeof(*s->fifo));
    if (s->dir == NULL || s->wbufs == NULL || s->fifo == NULL) {
        sl_shard_close(s);
        return SL_ENOMEM;
    }
    s->wbuf_free = cfg->write_bufs;
    s->wbuf_size = cfg->write_buf_bytes < WBUF_INITIAL ? cfg->write_buf_bytes : WBUF_INITIAL;
    for (uint32_t i = 0; i < cfg->write_bufs; i++) {
        s->wbufs[i].shard = s;
        s->wbufs[i].op.cb = shard_write_done;
    }
    /* Most opens find the directory (a restart): made only when missing. */
    s->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    rc = s->dir_fd >= 0 ? SL_OK : sl_err_from_errno(errno);
    if (rc == SL_ENOTFOUND) {
        rc = sl_mkdir_p(dir);
        if (rc == SL_OK) {
            s->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            rc = s->dir_fd < 0 ? sl_err_from_errno(errno) : SL_OK;
        }
    }
    if (rc == SL_OK) {
        rc = shard_recover_load(s);
    }
    if (rc != SL_OK) {
        sl_error("storage", "%s: cannot open shard: %s", dir, sl_strerror(rc));
        sl_shard_close(s);
        return rc;
    }
    s->visible_seq = s->written_seq = s->next_seq;
    s->retain_floor = SL_RETAIN_FLOOR_NONE;
    if (cfg->cache != NULL && cfg->cache->files_max > 0) {
        (void)shard_park(s, false); /* charged and reopened at its first use */
    }
    s->visible_time_ms = s->last_append_ms;
    *out = s;
    return SL_OK;
}

void sl_shard_close(struct sl_shard *s)
{
    if (s == NULL) {
        return;
    }
    shard_lru_remove(s);
    s->closing = true;
    if (s->ring != NULL && s->dir_fd >= 0) {
        shard_flush_deferred(&s->flush);
        /* Run the loop until every op of ours completed and every pending
         * append was acknowledged or failed (closing forces the fsyncs). */
        while (s->ops > 0 || s->pend_len > 0 || s->flush.queued || s->trunc_busy) {
            /* an armed INTERVAL timer is an op in flight for up to flush_interval_ms:
             * cancelled, closing syncs at once anyway */
            shard_timer_cancel(s);
            if (s->ops == 0 && s->pend_len > 0 && s->state != SL_OK) {
                shard_fail_pending_from(s, 0, s->state == SL_ENOSPC ? SL_ENOSPC : SL_EFATAL);
                break;
            }
            sl_ring_run(s->ring, s->ops > 0 ? 1 : 0, 0);
            shard_maybe_sync(s);
        }
        /* A clean close leaves no zero tail (unsynced: should it be lost,
         * recovery cuts the zeros as the clean end of the data). */
        struct segment *g = s->seg_count > 0 ? active(s) : NULL;
        if (g != NULL && g->log_fd >= 0 && g->zero_end > 0 && s->ops == 0 &&
            g->written_pos == g->bytes && s->state != SL_EFATAL) {
            (void)shard_zero_cut(s, g);
        }
    }
    for (uint32_t i = 0; i < s->seg_count; i++) {
        shard_seg_free(s->segs[i]);
    }
    free(s->segs);
    if (s->wbufs != NULL) {
        for (uint32_t i = 0; i < s->cfg.write_bufs; i++) {
            free(s->wbufs[i].data);
            free(s->wbufs[i].big);
        }
    }
    free(s->wbufs);
    free(s->fifo);
    free(s->pend);
    shard_dio_free(s);
    if (s->dir_fd >= 0) {
        close(s->dir_fd);
    }
    free(s->dir);
    free(s);
}

void sl_shard_io_times(const struct sl_shard *s, struct sl_shard_io_times *out)
{
    *out = s->io_last;
}

void sl_shard_stats_progress(const struct sl_shard *s, struct sl_shard_stats *st)
{
    st->first_seq = s->seg_count > 0 ? s->segs[0]->base_seq : 0;
    st->next_seq = s->next_seq;
    st->visible_seq = s->visible_seq;
    st->visible_time_ms = s->visible_time_ms;
    st->state = s->state;
    st->fatal_errno = s->fatal_errno;
    st->fatal_what = s->fatal_what;
}

void sl_shard_stats(const struct sl_shard *s, struct sl_shard_stats *st)
{
    *st = s->stats;
    sl_shard_stats_progress(s, st);
    st->bytes = 0;
    for (uint32_t i = 0; i < s->seg_count; i++) {
        st->bytes += s->segs[i]->bytes;
    }
    st->segments = s->seg_count;
    st->segments_open = s->segs_open;
}
