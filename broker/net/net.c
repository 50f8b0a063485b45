/* net.c - listeners, connections and the loop (see net.h).
 *
 * A connection has at most one recv and one send in flight. Received bytes
 * accumulate in `in` (conn_buffer_bytes, grown only for a message that
 * needs more, as the protocol asks with sl_conn_need); the protocol takes
 * whole messages while the connection is not paused. Responses are queued
 * in send buffers (small ones share a buffer) and sent in order.
 *
 * Receive buffers (struct sl_in_blk) and zero-copy: `in` holds used bytes
 * [0, in_off), unused ones [in_off, in_len) and room [in_len, in_cap); the
 * loop writes only into the room. A protocol may pin the buffer
 * (sl_conn_pin) so that requests reference their bytes in it after recv
 * returns. What must hold: a buffer with pins is never compacted
 * (memmove), written below in_len, shrunk or freed; when room is needed
 * (conn_in_tidy) the unused bytes are copied to another buffer and the
 * pinned one is retired, freed (or kept as a spare) at its last unpin.
 * An unpinned buffer is compacted after each delivery, as it always was.
 * Retired buffers are bounded (SL_NET_IN_RETIRED_MAX: beyond it the
 * connection is not read), so receive memory stays bounded by settings.
 *
 * Timeouts (the 50 ms tick): idle connections close after idle_timeout_ms;
 * a request that keeps trickling in closes after request_timeout_ms, counted
 * only while the loop reads it (a parse held back by max_inflight is not the
 * peer's fault).
 *
 * Shutdown (SIGTERM/SIGINT): stop accepting, hooks.stop (parked requests
 * answer), stop reading, let in-flight requests finish and their responses
 * drain (bounded by shutdown_timeout_ms), then return; the caller closes
 * the catalog (which fsyncs every shard). SIGHUP calls hooks.reload.
 *
 * TLS (a listener with a context): the socket carries ciphertext, the
 * protocol still sees plaintext in `in` and queues plaintext in `out_*`.
 * Received ciphertext lands in `tls_in`, is fed to the session and decrypted
 * into `in` as room allows (so back-pressure works as in plaintext: nothing
 * is decrypted, and then nothing received, while `in` is full or the
 * protocol is paused). Sending encrypts queued plaintext while the session's
 * output is below TLS_OUT_BYTES and sends it from `tls_out`; one send in
 * flight as in plaintext. Handshake output (and alerts) go the same way.
 * The handshake must finish within request_timeout_ms.
 */
#include "broker/net/net.h"
#include "broker/net/net_int.h"

#include "common/assert.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/fileio.h"
#include "common/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

static void conn_try_recv(struct sl_conn *c);
static void conn_try_send(struct sl_conn *c);
static void conn_close(struct sl_conn *c);
static bool conn_out_idle(const struct sl_conn *c);
static void expire_conns(struct sl_net *n, uint64_t t);


/* ---- connections ------------------------------------------------------ */

static struct sl_in_blk *blk_new(uint32_t cap)
{
    struct sl_in_blk *b = malloc(sizeof(*b) + cap);
    if (b != NULL) {
        *b = (struct sl_in_blk){.cap = cap};
    }
    return b;
}

/* An unpinned buffer no longer used as `in`: a spare, or freed. */
static void blk_put(struct sl_conn *c, struct sl_in_blk *b)
{
    SL_ASSERT(b->pins == 0 && b != c->in_blk && !b->retired);
    if (c->in_spares >= IN_SPARES_MAX) {
        free(b);
        return;
    }
    b->next = c->in_spare;
    c->in_spare = b;
    c->in_spares++;
}

/* A spare of at least `cap` bytes (the first that fits), or NULL. */
static struct sl_in_blk *blk_take_spare(struct sl_conn *c, uint32_t cap)
{
    for (struct sl_in_blk **p = &c->in_spare; *p != NULL; p = &(*p)->next) {
        struct sl_in_blk *b = *p;
        if (b->cap >= cap) {
            *p = b->next;
            c->in_spares--;
            SL_ASSERT(b->pins == 0);
            return b;
        }
    }
    return NULL;
}

/* Frees the spares larger than conn_buffer_bytes (an idle connection keeps
 * what it holds at rest small). */
static void blk_trim_spares(struct sl_conn *c)
{
    uint32_t base = c->net->cfg.conn_buffer_bytes;
    struct sl_in_blk **p = &c->in_spare;
    while (*p != NULL) {
        struct sl_in_blk *b = *p;
        if (b->cap > base) {
            *p = b->next;
            c->in_spares--;
            free(b);
        } else {
            p = &b->next;
        }
    }
}

static void conn_set_in(struct sl_conn *c, struct sl_in_blk *b)
{
    c->in_blk = b;
    c->in = b->data;
    c->in_cap = b->cap;
}

