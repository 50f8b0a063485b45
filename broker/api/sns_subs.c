/* sns_subs.c - SNS subscriptions: Subscribe, ConfirmSubscription,
 * Unsubscribe, ListSubscriptions(ByTopic), Get/SetSubscriptionAttributes,
 * (mapping in sns.h); sns_janitor.c finishes what they start.
 *
 * A subscription's parts, made in this order so a failure leaves nothing
 * half-made that the store does not know of: the queue group (named by the
 * subscription's id, starting at the log's end, with the FilterPolicy and
 * the RedrivePolicy's queue), then its push target, then the record in the
 * subscriptions file. An http(s) subscription has only the record (with its
 * token) until ConfirmSubscription: the SubscriptionConfirmation message is
 * POSTed by the push module's HTTP thread (sl_push_notify), and messages
 * published before the confirmation are not delivered (as SNS).
 *
 * The engine fixes a group's filter and dead-letter settings when it makes
 * it, and refuses to delete a group while a receive is parked on it (the
 * push target's long poll). So Unsubscribe and a FilterPolicy, scope or
 * RedrivePolicy change remove the push target at once (no delivery after
 * the answer) and mark the record; the janitor (every second, from the
 * tick) then deletes the group once the engine lets it and, for a change,
 * makes it again from the log's end with the new settings and puts the
 * target back (sns_janitor.c). Messages published in between (about the push module's
 * 10 s long poll at most) do not reach that subscription. Unconfirmed
 * subscriptions are dropped after 3 days, as SNS does.
 *
 * Tokens: 32 bytes of getrandom(2) (the kernel's CSPRNG) in hex, kept with
 * the subscription; ids are random UUIDs the same way.
 *
 * Threading: the main loop; engine callbacks may run before the call returns.
 */
#include "broker/api/access.h"
#include "broker/api/sns_call.h"
#include "broker/engine/catalog.h"
#include "broker/engine/engine.h"
#include "broker/engine/filter.h"
#include "broker/engine/queue.h"
#include "broker/push/forward.h"
#include "broker/push/push.h"
#include "common/assert.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/isotime.h"
#include "common/log.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define SNS_LIST_PAGE          100u   /* ListSubscriptions answers at most 100 (SNS) */
#define SNS_REDRIVE_DELIVERIES 4u     /* with a RedrivePolicy: 1 try + SNS's 3 retries */
#define SNS_HTTP_TIMEOUT_MS    15000u /* SNS's HTTP delivery timeout */
#define SNS_SQS_ARN_PREFIX     "arn:aws:sqs:"
#define SNS_BODY_MAX           8192u /* a confirmation message */

/* ---- ids, tokens ---------------------------------------------------------------- */

static bool random_hex(char *out, size_t bytes)
{
    uint8_t raw[32];
    SL_ASSERT(bytes <= sizeof(raw));
    if (getrandom(raw, bytes, 0) != (ssize_t)bytes) {
        return false;
    }
    for (size_t i = 0; i < bytes; i++) {
        snprintf(out + 2 * i, 3, "%02x", raw[i]);
    }
    return true;
}

static bool new_id(char out[SL_SNS_ID_MAX + 1])
{
    char h[33];
    if (!random_hex(h, 16)) {
        return false;
    }
    snprintf(out, SL_SNS_ID_MAX + 1, "%.8s-%.4s-4%.3s-8%.3s-%.12s", h, h + 8, h + 13, h + 17,
             h + 20);
    return true;
}

/* ---- the group and the target of a subscription ------------------------------------ */

void sns_group_config(const struct sl_sns_sub *s, struct sl_qgroup_config *g)
{
    memset(g, 0, sizeof(*g));
    g->start.kind = SL_POS_LATEST; /* SNS delivers what is published after subscribing */
    g->filter = s->filter[0] != '\0' ? s->filter : NULL;
    g->filter_body = (s->flags & SL_SNS_SUB_BODY_SCOPE) != 0;
    if (s->redrive[0] != '\0') {
        g->dead_letter_stream = s->redrive;
        g->max_deliveries = SNS_REDRIVE_DELIVERIES;
    }
}

