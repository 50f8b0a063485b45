/* h1.c - HTTP/1.0 and 1.1 server side of a session, on http_parser 2.9.
 *
 * Pipelining: each request takes a slot in a ring of requests_max + 1 slots
 * (the extra one holds an error answer), in arrival order. Answers are
 * formatted into their slot's queue; the queue of the first slot goes to
 * callbacks->out at once, later ones wait until every earlier answer is
 * complete, so the wire order is the request order whatever the answer order.
 * Parsing pauses at the end of each message (http_parser_pause) so that a
 * request is delivered outside the parser's callbacks, and stops while
 * requests_max slots are taken: the bytes not parsed wait in `in` (bounded
 * by in_max) until an answer frees a slot (back-pressure).
 *
 * Errors (malformed 400, unsupported version 505 or method 501, headers 431,
 * body 413, checked at Content-Length before the body arrives): an answer
 * with a one-line text body and "connection: close" is queued after the
 * earlier answers and parsing stops for good.
 *
 * Re-entrancy: callbacks may call the respond functions (also from inside
 * on_request and on_drain); `busy` and `flushing` keep those nested calls from
 * re-entering the parser or the flush loop, whose outer runs pick up the work.
 * Single-threaded.
 */
#include "broker/http/h1.h"

#include "common/assert.h"
#include "common/error.h"

#include <http_parser.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Bytes held while parsing waits for a free slot: a receive's worth at least. */
#define H1_STALL_BYTES_MIN (256u << 10)
/* A status line plus server, framing and connection headers. */
#define H1_HEAD_BYTES_MAX 160u

enum h1_state { H1_FREE, H1_RECEIVING, H1_WAITING, H1_STREAMING, H1_DONE };

struct h1_slot {
    struct sl_reqbuf req;
    struct sl_outq out;
    uint32_t id;
    uint8_t state, version;
    bool head;          /* a HEAD request: answers carry no body */
    bool close_after;   /* the connection closes after this answer */
    bool keep_alive_10; /* HTTP/1.0 with keep-alive: say so in the answer */
    bool chunked;       /* the streaming answer is chunked */
    bool nobody;        /* HEAD, 204, 304: the answer has no body */
    bool eagain;        /* respond_data returned SL_EAGAIN: call on_drain */
};

struct sl_h1 {
    http_parser parser;
    const struct sl_http_limits *lim;
    const struct sl_http_callbacks *cb;
    void *ctx;
    struct sl_http_session *s;
    struct h1_slot *slots; /* ring of slots_cap */
    uint32_t slots_cap, first, count, next_id;
    struct sl_outq in; /* received bytes not parsed yet */
    size_t in_max;
    bool in_msg;   /* the last slot is RECEIVING */
    bool msg_done; /* the parser paused at the end of a message */
    bool closing;  /* no more parsing */
    bool fatal;    /* out of memory or `out` failed: close now */
    bool busy, flushing, upgrade;
    int err; /* the error that stopped parsing */
    int err_status;
    const char *err_text;
};

static const http_parser_settings H1_SETTINGS;

static struct h1_slot *slot_at(struct sl_h1 *h, uint32_t k)
{
    SL_ASSERT(k < h->count);
    return &h->slots[(h->first + k) % h->slots_cap];
}

static struct h1_slot *slot_last(struct sl_h1 *h)
{
    return slot_at(h, h->count - 1);
}

/* The slot of request `id` when it is in `state`. Ids of the ring are consecutive. */
static struct h1_slot *slot_find(struct sl_h1 *h, uint32_t id, int state)
{
    if (h->count == 0) {
        return NULL;
    }
    uint32_t k = id - slot_at(h, 0)->id;
    if (k >= h->count) {
        return NULL;
    }
    struct h1_slot *sl = slot_at(h, k);
    SL_ASSERT(sl->id == id);
    return sl->state == state ? sl : NULL;
}

static void slot_clear(struct h1_slot *sl)
{
    sl_reqbuf_fini(&sl->req);
    sl_outq_fini(&sl->out);
    sl->state = H1_FREE;
}

static const char *reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

