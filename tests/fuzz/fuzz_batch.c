/* fuzz_batch.c - the batch decoder: sl_batch_validate, sl_batch_copy_verify,
 * iteration (with zstd decompression into a bounded scratch) and attributes.
 *
 * Input: byte 0 = mode flags, the rest = one batch.
 *   bit 0: fix up the checksums (fuzz_util.h), so mutations reach the records
 *   bit 1: with bit 0, also set the length field to the byte count
 * Checks beyond "no crash / no sanitizer report":
 *   - sl_batch_copy_verify agrees with sl_batch_verify;
 *   - every record view lies inside the batch or the scratch (touched);
 *   - attributes decode (sl_record_attr_next asserts on what iter_next let by);
 *   - a batch that iterates cleanly rebuilds (as the broker's de-dup path does,
 *     broker/engine/produce.c apply_msgdedup) into a batch that validates and yields
 *     the same keys, values and attributes.
 */
#include "fuzz_util.h"

#include "common/assert.h"
#include "common/compress.h"
#include "common/error.h"
#include "storage/batch.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCH_MAX (1u << 20)   /* the cap passed to sl_batch_validate */
#define SCRATCH_CAP (1u << 20) /* decompression cap */

static struct sl_zctx *g_z;
static uint8_t *g_scratch;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    g_z = sl_zctx_new();
    g_scratch = malloc(SCRATCH_CAP);
    SL_ASSERT(g_z != NULL && g_scratch != NULL);
    return 0;
}

/* Known project bugs this target has found (tests/fuzz/README.md): a check
 * that pins one reports it and returns instead of aborting, unless
 * SLUICE_FUZZ_STRICT=1, so fuzzing can go on past it. */
/* The broker's de-dup rebuild (broker/engine/produce.c apply_msgdedup ->
 * sl_batch_rebuild_without): records whose id was seen are dropped and the
 * rest copied, uncompressed, into a buffer of SL_BATCH_HEADER_BYTES +
 * records_len bytes. Here the first record is dropped (all are kept for a
 * one-record batch); the rebuilt batch must validate and hold the kept
 * records unchanged, timestamps included. (Regression: the rebuild once
 * went through the builder, which clamps timestamps that go backwards.) */