void sns_target_of(const struct sl_sns_sub *s, struct sl_push_target *t)
{
    memset(t, 0, sizeof(*t));
    snprintf(t->stream, sizeof(t->stream), "%s", s->topic);
    snprintf(t->group, sizeof(t->group), "%s", s->id);
    if (strcmp(s->protocol, "sqs") == 0) {
        snprintf(t->url, sizeof(t->url), SL_PUSH_FORWARD_PREFIX "%.*s", (int)SL_SNS_TOPIC_MAX,
                 s->endpoint); /* an sqs endpoint is a queue's name */
        t->format = (s->flags & SL_SNS_SUB_RAW) != 0 ? SL_PUSH_FORMAT_SLUICE : SL_PUSH_FORMAT_SNS;
    } else {
        snprintf(t->url, sizeof(t->url), "%s", s->endpoint);
        t->format = SL_PUSH_FORMAT_SNS_HTTP;
        t->batch_size = 1;
        t->timeout_ms = SNS_HTTP_TIMEOUT_MS;
    }
}

/* ---- attributes ------------------------------------------------------------------- */

/* Applies attribute name=value to `s` (checked). Returns SL_SNS_OK, or the
 * error with `why` naming the parameter and the fix. */
static enum sl_sns_error apply_attr(struct sns_call *c, struct sl_sns_sub *s, const char *name,
                                    const char *value, char *why, size_t why_len)
{
    if (strcmp(name, "RawMessageDelivery") == 0) {
        if (strcmp(value, "true") != 0 && strcmp(value, "false") != 0) {
            snprintf(why, why_len, "Invalid parameter: RawMessageDelivery: true or false");
            return SL_SNS_E_INVALID_PARAMETER;
        }
        s->flags = strcmp(value, "true") == 0 ? s->flags | SL_SNS_SUB_RAW
                                              : s->flags & ~(uint32_t)SL_SNS_SUB_RAW;
        return SL_SNS_OK;
    }
    if (strcmp(name, "FilterPolicyScope") == 0) {
        if (strcmp(value, "MessageAttributes") != 0 && strcmp(value, "MessageBody") != 0) {
            snprintf(why, why_len,
                     "Invalid parameter: FilterPolicyScope: MessageAttributes or MessageBody");
            return SL_SNS_E_INVALID_PARAMETER;
        }
        s->flags = strcmp(value, "MessageBody") == 0 ? s->flags | SL_SNS_SUB_BODY_SCOPE
                                                     : s->flags & ~(uint32_t)SL_SNS_SUB_BODY_SCOPE;
        return SL_SNS_OK;
    }
    if (strcmp(name, "FilterPolicy") == 0) {
        if (strlen(value) > SL_SNS_FILTER_MAX) {
            snprintf(why, why_len, "Invalid parameter: FilterPolicy: at most %u bytes here",
                     SL_SNS_FILTER_MAX);
            return SL_SNS_E_INVALID_PARAMETER;
        }
        snprintf(s->filter, sizeof(s->filter), "%s", value);
        return SL_SNS_OK;
    }
    if (strcmp(name, "RedrivePolicy") == 0) {
        s->redrive[0] = '\0';
        if (value[0] == '\0') {
            return SL_SNS_OK;
        }
        json_t *j = json_loads(value, 0, NULL);
        const char *arn = json_string_value(json_object_get(j, "deadLetterTargetArn"));
        const char *q =
            arn != NULL && strncmp(arn, SNS_SQS_ARN_PREFIX, 12) == 0 ? strrchr(arn, ':') : NULL;
        struct sl_stream *st = q != NULL && strlen(q + 1) <= SL_SNS_TOPIC_MAX
                                   ? sl_catalog_find(c->e->catalog, q + 1)
                                   : NULL;
        bool ok = st != NULL && sl_catalog_prop(st, "sqs.CreatedTimestamp") != NULL;
        if (ok) {
            snprintf(s->redrive, sizeof(s->redrive), "%s", q + 1);
        }
        json_decref(j);
        if (!ok) {
            snprintf(why, why_len,
                     "Invalid parameter: RedrivePolicy: {\"deadLetterTargetArn\": the ARN of an "
                     "existing SQS queue of this broker (arn:aws:sqs:" SNS_REGION ":" SNS_ACCOUNT
                     ":NAME)}");
            return SL_SNS_E_INVALID_PARAMETER;
        }
        return SL_SNS_OK;
    }
    if (strcmp(name, "DeliveryPolicy") == 0 || strcmp(name, "SubscriptionRoleArn") == 0) {
        return SL_SNS_OK; /* accepted, not applied: the push target's retry policy holds */
    }
    snprintf(why, why_len,
             "Invalid parameter: Attributes: unknown attribute %.64s (RawMessageDelivery, "
             "FilterPolicy, FilterPolicyScope, RedrivePolicy, DeliveryPolicy)",
             name);
    return SL_SNS_E_INVALID_PARAMETER;
}

