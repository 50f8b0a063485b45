/* h2.c - HTTP/2 over cleartext (h2c), server side of a session, on nghttp2.
 *
 * nghttp2 does the framing, HPACK, flow control and stream states; this file
 * keeps one struct h2_stream per request stream (nghttp2's stream user data,
 * also on a list in id order), builds the request in it (reqbuf.c), and
 * answers from a per-stream output queue through a deferred data provider:
 * a streaming response buffers at most out_bytes_max there, and the provider
 * defers when it is empty and resumes when data comes. Output is produced as
 * the peer's flow-control window allows: each feed (which brings WINDOW_UPDATEs)
 * and each respond call ends in service(), which pumps nghttp2_session_mem_send
 * into callbacks->out.
 *
 * nghttp2 callbacks never call the application and never free: they mark
 * streams (ready, closed) and service(), outside nghttp2, delivers ready
 * requests, reports streams closed while an answer was owed, frees closed
 * streams and calls on_drain. `busy` turns nested service() calls (from
 * application callbacks) into one more round of the outer one.
 *
 * Limits: SETTINGS_MAX_CONCURRENT_STREAMS = requests_max (nghttp2 refuses
 * streams over it), MAX_HEADER_LIST_SIZE = header_bytes_max; headers over it
 * get a 431 and a body over body_bytes_max a 413 on that stream only (then
 * RST_STREAM NO_ERROR when the client is still sending). Single-threaded.
 */
#include "broker/http/h2.h"

#include "broker/http/outq.h"
#include "common/assert.h"
#include "common/error.h"

#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Per-stream receive window: 256 KiB lets a request body stream at LAN speed
 * without one WINDOW_UPDATE per 64 KiB; the body is bounded by body_bytes_max anyway. */
#define H2_STREAM_WINDOW_BYTES (256 << 10)
/* Connection receive window: a few streams' worth. */
#define H2_CONN_WINDOW_BYTES (1 << 20)
/* Response headers beyond the caller's: :status, server, content-length. */
#define H2_RESPONSE_NV_EXTRA 3u
/* The decoded HTTP2-Settings of an upgrade: 6 bytes per setting. */
#define H2_UPGRADE_SETTINGS_MAX 512u

enum h2_state { H2_RECV = 1, H2_READY, H2_WAITING, H2_STREAMING, H2_DONE, H2_REJECTED };

struct h2_stream {
    struct sl_reqbuf req;
    struct sl_outq out; /* response body not yet taken by nghttp2 */
    struct h2_stream *prev, *next;
    int32_t id;
    uint8_t state;
    int reject_status; /* 431 once the headers went over the limit */
    bool head;         /* a HEAD request */
    bool nobody;       /* the answer has no body (HEAD, 204, 304) */
    bool ended;        /* the whole body is in `out` */
    bool deferred;     /* the data provider returned NGHTTP2_ERR_DEFERRED */
    bool eagain;       /* respond_data returned SL_EAGAIN: call on_drain */
    bool closed;       /* nghttp2 closed it: reap in service() */
    bool rst_after;    /* rejected while the client still sends: reset after the answer */
};

struct sl_h2 {
    nghttp2_session *ng;
    const struct sl_http_limits *lim;
    const struct sl_http_callbacks *cb;
    void *ctx;
    struct sl_http_session *s;
    struct h2_stream *head, *tail;
    bool busy, dirty;
    bool fatal;     /* out of memory, `out` failed, nghttp2 fatal error */
    bool proto_err; /* GOAWAY with an error sent */
    /* h2c upgrade: the upgraded request (stream 1) is delivered only once
     * the client's preface arrived, so its answer does not follow the 101 in
     * the same burst (curl 7.88 keeps at most 32 KiB after a 101 and fails
     * with more: "connection buffer size is too small"). */
    bool upgrade_hold;
};

static struct h2_stream *stream_new(struct sl_h2 *h, int32_t id)
{
    struct h2_stream *st = calloc(1, sizeof(*st));
    if (st == NULL) {
        return NULL;
    }
    sl_reqbuf_init(&st->req, h->lim->header_bytes_max, h->lim->body_bytes_max);
    st->id = id;
    st->state = H2_RECV;
    st->prev = h->tail;
    if (h->tail != NULL) {
        h->tail->next = st;
    } else {
        h->head = st;
    }
    h->tail = st;
    return st;
}

