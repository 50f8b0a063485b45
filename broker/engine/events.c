/* events.c - fans loop events out to the engine modules (see events.h). */
#include "broker/engine/events.h"

#include "broker/engine/catalog.h"
#include "broker/engine/coord.h"
#include "broker/engine/engine.h"
#include "broker/engine/fetch.h"
#include "broker/engine/produce.h"
#include "broker/engine/queue.h"
#include "broker/engine/reshard.h"

/* Retention's floor: a cluster shard's high watermark, so a record not yet on
 * min_insync_replicas brokers is never trimmed away by a tight limit (a follower would then
 * start its log past it, and the record live on one broker only); everything while the
 * shard has no replica attached yet; none on a single broker. */
static uint64_t retain_floor(void *ctx, const struct sl_bshard *b)
{
    struct sl_engine *e = ctx;
    if (!b->stream->cluster) {
        return SL_RETAIN_FLOOR_NONE;
    }
    uint64_t hw = 0;
    if (e->repl != NULL && b->repl != NULL) {
        (void)e->repl->readable(e->repl->ctx, b, &hw); /* (sets it whatever the role) */
    }
    return hw;
}

void sl_events_tick(void *ctx, uint64_t now_ms)
{
    struct sl_engine *e = ctx;
    sl_queue_tick(e);
    sl_fetch_tick(e, now_ms, false);
    sl_coord_tick(e, now_ms);
    if (!e->stopping && now_ms >= e->next_retention_ms) {
        e->next_retention_ms = now_ms + e->cfg.retention_check_ms;
        sl_catalog_retention(e->catalog, retain_floor, e);
    }
}

void sl_events_turn(void *ctx)
{
    struct sl_engine *e = ctx;
    sl_catalog_poll(e->catalog);
    sl_catalog_reap(e->catalog);
}

void sl_events_stop(void *ctx)
{
    struct sl_engine *e = ctx;
    e->stopping = true;
    sl_queue_stop(e);
    sl_fetch_tick(e, 0, true);
}

void sl_events_shard_listener(void *ctx, struct sl_shard *s)
{
    (void)s;
    struct sl_bshard *b = ctx;
    sl_produce_shard_progress(b);
    sl_queue_shard_progress(b);
    sl_fetch_shard_progress(b);
}

void sl_events_stream_free(void *ctx, struct sl_stream *st)
{
    (void)ctx;
    sl_reshard_stream_gone(st);
    sl_queue_stream_free(st);
    sl_fetch_stream_free(st);
    sl_produce_stream_free(st);
}