static void conn_maybe_free(struct sl_conn *c)
{
    if (c->px != NULL ? !c->px->gone || c->refs > 0
                      : !c->closed || c->refs > 0 || c->recv_busy || c->send_busy) {
        return;
    }
    struct sl_net *n = c->net;
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        n->conns = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    n->conn_count--;
    /* (a connection another loop serves has its protocol state in its proxy) */
    if (n->loop == NULL && c->l->cfg.proto->free != NULL) {
        c->l->cfg.proto->free(c);
    }
    sl_net_out_free(c->out_head);
    c->out_head = c->out_tail = NULL;
    if (c->px != NULL && sl_relay_px_free(c)) {
        return;
    }
    sl_tls_free(c->tls);
    free(c->tls_in);
    free(c->tls_out);
    /* every request that pinned input is answered: it held the connection */
    SL_ASSERT(c->in_blk->pins == 0 && c->in_retired == 0);
    free(c->in_blk);
    while (c->in_spare != NULL) {
        struct sl_in_blk *b = c->in_spare;
        c->in_spare = b->next;
        free(b);
    }
    free(c);
}

static void conn_close(struct sl_conn *c)
{
    if (c->closed) {
        return;
    }
    if (c->px != NULL) {
        sl_relay_px_close(c, false);
        return;
    }
    c->closed = true;
    c->closing = true;
    sl_debug("net", "conn %llu: closed", (unsigned long long)c->id);
    if (c->tls != NULL && !c->send_busy && sl_tls_established(c->tls)) {
        /* close_notify, best effort: a peer may take a bare FIN for truncation */
        uint8_t notify[256];
        sl_tls_close(c->tls);
        size_t len = sl_tls_take(c->tls, notify, sizeof(notify));
        if (len > 0) {
            (void)send(c->fd, notify, len, MSG_DONTWAIT | MSG_NOSIGNAL);
        }
    }
    /* shutdown wakes a pending recv/send with 0/-EPIPE; close after. */
    shutdown(c->fd, SHUT_RDWR);
    close(c->fd);
    c->fd = -1;
    if (c->net->loop != NULL) {
        sl_relay_closed(c); /* its proxy is told; it holds c until it is freed */
    }
    conn_maybe_free(c);
}

void sl_net_conn_close(struct sl_conn *c)
{
    conn_close(c);
}

void sl_net_out_free(struct sl_out_buf *b)
{
    while (b != NULL) {
        struct sl_out_buf *next = b->next;
        free(b);
        b = next;
    }
}

bool sl_conn_is_closed(const struct sl_conn *c)
{
    return c->closed;
}

void sl_conn_peer_ip(const struct sl_conn *c, char *buf, size_t cap)
{
    SL_ASSERT(cap > 0);
    if (c->px != NULL) {
        snprintf(buf, cap, "%s", c->px->ip);
        return;
    }
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    snprintf(buf, cap, "?");
    if (c->closed || getpeername(c->fd, (struct sockaddr *)&ss, &len) != 0) {
        return;
    }
    const void *a = ss.ss_family == AF_INET6 ? (const void *)&((struct sockaddr_in6 *)&ss)->sin6_addr
                                             : (const void *)&((struct sockaddr_in *)&ss)->sin_addr;
    if (inet_ntop(ss.ss_family, a, buf, (socklen_t)cap) == NULL) {
        snprintf(buf, cap, "?");
    }
}

void sl_conn_tls_peer(const struct sl_conn *c, char *buf, size_t cap)
{
    SL_ASSERT(cap > 0);
    buf[0] = '\0';
    if (c->px != NULL) {
        snprintf(buf, cap, "%s", c->px->tls_peer);
        return;
    }
    if (c->tls != NULL && sl_tls_established(c->tls)) {
        sl_tls_peer_name(c->tls, buf, cap);
    }
}

void sl_conn_hold(struct sl_conn *c)
{
    c->refs++;
}

void sl_conn_release(struct sl_conn *c)
{
    SL_ASSERT(c->refs > 0);
    c->refs--;
    conn_maybe_free(c);
}

void sl_conn_request_begin(struct sl_conn *c)
{
    c->requests++;
    if (c->px != NULL) {
        c->px->begun++; /* the message being delivered became a request */
    }
}

void sl_conn_request_done(struct sl_conn *c)
{
    SL_ASSERT(c->requests > 0);
    c->requests--;
    if (c->px != NULL) {
        sl_relay_px_done(c); /* its loop reads on, or closes */
        return;
    }
    if (!c->closed) {
        conn_try_recv(c);
        if (c->closing && c->requests == 0 && conn_out_idle(c)) {
            conn_close(c); /* nothing more owed */
        }
    }
}

void sl_conn_close_after_send(struct sl_conn *c)
{
    c->closing = true;
    if (c->px != NULL) {
        sl_relay_px_close(c, true);
        return;
    }
    if (conn_out_idle(c) && !c->send_busy && c->requests == 0) {
        conn_close(c);
    }
}

uint8_t *sl_conn_reserve(struct sl_conn *c, uint32_t need)
{
    if (c->closed) {
        return NULL;
    }
    struct sl_out_buf *t = c->out_tail;
    /* Append to the tail buffer unless it is being sent or too small. */
    if (t != NULL && !(c->send_busy && t == c->out_head) && t->cap - t->len >= need) {
        return t->data + t->len;
    }
    uint32_t cap = need > OUT_BUF_MIN ? need : OUT_BUF_MIN;
    struct sl_out_buf *b = malloc(sizeof(*b) + cap);
    if (b == NULL) {
        sl_error("net", "conn %llu: out of memory for a response", (unsigned long long)c->id);
        conn_close(c);
        return NULL;
    }
    b->next = NULL;
    b->cap = cap;
    b->len = 0;
    b->sent = 0;
    if (t != NULL) {
        t->next = b;
    } else {
        c->out_head = b;
    }
    c->out_tail = b;
    return b->data;
}

