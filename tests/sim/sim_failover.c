/* sim_failover.c - `sim_repl --failover N`: a controller failover with N shards (#14's
 * target: <= 10 s with 100,000 shards).
 *
 * Three brokers; N shards of 3 replicas placed by sl_ctrl_place (1,000 streams' worth of
 * /shards/<stream>/<k> nodes, 100 shards per stream), every state written straight into
 * the store model. Broker 0 starts first and becomes the controller; once it has loaded
 * every shard it crashes. Its session expires after the 4 s session timeout, brokers 1 and
 * 2 race for /controller, the winner bumps /controller_epoch, lists the brokers and the
 * shards, reads every state (128 reads in flight) and writes new leaders (epoch + 1) and ISRs
 * without broker 0 - one multi per 63 shards, 8 multis in flight. The store model charges 500 us
 * each way per call and a server cost of 10 us per read and 20 us per written op
 * (ZooKeeper on an SSD: ~100k reads/s and ~50k small writes/s per ensemble, group commit
 * making a multi one log write), so the simulated time is what the store's throughput
 * allows. Checks: every shard ends with a live leader from its ISR, a bumped epoch where
 * broker 0 led, and no broker 0 in any ISR. Prints simulated and wall times.
 */
#include "tests/sim/sim.h"

#include "common/assert.h"
#include "common/clock.h"
#include "common/error.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

int sim_failover_bench(uint32_t shards, bool trace);

#define FO_BROKERS    3
#define FO_PER_STREAM 100u
#define FO_SESSION_US 4000000u

static struct sl_meta *fo_meta[FO_BROKERS];
static struct sl_ctrl *fo_ctrl[FO_BROKERS];

static void fo_start(struct sim *s, void *p, uint64_t b, uint64_t c)
{
    (void)p;
    (void)c;
    s->b[b].up = true;
    fo_meta[b] = sim_meta_register(s, (int)b);
}

/* Controllers start after every broker registered: broker 0's first (it wins). */
static void fo_candidate(struct sim *s, void *p, uint64_t b, uint64_t c)
{
    (void)s;
    (void)p;
    (void)c;
    struct sl_ctrl_cfg cc = {.self = (int32_t)b};
    SL_ASSERT(sl_ctrl_new(&fo_ctrl[b], &cc, fo_meta[b]) == SL_OK);
}

static void fo_tick(struct sim *s, void *p, uint64_t a, uint64_t c)
{
    (void)p;
    (void)a;
    (void)c;
    sim_meta_tick(s);
    for (int i = 0; i < FO_BROKERS; i++) {
        if (fo_ctrl[i] != NULL) {
            sl_ctrl_tick(fo_ctrl[i]);
        }
    }
    sim_at(s, s->now + 100000, -1, fo_tick, NULL, 0, 0);
}

static int fo_active(void)
{
    for (int b = 0; b < FO_BROKERS; b++) {
        if (fo_ctrl[b] != NULL && sl_ctrl_idle(fo_ctrl[b])) {
            struct sl_ctrl_stats st;
            sl_ctrl_stats(fo_ctrl[b], &st);
            if (st.shards > 0) {
                return b;
            }
        }
    }
    return -1;
}

/* Runs until a controller other than `not` is idle with every shard loaded. */
static int fo_run_until_idle(struct sim *s, int not, uint32_t shards)
{
    while (s->heap_n > 0) {
        sim_step(s);
        int b = fo_active();
        if (b >= 0 && b != not ) {
            struct sl_ctrl_stats st;
            sl_ctrl_stats(fo_ctrl[b], &st);
            if (st.shards == shards && st.brokers_live > 0) {
                return b;
            }
        }
    }
    return -1;
}

