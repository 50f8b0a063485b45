/* replicas.c - one shard's replica in the broker (replicas.h): repl.c's effects performed on
 * the engine's shard, the disk FIFO kept in repl.c's order, leaders followed (followers are
 * served by replicas_serve.c).
 *
 * Order of disk effects: repl.c wants them completed in the order it gave them. Writes
 * reach the shard's log in that order (a leader's through the produce path, which appends
 * in acceptance order; a follower's here, batch by batch) and the log completes appends in
 * order; a truncate, a reset or an epoch-file save starts only once everything before it
 * completed.
 * So the FIFO below only has to report completions from its head.
 */
#include "broker/cluster/replicas_int.h"

#include "broker/engine/catalog.h"
#include "broker/engine/consumer.h"
#include "broker/engine/dedup.h"
#include "broker/engine/fetch.h"
#include "broker/engine/produce.h"
#include "broker/engine/qlog.h"
#include "broker/engine/queue.h"
#include "broker/engine/workers.h"
#include "common/assert.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"
#include "storage/batch.h"
#include "storage/epochs.h"
#include "storage/shard.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REPLICAS_LINK_WARN_MS     30000u /* a shard's lasting link failure: logged this often */
#define REPLICAS_LINK_WARN_GAP_MS 1000u  /* and at most one such line a second, all shards */

static struct dq_entry *dq_at(struct sl_brepl *br, uint32_t i)
{
    SL_ASSERT(i < br->dq_n);
    return &br->dq[(br->dq_head + i) % SL_REPL_DISK_INFLIGHT_MAX];
}

static struct dq_entry *dq_push(struct sl_brepl *br, uint8_t kind)
{
    /* repl.c bounds its own FIFO by the same constant: never more than it */
    SL_ASSERT(br->dq_n < SL_REPL_DISK_INFLIGHT_MAX);
    struct dq_entry *d = &br->dq[(br->dq_head + br->dq_n) % SL_REPL_DISK_INFLIGHT_MAX];
    br->dq_n++;
    memset(d, 0, offsetof(struct dq_entry, off));
    d->kind = kind;
    return d;
}

static char *shard_dir(const struct sl_bshard *b)
{
    size_t n = strlen(b->stream->dir) + 16;
    char *p = malloc(n);
    if (p != NULL) {
        snprintf(p, n, "%s/%u", b->stream->dir, b->id);
    }
    return p;
}

/* ---- the engine's hooks ------------------------------------------------- */

static int hook_append(void *ctx, struct sl_bshard *b, uint32_t count, uint32_t *epoch,
                       uint64_t *end, char *why, size_t why_len)
{
    (void)ctx;
    struct sl_brepl *br = b->repl;
    struct sl_repl_batch rb = {.count = count};
    int64_t base = 0;
    int32_t ep = 0;
    br->in_append = true;
    int rc = sl_repl_append(&br->r, &rb, &base, &ep);
    if (rc == SL_OK) {
        rs_pump(br); /* the WRITE: this append, which the produce path performs */
    }
    br->in_append = false;
    if (rc != SL_OK) {
        if (rc == SL_ENOT_LEADER) {
            snprintf(why, why_len, "broker %d does not lead shard %u of %s (leader: %d)",
                     br->rs->cfg.self, b->id, b->stream->name, br->r.meta.leader);
        } else if (rc == SL_ENOT_ENOUGH_REPLICAS) {
            snprintf(why, why_len,
                     "shard %u of %s has %u in-sync replicas, fewer than min_insync_replicas "
                     "(%u): wait for the replicas to catch up",
                     b->id, b->stream->name, br->r.meta.n_isr, br->r.cfg.min_insync);
        } else {
            snprintf(why, why_len, "shard %u of %s: %s", b->id, b->stream->name, sl_strerror(rc));
        }
        return rc;
    }
    SL_ASSERT(base >= 0 && ep >= 0);
    *epoch = (uint32_t)ep;
    *end = (uint64_t)base + count;
    return SL_OK;
}

static void hook_written(void *ctx, struct sl_bshard *b, int err)
{
    (void)ctx;
    struct sl_brepl *br = b->repl;
    for (uint32_t i = 0; i < br->dq_n; i++) {
        struct dq_entry *d = dq_at(br, i);
        if (d->kind == DQ_LWRITE && !d->done) {
            d->done = true;
            d->err = err;
            rs_pump(br);
            rs_serve_wake(br, false);
            return;
        }
    }
    SL_ASSERT(!"a leader's write completed that the replica did not queue");
}