void sl_conn_commit(struct sl_conn *c, uint32_t len)
{
    SL_ASSERT(c->out_tail != NULL && c->out_tail->cap - c->out_tail->len >= len);
    c->out_tail->len += len;
    conn_try_send(c);
}

int sl_conn_write(struct sl_conn *c, const void *data, size_t len)
{
    if (len > UINT32_MAX / 2) {
        return SL_ETOOBIG;
    }
    uint8_t *p = sl_conn_reserve(c, (uint32_t)len);
    if (p == NULL) {
        return c->closed ? SL_ECLOSED : SL_ENOMEM;
    }
    memcpy(p, data, len);
    sl_conn_commit(c, (uint32_t)len);
    return SL_OK;
}

int sl_conn_need(struct sl_conn *c, uint32_t need)
{
    SL_ASSERT(c->parsing);
    if (c->px != NULL) {
        return SL_OK; /* (a proxy is given whole messages: its loop makes the room) */
    } /* inside recv: conn_in_tidy makes the room after it */
    c->in_need = need;
    return SL_OK;
}

struct sl_in_blk *sl_conn_pin(struct sl_conn *c)
{
    if (c->px != NULL) {
        return sl_relay_px_pin(c);
    }
    SL_ASSERT(c->parsing && !c->in_blk->retired);
    c->in_blk->pins++;
    SL_ASSERT(c->in_blk->pins > 0); /* no wrap */
    return c->in_blk;
}

void sl_conn_unpin(struct sl_conn *c, struct sl_in_blk *b)
{
    if (c->px != NULL) {
        sl_relay_px_unpin(c, b); /* (b is the loop's: not read here) */
        return;
    }
    SL_ASSERT(b->pins > 0);
    b->pins--;
    if (b->pins == 0 && b->retired) {
        SL_ASSERT(b != c->in_blk && c->in_retired > 0);
        b->retired = false;
        c->in_retired--;
        blk_put(c, b);
    }
}

bool sl_conn_pin_holds(const struct sl_in_blk *b, const void *p, size_t len)
{
    const uint8_t *q = p;
    return q >= b->data && len <= b->cap && (size_t)(q - b->data) <= b->cap - len;
}

/* Moves the unused bytes to the start of a buffer of at least `want` bytes:
 * compacts `in` when no request pins it, else takes the spare or a new
 * buffer and retires the pinned one. Errors: SL_ENOMEM (the connection is
 * closed). */
static int conn_in_move(struct sl_conn *c, uint32_t want)
{
    SL_ASSERT(!c->parsing && c->in_off <= c->in_len && c->in_len <= c->in_cap);
    SL_ASSERT(!c->recv_busy || c->tls != NULL); /* a plaintext recv writes into `in` */
    uint32_t keep = c->in_len - c->in_off;
    SL_ASSERT(keep <= want);
    struct sl_in_blk *old = c->in_blk;
    uint32_t base = c->net->cfg.conn_buffer_bytes;
    bool shrink = old->cap > base && want <= base;
    if (old->pins == 0 && old->cap >= want && !shrink) {
        memmove(c->in, c->in + c->in_off, keep);
        c->in_off = 0;
        c->in_len = keep;
        return SL_OK;
    }
    uint32_t cap = want > base ? want : base;
    struct sl_in_blk *b = blk_take_spare(c, cap);
    if (b == NULL && (b = blk_new(cap)) == NULL) {
        if (old->pins == 0 && old->cap >= want) { /* a shrink can wait */
            memmove(c->in, c->in + c->in_off, keep);
            c->in_off = 0;
            c->in_len = keep;
            return SL_OK;
        }
        conn_close(c);
        return SL_ENOMEM;
    }
    memcpy(b->data, c->in + c->in_off, keep);
    conn_set_in(c, b);
    c->in_off = 0;
    c->in_len = keep;
    if (old->pins > 0) {
        old->retired = true; /* its requests still read it: freed at the last unpin */
        c->in_retired++;
    } else {
        blk_put(c, old);
    }
    SL_ASSERT(c->in_cap >= want && c->in_blk->pins == 0);
    return SL_OK;
}

/* After a delivery: used bytes dropped from an unpinned buffer (as before
 * zero-copy), room made for the message sl_conn_need named, a grown buffer
 * shrunk once the connection is idle, and a pinned buffer replaced when
 * little room is left. */
