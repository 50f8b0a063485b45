/* events.h - what the engines do when something happens outside a request:
 * the loop's tick (long-poll deadlines, lease expiry), shutdown (parked
 * requests answer now), a shard making records visible, a stream being
 * freed. The catalog and the network loop (struct sl_net_hooks) call these; they fan out to the
 * engine modules, so neither needs to know them.
 *
 * Threading: the main loop.
 */
#ifndef SL_EVENTS_H
#define SL_EVENTS_H

#include <stdint.h>

struct sl_engine;
struct sl_shard;
struct sl_stream;

/* From the loop's tick (ctx = the engine; now_ms monotonic): deadlines,
 * lease expiry, retention every retention_check_ms. */
void sl_events_tick(void *ctx, uint64_t now_ms);
/* Shutdown begins: parked fetches and receives answer now. */
void sl_events_stop(void *ctx);
/* Top of each loop turn, never inside a callback: streams created in the
 * background are installed, deleted streams nothing holds any more freed. */
void sl_events_turn(void *ctx);
/* The catalog's shard listener (ctx = the struct sl_bshard): records became
 * visible, or the shard made room for appends. */
void sl_events_shard_listener(void *ctx, struct sl_shard *s);
/* The catalog's stream_free hook. */
void sl_events_stream_free(void *ctx, struct sl_stream *st);

#endif
