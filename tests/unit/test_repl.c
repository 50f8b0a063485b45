/* test_repl.c - unit tests for broker/cluster/repl.c (the replica state machine).
 *
 * Covers, on three replicas wired by hand (a FIFO of messages, disks that complete when
 * told): the epoch cache's answers (sl_repl_epoch_end); a leader's acks waiting for the whole
 * ISR's durable ends and refusing below min_insync; followers' fetches as acks and the HW
 * they learn; a stale-epoch fetch fenced and a newer-epoch one answered NOT_LEADER with a
 * metadata refresh; KIP-101 truncation to the leader's epoch end (not to the follower's HW)
 * of an uncommitted divergent tail; the ISR shrink written at the version read and acted on
 * only once written; an unknown outcome keeping the proposal; a restarted replica refusing
 * to lead an epoch it led before; a failed fsync stopping the replica; retention: a fetch
 * below the leader's log start answered ETRIMMED with the start, a follower whose log ends
 * below it resetting (log emptied, starting there, epoch cache emptied) and catching up to
 * join the ISR, one whose log reaches the start fetching on untouched, a restarted empty
 * log starting past 0 fetching with no epoch, a cut never going below a log's start.
 * The deterministic simulator (tests/sim) runs the same code under faults.
 */
#include "broker/cluster/repl.h"
#include "common/error.h"

#include "tests/unit/test.h"

#define N       3
#define LOG_MAX 256

struct node {
    struct sl_repl r;
    int32_t log_epoch[LOG_MAX]; /* epoch per offset */
    int64_t log_start, log_end;
    int resets;
    uint32_t disk_pending;
    int64_t acked_end;
    int ack_err;
    int meta_writes;
    struct sl_repl_meta meta_written;
    int refreshes;
    int fatal;
};

static struct node nodes[N];
static struct sl_repl_msg queue[1024];
static struct sl_repl_batch qbatches[1024][SL_REPL_FETCH_BATCHES_MAX];
static uint32_t q_head, q_n;
static uint64_t now = 1000;

static void run_fx(struct node *n)
{
    uint32_t k;
    const struct sl_repl_effect *fx = sl_repl_fx(&n->r, &k);
    for (uint32_t i = 0; i < k; i++) {
        const struct sl_repl_effect *e = &fx[i];
        switch (e->type) {
        case SL_REPL_FX_SEND: {
            uint32_t slot = (q_head + q_n++) % 1024;
            queue[slot] = e->msg;
            if (e->msg.type == SL_REPL_MSG_FETCH_RESP && e->msg.err == SL_OK) {
                uint32_t nb = 0;
                for (int64_t o = e->msg.offset; o < e->msg.read_end && nb < 4; o++) {
                    qbatches[slot][nb++] = (struct sl_repl_batch){o, 1, n->log_epoch[o], 0, 0};
                }
                queue[slot].batches = qbatches[slot];
                queue[slot].n_batches = nb;
            }
            break;
        }
        case SL_REPL_FX_WRITE:
            for (uint32_t b = 0; b < e->n_batches; b++) {
                for (uint32_t c = 0; c < e->batches[b].count; c++) {
                    n->log_epoch[e->batches[b].base_offset + c] = e->batches[b].epoch;
                }
                n->log_end = e->batches[b].base_offset + e->batches[b].count;
            }
            n->disk_pending++;
            break;
        case SL_REPL_FX_TRUNCATE:
            n->log_end = e->offset;
            n->disk_pending++;
            break;
        case SL_REPL_FX_RESET:
            n->log_start = n->log_end = e->offset;
            n->resets++;
            n->disk_pending++;
            break;
        case SL_REPL_FX_SAVE_EPOCHS:
            n->disk_pending++;
            break;
        case SL_REPL_FX_ACK:
            n->acked_end = e->offset;
            n->ack_err = e->err;
            break;
        case SL_REPL_FX_META_WRITE:
            n->meta_writes++;
            n->meta_written = e->meta;
            break;
        case SL_REPL_FX_META_REFRESH:
            n->refreshes++;
            break;
        case SL_REPL_FX_FATAL:
            n->fatal = 1;
            break;
        }
    }
    sl_repl_fx_clear(&n->r);
}

static void disk_all(struct node *n)
{
    while (n->disk_pending > 0) {
        n->disk_pending--;
        sl_repl_disk_done(&n->r, SL_OK);
        run_fx(n);
    }
}

