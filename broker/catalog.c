/* catalog.c - streams on disk and in memory.
 *
 * Layout (docs/FORMAT.md §5):
 *   <data>/streams/<name>/stream.meta   "key=value" lines, last line
 *                                       "check=<16 hex digits>": XXH3-64 of
 *                                       every byte before that line
 *   <data>/streams/<name>/<shard>/      the shard log (storage/shard.c)
 *   <data>/streams/<name>/groups/       consumer-group checkpoints
 *   <data>/trash/<name>.<ms>/           a deleted stream, removed at reap
 *
 * Crash safety: create = mkdir stream dir, fsync parent; write
 * stream.meta.tmp, fsync, rename to stream.meta, fsync dir; then the shards
 * (each fsyncs its own directory entries). A stream directory without a valid
 * stream.meta is an unfinished create: it is moved to trash at start-up.
 * Delete = rename into trash + fsync both parents: once that is durable the
 * stream is gone, whatever happens to the files after.
 */
#include "broker/catalog.h"

#include "broker/queue.h"
#include "broker/workers.h"

#include "common/assert.h"
#include "common/checksum.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/fileio.h"
#include "common/log.h"
#include "common/partition.h"
#include "common/ring.h"
#include "storage/batch.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct sl_catalog {
    struct sl_ring *ring;
    struct sl_catalog_config cfg;
    char *streams_dir;
    char *trash_dir;
    struct sl_stream *streams;   /* live, sorted by name */
    struct sl_stream *graveyard; /* deleted, waiting for reap */
};

static char *path_cat(const char *a, const char *b)
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

/* Removes a directory tree (rare: deleted streams). Depth is bounded by
 * our layout (stream/shard/files), so recursion depth <= 3. */
static void remove_tree(const char *path, int depth)
{
    DIR *d = opendir(path);
    if (d != NULL && depth < 4) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
                continue;
            }
            char *p = path_cat(path, e->d_name);
            if (p == NULL) {
                break;
            }
            if (e->d_type == DT_DIR) {
                remove_tree(p, depth + 1);
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

/* ---- stream.meta ---------------------------------------------------- */

static int meta_write(const struct sl_stream *st)
{
    char body[1024];
    int n = snprintf(body, sizeof(body),
                     "name=%s\nshards=%u\nretention_hours=%u\nretention_bytes=%" PRIu64
                     "\ncompression=%s\ncreated_ms=%" PRIu64 "\n",
                     st->name, st->shard_count, st->retention_hours, st->retention_bytes,
                     st->compression, st->created_ms);
    SL_ASSERT(n > 0 && (size_t)n < sizeof(body) - 32);
    n += snprintf(body + n, sizeof(body) - (size_t)n, "check=%016" PRIx64 "\n",
                  sl_checksum64(body, (size_t)n));
    char *tmp = path_cat(st->dir, "stream.meta.tmp");
    char *dst = path_cat(st->dir, "stream.meta");
    int rc = tmp != NULL && dst != NULL ? SL_OK : SL_ENOMEM;
    int fd = rc == SL_OK ? open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644) : -1;
    if (rc == SL_OK && fd < 0) {
        rc = sl_err_from_errno(errno);
    }
    if (rc == SL_OK && (write(fd, body, (size_t)n) != n || fsync(fd) != 0)) {
        rc = sl_err_from_errno(errno ? errno : EIO);
    }
    if (fd >= 0) {
        close(fd);
    }
    if (rc == SL_OK && sl_renameat(AT_FDCWD, tmp, AT_FDCWD, dst) != 0) {
        rc = sl_err_from_errno(errno);
    }
    if (rc == SL_OK) {
        rc = sl_fsync_dir(st->dir);
    }
    free(tmp);
    free(dst);
    return rc;
}

