/* checkpoint.c - durable consumer-group checkpoints of one stream.
 *
 * State: for each group (at most groups_max) and each shard it committed,
 * the durable (seq, updated_ms), in memory: a name-sorted array of groups,
 * each with a shard-sorted array of entries. Memory is O(groups x shards with
 * a checkpoint). An entry exists from its first commit; it is served (get,
 * foreach) only once a commit to it is durable.
 *
 * Files in the directory (docs/FORMAT.md section 4; all little-endian):
 *   checkpoints.log   append-only records, back to back:
 *       u32 length      whole record, header included: 29 .. 156
 *       u32 check       check32 (low 32 bits of XXH3-64) of bytes [0, 4)
 *                       followed by bytes [8, length)
 *       u8  group[length - 28]   1 .. 128 bytes, no NUL
 *       u32 shard
 *       u64 seq         the next sequence to read
 *       u64 updated_ms
 *     Replay applies records in file order; the last one for a key wins (a
 *     checkpoint may move backwards).
 *   checkpoints.snap  the whole state at a compaction:
 *       u32 magic "SLCK" (0x4B434C53), u32 version (1), u64 entry_count,
 *       u64 body_len, body (entry_count records in the log format, sorted by
 *       group name, then shard, no duplicates), u64 XXH3-64 of every byte
 *       before it.
 *   checkpoints.snap.tmp  a snapshot being written; removed at open.
 *
 * Write path (group commit). A commit encodes its record into the staging
 * batch and queues the flush at the end of the loop tick (sl_ring_defer).
 * One batch is in flight at a time: one write of all its records at the end
 * of the log, then one fdatasync; when that completes the batch's values
 * become durable (visible to get/foreach) and its callbacks run in commit
 * order. Commits made meanwhile form the next batch.
 *
 * Compaction is SYNCHRONOUS (it blocks the loop thread; it is rare: once per
 * log_bytes_max of records). When the log has passed log_bytes_max and no
 * batch is in flight (right after an fdatasync completed, and at open):
 *   write checkpoints.snap.tmp (durable state) -> fsync it -> rename over
 *   checkpoints.snap -> fsync the directory -> truncate the log to 0 -> fsync.
 * A crash before the rename leaves the old snapshot and the full log; after
 * it, the new snapshot plus the old log, whose replay reproduces the same
 * values (the snapshot is the result of that very log). A failure before the
 * rename is logged and the log keeps growing (retried after another
 * log_bytes_max); a failure after it makes the store fatal.
 *
 * Recovery (open): load the snapshot (checksum and structure verified; a bad
 * snapshot fails the open with SL_ECORRUPT: checkpoints are never silently
 * lost), then replay the log up to the first invalid or incomplete record,
 * truncate the log there (logging the dropped byte count) and fsync it. A
 * record that fails its check is dropped with everything after it (a torn
 * group-commit write can persist its pages in any order), so a damaged record
 * makes the checkpoint go back to an earlier value, never to a wrong one.
 *
 * Errors: a failed write or fdatasync is not retried: the store fails every
 * commit not yet durable and refuses new ones (SL_EFATAL) until reopened.
 *
 * Threading: everything runs on the thread of the store's ring.
 */
#include "storage/checkpoint.h"

#include "common/assert.h"
#include "common/checksum.h"
#include "common/error.h"
#include "common/fileio.h"
#include "common/log.h"
#include "common/ring.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOG_NAME      "checkpoints.log"
#define SNAP_NAME     "checkpoints.snap"
#define SNAP_TMP_NAME "checkpoints.snap.tmp"

#define REC_HEAD 8u  /* length + check */
#define REC_TAIL 20u /* shard u32 + seq u64 + updated_ms u64 */
#define REC_MIN  (REC_HEAD + 1u + REC_TAIL)
#define REC_MAX  (REC_HEAD + SL_CKPT_GROUP_NAME_MAX + REC_TAIL)
_Static_assert(REC_MIN == 29 && REC_MAX == 156, "record bounds are part of the on-disk format");

#define SNAP_MAGIC   0x4B434C53u /* "SLCK" */
#define SNAP_VERSION 1u
#define SNAP_HEAD    24u /* magic, version, entry_count, body_len */
#define SNAP_TRAILER 8u
/* The largest snapshot: every group with SL_CKPT_SHARDS_MAX full records is
 * far beyond this; a bigger file is treated as damage, not read. */
#define SNAP_BYTES_MAX     (1ull << 34)
#define REPLAY_CHUNK_BYTES (1u << 20)
_Static_assert(REPLAY_CHUNK_BYTES >= REC_MAX, "a chunk holds a whole record");

