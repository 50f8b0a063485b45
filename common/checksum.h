/* checksum.h - XXH3-64 checksums (the only module that includes xxhash.h). */
#ifndef SL_CHECKSUM_H
#define SL_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

/* XXH3-64 of `len` bytes at `data` (borrowed), seed 0. */
uint64_t sl_checksum64(const void *data, size_t len);

/* Streaming XXH3-64: the same value as sl_checksum64 over the concatenation
 * of the updates. The state is plain memory (no allocation). */
struct sl_checksum_state {
    _Alignas(64) unsigned char opaque[640];
};
void sl_checksum_init(struct sl_checksum_state *st);
void sl_checksum_update(struct sl_checksum_state *st, const void *data, size_t len);
uint64_t sl_checksum_final(const struct sl_checksum_state *st);

/* The low 32 bits of XXH3-64, for small headers and index entries. */
static inline uint32_t sl_checksum32(const void *data, size_t len)
{
    return (uint32_t)sl_checksum64(data, len);
}

#endif
