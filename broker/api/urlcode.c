/* urlcode.c - percent-decoding (see urlcode.h). */
#include "broker/api/urlcode.h"

#include <string.h>

int sl_api_hexval(unsigned char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* Percent-decodes [s, s+n) into dst (n + 1 bytes), NUL-terminated even on
 * failure; false on a bad escape or a NUL byte (raw or encoded). */
bool sl_api_url_decode(const char *s, size_t n, char *dst)
{
    dst[0] = '\0';
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+') {
            dst[o++] = ' ';
        } else if (s[i] == '%') {
            int hi = i + 2 < n ? sl_api_hexval((unsigned char)s[i + 1]) : -1;
            int lo = i + 2 < n ? sl_api_hexval((unsigned char)s[i + 2]) : -1;
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
                dst[o] = '\0';
                return false;
            }
            dst[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else if (s[i] == '\0') {
            dst[o] = '\0';
            return false;
        } else {
            dst[o++] = s[i];
        }
    }
    dst[o] = '\0';
    return true;
}

const char *sl_api_query_get(const char *path, const char *name, char *buf, size_t cap,
                             bool *bad)
{
    const char *q = path != NULL ? strchr(path, '?') : NULL;
    size_t nlen = strlen(name);
    while (q != NULL && *q != '\0') {
        q++; /* past '?' or '&' */
        size_t plen = strcspn(q, "&");
        if (plen > nlen && strncmp(q, name, nlen) == 0 && q[nlen] == '=') {
            size_t vlen = plen - nlen - 1;
            if (vlen >= cap || !sl_api_url_decode(q + nlen + 1, vlen, buf)) {
                *bad = true;
                return NULL;
            }
            return buf;
        }
        q += plen;
    }
    return NULL;
}
