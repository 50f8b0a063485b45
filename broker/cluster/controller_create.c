/* controller_create.c - stream creation by the controller (controller.h,
 * sl_ctrl_create_stream): shard states placed over the live brokers (sl_ctrl_place) and
 * written in multis behind the same controller-epoch check as every controller write.
 */
#include "broker/cluster/controller_int.h"

#include "common/assert.h"
#include "common/error.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* ---- stream creation ---------------------------------------------------- */

static void on_create_done(void *arg, int err, int failed_op)
{
    (void)arg;
    (void)err;
    (void)failed_op; /* the outcome shows through the watches on /shards */
}

static void on_create_parent(void *arg, int err, const char *path)
{
    (void)arg;
    (void)err;
    (void)path;
}

int sl_ctrl_create_stream(struct sl_ctrl *c, const char *name, uint32_t n_shards, uint32_t rf)
{
    if (c->phase != SL_CTRL_ACTIVE || !c->brokers_known) {
        return SL_ENOT_LEADER;
    }
    if (rf == 0 || rf > c->n_live || rf > SL_REPL_REPLICAS_MAX || name[0] == '\0' ||
        strchr(name, '/') != NULL || strlen(name) >= SL_CTRL_NAME_MAX / 2) {
        return SL_EINVAL;
    }
    int32_t sorted[SL_CTRL_BROKERS_MAX];
    uint32_t n = c->n_live;
    memcpy(sorted, c->live, n * sizeof sorted[0]);
    for (uint32_t i = 1; i < n; i++) { /* insertion sort: a few brokers */
        for (uint32_t j = i; j > 0 && sorted[j - 1] > sorted[j]; j--) {
            int32_t t = sorted[j];
            sorted[j] = sorted[j - 1];
            sorted[j - 1] = t;
        }
    }
    char p[SL_META_PATH_MAX];
    snprintf(p, sizeof p, PATH_SHARDS);
    if (sl_meta_create(c->meta, p, NULL, 0, 0, on_create_parent, NULL) != SL_OK) {
        return SL_ENOMEM;
    }
    snprintf(p, sizeof p, PATH_SHARDS "/%s", name);
    if (sl_meta_create(c->meta, p, NULL, 0, 0, on_create_parent, NULL) != SL_OK) {
        return SL_ENOMEM;
    }
    uint64_t h = sl_ctrl_hash_name(name);
    for (uint32_t k = 0; k < n_shards;) {
        struct sl_meta_op ops[SL_META_MULTI_MAX];
        ops[0] = (struct sl_meta_op){
            .type = SL_META_OP_CHECK, .path = PATH_EPOCH, .version = c->epoch_version};
        size_t nops = 1, used = 0;
        for (; k < n_shards && nops < SL_META_MULTI_MAX; k++) {
            struct sl_ctrl_state st = {.m = {.leader_epoch = 0}};
            sl_ctrl_place(sorted, n, rf, h, k, st.m.replicas);
            st.m.n_replicas = st.m.n_isr = rf;
            memcpy(st.m.isr, st.m.replicas, rf * sizeof st.m.isr[0]);
            st.m.leader = st.m.replicas[0];
            st.leader_session = c->session[sl_ctrl_live_at(c->live, c->n_live, st.m.leader)];
            char *path = c->scratch + used;
            used +=
                (size_t)snprintf(path, SL_META_PATH_MAX, PATH_SHARDS "/%s/%" PRIu32, name, k) + 1;
            char *data = c->scratch + used;
            size_t len = sl_ctrl_state_encode(&st, data, SL_CTRL_STATE_MAX);
            used += len;
            ops[nops++] = (struct sl_meta_op){
                .type = SL_META_OP_CREATE, .path = path, .data = (const uint8_t *)data, .len = len};
        }
        if (sl_meta_multi(c->meta, ops, nops, on_create_done, NULL) != SL_OK) {
            return SL_ENOMEM;
        }
    }
    return SL_OK;
}
