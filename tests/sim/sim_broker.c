/* sim_broker.c - a simulated broker: the glue a real broker will have around repl.c and
 * controller.c (what `sluiced --cluster` wires next), over simulated disks and network.
 *
 * Per broker: one metadata session (registered as /brokers/ids/<id>, ephemeral), the
 * controller candidate, and one sl_repl per shard whose state node it watches. Effects are
 * performed here: messages go through the network model (loss, duplication, delay that
 * reorders, cut links), disk operations complete in FIFO order after a random latency and
 * make the whole volatile image durable (fdatasync), a failed fsync stops the replica and
 * the broker exits shortly after (as the single-node engine stops a shard; here the whole
 * process, so the controller fails its shards over), ISR writes are versioned sets.
 *
 * Callback arguments encode (session generation, broker, shard, purpose) in the pointer
 * value: no allocation per call, and an answer from an old session is recognised.
 */
#include "tests/sim/sim.h"

#include "common/assert.h"
#include "common/error.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

struct sim *g_sim;

enum { P_SHARD_GET = 1, P_SHARD_WATCH, P_ISR_SET, P_REFRESH, P_REGISTER, P_REG_CHECK };
enum { OP_WRITE = 1, OP_TRUNC, OP_SAVE, OP_RESET };

#define MSG_RECORDS SL_REPL_FETCH_BATCHES_MAX

struct sim_msg {
    int from, to, shard;
    struct sl_repl_msg m;
    struct sl_repl_batch batches[MSG_RECORDS];
    uint64_t values[MSG_RECORDS];
};

/* per-broker session generation (bumped at every new session) */
static uint32_t gen[SIM_BROKERS_MAX];
/* per replica: the disk FIFO's kinds and save values */
static uint8_t op_kind[SIM_BROKERS_MAX][SIM_SHARDS_MAX][SL_REPL_DISK_INFLIGHT_MAX];
static int32_t op_val[SIM_BROKERS_MAX][SIM_SHARDS_MAX][SL_REPL_DISK_INFLIGHT_MAX];

static void *ctx(int b, int k, int purpose)
{
    return (void *)(uintptr_t)(((uint64_t)gen[b] << 24) | ((uint64_t)b << 16) | ((uint64_t)k << 8) |
                               (uint64_t)purpose);
}

static bool ctx_open(void *arg, int *b, int *k, int *purpose)
{
    uint64_t v = (uint64_t)(uintptr_t)arg;
    *b = (int)((v >> 16) & 0xff);
    *k = (int)((v >> 8) & 0xff);
    *purpose = (int)(v & 0xff);
    struct sim_broker *br = &g_sim->b[*b];
    return br->up && br->meta != NULL && (uint32_t)(v >> 24) == gen[*b];
}

static void shard_path(int k, char *p, size_t cap)
{
    snprintf(p, cap, "/shards/s/%d", k);
}

static void run_fx(struct sim *s, int b, int k);

/* ---- network ------------------------------------------------------------ */

static void net_deliver(struct sim *s, void *p, uint64_t a, uint64_t c)
{
    (void)a;
    (void)c;
    struct sim_msg *m = p;
    struct sim_broker *to = &s->b[m->to];
    if (to->up && to->paused_until > s->now) {
        sim_at(s, to->paused_until, -1, net_deliver, m, 0, 0);
        return;
    }
    if (to->up && !s->cut[m->from][m->to]) {
        static const char *const names[] = {"FETCH", "FETCH_RESP", "EPOCH_REQ", "EPOCH_RESP"};
        sim_trace(s,
                  "net %d->%d shard %d %s epoch %d req %llu offset %" PRId64 " epoch %d err %s"
                  " hw %" PRId64 " end %" PRId64 " n %u",
                  m->from, m->to, m->shard, names[m->m.type], m->m.leader_epoch,
                  (unsigned long long)m->m.req_id, m->m.offset, m->m.epoch, sl_errname(m->m.err),
                  m->m.hw, m->m.end_offset, m->m.n_batches);
        m->m.batches = m->batches;
        for (uint32_t i = 0; i < m->m.n_batches; i++) {
            m->batches[i].data = &m->values[i]; /* this copy's values (duplicates differ) */
        }
        sl_repl_on_msg(&to->rep[m->shard].r, &m->m);
        run_fx(s, m->to, m->shard);
    }
    free(m);
}

