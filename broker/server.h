/* server.h - the broker's network side: listener, connections, framing, the
 * send queue, and the loop that drives everything.
 *
 * Threading: one server = one loop thread = one ring (multi-core ownership
 * arrives with issue #5). Every callback runs on that thread.
 *
 * The interface to request handlers (broker/handler.c): the server parses a
 * frame into a request and calls sl_handle_request, which takes the request;
 * a handler answers now or later with sl_conn_respond. A handler that
 * answers later holds the connection with sl_conn_hold/sl_conn_release; a
 * response for a connection that closed meanwhile is dropped.
 */
#ifndef SL_SERVER_H
#define SL_SERVER_H

#include "common/ring.h"
#include "proto/frame.h"

#include <stdbool.h>
#include <stdint.h>

struct sl_catalog;
struct sl_shard;
struct sl_zctx;

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
    uint32_t fetch_wait_max_ms;
    uint32_t batch_bytes_max;
    uint32_t retention_check_ms;
    uint32_t shutdown_timeout_ms;
    bool auto_create_streams; /* a produce to an unknown stream creates it */
    uint32_t dedup_window_ms; /* sluice.dedup_id window; 0 = off */
    uint32_t default_shards;  /* shards of an auto-created stream */
};

/* All fetch buffers of the broker together stay below this: with it, memory
 * does not grow with connections x max_inflight x max_frame_bytes. */
#define SL_FETCH_MEMORY_MAX (512ull << 20)

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

struct sl_server {
    struct sl_ring *ring;
    struct sl_server_config cfg;
    struct sl_catalog *catalog;
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
    uint64_t fetch_bytes; /* fetch buffers allocated now (<= SL_FETCH_MEMORY_MAX) */
    /* handler scratch: decompression for routing checks */
    struct sl_zctx *zctx;
    uint8_t *scratch;
    uint32_t scratch_cap;
};

/* Binds and listens (port 0 = ephemeral; the bound port is written to
 * port_file when set), blocks SIGTERM/SIGINT into a signalfd. Errors:
 * SL_ESYS (bind/listen, logged with the address), SL_ENOMEM. */
int sl_server_init(struct sl_server *srv, struct sl_ring *ring, const struct sl_server_config *cfg,
                   struct sl_catalog *catalog);
/* Runs until SIGTERM/SIGINT, then stops accepting, finishes in-flight
 * requests (up to shutdown_timeout_ms) and returns SL_OK. */
int sl_server_run(struct sl_server *srv);
void sl_server_fini(struct sl_server *srv);

/* Packs `resp` (borrowed) into the connection's send queue. */
void sl_conn_respond(struct sl_conn *c, const sl_response *resp);
/* Answers request `id` with an error code and message. */
void sl_conn_respond_error(struct sl_conn *c, uint64_t id, int code, const char *msg);
void sl_conn_hold(struct sl_conn *c);
void sl_conn_release(struct sl_conn *c);
/* Called by a handler when it answered (or dropped) a request, so the
 * connection may read more (bounded in-flight requests). */
void sl_conn_request_done(struct sl_conn *c);

/* Makes the decompression scratch hold the records of batch `h` (a zstd
 * batch; uncompressed ones need none). Bounded: at most 4 x batch_bytes_max
 * (a small frame must not expand into unbounded memory). Errors: SL_ETOOBIG,
 * SL_ENOMEM. */
int sl_server_scratch_reserve(struct sl_server *srv, uint32_t codec, uint32_t records_len);

/* handler.c */
void sl_handle_request(struct sl_server *srv, struct sl_conn *c, sl_request *req);
void sl_handle_tick(struct sl_server *srv, uint64_t now_ms);
void sl_handle_stop(struct sl_server *srv); /* answer parked fetches at shutdown */
void sl_handle_shard_listener(void *ctx, struct sl_shard *s);

#endif
