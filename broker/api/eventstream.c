/* eventstream.c - AWS event stream message encoding (see eventstream.h).
 *
 * CRC-32 is the reflected IEEE polynomial 0xEDB88320 with a 256-entry table
 * built on first use (so no zlib dependency for 40 lines).
 * Threading: the table is filled once on the main loop; the rest is pure.
 */
#include "broker/api/eventstream.h"

#include "common/assert.h"

#include <stdbool.h>
#include <string.h>

#define ES_TYPE_STRING 7u

static uint32_t crc_table[256];
static bool crc_ready;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) {
            c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        }
        crc_table[i] = c;
    }
    crc_ready = true;
}

uint32_t sl_es_crc32(uint32_t crc, const void *p, size_t n)
{
    if (!crc_ready) {
        crc_init();
    }
    const uint8_t *b = p;
    crc = ~crc;
    for (size_t i = 0; i < n; i++) {
        crc = crc_table[(crc ^ b[i]) & 0xff] ^ (crc >> 8);
    }
    return ~crc;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static size_t headers_size(const struct sl_es_header *h, uint32_t n)
{
    size_t len = 0;
    for (uint32_t i = 0; i < n; i++) {
        size_t nl = strlen(h[i].name), vl = strlen(h[i].value);
        SL_ASSERT(nl > 0 && nl <= SL_ES_HEADER_NAME_MAX && vl <= SL_ES_HEADER_VALUE_MAX);
        len += 1 + nl + 1 + 2 + vl;
    }
    return len;
}

size_t sl_es_size(const struct sl_es_header *h, uint32_t n, size_t len)
{
    return SL_ES_PRELUDE_BYTES + headers_size(h, n) + len + SL_ES_TRAILER_BYTES;
}

void sl_es_write(uint8_t *dst, const struct sl_es_header *h, uint32_t n, const void *payload,
                 size_t len)
{
    size_t hl = headers_size(h, n);
    size_t total = SL_ES_PRELUDE_BYTES + hl + len + SL_ES_TRAILER_BYTES;
    SL_ASSERT(total <= UINT32_MAX);
    put_be32(dst, (uint32_t)total);
    put_be32(dst + 4, (uint32_t)hl);
    put_be32(dst + 8, sl_es_crc32(0, dst, 8));
    uint8_t *p = dst + SL_ES_PRELUDE_BYTES;
    for (uint32_t i = 0; i < n; i++) {
        size_t nl = strlen(h[i].name), vl = strlen(h[i].value);
        *p++ = (uint8_t)nl;
        memcpy(p, h[i].name, nl);
        p += nl;
        *p++ = ES_TYPE_STRING;
        *p++ = (uint8_t)(vl >> 8);
        *p++ = (uint8_t)vl;
        memcpy(p, h[i].value, vl);
        p += vl;
    }
    if (len > 0) {
        memcpy(p, payload, len);
        p += len;
    }
    put_be32(p, sl_es_crc32(0, dst, (size_t)(p - dst)));
    SL_ASSERT((size_t)(p - dst) + SL_ES_TRAILER_BYTES == total);
}
