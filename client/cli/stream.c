/* stream.c - `sluice stream create|list|describe|delete`: stream administration.
 *
 * Tables go to stdout (or one JSON document with --json); what was done goes to stderr.
 */
#include "client/cli/cli.h"
#include "client/cli/output.h"

#include <inttypes.h>
#include <stdio.h>

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
    {.name = NULL},
};

static const struct cli_opt json_opts[] = {
    {.name = "json",
     .kind = CLI_OPT_FLAG,
     .offset = offsetof(struct stream_args, json),
     .help = "machine-readable output (one JSON document)"},
    {.name = NULL},
};

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
                          (json_int_t)h->shard, "hash_start", hs, "hash_end", he, "first_seq",
                          (json_int_t)h->first_seq, "next_seq", (json_int_t)h->next_seq, "bytes",
                          (json_int_t)h->bytes, "segments", (json_int_t)h->segments, "status",
                          sl_errname(h->status), "status_message", h->status_message));
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
    printf("created      %s\n\n", cli_fmt_time(s->created_ms, t, sizeof(t)));
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
    .summary = "a stream's settings; per shard: hash range, sequences, bytes",
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
