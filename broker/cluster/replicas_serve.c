/* replicas_serve.c - a replica answering its followers (replicas_int.h): their requests
 * held one per follower, fetches answered with whole batches read from this broker's log -
 * what is written, not yet durable (an unsynced read: the followers' fdatasyncs overlap this
 * broker's own, and the high watermark still waits for its durable end) - and answers
 * waiting for the write they need, woken by the shard's written listener or the tick.
 *
 * Throttle. A reassignment copies whole logs to the replicas it adds; at full speed that
 * copy competes with producers for the leader's disk and network (Kafka's
 * leader.replication.throttled.rate). With reassign_throttle set, reads serving a replica
 * the shard's state names as added by a move draw on a bucket of that many bytes a second,
 * all shards together: a read is made only while the bucket holds some (it may go below
 * zero by one read, which later refills repay), else it waits in the shard's serve_wait
 * list until the tick refills it. In-sync followers and producers never wait on it.
 */
#include "broker/cluster/replicas_int.h"

#include "broker/engine/catalog.h"
#include "broker/engine/workers.h"
#include "common/assert.h"
#include "common/error.h"
#include "storage/batch.h"
#include "storage/shard.h"

#include <stdlib.h>
#include <string.h>

/* A read of whole batches serving a follower's fetch. */
struct serve {
    struct sl_brepl *br;
    struct sl_wshard_read wr;
    struct sl_repl_msg m; /* the FETCH_RESP as the replica made it */
    sl_replicas_answer_fn fn;
    void *ctx;
    uint8_t *buf;
    uint32_t cap;
    uint32_t tries;
    bool throttled;     /* serves a replica a move adds: draws on the throttle */
    struct serve *next; /* in br->serve_wait */
};

#define SERVE_BUF_MIN   (SL_REPL_FETCH_BYTES_MAX + 4096u)
/* A throttled read asks for what the bucket holds, but at least this (whole batches). */
#define SERVE_THROTTLE_READ_MIN (16u * 1024u)
#define SERVE_TRIES_MAX 3u
#define ANSWER_WAIT_MS  (SL_REPL_FETCH_WAIT_MS + SL_REPL_REQ_TIMEOUT_MS)

static struct pending_answer *answer_find(struct sl_brepl *br, int32_t to, uint64_t req_id)
{
    for (uint32_t i = 0; i < SL_REPL_REPLICAS_MAX; i++) {
        struct pending_answer *a = &br->ans[i];
        if (a->used && a->from == to && a->req_id == req_id) {
            return a;
        }
    }
    return NULL;
}

static void answer_now(struct pending_answer *a, const struct sl_repl_msg *m)
{
    sl_replicas_answer_fn fn = a->fn;
    void *ctx = a->ctx;
    a->used = false;
    fn(ctx, m);
}

static void serve_issue(struct serve *s);

static void serve_done(struct serve *s, uint32_t len)
{
    struct sl_brepl *br = s->br;
    struct sl_repl_batch batches[SL_REPL_FETCH_BATCHES_MAX];
    uint32_t n = 0, off = 0;
    int64_t next = s->m.offset;
    while (off < len && n < SL_REPL_FETCH_BATCHES_MAX && next < s->m.read_end) {
        struct sl_batch_header h;
        if (sl_batch_peek(s->buf + off, len - off, &h) != SL_OK || (int64_t)h.base_seq != next ||
            (n > 0 && off + h.length > SL_REPL_FETCH_BYTES_MAX)) {
            break;
        }
        batches[n++] = (struct sl_repl_batch){.base_offset = (int64_t)h.base_seq,
                                              .count = h.record_count,
                                              .epoch = (int32_t)h.leader_epoch,
                                              .data = s->buf + off,
                                              .len = h.length};
        next = (int64_t)(h.base_seq + h.record_count);
        off += h.length;
    }
    struct sl_repl_msg m = s->m;
    m.batches = batches;
    m.n_batches = n;
    sl_replicas_answer_fn fn = s->fn;
    void *ctx = s->ctx;
    br->rs->serve_bytes -= s->cap;
    br->rs->serves--;
    br->serves--;
    if (s->throttled) {
        br->rs->throttle_tokens -= (int64_t)off;
    }
    fn(ctx, &m);
    free(s->buf);
    free(s);
}

