/* sns_req.h - one Amazon SNS request as a plain C struct, decoded from the
 * Query protocol that every SNS client speaks (awscli/botocore and the AWS
 * SDK for JavaScript v3 send only it: form-encoded Action=<Op>&Version=
 * 2010-03-31, XML answers), and the XML those answers are written in.
 *
 * Form -> struct (sns_query.c):
 *   Name, TopicArn, SubscriptionArn, Protocol, Endpoint, Token, NextToken,
 *   AttributeName, AttributeValue, ReturnSubscriptionArn, Message, Subject,
 *   MessageStructure, MessageGroupId, MessageDeduplicationId  -> the fields
 *   Attributes.entry.N.key / .value                            -> attrs[]
 *   MessageAttributes.entry.N.Name / .Value.DataType / .Value.StringValue
 *     / .Value.BinaryValue                                     -> entries[0].attrs[]
 *   PublishBatchRequestEntries.member.M.<field> (and its MessageAttributes)
 *                                                              -> entries[M-1]
 *   Tags.member.N.*, Version and unknown names                 -> ignored
 * Indexes are 1..SL_SNS_INDEX_MAX; gaps are dropped. GET requests carry the
 * same form in the URL's query (the SubscribeURL of a confirmation).
 *
 * No broker state: the fuzz target (tests/fuzz/fuzz_sns.c) links this alone.
 * Memory: one allocation per request (the struct and a copy of the decoded
 * form that every string points into), freed by sl_sns_req_free.
 * Threading: none (pure functions).
 */
#ifndef SL_API_SNS_REQ_H
#define SL_API_SNS_REQ_H

#include "broker/api/query_xml.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SL_SNS_BATCH_MAX 10u /* PublishBatch entries (SNS) */
#define SL_SNS_MSG_ATTRS_MAX                                                                       \
    10u /* message attributes per message (as SQS: a raw delivery holds them) */
#define SL_SNS_ATTRS_MAX  16u /* topic / subscription attributes per request */
#define SL_SNS_INDEX_MAX  64u /* .N in 1..64 */
#define SL_SNS_WHY_MAX    320u
#define SL_SNS_PARAMS_MAX 2048u /* form parameters per request */

enum sl_sns_op {
    SL_SNS_UNKNOWN = 0,
    SL_SNS_CREATE_TOPIC,
    SL_SNS_LIST_TOPICS,
    SL_SNS_DELETE_TOPIC,
    SL_SNS_GET_TOPIC_ATTRIBUTES,
    SL_SNS_SET_TOPIC_ATTRIBUTES,
    SL_SNS_SUBSCRIBE,
    SL_SNS_CONFIRM_SUBSCRIPTION,
    SL_SNS_UNSUBSCRIBE,
    SL_SNS_LIST_SUBSCRIPTIONS,
    SL_SNS_LIST_SUBSCRIPTIONS_BY_TOPIC,
    SL_SNS_GET_SUBSCRIPTION_ATTRIBUTES,
    SL_SNS_SET_SUBSCRIPTION_ATTRIBUTES,
    SL_SNS_PUBLISH,
    SL_SNS_PUBLISH_BATCH,
    SL_SNS_OP_COUNT_
};

