/* catalog.c - streams on disk and in memory.
 *
 * Layout (docs/FORMAT.md §5):
 *   <data>/streams/<name>/stream.meta   "key=value" lines, last line
 *                                       "check=<16 hex digits>": XXH3-64 of
 *                                       every byte before that line
 *   <data>/streams/<name>/<shard>/      the shard log (storage/shard*.c)
 *   <data>/streams/<name>/groups/       consumer-group checkpoints (first use)
 *   <data>/streams/<name>/queues/       queue-group state (first use)
 *   <data>/trash/<name>.<ms>/           a deleted stream, removed at reap
 *
 * Crash safety: create = mkdir the stream dir and its shard dirs; write
 * stream.meta.tmp, fsync, rename to stream.meta, fsync the stream dir (one
 * fsync covers the shard dirs and the rename); fsync streams/ (the stream
 * exists from here: one fsync for a batch of background creates); then the
 * shards are opened (a new shard makes its first segment's files at its
 * first append: storage/shard_recover.c); the create is answered after all
 * of it. A stream directory
 * without a valid stream.meta is an unfinished create: it is moved to trash
 * at start-up. A stream whose stream.meta is durable but a shard's
 * directory or files are not (a crash before the answer) opens with that
 * shard empty: nothing was written to it. A create that fails after
 * stream.meta was durable moves the directory to trash (durably) before it
 * answers.
 * The stores are opened (their directories made: storage/statelog.c) by the
 * first write that needs them, and at start-up only when they hold state
 * (docs/FORMAT.md section 5): a stream costs no descriptor for them until
 * it has checkpoints or queue groups, and then only while they are in use:
 * idle stores are parked under the stores' share of open_files_max
 * (c->stores, catalog_store_files; storage/statelog_park.c).
 * Delete = rename into trash + fsync both parents: once that is durable the
 * stream is gone, whatever happens to the files after.
 */
#include "broker/engine/catalog_int.h"

#include "broker/engine/dedup.h"
#include "broker/engine/workers.h"

#include "common/assert.h"
#include "common/checksum.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/fileio.h"
#include "common/log.h"
#include "common/partition.h"
#include "common/ring.h"
#include "common/thread.h"
#include "storage/format.h"
#include "storage/batch.h"

#include <dirent.h>
#include <pthread.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

/* `what` failed with `rc` from file calls: "WHAT: CAUSE" into `why`, the
 * cause named for the user when descriptors ran out (SL_ELIMIT from
 * EMFILE/ENFILE: the only SL_ELIMIT opening files returns). */
void catalog_file_why(char *why, size_t why_len, const char *what, int rc)
{
    SL_ASSERT(why_len > 0);
    size_t at = strlen(what) + 2 < why_len ? strlen(what) + 2 : 0; /* else the cause alone */
    if (at > 0) {
        memcpy(why, what, at - 2);
        memcpy(why + at - 2, ": ", 2);
    }
    if (rc == SL_ELIMIT) {
        sl_nofile_why(why + at, why_len - at);
    } else {
        size_t n = strlen(sl_strerror(rc));
        n = n < why_len - at - 1 ? n : why_len - at - 1;
        memcpy(why + at, sl_strerror(rc), n);
        why[at + n] = '\0';
    }
}

/* catalog_file_why for "cannot create stream NAME". */
void catalog_create_why(char *why, size_t why_len, const char *name, int rc)
{
    char what[SL_STREAM_NAME_MAX + 32];
    snprintf(what, sizeof(what), "cannot create stream %s", name);
    catalog_file_why(why, why_len, what, rc);
}

char *catalog_path_cat(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);
    if (p != NULL) {
        snprintf(p, n, "%s/%s", a, b);
    }
    return p;
}

static int mkdir_durable(const char *parent, const char *path)
{
    if (mkdir(path, 0755) != 0) {
        return errno == EEXIST ? SL_OK : sl_err_from_errno(errno);
    }
    return sl_fsync_dir(parent);
}

/* Removes a directory tree (rare: deleted streams, gone shards). Depth is
 * bounded by our layout (stream/shard/files), so recursion depth <= 3. */
void catalog_remove_tree(const char *path, int depth)
{
    DIR *d = opendir(path);
    if (d != NULL && depth < 4) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
                continue;
            }
            char *p = catalog_path_cat(path, e->d_name);
            if (p == NULL) {
                break;
            }
            if (e->d_type == DT_DIR) {
                catalog_remove_tree(p, depth + 1);
            } else {
                unlink(p);
            }
            free(p);
        }
    }
    if (d != NULL) {
        closedir(d);
    }
    rmdir(path);
}