/* Status line, server, `framing` ("content-length: N" or "transfer-encoding:
 * chunked" or NULL), the caller's headers, connection, blank line. */
static int put_head(struct sl_outq *q, int status, const struct sl_http_header *hdrs, uint32_t n,
                    const char *framing, const char *conn)
{
    char line[H1_HEAD_BYTES_MAX];
    int len = snprintf(line, sizeof(line), "HTTP/1.1 %d %s\r\nserver: sluiced\r\n", status,
                       reason(status));
    SL_ASSERT(len > 0 && (size_t)len < sizeof(line));
    int rc = sl_outq_push(q, line, (size_t)len);
    for (uint32_t i = 0; i < n && rc == SL_OK; i++) {
        rc = sl_outq_push(q, hdrs[i].name, hdrs[i].name_len);
        rc = rc == SL_OK ? sl_outq_push(q, ": ", 2) : rc;
        rc = rc == SL_OK ? sl_outq_push(q, hdrs[i].value, hdrs[i].value_len) : rc;
        rc = rc == SL_OK ? sl_outq_push(q, "\r\n", 2) : rc;
    }
    len = snprintf(line, sizeof(line), "%s%s%s%s%s\r\n", framing ? framing : "",
                   framing ? "\r\n" : "", conn ? "connection: " : "", conn ? conn : "",
                   conn ? "\r\n" : "");
    SL_ASSERT(len > 0 && (size_t)len < sizeof(line));
    return rc == SL_OK ? sl_outq_push(q, line, (size_t)len) : rc;
}

/* Hands the first slots' bytes to `out` and retires every complete answer. */
static void flush(struct sl_h1 *h)
{
    if (h->flushing) {
        return; /* a callback of the running flush: it picks the new bytes up */
    }
    h->flushing = true;
    while (h->count > 0 && !h->fatal) {
        struct h1_slot *sl = slot_at(h, 0);
        size_t len = sl_outq_len(&sl->out);
        if (len > 0) {
            if (h->cb->out(h->ctx, sl_outq_peek(&sl->out), len) != SL_OK) {
                h->fatal = true;
                break;
            }
            sl_outq_drop(&sl->out, len);
        }
        if (sl->eagain) {
            sl->eagain = false;
            if (h->cb->on_drain != NULL) {
                h->cb->on_drain(h->ctx, h->s, sl->id);
            }
            continue; /* the callback may have added bytes */
        }
        if (sl->state != H1_DONE) {
            break;
        }
        if (sl->close_after) {
            h->closing = true;
        }
        slot_clear(sl);
        h->first = (h->first + 1) % h->slots_cap;
        h->count--;
    }
    h->flushing = false;
}

/* Records why parsing stops; returns -1 for http_parser. */
static int fail(struct sl_h1 *h, int err, int status, const char *text)
{
    if (h->err == SL_OK) {
        h->err = err;
        h->err_status = status;
        h->err_text = text;
    }
    return -1;
}

static int fail_rc(struct sl_h1 *h, int rc)
{
    if (rc == SL_ETOOBIG) {
        return fail(h, rc, 431, "request headers too large");
    }
    if (rc == SL_ENOMEM) {
        h->fatal = true;
        return fail(h, rc, 500, "out of memory");
    }
    return fail(h, SL_EPROTO, 400, "malformed request");
}

/* Queues the error answer (after the earlier answers) and stops parsing. */
static void error_answer(struct sl_h1 *h)
{
    SL_ASSERT(h->err != SL_OK);
    h->closing = true;
    if (h->fatal) {
        return;
    }
    struct h1_slot *sl;
    if (h->in_msg) {
        sl = slot_last(h);
        sl_reqbuf_fini(&sl->req); /* keeps a 100 Continue already queued */
    } else {
        SL_ASSERT(h->count < h->slots_cap);
        sl = &h->slots[(h->first + h->count) % h->slots_cap];
        h->count++;
        sl->id = h->next_id++;
    }
    h->in_msg = false;
    h->msg_done = false;
    sl->state = H1_DONE;
    sl->close_after = true;
    char framing[80];
    size_t tlen = strlen(h->err_text) + 1;
    snprintf(framing, sizeof(framing), "content-type: text/plain\r\ncontent-length: %zu", tlen);
    int rc = put_head(&sl->out, h->err_status, NULL, 0, framing, "close");
    rc = rc == SL_OK ? sl_outq_push(&sl->out, h->err_text, tlen - 1) : rc;
    rc = rc == SL_OK ? sl_outq_push(&sl->out, "\n", 1) : rc;
    if (rc != SL_OK) {
        h->fatal = true;
    }
}

