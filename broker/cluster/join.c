/* join.c - sluiced joining its cluster at start-up (see join.h). */
#include "broker/cluster/join.h"

#include "broker/cluster/meta_zk.h"
#include "broker/cluster/replicas.h"
#include "broker/config.h"
#include "common/assert.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"
#include "common/ring.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* The store the broker joins with must hold a watch per shard and stream of the cluster's
 * streams, and a few of its own (replicas.h). */
_Static_assert(SL_REPLICAS_WATCHED_MAX + 64u <= SL_META_ZK_WATCHES_MAX,
               "the ZooKeeper store's watches bound the cluster's shards and streams");

struct opener {
    struct sl_ring *ring;
    const char *connect; /* the --cluster value without "zk://" */
    uint32_t session_timeout_ms;
};

static int open_zk(void *ctx, sl_meta_session_cb on_session, void *session_arg,
                   struct sl_meta **out, char *why, size_t whylen)
{
    struct opener *o = ctx;
    return sl_meta_zk_open(o->connect, o->session_timeout_ms, o->ring, on_session, session_arg, out,
                           why, whylen);
}

/* The record: advertise (or host:port) and the HTTP listener on the same host. */
static int self_info(const struct sl_broker_config *cfg, const char *version,
                     struct sl_member_info *self, char *why, size_t whylen)
{
    memset(self, 0, sizeof(*self));
    self->node_id = cfg->node_id;
    self->start_ms = sl_clock_wall_ms();
    int n =
        cfg->advertise[0] != '\0'
            ? snprintf(self->native_addr, sizeof(self->native_addr), "%s", cfg->advertise)
            : snprintf(self->native_addr, sizeof(self->native_addr), "%s:%u", cfg->host, cfg->port);
    if (n <= 0 || (size_t)n >= sizeof(self->native_addr)) {
        snprintf(why, whylen, "the advertised address is longer than %u bytes",
                 SL_MEMBER_ADDR_MAX - 1);
        return SL_EINVAL;
    }
    const char *colon = strrchr(self->native_addr, ':');
    SL_ASSERT(colon != NULL); /* config.c checked advertise; host:port has one */
    if (cfg->http_port != 0) {
        snprintf(self->http_addr, sizeof(self->http_addr), "%.*s:%u",
                 (int)(colon - self->native_addr), self->native_addr, cfg->http_port);
    }
    snprintf(self->version, sizeof(self->version), "%s", version);
    return SL_OK;
}

static struct opener o; /* lives as long as the member and the controller (the process) */

int sl_cluster_controller_start(const struct sl_broker_config *cfg, struct sl_ctrl_run **out,
                                char *why, size_t whylen)
{
    SL_ASSERT(o.ring != NULL); /* (sl_cluster_join set the opener) */
    return sl_ctrl_run_start((int32_t)cfg->node_id, open_zk, &o, out, why, whylen);
}

int sl_cluster_join(struct sl_ring *ring, const struct sl_broker_config *cfg, const char *version,
                    struct sl_member **out, char *why, size_t whylen)
{
    SL_ASSERT(strncmp(cfg->cluster, "zk://", 5) == 0);
    *out = NULL;
    o.ring = ring;
    o.connect = cfg->cluster + 5;
    o.session_timeout_ms = cfg->cluster_session_timeout_ms;
    struct sl_member_info self;
    int rc = self_info(cfg, version, &self, why, whylen);
    struct sl_member *mb = NULL;
    if (rc == SL_OK) {
        rc = sl_member_start(&self, open_zk, &o, NULL, NULL, &mb, why, whylen);
    }
    if (rc != SL_OK) {
        return rc;
    }
    uint64_t wait_ms = 2ull * cfg->cluster_session_timeout_ms;
    if (wait_ms < SL_CLUSTER_JOIN_WAIT_MIN_MS) {
        wait_ms = SL_CLUSTER_JOIN_WAIT_MIN_MS;
    }
    uint64_t start = sl_clock_mono_ms(), now = start;
    sl_info("cluster", "joining the cluster at %s as broker %" PRIu32 " (%s)", cfg->cluster,
            cfg->node_id, self.native_addr);
    while (sl_member_state(mb, NULL, 0) == SL_MEMBER_JOINING && now - start < wait_ms) {
        sl_ring_run(ring, 1, 50u * 1000u * 1000u);
        now = sl_clock_mono_ms();
        sl_member_tick(mb, now);
    }
    enum sl_member_state st = sl_member_state(mb, why, whylen);
    if (st == SL_MEMBER_REGISTERED) {
        *out = mb;
        return SL_OK;
    }
    if (st == SL_MEMBER_JOINING) {
        snprintf(why, whylen,
                 "cannot register with ZooKeeper at %s within %" PRIu64 " ms: is "
                 "it running and reachable from here? --cluster names it "
                 "(zk://HOST:PORT[,HOST:PORT...]/CHROOT)%s",
                 o.connect, wait_ms,
                 sl_member_connected(mb) ? " (connected, but the registration did not "
                                           "complete: see the log above)"
                                         : "");
        rc = SL_EAGAIN;
    } else {
        rc = SL_EEXIST; /* why: the member's reason */
    }
    sl_cluster_leave(ring, mb);
    return rc;
}

void sl_cluster_leave(struct sl_ring *ring, struct sl_member *mb)
{
    if (mb == NULL) {
        return;
    }
    sl_member_stop(mb);
    uint64_t deadline = sl_clock_mono_ms() + SL_CLUSTER_LEAVE_WAIT_MS;
    while (sl_meta_zk_live_stores() > 0 && sl_clock_mono_ms() < deadline) {
        sl_ring_run(ring, 1, 10u * 1000u * 1000u);
    }
}
