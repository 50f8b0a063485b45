/* zk_cluster.c (test) - see zk_cluster.h. */
#include "zk_cluster.h"

#include <stdio.h>
#include <string.h>

#define ZKC_EXTRA_MAX 8

int zkc_available(void)
{
    int skip = it_preflight();
    return skip != 0 ? skip : zkh_available();
}

int zkc_start_broker(struct zkc *c, struct it_broker *b, int i, const char *const *extra)
{
    char node[16];
    snprintf(node, sizeof(node), "%d", i + 1);
    const char *args[6 + ZKC_EXTRA_MAX + 1] = {"--cluster", c->cluster_arg, "--node-id", node,
                                               "--cluster-session-timeout-ms", c->session_arg};
    int n = 6;
    for (int k = 0; extra != NULL && extra[k] != NULL; k++) {
        if (k >= ZKC_EXTRA_MAX) {
            fprintf(stderr, "zkc_start_broker: more than %d extra flags\n", ZKC_EXTRA_MAX);
            return -1;
        }
        args[n++] = extra[k];
    }
    args[n] = NULL;
    return it_broker_start_free_port(b, NULL, args);
}

int zkc_start(struct zkc *c, struct it_broker *brokers, int n, uint32_t session_ms,
              const char *const *extra)
{
    if (zkh_start(&c->zk) != 0) {
        return -1;
    }
    snprintf(c->cluster_arg, sizeof(c->cluster_arg), "zk://%s/sluice-it", c->zk.connect);
    snprintf(c->session_arg, sizeof(c->session_arg), "%u", session_ms);
    for (int i = 0; i < n; i++) {
        if (zkc_start_broker(c, &brokers[i], i, extra) != 0) {
            fprintf(stderr, "broker %d did not start\n", i + 1);
            return -1;
        }
    }
    return 0;
}

int zkc_stop(struct zkc *c, struct it_broker *brokers, int n)
{
    int rc = 0;
    for (int i = 0; i < n; i++) {
        if (it_broker_alive(&brokers[i]) && it_broker_stop(&brokers[i]) != 0) {
            fprintf(stderr, "broker %d did not stop cleanly\n", i + 1);
            rc = -1;
        }
        it_broker_cleanup(&brokers[i]);
    }
    zkh_cleanup(&c->zk);
    return rc;
}
