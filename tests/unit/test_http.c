/* test_http.c - broker/http: the HTTP/1.1 + HTTP/2 server session.
 *
 * HTTP/1.x cases feed raw request bytes and compare the response bytes: GET,
 * POST, pipelining answered out of order, chunked bodies, 100-continue,
 * Connection: close, HTTP/1.0, HEAD, streaming (chunked) answers, the 400 /
 * 431 / 413 errors, requests_max back-pressure and byte-at-a-time feeding.
 * HTTP/2 cases drive the session with a real nghttp2 client session (this
 * test is the one place besides broker/http/h2.c that includes nghttp2.h):
 * prior knowledge, concurrent streams, a 2 MiB answer through a 64 KiB
 * flow-control window, a streaming answer with SL_EAGAIN/on_drain, a client
 * RST_STREAM (on_stream_closed), h2c Upgrade, garbage after the preface.
 */
#include "broker/http/http.h"
#include "common/error.h"
#include "test.h"

#include <nghttp2/nghttp2.h>
#include <stdbool.h>
#include <stdint.h>

#define APP_REQS_MAX 64
#define APP_OUT_MAX (8u << 20)

struct app_req {
    uint32_t id;
    uint8_t version;
    char method[16], path[128], host[64];
    uint32_t body_len, n_headers;
    char body[256];
};

struct app {
    struct sl_http_session *s;
    uint8_t *out;
    size_t out_len;
    struct app_req reqs[APP_REQS_MAX];
    int n_reqs;
    bool auto_answer;
    uint32_t closed[16];
    int n_closed, n_drain, n_respond_failed;
};

static int app_out(void *ctx, const void *data, size_t len)
{
    struct app *a = ctx;
    if (a->out_len + len > APP_OUT_MAX) {
        return SL_ENOMEM;
    }
    memcpy(a->out + a->out_len, data, len);
    a->out_len += len;
    return SL_OK;
}

static void app_on_request(void *ctx, struct sl_http_session *s, const struct sl_http_request *r)
{
    struct app *a = ctx;
    if (a->n_reqs < APP_REQS_MAX) {
        struct app_req *q = &a->reqs[a->n_reqs];
        memset(q, 0, sizeof(*q));
        q->id = r->id;
        q->version = r->version;
        snprintf(q->method, sizeof(q->method), "%s", r->method);
        snprintf(q->path, sizeof(q->path), "%s", r->path);
        q->body_len = r->body_len;
        q->n_headers = r->n_headers;
        memcpy(q->body, r->body, r->body_len < sizeof(q->body) - 1 ? r->body_len : 255);
        for (uint32_t i = 0; i < r->n_headers; i++) {
            if (strcmp(r->headers[i].name, "host") == 0) {
                snprintf(q->host, sizeof(q->host), "%s", r->headers[i].value);
            }
        }
    }
    a->n_reqs++;
    if (a->auto_answer) {
        char body[160];
        int n = snprintf(body, sizeof(body), "echo %s", r->path);
        struct sl_http_header h = {"content-type", 12, "text/plain", 10};
        if (sl_http_respond(s, r->id, 200, &h, 1, body, (size_t)n) != SL_OK) {
            a->n_respond_failed++;
        }
    }
}

static void app_on_closed(void *ctx, struct sl_http_session *s, uint32_t id)
{
    (void)s;
    struct app *a = ctx;
    if (a->n_closed < 16) {
        a->closed[a->n_closed++] = id;
    }
}

static void app_on_drain(void *ctx, struct sl_http_session *s, uint32_t id)
{
    (void)s;
    (void)id;
    ((struct app *)ctx)->n_drain++;
}

static const struct sl_http_callbacks APP_CB = {app_on_request, app_out, app_on_closed,
                                                app_on_drain};

static struct sl_http_limits limits(void)
{
    return (struct sl_http_limits){.header_bytes_max = 8192, .body_bytes_max = 1 << 20,
                                   .requests_max = 8, .out_bytes_max = 64 << 10};
}

static struct app *app_new(const struct sl_http_limits *lim, bool auto_answer)
{
    struct app *a = calloc(1, sizeof(*a));
    a->out = malloc(APP_OUT_MAX + 1);
    a->auto_answer = auto_answer;
    if (sl_http_session_new(lim, &APP_CB, a, &a->s) != SL_OK) {
        abort();
    }
    return a;
}

static void app_free(struct app *a)
{
    sl_http_session_free(a->s);
    free(a->out);
    free(a);
}

static int feed_str(struct app *a, const char *str)
{
    return sl_http_session_feed(a->s, (const uint8_t *)str, strlen(str));
}

static const char *out_str(struct app *a)
{
    a->out[a->out_len] = 0;
    return (const char *)a->out;
}

