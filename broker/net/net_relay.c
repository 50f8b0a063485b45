/* net_relay.c - connections served on other loops than the main one (see
 * net.h, sl_net_spread).
 *
 * The main loop accepts; a connection of a listener whose protocol has a
 * `split` goes round-robin to loop 1, .., n-1, 0 (kept here, as before).
 * Handed to loop k, the connection (its socket, buffers, TLS session) is
 * that loop's alone, in its own struct sl_net (no listeners, no signals);
 * the main loop keeps a proxy: a struct sl_conn with px set, in its
 * connection list (counted for max_connections and the metrics), on which
 * the protocol runs. The two sides talk only through messages:
 *
 *   loop -> main   R_FRAME  a whole message: its bytes stay in the loop's
 *                           receive buffer, pinned by the loop for it and
 *                           counted as a request in flight (max_inflight)
 *                  R_GONE   the connection closed: nothing more comes
 *   main -> loop   R_ADOPT  serve this connection
 *                  R_OUT    answers to send (a chain of send buffers, given)
 *                  R_DONE   a message is done with (the request count drops)
 *                  R_PIN / R_UNPIN  a request keeps / lets go of its bytes
 *                  R_FLAGS  the protocol's flags (proto->split reads them)
 *                  R_CLOSE / R_KILL  close after sending / now
 *                  R_FREED  the proxy is freed: the loop may free its side
 *                  R_STOP   shutdown: stop reading, close drained connections
 *
 * What must hold. Messages of one direction are in order (one SPSC channel
 * per loop and direction), so an answer (R_OUT) always reaches the loop
 * before the R_DONE or R_CLOSE posted after it: a closing connection is
 * never closed with an answer owed. A message's bytes are pinned on the loop
 * until the main loop says it is done with them: the frame's own pin is
 * released (R_UNPIN) after proto->recv returns unless a request took it
 * (sl_conn_pin), and any further pin is announced (R_PIN) before the
 * matching unpin can be posted. The loop holds its connection (sl_conn_hold)
 * until R_FREED, so a message naming it never names freed memory; the proxy
 * is freed only once R_GONE came (nothing more names it) and its last hold
 * is released.
 *
 * Wake-ups as in broker/engine/workers.c: an eventfd per receiver with a
 * read armed on its ring, written once per tick that posted something.
 *
 * Threading: the main loop's side (sl_relay_* but sl_relay_recv and
 * sl_relay_closed) on the main thread; the rest on the loop's thread.
 */
#include "broker/net/net_int.h"

#include "common/assert.h"
#include "common/chan.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

/* Messages in flight per direction before the sender's overflow list: a
 * few connections' max_inflight. */
#define RELAY_SLOTS 4096u

enum relay_type {
    R_FRAME = 1,
    R_GONE,
    R_ADOPT,
    R_OUT,
    R_DONE,
    R_PIN,
    R_UNPIN,
    R_FLAGS,
    R_CLOSE,
    R_KILL,
    R_FREED,
    R_STOP,
};

struct relay_msg {
    uint32_t type;
    uint32_t len;        /* R_FRAME: the message's bytes; R_PIN: pins */
    struct sl_conn *c;   /* the receiver's side: the proxy (to main), the real one (to a loop) */
    const uint8_t *data; /* R_FRAME */
    void *p;             /* R_FRAME/R_PIN/R_UNPIN: the receive buffer; R_OUT: the chain */
    char *tls_peer;      /* R_FRAME, the first of a TLS connection: its peer's name */
    uint64_t flags;      /* R_FLAGS */
};

struct sl_net_loop {
    uint32_t idx;
    struct sl_net *home; /* the main loop's net */
    struct sl_net net;   /* this loop's */
    struct sl_chan to_loop;
    struct sl_chan to_home;
    int efd; /* wakes this loop */
    struct sl_io_op efd_op;
    uint64_t efd_val;
    struct sl_io_op tick_op;
    struct sl_deferred kick; /* end of this loop's tick: wake the main loop */
    /* this loop's thread only */
    bool efd_busy;
    bool tick_busy;
    bool finishing;
    bool quiesced; /* finishing, and nothing armed on the ring names this any more */
};

/* ---- the main loop's side --------------------------------------------------- */

