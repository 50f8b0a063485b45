/* eb_rules.c - rules and their targets: PutRule, DeleteRule, DescribeRule,
 * ListRules, EnableRule, DisableRule, PutTargets, RemoveTargets,
 * ListTargetsByRule.
 *
 * A rule lives in the state (eb_int.h); each of its targets is served by a
 * queue group of its own on the bus's stream, named eb.<rule>.<serial>,
 * filtered by the rule's pattern (body scope: the record is the event
 * envelope), with one push target (format eventbridge, one event per
 * delivery). One group per (rule, target) because a group has one push
 * target, and AWS delivers to each target independently: its own retries,
 * dead letters and pace. A change of pattern, a disable or a replaced target
 * retires the group (eb_sync_retire: push target removed at once, group
 * deleted by the reconciler); an enable or a new target gets a new group
 * starting at that moment, so a disabled rule's events are never delivered
 * later (EventBridge's behaviour) and nothing put after the answer is missed.
 *
 * Targets (Arn):
 *   http://... or https://...          POSTed the event (an API destination's
 *                                      endpoint, named directly)
 *   arn:aws:sqs:<r>:<a>:QUEUE          appended to the queue (stream QUEUE)
 *   arn:aws:kinesis:<r>:<a>:stream/S   appended to the stream S
 *   arn:aws:sns:<r>:<a>:TOPIC          appended to the topic's stream TOPIC
 *   arn:aws:events:<r>:<a>:event-bus/B appended to bus B (stream eb.B)
 * the destination stream must exist. RetryPolicy.MaximumRetryAttempts (0-185,
 * default 185) + 1 = the group's max_deliveries; then the event goes to
 * DeadLetterConfig.Arn's queue, or to the group's default dead-letter stream
 * (AWS drops it when no dead-letter queue is set; we keep it).
 *
 * Threading: the main loop.
 */
#include "broker/api/eb_int.h"

#include "broker/engine/catalog.h"
#include "broker/engine/engine.h"
#include "broker/engine/filter.h"
#include "broker/engine/queue.h"
#include "broker/push/forward.h"
#include "broker/push/target.h"
#include "broker/push/transform.h"
#include "common/clock.h"
#include "common/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EB_LIST_RULES_MAX 100u
#define NAME_CHARS        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-"

static bool name_ok(const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;
    return n >= 1 && n <= EB_NAME_MAX && strspn(s, NAME_CHARS) == n;
}

/* The rule a request names (Name or Rule, EventBusName): bus into `bus`,
 * its key "BUS/NAME" into `key`. False: answered. */
static bool rule_ref(struct eb_call *c, const char *member, char *bus, char *key, size_t key_cap,
                     const char **name)
{
    bool bad = false;
    *name = eb_str(c, member, &bad);
    const char *given = bad ? NULL : eb_str(c, "EventBusName", &bad);
    char why[EB_WHY_MAX];
    if (bad) {
        return false;
    }
    if (!name_ok(*name)) {
        eb_fail(c, EB_E_VALIDATION,
                "%s %.100s is not valid: 1-%u characters of A-Z a-z 0-9 . _ -", member,
                *name != NULL ? *name : "(missing)", EB_NAME_MAX);
        return false;
    }
    if (!eb_bus_name(given, bus, EB_BUS_NAME_MAX + 1, why, sizeof(why))) {
        eb_fail(c, EB_E_VALIDATION, "%s", why);
        return false;
    }
    snprintf(key, key_cap, "%s/%s", bus, *name);
    return true;
}

/* The existing rule, or NULL with ResourceNotFoundException answered. */
static json_t *rule_get(struct eb_call *c, const char *bus, const char *key, const char *name)
{
    json_t *r = json_object_get(json_object_get(c->eb->doc, "rules"), key);
    if (r == NULL) {
        eb_fail(c, EB_E_NOT_FOUND, "Rule %s does not exist on EventBus %s.", name, bus);
    }
    return r;
}

/* A new group for target t of rule r, starting now. */
static void assign_group(struct sl_eb *eb, json_t *r, json_t *t)
{
    char group[SL_QUEUE_GROUP_NAME_MAX + 1];
    eb_sync_group_name(eb, json_string_value(json_object_get(r, "name")), group, sizeof(group));
    json_object_set_new(t, "group", json_string(group));
    json_object_set_new(t, "since", json_integer((json_int_t)sl_clock_wall_ms()));
    json_object_set_new(t, "ready", json_false());
    json_object_del(t, "failed");
    eb->dirty = true;
}

