/* tail_trace.h - sluice-bench --mode tail's latency breakdown: where each microsecond of a
 * record's end-to-end latency goes, from the stamps the client library and the broker take
 * when asked (sluice_producer_opts.on_trace, sluice_consumer_opts.trace; docs/PROTOCOL.md,
 * Tracing). The broker runs on this host, so every stamp is one CLOCK_MONOTONIC.
 *
 * Producers record each acknowledged batch's stages under its first record's (shard, seq);
 * consumers record each received record's fetch stages and receive time under its own.
 * After the run the two sides are joined by (shard, seq) - a record's ack may reach its
 * producer after a consumer already has it, so nothing is joined while running - and each
 * stage's duration goes into a histogram. Only the first record of each batch is joined
 * (the producer's stamps are per batch). Memory: TAIL_TRACE_SLOTS slots per producer and per
 * consumer (~100 bytes each), indexed by sequence: newer records overwrite older ones (a
 * long or fast run keeps its latest), a collision between shards drops a sample.
 *
 * Threads: each producer (its client's I/O thread) and each consumer thread write only
 * their own table; the join runs after every thread was joined.
 */
#ifndef SL_BENCH_TAIL_TRACE_H
#define SL_BENCH_TAIL_TRACE_H

#include "client/sluice.h"

#include <stdbool.h>
#include <stdint.h>

#define TAIL_TRACE_SLOTS (1u << 14) /* per producer and per consumer */

/* Allocates the slots of `producers` producers and `consumers` consumers (zeroed).
 * Returns 0, or -1 out of memory. */
int tail_trace_init(uint32_t producers, uint32_t consumers);
void tail_trace_free(void);

/* The on_trace_arg for producer `idx`; tail_trace_produced is its sluice_produce_trace_cb. */
void *tail_trace_producer(uint32_t idx);
void tail_trace_produced(void *arg, uint32_t shard, uint64_t base_seq, uint32_t count,
                         const uint64_t *ns);

/* Consumer `idx` got the record (shard, seq) at `app_ns` (poll returned), due at `intended`
 * (its schedule) and produced at `call_ns` (sluice_produce called); `fetch` holds the
 * fetch's stages (sluice_consumer_trace). */
void tail_trace_consumed(uint32_t idx, uint32_t shard, uint64_t seq, uint64_t intended,
                         uint64_t call_ns, const uint64_t *fetch, uint64_t app_ns);

/* Joins the two sides, keeping records whose intended time is in [from, to). */
void tail_trace_join(uint64_t from, uint64_t to);

/* Prints the breakdown: a table (human) or `, "breakdown": [...]` inside the JSON object. */
void tail_trace_print_human(void);
void tail_trace_print_json(void);

#endif