bool sim_broker_event_free(const struct sim_ev *ev)
{
    if (ev->fn == net_deliver) {
        free(ev->p);
        return true;
    }
    return false;
}

static void net_send(struct sim *s, int b, int k, const struct sl_repl_msg *msg)
{
    int to = msg->to;
    if (to < 0 || to >= s->cfg.brokers || s->cut[b][to] || sim_chance(s, s->cfg.p_loss)) {
        return;
    }
    struct sim_msg *m = malloc(sizeof *m);
    SL_ASSERT(m != NULL);
    m->from = b;
    m->to = to;
    m->shard = k;
    m->m = *msg;
    m->m.batches = NULL;
    m->m.n_batches = 0;
    if (msg->type == SL_REPL_MSG_FETCH_RESP && msg->err == SL_OK) {
        const struct sim_disk *d = &s->b[b].rep[k].disk;
        for (int64_t o = msg->offset;
             o < msg->read_end && o < d->vol_n && m->m.n_batches < MSG_RECORDS; o++) {
            uint32_t i = m->m.n_batches++;
            m->values[i] = d->vol[o].value;
            m->batches[i] = (struct sl_repl_batch){o, 1, d->vol[o].epoch, NULL, 8};
        }
    }
    s->msgs++;
    int copies = sim_chance(s, s->cfg.p_dup) ? 2 : 1;
    for (int i = 0; i < copies; i++) {
        struct sim_msg *c = m;
        if (i == 1) {
            c = malloc(sizeof *c);
            SL_ASSERT(c != NULL);
            *c = *m;
        }
        /* mostly 0.2-3 ms; 5 % up to 50 ms (reordering); 0.5 % up to 8 s, so answers from
         * an old epoch or to a long-abandoned request arrive after the world moved on */
        uint64_t delay = 200 + sim_below(s, !s->calm && sim_chance(s, 0.005)  ? 8000000
                                            : !s->calm && sim_chance(s, 0.05) ? 50000
                                                                              : 3000);
        sim_at(s, s->now + delay, -1, net_deliver, c, 0, 0);
    }
}

/* ---- disks -------------------------------------------------------------- */

static void disk_done(struct sim *s, void *p, uint64_t k64, uint64_t b64)
{
    (void)p;
    int k = (int)k64, b = (int)b64;
    struct sim_rep *rp = &s->b[b].rep[k];
    struct sim_disk *d = &rp->disk;
    SL_ASSERT(d->ops > 0);
    uint32_t slot = rp->saves_head;
    rp->saves_head = (rp->saves_head + 1) % SL_REPL_DISK_INFLIGHT_MAX;
    d->ops--;
    if (sim_chance(s, s->cfg.p_fsync_fail)) {
        sim_log(s, "disk: broker %d shard %d fsync failed", b, k);
        s->n_fsync_fail++;
        sl_repl_disk_done(&rp->r, SL_EIO);
        run_fx(s, b, k);
        return;
    }
    sim_trace(s, "disk broker %d shard %d: op %d done, durable end %" PRId64, b, k,
              op_kind[b][k][slot], d->vol_n);
    memcpy(d->dur, d->vol, (size_t)d->vol_n * sizeof d->vol[0]);
    d->dur_n = d->vol_n;
    d->dur_start = d->start;
    d->extends = true;
    if (op_kind[b][k][slot] == OP_SAVE && op_val[b][k][slot] > d->dur_led_epoch) {
        d->dur_led_epoch = op_val[b][k][slot];
    }
    sl_repl_disk_done(&rp->r, SL_OK);
    run_fx(s, b, k);
}

