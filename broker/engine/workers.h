/* workers.h - threads that own shards.
 *
 * The broker runs `workers` loops, each with its own io_uring ring. Worker 0
 * is the main loop: the network, the catalog, queue groups, checkpoints and
 * every request's protocol work. Workers 1..n-1 are threads (with
 * conn_workers their rings also serve native connections: broker/net's
 * relay, which runs its own code on them through sl_workers_call). Every shard has
 * one owner (sl_workers_pick: spread over all n, worker 0 included), and
 * every operation on its log - append, read, retention, open, close - runs
 * on the owner's thread with the owner's ring, so a shard log is never shared
 * between threads and its code has no locks.
 *
 * The main loop reaches a shard through the sl_wshard_* calls below: for a
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

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sl_ring;
struct sl_workers;

#define SL_WORKERS_MAX 64u
_Static_assert(SL_WORKERS_MAX <= UINT16_MAX, "struct sl_wshard keeps its owner in 16 bits");

struct wshard_wait; /* an append waiting for staging space on the owner */
struct sl_seqgate;  /* producers whose batch failed here (seqgate.h) */

/* A shard as the main loop reaches it: its log and who owns it. Embedded in
 * the catalog's shard (broker/engine/catalog.h); every field is this
 * module's. */
/* Batches an owner read ahead for a watched shard (sl_wshard_watch), while its notice runs
 * the listener on the main loop: whole verified batches [seq, next_seq). */
struct sl_wshard_ahead {
    const uint8_t *data; /* NULL: none */
    uint32_t len;
    uint32_t batch_count;
    uint64_t seq;
    uint64_t next_seq;
};
#define SL_WSHARD_READAHEAD_BYTES (64u << 10)

struct sl_wshard {
    struct sl_shard *log;       /* touched only on its owner's thread */
    struct sl_workers *workers; /* NULL: one loop */
    uint16_t owner;             /* the worker owning the log (0: the main loop) */
    bool closed;
    bool ow_active; /* the owner's thread only: on the ow_act list */
    uint8_t ow_quiet; /* the owner's thread only: stats rounds without a change while active */
    /* Retention removed the shard (sl_wshard_retire): no log, and a read
     * answers on the main loop as of an empty log ending at gone_end. Main
     * loop only. */
    bool gone;            /* (its end: mirror.next_seq, set by sl_wshard_retire) */
    /* Remote shards, main loop: a watch posted and not yet spent by a notice. (The
     * read-ahead a notice carries and the I/O times of the append being answered live in
     * workers.c only while their callback runs: an idle shard stays small.) */
    bool watch_posted;
    bool ow_watch; /* the owner's thread only: a long-poll waits at ow_watch_seq: read
                    * ahead at the next notice */
    struct sl_ring *home; /* the main loop's ring, for a gone shard's answers */
    sl_shard_listener listener; /* run on the main loop when records become visible */
    void *listener_ctx;
    struct sl_shard_stats mirror; /* remote shards: the owner's stats as last reported */
    /* the owner's thread only */
    struct sl_wshard *ow_next; /* the owner's list of its shards (doubly linked) */
    struct sl_wshard *ow_prev;
    struct sl_wshard *ow_act_next; /* the owner's shards posted about lately */
    struct sl_wshard *ow_act_prev;
    struct sl_wshard *ow_wait_next;
    struct wshard_wait *ow_wait_head;
    struct wshard_wait *ow_wait_tail;
    struct sl_shard_stats ow_published;
    struct sl_seqgate *ow_gate; /* NULL until a batch with a producer id fails */
    uint64_t ow_watch_seq;
};

/* A read routed to a shard's owner: the caller fills `rd` (buffer, position,
 * cb, ctx) as for sl_shard_read; the callback runs on the main loop with
 * &wr->rd. The fields ending in _ are this module's (the owner's callback
 * in transit), so storage's read struct carries nothing of the broker. */
struct sl_wshard_read {
    struct sl_shard_read rd;
    sl_read_cb cb_;
    void *ctx_;
    struct sl_wshard *b_;
    struct sl_deferred defer_; /* a gone shard's answer */
};

/* Starts n - 1 worker threads (n = 1: none, everything on `home`), each with
 * a ring of `ring_entries` entries (armed with `home`'s fault plan, if a test
 * armed one: common/ring.h), and arms the main loop's wake-up read on
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

/* Opens the shard's log on its owner (b->workers and b->owner set; `home`
 * is the main loop's ring, for shards it owns) and sets the listener (run on
 * the main loop with listener_ctx). Synchronous (one call to the owner). */
int sl_wshard_open(struct sl_wshard *b, struct sl_ring *home, const char *dir,
                   const struct sl_shard_config *cfg, sl_shard_listener listener,
                   void *listener_ctx);
/* The ring shard logs of worker i use (home for 0): a log may be opened
 * with it on another thread (sl_shard_open submits nothing), then adopted. */
struct sl_ring *sl_workers_ring(struct sl_workers *ws, struct sl_ring *home, uint32_t i);
/* A log opened elsewhere with its owner's ring and not used since, for a
 * shard whose b->workers and b->owner are set and b->log is NULL. */
struct sl_wshard_adoption {
    struct sl_wshard *b;
    struct sl_shard *log;
    void *listener_ctx;
};
/* Gives each owner its logs: they join their owners as if sl_wshard_open had
 * opened them. Synchronous: one call to each owner named, whatever n. */
void sl_wshard_adopt(struct sl_workers *ws, const struct sl_wshard_adoption *a, uint32_t n,
                     sl_shard_listener listener);
