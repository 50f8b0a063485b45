/* rule.c - `sluice bus create|list|delete`, `sluice rule put|list|delete`, `sluice
 * archive create|list|delete` and `sluice replay start|describe|cancel|list`: EventBridge
 * buses, rules, archives and replays on an event bus (the stream eb.BUS), run by the
 * broker's EventBridge API over the native connection (sluice_api_call: the same state,
 * checks and ACLs as awscli's `aws events`).
 *
 * Each command is one or a few EventBridge calls: `rule put` is PutRule then PutTargets
 * (targets t1..tN), `rule delete` removes the rule's targets then the rule (as AWS asks),
 * `replay start` finds the bus's archive when --archive is not given.
 */
#include "client/cli/cli.h"
#include "client/cli/output.h"
#include "common/isotime.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RULE_TARGETS_MAX 5u  /* per rule (AWS, and the broker's EB_TARGETS_MAX) */
#define REPLAY_RULES_MAX 32u /* --rule given to one replay */
#define NAME_MAX_LEN     64u
#define BUS_MAX_LEN      120u
#define TEXT_MAX_LEN     4096u
#define ARN_ACCOUNT      "arn:aws:events:us-east-1:000000000000:"

struct list_arg {
    const char *v[REPLAY_RULES_MAX];
    uint32_t n;
    uint32_t max;
};

struct rule_args {
    const char *bus;
    const char *pattern;
    const char *description;
    const char *prefix;
    const char *archive;
    const char *from;
    const char *to;
    const char *name;
    uint32_t days;
    int disabled;
    int json;
    struct list_arg targets;
    struct list_arg rules;
};

static int parse_list(const char *value, void *dst, char *why, size_t why_cap, uint32_t max)
{
    struct list_arg *l = dst;
    if (l->n >= max) {
        snprintf(why, why_cap, "at most %u", max);
        return -1;
    }
    if (value[0] == '\0' || strlen(value) > TEXT_MAX_LEN) {
        snprintf(why, why_cap, "empty, or longer than %u bytes", TEXT_MAX_LEN);
        return -1;
    }
    l->v[l->n++] = value;
    return 0;
}

static int parse_target(const char *value, void *dst, char *why, size_t why_cap)
{
    if (strncmp(value, "http://", 7) != 0 && strncmp(value, "https://", 8) != 0 &&
        strncmp(value, "arn:", 4) != 0) {
        snprintf(why, why_cap,
                 "'%.100s' is neither an http(s):// URL nor an ARN (arn:aws:sqs:...:QUEUE, "
                 "arn:aws:kinesis:...:stream/S, arn:aws:sns:...:TOPIC, "
                 "arn:aws:events:...:event-bus/B)",
                 value);
        return -1;
    }
    return parse_list(value, dst, why, why_cap, RULE_TARGETS_MAX);
}

static int parse_rule(const char *value, void *dst, char *why, size_t why_cap)
{
    return parse_list(value, dst, why, why_cap, REPLAY_RULES_MAX);
}

#define OPT_BUS                                                                                    \
    {                                                                                              \
        .name = "bus", .kind = CLI_OPT_STRING, .offset = offsetof(struct rule_args, bus),          \
        .value_name = "BUS", .help = "the event bus (stream eb.BUS); default: default",            \
        .max = BUS_MAX_LEN                                                                         \
    }
#define OPT_JSON(what)                                                                             \
    {                                                                                              \
        .name = "json", .kind = CLI_OPT_FLAG, .offset = offsetof(struct rule_args, json),          \
        .help = what                                                                               \
    }

static const char *bus_of(const struct rule_args *a)
{
    return a->bus != NULL ? a->bus : "default";
}

/* One EventBridge call with the request `in` (taken; NULL: it could not be built, out of
 * memory): *out gets the answer's object (NULL allowed when not wanted). Prints the broker's
 * or AWS's error and returns CLI_EXIT_ERR on failure. */