static void on_serve_read(struct sl_shard_read *rd, int err)
{
    struct serve *s = sl_container_of(rd, struct serve, wr.rd);
    if (err == SL_ETOOBIG && s->tries++ < SERVE_TRIES_MAX) {
        uint8_t *nb = realloc(s->buf, rd->need_bytes);
        if (nb != NULL) {
            s->br->rs->serve_bytes += rd->need_bytes - s->cap;
            s->buf = nb;
            s->cap = rd->need_bytes;
            serve_issue(s);
            return;
        }
    }
    if (err == SL_ETRIMMED) {
        /* retention removed what the follower asks for since the replica last heard of
         * the log's start: it hears now, and so does the follower (it starts its log there) */
        struct sl_brepl *br = s->br;
        sl_repl_set_log_start(&br->r, (int64_t)rd->first_seq);
        if (s->m.offset < br->r.log_start) {
            s->m.err = SL_ETRIMMED;
            s->m.log_start = br->r.log_start;
        }
    }
    /* A read that found nothing yet (the leader's own write of those batches is still on
     * its way to the log) answers with none: the follower asks again. */
    serve_done(s, err == SL_OK ? rd->len : 0);
}

static void serve_issue(struct serve *s)
{
    memset(&s->wr, 0, sizeof(s->wr));
    s->wr.rd.from = SL_READ_SEQ;
    s->wr.rd.seq = (uint64_t)s->m.offset;
    s->wr.rd.buf = s->buf;
    s->wr.rd.buf_cap = s->cap;
    s->wr.rd.max_bytes = SL_REPL_FETCH_BYTES_MAX;
    int64_t tokens = s->br->rs->throttle_tokens;
    if (s->throttled && s->br->rs->cfg.reassign_throttle > 0 &&
        tokens < (int64_t)SL_REPL_FETCH_BYTES_MAX) {
        s->wr.rd.max_bytes = tokens > (int64_t)SERVE_THROTTLE_READ_MIN
                                 ? (uint32_t)tokens
                                 : SERVE_THROTTLE_READ_MIN;
    }
    s->wr.rd.unsynced = true; /* (the high watermark waits for this broker's own fdatasync) */
    s->wr.rd.cb = on_serve_read;
    sl_wshard_read(&s->br->b->ws, &s->wr);
}

/* Whether `node` is a replica a move in progress adds to the shard (the state as read). */
static bool added_by_move(const struct sl_brepl *br, int32_t node)
{
    const struct sl_ctrl_state *st = &br->state;
    if (st->n_target == 0) {
        return false;
    }
    if (!st->adding_unknown) { /* the last n_adding of the replicas */
        SL_ASSERT(st->n_adding <= st->m.n_replicas);
        for (uint32_t i = st->m.n_replicas - st->n_adding; i < st->m.n_replicas; i++) {
            if (st->m.replicas[i] == node) {
                return true;
            }
        }
        return false;
    }
    for (uint32_t j = 0; j < st->m.n_isr; j++) { /* (a state from before `adding`: the */
        if (st->m.isr[j] == node) {                /* replicas out of sync) */
            return false;
        }
    }
    return true;
}

static bool throttle_holds(const struct serve *s)
{
    const struct sl_replicas *rs = s->br->rs;
    return s->throttled && rs->cfg.reassign_throttle > 0 && rs->throttle_tokens <= 0 &&
           !rs->stopping;
}

