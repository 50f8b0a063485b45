/* topic.c - `sluice topic create|subscribe|subscriptions|unsubscribe`: a topic is a stream,
 * a subscription a queue group on it (read with `sluice queue receive TOPIC --group SUB`).
 * `topic publish` is in produce.c.
 */
#include "client/cli/cli.h"
#include "client/cli/group.h"
#include "client/cli/output.h"

#include <stdio.h>

struct topic_args {
    uint32_t shards;
    int json;
    struct sluice_queue_group_opts o;
};

static const struct cli_opt create_opts[] = {
    {.name = "shards",
     .kind = CLI_OPT_U32,
     .offset = offsetof(struct topic_args, shards),
     .value_name = "N",
     .help = "shards of the stream (default 1)",
     .min = 1},
    {.name = NULL},
};

static const struct cli_opt list_opts[] = {
    {.name = "json",
     .kind = CLI_OPT_FLAG,
     .offset = offsetof(struct topic_args, json),
     .help = "one JSON array of names"},
    {.name = NULL},
};

static void init_topic(void *args)
{
    struct topic_args *t = args;
    t->shards = 1;
    t->o.start.kind = SLUICE_LATEST;
}

static int run_create(sluice_client *c, const struct cli_call *call)
{
    const struct topic_args *t = call->args;
    return cli_group_stream_ensure(c, call->operands[0], t->shards, 1, 1, "topic create");
}

static int run_subscribe(sluice_client *c, const struct cli_call *call)
{
    const struct topic_args *t = call->args;
    return cli_group_create(c, call->operands[0], call->operands[1], &t->o, 1);
}

static int run_subscriptions(sluice_client *c, const struct cli_call *call)
{
    const struct topic_args *t = call->args;
    char **groups = NULL;
    size_t n = 0;
    int rc = sluice_queue_groups_list(c, call->operands[0], &groups, &n);
    if (rc != SL_OK) {
        return cli_broker_error("topic subscriptions", rc);
    }
    json_t *arr = t->json ? json_array() : NULL;
    for (size_t i = 0; i < n; i++) {
        if (arr != NULL) {
            json_array_append_new(arr, json_string(groups[i]));
        } else {
            printf("%s\n", groups[i]);
        }
    }
    if (arr != NULL) {
        cli_print_json(arr);
        json_decref(arr);
    }
    sluice_groups_free(groups, n);
    return ferror(stdout) ? CLI_EXIT_ERR : CLI_EXIT_OK;
}

static int run_unsubscribe(sluice_client *c, const struct cli_call *call)
{
    const char *topic = call->operands[0], *sub = call->operands[1];
    int rc = sluice_queue_group_delete(c, topic, sub);
    if (rc != SL_OK) {
        return cli_broker_error("topic unsubscribe", rc);
    }
    fprintf(stderr, "deleted subscription %s of %s\n", sub, topic);
    return CLI_EXIT_OK;
}

const struct cli_cmd cli_cmd_topic_create = {
    .name = "topic create",
    .operands = "NAME",
    .summary = "create the topic's stream",
    .sets = {{create_opts, 0, "options"}},
    .args_size = sizeof(struct topic_args),
    .init = init_topic,
    .run = run_create,
};

const struct cli_cmd cli_cmd_topic_subscribe = {
    .name = "topic subscribe",
    .operands = "TOPIC SUB",
    .summary = "subscribe SUB to TOPIC: a queue group, optionally filtered",
    .help = "The subscription starts at --from (default latest here) and delivers the\n"
            "messages that match --filter, if given.\n",
    .sets = {{cli_group_opts, offsetof(struct topic_args, o), "group options"}},
    .args_size = sizeof(struct topic_args),
    .init = init_topic,
    .run = run_subscribe,
};

const struct cli_cmd cli_cmd_topic_subscriptions = {
    .name = "topic subscriptions",
    .operands = "TOPIC",
    .summary = "list the subscriptions (queue groups) of TOPIC",
    .sets = {{list_opts, 0, "options"}},
    .args_size = sizeof(struct topic_args),
    .run = run_subscriptions,
};

const struct cli_cmd cli_cmd_topic_unsubscribe = {
    .name = "topic unsubscribe",
    .operands = "TOPIC SUB",
    .summary = "delete the subscription and its state",
    .args_size = sizeof(struct topic_args),
    .run = run_unsubscribe,
};
