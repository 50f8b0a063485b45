/* test_controller.c - unit tests for broker/cluster/controller_state.c (pure parts of the
 * controller): the shard state's encoding (round trip, refusals), sl_ctrl_decide (a dead
 * leader replaced from the ISR only with epoch + 1, dead followers dropped, a restarted
 * leader re-elected, offline without an ISR member, unclean election only when asked), a
 * reassignment's start, switch and cancel (sl_ctrl_move_cancel: back to the old set, an
 * added leader replaced with a new epoch, refused without an old replica in sync) and
 * sl_ctrl_place (distinct replicas, leaders spread evenly). The election, the fencing and
 * the batching run against the store model in tests/sim (sim_repl --failover).
 */
#include "broker/cluster/controller.h"
#include "common/error.h"

#include "tests/unit/test.h"

static struct sl_ctrl_state state(int32_t leader, int32_t epoch, int64_t session,
                                  const int32_t *isr, uint32_t n_isr)
{
    struct sl_ctrl_state s = {.m = {.leader = leader,
                                    .leader_epoch = epoch,
                                    .n_isr = n_isr,
                                    .n_replicas = 3,
                                    .replicas = {1, 2, 3}},
                              .leader_session = session};
    for (uint32_t i = 0; i < n_isr; i++) {
        s.m.isr[i] = isr[i];
    }
    return s;
}

TEST(state_round_trip_and_refusals)
{
    int32_t isr[] = {1, 2, 3};
    struct sl_ctrl_state s = state(2, 9, 0x1a2b, isr, 3), back;
    char buf[SL_CTRL_STATE_MAX];
    size_t len = sl_ctrl_state_encode(&s, buf, sizeof buf);
    CHECK(len == strlen("leader=2 epoch=9 session=1a2b isr=1,2,3 replicas=1,2,3"));
    CHECK(memcmp(buf, "leader=2 epoch=9 session=1a2b isr=1,2,3 replicas=1,2,3", len) == 0);
    CHECK_EQ(sl_ctrl_state_decode((const uint8_t *)buf, len, &back), SL_OK);
    CHECK_EQ(back.m.leader, 2);
    CHECK_EQ(back.m.leader_epoch, 9);
    CHECK_EQ(back.leader_session, 0x1a2b);
    CHECK_EQ(back.m.n_isr, 3);
    CHECK_EQ(back.m.replicas[2], 3);
    static const char *const bad[] = {
        "",
        "leader=2 epoch=9 session=1a2b isr=1,2,3 replicas=1,2,3 ",
        "leader=2 epoch=-9 session=1a2b isr=1 replicas=1",
        "leader=-2 epoch=9 session=1a2b isr=1 replicas=1",
        "leader=2 epoch=9 session=1a2b isr= replicas=1",
        "leader=2 epoch=9 session=1a2b isr=1,2,3,4,5,6,7,8 replicas=1",
        "leader=2 epoch=99999999999 session=1 isr=1 replicas=1",
        "leader=2 epoch=9 session=1A isr=1 replicas=1",
        "leader=2 epoch=9 session=1 isr=1,,2 replicas=1",
        "leader=2 epoch=9 session=1 isr=2,2 replicas=1,2",     /* an id twice */
        "leader=2 epoch=9 session=1 isr=2 replicas=1,2,1",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_EQ(sl_ctrl_state_decode((const uint8_t *)bad[i], strlen(bad[i]), &back), SL_EPROTO);
    }
}

TEST(dead_leader_replaced_from_isr)
{
    int32_t isr[] = {1, 2, 3};
    struct sl_ctrl_state cur = state(1, 4, 11, isr, 3), next;
    int32_t live[] = {2, 3};
    int64_t sess[] = {12, 13};
    CHECK(sl_ctrl_decide(&cur, live, sess, 2, false, &next));
    CHECK_EQ(next.m.leader, 2);
    CHECK_EQ(next.m.leader_epoch, 5);
    CHECK_EQ(next.leader_session, 12);
    CHECK_EQ(next.m.n_isr, 2);
    /* nothing to do once written */
    CHECK(!sl_ctrl_decide(&next, live, sess, 2, false, &cur));
}

