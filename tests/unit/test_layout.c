/* test_layout.c - unit tests of client/layout.c, what libsluice routes by across resharding.
 *
 * Covers: a routing table built from a described lineage (splits and a merge, shards listed
 * out of order, closed ones ignored) sends every hash - the range ends, both sides of every
 * boundary, 100,000 random ones - to the open shard whose range holds it, as a brute-force
 * scan does; layouts that do not partition the hash space (a gap, an overlap, no open shard,
 * a hole at either end) are refused with a reason and leave the table in use untouched;
 * routing behind draining shards (the oldest holding the hash, from min_id on, else the
 * open one); a batch's records read back with keys, values, attributes and producer
 * timestamps intact (uncompressed and zstd), and re-partitioned into the shards of a new
 * layout: every record lands once, in the shard of its key, each key's records in their
 * order; a corrupt batch, zstd without a context and a callback's error stop the walk.
 *
 * client/layout.c needs only the batch codec and common/: compiled in here directly.
 */
#include "client/layout.c"

#include "common/compress.h"
#include "common/partition.h"

#include "tests/unit/test.h"

#include <stdint.h>

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

/* Stream history: 0..3 uniform; 1 split at its middle into 4 and 5; 2 and 3 merged into 6;
 * 5 split into 7 and 8 at a given hash. Open: 0, 4, 7, 8, 6 (listed out of order). */
static size_t lineage_fixture(struct sluice_shard_info *s)
{
    uint64_t a, b;
    memset(s, 0, 9 * sizeof(*s));
    for (uint32_t i = 0; i < 4; i++) {
        sl_partition_range(i, 4, &a, &b);
        s[i] = (struct sluice_shard_info){.shard = i, .hash_start = a, .hash_end = b};
    }
    uint64_t mid = s[1].hash_start + (s[1].hash_end - s[1].hash_start) / 2;
    s[4] = (struct sluice_shard_info){.shard = 4, .hash_start = s[1].hash_start, .hash_end = mid};
    s[5] = (struct sluice_shard_info){.shard = 5, .hash_start = mid + 1, .hash_end = s[1].hash_end};
    s[6] = (struct sluice_shard_info){
        .shard = 6, .hash_start = s[2].hash_start, .hash_end = s[3].hash_end};
    uint64_t at = s[5].hash_start + 12345;
    s[7] =
        (struct sluice_shard_info){.shard = 7, .hash_start = s[5].hash_start, .hash_end = at - 1};
    s[8] = (struct sluice_shard_info){.shard = 8, .hash_start = at, .hash_end = s[5].hash_end};
    s[1].closed = s[2].closed = s[3].closed = s[5].closed = 1;
    /* out of order: the table sorts */
    struct sluice_shard_info t = s[0];
    s[0] = s[8];
    s[8] = t;
    return 9;
}

static uint32_t brute_route(const struct sluice_shard_info *s, size_t n, uint64_t h)
{
    uint32_t found = UINT32_MAX, hits = 0;
    for (size_t i = 0; i < n; i++) {
        if (!s[i].closed && s[i].hash_start <= h && h <= s[i].hash_end) {
            found = s[i].shard;
            hits++;
        }
    }
    return hits == 1 ? found : UINT32_MAX - 1;
}

