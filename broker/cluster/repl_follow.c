/* repl_follow.c - the replica state machine as a follower (repl_int.h; the invariants are
 * repl.c's): one request at a time to its leader, a FETCH only with its disk FIFO empty (so
 * its offset is its durable end, its ack), the batches fetched written in order; on a new
 * leader it first asks where its last epoch ended there (KIP-101, several rounds: KIP-279)
 * and cuts its log back to it; a log that ends below the leader's first retained offset is
 * emptied and started there (a reset).
 */
#include "broker/cluster/repl_int.h"

#include "common/assert.h"
#include "common/error.h"

#include <string.h>

void repl_follower_request(struct sl_repl *r)
{
    if (r->role != SL_REPL_FOLLOWER || r->req_out || r->disk_n > 0) {
        return;
    }
    if (r->truncating && r->leo == r->log_start) {
        r->truncating = false; /* an empty log cannot diverge */
    }
    struct sl_repl_msg m = {.to = r->meta.leader,
                            .leader_epoch = r->epoch,
                            .req_id = ++r->req_id,
                            .epoch = repl_last_log_epoch(r)};
    if (r->truncating) {
        m.type = SL_REPL_MSG_EPOCH_REQ;
        r->req_epoch = m.epoch;
    } else {
        SL_ASSERT(r->durable_end == r->leo);
        m.type = SL_REPL_MSG_FETCH;
        m.offset = r->leo;
    }
    r->req_out = true;
    r->req_resend_ms = r->now_ms + SL_REPL_REQ_TIMEOUT_MS;
    repl_send(r, &m);
}

void repl_become_follower(struct sl_repl *r)
{
    r->role = SL_REPL_FOLLOWER;
    repl_epochs_truncate(r, r->leo); /* our own empty epoch as leader, if any: nothing of it here */
    r->truncating = true;       /* KIP-101: ask where our last epoch ended before fetching */
    r->req_out = false;
    r->ready = false;
    r->leader_hw = 0;
    repl_follower_request(r);
}

static void truncate_to(struct sl_repl *r, int64_t end)
{
    SL_ASSERT(end >= 0 && end <= r->leo);
    SL_ASSERT(r->disk_n == 0); /* a follower truncates only with its disk FIFO drained */
    if (end == r->leo) {
        return;
    }
    /* Entries below HW are committed: the leader has them, so a clean truncation point is
     * never below our HW. Lowering HW here would mean the store elected an unclean leader. */
    if (end < r->hw) {
        r->hw = end;
    }
    r->leo = end;
    if (r->durable_end > end) {
        r->durable_end = end;
    }
    repl_epochs_truncate(r, end);
    struct sl_repl_effect *e = repl_fx_push(r, SL_REPL_FX_TRUNCATE);
    e->offset = end;
    repl_disk_push(r, DISK_TRUNCATE, end);
    repl_fx_push(r, SL_REPL_FX_SAVE_EPOCHS);
    repl_disk_push(r, DISK_SAVE, r->last_led_epoch);
}

/* The leader's first retained offset is past our log's end: nothing we hold can be
 * continued, so the log is emptied and starts there (Kafka's truncateFullyAndStartAt). The
 * epoch cache empties with it (no entry below x: the first batch fetched adds its epoch at
 * x); HW stays (it is <= our old end < x: nothing at x is known committed yet). */
static void reset_to(struct sl_repl *r, int64_t x)
{
    SL_ASSERT(r->role == SL_REPL_FOLLOWER && x >= r->leo && x > r->log_start);
    /* as a truncate: with the disk FIFO drained, or right after one cutting to x */
    SL_ASSERT(r->disk_n == 0 || r->leo == x);
    r->leo = x;
    r->log_start = x;
    r->n_epochs = 0;
    r->truncating = false;
    struct sl_repl_effect *e = repl_fx_push(r, SL_REPL_FX_RESET);
    e->offset = x;
    repl_disk_push(r, DISK_RESET, x);
    repl_fx_push(r, SL_REPL_FX_SAVE_EPOCHS);
    repl_disk_push(r, DISK_SAVE, r->last_led_epoch);
    SL_ASSERT(r->hw <= r->durable_end && r->durable_end <= x);
}

/* The leader's log has `epoch` ending at `end` (epoch SL_REPL_NONE: it has nothing as old
 * as we asked). Cut to the end of the largest epoch we share; if our last epoch is then
 * still not the one the leader named, ask again with it (KIP-279: several rounds). */
