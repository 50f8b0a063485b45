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

/* An answer owed once the engine calls back: holds the connection until
 * sl_native_op_done. `body` is the response's kind on success. */
struct sl_native_op {
    struct sl_conn *conn;
    uint64_t req_id;
    Sluice__V1__Response__BodyCase body;
};

/* NULL (request already failed with ENOMEM) or an op holding `c`. */
struct sl_native_op *sl_native_op_new(struct sl_conn *c, uint64_t id,
                                      Sluice__V1__Response__BodyCase body);
/* Sends `resp`, ends the request, releases the connection, frees `op`. */
void sl_native_op_done(struct sl_native_op *op, const sl_response *resp);
/* An engine callback (ctx: an op) for requests whose success has an empty
 * body: CreateGroup, DeleteGroup, Purge, CommitCheckpoint, ResetGroup. */
void sl_native_op_answer_empty(void *ctx, int err, const char *why);

#endif
