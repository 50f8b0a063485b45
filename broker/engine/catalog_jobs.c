/* catalog_jobs.c - the catalog's file work off the main loop: background
 * creates, and the lazy loading of the streams found at start-up.
 *
 * Creator threads (CREATORS) take jobs from two queues under c->mu, creates
 * first (a client waits for each), then loads. A create makes the stream's
 * files (a batch of creates shares the fsync of streams/) and opens its
 * logs; a load opens the logs of a stream found at start-up - each shard
 * recovered (storage/shard_recover.c) - and rebuilds its producers' de-dup
 * tables. A creator touches only its jobs' streams (a create's is not in
 * the catalog yet; a load's shards are touched by nothing else until it is
 * installed) and the catalog's read-only fields. Logs are opened with their
 * owners' rings and used first by their owners once the main loop adopted
 * them (sl_catalog_poll).
 *
 * Lazy loading: sl_catalog_open reads every stream.meta, queues one load per
 * stream and returns: the broker serves while the creators load. A stream
 * is `loaded` once its load is installed. Used before that (sl_catalog_find),
 * it is loaded at once: a load still queued is taken back and run on the
 * main loop, a load a creator holds is waited for. So no append or read of
 * a shard runs before that shard's own recovery, and recovery costs the loop
 * only for a stream used before the background reached it.
 */
#include "broker/engine/catalog_int.h"

#include "common/assert.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/fileio.h"
#include "common/log.h"
#include "common/ring.h"
#include "common/thread.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

static void *creator_main(void *arg);

/* ---- the creators' wake-up of the loop ------------------------------------ */

static void on_wake(struct sl_io_op *op, int res)
{
    struct sl_catalog *c = sl_container_of(op, struct sl_catalog, wake_op);
    c->wake_armed = false; /* the loop turn after this runs sl_catalog_poll */
    if (res < 0 && res != -EINTR) {
        sl_warn("catalog", "creators' wake-up read failed: %s (creates finish at the tick)",
                strerror(-res));
        return;
    }
    if (!c->closing) {
        sl_ring_read(c->ring, &c->wake_op, c->wake_fd, &c->wake_val, sizeof(c->wake_val), 0);
        c->wake_armed = true;
    }
}

/* An eventfd with a read armed on it. */
static int wake_arm(struct sl_catalog *c)
{
    c->wake_fd = eventfd(0, EFD_CLOEXEC);
    if (c->wake_fd < 0) {
        return sl_err_from_errno(errno);
    }
    c->wake_op.cb = on_wake;
    sl_ring_read(c->ring, &c->wake_op, c->wake_fd, &c->wake_val, sizeof(c->wake_val), 0);
    c->wake_armed = true;
    return SL_OK;
}

/* Completes the armed read (closing: not armed again), so the ring names
 * nothing of a freed catalog; then closes the eventfd. */
static void wake_disarm(struct sl_catalog *c)
{
    if (c->wake_armed) {
        uint64_t one = 1;
        ssize_t n = write(c->wake_fd, &one, sizeof(one));
        SL_ASSERT(n == (ssize_t)sizeof(one));
        while (c->wake_armed) {
            sl_ring_run(c->ring, 1, 0);
        }
    }
    if (c->wake_fd >= 0) {
        close(c->wake_fd);
        c->wake_fd = -1;
    }
}

/* Wakes the main loop: its armed read of wake_fd completes, and the loop
 * turn that follows runs sl_catalog_poll (sl_events_turn). */
static void creator_wake(struct sl_catalog *c)
{
    uint64_t one = 1;
    ssize_t n;
    do {
        n = write(c->wake_fd, &one, sizeof(one));
    } while (n < 0 && errno == EINTR);
    /* (an eventfd's counter only overflows after 2^64 - 2 writes) */
}

int catalog_jobs_start(struct sl_catalog *c)
{
    c->todo_tail = &c->todo;
    int rc = wake_arm(c);
    for (uint32_t i = 0; i < CREATORS && rc == SL_OK; i++) {
        rc = sl_thread_start(&c->creators[i], creator_main, c); /* takes no signal */
        c->creators_started += rc == SL_OK;
    }
    return rc;
}

