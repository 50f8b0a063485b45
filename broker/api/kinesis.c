/* kinesis.c - the Amazon Kinesis Data Streams API (see kinesis.h): the
 * operation table and the request's body (JSON, CBOR translated, or the
 * one-pass PutRecord(s) text); answers, errors, stream lookup and the shared
 * state are kinesis_reply.c's.
 *
 * Wire format: POST, X-Amz-Target: Kinesis_20131202.<Op>, a JSON body
 * (application/x-amz-json-1.1); answers are JSON, errors HTTP 400 with
 * {"__type":"<Name>Exception","message":"..."} (InternalFailure: 500). A
 * request with Content-Type application/x-amz-cbor-1.1 is translated from
 * CBOR and answered in CBOR (kinesis_cbor.c) - SubscribeToShard's events
 * stay JSON.
 * The files: kinesis_reply.c (answers, AWS errors, stream lookup, state),
 * kinesis_streams.c (administration, tags, consumers),
 * kinesis_records.c (PutRecord(s), GetRecords), kinesis_iter.c (shard
 * iterators), kinesis_codec.c (pure decoding and encoding), kinesis_crypto.c
 * (MD5, HMAC), kinesis_subscribe.c (SubscribeToShard, event streams).
 * Routing, sequence numbers and iterators are described in
 * docs/ARCHITECTURE.md ("The HTTP front-end").
 *
 * Threading: the main loop only. Ownership: a handler owns its call until it
 * answers it (exactly once, maybe from an engine callback); the request
 * (call->req) is borrowed until then.
 */
#include "broker/api/kinesis.h"

#include "broker/api/access.h"
#include "broker/api/kinesis_cbor.h"
#include "broker/api/kinesis_crypto.h"
#include "broker/api/kinesis_int.h"
#include "broker/engine/catalog.h"
#include "broker/engine/engine.h"
#include "common/assert.h"
#include "common/compress.h"
#include "common/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* Each action with what it needs on its stream when auth is on (enum
 * sl_acl_op; docs/SECURITY-sigv4.md): 0 = ListStreams, which any
 * authenticated principal may call and which lists only the streams it has
 * a right on. The stream is the one each handler resolves (StreamName,
 * StreamARN, ConsumerARN, a ListShards NextToken: sl_kin_stream_named;
 * CreateStream's name; GetRecords' iterator), checked there. */
static const struct {
    const char *name;
    void (*fn)(struct sl_api_call *call, json_t *body);
    uint32_t acl;
} ops[] = {
    {"CreateStream", sl_kin_create_stream, SL_ACL_ADMIN},
    {"DeleteStream", sl_kin_delete_stream, SL_ACL_ADMIN},
    {"DescribeStream", sl_kin_describe_stream, SL_ACL_ANY},
    {"DescribeStreamSummary", sl_kin_describe_summary, SL_ACL_ANY},
    {"ListStreams", sl_kin_list_streams, 0},
    {"ListShards", sl_kin_list_shards, SL_ACL_CONSUME},
    {"IncreaseStreamRetentionPeriod", sl_kin_increase_retention, SL_ACL_ADMIN},
    {"DecreaseStreamRetentionPeriod", sl_kin_decrease_retention, SL_ACL_ADMIN},
    {"AddTagsToStream", sl_kin_add_tags, SL_ACL_ADMIN},
    {"ListTagsForStream", sl_kin_list_tags, SL_ACL_ANY},
    {"RemoveTagsFromStream", sl_kin_remove_tags, SL_ACL_ADMIN},
    {"RegisterStreamConsumer", sl_kin_register_consumer, SL_ACL_CONSUME},
    {"DeregisterStreamConsumer", sl_kin_deregister_consumer, SL_ACL_CONSUME},
    {"ListStreamConsumers", sl_kin_list_consumers, SL_ACL_ANY},
    {"DescribeStreamConsumer", sl_kin_describe_consumer, SL_ACL_ANY},
    {"PutRecord", sl_kin_put_record, SL_ACL_PRODUCE},
    {"PutRecords", sl_kin_put_records, SL_ACL_PRODUCE},
    {"GetShardIterator", sl_kin_get_shard_iterator, SL_ACL_CONSUME},
    {"GetRecords", sl_kin_get_records, SL_ACL_CONSUME},
    {"SubscribeToShard", sl_kin_subscribe, SL_ACL_CONSUME},
    {"SplitShard", sl_kin_split_shard, SL_ACL_ADMIN},
    {"MergeShards", sl_kin_merge_shards, SL_ACL_ADMIN},
    {"UpdateShardCount", sl_kin_update_shard_count, SL_ACL_ADMIN},
};

