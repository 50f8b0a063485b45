/* kinesis_reply.c - what every Kinesis handler shares: answers (JSON, or
 * CBOR when the request was CBOR), AWS error answers
 * ({"__type":"<Name>Exception","message":"..."}, HTTP 400; InternalFailure
 * 500), stream lookup by name or ARN, the region and ARNs, and the
 * front-end's state. Separate from the operation table (kinesis.c) so that
 * handlers and dispatch do not include each other.
 *
 * Threading: the main loop only.
 */
#include "broker/api/access.h"
#include "broker/api/kinesis_cbor.h"
#include "broker/api/kinesis_crypto.h"
#include "broker/api/kinesis_int.h"
#include "broker/engine/catalog.h"
#include "broker/engine/engine.h"
#include "common/assert.h"
#include "common/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ERR_MESSAGE_MAX 512u

static const char *const err_names[SL_KIN_ERR_COUNT_] = {
    [SL_KIN_RESOURCE_NOT_FOUND] = "ResourceNotFoundException",
    [SL_KIN_RESOURCE_IN_USE] = "ResourceInUseException",
    [SL_KIN_INVALID_ARGUMENT] = "InvalidArgumentException",
    [SL_KIN_EXPIRED_ITERATOR] = "ExpiredIteratorException",
    [SL_KIN_LIMIT_EXCEEDED] = "LimitExceededException",
    [SL_KIN_THROUGHPUT_EXCEEDED] = "ProvisionedThroughputExceededException",
    [SL_KIN_SERIALIZATION] = "SerializationException",
    [SL_KIN_UNKNOWN_OPERATION] = "UnknownOperationException",
    [SL_KIN_INTERNAL_FAILURE] = "InternalFailure",
    [SL_KIN_MISSING_AUTH_TOKEN] = "MissingAuthenticationTokenException",
    [SL_KIN_INCOMPLETE_SIGNATURE] = "IncompleteSignatureException",
    [SL_KIN_UNRECOGNIZED_CLIENT] = "UnrecognizedClientException",
    [SL_KIN_INVALID_SIGNATURE] = "InvalidSignatureException",
    [SL_KIN_ACCESS_DENIED] = "AccessDeniedException",
};

const char *sl_kin_err_name(enum sl_kin_err e)
{
    SL_ASSERT(e < SL_KIN_ERR_COUNT_);
    return err_names[e];
}

enum sl_kin_err sl_kin_err_of(int sl_err)
{
    switch (sl_err) {
    case SL_ENOTFOUND:
        return SL_KIN_RESOURCE_NOT_FOUND;
    case SL_EEXIST:
        return SL_KIN_RESOURCE_IN_USE;
    case SL_EINVAL:
    case SL_ETOOBIG:
    case SL_EPROTO:
    case SL_EUNSUPPORTED: /* (not retried: what this broker does not do, said in the message) */
        return SL_KIN_INVALID_ARGUMENT;
    case SL_ELIMIT:
        return SL_KIN_LIMIT_EXCEEDED;
    case SL_EAGAIN:
        return SL_KIN_THROUGHPUT_EXCEEDED;
    default:
        return SL_KIN_INTERNAL_FAILURE;
    }
}

bool sl_kin_wants_cbor(const struct sl_api_call *call)
{
    const char *ct = call->req != NULL ? sl_api_header(call->req, "content-type") : NULL;
    return ct != NULL &&
           strncmp(ct, SL_KIN_CBOR_CONTENT_TYPE, strlen(SL_KIN_CBOR_CONTENT_TYPE)) == 0;
}

/* Every answer but event streams goes out here: JSON, or CBOR when asked. */
static void reply(struct sl_api_call *call, int status, const char *json, size_t len)
{
    if (!sl_kin_wants_cbor(call)) {
        sl_api_reply(call, status, SL_KIN_CONTENT_TYPE, json, len);
        return;
    }
    uint8_t *c = NULL;
    size_t clen = 0;
    if (sl_kin_cbor_from_json(json, len, &c, &clen) != SL_OK) {
        static const char oom[] = "out of memory";
        sl_api_reply(call, 500, "text/plain", oom, sizeof(oom) - 1);
    } else {
        sl_api_reply(call, status, SL_KIN_CBOR_CONTENT_TYPE, c, clen);
    }
    free(c);
}

