/* produce.h - appends from any front-end: the stream and shard found (or the
 * stream auto-created), the batch checked (header, field bounds, every keyed
 * record routed to this shard), producer retries and message de-dup ids
 * answered without a second copy, then the append on the shard's owner.
 * Per shard, produces keep their order: when a shard's staging buffers are
 * full, the produce waits in the shard's FIFO and is retried when the shard
 * makes progress (sl_produce_shard_progress).
 *
 * Threading: the main loop. The callback runs exactly once, possibly before
 * sl_produce_submit returns.
 */
#ifndef SL_PRODUCE_H
#define SL_PRODUCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sl_engine;
struct sl_bshard;
struct sl_stream;

enum sl_ack {
    SL_ACK_DURABLE = 0, /* after an fdatasync covers the batch */
    SL_ACK_WRITTEN = 1, /* after the write (the shard's flush policy decides fsync) */
    SL_ACK_NONE = 2,    /* the caller wants no answer (the callback still runs) */
};

/* Produce.trace (docs/PROTOCOL.md, Tracing): CLOCK_MONOTONIC ns at each stage of one
 * append; 0 = a stage it did not pass. */
enum sl_produce_stage {
    SL_PTRACE_RECEIVED,     /* the front-end had the request (the caller's stamp) */
    SL_PTRACE_APPEND,       /* handed to the shard's owner (sl_wshard_append) */
    SL_PTRACE_WRITE_SUBMIT, /* its staging buffer became a ring write (end of the owner's turn) */
    SL_PTRACE_WRITE_DONE,   /* that write completed */
    SL_PTRACE_SYNC_DONE,    /* durable: the fdatasync covering it completed */
    SL_PTRACE_ACKED,        /* the main loop had the acknowledgement (the callback) */
    SL_PTRACE_N
};

struct sl_produce_req {
    const char *stream;   /* borrowed for the call */
    uint32_t shard;
    const uint8_t *batch; /* borrowed until the callback: a batch (docs/FORMAT.md §1) */
    size_t len;
    enum sl_ack ack;
    /* The front-end chose the shard by its own rule (the Kinesis API: MD5 of
     * the partition key over 128-bit ranges), so keyed records are not held
     * to the native XXH3 ranges. Per-key order holds per rule: a key written
     * through both protocols may land on two shards (docs/ARCHITECTURE.md). */
    bool caller_routed;
    /* The producer keeps its batches in order (Produce.in_order): one that
     * does not follow its last batch stored or in flight is refused. */
    bool in_order;
    /* The engine's own control batch (control.h: a checkpoint on a cluster stream); a
     * front-end's batch carrying SL_BATCH_FLAG_CONTROL is refused. */
    bool control;
    /* Nonzero: trace this append (the result's trace_ns); SL_PTRACE_RECEIVED's stamp. */
    uint64_t trace_ns;
    /* The front-end cannot send its client to a shard's leader (the HTTP APIs: one
     * endpoint): a replicated shard this broker does not lead takes the batch through its
     * leader (struct sl_engine_repl.forward, ack durable there), as if appended here. */
    bool forward;
};

struct sl_produce_result {
    int err;                /* SL_OK or why it was not stored */
    const char *why;        /* a message naming the cause ("" when OK) */
    uint32_t shard;
    uint64_t base_seq;      /* the batch's first sequence */
    uint32_t count;         /* records stored */
    bool duplicate;         /* a retry of a stored batch, or every record a known de-dup id */
    const uint32_t *dropped; /* records dropped as duplicates (indexes, sorted) */
    uint32_t n_dropped;
    /* err SL_ESHARD_CLOSED: the shards that took the closed shard's range */
    uint32_t children[2];
    uint32_t n_children;
    const uint64_t *trace_ns; /* SL_PTRACE_N stamps when the request was traced, else NULL */
};

/* Everything in `r` is borrowed for the duration of the call. */
typedef void (*sl_produce_cb)(void *ctx, const struct sl_produce_result *r);

void sl_produce_submit(struct sl_engine *e, const struct sl_produce_req *req, sl_produce_cb cb,
                       void *ctx);

/* Resharding (reshard.c). While b->closing, appends to b wait in its FIFO
 * (none is started), so the shard's log stops growing once the appends in
 * flight (b->appends) are done; reshard.c is told when they are
 * (sl_reshard_drained). After the change commits, the waiting ones are
 * refused SL_ESHARD_CLOSED (sl_produce_refuse_closed), or, when it failed,
 * started (sl_produce_shard_progress). */
void sl_produce_refuse_closed(struct sl_bshard *b);
/* The stream's per-shard state sized for `count` shards (before a change
 * that adds shards commits). Errors: SL_ENOMEM (the state is as before). */
int sl_produce_stream_grow(struct sl_stream *st, uint32_t count);

/* Cluster mode (#14): the shard's replica acknowledged the appends ending at or below `end`
 * with `err` (SL_OK: durable on the ISR); they are answered in order once written. */
void sl_produce_repl_ack(struct sl_bshard *b, uint64_t end, int err);

/* The shard made progress: retry the produces waiting for staging space. */
void sl_produce_shard_progress(struct sl_bshard *b);
/* Frees the stream's produce state (nothing may be waiting). */
void sl_produce_stream_free(struct sl_stream *st);

#endif
