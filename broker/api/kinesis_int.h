/* kinesis_int.h - what the Kinesis front-end's files share (kinesis.c,
 * kinesis_streams.c, kinesis_records.c, kinesis_iter.c); not for other
 * modules. Each operation handler answers its call exactly once.
 *
 * Threading: the main loop.
 */
#ifndef SL_API_KINESIS_INT_H
#define SL_API_KINESIS_INT_H

#include "broker/api/call.h"
#include "broker/api/kinesis_codec.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct sl_engine;
struct sl_stream;

#define SL_KIN_CONTENT_TYPE     "application/x-amz-json-1.1"
#define SL_KIN_ACCOUNT          "000000000000"
#define SL_KIN_REGION_DEFAULT   "us-east-1"
#define SL_KIN_REGION_MAX       32u
#define SL_KIN_ARN_MAX          256u
#define SL_KIN_ITERATOR_TTL_MS  (5u * 60u * 1000u) /* AWS: an iterator expires after 5 min */
#define SL_KIN_RETENTION_MIN_H  24u
#define SL_KIN_RETENTION_MAX_H  8760u
#define SL_KIN_ON_DEMAND_SHARDS 4u /* ON_DEMAND streams: AWS starts them at 4 shards */
#define SL_KIN_TAG_PREFIX       "kinesis.tag."
#define SL_KIN_CONSUMER_PREFIX  "kinesis.consumer."
#define SL_KIN_TAGS_MAX         50u /* AWS: 50 tags per stream */
#define SL_KIN_CONSUMERS_MAX    20u /* AWS: 20 registered consumers per stream */

/* The AWS error names (the "__type" of an error answer). */
enum sl_kin_err {
    SL_KIN_RESOURCE_NOT_FOUND,
    SL_KIN_RESOURCE_IN_USE,
    SL_KIN_INVALID_ARGUMENT,
    SL_KIN_EXPIRED_ITERATOR,
    SL_KIN_LIMIT_EXCEEDED,
    SL_KIN_THROUGHPUT_EXCEEDED,
    SL_KIN_SERIALIZATION,
    SL_KIN_UNKNOWN_OPERATION,
    SL_KIN_INTERNAL_FAILURE,
    SL_KIN_MISSING_AUTH_TOKEN,   /* no Authorization header (auth on) */
    SL_KIN_INCOMPLETE_SIGNATURE, /* a malformed SigV4 header */
    SL_KIN_UNRECOGNIZED_CLIENT,  /* an access key id not in the auth file */
    SL_KIN_INVALID_SIGNATURE,    /* a wrong signature, an expired date, a replay */
    SL_KIN_ACCESS_DENIED,        /* the principal lacks the right (ACL) */
    SL_KIN_ERR_COUNT_
};

