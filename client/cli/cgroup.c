/* cgroup.c - `sluice group describe` (a stream consumer group's members, the shards each
 * reads, lag per shard, the generation) and `sluice group reset` (move the group's
 * checkpoints: refused while members are active unless --force). */
#include "client/cli/cli.h"
#include "client/cli/output.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct describe_args {
    const char *stream;
    int json;
};

struct reset_args {
    const char *stream;
    struct sluice_position to;
    int force;
};

static int parse_to(const char *s, void *dst, char *why, size_t cap)
{
    if (sluice_position_parse(s, dst) != SL_OK) {
        snprintf(why, cap,
                 "'%s' is not a position (oldest, latest, seq:N, after:N, time:ISO8601, "
                 "time:MS)",
                 s);
        return -1;
    }
    return 0;
}

static const struct cli_opt describe_opts[] = {
    {.name = "stream",
     .kind = CLI_OPT_STRING,
     .offset = offsetof(struct describe_args, stream),
     .value_name = "S",
     .help = "the stream the group reads",
     .flags = CLI_OPT_REQUIRED},
    {.name = "json",
     .kind = CLI_OPT_FLAG,
     .offset = offsetof(struct describe_args, json),
     .help = "one JSON object: generation, members, shards"},
    {.name = NULL},
};

static const struct cli_opt reset_opts[] = {
    {.name = "stream",
     .kind = CLI_OPT_STRING,
     .offset = offsetof(struct reset_args, stream),
     .value_name = "S",
     .help = "the stream the group reads",
     .flags = CLI_OPT_REQUIRED},
    {.name = "to",
     .kind = CLI_OPT_CUSTOM,
     .offset = offsetof(struct reset_args, to),
     .value_name = "POS",
     .help = "oldest | latest | seq:N | after:N | time:ISO8601 | time:MS",
     .parse = parse_to,
     .flags = CLI_OPT_REQUIRED},
    {.name = "force",
     .kind = CLI_OPT_FLAG,
     .offset = offsetof(struct reset_args, force),
     .help = "also while members are active: they are removed, rejoin and\n"
             "resume from the new checkpoints"},
    {.name = NULL},
};

/* The member reading `shard`, or NULL. */
static const struct sluice_group_member *holder(const struct sluice_group_info *g, uint32_t shard)
{
    for (size_t i = 0; i < g->members_len; i++) {
        for (size_t k = 0; k < g->members[i].shards_len; k++) {
            if (g->members[i].shards[k] == shard) {
                return &g->members[i];
            }
        }
    }
    return NULL;
}

static json_t *describe_json(const struct sluice_group_info *g, const struct sluice_shard_lag *lag,
                             size_t n)
{
    json_t *members = json_array();
    for (size_t i = 0; i < g->members_len; i++) {
        const struct sluice_group_member *m = &g->members[i];
        json_t *shards = json_array();
        for (size_t k = 0; k < m->shards_len; k++) {
            json_array_append_new(shards, json_integer(m->shards[k]));
        }
        json_array_append_new(members, json_pack("{s:s, s:s, s:I, s:o}", "member_id",
                                                 m->member_id, "instance_id", m->instance_id,
                                                 "idle_ms", (json_int_t)m->idle_ms, "shards",
                                                 shards));
    }
    json_t *shards = json_array();
    for (size_t i = 0; i < n; i++) {
        const struct sluice_group_member *m = holder(g, lag[i].shard);
        json_array_append_new(
            shards, json_pack("{s:I, s:s?, s:I, s:I, s:I, s:I}", "shard", (json_int_t)lag[i].shard,
                              "member_id", m != NULL ? m->member_id : NULL, "checkpoint",
                              (json_int_t)lag[i].checkpoint, "tail", (json_int_t)lag[i].tail_seq,
                              "records_behind", (json_int_t)lag[i].records_behind, "ms_behind",
                              (json_int_t)lag[i].ms_behind));
    }
    return json_pack("{s:I, s:o, s:o}", "generation", (json_int_t)g->generation, "members",
                     members, "shards", shards);
}

