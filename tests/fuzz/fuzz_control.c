/* fuzz_control.c - the control-batch decoder (broker/engine/control.c) over untrusted
 * bytes: a follower applies the checkpoints its leader replicated (docs/REPLICATION.md),
 * so a control batch is another broker's bytes.
 *
 * Input: byte 0 = mode (bit 0: seal the rest as a control batch's records section, so
 * mutations get past the header and checksum to the record decoder; else the rest is a
 * whole batch), then the bytes. Both decoders (checkpoints, queue-group changes) run on
 * it. Checks beyond ASan/UBSan: each answers SL_OK, SL_EINVAL (not a control batch) or
 * SL_ECORRUPT; on SL_OK every checkpoint or change it yields has a group of 1 .. the name
 * bound bytes without NUL, and encodes back to a control batch that decodes to the same;
 * a batch that fails applies nothing.
 */
#include "broker/engine/control.h"
#include "common/assert.h"
#include "common/bytes.h"
#include "common/checksum.h"
#include "common/error.h"
#include "storage/batch.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define INPUT_MAX 8192u

static uint32_t yielded;

static void same(void *ctx, const struct sl_control_ckpt *c)
{
    const struct sl_control_ckpt *want = ctx;
    SL_ASSERT(strcmp(c->group, want->group) == 0 && c->shard == want->shard &&
              c->seq == want->seq && c->updated_ms == want->updated_ms);
    yielded++;
}

static void check_one(void *ctx, const struct sl_control_ckpt *c)
{
    (void)ctx;
    size_t glen = strnlen(c->group, sizeof(c->group));
    SL_ASSERT(glen >= 1 && glen <= SL_CKPT_GROUP_NAME_MAX);
    /* encodes back to a batch that decodes to the same */
    static uint8_t again[SL_CONTROL_CKPT_BATCH_MAX];
    size_t len = 0;
    SL_ASSERT(sl_control_ckpt_batch(c, again, sizeof(again), &len) == SL_OK);
    struct sl_batch_header h;
    SL_ASSERT(sl_batch_validate(again, len, len, &h) == SL_OK && h.control);
    yielded = 0;
    SL_ASSERT(sl_control_each_ckpt(again, &h, same, (void *)c) == SL_OK && yielded == 1);
}

static uint32_t calls;

static void count(void *ctx, const struct sl_control_ckpt *c)
{
    (void)ctx;
    (void)c;
    calls++;
}

/* ---- queue-group changes ---- */

static struct sl_control_qop scratch, scratch2;

static void count_qop(void *ctx, const struct sl_control_qop *op)
{
    (void)ctx;
    (void)op;
    calls++;
}

static void same_qop(void *ctx, const struct sl_control_qop *op)
{
    const struct sl_control_qop *want = ctx;
    SL_ASSERT(op->kind == want->kind && strcmp(op->group, want->group) == 0 &&
              op->shard == want->shard && op->a == want->a && op->b == want->b);
    if (op->kind == SL_CONTROL_Q_CREATE) {
        const struct sl_qgroup_def *a = &op->def, *b = &want->def;
        SL_ASSERT(strcmp(a->name, b->name) == 0 &&
                  strcmp(a->dead_letter_stream, b->dead_letter_stream) == 0 &&
                  (a->filter == NULL) == (b->filter == NULL) &&
                  (a->filter == NULL || strcmp(a->filter, b->filter) == 0) &&
                  a->visibility_timeout_ms == b->visibility_timeout_ms &&
                  a->max_deliveries == b->max_deliveries && a->max_inflight == b->max_inflight &&
                  a->ordered == b->ordered && a->filter_body == b->filter_body &&
                  a->start_kind == b->start_kind && a->start_seq == b->start_seq &&
                  a->start_time_ms == b->start_time_ms && a->created_ms == b->created_ms &&
                  a->end_time_ms == b->end_time_ms && op->shard_count == want->shard_count &&
                  memcmp(op->floors_be, want->floors_be, 8u * op->shard_count) == 0);
    }
    yielded++;
}