const char *sl_kin_err_name(enum sl_kin_err e);
/* The AWS error for an engine error (SL_ENOTFOUND -> ResourceNotFound...). */
enum sl_kin_err sl_kin_err_of(int sl_err);
/* Answers 400 (500 for InternalFailure) {"__type", "message"} and frees the call. */
void sl_kin_fail(struct sl_api_call *call, enum sl_kin_err e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Answers 200 with `body` (takes; NULL = out of memory) and frees the call. */
void sl_kin_reply_json(struct sl_api_call *call, json_t *body);
/* Answers 200 with the buffer's bytes (borrowed; failed = 500). */
void sl_kin_reply_buf(struct sl_api_call *call, const struct sl_kin_buf *b);

/* The stream named by StreamName or StreamARN in `body`; on failure answers
 * the call (ResourceNotFound, InvalidArgument, AccessDenied: with auth on,
 * the principal must have call->acl_ops on it) and returns NULL. */
struct sl_stream *sl_kin_stream(struct sl_api_call *call, const json_t *body);
/* Like sl_kin_stream from already-decoded names (either may be NULL). */
struct sl_stream *sl_kin_stream_named(struct sl_api_call *call, const char *name, const char *arn);
/* With auth on: whether the principal may do call->acl_ops on stream
 * `name`; if not, answers AccessDeniedException and returns false. */
bool sl_kin_allowed(struct sl_api_call *call, const char *name);
/* The region of the request's SigV4 credential scope, else the default. */
void sl_kin_region(const struct sl_api_call *call, char *out /* SL_KIN_REGION_MAX + 1 */);
/* arn:aws:kinesis:<region>:000000000000:stream/<name> into out (SL_KIN_ARN_MAX). */
void sl_kin_stream_arn(const struct sl_api_call *call, const char *name, char *out);

/* A string member of body or NULL (also NULL when not a string). */
const char *sl_kin_str(const json_t *body, const char *key);

/* Shard iterators (kinesis_iter.c). Writes the base64 token (NUL-ended)
 * for `st`'s shard at (kind, value) into out (SL_KIN_TOKEN_BYTES_MAX + 1). */
void sl_kin_iter_token(const struct sl_stream *st, uint32_t shard, uint32_t kind, uint64_t value,
                       char *out);
/* Checks a token (authentic, not expired, its stream and shard still there)
 * and decodes it into *t with its stream in *st. On failure sets *err and
 * `why`. */
bool sl_kin_iter_check(struct sl_engine *e, const char *b64, struct sl_kin_token *t,
                       struct sl_stream **st, enum sl_kin_err *err, char *why, size_t why_len);

/* Records of fetched batches as JSON objects, comma-separated, appended to
 * `out` (kinesis_records.c): from position (kind, value) as a token holds
 * it, at most `limit` records and about `bytes_max` bytes of data. */
struct sl_fetch_result;
struct sl_kin_walk {
    struct sl_kin_buf out; /* owned */
    uint32_t kind;         /* enum sl_kin_iter_kind: SEQ, TRIM or TIME */
    uint64_t value;
    uint32_t limit;
    uint64_t bytes_max;
    uint32_t records; /* written so far */
    uint64_t bytes;
    uint64_t next; /* where the next read starts */
    uint64_t last_append_ms;
    bool full; /* stopped at limit or bytes_max */
};
/* Errors: SL_ECORRUPT, SL_ETOOBIG, SL_ENOMEM (batches that do not decode). */
int sl_kin_walk_fetch(struct sl_kin_walk *w, const struct sl_fetch_result *r);
/* MillisBehindLatest after the walk. */
uint64_t sl_kin_walk_behind(const struct sl_kin_walk *w, const struct sl_fetch_result *r);

/* The operations, by file. Each takes the parsed body (borrowed until it
 * returns: what an asynchronous one needs later it keeps a reference to). */
void sl_kin_create_stream(struct sl_api_call *call, json_t *body);
void sl_kin_delete_stream(struct sl_api_call *call, json_t *body);
void sl_kin_describe_stream(struct sl_api_call *call, json_t *body);
void sl_kin_describe_summary(struct sl_api_call *call, json_t *body);
void sl_kin_list_streams(struct sl_api_call *call, json_t *body);
void sl_kin_list_shards(struct sl_api_call *call, json_t *body);
void sl_kin_increase_retention(struct sl_api_call *call, json_t *body);
void sl_kin_decrease_retention(struct sl_api_call *call, json_t *body);
void sl_kin_add_tags(struct sl_api_call *call, json_t *body);
void sl_kin_list_tags(struct sl_api_call *call, json_t *body);
void sl_kin_remove_tags(struct sl_api_call *call, json_t *body);
void sl_kin_register_consumer(struct sl_api_call *call, json_t *body);
void sl_kin_deregister_consumer(struct sl_api_call *call, json_t *body);
void sl_kin_list_consumers(struct sl_api_call *call, json_t *body);
void sl_kin_describe_consumer(struct sl_api_call *call, json_t *body);
void sl_kin_put_record(struct sl_api_call *call, json_t *body);
void sl_kin_put_records(struct sl_api_call *call, json_t *body);
/* The request came as CBOR (application/x-amz-cbor-1.1): answer in CBOR. */
bool sl_kin_wants_cbor(const struct sl_api_call *call);
/* PutRecord (single) or PutRecords from the JSON text, without a tree. */
void sl_kin_put_raw(struct sl_api_call *call, bool single);
void sl_kin_get_records(struct sl_api_call *call, json_t *body);
void sl_kin_get_shard_iterator(struct sl_api_call *call, json_t *body);
void sl_kin_subscribe(struct sl_api_call *call, json_t *body);

/* kinesis_reshard.c (#16) */
void sl_kin_split_shard(struct sl_api_call *call, json_t *body);
void sl_kin_merge_shards(struct sl_api_call *call, json_t *body);
void sl_kin_update_shard_count(struct sl_api_call *call, json_t *body);
/* "ChildShards":[...] of a closed shard (GetRecords at its end). */
void sl_kin_child_shards(struct sl_kin_buf *out, const struct sl_stream *st, uint32_t shard);
/* kinesis_streams.c: a shard's HashKeyRange (Kinesis's 128-bit uniform ranges while never
 * resharded, else the lineage's ranges as the high halves). */
void sl_kin_hash_range(const struct sl_stream *st, uint32_t shard, sl_u128 *lo, sl_u128 *hi);

#endif
