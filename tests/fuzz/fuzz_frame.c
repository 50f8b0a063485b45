/* fuzz_frame.c - the native protocol's frame decoder and protobuf request
 * handling: sl_frame_peek, sl_request_unpack / sl_response_unpack (protobuf-c
 * over untrusted bytes), and, for a Produce, the batch checks the broker runs
 * before anything is stored (broker/engine/produce.c sl_produce_submit + check_routing
 * + the de-dup id lookup), replicated here because produce.c needs a live
 * server, catalog and shards.
 *
 * Input: the bytes a client sent: `u32 length (big-endian) | payload`. The
 * payload is unpacked as a Request (the broker's side) and as a Response (the
 * client library's side); the whole input, header included, is also
 * unpacked as a payload so that mutations are not wasted on a bad header.
 * The payload also goes through the broker's in-place Produce parser,
 * checked against protobuf-c (pview_check.h; fuzz_pview is its own target).
 * Checks: a decoded message packs; when that decodes again it has the same
 * id and oneof case and packs to the same bytes (protobuf-c round trip).
 */
#include "fuzz_util.h"
#include "pview_check.h"

#include "common/assert.h"
#include "common/compress.h"
#include "common/error.h"
#include "common/partition.h"
#include "proto/frame.h"
#include "storage/batch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FRAME (1u << 20)
#define BATCH_BYTES_MAX (1u << 20)
#define SCRATCH_MAX (4u * BATCH_BYTES_MAX) /* the engine: 4 x batch_bytes_max */

static struct sl_zctx *g_z;
static uint8_t *g_scratch;
static size_t g_scratch_cap;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    g_z = sl_zctx_new();
    g_scratch_cap = 64u << 10;
    g_scratch = malloc(g_scratch_cap);
    SL_ASSERT(g_z != NULL && g_scratch != NULL);
    return 0;
}

/* handle_produce: validate (length must equal the bytes sent), then
 * check_routing (every keyed record hashes into the shard; a 4-shard stream,
 * shard taken from the request modulo 4), then the de-dup id of each record. */
static void produce_checks(const Sluice__V1__Produce *m, const uint8_t *data)
{
    SL_ASSERT(m->stream != NULL); /* protobuf-c: "" when absent */
    (void)strlen(m->stream);
    struct sl_batch_header h;
    size_t blen = m->batch.len;
    int rc = sl_batch_validate(data, blen, BATCH_BYTES_MAX, &h);
    if (rc == SL_OK && h.length != blen) {
        rc = SL_EPROTO;
    }
    if (rc != SL_OK) {
        return;
    }
    if (h.codec == SL_BATCH_CODEC_ZSTD && h.records_len > g_scratch_cap) {
        if (h.records_len > SCRATCH_MAX) {
            return; /* SL_ETOOBIG */
        }
        uint8_t *n = realloc(g_scratch, h.records_len);
        SL_ASSERT(n != NULL);
        g_scratch = n;
        g_scratch_cap = h.records_len;
    }
    uint32_t shards = 4, shard = m->shard % shards;
    uint64_t lo, hi;
    sl_partition_range(shard, shards, &lo, &hi);
    struct sl_batch_iter it;
    rc = sl_batch_iter_init(&it, data, &h, g_z, g_scratch, g_scratch_cap);
    struct sl_record_view rv;
    uint32_t sink = 0;
    while (rc == SL_OK && (rc = sl_batch_iter_next(&it, &rv)) == SL_OK) {
        if (rv.key_len > 0) {
            uint64_t hash = sl_partition_hash(rv.key, rv.key_len);
            uint32_t owner = sl_partition_shard(hash, shards);
            SL_ASSERT(owner < shards);
            SL_ASSERT((hash >= lo && hash <= hi) == (owner == shard));
        }
        uint32_t pos = 0;
        struct sl_attr a;
        while (sl_record_attr_next(&rv, &pos, &a)) {
            if (a.key_len == 15 && memcmp(a.key, "sluice.dedup_id", 15) == 0) {
                sink += (uint32_t)sl_checksum64(a.value, a.value_len);
            }
        }
    }
    (void)sink;
}

