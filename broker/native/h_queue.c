/* h_queue.c - the native queue requests (CreateGroup, DeleteGroup,
 * ListQueueGroups, Receive, Ack, Nack, ExtendVisibility, GroupStats,
 * Purge) over broker/engine/queue.h. */
#include "broker/engine/queue.h"
#include "broker/native/handlers.h"
#include "common/error.h"

#include <stdlib.h>

/* Ack, nack, extend: per-receipt results. */
static void on_settled(void *ctx, int err, const char *why, const int *results, uint32_t n)
{
    struct sl_native_op *op = ctx;
    sl_response resp = SLUICE__V1__RESPONSE__INIT;
    resp.id = op->req_id;
    resp.code = (Sluice__V1__ErrorCode)err;
    resp.message = (char *)why;
    Sluice__V1__ErrorCode *codes = n > 0 ? calloc(n, sizeof(*codes)) : NULL;
    for (uint32_t i = 0; codes != NULL && i < n; i++) {
        codes[i] = (Sluice__V1__ErrorCode)results[i];
    }
    Sluice__V1__AckResponse ar = SLUICE__V1__ACK_RESPONSE__INIT;
    Sluice__V1__NackResponse nr = SLUICE__V1__NACK_RESPONSE__INIT;
    Sluice__V1__ExtendVisibilityResponse er = SLUICE__V1__EXTEND_VISIBILITY_RESPONSE__INIT;
    if (err == SL_OK && n > 0 && codes == NULL) {
        resp.code = SLUICE__V1__ERROR_CODE__ENOMEM;
        resp.message = (char *)sl_strerror(SL_ENOMEM);
    } else if (err == SL_OK) {
        resp.body_case = op->body;
        ar.n_results = nr.n_results = er.n_results = codes != NULL ? n : 0;
        ar.results = nr.results = er.results = codes;
        if (op->body == SLUICE__V1__RESPONSE__BODY_ACK) {
            resp.ack = &ar;
        } else if (op->body == SLUICE__V1__RESPONSE__BODY_NACK) {
            resp.nack = &nr;
        } else {
            resp.extend_visibility = &er;
        }
    }
    sl_native_op_done(op, &resp);
    free(codes);
}

static void on_received(void *ctx, const struct sl_receive_result *r)
{
    struct sl_native_op *op = ctx;
    uint32_t nattrs = 0;
    for (uint32_t i = 0; i < r->n; i++) {
        nattrs += r->records[i].attr_count;
    }
    /* one array each for the records, their attributes and the pointers */
    Sluice__V1__ReceivedRecord *recs = r->n > 0 ? calloc(r->n, sizeof(*recs)) : NULL;
    Sluice__V1__ReceivedRecord **rptrs = r->n > 0 ? calloc(r->n, sizeof(*rptrs)) : NULL;
    Sluice__V1__Attribute *attrs = nattrs > 0 ? calloc(nattrs, sizeof(*attrs)) : NULL;
    Sluice__V1__Attribute **aptrs = nattrs > 0 ? calloc(nattrs, sizeof(*aptrs)) : NULL;
    int err = r->err;
    if ((r->n > 0 && (recs == NULL || rptrs == NULL)) ||
        (nattrs > 0 && (attrs == NULL || aptrs == NULL))) {
        err = SL_ENOMEM; /* the leases expire and the records come again */
    }
    uint32_t a = 0;
    for (uint32_t i = 0; err == SL_OK && i < r->n; i++) {
        const struct sl_qrecord *q = &r->records[i];
        Sluice__V1__ReceivedRecord *p = &recs[i];
        sluice__v1__received_record__init(p);
        p->receipt = (char *)q->receipt;
        p->shard = q->shard;
        p->seq = q->seq;
        p->timestamp_ms = q->timestamp_ms;
        p->produced_ms = q->produced_ms;
        p->delivery_count = q->delivery_count;
        p->key = (ProtobufCBinaryData){q->key_len, (uint8_t *)q->key};
        p->value = (ProtobufCBinaryData){q->value_len, (uint8_t *)q->value};
        p->attributes = q->attr_count > 0 ? &aptrs[a] : NULL;
        p->n_attributes = q->attr_count;
        for (uint32_t k = 0; k < q->attr_count; k++, a++) {
            sluice__v1__attribute__init(&attrs[a]);
            /* attribute bytes are NUL-terminated in the engine's arena */
            attrs[a].key = (char *)q->attrs[k].key;
            attrs[a].value = (char *)q->attrs[k].value;
            aptrs[a] = &attrs[a];
        }
        rptrs[i] = p;
    }
    Sluice__V1__ReceiveResponse rr = SLUICE__V1__RECEIVE_RESPONSE__INIT;
    rr.n_records = err == SL_OK ? r->n : 0;
    rr.records = rptrs;
    sl_response resp = SLUICE__V1__RESPONSE__INIT;
    resp.id = op->req_id;
    resp.code = (Sluice__V1__ErrorCode)err;
    resp.message = (char *)(err == r->err ? r->why : sl_strerror(err));
    resp.body_case = SLUICE__V1__RESPONSE__BODY_RECEIVE;
    resp.receive = &rr;
    sl_native_op_done(op, &resp);
    free(recs);
    free(rptrs);
    free(attrs);
    free(aptrs);
}

