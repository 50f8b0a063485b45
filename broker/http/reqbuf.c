/* reqbuf.c - one HTTP request under construction (see reqbuf.h).
 *
 * Invariants: text holds text_len bytes, every ended field followed by a NUL;
 * header_bytes (raw bytes, NULs excluded) <= header_bytes_max; body_len <=
 * body_bytes_max; n_offs <= SL_HTTP_HEADER_COUNT_MAX. Single-threaded.
 */
#include "broker/http/reqbuf.h"

#include "common/assert.h"
#include "common/error.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define REQBUF_NONE UINT32_MAX
#define REQBUF_TEXT_MIN 256u
#define REQBUF_BODY_MIN 1024u
/* One NUL per method, path, name and value on top of the raw bytes. */
#define REQBUF_NULS_MAX (2u * SL_HTTP_HEADER_COUNT_MAX + 2u)

void sl_reqbuf_init(struct sl_reqbuf *r, uint32_t header_bytes_max, uint32_t body_bytes_max)
{
    SL_ASSERT(header_bytes_max <= SL_HTTP_LIMIT_BYTES_MAX);
    SL_ASSERT(body_bytes_max <= SL_HTTP_LIMIT_BYTES_MAX);
    memset(r, 0, sizeof(*r));
    r->header_bytes_max = header_bytes_max;
    r->body_bytes_max = body_bytes_max;
    r->method_off = REQBUF_NONE;
    r->path_off = REQBUF_NONE;
}

void sl_reqbuf_fini(struct sl_reqbuf *r)
{
    free(r->text);
    free(r->offs);
    free(r->body);
    free(r->hdrs);
    sl_reqbuf_init(r, r->header_bytes_max, r->body_bytes_max);
}

/* Grows *buf to hold `need` bytes, doubling from `min`; need <= limit checked by callers. */
static int grow(void **buf, uint32_t *cap, uint64_t need, uint32_t min, size_t elem)
{
    if (need <= *cap) {
        return SL_OK;
    }
    uint64_t c = *cap < min ? min : *cap;
    while (c < need) {
        c *= 2;
    }
    void *p = realloc(*buf, (size_t)c * elem);
    if (p == NULL) {
        return SL_ENOMEM;
    }
    *buf = p;
    *cap = (uint32_t)c;
    return SL_OK;
}

static int text_put(struct sl_reqbuf *r, const void *p, size_t n)
{
    uint64_t need = (uint64_t)r->text_len + n;
    SL_ASSERT(need <= (uint64_t)r->header_bytes_max + REQBUF_NULS_MAX);
    int rc = grow((void **)&r->text, &r->text_cap, need, REQBUF_TEXT_MIN, 1);
    if (rc != SL_OK) {
        return rc;
    }
    memcpy(r->text + r->text_len, p, n);
    r->text_len += (uint32_t)n;
    return SL_OK;
}

/* Ends the current field: stores its length and writes its NUL. */
static int end_field(struct sl_reqbuf *r)
{
    if (r->cur == SL_REQBUF_NONE) {
        return SL_OK;
    }
    uint32_t len = r->text_len - r->cur_off;
    if (r->cur == SL_REQBUF_NAME) {
        r->offs[r->n_offs - 1].name_len = len;
    } else if (r->cur == SL_REQBUF_VALUE) {
        r->offs[r->n_offs - 1].value_len = len;
    }
    r->cur = SL_REQBUF_NONE;
    return text_put(r, "", 1);
}

