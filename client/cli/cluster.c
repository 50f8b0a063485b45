/* cluster.c - `sluice cluster status`: the live brokers of a cluster (ClusterStatus) and who
 * leads each shard (Metadata) of one stream or of every stream (at most
 * CLI_CLUSTER_STREAMS_MAX; sluice.h, docs/PROTOCOL.md). */
#include "client/cli/cli.h"
#include "client/cli/conn.h"
#include "client/cli/output.h"
#include "common/assert.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CLI_CLUSTER_STREAMS_MAX 256u /* streams whose shards `cluster status` lists at most */
/* Each other broker asked for its followers' lags gets this long to connect and to answer
 * (unless --connect-timeout / --request-timeout say otherwise): a paused or cut broker is
 * still listed live until its session expires, and must not hold the whole status for the
 * library's 30 s request timeout. */
#define CLI_CLUSTER_LAG_WAIT_MS 2000u

struct cluster_args {
    int json;
    const char *stream;
};

static const struct cli_opt status_opts[] = {
    {.name = "json",
     .kind = CLI_OPT_FLAG,
     .offset = offsetof(struct cluster_args, json),
     .help = "one JSON object: cluster, node_id, connected, controller, controller_epoch, brokers[],\n"
             "streams[] (name, shards[]: shard, leader, leader_epoch, replicas[], isr[], open,\n"
             "lag[]: node, behind, caught_up_ms_ago, moving_to[]: a reassignment's target)"},
    {.name = "stream",
     .kind = CLI_OPT_STRING,
     .offset = offsetof(struct cluster_args, stream),
     .value_name = "S",
     .help = "list the shards of S only (default: of every stream, the first 256)",
     .min = 1,
     .max = 128},
    {.name = NULL},
};

static json_t *status_json(const struct sluice_cluster_status *s)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr != NULL && i < s->n_brokers; i++) {
        const struct sluice_broker_info *b = &s->brokers[i];
        json_array_append_new(arr, json_pack("{s:I,s:s,s:s,s:s,s:s,s:I,s:b}", "node_id",
                                             (json_int_t)b->node_id, "address", b->address,
                                             "http_address", b->http_address, "version", b->version,
                                             "state", b->state, "start_time_ms",
                                             (json_int_t)b->start_time_ms, "self", b->self));
    }
    return json_pack("{s:b,s:I,s:b,s:b,s:I,s:o*}", "cluster", s->cluster, "node_id",
                     (json_int_t)s->node_id, "connected", s->connected, "controller",
                     s->controller, "controller_epoch", (json_int_t)s->controller_epoch, "brokers",
                     arr);
}

static json_t *ids_json(const int32_t *ids, uint32_t n)
{
    json_t *arr = json_array();
    for (uint32_t i = 0; arr != NULL && i < n; i++) {
        json_array_append_new(arr, json_integer(ids[i]));
    }
    return arr;
}

static json_t *lag_json(const struct sluice_shard_route *r)
{
    json_t *arr = json_array();
    for (uint32_t i = 0; arr != NULL && i < r->n_lag; i++) {
        json_array_append_new(arr, json_pack("{s:i,s:I,s:I}", "node", (int)r->lag[i].node,
                                             "behind", (json_int_t)r->lag[i].behind,
                                             "caught_up_ms_ago",
                                             (json_int_t)r->lag[i].caught_up_ms_ago));
    }
    return arr;
}

