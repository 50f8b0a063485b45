/* compress.c - zstd wrapper: reusable contexts, bounded single-frame decode. */
#include "common/compress.h"

#include "common/error.h"

#include <stdlib.h>
#include <zstd.h>

struct sl_zctx {
    ZSTD_CCtx *cctx;
    ZSTD_DCtx *dctx;
};

struct sl_zctx *sl_zctx_new(void)
{
    struct sl_zctx *z = calloc(1, sizeof(*z));
    if (z == NULL) {
        return NULL;
    }
    z->cctx = ZSTD_createCCtx();
    z->dctx = ZSTD_createDCtx();
    if (z->cctx == NULL || z->dctx == NULL) {
        sl_zctx_free(z);
        return NULL;
    }
    return z;
}

void sl_zctx_free(struct sl_zctx *z)
{
    if (z == NULL) {
        return;
    }
    ZSTD_freeCCtx(z->cctx);
    ZSTD_freeDCtx(z->dctx);
    free(z);
}

size_t sl_compress_bound(size_t src_len)
{
    return ZSTD_compressBound(src_len);
}

int sl_compress(struct sl_zctx *z, int level, void *dst, size_t dst_cap, size_t *dst_len,
                const void *src, size_t src_len)
{
    if (level < 1 || level > ZSTD_maxCLevel()) {
        return SL_EINVAL;
    }
    size_t r = ZSTD_compressCCtx(z->cctx, dst, dst_cap, src, src_len, level);
    if (ZSTD_isError(r)) {
        return SL_ETOOBIG;
    }
    *dst_len = r;
    return SL_OK;
}

int sl_decompress(struct sl_zctx *z, void *dst, size_t dst_cap, size_t expect_len,
                  const void *src, size_t src_len)
{
    unsigned long long declared = ZSTD_getFrameContentSize(src, src_len);
    if (declared == ZSTD_CONTENTSIZE_ERROR || declared == ZSTD_CONTENTSIZE_UNKNOWN) {
        return SL_ECORRUPT;
    }
    if (declared != expect_len) {
        return SL_ECORRUPT;
    }
    if (declared > dst_cap) {
        return SL_ETOOBIG;
    }
    /* Exactly one frame must fill src. */
    size_t frame = ZSTD_findFrameCompressedSize(src, src_len);
    if (ZSTD_isError(frame) || frame != src_len) {
        return SL_ECORRUPT;
    }
    size_t r = ZSTD_decompressDCtx(z->dctx, dst, (size_t)declared, src, src_len);
    if (ZSTD_isError(r) || r != expect_len) {
        return SL_ECORRUPT;
    }
    return SL_OK;
}