static int events_call(sluice_client *c, const char *what, const char *action, json_t *in,
                       json_t **out)
{
    if (out != NULL) {
        *out = NULL;
    }
    char *body = in != NULL ? json_dumps(in, JSON_COMPACT) : NULL;
    json_decref(in);
    if (body == NULL) {
        fprintf(stderr, "sluice %s: out of memory\n", what);
        return CLI_EXIT_ERR;
    }
    int status = 0;
    char *ans = NULL;
    size_t ans_len = 0;
    int rc = sluice_api_call(c, "events", action, body, strlen(body), &status, &ans, &ans_len);
    free(body);
    if (rc != SL_OK) {
        return cli_broker_error(what, rc);
    }
    json_error_t je;
    json_t *doc = json_loadb(ans, ans_len, 0, &je);
    if (status < 200 || status > 299) {
        const char *type = json_string_value(json_object_get(doc, "__type"));
        const char *msg = json_string_value(json_object_get(doc, "message"));
        fprintf(stderr, "sluice %s: %s: %s\n", what, type != NULL ? type : action,
                msg != NULL ? msg : ans);
        json_decref(doc);
        free(ans);
        return CLI_EXIT_ERR;
    }
    free(ans);
    if (!json_is_object(doc)) {
        fprintf(stderr, "sluice %s: %s answered something other than a JSON object\n", what,
                action);
        json_decref(doc);
        return CLI_EXIT_ERR;
    }
    if (out != NULL) {
        *out = doc;
    } else {
        json_decref(doc);
    }
    return CLI_EXIT_OK;
}

/* ---- rule put ---- */

static const struct cli_opt put_opts[] = {
    OPT_BUS,
    {.name = "pattern",
     .kind = CLI_OPT_STRING,
     .offset = offsetof(struct rule_args, pattern),
     .value_name = "JSON",
     .help = "the event pattern, e.g. '{\"source\": [\"shop\"]}' (EventBridge's operators)",
     .max = TEXT_MAX_LEN,
     .flags = CLI_OPT_REQUIRED},
    {.name = "target",
     .kind = CLI_OPT_CUSTOM,
     .offset = offsetof(struct rule_args, targets),
     .value_name = "URL|ARN",
     .help = "where matching events go (repeatable, up to 5): an http(s) URL is POSTed each\n"
             "event; an ARN appends it to a queue, stream, topic or bus",
     .parse = parse_target},
    {.name = "description",
     .kind = CLI_OPT_STRING,
     .offset = offsetof(struct rule_args, description),
     .value_name = "TEXT",
     .help = "free text shown by rule list",
     .max = 512},
    {.name = "disabled",
     .kind = CLI_OPT_FLAG,
     .offset = offsetof(struct rule_args, disabled),
     .help = "create or leave the rule disabled (no delivery until enabled)"},
    {.name = NULL},
};

static int run_put(sluice_client *c, const struct cli_call *call)
{
    const struct rule_args *a = call->args;
    const char *name = call->operands[0];
    json_t *in =
        json_pack("{s:s,s:s,s:s,s:s}", "Name", name, "EventBusName", bus_of(a), "EventPattern",
                  a->pattern, "State", a->disabled ? "DISABLED" : "ENABLED");
    if (in != NULL && a->description != NULL) {
        json_object_set_new(in, "Description", json_string(a->description));
    }
    json_t *out = NULL;
    int ec = events_call(c, "rule put", "PutRule", in, &out);
    if (ec != CLI_EXIT_OK) {
        return ec;
    }
    const char *arn = json_string_value(json_object_get(out, "RuleArn"));
    printf("rule %s on bus %s: %s%s\n", name, bus_of(a), arn != NULL ? arn : "",
           a->disabled ? " (disabled)" : "");
    json_decref(out);
    if (a->targets.n == 0) {
        return CLI_EXIT_OK;
    }
    json_t *targets = json_array();
    for (uint32_t i = 0; targets != NULL && i < a->targets.n; i++) {
        char id[16];
        snprintf(id, sizeof(id), "t%u", i + 1);
        json_array_append_new(targets, json_pack("{s:s,s:s}", "Id", id, "Arn", a->targets.v[i]));
    }
    in = json_pack("{s:s,s:s,s:o*}", "Rule", name, "EventBusName", bus_of(a), "Targets", targets);
    ec = events_call(c, "rule put", "PutTargets", in, &out);
    if (ec != CLI_EXIT_OK) {
        return ec;
    }
    json_int_t failed = json_integer_value(json_object_get(out, "FailedEntryCount"));
    json_t *fe = json_object_get(out, "FailedEntries");
    size_t i;
    json_t *f;
    json_array_foreach(fe, i, f)
    {
        fprintf(stderr, "sluice rule put: target %s: %s\n",
                json_string_value(json_object_get(f, "TargetId")),
                json_string_value(json_object_get(f, "ErrorMessage")));
    }
    printf("%" PRIu32 " of %" PRIu32 " target%s set\n", a->targets.n - (uint32_t)failed,
           a->targets.n, a->targets.n == 1 ? "" : "s");
    json_decref(out);
    return failed > 0 ? CLI_EXIT_ERR : CLI_EXIT_OK;
}