static void disk_queue(struct sim *s, int b, int k, uint8_t kind, int32_t val)
{
    struct sim_rep *rp = &s->b[b].rep[k];
    struct sim_disk *d = &rp->disk;
    uint32_t slot = (rp->saves_head + d->ops) % SL_REPL_DISK_INFLIGHT_MAX;
    SL_ASSERT(d->ops < SL_REPL_DISK_INFLIGHT_MAX);
    op_kind[b][k][slot] = kind;
    op_val[b][k][slot] = val;
    d->ops++;
    uint64_t t = d->busy_until > s->now ? d->busy_until : s->now;
    d->busy_until = t + 100 + sim_below(s, sim_chance(s, 0.02) ? 30000 : 2000);
    sim_at(s, d->busy_until, b, disk_done, NULL, (uint64_t)k, (uint64_t)b);
}

static void disk_write(struct sim *s, int b, int k, const struct sl_repl_effect *e)
{
    struct sim_disk *d = &s->b[b].rep[k].disk;
    SL_ASSERT(e->offset == d->vol_n);
    for (uint32_t i = 0; i < e->n_batches; i++) {
        const struct sl_repl_batch *bt = &e->batches[i];
        const uint64_t *vals = bt->data;
        for (uint32_t j = 0; j < bt->count; j++) {
            SL_ASSERT(bt->base_offset + j == d->vol_n && d->vol_n < SIM_LOG_CAP);
            if (d->vol_n > 0 && d->vol[d->vol_n - 1].epoch > bt->epoch) {
                sim_violation(s, "broker %d shard %d: epoch %d after %d at offset %" PRId64, b, k,
                              bt->epoch, d->vol[d->vol_n - 1].epoch, d->vol_n);
            }
            d->vol[d->vol_n++] = (struct sim_entry){vals[j], bt->epoch};
        }
    }
    disk_queue(s, b, k, OP_WRITE, 0);
}

/* ---- effects ------------------------------------------------------------ */

static void on_isr_set(void *arg, int err, const char *path);
static void on_shard(void *arg, int err, const uint8_t *data, size_t len,
                     const struct sl_meta_stat *stat);
static void broker_crash_ev(struct sim *s, void *p, uint64_t a, uint64_t c);

static void ack(struct sim *s, int b, int k, int64_t end, int err)
{
    struct sim_rep *rp = &s->b[b].rep[k];
    while (rp->pend_n > 0 && rp->pend[rp->pend_head].end <= end) {
        struct sim_pending *pd = &rp->pend[rp->pend_head];
        sim_trace(s, "ack broker %d shard %d: values %u..%u %s", b, k, pd->first_value + 1,
                  pd->first_value + pd->n_values, sl_errname(err));
        for (uint32_t i = 0; i < pd->n_values; i++) {
            uint32_t v = pd->first_value + i;
            if (err == SL_OK) {
                s->values[v].outcome = SIM_OK;
                s->acks_ok++;
                sim_check_ack(s, b, k, v);
            } else {
                s->values[v].outcome = SIM_UNKNOWN; /* appended: it may still commit */
                s->acks_failed++;
            }
        }
        rp->pend_head = (rp->pend_head + 1) % 256;
        rp->pend_n--;
    }
}

static void read_shard(struct sim *s, int b, int k, bool watch);

