/* base64.h - RFC 4648 base64, standard alphabet: the Kinesis API's Data,
 * the SQS API's binary attributes and the push payloads' non-UTF-8 bytes.
 *
 * Threading: pure; any thread.
 */
#ifndef SL_BASE64_H
#define SL_BASE64_H

#include <stddef.h>
#include <stdint.h>

/* Characters of the padded encoding of n bytes. */
static inline size_t sl_b64_len(size_t n)
{
    return (n + 2) / 3 * 4;
}

/* Writes sl_b64_len(n) chars (padded, no NUL) at `out` (borrowed). */
void sl_b64_encode(const uint8_t *in, size_t n, char *out);

/* The encoding as a new NUL-terminated string (sl_b64_len(n) chars; the caller
 * frees it), or NULL when out of memory. */
char *sl_b64_dup(const void *in, size_t n);

/* Decodes `n` chars of `in`; `out` needs n / 4 * 3 + 3 bytes. Padding is
 * optional; anything else outside the alphabet, a misplaced '=' or a length
 * of 4k+1 is refused. Errors: SL_EPROTO. */
int sl_b64_decode(const char *in, size_t n, uint8_t *out, size_t *out_len);

#endif
