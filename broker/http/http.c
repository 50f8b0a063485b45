/* http.c - the HTTP server session: protocol detection, the h2c upgrade hand-over,
 * argument checks and dispatch to h1.c (HTTP/1.x) or h2.c (HTTP/2).
 *
 * Detection: a connection whose first 24 bytes are the HTTP/2 client preface
 * ("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") is HTTP/2 by prior knowledge; the first byte
 * that departs from it makes it HTTP/1.x. Up to 23 bytes wait in `pre` until
 * they decide. An HTTP/1.1 request with `Upgrade: h2c` and HTTP2-Settings and
 * no body switches the session to HTTP/2 after the 101 (h1.c decides, h2.c
 * takes the request over as stream 1); the h1 half is freed then.
 *
 * Threading: none of its own; see http.h. Ownership: the session owns its
 * halves; requests are borrowed by the application (http.h).
 */
#include "broker/http/http.h"

#include "broker/http/h1.h"
#include "broker/http/h2.h"
#include "common/assert.h"
#include "common/error.h"

#include <stdlib.h>
#include <string.h>

#define HTTP2_PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define HTTP2_PREFACE_BYTES 24u
_Static_assert(sizeof(HTTP2_PREFACE) - 1 == HTTP2_PREFACE_BYTES, "the RFC 9113 preface");

enum http_mode { MODE_DETECT, MODE_H1, MODE_H2, MODE_DEAD };

struct sl_http_session {
    struct sl_http_limits lim;
    struct sl_http_callbacks cb;
    void *ctx;
    uint8_t mode;
    uint8_t pre[HTTP2_PREFACE_BYTES];
    uint32_t pre_len;
    struct sl_h1 *h1;
    struct sl_h2 *h2;
    bool busy; /* inside feed: nested feeds are refused */
};

int sl_http_session_new(const struct sl_http_limits *lim, const struct sl_http_callbacks *cb,
                        void *ctx, struct sl_http_session **out)
{
    if (lim == NULL || cb == NULL || out == NULL || cb->on_request == NULL || cb->out == NULL) {
        return SL_EINVAL;
    }
    const uint32_t v[] = {lim->header_bytes_max, lim->body_bytes_max, lim->requests_max,
                          lim->out_bytes_max};
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        if (v[i] == 0 || v[i] > SL_HTTP_LIMIT_BYTES_MAX) {
            return SL_EINVAL;
        }
    }
    struct sl_http_session *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return SL_ENOMEM;
    }
    s->lim = *lim;
    s->cb = *cb;
    s->ctx = ctx;
    s->mode = MODE_DETECT;
    int rc = sl_h1_new(&s->lim, &s->cb, ctx, s, &s->h1);
    if (rc != SL_OK) {
        free(s);
        return rc;
    }
    *out = s;
    return SL_OK;
}

void sl_http_session_free(struct sl_http_session *s)
{
    if (s == NULL) {
        return;
    }
    SL_ASSERT(!s->busy);
    sl_h1_free(s->h1);
    sl_h2_free(s->h2);
    free(s);
}

/* The h1 half asked for h2c and sent 101: the rest of the connection is HTTP/2. */
static int upgrade(struct sl_http_session *s)
{
    struct sl_reqbuf req;
    struct sl_outq rest;
    sl_h1_take_upgrade(s->h1, &req, &rest);
    sl_h1_free(s->h1);
    s->h1 = NULL;
    int rc = sl_h2_new_upgrade(&s->lim, &s->cb, s->ctx, s, &req, &s->h2);
    s->mode = rc == SL_OK ? MODE_H2 : MODE_DEAD;
    rc = rc == SL_OK ? sl_h2_flush(s->h2) : rc; /* SETTINGS, then stream 1 is delivered */
    if (rc == SL_OK && sl_outq_len(&rest) > 0) {
        rc = sl_h2_feed(s->h2, sl_outq_peek(&rest), sl_outq_len(&rest));
    }
    sl_outq_fini(&rest);
    return rc;
}

/* Feeds bytes to the decided protocol. */
static int dispatch(struct sl_http_session *s, const uint8_t *data, size_t len)
{
    if (s->mode == MODE_H2) {
        return sl_h2_feed(s->h2, data, len);
    }
    SL_ASSERT(s->mode == MODE_H1);
    int rc = sl_h1_feed(s->h1, data, len);
    if (sl_h1_upgraded(s->h1)) {
        int urc = upgrade(s);
        rc = rc == SL_OK ? urc : rc;
    }
    return rc;
}

/* Consumes bytes that may still be the HTTP/2 preface; decides the mode. */
static int detect(struct sl_http_session *s, const uint8_t **data, size_t *len)
{
    size_t n = 0;
    while (n < *len && s->pre_len + n < HTTP2_PREFACE_BYTES &&
           (*data)[n] == (uint8_t)HTTP2_PREFACE[s->pre_len + n]) {
        n++;
    }
    if (s->pre_len + n < HTTP2_PREFACE_BYTES && n == *len) {
        memcpy(s->pre + s->pre_len, *data, n); /* undecided: wait for more */
        s->pre_len += (uint32_t)n;
        *len = 0;
        return SL_OK;
    }
    bool h2 = s->pre_len + n == HTTP2_PREFACE_BYTES;
    if (h2) {
        int rc = sl_h2_new(&s->lim, &s->cb, s->ctx, s, &s->h2);
        if (rc != SL_OK) {
            s->mode = MODE_DEAD;
            return rc;
        }
        sl_h1_free(s->h1);
        s->h1 = NULL;
    }
    s->mode = h2 ? MODE_H2 : MODE_H1;
    if (s->pre_len > 0) {
        uint32_t held = s->pre_len;
        s->pre_len = 0;
        int rc = dispatch(s, s->pre, held); /* the bytes held back go first */
        if (rc != SL_OK) {
            *len = 0;
            return rc;
        }
    }
    return SL_OK;
}