/* ---- jobs ---------------------------------------------------------------- */

static struct catalog_job *job_new(enum catalog_job_kind kind, struct sl_stream *st)
{
    struct catalog_job *j = calloc(1, sizeof(*j));
    if (j != NULL && (j->logs = calloc(st->shard_count, sizeof(*j->logs))) == NULL) {
        free(j);
        j = NULL;
    }
    if (j != NULL) {
        j->kind = kind;
        j->st = st;
    }
    return j;
}

static void job_free(struct catalog_job *j)
{
    free(j->logs);
    free(j);
}

/* A batch of creates: the directories and stream.meta of each, then one
 * fsync of streams/ for all of them (group commit: the fsync that makes a
 * stream exist is shared), then each one's logs. */
static void run_creates(struct sl_catalog *c, struct catalog_job *batch)
{
    bool made = false;
    for (struct catalog_job *j = batch; j != NULL; j = j->next) {
        j->rc = catalog_create_dirs(c, j->st);
        made = made || j->rc == SL_OK;
    }
    int rc = made ? catalog_create_commit(c) : SL_OK;
    for (struct catalog_job *j = batch; j != NULL; j = j->next) {
        if (j->rc == SL_OK) {
            j->rc = rc != SL_OK ? rc : catalog_shards_init(c, j->st);
        }
        if (j->rc == SL_OK) {
            j->rc = catalog_open_logs(c, j->st, false, false, j->logs, j->why, sizeof(j->why));
        }
        if (j->rc != SL_OK) {
            catalog_create_why(j->why, sizeof(j->why), j->st->name, j->rc);
        }
    }
}

/* One load: the stream's logs opened, its producers re-learnt. */
static void run_load(struct sl_catalog *c, struct catalog_job *j, bool synced)
{
    j->rc = catalog_open_logs(c, j->st, true, synced, j->logs, j->why, sizeof(j->why));
}

/* Under mu: the syncfs of streams/, run once by the first creator that loads
 * (the others wait for it). Returns true when it succeeded. A load the main
 * loop runs before it finished syncs each shard instead (it does not wait). */
static bool loads_synced(struct sl_catalog *c)
{
    if (c->sync_state == SYNC_NONE) {
        c->sync_state = SYNC_RUNNING;
        pthread_mutex_unlock(&c->mu);
        uint64_t t0 = sl_clock_mono_ns();
        int rc = sl_syncfs_path(c->streams_dir);
        if (rc != SL_OK) {
            sl_warn("catalog", "syncfs of %s failed (%s): each shard syncs its own recovery",
                    c->streams_dir, sl_strerror(rc));
        } else {
            sl_debug("catalog", "syncfs of %s: %" PRIu64 " ms", c->streams_dir,
                     (sl_clock_mono_ns() - t0) / 1000000u);
        }
        pthread_mutex_lock(&c->mu);
        c->sync_state = rc == SL_OK ? SYNC_DONE : SYNC_FAILED;
        pthread_cond_broadcast(&c->done_cv);
    }
    while (c->sync_state == SYNC_RUNNING) {
        pthread_cond_wait(&c->done_cv, &c->mu);
    }
    return c->sync_state == SYNC_DONE;
}

/* Takes up to `max` jobs off the head of a queue (a share of what waits, so
 * that the other creators work too); under mu. */
static struct catalog_job *take(struct catalog_job **head, uint32_t *len, uint32_t max)
{
    uint32_t n = (*len + CREATORS - 1) / CREATORS;
    n = n < max ? n : max;
    struct catalog_job *batch = *head, *last = batch;
    last->started = true;
    for (uint32_t k = 1; k < n && last->next != NULL; k++) {
        last = last->next;
        last->started = true;
    }
    *head = last->next;
    last->next = NULL;
    for (struct catalog_job *j = batch; j != NULL; j = j->next) {
        (*len)--;
    }
    return batch;
}

