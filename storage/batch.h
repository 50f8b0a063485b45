/* batch.h - the record batch: the unit stored, sent and served (docs/FORMAT.md).
 *
 * A batch is a fixed 88-byte little-endian header followed by the records
 * section (varint-framed records, optionally one zstd frame). The same bytes
 * travel on the wire, sit on disk and go out in fetch responses. This module is
 * the only part of storage/ the client library links.
 */
#ifndef SL_BATCH_H
#define SL_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sl_zctx;

#define SL_BATCH_MAGIC        0x31424C53u /* "SLB1" as little-endian bytes */
#define SL_BATCH_VERSION      1u
#define SL_BATCH_HEADER_BYTES 88u
#define SL_BATCH_CODEC_NONE   0u
#define SL_BATCH_CODEC_ZSTD   1u
#define SL_BATCH_CODEC_MASK   0x03u
/* A control batch (cluster mode, docs/REPLICATION.md): written by the broker itself, its
 * records are state (consumer-group checkpoints) kept in the shard's log so that they
 * replicate with it. Readers never see its records (sl_batch_iter_init yields none); a
 * produced batch carrying the flag is refused. */
#define SL_BATCH_FLAG_CONTROL 0x04u

/* Hard ceilings (settings may be lower). A batch's stored length is a u32; we
 * keep it well below so that offsets and sums never overflow. */
#define SL_BATCH_BYTES_MAX       (64u << 20) /* stored bytes of one batch */
#define SL_BATCH_RECORDS_MAX     1000000u    /* records in one batch */
#define SL_RECORD_KEY_MAX        256u        /* partition key bytes (DESIGN 1) */
#define SL_RECORD_ATTRS_MAX      32u         /* attributes per record */
#define SL_RECORD_ATTR_KEY_MAX   128u
#define SL_RECORD_ATTR_VALUE_MAX 1024u

/* Byte offsets of the header fields (the layout is _Static_asserted in batch.c). */
#define SL_BATCH_OFF_BASE_SEQ     8u
#define SL_BATCH_OFF_APPEND_TIME  16u
#define SL_BATCH_OFF_LEADER_EPOCH 24u /* u32, under the stamp check */
#define SL_BATCH_CHECKSUM_FROM    40u /* body checksum covers [40, length) */

struct sl_batch_header {
    uint32_t length;         /* whole batch, header included */
    uint64_t base_seq;       /* stamped by the broker; outside the body checksum */
    uint64_t append_time_ms; /* stamped by the broker; outside the body checksum */
    uint32_t leader_epoch;   /* stamped by the broker: the epoch of the replica that led the
                              * shard when it appended the batch; 0 on a single node */
    uint64_t checksum;       /* XXH3-64 of [40, length) */
    uint8_t codec;           /* SL_BATCH_CODEC_* */
    bool control;            /* SL_BATCH_FLAG_CONTROL: the broker's own state, not records */
    uint32_t record_count;   /* >= 1 */
    uint64_t first_ts_ms;    /* smallest producer timestamp in the batch */
    uint64_t last_ts_ms;     /* largest producer timestamp in the batch */
    uint64_t producer_id;    /* 0 = no de-duplication */
    uint64_t producer_seq;
    uint32_t records_len; /* uncompressed length of the records section */
};

static inline uint64_t sl_batch_last_seq(const struct sl_batch_header *h)
{
    return h->base_seq + h->record_count - 1;
}

struct sl_attr {
    const char *key; /* borrowed */
    uint32_t key_len;
    const char *value; /* borrowed */
    uint32_t value_len;
};

/* One record to add to a batch; every pointer is borrowed for the call. */
struct sl_record {
    const void *key;
    uint32_t key_len;
    const void *value;
    uint32_t value_len;
    const struct sl_attr *attrs;
    uint32_t attr_count;
    uint64_t timestamp_ms; /* the producer's time */
};

/* Builds a batch in a caller-owned buffer. Records are written in place
 * after the header; no allocation. */
struct sl_batch_builder {
    uint8_t *buf; /* borrowed, capacity cap */
    size_t cap;
    size_t len; /* header + records written so far */
    uint32_t count;
    uint64_t ts_min;
    uint64_t ts_max;
};

/* `buf` (borrowed until finish) must hold at least SL_BATCH_HEADER_BYTES + 1. */
void sl_batch_builder_init(struct sl_batch_builder *b, void *buf, size_t cap);

/* Appends one record. Errors: SL_ETOOBIG (does not fit in the buffer, or a
 * key/attribute limit is exceeded), SL_ELIMIT (SL_BATCH_RECORDS_MAX). */
int sl_batch_builder_add(struct sl_batch_builder *b, const struct sl_record *rec);

/* Bytes `rec` takes in a batch's records section (uncompressed) when its timestamp is
 * `ts_delta_ms` after the batch's first: what sl_batch_builder_add consumes. Pure. */
size_t sl_batch_record_bytes(const struct sl_record *rec, uint64_t ts_delta_ms);

/* Seals the batch: optionally compresses (codec ZSTD; kept uncompressed when
 * that is not smaller), fills the header, computes the checksums. With ZSTD,
 * `scratch` (borrowed) needs sl_compress_bound(records) bytes and `z` is
 * required. The finished batch is at b->buf, *out_len bytes.
 * Errors: SL_EINVAL (no records), SL_ETOOBIG. */
int sl_batch_builder_finish(struct sl_batch_builder *b, unsigned codec, int level,
                            struct sl_zctx *z, void *scratch, size_t scratch_cap,
                            uint64_t producer_id, uint64_t producer_seq, size_t *out_len);

/* Flags a finished batch of `len` bytes as a control batch (SL_BATCH_FLAG_CONTROL) and
 * rewrites its body checksum. For the broker's own batches only. */