static void conn_in_tidy(struct sl_conn *c)
{
    if (c->parsing || c->closed) {
        return; /* recv's bytes are in use; the outer delivery tidies */
    }
    uint32_t base = c->net->cfg.conn_buffer_bytes;
    uint32_t keep = c->in_len - c->in_off;
    uint32_t need = c->in_need > keep ? c->in_need : keep;
    if (c->in_blk->pins == 0) {
        if (keep == 0 && c->in_cap > base && c->requests == 0) {
            (void)conn_in_move(c, need > base ? need : base); /* shrink after a big message */
        } else if (c->in_off > 0 || need > c->in_cap) {
            (void)conn_in_move(c, need > c->in_cap ? need : c->in_cap);
        }
    } else if (need > c->in_cap - c->in_off ||
               (c->in_need == 0 && c->in_cap - c->in_len < c->in_cap / IN_ROOM_DIV)) {
        /* (a message of known size that fits is received where it started) */
        uint32_t want = keep + base / IN_ROOM_DIV;
        (void)conn_in_move(c, need > want ? need : want);
    }
    if (keep == 0 && c->requests == 0 && !c->closed) {
        blk_trim_spares(c); /* idle: nothing in flight, nothing buffered */
    }
    SL_ASSERT(c->closed || c->in_off <= c->in_len);
}

static void out_pop(struct sl_conn *c)
{
    struct sl_out_buf *b = c->out_head;
    c->out_head = b->next;
    if (c->out_head == NULL) {
        c->out_tail = NULL;
    }
    free(b);
}

/* Nothing queued, nothing encrypted waiting to go. */
static bool conn_out_idle(const struct sl_conn *c)
{
    return c->out_head == NULL &&
           (c->tls == NULL ||
            (c->tls_out_sent == c->tls_out_len && sl_tls_out_pending(c->tls) == 0));
}

static void on_send(struct sl_io_op *op, int res)
{
    struct sl_conn *c = sl_container_of(op, struct sl_conn, send_op);
    c->send_busy = false;
    if (c->closed) {
        conn_maybe_free(c);
        return;
    }
    if (res <= 0) {
        sl_debug("net", "conn %llu: send: %s", (unsigned long long)c->id,
                 res < 0 ? strerror(-res) : "closed");
        conn_close(c);
        return;
    }
    if (c->tls != NULL) {
        c->tls_out_sent += (uint32_t)res;
        SL_ASSERT(c->tls_out_sent <= c->tls_out_len);
    } else {
        struct sl_out_buf *b = c->out_head;
        b->sent += (uint32_t)res;
        if (b->sent == b->len) {
            out_pop(c);
        }
    }
    c->last_active_ms = sl_clock_mono_ms();
    if (conn_out_idle(c) && c->closing && c->requests == 0) {
        conn_close(c); /* everything owed was sent */
        return;
    }
    conn_try_send(c);
}

/* Encrypts queued plaintext while the session's output stays small, then
 * sends one chunk of ciphertext. Plaintext buffers are freed once encrypted
 * (never between a reserve and its commit: both run in one call chain). */
static void conn_tls_send(struct sl_conn *c)
{
    if (c->tls_out_sent == c->tls_out_len) {
        c->tls_out_sent = 0;
        c->tls_out_len = 0;
        while (c->out_head != NULL && sl_tls_out_pending(c->tls) < TLS_OUT_BYTES) {
            struct sl_out_buf *b = c->out_head;
            uint32_t n = b->len - b->sent;
            if (n == 0 && b == c->out_tail) {
                break; /* reserved, not committed yet */
            }
            n = n < SL_TLS_RECORD_BYTES ? n : SL_TLS_RECORD_BYTES;
            if (n > 0 && sl_tls_write(c->tls, b->data + b->sent, n) != SL_OK) {
                sl_info("net", "conn %llu: TLS: %s", (unsigned long long)c->id,
                        sl_tls_why(c->tls));
                conn_close(c);
                return;
            }
            b->sent += n;
            if (b->sent == b->len) {
                out_pop(c);
            }
        }
        c->tls_out_len = (uint32_t)sl_tls_take(c->tls, c->tls_out, TLS_OUT_BYTES);
    }
    if (c->tls_out_sent < c->tls_out_len) {
        c->send_busy = true;
        sl_ring_send(c->net->ring, &c->send_op, c->fd, c->tls_out + c->tls_out_sent,
                     c->tls_out_len - c->tls_out_sent);
    }
}

static void conn_try_send(struct sl_conn *c)
{
    if (c->send_busy || c->closed) {
        return;
    }
    if (c->px != NULL) {
        sl_relay_px_send(c); /* handed to its loop at the end of this tick */
        return;
    }
    if (c->tls != NULL) {
        conn_tls_send(c);
        return;
    }
    if (c->out_head == NULL) {
        return;
    }
    struct sl_out_buf *b = c->out_head;
    if (b->sent == b->len) {
        return;
    }
    c->send_busy = true;
    sl_ring_send(c->net->ring, &c->send_op, c->fd, b->data + b->sent, b->len - b->sent);
}

static bool conn_paused(const struct sl_conn *c)
{
    const struct sl_proto *p = c->l->cfg.proto;
    if (c->in_retired >= SL_NET_IN_RETIRED_MAX) {
        return true; /* bounded receive memory: wait for a pinned buffer to go */
    }
    return p->paused != NULL ? p->paused(c) : c->requests >= c->l->cfg.max_inflight;
}

