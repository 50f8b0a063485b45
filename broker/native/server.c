/* server.c - listener, connections, framing and the loop.
 *
 * A connection has at most one recv and one send in flight. Received bytes
 * accumulate in `in` (conn_buffer_bytes, grown only for a frame that needs
 * more, up to max_frame_bytes + 4); complete frames are parsed and
 * dispatched while fewer than max_inflight requests are unanswered, after
 * which the connection stops reading (back-pressure: TCP's window does the
 * rest). Responses are packed into send buffers (small ones share a buffer)
 * and sent in order of completion.
 *
 * Bad input: a frame longer than max_frame_bytes cannot be skipped safely,
 * so the broker answers with EPROTO/ETOOBIG (request id 0) and closes once
 * that is sent; an undecodable frame of legal length gets EPROTO and the
 * connection continues. Other connections are never affected.
 *
 * Shutdown (SIGTERM/SIGINT): stop accepting, answer parked fetches, stop
 * reading, let in-flight requests finish and their responses drain (bounded
 * by shutdown_timeout_ms), then return; the caller closes the catalog
 * (which fsyncs every shard).
 */
#include "broker/native/server.h"

#include "broker/engine/catalog.h"
#include "broker/engine/engine.h"
#include "broker/engine/events.h"
#include "common/assert.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define OUT_BUF_MIN (16u << 10)
#define TICK_NS (50u * 1000000u)

static void conn_try_recv(struct sl_conn *c);
static void conn_try_send(struct sl_conn *c);
static void conn_close(struct sl_conn *c);

static uint64_t now_ms(void)
{
    return sl_clock_mono_ns() / 1000000u;
}

/* ---- connections ------------------------------------------------------ */

static void conn_maybe_free(struct sl_conn *c)
{
    if (!c->closed || c->refs > 0 || c->recv_busy || c->send_busy) {
        return;
    }
    struct sl_server *srv = c->srv;
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        srv->conns = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    srv->conn_count--;
    while (c->out_head != NULL) {
        struct sl_out_buf *b = c->out_head;
        c->out_head = b->next;
        free(b);
    }
    free(c->in);
    free(c);
}

