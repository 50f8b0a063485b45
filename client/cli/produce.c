/* produce.c - `sluice produce`, `sluice queue send` and `sluice topic publish`: one record
 * per stdin line through a producer, a summary on stderr.
 *
 * The three share the record options (--key, --attr) and the loop; `produce` adds the
 * producer's settings, `send` and `publish` produce with durable acks and may delay
 * delivery (--delay: the sluice.not_before attribute). Delivery reports run on the
 * client's I/O thread, hence the atomic counters.
 */
#include "client/cli/cli.h"
#include "client/cli/output.h"
#include "common/clock.h"

#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CLI_ATTRS_MAX       32u
#define CLI_KEY_MAX         256u /* bytes in a --key */
#define CLI_PROGRESS_MS     250u
#define CLI_SEND_DELAY_MAX  900000u /* --delay: 15 minutes, as SQS */
#define CLI_NOT_BEFORE_ATTR "sluice.not_before"

struct cli_attrs {
    struct sluice_attr v[CLI_ATTRS_MAX];
    uint32_t len;
};

struct produce_args {
    const char *key;
    const char *key_field;
    struct cli_attrs attrs;
    struct sluice_producer_opts po;
    uint32_t delay_ms;
    char not_before[64]; /* the attribute --delay adds; lives as long as the args */
};

static atomic_uint_fast64_t produce_ok, produce_failed;
static _Atomic int produce_first_err;

/* --attr k=v: appends to the list; the attribute points into argv. */
static int parse_attr(const char *kv, void *dst, char *why, size_t cap)
{
    struct cli_attrs *l = dst;
    const char *eq = strchr(kv, '=');
    if (eq == NULL || eq == kv) {
        snprintf(why, cap, "'%s' is not k=v", kv);
        return -1;
    }
    if (l->len == CLI_ATTRS_MAX) {
        snprintf(why, cap, "at most %u attributes", CLI_ATTRS_MAX);
        return -1;
    }
    l->v[l->len++] =
        (struct sluice_attr){kv, (uint32_t)(eq - kv), eq + 1, (uint32_t)strlen(eq + 1)};
    return 0;
}

_Static_assert(sizeof(enum sluice_ack) == sizeof(int), "a CHOICE option writes an int");

static const struct cli_opt_choice ack_choices[] = {
    {"none", SLUICE_ACK_NONE},
    {"written", SLUICE_ACK_WRITTEN},
    {"durable", SLUICE_ACK_DURABLE},
    {NULL, 0},
};

static const struct cli_opt record_opts[] = {
    {.name = "key",
     .kind = CLI_OPT_STRING,
     .offset = offsetof(struct produce_args, key),
     .value_name = "K",
     .help = "partition key of every record",
     .max = CLI_KEY_MAX},
    {.name = "attr",
     .kind = CLI_OPT_CUSTOM,
     .offset = offsetof(struct produce_args, attrs),
     .value_name = "k=v",
     .help = "an attribute on every record (repeatable, up to 32)",
     .parse = parse_attr},
    {.name = NULL},
};

static const struct cli_opt producer_opts[] = {
    {.name = "key-field",
     .kind = CLI_OPT_STRING,
     .offset = offsetof(struct produce_args, key_field),
     .value_name = "F",
     .help = "lines are JSON objects: the key is the value of field F"},
    {.name = "ack",
     .kind = CLI_OPT_CHOICE,
     .offset = offsetof(struct produce_args, po.ack),
     .value_name = "MODE",
     .help = "when a record counts as sent (default durable)",
     .choices = ack_choices},
    {.name = "compression",
     .kind = CLI_OPT_CHOICE,
     .offset = offsetof(struct produce_args, po.compression),
     .value_name = "C",
     .help = "default: the stream's setting",
     .choices = cli_compression_choices},
    {.name = "linger-ms",
     .kind = CLI_OPT_U32,
     .offset = offsetof(struct produce_args, po.linger_ms),
     .value_name = "MS",
     .help = "batch for up to MS milliseconds (default 5)"},
    {.name = NULL},
};