/* ---- rule list ---- */

static const struct cli_opt list_opts[] = {
    OPT_BUS,
    {.name = "prefix",
     .kind = CLI_OPT_STRING,
     .offset = offsetof(struct rule_args, prefix),
     .value_name = "P",
     .help = "only the rules whose name starts with P",
     .max = NAME_MAX_LEN},
    OPT_JSON("one JSON array: the rules as DescribeRule answers them, with Targets[]"),
    {.name = NULL},
};

/* The rule's targets (ListTargetsByRule), or NULL after printing the error. */
static json_t *targets_of(sluice_client *c, const char *what, const char *bus, const char *rule)
{
    json_t *in = json_pack("{s:s,s:s}", "Rule", rule, "EventBusName", bus);
    json_t *out = NULL;
    int ec = events_call(c, what, "ListTargetsByRule", in, &out);
    if (ec != CLI_EXIT_OK) {
        return NULL;
    }
    json_t *t = json_incref(json_object_get(out, "Targets"));
    json_decref(out);
    return t != NULL ? t : json_array();
}

static int run_list(sluice_client *c, const struct cli_call *call)
{
    const struct rule_args *a = call->args;
    json_t *all = json_array();
    const char *token = NULL;
    json_t *page = NULL;
    int ec = all != NULL ? CLI_EXIT_OK : CLI_EXIT_ERR;
    do { /* ListRules pages by NextToken */
        json_t *in = json_pack("{s:s}", "EventBusName", bus_of(a));
        if (in != NULL && a->prefix != NULL) {
            json_object_set_new(in, "NamePrefix", json_string(a->prefix));
        }
        if (in != NULL && token != NULL) {
            json_object_set_new(in, "NextToken", json_string(token));
        }
        json_decref(page);
        page = NULL;
        ec = events_call(c, "rule list", "ListRules", in, &page);
        if (ec != CLI_EXIT_OK) {
            break;
        }
        json_array_extend(all, json_object_get(page, "Rules"));
        token = json_string_value(json_object_get(page, "NextToken"));
    } while (token != NULL && token[0] != '\0');
    json_decref(page);
    size_t i;
    json_t *r;
    json_array_foreach(all, i, r)
    {
        if (ec != CLI_EXIT_OK) {
            break;
        }
        json_t *t =
            targets_of(c, "rule list", bus_of(a), json_string_value(json_object_get(r, "Name")));
        if (t == NULL) {
            ec = CLI_EXIT_ERR;
            break;
        }
        json_object_set_new(r, "Targets", t);
    }
    if (ec == CLI_EXIT_OK && a->json) {
        cli_print_json(all);
    } else if (ec == CLI_EXIT_OK) {
        printf("%-24s %-9s %-40s %s\n", "RULE", "STATE", "PATTERN", "TARGETS");
        json_array_foreach(all, i, r)
        {
            const char *pat = json_string_value(json_object_get(r, "EventPattern"));
            printf("%-24s %-9s %-40s", json_string_value(json_object_get(r, "Name")),
                   json_string_value(json_object_get(r, "State")), pat != NULL ? pat : "");
            size_t k;
            json_t *t;
            json_array_foreach(json_object_get(r, "Targets"), k, t)
            {
                printf("%s%s", k == 0 ? " " : ", ", json_string_value(json_object_get(t, "Arn")));
            }
            printf("\n");
        }
    }
    json_decref(all);
    return ec != CLI_EXIT_OK ? ec : ferror(stdout) ? CLI_EXIT_ERR : CLI_EXIT_OK;
}