static void run_fx(struct sim *s, int b, int k)
{
    struct sim_rep *rp = &s->b[b].rep[k];
    uint32_t n;
    const struct sl_repl_effect *fx = sl_repl_fx(&rp->r, &n);
    char path[64];
    bool meta_failed = false;
    for (uint32_t i = 0; i < n; i++) {
        const struct sl_repl_effect *e = &fx[i];
        switch (e->type) {
        case SL_REPL_FX_SEND:
            s->n_epoch_reqs += e->msg.type == SL_REPL_MSG_EPOCH_REQ;
            s->n_diverging += e->msg.type == SL_REPL_MSG_FETCH_RESP && e->msg.err == SL_ECONFLICT;
            net_send(s, b, k, &e->msg);
            break;
        case SL_REPL_FX_WRITE:
            disk_write(s, b, k, e);
            break;
        case SL_REPL_FX_TRUNCATE:
            sim_check_truncate(s, b, k, e->offset);
            s->n_truncations++;
            rp->disk.vol_n = e->offset;
            rp->disk.extends = false;
            disk_queue(s, b, k, OP_TRUNC, 0);
            break;
        case SL_REPL_FX_RESET:
            if (e->offset < rp->disk.vol_n) {
                /* a replica the state no longer names drops its copy (to 0): checked against
                 * the store now, then the HW checks start again as at a restart */
                SL_ASSERT(e->offset == 0);
                sim_check_drop(s, b, k);
                s->n_drops++;
                sim_log(s, "broker %d shard %d: copy dropped (end was %" PRId64 ")", b, k,
                        rp->disk.vol_n);
                memset(rp->disk.vol, 0, (size_t)rp->disk.vol_n * sizeof rp->disk.vol[0]);
                rp->disk.vol_n = rp->disk.start = 0;
                rp->disk.extends = false;
                rp->prev_hw = 0;
                rp->checked = 0;
                disk_queue(s, b, k, OP_RESET, 0);
                break;
            }
            /* the log emptied, starting at the leader's first offset (past our end) */
            SL_ASSERT(e->offset >= rp->disk.vol_n && e->offset < SIM_LOG_CAP);
            s->n_resets++;
            sim_log(s,
                    "broker %d shard %d: log reset to start at %" PRId64 " (end was %" PRId64 ")",
                    b, k, e->offset, rp->disk.vol_n);
            memset(rp->disk.vol, 0, (size_t)e->offset * sizeof rp->disk.vol[0]);
            rp->disk.vol_n = rp->disk.start = e->offset;
            rp->disk.extends = false;
            disk_queue(s, b, k, OP_RESET, 0);
            break;
        case SL_REPL_FX_SAVE_EPOCHS:
            disk_queue(s, b, k, OP_SAVE, rp->r.last_led_epoch);
            break;
        case SL_REPL_FX_ACK:
            ack(s, b, k, e->offset, e->err);
            break;
        case SL_REPL_FX_META_WRITE: {
            struct sl_ctrl_state st = rp->meta; /* (its session and any move as read) */
            st.m = e->meta;
            char data[SL_CTRL_STATE_MAX];
            size_t len = sl_ctrl_state_encode(&st, data, sizeof data);
            shard_path(k, path, sizeof path);
            sim_log(s, "broker %d shard %d: ISR write n=%u at v%d", b, k, e->meta.n_isr,
                    e->meta.version);
            if (sl_meta_set(s->b[b].meta, path, (const uint8_t *)data, len, e->meta.version,
                            on_isr_set, ctx(b, k, P_ISR_SET)) != SL_OK) {
                meta_failed = true; /* told after this batch of effects */
            }
            break;
        }
        case SL_REPL_FX_META_REFRESH:
            read_shard(s, b, k, false);
            break;
        case SL_REPL_FX_FATAL:
            if (!s->b[b].fatal_pending) {
                s->b[b].fatal_pending = true;
                sim_at(s, s->now + 50000, b, broker_crash_ev, NULL, 0, 0);
            }
            break;
        }
    }
    sl_repl_fx_clear(&rp->r);
    if (meta_failed) {
        sl_repl_meta_done(&rp->r, SL_ECLOSED);
        run_fx(s, b, k);
    }
}

/* ---- metadata ----------------------------------------------------------- */

static void shard_watch(void *arg, const char *path);

static void retry_read(struct sim *s, void *p, uint64_t k, uint64_t g);

static void read_shard(struct sim *s, int b, int k, bool watch)
{
    char path[64];
    shard_path(k, path, sizeof path);
    int purpose = watch ? P_SHARD_GET : P_REFRESH;
    if (sl_meta_get(s->b[b].meta, path, watch ? shard_watch : NULL, ctx(b, k, P_SHARD_WATCH),
                    on_shard, ctx(b, k, purpose)) != SL_OK) {
        /* refused at once (the store's bound, or closed): try again a little later */
        sim_at(s, s->now + 200000, b, retry_read, (void *)(uintptr_t)b,
               (uint64_t)k | ((uint64_t)purpose << 8), gen[b]);
    }
}

static void retry_read(struct sim *s, void *p, uint64_t k, uint64_t g)
{
    int b = (int)(uintptr_t)p;
    if (s->b[b].meta != NULL && g == gen[b]) {
        read_shard(s, b, (int)(k & 0xff), (k >> 8) == P_SHARD_GET);
    }
}