/* Delivers messages (disks completing as they go) until nothing moves. */
static void settle(void)
{
    for (int round = 0; round < 10000; round++) {
        for (int i = 0; i < N; i++) {
            disk_all(&nodes[i]);
        }
        if (q_n == 0) {
            return;
        }
        struct sl_repl_msg m = queue[q_head];
        q_head = (q_head + 1) % 1024;
        q_n--;
        sl_repl_on_msg(&nodes[m.to].r, &m);
        run_fx(&nodes[m.to]);
    }
}

static void drop_queue(void)
{
    q_head = q_n = 0;
}

static struct sl_repl_meta meta_of(int32_t leader, int32_t epoch, int32_t version, uint32_t n_isr,
                                   const int32_t *isr)
{
    struct sl_repl_meta m = {.leader = leader,
                             .leader_epoch = epoch,
                             .version = version,
                             .n_isr = n_isr,
                             .n_replicas = N,
                             .replicas = {0, 1, 2}};
    for (uint32_t i = 0; i < n_isr; i++) {
        m.isr[i] = isr[i];
    }
    return m;
}

static void start(uint32_t min_insync)
{
    drop_queue();
    now = 1000;
    for (int i = 0; i < N; i++) {
        memset(&nodes[i], 0, sizeof nodes[i]);
        struct sl_repl_cfg cfg = {.self = i, .min_insync = min_insync, .replica_lag_ms = 5000};
        struct sl_repl_recovered rec = {.log_end = 0, .last_led_epoch = SL_REPL_NONE};
        sl_repl_init(&nodes[i].r, &cfg, &rec, now);
    }
}

static void meta_all(const struct sl_repl_meta *m)
{
    for (int i = 0; i < N; i++) {
        sl_repl_on_meta(&nodes[i].r, m);
        run_fx(&nodes[i]);
    }
}

static int append(struct node *n, uint32_t count)
{
    struct sl_repl_batch b = {.count = count};
    int64_t base;
    int32_t epoch;
    int err = sl_repl_append(&n->r, &b, &base, &epoch);
    run_fx(n);
    return err;
}

static void tick_all(uint64_t step)
{
    now += step;
    for (int i = 0; i < N; i++) {
        sl_repl_tick(&nodes[i].r, now);
        run_fx(&nodes[i]);
    }
}

TEST(epoch_end_answers)
{
    struct sl_repl r;
    struct sl_repl_cfg cfg = {.self = 0, .min_insync = 1, .replica_lag_ms = 5000};
    struct sl_repl_epoch ep[] = {{1, 0}, {3, 10}, {4, 25}};
    struct sl_repl_recovered rec = {
        .log_end = 30, .last_led_epoch = 4, .epochs = ep, .n_epochs = 3};
    sl_repl_init(&r, &cfg, &rec, 0);
    int32_t found;
    CHECK_EQ(sl_repl_epoch_end(&r, 1, &found), 10);
    CHECK_EQ(found, 1);
    CHECK_EQ(sl_repl_epoch_end(&r, 2, &found), 10); /* 2 absent: 1 is the largest <= 2 */
    CHECK_EQ(found, 1);
    CHECK_EQ(sl_repl_epoch_end(&r, 3, &found), 25);
    CHECK_EQ(sl_repl_epoch_end(&r, 4, &found), 30);
    CHECK_EQ(sl_repl_epoch_end(&r, 9, &found), 30);
    CHECK_EQ(found, 4);
    CHECK_EQ(sl_repl_epoch_end(&r, 0, &found), 0);
    CHECK_EQ(found, SL_REPL_NONE);
}

TEST(ack_waits_for_every_isr_member)
{
    start(2);
    int32_t isr[] = {0, 1, 2};
    struct sl_repl_meta m = meta_of(0, 1, 1, 3, isr);
    meta_all(&m);
    CHECK_EQ(nodes[0].r.role, SL_REPL_LEADER);
    CHECK_EQ(append(&nodes[0], 1), SL_EAGAIN); /* the epoch file is not durable yet */
    disk_all(&nodes[0]);
    CHECK_EQ(append(&nodes[0], 3), SL_OK);
    disk_all(&nodes[0]);
    CHECK_EQ(nodes[0].acked_end, 0); /* durable here, not on the followers */
    CHECK_EQ(sl_repl_hw(&nodes[0].r), 0);
    settle();
    CHECK_EQ(nodes[0].acked_end, 3);
    CHECK_EQ(nodes[0].ack_err, SL_OK);
    CHECK_EQ(sl_repl_hw(&nodes[0].r), 3);
    CHECK_EQ(nodes[1].log_end, 3);
    CHECK_EQ(sl_repl_hw(&nodes[1].r), 3); /* learnt from the parked fetch's answer */
    CHECK_EQ(nodes[2].log_epoch[2], 1);
}