static int count_str(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(hay, needle); p != NULL; p = strstr(p + 1, needle)) {
        n++;
    }
    return n;
}

/* ---- HTTP/1.x ---- */

TEST(simple_get)
{
    struct sl_http_limits lim = limits();
    struct app *a = app_new(&lim, true);
    CHECK_EQ(feed_str(a, "GET /a?x=1 HTTP/1.1\r\nHost: example\r\nX-Y: z\r\n\r\n"), SL_OK);
    CHECK_EQ(a->n_reqs, 1);
    CHECK_EQ(a->reqs[0].id, 1);
    CHECK_EQ(a->reqs[0].version, 11);
    CHECK(strcmp(a->reqs[0].method, "GET") == 0);
    CHECK(strcmp(a->reqs[0].path, "/a?x=1") == 0);
    CHECK(strcmp(a->reqs[0].host, "example") == 0);
    CHECK_EQ(a->reqs[0].n_headers, 2);
    CHECK(strcmp(out_str(a), "HTTP/1.1 200 OK\r\nserver: sluiced\r\ncontent-type: text/plain\r\n"
                             "content-length: 11\r\n\r\necho /a?x=1") == 0);
    CHECK(sl_http_session_want_read(a->s));
    CHECK(!sl_http_session_want_close(a->s));
    CHECK(!sl_http_session_partial(a->s));
    app_free(a);
}

TEST(post_with_body)
{
    struct sl_http_limits lim = limits();
    struct app *a = app_new(&lim, false);
    CHECK_EQ(feed_str(a, "POST /p HTTP/1.1\r\nContent-Length: 11\r\n\r\nhello"), SL_OK);
    CHECK_EQ(a->n_reqs, 0);
    CHECK(sl_http_session_partial(a->s));
    CHECK_EQ(feed_str(a, " world"), SL_OK);
    CHECK_EQ(a->n_reqs, 1);
    CHECK(strcmp(a->reqs[0].method, "POST") == 0);
    CHECK_EQ(a->reqs[0].body_len, 11);
    CHECK(strcmp(a->reqs[0].body, "hello world") == 0);
    CHECK_EQ(sl_http_respond(a->s, 1, 201, NULL, 0, "ok", 2), SL_OK);
    CHECK(strstr(out_str(a), "HTTP/1.1 201 Created\r\n") == (const char *)a->out);
    CHECK_EQ(sl_http_respond(a->s, 1, 200, NULL, 0, "x", 1), SL_ENOTFOUND);
    app_free(a);
}

TEST(pipelined_answered_in_reverse)
{
    struct sl_http_limits lim = limits();
    struct app *a = app_new(&lim, false);
    CHECK_EQ(feed_str(a, "GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\nGET /3 HTTP/1.1\r\n\r\n"),
             SL_OK);
    CHECK_EQ(a->n_reqs, 3);
    CHECK_EQ(sl_http_respond(a->s, 3, 200, NULL, 0, "three", 5), SL_OK);
    CHECK_EQ(sl_http_respond(a->s, 2, 200, NULL, 0, "two", 3), SL_OK);
    CHECK_EQ(a->out_len, 0);
    CHECK_EQ(sl_http_respond(a->s, 1, 200, NULL, 0, "one", 3), SL_OK);
    const char *o = out_str(a);
    const char *p1 = strstr(o, "one"), *p2 = strstr(o, "two"), *p3 = strstr(o, "three");
    CHECK(p1 != NULL && p2 != NULL && p3 != NULL && p1 < p2 && p2 < p3);
    CHECK_EQ(count_str(o, "HTTP/1.1 200 OK"), 3);
    app_free(a);
}