static void to_loop(struct sl_net *n, uint32_t loop, const struct relay_msg *m)
{
    if (n->loops == NULL) {
        return; /* the loops are gone (a proxy outlived a timed-out shutdown) */
    }
    SL_ASSERT(loop >= 1 && loop < n->n_loops);
    sl_chan_put(&n->loops[loop]->to_loop, m);
    sl_ring_defer(n->ring, &n->home_kick);
}

uint32_t sl_relay_pick(struct sl_net *n, const struct sl_listener *l)
{
    if (n->n_loops <= 1 || l->cfg.proto->split == NULL || n->stopping) {
        return 0;
    }
    uint32_t loop = n->next_loop;
    n->next_loop = (loop + 1) % n->n_loops;
    return loop;
}

uint32_t sl_net_loop_count(const struct sl_net *n)
{
    return n->n_loops;
}

void sl_relay_handoff(struct sl_net *n, uint32_t loop, struct sl_conn *real)
{
    struct sl_conn *px = calloc(1, sizeof(*px));
    struct sl_conn_px *ext = calloc(1, sizeof(*ext));
    if (px == NULL || ext == NULL) {
        free(px);
        free(ext);
        sl_warn("net", "conn %llu: out of memory for its proxy: served on the main loop",
                (unsigned long long)real->id);
        sl_net_conn_link(n, real);
        sl_net_conn_try_recv(real);
        return;
    }
    *ext = (struct sl_conn_px){.real = real, .loop = loop};
    px->px = ext;
    px->id = real->id;
    px->ctx = real->ctx;
    px->net = n;
    px->l = real->l;
    px->fd = -1;
    px->last_active_ms = real->last_active_ms;
    {
        /* what the protocol may ask of the peer, read while the socket is ours */
        char ip[sizeof(ext->ip)];
        sl_conn_peer_ip(real, ip, sizeof(ip));
        memcpy(ext->ip, ip, sizeof(ip));
    }
    sl_net_conn_link(n, px);
    real->twin = px;
    real->net = &n->loops[loop]->net;
    struct relay_msg m = {.type = R_ADOPT, .c = real};
    to_loop(n, loop, &m);
}

/* The proxy's answers so far go to its loop (before anything posted after). */
static void px_flush(struct sl_conn *c)
{
    struct sl_conn_px *x = c->px;
    if (x->gone) {
        sl_net_out_free(c->out_head);
        c->out_head = c->out_tail = NULL;
        return;
    }
    if (c->proto_flags != x->flags_sent) {
        x->flags_sent = c->proto_flags;
        struct relay_msg f = {.type = R_FLAGS, .c = x->real, .flags = c->proto_flags};
        to_loop(c->net, x->loop, &f);
    }
    /* (never between a reserve and its commit: both run in one call chain) */
    struct sl_out_buf *head = NULL, **tail = &head;
    while (c->out_head != NULL) {
        struct sl_out_buf *b = c->out_head;
        c->out_head = b->next;
        b->next = NULL;
        if (b->len == 0) {
            free(b); /* (an empty buffer would stall the loop's send queue) */
            continue;
        }
        *tail = b;
        tail = &b->next;
    }
    c->out_tail = NULL;
    if (head != NULL) {
        struct relay_msg m = {.type = R_OUT, .c = x->real, .p = head};
        to_loop(c->net, x->loop, &m);
    }
}

void sl_relay_px_send(struct sl_conn *c)
{
    struct sl_conn_px *x = c->px;
    if (x->dirty) {
        return;
    }
    x->dirty = true;
    sl_conn_hold(c); /* until the flush */
    x->dirty_next = c->net->dirty;
    c->net->dirty = c;
    sl_ring_defer(c->net->ring, &c->net->home_kick);
}

void sl_relay_px_done(struct sl_conn *c)
{
    struct sl_conn_px *x = c->px;
    if (x->gone) {
        return;
    }
    px_flush(c); /* the answer first: a closing loop closes once nothing is owed */
    struct relay_msg m = {.type = R_DONE, .c = x->real};
    to_loop(c->net, x->loop, &m);
}

void sl_relay_px_close(struct sl_conn *c, bool after_send)
{
    struct sl_conn_px *x = c->px;
    if (!after_send) {
        c->closed = true; /* no more answers from here */
        c->closing = true;
    }
    if (x->gone) {
        return;
    }
    px_flush(c);
    struct relay_msg m = {.type = after_send ? R_CLOSE : R_KILL, .c = x->real};
    to_loop(c->net, x->loop, &m);
}

