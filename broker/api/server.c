/* server.c - the HTTP front-end on a broker/net connection: one HTTP
 * session per connection (created at its first bytes), requests routed to
 * the operations endpoints or the AWS-compatible APIs, answers counted.
 *
 * Requests are counted with the loop (sl_conn_request_begin/_done), so the
 * loop's back-pressure, idle and slowloris rules hold for HTTP as for the
 * native protocol; the session adds its own (pipelining depth, h2 streams).
 */
#include "broker/api/api.h"

#include "broker/api/call.h"
#include "broker/api/eb.h"
#include "broker/api/history.h"
#include "broker/api/kinesis.h"
#include "broker/api/ops.h"
#include "broker/api/rest.h"
#include "broker/api/sns.h"
#include "broker/api/sqs.h"
#include "broker/api/ui.h"
#include "common/assert.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#define API_STREAM_OUT_BYTES_MAX (1u << 20) /* per streaming answer (event streams) */
#define KINESIS_PREFIX "Kinesis_20131202."
_Static_assert(SL_ROUTE_COUNT_ <= sizeof(((struct sl_api *)0)->latency) /
                                       sizeof(((struct sl_api *)0)->latency[0]),
               "struct sl_api holds a counter per route");
#define SQS_PREFIX "AmazonSQS."
#define EB_PREFIX "AWSEvents."
#define SL_API_CONSOLE_PATH_MAX 1024u /* a stream name percent-encoded, and more */

static void reply_error(struct sl_api_call *call, int status, const char *msg)
{
    char body[512];
    int n = snprintf(body, sizeof(body), "{\"message\":\"%s\"}\n", msg);
    sl_api_reply(call, status, "application/json", body, (size_t)n);
}

/* The web console: its files under /ui, its JSON API under /api/v1. */
static bool console_route(struct sl_api_call *call, const struct sl_http_request *req, bool get)
{
    char path[SL_API_CONSOLE_PATH_MAX];
    size_t plen = strcspn(req->path, "?");
    bool ui = strncmp(req->path, "/ui", 3) == 0 && (plen == 3 || req->path[3] == '/');
    bool rest = strncmp(req->path, "/api/v1/", 8) == 0;
    if ((!ui && !rest) || (ui && !call->api->cfg.ui)) {
        return false;
    }
    call->route = SL_ROUTE_CONSOLE;
    if (plen >= sizeof(path)) {
        reply_error(call, 414, "the path is too long");
        return true;
    }
    memcpy(path, req->path, plen);
    path[plen] = '\0';
    if (ui && !get) {
        reply_error(call, 405, "use GET");
    } else if (ui) {
        sl_ui_handle(call, path);
    } else {
        sl_rest_handle(call, path);
    }
    return true;
}

/* Which front-end answers: by path for the operations endpoints, by
 * X-Amz-Target for the AWS JSON protocols. */
static void route(struct sl_api_call *call, const struct sl_http_request *req)
{
    char path[64];
    size_t plen = strcspn(req->path, "?");
    snprintf(path, sizeof(path), "%.*s", (int)(plen < sizeof(path) ? plen : sizeof(path) - 1),
             req->path);
    bool get = strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
    if (strcmp(path, "/healthz") == 0 || strcmp(path, "/readyz") == 0 ||
        strcmp(path, "/metrics") == 0) {
        call->route = strcmp(path, "/metrics") == 0 ? SL_ROUTE_METRICS : SL_ROUTE_OPS;
        if (!get) {
            reply_error(call, 405, "use GET");
            return;
        }
        sl_ops_handle(call, path);
        return;
    }
    if (console_route(call, req, get)) {
        return;
    }
    const char *target = sl_api_header(req, "x-amz-target");
    const char *ctype = sl_api_header(req, "content-type");
    bool post = strcmp(req->method, "POST") == 0;
    if (post && target != NULL && strncmp(target, KINESIS_PREFIX, strlen(KINESIS_PREFIX)) == 0) {
        call->route = SL_ROUTE_KINESIS;
        sl_kinesis_handle(call, target + strlen(KINESIS_PREFIX));
        return;
    }
    if (post && target != NULL && strncmp(target, SQS_PREFIX, strlen(SQS_PREFIX)) == 0) {
        call->route = SL_ROUTE_SQS;
        sl_sqs_handle(call, target + strlen(SQS_PREFIX));
        return;
    }
    if (target == NULL && sl_sns_claims(req)) { /* before SQS: both use Action=... forms */
        call->route = SL_ROUTE_SNS;
        sl_sns_handle(call);
        return;
    }
    if (post && target != NULL && strncmp(target, EB_PREFIX, strlen(EB_PREFIX)) == 0) {
        call->route = SL_ROUTE_EVENTBRIDGE;
        sl_eb_handle(call, target + strlen(EB_PREFIX));
        return;
    }
    if (post && target == NULL && ctype != NULL &&
        strncasecmp(ctype, "application/x-www-form-urlencoded", 33) == 0) {
        call->route = SL_ROUTE_SQS; /* the Query protocol: Action=... in the body */
        sl_sqs_handle(call, NULL);
        return;
    }
    call->route = SL_ROUTE_OTHER;
    reply_error(call, 404,
                "no such endpoint: GET /healthz, /readyz, /metrics, /ui/ (the console), "
                "/api/v1/...; POST with X-Amz-Target "
                "Kinesis_20131202.*, AmazonSQS.* or AWSEvents.*, or an SQS or SNS Query (Action=...)");
}