void sl_batch_mark_control(void *buf, size_t len);

/* Gives a finished batch of `len` bytes another producer id and sequence
 * (a producer that gave an earlier batch up resends the ones behind it under
 * a new id): the fields, the body checksum and the stamp check are
 * rewritten; the records are untouched. */
void sl_batch_restamp_producer(void *buf, size_t len, uint64_t producer_id,
                               uint64_t producer_seq);

/* The producer fields of a batch whose header sl_batch_peek already accepted
 * (no check again: the shard's owner reads them on the append path). */
void sl_batch_producer_of(const void *buf, uint64_t *producer_id, uint64_t *producer_seq);

/* Parses and checks the header only (magic, stamp check, field ranges) of the
 * bytes at `buf`, of which `avail` are present. On SL_OK `*h` is filled and
 * h->length may exceed `avail` (the caller then reads more). Errors:
 * SL_EAGAIN (fewer than SL_BATCH_HEADER_BYTES available), SL_ECORRUPT. */
int sl_batch_peek(const void *buf, size_t avail, struct sl_batch_header *h);

/* Verifies the body checksum of a batch whose header `h` was peeked and whose
 * h->length bytes are all present. Errors: SL_ECORRUPT. */
int sl_batch_verify(const void *buf, const struct sl_batch_header *h);
/* The checks sl_batch_verify makes after the body checksum matched (version,
 * flags, codec, counts, records_len against the length), without hashing:
 * enough for sl_batch_iter_* to stay inside the batch. For a caller that
 * verifies the body later (the broker: the shard verifies while copying). */
int sl_batch_check_fields(const void *buf, const struct sl_batch_header *h);

/* Copies the batch `src` (header peeked into `h`, h->length bytes present)
 * to `dst` and verifies it like sl_batch_verify, hashing each chunk of the
 * copy while it is still in cache: one pass over memory instead of two. On
 * error the bytes at dst are unspecified. Errors: SL_ECORRUPT. */
int sl_batch_copy_verify(void *dst, const void *src, const struct sl_batch_header *h);

/* peek + verify + h->length <= avail: the full check of one complete batch.
 * Errors: SL_ECORRUPT, SL_EAGAIN (incomplete), SL_ETOOBIG (> max_len). */
int sl_batch_validate(const void *buf, size_t avail, size_t max_len, struct sl_batch_header *h);

/* Writes a new, uncompressed batch into `dst` (capacity `dst_cap`: at least
 * SL_BATCH_HEADER_BYTES + h->records_len) holding the records of `records`
 * (the batch's decompressed records section, h->records_len bytes, already
 * validated by iteration) whose index is not marked in `drop` (one byte per
 * record). Records are copied byte for byte, timestamps included; producer
 * id/seq and the timestamp range are kept. At least one record must stay.
 * Errors: SL_EINVAL (none kept), SL_ETOOBIG (dst too small), SL_ECORRUPT. */
int sl_batch_rebuild_without(const struct sl_batch_header *h, const uint8_t *records,
                             const uint8_t *drop, uint8_t *dst, size_t dst_cap, size_t *out_len);

/* Writes the base sequence and append time into a batch's header, the
 * leader epoch 0 (a single node), and recomputes the stamp check; the body
 * checksum is untouched. */
void sl_batch_stamp(void *buf, uint64_t base_seq, uint64_t append_time_ms);
/* sl_batch_stamp with a leader epoch (cluster mode, docs/REPLICATION.md):
 * the same three stores and one stamp check, so no cost over the above. */
void sl_batch_stamp_epoch(void *buf, uint64_t base_seq, uint64_t append_time_ms,
                          uint32_t leader_epoch);

/* A decoded record: views into the batch (or the decompression scratch). */
struct sl_record_view {
    uint64_t seq;
    uint64_t timestamp_ms;
    const uint8_t *key;
    uint32_t key_len;
    const uint8_t *value;
    uint32_t value_len;
    uint32_t attr_count;
    const uint8_t *attrs; /* attr_count encoded attributes, already validated */
    uint32_t attrs_len;
};

struct sl_batch_iter {
    const uint8_t *p;
    const uint8_t *end;
    uint32_t remaining;
    uint64_t seq;
    uint64_t ts_base;
    uint64_t ts_span;
};

/* Prepares iteration over a verified batch. A zstd batch is decompressed into
 * `scratch` (borrowed, `scratch_cap` bytes: the decompression cap) with `z`.
 * A control batch yields no record: every reader skips the broker's state
 * (its sequences are a gap in what a consumer sees).
 * Errors: SL_ECORRUPT, SL_ETOOBIG (records_len > scratch_cap). */
int sl_batch_iter_init(struct sl_batch_iter *it, const void *batch, const struct sl_batch_header *h,
                       struct sl_zctx *z, void *scratch, size_t scratch_cap);
/* sl_batch_iter_init that yields a control batch's records too: for the broker's code
 * that applies them (broker/engine/control.c). */
int sl_batch_iter_init_all(struct sl_batch_iter *it, const void *batch,
                           const struct sl_batch_header *h, struct sl_zctx *z, void *scratch,
                           size_t scratch_cap);

/* Yields the next record. Returns SL_OK, SL_ENOTFOUND at the end (after
 * checking the section was consumed exactly), SL_ECORRUPT. */
int sl_batch_iter_next(struct sl_batch_iter *it, struct sl_record_view *rec);

/* Iterates the attributes of a record view: `*pos` starts at 0. Returns 1 and
 * fills the attr, or 0 at the end. The bytes were validated by iter_next. */
int sl_record_attr_next(const struct sl_record_view *rec, uint32_t *pos, struct sl_attr *attr);

#endif
