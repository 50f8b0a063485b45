/* call.h - one HTTP request inside the front-end, from its arrival to its
 * answer; what the route handlers (ops.c, and the AWS APIs) use.
 *
 * A call holds its connection until it is answered, so the HTTP session
 * (owned by the connection) outlives it; the request itself is borrowed
 * from the session until the answer (or until the peer resets an h2 stream:
 * then the answer is dropped), so a handler that goes asynchronous copies
 * what it needs first.
 */
#ifndef SL_API_CALL_H
#define SL_API_CALL_H

#include "broker/api/api.h"
#include "broker/http/http.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Routes, for the answer counters. */
enum sl_api_route {
    SL_ROUTE_OPS = 0,
    SL_ROUTE_METRICS,
    SL_ROUTE_KINESIS,
    SL_ROUTE_SQS,
    SL_ROUTE_CONSOLE, /* /ui and /api/v1 */
    SL_ROUTE_EVENTBRIDGE,
    SL_ROUTE_OTHER,
    SL_ROUTE_SNS, /* Query protocol: SigV4 service sns, or an SNS Action */
    SL_ROUTE_COUNT_
};

#define SL_API_PRINCIPAL_MAX 64u /* = SL_SCRAM_NAME_MAX: an auth file name */

struct sl_api_call {
    struct sl_api *api;
    struct sl_conn *conn;
    struct sl_http_session *session;
    const struct sl_http_request *req; /* borrowed; NULL once the peer reset the stream */
    uint32_t id;
    enum sl_api_route route;
    uint64_t start_ns;
    /* Access (access.c), when auth is on: who signed the request, what the
     * action needs (enum sl_acl_op, set by the API's dispatch) and whether
     * an ACL decision was made - a success answer without one is not sent. */
    char principal[SL_API_PRINCIPAL_MAX + 1];
    const char *action; /* static: "PutRecord", "SendMessage", ... */
    uint32_t acl_ops;
    bool acl_checked;
    /* An internal call (sl_api_internal_call): the caller's connection (not HTTP), no
     * session, the principal set by the caller, the answer handed to `internal_done`; it
     * owns its body. */
    sl_api_internal_done internal_done;
    void *internal_ctx;
    void *internal_body;
};

/* A connection's HTTP state (broker/api/server.c makes it at the first
 * bytes): its session and its unanswered calls. */
struct sl_api_call_link;
struct sl_api_conn {
    struct sl_api *api;
    struct sl_conn *conn;
    struct sl_http_session *session;
    struct sl_api_call_link *calls; /* unanswered, for sl_api_calls_reset */
};

/* A call for `req` on the connection: counted and holding it until
 * sl_api_reply. NULL without memory. */
struct sl_api_call *sl_api_call_new(struct sl_api_conn *ac, const struct sl_http_request *req);
/* The peer reset stream `id`: its call's request is gone (answer dropped). */
void sl_api_calls_reset(struct sl_api_conn *ac, uint32_t id);

/* The value of header `name` (lower-case), or NULL. */
const char *sl_api_header(const struct sl_http_request *req, const char *name);

/* Answers the call and frees it. `body` is copied. */
void sl_api_reply(struct sl_api_call *call, int status, const char *content_type,
                  const void *body, size_t len);
/* The same with up to SL_API_EXTRA_HEADERS_MAX more headers (borrowed). */
#define SL_API_EXTRA_HEADERS_MAX 8u
void sl_api_reply_headers(struct sl_api_call *call, int status, const char *content_type,
                          const struct sl_http_header *extra, uint32_t n_extra, const void *body,
                          size_t len);

#endif
