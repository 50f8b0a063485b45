/* queue.h - queue groups (competing consumers) and topic subscriptions on a
 * stream's log: leases with visibility timeouts, acks, nacks, redelivery,
 * dead letters, filters.
 *
 * Threading: the loop thread of the catalog's ring. The durable state (ack
 * floors, acked ranges, delivery counts, group definitions) lives in the
 * stream's storage/qstate; this module keeps the runtime state: leases (at
 * most max_inflight per group), the read frontier per shard, parked
 * receives. Memory per group: O(max_inflight + acked ranges), not O(backlog).
 */
#ifndef SL_QUEUE_H
#define SL_QUEUE_H

#include "broker/server.h"

struct sl_stream;
struct sl_bshard;

/* Request handlers (answer exactly once, call sl_conn_request_done). */
void sl_queue_create_group(struct sl_server *srv, struct sl_conn *c, sl_request *req);
void sl_queue_delete_group(struct sl_server *srv, struct sl_conn *c, sl_request *req);
void sl_queue_list_groups(struct sl_server *srv, struct sl_conn *c, sl_request *req);
void sl_queue_receive(struct sl_server *srv, struct sl_conn *c, sl_request *req);
void sl_queue_ack(struct sl_server *srv, struct sl_conn *c, sl_request *req);
void sl_queue_nack(struct sl_server *srv, struct sl_conn *c, sl_request *req);
void sl_queue_extend(struct sl_server *srv, struct sl_conn *c, sl_request *req);
void sl_queue_stats(struct sl_server *srv, struct sl_conn *c, sl_request *req);
void sl_queue_purge(struct sl_server *srv, struct sl_conn *c, sl_request *req);

/* Lease expiry and long-poll deadlines; from the server tick. */
void sl_queue_tick(struct sl_server *srv, uint64_t now_ms);
/* New records on a shard: wake receives parked on its stream's groups. */
void sl_queue_shard_progress(struct sl_server *srv, struct sl_bshard *b);
/* Shutdown: answer parked receives now. */
void sl_queue_stop(struct sl_server *srv);
/* Frees a stream's runtime queue state (stream deleted or catalog closed). */
void sl_queue_stream_free(struct sl_stream *st);

#endif
