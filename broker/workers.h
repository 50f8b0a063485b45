/* workers.h - threads that own shards.
 *
 * The broker runs `workers` loops, each with its own io_uring ring. Worker 0
 * is the main loop: the network, the catalog, queue groups, checkpoints and
 * every request's protocol work. Workers 1..n-1 are threads. Every shard has
 * one owner (sl_workers_pick: spread over all n, worker 0 included), and
 * every operation on its log - append, read, retention, open, close - runs
 * on the owner's thread with the owner's ring, so a shard log is never shared
 * between threads and its code has no locks.
 *
 * The main loop reaches a shard through the sl_bshard_* calls below: for a
 * shard it owns they call storage/shard.h directly; for another worker's
 * they post a message. Each worker has two single-producer single-consumer
 * message rings (main -> worker, worker -> main; lock-free, bounded, with a
 * sender-side overflow list) and an eventfd per direction, written once per
 * loop tick that posted something, to wake the other side. The data path
 * takes no lock; batches and read buffers are passed by pointer, not copied.
 *
 * The main loop keeps a copy of each remote shard's stats. Every message
 * about a shard carries the owner's stats taken when it was sent, and the
 * copy is refreshed before the message's callback runs, so a caller never
 * sees stats older than a completion it was told of.
 *
 * Rare control operations (open, close, a lag request's time lookup) are
 * synchronous calls: the main loop waits on a condition variable while the
 * owner runs the function.
 *
 * Threading: every function here is called from the main loop's thread.
 */
#ifndef SL_WORKERS_H
#define SL_WORKERS_H

#include "storage/shard.h"

#include <stddef.h>
#include <stdint.h>

struct sl_ring;
struct sl_bshard;
struct sl_workers;

#define SL_WORKERS_MAX 64u

/* Starts n - 1 worker threads (n = 1: none, everything on `home`), each with
 * a ring of `ring_entries` entries, and arms the main loop's wake-up read on
 * `home`. Errors: SL_EINVAL (n outside 1..SL_WORKERS_MAX), SL_ENOMEM,
 * SL_ESYS, SL_EUNSUPPORTED. */
int sl_workers_start(uint32_t n, uint32_t ring_entries, struct sl_ring *home,
                     struct sl_workers **out);
/* Stops and joins the threads. Every remote shard must be closed first.
 * The main ring must not run afterwards (its wake-up read and possibly an
 * end-of-tick step still name the freed object): tear it down. NULL-safe. */
void sl_workers_stop(struct sl_workers *w);

uint32_t sl_workers_count(const struct sl_workers *w); /* NULL: 1 */
/* The owner of shard `shard` of stream `stream`: spreads a stream's shards
 * over the workers round-robin from a start given by the name's hash. */
uint32_t sl_workers_pick(const struct sl_workers *w, const char *stream, uint32_t shard);

/* Runs fn(arg) on worker `i`'s thread and waits for it (i == 0: here). */
void sl_workers_call(struct sl_workers *w, uint32_t i, void (*fn)(void *arg), void *arg);

/* Handles every message the workers sent the main loop (callbacks run
 * here). The wake-up read does this by itself; call it only where messages
 * must not outlive something about to be freed. NULL-safe. */
void sl_workers_drain(struct sl_workers *w);

/* ---- shard operations, routed to the owner ------------------------------ */

/* Opens the shard's log on its owner (b->workers, b->owner, b->stream and
 * b->id set; `home` is the main loop's ring, for shards it owns), sets the listener (run on the main loop) and, with `rebuild`
 * (start-up), runs rebuild(ctx, b) on the owner afterwards. */
int sl_bshard_open(struct sl_bshard *b, struct sl_ring *home, const char *dir,
                   const struct sl_shard_config *cfg, sl_shard_listener listener, void (*rebuild)(void *ctx, struct sl_bshard *b,
                                                               struct sl_ring *ring),
                   void *rebuild_ctx);
/* Closes the log on its owner and handles the messages it had sent about
 * it. NULL-safe as to b->log. */
void sl_bshard_close(struct sl_bshard *b);

/* sl_shard_append_ex, except that `batch` is borrowed until `cb` runs, and
 * for a remote shard every error comes through `cb` (the owner waits for
 * staging space itself, so SL_EAGAIN is never returned). */
int sl_bshard_append(struct sl_bshard *b, const void *batch, size_t len, unsigned flags,
                     sl_append_cb cb, void *ctx);
void sl_bshard_read(struct sl_bshard *b, struct sl_shard_read *rd);
void sl_bshard_stats(const struct sl_bshard *b, struct sl_shard_stats *st);
int sl_bshard_time_near_seq(struct sl_bshard *b, uint64_t seq, uint64_t *time_ms);
/* Runs retention on the owner (asynchronously for a remote shard). */
void sl_bshard_retention(struct sl_bshard *b);

#endif
