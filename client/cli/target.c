/* target.c - `sluice target add|remove|list`: push targets, the broker POSTing a queue
 * group's records to an HTTP endpoint by itself (sluice.h, docs/PROTOCOL.md). */
#include "client/cli/cli.h"
#include "client/cli/output.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

struct target_args {
    const char *stream;
    struct sluice_target t;
    int format;
    int json;
};

static const struct cli_opt_choice format_choices[] = {
    {"sluice", 0}, {"sqs", 1}, {"kinesis", 2}, {"sns", 3}, {"eventbridge", 4}, {"sns-http", 5}, {NULL, 0},
};

#define STREAM_OPT                                                                              \
    {.name = "stream",                                                                          \
     .kind = CLI_OPT_STRING,                                                                    \
     .offset = offsetof(struct target_args, stream),                                            \
     .value_name = "STREAM",                                                                    \
     .help = "the stream (queue or topic) the group reads",                                     \
     .min = 1,                                                                                  \
     .flags = CLI_OPT_REQUIRED}

static const struct cli_opt add_opts[] = {
    STREAM_OPT,
    {.name = "url",
     .kind = CLI_OPT_STRING,
     .offset = offsetof(struct target_args, t.url),
     .value_name = "URL",
     .help = "http:// or https:// endpoint receiving a POST per batch, or\n"
             "stream:NAME: append each record to stream NAME (formats sluice,\n"
             "sns, eventbridge), acknowledged once durable there",
     .min = 1,
     .flags = CLI_OPT_REQUIRED},
    {.name = "format",
     .kind = CLI_OPT_CHOICE,
     .offset = offsetof(struct target_args, format),
     .value_name = "F",
     .help = "body shape: sluice (default), sqs (Lambda SQSEvent), kinesis\n"
             "(KinesisStreamEvent), sns (SNSEvent), eventbridge (one event per POST),\n"
             "sns-http (one SNS notification per POST, as SNS sends to HTTP endpoints)",
     .choices = format_choices},
    {.name = "batch",
     .kind = CLI_OPT_U32,
     .offset = offsetof(struct target_args, t.batch_size),
     .value_name = "N",
     .help = "records per POST, 1-10000 (default 10)",
     .min = 1,
     .max = 10000},
    {.name = "window",
     .kind = CLI_OPT_DURATION,
     .offset = offsetof(struct target_args, t.batch_window_ms),
     .value_name = "S",
     .help = "wait up to S for a full batch (default 0: send what is there)",
     .max = 300000},
    {.name = "concurrency",
     .kind = CLI_OPT_U32,
     .offset = offsetof(struct target_args, t.concurrency),
     .value_name = "N",
     .help = "POSTs in flight, 1-64 (default 1)",
     .min = 1,
     .max = 64},
    {.name = "timeout",
     .kind = CLI_OPT_DURATION,
     .offset = offsetof(struct target_args, t.timeout_ms),
     .value_name = "S",
     .help = "per POST (default 30)",
     .min = 100,
     .max = 900000},
    {.name = "retry-base",
     .kind = CLI_OPT_DURATION,
     .offset = offsetof(struct target_args, t.retry_base_ms),
     .value_name = "S",
     .help = "first backoff after a failure, doubling per retry (default 1)",
     .min = 1},
    {.name = "retry-max",
     .kind = CLI_OPT_DURATION,
     .offset = offsetof(struct target_args, t.retry_max_ms),
     .value_name = "S",
     .help = "backoff cap (default 300)",
     .min = 1},
    {.name = "insecure",
     .kind = CLI_OPT_FLAG,
     .offset = offsetof(struct target_args, t.insecure),
     .help = "https without verifying the endpoint's certificate"},
    {.name = NULL},
};

static const struct cli_opt remove_opts[] = {STREAM_OPT, {.name = NULL}};

static const struct cli_opt list_opts[] = {
    STREAM_OPT,
    {.name = "json",
     .kind = CLI_OPT_FLAG,
     .offset = offsetof(struct target_args, json),
     .help = "one JSON array of targets with their counters"},
    {.name = NULL},
};

static int run_add(sluice_client *c, const struct cli_call *call)
{
    struct target_args *a = call->args;
    a->t.stream = a->stream;
    a->t.group = call->operands[0];
    a->t.format = format_choices[a->format].name;
    int rc = sluice_target_set(c, &a->t);
    if (rc != SL_OK) {
        return cli_broker_error("target add", rc);
    }
    fprintf(stderr, "push target of %s/%s: %s (%s)\n", a->stream, a->t.group, a->t.url,
            a->t.format);
    return CLI_EXIT_OK;
}