/* The filter compiles in its scope (the engine's compiler: what it will run). */
static enum sl_sns_error check_filter(const struct sl_sns_sub *s, char *why, size_t why_len)
{
    if (s->filter[0] == '\0') {
        return SL_SNS_OK;
    }
    char fwhy[256];
    struct sl_filter *f = NULL;
    enum sl_filter_scope scope =
        (s->flags & SL_SNS_SUB_BODY_SCOPE) != 0 ? SL_FILTER_SCOPE_BODY : SL_FILTER_SCOPE_ATTRIBUTES;
    int rc = sl_filter_parse(s->filter, strlen(s->filter), scope, &f, fwhy, sizeof(fwhy));
    sl_filter_free(f);
    if (rc != SL_OK) {
        snprintf(why, why_len, "Invalid parameter: FilterPolicy: %s", fwhy);
        return SL_SNS_E_INVALID_PARAMETER;
    }
    return SL_SNS_OK;
}

/* ---- Subscribe -------------------------------------------------------------------- */

static void reply_sub_arn(struct sns_call *c, const struct sl_sns_sub *s, bool pending_text)
{
    char arn[SNS_ARN_MAX];
    if (pending_text) {
        snprintf(arn, sizeof(arn), "pending confirmation");
    } else {
        sns_sub_arn(arn, sizeof(arn), s);
    }
    struct sl_query_xml x = {0};
    sl_sns_xml_begin(&x, c->req->op, true);
    sl_query_xml_leaf(&x, "SubscriptionArn", arn);
    sns_reply(c, &x, true);
}

int sns_save(struct sl_sns *sns, char *why, size_t why_len)
{
    int rc = sl_sns_store_save(sns->store, why, why_len);
    if (rc != SL_OK) {
        sl_error("sns", "%s", why);
    }
    return rc;
}

/* The group exists: the target, then the record (Subscribe) or the
 * confirmed state (ConfirmSubscription). */
static void on_sub_group(void *ctx, int err, const char *gwhy)
{
    struct sns_call *c = ctx;
    char why[SL_SNS_WHY_MAX];
    if (err != SL_OK) {
        sns_fail_engine(c, err == SL_ENOTFOUND ? SL_EIO : err, gwhy);
        return;
    }
    struct sl_push_target t;
    sns_target_of(&c->sub, &t);
    int rc = sl_push_set(c->push, &t, why, sizeof(why));
    struct sl_sns_sub *s = sl_sns_store_find(c->sns->store, c->sub.id);
    if (rc == SL_OK && s == NULL) {
        rc = sl_sns_store_add(c->sns->store, &c->sub, &s);
        snprintf(why, sizeof(why), "%s", rc == SL_ELIMIT ? "too many subscriptions" : "");
    }
    if (rc == SL_OK) {
        s->flags |= SL_SNS_SUB_CONFIRMED;
        rc = sns_save(c->sns, why, sizeof(why));
    }
    if (rc != SL_OK) {
        char w2[SL_SNS_WHY_MAX];
        sl_push_remove(c->push, c->sub.topic, c->sub.id, w2, sizeof(w2));
        if (s != NULL) {
            s->flags |= SL_SNS_SUB_DELETED; /* the janitor deletes the group */
            sns_save(c->sns, w2, sizeof(w2));
        }
        sns_fail_engine(c, rc, why);
        return;
    }
    sl_info("sns", "subscription %s:%s (%s %s) confirmed", c->sub.topic, c->sub.id, c->sub.protocol,
            c->sub.endpoint);
    reply_sub_arn(c, &c->sub, false);
}

/* An SQS endpoint (queue ARN or URL) -> the queue's name; false if none. */
static bool sqs_endpoint(struct sns_call *c, const char *ep, char *out, size_t cap)
{
    const char *name = NULL;
    if (strncmp(ep, SNS_SQS_ARN_PREFIX, 12) == 0) {
        name = strrchr(ep, ':') + 1;
    } else if (strncmp(ep, "http://", 7) == 0 || strncmp(ep, "https://", 8) == 0) {
        name = strrchr(ep, '/') + 1;
    }
    struct sl_stream *st = name != NULL && strlen(name) < cap && name[0] != '\0'
                               ? sl_catalog_find(c->e->catalog, name)
                               : NULL;
    if (st == NULL || sl_catalog_prop(st, "sqs.CreatedTimestamp") == NULL) {
        return false;
    }
    snprintf(out, cap, "%s", name);
    return true;
}

