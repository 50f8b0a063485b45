/* group.c - stream consumer groups seen from outside: describe (members and their shards)
 * and reset (move every checkpoint of a group, an explicit seek).
 *
 * A reset resolves the position per shard here - oldest and latest from the stream's
 * description, a time with one small fetch per shard - and sends all the checkpoints in
 * one ResetGroup, which the broker applies as one step against the group's membership.
 */
#include "client/conn.h"

#include "storage/batch.h"

#include <stdlib.h>
#include <string.h>

#define GROUP_RESET_FETCH_BYTES 1u /* the first whole batch at the time asked */

void sluice_group_info_free(struct sluice_group_info *info)
{
    if (info == NULL) {
        return;
    }
    for (size_t i = 0; i < info->members_len; i++) {
        free(info->members[i].member_id);
        free(info->members[i].instance_id);
        free(info->members[i].shards);
    }
    free(info->members);
    free(info);
}

static char *dup_or_empty(const char *s)
{
    return strdup(s != NULL ? s : "");
}

int sluice_group_describe(sluice_client *c, const char *stream, const char *group,
                          struct sluice_group_info **out)
{
    *out = NULL;
    Sluice__V1__DescribeGroup body = SLUICE__V1__DESCRIBE_GROUP__INIT;
    body.stream = (char *)stream;
    body.group = (char *)group;
    sl_request req = SLUICE__V1__REQUEST__INIT;
    req.body_case = SLUICE__V1__REQUEST__BODY_DESCRIBE_GROUP;
    req.describe_group = &body;
    sl_response *resp = NULL;
    int rc = sl_client_call_group(c, stream, group, &req, 0, &resp);
    if (rc != SL_OK) {
        return rc;
    }
    const Sluice__V1__DescribeGroupResponse *d =
        resp->body_case == SLUICE__V1__RESPONSE__BODY_DESCRIBE_GROUP ? resp->describe_group
                                                                     : NULL;
    struct sluice_group_info *info = calloc(1, sizeof(*info));
    size_t n = d != NULL ? d->n_members : 0;
    if (info != NULL && n > 0) {
        info->members = calloc(n, sizeof(*info->members));
    }
    if (info == NULL || (n > 0 && info->members == NULL)) {
        free(info);
        sl_response_free(resp);
        sl_client_set_error("out of memory");
        return SL_ENOMEM;
    }
    info->generation = d != NULL ? d->generation : 0;
    rc = SL_OK;
    for (size_t i = 0; i < n && rc == SL_OK; i++) {
        const Sluice__V1__GroupMember *g = d->members[i];
        struct sluice_group_member *m = &info->members[i];
        info->members_len++;
        m->member_id = dup_or_empty(g->member_id);
        m->instance_id = dup_or_empty(g->instance_id);
        m->idle_ms = g->idle_ms;
        m->shards = g->n_shards > 0 ? malloc(g->n_shards * sizeof(*m->shards)) : NULL;
        if (m->member_id == NULL || m->instance_id == NULL ||
            (g->n_shards > 0 && m->shards == NULL)) {
            rc = SL_ENOMEM;
            break;
        }
        if (g->n_shards > 0) {
            memcpy(m->shards, g->shards, g->n_shards * sizeof(*m->shards));
        }
        m->shards_len = g->n_shards;
    }
    sl_response_free(resp);
    if (rc != SL_OK) {
        sluice_group_info_free(info);
        sl_client_set_error("out of memory");
        return rc;
    }
    *out = info;
    return SL_OK;
}

/* The first sequence appended at or after `time_ms` on one shard: the first batch a
 * fetch at that time returns, else the shard's tail. */