static void check_rebuild(const uint8_t *batch, const struct sl_batch_header *h)
{
    uint32_t skip = h->record_count >= 2 ? 1 : 0;
    struct sl_batch_iter a;
    if (sl_batch_iter_init(&a, batch, h, g_z, g_scratch, SCRATCH_CAP) != SL_OK) {
        abort(); /* it worked a moment ago */
    }
    const uint8_t *records =
        h->codec == SL_BATCH_CODEC_ZSTD ? g_scratch : batch + SL_BATCH_HEADER_BYTES;
    uint8_t *drop = calloc(h->record_count, 1);
    size_t cap = SL_BATCH_HEADER_BYTES + h->records_len; /* as produce.c sizes it */
    uint8_t *nb = malloc(cap);
    SL_ASSERT(drop != NULL && nb != NULL);
    if (skip) {
        drop[0] = 1;
    }
    size_t len = 0;
    int rc = sl_batch_rebuild_without(h, records, drop, nb, cap, &len);
    if (rc != SL_OK) {
        fprintf(stderr, "rebuild failed: %s\n", sl_strerror(rc));
        abort();
    }
    struct sl_batch_header h2;
    rc = sl_batch_validate(nb, len, SL_BATCH_BYTES_MAX, &h2);
    if (rc != SL_OK) {
        fprintf(stderr, "rebuild: the rebuilt batch does not validate: %s\n", sl_strerror(rc));
        abort();
    }
    SL_ASSERT(h2.record_count == h->record_count - skip && h2.length == len);
    struct sl_batch_iter b;
    SL_ASSERT(sl_batch_iter_init(&b, nb, &h2, NULL, NULL, 0) == SL_OK);
    struct sl_record_view x, y;
    for (uint32_t k = 0; k < h->record_count; k++) {
        SL_ASSERT(sl_batch_iter_next(&a, &x) == SL_OK);
        if (k < skip) {
            continue;
        }
        SL_ASSERT(sl_batch_iter_next(&b, &y) == SL_OK);
        SL_ASSERT(x.key_len == y.key_len && memcmp(x.key, y.key, x.key_len) == 0);
        SL_ASSERT(x.value_len == y.value_len && memcmp(x.value, y.value, x.value_len) == 0);
        SL_ASSERT(x.attr_count == y.attr_count && x.timestamp_ms == y.timestamp_ms);
        SL_ASSERT(x.attrs_len == y.attrs_len && memcmp(x.attrs, y.attrs, x.attrs_len) == 0);
    }
    SL_ASSERT(sl_batch_iter_next(&b, &y) == SL_ENOTFOUND);
    free(drop);
    free(nb);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    unsigned mode = data[0];
    size_t n = size - 1;
    /* An exact-size heap copy: ASan then sees any read past the end. */
    uint8_t *buf = malloc(n > 0 ? n : 1);
    SL_ASSERT(buf != NULL);
    memcpy(buf, data + 1, n);
    if (mode & 1u) {
        (void)fz_fix_batch(buf, n, (mode & 2u) != 0);
    }
    struct sl_batch_header h;
    int rc = sl_batch_validate(buf, n, BATCH_MAX, &h);
    if (rc == SL_OK || rc == SL_ETOOBIG || (rc == SL_EAGAIN && n >= SL_BATCH_HEADER_BYTES)) {
        SL_ASSERT(h.length > SL_BATCH_HEADER_BYTES && h.length <= SL_BATCH_BYTES_MAX);
        SL_ASSERT(h.record_count >= 1);
    }
    if (rc == SL_OK) {
        SL_ASSERT(h.length <= n);
        uint8_t *dst = malloc(h.length);
        SL_ASSERT(dst != NULL);
        int rc2 = sl_batch_copy_verify(dst, buf, &h);
        SL_ASSERT(rc2 == SL_OK && memcmp(dst, buf, h.length) == 0);
        free(dst);

        struct sl_batch_iter it;
        rc = sl_batch_iter_init(&it, buf, &h, g_z, g_scratch, SCRATCH_CAP);
        if (rc == SL_OK) {
            struct sl_record_view rv;
            uint32_t count = 0;
            uint64_t prev_seq = 0;
            uint32_t sink = 0;
            while ((rc = sl_batch_iter_next(&it, &rv)) == SL_OK) {
                SL_ASSERT(count == 0 || rv.seq == prev_seq + 1);
                SL_ASSERT(rv.timestamp_ms >= h.first_ts_ms && rv.timestamp_ms <= h.last_ts_ms);
                SL_ASSERT(rv.key_len <= SL_RECORD_KEY_MAX && rv.attr_count <= SL_RECORD_ATTRS_MAX);
                sink += fz_touch(rv.key, rv.key_len) + fz_touch(rv.value, rv.value_len) +
                        fz_touch(rv.attrs, rv.attrs_len);
                uint32_t pos = 0, na = 0;
                struct sl_attr a;
                while (sl_record_attr_next(&rv, &pos, &a)) {
                    SL_ASSERT(a.key_len <= SL_RECORD_ATTR_KEY_MAX &&
                              a.value_len <= SL_RECORD_ATTR_VALUE_MAX);
                    sink += fz_touch((const uint8_t *)a.key, a.key_len) +
                            fz_touch((const uint8_t *)a.value, a.value_len);
                    na++;
                }
                SL_ASSERT(na == rv.attr_count);
                prev_seq = rv.seq;
                count++;
            }
            SL_ASSERT(rc == SL_ENOTFOUND || rc == SL_ECORRUPT);
            SL_ASSERT(count <= h.record_count);
            if (rc == SL_ENOTFOUND) {
                SL_ASSERT(count == h.record_count);
                check_rebuild(buf, &h);
            }
            (void)sink;
        } else {
            SL_ASSERT(rc == SL_ECORRUPT || rc == SL_ETOOBIG);
        }
        /* A cap below records_len must refuse, never overrun. */
        if (h.codec == SL_BATCH_CODEC_ZSTD && h.records_len > 1) {
            uint8_t *small = malloc(h.records_len - 1);
            SL_ASSERT(small != NULL);
            rc = sl_batch_iter_init(&it, buf, &h, g_z, small, h.records_len - 1);
            SL_ASSERT(rc == SL_ETOOBIG);
            free(small);
        }
    }
    free(buf);
    return 0;
}
