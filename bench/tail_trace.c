/* tail_trace.c - the tail latency breakdown (see tail_trace.h). */
#include "bench/tail_trace.h"

#include "bench/hist.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pslot {
    uint64_t seq1; /* seq + 1 of the batch's first record; 0 = empty */
    uint32_t shard;
    uint64_t ns[SLUICE_PT_N];
};

struct cslot {
    uint64_t seq1; /* seq + 1; 0 = empty */
    uint32_t shard;
    uint64_t intended, call, app;
    uint64_t f[SLUICE_FT_N];
};

struct ptable {
    struct pslot *slot;
};

/* The chain of one record's stamps, in the order they happen. */
enum point {
    X_INTENDED,
    X_CALL,
    X_SEALED,
    X_SENT,
    X_P_RECEIVED,
    X_APPEND,
    X_WRITE_SUBMIT,
    X_WRITE_DONE,
    X_SYNC_DONE,
    X_FETCH_GOT, /* the parked fetch woken, or (not parked) the fetch read by the broker */
    X_READ_DONE,
    X_ANSWERED,
    X_IO_RECEIVED,
    X_TAKEN,
    X_APP,
    X_N
};

/* A stage ends at its point and starts at the last point before it that the record passed. */
static const char *const stage_name[X_N] = {
    [X_CALL] = "load generator: schedule -> produce call",
    [X_SEALED] = "client: produce call -> batch sealed",
    [X_SENT] = "client: sealed -> flusher sends (thread hop)",
    [X_P_RECEIVED] = "send -> broker read the request",
    [X_APPEND] = "broker: request -> append submitted",
    [X_WRITE_SUBMIT] = "broker: append -> write submitted (end of turn)",
    [X_WRITE_DONE] = "broker: io_uring write",
    [X_SYNC_DONE] = "broker: fdatasync",
    [X_FETCH_GOT] = "broker: I/O done -> parked fetch woken",
    [X_READ_DONE] = "broker: read at the tail",
    [X_ANSWERED] = "broker: read done -> answer queued",
    [X_IO_RECEIVED] = "answer queued -> consumer I/O thread (send, TCP, wake)",
    [X_TAKEN] = "consumer: I/O thread -> poll took it (thread hop)",
    [X_APP] = "consumer: poll returns",
};
static const char *const stage_key[X_N] = {
    [X_CALL] = "schedule", [X_SEALED] = "sealed", [X_SENT] = "flusher",
    [X_P_RECEIVED] = "to_broker", [X_APPEND] = "append", [X_WRITE_SUBMIT] = "write_submit",
    [X_WRITE_DONE] = "write", [X_SYNC_DONE] = "fdatasync",
    [X_FETCH_GOT] = "wake", [X_READ_DONE] = "read", [X_ANSWERED] = "answer",
    [X_IO_RECEIVED] = "to_consumer", [X_TAKEN] = "consumer_hop", [X_APP] = "poll_return",
};

static struct ptable *prod;
static struct cslot **cons;
static uint32_t np, nc;
static struct bench_hist stage[X_N];
static struct bench_hist e2e_call; /* produce call -> poll returned */
/* Off the record's path to the consumer: the broker's I/O done -> the producer's ack
 * answered (the readers woken by that I/O answer first: storage's process_acks). */
static struct bench_hist ack_after;
static uint64_t joined, parked;

int tail_trace_init(uint32_t producers, uint32_t consumers)
{
    tail_trace_free();
    prod = calloc(producers, sizeof(*prod));
    cons = calloc(consumers, sizeof(*cons));
    if (prod == NULL || cons == NULL) {
        return -1;
    }
    np = producers;
    nc = consumers;
    for (uint32_t i = 0; i < np; i++) {
        if ((prod[i].slot = calloc(TAIL_TRACE_SLOTS, sizeof(struct pslot))) == NULL) {
            return -1;
        }
    }
    for (uint32_t i = 0; i < nc; i++) {
        if ((cons[i] = calloc(TAIL_TRACE_SLOTS, sizeof(struct cslot))) == NULL) {
            return -1;
        }
    }
    return 0;
}

void tail_trace_free(void)
{
    for (uint32_t i = 0; prod != NULL && i < np; i++) {
        free(prod[i].slot);
    }
    for (uint32_t i = 0; cons != NULL && i < nc; i++) {
        free(cons[i]);
    }
    free(prod);
    free(cons);
    prod = NULL;
    cons = NULL;
    np = nc = 0;
}

static uint32_t slot_of(uint32_t shard, uint64_t seq)
{
    return (uint32_t)((seq + (uint64_t)shard * 0x9E3779B1u) & (TAIL_TRACE_SLOTS - 1));
}

void *tail_trace_producer(uint32_t idx)
{
    return idx < np ? &prod[idx] : NULL;
}

void tail_trace_produced(void *arg, uint32_t shard, uint64_t base_seq, uint32_t count,
                         const uint64_t *ns)
{
    struct ptable *t = arg;
    if (t == NULL || count == 0 || base_seq == SLUICE_SEQ_UNKNOWN) {
        return;
    }
    struct pslot *s = &t->slot[slot_of(shard, base_seq)];
    s->seq1 = base_seq + 1;
    s->shard = shard;
    memcpy(s->ns, ns, sizeof(s->ns));
}

void tail_trace_consumed(uint32_t idx, uint32_t shard, uint64_t seq, uint64_t intended,
                         uint64_t call_ns, const uint64_t *fetch, uint64_t app_ns)
{
    if (idx >= nc) {
        return;
    }
    struct cslot *s = &cons[idx][slot_of(shard, seq)];
    s->seq1 = seq + 1;
    s->shard = shard;
    s->intended = intended;
    s->call = call_ns;
    s->app = app_ns;
    memcpy(s->f, fetch, sizeof(s->f));
}