static struct sl_h1 *of(http_parser *p)
{
    return p->data;
}

static int on_message_begin(http_parser *p)
{
    struct sl_h1 *h = of(p);
    SL_ASSERT(!h->in_msg && h->count < h->lim->requests_max);
    struct h1_slot *sl = &h->slots[(h->first + h->count) % h->slots_cap];
    SL_ASSERT(sl->state == H1_FREE);
    memset(sl, 0, sizeof(*sl));
    sl_reqbuf_init(&sl->req, h->lim->header_bytes_max, h->lim->body_bytes_max);
    sl->id = h->next_id++;
    sl->state = H1_RECEIVING;
    h->count++;
    h->in_msg = true;
    return 0;
}

static int add_text(http_parser *p, enum sl_reqbuf_field f, const char *at, size_t len)
{
    struct sl_h1 *h = of(p);
    struct sl_reqbuf *r = &slot_last(h)->req;
    int rc = r->cur == f ? SL_OK : sl_reqbuf_begin(r, f);
    rc = rc == SL_OK ? sl_reqbuf_append(r, at, len) : rc;
    return rc == SL_OK ? 0 : fail_rc(h, rc);
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    return add_text(p, SL_REQBUF_PATH, at, len);
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    return add_text(p, SL_REQBUF_NAME, at, len);
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    return add_text(p, SL_REQBUF_VALUE, at, len);
}

static bool body_expected(const http_parser *p)
{
    return (p->flags & F_CHUNKED) != 0 || (p->content_length > 0 && p->content_length != ULLONG_MAX);
}

static int on_headers_complete(http_parser *p)
{
    struct sl_h1 *h = of(p);
    struct h1_slot *sl = slot_last(h);
    if (p->http_major != 1) {
        return fail(h, SL_EPROTO, 505, "only HTTP/1.0, HTTP/1.1 and h2c are supported");
    }
    if (p->method == HTTP_CONNECT) {
        return fail(h, SL_EPROTO, 501, "method not supported");
    }
    const char *m = http_method_str((enum http_method)p->method);
    int rc = sl_reqbuf_begin(&sl->req, SL_REQBUF_METHOD);
    rc = rc == SL_OK ? sl_reqbuf_append(&sl->req, m, strlen(m)) : rc;
    if (rc != SL_OK) {
        return fail_rc(h, rc);
    }
    sl->version = p->http_minor == 0 ? 10 : 11;
    sl->head = p->method == HTTP_HEAD;
    bool ka = http_should_keep_alive(p) != 0;
    sl->close_after = !ka;
    sl->keep_alive_10 = ka && sl->version == 10;
    if ((p->flags & F_CHUNKED) == 0 && p->content_length != ULLONG_MAX &&
        p->content_length > h->lim->body_bytes_max) {
        return fail(h, SL_ETOOBIG, 413, "request body too large");
    }
    uint32_t elen = 0;
    const char *expect = sl_reqbuf_get(&sl->req, "expect", &elen);
    if (expect != NULL && elen == 12 && strncasecmp(expect, "100-continue", 12) == 0 &&
        sl->version == 11 && body_expected(p)) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        if (sl_outq_push(&sl->out, cont, sizeof(cont) - 1) != SL_OK) {
            return fail_rc(h, SL_ENOMEM);
        }
        flush(h); /* goes out now when every earlier answer is complete */
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct sl_h1 *h = of(p);
    int rc = sl_reqbuf_body(&slot_last(h)->req, at, len);
    if (rc == SL_ETOOBIG) {
        return fail(h, rc, 413, "request body too large");
    }
    return rc == SL_OK ? 0 : fail_rc(h, rc);
}