TEST(layout_routes_every_hash_to_its_open_shard)
{
    struct sluice_shard_info s[9];
    size_t n = lineage_fixture(s);
    struct sl_layout l = {0};
    char why[SL_LAYOUT_WHY_MAX];
    CHECK_EQ(sl_layout_build(&l, s, n, why), SL_OK);
    CHECK_EQ(l.open_len, 5);
    for (uint32_t i = 0; i < l.open_len; i++) {
        uint64_t edges[] = {l.open[i].start, l.open[i].end, l.open[i].start + 1, l.open[i].end - 1};
        for (size_t e = 0; e < 4; e++) {
            CHECK_EQ(sl_layout_route(&l, edges[e]), brute_route(s, n, edges[e]));
        }
        CHECK_EQ(sl_layout_route(&l, l.open[i].start), l.open[i].shard);
        CHECK_EQ(sl_layout_route(&l, l.open[i].end), l.open[i].shard);
    }
    CHECK_EQ(sl_layout_route(&l, 0), brute_route(s, n, 0));
    CHECK_EQ(sl_layout_route(&l, UINT64_MAX), brute_route(s, n, UINT64_MAX));
    for (int i = 0; i < 100000; i++) {
        uint64_t h = rng();
        uint32_t want = brute_route(s, n, h);
        CHECK(want < 9);
        CHECK_EQ(sl_layout_route(&l, h), want);
    }
    /* a never-resharded stream routes as common/partition.h always did */
    struct sluice_shard_info u[7];
    for (uint32_t i = 0; i < 7; i++) {
        u[i] = (struct sluice_shard_info){.shard = i};
        sl_partition_range(i, 7, &u[i].hash_start, &u[i].hash_end);
    }
    CHECK_EQ(sl_layout_build(&l, u, 7, why), SL_OK);
    for (int i = 0; i < 10000; i++) {
        uint64_t h = rng();
        CHECK_EQ(sl_layout_route(&l, h), sl_partition_shard(h, 7));
    }
    sl_layout_fini(&l);
    sl_layout_fini(&l); /* idempotent */
}

TEST(layout_refuses_what_is_no_partition)
{
    struct sluice_shard_info s[9];
    size_t n = lineage_fixture(s);
    struct sl_layout l = {0};
    char why[SL_LAYOUT_WHY_MAX];
    CHECK_EQ(sl_layout_build(&l, s, n, why), SL_OK);
    struct sl_layout_range *in_use = l.open;
    struct {
        const char *what;
        uint32_t idx; /* entry of s[] (after the fixture's swap) to change */
        int field;    /* 0: start, 1: end, 2: closed */
        uint64_t value;
        const char *says; /* in why */
    } bad[] = {
        {"gap", 4, 1, 0, "gap"},                  /* shard 4 ends too early */
        {"overlap", 6, 0, 0, "overlap"},          /* shard 6 starts at 0 */
        {"open parent", 1, 2, 0, "overlap"},      /* closed shard 1 listed open */
        {"hole at 0", 8, 0, 1, "hash 0"},         /* shard 0 (swapped to 8) starts at 1 */
        {"hole at the top", 6, 1, 1000, "above"}, /* shard 6 ends low */
    };
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        struct sluice_shard_info t[9];
        memcpy(t, s, sizeof(t));
        if (bad[k].field == 0) {
            t[bad[k].idx].hash_start = bad[k].value;
        } else if (bad[k].field == 1) {
            t[bad[k].idx].hash_end = t[bad[k].idx].hash_start + bad[k].value;
        } else {
            t[bad[k].idx].closed = 0;
        }
        why[0] = '\0';
        if (sl_layout_build(&l, t, n, why) != SL_EPROTO || strstr(why, bad[k].says) == NULL) {
            fprintf(stderr, "  case %s: why = '%s'\n", bad[k].what, why);
            CHECK(0);
        }
        CHECK(l.open == in_use && l.open_len == 5); /* untouched */
    }
    for (size_t i = 0; i < n; i++) {
        s[i].closed = 1;
    }
    CHECK_EQ(sl_layout_build(&l, s, n, why), SL_EPROTO);
    CHECK(strstr(why, "no open shard") != NULL);
    /* the last open shard must reach 2^64 - 1 */
    struct sluice_shard_info one = {.shard = 0, .hash_start = 0, .hash_end = UINT64_MAX - 1};
    CHECK_EQ(sl_layout_build(&l, &one, 1, why), SL_EPROTO);
    CHECK(strstr(why, "above") != NULL);
    one.hash_end = UINT64_MAX;
    CHECK_EQ(sl_layout_build(&l, &one, 1, why), SL_OK);
    CHECK_EQ(sl_layout_route(&l, UINT64_MAX), 0);
    sl_layout_fini(&l);
}