static int run_remove(sluice_client *c, const struct cli_call *call)
{
    const struct target_args *a = call->args;
    int rc = sluice_target_remove(c, a->stream, call->operands[0]);
    if (rc != SL_OK) {
        return cli_broker_error("target remove", rc);
    }
    fprintf(stderr, "removed the push target of %s/%s\n", a->stream, call->operands[0]);
    return CLI_EXIT_OK;
}

static json_t *status_json(const struct sluice_target_status *s)
{
    const struct sluice_target *t = &s->target;
    return json_pack("{s:s,s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:b,s:I,s:I,s:I,s:I,s:I,s:I,s:I,"
                     "s:i,s:s,s:I}",
                     "stream", t->stream, "group", t->group, "url", t->url, "format", t->format,
                     "batch_size", (json_int_t)t->batch_size, "batch_window_ms",
                     (json_int_t)t->batch_window_ms, "concurrency", (json_int_t)t->concurrency,
                     "timeout_ms", (json_int_t)t->timeout_ms, "retry_base_ms",
                     (json_int_t)t->retry_base_ms, "retry_max_ms", (json_int_t)t->retry_max_ms,
                     "insecure", t->insecure, "inflight", (json_int_t)s->inflight, "delivered",
                     (json_int_t)s->delivered, "released", (json_int_t)s->released,
                     "batches_ok", (json_int_t)s->batches_ok, "batches_failed",
                     (json_int_t)s->batches_failed, "failures", (json_int_t)s->failures,
                     "paused_ms", (json_int_t)s->paused_ms, "last_status", s->last_status,
                     "last_error", s->last_error, "last_latency_us",
                     (json_int_t)s->last_latency_us);
}

static int run_list(sluice_client *c, const struct cli_call *call)
{
    const struct target_args *a = call->args;
    struct sluice_target_status *s = NULL;
    size_t n = 0;
    int rc = sluice_target_list(c, a->stream, &s, &n);
    if (rc != SL_OK) {
        return cli_broker_error("target list", rc);
    }
    json_t *arr = a->json ? json_array() : NULL;
    for (size_t i = 0; i < n; i++) {
        if (arr != NULL) {
            json_array_append_new(arr, status_json(&s[i]));
            continue;
        }
        printf("%s -> %s (%s, batch %u, concurrency %u): %" PRIu64 " delivered, %" PRIu64
               " released, %u in flight%s%s%s\n",
               s[i].target.group, s[i].target.url, s[i].target.format, s[i].target.batch_size,
               s[i].target.concurrency, s[i].delivered, s[i].released, s[i].inflight,
               s[i].paused_ms > 0 ? ", paused" : "", s[i].last_error[0] ? "; last error: " : "",
               s[i].last_error);
    }
    if (arr != NULL) {
        cli_print_json(arr);
        json_decref(arr);
    }
    sluice_target_list_free(s, n);
    return ferror(stdout) ? CLI_EXIT_ERR : CLI_EXIT_OK;
}

const struct cli_cmd cli_cmd_target_add = {
    .name = "target add",
    .operands = "GROUP",
    .summary = "have the broker POST GROUP's records to a URL (replaces its target)",
    .help = "The group (a queue group or topic subscription of --stream) is read by the\n"
            "broker: each batch is POSTed to --url and acknowledged on a 2xx answer; an\n"
            "AWS Lambda partial batch response ({\"batchItemFailures\": [...]}) releases\n"
            "the records it names. Other answers, timeouts and connection errors release\n"
            "the batch for a retry after a backoff; the group's --max-deliveries and\n"
            "dead-letter stream apply. Needs the admin right on the stream.\n",
    .sets = {{add_opts, 0, "target options"}},
    .args_size = sizeof(struct target_args),
    .run = run_add,
};

const struct cli_cmd cli_cmd_target_remove = {
    .name = "target remove",
    .operands = "GROUP",
    .summary = "stop pushing GROUP's records (the group stays)",
    .sets = {{remove_opts, 0, "options"}},
    .args_size = sizeof(struct target_args),
    .run = run_remove,
};

const struct cli_cmd cli_cmd_target_list = {
    .name = "target list",
    .operands = "",
    .summary = "the push targets on a stream, with their counters",
    .sets = {{list_opts, 0, "options"}},
    .args_size = sizeof(struct target_args),
    .run = run_list,
};