/* Offers the buffered bytes to the protocol. */
static void conn_deliver(struct sl_conn *c)
{
    if (c->parsing) {
        return; /* a handler answered synchronously: the outer call goes on */
    }
    if (c->in_len > c->in_off) {
        c->parsing = true;
        c->in_need = 0; /* named again by recv for the message it leaves */
        size_t used = 0;
        if (!c->closed && !c->closing && !conn_paused(c)) {
            /* on another loop than the main one: cut into messages, handed over */
            used = c->net->loop != NULL
                       ? sl_relay_recv(c, c->in + c->in_off, c->in_len - c->in_off)
                       : c->l->cfg.proto->recv(c, c->in + c->in_off, c->in_len - c->in_off);
            SL_ASSERT(used <= c->in_len - c->in_off);
        }
        c->parsing = false;
        if (c->closed) {
            return;
        }
        if (used > 0) {
            c->in_off += (uint32_t)used;
            c->partial_since_ms = 0; /* a message completed: the rest is a new one */
        }
    }
    conn_in_tidy(c);
    if (c->closed) {
        return;
    }
    const struct sl_proto *p = c->l->cfg.proto;
    bool partial = p->partial != NULL ? p->partial(c) : c->in_len > c->in_off;
    if (!partial) {
        c->partial_since_ms = 0;
    } else if (c->partial_since_ms == 0) {
        c->partial_since_ms = sl_clock_mono_ms();
    }
}

/* A plaintext client on a TLS listener: told so in its own protocol (a
 * best effort, like a refusal), then closed. */
static void conn_not_tls(struct sl_conn *c)
{
    static _Thread_local struct sl_log_ratelimit rl = {.interval_ms = 10000, .burst = 5};
    if (sl_log_ratelimit_ok(&rl)) {
        sl_info("net", "conn %llu: plaintext on the TLS %s port: closed",
                (unsigned long long)c->id, c->l->cfg.proto->name);
    }
    if (c->l->cfg.proto->refuse != NULL) {
        c->l->cfg.proto->refuse(c->fd, SL_EPROTO,
                                "this port speaks TLS: connect with TLS (https://, sluice --tls)");
    }
    conn_close(c);
}

/* The peer is done sending: answer what is in flight, then close. */
static void conn_peer_done(struct sl_conn *c)
{
    c->closing = true;
    if (c->requests == 0 && conn_out_idle(c) && !c->send_busy) {
        conn_close(c);
    }
}

/* Decrypts what the session holds into `in` as room allows; returns whether
 * plaintext was added. A failed handshake or session sends its alert and
 * closes; the peer's close_notify is its end of stream. */
static bool conn_tls_decrypt(struct sl_conn *c)
{
    bool was_established = sl_tls_established(c->tls);
    bool progress = false;
    int rc = SL_OK;
    while (rc == SL_OK && c->in_len < c->in_cap) {
        size_t got = 0;
        rc = sl_tls_read(c->tls, c->in + c->in_len, c->in_cap - c->in_len, &got);
        if (rc == SL_OK) {
            c->in_len += (uint32_t)got;
            progress = true;
        }
    }
    if (!was_established && sl_tls_established(c->tls)) {
        c->partial_since_ms = 0; /* the handshake's deadline no longer applies */
        char alpn[32];
        sl_tls_alpn(c->tls, alpn, sizeof(alpn));
        sl_debug("net", "conn %llu: %s established%s%s", (unsigned long long)c->id,
                 sl_tls_version(c->tls), alpn[0] != '\0' ? ", ALPN " : "", alpn);
    }
    if (rc == SL_EPROTO) {
        static _Thread_local struct sl_log_ratelimit rl = {.interval_ms = 10000, .burst = 10};
        if (sl_log_ratelimit_ok(&rl)) {
            sl_info("net", "conn %llu: TLS %s failed: %s", (unsigned long long)c->id,
                    was_established ? "session" : "handshake", sl_tls_why(c->tls));
        }
    }
    conn_try_send(c); /* handshake messages, alerts */
    if (rc == SL_EPROTO || rc == SL_ECLOSED) {
        conn_peer_done(c);
    }
    return progress;
}

static void on_recv(struct sl_io_op *op, int res)
{
    struct sl_conn *c = sl_container_of(op, struct sl_conn, recv_op);
    c->recv_busy = false;
    if (c->closed) {
        conn_maybe_free(c);
        return;
    }
    if (res <= 0) {
        if (res < 0 && res != -ECONNRESET) {
            sl_debug("net", "conn %llu: recv: %s", (unsigned long long)c->id, strerror(-res));
        }
        conn_peer_done(c);
        return;
    }
    if (c->tls != NULL) {
        if (!c->tls_started && c->tls_in[0] != TLS_HANDSHAKE_RECORD) {
            conn_not_tls(c);
            return;
        }
        c->tls_started = true;
        if (sl_tls_feed(c->tls, c->tls_in, (size_t)res) != SL_OK) {
            conn_close(c);
            return;
        }
    } else {
        c->in_len += (uint32_t)res;
    }
    c->last_active_ms = sl_clock_mono_ms();
    sl_conn_hold(c); /* a handler may close it: free only after we are done */
    conn_deliver(c);
    conn_try_recv(c);
    sl_conn_release(c);
}

