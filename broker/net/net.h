/* net.h - the broker's network loop, shared by every front-end: listeners,
 * connections (receive buffer, send queue, back-pressure, timeouts),
 * signals, the tick, graceful shutdown. A front-end plugs in as a struct
 * sl_proto per listener; the loop knows no wire format.
 *
 * Threading: everything runs on the main loop's thread and ring, except
 * where the loop is spread (sl_net_spread): then connections of a listener
 * whose protocol can cut its messages (proto->split) are accepted here and
 * handed round-robin to the loops, each served by one: its socket, TLS,
 * buffers and proto->split run on that loop's thread, and each whole
 * message goes to the main loop over a message ring (common/chan.h), where
 * proto->recv gets it on the connection's proxy - a struct sl_conn whose
 * sl_conn_* calls (answers, request counts, pins, closing) go back to the
 * loop the same way. So a protocol's handlers see one kind of connection,
 * on the main loop, whichever loop reads its socket.
 *
 * Ownership and lifetimes: a connection is owned by the loop. A protocol
 * that answers later holds it (sl_conn_hold/sl_conn_release); once the peer
 * is gone, writes to it are dropped and it is freed when the last hold and
 * I/O are gone (proto->free runs then). Received bytes are borrowed by
 * proto->recv for the call, or until unpinned (sl_conn_pin).
 *
 * Requests: a protocol counts the requests it dispatched with
 * sl_conn_request_begin/_done. At most `max_inflight` (per listener) are
 * unanswered; beyond that the connection is not read (back-pressure: TCP's
 * window does the rest). An idle connection is one with no request and
 * nothing to send.
 */
#ifndef SL_NET_H
#define SL_NET_H

#include "common/ring.h"
#include "common/tls.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sl_conn;
struct sl_net;
struct sl_listener;
struct sl_out_buf;
struct sl_in_blk; /* a receive buffer (net.c) */

#define SL_NET_LISTENERS_MAX 4u
/* Pinned receive buffers a connection may have replaced (sl_conn_pin) and
 * not yet seen unpinned; at this many it is not read until one is. Each is
 * pinned by a request in flight, so there are also at most max_inflight of
 * them: a connection's receive memory is at most (min(this, max_inflight)
 * + 2 + 4 spares) buffers of max(conn_buffer_bytes, its largest message) - no more
 * than the unpacked copies the requests in flight held before zero-copy.
 * 64 leaves a producer's usual pipeline (5 batches per shard, several
 * shards, each batch over conn_buffer_bytes its own buffer) unthrottled. */
#define SL_NET_IN_RETIRED_MAX 64u

struct sl_proto {
    const char *name; /* in logs and metrics: "native", "http" */
    /* Received bytes: use what forms whole messages and return how many
     * were used; the rest stays buffered and is offered again with more
     * (sl_conn_need grows the buffer for one large message). */
    size_t (*recv)(struct sl_conn *c, const uint8_t *data, size_t len);
    /* A message has started arriving but is not complete (slowloris
     * timeout). NULL: bytes left unused by recv. */
    bool (*partial)(const struct sl_conn *c);
    /* Do not read now (beyond max_inflight). NULL: requests >= max_inflight. */
    bool (*paused)(const struct sl_conn *c);
    /* The connection's state is freed (no hold, no I/O left). NULL-able. */
    void (*free)(struct sl_conn *c);
    /* A best-effort plaintext error on `fd` before it closes: SL_ELIMIT
     * (max_connections reached), SL_EPROTO (plaintext on a TLS listener). */
    void (*refuse)(int fd, int code, const char *why);
    /* NULL: connections are served on the main loop only. Else, on another
     * loop's thread (sl_net_spread): the length of the whole message at
     * `data` in *msg_len (SL_OK); SL_EAGAIN when it is not all received
     * (after sl_conn_need); any other code when the bytes cannot be a
     * message - it has answered (sl_conn_write) and closed (e.g.
     * sl_conn_close_after_send). It may read c->proto_flags (the main
     * loop's, as of the last answer sent) and the listener's ctx's
     * settings that never change, nothing else of the broker. */
    int (*split)(struct sl_conn *c, const uint8_t *data, size_t len, uint32_t *msg_len);
};

