/* sim_main.c - sim_repl: runs seeds of the replication simulator (tests/sim, #14).
 *
 *   sim_repl --seeds A B        every seed in [A, B); prints failing seeds, exit 1 if any
 *   sim_repl --seed N [--trace] one run, exactly as before (--trace prints every event)
 *   sim_repl --mutation M ...   the same with a known bug compiled in (repl.h; 3 = the
 *                               controller's unclean election): the test expects a
 *                               violation among its seeds
 *   sim_repl --failover N       controller failover with N shards (sim_failover.c)
 *   sim_repl --recreate         the controller and a stream deleted and made again
 *                               (sim_recreate.c)
 *   SLUICE_IT_LONG=1            --seeds runs 10x as many seeds
 *
 * A run: 3-5 brokers, 1-3 shards of 3 replicas, producers on every shard, and for the
 * first part of the run random faults (crash + restart, pause beyond the session timeout,
 * cut links between brokers, cut a broker from the store, isolate a broker, fsync failures,
 * lost / duplicated / delayed messages, unknown outcomes from the store); then every fault
 * is healed and a quiet period must converge. Checks: sim_check.c.
 */
#include "tests/sim/sim.h"

#include "common/assert.h"
#include "common/error.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

void sim_check_init(struct sim *s);
void sim_check_fini(void);
int sim_failover_bench(uint32_t shards, bool trace);
int sim_recreate_check(bool trace);

static void meta_tick(struct sim *s, void *p, uint64_t a, uint64_t b)
{
    (void)p;
    (void)a;
    (void)b;
    sim_meta_tick(s);
    sim_at(s, s->now + 100000, -1, meta_tick, NULL, 0, 0);
}

static void heal_link(struct sim *s, void *p, uint64_t i, uint64_t j)
{
    (void)p;
    s->cut[i][j] = s->cut[j][i] = false;
    sim_log(s, "fault: link %d-%d healed", (int)i, (int)j);
}

static void heal_meta(struct sim *s, void *p, uint64_t i, uint64_t b)
{
    (void)p;
    (void)b;
    s->cut_meta[i] = false;
    sim_log(s, "fault: broker %d reaches the store again", (int)i);
}

static void isolate(struct sim *s, int b, uint64_t heal_at)
{
    s->cut_meta[b] = true;
    sim_at(s, heal_at, -1, heal_meta, NULL, (uint64_t)b, 0);
    for (int j = 0; j < s->cfg.brokers; j++) {
        if (j != b) {
            s->cut[b][j] = s->cut[j][b] = true;
            sim_at(s, heal_at, -1, heal_link, NULL, (uint64_t)b, (uint64_t)j);
        }
    }
}

static void fault(struct sim *s, void *p, uint64_t a, uint64_t c)
{
    (void)p;
    (void)a;
    (void)c;
    if (s->now >= s->cfg.duration_us || s->faults_done >= s->cfg.faults) {
        return;
    }
    s->faults_done++;
    int b = (int)sim_below(s, (uint64_t)s->cfg.brokers);
    uint64_t t = s->cfg.session_timeout_us;
    switch (sim_below(s, 6)) {
    case 0:
        if (s->b[b].up) {
            sim_broker_crash(s, b);
            sim_at(s, s->now + 200000 + sim_below(s, 6000000), -1, sim_restart_ev, NULL,
                   (uint64_t)b, 0);
        }
        break;
    case 1:
        if (s->b[b].up) {
            uint64_t d = 300000 + sim_below(s, 2 * t);
            s->b[b].paused_until = s->now + d;
            sim_log(s, "fault: broker %d paused for %llu ms", b, (unsigned long long)d / 1000);
        }
        break;
    case 2: {
        int j = (int)sim_below(s, (uint64_t)s->cfg.brokers);
        if (j != b) {
            s->cut[b][j] = s->cut[j][b] = true;
            sim_log(s, "fault: link %d-%d cut", b, j);
            sim_at(s, s->now + 300000 + sim_below(s, 5000000), -1, heal_link, NULL, (uint64_t)b,
                   (uint64_t)j);
        }
        break;
    }
    case 3:
        s->cut_meta[b] = true;
        sim_log(s, "fault: broker %d cut from the store", b);
        sim_at(s, s->now + 300000 + sim_below(s, 2 * t), -1, heal_meta, NULL, (uint64_t)b, 0);
        break;
    case 4:
        sim_log(s, "fault: broker %d isolated", b);
        isolate(s, b, s->now + 300000 + sim_below(s, 2 * t));
        break;
    default: { /* cut only from its peers: it still holds its session (a zombie leader) */
        for (int j = 0; j < s->cfg.brokers; j++) {
            if (j != b) {
                s->cut[b][j] = s->cut[j][b] = true;
                sim_at(s, s->now + 300000 + sim_below(s, 2 * t), -1, heal_link, NULL, (uint64_t)b,
                       (uint64_t)j);
            }
        }
        sim_log(s, "fault: broker %d cut from its peers", b);
        break;
    }
    }
    sim_at(s, s->now + 200000 + sim_below(s, 2500000), -1, fault, NULL, 0, 0);
}