/* A leader stopping with appends waiting for follower acks (cluster_replication's SIGTERM
 * case): they complete NOT_LEADER at once, new ones are refused, and the same epoch's
 * metadata read again does not make it lead (only a new epoch would). */
TEST(resigning_leader_fails_pending_appends)
{
    start(2);
    int32_t isr[] = {0, 1, 2};
    struct sl_repl_meta m = meta_of(0, 1, 1, 3, isr);
    meta_all(&m);
    disk_all(&nodes[0]);
    CHECK_EQ(append(&nodes[0], 3), SL_OK);
    disk_all(&nodes[0]);
    drop_queue(); /* (no follower fetch arrives: no ack) */
    CHECK_EQ(nodes[0].acked_end, 0);
    sl_repl_resign(&nodes[0].r);
    run_fx(&nodes[0]);
    CHECK_EQ(nodes[0].r.role, SL_REPL_IDLE);
    CHECK_EQ(nodes[0].acked_end, 3);
    CHECK_EQ(nodes[0].ack_err, SL_ENOT_LEADER);
    CHECK_EQ(append(&nodes[0], 1), SL_ENOT_LEADER);
    m.version = 2;
    sl_repl_on_meta(&nodes[0].r, &m);
    CHECK_EQ(nodes[0].r.role, SL_REPL_IDLE);
    sl_repl_resign(&nodes[1].r); /* a follower: nothing */
    CHECK_EQ(nodes[1].r.role, SL_REPL_FOLLOWER);
}

TEST(not_enough_replicas_refused)
{
    start(2);
    int32_t isr[] = {0};
    struct sl_repl_meta m = meta_of(0, 1, 1, 1, isr);
    meta_all(&m);
    disk_all(&nodes[0]);
    CHECK_EQ(append(&nodes[0], 1), SL_ENOT_ENOUGH_REPLICAS);
    CHECK_EQ(append(&nodes[1], 1), SL_ENOT_LEADER);
}

TEST(stale_epoch_fenced_newer_refreshes)
{
    start(1);
    int32_t isr[] = {0, 1, 2};
    struct sl_repl_meta m = meta_of(0, 5, 1, 3, isr);
    meta_all(&m);
    settle();
    drop_queue();
    struct sl_repl_msg f = {.type = SL_REPL_MSG_FETCH,
                            .from = 1,
                            .to = 0,
                            .leader_epoch = 4,
                            .req_id = 99,
                            .offset = 0,
                            .epoch = SL_REPL_NONE};
    sl_repl_on_msg(&nodes[0].r, &f);
    run_fx(&nodes[0]);
    CHECK_EQ(q_n, 1);
    CHECK_EQ(queue[q_head].err, SL_EFENCED);
    drop_queue();
    f.leader_epoch = 6;
    sl_repl_on_msg(&nodes[0].r, &f);
    run_fx(&nodes[0]);
    CHECK_EQ(queue[q_head].err, SL_ENOT_LEADER);
    CHECK_EQ(nodes[0].refreshes, 1);
}

/* Replica 1 led epoch 1 and wrote [0,4); only [0,2) reached replica 0 and was committed.
 * Replica 0 leads epoch 2 and appends 3 of its own. Replica 1 must cut to 2 (where epoch 1
 * ends in the leader's log), then fetch epoch 2's batches - not cut to its own HW. */
