/* sns.c - the Amazon SNS API (see sns.h): which requests are SNS's,
 * authentication, dispatch, answers and errors, ARNs. Topics:
 * sns_topics.c; subscriptions: sns_subs.c; publishing: sns_publish.c;
 * decoding: sns_query.c; the subscriptions file: sns_store.c.
 *
 * Routing: SQS's Query protocol also POSTs Action=... forms to the listener,
 * so a form is SNS's when its SigV4 credential scope names service "sns"
 * (what every SDK signs) or, unsigned, when its Action is an SNS action
 * (the two APIs share no action name). A GET whose query is an SNS
 * ConfirmSubscription is the SubscribeURL of a confirmation message.
 *
 * Threading: the main loop. Ownership: a struct sns_call per request,
 * freed when answered.
 */
#include "broker/api/sns.h"

#include "broker/api/access.h"
#include "broker/api/sns_call.h"
#include "broker/engine/catalog.h"
#include "broker/engine/engine.h"
#include "common/assert.h"
#include "common/checksum.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SNS_JANITOR_EVERY_MS 1000u

/* ---- errors ------------------------------------------------------------------- */

static const struct {
    const char *code;
    int status;
} errors[SL_SNS_E_COUNT_] = {
    [SL_SNS_OK] = {"", 200},
    [SL_SNS_E_MALFORMED] = {"MalformedQueryString", 400},
    [SL_SNS_E_INVALID_ACTION] = {"InvalidAction", 400},
    [SL_SNS_E_UNSUPPORTED] = {"InvalidAction", 400},
    [SL_SNS_E_INVALID_PARAMETER] = {"InvalidParameter", 400},
    [SL_SNS_E_INVALID_PARAMETER_VALUE] = {"ParameterValueInvalid", 400},
    [SL_SNS_E_NOT_FOUND] = {"NotFound", 404},
    [SL_SNS_E_AUTHORIZATION] = {"AuthorizationError", 403},
    [SL_SNS_E_TOO_MANY_ENTRIES] = {"TooManyEntriesInBatchRequest", 400},
    [SL_SNS_E_IDS_NOT_DISTINCT] = {"BatchEntryIdsNotDistinct", 400},
    [SL_SNS_E_EMPTY_BATCH] = {"EmptyBatchRequest", 400},
    [SL_SNS_E_INVALID_ENTRY_ID] = {"InvalidBatchEntryId", 400},
    [SL_SNS_E_LIMIT] = {"SubscriptionLimitExceeded", 403},
    [SL_SNS_E_INTERNAL] = {"InternalError", 500},
    [SL_SNS_E_MISSING_AUTH] = {"MissingAuthenticationToken", 403},
    [SL_SNS_E_INCOMPLETE_SIGNATURE] = {"IncompleteSignature", 400},
    [SL_SNS_E_INVALID_CLIENT_TOKEN] = {"InvalidClientTokenId", 403},
    [SL_SNS_E_SIGNATURE_MISMATCH] = {"SignatureDoesNotMatch", 403},
};

const char *sns_error_code(enum sl_sns_error code)
{
    SL_ASSERT(code > SL_SNS_OK && code < SL_SNS_E_COUNT_);
    return errors[code].code;
}

bool sns_error_sender(enum sl_sns_error code)
{
    return errors[code].status < 500;
}

static void sns_free(struct sns_call *c)
{
    sl_sns_req_free(c->req);
    free(c);
}

static void answer(struct sns_call *c, int status, char *body)
{
    if (body == NULL) {
        static const char msg[] = "out of memory";
        sl_api_reply(c->call, 503, "text/plain", msg, sizeof(msg) - 1);
    } else {
        sl_api_reply(c->call, status, "text/xml", body, strlen(body));
    }
    free(body);
    sns_free(c);
}

void sns_reply(struct sns_call *c, struct sl_query_xml *x, bool result)
{
    SL_ASSERT(c->req != NULL);
    answer(c, 200, sl_sns_xml_end(x, c->req->op, result, c->request_id));
}

void sns_reply_empty(struct sns_call *c)
{
    struct sl_query_xml x = {0};
    sl_sns_xml_begin(&x, c->req->op, false);
    sns_reply(c, &x, false);
}