static json_t *routes_json(struct sluice_metadata *const *ms, size_t n_ms)
{
    json_t *arr = json_array();
    for (size_t k = 0; arr != NULL && k < n_ms; k++) {
        for (size_t i = 0; i < ms[k]->n_streams; i++) {
            const struct sluice_stream_route *sr = &ms[k]->streams[i];
            json_t *shards = json_array();
            for (size_t j = 0; shards != NULL && j < sr->n_shards; j++) {
                const struct sluice_shard_route *r = &sr->shards[j];
                json_array_append_new(
                    shards, json_pack("{s:I,s:i,s:i,s:o*,s:o*,s:b,s:o*,s:o*}", "shard",
                                      (json_int_t)r->shard, "leader", (int)r->leader,
                                      "leader_epoch", (int)r->leader_epoch, "replicas",
                                      ids_json(r->replicas, r->n_replicas), "isr",
                                      ids_json(r->isr, r->n_isr), "open", r->open, "lag",
                                      lag_json(r), "moving_to",
                                      ids_json(r->target, r->n_target)));
            }
            json_array_append_new(arr, json_pack("{s:s,s:o*}", "name", sr->name, "shards", shards));
        }
    }
    return arr;
}

static void ids_print(const int32_t *ids, uint32_t n)
{
    char buf[SLUICE_REPLICAS_MAX * 12 + 2];
    size_t off = 0;
    buf[0] = '\0';
    for (uint32_t i = 0; i < n && off < sizeof(buf); i++) {
        off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%s%d", i > 0 ? "," : "", ids[i]);
    }
    printf(" %-12s", n > 0 ? buf : "-");
}

static void routes_print(struct sluice_metadata *const *ms, size_t n_ms)
{
    printf("%-24s %-6s %-7s %-6s %-12s %-12s %-5s %s\n", "STREAM", "SHARD", "LEADER", "EPOCH",
           "REPLICAS", "ISR", "OPEN", "LAG (node:records behind)");
    for (size_t k = 0; k < n_ms; k++) {
        for (size_t i = 0; i < ms[k]->n_streams; i++) {
            const struct sluice_stream_route *sr = &ms[k]->streams[i];
            for (size_t j = 0; j < sr->n_shards; j++) {
                const struct sluice_shard_route *r = &sr->shards[j];
                char leader[16];
                snprintf(leader, sizeof(leader), "%d", (int)r->leader);
                printf("%-24s %-6" PRIu32 " %-7s %-6d", sr->name, r->shard,
                       r->leader < 0 ? "none" : leader, (int)r->leader_epoch);
                ids_print(r->replicas, r->n_replicas);
                ids_print(r->isr, r->n_isr);
                printf(" %-5s", r->open ? "yes" : "no");
                for (uint32_t l = 0; l < r->n_lag; l++) {
                    printf(" %d:%" PRIu64, (int)r->lag[l].node, r->lag[l].behind);
                }
                printf("%s", r->n_lag == 0 && r->leader >= 0 && r->n_replicas > 1 ? " ?" : "");
                if (r->n_target > 0) { /* a reassignment in progress (cluster reassign) */
                    printf("  moving to");
                    for (uint32_t t = 0; t < r->n_target; t++) {
                        printf("%s%d", t > 0 ? "," : " ", (int)r->target[t]);
                    }
                }
                printf("\n");
            }
        }
    }
}

/* Who leads the shards of --stream, or of every stream (the first CLI_CLUSTER_STREAMS_MAX),
 * in Metadata requests of SLUICE_METADATA_STREAMS names. *ms and *n_ms (owned) hold the
 * answers; *more counts the streams left out. */
