/* cluster.c - ClusterStatus: the live brokers of a cluster; Metadata: who leads each shard (the
 * client routes by it too, conn.c); ReassignShard: a shard's move, or its cancel; ApiCall: an
 * AWS API call over the native connection (sluice.h; docs/PROTOCOL.md). */
#include "client/conn.h"
#include "client/route.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static char *dup_or_empty(const char *s)
{
    return strdup(s != NULL ? s : "");
}

void sluice_cluster_status_free(struct sluice_cluster_status *s)
{
    if (s == NULL) {
        return;
    }
    for (size_t i = 0; i < s->n_brokers; i++) {
        free((char *)s->brokers[i].address);
        free((char *)s->brokers[i].http_address);
        free((char *)s->brokers[i].version);
        free((char *)s->brokers[i].state);
    }
    free(s->brokers);
    free(s);
}

int sluice_cluster_status(sluice_client *c, struct sluice_cluster_status **out)
{
    *out = NULL;
    Sluice__V1__ClusterStatus body = SLUICE__V1__CLUSTER_STATUS__INIT;
    sl_request req = SLUICE__V1__REQUEST__INIT;
    req.body_case = SLUICE__V1__REQUEST__BODY_CLUSTER_STATUS;
    req.cluster_status = &body;
    sl_response *resp = NULL;
    int rc = sl_client_call_want(c, &req, 0, SLUICE__V1__RESPONSE__BODY_CLUSTER_STATUS, 0, &resp);
    if (rc != SL_OK) {
        return rc;
    }
    const Sluice__V1__ClusterStatusResponse *m = resp->cluster_status;
    struct sluice_cluster_status *s = calloc(1, sizeof(*s));
    size_t n = m->n_brokers;
    if (s != NULL && n > 0) {
        s->brokers = calloc(n, sizeof(s->brokers[0]));
    }
    if (s == NULL || (n > 0 && s->brokers == NULL)) {
        free(s);
        sl_response_free(resp);
        sl_client_set_error("out of memory");
        return SL_ENOMEM;
    }
    s->cluster = m->cluster;
    s->node_id = m->node_id;
    s->connected = m->connected;
    s->controller = m->controller;
    s->controller_epoch = m->controller_epoch;
    bool ok = true;
    for (size_t i = 0; i < n; i++) {
        const Sluice__V1__BrokerInfo *b = m->brokers[i];
        struct sluice_broker_info *d = &s->brokers[i];
        s->n_brokers = i + 1;
        d->node_id = b->node_id;
        d->start_time_ms = b->start_time_ms;
        d->self = b->self;
        d->address = dup_or_empty(b->address);
        d->http_address = dup_or_empty(b->http_address);
        d->version = dup_or_empty(b->version);
        d->state = dup_or_empty(b->state);
        ok = ok && d->address != NULL && d->http_address != NULL && d->version != NULL &&
             d->state != NULL;
    }
    sl_response_free(resp);
    if (!ok) {
        sluice_cluster_status_free(s);
        sl_client_set_error("out of memory");
        return SL_ENOMEM;
    }
    *out = s;
    return SL_OK;
}

int sluice_api_call(sluice_client *c, const char *service, const char *action, const void *body,
                    size_t len, int *status, char **out, size_t *out_len)
{
    *status = 0;
    *out = NULL;
    *out_len = 0;
    Sluice__V1__ApiCall m = SLUICE__V1__API_CALL__INIT;
    m.service = (char *)service;
    m.action = (char *)action;
    m.body.data = (uint8_t *)body;
    m.body.len = len;
    sl_request req = SLUICE__V1__REQUEST__INIT;
    req.body_case = SLUICE__V1__REQUEST__BODY_API_CALL;
    req.api_call = &m;
    sl_response *resp = NULL;
    int rc = sl_client_call_want(c, &req, 0, SLUICE__V1__RESPONSE__BODY_API_CALL, 0, &resp);
    if (rc != SL_OK) {
        return rc;
    }
    const Sluice__V1__ApiCallResponse *r = resp->api_call;
    char *copy = malloc(r->body.len + 1);
    if (copy == NULL) {
        sl_response_free(resp);
        sl_client_set_error("out of memory");
        return SL_ENOMEM;
    }
    if (r->body.len > 0) {
        memcpy(copy, r->body.data, r->body.len);
    }
    copy[r->body.len] = '\0';
    *status = (int)r->status;
    *out = copy;
    *out_len = r->body.len;
    sl_response_free(resp);
    return SL_OK;
}

