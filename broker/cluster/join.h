/* join.h - sluiced joining its cluster at start-up (--cluster): the broker's
 * record from its settings, the membership on a ZooKeeper store, and the wait
 * until it is registered. */
#ifndef SL_CLUSTER_JOIN_H
#define SL_CLUSTER_JOIN_H

#include "broker/cluster/ctrl_run.h"
#include "broker/cluster/member.h"

#include <stddef.h>
#include <stdint.h>

struct sl_ring;
struct sl_broker_config;

/* Registers this broker (cfg->cluster, node_id, advertise, port, http_port)
 * and runs `ring` until it is registered, refused, or the start-up wait
 * (twice the session timeout, at least SL_CLUSTER_JOIN_WAIT_MIN_MS) passed.
 * Called before the listeners open. Errors, with `why` naming the cause and
 * the fix: SL_EINVAL (settings), SL_EEXIST (the node id is taken),
 * SL_EAGAIN (ZooKeeper not reached in time), SL_ENOMEM, SL_ESYS. */
#define SL_CLUSTER_JOIN_WAIT_MIN_MS 10000u
int sl_cluster_join(struct sl_ring *ring, const struct sl_broker_config *cfg, const char *version,
                    struct sl_member **out, char *why, size_t whylen);

/* Runs for controller (ctrl_run.h) on a ZooKeeper session of its own, after the join.
 * Errors as the store's open, with `why`. */
int sl_cluster_controller_start(const struct sl_broker_config *cfg, struct sl_ctrl_run **out,
                                char *why, size_t whylen);

/* Leaves the cluster at shutdown: stops the member (its session closes, its
 * node goes at once) and runs `ring` until the closed store is freed (at
 * most SL_CLUSTER_LEAVE_WAIT_MS). NULL-safe. */
#define SL_CLUSTER_LEAVE_WAIT_MS 2000u
void sl_cluster_leave(struct sl_ring *ring, struct sl_member *mb);

#endif