/* ---- a follower's writes ------------------------------------------------ */

static void on_fwrite(void *ctx, int err, uint64_t base_seq, uint32_t count)
{
    (void)base_seq;
    (void)count;
    struct sl_brepl *br = ctx;
    /* the oldest follower write not complete is this one's (the log answers in order) */
    for (uint32_t i = 0; i < br->dq_n; i++) {
        struct dq_entry *d = dq_at(br, i);
        if (d->kind != DQ_FWRITE || d->done) {
            continue;
        }
        SL_ASSERT(d->completed < d->submitted);
        struct sl_batch_header h;
        if (err == SL_OK &&
            sl_batch_peek(d->buf + d->off[d->completed], d->len[d->completed], &h) == SL_OK) {
            sl_dedup_note(&br->b->dedup, &h); /* a retry to this broker as leader: a duplicate */
        }
        d->completed++;
        if (err != SL_OK && d->err == SL_OK) {
            d->err = err;
        }
        if (d->completed == d->n) {
            d->done = true;
            br->rs->follow_bytes -= d->buf_len;
            free(d->buf);
            d->buf = NULL;
        }
        rs_pump(br);
        return;
    }
    SL_ASSERT(!"a follower's write completed that the replica did not queue");
}

static void on_stores_synced(void *ctx, int err)
{
    struct sl_brepl *br = ctx;
    if (err != SL_OK) {
        sl_warn("cluster",
                "shard %u of %s: a group-state store failed while taking replicated "
                "changes (%s): written to the log anyway, this broker's store lacks them",
                br->b->id, br->b->stream->name, sl_strerror(err));
    }
    SL_ASSERT(br->store_waits > 0);
    if (--br->store_waits > 0) {
        return;
    }
    for (uint32_t i = 0; i < br->dq_n; i++) {
        struct dq_entry *d = dq_at(br, i);
        if (d->kind == DQ_FWRITE && d->holding) {
            d->holding = false;
            break;
        }
    }
    rs_pump(br);
}

/* A control batch (a group's state, broker/engine/control.h) goes to this broker's stores
 * before its log: their changes are made, then the write waits until they are durable. So a
 * replica's log never holds a change its stores may lack after a crash (a crash between the
 * two leaves the batch out of the log: fetched and applied again, and every change applies
 * idempotently), and a broker elected next serves every acknowledged change. True: the
 * write of batch i waits (d->holding). */
static bool fwrite_hold(struct sl_brepl *br, struct dq_entry *d, uint32_t i)
{
    struct sl_batch_header h;
    const uint8_t *batch = d->buf + d->off[i];
    if (sl_batch_peek(batch, d->len[i], &h) != SL_OK || !h.control) {
        return false;
    }
    struct sl_engine *e = br->rs->e;
    struct sl_stream *st = br->b->stream;
    sl_consumer_apply_control(e, br->b, batch, &h);
    sl_qlog_apply(e, br->b, batch, &h);
    SL_ASSERT(br->store_waits == 0);
    if (st->ckpt != NULL && sl_ckpt_sync(st->ckpt, on_stores_synced, br)) {
        br->store_waits++;
    }
    if (st->qstate != NULL && sl_qstate_sync(st->qstate, on_stores_synced, br)) {
        br->store_waits++;
    }
    d->holding = br->store_waits > 0;
    return d->holding;
}

/* Submits what the log takes of the follower writes queued (a full staging area on the
 * main loop's own shards says SL_EAGAIN: the rest goes at the next pump or tick). */
