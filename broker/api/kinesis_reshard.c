/* kinesis_reshard.c - Kinesis SplitShard, MergeShards and UpdateShardCount (#16) over
 * broker/engine/reshard.h, and the ChildShards GetRecords answers at the end of a closed
 * shard.
 *
 * Hash keys: Kinesis speaks 128-bit MD5 keys; a resharded stream's lineage holds 64-bit
 * ranges, which are the high halves of the 128-bit space (kinesis_records.c routes a
 * resharded stream's records by key >> 64). NewStartingHashKey therefore splits at its high
 * 64 bits. Unlike AWS the change is done when the call answers (ACTIVE at once): the broker
 * waits only for the appends in flight to the shards it closes.
 */
#include "broker/api/kinesis_int.h"

#include "broker/api/call.h"
#include "broker/engine/catalog.h"
#include "broker/engine/engine.h"
#include "broker/engine/reshard.h"
#include "common/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WHY_MAX 512u

enum kin_change { KIN_SPLIT, KIN_MERGE, KIN_UPDATE };

struct kin_reshard_op {
    struct sl_api_call *call;
    enum kin_change what;
    char name[SL_STREAM_NAME_MAX + 1];
    uint32_t current; /* open shards before (UpdateShardCount's CurrentShardCount) */
    uint32_t target;
};

static void on_resharded(void *ctx, const struct sl_reshard_result *r)
{
    struct kin_reshard_op *op = ctx;
    if (r->err != SL_OK) {
        enum sl_kin_err e = r->err == SL_ESHARD_CLOSED ? SL_KIN_INVALID_ARGUMENT
                            : r->err == SL_EAGAIN      ? SL_KIN_RESOURCE_IN_USE
                                                       : sl_kin_err_of(r->err);
        sl_kin_fail(op->call, e, "%s", r->why);
    } else if (op->what == KIN_UPDATE) {
        char arn[SL_KIN_ARN_MAX];
        sl_kin_stream_arn(op->call, op->name, arn);
        sl_kin_reply_json(op->call, json_pack("{s:s,s:s,s:i,s:i}", "StreamName", op->name,
                                              "StreamARN", arn, "CurrentShardCount",
                                              (int)op->current, "TargetShardCount",
                                              (int)op->target));
    } else {
        sl_kin_reply_json(op->call, json_object());
    }
    free(op);
}

/* A shard named by `key` (a Kinesis shard id) in body; false after answering. */
static bool shard_arg(struct sl_api_call *call, const json_t *body, const char *key,
                      uint32_t *out)
{
    const char *s = sl_kin_str(body, key);
    if (s == NULL) {
        sl_kin_fail(call, SL_KIN_INVALID_ARGUMENT, "%s is required", key);
        return false;
    }
    if (sl_kin_shard_parse(s, out) != SL_OK) {
        sl_kin_fail(call, SL_KIN_INVALID_ARGUMENT, "%s is not a shard id (shardId-000000000000)",
                    key);
        return false;
    }
    return true;
}

static void submit(struct sl_api_call *call, struct sl_stream *st, enum kin_change what,
                   struct sl_reshard_req *req)
{
    struct kin_reshard_op *op = calloc(1, sizeof(*op));
    if (op == NULL) {
        sl_kin_fail(call, SL_KIN_INTERNAL_FAILURE, "out of memory");
        return;
    }
    *op = (struct kin_reshard_op){.call = call, .what = what, .current = st->lineage.open,
                                  .target = req->target};
    snprintf(op->name, sizeof(op->name), "%s", st->name);
    req->stream = op->name;
    sl_reshard_submit(call->api->engine, req, on_resharded, op);
}

