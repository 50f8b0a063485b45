/* h_repl.c - cluster mode's requests on the native protocol (#14): Replicate, a follower's
 * FETCH or EPOCH_REQ answered by this broker's replica of the shard (broker/cluster/
 * replicas.h), and CreateStream of a replicated stream. */
#include "broker/native/handlers.h"

#include "broker/cluster/replicas.h"
#include "broker/engine/catalog.h"
#include "broker/native/repl_codec.h"
#include "common/error.h"

#include <stdio.h>
#include <stdlib.h>

struct repl_answer {
    struct sl_conn *conn;
    uint64_t req_id;
};

static void on_answer(void *ctx, const struct sl_repl_msg *m)
{
    struct repl_answer *a = ctx;
    struct sl_repl_wire *w = malloc(sizeof(*w));
    if (w == NULL) {
        sl_native_respond_error(a->conn, a->req_id, SL_ENOMEM, NULL);
    } else {
        sl_repl_codec_encode(m, w);
        Sluice__V1__ReplicateResponse rr = SLUICE__V1__REPLICATE_RESPONSE__INIT;
        rr.msg = &w->msg;
        sl_response resp = SLUICE__V1__RESPONSE__INIT;
        resp.id = a->req_id;
        resp.body_case = SLUICE__V1__RESPONSE__BODY_REPLICATE;
        resp.replicate = &rr;
        sl_native_respond(a->conn, &resp);
        free(w);
    }
    sl_conn_request_done(a->conn);
    sl_conn_release(a->conn);
    free(a);
}

void sl_native_replicate(struct sl_native *srv, struct sl_conn *c, const sl_request *req)
{
    const Sluice__V1__Replicate *r = req->replicate;
    if (srv->replicas == NULL) {
        sl_native_fail(c, req->id, SL_EUNSUPPORTED,
                       "Replicate is a message between the brokers of a cluster, and this "
                       "broker is not in one (started without --cluster)");
        return;
    }
    char why[200];
    struct sl_repl_msg m;
    struct sl_repl_batch batches[SL_REPL_FETCH_BATCHES_MAX];
    if (r->msg == NULL) {
        sl_native_fail(c, req->id, SL_EPROTO, "Replicate without a message");
        return;
    }
    int rc = sl_repl_codec_decode(r->msg, &m, batches, why, sizeof(why));
    if (rc == SL_OK && m.type != SL_REPL_MSG_FETCH && m.type != SL_REPL_MSG_EPOCH_REQ) {
        rc = SL_EPROTO;
        snprintf(why, sizeof(why), "a Replicate request carries a FETCH or an EPOCH_REQ");
    }
    if (rc != SL_OK) {
        sl_native_fail(c, req->id, rc, why);
        return;
    }
    struct repl_answer *a = malloc(sizeof(*a));
    if (a == NULL) {
        sl_native_fail(c, req->id, SL_ENOMEM, NULL);
        return;
    }
    *a = (struct repl_answer){.conn = c, .req_id = req->id};
    sl_conn_hold(c);
    sl_replicas_serve(srv->replicas, r->stream, r->shard, &m, on_answer, a);
}