static void stream_free(struct sl_h2 *h, struct h2_stream *st)
{
    if (st->prev != NULL) {
        st->prev->next = st->next;
    } else {
        h->head = st->next;
    }
    if (st->next != NULL) {
        st->next->prev = st->prev;
    } else {
        h->tail = st->prev;
    }
    sl_reqbuf_fini(&st->req);
    sl_outq_fini(&st->out);
    free(st);
}

static struct h2_stream *stream_of(struct sl_h2 *h, int32_t id)
{
    struct h2_stream *st = nghttp2_session_get_stream_user_data(h->ng, id);
    return st != NULL && !st->closed ? st : NULL;
}

static struct h2_stream *stream_find(struct sl_h2 *h, uint32_t id, int state)
{
    if (id == 0 || id > INT32_MAX) {
        return NULL;
    }
    struct h2_stream *st = stream_of(h, (int32_t)id);
    return st != NULL && st->state == state ? st : NULL;
}

static nghttp2_nv nv(const char *name, size_t nlen, const char *value, size_t vlen)
{
    return (nghttp2_nv){.name = (uint8_t *)name, .namelen = nlen, .value = (uint8_t *)value,
                        .valuelen = vlen, .flags = NGHTTP2_NV_FLAG_NONE};
}

/* Answers a stream the application never sees (431, 413, 400): headers only. */
static void reject(struct sl_h2 *h, struct h2_stream *st, int status, bool rst)
{
    char code[8];
    snprintf(code, sizeof(code), "%d", status);
    nghttp2_nv nva[2] = {nv(":status", 7, code, strlen(code)), nv("server", 6, "sluiced", 7)};
    st->state = H2_REJECTED;
    sl_reqbuf_fini(&st->req);
    st->rst_after = rst; /* on_frame_send: RST_STREAM once the answer is out */
    int rv = nghttp2_submit_response(h->ng, st->id, nva, 2, NULL);
    if (rv != 0) {
        nghttp2_submit_rst_stream(h->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
    }
}

static int on_begin_headers(nghttp2_session *ng, const nghttp2_frame *frame, void *user)
{
    struct sl_h2 *h = user;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
        return 0;
    }
    struct h2_stream *st = stream_new(h, frame->hd.stream_id);
    if (st == NULL) {
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* nghttp2 resets the stream */
    }
    if (nghttp2_session_set_stream_user_data(ng, frame->hd.stream_id, st) != 0) {
        stream_free(h, st);
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    return 0;
}

static int add_field(struct sl_reqbuf *r, enum sl_reqbuf_field f, const uint8_t *p, size_t n)
{
    int rc = sl_reqbuf_begin(r, f);
    return rc == SL_OK ? sl_reqbuf_append(r, p, n) : rc;
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user)
{
    (void)ng;
    (void)flags;
    struct sl_h2 *h = user;
    struct h2_stream *st = stream_of(h, frame->hd.stream_id);
    if (st == NULL || st->state != H2_RECV || st->reject_status != 0 ||
        frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
        return 0; /* trailers and rejected streams: dropped */
    }
    int rc;
    if (namelen == 7 && memcmp(name, ":method", 7) == 0) {
        rc = add_field(&st->req, SL_REQBUF_METHOD, value, valuelen);
        st->head = valuelen == 4 && memcmp(value, "HEAD", 4) == 0;
    } else if (namelen == 5 && memcmp(name, ":path", 5) == 0) {
        rc = add_field(&st->req, SL_REQBUF_PATH, value, valuelen);
    } else if (namelen == 10 && memcmp(name, ":authority", 10) == 0) {
        rc = add_field(&st->req, SL_REQBUF_NAME, (const uint8_t *)"host", 4);
        rc = rc == SL_OK ? add_field(&st->req, SL_REQBUF_VALUE, value, valuelen) : rc;
    } else if (namelen > 0 && name[0] == ':') {
        rc = SL_OK; /* :scheme; nghttp2 has checked the pseudo-headers */
    } else {
        rc = add_field(&st->req, SL_REQBUF_NAME, name, namelen);
        rc = rc == SL_OK ? add_field(&st->req, SL_REQBUF_VALUE, value, valuelen) : rc;
    }
    if (rc == SL_ETOOBIG) {
        st->reject_status = 431;
    } else if (rc == SL_EPROTO) {
        st->reject_status = 400;
    } else if (rc != SL_OK) {
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    return 0;
}

static int on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *user)
{
    (void)ng;
    (void)flags;
    struct sl_h2 *h = user;
    struct h2_stream *st = stream_of(h, id);
    if (st == NULL || st->state != H2_RECV || st->reject_status != 0) {
        return 0;
    }
    int rc = sl_reqbuf_body(&st->req, data, len);
    if (rc == SL_ETOOBIG) {
        reject(h, st, 413, true);
    } else if (rc != SL_OK) {
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    return 0;
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *frame, void *user)
{
    (void)ng;
    struct sl_h2 *h = user;
    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) {
        return 0;
    }
    struct h2_stream *st = stream_of(h, frame->hd.stream_id);
    if (st == NULL || st->state != H2_RECV) {
        return 0;
    }
    bool end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    if (st->reject_status != 0) {
        reject(h, st, st->reject_status, !end);
        return 0;
    }
    if (!end) {
        return 0;
    }
    int rc = sl_reqbuf_finish(&st->req, (uint32_t)st->id, 20);
    if (rc == SL_OK) {
        st->state = H2_READY;
        h->dirty = true;
    } else if (rc == SL_EPROTO) {
        reject(h, st, 400, false);
    } else {
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    return 0;
}

static int on_stream_close(nghttp2_session *ng, int32_t id, uint32_t error_code, void *user)
{
    (void)error_code;
    struct sl_h2 *h = user;
    struct h2_stream *st = nghttp2_session_get_stream_user_data(ng, id);
    if (st != NULL) {
        st->closed = true;
        h->dirty = true;
    }
    return 0;
}

static int on_frame_send(nghttp2_session *ng, const nghttp2_frame *frame, void *user)
{
    struct sl_h2 *h = user;
    if (frame->hd.type == NGHTTP2_GOAWAY && frame->goaway.error_code != NGHTTP2_NO_ERROR) {
        h->proto_err = true;
    }
    if (frame->hd.type == NGHTTP2_HEADERS && (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
        /* RFC 9113 8.1: a complete answer, then RST_STREAM NO_ERROR stops the upload.
         * Submitted here, not with the answer: nghttp2 may send a queued RST first. */
        struct h2_stream *st = stream_of(h, frame->hd.stream_id);
        if (st != NULL && st->rst_after) {
            st->rst_after = false;
            nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_NO_ERROR);
        }
    }
    return 0;
}

static ssize_t read_body(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t length,
                         uint32_t *data_flags, nghttp2_data_source *source, void *user)
{
    (void)ng;
    (void)id;
    (void)user;
    struct h2_stream *st = source->ptr;
    size_t n = sl_outq_len(&st->out);
    n = n < length ? n : length;
    if (n > 0) {
        memcpy(buf, sl_outq_peek(&st->out), n);
        sl_outq_drop(&st->out, n);
    }
    if (sl_outq_len(&st->out) == 0 && st->ended) {
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    } else if (n == 0) {
        st->deferred = true;
        return NGHTTP2_ERR_DEFERRED;
    }
    return (ssize_t)n;
}

static void send_all(struct sl_h2 *h)
{
    while (!h->fatal) {
        const uint8_t *data = NULL;
        ssize_t n = nghttp2_session_mem_send(h->ng, &data);
        if (n < 0) {
            h->fatal = true;
        } else if (n == 0) {
            break;
        } else if (h->cb->out(h->ctx, data, (size_t)n) != SL_OK) {
            h->fatal = true;
        }
    }
}

/* Streams nghttp2 closed: tell the application when it still owed an answer, free. */
static void reap(struct sl_h2 *h)
{
    struct h2_stream *next;
    for (struct h2_stream *st = h->head; st != NULL; st = next) {
        next = st->next;
        if (!st->closed) {
            continue;
        }
        bool owed = st->state == H2_WAITING || st->state == H2_STREAMING;
        if (owed && h->cb->on_stream_closed != NULL) {
            h->cb->on_stream_closed(h->ctx, h->s, (uint32_t)st->id);
        }
        next = st->next; /* the callback cannot free streams, but may add them */
        stream_free(h, st);
    }
}

static void service(struct sl_h2 *h)
{
    if (h->busy) {
        h->dirty = true; /* from an application callback: the outer run goes round again */
        return;
    }
    h->busy = true;
    do {
        h->dirty = false;
        for (struct h2_stream *st = h->head; st != NULL; st = st->next) {
            if (st->state == H2_READY && !st->closed && !(h->upgrade_hold && st->id == 1)) {
                st->state = H2_WAITING;
                h->cb->on_request(h->ctx, h->s, &st->req.req);
            }
        }
        send_all(h);
        reap(h);
        for (struct h2_stream *st = h->head; st != NULL; st = st->next) {
            if (st->eagain && sl_outq_len(&st->out) <= h->lim->out_bytes_max / 2) {
                st->eagain = false;
                if (h->cb->on_drain != NULL) {
                    h->cb->on_drain(h->ctx, h->s, (uint32_t)st->id);
                }
            }
        }
    } while (h->dirty && !h->fatal);
    h->busy = false;
}

static int create(const struct sl_http_limits *lim, const struct sl_http_callbacks *cb,
                  void *ctx, struct sl_http_session *s, struct sl_h2 **out)
{
    struct sl_h2 *h = calloc(1, sizeof(*h));
    nghttp2_session_callbacks *cbs = NULL;
    if (h == NULL || nghttp2_session_callbacks_new(&cbs) != 0) {
        free(h);
        return SL_ENOMEM;
    }
    h->lim = lim;
    h->cb = cb;
    h->ctx = ctx;
    h->s = s;
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
    int rv = nghttp2_session_server_new(&h->ng, cbs, h);
    nghttp2_session_callbacks_del(cbs);
    if (rv != 0) {
        free(h);
        return SL_ENOMEM;
    }
    *out = h;
    return SL_OK;
}

static int submit_settings(struct sl_h2 *h)
{
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, h->lim->requests_max},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, H2_STREAM_WINDOW_BYTES},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, h->lim->header_bytes_max},
    };
    int rv = nghttp2_submit_settings(h->ng, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0]));
    if (rv == 0) {
        rv = nghttp2_session_set_local_window_size(h->ng, NGHTTP2_FLAG_NONE, 0,
                                                   H2_CONN_WINDOW_BYTES);
    }
    return rv == 0 ? SL_OK : SL_ENOMEM;
}

