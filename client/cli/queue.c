/* queue.c - `sluice queue create|receive|ack|nack|stats|purge|redrive`: queue groups read
 * as queues (competing consumers). `queue send` is in produce.c, `queue work` in work.c.
 *
 * receive prints message bodies (or JSON objects) on stdout and, with --ack, acknowledges
 * them only once they are written and flushed: a message that could not be printed is
 * left to come back after its lease.
 */
#include "client/cli/cli.h"
#include "client/cli/group.h"
#include "client/cli/output.h"
#include "common/clock.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CLI_ACK_CHUNK 1000u /* receipts read from stdin per ack request */

struct create_args {
    const char *group;
    uint32_t shards;
    struct sluice_queue_group_opts o;
};

struct receive_args {
    const char *group;
    uint32_t max;
    uint32_t wait_ms;
    uint32_t visibility_ms;
    int ack;
    int json;
};

struct ack_args {
    const char *group;
    uint32_t delay_ms; /* nack only */
    uint64_t ok;
    uint64_t lease_ended;
};

/* stats, purge, redrive */
struct group_args {
    const char *group;
    int json;
};

static const struct cli_opt create_opts[] = {
    {.name = "shards",
     .kind = CLI_OPT_U32,
     .offset = offsetof(struct create_args, shards),
     .value_name = "N",
     .help = "shards of the stream, when it is created (default 1)",
     .min = 1},
    CLI_GROUP_OPT(struct create_args, group),
    {.name = NULL},
};

static const struct cli_opt receive_opts[] = {
    CLI_GROUP_OPT(struct receive_args, group),
    {.name = "max",
     .kind = CLI_OPT_U32,
     .offset = offsetof(struct receive_args, max),
     .value_name = "N",
     .help = "messages at most (default 1)",
     .min = 1},
    {.name = "wait",
     .kind = CLI_OPT_DURATION,
     .offset = offsetof(struct receive_args, wait_ms),
     .value_name = "S",
     .help = "seconds to wait for the first message (default 0)"},
    {.name = "visibility",
     .kind = CLI_OPT_DURATION,
     .offset = offsetof(struct receive_args, visibility_ms),
     .value_name = "S",
     .help = "lease length (default: the group's)",
     .min = 1},
    {.name = "ack",
     .kind = CLI_OPT_FLAG,
     .offset = offsetof(struct receive_args, ack),
     .help = "acknowledge the messages once printed"},
    {.name = "json",
     .kind = CLI_OPT_FLAG,
     .offset = offsetof(struct receive_args, json),
     .help = "one object per message: receipt, shard, seq, delivery_count,\n"
             "timestamp, produced_ms, key, attributes, value"},
    {.name = NULL},
};

static const struct cli_opt ack_opts[] = {
    CLI_GROUP_OPT(struct ack_args, group),
    {.name = NULL},
};

static const struct cli_opt nack_opts[] = {
    CLI_GROUP_OPT(struct ack_args, group),
    {.name = "delay",
     .kind = CLI_OPT_DURATION,
     .offset = offsetof(struct ack_args, delay_ms),
     .value_name = "S",
     .help = "visible again after S seconds (default 0)"},
    {.name = NULL},
};

static const struct cli_opt stats_opts[] = {
    CLI_GROUP_OPT(struct group_args, group),
    {.name = "json",
     .kind = CLI_OPT_FLAG,
     .offset = offsetof(struct group_args, json),
     .help = "one JSON object"},
    {.name = NULL},
};

static const struct cli_opt group_only_opts[] = {
    CLI_GROUP_OPT(struct group_args, group),
    {.name = NULL},
};

/* Every queue command's args struct starts with its group name. */
static void init_group(void *args)
{
    *(const char **)args = CLI_DEFAULT_GROUP;
}

_Static_assert(offsetof(struct create_args, group) == 0 &&
                   offsetof(struct receive_args, group) == 0 &&
                   offsetof(struct ack_args, group) == 0 && offsetof(struct group_args, group) == 0,
               "init_group writes the first member");

/* ---- create ---- */

