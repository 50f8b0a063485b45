/* h_group.c - native JoinGroup, Heartbeat, LeaveGroup, DescribeGroup and
 * ResetGroup over broker/engine/coord.h and consumer.h: stream consumer
 * groups that balance themselves. */
#include "broker/engine/catalog.h"
#include "broker/engine/consumer.h"
#include "broker/engine/coord.h"
#include "broker/native/handlers.h"
#include "common/clock.h"
#include "common/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* Answers a join or heartbeat with the member's view. */
static void respond_view(struct sl_conn *c, uint64_t req_id, int body_case,
                         const struct sl_coord_view *v)
{
    Sluice__V1__GroupAssignment a = SLUICE__V1__GROUP_ASSIGNMENT__INIT;
    a.member_id = (char *)v->member_id;
    a.generation = v->generation;
    a.n_shards = v->n_shards;
    a.shards = (uint32_t *)v->shards;
    a.n_revoke = v->n_revoke;
    a.revoke = (uint32_t *)v->revoke;
    a.members = v->members;
    a.waiting = v->waiting;
    a.heartbeat_ms = v->heartbeat_ms;
    sl_response resp = SLUICE__V1__RESPONSE__INIT;
    resp.id = req_id;
    Sluice__V1__JoinGroupResponse jr = SLUICE__V1__JOIN_GROUP_RESPONSE__INIT;
    Sluice__V1__HeartbeatResponse hr = SLUICE__V1__HEARTBEAT_RESPONSE__INIT;
    if (body_case == SLUICE__V1__RESPONSE__BODY_JOIN_GROUP) {
        jr.assignment = &a;
        resp.body_case = SLUICE__V1__RESPONSE__BODY_JOIN_GROUP;
        resp.join_group = &jr;
    } else {
        hr.assignment = &a;
        resp.body_case = SLUICE__V1__RESPONSE__BODY_HEARTBEAT;
        resp.heartbeat = &hr;
    }
    sl_native_respond(c, &resp);
    sl_conn_request_done(c);
}

void sl_native_join_group(struct sl_native *srv, struct sl_conn *c, const sl_request *req)
{
    const Sluice__V1__JoinGroup *m = req->join_group;
    struct sl_coord_join j = {
        .stream = m->stream,
        .group = m->group,
        .instance_id = m->instance_id,
        .session_timeout_ms =
            m->session_timeout_ms != 0 ? m->session_timeout_ms : SL_COORD_SESSION_DEFAULT_MS,
    };
    struct sl_coord_view v;
    char why[256];
    int rc = sl_coord_join(srv->engine, &j, sl_clock_mono_ms(), &v, why, sizeof(why));
    if (rc != SL_OK) {
        sl_native_fail(c, req->id, rc, why);
        return;
    }
    respond_view(c, req->id, SLUICE__V1__RESPONSE__BODY_JOIN_GROUP, &v);
}

void sl_native_heartbeat(struct sl_native *srv, struct sl_conn *c, const sl_request *req)
{
    const Sluice__V1__Heartbeat *m = req->heartbeat;
    struct sl_coord_view v;
    char why[256];
    /* n_released is bounded by the frame size: a list longer than the
     * stream's shards names a shard it does not have, and is refused. */
    int rc = sl_coord_heartbeat(srv->engine, m->stream, m->group, m->member_id, m->released,
                                (uint32_t)(m->n_released > UINT32_MAX ? UINT32_MAX
                                                                      : m->n_released),
                                sl_clock_mono_ms(), &v, why, sizeof(why));
    if (rc != SL_OK) {
        sl_native_fail(c, req->id, rc, why);
        return;
    }
    respond_view(c, req->id, SLUICE__V1__RESPONSE__BODY_HEARTBEAT, &v);
}

void sl_native_leave_group(struct sl_native *srv, struct sl_conn *c, const sl_request *req)
{
    const Sluice__V1__LeaveGroup *m = req->leave_group;
    sl_coord_leave(srv->engine, m->stream, m->group, m->member_id);
    Sluice__V1__LeaveGroupResponse lr = SLUICE__V1__LEAVE_GROUP_RESPONSE__INIT;
    sl_response resp = SLUICE__V1__RESPONSE__INIT;
    resp.id = req->id;
    resp.body_case = SLUICE__V1__RESPONSE__BODY_LEAVE_GROUP;
    resp.leave_group = &lr;
    sl_native_respond(c, &resp);
    sl_conn_request_done(c);
}

/* Members collected for DescribeGroup; everything owned here. */
struct member_list {
    Sluice__V1__GroupMember *items;
    Sluice__V1__GroupMember **ptrs;
    size_t n;
    size_t cap;
    uint64_t now_ms;
    int err;
};