static void fwrite_submit(struct sl_brepl *br)
{
    for (uint32_t i = 0; i < br->dq_n && !br->gone; i++) {
        struct dq_entry *d = dq_at(br, i);
        if ((d->kind == DQ_TRUNC || d->kind == DQ_RESET) && !d->done) {
            return; /* nothing is written past a truncate (or reset) still to come */
        }
        if (d->kind != DQ_FWRITE) {
            continue;
        }
        while (d->submitted < d->n) {
            if (d->holding) {
                return; /* (and what follows it: the log takes them in order) */
            }
            if (d->applied == d->submitted) {
                d->applied++;
                if (fwrite_hold(br, d, d->submitted)) {
                    return;
                }
            }
            int rc = sl_wshard_append_opt(
                &br->b->ws, d->buf + d->off[d->submitted], d->len[d->submitted],
                SL_APPEND_KEEP_STAMPS | SL_APPEND_DURABLE | SL_WSHARD_REPLICA, 0, on_fwrite, br);
            if (rc == SL_EAGAIN) {
                return;
            }
            d->submitted++;
            if (rc != SL_OK) {
                on_fwrite(br, rc, 0, 0);
            }
        }
    }
}

static void fx_fwrite(struct sl_brepl *br, const struct sl_repl_effect *fx)
{
    struct dq_entry *d = dq_push(br, DQ_FWRITE);
    d->n = fx->n_batches;
    SL_ASSERT(d->n >= 1 && d->n <= SL_REPL_FETCH_BATCHES_MAX && br->in_buf != NULL);
    for (uint32_t i = 0; i < d->n; i++) {
        const uint8_t *p = fx->batches[i].data;
        SL_ASSERT(p >= br->in_buf && p + fx->batches[i].len <= br->in_buf + br->in_len);
        d->off[i] = (uint32_t)(p - br->in_buf);
        d->len[i] = (uint32_t)fx->batches[i].len;
    }
    d->buf = br->in_buf; /* taken: freed once written */
    d->buf_len = br->in_len;
    br->in_buf = NULL;
    br->in_len = 0;
}

/* ---- truncate and epoch file -------------------------------------------- */

static void dedup_rebuild_on_owner(void *arg)
{
    struct sl_bshard *b = arg;
    (void)sl_dedup_rebuild(&b->dedup, b->ws.log);
}

/* The producers' batches that were cut must not be taken for stored: a retry of one would
 * be answered as a duplicate and never written. The table is learnt again from the log
 * (the main loop waits on the owner: a truncate is rare). */
static void dedup_relearn(struct sl_bshard *b)
{
    sl_dedup_fini(&b->dedup);
    sl_dedup_init(&b->dedup);
    sl_workers_call(b->ws.workers, b->ws.owner, dedup_rebuild_on_owner, b);
}

static void on_truncated(void *ctx, int err, uint64_t end_seq)
{
    struct sl_brepl *br = ctx;
    SL_ASSERT(br->dq_n > 0 && dq_at(br, 0)->started);
    struct dq_entry *d = dq_at(br, 0);
    bool reset = d->kind == DQ_RESET;
    SL_ASSERT(reset || d->kind == DQ_TRUNC);
    if (err == SL_OK && (int64_t)end_seq != d->offset) {
        err = SL_EFATAL;
    }
    if (err != SL_OK) {
        sl_error("cluster", "shard %u of %s: %s %" PRId64 " failed: %s", br->b->id,
                 br->b->stream->name,
                 reset ? "starting the log afresh at" : "cutting the log back to", d->offset,
                 sl_strerror(err));
    } else {
        if (reset && d->offset == 0) {
            /* (a reset to the leader's start is always past 0: it starts past our end) */
            sl_info("cluster",
                    "shard %u of %s: this broker is no longer one of its replicas (moved "
                    "away): its copy is dropped",
                    br->b->id, br->b->stream->name);
        } else if (reset) {
            sl_info("cluster",
                    "shard %u of %s: log emptied, it starts at %" PRId64 " (the leader's "
                    "oldest retained record: retention removed what came before)",
                    br->b->id, br->b->stream->name, d->offset);
        } else {
            sl_info("cluster",
                    "shard %u of %s: log cut back to %" PRId64 " (diverged from the "
                    "leader's)",
                    br->b->id, br->b->stream->name, d->offset);
        }
        dedup_relearn(br->b);
    }
    br->written_seq = end_seq; /* (the log's end either way: a failed cut is FATAL) */
    d->done = true;
    d->err = err;
    rs_pump(br);
}

