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
 * The log, snapshot files and write path are storage/statelog.c's (group
 * commit: one write + one fdatasync in flight; compaction; replay with
 * torn-tail truncation). This file keeps the record encoding, the table and
 * the snapshot contents. A commit encodes its record into the staging batch;
 * once the batch is durable the `durable` hook decodes its records and makes
 * their values visible to get/foreach (the entries exist since the commit),
 * and only then do the callbacks run in commit order.
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
#include "common/bytes.h"
#include "common/error.h"
#include "common/log.h"
#include "common/ring.h"
#include "storage/statelog.h"

#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define LOG_NAME      "checkpoints.log"
#define SNAP_NAME     "checkpoints.snap"
#define SNAP_TMP_NAME "checkpoints.snap.tmp"

#define REC_HEAD SL_STATELOG_REC_HEAD /* length + check */
#define REC_TAIL 20u                  /* shard u32 + seq u64 + updated_ms u64 */
#define REC_MIN  (REC_HEAD + 1u + REC_TAIL)
#define REC_MAX  (REC_HEAD + SL_CKPT_GROUP_NAME_MAX + REC_TAIL)
_Static_assert(REC_MIN == 29 && REC_MAX == 156, "record bounds are part of the on-disk format");

#define SNAP_MAGIC   0x4B434C53u /* "SLCK" */
#define SNAP_VERSION 1u
#define SNAP_HEAD    24u /* magic, version, entry_count, body_len */
#define SNAP_TRAILER 8u
/* The largest snapshot: every group with SL_CKPT_SHARDS_MAX full records is
 * far beyond this; a bigger file is treated as damage, not read. */
#define SNAP_BYTES_MAX (1ull << 34)

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

struct rec {
    const char *name; /* points into the record: not NUL-terminated */
    uint32_t name_len;
    uint32_t shard;
    uint64_t seq;
    uint64_t updated_ms;
};

struct sl_ckpt_store {
    struct sl_statelog log; /* files, write path, compaction */
    struct sl_ckpt_config cfg;
    struct group **groups; /* sorted by name (strcmp) */
    uint32_t group_count;
    uint32_t group_cap;
    struct sl_ckpt_stats stats; /* groups, entries, commits */
};

/* ------------------------------------------------------------------ */
/* encoding                                                            */

/* check32 over the length field and everything after the check field. */
static uint32_t rec_check(const uint8_t *r, uint32_t len)
{
    SL_ASSERT(len >= REC_MIN && len <= REC_MAX);
    return sl_statelog_rec_check(r, len);
}

/* Decodes and verifies one record of `len` bytes (len read from its first 4
 * bytes by the caller). Returns SL_ECORRUPT on any mismatch. */