/* ---- rule delete ---- */

static const struct cli_opt delete_opts[] = {OPT_BUS, {.name = NULL}};

static int run_delete(sluice_client *c, const struct cli_call *call)
{
    const struct rule_args *a = call->args;
    const char *name = call->operands[0];
    json_t *targets = targets_of(c, "rule delete", bus_of(a), name);
    if (targets == NULL) {
        return CLI_EXIT_ERR;
    }
    int ec = CLI_EXIT_OK;
    if (json_array_size(targets) > 0) {
        json_t *ids = json_array();
        size_t i;
        json_t *t;
        json_array_foreach(targets, i, t)
        {
            json_array_append(ids, json_object_get(t, "Id"));
        }
        json_t *in =
            json_pack("{s:s,s:s,s:o}", "Rule", name, "EventBusName", bus_of(a), "Ids", ids);
        ec = events_call(c, "rule delete", "RemoveTargets", in, NULL);
    }
    size_t n_targets = json_array_size(targets);
    json_decref(targets);
    if (ec != CLI_EXIT_OK) {
        return ec;
    }
    json_t *in = json_pack("{s:s,s:s}", "Name", name, "EventBusName", bus_of(a));
    ec = events_call(c, "rule delete", "DeleteRule", in, NULL);
    if (ec == CLI_EXIT_OK) {
        printf("rule %s deleted from bus %s (%zu target%s removed)\n", name, bus_of(a), n_targets,
               n_targets == 1 ? "" : "s");
    }
    return ec;
}

/* ---- buses ---- */

static int run_bus_create(sluice_client *c, const struct cli_call *call)
{
    json_t *in = json_pack("{s:s}", "Name", call->operands[0]);
    json_t *out = NULL;
    int ec = events_call(c, "bus create", "CreateEventBus", in, &out);
    if (ec == CLI_EXIT_OK) {
        printf("bus %s (stream eb.%s): %s\n", call->operands[0], call->operands[0],
               json_string_value(json_object_get(out, "EventBusArn")));
    }
    json_decref(out);
    return ec;
}

static const struct cli_opt bus_list_opts[] = {
    OPT_JSON("one JSON array: the buses as ListEventBuses answers them"),
    {.name = NULL},
};

static int run_bus_list(sluice_client *c, const struct cli_call *call)
{
    const struct rule_args *a = call->args;
    json_t *in = json_object();
    json_t *out = NULL;
    int ec = events_call(c, "bus list", "ListEventBuses", in, &out);
    if (ec != CLI_EXIT_OK) {
        return ec;
    }
    json_t *list = json_object_get(out, "EventBuses");
    if (a->json) {
        cli_print_json(list != NULL ? list : json_array());
    } else {
        size_t i;
        json_t *b;
        json_array_foreach(list, i, b)
        {
            printf("%s\n", json_string_value(json_object_get(b, "Name")));
        }
    }
    json_decref(out);
    return ferror(stdout) ? CLI_EXIT_ERR : CLI_EXIT_OK;
}

static int run_bus_delete(sluice_client *c, const struct cli_call *call)
{
    json_t *in = json_pack("{s:s}", "Name", call->operands[0]);
    int ec = events_call(c, "bus delete", "DeleteEventBus", in, NULL);
    if (ec == CLI_EXIT_OK) {
        printf("bus %s deleted\n", call->operands[0]);
    }
    return ec;
}

/* ---- archives ---- */

static const struct cli_opt archive_create_opts[] = {
    OPT_BUS,
    {.name = "days",
     .kind = CLI_OPT_U32,
     .offset = offsetof(struct rule_args, days),
     .value_name = "N",
     .help = "keep the bus's events N days (0: the bus stream's own retention)",
     .max = 365},
    {.name = "pattern",
     .kind = CLI_OPT_STRING,
     .offset = offsetof(struct rule_args, pattern),
     .value_name = "JSON",
     .help = "archive only the events matching this pattern",
     .max = TEXT_MAX_LEN},
    {.name = NULL},
};

