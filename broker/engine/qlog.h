/* qlog.h - a queue group's durable changes, replicated on cluster streams (docs/REPLICATION.md
 * "Queue groups").
 *
 * queue.c changes a group's durable state (storage/qstate.h: definitions, acks, delivery
 * counts, counters) through these calls. On a local stream each is the store's own call. On
 * a cluster stream the change is also a control record (control.h) in the log of the group's
 * shard (sl_partition_group_shard): applied to this broker's store at once (the getters see
 * it, as the store's calls do), and written with the other changes of the same loop turn as
 * one control batch through the replicated produce path (ack = durable). `cb` runs once the
 * change is durable in this broker's store and on min_insync_replicas brokers' logs, with
 * the first error of either. Every replica of the shard applies the records to its own store
 * as it writes them (sl_qlog_apply), so the broker elected next holds every acknowledged
 * change: a new home rebuilds its leases as expired (the records not acked are delivered
 * again with their counts: at-least-once) and never delivers an acked one again.
 *
 * Ownership: a batch being filled is the engine's (e->qlog_open), then the produce's, and is
 * freed after its callbacks ran; it holds its stream (st->inflight) meanwhile.
 *
 * Threading: the main loop. Callbacks run from the loop, never inside these calls. Errors,
 * returned at once with no change made: those of the store's call, and SL_ENOMEM.
 */
#ifndef SL_QLOG_H
#define SL_QLOG_H

#include "storage/batch.h"
#include "storage/qstate.h"

#include <stdint.h>

struct sl_engine;
struct sl_stream;
struct sl_bshard;

#define SL_QLOG_BATCH_BYTES (64u << 10) /* a control batch of queue changes, at most */
#define SL_QLOG_CHANGES_MAX 2048u       /* changes in one batch */

int sl_qlog_create_group(struct sl_engine *e, struct sl_stream *st, const struct sl_qgroup_def *def,
                         uint32_t shard_count, const uint64_t *start_floor, sl_qstate_cb cb,
                         void *ctx);
int sl_qlog_delete_group(struct sl_engine *e, struct sl_stream *st, const char *group,
                         sl_qstate_cb cb, void *ctx);
int sl_qlog_ack(struct sl_engine *e, struct sl_stream *st, const char *group, uint32_t shard,
                uint64_t first, uint64_t end, sl_qstate_cb cb, void *ctx);
int sl_qlog_set_count(struct sl_engine *e, struct sl_stream *st, const char *group, uint32_t shard,
                      uint64_t seq, uint32_t count, sl_qstate_cb cb, void *ctx);
int sl_qlog_add_counters(struct sl_engine *e, struct sl_stream *st, const char *group,
                         uint64_t dead_lettered, uint64_t filtered_out, sl_qstate_cb cb, void *ctx);

/* A follower wrote control batch `batch` (header `h`) to its replica b: its queue changes go
 * to this broker's store of b's stream. A change the store refuses is logged (the log keeps
 * it; this replica's store lacks it). */
void sl_qlog_apply(struct sl_engine *e, struct sl_bshard *b, const uint8_t *batch,
                   const struct sl_batch_header *h);

#endif
