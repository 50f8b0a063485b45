/* replicas_move.c - a reassignment asked of this broker (replicas.h, sl_replicas_reassign):
 * checked against what this broker knows, then handed to the controller as the request node
 * /reassign/<stream>:<k> (data: the target ids, "1,2,4"), which the controller applies
 * (controller_move.c). Any broker takes the request: the controller may be another one, and
 * ZooKeeper carries the request to it whichever it is, across controller failovers.
 *
 * A cancel (sl_replicas_reassign_cancel) is the same node with the data "cancel"
 * (SL_CTRL_MOVE_CANCEL); checked here with sl_ctrl_move_cancel on this broker's view: a move
 * in progress, one whose state says what it adds, an old replica alive in the ISR to lead.
 *
 * What is checked here is what the controller would refuse anyway, so the asker learns why
 * at once: every id a live broker, none twice, at most SL_REPL_REPLICAS_MAX (old and new
 * together), no other move of the shard in progress, and never fewer replicas than
 * min_insync_replicas (capped by the current replication factor): the switch leaves the
 * ISR = the target, which must still take durable appends.
 */
#include "broker/cluster/replicas_int.h"

#include "broker/cluster/member.h"
#include "common/error.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RS_PATH_REASSIGN "/reassign"

struct reassign_op {
    sl_replicas_reassigned_fn cb;
    void *ctx;
    char node[SL_CTRL_NAME_MAX];
};

static void on_request_created(void *arg, int err, const char *path)
{
    (void)path;
    struct reassign_op *op = arg;
    char why[320];
    if (err == SL_OK) {
        why[0] = '\0';
    } else if (err == SL_EEXIST) {
        snprintf(why, sizeof(why),
                 "a reassignment of %s is waiting for the controller already: "
                 "wait for it (sluice cluster status shows the move)",
                 op->node);
        err = SL_ECONFLICT;
    } else {
        snprintf(why, sizeof(why),
                 "writing the request to ZooKeeper failed (%s): the outcome "
                 "is unknown, sluice cluster status shows whether the move started; retry",
                 sl_strerror(err));
    }
    op->cb(op->ctx, err, why);
    free(op);
}

static void on_parent(void *arg, int err, const char *path)
{
    (void)arg;
    (void)err; /* SL_EEXIST is the usual answer; a real failure shows in the create after it */
    (void)path;
}

static bool live(const struct sl_member_info *list, size_t n, int32_t id)
{
    for (size_t i = 0; i < n; i++) {
        if ((int32_t)list[i].node_id == id) {
            return true;
        }
    }
    return false;
}

/* The shard's replica state as this broker read it, or NULL with why. */
static struct sl_brepl *shard_of(struct sl_replicas *rs, const char *stream, uint32_t shard,
                                 int *rc, char *why, size_t why_len)
{
    if (rs == NULL || rs->meta == NULL || rs->stopping) {
        snprintf(why, why_len, RS_NO_SESSION_WHY);
        *rc = SL_ENOT_LEADER;
        return NULL;
    }
    struct sl_brepl *br = rs_find(rs, stream, shard);
    if (br == NULL) {
        snprintf(why, why_len,
                 "stream %s has no shard %" PRIu32 " replicated in this cluster "
                 "(only cluster streams, made by CreateStream in cluster mode, have replicas)",
                 stream, shard);
        *rc = SL_ENOTFOUND;
        return NULL;
    }
    if (!br->have_state) {
        snprintf(why, why_len, "the state of %s is not read from ZooKeeper yet: retry", br->path);
        *rc = SL_EAGAIN;
        return NULL;
    }
    return br;
}

/* Creates the request node /reassign/<stream>:<shard> with `data` for the controller. */
static int request(struct sl_replicas *rs, const char *stream, uint32_t shard, const char *data,
                   size_t len, sl_replicas_reassigned_fn cb, void *ctx, char *why,
                   size_t why_len)
{
    struct reassign_op *op = calloc(1, sizeof(*op));
    if (op == NULL) {
        snprintf(why, why_len, "out of memory");
        return SL_ENOMEM;
    }
    op->cb = cb;
    op->ctx = ctx;
    snprintf(op->node, sizeof(op->node), "%s:%" PRIu32, stream, shard);
    char path[SL_META_PATH_MAX];
    snprintf(path, sizeof(path), RS_PATH_REASSIGN "/%s", op->node);
    /* the store answers one session's calls in order: the parent exists before the create */
    (void)sl_meta_create(rs->meta, RS_PATH_REASSIGN, NULL, 0, 0, on_parent, NULL);
    int rc = sl_meta_create(rs->meta, path, (const uint8_t *)data, len, 0, on_request_created, op);
    if (rc != SL_OK) {
        free(op);
        snprintf(why, why_len, "ZooKeeper refused the request: %s", sl_strerror(rc));
        return rc;
    }
    return SL_OK;
}

