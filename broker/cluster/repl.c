/* repl.c - one shard's replica state machine (repl.h; protocol in docs/REPLICATION.md).
 *
 * Invariants (sl_repl_check asserts them at entry and after every change):
 * - hw <= durable_end <= leo for a follower; hw <= durable_end for a leader (its own disk
 *   counts in the HW); hw never decreases while the replica lives (it is not persisted: a
 *   restart starts from 0 and learns it again), except when a replica the state no longer
 *   names drops its copy (back to 0 with its log: drop_if_removed).
 * - The epoch cache has strictly increasing epochs and non-decreasing starts <= leo; its
 *   last entry is the epoch of the log's last batch, or the leader's own (possibly empty)
 *   epoch.
 * - A leader: role == LEADER, meta.leader == self, epoch == meta.leader_epoch, epoch ==
 *   last_led_epoch; acked_end <= pending_end <= leo; acked_end <= max(hw, epoch start),
 *   or <= failed_end (answered with an error while cut off, sl_repl_cut).
 * - A peer's ack is a fetch offset the leader validated against its own log (the fetch's
 *   last epoch ends at or after it here): the follower's log equals ours below it, durably.
 * - A follower sends at most one request at a time and fetches only with an empty disk
 *   FIFO, so its fetch offset is its durable end: the fetch is its ack.
 * - 0 <= log_start <= leo; durable_end >= log_start but while a reset to log_start is
 *   queued (or failed: FATAL); a follower elected meanwhile leads with it queued. A
 *   replica's log below log_start is gone (retention, or a reset that started it at the
 *   leader's first retained offset): never compared, never truncated into; a FETCH with no
 *   epoch says "my log is empty and starts at offset".
 * - The leader acts on the ISR it read from the metadata store (meta.isr); while a change it
 *   wrote has an unknown outcome, HW is computed over the union of both (never fewer
 *   replicas than the store may hold), and |ISR| >= min_insync is judged on meta.isr.
 */
#include "broker/cluster/repl_int.h"

#include "common/assert.h"
#include "common/error.h"

#include <string.h>

#ifdef SL_REPL_MUTATIONS
int sl_repl_mutation;
#endif

static bool ids_has(const int32_t *ids, uint32_t n, int32_t id)
{
    for (uint32_t i = 0; i < n; i++) {
        if (ids[i] == id) {
            return true;
        }
    }
    return false;
}

struct sl_repl_effect *repl_fx_push(struct sl_repl *r, enum sl_repl_effect_type type)
{
    SL_ASSERT(r->n_fx < SL_REPL_EFFECTS_MAX);
    struct sl_repl_effect *e = &r->fx[r->n_fx++];
    memset(e, 0, sizeof *e);
    e->type = type;
    return e;
}

void repl_send(struct sl_repl *r, const struct sl_repl_msg *m)
{
    SL_ASSERT(m->to != r->cfg.self && m->to >= 0);
    struct sl_repl_effect *e = repl_fx_push(r, SL_REPL_FX_SEND);
    e->msg = *m;
    e->msg.from = r->cfg.self;
}

void repl_disk_push(struct sl_repl *r, uint8_t kind, int64_t end)
{
    SL_ASSERT(r->disk_n < SL_REPL_DISK_INFLIGHT_MAX);
    uint32_t i = (r->disk_head + r->disk_n) % SL_REPL_DISK_INFLIGHT_MAX;
    r->disk_kind[i] = kind;
    r->disk_end[i] = end;
    r->disk_n++;
}

/* ---- the epoch cache ---------------------------------------------------- */

void repl_epochs_add(struct sl_repl *r, int32_t epoch, int64_t start)
{
    if (r->n_epochs > 0) {
        struct sl_repl_epoch *last = &r->epochs[r->n_epochs - 1];
        SL_ASSERT(epoch > last->epoch && start >= last->start_offset);
        if (last->start_offset == start) {
            /* the previous epoch has no entries: epoch_end answers the same without it */
            last->epoch = epoch;
            return;
        }
    }
    if (r->n_epochs == SL_REPL_EPOCHS_MAX) {
        /* bounded: asks for epochs older than the oldest kept truncate to its start, which
         * is safe (more is fetched again), never wrong */
        memmove(&r->epochs[0], &r->epochs[1], (SL_REPL_EPOCHS_MAX - 1) * sizeof r->epochs[0]);
        r->n_epochs--;
    }
    r->epochs[r->n_epochs++] = (struct sl_repl_epoch){epoch, start};
}

void repl_epochs_truncate(struct sl_repl *r, int64_t end)
{
    while (r->n_epochs > 0 && r->epochs[r->n_epochs - 1].start_offset >= end) {
        r->n_epochs--;
    }
}