/* SNS's error codes (the Query protocol's <Code>; sns_reply.c's table). */
enum sl_sns_error {
    SL_SNS_OK = 0,
    SL_SNS_E_MALFORMED,               /* a bad %-escape */
    SL_SNS_E_INVALID_ACTION,          /* an Action SNS does not have */
    SL_SNS_E_UNSUPPORTED,             /* an SNS Action this broker does not serve */
    SL_SNS_E_INVALID_PARAMETER,       /* InvalidParameter */
    SL_SNS_E_INVALID_PARAMETER_VALUE, /* ParameterValueInvalid (message attributes) */
    SL_SNS_E_NOT_FOUND,
    SL_SNS_E_AUTHORIZATION,    /* AuthorizationError: the ACL refuses */
    SL_SNS_E_TOO_MANY_ENTRIES, /* TooManyEntriesInBatchRequest */
    SL_SNS_E_IDS_NOT_DISTINCT, /* BatchEntryIdsNotDistinct */
    SL_SNS_E_EMPTY_BATCH,      /* EmptyBatchRequest */
    SL_SNS_E_INVALID_ENTRY_ID, /* InvalidBatchEntryId */
    SL_SNS_E_LIMIT,            /* SubscriptionLimitExceeded / TopicLimitExceeded */
    SL_SNS_E_INTERNAL,         /* InternalError */
    SL_SNS_E_MISSING_AUTH,     /* auth on: no Authorization header */
    SL_SNS_E_INCOMPLETE_SIGNATURE,
    SL_SNS_E_INVALID_CLIENT_TOKEN,
    SL_SNS_E_SIGNATURE_MISMATCH,
    SL_SNS_E_COUNT_
};

struct sl_sns_kv {
    const char *name;
    const char *value;
};

/* A message attribute as sent: BinaryValue stays base64 text here. */
struct sl_sns_mattr {
    const char *name;
    const char *type;         /* String, Number, Binary, String.Array (+ ".custom") */
    const char *string_value; /* or NULL */
    const char *binary_b64;   /* or NULL */
};

/* A message: Publish's (entries[0]) or a PublishBatch entry's. */
struct sl_sns_entry {
    const char *id; /* PublishBatch only */
    const char *message;
    const char *subject;
    const char *structure; /* MessageStructure */
    const char *group_id;
    const char *dedup_id;
    struct sl_sns_mattr attrs[SL_SNS_MSG_ATTRS_MAX];
    uint32_t n_attrs;
};

struct sl_sns_req {
    enum sl_sns_op op;
    const char *name, *topic_arn, *subscription_arn, *protocol, *endpoint, *token;
    const char *next_token, *attribute_name, *attribute_value, *return_sub_arn;
    struct sl_sns_kv attrs[SL_SNS_ATTRS_MAX]; /* Attributes (CreateTopic, Subscribe) */
    uint32_t n_attrs;
    struct sl_sns_entry entries[SL_SNS_BATCH_MAX];
    uint32_t n_entries; /* Publish: 1 when Message or attributes were given */
    char *text;         /* owned: the decoded form */
};

/* What the decoder could not take: the code and a message for the client. */
struct sl_sns_fault {
    enum sl_sns_error code;
    char why[SL_SNS_WHY_MAX];
};

/* The operation named `name` ("Publish"), or SL_SNS_UNKNOWN. */
enum sl_sns_op sl_sns_op_parse(const char *name, size_t len);
const char *sl_sns_op_name(enum sl_sns_op op);
/* Whether `name` is an SNS action (served or not): the router's test for a
 * Query request that carries no SigV4 service name. */
bool sl_sns_action_known(const char *name, size_t len);

/* Decodes the form `body` (borrowed; a POST body or a URL's query). *out
 * returns owned (sl_sns_req_free). Errors: SL_EPROTO (`f` says which SNS
 * error), SL_ENOMEM. */
int sl_sns_decode_query(const uint8_t *body, size_t len, struct sl_sns_req **out,
                        struct sl_sns_fault *f);
void sl_sns_req_free(struct sl_sns_req *r); /* NULL-safe */

/* SNS answers in the Query protocol's XML (query_xml.h), under SNS's namespace. */
/* <OpResponse xmlns=...>[<OpResult>]: what every answer starts with. */
void sl_sns_xml_begin(struct sl_query_xml *x, enum sl_sns_op op, bool result);
/* [</OpResult>]<ResponseMetadata>...</OpResponse>; returns owned text or NULL. */
char *sl_sns_xml_end(struct sl_query_xml *x, enum sl_sns_op op, bool result,
                     const char *request_id);
/* The Query protocol's XML error. Returns owned text or NULL. */
char *sl_sns_xml_error(const char *code, bool sender, const char *message, const char *request_id);

#endif
