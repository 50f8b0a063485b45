/* reply.c - native responses (see reply.h). */
#include "broker/native/reply.h"

#include "common/assert.h"
#include "common/error.h"
#include "common/log.h"

#include <stdlib.h>

void sl_native_respond(struct sl_conn *c, const sl_response *resp)
{
    if (sl_conn_is_closed(c)) {
        return;
    }
    size_t size = sl_response_size(resp);
    if (size + SL_FRAME_HEADER_BYTES > UINT32_MAX / 2) {
        sl_error("net", "conn %llu: response too large (%zu bytes)", (unsigned long long)c->id,
                 size);
        sl_conn_close_after_send(c);
        return;
    }
    uint32_t len = (uint32_t)size + SL_FRAME_HEADER_BYTES;
    uint8_t *p = sl_conn_reserve(c, len);
    if (p == NULL) {
        return; /* closed */
    }
    sl_frame_put_header(p, (uint32_t)size);
    size_t packed = sl_response_pack(resp, p + SL_FRAME_HEADER_BYTES);
    SL_ASSERT(packed == size);
    sl_conn_commit(c, len);
}

void sl_native_respond_error(struct sl_conn *c, uint64_t id, int code, const char *msg)
{
    sl_response resp = SLUICE__V1__RESPONSE__INIT;
    resp.id = id;
    resp.code = (Sluice__V1__ErrorCode)code;
    resp.message = (char *)(msg != NULL ? msg : sl_strerror(code));
    sl_native_respond(c, &resp);
}

void sl_native_fail(struct sl_conn *c, uint64_t id, int code, const char *msg)
{
    sl_native_respond_error(c, id, code, msg);
    sl_conn_request_done(c);
}

struct sl_native_op *sl_native_op_new(struct sl_conn *c, uint64_t id,
                                      Sluice__V1__Response__BodyCase body)
{
    struct sl_native_op *op = calloc(1, sizeof(*op));
    if (op == NULL) {
        sl_native_fail(c, id, SL_ENOMEM, NULL);
        return NULL;
    }
    *op = (struct sl_native_op){.conn = c, .req_id = id, .body = body};
    sl_conn_hold(c);
    return op;
}

void sl_native_op_done(struct sl_native_op *op, const sl_response *resp)
{
    sl_native_respond(op->conn, resp);
    sl_conn_request_done(op->conn);
    sl_conn_release(op->conn);
    free(op);
}

void sl_native_op_answer_empty(void *ctx, int err, const char *why)
{
    struct sl_native_op *op = ctx;
    sl_response resp = SLUICE__V1__RESPONSE__INIT;
    resp.id = op->req_id;
    resp.code = (Sluice__V1__ErrorCode)err;
    resp.message = (char *)(err != SL_OK && why == NULL ? sl_strerror(err) : why);
    Sluice__V1__CreateGroupResponse cg = SLUICE__V1__CREATE_GROUP_RESPONSE__INIT;
    Sluice__V1__DeleteGroupResponse dg = SLUICE__V1__DELETE_GROUP_RESPONSE__INIT;
    Sluice__V1__PurgeResponse pu = SLUICE__V1__PURGE_RESPONSE__INIT;
    Sluice__V1__CommitCheckpointResponse cc = SLUICE__V1__COMMIT_CHECKPOINT_RESPONSE__INIT;
    Sluice__V1__ResetGroupResponse rg = SLUICE__V1__RESET_GROUP_RESPONSE__INIT;
    if (err == SL_OK) {
        resp.body_case = op->body;
        switch (op->body) {
        case SLUICE__V1__RESPONSE__BODY_CREATE_GROUP:
            resp.create_group = &cg;
            break;
        case SLUICE__V1__RESPONSE__BODY_DELETE_GROUP:
            resp.delete_group = &dg;
            break;
        case SLUICE__V1__RESPONSE__BODY_PURGE:
            resp.purge = &pu;
            break;
        case SLUICE__V1__RESPONSE__BODY_COMMIT_CHECKPOINT:
            resp.commit_checkpoint = &cc;
            break;
        case SLUICE__V1__RESPONSE__BODY_RESET_GROUP:
            resp.reset_group = &rg;
            break;
        default:
            SL_ASSERT(!"sl_native_op_answer_empty: a body that is not empty");
        }
    }
    sl_native_op_done(op, &resp);
}
