/* batch.c - encode, validate and iterate record batches.
 *
 * Header (88 bytes, little-endian; byte-by-byte in docs/FORMAT.md):
 *   0 magic u32 | 4 length u32 | 8 base_seq u64 | 16 append_time_ms u64 |
 *  24 leader_epoch u32 | 28 stamp_check u32 = low32(XXH3-64 of [0,28) ++ [44,48)) |
 *  32 checksum u64 = XXH3-64 of [40,length) | 40 version u8 | 41 flags u8 |
 *  42 reserved u16 | 44 record_count u32 | 48 first_ts_ms u64 | 56 last_ts_ms u64 |
 *  64 producer_id u64 | 72 producer_seq u64 | 80 records_len u32 | 84 reserved u32
 * Record (in the records section):
 *   varint rest_len | varint ts_delta | varint key_len | key | varint value_len |
 *   value | varint attr_count | attr_count x (varint klen | k | varint vlen | v)
 *
 * Invariants: the decoder never trusts a declared length; every varint and
 * every slice is bounds-checked against the section end; decompression is
 * capped by the caller's scratch capacity and must produce exactly
 * records_len bytes.
 */
#include "storage/batch.h"

#include "common/assert.h"
#include "common/bytes.h"
#include "common/checksum.h"
#include "common/compress.h"
#include "common/error.h"

#include <string.h>

_Static_assert(SL_BATCH_HEADER_BYTES == 88, "header size is part of the on-disk format");
_Static_assert(SL_BATCH_BYTES_MAX < UINT32_MAX / 2, "batch lengths must not overflow a u32");
_Static_assert(SL_BATCH_HEADER_BYTES % 8 == 0, "batches stay 8-byte aligned in buffers");

enum {
    OFF_MAGIC = 0,
    OFF_LENGTH = 4,
    OFF_BASE_SEQ = 8,
    OFF_APPEND_TIME = 16,
    OFF_LEADER_EPOCH = 24,
    OFF_STAMP = 28,
    OFF_CHECKSUM = 32,
    OFF_VERSION = 40,
    OFF_FLAGS = 41,
    OFF_RESERVED1 = 42,
    OFF_COUNT = 44,
    OFF_FIRST_TS = 48,
    OFF_LAST_TS = 56,
    OFF_PRODUCER_ID = 64,
    OFF_PRODUCER_SEQ = 72,
    OFF_RECORDS_LEN = 80,
    OFF_RESERVED2 = 84,
};
_Static_assert(OFF_BASE_SEQ == SL_BATCH_OFF_BASE_SEQ, "public offset");
_Static_assert(OFF_APPEND_TIME == SL_BATCH_OFF_APPEND_TIME, "public offset");
_Static_assert(OFF_LEADER_EPOCH == SL_BATCH_OFF_LEADER_EPOCH, "public offset");
_Static_assert(OFF_LEADER_EPOCH + 4 == OFF_STAMP, "the stamp check covers the leader epoch");
_Static_assert(OFF_VERSION == SL_BATCH_CHECKSUM_FROM, "checksum starts after itself");
_Static_assert(OFF_RESERVED2 + 4 == SL_BATCH_HEADER_BYTES, "fields fill the header");

