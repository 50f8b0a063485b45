/* cluster_it.c - the cluster tests' shared steps (see cluster_it.h). */
#include "cluster_it.h"

#include <stdio.h>
#include <string.h>

int cit_preflight(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    int rc = it_preflight();
    return rc != 0 ? rc : zkh_available();
}

int cit_start(struct cit *c, uint32_t session_ms)
{
    if (zkh_start(&c->zk) != 0) {
        return -1;
    }
    snprintf(c->cluster_arg, sizeof(c->cluster_arg), "zk://%s/sluice", c->zk.connect);
    snprintf(c->session_arg, sizeof(c->session_arg), "%u", session_ms);
    return 0;
}

int cit_broker_start(const struct cit *c, struct it_broker *b, int node_id)
{
    char node[16];
    snprintf(node, sizeof(node), "%d", node_id);
    const char *args[] = {"--cluster",   c->cluster_arg, "--node-id", node,
                          "--cluster-session-timeout-ms", c->session_arg,
                          "--log-level", "info",         NULL};
    return it_broker_start_free_port(b, NULL, args);
}

sluice_client *cit_connect(struct it_broker *brokers, int n)
{
    char list[1024] = "";
    for (int i = 0; i < n; i++) {
        if (it_broker_alive(&brokers[i])) {
            size_t len = strlen(list);
            snprintf(list + len, sizeof(list) - len, "%s%s", len > 0 ? "," : "",
                     brokers[i].addr);
        }
    }
    struct sluice_client_opts co = {.connect_timeout_ms = 1000, .request_timeout_ms = 5000};
    sluice_client *cl = NULL;
    return list[0] != '\0' && sluice_client_new(list, &co, &cl) == SLUICE_OK ? cl : NULL;
}

int cit_stream_create(sluice_client *cl, const char *name, const struct sluice_stream_opts *so,
                      uint32_t timeout_ms, struct sluice_stream_info **out)
{
    struct sluice_stream_info *si = NULL;
    uint64_t t0 = it_mono_ms();
    int rc;
    while ((rc = sluice_stream_create(cl, name, so, &si)) != SLUICE_OK &&
           it_mono_ms() - t0 < timeout_ms) {
        it_sleep_ms(200); /* (until enough brokers are registered) */
    }
    if (out != NULL) {
        *out = si;
    } else {
        sluice_stream_info_free(si);
    }
    return rc;
}