static void conn_try_recv(struct sl_conn *c)
{
    if (c->recv_busy || c->closed || c->closing || c->net->stopping || c->parsing) {
        return;
    }
    if (conn_paused(c)) {
        return; /* back-pressure until responses go out */
    }
    conn_deliver(c); /* messages left over from an earlier recv */
    /* TLS: plaintext the session already holds comes before the socket's */
    while (c->tls != NULL && !c->closed && !c->closing && !conn_paused(c) &&
           conn_tls_decrypt(c)) {
        conn_deliver(c);
    }
    if (c->closed || c->closing || conn_paused(c) || c->in_len == c->in_cap) {
        return; /* a full buffer: the protocol grows it when a message needs it */
    }
    c->recv_busy = true;
    if (c->tls != NULL) {
        sl_ring_recv(c->net->ring, &c->recv_op, c->fd, c->tls_in, TLS_IN_BYTES);
    } else {
        uint32_t len = c->in_cap - c->in_len;
        /* A large message whose size the protocol named is read to its end
         * and no further: the next one then starts a buffer, and the buffer
         * this one is pinned in never has a partial message to copy out. */
        if (c->in_need > c->net->cfg.conn_buffer_bytes && c->in_off + c->in_need > c->in_len &&
            c->in_off + c->in_need - c->in_len < len) {
            len = c->in_off + c->in_need - c->in_len;
        }
        SL_ASSERT(len > 0);
        sl_ring_recv(c->net->ring, &c->recv_op, c->fd, c->in + c->in_len, len);
    }
}

/* ---- accept --------------------------------------------------------- */

static void arm_accept(struct sl_listener *l);

/* A session and cipher buffers when the listener speaks TLS. */
static int conn_tls_init(struct sl_conn *c, const struct sl_listener *l)
{
    if (l->cfg.tls == NULL) {
        return SL_OK;
    }
    c->tls_in = malloc(TLS_IN_BYTES);
    c->tls_out = malloc(TLS_OUT_BYTES);
    if (c->tls_in == NULL || c->tls_out == NULL) {
        return SL_ENOMEM;
    }
    return sl_tls_new(l->cfg.tls, NULL, &c->tls);
}