TEST(dead_follower_leaves_isr_same_epoch)
{
    int32_t isr[] = {1, 2, 3};
    struct sl_ctrl_state cur = state(1, 4, 11, isr, 3), next;
    int32_t live[] = {1, 3};
    int64_t sess[] = {11, 13};
    CHECK(sl_ctrl_decide(&cur, live, sess, 2, false, &next));
    CHECK_EQ(next.m.leader, 1);
    CHECK_EQ(next.m.leader_epoch, 4);
    CHECK_EQ(next.m.n_isr, 2);
    CHECK_EQ(next.m.isr[1], 3);
}

TEST(restarted_leader_gets_a_new_epoch)
{
    int32_t isr[] = {1, 2, 3};
    struct sl_ctrl_state cur = state(1, 4, 11, isr, 3), next;
    int32_t live[] = {1, 2, 3};
    int64_t sess[] = {21, 12, 13}; /* broker 1 is back with a new session */
    CHECK(sl_ctrl_decide(&cur, live, sess, 3, false, &next));
    CHECK_EQ(next.m.leader, 1); /* preferred and in the ISR: elected again */
    CHECK_EQ(next.m.leader_epoch, 5);
    CHECK_EQ(next.leader_session, 21);
}

TEST(offline_without_isr_member_unless_unclean)
{
    int32_t isr[] = {1};
    struct sl_ctrl_state cur = state(1, 4, 11, isr, 1), next;
    int32_t live[] = {2, 3};
    int64_t sess[] = {12, 13};
    CHECK(sl_ctrl_decide(&cur, live, sess, 2, false, &next));
    CHECK_EQ(next.m.leader, SL_REPL_NONE);
    CHECK_EQ(next.m.leader_epoch, 5); /* the old leader is fenced */
    CHECK_EQ(next.m.n_isr, 1);
    CHECK_EQ(next.m.isr[0], 1); /* kept: it is elected when it returns */
    struct sl_ctrl_state again;
    CHECK(!sl_ctrl_decide(&next, live, sess, 2, false, &again));
    int32_t back[] = {1, 2, 3};
    int64_t sess3[] = {31, 12, 13};
    CHECK(sl_ctrl_decide(&next, back, sess3, 3, false, &again));
    CHECK_EQ(again.m.leader, 1);
    CHECK_EQ(again.m.leader_epoch, 6);
    CHECK(sl_ctrl_decide(&cur, live, sess, 2, true, &next));
    CHECK_EQ(next.m.leader, 2); /* unclean: a live out-of-sync replica */
    CHECK_EQ(next.m.n_isr, 1);
    CHECK_EQ(next.m.isr[0], 2);
}

TEST(placement_spreads_leaders)
{
    int32_t brokers[] = {1, 4, 6, 9, 12};
    uint32_t leaders[13] = {0};
    for (uint32_t k = 0; k < 1000; k++) {
        int32_t out[3];
        sl_ctrl_place(brokers, 5, 3, 77, k, out);
        CHECK(out[0] != out[1] && out[1] != out[2] && out[0] != out[2]);
        leaders[out[0]]++;
    }
    for (int i = 0; i < 5; i++) {
        CHECK_EQ(leaders[brokers[i]], 200);
    }
    int32_t out[3];
    sl_ctrl_place(brokers, 3, 3, 5, 1, out); /* rf == brokers: all of them */
    CHECK(out[0] != out[1] && out[1] != out[2] && out[0] != out[2]);
}