/* The epoch of the entry at leo - 1 (SL_REPL_NONE for an empty log). A log empty past 0
 * (reset, or all of it trimmed) may keep entries below its start - the epoch file saved
 * before a reset that a crash then finished - which describe nothing in it. */
int32_t repl_last_log_epoch(const struct sl_repl *r)
{
    if (r->leo == r->log_start) {
        return SL_REPL_NONE;
    }
    for (uint32_t i = r->n_epochs; i > 0; i--) {
        if (r->epochs[i - 1].start_offset < r->leo) {
            return r->epochs[i - 1].epoch;
        }
    }
    return SL_REPL_NONE;
}

int64_t sl_repl_epoch_end(const struct sl_repl *r, int32_t epoch, int32_t *found)
{
    *found = SL_REPL_NONE;
    if (epoch == SL_REPL_NONE) {
        return r->n_epochs > 0 ? r->epochs[0].start_offset : r->leo;
    }
    for (uint32_t i = r->n_epochs; i > 0; i--) {
        if (r->epochs[i - 1].epoch <= epoch) {
            *found = r->epochs[i - 1].epoch;
            return i < r->n_epochs ? r->epochs[i].start_offset : r->leo;
        }
    }
    return r->n_epochs > 0 ? r->epochs[0].start_offset : r->leo;
}

const struct sl_repl_epoch *sl_repl_epochs(const struct sl_repl *r, uint32_t *n,
                                           int32_t *last_led_epoch)
{
    *n = r->n_epochs;
    *last_led_epoch = r->last_led_epoch;
    return r->epochs;
}

/* ---- invariants --------------------------------------------------------- */

void sl_repl_check(const struct sl_repl *r)
{
    SL_ASSERT(r->hw >= 0 && r->durable_end >= 0 && r->leo >= 0);
    SL_ASSERT(r->hw <= r->durable_end && r->durable_end <= r->leo);
    SL_ASSERT(r->disk_n <= SL_REPL_DISK_INFLIGHT_MAX && r->n_fx <= SL_REPL_EFFECTS_MAX);
    SL_ASSERT(r->n_epochs <= SL_REPL_EPOCHS_MAX);
    for (uint32_t i = 1; i < r->n_epochs; i++) {
        SL_ASSERT(r->epochs[i].epoch > r->epochs[i - 1].epoch);
        SL_ASSERT(r->epochs[i].start_offset > r->epochs[i - 1].start_offset);
    }
    if (r->n_epochs > 0) {
        SL_ASSERT(r->epochs[r->n_epochs - 1].start_offset <= r->leo);
        SL_ASSERT(r->epochs[r->n_epochs - 1].epoch <= r->epoch || r->role == SL_REPL_FATAL ||
                  r->epoch == SL_REPL_NONE);
    }
    SL_ASSERT(r->saved_led_epoch <= r->last_led_epoch);
    SL_ASSERT(r->log_start >= 0 && r->log_start <= r->leo);
    if (r->durable_end < r->log_start) {
        bool reset_queued = false;
        for (uint32_t i = 0; i < r->disk_n; i++) {
            uint32_t k = (r->disk_head + i) % SL_REPL_DISK_INFLIGHT_MAX;
            reset_queued |= r->disk_kind[k] == DISK_RESET && r->disk_end[k] == r->log_start;
        }
        /* (a FATAL replica's failed reset left the FIFO: it stays short for good) */
        SL_ASSERT(reset_queued || r->role == SL_REPL_FATAL);
    }
    SL_ASSERT(!r->isr_writing || r->meta_pending); /* one META_WRITE in flight at most */
    if (r->role == SL_REPL_LEADER) {
        SL_ASSERT(r->meta.leader == r->cfg.self && r->epoch == r->meta.leader_epoch);
        SL_ASSERT(r->epoch == r->last_led_epoch);
        SL_ASSERT(r->n_epochs > 0 && r->epochs[r->n_epochs - 1].epoch == r->epoch);
        SL_ASSERT(r->acked_end <= r->pending_end && r->pending_end <= r->leo);
        /* nothing is acked beyond HW, except the start of the epoch (nothing pending yet) */
        SL_ASSERT(r->acked_end <= r->hw || MUTATION(2) ||
                  r->acked_end == r->epochs[r->n_epochs - 1].start_offset ||
                  r->acked_end <= r->failed_end); /* (answered NOT_LEADER, not acked) */
        SL_ASSERT(r->n_peers <= SL_REPL_REPLICAS_MAX);
        SL_ASSERT(!r->ready || r->saved_led_epoch == r->epoch);
    }
    if (r->role == SL_REPL_FOLLOWER) {
        SL_ASSERT(r->meta.leader != r->cfg.self && r->meta.leader >= 0);
        SL_ASSERT(r->epoch == r->meta.leader_epoch);
    }
}