TEST(route_draining_goes_to_the_oldest_pending_shard)
{
    struct sluice_shard_info s[9];
    size_t n = lineage_fixture(s);
    struct sl_layout l = {0};
    char why[SL_LAYOUT_WHY_MAX];
    CHECK_EQ(sl_layout_build(&l, s, n, why), SL_OK);
    /* 1 (closed, pending) and its child 5 (closed, pending); 7 and 8 are 5's children */
    struct sl_layout_range d[2];
    for (size_t i = 0; i < n; i++) {
        if (s[i].shard == 1) {
            d[0] = (struct sl_layout_range){s[i].hash_start, s[i].hash_end, 1};
        }
        if (s[i].shard == 5) {
            d[1] = (struct sl_layout_range){s[i].hash_start, s[i].hash_end, 5};
        }
    }
    uint64_t in5 = d[1].start + 5; /* in 1, 5 and 7 */
    uint64_t in4 = d[0].start + 5; /* in 1 and 4 */
    uint64_t in8 = d[1].end - 5;   /* in 1, 5 and 8 */
    uint64_t in6 = UINT64_MAX - 5; /* in no draining shard */
    CHECK_EQ(sl_layout_route_draining(&l, d, 2, in5, 0), 1);
    CHECK_EQ(sl_layout_route_draining(&l, d, 2, in5, 2), 5); /* leaving 1 */
    CHECK_EQ(sl_layout_route_draining(&l, d, 2, in5, 6), 7); /* leaving 5 */
    CHECK_EQ(sl_layout_route_draining(&l, d, 2, in8, 6), 8);
    CHECK_EQ(sl_layout_route_draining(&l, d, 2, in4, 0), 1);
    CHECK_EQ(sl_layout_route_draining(&l, d, 2, in4, 2), 4); /* 5 does not hold it */
    CHECK_EQ(sl_layout_route_draining(&l, d, 2, in6, 0), 6);
    CHECK_EQ(sl_layout_route_draining(&l, d, 0, in5, 0), 7); /* nothing draining */
    CHECK_EQ(sl_layout_route_draining(&l, d + 1, 1, in5, 0), 5);
    sl_layout_fini(&l);
}

/* ---- batches ---- */

#define RECORDS 500u

struct rec_spec {
    char key[16];
    uint32_t key_len;
    char value[64];
    uint32_t value_len;
    struct sl_attr attrs[SL_RECORD_ATTRS_MAX];
    char attr_bytes[SL_RECORD_ATTRS_MAX][2][24];
    uint32_t attr_count;
    uint64_t ts;
};

static struct rec_spec specs[RECORDS];

/* Record i: key "k<i % 37>" (none for every 50th), value naming the key's counter,
 * i % 33 attributes (the last one at the limit), timestamps apart and alike. */
static void specs_make(void)
{
    uint32_t counter[37] = {0};
    for (uint32_t i = 0; i < RECORDS; i++) {
        struct rec_spec *r = &specs[i];
        uint32_t k = i % 37;
        r->key_len = i % 50 == 49 ? 0 : (uint32_t)snprintf(r->key, sizeof(r->key), "k%u", k);
        r->value_len = (uint32_t)snprintf(r->value, sizeof(r->value), "%s#%u value %u",
                                          r->key_len ? r->key : "-", counter[k]++, i);
        r->attr_count = i % (SL_RECORD_ATTRS_MAX + 1);
        for (uint32_t a = 0; a < r->attr_count; a++) {
            int kl = snprintf(r->attr_bytes[a][0], 24, "a%u", a);
            int vl = snprintf(r->attr_bytes[a][1], 24, "v%u.%u", i, a);
            r->attrs[a] = (struct sl_attr){r->attr_bytes[a][0], (uint32_t)kl, r->attr_bytes[a][1],
                                           (uint32_t)vl};
        }
        r->ts = 1700000000000ull + i / 3u * 7u; /* in order (the builder clamps a step back) */
    }
}

static size_t batch_make(uint8_t *buf, size_t cap, unsigned codec, struct sl_zctx *z,
                         uint32_t first, uint32_t count)
{
    struct sl_batch_builder b;
    sl_batch_builder_init(&b, buf, cap);
    for (uint32_t i = first; i < first + count; i++) {
        const struct rec_spec *r = &specs[i];
        struct sl_record rec = {r->key,   r->key_len,    r->value, r->value_len,
                                r->attrs, r->attr_count, r->ts};
        if (sl_batch_builder_add(&b, &rec) != SL_OK) {
            return 0;
        }
    }
    size_t scap = sl_compress_bound(b.len);
    void *scratch = malloc(scap);
    size_t len = 0;
    int rc = sl_batch_builder_finish(&b, codec, 3, z, scratch, scap, 77, 5, &len);
    free(scratch);
    return rc == SL_OK ? len : 0;
}

