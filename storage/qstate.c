/* qstate.c - durable state of a stream's queue groups.
 *
 * State, in memory: a name-sorted array of groups (at most groups_max new
 * ones); each group holds its definition, two counters and an array of
 * shard_count shards. A shard holds:
 *   floor    every seq < floor is acked;
 *   ranges   the acked ranges above the floor: sorted, half-open [first, end),
 *            disjoint and never touching (r[i].end < r[i+1].first), and
 *            floor < r[0].first (a range reaching the floor is absorbed);
 *   counts   (seq, count) sorted by seq, count >= 1, for seqs >= floor that
 *            are in no range.
 * Memory is O(groups + ranges + counts), never O(backlog). Ranges and counts
 * are sorted arrays grown by doubling (no allocation per ack beyond that):
 * lookups are O(log n); an ack or count insertion is O(log n) plus a memmove
 * of at most n entries (n <= ranges_max, 1 MiB at the 65536 default); the
 * common in-order ack at the floor touches no range and moves nothing.
 *
 * Every mutation is a deterministic function of the state, so the state is
 * the result of applying the snapshot's records, then the log's, in order.
 * A mutation is validated, applied to memory at once (all or nothing), and
 * its record is appended to the staging batch.
 *
 * Files in the directory (docs/FORMAT.md section 6; all little-endian):
 *   qstate.log   a 24-byte header: u32 magic "SLQL" (0x4C514C53), u32
 *                version (1), u64 gen, u32 check32 of bytes [0, 16), u32 0;
 *                then records back to back:
 *       u32 length      whole record, header included: REC_MIN .. REC_MAX
 *       u32 check       check32 of bytes [0, 4) followed by bytes [8, length)
 *       u8  type        1 create, 2 delete, 3 ack, 4 count, 5 counters, 6 grow
 *       u8  name_len    1 .. 128, then the group name (no NUL)
 *       body by type:
 *         create:   u32 visibility_timeout_ms, u32 max_deliveries,
 *                   u32 max_inflight, u8 flags (bit 0 ordered, bit 1 has
 *                   filter, bit 2 the filter reads the body, bit 3 has an
 *                   end time), u8 dls_len (0 .. 128), dead_letter_stream,
 *                   u16 filter_len (0 .. 4096), filter, u32 start_kind,
 *                   u64 start_seq, u64 start_time_ms, u64 created_ms,
 *                   [u64 end_time_ms: only with flag bit 3, so records
 *                   of groups without one read as before it existed],
 *                   u32 shard_count (1 .. 1024), u64 floor[shard_count]
 *         delete:   nothing
 *         ack:      u32 shard, u64 first, u64 end
 *         count:    u32 shard, u64 seq, u32 count
 *         counters: u64 dead_lettered, u64 filtered (added)
 *         grow:     u32 shard_count (more than the group's; the new shards
 *                   start with floor 0: its stream was resharded, #16)
 *   qstate.snap  the whole state at a compaction:
 *       u32 magic "SLQS" (0x53514C53), u32 version (1), u64 log_gen (the gen
 *       of the log that continues it), u64 record_count, u64 body_len, body
 *       (records in the log format that rebuild the state from nothing: per
 *       group in name order a create with the current floors, an ack per
 *       range, a count per count, counters if not zero), u64 XXH3-64 of every
 *       byte before it.
 *   qstate.snap.tmp  a snapshot being written; removed at open.
 *
 * Why a log generation: records are not idempotent (counters add; a count
 * may be set back; a create of an existing group fails), so a log must never
 * be replayed over a snapshot that already holds it. A log whose gen is below
 * the snapshot's log_gen is stale (a crash between the snapshot's rename and
 * the log's cut) and is discarded; above it, the snapshot it follows is
 * missing: SL_ECORRUPT.
 *
 * The log, snapshot files and write path are storage/statelog.c's (group
 * commit: one write + one fdatasync in flight, callbacks in call order once
 * durable; compaction; replay with torn-tail truncation). This file keeps
 * the record encoding, the state, the log header and the snapshot contents.
 *
 * Compaction is SYNCHRONOUS (it blocks the loop thread; once per
 * log_bytes_max of records), when the log has passed log_bytes_max and no
 * batch is in flight (right after an fdatasync completed, and at open). The
 * snapshot is the memory state, which includes the staged mutations:
 *   write qstate.snap.tmp (log_gen = gen + 1) -> fsync it -> rename over
 *   qstate.snap -> fsync the directory -> truncate the log to 0 -> fsync
 *   -> write the header with gen + 1 -> fsync.
 * The staged mutations are then durable (in the snapshot): their records are
 * dropped and their callbacks run. A crash before the rename leaves the old
 * snapshot and the log; after it, the new snapshot and a stale or empty log
 * (the header is written only once the cut is durable, so old records never
 * follow a new header). A failure before the rename is logged and the log
 * keeps growing (retried after another log_bytes_max); after it, fatal.
 *
 * Recovery (open): load the snapshot (checksum and structure verified; a bad
 * snapshot fails the open with SL_ECORRUPT), check the log's header, replay
 * the log up to the first invalid or incomplete record, truncate it there
 * (logging the dropped byte count) and fsync it. A record that fails its
 * check is dropped with everything after it (a torn group-commit write can
 * persist its pages in any order), so the state goes back to an earlier one,
 * never to a wrong one. A damaged or torn header drops the whole log. A valid
 * record that the state refuses (a bug, or a foreign file) fails the open
 * with SL_ECORRUPT.
 *
 * Errors: a failed write or fdatasync is not retried: the store fails every
 * mutation not yet durable and refuses new ones (SL_EFATAL) until reopened;
 * memory keeps the refused mutations (reopen to get what is durable).
 *
 * Threading: everything runs on the thread of the store's ring.
 */
#include "storage/qstate.h"

#include "common/assert.h"
#include "common/checksum.h"
#include "common/bytes.h"
#include "common/error.h"
#include "common/fileio.h"
#include "common/log.h"
#include "common/ring.h"
#include "storage/statelog.h"

#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define LOG_NAME      "qstate.log"
#define SNAP_NAME     "qstate.snap"
#define SNAP_TMP_NAME "qstate.snap.tmp"

#define LOG_MAGIC   0x4C514C53u /* "SLQL" */
#define LOG_VERSION 1u
#define LOG_HEAD    24u