static void create_group(struct sl_native *srv, struct sl_conn *c, const sl_request *req)
{
    const Sluice__V1__CreateGroup *m = req->create_group;
    const Sluice__V1__QueueGroupConfig *qc = m->config;
    struct sl_qgroup_config cfg = {0};
    if (qc != NULL) {
        cfg = (struct sl_qgroup_config){
            .visibility_timeout_ms = qc->visibility_timeout_ms,
            .max_deliveries = qc->max_deliveries, .max_inflight = qc->max_inflight,
            .ordered = qc->ordered, .dead_letter_stream = qc->dead_letter_stream,
            .filter = qc->filter, .start = sl_native_position(qc->start),
            .filter_body = qc->filter_scope == SLUICE__V1__FILTER_SCOPE__FILTER_SCOPE_BODY};
    }
    struct sl_native_op *op = sl_native_op_new(c, req->id, SLUICE__V1__RESPONSE__BODY_CREATE_GROUP);
    if (op != NULL) {
        sl_queue_create_group(srv->engine, m->stream, m->group, qc != NULL ? &cfg : NULL,
                              sl_native_op_answer_empty, op);
    }
}

struct names {
    char **v;
    size_t n;
    size_t cap;
};

static void collect_name(void *ctx, const char *name)
{
    struct names *l = ctx;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        char **v = realloc(l->v, cap * sizeof(*v));
        if (v == NULL) {
            return;
        }
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = (char *)name;
}

static void list_groups(struct sl_native *srv, struct sl_conn *c, const sl_request *req)
{
    struct names l = {0};
    char why[200];
    int rc = sl_queue_groups(srv->engine, req->list_queue_groups->stream, collect_name, &l,
                             why, sizeof(why));
    if (rc != SL_OK) {
        sl_native_fail(c, req->id, rc, why);
        return;
    }
    Sluice__V1__ListQueueGroupsResponse lr = SLUICE__V1__LIST_QUEUE_GROUPS_RESPONSE__INIT;
    lr.n_groups = l.n;
    lr.groups = l.v;
    sl_response resp = SLUICE__V1__RESPONSE__INIT;
    resp.id = req->id;
    resp.body_case = SLUICE__V1__RESPONSE__BODY_LIST_QUEUE_GROUPS;
    resp.list_queue_groups = &lr;
    sl_native_respond(c, &resp);
    free(l.v);
    sl_conn_request_done(c);
}

static void group_stats(struct sl_native *srv, struct sl_conn *c, const sl_request *req)
{
    const Sluice__V1__GroupStats *m = req->group_stats;
    struct sl_qgroup_stats st;
    char why[300];
    int rc = sl_queue_stats(srv->engine, m->stream, m->group, &st, why, sizeof(why));
    if (rc != SL_OK) {
        sl_native_fail(c, req->id, rc, why);
        return;
    }
    Sluice__V1__GroupStatsResponse gr = SLUICE__V1__GROUP_STATS_RESPONSE__INIT;
    gr.visible = st.visible;
    gr.inflight = st.inflight;
    gr.delayed = st.delayed;
    gr.dead_lettered = st.dead_lettered;
    gr.filtered_out = st.filtered_out;
    gr.oldest_age_ms = st.oldest_age_ms;
    Sluice__V1__QueueGroupConfig qc = SLUICE__V1__QUEUE_GROUP_CONFIG__INIT;
    qc.visibility_timeout_ms = st.config.visibility_timeout_ms;
    qc.max_deliveries = st.config.max_deliveries;
    qc.dead_letter_stream = (char *)st.config.dead_letter_stream;
    qc.max_inflight = st.config.max_inflight;
    qc.filter = (char *)st.config.filter;
    qc.filter_scope = st.config.filter_body ? SLUICE__V1__FILTER_SCOPE__FILTER_SCOPE_BODY
                                            : SLUICE__V1__FILTER_SCOPE__FILTER_SCOPE_ATTRIBUTES;
    qc.ordered = st.config.ordered;
    Sluice__V1__Position start = SLUICE__V1__POSITION__INIT;
    start.kind = (Sluice__V1__PositionKind)st.config.start.kind;
    start.seq = st.config.start.seq;
    start.time_ms = st.config.start.time_ms;
    qc.start = &start;
    gr.config = &qc;
    sl_response resp = SLUICE__V1__RESPONSE__INIT;
    resp.id = req->id;
    resp.body_case = SLUICE__V1__RESPONSE__BODY_GROUP_STATS;
    resp.group_stats = &gr;
    sl_native_respond(c, &resp);
    sl_conn_request_done(c);
}

