/* control.h - the broker's own state in a shard's log (cluster mode, docs/REPLICATION.md
 * "Checkpoints and consumer groups", "Queue groups"): a consumer group's checkpoint, or a
 * change of a queue group's state, written as a control batch (storage/batch.h
 * SL_BATCH_FLAG_CONTROL) in the log of the group's shard (sl_partition_group_shard), so
 * that it replicates with that shard - same leader, same epoch, same ack rule - and every
 * replica applies it to its own store (checkpoints, storage/checkpoint.h; queue state,
 * storage/qstate.h).
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
#include "storage/qstate.h"

#include <stddef.h>
#include <stdint.h>

#define SL_CONTROL_CKPT_KEY   "checkpoint"
#define SL_CONTROL_CKPT_FIXED 12u /* u32 shard + u64 seq before the group name */
/* The bytes one checkpoint's control batch takes at most: header, a record's framing
 * (five varints of at most 5 bytes), key, value. */
#define SL_CONTROL_CKPT_BATCH_MAX                                                                  \
    (SL_BATCH_HEADER_BYTES + 25u + sizeof(SL_CONTROL_CKPT_KEY) - 1u + SL_CONTROL_CKPT_FIXED +      \
     SL_CKPT_GROUP_NAME_MAX)

struct sl_control_ckpt {
    char group[SL_CKPT_GROUP_NAME_MAX + 1]; /* NUL-terminated */
    uint32_t shard;
    uint64_t seq;        /* the next sequence to read */
    uint64_t updated_ms; /* the commit's time */
};

/* Builds the control batch of one checkpoint in `buf` (cap >= SL_CONTROL_CKPT_BATCH_MAX).
 * Errors: SL_EINVAL (group empty, too long, or holding a NUL). */
int sl_control_ckpt_batch(const struct sl_control_ckpt *c, uint8_t *buf, size_t cap, size_t *len);

typedef void (*sl_control_ckpt_fn)(void *ctx, const struct sl_control_ckpt *c);

/* Calls fn for each checkpoint of the control batch `batch` (header `h` peeked, body
 * verified: h->length bytes present). Checks everything first, then calls: a batch that
 * fails a check applies nothing. Errors: SL_EINVAL (not a control batch), SL_ECORRUPT (a
 * compressed control batch, or a record that does not decode). */
int sl_control_each_ckpt(const uint8_t *batch, const struct sl_batch_header *h,
                         sl_control_ckpt_fn fn, void *ctx);

/* ---- queue-group state ----------------------------------------------------------------
 *
 * One record per change, as storage/qstate.h's mutations take them (integers little-endian, as
 * every field of the log; `group` is the group's name, 1 .. SL_QSTATE_NAME_MAX bytes, no NUL):
 *   "q.ack"      u32 shard | u64 first | u64 end | group          (acked [first, end))
 *   "q.count"    u32 shard | u64 seq | u32 count | group          (a delivery count)
 *   "q.counters" u64 dead_lettered | u64 filtered_out | group     (the totals after it)
 *   "q.delete"   group
 *   "q.create"   u32 shard_count | u32 visibility_ms | u32 max_deliveries | u32 max_inflight |
 *                u8 flags (1 ordered, 2 filter_body) | u8 start_kind | u64 start_seq |
 *                u64 start_time_ms | u64 created_ms | u64 end_time_ms | u16 name_len |
 *                u16 dead_letter_len | u32 filter_len | name | dead_letter | filter |
 *                shard_count x u64 start floor
 * A batch may hold several, of several groups; they apply in order, and each applies
 * idempotently (a follower may apply a batch again: replicas.c fwrite_hold). */
enum sl_control_qkind {
    SL_CONTROL_Q_ACK = 1,
    SL_CONTROL_Q_COUNT,
    SL_CONTROL_Q_COUNTERS,
    SL_CONTROL_Q_DELETE,
    SL_CONTROL_Q_CREATE,
};

#define SL_CONTROL_Q_CREATE_FIXED 58u
/* The bytes of the largest queue record's value (a create with every field at its bound). */
#define SL_CONTROL_Q_VALUE_MAX                                                                     \
    (SL_CONTROL_Q_CREATE_FIXED + 2u * SL_QSTATE_NAME_MAX + SL_QSTATE_FILTER_MAX +                  \
     8u * SL_QSTATE_SHARDS_MAX)

struct sl_control_qop {
    enum sl_control_qkind kind;
    char group[SL_QSTATE_NAME_MAX + 1]; /* NUL-terminated (CREATE: def.name too) */
    uint32_t shard;                     /* ACK, COUNT */
    uint64_t a, b; /* ACK: [a, b); COUNT: seq a, count b; COUNTERS: dead a, filtered b */
    /* CREATE: def.filter points at `filter` (or is NULL); floors at shard_count
     * little-endian u64 (encoding: the caller's array; decoding: borrowed from the batch) */
    struct sl_qgroup_def def;
    char filter[SL_QSTATE_FILTER_MAX + 1];
    uint32_t shard_count;
    const uint64_t *floors;   /* encoding: host order */
    const uint8_t *floors_be; /* decoding */
};

/* Encodes `op` as one record (its key and `value`, which the record points at) for a
 * control batch the caller builds; `value` has room for SL_CONTROL_Q_VALUE_MAX bytes.
 * CREATE takes def, shard_count and floors; the others group and their fields. Errors:
 * SL_EINVAL (a name empty, too long or holding a NUL; a filter too long; shard_count 0 or
 * above SL_QSTATE_SHARDS_MAX). */
int sl_control_qop_record(const struct sl_control_qop *op, uint64_t now_ms, uint8_t *value,
                          struct sl_record *rec);

typedef void (*sl_control_qop_fn)(void *ctx, const struct sl_control_qop *op);

/* Calls fn for each queue-state record of the control batch `batch` (as
 * sl_control_each_ckpt: checks everything first, then calls; `scratch` holds the decoded
 * record, big enough for a filter, and is what fn sees). Errors: SL_EINVAL (not a control
 * batch), SL_ECORRUPT. */
int sl_control_each_qop(const uint8_t *batch, const struct sl_batch_header *h,
                        struct sl_control_qop *scratch, sl_control_qop_fn fn, void *ctx);

#endif
