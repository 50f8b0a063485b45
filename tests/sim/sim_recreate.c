/* sim_recreate.c - `sim_repl --recreate`: the controller and a stream deleted and made again
 * under its name (#14, docs/REPLICATION.md "Deleting a stream").
 *
 * Three brokers and a stream of 8 shards of 3 replicas in the store model; each state is
 * written 3 more times (version 3) before the controller (broker 0) loads them. Then the
 * stream is deleted (its states and /shards/<stream> removed, the watches firing as
 * ZooKeeper's) and made again with 12 shards: the same names for the first 8, 4 new ones,
 * states at version 0 led by broker 1.
 * Broker 1 then dies. Checks: once its session expired the controller elected a leader for
 * every shard of the new stream from its ISR (not broker 1, epoch 1, broker 1 out of the
 * ISR). A controller that kept the old states (their versions above the new ones) or the
 * old stream's listing would write nothing, or write at versions that never match.
 */
#include "tests/sim/sim.h"

#include "common/assert.h"
#include "common/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sim_recreate_check(bool trace);

#define RC_BROKERS    3
#define RC_SHARDS     8u  /* the first stream's; the second has 4 more */
#define RC_SHARDS_2   12u
#define RC_SESSION_US 2000000u

static struct sl_meta *rc_meta[RC_BROKERS];
static struct sl_ctrl *rc_ctrl;

static void rc_start(struct sim *s, void *p, uint64_t b, uint64_t c)
{
    (void)p;
    (void)c;
    s->b[b].up = true;
    rc_meta[b] = sim_meta_register(s, (int)b);
}

static void rc_candidate(struct sim *s, void *p, uint64_t b, uint64_t c)
{
    (void)s;
    (void)p;
    (void)c;
    struct sl_ctrl_cfg cc = {.self = (int32_t)b};
    SL_ASSERT(sl_ctrl_new(&rc_ctrl, &cc, rc_meta[b]) == SL_OK);
}

static void rc_tick(struct sim *s, void *p, uint64_t a, uint64_t c)
{
    (void)p;
    (void)a;
    (void)c;
    sim_meta_tick(s);
    if (rc_ctrl != NULL) {
        sl_ctrl_tick(rc_ctrl);
    }
    sim_at(s, s->now + 100000, -1, rc_tick, NULL, 0, 0);
}

/* The stream's states: led by `leader` (session leader + 1: sessions are numbered in
 * connection order), replicas placed round the brokers from it. */
static void rc_states(struct sim *s, int32_t leader, bool create, uint32_t n)
{
    for (uint32_t k = 0; k < n; k++) {
        struct sl_ctrl_state st = {.m = {.leader = leader, .n_isr = 3, .n_replicas = 3},
                                   .leader_session = leader + 1};
        for (uint32_t i = 0; i < 3; i++) {
            st.m.replicas[i] = (leader + (int32_t)i) % RC_BROKERS;
            st.m.isr[i] = st.m.replicas[i];
        }
        char path[64], data[SL_CTRL_STATE_MAX];
        size_t len = sl_ctrl_state_encode(&st, data, sizeof data);
        snprintf(path, sizeof path, "/shards/r/%u", k);
        SL_ASSERT(create ? sim_meta_put(s, path, (const uint8_t *)data, len)
                         : sim_meta_set(s, path, (const uint8_t *)data, len));
    }
}

/* Runs the simulation until `us` of simulated time passed. */
static void rc_run(struct sim *s, uint64_t us)
{
    uint64_t until = s->now + us;
    while (s->heap_n > 0 && s->now < until) {
        sim_step(s);
    }
}

int sim_recreate_check(bool trace)
{
    struct sim *s = calloc(1, sizeof *s);
    SL_ASSERT(s != NULL);
    s->cfg.seed = 1;
    s->cfg.trace = trace;
    s->cfg.brokers = RC_BROKERS;
    s->cfg.session_timeout_us = RC_SESSION_US;
    s->rng = 1;
    g_sim = s;
    sim_meta_store_new(s);
    sim_meta_put(s, "/brokers", NULL, 0);
    sim_meta_put(s, "/brokers/ids", NULL, 0);
    sim_meta_put(s, "/shards", NULL, 0);
    sim_meta_put(s, "/shards/r", NULL, 0);
    rc_states(s, 0, true, RC_SHARDS);
    for (int v = 0; v < 3; v++) {
        rc_states(s, 0, false, RC_SHARDS); /* (version 3: above the new stream's 0) */
    }
    for (uint64_t b = 0; b < RC_BROKERS; b++) {
        sim_at(s, 0, -1, rc_start, NULL, b, 0);
    }
    sim_at(s, 10000, -1, rc_candidate, NULL, 0, 0);
    sim_at(s, 100000, -1, rc_tick, NULL, 0, 0);
    rc_run(s, 2000000);
    struct sl_ctrl_stats cs;
    sl_ctrl_stats(rc_ctrl, &cs);
    SL_ASSERT(cs.shards == RC_SHARDS);

    /* deleted, then made again under its name, led by broker 1 */
    char path[64];
    for (uint32_t k = 0; k < RC_SHARDS; k++) {
        snprintf(path, sizeof path, "/shards/r/%u", k);
        SL_ASSERT(sim_meta_remove(s, path));
    }
    SL_ASSERT(sim_meta_remove(s, "/shards/r"));
    rc_run(s, 300000);
    sim_meta_put(s, "/shards/r", NULL, 0);
    rc_states(s, 1, true, RC_SHARDS_2);
    rc_run(s, 1000000);

    /* broker 1 dies: its session expires, the controller elects from the ISR */
    sim_meta_abandon(rc_meta[1]);
    rc_meta[1] = NULL;
    s->b[1].up = false;
    s->b[1].inc++;
    rc_run(s, RC_SESSION_US + 3000000);

    uint32_t bad = 0;
    for (uint32_t k = 0; k < RC_SHARDS_2; k++) {
        struct sl_ctrl_state st;
        snprintf(path, sizeof path, "/shards/r/%u", k);
        SL_ASSERT(sim_meta_peek(s, path, &st));
        bool has1 = false;
        for (uint32_t j = 0; j < st.m.n_isr; j++) {
            has1 |= st.m.isr[j] == 1;
        }
        bool ok = st.m.leader >= 0 && st.m.leader != 1 && st.m.leader_epoch == 1 && !has1;
        if (!ok) {
            char line[SL_CTRL_STATE_MAX];
            size_t n = sl_ctrl_state_encode(&st, line, sizeof line);
            printf("bad: %s: %.*s (v%d)\n", path, (int)n, line, st.m.version);
        }
        bad += !ok;
    }
    printf("%s: a stream of %u shards deleted and made again under its name with %u, its "
           "leader killed: %u shards re-elected by the controller, %u not\n",
           bad == 0 ? "ok" : "FAILED", RC_SHARDS, RC_SHARDS_2, RC_SHARDS_2 - bad, bad);
    sl_ctrl_free(rc_ctrl);
    rc_ctrl = NULL;
    for (int b = 0; b < RC_BROKERS; b++) {
        if (rc_meta[b] != NULL) {
            sl_meta_close(rc_meta[b]);
            rc_meta[b] = NULL;
        }
    }
    for (size_t i = 0; i < s->heap_n; i++) {
        sim_meta_event_free(&s->heap[i]);
    }
    sim_meta_store_free(s->ms);
    free(s->heap);
    free(s);
    g_sim = NULL;
    return bad == 0 ? 0 : 1;
}