/* The SubscriptionConfirmation message, POSTed to the endpoint. */
static int send_confirmation(struct sns_call *c, const struct sl_sns_sub *s)
{
    char arn[SNS_ARN_MAX], ts[SL_ISOTIME_FORMAT_MAX], url[SNS_HOST_MAX + 512], msg_id[40];
    sns_topic_arn(arn, sizeof(arn), s->topic);
    sl_time_format_iso8601(sl_clock_wall_ms(), true, ts);
    /* The ARN's colons are %3A-escaped: the URL is a query string. */
    snprintf(url, sizeof(url),
             "%s://%s/?Action=ConfirmSubscription&TopicArn=arn%%3Aaws%%3Asns%%3A" SNS_REGION
             "%%3A" SNS_ACCOUNT "%%3A%s&Token=%s",
             c->https ? "https" : "http", c->host, s->topic, s->token);
    if (!new_id(msg_id)) {
        return SL_ESYS;
    }
    char text[512];
    snprintf(text, sizeof(text),
             "You have chosen to subscribe to the topic %s.\nTo confirm the subscription, "
             "visit the SubscribeURL included in this message.",
             arn);
    json_t *j = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "Type",
                          "SubscriptionConfirmation", "MessageId", msg_id, "Token", s->token,
                          "TopicArn", arn, "Message", text, "SubscribeURL", url, "Timestamp", ts,
                          "SignatureVersion", "1", "Signature", "", "SigningCertURL", "");
    char *body = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    char headers[SNS_ARN_MAX + 256];
    snprintf(headers, sizeof(headers),
             "Content-Type: text/plain; charset=UTF-8\n"
             "x-amz-sns-message-type: SubscriptionConfirmation\n"
             "x-amz-sns-message-id: %s\nx-amz-sns-topic-arn: %s\n",
             msg_id, arn);
    int rc = body == NULL
                 ? SL_ENOMEM
                 : sl_push_notify(c->push, s->endpoint, body, headers, false, SNS_HTTP_TIMEOUT_MS);
    free(body);
    return rc;
}

/* An existing subscription of the same topic, protocol and endpoint. */
static struct sl_sns_sub *same_sub(const struct sl_sns *sns, const struct sl_sns_sub *n)
{
    for (uint32_t i = 0; i < sns->store->n; i++) {
        struct sl_sns_sub *s = sns->store->subs[i];
        if ((s->flags & SL_SNS_SUB_DELETED) == 0 && strcmp(s->topic, n->topic) == 0 &&
            strcmp(s->protocol, n->protocol) == 0 && strcmp(s->endpoint, n->endpoint) == 0) {
            return s;
        }
    }
    return NULL;
}

/* Protocol and Endpoint into c->sub; false when answered. */
static bool sub_endpoint(struct sns_call *c)
{
    const struct sl_sns_req *r = c->req;
    const char *p = r->protocol != NULL ? r->protocol : "";
    if (strcmp(p, "sqs") != 0 && strcmp(p, "http") != 0 && strcmp(p, "https") != 0) {
        sns_fail(c, SL_SNS_E_INVALID_PARAMETER,
                 "Invalid parameter: Protocol: %.32s is not served here (sqs, http, https)", p);
        return false;
    }
    snprintf(c->sub.protocol, sizeof(c->sub.protocol), "%s", p);
    const char *ep = r->endpoint != NULL ? r->endpoint : "";
    if (strcmp(p, "sqs") == 0 && !sqs_endpoint(c, ep, c->sub.endpoint, SL_SNS_TOPIC_MAX + 1)) {
        sns_fail(c, SL_SNS_E_INVALID_PARAMETER,
                 "Invalid parameter: Endpoint: %.160s is not an SQS queue of this broker (give "
                 "its QueueArn or QueueUrl; create the queue first)",
                 ep);
        return false;
    }
    size_t pl = strlen(p);
    if (strcmp(p, "sqs") != 0 &&
        (strncmp(ep, p, pl) != 0 || strncmp(ep + pl, "://", 3) != 0 || strlen(ep + pl) <= 3 ||
         strlen(ep) > SL_SNS_ENDPOINT_MAX || strpbrk(ep, " \r\n") != NULL)) {
        sns_fail(c, SL_SNS_E_INVALID_PARAMETER,
                 "Invalid parameter: Endpoint: must be a URL beginning with %s:// (at most %u "
                 "bytes)",
                 p, SL_SNS_ENDPOINT_MAX);
        return false;
    }
    if (strcmp(p, "sqs") != 0) {
        snprintf(c->sub.endpoint, sizeof(c->sub.endpoint), "%s", ep);
        return true;
    }
    return sns_allowed(c, SL_ACL_PRODUCE, c->sub.endpoint); /* deliveries are written there */
}