static int on_message_complete(http_parser *p)
{
    struct sl_h1 *h = of(p);
    h->msg_done = true;
    http_parser_pause(p, 1); /* deliver outside the parser */
    return 0;
}

static const http_parser_settings H1_SETTINGS = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* Runs the parser over up to the end of one message; returns the bytes used. */
static size_t parse(struct sl_h1 *h, const uint8_t *p, size_t n)
{
    SL_ASSERT(n > 0 && !h->msg_done && h->err == SL_OK);
    http_parser_pause(&h->parser, 0);
    size_t got = http_parser_execute(&h->parser, &H1_SETTINGS, (const char *)p, n);
    SL_ASSERT(got <= n);
    enum http_errno e = HTTP_PARSER_ERRNO(&h->parser);
    if (h->err != SL_OK || e == HPE_OK || e == HPE_PAUSED) {
        return got;
    }
    if (e == HPE_HEADER_OVERFLOW) {
        fail(h, SL_ETOOBIG, 431, "request headers too large");
    } else if (e == HPE_INVALID_METHOD) {
        fail(h, SL_EPROTO, 501, "method not supported");
    } else {
        fail(h, SL_EPROTO, 400, http_errno_description(e));
    }
    return got;
}

static bool has_token(const char *v, uint32_t len, const char *tok)
{
    size_t tl = strlen(tok);
    for (uint32_t i = 0; i + tl <= len; i++) {
        bool start = i == 0 || v[i - 1] == ',' || v[i - 1] == ' ';
        bool end = i + tl == len || v[i + tl] == ',' || v[i + tl] == ' ';
        if (start && end && strncasecmp(v + i, tok, tl) == 0) {
            return true;
        }
    }
    return false;
}

/* h2c upgrade: only for a body-less HTTP/1.1 request with nothing before it
 * in the pipeline (an upgrade with a body is answered over HTTP/1.1). */
static bool want_h2c(struct sl_h1 *h, const struct h1_slot *sl)
{
    uint32_t ulen = 0, slen = 0;
    const char *up = sl_reqbuf_get(&sl->req, "upgrade", &ulen);
    const char *set = sl_reqbuf_get(&sl->req, "http2-settings", &slen);
    return h->count == 1 && sl->version == 11 && sl->req.body_len == 0 && up != NULL &&
           set != NULL && has_token(up, ulen, "h2c") && !sl->close_after;
}

static void deliver(struct sl_h1 *h)
{
    struct h1_slot *sl = slot_last(h);
    h->msg_done = false;
    h->in_msg = false;
    SL_ASSERT(sl->state == H1_RECEIVING);
    int rc = sl_reqbuf_finish(&sl->req, sl->id, sl->version);
    if (rc != SL_OK) {
        h->in_msg = true; /* error_answer reuses the slot */
        fail_rc(h, rc);
        error_answer(h);
        return;
    }
    sl->state = H1_WAITING;
    if (h->parser.upgrade) {
        if (want_h2c(h, sl)) {
            static const char sw[] = "HTTP/1.1 101 Switching Protocols\r\n"
                                     "connection: Upgrade\r\nupgrade: h2c\r\n\r\n";
            rc = sl_outq_push(&sl->out, sw, sizeof(sw) - 1);
            h->fatal = rc != SL_OK;
            flush(h);
            h->upgrade = true;
            return;
        }
        /* Another protocol (or h2c refused): answer over HTTP/1.1, keep parsing. */
        http_parser_init(&h->parser, HTTP_REQUEST);
        h->parser.data = h;
    }
    if (sl->close_after) {
        h->closing = true;
    }
    h->cb->on_request(h->ctx, h->s, &sl->req.req);
}

/* Parses and delivers requests while slots are free; returns the bytes used. */
static size_t run(struct sl_h1 *h, const uint8_t *p, size_t n)
{
    SL_ASSERT(h->busy);
    size_t used = 0;
    while (used < n && !h->closing && !h->upgrade && !h->fatal &&
           (h->in_msg || h->count < h->lim->requests_max)) {
        size_t got = parse(h, p + used, n - used);
        used += got;
        if (h->err != SL_OK) {
            error_answer(h);
            break;
        }
        if (h->msg_done) {
            deliver(h);
        } else if (got == 0) {
            break;
        }
    }
    return used;
}

