/* h2.h - the HTTP/2 (h2c) half of a session (internal to broker/http; the
 * only user of nghttp2). Errors and ownership as in http.h. */
#ifndef SL_HTTP_H2_H
#define SL_HTTP_H2_H

#include "broker/http/http.h"
#include "broker/http/reqbuf.h"

struct sl_h2;

/* Prior knowledge: the client preface is the first thing fed. `lim`, `cb`
 * are borrowed for the life of the h2 (they live in the session). */
int sl_h2_new(const struct sl_http_limits *lim, const struct sl_http_callbacks *cb, void *ctx,
              struct sl_http_session *s, struct sl_h2 **out);
/* h2c upgrade: `req` (finished, body-less) takes ownership and becomes stream 1.
 * Errors: SL_EPROTO (bad HTTP2-Settings), SL_ENOMEM; `req` is freed either way. */
int sl_h2_new_upgrade(const struct sl_http_limits *lim, const struct sl_http_callbacks *cb,
                      void *ctx, struct sl_http_session *s, struct sl_reqbuf *req,
                      struct sl_h2 **out);
void sl_h2_free(struct sl_h2 *h);
int sl_h2_feed(struct sl_h2 *h, const uint8_t *data, size_t len);
/* Hands pending frames to callbacks->out (after creation). Errors: SL_ENOMEM. */
int sl_h2_flush(struct sl_h2 *h);
int sl_h2_respond(struct sl_h2 *h, uint32_t id, int status, const struct sl_http_header *hdrs,
                  uint32_t n, const void *body, size_t body_len, bool streaming);
int sl_h2_data(struct sl_h2 *h, uint32_t id, const void *data, size_t len);
int sl_h2_end(struct sl_h2 *h, uint32_t id);
bool sl_h2_want_read(const struct sl_h2 *h);
bool sl_h2_want_close(const struct sl_h2 *h);
bool sl_h2_partial(const struct sl_h2 *h);

#endif