static void shard_watch(void *arg, const char *path)
{
    (void)path;
    int b, k, purpose;
    if (ctx_open(arg, &b, &k, &purpose)) {
        read_shard(g_sim, b, k, true);
    }
}

static void on_shard(void *arg, int err, const uint8_t *data, size_t len,
                     const struct sl_meta_stat *stat)
{
    int b, k, purpose;
    struct sim *s = g_sim;
    if (!ctx_open(arg, &b, &k, &purpose)) {
        return;
    }
    struct sim_rep *rp = &s->b[b].rep[k];
    if (err != SL_OK) {
        if (err != SL_ECLOSED) {
            /* no watch was set, or a refresh the replica waits for failed: read again */
            sim_at(s, s->now + 200000, b, retry_read, (void *)(uintptr_t)b,
                   (uint64_t)k | ((uint64_t)purpose << 8), gen[b]);
        }
        return;
    }
    struct sl_ctrl_state st;
    if (sl_ctrl_state_decode(data, len, &st) != SL_OK) {
        sim_violation(s, "broker %d: undecodable shard state", b);
        return;
    }
    st.m.version = stat->version;
    if (!rp->have_meta || st.m.version >= rp->meta.m.version) {
        rp->meta = st;
        rp->have_meta = true;
    }
    enum sl_repl_role role = rp->r.role;
    sl_repl_on_meta(&rp->r, &st.m);
    if (rp->r.role != role) {
        s->n_leaders += rp->r.role == SL_REPL_LEADER;
        sim_log(s, "broker %d shard %d: %s in epoch %d (leo %" PRId64 " hw %" PRId64 ")", b, k,
                rp->r.role == SL_REPL_LEADER     ? "leader"
                : rp->r.role == SL_REPL_FOLLOWER ? "follower"
                                                 : "idle",
                rp->r.epoch, rp->r.leo, rp->r.hw);
    }
    run_fx(s, b, k);
}

static void on_isr_set(void *arg, int err, const char *path)
{
    (void)path;
    int b, k, purpose;
    if (!ctx_open(arg, &b, &k, &purpose)) {
        return;
    }
    struct sim *s = g_sim;
    sim_log(s, "broker %d shard %d: ISR write -> %s", b, k, sl_errname(err));
    sl_repl_meta_done(&s->b[b].rep[k].r, err);
    run_fx(s, b, k);
}

/* ---- sessions, registration, controller ---------------------------------- */

static void new_session(struct sim *s, int b);

static void register_try(struct sim *s, void *p, uint64_t g, uint64_t c);

static void on_registered(void *arg, int err, const char *path);

static void on_reg_check(void *arg, int err, const uint8_t *data, size_t len,
                         const struct sl_meta_stat *stat)
{
    (void)data;
    (void)len;
    int b, k, purpose;
    if (!ctx_open(arg, &b, &k, &purpose)) {
        return;
    }
    struct sim *s = g_sim;
    if (err == SL_OK && stat->ephemeral_owner == sl_meta_session_id(s->b[b].meta)) {
        on_registered(arg, SL_OK, NULL);
    } else {
        /* an old session's node (it goes when that session expires), or unknown */
        sim_at(s, s->now + 500000, b, register_try, NULL, gen[b], (uint64_t)b);
    }
}

static void on_registered(void *arg, int err, const char *path)
{
    (void)path;
    int b, k, purpose;
    if (!ctx_open(arg, &b, &k, &purpose)) {
        return;
    }
    struct sim *s = g_sim;
    if (err == SL_OK) {
        s->b[b].registered = true;
        sim_log(s, "broker %d registered (session %llx)", b,
                (unsigned long long)sl_meta_session_id(s->b[b].meta));
        return;
    }
    if (err == SL_EEXIST || err == SL_EAGAIN) {
        char p[64];
        snprintf(p, sizeof p, "/brokers/ids/%d", b);
        sl_meta_get(s->b[b].meta, p, NULL, NULL, on_reg_check, ctx(b, 0, P_REG_CHECK));
    } else if (err != SL_ECLOSED) {
        sim_at(s, s->now + 500000, b, register_try, NULL, gen[b], (uint64_t)b);
    }
}

