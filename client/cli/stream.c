/* stream.c - `sluice stream create|list|describe|delete|split|merge|reshard`: stream
 * administration.
 *
 * Tables go to stdout (or one JSON document with --json); what was done goes to stderr.
 */
#include "client/cli/cli.h"
#include "client/cli/output.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct stream_args {
    struct sluice_stream_opts so;
    int json;
};

_Static_assert(sizeof(enum sluice_compression) == sizeof(int), "a CHOICE option writes an int");

const struct cli_opt_choice cli_compression_choices[] = {
    {"zstd", SLUICE_COMPRESSION_ZSTD},
    {"none", SLUICE_COMPRESSION_NONE},
    {NULL, 0},
};

static const struct cli_opt create_opts[] = {
    {.name = "shards",
     .kind = CLI_OPT_U32,
     .offset = offsetof(struct stream_args, so.shard_count),
     .value_name = "N",
     .help = "shards of the new stream (the broker allows 1..4096)",
     .min = 1,
     .flags = CLI_OPT_REQUIRED},
    {.name = "retention-hours",
     .kind = CLI_OPT_U32,
     .offset = offsetof(struct stream_args, so.retention_hours),
     .value_name = "H",
     .help = "keep records H hours (the broker allows 1..8760; default: the broker's)"},
    {.name = "retention-bytes",
     .kind = CLI_OPT_U64,
     .offset = offsetof(struct stream_args, so.retention_bytes),
     .value_name = "B",
     .help = "cap the retained bytes per shard (default: no cap)"},
    {.name = "compression",
     .kind = CLI_OPT_CHOICE,
     .offset = offsetof(struct stream_args, so.compression),
     .value_name = "C",
     .help = "what producers use by default",
     .choices = cli_compression_choices},
    {.name = "replication-factor",
     .kind = CLI_OPT_U32,
     .offset = offsetof(struct stream_args, so.replication_factor),
     .value_name = "N",
     .help = "cluster: copies of each shard on N brokers (default: 3, or every broker)",
     .min = 1},
    {.name = NULL},
};

static const struct cli_opt json_opts[] = {
    {.name = "json",
     .kind = CLI_OPT_FLAG,
     .offset = offsetof(struct stream_args, json),
     .help = "machine-readable output (one JSON document)"},
    {.name = NULL},
};

static json_t *ids_json(const uint32_t *ids, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(a, json_integer(ids[i]));
    }
    return a;
}

/* "-", "3" or "3,4": a shard's parents or children. */
static const char *ids_text(const uint32_t *ids, uint32_t n, char *buf, size_t cap)
{
    if (n == 0) {
        return "-";
    }
    snprintf(buf, cap, n == 1 ? "%u" : "%u,%u", ids[0], n > 1 ? ids[1] : 0);
    return buf;
}

