/* net_int.h - the network loop's private structs, shared by net.c (one
 * loop: listeners, connections, the tick) and net_relay.c (connections
 * served on other loops). Included by nothing else. */
#ifndef SL_NET_INT_H
#define SL_NET_INT_H

#include "broker/net/net.h"
#include "common/chan.h"
#include "common/ring.h"

#include <stdbool.h>
#include <stdint.h>

#define OUT_BUF_MIN          (16u << 10)
#define TICK_NS              (50u * 1000000u)
#define LISTEN_BACKLOG       1024
#define TLS_IN_BYTES         (32u << 10) /* ciphertext per recv: two full records */
#define TLS_OUT_BYTES        (64u << 10) /* ciphertext per send; bounds the session's output */
#define TLS_HANDSHAKE_RECORD 0x16        /* a TLS record's first byte when a client starts */

struct sl_out_buf {
    struct sl_out_buf *next;
    uint32_t cap;
    uint32_t len;
    uint32_t sent;
    uint8_t data[];
};

struct sl_in_blk {
    uint32_t pins;
    uint32_t cap;
    bool retired;           /* no longer the connection's `in`: freed at the last unpin */
    struct sl_in_blk *next; /* in the connection's spares */
    uint8_t data[];
};

/* Free receive buffers a connection keeps for reuse, of any size up to its
 * largest message: a pipeline of messages larger than conn_buffer_bytes
 * then rotates a few buffers instead of a malloc (and fresh pages) per
 * message. Those above conn_buffer_bytes are freed once it is idle. */
#define IN_SPARES_MAX 4u

/* Room wanted at the end of a pinned buffer before a recv: below it the
 * unused bytes move to a fresh buffer (a quarter of conn_buffer_bytes keeps
 * recvs large and buffer switches rare). */
#define IN_ROOM_DIV 4u

struct sl_listener {
    struct sl_net *net;
    struct sl_listener_config cfg;
    int fd;
    uint32_t port;
    struct sl_io_op accept_op;
    bool accept_busy;
    bool accept_later; /* out of descriptors: accept again at the next tick */
};

struct sl_net_loop; /* another loop's side of the relay (net_relay.c) */

struct sl_net {
    struct sl_ring *ring;
    struct sl_net_config cfg;
    struct sl_net_hooks hooks;
    struct sl_listener listeners[SL_NET_LISTENERS_MAX];
    uint32_t n_listeners;
    struct sl_io_op tick_op;
    struct sl_io_op signal_op;
    int signal_fd;
    uint8_t signal_buf[128];
    struct sl_conn *conns;
    uint32_t conn_count;
    uint64_t next_conn_id;
    bool stopping;
    bool done;
    uint64_t stop_deadline_ms;
    /* The relay (net_relay.c). The main loop's net: loops[1..n_loops-1]
     * serve connections (n_loops 1: none). Another loop's net: `loop` set,
     * no listeners, no signals, no hooks; only its thread touches it. */
    struct sl_net_loop *loop;
    struct sl_net_loop **loops;
    uint32_t n_loops;
    uint32_t next_loop; /* round robin over the loops for the next connection */
    int home_efd;       /* wakes the main loop (-1: no relay) */
    struct sl_io_op home_op;
    uint64_t home_val;
    bool home_busy;
    struct sl_deferred home_kick; /* end of the main loop's tick: flush, wake loops */
    struct sl_conn *dirty;        /* proxies with output to hand over */
};

/* Main loop only: what the main loop keeps of a connection another loop
 * serves (its proxy, a struct sl_conn with fd -1 and px set). */
struct sl_conn_px {
    struct sl_conn *real; /* on loop `loop`; named in messages, never touched here */
    uint32_t loop;
    struct sl_in_blk *deliver_blk; /* the message being delivered (pinned by the loop) */
    uint32_t deliver_pins;         /* sl_conn_pin calls during that delivery */
    uint32_t begun;                /* sl_conn_request_begin calls during that delivery */
    bool gone;                     /* the loop closed it: nothing more will come */
    bool dirty;                    /* on net->dirty */
    uint64_t flags_sent;           /* proto_flags as the loop last heard of them */
    struct sl_conn *dirty_next;
    char ip[48];
    char tls_peer[256];
};

/* net.c's, for net_relay.c */
void sl_net_conn_close(struct sl_conn *c);
void sl_net_conn_try_recv(struct sl_conn *c);
void sl_net_conn_try_send(struct sl_conn *c);
void sl_net_conn_link(struct sl_net *n, struct sl_conn *c);
bool sl_net_conn_quiet(const struct sl_conn *c);
void sl_net_expire(struct sl_net *n, uint64_t now_ms);
void sl_net_out_free(struct sl_out_buf *b);

/* net_relay.c's, for net.c */
/* The loop a new connection of listener l goes to (0: here). */
uint32_t sl_relay_pick(struct sl_net *n, const struct sl_listener *l);
/* Hands a connection made here (fd, buffers, TLS session) to loop i. */
void sl_relay_handoff(struct sl_net *n, uint32_t loop, struct sl_conn *real);
/* Another loop's connection: its received bytes cut into messages and sent on. */
size_t sl_relay_recv(struct sl_conn *c, const uint8_t *data, size_t len);
/* Another loop's connection closed (tell its proxy). */
void sl_relay_closed(struct sl_conn *c);
/* A proxy's side of the sl_conn_* calls. */
void sl_relay_px_send(struct sl_conn *c);
void sl_relay_px_done(struct sl_conn *c);
void sl_relay_px_close(struct sl_conn *c, bool after_send);
struct sl_in_blk *sl_relay_px_pin(struct sl_conn *c);
void sl_relay_px_unpin(struct sl_conn *c, struct sl_in_blk *b);
bool sl_relay_px_free(struct sl_conn *c); /* true: freed */
/* Shutdown begins: every loop stops reading and closes its drained connections. */
void sl_relay_stop(struct sl_net *n);
void sl_relay_fini(struct sl_net *n);

#endif