struct sl_listener_config {
    const char *host;      /* IPv4 address */
    uint32_t port;         /* 0: ephemeral */
    uint32_t max_inflight; /* unanswered requests per connection */
    const struct sl_proto *proto;
    void *ctx; /* the protocol's, for every connection of this listener */
    /* NULL: plaintext. Else every connection speaks TLS (borrowed; replaced
     * by sl_net_set_tls; must outlive the listener or its replacement). */
    struct sl_tls_ctx *tls;
};

struct sl_net_config {
    uint32_t max_connections;    /* over all listeners */
    uint32_t conn_buffer_bytes;  /* receive buffer; grown for one large message */
    uint32_t idle_timeout_ms;
    uint32_t request_timeout_ms; /* a request arriving for longer is closed (slowloris) */
    uint32_t shutdown_timeout_ms;
};

/* The engine's side of the loop. */
struct sl_net_hooks {
    void (*tick)(void *ctx, uint64_t now_ms); /* every 50 ms */
    void (*stop)(void *ctx);                  /* shutdown begins: answer parked requests */
    void (*turn)(void *ctx);                  /* top of each loop turn (reaping) */
    void *ctx;
    void (*reload)(void *reload_ctx); /* SIGHUP; NULL: ignored */
    void *reload_ctx;
};

/* A connection as the protocols see it; the fields after `proto_state` are
 * the loop's. */
struct sl_conn {
    uint64_t id;
    void *ctx;          /* the listener's ctx */
    void *proto_state;  /* the protocol's per-connection state */
    uint64_t proto_flags; /* a protocol's small per-connection flags */
    uint32_t requests;  /* dispatched, not yet answered */
    /* the loop's */
    struct sl_net *net;
    struct sl_listener *l;
    int fd;
    struct sl_io_op recv_op;
    struct sl_io_op send_op;
    struct sl_in_blk *in_blk;   /* the receive buffer bytes arrive in */
    uint8_t *in;                /* its bytes: [in_off, in_len) not yet used */
    uint32_t in_cap;
    uint32_t in_off;
    uint32_t in_len;
    uint32_t in_need;           /* bytes the message at in_off needs (sl_conn_need) */
    uint32_t in_retired;        /* replaced buffers still pinned */
    struct sl_in_blk *in_spare; /* free buffers kept for reuse (a list) */
    uint32_t in_spares;
    struct sl_out_buf *out_head; /* plaintext to send (TLS: not yet encrypted) */
    struct sl_out_buf *out_tail;
    struct sl_tls *tls;          /* NULL: plaintext */
    uint8_t *tls_in;             /* ciphertext being received */
    uint8_t *tls_out;            /* ciphertext being sent: [tls_out_sent, tls_out_len) */
    uint32_t tls_out_len;
    uint32_t tls_out_sent;
    bool tls_started;            /* the first bytes were a TLS handshake record */
    bool tls_named;              /* served on another loop: its peer's name was sent */
    uint32_t refs;
    bool recv_busy;
    bool send_busy;
    bool parsing;  /* inside recv: no nested delivery */
    bool closing;  /* no more reads; close once output drained */
    bool closed;   /* fd closed; freed when refs and ops reach 0 */
    uint64_t last_active_ms;
    uint64_t partial_since_ms;
    struct sl_conn *prev;
    struct sl_conn *next;
    struct sl_conn_px *px; /* main loop: a proxy of a connection another loop serves */
    struct sl_conn *twin;  /* served on another loop: its proxy (named in messages) */
};

/* Blocks SIGTERM/SIGINT/SIGHUP into a signalfd. Errors: SL_ENOMEM, SL_ESYS. */
int sl_net_init(struct sl_net **out, struct sl_ring *ring, const struct sl_net_config *cfg,
                const struct sl_net_hooks *hooks);
/* Binds and listens. Errors: SL_EINVAL (host), SL_ESYS (bind/listen,
 * logged with the address and the fix), SL_ELIMIT (SL_NET_LISTENERS_MAX). */
int sl_net_listen(struct sl_net *n, const struct sl_listener_config *lc, uint32_t *bound_port);
/* Runs connections on `loops` loops (1: only here; at most SL_NET_LOOPS_MAX):
 * rings[i] is loop i's (rings[0] the main loop's, unused), `call` runs
 * fn(arg) on loop i's thread and waits (the caller's threads: the
 * workers). Call after the listeners, before sl_net_run. A connection
 * stays on its loop for its life. Errors: SL_ENOMEM, SL_ESYS, SL_EINVAL. */
