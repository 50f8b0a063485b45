/* cli.c - `sluice`, the command-line client: streams, produce, consume, lag, queues (queue
 * groups: create, send, receive, ack/nack, stats, purge, work) and topics (publish,
 * subscriptions as queue groups).
 *
 * Data goes to stdout, status and errors to stderr; a live progress line is drawn on
 * stderr only when stderr is a terminal. Exit codes: 0 ok, 1 an error from the broker or
 * I/O, 2 bad usage. Built on the public API in client/sluice.h only (plus jansson for
 * JSON lines).
 *
 * `queue work` runs one /bin/sh per message with posix_spawn (safe next to the client's
 * I/O thread: the child runs no allocator; its environment is built beforehand) and the
 * body on stdin from a memfd; it reaps with waitpid(WNOHANG) from its single loop thread,
 * which also extends leases, so at most `concurrency` messages are leased at a time.
 */
#include "client/sluice.h"

#include <jansson.h>

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define EXIT_OK             0
#define EXIT_ERR            1
#define EXIT_USAGE          2
#define CLI_POLL_MAX        1024u
#define CLI_POLL_TIMEOUT_MS 500u
#define CLI_PROGRESS_MS     250u
#define CLI_ATTRS_MAX       32u

static const char *broker_addr;
static volatile sig_atomic_t stop_requested;

static const char usage_main[] =
    "usage: sluice [--broker HOST:PORT] COMMAND ...\n"
    "\n"
    "commands:\n"
    "  stream create NAME --shards N [--retention-hours H] [--retention-bytes B]\n"
    "                [--compression zstd|none]\n"
    "  stream list [--json]\n"
    "  stream describe NAME [--json]\n"
    "  stream delete NAME\n"
    "  produce STREAM [--key K | --key-field F] [--attr k=v ...] [--ack MODE]\n"
    "                 [--compression zstd|none]       one record per stdin line\n"
    "  consume STREAM [--from POS] [--group G] [--follow] [--count N] [--json] [--shard N]\n"
    "  lag GROUP --stream S [--json]\n"
    "  queue create|send|receive|ack|nack|stats|purge|work NAME ...   queue groups\n"
    "  topic create|publish|subscribe|subscriptions|unsubscribe TOPIC ...\n"
    "\n"
    "  --broker HOST:PORT   the broker (default: $SLUICE_BROKER, else " SLUICE_DEFAULT_BROKER ")\n"
    "  COMMAND --help       help for one command\n"
    "\n"
    "Data goes to stdout, status to stderr.\n"
    "exit codes: 0 ok, 1 error from the broker or I/O, 2 usage error\n";

static const char usage_stream[] =
    "usage: sluice stream create NAME --shards N [--retention-hours H] [--retention-bytes B]\n"
    "                            [--compression zstd|none]\n"
    "       sluice stream list [--json]\n"
    "       sluice stream describe NAME [--json]\n"
    "       sluice stream delete NAME\n"
    "\n"
    "  --shards N            shards of the new stream (1..1024)\n"
    "  --retention-hours H   keep records H hours (1..8760; default: the broker's)\n"
    "  --retention-bytes B   cap the retained bytes per shard (default: no cap)\n"
    "  --compression C       what producers use by default: zstd or none\n"
    "  --json                machine-readable output (one JSON document)\n"
    "exit codes: 0 ok, 1 error from the broker or I/O, 2 usage error\n";

static const char usage_produce[] =
    "usage: sluice produce STREAM [options] < lines\n"
    "\n"
    "Sends one record per line of stdin (without the newline) and prints a summary on\n"
    "stderr. Records with the same key go to the same shard, in order; without a key\n"
    "they are spread round-robin.\n"
    "  --key K               partition key of every record\n"
    "  --key-field F         lines are JSON objects: the key is the value of field F\n"
    "  --attr k=v            an attribute on every record (repeatable, up to 32)\n"
    "  --ack MODE            none | written | durable (default durable)\n"
    "  --compression C       zstd | none (default: the stream's setting)\n"
    "  --linger-ms MS        batch for up to MS milliseconds (default 5)\n"
    "exit codes: 0 all records acknowledged, 1 some failed or broker/I/O error, 2 usage\n";

static const char usage_consume[] =
    "usage: sluice consume STREAM [options]\n"
    "\n"
    "Prints one record value per line on stdout (or --json objects). Without --follow it\n"
    "stops when it has caught up with every shard's tail.\n"
    "  --from POS            oldest | latest | seq:N | after:N | time:ISO8601 | time:MS\n"
    "                        (default oldest; shards with a group checkpoint resume there)\n"
    "  --group G             consumer group: resume from and commit its checkpoints\n"
    "                        (committed every second and at exit)\n"
    "  --follow              keep waiting for new records (stop with Ctrl-C)\n"
    "  --count N             stop after N records\n"
    "  --json                one JSON object per line: shard, seq, timestamp (ms), key,\n"
    "                        value, attributes (key/value as key_base64/value_base64\n"
    "                        when not UTF-8)\n"
    "  --shard N             read only shard N (repeatable)\n"
    "exit codes: 0 ok, 1 error from the broker or I/O, 2 usage error\n";

static const char usage_lag[] =
    "usage: sluice lag GROUP --stream S [--json]\n"
    "\n"
    "Per shard: the group's checkpoint, the shard's tail, records behind, ms behind.\n"
    "exit codes: 0 ok, 1 error from the broker or I/O, 2 usage error\n";

/* ---- helpers ---- */

static int usage_error(const char *usage, const char *fmt, const char *arg)
{
    fprintf(stderr, "sluice: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n\n%s", usage);
    return EXIT_USAGE;
}

static int broker_error(const char *what, int rc)
{
    const char *msg = sluice_last_error();
    fprintf(stderr, "sluice: %s: %s (%s)\n", what, msg[0] != '\0' ? msg : sluice_strerror(rc),
            sl_errname(rc));
    return EXIT_ERR;
}

static int parse_u64_arg(const char *s, uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (s[0] < '0' || s[0] > '9' || errno != 0 || *end != '\0') {
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_u32_arg(const char *s, uint32_t *out)
{
    uint64_t v = 0;
    if (parse_u64_arg(s, &v) != 0 || v > UINT32_MAX) {
        return -1;
    }
    *out = (uint32_t)v;
    return 0;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int connect_broker(sluice_client **c)
{
    struct sluice_client_opts o = {.client_id = "sluice-cli"};
    int rc = sluice_client_new(broker_addr, &o, c);
    return rc == SL_OK ? EXIT_OK : broker_error("connect", rc);
}

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static void print_json(json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT);
    if (s != NULL) {
        fputs(s, stdout);
        fputc('\n', stdout);
        free(s);
    }
}

static const char *fmt_time(uint64_t ms, char *buf, size_t cap)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    size_t n = strftime(buf, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, cap - n, ".%03uZ", (unsigned)(ms % 1000));
    return buf;
}

/* ---- stream ---- */

static json_t *stream_json(const struct sluice_stream_info *s)
{
    json_t *j =
        json_pack("{s:s, s:I, s:I, s:I, s:s, s:I}", "name", s->name, "shards",
                  (json_int_t)s->shard_count, "retention_hours", (json_int_t)s->retention_hours,
                  "retention_bytes", (json_int_t)s->retention_bytes, "compression", s->compression,
                  "created_ms", (json_int_t)s->created_ms);
    if (j != NULL && s->shards != NULL) {
        json_t *arr = json_array();
        for (uint32_t i = 0; i < s->shards_len; i++) {
            const struct sluice_shard_info *h = &s->shards[i];
            char hs[24], he[24];
            snprintf(hs, sizeof(hs), "%016" PRIx64, h->hash_start);
            snprintf(he, sizeof(he), "%016" PRIx64, h->hash_end);
            json_array_append_new(
                arr,
                json_pack("{s:I, s:s, s:s, s:I, s:I, s:I, s:I, s:s, s:s}", "shard",
                          (json_int_t)h->shard,
                          "hash_start", hs, "hash_end", he, "first_seq", (json_int_t)h->first_seq,
                          "next_seq", (json_int_t)h->next_seq, "bytes", (json_int_t)h->bytes,
                          "segments", (json_int_t)h->segments, "status", sl_errname(h->status),
                          "status_message", h->status_message));
        }
        json_object_set_new(j, "shard_info", arr);
    }
    return j;
}

static void print_describe(const struct sluice_stream_info *s)
{
    char t[40];
    printf("stream       %s\n", s->name);
    printf("shards       %u\n", s->shard_count);
    printf("retention    %u h, %s\n", s->retention_hours, s->retention_bytes ? "" : "no byte cap");
    if (s->retention_bytes) {
        printf("             %" PRIu64 " bytes per shard\n", s->retention_bytes);
    }
    printf("compression  %s\n", s->compression[0] ? s->compression : "none");
    printf("created      %s\n\n", fmt_time(s->created_ms, t, sizeof(t)));
    printf("%5s  %-16s  %-16s  %12s  %12s  %12s  %5s  %s\n", "SHARD", "HASH_START", "HASH_END",
           "FIRST_SEQ", "NEXT_SEQ", "BYTES", "SEGS", "STATUS");
    for (uint32_t i = 0; i < s->shards_len; i++) {
        const struct sluice_shard_info *h = &s->shards[i];
        printf("%5u  %016" PRIx64 "  %016" PRIx64 "  %12" PRIu64 "  %12" PRIu64 "  %12" PRIu64
               "  %5u  %s\n",
               h->shard, h->hash_start, h->hash_end, h->first_seq, h->next_seq, h->bytes,
               h->segments, h->status == SL_OK ? "ok" : sl_errname(h->status));
    }
    for (uint32_t i = 0; i < s->shards_len; i++) {
        if (s->shards[i].status != SL_OK && s->shards[i].status_message[0] != '\0') {
            printf("shard %u: %s\n", s->shards[i].shard, s->shards[i].status_message);
        }
    }
}

static int stream_create(sluice_client *c, const char *name, struct sluice_stream_opts *o)
{
    struct sluice_stream_info *info = NULL;
    int rc = sluice_stream_create(c, name, o, &info);
    if (rc != SL_OK) {
        return broker_error("stream create", rc);
    }
    fprintf(stderr, "created stream %s: %u shards, retention %u h, compression %s\n", info->name,
            info->shard_count, info->retention_hours,
            info->compression[0] ? info->compression : "none");
    sluice_stream_info_free(info);
    return EXIT_OK;
}

static int stream_list(sluice_client *c, int json)
{
    struct sluice_stream_info *list = NULL;
    size_t n = 0;
    int rc = sluice_stream_list(c, &list, &n);
    if (rc != SL_OK) {
        return broker_error("stream list", rc);
    }
    if (json) {
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++) {
            json_array_append_new(arr, stream_json(&list[i]));
        }
        print_json(arr);
        json_decref(arr);
    } else {
        printf("%-32s  %6s  %9s  %14s  %s\n", "NAME", "SHARDS", "RETENTION", "RETENTION_BYTES",
               "COMPRESSION");
        for (size_t i = 0; i < n; i++) {
            char h[24];
            snprintf(h, sizeof(h), "%uh", list[i].retention_hours);
            printf("%-32s  %6u  %9s  %14" PRIu64 "  %s\n", list[i].name, list[i].shard_count, h,
                   list[i].retention_bytes, list[i].compression[0] ? list[i].compression : "none");
        }
    }
    sluice_stream_list_free(list, n);
    return EXIT_OK;
}

