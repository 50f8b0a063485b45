/* sqs_reply.c - what every SQS handler shares: answers in the request's
 * protocol (JSON, or XML for the Query protocol), SQS errors (JSON
 * __type com.amazonaws.sqs#<Name>; Query <ErrorResponse> with the
 * AWS.SimpleQueueService.* codes), per-entry batch failures, and the queue
 * attributes kept as stream properties. Separate from the dispatch (sqs.c)
 * so that handlers and dispatch do not include each other.
 *
 * Threading: the main loop.
 */
#include "broker/api/sqs_call.h"
#include "broker/engine/catalog.h"
#include "broker/engine/engine.h"
#include "common/assert.h"
#include "common/error.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- errors ----------------------------------------------------------------- */

static const struct {
    const char *json;  /* __type after com.amazonaws.sqs# */
    const char *query; /* Query protocol's Code */
    int status;
} errors[SL_SQS_E_COUNT_] = {
    [SL_SQS_OK] = {"", "", 200},
    [SL_SQS_E_MALFORMED] = {"InvalidParameterValue", "MalformedQueryString", 400},
    [SL_SQS_E_INVALID_ACTION] = {"InvalidAction", "InvalidAction", 400},
    [SL_SQS_E_NO_QUEUE] = {"QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue", 400},
    [SL_SQS_E_INVALID_PARAMETER] = {"InvalidParameterValue", "InvalidParameterValue", 400},
    [SL_SQS_E_MISSING_PARAMETER] = {"MissingParameter", "MissingParameter", 400},
    [SL_SQS_E_RECEIPT_INVALID] = {"ReceiptHandleIsInvalid", "ReceiptHandleIsInvalid", 400},
    [SL_SQS_E_TOO_MANY_ENTRIES] = {"TooManyEntriesInBatchRequest",
                                   "AWS.SimpleQueueService.TooManyEntriesInBatchRequest", 400},
    [SL_SQS_E_IDS_NOT_DISTINCT] = {"BatchEntryIdsNotDistinct",
                                   "AWS.SimpleQueueService.BatchEntryIdsNotDistinct", 400},
    [SL_SQS_E_EMPTY_BATCH] = {"EmptyBatchRequest", "AWS.SimpleQueueService.EmptyBatchRequest", 400},
    [SL_SQS_E_INVALID_ENTRY_ID] = {"InvalidBatchEntryId",
                                   "AWS.SimpleQueueService.InvalidBatchEntryId", 400},
    [SL_SQS_E_INVALID_ATTRIBUTE_NAME] = {"InvalidAttributeName", "InvalidAttributeName", 400},
    [SL_SQS_E_QUEUE_EXISTS] = {"QueueAlreadyExists", "QueueAlreadyExists", 400},
    [SL_SQS_E_OVER_LIMIT] = {"OverLimit", "OverLimit", 403},
    [SL_SQS_E_UNSUPPORTED] = {"UnsupportedOperation", "AWS.SimpleQueueService.UnsupportedOperation",
                              400},
    [SL_SQS_E_NOT_INFLIGHT] = {"MessageNotInflight", "AWS.SimpleQueueService.MessageNotInflight",
                               400},
    [SL_SQS_E_INTERNAL] = {"InternalError", "InternalError", 500},
    /* authentication and ACLs: AWS's common error codes */
    [SL_SQS_E_MISSING_AUTH] = {"MissingAuthenticationToken", "MissingAuthenticationToken", 403},
    [SL_SQS_E_INCOMPLETE_SIGNATURE] = {"IncompleteSignature", "IncompleteSignature", 400},
    [SL_SQS_E_INVALID_CLIENT_TOKEN] = {"InvalidClientTokenId", "InvalidClientTokenId", 403},
    [SL_SQS_E_SIGNATURE_MISMATCH] = {"SignatureDoesNotMatch", "SignatureDoesNotMatch", 403},
    [SL_SQS_E_ACCESS_DENIED] = {"AccessDenied", "AccessDenied", 403},
};

static void sqs_free(struct sqs_call *c)
{
    SL_ASSERT(c->op == NULL); /* the operation freed its state before answering */
    sl_sqs_req_free(c->req);
    free(c);
}

void sqs_answer(struct sqs_call *c, int status, const char *body)
{
    const char *ctype = c->query ? "text/xml" : "application/x-amz-json-1.0";
    if (body == NULL) {
        static const char msg[] = "out of memory";
        sl_api_reply(c->call, 503, "text/plain", msg, sizeof(msg) - 1);
    } else {
        sl_api_reply(c->call, status, ctype, body, strlen(body));
    }
    sqs_free(c);
}

void sqs_reply(struct sqs_call *c, json_t *result)
{
    char *body = NULL;
    if (result != NULL) {
        body = c->query ? sl_sqs_xml_result(c->req->op, result, c->request_id)
                        : json_dumps(result, JSON_COMPACT);
    }
    json_decref(result);
    sqs_answer(c, 200, body);
    free(body);
}

void sqs_fail(struct sqs_call *c, enum sl_sqs_error code, const char *fmt, ...)
{
    SL_ASSERT(code > SL_SQS_OK && code < SL_SQS_E_COUNT_);
    char msg[SL_SQS_WHY_MAX + 64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    char *body = NULL;
    if (c->query) {
        body = sl_sqs_xml_error(errors[code].query, errors[code].status < 500, msg, c->request_id);
    } else {
        char type[96];
        snprintf(type, sizeof(type), "com.amazonaws.sqs#%s", errors[code].json);
        json_t *j = json_pack("{s:s,s:s}", "__type", type, "message", msg);
        body = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
    }
    sqs_answer(c, errors[code].status, body);
    free(body);
}

void sqs_fail_engine(struct sqs_call *c, int err, const char *why)
{
    switch (err) {
    case SL_ENOTFOUND:
        sqs_fail(c, SL_SQS_E_NO_QUEUE, "The specified queue does not exist. (%s)", why);
        break;
    case SL_EAGAIN:
    case SL_ELIMIT:
        sqs_fail(c, SL_SQS_E_OVER_LIMIT, "%s", why[0] != '\0' ? why : sl_strerror(err));
        break;
    case SL_EINVAL:
    case SL_ETOOBIG:
        sqs_fail(c, SL_SQS_E_INVALID_PARAMETER, "%s", why[0] != '\0' ? why : sl_strerror(err));
        break;
    default:
        sqs_fail(c, SL_SQS_E_INTERNAL, "%s: %s", sl_errname(err), why);
        break;
    }
}

json_t *sqs_failed_entry(const struct sqs_call *c, const char *id, enum sl_sqs_error code,
                         const char *message)
{
    return json_pack("{s:s,s:b,s:s,s:s}", "Id", id, "SenderFault", errors[code].status < 500,
                     "Code", c->query ? errors[code].query : errors[code].json, "Message", message);
}

/* ---- queues: names, URLs, attributes ------------------------------------------ */

const char *sqs_prop(const struct sl_stream *st, const char *name)
{
    char key[SL_STREAM_PROP_KEY_MAX];
    snprintf(key, sizeof(key), SQS_PROP_PREFIX "%s", name);
    return sl_catalog_prop(st, key);
}

int64_t sqs_attr_int(const struct sl_stream *st, const char *name, int64_t dflt)
{
    const char *v = sqs_prop(st, name);
    return v != NULL ? strtoll(v, NULL, 10) : dflt;
}

bool sqs_is_fifo(const struct sl_stream *st)
{
    const char *v = sqs_prop(st, "FifoQueue");
    return v != NULL && strcmp(v, "true") == 0;
}

