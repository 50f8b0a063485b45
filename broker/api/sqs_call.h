/* sqs_call.h - what the SQS front-end's files share (sqs.c: dispatch,
 * answers, queue administration; sqs_messages.c: send, receive, delete,
 * visibility; sqs_digest.c: MD5/SHA-256). Internal to broker/api.
 *
 * Threading: the main loop. A struct sqs_call lives from the request's
 * arrival to its answer; it owns the decoded request, so nothing is read
 * from the HTTP request (borrowed, and NULL after an h2 reset) once an
 * engine call has gone asynchronous.
 */
#ifndef SL_API_SQS_CALL_H
#define SL_API_SQS_CALL_H

#include "broker/api/call.h"
#include "broker/api/sqs_req.h"
#include "broker/msgid.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct sl_engine;
struct sl_stream;

#define SQS_GROUP          "sqs" /* the queue group every SQS queue reads through */
#define SQS_ACCOUNT        "000000000000"
#define SQS_REGION         "us-east-1"
#define SQS_HOST_MAX       256u
#define SQS_PROP_PREFIX    "sqs." /* queue attributes are stream properties sqs.<Name> */
#define SQS_ATTR_PREFIX    SL_SQS_ATTR_PREFIX /* message attribute N: record attribute sqs:N */
#define SQS_MD5_HEX        33u    /* 32 hex digits + NUL */
#define SQS_RECEIPT_MAX    512u   /* an encoded receipt handle + NUL */

struct sqs_call {
    struct sl_api_call *call;
    struct sl_engine *e;    /* borrowed */
    bool query;             /* Query protocol: XML answers */
    struct sl_sqs_req *req; /* owned */
    char host[SQS_HOST_MAX];
    char path_queue[SL_SQS_QUEUE_NAME_MAX + 1]; /* the queue the URL path named, or "" */
    char queue[SL_SQS_QUEUE_NAME_MAX + 1];      /* the queue the request is for */
    char request_id[40];
    void *op; /* owned: the operation's state while an engine call runs */
};

/* Answers with `result` (takes; JSON, or rendered as XML) and frees c. */
void sqs_reply(struct sqs_call *c, json_t *result);
/* Answers with `body` (NULL: 503, out of memory) and frees the call. */
void sqs_answer(struct sqs_call *c, int status, const char *body);
/* Answers with an SQS error and frees c. */
__attribute__((format(printf, 3, 4))) void sqs_fail(struct sqs_call *c, enum sl_sqs_error code,
                                                    const char *fmt, ...);
/* Answers an engine error (SL_ENOTFOUND -> QueueDoesNotExist, SL_EAGAIN /
 * SL_ELIMIT -> OverLimit, SL_EINVAL / SL_ETOOBIG -> InvalidParameterValue,
 * others -> InternalError) and frees c. */
void sqs_fail_engine(struct sqs_call *c, int err, const char *why);
/* A batch's Failed entry: {Id, SenderFault, Code, Message}; returns owned. */
json_t *sqs_failed_entry(const struct sqs_call *c, const char *id, enum sl_sqs_error code,
                         const char *message);

/* The queue's attribute `name` as an integer, `dflt` when unset. */
/* A queue attribute kept as the stream property sqs.<name>, or NULL. */
const char *sqs_prop(const struct sl_stream *st, const char *name);
int64_t sqs_attr_int(const struct sl_stream *st, const char *name, int64_t dflt);
/* The queue is FIFO. */
bool sqs_is_fifo(const struct sl_stream *st);

/* Message operations (sqs_messages.c); each answers c. */
void sqs_send(struct sqs_call *c, struct sl_stream *st);
void sqs_receive(struct sqs_call *c, struct sl_stream *st);
void sqs_delete(struct sqs_call *c, struct sl_stream *st);
void sqs_change_visibility(struct sqs_call *c, struct sl_stream *st);

/* Digests (sqs_digest.c, the one user of libcrypto): lower-case hex into
 * `hex` (SQS_MD5_HEX bytes; sha256: 65). */
void sqs_md5_hex(const void *data, size_t len, char *hex);
void sqs_sha256_hex(const void *data, size_t len, char *hex);
/* MD5OfMessageAttributes over `n` attributes (any order; sorted by name
 * here) as SQS computes it: per attribute, 4-byte big-endian length +
 * name, length + data type, 1 transport byte (1 String/Number, 2 Binary),
 * length + value. Returns false without memory. */
bool sqs_md5_attrs(const struct sl_sqs_mattr *attrs, uint32_t n, char *hex);

#endif