static void *creator_main(void *arg)
{
    struct sl_catalog *c = arg;
    pthread_mutex_lock(&c->mu);
    for (;;) {
        while (!c->creator_stop && c->todo == NULL && c->loads == NULL) {
            pthread_cond_wait(&c->cv, &c->mu);
        }
        if (c->creator_stop) {
            break;
        }
        struct catalog_job *batch;
        if (c->todo != NULL) {
            batch = take(&c->todo, &c->todo_len, CREATE_BATCH_MAX);
            if (c->todo == NULL) {
                c->todo_tail = &c->todo;
            }
            pthread_mutex_unlock(&c->mu);
            run_creates(c, batch);
        } else {
            bool synced = loads_synced(c); /* (may drop mu while it runs) */
            if (c->loads == NULL || c->creator_stop) {
                continue; /* taken back meanwhile */
            }
            batch = take(&c->loads, &c->loads_len, LOAD_BATCH_MAX);
            if (c->loads != NULL) {
                c->loads->prev = NULL;
            } else {
                c->loads_tail = NULL;
            }
            pthread_mutex_unlock(&c->mu);
            for (struct catalog_job *j = batch; j != NULL; j = j->next) {
                run_load(c, j, synced);
            }
        }
        pthread_mutex_lock(&c->mu);
        struct catalog_job *last = batch;
        for (; last->next != NULL; last = last->next) {
            last->finished = true;
        }
        last->finished = true;
        last->next = c->done;
        c->done = batch;
        pthread_cond_broadcast(&c->done_cv);
        creator_wake(c);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

/* ---- creates -------------------------------------------------------------- */

bool catalog_pending_name(const struct sl_catalog *c, const char *name)
{
    for (const struct catalog_job *j = c->pending; j != NULL; j = j->next_live) {
        if (strcmp(j->st->name, name) == 0) {
            return true;
        }
    }
    return false;
}

int sl_catalog_create_async(struct sl_catalog *c, const char *name, uint32_t shard_count,
                            uint32_t retention_hours, uint64_t retention_bytes,
                            const char *compression, unsigned flags, uint64_t cluster_id,
                            sl_catalog_created_cb cb,
                            void *ctx, char *why, size_t why_len)
{
    struct create_waiter *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        snprintf(why, why_len, "out of memory");
        return SL_ENOMEM;
    }
    *w = (struct create_waiter){.cb = cb, .ctx = ctx};
    bool join = (flags & SL_CATALOG_CREATE_JOIN) != 0;
    for (struct catalog_job *j = c->pending; j != NULL && join; j = j->next_live) {
        if (strcmp(j->st->name, name) == 0) { /* being created: wait for it, in order */
            struct create_waiter **pp = &j->waiters;
            while (*pp != NULL) {
                pp = &(*pp)->next;
            }
            *pp = w;
            return SL_OK;
        }
    }
    struct sl_stream *st = NULL;
    int rc = catalog_create_prepare(c, name, shard_count, retention_hours, retention_bytes,
                                    compression, &st, why, why_len);
    if (rc == SL_OK) {
        st->cluster = (flags & SL_CATALOG_CREATE_CLUSTER) != 0; /* (in stream.meta) */
        st->cluster_id = st->cluster ? cluster_id : 0;
    }
    struct catalog_job *j = rc == SL_OK ? job_new(JOB_CREATE, st) : NULL;
    if (j == NULL) {
        if (rc == SL_OK) {
            catalog_stream_free(c, st);
            snprintf(why, why_len, "out of memory");
            rc = SL_ENOMEM;
        }
        free(w);
        return rc;
    }
    j->waiters = w;
    j->next_live = c->pending;
    c->pending = j;
    c->pending_streams++;
    c->pending_shards += shard_count;
    pthread_mutex_lock(&c->mu);
    *c->todo_tail = j;
    c->todo_tail = &j->next;
    c->todo_len++;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    return SL_OK;
}

/* A finished create: its stream installed (or its leftovers closed), its
 * waiters told. `closing`: the catalog is closing, waiters get ECLOSED. */
static void create_install(struct sl_catalog *c, struct catalog_job *j, bool closing)
{
    for (struct catalog_job **pp = &c->pending; *pp != NULL; pp = &(*pp)->next_live) {
        if (*pp == j) {
            *pp = j->next_live;
            break;
        }
    }
    struct sl_stream *st = j->st;
    SL_ASSERT(c->pending_streams > 0 && c->pending_shards >= st->shard_count);
    c->pending_streams--;
    c->pending_shards -= st->shard_count;
    if (st->shards != NULL) { /* the owners take the logs (and close them on failure) */
        catalog_adopt_logs(c, st, j->logs);
    }
    if (j->rc == SL_OK && catalog_index_reserve(c) != SL_OK) {
        j->rc = SL_ENOMEM;
        snprintf(j->why, sizeof(j->why), "cannot create stream %s: %s", st->name,
                 sl_strerror(SL_ENOMEM));
    }
    if (j->rc == SL_OK) {
        st->loaded = true;
        catalog_index_add(c, st);
        sl_info("catalog", "created stream %s: %u shards, retention %u h", st->name,
                st->shard_count, st->retention_hours);
    } else {
        char name[SL_STREAM_NAME_MAX + 1];
        snprintf(name, sizeof(name), "%s", st->name);
        sl_error("catalog", "%s", j->why);
        catalog_stream_free(c, st);
        if (j->started) {
            (void)catalog_move_to_trash(c, name);
        }
    }
    int rc = closing ? SL_ECLOSED : j->rc;
    const char *why = closing ? "the broker is shutting down" : j->why;
    while (j->waiters != NULL) {
        struct create_waiter *w = j->waiters;
        j->waiters = w->next;
        w->cb(w->ctx, rc, why);
        free(w);
    }
    job_free(j);
}

/* ---- loads ---------------------------------------------------------------- */

/* Takes a queued load off `loads`; under mu. */
static void loads_unlink(struct sl_catalog *c, struct catalog_job *j)
{
    SL_ASSERT(c->loads_len > 0);
    if (j->prev != NULL) {
        j->prev->next = j->next;
    } else {
        c->loads = j->next;
    }
    if (j->next != NULL) {
        j->next->prev = j->prev;
    } else {
        c->loads_tail = j->prev;
    }
    j->next = j->prev = NULL;
    c->loads_len--;
}

int catalog_load_queue(struct sl_catalog *c, struct sl_stream *st)
{
    struct catalog_job *j = job_new(JOB_LOAD, st);
    if (j == NULL) {
        return SL_ENOMEM;
    }
    st->load_job = j;
    pthread_mutex_lock(&c->mu);
    j->prev = c->loads_tail;
    if (c->loads_tail != NULL) {
        c->loads_tail->next = j;
    } else {
        c->loads = j;
    }
    c->loads_tail = j;
    c->loads_len++;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    return SL_OK;
}

/* A finished load: the owners take the logs; the stream is loaded, or its
 * shards are closed again and the error kept (the next use after
 * LOAD_RETRY_MS tries again). */
static void load_install(struct sl_catalog *c, struct catalog_job *j)
{
    struct sl_stream *st = j->st;
    SL_ASSERT(!st->loaded && st->load_job == j);
    st->load_job = NULL;
    catalog_adopt_logs(c, st, j->logs);
    if (j->rc == SL_OK) {
        j->rc = catalog_stores_open_present(c, st, j->why, sizeof(j->why));
    }
    free(st->load_why);
    st->load_why = NULL;
    if (j->rc != SL_OK) {
        catalog_close_logs(c, &st, 1);
        for (uint32_t i = 0; i < st->shard_count; i++) {
            sl_dedup_fini(&st->shards[i]->dedup);
        }
        st->load_rc = j->rc;
        st->load_failed_ms = sl_clock_mono_ms();
        st->load_why = strdup(j->why);
        sl_error("catalog", "%s", j->why);
        job_free(j);
        return;
    }
    st->loaded = true;
    st->load_rc = SL_OK;
    SL_ASSERT(c->unloaded > 0);
    if (--c->unloaded == 0) {
        sl_info("catalog", "all %u streams loaded, %" PRIu64 " ms after start-up", c->n_streams,
                (sl_clock_mono_ns() - c->load_start_ns) / 1000000u);
    }
    job_free(j);
}

int catalog_load_now(struct sl_catalog *c, struct sl_stream *st, char *why, size_t why_len)
{
    SL_ASSERT(!st->loaded);
    struct catalog_job *j = st->load_job;
    if (j == NULL && st->load_rc != SL_OK &&
        sl_clock_mono_ms() < st->load_failed_ms + LOAD_RETRY_MS) {
        snprintf(why, why_len, "%s", st->load_why != NULL ? st->load_why : "");
        return st->load_rc;
    }
    bool run_here = true;
    pthread_mutex_lock(&c->mu);
    bool synced = c->sync_state == SYNC_DONE;
    pthread_mutex_unlock(&c->mu);
    if (j != NULL) {
        pthread_mutex_lock(&c->mu);
        if (!j->started) { /* still queued: taken back */
            j->started = true;
            loads_unlink(c, j);
        } else { /* a creator holds it: wait, then take it off `done` */
            while (!j->finished) {
                pthread_cond_wait(&c->done_cv, &c->mu);
            }
            for (struct catalog_job **pp = &c->done; *pp != NULL; pp = &(*pp)->next) {
                if (*pp == j) {
                    *pp = j->next;
                    break;
                }
            }
            run_here = false;
        }
        pthread_mutex_unlock(&c->mu);
    } else {
        j = job_new(JOB_LOAD, st);
        if (j == NULL) {
            snprintf(why, why_len, "cannot load stream %s: out of memory", st->name);
            return SL_ENOMEM;
        }
        st->load_job = j;
    }
    if (run_here) {
        run_load(c, j, synced);
    }
    load_install(c, j);
    if (!st->loaded) {
        snprintf(why, why_len, "%s", st->load_why != NULL ? st->load_why : "");
    }
    return st->load_rc;
}

void catalog_load_settle(struct sl_catalog *c, struct sl_stream *st)
{
    struct catalog_job *j = st->load_job;
    if (j == NULL) {
        return;
    }
    pthread_mutex_lock(&c->mu);
    bool queued = !j->started;
    if (queued) { /* taken back and dropped: nothing was opened */
        loads_unlink(c, j);
    }
    pthread_mutex_unlock(&c->mu);
    if (queued) {
        st->load_job = NULL;
        job_free(j);
        return;
    }
    char why[256];
    (void)catalog_load_now(c, st, why, sizeof(why)); /* waits for the creator */
}

/* ---- installing, stopping --------------------------------------------------- */

static void install(struct sl_catalog *c, struct catalog_job *j, bool closing)
{
    if (j->kind == JOB_CREATE) {
        create_install(c, j, closing);
    } else {
        load_install(c, j);
    }
}

void sl_catalog_poll(struct sl_catalog *c)
{
    if (c->pending == NULL && c->unloaded == 0) {
        return; /* no job can be done: every turn of the loop passes here */
    }
    pthread_mutex_lock(&c->mu);
    struct catalog_job *done = c->done;
    c->done = NULL;
    pthread_mutex_unlock(&c->mu);
    while (done != NULL) {
        struct catalog_job *j = done;
        done = j->next;
        install(c, j, false);
    }
}

void catalog_jobs_stop(struct sl_catalog *c)
{
    if (c->creators_started > 0) { /* the batches in hand finish; the rest never start */
        pthread_mutex_lock(&c->mu);
        c->creator_stop = true;
        pthread_cond_broadcast(&c->cv);
        pthread_mutex_unlock(&c->mu);
        for (uint32_t i = 0; i < c->creators_started; i++) {
            pthread_join(c->creators[i], NULL);
        }
        c->creators_started = 0;
    }
    wake_disarm(c);
    /* (the mutex and conditions stay initialised until free: nothing to undo) */
    while (c->done != NULL) { /* finished: installed, so that closing closes their logs */
        struct catalog_job *j = c->done;
        c->done = j->next;
        install(c, j, true);
    }
    while (c->loads != NULL) { /* never started */
        struct catalog_job *j = c->loads;
        c->loads = j->next;
        j->st->load_job = NULL;
        job_free(j);
    }
    c->loads_tail = NULL;
    while (c->pending != NULL) { /* creates never started: told ECLOSED */
        struct catalog_job *j = c->pending;
        j->rc = SL_ECLOSED;
        snprintf(j->why, sizeof(j->why), "the broker is shutting down");
        create_install(c, j, true);
    }
    c->todo = NULL;
    c->todo_tail = &c->todo;
}