static bool name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > SL_STREAM_NAME_MAX || name[0] == '.') {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '_' || ch == '-' || ch == '.';
        if (!ok) {
            return false;
        }
    }
    return true;
}

/* ---- stream.meta (its text: catalog_meta.c) ------------------------------- */

int catalog_meta_write(const struct sl_stream *st, const struct sl_lineage *l)
{
    char *body = NULL;
    size_t n = 0;
    int rc = catalog_meta_format(st, l, &body, &n);
    if (rc != SL_OK) {
        return rc;
    }
    char *tmp = catalog_path_cat(st->dir, "stream.meta.tmp");
    char *dst = catalog_path_cat(st->dir, "stream.meta");
    rc = SL_ENOMEM;
    if (tmp != NULL && dst != NULL) {
        const void *parts[1] = {body};
        size_t lens[1] = {n};
        const char *step = NULL;
        rc = sl_file_replace(st->dir, tmp, dst, parts, lens, 1, &step);
    }
    free(tmp);
    free(dst);
    free(body);
    return rc;
}

static int meta_read(struct sl_stream *st)
{
    char *path = catalog_path_cat(st->dir, "stream.meta");
    if (path == NULL) {
        return SL_ENOMEM;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    free(path);
    if (fd < 0) {
        return errno == ENOENT ? SL_ENOTFOUND : sl_err_from_errno(errno);
    }
    /* read as large as it is (streams not resharded keep it small): no bigger buffer for
     * each of many streams at start-up */
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int err = sl_err_from_errno(errno);
        close(fd);
        return err;
    }
    size_t size = (size_t)sb.st_size;
    char *body = size <= SL_STREAM_META_BYTES_MAX ? malloc(size + 1) : NULL;
    size_t n = 0;
    int rc = size > SL_STREAM_META_BYTES_MAX ? SL_ECORRUPT
             : body != NULL                  ? sl_pread_full(fd, body, size, 0, &n)
                                             : SL_ENOMEM;
    close(fd);
    if (rc == SL_OK) {
        rc = n == 0 ? SL_ECORRUPT : catalog_meta_parse(st, body, n);
    }
    free(body);
    return rc;
}

/* ---- streams -------------------------------------------------------- */

void catalog_close_logs(struct sl_catalog *c, struct sl_stream *const *v, uint32_t n)
{
    uint64_t total = 0;
    for (uint32_t k = 0; k < n; k++) {
        total += v[k]->shards != NULL ? v[k]->shard_count : 0;
    }
    struct sl_wshard **b = total > 0 ? malloc(total * sizeof(*b)) : NULL;
    uint32_t m = 0;
    for (uint32_t k = 0; k < n; k++) {
        for (uint32_t i = 0; v[k]->shards != NULL && i < v[k]->shard_count; i++) {
            struct sl_wshard *ws = &v[k]->shards[i]->ws;
            if (ws->log == NULL) {
                continue;
            }
            if (b != NULL && m < total) {
                b[m++] = ws;
            } else { /* (without memory for the list: one each) */
                sl_wshard_close(ws);
            }
        }
    }
    if (m > 0) {
        sl_wshard_close_many(c->cfg.workers, b, m);
    }
    free(b);
}

void catalog_stream_free(struct sl_catalog *c, struct sl_stream *st)
{
    if (st == NULL) {
        return;
    }
    if (st->shards != NULL) {
        catalog_close_logs(c, &st, 1);
        for (uint32_t i = 0; i < st->shard_count; i++) {
            sl_dedup_fini(&st->shards[i]->dedup);
        }
    }
    if (c->cfg.stream_free != NULL) {
        c->cfg.stream_free(c->cfg.stream_free_ctx, st);
    }
    sl_msgdedup_free(st->msgdedup);
    catalog_props_free(st->props, st->n_props);
    sl_qstate_close(st->qstate);
    sl_ckpt_close(st->ckpt);
    for (uint32_t i = 0; st->shards != NULL && i < st->shard_count; i++) {
        if (st->shards[i] < st->shard_slab || st->shards[i] >= st->shard_slab + st->slab_n) {
            free(st->shards[i]); /* added by a reshard */
        }
    }
    free(st->shards);
    free(st->shard_slab);
    sl_lineage_fini(&st->lineage);
    free(st->open_start);
    free(st->open_id);
    free(st->load_why);
    free(st->dir);
    free(st);
}

/* The stream's shards in memory (no file touched): owners, hash ranges,
 * empty de-dup tables; their logs come later (catalog_open_logs). */