static int run_archive_create(sluice_client *c, const struct cli_call *call)
{
    const struct rule_args *a = call->args;
    char src[256];
    snprintf(src, sizeof(src), ARN_ACCOUNT "event-bus/%s", bus_of(a));
    json_t *in = json_pack("{s:s,s:s,s:I}", "ArchiveName", call->operands[0], "EventSourceArn", src,
                           "RetentionDays", (json_int_t)a->days);
    if (in != NULL && a->pattern != NULL) {
        json_object_set_new(in, "EventPattern", json_string(a->pattern));
    }
    json_t *out = NULL;
    int ec = events_call(c, "archive create", "CreateArchive", in, &out);
    if (ec == CLI_EXIT_OK) {
        printf("archive %s of bus %s: %s\n", call->operands[0], bus_of(a),
               json_string_value(json_object_get(out, "State")));
    }
    json_decref(out);
    return ec;
}

static const struct cli_opt archive_list_opts[] = {
    OPT_BUS,
    OPT_JSON("one JSON array: the archives as ListArchives answers them"),
    {.name = NULL},
};

/* The bus's archives (ListArchives by EventSourceArn), or NULL after printing the error. */
static json_t *archives_of(sluice_client *c, const char *what, const char *bus)
{
    char src[256];
    snprintf(src, sizeof(src), ARN_ACCOUNT "event-bus/%s", bus);
    json_t *in = json_pack("{s:s}", "EventSourceArn", src);
    json_t *out = NULL;
    int ec = events_call(c, what, "ListArchives", in, &out);
    if (ec != CLI_EXIT_OK) {
        return NULL;
    }
    json_t *list = json_incref(json_object_get(out, "Archives"));
    json_decref(out);
    return list != NULL ? list : json_array();
}

static int run_archive_list(sluice_client *c, const struct cli_call *call)
{
    const struct rule_args *a = call->args;
    json_t *list = archives_of(c, "archive list", bus_of(a));
    if (list == NULL) {
        return CLI_EXIT_ERR;
    }
    if (a->json) {
        cli_print_json(list);
    } else {
        printf("%-24s %-10s %-6s %s\n", "ARCHIVE", "STATE", "DAYS", "EVENTS");
        size_t i;
        json_t *r;
        json_array_foreach(list, i, r)
        {
            printf("%-24s %-10s %-6" JSON_INTEGER_FORMAT " %" JSON_INTEGER_FORMAT "\n",
                   json_string_value(json_object_get(r, "ArchiveName")),
                   json_string_value(json_object_get(r, "State")),
                   json_integer_value(json_object_get(r, "RetentionDays")),
                   json_integer_value(json_object_get(r, "EventCount")));
        }
    }
    json_decref(list);
    return ferror(stdout) ? CLI_EXIT_ERR : CLI_EXIT_OK;
}

static int run_archive_delete(sluice_client *c, const struct cli_call *call)
{
    json_t *in = json_pack("{s:s}", "ArchiveName", call->operands[0]);
    int ec = events_call(c, "archive delete", "DeleteArchive", in, NULL);
    if (ec == CLI_EXIT_OK) {
        printf("archive %s deleted\n", call->operands[0]);
    }
    return ec;
}

/* ---- replays ---- */

static const struct cli_opt replay_start_opts[] = {
    {.name = "name",
     .kind = CLI_OPT_STRING,
     .offset = offsetof(struct rule_args, name),
     .value_name = "NAME",
     .help = "the replay's name (default: BUS-<start time in seconds>)",
     .max = NAME_MAX_LEN},
    {.name = "from",
     .kind = CLI_OPT_STRING,
     .offset = offsetof(struct rule_args, from),
     .value_name = "TIME",
     .help = "the first event time replayed (ISO-8601, e.g. 2026-12-06T10:00:00Z)",
     .max = 64,
     .flags = CLI_OPT_REQUIRED},
    {.name = "to",
     .kind = CLI_OPT_STRING,
     .offset = offsetof(struct rule_args, to),
     .value_name = "TIME",
     .help = "the end (excluded; ISO-8601, or now)",
     .max = 64,
     .flags = CLI_OPT_REQUIRED},
    {.name = "rule",
     .kind = CLI_OPT_CUSTOM,
     .offset = offsetof(struct rule_args, rules),
     .value_name = "RULE",
     .help = "replay to this rule's targets only (repeatable; default: every rule of the bus)",
     .parse = parse_rule},
    {.name = "archive",
     .kind = CLI_OPT_STRING,
     .offset = offsetof(struct rule_args, archive),
     .value_name = "A",
     .help = "the archive replayed (default: the bus's only archive)",
     .max = NAME_MAX_LEN},
    {.name = NULL},
};