/* ---- leader ------------------------------------------------------------- */

static struct sl_repl_peer *peer_find(struct sl_repl *r, int32_t id)
{
    for (uint32_t i = 0; i < r->n_peers; i++) {
        if (r->peers[i].id == id) {
            return &r->peers[i];
        }
    }
    return NULL;
}

/* The replicas HW waits for: the ISR read from the store, plus a change we wrote whose
 * outcome is not known yet (an expansion may have applied). */
static bool in_hw_set(const struct sl_repl *r, int32_t id)
{
    if (ids_has(r->meta.isr, r->meta.n_isr, id)) {
        return true;
    }
    return (r->isr_writing || r->isr_unknown) && ids_has(r->proposed, r->n_proposed, id);
}

static void answer_fetch(struct sl_repl *r, struct sl_repl_peer *p, uint64_t req_id, int64_t off)
{
    struct sl_repl_msg m = {.type = SL_REPL_MSG_FETCH_RESP,
                            .to = p->id,
                            .leader_epoch = r->epoch,
                            .err = SL_OK,
                            .req_id = req_id,
                            .offset = off,
                            .hw = r->hw,
                            .read_end = r->leo,
                            .log_start = r->log_start};
    repl_send(r, &m);
    p->parked = false;
    p->hw_sent = r->hw;
}

static void wake_parked(struct sl_repl *r)
{
    for (uint32_t i = 0; i < r->n_peers; i++) {
        struct sl_repl_peer *p = &r->peers[i];
        if (p->parked && (p->parked_offset < r->leo || p->hw_sent < r->hw)) {
            answer_fetch(r, p, p->parked_req_id, p->parked_offset);
        }
    }
}

static void maybe_ack(struct sl_repl *r)
{
    if (r->role != SL_REPL_LEADER || r->suspended || r->pending_end <= r->acked_end) {
        return;
    }
    int64_t covered = MUTATION(2) ? r->durable_end : r->hw;
    int64_t end = covered < r->pending_end ? covered : r->pending_end;
    if (end <= r->acked_end) {
        return;
    }
    struct sl_repl_effect *e = repl_fx_push(r, SL_REPL_FX_ACK);
    e->offset = end;
    e->err = r->meta.n_isr >= r->cfg.min_insync ? SL_OK : SL_ENOT_ENOUGH_REPLICAS;
    r->acked_end = end;
}

static void hw_update(struct sl_repl *r)
{
    if (r->role != SL_REPL_LEADER) {
        return;
    }
    int64_t cand = r->durable_end;
    for (uint32_t i = 0; i < r->n_peers; i++) {
        const struct sl_repl_peer *p = &r->peers[i];
        if (in_hw_set(r, p->id) && p->ack < cand) {
            cand = p->ack; /* -1 while unknown: no advance */
        }
    }
    for (uint32_t i = 0; i < r->meta.n_isr; i++) {
        int32_t id = r->meta.isr[i];
        if (id != r->cfg.self && peer_find(r, id) == NULL) {
            cand = -1; /* an ISR member that is not a replica: wait for a sane state */
        }
    }
    if (cand > r->hw) {
        r->hw = cand;
        wake_parked(r);
    }
    maybe_ack(r);
}

static void fail_pending(struct sl_repl *r, int err)
{
    if (r->pending_end > r->acked_end) {
        struct sl_repl_effect *e = repl_fx_push(r, SL_REPL_FX_ACK);
        e->offset = r->pending_end;
        e->err = err;
    }
    r->acked_end = r->pending_end;
}

/* A reassignment changes the replicas within an epoch (docs/REPLICATION.md): peers that
 * stay keep what the leader knows of them, new ones start unknown (they copy the log from
 * its start and join the ISR by isr_maintain's rule), removed ones are dropped (the
 * controller removes them from the ISR in the same write). */
static void peers_sync(struct sl_repl *r)
{
    struct sl_repl_peer kept[SL_REPL_REPLICAS_MAX];
    uint32_t n = 0;
    for (uint32_t i = 0; i < r->meta.n_replicas; i++) {
        int32_t id = r->meta.replicas[i];
        if (id == r->cfg.self) {
            continue;
        }
        const struct sl_repl_peer *p = peer_find(r, id);
        kept[n++] = p != NULL ? *p
                              : (struct sl_repl_peer){.id = id,
                                                      .ack = -1,
                                                      .caught_up_ms = r->now_ms,
                                                      .prev_fetch_ms = r->now_ms,
                                                      .leo_at_prev_fetch = r->leo,
                                                      .hw_sent = -1};
    }
    memcpy(r->peers, kept, n * sizeof kept[0]);
    r->n_peers = n;
}