TEST(move_state_round_trip)
{
    int32_t isr[] = {1, 2, 3};
    struct sl_ctrl_state s = state(1, 4, 0x10, isr, 3), back;
    s.n_target = 3;
    s.target[0] = 1;
    s.target[1] = 2;
    s.target[2] = 4;
    char buf[SL_CTRL_STATE_MAX];
    size_t len = sl_ctrl_state_encode(&s, buf, sizeof buf);
    static const char want[] =
        "leader=1 epoch=4 session=10 isr=1,2,3 replicas=1,2,3 target=1,2,4 adding=";
    CHECK(len == strlen(want) && memcmp(buf, want, len) == 0);
    CHECK_EQ(sl_ctrl_state_decode((const uint8_t *)buf, len, &back), SL_OK);
    CHECK_EQ(back.n_target, 3);
    CHECK_EQ(back.target[2], 4);
    CHECK(back.n_adding == 0 && !back.adding_unknown);
    /* the adding field: the tail of the replicas, in the target */
    static const char adding[] =
        "leader=1 epoch=4 session=10 isr=1,2,3 replicas=1,2,3,4,5 target=1,4,5 adding=4,5";
    CHECK_EQ(sl_ctrl_state_decode((const uint8_t *)adding, strlen(adding), &back), SL_OK);
    CHECK(back.n_adding == 2 && !back.adding_unknown);
    len = sl_ctrl_state_encode(&back, buf, sizeof buf);
    CHECK(len == strlen(adding) && memcmp(buf, adding, len) == 0);
    /* written before the field: a move whose added replicas are not known, kept so */
    static const char old[] = "leader=1 epoch=4 session=10 isr=1,2,3 replicas=1,2,3,4 target=2,3,4";
    CHECK_EQ(sl_ctrl_state_decode((const uint8_t *)old, strlen(old), &back), SL_OK);
    CHECK(back.adding_unknown && back.n_adding == 0);
    len = sl_ctrl_state_encode(&back, buf, sizeof buf);
    CHECK(len == strlen(old) && memcmp(buf, old, len) == 0);
    static const char *const bad[] = {
        "leader=1 epoch=4 session=10 isr=1 replicas=1,4 target=1,4 adding=1",    /* not the tail */
        "leader=1 epoch=4 session=10 isr=1 replicas=1,4 target=1,4 adding=1,4",  /* all of them */
        "leader=1 epoch=4 session=10 isr=1 replicas=1,4,5 target=1,4 adding=4,5", /* 5: no target */
        "leader=1 epoch=4 session=10 isr=1 replicas=1,4,5 target=1,4,5 adding=5,4", /* order */
        "leader=1 epoch=4 session=10 isr=1 replicas=1,4 target=1,4 adding=4 ",
        "leader=1 epoch=4 session=10 isr=1 replicas=1,4 adding=4",               /* no move */
        "leader=1 epoch=2147483647 session=10 isr=1 replicas=1",                 /* epoch + 1 */
        "leader=1 epoch=4 session=10 isr=1 replicas=1 target=",
        "leader=1 epoch=4 session=10 isr=1 replicas=1 target=1,",
        "leader=1 epoch=4 session=10 isr=1 replicas=1 targets=1",
        "leader=1 epoch=4 session=10 isr=1 replicas=1 target=1 ",
        "leader=1 epoch=4 session=10 isr=1 replicas=1 target=1,2,3,4,5,6,7,8",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_EQ(sl_ctrl_state_decode((const uint8_t *)bad[i], strlen(bad[i]), &back), SL_EPROTO);
    }
    /* a request node's data */
    int32_t ids[SL_REPL_REPLICAS_MAX];
    uint32_t n = 0;
    bool cancel = true;
    CHECK_EQ(sl_ctrl_move_parse((const uint8_t *)"1,2,4", 5, ids, &n, &cancel), SL_OK);
    CHECK(n == 3 && ids[0] == 1 && ids[1] == 2 && ids[2] == 4 && !cancel);
    CHECK_EQ(sl_ctrl_move_parse((const uint8_t *)"cancel", 6, ids, &n, &cancel), SL_OK);
    CHECK(n == 0 && cancel);
    static const char *const bad_req[] = {"",   "1,",  ",1", "1,,2", "-1", "1 2", "1,2,3,4,5,6,7,8",
                                          "99999999999", "cancel ", "cance", "cancel1"};
    for (size_t i = 0; i < sizeof bad_req / sizeof bad_req[0]; i++) {
        CHECK_EQ(sl_ctrl_move_parse((const uint8_t *)bad_req[i], strlen(bad_req[i]), ids, &n,
                                    &cancel),
                 SL_EPROTO);
    }
}

/* 1,2,3 led by 1 moves to 2,3,4 (the leader leaves): replicas grow to 1,2,3,4 with nothing
 * elected; no switch until 4 is in the ISR; then replicas 2,3,4, ISR without 1, leader 2 with
 * a new epoch. */