static void conn_close(struct sl_conn *c)
{
    if (c->closed) {
        return;
    }
    c->closed = true;
    c->closing = true;
    sl_debug("net", "conn %llu: closed", (unsigned long long)c->id);
    /* shutdown wakes a pending recv/send with 0/-EPIPE; close after. */
    shutdown(c->fd, SHUT_RDWR);
    close(c->fd);
    c->fd = -1;
    conn_maybe_free(c);
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

void sl_conn_request_done(struct sl_conn *c)
{
    SL_ASSERT(c->requests > 0);
    c->requests--;
    if (!c->closed) {
        conn_try_recv(c);
    }
}

static struct sl_out_buf *out_reserve(struct sl_conn *c, uint32_t need)
{
    struct sl_out_buf *t = c->out_tail;
    /* Append to the tail buffer unless it is being sent or too small. */
    if (t != NULL && !(c->send_busy && t == c->out_head) && t->cap - t->len >= need) {
        return t;
    }
    uint32_t cap = need > OUT_BUF_MIN ? need : OUT_BUF_MIN;
    struct sl_out_buf *b = malloc(sizeof(*b) + cap);
    if (b == NULL) {
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
    return b;
}

void sl_conn_respond(struct sl_conn *c, const sl_response *resp)
{
    if (c->closed) {
        return;
    }
    size_t size = sl_response_size(resp);
    if (size + SL_FRAME_HEADER_BYTES > UINT32_MAX / 2) {
        sl_error("net", "conn %llu: response too large (%zu bytes)", (unsigned long long)c->id,
                 size);
        conn_close(c);
        return;
    }
    struct sl_out_buf *b = out_reserve(c, (uint32_t)size + SL_FRAME_HEADER_BYTES);
    if (b == NULL) {
        sl_error("net", "conn %llu: out of memory for a response", (unsigned long long)c->id);
        conn_close(c);
        return;
    }
    sl_frame_put_header(b->data + b->len, (uint32_t)size);
    size_t packed = sl_response_pack(resp, b->data + b->len + SL_FRAME_HEADER_BYTES);
    SL_ASSERT(packed == size);
    b->len += (uint32_t)size + SL_FRAME_HEADER_BYTES;
    conn_try_send(c);
}

void sl_conn_respond_error(struct sl_conn *c, uint64_t id, int code, const char *msg)
{
    sl_response resp = SLUICE__V1__RESPONSE__INIT;
    resp.id = id;
    resp.code = (Sluice__V1__ErrorCode)code;
    resp.message = (char *)(msg != NULL ? msg : sl_strerror(code));
    sl_conn_respond(c, &resp);
}

void sl_conn_fail(struct sl_conn *c, uint64_t id, int code, const char *msg)
{
    sl_conn_respond_error(c, id, code, msg);
    sl_conn_request_done(c);
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
    struct sl_out_buf *b = c->out_head;
    b->sent += (uint32_t)res;
    if (b->sent == b->len) {
        c->out_head = b->next;
        if (c->out_head == NULL) {
            c->out_tail = NULL;
        }
        free(b);
    }
    c->last_active_ms = now_ms();
    if (c->out_head == NULL && c->closing && c->requests == 0) {
        conn_close(c); /* everything owed was sent */
        return;
    }
    conn_try_send(c);
}

static void conn_try_send(struct sl_conn *c)
{
    if (c->send_busy || c->closed || c->out_head == NULL) {
        return;
    }
    struct sl_out_buf *b = c->out_head;
    if (b->sent == b->len) {
        return;
    }
    c->send_busy = true;
    sl_ring_send(c->srv->ring, &c->send_op, c->fd, b->data + b->sent, b->len - b->sent);
}

/* Parses and dispatches complete frames from the receive buffer. */
static void conn_parse(struct sl_conn *c)
{
    struct sl_server *srv = c->srv;
    if (c->parsing) {
        return; /* a handler answered synchronously: the outer loop goes on */
    }
    c->parsing = true;
    uint32_t off = 0;
    while (!c->closed && !c->closing && c->requests < srv->cfg.max_inflight) {
        uint32_t flen = 0;
        int rc = sl_frame_peek(c->in + off, c->in_len - off, srv->cfg.max_frame_bytes, &flen);
        if (rc == SL_EAGAIN) {
            break;
        }
        if (rc != SL_OK) {
            char msg[128];
            snprintf(msg, sizeof(msg), "%s: frame length exceeds max_frame_bytes (%u) or is 0",
                     rc == SL_ETOOBIG ? "frame too large" : "bad frame", srv->cfg.max_frame_bytes);
            sl_warn("net", "conn %llu: %s; closing", (unsigned long long)c->id, msg);
            sl_conn_respond_error(c, 0, rc, msg);
            c->closing = true; /* cannot resynchronise: close after the error */
            if (c->out_head == NULL) {
                conn_close(c);
            }
            break;
        }
        if (c->in_len - off - SL_FRAME_HEADER_BYTES < flen) {
            uint32_t need = flen + SL_FRAME_HEADER_BYTES;
            if (need > c->in_cap) { /* grow for this frame only */
                uint8_t *n = malloc(need);
                if (n == NULL) {
                    c->parsing = false;
                    conn_close(c);
                    return;
                }
                memcpy(n, c->in + off, c->in_len - off);
                free(c->in);
                c->in = n;
                c->in_cap = need;
                c->in_len -= off;
                off = 0;
            }
            break;
        }
        sl_request *req = sl_request_unpack(c->in + off + SL_FRAME_HEADER_BYTES, flen);
        off += SL_FRAME_HEADER_BYTES + flen;
        if (req == NULL) {
            sl_conn_respond_error(c, 0, SL_EPROTO, "request is not a valid protobuf Request");
            continue;
        }
        c->requests++;
        srv->dispatch(srv, c, req);
    }
    c->parsing = false;
    if (off > 0) {
        memmove(c->in, c->in + off, c->in_len - off);
        c->in_len -= off;
        c->partial_since_ms = 0; /* a frame completed: the rest is a new one */
    }
    if (c->in_len == 0) {
        c->partial_since_ms = 0;
    } else if (c->partial_since_ms == 0) {
        c->partial_since_ms = now_ms();
    }
    if (c->in_len == 0 && c->in_cap > srv->cfg.conn_buffer_bytes) {
        uint8_t *n = malloc(srv->cfg.conn_buffer_bytes); /* shrink after a big frame */
        if (n != NULL) {
            free(c->in);
            c->in = n;
            c->in_cap = srv->cfg.conn_buffer_bytes;
        }
    }
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
        /* Peer closed: answer what is in flight, then close. */
        c->closing = true;
        if (c->requests == 0 && c->out_head == NULL) {
            conn_close(c);
        }
        return;
    }
    c->in_len += (uint32_t)res;
    c->last_active_ms = now_ms();
    sl_conn_hold(c); /* a handler may close it: free only after we are done */
    conn_parse(c);
    conn_try_recv(c);
    sl_conn_release(c);
}

static void conn_try_recv(struct sl_conn *c)
{
    struct sl_server *srv = c->srv;
    if (c->recv_busy || c->closed || c->closing || srv->stopping || c->parsing) {
        return;
    }
    if (c->requests >= srv->cfg.max_inflight) {
        return; /* back-pressure until responses go out */
    }
    conn_parse(c); /* frames left over from an earlier recv */
    if (c->closed || c->closing || c->requests >= srv->cfg.max_inflight) {
        return;
    }
    if (c->in_len == c->in_cap) {
        return; /* conn_parse grows the buffer when a frame needs it */
    }
    c->recv_busy = true;
    sl_ring_recv(srv->ring, &c->recv_op, c->fd, c->in + c->in_len, c->in_cap - c->in_len);
}

/* ---- accept --------------------------------------------------------- */

static void arm_accept(struct sl_server *srv);

static void on_accept(struct sl_io_op *op, int res)
{
    struct sl_server *srv = sl_container_of(op, struct sl_server, accept_op);
    srv->accept_busy = false;
    if (srv->stopping) {
        if (res >= 0) {
            close(res);
        }
        return;
    }
    if (res < 0) {
        if (res != -EAGAIN && res != -EINTR && res != -ECONNABORTED) {
            sl_warn("net", "accept: %s", strerror(-res));
        }
        arm_accept(srv);
        return;
    }
    int fd = res;
    if (srv->conn_count >= srv->cfg.max_connections) {
        static const char msg[] = "too many connections (max_connections)";
        sl_warn("net", "refusing a connection: %s", msg);
        /* Best effort: one error frame, then close. */
        sl_response resp = SLUICE__V1__RESPONSE__INIT;
        resp.code = SLUICE__V1__ERROR_CODE__ELIMIT;
        resp.message = (char *)msg;
        uint8_t buf[256];
        size_t n = sl_response_size(&resp);
        sl_frame_put_header(buf, (uint32_t)n);
        sl_response_pack(&resp, buf + SL_FRAME_HEADER_BYTES);
        ssize_t w = send(fd, buf, n + SL_FRAME_HEADER_BYTES, MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)w;
        close(fd);
        arm_accept(srv);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct sl_conn *c = calloc(1, sizeof(*c));
    uint8_t *in = malloc(srv->cfg.conn_buffer_bytes);
    if (c == NULL || in == NULL) {
        free(c);
        free(in);
        close(fd);
        arm_accept(srv);
        return;
    }
    c->srv = srv;
    c->fd = fd;
    c->id = ++srv->next_conn_id;
    c->in = in;
    c->in_cap = srv->cfg.conn_buffer_bytes;
    c->recv_op.cb = on_recv;
    c->send_op.cb = on_send;
    c->last_active_ms = now_ms();
    c->next = srv->conns;
    if (srv->conns != NULL) {
        srv->conns->prev = c;
    }
    srv->conns = c;
    srv->conn_count++;
    sl_debug("net", "conn %llu: accepted", (unsigned long long)c->id);
    conn_try_recv(c);
    arm_accept(srv);
}

static void arm_accept(struct sl_server *srv)
{
    if (srv->stopping || srv->accept_busy) {
        return;
    }
    srv->accept_busy = true;
    sl_ring_accept(srv->ring, &srv->accept_op, srv->listen_fd);
}

/* ---- tick, signals, run --------------------------------------------- */

static void begin_stop(struct sl_server *srv)
{
    if (srv->stopping) {
        return;
    }
    sl_info("broker", "shutting down: finishing in-flight requests");
    srv->stopping = true;
    srv->stop_deadline_ms = now_ms() + srv->cfg.shutdown_timeout_ms;
    if (srv->listen_fd >= 0) {
        shutdown(srv->listen_fd, SHUT_RDWR); /* completes the pending accept */
    }
    sl_events_stop(srv->engine);
    for (struct sl_conn *c = srv->conns; c != NULL; c = c->next) {
        c->closing = true;
        if (c->requests == 0 && c->out_head == NULL) {
            shutdown(c->fd, SHUT_RD); /* wakes the pending recv */
        }
    }
}

static void on_signal(struct sl_io_op *op, int res)
{
    struct sl_server *srv = sl_container_of(op, struct sl_server, signal_op);
    (void)res;
    begin_stop(srv);
}

static void on_tick(struct sl_io_op *op, int res)
{
    (void)res;
    struct sl_server *srv = sl_container_of(op, struct sl_server, tick_op);
    srv->tick_busy = false;
    uint64_t t = now_ms();
    sl_events_tick(srv->engine, t);
    struct sl_conn *next;
    for (struct sl_conn *c = srv->conns; c != NULL; c = next) {
        next = c->next;
        bool idle = c->requests == 0 && c->out_head == NULL && !c->closed &&
                    t - c->last_active_ms > srv->cfg.idle_timeout_ms;
        bool drained = srv->stopping && !c->closed && c->requests == 0 && c->out_head == NULL;
        /* Slowloris: a frame that keeps trickling in. Only while the
         * broker reads it: a parse held back by max_inflight is not the
         * peer's fault. */
        bool slow = !c->closed && c->partial_since_ms != 0 &&
                    c->requests < srv->cfg.max_inflight &&
                    t - c->partial_since_ms > srv->cfg.frame_timeout_ms;
        if (slow) {
            sl_info("net", "conn %llu: a request frame took over %u ms: closed",
                    (unsigned long long)c->id, srv->cfg.frame_timeout_ms);
            conn_close(c);
            continue;
        }
        if (idle || drained || (srv->stopping && t > srv->stop_deadline_ms)) {
            if (idle) {
                sl_info("net", "conn %llu: idle for %u ms: closed", (unsigned long long)c->id,
                        srv->cfg.idle_timeout_ms);
            }
            conn_close(c);
        }
    }
    if (!srv->stopping && t >= srv->next_retention_ms) {
        srv->next_retention_ms = t + srv->cfg.retention_check_ms;
        sl_catalog_retention(srv->engine->catalog);
    }
    bool open_conns = false;
    for (struct sl_conn *c = srv->conns; c != NULL && !open_conns; c = c->next) {
        open_conns = !c->closed;
    }
    if (srv->stopping && !open_conns && !srv->accept_busy) {
        srv->done = true;
        return;
    }
    srv->tick_busy = true;
    sl_ring_timeout(srv->ring, &srv->tick_op, TICK_NS);
}

static int listen_on(struct sl_server *srv)
{
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)srv->cfg.port);
    if (inet_pton(AF_INET, srv->cfg.host, &addr.sin_addr) != 1) {
        sl_error("net", "host %s is not an IPv4 address", srv->cfg.host);
        return SL_EINVAL;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return sl_err_from_errno(errno);
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 || listen(fd, 1024) != 0) {
        int e = errno;
        sl_error("net", "cannot listen on %s:%u: %s", srv->cfg.host, srv->cfg.port, strerror(e));
        close(fd);
        return sl_err_from_errno(e);
    }
    socklen_t len = sizeof(addr);
    getsockname(fd, (struct sockaddr *)&addr, &len);
    srv->listen_fd = fd;
    srv->bound_port = ntohs(addr.sin_port);
    return SL_OK;
}

