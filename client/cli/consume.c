/* consume.c - `sluice consume` (cursor reads, optionally as a consumer group with
 * checkpoints) and `sluice lag` (a group's checkpoints against the shards' tails).
 *
 * consume prints record values (or JSON objects) on stdout, flushed after every poll;
 * without --follow it stops once every shard's tail is reached. With --group the
 * consumer commits every second and at exit.
 */
#include "client/cli/cli.h"
#include "client/cli/output.h"
#include "common/clock.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CLI_POLL_MAX        1024u
#define CLI_POLL_TIMEOUT_MS 500u
#define CLI_PROGRESS_MS     250u
#define CLI_SHARDS_MAX      1024u /* --shard uses; the broker's shard limit */
#define CLI_GROUP_COMMIT_MS 1000u
#define CLI_FOLLOW_RETRIES  60u /* --follow: reconnect attempts, 1 s apart */

struct consume_shards {
    uint32_t len;
    uint32_t v[CLI_SHARDS_MAX];
};

struct consume_args {
    const char *group;
    const char *instance;
    uint32_t session_ms;
    int follow;
    int json;
    uint64_t count; /* 0 = unlimited */
    struct consume_shards shards;
    struct sluice_position from;
};

struct lag_args {
    const char *stream;
    int json;
};

/* --from POS. */
static int parse_from(const char *s, void *dst, char *why, size_t cap)
{
    if (sluice_position_parse(s, dst) != SL_OK) {
        snprintf(why, cap,
                 "'%s' is not a position (oldest, latest, seq:N, after:N, "
                 "time:ISO8601, time:MS)",
                 s);
        return -1;
    }
    return 0;
}

/* --shard N, repeatable. */
static int parse_shard(const char *s, void *dst, char *why, size_t cap)
{
    struct consume_shards *l = dst;
    uint64_t v = 0;
    if (l->len == CLI_SHARDS_MAX) {
        snprintf(why, cap, "at most %u shards", CLI_SHARDS_MAX);
        return -1;
    }
    if (cli_opt_u64(s, 0, UINT32_MAX, &v, why, cap) != 0) {
        return -1;
    }
    l->v[l->len++] = (uint32_t)v;
    return 0;
}

static const struct cli_opt consume_opts[] = {
    {.name = "from",
     .kind = CLI_OPT_CUSTOM,
     .offset = offsetof(struct consume_args, from),
     .value_name = "POS",
     .help = "oldest | latest | seq:N | after:N | time:ISO8601 | time:MS\n"
             "(default oldest; shards with a group checkpoint resume there)",
     .parse = parse_from},
    {.name = "group",
     .kind = CLI_OPT_STRING,
     .offset = offsetof(struct consume_args, group),
     .value_name = "G",
     .help = "consumer group: resume from and commit its checkpoints\n"
             "(committed every second and at exit); without --shard,\n"
             "processes of one group split the stream's shards"},
    {.name = "instance",
     .kind = CLI_OPT_STRING,
     .offset = offsetof(struct consume_args, instance),
     .value_name = "ID",
     .help = "with --group: a static member - restarted within the session\n"
             "timeout it gets its shards back",
     .max = 63},
    {.name = "session-timeout",
     .kind = CLI_OPT_DURATION,
     .offset = offsetof(struct consume_args, session_ms),
     .value_name = "DUR",
     .help = "with --group: a member silent this long loses its shards\n"
             "(default 10s)",
     .min = 1000,
     .max = 300000},
    {.name = "follow",
     .kind = CLI_OPT_FLAG,
     .offset = offsetof(struct consume_args, follow),
     .help = "keep waiting for new records (stop with Ctrl-C)"},
    {.name = "count",
     .kind = CLI_OPT_U64,
     .offset = offsetof(struct consume_args, count),
     .value_name = "N",
     .help = "stop after N records",
     .min = 1},
    {.name = "json",
     .kind = CLI_OPT_FLAG,
     .offset = offsetof(struct consume_args, json),
     .help = "one JSON object per line: shard, seq, timestamp (ms), key,\n"
             "value, attributes (key/value as key_base64/value_base64\n"
             "when not UTF-8)"},
    {.name = "shard",
     .kind = CLI_OPT_CUSTOM,
     .offset = offsetof(struct consume_args, shards),
     .value_name = "N",
     .help = "read only shard N (repeatable)",
     .parse = parse_shard},
    {.name = NULL},
};

static const struct cli_opt lag_opts[] = {
    {.name = "stream",
     .kind = CLI_OPT_STRING,
     .offset = offsetof(struct lag_args, stream),
     .value_name = "S",
     .help = "the stream the group reads",
     .flags = CLI_OPT_REQUIRED},
    {.name = "json",
     .kind = CLI_OPT_FLAG,
     .offset = offsetof(struct lag_args, json),
     .help = "one JSON array of per-shard objects"},
    {.name = NULL},
};