int catalog_shards_init(struct sl_catalog *c, struct sl_stream *st)
{
    SL_ASSERT(st->shards == NULL && st->shard_slab == NULL && st->shard_count > 0);
    st->shards = calloc(st->shard_count, sizeof(*st->shards));
    st->shard_slab = calloc(st->shard_count, sizeof(*st->shard_slab));
    if (st->shards == NULL || st->shard_slab == NULL) {
        free(st->shards);
        free(st->shard_slab);
        st->shards = NULL;
        st->shard_slab = NULL;
        return SL_ENOMEM;
    }
    st->slab_n = st->shard_count;
    for (uint32_t i = 0; i < st->shard_count; i++) {
        struct sl_bshard *b = &st->shard_slab[i];
        st->shards[i] = b;
        b->stream = st;
        b->id = i;
        b->ws.workers = c->cfg.workers;
        b->ws.owner = sl_workers_pick(c->cfg.workers, st->name, i);
        SL_ASSERT(st->lineage.n == st->shard_count);
        b->hash_start = st->lineage.shard[i].start;
        b->hash_end = st->lineage.shard[i].end;
        sl_dedup_init(&b->dedup);
    }
    return catalog_route_build(st);
}

/* Opens (creating if missing) every shard's log into logs[i], with its
 * owner's ring and budget (sl_shard_open submits nothing and leaves the
 * shard parked: any thread may do this before the logs are adopted); with
 * `rebuild` (a stream found at start-up) re-learns each shard's recent
 * producers; `synced`: the start-up syncfs made its files durable, so the
 * recoveries need no fdatasync. On failure the logs opened so far stay in logs[] (adopt them
 * to close them) and `why` names the shard and the cause. */
int catalog_open_log(struct sl_catalog *c, struct sl_stream *st, uint32_t i, bool rebuild,
                     bool synced, struct sl_shard **log, char *why, size_t why_len)
{
    struct sl_shard_config own = c->cfg.shard;
    own.retention_ms = (uint64_t)st->retention_hours * 3600 * 1000;
    own.retention_bytes = st->retention_bytes;
    struct sl_bshard *b = st->shards[i];
    SL_ASSERT(b->ws.log == NULL && *log == NULL);
    char sub[16];
    snprintf(sub, sizeof(sub), "%u", i);
    char *dir = catalog_path_cat(st->dir, sub);
    if (dir == NULL) {
        snprintf(why, why_len, "stream %s: %s", st->name, sl_strerror(SL_ENOMEM));
        return SL_ENOMEM;
    }
    own.cache = b->ws.owner < c->n_caches ? &c->caches[b->ws.owner] : NULL;
    own.synced_before_open = rebuild && synced; /* (nothing wrote it since) */
    int rc = sl_shard_open(sl_workers_ring(c->cfg.workers, c->ring, b->ws.owner), dir, &own, log);
    free(dir);
    if (rc == SL_OK && rebuild) {
        int drc = sl_dedup_rebuild(&b->dedup, *log);
        if (drc != SL_OK) { /* retries of older batches may be stored twice */
            sl_warn("catalog",
                    "stream %s shard %u: cannot re-learn its recent producers: %s "
                    "(a retry sent across the restart may be stored twice)",
                    st->name, i, sl_strerror(drc));
        }
    }
    if (rc != SL_OK) {
        char what[SL_STREAM_NAME_MAX + 48];
        snprintf(what, sizeof(what), "stream %s: cannot open shard %u", st->name, i);
        catalog_file_why(why, why_len, what, rc);
    }
    return rc;
}

int catalog_open_logs(struct sl_catalog *c, struct sl_stream *st, bool rebuild, bool synced,
                      struct sl_shard **logs, char *why, size_t why_len)
{
    for (uint32_t i = 0; i < st->shard_count; i++) {
        if (st->lineage.shard[i].gone) {
            catalog_shard_dir_remove(st, i); /* left by a crash after its retirement */
            continue;
        }
        int rc = catalog_open_log(c, st, i, rebuild, synced, &logs[i], why, why_len);
        if (rc != SL_OK) {
            return rc;
        }
    }
    return SL_OK;
}

/* Hands the logs opened by catalog_open_logs to their owners. */
void catalog_adopt_logs(struct sl_catalog *c, struct sl_stream *st, struct sl_shard **logs)
{
    struct sl_wshard_adoption *a = calloc(st->shard_count, sizeof(*a));
    uint32_t n = 0;
    for (uint32_t i = 0; i < st->shard_count; i++) {
        if (st->lineage.shard[i].gone) {
            sl_wshard_retire(&st->shards[i]->ws, c->ring, st->lineage.shard[i].end_seq);
        }
        if (logs[i] == NULL) {
            continue;
        }
        struct sl_wshard_adoption one = {.b = &st->shards[i]->ws, .log = logs[i],
                                         .listener_ctx = st->shards[i]};
        if (a == NULL) { /* (without memory for the list: one call each) */
            sl_wshard_adopt(c->cfg.workers, &one, 1, c->cfg.listener);
        } else {
            a[n++] = one;
        }
        logs[i] = NULL;
    }
    if (n > 0) {
        sl_wshard_adopt(c->cfg.workers, a, n, c->cfg.listener);
    }
    free(a);
}