static void become_leader(struct sl_repl *r)
{
    r->role = SL_REPL_LEADER;
    r->truncating = false;
    r->req_out = false;
    r->suspended = false;
    r->isr_writing = r->isr_unknown = false;
    r->pending_end = r->acked_end = r->leo;
    r->failed_end = 0;
    r->n_peers = 0;
    peers_sync(r);
    /* The epoch file records that we led this epoch before a single append is accepted:
     * after a crash that lost this epoch's batches we must never lead it again (two
     * different batches at one offset under one epoch would break the log matching). */
    r->last_led_epoch = r->epoch;
    repl_epochs_add(r, r->epoch, r->leo);
    r->ready = false;
    repl_fx_push(r, SL_REPL_FX_SAVE_EPOCHS);
    repl_disk_push(r, DISK_SAVE, r->last_led_epoch);
}

static void isr_propose(struct sl_repl *r, const int32_t *isr, uint32_t n)
{
    SL_ASSERT(n >= 1 && n <= SL_REPL_REPLICAS_MAX && !r->isr_writing && !r->meta_pending);
    r->meta_pending = true;
    r->n_proposed = n;
    memcpy(r->proposed, isr, n * sizeof isr[0]);
    r->isr_writing = true;
    r->isr_unknown = false;
    r->isr_base_version = r->meta.version;
    struct sl_repl_effect *e = repl_fx_push(r, SL_REPL_FX_META_WRITE);
    e->meta = r->meta;
    e->meta.n_isr = n;
    memcpy(e->meta.isr, isr, n * sizeof isr[0]);
}

/* Kafka's rules: a member not caught up for replica_lag_ms leaves; a replica whose durable
 * end reached the HW and the start of this epoch joins. One change in flight at a time. */
static void isr_maintain(struct sl_repl *r)
{
    if (r->role != SL_REPL_LEADER || !r->ready || r->suspended || r->isr_writing ||
        r->isr_unknown || r->meta_pending) {
        return;
    }
    int32_t isr[SL_REPL_REPLICAS_MAX];
    uint32_t n = 0;
    bool change = false;
    isr[n++] = r->cfg.self;
    int64_t epoch_start = r->epochs[r->n_epochs - 1].start_offset;
    for (uint32_t i = 0; i < r->n_peers; i++) {
        const struct sl_repl_peer *p = &r->peers[i];
        bool in = ids_has(r->meta.isr, r->meta.n_isr, p->id);
        if (in && r->now_ms - p->caught_up_ms > r->cfg.replica_lag_ms) {
            change = true;
        } else if (in) {
            isr[n++] = p->id;
        } else if (p->ack >= 0 && p->ack >= r->hw && p->ack >= epoch_start &&
                   r->now_ms - p->caught_up_ms <= r->cfg.replica_lag_ms) {
            isr[n++] = p->id;
            change = true;
        }
    }
    if (!ids_has(r->meta.isr, r->meta.n_isr, r->cfg.self)) {
        change = true; /* the controller never drops a live leader; repair if it did */
    }
    if (change) {
        isr_propose(r, isr, n);
    }
}

