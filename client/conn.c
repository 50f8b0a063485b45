/* conn.c - sluice_client: one pipelined TCP connection to a broker and its I/O thread.
 *
 * Wire: frames of `u32 big-endian length | protobuf` (proto/frame.h). The first request
 * on a connection is Hello (version 1); its response gives the broker's frame limit and
 * max in-flight requests, which bounds `inflight` here.
 *
 * Threads and locks:
 * - Callers send: they register a `struct sl_call` (id, deadline, waiter or callback) in
 *   the pending list under `mu`, then write the frame under `send_mu` (writes of one frame
 *   never interleave). Lock order: send_mu before mu.
 * - The I/O thread reads frames, finds the call by id and completes it: a synchronous
 *   waiter is woken through `cv`; an asynchronous callback runs on the I/O thread, outside
 *   `mu`. Every 100 ms it also fails calls past their deadline with SL_EAGAIN; such a call
 *   keeps its in-flight slot (`zombies`) until its late response arrives, so the broker's
 *   max_inflight is never exceeded.
 * - A read or write error "breaks" the connection (generation `gen`): the socket is shut
 *   down (not closed: the reader may still be using it), every pending call fails
 *   with SL_ECLOSED. The next call reconnects under send_mu, dropping the client's
 *   reference to the old wire (client/wire.c: the socket closes with its last user), with
 *   exponential backoff between failed attempts.
 * - TLS (opts.tls): the context is built once from the files at sluice_client_new; each
 *   connection runs its handshake in reconnect, before Hello.
 */
#include "client/conn.h"

#include "client/login.h"
#include "client/wire.h"

#include "common/assert.h"
#include "common/clock.h"
#include "common/tls.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CONN_TICK_MS          100u /* I/O thread's timeout scan period */
#define CONN_ENVELOPE_BYTES   256u /* Request fields around a Produce's batch */
#define CONN_READ_CHUNK       (64u << 10)
#define CONN_MSG_MAX          256u
#define SL_CLIENT_ID_MAX      128u /* bytes of the Hello's client id kept (longer: cut) */

struct sl_call {
    struct sl_call *next;
    struct sl_call *prev;
    uint64_t id;
    uint64_t gen;
    uint64_t deadline_ms;
    int done;
    int err;
    sl_response *resp;
    sl_call_cb cb; /* NULL: a synchronous waiter */
    void *ctx;
    char msg[CONN_MSG_MAX];
};

struct sluice_client {
    char *host;
    char *port;
    struct sluice_client_opts opts;
    pthread_mutex_t send_mu;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t io_thread;
    int io_started;
    struct sl_tls_ctx *tls; /* NULL: plaintext */
    char *tls_server_name;  /* owned */
    /* The Hello's client id, kept: every reconnect says it again, long after the caller's
     * string may be gone (opts.client_id points here). */
    char client_id[SL_CLIENT_ID_MAX];
    char *user;             /* owned; NULL: no credentials */
    char *password;         /* owned; wiped at free */
    /* Guarded by mu (wire and gen change under both locks). */
    struct sl_wire *wire;
    int connected;
    int closing;
    uint64_t gen;
    uint64_t next_id;
    struct sl_call pending; /* list head */
    uint32_t inflight;      /* pending with a response expected, plus zombies */
    uint32_t zombies;
    uint32_t max_inflight;
    uint32_t max_frame;
    uint64_t next_attempt_ms;
    uint32_t backoff_ms;
};

static _Thread_local char last_error[CONN_MSG_MAX];

const char *sluice_last_error(void)
{
    return last_error;
}

const char *sluice_strerror(int err)
{
    return sl_strerror(err);
}

void sl_client_set_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof(last_error), fmt, ap);
    va_end(ap);
}

uint32_t sl_client_max_payload(const sluice_client *c)
{
    return c->max_frame > CONN_ENVELOPE_BYTES ? c->max_frame - CONN_ENVELOPE_BYTES : 0;
}

/* ---- pending list (under mu) ---- */

static void pending_add(sluice_client *c, struct sl_call *call)
{
    call->next = &c->pending;
    call->prev = c->pending.prev;
    c->pending.prev->next = call;
    c->pending.prev = call;
}

