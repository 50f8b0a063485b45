/* cluster.c - `sluice cluster status`: the live brokers of a cluster (ClusterStatus;
 * sluice.h, docs/PROTOCOL.md). */
#include "client/cli/cli.h"
#include "client/cli/output.h"

#include <inttypes.h>
#include <stdio.h>

struct cluster_args {
    int json;
};

static const struct cli_opt status_opts[] = {
    {.name = "json",
     .kind = CLI_OPT_FLAG,
     .offset = offsetof(struct cluster_args, json),
     .help = "one JSON object: cluster, node_id, connected, controller, controller_epoch, brokers[]"},
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

static int run_status(sluice_client *c, const struct cli_call *call)
{
    const struct cluster_args *a = call->args;
    struct sluice_cluster_status *s = NULL;
    int rc = sluice_cluster_status(c, &s);
    if (rc != SL_OK) {
        return cli_broker_error("cluster status", rc);
    }
    if (a->json) {
        json_t *j = status_json(s);
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
    sluice_cluster_status_free(s);
    return ferror(stdout) ? CLI_EXIT_ERR : CLI_EXIT_OK;
}

const struct cli_cmd cli_cmd_cluster_status = {
    .name = "cluster status",
    .operands = "",
    .summary = "the live brokers of the cluster, as the connected broker sees them",
    .help = "Lists the brokers registered in ZooKeeper (/brokers/ids) with their advertised\n"
            "native and HTTP addresses, versions and states. A broker started without\n"
            "--cluster answers that it is a single broker.\n",
    .sets = {{status_opts, 0, "options"}},
    .args_size = sizeof(struct cluster_args),
    .run = run_status,
};
