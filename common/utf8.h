/* utf8.h - UTF-8 as RFC 3629 defines it (no overlong forms, no surrogates,
 * nothing past U+10FFFF): what JSON text may carry, and what jansson accepts.
 *
 * Threading: pure; any thread.
 */
#ifndef SL_UTF8_H
#define SL_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* Length (2-4) of the valid multi-byte sequence at s[0..len), or 0 when
 * there is none there (len >= 1; an ASCII byte is 0 too: callers take those
 * first). */
size_t sl_utf8_seq(const unsigned char *s, size_t len);

/* True when the n bytes at s are all valid UTF-8 (NUL bytes included: U+0000). */
bool sl_utf8_valid(const void *s, size_t n);

#endif