static void save_epochs(struct sl_brepl *br, struct dq_entry *d)
{
    struct sl_epochs c;
    uint32_t n = 0;
    int32_t led = SL_REPL_NONE;
    const struct sl_repl_epoch *e = sl_repl_epochs(&br->r, &n, &led);
    sl_epochs_init(&c);
    c.last_led_epoch = led;
    for (uint32_t i = 0; i < n; i++) {
        sl_epochs_add(&c, e[i].epoch, e[i].start_offset);
    }
    char *dir = shard_dir(br->b);
    d->err = dir != NULL ? sl_epochs_save(dir, &c) : SL_ENOMEM;
    if (d->err != SL_OK) {
        sl_error("cluster", "shard %u of %s: saving its leader epochs failed: %s", br->b->id,
                 br->b->stream->name, sl_strerror(d->err));
    }
    free(dir);
    d->done = true;
}

/* Starts the head entry when it is one that waits for everything before it. */
static void dq_start_head(struct sl_brepl *br)
{
    if (br->dq_n == 0 || br->gone) {
        return;
    }
    struct dq_entry *d = dq_at(br, 0);
    if (d->started || d->done) {
        return;
    }
    if (d->kind == DQ_SAVE) {
        d->started = true;
        save_epochs(br, d);
    } else if (d->kind == DQ_TRUNC || d->kind == DQ_RESET) {
        d->started = true;
        int rc = d->kind == DQ_TRUNC
                     ? sl_wshard_truncate(&br->b->ws, (uint64_t)d->offset, on_truncated, br)
                     : sl_wshard_reset(&br->b->ws, (uint64_t)d->offset, on_truncated, br);
        if (rc != SL_OK) {
            d->done = true;
            d->err = rc;
        }
    }
}

/* ---- following the leader ----------------------------------------------- */

static void on_reply(void *ctx, int err, const char *why, const struct sl_repl_msg *answer)
{
    struct sl_brepl *br = ctx;
    br->req_out = false;
    if (br->gone) {
        return;
    }
    if (err != SL_OK || answer == NULL) {
        /* unreachable or refused: the replica asks again after its timeout; the operator
         * hears why once per change of cause, and again while it lasts */
        uint64_t now = sl_clock_mono_ms();
        struct sl_replicas *rs = br->rs;
        bool due = err != br->link_err || now - br->link_warn_ms >= REPLICAS_LINK_WARN_MS;
        br->link_err = err;
        if (due && now - rs->link_warn_ms < REPLICAS_LINK_WARN_GAP_MS) {
            rs->link_unlogged++; /* a dead leader fails every shard it led at once */
        } else if (due) {
            br->link_warn_ms = rs->link_warn_ms = now;
            sl_warn("cluster",
                    "shard %u of %s: no answer from its leader, broker %d: %s%s (%u more "
                    "such failures since the last line)",
                    br->b->id, br->b->stream->name, br->r.meta.leader,
                    why != NULL ? why : sl_strerror(err),
                    err == SL_EAUTH || err == SL_EDENIED
                        ? " - brokers log in to each other with peer_credentials_file: a user "
                          "allowed admin on every stream, the same on every broker"
                        : "",
                    rs->link_unlogged);
            rs->link_unlogged = 0;
        }
        return;
    }
    br->link_err = SL_OK;
    size_t total = 0;
    for (uint32_t i = 0; i < answer->n_batches; i++) {
        total += answer->batches[i].len;
    }
    struct sl_repl_batch copy[SL_REPL_FETCH_BATCHES_MAX];
    struct sl_repl_msg m = *answer;
    if (answer->n_batches > 0) {
        SL_ASSERT(br->in_buf == NULL && answer->n_batches <= SL_REPL_FETCH_BATCHES_MAX);
        if (br->rs->follow_bytes + total > SL_REPLICAS_FOLLOW_BYTES_MAX ||
            (br->in_buf = malloc(total)) == NULL) {
            return; /* too much fetched and not yet written: asked again after the timeout */
        }
        size_t off = 0;
        for (uint32_t i = 0; i < answer->n_batches; i++) {
            copy[i] = answer->batches[i];
            memcpy(br->in_buf + off, answer->batches[i].data, answer->batches[i].len);
            copy[i].data = br->in_buf + off;
            off += answer->batches[i].len;
        }
        br->in_len = total;
        br->rs->follow_bytes += total;
        m.batches = copy;
    }
    sl_repl_on_msg(&br->r, &m);
    rs_pump(br);
    if (br->in_buf != NULL) { /* no WRITE took them (stale, or not contiguous) */
        br->rs->follow_bytes -= br->in_len;
        free(br->in_buf);
        br->in_buf = NULL;
        br->in_len = 0;
    }
}