static void collect_member(void *ctx, const char *member_id, const char *instance_id,
                           uint64_t last_seen_ms, const uint32_t *shards, uint32_t n_shards)
{
    struct member_list *l = ctx;
    if (l->err != SL_OK) {
        return;
    }
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        Sluice__V1__GroupMember *items = realloc(l->items, cap * sizeof(*items));
        if (items == NULL) {
            l->err = SL_ENOMEM;
            return;
        }
        l->items = items;
        l->cap = cap;
    }
    Sluice__V1__GroupMember *g = &l->items[l->n];
    sluice__v1__group_member__init(g);
    g->member_id = strdup(member_id);
    g->instance_id = strdup(instance_id);
    g->idle_ms = l->now_ms > last_seen_ms ? l->now_ms - last_seen_ms : 0;
    g->shards = n_shards > 0 ? malloc(n_shards * sizeof(*g->shards)) : NULL;
    l->n++; /* counted before the checks: freed with the others */
    if (g->member_id == NULL || g->instance_id == NULL || (n_shards > 0 && g->shards == NULL)) {
        l->err = SL_ENOMEM;
        return;
    }
    if (n_shards > 0) {
        memcpy(g->shards, shards, n_shards * sizeof(*g->shards));
    }
    g->n_shards = n_shards;
}

static void member_list_free(struct member_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->items[i].member_id);
        free(l->items[i].instance_id);
        free(l->items[i].shards);
    }
    free(l->items);
    free(l->ptrs);
}

void sl_native_describe_group(struct sl_native *srv, struct sl_conn *c, const sl_request *req)
{
    const Sluice__V1__DescribeGroup *m = req->describe_group;
    char why[256];
    int rc = SL_OK;
    if (sl_engine_stream(srv->engine, m->stream, why, sizeof(why), &rc) == NULL) {
        sl_native_fail(c, req->id, rc, why);
        return;
    }
    struct member_list l = {.now_ms = sl_clock_mono_ms()};
    uint64_t generation = 0;
    sl_coord_describe(srv->engine, m->stream, m->group, collect_member, &l, &generation);
    if (l.err == SL_OK && l.n > 0) {
        l.ptrs = calloc(l.n, sizeof(*l.ptrs));
        l.err = l.ptrs == NULL ? SL_ENOMEM : SL_OK;
    }
    if (l.err != SL_OK) {
        member_list_free(&l);
        sl_native_fail(c, req->id, l.err, NULL);
        return;
    }
    for (size_t i = 0; i < l.n; i++) {
        l.ptrs[i] = &l.items[i];
    }
    Sluice__V1__DescribeGroupResponse dr = SLUICE__V1__DESCRIBE_GROUP_RESPONSE__INIT;
    dr.generation = generation;
    dr.n_members = l.n;
    dr.members = l.ptrs;
    sl_response resp = SLUICE__V1__RESPONSE__INIT;
    resp.id = req->id;
    resp.body_case = SLUICE__V1__RESPONSE__BODY_DESCRIBE_GROUP;
    resp.describe_group = &dr;
    sl_native_respond(c, &resp);
    member_list_free(&l);
    sl_conn_request_done(c);
}

void sl_native_reset_group(struct sl_native *srv, struct sl_conn *c, const sl_request *req)
{
    const Sluice__V1__ResetGroup *m = req->reset_group;
    size_t n = m->n_checkpoints;
    if (n == 0 || n > SL_LINEAGE_SHARDS_MAX) { /* every id of a resharded stream */
        sl_native_fail(c, req->id, SL_EINVAL, "a reset names 1 to 8192 shards");
        return;
    }
    uint32_t *shards = malloc(n * sizeof(*shards));
    uint64_t *seqs = malloc(n * sizeof(*seqs));
    if (shards == NULL || seqs == NULL) {
        free(shards);
        free(seqs);
        sl_native_fail(c, req->id, SL_ENOMEM, NULL);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        shards[i] = m->checkpoints[i]->shard;
        seqs[i] = m->checkpoints[i]->seq;
    }
    struct sl_native_op *op = sl_native_op_new(c, req->id, SLUICE__V1__RESPONSE__BODY_RESET_GROUP);
    if (op == NULL) {
        free(shards);
        free(seqs);
        return;
    }
    struct sl_reset_req rr = {.stream = m->stream, .group = m->group, .shards = shards,
                              .seqs = seqs, .n = (uint32_t)n, .force = m->force};
    sl_consumer_reset(srv->engine, &rr, sl_native_op_answer_empty, op);
    free(shards);
    free(seqs);
}
