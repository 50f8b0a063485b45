/* fuzz_cluster_state.c - the decoders of the cluster's nodes in the metadata store
 * (ZooKeeper), whose bytes are not trusted: a shard's state (broker/cluster/
 * controller_state.c) and a stream's settings (stream_settings.c).
 *
 * Input: a node's data, given to both. Checks: decode never reads out of bounds and either
 * refuses (SL_EPROTO) or gives a value within bounds (state: ISR and replicas <=
 * SL_REPL_REPLICAS_MAX, ids >= 0, epoch >= 0, leader >= -1; settings: 1..4096 shards,
 * retention <= 8760 h, compression none or zstd, 1..7 replicas); what decodes encodes
 * within its bound and decodes back to the same value. The same input as a reassignment
 * request's data (sl_ctrl_move_parse: "1,2,4"): refused, or ids within bounds; a move that
 * starts keeps leader, epoch and ISR, holds old and new replicas (<= SL_REPL_REPLICAS_MAX),
 * survives encode/decode, and once the whole target is in sync sl_ctrl_decide switches to
 * exactly the target with the leader in the ISR; cancelled instead (sl_ctrl_move_cancel), it
 * is back to the replicas before it with the ISR among them. A decoded state in a move (its
 * `adding` field checked against replicas and target) is cancelled too: refused with a
 * reason, or the old replicas (a prefix) with the leader in the ISR.
 */
#include "broker/cluster/controller.h"
#include "broker/cluster/stream_settings.h"
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
           memcmp(a->m.replicas, b->m.replicas, a->m.n_replicas * sizeof a->m.replicas[0]) == 0 &&
           a->n_target == b->n_target &&
           memcmp(a->target, b->target, a->n_target * sizeof a->target[0]) == 0 &&
           a->n_adding == b->n_adding && a->adding_unknown == b->adding_unknown;
}

static bool has(const int32_t *ids, uint32_t n, int32_t id)
{
    for (uint32_t i = 0; i < n; i++) {
        if (ids[i] == id) {
            return true;
        }
    }
    return false;
}

static void move(const uint8_t *data, size_t size)
{
    int32_t ids[SL_REPL_REPLICAS_MAX];
    uint32_t n = 0;
    bool cancel = false;
    int err = sl_ctrl_move_parse(data, size, ids, &n, &cancel);
    if (err != SL_OK) {
        SL_ASSERT(err == SL_EPROTO);
        return;
    }
    if (cancel) {
        SL_ASSERT(n == 0 && size == strlen(SL_CTRL_MOVE_CANCEL));
        return;
    }
    SL_ASSERT(n >= 1 && n <= SL_REPL_REPLICAS_MAX);
    for (uint32_t i = 0; i < n; i++) {
        SL_ASSERT(ids[i] >= 0);
    }
    struct sl_ctrl_state base = {.m = {.leader = 1, .leader_epoch = 4, .n_isr = 3,
                                       .n_replicas = 3, .isr = {1, 2, 3}, .replicas = {1, 2, 3}},
                                 .leader_session = 11},
                         next, back, done;
    char why[256];
    err = sl_ctrl_move_start(&base, ids, n, &next, why, sizeof why);
    if (err != SL_OK) {
        SL_ASSERT(err == SL_EINVAL && why[0] != '\0');
        return;
    }
    SL_ASSERT(next.m.leader == 1 && next.m.leader_epoch == 4 && next.m.n_isr == 3);
    SL_ASSERT(next.n_target == n && memcmp(next.target, ids, n * sizeof ids[0]) == 0);
    SL_ASSERT(next.m.n_replicas >= 3 && next.m.n_replicas <= SL_REPL_REPLICAS_MAX);
    SL_ASSERT(memcmp(next.m.replicas, base.m.replicas, 3 * sizeof ids[0]) == 0);
    for (uint32_t i = 0; i < n; i++) {
        SL_ASSERT(has(next.m.replicas, next.m.n_replicas, ids[i]));
    }
    char buf[SL_CTRL_STATE_MAX];
    size_t len = sl_ctrl_state_encode(&next, buf, sizeof buf);
    SL_ASSERT(sl_ctrl_state_decode((const uint8_t *)buf, len, &back) == SL_OK);
    SL_ASSERT(same(&next, &back));
    SL_ASSERT(back.n_adding == next.m.n_replicas - 3 && !back.adding_unknown);
    /* cancelled at once (the leader alive in its session): the old set, same leader and epoch */
    int32_t live3[] = {1, 2, 3};
    int64_t sess3[] = {11, 12, 13};
    SL_ASSERT(sl_ctrl_move_cancel(&back, live3, sess3, 3, &done, why, sizeof why) == SL_OK);
    SL_ASSERT(done.n_target == 0 && done.n_adding == 0 && done.m.n_replicas == 3);
    SL_ASSERT(memcmp(done.m.replicas, base.m.replicas, 3 * sizeof ids[0]) == 0);
    SL_ASSERT(done.m.leader == 1 && done.m.leader_epoch == 4 && done.m.n_isr == 3);
    /* every replica alive and in sync: the switch */
    int32_t live[SL_REPL_REPLICAS_MAX];
    int64_t sess[SL_REPL_REPLICAS_MAX];
    for (uint32_t i = 0; i < next.m.n_replicas; i++) {
        live[i] = next.m.replicas[i];
        sess[i] = live[i] == 1 ? 11 : 100 + (int64_t)live[i]; /* (ids up to INT32_MAX) */
    }
    next.m.n_isr = next.m.n_replicas;
    memcpy(next.m.isr, next.m.replicas, next.m.n_replicas * sizeof ids[0]);
    SL_ASSERT(sl_ctrl_decide(&next, live, sess, next.m.n_replicas, false, &done));
    SL_ASSERT(done.n_target == 0 && done.m.n_replicas == n && done.m.n_isr == n);
    SL_ASSERT(memcmp(done.m.replicas, ids, n * sizeof ids[0]) == 0);
    SL_ASSERT(has(done.m.isr, done.m.n_isr, done.m.leader));
    SL_ASSERT(done.m.leader_epoch == (has(ids, n, 1) ? 4 : 5));
}