static void join_one(const struct cslot *c, const struct pslot *p)
{
    uint64_t x[X_N] = {
        [X_INTENDED] = c->intended,
        [X_CALL] = c->call,
        [X_SEALED] = p->ns[SLUICE_PT_SEALED],
        [X_SENT] = p->ns[SLUICE_PT_SENT],
        [X_P_RECEIVED] = p->ns[SLUICE_PT_RECEIVED],
        [X_APPEND] = p->ns[SLUICE_PT_APPEND],
        [X_WRITE_SUBMIT] = p->ns[SLUICE_PT_WRITE_SUBMIT],
        [X_WRITE_DONE] = p->ns[SLUICE_PT_WRITE_DONE],
        [X_SYNC_DONE] = p->ns[SLUICE_PT_SYNC_DONE],
        [X_FETCH_GOT] = c->f[SLUICE_FT_WOKEN] != 0 ? c->f[SLUICE_FT_WOKEN]
                                                   : c->f[SLUICE_FT_RECEIVED],
        [X_READ_DONE] = c->f[SLUICE_FT_READ_DONE],
        [X_ANSWERED] = c->f[SLUICE_FT_ANSWERED],
        [X_IO_RECEIVED] = c->f[SLUICE_FT_IO_RECEIVED],
        [X_TAKEN] = c->f[SLUICE_FT_TAKEN],
        [X_APP] = c->app,
    };
    joined++;
    parked += c->f[SLUICE_FT_WOKEN] != 0;
    uint64_t prev = x[X_INTENDED];
    for (int i = X_CALL; i < X_N; i++) {
        if (x[i] == 0) {
            continue; /* not passed (a sync in the write tier, ...): the next stage spans it */
        }
        /* (a fetch that found the record visible, not parked, may have arrived before the
         * batch's acknowledgement reached the producer's side of the stamps: 0) */
        bench_hist_record(&stage[i], x[i] > prev ? x[i] - prev : 0);
        prev = x[i] > prev ? x[i] : prev;
    }
    if (c->app > c->call) {
        bench_hist_record(&e2e_call, c->app - c->call);
    }
    uint64_t io = x[X_SYNC_DONE] != 0 ? x[X_SYNC_DONE] : x[X_WRITE_DONE];
    uint64_t answered = p->ns[SLUICE_PT_ANSWERED];
    if (io != 0 && answered >= io) {
        bench_hist_record(&ack_after, answered - io);
    }
}

void tail_trace_join(uint64_t from, uint64_t to)
{
    for (int i = 0; i < X_N; i++) {
        bench_hist_reset(&stage[i]);
    }
    bench_hist_reset(&e2e_call);
    bench_hist_reset(&ack_after);
    joined = parked = 0;
    for (uint32_t k = 0; k < nc; k++) {
        for (uint32_t i = 0; i < TAIL_TRACE_SLOTS; i++) {
            const struct cslot *c = &cons[k][i];
            if (c->seq1 == 0 || c->intended < from || c->intended >= to) {
                continue;
            }
            for (uint32_t j = 0; j < np; j++) {
                const struct pslot *p = &prod[j].slot[i];
                if (p->seq1 == c->seq1 && p->shard == c->shard) {
                    join_one(c, p);
                    break;
                }
            }
        }
    }
}

static double us(const struct bench_hist *h, double p)
{
    return (double)bench_hist_percentile(h, p) / 1e3;
}

void tail_trace_print_human(void)
{
    if (joined == 0) {
        printf("  breakdown    n/a (no record traced on both sides)\n");
        return;
    }
    printf("  breakdown    %" PRIu64 " records (first of their batch), %" PRIu64
           " found by a parked fetch; per stage p50 / p99 / p99.9 in us:\n",
           joined, parked);
    for (int i = X_CALL; i < X_N; i++) {
        if (stage[i].count == 0) {
            continue;
        }
        printf("    %-56s %8.1f %9.1f %9.1f\n", stage_name[i], us(&stage[i], 50),
               us(&stage[i], 99), us(&stage[i], 99.9));
    }
    printf("    %-56s %8.1f %9.1f %9.1f\n", "end to end from the produce call", us(&e2e_call, 50),
           us(&e2e_call, 99), us(&e2e_call, 99.9));
    if (ack_after.count > 0) {
        printf("    %-56s %8.1f %9.1f %9.1f\n", "(off the path) broker: I/O done -> producer's ack queued",
               us(&ack_after, 50), us(&ack_after, 99), us(&ack_after, 99.9));
    }
}

void tail_trace_print_json(void)
{
    printf(", \"traced_records\": %" PRIu64 ", \"traced_parked\": %" PRIu64, joined, parked);
    if (e2e_call.count > 0) {
        printf(", \"e2e_from_call_p50_us\": %.1f, \"e2e_from_call_p99_us\": %.1f, "
               "\"e2e_from_call_p999_us\": %.1f",
               us(&e2e_call, 50), us(&e2e_call, 99), us(&e2e_call, 99.9));
    }
    if (ack_after.count > 0) {
        printf(", \"ack_queued_after_io_p50_us\": %.1f", us(&ack_after, 50));
    }
    printf(", \"breakdown\": [");
    const char *sep = "";
    for (int i = X_CALL; i < X_N; i++) {
        if (stage[i].count == 0) {
            continue;
        }
        printf("%s{\"stage\": \"%s\", \"p50_us\": %.1f, \"p99_us\": %.1f, \"p999_us\": %.1f}", sep,
               stage_key[i], us(&stage[i], 50), us(&stage[i], 99), us(&stage[i], 99.9));
        sep = ", ";
    }
    printf("]");
}