void sl_kin_fail(struct sl_api_call *call, enum sl_kin_err e, const char *fmt, ...)
{
    char msg[ERR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    struct sl_kin_buf b = {0};
    sl_kin_buf_fmt(&b, "{\"__type\":\"%s\",\"message\":", sl_kin_err_name(e));
    sl_kin_buf_json_str(&b, msg, strlen(msg));
    sl_kin_buf_str(&b, "}");
    int status = e == SL_KIN_INTERNAL_FAILURE ? 500 : 400;
    if (b.failed) {
        static const char oom[] = "{\"__type\":\"InternalFailure\",\"message\":\"out of memory\"}";
        reply(call, 500, oom, sizeof(oom) - 1);
    } else {
        reply(call, status, b.p, b.len);
    }
    sl_kin_buf_free(&b);
}

void sl_kin_reply_json(struct sl_api_call *call, json_t *body)
{
    char *s = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (s == NULL) {
        sl_kin_fail(call, SL_KIN_INTERNAL_FAILURE, "out of memory");
        return;
    }
    reply(call, 200, s, strlen(s));
    free(s);
}

void sl_kin_reply_buf(struct sl_api_call *call, const struct sl_kin_buf *b)
{
    if (b->failed) {
        sl_kin_fail(call, SL_KIN_INTERNAL_FAILURE, "out of memory");
        return;
    }
    reply(call, 200, b->p, b->len);
}

const char *sl_kin_str(const json_t *body, const char *key)
{
    const json_t *v = json_object_get(body, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

struct sl_stream *sl_kin_stream_named(struct sl_api_call *call, const char *name, const char *arn)
{
    char from_arn[SL_KIN_NAME_MAX + 1];
    if (name == NULL && arn != NULL) {
        if (sl_kin_arn_stream(arn, from_arn, NULL) != SL_OK) {
            sl_kin_fail(call, SL_KIN_INVALID_ARGUMENT, "StreamARN %.300s is not a stream ARN", arn);
            return NULL;
        }
        name = from_arn;
    }
    if (name == NULL) {
        sl_kin_fail(call, SL_KIN_INVALID_ARGUMENT, "StreamName or StreamARN is required");
        return NULL;
    }
    if (!sl_kin_allowed(call, name)) { /* before the lookup: no existence oracle */
        return NULL;
    }
    struct sl_stream *st = sl_catalog_find(call->api->engine->catalog, name);
    if (st == NULL) {
        sl_kin_fail(call, SL_KIN_RESOURCE_NOT_FOUND,
                    "Stream %.200s under account " SL_KIN_ACCOUNT " not found.", name);
    }
    return st;
}

bool sl_kin_allowed(struct sl_api_call *call, const char *name)
{
    char why[SL_SIGV4_WHY_MAX + 128];
    if (sl_access_allowed(call, call->acl_ops, name, why, sizeof(why))) {
        return true;
    }
    sl_kin_fail(call, SL_KIN_ACCESS_DENIED, "%s", why);
    return false;
}

struct sl_stream *sl_kin_stream(struct sl_api_call *call, const json_t *body)
{
    return sl_kin_stream_named(call, sl_kin_str(body, "StreamName"), sl_kin_str(body, "StreamARN"));
}

/* "AWS4-HMAC-SHA256 Credential=AKID/20261204/us-east-1/kinesis/aws4_request, ..." */
void sl_kin_region(const struct sl_api_call *call, char *out)
{
    snprintf(out, SL_KIN_REGION_MAX + 1, "%s", SL_KIN_REGION_DEFAULT);
    const char *auth = call->req != NULL ? sl_api_header(call->req, "authorization") : NULL;
    const char *c = auth != NULL ? strstr(auth, "Credential=") : NULL;
    for (int i = 0; c != NULL && i < 2; i++) { /* skip the key id and the date */
        c = strchr(c, '/');
        c = c != NULL ? c + 1 : NULL;
    }
    size_t n = c != NULL ? strcspn(c, "/,") : 0;
    if (n > 0 && n <= SL_KIN_REGION_MAX && c[n] == '/') {
        for (size_t i = 0; i < n; i++) {
            char ch = c[i];
            if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-')) {
                return;
            }
        }
        memcpy(out, c, n);
        out[n] = '\0';
    }
}

void sl_kin_stream_arn(const struct sl_api_call *call, const char *name, char *out)
{
    char region[SL_KIN_REGION_MAX + 1];
    sl_kin_region(call, region);
    snprintf(out, SL_KIN_ARN_MAX, "arn:aws:kinesis:%s:" SL_KIN_ACCOUNT ":stream/%s", region, name);
}