struct sl_in_blk *sl_relay_px_pin(struct sl_conn *c)
{
    struct sl_conn_px *x = c->px;
    SL_ASSERT(c->parsing && x->deliver_blk != NULL);
    if (x->deliver_pins > 0 && !x->gone) {
        /* the frame's pin is taken: one more, announced before its unpin can be */
        struct relay_msg m = {.type = R_PIN, .c = x->real, .p = x->deliver_blk, .len = 1};
        to_loop(c->net, x->loop, &m);
    }
    x->deliver_pins++;
    return x->deliver_blk;
}

void sl_relay_px_unpin(struct sl_conn *c, struct sl_in_blk *b)
{
    struct sl_conn_px *x = c->px;
    SL_ASSERT(b != NULL);
    /* (after R_GONE too: the loop holds the connection, and its buffers, until R_FREED) */
    struct relay_msg m = {.type = R_UNPIN, .c = x->real, .p = b};
    to_loop(c->net, x->loop, &m);
}

bool sl_relay_px_free(struct sl_conn *c)
{
    struct sl_conn_px *x = c->px;
    SL_ASSERT(x->gone && c->refs == 0 && !x->dirty);
    struct relay_msg m = {.type = R_FREED, .c = x->real};
    to_loop(c->net, x->loop, &m);
    free(x);
    free(c);
    return true;
}

/* A whole message from the loop: the protocol takes it on the proxy. */
static void home_frame(struct sl_conn *c, const struct relay_msg *m)
{
    struct sl_conn_px *x = c->px;
    SL_ASSERT(!x->gone); /* (R_GONE comes after the connection's last frame) */
    if (m->tls_peer != NULL) {
        snprintf(x->tls_peer, sizeof(x->tls_peer), "%s", m->tls_peer);
        free(m->tls_peer);
    }
    x->deliver_blk = m->p;
    x->deliver_pins = 0;
    x->begun = 0;
    c->last_active_ms = sl_clock_mono_ms();
    sl_conn_hold(c); /* a handler may close it */
    if (!c->closed && !c->closing) {
        c->parsing = true;
        size_t used = c->l->cfg.proto->recv(c, m->data, m->len);
        c->parsing = false;
        /* (the loop sends a message only while fewer than max_inflight are in
         * flight, which bounds the proxy's count too: recv takes it whole) */
        SL_ASSERT(used == m->len || c->closed);
    }
    SL_ASSERT(x->begun <= 1); /* one request per message at most */
    if (x->begun == 0) {
        /* refused before it became a request (or not read): done with now */
        struct relay_msg d = {.type = R_DONE, .c = x->real};
        px_flush(c);
        to_loop(c->net, x->loop, &d);
    }
    if (x->deliver_pins == 0) {
        struct relay_msg u = {.type = R_UNPIN, .c = x->real, .p = x->deliver_blk};
        to_loop(c->net, x->loop, &u);
    }
    x->deliver_blk = NULL;
    sl_conn_release(c);
}

static void home_gone(struct sl_conn *c)
{
    struct sl_conn_px *x = c->px;
    x->gone = true;
    c->closed = true;
    c->closing = true;
    sl_net_out_free(c->out_head); /* (nobody to send them to) */
    c->out_head = c->out_tail = NULL;
    sl_conn_hold(c);
    sl_conn_release(c); /* freed here unless a request still holds it */
}

/* Handles what the loops sent (the wake-up read does it). */
static void home_drain(struct sl_net *n)
{
    for (uint32_t i = 1; i < n->n_loops; i++) {
        struct sl_net_loop *lp = n->loops[i];
        struct relay_msg m;
        while (sl_chan_get(&lp->to_home, &m)) {
            if (m.type == R_FRAME) {
                home_frame(m.c, &m);
            } else {
                SL_ASSERT(m.type == R_GONE);
                home_gone(m.c);
            }
        }
        if (lp->to_loop.ovf_len > 0) {
            sl_chan_flush(&lp->to_loop); /* the loop made room */
            sl_ring_defer(n->ring, &n->home_kick);
        }
    }
}