static int meta_read(struct sl_stream *st)
{
    char *path = path_cat(st->dir, "stream.meta");
    if (path == NULL) {
        return SL_ENOMEM;
    }
    char body[2048];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    free(path);
    if (fd < 0) {
        return errno == ENOENT ? SL_ENOTFOUND : sl_err_from_errno(errno);
    }
    ssize_t n = read(fd, body, sizeof(body) - 1);
    close(fd);
    if (n <= 0) {
        return SL_ECORRUPT;
    }
    body[n] = '\0';
    char *check = strstr(body, "check=");
    if (check == NULL || (check != body && check[-1] != '\n')) {
        return SL_ECORRUPT;
    }
    uint64_t want = strtoull(check + 6, NULL, 16);
    if (sl_checksum64(body, (size_t)(check - body)) != want) {
        return SL_ECORRUPT;
    }
    *check = '\0';
    unsigned shards = 0, hours = 0;
    unsigned long long bytes = 0, created = 0;
    char name[SL_STREAM_NAME_MAX + 1] = "", comp[8] = "";
    for (char *line = strtok(body, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        sscanf(line, "name=%128s", name);
        sscanf(line, "shards=%u", &shards);
        sscanf(line, "retention_hours=%u", &hours);
        sscanf(line, "retention_bytes=%llu", &bytes);
        sscanf(line, "compression=%7s", comp);
        sscanf(line, "created_ms=%llu", &created);
    }
    if (strcmp(name, st->name) != 0 || shards == 0 || shards > SL_STREAM_SHARDS_MAX ||
        hours == 0 || hours > 8760) {
        return SL_ECORRUPT;
    }
    st->shard_count = shards;
    st->retention_hours = hours;
    st->retention_bytes = bytes;
    snprintf(st->compression, sizeof(st->compression), "%s", comp);
    st->created_ms = created;
    return SL_OK;
}

/* ---- streams -------------------------------------------------------- */

static void stream_free(struct sl_stream *st)
{
    if (st == NULL) {
        return;
    }
    if (st->shards != NULL) {
        for (uint32_t i = 0; i < st->shard_count; i++) {
            sl_bshard_close(&st->shards[i]);
            free(st->shards[i].dedup);
        }
    }
    sl_queue_stream_free(st);
    free(st->msgdedup);
    sl_qstate_close(st->qstate);
    sl_ckpt_close(st->ckpt);
    free(st->shards);
    free(st->dir);
    free(st);
}

static void dedup_rebuild(void *ctx, struct sl_bshard *b, struct sl_ring *ring);

/* Opens (creating if missing) every shard and the checkpoint store; at
 * start-up (`rebuild`) re-learns each shard's recent producers. */
static int stream_open_parts(struct sl_catalog *c, struct sl_stream *st, bool rebuild)
{
    st->shards = calloc(st->shard_count, sizeof(*st->shards));
    if (st->shards == NULL) {
        return SL_ENOMEM;
    }
    struct sl_shard_config scfg = c->cfg.shard;
    scfg.retention_ms = (uint64_t)st->retention_hours * 3600 * 1000;
    scfg.retention_bytes = st->retention_bytes;
    for (uint32_t i = 0; i < st->shard_count; i++) {
        struct sl_bshard *b = &st->shards[i];
        b->stream = st;
        b->id = i;
        b->workers = c->cfg.workers;
        b->owner = sl_workers_pick(c->cfg.workers, st->name, i);
        sl_partition_range(i, st->shard_count, &b->hash_start, &b->hash_end);
        b->dedup = calloc(SL_DEDUP_SLOTS, sizeof(*b->dedup));
        if (b->dedup == NULL) {
            return SL_ENOMEM;
        }
        char sub[16];
        snprintf(sub, sizeof(sub), "%u", i);
        char *dir = path_cat(st->dir, sub);
        if (dir == NULL) {
            return SL_ENOMEM;
        }
        int rc = sl_bshard_open(b, c->ring, dir, &scfg, c->cfg.listener,
                                rebuild ? dedup_rebuild : NULL, c);
        free(dir);
        if (rc != SL_OK) {
            return rc;
        }
    }
    char *gdir = path_cat(st->dir, "groups");
    if (gdir == NULL) {
        return SL_ENOMEM;
    }
    int rc = sl_ckpt_open(c->ring, gdir, &c->cfg.ckpt, &st->ckpt);
    free(gdir);
    if (rc != SL_OK) {
        return rc;
    }
    char *qdir = path_cat(st->dir, "queues");
    if (qdir == NULL) {
        return SL_ENOMEM;
    }
    rc = sl_qstate_open(c->ring, qdir, &c->cfg.qstate, &st->qstate);
    free(qdir);
    return rc;
}

/* ---- de-dup state after a restart ---------------------------------------- */

#define DEDUP_REBUILD_WINDOW_MS (5u * 60 * 1000)
#define DEDUP_REBUILD_BYTES_MAX (8u << 20) /* per shard: keeps start-up short */
#define DEDUP_REBUILD_BUF (1u << 20)

struct rebuild_read {
    int done;
    int err;
};

static void on_rebuild_read(struct sl_shard_read *rd, int err)
{
    struct rebuild_read *r = rd->ctx;
    r->done = 1;
    r->err = err;
}

/* Re-learns the producers' last batches from the batches appended in the
 * last few minutes (bounded in bytes), so that a retry sent across a broker
 * restart is still recognised. Start-up only, on the shard owner's thread
 * while the main loop waits: runs the owner's ring itself. */
static void dedup_rebuild(void *ctx, struct sl_bshard *b, struct sl_ring *ring)
{
    struct sl_catalog *c = ctx;
    struct sl_shard_stats ss;
    sl_shard_stats(b->log, &ss);
    if (ss.visible_seq == ss.first_seq) {
        return;
    }
    uint32_t cap = c->cfg.shard.batch_bytes_max > DEDUP_REBUILD_BUF ? c->cfg.shard.batch_bytes_max
                                                                   : DEDUP_REBUILD_BUF;
    uint8_t *buf = malloc(cap);
    if (buf == NULL) {
        return;
    }
    /* The newest DEDUP_REBUILD_BYTES_MAX of the log (a retry is of a recent
     * batch: reading the oldest bytes of the window instead missed the
     * newest ones whenever a shard took more than that in the window - found
     * by the long crash loop), of which the batches inside the window. */
    uint64_t now = sl_clock_wall_ms();
    uint64_t since = now > DEDUP_REBUILD_WINDOW_MS ? now - DEDUP_REBUILD_WINDOW_MS : 0;
    uint64_t from = ss.first_seq;
    if (sl_shard_seq_near_tail_bytes(b->log, DEDUP_REBUILD_BYTES_MAX, &from) != SL_OK) {
        from = ss.first_seq;
    }
    struct sl_shard_read rd = {.from = SL_READ_SEQ, .seq = from, .buf = buf, .buf_cap = cap,
                               .max_bytes = DEDUP_REBUILD_BUF, .cb = on_rebuild_read};
    uint64_t total = 0;
    for (;;) {
        struct rebuild_read r = {0, 0};
        rd.ctx = &r;
        sl_shard_read(b->log, &rd);
        while (!r.done) {
            sl_ring_run(ring, 1, 0);
        }
        if (r.err != SL_OK || rd.len == 0) {
            break;
        }
        for (uint32_t off = 0; off < rd.len;) {
            struct sl_batch_header h;
            if (sl_batch_peek(buf + off, rd.len - off, &h) != SL_OK) {
                break;
            }
            struct sl_dedup_entry *e = NULL;
            if (h.producer_id != 0 && h.append_time_ms >= since &&
                sl_dedup_begin(b, h.producer_id, h.producer_seq, &e) == SL_OK) {
                sl_dedup_end(b, h.producer_id, h.producer_seq, SL_OK, h.base_seq,
                             h.record_count);
            }
            off += h.length;
        }
        total += rd.len;
        if (total >= 2 * (uint64_t)DEDUP_REBUILD_BYTES_MAX) {
            break; /* (the start bounds it already; a guard) */
        }
        rd.seq = rd.next_seq;
    }
    free(buf);
}

static void insert_sorted(struct sl_catalog *c, struct sl_stream *st)
{
    struct sl_stream **pp = &c->streams;
    while (*pp != NULL && strcmp((*pp)->name, st->name) < 0) {
        pp = &(*pp)->next;
    }
    st->next = *pp;
    *pp = st;
}

static struct sl_stream *stream_new(struct sl_catalog *c, const char *name)
{
    struct sl_stream *st = calloc(1, sizeof(*st));
    if (st == NULL) {
        return NULL;
    }
    snprintf(st->name, sizeof(st->name), "%s", name);
    st->dir = path_cat(c->streams_dir, name);
    if (st->dir == NULL) {
        free(st);
        return NULL;
    }
    return st;
}

/* Moves a stream directory into the trash, durably. */
static int move_to_trash(struct sl_catalog *c, const char *name)
{
    char leaf[SL_STREAM_NAME_MAX + 32];
    snprintf(leaf, sizeof(leaf), "%s.%" PRIu64, name, sl_clock_wall_ms());
    char *from = path_cat(c->streams_dir, name);
    char *to = path_cat(c->trash_dir, leaf);
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
        char *p = path_cat(c->trash_dir, e->d_name);
        if (p != NULL) {
            remove_tree(p, 0);
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
            sl_warn("catalog", "stream %s: no stream.meta (unfinished create): removed",
                    st->name);
            stream_free(st);
            rc = move_to_trash(c, e->d_name);
            continue;
        }
        if (mrc != SL_OK) {
            sl_error("catalog", "stream %s: stream.meta is damaged (%s); refusing to start",
                     st->name, sl_strerror(mrc));
            stream_free(st);
            rc = mrc;
            break;
        }
        rc = stream_open_parts(c, st, true);
        if (rc != SL_OK) {
            sl_error("catalog", "stream %s: cannot open: %s", st->name, sl_strerror(rc));
            stream_free(st);
            break;
        }
        insert_sorted(c, st);
        sl_info("catalog", "stream %s: %u shards, retention %u h", st->name, st->shard_count,
                st->retention_hours);
    }
    closedir(d);
    return rc;
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
    c->streams_dir = path_cat(cfg->data_dir, "streams");
    c->trash_dir = path_cat(cfg->data_dir, "trash");
    int rc = c->streams_dir != NULL && c->trash_dir != NULL ? SL_OK : SL_ENOMEM;
    if (rc == SL_OK && mkdir(cfg->data_dir, 0755) != 0 && errno != EEXIST) {
        rc = sl_err_from_errno(errno);
        sl_error("catalog", "cannot create data directory %s: %s", cfg->data_dir,
                 strerror(errno));
    }
    if (rc == SL_OK) {
        rc = mkdir_durable(cfg->data_dir, c->streams_dir);
    }
    if (rc == SL_OK) {
        rc = mkdir_durable(cfg->data_dir, c->trash_dir);
    }
    if (rc == SL_OK) {
        empty_trash(c);
        rc = load_streams(c);
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
    while (c->streams != NULL) {
        struct sl_stream *st = c->streams;
        c->streams = st->next;
        stream_free(st);
    }
    sl_catalog_reap(c);
    while (c->graveyard != NULL) { /* still held: close anyway at shutdown */
        struct sl_stream *st = c->graveyard;
        c->graveyard = st->next;
        stream_free(st);
    }
    empty_trash(c);
    free(c->streams_dir);
    free(c->trash_dir);
    free(c);
}

int sl_catalog_create(struct sl_catalog *c, const char *name, uint32_t shard_count,
                      uint32_t retention_hours, uint64_t retention_bytes, const char *compression,
                      struct sl_stream **out, char *why, size_t why_len)
{
    if (!name_ok(name)) {
        snprintf(why, why_len, "stream name must be 1-128 of [A-Za-z0-9_.-], not starting with '.'");
        return SL_EINVAL;
    }
    if (shard_count == 0 || shard_count > SL_STREAM_SHARDS_MAX) {
        snprintf(why, why_len, "shard count must be in [1, %u]", SL_STREAM_SHARDS_MAX);
        return SL_EINVAL;
    }
    if (retention_hours == 0) {
        retention_hours = c->cfg.default_retention_hours;
    }
    if (retention_hours > 8760) {
        snprintf(why, why_len, "retention_hours must be in [1, 8760] (365 days)");
        return SL_EINVAL;
    }
    if (compression == NULL || compression[0] == '\0') {
        compression = "none";
    }
    if (strcmp(compression, "none") != 0 && strcmp(compression, "zstd") != 0) {
        snprintf(why, why_len, "compression must be none or zstd");
        return SL_EINVAL;
    }
    if (sl_catalog_find(c, name) != NULL) {
        snprintf(why, why_len, "stream %s already exists", name);
        return SL_EEXIST;
    }
    struct sl_stream *st = stream_new(c, name);
    if (st == NULL) {
        return SL_ENOMEM;
    }
    st->shard_count = shard_count;
    st->retention_hours = retention_hours;
    st->retention_bytes = retention_bytes;
    snprintf(st->compression, sizeof(st->compression), "%s", compression);
    st->created_ms = sl_clock_wall_ms();
    int rc = mkdir(st->dir, 0755) == 0 ? SL_OK : sl_err_from_errno(errno);
    if (rc == SL_EEXIST) {
        /* leftover of an unfinished create or delete: set it aside */
        rc = move_to_trash(c, name);
        if (rc == SL_OK) {
            rc = mkdir(st->dir, 0755) == 0 ? SL_OK : sl_err_from_errno(errno);
        }
    }
    if (rc == SL_OK) {
        rc = sl_fsync_dir(c->streams_dir);
    }
    if (rc == SL_OK) {
        rc = meta_write(st);
    }
    if (rc == SL_OK) {
        rc = stream_open_parts(c, st, false);
    }
    if (rc != SL_OK) {
        snprintf(why, why_len, "cannot create stream %s: %s", name, sl_strerror(rc));
        stream_free(st);
        (void)move_to_trash(c, name);
        return rc;
    }
    insert_sorted(c, st);
    sl_info("catalog", "created stream %s: %u shards, retention %u h", name, shard_count,
            retention_hours);
    *out = st;
    return SL_OK;
}

int sl_catalog_delete(struct sl_catalog *c, const char *name)
{
    struct sl_stream **pp = &c->streams;
    while (*pp != NULL && strcmp((*pp)->name, name) != 0) {
        pp = &(*pp)->next;
    }
    struct sl_stream *st = *pp;
    if (st == NULL) {
        return SL_ENOTFOUND;
    }
    int rc = move_to_trash(c, name);
    if (rc != SL_OK) {
        sl_error("catalog", "cannot delete stream %s: %s", name, sl_strerror(rc));
        return rc;
    }
    *pp = st->next;
    st->deleted = true;
    st->next = c->graveyard;
    c->graveyard = st;
    sl_info("catalog", "deleted stream %s", name);
    return SL_OK;
}

struct sl_stream *sl_catalog_find(struct sl_catalog *c, const char *name)
{
    for (struct sl_stream *st = c->streams; st != NULL; st = st->next) {
        if (strcmp(st->name, name) == 0) {
            return st;
        }
    }
    return NULL;
}

struct sl_stream *sl_catalog_first(struct sl_catalog *c)
{
    return c->streams;
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
        stream_free(st);
        freed = true;
    }
    if (freed) {
        empty_trash(c);
    }
}