/* Parses bytes that waited for a free slot (not from inside a callback). */
static void resume(struct sl_h1 *h)
{
    if (h->busy || h->flushing || sl_outq_len(&h->in) == 0) {
        return;
    }
    h->busy = true;
    size_t used = run(h, sl_outq_peek(&h->in), sl_outq_len(&h->in));
    sl_outq_drop(&h->in, used);
    h->busy = false;
    if (h->closing && !h->upgrade) {
        sl_outq_drop(&h->in, sl_outq_len(&h->in)); /* after Connection: close or an error */
    }
    flush(h);
}

int sl_h1_new(const struct sl_http_limits *lim, const struct sl_http_callbacks *cb, void *ctx,
              struct sl_http_session *s, struct sl_h1 **out)
{
    SL_ASSERT(lim->requests_max > 0 && cb->on_request != NULL && cb->out != NULL);
    struct sl_h1 *h = calloc(1, sizeof(*h));
    if (h == NULL) {
        return SL_ENOMEM;
    }
    h->slots_cap = lim->requests_max + 1;
    h->slots = calloc(h->slots_cap, sizeof(*h->slots));
    if (h->slots == NULL) {
        free(h);
        return SL_ENOMEM;
    }
    h->lim = lim;
    h->cb = cb;
    h->ctx = ctx;
    h->s = s;
    h->next_id = 1;
    uint64_t stall = (uint64_t)lim->header_bytes_max + lim->body_bytes_max;
    h->in_max = stall < H1_STALL_BYTES_MIN ? H1_STALL_BYTES_MIN : (size_t)stall;
    http_parser_init(&h->parser, HTTP_REQUEST);
    h->parser.data = h;
    *out = h;
    return SL_OK;
}

void sl_h1_free(struct sl_h1 *h)
{
    if (h == NULL) {
        return;
    }
    for (uint32_t i = 0; i < h->slots_cap; i++) {
        slot_clear(&h->slots[i]);
    }
    sl_outq_fini(&h->in);
    free(h->slots);
    free(h);
}

int sl_h1_feed(struct sl_h1 *h, const uint8_t *data, size_t len)
{
    SL_ASSERT(!h->busy && !h->flushing);
    if (h->fatal) {
        return SL_ENOMEM;
    }
    if (h->closing || h->upgrade) {
        return h->err != SL_OK ? h->err : SL_ECLOSED;
    }
    if (len == 0) {
        return SL_OK;
    }
    size_t used = 0;
    if (sl_outq_len(&h->in) == 0) {
        h->busy = true;
        used = run(h, data, len);
        h->busy = false;
    }
    size_t rest = len - used;
    if (rest > 0 && (!h->closing || h->upgrade)) {
        SL_ASSERT(sl_outq_len(&h->in) <= h->in_max);
        if (rest > h->in_max - sl_outq_len(&h->in)) {
            h->closing = true; /* fed far past want_read() == false */
            h->err = h->err != SL_OK ? h->err : SL_ELIMIT;
        } else if (sl_outq_push(&h->in, data + used, rest) != SL_OK) {
            h->fatal = true;
        }
    }
    resume(h);
    flush(h);
    if (h->fatal) {
        return SL_ENOMEM;
    }
    return h->err;
}

bool sl_h1_upgraded(const struct sl_h1 *h)
{
    return h->upgrade && !h->fatal;
}

void sl_h1_take_upgrade(struct sl_h1 *h, struct sl_reqbuf *req, struct sl_outq *rest)
{
    SL_ASSERT(h->upgrade && h->count == 1);
    struct h1_slot *sl = slot_at(h, 0);
    SL_ASSERT(sl->state == H1_WAITING && sl_outq_len(&sl->out) == 0);
    *req = sl->req;
    sl_reqbuf_init(&sl->req, h->lim->header_bytes_max, h->lim->body_bytes_max);
    *rest = h->in;
    memset(&h->in, 0, sizeof(h->in));
    slot_clear(sl);
    h->count = 0;
}