TEST(follower_truncates_to_leader_epoch_end)
{
    start(1);
    int32_t isr2[] = {0, 1};
    struct sl_repl_meta m1 = meta_of(1, 1, 1, 2, isr2);
    m1.n_replicas = 2;
    sl_repl_on_meta(&nodes[0].r, &m1);
    sl_repl_on_meta(&nodes[1].r, &m1);
    run_fx(&nodes[0]);
    run_fx(&nodes[1]);
    disk_all(&nodes[1]);
    CHECK_EQ(append(&nodes[1], 2), SL_OK);
    settle();
    CHECK_EQ(nodes[1].acked_end, 2);
    CHECK_EQ(append(&nodes[1], 2), SL_OK); /* [2,4) never reaches replica 0 */
    disk_all(&nodes[1]);
    drop_queue();
    CHECK_EQ(nodes[1].log_end, 4);
    int32_t isr0[] = {0};
    struct sl_repl_meta m2 = meta_of(0, 2, 2, 1, isr0);
    m2.n_replicas = 2;
    sl_repl_on_meta(&nodes[0].r, &m2);
    run_fx(&nodes[0]);
    disk_all(&nodes[0]);
    CHECK_EQ(append(&nodes[0], 3), SL_OK);
    disk_all(&nodes[0]);
    sl_repl_on_meta(&nodes[1].r, &m2);
    run_fx(&nodes[1]);
    CHECK_EQ(nodes[1].acked_end, 4);
    CHECK_EQ(nodes[1].ack_err, SL_ENOT_LEADER); /* [2,4) outcome unknown to its producer */
    settle();
    CHECK_EQ(nodes[1].log_end, 5);
    CHECK_EQ(nodes[1].log_epoch[1], 1);
    CHECK_EQ(nodes[1].log_epoch[2], 2);
    CHECK_EQ(nodes[1].log_epoch[4], 2);
    CHECK_EQ(sl_repl_hw(&nodes[1].r), 5);
}

/* KIP-320: a fetch whose last epoch does not end at or after its offset in the leader's
 * log is answered SL_ECONFLICT with where that epoch ends, and is not taken as an ack. */
TEST(diverging_fetch_answered_with_epoch_end)
{
    start(2);
    int32_t isr[] = {0, 1, 2};
    struct sl_repl_meta m = meta_of(0, 3, 1, 3, isr);
    meta_all(&m);
    disk_all(&nodes[0]);
    CHECK_EQ(append(&nodes[0], 4), SL_OK);
    disk_all(&nodes[0]);
    drop_queue();
    /* replica 1 claims [0,6) ending in epoch 2: the leader has no epoch 2, epoch 0 and 1
     * absent too: it answers with the largest epoch <= 2 it has (none) and its start */
    struct sl_repl_msg f = {.type = SL_REPL_MSG_FETCH,
                            .from = 1,
                            .to = 0,
                            .leader_epoch = 3,
                            .req_id = 7,
                            .offset = 6,
                            .epoch = 2};
    sl_repl_on_msg(&nodes[0].r, &f);
    run_fx(&nodes[0]);
    CHECK_EQ(q_n, 1);
    CHECK_EQ(queue[q_head].err, SL_ECONFLICT);
    CHECK_EQ(queue[q_head].epoch, SL_REPL_NONE);
    CHECK_EQ(queue[q_head].end_offset, 0);
    CHECK_EQ(nodes[0].r.peers[0].ack, -1); /* not an ack */
    drop_queue();
    /* epoch 3 up to 6: the leader's epoch 3 ends at 4 */
    f.epoch = 3;
    sl_repl_on_msg(&nodes[0].r, &f);
    run_fx(&nodes[0]);
    CHECK_EQ(queue[q_head].err, SL_ECONFLICT);
    CHECK_EQ(queue[q_head].epoch, 3);
    CHECK_EQ(queue[q_head].end_offset, 4);
    drop_queue();
    f.offset = 4; /* matches: an ack, HW waits for replica 2 */
    sl_repl_on_msg(&nodes[0].r, &f);
    run_fx(&nodes[0]);
    CHECK_EQ(nodes[0].r.peers[0].ack, 4);
    CHECK_EQ(sl_repl_hw(&nodes[0].r), 0);
}