void sl_catalog_retention(struct sl_catalog *c)
{
    for (struct sl_stream *st = c->streams; st != NULL; st = st->next) {
        for (uint32_t i = 0; i < st->shard_count; i++) {
            sl_bshard_retention(&st->shards[i]);
        }
    }
}

/* ---- producer de-duplication ----------------------------------------- */

static struct sl_dedup_entry *dedup_find(struct sl_bshard *b, uint64_t pid)
{
    uint32_t mask = SL_DEDUP_SLOTS - 1;
    uint32_t i = (uint32_t)(sl_checksum64(&pid, sizeof(pid)) & mask);
    for (uint32_t probe = 0; probe < SL_DEDUP_SLOTS; probe++, i = (i + 1) & mask) {
        struct sl_dedup_entry *e = &b->dedup[i];
        if (e->producer_id == pid || e->producer_id == 0) {
            return e;
        }
    }
    return NULL;
}

/* Evicts the least recently used producer when the table is 3/4 full, by
 * rebuilding without it (rare: only when > 768 producers write one shard). */
static void dedup_make_room(struct sl_bshard *b)
{
    uint32_t used = 0;
    struct sl_dedup_entry *lru = NULL;
    for (uint32_t i = 0; i < SL_DEDUP_SLOTS; i++) {
        struct sl_dedup_entry *e = &b->dedup[i];
        if (e->producer_id != 0) {
            used++;
            if (!e->pending && (lru == NULL || e->last_use < lru->last_use)) {
                lru = e;
            }
        }
    }
    if (used < SL_DEDUP_SLOTS / 4 * 3 || lru == NULL) {
        return;
    }
    lru->producer_id = 0;
    /* Re-insert the rest so that probe chains stay unbroken. */
    struct sl_dedup_entry *old = b->dedup;
    struct sl_dedup_entry *fresh = calloc(SL_DEDUP_SLOTS, sizeof(*fresh));
    if (fresh == NULL) {
        return;
    }
    b->dedup = fresh;
    for (uint32_t i = 0; i < SL_DEDUP_SLOTS; i++) {
        if (old[i].producer_id != 0) {
            *dedup_find(b, old[i].producer_id) = old[i];
        }
    }
    free(old);
}

