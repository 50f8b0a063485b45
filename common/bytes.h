/* bytes.h - little-endian loads and stores for on-disk and on-wire fields
 * (unaligned-safe; compilers turn these into single moves). */
#ifndef SL_BYTES_H
#define SL_BYTES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline uint16_t sl_get_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t sl_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t sl_get_u64(const uint8_t *p)
{
    return (uint64_t)sl_get_u32(p) | (uint64_t)sl_get_u32(p + 4) << 32;
}

static inline void sl_put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static inline void sl_put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static inline void sl_put_u64(uint8_t *p, uint64_t v)
{
    sl_put_u32(p, (uint32_t)v);
    sl_put_u32(p + 4, (uint32_t)(v >> 32));
}

/* A bounds-checked reader over decoded bytes: a take past the end sets `bad`
 * (sticky) and yields NULL, so a decoder checks once at the end. */
struct sl_reader {
    const uint8_t *p;
    size_t left;
    bool bad;
};

static inline const uint8_t *sl_reader_take(struct sl_reader *r, size_t n)
{
    if (r->bad || r->left < n) {
        r->bad = true;
        return NULL;
    }
    const uint8_t *p = r->p;
    r->p += n;
    r->left -= n;
    return p;
}

#endif