static void on_fetch(struct sl_repl *r, const struct sl_repl_msg *m)
{
    struct sl_repl_msg resp = {.type = SL_REPL_MSG_FETCH_RESP,
                               .to = m->from,
                               .leader_epoch = r->epoch,
                               .req_id = m->req_id,
                               .offset = m->offset,
                               .hw = r->hw,
                               .read_end = m->offset,
                               .log_start = r->log_start};
    struct sl_repl_peer *p = peer_find(r, m->from);
    if (p == NULL) {
        resp.err = SL_ENOTFOUND;
        repl_send(r, &resp);
        return;
    }
    if (m->offset >= 0 && m->offset < r->log_start) {
        /* retention removed what it asks for: it must start its log at ours */
        resp.err = SL_ETRIMMED;
        repl_send(r, &resp);
        return;
    }
    int32_t found;
    int64_t end = sl_repl_epoch_end(r, m->epoch, &found);
    /* an empty log starting at offset (0, or where a reset put it) claims nothing */
    bool empty = m->epoch == SL_REPL_NONE && m->offset <= r->leo;
    if (m->offset < 0 || (m->offset > 0 && !empty && (found != m->epoch || end < m->offset)) ||
        (m->offset == 0 && m->epoch != SL_REPL_NONE)) {
        /* the follower's last entry is not ours: tell it where that epoch ends here */
        resp.err = SL_ECONFLICT;
        resp.epoch = found;
        resp.end_offset = end;
        repl_send(r, &resp);
        return;
    }
    /* validated: its log equals ours below m->offset, durably */
    if (m->offset >= r->leo) {
        p->caught_up_ms = r->now_ms;
    } else if (m->offset >= p->leo_at_prev_fetch) {
        p->caught_up_ms = p->prev_fetch_ms > p->caught_up_ms ? p->prev_fetch_ms : p->caught_up_ms;
    }
    p->prev_fetch_ms = r->now_ms;
    p->leo_at_prev_fetch = r->leo;
    if (m->offset > p->ack) {
        p->ack = m->offset;
    }
    p->parked = false;
    hw_update(r);
    if (m->offset < r->leo || p->hw_sent < r->hw) {
        answer_fetch(r, p, m->req_id, m->offset);
    } else {
        p->parked = true;
        p->parked_req_id = m->req_id;
        p->parked_offset = m->offset;
        p->parked_ms = r->now_ms;
    }
    isr_maintain(r);
}

static void on_epoch_req(struct sl_repl *r, const struct sl_repl_msg *m)
{
    struct sl_repl_msg resp = {.type = SL_REPL_MSG_EPOCH_RESP,
                               .to = m->from,
                               .leader_epoch = r->epoch,
                               .req_id = m->req_id,
                               .log_start = r->log_start};
    if (peer_find(r, m->from) == NULL) {
        resp.err = SL_ENOTFOUND;
    } else {
        resp.end_offset = sl_repl_epoch_end(r, m->epoch, &resp.epoch);
    }
    repl_send(r, &resp);
}

/* ---- inputs ------------------------------------------------------------- */

void sl_repl_init(struct sl_repl *r, const struct sl_repl_cfg *cfg,
                  const struct sl_repl_recovered *rec, uint64_t now_ms)
{
    /* a caught-up follower fetches at least every FETCH_WAIT (parked) + REQ_TIMEOUT (a
     * lost message): a shorter lag would drop healthy followers from the ISR */
    SL_ASSERT(cfg->self >= 0 && cfg->min_insync >= 1 &&
              cfg->replica_lag_ms >= SL_REPL_REPLICA_LAG_MIN_MS);
    SL_ASSERT(rec->log_end >= 0 && rec->n_epochs <= SL_REPL_EPOCHS_MAX);
    memset(r, 0, sizeof *r);
    r->cfg = *cfg;
    r->role = SL_REPL_IDLE;
    r->meta.version = -1;
    r->meta.leader = SL_REPL_NONE;
    r->meta.leader_epoch = SL_REPL_NONE;
    r->epoch = SL_REPL_NONE;
    r->last_led_epoch = r->saved_led_epoch = rec->last_led_epoch;
    r->now_ms = now_ms;
    r->leo = r->durable_end = rec->log_end;
    SL_ASSERT(rec->log_start >= 0 && rec->log_start <= rec->log_end);
    r->log_start = rec->log_start;
    for (uint32_t i = 0; i < rec->n_epochs; i++) {
        SL_ASSERT(rec->epochs[i].start_offset <= rec->log_end);
        repl_epochs_add(r, rec->epochs[i].epoch, rec->epochs[i].start_offset);
    }
    sl_repl_check(r);
}

int sl_repl_append(struct sl_repl *r, const struct sl_repl_batch *b, int64_t *base, int32_t *epoch)
{
    sl_repl_check(r);
    SL_ASSERT(b->count >= 1);
    if (r->role == SL_REPL_FATAL) {
        return SL_EFATAL;
    }
    if (r->role != SL_REPL_LEADER || r->suspended) {
        return SL_ENOT_LEADER;
    }
    if (!r->ready || r->disk_n + DISK_RESERVE > SL_REPL_DISK_INFLIGHT_MAX) {
        return SL_EAGAIN;
    }
    if (r->meta.n_isr < r->cfg.min_insync) {
        return SL_ENOT_ENOUGH_REPLICAS;
    }
    *base = r->leo;
    *epoch = r->epoch;
    r->append_batch = *b;
    r->append_batch.base_offset = r->leo;
    r->append_batch.epoch = r->epoch;
    struct sl_repl_effect *e = repl_fx_push(r, SL_REPL_FX_WRITE);
    e->offset = r->leo;
    e->batches = &r->append_batch;
    e->n_batches = 1;
    r->leo += b->count;
    r->pending_end = r->leo;
    repl_disk_push(r, DISK_WRITE, r->leo);
    wake_parked(r);
    sl_repl_check(r);
    return SL_OK;
}