TEST(isr_shrink_written_then_acted_on)
{
    start(1);
    int32_t isr[] = {0, 1, 2};
    struct sl_repl_meta m = meta_of(0, 1, 7, 3, isr);
    meta_all(&m);
    settle();
    drop_queue();
    /* followers stop fetching: after replica_lag_ms the leader proposes {0} at version 7 */
    CHECK_EQ(append(&nodes[0], 1), SL_OK);
    disk_all(&nodes[0]);
    tick_all(6000);
    CHECK_EQ(nodes[0].meta_writes, 1);
    CHECK_EQ(nodes[0].meta_written.version, 7);
    CHECK_EQ(nodes[0].meta_written.n_isr, 1);
    CHECK_EQ(sl_repl_hw(&nodes[0].r), 0);      /* still the ISR it read: {0,1,2} */
    sl_repl_meta_done(&nodes[0].r, SL_EAGAIN); /* unknown: keep waiting for a read */
    run_fx(&nodes[0]);
    CHECK_EQ(nodes[0].refreshes, 1);
    CHECK_EQ(sl_repl_hw(&nodes[0].r), 0);
    struct sl_repl_meta m8 = nodes[0].meta_written;
    m8.version = 8;
    sl_repl_on_meta(&nodes[0].r, &m8);
    run_fx(&nodes[0]);
    CHECK_EQ(sl_repl_hw(&nodes[0].r), 1);
    CHECK_EQ(nodes[0].acked_end, 1);
    CHECK_EQ(nodes[0].ack_err, SL_OK);
    /* replica 1 comes back and catches up: it is added again */
    for (int i = 0; i < N; i++) {
        sl_repl_on_meta(&nodes[i].r, &m8);
        run_fx(&nodes[i]);
    }
    sl_repl_tick(&nodes[1].r, now + SL_REPL_REQ_TIMEOUT_MS);
    run_fx(&nodes[1]);
    settle();
    CHECK_EQ(nodes[0].meta_writes, 2);
    CHECK_EQ(nodes[0].meta_written.version, 8);
    CHECK(nodes[0].meta_written.n_isr >= 2);
}

/* A reassignment within one epoch (docs/REPLICATION.md, "Reassignment"): replicas {0,1}
 * grow to {0,1,2}; the leader gives 2 a peer entry, 2 copies the log from 0 and the leader
 * adds it to the ISR; then the switch to {0,2}: 1 stops at once (same epoch), the leader
 * drops its peer and acks with 0 and 2; 1 drops its copy (an empty log at 0) and, moved
 * back, copies the whole log again. */
TEST(replicas_change_within_an_epoch)
{
    start(2);
    int32_t isr01[] = {0, 1};
    struct sl_repl_meta m = meta_of(0, 1, 1, 2, isr01);
    m.n_replicas = 2;
    meta_all(&m);
    CHECK_EQ(nodes[2].r.role, SL_REPL_IDLE);
    disk_all(&nodes[0]);
    CHECK_EQ(append(&nodes[0], 5), SL_OK);
    settle();
    CHECK_EQ(nodes[0].acked_end, 5);
    /* the move starts: 2 joins the replicas, nothing elected */
    m.n_replicas = 3;
    m.replicas[2] = 2;
    m.version = 2;
    meta_all(&m);
    CHECK_EQ(nodes[0].r.role, SL_REPL_LEADER);
    CHECK_EQ(nodes[0].r.n_peers, 2);
    CHECK_EQ(nodes[2].r.role, SL_REPL_FOLLOWER);
    settle();
    CHECK_EQ(nodes[2].log_end, 5); /* copied from the leader's start */
    CHECK_EQ(nodes[2].log_epoch[4], 1);
    CHECK_EQ(nodes[0].meta_writes, 1); /* the ISR grows to {0,1,2} */
    CHECK_EQ(nodes[0].meta_written.n_isr, 3);
    CHECK_EQ(nodes[0].meta_written.version, 2);
    sl_repl_meta_done(&nodes[0].r, SL_OK);
    run_fx(&nodes[0]);
    /* the switch: replicas {0,2}, same leader and epoch */
    int32_t isr02[] = {0, 2};
    struct sl_repl_meta sw = meta_of(0, 1, 4, 2, isr02);
    sw.n_replicas = 2;
    sw.replicas[1] = 2;
    meta_all(&sw);
    CHECK_EQ(nodes[1].r.role, SL_REPL_IDLE);
    CHECK_EQ(nodes[0].r.n_peers, 1);
    CHECK_EQ(nodes[0].r.peers[0].id, 2);
    drop_queue();
    CHECK_EQ(append(&nodes[0], 2), SL_OK);
    sl_repl_tick(&nodes[2].r, now + SL_REPL_REQ_TIMEOUT_MS); /* (its parked fetch dropped) */
    run_fx(&nodes[2]);
    settle();
    CHECK_EQ(nodes[0].acked_end, 7);
    CHECK_EQ(nodes[0].ack_err, SL_OK);
    CHECK_EQ(nodes[2].log_end, 7);
    CHECK_EQ(nodes[1].log_end, 0); /* stopped, its copy dropped: the log empty at 0 */
    CHECK_EQ(nodes[1].r.n_epochs, 0);
    CHECK_EQ(nodes[1].r.hw, 0);
    CHECK_EQ(nodes[1].r.last_led_epoch, SL_REPL_NONE);
    /* moved back: it copies the whole log again, from 0 */
    struct sl_repl_meta back = sw;
    back.version = 5;
    back.n_replicas = 3;
    back.replicas[2] = 1;
    meta_all(&back);
    CHECK_EQ(nodes[1].r.role, SL_REPL_FOLLOWER);
    settle();
    CHECK_EQ(nodes[1].log_end, 7);
    CHECK_EQ(nodes[1].log_epoch[0], 1);
    CHECK_EQ(nodes[0].meta_written.n_isr, 3); /* and is back in the ISR */
}

