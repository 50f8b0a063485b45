/* test_batch.c - unit tests for storage/batch.c, the record batch codec.
 *
 * Covers: builder -> finish -> validate -> iterate round trips with keys,
 * values, attributes and timestamps, uncompressed and zstd (with a sl_zctx and
 * scratch), and zstd that is not smaller staying uncompressed; builder limits
 * (key, attribute count and sizes, buffer full, record count); sl_batch_stamp
 * followed by validate; a single flipped bit at every bit of a batch is caught
 * by sl_batch_validate; truncated input (SL_EAGAIN) and declared lengths over
 * the caller's maximum (SL_ETOOBIG); header field checks; and the iterator on
 * hand-crafted malicious records sections that carry correct checksums (varint
 * overruns, lengths past the end, count mismatches, random mutation): always
 * SL_ECORRUPT, never a crash or an out-of-bounds read (run under ASan; each
 * crafted batch sits in an exactly-sized heap buffer).
 */
#include "storage/batch.h"

#include "common/checksum.h"
#include "common/compress.h"
#include "common/error.h"

#include "tests/unit/test.h"

#include <stdint.h>

/* Header offsets from the byte layout in storage/batch.c (docs/FORMAT.md);
 * the tests craft headers by hand, so they restate it. */
enum {
    H_MAGIC = 0,
    H_LENGTH = 4,
    H_LEADER_EPOCH = 24,
    H_STAMP = 28,
    H_CHECKSUM = 32,
    H_VERSION = 40,
    H_FLAGS = 41,
    H_RESERVED1 = 42,
    H_COUNT = 44,
    H_FIRST_TS = 48,
    H_LAST_TS = 56,
    H_RECORDS_LEN = 80,
    H_RESERVED2 = 84,
};

static uint64_t rng_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

/* Recomputes the body checksum and the stamp check after a hand edit, so the
 * batch passes validate and only the iterator can catch the damage. */
static void reseal(uint8_t *p)
{
    uint32_t len = get32(p + H_LENGTH);
    put64(p + H_CHECKSUM, sl_checksum64(p + H_VERSION, len - H_VERSION));
    sl_batch_stamp_epoch(p, get64(p + 8), get64(p + 16), get32(p + H_LEADER_EPOCH));
}

/* ---- a reference set of records ---------------------------------------- */

#define REF_RECORDS 6

struct ref_set {
    struct sl_record recs[REF_RECORDS];
    struct sl_attr attrs[4];
    char keybuf[REF_RECORDS][64];
    uint8_t valbuf[REF_RECORDS][3000];
};

/* Record i: key "key-i" (empty for i == 2), value of i*500 bytes (empty for
 * i == 0; random or repetitive), attrs on records 1 and 4, increasing times. */
static void ref_set_init(struct ref_set *r, int compressible, uint64_t seed)
{
    memset(r, 0, sizeof(*r));
    r->attrs[0] = (struct sl_attr){"content-type", 12, "text/plain", 10};
    r->attrs[1] = (struct sl_attr){"trace", 5, "abc123", 6};
    r->attrs[2] = (struct sl_attr){"empty", 5, "", 0};
    r->attrs[3] = (struct sl_attr){"k", 1, "v", 1};
    uint64_t st = seed;
    for (int i = 0; i < REF_RECORDS; i++) {
        struct sl_record *rec = &r->recs[i];
        int kl = snprintf(r->keybuf[i], sizeof(r->keybuf[i]), "key-%d", i);
        rec->key = r->keybuf[i];
        rec->key_len = i == 2 ? 0 : (uint32_t)kl;
        rec->value_len = (uint32_t)(i * 500);
        for (uint32_t j = 0; j < rec->value_len; j++) {
            r->valbuf[i][j] = compressible ? (uint8_t)("abcabcabd"[j % 9]) : (uint8_t)rng_next(&st);
        }
        rec->value = r->valbuf[i];
        rec->timestamp_ms = 1700000000000ull + (uint64_t)i * 1000 + (uint64_t)(i * i);
        if (i == 1) {
            rec->attrs = r->attrs;
            rec->attr_count = 3;
        } else if (i == 4) {
            rec->attrs = &r->attrs[3];
            rec->attr_count = 1;
        }
    }
}

/* Iterates `batch` (already validated into *h) and compares with recs. */
static void check_records(const uint8_t *batch, const struct sl_batch_header *h,
                          const struct sl_record *recs, uint32_t n, struct sl_zctx *z,
                          void *scratch, size_t scratch_cap)
{
    struct sl_batch_iter it;
    CHECK_EQ(sl_batch_iter_init(&it, batch, h, z, scratch, scratch_cap), SL_OK);
    for (uint32_t i = 0; i < n; i++) {
        struct sl_record_view v;
        CHECK_EQ(sl_batch_iter_next(&it, &v), SL_OK);
        CHECK_EQ(v.seq, h->base_seq + i);
        CHECK_EQ(v.timestamp_ms, recs[i].timestamp_ms);
        CHECK_EQ(v.key_len, recs[i].key_len);
        CHECK(v.key_len == 0 || memcmp(v.key, recs[i].key, v.key_len) == 0);
        CHECK_EQ(v.value_len, recs[i].value_len);
        CHECK(v.value_len == 0 || memcmp(v.value, recs[i].value, v.value_len) == 0);
        CHECK_EQ(v.attr_count, recs[i].attr_count);
        uint32_t pos = 0;
        struct sl_attr a;
        for (uint32_t k = 0; k < v.attr_count; k++) {
            CHECK(sl_record_attr_next(&v, &pos, &a) == 1);
            CHECK_EQ(a.key_len, recs[i].attrs[k].key_len);
            CHECK(memcmp(a.key, recs[i].attrs[k].key, a.key_len) == 0);
            CHECK_EQ(a.value_len, recs[i].attrs[k].value_len);
            CHECK(a.value_len == 0 || memcmp(a.value, recs[i].attrs[k].value, a.value_len) == 0);
        }
        CHECK(sl_record_attr_next(&v, &pos, &a) == 0);
    }
    struct sl_record_view end;
    CHECK_EQ(sl_batch_iter_next(&it, &end), SL_ENOTFOUND);
    CHECK_EQ(sl_batch_iter_next(&it, &end), SL_ENOTFOUND);
}