TEST(chunked_body)
{
    struct sl_http_limits lim = limits();
    struct app *a = app_new(&lim, true);
    CHECK_EQ(feed_str(a, "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                         "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nTrailer: x\r\n\r\n"),
             SL_OK);
    CHECK_EQ(a->n_reqs, 1);
    CHECK_EQ(a->reqs[0].body_len, 11);
    CHECK(strcmp(a->reqs[0].body, "hello world") == 0);
    app_free(a);
}

TEST(expect_100_continue)
{
    struct sl_http_limits lim = limits();
    struct app *a = app_new(&lim, true);
    CHECK_EQ(feed_str(a, "PUT /e HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n"),
             SL_OK);
    CHECK(strcmp(out_str(a), "HTTP/1.1 100 Continue\r\n\r\n") == 0);
    CHECK_EQ(feed_str(a, "abc"), SL_OK);
    CHECK_EQ(a->n_reqs, 1);
    CHECK(strstr(out_str(a), "\r\n\r\nHTTP/1.1 200 OK\r\n") != NULL);
    app_free(a);
}

TEST(connection_close)
{
    struct sl_http_limits lim = limits();
    struct app *a = app_new(&lim, false);
    CHECK_EQ(feed_str(a, "GET / HTTP/1.1\r\nConnection: close\r\n\r\nGET /ignored HTTP/1.1\r\n\r\n"),
             SL_OK);
    CHECK_EQ(a->n_reqs, 1);
    CHECK(!sl_http_session_want_read(a->s));
    CHECK(!sl_http_session_want_close(a->s));
    CHECK_EQ(sl_http_respond(a->s, 1, 200, NULL, 0, "x", 1), SL_OK);
    CHECK(strstr(out_str(a), "connection: close\r\n") != NULL);
    CHECK(sl_http_session_want_close(a->s));
    CHECK_EQ(feed_str(a, "GET / HTTP/1.1\r\n\r\n"), SL_ECLOSED);
    app_free(a);
}

TEST(http_1_0)
{
    struct sl_http_limits lim = limits();
    struct app *a = app_new(&lim, true);
    CHECK_EQ(feed_str(a, "GET /old HTTP/1.0\r\n\r\n"), SL_OK);
    CHECK_EQ(a->reqs[0].version, 10);
    CHECK(strstr(out_str(a), "connection: close\r\n") != NULL);
    CHECK(sl_http_session_want_close(a->s));
    app_free(a);
    a = app_new(&lim, true);
    CHECK_EQ(feed_str(a, "GET /ka HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"), SL_OK);
    CHECK(strstr(out_str(a), "connection: keep-alive\r\n") != NULL);
    CHECK(!sl_http_session_want_close(a->s));
    CHECK(sl_http_session_want_read(a->s));
    app_free(a);
}

TEST(head_has_no_body)
{
    struct sl_http_limits lim = limits();
    struct app *a = app_new(&lim, true);
    CHECK_EQ(feed_str(a, "HEAD /h HTTP/1.1\r\n\r\n"), SL_OK);
    CHECK(strcmp(out_str(a), "HTTP/1.1 200 OK\r\nserver: sluiced\r\ncontent-type: text/plain\r\n"
                             "content-length: 7\r\n\r\n") == 0);
    app_free(a);
}

TEST(streaming_chunked_answer)
{
    struct sl_http_limits lim = limits();
    struct app *a = app_new(&lim, false);
    CHECK_EQ(feed_str(a, "GET /s HTTP/1.1\r\n\r\n"), SL_OK);
    CHECK_EQ(sl_http_respond_begin(a->s, 1, 200, NULL, 0), SL_OK);
    CHECK_EQ(sl_http_respond_data(a->s, 1, "hello", 5), SL_OK);
    CHECK_EQ(sl_http_respond_data(a->s, 1, "0123456789abcdefX", 17), SL_OK);
    CHECK_EQ(sl_http_respond_end(a->s, 1), SL_OK);
    CHECK(strcmp(out_str(a), "HTTP/1.1 200 OK\r\nserver: sluiced\r\ntransfer-encoding: chunked\r\n"
                             "\r\n5\r\nhello\r\n11\r\n0123456789abcdefX\r\n0\r\n\r\n") == 0);
    CHECK_EQ(sl_http_respond_end(a->s, 1), SL_ENOTFOUND);
    app_free(a);
}

TEST(bad_answer_arguments)
{
    struct sl_http_limits lim = limits();
    struct app *a = app_new(&lim, false);
    CHECK_EQ(feed_str(a, "GET / HTTP/1.1\r\n\r\n"), SL_OK);
    struct sl_http_header bad[] = {{"X-Upper", 7, "v", 1}, {"x-crlf", 6, "a\r\nb", 4},
                                   {"content-length", 14, "1", 1}};
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(sl_http_respond(a->s, 1, 200, &bad[i], 1, "", 0), SL_EINVAL);
    }
    CHECK_EQ(sl_http_respond(a->s, 1, 99, NULL, 0, "", 0), SL_EINVAL);
    CHECK_EQ(sl_http_respond(a->s, 7, 200, NULL, 0, "", 0), SL_ENOTFOUND);
    CHECK_EQ(a->out_len, 0);
    app_free(a);
}

