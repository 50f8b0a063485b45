/* fetch.h - reads of a shard from a position, with long-poll: a read at the
 * tail with max_wait_ms parks on the shard until records become visible
 * (sl_fetch_shard_progress) or the wait expires (sl_fetch_tick). No polling.
 *
 * Memory: one buffer per fetch, all of them together bounded by
 * SL_FETCH_MEMORY_MAX (smaller answers under pressure, SL_EAGAIN when
 * nothing is left).
 *
 * Threading: the main loop. The callback runs exactly once, possibly before
 * sl_fetch_start returns.
 */
#ifndef SL_FETCH_H
#define SL_FETCH_H

#include "broker/engine/engine.h"

#include <stdbool.h>
#include <stdint.h>

struct sl_bshard;
struct sl_stream;

/* Fetch.trace (docs/PROTOCOL.md, Tracing): CLOCK_MONOTONIC ns at each stage of one fetch;
 * 0 = a stage it did not pass. */
enum sl_fetch_stage {
    SL_FTRACE_RECEIVED,  /* the front-end had the request (the caller's stamp) */
    SL_FTRACE_PARKED,    /* its read found the tail and it parked (the last time) */
    SL_FTRACE_WOKEN,     /* records became visible: re-issued (the last time) */
    SL_FTRACE_READ_DONE, /* the read that answers it completed */
    SL_FTRACE_N
};

struct sl_fetch_req {
    const char *stream; /* borrowed for the call */
    uint32_t shard;
    struct sl_position pos;
    uint32_t max_bytes;   /* 0: 1 MiB; at most the engine's fetch_bytes_max */
    uint32_t max_wait_ms; /* 0: answer at once; at most fetch_wait_max_ms */
    /* A consumer-group member's read (coord.h) when member_id is set:
     * refused with SL_EFENCED unless it holds the shard when the fetch
     * starts (a long-poll already parked is not re-checked). */
    const char *group;
    const char *member_id;
    uint64_t trace_ns; /* nonzero: trace (the result's trace_ns); SL_FTRACE_RECEIVED's stamp */
};

struct sl_fetch_result {
    int err;         /* SL_OK, or SL_ETRIMMED (next_seq = first_seq), ... */
    const char *why; /* "" when OK */
    bool read;       /* refused before any read when false: the fields below are 0 */
    uint32_t shard;
    uint64_t first_seq;    /* oldest retained */
    uint64_t tail_seq;     /* next to be appended (visible) */
    uint64_t tail_time_ms; /* append time of the newest visible record */
    uint64_t next_seq;     /* where the next fetch continues */
    const uint8_t *batches; /* whole, verified batches (docs/FORMAT.md §1) */
    uint32_t len;
    /* the shard is closed (#16): nothing more will be appended; once next_seq reaches
     * tail_seq its children are next */
    bool closed;
    uint32_t children[2];
    uint32_t n_children;
    const uint64_t *trace_ns; /* SL_FTRACE_N stamps when traced, else NULL */
};

/* Everything in `r` is borrowed for the duration of the call. */
typedef void (*sl_fetch_cb)(void *ctx, const struct sl_fetch_result *r);

void sl_fetch_start(struct sl_engine *e, const struct sl_fetch_req *req, sl_fetch_cb cb,
                    void *ctx);

/* New records on the shard: re-issue its parked fetches. */
void sl_fetch_shard_progress(struct sl_bshard *b);
/* Answers the stream's parked fetches with `err` (the stream is deleted). */
void sl_fetch_stream_wake(struct sl_stream *st, int err);
/* Expired waits answer empty; with `all` (shutdown) every wait does. */
void sl_fetch_tick(struct sl_engine *e, uint64_t now_ms, bool all);
void sl_fetch_stream_free(struct sl_stream *st);
/* The parked fetches' table sized for `count` shards (before a reshard that
 * adds shards commits). Errors: SL_ENOMEM (as before). */
int sl_fetch_stream_grow(struct sl_stream *st, uint32_t count);

#endif