void sns_subscribe(struct sns_call *c)
{
    if (sns_resolve_topic(c, SL_ACL_QUEUE) == NULL || !sub_endpoint(c)) {
        return;
    }
    struct sl_sns_sub *s = &c->sub;
    snprintf(s->topic, sizeof(s->topic), "%s", c->topic);
    char why[SL_SNS_WHY_MAX];
    for (uint32_t i = 0; i < c->req->n_attrs; i++) {
        enum sl_sns_error e =
            apply_attr(c, s, c->req->attrs[i].name, c->req->attrs[i].value, why, sizeof(why));
        if (e != SL_SNS_OK) {
            sns_fail(c, e, "%s", why);
            return;
        }
    }
    if (check_filter(s, why, sizeof(why)) != SL_SNS_OK) {
        sns_fail(c, SL_SNS_E_INVALID_PARAMETER, "%s", why);
        return;
    }
    if (s->redrive[0] != '\0' && !sns_allowed(c, SL_ACL_PRODUCE, s->redrive)) {
        return; /* dead letters are written there */
    }
    if (c->push == NULL) {
        sns_fail(c, SL_SNS_E_INVALID_PARAMETER,
                 "Invalid parameter: push targets are off on this broker (push = false): "
                 "subscriptions cannot deliver; turn them on");
        return;
    }
    bool want_arn = c->req->return_sub_arn != NULL && strcmp(c->req->return_sub_arn, "true") == 0;
    const struct sl_sns_sub *old = same_sub(c->sns, s);
    const uint32_t kept = SL_SNS_SUB_RAW | SL_SNS_SUB_BODY_SCOPE;
    if (old != NULL &&
        (strcmp(old->filter, s->filter) != 0 || strcmp(old->redrive, s->redrive) != 0 ||
         (old->flags & kept) != (s->flags & kept))) {
        sns_fail(c, SL_SNS_E_INVALID_PARAMETER,
                 "Invalid parameter: Attributes Reason: Subscription already exists with "
                 "different attributes (change them with SetSubscriptionAttributes)");
        return;
    }
    if (old != NULL) { /* idempotent, as SNS */
        reply_sub_arn(c, old, (old->flags & SL_SNS_SUB_CONFIRMED) == 0 && !want_arn);
        return;
    }
    if (!new_id(s->id) || !random_hex(s->token, 32)) {
        sns_fail(c, SL_SNS_E_INTERNAL, "getrandom failed: no id or token");
        return;
    }
    s->created_ms = sl_clock_wall_ms();
    if (strcmp(s->protocol, "sqs") != 0) {
        int rc = sl_sns_store_add(c->sns->store, s, NULL);
        if (rc == SL_OK) {
            rc = sns_save(c->sns, why, sizeof(why));
        }
        if (rc == SL_OK) {
            rc = send_confirmation(c, s);
            snprintf(why, sizeof(why), "the confirmation message could not be queued: %s",
                     sl_strerror(rc));
        }
        if (rc != SL_OK) {
            struct sl_sns_sub *added = sl_sns_store_find(c->sns->store, s->id);
            if (added != NULL) {
                sl_sns_store_remove(c->sns->store, added);
                sns_save(c->sns, why, sizeof(why));
            }
            sns_fail_engine(c, rc, why);
            return;
        }
        reply_sub_arn(c, s, !want_arn);
        return;
    }
    struct sl_qgroup_config g;
    sns_group_config(s, &g);
    sl_queue_create_group(c->e, s->topic, s->id, &g, on_sub_group, c);
}