int sl_h2_new(const struct sl_http_limits *lim, const struct sl_http_callbacks *cb, void *ctx,
              struct sl_http_session *s, struct sl_h2 **out)
{
    struct sl_h2 *h = NULL;
    int rc = create(lim, cb, ctx, s, &h);
    if (rc == SL_OK && (rc = submit_settings(h)) != SL_OK) {
        sl_h2_free(h);
        return rc;
    }
    *out = h;
    return rc;
}

/* base64url (RFC 4648 section 5, no padding) into out; returns the length or -1. */
static int b64url_decode(const char *in, uint32_t len, uint8_t *out, size_t cap)
{
    uint32_t acc = 0, bits = 0;
    size_t n = 0;
    for (uint32_t i = 0; i < len; i++) {
        char c = in[i];
        int v = c >= 'A' && c <= 'Z'   ? c - 'A'
                : c >= 'a' && c <= 'z' ? c - 'a' + 26
                : c >= '0' && c <= '9' ? c - '0' + 52
                : c == '-'             ? 62
                : c == '_'             ? 63
                : c == '='             ? -2
                                       : -1;
        if (v == -2) {
            break;
        }
        if (v < 0) {
            return -1;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n == cap) {
                return -1;
            }
            out[n++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    return (int)n;
}

int sl_h2_new_upgrade(const struct sl_http_limits *lim, const struct sl_http_callbacks *cb,
                      void *ctx, struct sl_http_session *s, struct sl_reqbuf *req,
                      struct sl_h2 **out)
{
    uint8_t settings[H2_UPGRADE_SETTINGS_MAX];
    uint32_t vlen = 0;
    const char *v = sl_reqbuf_get(req, "http2-settings", &vlen);
    int slen = v != NULL ? b64url_decode(v, vlen, settings, sizeof(settings)) : -1;
    struct sl_h2 *h = NULL;
    int rc = slen < 0 ? SL_EPROTO : create(lim, cb, ctx, s, &h);
    struct h2_stream *st = rc == SL_OK ? stream_new(h, 1) : NULL;
    if (st == NULL) {
        sl_reqbuf_fini(req);
        sl_h2_free(h);
        return rc == SL_OK ? SL_ENOMEM : rc;
    }
    st->req = *req; /* moved: its buffers belong to the stream now */
    sl_reqbuf_init(req, req->header_bytes_max, req->body_bytes_max);
    st->req.req.id = 1;
    st->req.req.version = 20;
    st->head = strcmp(st->req.req.method, "HEAD") == 0;
    st->state = H2_READY;
    int rv = nghttp2_session_upgrade2(h->ng, settings, (size_t)slen, st->head, NULL);
    if (rv == 0) {
        /* upgrade2 keeps its stream_user_data argument for clients only. */
        rv = nghttp2_session_set_stream_user_data(h->ng, 1, st);
    }
    if (rv != 0) {
        sl_h2_free(h);
        return rv == NGHTTP2_ERR_NOMEM ? SL_ENOMEM : SL_EPROTO;
    }
    rc = submit_settings(h);
    if (rc != SL_OK) {
        sl_h2_free(h);
        return rc;
    }
    h->upgrade_hold = true;
    *out = h;
    return SL_OK;
}

void sl_h2_free(struct sl_h2 *h)
{
    if (h == NULL) {
        return;
    }
    nghttp2_session_del(h->ng); /* calls no stream-close callbacks */
    while (h->head != NULL) {
        stream_free(h, h->head);
    }
    free(h);
}

int sl_h2_flush(struct sl_h2 *h)
{
    service(h);
    return h->fatal ? SL_ENOMEM : SL_OK;
}

int sl_h2_feed(struct sl_h2 *h, const uint8_t *data, size_t len)
{
    SL_ASSERT(!h->busy);
    if (h->fatal) {
        return SL_ENOMEM;
    }
    if (h->proto_err || !nghttp2_session_want_read(h->ng)) {
        return h->proto_err ? SL_EPROTO : SL_ECLOSED;
    }
    ssize_t rv = nghttp2_session_mem_recv(h->ng, data, len);
    h->upgrade_hold = h->upgrade_hold && rv <= 0; /* the client speaks HTTP/2 now */
    if (rv == NGHTTP2_ERR_NOMEM || rv == NGHTTP2_ERR_CALLBACK_FAILURE) {
        h->fatal = true;
    } else if (rv < 0) {
        /* Bad client magic, flooding: nghttp2 queued nothing; say goodbye. */
        nghttp2_session_terminate_session(h->ng, NGHTTP2_PROTOCOL_ERROR);
        h->proto_err = true;
    }
    service(h);
    if (h->fatal) {
        return SL_ENOMEM;
    }
    return h->proto_err ? SL_EPROTO : SL_OK;
}

static int build_nv(int status, const struct sl_http_header *hdrs, uint32_t n, bool with_len,
                    size_t body_len, char *code, char *clen, nghttp2_nv *nva, size_t *nvlen)
{
    snprintf(code, 8, "%d", status);
    size_t k = 0;
    nva[k++] = nv(":status", 7, code, strlen(code));
    nva[k++] = nv("server", 6, "sluiced", 7);
    if (with_len) {
        snprintf(clen, 24, "%zu", body_len);
        nva[k++] = nv("content-length", 14, clen, strlen(clen));
    }
    for (uint32_t i = 0; i < n; i++) {
        nva[k++] = nv(hdrs[i].name, hdrs[i].name_len, hdrs[i].value, hdrs[i].value_len);
    }
    *nvlen = k;
    return SL_OK;
}

int sl_h2_respond(struct sl_h2 *h, uint32_t id, int status, const struct sl_http_header *hdrs,
                  uint32_t n, const void *body, size_t body_len, bool streaming)
{
    struct h2_stream *st = stream_find(h, id, H2_WAITING);
    if (st == NULL || h->fatal) {
        return h->fatal ? SL_ENOMEM : SL_ENOTFOUND;
    }
    bool nobody = st->head || status == 204 || status == 304;
    nghttp2_nv *nva = calloc((size_t)n + H2_RESPONSE_NV_EXTRA, sizeof(*nva));
    if (nva == NULL) {
        return SL_ENOMEM;
    }
    char code[8], clen[24];
    size_t nvlen = 0;
    build_nv(status, hdrs, n, !streaming && status != 204 && status != 304, body_len, code, clen,
             nva, &nvlen);
    int rc = SL_OK;
    if (!streaming && !nobody) {
        rc = sl_outq_push(&st->out, body, body_len);
    }
    st->nobody = nobody;
    st->ended = !streaming;
    nghttp2_data_provider prd = {.source = {.ptr = st}, .read_callback = read_body};
    bool data = !nobody && (streaming || body_len > 0);
    int rv = rc == SL_OK ? nghttp2_submit_response(h->ng, st->id, nva, nvlen, data ? &prd : NULL)
                         : 0;
    free(nva);
    if (rc != SL_OK || rv != 0) {
        sl_outq_fini(&st->out);
        return rc != SL_OK || rv == NGHTTP2_ERR_NOMEM ? SL_ENOMEM : SL_EPROTO;
    }
    st->state = streaming ? H2_STREAMING : H2_DONE;
    if (!streaming) {
        sl_reqbuf_fini(&st->req); /* answered: the request memory goes now */
    }
    service(h);
    return h->fatal ? SL_ENOMEM : SL_OK;
}

int sl_h2_data(struct sl_h2 *h, uint32_t id, const void *data, size_t len)
{
    struct h2_stream *st = stream_find(h, id, H2_STREAMING);
    if (st == NULL || h->fatal) {
        return h->fatal ? SL_ENOMEM : SL_ENOTFOUND;
    }
    if (len == 0 || st->nobody) {
        return SL_OK;
    }
    size_t queued = sl_outq_len(&st->out);
    if (queued > 0 && (uint64_t)queued + len > h->lim->out_bytes_max) {
        st->eagain = true;
        return SL_EAGAIN;
    }
    if (sl_outq_push(&st->out, data, len) != SL_OK) {
        return SL_ENOMEM;
    }
    if (st->deferred) {
        st->deferred = false;
        nghttp2_session_resume_data(h->ng, st->id);
    }
    service(h);
    return h->fatal ? SL_ENOMEM : SL_OK;
}

int sl_h2_end(struct sl_h2 *h, uint32_t id)
{
    struct h2_stream *st = stream_find(h, id, H2_STREAMING);
    if (st == NULL || h->fatal) {
        return h->fatal ? SL_ENOMEM : SL_ENOTFOUND;
    }
    st->ended = true;
    st->state = H2_DONE;
    sl_reqbuf_fini(&st->req);
    if (st->deferred) {
        st->deferred = false;
        nghttp2_session_resume_data(h->ng, st->id);
    }
    service(h);
    return h->fatal ? SL_ENOMEM : SL_OK;
}

bool sl_h2_want_read(const struct sl_h2 *h)
{
    return !h->fatal && !h->proto_err && nghttp2_session_want_read(h->ng);
}

bool sl_h2_want_close(const struct sl_h2 *h)
{
    return h->fatal ||
           (!nghttp2_session_want_read(h->ng) && !nghttp2_session_want_write(h->ng));
}

bool sl_h2_partial(const struct sl_h2 *h)
{
    for (const struct h2_stream *st = h->head; st != NULL; st = st->next) {
        if (st->state == H2_RECV && !st->closed) {
            return true;
        }
    }
    return false;
}