void sl_repl_on_msg(struct sl_repl *r, const struct sl_repl_msg *m)
{
    sl_repl_check(r);
    if (r->role == SL_REPL_FATAL) {
        return;
    }
    bool request = m->type == SL_REPL_MSG_FETCH || m->type == SL_REPL_MSG_EPOCH_REQ;
    if (request) {
        struct sl_repl_msg resp = {.type = m->type == SL_REPL_MSG_FETCH ? SL_REPL_MSG_FETCH_RESP
                                                                        : SL_REPL_MSG_EPOCH_RESP,
                                   .to = m->from,
                                   .leader_epoch = r->epoch,
                                   .req_id = m->req_id,
                                   .offset = m->offset,
                                   .read_end = m->offset};
        if (m->from == r->cfg.self || m->from < 0) {
            r->rejected_msgs++;
        } else if (r->role == SL_REPL_LEADER && m->leader_epoch == r->epoch) {
            if (m->type == SL_REPL_MSG_FETCH) {
                on_fetch(r, m);
            } else {
                on_epoch_req(r, m);
            }
        } else if (m->leader_epoch < r->epoch && r->role == SL_REPL_LEADER) {
            resp.err = SL_EFENCED; /* a follower of an older epoch: it must re-read */
            repl_send(r, &resp);
        } else {
            resp.err = SL_ENOT_LEADER;
            repl_send(r, &resp);
            if (m->leader_epoch > r->epoch) {
                repl_fx_push(r, SL_REPL_FX_META_REFRESH); /* we are behind the store */
            }
        }
        sl_repl_check(r);
        return;
    }
    /* a response: only the one to our outstanding request, in our epoch, from our leader */
    if (r->role != SL_REPL_FOLLOWER || !r->req_out || m->req_id != r->req_id ||
        m->from != r->meta.leader || m->leader_epoch != r->epoch) {
        if (r->role == SL_REPL_FOLLOWER && m->req_id == r->req_id && m->from == r->meta.leader &&
            m->leader_epoch > r->epoch) {
            repl_fx_push(r, SL_REPL_FX_META_REFRESH);
        }
        r->rejected_msgs++;
        return;
    }
    r->req_out = false;
    if (m->err == SL_EFENCED || m->err == SL_ENOT_LEADER || m->err == SL_ENOTFOUND) {
        /* the leader disagrees about the epoch, or has not taken up the shard yet (a
         * new stream): re-read and retry soon - not at once (no hot loop), and not after
         * the full request timeout (a new stream's first acks would wait for it) */
        repl_fx_push(r, SL_REPL_FX_META_REFRESH);
        r->req_out = true;
        r->req_resend_ms = r->now_ms + SL_REPL_REFUSED_RETRY_MS;
        sl_repl_check(r);
        return;
    }
    if (m->type == SL_REPL_MSG_EPOCH_RESP) {
        repl_on_epoch_resp(r, m);
    } else {
        repl_on_fetch_resp(r, m);
    }
    if (r->role == SL_REPL_FOLLOWER && !r->req_out && r->disk_n == 0) {
        repl_follower_request(r); /* a rejected answer: ask again */
    }
    sl_repl_check(r);
}

static void go_fatal(struct sl_repl *r, int err)
{
    if (r->role == SL_REPL_LEADER) {
        fail_pending(r, SL_EFATAL);
    }
    r->role = SL_REPL_FATAL;
    r->ready = false;
    r->isr_writing = r->isr_unknown = false; /* (its write's answer may still come) */
    struct sl_repl_effect *e = repl_fx_push(r, SL_REPL_FX_FATAL);
    e->err = err;
}

void sl_repl_disk_done(struct sl_repl *r, int err)
{
    sl_repl_check(r);
    SL_ASSERT(r->disk_n > 0);
    uint8_t kind = r->disk_kind[r->disk_head];
    int64_t end = r->disk_end[r->disk_head];
    r->disk_head = (r->disk_head + 1) % SL_REPL_DISK_INFLIGHT_MAX;
    r->disk_n--;
    if (r->role == SL_REPL_FATAL) {
        return;
    }
    if (err != SL_OK) {
        go_fatal(r, err); /* never retried: the page cache may have dropped the data */
        sl_repl_check(r);
        return;
    }
    if ((kind == DISK_WRITE || kind == DISK_RESET) && end <= r->leo && end > r->durable_end) {
        r->durable_end = end;
    } else if (kind == DISK_SAVE) {
        /* the file holds at least what last_led_epoch was when the save was queued */
        if ((int32_t)end > r->saved_led_epoch) {
            r->saved_led_epoch = (int32_t)end;
        }
        if (r->role == SL_REPL_LEADER && r->saved_led_epoch == r->epoch) {
            r->ready = true;
        }
    }
    if (r->role == SL_REPL_LEADER) {
        hw_update(r);
    } else if (r->role == SL_REPL_FOLLOWER) {
        int64_t hw = r->leader_hw < r->durable_end ? r->leader_hw : r->durable_end;
        if (hw > r->hw) {
            r->hw = hw;
        }
        repl_follower_request(r);
    }
    sl_repl_check(r);
}