static int seq_at_time(sluice_client *c, const char *stream, uint32_t shard, uint64_t time_ms,
                       uint64_t *seq)
{
    Sluice__V1__Position pos = SLUICE__V1__POSITION__INIT;
    pos.kind = SLUICE__V1__POSITION_KIND__AT_TIMESTAMP;
    pos.time_ms = time_ms;
    Sluice__V1__Fetch body = SLUICE__V1__FETCH__INIT;
    body.stream = (char *)stream;
    body.shard = shard;
    body.position = &pos;
    body.max_bytes = GROUP_RESET_FETCH_BYTES;
    sl_request req = SLUICE__V1__REQUEST__INIT;
    req.body_case = SLUICE__V1__REQUEST__BODY_FETCH;
    req.fetch = &body;
    sl_response *resp = NULL;
    int rc = sl_client_call_shard(c, stream, shard, &req, 0, &resp);
    if (rc != SL_OK) {
        return rc;
    }
    if (resp->body_case != SLUICE__V1__RESPONSE__BODY_FETCH) {
        sl_response_free(resp);
        sl_client_set_error("fetch: response of the wrong kind");
        return SL_EPROTO;
    }
    const ProtobufCBinaryData *b = &resp->fetch->batches;
    *seq = resp->fetch->next_seq;
    size_t off = 0;
    while (off < b->len) {
        struct sl_batch_header h;
        rc = sl_batch_validate(b->data + off, b->len - off, SL_BATCH_BYTES_MAX, &h);
        if (rc != SL_OK) {
            sl_response_free(resp);
            sl_client_set_error("fetch %s/%u: bad batch: %s", stream, shard, sl_strerror(rc));
            return rc == SL_EAGAIN ? SL_EPROTO : rc;
        }
        if (h.append_time_ms >= time_ms) {
            *seq = h.base_seq;
            break;
        }
        off += h.length;
    }
    sl_response_free(resp);
    return SL_OK;
}

int sluice_group_reset(sluice_client *c, const char *stream, const char *group,
                       const struct sluice_position *to, int force)
{
    struct sluice_stream_info *info = NULL;
    int rc = sluice_stream_describe(c, stream, &info);
    if (rc != SL_OK) {
        return rc;
    }
    uint32_t n = info->shards_len;
    Sluice__V1__Checkpoint *items = calloc(n, sizeof(*items));
    Sluice__V1__Checkpoint **ptrs = calloc(n, sizeof(*ptrs));
    if (items == NULL || ptrs == NULL) {
        rc = SL_ENOMEM;
        sl_client_set_error("out of memory");
    }
    for (uint32_t i = 0; i < n && rc == SL_OK; i++) {
        const struct sluice_shard_info *s = &info->shards[i];
        uint64_t seq = s->first_seq;
        switch (to->kind) {
        case SLUICE_TRIM_HORIZON:
            break;
        case SLUICE_LATEST:
            seq = s->next_seq;
            break;
        case SLUICE_AT_SEQUENCE:
        case SLUICE_AFTER_SEQUENCE:
            seq = to->seq + (to->kind == SLUICE_AFTER_SEQUENCE);
            seq = seq < s->first_seq ? s->first_seq : (seq > s->next_seq ? s->next_seq : seq);
            break;
        case SLUICE_AT_TIMESTAMP:
            rc = seq_at_time(c, stream, s->shard, to->time_ms, &seq);
            break;
        default:
            rc = SL_EINVAL;
            sl_client_set_error("unknown position kind %d", (int)to->kind);
            break;
        }
        sluice__v1__checkpoint__init(&items[i]);
        items[i].shard = s->shard;
        items[i].seq = seq;
        ptrs[i] = &items[i];
    }
    sluice_stream_info_free(info);
    if (rc == SL_OK) {
        Sluice__V1__ResetGroup body = SLUICE__V1__RESET_GROUP__INIT;
        body.stream = (char *)stream;
        body.group = (char *)group;
        body.n_checkpoints = n;
        body.checkpoints = ptrs;
        body.force = force != 0;
        sl_request req = SLUICE__V1__REQUEST__INIT;
        req.body_case = SLUICE__V1__REQUEST__BODY_RESET_GROUP;
        req.reset_group = &body;
        sl_response *resp = NULL;
        rc = sl_client_call_group(c, stream, group, &req, 0, &resp);
        sl_response_free(resp);
    }
    free(items);
    free(ptrs);
    return rc;
}
