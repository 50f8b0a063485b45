/* fuzz_control.c - the control-batch decoder (broker/engine/control.c) over untrusted
 * bytes: a follower applies the checkpoints its leader replicated (docs/REPLICATION.md),
 * so a control batch is another broker's bytes.
 *
 * Input: byte 0 = mode (bit 0: seal the rest as a control batch's records section, so
 * mutations get past the header and checksum to the record decoder; else the rest is a
 * whole batch), then the bytes. Checks beyond ASan/UBSan: the decoder answers SL_OK,
 * SL_EINVAL (not a control batch) or SL_ECORRUPT; on SL_OK every checkpoint it yields has a
 * group of 1..SL_CKPT_GROUP_NAME_MAX bytes without NUL, and encodes back to a control
 * batch that decodes to the same checkpoint; a batch that fails applies nothing.
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
    return 0;
}