TEST(move_adds_then_switches)
{
    int32_t isr[] = {1, 2, 3}, live[] = {1, 2, 3, 4}, target[] = {2, 3, 4};
    int64_t sess[] = {11, 12, 13, 14};
    struct sl_ctrl_state cur = state(1, 4, 11, isr, 3), next, after;
    char why[256];
    CHECK_EQ(sl_ctrl_move_start(&cur, target, 3, &next, why, sizeof why), SL_OK);
    CHECK_EQ(next.m.n_replicas, 4);
    CHECK_EQ(next.m.replicas[3], 4);
    CHECK_EQ(next.m.leader, 1);
    CHECK_EQ(next.m.leader_epoch, 4);
    CHECK_EQ(next.m.n_isr, 3);
    CHECK_EQ(sl_ctrl_move_start(&next, target, 3, &after, why, sizeof why), SL_EEXIST);
    int32_t other[] = {1, 2, 4};
    CHECK_EQ(sl_ctrl_move_start(&next, other, 3, &after, why, sizeof why), SL_ECONFLICT);
    /* still copying: nothing to write */
    CHECK(!sl_ctrl_decide(&next, live, sess, 4, false, &after));
    /* 4 joined the ISR (the leader's write) */
    next.m.isr[next.m.n_isr++] = 4;
    CHECK(sl_ctrl_decide(&next, live, sess, 4, false, &after));
    CHECK_EQ(after.n_target, 0);
    CHECK_EQ(after.m.n_replicas, 3);
    CHECK(after.m.replicas[0] == 2 && after.m.replicas[1] == 3 && after.m.replicas[2] == 4);
    CHECK_EQ(after.m.n_isr, 3);
    for (uint32_t i = 0; i < after.m.n_isr; i++) {
        CHECK(after.m.isr[i] != 1);
    }
    CHECK_EQ(after.m.leader, 2);
    CHECK_EQ(after.m.leader_epoch, 5);
    CHECK_EQ(after.leader_session, 12);
    CHECK(!sl_ctrl_decide(&after, live, sess, 4, false, &next));
}

/* The leader stays in the target: no election at the switch (same epoch). A dead target
 * member holds the move (it is not in the ISR). */
TEST(move_keeps_leader_and_waits_for_dead_member)
{
    int32_t isr[] = {1, 2, 3}, target[] = {1, 2, 4}, live[] = {1, 2, 3, 4};
    int64_t sess[] = {11, 12, 13, 14};
    struct sl_ctrl_state cur = state(1, 4, 11, isr, 3), next, after;
    char why[256];
    CHECK_EQ(sl_ctrl_move_start(&cur, target, 3, &next, why, sizeof why), SL_OK);
    /* 4 dies before it caught up: nothing switches */
    CHECK(!sl_ctrl_decide(&next, live, sess, 3, false, &after));
    next.m.isr[next.m.n_isr++] = 4;
    CHECK(sl_ctrl_decide(&next, live, sess, 4, false, &after));
    CHECK_EQ(after.m.leader, 1);
    CHECK_EQ(after.m.leader_epoch, 4);
    CHECK(after.m.replicas[0] == 1 && after.m.replicas[1] == 2 && after.m.replicas[2] == 4);
    CHECK_EQ(after.m.n_isr, 3);
    /* too many replicas together, duplicates, empty */
    int32_t seven[] = {4, 5, 6, 7, 8}, dup[] = {1, 1};
    CHECK_EQ(sl_ctrl_move_start(&cur, seven, 5, &next, why, sizeof why), SL_EINVAL);
    CHECK_EQ(sl_ctrl_move_start(&cur, dup, 2, &next, why, sizeof why), SL_EINVAL);
    CHECK_EQ(sl_ctrl_move_start(&cur, dup, 0, &next, why, sizeof why), SL_EINVAL);
}

/* A move of 1,2,3 (led by 1) to 2,3,4 cancelled while 4 copies: back to 1,2,3 in its order,
 * 4 out of the ISR it had joined, the leader and its epoch kept (nothing elected), the state
 * no longer moving; a second cancel finds nothing to cancel. */
