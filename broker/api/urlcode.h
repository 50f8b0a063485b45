/* urlcode.h - percent-encoded text in URLs and forms (SQS Query bodies, the
 * console's query strings). Pure functions: no allocation, fuzzed. */
#ifndef SL_API_URLCODE_H
#define SL_API_URLCODE_H

#include <stdbool.h>
#include <stddef.h>

/* The value of a hex digit (either case), or -1. */
int sl_api_hexval(unsigned char c);

/* Percent-decodes [s, s+n) into dst (n + 1 bytes; '+' is a space),
 * NUL-terminated even on failure; false on a bad escape or a NUL byte. */
bool sl_api_url_decode(const char *s, size_t n, char *dst);

/* The value of `name` in the query of `path` ("/x?a=1&b=2"), decoded into
 * buf (cap bytes); NULL when absent; *bad set when present but undecodable
 * or longer than cap - 1. */
const char *sl_api_query_get(const char *path, const char *name, char *buf, size_t cap,
                             bool *bad);

#endif