static void on_home_wake(struct sl_io_op *op, int res)
{
    (void)res;
    struct sl_net *n = sl_container_of(op, struct sl_net, home_op);
    n->home_busy = false;
    home_drain(n);
    if (n->home_efd >= 0) {
        n->home_busy = true;
        sl_ring_read(n->ring, &n->home_op, n->home_efd, &n->home_val, sizeof(n->home_val), 0);
    }
}

/* End of the main loop's tick: the proxies' answers go out, the loops wake. */
static void on_home_kick(struct sl_deferred *d)
{
    struct sl_net *n = sl_container_of(d, struct sl_net, home_kick);
    while (n->dirty != NULL) {
        struct sl_conn *c = n->dirty;
        n->dirty = c->px->dirty_next;
        c->px->dirty = false;
        c->px->dirty_next = NULL;
        px_flush(c);
        sl_conn_release(c);
    }
    for (uint32_t i = 1; i < n->n_loops; i++) {
        struct sl_net_loop *lp = n->loops[i];
        sl_chan_flush(&lp->to_loop);
        if (lp->to_loop.posted) {
            lp->to_loop.posted = false;
            sl_chan_wake(lp->efd);
        }
    }
}

void sl_relay_stop(struct sl_net *n)
{
    for (uint32_t i = 1; i < n->n_loops; i++) {
        struct relay_msg m = {.type = R_STOP};
        to_loop(n, i, &m);
    }
}

/* ---- a loop's side ------------------------------------------------------------ */

static void to_home(struct sl_net_loop *lp, const struct relay_msg *m)
{
    sl_chan_put(&lp->to_home, m);
    sl_ring_defer(lp->net.ring, &lp->kick);
}

static void on_loop_kick(struct sl_deferred *d)
{
    struct sl_net_loop *lp = sl_container_of(d, struct sl_net_loop, kick);
    sl_chan_flush(&lp->to_home);
    if (lp->to_home.posted) {
        lp->to_home.posted = false;
        sl_chan_wake(lp->home->home_efd);
    }
}

size_t sl_relay_recv(struct sl_conn *c, const uint8_t *data, size_t len)
{
    struct sl_net_loop *lp = c->net->loop;
    const struct sl_proto *p = c->l->cfg.proto;
    size_t off = 0;
    while (!c->closed && !c->closing && c->requests < c->l->cfg.max_inflight) {
        uint32_t mlen = 0;
        int rc = p->split(c, data + off, len - off, &mlen);
        if (rc == SL_EAGAIN) {
            break;
        }
        if (rc != SL_OK) {
            return len; /* answered and closing: the rest is not read */
        }
        SL_ASSERT(mlen > 0 && mlen <= len - off);
        struct relay_msg m = {
            .type = R_FRAME, .c = c->twin, .data = data + off, .len = mlen, .p = sl_conn_pin(c)};
        if (c->tls != NULL && !c->tls_named) {
            /* the handshake is done before any plaintext: the peer's name is final */
            char name[256];
            sl_conn_tls_peer(c, name, sizeof(name));
            m.tls_peer = strdup(name); /* (NULL without memory: read as no name) */
            c->tls_named = true;
        }
        sl_conn_request_begin(c); /* until R_DONE */
        to_home(lp, &m);
        off += mlen;
    }
    return off;
}

void sl_relay_closed(struct sl_conn *c)
{
    struct relay_msg m = {.type = R_GONE, .c = c->twin};
    to_home(c->net->loop, &m);
}

static void loop_out(struct sl_conn *c, struct sl_out_buf *head)
{
    if (c->closed) {
        sl_net_out_free(head);
        return;
    }
    if (c->out_tail != NULL) {
        c->out_tail->next = head;
    } else {
        c->out_head = head;
    }
    struct sl_out_buf *t = head;
    while (t->next != NULL) {
        t = t->next;
    }
    c->out_tail = t;
    sl_net_conn_try_send(c);
}

static void loop_stop(struct sl_net_loop *lp)
{
    struct sl_net *n = &lp->net;
    n->stopping = true;
    n->stop_deadline_ms = sl_clock_mono_ms() + n->cfg.shutdown_timeout_ms;
    for (struct sl_conn *c = n->conns; c != NULL; c = c->next) {
        c->closing = true;
        if (!c->closed && sl_net_conn_quiet(c)) {
            shutdown(c->fd, SHUT_RD); /* wakes the pending recv */
        }
    }
}