static int time_arg(const struct cli_cmd *cmd, const char *opt, const char *s, uint64_t *ms)
{
    if (strcmp(s, "now") == 0) {
        *ms = (uint64_t)time(NULL) * 1000u;
        return CLI_EXIT_OK;
    }
    if (sl_time_parse_iso8601(s, ms) != 0) {
        return cli_usage(cmd, "--%s: '%s' is not an ISO-8601 time (2026-12-06T10:00:00Z) or now",
                         opt, s);
    }
    return CLI_EXIT_OK;
}

static int run_replay_start(sluice_client *c, const struct cli_call *call)
{
    const struct rule_args *a = call->args;
    const char *bus = call->operands[0];
    uint64_t from = 0, to = 0;
    int ec = time_arg(call->cmd, "from", a->from, &from);
    if (ec == CLI_EXIT_OK) {
        ec = time_arg(call->cmd, "to", a->to, &to);
    }
    if (ec != CLI_EXIT_OK) {
        return ec;
    }
    if (from >= to) {
        return cli_usage(call->cmd, "--from must be before --to");
    }
    char archive[NAME_MAX_LEN + 1];
    if (a->archive != NULL) {
        snprintf(archive, sizeof(archive), "%s", a->archive);
    } else {
        json_t *list = archives_of(c, "replay start", bus);
        if (list == NULL) {
            return CLI_EXIT_ERR;
        }
        size_t n = json_array_size(list);
        if (n != 1) {
            fprintf(stderr, "sluice replay start: bus %s has %zu archives: %s\n", bus, n,
                    n == 0 ? "create one first (sluice archive create NAME --bus BUS); a replay "
                             "re-delivers archived events"
                           : "name one with --archive");
            json_decref(list);
            return CLI_EXIT_ERR;
        }
        snprintf(archive, sizeof(archive), "%s",
                 json_string_value(json_object_get(json_array_get(list, 0), "ArchiveName")));
        json_decref(list);
    }
    char src[256], dst[256];
    snprintf(src, sizeof(src), ARN_ACCOUNT "archive/%s", archive);
    snprintf(dst, sizeof(dst), ARN_ACCOUNT "event-bus/%s", bus);
    json_t *dest = json_pack("{s:s}", "Arn", dst);
    if (dest != NULL && a->rules.n > 0) {
        json_t *fa = json_array();
        for (uint32_t i = 0; fa != NULL && i < a->rules.n; i++) {
            char arn[512];
            snprintf(arn, sizeof(arn), ARN_ACCOUNT "rule/%s/%s", bus, a->rules.v[i]);
            json_array_append_new(fa, json_string(arn));
        }
        json_object_set_new(dest, "FilterArns", fa);
    }
    char name[NAME_MAX_LEN + 1];
    if (a->name != NULL) {
        snprintf(name, sizeof(name), "%s", a->name);
    } else {
        snprintf(name, sizeof(name), "%.40s-%" PRIu64, bus, (uint64_t)time(NULL));
    }
    json_t *in = json_pack("{s:s,s:s,s:f,s:f,s:o*}", "ReplayName", name, "EventSourceArn", src,
                           "EventStartTime", (double)from / 1000.0, "EventEndTime",
                           (double)to / 1000.0, "Destination", dest);
    json_t *out = NULL;
    ec = events_call(c, "replay start", "StartReplay", in, &out);
    if (ec == CLI_EXIT_OK) {
        printf("replay %s of archive %s: %s\n", name, archive,
               json_string_value(json_object_get(out, "State")));
    }
    json_decref(out);
    return ec;
}

static const struct cli_opt replay_describe_opts[] = {
    OPT_JSON("one JSON object, as DescribeReplay answers it"),
    {.name = NULL},
};