static void init_create(void *args)
{
    struct create_args *a = args;
    init_group(a);
    a->shards = 1;
}

static int run_create(sluice_client *c, const struct cli_call *call)
{
    const struct create_args *a = call->args;
    const char *stream = call->operands[0];
    int ex = cli_group_stream_ensure(c, stream, a->shards, cli_call_seen(call, 0, "shards"), 0,
                                     "queue create");
    return ex != CLI_EXIT_OK ? ex : cli_group_create(c, stream, a->group, &a->o, 0);
}

/* ---- receive ---- */

static int print_message(const struct sluice_message *m, int json)
{
    if (!json) {
        fwrite(m->value, 1, m->value_len, stdout);
        fputc('\n', stdout);
        return ferror(stdout) ? -1 : 0;
    }
    json_t *o = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I}", "receipt", m->receipt, "shard",
                          (json_int_t)m->shard, "seq", (json_int_t)m->seq, "delivery_count",
                          (json_int_t)m->delivery_count, "timestamp", (json_int_t)m->timestamp_ms,
                          "produced_ms", (json_int_t)m->produced_ms);
    if (o == NULL) {
        return -1;
    }
    cli_json_set_bytes(o, "key", m->key, m->key_len);
    json_object_set_new(o, "attributes", cli_json_attrs(m->attrs, m->attr_count));
    cli_json_set_bytes(o, "value", m->value, m->value_len);
    cli_print_json(o);
    json_decref(o);
    return ferror(stdout) ? -1 : 0;
}

/* Acks the receipts of msgs[0..n); returns how many failed (0 on success), or -1 when the
 * request itself failed (message printed). */
static long ack_messages(sluice_client *c, const char *stream, const char *group,
                         const struct sluice_message *msgs, size_t n)
{
    const char **receipts = malloc(n * sizeof(*receipts));
    int *results = malloc(n * sizeof(*results));
    long failed = -1;
    if (receipts == NULL || results == NULL) {
        fprintf(stderr, "sluice: out of memory\n");
    } else {
        for (size_t i = 0; i < n; i++) {
            receipts[i] = msgs[i].receipt;
        }
        int rc = sluice_queue_ack(c, stream, group, receipts, n, results);
        failed = 0;
        for (size_t i = 0; i < n; i++) {
            failed += results[i] != SL_OK;
        }
        if (rc != SL_OK && (size_t)failed == n && results[0] != SL_ENOTFOUND) {
            cli_broker_error("ack", rc);
            failed = -1;
        }
    }
    free(receipts);
    free(results);
    return failed;
}

/* One receive of up to `max`; prints and (with --ack) acks. Returns CLI_EXIT_* and adds to
 * *got / *ack_failed. */
static int receive_once(sluice_client *c, const char *stream, const struct receive_args *r,
                        uint32_t max, uint32_t wait_ms, size_t *got, uint64_t *ack_failed)
{
    struct sluice_message *msgs = NULL;
    size_t n = 0;
    int rc = sluice_queue_receive(c, stream, r->group, max, wait_ms, r->visibility_ms, &msgs, &n);
    if (rc != SL_OK) {
        return cli_broker_error("queue receive", rc);
    }
    int ex = CLI_EXIT_OK;
    for (size_t i = 0; i < n && ex == CLI_EXIT_OK; i++) {
        if (print_message(&msgs[i], r->json) != 0) {
            ex = CLI_EXIT_ERR;
        }
    }
    if (ex != CLI_EXIT_OK || fflush(stdout) != 0) {
        fprintf(stderr, "sluice: writing stdout: %s (messages not acknowledged)\n",
                strerror(errno));
        sluice_messages_free(msgs, n);
        return CLI_EXIT_ERR;
    }
    *got += n;
    if (r->ack && n > 0) {
        long failed = ack_messages(c, stream, r->group, msgs, n);
        if (failed < 0) {
            ex = CLI_EXIT_ERR;
        } else {
            *ack_failed += (uint64_t)failed;
        }
    }
    sluice_messages_free(msgs, n);
    return ex;
}