TEST(malformed_request_line_400)
{
    struct sl_http_limits lim = limits();
    struct app *a = app_new(&lim, true);
    CHECK_EQ(feed_str(a, "GET / HTTP/1.1x\r\n\r\n"), SL_EPROTO);
    CHECK_EQ(a->n_reqs, 0);
    CHECK(strncmp(out_str(a), "HTTP/1.1 400 Bad Request\r\n", 26) == 0);
    CHECK(strstr(out_str(a), "connection: close\r\ncontent-type") == NULL);
    CHECK(strstr(out_str(a), "content-type: text/plain\r\n") != NULL);
    CHECK(sl_http_session_want_close(a->s));
    CHECK(!sl_http_session_want_read(a->s));
    app_free(a);
    /* An error after an unanswered request goes out after that answer. */
    a = app_new(&lim, false);
    CHECK_EQ(feed_str(a, "GET /ok HTTP/1.1\r\n\r\nGET / HTTP/1.1x\r\n\r\n"), SL_EPROTO);
    CHECK_EQ(a->n_reqs, 1);
    CHECK_EQ(a->out_len, 0);
    CHECK(!sl_http_session_want_close(a->s));
    CHECK_EQ(sl_http_respond(a->s, 1, 200, NULL, 0, "fine", 4), SL_OK);
    CHECK(strstr(out_str(a), "fineHTTP/1.1 400 Bad Request") != NULL);
    CHECK(sl_http_session_want_close(a->s));
    app_free(a);
}

TEST(unsupported_version_and_method)
{
    struct sl_http_limits lim = limits();
    struct app *a = app_new(&lim, true);
    CHECK_EQ(feed_str(a, "GET / HTTP/2.5\r\n\r\n"), SL_EPROTO);
    CHECK(strncmp(out_str(a), "HTTP/1.1 505 ", 13) == 0);
    app_free(a);
    a = app_new(&lim, true);
    CHECK_EQ(feed_str(a, "CONNECT h:443 HTTP/1.1\r\n\r\n"), SL_EPROTO);
    CHECK(strncmp(out_str(a), "HTTP/1.1 501 ", 13) == 0);
    app_free(a);
}

TEST(header_too_large_431)
{
    struct sl_http_limits lim = limits();
    lim.header_bytes_max = 256;
    struct app *a = app_new(&lim, true);
    char req[1200];
    snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nX-Big: %0900d\r\n\r\n", 7);
    CHECK_EQ(feed_str(a, req), SL_ETOOBIG);
    CHECK(strncmp(out_str(a), "HTTP/1.1 431 Request Header Fields Too Large\r\n", 46) == 0);
    CHECK(sl_http_session_want_close(a->s));
    app_free(a);
}

TEST(body_too_large_413)
{
    struct sl_http_limits lim = limits();
    lim.body_bytes_max = 100;
    struct app *a = app_new(&lim, true);
    /* Refused at Content-Length, before any body byte. */
    CHECK_EQ(feed_str(a, "POST / HTTP/1.1\r\nContent-Length: 1000\r\n\r\n"), SL_ETOOBIG);
    CHECK(strncmp(out_str(a), "HTTP/1.1 413 Content Too Large\r\n", 32) == 0);
    CHECK(sl_http_session_want_close(a->s));
    app_free(a);
    a = app_new(&lim, true);
    char req[400];
    snprintf(req, sizeof(req), "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n96\r\n%0150d\r\n",
             1);
    CHECK_EQ(feed_str(a, req), SL_ETOOBIG);
    CHECK(strncmp(out_str(a), "HTTP/1.1 413 ", 13) == 0);
    app_free(a);
}

TEST(requests_max_backpressure)
{
    struct sl_http_limits lim = limits();
    lim.requests_max = 2;
    struct app *a = app_new(&lim, false);
    CHECK_EQ(feed_str(a, "GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\nGET /3 HTTP/1.1\r\n\r\n"),
             SL_OK);
    CHECK_EQ(a->n_reqs, 2);
    CHECK(!sl_http_session_want_read(a->s));
    CHECK_EQ(sl_http_respond(a->s, 2, 200, NULL, 0, "b", 1), SL_OK);
    CHECK_EQ(a->n_reqs, 2); /* 2's answer waits for 1's: its slot is still taken */
    CHECK_EQ(sl_http_respond(a->s, 1, 200, NULL, 0, "a", 1), SL_OK);
    CHECK_EQ(a->n_reqs, 3); /* delivered inside the respond call */
    CHECK(strcmp(a->reqs[2].path, "/3") == 0);
    CHECK(sl_http_session_want_read(a->s));
    /* Bytes fed while want_read() is false are held, up to a bound. */
    CHECK_EQ(feed_str(a, "GET /4 HTTP/1.1\r\n\r\nGET /5 HTTP/1.1\r\n\r\n"), SL_OK);
    CHECK_EQ(a->n_reqs, 4);
    CHECK(!sl_http_session_want_read(a->s));
    CHECK_EQ(sl_http_respond(a->s, 3, 200, NULL, 0, "c", 1), SL_OK);
    CHECK_EQ(a->n_reqs, 5);
    app_free(a);
}