void sns_confirm(struct sns_call *c)
{
    const char *token = c->req->token;
    if (token == NULL || token[0] == '\0') {
        sns_fail(c, SL_SNS_E_INVALID_PARAMETER,
                 "Invalid parameter: Token is required (the Token of the "
                 "SubscriptionConfirmation message)");
        return;
    }
    if (sns_resolve_topic(c, SL_ACL_QUEUE) == NULL) {
        return;
    }
    struct sl_sns_sub *s = NULL;
    for (uint32_t i = 0; i < c->sns->store->n && s == NULL; i++) {
        struct sl_sns_sub *x = c->sns->store->subs[i];
        s = (x->flags & SL_SNS_SUB_DELETED) == 0 && strcmp(x->topic, c->topic) == 0 &&
                    strcmp(x->token, token) == 0
                ? x
                : NULL;
    }
    if (s == NULL) {
        sns_fail(c, SL_SNS_E_INVALID_PARAMETER,
                 "Invalid token: no subscription of this topic has it (expired after 3 days, "
                 "or unsubscribed): subscribe again");
        return;
    }
    if ((s->flags & SL_SNS_SUB_CONFIRMED) != 0) {
        reply_sub_arn(c, s, false);
        return;
    }
    if (c->push == NULL) {
        sns_fail(c, SL_SNS_E_INVALID_PARAMETER,
                 "Invalid parameter: push targets are off on this broker (push = false): the "
                 "subscription could not deliver; turn them on");
        return;
    }
    c->sub = *s;
    struct sl_qgroup_config g;
    sns_group_config(&c->sub, &g);
    sl_queue_create_group(c->e, c->sub.topic, c->sub.id, &g, on_sub_group, c);
}

/* ---- Unsubscribe, listings, attributes ------------------------------------------------ */

/* The request's SubscriptionArn -> its record; NULL when answered. */
static struct sl_sns_sub *resolve_sub(struct sns_call *c, uint32_t ops)
{
    const char *arn = c->req->subscription_arn;
    if (arn == NULL || arn[0] == '\0') {
        sns_fail(c, SL_SNS_E_INVALID_PARAMETER,
                 "Invalid parameter: SubscriptionArn is required (what Subscribe answered)");
        return NULL;
    }
    const char *id = strrchr(arn, ':');
    size_t tl = id != NULL ? (size_t)(id - arn) : 0;
    const size_t pl = sizeof(SNS_ARN_PREFIX) - 1;
    if (id == NULL || strncmp(arn, "arn:aws:sns:", 12) != 0 || tl < pl ||
        tl - pl > SL_SNS_TOPIC_MAX) {
        sns_fail(c, SL_SNS_E_INVALID_PARAMETER,
                 "Invalid parameter: SubscriptionArn %.160s is not a subscription ARN "
                 "(" SNS_ARN_PREFIX "TOPIC:ID)",
                 arn);
        return NULL;
    }
    snprintf(c->topic, sizeof(c->topic), "%.*s", (int)(tl - pl), arn + pl);
    if (!sns_allowed(c, ops, c->topic)) {
        return NULL;
    }
    struct sl_sns_sub *s = sl_sns_store_find(c->sns->store, id + 1);
    if (s == NULL || strcmp(s->topic, c->topic) != 0) {
        sns_fail(c, SL_SNS_E_NOT_FOUND, "Subscription does not exist");
        return NULL;
    }
    return s;
}

/* Stops delivery now; the janitor deletes the group. */
static void drop_target(struct sns_call *c, const struct sl_sns_sub *s)
{
    char why[SL_SNS_WHY_MAX];
    if (c->push != NULL && (s->flags & SL_SNS_SUB_CONFIRMED) != 0) {
        int rc = sl_push_remove(c->push, s->topic, s->id, why, sizeof(why));
        if (rc != SL_OK && rc != SL_ENOTFOUND) {
            sl_warn("sns", "%s:%s: removing its push target: %s", s->topic, s->id, why);
        }
    }
}

void sns_unsubscribe(struct sns_call *c)
{
    struct sl_sns_sub *s = resolve_sub(c, SL_ACL_QUEUE);
    if (s == NULL) {
        return;
    }
    drop_target(c, s);
    if ((s->flags & SL_SNS_SUB_CONFIRMED) != 0) {
        s->flags |= SL_SNS_SUB_DELETED;
    } else {
        sl_sns_store_remove(c->sns->store, s); /* no group yet */
    }
    char why[SL_SNS_WHY_MAX];
    int rc = sns_save(c->sns, why, sizeof(why));
    if (rc != SL_OK) {
        sns_fail_engine(c, rc, why);
        return;
    }
    sns_reply_empty(c);
}