TEST(cancel_returns_to_the_old_set_same_leader)
{
    int32_t isr[] = {1, 2, 3}, live[] = {1, 2, 3, 4}, target[] = {2, 3, 4};
    int64_t sess[] = {11, 12, 13, 14};
    struct sl_ctrl_state cur = state(1, 4, 11, isr, 3), moving, next, again;
    char why[256];
    CHECK_EQ(sl_ctrl_move_start(&cur, target, 3, &moving, why, sizeof why), SL_OK);
    CHECK(moving.n_adding == 1 && moving.m.replicas[3] == 4);
    moving.m.isr[moving.m.n_isr++] = 4; /* (caught up: cancelled all the same) */
    CHECK_EQ(sl_ctrl_move_cancel(&moving, live, sess, 4, &next, why, sizeof why), SL_OK);
    CHECK_EQ(next.n_target, 0);
    CHECK_EQ(next.n_adding, 0);
    CHECK_EQ(next.m.n_replicas, 3);
    CHECK(next.m.replicas[0] == 1 && next.m.replicas[1] == 2 && next.m.replicas[2] == 3);
    CHECK_EQ(next.m.n_isr, 3);
    for (uint32_t i = 0; i < next.m.n_isr; i++) {
        CHECK(next.m.isr[i] != 4);
    }
    CHECK_EQ(next.m.leader, 1);
    CHECK_EQ(next.m.leader_epoch, 4);
    CHECK_EQ(next.leader_session, 11);
    char buf[SL_CTRL_STATE_MAX];
    size_t len = sl_ctrl_state_encode(&next, buf, sizeof buf);
    static const char want[] = "leader=1 epoch=4 session=b isr=1,2,3 replicas=1,2,3";
    CHECK(len == strlen(want) && memcmp(buf, want, len) == 0);
    CHECK(!sl_ctrl_decide(&next, live, sess, 4, false, &again)); /* nothing left to do */
    CHECK_EQ(sl_ctrl_move_cancel(&next, live, sess, 4, &again, why, sizeof why), SL_ENOTFOUND);
    CHECK(strstr(why, "nothing to cancel") != NULL);
    /* a move that adds nothing (2,3 of 1,2,3): the same replicas, the target gone */
    int32_t fewer[] = {2, 3};
    CHECK_EQ(sl_ctrl_move_start(&cur, fewer, 2, &moving, why, sizeof why), SL_OK);
    CHECK_EQ(moving.n_adding, 0);
    CHECK_EQ(sl_ctrl_move_cancel(&moving, live, sess, 4, &next, why, sizeof why), SL_OK);
    CHECK(next.n_target == 0 && next.m.n_replicas == 3 && next.m.leader_epoch == 4);
}

/* The old leader died mid-move and an added replica (4) was elected: cancelling elects the
 * first live old replica in the ISR with a new epoch and its session; a dead one is passed
 * over. */
TEST(cancel_replaces_an_added_leader_with_a_new_epoch)
{
    int32_t isr[] = {1, 2, 3}, target[] = {4, 2, 3};
    int32_t live[] = {2, 3, 4}; /* 1 is dead */
    int64_t sess[] = {12, 13, 14};
    struct sl_ctrl_state cur = state(1, 4, 11, isr, 3), moving, next;
    char why[256];
    CHECK_EQ(sl_ctrl_move_start(&cur, target, 3, &moving, why, sizeof why), SL_OK);
    moving.m.isr[moving.m.n_isr++] = 4;
    /* what the election did (1 dead: out of the ISR; 4 elected as if it came first) */
    moving.m.leader = 4;
    moving.m.leader_epoch = 5;
    moving.leader_session = 14;
    moving.m.n_isr = 3;
    moving.m.isr[0] = 4;
    moving.m.isr[1] = 2;
    moving.m.isr[2] = 3;
    CHECK_EQ(sl_ctrl_move_cancel(&moving, live, sess, 3, &next, why, sizeof why), SL_OK);
    CHECK_EQ(next.m.leader, 2);
    CHECK_EQ(next.m.leader_epoch, 6);
    CHECK_EQ(next.leader_session, 12);
    CHECK_EQ(next.m.n_replicas, 3);
    CHECK(next.m.replicas[0] == 1 && next.m.replicas[2] == 3);
    CHECK_EQ(next.m.n_isr, 2);
    CHECK(next.m.isr[0] == 2 && next.m.isr[1] == 3);
    /* the old leader alive again but in a new session (restarted): elected, not kept */
    int32_t live2[] = {1, 2, 3, 4};
    int64_t sess2[] = {21, 12, 13, 14};
    moving.m.leader = 1;
    moving.leader_session = 11;
    moving.m.isr[0] = 1;
    CHECK_EQ(sl_ctrl_move_cancel(&moving, live2, sess2, 4, &next, why, sizeof why), SL_OK);
    CHECK_EQ(next.m.leader, 1);
    CHECK_EQ(next.m.leader_epoch, 6);
    CHECK_EQ(next.leader_session, 21);
}

