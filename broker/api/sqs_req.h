/* sqs_req.h - one SQS request as a plain C struct, whichever protocol
 * carried it, and the two protocols' decoders and encoders:
 *
 *   JSON  (X-Amz-Target: AmazonSQS.<Op>, application/x-amz-json-1.0):
 *         sqs_json.c decodes the body; answers are the JSON documents.
 *   Query (form-encoded Action=<Op>&..., Version=2012-11-05): sqs_query.c
 *         turns the form into the JSON protocol's document (Attribute.N.Name
 *         -> Attributes{}, <Op>RequestEntry.N.* -> Entries[], ...) and the
 *         JSON answer into the XML one.
 *
 * No broker state: the fuzz target (tests/fuzz/fuzz_sqs.c) links these
 * alone. Memory: a request is one allocation of fixed size plus its parsed
 * document and an arena for decoded binary values (at most the body's
 * length); every string in it is borrowed from those and lives until
 * sl_sqs_req_free.
 * Threading: none (pure functions).
 */
#ifndef SL_API_SQS_REQ_H
#define SL_API_SQS_REQ_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SL_SQS_BATCH_MAX         10u          /* entries per batch request (SQS) */
#define SL_SQS_MSG_ATTRS_MAX     10u          /* message attributes per message (SQS) */
#define SL_SQS_QUEUE_ATTRS_MAX   32u          /* queue attributes per request */
#define SL_SQS_NAMES_MAX         32u          /* AttributeNames / MessageAttributeNames */
#define SL_SQS_QUEUE_NAME_MAX    80u          /* SQS: 1-80 of [A-Za-z0-9_-], .fifo included */
#define SL_SQS_MESSAGE_BYTES_MAX (256u << 10) /* body + attributes (SQS) */
#define SL_SQS_QUERY_INDEX_MAX   64u          /* Attribute.N: N in 1..64 */
#define SL_SQS_WHY_MAX           256u

enum sl_sqs_op {
    SL_SQS_UNKNOWN = 0,
    SL_SQS_CREATE_QUEUE,
    SL_SQS_GET_QUEUE_URL,
    SL_SQS_LIST_QUEUES,
    SL_SQS_DELETE_QUEUE,
    SL_SQS_GET_QUEUE_ATTRIBUTES,
    SL_SQS_SET_QUEUE_ATTRIBUTES,
    SL_SQS_SEND_MESSAGE,
    SL_SQS_SEND_MESSAGE_BATCH,
    SL_SQS_RECEIVE_MESSAGE,
    SL_SQS_DELETE_MESSAGE,
    SL_SQS_DELETE_MESSAGE_BATCH,
    SL_SQS_CHANGE_VISIBILITY,
    SL_SQS_CHANGE_VISIBILITY_BATCH,
    SL_SQS_PURGE_QUEUE,
    SL_SQS_OP_COUNT_
};

/* SQS's error codes: the JSON protocol's __type and the Query protocol's
 * Code (sqs.c's table). */
enum sl_sqs_error {
    SL_SQS_OK = 0,
    SL_SQS_E_MALFORMED, /* the body is not JSON / not a form */
    SL_SQS_E_INVALID_ACTION,
    SL_SQS_E_NO_QUEUE,
    SL_SQS_E_INVALID_PARAMETER,
    SL_SQS_E_MISSING_PARAMETER,
    SL_SQS_E_RECEIPT_INVALID,
    SL_SQS_E_TOO_MANY_ENTRIES,
    SL_SQS_E_IDS_NOT_DISTINCT,
    SL_SQS_E_EMPTY_BATCH,
    SL_SQS_E_INVALID_ENTRY_ID,
    SL_SQS_E_INVALID_ATTRIBUTE_NAME,
    SL_SQS_E_QUEUE_EXISTS,
    SL_SQS_E_OVER_LIMIT,
    SL_SQS_E_UNSUPPORTED,
    SL_SQS_E_NOT_INFLIGHT,
    SL_SQS_E_INTERNAL,
    SL_SQS_E_MISSING_AUTH,         /* auth on: no Authorization header */
    SL_SQS_E_INCOMPLETE_SIGNATURE, /* a malformed SigV4 header */
    SL_SQS_E_INVALID_CLIENT_TOKEN, /* an access key id not in the auth file */
    SL_SQS_E_SIGNATURE_MISMATCH,   /* a wrong signature, an expired date, a replay */
    SL_SQS_E_ACCESS_DENIED,        /* the principal lacks the right (ACL) */
    SL_SQS_E_COUNT_
};