#define SL_NET_LOOPS_MAX 64u
typedef void (*sl_net_call_fn)(void *call_ctx, uint32_t loop, void (*fn)(void *arg),
                               void *arg);
int sl_net_spread(struct sl_net *n, uint32_t loops, struct sl_ring *const *rings,
                  sl_net_call_fn call, void *call_ctx);
/* Open connections served by loop `loop` (0: the main loop). */
uint32_t sl_net_loop_conn_count(const struct sl_net *n, uint32_t loop);
/* Loops connections are spread over (1: not spread). */
uint32_t sl_net_loop_count(const struct sl_net *n);
/* Writes `port` to `path` (NULL or "": nothing) through a rename, so a
 * reader never sees a partial file. Errors: SL_ESYS with errno kept. */
int sl_net_write_port_file(const char *path, uint32_t port);
/* Runs until SIGTERM/SIGINT, then stops accepting, calls hooks.stop,
 * lets in-flight requests finish (up to shutdown_timeout_ms) and returns. */
int sl_net_run(struct sl_net *n);
bool sl_net_stopping(const struct sl_net *n);
/* Listeners using `old` accept new connections with `fresh` from now on
 * (certificate reload); open connections keep their session. */
void sl_net_set_tls(struct sl_net *n, const struct sl_tls_ctx *old, struct sl_tls_ctx *fresh);
/* Connections open now on listeners whose protocol is named `proto` (NULL:
 * all). */
uint32_t sl_net_conn_count(const struct sl_net *n, const char *proto);
void sl_net_fini(struct sl_net *n); /* NULL-safe */

void sl_conn_hold(struct sl_conn *c);
void sl_conn_release(struct sl_conn *c);
void sl_conn_request_begin(struct sl_conn *c);
/* A request was answered (or dropped): the connection may read more. */
void sl_conn_request_done(struct sl_conn *c);
/* Room for `len` bytes at the end of the send queue (filled by the caller,
 * then sl_conn_commit), or NULL (closed, or no memory: the connection is
 * closed). */
uint8_t *sl_conn_reserve(struct sl_conn *c, uint32_t len);
void sl_conn_commit(struct sl_conn *c, uint32_t len);
/* Copies `len` bytes to the send queue. Errors: SL_ECLOSED, SL_ENOMEM. */
int sl_conn_write(struct sl_conn *c, const void *data, size_t len);
/* No more reads; close once every request is answered and everything
 * queued is sent. */
void sl_conn_close_after_send(struct sl_conn *c);
/* The next message (the first byte recv leaves unused) needs `len` bytes
 * buffered (<= the protocol's limit); the loop makes room once recv returns
 * (if it cannot, out of memory, it closes the connection). Returns SL_OK. */
int sl_conn_need(struct sl_conn *c, uint32_t len);
/* Zero-copy: pins the receive buffer holding the bytes proto->recv was
 * given (call only inside recv). Until the matching sl_conn_unpin those
 * bytes - used or not - stay where they are, unchanged and allocated: the
 * loop neither compacts, reuses nor frees a pinned buffer, but moves the
 * unused bytes to another buffer when it needs room. So a request may
 * reference its bytes in place until the engine has copied them. Unpin
 * before sl_conn_request_done (a connection paused by
 * SL_NET_IN_RETIRED_MAX resumes there), before the last release. */
struct sl_in_blk *sl_conn_pin(struct sl_conn *c);
void sl_conn_unpin(struct sl_conn *c, struct sl_in_blk *blk);
/* Whether `p` (len bytes) lies in the buffer blk (for assertions). */
bool sl_conn_pin_holds(const struct sl_in_blk *blk, const void *p, size_t len);
bool sl_conn_is_closed(const struct sl_conn *c);
/* The common name of the client's verified certificate ("" without TLS or
 * without a verified certificate). */
void sl_conn_tls_peer(const struct sl_conn *c, char *buf, size_t cap);
/* The peer's IP address as text ("?" when unknown or closed). */
void sl_conn_peer_ip(const struct sl_conn *c, char *buf, size_t cap);

#endif
