/* batches.c - fetched batches read back by the HTTP front-ends (see
 * batches.h). */
#include "broker/api/batches.h"

#include "common/compress.h"
#include "common/error.h"

#include <stdbool.h>
#include <stdlib.h>

#define SCRATCH_MAX (4u * SL_BATCH_BYTES_MAX) /* the engine's decompression bound */

static struct {
    struct sl_zctx *z; /* owned, made on first use */
    uint8_t *scratch;  /* owned, scratch_cap bytes */
    uint32_t scratch_cap;
} g_reader;

int sl_api_batch_peek(const uint8_t *p, size_t avail, struct sl_batch_header *h)
{
    int rc = sl_batch_peek(p, avail, h);
    return rc == SL_OK && h->length > avail ? SL_ECORRUPT : rc;
}

int sl_api_batch_iter(const uint8_t *p, const struct sl_batch_header *h,
                      struct sl_batch_iter *it)
{
    if (g_reader.z == NULL && (g_reader.z = sl_zctx_new()) == NULL) {
        return SL_ENOMEM;
    }
    bool zstd = (h->codec & SL_BATCH_CODEC_MASK) == SL_BATCH_CODEC_ZSTD;
    if (zstd && g_reader.scratch_cap < h->records_len) {
        if (h->records_len > SCRATCH_MAX) {
            return SL_ETOOBIG;
        }
        uint8_t *s = realloc(g_reader.scratch, h->records_len);
        if (s == NULL) {
            return SL_ENOMEM;
        }
        g_reader.scratch = s;
        g_reader.scratch_cap = h->records_len;
    }
    return sl_batch_iter_init(it, p, h, g_reader.z, g_reader.scratch, g_reader.scratch_cap);
}
