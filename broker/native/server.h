/* server.h - the native protocol's network side: listener, connections,
 * framing, the send queue, and the loop that drives everything.
 *
 * Threading: one server = the main loop's thread and ring. Every callback
 * runs on that thread.
 *
 * The interface to request handlers (broker/native/handlers.h): the server
 * parses a frame into a request and calls the dispatch function it was
 * given (sl_native_dispatch), which takes the request; a handler answers now or later with sl_conn_respond. A
 * handler that answers later holds the connection with
 * sl_conn_hold/sl_conn_release; a response for a connection that closed
 * meanwhile is dropped.
 */
#ifndef SL_SERVER_H
#define SL_SERVER_H

#include "common/ring.h"
#include "proto/frame.h"

#include <stdbool.h>
#include <stdint.h>

struct sl_engine;

/* The settings the network side and the handlers use (from the broker
 * configuration; see broker/config.h for their documentation). */
struct sl_server_config {
    const char *host;
    uint32_t port;
    const char *port_file;
    uint32_t max_connections;
    uint32_t max_frame_bytes;
    uint32_t max_inflight;
    uint32_t conn_buffer_bytes;
    uint32_t idle_timeout_ms;
    uint32_t frame_timeout_ms;
    uint32_t retention_check_ms;
    uint32_t shutdown_timeout_ms;
};

/* Room in a frame for a response's fields around the batches it carries. */
#define SL_NATIVE_FRAME_SLACK 1024u

struct sl_out_buf {
    struct sl_out_buf *next;
    uint32_t cap;
    uint32_t len;
    uint32_t sent;
    uint8_t data[];
};

struct sl_conn {
    struct sl_server *srv;
    int fd;
    uint64_t id;
    struct sl_io_op recv_op;
    struct sl_io_op send_op;
    uint8_t *in;
    uint32_t in_cap;
    uint32_t in_len;
    struct sl_out_buf *out_head;
    struct sl_out_buf *out_tail;
    uint32_t requests;  /* dispatched, not yet answered (<= max_inflight) */
    uint32_t refs;      /* async handlers holding the connection */
    bool recv_busy;
    bool send_busy;
    bool hello_done;
    bool parsing;       /* inside conn_parse: no nested parse from handlers */
    bool closing;       /* no more reads; close once output drained */
    bool closed;        /* fd closed; freed when refs and ops reach 0 */
    uint64_t last_active_ms;
    uint64_t partial_since_ms; /* a frame has been arriving since (0: none) */
    struct sl_conn *prev;
    struct sl_conn *next;
};

struct sl_server;
struct sl_conn;
/* Takes `req`; answers it now or later (see above). */
typedef void (*sl_server_dispatch_fn)(struct sl_server *srv, struct sl_conn *c, sl_request *req);

struct sl_server {
    struct sl_ring *ring;
    sl_server_dispatch_fn dispatch;
    struct sl_server_config cfg;
    struct sl_engine *engine; /* borrowed */
    int listen_fd;
    uint32_t bound_port;
    struct sl_io_op accept_op;
    bool accept_busy;
    struct sl_io_op tick_op;
    bool tick_busy;
    struct sl_io_op signal_op;
    int signal_fd;
    uint8_t signal_buf[128];
    struct sl_conn *conns;
    uint32_t conn_count;
    uint64_t next_conn_id;
    bool stopping;
    bool done;
    uint64_t stop_deadline_ms;
    uint64_t next_retention_ms;
};

/* Binds and listens (port 0 = ephemeral; the bound port is written to
 * port_file when set), blocks SIGTERM/SIGINT into a signalfd. Errors:
 * SL_ESYS (bind/listen, logged with the address), SL_ENOMEM. */
int sl_server_init(struct sl_server *srv, struct sl_ring *ring, const struct sl_server_config *cfg,
                   struct sl_engine *engine, sl_server_dispatch_fn dispatch);
/* Runs until SIGTERM/SIGINT, then stops accepting, finishes in-flight
 * requests (up to shutdown_timeout_ms) and returns SL_OK. */
int sl_server_run(struct sl_server *srv);
void sl_server_fini(struct sl_server *srv);

/* Packs `resp` (borrowed) into the connection's send queue. */
void sl_conn_respond(struct sl_conn *c, const sl_response *resp);
/* Answers request `id` with an error code and message (NULL: the code's
 * text). */
void sl_conn_respond_error(struct sl_conn *c, uint64_t id, int code, const char *msg);
/* sl_conn_respond_error, then sl_conn_request_done: a request refused. */
void sl_conn_fail(struct sl_conn *c, uint64_t id, int code, const char *msg);
void sl_conn_hold(struct sl_conn *c);
void sl_conn_release(struct sl_conn *c);
/* Called by a handler when it answered (or dropped) a request, so the
 * connection may read more (bounded in-flight requests). */
void sl_conn_request_done(struct sl_conn *c);

#endif