enum rec_type {
    REC_CREATE = 1,
    REC_DELETE = 2,
    REC_ACK = 3,
    REC_COUNT = 4,
    REC_COUNTERS = 5,
    REC_GROW = 6,
};

#define REC_HEAD        SL_STATELOG_REC_HEAD                 /* length + check */
#define REC_NAMED(n)    (REC_HEAD + 2u + (n))                /* + type, name_len, name */
#define REC_CREATE_BODY (12u + 1u + 1u + 2u + 4u + 24u + 4u) /* fixed part */
#define REC_END_TIME    8u                                   /* an optional end time (flag bit 3) */
#define REC_ACK_BODY    20u
#define REC_COUNT_BODY  16u
#define REC_CTRS_BODY   16u
#define REC_GROW_BODY   4u
#define REC_MIN         REC_NAMED(1u) /* a delete of a 1-byte name */
#define REC_MAX                                                                                    \
    (REC_NAMED(SL_QSTATE_NAME_MAX) + REC_CREATE_BODY + REC_END_TIME + SL_QSTATE_NAME_MAX +         \
     SL_QSTATE_FILTER_MAX + 8u * SL_QSTATE_SHARDS_MAX)
/* 12602 before the end time: a larger bound still reads every older log */
_Static_assert(REC_MIN == 11 && REC_MAX == 12610, "record bounds are part of the on-disk format");
_Static_assert(SL_QSTATE_FILTER_MAX < 0xFFFFu, "filter_len is a u16");
_Static_assert(SL_QSTATE_NAME_MAX <= 0xFFu, "name lengths are a u8");

#define SNAP_MAGIC   0x53514C53u /* "SLQS" */
#define SNAP_VERSION 1u
#define SNAP_HEAD    32u /* magic, version, log_gen, record_count, body_len */
#define SNAP_TRAILER 8u
/* Far beyond groups_max x shards x ranges_max records of any real store; a
 * bigger file is treated as damage, not read. */
#define SNAP_BYTES_MAX (1ull << 36)

#define CFG_GROUPS_MAX_MAX  (1u << 20)
#define CFG_LOG_BYTES_MIN   (4u << 10)
#define CFG_LOG_BYTES_MAX   (1u << 30)
#define CFG_PENDING_MAX_MAX (1u << 24)
#define CFG_RANGES_MAX_MAX  (1u << 24)

struct range {
    uint64_t first, end;
};

struct cnt {
    uint64_t seq;
    uint32_t count;
};

struct shard {
    uint64_t floor;
    struct range *r;
    uint32_t nr, rcap;
    struct cnt *c;
    uint32_t nc, ccap;
};

struct group {
    struct sl_qgroup_def def; /* def.filter owned */
    uint32_t shard_count;
    struct shard *shards;
    uint64_t dead_lettered, filtered;
};

/* One mutation, from a call or decoded from a record. Strings are borrowed
 * and NUL-terminated. */
struct op {
    uint8_t type;
    const char *group;
    uint32_t shard;
    uint64_t a, b;  /* ack: first, end; count: seq; counters: dead, filtered */
    uint32_t count; /* count; create: shard_count */
    const struct sl_qgroup_def *def;
    const uint64_t *floors;
};

/* Room to decode one record (create's strings and floors). */
struct scratch {
    char name[SL_QSTATE_NAME_MAX + 1];
    struct sl_qgroup_def def;
    char filter[SL_QSTATE_FILTER_MAX + 1];
    uint64_t floors[SL_QSTATE_SHARDS_MAX];
};

struct sl_qstate {
    struct sl_statelog log; /* files, write path, compaction */
    struct sl_qstate_config cfg;
    uint64_t gen;          /* the log's generation (at open: the snapshot's log_gen) */
    struct group **groups; /* sorted by name (strcmp) */
    uint32_t group_count;
    uint32_t group_cap;
    struct scratch *scratch;
    struct sl_qstate_stats stats; /* groups, mutations, ranges, counts */
};

/* ------------------------------------------------------------------ */
/* encoding                                                            */

static void put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

/* check32 over the length field and everything after the check field. */
static uint32_t rec_check(const uint8_t *r, uint32_t len)
{
    SL_ASSERT(len >= REC_MIN && len <= REC_MAX);
    return sl_statelog_rec_check(r, len);
}

static uint32_t filter_len(const struct sl_qgroup_def *def)
{
    return def->filter != NULL ? (uint32_t)strlen(def->filter) : 0;
}

static uint32_t rec_size(const struct op *op)
{
    uint32_t n = REC_NAMED((uint32_t)strlen(op->group));
    switch (op->type) {
    case REC_CREATE:
        return n + REC_CREATE_BODY + (uint32_t)strlen(op->def->dead_letter_stream) +
               filter_len(op->def) + 8u * op->count + (op->def->end_time_ms != 0 ? 8u : 0u);
    case REC_DELETE:
        return n;
    case REC_ACK:
        return n + REC_ACK_BODY;
    case REC_COUNT:
        return n + REC_COUNT_BODY;
    case REC_GROW:
        return n + REC_GROW_BODY;
    default:
        SL_ASSERT(op->type == REC_COUNTERS);
        return n + REC_CTRS_BODY;
    }
}

static uint8_t *put_str8(uint8_t *p, const char *s)
{
    size_t n = strlen(s);
    SL_ASSERT(n <= SL_QSTATE_NAME_MAX);
    *p++ = (uint8_t)n;
    memcpy(p, s, n);
    return p + n;
}

static uint8_t *encode_create(uint8_t *p, const struct op *op)
{
    const struct sl_qgroup_def *d = op->def;
    sl_put_u32(p, d->visibility_timeout_ms);
    sl_put_u32(p + 4, d->max_deliveries);
    sl_put_u32(p + 8, d->max_inflight);
    p[12] = (uint8_t)((d->ordered ? 1u : 0u) | (d->filter != NULL ? 2u : 0u) |
                      (d->filter_body ? 4u : 0u) | (d->end_time_ms != 0 ? 8u : 0u));
    p = put_str8(p + 13, d->dead_letter_stream);
    uint32_t fl = filter_len(d);
    put_u16(p, (uint16_t)fl);
    if (fl > 0) {
        memcpy(p + 2, d->filter, fl);
    }
    p += 2 + fl;
    sl_put_u32(p, d->start_kind);
    sl_put_u64(p + 4, d->start_seq);
    sl_put_u64(p + 12, d->start_time_ms);
    sl_put_u64(p + 20, d->created_ms);
    p += 28;
    if (d->end_time_ms != 0) {
        sl_put_u64(p, d->end_time_ms);
        p += 8;
    }
    sl_put_u32(p, op->count);
    p += 4;
    for (uint32_t i = 0; i < op->count; i++, p += 8) {
        sl_put_u64(p, op->floors[i]);
    }
    return p;
}