/* Varints: LEB128, at most 10 bytes for a u64; we use at most u32 values. */
static size_t varint_put(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

static size_t varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/* Reads a varint of at most 5 bytes (value < 2^32) or 10 (u64). Returns 0 on
 * overrun or overlong encoding. */
static int varint_get(const uint8_t **pp, const uint8_t *end, uint64_t *out, unsigned max_bytes)
{
    const uint8_t *p = *pp;
    uint64_t v = 0;
    for (unsigned i = 0; i < max_bytes; i++) {
        if (p >= end) {
            return 0;
        }
        uint8_t b = *p++;
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if ((b & 0x80) == 0) {
            *pp = p;
            *out = v;
            return 1;
        }
    }
    return 0;
}

static int get_u32(const uint8_t **pp, const uint8_t *end, uint32_t *out)
{
    uint64_t v;
    if (!varint_get(pp, end, &v, 5) || v > UINT32_MAX) {
        return 0;
    }
    *out = (uint32_t)v;
    return 1;
}

/* Takes a length-prefixed slice no longer than `max`. */
static int get_slice(const uint8_t **pp, const uint8_t *end, uint32_t max, const uint8_t **s,
                     uint32_t *len)
{
    if (!get_u32(pp, end, len) || *len > max || (size_t)(end - *pp) < *len) {
        return 0;
    }
    *s = *pp;
    *pp += *len;
    return 1;
}

void sl_batch_builder_init(struct sl_batch_builder *b, void *buf, size_t cap)
{
    SL_ASSERT(cap > SL_BATCH_HEADER_BYTES);
    b->buf = buf;
    b->cap = cap < SL_BATCH_BYTES_MAX ? cap : SL_BATCH_BYTES_MAX;
    b->len = SL_BATCH_HEADER_BYTES;
    b->count = 0;
    b->ts_min = UINT64_MAX;
    b->ts_max = 0;
}

static size_t record_body_len(const struct sl_record *r, uint64_t ts_delta)
{
    size_t n = varint_len(ts_delta) + varint_len(r->key_len) + r->key_len +
               varint_len(r->value_len) + r->value_len + varint_len(r->attr_count);
    for (uint32_t i = 0; i < r->attr_count; i++) {
        n += varint_len(r->attrs[i].key_len) + r->attrs[i].key_len +
             varint_len(r->attrs[i].value_len) + r->attrs[i].value_len;
    }
    return n;
}

size_t sl_batch_record_bytes(const struct sl_record *rec, uint64_t ts_delta_ms)
{
    size_t body = record_body_len(rec, ts_delta_ms);
    return varint_len(body) + body;
}

static int record_check_limits(const struct sl_record *r)
{
    if (r->key_len > SL_RECORD_KEY_MAX || r->attr_count > SL_RECORD_ATTRS_MAX ||
        r->value_len > SL_BATCH_BYTES_MAX) {
        return SL_ETOOBIG;
    }
    for (uint32_t i = 0; i < r->attr_count; i++) {
        if (r->attrs[i].key_len > SL_RECORD_ATTR_KEY_MAX ||
            r->attrs[i].value_len > SL_RECORD_ATTR_VALUE_MAX) {
            return SL_ETOOBIG;
        }
    }
    return SL_OK;
}

/* Timestamps are stored as deltas from the batch's first_ts (the minimum).
 * Records are added before the minimum is known, so the builder stores deltas
 * against the first record's time and requires later records to be no
 * earlier (producers stamp in order; a clock step backwards is clamped). */
int sl_batch_builder_add(struct sl_batch_builder *b, const struct sl_record *r)
{
    int rc = record_check_limits(r);
    if (rc != SL_OK) {
        return rc;
    }
    if (b->count >= SL_BATCH_RECORDS_MAX) {
        return SL_ELIMIT;
    }
    uint64_t ts = r->timestamp_ms;
    if (b->count == 0) {
        b->ts_min = ts;
        b->ts_max = ts;
    } else if (ts < b->ts_max) {
        ts = b->ts_max; /* clamp: keep deltas non-negative and monotonic */
    }
    uint64_t delta = ts - b->ts_min;
    size_t body = record_body_len(r, delta);
    size_t need = varint_len(body) + body;
    if (need > b->cap - b->len) {
        return SL_ETOOBIG;
    }
    uint8_t *p = b->buf + b->len;
    p += varint_put(p, body);
    p += varint_put(p, delta);
    p += varint_put(p, r->key_len);
    if (r->key_len > 0) {
        memcpy(p, r->key, r->key_len);
        p += r->key_len;
    }
    p += varint_put(p, r->value_len);
    if (r->value_len > 0) {
        memcpy(p, r->value, r->value_len);
        p += r->value_len;
    }
    p += varint_put(p, r->attr_count);
    for (uint32_t i = 0; i < r->attr_count; i++) {
        p += varint_put(p, r->attrs[i].key_len);
        memcpy(p, r->attrs[i].key, r->attrs[i].key_len);
        p += r->attrs[i].key_len;
        p += varint_put(p, r->attrs[i].value_len);
        memcpy(p, r->attrs[i].value, r->attrs[i].value_len);
        p += r->attrs[i].value_len;
    }
    SL_ASSERT((size_t)(p - b->buf) == b->len + need);
    b->len += need;
    b->count++;
    b->ts_max = ts;
    return SL_OK;
}

/* The stamp check covers [0, 28) and record_count: everything a reader
 * trusts to skip a batch on its header alone (length, base_seq, count,
 * append time) is checked before the body is read. */
static uint32_t stamp_check(const uint8_t *p)
{
    uint8_t tmp[OFF_STAMP + 4];
    memcpy(tmp, p, OFF_STAMP);
    memcpy(tmp + OFF_STAMP, p + OFF_COUNT, 4);
    return sl_checksum32(tmp, sizeof(tmp));
}

static void write_stamp_check(uint8_t *p)
{
    sl_put_u32(p + OFF_STAMP, stamp_check(p));
}

int sl_batch_builder_finish(struct sl_batch_builder *b, unsigned codec, int level,
                            struct sl_zctx *z, void *scratch, size_t scratch_cap,
                            uint64_t producer_id, uint64_t producer_seq, size_t *out_len)
{
    if (b->count == 0) {
        return SL_EINVAL;
    }
    uint8_t *p = b->buf;
    size_t records_len = b->len - SL_BATCH_HEADER_BYTES;
    uint8_t flags = SL_BATCH_CODEC_NONE;
    if (codec == SL_BATCH_CODEC_ZSTD) {
        SL_ASSERT(z != NULL && scratch != NULL);
        size_t clen = 0;
        int rc = sl_compress(z, level, scratch, scratch_cap, &clen, p + SL_BATCH_HEADER_BYTES,
                             records_len);
        if (rc == SL_OK && clen < records_len) {
            memcpy(p + SL_BATCH_HEADER_BYTES, scratch, clen);
            b->len = SL_BATCH_HEADER_BYTES + clen;
            flags = SL_BATCH_CODEC_ZSTD;
        } else if (rc != SL_OK && rc != SL_ETOOBIG) {
            return rc;
        }
    } else if (codec != SL_BATCH_CODEC_NONE) {
        return SL_EINVAL;
    }
    memset(p, 0, SL_BATCH_HEADER_BYTES);
    sl_put_u32(p + OFF_MAGIC, SL_BATCH_MAGIC);
    sl_put_u32(p + OFF_LENGTH, (uint32_t)b->len);
    p[OFF_VERSION] = SL_BATCH_VERSION;
    p[OFF_FLAGS] = flags;
    sl_put_u32(p + OFF_COUNT, b->count);
    sl_put_u64(p + OFF_FIRST_TS, b->ts_min);
    sl_put_u64(p + OFF_LAST_TS, b->ts_max);
    sl_put_u64(p + OFF_PRODUCER_ID, producer_id);
    sl_put_u64(p + OFF_PRODUCER_SEQ, producer_seq);
    sl_put_u32(p + OFF_RECORDS_LEN, (uint32_t)records_len);
    sl_put_u64(p + OFF_CHECKSUM, sl_checksum64(p + OFF_VERSION, b->len - OFF_VERSION));
    write_stamp_check(p);
    *out_len = b->len;
    return SL_OK;
}

void sl_batch_producer_of(const void *buf, uint64_t *producer_id, uint64_t *producer_seq)
{
    const uint8_t *p = buf;
    *producer_id = sl_get_u64(p + OFF_PRODUCER_ID);
    *producer_seq = sl_get_u64(p + OFF_PRODUCER_SEQ);
}

void sl_batch_mark_control(void *buf, size_t len)
{
    uint8_t *p = buf;
    SL_ASSERT(len > SL_BATCH_HEADER_BYTES && sl_get_u32(p + OFF_LENGTH) == len);
    p[OFF_FLAGS] |= SL_BATCH_FLAG_CONTROL;
    sl_put_u64(p + OFF_CHECKSUM, sl_checksum64(p + OFF_VERSION, len - OFF_VERSION));
}

void sl_batch_restamp_producer(void *buf, size_t len, uint64_t producer_id,
                               uint64_t producer_seq)
{
    uint8_t *p = buf;
    SL_ASSERT(len >= SL_BATCH_HEADER_BYTES && sl_get_u32(p + OFF_LENGTH) == len);
    sl_put_u64(p + OFF_PRODUCER_ID, producer_id);
    sl_put_u64(p + OFF_PRODUCER_SEQ, producer_seq);
    sl_put_u64(p + OFF_CHECKSUM, sl_checksum64(p + OFF_VERSION, len - OFF_VERSION));
    write_stamp_check(p);
}

int sl_batch_peek(const void *buf, size_t avail, struct sl_batch_header *h)
{
    const uint8_t *p = buf;
    if (avail < SL_BATCH_HEADER_BYTES) {
        return SL_EAGAIN;
    }
    if (sl_get_u32(p + OFF_MAGIC) != SL_BATCH_MAGIC ||
        sl_get_u32(p + OFF_STAMP) != stamp_check(p)) {
        return SL_ECORRUPT;
    }
    h->length = sl_get_u32(p + OFF_LENGTH);
    h->base_seq = sl_get_u64(p + OFF_BASE_SEQ);
    h->append_time_ms = sl_get_u64(p + OFF_APPEND_TIME);
    /* Any value: bytes 24..28 were reserved (0) before cluster mode, so a log
     * written by a single node reads as epoch 0. A producer's value never
     * reaches the disk: the broker stamps the field (sl_batch_stamp*). */
    h->leader_epoch = sl_get_u32(p + OFF_LEADER_EPOCH);
    h->checksum = sl_get_u64(p + OFF_CHECKSUM);
    h->codec = p[OFF_FLAGS] & SL_BATCH_CODEC_MASK;
    h->control = (p[OFF_FLAGS] & SL_BATCH_FLAG_CONTROL) != 0;
    h->record_count = sl_get_u32(p + OFF_COUNT);
    h->first_ts_ms = sl_get_u64(p + OFF_FIRST_TS);
    h->last_ts_ms = sl_get_u64(p + OFF_LAST_TS);
    h->producer_id = sl_get_u64(p + OFF_PRODUCER_ID);
    h->producer_seq = sl_get_u64(p + OFF_PRODUCER_SEQ);
    h->records_len = sl_get_u32(p + OFF_RECORDS_LEN);
    /* The fields below the checksum are re-checked after verify too; here
     * they bound what a scanner may trust (the length) before reading more. */
    if (h->length <= SL_BATCH_HEADER_BYTES || h->length > SL_BATCH_BYTES_MAX ||
        h->record_count == 0 || h->record_count > SL_BATCH_RECORDS_MAX) {
        return SL_ECORRUPT;
    }
    return SL_OK;
}

/* The header fields under the body checksum, checked once it matched. */
static int verify_fields(const uint8_t *p, const struct sl_batch_header *h)
{
    /* Covered by the checksum, so these reject well-formed but invalid
     * batches (e.g. a buggy or hostile producer), not disk damage. */
    if (p[OFF_VERSION] != SL_BATCH_VERSION ||
        (p[OFF_FLAGS] & ~(SL_BATCH_CODEC_MASK | SL_BATCH_FLAG_CONTROL)) != 0 ||
        h->codec > SL_BATCH_CODEC_ZSTD || p[OFF_RESERVED1] != 0 || p[OFF_RESERVED1 + 1] != 0 ||
        sl_get_u32(p + OFF_RESERVED2) != 0 || h->record_count == 0 ||
        h->record_count > SL_BATCH_RECORDS_MAX || h->last_ts_ms < h->first_ts_ms ||
        h->records_len == 0 || h->records_len > SL_BATCH_BYTES_MAX) {
        return SL_ECORRUPT;
    }
    if (h->codec == SL_BATCH_CODEC_NONE && h->records_len != h->length - SL_BATCH_HEADER_BYTES) {
        return SL_ECORRUPT;
    }
    return SL_OK;
}

int sl_batch_check_fields(const void *buf, const struct sl_batch_header *h)
{
    return verify_fields(buf, h);
}

int sl_batch_verify(const void *buf, const struct sl_batch_header *h)
{
    const uint8_t *p = buf;
    if (sl_checksum64(p + OFF_VERSION, h->length - OFF_VERSION) != h->checksum) {
        return SL_ECORRUPT;
    }
    return verify_fields(p, h);
}

int sl_batch_copy_verify(void *dst, const void *src, const struct sl_batch_header *h)
{
    /* 32 KiB: well inside L2, so the hash reads what the copy just wrote. */
    enum { CHUNK = 32 << 10 };
    uint8_t *d = dst;
    const uint8_t *s = src;
    if (h->length <= CHUNK) {
        /* Small: one copy, one one-shot hash (no streaming state to set up). */
        memcpy(d, s, h->length);
        if (sl_checksum64(d + OFF_VERSION, h->length - OFF_VERSION) != h->checksum) {
            return SL_ECORRUPT;
        }
        return verify_fields(d, h);
    }
    memcpy(d, s, OFF_VERSION);
    struct sl_checksum_state st;
    sl_checksum_init(&st);
    for (size_t off = OFF_VERSION; off < h->length; off += CHUNK) {
        size_t n = h->length - off < CHUNK ? h->length - off : CHUNK;
        memcpy(d + off, s + off, n);
        sl_checksum_update(&st, d + off, n);
    }
    if (sl_checksum_final(&st) != h->checksum) {
        return SL_ECORRUPT;
    }
    return verify_fields(d, h);
}

int sl_batch_validate(const void *buf, size_t avail, size_t max_len, struct sl_batch_header *h)
{
    int rc = sl_batch_peek(buf, avail, h);
    if (rc != SL_OK) {
        return rc;
    }
    if (h->length > max_len) {
        return SL_ETOOBIG;
    }
    if (h->length > avail) {
        return SL_EAGAIN;
    }
    return sl_batch_verify(buf, h);
}

int sl_batch_rebuild_without(const struct sl_batch_header *h, const uint8_t *records,
                             const uint8_t *drop, uint8_t *dst, size_t dst_cap, size_t *out_len)
{
    if (dst_cap < SL_BATCH_HEADER_BYTES + (size_t)h->records_len) {
        return SL_ETOOBIG;
    }
    const uint8_t *p = records, *end = records + h->records_len;
    uint8_t *o = dst + SL_BATCH_HEADER_BYTES;
    uint32_t kept = 0;
    for (uint32_t i = 0; i < h->record_count; i++) {
        const uint8_t *start = p;
        uint32_t body;
        if (!get_u32(&p, end, &body) || (size_t)(end - p) < body) {
            return SL_ECORRUPT;
        }
        p += body;
        if (!drop[i]) {
            memcpy(o, start, (size_t)(p - start));
            o += p - start;
            kept++;
        }
    }
    if (kept == 0) {
        return SL_EINVAL;
    }
    size_t len = (size_t)(o - dst);
    memset(dst, 0, SL_BATCH_HEADER_BYTES);
    sl_put_u32(dst + OFF_MAGIC, SL_BATCH_MAGIC);
    sl_put_u32(dst + OFF_LENGTH, (uint32_t)len);
    dst[OFF_VERSION] = SL_BATCH_VERSION;
    dst[OFF_FLAGS] = SL_BATCH_CODEC_NONE;
    sl_put_u32(dst + OFF_COUNT, kept);
    sl_put_u64(dst + OFF_FIRST_TS, h->first_ts_ms);
    sl_put_u64(dst + OFF_LAST_TS, h->last_ts_ms);
    sl_put_u64(dst + OFF_PRODUCER_ID, h->producer_id);
    sl_put_u64(dst + OFF_PRODUCER_SEQ, h->producer_seq);
    sl_put_u32(dst + OFF_RECORDS_LEN, (uint32_t)(len - SL_BATCH_HEADER_BYTES));
    sl_put_u64(dst + OFF_CHECKSUM, sl_checksum64(dst + OFF_VERSION, len - OFF_VERSION));
    write_stamp_check(dst);
    *out_len = len;
    return SL_OK;
}

void sl_batch_stamp_epoch(void *buf, uint64_t base_seq, uint64_t append_time_ms,
                          uint32_t leader_epoch)
{
    uint8_t *p = buf;
    sl_put_u64(p + OFF_BASE_SEQ, base_seq);
    sl_put_u64(p + OFF_APPEND_TIME, append_time_ms);
    sl_put_u32(p + OFF_LEADER_EPOCH, leader_epoch);
    write_stamp_check(p);
    SL_ASSERT(sl_get_u32(p + OFF_STAMP) == stamp_check(p));
}

void sl_batch_stamp(void *buf, uint64_t base_seq, uint64_t append_time_ms)
{
    sl_batch_stamp_epoch(buf, base_seq, append_time_ms, 0);
}

int sl_batch_iter_init(struct sl_batch_iter *it, const void *batch, const struct sl_batch_header *h,
                       struct sl_zctx *z, void *scratch, size_t scratch_cap)
{
    if (h->control) {
        /* nothing to decompress or read: the iteration is empty and consumed exactly */
        const uint8_t *end = (const uint8_t *)batch + h->length;
        *it = (struct sl_batch_iter){.p = end, .end = end, .remaining = 0, .seq = h->base_seq,
                                     .ts_base = h->first_ts_ms, .ts_span = 0};
        return SL_OK;
    }
    return sl_batch_iter_init_all(it, batch, h, z, scratch, scratch_cap);
}

int sl_batch_iter_init_all(struct sl_batch_iter *it, const void *batch,
                           const struct sl_batch_header *h, struct sl_zctx *z, void *scratch,
                           size_t scratch_cap)
{
    const uint8_t *body = (const uint8_t *)batch + SL_BATCH_HEADER_BYTES;
    size_t stored = h->length - SL_BATCH_HEADER_BYTES;
    if (h->codec == SL_BATCH_CODEC_ZSTD) {
        if (z == NULL || scratch == NULL) {
            return SL_EINVAL;
        }
        if (h->records_len > scratch_cap) {
            return SL_ETOOBIG;
        }
        int rc = sl_decompress(z, scratch, scratch_cap, h->records_len, body, stored);
        if (rc != SL_OK) {
            return rc;
        }
        body = scratch;
    }
    it->p = body;
    it->end = body + h->records_len;
    it->remaining = h->record_count;
    it->seq = h->base_seq;
    it->ts_base = h->first_ts_ms;
    it->ts_span = h->last_ts_ms - h->first_ts_ms;
    return SL_OK;
}

static int parse_attrs(const uint8_t **pp, const uint8_t *end, uint32_t count)
{
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *s;
        uint32_t n;
        if (!get_slice(pp, end, SL_RECORD_ATTR_KEY_MAX, &s, &n) ||
            !get_slice(pp, end, SL_RECORD_ATTR_VALUE_MAX, &s, &n)) {
            return 0;
        }
    }
    return 1;
}