int sl_replicas_reassign(struct sl_replicas *rs, const char *stream, uint32_t shard,
                         const int32_t *ids, uint32_t n, sl_replicas_reassigned_fn cb, void *ctx,
                         char *why, size_t why_len)
{
    int rc = SL_OK;
    struct sl_brepl *br = shard_of(rs, stream, shard, &rc, why, why_len);
    if (br == NULL) {
        return rc;
    }
    const struct sl_member_info *list = NULL;
    size_t n_live = sl_member_brokers(rs->mb, &list);
    for (uint32_t i = 0; i < n && i < SL_REPL_REPLICAS_MAX; i++) {
        if (ids[i] >= 0 && !live(list, n_live, ids[i])) {
            snprintf(why, why_len,
                     "broker %" PRId32 " is not a live broker of the cluster "
                     "(sluice cluster status lists them): start it first",
                     ids[i]);
            return SL_EINVAL;
        }
    }
    uint32_t floor =
        rs->cfg.min_insync < br->state.m.n_replicas ? rs->cfg.min_insync : br->state.m.n_replicas;
    if (n < floor) {
        snprintf(why, why_len,
                 "%u replicas named; the shard needs at least %u "
                 "(min_insync_replicas, or its replication factor if smaller) to take durable "
                 "appends after the move",
                 n, floor);
        return SL_EINVAL;
    }
    struct sl_ctrl_state next;
    rc = sl_ctrl_move_start(&br->state, ids, n, &next, why, why_len);
    if (rc != SL_OK) {
        return rc;
    }
    char data[SL_REPL_REPLICAS_MAX * 12];
    size_t len = 0;
    for (uint32_t i = 0; i < n; i++) {
        len += (size_t)snprintf(data + len, sizeof(data) - len, "%s%" PRId32, i ? "," : "", ids[i]);
    }
    return request(rs, stream, shard, data, len, cb, ctx, why, why_len);
}

int sl_replicas_reassign_cancel(struct sl_replicas *rs, const char *stream, uint32_t shard,
                                sl_replicas_reassigned_fn cb, void *ctx, char *why,
                                size_t why_len)
{
    int rc = SL_OK;
    struct sl_brepl *br = shard_of(rs, stream, shard, &rc, why, why_len);
    if (br == NULL) {
        return rc;
    }
    /* what this broker can tell: a move in progress, which says what it adds, and an old
     * replica alive (its session as this broker lists it) in the ISR to lead - the controller
     * decides again on its own view */
    if (br->state.n_target == 0) {
        snprintf(why, why_len,
                 "no move of %s shard %" PRIu32 " is in progress (as this broker last read "
                 "its state): nothing to cancel",
                 stream, shard);
        return SL_ENOTFOUND;
    }
    if (br->state.adding_unknown) {
        snprintf(why, why_len,
                 "the move of %s shard %" PRIu32 " was started by a broker older than "
                 "cancelling (its state does not say which replicas it adds): it can only go "
                 "on to its end",
                 stream, shard);
        return SL_EINVAL;
    }
    const struct sl_member_info *list = NULL;
    size_t n_list = sl_member_brokers(rs->mb, &list);
    int32_t live_ids[SL_REPL_REPLICAS_MAX];
    int64_t sessions[SL_REPL_REPLICAS_MAX];
    uint32_t n_live = 0;
    for (uint32_t i = 0; i < br->state.m.n_replicas; i++) {
        for (size_t j = 0; j < n_list; j++) {
            if ((int32_t)list[j].node_id == br->state.m.replicas[i]) {
                live_ids[n_live] = br->state.m.replicas[i];
                sessions[n_live++] = list[j].session_id;
                break;
            }
        }
    }
    struct sl_ctrl_state next;
    rc = sl_ctrl_move_cancel(&br->state, live_ids, sessions, n_live, &next, why, why_len);
    if (rc != SL_OK) {
        return rc;
    }
    return request(rs, stream, shard, SL_CTRL_MOVE_CANCEL, strlen(SL_CTRL_MOVE_CANCEL), cb, ctx,
                   why, why_len);
}

uint32_t sl_replicas_target(const struct sl_replicas *rs, const char *stream, uint32_t shard,
                            int32_t *out)
{
    const struct sl_brepl *br = rs != NULL ? rs_find(rs, stream, shard) : NULL;
    if (br == NULL || !br->have_state) {
        return 0;
    }
    memcpy(out, br->state.target, br->state.n_target * sizeof(out[0]));
    return br->state.n_target;
}