static const char PIPELINE[] =
    "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nabcd"
    "PUT /b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nxyz\r\n2\r\n12\r\n0\r\n\r\n"
    "HEAD /c HTTP/1.1\r\nX-Long-Header-Name: some value here\r\n\r\n"
    "GET /d?q=1 HTTP/1.1\r\nConnection: close\r\n\r\n";

TEST(byte_by_byte_same_result)
{
    struct sl_http_limits lim = limits();
    struct app *whole = app_new(&lim, true);
    CHECK_EQ(feed_str(whole, PIPELINE), SL_OK);
    CHECK_EQ(whole->n_reqs, 4);
    struct app *bytes = app_new(&lim, true);
    for (size_t i = 0; i < sizeof(PIPELINE) - 1; i++) {
        CHECK_EQ(sl_http_session_feed(bytes->s, (const uint8_t *)PIPELINE + i, 1), SL_OK);
    }
    CHECK_EQ(bytes->n_reqs, 4);
    CHECK_EQ(whole->out_len, bytes->out_len);
    CHECK(memcmp(whole->out, bytes->out, whole->out_len) == 0);
    CHECK(memcmp(whole->reqs, bytes->reqs, sizeof(whole->reqs[0]) * 4) == 0);
    CHECK(strcmp(bytes->reqs[1].body, "xyz12") == 0);
    CHECK(sl_http_session_want_close(bytes->s));
    app_free(whole);
    app_free(bytes);
}

/* ---- HTTP/2, driven by an nghttp2 client ---- */

#define CL_STREAMS_MAX 16

struct cl_stream {
    int32_t id;
    int status;
    size_t body_len;
    uint64_t body_sum; /* sum of (byte * position + 1): order-sensitive */
    bool closed;
    uint32_t error_code;
};

struct client {
    nghttp2_session *ng;
    struct app *app;
    struct cl_stream st[CL_STREAMS_MAX];
    int n;
    int last_feed_rc;
    bool goaway;
};

static struct cl_stream *cl_find(struct client *c, int32_t id)
{
    for (int i = 0; i < c->n; i++) {
        if (c->st[i].id == id) {
            return &c->st[i];
        }
    }
    return NULL;
}

static int cl_on_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name,
                        size_t nl, const uint8_t *value, size_t vl, uint8_t flags, void *user)
{
    (void)ng;
    (void)flags;
    (void)vl;
    struct cl_stream *s = cl_find(user, f->hd.stream_id);
    if (s != NULL && nl == 7 && memcmp(name, ":status", 7) == 0) {
        s->status = atoi((const char *)value);
    }
    return 0;
}

static int cl_on_data(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data,
                      size_t len, void *user)
{
    (void)ng;
    (void)flags;
    struct cl_stream *s = cl_find(user, id);
    if (s != NULL) {
        for (size_t i = 0; i < len; i++) {
            s->body_sum += (uint64_t)data[i] * (s->body_len + i + 1);
        }
        s->body_len += len;
    }
    return 0;
}

static int cl_on_close(nghttp2_session *ng, int32_t id, uint32_t err, void *user)
{
    (void)ng;
    struct cl_stream *s = cl_find(user, id);
    if (s != NULL) {
        s->closed = true;
        s->error_code = err;
    }
    return 0;
}

static int cl_on_frame(nghttp2_session *ng, const nghttp2_frame *f, void *user)
{
    (void)ng;
    if (f->hd.type == NGHTTP2_GOAWAY) {
        ((struct client *)user)->goaway = true;
    }
    return 0;
}

static void client_init(struct client *c, struct app *a)
{
    memset(c, 0, sizeof(*c));
    c->app = a;
    nghttp2_session_callbacks *cbs;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_on_header_callback(cbs, cl_on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, cl_on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, cl_on_close);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, cl_on_frame);
    nghttp2_session_client_new(&c->ng, cbs, c);
    nghttp2_session_callbacks_del(cbs);
}

static void client_settings(struct client *c)
{
    nghttp2_settings_entry iv = {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 65535};
    nghttp2_submit_settings(c->ng, NGHTTP2_FLAG_NONE, &iv, 1);
}

static nghttp2_nv cl_nv(const char *n, const char *v)
{
    return (nghttp2_nv){(uint8_t *)n, (uint8_t *)v, strlen(n), strlen(v), NGHTTP2_NV_FLAG_NONE};
}