/* Opens one store of the stream (its directory made on first use). */
static int store_open(struct sl_catalog *c, struct sl_stream *st, bool ckpt, char *why,
                      size_t why_len)
{
    char *dir = catalog_path_cat(st->dir, ckpt ? "groups" : "queues");
    if (dir == NULL) {
        snprintf(why, why_len, "%s", sl_strerror(SL_ENOMEM));
        return SL_ENOMEM;
    }
    int rc = ckpt ? sl_ckpt_open(c->ring, dir, &c->cfg.ckpt, &st->ckpt)
                  : sl_qstate_open(c->ring, dir, &c->cfg.qstate, &st->qstate);
    free(dir);
    if (rc != SL_OK) {
        char what[SL_STREAM_NAME_MAX + 48];
        snprintf(what, sizeof(what), "cannot open the %s store of stream %s",
                 ckpt ? "checkpoint" : "queue-state", st->name);
        catalog_file_why(why, why_len, what, rc);
    }
    return rc;
}

/* The stores open on first use (sl_catalog_ckpt, sl_catalog_qstate); when
 * a stream found at start-up is loaded, those whose directories hold state
 * (queue groups must be known). */
int catalog_stores_open_present(struct sl_catalog *c, struct sl_stream *st, char *why,
                                size_t why_len)
{
    int rc = SL_OK;
    for (int k = 0; k < 2 && rc == SL_OK; k++) {
        char *dir = catalog_path_cat(st->dir, k == 0 ? "groups" : "queues");
        if (dir == NULL) {
            snprintf(why, why_len, "stream %s: %s", st->name, sl_strerror(SL_ENOMEM));
            return SL_ENOMEM;
        }
        bool present = k == 0 ? sl_ckpt_present(dir) : sl_qstate_present(dir);
        free(dir);
        if (present && (k == 0 ? st->ckpt == NULL : st->qstate == NULL)) {
            rc = store_open(c, st, k == 0, why, why_len);
        }
    }
    return rc;
}

int sl_catalog_ckpt(struct sl_catalog *c, struct sl_stream *st, struct sl_ckpt_store **out,
                    char *why, size_t why_len)
{
    int rc = st->ckpt != NULL ? SL_OK : store_open(c, st, true, why, why_len);
    *out = st->ckpt;
    return rc;
}

int sl_catalog_qstate(struct sl_catalog *c, struct sl_stream *st, struct sl_qstate **out, char *why,
                      size_t why_len)
{
    int rc = st->qstate != NULL ? SL_OK : store_open(c, st, false, why, why_len);
    *out = st->qstate;
    return rc;
}

static struct sl_stream *stream_new(struct sl_catalog *c, const char *name)
{
    struct sl_stream *st = calloc(1, sizeof(*st));
    if (st == NULL) {
        return NULL;
    }
    snprintf(st->name, sizeof(st->name), "%s", name);
    st->dir = catalog_path_cat(c->streams_dir, name);
    if (st->dir == NULL) {
        free(st);
        return NULL;
    }
    return st;
}

/* Moves a stream directory into the trash, durably. */
int catalog_move_to_trash(struct sl_catalog *c, const char *name)
{
    char leaf[SL_STREAM_NAME_MAX + 32];
    snprintf(leaf, sizeof(leaf), "%s.%" PRIu64, name, sl_clock_wall_ms());
    char *from = catalog_path_cat(c->streams_dir, name);
    char *to = catalog_path_cat(c->trash_dir, leaf);
    int rc = from != NULL && to != NULL ? SL_OK : SL_ENOMEM;
    if (rc == SL_OK && sl_renameat(AT_FDCWD, from, AT_FDCWD, to) != 0) {
        rc = sl_err_from_errno(errno);
    }
    if (rc == SL_OK) {
        rc = sl_fsync_dir(c->streams_dir);
    }
    if (rc == SL_OK) {
        rc = sl_fsync_dir(c->trash_dir);
    }
    free(from);
    free(to);
    return rc;
}