struct walk {
    uint32_t next; /* spec index expected */
    int mismatch;
    uint32_t stop_at;
};

static int rec_equals(const struct sl_record *rec, const struct rec_spec *r)
{
    if (rec->key_len != r->key_len || memcmp(rec->key, r->key, r->key_len) != 0 ||
        rec->value_len != r->value_len || memcmp(rec->value, r->value, r->value_len) != 0 ||
        rec->attr_count != r->attr_count || rec->timestamp_ms != r->ts) {
        return 0;
    }
    for (uint32_t a = 0; a < r->attr_count; a++) {
        const struct sl_attr *x = &rec->attrs[a], *y = &r->attrs[a];
        if (x->key_len != y->key_len || memcmp(x->key, y->key, y->key_len) != 0 ||
            x->value_len != y->value_len || memcmp(x->value, y->value, y->value_len) != 0) {
            return 0;
        }
    }
    return 1;
}

static int walk_check(void *ctx, uint32_t index, const struct sl_record *rec)
{
    struct walk *w = ctx;
    if (index == w->stop_at) {
        return SL_ENOSPC; /* any code: returned as is */
    }
    if (index != w->next || !rec_equals(rec, &specs[w->next])) {
        w->mismatch = 1;
    }
    w->next++;
    return SL_OK;
}

TEST(batch_records_read_back_whole)
{
    specs_make();
    struct sl_zctx *z = sl_zctx_new();
    CHECK(z != NULL);
    size_t cap = 1u << 20;
    uint8_t *buf = malloc(cap);
    unsigned codecs[] = {SL_BATCH_CODEC_NONE, SL_BATCH_CODEC_ZSTD};
    for (size_t c = 0; c < 2; c++) {
        size_t len = batch_make(buf, cap, codecs[c], z, 0, RECORDS);
        CHECK(len > 0);
        struct walk w = {.stop_at = UINT32_MAX};
        CHECK_EQ(sl_layout_batch_each(buf, len, z, walk_check, &w), SL_OK);
        CHECK_EQ(w.next, RECORDS);
        CHECK_EQ(w.mismatch, 0);
        /* the callback's error stops the walk where it says */
        w = (struct walk){.stop_at = 123};
        CHECK_EQ(sl_layout_batch_each(buf, len, z, walk_check, &w), SL_ENOSPC);
        CHECK_EQ(w.next, 123);
        CHECK_EQ(w.mismatch, 0);
        /* a flipped byte anywhere in the body fails the checksum */
        buf[len - 3] ^= 0x40;
        w = (struct walk){.stop_at = UINT32_MAX};
        CHECK_EQ(sl_layout_batch_each(buf, len, z, walk_check, &w), SL_ECORRUPT);
        CHECK_EQ(w.next, 0);
        buf[len - 3] ^= 0x40;
        CHECK_EQ(sl_layout_batch_each(buf, len - 1, z, walk_check, &w), SL_ECORRUPT);
    }
    /* a zstd batch needs a context (the producer has one whenever it compresses) */
    size_t len = batch_make(buf, cap, SL_BATCH_CODEC_ZSTD, z, 0, RECORDS);
    struct sl_batch_header h;
    CHECK_EQ(sl_batch_validate(buf, len, SL_BATCH_BYTES_MAX, &h), SL_OK);
    if ((h.codec & SL_BATCH_CODEC_MASK) == SL_BATCH_CODEC_ZSTD) {
        struct walk w = {.stop_at = UINT32_MAX};
        CHECK_EQ(sl_layout_batch_each(buf, len, NULL, walk_check, &w), SL_EINVAL);
    }
    free(buf);
    sl_zctx_free(z);
}

/* ---- re-partitioning: what the producer does with a closed shard's batch ---- */

#define OUT_MAX 9u

struct repart {
    const struct sl_layout *l;
    struct sl_batch_builder out[OUT_MAX];
    uint8_t *bufs[OUT_MAX];
    uint32_t rr;
    int err;
};

