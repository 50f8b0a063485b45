/* sim_check.c - the simulator's invariants (docs/REPLICATION.md, "Invariants").
 *
 * After every event:
 *   I1 committed prefixes agree: for each shard one committed history exists; every live
 *      replica's log below its HW is a prefix of it (checked incrementally from the last
 *      HW seen), and no value occurs twice in it; entries below a replica's log start
 *      (retention trimmed them, or a reset started the log past them) are not compared -
 *      trims stay within the committed history, so it is still built in order;
 *   I2 HW never decreases on a replica within one incarnation (it is not persisted: a
 *      restart starts from 0); no truncation cuts below the HW the replica had reached;
 *   I3 epochs never decrease along a log (checked at every write, sim_broker.c);
 *   I4 at most one broker completes acks in an epoch;
 *   I5 an acknowledged value is, at the moment of its ack, at its offset in the leader's
 *      log below HW, in the committed history, and durable on every replica of the
 *      shard's ISR as the store holds it then (so any single broker can fail);
 *   I6 at most one controller is active in a controller epoch;
 * every 256 events and at the end, I5's durability for every acknowledged value so far, and
 *   I7 each shard's state in the store is whole: the ISR within the replicas, the leader in
 *      the ISR (or none), a move's target within the replicas (a cancel or a switch must
 *      not leave a replica it removed in the ISR);
 * at the end, after healing every fault and a quiet period: every shard has a leader,
 * all replicas have identical logs and HW = log end, every acknowledged value is there
 * exactly once at its offset (liveness, and no loss across the faults).
 */
#include "tests/sim/sim.h"

#include "common/assert.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static uint32_t *vpos; /* value -> committed offset + 1 (0: not committed) */
static uint32_t *unverified;
static uint32_t n_unverified;

void sim_check_init(struct sim *s);
void sim_check_init(struct sim *s)
{
    free(vpos);
    free(unverified);
    vpos = calloc(SIM_VALUES_MAX + 2, sizeof *vpos);
    unverified = calloc(SIM_VALUES_MAX, sizeof *unverified);
    n_unverified = 0;
    for (int k = 0; k < SIM_SHARDS_MAX; k++) {
        s->committed_n[k] = 0;
        for (int e = 0; e < 4096; e++) {
            s->acker[k][e] = -1;
        }
    }
    for (int e = 0; e < 4096; e++) {
        s->ctrl_owner[e] = -1;
    }
}

void sim_check_fini(void);
void sim_check_fini(void)
{
    free(vpos);
    free(unverified);
    vpos = NULL;
    unverified = NULL;
}

static void check_replica(struct sim *s, int b, int k)
{
    struct sim_rep *rp = &s->b[b].rep[k];
    int64_t hw = rp->r.hw;
    if (hw < rp->prev_hw) {
        sim_violation(s, "broker %d shard %d: HW went from %" PRId64 " down to %" PRId64, b, k,
                      rp->prev_hw, hw);
    }
    rp->prev_hw = hw;
    if (rp->checked < rp->disk.start) {
        SL_ASSERT(rp->disk.start <= s->committed_n[k]); /* trims and resets stay within it */
        rp->checked = rp->disk.start;
    }
    for (int64_t o = rp->checked; o < hw; o++) {
        const struct sim_entry *e = &rp->disk.vol[o];
        if (o < s->committed_n[k]) {
            const struct sim_entry *c = &s->committed[k][o];
            if (c->value != e->value || c->epoch != e->epoch) {
                sim_violation(s,
                              "shard %d offset %" PRId64 ": broker %d has value %" PRIu64
                              " epoch %d below its HW, the committed history has %" PRIu64
                              " epoch %d",
                              k, o, b, e->value, e->epoch, c->value, c->epoch);
                return;
            }
            continue;
        }
        SL_ASSERT(o == s->committed_n[k]);
        if (e->value == 0 || e->value > SIM_VALUES_MAX) {
            sim_violation(s, "shard %d offset %" PRId64 ": unknown value", k, o);
            return;
        }
        if (vpos[e->value] != 0) {
            sim_violation(s, "value %" PRIu64 " committed twice (offsets %u and %" PRId64 ")",
                          e->value, vpos[e->value] - 1, o);
            return;
        }
        vpos[e->value] = (uint32_t)o + 1;
        s->committed[k][s->committed_n[k]++] = *e;
    }
    if (hw > rp->checked) {
        rp->checked = hw;
    }
}

/* I5's durability: v is at its offset in the durable log of every ISR member. */
static void check_durable(struct sim *s, uint32_t v)
{
    const struct sim_value *val = &s->values[v];
    char path[64];
    snprintf(path, sizeof path, "/shards/s/%d", val->shard);
    struct sl_ctrl_state st;
    if (!sim_meta_peek(s, path, &st)) {
        return;
    }
    for (uint32_t i = 0; i < st.m.n_isr; i++) {
        int m = st.m.isr[i];
        const struct sim_disk *d = &s->b[m].rep[val->shard].disk;
        if (val->offset < d->dur_start) {
            continue; /* retention removed it there (a reset to the leader's start too) */
        }
        if (val->offset >= d->dur_n || d->dur[val->offset].value != v + 1) {
            sim_violation(s,
                          "acked value %u (shard %d offset %" PRId64 ") is not durable on "
                          "broker %d, in the ISR at version %d (epoch %d)",
                          v + 1, val->shard, val->offset, m, st.m.version, st.m.leader_epoch);
            return;
        }
    }
}