static void build(uint8_t *buf, size_t cap, const struct sl_record *recs, uint32_t n,
                  unsigned codec, struct sl_zctx *z, void *scratch, size_t scratch_cap,
                  size_t *out_len)
{
    struct sl_batch_builder b;
    sl_batch_builder_init(&b, buf, cap);
    for (uint32_t i = 0; i < n; i++) {
        CHECK_EQ(sl_batch_builder_add(&b, &recs[i]), SL_OK);
    }
    CHECK_EQ(b.count, n);
    CHECK_EQ(sl_batch_builder_finish(&b, codec, 3, z, scratch, scratch_cap, 77, 1234, out_len),
             SL_OK);
}

TEST(round_trip_uncompressed)
{
    static struct ref_set r;
    static uint8_t buf[32768];
    ref_set_init(&r, 0, 1);
    size_t len = 0;
    build(buf, sizeof(buf), r.recs, REF_RECORDS, SL_BATCH_CODEC_NONE, NULL, NULL, 0, &len);
    if (test_cur_failed_) {
        return;
    }
    struct sl_batch_header h;
    CHECK_EQ(sl_batch_validate(buf, len, len, &h), SL_OK);
    CHECK_EQ(h.length, len);
    CHECK_EQ(h.codec, SL_BATCH_CODEC_NONE);
    CHECK_EQ(h.record_count, REF_RECORDS);
    CHECK_EQ(h.records_len, len - SL_BATCH_HEADER_BYTES);
    CHECK_EQ(h.first_ts_ms, r.recs[0].timestamp_ms);
    CHECK_EQ(h.last_ts_ms, r.recs[REF_RECORDS - 1].timestamp_ms);
    CHECK_EQ(h.producer_id, 77);
    CHECK_EQ(h.producer_seq, 1234);
    CHECK_EQ(h.base_seq, 0);
    CHECK_EQ(get32(buf + H_MAGIC), SL_BATCH_MAGIC);
    CHECK(memcmp(buf, "SLB1", 4) == 0);
    check_records(buf, &h, r.recs, REF_RECORDS, NULL, NULL, 0);
    if (test_cur_failed_) {
        return;
    }
    /* Stamped: sequences start at base_seq, the body is untouched. */
    uint64_t body_sum = get64(buf + H_CHECKSUM);
    sl_batch_stamp(buf, 5000, 1700000009999ull);
    CHECK_EQ(sl_batch_validate(buf, len, len, &h), SL_OK);
    CHECK_EQ(h.base_seq, 5000);
    CHECK_EQ(h.append_time_ms, 1700000009999ull);
    CHECK(get64(buf + H_CHECKSUM) == body_sum);
    CHECK_EQ(sl_batch_last_seq(&h), 5000 + REF_RECORDS - 1);
    check_records(buf, &h, r.recs, REF_RECORDS, NULL, NULL, 0);
}

TEST(round_trip_zstd)
{
    static struct ref_set r;
    static uint8_t buf[32768];
    static uint8_t scratch[65536];
    static uint8_t dec[32768];
    ref_set_init(&r, 1, 2);
    struct sl_zctx *z = sl_zctx_new();
    CHECK(z != NULL);
    size_t plain_len = 0, len = 0;
    build(buf, sizeof(buf), r.recs, REF_RECORDS, SL_BATCH_CODEC_NONE, NULL, NULL, 0, &plain_len);
    build(buf, sizeof(buf), r.recs, REF_RECORDS, SL_BATCH_CODEC_ZSTD, z, scratch, sizeof(scratch),
          &len);
    struct sl_batch_header h;
    int vrc = sl_batch_validate(buf, len, len, &h);
    if (!test_cur_failed_ && vrc == SL_OK) {
        sl_batch_stamp(buf, 42, 7);
        vrc = sl_batch_validate(buf, len, len, &h);
        if (vrc == SL_OK) {
            check_records(buf, &h, r.recs, REF_RECORDS, z, dec, sizeof(dec));
        }
    }
    /* Decompression cap below records_len: refused, not overrun. */
    struct sl_batch_iter it;
    int small = SL_OK, noz = SL_OK;
    if (!test_cur_failed_ && vrc == SL_OK) {
        small = sl_batch_iter_init(&it, buf, &h, z, dec, h.records_len - 1);
        noz = sl_batch_iter_init(&it, buf, &h, NULL, NULL, 0);
    }
    sl_zctx_free(z);
    if (test_cur_failed_) {
        return;
    }
    CHECK_EQ(vrc, SL_OK);
    CHECK_EQ(h.codec, SL_BATCH_CODEC_ZSTD);
    CHECK(len < plain_len / 2);
    CHECK_EQ(h.records_len, plain_len - SL_BATCH_HEADER_BYTES);
    CHECK_EQ(h.base_seq, 42);
    CHECK_EQ(small, SL_ETOOBIG);
    CHECK_EQ(noz, SL_EINVAL);
}