/* Every target of r: retired, and (when `fresh`) given a new group. */
static void regroup(struct sl_eb *eb, json_t *r, bool fresh)
{
    const char *id;
    json_t *t;
    const char *bus = json_string_value(json_object_get(r, "bus"));
    json_object_foreach(json_object_get(r, "targets"), id, t)
    {
        eb_sync_retire(eb, bus, t);
        if (fresh) {
            assign_group(eb, r, t);
        }
    }
}

static json_t *rule_view(const json_t *r)
{
    const char *bus = json_string_value(json_object_get(r, "bus"));
    const char *name = json_string_value(json_object_get(r, "name"));
    char arn[512];
    eb_rule_arn(bus, name, arn, sizeof(arn));
    json_t *o = json_pack("{s:s,s:s,s:O,s:s,s:s}", "Name", name, "Arn", arn, "EventPattern",
                          json_object_get(r, "pattern"), "State",
                          json_is_true(json_object_get(r, "enabled")) ? "ENABLED" : "DISABLED",
                          "EventBusName", bus);
    json_t *d = json_object_get(r, "description");
    if (o != NULL && d != NULL) {
        json_object_set(o, "Description", d);
    }
    return o;
}

static bool dead_room(struct eb_call *c, const json_t *r)
{
    size_t dead = json_array_size(json_object_get(c->eb->doc, "dead"));
    if (dead + json_object_size(json_object_get(r, "targets")) > EB_DEAD_MAX) {
        eb_fail(c, EB_E_CONFLICT, "%zu retired groups are still being deleted: retry shortly",
                dead);
        return false;
    }
    return true;
}

/* PutRule's checks of the members besides Name and the bus. */
static bool put_rule_args(struct eb_call *c, const char **pattern, const char **state,
                          const char **desc)
{
    bool bad = false;
    *pattern = eb_str(c, "EventPattern", &bad);
    const char *sched = bad ? NULL : eb_str(c, "ScheduleExpression", &bad);
    *state = bad ? NULL : eb_str(c, "State", &bad);
    *desc = bad ? NULL : eb_str(c, "Description", &bad);
    if (bad) {
        return false;
    }
    if (sched != NULL) {
        eb_fail(c, EB_E_VALIDATION,
                "ScheduleExpression is not served by Sluice (rules match events only): use "
                "EventPattern, and a scheduler outside the broker that calls PutEvents");
        return false;
    }
    if (*pattern == NULL) {
        eb_fail(c, EB_E_VALIDATION, "Parameter EventPattern is required (ScheduleExpression is "
                                    "not served)");
        return false;
    }
    if (*state != NULL && strcmp(*state, "ENABLED") != 0 && strcmp(*state, "DISABLED") != 0) {
        eb_fail(c, EB_E_VALIDATION, "State must be ENABLED or DISABLED, not %.64s", *state);
        return false;
    }
    if (*desc != NULL && strlen(*desc) > EB_DESCRIPTION_MAX) {
        eb_fail(c, EB_E_VALIDATION, "Description is longer than %u characters",
                EB_DESCRIPTION_MAX);
        return false;
    }
    struct sl_filter *f = NULL;
    char why[EB_WHY_MAX];
    int rc = sl_filter_parse(*pattern, strlen(*pattern), SL_FILTER_SCOPE_BODY, &f, why,
                             sizeof(why));
    sl_filter_free(f);
    if (rc != SL_OK) {
        eb_fail(c, EB_E_INVALID_PATTERN, "Event pattern is not valid. Reason: %s", why);
        return false;
    }
    return true;
}