static void on_parent(void *arg, int err, const char *path)
{
    (void)arg;
    (void)err;
    (void)path;
}

static void register_try(struct sim *s, void *p, uint64_t g, uint64_t b64)
{
    (void)p;
    int b = (int)b64;
    if (!s->b[b].up || gen[b] != g || s->b[b].meta == NULL || s->b[b].registered) {
        return; /* a retry for a session that is gone, or already registered */
    }
    char p2[64], id[16];
    snprintf(p2, sizeof p2, "/brokers/ids/%d", b);
    int n = snprintf(id, sizeof id, "%d", b);
    sl_meta_create(s->b[b].meta, "/brokers", NULL, 0, 0, on_parent, NULL);
    sl_meta_create(s->b[b].meta, "/brokers/ids", NULL, 0, 0, on_parent, NULL);
    if (sl_meta_create(s->b[b].meta, p2, (const uint8_t *)id, (size_t)n, SL_META_EPHEMERAL,
                       on_registered, ctx(b, 0, P_REGISTER)) != SL_OK) {
        sim_at(s, s->now + 500000, b, register_try, NULL, gen[b], (uint64_t)b);
    }
}

static void on_session(void *arg, enum sl_meta_session ev)
{
    struct sim *s = g_sim;
    int b = (int)(uintptr_t)arg;
    sim_log(s, "broker %d: session %s", b,
            ev == SL_META_EXPIRED     ? "expired"
            : ev == SL_META_CONNECTED ? "connected"
                                      : "disconnected");
    if (ev == SL_META_EXPIRED) {
        new_session(s, b);
    }
}

/* The session is gone (or the controller was deposed): stop leading until the metadata is
 * read again, close the store (its callbacks answer SL_ECLOSED, which every one of them
 * ignores for an old generation), and start over with a new session. */
static void new_session(struct sim *s, int b)
{
    struct sim_broker *br = &s->b[b];
    for (int k = 0; k < s->cfg.shards; k++) {
        sl_repl_suspend(&br->rep[k].r);
        run_fx(s, b, k);
    }
    if (br->meta != NULL) {
        struct sl_meta *old = br->meta;
        gen[b]++;
        sl_meta_close(old);
        for (int k = 0; k < s->cfg.shards; k++) {
            if (br->rep[k].r.meta_pending) {
                /* its answer was ignored (old generation): tell the replica it is unknown */
                sl_repl_meta_done(&br->rep[k].r, SL_ECLOSED);
                run_fx(s, b, k);
            }
        }
    }
    sl_ctrl_free(br->ctrl);
    br->ctrl = NULL;
    gen[b]++;
    br->registered = false;
    br->meta = sim_meta_connect(s, b, on_session, (void *)(uintptr_t)b);
    register_try(s, NULL, gen[b], (uint64_t)b);
    /* mutation 3: unclean election, which loses acknowledged data by design */
    struct sl_ctrl_cfg cc = {.self = b, .unclean_election = s->cfg.mutation == 3};
    SL_ASSERT(sl_ctrl_new(&br->ctrl, &cc, br->meta) == SL_OK);
    for (int k = 0; k < s->cfg.shards; k++) {
        read_shard(s, b, k, true);
    }
}

void sim_broker_tick(struct sim *s, void *p, uint64_t a, uint64_t c)
{
    (void)p;
    (void)c;
    int b = (int)a;
    struct sim_broker *br = &s->b[b];
    uint64_t ms = s->now / 1000;
    for (int k = 0; k < s->cfg.shards; k++) {
        sl_repl_tick(&br->rep[k].r, ms);
        run_fx(s, b, k);
    }
    if (br->ctrl != NULL) {
        sl_ctrl_tick(br->ctrl);
    }
    if (br->ctrl != NULL && sl_ctrl_phase(br->ctrl) == SL_CTRL_DEAD) {
        sim_log(s, "broker %d: controller deposed or session lost: new session", b);
        new_session(s, b);
    }
    sim_at(s, s->now + 10000, b, sim_broker_tick, NULL, a, 0);
}