TEST(zstd_not_smaller_stays_uncompressed)
{
    static struct ref_set r;
    static uint8_t buf[32768], scratch[65536];
    ref_set_init(&r, 0, 3); /* random values: zstd cannot shrink them */
    struct sl_zctx *z = sl_zctx_new();
    CHECK(z != NULL);
    size_t plain_len = 0, len = 0;
    build(buf, sizeof(buf), r.recs, REF_RECORDS, SL_BATCH_CODEC_NONE, NULL, NULL, 0, &plain_len);
    static uint8_t plain[32768];
    memcpy(plain, buf, plain_len);
    build(buf, sizeof(buf), r.recs, REF_RECORDS, SL_BATCH_CODEC_ZSTD, z, scratch, sizeof(scratch),
          &len);
    sl_zctx_free(z);
    if (test_cur_failed_) {
        return;
    }
    struct sl_batch_header h;
    CHECK_EQ(sl_batch_validate(buf, len, len, &h), SL_OK);
    CHECK_EQ(h.codec, SL_BATCH_CODEC_NONE);
    CHECK_EQ(len, plain_len);
    CHECK(memcmp(buf, plain, len) == 0); /* identical to the uncompressed build */
    check_records(buf, &h, r.recs, REF_RECORDS, NULL, NULL, 0);
}

TEST(timestamps_clamped_monotonic)
{
    /* Producers stamp in order; a clock step backwards is clamped so deltas
     * stay non-negative (batch.c). */
    const uint64_t ts[] = {1000, 1500, 1200, 2000, 2000};
    const uint64_t want[] = {1000, 1500, 1500, 2000, 2000};
    struct sl_record recs[5];
    memset(recs, 0, sizeof(recs));
    for (int i = 0; i < 5; i++) {
        recs[i].value = "v";
        recs[i].value_len = 1;
        recs[i].timestamp_ms = ts[i];
    }
    uint8_t buf[1024];
    size_t len = 0;
    build(buf, sizeof(buf), recs, 5, SL_BATCH_CODEC_NONE, NULL, NULL, 0, &len);
    if (test_cur_failed_) {
        return;
    }
    struct sl_batch_header h;
    CHECK_EQ(sl_batch_validate(buf, len, len, &h), SL_OK);
    CHECK_EQ(h.first_ts_ms, 1000);
    CHECK_EQ(h.last_ts_ms, 2000);
    struct sl_batch_iter it;
    CHECK_EQ(sl_batch_iter_init(&it, buf, &h, NULL, NULL, 0), SL_OK);
    for (int i = 0; i < 5; i++) {
        struct sl_record_view v;
        CHECK_EQ(sl_batch_iter_next(&it, &v), SL_OK);
        CHECK_EQ(v.timestamp_ms, want[i]);
    }
}

