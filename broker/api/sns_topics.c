/* sns_topics.c - SNS topics: CreateTopic, ListTopics, DeleteTopic,
 * Get/SetTopicAttributes (mapping in sns.h).
 *
 * A topic is a stream with the property sns.CreatedTimestamp; a stream made
 * with `sluice topic create` becomes an SNS topic on CreateTopic of its name
 * (an SQS queue's stream does not). Settable attributes are kept as stream
 * properties sns.<Name> (durable in stream.meta); they are stored and
 * answered, and only DisplayName means anything here (it is not used in
 * deliveries either: SNS uses it for SMS and e-mail only).
 *
 * Threading: the main loop.
 */
#include "broker/api/access.h"
#include "broker/api/sns_call.h"
#include "broker/engine/catalog.h"
#include "broker/engine/engine.h"
#include "broker/engine/streams.h"
#include "broker/push/push.h"
#include "common/assert.h"
#include "common/clock.h"
#include "common/error.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SNS_TOPIC_SHARDS 2u   /* unordered fan-out: as SQS standard queues */
#define SNS_LIST_PAGE    100u /* ListTopics answers at most 100 (SNS) */

static const char *const settable[] = {
    "DisplayName",      "Policy",        "DeliveryPolicy", "KmsMasterKeyId",
    "SignatureVersion", "TracingConfig", "ArchivePolicy",  "DataProtectionPolicy"};
#define SETTABLE (sizeof(settable) / sizeof(settable[0]))

static bool attr_settable(const char *name)
{
    for (uint32_t i = 0; i < SETTABLE; i++) {
        if (strcmp(settable[i], name) == 0) {
            return true;
        }
    }
    return false;
}

/* Checks a topic attribute; answers InvalidParameter and returns false. */
static bool check_attr(struct sns_call *c, const char *name, const char *value)
{
    if ((strcmp(name, "FifoTopic") == 0 || strcmp(name, "ContentBasedDeduplication") == 0) &&
        strcmp(value, "true") == 0) {
        sns_fail(c, SL_SNS_E_INVALID_PARAMETER,
                 "Invalid parameter: Attributes: FIFO topics are not served by this broker; "
                 "create a standard topic (no FifoTopic attribute, a name without .fifo)");
        return false;
    }
    if (strcmp(name, "FifoTopic") == 0 || strcmp(name, "ContentBasedDeduplication") == 0) {
        return true; /* "false": what a standard topic is anyway */
    }
    if (!attr_settable(name)) {
        sns_fail(c, SL_SNS_E_INVALID_PARAMETER,
                 "Invalid parameter: Attributes Reason: Unknown attribute %.64s (settable: "
                 "DisplayName, Policy, DeliveryPolicy, KmsMasterKeyId, SignatureVersion, "
                 "TracingConfig, ArchivePolicy, DataProtectionPolicy)",
                 name);
        return false;
    }
    if (strlen(value) >= SL_STREAM_PROP_VALUE_MAX) {
        sns_fail(c, SL_SNS_E_INVALID_PARAMETER, "Invalid parameter: %s: at most %u bytes here",
                 name, SL_STREAM_PROP_VALUE_MAX - 1);
        return false;
    }
    return true;
}

/* Stores attributes as sns.<Name> properties (plus `extra`). */
static int store_attrs(struct sns_call *c, struct sl_stream *st, const struct sl_sns_kv *kv,
                       uint32_t n, const struct sl_sns_kv *extra, uint32_t n_extra, char *why,
                       size_t why_len)
{
    char keys[SL_SNS_ATTRS_MAX + 2][SL_STREAM_PROP_KEY_MAX];
    const char *kp[SL_SNS_ATTRS_MAX + 2], *vp[SL_SNS_ATTRS_MAX + 2];
    uint32_t k = 0;
    SL_ASSERT(n <= SL_SNS_ATTRS_MAX && n_extra <= 2);
    for (uint32_t i = 0; i < n + n_extra; i++) {
        const struct sl_sns_kv *a = i < n ? &kv[i] : &extra[i - n];
        if (strcmp(a->name, "FifoTopic") == 0 ||
            strcmp(a->name, "ContentBasedDeduplication") == 0) {
            continue;
        }
        snprintf(keys[k], sizeof(keys[k]), SNS_PROP_PREFIX "%s", a->name);
        kp[k] = keys[k];
        vp[k] = a->value;
        k++;
    }
    return k == 0 ? SL_OK : sl_catalog_set_props(c->e->catalog, st, kp, vp, k, why, why_len);
}