int sl_dedup_begin(struct sl_bshard *b, uint64_t producer_id, uint64_t producer_seq,
                   struct sl_dedup_entry **out)
{
    *out = NULL;
    if (producer_id == 0) {
        return SL_OK;
    }
    struct sl_dedup_entry *e = dedup_find(b, producer_id);
    if (e != NULL && e->producer_id == producer_id) {
        *out = e;
        if (e->pending && producer_seq == e->pending_seq) {
            return SL_EAGAIN;
        }
        if (e->has_last && producer_seq <= e->producer_seq) {
            return SL_EEXIST; /* a retry of a stored batch */
        }
    } else {
        dedup_make_room(b);
        e = dedup_find(b, producer_id);
        if (e == NULL) {
            return SL_OK; /* table full of pending entries: no de-dup for it */
        }
        *e = (struct sl_dedup_entry){.producer_id = producer_id};
    }
    e->pending = true;
    e->pending_seq = producer_seq;
    e->last_use = ++b->dedup_clock;
    *out = e;
    return SL_OK;
}

void sl_dedup_end(struct sl_bshard *b, uint64_t producer_id, uint64_t producer_seq, int err,
                  uint64_t base_seq, uint32_t count)
{
    if (producer_id == 0) {
        return;
    }
    struct sl_dedup_entry *e = dedup_find(b, producer_id);
    if (e == NULL || e->producer_id != producer_id) {
        return;
    }
    if (e->pending && e->pending_seq == producer_seq) {
        e->pending = false;
    }
    if (err == SL_OK && (!e->has_last || producer_seq > e->producer_seq)) {
        e->has_last = true;
        e->producer_seq = producer_seq;
        e->base_seq = base_seq;
        e->count = count;
    }
    /* On failure nothing was stored: a retry of it will be written. */
}

