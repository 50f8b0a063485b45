/* call.c - a request's life in the HTTP front-end (see call.h): made when
 * it arrives, counted and holding its connection, answered once (which
 * counts the answer and its latency for /metrics and lets the connection
 * read more). Separate from server.c (sessions and routing) so that the
 * route handlers and the router do not include each other.
 *
 * Threading: the main loop.
 */
#include "broker/api/call.h"

#include "common/assert.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"

#include <stdlib.h>
#include <string.h>

struct sl_api_call_link {
    struct sl_api_call call; /* first: what handlers get is the link */
    struct sl_api_call_link *next;
};

const char *sl_api_header(const struct sl_http_request *req, const char *name)
{
    for (uint32_t i = 0; req != NULL && i < req->n_headers; i++) {
        if (strcmp(req->headers[i].name, name) == 0) {
            return req->headers[i].value;
        }
    }
    return NULL;
}

static void unlink_call(struct sl_api_conn *ac, struct sl_api_call *call)
{
    struct sl_api_call_link **pp = &ac->calls;
    while (*pp != NULL && &(*pp)->call != call) {
        pp = &(*pp)->next;
    }
    if (*pp != NULL) {
        *pp = (*pp)->next;
    }
}

static int status_class(int status)
{
    return status >= 100 && status < 600 ? status / 100 : 0;
}

/* The safety net under the ACLs (access.c): with auth on, an AWS API
 * answer of success needs an access decision; one without is a bug, and
 * its content is not sent. */
static bool undecided(const struct sl_api_call *call, int status)
{
    bool aws = call->route == SL_ROUTE_KINESIS || call->route == SL_ROUTE_SQS ||
               call->route == SL_ROUTE_SNS || call->route == SL_ROUTE_EVENTBRIDGE;
    if (!aws || call->api->auth == NULL || status >= 300 || call->acl_checked) {
        return false;
    }
    sl_error("http", "BUG: %s answered without an access decision; answering 500 instead",
             call->action != NULL ? call->action : "an AWS action");
    return true;
}

void sl_api_reply(struct sl_api_call *call, int status, const char *content_type,
                  const void *body, size_t len)
{
    sl_api_reply_headers(call, status, content_type, NULL, 0, body, len);
}

void sl_api_reply_headers(struct sl_api_call *call, int status, const char *content_type,
                          const struct sl_http_header *extra, uint32_t n_extra, const void *body,
                          size_t len)
{
    if (undecided(call, status)) {
        static const char msg[] =
            "{\"__type\":\"InternalFailure\",\"message\":\"no access decision\"}";
        status = 500;
        content_type = "application/json";
        body = msg;
        len = sizeof(msg) - 1;
    }
    if (call->internal_done != NULL) {
        call->internal_done(call->internal_ctx, status, content_type, body, len);
        call->api->answers[call->route][status_class(status)]++;
        sl_latency_record(&call->api->latency[call->route], sl_clock_mono_ns() - call->start_ns);
        free(call->internal_body);
        free(call); /* the first member of its allocation (internal.c) */
        return;
    }
    struct sl_conn *c = call->conn;
    struct sl_api_conn *ac = c->proto_state;
    struct sl_http_header h[1 + SL_API_EXTRA_HEADERS_MAX];
    h[0] = (struct sl_http_header){"content-type", 12, content_type, (uint32_t)strlen(content_type)};
    SL_ASSERT(n_extra <= SL_API_EXTRA_HEADERS_MAX);
    for (uint32_t i = 0; i < n_extra; i++) {
        h[1 + i] = extra[i];
    }
    if (call->req != NULL && !sl_conn_is_closed(c)) {
        int rc = sl_http_respond(call->session, call->id, status, h, 1 + n_extra, body, len);
        if (rc != SL_OK && rc != SL_ENOTFOUND) {
            sl_warn("http", "conn %llu: cannot answer request %u: %s", (unsigned long long)c->id,
                    call->id, sl_strerror(rc));
        }
    }
    call->api->answers[call->route][status_class(status)]++;
    sl_latency_record(&call->api->latency[call->route], sl_clock_mono_ns() - call->start_ns);
    unlink_call(ac, call);
    free(call);
    sl_conn_request_done(c);
    if (!sl_conn_is_closed(c) && sl_http_session_want_close(ac->session)) {
        sl_conn_close_after_send(c);
    }
    sl_conn_release(c);
}

struct sl_api_call *sl_api_call_new(struct sl_api_conn *ac, const struct sl_http_request *req)
{
    struct sl_api_call_link *l = calloc(1, sizeof(*l));
    if (l == NULL) {
        return NULL;
    }
    sl_conn_request_begin(ac->conn);
    sl_conn_hold(ac->conn);
    l->call = (struct sl_api_call){.api = ac->api, .conn = ac->conn, .session = ac->session,
                                   .req = req, .id = req->id, .route = SL_ROUTE_OTHER,
                                   .start_ns = sl_clock_mono_ns()};
    l->next = ac->calls;
    ac->calls = l;
    return &l->call;
}

void sl_api_calls_reset(struct sl_api_conn *ac, uint32_t id)
{
    for (struct sl_api_call_link *l = ac->calls; l != NULL; l = l->next) {
        if (l->call.id == id) {
            l->call.req = NULL;
        }
    }
}
