/* checksum.c - XXH3-64 behind one function, so the hash can be swapped here. */
#include "common/checksum.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

uint64_t sl_checksum64(const void *data, size_t len)
{
    return XXH3_64bits(data, len);
}

_Static_assert(sizeof(XXH3_state_t) <= sizeof(((struct sl_checksum_state *)0)->opaque),
               "XXH3 state fits the opaque buffer");
_Static_assert(_Alignof(XXH3_state_t) <= 64, "XXH3 state alignment");

void sl_checksum_init(struct sl_checksum_state *st)
{
    XXH3_INITSTATE((XXH3_state_t *)st->opaque);
    XXH3_64bits_reset((XXH3_state_t *)st->opaque);
}

void sl_checksum_update(struct sl_checksum_state *st, const void *data, size_t len)
{
    XXH3_64bits_update((XXH3_state_t *)st->opaque, data, len);
}

uint64_t sl_checksum_final(const struct sl_checksum_state *st)
{
    return XXH3_64bits_digest((const XXH3_state_t *)st->opaque);
}
