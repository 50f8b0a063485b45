/* partition.h - partition key -> shard, shared by the broker and the client.
 *
 * hash = XXH3-64(key, seed 0). A stream of N shards splits the 64-bit hash
 * space into N contiguous ranges: shard i owns [i * W, (i + 1) * W - 1] with
 * W = floor((2^64 - 1) / N), and the last shard also owns the remainder up to
 * 2^64 - 1. Contiguous ranges let shards be split and merged later (Kinesis).
 */
#ifndef SL_PARTITION_H
#define SL_PARTITION_H

#include "common/checksum.h"

#include <stdint.h>

static inline uint64_t sl_partition_hash(const void *key, size_t len)
{
    return sl_checksum64(key, len);
}

static inline uint64_t sl_partition_width(uint32_t shard_count)
{
    return shard_count <= 1 ? UINT64_MAX : UINT64_MAX / shard_count;
}

/* The shard owning `hash` among `shard_count` (>= 1). */
static inline uint32_t sl_partition_shard(uint64_t hash, uint32_t shard_count)
{
    if (shard_count <= 1) {
        return 0;
    }
    uint64_t i = hash / sl_partition_width(shard_count);
    return i >= shard_count ? shard_count - 1 : (uint32_t)i;
}

/* The inclusive hash range of `shard`. */
static inline void sl_partition_range(uint32_t shard, uint32_t shard_count, uint64_t *start,
                                      uint64_t *end)
{
    uint64_t w = sl_partition_width(shard_count);
    *start = shard_count <= 1 ? 0 : (uint64_t)shard * w;
    *end = shard + 1 >= shard_count ? UINT64_MAX : (uint64_t)(shard + 1) * w - 1;
}

/* The shard whose log keeps consumer group `group`'s state (its checkpoints) on a cluster
 * stream of `shard_count` shards (docs/REPLICATION.md): the leader of that shard is the
 * group's coordinator. The broker and libsluice must agree: both call this. */
static inline uint32_t sl_partition_group_shard(const char *group, size_t len,
                                                uint32_t shard_count)
{
    return shard_count <= 1 ? 0 : (uint32_t)(sl_partition_hash(group, len) % shard_count);
}

#endif