int sl_reqbuf_begin(struct sl_reqbuf *r, enum sl_reqbuf_field f)
{
    SL_ASSERT(f != SL_REQBUF_NONE);
    int rc = end_field(r);
    if (rc != SL_OK) {
        return rc;
    }
    if ((f == SL_REQBUF_METHOD && r->method_off != REQBUF_NONE) ||
        (f == SL_REQBUF_PATH && r->path_off != REQBUF_NONE)) {
        return SL_EPROTO;
    }
    if (f == SL_REQBUF_NAME) {
        if (r->n_offs == SL_HTTP_HEADER_COUNT_MAX) {
            return SL_ETOOBIG;
        }
        rc = grow((void **)&r->offs, &r->offs_cap, r->n_offs + 1u, 8, sizeof(*r->offs));
        if (rc != SL_OK) {
            return rc;
        }
        r->offs[r->n_offs++] = (struct sl_reqbuf_hdr){r->text_len, 0, REQBUF_NONE, 0};
    } else if (f == SL_REQBUF_VALUE) {
        if (r->n_offs == 0 || r->offs[r->n_offs - 1].value_off != REQBUF_NONE) {
            return SL_EPROTO; /* a value without its name */
        }
        r->offs[r->n_offs - 1].value_off = r->text_len;
    } else if (f == SL_REQBUF_METHOD) {
        r->method_off = r->text_len;
    } else {
        r->path_off = r->text_len;
    }
    r->cur = (uint8_t)f;
    r->cur_off = r->text_len;
    return SL_OK;
}

int sl_reqbuf_append(struct sl_reqbuf *r, const void *p, size_t n)
{
    SL_ASSERT(r->cur != SL_REQBUF_NONE);
    if (n > r->header_bytes_max - r->header_bytes) {
        return SL_ETOOBIG;
    }
    r->header_bytes += (uint32_t)n;
    return text_put(r, p, n);
}

int sl_reqbuf_body(struct sl_reqbuf *r, const void *p, size_t n)
{
    if (n > r->body_bytes_max - r->body_len) {
        return SL_ETOOBIG;
    }
    int rc = grow((void **)&r->body, &r->body_cap, (uint64_t)r->body_len + n, REQBUF_BODY_MIN, 1);
    if (rc != SL_OK) {
        return rc;
    }
    memcpy(r->body + r->body_len, p, n);
    r->body_len += (uint32_t)n;
    SL_ASSERT(r->body_len <= r->body_bytes_max);
    return SL_OK;
}

const char *sl_reqbuf_get(const struct sl_reqbuf *r, const char *name, uint32_t *len)
{
    size_t nlen = strlen(name);
    for (uint32_t i = 0; i < r->n_offs; i++) {
        const struct sl_reqbuf_hdr *h = &r->offs[i];
        /* The field being appended to has no length yet: skip it. */
        bool open = (i + 1 == r->n_offs) && r->cur != SL_REQBUF_NONE;
        if (open || h->name_len != nlen || h->value_off == REQBUF_NONE) {
            continue;
        }
        if (strncasecmp(r->text + h->name_off, name, nlen) == 0) {
            *len = h->value_len;
            return r->text + h->value_off;
        }
    }
    return NULL;
}

int sl_reqbuf_finish(struct sl_reqbuf *r, uint32_t id, uint8_t version)
{
    int rc = end_field(r);
    if (rc != SL_OK) {
        return rc;
    }
    if (r->method_off == REQBUF_NONE || r->path_off == REQBUF_NONE) {
        return SL_EPROTO;
    }
    if (r->n_offs > 0) {
        r->hdrs = calloc(r->n_offs, sizeof(*r->hdrs));
        if (r->hdrs == NULL) {
            return SL_ENOMEM;
        }
    }
    for (uint32_t i = 0; i < r->n_offs; i++) {
        struct sl_reqbuf_hdr *h = &r->offs[i];
        char *name = r->text + h->name_off;
        for (uint32_t k = 0; k < h->name_len; k++) {
            if (name[k] >= 'A' && name[k] <= 'Z') {
                name[k] = (char)(name[k] - 'A' + 'a');
            }
        }
        bool no_value = h->value_off == REQBUF_NONE;
        r->hdrs[i] = (struct sl_http_header){
            .name = name, .name_len = h->name_len,
            .value = no_value ? "" : r->text + h->value_off,
            .value_len = no_value ? 0 : h->value_len};
    }
    r->req = (struct sl_http_request){
        .id = id, .version = version, .method = r->text + r->method_off,
        .path = r->text + r->path_off, .headers = r->hdrs, .n_headers = r->n_offs,
        .body = r->body != NULL ? r->body : (const uint8_t *)"", .body_len = r->body_len};
    SL_ASSERT(r->req.method[strlen(r->req.method)] == '\0');
    return SL_OK;
}
