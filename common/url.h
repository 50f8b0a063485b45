/* url.h - URLs shown to people: in logs, errors and the console.
 *
 * Threading: pure; any thread.
 */
#ifndef SL_URL_H
#define SL_URL_H

#include <stddef.h>

/* `url` without what may be a secret: the userinfo ("user:password@") and
 * the query and fragment (tokens, signatures) become "***", into out (cap
 * bytes, NUL-terminated, cut at cap - 1). The scheme, host, port and path
 * are kept, so the destination can still be recognised. */
void sl_url_redact(const char *url, char *out, size_t cap);

#endif