/* Recovery: the durable image, plus (if nothing was truncated since the last fsync) a
 * random prefix of what was written after it - a write that reached the disk in part; the
 * torn record itself fails its checksum and is cut. The epoch cache is rebuilt from the
 * records (their batch headers carry the epoch), the epoch file gives last_led_epoch. */
void sim_broker_start(struct sim *s, int b)
{
    struct sim_broker *br = &s->b[b];
    br->up = true;
    br->paused_until = 0;
    br->fatal_pending = false;
    for (int k = 0; k < s->cfg.shards; k++) {
        struct sim_rep *rp = &br->rep[k];
        struct sim_disk *d = &rp->disk;
        int64_t keep = d->dur_n;
        if (d->extends && d->vol_n > d->dur_n) {
            keep += (int64_t)sim_below(s, (uint64_t)(d->vol_n - d->dur_n + 1));
            s->n_torn += keep > d->dur_n;
            memcpy(d->dur + d->dur_n, d->vol + d->dur_n,
                   (size_t)(keep - d->dur_n) * sizeof d->dur[0]);
        }
        d->dur_n = keep;
        memcpy(d->vol, d->dur, (size_t)keep * sizeof d->vol[0]);
        d->vol_n = keep;
        d->start = d->dur_start;
        SL_ASSERT(d->start <= keep);
        d->extends = true;
        d->ops = 0;
        d->busy_until = s->now;
        rp->saves_head = 0;
        struct sl_repl_epoch ep[SL_REPL_EPOCHS_MAX];
        uint32_t n = 0;
        for (int64_t o = d->start; o < keep; o++) {
            if (n == 0 || ep[n - 1].epoch != d->vol[o].epoch) {
                if (n == SL_REPL_EPOCHS_MAX) {
                    memmove(ep, ep + 1, (SL_REPL_EPOCHS_MAX - 1) * sizeof ep[0]);
                    n--;
                }
                ep[n++] = (struct sl_repl_epoch){d->vol[o].epoch, o};
            }
        }
        struct sl_repl_cfg cfg = {
            .self = b, .min_insync = s->cfg.min_insync, .replica_lag_ms = s->cfg.replica_lag_ms};
        struct sl_repl_recovered rec = {.log_start = d->start,
                                        .log_end = keep,
                                        .last_led_epoch = d->dur_led_epoch,
                                        .epochs = ep,
                                        .n_epochs = n};
        sl_repl_init(&rp->r, &cfg, &rec, s->now / 1000);
        rp->have_meta = false;
        rp->pend_n = rp->pend_head = 0;
        rp->prev_hw = 0;
        rp->checked = 0;
    }
    sim_log(s, "broker %d starts (incarnation %u)", b, br->inc);
    br->meta = NULL;
    br->ctrl = NULL;
    new_session(s, b);
    sim_at(s, s->now + 10000, b, sim_broker_tick, NULL, (uint64_t)b, 0);
}

void sim_broker_trim(struct sim *s, int b, int k, int64_t x)
{
    struct sim_rep *rp = &s->b[b].rep[k];
    struct sim_disk *d = &rp->disk;
    SL_ASSERT(x > d->start && x <= rp->r.hw && x <= s->committed_n[k] && x <= d->dur_n);
    sim_log(s, "broker %d shard %d: retention trims the log to start at %" PRId64, b, k, x);
    s->n_trims++;
    /* segments deleted: durable at once (a crash never brings them back here) */
    memset(d->vol, 0, (size_t)x * sizeof d->vol[0]);
    memset(d->dur, 0, (size_t)x * sizeof d->dur[0]);
    d->start = d->dur_start = x;
    sl_repl_set_log_start(&rp->r, x);
    run_fx(s, b, k);
}

