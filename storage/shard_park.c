/* shard_park.c - the descriptor budget: parking quiescent shards (their
 * descriptors closed, their writing index and buffers freed) and reopening
 * them on their next use, least recently used parked first.
 *
 * What must hold: a parked shard has nothing in flight and nothing pending,
 * one writing segment whose data is synced and whose every index entry is on
 * disk, so reopening is two openat()s and one read of the .idx — no scan, no
 * fsync. Everything else (sequences, sizes, times, the sealed segments'
 * list) stays in memory: a parked shard costs its struct and its segment
 * list. Only the ring's thread calls these (sl_shard_open parks without
 * touching the cache: it may run on another thread).
 */
#include "storage/shard_int.h"

#include "common/assert.h"
#include "common/error.h"
#include "common/fileio.h"
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TRIM_TRIES 16u /* busy shards skipped per trim: a trim stays O(1) */
#define UNPARK_FDS 3u  /* what unpark opens: the directory, the .log and the .idx */

void sl_shard_cache_init(struct sl_shard_cache *c, uint64_t files_max)
{
    memset(c, 0, sizeof(*c));
    c->files_max = files_max;
}

void sl_shard_cache_fini(struct sl_shard_cache *c)
{
    while (c->spare_len > 0) {
        free(c->spare[--c->spare_len]);
    }
}

/* An upper bound of what the shard holds: its directory, two per writing
 * segment, one per loaded sealed segment. */
static uint32_t shard_fds(const struct sl_shard *s)
{
    uint32_t per = shard_direct(s) ? 3u : 2u; /* .log, .idx (and the O_DIRECT .log) */
    return (s->dir_fd >= 0 ? 1u : 0u) + s->segs_open + per * s->writing_count;
}

static void lru_unlink(struct sl_shard_cache *c, struct sl_shard *s)
{
    if (s->lru_prev != NULL) {
        s->lru_prev->lru_next = s->lru_next;
    } else {
        c->head = s->lru_next;
    }
    if (s->lru_next != NULL) {
        s->lru_next->lru_prev = s->lru_prev;
    } else {
        c->tail = s->lru_prev;
    }
    s->lru_prev = s->lru_next = NULL;
}

static void lru_push_head(struct sl_shard_cache *c, struct sl_shard *s)
{
    s->lru_prev = NULL;
    s->lru_next = c->head;
    if (c->head != NULL) {
        c->head->lru_prev = s;
    }
    c->head = s;
    if (c->tail == NULL) {
        c->tail = s;
    }
}

void shard_lru_remove(struct sl_shard *s)
{
    struct sl_shard_cache *c = s->cfg.cache;
    if (!s->in_lru) {
        return;
    }
    lru_unlink(c, s);
    SL_ASSERT(c->files >= s->charged);
    c->files -= s->charged;
    s->charged = 0;
    s->in_lru = false;
}

static bool parkable(const struct sl_shard *s)
{
    if (s->closing || s->parked || s->ops > 0 || s->pend_len > 0 || s->fifo_len > 0 ||
        s->filling != NULL || s->flush.queued || s->writing_count != 1 || s->state != SL_OK ||
        s->failing || s->dir_busy || s->sync_busy || s->timer_armed || s->retain_armed || s->wb_busy ||
        s->dir_synced_gen != s->dir_gen || s->seg_count == 0) {
        return false;
    }
    const struct segment *g = s->segs[s->seg_count - 1];
    bool files = s->files_owed ? g->log_fd < 0 && g->idx_fd < 0 && g->bytes == 0
                               : g->log_fd >= 0 && g->idx_fd >= 0;
    return g->writing && files && !g->idx_busy &&
           g->idx_written == g->idx_count && g->idx_partial == 0 && g->written_pos == g->bytes &&
           g->synced_pos == g->bytes && g->refs == 0;
}

