/* statelog_park.c - the stores' descriptor budget: parking idle stores (their
 * directory and log closed, their staging buffers freed) and reopening them
 * on their next write, least recently used parked first.
 *
 * Why: a stream's checkpoint store and queue-state store each hold two
 * descriptors from first use to close; 12,500 streams with both would hold
 * 50,000, far beyond open_files_max. Under a budget only the stores in use
 * hold any.
 *
 * What must hold: a parked store is idle and durable - nothing staged, nothing
 * in flight (no write, fdatasync or timer op), nothing written that is not
 * fdatasynced (dirty false), state SL_OK, not closing - so log_bytes is the
 * log's size on disk and reopening is two openat()s and one fstat: no replay,
 * no fsync. The crash-safety order of statelog.c is untouched: parking only
 * closes descriptors of files whose every byte is durable. Reopening checks
 * the log is the same file (device, inode) at the same size; anything else
 * (cut, replaced, removed behind our back) makes the store fatal rather than
 * write at a wrong offset. Memory and state stay: a parked store costs its
 * store's tables, no descriptor and no staging buffer.
 *
 * Accounting: each unparked store in the cache is charged SL_STATELOG_FDS,
 * from the end of its open to its fini or park. A store being opened holds its
 * files uncharged for the open's duration (room is made first). Stores in use
 * cannot be parked, so a burst over many stores may exceed the budget until
 * their batches complete: the store whose batch completes asks for a trim
 * (statelog_settle), so an idle loop comes back within it.
 *
 * Threading: the ring's thread only (the cache and every store on it).
 */
#include "storage/statelog_int.h"

#include "common/assert.h"
#include "common/error.h"
#include "common/fileio.h"
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TRIM_TRIES 16u /* busy stores skipped per trim or shed: a use stays O(1) */

void sl_statelog_cache_init(struct sl_statelog_cache *c, uint32_t files_max)
{
    memset(c, 0, sizeof(*c));
    c->files_max = files_max;
}

static void lru_unlink(struct sl_statelog_cache *c, struct sl_statelog *sl)
{
    if (sl->lru_prev != NULL) {
        sl->lru_prev->lru_next = sl->lru_next;
    } else {
        c->head = sl->lru_next;
    }
    if (sl->lru_next != NULL) {
        sl->lru_next->lru_prev = sl->lru_prev;
    } else {
        c->tail = sl->lru_prev;
    }
    sl->lru_prev = sl->lru_next = NULL;
}

static void lru_push_head(struct sl_statelog_cache *c, struct sl_statelog *sl)
{
    sl->lru_prev = NULL;
    sl->lru_next = c->head;
    if (c->head != NULL) {
        c->head->lru_prev = sl;
    }
    c->head = sl;
    if (c->tail == NULL) {
        c->tail = sl;
    }
}

void statelog_lru_remove(struct sl_statelog *sl)
{
    struct sl_statelog_cache *c = sl->cfg.cache;
    if (!sl->in_lru) {
        return;
    }
    lru_unlink(c, sl);
    SL_ASSERT(c->files >= SL_STATELOG_FDS);
    c->files -= SL_STATELOG_FDS;
    sl->in_lru = false;
}

void statelog_lru_use(struct sl_statelog *sl)
{
    struct sl_statelog_cache *c = sl->cfg.cache;
    SL_ASSERT(!sl->parked && sl->dir_fd >= 0 && sl->log_fd >= 0);
    if (c == NULL) {
        return;
    }
    if (sl->in_lru) {
        lru_unlink(c, sl);
    } else {
        c->files += SL_STATELOG_FDS;
        sl->in_lru = true;
    }
    lru_push_head(c, sl);
    SL_ASSERT(c->head == sl && c->tail != NULL);
}

static bool parkable(const struct sl_statelog *sl)
{
    /* (A queued flush with nothing staged issues nothing: no reason to keep
     * the files.) */
    return sl->in_lru && !sl->parked && !sl->closing && sl->state == SL_OK && !sl->busy &&
           sl->ops == 0 && sl->stage.count == 0 && sl->fly.count == 0 && !sl->dirty &&
           !sl->timer_armed && !sl->cancel_armed && !sl->sync_due && sl->dir_fd >= 0 &&
           sl->log_fd >= 0;
}

static void batch_free(struct sl_statelog_batch *b)
{
    SL_ASSERT(b->count == 0);
    free(b->p);
    free(b->buf);
    *b = (struct sl_statelog_batch){0};
}

/* Parks `sl` if it is idle; false (nothing changed) if not. */
static bool park(struct sl_statelog *sl)
{
    if (!parkable(sl)) {
        return false;
    }
    struct stat st;
    if (fstat(sl->log_fd, &st) != 0) {
        return false; /* not expected; keep it open, the next trim tries another */
    }
    /* What unpark must find again: this file, at this size. */
    sl->log_dev = (uint64_t)st.st_dev;
    sl->log_ino = (uint64_t)st.st_ino;
    statelog_lru_remove(sl);
    close(sl->log_fd);
    close(sl->dir_fd);
    sl->log_fd = sl->dir_fd = -1;
    /* No op references the buffers (ops == 0); they grow back from their
     * first size at the next write. */
    batch_free(&sl->stage);
    batch_free(&sl->fly);
    sl->parked = true;
    SL_ASSERT(!sl->in_lru && sl->log_fd < 0 && sl->dir_fd < 0);
    return true;
}

/* The log is not the file, or not the size, the store left: refuse writes. */
static int changed(struct sl_statelog *sl, const char *how)
{
    sl_error("storage",
             "%s/%s: the %s log %s while the store was parked (expected %" PRIu64
             " bytes); writes are refused from now on (restore the file, or restart to recover "
             "what is on disk)",
             sl->dir, sl->cfg.log_name, sl->cfg.what, how, sl->log_bytes);
    sl->state = SL_EFATAL;
    return SL_EFATAL;
}