static int write_port_file(const struct sl_server *srv)
{
    if (srv->cfg.port_file == NULL || srv->cfg.port_file[0] == '\0') {
        return SL_OK;
    }
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", srv->cfg.port_file);
    FILE *f = fopen(tmp, "w");
    if (f == NULL) {
        return sl_err_from_errno(errno);
    }
    fprintf(f, "%u\n", srv->bound_port);
    int rc = fclose(f) == 0 && rename(tmp, srv->cfg.port_file) == 0 ? SL_OK : SL_ESYS;
    return rc;
}

int sl_server_init(struct sl_server *srv, struct sl_ring *ring, const struct sl_server_config *cfg,
                   struct sl_engine *engine, sl_server_dispatch_fn dispatch)
{
    memset(srv, 0, sizeof(*srv));
    srv->ring = ring;
    srv->dispatch = dispatch;
    srv->cfg = *cfg;
    srv->engine = engine;
    srv->listen_fd = -1;
    srv->signal_fd = -1;
    srv->accept_op.cb = on_accept;
    srv->tick_op.cb = on_tick;
    srv->signal_op.cb = on_signal;
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);
    srv->signal_fd = signalfd(-1, &mask, SFD_CLOEXEC);
    if (srv->signal_fd < 0) {
        return sl_err_from_errno(errno);
    }
    int rc = listen_on(srv);
    if (rc == SL_OK) {
        rc = write_port_file(srv);
    }
    return rc;
}

int sl_server_run(struct sl_server *srv)
{
    sl_info("broker", "listening on %s:%u", srv->cfg.host, srv->bound_port);
    sl_ring_read(srv->ring, &srv->signal_op, srv->signal_fd, srv->signal_buf,
                 sizeof(srv->signal_buf), 0);
    arm_accept(srv);
    srv->tick_busy = true;
    sl_ring_timeout(srv->ring, &srv->tick_op, TICK_NS);
    while (!srv->done) {
        sl_ring_run(srv->ring, 1, 0);
        sl_catalog_reap(srv->engine->catalog);
    }
    sl_info("broker", "all connections closed");
    return SL_OK;
}

void sl_server_fini(struct sl_server *srv)
{
    if (srv->listen_fd >= 0) {
        close(srv->listen_fd);
        srv->listen_fd = -1;
    }
    /* The signal read is still queued in the ring; the ring is torn down
     * right after this by the caller, so its buffer stays valid until then. */
    if (srv->signal_fd >= 0) {
        close(srv->signal_fd);
        srv->signal_fd = -1;
    }
}