static void check_qop(void *ctx, const struct sl_control_qop *op)
{
    (void)ctx;
    size_t glen = strnlen(op->group, sizeof(op->group));
    SL_ASSERT(glen >= 1 && glen <= SL_QSTATE_NAME_MAX);
    /* encodes back to a batch that decodes to the same */
    static uint64_t floors[SL_QSTATE_SHARDS_MAX];
    static uint8_t value[SL_CONTROL_Q_VALUE_MAX];
    static uint8_t again[SL_CONTROL_Q_VALUE_MAX + 256u];
    struct sl_control_qop enc = *op;
    if (op->kind == SL_CONTROL_Q_CREATE) {
        SL_ASSERT(op->shard_count >= 1 && op->shard_count <= SL_QSTATE_SHARDS_MAX);
        for (uint32_t i = 0; i < op->shard_count; i++) {
            floors[i] = sl_get_u64(op->floors_be + 8u * i);
        }
        enc.floors = floors;
        enc.def.filter = op->def.filter != NULL ? enc.filter : NULL;
    }
    struct sl_record rec;
    SL_ASSERT(sl_control_qop_record(&enc, 7, value, &rec) == SL_OK);
    struct sl_batch_builder bb;
    sl_batch_builder_init(&bb, again, sizeof(again));
    size_t len = 0;
    SL_ASSERT(sl_batch_builder_add(&bb, &rec) == SL_OK &&
              sl_batch_builder_finish(&bb, SL_BATCH_CODEC_NONE, 0, NULL, NULL, 0, 0, 0, &len) ==
                  SL_OK);
    sl_batch_mark_control(again, len);
    struct sl_batch_header h;
    SL_ASSERT(sl_batch_validate(again, len, len, &h) == SL_OK && h.control);
    yielded = 0;
    SL_ASSERT(sl_control_each_qop(again, &h, &scratch2, same_qop, (void *)op) == SL_OK &&
              yielded == 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t buf[SL_BATCH_HEADER_BYTES + INPUT_MAX];
    if (size < 1 || size - 1 > INPUT_MAX) {
        return 0;
    }
    size_t len = size - 1;
    if ((data[0] & 1) != 0) {
        /* the rest as the records section of a one-record control batch */
        memset(buf, 0, SL_BATCH_HEADER_BYTES);
        memcpy(buf + SL_BATCH_HEADER_BYTES, data + 1, len);
        len += SL_BATCH_HEADER_BYTES;
        sl_put_u32(buf + 0, SL_BATCH_MAGIC);
        sl_put_u32(buf + 4, (uint32_t)len);
        buf[40] = SL_BATCH_VERSION;
        buf[41] = SL_BATCH_FLAG_CONTROL;
        sl_put_u32(buf + 44, (data[0] >> 1) % 4 + 1); /* record count 1..4 */
        sl_put_u32(buf + 80, (uint32_t)(len - SL_BATCH_HEADER_BYTES));
        sl_put_u64(buf + 32, sl_checksum64(buf + 40, len - 40));
        sl_batch_stamp(buf, 0, 0);
    } else {
        memcpy(buf, data + 1, len);
    }
    struct sl_batch_header h;
    if (sl_batch_validate(buf, len, len, &h) != SL_OK) {
        return 0;
    }
    calls = 0;
    int rc = sl_control_each_ckpt(buf, &h, count, NULL);
    SL_ASSERT(rc == SL_OK || rc == SL_EINVAL || rc == SL_ECORRUPT);
    SL_ASSERT(rc == SL_OK || calls == 0); /* all or nothing */
    SL_ASSERT(rc != SL_EINVAL || !h.control);
    if (rc == SL_OK) {
        SL_ASSERT(sl_control_each_ckpt(buf, &h, check_one, NULL) == SL_OK);
    }
    calls = 0;
    rc = sl_control_each_qop(buf, &h, &scratch, count_qop, NULL);
    SL_ASSERT(rc == SL_OK || rc == SL_EINVAL || rc == SL_ECORRUPT);
    SL_ASSERT(rc == SL_OK || calls == 0);
    SL_ASSERT(rc != SL_EINVAL || !h.control);
    if (rc == SL_OK) {
        SL_ASSERT(sl_control_each_qop(buf, &h, &scratch, check_qop, NULL) == SL_OK);
    }
    return 0;
}