void sns_fail(struct sns_call *c, enum sl_sns_error code, const char *fmt, ...)
{
    SL_ASSERT(code > SL_SNS_OK && code < SL_SNS_E_COUNT_);
    char msg[SL_SNS_WHY_MAX + 128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    answer(c, errors[code].status,
           sl_sns_xml_error(errors[code].code, errors[code].status < 500, msg, c->request_id));
}

void sns_fail_engine(struct sns_call *c, int err, const char *why)
{
    switch (err) {
    case SL_ENOTFOUND:
        sns_fail(c, SL_SNS_E_NOT_FOUND, "%s", why[0] != '\0' ? why : "Not found");
        break;
    case SL_EINVAL:
    case SL_ETOOBIG:
        sns_fail(c, SL_SNS_E_INVALID_PARAMETER, "Invalid parameter: %s",
                 why[0] != '\0' ? why : sl_strerror(err));
        break;
    case SL_ELIMIT:
        sns_fail(c, SL_SNS_E_LIMIT, "%s", why[0] != '\0' ? why : sl_strerror(err));
        break;
    default:
        sns_fail(c, SL_SNS_E_INTERNAL, "%s: %s", sl_errname(err), why);
        break;
    }
}

/* ---- topics: names and ARNs ------------------------------------------------------ */

bool sns_allowed(struct sns_call *c, uint32_t ops, const char *topic)
{
    char why[SL_SNS_WHY_MAX];
    if (c->token_auth) {
        SL_ASSERT(c->req->op == SL_SNS_CONFIRM_SUBSCRIPTION); /* nothing else goes unsigned */
        return true;
    }
    if (sl_access_allowed(c->call, ops, topic, why, sizeof(why))) {
        return true;
    }
    sns_fail(c, SL_SNS_E_AUTHORIZATION, "%s", why);
    return false;
}

bool sns_is_topic(const struct sl_stream *st)
{
    return st != NULL && sl_catalog_prop(st, SNS_PROP_PREFIX "CreatedTimestamp") != NULL;
}

bool sns_topic_name_ok(const char *name)
{
    size_t n = strlen(name);
    return n >= 1 && n <= SL_SNS_TOPIC_MAX &&
           strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

void sns_topic_arn(char *out, size_t cap, const char *topic)
{
    snprintf(out, cap, SNS_ARN_PREFIX "%s", topic);
}

void sns_sub_arn(char *out, size_t cap, const struct sl_sns_sub *s)
{
    snprintf(out, cap, SNS_ARN_PREFIX "%s:%s", s->topic, s->id);
}

struct sl_stream *sns_resolve_topic(struct sns_call *c, uint32_t ops)
{
    const char *arn = c->req->topic_arn;
    if (arn == NULL || arn[0] == '\0') {
        sns_fail(c, SL_SNS_E_INVALID_PARAMETER,
                 "Invalid parameter: TopicArn is required (the TopicArn that CreateTopic "
                 "answered, " SNS_ARN_PREFIX "NAME)");
        return NULL;
    }
    const char *name = strrchr(arn, ':');
    name = name != NULL ? name + 1 : arn;
    if (strncmp(arn, "arn:aws:sns:", 12) != 0 || !sns_topic_name_ok(name)) {
        sns_fail(c, SL_SNS_E_INVALID_PARAMETER,
                 "Invalid parameter: TopicArn %.160s is not a topic ARN (" SNS_ARN_PREFIX "NAME)",
                 arn);
        return NULL;
    }
    if (!sns_allowed(c, ops, name)) {
        return NULL;
    }
    struct sl_stream *st = sl_catalog_find(c->e->catalog, name);
    if (!sns_is_topic(st)) {
        sns_fail(c, SL_SNS_E_NOT_FOUND, "Topic does not exist");
        return NULL;
    }
    snprintf(c->topic, sizeof(c->topic), "%s", name);
    return st;
}

/* ---- dispatch ------------------------------------------------------------------- */

/* What each action needs on its topic when auth is on (enum sl_acl_op).
 * Listings (0) show only what the principal has a right on. */
static const uint32_t acl_of[SL_SNS_OP_COUNT_] = {
    [SL_SNS_CREATE_TOPIC] = SL_ACL_ADMIN,
    [SL_SNS_LIST_TOPICS] = 0,
    [SL_SNS_DELETE_TOPIC] = SL_ACL_ADMIN,
    [SL_SNS_GET_TOPIC_ATTRIBUTES] = SL_ACL_ANY,
    [SL_SNS_SET_TOPIC_ATTRIBUTES] = SL_ACL_ADMIN,
    [SL_SNS_SUBSCRIBE] = SL_ACL_QUEUE,
    [SL_SNS_CONFIRM_SUBSCRIPTION] = SL_ACL_QUEUE,
    [SL_SNS_UNSUBSCRIBE] = SL_ACL_QUEUE,
    [SL_SNS_LIST_SUBSCRIPTIONS] = 0,
    [SL_SNS_LIST_SUBSCRIPTIONS_BY_TOPIC] = SL_ACL_ANY,
    [SL_SNS_GET_SUBSCRIPTION_ATTRIBUTES] = SL_ACL_ANY,
    [SL_SNS_SET_SUBSCRIPTION_ATTRIBUTES] = SL_ACL_QUEUE,
    [SL_SNS_PUBLISH] = SL_ACL_PRODUCE,
    [SL_SNS_PUBLISH_BATCH] = SL_ACL_PRODUCE,
};

static void dispatch(struct sns_call *c)
{
    struct sl_stream *st;
    switch (c->req->op) {
    case SL_SNS_CREATE_TOPIC:
        sns_create_topic(c);
        break;
    case SL_SNS_LIST_TOPICS:
        sns_list_topics(c);
        break;
    case SL_SNS_DELETE_TOPIC:
        sns_delete_topic(c);
        break;
    case SL_SNS_GET_TOPIC_ATTRIBUTES:
        sns_get_topic_attributes(c);
        break;
    case SL_SNS_SET_TOPIC_ATTRIBUTES:
        sns_set_topic_attributes(c);
        break;
    case SL_SNS_SUBSCRIBE:
        sns_subscribe(c);
        break;
    case SL_SNS_CONFIRM_SUBSCRIPTION:
        sns_confirm(c);
        break;
    case SL_SNS_UNSUBSCRIBE:
        sns_unsubscribe(c);
        break;
    case SL_SNS_LIST_SUBSCRIPTIONS:
    case SL_SNS_LIST_SUBSCRIPTIONS_BY_TOPIC:
        sns_list_subscriptions(c, c->req->op == SL_SNS_LIST_SUBSCRIPTIONS_BY_TOPIC);
        break;
    case SL_SNS_GET_SUBSCRIPTION_ATTRIBUTES:
        sns_get_sub_attributes(c);
        break;
    case SL_SNS_SET_SUBSCRIPTION_ATTRIBUTES:
        sns_set_sub_attributes(c);
        break;
    case SL_SNS_PUBLISH:
    case SL_SNS_PUBLISH_BATCH:
        st = sns_resolve_topic(c, SL_ACL_PRODUCE);
        if (st != NULL) {
            sns_publish(c, st);
        }
        break;
    default:
        SL_ASSERT(false); /* the decoder answers unknown actions */
    }
}

static void copy_request(struct sns_call *c, const struct sl_http_request *req)
{
    static uint64_t counter;
    uint64_t h = sl_checksum64(&counter, sizeof(counter)) ^ sl_clock_mono_ns();
    counter++;
    snprintf(c->request_id, sizeof(c->request_id), "%08x-%04x-4%03x-8%03x-%012" PRIx64,
             (unsigned)(h >> 32), (unsigned)(h >> 16) & 0xffff, (unsigned)h & 0xfff,
             (unsigned)(counter & 0xfff), counter);
    const char *host = sl_api_header(req, "host");
    if (host == NULL || host[0] == '\0' || strlen(host) >= sizeof(c->host) ||
        strspn(host, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-:[]") !=
            strlen(host)) {
        host = "localhost";
    }
    snprintf(c->host, sizeof(c->host), "%s", host);
    c->https = c->call->conn != NULL && c->call->conn->tls != NULL;
}

static bool authenticate(struct sns_call *c)
{
    static const enum sl_sns_error errs[] = {
        [SL_SIGV4_MISSING] = SL_SNS_E_MISSING_AUTH,
        [SL_SIGV4_INCOMPLETE] = SL_SNS_E_INCOMPLETE_SIGNATURE,
        [SL_SIGV4_UNKNOWN_KEY] = SL_SNS_E_INVALID_CLIENT_TOKEN,
        [SL_SIGV4_MISMATCH] = SL_SNS_E_SIGNATURE_MISMATCH,
        [SL_SIGV4_EXPIRED] = SL_SNS_E_SIGNATURE_MISMATCH,
        [SL_SIGV4_REPLAY] = SL_SNS_E_SIGNATURE_MISMATCH,
        [SL_SIGV4_INTERNAL] = SL_SNS_E_INTERNAL,
    };
    char why[SL_SIGV4_WHY_MAX];
    enum sl_sigv4_status st = sl_access_authenticate(c->call, "sns", why, sizeof(why));
    if (st == SL_SIGV4_OK) {
        return true;
    }
    SL_ASSERT((size_t)st < sizeof(errs) / sizeof(errs[0]));
    sns_fail(c, errs[st], "%s", why);
    return false;
}

/* The form of a request: a POST's body, or a GET's query string. */
static void form_of(const struct sl_http_request *req, const uint8_t **form, size_t *len)
{
    if (strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0) {
        const char *q = strchr(req->path, '?');
        *form = (const uint8_t *)(q != NULL ? q + 1 : "");
        *len = strlen((const char *)*form);
    } else {
        *form = req->body;
        *len = req->body_len;
    }
}

void sl_sns_handle(struct sl_api_call *call)
{
    struct sns_call *c = calloc(1, sizeof(*c));
    if (c == NULL || call->api->sns == NULL) {
        free(c);
        static const char msg[] = "the SNS API is not available (out of memory at start)";
        sl_api_reply(call, 503, "text/plain", msg, sizeof(msg) - 1);
        return;
    }
    const struct sl_http_request *req = call->req;
    SL_ASSERT(req != NULL); /* handlers are called on the request's arrival */
    c->call = call;
    c->e = call->api->engine;
    c->push = call->api->push;
    c->sns = call->api->sns;
    copy_request(c, req);
    const uint8_t *form;
    size_t len;
    form_of(req, &form, &len);
    struct sl_sns_fault f = {0};
    int rc = sl_sns_decode_query(form, len, &c->req, &f);
    if (rc == SL_ENOMEM) {
        answer(c, 503, NULL);
        return;
    }
    bool confirm_get = rc == SL_OK && c->req->op == SL_SNS_CONFIRM_SUBSCRIPTION &&
                       strcmp(req->method, "POST") != 0;
    /* The SubscribeURL is visited unsigned (its token is the credential),
     * as SNS's is; everything else is signed when auth is on. */
    if (!confirm_get && !authenticate(c)) {
        return;
    }
    if (rc != SL_OK) {
        sns_fail(c, f.code, "%s", f.why);
        return;
    }
    SL_ASSERT(c->req->op > SL_SNS_UNKNOWN && c->req->op < SL_SNS_OP_COUNT_);
    call->action = sl_sns_op_name(c->req->op);
    call->acl_ops = acl_of[c->req->op];
    if (confirm_get) {
        call->acl_checked = true; /* the token is the right */
        c->token_auth = true;
    }
    dispatch(c);
}

/* ---- routing ---------------------------------------------------------------------- */

/* The value of form parameter Action in [p, p+n), or NULL. */
static const char *form_action(const char *p, size_t n, size_t *len)
{
    const char *end = p + n;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *pe = amp != NULL ? amp : end;
        if (pe - p > 7 && memcmp(p, "Action=", 7) == 0) {
            *len = (size_t)(pe - p - 7);
            return p + 7;
        }
        p = pe + 1;
    }
    return NULL;
}

bool sl_sns_claims(const struct sl_http_request *req)
{
    const char *auth = sl_api_header(req, "authorization");
    if (auth != NULL && strstr(auth, "/sns/aws4_request") != NULL) {
        return true;
    }
    size_t alen = 0;
    const char *action = NULL;
    if (strcmp(req->method, "POST") == 0) {
        const char *ctype = sl_api_header(req, "content-type");
        if (auth != NULL || ctype == NULL ||
            strncasecmp(ctype, "application/x-www-form-urlencoded", 33) != 0) {
            return false; /* signed for another service, or not a form */
        }
        action = form_action((const char *)req->body, req->body_len, &alen);
    } else if (strcmp(req->method, "GET") == 0) {
        const char *q = strchr(req->path, '?');
        action = q != NULL ? form_action(q + 1, strlen(q + 1), &alen) : NULL;
        return action != NULL && alen == 19 && memcmp(action, "ConfirmSubscription", 19) == 0;
    }
    return action != NULL && sl_sns_action_known(action, alen);
}

/* ---- the module ------------------------------------------------------------------- */

int sl_sns_open(const char *data_dir, struct sl_sns **out, char *why, size_t why_len)
{
    *out = NULL;
    struct sl_sns *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return SL_ENOMEM;
    }
    int rc = sl_sns_store_open(data_dir, &s->store, why, why_len);
    if (rc != SL_OK) {
        free(s);
        return rc;
    }
    if (s->store->n > 0) {
        sl_info("sns", "%u SNS subscription%s loaded", s->store->n, s->store->n == 1 ? "" : "s");
    }
    *out = s;
    return SL_OK;
}

void sl_sns_close(struct sl_sns *s)
{
    if (s != NULL) {
        sl_sns_store_close(s->store);
        free(s);
    }
}

void sl_sns_tick(struct sl_api *api, uint64_t now_ms)
{
    struct sl_sns *s = api->sns;
    if (s == NULL || s->busy || now_ms < s->next_ms) {
        return;
    }
    s->next_ms = now_ms + SNS_JANITOR_EVERY_MS;
    sns_janitor(s, api->engine, api->push, now_ms);
}