static int rec_decode(const uint8_t *r, uint32_t len, struct rec *out)
{
    if (len < REC_MIN || len > REC_MAX || sl_get_u32(r) != len) {
        return SL_ECORRUPT;
    }
    if (sl_get_u32(r + 4) != rec_check(r, len)) {
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
    out->shard = sl_get_u32(t);
    out->seq = sl_get_u64(t + 4);
    out->updated_ms = sl_get_u64(t + 12);
    return SL_OK;
}

/* Encodes one record into `out` (REC_MAX bytes available); returns its length. */
static uint32_t rec_encode(uint8_t *out, const char *name, uint32_t name_len, uint32_t shard,
                           uint64_t seq, uint64_t updated_ms)
{
    SL_ASSERT(name_len >= 1 && name_len <= SL_CKPT_GROUP_NAME_MAX);
    uint32_t len = REC_HEAD + name_len + REC_TAIL;
    sl_put_u32(out, len);
    memcpy(out + REC_HEAD, name, name_len);
    uint8_t *t = out + REC_HEAD + name_len;
    sl_put_u32(t, shard);
    sl_put_u64(t + 4, seq);
    sl_put_u64(t + 12, updated_ms);
    sl_put_u32(out + 4, rec_check(out, len));
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
    sl_put_u32(buf, SNAP_MAGIC);
    sl_put_u32(buf + 4, SNAP_VERSION);
    sl_put_u64(buf + 8, count);
    sl_put_u64(buf + 16, body);
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
    sl_put_u64(buf + off, sl_checksum64(buf, off));
    *out = buf;
    *out_len = total;
    return SL_OK;
}

/* Synchronous compaction (the statelog's hook): the snapshot holds only the
 * durable state, so the staged commits still go to the (cut) log. */
static bool compact(struct sl_statelog *sl)
{
    struct sl_ckpt_store *cs = sl_container_of(sl, struct sl_ckpt_store, log);
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = snap_build(cs, &buf, &len);
    (void)sl_statelog_compact(sl, rc, buf, len, NULL, 0);
    free(buf);
    return false;
}

static int snap_parse(struct sl_statelog *sl, const uint8_t *buf, size_t size, const char **why)
{
    struct sl_ckpt_store *cs = sl_container_of(sl, struct sl_ckpt_store, log);
    if (size < SNAP_HEAD + SNAP_TRAILER || sl_get_u32(buf) != SNAP_MAGIC) {
        *why = "bad magic or too short";
        return SL_ECORRUPT;
    }
    if (sl_get_u32(buf + 4) != SNAP_VERSION) {
        *why = "unknown version";
        return SL_ECORRUPT;
    }
    uint64_t count = sl_get_u64(buf + 8);
    uint64_t body = sl_get_u64(buf + 16);
    if (body != size - SNAP_HEAD - SNAP_TRAILER) {
        *why = "body length does not match the file size";
        return SL_ECORRUPT;
    }
    if (sl_get_u64(buf + size - SNAP_TRAILER) != sl_checksum64(buf, size - SNAP_TRAILER)) {
        *why = "checksum mismatch";
        return SL_ECORRUPT;
    }
    size_t off = SNAP_HEAD, end = SNAP_HEAD + (size_t)body;
    uint64_t n = 0;
    char prev[SL_CKPT_GROUP_NAME_MAX + 1] = "";
    uint32_t prev_shard = 0;
    while (off < end) {
        struct rec r;
        uint32_t len = end - off >= 4 ? sl_get_u32(buf + off) : 0;
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

/* ------------------------------------------------------------------ */
/* log replay and durability                                           */

/* The statelog's replay hook: one record of the log at open. */
static int replay_rec(struct sl_statelog *sl, const uint8_t *rec, uint32_t len, bool *valid)
{
    struct sl_ckpt_store *cs = sl_container_of(sl, struct sl_ckpt_store, log);
    struct rec r;
    *valid = rec_decode(rec, len, &r) == SL_OK;
    return *valid ? load_set(cs, &r) : SL_OK;
}

/* The statelog's durable hook: the batch's records are on disk; make their
 * values visible (in file order: the last commit of a key wins) before any
 * callback runs. Every entry exists since its commit, so nothing can fail. */
static void durable_recs(struct sl_statelog *sl, const uint8_t *recs, uint32_t len)
{
    struct sl_ckpt_store *cs = sl_container_of(sl, struct sl_ckpt_store, log);
    uint32_t off = 0;
    while (off < len) {
        SL_ASSERT(len - off >= REC_MIN);
        uint32_t n = sl_get_u32(recs + off);
        struct rec r;
        int rc = rec_decode(recs + off, n, &r);
        SL_ASSERT(rc == SL_OK);
        uint32_t entries = cs->stats.entries;
        rc = load_set(cs, &r);
        SL_ASSERT(rc == SL_OK && cs->stats.entries == entries);
        off += n;
    }
    SL_ASSERT(off == len);
}

/* ------------------------------------------------------------------ */
/* write path                                                          */

int sl_ckpt_commit(struct sl_ckpt_store *cs, const char *group, uint32_t shard, uint64_t seq,
                   uint64_t now_ms, sl_ckpt_cb cb, void *ctx)
{
    SL_ASSERT(cs != NULL);
    size_t name_len = group != NULL ? strnlen(group, SL_CKPT_GROUP_NAME_MAX + 1) : 0;
    if (name_len == 0 || name_len > SL_CKPT_GROUP_NAME_MAX) {
        return SL_EINVAL;
    }
    int rc = sl_statelog_admit(&cs->log);
    if (rc != SL_OK) {
        return rc;
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
    /* Reserve everything that can fail before changing anything: the files
     * (a parked store's are reopened) first. */
    rc = sl_statelog_touch(&cs->log);
    if (rc == SL_OK) {
        rc = sl_statelog_reserve(&cs->log, REC_MAX);
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
    uint32_t len =
        rec_encode(sl_statelog_tail(&cs->log), group, (uint32_t)name_len, shard, seq, now_ms);
    sl_statelog_append(&cs->log, len, cb, ctx);
    cs->stats.commits++;
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

bool sl_ckpt_sync(struct sl_ckpt_store *cs, sl_ckpt_cb cb, void *ctx)
{
    return sl_statelog_sync(&cs->log, cb, ctx);
}

void sl_ckpt_stats(const struct sl_ckpt_store *cs, struct sl_ckpt_stats *st)
{
    struct sl_statelog_stats ls;
    sl_statelog_stats(&cs->log, &ls);
    *st = cs->stats;
    st->groups = cs->group_count;
    st->pending = ls.pending;
    st->writes = ls.writes;
    st->fsyncs = ls.fsyncs;
    st->records = ls.records;
    st->compactions = ls.compactions;
    st->log_bytes = ls.log_bytes;
    st->recovery_truncated_bytes = ls.truncated_bytes;
    st->state = ls.state;
    st->parked = ls.parked;
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
    uint64_t size = 0;
    int rc = sl_statelog_load_snap(&cs->log, snap_parse);
    if (rc == SL_OK) {
        rc = sl_statelog_open_log(&cs->log, NULL, 0, &size);
    }
    if (rc == SL_OK) {
        rc = sl_statelog_replay(&cs->log, 0, size);
    }
    if (rc != SL_OK) {
        return rc;
    }
    if (cs->group_count > cs->cfg.groups_max) {
        sl_warn("storage",
                "%s: %" PRIu32 " checkpoint groups on disk, over groups_max %" PRIu32
                "; all kept, new groups refused",
                cs->log.dir, cs->group_count, cs->cfg.groups_max);
    }
    return sl_statelog_start(&cs->log);
}

bool sl_ckpt_present(const char *dir)
{
    return sl_statelog_present(dir, LOG_NAME, SNAP_NAME, NULL, 0);
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
    cs->cfg = *cfg;
    const struct sl_statelog_config lc = {
        .what = "checkpoints",
        .log_name = LOG_NAME,
        .snap_name = SNAP_NAME,
        .snap_tmp_name = SNAP_TMP_NAME,
        .rec_min = REC_MIN,
        .rec_max = REC_MAX,
        .snap_bytes_max = SNAP_BYTES_MAX,
        .log_bytes_max = cfg->log_bytes_max,
        .pending_max = cfg->pending_max,
        .sync_interval_ms = cfg->sync_interval_ms,
        .cache = cfg->cache,
        .replay = replay_rec,
        .durable = durable_recs,
        .compact = compact,
    };
    int rc = sl_statelog_init(&cs->log, ring, dir, &lc);
    if (rc == SL_OK) {
        rc = store_load(cs);
    }
    if (rc != SL_OK) {
        sl_error("storage", "%s: cannot open checkpoints: %s", dir, sl_strerror(rc));
        sl_ckpt_close(cs);
        return rc;
    }
    sl_info("storage",
            "%s: checkpoints loaded: %" PRIu32 " groups, %" PRIu32 " entries, %" PRIu64 "-byte log",
            dir, cs->group_count, cs->stats.entries, cs->log.log_bytes);
    *out = cs;
    return SL_OK;
}

void sl_ckpt_close(struct sl_ckpt_store *cs)
{
    if (cs == NULL) {
        return;
    }
    /* Drains the write path first: its callbacks and a compaction still
     * read the table. */
    sl_statelog_fini(&cs->log);
    for (uint32_t i = 0; i < cs->group_count; i++) {
        free(cs->groups[i]->ents);
        free(cs->groups[i]);
    }
    free(cs->groups);
    free(cs);
}
