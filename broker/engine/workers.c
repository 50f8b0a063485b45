/* workers.c - threads that own shards (see workers.h for the model).
 *
 * Message rings: a power-of-two array of messages with a head (consumer) and
 * a tail (producer) index, each on its own cache line; the producer fills a
 * slot and publishes it with a release store of the tail, the consumer reads
 * the tail with an acquire load. When the ring is full the producer keeps
 * the messages in a local overflow array, in order, and moves them in at its
 * next flush: a sender never blocks and never drops.
 *
 * Wake-ups: each side has an eventfd with a read armed on its own ring. A
 * sender writes the receiver's eventfd after a tick that posted something
 * (the main loop from a deferred end-of-tick step, a worker once per loop
 * turn). The receiver drains its ring completely after each wake-up and
 * re-arms the read, so a message posted at any moment is seen: either the
 * drain finds it or the counter is non-zero and the next read completes.
 */
#include "broker/engine/workers.h"

#include "broker/engine/seqgate.h"
#include "storage/batch.h"

#include "common/assert.h"
#include "common/chan.h"
#include "common/checksum.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"
#include "common/ring.h"
#include "common/thread.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define CHAN_SLOTS 4096u
#define STATS_EVERY_NS (100u * 1000000u)
/* Stats are published for the shards a message was posted about lately
 * (until STATS_QUIET_ROUNDS rounds found nothing new), and for a sweep of
 * STATS_SWEEP of the others a round: a round costs what the active shards
 * cost, not what the owner holds (50,000 idle shards walked every 100 ms
 * took 15% of a core), and a change that came without a message (an
 * INTERVAL fsync's counters) is published within shards / STATS_SWEEP rounds. */
#define STATS_QUIET_ROUNDS 10u
#define STATS_SWEEP        1024u

enum msg_type {
    /* main loop -> owner */
    M_APPEND = 1,
    M_READ,
    M_CALL,
    M_RETENTION,
    M_TRUNCATE,
    M_WATCH, /* a long-poll parked at seq on the main loop: read ahead for it */
    M_WRITTEN_ON, /* tell the main loop of unsynced writes (sl_wshard_on_written) */
    /* owner -> main loop */
    M_APPENDED,
    M_READ_DONE,
    M_NOTIFY,
    M_STATS,
    M_CALLED, /* an ordered call finished */
    M_TRUNCATED,
    M_WRITTEN, /* batches not yet durable were written: seq is the shard's written end */
};

struct msg {
    uint32_t type;
    int32_t err;
    uint32_t flags; /* M_APPEND; M_TRUNCATE: M_TRUNC_RESET for a reset */
    uint32_t epoch; /* M_APPEND: the leader epoch to stamp */
    uint32_t count; /* M_APPENDED */
    struct sl_wshard *b;
    const void *data; /* M_APPEND: the batch */
    size_t len;
    sl_append_cb cb;  /* M_APPEND, M_APPENDED */
    void *ctx;        /* M_APPEND/M_APPENDED: cb's; M_READ/M_READ_DONE: the read */
    uint64_t seq;     /* M_APPENDED: base seq; M_TRUNCATE/M_TRUNCATED: the end */
    struct call *call; /* M_CALL */
    struct sl_shard_stats stats; /* owner -> main loop */
    struct sl_shard_io_times io; /* M_APPENDED: sl_wshard_append_io */
    uint64_t next_seq;           /* M_NOTIFY with data: after its last batch */
};

#define M_TRUNC_RESET 1u /* M_TRUNCATE: sl_shard_reset to seq, not sl_shard_truncate */

struct call {
    void (*fn)(void *arg);
    void *arg;
    bool ordered; /* answer with M_CALLED on the out ring, not the condvar */
    bool done;    /* under the worker's mutex unless ordered */
};

/* An append the owner is running: what to tell the main loop when done,
 * and the producer's batch it is (for the order gate). */
struct pend {
    struct sl_wshard *b;
    sl_append_cb cb;
    void *ctx;
    uint64_t pid;
    uint64_t pseq;
    bool gated; /* passed the order gate (a replica's append does not) */
    struct pend *next; /* in the free list */
};

/* Main loop only, while a remote shard's callback runs: the read-ahead its notice carries
 * (sl_wshard_ahead) and the owner's I/O times of the append being answered
 * (sl_wshard_append_io). Kept here, not per shard, so an idle shard stays small. */
struct main_ahead {
    const struct sl_wshard *b;
    struct sl_wshard_ahead ahead;
};
struct main_io {
    const struct sl_wshard *b;
    struct sl_shard_io_times io;
};
static struct main_ahead main_ahead;
static struct main_io main_append_io;
/* Appends the main loop owns: their pends, on the main thread only. */
static struct pend *main_free_pend;

/* Stages the batch on its owner's thread behind the order gate (see
 * sl_wshard_append); p carries cb/ctx and gets the producer. */
static int gated_append(struct sl_wshard *b, const void *data, size_t len, unsigned flags,
                        uint32_t epoch, sl_append_cb on_done, struct pend *p)
{
    /* (the front-end checked the header before the batch came here) */
    SL_ASSERT(len >= SL_BATCH_HEADER_BYTES);
    sl_batch_producer_of(data, &p->pid, &p->pseq);
    uint64_t now = sl_clock_mono_ms();
    /* A replica's appends pass no gate: its sequences are given by the replica before the
     * append (a refusal here would leave a hole in them), and its leader ordered them. */
    bool gated = (flags & SL_WSHARD_REPLICA) == 0;
    p->gated = gated;
    if (gated && sl_seqgate_admit(&b->ow_gate, p->pid, p->pseq, now) != SL_OK) {
        return SL_ECONFLICT;
    }
    struct sl_append_opts o = {.flags = flags & ~SL_WSHARD_REPLICA, .leader_epoch = epoch};
    int rc = sl_shard_append_opt(b->log, data, len, &o, on_done, p);
    if (gated && rc != SL_OK && rc != SL_EAGAIN) {
        sl_seqgate_failed(&b->ow_gate, p->pid, p->pseq, rc, now);
    }
    return rc;
}

