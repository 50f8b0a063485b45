/* h1.h - the HTTP/1.x half of a session (internal to broker/http; the only
 * user of http_parser). Errors and ownership as in http.h. */
#ifndef SL_HTTP_H1_H
#define SL_HTTP_H1_H

#include "broker/http/http.h"
#include "broker/http/outq.h"
#include "broker/http/reqbuf.h"

struct sl_h1;

/* `lim`, `cb` are borrowed for the life of the h1 (they live in the session). */
int sl_h1_new(const struct sl_http_limits *lim, const struct sl_http_callbacks *cb, void *ctx,
              struct sl_http_session *s, struct sl_h1 **out);
void sl_h1_free(struct sl_h1 *h);
int sl_h1_feed(struct sl_h1 *h, const uint8_t *data, size_t len);
/* True once a body-less HTTP/1.1 request asked for h2c and 101 was sent. */
bool sl_h1_upgraded(const struct sl_h1 *h);
/* Moves the upgrade request (finished) into *req and the bytes received after
 * it into *rest (both returns owned). */
void sl_h1_take_upgrade(struct sl_h1 *h, struct sl_reqbuf *req, struct sl_outq *rest);
int sl_h1_respond(struct sl_h1 *h, uint32_t id, int status, const struct sl_http_header *hdrs,
                  uint32_t n, const void *body, size_t body_len, bool streaming);
int sl_h1_data(struct sl_h1 *h, uint32_t id, const void *data, size_t len);
int sl_h1_end(struct sl_h1 *h, uint32_t id);
bool sl_h1_want_read(const struct sl_h1 *h);
bool sl_h1_want_close(const struct sl_h1 *h);
bool sl_h1_partial(const struct sl_h1 *h);

#endif