static void loop_handle(struct sl_net_loop *lp, const struct relay_msg *m)
{
    struct sl_conn *c = m->c;
    switch (m->type) {
    case R_ADOPT:
        SL_ASSERT(c->net == &lp->net);
        sl_net_conn_link(&lp->net, c);
        sl_conn_hold(c); /* for its proxy, until R_FREED */
        if (lp->net.stopping) {
            c->closing = true;
        }
        sl_net_conn_try_recv(c);
        if (lp->net.stopping && sl_net_conn_quiet(c)) {
            sl_net_conn_close(c);
        }
        break;
    case R_OUT:
        loop_out(c, m->p);
        break;
    case R_DONE:
        sl_conn_request_done(c);
        break;
    case R_PIN: {
        struct sl_in_blk *b = m->p;
        SL_ASSERT(b->pins > 0);
        b->pins += m->len;
        break;
    }
    case R_UNPIN:
        sl_conn_unpin(c, m->p);
        sl_net_conn_try_recv(c); /* (a connection paused by its pinned buffers reads on) */
        break;
    case R_FLAGS:
        c->proto_flags = m->flags;
        break;
    case R_CLOSE:
        sl_conn_close_after_send(c);
        break;
    case R_KILL:
        sl_net_conn_close(c);
        break;
    case R_FREED:
        c->twin = NULL;
        sl_conn_release(c);
        break;
    case R_STOP:
        loop_stop(lp);
        break;
    default:
        SL_ASSERT(!"unexpected message on a loop");
    }
}

static void on_loop_wake(struct sl_io_op *op, int res)
{
    (void)res;
    struct sl_net_loop *lp = sl_container_of(op, struct sl_net_loop, efd_op);
    lp->efd_busy = false;
    struct relay_msg m;
    while (sl_chan_get(&lp->to_loop, &m)) {
        loop_handle(lp, &m);
    }
    if (lp->to_home.ovf_len > 0) {
        sl_ring_defer(lp->net.ring, &lp->kick); /* the main loop made room */
    }
    if (!lp->finishing) {
        lp->efd_busy = true;
        sl_ring_read(lp->net.ring, &lp->efd_op, lp->efd, &lp->efd_val, sizeof(lp->efd_val), 0);
    }
}

static void on_loop_tick(struct sl_io_op *op, int res)
{
    (void)res;
    struct sl_net_loop *lp = sl_container_of(op, struct sl_net_loop, tick_op);
    lp->tick_busy = false;
    if (lp->finishing) {
        return;
    }
    sl_net_expire(&lp->net, sl_clock_mono_ms());
    lp->tick_busy = true;
    sl_ring_timeout(lp->net.ring, &lp->tick_op, TICK_NS);
}

static void loop_start(void *arg)
{
    struct sl_net_loop *lp = arg;
    lp->efd_busy = true;
    sl_ring_read(lp->net.ring, &lp->efd_op, lp->efd, &lp->efd_val, sizeof(lp->efd_val), 0);
    lp->tick_busy = true;
    sl_ring_timeout(lp->net.ring, &lp->tick_op, TICK_NS);
}

/* On the loop: no more re-arming; what is left of its connections goes. */
static void loop_finish(void *arg)
{
    struct sl_net_loop *lp = arg;
    lp->finishing = true;
    for (struct sl_conn *c = lp->net.conns, *next; c != NULL; c = next) {
        next = c->next;
        /* Closed by now unless the shutdown timed out; one its proxy still
         * holds then stays allocated (the process is exiting). */
        sl_net_conn_close(c);
    }
    if (lp->efd_busy) {
        sl_chan_wake(lp->efd); /* completes the armed read, not armed again */
    }
}

static void loop_idle(void *arg)
{
    struct sl_net_loop *lp = arg;
    lp->quiesced = !lp->efd_busy && !lp->tick_busy;
}

static void loop_free(struct sl_net_loop *lp)
{
    sl_chan_fini(&lp->to_loop);
    sl_chan_fini(&lp->to_home);
    if (lp->efd >= 0) {
        close(lp->efd);
    }
    free(lp);
}

struct spread {
    sl_net_call_fn call;
    void *call_ctx;
};
static struct spread spread_of_main; /* (one main loop per process) */

