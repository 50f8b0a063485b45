/* h_consumer.c - native CommitCheckpoint, GetCheckpoints, ListGroups and
 * GroupLag over broker/engine/consumer.h. */
#include "broker/engine/consumer.h"
#include "broker/native/handlers.h"
#include "common/error.h"

#include <stdlib.h>
#include <string.h>

void sl_native_commit(struct sl_native *srv, struct sl_conn *c, const sl_request *req)
{
    const Sluice__V1__CommitCheckpoint *m = req->commit_checkpoint;
    struct sl_native_op *op =
        sl_native_op_new(c, req->id, SLUICE__V1__RESPONSE__BODY_COMMIT_CHECKPOINT);
    if (op == NULL) {
        return;
    }
    struct sl_commit_req cr = {.stream = m->stream, .group = m->group, .shard = m->shard,
                               .seq = m->seq, .member_id = m->member_id, .seek = m->seek};
    sl_consumer_commit(srv->engine, &cr, sl_native_op_answer_empty, op);
}

/* Checkpoints collected for an answer; group names borrowed from the store
 * until the answer is packed. */
struct ckpt_list {
    Sluice__V1__Checkpoint *items;
    char **groups;
    size_t n;
    size_t cap;
};

static void collect_ckpt(void *ctx, const char *group, uint32_t shard, uint64_t seq,
                         uint64_t updated_ms)
{
    struct ckpt_list *l = ctx;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        Sluice__V1__Checkpoint *items = realloc(l->items, cap * sizeof(*items));
        if (items == NULL) {
            return;
        }
        l->items = items;
        char **groups = realloc(l->groups, cap * sizeof(*groups));
        if (groups == NULL) {
            return;
        }
        l->groups = groups;
        l->cap = cap;
    }
    sluice__v1__checkpoint__init(&l->items[l->n]);
    l->items[l->n].shard = shard;
    l->items[l->n].seq = seq;
    l->items[l->n].updated_ms = updated_ms;
    l->groups[l->n] = (char *)group;
    l->n++;
}

void sl_native_get_checkpoints(struct sl_native *srv, struct sl_conn *c, const sl_request *req)
{
    const Sluice__V1__GetCheckpoints *m = req->get_checkpoints;
    struct ckpt_list l = {0};
    char why[200];
    int rc = sl_consumer_checkpoints(srv->engine, m->stream, m->group, collect_ckpt, &l, why,
                                     sizeof(why));
    if (rc != SL_OK) {
        sl_native_fail(c, req->id, rc, why);
        return;
    }
    Sluice__V1__Checkpoint **ptrs = calloc(l.n + 1, sizeof(*ptrs));
    for (size_t i = 0; ptrs != NULL && i < l.n; i++) {
        ptrs[i] = &l.items[i];
    }
    Sluice__V1__GetCheckpointsResponse gr = SLUICE__V1__GET_CHECKPOINTS_RESPONSE__INIT;
    gr.n_checkpoints = ptrs != NULL ? l.n : 0;
    gr.checkpoints = ptrs;
    sl_response resp = SLUICE__V1__RESPONSE__INIT;
    resp.id = req->id;
    resp.body_case = SLUICE__V1__RESPONSE__BODY_GET_CHECKPOINTS;
    resp.get_checkpoints = &gr;
    sl_native_respond(c, &resp);
    free(l.items);
    free(ptrs);
    free(l.groups);
    sl_conn_request_done(c);
}

void sl_native_list_groups(struct sl_native *srv, struct sl_conn *c, const sl_request *req)
{
    struct ckpt_list l = {0};
    char why[200];
    int rc = sl_consumer_checkpoints(srv->engine, req->list_groups->stream, NULL, collect_ckpt,
                                     &l, why, sizeof(why));
    if (rc != SL_OK) {
        sl_native_fail(c, req->id, rc, why);
        return;
    }
    /* checkpoints come in group-name order: keep the first of each run */
    size_t n = 0;
    for (size_t i = 0; i < l.n; i++) {
        if (n == 0 || strcmp(l.groups[n - 1], l.groups[i]) != 0) {
            l.groups[n++] = l.groups[i];
        }
    }
    Sluice__V1__ListGroupsResponse lr = SLUICE__V1__LIST_GROUPS_RESPONSE__INIT;
    lr.n_groups = n;
    lr.groups = l.groups;
    sl_response resp = SLUICE__V1__RESPONSE__INIT;
    resp.id = req->id;
    resp.body_case = SLUICE__V1__RESPONSE__BODY_LIST_GROUPS;
    resp.list_groups = &lr;
    sl_native_respond(c, &resp);
    free(l.items);
    free(l.groups);
    sl_conn_request_done(c);
}

void sl_native_group_lag(struct sl_native *srv, struct sl_conn *c, const sl_request *req)
{
    const Sluice__V1__GroupLag *m = req->group_lag;
    struct sl_shard_lag *lag = NULL;
    uint32_t n = 0;
    char why[200];
    int rc = sl_consumer_lag(srv->engine, m->stream, m->group, &lag, &n, why, sizeof(why));
    if (rc != SL_OK) {
        sl_native_fail(c, req->id, rc, why);
        return;
    }
    Sluice__V1__ShardLag *items = calloc(n, sizeof(*items));
    Sluice__V1__ShardLag **ptrs = calloc(n, sizeof(*ptrs));
    if (items == NULL || ptrs == NULL) {
        free(items);
        free(ptrs);
        free(lag);
        sl_native_fail(c, req->id, SL_ENOMEM, NULL);
        return;
    }
    for (uint32_t i = 0; i < n; i++) {
        sluice__v1__shard_lag__init(&items[i]);
        items[i].shard = lag[i].shard;
        items[i].checkpoint = lag[i].checkpoint;
        items[i].tail_seq = lag[i].tail_seq;
        items[i].records_behind = lag[i].records_behind;
        items[i].ms_behind = lag[i].ms_behind;
        ptrs[i] = &items[i];
    }
    Sluice__V1__GroupLagResponse lr = SLUICE__V1__GROUP_LAG_RESPONSE__INIT;
    lr.n_shards = n;
    lr.shards = ptrs;
    sl_response resp = SLUICE__V1__RESPONSE__INIT;
    resp.id = req->id;
    resp.body_case = SLUICE__V1__RESPONSE__BODY_GROUP_LAG;
    resp.group_lag = &lr;
    sl_native_respond(c, &resp);
    free(items);
    free(ptrs);
    free(lag);
    sl_conn_request_done(c);
}
