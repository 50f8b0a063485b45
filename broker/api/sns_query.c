/* sns_query.c - the SNS Query protocol (see sns_req.h): the form decoded
 * into struct sl_sns_req, and the XML answers and errors.
 *
 * The decoded form is one copy of the body ("key\0value\0" pairs, at most
 * twice the body's length) that the request's strings point into. Indexed names
 * land in fixed slots (index - 1) and are compacted afterwards, so the work
 * is linear in the body and nothing is allocated per parameter.
 *
 * Input is untrusted (bounded, nothing asserted on it); output is ours.
 * Threading: none.
 */
#include "broker/api/sns_req.h"

#include "broker/api/sqs_req.h"
#include "broker/api/urlcode.h"
#include "common/assert.h"
#include "common/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SNS_NS "http://sns.amazonaws.com/doc/2010-03-31/"

static const char *const op_names[SL_SNS_OP_COUNT_] = {
    [SL_SNS_UNKNOWN] = "",
    [SL_SNS_CREATE_TOPIC] = "CreateTopic",
    [SL_SNS_LIST_TOPICS] = "ListTopics",
    [SL_SNS_DELETE_TOPIC] = "DeleteTopic",
    [SL_SNS_GET_TOPIC_ATTRIBUTES] = "GetTopicAttributes",
    [SL_SNS_SET_TOPIC_ATTRIBUTES] = "SetTopicAttributes",
    [SL_SNS_SUBSCRIBE] = "Subscribe",
    [SL_SNS_CONFIRM_SUBSCRIPTION] = "ConfirmSubscription",
    [SL_SNS_UNSUBSCRIBE] = "Unsubscribe",
    [SL_SNS_LIST_SUBSCRIPTIONS] = "ListSubscriptions",
    [SL_SNS_LIST_SUBSCRIPTIONS_BY_TOPIC] = "ListSubscriptionsByTopic",
    [SL_SNS_GET_SUBSCRIPTION_ATTRIBUTES] = "GetSubscriptionAttributes",
    [SL_SNS_SET_SUBSCRIPTION_ATTRIBUTES] = "SetSubscriptionAttributes",
    [SL_SNS_PUBLISH] = "Publish",
    [SL_SNS_PUBLISH_BATCH] = "PublishBatch",
};

/* SNS actions this broker does not serve: UnsupportedOperation, not
 * InvalidAction, and the router sends them here rather than to SQS. */
static const char *const unserved[] = {"AddPermission",
                                       "RemovePermission",
                                       "TagResource",
                                       "UntagResource",
                                       "ListTagsForResource",
                                       "CreatePlatformApplication",
                                       "CreatePlatformEndpoint",
                                       "DeleteEndpoint",
                                       "DeletePlatformApplication",
                                       "GetEndpointAttributes",
                                       "GetPlatformApplicationAttributes",
                                       "ListEndpointsByPlatformApplication",
                                       "ListPlatformApplications",
                                       "SetEndpointAttributes",
                                       "SetPlatformApplicationAttributes",
                                       "CheckIfPhoneNumberIsOptedOut",
                                       "ListPhoneNumbersOptedOut",
                                       "OptInPhoneNumber",
                                       "GetSMSAttributes",
                                       "SetSMSAttributes",
                                       "GetSMSSandboxAccountStatus",
                                       "CreateSMSSandboxPhoneNumber",
                                       "DeleteSMSSandboxPhoneNumber",
                                       "ListSMSSandboxPhoneNumbers",
                                       "VerifySMSSandboxPhoneNumber",
                                       "ListOriginationNumbers",
                                       "GetDataProtectionPolicy",
                                       "PutDataProtectionPolicy",
                                       "ConfirmSubscriptionByToken"};

enum sl_sns_op sl_sns_op_parse(const char *name, size_t len)
{
    for (uint32_t i = 1; i < SL_SNS_OP_COUNT_; i++) {
        if (strlen(op_names[i]) == len && memcmp(op_names[i], name, len) == 0) {
            return (enum sl_sns_op)i;
        }
    }
    return SL_SNS_UNKNOWN;
}