TEST(builder_limits)
{
    static uint8_t buf[65536];
    static char big[2048];
    memset(big, 'x', sizeof(big));
    struct sl_batch_builder b;
    sl_batch_builder_init(&b, buf, sizeof(buf));
    struct sl_record rec;
    memset(&rec, 0, sizeof(rec));
    rec.key = big;
    rec.key_len = SL_RECORD_KEY_MAX;
    CHECK_EQ(sl_batch_builder_add(&b, &rec), SL_OK);
    size_t len_before = b.len;
    rec.key_len = SL_RECORD_KEY_MAX + 1;
    CHECK_EQ(sl_batch_builder_add(&b, &rec), SL_ETOOBIG);
    CHECK_EQ(b.len, len_before); /* a refused add changes nothing */
    CHECK_EQ(b.count, 1);
    rec.key_len = 1;

    struct sl_attr attrs[SL_RECORD_ATTRS_MAX + 1];
    for (uint32_t i = 0; i <= SL_RECORD_ATTRS_MAX; i++) {
        attrs[i] = (struct sl_attr){"a", 1, "b", 1};
    }
    rec.attrs = attrs;
    rec.attr_count = SL_RECORD_ATTRS_MAX;
    CHECK_EQ(sl_batch_builder_add(&b, &rec), SL_OK);
    rec.attr_count = SL_RECORD_ATTRS_MAX + 1;
    CHECK_EQ(sl_batch_builder_add(&b, &rec), SL_ETOOBIG);
    rec.attr_count = 1;
    attrs[0] = (struct sl_attr){big, SL_RECORD_ATTR_KEY_MAX, big, SL_RECORD_ATTR_VALUE_MAX};
    CHECK_EQ(sl_batch_builder_add(&b, &rec), SL_OK);
    attrs[0].key_len = SL_RECORD_ATTR_KEY_MAX + 1;
    CHECK_EQ(sl_batch_builder_add(&b, &rec), SL_ETOOBIG);
    attrs[0].key_len = SL_RECORD_ATTR_KEY_MAX;
    attrs[0].value_len = SL_RECORD_ATTR_VALUE_MAX + 1;
    CHECK_EQ(sl_batch_builder_add(&b, &rec), SL_ETOOBIG);
    CHECK_EQ(b.count, 3);

    /* Buffer full: refused with no side effect, the batch stays usable. */
    struct sl_batch_builder small;
    uint8_t sbuf[SL_BATCH_HEADER_BYTES + 40];
    sl_batch_builder_init(&small, sbuf, sizeof(sbuf));
    struct sl_record r2;
    memset(&r2, 0, sizeof(r2));
    r2.value = big;
    r2.value_len = 20;
    CHECK_EQ(sl_batch_builder_add(&small, &r2), SL_OK);
    size_t l1 = small.len;
    CHECK_EQ(sl_batch_builder_add(&small, &r2), SL_ETOOBIG);
    CHECK_EQ(small.len, l1);
    CHECK_EQ(small.count, 1);
    size_t out = 0;
    CHECK_EQ(sl_batch_builder_finish(&small, SL_BATCH_CODEC_NONE, 1, NULL, NULL, 0, 0, 0, &out),
             SL_OK);
    struct sl_batch_header h;
    CHECK_EQ(sl_batch_validate(sbuf, out, out, &h), SL_OK);
    CHECK_EQ(h.record_count, 1);

    /* No records, unknown codec: SL_EINVAL. */
    struct sl_batch_builder empty;
    sl_batch_builder_init(&empty, sbuf, sizeof(sbuf));
    CHECK_EQ(sl_batch_builder_finish(&empty, SL_BATCH_CODEC_NONE, 1, NULL, NULL, 0, 0, 0, &out),
             SL_EINVAL);
    sl_batch_builder_init(&empty, sbuf, sizeof(sbuf));
    CHECK_EQ(sl_batch_builder_add(&empty, &r2), SL_OK);
    CHECK_EQ(sl_batch_builder_finish(&empty, 2, 1, NULL, NULL, 0, 0, 0, &out), SL_EINVAL);
}

TEST(builder_record_count_limit)
{
    /* An empty record takes 5 bytes (4 one-byte varints + its length). */
    size_t cap = SL_BATCH_HEADER_BYTES + (size_t)SL_BATCH_RECORDS_MAX * 5 + 64;
    uint8_t *buf = malloc(cap);
    CHECK(buf != NULL);
    struct sl_batch_builder b;
    sl_batch_builder_init(&b, buf, cap);
    struct sl_record rec;
    memset(&rec, 0, sizeof(rec));
    int rc = SL_OK;
    for (uint32_t i = 0; i < SL_BATCH_RECORDS_MAX && rc == SL_OK; i++) {
        rc = sl_batch_builder_add(&b, &rec);
    }
    int over = sl_batch_builder_add(&b, &rec);
    uint32_t count = b.count;
    size_t len = 0;
    int fin = sl_batch_builder_finish(&b, SL_BATCH_CODEC_NONE, 1, NULL, NULL, 0, 0, 0, &len);
    struct sl_batch_header h;
    int v = fin == SL_OK ? sl_batch_validate(buf, len, len, &h) : fin;
    free(buf);
    CHECK_EQ(rc, SL_OK);
    CHECK_EQ(over, SL_ELIMIT);
    CHECK_EQ(count, SL_BATCH_RECORDS_MAX);
    CHECK_EQ(fin, SL_OK);
    CHECK_EQ(v, SL_OK);
    CHECK_EQ(h.record_count, SL_BATCH_RECORDS_MAX);
}

/* A small stamped batch for the corruption cases. */
static void small_batch(uint8_t *buf, size_t cap, size_t *len)
{
    struct sl_attr a = {"h", 1, "val", 3};
    struct sl_record recs[3];
    memset(recs, 0, sizeof(recs));
    recs[0] = (struct sl_record){"k1", 2, "hello", 5, NULL, 0, 100};
    recs[1] = (struct sl_record){"", 0, "world!", 6, &a, 1, 105};
    recs[2] = (struct sl_record){"k3", 2, "", 0, NULL, 0, 110};
    build(buf, cap, recs, 3, SL_BATCH_CODEC_NONE, NULL, NULL, 0, len);
    sl_batch_stamp(buf, 123456789, 1700000000000ull);
}

TEST(every_bit_flip_detected)
{
    uint8_t buf[256];
    size_t len = 0;
    small_batch(buf, sizeof(buf), &len);
    if (test_cur_failed_) {
        return;
    }
    struct sl_batch_header h;
    CHECK_EQ(sl_batch_validate(buf, len, len, &h), SL_OK);
    /* The stamp check covers [0,28), it sits at [28,32), the body checksum at
     * [32,40) covers [40,len): every single bit is covered by something. */
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            buf[i] ^= (uint8_t)(1u << bit);
            int rc = sl_batch_validate(buf, len, SL_BATCH_BYTES_MAX, &h);
            buf[i] ^= (uint8_t)(1u << bit);
            if (rc != SL_ECORRUPT) {
                fprintf(stderr, "  byte %zu bit %d: validate -> %s\n", i, bit, sl_errname(rc));
            }
            CHECK_EQ(rc, SL_ECORRUPT);
        }
    }
    CHECK_EQ(sl_batch_validate(buf, len, len, &h), SL_OK);
}

