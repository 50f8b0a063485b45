/* cli.c - `sluice`, the command-line client: streams, produce, consume, lag.
 *
 * Data goes to stdout, status and errors to stderr; a live progress line is drawn on
 * stderr only when stderr is a terminal. Exit codes: 0 ok, 1 an error from the broker or
 * I/O, 2 bad usage. Built on the public API in client/sluice.h only (plus jansson for
 * JSON lines).
 */
#include "client/sluice.h"

#include <jansson.h>

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
                json_pack("{s:I, s:s, s:s, s:I, s:I, s:I, s:I, s:s}", "shard", (json_int_t)h->shard,
                          "hash_start", hs, "hash_end", he, "first_seq", (json_int_t)h->first_seq,
                          "next_seq", (json_int_t)h->next_seq, "bytes", (json_int_t)h->bytes,
                          "segments", (json_int_t)h->segments, "status", sl_errname(h->status)));
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
    if (strcmp(cmd, "help") == 0) {
        fputs(usage_main, stdout);
        return EXIT_OK;
    }
    return usage_error(usage_main, "unknown command '%s'", cmd);
}