static void print_time(const char *label, const json_t *secs)
{
    if (!json_is_number(secs)) {
        return;
    }
    char t[SL_ISOTIME_FORMAT_MAX];
    sl_time_format_iso8601((uint64_t)(json_number_value(secs) * 1000.0 + 0.5), false, t);
    printf("%-14s %s\n", label, t);
}

static int run_replay_describe(sluice_client *c, const struct cli_call *call)
{
    const struct rule_args *a = call->args;
    json_t *in = json_pack("{s:s}", "ReplayName", call->operands[0]);
    json_t *out = NULL;
    int ec = events_call(c, "replay describe", "DescribeReplay", in, &out);
    if (ec != CLI_EXIT_OK) {
        return ec;
    }
    if (a->json) {
        cli_print_json(out);
    } else {
        const char *reason = json_string_value(json_object_get(out, "StateReason"));
        printf("%-14s %s\n", "replay", json_string_value(json_object_get(out, "ReplayName")));
        printf("%-14s %s%s%s\n", "state", json_string_value(json_object_get(out, "State")),
               reason != NULL ? ": " : "", reason != NULL ? reason : "");
        printf("%-14s %s\n", "archive", json_string_value(json_object_get(out, "EventSourceArn")));
        print_time("from", json_object_get(out, "EventStartTime"));
        print_time("to", json_object_get(out, "EventEndTime"));
        print_time("replayed to", json_object_get(out, "EventLastReplayedTime"));
        print_time("started", json_object_get(out, "ReplayStartTime"));
        print_time("ended", json_object_get(out, "ReplayEndTime"));
    }
    json_decref(out);
    return ferror(stdout) ? CLI_EXIT_ERR : CLI_EXIT_OK;
}

static int run_replay_cancel(sluice_client *c, const struct cli_call *call)
{
    json_t *in = json_pack("{s:s}", "ReplayName", call->operands[0]);
    json_t *out = NULL;
    int ec = events_call(c, "replay cancel", "CancelReplay", in, &out);
    if (ec == CLI_EXIT_OK) {
        printf("replay %s: %s\n", call->operands[0],
               json_string_value(json_object_get(out, "State")));
    }
    json_decref(out);
    return ec;
}

static const struct cli_opt replay_list_opts[] = {
    OPT_JSON("one JSON array: the replays as ListReplays answers them"),
    {.name = NULL},
};

static int run_replay_list(sluice_client *c, const struct cli_call *call)
{
    const struct rule_args *a = call->args;
    json_t *in = json_object();
    json_t *out = NULL;
    int ec = events_call(c, "replay list", "ListReplays", in, &out);
    if (ec != CLI_EXIT_OK) {
        return ec;
    }
    json_t *list = json_object_get(out, "Replays");
    if (a->json) {
        cli_print_json(list != NULL ? list : json_array());
    } else {
        printf("%-24s %-11s %s\n", "REPLAY", "STATE", "ARCHIVE");
        size_t i;
        json_t *r;
        json_array_foreach(list, i, r)
        {
            printf("%-24s %-11s %s\n", json_string_value(json_object_get(r, "ReplayName")),
                   json_string_value(json_object_get(r, "State")),
                   json_string_value(json_object_get(r, "EventSourceArn")));
        }
    }
    json_decref(out);
    return ferror(stdout) ? CLI_EXIT_ERR : CLI_EXIT_OK;
}

#define EVENTS_HELP_TAIL                                                                           \
    "Runs the broker's EventBridge API over the native connection (the broker needs its\n"         \
    "HTTP listener, http_port): the same rules awscli's `aws events` sees.\n"

const struct cli_cmd cli_cmd_rule_put = {
    .name = "rule put",
    .operands = "NAME",
    .summary = "create or replace a rule: an event pattern on a bus and its targets",
    .help = "Matches the bus's events (their JSON) against --pattern, as EventBridge does,\n"
            "and delivers each match to every --target (at least once, with retries, then\n"
            "the rule's dead-letter stream). Put again to change the pattern; given targets\n"
            "replace t1..tN.\n" EVENTS_HELP_TAIL,
    .sets = {{put_opts, 0, "options"}},
    .args_size = sizeof(struct rule_args),
    .run = run_put,
};