TEST(truncated_input_is_eagain)
{
    uint8_t buf[256];
    size_t len = 0;
    small_batch(buf, sizeof(buf), &len);
    if (test_cur_failed_) {
        return;
    }
    struct sl_batch_header h;
    for (size_t avail = 0; avail < len; avail++) {
        /* Exactly `avail` bytes on the heap, so ASan sees any over-read. */
        uint8_t *p = malloc(avail ? avail : 1);
        CHECK(p != NULL);
        memcpy(p, buf, avail);
        int rc = sl_batch_validate(p, avail, SL_BATCH_BYTES_MAX, &h);
        int prc = sl_batch_peek(p, avail, &h);
        uint32_t hl = h.length;
        free(p);
        CHECK_EQ(rc, SL_EAGAIN);
        if (avail < SL_BATCH_HEADER_BYTES) {
            CHECK_EQ(prc, SL_EAGAIN);
        } else {
            CHECK_EQ(prc, SL_OK); /* the header is enough to learn the length */
            CHECK_EQ(hl, len);
        }
    }
}

TEST(declared_length_over_max_is_toobig)
{
    uint8_t buf[256];
    size_t len = 0;
    small_batch(buf, sizeof(buf), &len);
    if (test_cur_failed_) {
        return;
    }
    struct sl_batch_header h;
    CHECK_EQ(sl_batch_validate(buf, len, len - 1, &h), SL_ETOOBIG);
    CHECK_EQ(sl_batch_validate(buf, len, len, &h), SL_OK);
    /* A header (with a valid stamp check) declaring 10 MiB: over a 1 MiB max
     * it is too big; under the hard max it just needs more bytes. */
    put32(buf + H_LENGTH, 10u << 20);
    sl_batch_stamp(buf, 123456789, 1700000000000ull);
    CHECK_EQ(sl_batch_validate(buf, len, 1u << 20, &h), SL_ETOOBIG);
    CHECK_EQ(sl_batch_validate(buf, len, SL_BATCH_BYTES_MAX, &h), SL_EAGAIN);
    /* Over the hard ceiling, or not even a header: corrupt. */
    put32(buf + H_LENGTH, SL_BATCH_BYTES_MAX + 1);
    sl_batch_stamp(buf, 123456789, 1700000000000ull);
    CHECK_EQ(sl_batch_peek(buf, len, &h), SL_ECORRUPT);
    CHECK_EQ(sl_batch_validate(buf, len, UINT32_MAX, &h), SL_ECORRUPT);
    put32(buf + H_LENGTH, SL_BATCH_HEADER_BYTES);
    sl_batch_stamp(buf, 123456789, 1700000000000ull);
    CHECK_EQ(sl_batch_validate(buf, len, SL_BATCH_BYTES_MAX, &h), SL_ECORRUPT);
}

/* Edits one header byte below the checksum, reseals, expects validate to
 * refuse the well-formed but invalid batch. */
static void expect_header_edit_refused(size_t off, uint8_t val)
{
    uint8_t buf[256];
    size_t len = 0;
    small_batch(buf, sizeof(buf), &len);
    if (test_cur_failed_) {
        return;
    }
    buf[off] = val;
    reseal(buf);
    struct sl_batch_header h;
    int rc = sl_batch_validate(buf, len, len, &h);
    if (rc != SL_ECORRUPT) {
        fprintf(stderr, "  header byte %zu = 0x%02x: %s\n", off, val, sl_errname(rc));
    }
    CHECK_EQ(rc, SL_ECORRUPT);
}

TEST(header_field_checks)
{
    uint8_t buf[256];
    size_t len = 0;
    small_batch(buf, sizeof(buf), &len);
    if (test_cur_failed_) {
        return;
    }
    struct sl_batch_header h;
    reseal(buf); /* resealing an intact batch keeps it valid */
    CHECK_EQ(sl_batch_validate(buf, len, len, &h), SL_OK);
    expect_header_edit_refused(H_VERSION, 2);       /* unknown version */
    expect_header_edit_refused(H_FLAGS, 0x08);      /* unknown flag bit */
    expect_header_edit_refused(H_FLAGS, 0x80);      /* unknown flag bit */
    expect_header_edit_refused(H_FLAGS, 0x03);      /* codec 3 */
    expect_header_edit_refused(H_RESERVED1, 1);     /* reserved */
    expect_header_edit_refused(H_RESERVED2 + 3, 1); /* reserved */
    expect_header_edit_refused(H_COUNT, 0);         /* zero records (count was 3) */
    expect_header_edit_refused(H_RECORDS_LEN, 1);   /* records_len != stored (NONE) */
}

/* A control batch (the broker's own state, docs/FORMAT.md): validates, peeks as control,
 * yields no record to sl_batch_iter_init (every reader skips it) and its records to
 * sl_batch_iter_init_all; the flag is under the body checksum. */