static void reply_arn(struct sns_call *c)
{
    char arn[SNS_ARN_MAX];
    sns_topic_arn(arn, sizeof(arn), c->topic);
    struct sl_query_xml x = {0};
    sl_sns_xml_begin(&x, c->req->op, true);
    sl_query_xml_leaf(&x, "TopicArn", arn);
    sns_reply(c, &x, true);
}

void sns_create_topic(struct sns_call *c)
{
    const struct sl_sns_req *r = c->req;
    if (r->name == NULL) {
        sns_fail(c, SL_SNS_E_INVALID_PARAMETER, "Invalid parameter: Name is required");
        return;
    }
    size_t n = strlen(r->name);
    if (n > 5 && strcmp(r->name + n - 5, ".fifo") == 0) {
        sns_fail(c, SL_SNS_E_INVALID_PARAMETER,
                 "Invalid parameter: Name: FIFO topics (*.fifo) are not served by this broker; "
                 "use a standard topic");
        return;
    }
    if (!sns_topic_name_ok(r->name)) {
        sns_fail(c, SL_SNS_E_INVALID_PARAMETER,
                 "Invalid parameter: Topic Name: 1 to %u of A-Z, a-z, 0-9, hyphens and "
                 "underscores",
                 SL_SNS_TOPIC_MAX);
        return;
    }
    for (uint32_t i = 0; i < r->n_attrs; i++) {
        if (!check_attr(c, r->attrs[i].name, r->attrs[i].value)) {
            return;
        }
    }
    if (!sns_allowed(c, SL_ACL_ADMIN, r->name)) {
        return;
    }
    snprintf(c->topic, sizeof(c->topic), "%s", r->name);
    char why[SL_SNS_WHY_MAX];
    struct sl_stream *st = sl_catalog_find(c->e->catalog, c->topic);
    if (st != NULL && sns_is_topic(st)) {
        for (uint32_t i = 0; i < r->n_attrs; i++) { /* idempotent: the same attributes */
            char key[SL_STREAM_PROP_KEY_MAX];
            snprintf(key, sizeof(key), SNS_PROP_PREFIX "%s", r->attrs[i].name);
            const char *now = sl_catalog_prop(st, key);
            if (attr_settable(r->attrs[i].name) &&
                strcmp(now != NULL ? now : "", r->attrs[i].value) != 0) {
                sns_fail(c, SL_SNS_E_INVALID_PARAMETER,
                         "Invalid parameter: Attributes Reason: Topic already exists with "
                         "different attributes (%.64s)",
                         r->attrs[i].name);
                return;
            }
        }
        reply_arn(c);
        return;
    }
    if (st != NULL && sl_catalog_prop(st, "sqs.CreatedTimestamp") != NULL) {
        sns_fail(c, SL_SNS_E_INVALID_PARAMETER,
                 "Invalid parameter: Name: %s is an SQS queue here; name the topic otherwise",
                 c->topic);
        return;
    }
    bool made = false;
    int rc = SL_OK;
    if (st == NULL) {
        struct sl_stream_spec spec = {.name = c->topic, .shard_count = SNS_TOPIC_SHARDS};
        rc = sl_streams_create(c->e, &spec, &st, why, sizeof(why));
        made = rc == SL_OK;
    }
    char created[24];
    snprintf(created, sizeof(created), "%" PRIu64, sl_clock_wall_ms() / 1000u);
    struct sl_sns_kv extra = {"CreatedTimestamp", created};
    if (rc == SL_OK) {
        rc = store_attrs(c, st, r->attrs, r->n_attrs, &extra, 1, why, sizeof(why));
        if (rc != SL_OK && made) {
            char w2[SL_SNS_WHY_MAX];
            sl_streams_delete(c->e, c->topic, w2, sizeof(w2)); /* no half-made topic */
        }
    }
    if (rc != SL_OK) {
        sns_fail_engine(c, rc == SL_ENOTFOUND ? SL_EIO : rc, why);
        return;
    }
    reply_arn(c);
}

void sns_list_topics(struct sns_call *c)
{
    c->call->acl_checked = true; /* any principal: only what it has a right on */
    const char *after = c->req->next_token;
    struct sl_stream *st = sl_catalog_first(c->e->catalog);
    if (after != NULL && after[0] != '\0') {
        struct sl_stream *from = sl_catalog_find(c->e->catalog, after);
        if (from == NULL) {
            sns_fail(c, SL_SNS_E_INVALID_PARAMETER,
                     "Invalid parameter: NextToken: not one this broker answered (or its topic "
                     "was deleted since); list from the start");
            return;
        }
        st = from; /* the token names the first topic of the next page */
    }
    struct sl_query_xml x = {0};
    sl_sns_xml_begin(&x, c->req->op, true);
    sl_query_xml_open(&x, "Topics");
    uint32_t n = 0;
    for (; st != NULL; st = st->next) {
        if (!sns_is_topic(st) || !sl_access_visible(c->call, st->name)) {
            continue;
        }
        if (n == SNS_LIST_PAGE) {
            break;
        }
        char arn[SNS_ARN_MAX];
        sns_topic_arn(arn, sizeof(arn), st->name);
        sl_query_xml_open(&x, "member");
        sl_query_xml_leaf(&x, "TopicArn", arn);
        sl_query_xml_close(&x, "member");
        n++;
    }
    sl_query_xml_close(&x, "Topics");
    if (st != NULL) {
        sl_query_xml_leaf(&x, "NextToken", st->name);
    }
    sns_reply(c, &x, true);
}