void sim_broker_crash(struct sim *s, int b)
{
    struct sim_broker *br = &s->b[b];
    if (!br->up) {
        return;
    }
    sim_log(s, "broker %d crashes", b);
    if (br->meta != NULL) {
        sim_meta_abandon(br->meta); /* its session times out on the server */
    }
    sl_ctrl_free(br->ctrl);
    br->ctrl = NULL;
    br->meta = NULL;
    br->up = false;
    br->inc++;
    gen[b]++;
    for (int k = 0; k < s->cfg.shards; k++) {
        struct sim_rep *rp = &br->rep[k];
        for (uint32_t i = 0; i < rp->pend_n; i++) {
            struct sim_pending *pd = &rp->pend[(rp->pend_head + i) % 256];
            for (uint32_t v = 0; v < pd->n_values; v++) {
                s->values[pd->first_value + v].outcome = SIM_UNKNOWN;
            }
        }
        rp->pend_n = 0;
    }
}

void sim_restart_ev(struct sim *s, void *p, uint64_t a, uint64_t c)
{
    (void)p;
    (void)c;
    if (!s->b[a].up) {
        sim_broker_start(s, (int)a);
    }
}

static void broker_crash_ev(struct sim *s, void *p, uint64_t a, uint64_t c)
{
    (void)p;
    (void)a;
    (void)c;
    for (int b = 0; b < s->cfg.brokers; b++) {
        if (s->b[b].up && s->b[b].fatal_pending && s->b[b].paused_until <= s->now) {
            sim_broker_crash(s, b);
            sim_at(s, s->now + 1000000, -1, sim_restart_ev, NULL, (uint64_t)b, 0);
        }
    }
}

/* ---- producers ---------------------------------------------------------- */

static void produce_arrive(struct sim *s, void *p, uint64_t first, uint64_t packed)
{
    (void)p;
    int b = (int)(packed >> 32), k = (int)((packed >> 8) & 0xff), n = (int)(packed & 0xff);
    struct sim_broker *br = &s->b[b];
    if (!br->up) {
        for (int i = 0; i < n; i++) {
            s->values[first + (uint64_t)i].outcome = SIM_FAILED; /* never reached it */
        }
        return;
    }
    if (br->paused_until > s->now) {
        sim_at(s, br->paused_until, -1, produce_arrive, NULL, first, packed);
        return;
    }
    struct sim_rep *rp = &br->rep[k];
    uint64_t vals[8];
    for (int i = 0; i < n; i++) {
        vals[i] = first + (uint64_t)i + 1;
    }
    struct sl_repl_batch bt = {.count = (uint32_t)n, .data = vals, .len = sizeof vals};
    int64_t base;
    int32_t epoch;
    int err = rp->pend_n == 256 ? SL_EAGAIN : sl_repl_append(&rp->r, &bt, &base, &epoch);
    sim_trace(s, "produce broker %d shard %d: %d values from %llu -> %s", b, k, n,
              (unsigned long long)first + 1, sl_errname(err));
    if (err != SL_OK) {
        for (int i = 0; i < n; i++) {
            s->values[first + (uint64_t)i].outcome = SIM_FAILED; /* refused: not appended */
        }
        return;
    }
    for (int i = 0; i < n; i++) {
        s->values[first + (uint64_t)i].offset = base + i;
        s->values[first + (uint64_t)i].epoch = epoch;
    }
    rp->pend[(rp->pend_head + rp->pend_n++) % 256] =
        (struct sim_pending){base + n, (uint32_t)first, (uint32_t)n};
    run_fx(s, b, k);
}

void sim_produce(struct sim *s, int k)
{
    char path[64];
    shard_path(k, path, sizeof path);
    struct sl_ctrl_state st;
    int n = 1 + (int)sim_below(s, 3);
    if (!sim_meta_peek(s, path, &st) || st.m.leader < 0 ||
        s->n_values + (uint32_t)n > SIM_VALUES_MAX) {
        return;
    }
    uint32_t first = s->n_values;
    for (int i = 0; i < n; i++) {
        s->values[s->n_values++] =
            (struct sim_value){.shard = k, .outcome = SIM_PENDING, .offset = -1};
    }
    uint64_t packed = ((uint64_t)st.m.leader << 32) | ((uint64_t)k << 8) | (uint64_t)n;
    sim_at(s, s->now + 300 + sim_below(s, 1000), -1, produce_arrive, NULL, first, packed);
}