TEST(control_batch_hidden_from_readers)
{
    uint8_t buf[256];
    size_t len = 0;
    small_batch(buf, sizeof(buf), &len);
    if (test_cur_failed_) {
        return;
    }
    struct sl_batch_header h;
    CHECK_EQ(sl_batch_validate(buf, len, len, &h), SL_OK);
    CHECK(!h.control);
    sl_batch_mark_control(buf, len);
    CHECK_EQ(sl_batch_validate(buf, len, len, &h), SL_OK);
    CHECK(h.control);
    CHECK_EQ(h.record_count, 3);
    struct sl_batch_iter it;
    struct sl_record_view rv;
    CHECK_EQ(sl_batch_iter_init(&it, buf, &h, NULL, NULL, 0), SL_OK);
    CHECK_EQ(sl_batch_iter_next(&it, &rv), SL_ENOTFOUND);
    CHECK_EQ(sl_batch_iter_init_all(&it, buf, &h, NULL, NULL, 0), SL_OK);
    uint32_t n = 0;
    while (sl_batch_iter_next(&it, &rv) == SL_OK) {
        n++;
    }
    CHECK_EQ(n, 3);
    buf[H_FLAGS] &= (uint8_t)~SL_BATCH_FLAG_CONTROL; /* the flag is checksummed */
    CHECK_EQ(sl_batch_validate(buf, len, len, &h), SL_ECORRUPT);
}

/* The leader epoch (bytes 24..28): 0 from the builder and sl_batch_stamp (a
 * single node, and every log written before cluster mode), any 32-bit value
 * from sl_batch_stamp_epoch, read back by peek; the body checksum is not
 * touched (stamping stays O(header)). */
TEST(leader_epoch_stamped_and_read)
{
    uint8_t buf[4096];
    size_t len = 0;
    small_batch(buf, sizeof(buf), &len);
    struct sl_batch_header h;
    CHECK_EQ(sl_batch_validate(buf, len, len, &h), SL_OK);
    CHECK_EQ(h.leader_epoch, 0);
    uint64_t body_sum = get64(buf + H_CHECKSUM);
    const uint32_t epochs[] = {1, 7, 0x7fffffffu, 0x80000000u, UINT32_MAX, 0};
    for (size_t i = 0; i < sizeof(epochs) / sizeof(epochs[0]); i++) {
        sl_batch_stamp_epoch(buf, 100 + i, 1700000000000ull + i, epochs[i]);
        CHECK_EQ(sl_batch_validate(buf, len, len, &h), SL_OK);
        CHECK_EQ(h.leader_epoch, epochs[i]);
        CHECK_EQ(h.base_seq, 100 + i);
        CHECK_EQ(get32(buf + H_LEADER_EPOCH), epochs[i]);
        CHECK(get64(buf + H_CHECKSUM) == body_sum);
    }
    /* the plain stamp writes epoch 0 whatever was there (a producer's bytes
     * never reach the disk as an epoch) */
    sl_batch_stamp_epoch(buf, 5, 6, 9);
    sl_batch_stamp(buf, 5, 6);
    CHECK_EQ(sl_batch_peek(buf, len, &h), SL_OK);
    CHECK_EQ(h.leader_epoch, 0);
    /* every bit of the field is under the stamp check */
    for (int bit = 0; bit < 32; bit++) {
        sl_batch_stamp_epoch(buf, 5, 6, 3);
        buf[H_LEADER_EPOCH + bit / 8] ^= (uint8_t)(1u << (bit % 8));
        CHECK_EQ(sl_batch_peek(buf, len, &h), SL_ECORRUPT);
    }
}

TEST(header_more_invalid_fields)
{
    uint8_t buf[256];
    size_t len = 0;
    small_batch(buf, sizeof(buf), &len);
    if (test_cur_failed_) {
        return;
    }
    put64(buf + H_LAST_TS, 99);
    reseal(buf);
    struct sl_batch_header h;
    CHECK_EQ(sl_batch_validate(buf, len, len, &h), SL_ECORRUPT);
    /* bytes 24..28 (the leader epoch, reserved before cluster mode) are
     * covered by the stamp check: one flipped bit there is refused */
    small_batch(buf, sizeof(buf), &len);
    buf[H_LEADER_EPOCH] ^= 1;
    CHECK_EQ(sl_batch_peek(buf, len, &h), SL_ECORRUPT);
    /* wrong magic */
    small_batch(buf, sizeof(buf), &len);
    buf[H_MAGIC] ^= 0x20;
    reseal(buf);
    CHECK_EQ(sl_batch_peek(buf, len, &h), SL_ECORRUPT);
}

/* ---- malicious records sections ---------------------------------------- */

/* Builds an exactly-sized heap batch around a hand-written records section
 * (codec NONE, count records, timestamps first_ts..last_ts) with correct
 * checksums. Returns NULL on allocation failure. */
static uint8_t *craft(const uint8_t *sec, size_t sec_len, uint32_t count, uint64_t first_ts,
                      uint64_t last_ts)
{
    size_t len = SL_BATCH_HEADER_BYTES + sec_len;
    uint8_t *p = calloc(1, len);
    if (p == NULL) {
        return NULL;
    }
    put32(p + H_MAGIC, SL_BATCH_MAGIC);
    put32(p + H_LENGTH, (uint32_t)len);
    p[H_VERSION] = SL_BATCH_VERSION;
    put32(p + H_COUNT, count);
    put64(p + H_FIRST_TS, first_ts);
    put64(p + H_LAST_TS, last_ts);
    put32(p + H_RECORDS_LEN, (uint32_t)sec_len);
    memcpy(p + SL_BATCH_HEADER_BYTES, sec, sec_len);
    reseal(p);
    return p;
}