int sl_batch_iter_next(struct sl_batch_iter *it, struct sl_record_view *rec)
{
    if (it->remaining == 0) {
        return it->p == it->end ? SL_ENOTFOUND : SL_ECORRUPT;
    }
    uint32_t body_len;
    if (!get_u32(&it->p, it->end, &body_len) || (size_t)(it->end - it->p) < body_len) {
        return SL_ECORRUPT;
    }
    const uint8_t *p = it->p;
    const uint8_t *end = p + body_len;
    uint64_t delta;
    if (!varint_get(&p, end, &delta, 10) || delta > it->ts_span ||
        !get_slice(&p, end, SL_RECORD_KEY_MAX, &rec->key, &rec->key_len) ||
        !get_slice(&p, end, SL_BATCH_BYTES_MAX, &rec->value, &rec->value_len) ||
        !get_u32(&p, end, &rec->attr_count) || rec->attr_count > SL_RECORD_ATTRS_MAX) {
        return SL_ECORRUPT;
    }
    rec->attrs = p;
    if (!parse_attrs(&p, end, rec->attr_count) || p != end) {
        return SL_ECORRUPT;
    }
    rec->attrs_len = (uint32_t)(p - rec->attrs);
    rec->timestamp_ms = it->ts_base + delta;
    rec->seq = it->seq++;
    it->remaining--;
    it->p = end;
    return SL_OK;
}

int sl_record_attr_next(const struct sl_record_view *rec, uint32_t *pos, struct sl_attr *attr)
{
    if (*pos >= rec->attrs_len) {
        return 0;
    }
    const uint8_t *p = rec->attrs + *pos;
    const uint8_t *end = rec->attrs + rec->attrs_len;
    const uint8_t *k, *v;
    uint32_t kl, vl;
    /* Validated by iter_next; a failure here is a programming error. */
    SL_ASSERT(get_slice(&p, end, SL_RECORD_ATTR_KEY_MAX, &k, &kl));
    SL_ASSERT(get_slice(&p, end, SL_RECORD_ATTR_VALUE_MAX, &v, &vl));
    attr->key = (const char *)k;
    attr->key_len = kl;
    attr->value = (const char *)v;
    attr->value_len = vl;
    *pos = (uint32_t)(p - rec->attrs);
    return 1;
}