/* Refusals: only added replicas in the ISR (the old ones may miss acknowledged records), old
 * ISR members all dead, and a move from a state written before the adding field. */
TEST(cancel_refused_when_only_added_replicas_are_in_sync)
{
    int32_t isr[] = {1, 2, 3}, target[] = {4, 5, 6};
    int32_t live[] = {1, 2, 3, 4, 5, 6};
    int64_t sess[] = {11, 12, 13, 14, 15, 16};
    struct sl_ctrl_state cur = state(1, 4, 11, isr, 3), moving, next;
    char why[256];
    CHECK_EQ(sl_ctrl_move_start(&cur, target, 3, &moving, why, sizeof why), SL_OK);
    CHECK_EQ(moving.n_adding, 3);
    moving.m.leader = 4;
    moving.m.leader_epoch = 5;
    moving.leader_session = 14;
    moving.m.n_isr = 2;
    moving.m.isr[0] = 4;
    moving.m.isr[1] = 5;
    CHECK_EQ(sl_ctrl_move_cancel(&moving, live, sess, 6, &next, why, sizeof why), SL_EINVAL);
    CHECK(strstr(why, "acknowledged records") != NULL && strstr(why, "can go on") != NULL);
    /* 2 in the ISR but dead */
    moving.m.isr[moving.m.n_isr++] = 2;
    int32_t live_no2[] = {1, 3, 4, 5, 6};
    int64_t sess_no2[] = {11, 13, 14, 15, 16};
    CHECK_EQ(sl_ctrl_move_cancel(&moving, live_no2, sess_no2, 5, &next, why, sizeof why),
             SL_EINVAL);
    CHECK(strstr(why, "down") != NULL);
    /* alive: it leads */
    CHECK_EQ(sl_ctrl_move_cancel(&moving, live, sess, 6, &next, why, sizeof why), SL_OK);
    CHECK(next.m.leader == 2 && next.m.leader_epoch == 6 && next.m.n_isr == 1);
    /* a state from before the field */
    static const char old[] = "leader=1 epoch=4 session=b isr=1,2,3 replicas=1,2,3,4 target=2,3,4";
    CHECK_EQ(sl_ctrl_state_decode((const uint8_t *)old, strlen(old), &moving), SL_OK);
    CHECK_EQ(sl_ctrl_move_cancel(&moving, live, sess, 6, &next, why, sizeof why), SL_EINVAL);
    CHECK(strstr(why, "older than cancelling") != NULL);
    /* no epoch left to elect with (nor for sl_ctrl_decide): refused, nothing written */
    CHECK_EQ(sl_ctrl_move_start(&cur, target, 3, &moving, why, sizeof why), SL_OK);
    moving.m.leader = 4;
    moving.m.leader_epoch = SL_CTRL_EPOCH_MAX;
    moving.leader_session = 14;
    CHECK_EQ(sl_ctrl_move_cancel(&moving, live, sess, 6, &next, why, sizeof why), SL_EINVAL);
    moving.leader_session = 99; /* 4 restarted: an election is due, with no epoch for it */
    CHECK(!sl_ctrl_decide(&moving, live, sess, 6, false, &next));
}

int main(void)
{
    RUN(state_round_trip_and_refusals);
    RUN(dead_leader_replaced_from_isr);
    RUN(dead_follower_leaves_isr_same_epoch);
    RUN(restarted_leader_gets_a_new_epoch);
    RUN(offline_without_isr_member_unless_unclean);
    RUN(placement_spreads_leaders);
    RUN(move_state_round_trip);
    RUN(move_adds_then_switches);
    RUN(move_keeps_leader_and_waits_for_dead_member);
    RUN(cancel_returns_to_the_old_set_same_leader);
    RUN(cancel_replaces_an_added_leader_with_a_new_epoch);
    RUN(cancel_refused_when_only_added_replicas_are_in_sync);
    TEST_END();
}