/* A newer state read while the leader's ISR write is outstanding settles the proposal, but
 * no second write goes before the first is answered: the answer is the first one's (two in
 * flight had the first's ECONFLICT taken for the second, whose applied expansion then left
 * the HW set - an ack the store's ISR did not hold; sim_repl SLUICE_IT_LONG=1 seed 2790). */
TEST(one_isr_write_in_flight)
{
    start(1);
    int32_t isr[] = {0, 1, 2};
    struct sl_repl_meta m = meta_of(0, 1, 7, 3, isr);
    meta_all(&m);
    settle();
    drop_queue();
    tick_all(6000); /* followers silent: shrink to {0} proposed at version 7 */
    CHECK_EQ(nodes[0].meta_writes, 1);
    CHECK_EQ(nodes[0].meta_written.version, 7);
    /* someone else (the controller) wrote version 8 meanwhile: {0,1} */
    int32_t isr01[] = {0, 1};
    struct sl_repl_meta m8 = meta_of(0, 1, 8, 2, isr01);
    sl_repl_on_meta(&nodes[0].r, &m8);
    run_fx(&nodes[0]);
    tick_all(10);
    CHECK_EQ(nodes[0].meta_writes, 1); /* not before the first write is answered */
    sl_repl_meta_done(&nodes[0].r, SL_ECONFLICT);
    run_fx(&nodes[0]);
    CHECK_EQ(nodes[0].meta_writes, 2); /* now: the shrink again, at the version read */
    CHECK_EQ(nodes[0].meta_written.version, 8);
    CHECK_EQ(nodes[0].meta_written.n_isr, 1);
}

TEST(restarted_leader_waits_for_a_new_epoch)
{
    struct sl_repl r;
    struct sl_repl_cfg cfg = {.self = 0, .min_insync = 1, .replica_lag_ms = 5000};
    struct sl_repl_epoch ep[] = {{3, 0}};
    struct sl_repl_recovered rec = {.log_end = 5, .last_led_epoch = 4, .epochs = ep, .n_epochs = 1};
    sl_repl_init(&r, &cfg, &rec, 0);
    int32_t isr[] = {0, 1};
    struct sl_repl_meta m = meta_of(0, 4, 3, 2, isr);
    sl_repl_on_meta(&r, &m);
    CHECK_EQ(r.role, SL_REPL_IDLE); /* it led epoch 4 and may have lost its tail */
    sl_repl_fx_clear(&r);
    m.leader_epoch = 5;
    m.version = 4;
    sl_repl_on_meta(&r, &m);
    CHECK_EQ(r.role, SL_REPL_LEADER);
}

TEST(fsync_failure_is_fatal)
{
    start(1);
    int32_t isr[] = {0};
    struct sl_repl_meta m = meta_of(0, 1, 1, 1, isr);
    meta_all(&m);
    disk_all(&nodes[0]);
    CHECK_EQ(append(&nodes[0], 2), SL_OK);
    sl_repl_disk_done(&nodes[0].r, SL_EIO);
    nodes[0].disk_pending--;
    run_fx(&nodes[0]);
    CHECK(nodes[0].fatal);
    CHECK_EQ(nodes[0].ack_err, SL_EFATAL);
    CHECK_EQ(append(&nodes[0], 1), SL_EFATAL);
}

/* Cut from the store: a leader whose followers still fetch goes on acknowledging (the
 * whole store may be down); one whose followers fell silent answers its pending appends
 * NOT_LEADER and takes no more; a read of its unchanged state re-confirms it. */