static int routes_fetch(sluice_client *c, const char *stream, struct sluice_metadata ***ms,
                        size_t *n_ms, size_t *more)
{
    *ms = NULL;
    *n_ms = 0;
    *more = 0;
    struct sluice_stream_info *list = NULL;
    size_t n = 0;
    const char *one[1] = {stream};
    if (stream == NULL) {
        int rc = sluice_stream_list(c, &list, &n);
        if (rc != SL_OK) {
            return rc;
        }
    }
    size_t names_n = stream != NULL ? 1 : n < CLI_CLUSTER_STREAMS_MAX ? n : CLI_CLUSTER_STREAMS_MAX;
    *more = stream != NULL ? 0 : n - names_n;
    const char **names = calloc(names_n + 1, sizeof(*names));
    size_t chunks = (names_n + SLUICE_METADATA_STREAMS - 1) / SLUICE_METADATA_STREAMS;
    *ms = calloc(chunks + 1, sizeof(**ms));
    int rc = names != NULL && *ms != NULL ? SL_OK : SL_ENOMEM;
    for (size_t i = 0; rc == SL_OK && i < names_n; i++) {
        names[i] = stream != NULL ? one[0] : list[i].name;
    }
    for (size_t k = 0; rc == SL_OK && k < chunks; k++) {
        size_t first = k * SLUICE_METADATA_STREAMS;
        size_t cnt = names_n - first < SLUICE_METADATA_STREAMS ? names_n - first
                                                               : SLUICE_METADATA_STREAMS;
        rc = sluice_cluster_metadata(c, names + first, cnt, &(*ms)[k]);
        *n_ms = rc == SL_OK ? k + 1 : *n_ms;
    }
    free(names);
    sluice_stream_list_free(list, n);
    return rc;
}

/* The connection options the command was run with (the set after the command's own). */
static const struct cli_conn_opts *call_conn(const struct cli_call *call)
{
    size_t n = 0;
    while (n < CLI_CMD_SETS_MAX && call->cmd->sets[n].opts != NULL) {
        n++;
    }
    SL_ASSERT(call->sets[n].opts == cli_conn_table);
    return call->sets[n].base;
}

/* Only a shard's leader knows how far its followers are: each other live broker is asked
 * for the same streams and the lags of the shards it leads are copied into ms. A broker
 * that cannot be reached or does not answer in time leaves its shards' lags unknown ("?"),
 * said on stderr. */
static void lags_gather(const struct cli_call *call, const struct sluice_cluster_status *s,
                        struct sluice_metadata **ms, size_t n_ms)
{
    struct cli_conn_opts o = *call_conn(call);
    if (o.connect_timeout_ms == 0) {
        o.connect_timeout_ms = CLI_CLUSTER_LAG_WAIT_MS;
    }
    if (o.request_timeout_ms == 0) {
        o.request_timeout_ms = CLI_CLUSTER_LAG_WAIT_MS;
    }
    for (size_t b = 0; b < s->n_brokers; b++) {
        if (s->brokers[b].self) {
            continue; /* (its answer is in ms already) */
        }
        o.broker = s->brokers[b].address;
        sluice_client *bc = NULL;
        if (cli_conn_connect(&o, &bc) != CLI_EXIT_OK) { /* (it said why) */
            fprintf(stderr,
                    "sluice: the lags of the shards broker %" PRIu32
                    " leads are unknown (\"?\")\n",
                    s->brokers[b].node_id);
            continue;
        }
        for (size_t k = 0; k < n_ms; k++) {
            const char *names[SLUICE_METADATA_STREAMS];
            size_t cnt = ms[k]->n_streams < SLUICE_METADATA_STREAMS ? ms[k]->n_streams
                                                                      : SLUICE_METADATA_STREAMS;
            for (size_t i = 0; i < cnt; i++) {
                names[i] = ms[k]->streams[i].name;
            }
            struct sluice_metadata *om = NULL;
            int rc = sluice_cluster_metadata(bc, names, cnt, &om);
            if (rc != SL_OK) {
                char what[96];
                snprintf(what, sizeof(what), "broker %" PRIu32 " (its shards' lags unknown: \"?\")",
                         s->brokers[b].node_id);
                (void)cli_broker_error(what, rc);
                break; /* (a broker that timed out once would only time out again) */
            }
            for (size_t i = 0; i < cnt && i < om->n_streams; i++) {
                struct sluice_stream_route *mine = &ms[k]->streams[i];
                const struct sluice_stream_route *theirs = &om->streams[i];
                for (size_t j = 0; j < theirs->n_shards; j++) {
                    const struct sluice_shard_route *t = &theirs->shards[j];
                    for (size_t x = 0; t->n_lag > 0 && x < mine->n_shards; x++) {
                        if (mine->shards[x].shard == t->shard) {
                            mine->shards[x].n_lag = t->n_lag;
                            memcpy(mine->shards[x].lag, t->lag, sizeof(t->lag));
                        }
                    }
                }
            }
            sluice_metadata_free(om);
        }
        sluice_client_free(bc);
    }
}