/* An append waiting for staging space on its shard (owner side). */
struct wshard_wait {
    struct msg m;
    struct wshard_wait *next;
};

struct worker {
    struct sl_workers *ws;
    uint32_t idx;
    pthread_t thread;
    bool started;
    struct sl_ring ring;
    int efd;                 /* wakes this worker */
    struct sl_io_op efd_op;
    uint64_t efd_val;
    struct sl_chan in;       /* main loop -> worker */
    struct sl_chan out;      /* worker -> main loop */
    pthread_mutex_t mu;      /* sync calls only */
    pthread_cond_t cv;
    _Atomic bool stop;
    /* owner side only */
    struct pend *free_pend;
    struct sl_wshard *owned;   /* shards this worker owns (b->ow_next) */
    struct sl_wshard *active;  /* of them, posted about lately (b->ow_act_next) */
    struct sl_wshard *sweep;   /* the next owned shard the stats sweep looks at */
    struct sl_wshard *waiting; /* of them, with appends waiting (b->ow_wait_next) */
    uint64_t next_stats_ns;
};

struct sl_workers {
    uint32_t n;
    struct sl_ring *home;
    int home_efd; /* wakes the main loop */
    struct sl_io_op home_op;
    uint64_t home_val;
    struct sl_deferred signal; /* end of the main loop's tick: wake workers */
    struct worker *w; /* w[1..n-1]; w[0] unused */
};

/* ---- owner side (worker threads) ------------------------------------------ */

/* Every message carries the shard's stats: the progress fields taken now,
 * the rest (bytes, segments, counters) as last published. */
static void active_link(struct worker *w, struct sl_wshard *b)
{
    b->ow_quiet = 0;
    if (b->ow_active) {
        return;
    }
    b->ow_active = true;
    b->ow_act_prev = NULL;
    b->ow_act_next = w->active;
    if (w->active != NULL) {
        w->active->ow_act_prev = b;
    }
    w->active = b;
}

static void active_unlink(struct worker *w, struct sl_wshard *b)
{
    if (!b->ow_active) {
        return;
    }
    if (b->ow_act_prev != NULL) {
        b->ow_act_prev->ow_act_next = b->ow_act_next;
    } else {
        w->active = b->ow_act_next;
    }
    if (b->ow_act_next != NULL) {
        b->ow_act_next->ow_act_prev = b->ow_act_prev;
    }
    b->ow_act_next = b->ow_act_prev = NULL;
    b->ow_active = false;
}

static void owner_post(struct worker *w, struct msg *m)
{
    struct sl_wshard *b = m->b;
    active_link(w, b);
    sl_shard_stats_progress(b->log, &b->ow_published);
    m->stats = b->ow_published;
    sl_chan_put(&w->out, m);
}

static struct worker *owner_of(struct sl_wshard *b)
{
    return &b->workers->w[b->owner];
}

static void on_owner_appended(void *ctx, int err, uint64_t base_seq, uint32_t count)
{
    struct pend *p = ctx;
    struct sl_wshard *b = p->b;
    struct worker *w = owner_of(b);
    if (err != SL_OK && p->gated) {
        sl_seqgate_failed(&b->ow_gate, p->pid, p->pseq, err, sl_clock_mono_ms());
    }
    struct msg m = {.type = M_APPENDED, .err = err, .count = count, .b = b, .cb = p->cb,
                    .ctx = p->ctx, .seq = base_seq};
    sl_shard_io_times(b->log, &m.io);
    owner_post(w, &m);
    p->next = w->free_pend;
    w->free_pend = p;
}

/* Tries one append; false = no staging space (SL_EAGAIN): wait. */
static bool owner_try_append(struct worker *w, const struct msg *m)
{
    struct pend *p = w->free_pend;
    if (p != NULL) {
        w->free_pend = p->next;
    } else {
        p = malloc(sizeof(*p));
        SL_ASSERT(p != NULL);
    }
    *p = (struct pend){.b = m->b, .cb = m->cb, .ctx = m->ctx};
    int rc = gated_append(m->b, m->data, m->len, m->flags, m->epoch, on_owner_appended, p);
    if (rc == SL_OK) {
        return true;
    }
    p->next = w->free_pend;
    w->free_pend = p;
    if (rc == SL_EAGAIN) {
        return false;
    }
    struct msg r = {.type = M_APPENDED, .err = rc, .b = m->b, .cb = m->cb, .ctx = m->ctx};
    owner_post(w, &r);
    return true;
}

static void owner_wait(struct worker *w, const struct msg *m)
{
    struct sl_wshard *b = m->b;
    struct wshard_wait *n = malloc(sizeof(*n));
    SL_ASSERT(n != NULL);
    n->m = *m;
    n->next = NULL;
    if (b->ow_wait_tail != NULL) {
        b->ow_wait_tail->next = n;
    } else {
        b->ow_wait_head = n;
        b->ow_wait_next = w->waiting;
        w->waiting = b;
    }
    b->ow_wait_tail = n;
}

/* Retries the waiting appends, in order, on every shard that has some. */
static void owner_retry(struct worker *w)
{
    struct sl_wshard **pp = &w->waiting;
    while (*pp != NULL) {
        struct sl_wshard *b = *pp;
        while (b->ow_wait_head != NULL && owner_try_append(w, &b->ow_wait_head->m)) {
            struct wshard_wait *n = b->ow_wait_head;
            b->ow_wait_head = n->next;
            free(n);
        }
        if (b->ow_wait_head == NULL) {
            b->ow_wait_tail = NULL;
            *pp = b->ow_wait_next;
            b->ow_wait_next = NULL;
        } else {
            pp = &b->ow_wait_next;
        }
    }
}