static int stream_describe(sluice_client *c, const char *name, int json)
{
    struct sluice_stream_info *info = NULL;
    int rc = sluice_stream_describe(c, name, &info);
    if (rc != SL_OK) {
        return broker_error("stream describe", rc);
    }
    if (json) {
        json_t *j = stream_json(info);
        print_json(j);
        json_decref(j);
    } else {
        print_describe(info);
    }
    sluice_stream_info_free(info);
    return EXIT_OK;
}

static int parse_compression(const char *s, enum sluice_compression *out)
{
    if (strcmp(s, "zstd") == 0) {
        *out = SLUICE_COMPRESSION_ZSTD;
    } else if (strcmp(s, "none") == 0) {
        *out = SLUICE_COMPRESSION_NONE;
    } else {
        return -1;
    }
    return 0;
}

static int cmd_stream(int argc, char **argv)
{
    static const struct option opts[] = {
        {"shards", required_argument, NULL, 's'},
        {"retention-hours", required_argument, NULL, 'r'},
        {"retention-bytes", required_argument, NULL, 'b'},
        {"compression", required_argument, NULL, 'c'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct sluice_stream_opts so = {0};
    int json = 0, have_shards = 0;
    optind = 0;
    for (int ch; (ch = getopt_long(argc, argv, "h", opts, NULL)) != -1;) {
        switch (ch) {
        case 's':
            if (parse_u32_arg(optarg, &so.shard_count) != 0 || so.shard_count == 0) {
                return usage_error(usage_stream, "bad --shards '%s'", optarg);
            }
            have_shards = 1;
            break;
        case 'r':
            if (parse_u32_arg(optarg, &so.retention_hours) != 0) {
                return usage_error(usage_stream, "bad --retention-hours '%s'", optarg);
            }
            break;
        case 'b':
            if (parse_u64_arg(optarg, &so.retention_bytes) != 0) {
                return usage_error(usage_stream, "bad --retention-bytes '%s'", optarg);
            }
            break;
        case 'c':
            if (parse_compression(optarg, &so.compression) != 0) {
                return usage_error(usage_stream, "bad --compression '%s'", optarg);
            }
            break;
        case 'j':
            json = 1;
            break;
        case 'h':
            fputs(usage_stream, stdout);
            return EXIT_OK;
        default:
            return usage_error(usage_stream, "%s", "bad option");
        }
    }
    /* Positionals: argv[optind] = verb, then NAME (options may also follow them). */
    int npos = argc - optind;
    const char *verb = npos > 0 ? argv[optind] : NULL;
    const char *name = npos > 1 ? argv[optind + 1] : NULL;
    if (verb == NULL) {
        return usage_error(usage_stream, "%s", "missing stream subcommand");
    }
    int want_name = strcmp(verb, "list") != 0;
    if (strcmp(verb, "create") && strcmp(verb, "list") && strcmp(verb, "describe") &&
        strcmp(verb, "delete")) {
        return usage_error(usage_stream, "unknown stream subcommand '%s'", verb);
    }
    if (npos != (want_name ? 2 : 1)) {
        return usage_error(usage_stream, "%s",
                           want_name ? "expected one stream NAME" : "unexpected arguments");
    }
    if (strcmp(verb, "create") == 0 && !have_shards) {
        return usage_error(usage_stream, "%s", "stream create needs --shards N");
    }
    sluice_client *c = NULL;
    int ex = connect_broker(&c);
    if (ex != EXIT_OK) {
        return ex;
    }
    if (strcmp(verb, "create") == 0) {
        ex = stream_create(c, name, &so);
    } else if (strcmp(verb, "list") == 0) {
        ex = stream_list(c, json);
    } else if (strcmp(verb, "describe") == 0) {
        ex = stream_describe(c, name, json);
    } else {
        int rc = sluice_stream_delete(c, name);
        ex = rc == SL_OK ? EXIT_OK : broker_error("stream delete", rc);
        if (rc == SL_OK) {
            fprintf(stderr, "deleted stream %s\n", name);
        }
    }
    sluice_client_free(c);
    return ex;
}

/* ---- produce ---- */

static atomic_uint_fast64_t produce_ok, produce_failed;
static _Atomic int produce_first_err;

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

struct produce_args {
    const char *stream;
    const char *key;
    const char *key_field;
    struct sluice_attr attrs[CLI_ATTRS_MAX];
    uint32_t attr_count;
    struct sluice_producer_opts po;
};

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
    double s = (double)(now_ms() - start_ms) / 1000.0;
    uint64_t ok = atomic_load(&produce_ok), failed = atomic_load(&produce_failed);
    fprintf(stderr, "%s%" PRIu64 " read, %" PRIu64 " acknowledged, %" PRIu64 " failed, %.1f s%s",
            final ? "" : "\r", lines, ok, failed, s, final ? "\n" : "   ");
}

static int produce_loop(sluice_producer *p, const struct produce_args *a, uint64_t *lines,
                        uint64_t *bytes)
{
    int tty = isatty(STDERR_FILENO);
    uint64_t start = now_ms(), last = start;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int ex = EXIT_OK;
    while (!stop_requested && (n = getline(&line, &cap, stdin)) >= 0) {
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
            sluice_produce(p, key, key_len, line, len, a->attrs, a->attr_count, on_delivery, NULL);
        free(owned);
        if (rc != SL_OK) {
            ex = broker_error("produce", rc);
            break;
        }
        (*lines)++;
        *bytes += len;
        if (tty && now_ms() - last >= CLI_PROGRESS_MS) {
            last = now_ms();
            produce_progress(*lines, start, 0);
        }
    }
    if (ferror(stdin)) {
        fprintf(stderr, "sluice: reading stdin: %s\n", strerror(errno));
        ex = EXIT_ERR;
    }
    free(line);
    if (tty) {
        fputs("\r\033[K", stderr);
    }
    return ex;
}

static int produce_run(const struct produce_args *a)
{
    sluice_client *c = NULL;
    int ex = connect_broker(&c);
    if (ex != EXIT_OK) {
        return ex;
    }
    sluice_producer *p = NULL;
    int rc = sluice_producer_new(c, a->stream, &a->po, &p);
    if (rc != SL_OK) {
        sluice_client_free(c);
        return broker_error("producer", rc);
    }
    uint64_t start = now_ms(), lines = 0, bytes = 0;
    ex = produce_loop(p, a, &lines, &bytes);
    rc = sluice_producer_flush(p, 0);
    struct sluice_producer_stats st;
    sluice_producer_stats(p, &st);
    sluice_producer_free(p);
    sluice_client_free(c);
    double s = (double)(now_ms() - start) / 1000.0;
    s = s > 0.001 ? s : 0.001;
    uint64_t failed = atomic_load(&produce_failed);
    fprintf(stderr,
            "produced %" PRIu64 " records (%.1f MB) to %s in %.2f s: %.0f records/s, "
            "%.1f MB/s; %" PRIu64 " batches, %" PRIu64 " retries, %" PRIu64 " failed\n",
            atomic_load(&produce_ok), (double)bytes / 1e6, a->stream, s, (double)lines / s,
            (double)bytes / 1e6 / s, st.batches_sent, st.retries, failed);
    if (failed > 0) {
        int e = atomic_load(&produce_first_err);
        fprintf(stderr, "sluice: %" PRIu64 " records failed: %s (%s)\n", failed, sluice_strerror(e),
                sl_errname(e));
        ex = EXIT_ERR;
    }
    return rc == SL_OK ? ex : EXIT_ERR;
}

static int parse_attr(struct produce_args *a, char *kv)
{
    char *eq = strchr(kv, '=');
    if (eq == NULL || eq == kv || a->attr_count == CLI_ATTRS_MAX) {
        return -1;
    }
    a->attrs[a->attr_count++] =
        (struct sluice_attr){kv, (uint32_t)(eq - kv), eq + 1, (uint32_t)strlen(eq + 1)};
    return 0;
}

static int cmd_produce(int argc, char **argv)
{
    static const struct option opts[] = {
        {"key", required_argument, NULL, 'k'},
        {"key-field", required_argument, NULL, 'f'},
        {"attr", required_argument, NULL, 'a'},
        {"ack", required_argument, NULL, 'A'},
        {"compression", required_argument, NULL, 'c'},
        {"linger-ms", required_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct produce_args a;
    memset(&a, 0, sizeof(a));
    a.po.block_when_full = 1;
    optind = 0;
    for (int ch; (ch = getopt_long(argc, argv, "h", opts, NULL)) != -1;) {
        switch (ch) {
        case 'k':
            a.key = optarg;
            break;
        case 'f':
            a.key_field = optarg;
            break;
        case 'a':
            if (parse_attr(&a, optarg) != 0) {
                return usage_error(usage_produce, "bad --attr '%s' (want k=v, at most 32)", optarg);
            }
            break;
        case 'A':
            if (strcmp(optarg, "none") == 0) {
                a.po.ack = SLUICE_ACK_NONE;
            } else if (strcmp(optarg, "written") == 0) {
                a.po.ack = SLUICE_ACK_WRITTEN;
            } else if (strcmp(optarg, "durable") == 0) {
                a.po.ack = SLUICE_ACK_DURABLE;
            } else {
                return usage_error(usage_produce, "bad --ack '%s'", optarg);
            }
            break;
        case 'c':
            if (parse_compression(optarg, &a.po.compression) != 0) {
                return usage_error(usage_produce, "bad --compression '%s'", optarg);
            }
            break;
        case 'l':
            if (parse_u32_arg(optarg, &a.po.linger_ms) != 0) {
                return usage_error(usage_produce, "bad --linger-ms '%s'", optarg);
            }
            break;
        case 'h':
            fputs(usage_produce, stdout);
            return EXIT_OK;
        default:
            return usage_error(usage_produce, "%s", "bad option");
        }
    }
    if (argc - optind != 1) {
        return usage_error(usage_produce, "%s", "expected one STREAM");
    }
    if (a.key != NULL && a.key_field != NULL) {
        return usage_error(usage_produce, "%s", "--key and --key-field exclude each other");
    }
    if (a.key != NULL && strlen(a.key) > 256) {
        return usage_error(usage_produce, "%s", "--key longer than 256 bytes");
    }
    a.stream = argv[optind];
    return produce_run(&a);
}

/* ---- consume ---- */

struct consume_args {
    const char *stream;
    const char *group;
    int follow;
    int json;
    uint64_t count; /* 0 = unlimited */
    uint32_t shards[1024];
    uint32_t shards_len;
    struct sluice_position from;
};

static void on_trimmed(void *ctx, uint32_t shard, uint64_t from_seq, uint64_t to_seq)
{
    (void)ctx;
    fprintf(stderr,
            "sluice: shard %u: records from %" PRIu64 " were trimmed; continuing at %" PRIu64 "\n",
            shard, from_seq, to_seq);
}

static void b64(const uint8_t *p, size_t n, char *out)
{
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
                     (i + 2 < n ? p[i + 2] : 0);
        out[o++] = t[v >> 18 & 63];
        out[o++] = t[v >> 12 & 63];
        out[o++] = i + 1 < n ? t[v >> 6 & 63] : '=';
        out[o++] = i + 2 < n ? t[v & 63] : '=';
    }
    out[o] = '\0';
}

/* Sets obj[name] to the bytes as a JSON string, or obj[name_base64] when not UTF-8. */
static void json_set_bytes(json_t *obj, const char *name, const uint8_t *p, size_t n)
{
    json_t *s = json_stringn((const char *)p, n);
    if (s != NULL) {
        json_object_set_new(obj, name, s);
        return;
    }
    char *enc = malloc(4 * (n / 3 + 1) + 1);
    char key[64];
    if (enc != NULL) {
        b64(p, n, enc);
        snprintf(key, sizeof(key), "%s_base64", name);
        json_object_set_new(obj, key, json_string(enc));
        free(enc);
    }
}

static int print_record(const struct sluice_record *r, int json)
{
    if (!json) {
        fwrite(r->value, 1, r->value_len, stdout);
        fputc('\n', stdout);
    } else {
        json_t *o = json_pack("{s:I, s:I, s:I}", "shard", (json_int_t)r->shard, "seq",
                              (json_int_t)r->seq, "timestamp", (json_int_t)r->timestamp_ms);
        json_set_bytes(o, "key", r->key, r->key_len);
        json_set_bytes(o, "value", r->value, r->value_len);
        json_t *attrs = json_object();
        for (uint32_t i = 0; i < r->attr_count; i++) {
            char k[160];
            snprintf(k, sizeof(k), "%.*s", (int)r->attrs[i].key_len, r->attrs[i].key);
            json_t *v = json_stringn(r->attrs[i].value, r->attrs[i].value_len);
            json_object_set_new(attrs, k, v != NULL ? v : json_null());
        }
        json_object_set_new(o, "attributes", attrs);
        print_json(o);
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
    while (!stop_requested && (a->count == 0 || *got < a->count)) {
        size_t max = CLI_POLL_MAX, n = 0;
        if (a->count != 0 && a->count - *got < max) {
            max = (size_t)(a->count - *got);
        }
        int rc = sluice_consumer_poll(c, recs, max, &n, CLI_POLL_TIMEOUT_MS);
        if (rc == SL_ECLOSED && a->follow && retries++ < 60 && !stop_requested) {
            fprintf(stderr, "sluice: %s; retrying\n", sluice_last_error());
            sleep(1);
            continue;
        }
        if (rc != SL_OK) {
            return broker_error("consume", rc);
        }
        retries = 0;
        for (size_t i = 0; i < n; i++) {
            if (print_record(&recs[i], a->json) != 0) {
                fprintf(stderr, "sluice: writing stdout: %s\n", strerror(errno));
                return EXIT_ERR;
            }
        }
        *got += n;
        if (fflush(stdout) != 0) {
            fprintf(stderr, "sluice: writing stdout: %s\n", strerror(errno));
            return EXIT_ERR;
        }
        if (tty && now_ms() - last >= CLI_PROGRESS_MS) {
            last = now_ms();
            consume_progress(c, *got);
        }
        if (!a->follow && sluice_consumer_caught_up(c)) {
            break;
        }
    }
    if (tty) {
        fputs("\r\033[K", stderr);
    }
    return EXIT_OK;
}

static int consume_run(const struct consume_args *a)
{
    sluice_client *cl = NULL;
    int ex = connect_broker(&cl);
    if (ex != EXIT_OK) {
        return ex;
    }
    struct sluice_consumer_opts co = {
        .start = a->from,
        .shards = a->shards_len > 0 ? a->shards : NULL,
        .shards_len = a->shards_len,
        .auto_commit_ms = a->group != NULL ? 1000 : 0,
        .on_trimmed = on_trimmed,
    };
    sluice_consumer *c = NULL;
    int rc = sluice_consumer_new(cl, a->stream, a->group, &co, &c);
    if (rc != SL_OK) {
        sluice_client_free(cl);
        return broker_error("consumer", rc);
    }
    install_signals();
    uint64_t got = 0;
    ex = consume_loop(c, a, &got);
    rc = sluice_consumer_commit(c);
    if (rc != SL_OK) {
        ex = broker_error("commit", rc);
    }
    fprintf(stderr, "consumed %" PRIu64 " records from %s%s%s\n", got, a->stream,
            a->group != NULL ? ", committed for group " : "", a->group != NULL ? a->group : "");
    sluice_consumer_free(c);
    sluice_client_free(cl);
    return ex;
}

static int cmd_consume(int argc, char **argv)
{
    static const struct option opts[] = {
        {"from", required_argument, NULL, 'F'}, {"group", required_argument, NULL, 'g'},
        {"follow", no_argument, NULL, 'f'},     {"count", required_argument, NULL, 'n'},
        {"json", no_argument, NULL, 'j'},       {"shard", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},       {NULL, 0, NULL, 0},
    };
    static struct consume_args a;
    memset(&a, 0, sizeof(a));
    a.from.kind = SLUICE_TRIM_HORIZON;
    optind = 0;
    for (int ch; (ch = getopt_long(argc, argv, "h", opts, NULL)) != -1;) {
        switch (ch) {
        case 'F':
            if (sluice_position_parse(optarg, &a.from) != SL_OK) {
                return usage_error(usage_consume, "bad --from '%s'", optarg);
            }
            break;
        case 'g':
            a.group = optarg;
            break;
        case 'f':
            a.follow = 1;
            break;
        case 'n':
            if (parse_u64_arg(optarg, &a.count) != 0 || a.count == 0) {
                return usage_error(usage_consume, "bad --count '%s'", optarg);
            }
            break;
        case 'j':
            a.json = 1;
            break;
        case 's':
            if (a.shards_len == 1024 || parse_u32_arg(optarg, &a.shards[a.shards_len]) != 0) {
                return usage_error(usage_consume, "bad --shard '%s'", optarg);
            }
            a.shards_len++;
            break;
        case 'h':
            fputs(usage_consume, stdout);
            return EXIT_OK;
        default:
            return usage_error(usage_consume, "%s", "bad option");
        }
    }
    if (argc - optind != 1) {
        return usage_error(usage_consume, "%s", "expected one STREAM");
    }
    a.stream = argv[optind];
    return consume_run(&a);
}

/* ---- lag ---- */

static int cmd_lag(int argc, char **argv)
{
    static const struct option opts[] = {
        {"stream", required_argument, NULL, 's'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *stream = NULL;
    int json = 0;
    optind = 0;
    for (int ch; (ch = getopt_long(argc, argv, "h", opts, NULL)) != -1;) {
        if (ch == 's') {
            stream = optarg;
        } else if (ch == 'j') {
            json = 1;
        } else if (ch == 'h') {
            fputs(usage_lag, stdout);
            return EXIT_OK;
        } else {
            return usage_error(usage_lag, "%s", "bad option");
        }
    }
    if (argc - optind != 1 || stream == NULL) {
        return usage_error(usage_lag, "%s", "expected GROUP and --stream S");
    }
    sluice_client *c = NULL;
    int ex = connect_broker(&c);
    if (ex != EXIT_OK) {
        return ex;
    }
    struct sluice_shard_lag *lag = NULL;
    size_t n = 0;
    int rc = sluice_group_lag(c, argv[optind], stream, &lag, &n);
    sluice_client_free(c);
    if (rc != SL_OK) {
        return broker_error("lag", rc);
    }
    json_t *arr = json ? json_array() : NULL;
    if (!json) {
        printf("%5s  %12s  %12s  %14s  %12s\n", "SHARD", "CHECKPOINT", "TAIL", "RECORDS_BEHIND",
               "MS_BEHIND");
    }
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        total += lag[i].records_behind;
        if (json) {
            json_array_append_new(arr, json_pack("{s:I, s:I, s:I, s:I, s:I}", "shard",
                                                 (json_int_t)lag[i].shard, "checkpoint",
                                                 (json_int_t)lag[i].checkpoint, "tail",
                                                 (json_int_t)lag[i].tail_seq, "records_behind",
                                                 (json_int_t)lag[i].records_behind, "ms_behind",
                                                 (json_int_t)lag[i].ms_behind));
        } else {
            printf("%5u  %12" PRIu64 "  %12" PRIu64 "  %14" PRIu64 "  %12" PRIu64 "\n",
                   lag[i].shard, lag[i].checkpoint, lag[i].tail_seq, lag[i].records_behind,
                   lag[i].ms_behind);
        }
    }
    if (json) {
        print_json(arr);
        json_decref(arr);
    } else {
        printf("%5s  %12s  %12s  %14" PRIu64 "\n", "total", "", "", total);
    }
    free(lag);
    return EXIT_OK;
}

/* ---- queue and topic ---- */

#define CLI_DEFAULT_GROUP  "default"
#define CLI_ACK_CHUNK      1000u /* receipts read from stdin per ack request */
#define CLI_SECONDS_MAX_MS (UINT32_MAX - 1u)

static const char usage_queue[] =
    "usage: sluice queue create NAME [--shards N] [--group G] [group options]\n"
    "       sluice queue send NAME [--key K] [--attr k=v ...] [--delay S] < lines\n"
    "       sluice queue receive NAME [--group G] [--max N] [--wait S] [--ack] [--json]\n"
    "                                 [--visibility S]\n"
    "       sluice queue ack NAME [--group G] RECEIPT... | -\n"
    "       sluice queue nack NAME [--group G] [--delay S] RECEIPT... | -\n"
    "       sluice queue stats NAME [--group G] [--json]\n"
    "       sluice queue purge NAME [--group G]\n"
    "       sluice queue redrive NAME [--group G]\n"
    "       sluice queue work NAME [--group G] --exec CMD [--concurrency N] [--visibility S]\n"
    "\n"
    "A queue is a stream read by a queue group (competing consumers): each message goes to\n"
    "one receiver at a time for a visibility timeout; acknowledged messages are done,\n"
    "others become visible again. The group is \"" CLI_DEFAULT_GROUP "\" unless --group says.\n"
    "  create     creates the stream NAME (unless it exists; --shards N, default 1) and the\n"
    "             queue group\n"
    "  send       one message per stdin line (durable acks); a summary on stderr;\n"
    "             --delay S: not delivered before S seconds from now (at most 900)\n"
    "  receive    prints one message body per line; --json: one object per message with\n"
    "             receipt, shard, seq, delivery_count, timestamp, key, attributes, value\n"
    "             --max N (default 1), --wait S seconds for the first message (default 0),\n"
    "             --ack: acknowledge them once printed, --visibility S: lease length\n"
    "  ack, nack  receipts as arguments, or one per stdin line with '-';\n"
    "             nack --delay S: visible again after S seconds (default 0)\n"
    "  stats      backlog, in flight, delayed, dead-lettered, oldest age, configuration\n"
    "  purge      drops every message the group has not acknowledged yet\n"
    "  redrive    moves the group's dead-lettered messages back to the queue\n"
    "  work       runs CMD per message (see sluice queue work --help)\n"
    "group options (create):\n"
    "  --visibility S        default visibility timeout in seconds (default 30)\n"
    "  --max-deliveries N    dead-letter a message after N deliveries (default: never)\n"
    "  --dead-letter STREAM  where (default NAME.GROUP.dlq)\n"
    "  --ordered             one message per key at a time, in order\n"
    "  --filter JSON         deliver only messages whose attributes match the pattern\n"
    "  --from POS            oldest | latest | time:ISO8601 (default oldest)\n"
    "  --max-inflight N      leased messages at most (default: the broker's)\n"
    "exit codes: 0 ok, 1 error from the broker or I/O, 2 usage error\n";

static const char usage_topic[] =
    "usage: sluice topic create NAME [--shards N]\n"
    "       sluice topic publish TOPIC [--key K] [--attr k=v ...]     < lines\n"
    "       sluice topic subscribe TOPIC SUB [--from oldest|latest|time:ISO8601]\n"
    "                              [--filter JSON] [--visibility S] [group options]\n"
    "       sluice topic subscriptions TOPIC [--json]\n"
    "       sluice topic unsubscribe TOPIC SUB\n"
    "\n"
    "A topic is a stream; a subscription is a queue group named SUB on it, read with\n"
    "  sluice queue receive TOPIC --group SUB\n"
    "  create         creates the stream (--shards N, default 1)\n"
    "  publish        one message per stdin line (durable acks); a summary on stderr\n"
    "  subscribe      --from: where the subscription starts (default latest);\n"
    "                 --filter: an EventBridge-style JSON pattern on the attributes, e.g.\n"
    "                 '{\"type\":[\"order\"],\"region\":[{\"prefix\":\"eu-\"}]}'\n"
    "                 also --max-deliveries N, --dead-letter STREAM, --ordered,\n"
    "                 --max-inflight N (see sluice queue --help)\n"
    "  subscriptions  lists the subscriptions (queue groups) of TOPIC\n"
    "  unsubscribe    deletes the subscription and its state\n"
    "exit codes: 0 ok, 1 error from the broker or I/O, 2 usage error\n";

/* Parses decimal seconds ("30", "0.25") into milliseconds. */
static int parse_seconds_ms(const char *s, uint32_t *ms_out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (s[0] < '0' || s[0] > '9' || errno != 0 || *end != '\0' || !(v >= 0.0) ||
        v * 1000.0 > (double)CLI_SECONDS_MAX_MS) {
        return -1;
    }
    *ms_out = (uint32_t)(v * 1000.0 + 0.5);
    return 0;
}

/* Applies one of the options shared by queue create and topic subscribe (getopt values
 * 'V'..'I' in their tables). Returns 1 when `ch` is one of them and its value is good, -1
 * when the value is bad, 0 when `ch` is another option. */
static int group_opt(int ch, const char *arg, struct sluice_queue_group_opts *o)
{
    json_error_t jerr;
    json_t *doc = NULL;
    int bad = 0;
    switch (ch) {
    case 'V':
        bad =
            parse_seconds_ms(arg, &o->visibility_timeout_ms) != 0 || o->visibility_timeout_ms == 0;
        break;
    case 'M':
        bad = parse_u32_arg(arg, &o->max_deliveries) != 0;
        break;
    case 'D':
        o->dead_letter_stream = arg;
        bad = arg[0] == '\0';
        break;
    case 'O':
        o->ordered = 1;
        break;
    case 'F':
        doc = json_loads(arg, 0, &jerr);
        bad = !json_is_object(doc);
        json_decref(doc);
        o->filter = arg;
        break;
    case 'P':
        bad = sluice_position_parse(arg, &o->start) != SL_OK ||
              (o->start.kind != SLUICE_TRIM_HORIZON && o->start.kind != SLUICE_LATEST &&
               o->start.kind != SLUICE_AT_TIMESTAMP);
        break;
    case 'I':
        bad = parse_u32_arg(arg, &o->max_inflight) != 0;
        break;
    default:
        return 0;
    }
    return bad ? -1 : 1;
}

/* The long name of a group option's getopt value, for error messages. */
static const char *group_opt_name(int ch)
{
    switch (ch) {
    case 'V':
        return "--visibility";
    case 'M':
        return "--max-deliveries";
    case 'D':
        return "--dead-letter";
    case 'F':
        return "--filter (want a JSON object)";
    case 'P':
        return "--from (oldest, latest or time:ISO8601)";
    case 'I':
        return "--max-inflight";
    }
    return "option";
}

static const char *position_str(const struct sluice_position *p, char *buf, size_t cap)
{
    char t[40];
    switch (p->kind) {
    case SLUICE_TRIM_HORIZON:
        return "oldest";
    case SLUICE_LATEST:
        return "latest";
    case SLUICE_AT_TIMESTAMP:
        snprintf(buf, cap, "time:%s", fmt_time(p->time_ms, t, sizeof(t)));
        return buf;
    case SLUICE_AT_SEQUENCE:
        snprintf(buf, cap, "seq:%" PRIu64, p->seq);
        return buf;
    case SLUICE_AFTER_SEQUENCE:
        snprintf(buf, cap, "after:%" PRIu64, p->seq);
        return buf;
    }
    return "?";
}

/* Creates the stream unless it exists (`must_create`: then EEXIST is an error too). */
static int ensure_stream(sluice_client *c, const char *name, uint32_t shards, int have_shards,
                         int must_create, const char *what)
{
    struct sluice_stream_opts so = {.shard_count = shards};
    struct sluice_stream_info *info = NULL;
    int rc = sluice_stream_create(c, name, &so, &info);
    if (rc == SL_OK) {
        fprintf(stderr, "created stream %s: %u shards\n", info->name, info->shard_count);
        sluice_stream_info_free(info);
        return EXIT_OK;
    }
    if (rc != SL_EEXIST || must_create) {
        return broker_error(what, rc);
    }
    rc = sluice_stream_describe(c, name, &info);
    if (rc != SL_OK) {
        return broker_error(what, rc);
    }
    if (have_shards && info->shard_count != shards) {
        fprintf(stderr, "sluice: stream %s exists with %u shards (not %u); using it\n", name,
                info->shard_count, shards);
    }
    sluice_stream_info_free(info);
    return EXIT_OK;
}

/* Connects, runs `fn`, disconnects. */
static int with_client(int (*fn)(sluice_client *, void *), void *arg)
{
    sluice_client *c = NULL;
    int ex = connect_broker(&c);
    if (ex != EXIT_OK) {
        return ex;
    }
    ex = fn(c, arg);
    sluice_client_free(c);
    return ex;
}

struct group_cmd {
    const char *stream;
    const char *group;
    uint32_t shards;
    int have_shards;
    int json;
    int is_topic;
    struct sluice_queue_group_opts o;
};

static int run_group_create(sluice_client *c, void *arg)
{
    struct group_cmd *g = arg;
    if (!g->is_topic) {
        int ex = ensure_stream(c, g->stream, g->shards, g->have_shards, 0, "queue create");
        if (ex != EXIT_OK) {
            return ex;
        }
    }
    int rc = sluice_queue_group_create(c, g->stream, g->group, &g->o);
    if (rc == SL_ENOTFOUND && g->is_topic) {
        fprintf(stderr, "sluice: topic subscribe: %s (create it: sluice topic create %s)\n",
                sluice_last_error(), g->stream);
        return EXIT_ERR;
    }
    if (rc == SL_EEXIST) {
        fprintf(stderr, "sluice: %s: %s %s already exists on %s\n",
                g->is_topic ? "topic subscribe" : "queue create",
                g->is_topic ? "subscription" : "queue group", g->group, g->stream);
        return EXIT_ERR;
    }
    if (rc != SL_OK) {
        return broker_error(g->is_topic ? "topic subscribe" : "queue create", rc);
    }
    char pos[64];
    fprintf(stderr, "created %s %s on %s: start %s%s%s\n",
            g->is_topic ? "subscription" : "queue group", g->group, g->stream,
            position_str(&g->o.start, pos, sizeof(pos)), g->o.filter != NULL ? ", filter " : "",
            g->o.filter != NULL ? g->o.filter : "");
    return EXIT_OK;
}

static int cmd_queue_create(int argc, char **argv)
{
    static const struct option opts[] = {
        {"shards", required_argument, NULL, 's'},
        {"group", required_argument, NULL, 'g'},
        {"help", no_argument, NULL, 'h'},
        {"visibility", required_argument, NULL, 'V'},
        {"max-deliveries", required_argument, NULL, 'M'},
        {"dead-letter", required_argument, NULL, 'D'},
        {"ordered", no_argument, NULL, 'O'},
        {"filter", required_argument, NULL, 'F'},
        {"from", required_argument, NULL, 'P'},
        {"max-inflight", required_argument, NULL, 'I'},
        {NULL, 0, NULL, 0},
    };
    struct group_cmd g = {.group = CLI_DEFAULT_GROUP, .shards = 1};
    optind = 0;
    for (int ch; (ch = getopt_long(argc, argv, "h", opts, NULL)) != -1;) {
        int r = group_opt(ch, optarg, &g.o);
        if (r < 0) {
            fprintf(stderr, "sluice: bad %s '%s'\n", group_opt_name(ch), optarg);
            return usage_error(usage_queue, "%s", "queue create: bad option value");
        } else if (r > 0) {
            continue;
        }
        if (ch == 's') {
            if (parse_u32_arg(optarg, &g.shards) != 0 || g.shards == 0) {
                return usage_error(usage_queue, "bad --shards '%s'", optarg);
            }
            g.have_shards = 1;
        } else if (ch == 'g') {
            g.group = optarg;
        } else if (ch == 'h') {
            fputs(usage_queue, stdout);
            return EXIT_OK;
        } else {
            return usage_error(usage_queue, "%s", "bad option");
        }
    }
    if (argc - optind != 1) {
        return usage_error(usage_queue, "%s", "queue create: expected one queue NAME");
    }
    g.stream = argv[optind];
    return with_client(run_group_create, &g);
}

/* send / publish: the producer with durable acks. */
static int cmd_send(int argc, char **argv, const char *usage, const char *what)
{
    static const struct option opts[] = {
        {"key", required_argument, NULL, 'k'},
        {"attr", required_argument, NULL, 'a'},
        {"delay", required_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct produce_args a;
    memset(&a, 0, sizeof(a));
    a.po.block_when_full = 1;
    a.po.ack = SLUICE_ACK_DURABLE;
    static char not_before[48]; /* the attribute's text lives until produce_run ends */
    optind = 0;
    for (int ch; (ch = getopt_long(argc, argv, "h", opts, NULL)) != -1;) {
        if (ch == 'k') {
            a.key = optarg;
        } else if (ch == 'd') {
            char *end = NULL;
            unsigned long secs = strtoul(optarg, &end, 10);
            if (end == optarg || *end != '\0' || secs > 900) {
                return usage_error(usage, "bad --delay '%s' (seconds, 0 to 900)", optarg);
            }
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            uint64_t at = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u +
                          (uint64_t)secs * 1000u;
            snprintf(not_before, sizeof(not_before), "sluice.not_before=%llu",
                     (unsigned long long)at);
            if (parse_attr(&a, not_before) != 0) {
                return usage_error(usage, "%s", "too many attributes");
            }
        } else if (ch == 'a') {
            if (parse_attr(&a, optarg) != 0) {
                return usage_error(usage, "bad --attr '%s' (want k=v, at most 32)", optarg);
            }
        } else if (ch == 'h') {
            fputs(usage, stdout);
            return EXIT_OK;
        } else {
            return usage_error(usage, "%s", "bad option");
        }
    }
    if (argc - optind != 1) {
        return usage_error(usage, "%s: expected one NAME", what);
    }
    if (a.key != NULL && strlen(a.key) > 256) {
        return usage_error(usage, "%s", "--key longer than 256 bytes");
    }
    a.stream = argv[optind];
    install_signals();
    return produce_run(&a);
}

/* ---- queue receive ---- */

struct receive_cmd {
    const char *stream;
    const char *group;
    uint32_t max;
    uint32_t wait_ms;
    uint32_t visibility_ms;
    int ack;
    int json;
};

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
    json_set_bytes(o, "key", m->key, m->key_len);
    json_t *attrs = json_object();
    for (uint32_t i = 0; i < m->attr_count; i++) {
        char k[160];
        snprintf(k, sizeof(k), "%.*s", (int)m->attrs[i].key_len, m->attrs[i].key);
        json_t *v = json_stringn(m->attrs[i].value, m->attrs[i].value_len);
        json_object_set_new(attrs, k, v != NULL ? v : json_null());
    }
    json_object_set_new(o, "attributes", attrs);
    json_set_bytes(o, "value", m->value, m->value_len);
    print_json(o);
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
            broker_error("ack", rc);
            failed = -1;
        }
    }
    free(receipts);
    free(results);
    return failed;
}

/* One receive of up to `max`; prints and (with --ack) acks. Returns EXIT_* and adds to *got
 * / *ack_failed. */
static int receive_once(sluice_client *c, const struct receive_cmd *r, uint32_t max,
                        uint32_t wait_ms, size_t *got, uint64_t *ack_failed)
{
    struct sluice_message *msgs = NULL;
    size_t n = 0;
    int rc =
        sluice_queue_receive(c, r->stream, r->group, max, wait_ms, r->visibility_ms, &msgs, &n);
    if (rc != SL_OK) {
        return broker_error("queue receive", rc);
    }
    int ex = EXIT_OK;
    for (size_t i = 0; i < n && ex == EXIT_OK; i++) {
        if (print_message(&msgs[i], r->json) != 0) {
            ex = EXIT_ERR;
        }
    }
    if (ex != EXIT_OK || fflush(stdout) != 0) {
        fprintf(stderr, "sluice: writing stdout: %s (messages not acknowledged)\n",
                strerror(errno));
        sluice_messages_free(msgs, n);
        return EXIT_ERR;
    }
    *got += n;
    if (r->ack && n > 0) {
        long failed = ack_messages(c, r->stream, r->group, msgs, n);
        if (failed < 0) {
            ex = EXIT_ERR;
        } else {
            *ack_failed += (uint64_t)failed;
        }
    }
    sluice_messages_free(msgs, n);
    return ex;
}

static int run_receive(sluice_client *c, void *arg)
{
    const struct receive_cmd *r = arg;
    uint64_t deadline = now_ms() + r->wait_ms, ack_failed = 0;
    size_t got = 0, before = 0;
    int ex = EXIT_OK;
    install_signals();
    /* Wait (in long-polls the broker may cap) until something arrives or --wait passes;
     * then take what else is visible at once, up to --max. */
    while (ex == EXIT_OK && got < r->max && !stop_requested) {
        uint64_t now = now_ms();
        uint32_t wait = got == 0 && now < deadline ? (uint32_t)(deadline - now) : 0;
        uint32_t want = r->max - (uint32_t)got;
        want = want < SLUICE_QUEUE_RECEIVE_MAX ? want : SLUICE_QUEUE_RECEIVE_MAX;
        before = got;
        ex = receive_once(c, r, want, wait, &got, &ack_failed);
        if (got == before && (got > 0 || wait == 0)) {
            break;
        }
    }
    if (ex == EXIT_OK || got > 0) {
        fprintf(stderr, "received %zu message%s from %s (group %s)%s\n", got, got == 1 ? "" : "s",
                r->stream, r->group,
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
        ex = EXIT_ERR;
    }
    return ex;
}

static int cmd_queue_receive(int argc, char **argv)
{
    static const struct option opts[] = {
        {"group", required_argument, NULL, 'g'}, {"max", required_argument, NULL, 'n'},
        {"wait", required_argument, NULL, 'w'},  {"ack", no_argument, NULL, 'a'},
        {"json", no_argument, NULL, 'j'},        {"visibility", required_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},        {NULL, 0, NULL, 0},
    };
    struct receive_cmd r = {.group = CLI_DEFAULT_GROUP, .max = 1};
    optind = 0;
    for (int ch; (ch = getopt_long(argc, argv, "h", opts, NULL)) != -1;) {
        switch (ch) {
        case 'g':
            r.group = optarg;
            break;
        case 'n':
            if (parse_u32_arg(optarg, &r.max) != 0 || r.max == 0) {
                return usage_error(usage_queue, "bad --max '%s'", optarg);
            }
            break;
        case 'w':
            if (parse_seconds_ms(optarg, &r.wait_ms) != 0) {
                return usage_error(usage_queue, "bad --wait '%s' (seconds)", optarg);
            }
            break;
        case 'V':
            if (parse_seconds_ms(optarg, &r.visibility_ms) != 0 || r.visibility_ms == 0) {
                return usage_error(usage_queue, "bad --visibility '%s' (seconds)", optarg);
            }
            break;
        case 'a':
            r.ack = 1;
            break;
        case 'j':
            r.json = 1;
            break;
        case 'h':
            fputs(usage_queue, stdout);
            return EXIT_OK;
        default:
            return usage_error(usage_queue, "%s", "bad option");
        }
    }
    if (argc - optind != 1) {
        return usage_error(usage_queue, "%s", "queue receive: expected one queue NAME");
    }
    r.stream = argv[optind];
    return with_client(run_receive, &r);
}

/* ---- queue ack / nack ---- */

struct ack_cmd {
    const char *stream;
    const char *group;
    int nack;
    uint32_t delay_ms;
    char **receipts; /* from argv, or NULL: stdin */
    size_t receipts_len;
    uint64_t ok;
    uint64_t lease_ended;
};

/* Acks (or nacks) one list; counts outcomes. Returns EXIT_*. */
static int ack_list(sluice_client *c, struct ack_cmd *a, const char *const *receipts, size_t n)
{
    int *results = malloc(n * sizeof(*results));
    if (results == NULL) {
        fprintf(stderr, "sluice: out of memory\n");
        return EXIT_ERR;
    }
    int rc = a->nack ? sluice_queue_nack(c, a->stream, a->group, receipts, n, a->delay_ms, results)
                     : sluice_queue_ack(c, a->stream, a->group, receipts, n, results);
    int ex = EXIT_OK;
    for (size_t i = 0; i < n; i++) {
        if (results[i] == SL_OK) {
            a->ok++;
        } else if (results[i] == SL_ENOTFOUND) {
            a->lease_ended++;
            fprintf(stderr, "sluice: %s: lease ended or unknown receipt\n", receipts[i]);
        } else {
            ex = broker_error(a->nack ? "queue nack" : "queue ack", rc);
            break;
        }
    }
    free(results);
    return ex;
}

/* Reads receipts one per stdin line and acks them CLI_ACK_CHUNK at a time. */
static int ack_stdin(sluice_client *c, struct ack_cmd *a)
{
    char *batch[CLI_ACK_CHUNK];
    size_t n = 0;
    int ex = EXIT_OK;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while (ex == EXIT_OK && (len = getline(&line, &cap, stdin)) >= 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) {
            line[--len] = '\0';
        }
        if (len == 0) {
            continue;
        }
        batch[n] = strdup(line);
        if (batch[n] == NULL) {
            fprintf(stderr, "sluice: out of memory\n");
            ex = EXIT_ERR;
            break;
        }
        if (++n == CLI_ACK_CHUNK) {
            ex = ack_list(c, a, (const char *const *)batch, n);
            for (size_t i = 0; i < n; i++) {
                free(batch[i]);
            }
            n = 0;
        }
    }
    if (ex == EXIT_OK && ferror(stdin)) {
        fprintf(stderr, "sluice: reading stdin: %s\n", strerror(errno));
        ex = EXIT_ERR;
    }
    if (ex == EXIT_OK && n > 0) {
        ex = ack_list(c, a, (const char *const *)batch, n);
    }
    for (size_t i = 0; i < n; i++) {
        free(batch[i]);
    }
    free(line);
    return ex;
}

static int run_ack(sluice_client *c, void *arg)
{
    struct ack_cmd *a = arg;
    int ex = a->receipts != NULL ? ack_list(c, a, (const char *const *)a->receipts, a->receipts_len)
                                 : ack_stdin(c, a);
    fprintf(stderr, "%s %" PRIu64 " message%s%s", a->nack ? "nacked" : "acknowledged", a->ok,
            a->ok == 1 ? "" : "s", a->lease_ended > 0 ? "" : "\n");
    if (a->lease_ended > 0) {
        fprintf(stderr, "; %" PRIu64 " receipt%s had no lease (it ended, or unknown)\n",
                a->lease_ended, a->lease_ended == 1 ? "" : "s");
    }
    return ex == EXIT_OK && a->lease_ended > 0 ? EXIT_ERR : ex;
}

static int cmd_queue_ack(int argc, char **argv, int nack)
{
    static const struct option opts[] = {
        {"group", required_argument, NULL, 'g'},
        {"delay", required_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct ack_cmd a = {.group = CLI_DEFAULT_GROUP, .nack = nack};
    optind = 0;
    for (int ch; (ch = getopt_long(argc, argv, "h", opts, NULL)) != -1;) {
        if (ch == 'g') {
            a.group = optarg;
        } else if (ch == 'd' && nack) {
            if (parse_seconds_ms(optarg, &a.delay_ms) != 0) {
                return usage_error(usage_queue, "bad --delay '%s' (seconds)", optarg);
            }
        } else if (ch == 'h') {
            fputs(usage_queue, stdout);
            return EXIT_OK;
        } else {
            return usage_error(usage_queue, "%s", "bad option");
        }
    }
    if (argc - optind < 2) {
        return usage_error(usage_queue, "%s", "expected queue NAME and RECEIPT... (or -)");
    }
    a.stream = argv[optind];
    int from_stdin = argc - optind == 2 && strcmp(argv[optind + 1], "-") == 0;
    if (!from_stdin) {
        a.receipts = argv + optind + 1;
        a.receipts_len = (size_t)(argc - optind - 1);
    }
    return with_client(run_ack, &a);
}

/* ---- queue stats / purge ---- */

static void print_stats(const struct group_cmd *g, const struct sluice_queue_stats *s)
{
    char pos[64];
    printf("queue           %s (group %s)\n", g->stream, g->group);
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
    printf("filter          %s\n", s->filter[0] ? s->filter : "none");
    printf("start           %s\n", position_str(&s->start, pos, sizeof(pos)));
    if (s->max_inflight > 0) {
        printf("max in flight   %u\n", s->max_inflight);
    } else {
        printf("max in flight   broker default\n");
    }
}

static json_t *stats_json(const struct group_cmd *g, const struct sluice_queue_stats *s)
{
    char pos[64];
    return json_pack(
        "{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:s, s:b, s:s, s:s, s:I}", "stream",
        g->stream, "group", g->group, "visible", (json_int_t)s->visible, "inflight",
        (json_int_t)s->inflight, "delayed", (json_int_t)s->delayed, "dead_lettered",
        (json_int_t)s->dead_lettered, "filtered_out", (json_int_t)s->filtered_out, "oldest_age_ms",
        (json_int_t)s->oldest_age_ms, "visibility_timeout_ms", (json_int_t)s->visibility_timeout_ms,
        "max_deliveries", (json_int_t)s->max_deliveries, "dead_letter_stream",
        s->dead_letter_stream, "ordered", s->ordered, "filter", s->filter, "start",
        position_str(&s->start, pos, sizeof(pos)), "max_inflight", (json_int_t)s->max_inflight);
}

static int run_stats(sluice_client *c, void *arg)
{
    const struct group_cmd *g = arg;
    struct sluice_queue_stats s;
    int rc = sluice_queue_stats(c, g->stream, g->group, &s);
    if (rc != SL_OK) {
        sluice_queue_stats_fini(&s);
        return broker_error("queue stats", rc);
    }
    if (g->json) {
        json_t *j = stats_json(g, &s);
        print_json(j);
        json_decref(j);
    } else {
        print_stats(g, &s);
    }
    sluice_queue_stats_fini(&s);
    return ferror(stdout) ? EXIT_ERR : EXIT_OK;
}

static int run_redrive(sluice_client *c, void *arg)
{
    const struct group_cmd *g = arg;
    uint64_t moved = 0;
    int rc = sluice_queue_redrive(c, g->stream, g->group, 0, &moved);
    if (rc != SL_OK) {
        fprintf(stderr, "queue redrive: moved %llu before the error\n", (unsigned long long)moved);
        return broker_error("queue redrive", rc);
    }
    fprintf(stderr, "redrove %llu message(s) back to %s (group %s)\n", (unsigned long long)moved,
            g->stream, g->group);
    return EXIT_OK;
}

static int run_purge(sluice_client *c, void *arg)
{
    const struct group_cmd *g = arg;
    int rc = sluice_queue_purge(c, g->stream, g->group);
    if (rc != SL_OK) {
        return broker_error("queue purge", rc);
    }
    fprintf(stderr, "purged queue %s (group %s)\n", g->stream, g->group);
    return EXIT_OK;
}

/* queue stats and queue purge: NAME [--group G] [--json]. */
static int cmd_queue_simple(int argc, char **argv, int (*fn)(sluice_client *, void *))
{
    static const struct option opts[] = {
        {"group", required_argument, NULL, 'g'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct group_cmd g = {.group = CLI_DEFAULT_GROUP};
    optind = 0;
    for (int ch; (ch = getopt_long(argc, argv, "h", opts, NULL)) != -1;) {
        if (ch == 'g') {
            g.group = optarg;
        } else if (ch == 'j' && fn == run_stats) {
            g.json = 1;
        } else if (ch == 'h') {
            fputs(usage_queue, stdout);
            return EXIT_OK;
        } else {
            return usage_error(usage_queue, "%s", "bad option");
        }
    }
    if (argc - optind != 1) {
        return usage_error(usage_queue, "%s", "expected one queue NAME");
    }
    g.stream = argv[optind];
    return with_client(fn, &g);
}

/* ---- queue work ---- */

#define WORK_CONCURRENCY_MAX 1024u
#define WORK_BACKOFF_MAX_MS  300000u /* nack delay cap: 5 minutes */
#define WORK_TICK_MS         50u     /* reap/extend period while every slot is busy */
#define WORK_POLL_BUSY_MS    250u    /* receive long-poll while commands run (reap promptly) */
#define WORK_POLL_IDLE_MS    1000u   /* receive long-poll while nothing runs */
#define WORK_PROGRESS_MS     1000u   /* progress line period when stderr is not a terminal */
#define WORK_RETRIES_MAX     60u     /* receive retries, 1 s apart, across a broker restart */

static const char usage_work[] =
    "usage: sluice queue work NAME [--group G] --exec CMD [--concurrency N] [--visibility S]\n"
    "\n"
    "Receives messages and runs CMD (with /bin/sh -c) once per message, at most N at a time\n"
    "(default 1). CMD gets the message body on stdin and in its environment:\n"
    "  SLUICE_MESSAGE_ID (the receipt), SLUICE_SHARD, SLUICE_SEQ, SLUICE_DELIVERY_COUNT,\n"
    "  SLUICE_ATTR_<KEY> per attribute (KEY upper-cased, other than [A-Z0-9] becomes _).\n"
    "Exit status 0 acknowledges the message; anything else nacks it, visible again after\n"
    "min(2^(delivery_count-1), 300) seconds. While CMD runs its lease is extended every\n"
    "visibility/2 (--visibility S seconds; default: the group's). SIGTERM or Ctrl-C stops\n"
    "receiving, waits for running commands, and gives back messages not started. A running\n"
    "done/failed count goes to stderr.\n"
    "exit codes: 0 stopped cleanly, 1 error from the broker or I/O, 2 usage error\n";

struct work_slot {
    pid_t pid; /* 0 = free */
    char *receipt;
    uint32_t delivery_count;
    uint64_t extend_at_ms;
};

struct work_cmd {
    const char *stream;
    const char *group;
    const char *exec;
    uint32_t concurrency;
    uint32_t visibility_ms;
    struct work_slot *slots;
    uint32_t running;
    uint64_t done, failed;
    uint64_t progress_ms;      /* when the progress line was last printed */
    uint64_t progress_settled; /* done + failed it showed */
    int tty;
};

static uint32_t work_backoff_ms(uint32_t delivery_count)
{
    uint32_t shift = delivery_count > 0 ? delivery_count - 1 : 0;
    if (shift >= 19) { /* 2^19 s is far past the cap */
        return WORK_BACKOFF_MAX_MS;
    }
    uint64_t ms = ((uint64_t)1 << shift) * 1000u;
    return ms < WORK_BACKOFF_MAX_MS ? (uint32_t)ms : WORK_BACKOFF_MAX_MS;
}

static int work_env_name_skip(const char *e)
{
    static const char *const ours[] = {"SLUICE_MESSAGE_ID=", "SLUICE_SHARD=", "SLUICE_SEQ=",
                                       "SLUICE_DELIVERY_COUNT=", "SLUICE_ATTR_"};
    for (size_t i = 0; i < sizeof(ours) / sizeof(ours[0]); i++) {
        if (strncmp(e, ours[i], strlen(ours[i])) == 0) {
            return 1;
        }
    }
    return 0;
}

static void work_env_free(char **envp, size_t from)
{
    for (size_t i = from; envp != NULL && envp[i] != NULL; i++) {
        free(envp[i]);
    }
    free(envp);
}

/* The child's environment: ours minus SLUICE_* names we set, plus the message's. Built
 * before posix_spawn so the child runs no allocator. *ours_from = first owned entry. */
static char **work_env(const struct sluice_message *m, size_t *ours_from)
{
    extern char **environ;
    size_t n = 0;
    while (environ[n] != NULL) {
        n++;
    }
    char **envp = calloc(n + 4 + m->attr_count + 1, sizeof(*envp));
    if (envp == NULL) {
        return NULL;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (!work_env_name_skip(environ[i])) {
            envp[k++] = environ[i];
        }
    }
    *ours_from = k;
    int bad = asprintf(&envp[k++], "SLUICE_MESSAGE_ID=%s", m->receipt) < 0;
    bad |= asprintf(&envp[k++], "SLUICE_SHARD=%u", m->shard) < 0;
    bad |= asprintf(&envp[k++], "SLUICE_SEQ=%" PRIu64, m->seq) < 0;
    bad |= asprintf(&envp[k++], "SLUICE_DELIVERY_COUNT=%u", m->delivery_count) < 0;
    for (uint32_t i = 0; i < m->attr_count && !bad; i++) {
        const struct sluice_attr *a = &m->attrs[i];
        bad |= asprintf(&envp[k], "SLUICE_ATTR_%.*s=%.*s", (int)a->key_len, a->key,
                        (int)a->value_len, a->value) < 0;
        for (char *p = envp[k] + strlen("SLUICE_ATTR_"); !bad && *p != '='; p++) {
            char ch = *p >= 'a' && *p <= 'z' ? (char)(*p - 'a' + 'A') : *p;
            *p = (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ? ch : '_';
        }
        k++;
    }
    if (bad) {
        work_env_free(envp, *ours_from);
        return NULL;
    }
    return envp;
}

/* Starts CMD for one message in `slot`. Returns 0, or -1 (reason printed). */
static int work_spawn(struct work_cmd *w, struct work_slot *slot, const struct sluice_message *m)
{
    int fd = memfd_create("sluice-message", MFD_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "sluice: memfd_create: %s\n", strerror(errno));
        return -1;
    }
    size_t off = 0;
    while (off < m->value_len) {
        ssize_t n = write(fd, m->value + off, m->value_len - off);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            fprintf(stderr, "sluice: writing message body: %s\n", strerror(errno));
            close(fd);
            return -1;
        }
        off += (size_t)n;
    }
    lseek(fd, 0, SEEK_SET);
    size_t ours = 0;
    char **envp = work_env(m, &ours);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fd, STDIN_FILENO);
    char *argv[] = {"sh", "-c", (char *)w->exec, NULL};
    pid_t pid = 0;
    int err = envp == NULL ? ENOMEM : posix_spawn(&pid, "/bin/sh", &fa, NULL, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    work_env_free(envp, ours);
    close(fd);
    if (err != 0) {
        fprintf(stderr, "sluice: starting /bin/sh: %s\n", strerror(err));
        return -1;
    }
    slot->receipt = strdup(m->receipt);
    slot->pid = pid;
    slot->delivery_count = m->delivery_count;
    slot->extend_at_ms = now_ms() + w->visibility_ms / 2;
    w->running++;
    return 0;
}

/* Nacks one receipt with `delay_ms`; returns EXIT_*. A lease that already ended is only
 * reported (the broker redelivers it anyway). */
static int work_nack(sluice_client *c, const struct work_cmd *w, const char *receipt,
                     uint32_t delay_ms)
{
    int result = SL_OK;
    int rc = sluice_queue_nack(c, w->stream, w->group, &receipt, 1, delay_ms, &result);
    if (rc == SL_ENOTFOUND) {
        fprintf(stderr, "sluice: nack %s: lease already ended\n", receipt);
        return EXIT_OK;
    }
    if (rc != SL_OK) { /* not fatal: the lease ends and the broker redelivers */
        broker_error("queue nack", rc);
    }
    return EXIT_OK;
}

static int work_finish(sluice_client *c, struct work_cmd *w, struct work_slot *s, int status)
{
    int ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    int ex = EXIT_OK;
    if (ok) {
        const char *r = s->receipt;
        int rc = sluice_queue_ack(c, w->stream, w->group, &r, 1, NULL);
        if (rc == SL_ENOTFOUND) {
            fprintf(stderr, "sluice: ack %s: lease ended (the message may run again)\n", r);
        } else if (rc != SL_OK) { /* not fatal: the message will run again */
            broker_error("queue ack", rc);
        }
        w->done++;
    } else {
        ex = work_nack(c, w, s->receipt, work_backoff_ms(s->delivery_count));
        w->failed++;
    }
    free(s->receipt);
    memset(s, 0, sizeof(*s));
    w->running--;
    return ex;
}

/* Reaps finished commands (ack or nack) and extends the leases that are due. */
static int work_tend(sluice_client *c, struct work_cmd *w)
{
    int ex = EXIT_OK;
    uint64_t now = now_ms();
    for (uint32_t i = 0; i < w->concurrency && ex == EXIT_OK; i++) {
        struct work_slot *s = &w->slots[i];
        int status = 0;
        pid_t r = s->pid != 0 ? waitpid(s->pid, &status, WNOHANG) : 0;
        if (r == s->pid && r != 0) {
            ex = work_finish(c, w, s, status);
        } else if (s->pid != 0 && now >= s->extend_at_ms) {
            const char *rc_receipt = s->receipt;
            int rc =
                sluice_queue_extend(c, w->stream, w->group, &rc_receipt, 1, w->visibility_ms, NULL);
            if (rc == SL_ENOTFOUND) {
                fprintf(stderr, "sluice: extend %s: lease already ended\n", s->receipt);
            } else if (rc != SL_OK) { /* not fatal: try again at the next period */
                broker_error("queue extend", rc);
            }
            s->extend_at_ms = now + w->visibility_ms / 2;
        }
    }
    uint64_t settled = w->done + w->failed;
    if (w->tty || (now - w->progress_ms >= WORK_PROGRESS_MS && settled != w->progress_settled)) {
        w->progress_ms = now;
        w->progress_settled = settled;
        fprintf(stderr, "%sdone %" PRIu64 ", failed %" PRIu64 ", running %u%s", w->tty ? "\r" : "",
                w->done, w->failed, w->running, w->tty ? "   " : "\n");
    }
    return ex;
}

/* Starts CMD for each received message; after a stop request, gives the rest back. */
static int work_start_all(sluice_client *c, struct work_cmd *w, struct sluice_message *msgs,
                          size_t n)
{
    int ex = EXIT_OK;
    uint32_t slot = 0;
    for (size_t i = 0; i < n && ex == EXIT_OK; i++) {
        while (slot < w->concurrency && w->slots[slot].pid != 0) {
            slot++;
        }
        if (stop_requested || slot == w->concurrency) { /* never more than free slots asked */
            ex = work_nack(c, w, msgs[i].receipt, 0);
        } else if (work_spawn(w, &w->slots[slot], &msgs[i]) != 0) {
            w->failed++;
            ex = work_nack(c, w, msgs[i].receipt, work_backoff_ms(msgs[i].delivery_count));
        }
    }
    return ex;
}

static int work_loop(sluice_client *c, struct work_cmd *w)
{
    int ex = EXIT_OK;
    uint32_t retries = 0; /* consecutive receives that failed transiently */
    while (ex == EXIT_OK && !stop_requested) {
        ex = work_tend(c, w);
        uint32_t free_slots = w->concurrency - w->running;
        if (ex != EXIT_OK || free_slots == 0) {
            if (free_slots == 0) {
                usleep(WORK_TICK_MS * 1000u);
            }
            continue;
        }
        struct sluice_message *msgs = NULL;
        size_t n = 0;
        uint32_t wait = w->running > 0 ? WORK_POLL_BUSY_MS : WORK_POLL_IDLE_MS;
        uint32_t max =
            free_slots < SLUICE_QUEUE_RECEIVE_MAX ? free_slots : SLUICE_QUEUE_RECEIVE_MAX;
        int rc =
            sluice_queue_receive(c, w->stream, w->group, max, wait, w->visibility_ms, &msgs, &n);
        if ((rc == SL_ECLOSED || rc == SL_EAGAIN) && retries++ < WORK_RETRIES_MAX) {
            fprintf(stderr, "sluice: queue receive: %s; retrying\n", sluice_last_error());
            sleep(1);
            continue;
        }
        if (rc != SL_OK) {
            ex = broker_error("queue receive", rc);
            break;
        }
        retries = 0;
        ex = work_start_all(c, w, msgs, n);
        sluice_messages_free(msgs, n);
    }
    /* Stopping: no new commands; wait for the running ones and settle them. */
    while (w->running > 0) {
        int e = work_tend(c, w);
        ex = ex != EXIT_OK ? ex : e;
        if (w->running > 0) {
            usleep(WORK_TICK_MS * 1000u);
        }
    }
    return ex;
}

static int run_work(sluice_client *c, void *arg)
{
    struct work_cmd *w = arg;
    if (w->visibility_ms == 0) {
        struct sluice_queue_stats s;
        int rc = sluice_queue_stats(c, w->stream, w->group, &s);
        w->visibility_ms = s.visibility_timeout_ms != 0 ? s.visibility_timeout_ms : 30000u;
        sluice_queue_stats_fini(&s);
        if (rc != SL_OK) {
            return broker_error("queue work", rc);
        }
    }
    w->slots = calloc(w->concurrency, sizeof(*w->slots));
    if (w->slots == NULL) {
        fprintf(stderr, "sluice: out of memory\n");
        return EXIT_ERR;
    }
    w->tty = isatty(STDERR_FILENO);
    install_signals();
    int ex = work_loop(c, w);
    fprintf(stderr, "%sdone %" PRIu64 ", failed %" PRIu64 "; stopped\n", w->tty ? "\r\033[K" : "",
            w->done, w->failed);
    free(w->slots);
    return ex;
}

static int cmd_queue_work(int argc, char **argv)
{
    static const struct option opts[] = {
        {"group", required_argument, NULL, 'g'},
        {"exec", required_argument, NULL, 'e'},
        {"concurrency", required_argument, NULL, 'c'},
        {"visibility", required_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct work_cmd w = {.group = CLI_DEFAULT_GROUP, .concurrency = 1};
    optind = 0;
    for (int ch; (ch = getopt_long(argc, argv, "h", opts, NULL)) != -1;) {
        if (ch == 'g') {
            w.group = optarg;
        } else if (ch == 'e') {
            w.exec = optarg;
        } else if (ch == 'c') {
            if (parse_u32_arg(optarg, &w.concurrency) != 0 || w.concurrency == 0 ||
                w.concurrency > WORK_CONCURRENCY_MAX) {
                return usage_error(usage_work, "bad --concurrency '%s' (1..1024)", optarg);
            }
        } else if (ch == 'V') {
            if (parse_seconds_ms(optarg, &w.visibility_ms) != 0 || w.visibility_ms < 1000) {
                return usage_error(usage_work, "bad --visibility '%s' (seconds, at least 1)",
                                   optarg);
            }
        } else if (ch == 'h') {
            fputs(usage_work, stdout);
            return EXIT_OK;
        } else {
            return usage_error(usage_work, "%s", "bad option");
        }
    }
    if (argc - optind != 1 || w.exec == NULL) {
        return usage_error(usage_work, "%s", "expected queue NAME and --exec CMD");
    }
    w.stream = argv[optind];
    return with_client(run_work, &w);
}

static int cmd_queue(int argc, char **argv)
{
    const char *verb = argc > 1 ? argv[1] : NULL;
    if (verb == NULL) {
        return usage_error(usage_queue, "%s", "missing queue subcommand");
    }
    if (strcmp(verb, "--help") == 0 || strcmp(verb, "-h") == 0 || strcmp(verb, "help") == 0) {
        fputs(usage_queue, stdout);
        return EXIT_OK;
    }
    argc--;
    argv++;
    if (strcmp(verb, "create") == 0) {
        return cmd_queue_create(argc, argv);
    } else if (strcmp(verb, "send") == 0) {
        return cmd_send(argc, argv, usage_queue, "queue send");
    } else if (strcmp(verb, "receive") == 0) {
        return cmd_queue_receive(argc, argv);
    } else if (strcmp(verb, "ack") == 0 || strcmp(verb, "nack") == 0) {
        return cmd_queue_ack(argc, argv, strcmp(verb, "nack") == 0);
    } else if (strcmp(verb, "stats") == 0) {
        return cmd_queue_simple(argc, argv, run_stats);
    } else if (strcmp(verb, "purge") == 0) {
        return cmd_queue_simple(argc, argv, run_purge);
    } else if (strcmp(verb, "redrive") == 0) {
        return cmd_queue_simple(argc, argv, run_redrive);
    } else if (strcmp(verb, "work") == 0) {
        return cmd_queue_work(argc, argv);
    }
    return usage_error(usage_queue, "unknown queue subcommand '%s'", verb);
}

/* ---- topic ---- */

static int run_topic_create(sluice_client *c, void *arg)
{
    const struct group_cmd *g = arg;
    return ensure_stream(c, g->stream, g->shards, 1, 1, "topic create");
}

static int run_subscriptions(sluice_client *c, void *arg)
{
    const struct group_cmd *g = arg;
    char **groups = NULL;
    size_t n = 0;
    int rc = sluice_queue_groups_list(c, g->stream, &groups, &n);
    if (rc != SL_OK) {
        return broker_error("topic subscriptions", rc);
    }
    json_t *arr = g->json ? json_array() : NULL;
    for (size_t i = 0; i < n; i++) {
        if (arr != NULL) {
            json_array_append_new(arr, json_string(groups[i]));
        } else {
            printf("%s\n", groups[i]);
        }
    }
    if (arr != NULL) {
        print_json(arr);
        json_decref(arr);
    }
    sluice_groups_free(groups, n);
    return ferror(stdout) ? EXIT_ERR : EXIT_OK;
}

static int run_unsubscribe(sluice_client *c, void *arg)
{
    const struct group_cmd *g = arg;
    int rc = sluice_queue_group_delete(c, g->stream, g->group);
    if (rc != SL_OK) {
        return broker_error("topic unsubscribe", rc);
    }
    fprintf(stderr, "deleted subscription %s of %s\n", g->group, g->stream);
    return EXIT_OK;
}

static int cmd_topic_rest(int argc, char **argv, const char *verb)
{
    static const struct option opts[] = {
        {"shards", required_argument, NULL, 's'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {"visibility", required_argument, NULL, 'V'},
        {"max-deliveries", required_argument, NULL, 'M'},
        {"dead-letter", required_argument, NULL, 'D'},
        {"ordered", no_argument, NULL, 'O'},
        {"filter", required_argument, NULL, 'F'},
        {"from", required_argument, NULL, 'P'},
        {"max-inflight", required_argument, NULL, 'I'},
        {NULL, 0, NULL, 0},
    };
    int subscribe = strcmp(verb, "subscribe") == 0, create = strcmp(verb, "create") == 0;
    int listing = strcmp(verb, "subscriptions") == 0;
    struct group_cmd g = {.shards = 1, .is_topic = 1};
    g.o.start.kind = SLUICE_LATEST;
    optind = 0;
    for (int ch; (ch = getopt_long(argc, argv, "h", opts, NULL)) != -1;) {
        int r = subscribe ? group_opt(ch, optarg, &g.o) : 0;
        if (r < 0) {
            fprintf(stderr, "sluice: bad %s '%s'\n", group_opt_name(ch), optarg);
            return usage_error(usage_topic, "%s", "topic subscribe: bad option value");
        } else if (r > 0) {
            continue;
        }
        if (ch == 's' && create) {
            if (parse_u32_arg(optarg, &g.shards) != 0 || g.shards == 0) {
                return usage_error(usage_topic, "bad --shards '%s'", optarg);
            }
        } else if (ch == 'j' && listing) {
            g.json = 1;
        } else if (ch == 'h') {
            fputs(usage_topic, stdout);
            return EXIT_OK;
        } else {
            return usage_error(usage_topic, "%s", "bad option");
        }
    }
    int want = subscribe || strcmp(verb, "unsubscribe") == 0 ? 2 : 1;
    if (argc - optind != want) {
        return usage_error(usage_topic, "%s",
                           want == 2 ? "expected TOPIC and SUB" : "expected one TOPIC");
    }
    g.stream = argv[optind];
    g.group = want == 2 ? argv[optind + 1] : NULL;
    int (*fn)(sluice_client *, void *) = create      ? run_topic_create
                                         : listing   ? run_subscriptions
                                         : subscribe ? run_group_create
                                                     : run_unsubscribe;
    return with_client(fn, &g);
}

static int cmd_topic(int argc, char **argv)
{
    const char *verb = argc > 1 ? argv[1] : NULL;
    if (verb == NULL) {
        return usage_error(usage_topic, "%s", "missing topic subcommand");
    }
    if (strcmp(verb, "--help") == 0 || strcmp(verb, "-h") == 0 || strcmp(verb, "help") == 0) {
        fputs(usage_topic, stdout);
        return EXIT_OK;
    }
    if (strcmp(verb, "publish") == 0) {
        return cmd_send(argc - 1, argv + 1, usage_topic, "topic publish");
    }
    if (strcmp(verb, "create") && strcmp(verb, "subscribe") && strcmp(verb, "subscriptions") &&
        strcmp(verb, "unsubscribe")) {
        return usage_error(usage_topic, "unknown topic subcommand '%s'", verb);
    }
    return cmd_topic_rest(argc - 1, argv + 1, verb);
}

/* ---- main ---- */

int main(int argc, char **argv)
{
    broker_addr = getenv("SLUICE_BROKER");
    if (broker_addr == NULL || broker_addr[0] == '\0') {
        broker_addr = SLUICE_DEFAULT_BROKER;
    }
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--broker") == 0 && i + 1 < argc) {
            broker_addr = argv[++i];
        } else if (strncmp(argv[i], "--broker=", 9) == 0) {
            broker_addr = argv[i] + 9;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage_main, stdout);
            return EXIT_OK;
        } else {
            return usage_error(usage_main, "unknown option '%s'", argv[i]);
        }
    }
    if (i == argc) {
        return usage_error(usage_main, "%s", "missing command");
    }
    const char *cmd = argv[i];
    int sub_argc = argc - i;
    char **sub_argv = argv + i;
    if (strcmp(cmd, "stream") == 0) {
        return cmd_stream(sub_argc, sub_argv);
    }
    if (strcmp(cmd, "produce") == 0) {
        install_signals();
        return cmd_produce(sub_argc, sub_argv);
    }
    if (strcmp(cmd, "consume") == 0) {
        return cmd_consume(sub_argc, sub_argv);
    }
    if (strcmp(cmd, "lag") == 0) {
        return cmd_lag(sub_argc, sub_argv);
    }
    if (strcmp(cmd, "queue") == 0) {
        return cmd_queue(sub_argc, sub_argv);
    }
    if (strcmp(cmd, "topic") == 0) {
        return cmd_topic(sub_argc, sub_argv);
    }
    if (strcmp(cmd, "help") == 0) {
        fputs(usage_main, stdout);
        return EXIT_OK;
    }
    return usage_error(usage_main, "unknown command '%s'", cmd);
}
