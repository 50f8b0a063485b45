/* ctrl_run.h - sluiced running for cluster controller (#14): the controller state machine
 * (controller.h) on a ZooKeeper session of its own, started again with a new session when
 * it dies (session expired, or deposed by a newer controller epoch).
 *
 * Every broker of a cluster runs one; the one that creates /controller and bumps
 * /controller_epoch is the controller, the others wait on the node and take over when its
 * session ends. A session of its own, beside the membership's: the controller's calls and
 * watches are many (every shard's state), and an expiry of one does not take the other down
 * with it.
 *
 * Threading: the owner's loop (the store's callbacks and sl_ctrl_run_tick).
 */
#ifndef SL_CLUSTER_CTRL_RUN_H
#define SL_CLUSTER_CTRL_RUN_H

#include "broker/cluster/member.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SL_CTRL_RUN_TICK_MS  100u  /* sl_ctrl_tick's period */
#define SL_CTRL_RUN_RETRY_MS 1000u /* a store that failed to open is tried again after */

struct sl_ctrl_run;

/* Opens a store with `open` (as the membership's) and starts the candidacy of broker `self`.
 * Errors: the opener's (with why), SL_ENOMEM. */
int sl_ctrl_run_start(int32_t self, sl_member_open_fn open, void *open_ctx,
                      struct sl_ctrl_run **out, char *why, size_t whylen);
/* Ticks the controller, and starts it over on a new session when it died. Call every loop
 * tick. */
void sl_ctrl_run_tick(struct sl_ctrl_run *r, uint64_t now_ms);
/* Whether this broker is the controller now, and its controller epoch (0 when not). */
bool sl_ctrl_run_active(const struct sl_ctrl_run *r, int32_t *epoch);
/* Closes the store (this broker's candidacy or control ends with its session) and frees
 * everything. NULL-safe. */
void sl_ctrl_run_stop(struct sl_ctrl_run *r);

#endif