static int run_describe(sluice_client *c, const struct cli_call *call)
{
    const struct describe_args *a = call->args;
    const char *group = call->operands[0];
    struct sluice_group_info *g = NULL;
    int rc = sluice_group_describe(c, a->stream, group, &g);
    if (rc != SL_OK) {
        return cli_broker_error("group describe", rc);
    }
    struct sluice_shard_lag *lag = NULL;
    size_t n = 0;
    rc = sluice_group_lag(c, group, a->stream, &lag, &n);
    if (rc != SL_OK) {
        sluice_group_info_free(g);
        return cli_broker_error("group describe", rc);
    }
    if (a->json) {
        json_t *j = describe_json(g, lag, n);
        cli_print_json(j);
        json_decref(j);
    } else {
        printf("group %s on stream %s: %zu active member%s, generation %" PRIu64 "\n", group,
               a->stream, g->members_len, g->members_len == 1 ? "" : "s", g->generation);
        if (g->members_len > 0) {
            printf("%-44s  %-24s  %8s  %s\n", "MEMBER", "INSTANCE", "IDLE_MS", "SHARDS");
        }
        for (size_t i = 0; i < g->members_len; i++) {
            const struct sluice_group_member *m = &g->members[i];
            printf("%-44s  %-24s  %8" PRIu64 "  ", m->member_id,
                   m->instance_id[0] != '\0' ? m->instance_id : "-", m->idle_ms);
            for (size_t k = 0; k < m->shards_len; k++) {
                printf("%s%u", k == 0 ? "" : ",", m->shards[k]);
            }
            printf("%s\n", m->shards_len == 0 ? "-" : "");
        }
        printf("%5s  %-44s  %12s  %12s  %14s  %12s\n", "SHARD", "MEMBER", "CHECKPOINT", "TAIL",
               "RECORDS_BEHIND", "MS_BEHIND");
        for (size_t i = 0; i < n; i++) {
            const struct sluice_group_member *m = holder(g, lag[i].shard);
            printf("%5u  %-44s  %12" PRIu64 "  %12" PRIu64 "  %14" PRIu64 "  %12" PRIu64 "\n",
                   lag[i].shard, m != NULL ? m->member_id : "-", lag[i].checkpoint,
                   lag[i].tail_seq, lag[i].records_behind, lag[i].ms_behind);
        }
    }
    free(lag);
    sluice_group_info_free(g);
    return CLI_EXIT_OK;
}

static int run_reset(sluice_client *c, const struct cli_call *call)
{
    const struct reset_args *a = call->args;
    const char *group = call->operands[0];
    int rc = sluice_group_reset(c, a->stream, group, &a->to, a->force);
    if (rc != SL_OK) {
        return cli_broker_error("group reset", rc);
    }
    fprintf(stderr, "group %s on stream %s: checkpoints reset\n", group, a->stream);
    return CLI_EXIT_OK;
}

const struct cli_cmd cli_cmd_group_describe = {
    .name = "group describe",
    .operands = "GROUP",
    .summary = "a consumer group's members, their shards, lag and generation",
    .help = "The members reading the stream now (from `sluice consume --group` or libsluice\n"
            "consumers), the shards each holds, then per shard its reader, the group's\n"
            "checkpoint, the tail and the lag.\n",
    .sets = {{describe_opts, 0, "options"}},
    .args_size = sizeof(struct describe_args),
    .run = run_describe,
};

const struct cli_cmd cli_cmd_group_reset = {
    .name = "group reset",
    .operands = "GROUP",
    .summary = "move a consumer group's checkpoints (replay, or skip ahead)",
    .help = "Sets every shard's checkpoint of the group to --to (backwards too). Refused\n"
            "while the group has active members, unless --force.\n",
    .sets = {{reset_opts, 0, "options"}},
    .args_size = sizeof(struct reset_args),
    .run = run_reset,
};