static void on_owner_read(struct sl_shard_read *rd, int err)
{
    struct sl_wshard_read *wr = sl_container_of(rd, struct sl_wshard_read, rd);
    rd->cb = wr->cb_;
    rd->ctx = wr->ctx_;
    struct msg m = {.type = M_READ_DONE, .err = err, .b = wr->b_, .ctx = wr};
    owner_post(owner_of(wr->b_), &m);
}

/* The owner's read ahead for a watched shard (sl_wshard_watch): the batches from the
 * watched sequence, read when records become visible, carried by the M_NOTIFY. */
struct readahead {
    struct sl_shard_read rd;
    bool in_call; /* inside sl_shard_read: a completion now is carried by the notice */
    bool done;
    int err;
    uint8_t buf[];
};

static void on_readahead(struct sl_shard_read *rd, int err)
{
    struct readahead *ra = sl_container_of(rd, struct readahead, rd);
    if (!ra->in_call) {
        free(ra); /* completed later (not from memory): the fetches read as before */
        return;
    }
    ra->done = true;
    ra->err = err;
}

static void on_owner_listener(void *ctx, struct sl_shard *s)
{
    (void)s;
    struct sl_wshard *b = ctx;
    struct msg m = {.type = M_NOTIFY, .b = b};
    if (b->ow_watch) {
        /* A long-poll waits on the main loop at ow_watch_seq: read for it here and now
         * (the page cache serves it inline), so its answer needs no read round trip. */
        b->ow_watch = false;
        struct readahead *ra = malloc(sizeof(*ra) + SL_WSHARD_READAHEAD_BYTES);
        if (ra != NULL) {
            *ra = (struct readahead){.rd = {.from = SL_READ_SEQ, .seq = b->ow_watch_seq,
                                            .buf = ra->buf,
                                            .buf_cap = SL_WSHARD_READAHEAD_BYTES,
                                            .max_bytes = SL_WSHARD_READAHEAD_BYTES,
                                            .cb = on_readahead, .inline_ok = true},
                                     .in_call = true};
            sl_shard_read(b->log, &ra->rd);
            if (!ra->done) {
                ra->in_call = false; /* on_readahead frees it */
            } else if (ra->err != SL_OK || ra->rd.len == 0) {
                free(ra);
            } else {
                m.ctx = ra;
                m.data = ra->buf;
                m.len = ra->rd.len;
                m.seq = b->ow_watch_seq;
                m.count = ra->rd.batch_count;
                m.next_seq = ra->rd.next_seq;
            }
        }
    }
    owner_post(owner_of(b), &m);
}

/* sl_wshard_on_written's fn (main loop only; one for the process). */
static sl_wshard_written_fn main_written_fn;

static void on_owner_written(void *ctx, struct sl_shard *s)
{
    struct sl_wshard *b = ctx;
    struct msg m = {.type = M_WRITTEN, .b = b, .seq = sl_shard_written_seq(s)};
    owner_post(owner_of(b), &m);
}

/* A shard the main loop owns: its written listener. */
static void main_written(void *ctx, struct sl_shard *s)
{
    struct sl_wshard *b = ctx;
    main_written_fn(b->listener_ctx, sl_shard_written_seq(s));
}

/* A truncate in transit: what to tell the main loop. Rare (a replica rejoining). */
struct wtrunc {
    struct sl_wshard *b;
    sl_truncate_cb cb;
    void *ctx;
};

static void on_owner_truncated(void *ctx, int err, uint64_t end_seq)
{
    struct wtrunc *t = ctx;
    struct msg m = {.type = M_TRUNCATED, .err = err, .b = t->b, .seq = end_seq, .ctx = t};
    owner_post(owner_of(t->b), &m);
}

static void on_main_truncated(void *ctx, int err, uint64_t end_seq)
{
    struct wtrunc *t = ctx;
    sl_truncate_cb cb = t->cb;
    void *cctx = t->ctx;
    free(t);
    cb(cctx, err, end_seq);
}

static void owner_handle(struct worker *w, struct msg *m)
{
    switch (m->type) {
    case M_APPEND:
        if (m->b->ow_wait_head != NULL || !owner_try_append(w, m)) {
            owner_wait(w, m);
        }
        break;
    case M_READ: {
        struct sl_wshard_read *wr = m->ctx;
        wr->cb_ = wr->rd.cb;
        wr->ctx_ = wr->rd.ctx;
        wr->b_ = m->b;
        wr->rd.cb = on_owner_read;
        wr->rd.ctx = NULL;
        sl_shard_read(m->b->log, &wr->rd);
        break;
    }
    case M_TRUNCATE: {
        int rc = (m->flags & M_TRUNC_RESET) != 0
                     ? sl_shard_reset(m->b->log, m->seq, on_owner_truncated, m->ctx)
                     : sl_shard_truncate(m->b->log, m->seq, on_owner_truncated, m->ctx);
        if (rc != SL_OK) {
            on_owner_truncated(m->ctx, rc, m->seq);
        }
        break;
    }
    case M_WATCH:
        /* (records that came meanwhile were notified: the main loop reads for them) */
        struct sl_shard_stats st = {0};
        sl_shard_stats_progress(m->b->log, &st);
        if (st.visible_seq <= m->seq) {
            m->b->ow_watch = true;
            m->b->ow_watch_seq = m->seq;
        }
        break;
    case M_WRITTEN_ON:
        sl_shard_set_written_listener(m->b->log, on_owner_written, m->b);
        break;
    case M_RETENTION: {
        sl_shard_set_retention_floor(m->b->log, m->seq);
        sl_shard_retention_run(m->b->log);
        sl_shard_stats(m->b->log, &m->b->ow_published);
        struct msg r = {.type = M_STATS, .b = m->b};
        owner_post(w, &r);
        break;
    }
    case M_CALL:
        m->call->fn(m->call->arg);
        if (m->call->ordered) {
            struct msg r = {.type = M_CALLED, .call = m->call};
            sl_chan_put(&w->out, &r);
            break;
        }
        pthread_mutex_lock(&w->mu);
        m->call->done = true;
        pthread_cond_broadcast(&w->cv);
        pthread_mutex_unlock(&w->mu);
        break;
    default:
        SL_ASSERT(!"unexpected message on a worker");
    }
}