static void on_trimmed(void *ctx, uint32_t shard, uint64_t from_seq, uint64_t to_seq)
{
    (void)ctx;
    fprintf(stderr,
            "sluice: shard %u: records from %" PRIu64 " were trimmed; continuing at %" PRIu64 "\n",
            shard, from_seq, to_seq);
}

/* A member's shards on stderr: who reads what, for operators (and tests). */
static void print_shards(const char *what, const uint32_t *shards, size_t n)
{
    fprintf(stderr, "sluice: %s shards", what);
    for (size_t i = 0; i < n; i++) {
        fprintf(stderr, "%s%u", i == 0 ? " " : ",", shards[i]);
    }
    fputc('\n', stderr);
}

static void on_assigned(void *ctx, const uint32_t *shards, size_t n, int lost)
{
    (void)lost;
    (void)ctx;
    print_shards("assigned", shards, n);
}

static void on_revoked(void *ctx, const uint32_t *shards, size_t n, int lost)
{
    (void)ctx;
    print_shards(lost ? "lost" : "revoked", shards, n);
}

static int print_record(const struct sluice_record *r, int json)
{
    if (!json) {
        fwrite(r->value, 1, r->value_len, stdout);
        fputc('\n', stdout);
    } else {
        json_t *o = json_pack("{s:I, s:I, s:I}", "shard", (json_int_t)r->shard, "seq",
                              (json_int_t)r->seq, "timestamp", (json_int_t)r->timestamp_ms);
        cli_json_set_bytes(o, "key", r->key, r->key_len);
        cli_json_set_bytes(o, "value", r->value, r->value_len);
        json_object_set_new(o, "attributes", cli_json_attrs(r->attrs, r->attr_count));
        cli_print_json(o);
        json_decref(o);
    }
    return ferror(stdout) ? -1 : 0;
}

static void consume_progress(const sluice_consumer *c, uint64_t got)
{
    uint64_t behind = 0;
    for (uint32_t i = 0; i < sluice_consumer_shard_count(c); i++) {
        uint64_t next = 0, tail = 0;
        sluice_consumer_shard_state(c, sluice_consumer_shard_id(c, i), &next, &tail);
        behind += tail > next ? tail - next : 0;
    }
    fprintf(stderr, "\r%" PRIu64 " records, %" PRIu64 " behind   ", got, behind);
}

static int consume_loop(sluice_consumer *c, const struct consume_args *a, uint64_t *got)
{
    static struct sluice_record recs[CLI_POLL_MAX];
    int tty = isatty(STDERR_FILENO);
    uint64_t last = 0;
    uint32_t retries = 0;
    while (!cli_stop_requested && (a->count == 0 || *got < a->count)) {
        size_t max = CLI_POLL_MAX, n = 0;
        if (a->count != 0 && a->count - *got < max) {
            max = (size_t)(a->count - *got);
        }
        int rc = sluice_consumer_poll(c, recs, max, &n, CLI_POLL_TIMEOUT_MS);
        if (rc == SL_ECLOSED && a->follow && retries++ < CLI_FOLLOW_RETRIES &&
            !cli_stop_requested) {
            fprintf(stderr, "sluice: %s; retrying\n", sluice_last_error());
            sleep(1);
            continue;
        }
        if (rc != SL_OK) {
            return cli_broker_error("consume", rc);
        }
        retries = 0;
        for (size_t i = 0; i < n; i++) {
            if (print_record(&recs[i], a->json) != 0) {
                fprintf(stderr, "sluice: writing stdout: %s\n", strerror(errno));
                return CLI_EXIT_ERR;
            }
        }
        *got += n;
        if (fflush(stdout) != 0) {
            fprintf(stderr, "sluice: writing stdout: %s\n", strerror(errno));
            return CLI_EXIT_ERR;
        }
        if (tty && sl_clock_mono_ms() - last >= CLI_PROGRESS_MS) {
            last = sl_clock_mono_ms();
            consume_progress(c, *got);
        }
        if (!a->follow && sluice_consumer_caught_up(c)) {
            break;
        }
    }
    if (tty) {
        fputs("\r\033[K", stderr);
    }
    return CLI_EXIT_OK;
}