void sns_delete_topic(struct sns_call *c)
{
    const char *arn = c->req->topic_arn;
    const char *name = arn != NULL ? strrchr(arn, ':') : NULL;
    name = name != NULL ? name + 1 : arn;
    if (name != NULL && sns_topic_name_ok(name) &&
        !sns_is_topic(sl_catalog_find(c->e->catalog, name))) {
        if (sns_allowed(c, SL_ACL_ADMIN, name)) {
            sns_reply_empty(c); /* SNS: deleting a topic that is not there succeeds */
        }
        return;
    }
    if (sns_resolve_topic(c, SL_ACL_ADMIN) == NULL) {
        return;
    }
    char why[SL_SNS_WHY_MAX];
    int rc = sns_subs_drop_topic(c, c->topic, why, sizeof(why));
    if (rc == SL_OK) {
        rc = sl_streams_delete(c->e, c->topic, why, sizeof(why));
    }
    if (rc != SL_OK) {
        sns_fail_engine(c, rc, why);
        return;
    }
    sns_reply_empty(c);
}

static void entry(struct sl_query_xml *x, const char *key, const char *value)
{
    sl_query_xml_open(x, "entry");
    sl_query_xml_leaf(x, "key", key);
    sl_query_xml_leaf(x, "value", value);
    sl_query_xml_close(x, "entry");
}

void sns_get_topic_attributes(struct sns_call *c)
{
    struct sl_stream *st = sns_resolve_topic(c, SL_ACL_ANY);
    if (st == NULL) {
        return;
    }
    char arn[SNS_ARN_MAX], num[16];
    sns_topic_arn(arn, sizeof(arn), c->topic);
    struct sl_query_xml x = {0};
    sl_sns_xml_begin(&x, c->req->op, true);
    sl_query_xml_open(&x, "Attributes");
    entry(&x, "TopicArn", arn);
    entry(&x, "Owner", SNS_ACCOUNT);
    uint32_t confirmed = 0, pending = 0;
    sns_sub_counts(c->sns, c->topic, &confirmed, &pending);
    snprintf(num, sizeof(num), "%u", confirmed);
    entry(&x, "SubscriptionsConfirmed", num);
    snprintf(num, sizeof(num), "%u", pending);
    entry(&x, "SubscriptionsPending", num);
    entry(&x, "SubscriptionsDeleted", "0");
    entry(&x, "FifoTopic", "false");
    bool display = false;
    for (uint32_t i = 0; i < SETTABLE; i++) {
        char key[SL_STREAM_PROP_KEY_MAX];
        snprintf(key, sizeof(key), SNS_PROP_PREFIX "%s", settable[i]);
        const char *v = sl_catalog_prop(st, key);
        display = display || (v != NULL && strcmp(settable[i], "DisplayName") == 0);
        if (v != NULL) {
            entry(&x, settable[i], v);
        }
    }
    if (!display) {
        entry(&x, "DisplayName", "");
    }
    sl_query_xml_close(&x, "Attributes");
    sns_reply(c, &x, true);
}

void sns_set_topic_attributes(struct sns_call *c)
{
    const struct sl_sns_req *r = c->req;
    if (r->attribute_name == NULL) {
        sns_fail(c, SL_SNS_E_INVALID_PARAMETER, "Invalid parameter: AttributeName is required");
        return;
    }
    struct sl_sns_kv kv = {r->attribute_name, r->attribute_value != NULL ? r->attribute_value : ""};
    if (!check_attr(c, kv.name, kv.value)) {
        return;
    }
    struct sl_stream *st = sns_resolve_topic(c, SL_ACL_ADMIN);
    if (st == NULL) {
        return;
    }
    char why[SL_SNS_WHY_MAX];
    int rc = store_attrs(c, st, &kv, 1, NULL, 0, why, sizeof(why));
    if (rc != SL_OK) {
        sns_fail_engine(c, rc == SL_ENOTFOUND ? SL_EIO : rc, why);
        return;
    }
    sns_reply_empty(c);
}