int sl_net_spread(struct sl_net *n, uint32_t loops, struct sl_ring *const *rings,
                  sl_net_call_fn call, void *call_ctx)
{
    SL_ASSERT(n->loop == NULL && n->n_loops == 1 && n->loops == NULL);
    if (loops < 1 || loops > SL_NET_LOOPS_MAX) {
        return SL_EINVAL;
    }
    if (loops == 1) {
        return SL_OK;
    }
    n->loops = calloc(loops, sizeof(*n->loops));
    n->home_efd = eventfd(0, EFD_CLOEXEC);
    if (n->loops == NULL || n->home_efd < 0) {
        int rc = n->loops == NULL ? SL_ENOMEM : sl_err_from_errno(errno);
        free(n->loops);
        n->loops = NULL;
        if (n->home_efd >= 0) {
            close(n->home_efd);
        }
        n->home_efd = -1;
        return rc;
    }
    int rc = SL_OK;
    for (uint32_t i = 1; i < loops && rc == SL_OK; i++) {
        struct sl_net_loop *lp = calloc(1, sizeof(*lp));
        if (lp == NULL) {
            rc = SL_ENOMEM;
            break;
        }
        lp->idx = i;
        lp->home = n;
        lp->efd = -1;
        lp->net = (struct sl_net){.ring = rings[i],
                                  .cfg = n->cfg,
                                  .signal_fd = -1,
                                  .loop = lp,
                                  .n_loops = 1,
                                  .home_efd = -1};
        lp->efd_op.cb = on_loop_wake;
        lp->tick_op.cb = on_loop_tick;
        lp->kick.fn = on_loop_kick;
        rc = sl_chan_init(&lp->to_loop, RELAY_SLOTS, sizeof(struct relay_msg));
        if (rc == SL_OK) {
            rc = sl_chan_init(&lp->to_home, RELAY_SLOTS, sizeof(struct relay_msg));
        }
        if (rc == SL_OK) {
            lp->efd = eventfd(0, EFD_CLOEXEC);
            rc = lp->efd >= 0 ? SL_OK : sl_err_from_errno(errno);
        }
        if (rc != SL_OK) {
            loop_free(lp);
            break;
        }
        n->loops[i] = lp;
    }
    if (rc != SL_OK) {
        for (uint32_t i = 1; i < loops; i++) {
            if (n->loops[i] != NULL) {
                loop_free(n->loops[i]);
            }
        }
        free(n->loops);
        n->loops = NULL;
        close(n->home_efd);
        n->home_efd = -1;
        return rc;
    }
    n->n_loops = loops;
    /* The first connection goes to loop 1, not the main loop: a broker with one client
     * (most tests) then runs the hand-over path, not the path of no spreading. */
    n->next_loop = 1;
    n->home_kick.fn = on_home_kick;
    n->home_op.cb = on_home_wake;
    spread_of_main = (struct spread){.call = call, .call_ctx = call_ctx};
    for (uint32_t i = 1; i < loops; i++) {
        call(call_ctx, i, loop_start, n->loops[i]);
    }
    n->home_busy = true;
    sl_ring_read(n->ring, &n->home_op, n->home_efd, &n->home_val, sizeof(n->home_val), 0);
    return SL_OK;
}

void sl_relay_fini(struct sl_net *n)
{
    if (n->n_loops <= 1) {
        return;
    }
    struct spread sp = spread_of_main;
    home_drain(n); /* frames and closes the loops sent last */
    on_home_kick(&n->home_kick);
    for (uint32_t i = 1; i < n->n_loops; i++) {
        struct sl_net_loop *lp = n->loops[i];
        sp.call(sp.call_ctx, i, loop_finish, lp);
        /* The armed read and tick complete on the loop's thread (at most a
         * tick, 50 ms) and are not armed again; then nothing names lp. */
        for (;;) {
            sp.call(sp.call_ctx, i, loop_idle, lp); /* (the call orders the read) */
            if (lp->quiesced) {
                break;
            }
            usleep(1000);
        }
        loop_free(lp);
        n->loops[i] = NULL;
    }
    free(n->loops);
    n->loops = NULL;
    n->n_loops = 1;
    /* The wake-up read stays queued on the main ring, naming home_val: the
     * ring is torn down next without running (as sl_net_fini's signal read). */
    close(n->home_efd);
    n->home_efd = -1;
}
