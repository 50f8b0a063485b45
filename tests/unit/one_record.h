/* one_record.h - a record made real for matching tests and benches: built
 * into a one-record uncompressed batch by the batch codec, validated and
 * read back as the view the broker's readers see.
 */
#ifndef SL_TEST_ONE_RECORD_H
#define SL_TEST_ONE_RECORD_H

#include "common/error.h"
#include "storage/batch.h"

#include <stddef.h>
#include <stdint.h>

/* `rec` (borrowed) into `buf` (cap bytes; the view borrows it); 0 or -1. */
static inline int test_one_record(uint8_t *buf, size_t cap, const struct sl_record *rec,
                                  struct sl_record_view *out)
{
    struct sl_batch_builder b;
    sl_batch_builder_init(&b, buf, cap);
    size_t len = 0;
    struct sl_batch_header h;
    struct sl_batch_iter it;
    if (sl_batch_builder_add(&b, rec) != SL_OK ||
        sl_batch_builder_finish(&b, SL_BATCH_CODEC_NONE, 1, NULL, NULL, 0, 0, 0, &len) != SL_OK ||
        sl_batch_validate(buf, len, cap, &h) != SL_OK ||
        sl_batch_iter_init(&it, buf, &h, NULL, NULL, 0) != SL_OK ||
        sl_batch_iter_next(&it, out) != SL_OK) {
        return -1;
    }
    return 0;
}

#endif