/* protobuf-c keeps an unknown field it should refuse (field number 0, e.g.
 * the tag bytes 80 00, at any depth) and packs it back as bytes it then
 * refuses to decode: a library quirk, harmless to the broker, which never
 * re-packs a decoded request. So a re-packed message that no longer decodes
 * is tolerated; one that decodes must re-pack to the same bytes. */
static void request_roundtrip(const sl_request *req)
{
    size_t n = sl_request_size(req);
    uint8_t *out = malloc(n > 0 ? n : 1);
    SL_ASSERT(out != NULL);
    SL_ASSERT(sl_request_pack(req, out) == n);
    sl_request *again = sl_request_unpack(out, n);
    if (again != NULL) {
        SL_ASSERT(again->id == req->id && again->body_case == req->body_case);
        size_t n2 = sl_request_size(again);
        uint8_t *out2 = malloc(n2 > 0 ? n2 : 1);
        SL_ASSERT(out2 != NULL);
        SL_ASSERT(sl_request_pack(again, out2) == n2);
        SL_ASSERT(n2 == n && memcmp(out, out2, n) == 0);
        free(out2);
        sl_request_free(again);
    }
    free(out);
}

static void response_roundtrip(const sl_response *resp)
{
    size_t n = sl_response_size(resp);
    uint8_t *out = malloc(n > 0 ? n : 1);
    SL_ASSERT(out != NULL);
    SL_ASSERT(sl_response_pack(resp, out) == n);
    sl_response *again = sl_response_unpack(out, n);
    if (again != NULL) {
        SL_ASSERT(again->id == resp->id && again->body_case == resp->body_case);
        size_t n2 = sl_response_size(again);
        uint8_t *out2 = malloc(n2 > 0 ? n2 : 1);
        SL_ASSERT(out2 != NULL);
        SL_ASSERT(sl_response_pack(again, out2) == n2);
        SL_ASSERT(n2 == n && memcmp(out, out2, n) == 0);
        free(out2);
        sl_response_free(again);
    }
    free(out);
}

static void payload(const uint8_t *p, size_t len)
{
    /* An exact-size copy, so ASan sees any read past the payload. */
    uint8_t *copy = malloc(len > 0 ? len : 1);
    SL_ASSERT(copy != NULL);
    memcpy(copy, p, len);
    pview_check(copy, len); /* the broker's in-place Produce parse agrees (pview_check.h) */
    sl_request *req = sl_request_unpack(copy, len);
    if (req != NULL) {
        if (req->body_case == SLUICE__V1__REQUEST__BODY_PRODUCE) {
            SL_ASSERT(req->produce != NULL);
            const ProtobufCBinaryData *b = &req->produce->batch;
            SL_ASSERT(b->len == 0 || b->data != NULL);
            /* An odd request id: fix the batch's checksums (fuzz_util.h) in
             * an exact-size copy, so mutations reach the record checks. */
            uint8_t *fixed = NULL;
            if ((req->id & 1u) && b->len > 0) {
                fixed = malloc(b->len);
                SL_ASSERT(fixed != NULL);
                memcpy(fixed, b->data, b->len);
                (void)fz_fix_batch(fixed, b->len, 1);
            }
            produce_checks(req->produce, fixed != NULL ? fixed : b->data);
            free(fixed);
        }
        request_roundtrip(req);
        sl_request_free(req);
    }
    sl_response *resp = sl_response_unpack(copy, len);
    if (resp != NULL) {
        SL_ASSERT(resp->message != NULL);
        (void)strlen(resp->message);
        response_roundtrip(resp);
        sl_response_free(resp);
    }
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint32_t flen = 0;
    int rc = sl_frame_peek(data, size, MAX_FRAME, &flen);
    SL_ASSERT(rc == SL_OK || rc == SL_EAGAIN || rc == SL_EPROTO || rc == SL_ETOOBIG);
    SL_ASSERT(rc != SL_EAGAIN || size < SL_FRAME_HEADER_BYTES);
    if (rc == SL_OK) {
        SL_ASSERT(flen > 0 && flen <= MAX_FRAME);
        uint8_t hdr[4];
        sl_frame_put_header(hdr, flen);
        SL_ASSERT(memcmp(hdr, data, 4) == 0);
        if (size - SL_FRAME_HEADER_BYTES >= flen) {
            payload(data + SL_FRAME_HEADER_BYTES, flen);
        }
    }
    payload(data, size);
    return 0;
}