const char *sl_sns_op_name(enum sl_sns_op op)
{
    SL_ASSERT(op < SL_SNS_OP_COUNT_);
    return op_names[op];
}

static bool unserved_action(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof(unserved) / sizeof(unserved[0]); i++) {
        if (strlen(unserved[i]) == len && memcmp(unserved[i], name, len) == 0) {
            return true;
        }
    }
    return false;
}

bool sl_sns_action_known(const char *name, size_t len)
{
    return sl_sns_op_parse(name, len) != SL_SNS_UNKNOWN || unserved_action(name, len);
}

/* ---- form decoding ------------------------------------------------------ */

/* "12." -> 12 within 1..SL_SNS_INDEX_MAX (and *rest after the dot or at
 * the end), else 0. */
static uint32_t take_index(const char *s, const char **rest)
{
    size_t n = strspn(s, "0123456789");
    if (n == 0 || n > 2 || (s[n] != '.' && s[n] != '\0')) {
        return 0;
    }
    uint32_t v = (uint32_t)strtoul(s, NULL, 10);
    *rest = s[n] == '.' ? s + n + 1 : s + n;
    return v >= 1 && v <= SL_SNS_INDEX_MAX ? v : 0;
}

static bool prefixed(const char *s, const char *prefix, const char **rest)
{
    size_t n = strlen(prefix);
    if (strncmp(s, prefix, n) != 0) {
        return false;
    }
    *rest = s + n;
    return true;
}

/* The decoder's slots before compaction: one per index. */
struct slots {
    struct sl_sns_kv attrs[SL_SNS_INDEX_MAX];
    struct sl_sns_mattr mattrs[SL_SNS_BATCH_MAX][SL_SNS_INDEX_MAX];
    bool entry_seen[SL_SNS_INDEX_MAX];
    uint32_t max_entry; /* the highest batch index given */
};

/* MessageAttributes.entry.N.<rest> into mattrs[]. */
static void put_mattr(struct sl_sns_mattr *slot, const char *key, const char *value)
{
    const char *rest;
    uint32_t idx = take_index(key, &rest);
    if (idx == 0) {
        return;
    }
    struct sl_sns_mattr *a = &slot[idx - 1];
    if (strcmp(rest, "Name") == 0) {
        a->name = value;
    } else if (strcmp(rest, "Value.DataType") == 0) {
        a->type = value;
    } else if (strcmp(rest, "Value.StringValue") == 0) {
        a->string_value = value;
    } else if (strcmp(rest, "Value.BinaryValue") == 0) {
        a->binary_b64 = value;
    }
}

static void put_entry_field(struct sl_sns_entry *e, struct sl_sns_mattr *mslots, const char *key,
                            const char *value)
{
    const char *rest;
    if (strcmp(key, "Id") == 0) {
        e->id = value;
    } else if (strcmp(key, "Message") == 0) {
        e->message = value;
    } else if (strcmp(key, "Subject") == 0) {
        e->subject = value;
    } else if (strcmp(key, "MessageStructure") == 0) {
        e->structure = value;
    } else if (strcmp(key, "MessageGroupId") == 0) {
        e->group_id = value;
    } else if (strcmp(key, "MessageDeduplicationId") == 0) {
        e->dedup_id = value;
    } else if (prefixed(key, "MessageAttributes.entry.", &rest)) {
        put_mattr(mslots, rest, value);
    }
}