static void on_request(void *ctx, struct sl_http_session *s, const struct sl_http_request *req)
{
    struct sl_api_conn *ac = ctx;
    struct sl_api_call *call = sl_api_call_new(ac, req);
    if (call == NULL) {
        static const char msg[] = "{\"message\":\"out of memory\"}";
        sl_http_respond(s, req->id, 503, NULL, 0, msg, sizeof(msg) - 1);
        return;
    }
    route(call, req);
}

/* The peer reset an h2 stream: its request is gone; the answer will be
 * dropped when it comes. */
static void on_stream_closed(void *ctx, struct sl_http_session *s, uint32_t id)
{
    (void)s;
    sl_api_calls_reset(ctx, id);
}

static int on_out(void *ctx, const void *data, size_t len)
{
    struct sl_api_conn *ac = ctx;
    int rc = sl_conn_write(ac->conn, data, len);
    return rc == SL_ECLOSED ? SL_OK : rc; /* the peer is gone: nothing to send to */
}

static struct sl_api_conn *conn_state(struct sl_conn *c)
{
    if (c->proto_state != NULL) {
        return c->proto_state;
    }
    struct sl_api *api = c->ctx;
    struct sl_api_conn *ac = calloc(1, sizeof(*ac));
    if (ac == NULL) {
        return NULL;
    }
    struct sl_http_limits lim = {.header_bytes_max = api->cfg.header_bytes_max,
                                 .body_bytes_max = api->cfg.body_bytes_max,
                                 .requests_max = api->cfg.max_inflight,
                                 .out_bytes_max = API_STREAM_OUT_BYTES_MAX};
    struct sl_http_callbacks cb = {.on_request = on_request, .out = on_out,
                                   .on_stream_closed = on_stream_closed};
    if (sl_http_session_new(&lim, &cb, ac, &ac->session) != SL_OK) {
        free(ac);
        return NULL;
    }
    ac->api = api;
    ac->conn = c;
    c->proto_state = ac;
    return ac;
}

static size_t api_recv(struct sl_conn *c, const uint8_t *data, size_t len)
{
    struct sl_api_conn *ac = conn_state(c);
    if (ac == NULL) {
        sl_conn_close_after_send(c);
        return len;
    }
    int rc = sl_http_session_feed(ac->session, data, len);
    if (rc != SL_OK) {
        sl_debug("http", "conn %llu: %s: closing after the answers owed",
                 (unsigned long long)c->id, sl_strerror(rc));
        sl_conn_close_after_send(c);
    } else if (sl_http_session_want_close(ac->session)) {
        sl_conn_close_after_send(c);
    }
    return len; /* the session keeps what it needs */
}

static bool api_partial(const struct sl_conn *c)
{
    const struct sl_api_conn *ac = c->proto_state;
    return ac != NULL && sl_http_session_partial(ac->session);
}

static bool api_paused(const struct sl_conn *c)
{
    const struct sl_api_conn *ac = c->proto_state;
    return ac != NULL && !sl_http_session_want_read(ac->session);
}

static void api_free(struct sl_conn *c)
{
    struct sl_api_conn *ac = c->proto_state;
    if (ac == NULL) {
        return;
    }
    SL_ASSERT(ac->calls == NULL); /* every call holds the connection */
    sl_http_session_free(ac->session);
    free(ac);
    c->proto_state = NULL;
}

static void api_refuse(int fd, int code, const char *why)
{
    char buf[256];
    int n = snprintf(buf, sizeof(buf),
                     "HTTP/1.1 %s\r\nconnection: close\r\n"
                     "content-type: text/plain\r\ncontent-length: %zu\r\n\r\n%s\n",
                     code == SL_ELIMIT ? "503 Service Unavailable" : "400 Bad Request",
                     strlen(why) + 1, why);
    ssize_t w = send(fd, buf, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)w;
}

const struct sl_proto sl_api_proto = {
    .name = "http",
    .recv = api_recv,
    .partial = api_partial,
    .paused = api_paused,
    .free = api_free,
    .refuse = api_refuse,
};

void sl_api_tick(struct sl_api *api, uint64_t now_ms)
{
    sl_history_tick(api->history, api->engine, now_ms);
    sl_sns_tick(api, now_ms);
    sl_eb_tick(api);
}
