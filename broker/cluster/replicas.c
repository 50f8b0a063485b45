/* replicas.c - the broker's replica manager (replicas.h). */
#include "broker/cluster/replicas.h"

#include "common/error.h"

#include <stddef.h>

int sl_replicas_route(const struct sl_replicas *rs, const char *stream, uint32_t shard,
                      struct sl_repl_meta *m)
{
    (void)stream;
    (void)shard;
    (void)m;
    if (rs == NULL) {
        return SL_ENOTFOUND;
    }
    return SL_ENOTFOUND;
}