void rs_throttle_refill(struct sl_replicas *rs, uint64_t now_ms)
{
    uint64_t rate = rs->cfg.reassign_throttle;
    if (rate == 0 || now_ms <= rs->throttle_ms) {
        rs->throttle_ms = now_ms > rs->throttle_ms ? now_ms : rs->throttle_ms;
        return;
    }
    /* a second's worth at most, so an idle spell does not become a burst past the rate */
    uint64_t dt = now_ms - rs->throttle_ms;
    uint64_t cap = rate > SERVE_THROTTLE_READ_MIN ? rate : SERVE_THROTTLE_READ_MIN;
    uint64_t add = dt >= 1000 ? cap : rate * dt / 1000;
    int64_t t = rs->throttle_tokens + (int64_t)(add < cap ? add : cap);
    rs->throttle_tokens = t > (int64_t)cap ? (int64_t)cap : t;
    rs->throttle_ms = now_ms;
}

/* A FETCH_RESP or EPOCH_RESP the replica sends to a follower: answers its request. */
void rs_fx_answer(struct sl_brepl *br, const struct sl_repl_msg *m)
{
    struct pending_answer *a = answer_find(br, m->to, m->req_id);
    if (a == NULL) {
        return; /* the request was answered already (it timed out here) */
    }
    if (m->type != SL_REPL_MSG_FETCH_RESP || m->err != SL_OK || m->read_end <= m->offset ||
        br->rs->serve_bytes + SERVE_BUF_MIN > SL_REPLICAS_SERVE_BYTES_MAX) {
        answer_now(a, m); /* no batches (under memory pressure: the follower asks again) */
        return;
    }
    struct serve *s = calloc(1, sizeof(*s));
    uint8_t *buf = malloc(SERVE_BUF_MIN);
    if (s == NULL || buf == NULL) {
        free(s);
        free(buf);
        answer_now(a, m);
        return;
    }
    *s = (struct serve){.br = br,
                        .m = *m,
                        .fn = a->fn,
                        .ctx = a->ctx,
                        .buf = buf,
                        .cap = SERVE_BUF_MIN,
                        .throttled = br->rs->cfg.reassign_throttle > 0 &&
                                     added_by_move(br, m->to)};
    s->m.batches = NULL;
    s->m.n_batches = 0;
    a->used = false;
    br->rs->serve_bytes += s->cap;
    br->rs->serves++;
    br->serves++;
    /* The replica answers as soon as its log grows, before this broker's own write of the
     * new batches completed: a read now would find nothing and the follower would ask
     * again at once. The answer waits for the write (serve_wake from the shard's written
     * listener), or the tick. Written, not durable: a follower's fdatasync then runs
     * alongside this broker's own, and the high watermark still counts this broker's
     * durable end (a crash losing what was served is settled by the epochs: REPLICATION.md,
     * "The epoch cache and its file"). */
    if (br->written_seq <= (uint64_t)s->m.offset || throttle_holds(s)) {
        s->next = br->serve_wait;
        br->serve_wait = s;
        return;
    }
    serve_issue(s);
}

/* Issues the waiting reads that have something to read now (all of them with `all`). */
void rs_serve_wake(struct sl_brepl *br, bool all)
{
    if (br->serve_wait == NULL) {
        return;
    }
    struct serve **pp = &br->serve_wait;
    while (*pp != NULL) {
        struct serve *s = *pp;
        if ((all || br->written_seq > (uint64_t)s->m.offset) && !throttle_holds(s)) {
            *pp = s->next;
            s->next = NULL;
            serve_issue(s);
        } else {
            pp = &s->next;
        }
    }
}

uint32_t rs_serve_throttled(const struct sl_brepl *br)
{
    uint32_t n = 0;
    for (const struct serve *s = br->serve_wait; s != NULL; s = s->next) {
        n += throttle_holds(s);
    }
    return n;
}

/* The shard's written listener (sl_wshard_on_written), on the main loop. */
void rs_on_shard_written(void *ctx, uint64_t written_seq)
{
    struct sl_bshard *b = ctx;
    if (b->repl != NULL) {
        b->repl->written_seq = written_seq;
        rs_serve_wake(b->repl, false);
    }
}