/* Runs the iterator to its end; returns the first non-OK result and the
 * number of records yielded. Bounded: a count mismatch cannot loop. */
static int drain_z(const uint8_t *batch, uint32_t *yielded, struct sl_zctx *z, uint8_t *scratch,
                   size_t scratch_cap)
{
    struct sl_batch_header h;
    int rc = sl_batch_validate(batch, get32(batch + H_LENGTH), SL_BATCH_BYTES_MAX, &h);
    if (rc != SL_OK) {
        return 1000 + rc; /* the crafted batch itself must validate */
    }
    struct sl_batch_iter it;
    rc = sl_batch_iter_init(&it, batch, &h, z, scratch, scratch_cap);
    *yielded = 0;
    for (uint32_t i = 0; rc == SL_OK && i <= h.record_count + 2; i++) {
        struct sl_record_view v;
        rc = sl_batch_iter_next(&it, &v);
        if (rc == SL_OK) {
            (*yielded)++;
            /* views stay inside the section */
            const uint8_t *lo = batch + SL_BATCH_HEADER_BYTES, *hi = batch + h.length;
            if (h.codec == SL_BATCH_CODEC_ZSTD) {
                lo = scratch;
                hi = scratch + h.records_len;
            }
            if (v.key < lo || v.key + v.key_len > hi || v.value < lo ||
                v.value + v.value_len > hi) {
                return 2000;
            }
        }
    }
    return rc;
}

static int drain(const uint8_t *batch, uint32_t *yielded)
{
    return drain_z(batch, yielded, NULL, NULL, 0);
}

struct evil {
    const char *name;
    uint8_t sec[48];
    size_t sec_len;
    uint32_t count;
    uint64_t span; /* last_ts - first_ts */
    uint32_t good; /* records that may be yielded before the damage */
};