/* One parameter into the request (see sns_req.h). */
static void put_param(struct sl_sns_req *r, struct slots *s, const char *key, const char *value)
{
    static const struct {
        const char *name;
        size_t off;
    } flat[] = {
        {"Name", offsetof(struct sl_sns_req, name)},
        {"TopicArn", offsetof(struct sl_sns_req, topic_arn)},
        {"SubscriptionArn", offsetof(struct sl_sns_req, subscription_arn)},
        {"Protocol", offsetof(struct sl_sns_req, protocol)},
        {"Endpoint", offsetof(struct sl_sns_req, endpoint)},
        {"Token", offsetof(struct sl_sns_req, token)},
        {"NextToken", offsetof(struct sl_sns_req, next_token)},
        {"AttributeName", offsetof(struct sl_sns_req, attribute_name)},
        {"AttributeValue", offsetof(struct sl_sns_req, attribute_value)},
        {"ReturnSubscriptionArn", offsetof(struct sl_sns_req, return_sub_arn)},
    };
    for (size_t i = 0; i < sizeof(flat) / sizeof(flat[0]); i++) {
        if (strcmp(key, flat[i].name) == 0) {
            *(const char **)((char *)r + flat[i].off) = value;
            return;
        }
    }
    const char *rest;
    if (prefixed(key, "Attributes.entry.", &rest)) {
        uint32_t idx = take_index(rest, &rest);
        if (idx != 0 && strcmp(rest, "key") == 0) {
            s->attrs[idx - 1].name = value;
        } else if (idx != 0 && strcmp(rest, "value") == 0) {
            s->attrs[idx - 1].value = value;
        }
    } else if (prefixed(key, "PublishBatchRequestEntries.member.", &rest)) {
        uint32_t idx = take_index(rest, &rest);
        if (idx == 0) {
            return;
        }
        s->max_entry = idx > s->max_entry ? idx : s->max_entry;
        s->entry_seen[idx - 1] = true;
        if (idx <= SL_SNS_BATCH_MAX) {
            put_entry_field(&r->entries[idx - 1], s->mattrs[idx - 1], rest, value);
        }
    } else {
        put_entry_field(&r->entries[0], s->mattrs[0], key, value);
    }
}

/* Slots -> dense lists. Errors: too many attributes (SNS's limits). */
static int compact(struct sl_sns_req *r, struct slots *s, struct sl_sns_fault *f)
{
    for (uint32_t i = 0; i < SL_SNS_INDEX_MAX; i++) {
        if (s->attrs[i].name == NULL) {
            continue;
        }
        if (r->n_attrs == SL_SNS_ATTRS_MAX) {
            f->code = SL_SNS_E_INVALID_PARAMETER;
            snprintf(f->why, sizeof(f->why),
                     "Invalid parameter: Attributes: at most %u attributes per request",
                     SL_SNS_ATTRS_MAX);
            return SL_EPROTO;
        }
        r->attrs[r->n_attrs] = s->attrs[i];
        if (r->attrs[r->n_attrs].value == NULL) {
            r->attrs[r->n_attrs].value = "";
        }
        r->n_attrs++;
    }
    if (r->op == SL_SNS_PUBLISH_BATCH && s->max_entry > SL_SNS_BATCH_MAX) {
        f->code = SL_SNS_E_TOO_MANY_ENTRIES;
        snprintf(f->why, sizeof(f->why),
                 "The batch request contains more entries than permissible (at most %u).",
                 SL_SNS_BATCH_MAX);
        return SL_EPROTO;
    }
    uint32_t n_entries = 0;
    for (uint32_t m = 0; m < SL_SNS_BATCH_MAX; m++) {
        bool seen = r->op == SL_SNS_PUBLISH_BATCH ? s->entry_seen[m] : m == 0;
        if (!seen) {
            continue;
        }
        struct sl_sns_entry *e = &r->entries[n_entries];
        if (n_entries != m) {
            *e = r->entries[m];
        }
        e->n_attrs = 0;
        for (uint32_t i = 0; i < SL_SNS_INDEX_MAX; i++) {
            const struct sl_sns_mattr *a = &s->mattrs[m][i];
            if (a->name == NULL) {
                continue;
            }
            if (e->n_attrs == SL_SNS_MSG_ATTRS_MAX) {
                f->code = SL_SNS_E_INVALID_PARAMETER_VALUE;
                snprintf(f->why, sizeof(f->why),
                         "Number of message attributes [%u+] exceeds the allowed maximum [%u].",
                         SL_SNS_MSG_ATTRS_MAX + 1, SL_SNS_MSG_ATTRS_MAX);
                return SL_EPROTO;
            }
            e->attrs[e->n_attrs++] = *a;
        }
        n_entries++;
    }
    r->n_entries = n_entries;
    return SL_OK;
}