static void fx_request(struct sl_brepl *br, const struct sl_repl_msg *m)
{
    const char *addr = rs_addr_of(br->rs, m->to);
    if (addr == NULL || br->rs->t.send == NULL) {
        return; /* the leader is not listed yet: the replica asks again after its timeout */
    }
    uint32_t wait = m->type == SL_REPL_MSG_FETCH ? SL_REPL_FETCH_WAIT_MS : 0;
    if (br->rs->t.send(br->rs->t.ctx, addr, br->b->stream->name, br->b->id, m, wait, on_reply,
                       br) == SL_OK) {
        br->req_out = true;
    }
}

/* ---- effects ------------------------------------------------------------ */

static void fx_run(struct sl_brepl *br)
{
    uint32_t n = 0;
    const struct sl_repl_effect *fx = sl_repl_fx(&br->r, &n);
    if (n == 0) {
        return;
    }
    /* Copied out first: acting on one may call into the replica again (an ACK answers
     * producers, whose callbacks may append). */
    struct sl_repl_effect local[SL_REPL_EFFECTS_MAX];
    SL_ASSERT(n <= SL_REPL_EFFECTS_MAX);
    memcpy(local, fx, n * sizeof(local[0]));
    sl_repl_fx_clear(&br->r);
    for (uint32_t i = 0; i < n; i++) {
        const struct sl_repl_effect *f = &local[i];
        bool answers = f->type == SL_REPL_FX_ACK ||
                       (f->type == SL_REPL_FX_SEND && f->msg.type != SL_REPL_MSG_FETCH &&
                        f->msg.type != SL_REPL_MSG_EPOCH_REQ);
        if (br->gone && !answers) {
            continue; /* deleted here: only what waits on the replica is answered */
        }
        switch (f->type) {
        case SL_REPL_FX_SEND:
            if (f->msg.type == SL_REPL_MSG_FETCH || f->msg.type == SL_REPL_MSG_EPOCH_REQ) {
                fx_request(br, &f->msg);
            } else {
                rs_fx_answer(br, &f->msg);
            }
            break;
        case SL_REPL_FX_WRITE:
            if (br->in_append) {
                (void)dq_push(br, DQ_LWRITE);
            } else {
                fx_fwrite(br, f);
            }
            break;
        case SL_REPL_FX_TRUNCATE:
            dq_push(br, DQ_TRUNC)->offset = f->offset;
            break;
        case SL_REPL_FX_RESET:
            dq_push(br, DQ_RESET)->offset = f->offset;
            break;
        case SL_REPL_FX_SAVE_EPOCHS:
            (void)dq_push(br, DQ_SAVE);
            break;
        case SL_REPL_FX_ACK:
            sl_produce_repl_ack(br->b, (uint64_t)f->offset, f->err);
            break;
        case SL_REPL_FX_META_WRITE:
            rs_meta_write(br, &f->meta);
            break;
        case SL_REPL_FX_META_REFRESH:
            rs_state_read(br);
            break;
        case SL_REPL_FX_FATAL:
            if (!br->fatal_logged) {
                br->fatal_logged = true;
                sl_error("cluster",
                         "shard %u of %s: its replica stopped (%s): this broker no longer "
                         "serves it; restart the broker once the disk is fixed",
                         br->b->id, br->b->stream->name, sl_strerror(f->err));
            }
            rs_abdicate(br); /* a leader lets the controller elect another */
            break;
        }
    }
}

/* A role taken (or left) is worth a line in the log: where to look after a failover. */
static void log_role(struct sl_brepl *br)
{
    const struct sl_repl *r = &br->r;
    if ((int)r->role == br->logged_role && r->epoch == br->logged_epoch) {
        return;
    }
    br->logged_role = (int)r->role;
    br->logged_epoch = r->epoch;
    const struct sl_bshard *b = br->b;
    if (r->role == SL_REPL_LEADER) {
        sl_info("cluster", "shard %u of %s: leading in epoch %d (log ends at %" PRId64 ")", b->id,
                b->stream->name, r->epoch, r->leo);
    } else if (r->role == SL_REPL_FOLLOWER) {
        sl_info("cluster", "shard %u of %s: following broker %d in epoch %d", b->id,
                b->stream->name, r->meta.leader, r->epoch);
    }
}