TEST(leader_cut_off_answers_pending_appends)
{
    start(2);
    int32_t isr[] = {0, 1, 2};
    struct sl_repl_meta m = meta_of(0, 1, 1, 3, isr);
    meta_all(&m);
    disk_all(&nodes[0]);
    settle();
    CHECK_EQ(append(&nodes[0], 2), SL_OK);
    settle();
    CHECK_EQ(nodes[0].acked_end, 2);
    /* followers fetching: not cut off */
    CHECK(!sl_repl_cut(&nodes[0].r, 1000));
    CHECK_EQ(append(&nodes[0], 1), SL_OK);
    disk_all(&nodes[0]);
    drop_queue(); /* the followers hear nothing more, and say nothing */
    now += 1500;
    sl_repl_tick(&nodes[0].r, now);
    run_fx(&nodes[0]);
    CHECK(sl_repl_cut(&nodes[0].r, 1000));
    run_fx(&nodes[0]);
    CHECK_EQ(nodes[0].acked_end, 3);
    CHECK_EQ(nodes[0].ack_err, SL_ENOT_LEADER);
    CHECK_EQ(append(&nodes[0], 1), SL_ENOT_LEADER);
    CHECK(!sl_repl_cut(&nodes[1].r, 1000)); /* followers are never cut off */
    /* the store answers again, the state unchanged: leading again in the same epoch */
    sl_repl_on_meta(&nodes[0].r, &m);
    run_fx(&nodes[0]);
    CHECK_EQ(append(&nodes[0], 1), SL_OK);
}

/* Leader 0 with follower 1 in the ISR writes 10 records; retention then trims its log to
 * start at 6; replica 2, empty, joins: its fetch at 0 is answered ETRIMMED with the start,
 * it resets to 6 and copies 6..10, and the leader takes it into the ISR. */
TEST(follower_behind_the_leaders_log_start_resets)
{
    start(2);
    int32_t isr[] = {0, 1};
    struct sl_repl_meta m = meta_of(0, 1, 1, 2, isr);
    for (int i = 0; i < 2; i++) {
        sl_repl_on_meta(&nodes[i].r, &m);
        run_fx(&nodes[i]);
    }
    settle();
    for (int i = 0; i < 5; i++) {
        CHECK_EQ(append(&nodes[0], 2), SL_OK);
        settle();
    }
    CHECK_EQ(sl_repl_hw(&nodes[0].r), 10);
    sl_repl_set_log_start(&nodes[0].r, 11); /* past the durable end: ignored */
    CHECK_EQ(nodes[0].r.log_start, 0);
    sl_repl_set_log_start(&nodes[0].r, 6);
    CHECK_EQ(nodes[0].r.log_start, 6);
    sl_repl_set_log_start(&nodes[0].r, 4); /* never back */
    CHECK_EQ(nodes[0].r.log_start, 6);
    /* a fetch below the start, from a non-empty log too: ETRIMMED, not an ack */
    struct sl_repl_msg f = {.type = SL_REPL_MSG_FETCH,
                            .from = 2,
                            .to = 0,
                            .leader_epoch = 1,
                            .req_id = 3,
                            .offset = 4,
                            .epoch = 1};
    sl_repl_on_msg(&nodes[0].r, &f);
    run_fx(&nodes[0]);
    CHECK_EQ(q_n, 1);
    CHECK_EQ(queue[q_head].err, SL_ETRIMMED);
    CHECK_EQ(queue[q_head].log_start, 6);
    CHECK_EQ(queue[q_head].n_batches, 0);
    CHECK_EQ(nodes[0].r.peers[1].ack, -1);
    drop_queue();
    /* replica 2 follows: reset, then copies from 6 */
    sl_repl_on_meta(&nodes[2].r, &m);
    run_fx(&nodes[2]);
    settle();
    CHECK_EQ(nodes[2].resets, 1);
    CHECK_EQ(nodes[2].r.log_start, 6);
    CHECK_EQ(nodes[2].r.leo, 10);
    CHECK_EQ(nodes[2].log_end, 10);
    CHECK_EQ(nodes[2].r.n_epochs, 1);
    CHECK_EQ(nodes[2].r.epochs[0].epoch, 1);
    CHECK_EQ(nodes[2].r.epochs[0].start_offset, 6);
    CHECK_EQ(sl_repl_hw(&nodes[2].r), 10);
    CHECK_EQ(nodes[1].resets, 0); /* at the start or past it: untouched */
    /* the leader wrote an ISR with replica 2 in it */
    CHECK_EQ(nodes[0].meta_writes, 1);
    CHECK_EQ(nodes[0].meta_written.n_isr, 3);
    /* more records reach it as any follower */
    CHECK_EQ(append(&nodes[0], 3), SL_OK);
    settle();
    CHECK_EQ(nodes[2].r.leo, 13);
    CHECK_EQ(nodes[2].log_epoch[12], 1);
}