void sim_check_ack(struct sim *s, int b, int k, uint32_t v)
{
    struct sim_rep *rp = &s->b[b].rep[k];
    int32_t epoch = rp->r.epoch;
    SL_ASSERT(epoch >= 0 && epoch < 4096);
    if (s->acker[k][epoch] >= 0 && s->acker[k][epoch] != b) {
        sim_violation(s, "shard %d epoch %d: brokers %d and %d both acknowledged", k, epoch,
                      s->acker[k][epoch], b);
    }
    s->acker[k][epoch] = b;
    char path[64];
    struct sl_ctrl_state now;
    snprintf(path, sizeof path, "/shards/s/%d", k);
    if (sim_meta_peek(s, path, &now) && now.m.leader_epoch > epoch) {
        s->n_stale_acks++; /* a leader the store has replaced (a zombie) completed an ack */
    }
    const struct sim_value *val = &s->values[v];
    if (val->offset >= rp->r.hw ||
        (val->offset >= rp->disk.start && rp->disk.vol[val->offset].value != v + 1)) {
        sim_violation(s, "broker %d acked value %u at offset %" PRId64 " not below its HW %" PRId64,
                      b, v + 1, val->offset, rp->r.hw);
    }
    check_durable(s, v);
    unverified[n_unverified++] = v;
}

void sim_check_truncate(struct sim *s, int b, int k, int64_t end)
{
    struct sim_rep *rp = &s->b[b].rep[k];
    if (end < rp->prev_hw) {
        sim_violation(s, "broker %d shard %d truncates to %" PRId64 ", below its HW %" PRId64, b, k,
                      end, rp->prev_hw);
    }
    if (end < rp->checked) {
        rp->checked = end;
    }
}

void sim_check_drop(struct sim *s, int b, int k)
{
    char path[64];
    snprintf(path, sizeof path, "/shards/s/%d", k);
    struct sl_ctrl_state st;
    if (!sim_meta_peek(s, path, &st)) {
        return;
    }
    for (uint32_t i = 0; i < st.m.n_isr; i++) {
        if (st.m.isr[i] == b) {
            sim_violation(s, "broker %d drops its copy of shard %d, in the ISR at version %d", b, k,
                          st.m.version);
        }
    }
}

static bool has_id(const int32_t *ids, uint32_t n, int32_t id)
{
    for (uint32_t i = 0; i < n; i++) {
        if (ids[i] == id) {
            return true;
        }
    }
    return false;
}

/* I7: shard k's state as the store holds it. */
static void check_state(struct sim *s, int k)
{
    char path[64];
    snprintf(path, sizeof path, "/shards/s/%d", k);
    struct sl_ctrl_state st;
    if (!sim_meta_peek(s, path, &st)) {
        return; /* (not created yet) */
    }
    for (uint32_t i = 0; i < st.m.n_isr; i++) {
        if (!has_id(st.m.replicas, st.m.n_replicas, st.m.isr[i])) {
            sim_violation(s, "shard %d: ISR member %d is not a replica (version %d)", k,
                          st.m.isr[i], st.m.version);
            return;
        }
    }
    if (st.m.leader >= 0 && !has_id(st.m.isr, st.m.n_isr, st.m.leader)) {
        sim_violation(s, "shard %d: leader %d is not in the ISR (version %d)", k, st.m.leader,
                      st.m.version);
    }
    for (uint32_t i = 0; i < st.n_target && !s->violated; i++) {
        if (!has_id(st.m.replicas, st.m.n_replicas, st.target[i])) {
            sim_violation(s, "shard %d: target member %d is not a replica (version %d)", k,
                          st.target[i], st.m.version);
        }
    }
}

void sim_check_step(struct sim *s)
{
    for (int b = 0; b < s->cfg.brokers; b++) {
        if (!s->b[b].up) {
            continue;
        }
        /* I6: one controller per controller epoch (the epoch is bumped by CAS) */
        int32_t ce = s->b[b].ctrl != NULL ? sl_ctrl_epoch(s->b[b].ctrl) : SL_REPL_NONE;
        if (ce >= 0 && ce < 4096) {
            if (s->ctrl_owner[ce] >= 0 && s->ctrl_owner[ce] != b) {
                sim_violation(s, "controllers %d and %d both active in controller epoch %d",
                              s->ctrl_owner[ce], b, ce);
            }
            s->ctrl_owner[ce] = b;
        }
        for (int k = 0; k < s->cfg.shards; k++) {
            check_replica(s, b, k);
        }
    }
    for (uint32_t i = 0; i < n_unverified; i++) {
        uint32_t v = unverified[i];
        if (vpos[v + 1] != (uint32_t)s->values[v].offset + 1) {
            sim_violation(s, "acked value %u is not in the committed history at offset %" PRId64,
                          v + 1, s->values[v].offset);
        }
    }
    n_unverified = 0;
    if (s->steps % 256 == 0) {
        for (uint32_t v = 0; v < s->n_values && !s->violated; v++) {
            if (s->values[v].outcome == SIM_OK) {
                check_durable(s, v);
            }
        }
        for (int k = 0; k < s->cfg.shards && !s->violated; k++) {
            check_state(s, k);
        }
    }
}