static void endpoint_text(const struct sl_sns_sub *s, char *out, size_t cap)
{
    if (strcmp(s->protocol, "sqs") == 0) {
        snprintf(out, cap, "arn:aws:sqs:" SNS_REGION ":" SNS_ACCOUNT ":%s", s->endpoint);
    } else {
        snprintf(out, cap, "%s", s->endpoint);
    }
}

void sns_list_subscriptions(struct sns_call *c, bool by_topic)
{
    if (by_topic && sns_resolve_topic(c, SL_ACL_ANY) == NULL) {
        return;
    }
    c->call->acl_checked = true;
    const struct sl_sns_store *st = c->sns->store;
    uint32_t i = 0;
    const char *tok = c->req->next_token;
    if (tok != NULL && tok[0] != '\0') {
        while (i < st->n && strcmp(st->subs[i]->id, tok) != 0) {
            i++;
        }
        if (i == st->n) {
            sns_fail(c, SL_SNS_E_INVALID_PARAMETER,
                     "Invalid parameter: NextToken: not one this broker answered (or its "
                     "subscription is gone); list from the start");
            return;
        }
    }
    struct sl_query_xml x = {0};
    sl_sns_xml_begin(&x, c->req->op, true);
    sl_query_xml_open(&x, "Subscriptions");
    uint32_t n = 0;
    for (; i < st->n; i++) {
        const struct sl_sns_sub *s = st->subs[i];
        if ((s->flags & SL_SNS_SUB_DELETED) != 0 || (by_topic && strcmp(s->topic, c->topic) != 0) ||
            (!by_topic && !sl_access_visible(c->call, s->topic))) {
            continue;
        }
        if (n == SNS_LIST_PAGE) {
            break;
        }
        char arn[SNS_ARN_MAX], ep[SL_SNS_ENDPOINT_MAX + 64];
        sl_query_xml_open(&x, "member");
        if ((s->flags & SL_SNS_SUB_CONFIRMED) != 0) {
            sns_sub_arn(arn, sizeof(arn), s);
            sl_query_xml_leaf(&x, "SubscriptionArn", arn);
        } else {
            sl_query_xml_leaf(&x, "SubscriptionArn", "PendingConfirmation");
        }
        sl_query_xml_leaf(&x, "Owner", SNS_ACCOUNT);
        sl_query_xml_leaf(&x, "Protocol", s->protocol);
        endpoint_text(s, ep, sizeof(ep));
        sl_query_xml_leaf(&x, "Endpoint", ep);
        sns_topic_arn(arn, sizeof(arn), s->topic);
        sl_query_xml_leaf(&x, "TopicArn", arn);
        sl_query_xml_close(&x, "member");
        n++;
    }
    sl_query_xml_close(&x, "Subscriptions");
    if (i < st->n) {
        sl_query_xml_leaf(&x, "NextToken", st->subs[i]->id);
    }
    sns_reply(c, &x, true);
}

static void entry(struct sl_query_xml *x, const char *key, const char *value)
{
    sl_query_xml_open(x, "entry");
    sl_query_xml_leaf(x, "key", key);
    sl_query_xml_leaf(x, "value", value);
    sl_query_xml_close(x, "entry");
}

void sns_get_sub_attributes(struct sns_call *c)
{
    struct sl_sns_sub *s = resolve_sub(c, SL_ACL_ANY);
    if (s == NULL) {
        return;
    }
    char arn[SNS_ARN_MAX], ep[SL_SNS_ENDPOINT_MAX + 64];
    bool confirmed = (s->flags & SL_SNS_SUB_CONFIRMED) != 0;
    struct sl_query_xml x = {0};
    sl_sns_xml_begin(&x, c->req->op, true);
    sl_query_xml_open(&x, "Attributes");
    sns_sub_arn(arn, sizeof(arn), s);
    entry(&x, "SubscriptionArn", arn);
    sns_topic_arn(arn, sizeof(arn), s->topic);
    entry(&x, "TopicArn", arn);
    entry(&x, "Owner", SNS_ACCOUNT);
    entry(&x, "Protocol", s->protocol);
    endpoint_text(s, ep, sizeof(ep));
    entry(&x, "Endpoint", ep);
    entry(&x, "PendingConfirmation", confirmed ? "false" : "true");
    entry(&x, "ConfirmationWasAuthenticated", confirmed ? "true" : "false");
    entry(&x, "RawMessageDelivery", (s->flags & SL_SNS_SUB_RAW) != 0 ? "true" : "false");
    if (s->filter[0] != '\0') {
        entry(&x, "FilterPolicy", s->filter);
        entry(&x, "FilterPolicyScope",
              (s->flags & SL_SNS_SUB_BODY_SCOPE) != 0 ? "MessageBody" : "MessageAttributes");
    }
    if (s->redrive[0] != '\0') {
        char rp[SL_SNS_TOPIC_MAX + 96];
        snprintf(rp, sizeof(rp),
                 "{\"deadLetterTargetArn\":\"arn:aws:sqs:" SNS_REGION ":" SNS_ACCOUNT ":%s\"}",
                 s->redrive);
        entry(&x, "RedrivePolicy", rp);
    }
    sl_query_xml_close(&x, "Attributes");
    sns_reply(c, &x, true);
}