bool shard_park(struct sl_shard *s, bool owner)
{
    if (!parkable(s)) {
        return false;
    }
    shard_lru_remove(s);
    for (uint32_t i = 0; i + 1 < s->seg_count; i++) {
        struct segment *g = s->segs[i];
        if (seg_loaded(g)) {
            SL_ASSERT(g->refs == 0 && !g->writing);
            shard_seg_unload(g);
            s->segs_open--;
        }
    }
    /* The writing segment keeps its counts and positions; its entries are
     * all on disk (idx_written == idx_count), read back by unpark. */
    struct segment *g = active(s);
    SL_ASSERT(!s->zero_busy); /* (ops == 0) */
    if (!s->files_owed) {
        /* An idle shard holds no zero tail (unsynced: recovery cuts one a
         * crash leaves). Should the cut fail, the tail stays, and is cut by
         * the seal or the close. */
        (void)shard_zero_cut(s, g);
        shard_dio_close(g);
        close(g->log_fd);
        close(g->idx_fd);
        g->log_fd = g->idx_fd = -1;
    }
    free(g->idx);
    g->idx = NULL;
    g->idx_cap = 0;
    for (uint32_t i = 0; i < s->cfg.write_bufs; i++) {
        SL_ASSERT(s->wbufs[i].state == WBUF_FREE && s->wbufs[i].big == NULL);
        struct sl_shard_cache *c = s->cfg.cache;
        /* (direct: aligned buffers with slack, not the spares' size) */
        if (owner && c != NULL && !shard_direct(s) && s->wbufs[i].data_cap == WBUF_INITIAL &&
            c->spare_len < SL_SHARD_SPARE_BUFS) {
            c->spare[c->spare_len++] = s->wbufs[i].data; /* (only the owner's thread) */
        } else {
            free(s->wbufs[i].data);
        }
        s->wbufs[i].data = NULL;
        s->wbufs[i].data_cap = 0;
    }
    s->wbuf_size = s->cfg.write_buf_bytes < WBUF_INITIAL ? s->cfg.write_buf_bytes : WBUF_INITIAL;
    free(s->pend);
    s->pend = NULL;
    s->pend_cap = 0;
    s->pend_head = 0;
    shard_dio_free(s);
    close(s->dir_fd);
    s->dir_fd = -1;
    s->parked = true;
    SL_ASSERT(s->segs_open == 0);
    return true;
}

static int unpark(struct sl_shard *s)
{
    SL_ASSERT(s->parked && s->dir_fd < 0);
    struct segment *g = active(s);
    const char *what = "directory";
    char name[64];
    int rc = SL_OK;
    /* A shard that owes its files has none to open (and no entry to read):
     * the append that reopened it makes them (pay_files). */
    bool files = !s->files_owed;
    s->dir_fd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->dir_fd >= 0 && files) {
        what = "log";
        seg_name(name, sizeof(name), g->base_seq, "log");
        g->log_fd = openat(s->dir_fd, name, O_RDWR | O_CLOEXEC);
    }
    if (g->log_fd >= 0) {
        what = "index";
        seg_name(name, sizeof(name), g->base_seq, "idx");
        g->idx_fd = openat(s->dir_fd, name, O_RDWR | O_CLOEXEC);
    }
    if (s->dir_fd < 0 || (files && g->idx_fd < 0)) {
        int e = errno;
        rc = sl_err_from_errno(e);
        if (rc != SL_ELIMIT) { /* out of descriptors: shard_touch retries, then says why */
            sl_error("storage", "%s: cannot reopen the shard's %s: %s", s->dir, what, strerror(e));
        }
    }
    if (rc == SL_OK && files && shard_direct(s)) {
        rc = shard_dio_open(s, g);
    }
    if (rc == SL_OK) {
        g->idx_cap = g->idx_count > IDX_INITIAL ? g->idx_count : IDX_INITIAL;
        g->idx = malloc((size_t)g->idx_cap * sizeof(*g->idx));
        rc = g->idx != NULL ? SL_OK : SL_ENOMEM;
    }
    if (rc == SL_OK) {
        size_t want = (size_t)g->idx_count * sizeof(*g->idx), got = 0;
        rc = sl_pread_full(g->idx_fd, g->idx, want, 0, &got);
        if (rc == SL_OK && (got != want || shard_idx_valid_prefix(g, g->idx, g->idx_count,
                                                                  g->bytes) != g->idx_count)) {
            sl_error("storage",
                     "%s: segment %" PRIu64 ": the index changed on disk while the shard was "
                     "parked; not served",
                     s->dir, g->base_seq);
            rc = SL_ECORRUPT;
        }
    }
    if (rc != SL_OK) {
        free(g->idx);
        g->idx = NULL;
        g->idx_cap = 0;
        if (g->idx_fd >= 0) {
            close(g->idx_fd);
        }
        shard_dio_close(g);
        if (g->log_fd >= 0) {
            close(g->log_fd);
        }
        if (s->dir_fd >= 0) {
            close(s->dir_fd);
        }
        g->idx_fd = g->log_fd = s->dir_fd = -1;
        return rc;
    }
    g->zero_gate = g->bytes; /* the run-ahead waits for traffic again */
    s->parked = false;
    return SL_OK;
}

