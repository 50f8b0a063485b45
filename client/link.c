/* link.c - one pipelined TCP connection to a broker and its I/O thread (link.h); a
 * sluice_client (conn.c) holds one per broker it talks to.
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
 * - Generations come from the client's counter (sh.gen_seq): unique across its links.
 */
#include "client/link.h"

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

struct sl_link {
    char *host;
    char *port;
    char *addr; /* "host:port" as given */
    struct sl_link_shared sh;
    pthread_mutex_t send_mu;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t io_thread;
    int io_started;
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

uint32_t sl_link_max_payload(const struct sl_link *l)
{
    return l->max_frame > CONN_ENVELOPE_BYTES ? l->max_frame - CONN_ENVELOPE_BYTES : 0;
}

/* ---- pending list (under mu) ---- */

static void pending_add(struct sl_link *l, struct sl_call *call)
{
    call->next = &l->pending;
    call->prev = l->pending.prev;
    l->pending.prev->next = call;
    l->pending.prev = call;
}

static void pending_del(struct sl_call *call)
{
    call->prev->next = call->next;
    call->next->prev = call->prev;
    call->next = call->prev = call;
}

static struct sl_call *pending_find(struct sl_link *l, uint64_t id)
{
    for (struct sl_call *k = l->pending.next; k != &l->pending; k = k->next) {
        if (k->id == id) {
            return k;
        }
    }
    return NULL;
}

/* Marks `call` (already unlinked) finished. A synchronous waiter is woken; an
 * asynchronous one is appended to `*run` so the callback runs after mu is released. */
static void call_finish_locked(struct sl_link *l, struct sl_call *call, int err, const char *msg,
                               sl_response *resp, struct sl_call **run)
{
    call->err = err;
    call->resp = resp;
    snprintf(call->msg, sizeof(call->msg), "%s", msg != NULL ? msg : "");
    call->done = 1;
    if (call->cb == NULL) {
        pthread_cond_broadcast(&l->cv);
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
static void conn_break(struct sl_link *l, uint64_t gen, const char *why)
{
    struct sl_call *run = NULL;
    char msg[CONN_MSG_MAX];
    snprintf(msg, sizeof(msg), "connection to %s:%s lost: %s", l->host, l->port, why);
    pthread_mutex_lock(&l->mu);
    if (l->connected && l->gen == gen) {
        l->connected = 0;
        sl_wire_shutdown(l->wire);
        while (l->pending.next != &l->pending) {
            struct sl_call *k = l->pending.next;
            pending_del(k);
            call_finish_locked(l, k, SL_ECLOSED, msg, NULL, &run);
        }
        l->inflight = 0;
        l->zombies = 0;
        l->next_attempt_ms = 0; /* the first reconnect is immediate */
        pthread_cond_broadcast(&l->cv);
    }
    pthread_mutex_unlock(&l->mu);
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

static int tcp_connect(const struct sl_link *l, int *fd_out)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(l->host, l->port, &hints, &res);
    if (gai != 0) {
        sl_client_set_error("resolve %s: %s", l->host, gai_strerror(gai));
        return SL_ECLOSED;
    }
    int err = ENOENT;
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        err = connect_one(ai, l->sh.opts->connect_timeout_ms, fd_out);
        if (err == 0) {
            break;
        }
    }
    freeaddrinfo(res);
    if (err != 0) {
        sl_client_set_error("connect %s:%s: %s", l->host, l->port, strerror(err));
        return SL_ECLOSED;
    }
    return SL_OK;
}

/* Connects (again) if not connected. Serialised by send_mu, which also keeps senders off
 * the old fd while it is closed. Waits out the backoff if it ends before `deadline_ms`. */
static int reconnect(struct sl_link *l, uint64_t deadline_ms)
{
    pthread_mutex_lock(&l->send_mu);
    pthread_mutex_lock(&l->mu);
    int rc = SL_OK;
    if (l->closing) {
        sl_client_set_error("client is closing");
        rc = SL_ECLOSED;
    }
    uint64_t now = sl_clock_mono_ms();
    if (rc == SL_OK && !l->connected && l->next_attempt_ms > now) {
        if (l->next_attempt_ms > deadline_ms) {
            sl_client_set_error("not connected to %s:%s; next attempt in %llu ms", l->host, l->port,
                                (unsigned long long)(l->next_attempt_ms - now));
            rc = SL_ECLOSED;
        } else {
            pthread_mutex_unlock(&l->mu);
            sl_clock_sleep_ms(l->next_attempt_ms - now);
            pthread_mutex_lock(&l->mu);
        }
    }
    if (rc != SL_OK || l->connected) {
        pthread_mutex_unlock(&l->mu);
        pthread_mutex_unlock(&l->send_mu);
        return rc;
    }
    struct sl_wire *old = l->wire;
    l->wire = NULL;
    pthread_mutex_unlock(&l->mu);
    sl_wire_unref(old); /* the reader may still hold it */
    int fd = -1;
    struct sl_wire *w = NULL;
    uint32_t max_inflight = 0, max_frame = 0;
    rc = tcp_connect(l, &fd);
    if (rc == SL_OK) {
        char why[CONN_MSG_MAX / 2];
        uint64_t hs_deadline = sl_clock_mono_ms() + l->sh.opts->connect_timeout_ms;
        const char *name = l->sh.tls_server_name != NULL ? l->sh.tls_server_name : l->host;
        rc = sl_wire_new(fd, l->sh.tls, name, hs_deadline, &w, why, sizeof(why));
        if (rc != SL_OK) {
            sl_client_set_error("connect %s:%s: %s", l->host, l->port, why);
            rc = SL_ECLOSED;
        }
    }
    if (rc == SL_OK) {
        struct sl_login login = {.client_id = l->sh.opts->client_id, .user = l->sh.user,
                                 .password = l->sh.password,
                                 .timeout_ms = l->sh.opts->request_timeout_ms};
        rc = sl_login_run(&login, w, &max_inflight, &max_frame);
        if (rc != SL_OK) {
            sl_wire_unref(w);
            w = NULL;
        }
    }
    pthread_mutex_lock(&l->mu);
    if (rc == SL_OK) {
        l->wire = w;
        l->connected = 1;
        l->gen = __atomic_add_fetch(l->sh.gen_seq, 1, __ATOMIC_RELAXED);
        l->max_inflight = max_inflight;
        l->max_frame = max_frame;
        l->backoff_ms = l->sh.opts->reconnect_backoff_ms;
        pthread_cond_broadcast(&l->cv);
    } else {
        l->next_attempt_ms = sl_clock_mono_ms() + l->backoff_ms;
        l->backoff_ms = l->backoff_ms * 2 > l->sh.opts->reconnect_backoff_max_ms
                            ? l->sh.opts->reconnect_backoff_max_ms
                            : l->backoff_ms * 2;
    }
    pthread_mutex_unlock(&l->mu);
    pthread_mutex_unlock(&l->send_mu);
    return rc;
}

/* ---- the I/O thread ---- */

static void dispatch(struct sl_link *l, const uint8_t *payload, uint32_t len, uint64_t gen)
{
    sl_response *resp = sl_response_unpack(payload, len);
    if (resp == NULL) {
        conn_break(l, gen, "malformed response");
        return;
    }
    struct sl_call *run = NULL;
    pthread_mutex_lock(&l->mu);
    struct sl_call *call = l->gen == gen ? pending_find(l, resp->id) : NULL;
    if (call != NULL) {
        pending_del(call);
        SL_ASSERT(l->inflight > 0);
        l->inflight--;
        int code = (int)resp->code;
        if (code < 0 || code >= SL_ERR_COUNT_) {
            code = SL_EPROTO;
        }
        call_finish_locked(l, call, code, resp->message, resp, &run);
        resp = NULL;
    } else if (l->gen == gen && l->zombies > 0) {
        l->zombies--; /* the late answer of a timed-out call frees its slot */
        l->inflight--;
    }
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
    sl_response_free(resp);
    run_callbacks(run);
}

static void expire_calls(struct sl_link *l)
{
    struct sl_call *run = NULL;
    uint64_t now = sl_clock_mono_ms();
    pthread_mutex_lock(&l->mu);
    struct sl_call *k = l->pending.next;
    while (k != &l->pending) {
        struct sl_call *n = k->next;
        if (k->deadline_ms <= now) {
            pending_del(k);
            l->zombies++;
            call_finish_locked(l, k, SL_EAGAIN, "request timed out", NULL, &run);
        }
        k = n;
    }
    pthread_mutex_unlock(&l->mu);
    run_callbacks(run);
}

/* Reads frames from `w` until the connection breaks or the client closes. */
static void read_loop(struct sl_link *l, struct sl_wire *w, uint64_t gen, uint32_t max_frame)
{
    size_t cap = CONN_READ_CHUNK, have = 0;
    uint8_t *buf = malloc(cap);
    uint64_t last_scan = sl_clock_mono_ms();
    const char *why = buf == NULL ? "out of memory" : NULL;
    char errbuf[128];
    while (why == NULL) {
        uint64_t now = sl_clock_mono_ms();
        if (now - last_scan >= CONN_TICK_MS) {
            expire_calls(l);
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
            dispatch(l, buf + off + SL_FRAME_HEADER_BYTES, flen, gen);
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
    conn_break(l, gen, why);
}

static void *io_main(void *arg)
{
    struct sl_link *l = arg;
    pthread_mutex_lock(&l->mu);
    while (!l->closing) {
        if (!l->connected) {
            pthread_cond_wait(&l->cv, &l->mu);
            continue;
        }
        struct sl_wire *w = l->wire;
        sl_wire_ref(w);
        uint64_t gen = l->gen;
        uint32_t max_frame = l->max_frame;
        pthread_mutex_unlock(&l->mu);
        read_loop(l, w, gen, max_frame);
        sl_wire_unref(w);
        pthread_mutex_lock(&l->mu);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

/* ---- sending ---- */

/* Packs `req` into a new frame buffer (returned owned). */
static int pack_frame(const struct sl_link *l, const sl_request *req, uint8_t **out, size_t *out_len)
{
    size_t n = sl_request_size(req);
    if (n > l->max_frame) {
        sl_client_set_error("request of %zu bytes exceeds the broker's frame limit %u", n,
                            l->max_frame);
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
static int call_start(struct sl_link *l, sl_request *req, struct sl_call *call, uint64_t deadline_ms,
                      uint64_t *pin_gen)
{
    pthread_mutex_lock(&l->mu);
    for (;;) {
        if (l->closing) {
            pthread_mutex_unlock(&l->mu);
            sl_client_set_error("client is closing");
            return SL_ECLOSED;
        }
        if (pin_gen != NULL && *pin_gen != 0 && (!l->connected || l->gen != *pin_gen)) {
            pthread_mutex_unlock(&l->mu);
            sl_client_set_error("the connection this request had to go out on is gone");
            return SL_ECLOSED;
        }
        if (!l->connected) {
            pthread_mutex_unlock(&l->mu);
            int rc = reconnect(l, deadline_ms);
            if (rc != SL_OK) {
                return rc;
            }
            pthread_mutex_lock(&l->mu);
            continue;
        }
        if (call == NULL || l->inflight < l->max_inflight) {
            break;
        }
        uint64_t now = sl_clock_mono_ms();
        if (now >= deadline_ms) {
            pthread_mutex_unlock(&l->mu);
            sl_client_set_error("timed out waiting for an in-flight slot");
            return SL_EAGAIN;
        }
        uint64_t wake = sl_clock_wall_ms() + (deadline_ms - now);
        struct timespec ts = {.tv_sec = (time_t)(wake / 1000),
                              .tv_nsec = (long)(wake % 1000) * 1000000};
        pthread_cond_timedwait(&l->cv, &l->mu, &ts);
    }
    uint64_t gen = l->gen;
    if (pin_gen != NULL) {
        *pin_gen = gen;
    }
    req->id = ++l->next_id;
    if (call != NULL) {
        call->id = req->id;
        call->gen = gen;
        call->deadline_ms = deadline_ms;
        pending_add(l, call);
        l->inflight++;
    }
    pthread_mutex_unlock(&l->mu);

    uint8_t *frame = NULL;
    size_t frame_len = 0;
    int rc = pack_frame(l, req, &frame, &frame_len);
    if (rc != SL_OK) {
        if (call != NULL) {
            pthread_mutex_lock(&l->mu);
            if (call->next != call) { /* still pending: nobody else finished it */
                pending_del(call);
                l->inflight--;
                pthread_mutex_unlock(&l->mu);
                return rc;
            }
            pthread_mutex_unlock(&l->mu);
            return SL_OK; /* the connection broke meanwhile: the call was failed */
        }
        return rc;
    }
    char why[CONN_MSG_MAX];
    pthread_mutex_lock(&l->send_mu);
    pthread_mutex_lock(&l->mu);
    int live = l->connected && l->gen == gen;
    struct sl_wire *w = l->wire; /* not freed while we hold send_mu (reconnect takes it) */
    pthread_mutex_unlock(&l->mu);
    rc = live ? sl_wire_write(w, frame, frame_len, why, sizeof(why)) : SL_OK;
    pthread_mutex_unlock(&l->send_mu);
    free(frame);
    if (rc != SL_OK) {
        conn_break(l, gen, why);
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

int sl_link_call_async(struct sl_link *l, sl_request *req, uint64_t deadline_ms, sl_call_cb cb,
                       void *ctx, uint64_t *gen)
{
    SL_ASSERT(cb != NULL);
    struct sl_call *call = call_new(cb, ctx);
    if (call == NULL) {
        return SL_ENOMEM;
    }
    int rc = call_start(l, req, call, deadline_ms, gen);
    if (rc != SL_OK) {
        free(call);
    }
    return rc;
}

int sl_link_send_noreply(struct sl_link *l, sl_request *req, uint64_t deadline_ms)
{
    return call_start(l, req, NULL, deadline_ms, NULL);
}

int sl_link_call_sync(struct sl_link *l, sl_request *req, uint64_t deadline_ms,
                      sl_response **out, bool keep)
{
    *out = NULL;
    struct sl_call *call = call_new(NULL, NULL);
    if (call == NULL) {
        return SL_ENOMEM;
    }
    int rc = call_start(l, req, call, deadline_ms, NULL);
    if (rc != SL_OK) {
        free(call);
        return rc;
    }
    pthread_mutex_lock(&l->mu);
    while (!call->done) {
        pthread_cond_wait(&l->cv, &l->mu); /* the I/O thread enforces the deadline */
    }
    pthread_mutex_unlock(&l->mu);
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

/* ---- lifecycle ---- */

int sl_link_connect(struct sl_link *l, uint64_t deadline_ms)
{
    return reconnect(l, deadline_ms);
}

bool sl_link_connected(struct sl_link *l)
{
    pthread_mutex_lock(&l->mu);
    bool up = l->connected;
    pthread_mutex_unlock(&l->mu);
    return up;
}

const char *sl_link_addr(const struct sl_link *l)
{
    return l->addr;
}

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
        *host = *port = NULL;
        return SL_ENOMEM;
    }
    return SL_OK;
}

int sl_link_new(const struct sl_link_shared *sh, const char *host_port, struct sl_link **out)
{
    *out = NULL;
    struct sl_link *l = calloc(1, sizeof(*l));
    if (l == NULL) {
        sl_client_set_error("out of memory");
        return SL_ENOMEM;
    }
    int rc = split_host_port(host_port, &l->host, &l->port);
    l->addr = rc == SL_OK ? strdup(host_port) : NULL;
    if (rc != SL_OK || l->addr == NULL) {
        if (rc == SL_EINVAL) {
            sl_client_set_error("bad broker address '%s' (want HOST:PORT)", host_port);
        } else {
            sl_client_set_error("out of memory");
        }
        free(l->host);
        free(l->port);
        free(l);
        return rc != SL_OK ? rc : SL_ENOMEM;
    }
    l->sh = *sh;
    l->pending.next = l->pending.prev = &l->pending;
    l->backoff_ms = sh->opts->reconnect_backoff_ms;
    l->max_frame = SL_FRAME_BYTES_DEFAULT;
    l->max_inflight = SL_CLIENT_INFLIGHT_DEFAULT;
    pthread_mutex_init(&l->send_mu, NULL);
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv, NULL);
    if (pthread_create(&l->io_thread, NULL, io_main, l) != 0) {
        sl_client_set_error("pthread_create failed");
        sl_link_free(l);
        return SL_ESYS;
    }
    l->io_started = 1;
    *out = l;
    return SL_OK;
}

void sl_link_free(struct sl_link *l)
{
    if (l == NULL) {
        return;
    }
    pthread_mutex_lock(&l->mu);
    l->closing = 1;
    uint64_t gen = l->gen;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
    conn_break(l, gen, "client closed"); /* wakes the reader and fails pending calls */
    if (l->io_started) {
        pthread_join(l->io_thread, NULL);
    }
    SL_ASSERT(l->pending.next == &l->pending);
    sl_wire_unref(l->wire);
    pthread_cond_destroy(&l->cv);
    pthread_mutex_destroy(&l->mu);
    pthread_mutex_destroy(&l->send_mu);
    free(l->host);
    free(l->port);
    free(l->addr);
    free(l);
}