#define CFG_GROUPS_MAX_MAX  (1u << 20)
#define CFG_LOG_BYTES_MIN   (4u << 10)
#define CFG_LOG_BYTES_MAX   (1u << 30)
#define CFG_PENDING_MAX_MAX (1u << 24)

struct entry {
    uint32_t shard;
    bool durable;
    uint64_t seq;
    uint64_t updated_ms;
};

struct group {
    char name[SL_CKPT_GROUP_NAME_MAX + 1];
    struct entry *ents; /* sorted by shard */
    uint32_t count;
    uint32_t cap;
};

struct pend {
    struct group *g; /* groups are never freed before the store */
    uint32_t shard;
    uint64_t seq;
    uint64_t updated_ms;
    sl_ckpt_cb cb;
    void *ctx;
};

/* A group-commit batch: the commits and their encoded records. */
struct batch {
    struct pend *p;
    uint32_t count;
    uint32_t cap;
    uint8_t *buf;
    uint32_t len;
    uint32_t buf_cap;
};

struct rec {
    const char *name; /* points into the record: not NUL-terminated */
    uint32_t name_len;
    uint32_t shard;
    uint64_t seq;
    uint64_t updated_ms;
};

struct sl_ckpt_store {
    struct sl_ring *ring;
    struct sl_ckpt_config cfg;
    char *dir;
    int dir_fd;
    int log_fd;
    int state; /* SL_OK or SL_EFATAL */
    bool busy; /* a batch's write or fdatasync is in flight */
    bool closing;
    uint32_t ops;        /* ring ops in flight */
    uint64_t log_bytes;  /* durable end of the log: the next write's offset */
    uint64_t compact_at; /* compact when log_bytes passes this */
    uint32_t fly_done;   /* bytes of `fly` written so far (short writes) */
    struct batch stage;  /* commits not yet issued */
    struct batch fly;    /* the batch being written and synced */
    struct sl_io_op write_op;
    struct sl_io_op sync_op;
    struct sl_deferred flush;
    struct group **groups; /* sorted by name (strcmp) */
    uint32_t group_count;
    uint32_t group_cap;
    struct sl_ckpt_stats stats;
};

/* ------------------------------------------------------------------ */
/* encoding                                                            */

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static uint32_t get_u32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}

/* check32 over the length field and everything after the check field. */
static uint32_t rec_check(const uint8_t *r, uint32_t len)
{
    SL_ASSERT(len >= REC_MIN && len <= REC_MAX);
    uint8_t tmp[REC_MAX - 4];
    memcpy(tmp, r, 4);
    memcpy(tmp + 4, r + REC_HEAD, len - REC_HEAD);
    return sl_checksum32(tmp, len - 4);
}

/* Decodes and verifies one record of `len` bytes (len read from its first 4
 * bytes by the caller). Returns SL_ECORRUPT on any mismatch. */
static int rec_decode(const uint8_t *r, uint32_t len, struct rec *out)
{
    if (len < REC_MIN || len > REC_MAX || get_u32(r) != len) {
        return SL_ECORRUPT;
    }
    if (get_u32(r + 4) != rec_check(r, len)) {
        return SL_ECORRUPT;
    }
    uint32_t name_len = len - REC_HEAD - REC_TAIL;
    const uint8_t *name = r + REC_HEAD;
    if (memchr(name, '\0', name_len) != NULL) {
        return SL_ECORRUPT;
    }
    const uint8_t *t = name + name_len;
    out->name = (const char *)name;
    out->name_len = name_len;
    out->shard = get_u32(t);
    out->seq = get_u64(t + 4);
    out->updated_ms = get_u64(t + 12);
    return SL_OK;
}

/* Encodes one record into `out` (REC_MAX bytes available); returns its length. */
static uint32_t rec_encode(uint8_t *out, const char *name, uint32_t name_len, uint32_t shard,
                           uint64_t seq, uint64_t updated_ms)
{
    SL_ASSERT(name_len >= 1 && name_len <= SL_CKPT_GROUP_NAME_MAX);
    uint32_t len = REC_HEAD + name_len + REC_TAIL;
    put_u32(out, len);
    memcpy(out + REC_HEAD, name, name_len);
    uint8_t *t = out + REC_HEAD + name_len;
    put_u32(t, shard);
    put_u64(t + 4, seq);
    put_u64(t + 12, updated_ms);
    put_u32(out + 4, rec_check(out, len));
    /* Check both sides: what is written must read back as what was meant. */
    struct rec r;
    SL_ASSERT(rec_decode(out, len, &r) == SL_OK && r.seq == seq && r.shard == shard);
    return len;
}

/* ------------------------------------------------------------------ */
/* the in-memory table                                                 */