static void on_accept(struct sl_io_op *op, int res)
{
    struct sl_listener *l = sl_container_of(op, struct sl_listener, accept_op);
    struct sl_net *n = l->net;
    l->accept_busy = false;
    if (n->stopping) {
        if (res >= 0) {
            close(res);
        }
        return;
    }
    if (res < 0) {
        static struct sl_log_ratelimit rl = {.interval_ms = 10000, .burst = 1};
        if (res == -EMFILE || res == -ENFILE) {
            if (sl_log_ratelimit_ok(&rl)) {
                char why[192];
                sl_nofile_why(why, sizeof(why));
                sl_warn("net", "accept: %s (or lower max_connections)", why);
            }
            l->accept_later = true; /* accepting now would fail again at once */
            return;
        }
        if (res != -EAGAIN && res != -EINTR && res != -ECONNABORTED) {
            sl_warn("net", "accept: %s", strerror(-res));
        }
        arm_accept(l);
        return;
    }
    int fd = res;
    if (n->conn_count >= n->cfg.max_connections) {
        static const char msg[] = "too many connections (max_connections)";
        sl_warn("net", "refusing a %s connection: %s", l->cfg.proto->name, msg);
        if (l->cfg.proto->refuse != NULL && l->cfg.tls == NULL) { /* no plaintext on TLS */
            l->cfg.proto->refuse(fd, SL_ELIMIT, msg);
        }
        close(fd);
        arm_accept(l);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct sl_conn *c = calloc(1, sizeof(*c));
    struct sl_in_blk *in = blk_new(n->cfg.conn_buffer_bytes);
    if (c == NULL || in == NULL || conn_tls_init(c, l) != SL_OK) {
        sl_warn("net", "out of memory for a %s connection: refused", l->cfg.proto->name);
        if (c != NULL) {
            sl_tls_free(c->tls);
            free(c->tls_in);
            free(c->tls_out);
        }
        free(c);
        free(in);
        close(fd);
        arm_accept(l);
        return;
    }
    c->net = n;
    c->l = l;
    c->ctx = l->cfg.ctx;
    c->fd = fd;
    c->id = ++n->next_conn_id;
    conn_set_in(c, in);
    c->recv_op.cb = on_recv;
    c->send_op.cb = on_send;
    c->last_active_ms = sl_clock_mono_ms();
    /* a TLS handshake must finish like a request must arrive: in time */
    c->partial_since_ms = c->tls != NULL ? c->last_active_ms : 0;
    uint32_t loop = sl_relay_pick(n, l);
    sl_debug("net", "conn %llu: accepted (%s), served by loop %u", (unsigned long long)c->id,
             l->cfg.proto->name, loop);
    if (loop != 0) {
        sl_relay_handoff(n, loop, c); /* its proxy joins n->conns */
    } else {
        sl_net_conn_link(n, c);
        conn_try_recv(c);
    }
    arm_accept(l);
}

void sl_net_conn_link(struct sl_net *n, struct sl_conn *c)
{
    c->prev = NULL;
    c->next = n->conns;
    if (n->conns != NULL) {
        n->conns->prev = c;
    }
    n->conns = c;
    n->conn_count++;
}

void sl_net_conn_try_recv(struct sl_conn *c)
{
    conn_try_recv(c);
}

void sl_net_conn_try_send(struct sl_conn *c)
{
    conn_try_send(c);
}

bool sl_net_conn_quiet(const struct sl_conn *c)
{
    return c->requests == 0 && conn_out_idle(c) && !c->send_busy;
}

static void arm_accept(struct sl_listener *l)
{
    if (l->net->stopping || l->accept_busy) {
        return;
    }
    l->accept_busy = true;
    sl_ring_accept(l->net->ring, &l->accept_op, l->fd);
}

/* ---- tick, signals, run --------------------------------------------- */

static void begin_stop(struct sl_net *n)
{
    if (n->stopping) {
        return;
    }
    sl_info("broker", "shutting down: finishing in-flight requests");
    n->stopping = true;
    n->stop_deadline_ms = sl_clock_mono_ms() + n->cfg.shutdown_timeout_ms;
    for (uint32_t i = 0; i < n->n_listeners; i++) {
        shutdown(n->listeners[i].fd, SHUT_RDWR); /* completes the pending accept */
    }
    if (n->hooks.stop != NULL) {
        n->hooks.stop(n->hooks.ctx);
    }
    sl_relay_stop(n); /* the other loops stop reading and close what is drained */
    for (struct sl_conn *c = n->conns; c != NULL; c = c->next) {
        if (c->px != NULL) {
            continue; /* its loop's */
        }
        c->closing = true;
        if (c->requests == 0 && conn_out_idle(c) && !c->closed) {
            shutdown(c->fd, SHUT_RD); /* wakes the pending recv */
        }
    }
}

static void arm_signal(struct sl_net *n)
{
    sl_ring_read(n->ring, &n->signal_op, n->signal_fd, n->signal_buf, sizeof(n->signal_buf), 0);
}

static void on_signal(struct sl_io_op *op, int res)
{
    struct sl_net *n = sl_container_of(op, struct sl_net, signal_op);
    uint32_t hups = 0;
    bool stop = res <= 0; /* the signalfd failed: stopping is the safe reading */
    for (int off = 0; off + (int)sizeof(struct signalfd_siginfo) <= res;
         off += (int)sizeof(struct signalfd_siginfo)) {
        struct signalfd_siginfo si;
        memcpy(&si, n->signal_buf + off, sizeof(si));
        if (si.ssi_signo == SIGHUP) {
            hups++;
        } else {
            stop = true;
        }
    }
    if (hups > 0 && !n->stopping && n->hooks.reload != NULL) {
        sl_info("broker", "SIGHUP: reloading");
        n->hooks.reload(n->hooks.reload_ctx);
    }
    if (stop) {
        begin_stop(n);
        return; /* the read is not armed again: sl_net_fini closes the fd */
    }
    arm_signal(n);
}

void sl_net_expire(struct sl_net *n, uint64_t now_ms)
{
    expire_conns(n, now_ms);
}

/* Closes idle, slow and (at shutdown) drained connections. */
static void expire_conns(struct sl_net *n, uint64_t t)
{
    struct sl_conn *next;
    for (struct sl_conn *c = n->conns; c != NULL; c = next) {
        next = c->next;
        if (c->closed || c->px != NULL) {
            continue; /* (a proxy's connection expires on its loop) */
        }
        bool quiet = c->requests == 0 && conn_out_idle(c);
        bool idle = quiet && t - c->last_active_ms > n->cfg.idle_timeout_ms;
        bool slow = c->partial_since_ms != 0 && !conn_paused(c) &&
                    t - c->partial_since_ms > n->cfg.request_timeout_ms;
        if (slow) {
            sl_info("net", "conn %llu: a request took over %u ms to arrive: closed",
                    (unsigned long long)c->id, n->cfg.request_timeout_ms);
            conn_close(c);
            continue;
        }
        if (idle || (n->stopping && (quiet || t > n->stop_deadline_ms))) {
            if (idle) {
                sl_info("net", "conn %llu: idle for %u ms: closed", (unsigned long long)c->id,
                        n->cfg.idle_timeout_ms);
            }
            conn_close(c);
        }
    }
}

static void on_tick(struct sl_io_op *op, int res)
{
    (void)res;
    struct sl_net *n = sl_container_of(op, struct sl_net, tick_op);
    uint64_t t = sl_clock_mono_ms();
    if (n->hooks.tick != NULL) {
        n->hooks.tick(n->hooks.ctx, t);
    }
    expire_conns(n, t);
    for (uint32_t i = 0; i < n->n_listeners; i++) {
        if (n->listeners[i].accept_later) {
            n->listeners[i].accept_later = false;
            arm_accept(&n->listeners[i]);
        }
    }
    bool open_conns = false, accepting = false;
    for (struct sl_conn *c = n->conns; c != NULL && !open_conns; c = c->next) {
        open_conns = c->px != NULL ? !c->px->gone : !c->closed;
    }
    for (uint32_t i = 0; i < n->n_listeners; i++) {
        accepting = accepting || n->listeners[i].accept_busy;
    }
    if (n->stopping && !open_conns && !accepting) {
        n->done = true;
        return;
    }
    sl_ring_timeout(n->ring, &n->tick_op, TICK_NS);
}

static int listen_on(struct sl_listener *l)
{
    const struct sl_listener_config *lc = &l->cfg;
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)lc->port);
    if (inet_pton(AF_INET, lc->host, &addr.sin_addr) != 1) {
        sl_error("net", "host %s is not an IPv4 address", lc->host);
        return SL_EINVAL;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return sl_err_from_errno(errno);
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 ||
        listen(fd, LISTEN_BACKLOG) != 0) {
        int e = errno;
        sl_error("net", "cannot listen on %s:%u (%s): %s%s", lc->host, lc->port,
                 lc->proto->name, strerror(e),
                 e == EADDRINUSE ? "; another process holds the port: stop it or choose "
                                   "another port"
                                 : "");
        close(fd);
        return sl_err_from_errno(e);
    }
    socklen_t len = sizeof(addr);
    getsockname(fd, (struct sockaddr *)&addr, &len);
    l->fd = fd;
    l->port = ntohs(addr.sin_port);
    return SL_OK;
}

