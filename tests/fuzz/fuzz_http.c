/* fuzz_http.c - broker/http: the HTTP/1.1 + h2c server session over untrusted bytes.
 *
 * Input: byte 0 = flags, byte 1 = split seed, then the bytes a client sent.
 * Flags: bit 0 answer inside on_request (else after each fed chunk, newest
 * first, so h1 pipelining must reorder); bit 1 streaming answers
 * (begin/data.../end, SL_EAGAIN honoured); bit 2 tiny limits (256-byte headers,
 * 64-byte bodies, 2 requests, 128 buffered bytes); bit 3 HEAD-like empty
 * bodies and a 204 now and then. Split seed 0 feeds everything at once, else
 * chunk sizes come from a small LCG seeded with it (1..64 bytes).
 * Checks beyond ASan/UBSan: every request's strings are NUL-terminated and
 * its bytes readable until answered; after feed returns an error the session
 * reads no more; ids are answered once (a second answer is SL_ENOTFOUND);
 * the output stays under a bound for the input (no runaway growth).
 */
#include "broker/http/http.h"
#include "common/assert.h"
#include "common/error.h"
#include "fuzz_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FZ_PENDING_MAX 64

struct fz {
    struct sl_http_session *s;
    uint8_t flags;
    uint32_t pending[FZ_PENDING_MAX];
    int n_pending;
    size_t out_bytes;
    uint32_t sink;
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fz_out(void *ctx, const void *data, size_t len)
{
    struct fz *f = ctx;
    f->out_bytes += len;
    f->sink += fz_touch(data, len);
    return SL_OK;
}

static void answer(struct fz *f, uint32_t id)
{
    static const uint8_t body[300] = {'x'};
    struct sl_http_header h = {"content-type", 12, "text/plain", 10};
    int status = (f->flags & 8) && id % 3 == 0 ? 204 : 200;
    size_t blen = (f->flags & 8) ? 0 : 5 + id % 200;
    if ((f->flags & 2) == 0) {
        int rc = sl_http_respond(f->s, id, status, &h, 1, body, blen);
        SL_ASSERT(rc == SL_OK || rc == SL_ENOTFOUND || rc == SL_EPROTO);
        SL_ASSERT(sl_http_respond(f->s, id, status, &h, 1, body, blen) == SL_ENOTFOUND);
        return;
    }
    if (sl_http_respond_begin(f->s, id, status, &h, 1) != SL_OK) {
        return;
    }
    for (int i = 0; i < 4; i++) {
        int rc = sl_http_respond_data(f->s, id, body, 100);
        SL_ASSERT(rc == SL_OK || rc == SL_EAGAIN || rc == SL_ENOTFOUND);
    }
    int rc = sl_http_respond_end(f->s, id);
    SL_ASSERT(rc == SL_OK || rc == SL_ENOTFOUND);
    SL_ASSERT(sl_http_respond_end(f->s, id) == SL_ENOTFOUND);
}

static void fz_request(void *ctx, struct sl_http_session *s, const struct sl_http_request *r)
{
    struct fz *f = ctx;
    SL_ASSERT(s == f->s);
    SL_ASSERT(r->version == 10 || r->version == 11 || r->version == 20);
    f->sink += (uint32_t)strlen(r->method) + (uint32_t)strlen(r->path);
    for (uint32_t i = 0; i < r->n_headers; i++) {
        SL_ASSERT(r->headers[i].name[r->headers[i].name_len] == '\0');
        SL_ASSERT(r->headers[i].value[r->headers[i].value_len] == '\0');
        f->sink += fz_touch((const uint8_t *)r->headers[i].value, r->headers[i].value_len);
    }
    f->sink += fz_touch(r->body, r->body_len);
    if (f->flags & 1) {
        answer(f, r->id);
    } else {
        SL_ASSERT(f->n_pending < FZ_PENDING_MAX);
        f->pending[f->n_pending++] = r->id;
    }
}

static void fz_closed(void *ctx, struct sl_http_session *s, uint32_t id)
{
    (void)s;
    struct fz *f = ctx;
    for (int i = 0; i < f->n_pending; i++) {
        if (f->pending[i] == id) {
            f->pending[i] = f->pending[--f->n_pending];
            return;
        }
    }
}

static const struct sl_http_callbacks FZ_CB = {fz_request, fz_out, fz_closed, NULL};

static void answer_pending(struct fz *f)
{
    while (f->n_pending > 0) {
        answer(f, f->pending[--f->n_pending]);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) {
        return 0;
    }
    struct fz f = {.flags = data[0]};
    uint32_t lcg = data[1];
    bool split = data[1] != 0;
    data += 2;
    size -= 2;
    struct sl_http_limits lim = {.header_bytes_max = 4096, .body_bytes_max = 4096,
                                 .requests_max = 16, .out_bytes_max = 1024};
    if (f.flags & 4) {
        lim = (struct sl_http_limits){256, 64, 2, 128};
    }
    SL_ASSERT(sl_http_session_new(&lim, &FZ_CB, &f, &f.s) == SL_OK);
    size_t off = 0;
    bool stopped = false;
    while (off < size) {
        size_t n = size - off;
        if (split) {
            lcg = lcg * 1103515245u + 12345u;
            size_t c = 1 + (lcg >> 16) % 64;
            n = c < n ? c : n;
        }
        int rc = sl_http_session_feed(f.s, data + off, n);
        off += n;
        if (stopped) {
            SL_ASSERT(rc != SL_OK); /* no reading after an error */
        }
        stopped = stopped || rc != SL_OK;
        (void)sl_http_session_want_read(f.s);
        (void)sl_http_session_partial(f.s);
        answer_pending(&f);
        if (sl_http_session_want_close(f.s)) {
            break;
        }
    }
    answer_pending(&f);
    /* Each request gets at most ~1.5 KiB of answer; h2 control frames are small too. */
    SL_ASSERT(f.out_bytes <= 64 * (size + 64) + (1u << 20));
    sl_http_session_free(f.s);
    return (int)(f.sink & 0);
}