/* What readers of the shard may see, published to the engine. */
static void publish(struct sl_brepl *br)
{
    struct sl_bshard *b = br->b;
    log_role(br);
    uint64_t hw = (uint64_t)sl_repl_hw(&br->r);
    if (hw > br->hw_published) {
        br->hw_published = hw;
        sl_fetch_shard_progress(b); /* parked fetches see the new records */
        sl_queue_shard_progress(b); /* so do parked receives (a group's home reads here) */
    } else {
        br->hw_published = hw;
    }
}

void rs_pump(struct sl_brepl *br)
{
    if (br->pumping) {
        br->repump = true;
        return;
    }
    br->pumping = true;
    do {
        br->repump = false;
        fx_run(br);
        while (br->dq_n > 0 && dq_at(br, 0)->done) {
            int err = dq_at(br, 0)->err;
            SL_ASSERT(dq_at(br, 0)->buf == NULL);
            br->dq_head = (br->dq_head + 1) % SL_REPL_DISK_INFLIGHT_MAX;
            br->dq_n--;
            sl_repl_disk_done(&br->r, err);
            fx_run(br);
        }
        dq_start_head(br);
        fwrite_submit(br);
        fx_run(br);
    } while (br->repump || (br->dq_n > 0 && dq_at(br, 0)->done));
    br->pumping = false;
    publish(br);
}

/* ---- life --------------------------------------------------------------- */

struct recover_call {
    struct sl_bshard *b;
    const char *dir;
    struct sl_epochs c;
    int64_t log_start, log_end;
    int rc;
};

static void recover_on_owner(void *arg)
{
    struct recover_call *rc = arg;
    struct sl_shard_stats ss;
    sl_shard_stats_progress(rc->b->ws.log, &ss);
    rc->log_start = (int64_t)ss.first_seq;
    rc->log_end = (int64_t)ss.next_seq;
    rc->rc = sl_epochs_recover(rc->b->ws.log, rc->dir, SL_EPOCHS_NONE, &rc->c);
}

struct sl_brepl *rs_brepl_new(struct sl_replicas *rs, struct sl_bshard *b, const char *path)
{
    SL_ASSERT(b->repl == NULL && b->ws.log != NULL);
    struct sl_brepl *br = calloc(1, sizeof(*br));
    struct recover_call *rc = calloc(1, sizeof(*rc));
    char *dir = shard_dir(b);
    if (br == NULL || rc == NULL || dir == NULL) {
        free(br);
        free(rc);
        free(dir);
        return NULL;
    }
    rc->b = b;
    rc->dir = dir;
    sl_workers_call(b->ws.workers, b->ws.owner, recover_on_owner, rc);
    free(dir);
    if (rc->rc != SL_OK) {
        sl_error("cluster", "shard %u of %s: its leader epochs cannot be recovered: %s", b->id,
                 b->stream->name, sl_strerror(rc->rc));
        free(rc);
        free(br);
        return NULL;
    }
    br->rs = rs;
    br->b = b;
    snprintf(br->path, sizeof(br->path), "%s", path);
    br->state.m.version = -1;
    br->logged_role = -1;
    struct sl_repl_cfg cfg = {.self = rs->cfg.self,
                              .min_insync = rs->cfg.min_insync,
                              .replica_lag_ms = rs->cfg.replica_lag_ms};
    struct sl_repl_recovered rec = {.log_start = rc->log_start,
                                    .log_end = rc->log_end,
                                    .last_led_epoch = rc->c.last_led_epoch,
                                    .epochs = (const struct sl_repl_epoch *)rc->c.e,
                                    .n_epochs = rc->c.n};
    sl_repl_init(&br->r, &cfg, &rec, rs->now_ms);
    br->written_seq = (uint64_t)rc->log_end;
    free(rc);
    b->repl = br;
    sl_wshard_on_written(&b->ws, rs_on_shard_written);
    br->next = rs->all;
    rs->all = br;
    return br;
}