/* Parks least recently used shards (never `keep`) while the budget is
 * exceeded; a busy one goes back to the head. */
static void trim(struct sl_shard_cache *c, const struct sl_shard *keep)
{
    for (uint32_t tries = 0; c->files > c->files_max && tries < TRIM_TRIES;) {
        struct sl_shard *v = c->tail;
        if (v == NULL || v == keep) {
            return;
        }
        if (shard_park(v, true)) {
            c->parks++;
        } else {
            lru_unlink(c, v);
            lru_push_head(c, v);
            tries++;
        }
    }
}

/* Called at the end of an I/O completion. The budget is applied when a shard
 * is used (shard_touch trims), but a shard in use cannot be parked: after a
 * burst over many shards each trim found the others busy, and with nothing
 * used afterwards they all stayed open, over the budget, for good (seen: 32
 * shards written at once under a budget of 4 kept 96 descriptors while idle).
 * So a shard that goes quiet while the budget is exceeded asks for a trim at
 * the end of the loop's tick, through its flush deferral: outside any
 * callback, where parking any quiet shard - this one too - is safe. */
void shard_settle(struct sl_shard *s)
{
    const struct sl_shard_cache *c = s->cfg.cache;
    if (c == NULL || c->files_max == 0 || c->files <= c->files_max || !s->in_lru ||
        s->closing || s->trim_due || s->ops > 0 || s->pend_len > 0) {
        return;
    }
    s->trim_due = true;
    sl_ring_defer(s->ring, &s->flush);
}

/* Parks least recently used quiet shards of s's cache (s too) while it is over
 * its budget. Only from s's flush deferral (see shard_settle). */
void shard_cache_trim(struct sl_shard *s)
{
    struct sl_shard_cache *c = s->cfg.cache;
    if (c != NULL && c->files_max > 0) {
        trim(c, NULL);
    }
}

/* Out of descriptors (EMFILE/ENFILE) on the ring's thread: parks the least
 * recently used idle shards of s's cache (never s), whatever the budget says,
 * until `want` descriptors were freed or TRIM_TRIES busy ones were skipped.
 * Returns the descriptors freed (0: no cache, or nothing idle). Parking is
 * what the budget does anyway; it only comes early, and a parked shard
 * reopens on its next use. */
uint32_t shard_cache_shed(struct sl_shard *s, uint32_t want)
{
    struct sl_shard_cache *c = s->cfg.cache;
    uint32_t freed = 0;
    if (c == NULL) {
        return 0;
    }
    for (uint32_t tries = 0; freed < want && tries < TRIM_TRIES;) {
        struct sl_shard *v = c->tail;
        if (v == NULL || v == s) {
            break;
        }
        uint32_t fds = shard_fds(v);
        if (shard_park(v, true)) {
            c->parks++;
            freed += fds;
        } else {
            lru_unlink(c, v);
            lru_push_head(c, v);
            tries++;
        }
    }
    if (freed > 0) {
        sl_info("storage", "%s: out of descriptors: parked idle shards, %u descriptors freed",
                s->dir, freed);
    }
    return freed;
}

int shard_touch(struct sl_shard *s)
{
    struct sl_shard_cache *c = s->cfg.cache;
    if (s->parked) {
        int rc = unpark(s);
        if (rc == SL_ELIMIT && shard_cache_shed(s, UNPARK_FDS + (shard_direct(s) ? 1u : 0u)) > 0) {
            rc = unpark(s); /* once: what parking freed, another thread may take */
        }
        if (rc == SL_ELIMIT && sl_log_level_min <= SL_LOG_ERROR && sl_log_ratelimit_ok(&s->rl)) {
            char why[160];
            sl_nofile_why(why, sizeof(why));
            sl_error("storage", "%s: cannot reopen the parked shard: %s", s->dir, why);
        }
        if (rc != SL_OK) {
            return rc;
        }
        if (c != NULL) {
            c->unparks++;
        }
    }
    if (c == NULL) {
        return SL_OK;
    }
    if (s->in_lru) {
        lru_unlink(c, s);
    }
    lru_push_head(c, s);
    s->in_lru = true;
    uint32_t fds = shard_fds(s);
    c->files = c->files - s->charged + fds;
    s->charged = fds;
    if (c->files_max > 0) {
        trim(c, s);
    }
    return SL_OK;
}