static void empty_trash(struct sl_catalog *c)
{
    DIR *d = opendir(c->trash_dir);
    if (d == NULL) {
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
            continue;
        }
        char *p = catalog_path_cat(c->trash_dir, e->d_name);
        if (p != NULL) {
            catalog_remove_tree(p, 0);
            free(p);
        }
    }
    closedir(d);
}

static int load_streams(struct sl_catalog *c)
{
    DIR *d = opendir(c->streams_dir);
    if (d == NULL) {
        return sl_err_from_errno(errno);
    }
    int rc = SL_OK;
    struct dirent *e;
    while (rc == SL_OK && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || !name_ok(e->d_name)) {
            continue;
        }
        struct sl_stream *st = stream_new(c, e->d_name);
        if (st == NULL) {
            rc = SL_ENOMEM;
            break;
        }
        int mrc = meta_read(st);
        if (mrc == SL_ENOTFOUND) {
            sl_warn("catalog", "stream %s: no stream.meta (unfinished create): removed", st->name);
            catalog_stream_free(c, st);
            rc = catalog_move_to_trash(c, e->d_name);
            continue;
        }
        if (mrc != SL_OK) {
            sl_error("catalog", "stream %s: stream.meta is damaged (%s); refusing to start",
                     st->name, sl_strerror(mrc));
            catalog_stream_free(c, st);
            rc = mrc;
            break;
        }
        rc = catalog_index_reserve(c);
        if (rc == SL_OK) {
            rc = catalog_shards_init(c, st); /* the logs: catalog_jobs.c */
        }
        if (rc != SL_OK) {
            catalog_stream_free(c, st);
            break;
        }
        c->sorted[c->n_streams++] = st; /* indexed once all are read */
        c->unloaded++;
        sl_debug("catalog", "stream %s: %u shards, retention %u h", st->name, st->shard_count,
                 st->retention_hours);
    }
    closedir(d);
    catalog_index_build(c); /* also after a failure: sl_catalog_close frees what is linked */
    return rc;
}

/* One load per stream, in name order, for the creators. */
static int queue_loads(struct sl_catalog *c)
{
    for (struct sl_stream *st = c->streams; st != NULL; st = st->next) {
        int rc = catalog_load_queue(c, st);
        if (rc != SL_OK) {
            return rc;
        }
    }
    return SL_OK;
}

uint32_t catalog_store_files(uint32_t open_files_max)
{
    if (open_files_max == 0) {
        return 0; /* no budget */
    }
    uint32_t n = open_files_max / STORE_FILES_DIV;
    n = n < STORE_FILES_MIN ? STORE_FILES_MIN : n;
    n = n > open_files_max / 2 ? open_files_max / 2 : n;
    /* a store in use keeps its files: the budget holds one, whatever the total */
    n = n < SL_STATELOG_FDS ? SL_STATELOG_FDS : n;
    SL_ASSERT(n >= SL_STATELOG_FDS);
    return n;
}