/* ---- message de-dup ids ----------------------------------------------- */

#define MSGDEDUP_PROBE 64u /* bounded probe run; the table never fills up */

bool sl_msgdedup_seen(struct sl_stream *st, uint64_t hash, uint64_t now_ms, uint64_t window_ms)
{
    if (st->msgdedup == NULL) {
        st->msgdedup = calloc(SL_MSGDEDUP_SLOTS, sizeof(*st->msgdedup));
        if (st->msgdedup == NULL) {
            return false; /* no memory for de-dup: store it (at-least-once) */
        }
    }
    hash = hash != 0 ? hash : 1;
    uint32_t mask = SL_MSGDEDUP_SLOTS - 1;
    struct sl_msgdedup_slot *free_slot = NULL, *oldest = NULL;
    for (uint32_t i = 0; i < MSGDEDUP_PROBE; i++) {
        struct sl_msgdedup_slot *sl = &st->msgdedup[(hash + i) & mask];
        bool live = sl->hash != 0 && sl->time_ms != 0 && sl->time_ms + window_ms > now_ms;
        if (live && sl->hash == hash) {
            return true;
        }
        if (!live) {
            free_slot = free_slot != NULL ? free_slot : sl;
        } else if (oldest == NULL || sl->time_ms < oldest->time_ms) {
            oldest = sl;
        }
    }
    struct sl_msgdedup_slot *victim = free_slot != NULL ? free_slot : oldest;
    victim->hash = hash;
    victim->time_ms = now_ms;
    return false;
}

void sl_msgdedup_forget(struct sl_stream *st, uint64_t hash)
{
    if (st->msgdedup == NULL) {
        return;
    }
    hash = hash != 0 ? hash : 1;
    uint32_t mask = SL_MSGDEDUP_SLOTS - 1;
    for (uint32_t i = 0; i < MSGDEDUP_PROBE; i++) {
        struct sl_msgdedup_slot *sl = &st->msgdedup[(hash + i) & mask];
        if (sl->hash == hash) {
            sl->time_ms = 0;
            return;
        }
    }
}