TEST(iterator_rejects_malicious_sections)
{
    /* Record: varint rest_len | ts_delta | key_len | key | value_len | value |
     * attr_count | attrs. A good one: {6, 0, 1,'k', 1,'v', 0}. */
    static const struct evil cases[] = {
        {"varint overrun at end", {0x80, 0x80}, 2, 1, 0, 0},
        {"overlong varint (6 bytes)", {0x80, 0x80, 0x80, 0x80, 0x80, 0x00}, 6, 1, 0, 0},
        {"u32 varint > 2^32", {0xff, 0xff, 0xff, 0xff, 0x7f, 0}, 6, 1, 0, 0},
        {"rest_len past end", {0x7f, 0, 0, 0, 0}, 5, 1, 0, 0},
        {"key_len past body", {4, 0, 50, 'k', 0}, 5, 1, 0, 0},
        {"value_len past body", {6, 0, 1, 'k', 9, 'v', 0}, 7, 1, 0, 0},
        {"ts varint overrun in body", {1, 0x80}, 2, 1, 0, 0},
        {"ts delta beyond span", {6, 5, 1, 'k', 1, 'v', 0}, 7, 1, 4, 0},
        {"attr_count > 32", {6, 0, 1, 'k', 1, 'v', 33}, 7, 1, 0, 0},
        {"attr_count past body", {6, 0, 1, 'k', 1, 'v', 2}, 7, 1, 0, 0},
        {"attr value past body", {9, 0, 1, 'k', 1, 'v', 1, 1, 'a', 5}, 10, 1, 0, 0},
        {"attr key past body", {8, 0, 1, 'k', 1, 'v', 1, 3, 'a'}, 9, 1, 0, 0},
        {"trailing bytes in body", {8, 0, 1, 'k', 1, 'v', 0, 0xAA, 0xBB}, 9, 1, 0, 0},
        {"missing attr_count", {5, 0, 1, 'k', 1, 'v'}, 6, 1, 0, 0},
        {"count 2, one record", {6, 0, 1, 'k', 1, 'v', 0}, 7, 2, 0, 1},
        {"count 1, two records", {6, 0, 1, 'k', 1, 'v', 0, 6, 0, 1, 'k', 1, 'v', 0}, 14, 1, 0, 1},
        {"count 1, trailing byte", {6, 0, 1, 'k', 1, 'v', 0, 0}, 8, 1, 0, 1},
        {"second record truncated", {6, 0, 1, 'k', 1, 'v', 0, 6, 0, 1}, 10, 2, 0, 1},
        {"rest_len 0", {0, 6, 0, 1, 'k', 1, 'v', 0}, 8, 1, 0, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct evil *e = &cases[i];
        uint8_t *b = craft(e->sec, e->sec_len, e->count, 1000, 1000 + e->span);
        CHECK(b != NULL);
        uint32_t yielded = 0;
        int rc = drain(b, &yielded);
        free(b);
        if (rc != SL_ECORRUPT || yielded > e->good) {
            fprintf(stderr, "  case \"%s\": rc %d (%s), yielded %u\n", e->name, rc, sl_errname(rc),
                    yielded);
        }
        CHECK_EQ(rc, SL_ECORRUPT);
        CHECK(yielded <= e->good);
    }
    /* Control: the good record alone iterates fine, so the cases above fail
     * for the reason they name. */
    static const uint8_t good[] = {6, 0, 1, 'k', 1, 'v', 0};
    uint8_t *b = craft(good, sizeof(good), 1, 1000, 1000);
    CHECK(b != NULL);
    uint32_t yielded = 0;
    int rc = drain(b, &yielded);
    free(b);
    CHECK_EQ(rc, SL_ENOTFOUND);
    CHECK_EQ(yielded, 1);
}

TEST(iterator_rejects_bad_zstd_sections)
{
    struct sl_zctx *z = sl_zctx_new();
    CHECK(z != NULL);
    static struct ref_set r;
    static uint8_t buf[32768], scratch[65536], dec[32768];
    ref_set_init(&r, 1, 4);
    size_t len = 0;
    build(buf, sizeof(buf), r.recs, REF_RECORDS, SL_BATCH_CODEC_ZSTD, z, scratch, sizeof(scratch),
          &len);
    struct sl_batch_header h;
    int rcs[3] = {-1, -1, -1};
    if (!test_cur_failed_ && buf[H_FLAGS] == SL_BATCH_CODEC_ZSTD) {
        /* records_len no longer the frame's content size */
        uint32_t rl = get32(buf + H_RECORDS_LEN);
        put32(buf + H_RECORDS_LEN, rl - 1);
        reseal(buf);
        struct sl_batch_iter it;
        rcs[0] = sl_batch_validate(buf, len, len, &h) == SL_OK
                     ? sl_batch_iter_init(&it, buf, &h, z, dec, sizeof(dec))
                     : -2;
        put32(buf + H_RECORDS_LEN, rl);
        /* garbage inside the frame */
        buf[SL_BATCH_HEADER_BYTES + len / 2] ^= 0xff;
        buf[len - 2] ^= 0x55;
        reseal(buf);
        uint32_t yielded = 0;
        rcs[1] = drain_z(buf, &yielded, z, dec, sizeof(dec));
        /* not a zstd frame at all */
        memset(buf + SL_BATCH_HEADER_BYTES, 0x11, len - SL_BATCH_HEADER_BYTES);
        reseal(buf);
        rcs[2] = sl_batch_validate(buf, len, len, &h) == SL_OK
                     ? sl_batch_iter_init(&it, buf, &h, z, dec, sizeof(dec))
                     : -2;
    }
    int zstd = buf[H_FLAGS] == SL_BATCH_CODEC_ZSTD;
    sl_zctx_free(z);
    if (test_cur_failed_) {
        return;
    }
    CHECK(zstd);
    CHECK_EQ(rcs[0], SL_ECORRUPT);
    /* A damaged block may still decode (zstd frames carry no checksum here;
     * the batch checksum was resealed): the iterator must then end cleanly. */
    CHECK(rcs[1] == SL_ECORRUPT || rcs[1] == SL_ENOTFOUND);
    CHECK_EQ(rcs[2], SL_ECORRUPT);
}

/* Random mutation of a records section that is then resealed: the iterator
 * must end with SL_ENOTFOUND or SL_ECORRUPT, never crash or over-read. */
TEST(iterator_random_mutations)
{
    static struct ref_set r;
    static uint8_t buf[32768];
    ref_set_init(&r, 0, 5);
    size_t len = 0;
    /* keep it small: values of records 0..2 only */
    build(buf, sizeof(buf), r.recs, 3, SL_BATCH_CODEC_NONE, NULL, NULL, 0, &len);
    if (test_cur_failed_) {
        return;
    }
    uint64_t st = 20240601;
    uint32_t corrupt = 0, clean = 0;
    for (int round = 0; round < 3000; round++) {
        uint8_t *b = malloc(len);
        CHECK(b != NULL);
        memcpy(b, buf, len);
        int edits = 1 + (int)(rng_next(&st) % 4);
        for (int e = 0; e < edits; e++) {
            /* bias towards the first bytes, where the framing varints are */
            size_t span = (rng_next(&st) & 1) ? 16 : len - SL_BATCH_HEADER_BYTES;
            size_t off = SL_BATCH_HEADER_BYTES + rng_next(&st) % span;
            b[off] = (uint8_t)rng_next(&st);
        }
        reseal(b);
        uint32_t yielded = 0;
        int rc = drain(b, &yielded);
        free(b);
        if (rc != SL_ECORRUPT && rc != SL_ENOTFOUND) {
            fprintf(stderr, "  round %d: rc %d\n", round, rc);
        }
        CHECK(rc == SL_ECORRUPT || rc == SL_ENOTFOUND);
        if (rc == SL_ECORRUPT) {
            corrupt++;
        } else {
            clean++;
        }
    }
    CHECK(corrupt > 0); /* the mutations really hit the framing */
    (void)clean;
}

int main(void)
{
    RUN(round_trip_uncompressed);
    RUN(round_trip_zstd);
    RUN(zstd_not_smaller_stays_uncompressed);
    RUN(timestamps_clamped_monotonic);
    RUN(builder_limits);
    RUN(builder_record_count_limit);
    RUN(every_bit_flip_detected);
    RUN(truncated_input_is_eagain);
    RUN(declared_length_over_max_is_toobig);
    RUN(header_field_checks);
    RUN(control_batch_hidden_from_readers);
    RUN(leader_epoch_stamped_and_read);
    RUN(header_more_invalid_fields);
    RUN(iterator_rejects_malicious_sections);
    RUN(iterator_rejects_bad_zstd_sections);
    RUN(iterator_random_mutations);
    TEST_END();
}