/* A replica restarted on an empty log starting at 8 (a reset before the restart, whose
 * epoch file still lists older epochs): it has no last epoch, so nothing to ask; it fetches
 * from 8 with none, which the leader takes (an empty log claims nothing), and asking where
 * an epoch ended never cuts below its start. */
TEST(empty_log_past_zero_fetches_without_an_epoch)
{
    start(1);
    int32_t isr[] = {0, 1};
    struct sl_repl_meta m = meta_of(0, 2, 1, 2, isr);
    for (int i = 0; i < 2; i++) {
        sl_repl_on_meta(&nodes[i].r, &m);
        run_fx(&nodes[i]);
    }
    settle();
    for (int i = 0; i < 6; i++) {
        CHECK_EQ(append(&nodes[0], 2), SL_OK);
        settle();
    }
    CHECK_EQ(sl_repl_hw(&nodes[0].r), 12);
    struct sl_repl_cfg cfg = {.self = 2, .min_insync = 1, .replica_lag_ms = 5000};
    /* (the epoch file as saved before the reset, which a crash then finished) */
    struct sl_repl_epoch stale[] = {{1, 0}, {2, 5}};
    struct sl_repl_recovered rec = {.log_start = 8,
                                    .log_end = 8,
                                    .last_led_epoch = SL_REPL_NONE,
                                    .epochs = stale,
                                    .n_epochs = 2};
    memset(&nodes[2], 0, sizeof nodes[2]);
    sl_repl_init(&nodes[2].r, &cfg, &rec, now);
    nodes[2].log_start = nodes[2].log_end = 8;
    sl_repl_on_meta(&nodes[2].r, &m);
    run_fx(&nodes[2]);
    CHECK_EQ(nodes[2].r.truncating, false); /* an empty log cannot diverge */
    settle();
    CHECK_EQ(nodes[2].resets, 0);
    CHECK_EQ(nodes[2].r.leo, 12);
    CHECK_EQ(nodes[2].r.log_start, 8);
    CHECK_EQ(nodes[0].r.peers[1].ack, 12);
    /* an answer saying epoch 0 ends at 3 here: the cut stops at the log's start (empty) */
    CHECK_EQ(nodes[2].r.epochs[nodes[2].r.n_epochs - 1].epoch, 2);
    nodes[2].r.truncating = true;
    nodes[2].r.req_out = true;
    nodes[2].r.req_epoch = 2;
    uint64_t id = nodes[2].r.req_id;
    struct sl_repl_msg a = {.type = SL_REPL_MSG_EPOCH_RESP,
                            .from = 0,
                            .to = 2,
                            .leader_epoch = 2,
                            .req_id = id,
                            .epoch = 0,
                            .end_offset = 3};
    drop_queue();
    sl_repl_on_msg(&nodes[2].r, &a);
    run_fx(&nodes[2]);
    CHECK_EQ(nodes[2].r.leo, 8);
    CHECK_EQ(nodes[2].log_end, 8);
    CHECK_EQ(nodes[2].r.truncating, false); /* empty: nothing more to ask */
    settle();
    CHECK_EQ(nodes[2].r.leo, 12); /* fetched again from its start */
}

int main(void)
{
    RUN(epoch_end_answers);
    RUN(ack_waits_for_every_isr_member);
    RUN(resigning_leader_fails_pending_appends);
    RUN(not_enough_replicas_refused);
    RUN(stale_epoch_fenced_newer_refreshes);
    RUN(follower_truncates_to_leader_epoch_end);
    RUN(diverging_fetch_answered_with_epoch_end);
    RUN(isr_shrink_written_then_acted_on);
    RUN(replicas_change_within_an_epoch);
    RUN(one_isr_write_in_flight);
    RUN(restarted_leader_waits_for_a_new_epoch);
    RUN(fsync_failure_is_fatal);
    RUN(leader_cut_off_answers_pending_appends);
    RUN(follower_behind_the_leaders_log_start_resets);
    RUN(empty_log_past_zero_fetches_without_an_epoch);
    TEST_END();
}