static int run_receive(sluice_client *c, const struct cli_call *call)
{
    const struct receive_args *r = call->args;
    const char *stream = call->operands[0];
    uint64_t deadline = sl_clock_mono_ms() + r->wait_ms, ack_failed = 0;
    size_t got = 0, before = 0;
    int ex = CLI_EXIT_OK;
    cli_signals_install();
    /* Wait (in long-polls the broker may cap) until something arrives or --wait passes;
     * then take what else is visible at once, up to --max. */
    while (ex == CLI_EXIT_OK && got < r->max && !cli_stop_requested) {
        uint64_t now = sl_clock_mono_ms();
        uint32_t wait = got == 0 && now < deadline ? (uint32_t)(deadline - now) : 0;
        uint32_t want = r->max - (uint32_t)got;
        want = want < SLUICE_QUEUE_RECEIVE_MAX ? want : SLUICE_QUEUE_RECEIVE_MAX;
        before = got;
        ex = receive_once(c, stream, r, want, wait, &got, &ack_failed);
        if (got == before && (got > 0 || wait == 0)) {
            break;
        }
    }
    if (ex == CLI_EXIT_OK || got > 0) {
        fprintf(stderr, "received %zu message%s from %s (group %s)%s\n", got, got == 1 ? "" : "s",
                stream, r->group,
                got == 0                ? ""
                : !r->ack && !r->json   ? " (not acknowledged: visible again after the lease)"
                : r->ack && !ack_failed ? ", acknowledged"
                                        : "");
    }
    if (ack_failed > 0) {
        fprintf(stderr,
                "sluice: %" PRIu64 " acks failed: lease ended (the messages may be delivered "
                "again)\n",
                ack_failed);
        ex = CLI_EXIT_ERR;
    }
    return ex;
}

static void init_receive(void *args)
{
    struct receive_args *r = args;
    init_group(r);
    r->max = 1;
}

/* ---- ack / nack ---- */

/* Acks (or nacks) one list; counts outcomes. Returns CLI_EXIT_*. */
static int ack_list(sluice_client *c, const struct cli_call *call, const char *const *receipts,
                    size_t n)
{
    struct ack_args *a = call->args;
    const char *stream = call->operands[0];
    int nack = call->cmd == &cli_cmd_queue_nack;
    int *results = malloc(n * sizeof(*results));
    if (results == NULL) {
        fprintf(stderr, "sluice: out of memory\n");
        return CLI_EXIT_ERR;
    }
    int rc = nack ? sluice_queue_nack(c, stream, a->group, receipts, n, a->delay_ms, results)
                  : sluice_queue_ack(c, stream, a->group, receipts, n, results);
    int ex = CLI_EXIT_OK;
    for (size_t i = 0; i < n; i++) {
        if (results[i] == SL_OK) {
            a->ok++;
        } else if (results[i] == SL_ENOTFOUND) {
            a->lease_ended++;
            fprintf(stderr, "sluice: %s: lease ended or unknown receipt\n", receipts[i]);
        } else {
            ex = cli_broker_error(nack ? "queue nack" : "queue ack", rc);
            break;
        }
    }
    free(results);
    return ex;
}

/* Reads receipts one per stdin line and acks them CLI_ACK_CHUNK at a time. */
static int ack_stdin(sluice_client *c, const struct cli_call *call)
{
    char *batch[CLI_ACK_CHUNK];
    size_t n = 0;
    int ex = CLI_EXIT_OK;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while (ex == CLI_EXIT_OK && (len = getline(&line, &cap, stdin)) >= 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) {
            line[--len] = '\0';
        }
        if (len == 0) {
            continue;
        }
        batch[n] = strdup(line);
        if (batch[n] == NULL) {
            fprintf(stderr, "sluice: out of memory\n");
            ex = CLI_EXIT_ERR;
            break;
        }
        if (++n == CLI_ACK_CHUNK) {
            ex = ack_list(c, call, (const char *const *)batch, n);
            for (size_t i = 0; i < n; i++) {
                free(batch[i]);
            }
            n = 0;
        }
    }
    if (ex == CLI_EXIT_OK && ferror(stdin)) {
        fprintf(stderr, "sluice: reading stdin: %s\n", strerror(errno));
        ex = CLI_EXIT_ERR;
    }
    if (ex == CLI_EXIT_OK && n > 0) {
        ex = ack_list(c, call, (const char *const *)batch, n);
    }
    for (size_t i = 0; i < n; i++) {
        free(batch[i]);
    }
    free(line);
    return ex;
}