int sl_net_write_port_file(const char *path, uint32_t port)
{
    if (path == NULL || path[0] == '\0') {
        return SL_OK;
    }
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (f == NULL) {
        return sl_err_from_errno(errno);
    }
    fprintf(f, "%u\n", port);
    return fclose(f) == 0 && rename(tmp, path) == 0 ? SL_OK : SL_ESYS;
}

int sl_net_init(struct sl_net **out, struct sl_ring *ring, const struct sl_net_config *cfg,
                const struct sl_net_hooks *hooks)
{
    struct sl_net *n = calloc(1, sizeof(*n));
    if (n == NULL) {
        return SL_ENOMEM;
    }
    n->ring = ring;
    n->cfg = *cfg;
    n->hooks = *hooks;
    n->tick_op.cb = on_tick;
    n->n_loops = 1;
    n->home_efd = -1;
    n->signal_op.cb = on_signal;
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);
    n->signal_fd = signalfd(-1, &mask, SFD_CLOEXEC);
    if (n->signal_fd < 0) {
        int rc = sl_err_from_errno(errno);
        free(n);
        return rc;
    }
    *out = n;
    return SL_OK;
}

int sl_net_listen(struct sl_net *n, const struct sl_listener_config *lc, uint32_t *bound_port)
{
    if (n->n_listeners == SL_NET_LISTENERS_MAX) {
        return SL_ELIMIT;
    }
    struct sl_listener *l = &n->listeners[n->n_listeners];
    memset(l, 0, sizeof(*l));
    l->net = n;
    l->cfg = *lc;
    l->fd = -1;
    l->accept_op.cb = on_accept;
    int rc = listen_on(l);
    if (rc != SL_OK) {
        return rc;
    }
    n->n_listeners++;
    *bound_port = l->port;
    return SL_OK;
}

int sl_net_run(struct sl_net *n)
{
    for (uint32_t i = 0; i < n->n_listeners; i++) {
        struct sl_listener *l = &n->listeners[i];
        sl_info("broker", "listening on %s:%u (%s)", l->cfg.host, l->port, l->cfg.proto->name);
        arm_accept(l);
    }
    arm_signal(n);
    sl_ring_timeout(n->ring, &n->tick_op, TICK_NS);
    while (!n->done) {
        sl_ring_run(n->ring, 1, 0);
        if (n->hooks.turn != NULL) {
            n->hooks.turn(n->hooks.ctx);
        }
    }
    sl_info("broker", "all connections closed");
    return SL_OK;
}

bool sl_net_stopping(const struct sl_net *n)
{
    return n->stopping;
}

void sl_net_set_tls(struct sl_net *n, const struct sl_tls_ctx *old, struct sl_tls_ctx *fresh)
{
    SL_ASSERT(old != NULL && fresh != NULL);
    for (uint32_t i = 0; i < n->n_listeners; i++) {
        if (n->listeners[i].cfg.tls == old) {
            n->listeners[i].cfg.tls = fresh;
        }
    }
}

uint32_t sl_net_loop_conn_count(const struct sl_net *n, uint32_t loop)
{
    uint32_t count = 0;
    for (const struct sl_conn *c = n->conns; c != NULL; c = c->next) {
        count += !c->closed && (c->px != NULL ? c->px->loop : 0) == loop;
    }
    return count;
}

uint32_t sl_net_conn_count(const struct sl_net *n, const char *proto)
{
    uint32_t count = 0;
    for (const struct sl_conn *c = n->conns; c != NULL; c = c->next) {
        count += !c->closed && (proto == NULL || strcmp(c->l->cfg.proto->name, proto) == 0);
    }
    return count;
}

void sl_net_fini(struct sl_net *n)
{
    if (n == NULL) {
        return;
    }
    sl_relay_fini(n);
    for (uint32_t i = 0; i < n->n_listeners; i++) {
        close(n->listeners[i].fd);
    }
    /* The signal read is still queued in the ring, naming n->signal_buf:
     * the ring must not run again (main.c tears it down right after). */
    close(n->signal_fd);
    free(n);
}
