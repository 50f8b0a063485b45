/* reply.h - native responses: packed into the connection's send queue. */
#ifndef SL_NATIVE_REPLY_H
#define SL_NATIVE_REPLY_H

#include "broker/net/net.h"
#include "proto/frame.h"

#include <stdint.h>

/* Packs `resp` (borrowed) into the send queue; a response that cannot be
 * queued (too large, no memory) closes the connection. */
void sl_native_respond(struct sl_conn *c, const sl_response *resp);
/* Answers request `id` with an error (msg NULL: the code's text). */
void sl_native_respond_error(struct sl_conn *c, uint64_t id, int code, const char *msg);
/* sl_native_respond_error, then sl_conn_request_done: a request refused. */
void sl_native_fail(struct sl_conn *c, uint64_t id, int code, const char *msg);

#endif
