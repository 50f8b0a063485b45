/* control.h - the broker's own state in a shard's log (cluster mode, docs/REPLICATION.md
 * "Checkpoints and consumer groups"): a consumer group's checkpoint written as a control
 * batch (storage/batch.h SL_BATCH_FLAG_CONTROL) in the log of the group's shard
 * (sl_partition_group_shard), so that it replicates with that shard - same leader, same
 * epoch, same ack rule - and every replica applies it to its own checkpoint store.
 *
 * Pure: no I/O, no engine state. The decoder takes bytes another broker sent (a follower
 * applies what its leader replicated), so it checks every field; tests/fuzz/fuzz_control.c
 * drives it.
 *
 * A control batch: uncompressed, producer id 0, one record per checkpoint:
 *   key   "checkpoint"
 *   value u32 shard | u64 seq | group name (1 .. SL_CKPT_GROUP_NAME_MAX bytes, no NUL)
 *   the record's timestamp: the commit's time (Unix ms)
 * Records of another key are skipped (a later kind read by this version).
 */
#ifndef SL_CONTROL_H
#define SL_CONTROL_H

#include "storage/batch.h"
#include "storage/checkpoint.h"

#include <stddef.h>
#include <stdint.h>

#define SL_CONTROL_CKPT_KEY        "checkpoint"
#define SL_CONTROL_CKPT_FIXED      12u /* u32 shard + u64 seq before the group name */
/* The bytes one checkpoint's control batch takes at most: header, a record's framing
 * (five varints of at most 5 bytes), key, value. */
#define SL_CONTROL_CKPT_BATCH_MAX                                                              \
    (SL_BATCH_HEADER_BYTES + 25u + sizeof(SL_CONTROL_CKPT_KEY) - 1u + SL_CONTROL_CKPT_FIXED +  \
     SL_CKPT_GROUP_NAME_MAX)

struct sl_control_ckpt {
    char group[SL_CKPT_GROUP_NAME_MAX + 1]; /* NUL-terminated */
    uint32_t shard;
    uint64_t seq;        /* the next sequence to read */
    uint64_t updated_ms; /* the commit's time */
};

/* Builds the control batch of one checkpoint in `buf` (cap >= SL_CONTROL_CKPT_BATCH_MAX).
 * Errors: SL_EINVAL (group empty, too long, or holding a NUL). */
int sl_control_ckpt_batch(const struct sl_control_ckpt *c, uint8_t *buf, size_t cap,
                          size_t *len);

typedef void (*sl_control_ckpt_fn)(void *ctx, const struct sl_control_ckpt *c);

/* Calls fn for each checkpoint of the control batch `batch` (header `h` peeked, body
 * verified: h->length bytes present). Checks everything first, then calls: a batch that
 * fails a check applies nothing. Errors: SL_EINVAL (not a control batch), SL_ECORRUPT (a
 * compressed control batch, or a record that does not decode). */
int sl_control_each_ckpt(const uint8_t *batch, const struct sl_batch_header *h,
                         sl_control_ckpt_fn fn, void *ctx);

#endif