void sns_set_sub_attributes(struct sns_call *c)
{
    const struct sl_sns_req *r = c->req;
    if (r->attribute_name == NULL) {
        sns_fail(c, SL_SNS_E_INVALID_PARAMETER, "Invalid parameter: AttributeName is required");
        return;
    }
    struct sl_sns_sub *s = resolve_sub(c, SL_ACL_QUEUE);
    if (s == NULL) {
        return;
    }
    char why[SL_SNS_WHY_MAX];
    struct sl_sns_sub n = *s;
    const char *value = r->attribute_value != NULL ? r->attribute_value : "";
    enum sl_sns_error e = apply_attr(c, &n, r->attribute_name, value, why, sizeof(why));
    if (e == SL_SNS_OK) {
        e = check_filter(&n, why, sizeof(why));
    }
    if (e != SL_SNS_OK) {
        sns_fail(c, e, "%s", why);
        return;
    }
    if (n.redrive[0] != '\0' && strcmp(n.redrive, s->redrive) != 0 &&
        !sns_allowed(c, SL_ACL_PRODUCE, n.redrive)) {
        return; /* dead letters are written there */
    }
    bool regroup = strcmp(n.filter, s->filter) != 0 || strcmp(n.redrive, s->redrive) != 0 ||
                   ((n.flags ^ s->flags) & SL_SNS_SUB_BODY_SCOPE) != 0;
    bool reformat = ((n.flags ^ s->flags) & SL_SNS_SUB_RAW) != 0;
    bool live = (s->flags & SL_SNS_SUB_CONFIRMED) != 0 && (s->flags & SL_SNS_SUB_REGROUP) == 0;
    int rc = SL_OK;
    if (live && regroup) {
        drop_target(c, s);
        n.flags |= SL_SNS_SUB_REGROUP; /* the janitor makes the group again */
    } else if (live && reformat && c->push != NULL) {
        struct sl_push_target t;
        sns_target_of(&n, &t);
        rc = sl_push_set(c->push, &t, why, sizeof(why));
    }
    if (rc == SL_OK) {
        *s = n;
        rc = sns_save(c->sns, why, sizeof(why));
    }
    if (rc != SL_OK) {
        sns_fail_engine(c, rc, why);
        return;
    }
    sns_reply_empty(c);
}

void sns_sub_counts(const struct sl_sns *s, const char *topic, uint32_t *confirmed,
                    uint32_t *pending)
{
    *confirmed = *pending = 0;
    for (uint32_t i = 0; i < s->store->n; i++) {
        const struct sl_sns_sub *x = s->store->subs[i];
        if ((x->flags & SL_SNS_SUB_DELETED) == 0 && strcmp(x->topic, topic) == 0) {
            *((x->flags & SL_SNS_SUB_CONFIRMED) != 0 ? confirmed : pending) += 1;
        }
    }
}

int sns_subs_drop_topic(struct sns_call *c, const char *topic, char *why, size_t why_len)
{
    struct sl_sns_store *st = c->sns->store;
    uint32_t before = st->n;
    for (uint32_t i = st->n; i-- > 0;) {
        struct sl_sns_sub *s = st->subs[i];
        if (strcmp(s->topic, topic) == 0) {
            drop_target(c, s);
            sl_sns_store_remove(st, s); /* the groups go with the stream */
        }
    }
    return st->n == before ? SL_OK : sns_save(c->sns, why, why_len);
}
