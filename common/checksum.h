/* checksum.h - XXH3-64 checksums (the only module that includes xxhash.h). */
#ifndef SL_CHECKSUM_H
#define SL_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

/* XXH3-64 of `len` bytes at `data` (borrowed), seed 0. */
uint64_t sl_checksum64(const void *data, size_t len);

/* The low 32 bits of XXH3-64, for small headers and index entries. */
static inline uint32_t sl_checksum32(const void *data, size_t len)
{
    return (uint32_t)sl_checksum64(data, len);
}

#endif