int sl_catalog_open(struct sl_ring *ring, const struct sl_catalog_config *cfg,
                    struct sl_catalog **out)
{
    struct sl_catalog *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return SL_ENOMEM;
    }
    c->ring = ring;
    c->cfg = *cfg;
    c->wake_fd = -1;
    c->load_start_ns = sl_clock_mono_ns();
    c->buckets = calloc(INDEX_BUCKETS_MIN, sizeof(*c->buckets));
    c->index_mask = INDEX_BUCKETS_MIN - 1;
    /* open_files_max = the stores' share + the shards' (split over owners) */
    uint32_t store_files = catalog_store_files(cfg->open_files_max);
    uint32_t shard_files = cfg->open_files_max > store_files ? cfg->open_files_max - store_files
                                                             : 0; /* (the floors apply) */
    sl_statelog_cache_init(&c->stores, store_files);
    c->cfg.ckpt.cache = &c->stores;
    c->cfg.qstate.cache = &c->stores;
    c->n_caches = sl_workers_count(cfg->workers);
    c->caches = calloc(c->n_caches, sizeof(*c->caches));
    for (uint32_t i = 0; c->caches != NULL && i < c->n_caches; i++) {
        /* at least a few shards' worth each, whatever the split */
        uint64_t share = shard_files / c->n_caches;
        sl_shard_cache_init(&c->caches[i], cfg->open_files_max == 0  ? 0
                                           : share < CACHE_FILES_MIN ? CACHE_FILES_MIN
                                                                     : share);
    }
    if (cfg->open_files_max > 0 && c->caches != NULL) {
        sl_info("catalog",
                "descriptor budget: open_files_max %u = %u for the stores, %" PRIu64
                " for each of %u shard owners",
                cfg->open_files_max, store_files, c->caches[0].files_max, c->n_caches);
    }
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    pthread_cond_init(&c->done_cv, NULL);
    c->todo_tail = &c->todo;
    c->streams_dir = catalog_path_cat(cfg->data_dir, "streams");
    c->trash_dir = catalog_path_cat(cfg->data_dir, "trash");
    int rc =
        c->streams_dir != NULL && c->trash_dir != NULL && c->buckets != NULL && c->caches != NULL
            ? SL_OK
            : SL_ENOMEM;
    if (rc == SL_OK && mkdir(cfg->data_dir, 0755) != 0 && errno != EEXIST) {
        rc = sl_err_from_errno(errno);
        sl_error("catalog", "cannot create data directory %s: %s", cfg->data_dir, strerror(errno));
    }
    if (rc == SL_OK) {
        /* before anything below is opened: newer data is refused, not "repaired" */
        char why[512];
        uint32_t format = 0;
        rc = sl_data_format_check(cfg->data_dir, &format, why, sizeof(why));
        if (rc != SL_OK) {
            sl_error("catalog", "%s", why);
        }
    }
    if (rc == SL_OK) {
        rc = mkdir_durable(cfg->data_dir, c->streams_dir);
    }
    if (rc == SL_OK) {
        rc = mkdir_durable(cfg->data_dir, c->trash_dir);
    }
    if (rc == SL_OK) {
        empty_trash(c);
        uint64_t t0 = sl_clock_mono_ns();

        rc = load_streams(c);
        if (rc == SL_OK) {
            sl_info("catalog",
                    "%u streams, %" PRIu64 " shards found in %" PRIu64
                    " ms; their shards open in the background (a stream used first opens at once)",
                    c->n_streams, c->n_shards, (sl_clock_mono_ns() - t0) / 1000000u);
        }
    }
    if (rc == SL_OK) {
        rc = catalog_jobs_start(c);
    }
    if (rc == SL_OK) {
        rc = queue_loads(c);
    }
    if (rc != SL_OK) {
        sl_catalog_close(c);
        return rc;
    }
    *out = c;
    return SL_OK;
}

void sl_catalog_close(struct sl_catalog *c)
{
    if (c == NULL) {
        return;
    }
    c->closing = true;
    catalog_jobs_stop(c);
    /* Every log closed in one call per owner (at 100,000 shards, one call
     * each took minutes), then the streams freed. */
    if (c->n_streams > 0) {
        catalog_close_logs(c, c->sorted, c->n_streams);
    }
    while (c->streams != NULL) {
        struct sl_stream *st = c->streams;
        c->streams = st->next;
        catalog_stream_free(c, st);
    }
    sl_catalog_reap(c);
    while (c->graveyard != NULL) { /* still held: close anyway at shutdown */
        struct sl_stream *st = c->graveyard;
        c->graveyard = st->next;
        catalog_stream_free(c, st);
    }
    empty_trash(c);
    /* every store closed: none charged to the stores' budget */
    SL_ASSERT(c->stores.files == 0 && c->stores.head == NULL && c->stores.tail == NULL);
    free(c->buckets);
    free(c->sorted);
    for (uint32_t i = 0; c->caches != NULL && i < c->n_caches; i++) {
        sl_shard_cache_fini(&c->caches[i]); /* (every shard is closed) */
    }
    free(c->caches);
    free(c->streams_dir);
    free(c->trash_dir);
    free(c);
}

/* streams_max and shards_max, counting the creates under way. */
static int limits_check(const struct sl_catalog *c, const char *name, uint32_t shard_count,
                        char *why, size_t why_len)
{
    uint64_t streams = (uint64_t)c->n_streams + c->pending_streams;
    uint64_t shards = c->n_shards + c->pending_shards;
    if (c->cfg.streams_max != 0 && streams + 1 > c->cfg.streams_max) {
        (void)name;
        snprintf(why, why_len,
                 "the broker holds %" PRIu64 " streams, streams_max = %u: delete streams or "
                 "raise streams_max",
                 streams, c->cfg.streams_max);
        return SL_ELIMIT;
    }
    if (c->cfg.shards_max != 0 && shards + shard_count > c->cfg.shards_max) {
        snprintf(why, why_len,
                 "stream %s needs %u shards and the broker holds %" PRIu64
                 ", shards_max = %u: delete streams or raise shards_max",
                 name, shard_count, shards, c->cfg.shards_max);
        return SL_ELIMIT;
    }
    return SL_OK;
}

