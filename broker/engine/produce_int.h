/* produce_int.h - the produce path's private parts, shared by its files:
 *   produce.c          appends: checks, de-duplication, the per-shard FIFO, acks
 *   produce_reroute.c  an ACK_NONE batch a closed shard got, routed to the open shards (#16)
 * Nothing outside broker/engine/produce*.c includes this file. Threading: the main loop.
 */
#ifndef SL_PRODUCE_INT_H
#define SL_PRODUCE_INT_H

#include "broker/engine/produce.h"
#include "storage/batch.h"

struct sl_bshard;

/* Appends the records of `req`'s batch (header `h`, checked; not verified yet), which
 * reached closed shard `b` with ACK_NONE, to the open shards holding their keys; `cb` runs
 * once every part has answered (possibly before this returns). */
void sl_produce_reroute(struct sl_engine *e, struct sl_bshard *b, const struct sl_produce_req *req,
                        const struct sl_batch_header *h, sl_produce_cb cb, void *ctx);

#endif
