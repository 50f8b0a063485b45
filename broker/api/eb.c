/* eb.c - the Amazon EventBridge API (see eb.h): dispatch, answers and errors
 * (AWS JSON 1.1: {"__type": Name, "message"}), and event buses.
 *
 * Mapping onto the engine (docs/ARCHITECTURE.md, "HTTP front-end"):
 *  - bus B = the stream eb.B (one shard: events keep the order PutEvents
 *    stored them in); "default" exists on first use (PutEvents, PutRule,
 *    DescribeEventBus) and is listed always;
 *  - an event = one record whose value is the full event envelope JSON, so
 *    a rule's pattern is matched on the body exactly as EventBridge matches
 *    the event (eb_events.c);
 *  - rule R with targets T1..Tn = one filtered queue group per (R, Ti), each
 *    with one push target (eb_rules.c, eb_sync.c): a group has one push
 *    target, and targets of one rule must not share retries, dead letters or
 *    a slow endpoint's back-pressure - AWS delivers to each independently;
 *  - what the engine does not hold (rules, targets' specs) is the state file
 *    <data>/eventbridge/state (eb_store.c).
 *
 * Threading: the main loop.
 */
#include "broker/api/eb.h"

#include "broker/api/access.h"
#include "broker/api/eb_int.h"
#include "broker/auth/auth.h"
#include "broker/engine/catalog.h"
#include "broker/engine/engine.h"
#include "broker/engine/streams.h"
#include "broker/push/push.h"
#include "common/assert.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EB_BUS_SHARDS 1u
#define EB_LIST_MAX   100u /* ListEventBuses' Limit (AWS) */

static const struct {
    const char *type;
    int status;
} errors[EB_E_COUNT_] = {
    [EB_E_VALIDATION] = {"ValidationException", 400},
    [EB_E_NOT_FOUND] = {"ResourceNotFoundException", 400},
    [EB_E_EXISTS] = {"ResourceAlreadyExistsException", 400},
    [EB_E_LIMIT] = {"LimitExceededException", 400},
    [EB_E_INVALID_PATTERN] = {"InvalidEventPatternException", 400},
    [EB_E_CONFLICT] = {"ConcurrentModificationException", 400},
    [EB_E_UNKNOWN_OP] = {"UnknownOperationException", 400},
    [EB_E_INTERNAL] = {"InternalException", 500},
    [EB_E_ACCESS] = {"AccessDeniedException", 400},
    [EB_E_SIGNATURE] = {"InvalidSignatureException", 400},
    [EB_E_CLIENT_TOKEN] = {"UnrecognizedClientException", 400},
};

static void answer(struct eb_call *c, int status, const char *body)
{
    if (body == NULL) {
        static const char msg[] = "out of memory";
        sl_api_reply(c->call, 503, "text/plain", msg, sizeof(msg) - 1);
    } else {
        sl_api_reply(c->call, status, "application/x-amz-json-1.1", body, strlen(body));
    }
    json_decref(c->in);
    free(c);
}

void eb_reply(struct eb_call *c, json_t *result)
{
    if (result == NULL) {
        result = json_object(); /* {} (NULL again without memory: answered as such) */
    }
    char *body = result != NULL ? json_dumps(result, JSON_COMPACT) : NULL;
    json_decref(result);
    answer(c, 200, body);
    free(body);
}