/* A draw from the moves' own generator (splitmix64): seeds without a move draw nothing
 * from it and run exactly as they did before reassignment existed. */
static uint64_t move_rand(struct sim *s)
{
    uint64_t z = (s->mrng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* A draw from the trims' own generator (as move_rand). */
static uint64_t trim_rand(struct sim *s)
{
    uint64_t z = (s->trng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Retention trims the head of shard k's log on one live replica (the leader 3 times in 4):
 * to a random point of what it holds below its HW and the committed history, or (half the
 * time) all of it, so a follower that was behind then finds its leader's log starting past
 * its own end and resets (docs/REPLICATION.md, "Retention and replicas"). */
static void trim(struct sim *s, void *p, uint64_t k64, uint64_t c)
{
    (void)p;
    (void)c;
    int k = (int)k64;
    char path[64];
    struct sl_ctrl_state st;
    snprintf(path, sizeof path, "/shards/s/%d", k);
    if (!sim_meta_peek(s, path, &st) || st.m.n_replicas == 0) {
        return;
    }
    int b = trim_rand(s) % 4 != 0 && st.m.leader >= 0
                ? st.m.leader
                : st.m.replicas[trim_rand(s) % st.m.n_replicas];
    struct sim_rep *rp = &s->b[b].rep[k];
    int64_t top = rp->r.hw < s->committed_n[k] ? rp->r.hw : s->committed_n[k];
    top = top < rp->disk.dur_n ? top : rp->disk.dur_n;
    if (!s->b[b].up || top <= rp->disk.start) {
        return;
    }
    int64_t x =
        trim_rand(s) % 2 == 0
            ? top
            : rp->disk.start + 1 + (int64_t)(trim_rand(s) % (uint64_t)(top - rp->disk.start));
    sim_broker_trim(s, b, k, x);
}

/* An operator's reassignment of shard k (docs/REPLICATION.md, "Reassignment"): one replica
 * (the leader half of the time, so leadership hands over) replaced by a broker that holds
 * none, written as the request node the controller applies. Faults go on meanwhile (crashes
 * and pauses of the controller and the leader included); the final check wants the move
 * done and the new replicas identical. */
/* An operator's cancel of shard k's move (what a broker does for ReassignShard with cancel):
 * only while the state shows the move, and only if no request waits (ECONFLICT); the
 * controller applies it, or refuses it (no old replica alive in the ISR, the move switched
 * meanwhile). The final check takes either end. */
static void cancel_move(struct sim *s, void *p, uint64_t k, uint64_t c)
{
    (void)p;
    (void)c;
    char path[64];
    struct sl_ctrl_state st;
    snprintf(path, sizeof path, "/shards/s/%d", (int)k);
    if (!sim_meta_peek(s, path, &st) || st.n_target == 0) {
        sim_log(s, "reassign cancel: shard %d has no move in progress", (int)k);
        return;
    }
    snprintf(path, sizeof path, "/reassign/s:%d", (int)k);
    if (!sim_meta_put(s, path, (const uint8_t *)SL_CTRL_MOVE_CANCEL,
                      strlen(SL_CTRL_MOVE_CANCEL))) {
        return; /* a request waits for the controller */
    }
    s->move_cancel[k] = true;
    s->n_cancels++;
    sim_log(s, "reassign cancel: shard %d (leader %d epoch %d)", (int)k, st.m.leader,
            st.m.leader_epoch);
}

static void move(struct sim *s, void *p, uint64_t k, uint64_t c)
{
    (void)p;
    (void)c;
    char path[64];
    struct sl_ctrl_state st;
    snprintf(path, sizeof path, "/shards/s/%d", (int)k);
    if (!sim_meta_peek(s, path, &st) || st.n_target > 0 || s->move_n[k] > 0) {
        return;
    }
    int32_t free_ids[SIM_BROKERS_MAX];
    uint32_t n_free = 0;
    for (int b = 0; b < s->cfg.brokers; b++) {
        bool has = false;
        for (uint32_t i = 0; i < st.m.n_replicas; i++) {
            has = has || st.m.replicas[i] == b;
        }
        if (!has) {
            free_ids[n_free++] = b;
        }
    }
    if (n_free == 0) {
        return; /* every broker holds it */
    }
    uint32_t at = (uint32_t)(move_rand(s) % st.m.n_replicas);
    if (move_rand(s) & 1) {
        for (uint32_t i = 0; i < st.m.n_replicas; i++) {
            at = st.m.replicas[i] == st.m.leader ? i : at;
        }
    }
    memcpy(s->move_target[k], st.m.replicas, st.m.n_replicas * sizeof st.m.replicas[0]);
    memcpy(s->move_from[k], st.m.replicas, st.m.n_replicas * sizeof st.m.replicas[0]);
    s->move_from_n[k] = st.m.n_replicas;
    s->move_target[k][at] = free_ids[move_rand(s) % n_free];
    s->move_n[k] = st.m.n_replicas;
    char data[64];
    size_t len = 0;
    for (uint32_t i = 0; i < s->move_n[k]; i++) {
        len += (size_t)snprintf(data + len, sizeof data - len, "%s%d", i ? "," : "",
                                (int)s->move_target[k][i]);
    }
    sim_meta_put(s, "/reassign", NULL, 0);
    snprintf(path, sizeof path, "/reassign/s:%d", (int)k);
    sim_meta_put(s, path, (const uint8_t *)data, len);
    s->n_moves++;
    sim_log(s, "reassign: shard %d from leader %d to %.*s", (int)k, st.m.leader, (int)len, data);
    if (move_rand(s) % 3 == 0) { /* a third are cancelled, most while they copy */
        sim_at(s, s->now + 100000 + move_rand(s) % 3000000, -1, cancel_move, NULL, k, 0);
    }
}

static void producer(struct sim *s, void *p, uint64_t k, uint64_t b)
{
    (void)p;
    (void)b;
    if (s->now >= s->cfg.duration_us) {
        return;
    }
    sim_produce(s, (int)k);
    sim_at(s, s->now + 5000 + sim_below(s, 40000), -1, producer, NULL, k, 0);
}

static bool stream_exists(struct sim *s)
{
    for (int k = 0; k < s->cfg.shards; k++) {
        char path[64];
        struct sl_ctrl_state st;
        snprintf(path, sizeof path, "/shards/s/%d", k);
        if (!sim_meta_peek(s, path, &st)) {
            return false;
        }
    }
    return true;
}

static void bootstrap(struct sim *s, void *p, uint64_t a, uint64_t c)
{
    (void)p;
    (void)c;
    if (a == 1) { /* a create was sent: it may have been lost (an unknown outcome) */
        if (stream_exists(s)) {
            sim_log(s, "stream created");
            for (int k = 0; k < s->cfg.shards; k++) {
                sim_at(s, s->now + 300000, -1, producer, NULL, (uint64_t)k, 0);
            }
            sim_at(s, s->now + 800000, -1, fault, NULL, 0, 0);
            /* half the seeds move a shard or two, while the faults go on */
            s->mrng = s->cfg.seed ^ 0x6d6f7665ull; /* "move" */
            uint64_t n_moves = move_rand(s) % 4;
            for (uint64_t i = 0; i < (n_moves >= 2 ? n_moves - 1 : 0); i++) {
                sim_at(s, s->now + 500000 + move_rand(s) % 12000000, -1, move, NULL,
                       move_rand(s) % (uint64_t)s->cfg.shards, 0);
            }
            /* half the seeds trim heads by retention (1-4 times), faults going on */
            s->trng = s->cfg.seed ^ 0x7472696dull; /* "trim" */
            uint64_t n_trims = trim_rand(s) % 8;
            for (uint64_t i = 0; i < (n_trims >= 4 ? n_trims - 3 : 0); i++) {
                sim_at(s, s->now + 1000000 + trim_rand(s) % 20000000, -1, trim, NULL,
                       trim_rand(s) % (uint64_t)s->cfg.shards, 0);
            }
            return;
        }
    }
    for (int b = 0; b < s->cfg.brokers; b++) {
        struct sim_broker *br = &s->b[b];
        struct sl_ctrl_stats st;
        if (br->ctrl == NULL || sl_ctrl_phase(br->ctrl) != SL_CTRL_ACTIVE) {
            continue;
        }
        sl_ctrl_stats(br->ctrl, &st);
        if (st.brokers_live == (uint32_t)s->cfg.brokers &&
            sl_ctrl_create_stream(br->ctrl, "s", (uint32_t)s->cfg.shards, (uint32_t)s->cfg.rf) ==
                SL_OK) {
            sim_log(s, "stream creation sent by controller %d", b);
            sim_at(s, s->now + 200000, -1, bootstrap, NULL, 1, 0);
            return;
        }
    }
    sim_at(s, s->now + 100000, -1, bootstrap, NULL, 0, 0);
}

static void heal_all(struct sim *s, void *p, uint64_t a, uint64_t c)
{
    (void)p;
    (void)a;
    (void)c;
    sim_log(s, "heal everything; quiet period");
    /* liveness is judged on a healed network: no loss, duplicates, long delays, unknown
     * outcomes or disk failures from here on (a run of unlucky losses is not a bug) */
    s->cfg.p_loss = s->cfg.p_dup = s->cfg.p_meta_eagain = s->cfg.p_fsync_fail = 0;
    s->calm = true;
    memset(s->cut, 0, sizeof s->cut);
    memset(s->cut_meta, 0, sizeof s->cut_meta);
    for (int b = 0; b < s->cfg.brokers; b++) {
        if (s->b[b].paused_until > s->now) {
            s->b[b].paused_until = s->now;
        }
        if (!s->b[b].up) {
            sim_broker_start(s, b);
        }
    }
}

static void configure(struct sim *s, uint64_t seed, int mutation, bool trace)
{
    memset(s, 0, sizeof *s);
    s->rng = seed * 0x2545F4914F6CDD1Dull + 1;
    struct sim_cfg *c = &s->cfg;
    c->seed = seed;
    c->trace = trace;
    c->mutation = mutation;
    c->brokers = 3 + (int)sim_below(s, 3);
    c->shards = 1 + (int)sim_below(s, 3);
    c->rf = 2 + (int)sim_below(s, 2);
    c->min_insync = 1 + (uint32_t)sim_below(s, (uint64_t)c->rf);
    c->session_timeout_us = 2000000 + sim_below(s, 4000000);
    c->replica_lag_ms = SL_REPL_REPLICA_LAG_MIN_MS + sim_below(s, 5000);
    c->p_loss = sim_chance(s, 0.5) ? 0.0 : 0.05 * (double)sim_below(s, 100) / 100.0;
    c->p_dup = sim_chance(s, 0.5) ? 0.0 : 0.02;
    c->p_meta_eagain = sim_chance(s, 0.5) ? 0.0 : 0.03;
    c->p_fsync_fail = sim_chance(s, 0.8) ? 0.0 : 0.0005;
    c->duration_us = 20000000;
    c->settle_us = 30000000;
    c->faults = 4 + (uint32_t)sim_below(s, 12);
}

static struct sim totals; /* counters summed over the seeds of one invocation */

/* One seed: returns true if every invariant held. */
static bool run_seed(uint64_t seed, int mutation, bool trace, bool quiet)
{
    struct sim *s = calloc(1, sizeof *s);
    SL_ASSERT(s != NULL);
    configure(s, seed, mutation, trace);
    g_sim = s;
#ifdef SL_REPL_MUTATIONS
    sl_repl_mutation = mutation;
#endif
    sim_check_init(s);
    sim_meta_store_new(s);
    for (int b = 0; b < s->cfg.brokers; b++) {
        s->b[b].id = b;
        s->b[b].rep[0].disk.dur_led_epoch = SL_REPL_NONE;
        for (int k = 0; k < SIM_SHARDS_MAX; k++) {
            s->b[b].rep[k].disk.dur_led_epoch = SL_REPL_NONE;
        }
    }
    for (int b = 0; b < s->cfg.brokers; b++) {
        sim_broker_start(s, b);
    }
    sim_at(s, 100000, -1, meta_tick, NULL, 0, 0);
    sim_at(s, 200000, -1, bootstrap, NULL, 0, 0);
    sim_at(s, s->cfg.duration_us, -1, heal_all, NULL, 0, 0);
    uint64_t end = s->cfg.duration_us + s->cfg.settle_us;
    while (!s->violated && s->heap_n > 0 && s->heap[0].t <= end) {
        sim_step(s);
        sim_check_step(s);
    }
    if (!s->violated) {
        s->now = end;
        sim_check_final(s);
    }
    bool ok = !s->violated;
    if (!quiet || trace) {
        uint32_t n_ok = 0;
        for (uint32_t v = 0; v < s->n_values; v++) {
            n_ok += s->values[v].outcome == SIM_OK;
        }
        printf("seed %llu: %s; brokers %d shards %d rf %d min_insync %u; %u values, %u acked; %llu "
               "faults; %llu "
               "steps; %llu messages\n",
               (unsigned long long)seed, ok ? "ok" : "VIOLATION", s->cfg.brokers, s->cfg.shards,
               s->cfg.rf, s->cfg.min_insync, s->n_values, n_ok, (unsigned long long)s->faults_done,
               (unsigned long long)s->steps, (unsigned long long)s->msgs);
    }
    totals.n_values += s->n_values;
    totals.acks_ok += s->acks_ok;
    totals.faults_done += s->faults_done;
    totals.steps += s->steps;
    totals.n_truncations += s->n_truncations;
    totals.n_trims += s->n_trims;
    totals.n_resets += s->n_resets;
    totals.n_drops += s->n_drops;
    totals.n_epoch_reqs += s->n_epoch_reqs;
    totals.n_diverging += s->n_diverging;
    totals.n_fsync_fail += s->n_fsync_fail;
    totals.n_expired += s->n_expired;
    totals.n_leaders += s->n_leaders;
    totals.n_stale_acks += s->n_stale_acks;
    totals.n_torn += s->n_torn;
    totals.n_moves += s->n_moves;
    totals.n_moved += s->n_moved;
    totals.n_cancels += s->n_cancels;
    totals.n_cancelled += s->n_cancelled;
    for (int b = 0; b < s->cfg.brokers; b++) {
        if (s->b[b].up) {
            sim_broker_crash(s, b);
        }
    }
    for (size_t i = 0; i < s->heap_n; i++) {
        if (!sim_broker_event_free(&s->heap[i])) {
            sim_meta_event_free(&s->heap[i]);
        }
    }
    sim_meta_store_free(s->ms);
    sim_check_fini();
    free(s->heap);
    free(s);
    g_sim = NULL;
    return ok;
}

int main(int argc, char **argv)
{
    uint64_t first = 1, last = 2;
    int mutation = 0;
    bool trace = false, single = false, expect_violation = false;
    uint32_t failover = 0;
    bool recreate = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
            first = strtoull(argv[++i], NULL, 10);
            last = first + 1;
            single = true;
        } else if (strcmp(argv[i], "--seeds") == 0 && i + 2 < argc) {
            first = strtoull(argv[++i], NULL, 10);
            last = strtoull(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--trace") == 0) {
            trace = true;
        } else if (strcmp(argv[i], "--mutation") == 0 && i + 1 < argc) {
            mutation = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--expect-violation") == 0) {
            expect_violation = true;
        } else if (strcmp(argv[i], "--failover") == 0 && i + 1 < argc) {
            failover = (uint32_t)strtoul(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--recreate") == 0) {
            recreate = true;
        } else {
            fprintf(stderr, "usage: sim_repl [--seed N [--trace] | --seeds A B] [--mutation M "
                            "[--expect-violation]] | --failover SHARDS | --recreate\n");
            return 2;
        }
    }
#ifndef SL_REPL_MUTATIONS
    if (mutation != 0) {
        fprintf(stderr, "sim_repl: this build has no mutations (SL_REPL_MUTATIONS)\n");
        return 2;
    }
#endif
    if (failover > 0) {
        return sim_failover_bench(failover, trace);
    }
    if (recreate) {
        return sim_recreate_check(trace);
    }
    const char *lg = getenv("SLUICE_IT_LONG");
    if (!single && lg != NULL && strcmp(lg, "1") == 0) {
        last = first + (last - first) * 10;
    }
    uint32_t failed = 0;
    for (uint64_t seed = first; seed < last; seed++) {
        if (!run_seed(seed, mutation, trace, !single)) {
            failed++;
            if (expect_violation) {
                printf("mutation %d caught by seed %llu (%llu seeds tried)\n", mutation,
                       (unsigned long long)seed, (unsigned long long)(seed - first + 1));
                return 0;
            }
        }
    }
    if (expect_violation) {
        printf("mutation %d NOT caught in seeds [%llu, %llu)\n", mutation,
               (unsigned long long)first, (unsigned long long)last);
        return 1;
    }
    printf("%llu seeds, %u with violations\n", (unsigned long long)(last - first), failed);
    printf("reassignment cancels: %llu asked, %llu moves back on their old replicas\n",
           (unsigned long long)totals.n_cancels, (unsigned long long)totals.n_cancelled);
    printf("exercised: %llu events, %llu faults, %llu values (%llu acked), %llu leaderships, "
           "%llu sessions expired, %llu epoch queries, %llu diverging fetches, %llu "
           "truncations, %llu torn tails, %llu fsync failures, %llu acks by a replaced "
           "leader, %llu reassignments (%llu done), %llu head trims, %llu resets, %llu copies "
           "dropped\n",
           (unsigned long long)totals.steps, (unsigned long long)totals.faults_done,
           (unsigned long long)totals.n_values, (unsigned long long)totals.acks_ok,
           (unsigned long long)totals.n_leaders, (unsigned long long)totals.n_expired,
           (unsigned long long)totals.n_epoch_reqs, (unsigned long long)totals.n_diverging,
           (unsigned long long)totals.n_truncations, (unsigned long long)totals.n_torn,
           (unsigned long long)totals.n_fsync_fail, (unsigned long long)totals.n_stale_acks,
           (unsigned long long)totals.n_moves, (unsigned long long)totals.n_moved,
           (unsigned long long)totals.n_trims, (unsigned long long)totals.n_resets,
           (unsigned long long)totals.n_drops);
    return failed == 0 ? 0 : 1;
}