const struct cli_cmd cli_cmd_rule_list = {
    .name = "rule list",
    .operands = "",
    .summary = "the rules of a bus with their patterns and targets",
    .help = EVENTS_HELP_TAIL,
    .sets = {{list_opts, 0, "options"}},
    .args_size = sizeof(struct rule_args),
    .run = run_list,
};

const struct cli_cmd cli_cmd_rule_delete = {
    .name = "rule delete",
    .operands = "NAME",
    .summary = "remove a rule's targets, then the rule",
    .help = EVENTS_HELP_TAIL,
    .sets = {{delete_opts, 0, "options"}},
    .args_size = sizeof(struct rule_args),
    .run = run_delete,
};

const struct cli_cmd cli_cmd_bus_create = {
    .name = "bus create",
    .operands = "NAME",
    .summary = "create an event bus (the stream eb.NAME)",
    .help = EVENTS_HELP_TAIL,
    .args_size = sizeof(struct rule_args),
    .run = run_bus_create,
};

const struct cli_cmd cli_cmd_bus_list = {
    .name = "bus list",
    .operands = "",
    .summary = "the event buses",
    .help = EVENTS_HELP_TAIL,
    .sets = {{bus_list_opts, 0, "options"}},
    .args_size = sizeof(struct rule_args),
    .run = run_bus_list,
};

const struct cli_cmd cli_cmd_bus_delete = {
    .name = "bus delete",
    .operands = "NAME",
    .summary = "delete an event bus (its rules must be deleted first)",
    .help = EVENTS_HELP_TAIL,
    .args_size = sizeof(struct rule_args),
    .run = run_bus_delete,
};

const struct cli_cmd cli_cmd_archive_create = {
    .name = "archive create",
    .operands = "NAME",
    .summary = "keep a bus's events for replays",
    .help = EVENTS_HELP_TAIL,
    .sets = {{archive_create_opts, 0, "options"}},
    .args_size = sizeof(struct rule_args),
    .run = run_archive_create,
};

const struct cli_cmd cli_cmd_archive_list = {
    .name = "archive list",
    .operands = "",
    .summary = "the archives of a bus",
    .help = EVENTS_HELP_TAIL,
    .sets = {{archive_list_opts, 0, "options"}},
    .args_size = sizeof(struct rule_args),
    .run = run_archive_list,
};

const struct cli_cmd cli_cmd_archive_delete = {
    .name = "archive delete",
    .operands = "NAME",
    .summary = "delete an archive (the bus's events stay as its stream's retention says)",
    .help = EVENTS_HELP_TAIL,
    .args_size = sizeof(struct rule_args),
    .run = run_archive_delete,
};

const struct cli_cmd cli_cmd_replay_start = {
    .name = "replay start",
    .operands = "BUS",
    .summary = "re-deliver a time range of a bus's archive to its rules' targets",
    .help = "The live rules are not disturbed: the replay reads the archive with temporary\n"
            "groups of its own and delivers [--from, --to) to the targets of the rules named\n"
            "by --rule (all the bus's rules by default). Follow it with `replay "
            "describe`.\n" EVENTS_HELP_TAIL,
    .sets = {{replay_start_opts, 0, "options"}},
    .args_size = sizeof(struct rule_args),
    .run = run_replay_start,
};

const struct cli_cmd cli_cmd_replay_describe = {
    .name = "replay describe",
    .operands = "NAME",
    .summary = "a replay's state and progress",
    .help = EVENTS_HELP_TAIL,
    .sets = {{replay_describe_opts, 0, "options"}},
    .args_size = sizeof(struct rule_args),
    .run = run_replay_describe,
};

const struct cli_cmd cli_cmd_replay_cancel = {
    .name = "replay cancel",
    .operands = "NAME",
    .summary = "stop a replay (what was delivered stays delivered)",
    .help = EVENTS_HELP_TAIL,
    .args_size = sizeof(struct rule_args),
    .run = run_replay_cancel,
};

const struct cli_cmd cli_cmd_replay_list = {
    .name = "replay list",
    .operands = "",
    .summary = "the replays, running and recent",
    .help = EVENTS_HELP_TAIL,
    .sets = {{replay_list_opts, 0, "options"}},
    .args_size = sizeof(struct rule_args),
    .run = run_replay_list,
};