static void pending_del(struct sl_call *call)
{
    call->prev->next = call->next;
    call->next->prev = call->prev;
    call->next = call->prev = call;
}

static struct sl_call *pending_find(sluice_client *c, uint64_t id)
{
    for (struct sl_call *k = c->pending.next; k != &c->pending; k = k->next) {
        if (k->id == id) {
            return k;
        }
    }
    return NULL;
}

/* Marks `call` (already unlinked) finished. A synchronous waiter is woken; an
 * asynchronous one is appended to `*run` so the callback runs after mu is released. */
static void call_finish_locked(sluice_client *c, struct sl_call *call, int err, const char *msg,
                               sl_response *resp, struct sl_call **run)
{
    call->err = err;
    call->resp = resp;
    snprintf(call->msg, sizeof(call->msg), "%s", msg != NULL ? msg : "");
    call->done = 1;
    if (call->cb == NULL) {
        pthread_cond_broadcast(&c->cv);
    } else {
        call->next = *run;
        *run = call;
    }
}

/* Runs the callbacks collected by call_finish_locked (in completion order) and frees them. */
static void run_callbacks(struct sl_call *run)
{
    struct sl_call *rev = NULL;
    while (run != NULL) {
        struct sl_call *n = run->next;
        run->next = rev;
        rev = run;
        run = n;
    }
    while (rev != NULL) {
        struct sl_call *n = rev->next;
        rev->cb(rev->ctx, rev->err, rev->msg, rev->resp);
        free(rev);
        rev = n;
    }
}

/* Breaks connection generation `gen` (no-op when already broken or newer): shuts the
 * socket down and fails every pending call with SL_ECLOSED. */
static void conn_break(sluice_client *c, uint64_t gen, const char *why)
{
    struct sl_call *run = NULL;
    char msg[CONN_MSG_MAX];
    snprintf(msg, sizeof(msg), "connection to %s:%s lost: %s", c->host, c->port, why);
    pthread_mutex_lock(&c->mu);
    if (c->connected && c->gen == gen) {
        c->connected = 0;
        sl_wire_shutdown(c->wire);
        while (c->pending.next != &c->pending) {
            struct sl_call *k = c->pending.next;
            pending_del(k);
            call_finish_locked(c, k, SL_ECLOSED, msg, NULL, &run);
        }
        c->inflight = 0;
        c->zombies = 0;
        c->next_attempt_ms = 0; /* the first reconnect is immediate */
        pthread_cond_broadcast(&c->cv);
    }
    pthread_mutex_unlock(&c->mu);
    run_callbacks(run);
}

/* ---- socket helpers ---- */

static int connect_one(const struct addrinfo *ai, uint32_t timeout_ms, int *fd_out)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    if (fd < 0) {
        return errno;
    }
    int err = 0;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        err = errno;
        if (err == EINPROGRESS) {
            struct pollfd pfd = {.fd = fd, .events = POLLOUT};
            int r = poll(&pfd, 1, (int)timeout_ms);
            err = r == 0 ? ETIMEDOUT : r < 0 ? errno : 0;
            socklen_t l = sizeof(err);
            if (r > 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l) < 0) {
                err = errno;
            }
        }
    }
    /* Back to blocking: the I/O thread polls before it reads, senders block in send. */
    int fl = err == 0 ? fcntl(fd, F_GETFL) : 0;
    if (err == 0 && (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0)) {
        err = errno;
    }
    if (err != 0) {
        close(fd);
        return err;
    }
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    *fd_out = fd;
    return 0;
}

static int tcp_connect(const sluice_client *c, int *fd_out)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(c->host, c->port, &hints, &res);
    if (gai != 0) {
        sl_client_set_error("resolve %s: %s", c->host, gai_strerror(gai));
        return SL_ECLOSED;
    }
    int err = ENOENT;
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        err = connect_one(ai, c->opts.connect_timeout_ms, fd_out);
        if (err == 0) {
            break;
        }
    }
    freeaddrinfo(res);
    if (err != 0) {
        sl_client_set_error("connect %s:%s: %s", c->host, c->port, strerror(err));
        return SL_ECLOSED;
    }
    return SL_OK;
}