bool rs_brepl_disk_busy(const struct sl_brepl *br)
{
    for (uint32_t i = 0; i < br->dq_n; i++) {
        const struct dq_entry *d = dq_at((struct sl_brepl *)br, i);
        if (d->done) {
            continue;
        }
        /* a shard owner is writing or cutting, and will call back into this replica */
        if (d->kind == DQ_LWRITE || (d->kind == DQ_FWRITE && d->submitted > d->completed) ||
            ((d->kind == DQ_TRUNC || d->kind == DQ_RESET) && d->started)) {
            return true;
        }
    }
    if (br->store_waits > 0) {
        return true; /* the stores will call back into this replica */
    }
    return false;
}

void rs_brepl_free(struct sl_brepl *br)
{
    /* (after sl_replicas_stop, or quiet once gone: nothing waits any more, and nothing may
     * be read now) */
    SL_ASSERT(br->serve_wait == NULL);
    rs_brepl_answer_all(br);
    for (uint32_t i = 0; i < br->dq_n; i++) {
        struct dq_entry *d = dq_at(br, i);
        if (d->buf != NULL) {
            br->rs->follow_bytes -= d->buf_len;
            free(d->buf);
        }
    }
    free(br->in_buf);
    if (br->b != NULL && br->b->repl == br) {
        br->b->repl = NULL;
    }
    if (br->gone) {
        SL_ASSERT(br->b->stream->inflight > 0);
        br->b->stream->inflight--; /* (rs_brepl_detach's hold: the catalog may free it now) */
    }
    free(br);
}

void rs_brepl_detach(struct sl_brepl *br)
{
    SL_ASSERT(!br->gone && br->b->repl == br);
    br->gone = true;
    /* Writes, cuts, store syncs and reads still in flight call back into the replica and
     * its shard: the stream stays in the catalog's graveyard until the replica is freed. */
    br->b->stream->inflight++;
    if (br->r.role == SL_REPL_LEADER) {
        sl_repl_resign(&br->r); /* (its ACK effects answer the produces waiting) */
    }
    sl_repl_suspend(&br->r);
    rs_pump(br);
    rs_brepl_answer_all(br);
}

bool rs_brepl_quiet(const struct sl_brepl *br)
{
    return !rs_brepl_disk_busy(br) && !br->get_out && !br->meta_writing && !br->abdicating &&
           br->notes_out == 0 && !br->req_out && br->serves == 0 && br->serve_wait == NULL;
}

void rs_brepl_tick(struct sl_brepl *br)
{
    rs_serve_wake(br, true); /* (what waited a tick answers with what there is) */
    if (br->gone) {
        return; /* (no time passes for a deleted replica: it only drains) */
    }
    /* retention trims the log's head on its own schedule: the replica learns the new start
     * here (a leader answers fetches below it with it; sl_repl_set_log_start ignores a start
     * it cannot take yet) */
    struct sl_shard_stats ss;
    sl_wshard_progress(&br->b->ws, &ss);
    sl_repl_set_log_start(&br->r, (int64_t)ss.first_seq);
    sl_repl_tick(&br->r, br->rs->now_ms);
    rs_answers_expire(br);
    rs_pump(br);
}

struct sl_brepl *rs_find(const struct sl_replicas *rs, const char *stream, uint32_t shard)
{
    struct sl_stream *st = sl_catalog_find(rs->e->catalog, stream);
    if (st == NULL || shard >= st->shard_count) {
        return NULL;
    }
    return st->shards[shard]->repl;
}

int sl_replicas_route(const struct sl_replicas *rs, const char *stream, uint32_t shard,
                      struct sl_repl_meta *m)
{
    const struct sl_brepl *br = rs != NULL ? rs_find(rs, stream, shard) : NULL;
    if (br == NULL) {
        return SL_ENOTFOUND;
    }
    *m = br->state.m;
    return SL_OK;
}