/* Publishes the stats of one shard if they changed; true if they did. */
static bool publish_one(struct worker *w, struct sl_wshard *b)
{
    struct sl_shard_stats st;
    sl_shard_stats(b->log, &st);
    if (memcmp(&st, &b->ow_published, sizeof(st)) == 0) {
        return false;
    }
    b->ow_published = st;
    struct msg m = {.type = M_STATS, .b = b};
    owner_post(w, &m);
    return true;
}

/* Tells the main loop the stats of shards that changed without a message
 * (fsync counters, retention, roll), at most every STATS_EVERY_NS. */
static void owner_publish_stats(struct worker *w)
{
    uint64_t now = sl_clock_mono_ns();
    if (now < w->next_stats_ns) {
        return;
    }
    w->next_stats_ns = now + STATS_EVERY_NS;
    for (struct sl_wshard *b = w->active, *next; b != NULL; b = next) {
        next = b->ow_act_next;
        if (!publish_one(w, b) && ++b->ow_quiet >= STATS_QUIET_ROUNDS) {
            active_unlink(w, b);
        }
    }
    for (uint32_t i = 0; i < STATS_SWEEP && w->owned != NULL; i++) {
        struct sl_wshard *b = w->sweep != NULL ? w->sweep : w->owned;
        w->sweep = b->ow_next;
        if (!b->ow_active) {
            (void)publish_one(w, b);
        }
        if (w->sweep == NULL) {
            break; /* a full sweep at most per round */
        }
    }
}

static void on_worker_wake(struct sl_io_op *op, int res)
{
    (void)res;
    struct worker *w = sl_container_of(op, struct worker, efd_op);
    if (!atomic_load_explicit(&w->stop, memory_order_acquire)) {
        sl_ring_read(&w->ring, &w->efd_op, w->efd, &w->efd_val, sizeof(w->efd_val), 0);
    }
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    char name[16];
    snprintf(name, sizeof(name), "sluiced-w%u", w->idx);
    pthread_setname_np(pthread_self(), name);
    w->efd_op.cb = on_worker_wake;
    sl_ring_read(&w->ring, &w->efd_op, w->efd, &w->efd_val, sizeof(w->efd_val), 0);
    for (;;) {
        struct msg m;
        while (sl_chan_get(&w->in, &m)) {
            owner_handle(w, &m);
        }
        if (atomic_load_explicit(&w->stop, memory_order_acquire)) {
            break;
        }
        owner_retry(w);
        owner_publish_stats(w);
        sl_chan_flush(&w->out);
        if (w->out.posted) {
            w->out.posted = false;
            sl_chan_wake(w->ws->home_efd);
        }
        sl_ring_run(&w->ring, 1, STATS_EVERY_NS);
    }
    return NULL;
}

/* ---- main loop side --------------------------------------------------------- */

static void on_signal_workers(struct sl_deferred *d)
{
    struct sl_workers *ws = sl_container_of(d, struct sl_workers, signal);
    for (uint32_t i = 1; i < ws->n; i++) {
        struct worker *w = &ws->w[i];
        sl_chan_flush(&w->in);
        if (w->in.posted) {
            w->in.posted = false;
            sl_chan_wake(w->efd);
        }
        /* Messages left in the overflow list go in when the worker answers
         * (sl_workers_drain): it answers everything it takes. */
    }
}

static void post(struct sl_workers *ws, uint32_t owner, const struct msg *m)
{
    sl_chan_put(&ws->w[owner].in, m);
    sl_ring_defer(ws->home, &ws->signal);
}

static void home_handle(struct msg *m)
{
    if (m->type == M_CALLED) {
        m->call->done = true;
        return;
    }
    struct sl_wshard *b = m->b;
    if (b->closed) {
        if (m->type == M_TRUNCATED) { /* (its caller is told whatever happened: it frees t) */
            on_main_truncated(m->ctx, SL_ECLOSED, m->seq);
        }
        if (m->type == M_NOTIFY) {
            free(m->ctx); /* a read ahead nobody will use */
        }
        return; /* a notification about a shard closed since: nothing to do */
    }
    b->mirror = m->stats;
    switch (m->type) {
    case M_APPENDED:
        main_append_io = (struct main_io){.b = b, .io = m->io};
        if (m->cb != NULL) {
            m->cb(m->ctx, m->err, m->seq, m->count);
        }
        main_append_io.b = NULL;
        break;
    case M_READ_DONE: {
        struct sl_wshard_read *wr = m->ctx;
        wr->rd.cb(&wr->rd, m->err);
        break;
    }
    case M_NOTIFY:
        b->watch_posted = false; /* the owner's watch is spent (or was never set) */
        main_ahead = (struct main_ahead){
            .b = b, .ahead = {.data = m->data, .len = (uint32_t)m->len, .seq = m->seq,
                              .next_seq = m->next_seq, .batch_count = m->count}};
        if (b->listener != NULL) {
            b->listener(b->listener_ctx, NULL);
        }
        main_ahead = (struct main_ahead){0};
        free(m->ctx);
        break;
    case M_TRUNCATED:
        on_main_truncated(m->ctx, m->err, m->seq);
        break;
    case M_STATS:
        break;
    case M_WRITTEN:
        main_written_fn(b->listener_ctx, m->seq);
        break;
    default:
        SL_ASSERT(!"unexpected message on the main loop");
    }
}