/* Encodes op's record into `out` (rec_size(op) bytes available). */
static uint32_t rec_encode(uint8_t *out, const struct op *op)
{
    uint32_t len = rec_size(op);
    SL_ASSERT(len >= REC_MIN && len <= REC_MAX);
    sl_put_u32(out, len);
    out[REC_HEAD] = op->type;
    uint8_t *p = put_str8(out + REC_HEAD + 1, op->group);
    switch (op->type) {
    case REC_CREATE:
        p = encode_create(p, op);
        break;
    case REC_DELETE:
        break;
    case REC_ACK:
        sl_put_u32(p, op->shard);
        sl_put_u64(p + 4, op->a);
        sl_put_u64(p + 12, op->b);
        p += REC_ACK_BODY;
        break;
    case REC_COUNT:
        sl_put_u32(p, op->shard);
        sl_put_u64(p + 4, op->a);
        sl_put_u32(p + 12, op->count);
        p += REC_COUNT_BODY;
        break;
    case REC_GROW:
        sl_put_u32(p, op->count);
        p += REC_GROW_BODY;
        break;
    default:
        sl_put_u64(p, op->a);
        sl_put_u64(p + 8, op->b);
        p += REC_CTRS_BODY;
        break;
    }
    SL_ASSERT((uint32_t)(p - out) == len);
    sl_put_u32(out + 4, rec_check(out, len));
    return len;
}

/* Fields of one record's bytes, through a bounds-checked sl_reader. */
static uint8_t rd_u8(struct sl_reader *d)
{
    const uint8_t *p = sl_reader_take(d, 1);
    return p != NULL ? p[0] : 0;
}

static uint32_t rd_u16(struct sl_reader *d)
{
    const uint8_t *p = sl_reader_take(d, 2);
    return p != NULL ? (uint32_t)p[0] | ((uint32_t)p[1] << 8) : 0;
}

static uint32_t rd_u32(struct sl_reader *d)
{
    const uint8_t *p = sl_reader_take(d, 4);
    return p != NULL ? sl_get_u32(p) : 0;
}

static uint64_t rd_u64(struct sl_reader *d)
{
    const uint8_t *p = sl_reader_take(d, 8);
    return p != NULL ? sl_get_u64(p) : 0;
}

/* Copies `n` bytes into `dst` (NUL-terminated) if they hold no NUL. */
static void rd_str(struct sl_reader *d, uint32_t n, char *dst)
{
    const uint8_t *p = sl_reader_take(d, n);
    if (p == NULL || memchr(p, '\0', n) != NULL) {
        d->bad = true;
        return;
    }
    memcpy(dst, p, n);
    dst[n] = '\0';
}

static void decode_create(struct sl_reader *d, struct scratch *sc, struct op *op)
{
    struct sl_qgroup_def *def = &sc->def;
    memset(def, 0, sizeof(*def));
    memcpy(def->name, sc->name, sizeof(def->name));
    def->visibility_timeout_ms = rd_u32(d);
    def->max_deliveries = rd_u32(d);
    def->max_inflight = rd_u32(d);
    uint8_t flags = rd_u8(d);
    uint32_t dls = rd_u8(d);
    if (dls > SL_QSTATE_NAME_MAX || (flags & ~15u) != 0) {
        d->bad = true;
        return;
    }
    def->ordered = (flags & 1u) != 0;
    def->filter_body = (flags & 4u) != 0;
    rd_str(d, dls, def->dead_letter_stream);
    uint32_t fl = rd_u16(d);
    if (fl > SL_QSTATE_FILTER_MAX || ((flags & 2u) == 0 && fl > 0)) {
        d->bad = true;
        return;
    }
    rd_str(d, fl, sc->filter);
    def->filter = (flags & 2u) != 0 ? sc->filter : NULL;
    def->start_kind = rd_u32(d);
    def->start_seq = rd_u64(d);
    def->start_time_ms = rd_u64(d);
    def->created_ms = rd_u64(d);
    def->end_time_ms = (flags & 8u) != 0 ? rd_u64(d) : 0;
    if ((flags & 8u) != 0 && def->end_time_ms == 0) {
        d->bad = true; /* the flag says there is one: 0 is not an end time */
        return;
    }
    op->count = rd_u32(d);
    if (op->count == 0 || op->count > SL_QSTATE_SHARDS_MAX) {
        d->bad = true;
        return;
    }
    for (uint32_t i = 0; i < op->count; i++) {
        sc->floors[i] = rd_u64(d);
    }
    op->def = def;
    op->floors = sc->floors;
}

/* Decodes and verifies one record of `len` bytes (len read from its first 4
 * bytes by the caller). Strings land in `sc`. SL_ECORRUPT on any mismatch. */
static int rec_decode(const uint8_t *r, uint32_t len, struct scratch *sc, struct op *out)
{
    if (len < REC_MIN || len > REC_MAX || sl_get_u32(r) != len ||
        sl_get_u32(r + 4) != rec_check(r, len)) {
        return SL_ECORRUPT;
    }
    struct sl_reader d = {.p = r + REC_HEAD, .left = len - REC_HEAD, .bad = false};
    memset(out, 0, sizeof(*out));
    out->type = rd_u8(&d);
    uint32_t nl = rd_u8(&d);
    if (nl == 0 || nl > SL_QSTATE_NAME_MAX) {
        return SL_ECORRUPT;
    }
    rd_str(&d, nl, sc->name);
    out->group = sc->name;
    switch (out->type) {
    case REC_CREATE:
        decode_create(&d, sc, out);
        break;
    case REC_DELETE:
        break;
    case REC_ACK:
        out->shard = rd_u32(&d);
        out->a = rd_u64(&d);
        out->b = rd_u64(&d);
        break;
    case REC_COUNT:
        out->shard = rd_u32(&d);
        out->a = rd_u64(&d);
        out->count = rd_u32(&d);
        break;
    case REC_COUNTERS:
        out->a = rd_u64(&d);
        out->b = rd_u64(&d);
        break;
    case REC_GROW:
        out->count = rd_u32(&d);
        break;
    default:
        return SL_ECORRUPT;
    }
    return d.bad || d.left != 0 ? SL_ECORRUPT : SL_OK;
}