int sl_catalog_check_spec(const char *name, uint32_t shard_count, uint32_t retention_hours,
                          const char *compression, char *why, size_t why_len)
{
    if (!name_ok(name)) {
        snprintf(why, why_len,
                 "stream name must be 1-128 of [A-Za-z0-9_.-], not starting with '.'");
        return SL_EINVAL;
    }
    if (shard_count == 0 || shard_count > SL_STREAM_SHARDS_MAX) {
        snprintf(why, why_len, "shard count must be in [1, %u]", SL_STREAM_SHARDS_MAX);
        return SL_EINVAL;
    }
    if (retention_hours > 8760) {
        snprintf(why, why_len, "retention_hours must be in [1, 8760] (365 days)");
        return SL_EINVAL;
    }
    if (compression != NULL && compression[0] != '\0' && strcmp(compression, "none") != 0 &&
        strcmp(compression, "zstd") != 0) {
        snprintf(why, why_len, "compression must be none or zstd");
        return SL_EINVAL;
    }
    return SL_OK;
}

/* Checks the arguments and builds the stream (in memory only). */
int catalog_create_prepare(struct sl_catalog *c, const char *name, uint32_t shard_count,
                          uint32_t retention_hours, uint64_t retention_bytes,
                          const char *compression, struct sl_stream **out, char *why,
                          size_t why_len)
{
    int rc = sl_catalog_check_spec(name, shard_count, retention_hours, compression, why, why_len);
    if (rc != SL_OK) {
        return rc;
    }
    if (retention_hours == 0) {
        retention_hours = c->cfg.default_retention_hours;
    }
    if (compression == NULL || compression[0] == '\0') {
        compression = "none";
    }
    if (catalog_lookup(c, name) != NULL || catalog_pending_name(c, name)) {
        snprintf(why, why_len, "stream %s already exists", name);
        return SL_EEXIST;
    }
    rc = limits_check(c, name, shard_count, why, why_len);
    if (rc != SL_OK) {
        return rc;
    }
    struct sl_stream *st = stream_new(c, name);
    if (st == NULL) {
        return SL_ENOMEM;
    }
    st->shard_count = shard_count;
    if (sl_lineage_init(&st->lineage, shard_count) != SL_OK) {
        catalog_stream_free(c, st);
        return SL_ENOMEM;
    }
    st->retention_hours = retention_hours;
    st->retention_bytes = retention_bytes;
    snprintf(st->compression, sizeof(st->compression), "%s", compression);
    st->created_ms = sl_clock_wall_ms();
    *out = st;
    return SL_OK;
}

/* The stream's directory with its shard directories and stream.meta, all
 * durable inside it: the shard directories are made first, and
 * meta_write's fsync of the stream directory (after the rename) covers
 * them too - not one fsync of it per shard. The stream directory's own
 * entry is not durable yet: catalog_create_commit (one fsync of streams/ for a
 * batch of creates). Crash safety: catalog.c's header. */
int catalog_create_dirs(struct sl_catalog *c, struct sl_stream *st)
{
    int rc = mkdir(st->dir, 0755) == 0 ? SL_OK : sl_err_from_errno(errno);
    if (rc == SL_EEXIST) {
        /* leftover of an unfinished create or delete: set it aside */
        rc = catalog_move_to_trash(c, st->name);
        if (rc == SL_OK) {
            rc = mkdir(st->dir, 0755) == 0 ? SL_OK : sl_err_from_errno(errno);
        }
    }
    for (uint32_t i = 0; i < st->shard_count && rc == SL_OK; i++) {
        char sub[16];
        snprintf(sub, sizeof(sub), "%u", i);
        char *dir = catalog_path_cat(st->dir, sub);
        rc = dir == NULL ? SL_ENOMEM : mkdir(dir, 0755) == 0 ? SL_OK : sl_err_from_errno(errno);
        free(dir);
    }
    if (rc == SL_OK) {
        rc = catalog_meta_write(st, &st->lineage); /* tmp, fsync, rename, fsync of st->dir */
    }
    return rc;
}

/* The entries of the stream directories made since the last call, durable:
 * after it the streams exist across a crash. */
int catalog_create_commit(struct sl_catalog *c)
{
    return sl_fsync_dir(c->streams_dir);
}