void sl_workers_drain(struct sl_workers *ws)
{
    if (ws == NULL) {
        return;
    }
    /* Re-entered when a callback closes a shard: then the inner call goes
     * on from where the outer one was, and order is kept. */
    for (uint32_t i = 1; i < ws->n; i++) {
        struct worker *w = &ws->w[i];
        struct msg m;
        while (sl_chan_get(&w->out, &m)) {
            home_handle(&m);
        }
        if (w->in.ovf_len > 0) {
            sl_chan_flush(&w->in); /* the worker made room */
            w->in.posted = true;
            sl_ring_defer(ws->home, &ws->signal);
        }
    }
}

static void on_home_wake(struct sl_io_op *op, int res)
{
    (void)res;
    struct sl_workers *ws = sl_container_of(op, struct sl_workers, home_op);
    sl_workers_drain(ws);
    if (ws->home_efd >= 0) {
        sl_ring_read(ws->home, &ws->home_op, ws->home_efd, &ws->home_val, sizeof(ws->home_val),
                     0);
    }
}

void sl_workers_call(struct sl_workers *ws, uint32_t i, void (*fn)(void *arg), void *arg)
{
    if (ws == NULL || i == 0) {
        fn(arg);
        return;
    }
    struct worker *w = &ws->w[i];
    struct call call = {.fn = fn, .arg = arg, .done = false};
    struct msg m = {.type = M_CALL, .call = &call};
    sl_chan_put(&w->in, &m);
    sl_chan_flush(&w->in);
    w->in.posted = false;
    sl_chan_wake(w->efd);
    pthread_mutex_lock(&w->mu);
    while (!call.done) {
        if (w->in.ovf_len > 0) {
            /* The ring was full: feed it while waiting. */
            pthread_mutex_unlock(&w->mu);
            sl_chan_flush(&w->in);
            sl_chan_wake(w->efd);
            usleep(100);
            pthread_mutex_lock(&w->mu);
            continue;
        }
        pthread_cond_wait(&w->cv, &w->mu);
    }
    pthread_mutex_unlock(&w->mu);
}

static void worker_join(struct worker *w)
{
    if (w->started) {
        atomic_store_explicit(&w->stop, true, memory_order_release);
        sl_chan_wake(w->efd);
        pthread_join(w->thread, NULL);
        w->started = false;
        SL_ASSERT(w->owned == NULL); /* every shard was closed first */
    }
}

static void worker_fini(struct worker *w)
{
    worker_join(w);
    while (w->free_pend != NULL) {
        struct pend *p = w->free_pend;
        w->free_pend = p->next;
        free(p);
    }
    sl_ring_fini(&w->ring);
    if (w->efd >= 0) {
        close(w->efd);
        w->efd = -1;
    }
    sl_chan_fini(&w->in);
    sl_chan_fini(&w->out);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
}

int sl_workers_start(uint32_t n, uint32_t ring_entries, struct sl_ring *home,
                     struct sl_workers **out)
{
    *out = NULL;
    if (n < 1 || n > SL_WORKERS_MAX) {
        return SL_EINVAL;
    }
    struct sl_workers *ws = calloc(1, sizeof(*ws));
    if (ws == NULL) {
        return SL_ENOMEM;
    }
    ws->n = n;
    ws->home = home;
    ws->home_efd = -1;
    ws->signal.fn = on_signal_workers;
    ws->w = calloc(n, sizeof(*ws->w));
    if (ws->w == NULL) {
        free(ws);
        return SL_ENOMEM;
    }
    int rc = SL_OK;
    ws->home_efd = eventfd(0, EFD_CLOEXEC);
    if (ws->home_efd < 0) {
        rc = sl_err_from_errno(errno);
    }
    uint32_t made = 1;
    for (uint32_t i = 1; i < n && rc == SL_OK; i++, made++) {
        struct worker *w = &ws->w[i];
        w->ws = ws;
        w->idx = i;
        w->efd = -1;
        pthread_mutex_init(&w->mu, NULL);
        pthread_cond_init(&w->cv, NULL);
        rc = sl_chan_init(&w->in, CHAN_SLOTS, sizeof(struct msg));
        if (rc == SL_OK) {
            rc = sl_chan_init(&w->out, CHAN_SLOTS, sizeof(struct msg));
        }
        if (rc == SL_OK) {
            rc = sl_ring_init(&w->ring, ring_entries);
            struct sl_ring_faults plan;
            if (rc == SL_OK && sl_ring_faults_plan(home, &plan)) {
                sl_ring_faults_arm(&w->ring, &plan); /* a test's plan is every loop's */
            }
        }
        if (rc == SL_OK) {
            w->efd = eventfd(0, EFD_CLOEXEC);
            if (w->efd < 0) {
                rc = sl_err_from_errno(errno);
            }
        }
        if (rc == SL_OK) {
            rc = sl_thread_start(&w->thread, worker_main, w); /* takes no signal */
            if (rc == SL_OK) {
                w->started = true;
            }
        }
    }
    if (rc != SL_OK) {
        for (uint32_t i = 1; i < made; i++) {
            worker_fini(&ws->w[i]);
        }
        if (ws->home_efd >= 0) {
            close(ws->home_efd);
        }
        free(ws->w);
        free(ws);
        return rc;
    }
    if (n > 1) {
        ws->home_op.cb = on_home_wake;
        sl_ring_read(home, &ws->home_op, ws->home_efd, &ws->home_val, sizeof(ws->home_val), 0);
    }
    *out = ws;
    return SL_OK;
}

static void main_pends_free(void)
{
    while (main_free_pend != NULL) {
        struct pend *p = main_free_pend;
        main_free_pend = p->next;
        free(p);
    }
}