/* ------------------------------------------------------------------ */
/* the in-memory state                                                 */

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

/* Binary search by name; returns the group, or NULL with *at = insert index. */
static struct group *group_find(const struct sl_qstate *qs, const char *name, uint32_t *at)
{
    uint32_t lo = 0, hi = qs->group_count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        int c = strcmp(qs->groups[mid]->def.name, name);
        if (c == 0) {
            *at = mid;
            return qs->groups[mid];
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

static const struct shard *shard_get(const struct sl_qstate *qs, const char *group, uint32_t shard)
{
    uint32_t at = 0;
    const struct group *g = group != NULL ? group_find(qs, group, &at) : NULL;
    return g != NULL && shard < g->shard_count ? &g->shards[shard] : NULL;
}

/* The first range whose end >= seq (ends are sorted). */
static uint32_t range_lb_end(const struct shard *s, uint64_t seq)
{
    uint32_t lo = 0, hi = s->nr;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (s->r[mid].end < seq) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

/* The first range whose first > seq. */
static uint32_t range_ub_first(const struct shard *s, uint64_t seq)
{
    uint32_t lo = 0, hi = s->nr;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (s->r[mid].first <= seq) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

/* The first count whose seq >= seq. */
static uint32_t count_lb(const struct shard *s, uint64_t seq)
{
    uint32_t lo = 0, hi = s->nc;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (s->c[mid].seq < seq) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

static bool shard_acked(const struct shard *s, uint64_t seq)
{
    if (seq < s->floor) {
        return true;
    }
    /* The last range with first <= seq contains it iff its end > seq. */
    uint32_t i = range_ub_first(s, seq);
    return i > 0 && s->r[i - 1].end > seq;
}

static void shard_free(struct sl_qstate *qs, struct shard *s)
{
    qs->stats.ranges -= s->nr;
    qs->stats.counts -= s->nc;
    free(s->r);
    free(s->c);
}

static void group_free(struct sl_qstate *qs, struct group *g)
{
    if (g == NULL) {
        return;
    }
    for (uint32_t i = 0; g->shards != NULL && i < g->shard_count; i++) {
        shard_free(qs, &g->shards[i]);
    }
    free(g->shards);
    free(g->def.filter);
    free(g);
}

/* Marks [first, end) acked (see the file comment for the invariants).
 * limit: 0 = none (replay). All or nothing: SL_ELIMIT/SL_ENOMEM change
 * nothing. */
static int shard_ack(struct sl_qstate *qs, struct shard *s, uint64_t first, uint64_t end,
                     uint32_t limit)
{
    SL_ASSERT(first < end);
    if (end <= s->floor) {
        return SL_OK;
    }
    if (first < s->floor) {
        first = s->floor;
    }
    /* Ranges [lo, hi) overlap or touch [first, end): they merge into one. */
    uint32_t lo = range_lb_end(s, first), hi = range_ub_first(s, end);
    uint64_t nf = first, ne = end;
    if (lo < hi) {
        nf = s->r[lo].first < first ? s->r[lo].first : first;
        ne = s->r[hi - 1].end > end ? s->r[hi - 1].end : end;
    }
    bool to_floor = nf == s->floor;
    if (!to_floor && lo == hi) {
        if (limit != 0 && s->nr >= limit) {
            return SL_ELIMIT;
        }
        if (grow((void **)&s->r, &s->rcap, s->nr + 1, sizeof(*s->r), 8) != SL_OK) {
            return SL_ENOMEM;
        }
    }
    /* Counts inside the merged span go (those in old ranges are gone already). */
    uint32_t c0 = count_lb(s, nf), c1 = count_lb(s, ne);
    if (c1 > c0) {
        memmove(&s->c[c0], &s->c[c1], (s->nc - c1) * sizeof(*s->c));
        s->nc -= c1 - c0;
        qs->stats.counts -= c1 - c0;
    }
    uint32_t keep = to_floor ? 0 : 1; /* ranges that replace [lo, hi) */
    uint32_t removed = hi - lo;
    if (keep != removed) {
        memmove(&s->r[lo + keep], &s->r[hi], (s->nr - hi) * sizeof(*s->r));
        s->nr = s->nr + keep - removed;
    }
    qs->stats.ranges = qs->stats.ranges + keep - removed;
    if (to_floor) {
        SL_ASSERT(lo == 0);
        s->floor = ne;
    } else {
        s->r[lo] = (struct range){.first = nf, .end = ne};
    }
    SL_ASSERT(s->nr == 0 || s->floor < s->r[0].first);
    SL_ASSERT(s->nc == 0 || s->c[0].seq >= s->floor);
    return SL_OK;
}

/* Sets a delivery count (0 removes it); ignored for an acked seq. */
static int shard_set_count(struct sl_qstate *qs, struct shard *s, uint64_t seq, uint32_t count,
                           uint32_t limit)
{
    if (shard_acked(s, seq)) {
        return SL_OK;
    }
    uint32_t i = count_lb(s, seq);
    bool found = i < s->nc && s->c[i].seq == seq;
    if (found && count > 0) {
        s->c[i].count = count;
    } else if (found) {
        memmove(&s->c[i], &s->c[i + 1], (s->nc - i - 1) * sizeof(*s->c));
        s->nc--;
        qs->stats.counts--;
    } else if (count > 0) {
        if (limit != 0 && s->nc >= limit) {
            return SL_ELIMIT;
        }
        if (grow((void **)&s->c, &s->ccap, s->nc + 1, sizeof(*s->c), 8) != SL_OK) {
            return SL_ENOMEM;
        }
        memmove(&s->c[i + 1], &s->c[i], (s->nc - i) * sizeof(*s->c));
        s->c[i] = (struct cnt){.seq = seq, .count = count};
        s->nc++;
        qs->stats.counts++;
    }
    return SL_OK;
}

static uint64_t add_sat(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static int group_create(struct sl_qstate *qs, const struct op *op, uint32_t at)
{
    int rc =
        grow((void **)&qs->groups, &qs->group_cap, qs->group_count + 1, sizeof(*qs->groups), 16);
    if (rc != SL_OK) {
        return rc;
    }
    struct group *g = calloc(1, sizeof(*g));
    if (g == NULL) {
        return SL_ENOMEM;
    }
    g->def = *op->def;
    g->def.filter = NULL;
    g->shard_count = op->count;
    g->shards = calloc(op->count, sizeof(*g->shards));
    if (g->shards == NULL ||
        (op->def->filter != NULL && (g->def.filter = strdup(op->def->filter)) == NULL)) {
        group_free(qs, g);
        return SL_ENOMEM;
    }
    for (uint32_t i = 0; i < op->count; i++) {
        g->shards[i].floor = op->floors[i];
    }
    memmove(&qs->groups[at + 1], &qs->groups[at], (qs->group_count - at) * sizeof(*qs->groups));
    qs->groups[at] = g;
    qs->group_count++;
    return SL_OK;
}

static bool def_valid(const struct sl_qgroup_def *def)
{
    size_t n = strnlen(def->name, sizeof(def->name));
    size_t dls = strnlen(def->dead_letter_stream, sizeof(def->dead_letter_stream));
    return n >= 1 && n <= SL_QSTATE_NAME_MAX && dls <= SL_QSTATE_NAME_MAX &&
           def->start_kind <= SL_QSTART_AT_TIMESTAMP &&
           (def->filter == NULL ||
            strnlen(def->filter, SL_QSTATE_FILTER_MAX + 1) <= SL_QSTATE_FILTER_MAX);
}

/* Validates op against the state and applies it, all or nothing. live: the
 * configured limits apply (not on replay: state on disk is never refused). */
static int apply(struct sl_qstate *qs, const struct op *op, bool live)
{
    size_t nl = op->group != NULL ? strnlen(op->group, SL_QSTATE_NAME_MAX + 1) : 0;
    if (nl == 0 || nl > SL_QSTATE_NAME_MAX) {
        return SL_EINVAL;
    }
    uint32_t at = 0;
    struct group *g = group_find(qs, op->group, &at);
    if (op->type == REC_CREATE) {
        if (!def_valid(op->def) || strcmp(op->def->name, op->group) != 0 || op->count == 0 ||
            op->count > SL_QSTATE_SHARDS_MAX || op->floors == NULL) {
            return SL_EINVAL;
        }
        if (g != NULL) {
            return SL_EEXIST;
        }
        if (live && qs->group_count >= qs->cfg.groups_max) {
            return SL_ELIMIT;
        }
        return group_create(qs, op, at);
    }
    if (g == NULL) {
        return SL_ENOTFOUND;
    }
    uint32_t limit = live ? qs->cfg.ranges_max : 0;
    switch (op->type) {
    case REC_DELETE:
        memmove(&qs->groups[at], &qs->groups[at + 1],
                (qs->group_count - at - 1) * sizeof(*qs->groups));
        qs->group_count--;
        group_free(qs, g);
        return SL_OK;
    case REC_ACK:
        if (op->shard >= g->shard_count || op->a >= op->b) {
            return SL_EINVAL;
        }
        return shard_ack(qs, &g->shards[op->shard], op->a, op->b, limit);
    case REC_COUNT:
        if (op->shard >= g->shard_count) {
            return SL_EINVAL;
        }
        return shard_set_count(qs, &g->shards[op->shard], op->a, op->count, limit);
    case REC_GROW: {
        if (op->count <= g->shard_count || op->count > SL_QSTATE_SHARDS_MAX) {
            return SL_EINVAL;
        }
        struct shard *sh = realloc(g->shards, op->count * sizeof(*sh));
        if (sh == NULL) {
            return SL_ENOMEM;
        }
        memset(&sh[g->shard_count], 0, (op->count - g->shard_count) * sizeof(*sh));
        g->shards = sh;
        g->shard_count = op->count;
        return SL_OK;
    }
    default:
        SL_ASSERT(op->type == REC_COUNTERS);
        g->dead_lettered = add_sat(g->dead_lettered, op->a);
        g->filtered = add_sat(g->filtered, op->b);
        return SL_OK;
    }
}

/* Applies a record from the disk: a refusal means the files disagree with
 * the state they built, which no torn write explains. */
static int apply_loaded(struct sl_qstate *qs, const struct op *op, const char *what)
{
    int rc = apply(qs, op, false);
    if (rc != SL_OK && rc != SL_ENOMEM) {
        sl_error("storage",
                 "%s/%s: a valid record (type %u, group \"%s\") is refused by the state (%s); "
                 "refusing to open the queue state",
                 qs->log.dir, what, (unsigned)op->type, op->group, sl_errname(rc));
        return SL_ECORRUPT;
    }
    return rc;
}

/* ------------------------------------------------------------------ */
/* snapshot                                                            */

/* Walks the state as the records that rebuild it; writes them at `out`
 * unless NULL. Returns the bytes, *records the record count. */
static uint64_t snap_body(struct sl_qstate *qs, uint8_t *out, uint64_t *records)
{
    uint64_t len = 0, n = 0;
    uint64_t *floors = qs->scratch->floors;
    for (uint32_t i = 0; i < qs->group_count; i++) {
        const struct group *g = qs->groups[i];
        for (uint32_t s = 0; s < g->shard_count; s++) {
            floors[s] = g->shards[s].floor;
        }
        struct op op = {.type = REC_CREATE,
                        .group = g->def.name,
                        .def = &g->def,
                        .count = g->shard_count,
                        .floors = floors};
        len += out != NULL ? rec_encode(out + len, &op) : rec_size(&op);
        n++;
        for (uint32_t s = 0; s < g->shard_count; s++) {
            const struct shard *sh = &g->shards[s];
            struct op a = {.type = REC_ACK, .group = g->def.name, .shard = s};
            for (uint32_t j = 0; j < sh->nr; j++) {
                a.a = sh->r[j].first;
                a.b = sh->r[j].end;
                len += out != NULL ? rec_encode(out + len, &a) : rec_size(&a);
            }
            struct op c = {.type = REC_COUNT, .group = g->def.name, .shard = s};
            for (uint32_t j = 0; j < sh->nc; j++) {
                c.a = sh->c[j].seq;
                c.count = sh->c[j].count;
                len += out != NULL ? rec_encode(out + len, &c) : rec_size(&c);
            }
            n += sh->nr + sh->nc;
        }
        if (g->dead_lettered != 0 || g->filtered != 0) {
            struct op c = {.type = REC_COUNTERS,
                           .group = g->def.name,
                           .a = g->dead_lettered,
                           .b = g->filtered};
            len += out != NULL ? rec_encode(out + len, &c) : rec_size(&c);
            n++;
        }
    }
    *records = n;
    return len;
}

/* Builds the snapshot image of the memory state (returns owned buffer). */
static int snap_build(struct sl_qstate *qs, uint64_t log_gen, uint8_t **out, size_t *out_len)
{
    uint64_t records = 0;
    uint64_t body = snap_body(qs, NULL, &records);
    if (body > SNAP_BYTES_MAX) {
        return SL_ETOOBIG;
    }
    size_t total = SNAP_HEAD + (size_t)body + SNAP_TRAILER;
    uint8_t *buf = malloc(total);
    if (buf == NULL) {
        return SL_ENOMEM;
    }
    sl_put_u32(buf, SNAP_MAGIC);
    sl_put_u32(buf + 4, SNAP_VERSION);
    sl_put_u64(buf + 8, log_gen);
    sl_put_u64(buf + 16, records);
    sl_put_u64(buf + 24, body);
    uint64_t again = 0;
    SL_ASSERT(snap_body(qs, buf + SNAP_HEAD, &again) == body && again == records);
    sl_put_u64(buf + SNAP_HEAD + body, sl_checksum64(buf, SNAP_HEAD + (size_t)body));
    *out = buf;
    *out_len = total;
    return SL_OK;
}

/* The log header of generation `gen`. */
static void log_head(uint8_t h[LOG_HEAD], uint64_t gen)
{
    sl_put_u32(h, LOG_MAGIC);
    sl_put_u32(h + 4, LOG_VERSION);
    sl_put_u64(h + 8, gen);
    sl_put_u32(h + 16, sl_checksum32(h, 16));
    sl_put_u32(h + 20, 0);
}

/* Synchronous compaction (the statelog's hook; see the file comment): the
 * snapshot is the memory state, staged mutations included, and the log
 * starts again at gen + 1. Returns true when the snapshot is in place. */
static bool compact(struct sl_statelog *sl)
{
    struct sl_qstate *qs = sl_container_of(sl, struct sl_qstate, log);
    uint8_t head[LOG_HEAD];
    log_head(head, qs->gen + 1);
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = snap_build(qs, qs->gen + 1, &buf, &len);
    rc = sl_statelog_compact(sl, rc, buf, len, head, LOG_HEAD);
    free(buf);
    if (rc != SL_OK) {
        return false;
    }
    qs->gen++;
    return true;
}

/* Loads the snapshot; qs->gen = the gen of the log that continues it. */
static int snap_parse(struct sl_statelog *sl, const uint8_t *buf, size_t size, const char **why)
{
    struct sl_qstate *qs = sl_container_of(sl, struct sl_qstate, log);
    if (size < SNAP_HEAD + SNAP_TRAILER || sl_get_u32(buf) != SNAP_MAGIC) {
        *why = "bad magic or too short";
        return SL_ECORRUPT;
    }
    if (sl_get_u32(buf + 4) != SNAP_VERSION) {
        *why = "unknown version";
        return SL_ECORRUPT;
    }
    uint64_t records = sl_get_u64(buf + 16), body = sl_get_u64(buf + 24);
    if (body != size - SNAP_HEAD - SNAP_TRAILER) {
        *why = "body length does not match the file size";
        return SL_ECORRUPT;
    }
    if (sl_get_u64(buf + size - SNAP_TRAILER) != sl_checksum64(buf, size - SNAP_TRAILER)) {
        *why = "checksum mismatch";
        return SL_ECORRUPT;
    }
    qs->gen = sl_get_u64(buf + 8);
    size_t off = SNAP_HEAD, end = SNAP_HEAD + (size_t)body;
    uint64_t n = 0;
    while (off < end) {
        struct op op;
        uint32_t len = end - off >= 4 ? sl_get_u32(buf + off) : 0;
        if (len > end - off || rec_decode(buf + off, len, qs->scratch, &op) != SL_OK) {
            *why = "a record fails its check";
            return SL_ECORRUPT;
        }
        int rc = apply_loaded(qs, &op, SNAP_NAME);
        if (rc != SL_OK) {
            *why = "a record contradicts the state";
            return rc;
        }
        off += len;
        n++;
    }
    if (n != records) {
        *why = "record count mismatch";
        return SL_ECORRUPT;
    }
    return SL_OK;
}

/* ------------------------------------------------------------------ */
/* log replay                                                          */

/* The statelog's replay hook: one record of the log at open. */
static int replay_rec(struct sl_statelog *sl, const uint8_t *rec, uint32_t len, bool *valid)
{
    struct sl_qstate *qs = sl_container_of(sl, struct sl_qstate, log);
    struct op op;
    *valid = rec_decode(rec, len, qs->scratch, &op) == SL_OK;
    return *valid ? apply_loaded(qs, &op, LOG_NAME) : SL_OK;
}

/* Reads the header: SL_OK with *gen, or SL_ECORRUPT (torn or damaged). */
static int log_header(struct sl_qstate *qs, uint64_t size, uint64_t *gen)
{
    uint8_t h[LOG_HEAD];
    size_t got = 0;
    if (size < LOG_HEAD) {
        return SL_ECORRUPT;
    }
    int rc = sl_pread_full(qs->log.log_fd, h, LOG_HEAD, 0, &got);
    if (rc != SL_OK) {
        return rc;
    }
    if (got != LOG_HEAD || sl_get_u32(h) != LOG_MAGIC || sl_get_u32(h + 4) != LOG_VERSION ||
        sl_get_u32(h + 16) != sl_checksum32(h, 16) || sl_get_u32(h + 20) != 0) {
        return SL_ECORRUPT;
    }
    *gen = sl_get_u64(h + 8);
    return SL_OK;
}

/* Opens the log that continues the snapshot (of log gen qs->gen). */
static int load_log(struct sl_qstate *qs)
{
    uint64_t snap_gen = qs->gen, size = 0, gen = 0;
    uint8_t head[LOG_HEAD];
    log_head(head, snap_gen);
    int rc = sl_statelog_open_log(&qs->log, head, LOG_HEAD, &size);
    if (rc != SL_OK) {
        return rc;
    }
    rc = log_header(qs, size, &gen);
    if (rc == SL_ECORRUPT) {
        /* Torn at creation, or damaged: nothing after it can be trusted. */
        sl_warn("storage", "%s/%s: truncated %" PRIu64 " bytes: the log header is torn or corrupt",
                qs->log.dir, LOG_NAME, size);
        return sl_statelog_reset(&qs->log, head, LOG_HEAD, size);
    }
    if (rc != SL_OK) {
        return rc;
    }
    if (gen < snap_gen) {
        sl_info("storage",
                "%s/%s: log gen %" PRIu64 " predates the snapshot (gen %" PRIu64
                "): discarded (%" PRIu64 " bytes, already in the snapshot)",
                qs->log.dir, LOG_NAME, gen, snap_gen, size);
        return sl_statelog_reset(&qs->log, head, LOG_HEAD, 0);
    }
    if (gen > snap_gen) {
        sl_error("storage",
                 "%s/%s: log gen %" PRIu64 " follows a snapshot of gen %" PRIu64
                 " that is missing; refusing to open the queue state: restore %s",
                 qs->log.dir, LOG_NAME, gen, snap_gen, SNAP_NAME);
        return SL_ECORRUPT;
    }
    return sl_statelog_replay(&qs->log, LOG_HEAD, size);
}

/* ------------------------------------------------------------------ */
/* write path                                                          */

/* Validates, applies and stages one mutation (see the header). */
static int submit(struct sl_qstate *qs, const struct op *op, sl_qstate_cb cb, void *ctx)
{
    int rc = sl_statelog_admit(&qs->log);
    if (rc != SL_OK) {
        return rc;
    }
    /* Reserve what can fail before changing anything (the files first: a
     * parked store's are reopened); apply is all or nothing; encoding cannot
     * fail. */
    uint32_t len = rec_size(op);
    rc = sl_statelog_touch(&qs->log);
    if (rc == SL_OK) {
        rc = sl_statelog_reserve(&qs->log, len);
    }
    if (rc == SL_OK) {
        rc = apply(qs, op, true);
    }
    if (rc != SL_OK) {
        return rc;
    }
    uint32_t n = rec_encode(sl_statelog_tail(&qs->log), op);
    SL_ASSERT(n == len);
    sl_statelog_append(&qs->log, len, cb, ctx);
    qs->stats.mutations++;
    return SL_OK;
}

static bool name_ok(const char *name)
{
    size_t n = name != NULL ? strnlen(name, SL_QSTATE_NAME_MAX + 1) : 0;
    return n >= 1 && n <= SL_QSTATE_NAME_MAX;
}

int sl_qstate_create_group(struct sl_qstate *qs, const struct sl_qgroup_def *def,
                           uint32_t shard_count, const uint64_t *start_floor, sl_qstate_cb cb,
                           void *ctx)
{
    SL_ASSERT(qs != NULL);
    if (def == NULL || !def_valid(def) || start_floor == NULL || shard_count == 0 ||
        shard_count > SL_QSTATE_SHARDS_MAX) {
        return SL_EINVAL;
    }
    struct op op = {.type = REC_CREATE,
                    .group = def->name,
                    .def = def,
                    .count = shard_count,
                    .floors = start_floor};
    return submit(qs, &op, cb, ctx);
}

int sl_qstate_delete_group(struct sl_qstate *qs, const char *group, sl_qstate_cb cb, void *ctx)
{
    SL_ASSERT(qs != NULL);
    if (!name_ok(group)) {
        return SL_EINVAL;
    }
    struct op op = {.type = REC_DELETE, .group = group};
    return submit(qs, &op, cb, ctx);
}

int sl_qstate_ack(struct sl_qstate *qs, const char *group, uint32_t shard, uint64_t first,
                  uint64_t end, sl_qstate_cb cb, void *ctx)
{
    SL_ASSERT(qs != NULL);
    if (!name_ok(group) || first >= end) {
        return SL_EINVAL;
    }
    struct op op = {.type = REC_ACK, .group = group, .shard = shard, .a = first, .b = end};
    return submit(qs, &op, cb, ctx);
}

int sl_qstate_set_count(struct sl_qstate *qs, const char *group, uint32_t shard, uint64_t seq,
                        uint32_t count, sl_qstate_cb cb, void *ctx)
{
    SL_ASSERT(qs != NULL);
    if (!name_ok(group)) {
        return SL_EINVAL;
    }
    struct op op = {.type = REC_COUNT, .group = group, .shard = shard, .a = seq, .count = count};
    return submit(qs, &op, cb, ctx);
}

int sl_qstate_grow_group(struct sl_qstate *qs, const char *group, uint32_t shard_count,
                         sl_qstate_cb cb, void *ctx)
{
    SL_ASSERT(qs != NULL);
    if (!name_ok(group)) {
        return SL_EINVAL;
    }
    struct op op = {.type = REC_GROW, .group = group, .count = shard_count};
    return submit(qs, &op, cb, ctx);
}

int sl_qstate_add_counters(struct sl_qstate *qs, const char *group, uint64_t dead_lettered,
                           uint64_t filtered, sl_qstate_cb cb, void *ctx)
{
    SL_ASSERT(qs != NULL);
    if (!name_ok(group)) {
        return SL_EINVAL;
    }
    struct op op = {.type = REC_COUNTERS, .group = group, .a = dead_lettered, .b = filtered};
    return submit(qs, &op, cb, ctx);
}

/* ------------------------------------------------------------------ */
/* reads                                                               */

const struct sl_qgroup_def *sl_qstate_group(const struct sl_qstate *qs, const char *group)
{
    uint32_t at = 0;
    const struct group *g = group != NULL ? group_find(qs, group, &at) : NULL;
    return g != NULL ? &g->def : NULL;
}

uint32_t sl_qstate_shard_count(const struct sl_qstate *qs, const char *group)
{
    uint32_t at = 0;
    const struct group *g = group != NULL ? group_find(qs, group, &at) : NULL;
    return g != NULL ? g->shard_count : 0;
}

void sl_qstate_foreach_group(const struct sl_qstate *qs,
                             void (*fn)(void *ctx, const struct sl_qgroup_def *def), void *ctx)
{
    for (uint32_t i = 0; i < qs->group_count; i++) {
        fn(ctx, &qs->groups[i]->def);
    }
}

uint64_t sl_qstate_floor(const struct sl_qstate *qs, const char *group, uint32_t shard)
{
    const struct shard *s = shard_get(qs, group, shard);
    return s != NULL ? s->floor : 0;
}

bool sl_qstate_is_acked(const struct sl_qstate *qs, const char *group, uint32_t shard, uint64_t seq)
{
    const struct shard *s = shard_get(qs, group, shard);
    return s != NULL && shard_acked(s, seq);
}

uint64_t sl_qstate_next_unacked(const struct sl_qstate *qs, const char *group, uint32_t shard,
                                uint64_t from)
{
    const struct shard *s = shard_get(qs, group, shard);
    if (s == NULL) {
        return from;
    }
    if (from < s->floor) {
        from = s->floor;
    }
    /* Ranges never touch, so the end of the one holding `from` is unacked. */
    uint32_t i = range_ub_first(s, from);
    if (i > 0 && s->r[i - 1].end > from) {
        from = s->r[i - 1].end;
    }
    SL_ASSERT(!shard_acked(s, from) || from == UINT64_MAX);
    return from;
}

uint32_t sl_qstate_count(const struct sl_qstate *qs, const char *group, uint32_t shard,
                         uint64_t seq)
{
    const struct shard *s = shard_get(qs, group, shard);
    if (s == NULL) {
        return 0;
    }
    uint32_t i = count_lb(s, seq);
    return i < s->nc && s->c[i].seq == seq ? s->c[i].count : 0;
}

void sl_qstate_foreach_count(const struct sl_qstate *qs, const char *group, uint32_t shard,
                             void (*fn)(void *ctx, uint64_t seq, uint32_t count), void *ctx)
{
    const struct shard *s = shard_get(qs, group, shard);
    for (uint32_t i = 0; s != NULL && i < s->nc; i++) {
        fn(ctx, s->c[i].seq, s->c[i].count);
    }
}

void sl_qstate_counters(const struct sl_qstate *qs, const char *group, uint64_t *dead_lettered,
                        uint64_t *filtered)
{
    uint32_t at = 0;
    const struct group *g = group != NULL ? group_find(qs, group, &at) : NULL;
    if (dead_lettered != NULL) {
        *dead_lettered = g != NULL ? g->dead_lettered : 0;
    }
    if (filtered != NULL) {
        *filtered = g != NULL ? g->filtered : 0;
    }
}

bool sl_qstate_sync(struct sl_qstate *qs, sl_qstate_cb cb, void *ctx)
{
    return sl_statelog_sync(&qs->log, cb, ctx);
}

void sl_qstate_stats(const struct sl_qstate *qs, struct sl_qstate_stats *out)
{
    struct sl_statelog_stats ls;
    sl_statelog_stats(&qs->log, &ls);
    *out = qs->stats;
    out->groups = qs->group_count;
    out->pending = ls.pending;
    out->writes = ls.writes;
    out->fsyncs = ls.fsyncs;
    out->records = ls.records;
    out->compactions = ls.compactions;
    out->log_bytes = ls.log_bytes;
    out->truncated_bytes = ls.truncated_bytes;
    out->state = ls.state;
    out->parked = ls.parked;
}

/* ------------------------------------------------------------------ */
/* open and close                                                      */

void sl_qstate_config_default(struct sl_qstate_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->groups_max = 256;
    cfg->log_bytes_max = 8u << 20;
    cfg->pending_max = 65536;
    cfg->ranges_max = 65536;
}

static int config_check(const struct sl_qstate_config *cfg)
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
    if (cfg->ranges_max < 1 || cfg->ranges_max > CFG_RANGES_MAX_MAX) {
        return SL_EINVAL;
    }
    return SL_OK;
}

static int store_load(struct sl_qstate *qs)
{
    int rc = sl_statelog_load_snap(&qs->log, snap_parse);
    if (rc == SL_OK) {
        rc = load_log(qs);
    }
    if (rc != SL_OK) {
        return rc;
    }
    if (qs->group_count > qs->cfg.groups_max) {
        sl_warn("storage",
                "%s: %" PRIu32 " queue groups on disk, over groups_max %" PRIu32
                "; all kept, new groups refused",
                qs->log.dir, qs->group_count, qs->cfg.groups_max);
    }
    return sl_statelog_start(&qs->log);
}

bool sl_qstate_present(const char *dir)
{
    uint8_t head[LOG_HEAD];
    log_head(head, 0); /* what an empty store's log holds */
    return sl_statelog_present(dir, LOG_NAME, SNAP_NAME, head, LOG_HEAD);
}

int sl_qstate_open(struct sl_ring *ring, const char *dir, const struct sl_qstate_config *cfg,
                   struct sl_qstate **out)
{
    SL_ASSERT(ring != NULL && dir != NULL && cfg != NULL && out != NULL);
    *out = NULL;
    if (config_check(cfg) != SL_OK) {
        sl_error("storage",
                 "%s: bad queue-state config: groups_max [1, %u], log_bytes_max [%u, %u], "
                 "pending_max [1, %u], ranges_max [1, %u]",
                 dir, CFG_GROUPS_MAX_MAX, CFG_LOG_BYTES_MIN, CFG_LOG_BYTES_MAX, CFG_PENDING_MAX_MAX,
                 CFG_RANGES_MAX_MAX);
        return SL_EINVAL;
    }
    struct sl_qstate *qs = calloc(1, sizeof(*qs));
    if (qs == NULL) {
        return SL_ENOMEM;
    }
    qs->cfg = *cfg;
    const struct sl_statelog_config lc = {
        .what = "queue state",
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
        .durable = NULL,
        .compact = compact,
    };
    int rc = sl_statelog_init(&qs->log, ring, dir, &lc);
    qs->scratch = malloc(sizeof(*qs->scratch));
    if (rc == SL_OK) {
        rc = qs->scratch == NULL ? SL_ENOMEM : store_load(qs);
    }
    if (rc != SL_OK) {
        sl_error("storage", "%s: cannot open the queue state: %s", dir, sl_strerror(rc));
        sl_qstate_close(qs);
        return rc;
    }
    sl_info("storage",
            "%s: queue state loaded: %" PRIu32 " groups, %" PRIu64 " ranges, %" PRIu64
            " counts, %" PRIu64 "-byte log (gen %" PRIu64 ")",
            dir, qs->group_count, qs->stats.ranges, qs->stats.counts, qs->log.log_bytes, qs->gen);
    *out = qs;
    return SL_OK;
}

void sl_qstate_close(struct sl_qstate *qs)
{
    if (qs == NULL) {
        return;
    }
    /* Drains the write path first: its callbacks and a compaction still
     * read the state. */
    sl_statelog_fini(&qs->log);
    for (uint32_t i = 0; i < qs->group_count; i++) {
        group_free(qs, qs->groups[i]);
    }
    SL_ASSERT(qs->stats.ranges == 0 && qs->stats.counts == 0);
    free(qs->groups);
    free(qs->scratch);
    free(qs);
}