static const struct cli_opt send_opts[] = {
    {.name = "delay",
     .kind = CLI_OPT_DURATION,
     .offset = offsetof(struct produce_args, delay_ms),
     .value_name = "S",
     .help = "not delivered before S seconds from now",
     .max = CLI_SEND_DELAY_MAX},
    {.name = NULL},
};

static void on_delivery(void *ctx, int err, uint32_t shard, uint64_t seq)
{
    (void)ctx;
    (void)shard;
    (void)seq;
    if (err == SL_OK) {
        atomic_fetch_add(&produce_ok, 1);
    } else {
        int zero = 0;
        atomic_compare_exchange_strong(&produce_first_err, &zero, err);
        atomic_fetch_add(&produce_failed, 1);
    }
}

/* The key of a JSON line: field F as a string, or the JSON text of a non-string value;
 * empty (round-robin) when the line is not an object or lacks F. `*owned` gets what to
 * free. */
static const char *json_key(const char *line, size_t len, const char *field, size_t *key_len,
                            char **owned)
{
    *owned = NULL;
    *key_len = 0;
    json_error_t jerr;
    json_t *doc = json_loadb(line, len, JSON_DECODE_ANY, &jerr);
    json_t *v = json_is_object(doc) ? json_object_get(doc, field) : NULL;
    if (json_is_string(v)) {
        *owned = strndup(json_string_value(v), json_string_length(v));
        *key_len = *owned != NULL ? json_string_length(v) : 0;
    } else if (v != NULL && !json_is_null(v)) {
        *owned = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        *key_len = *owned != NULL ? strlen(*owned) : 0;
    }
    json_decref(doc);
    return *owned != NULL ? *owned : "";
}

static void produce_progress(uint64_t lines, uint64_t start_ms, int final)
{
    double s = (double)(sl_clock_mono_ms() - start_ms) / 1000.0;
    uint64_t ok = atomic_load(&produce_ok), failed = atomic_load(&produce_failed);
    fprintf(stderr, "%s%" PRIu64 " read, %" PRIu64 " acknowledged, %" PRIu64 " failed, %.1f s%s",
            final ? "" : "\r", lines, ok, failed, s, final ? "\n" : "   ");
}

static int produce_loop(sluice_producer *p, const struct produce_args *a, uint64_t *lines,
                        uint64_t *bytes)
{
    int tty = isatty(STDERR_FILENO);
    uint64_t start = sl_clock_mono_ms(), last = start;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int ex = CLI_EXIT_OK;
    while (!cli_stop_requested && (n = getline(&line, &cap, stdin)) >= 0) {
        size_t len = (size_t)n;
        if (len > 0 && line[len - 1] == '\n') {
            len--;
        }
        size_t key_len = a->key != NULL ? strlen(a->key) : 0;
        const char *key = a->key != NULL ? a->key : "";
        char *owned = NULL;
        if (a->key_field != NULL) {
            key = json_key(line, len, a->key_field, &key_len, &owned);
        }
        int rc =
            sluice_produce(p, key, key_len, line, len, a->attrs.v, a->attrs.len, on_delivery, NULL);
        free(owned);
        if (rc != SL_OK) {
            ex = cli_broker_error("produce", rc);
            break;
        }
        (*lines)++;
        *bytes += len;
        if (tty && sl_clock_mono_ms() - last >= CLI_PROGRESS_MS) {
            last = sl_clock_mono_ms();
            produce_progress(*lines, start, 0);
        }
    }
    if (ferror(stdin)) {
        fprintf(stderr, "sluice: reading stdin: %s\n", strerror(errno));
        ex = CLI_EXIT_ERR;
    }
    free(line);
    if (tty) {
        fputs("\r\033[K", stderr);
    }
    return ex;
}

