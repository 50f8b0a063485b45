/* fuzz_repl.c - the replication messages' decoder (broker/native/repl_codec.c): what one
 * broker takes from another's ReplMessage before the replica state machine sees it (#14).
 *
 * Input: byte 0 picks the mode.
 *   even: the rest is a ReplMessage as protobuf bytes (anything a peer could send).
 *   odd:  a FETCH_RESP built from the rest - byte 1: batches (0..7), then per batch 3 bytes
 *         (records 1..4, an offset skew, an epoch and whether the header's agrees), records
 *         made of the remaining bytes -
 *         with real stored batches (stamped at the offsets the skew makes, right or wrong),
 *         encoded by sl_repl_codec_encode, packed and unpacked: the decoder's paths past a
 *         batch's checksum.
 * Checks beyond ASan/UBSan: a message is refused with SL_EPROTO and a reason, or decodes to
 * fields within their ranges (broker ids >= 0, epochs >= -1, offsets >= 0, the log start
 * too, and ETRIMMED only in a fetch answer whose log start is past its offset), with batches only
 * in a successful FETCH_RESP, contiguous from its offset, each a whole intact batch whose
 * header says the same sequence, count and leader epoch, at most SL_REPL_FETCH_BATCHES_MAX; a
 * decoded message encodes, packs, unpacks and decodes again to the same fields; a built answer is
 * accepted exactly when its batches are contiguous from its offset.
 */
#include "broker/native/repl_codec.h"
#include "common/assert.h"
#include "common/error.h"
#include "storage/batch.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct sl_repl_batch g_a[SL_REPL_FETCH_BATCHES_MAX], g_b[SL_REPL_FETCH_BATCHES_MAX];
static struct sl_repl_wire g_w;

static void check_decoded(const struct sl_repl_msg *m)
{
    SL_ASSERT(m->from >= 0 && m->to >= 0 && m->leader_epoch >= -1 && m->epoch >= -1);
    SL_ASSERT(m->offset >= 0 && m->hw >= 0 && m->end_offset >= -1 && m->log_start >= 0);
    SL_ASSERT(m->err != SL_ETRIMMED ||
              (m->type == SL_REPL_MSG_FETCH_RESP && m->log_start > m->offset));
    SL_ASSERT(m->n_batches <= SL_REPL_FETCH_BATCHES_MAX);
    SL_ASSERT(m->n_batches == 0 || (m->type == SL_REPL_MSG_FETCH_RESP && m->err == SL_OK));
    int64_t next = m->offset;
    for (uint32_t i = 0; i < m->n_batches; i++) {
        const struct sl_repl_batch *b = &m->batches[i];
        struct sl_batch_header h;
        SL_ASSERT(b->base_offset == next && b->count >= 1 && b->epoch >= 0);
        SL_ASSERT(sl_batch_peek(b->data, b->len, &h) == SL_OK && h.length == b->len);
        SL_ASSERT(sl_batch_verify(b->data, &h) == SL_OK);
        SL_ASSERT(h.base_seq == (uint64_t)b->base_offset && h.record_count == b->count &&
                  h.leader_epoch == (uint32_t)b->epoch);
        next += b->count;
    }
}

/* Encodes `m`, packs, unpacks and decodes it: the same fields come back. */
static void round_trip(const struct sl_repl_msg *m)
{
    sl_repl_codec_encode(m, &g_w);
    size_t n = sluice__v1__repl_message__get_packed_size(&g_w.msg);
    uint8_t *buf = malloc(n + 1);
    SL_ASSERT(buf != NULL);
    SL_ASSERT(sluice__v1__repl_message__pack(&g_w.msg, buf) == n);
    Sluice__V1__ReplMessage *again = sluice__v1__repl_message__unpack(NULL, n, buf);
    SL_ASSERT(again != NULL);
    struct sl_repl_msg d;
    char why[256];
    SL_ASSERT(sl_repl_codec_decode(again, &d, g_b, why, sizeof(why)) == SL_OK);
    SL_ASSERT(d.type == m->type && d.from == m->from && d.to == m->to &&
              d.leader_epoch == m->leader_epoch && d.err == m->err && d.req_id == m->req_id &&
              d.offset == m->offset && d.epoch == m->epoch && d.end_offset == m->end_offset &&
              d.hw == m->hw && d.log_start == m->log_start && d.n_batches == m->n_batches);
    for (uint32_t i = 0; i < d.n_batches; i++) {
        SL_ASSERT(d.batches[i].base_offset == m->batches[i].base_offset &&
                  d.batches[i].count == m->batches[i].count &&
                  d.batches[i].epoch == m->batches[i].epoch && d.batches[i].len == m->batches[i].len &&
                  memcmp(d.batches[i].data, m->batches[i].data, d.batches[i].len) == 0);
    }
    sluice__v1__repl_message__free_unpacked(again, NULL);
    free(buf);
}