void eb_fail(struct eb_call *c, enum eb_error code, const char *fmt, ...)
{
    SL_ASSERT(code < EB_E_COUNT_);
    char msg[EB_WHY_MAX + 128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    json_t *j = json_pack("{s:s,s:s}", "__type", errors[code].type, "message", msg);
    char *body = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    answer(c, errors[code].status, body);
    free(body);
}

const char *eb_str(struct eb_call *c, const char *name, bool *failed)
{
    json_t *v = json_object_get(c->in, name);
    if (v == NULL || json_is_null(v)) {
        return NULL;
    }
    if (!json_is_string(v)) {
        *failed = true;
        eb_fail(c, EB_E_VALIDATION, "%s must be a string", name);
        return NULL;
    }
    return json_string_value(v);
}

static bool bus_chars_ok(const char *s)
{
    size_t n = strlen(s);
    return n >= 1 && n <= EB_BUS_NAME_MAX && s[0] != '.' &&
           strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

bool eb_bus_name(const char *given, char *out, size_t cap, char *why, size_t why_len)
{
    const char *name = given != NULL ? given : EB_DEFAULT_BUS;
    const char *slash = strstr(name, ":event-bus/");
    if (strncmp(name, "arn:", 4) == 0 && slash != NULL) {
        name = slash + strlen(":event-bus/");
    }
    if (!bus_chars_ok(name)) {
        snprintf(why, why_len,
                 "Event bus name %.200s is not valid: 1-%u characters of A-Z a-z 0-9 . _ - "
                 "(not starting with '.'), or its ARN",
                 name, EB_BUS_NAME_MAX);
        return false;
    }
    snprintf(out, cap, "%s", name);
    return true;
}

void eb_bus_stream(const char *bus, char *out, size_t cap)
{
    snprintf(out, cap, "%s%s", EB_STREAM_PREFIX, bus);
}

void eb_bus_arn(const char *bus, char *out, size_t cap)
{
    snprintf(out, cap, "arn:aws:events:%s:%s:event-bus/%s", EB_REGION, EB_ACCOUNT, bus);
}

void eb_rule_arn(const char *bus, const char *name, char *out, size_t cap)
{
    bool dflt = strcmp(bus, EB_DEFAULT_BUS) == 0;
    snprintf(out, cap, "arn:aws:events:%s:%s:rule/%s%s%s", EB_REGION, EB_ACCOUNT,
             dflt ? "" : bus, dflt ? "" : "/", name);
}

bool eb_allowed(struct eb_call *c, uint32_t ops, const char *bus)
{
    char stream[SL_STREAM_NAME_MAX + 1], why[EB_WHY_MAX];
    eb_bus_stream(bus, stream, sizeof(stream));
    if (sl_access_allowed(c->call, ops, stream, why, sizeof(why))) {
        return true;
    }
    eb_fail(c, EB_E_ACCESS, "%s", why);
    return false;
}

bool eb_save(struct eb_call *c)
{
    char why[EB_WHY_MAX];
    int rc = eb_store_save(c->eb->dir, c->eb->doc, why, sizeof(why));
    if (rc != SL_OK) {
        sl_error("eventbridge", "%s", why);
        eb_fail(c, EB_E_INTERNAL, "the EventBridge state was not saved: %s", why);
        return false;
    }
    return true;
}

/* Makes the bus's stream (creating a bus is rare: the file work runs on
 * the loop, as a SQS CreateQueue's). */
static int bus_make(struct sl_eb *eb, const char *bus, char *why, size_t why_len)
{
    char stream[SL_STREAM_NAME_MAX + 1];
    eb_bus_stream(bus, stream, sizeof(stream));
    int rc;
    if (sl_engine_stream(eb->e, stream, why, (uint32_t)why_len, &rc) != NULL) {
        return SL_OK;
    }
    struct sl_stream_spec spec = {.name = stream, .shard_count = EB_BUS_SHARDS};
    struct sl_stream *st = NULL;
    rc = sl_streams_create(eb->e, &spec, &st, why, (uint32_t)why_len);
    return rc == SL_EEXIST ? SL_OK : rc;
}

json_t *eb_bus_get(struct sl_eb *eb, const char *bus, bool make_default, char *why,
                   size_t why_len)
{
    json_t *buses = json_object_get(eb->doc, "buses");
    json_t *b = json_object_get(buses, bus);
    if (b != NULL || !make_default || strcmp(bus, EB_DEFAULT_BUS) != 0) {
        if (b == NULL) {
            snprintf(why, why_len, "Event bus %s does not exist.", bus);
        }
        return b;
    }
    if (bus_make(eb, bus, why, why_len) != SL_OK) {
        return NULL;
    }
    b = json_pack("{s:I}", "created", (json_int_t)sl_clock_wall_ms());
    if (b == NULL || json_object_set_new(buses, bus, b) != 0 ||
        eb_store_save(eb->dir, eb->doc, why, why_len) != SL_OK) {
        json_object_del(buses, bus);
        return NULL;
    }
    return b;
}

static json_t *bus_entry(const char *name, const json_t *b)
{
    char arn[256];
    eb_bus_arn(name, arn, sizeof(arn));
    json_t *o = json_pack("{s:s,s:s}", "Name", name, "Arn", arn);
    json_t *created = json_object_get(b, "created");
    if (o != NULL && created != NULL) {
        json_object_set_new(o, "CreationTime",
                            json_real((double)json_integer_value(created) / 1000.0));
    }
    return o;
}

static void create_bus(struct eb_call *c)
{
    bool bad = false;
    const char *name = eb_str(c, "Name", &bad);
    char why[EB_WHY_MAX];
    if (bad) {
        return;
    }
    if (name == NULL || !bus_chars_ok(name)) {
        eb_fail(c, EB_E_VALIDATION,
                "Name %.200s is not valid: 1-%u characters of A-Z a-z 0-9 . _ -",
                name != NULL ? name : "(missing)", EB_BUS_NAME_MAX);
        return;
    }
    if (json_object_get(c->in, "EventSourceName") != NULL) {
        eb_fail(c, EB_E_VALIDATION, "EventSourceName (partner event buses) is not served");
        return;
    }
    json_t *buses = json_object_get(c->eb->doc, "buses");
    if (json_object_get(buses, name) != NULL) {
        eb_fail(c, EB_E_EXISTS, "Event bus %s already exists.", name);
        return;
    }
    if (json_object_size(buses) >= EB_BUSES_MAX) {
        eb_fail(c, EB_E_LIMIT, "%u event buses already: delete one first", EB_BUSES_MAX);
        return;
    }
    int rc = bus_make(c->eb, name, why, sizeof(why));
    if (rc != SL_OK) {
        eb_fail(c, rc == SL_ELIMIT ? EB_E_LIMIT : EB_E_INTERNAL, "%s", why);
        return;
    }
    json_object_set_new(buses, name, json_pack("{s:I}", "created",
                                               (json_int_t)sl_clock_wall_ms()));
    if (!eb_save(c)) {
        return;
    }
    char arn[256];
    eb_bus_arn(name, arn, sizeof(arn));
    eb_reply(c, json_pack("{s:s}", "EventBusArn", arn));
}

static bool bus_has_rules(const struct sl_eb *eb, const char *bus)
{
    const char *key;
    json_t *r;
    json_object_foreach(json_object_get(eb->doc, "rules"), key, r)
    {
        if (strcmp(json_string_value(json_object_get(r, "bus")), bus) == 0) {
            return true;
        }
    }
    return false;
}

static void delete_bus(struct eb_call *c)
{
    bool bad = false;
    const char *given = eb_str(c, "Name", &bad);
    char bus[EB_BUS_NAME_MAX + 1], why[EB_WHY_MAX];
    if (bad) {
        return;
    }
    if (given == NULL || !eb_bus_name(given, bus, sizeof(bus), why, sizeof(why))) {
        eb_fail(c, EB_E_VALIDATION, "%s", given == NULL ? "Name is required" : why);
        return;
    }
    if (strcmp(bus, EB_DEFAULT_BUS) == 0) {
        eb_fail(c, EB_E_VALIDATION, "Cannot delete event bus default.");
        return;
    }
    json_t *buses = json_object_get(c->eb->doc, "buses");
    if (json_object_get(buses, bus) == NULL) {
        eb_reply(c, NULL); /* AWS: deleting a missing bus succeeds */
        return;
    }
    if (bus_has_rules(c->eb, bus)) {
        eb_fail(c, EB_E_VALIDATION, "Event bus %s has rules: delete them first (DeleteRule)",
                bus);
        return;
    }
    char stream[SL_STREAM_NAME_MAX + 1];
    eb_bus_stream(bus, stream, sizeof(stream));
    int rc = sl_streams_delete(c->eb->e, stream, why, sizeof(why));
    if (rc != SL_OK && rc != SL_ENOTFOUND) {
        eb_fail(c, EB_E_INTERNAL, "%s", why);
        return;
    }
    json_object_del(buses, bus);
    if (eb_save(c)) {
        eb_reply(c, NULL);
    }
}

static void describe_bus(struct eb_call *c)
{
    bool bad = false;
    const char *given = eb_str(c, "Name", &bad);
    char bus[EB_BUS_NAME_MAX + 1], why[EB_WHY_MAX];
    if (bad) {
        return;
    }
    if (!eb_bus_name(given, bus, sizeof(bus), why, sizeof(why))) {
        eb_fail(c, EB_E_VALIDATION, "%s", why);
        return;
    }
    json_t *b = eb_bus_get(c->eb, bus, true, why, sizeof(why));
    if (b == NULL) {
        eb_fail(c, EB_E_NOT_FOUND, "%s", why);
        return;
    }
    eb_reply(c, bus_entry(bus, b));
}

/* Names in order after NextToken (the last name of the previous page). */
static void list_buses(struct eb_call *c)
{
    bool bad = false;
    const char *prefix = eb_str(c, "NamePrefix", &bad);
    const char *token = bad ? NULL : eb_str(c, "NextToken", &bad);
    json_t *lim = json_object_get(c->in, "Limit");
    if (bad) {
        return;
    }
    json_int_t limit = json_is_integer(lim) ? json_integer_value(lim) : EB_LIST_MAX;
    if (limit < 1 || limit > EB_LIST_MAX) {
        eb_fail(c, EB_E_VALIDATION, "Limit must be between 1 and %u", EB_LIST_MAX);
        return;
    }
    json_t *buses = json_object_get(c->eb->doc, "buses");
    json_t *all = json_copy(buses);
    if (all != NULL && json_object_get(all, EB_DEFAULT_BUS) == NULL) {
        json_object_set_new(all, EB_DEFAULT_BUS, json_object()); /* exists implicitly */
    }
    const char **names = calloc(json_object_size(all) + 1, sizeof(*names));
    json_t *out = json_array();
    size_t n = 0;
    const char *key;
    json_t *v;
    json_object_foreach(all, key, v)
    {
        if ((prefix == NULL || strncmp(key, prefix, strlen(prefix)) == 0) &&
            (token == NULL || strcmp(key, token) > 0) && names != NULL) {
            names[n++] = key;
        }
    }
    /* few buses (EB_BUSES_MAX): a selection of the next names in order */
    json_t *res = json_object();
    for (json_int_t k = 0; k < limit && out != NULL; k++) {
        const char *best = NULL;
        for (size_t i = 0; i < n; i++) {
            if ((k == 0 || strcmp(names[i], json_string_value(json_object_get(
                                                  json_array_get(out, (size_t)k - 1), "Name"))) >
                               0) &&
                (best == NULL || strcmp(names[i], best) < 0)) {
                best = names[i];
            }
        }
        if (best == NULL) {
            break;
        }
        json_array_append_new(out, bus_entry(best, json_object_get(all, best)));
        if (k == limit - 1) {
            for (size_t i = 0; i < n; i++) {
                if (strcmp(names[i], best) > 0) {
                    json_object_set_new(res, "NextToken", json_string(best));
                    break;
                }
            }
        }
    }
    free(names);
    json_object_set_new(res, "EventBuses", out);
    json_decref(all);
    eb_reply(c, res);
}

/* ---- dispatch ---- */

enum op_kind {
    OP_CREATE_BUS, OP_DELETE_BUS, OP_DESCRIBE_BUS, OP_LIST_BUSES, OP_PUT_EVENTS,
    OP_TEST_PATTERN, OP_PUT_RULE, OP_DELETE_RULE, OP_DESCRIBE_RULE, OP_LIST_RULES,
    OP_ENABLE_RULE, OP_DISABLE_RULE, OP_PUT_TARGETS, OP_REMOVE_TARGETS, OP_LIST_TARGETS,
    OP_CREATE_ARCHIVE, OP_DESCRIBE_ARCHIVE, OP_UPDATE_ARCHIVE, OP_DELETE_ARCHIVE,
    OP_LIST_ARCHIVES, OP_START_REPLAY, OP_DESCRIBE_REPLAY, OP_CANCEL_REPLAY, OP_LIST_REPLAYS,
};

/* Per operation: its name and the right it takes on the bus's stream when
 * auth is on (docs/SECURITY-sigv4.md): events = produce, reading = any,
 * changes = admin. */
static const struct {
    const char *name;
    enum op_kind kind;
    uint32_t acl;
} ops[] = {
    {"CreateEventBus", OP_CREATE_BUS, SL_ACL_ADMIN},
    {"DeleteEventBus", OP_DELETE_BUS, SL_ACL_ADMIN},
    {"DescribeEventBus", OP_DESCRIBE_BUS, SL_ACL_ANY},
    {"ListEventBuses", OP_LIST_BUSES, SL_ACL_ANY},
    {"PutEvents", OP_PUT_EVENTS, SL_ACL_PRODUCE},
    {"TestEventPattern", OP_TEST_PATTERN, 0},
    {"PutRule", OP_PUT_RULE, SL_ACL_ADMIN},
    {"DeleteRule", OP_DELETE_RULE, SL_ACL_ADMIN},
    {"DescribeRule", OP_DESCRIBE_RULE, SL_ACL_ANY},
    {"ListRules", OP_LIST_RULES, SL_ACL_ANY},
    {"EnableRule", OP_ENABLE_RULE, SL_ACL_ADMIN},
    {"DisableRule", OP_DISABLE_RULE, SL_ACL_ADMIN},
    {"PutTargets", OP_PUT_TARGETS, SL_ACL_ADMIN},
    {"RemoveTargets", OP_REMOVE_TARGETS, SL_ACL_ADMIN},
    {"ListTargetsByRule", OP_LIST_TARGETS, SL_ACL_ANY},
    {"CreateArchive", OP_CREATE_ARCHIVE, SL_ACL_ADMIN},
    {"DescribeArchive", OP_DESCRIBE_ARCHIVE, SL_ACL_ANY},
    {"UpdateArchive", OP_UPDATE_ARCHIVE, SL_ACL_ADMIN},
    {"DeleteArchive", OP_DELETE_ARCHIVE, SL_ACL_ADMIN},
    {"ListArchives", OP_LIST_ARCHIVES, SL_ACL_ANY},
    {"StartReplay", OP_START_REPLAY, SL_ACL_ADMIN},
    {"DescribeReplay", OP_DESCRIBE_REPLAY, SL_ACL_ANY},
    {"CancelReplay", OP_CANCEL_REPLAY, SL_ACL_ADMIN},
    {"ListReplays", OP_LIST_REPLAYS, SL_ACL_ANY},
};
#define OPS_N (sizeof(ops) / sizeof(ops[0]))

static void run(struct eb_call *c, enum op_kind k)
{
    switch (k) {
    case OP_CREATE_BUS: create_bus(c); break;
    case OP_DELETE_BUS: delete_bus(c); break;
    case OP_DESCRIBE_BUS: describe_bus(c); break;
    case OP_LIST_BUSES: list_buses(c); break;
    case OP_PUT_EVENTS: eb_put_events(c); break;
    case OP_TEST_PATTERN: eb_test_event_pattern(c); break;
    case OP_PUT_RULE: eb_put_rule(c); break;
    case OP_DELETE_RULE: eb_delete_rule(c); break;
    case OP_DESCRIBE_RULE: eb_describe_rule(c); break;
    case OP_LIST_RULES: eb_list_rules(c); break;
    case OP_ENABLE_RULE: eb_enable_rule(c, true); break;
    case OP_DISABLE_RULE: eb_enable_rule(c, false); break;
    case OP_PUT_TARGETS: eb_put_targets(c); break;
    case OP_REMOVE_TARGETS: eb_remove_targets(c); break;
    case OP_LIST_TARGETS: eb_list_targets(c); break;
    case OP_CREATE_ARCHIVE: eb_create_archive(c); break;
    case OP_DESCRIBE_ARCHIVE: eb_describe_archive(c); break;
    case OP_UPDATE_ARCHIVE: eb_update_archive(c); break;
    case OP_DELETE_ARCHIVE: eb_delete_archive(c); break;
    case OP_LIST_ARCHIVES: eb_list_archives(c); break;
    case OP_START_REPLAY: eb_start_replay(c); break;
    case OP_DESCRIBE_REPLAY: eb_describe_replay(c); break;
    case OP_CANCEL_REPLAY: eb_cancel_replay(c); break;
    case OP_LIST_REPLAYS: eb_list_replays(c); break;
    }
}

/* The front-end's state, made at the first call or tick. NULL without
 * memory. */
static struct sl_eb *state(struct sl_api *api)
{
    if (api->eventbridge != NULL) {
        return api->eventbridge;
    }
    struct sl_eb *eb = calloc(1, sizeof(*eb));
    if (eb == NULL) {
        return NULL;
    }
    eb->e = api->engine;
    eb->push = api->push;
    snprintf(eb->dir, sizeof(eb->dir), "%s/eventbridge",
             api->cfg.data_dir != NULL ? api->cfg.data_dir : ".");
    int rc = eb_store_load(eb->dir, &eb->doc, eb->broken_why, sizeof(eb->broken_why));
    if (rc != SL_OK) {
        eb->broken = true;
        sl_error("eventbridge", "%s", eb->broken_why);
    }
    eb->dirty = true;
    api->eventbridge = eb;
    return eb;
}

void sl_eb_tick(struct sl_api *api)
{
    struct sl_eb *eb = state(api);
    if (eb != NULL && !eb->broken) {
        eb_sync(eb);
        eb_replay_check(eb, sl_clock_mono_ms());
    }
}

void eb_free(struct sl_eb *eb)
{
    json_decref(eb->doc);
    free(eb);
}

void sl_eb_free(struct sl_api *api)
{
    struct sl_eb *eb = api->eventbridge;
    api->eventbridge = NULL;
    if (eb != NULL && eb->busy) {
        eb->closing = true; /* an engine call is out: its callback frees eb */
    } else if (eb != NULL) {
        eb_free(eb);
    }
}

static bool authenticate(struct eb_call *c)
{
    char why[SL_SIGV4_WHY_MAX];
    enum sl_sigv4_status st = sl_access_authenticate(c->call, "events", why, sizeof(why));
    if (st == SL_SIGV4_OK) {
        return true;
    }
    enum eb_error e = st == SL_SIGV4_UNKNOWN_KEY ? EB_E_CLIENT_TOKEN
                      : st == SL_SIGV4_INTERNAL  ? EB_E_INTERNAL
                                                 : EB_E_SIGNATURE;
    eb_fail(c, e, "%s", why);
    return false;
}

void sl_eb_handle(struct sl_api_call *call, const char *op)
{
    struct eb_call *c = calloc(1, sizeof(*c));
    struct sl_eb *eb = state(call->api);
    if (c == NULL || eb == NULL) {
        free(c);
        static const char msg[] = "out of memory";
        sl_api_reply(call, 503, "text/plain", msg, sizeof(msg) - 1);
        return;
    }
    const struct sl_http_request *req = call->req;
    SL_ASSERT(req != NULL);
    c->call = call;
    c->eb = eb;
    if (!authenticate(c)) {
        return;
    }
    uint32_t i = 0;
    while (i < OPS_N && strcmp(ops[i].name, op) != 0) {
        i++;
    }
    if (i == OPS_N) {
        eb_fail(c, EB_E_UNKNOWN_OP,
                "%.64s is not an operation Sluice serves (served: event buses, PutEvents, rules, "
                "targets, TestEventPattern, archives, replays)",
                op);
        return;
    }
    call->action = ops[i].name;
    call->acl_ops = ops[i].acl;
    if (eb->broken) {
        eb_fail(c, EB_E_INTERNAL, "%s", eb->broken_why);
        return;
    }
    json_error_t je;
    c->in = json_loadb((const char *)req->body, req->body_len, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(c->in)) {
        eb_fail(c, EB_E_VALIDATION, "the body is not a JSON object: %s (line %d, column %d)",
                c->in == NULL ? je.text : "another JSON value", je.line, je.column);
        return;
    }
    enum op_kind k = ops[i].kind;
    if (k >= OP_CREATE_ARCHIVE) {
        /* archives and replays name their bus by ARN, or not at all: with
         * auth on they take the right on the default bus's stream */
        if (!eb_allowed(c, ops[i].acl, EB_DEFAULT_BUS)) {
            return;
        }
    } else if (k == OP_LIST_BUSES || k == OP_TEST_PATTERN) {
        sl_access_visible(call, ""); /* no bus: any authenticated principal */
    } else if (k != OP_PUT_EVENTS) { /* PutEvents: per entry, on its bus */
        bool bus_op = k == OP_CREATE_BUS || k == OP_DELETE_BUS || k == OP_DESCRIBE_BUS;
        json_t *given = json_object_get(c->in, bus_op ? "Name" : "EventBusName");
        char bus[EB_BUS_NAME_MAX + 1], why[EB_WHY_MAX];
        if (!eb_bus_name(json_string_value(given), bus, sizeof(bus), why, sizeof(why))) {
            snprintf(bus, sizeof(bus), "%s", EB_DEFAULT_BUS); /* the operation refuses it */
        }
        if (!eb_allowed(c, ops[i].acl, bus)) {
            return;
        }
    }
    run(c, k);
}