void eb_put_rule(struct eb_call *c)
{
    char bus[EB_BUS_NAME_MAX + 1], key[EB_BUS_NAME_MAX + EB_NAME_MAX + 2], why[EB_WHY_MAX];
    const char *name, *pattern, *state, *desc;
    if (!rule_ref(c, "Name", bus, key, sizeof(key), &name) ||
        !put_rule_args(c, &pattern, &state, &desc)) {
        return;
    }
    if (eb_bus_get(c->eb, bus, true, why, sizeof(why)) == NULL) {
        eb_fail(c, EB_E_NOT_FOUND, "%s", why);
        return;
    }
    json_t *rules = json_object_get(c->eb->doc, "rules");
    json_t *r = json_object_get(rules, key);
    bool enabled = state == NULL || strcmp(state, "ENABLED") == 0;
    if (r == NULL) {
        if (json_object_size(rules) >= EB_RULES_MAX) {
            eb_fail(c, EB_E_LIMIT, "%u rules already: delete one first", EB_RULES_MAX);
            return;
        }
        r = json_pack("{s:s,s:s,s:s,s:b,s:I,s:{}}", "bus", bus, "name", name, "pattern", pattern,
                      "enabled", enabled, "created", (json_int_t)sl_clock_wall_ms(), "targets");
        if (r == NULL || json_object_set_new(rules, key, r) != 0) {
            eb_fail(c, EB_E_INTERNAL, "out of memory");
            return;
        }
    } else {
        bool was = json_is_true(json_object_get(r, "enabled"));
        bool same = strcmp(json_string_value(json_object_get(r, "pattern")), pattern) == 0;
        if ((!same || was != enabled) && !dead_room(c, r)) {
            return;
        }
        json_object_set_new(r, "pattern", json_string(pattern));
        json_object_set_new(r, "enabled", json_boolean(enabled));
        if (!same || was != enabled) {
            regroup(c->eb, r, enabled);
        }
    }
    if (desc != NULL) {
        json_object_set_new(r, "description", json_string(desc));
    }
    if (!eb_save(c)) {
        return;
    }
    char arn[512];
    eb_rule_arn(bus, name, arn, sizeof(arn));
    eb_sync(c->eb);
    eb_reply(c, json_pack("{s:s}", "RuleArn", arn));
}

void eb_delete_rule(struct eb_call *c)
{
    char bus[EB_BUS_NAME_MAX + 1], key[EB_BUS_NAME_MAX + EB_NAME_MAX + 2];
    const char *name;
    if (!rule_ref(c, "Name", bus, key, sizeof(key), &name)) {
        return;
    }
    json_t *rules = json_object_get(c->eb->doc, "rules");
    json_t *r = json_object_get(rules, key);
    if (r == NULL) {
        eb_reply(c, NULL); /* AWS: deleting a missing rule succeeds */
        return;
    }
    if (json_object_size(json_object_get(r, "targets")) > 0) {
        eb_fail(c, EB_E_VALIDATION,
                "Rule can't be deleted since it has targets: remove them first (RemoveTargets)");
        return;
    }
    json_object_del(rules, key);
    if (eb_save(c)) {
        eb_reply(c, NULL);
    }
}

void eb_describe_rule(struct eb_call *c)
{
    char bus[EB_BUS_NAME_MAX + 1], key[EB_BUS_NAME_MAX + EB_NAME_MAX + 2];
    const char *name;
    if (!rule_ref(c, "Name", bus, key, sizeof(key), &name)) {
        return;
    }
    json_t *r = rule_get(c, bus, key, name);
    if (r != NULL) {
        json_t *v = rule_view(r);
        json_object_set_new(v, "CreatedBy", json_string(EB_ACCOUNT));
        eb_reply(c, v);
    }
}