static ssize_t cl_read_body(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t len,
                            uint32_t *flags, nghttp2_data_source *src, void *user)
{
    (void)ng;
    (void)id;
    (void)user;
    const char *b = src->ptr;
    size_t n = strlen(b) < len ? strlen(b) : len;
    memcpy(buf, b, n);
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

static int32_t client_request(struct client *c, const char *method, const char *path,
                              const char *body)
{
    nghttp2_nv nva[] = {cl_nv(":method", method), cl_nv(":scheme", "http"),
                        cl_nv(":authority", "localhost"), cl_nv(":path", path)};
    nghttp2_data_provider prd = {.source = {.ptr = (void *)body}, .read_callback = cl_read_body};
    int32_t id = nghttp2_submit_request(c->ng, NULL, nva, 4, body ? &prd : NULL, NULL);
    if (id > 0 && c->n < CL_STREAMS_MAX) {
        c->st[c->n++] = (struct cl_stream){.id = id};
    }
    return id;
}

/* Moves bytes both ways until neither side has anything to say. */
static void pump(struct client *c)
{
    for (int round = 0; round < 100000; round++) {
        bool progress = false;
        const uint8_t *d;
        ssize_t n;
        while ((n = nghttp2_session_mem_send(c->ng, &d)) > 0) {
            progress = true;
            int rc = sl_http_session_feed(c->app->s, d, (size_t)n);
            if (rc != SL_OK) {
                c->last_feed_rc = rc;
            }
        }
        if (c->app->out_len > 0) {
            size_t len = c->app->out_len;
            c->app->out_len = 0;
            nghttp2_session_mem_recv(c->ng, c->app->out, len);
            progress = true;
        }
        if (!progress) {
            return;
        }
    }
}

TEST(h2_prior_knowledge_round_trip)
{
    struct sl_http_limits lim = limits();
    struct app *a = app_new(&lim, true);
    struct client c;
    client_init(&c, a);
    client_settings(&c);
    int32_t id = client_request(&c, "POST", "/h2?x=y", "payload!");
    pump(&c);
    CHECK_EQ(c.last_feed_rc, SL_OK);
    CHECK_EQ(a->n_reqs, 1);
    CHECK_EQ(a->reqs[0].id, (uint32_t)id);
    CHECK_EQ(a->reqs[0].version, 20);
    CHECK(strcmp(a->reqs[0].method, "POST") == 0);
    CHECK(strcmp(a->reqs[0].path, "/h2?x=y") == 0);
    CHECK(strcmp(a->reqs[0].host, "localhost") == 0);
    CHECK(strcmp(a->reqs[0].body, "payload!") == 0);
    struct cl_stream *s = cl_find(&c, id);
    CHECK(s->closed && s->error_code == 0);
    CHECK_EQ(s->status, 200);
    CHECK_EQ(s->body_len, strlen("echo /h2?x=y"));
    CHECK(sl_http_session_want_read(a->s));
    CHECK(!sl_http_session_want_close(a->s));
    nghttp2_session_del(c.ng);
    app_free(a);
}

TEST(h2_concurrent_streams)
{
    struct sl_http_limits lim = limits();
    struct app *a = app_new(&lim, false);
    struct client c;
    client_init(&c, a);
    client_settings(&c);
    for (int i = 0; i < 5; i++) {
        char path[16];
        snprintf(path, sizeof(path), "/s%d", i);
        client_request(&c, "GET", path, NULL);
    }
    pump(&c);
    CHECK_EQ(a->n_reqs, 5);
    for (int i = 4; i >= 0; i--) { /* any order */
        char body[8];
        snprintf(body, sizeof(body), "b%d", i);
        CHECK_EQ(sl_http_respond(a->s, a->reqs[i].id, 400 + i, NULL, 0, body, 2), SL_OK);
    }
    pump(&c);
    for (int i = 0; i < 5; i++) {
        struct cl_stream *s = cl_find(&c, (int32_t)a->reqs[i].id);
        CHECK(s != NULL && s->closed);
        CHECK_EQ(s->status, 400 + i);
        CHECK_EQ(s->body_len, 2);
    }
    nghttp2_session_del(c.ng);
    app_free(a);
}

static uint8_t *pattern(size_t n)
{
    uint8_t *p = malloc(n);
    for (size_t i = 0; i < n; i++) {
        p[i] = (uint8_t)(i * 7 % 251);
    }
    return p;
}

static uint64_t pattern_sum(const uint8_t *p, size_t n)
{
    uint64_t s = 0;
    for (size_t i = 0; i < n; i++) {
        s += (uint64_t)p[i] * (i + 1);
    }
    return s;
}

TEST(h2_large_response_flow_control)
{
    struct sl_http_limits lim = limits();
    struct app *a = app_new(&lim, false);
    struct client c;
    client_init(&c, a);
    client_settings(&c); /* 64 KiB stream window; the connection's is 64 KiB too */
    int32_t id = client_request(&c, "GET", "/big", NULL);
    pump(&c);
    CHECK_EQ(a->n_reqs, 1);
    size_t big = (2u << 20) + 12345;
    uint8_t *body = pattern(big);
    CHECK_EQ(sl_http_respond(a->s, (uint32_t)id, 200, NULL, 0, body, big), SL_OK);
    /* Only a window's worth can go before the client's WINDOW_UPDATEs arrive. */
    CHECK(a->out_len > 0 && a->out_len < 80000);
    pump(&c);
    struct cl_stream *s = cl_find(&c, id);
    CHECK(s->closed && s->error_code == 0);
    CHECK_EQ(s->body_len, big);
    CHECK(s->body_sum == pattern_sum(body, big));
    free(body);
    nghttp2_session_del(c.ng);
    app_free(a);
}

TEST(h2_streaming_response)
{
    struct sl_http_limits lim = limits();
    lim.out_bytes_max = 100000;
    struct app *a = app_new(&lim, false);
    struct client c;
    client_init(&c, a);
    client_settings(&c);
    int32_t id = client_request(&c, "GET", "/stream", NULL);
    pump(&c);
    CHECK_EQ(a->n_reqs, 1);
    struct sl_http_header h = {"content-type", 12, "application/octet-stream", 24};
    CHECK_EQ(sl_http_respond_begin(a->s, (uint32_t)id, 200, &h, 1), SL_OK);
    size_t total = 600000, sent = 0, chunk = 30000;
    uint8_t *body = pattern(total);
    int eagains = 0;
    while (sent < total) {
        size_t n = total - sent < chunk ? total - sent : chunk;
        int rc = sl_http_respond_data(a->s, (uint32_t)id, body + sent, n);
        if (rc == SL_EAGAIN) {
            eagains++;
            int drains = a->n_drain;
            pump(&c); /* the client reads: window opens, the queue drains */
            CHECK(a->n_drain > drains);
            continue;
        }
        CHECK_EQ(rc, SL_OK);
        sent += n;
    }
    CHECK(eagains > 0);
    CHECK_EQ(sl_http_respond_end(a->s, (uint32_t)id), SL_OK);
    pump(&c);
    struct cl_stream *s = cl_find(&c, id);
    CHECK(s->closed && s->error_code == 0);
    CHECK_EQ(s->body_len, total);
    CHECK(s->body_sum == pattern_sum(body, total));
    free(body);
    nghttp2_session_del(c.ng);
    app_free(a);
}

TEST(h2_client_rst_stream)
{
    struct sl_http_limits lim = limits();
    struct app *a = app_new(&lim, false);
    struct client c;
    client_init(&c, a);
    client_settings(&c);
    int32_t id = client_request(&c, "GET", "/slow", NULL);
    int32_t id2 = client_request(&c, "GET", "/other", NULL);
    pump(&c);
    CHECK_EQ(a->n_reqs, 2);
    CHECK_EQ(sl_http_respond_begin(a->s, (uint32_t)id, 200, NULL, 0), SL_OK);
    nghttp2_submit_rst_stream(c.ng, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
    pump(&c);
    CHECK_EQ(a->n_closed, 1);
    CHECK_EQ(a->closed[0], (uint32_t)id);
    CHECK_EQ(sl_http_respond_data(a->s, (uint32_t)id, "x", 1), SL_ENOTFOUND);
    CHECK_EQ(sl_http_respond(a->s, (uint32_t)id2, 200, NULL, 0, "ok", 2), SL_OK);
    pump(&c);
    CHECK_EQ(cl_find(&c, id2)->status, 200);
    CHECK_EQ(a->n_closed, 1);
    nghttp2_session_del(c.ng);
    app_free(a);
}

TEST(h2_body_too_large_413)
{
    struct sl_http_limits lim = limits();
    lim.body_bytes_max = 4;
    struct app *a = app_new(&lim, true);
    struct client c;
    client_init(&c, a);
    client_settings(&c);
    int32_t big = client_request(&c, "POST", "/big", "far too long a body");
    int32_t ok = client_request(&c, "POST", "/ok", "tiny");
    pump(&c);
    CHECK_EQ(c.last_feed_rc, SL_OK);
    CHECK_EQ(a->n_reqs, 1);
    CHECK_EQ(cl_find(&c, big)->status, 413);
    CHECK(cl_find(&c, big)->closed);
    CHECK_EQ(cl_find(&c, ok)->status, 200);
    CHECK(sl_http_session_want_read(a->s));
    nghttp2_session_del(c.ng);
    app_free(a);
}

static size_t b64url(const uint8_t *in, size_t n, char *out)
{
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        acc = (acc << 8) | in[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out[o++] = t[(acc >> bits) & 63];
        }
    }
    if (bits > 0) {
        out[o++] = t[(acc << (6 - bits)) & 63];
    }
    out[o] = 0;
    return o;
}

TEST(h2c_upgrade)
{
    struct sl_http_limits lim = limits();
    struct app *a = app_new(&lim, true);
    struct client c;
    client_init(&c, a);
    nghttp2_settings_entry iv = {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 65535};
    uint8_t payload[16];
    ssize_t plen = nghttp2_pack_settings_payload(payload, sizeof(payload), &iv, 1);
    CHECK(plen > 0);
    char b64[32], req[256];
    b64url(payload, (size_t)plen, b64);
    snprintf(req, sizeof(req), "GET /up HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings\r\n"
             "Upgrade: h2c\r\nHTTP2-Settings: %s\r\n\r\n", b64);
    CHECK_EQ(nghttp2_session_upgrade2(c.ng, payload, (size_t)plen, 0, NULL), 0);
    c.st[c.n++] = (struct cl_stream){.id = 1};
    CHECK_EQ(feed_str(a, req), SL_OK);
    static const char sw[] = "HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\n"
                             "upgrade: h2c\r\n\r\n";
    CHECK(a->out_len > sizeof(sw) - 1);
    CHECK(memcmp(a->out, sw, sizeof(sw) - 1) == 0);
    /* The upgraded request waits for the client's preface: its answer must
     * not follow the 101 in the same burst (curl keeps only 32 KiB after it). */
    CHECK_EQ(a->n_reqs, 0);
    memmove(a->out, a->out + sizeof(sw) - 1, a->out_len - (sizeof(sw) - 1));
    a->out_len -= sizeof(sw) - 1;
    pump(&c);
    CHECK_EQ(c.last_feed_rc, SL_OK);
    CHECK_EQ(a->n_reqs, 1);
    CHECK_EQ(a->reqs[0].id, 1);
    CHECK_EQ(a->reqs[0].version, 20);
    struct cl_stream *s = cl_find(&c, 1);
    CHECK(s->closed && s->error_code == 0);
    CHECK_EQ(s->status, 200);
    CHECK_EQ(s->body_len, strlen("echo /up"));
    /* The connection carries on as HTTP/2. */
    int32_t id = client_request(&c, "GET", "/next", NULL);
    pump(&c);
    CHECK_EQ(cl_find(&c, id)->status, 200);
    CHECK_EQ(a->n_reqs, 2);
    nghttp2_session_del(c.ng);
    app_free(a);
}

TEST(h2_garbage_after_preface_goaway)
{
    struct sl_http_limits lim = limits();
    struct app *a = app_new(&lim, true);
    static const char bad[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\nthis is not an HTTP/2 frame at all";
    CHECK_EQ(sl_http_session_feed(a->s, (const uint8_t *)bad, sizeof(bad) - 1), SL_EPROTO);
    /* The output is frames: find a GOAWAY (type 7) with a non-zero error code. */
    bool goaway = false;
    for (size_t off = 0; off + 9 <= a->out_len;) {
        const uint8_t *f = a->out + off;
        size_t len = (size_t)f[0] << 16 | (size_t)f[1] << 8 | f[2];
        if (f[3] == 7 && len >= 8 && off + 9 + len <= a->out_len) {
            goaway = (f[9 + 4] | f[9 + 5] | f[9 + 6] | f[9 + 7]) != 0;
        }
        off += 9 + len;
    }
    CHECK(goaway);
    CHECK(!sl_http_session_want_read(a->s));
    CHECK(sl_http_session_want_close(a->s));
    CHECK_EQ(feed_str(a, "more"), SL_EPROTO);
    app_free(a);
}

int main(void)
{
    RUN(simple_get);
    RUN(post_with_body);
    RUN(pipelined_answered_in_reverse);
    RUN(chunked_body);
    RUN(expect_100_continue);
    RUN(connection_close);
    RUN(http_1_0);
    RUN(head_has_no_body);
    RUN(streaming_chunked_answer);
    RUN(bad_answer_arguments);
    RUN(malformed_request_line_400);
    RUN(unsupported_version_and_method);
    RUN(header_too_large_431);
    RUN(body_too_large_413);
    RUN(requests_max_backpressure);
    RUN(byte_by_byte_same_result);
    RUN(h2_prior_knowledge_round_trip);
    RUN(h2_concurrent_streams);
    RUN(h2_large_response_flow_control);
    RUN(h2_streaming_response);
    RUN(h2_client_rst_stream);
    RUN(h2_body_too_large_413);
    RUN(h2c_upgrade);
    RUN(h2_garbage_after_preface_goaway);
    TEST_END();
}