static int run_consume(sluice_client *cl, const struct cli_call *call)
{
    const struct consume_args *a = call->args;
    const char *stream = call->operands[0];
    struct sluice_consumer_opts co = {
        .start = a->from,
        .shards = a->shards.len > 0 ? a->shards.v : NULL,
        .shards_len = a->shards.len,
        .auto_commit_ms = a->group != NULL ? CLI_GROUP_COMMIT_MS : 0,
        .on_trimmed = on_trimmed,
        .instance_id = a->instance,
        .session_timeout_ms = a->session_ms,
        .on_assigned = on_assigned,
        .on_revoked = on_revoked,
    };
    sluice_consumer *c = NULL;
    int rc = sluice_consumer_new(cl, stream, a->group, &co, &c);
    if (rc != SL_OK) {
        return cli_broker_error("consumer", rc);
    }
    cli_signals_install();
    uint64_t got = 0;
    int ex = consume_loop(c, a, &got);
    rc = sluice_consumer_commit(c);
    if (rc == SL_EFENCED) { /* another member reads those records again: not an error */
        fprintf(stderr, "sluice: %s\n", sluice_last_error());
    } else if (rc != SL_OK) {
        ex = cli_broker_error("commit", rc);
    }
    fprintf(stderr, "consumed %" PRIu64 " records from %s%s%s\n", got, stream,
            a->group != NULL ? ", committed for group " : "", a->group != NULL ? a->group : "");
    sluice_consumer_free(c);
    return ex;
}

static int check_consume(const struct cli_call *call)
{
    const struct consume_args *a = call->args;
    if ((a->instance != NULL || a->session_ms != 0) && a->group == NULL) {
        return cli_usage(call->cmd, "--instance and --session-timeout need --group");
    }
    if ((a->instance != NULL || a->session_ms != 0) && a->shards.len > 0) {
        return cli_usage(call->cmd, "--instance and --session-timeout make a group member, "
                                    "which reads the shards the group gives it: no --shard");
    }
    return CLI_EXIT_OK;
}

static void init_consume(void *args)
{
    struct consume_args *a = args;
    a->from.kind = SLUICE_TRIM_HORIZON;
}

static json_t *lag_json(const struct sluice_shard_lag *l)
{
    return json_pack("{s:I, s:I, s:I, s:I, s:I}", "shard", (json_int_t)l->shard, "checkpoint",
                     (json_int_t)l->checkpoint, "tail", (json_int_t)l->tail_seq, "records_behind",
                     (json_int_t)l->records_behind, "ms_behind", (json_int_t)l->ms_behind);
}

static int run_lag(sluice_client *c, const struct cli_call *call)
{
    const struct lag_args *a = call->args;
    struct sluice_shard_lag *lag = NULL;
    size_t n = 0;
    int rc = sluice_group_lag(c, call->operands[0], a->stream, &lag, &n);
    if (rc != SL_OK) {
        return cli_broker_error("lag", rc);
    }
    json_t *arr = a->json ? json_array() : NULL;
    if (!a->json) {
        printf("%5s  %12s  %12s  %14s  %12s\n", "SHARD", "CHECKPOINT", "TAIL", "RECORDS_BEHIND",
               "MS_BEHIND");
    }
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        total += lag[i].records_behind;
        if (a->json) {
            json_array_append_new(arr, lag_json(&lag[i]));
        } else {
            printf("%5u  %12" PRIu64 "  %12" PRIu64 "  %14" PRIu64 "  %12" PRIu64 "\n",
                   lag[i].shard, lag[i].checkpoint, lag[i].tail_seq, lag[i].records_behind,
                   lag[i].ms_behind);
        }
    }
    if (a->json) {
        cli_print_json(arr);
        json_decref(arr);
    } else {
        printf("%5s  %12s  %12s  %14" PRIu64 "\n", "total", "", "", total);
    }
    free(lag);
    return CLI_EXIT_OK;
}

const struct cli_cmd cli_cmd_consume = {
    .name = "consume",
    .operands = "STREAM",
    .summary = "print records, one value per line",
    .help = "Prints one record value per line on stdout (or --json objects). Without --follow\n"
            "it stops when it has caught up with every shard's tail.\n"
            "With --group and no --shard it is a member of the group: processes with the\n"
            "same group split the stream's shards between them, and take over the shards\n"
            "of a member that stops (`sluice group describe` shows who reads what).\n",
    .sets = {{consume_opts, 0, "options"}},
    .args_size = sizeof(struct consume_args),
    .init = init_consume,
    .check = check_consume,
    .run = run_consume,
};

const struct cli_cmd cli_cmd_lag = {
    .name = "lag",
    .operands = "GROUP",
    .summary = "a consumer group's checkpoints against the shards' tails",
    .help = "Per shard: the group's checkpoint, the shard's tail, records behind, ms behind;\n"
            "then the total records behind.\n",
    .sets = {{lag_opts, 0, "options"}},
    .args_size = sizeof(struct lag_args),
    .run = run_lag,
};