int sluice_cluster_metadata(sluice_client *c, const char *const *streams, size_t n,
                            struct sluice_metadata **out)
{
    *out = NULL;
    if (n > SLUICE_METADATA_STREAMS) {
        sl_client_set_error("%zu streams named; at most %u per call", n, SLUICE_METADATA_STREAMS);
        return SL_ELIMIT;
    }
    Sluice__V1__Metadata body = SLUICE__V1__METADATA__INIT;
    body.streams = (char **)streams;
    body.n_streams = n;
    sl_request req = SLUICE__V1__REQUEST__INIT;
    req.body_case = SLUICE__V1__REQUEST__BODY_METADATA;
    req.metadata = &body;
    sl_response *resp = NULL;
    struct sl_link *via = NULL;
    int rc = sl_client_call_via(c, &req, &resp, &via);
    if (rc == SL_EUNSUPPORTED) {
        return rc; /* (a broker older than Metadata: its message says so) */
    }
    if (rc == SL_OK && resp->body_case != SLUICE__V1__RESPONSE__BODY_METADATA) {
        sl_client_set_error("unexpected response kind %d to Metadata", (int)resp->body_case);
        rc = SL_EPROTO;
    }
    char why[SL_ROUTE_WHY_MAX];
    struct sluice_metadata *m = NULL;
    if (rc == SL_OK) {
        rc = sl_route_metadata_copy(resp->metadata, &m, why, sizeof(why));
        if (rc != SL_OK) {
            sl_client_set_error("%s", why);
        }
    }
    sl_response_free(resp);
    if (rc == SL_OK && m->n_streams != n) {
        sl_client_set_error("Metadata answered %zu streams for %zu asked", m->n_streams, n);
        rc = SL_EPROTO;
    }
    for (size_t i = 0; rc == SL_OK && i < n; i++) {
        if (strcmp(m->streams[i].name, streams[i]) != 0) {
            sl_client_set_error("Metadata answered stream '%.64s' for '%.64s'",
                                m->streams[i].name, streams[i]);
            rc = SL_EPROTO;
        }
    }
    if (rc == SL_OK) {
        rc = sl_client_route_learn(c, via, m);
    }
    if (rc != SL_OK) {
        sluice_metadata_free(m);
        return rc;
    }
    *out = m;
    return SL_OK;
}

/* One ReassignShard: a move to ids[0, n), or with `cancel` (n = 0) the move's cancel. */
static int reassign(sluice_client *c, const char *stream, uint32_t shard, const int32_t *ids,
                    size_t n, bool cancel)
{
    Sluice__V1__ReassignShard m = SLUICE__V1__REASSIGN_SHARD__INIT;
    m.stream = (char *)stream;
    m.shard = shard;
    m.replicas = (int32_t *)ids;
    m.n_replicas = n;
    m.cancel = cancel;
    sl_request req = SLUICE__V1__REQUEST__INIT;
    req.body_case = SLUICE__V1__REQUEST__BODY_REASSIGN_SHARD;
    req.reassign_shard = &m;
    sl_response *resp = NULL;
    int rc = sl_client_call_want(c, &req, 0, SLUICE__V1__RESPONSE__BODY_REASSIGN_SHARD, 0, &resp);
    if (rc == SL_OK) {
        sl_response_free(resp);
    }
    return rc;
}

int sluice_cluster_reassign(sluice_client *c, const char *stream, uint32_t shard,
                            const int32_t *ids, size_t n)
{
    if (n == 0 || n > SLUICE_REPLICAS_MAX) {
        sl_client_set_error("%zu replicas named; a shard has 1 to %u", n, SLUICE_REPLICAS_MAX);
        return SL_EINVAL;
    }
    return reassign(c, stream, shard, ids, n, false);
}

int sluice_cluster_reassign_cancel(sluice_client *c, const char *stream, uint32_t shard)
{
    return reassign(c, stream, shard, NULL, 0, true);
}