/* Closes the log on its owner and handles the messages it had sent about
 * it. NULL-safe as to b->log. */
void sl_wshard_close(struct sl_wshard *b);
/* The same for many shards: one call to each owner named, whatever n
 * (deleting a stream, shutting down). */
void sl_wshard_close_many(struct sl_workers *ws, struct sl_wshard *const *b, uint32_t n);
/* The shard is gone (retention removed a closed shard whose log ended at
 * `end`): its log, if open, closes as with sl_wshard_close (reads in flight
 * complete first), and from then on a read answers on `home` - SL_ETRIMMED
 * with first_seq = end below `end`, else an empty read at the tail - stats
 * say first = next = visible = end, time lookups SL_ENOTFOUND, and retention
 * has nothing to do. The caller made sure no append reaches it (closed). */
void sl_wshard_retire(struct sl_wshard *b, struct sl_ring *home, uint64_t end);

/* sl_shard_append_ex, except that `batch` is borrowed until `cb` runs, and
 * for a remote shard every error comes through `cb` (the owner waits for
 * staging space itself, so SL_EAGAIN is never returned). On the owner, as
 * the batch is staged, a batch that follows a failed batch of its producer
 * (not sent again yet) is refused with SL_ECONFLICT (seqgate.h), so the
 * batches of a producer are stored in order whatever it has in flight.
 * `batch`'s header was accepted by sl_batch_peek (the front-end's check). */
int sl_wshard_append(struct sl_wshard *b, const void *batch, size_t len, unsigned flags,
                     sl_append_cb cb, void *ctx);
/* A replica's append (#14): flags may add SL_WSHARD_REPLICA (no order gate: the replica gave
 * the batch its sequences already, and a refusal would leave a hole in them) to storage's
 * SL_APPEND_*; `epoch` is the leader epoch stamped (ignored with SL_APPEND_KEEP_STAMPS). */
#define SL_WSHARD_REPLICA 0x100u
int sl_wshard_append_opt(struct sl_wshard *b, const void *batch, size_t len, unsigned flags,
                         uint32_t epoch, sl_append_cb cb, void *ctx);
/* A remote shard: long-polls wait on the main loop for records from `seq`. The owner reads
 * them as soon as they become visible (from memory, in that turn) and its notice carries
 * them (sl_wshard_ahead, inside the listener): the woken fetches need no read round trip.
 * One watch per notice; a shard the main loop owns needs none. */
void sl_wshard_watch(struct sl_wshard *b, uint64_t seq);
const struct sl_wshard_ahead *sl_wshard_ahead(const struct sl_wshard *b);
/* From now on fn(listener_ctx, written_seq) runs on the main loop when batches not yet
 * durable were written to the shard's open log (sl_shard_set_written_listener; for a remote
 * shard a notice per write): a replicated leader serves them to its followers. One fn for
 * every shard of the process (the replica manager's: no per-shard field, an idle shard stays
 * small), set for each shard once, for the log open now. */
typedef void (*sl_wshard_written_fn)(void *listener_ctx, uint64_t written_seq);
void sl_wshard_on_written(struct sl_wshard *b, sl_wshard_written_fn fn);
/* Inside an append callback: sl_shard_io_times of the owner at the moment it acknowledged
 * the append (carried over the message ring for a remote shard). Diagnostics. */
void sl_wshard_append_io(const struct sl_wshard *b, struct sl_shard_io_times *out);
/* sl_shard_truncate on the owner; `cb` runs on the main loop (never inside this call for a
 * remote shard; storage's rule for a local one). Errors returned at once are storage's for a
 * shard the main loop owns, SL_ENOMEM; a remote owner's come through `cb`. */
int sl_wshard_truncate(struct sl_wshard *b, uint64_t seq, sl_truncate_cb cb, void *ctx);
/* sl_shard_reset on the owner (the log emptied, starting at `seq`), as sl_wshard_truncate. */
int sl_wshard_reset(struct sl_wshard *b, uint64_t seq, sl_truncate_cb cb, void *ctx);
void sl_wshard_read(struct sl_wshard *b, struct sl_wshard_read *wr);
void sl_wshard_stats(const struct sl_wshard *b, struct sl_shard_stats *st);
/* Only the sequences and state (sl_shard_stats_progress): no walk over the segments, so
 * cheap enough for every shard at every tick. */
void sl_wshard_progress(const struct sl_wshard *b, struct sl_shard_stats *st);
int sl_wshard_time_near_seq(struct sl_wshard *b, uint64_t seq, uint64_t *time_ms);
/* A time lookup of many shards at once (a scrape, a lag report): one
 * synchronous call per worker that owns any of them, not one per shard. */
struct sl_wshard_time {
    struct sl_wshard *b; /* in */
    uint64_t seq;        /* in */
    uint64_t time_ms;    /* out: append time of the batch holding seq */
    int rc;              /* out: SL_OK or the lookup's error */
};
void sl_wshard_times_near(struct sl_workers *ws, struct sl_wshard_time *q, uint32_t n);
/* Changes the shard's retention limits on its owner (synchronous: rare). */
void sl_wshard_set_retention(struct sl_wshard *b, uint64_t retention_ms,
                             uint64_t retention_bytes);
/* Runs retention on the owner (asynchronously for a remote shard), never past `floor`
 * (sl_shard_set_retention_floor; SL_RETAIN_FLOOR_NONE: none). */
void sl_wshard_retention(struct sl_wshard *b, uint64_t floor);

#endif