/* Splits the form into "key\0value\0" pairs in r->text and applies them. */
static int parse_pairs(struct sl_sns_req *r, struct slots *s, const char *body, size_t len,
                       char *action, size_t action_cap, struct sl_sns_fault *f)
{
    const char *p = body, *end = body + len;
    char *out = r->text;
    uint32_t params = 0;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *pe = amp != NULL ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(pe - p));
        const char *ke = eq != NULL ? eq : pe;
        if (pe > p) {
            if (++params > SL_SNS_PARAMS_MAX) {
                f->code = SL_SNS_E_INVALID_PARAMETER;
                snprintf(f->why, sizeof(f->why), "more than %u form parameters", SL_SNS_PARAMS_MAX);
                return SL_EPROTO;
            }
            char *key = out;
            bool ok = sl_api_url_decode(p, (size_t)(ke - p), key);
            char *val = key + strlen(key) + 1;
            val[0] = '\0';
            ok = ok && (eq == NULL || sl_api_url_decode(eq + 1, (size_t)(pe - eq - 1), val));
            if (!ok) {
                f->code = SL_SNS_E_MALFORMED;
                snprintf(f->why, sizeof(f->why),
                         "malformed form body: a bad %%-escape or a NUL byte");
                return SL_EPROTO;
            }
            out = val + strlen(val) + 1;
            if (strcmp(key, "Action") == 0) {
                snprintf(action, action_cap, "%s", val);
            } else if (key[0] != '\0' && strcmp(key, "Version") != 0) {
                put_param(r, s, key, val);
            }
        }
        p = pe + 1;
    }
    SL_ASSERT((size_t)(out - r->text) <= 2 * len + 2);
    return SL_OK;
}

int sl_sns_decode_query(const uint8_t *body, size_t len, struct sl_sns_req **out,
                        struct sl_sns_fault *f)
{
    *out = NULL;
    struct sl_sns_req *r = calloc(1, sizeof(*r));
    struct slots *s = calloc(1, sizeof(*s));
    if (r != NULL) {
        /* Decoding only shrinks, but each pair gains up to two NULs (a name
         * without "=" gets an empty value): a pair of L >= 1 bytes takes at
         * most L + 2, so 2 * len + 2 holds them all. */
        r->text = malloc(2 * len + 2);
    }
    if (r == NULL || s == NULL || r->text == NULL) {
        sl_sns_req_free(r);
        free(s);
        return SL_ENOMEM;
    }
    char action[64] = "";
    int rc = parse_pairs(r, s, (const char *)body, len, action, sizeof(action), f);
    if (rc == SL_OK) {
        r->op = sl_sns_op_parse(action, strlen(action));
        if (r->op == SL_SNS_UNKNOWN) {
            f->code = action[0] == '\0'                         ? SL_SNS_E_INVALID_PARAMETER
                      : unserved_action(action, strlen(action)) ? SL_SNS_E_UNSUPPORTED
                                                                : SL_SNS_E_INVALID_ACTION;
            snprintf(f->why, sizeof(f->why),
                     action[0] == '\0' ? "The request must contain the parameter Action.%s"
                     : f->code == SL_SNS_E_UNSUPPORTED
                         ? "The action %.48s is not served by this broker (see its README)."
                         : "The action %.48s is not valid for this endpoint.",
                     action);
            rc = SL_EPROTO;
        }
    }
    if (rc == SL_OK) {
        rc = compact(r, s, f);
    }
    free(s);
    if (rc != SL_OK) {
        sl_sns_req_free(r);
        return rc;
    }
    *out = r;
    return SL_OK;
}

void sl_sns_req_free(struct sl_sns_req *r)
{
    if (r != NULL) {
        free(r->text);
        free(r);
    }
}

/* ---- XML ------------------------------------------------------------------ */

void sl_sns_xml_begin(struct sl_query_xml *x, enum sl_sns_op op, bool result)
{
    sl_query_xml_begin(x, SNS_NS, sl_sns_op_name(op), result);
}

char *sl_sns_xml_end(struct sl_query_xml *x, enum sl_sns_op op, bool result,
                     const char *request_id)
{
    return sl_query_xml_end(x, sl_sns_op_name(op), result, request_id);
}

char *sl_sns_xml_error(const char *code, bool sender, const char *message, const char *request_id)
{
    return sl_query_xml_error(SNS_NS, code, sender, message, false, request_id);
}