int sl_catalog_create(struct sl_catalog *c, const char *name, uint32_t shard_count,
                      uint32_t retention_hours, uint64_t retention_bytes, const char *compression,
                      struct sl_stream **out, char *why, size_t why_len)
{
    struct sl_stream *st = NULL;
    int rc = catalog_create_prepare(c, name, shard_count, retention_hours, retention_bytes, compression,
                            &st, why, why_len);
    if (rc != SL_OK) {
        return rc;
    }
    rc = catalog_index_reserve(c); /* before the files: nothing can fail after them */
    if (rc != SL_OK) {
        catalog_create_why(why, why_len, name, rc);
        catalog_stream_free(c, st);
        return rc;
    }
    /* The stream's files, durable, then its shards opened (in memory: each
     * makes its segment files at its first append). */
    struct sl_shard **logs = calloc(shard_count, sizeof(*logs));
    rc = logs != NULL ? catalog_create_dirs(c, st) : SL_ENOMEM;
    if (rc == SL_OK) {
        rc = catalog_create_commit(c);
    }
    if (rc == SL_OK) {
        rc = catalog_shards_init(c, st);
    }
    if (rc == SL_OK) {
        rc = catalog_open_logs(c, st, false, false, logs, why, why_len);
    }
    if (st->shards != NULL && logs != NULL) {
        catalog_adopt_logs(c, st, logs); /* (closed with the stream on failure) */
    }
    free(logs);
    if (rc != SL_OK) {
        catalog_create_why(why, why_len, name, rc);
        sl_error("catalog", "%s", why);
        catalog_stream_free(c, st);
        (void)catalog_move_to_trash(c, name);
        return rc;
    }
    st->loaded = true;
    catalog_index_add(c, st);
    sl_info("catalog", "created stream %s: %u shards, retention %u h", name, shard_count,
            st->retention_hours);
    *out = st;
    return SL_OK;
}

int sl_catalog_delete(struct sl_catalog *c, const char *name)
{
    struct sl_stream *st = catalog_lookup(c, name);
    if (st == NULL) {
        return SL_ENOTFOUND;
    }
    if (!st->loaded) {
        catalog_load_settle(c, st); /* no job names it after this */
    }
    int rc = catalog_move_to_trash(c, name);
    if (rc != SL_OK) {
        sl_error("catalog", "cannot delete stream %s: %s", name, sl_strerror(rc));
        return rc;
    }
    catalog_index_remove(c, st);
    if (!st->loaded) { /* (a stream that failed to load can be deleted) */
        SL_ASSERT(c->unloaded > 0);
        c->unloaded--;
    }
    st->deleted = true;
    st->next = c->graveyard;
    c->graveyard = st;
    sl_info("catalog", "deleted stream %s", name);
    return SL_OK;
}


int sl_catalog_lookup(struct sl_catalog *c, const char *name, struct sl_stream **out, char *why,
                      size_t why_len)
{
    struct sl_stream *st = catalog_lookup(c, name);
    *out = NULL;
    if (st == NULL) {
        snprintf(why, why_len, "stream %s not found", name);
        return SL_ENOTFOUND;
    }
    int rc = st->loaded ? SL_OK : catalog_load_now(c, st, why, why_len);
    if (rc == SL_OK) {
        *out = st;
    }
    return rc;
}

struct sl_stream *sl_catalog_find(struct sl_catalog *c, const char *name)
{
    char why[256];
    struct sl_stream *st = NULL;
    (void)sl_catalog_lookup(c, name, &st, why, sizeof(why)); /* (a failed load is logged) */
    return st;
}

struct sl_stream *sl_catalog_first(struct sl_catalog *c)
{
    return c->streams;
}

uint32_t sl_catalog_unloaded(const struct sl_catalog *c)
{
    return c->unloaded;
}

struct sl_workers *sl_catalog_workers(const struct sl_catalog *c)
{
    return c->cfg.workers;
}

const char *sl_catalog_data_dir(const struct sl_catalog *c)
{
    return c->cfg.data_dir;
}

struct sl_ring *sl_catalog_ring(const struct sl_catalog *c)
{
    return c->ring;
}

void sl_catalog_reap(struct sl_catalog *c)
{
    struct sl_stream **pp = &c->graveyard;
    bool freed = false;
    while (*pp != NULL) {
        struct sl_stream *st = *pp;
        if (st->inflight > 0) {
            pp = &st->next;
            continue;
        }
        *pp = st->next;
        catalog_stream_free(c, st);
        freed = true;
    }
    if (freed) {
        empty_trash(c);
    }
}

void sl_catalog_retention(struct sl_catalog *c, sl_catalog_floor_fn floor, void *ctx)
{
    uint64_t now = sl_clock_wall_ms();
    for (struct sl_stream *st = c->streams; st != NULL; st = st->next) {
        for (uint32_t i = 0; i < st->shard_count && st->loaded; i++) {
            const struct sl_bshard *b = st->shards[i];
            sl_wshard_retention(&st->shards[i]->ws,
                                floor != NULL ? floor(ctx, b) : SL_RETAIN_FLOOR_NONE);
        }
        (void)sl_catalog_retire(c, st, now);
    }
}
