/* group.c - queue groups made from the CLI (group.h): the shared option table, the
 * stream a queue needs, and the create call with its messages. */
#include "client/cli/group.h"

#include "client/cli/cli.h"
#include "client/cli/output.h"

#include <jansson.h>

#include <stddef.h>
#include <stdio.h>
#include <string.h>

/* --filter: the broker checks the pattern; here only that it is a JSON object. */
static int parse_filter(const char *s, void *dst, char *why, size_t cap)
{
    json_error_t jerr;
    json_t *doc = json_loads(s, 0, &jerr);
    int ok = json_is_object(doc);
    json_decref(doc);
    if (!ok) {
        snprintf(why, cap, "'%s' is not a JSON object", s);
        return -1;
    }
    *(const char **)dst = s;
    return 0;
}

/* --filter-scope: what the pattern reads. */
static int parse_scope(const char *s, void *dst, char *why, size_t cap)
{
    if (strcmp(s, "body") != 0 && strcmp(s, "attributes") != 0) {
        snprintf(why, cap, "'%s' is not attributes or body", s);
        return -1;
    }
    *(int *)dst = strcmp(s, "body") == 0;
    return 0;
}

/* --from: where a new group starts; sequences are per shard, so not those. */
static int parse_start(const char *s, void *dst, char *why, size_t cap)
{
    struct sluice_position *p = dst;
    if (sluice_position_parse(s, p) != SL_OK ||
        (p->kind != SLUICE_TRIM_HORIZON && p->kind != SLUICE_LATEST &&
         p->kind != SLUICE_AT_TIMESTAMP)) {
        snprintf(why, cap, "'%s' is not oldest, latest or time:ISO8601", s);
        return -1;
    }
    return 0;
}

const struct cli_opt cli_group_opts[] = {
    {.name = "visibility",
     .kind = CLI_OPT_DURATION,
     .offset = offsetof(struct sluice_queue_group_opts, visibility_timeout_ms),
     .value_name = "S",
     .help = "default visibility timeout in seconds (default 30)",
     .min = 1},
    {.name = "max-deliveries",
     .kind = CLI_OPT_U32,
     .offset = offsetof(struct sluice_queue_group_opts, max_deliveries),
     .value_name = "N",
     .help = "dead-letter a message after N deliveries (default: never)"},
    {.name = "dead-letter",
     .kind = CLI_OPT_STRING,
     .offset = offsetof(struct sluice_queue_group_opts, dead_letter_stream),
     .value_name = "STREAM",
     .help = "where (default NAME.GROUP.dlq)",
     .min = 1},
    {.name = "ordered",
     .kind = CLI_OPT_FLAG,
     .offset = offsetof(struct sluice_queue_group_opts, ordered),
     .help = "one message per key at a time, in order"},
    {.name = "filter",
     .kind = CLI_OPT_CUSTOM,
     .offset = offsetof(struct sluice_queue_group_opts, filter),
     .value_name = "JSON",
     .help = "deliver only messages that match this EventBridge-style pattern,\n"
             "e.g. '{\"type\":[\"order\"],\"region\":[{\"prefix\":\"eu-\"}]}'",
     .parse = parse_filter},
    {.name = "filter-scope",
     .kind = CLI_OPT_CUSTOM,
     .offset = offsetof(struct sluice_queue_group_opts, filter_body),
     .value_name = "attributes|body",
     .help = "what --filter reads: the attributes (default) or the value as JSON,\n"
             "with nested fields: '{\"detail\":{\"state\":[\"shipped\"]}}'",
     .parse = parse_scope},
    {.name = "from",
     .kind = CLI_OPT_CUSTOM,
     .offset = offsetof(struct sluice_queue_group_opts, start),
     .value_name = "POS",
     .help = "where the group starts: oldest | latest | time:ISO8601",
     .parse = parse_start},
    {.name = "max-inflight",
     .kind = CLI_OPT_U32,
     .offset = offsetof(struct sluice_queue_group_opts, max_inflight),
     .value_name = "N",
     .help = "leased messages at most (default: the broker's)"},
    {.name = NULL},
};

int cli_group_stream_ensure(sluice_client *c, const char *name, uint32_t shards, int have_shards,
                            int must_create, const char *what)
{
    struct sluice_stream_opts so = {.shard_count = shards};
    struct sluice_stream_info *info = NULL;
    int rc = sluice_stream_create(c, name, &so, &info);
    if (rc == SL_OK) {
        fprintf(stderr, "created stream %s: %u shards\n", info->name, info->shard_count);
        sluice_stream_info_free(info);
        return CLI_EXIT_OK;
    }
    if (rc != SL_EEXIST || must_create) {
        return cli_broker_error(what, rc);
    }
    rc = sluice_stream_describe(c, name, &info);
    if (rc != SL_OK) {
        return cli_broker_error(what, rc);
    }
    if (have_shards && info->shard_count != shards) {
        fprintf(stderr, "sluice: stream %s exists with %u shards (not %u); using it\n", name,
                info->shard_count, shards);
    }
    sluice_stream_info_free(info);
    return CLI_EXIT_OK;
}

int cli_group_create(sluice_client *c, const char *stream, const char *group,
                     const struct sluice_queue_group_opts *o, int is_topic)
{
    const char *what = is_topic ? "topic subscribe" : "queue create";
    const char *noun = is_topic ? "subscription" : "queue group";
    int rc = sluice_queue_group_create(c, stream, group, o);
    if (rc == SL_ENOTFOUND && is_topic) {
        fprintf(stderr, "sluice: topic subscribe: %s (create it: sluice topic create %s)\n",
                sluice_last_error(), stream);
        return CLI_EXIT_ERR;
    }
    if (rc == SL_EEXIST) {
        fprintf(stderr, "sluice: %s: %s %s already exists on %s\n", what, noun, group, stream);
        return CLI_EXIT_ERR;
    }
    if (rc != SL_OK) {
        return cli_broker_error(what, rc);
    }
    char pos[64];
    fprintf(stderr, "created %s %s on %s: start %s%s%s\n", noun, group, stream,
            cli_fmt_position(&o->start, pos, sizeof(pos)), o->filter != NULL ? ", filter " : "",
            o->filter != NULL ? o->filter : "");
    return CLI_EXIT_OK;
}