static int run_ack(sluice_client *c, const struct cli_call *call)
{
    const struct ack_args *a = call->args;
    int from_stdin = call->operands_len == 2 && strcmp(call->operands[1], "-") == 0;
    int ex = from_stdin ? ack_stdin(c, call)
                        : ack_list(c, call, (const char *const *)call->operands + 1,
                                   call->operands_len - 1);
    fprintf(stderr, "%s %" PRIu64 " message%s%s",
            call->cmd == &cli_cmd_queue_nack ? "nacked" : "acknowledged", a->ok,
            a->ok == 1 ? "" : "s", a->lease_ended > 0 ? "" : "\n");
    if (a->lease_ended > 0) {
        fprintf(stderr, "; %" PRIu64 " receipt%s had no lease (it ended, or unknown)\n",
                a->lease_ended, a->lease_ended == 1 ? "" : "s");
    }
    return ex == CLI_EXIT_OK && a->lease_ended > 0 ? CLI_EXIT_ERR : ex;
}

/* ---- stats, purge, redrive ---- */

static void print_stats(const char *stream, const char *group, const struct sluice_queue_stats *s)
{
    char pos[64];
    printf("queue           %s (group %s)\n", stream, group);
    printf("visible         %" PRIu64 "\n", s->visible);
    printf("in flight       %" PRIu64 "\n", s->inflight);
    printf("delayed         %" PRIu64 "\n", s->delayed);
    printf("dead-lettered   %" PRIu64 "\n", s->dead_lettered);
    printf("filtered out    %" PRIu64 "\n", s->filtered_out);
    printf("oldest age      %.3f s\n", (double)s->oldest_age_ms / 1000.0);
    printf("visibility      %.3f s\n", (double)s->visibility_timeout_ms / 1000.0);
    if (s->max_deliveries > 0) {
        printf("max deliveries  %u, then to %s\n", s->max_deliveries,
               s->dead_letter_stream[0] ? s->dead_letter_stream : "(default dead-letter stream)");
    } else {
        printf("max deliveries  unlimited\n");
    }
    printf("ordered         %s\n", s->ordered ? "yes" : "no");
    printf("filter          %s%s\n", s->filter[0] ? s->filter : "none",
           s->filter[0] && s->filter_body ? " (on the value's JSON)" : "");
    printf("start           %s\n", cli_fmt_position(&s->start, pos, sizeof(pos)));
    if (s->max_inflight > 0) {
        printf("max in flight   %u\n", s->max_inflight);
    } else {
        printf("max in flight   broker default\n");
    }
}

static json_t *stats_json(const char *stream, const char *group, const struct sluice_queue_stats *s)
{
    char pos[64];
    return json_pack(
        "{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:s, s:b, s:s, s:s, s:s, s:I}",
        "stream",
        stream, "group", group, "visible", (json_int_t)s->visible, "inflight",
        (json_int_t)s->inflight, "delayed", (json_int_t)s->delayed, "dead_lettered",
        (json_int_t)s->dead_lettered, "filtered_out", (json_int_t)s->filtered_out, "oldest_age_ms",
        (json_int_t)s->oldest_age_ms, "visibility_timeout_ms", (json_int_t)s->visibility_timeout_ms,
        "max_deliveries", (json_int_t)s->max_deliveries, "dead_letter_stream",
        s->dead_letter_stream, "ordered", s->ordered, "filter", s->filter, "filter_scope",
        s->filter_body ? "body" : "attributes", "start",
        cli_fmt_position(&s->start, pos, sizeof(pos)), "max_inflight", (json_int_t)s->max_inflight);
}

