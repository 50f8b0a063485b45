/* dispatch.c - the native protocol's request switch and Hello. */
#include "broker/native/handlers.h"

#include "broker/version.h"
#include "common/error.h"

#include <stdio.h>



static void hello(struct sl_native *srv, struct sl_conn *c, const sl_request *req)
{
    if (req->hello->version != SL_PROTOCOL_VERSION) {
        char msg[96];
        snprintf(msg, sizeof(msg), "protocol version %u not supported (this broker speaks %u)",
                 req->hello->version, SL_PROTOCOL_VERSION);
        sl_native_fail(c, req->id, SL_EUNSUPPORTED, msg);
        return;
    }
    c->proto_flags |= SL_NATIVE_HELLO_DONE;
    sl_response resp = SLUICE__V1__RESPONSE__INIT;
    Sluice__V1__HelloResponse hr = SLUICE__V1__HELLO_RESPONSE__INIT;
    hr.version = SL_PROTOCOL_VERSION;
    hr.broker_version = (char *)SL_BROKER_VERSION;
    hr.max_frame_bytes = srv->cfg.max_frame_bytes;
    hr.max_inflight = srv->cfg.max_inflight;
    sl_native_hello_auth(srv, c, &hr);
    resp.id = req->id;
    resp.body_case = SLUICE__V1__RESPONSE__BODY_HELLO;
    resp.hello = &hr;
    sl_native_respond(c, &resp);
    sl_conn_request_done(c);
}

void sl_native_dispatch(struct sl_native *srv, struct sl_conn *c, sl_request *req)
{
    if (!(c->proto_flags & SL_NATIVE_HELLO_DONE) && req->body_case != SLUICE__V1__REQUEST__BODY_HELLO) {
        sl_native_fail(c, req->id, SL_EPROTO, "the first request on a connection must be Hello");
        sl_request_free(req);
        return;
    }
    char why[256];
    int arc = sl_native_authorize(srv, c, req, why, sizeof(why));
    if (arc != SL_OK) {
        sl_native_fail(c, req->id, arc, why);
        sl_request_free(req);
        return;
    }
    switch (req->body_case) {
    case SLUICE__V1__REQUEST__BODY_HELLO:
        hello(srv, c, req);
        break;
    case SLUICE__V1__REQUEST__BODY_AUTHENTICATE:
        sl_native_authenticate(srv, c, req);
        break;
    case SLUICE__V1__REQUEST__BODY_CREATE_STREAM:
        sl_native_create_stream(srv, c, req);
        break;
    case SLUICE__V1__REQUEST__BODY_DELETE_STREAM:
        sl_native_delete_stream(srv, c, req);
        break;
    case SLUICE__V1__REQUEST__BODY_LIST_STREAMS:
        sl_native_list_streams(srv, c, req);
        break;
    case SLUICE__V1__REQUEST__BODY_DESCRIBE_STREAM:
        sl_native_describe_stream(srv, c, req);
        break;
    case SLUICE__V1__REQUEST__BODY_PRODUCE:
        sl_native_produce(srv, c, req); /* takes req */
        return;
    case SLUICE__V1__REQUEST__BODY_FETCH:
        sl_native_fetch(srv, c, req);
        break;
    case SLUICE__V1__REQUEST__BODY_COMMIT_CHECKPOINT:
        sl_native_commit(srv, c, req);
        break;
    case SLUICE__V1__REQUEST__BODY_GET_CHECKPOINTS:
        sl_native_get_checkpoints(srv, c, req);
        break;
    case SLUICE__V1__REQUEST__BODY_LIST_GROUPS:
        sl_native_list_groups(srv, c, req);
        break;
    case SLUICE__V1__REQUEST__BODY_GROUP_LAG:
        sl_native_group_lag(srv, c, req);
        break;
    case SLUICE__V1__REQUEST__BODY_JOIN_GROUP:
        sl_native_join_group(srv, c, req);
        break;
    case SLUICE__V1__REQUEST__BODY_HEARTBEAT:
        sl_native_heartbeat(srv, c, req);
        break;
    case SLUICE__V1__REQUEST__BODY_LEAVE_GROUP:
        sl_native_leave_group(srv, c, req);
        break;
    case SLUICE__V1__REQUEST__BODY_DESCRIBE_GROUP:
        sl_native_describe_group(srv, c, req);
        break;
    case SLUICE__V1__REQUEST__BODY_RESET_GROUP:
        sl_native_reset_group(srv, c, req);
        break;
    case SLUICE__V1__REQUEST__BODY_CREATE_GROUP:
    case SLUICE__V1__REQUEST__BODY_DELETE_GROUP:
    case SLUICE__V1__REQUEST__BODY_LIST_QUEUE_GROUPS:
    case SLUICE__V1__REQUEST__BODY_RECEIVE:
    case SLUICE__V1__REQUEST__BODY_ACK:
    case SLUICE__V1__REQUEST__BODY_NACK:
    case SLUICE__V1__REQUEST__BODY_EXTEND_VISIBILITY:
    case SLUICE__V1__REQUEST__BODY_GROUP_STATS:
    case SLUICE__V1__REQUEST__BODY_PURGE:
        sl_native_queue(srv, c, req);
        break;
    case SLUICE__V1__REQUEST__BODY_SET_TARGET:
    case SLUICE__V1__REQUEST__BODY_REMOVE_TARGET:
    case SLUICE__V1__REQUEST__BODY_LIST_TARGETS:
        sl_native_push(srv, c, req);
        break;
    case SLUICE__V1__REQUEST__BODY_CLUSTER_STATUS:
        sl_native_cluster_status(srv, c, req);
        break;
    case SLUICE__V1__REQUEST__BODY_METADATA:
        sl_native_metadata(srv, c, req);
        break;
    case SLUICE__V1__REQUEST__BODY_REASSIGN_SHARD:
        sl_native_reassign_shard(srv, c, req);
        break;
    case SLUICE__V1__REQUEST__BODY_API_CALL:
        sl_native_api_call(srv, c, req);
        break;
    case SLUICE__V1__REQUEST__BODY_RESHARD_STREAM:
        sl_native_reshard_stream(srv, c, req);
        break;
    case SLUICE__V1__REQUEST__BODY_REPLICATE:
        sl_native_replicate(srv, c, req);
        break;
    default:
        sl_native_fail(c, req->id, SL_EUNSUPPORTED, "unknown request type");
        break;
    }
    sl_request_free(req);
}