void sl_workers_stop(struct sl_workers *ws)
{
    main_pends_free(); /* (the main loop's appends are all answered by now) */
    if (ws == NULL) {
        return;
    }
    for (uint32_t i = 1; i < ws->n; i++) {
        worker_join(&ws->w[i]);
    }
    sl_workers_drain(ws); /* (nothing is left: every close handed back its messages) */
    for (uint32_t i = 1; i < ws->n; i++) {
        worker_fini(&ws->w[i]);
    }
    /* The wake-up read stays queued on the main ring: the caller tears the
     * ring down next without running it (its callbacks never run). */
    close(ws->home_efd);
    ws->home_efd = -1;
    free(ws->w);
    free(ws);
}

uint32_t sl_workers_count(const struct sl_workers *ws)
{
    return ws == NULL ? 1 : ws->n;
}

uint32_t sl_workers_pick(const struct sl_workers *ws, const char *stream, uint32_t shard)
{
    if (ws == NULL || ws->n == 1) {
        return 0;
    }
    uint64_t h = sl_checksum64(stream, strlen(stream));
    return (uint32_t)((h + shard) % ws->n);
}

/* ---- shard operations ------------------------------------------------------- */

struct open_call {
    struct sl_wshard *b;
    const char *dir;
    const struct sl_shard_config *cfg;
    struct sl_ring *ring;
    int rc;
};

/* On the owner: the open log joins its owner (listener, stats, the owned
 * list). */
static void do_register(struct sl_wshard *b)
{
    if (b->owner == 0) {
        if (b->listener != NULL) {
            sl_shard_set_listener(b->log, b->listener, b->listener_ctx);
        }
        return;
    }
    sl_shard_set_listener(b->log, on_owner_listener, b);
    sl_shard_stats(b->log, &b->mirror);
    b->ow_published = b->mirror;
    struct worker *w = owner_of(b);
    b->ow_prev = NULL;
    b->ow_next = w->owned;
    if (w->owned != NULL) {
        w->owned->ow_prev = b;
    }
    w->owned = b;
}

static void do_open(void *arg)
{
    struct open_call *oc = arg;
    oc->rc = sl_shard_open(oc->ring, oc->dir, oc->cfg, &oc->b->log);
    if (oc->rc == SL_OK) {
        do_register(oc->b);
    }
}

struct sl_ring *sl_workers_ring(struct sl_workers *ws, struct sl_ring *home, uint32_t i)
{
    return ws == NULL || i == 0 ? home : &ws->w[i].ring;
}

struct adopt_call {
    const struct sl_wshard_adoption *a;
    uint32_t n;
    uint32_t owner;
};

static void do_adopt(void *arg)
{
    struct adopt_call *ac = arg;
    for (uint32_t i = 0; i < ac->n; i++) {
        if (ac->a[i].b->owner == ac->owner) {
            do_register(ac->a[i].b);
        }
    }
}

void sl_wshard_adopt(struct sl_workers *ws, const struct sl_wshard_adoption *a, uint32_t n,
                     sl_shard_listener listener)
{
    uint32_t nw = sl_workers_count(ws);
    bool *any = calloc(nw, sizeof(*any));
    for (uint32_t i = 0; i < n; i++) {
        struct sl_wshard *b = a[i].b;
        SL_ASSERT(b->log == NULL && a[i].log != NULL && b->owner < nw);
        b->log = a[i].log;
        b->listener = listener;
        b->listener_ctx = a[i].listener_ctx;
        b->closed = false;
        if (any != NULL) {
            any[b->owner] = true;
        }
    }
    for (uint32_t w = 0; w < nw; w++) {
        if (any == NULL || any[w]) { /* (without memory for the flags: ask every owner) */
            struct adopt_call ac = {.a = a, .n = n, .owner = w};
            sl_workers_call(ws, w, do_adopt, &ac);
        }
    }
    free(any);
}

int sl_wshard_open(struct sl_wshard *b, struct sl_ring *home, const char *dir,
                   const struct sl_shard_config *cfg, sl_shard_listener listener,
                   void *listener_ctx)
{
    b->listener = listener;
    b->listener_ctx = listener_ctx;
    b->closed = false;
    struct open_call oc = {.b = b, .dir = dir, .cfg = cfg,
                           .ring = b->owner == 0 ? home : &b->workers->w[b->owner].ring,
                           .rc = SL_OK};
    sl_workers_call(b->workers, b->owner, do_open, &oc);
    return oc.rc;
}

/* On the owner: the shard leaves its owner (the appends still waiting for
 * staging space fail) and its log closes. */
static void close_on_owner(struct sl_wshard *b)
{
    if (b->owner != 0) {
        struct worker *w = owner_of(b);
        while (b->ow_wait_head != NULL) {
            struct wshard_wait *n = b->ow_wait_head;
            b->ow_wait_head = n->next;
            struct msg r = {.type = M_APPENDED, .err = SL_ECLOSED, .b = b, .cb = n->m.cb,
                            .ctx = n->m.ctx};
            owner_post(w, &r);
            free(n);
        }
        b->ow_wait_tail = NULL;
        for (struct sl_wshard **pp = &w->waiting; *pp != NULL; pp = &(*pp)->ow_wait_next) {
            if (*pp == b) {
                *pp = b->ow_wait_next;
                break;
            }
        }
        /* (doubly linked: a close is O(1) whatever the shards an owner has) */
        active_unlink(w, b);
        if (w->sweep == b) {
            w->sweep = b->ow_next;
        }
        if (b->ow_prev != NULL) {
            b->ow_prev->ow_next = b->ow_next;
        } else {
            w->owned = b->ow_next;
        }
        if (b->ow_next != NULL) {
            b->ow_next->ow_prev = b->ow_prev;
        }
        b->ow_next = b->ow_prev = NULL;
    }
    sl_seqgate_free(&b->ow_gate);
    sl_shard_close(b->log);
    b->log = NULL;
}

struct close_call {
    struct sl_wshard *const *b;
    uint32_t n;
    uint32_t owner;
};