/* Reopens a parked store's directory and log. Nothing changes on failure
 * (except SL_EFATAL: the store is fatal). */
static int unpark(struct sl_statelog *sl)
{
    SL_ASSERT(sl->parked && sl->dir_fd < 0 && sl->log_fd < 0 && sl->state == SL_OK);
    const char *what = "directory";
    int e = 0;
    int lfd = -1;
    int dfd = open(sl->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        e = errno;
    } else {
        what = "log";
        lfd = openat(dfd, sl->cfg.log_name, O_RDWR | O_CLOEXEC);
        e = lfd < 0 ? errno : 0;
    }
    struct stat st;
    if (lfd >= 0 && fstat(lfd, &st) != 0) {
        e = errno;
    }
    if (e != 0) {
        if (lfd >= 0) {
            close(lfd);
        }
        if (dfd >= 0) {
            close(dfd);
        }
        if (e == ENOENT) {
            return changed(sl, "is gone");
        }
        int rc = sl_err_from_errno(e);
        if (rc != SL_ELIMIT) { /* out of descriptors: the caller sheds, retries, says why */
            sl_error("storage", "%s: cannot reopen the parked %s store's %s: %s", sl->dir,
                     sl->cfg.what, what, strerror(e));
        }
        return rc;
    }
    if ((uint64_t)st.st_dev != sl->log_dev || (uint64_t)st.st_ino != sl->log_ino ||
        (uint64_t)st.st_size != sl->log_bytes) {
        close(lfd);
        close(dfd);
        return changed(sl, (uint64_t)st.st_dev != sl->log_dev || (uint64_t)st.st_ino != sl->log_ino
                               ? "was replaced"
                               : "changed size");
    }
    sl->dir_fd = dfd;
    sl->log_fd = lfd;
    sl->parked = false;
    return SL_OK;
}

/* Parks least recently used idle stores (never `keep`) until `need` more
 * descriptors fit in the budget; a busy one goes back to the head. */
static void trim(struct sl_statelog_cache *c, const struct sl_statelog *keep, uint32_t need)
{
    SL_ASSERT(c->files_max > 0);
    for (uint32_t tries = 0; c->files + need > c->files_max && tries < TRIM_TRIES;) {
        struct sl_statelog *v = c->tail;
        if (v == NULL || v == keep) {
            return;
        }
        if (park(v)) {
            c->parks++;
        } else {
            lru_unlink(c, v);
            lru_push_head(c, v);
            tries++;
        }
    }
}

void statelog_cache_room(struct sl_statelog_cache *c)
{
    if (c != NULL && c->files_max > 0) {
        trim(c, NULL, SL_STATELOG_FDS);
    }
}

void statelog_settle(struct sl_statelog *sl)
{
    const struct sl_statelog_cache *c = sl->cfg.cache;
    if (c == NULL || c->files_max == 0 || c->files <= c->files_max || !sl->in_lru || sl->closing ||
        sl->trim_due || sl->busy || sl->ops > 0) {
        return;
    }
    sl->trim_due = true;
    sl_ring_defer(sl->ring, &sl->flush);
}

void statelog_cache_trim(struct sl_statelog *sl)
{
    struct sl_statelog_cache *c = sl->cfg.cache;
    SL_ASSERT(!sl->trim_due);
    if (c != NULL && c->files_max > 0) {
        trim(c, NULL, 0);
    }
}

uint32_t statelog_cache_shed(struct sl_statelog *sl)
{
    struct sl_statelog_cache *c = sl->cfg.cache;
    uint32_t freed = 0;
    if (c == NULL) {
        return 0;
    }
    /* Two stores' worth: what a reopen or an open needs, and some room for
     * the next one. */
    for (uint32_t tries = 0; freed < 2 * SL_STATELOG_FDS && tries < TRIM_TRIES;) {
        struct sl_statelog *v = c->tail;
        if (v == NULL || v == sl) {
            break;
        }
        if (park(v)) {
            c->parks++;
            freed += SL_STATELOG_FDS;
        } else {
            lru_unlink(c, v);
            lru_push_head(c, v);
            tries++;
        }
    }
    if (freed > 0) {
        sl_info("storage", "%s: out of descriptors: parked idle %s stores, %u descriptors freed",
                sl->dir, sl->cfg.what, freed);
    }
    return freed;
}

int sl_statelog_touch(struct sl_statelog *sl)
{
    SL_ASSERT(sl->state == SL_OK && !sl->closing);
    struct sl_statelog_cache *c = sl->cfg.cache;
    if (sl->parked) {
        SL_ASSERT(c != NULL && !sl->in_lru);
        int rc = unpark(sl);
        if (rc == SL_ELIMIT && statelog_cache_shed(sl) > 0) {
            rc = unpark(sl); /* once: what the others freed */
        }
        if (rc == SL_ELIMIT && sl_log_level_min <= SL_LOG_ERROR && sl_log_ratelimit_ok(&sl->rl)) {
            char why[160];
            sl_nofile_why(why, sizeof(why));
            sl_error("storage", "%s: cannot reopen the parked %s store: %s", sl->dir, sl->cfg.what,
                     why);
        }
        if (rc != SL_OK) {
            SL_ASSERT(sl->parked && sl->log_fd < 0);
            return rc;
        }
        c->unparks++;
    }
    if (c == NULL) {
        return SL_OK;
    }
    statelog_lru_use(sl);
    if (c->files_max > 0) {
        trim(c, sl, 0);
    }
    SL_ASSERT(!sl->parked && sl->in_lru && sl->log_fd >= 0);
    return SL_OK;
}