/* SigV4 (auth on): answers the AWS error and returns false when refused. */
static bool authenticate(struct sl_api_call *call)
{
    static const enum sl_kin_err errs[] = {
        [SL_SIGV4_MISSING] = SL_KIN_MISSING_AUTH_TOKEN,
        [SL_SIGV4_INCOMPLETE] = SL_KIN_INCOMPLETE_SIGNATURE,
        [SL_SIGV4_UNKNOWN_KEY] = SL_KIN_UNRECOGNIZED_CLIENT,
        [SL_SIGV4_MISMATCH] = SL_KIN_INVALID_SIGNATURE,
        [SL_SIGV4_EXPIRED] = SL_KIN_INVALID_SIGNATURE,
        [SL_SIGV4_REPLAY] = SL_KIN_INVALID_SIGNATURE,
        [SL_SIGV4_INTERNAL] = SL_KIN_INTERNAL_FAILURE,
    };
    char why[SL_SIGV4_WHY_MAX];
    enum sl_sigv4_status st = sl_access_authenticate(call, "kinesis", why, sizeof(why));
    if (st == SL_SIGV4_OK) {
        return true;
    }
    SL_ASSERT((size_t)st < sizeof(errs) / sizeof(errs[0]));
    sl_kin_fail(call, errs[st], "%s", why);
    return false;
}

void sl_kinesis_handle(struct sl_api_call *call, const char *op)
{
    if (sl_kin_crypto_init() != SL_OK) {
        sl_kin_fail(call, SL_KIN_INTERNAL_FAILURE, "the Kinesis front-end cannot initialise");
        return;
    }
    if (!authenticate(call)) { /* before the body is parsed */
        return;
    }
    size_t i = 0;
    while (i < sizeof(ops) / sizeof(ops[0]) && strcmp(ops[i].name, op) != 0) {
        i++;
    }
    if (i == sizeof(ops) / sizeof(ops[0])) {
        sl_kin_fail(call, SL_KIN_UNKNOWN_OPERATION, "%.64s is not served by this broker", op);
        return;
    }
    call->action = ops[i].name;
    call->acl_ops = ops[i].acl;
    bool put1 = strcmp(op, "PutRecord") == 0;
    if (!sl_kin_wants_cbor(call) && (put1 || strcmp(op, "PutRecords") == 0)) {
        sl_kin_put_raw(call, put1); /* the hot path: no parse tree (kinesis_scan.c) */
        return;
    }
    json_error_t jerr = {.text = "not a well-formed CBOR map"};
    json_t *body = NULL;
    if (sl_kin_wants_cbor(call)) {
        sl_kin_cbor_to_json(call->req->body, call->req->body_len, &body);
    } else {
        body = json_loadb((const char *)call->req->body, call->req->body_len,
                          JSON_REJECT_DUPLICATES, &jerr);
    }
    if (body == NULL || !json_is_object(body)) {
        json_decref(body);
        sl_kin_fail(call, SL_KIN_SERIALIZATION, "the body is not a %s object%s%.200s",
                    sl_kin_wants_cbor(call) ? "CBOR" : "JSON", body == NULL ? ": " : "",
                    body == NULL ? jerr.text : "");
        return;
    }
    ops[i].fn(call, body);
    json_decref(body);
}
