/* reqbuf.h - one HTTP request under construction, then complete (internal to broker/http).
 *
 * Both protocol modules (h1.c, h2.c) build requests through this: the method,
 * the path and the header fields go into one text buffer as NUL-terminated
 * strings (kept as offsets while it grows), the body into a second buffer.
 * sl_reqbuf_finish then points a struct sl_http_request into them. Growth
 * doubles (amortised linear), bounded by the two limits given at init.
 * Single-threaded, owned by the stream or pipeline slot that holds it.
 */
#ifndef SL_HTTP_REQBUF_H
#define SL_HTTP_REQBUF_H

#include "broker/http/http.h"

enum sl_reqbuf_field { SL_REQBUF_NONE, SL_REQBUF_METHOD, SL_REQBUF_PATH, SL_REQBUF_NAME,
                       SL_REQBUF_VALUE };

struct sl_reqbuf_hdr {
    uint32_t name_off, name_len, value_off, value_len;
};

struct sl_reqbuf {
    char *text;
    uint32_t text_len, text_cap, header_bytes, header_bytes_max;
    struct sl_reqbuf_hdr *offs;
    uint32_t n_offs, offs_cap;
    uint8_t *body;
    uint32_t body_len, body_cap, body_bytes_max;
    uint32_t method_off, path_off; /* UINT32_MAX until set */
    uint32_t cur_off;
    uint8_t cur; /* enum sl_reqbuf_field being appended to */
    struct sl_http_header *hdrs; /* built by finish */
    struct sl_http_request req;  /* valid after finish */
};

void sl_reqbuf_init(struct sl_reqbuf *r, uint32_t header_bytes_max, uint32_t body_bytes_max);
/* Frees the buffers and re-initialises with the same limits; idempotent. */
void sl_reqbuf_fini(struct sl_reqbuf *r);
/* Starts field `f` (ends the one before). A second METHOD/PATH is refused.
 * Errors: SL_ETOOBIG (more than SL_HTTP_HEADER_COUNT_MAX fields), SL_EPROTO, SL_ENOMEM. */
int sl_reqbuf_begin(struct sl_reqbuf *r, enum sl_reqbuf_field f);
/* Appends `n` bytes (borrowed) to the current field. Errors: SL_ETOOBIG, SL_ENOMEM. */
int sl_reqbuf_append(struct sl_reqbuf *r, const void *p, size_t n);
/* Appends body bytes (borrowed). Errors: SL_ETOOBIG, SL_ENOMEM. */
int sl_reqbuf_body(struct sl_reqbuf *r, const void *p, size_t n);
/* Value of the first header `name` (lower-case, case-insensitive match) of a
 * request being built or finished; NULL when absent. *len returns its length. */
const char *sl_reqbuf_get(const struct sl_reqbuf *r, const char *name, uint32_t *len);
/* Ends the last field, lower-cases names and fills r->req. Errors: SL_EPROTO
 * (no method or path), SL_ENOMEM. */
int sl_reqbuf_finish(struct sl_reqbuf *r, uint32_t id, uint8_t version);

#endif