void sim_check_final(struct sim *s)
{
    char path[64];
    for (uint32_t v = 0; v < s->n_values && !s->violated; v++) {
        if (s->values[v].outcome == SIM_OK) {
            check_durable(s, v);
        }
    }
    for (int k = 0; k < s->cfg.shards && !s->violated; k++) {
        snprintf(path, sizeof path, "/shards/s/%d", k);
        struct sl_ctrl_state st;
        if (!sim_meta_peek(s, path, &st) || st.m.leader < 0) {
            sim_violation(s, "liveness: shard %d has no leader after the quiet period", k);
            return;
        }
        const struct sim_rep *L = &s->b[st.m.leader].rep[k];
        if (!s->b[st.m.leader].up || L->r.role != SL_REPL_LEADER || L->r.hw != L->r.leo) {
            sim_violation(
                s, "liveness: shard %d leader %d not leading, or HW %" PRId64 " != end %" PRId64, k,
                st.m.leader, L->r.hw, L->r.leo);
            return;
        }
        bool on_target = s->move_n[k] > 0 && st.m.n_replicas == s->move_n[k] &&
                         memcmp(st.m.replicas, s->move_target[k],
                                s->move_n[k] * sizeof st.m.replicas[0]) == 0;
        /* a cancelled move: back on exactly the replicas it had (its order too) */
        bool cancelled = s->move_cancel[k] && !on_target &&
                         st.m.n_replicas == s->move_from_n[k] &&
                         memcmp(st.m.replicas, s->move_from[k],
                                s->move_from_n[k] * sizeof st.m.replicas[0]) == 0;
        if (st.n_target > 0 || (s->move_n[k] > 0 && !on_target && !cancelled)) {
            sim_violation(s, "liveness: shard %d asked to move is %s after the quiet period", k,
                          st.n_target > 0 ? "still moving"
                                          : s->move_cancel[k]
                                                ? "neither on its target nor its old replicas"
                                                : "not on its target replicas");
            return;
        }
        s->n_moved += on_target;
        s->n_cancelled += cancelled;
        if (st.m.n_isr != st.m.n_replicas) {
            sim_violation(s, "liveness: shard %d ISR has %u of %u replicas", k, st.m.n_isr,
                          st.m.n_replicas);
            return;
        }
        for (uint32_t i = 0; i < st.m.n_replicas; i++) {
            const struct sim_rep *R = &s->b[st.m.replicas[i]].rep[k];
            /* equal from the later of the two starts (below it, retention's) */
            int64_t from = R->disk.start > L->disk.start ? R->disk.start : L->disk.start;
            if (R->disk.vol_n != L->disk.vol_n || R->r.hw != L->r.hw || from > L->disk.vol_n ||
                memcmp(R->disk.vol + from, L->disk.vol + from,
                       (size_t)(L->disk.vol_n - from) * sizeof L->disk.vol[0])) {
                sim_violation(s,
                              "shard %d: replica %d differs from leader %d (end %" PRId64
                              "/%" PRId64 ", HW %" PRId64 "/%" PRId64 ")",
                              k, st.m.replicas[i], st.m.leader, R->disk.vol_n, L->disk.vol_n,
                              R->r.hw, L->r.hw);
                return;
            }
        }
    }
    /* a broker a move took a shard from dropped its copy (none kept the disk for good) */
    for (int k = 0; k < s->cfg.shards && !s->violated; k++) {
        snprintf(path, sizeof path, "/shards/s/%d", k);
        struct sl_ctrl_state st;
        SL_ASSERT(sim_meta_peek(s, path, &st));
        for (int b = 0; b < s->cfg.brokers; b++) {
            bool named = false;
            for (uint32_t i = 0; i < st.m.n_replicas; i++) {
                named |= st.m.replicas[i] == b;
            }
            const struct sim_disk *d = &s->b[b].rep[k].disk;
            if (!named && s->b[b].up && (d->vol_n != 0 || d->start != 0)) {
                sim_violation(s,
                              "liveness: broker %d keeps a copy of shard %d (end %" PRId64
                              ") it is no longer a replica of",
                              b, k, d->vol_n);
            }
        }
    }
    for (uint32_t v = 0; v < s->n_values && !s->violated; v++) {
        const struct sim_value *val = &s->values[v];
        if (val->outcome != SIM_OK) {
            continue;
        }
        if (vpos[v + 1] != (uint32_t)val->offset + 1) {
            sim_violation(s, "acked value %u lost (shard %d offset %" PRId64 ")", v + 1, val->shard,
                          val->offset);
        }
    }
}
