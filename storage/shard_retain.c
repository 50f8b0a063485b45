/* shard_retain.c - retention: deletes sealed segments past the time or
 * byte limit, never the newest one on disk (the active one, or the sealed one
 * before an active segment without files), never under a read.
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

static int unlink_segment_files(struct sl_shard *s, uint64_t base)
{
    char name[64];
    seg_name(name, sizeof(name), base, "log");
    if (sl_unlinkat(s->dir_fd, name, 0) != 0 && errno != ENOENT) {
        return sl_err_from_errno(errno);
    }
    seg_name(name, sizeof(name), base, "idx");
    if (sl_unlinkat(s->dir_fd, name, 0) != 0 && errno != ENOENT) {
        return sl_err_from_errno(errno);
    }
    return SL_OK;
}

#define RETAIN_AGAIN_NS 1000000u /* 1 ms: other work of the loop goes between two runs */

void shard_retain_done(struct sl_io_op *op, int res)
{
    (void)res; /* -ETIME on expiry; any other result also just means "now" */
    struct sl_shard *s = sl_container_of(op, struct sl_shard, retain_op);
    SL_ASSERT(s->retain_armed && s->ops > 0);
    s->ops--;
    s->retain_armed = false;
    if (!s->closing) {
        (void)sl_shard_retention_run(s);
    }
}

void sl_shard_set_retention(struct sl_shard *s, uint64_t retention_ms, uint64_t retention_bytes)
{
    SL_ASSERT(retention_ms >= 1 && retention_ms <= SL_RETENTION_MS_MAX);
    s->cfg.retention_ms = retention_ms;
    s->cfg.retention_bytes = retention_bytes;
}

void sl_shard_set_retention_floor(struct sl_shard *s, uint64_t seq)
{
    s->retain_floor = seq;
}

/* Whether the floor lets segment i go: every record of it is below the floor (the next
 * segment, which exists since the newest one always stays, starts where it ends). */
static bool below_floor(const struct sl_shard *s, uint32_t i)
{
    SL_ASSERT(i + 1 < s->seg_count);
    return s->segs[i + 1]->base_seq <= s->retain_floor;
}

uint32_t sl_shard_retention_run(struct sl_shard *s)
{
    uint64_t t = now_ms(s);
    uint64_t total = 0;
    for (uint32_t i = 0; i < s->seg_count; i++) {
        total += s->segs[i]->bytes;
    }
    /* Decided from memory when it can be (a parked shard stays parked): one
     * segment, or an oldest one whose last time is known and not expired. */
    const struct segment *first = s->seg_count > 0 ? s->segs[0] : NULL;
    bool over_cap = s->cfg.retention_bytes > 0 && total > s->cfg.retention_bytes;
    /* The newest segment on disk stays: it carries the sequence across a
     * restart. That is the active one, or the one before it while the active
     * one has no files yet (files_owed: out of descriptors at a roll). */
    uint32_t keep = s->files_owed ? 2u : 1u;
    if (s->seg_count <= keep || first->writing || !below_floor(s, 0) ||
        (!over_cap && first->last_time_ms != 0 && first->last_time_ms + s->cfg.retention_ms > t)) {
        return 0;
    }
    if (shard_touch(s) != SL_OK) {
        return 0; /* logged; retried next run */
    }
    uint32_t deleted = 0;
    while (s->seg_count - deleted > keep) {
        if (deleted == SL_RETAIN_DELETES_PER_RUN) {
            if (!s->retain_armed) { /* the rest at the next loop turn */
                s->retain_armed = true;
                s->ops++;
                sl_ring_timeout(s->ring, &s->retain_op, RETAIN_AGAIN_NS);
            }
            break;
        }
        struct segment *g = s->segs[deleted];
        if (g->writing || !below_floor(s, deleted)) {
            break; /* still sealing, or holding records the floor keeps */
        }
        bool over = s->cfg.retention_bytes > 0 && total > s->cfg.retention_bytes;
        bool expired = false;
        if (!over) {
            if (shard_seg_load(s, g) != SL_OK) {
                break; /* logged by shard_seg_load; retried next run */
            }
            expired = g->last_time_ms + s->cfg.retention_ms <= t;
        }
        if (!over && !expired) {
            break;
        }
        int rc = unlink_segment_files(s, g->base_seq);
        if (rc != SL_OK) {
            sl_error("storage", "%s: retention cannot delete segment %" PRIu64 ": %s", s->dir,
                     g->base_seq, sl_strerror(rc));
            break;
        }
        sl_info("storage", "%s: retention deleted segment %" PRIu64 " (%" PRIu64 " bytes, %s)",
                s->dir, g->base_seq, g->bytes, over ? "over the byte cap" : "expired");
        total -= g->bytes;
        g->deleted = true;
        if (g->refs == 0) {
            if (seg_loaded(g)) {
                s->segs_open--;
            }
            shard_seg_free(g);
        }
        deleted++;
    }
    if (deleted > 0) {
        memmove(s->segs, s->segs + deleted, (s->seg_count - deleted) * sizeof(*s->segs));
        s->seg_count -= deleted;
        /* The unlinks are durable once the directory is - by the ring's
         * directory fsync, not a blocking one on the loop; a crash before
         * that only brings the deleted segments back (the oldest ones, a
         * prefix) for the next run. The shard is not parked before it. */
        s->dir_gen++;
        shard_maybe_sync(s);
    }
    return deleted;
}
