/* link.h - one pipelined TCP connection to one broker and its I/O thread (libsluice
 * internal). A client (conn.c) holds one link per broker it talks to: the bootstrap
 * list's, and in a cluster each shard leader's (#14), opened when first needed.
 *
 * A link reconnects by itself on the next call after it broke (with backoff). Its
 * connection generations come from one counter shared by the client's links, so a
 * generation names one connection of one link (a producer pins a shard's batches in flight
 * to one, whichever broker it is).
 *
 * Ownership: `req` is borrowed for a call (packed before it returns); a response handed to
 * a caller or callback is owned by it (sl_response_free). Thread-safe, but sl_link_free.
 */
#ifndef SL_CLIENT_LINK_H
#define SL_CLIENT_LINK_H

#include "client/conn.h"

#include <stdbool.h>
#include <stdint.h>

struct sl_tls_ctx;
struct sl_link;

/* What every link of a client shares (borrowed by each link for its life). */
struct sl_link_shared {
    const struct sluice_client_opts *opts; /* defaults filled in */
    struct sl_tls_ctx *tls;                /* NULL: plaintext */
    const char *tls_server_name;           /* NULL: the link's host */
    const char *user;                      /* NULL: no credentials */
    const char *password;
    uint64_t *gen_seq; /* the client's connection generations (atomic) */
};

/* A link to `host_port` (borrowed), not connected yet, its I/O thread started (it waits for
 * the first connection). Errors: SL_EINVAL (not HOST:PORT), SL_ENOMEM, SL_ESYS (thread). */
int sl_link_new(const struct sl_link_shared *sh, const char *host_port, struct sl_link **out);

/* Connects unless connected, waiting out a backoff that ends before `deadline_ms`.
 * Errors: SL_ECLOSED (cannot connect, or closing), SL_EAUTH, SL_EUNSUPPORTED (Hello). */
int sl_link_connect(struct sl_link *l, uint64_t deadline_ms);

/* Whether it is connected now. */
bool sl_link_connected(struct sl_link *l);

/* "host:port" as given at sl_link_new. */
const char *sl_link_addr(const struct sl_link *l);

/* The broker's frame limit minus room for the envelope (the last Hello's). */
uint32_t sl_link_max_payload(const struct sl_link *l);

/* Sends `req`; `cb` runs exactly once unless this returns an error. *gen: as
 * sl_client_call_async_on (NULL or 0: any connection of this link). Errors: as
 * sl_client_call_async. */
int sl_link_call_async(struct sl_link *l, sl_request *req, uint64_t deadline_ms, sl_call_cb cb,
                       void *ctx, uint64_t *gen);

/* Sends a request that gets no response. */
int sl_link_send_noreply(struct sl_link *l, sl_request *req, uint64_t deadline_ms);

/* Sends `req` and waits for its answer; with `keep` an error's response stays in *out. */
int sl_link_call_sync(struct sl_link *l, sl_request *req, uint64_t deadline_ms,
                      sl_response **out, bool keep);

/* Breaks the connection, fails calls in flight (their callbacks run), joins the I/O thread
 * and frees the link. NULL-safe. No other call on it may run or follow. */
void sl_link_free(struct sl_link *l);

#endif /* SL_CLIENT_LINK_H */
