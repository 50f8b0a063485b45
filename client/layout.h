/* layout.h - a stream's shard layout as the client routes by it (resharding, #16): the
 * open shards' hash ranges as a routing table, and the records of a batch read back for
 * re-partitioning into another layout. Library-internal and pure (no I/O, no locks):
 * producer.c and consumer.c use it, tests/unit/test_layout.c drives it alone.
 */
#ifndef SL_CLIENT_LAYOUT_H
#define SL_CLIENT_LAYOUT_H

#include "client/sluice.h"
#include "storage/batch.h"

#include <stddef.h>
#include <stdint.h>

struct sl_zctx;

#define SL_LAYOUT_WHY_MAX 160u /* room for the reason a layout was refused */

/* One open shard's inclusive hash range. */
struct sl_layout_range {
    uint64_t start;
    uint64_t end;
    uint32_t shard;
};

/* The open shards sorted by start; their ranges partition [0, UINT64_MAX] (checked when
 * built), so every hash has exactly one. */
struct sl_layout {
    struct sl_layout_range *open; /* owned */
    uint32_t open_len;            /* >= 1 once built */
};

/* Builds `l` from a described stream's shards (`shards`, `n`; borrowed): the open ones.
 * On an error `l` is untouched and `why` (SL_LAYOUT_WHY_MAX bytes) says what is wrong.
 * Errors: SL_EPROTO (no open shard, or their ranges leave a gap or overlap: not a layout a
 * broker gives), SL_ENOMEM. */
int sl_layout_build(struct sl_layout *l, const struct sluice_shard_info *shards, size_t n,
                    char *why);

/* Frees the table; `l` may be zeroed or built. Idempotent. */
void sl_layout_fini(struct sl_layout *l);

/* The open shard whose range holds `hash` (binary search). `l` must be built. */
uint32_t sl_layout_route(const struct sl_layout *l, uint64_t hash);

/* Routing across a change: `draining` (n entries, ascending ids, borrowed) are closed shards
 * with records still waiting to move on. A key's records must not pass those, so a hash goes
 * to the oldest draining shard (lowest id: a child's id is above its parents') among those
 * with ids >= min_id whose range holds it, else to its open shard. A producer routes new
 * records with min_id 0, and the records leaving closed shard P with min_id P + 1. */
uint32_t sl_layout_route_draining(const struct sl_layout *l, const struct sl_layout_range *draining,
                                  uint32_t n, uint64_t hash, uint32_t min_id);

/* Called per record of a batch, in order: `index` counts from 0; `rec` and what it points
 * into are borrowed for the call (rec->timestamp_ms is the producer's time). A non-zero
 * return stops the walk and is returned. */
typedef int (*sl_layout_record_fn)(void *ctx, uint32_t index, const struct sl_record *rec);

/* Walks the records of a finished batch (`len` bytes at `batch`, borrowed) with keys,
 * values, attributes and timestamps as they were added. A zstd batch needs `z` (it is
 * decompressed into a buffer allocated for the call). Errors: SL_ECORRUPT (the batch fails
 * its checks), SL_EINVAL (zstd without `z`), SL_ENOMEM, or what `fn` returned. */
int sl_layout_batch_each(const void *batch, size_t len, struct sl_zctx *z, sl_layout_record_fn fn,
                         void *ctx);

#endif