static int run_stats(sluice_client *c, const struct cli_call *call)
{
    const struct group_args *g = call->args;
    const char *stream = call->operands[0];
    struct sluice_queue_stats s;
    int rc = sluice_queue_stats(c, stream, g->group, &s);
    if (rc != SL_OK) {
        sluice_queue_stats_fini(&s);
        return cli_broker_error("queue stats", rc);
    }
    if (g->json) {
        json_t *j = stats_json(stream, g->group, &s);
        cli_print_json(j);
        json_decref(j);
    } else {
        print_stats(stream, g->group, &s);
    }
    sluice_queue_stats_fini(&s);
    return ferror(stdout) ? CLI_EXIT_ERR : CLI_EXIT_OK;
}

static int run_redrive(sluice_client *c, const struct cli_call *call)
{
    const struct group_args *g = call->args;
    const char *stream = call->operands[0];
    uint64_t moved = 0;
    int rc = sluice_queue_redrive(c, stream, g->group, 0, &moved);
    if (rc != SL_OK) {
        fprintf(stderr, "queue redrive: moved %llu before the error\n", (unsigned long long)moved);
        return cli_broker_error("queue redrive", rc);
    }
    fprintf(stderr, "redrove %llu message(s) back to %s (group %s)\n", (unsigned long long)moved,
            stream, g->group);
    return CLI_EXIT_OK;
}

static int run_purge(sluice_client *c, const struct cli_call *call)
{
    const struct group_args *g = call->args;
    int rc = sluice_queue_purge(c, call->operands[0], g->group);
    if (rc != SL_OK) {
        return cli_broker_error("queue purge", rc);
    }
    fprintf(stderr, "purged queue %s (group %s)\n", call->operands[0], g->group);
    return CLI_EXIT_OK;
}

/* ---- the commands ---- */

const struct cli_cmd cli_cmd_queue_create = {
    .name = "queue create",
    .operands = "NAME",
    .summary = "create the stream NAME (unless it exists) and the queue group",
    .sets = {{create_opts, 0, "options"},
             {cli_group_opts, offsetof(struct create_args, o), "group options"}},
    .args_size = sizeof(struct create_args),
    .init = init_create,
    .run = run_create,
};

const struct cli_cmd cli_cmd_queue_receive = {
    .name = "queue receive",
    .operands = "NAME",
    .summary = "print messages, one body per line",
    .help = "Waits up to --wait for the first message, then takes what else is visible, up to\n"
            "--max. Unacknowledged messages are visible again after their lease.\n",
    .sets = {{receive_opts, 0, "options"}},
    .args_size = sizeof(struct receive_args),
    .init = init_receive,
    .run = run_receive,
};

/* The commands whose args start with the group name and need no other default. */
#define GROUP_CMD(cmd_name, operand, what, table, args_type, fn)                                   \
    {                                                                                              \
        .name = cmd_name, .operands = operand, .summary = what, .sets = {{table, 0, "options"}},   \
        .args_size = sizeof(args_type), .init = init_group, .run = fn,                             \
    }

const struct cli_cmd cli_cmd_queue_ack = GROUP_CMD(
    "queue ack", "NAME RECEIPT...|-", "acknowledge messages (receipts, or '-': one per stdin line)",
    ack_opts, struct ack_args, run_ack);
const struct cli_cmd cli_cmd_queue_nack = GROUP_CMD(
    "queue nack", "NAME RECEIPT...|-", "give messages back (receipts, or '-': one per stdin line)",
    nack_opts, struct ack_args, run_ack);
const struct cli_cmd cli_cmd_queue_stats = GROUP_CMD(
    "queue stats", "NAME", "backlog, in flight, delayed, dead-lettered, oldest age, settings",
    stats_opts, struct group_args, run_stats);
const struct cli_cmd cli_cmd_queue_purge =
    GROUP_CMD("queue purge", "NAME", "drop every message the group has not acknowledged yet",
              group_only_opts, struct group_args, run_purge);
const struct cli_cmd cli_cmd_queue_redrive =
    GROUP_CMD("queue redrive", "NAME", "move the group's dead-lettered messages back to the queue",
              group_only_opts, struct group_args, run_redrive);