/* A replica the state no longer names (a reassignment moved the shard away) drops its copy:
 * its log emptied and started at 0, its epoch cache emptied (last_led_epoch kept: it still
 * never leads an epoch twice). At 0, not at its own end or the leader's start: were it named
 * again, it must copy the leader's whole log - starting later, it would join the ISR without
 * records the leader still holds, and serve them as trimmed once elected. Safe to drop: a
 * switch leaves exactly the target in the ISR, which holds everything HW covers; a state
 * that names it in the ISR (not sane) keeps the copy. Queued after the disk FIFO's writes,
 * so a later fetch (named again) writes after it; retried by the tick while the FIFO lacks
 * room. */
static void drop_if_removed(struct sl_repl *r)
{
    const struct sl_repl_meta *m = &r->meta;
    if (r->role != SL_REPL_IDLE || m->version < 0 || m->n_replicas == 0 ||
        (r->leo == 0 && r->log_start == 0) || SL_REPL_DISK_INFLIGHT_MAX - r->disk_n < 2) {
        return;
    }
    if (!MUTATION(5) && (ids_has(m->replicas, m->n_replicas, r->cfg.self) ||
                         ids_has(m->isr, m->n_isr, r->cfg.self))) {
        return;
    }
    r->leo = r->log_start = r->durable_end = r->hw = 0;
    r->n_epochs = 0;
    struct sl_repl_effect *e = repl_fx_push(r, SL_REPL_FX_RESET);
    e->offset = 0;
    repl_disk_push(r, DISK_RESET, 0);
    repl_fx_push(r, SL_REPL_FX_SAVE_EPOCHS);
    repl_disk_push(r, DISK_SAVE, r->last_led_epoch);
    SL_ASSERT(r->role == SL_REPL_IDLE && r->leo == 0 && r->hw == 0);
}

static void leave_role(struct sl_repl *r)
{
    if (r->role == SL_REPL_LEADER) {
        fail_pending(r, SL_ENOT_LEADER); /* outcome unknown to the producer */
    }
    r->role = SL_REPL_IDLE;
    r->ready = false;
    r->suspended = false;
    r->n_peers = 0;
    r->isr_writing = r->isr_unknown = false;
    r->truncating = r->req_out = false;
}

void sl_repl_on_meta(struct sl_repl *r, const struct sl_repl_meta *m)
{
    sl_repl_check(r);
    int32_t log_epoch = r->n_epochs > 0 ? r->epochs[r->n_epochs - 1].epoch : SL_REPL_NONE;
    if (r->role == SL_REPL_FATAL || m->version < r->meta.version ||
        m->leader_epoch < r->meta.leader_epoch || m->leader_epoch < log_epoch ||
        m->n_isr > SL_REPL_REPLICAS_MAX || m->n_replicas > SL_REPL_REPLICAS_MAX) {
        return; /* stale (or from a store that went backwards: ignored, never trusted) */
    }
    if (m->version == r->meta.version) {
        if (r->role == SL_REPL_LEADER && r->isr_unknown) {
            r->isr_unknown = false; /* read back unchanged: our write did not apply */
            isr_maintain(r);
        }
        if (r->suspended && m->leader == r->meta.leader &&
            m->leader_epoch == r->meta.leader_epoch) {
            r->suspended = false; /* re-confirmed by a read after the session came back */
            hw_update(r);
        }
        sl_repl_check(r);
        return;
    }
    bool same_epoch = m->leader_epoch == r->meta.leader_epoch && m->leader == r->meta.leader;
    r->meta = *m;
    bool me_replica = ids_has(m->replicas, m->n_replicas, r->cfg.self);
    if (same_epoch && r->role != SL_REPL_IDLE && me_replica) {
        if (r->role == SL_REPL_LEADER) {
            peers_sync(r); /* a reassignment adds or removes replicas within the epoch */
            /* the store now says what the ISR is; any change we wrote is settled */
            if (r->isr_writing && m->version > r->isr_base_version) {
                r->isr_writing = false; /* its completion will find nothing to do */
            }
            r->isr_unknown = false;
            r->suspended = false;
            hw_update(r);
            isr_maintain(r);
        }
        sl_repl_check(r);
        return;
    }
    leave_role(r);
    r->epoch = m->leader_epoch;
    if (!me_replica) {
        drop_if_removed(r);
    } else if (m->leader < 0) {
        /* offline: wait */
    } else if (m->leader == r->cfg.self) {
        if (m->leader_epoch > r->last_led_epoch) {
            become_leader(r);
            hw_update(r);
        }
        /* else: we led this epoch before a restart and may have lost its tail: wait for
         * the controller to elect again with a new epoch */
    } else {
        repl_become_follower(r);
    }
    sl_repl_check(r);
}