static int repart_one(void *ctx, uint32_t index, const struct sl_record *rec)
{
    (void)index;
    struct repart *r = ctx;
    uint32_t to = rec->key_len > 0
                      ? sl_layout_route(r->l, sl_partition_hash(rec->key, rec->key_len))
                      : r->l->open[r->rr++ % r->l->open_len].shard;
    return to < OUT_MAX ? sl_batch_builder_add(&r->out[to], rec) : SL_EINVAL;
}

struct collect {
    uint32_t shard;
    const struct sl_layout *l;
    uint32_t seen[RECORDS];    /* times each record came out */
    uint32_t last_counter[37]; /* per key: the last counter read + 1 */
    int bad;
};

static int collect_one(void *ctx, uint32_t index, const struct sl_record *rec)
{
    (void)index;
    struct collect *c = ctx;
    unsigned counter = 0, i = 0, k = 0;
    char key[16] = "-";
    if (sscanf((const char *)rec->value, "%15[^#]#%u value %u", key, &counter, &i) != 3 ||
        i >= RECORDS || !rec_equals(rec, &specs[i])) {
        c->bad = 1;
        return SL_OK;
    }
    c->seen[i]++;
    if (rec->key_len > 0) {
        if (sl_layout_route(c->l, sl_partition_hash(rec->key, rec->key_len)) != c->shard) {
            c->bad = 1; /* in the wrong shard */
        }
        k = i % 37;
        if (counter + 1 <= c->last_counter[k]) {
            c->bad = 1; /* out of order */
        }
        c->last_counter[k] = counter + 1;
    }
    return SL_OK;
}

TEST(batch_repartitions_into_new_layout_in_key_order)
{
    specs_make();
    struct sl_zctx *z = sl_zctx_new();
    CHECK(z != NULL);
    struct sluice_shard_info s[9];
    size_t n = lineage_fixture(s);
    struct sl_layout l = {0};
    char why[SL_LAYOUT_WHY_MAX];
    CHECK_EQ(sl_layout_build(&l, s, n, why), SL_OK);
    size_t cap = 1u << 20;
    uint8_t *in = malloc(cap);
    struct repart r = {.l = &l};
    for (uint32_t i = 0; i < OUT_MAX; i++) {
        r.bufs[i] = malloc(cap);
        sl_batch_builder_init(&r.out[i], r.bufs[i], cap);
    }
    /* three batches of the closed shard, in their order, into the open shards' batches */
    uint32_t parts[] = {0, 170, 340, RECORDS};
    for (int b = 0; b < 3; b++) {
        size_t len = batch_make(in, cap, b == 1 ? SL_BATCH_CODEC_ZSTD : SL_BATCH_CODEC_NONE, z,
                                parts[b], parts[b + 1] - parts[b]);
        CHECK(len > 0);
        CHECK_EQ(sl_layout_batch_each(in, len, z, repart_one, &r), SL_OK);
    }
    struct collect *c = calloc(1, sizeof(*c));
    c->l = &l;
    uint32_t nonempty = 0;
    for (uint32_t i = 0; i < OUT_MAX; i++) {
        if (r.out[i].count == 0) {
            continue;
        }
        nonempty++;
        size_t len = 0;
        CHECK_EQ(
            sl_batch_builder_finish(&r.out[i], SL_BATCH_CODEC_NONE, 0, NULL, NULL, 0, 0, 0, &len),
            SL_OK);
        c->shard = i;
        memset(c->last_counter, 0, sizeof(c->last_counter));
        CHECK_EQ(sl_layout_batch_each(r.bufs[i], len, NULL, collect_one, c), SL_OK);
    }
    CHECK_EQ(c->bad, 0);
    CHECK(nonempty >= 3); /* 37 keys over 5 open shards */
    for (uint32_t i = 0; i < RECORDS; i++) {
        CHECK_EQ(c->seen[i], 1); /* every record once */
    }
    free(c);
    for (uint32_t i = 0; i < OUT_MAX; i++) {
        free(r.bufs[i]);
    }
    free(in);
    sl_layout_fini(&l);
    sl_zctx_free(z);
}

int main(void)
{
    RUN(layout_routes_every_hash_to_its_open_shard);
    RUN(layout_refuses_what_is_no_partition);
    RUN(route_draining_goes_to_the_oldest_pending_shard);
    RUN(batch_records_read_back_whole);
    RUN(batch_repartitions_into_new_layout_in_key_order);
    TEST_END();
}