void sl_kin_split_shard(struct sl_api_call *call, json_t *body)
{
    struct sl_stream *st = sl_kin_stream(call, body);
    uint32_t shard = 0;
    if (st == NULL || !shard_arg(call, body, "ShardToSplit", &shard)) {
        return;
    }
    const char *key = sl_kin_str(body, "NewStartingHashKey");
    sl_u128 k = 0;
    if (key == NULL || sl_kin_u128_parse(key, &k) != SL_OK) {
        sl_kin_fail(call, SL_KIN_INVALID_ARGUMENT,
                    "NewStartingHashKey must be a decimal integer from 0 to 2^128 - 1");
        return;
    }
    struct sl_reshard_req req = {.kind = SL_RESHARD_SPLIT, .shard = shard, .has_at = true,
                                 .at = (uint64_t)(k >> 64)};
    submit(call, st, KIN_SPLIT, &req);
}

void sl_kin_merge_shards(struct sl_api_call *call, json_t *body)
{
    struct sl_stream *st = sl_kin_stream(call, body);
    uint32_t a = 0, b = 0;
    if (st == NULL || !shard_arg(call, body, "ShardToMerge", &a) ||
        !shard_arg(call, body, "AdjacentShardToMerge", &b)) {
        return;
    }
    struct sl_reshard_req req = {.kind = SL_RESHARD_MERGE, .shard = a, .adjacent = b};
    submit(call, st, KIN_MERGE, &req);
}

void sl_kin_update_shard_count(struct sl_api_call *call, json_t *body)
{
    struct sl_stream *st = sl_kin_stream(call, body);
    if (st == NULL) {
        return;
    }
    const json_t *t = json_object_get(body, "TargetShardCount");
    const char *scaling = sl_kin_str(body, "ScalingType");
    if (!json_is_integer(t) || json_integer_value(t) < 1 ||
        json_integer_value(t) > SL_STREAM_SHARDS_MAX) {
        sl_kin_fail(call, SL_KIN_INVALID_ARGUMENT, "TargetShardCount must be 1-%u",
                    SL_STREAM_SHARDS_MAX);
        return;
    }
    if (scaling == NULL || strcmp(scaling, "UNIFORM_SCALING") != 0) {
        sl_kin_fail(call, SL_KIN_INVALID_ARGUMENT, "ScalingType must be UNIFORM_SCALING");
        return;
    }
    struct sl_reshard_req req = {.kind = SL_RESHARD_TARGET,
                                 .target = (uint32_t)json_integer_value(t)};
    submit(call, st, KIN_UPDATE, &req);
}

void sl_kin_child_shards(struct sl_kin_buf *out, const struct sl_stream *st, uint32_t shard)
{
    const struct sl_lineage_shard *ls = &st->lineage.shard[shard];
    sl_kin_buf_str(out, "\"ChildShards\":[");
    for (int k = 0; k < 2 && ls->closed && ls->child[k] != SL_LINEAGE_NONE; k++) {
        uint32_t c = ls->child[k];
        const struct sl_lineage_shard *cs = &st->lineage.shard[c];
        char id[SL_KIN_SHARD_ID_LEN + 1], lo[SL_KIN_DEC_U128_MAX + 1], hi[SL_KIN_DEC_U128_MAX + 1];
        sl_kin_shard_id(c, id);
        sl_u128 l, h;
        sl_kin_hash_range(st, c, &l, &h);
        sl_kin_u128_format(l, lo);
        sl_kin_u128_format(h, hi);
        sl_kin_buf_fmt(out, "%s{\"ShardId\":\"%s\",\"ParentShards\":[", k > 0 ? "," : "", id);
        for (int p = 0; p < 2 && cs->parent[p] != SL_LINEAGE_NONE; p++) {
            char pid[SL_KIN_SHARD_ID_LEN + 1];
            sl_kin_shard_id(cs->parent[p], pid);
            sl_kin_buf_fmt(out, "%s\"%s\"", p > 0 ? "," : "", pid);
        }
        sl_kin_buf_fmt(out,
                       "],\"HashKeyRange\":{\"StartingHashKey\":\"%s\",\"EndingHashKey\":\"%s\"}}",
                       lo, hi);
    }
    sl_kin_buf_str(out, "]");
}