static void routes_free(struct sluice_metadata **ms, size_t n_ms)
{
    for (size_t k = 0; ms != NULL && k < n_ms; k++) {
        sluice_metadata_free(ms[k]);
    }
    free(ms);
}

static int run_status(sluice_client *c, const struct cli_call *call)
{
    const struct cluster_args *a = call->args;
    struct sluice_cluster_status *s = NULL;
    int rc = sluice_cluster_status(c, &s);
    if (rc != SL_OK) {
        return cli_broker_error("cluster status", rc);
    }
    struct sluice_metadata **ms = NULL;
    size_t n_ms = 0, more = 0;
    rc = routes_fetch(c, a->stream, &ms, &n_ms, &more);
    int no_metadata = rc == SL_EUNSUPPORTED; /* a broker older than Metadata: brokers only */
    if (rc != SL_OK && !no_metadata) {
        routes_free(ms, n_ms);
        sluice_cluster_status_free(s);
        return cli_broker_error("cluster status (metadata)", rc);
    }
    if (s->cluster && n_ms > 0) {
        lags_gather(call, s, ms, n_ms);
    }
    if (a->json) {
        json_t *j = status_json(s);
        json_object_set_new(j, "streams", routes_json(ms, n_ms));
        cli_print_json(j);
        json_decref(j);
    } else if (!s->cluster) {
        printf("single broker (no --cluster): version %s\n",
               s->n_brokers > 0 ? s->brokers[0].version : "?");
    } else {
        printf("cluster: %zu live broker%s, answered by broker %" PRIu32 "%s%s\n", s->n_brokers,
               s->n_brokers == 1 ? "" : "s", s->node_id,
               s->controller ? " (the controller)" : "",
               s->connected ? ""
                            : " (its ZooKeeper session is disconnected: the list may be "
                              "stale)");
        printf("%-8s %-24s %-24s %-10s %s\n", "NODE", "ADDRESS", "HTTP", "VERSION", "STATE");
        for (size_t i = 0; i < s->n_brokers; i++) {
            const struct sluice_broker_info *b = &s->brokers[i];
            printf("%-8" PRIu32 " %-24s %-24s %-10s %s%s\n", b->node_id, b->address,
                   b->http_address[0] != '\0' ? b->http_address : "-", b->version, b->state,
                   b->self ? " (this one)" : "");
        }
    }
    if (!a->json && n_ms > 0) {
        printf("\n");
        routes_print(ms, n_ms);
    }
    if (!a->json && more > 0) {
        printf("(%zu more streams not listed: name one with --stream)\n", more);
    }
    routes_free(ms, n_ms);
    sluice_cluster_status_free(s);
    return ferror(stdout) ? CLI_EXIT_ERR : CLI_EXIT_OK;
}

const struct cli_cmd cli_cmd_cluster_status = {
    .name = "cluster status",
    .operands = "",
    .summary = "the live brokers of the cluster, as the connected broker sees them",
    .help = "Lists the brokers registered in ZooKeeper (/brokers/ids) with their advertised\n"
            "native and HTTP addresses, versions and states. A broker started without\n"
            "--cluster answers that it is a single broker. Then, for --stream S or every\n"
            "stream (the first 256), each shard's leader, leader epoch, replicas and in-sync\n"
            "replicas (ISR) as the connected broker last read them (Metadata), and how many\n"
            "records each follower is behind its leader (asked of each live broker: only a\n"
            "shard's leader knows; '?' when its leader could not be asked), and where a\n"
            "shard is moving to while a reassignment lasts (`moving to 2,3,4`).\n",
    .sets = {{status_opts, 0, "options"}},
    .args_size = sizeof(struct cluster_args),
    .run = run_status,
};
