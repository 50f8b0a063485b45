/* checksum.c - XXH3-64 behind one function, so the hash can be swapped here. */
#include "common/checksum.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

uint64_t sl_checksum64(const void *data, size_t len)
{
    return XXH3_64bits(data, len);
}
