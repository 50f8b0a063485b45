/* sim_core.c - the simulator's PRNG, clock and event heap (sim.h).
 *
 * Determinism: events are ordered by (time, sequence number given at scheduling), the only
 * randomness is splitmix64 from the seed, and nothing reads a real clock. An event tied to
 * a broker runs only in the incarnation it was scheduled for (a crash drops the rest) and
 * waits while that broker is paused (a zombie runs its backlog when it wakes).
 */
#include "tests/sim/sim.h"

#include "common/assert.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

uint64_t sim_rand(struct sim *s)
{
    uint64_t z = (s->rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

uint64_t sim_below(struct sim *s, uint64_t n)
{
    SL_ASSERT(n > 0);
    return sim_rand(s) % n;
}

bool sim_chance(struct sim *s, double p)
{
    return (double)(sim_rand(s) >> 11) * (1.0 / 9007199254740992.0) < p;
}

static bool ev_less(const struct sim_ev *a, const struct sim_ev *b)
{
    return a->t < b->t || (a->t == b->t && a->seq < b->seq);
}

static void heap_push(struct sim *s, struct sim_ev ev)
{
    if (s->heap_n == s->heap_cap) {
        s->heap_cap = s->heap_cap ? s->heap_cap * 2 : 4096;
        s->heap = realloc(s->heap, s->heap_cap * sizeof *s->heap);
        SL_ASSERT(s->heap != NULL);
    }
    size_t i = s->heap_n++;
    while (i > 0 && ev_less(&ev, &s->heap[(i - 1) / 2])) {
        s->heap[i] = s->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    s->heap[i] = ev;
}

static struct sim_ev heap_pop(struct sim *s)
{
    SL_ASSERT(s->heap_n > 0);
    struct sim_ev top = s->heap[0], last = s->heap[--s->heap_n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= s->heap_n) {
            break;
        }
        if (c + 1 < s->heap_n && ev_less(&s->heap[c + 1], &s->heap[c])) {
            c++;
        }
        if (!ev_less(&s->heap[c], &last)) {
            break;
        }
        s->heap[i] = s->heap[c];
        i = c;
    }
    if (s->heap_n > 0) {
        s->heap[i] = last;
    }
    return top;
}

void sim_at(struct sim *s, uint64_t t, int broker, sim_fn fn, void *p, uint64_t a, uint64_t b)
{
    SL_ASSERT(t >= s->now);
    struct sim_ev ev = {
        .t = t, .seq = s->seq++, .broker = broker, .fn = fn, .p = p, .a = a, .b = b};
    if (broker >= 0) {
        ev.inc = s->b[broker].inc;
    }
    heap_push(s, ev);
}

bool sim_broker_alive(const struct sim *s, int b)
{
    return s->b[b].up && s->b[b].paused_until <= s->now;
}

bool sim_step(struct sim *s)
{
    if (s->heap_n == 0) {
        return false;
    }
    struct sim_ev ev = heap_pop(s);
    SL_ASSERT(ev.t >= s->now);
    s->now = ev.t;
    if (ev.broker >= 0) {
        struct sim_broker *b = &s->b[ev.broker];
        if (!b->up || b->inc != ev.inc) {
            return true; /* meant for a process that died */
        }
        if (b->paused_until > s->now) {
            ev.seq = s->seq++;
            ev.t = b->paused_until; /* a paused process runs it when it wakes */
            heap_push(s, ev);
            return true;
        }
    }
    s->steps++;
    ev.fn(s, ev.p, ev.a, ev.b);
    return true;
}

void sim_log(struct sim *s, const char *fmt, ...)
{
    char line[160];
    va_list ap;
    va_start(ap, fmt);
    int w = snprintf(line, sizeof line, "t=%llu.%03llu step=%llu ",
                     (unsigned long long)(s->now / 1000000),
                     (unsigned long long)(s->now / 1000 % 1000), (unsigned long long)s->steps);
    vsnprintf(line + w, sizeof line - (size_t)w, fmt, ap);
    va_end(ap);
    memcpy(s->trace[s->trace_n++ % SIM_TRACE_RING], line, sizeof line);
    if (s->cfg.trace) {
        printf("%s\n", line);
    }
}

void sim_violation(struct sim *s, const char *fmt, ...)
{
    if (s->violated) {
        return;
    }
    s->violated = true;
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    printf("VIOLATION seed=%llu step=%llu t=%lluus: %s\n", (unsigned long long)s->cfg.seed,
           (unsigned long long)s->steps, (unsigned long long)s->now, msg);
    if (!s->cfg.trace) {
        printf("last events:\n");
        uint32_t n = s->trace_n < SIM_TRACE_RING ? s->trace_n : SIM_TRACE_RING;
        for (uint32_t i = s->trace_n - n; i < s->trace_n; i++) {
            printf("  %s\n", s->trace[i % SIM_TRACE_RING]);
        }
    }
    if (s->cfg.mutation) {
        printf("replay: sim_repl --seed %llu --trace --mutation %d\n",
               (unsigned long long)s->cfg.seed, s->cfg.mutation);
    } else {
        printf("replay: sim_repl --seed %llu --trace\n", (unsigned long long)s->cfg.seed);
    }
}