void rs_brepl_answer_all(struct sl_brepl *br)
{
    rs_serve_wake(br, true); /* (reads: the stop waits for them, sl_replicas_busy) */
    /* (NOT_LEADER: this broker leads nothing any more - a follower re-reads the state and
     * asks the next leader; ECLOSED is no answer a follower takes) */
    struct sl_repl_msg gone = {.err = SL_ENOT_LEADER,
                               .epoch = SL_REPL_NONE,
                               .from = br->rs->cfg.self,
                               .leader_epoch = br->r.epoch};
    for (uint32_t i = 0; i < SL_REPL_REPLICAS_MAX; i++) {
        if (br->ans[i].used) {
            gone.type = SL_REPL_MSG_FETCH_RESP;
            gone.to = br->ans[i].from;
            gone.req_id = br->ans[i].req_id;
            answer_now(&br->ans[i], &gone);
        }
    }
}


/* Requests the replica never answered (dropped as stale) must not hold a connection. */
void rs_answers_expire(struct sl_brepl *br)
{
    struct sl_repl_msg late = {
        .err = SL_ENOT_LEADER, .leader_epoch = br->r.epoch, .epoch = SL_REPL_NONE};
    for (uint32_t i = 0; i < SL_REPL_REPLICAS_MAX; i++) {
        struct pending_answer *a = &br->ans[i];
        if (a->used && br->rs->now_ms - a->since_ms > ANSWER_WAIT_MS) {
            late.type = SL_REPL_MSG_FETCH_RESP;
            late.to = a->from;
            late.req_id = a->req_id;
            answer_now(a, &late);
        }
    }
}

void sl_replicas_serve(struct sl_replicas *rs, const char *stream, uint32_t shard,
                       const struct sl_repl_msg *m, sl_replicas_answer_fn fn, void *ctx)
{
    struct sl_brepl *br = rs != NULL && !rs->stopping ? rs_find(rs, stream, shard) : NULL;
    struct sl_repl_msg refuse = {.type = m->type == SL_REPL_MSG_FETCH ? SL_REPL_MSG_FETCH_RESP
                                                                      : SL_REPL_MSG_EPOCH_RESP,
                                 .from = rs != NULL ? rs->cfg.self : SL_REPL_NONE,
                                 .to = m->from,
                                 .req_id = m->req_id,
                                 .offset = m->offset,
                                 .epoch = SL_REPL_NONE,
                                 .err = rs != NULL && rs->stopping ? SL_ENOT_LEADER : SL_ENOTFOUND};
    if (br == NULL) {
        /* no replica here yet (a new stream this broker has not created): the follower's
         * epoch echoed, so it takes the refusal as its leader's and asks again soon */
        refuse.leader_epoch = m->leader_epoch;
        fn(ctx, &refuse);
        return;
    }
    refuse.leader_epoch = br->r.epoch;
    /* One request per follower at a time: a newer one replaces what it still waits on (that
     * one is answered as not led here, and its sender has given up on it anyway). */
    struct pending_answer *slot = NULL;
    for (uint32_t i = 0; i < SL_REPL_REPLICAS_MAX; i++) {
        struct pending_answer *a = &br->ans[i];
        if (a->used && a->from == m->from) {
            refuse.err = SL_ENOT_LEADER;
            refuse.req_id = a->req_id;
            answer_now(a, &refuse);
            refuse.req_id = m->req_id;
        }
        if (!a->used && slot == NULL) {
            slot = a;
        }
    }
    if (slot == NULL) {
        refuse.err = SL_ENOTFOUND;
        fn(ctx, &refuse);
        return;
    }
    *slot = (struct pending_answer){.used = true,
                                    .from = m->from,
                                    .req_id = m->req_id,
                                    .since_ms = rs->now_ms,
                                    .fn = fn,
                                    .ctx = ctx};
    sl_repl_on_msg(&br->r, m);
    rs_pump(br);
}