int sl_http_session_feed(struct sl_http_session *s, const uint8_t *data, size_t len)
{
    SL_ASSERT(s != NULL && (data != NULL || len == 0));
    SL_ASSERT(!s->busy); /* not from inside a callback */
    if (s->mode == MODE_DEAD) {
        return SL_ECLOSED;
    }
    s->busy = true;
    int rc = SL_OK;
    if (s->mode == MODE_DETECT && len > 0) {
        rc = detect(s, &data, &len);
    }
    if (rc == SL_OK && len > 0) {
        rc = dispatch(s, data, len);
    }
    s->busy = false;
    return rc;
}

bool sl_http_session_want_read(const struct sl_http_session *s)
{
    switch (s->mode) {
    case MODE_DETECT: return true;
    case MODE_H1: return sl_h1_want_read(s->h1);
    case MODE_H2: return sl_h2_want_read(s->h2);
    default: return false;
    }
}

bool sl_http_session_want_close(const struct sl_http_session *s)
{
    switch (s->mode) {
    case MODE_DETECT: return false;
    case MODE_H1: return sl_h1_want_close(s->h1);
    case MODE_H2: return sl_h2_want_close(s->h2);
    default: return true;
    }
}

bool sl_http_session_partial(const struct sl_http_session *s)
{
    switch (s->mode) {
    case MODE_DETECT: return s->pre_len > 0;
    case MODE_H1: return sl_h1_partial(s->h1);
    case MODE_H2: return sl_h2_partial(s->h2);
    default: return false;
    }
}

static bool token_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Names lower-case tokens, not ones the session writes itself; values without CR, LF, NUL. */
static bool headers_ok(const struct sl_http_header *hdrs, uint32_t n)
{
    static const char *const own[] = {"content-length", "transfer-encoding", "connection",
                                      "keep-alive", "upgrade", "server"};
    if (n > 0 && hdrs == NULL) {
        return false;
    }
    for (uint32_t i = 0; i < n; i++) {
        const struct sl_http_header *h = &hdrs[i];
        if (h->name == NULL || h->name_len == 0 || (h->value == NULL && h->value_len > 0)) {
            return false;
        }
        for (uint32_t k = 0; k < h->name_len; k++) {
            if (h->name[k] == '\0' || !token_char(h->name[k])) {
                return false;
            }
        }
        for (uint32_t k = 0; k < h->value_len; k++) {
            if (h->value[k] == '\r' || h->value[k] == '\n' || h->value[k] == '\0') {
                return false;
            }
        }
        for (size_t k = 0; k < sizeof(own) / sizeof(own[0]); k++) {
            if (strlen(own[k]) == h->name_len && memcmp(own[k], h->name, h->name_len) == 0) {
                return false;
            }
        }
    }
    return true;
}

static int check_answer(const struct sl_http_session *s, int status,
                        const struct sl_http_header *hdrs, uint32_t n)
{
    if (s->mode != MODE_H1 && s->mode != MODE_H2) {
        return SL_ENOTFOUND;
    }
    if (status < 200 || status > 599 || n > SL_HTTP_HEADER_COUNT_MAX || !headers_ok(hdrs, n)) {
        return SL_EINVAL;
    }
    return SL_OK;
}

int sl_http_respond(struct sl_http_session *s, uint32_t id, int status,
                    const struct sl_http_header *hdrs, uint32_t n, const void *body,
                    size_t body_len)
{
    int rc = check_answer(s, status, hdrs, n);
    if (rc != SL_OK) {
        return rc;
    }
    if (body == NULL && body_len > 0) {
        return SL_EINVAL;
    }
    if (s->mode == MODE_H2) {
        return sl_h2_respond(s->h2, id, status, hdrs, n, body, body_len, false);
    }
    return sl_h1_respond(s->h1, id, status, hdrs, n, body, body_len, false);
}

int sl_http_respond_begin(struct sl_http_session *s, uint32_t id, int status,
                          const struct sl_http_header *hdrs, uint32_t n)
{
    int rc = check_answer(s, status, hdrs, n);
    if (rc != SL_OK) {
        return rc;
    }
    if (s->mode == MODE_H2) {
        return sl_h2_respond(s->h2, id, status, hdrs, n, NULL, 0, true);
    }
    return sl_h1_respond(s->h1, id, status, hdrs, n, NULL, 0, true);
}

int sl_http_respond_data(struct sl_http_session *s, uint32_t id, const void *data, size_t len)
{
    if (data == NULL && len > 0) {
        return SL_EINVAL;
    }
    if (s->mode == MODE_H2) {
        return sl_h2_data(s->h2, id, data, len);
    }
    return s->mode == MODE_H1 ? sl_h1_data(s->h1, id, data, len) : SL_ENOTFOUND;
}

int sl_http_respond_end(struct sl_http_session *s, uint32_t id)
{
    if (s->mode == MODE_H2) {
        return sl_h2_end(s->h2, id);
    }
    return s->mode == MODE_H1 ? sl_h1_end(s->h1, id) : SL_ENOTFOUND;
}