static int run_produce(sluice_client *c, const struct cli_call *call)
{
    const struct produce_args *a = call->args;
    const char *stream = call->operands[0];
    sluice_producer *p = NULL;
    int rc = sluice_producer_new(c, stream, &a->po, &p);
    if (rc != SL_OK) {
        return cli_broker_error("producer", rc);
    }
    uint64_t start = sl_clock_mono_ms(), lines = 0, bytes = 0;
    int ex = produce_loop(p, a, &lines, &bytes);
    rc = sluice_producer_flush(p, 0);
    struct sluice_producer_stats st;
    sluice_producer_stats(p, &st);
    sluice_producer_free(p);
    double s = (double)(sl_clock_mono_ms() - start) / 1000.0;
    s = s > 0.001 ? s : 0.001;
    uint64_t failed = atomic_load(&produce_failed);
    fprintf(stderr,
            "produced %" PRIu64 " records (%.1f MB) to %s in %.2f s: %.0f records/s, "
            "%.1f MB/s; %" PRIu64 " batches, %" PRIu64 " retries, %" PRIu64 " failed\n",
            atomic_load(&produce_ok), (double)bytes / 1e6, stream, s, (double)lines / s,
            (double)bytes / 1e6 / s, st.batches_sent, st.retries, failed);
    if (failed > 0) {
        int e = atomic_load(&produce_first_err);
        fprintf(stderr, "sluice: %" PRIu64 " records failed: %s (%s)\n", failed, sluice_strerror(e),
                sl_errname(e));
        ex = CLI_EXIT_ERR;
    }
    return rc == SL_OK ? ex : CLI_EXIT_ERR;
}

static void init_produce(void *args)
{
    struct produce_args *a = args;
    a->po.block_when_full = 1;
    a->po.ack = SLUICE_ACK_DURABLE;
}

static int check_produce(const struct cli_call *call)
{
    const struct produce_args *a = call->args;
    if (a->key != NULL && a->key_field != NULL) {
        return cli_usage(call->cmd, "--key and --key-field exclude each other");
    }
    cli_signals_install(); /* Ctrl-C ends the input: what was read is still flushed */
    return CLI_EXIT_OK;
}

/* send / publish: --delay becomes the sluice.not_before attribute (wall-clock ms). */
static int check_send(const struct cli_call *call)
{
    struct produce_args *a = call->args;
    if (cli_call_seen(call, 1, "delay")) {
        uint64_t at = sl_clock_wall_ms() + a->delay_ms;
        char why[CLI_OPT_ERR_MAX];
        snprintf(a->not_before, sizeof(a->not_before), CLI_NOT_BEFORE_ATTR "=%" PRIu64, at);
        if (parse_attr(a->not_before, &a->attrs, why, sizeof(why)) != 0) {
            return cli_usage(call->cmd, "--delay: %s (with the one --delay adds)", why);
        }
    }
    cli_signals_install();
    return CLI_EXIT_OK;
}

static const char produce_help[] =
    "Sends one record per line of stdin (without the newline) and prints a summary on\n"
    "stderr. Records with the same key go to the same shard, in order; without a key\n"
    "they are spread round-robin.\n";

static const char send_help[] =
    "One message per stdin line, with durable acks; a summary on stderr.\n";

const struct cli_cmd cli_cmd_produce = {
    .name = "produce",
    .operands = "STREAM",
    .summary = "send one record per stdin line",
    .help = produce_help,
    .exits = "exit codes: 0 all records acknowledged, 1 some failed or broker/I/O error, 2 usage\n",
    .sets = {{record_opts, 0, "options"}, {producer_opts, 0, "producer options"}},
    .args_size = sizeof(struct produce_args),
    .init = init_produce,
    .check = check_produce,
    .run = run_produce,
};

/* queue send and topic publish differ only in their names. */
#define SEND_CMD(cmd_name, operand, what)                                                          \
    {                                                                                              \
        .name = cmd_name, .operands = operand, .summary = what, .help = send_help,                 \
        .sets = {{record_opts, 0, "options"}, {send_opts, 0, "delivery options"}},                 \
        .args_size = sizeof(struct produce_args), .init = init_produce, .check = check_send,       \
        .run = run_produce,                                                                        \
    }

const struct cli_cmd cli_cmd_queue_send =
    SEND_CMD("queue send", "NAME", "send one message per stdin line");
const struct cli_cmd cli_cmd_topic_publish =
    SEND_CMD("topic publish", "TOPIC", "publish one message per stdin line");