struct sl_sqs_kv {
    const char *name;  /* borrowed from the request */
    const char *value; /* borrowed */
};

/* A message attribute; exactly one of string_value / binary is set. */
struct sl_sqs_mattr {
    const char *name;
    const char *type; /* String, Number, Binary, optionally ".custom" */
    const char *string_value;
    const uint8_t *binary; /* decoded base64, in the request's arena */
    size_t binary_len;
};

/* One entry of a batch (single-message operations use entries[0]). */
struct sl_sqs_entry {
    const char *id;
    const char *body;
    size_t body_len;
    int64_t delay_s; /* -1: not given */
    const char *group_id;
    const char *dedup_id;
    struct sl_sqs_mattr attrs[SL_SQS_MSG_ATTRS_MAX];
    uint32_t n_attrs;
    const char *receipt;
    int64_t visibility_s; /* -1: not given */
};

struct sl_sqs_req {
    enum sl_sqs_op op;
    const char *queue_name;                         /* QueueName */
    const char *queue_url;                          /* QueueUrl */
    const char *prefix;                             /* QueueNamePrefix */
    struct sl_sqs_kv attrs[SL_SQS_QUEUE_ATTRS_MAX]; /* Attributes */
    uint32_t n_attrs;
    const char *names[SL_SQS_NAMES_MAX]; /* AttributeNames + MessageSystemAttributeNames */
    uint32_t n_names;
    const char *mattr_names[SL_SQS_NAMES_MAX]; /* MessageAttributeNames */
    uint32_t n_mattr_names;
    int64_t max_messages; /* -1: not given */
    int64_t wait_s;       /* -1: not given */
    struct sl_sqs_entry entries[SL_SQS_BATCH_MAX];
    uint32_t n_entries;
    json_t *doc;    /* owned: every string above points into it or the arena */
    uint8_t *arena; /* owned */
    size_t arena_len;
    size_t arena_cap;
};

/* What a decoder could not take: the code and a message for the client. */
struct sl_sqs_fault {
    enum sl_sqs_error code;
    char why[SL_SQS_WHY_MAX];
};

/* The operation named `name` (e.g. "SendMessage"), or SL_SQS_UNKNOWN. */
enum sl_sqs_op sl_sqs_op_parse(const char *name, size_t len);
const char *sl_sqs_op_name(enum sl_sqs_op op);
/* A real SQS operation this broker does not serve (UnsupportedOperation). */
bool sl_sqs_op_unserved(const char *name);

/* JSON protocol: decodes `body` (borrowed) for operation `op_name`.
 * *out returns owned (sl_sqs_req_free). Errors: SL_EPROTO (malformed or
 * invalid: `f` says which SQS error), SL_ENOMEM. */
int sl_sqs_decode_json(const char *op_name, const uint8_t *body, size_t len,
                       struct sl_sqs_req **out, struct sl_sqs_fault *f);

/* Query protocol: decodes the form `body` (borrowed); the action is its
 * Action parameter. Errors as sl_sqs_decode_json. */
int sl_sqs_decode_query(const uint8_t *body, size_t len, struct sl_sqs_req **out,
                        struct sl_sqs_fault *f);

/* Decodes the JSON protocol's document `doc` (takes it) for `op`: what
 * both decoders end in. Errors as sl_sqs_decode_json. */
int sl_sqs_decode_doc(enum sl_sqs_op op, json_t *doc, size_t body_len, struct sl_sqs_req **out,
                      struct sl_sqs_fault *f);

void sl_sqs_req_free(struct sl_sqs_req *r); /* NULL-safe */

/* The Query protocol's XML answer for operation `op` whose JSON answer is
 * `result` (borrowed): returns owned NUL-terminated text, or NULL (no
 * memory). */
char *sl_sqs_xml_result(enum sl_sqs_op op, const json_t *result, const char *request_id);
/* The Query protocol's XML error. Returns owned text or NULL. */
char *sl_sqs_xml_error(const char *code, bool sender, const char *message, const char *request_id);


#endif