static void on_divergence(struct sl_repl *r, int32_t epoch, int64_t end, int64_t leader_start)
{
    if (epoch == SL_REPL_NONE && end > 0 && end <= leader_start && r->log_start < end) {
        /* The leader knows no epoch as old as ours and its log starts at `end` (retention, or
         * a reset): nothing of ours below it can be compared - it is below the leader's
         * retention - and what we hold from it on is of epochs older than any the leader
         * has, so divergent. Start afresh at `end` (cutting to it first, in order). */
        if (r->leo > end) {
            truncate_to(r, end);
        }
        reset_to(r, end);
        return;
    }
    int32_t mine;
    int64_t my_end = epoch == SL_REPL_NONE ? 0 : sl_repl_epoch_end(r, epoch, &mine);
    int64_t cut = end < my_end ? end : my_end;
    if (MUTATION(1)) {
        cut = r->hw; /* the pre-KIP-101 rule: truncate to our own high watermark */
    }
    if (cut > r->leo) {
        cut = r->leo;
    }
    if (cut < r->log_start) {
        cut = r->log_start; /* nothing below it to cut; the log then is empty */
    }
    truncate_to(r, cut);
    int32_t last = repl_last_log_epoch(r);
    r->truncating = !(MUTATION(1) || last == SL_REPL_NONE || last == epoch);
}

void repl_on_epoch_resp(struct sl_repl *r, const struct sl_repl_msg *m)
{
    if (!r->truncating || m->err != SL_OK || m->epoch > r->req_epoch || m->end_offset < 0) {
        r->rejected_msgs++;
        return;
    }
    on_divergence(r, m->epoch, m->end_offset, m->log_start);
    repl_follower_request(r);
}

static bool batches_valid(const struct sl_repl *r, const struct sl_repl_msg *m)
{
    int64_t next = m->offset;
    int32_t epoch = repl_last_log_epoch(r);
    if (m->n_batches > SL_REPL_FETCH_BATCHES_MAX || m->offset != r->leo) {
        return false;
    }
    for (uint32_t i = 0; i < m->n_batches; i++) {
        const struct sl_repl_batch *b = &m->batches[i];
        if (b->base_offset != next || b->count == 0 || b->epoch < epoch || b->epoch > r->epoch ||
            b->epoch < 0) {
            return false;
        }
        next += b->count;
        epoch = b->epoch;
    }
    return true;
}

void repl_on_fetch_resp(struct sl_repl *r, const struct sl_repl_msg *m)
{
    if (r->truncating) {
        r->rejected_msgs++;
        return;
    }
    if (m->err == SL_ECONFLICT) {
        int64_t leo = r->leo;
        on_divergence(r, m->epoch, m->end_offset, m->log_start);
        if (r->leo == leo && r->disk_n == 0 && (!r->truncating || r->leo == r->log_start)) {
            /* nothing to cut (our log is empty and starts past this leader's end: a reset
             * to the start of a previous leader's log, which this one has not reached):
             * ask again soon, once its log may have grown - not at once, in a loop */
            r->req_out = true;
            r->req_resend_ms = r->now_ms + SL_REPL_REFUSED_RETRY_MS;
            return;
        }
        repl_follower_request(r);
        return;
    }
    if (m->err == SL_ETRIMMED) {
        if (m->offset != r->leo || m->log_start <= r->leo || MUTATION(4)) {
            r->rejected_msgs++; /* (not about our end: the caller asks again) */
            return;
        }
        reset_to(r, m->log_start);
        return; /* the next fetch goes once the reset is durable (sl_repl_disk_done) */
    }
    if (m->err != SL_OK || !batches_valid(r, m)) {
        r->rejected_msgs++;
        return;
    }
    if (m->hw > r->leader_hw) {
        r->leader_hw = m->hw;
    }
    if (m->n_batches > 0) {
        int64_t end = r->leo;
        for (uint32_t i = 0; i < m->n_batches; i++) {
            const struct sl_repl_batch *b = &m->batches[i];
            int32_t last = r->n_epochs > 0 ? r->epochs[r->n_epochs - 1].epoch : SL_REPL_NONE;
            if (b->epoch > last) {
                repl_epochs_add(r, b->epoch, b->base_offset);
            }
            end = b->base_offset + b->count;
        }
        struct sl_repl_effect *e = repl_fx_push(r, SL_REPL_FX_WRITE);
        e->offset = r->leo;
        e->batches = m->batches;
        e->n_batches = m->n_batches;
        r->leo = end;
        repl_disk_push(r, DISK_WRITE, end);
    }
    int64_t hw = r->leader_hw < r->durable_end ? r->leader_hw : r->durable_end;
    if (hw > r->hw) {
        r->hw = hw;
    }
    repl_follower_request(r);
}