static void settle(struct sl_native *srv, struct sl_conn *c, const sl_request *req)
{
    struct sl_settle_req sr = {0};
    Sluice__V1__Response__BodyCase body;
    if (req->body_case == SLUICE__V1__REQUEST__BODY_ACK) {
        const Sluice__V1__Ack *m = req->ack;
        sr = (struct sl_settle_req){m->stream, m->group, SL_SETTLE_ACK,
                                    (const char *const *)m->receipts, (uint32_t)m->n_receipts,
                                    0};
        body = SLUICE__V1__RESPONSE__BODY_ACK;
    } else if (req->body_case == SLUICE__V1__REQUEST__BODY_NACK) {
        const Sluice__V1__Nack *m = req->nack;
        sr = (struct sl_settle_req){m->stream, m->group, SL_SETTLE_NACK,
                                    (const char *const *)m->receipts, (uint32_t)m->n_receipts,
                                    m->delay_ms};
        body = SLUICE__V1__RESPONSE__BODY_NACK;
    } else {
        const Sluice__V1__ExtendVisibility *m = req->extend_visibility;
        sr = (struct sl_settle_req){m->stream, m->group, SL_SETTLE_EXTEND,
                                    (const char *const *)m->receipts, (uint32_t)m->n_receipts,
                                    m->visibility_timeout_ms};
        body = SLUICE__V1__RESPONSE__BODY_EXTEND_VISIBILITY;
    }
    struct sl_native_op *op = sl_native_op_new(c, req->id, body);
    if (op != NULL) {
        sl_queue_settle(srv->engine, &sr, on_settled, op);
    }
}

void sl_native_queue(struct sl_native *srv, struct sl_conn *c, const sl_request *req)
{
    struct sl_native_op *op;
    switch (req->body_case) {
    case SLUICE__V1__REQUEST__BODY_CREATE_GROUP:
        create_group(srv, c, req);
        break;
    case SLUICE__V1__REQUEST__BODY_DELETE_GROUP:
        if ((op = sl_native_op_new(c, req->id, SLUICE__V1__RESPONSE__BODY_DELETE_GROUP)) != NULL) {
            sl_queue_delete_group(srv->engine, req->delete_group->stream,
                                  req->delete_group->group, sl_native_op_answer_empty, op);
        }
        break;
    case SLUICE__V1__REQUEST__BODY_LIST_QUEUE_GROUPS:
        list_groups(srv, c, req);
        break;
    case SLUICE__V1__REQUEST__BODY_RECEIVE:
        if ((op = sl_native_op_new(c, req->id, SLUICE__V1__RESPONSE__BODY_RECEIVE)) != NULL) {
            const Sluice__V1__Receive *m = req->receive;
            struct sl_receive_req rr = {.stream = m->stream, .group = m->group,
                                        .max_records = m->max_records, .wait_ms = m->wait_ms,
                                        .visibility_timeout_ms = m->visibility_timeout_ms};
            sl_queue_receive(srv->engine, &rr, on_received, op);
        }
        break;
    case SLUICE__V1__REQUEST__BODY_GROUP_STATS:
        group_stats(srv, c, req);
        break;
    case SLUICE__V1__REQUEST__BODY_PURGE:
        if ((op = sl_native_op_new(c, req->id, SLUICE__V1__RESPONSE__BODY_PURGE)) != NULL) {
            sl_queue_purge(srv->engine, req->purge->stream, req->purge->group, sl_native_op_answer_empty, op);
        }
        break;
    default:
        settle(srv, c, req);
        break;
    }
}
