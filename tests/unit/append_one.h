/* append_one.h - one 1-record batch appended to an engine shard (struct sl_wshard) and waited
 * for, for the tests that build a catalog on one ring (test_catalog, test_coord).
 */
#ifndef SL_TEST_APPEND_ONE_H
#define SL_TEST_APPEND_ONE_H

#include "broker/engine/workers.h"
#include "common/error.h"
#include "common/ring.h"
#include "storage/batch.h"

#include <stdint.h>

static inline void test_append_one_acked(void *ctx, int err, uint64_t base_seq, uint32_t count)
{
    (void)base_seq;
    (void)count;
    int *left = ctx;
    *left -= err == SL_OK ? 1 : 1000;
}

/* Appends a record "v" as batch `pseq` of producer `pid` and runs `ring` until it is
 * acknowledged. SL_OK, the append's error, or SL_EIO when it failed. */
static inline int test_append_one(struct sl_ring *ring, struct sl_wshard *ws, uint64_t pid,
                                  uint64_t pseq)
{
    uint8_t buf[512];
    struct sl_batch_builder bb;
    sl_batch_builder_init(&bb, buf, sizeof(buf));
    struct sl_record rec = {.value = "v", .value_len = 1};
    size_t len = 0;
    if (sl_batch_builder_add(&bb, &rec) != SL_OK ||
        sl_batch_builder_finish(&bb, SL_BATCH_CODEC_NONE, 1, NULL, NULL, 0, pid, pseq, &len) !=
            SL_OK) {
        return SL_EINVAL;
    }
    int left = 1;
    int rc = sl_wshard_append(ws, buf, len, 0, test_append_one_acked, &left);
    while (rc == SL_OK && left > 0) {
        sl_ring_run(ring, 1, 0);
    }
    return rc != SL_OK ? rc : left == 0 ? SL_OK : SL_EIO;
}

#endif