static void do_close(void *arg)
{
    struct close_call *cc = arg;
    for (uint32_t i = 0; i < cc->n; i++) {
        if (cc->b[i]->log != NULL && cc->b[i]->owner == cc->owner) {
            close_on_owner(cc->b[i]);
        }
    }
}

void sl_wshard_close_many(struct sl_workers *ws, struct sl_wshard *const *b, uint32_t n)
{
    uint32_t nw = sl_workers_count(ws);
    for (uint32_t o = 0; o < nw; o++) {
        bool any = false;
        for (uint32_t i = 0; i < n && !any; i++) {
            any = b[i]->log != NULL && b[i]->owner == o;
        }
        if (!any) {
            continue;
        }
        struct close_call cc = {.b = b, .n = n, .owner = o};
        if (o == 0) {
            do_close(&cc);
            continue;
        }
        /* The answer comes on the out ring after every message the owner
         * sent about these shards, which are handled here while waiting:
         * once it arrives nothing names them any more. Rare (delete,
         * shutdown: one call for many shards): a short sleep between looks
         * is fine. */
        struct worker *w = &ws->w[o];
        struct call call = {.fn = do_close, .arg = &cc, .ordered = true, .done = false};
        struct msg m = {.type = M_CALL, .call = &call};
        sl_chan_put(&w->in, &m);
        while (!call.done) {
            sl_chan_flush(&w->in);
            sl_chan_wake(w->efd);
            sl_workers_drain(ws);
            if (!call.done) {
                usleep(50);
            }
        }
    }
    for (uint32_t i = 0; i < n; i++) {
        SL_ASSERT(b[i]->log == NULL);
        b[i]->closed = true;
    }
}

void sl_wshard_close(struct sl_wshard *b)
{
    struct sl_wshard *one[1] = {b};
    sl_wshard_close_many(b->workers, one, 1);
}

static void on_main_appended(void *ctx, int err, uint64_t base_seq, uint32_t count)
{
    struct pend *p = ctx;
    if (err != SL_OK && p->gated) {
        sl_seqgate_failed(&p->b->ow_gate, p->pid, p->pseq, err, sl_clock_mono_ms());
    }
    sl_append_cb cb = p->cb;
    void *cctx = p->ctx;
    p->next = main_free_pend;
    main_free_pend = p;
    cb(cctx, err, base_seq, count);
}

void sl_wshard_watch(struct sl_wshard *b, uint64_t seq)
{
    if (b->owner == 0 || b->gone || b->closed || b->watch_posted) {
        return; /* (one watch until its notice: the first long-poll's position) */
    }
    b->watch_posted = true;
    struct msg m = {.type = M_WATCH, .b = b, .seq = seq};
    post(b->workers, b->owner, &m);
}

void sl_wshard_on_written(struct sl_wshard *b, sl_wshard_written_fn fn)
{
    SL_ASSERT(fn != NULL && (main_written_fn == NULL || main_written_fn == fn));
    SL_ASSERT(b->log != NULL && !b->gone && !b->closed);
    main_written_fn = fn;
    if (b->owner == 0) {
        sl_shard_set_written_listener(b->log, main_written, b);
    } else {
        struct msg m = {.type = M_WRITTEN_ON, .b = b};
        post(b->workers, b->owner, &m);
    }
}

const struct sl_wshard_ahead *sl_wshard_ahead(const struct sl_wshard *b)
{
    return main_ahead.b == b && main_ahead.ahead.data != NULL ? &main_ahead.ahead : NULL;
}

void sl_wshard_append_io(const struct sl_wshard *b, struct sl_shard_io_times *out)
{
    if (b->owner == 0 && b->log != NULL) {
        sl_shard_io_times(b->log, out);
    } else if (main_append_io.b == b) {
        *out = main_append_io.io;
    } else {
        *out = (struct sl_shard_io_times){0};
    }
}

int sl_wshard_append_opt(struct sl_wshard *b, const void *batch, size_t len, unsigned flags,
                         uint32_t epoch, sl_append_cb cb, void *ctx)
{
    if (b->owner == 0) {
        struct pend *p = main_free_pend;
        if (p != NULL) {
            main_free_pend = p->next;
        } else if ((p = malloc(sizeof(*p))) == NULL) {
            return SL_ENOMEM;
        }
        *p = (struct pend){.b = b, .cb = cb, .ctx = ctx};
        int rc = gated_append(b, batch, len, flags, epoch, on_main_appended, p);
        if (rc != SL_OK) {
            p->next = main_free_pend;
            main_free_pend = p;
        }
        return rc;
    }
    struct msg m = {.type = M_APPEND, .flags = flags, .epoch = epoch, .b = b, .data = batch, .len = len,
                    .cb = cb, .ctx = ctx};
    post(b->workers, b->owner, &m);
    return SL_OK;
}

int sl_wshard_append(struct sl_wshard *b, const void *batch, size_t len, unsigned flags,
                     sl_append_cb cb, void *ctx)
{
    return sl_wshard_append_opt(b, batch, len, flags, 0, cb, ctx);
}

static int wshard_cut(struct sl_wshard *b, uint64_t seq, uint32_t flags, sl_truncate_cb cb,
                      void *ctx)
{
    SL_ASSERT(cb != NULL && !b->gone);
    struct wtrunc *t = malloc(sizeof(*t));
    if (t == NULL) {
        return SL_ENOMEM;
    }
    *t = (struct wtrunc){.b = b, .cb = cb, .ctx = ctx};
    if (b->owner == 0) {
        int rc = (flags & M_TRUNC_RESET) != 0
                     ? sl_shard_reset(b->log, seq, on_main_truncated, t)
                     : sl_shard_truncate(b->log, seq, on_main_truncated, t);
        if (rc != SL_OK) {
            free(t);
        }
        return rc;
    }
    struct msg m = {.type = M_TRUNCATE, .b = b, .seq = seq, .flags = flags, .ctx = t};
    post(b->workers, b->owner, &m);
    return SL_OK;
}