int sim_failover_bench(uint32_t shards, bool trace)
{
    uint64_t wall0 = sl_clock_mono_ns();
    struct sim *s = calloc(1, sizeof *s);
    SL_ASSERT(s != NULL);
    s->cfg.seed = 1;
    s->cfg.trace = trace;
    s->cfg.brokers = FO_BROKERS;
    s->cfg.session_timeout_us = FO_SESSION_US;
    s->rng = 1;
    g_sim = s;
    sim_meta_store_new(s);
    sim_meta_set_costs(s, 500, 10, 20);
    /* sessions are numbered in connection order: brokers 0, 1, 2 get 1, 2, 3 */
    int32_t ids[FO_BROKERS] = {0, 1, 2};
    sim_meta_put(s, "/brokers", NULL, 0);
    sim_meta_put(s, "/brokers/ids", NULL, 0);
    sim_meta_put(s, "/shards", NULL, 0);
    uint32_t led_by_0 = 0;
    for (uint32_t i = 0; i < shards; i++) {
        char path[64], data[SL_CTRL_STATE_MAX];
        uint32_t stream = i / FO_PER_STREAM, k = i % FO_PER_STREAM;
        if (k == 0) {
            snprintf(path, sizeof path, "/shards/t%u", stream);
            sim_meta_put(s, path, NULL, 0);
        }
        struct sl_ctrl_state st = {.m = {.leader_epoch = 0, .n_isr = 3, .n_replicas = 3}};
        sl_ctrl_place(ids, FO_BROKERS, 3, stream, k, st.m.replicas);
        memcpy(st.m.isr, st.m.replicas, sizeof st.m.isr);
        st.m.leader = st.m.replicas[0];
        st.leader_session = st.m.leader + 1;
        led_by_0 += st.m.leader == 0;
        size_t len = sl_ctrl_state_encode(&st, data, sizeof data);
        snprintf(path, sizeof path, "/shards/t%u/%u", stream, k);
        sim_meta_put(s, path, (const uint8_t *)data, len);
    }
    for (uint64_t b = 0; b < FO_BROKERS; b++) {
        sim_at(s, 0, -1, fo_start, NULL, b, 0);
        sim_at(s, 10000 + 40000 * (b > 0), -1, fo_candidate, NULL, b, 0);
    }
    sim_at(s, 100000, -1, fo_tick, NULL, 0, 0);
    int first = fo_run_until_idle(s, -1, shards);
    SL_ASSERT(first == 0);
    uint64_t loaded = s->now;
    printf("controller 0 loaded %u shards in %.3f s (simulated)\n", shards, (double)loaded / 1e6);

    /* broker 0 (the controller, leader of a third of the shards) dies */
    uint64_t t_crash = s->now, ops0 = sim_meta_ops(s);
    sim_meta_abandon(fo_meta[0]);
    sl_ctrl_free(fo_ctrl[0]);
    fo_ctrl[0] = NULL;
    s->b[0].up = false;
    s->b[0].inc++;
    int next = fo_run_until_idle(s, 0, shards);
    SL_ASSERT(next > 0);
    uint64_t t_done = s->now;

    /* every shard: a live leader from the ISR, broker 0 gone from the ISR */
    uint32_t bad = 0, bumped = 0;
    for (uint32_t i = 0; i < shards; i++) {
        char path[64];
        struct sl_ctrl_state st;
        snprintf(path, sizeof path, "/shards/t%u/%u", i / FO_PER_STREAM, i % FO_PER_STREAM);
        SL_ASSERT(sim_meta_peek(s, path, &st));
        bool has0 = false;
        for (uint32_t j = 0; j < st.m.n_isr; j++) {
            has0 |= st.m.isr[j] == 0;
        }
        if ((st.m.leader <= 0 || has0) && bad < 3) {
            char line[SL_CTRL_STATE_MAX];
            sl_ctrl_state_encode(&st, line, sizeof line);
            printf("bad: %s: %s (v%d)\n", path, line, st.m.version);
        }
        bad += st.m.leader <= 0 || has0;
        bumped += st.m.leader_epoch == 1;
    }
    struct sl_ctrl_stats cs;
    sl_ctrl_stats(fo_ctrl[next], &cs);
    uint64_t wall = sl_clock_mono_ns() - wall0;
    printf("failover of %u shards (%u led by the dead controller): new controller %d idle "
           "%.3f s after the crash (session timeout %.1f s included), %.3f s after the "
           "timeout; %llu store ops, %llu multis, %llu shards written, %llu elections; "
           "wall time of the whole run %.2f s; target <= 10 s: %s\n",
           shards, led_by_0, next, (double)(t_done - t_crash) / 1e6, FO_SESSION_US / 1e6,
           (double)(t_done - t_crash - FO_SESSION_US) / 1e6,
           (unsigned long long)(sim_meta_ops(s) - ops0), (unsigned long long)cs.multis_ok,
           (unsigned long long)cs.shards_written, (unsigned long long)cs.elections,
           (double)wall / 1e9, t_done - t_crash <= 10000000 ? "met" : "MISSED");
    int rc = (bad == 0 && bumped == led_by_0 && t_done - t_crash <= 10000000) ? 0 : 1;
    if (bad != 0 || bumped != led_by_0) {
        printf("FAILED: %u shards without a live leader or with broker 0 in the ISR; %u of %u "
               "epochs bumped\n",
               bad, bumped, led_by_0);
    }
    for (int b = 0; b < FO_BROKERS; b++) {
        if (fo_meta[b] != NULL && b != 0) {
            sl_meta_close(fo_meta[b]);
        }
        sl_ctrl_free(fo_ctrl[b]);
        fo_ctrl[b] = NULL;
        fo_meta[b] = NULL;
    }
    for (size_t i = 0; i < s->heap_n; i++) {
        sim_meta_event_free(&s->heap[i]);
    }
    sim_meta_store_free(s->ms);
    free(s->heap);
    free(s);
    g_sim = NULL;
    return rc;
}