void sl_repl_meta_done(struct sl_repl *r, int err)
{
    sl_repl_check(r);
    r->meta_pending = false;
    if (r->role != SL_REPL_LEADER) {
        r->isr_writing = false; /* (a FATAL replica keeps no proposal) */
    }
    if (r->role != SL_REPL_LEADER || !r->isr_writing) {
        /* settled by a newer read, or we left the role: nothing to apply, and the next
         * change may go now */
        isr_maintain(r);
        sl_repl_check(r);
        return;
    }
    r->isr_writing = false;
    if (err == SL_OK) {
        r->meta.n_isr = r->n_proposed;
        memcpy(r->meta.isr, r->proposed, r->n_proposed * sizeof r->proposed[0]);
        r->meta.version = r->isr_base_version + 1;
        hw_update(r);
        isr_maintain(r);
    } else if (err != SL_ECONFLICT) {
        r->isr_unknown = true; /* may have applied: keep it in the HW set until a read */
        repl_fx_push(r, SL_REPL_FX_META_REFRESH);
    } else {
        repl_fx_push(r, SL_REPL_FX_META_REFRESH);
    }
    sl_repl_check(r);
}

bool sl_repl_cut(struct sl_repl *r, uint64_t silent_ms)
{
    sl_repl_check(r);
    if (r->role != SL_REPL_LEADER) {
        return false;
    }
    uint32_t heard = 1; /* itself */
    for (uint32_t i = 0; i < r->n_peers; i++) {
        const struct sl_repl_peer *p = &r->peers[i];
        heard += p->prev_fetch_ms != 0 && r->now_ms - p->prev_fetch_ms < silent_ms;
    }
    if (heard >= r->cfg.min_insync && !r->suspended) {
        return false;
    }
    r->suspended = true;
    fail_pending(r, SL_ENOT_LEADER);
    r->failed_end = r->acked_end;
    sl_repl_check(r);
    return true;
}

void sl_repl_set_log_start(struct sl_repl *r, int64_t start)
{
    sl_repl_check(r);
    if (start > r->log_start && start <= r->durable_end) {
        r->log_start = start; /* (storage trims only what it holds durably) */
    }
    sl_repl_check(r);
}

void sl_repl_suspend(struct sl_repl *r)
{
    sl_repl_check(r);
    if (r->role == SL_REPL_LEADER) {
        r->suspended = true;
    }
    sl_repl_check(r);
}

void sl_repl_resign(struct sl_repl *r)
{
    sl_repl_check(r);
    if (r->role == SL_REPL_LEADER) {
        leave_role(r);
        SL_ASSERT(r->role == SL_REPL_IDLE && r->acked_end == r->pending_end);
    }
    sl_repl_check(r);
}

void sl_repl_tick(struct sl_repl *r, uint64_t now_ms)
{
    sl_repl_check(r);
    SL_ASSERT(now_ms >= r->now_ms);
    r->now_ms = now_ms;
    if (r->role == SL_REPL_LEADER) {
        for (uint32_t i = 0; i < r->n_peers; i++) {
            struct sl_repl_peer *p = &r->peers[i];
            if (p->parked && now_ms - p->parked_ms >= SL_REPL_FETCH_WAIT_MS) {
                answer_fetch(r, p, p->parked_req_id, p->parked_offset);
            }
        }
        isr_maintain(r);
    } else if (r->role == SL_REPL_FOLLOWER && r->req_out && now_ms >= r->req_resend_ms) {
        r->req_out = false; /* lost, or the leader is gone: ask again */
        repl_follower_request(r);
    } else if (r->role == SL_REPL_IDLE) {
        drop_if_removed(r); /* (its FIFO was full when the state came) */
    }
    sl_repl_check(r);
}
