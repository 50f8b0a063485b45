/* h_api.c - ApiCall (docs/PROTOCOL.md): an AWS API call carried over the native
 * connection, run by the HTTP front-end's handlers through the hook the broker set
 * (struct sl_native.api_call: the native front-end does not include the HTTP one) as the
 * connection's principal, and answered with the HTTP status and body they produced. */
#include "broker/native/handlers.h"

#include "common/error.h"

#include <stdlib.h>

struct api_op {
    struct sl_conn *conn;
    uint64_t id;
};

static void on_answer(void *ctx, int status, const char *content_type, const void *body, size_t len)
{
    struct api_op *op = ctx;
    Sluice__V1__ApiCallResponse ar = SLUICE__V1__API_CALL_RESPONSE__INIT;
    ar.status = (uint32_t)status;
    ar.content_type = (char *)content_type;
    ar.body.data = (uint8_t *)body;
    ar.body.len = len;
    sl_response resp = SLUICE__V1__RESPONSE__INIT;
    resp.id = op->id;
    resp.body_case = SLUICE__V1__RESPONSE__BODY_API_CALL;
    resp.api_call = &ar;
    sl_native_respond(op->conn, &resp);
    sl_conn_request_done(op->conn);
    sl_conn_release(op->conn);
    free(op);
}

void sl_native_api_call(struct sl_native *srv, struct sl_conn *c, const sl_request *req)
{
    const Sluice__V1__ApiCall *m = req->api_call;
    if (srv->api_call == NULL) {
        sl_native_fail(c, req->id, SL_EUNSUPPORTED,
                       "AWS API calls need the broker's HTTP listener, which holds their state: "
                       "set http_port in sluice.ini");
        return;
    }
    struct api_op *op = calloc(1, sizeof(*op));
    if (op == NULL) {
        sl_native_fail(c, req->id, SL_ENOMEM, "out of memory");
        return;
    }
    op->conn = c;
    op->id = req->id;
    sl_conn_hold(c);
    char why[256];
    int rc = srv->api_call(srv->api_ctx, c, sl_native_principal(c), m->service, m->action,
                           m->body.data, m->body.len, on_answer, op, why, sizeof(why));
    if (rc != SL_OK) {
        sl_conn_release(c);
        free(op);
        sl_native_fail(c, req->id, rc, why);
    }
}