int sl_h1_respond(struct sl_h1 *h, uint32_t id, int status, const struct sl_http_header *hdrs,
                  uint32_t n, const void *body, size_t body_len, bool streaming)
{
    struct h1_slot *sl = slot_find(h, id, H1_WAITING);
    if (sl == NULL || h->fatal) {
        return h->fatal ? SL_ENOMEM : SL_ENOTFOUND;
    }
    bool nobody = sl->head || status == 204 || status == 304;
    sl->nobody = nobody;
    char framing[48] = "";
    if (!streaming && status != 204 && status != 304) {
        snprintf(framing, sizeof(framing), "content-length: %zu", body_len);
    } else if (streaming && sl->version == 10) {
        sl->close_after = true; /* the end of the body is the end of the connection */
    } else if (streaming && !nobody) {
        sl->chunked = true;
        snprintf(framing, sizeof(framing), "transfer-encoding: chunked");
    }
    const char *conn = sl->close_after ? "close" : (sl->keep_alive_10 ? "keep-alive" : NULL);
    int rc = put_head(&sl->out, status, hdrs, n, framing[0] ? framing : NULL, conn);
    if (rc == SL_OK && !streaming && !nobody) {
        rc = sl_outq_push(&sl->out, body, body_len);
    }
    if (rc != SL_OK) {
        h->fatal = true; /* a half-written answer cannot be taken back */
        return rc;
    }
    sl->state = streaming ? H1_STREAMING : H1_DONE;
    if (!streaming) {
        sl_reqbuf_fini(&sl->req); /* the request is answered: its memory goes now */
    }
    flush(h);
    resume(h);
    return h->fatal ? SL_ENOMEM : SL_OK;
}

int sl_h1_data(struct sl_h1 *h, uint32_t id, const void *data, size_t len)
{
    struct h1_slot *sl = slot_find(h, id, H1_STREAMING);
    if (sl == NULL || h->fatal) {
        return h->fatal ? SL_ENOMEM : SL_ENOTFOUND;
    }
    if (len == 0 || sl->nobody) {
        return SL_OK; /* HEAD, 204, 304: the body is not sent */
    }
    size_t queued = sl_outq_len(&sl->out);
    if (queued > 0 && (uint64_t)queued + len > h->lim->out_bytes_max) {
        sl->eagain = true;
        return SL_EAGAIN;
    }
    int rc = SL_OK;
    if (sl->chunked) {
        char size[24];
        int sn = snprintf(size, sizeof(size), "%zx\r\n", len);
        rc = sl_outq_push(&sl->out, size, (size_t)sn);
    }
    rc = rc == SL_OK ? sl_outq_push(&sl->out, data, len) : rc;
    rc = rc == SL_OK && sl->chunked ? sl_outq_push(&sl->out, "\r\n", 2) : rc;
    if (rc != SL_OK) {
        h->fatal = true;
        return rc;
    }
    flush(h);
    return h->fatal ? SL_ENOMEM : SL_OK;
}

int sl_h1_end(struct sl_h1 *h, uint32_t id)
{
    struct h1_slot *sl = slot_find(h, id, H1_STREAMING);
    if (sl == NULL || h->fatal) {
        return h->fatal ? SL_ENOMEM : SL_ENOTFOUND;
    }
    if (sl->chunked && sl_outq_push(&sl->out, "0\r\n\r\n", 5) != SL_OK) {
        h->fatal = true;
        return SL_ENOMEM;
    }
    sl->state = H1_DONE;
    sl_reqbuf_fini(&sl->req);
    flush(h);
    resume(h);
    return h->fatal ? SL_ENOMEM : SL_OK;
}

bool sl_h1_want_read(const struct sl_h1 *h)
{
    return !h->fatal && !h->closing && !h->upgrade &&
           (h->in_msg || h->count < h->lim->requests_max);
}

bool sl_h1_want_close(const struct sl_h1 *h)
{
    return h->fatal || (h->closing && h->count == 0);
}

bool sl_h1_partial(const struct sl_h1 *h)
{
    return h->in_msg;
}
