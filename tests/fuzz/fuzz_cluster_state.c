/* fuzz_cluster_state.c - the shard state node's decoder (broker/cluster/controller_state.c),
 * whose bytes come from the metadata store (ZooKeeper), so are not trusted.
 *
 * Input: a node's data. Checks: decode never reads out of bounds and either refuses
 * (SL_EPROTO) or gives a state within bounds (ISR and replicas <= SL_REPL_REPLICAS_MAX,
 * ids >= 0, epoch >= 0, leader >= -1); a decoded state encodes within SL_CTRL_STATE_MAX
 * and decodes back to the same state.
 */
#include "broker/cluster/controller.h"
#include "common/assert.h"
#include "common/error.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool same(const struct sl_ctrl_state *a, const struct sl_ctrl_state *b)
{
    if (a->m.leader != b->m.leader || a->m.leader_epoch != b->m.leader_epoch ||
        a->leader_session != b->leader_session || a->m.n_isr != b->m.n_isr ||
        a->m.n_replicas != b->m.n_replicas) {
        return false;
    }
    return memcmp(a->m.isr, b->m.isr, a->m.n_isr * sizeof a->m.isr[0]) == 0 &&
           memcmp(a->m.replicas, b->m.replicas, a->m.n_replicas * sizeof a->m.replicas[0]) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sl_ctrl_state st;
    int err = sl_ctrl_state_decode(data, size, &st);
    if (err != SL_OK) {
        SL_ASSERT(err == SL_EPROTO);
        return 0;
    }
    SL_ASSERT(st.m.n_isr >= 1 && st.m.n_isr <= SL_REPL_REPLICAS_MAX);
    SL_ASSERT(st.m.n_replicas >= 1 && st.m.n_replicas <= SL_REPL_REPLICAS_MAX);
    SL_ASSERT(st.m.leader >= SL_REPL_NONE && st.m.leader_epoch >= 0);
    for (uint32_t i = 0; i < st.m.n_isr; i++) {
        SL_ASSERT(st.m.isr[i] >= 0);
    }
    for (uint32_t i = 0; i < st.m.n_replicas; i++) {
        SL_ASSERT(st.m.replicas[i] >= 0);
    }
    char buf[SL_CTRL_STATE_MAX];
    size_t len = sl_ctrl_state_encode(&st, buf, sizeof buf);
    SL_ASSERT(len < SL_CTRL_STATE_MAX);
    struct sl_ctrl_state back;
    SL_ASSERT(sl_ctrl_state_decode((const uint8_t *)buf, len, &back) == SL_OK);
    SL_ASSERT(same(&st, &back));
    return 0;
}