static void raw(const uint8_t *data, size_t size)
{
    Sluice__V1__ReplMessage *in = sluice__v1__repl_message__unpack(NULL, size, data);
    if (in == NULL) {
        return;
    }
    struct sl_repl_msg m;
    char why[256] = "";
    int rc = sl_repl_codec_decode(in, &m, g_a, why, sizeof(why));
    if (rc != SL_OK) {
        SL_ASSERT(rc == SL_EPROTO && strncmp(why, "replication message: ", 21) == 0);
    } else {
        check_decoded(&m);
        round_trip(&m);
    }
    sluice__v1__repl_message__free_unpacked(in, NULL);
}

#define BUILT_MAX 8u

static void built(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return;
    }
    uint32_t n = data[0] % BUILT_MAX;
    data++;
    size--;
    static uint8_t bufs[BUILT_MAX][4096];
    struct sl_repl_batch b[BUILT_MAX];
    int64_t offset = 100, next = offset;
    bool contiguous = true;
    for (uint32_t i = 0; i < n; i++) {
        if (size < 3) {
            n = i;
            break;
        }
        uint32_t records = 1u + data[0] % 4u;
        int64_t skew = data[1] % 8u == 0 ? (int64_t)(data[1] % 3u) - 1 : 0;
        int32_t epoch = data[2] % 16u == 15u ? -1 : data[2] % 4;
        bool epoch_agrees = (data[2] & 0x80u) == 0; /* the header's epoch as the message's */
        data += 3;
        size -= 3;
        struct sl_batch_builder bb;
        sl_batch_builder_init(&bb, bufs[i], sizeof(bufs[i]));
        for (uint32_t r = 0; r < records; r++) {
            size_t take = size < 64 ? size : 64;
            struct sl_record rec = {.value = data, .value_len = (uint32_t)take};
            SL_ASSERT(sl_batch_builder_add(&bb, &rec) == SL_OK);
            data += take;
            size -= take;
        }
        size_t len = 0;
        SL_ASSERT(sl_batch_builder_finish(&bb, SL_BATCH_CODEC_NONE, 0, NULL, NULL, 0, 0, 0, &len) ==
                  SL_OK);
        int64_t base = next + skew;
        uint32_t stamped = epoch >= 0 ? (uint32_t)epoch + (epoch_agrees ? 0u : 1u) : 0u;
        sl_batch_stamp_epoch(bufs[i], (uint64_t)(base < 0 ? 0 : base), 1, stamped);
        contiguous &= skew == 0 && epoch >= 0 && epoch_agrees;
        b[i] = (struct sl_repl_batch){.base_offset = base < 0 ? 0 : base, .count = records,
                                      .epoch = epoch, .data = bufs[i], .len = len};
        next = b[i].base_offset + records;
    }
    struct sl_repl_msg m = {.type = SL_REPL_MSG_FETCH_RESP,
                            .from = 1,
                            .to = 2,
                            .leader_epoch = 3,
                            .req_id = 9,
                            .offset = offset,
                            .epoch = -1,
                            .end_offset = -1,
                            .hw = 50,
                            .log_start = size > 0 ? data[0] : 0,
                            .batches = b,
                            .n_batches = n};
    sl_repl_codec_encode(&m, &g_w);
    size_t plen = sluice__v1__repl_message__get_packed_size(&g_w.msg);
    uint8_t *p = malloc(plen + 1);
    SL_ASSERT(p != NULL && sluice__v1__repl_message__pack(&g_w.msg, p) == plen);
    Sluice__V1__ReplMessage *in = sluice__v1__repl_message__unpack(NULL, plen, p);
    SL_ASSERT(in != NULL);
    struct sl_repl_msg d;
    char why[256];
    int rc = sl_repl_codec_decode(in, &d, g_a, why, sizeof(why));
    SL_ASSERT((rc == SL_OK) == contiguous);
    if (rc == SL_OK) {
        check_decoded(&d);
        round_trip(&d);
    }
    sluice__v1__repl_message__free_unpacked(in, NULL);
    free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    if (data[0] % 2 == 0) {
        raw(data + 1, size - 1);
    } else {
        built(data + 1, size - 1);
    }
    return 0;
}