void eb_enable_rule(struct eb_call *c, bool enable)
{
    char bus[EB_BUS_NAME_MAX + 1], key[EB_BUS_NAME_MAX + EB_NAME_MAX + 2];
    const char *name;
    if (!rule_ref(c, "Name", bus, key, sizeof(key), &name)) {
        return;
    }
    json_t *r = rule_get(c, bus, key, name);
    if (r == NULL) {
        return;
    }
    if (json_is_true(json_object_get(r, "enabled")) != enable) {
        if (!dead_room(c, r)) {
            return;
        }
        json_object_set_new(r, "enabled", json_boolean(enable));
        regroup(c->eb, r, enable);
        if (!eb_save(c)) {
            return;
        }
        eb_sync(c->eb);
    }
    eb_reply(c, NULL);
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

void eb_list_rules(struct eb_call *c)
{
    bool bad = false;
    const char *prefix = eb_str(c, "NamePrefix", &bad);
    const char *token = bad ? NULL : eb_str(c, "NextToken", &bad);
    const char *given = bad ? NULL : eb_str(c, "EventBusName", &bad);
    char bus[EB_BUS_NAME_MAX + 1], why[EB_WHY_MAX];
    if (bad) {
        return;
    }
    json_t *lim = json_object_get(c->in, "Limit");
    json_int_t limit = json_is_integer(lim) ? json_integer_value(lim) : EB_LIST_RULES_MAX;
    if (limit < 1 || limit > EB_LIST_RULES_MAX) {
        eb_fail(c, EB_E_VALIDATION, "Limit must be between 1 and %u", EB_LIST_RULES_MAX);
        return;
    }
    if (!eb_bus_name(given, bus, sizeof(bus), why, sizeof(why))) {
        eb_fail(c, EB_E_VALIDATION, "%s", why);
        return;
    }
    json_t *rules = json_object_get(c->eb->doc, "rules");
    const char **names = calloc(json_object_size(rules) + 1, sizeof(*names));
    if (names == NULL) {
        eb_fail(c, EB_E_INTERNAL, "out of memory");
        return;
    }
    size_t n = 0;
    const char *k;
    json_t *r;
    json_object_foreach(rules, k, r)
    {
        const char *name = json_string_value(json_object_get(r, "name"));
        if (strcmp(json_string_value(json_object_get(r, "bus")), bus) == 0 &&
            (prefix == NULL || strncmp(name, prefix, strlen(prefix)) == 0) &&
            (token == NULL || strcmp(name, token) > 0)) {
            names[n++] = name;
        }
    }
    qsort(names, n, sizeof(*names), cmp_names);
    json_t *out = json_array();
    json_t *res = json_pack("{s:o}", "Rules", out);
    for (size_t i = 0; i < n && i < (size_t)limit; i++) {
        char key[EB_BUS_NAME_MAX + EB_NAME_MAX + 2];
        snprintf(key, sizeof(key), "%s/%s", bus, names[i]);
        json_array_append_new(out, rule_view(json_object_get(rules, key)));
    }
    if (n > (size_t)limit) {
        json_object_set_new(res, "NextToken", json_string(names[limit - 1]));
    }
    free(names);
    eb_reply(c, res);
}

/* ---- targets ---- */

/* The stream an ARN of `service` names after the account, or NULL. */
static const char *arn_resource(const char *arn, const char *service)
{
    char head[64];
    snprintf(head, sizeof(head), "arn:aws:%s:", service);
    if (strncmp(arn, head, strlen(head)) != 0) {
        return NULL;
    }
    const char *p = arn + strlen(head);
    for (int i = 0; i < 2 && p != NULL; i++) { /* region, account */
        p = strchr(p, ':');
        p = p != NULL ? p + 1 : NULL;
    }
    return p;
}

/* Where target Arn `arn` delivers: `url` (http(s) or stream:NAME). False:
 * why says which ARNs are served. */
static bool target_url(struct sl_eb *eb, const char *arn, char *url, size_t cap, char *why,
                       size_t why_len)
{
    const char *name = NULL;
    const char *kind = NULL;
    if (strncmp(arn, "http://", 7) == 0 || strncmp(arn, "https://", 8) == 0) {
        snprintf(url, cap, "%s", arn);
        return strlen(arn) < cap;
    }
    char stream[SL_STREAM_NAME_MAX + 1] = "";
    if ((name = arn_resource(arn, "sqs")) != NULL) {
        kind = "queue";
    } else if ((name = arn_resource(arn, "sns")) != NULL) {
        kind = "topic";
    } else if ((name = arn_resource(arn, "kinesis")) != NULL &&
               strncmp(name, "stream/", 7) == 0) {
        name += 7;
        kind = "stream";
    } else if ((name = arn_resource(arn, "events")) != NULL &&
               strncmp(name, "event-bus/", 10) == 0) {
        char bus[EB_BUS_NAME_MAX + 1];
        if (!eb_bus_name(name + 10, bus, sizeof(bus), why, why_len)) {
            return false;
        }
        eb_bus_stream(bus, stream, sizeof(stream));
        name = stream;
        kind = "event bus";
    } else {
        snprintf(why, why_len,
                 "Arn %.200s is not a target Sluice serves: an http(s):// URL, or the ARN of an "
                 "SQS queue, a Kinesis stream (stream/NAME), an SNS topic or an event bus",
                 arn);
        return false;
    }
    int rc;
    if (name[0] == '\0' || strlen(name) > SL_STREAM_NAME_MAX ||
        sl_engine_stream(eb->e, name, why, (uint32_t)why_len, &rc) == NULL) {
        snprintf(why, why_len, "the %s of %.200s does not exist: create it first", kind, arn);
        return false;
    }
    snprintf(url, cap, "%s%s", SL_PUSH_FORWARD_PREFIX, name);
    return true;
}

/* One PutTargets entry checked into its state object (returned owned), or
 * NULL with why. */
/* The push target's transform spec (transform.h) of a PutTargets entry:
 * its Input, InputPath or InputTransformer with the rule's name and ARN;
 * *out NULL when it has none. False: why names the problem. */
static bool transform_of(const json_t *spec, const char *rule, const char *bus, char **out,
                         char *why, size_t why_len)
{
    static const char *const keys[] = {"Input", "InputPath", "InputTransformer"};
    *out = NULL;
    json_t *d = json_object();
    for (size_t i = 0; i < 3 && d != NULL; i++) {
        json_t *v = json_object_get(spec, keys[i]);
        if (v != NULL && !json_is_null(v)) {
            json_object_set(d, keys[i], v);
        }
    }
    if (d == NULL || json_object_size(d) == 0) {
        json_decref(d);
        return true;
    }
    char arn[512];
    eb_rule_arn(bus, rule, arn, sizeof(arn));
    json_object_set_new(d, "RuleName", json_string(rule));
    json_object_set_new(d, "RuleArn", json_string(arn));
    *out = json_dumps(d, JSON_COMPACT);
    json_decref(d);
    struct sl_push_transform *tf = NULL;
    char twhy[256];
    int rc = *out == NULL ? SL_ENOMEM
                          : sl_push_transform_compile(*out, strlen(*out), &tf, twhy, sizeof(twhy));
    sl_push_transform_free(tf);
    if (rc != SL_OK) {
        snprintf(why, why_len, "%s", rc == SL_ENOMEM ? "out of memory" : twhy);
        free(*out);
        *out = NULL;
        return false;
    }
    return true;
}

static json_t *target_make(struct sl_eb *eb, json_t *spec, const char *rule, const char *bus,
                           char *why, size_t why_len)
{
    const char *id = json_string_value(json_object_get(spec, "Id"));
    const char *arn = json_string_value(json_object_get(spec, "Arn"));
    char url[SL_PUSH_URL_MAX + 1], dlq[SL_STREAM_NAME_MAX + 1] = "";
    if (!name_ok(id)) {
        snprintf(why, why_len, "Id must be 1-%u characters of A-Z a-z 0-9 . _ -", EB_NAME_MAX);
        return NULL;
    }
    if (arn == NULL || strlen(arn) > EB_ARN_MAX) {
        snprintf(why, why_len, "Arn is required (at most %u characters)", EB_ARN_MAX);
        return NULL;
    }
    if (!target_url(eb, arn, url, sizeof(url), why, why_len)) {
        return NULL;
    }
    json_t *retry = json_object_get(json_object_get(spec, "RetryPolicy"), "MaximumRetryAttempts");
    json_int_t retries = retry != NULL ? json_integer_value(retry) : EB_RETRIES_DEFAULT;
    if (retry != NULL && (!json_is_integer(retry) || retries < 0 || retries > 185)) {
        snprintf(why, why_len, "RetryPolicy.MaximumRetryAttempts must be 0-185");
        return NULL;
    }
    const char *dl = json_string_value(
        json_object_get(json_object_get(spec, "DeadLetterConfig"), "Arn"));
    const char *qname = dl != NULL ? arn_resource(dl, "sqs") : NULL;
    int rc;
    if (dl != NULL && (qname == NULL || strlen(qname) > SL_STREAM_NAME_MAX ||
                       sl_engine_stream(eb->e, qname, why, (uint32_t)why_len, &rc) == NULL)) {
        snprintf(why, why_len, "DeadLetterConfig.Arn %.200s is not an existing SQS queue's ARN",
                 dl);
        return NULL;
    }
    if (qname != NULL) {
        snprintf(dlq, sizeof(dlq), "%s", qname);
    }
    char *tf = NULL;
    if (!transform_of(spec, rule, bus, &tf, why, why_len)) {
        return NULL;
    }
    json_t *t = json_pack("{s:O,s:s,s:I,s:s,s:b,s:s}", "spec", spec, "url", url,
                          "max_deliveries", (json_int_t)(retries + 1), "dlq", dlq, "ready", 0,
                          "transform", tf != NULL ? tf : "");
    free(tf);
    return t;
}

static json_t *failed_entry(const char *id, const char *code, const char *msg)
{
    return json_pack("{s:s,s:s,s:s}", "TargetId", id != NULL ? id : "", "ErrorCode", code,
                     "ErrorMessage", msg);
}

/* Put/RemoveTargets: the change made durable, then applied by the
 * reconciler; the answer lists the entries that failed (owned). */
static void answer_entries(struct eb_call *c, json_t *failed)
{
    if (!eb_save(c)) {
        json_decref(failed);
        return;
    }
    eb_sync(c->eb);
    eb_reply(c, json_pack("{s:i,s:o}", "FailedEntryCount", (json_int_t)json_array_size(failed),
                          "FailedEntries", failed));
}

void eb_put_targets(struct eb_call *c)
{
    char bus[EB_BUS_NAME_MAX + 1], key[EB_BUS_NAME_MAX + EB_NAME_MAX + 2], why[EB_WHY_MAX];
    const char *name;
    if (!rule_ref(c, "Rule", bus, key, sizeof(key), &name)) {
        return;
    }
    json_t *r = rule_get(c, bus, key, name);
    json_t *list = json_object_get(c->in, "Targets");
    if (r == NULL) {
        return;
    }
    if (!json_is_array(list) || json_array_size(list) < 1 || json_array_size(list) > 100) {
        eb_fail(c, EB_E_VALIDATION, "Targets must be a list of 1 to 100 targets");
        return;
    }
    if (c->eb->push == NULL) {
        eb_fail(c, EB_E_VALIDATION, "push targets are off on this broker (push = false)");
        return;
    }
    json_t *targets = json_object_get(r, "targets");
    size_t adding = 0;
    for (size_t i = 0; i < json_array_size(list); i++) {
        const char *id = json_string_value(json_object_get(json_array_get(list, i), "Id"));
        adding += id == NULL || json_object_get(targets, id) == NULL;
    }
    if (json_object_size(targets) + adding > EB_TARGETS_MAX) {
        eb_fail(c, EB_E_LIMIT, "The requested resource exceeds the maximum number allowed: a "
                               "rule has at most %u targets", EB_TARGETS_MAX);
        return;
    }
    if (!dead_room(c, r)) {
        return;
    }
    json_t *failed = json_array();
    bool enabled = json_is_true(json_object_get(r, "enabled"));
    for (size_t i = 0; i < json_array_size(list); i++) {
        json_t *spec = json_array_get(list, i);
        const char *id = json_string_value(json_object_get(spec, "Id"));
        json_t *t = json_is_object(spec) ? target_make(c->eb, spec, name, bus, why, sizeof(why)) : NULL;
        if (t == NULL) {
            json_array_append_new(failed, failed_entry(id, "ValidationException",
                                                       json_is_object(spec) ? why
                                                                            : "not an object"));
            continue;
        }
        json_t *old = json_object_get(targets, id);
        if (old != NULL) {
            eb_sync_retire(c->eb, bus, old);
        }
        if (enabled) {
            assign_group(c->eb, r, t);
        }
        json_object_set_new(targets, id, t);
    }
    answer_entries(c, failed);
}

void eb_remove_targets(struct eb_call *c)
{
    char bus[EB_BUS_NAME_MAX + 1], key[EB_BUS_NAME_MAX + EB_NAME_MAX + 2];
    const char *name;
    if (!rule_ref(c, "Rule", bus, key, sizeof(key), &name)) {
        return;
    }
    json_t *r = rule_get(c, bus, key, name);
    json_t *ids = json_object_get(c->in, "Ids");
    if (r == NULL) {
        return;
    }
    if (!json_is_array(ids) || json_array_size(ids) < 1 || json_array_size(ids) > 100) {
        eb_fail(c, EB_E_VALIDATION, "Ids must be a list of 1 to 100 target ids");
        return;
    }
    if (!dead_room(c, r)) {
        return;
    }
    json_t *targets = json_object_get(r, "targets");
    json_t *failed = json_array();
    for (size_t i = 0; i < json_array_size(ids); i++) {
        const char *id = json_string_value(json_array_get(ids, i));
        json_t *t = id != NULL ? json_object_get(targets, id) : NULL;
        if (t == NULL) {
            json_array_append_new(failed, failed_entry(id, "ResourceNotFoundException",
                                                       "no target with this Id on the rule"));
            continue;
        }
        eb_sync_retire(c->eb, bus, t);
        json_object_del(targets, id);
    }
    answer_entries(c, failed);
}

void eb_list_targets(struct eb_call *c)
{
    char bus[EB_BUS_NAME_MAX + 1], key[EB_BUS_NAME_MAX + EB_NAME_MAX + 2];
    const char *name;
    if (!rule_ref(c, "Rule", bus, key, sizeof(key), &name)) {
        return;
    }
    json_t *r = rule_get(c, bus, key, name);
    if (r == NULL) {
        return;
    }
    json_t *out = json_array();
    const char *id;
    json_t *t;
    json_object_foreach(json_object_get(r, "targets"), id, t)
    {
        json_array_append(out, json_object_get(t, "spec"));
    }
    eb_reply(c, json_pack("{s:o}", "Targets", out));
}