int sl_wshard_truncate(struct sl_wshard *b, uint64_t seq, sl_truncate_cb cb, void *ctx)
{
    return wshard_cut(b, seq, 0, cb, ctx);
}

int sl_wshard_reset(struct sl_wshard *b, uint64_t seq, sl_truncate_cb cb, void *ctx)
{
    return wshard_cut(b, seq, M_TRUNC_RESET, cb, ctx);
}

void sl_wshard_retire(struct sl_wshard *b, struct sl_ring *home, uint64_t end)
{
    SL_ASSERT(home != NULL && !b->gone);
    /* Gone before the close: a read a completion issues while the close drains the owner's
     * messages is answered here, never posted behind the close to a log that is no more. */
    b->gone = true;
    b->home = home;
    if (b->log != NULL) {
        sl_wshard_close(b);
    }
    SL_ASSERT(b->log == NULL);
    b->closed = true;
    /* (after the close: the owner's last stats messages, handled by it, set the mirror) */
    b->mirror = (struct sl_shard_stats){.first_seq = end, .next_seq = end, .visible_seq = end};
}

/* A gone shard's read, answered from the main loop's deferred list (never
 * inside sl_wshard_read: callers issue reads from their own callbacks). */
static void gone_read_done(struct sl_deferred *d)
{
    struct sl_wshard_read *wr = sl_container_of(d, struct sl_wshard_read, defer_);
    struct sl_shard_read *rd = &wr->rd;
    uint64_t end = wr->b_->mirror.next_seq; /* (sl_wshard_retire's end) */
    rd->len = 0;
    rd->batch_count = 0;
    rd->next_seq = end;
    int err = SL_OK;
    if (rd->from == SL_READ_SEQ && rd->seq < end) {
        rd->first_seq = end;
        err = SL_ETRIMMED;
    }
    rd->cb(rd, err);
}

void sl_wshard_read(struct sl_wshard *b, struct sl_wshard_read *wr)
{
    if (b->gone) {
        wr->b_ = b;
        wr->defer_ = (struct sl_deferred){.fn = gone_read_done};
        sl_ring_defer(b->home, &wr->defer_);
        return;
    }
    if (b->owner == 0) {
        sl_shard_read(b->log, &wr->rd);
        return;
    }
    struct msg m = {.type = M_READ, .b = b, .ctx = wr};
    post(b->workers, b->owner, &m);
}

void sl_wshard_stats(const struct sl_wshard *b, struct sl_shard_stats *st)
{
    if (b->gone) {
        *st = b->mirror; /* (set once by sl_wshard_retire) */
    } else if (b->log == NULL) { /* not loaded yet (the catalog's lazy start-up) */
        memset(st, 0, sizeof(*st));
    } else if (b->owner == 0) {
        sl_shard_stats(b->log, st);
    } else {
        *st = b->mirror;
    }
}

void sl_wshard_progress(const struct sl_wshard *b, struct sl_shard_stats *st)
{
    if (b->log != NULL && b->owner == 0 && !b->gone) {
        memset(st, 0, sizeof(*st));
        sl_shard_stats_progress(b->log, st);
    } else {
        sl_wshard_stats(b, st); /* (a mirror or nothing: a copy) */
    }
}

struct times_call {
    struct sl_wshard_time *q;
    uint32_t n;
    uint32_t owner;
};

static void do_times_near(void *arg)
{
    struct times_call *tc = arg;
    for (uint32_t i = 0; i < tc->n; i++) {
        struct sl_wshard_time *q = &tc->q[i];
        if (q->b->owner == tc->owner && !q->b->gone) {
            q->rc = sl_shard_time_near_seq(q->b->log, q->seq, &q->time_ms);
        }
    }
}

void sl_wshard_times_near(struct sl_workers *ws, struct sl_wshard_time *q, uint32_t n)
{
    uint32_t nw = sl_workers_count(ws);
    for (uint32_t i = 0; i < n; i++) {
        if (q[i].b->gone) {
            q[i].rc = SL_ENOTFOUND; /* no records: as an empty log */
        }
    }
    for (uint32_t w = 0; w < nw; w++) {
        bool any = false;
        for (uint32_t i = 0; i < n && !any; i++) {
            any = q[i].b->owner == w && !q[i].b->gone;
        }
        if (any) {
            struct times_call tc = {.q = q, .n = n, .owner = w};
            sl_workers_call(ws, w, do_times_near, &tc);
        }
    }
}

int sl_wshard_time_near_seq(struct sl_wshard *b, uint64_t seq, uint64_t *time_ms)
{
    struct sl_wshard_time q = {.b = b, .seq = seq, .rc = SL_OK};
    sl_wshard_times_near(b->workers, &q, 1);
    *time_ms = q.time_ms;
    return q.rc;
}

struct retention_call {
    struct sl_wshard *b;
    uint64_t ms;
    uint64_t bytes;
};

static void do_set_retention(void *arg)
{
    struct retention_call *rc = arg;
    sl_shard_set_retention(rc->b->log, rc->ms, rc->bytes);
}

void sl_wshard_set_retention(struct sl_wshard *b, uint64_t retention_ms,
                             uint64_t retention_bytes)
{
    if (b->gone) {
        return;
    }
    struct retention_call rc = {.b = b, .ms = retention_ms, .bytes = retention_bytes};
    sl_workers_call(b->workers, b->owner, do_set_retention, &rc);
}

void sl_wshard_retention(struct sl_wshard *b, uint64_t floor)
{
    if (b->gone) {
        return;
    }
    if (b->owner == 0) {
        sl_shard_set_retention_floor(b->log, floor);
        sl_shard_retention_run(b->log);
        return;
    }
    struct msg m = {.type = M_RETENTION, .b = b, .seq = floor};
    post(b->workers, b->owner, &m);
}