static void settings(const uint8_t *data, size_t size)
{
    struct sl_cstream_settings s;
    int err = sl_cstream_decode(data, size, &s);
    if (err != SL_OK) {
        SL_ASSERT(err == SL_EPROTO);
        return;
    }
    SL_ASSERT(s.shard_count >= 1 && s.shard_count <= SL_CSTREAM_SHARDS_MAX);
    SL_ASSERT(s.retention_hours <= 8760 && s.rf >= 1 && s.rf <= SL_REPL_REPLICAS_MAX);
    SL_ASSERT(strcmp(s.compression, "none") == 0 || strcmp(s.compression, "zstd") == 0);
    char buf[SL_CSTREAM_SETTINGS_MAX];
    size_t len = sl_cstream_encode(&s, buf, sizeof buf);
    SL_ASSERT(len == size && memcmp(buf, data, len) == 0); /* one spelling per value */
    struct sl_cstream_settings back;
    SL_ASSERT(sl_cstream_decode((const uint8_t *)buf, len, &back) == SL_OK);
    SL_ASSERT(back.shard_count == s.shard_count && back.retention_hours == s.retention_hours &&
              back.retention_bytes == s.retention_bytes && back.rf == s.rf &&
              strcmp(back.compression, s.compression) == 0);
}

/* A decoded state's move cancelled, every replica alive in a session of its own (the
 * leader's the elected one): refused with a reason, or the old set (a prefix of replicas),
 * the ISR within it, the leader in the ISR, the epoch kept or one up. */
static void cancel_decoded(const struct sl_ctrl_state *st)
{
    int32_t live[SL_REPL_REPLICAS_MAX];
    int64_t sess[SL_REPL_REPLICAS_MAX];
    for (uint32_t i = 0; i < st->m.n_replicas; i++) {
        live[i] = st->m.replicas[i];
        sess[i] = live[i] == st->m.leader ? st->leader_session : 1000 + i;
    }
    struct sl_ctrl_state out;
    char why[256] = "";
    int err = sl_ctrl_move_cancel(st, live, sess, st->m.n_replicas, &out, why, sizeof why);
    if (err != SL_OK) {
        SL_ASSERT((err == SL_ENOTFOUND || err == SL_EINVAL) && why[0] != '\0');
        SL_ASSERT(err != SL_ENOTFOUND || st->n_target == 0);
        return;
    }
    SL_ASSERT(st->n_target > 0 && !st->adding_unknown);
    SL_ASSERT(out.n_target == 0 && out.n_adding == 0);
    SL_ASSERT(out.m.n_replicas == st->m.n_replicas - st->n_adding);
    SL_ASSERT(memcmp(out.m.replicas, st->m.replicas, out.m.n_replicas * sizeof live[0]) == 0);
    for (uint32_t i = 0; i < out.m.n_isr; i++) {
        SL_ASSERT(has(out.m.replicas, out.m.n_replicas, out.m.isr[i]));
    }
    SL_ASSERT(has(out.m.isr, out.m.n_isr, out.m.leader));
    SL_ASSERT(out.m.leader_epoch == st->m.leader_epoch ||
              out.m.leader_epoch == st->m.leader_epoch + 1);
    SL_ASSERT(out.m.leader_epoch == st->m.leader_epoch + 1 || out.m.leader == st->m.leader);
    char buf[SL_CTRL_STATE_MAX];
    size_t len = sl_ctrl_state_encode(&out, buf, sizeof buf);
    struct sl_ctrl_state back;
    SL_ASSERT(sl_ctrl_state_decode((const uint8_t *)buf, len, &back) == SL_OK);
    SL_ASSERT(same(&out, &back));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    settings(data, size);
    move(data, size);
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
    SL_ASSERT(st.n_target <= SL_REPL_REPLICAS_MAX);
    for (uint32_t i = 0; i < st.n_target; i++) {
        SL_ASSERT(st.target[i] >= 0);
    }
    SL_ASSERT(st.n_adding < st.m.n_replicas && (st.n_target > 0 || st.n_adding == 0));
    cancel_decoded(&st);
    char buf[SL_CTRL_STATE_MAX];
    size_t len = sl_ctrl_state_encode(&st, buf, sizeof buf);
    SL_ASSERT(len < SL_CTRL_STATE_MAX);
    struct sl_ctrl_state back;
    SL_ASSERT(sl_ctrl_state_decode((const uint8_t *)buf, len, &back) == SL_OK);
    SL_ASSERT(same(&st, &back));
    return 0;
}