uint32_t sl_replicas_lag(const struct sl_replicas *rs, const char *stream, uint32_t shard,
                         struct sl_replicas_lag *out)
{
    const struct sl_brepl *br = rs != NULL ? rs_find(rs, stream, shard) : NULL;
    if (br == NULL || br->r.role != SL_REPL_LEADER) {
        return 0;
    }
    const struct sl_repl *r = &br->r;
    uint32_t n = 0;
    for (uint32_t i = 0; i < r->n_peers && n < SL_REPL_REPLICAS_MAX; i++) {
        const struct sl_repl_peer *p = &r->peers[i];
        int64_t acked = p->ack >= 0 ? p->ack : 0;
        out[n++] = (struct sl_replicas_lag){
            .node = p->id,
            .behind = r->leo > acked ? (uint64_t)(r->leo - acked) : 0,
            .caught_up_ms_ago = rs->now_ms > p->caught_up_ms ? rs->now_ms - p->caught_up_ms : 0};
    }
    return n;
}

static int hook_readable(void *ctx, const struct sl_bshard *b, uint64_t *end)
{
    (void)ctx;
    const struct sl_brepl *br = b->repl;
    *end = (uint64_t)sl_repl_hw(&br->r);
    return br->r.role == SL_REPL_LEADER ? SL_OK : SL_ENOT_LEADER;
}

static int hook_replica(void *ctx, const struct sl_bshard *b, uint64_t *end, int32_t *leader_epoch)
{
    (void)ctx;
    const struct sl_brepl *br = b->repl;
    *end = 0;
    *leader_epoch = -1;
    if (br == NULL || br->r.meta.version < 0) {
        return SL_EAGAIN; /* a stream just made here: its state not read yet */
    }
    if (br->r.role != SL_REPL_LEADER && br->r.role != SL_REPL_FOLLOWER) {
        bool named = false;
        for (uint32_t i = 0; i < br->r.meta.n_replicas; i++) {
            named |= br->r.meta.replicas[i] == br->r.cfg.self;
        }
        /* named but idle (no leader now, failed, or an old epoch to wait out): not live */
        return named && br->r.role != SL_REPL_FATAL ? SL_EAGAIN : SL_ENOT_LEADER;
    }
    *end = (uint64_t)sl_repl_hw(&br->r);
    if (br->r.role == SL_REPL_LEADER) {
        *leader_epoch = br->r.epoch;
    }
    return SL_OK;
}

static int hook_forward(void *ctx, const struct sl_bshard *b, const uint8_t *batch, size_t len,
                        bool caller_routed, sl_engine_forwarded_fn cb, void *cb_ctx)
{
    struct sl_replicas *rs = ctx;
    const struct sl_brepl *br = rs_find(rs, b->stream->name, b->id);
    int32_t leader = br != NULL ? br->state.m.leader : SL_REPL_NONE;
    const char *addr = leader >= 0 && leader != rs->cfg.self ? rs_addr_of(rs, leader) : NULL;
    if (addr == NULL || rs->t.produce == NULL) {
        return SL_ENOT_LEADER;
    }
    return rs->t.produce(rs->t.ctx, leader, addr, b->stream->name, b->id, batch, len,
                         caller_routed, cb, cb_ctx);
}

static bool hook_creating(void *ctx, const char *name)
{
    return rs_creating(ctx, name);
}

static int hook_create(void *ctx, const char *name, uint32_t shard_count, uint32_t retention_hours,
                       uint64_t retention_bytes, const char *compression, uint32_t rf,
                       sl_engine_done_fn cb, void *cb_ctx, char *why, size_t why_len)
{
    struct sl_replicas_stream s = {.name = name,
                                   .shard_count = shard_count,
                                   .retention_hours = retention_hours,
                                   .retention_bytes = retention_bytes,
                                   .compression = compression,
                                   .replication_factor = rf};
    return sl_replicas_create_stream(ctx, &s, cb, cb_ctx, why, why_len);
}

static int hook_remove(void *ctx, const char *name, sl_engine_done_fn cb, void *cb_ctx, char *why,
                       size_t why_len)
{
    return sl_replicas_delete_stream(ctx, name, cb, cb_ctx, why, why_len);
}

int rs_hooks_install(struct sl_replicas *rs)
{
    rs->hooks = (struct sl_engine_repl){.ctx = rs,
                                        .append = hook_append,
                                        .written = hook_written,
                                        .readable = hook_readable,
                                        .replica = hook_replica,
                                        .creating = hook_creating,
                                        .forward = hook_forward,
                                        .create = hook_create,
                                        .remove = hook_remove};
    rs->e->repl = &rs->hooks;
    return SL_OK;
}
