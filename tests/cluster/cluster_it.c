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
    const char *args[] = {
        "--cluster",    c->cluster_arg, "--node-id", node, "--cluster-session-timeout-ms",
        c->session_arg, "--log-level",  "info",      NULL};
    return it_broker_start_free_port(b, NULL, args);
}

sluice_client *cit_connect(struct it_broker *brokers, int n)
{
    char list[1024] = "";
    for (int i = 0; i < n; i++) {
        if (it_broker_alive(&brokers[i])) {
            size_t len = strlen(list);
            snprintf(list + len, sizeof(list) - len, "%s%s", len > 0 ? "," : "", brokers[i].addr);
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

uint64_t cit_shard_end(sluice_client *cl, const char *stream, uint32_t k)
{
    struct sluice_stream_info *si = NULL;
    CHECK(sluice_stream_describe(cl, stream, &si) == SLUICE_OK);
    uint64_t end = 0;
    for (uint32_t i = 0; i < si->shards_len; i++) {
        if (si->shards[i].shard == k) {
            end = si->shards[i].next_seq;
        }
    }
    sluice_stream_info_free(si);
    return end;
}

int cit_leader(sluice_client *cl, const char *stream, uint32_t k, int n_brokers)
{
    const char *names[1] = {stream};
    struct sluice_metadata *md = NULL;
    int at = -1;
    if (sluice_cluster_metadata(cl, names, 1, &md) == SLUICE_OK && md->n_streams == 1) {
        for (size_t s = 0; s < md->streams[0].n_shards; s++) {
            const struct sluice_shard_route *r = &md->streams[0].shards[s];
            if (r->shard == k && r->leader >= 1 && r->leader <= n_brokers) {
                at = r->leader - 1;
            }
        }
    }
    sluice_metadata_free(md);
    return at;
}

bool cit_has(const int32_t *ids, size_t n, int32_t id)
{
    for (size_t i = 0; i < n; i++) {
        if (ids[i] == id) {
            return true;
        }
    }
    return false;
}

void cit_print_brokers(struct it_broker *brokers, int n)
{
    for (int i = 0; i < n; i++) {
        if (brokers[i].root[0] != '\0') { /* (never started otherwise) */
            fprintf(stderr, "broker %d: %s, data %s\n", i + 1,
                    it_broker_alive(&brokers[i]) ? "running" : "stopped", brokers[i].data);
        }
    }
}

void cit_on_delivery(void *ctx, int err, uint32_t shard, uint64_t seq)
{
    (void)shard;
    (void)seq;
    uint32_t *failed = ctx;
    if (err != SLUICE_OK) {
        fprintf(stderr, "delivery failed: %s (%s)\n", sluice_strerror(err), sluice_last_error());
        __atomic_add_fetch(failed, 1, __ATOMIC_RELAXED);
    }
}

void cit_write_values(sluice_client *cl, const char *stream, const char *key_prefix, uint32_t n)
{
    uint32_t failed = 0;
    struct sluice_producer_opts po = {
        .ack = SLUICE_ACK_DURABLE, .retries = 20, .retry_backoff_ms = 200, .linger_ms = 2};
    sluice_producer *p = NULL;
    CHECK(sluice_producer_new(cl, stream, &po, &p) == SLUICE_OK);
    for (uint32_t v = 0; v < n; v++) {
        char key[32], val[16];
        int kn = snprintf(key, sizeof(key), "%.16s%u", key_prefix, v);
        int vn = snprintf(val, sizeof(val), "v%u", v);
        CHECK(sluice_produce(p, key, (size_t)kn, val, (size_t)vn, NULL, 0, cit_on_delivery,
                             &failed) == SLUICE_OK);
    }
    CHECK(sluice_producer_flush(p, 30000) == SLUICE_OK);
    sluice_producer_free(p);
    CHECK(failed == 0);
}
