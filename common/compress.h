/* compress.h - zstd compression behind one module (the only user of zstd.h).
 *
 * Contexts are reused across calls (no per-call allocation on hot paths); a
 * context belongs to one thread at a time.
 */
#ifndef SL_COMPRESS_H
#define SL_COMPRESS_H

#include <stddef.h>

struct sl_zctx; /* opaque: one compression + one decompression context */

/* Returns a new context, or NULL on allocation failure. */
struct sl_zctx *sl_zctx_new(void);
void sl_zctx_free(struct sl_zctx *z); /* NULL-safe */

/* Upper bound of the compressed size of `src_len` bytes. */
size_t sl_compress_bound(size_t src_len);

/* Compresses `src` into `dst` (capacity `dst_cap`) at `level` (1 .. ZSTD's maximum, 22);
 * *dst_len receives the frame size. Errors: SL_ETOOBIG (dst too small),
 * SL_EINVAL (bad level). */
int sl_compress(struct sl_zctx *z, int level, void *dst, size_t dst_cap, size_t *dst_len,
                const void *src, size_t src_len);

/* Decompresses exactly one zstd frame `src` into `dst`. The frame must
 * declare its content size, which must equal `expect_len` and be at most
 * `dst_cap`; decompression never writes past `dst_cap` (bomb-safe). Errors:
 * SL_ECORRUPT (not one valid frame, size mismatch), SL_ETOOBIG (declared
 * content larger than dst_cap). */
int sl_decompress(struct sl_zctx *z, void *dst, size_t dst_cap, size_t expect_len,
                  const void *src, size_t src_len);

#endif
