/* h_cluster.c - ClusterStatus (docs/PROTOCOL.md): the live brokers as this
 * broker's membership (broker/cluster/member.h) lists them. */
#include "broker/native/handlers.h"

#include "broker/cluster/ctrl_run.h"
#include "broker/cluster/member.h"
#include "broker/version.h"
#include "common/error.h"

#include <stdlib.h>
#include <string.h>

void sl_native_cluster_status(struct sl_native *srv, struct sl_conn *c, const sl_request *req)
{
    Sluice__V1__ClusterStatusResponse cr = SLUICE__V1__CLUSTER_STATUS_RESPONSE__INIT;
    const struct sl_member_info *list = NULL, *self = NULL;
    size_t n = 0;
    if (srv->member != NULL) {
        self = sl_member_self(srv->member);
        n = sl_member_brokers(srv->member, &list);
        cr.cluster = true;
        cr.node_id = self->node_id;
        cr.connected = sl_member_connected(srv->member);
        cr.controller = sl_ctrl_run_active(srv->ctrl, &cr.controller_epoch);
    }
    /* one more for this broker when it is not listed (single, or re-registering) */
    Sluice__V1__BrokerInfo *bi = calloc(n + 1, sizeof(*bi));
    Sluice__V1__BrokerInfo **bp = calloc(n + 1, sizeof(*bp));
    if (bi == NULL || bp == NULL) {
        free(bi);
        free(bp);
        sl_native_fail(c, req->id, SL_ENOMEM, "out of memory listing the brokers");
        return;
    }
    bool self_listed = false;
    for (size_t i = 0; i < n; i++) {
        const struct sl_member_info *b = &list[i];
        bool is_self =
            b->node_id == self->node_id && strcmp(b->native_addr, self->native_addr) == 0;
        self_listed = self_listed || is_self;
        sluice__v1__broker_info__init(&bi[i]);
        bi[i].node_id = b->node_id;
        bi[i].address = (char *)b->native_addr;
        bi[i].http_address = (char *)b->http_addr;
        bi[i].version = (char *)b->version;
        bi[i].start_time_ms = b->start_ms;
        bi[i].self = is_self;
        bi[i].state = (char *)(is_self ? "up" : "alive");
        bp[i] = &bi[i];
    }
    size_t total = n;
    if (!self_listed) {
        Sluice__V1__BrokerInfo *s = &bi[total];
        sluice__v1__broker_info__init(s);
        s->self = true;
        s->version = (char *)SL_BROKER_VERSION;
        if (self != NULL) {
            s->node_id = self->node_id;
            s->address = (char *)self->native_addr;
            s->http_address = (char *)self->http_addr;
            s->start_time_ms = self->start_ms;
            s->state = (char *)(cr.connected ? "joining" : "disconnected");
        } else {
            s->state = (char *)"up";
        }
        bp[total++] = s;
    }
    cr.n_brokers = total;
    cr.brokers = bp;
    sl_response resp = SLUICE__V1__RESPONSE__INIT;
    resp.id = req->id;
    resp.body_case = SLUICE__V1__RESPONSE__BODY_CLUSTER_STATUS;
    resp.cluster_status = &cr;
    sl_native_respond(c, &resp);
    free(bi);
    free(bp);
    sl_conn_request_done(c);
}