static json_t *stream_json(const struct sluice_stream_info *s)
{
    json_t *j =
        json_pack("{s:s, s:I, s:I, s:I, s:s, s:I}", "name", s->name, "shards",
                  (json_int_t)s->shard_count, "retention_hours", (json_int_t)s->retention_hours,
                  "retention_bytes", (json_int_t)s->retention_bytes, "compression", s->compression,
                  "created_ms", (json_int_t)s->created_ms);
    if (j != NULL && s->shards != NULL) {
        json_object_set_new(j, "open_shards", json_integer(s->open_shards));
    }
    if (j != NULL && s->shards != NULL) {
        json_t *arr = json_array();
        for (uint32_t i = 0; i < s->shards_len; i++) {
            const struct sluice_shard_info *h = &s->shards[i];
            char hs[24], he[24];
            snprintf(hs, sizeof(hs), "%016" PRIx64, h->hash_start);
            snprintf(he, sizeof(he), "%016" PRIx64, h->hash_end);
            json_array_append_new(
                arr,
                json_pack("{s:I, s:s, s:s, s:I, s:I, s:I, s:I, s:s, s:s, s:b, s:o, s:o}", "shard",
                          (json_int_t)h->shard, "hash_start", hs, "hash_end", he, "first_seq",
                          (json_int_t)h->first_seq, "next_seq", (json_int_t)h->next_seq, "bytes",
                          (json_int_t)h->bytes, "segments", (json_int_t)h->segments, "status",
                          sl_errname(h->status), "status_message", h->status_message, "closed",
                          h->closed, "parents", ids_json(h->parents, h->parents_len),
                          "children", ids_json(h->children, h->children_len)));
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
    printf("open         %u (closed shards were split or merged; readable until retention)\n",
           s->open_shards);
    printf("retention    %u h, %s\n", s->retention_hours, s->retention_bytes ? "" : "no byte cap");
    if (s->retention_bytes) {
        printf("             %" PRIu64 " bytes per shard\n", s->retention_bytes);
    }
    printf("compression  %s\n", s->compression[0] ? s->compression : "none");
    printf("created      %s\n\n", cli_fmt_time(s->created_ms, t, sizeof(t)));
    printf("%5s  %-16s  %-16s  %12s  %12s  %12s  %5s  %-8s  %-6s  %-7s  %s\n", "SHARD",
           "HASH_START", "HASH_END", "FIRST_SEQ", "NEXT_SEQ", "BYTES", "SEGS", "STATUS", "STATE",
           "PARENTS", "CHILDREN");
    for (uint32_t i = 0; i < s->shards_len; i++) {
        const struct sluice_shard_info *h = &s->shards[i];
        char par[24], chi[24];
        printf("%5u  %016" PRIx64 "  %016" PRIx64 "  %12" PRIu64 "  %12" PRIu64 "  %12" PRIu64
               "  %5u  %-8s  %-6s  %-7s  %s\n",
               h->shard, h->hash_start, h->hash_end, h->first_seq, h->next_seq, h->bytes,
               h->segments, h->status == SL_OK ? "ok" : sl_errname(h->status),
               h->closed ? "closed" : "open",
               ids_text(h->parents, h->parents_len, par, sizeof(par)),
               ids_text(h->children, h->children_len, chi, sizeof(chi)));
    }
    for (uint32_t i = 0; i < s->shards_len; i++) {
        if (s->shards[i].status != SL_OK && s->shards[i].status_message[0] != '\0') {
            printf("shard %u: %s\n", s->shards[i].shard, s->shards[i].status_message);
        }
    }
}

static int run_create(sluice_client *c, const struct cli_call *call)
{
    const struct stream_args *a = call->args;
    struct sluice_stream_info *info = NULL;
    int rc = sluice_stream_create(c, call->operands[0], &a->so, &info);
    if (rc != SL_OK) {
        return cli_broker_error("stream create", rc);
    }
    fprintf(stderr, "created stream %s: %u shards, retention %u h, compression %s\n", info->name,
            info->shard_count, info->retention_hours,
            info->compression[0] ? info->compression : "none");
    sluice_stream_info_free(info);
    return CLI_EXIT_OK;
}

static int run_list(sluice_client *c, const struct cli_call *call)
{
    const struct stream_args *a = call->args;
    struct sluice_stream_info *list = NULL;
    size_t n = 0;
    int rc = sluice_stream_list(c, &list, &n);
    if (rc != SL_OK) {
        return cli_broker_error("stream list", rc);
    }
    if (a->json) {
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++) {
            json_array_append_new(arr, stream_json(&list[i]));
        }
        cli_print_json(arr);
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
    return CLI_EXIT_OK;
}

static int run_describe(sluice_client *c, const struct cli_call *call)
{
    const struct stream_args *a = call->args;
    struct sluice_stream_info *info = NULL;
    int rc = sluice_stream_describe(c, call->operands[0], &info);
    if (rc != SL_OK) {
        return cli_broker_error("stream describe", rc);
    }
    if (a->json) {
        json_t *j = stream_json(info);
        cli_print_json(j);
        json_decref(j);
    } else {
        print_describe(info);
    }
    sluice_stream_info_free(info);
    return CLI_EXIT_OK;
}

static int run_delete(sluice_client *c, const struct cli_call *call)
{
    int rc = sluice_stream_delete(c, call->operands[0]);
    if (rc != SL_OK) {
        return cli_broker_error("stream delete", rc);
    }
    fprintf(stderr, "deleted stream %s\n", call->operands[0]);
    return CLI_EXIT_OK;
}

/* ---- split, merge, reshard ---- */

struct reshard_args {
    uint32_t shard;   /* split */
    uint64_t at;      /* split --at */
    uint32_t pair[2]; /* merge --shards A,B */
    uint32_t target;  /* reshard --shards N */
    int json;
};

/* --at HASH: decimal, or hexadecimal after 0x (describe prints ranges in hexadecimal). */
static int parse_hash(const char *s, void *dst, char *why, size_t cap)
{
    int hex = s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
    const char *digits = hex ? s + 2 : s;
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(digits, &end, hex ? 16 : 10);
    if (digits[0] == '\0' || digits[0] == '-' || digits[0] == '+' || digits[0] == ' ' ||
        *end != '\0' || errno != 0) {
        snprintf(why, cap, "'%s' is not a 64-bit hash (decimal, or hexadecimal after 0x)", s);
        return -1;
    }
    *(uint64_t *)dst = v;
    return 0;
}

/* --shards A,B: two shard ids. */
static int parse_pair(const char *s, void *dst, char *why, size_t cap)
{
    uint32_t *pair = dst;
    const char *comma = strchr(s, ',');
    char first[16];
    size_t len = comma != NULL ? (size_t)(comma - s) : 0;
    if (comma == NULL || len == 0 || len >= sizeof(first)) {
        snprintf(why, cap, "'%s' is not two shards A,B", s);
        return -1;
    }
    memcpy(first, s, len);
    first[len] = '\0';
    uint64_t a = 0, b = 0;
    if (cli_opt_u64(first, 0, UINT32_MAX, &a, why, cap) != 0 ||
        cli_opt_u64(comma + 1, 0, UINT32_MAX, &b, why, cap) != 0) {
        return -1;
    }
    if (a == b) {
        snprintf(why, cap, "a shard cannot merge with itself (%s)", s);
        return -1;
    }
    pair[0] = (uint32_t)a;
    pair[1] = (uint32_t)b;
    return 0;
}

#define RESHARD_JSON_OPT                                                                           \
    {.name = "json",                                                                               \
     .kind = CLI_OPT_FLAG,                                                                         \
     .offset = offsetof(struct reshard_args, json),                                                \
     .help = "one JSON document: the stream after the change, the shards closed and opened"}

static const struct cli_opt split_opts[] = {
    {.name = "shard",
     .kind = CLI_OPT_U32,
     .offset = offsetof(struct reshard_args, shard),
     .value_name = "N",
     .help = "the open shard to split",
     .flags = CLI_OPT_REQUIRED},
    {.name = "at",
     .kind = CLI_OPT_CUSTOM,
     .offset = offsetof(struct reshard_args, at),
     .value_name = "HASH",
     .help = "the hash the second child starts at: decimal, or hexadecimal after 0x\n"
             "(default: the middle of the shard's range)",
     .parse = parse_hash},
    RESHARD_JSON_OPT,
    {.name = NULL},
};

static const struct cli_opt merge_opts[] = {
    {.name = "shards",
     .kind = CLI_OPT_CUSTOM,
     .offset = offsetof(struct reshard_args, pair),
     .value_name = "A,B",
     .help = "two open shards whose hash ranges touch",
     .parse = parse_pair,
     .flags = CLI_OPT_REQUIRED},
    RESHARD_JSON_OPT,
    {.name = NULL},
};

static const struct cli_opt reshard_opts[] = {
    {.name = "shards",
     .kind = CLI_OPT_U32,
     .offset = offsetof(struct reshard_args, target),
     .value_name = "N",
     .help = "open shards wanted, over uniform hash ranges (the broker allows up to its "
             "shards_max)",
     .min = 1,
     .flags = CLI_OPT_REQUIRED},
    RESHARD_JSON_OPT,
    {.name = NULL},
};

/* Prints a reshard's result: JSON on stdout, or what changed on stderr. */
static void print_reshard(const struct sluice_reshard_result *r, int json)
{
    if (json) {
        json_t *j = json_pack("{s:o, s:o, s:o}", "stream", stream_json(r->stream), "closed",
                              ids_json(r->closed, r->closed_len), "opened",
                              ids_json(r->opened, r->opened_len));
        cli_print_json(j);
        json_decref(j);
        return;
    }
    fprintf(stderr, "%s: closed shard%s", r->stream->name, r->closed_len == 1 ? "" : "s");
    for (size_t i = 0; i < r->closed_len; i++) {
        fprintf(stderr, "%s%u", i == 0 ? " " : ",", r->closed[i]);
    }
    fprintf(stderr, "%s; opened", r->closed_len == 0 ? " (none)" : "");
    for (size_t i = 0; i < r->opened_len; i++) {
        const struct sluice_shard_info *h = NULL;
        for (uint32_t k = 0; k < r->stream->shards_len && h == NULL; k++) {
            h = r->stream->shards[k].shard == r->opened[i] ? &r->stream->shards[k] : NULL;
        }
        fprintf(stderr, "%s %u", i == 0 ? "" : ",", r->opened[i]);
        if (h != NULL) {
            fprintf(stderr, " [%016" PRIx64 "-%016" PRIx64 "]", h->hash_start, h->hash_end);
        }
    }
    fprintf(stderr, "%s; %u open shards\n", r->opened_len == 0 ? " (none)" : "",
            r->stream->open_shards);
}

static int reshard_done(int rc, const char *what, struct sluice_reshard_result *r, int json)
{
    if (rc != SL_OK) {
        if (rc == SL_EUNSUPPORTED) {
            fprintf(stderr,
                    "sluice: %s: this broker cannot reshard (it predates resharding): "
                    "upgrade it\n",
                    what);
            return CLI_EXIT_ERR;
        }
        return cli_broker_error(what, rc);
    }
    print_reshard(r, json);
    sluice_reshard_result_free(r);
    return CLI_EXIT_OK;
}

static int run_split(sluice_client *c, const struct cli_call *call)
{
    const struct reshard_args *a = call->args;
    struct sluice_reshard_result *r = NULL;
    int rc = sluice_stream_split(c, call->operands[0], a->shard,
                                 cli_call_seen(call, 0, "at") ? &a->at : NULL, &r);
    return reshard_done(rc, "stream split", r, a->json);
}

static int run_merge(sluice_client *c, const struct cli_call *call)
{
    const struct reshard_args *a = call->args;
    struct sluice_reshard_result *r = NULL;
    int rc = sluice_stream_merge(c, call->operands[0], a->pair[0], a->pair[1], &r);
    return reshard_done(rc, "stream merge", r, a->json);
}

static int run_reshard(sluice_client *c, const struct cli_call *call)
{
    const struct reshard_args *a = call->args;
    struct sluice_reshard_result *r = NULL;
    int rc = sluice_stream_reshard(c, call->operands[0], a->target, &r);
    return reshard_done(rc, "stream reshard", r, a->json);
}

const struct cli_cmd cli_cmd_stream_split = {
    .name = "stream split",
    .operands = "NAME",
    .summary = "split an open shard in two (its keys' order is kept)",
    .help = "Closes the shard and opens two children over its hash range; the second starts at\n"
            "--at. Producers move to the children on their own; readers of the whole stream\n"
            "read a child after its parent. The closed shard stays readable until retention\n"
            "removes it. `stream describe` shows the lineage.\n",
    .sets = {{split_opts, 0, "options"}},
    .args_size = sizeof(struct reshard_args),
    .run = run_split,
};

const struct cli_cmd cli_cmd_stream_merge = {
    .name = "stream merge",
    .operands = "NAME",
    .summary = "merge two adjacent open shards into one",
    .help = "Closes both shards and opens one child over their hash ranges. Producers move to\n"
            "it on their own; readers of the whole stream read it after both parents.\n",
    .sets = {{merge_opts, 0, "options"}},
    .args_size = sizeof(struct reshard_args),
    .run = run_merge,
};

const struct cli_cmd cli_cmd_stream_reshard = {
    .name = "stream reshard",
    .operands = "NAME",
    .summary = "split and merge until the stream has N open shards (uniform ranges)",
    .help = "One durable change (as Kinesis's UpdateShardCount with UNIFORM_SCALING): the open\n"
            "shards end over N uniform hash ranges; shards already on a boundary stay.\n",
    .sets = {{reshard_opts, 0, "options"}},
    .args_size = sizeof(struct reshard_args),
    .run = run_reshard,
};

const struct cli_cmd cli_cmd_stream_create = {
    .name = "stream create",
    .operands = "NAME",
    .summary = "create a stream",
    .sets = {{create_opts, 0, "options"}},
    .args_size = sizeof(struct stream_args),
    .run = run_create,
};

const struct cli_cmd cli_cmd_stream_list = {
    .name = "stream list",
    .operands = "",
    .summary = "list the streams: name, shards, retention, compression",
    .sets = {{json_opts, 0, "options"}},
    .args_size = sizeof(struct stream_args),
    .run = run_list,
};

const struct cli_cmd cli_cmd_stream_describe = {
    .name = "stream describe",
    .operands = "NAME",
    .summary = "a stream's settings; per shard: hash range, sequences, bytes, lineage",
    .sets = {{json_opts, 0, "options"}},
    .args_size = sizeof(struct stream_args),
    .run = run_describe,
};

const struct cli_cmd cli_cmd_stream_delete = {
    .name = "stream delete",
    .operands = "NAME",
    .summary = "delete a stream and its records",
    .args_size = sizeof(struct stream_args),
    .run = run_delete,
};