/* Binary search by name; returns the group, or NULL with *at = insert index. */
static struct group *group_find(const struct sl_ckpt_store *cs, const char *name, uint32_t *at)
{
    uint32_t lo = 0, hi = cs->group_count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        int c = strcmp(cs->groups[mid]->name, name);
        if (c == 0) {
            *at = mid;
            return cs->groups[mid];
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    *at = lo;
    return NULL;
}

static struct entry *entry_find(const struct group *g, uint32_t shard, uint32_t *at)
{
    uint32_t lo = 0, hi = g->count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (g->ents[mid].shard == shard) {
            *at = mid;
            return &g->ents[mid];
        }
        if (g->ents[mid].shard < shard) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    *at = lo;
    return NULL;
}

static int grow(void **arr, uint32_t *cap, uint32_t need, size_t elem, uint32_t first)
{
    if (need <= *cap) {
        return SL_OK;
    }
    uint32_t n = *cap > 0 ? *cap : first;
    while (n < need) {
        n = n > UINT32_MAX / 2 ? UINT32_MAX : n * 2;
    }
    void *p = realloc(*arr, (size_t)n * elem);
    if (p == NULL) {
        return SL_ENOMEM;
    }
    *arr = p;
    *cap = n;
    return SL_OK;
}

/* Creates group `name` (name_len bytes, validated) at sorted index `at`. */
static int group_insert(struct sl_ckpt_store *cs, const char *name, uint32_t name_len, uint32_t at,
                        struct group **out)
{
    int rc =
        grow((void **)&cs->groups, &cs->group_cap, cs->group_count + 1, sizeof(*cs->groups), 16);
    if (rc != SL_OK) {
        return rc;
    }
    struct group *g = calloc(1, sizeof(*g));
    if (g == NULL) {
        return SL_ENOMEM;
    }
    rc = grow((void **)&g->ents, &g->cap, 1, sizeof(*g->ents), 4);
    if (rc != SL_OK) {
        free(g);
        return rc;
    }
    memcpy(g->name, name, name_len);
    g->name[name_len] = '\0';
    memmove(&cs->groups[at + 1], &cs->groups[at], (cs->group_count - at) * sizeof(*cs->groups));
    cs->groups[at] = g;
    cs->group_count++;
    cs->stats.groups = cs->group_count;
    *out = g;
    return SL_OK;
}

/* Inserts a not-yet-durable entry at `at`; capacity must be there. */
static struct entry *entry_insert(struct sl_ckpt_store *cs, struct group *g, uint32_t shard,
                                  uint32_t at)
{
    SL_ASSERT(g->count < g->cap && at <= g->count);
    memmove(&g->ents[at + 1], &g->ents[at], (g->count - at) * sizeof(*g->ents));
    g->ents[at] = (struct entry){.shard = shard, .durable = false};
    g->count++;
    cs->stats.entries++;
    return &g->ents[at];
}

/* Sets a durable value while loading (no limits: checkpoints on disk are
 * never refused, even if groups_max was lowered since). */
static int load_set(struct sl_ckpt_store *cs, const struct rec *r)
{
    char name[SL_CKPT_GROUP_NAME_MAX + 1];
    memcpy(name, r->name, r->name_len);
    name[r->name_len] = '\0';
    uint32_t at = 0;
    struct group *g = group_find(cs, name, &at);
    if (g == NULL) {
        int rc = group_insert(cs, name, r->name_len, at, &g);
        if (rc != SL_OK) {
            return rc;
        }
    }
    struct entry *e = entry_find(g, r->shard, &at);
    if (e == NULL) {
        int rc = grow((void **)&g->ents, &g->cap, g->count + 1, sizeof(*g->ents), 4);
        if (rc != SL_OK) {
            return rc;
        }
        e = entry_insert(cs, g, r->shard, at);
    }
    e->durable = true;
    e->seq = r->seq;
    e->updated_ms = r->updated_ms;
    return SL_OK;
}

/* ------------------------------------------------------------------ */
/* file helpers                                                        */

/* ------------------------------------------------------------------ */
/* snapshot                                                            */

static uint64_t durable_entries(const struct sl_ckpt_store *cs, uint64_t *bytes)
{
    uint64_t n = 0, b = 0;
    for (uint32_t i = 0; i < cs->group_count; i++) {
        const struct group *g = cs->groups[i];
        for (uint32_t j = 0; j < g->count; j++) {
            if (g->ents[j].durable) {
                n++;
                b += REC_HEAD + strlen(g->name) + REC_TAIL;
            }
        }
    }
    *bytes = b;
    return n;
}

/* Builds the snapshot image of the durable state (returns owned buffer). */
static int snap_build(const struct sl_ckpt_store *cs, uint8_t **out, size_t *out_len)
{
    uint64_t body = 0;
    uint64_t count = durable_entries(cs, &body);
    size_t total = SNAP_HEAD + (size_t)body + SNAP_TRAILER;
    uint8_t *buf = malloc(total);
    if (buf == NULL) {
        return SL_ENOMEM;
    }
    put_u32(buf, SNAP_MAGIC);
    put_u32(buf + 4, SNAP_VERSION);
    put_u64(buf + 8, count);
    put_u64(buf + 16, body);
    size_t off = SNAP_HEAD;
    for (uint32_t i = 0; i < cs->group_count; i++) {
        const struct group *g = cs->groups[i];
        uint32_t nl = (uint32_t)strlen(g->name);
        for (uint32_t j = 0; j < g->count; j++) {
            const struct entry *e = &g->ents[j];
            if (e->durable) {
                off += rec_encode(buf + off, g->name, nl, e->shard, e->seq, e->updated_ms);
            }
        }
    }
    SL_ASSERT(off == SNAP_HEAD + body);
    put_u64(buf + off, sl_checksum64(buf, off));
    *out = buf;
    *out_len = total;
    return SL_OK;
}

/* Writes the snapshot tmp file and fsyncs it. */
static int snap_write_tmp(struct sl_ckpt_store *cs, const uint8_t *buf, size_t len)
{
    int fd = openat(cs->dir_fd, SNAP_TMP_NAME, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        return sl_err_from_errno(errno);
    }
    int rc = sl_pwrite_full(fd, buf, len, 0);
    if (rc == SL_OK) {
        rc = sl_fsync_fd(fd);
    }
    close(fd);
    return rc;
}

static void go_fatal(struct sl_ckpt_store *cs, const char *what, int errnum);

/* Synchronous compaction (see the file comment). Nothing may be in flight. */
static void compact(struct sl_ckpt_store *cs)
{
    SL_ASSERT(!cs->busy && cs->state == SL_OK);
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = snap_build(cs, &buf, &len);
    if (rc == SL_OK) {
        rc = snap_write_tmp(cs, buf, len);
    }
    free(buf);
    if (rc == SL_OK && renameat(cs->dir_fd, SNAP_TMP_NAME, cs->dir_fd, SNAP_NAME) != 0) {
        rc = sl_err_from_errno(errno);
    }
    if (rc != SL_OK) {
        /* Nothing changed on disk that recovery reads: keep the log. */
        (void)unlinkat(cs->dir_fd, SNAP_TMP_NAME, 0);
        cs->compact_at = cs->log_bytes + cs->cfg.log_bytes_max;
        sl_warn("storage",
                "%s: checkpoint compaction failed: %s; the log keeps growing (%" PRIu64
                " bytes), retried at %" PRIu64,
                cs->dir, sl_strerror(rc), cs->log_bytes, cs->compact_at);
        return;
    }
    /* The new snapshot is in place; the log must not be cut before the
     * rename is durable. */
    if (fsync(cs->dir_fd) != 0) {
        go_fatal(cs, "directory fsync after the snapshot rename", errno);
        return;
    }
    if (ftruncate(cs->log_fd, 0) != 0) {
        go_fatal(cs, "log truncate after a snapshot", errno);
        return;
    }
    if (fsync(cs->log_fd) != 0) {
        go_fatal(cs, "log fsync after a snapshot", errno);
        return;
    }
    sl_info("storage", "%s: checkpoints compacted (%zu-byte snapshot, %" PRIu64 "-byte log cut)",
            cs->dir, len, cs->log_bytes);
    cs->log_bytes = 0;
    cs->compact_at = cs->cfg.log_bytes_max;
    cs->stats.compactions++;
}

static int snap_parse(struct sl_ckpt_store *cs, const uint8_t *buf, size_t size, const char **why)
{
    if (size < SNAP_HEAD + SNAP_TRAILER || get_u32(buf) != SNAP_MAGIC) {
        *why = "bad magic or too short";
        return SL_ECORRUPT;
    }
    if (get_u32(buf + 4) != SNAP_VERSION) {
        *why = "unknown version";
        return SL_ECORRUPT;
    }
    uint64_t count = get_u64(buf + 8);
    uint64_t body = get_u64(buf + 16);
    if (body != size - SNAP_HEAD - SNAP_TRAILER) {
        *why = "body length does not match the file size";
        return SL_ECORRUPT;
    }
    if (get_u64(buf + size - SNAP_TRAILER) != sl_checksum64(buf, size - SNAP_TRAILER)) {
        *why = "checksum mismatch";
        return SL_ECORRUPT;
    }
    size_t off = SNAP_HEAD, end = SNAP_HEAD + (size_t)body;
    uint64_t n = 0;
    char prev[SL_CKPT_GROUP_NAME_MAX + 1] = "";
    uint32_t prev_shard = 0;
    while (off < end) {
        struct rec r;
        uint32_t len = end - off >= 4 ? get_u32(buf + off) : 0;
        if (len > end - off || rec_decode(buf + off, len, &r) != SL_OK) {
            *why = "a record fails its check";
            return SL_ECORRUPT;
        }
        char name[SL_CKPT_GROUP_NAME_MAX + 1];
        memcpy(name, r.name, r.name_len);
        name[r.name_len] = '\0';
        int c = strcmp(prev, name);
        if (n > 0 && (c > 0 || (c == 0 && r.shard <= prev_shard))) {
            *why = "records out of order";
            return SL_ECORRUPT;
        }
        int rc = load_set(cs, &r);
        if (rc != SL_OK) {
            return rc;
        }
        memcpy(prev, name, r.name_len + 1);
        prev_shard = r.shard;
        off += len;
        n++;
    }
    if (n != count) {
        *why = "entry count mismatch";
        return SL_ECORRUPT;
    }
    return SL_OK;
}

static int load_snapshot(struct sl_ckpt_store *cs)
{
    int fd = openat(cs->dir_fd, SNAP_NAME, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return errno == ENOENT ? SL_OK : sl_err_from_errno(errno);
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int rc = sl_err_from_errno(errno);
        close(fd);
        return rc;
    }
    const char *why = "larger than any snapshot";
    int rc = SL_ECORRUPT;
    uint8_t *buf = NULL;
    size_t size = (size_t)st.st_size;
    if ((uint64_t)st.st_size <= SNAP_BYTES_MAX) {
        buf = malloc(size > 0 ? size : 1);
        size_t got = 0;
        rc = buf == NULL ? SL_ENOMEM : sl_pread_full(fd, buf, size, 0, &got);
        if (rc == SL_OK && got != size) {
            rc = SL_EIO;
        }
        if (rc == SL_OK) {
            rc = snap_parse(cs, buf, size, &why);
        }
    }
    free(buf);
    close(fd);
    if (rc == SL_ECORRUPT) {
        sl_error("storage",
                 "%s/%s: snapshot is corrupt (%s); refusing to open the checkpoints rather "
                 "than lose them: restore the file, or move it away to start without them",
                 cs->dir, SNAP_NAME, why);
    }
    return rc;
}

/* ------------------------------------------------------------------ */
/* log replay                                                          */

/* Applies the valid records of the log; *end is the offset after the last. */
static int replay_log(struct sl_ckpt_store *cs, uint64_t file_size, uint64_t *end)
{
    uint8_t *buf = malloc(REPLAY_CHUNK_BYTES);
    if (buf == NULL) {
        return SL_ENOMEM;
    }
    uint64_t base = 0; /* file offset of buf[0] */
    size_t have = 0, off = 0;
    int rc = SL_OK;
    bool bad = false;
    for (;;) {
        while (have - off >= 4) {
            uint32_t len = get_u32(buf + off);
            if (len < REC_MIN || len > REC_MAX) {
                bad = true;
                break;
            }
            if (have - off < len) {
                break;
            }
            struct rec r;
            if (rec_decode(buf + off, len, &r) != SL_OK) {
                bad = true;
                break;
            }
            rc = load_set(cs, &r);
            if (rc != SL_OK) {
                free(buf);
                return rc;
            }
            off += len;
        }
        if (bad || base + have >= file_size) {
            break;
        }
        memmove(buf, buf + off, have - off);
        base += off;
        have -= off;
        off = 0;
        size_t want = REPLAY_CHUNK_BYTES - have;
        if (want > file_size - base - have) {
            want = (size_t)(file_size - base - have);
        }
        size_t got = 0;
        rc = sl_pread_full(cs->log_fd, buf + have, want, base + have, &got);
        if (rc != SL_OK || got == 0) {
            break;
        }
        have += got;
    }
    free(buf);
    *end = base + off;
    return rc;
}

static int open_log(struct sl_ckpt_store *cs)
{
    cs->log_fd = openat(cs->dir_fd, LOG_NAME, O_RDWR | O_CLOEXEC);
    if (cs->log_fd < 0 && errno == ENOENT) {
        cs->log_fd = openat(cs->dir_fd, LOG_NAME, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (cs->log_fd >= 0) {
            return sl_fsync_fd(cs->dir_fd); /* the new entry is durable */
        }
    }
    return cs->log_fd < 0 ? sl_err_from_errno(errno) : SL_OK;
}

static int load_log(struct sl_ckpt_store *cs)
{
    int rc = open_log(cs);
    struct stat st;
    if (rc == SL_OK && fstat(cs->log_fd, &st) != 0) {
        rc = sl_err_from_errno(errno);
    }
    if (rc != SL_OK) {
        return rc;
    }
    uint64_t size = (uint64_t)st.st_size, end = 0;
    rc = replay_log(cs, size, &end);
    if (rc != SL_OK) {
        return rc;
    }
    if (end < size) {
        cs->stats.recovery_truncated_bytes = size - end;
        sl_warn("storage",
                "%s/%s: truncated %" PRIu64 " bytes of torn or corrupt tail at offset %" PRIu64,
                cs->dir, LOG_NAME, size - end, end);
        if (ftruncate(cs->log_fd, (off_t)end) != 0) {
            return sl_err_from_errno(errno);
        }
        rc = sl_fsync_fd(cs->log_fd);
    }
    cs->log_bytes = end;
    return rc;
}

/* ------------------------------------------------------------------ */
/* write path                                                          */

static void fail_batch(struct batch *b, int err)
{
    uint32_t n = b->count;
    b->count = 0;
    b->len = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (b->p[i].cb != NULL) {
            b->p[i].cb(b->p[i].ctx, err);
        }
    }
}

static void go_fatal(struct sl_ckpt_store *cs, const char *what, int errnum)
{
    if (cs->state != SL_EFATAL) {
        sl_error("storage",
                 "%s: checkpoint %s failed: %s; commits are refused from now on (reopen to "
                 "recover what is durable)",
                 cs->dir, what, strerror(errnum));
    }
    cs->state = SL_EFATAL;
    cs->busy = false;
    fail_batch(&cs->fly, SL_EFATAL);
    fail_batch(&cs->stage, SL_EFATAL);
}

static void write_issue(struct sl_ckpt_store *cs)
{
    SL_ASSERT(cs->fly_done < cs->fly.len);
    cs->ops++;
    cs->stats.writes++;
    sl_ring_write(cs->ring, &cs->write_op, cs->log_fd, cs->fly.buf + cs->fly_done,
                  cs->fly.len - cs->fly_done, cs->log_bytes + cs->fly_done);
}

/* Issues the staged commits as one write (then one fdatasync). */
static void issue(struct sl_ckpt_store *cs)
{
    if (cs->busy || cs->stage.count == 0 || cs->state != SL_OK) {
        return;
    }
    SL_ASSERT(cs->fly.count == 0 && cs->stage.len > 0);
    struct batch t = cs->fly;
    cs->fly = cs->stage;
    cs->stage = t;
    cs->stage.count = 0;
    cs->stage.len = 0;
    cs->busy = true;
    cs->fly_done = 0;
    write_issue(cs);
}

static void flush_deferred(struct sl_deferred *d)
{
    issue(sl_container_of(d, struct sl_ckpt_store, flush));
}

static void write_done(struct sl_io_op *op, int res)
{
    struct sl_ckpt_store *cs = sl_container_of(op, struct sl_ckpt_store, write_op);
    cs->ops--;
    if (res <= 0) {
        go_fatal(cs, "log write", res < 0 ? -res : EIO);
        return;
    }
    cs->fly_done += (uint32_t)res;
    if (cs->fly_done < cs->fly.len) {
        write_issue(cs); /* short write: continue where it stopped */
        return;
    }
    cs->ops++;
    cs->stats.fsyncs++;
    sl_ring_fsync(cs->ring, &cs->sync_op, cs->log_fd, 1);
}

static void sync_done(struct sl_io_op *op, int res)
{
    struct sl_ckpt_store *cs = sl_container_of(op, struct sl_ckpt_store, sync_op);
    cs->ops--;
    if (res < 0) {
        go_fatal(cs, "log fdatasync", -res);
        return;
    }
    cs->log_bytes += cs->fly.len;
    cs->stats.records += cs->fly.count;
    /* Durable: make the values visible before any callback runs. */
    for (uint32_t i = 0; i < cs->fly.count; i++) {
        const struct pend *p = &cs->fly.p[i];
        uint32_t at = 0;
        struct entry *e = entry_find(p->g, p->shard, &at);
        SL_ASSERT(e != NULL);
        e->durable = true;
        e->seq = p->seq;
        e->updated_ms = p->updated_ms;
    }
    uint32_t n = cs->fly.count;
    cs->fly.count = 0;
    cs->fly.len = 0;
    /* Callbacks may commit: those go to `stage` (busy is still set). */
    for (uint32_t i = 0; i < n; i++) {
        if (cs->fly.p[i].cb != NULL) {
            cs->fly.p[i].cb(cs->fly.p[i].ctx, SL_OK);
        }
    }
    cs->busy = false;
    if (cs->state == SL_OK && cs->log_bytes > cs->compact_at) {
        compact(cs);
    }
    issue(cs);
}

int sl_ckpt_commit(struct sl_ckpt_store *cs, const char *group, uint32_t shard, uint64_t seq,
                   uint64_t now_ms, sl_ckpt_cb cb, void *ctx)
{
    SL_ASSERT(cs != NULL);
    size_t name_len = group != NULL ? strnlen(group, SL_CKPT_GROUP_NAME_MAX + 1) : 0;
    if (name_len == 0 || name_len > SL_CKPT_GROUP_NAME_MAX) {
        return SL_EINVAL;
    }
    if (cs->state != SL_OK) {
        return SL_EFATAL;
    }
    if (cs->closing) {
        return SL_ECLOSED;
    }
    if (cs->stage.count + cs->fly.count >= cs->cfg.pending_max) {
        return SL_EAGAIN;
    }
    uint32_t at = 0;
    struct group *g = group_find(cs, group, &at);
    if (g == NULL && cs->group_count >= cs->cfg.groups_max) {
        return SL_ELIMIT;
    }
    uint32_t eat = 0;
    struct entry *e = g != NULL ? entry_find(g, shard, &eat) : NULL;
    if (g != NULL && e == NULL && g->count >= SL_CKPT_SHARDS_MAX) {
        return SL_ELIMIT;
    }
    /* Reserve everything that can fail before changing anything. */
    int rc =
        grow((void **)&cs->stage.p, &cs->stage.cap, cs->stage.count + 1, sizeof(*cs->stage.p), 64);
    if (rc == SL_OK) {
        rc = grow((void **)&cs->stage.buf, &cs->stage.buf_cap, cs->stage.len + REC_MAX, 1,
                  64 * REC_MAX);
    }
    if (rc == SL_OK && g != NULL && e == NULL) {
        rc = grow((void **)&g->ents, &g->cap, g->count + 1, sizeof(*g->ents), 4);
    }
    if (rc == SL_OK && g == NULL) {
        rc = group_insert(cs, group, (uint32_t)name_len, at, &g);
    }
    if (rc != SL_OK) {
        return rc;
    }
    if (e == NULL) {
        (void)entry_find(g, shard, &eat);
        e = entry_insert(cs, g, shard, eat);
    }
    cs->stage.len +=
        rec_encode(cs->stage.buf + cs->stage.len, group, (uint32_t)name_len, shard, seq, now_ms);
    cs->stage.p[cs->stage.count++] = (struct pend){
        .g = g, .shard = shard, .seq = seq, .updated_ms = now_ms, .cb = cb, .ctx = ctx};
    cs->stats.commits++;
    sl_ring_defer(cs->ring, &cs->flush);
    return SL_OK;
}

/* ------------------------------------------------------------------ */
/* reads                                                               */

int sl_ckpt_get(const struct sl_ckpt_store *cs, const char *group, uint32_t shard, uint64_t *seq,
                uint64_t *updated_ms)
{
    if (group == NULL) {
        return SL_ENOTFOUND;
    }
    uint32_t at = 0;
    const struct group *g = group_find(cs, group, &at);
    const struct entry *e = g != NULL ? entry_find(g, shard, &at) : NULL;
    if (e == NULL || !e->durable) {
        return SL_ENOTFOUND;
    }
    *seq = e->seq;
    if (updated_ms != NULL) {
        *updated_ms = e->updated_ms;
    }
    return SL_OK;
}

void sl_ckpt_foreach(const struct sl_ckpt_store *cs, const char *group_or_null,
                     void (*fn)(void *ctx, const char *group, uint32_t shard, uint64_t seq,
                                uint64_t updated_ms),
                     void *ctx)
{
    uint32_t from = 0, to = cs->group_count;
    if (group_or_null != NULL) {
        if (group_find(cs, group_or_null, &from) == NULL) {
            return;
        }
        to = from + 1;
    }
    for (uint32_t i = from; i < to; i++) {
        const struct group *g = cs->groups[i];
        for (uint32_t j = 0; j < g->count; j++) {
            const struct entry *e = &g->ents[j];
            if (e->durable) {
                fn(ctx, g->name, e->shard, e->seq, e->updated_ms);
            }
        }
    }
}

void sl_ckpt_stats(const struct sl_ckpt_store *cs, struct sl_ckpt_stats *st)
{
    *st = cs->stats;
    st->groups = cs->group_count;
    st->pending = cs->stage.count + cs->fly.count;
    st->log_bytes = cs->log_bytes;
    st->state = cs->state;
}

/* ------------------------------------------------------------------ */
/* open and close                                                      */

void sl_ckpt_config_default(struct sl_ckpt_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->groups_max = 1024;
    cfg->log_bytes_max = 4u << 20;
    cfg->pending_max = 16384;
}

static int config_check(const struct sl_ckpt_config *cfg)
{
    if (cfg->groups_max < 1 || cfg->groups_max > CFG_GROUPS_MAX_MAX) {
        return SL_EINVAL;
    }
    if (cfg->log_bytes_max < CFG_LOG_BYTES_MIN || cfg->log_bytes_max > CFG_LOG_BYTES_MAX) {
        return SL_EINVAL;
    }
    if (cfg->pending_max < 1 || cfg->pending_max > CFG_PENDING_MAX_MAX) {
        return SL_EINVAL;
    }
    return SL_OK;
}

static int store_load(struct sl_ckpt_store *cs)
{
    int rc = sl_mkdir_p(cs->dir);
    if (rc != SL_OK) {
        return rc;
    }
    cs->dir_fd = open(cs->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (cs->dir_fd < 0) {
        return sl_err_from_errno(errno);
    }
    /* A snapshot being written when the process died: never renamed, so
     * never part of the state. */
    if (unlinkat(cs->dir_fd, SNAP_TMP_NAME, 0) != 0 && errno != ENOENT) {
        return sl_err_from_errno(errno);
    }
    rc = load_snapshot(cs);
    if (rc == SL_OK) {
        rc = load_log(cs);
    }
    if (rc != SL_OK) {
        return rc;
    }
    if (cs->group_count > cs->cfg.groups_max) {
        sl_warn("storage",
                "%s: %" PRIu32 " checkpoint groups on disk, over groups_max %" PRIu32
                "; all kept, new groups refused",
                cs->dir, cs->group_count, cs->cfg.groups_max);
    }
    cs->compact_at = cs->cfg.log_bytes_max;
    if (cs->log_bytes > cs->compact_at) {
        compact(cs);
        if (cs->state != SL_OK) {
            return SL_EIO;
        }
    }
    return SL_OK;
}

int sl_ckpt_open(struct sl_ring *ring, const char *dir, const struct sl_ckpt_config *cfg,
                 struct sl_ckpt_store **out)
{
    SL_ASSERT(ring != NULL && dir != NULL && cfg != NULL && out != NULL);
    if (config_check(cfg) != SL_OK) {
        sl_error("storage",
                 "%s: bad checkpoint config: groups_max [1, %u], log_bytes_max "
                 "[%u, %u], pending_max [1, %u]",
                 dir, CFG_GROUPS_MAX_MAX, CFG_LOG_BYTES_MIN, CFG_LOG_BYTES_MAX,
                 CFG_PENDING_MAX_MAX);
        return SL_EINVAL;
    }
    struct sl_ckpt_store *cs = calloc(1, sizeof(*cs));
    if (cs == NULL) {
        return SL_ENOMEM;
    }
    cs->ring = ring;
    cs->cfg = *cfg;
    cs->dir_fd = -1;
    cs->log_fd = -1;
    cs->state = SL_OK;
    cs->write_op.cb = write_done;
    cs->sync_op.cb = sync_done;
    cs->flush.fn = flush_deferred;
    cs->dir = strdup(dir);
    int rc = cs->dir == NULL ? SL_ENOMEM : store_load(cs);
    if (rc != SL_OK) {
        sl_error("storage", "%s: cannot open checkpoints: %s", dir, sl_strerror(rc));
        sl_ckpt_close(cs);
        return rc;
    }
    sl_info("storage",
            "%s: checkpoints loaded: %" PRIu32 " groups, %" PRIu32 " entries, %" PRIu64 "-byte log",
            dir, cs->group_count, cs->stats.entries, cs->log_bytes);
    *out = cs;
    return SL_OK;
}

void sl_ckpt_close(struct sl_ckpt_store *cs)
{
    if (cs == NULL) {
        return;
    }
    cs->closing = true;
    /* Write what is staged and wait for our I/O; the deferred flush must
     * also have run before the store's memory goes. */
    while (cs->ops > 0 || cs->flush.queued || (cs->stage.count > 0 && cs->state == SL_OK)) {
        issue(cs);
        sl_ring_run(cs->ring, cs->ops > 0 ? 1 : 0, 0);
    }
    SL_ASSERT(cs->fly.count == 0 && cs->stage.count == 0);
    for (uint32_t i = 0; i < cs->group_count; i++) {
        free(cs->groups[i]->ents);
        free(cs->groups[i]);
    }
    free(cs->groups);
    free(cs->stage.p);
    free(cs->stage.buf);
    free(cs->fly.p);
    free(cs->fly.buf);
    if (cs->log_fd >= 0) {
        close(cs->log_fd);
    }
    if (cs->dir_fd >= 0) {
        close(cs->dir_fd);
    }
    free(cs->dir);
    free(cs);
}