static void sleep_ms(uint64_t ms)
{
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Connects (again) if not connected. Serialised by send_mu, which also keeps senders off
 * the old fd while it is closed. Waits out the backoff if it ends before `deadline_ms`. */
static int reconnect(sluice_client *c, uint64_t deadline_ms)
{
    pthread_mutex_lock(&c->send_mu);
    pthread_mutex_lock(&c->mu);
    int rc = SL_OK;
    if (c->closing) {
        sl_client_set_error("client is closing");
        rc = SL_ECLOSED;
    }
    uint64_t now = sl_clock_mono_ms();
    if (rc == SL_OK && !c->connected && c->next_attempt_ms > now) {
        if (c->next_attempt_ms > deadline_ms) {
            sl_client_set_error("not connected to %s:%s; next attempt in %llu ms", c->host, c->port,
                                (unsigned long long)(c->next_attempt_ms - now));
            rc = SL_ECLOSED;
        } else {
            pthread_mutex_unlock(&c->mu);
            sleep_ms(c->next_attempt_ms - now);
            pthread_mutex_lock(&c->mu);
        }
    }
    if (rc != SL_OK || c->connected) {
        pthread_mutex_unlock(&c->mu);
        pthread_mutex_unlock(&c->send_mu);
        return rc;
    }
    struct sl_wire *old = c->wire;
    c->wire = NULL;
    pthread_mutex_unlock(&c->mu);
    sl_wire_unref(old); /* the reader may still hold it */
    int fd = -1;
    struct sl_wire *w = NULL;
    uint32_t max_inflight = 0, max_frame = 0;
    rc = tcp_connect(c, &fd);
    if (rc == SL_OK) {
        char why[CONN_MSG_MAX / 2];
        uint64_t hs_deadline = sl_clock_mono_ms() + c->opts.connect_timeout_ms;
        rc = sl_wire_new(fd, c->tls, c->tls_server_name, hs_deadline, &w, why, sizeof(why));
        if (rc != SL_OK) {
            sl_client_set_error("connect %s:%s: %s", c->host, c->port, why);
            rc = SL_ECLOSED;
        }
    }
    if (rc == SL_OK) {
        struct sl_login l = {.client_id = c->opts.client_id, .user = c->user,
                             .password = c->password, .timeout_ms = c->opts.request_timeout_ms};
        rc = sl_login_run(&l, w, &max_inflight, &max_frame);
        if (rc != SL_OK) {
            sl_wire_unref(w);
            w = NULL;
        }
    }
    pthread_mutex_lock(&c->mu);
    if (rc == SL_OK) {
        c->wire = w;
        c->connected = 1;
        c->gen++;
        c->max_inflight = max_inflight;
        c->max_frame = max_frame;
        c->backoff_ms = c->opts.reconnect_backoff_ms;
        pthread_cond_broadcast(&c->cv);
    } else {
        c->next_attempt_ms = sl_clock_mono_ms() + c->backoff_ms;
        c->backoff_ms = c->backoff_ms * 2 > c->opts.reconnect_backoff_max_ms
                            ? c->opts.reconnect_backoff_max_ms
                            : c->backoff_ms * 2;
    }
    pthread_mutex_unlock(&c->mu);
    pthread_mutex_unlock(&c->send_mu);
    return rc;
}

/* ---- the I/O thread ---- */

static void dispatch(sluice_client *c, const uint8_t *payload, uint32_t len, uint64_t gen)
{
    sl_response *resp = sl_response_unpack(payload, len);
    if (resp == NULL) {
        conn_break(c, gen, "malformed response");
        return;
    }
    struct sl_call *run = NULL;
    pthread_mutex_lock(&c->mu);
    struct sl_call *call = c->gen == gen ? pending_find(c, resp->id) : NULL;
    if (call != NULL) {
        pending_del(call);
        SL_ASSERT(c->inflight > 0);
        c->inflight--;
        int code = (int)resp->code;
        if (code < 0 || code >= SL_ERR_COUNT_) {
            code = SL_EPROTO;
        }
        call_finish_locked(c, call, code, resp->message, resp, &run);
        resp = NULL;
    } else if (c->gen == gen && c->zombies > 0) {
        c->zombies--; /* the late answer of a timed-out call frees its slot */
        c->inflight--;
    }
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    sl_response_free(resp);
    run_callbacks(run);
}

static void expire_calls(sluice_client *c)
{
    struct sl_call *run = NULL;
    uint64_t now = sl_clock_mono_ms();
    pthread_mutex_lock(&c->mu);
    struct sl_call *k = c->pending.next;
    while (k != &c->pending) {
        struct sl_call *n = k->next;
        if (k->deadline_ms <= now) {
            pending_del(k);
            c->zombies++;
            call_finish_locked(c, k, SL_EAGAIN, "request timed out", NULL, &run);
        }
        k = n;
    }
    pthread_mutex_unlock(&c->mu);
    run_callbacks(run);
}

/* Reads frames from `w` until the connection breaks or the client closes. */
static void read_loop(sluice_client *c, struct sl_wire *w, uint64_t gen, uint32_t max_frame)
{
    size_t cap = CONN_READ_CHUNK, have = 0;
    uint8_t *buf = malloc(cap);
    uint64_t last_scan = sl_clock_mono_ms();
    const char *why = buf == NULL ? "out of memory" : NULL;
    char errbuf[128];
    while (why == NULL) {
        uint64_t now = sl_clock_mono_ms();
        if (now - last_scan >= CONN_TICK_MS) {
            expire_calls(c);
            last_scan = now;
        }
        if (have == cap) {
            uint8_t *nb = realloc(buf, cap * 2);
            if (nb == NULL) {
                why = "out of memory";
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t n = 0;
        if (sl_wire_read(w, buf + have, cap - have, CONN_TICK_MS, &n, errbuf, sizeof(errbuf)) !=
            SL_OK) {
            why = errbuf;
            break;
        }
        if (n == 0) {
            continue;
        }
        have += n;
        size_t off = 0;
        for (;;) {
            uint32_t flen = 0;
            int rc = sl_frame_peek(buf + off, have - off, max_frame, &flen);
            if (rc == SL_EAGAIN || (rc == SL_OK && have - off < SL_FRAME_HEADER_BYTES + flen)) {
                break;
            }
            if (rc != SL_OK) {
                why = "bad frame from the broker";
                break;
            }
            dispatch(c, buf + off + SL_FRAME_HEADER_BYTES, flen, gen);
            off += SL_FRAME_HEADER_BYTES + flen;
        }
        memmove(buf, buf + off, have - off);
        have -= off;
        /* Shrink back after a large frame so an idle client does not hold megabytes. */
        if (have < CONN_READ_CHUNK && cap > CONN_READ_CHUNK) {
            uint8_t *nb = realloc(buf, CONN_READ_CHUNK);
            if (nb != NULL) {
                buf = nb;
                cap = CONN_READ_CHUNK;
            }
        }
    }
    free(buf);
    conn_break(c, gen, why);
}

static void *io_main(void *arg)
{
    sluice_client *c = arg;
    pthread_mutex_lock(&c->mu);
    while (!c->closing) {
        if (!c->connected) {
            pthread_cond_wait(&c->cv, &c->mu);
            continue;
        }
        struct sl_wire *w = c->wire;
        sl_wire_ref(w);
        uint64_t gen = c->gen;
        uint32_t max_frame = c->max_frame;
        pthread_mutex_unlock(&c->mu);
        read_loop(c, w, gen, max_frame);
        sl_wire_unref(w);
        pthread_mutex_lock(&c->mu);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

/* ---- sending ---- */

/* Packs `req` into a new frame buffer (returned owned). */
static int pack_frame(const sluice_client *c, const sl_request *req, uint8_t **out, size_t *out_len)
{
    size_t n = sl_request_size(req);
    if (n > c->max_frame) {
        sl_client_set_error("request of %zu bytes exceeds the broker's frame limit %u", n,
                            c->max_frame);
        return SL_ETOOBIG;
    }
    uint8_t *buf = malloc(n + SL_FRAME_HEADER_BYTES);
    if (buf == NULL) {
        sl_client_set_error("out of memory");
        return SL_ENOMEM;
    }
    sl_frame_put_header(buf, (uint32_t)n);
    size_t packed = sl_request_pack(req, buf + SL_FRAME_HEADER_BYTES);
    SL_ASSERT(packed == n);
    *out = buf;
    *out_len = n + SL_FRAME_HEADER_BYTES;
    return SL_OK;
}

/* Registers `call` (NULL: no response expected) once connected with a free in-flight slot,
 * then writes the frame. Returns SL_OK when the outcome will be delivered through the call
 * (including a write that broke the connection), or an error before registration. */
static int call_start(sluice_client *c, sl_request *req, struct sl_call *call, uint64_t deadline_ms,
                      uint64_t *pin_gen)
{
    pthread_mutex_lock(&c->mu);
    for (;;) {
        if (c->closing) {
            pthread_mutex_unlock(&c->mu);
            sl_client_set_error("client is closing");
            return SL_ECLOSED;
        }
        if (pin_gen != NULL && *pin_gen != 0 && (!c->connected || c->gen != *pin_gen)) {
            pthread_mutex_unlock(&c->mu);
            sl_client_set_error("the connection this request had to go out on is gone");
            return SL_ECLOSED;
        }
        if (!c->connected) {
            pthread_mutex_unlock(&c->mu);
            int rc = reconnect(c, deadline_ms);
            if (rc != SL_OK) {
                return rc;
            }
            pthread_mutex_lock(&c->mu);
            continue;
        }
        if (call == NULL || c->inflight < c->max_inflight) {
            break;
        }
        uint64_t now = sl_clock_mono_ms();
        if (now >= deadline_ms) {
            pthread_mutex_unlock(&c->mu);
            sl_client_set_error("timed out waiting for an in-flight slot");
            return SL_EAGAIN;
        }
        uint64_t wake = sl_clock_wall_ms() + (deadline_ms - now);
        struct timespec ts = {.tv_sec = (time_t)(wake / 1000),
                              .tv_nsec = (long)(wake % 1000) * 1000000};
        pthread_cond_timedwait(&c->cv, &c->mu, &ts);
    }
    uint64_t gen = c->gen;
    if (pin_gen != NULL) {
        *pin_gen = gen;
    }
    req->id = ++c->next_id;
    if (call != NULL) {
        call->id = req->id;
        call->gen = gen;
        call->deadline_ms = deadline_ms;
        pending_add(c, call);
        c->inflight++;
    }
    pthread_mutex_unlock(&c->mu);

    uint8_t *frame = NULL;
    size_t frame_len = 0;
    int rc = pack_frame(c, req, &frame, &frame_len);
    if (rc != SL_OK) {
        if (call != NULL) {
            pthread_mutex_lock(&c->mu);
            if (call->next != call) { /* still pending: nobody else finished it */
                pending_del(call);
                c->inflight--;
                pthread_mutex_unlock(&c->mu);
                return rc;
            }
            pthread_mutex_unlock(&c->mu);
            return SL_OK; /* the connection broke meanwhile: the call was failed */
        }
        return rc;
    }
    char why[CONN_MSG_MAX];
    pthread_mutex_lock(&c->send_mu);
    pthread_mutex_lock(&c->mu);
    int live = c->connected && c->gen == gen;
    struct sl_wire *w = c->wire; /* not freed while we hold send_mu (reconnect takes it) */
    pthread_mutex_unlock(&c->mu);
    rc = live ? sl_wire_write(w, frame, frame_len, why, sizeof(why)) : SL_OK;
    pthread_mutex_unlock(&c->send_mu);
    free(frame);
    if (rc != SL_OK) {
        conn_break(c, gen, why);
        if (call == NULL) {
            sl_client_set_error("%s", why);
            return SL_ECLOSED;
        }
    } else if (!live && call == NULL) {
        sl_client_set_error("connection lost before the send");
        return SL_ECLOSED;
    }
    return SL_OK;
}

static struct sl_call *call_new(sl_call_cb cb, void *ctx)
{
    struct sl_call *call = calloc(1, sizeof(*call));
    if (call == NULL) {
        sl_client_set_error("out of memory");
        return NULL;
    }
    call->next = call->prev = call;
    call->cb = cb;
    call->ctx = ctx;
    return call;
}

int sl_client_call_async(sluice_client *c, sl_request *req, uint32_t extra_timeout_ms,
                         sl_call_cb cb, void *ctx)
{
    return sl_client_call_async_on(c, req, extra_timeout_ms, cb, ctx, NULL);
}

int sl_client_call_async_on(sluice_client *c, sl_request *req, uint32_t extra_timeout_ms,
                            sl_call_cb cb, void *ctx, uint64_t *gen)
{
    SL_ASSERT(cb != NULL);
    struct sl_call *call = call_new(cb, ctx);
    if (call == NULL) {
        return SL_ENOMEM;
    }
    uint64_t deadline = sl_clock_mono_ms() + c->opts.request_timeout_ms + extra_timeout_ms;
    int rc = call_start(c, req, call, deadline, gen);
    if (rc != SL_OK) {
        free(call);
    }
    return rc;
}

int sl_client_send_noreply(sluice_client *c, sl_request *req)
{
    return call_start(c, req, NULL, sl_clock_mono_ms() + c->opts.request_timeout_ms, NULL);
}

/* sl_client_call; with `keep`, an error's response (its body) stays in *out too. */
static int call_sync(sluice_client *c, sl_request *req, uint32_t extra_timeout_ms,
                     sl_response **out, bool keep)
{
    *out = NULL;
    struct sl_call *call = call_new(NULL, NULL);
    if (call == NULL) {
        return SL_ENOMEM;
    }
    uint64_t deadline = sl_clock_mono_ms() + c->opts.request_timeout_ms + extra_timeout_ms;
    int rc = call_start(c, req, call, deadline, NULL);
    if (rc != SL_OK) {
        free(call);
        return rc;
    }
    pthread_mutex_lock(&c->mu);
    while (!call->done) {
        pthread_cond_wait(&c->cv, &c->mu); /* the I/O thread enforces the deadline */
    }
    pthread_mutex_unlock(&c->mu);
    rc = call->err;
    if (rc != SL_OK) {
        sl_client_set_error("%s", call->msg[0] != '\0' ? call->msg : sl_strerror(rc));
    }
    if (rc == SL_OK || keep) {
        *out = call->resp;
    } else {
        sl_response_free(call->resp);
    }
    free(call);
    return rc;
}

int sl_client_call(sluice_client *c, sl_request *req, uint32_t extra_timeout_ms, sl_response **out)
{
    return call_sync(c, req, extra_timeout_ms, out, false);
}

int sl_client_call_keep(sluice_client *c, sl_request *req, uint32_t extra_timeout_ms,
                        sl_response **out)
{
    return call_sync(c, req, extra_timeout_ms, out, true);
}

int sl_client_call_want(sluice_client *c, sl_request *req, uint32_t extra_timeout_ms,
                        Sluice__V1__Response__BodyCase want, int empty_ok, sl_response **out)
{
    int rc = sl_client_call(c, req, extra_timeout_ms, out);
    if (rc == SL_OK && (*out)->body_case != want &&
        !(empty_ok && (*out)->body_case == SLUICE__V1__RESPONSE__BODY__NOT_SET)) {
        int got = (int)(*out)->body_case;
        sl_response_free(*out);
        *out = NULL;
        sl_client_set_error("unexpected response kind %d (want %d)", got, (int)want);
        return SL_EPROTO;
    }
    SL_ASSERT(rc != SL_OK || *out != NULL);
    return rc;
}

/* ---- lifecycle ---- */

/* Splits "host:port" or "[v6]:port" into owned strings. */
static int split_host_port(const char *hp, char **host, char **port)
{
    const char *colon = strrchr(hp, ':');
    if (colon == NULL || colon == hp || colon[1] == '\0') {
        return SL_EINVAL;
    }
    const char *h = hp;
    size_t hlen = (size_t)(colon - hp);
    if (h[0] == '[' && hlen >= 2 && h[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    }
    *host = strndup(h, hlen);
    *port = strdup(colon + 1);
    if (*host == NULL || *port == NULL) {
        free(*host);
        free(*port);
        return SL_ENOMEM;
    }
    return SL_OK;
}

static void opts_defaults(struct sluice_client_opts *o)
{
    o->connect_timeout_ms = o->connect_timeout_ms ? o->connect_timeout_ms : 5000;
    o->request_timeout_ms = o->request_timeout_ms ? o->request_timeout_ms : 30000;
    o->reconnect_backoff_ms = o->reconnect_backoff_ms ? o->reconnect_backoff_ms : 100;
    o->reconnect_backoff_max_ms = o->reconnect_backoff_max_ms ? o->reconnect_backoff_max_ms : 5000;
    o->client_id = o->client_id != NULL ? o->client_id : "libsluice";
}

/* The TLS context, from the files named in the options (read once, here). */
static int tls_setup(sluice_client *c)
{
    struct sluice_client_opts *o = &c->opts;
    if (!o->tls && o->tls_ca_file == NULL && o->tls_cert_file == NULL) {
        return SL_OK;
    }
    struct sl_tls_config tc = {.role = SL_TLS_CLIENT,
                               .cert_file = o->tls_cert_file,
                               .key_file = o->tls_key_file,
                               .ca_file = o->tls_ca_file};
    char why[CONN_MSG_MAX / 2];
    int rc = sl_tls_ctx_new(&tc, &c->tls, why, sizeof(why));
    if (rc != SL_OK) {
        sl_client_set_error("TLS: %s", why);
        return rc;
    }
    c->tls_server_name = strdup(o->tls_server_name != NULL ? o->tls_server_name : c->host);
    if (c->tls_server_name == NULL) {
        sl_client_set_error("out of memory");
        return SL_ENOMEM;
    }
    /* borrowed for the call only */
    o->tls_ca_file = o->tls_cert_file = o->tls_key_file = o->tls_server_name = NULL;
    return SL_OK;
}

int sluice_client_new(const char *host_port, const struct sluice_client_opts *opts,
                      sluice_client **out)
{
    *out = NULL;
    sluice_client *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        sl_client_set_error("out of memory");
        return SL_ENOMEM;
    }
    int rc = split_host_port(host_port, &c->host, &c->port);
    if (rc != SL_OK) {
        sl_client_set_error("bad broker address '%s' (want HOST:PORT)", host_port);
        free(c);
        return rc;
    }
    if (opts != NULL) {
        c->opts = *opts;
    }
    opts_defaults(&c->opts);
    snprintf(c->client_id, sizeof(c->client_id), "%s", c->opts.client_id);
    c->opts.client_id = c->client_id;
    c->pending.next = c->pending.prev = &c->pending;
    c->backoff_ms = c->opts.reconnect_backoff_ms;
    c->max_frame = SL_FRAME_BYTES_DEFAULT;
    c->max_inflight = SL_CLIENT_INFLIGHT_DEFAULT;
    pthread_mutex_init(&c->send_mu, NULL);
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    rc = tls_setup(c);
    if (rc == SL_OK) {
        rc = sl_login_credentials(&c->opts, &c->user, &c->password);
        c->opts.user = c->opts.password = c->opts.credentials_file = NULL; /* borrowed */
    }
    if (rc == SL_OK) {
        rc = reconnect(c, sl_clock_mono_ms());
    }
    if (rc == SL_OK && pthread_create(&c->io_thread, NULL, io_main, c) != 0) {
        sl_client_set_error("pthread_create failed");
        rc = SL_ESYS;
    }
    c->io_started = rc == SL_OK;
    if (rc != SL_OK) {
        sluice_client_free(c);
        return rc;
    }
    *out = c;
    return SL_OK;
}

void sluice_client_free(sluice_client *c)
{
    if (c == NULL) {
        return;
    }
    pthread_mutex_lock(&c->mu);
    c->closing = 1;
    uint64_t gen = c->gen;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    conn_break(c, gen, "client closed"); /* wakes the reader and fails pending calls */
    if (c->io_started) {
        pthread_join(c->io_thread, NULL);
    }
    sl_wire_unref(c->wire);
    sl_tls_ctx_free(c->tls);
    free(c->tls_server_name);
    free(c->user);
    if (c->password != NULL) {
        memset(c->password, 0, strlen(c->password));
        free(c->password);
    }
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    pthread_mutex_destroy(&c->send_mu);
    free(c->host);
    free(c->port);
    free(c);
}
