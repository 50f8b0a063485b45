/* seqgate.c - a shard owner's order check for producers' batches (see
 * seqgate.h). A small unsorted array: it holds entries only while batches
 * fail, and a lookup is one pass over at most SL_SEQGATE_MAX. */
#include "broker/engine/seqgate.h"

#include "common/assert.h"
#include "common/error.h"
#include "common/log.h"

#include <stdlib.h>

struct gate_entry {
    uint64_t pid;
    uint64_t seq;   /* the earliest failed batch: later ones wait for it */
    uint64_t at_ms; /* when it failed */
};

struct sl_seqgate {
    uint32_t n;
    struct gate_entry e[SL_SEQGATE_MAX];
};

static struct gate_entry *find(struct sl_seqgate *g, uint64_t pid)
{
    for (uint32_t i = 0; g != NULL && i < g->n; i++) {
        if (g->e[i].pid == pid) {
            return &g->e[i];
        }
    }
    return NULL;
}

static void drop(struct sl_seqgate *g, struct gate_entry *e)
{
    SL_ASSERT(g->n > 0 && e >= g->e && e < g->e + g->n);
    *e = g->e[--g->n];
}

int sl_seqgate_admit(struct sl_seqgate **g, uint64_t pid, uint64_t seq, uint64_t now_ms)
{
    struct gate_entry *e = pid != 0 ? find(*g, pid) : NULL;
    if (e == NULL) {
        return SL_OK;
    }
    if (seq == e->seq || now_ms - e->at_ms > SL_SEQGATE_TTL_MS) {
        drop(*g, e); /* the failed batch again (or the producer moved on long ago) */
        return SL_OK;
    }
    /* An older batch than the failed one is a resend the front-end's de-dup
     * table let through (it was not stored): it keeps its place. */
    return seq < e->seq ? SL_OK : SL_ECONFLICT;
}

void sl_seqgate_failed(struct sl_seqgate **g, uint64_t pid, uint64_t seq, int err,
                       uint64_t now_ms)
{
    /* (the same errors the client resends on: client/producer.c batch_failed) */
    if (pid == 0 || (err != SL_ECLOSED && err != SL_EAGAIN && err != SL_ECONFLICT)) {
        return;
    }
    if (*g == NULL && (*g = calloc(1, sizeof(**g))) == NULL) {
        return; /* without memory the order is not held across this failure */
    }
    struct sl_seqgate *t = *g;
    struct gate_entry *e = find(t, pid);
    if (e != NULL) {
        if (seq < e->seq) {
            e->seq = seq;
            e->at_ms = now_ms;
        }
        return;
    }
    if (t->n == SL_SEQGATE_MAX) {
        struct gate_entry *old = &t->e[0];
        for (uint32_t i = 1; i < t->n; i++) {
            old = t->e[i].at_ms < old->at_ms ? &t->e[i] : old;
        }
        /* per owner thread: the limiter is not thread-safe */
        static _Thread_local struct sl_log_ratelimit rl = {.interval_ms = 10000, .burst = 1};
        if (sl_log_ratelimit_ok(&rl)) {
            sl_warn("produce", "more than %u producers have a failed batch on one shard: "
                    "the oldest is no longer held in order", SL_SEQGATE_MAX);
        }
        drop(t, old);
    }
    t->e[t->n++] = (struct gate_entry){.pid = pid, .seq = seq, .at_ms = now_ms};
    SL_ASSERT(t->n <= SL_SEQGATE_MAX);
}

uint32_t sl_seqgate_count(const struct sl_seqgate *g)
{
    return g != NULL ? g->n : 0;
}

void sl_seqgate_free(struct sl_seqgate **g)
{
    free(*g);
    *g = NULL;
}
