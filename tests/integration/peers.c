/* peers.c - this broker's requests to other brokers (broker/native/peer.c, #14) against the
 * real sluiced: a replication message sent through a peer link reaches the broker and its
 * answer (today UNSUPPORTED: no replicas serve it yet) comes back on the caller's loop with
 * the broker's reason; a peer nobody listens at fails each message with "cannot reach"; a
 * peer's queue is bounded (SL_ELIMIT past SL_PEER_QUEUE_MAX); the link reconnects after the
 * broker is killed and restarted; a message that is not a request is refused; closing with
 * messages stuck (a peer that accepts the connection and never answers) fails them all with
 * SL_ECLOSED, every callback exactly once.
 */
#include "../unit/test.h"
#include "harness.h"

#include "broker/native/peer.h"
#include "common/error.h"
#include "common/ring.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static struct it_broker broker;
static struct sl_ring ring;
static struct sl_peers *peers;

struct outcome {
    int calls;
    int err;
    char why[256];
};

static void on_done(void *ctx, int err, const char *why, const struct sl_repl_msg *answer)
{
    struct outcome *o = ctx;
    o->calls++;
    o->err = err;
    snprintf(o->why, sizeof(o->why), "%s", why);
    (void)answer;
}

static const struct sl_repl_msg fetch = {.type = SL_REPL_MSG_FETCH, .to = 1, .leader_epoch = 1,
                                         .req_id = 5, .offset = 0, .epoch = -1,
                                         .end_offset = -1};

/* Runs the loop until every outcome in o[0..n) has its call, or 20 s. */
static void wait_all(struct outcome *o, int n)
{
    uint64_t deadline = it_mono_ms() + 20000u * IT_SLOWDOWN;
    for (;;) {
        int done = 0;
        for (int i = 0; i < n; i++) {
            done += o[i].calls > 0;
        }
        if (done == n || it_mono_ms() > deadline) {
            return;
        }
        sl_ring_run(&ring, 1, 10u * 1000 * 1000);
    }
}

TEST(a_message_reaches_the_broker_and_its_answer_comes_back)
{
    struct outcome o = {0};
    CHECK_EQ(sl_peers_send(peers, broker.addr, "p", 0, &fetch, 0, on_done, &o), SL_OK);
    CHECK_EQ(o.calls, 0); /* never inside the send */
    wait_all(&o, 1);
    CHECK_EQ(o.calls, 1);
    CHECK_EQ(o.err, SL_EUNSUPPORTED);
    CHECK(strstr(o.why, "--cluster") != NULL);
    /* not a request */
    struct sl_repl_msg resp = fetch;
    resp.type = SL_REPL_MSG_FETCH_RESP;
    CHECK_EQ(sl_peers_send(peers, broker.addr, "p", 0, &resp, 0, on_done, &o), SL_EINVAL);
}

TEST(an_unreachable_peer_fails_each_message_and_the_queue_is_bounded)
{
    char dead[32];
    snprintf(dead, sizeof(dead), "127.0.0.1:%u", it_free_port());
    static struct outcome o[SL_PEER_QUEUE_MAX];
    memset(o, 0, sizeof(o));
    struct sl_repl_msg m = fetch;
    m.to = 2;
    for (uint32_t i = 0; i < SL_PEER_QUEUE_MAX; i++) {
        CHECK_EQ(sl_peers_send(peers, dead, "p", 0, &m, 0, on_done, &o[i]), SL_OK);
    }
    struct outcome extra = {0};
    CHECK_EQ(sl_peers_send(peers, dead, "p", 0, &m, 0, on_done, &extra), SL_ELIMIT);
    wait_all(o, (int)SL_PEER_QUEUE_MAX);
    for (uint32_t i = 0; i < SL_PEER_QUEUE_MAX; i++) {
        CHECK_EQ(o[i].calls, 1);
        CHECK_EQ(o[i].err, SL_ECLOSED);
    }
    CHECK(strstr(o[0].why, "cannot reach broker 2") != NULL);
    CHECK_EQ(extra.calls, 0);
    /* room again */
    CHECK_EQ(sl_peers_send(peers, dead, "p", 0, &m, 0, on_done, &extra), SL_OK);
    wait_all(&extra, 1);
    CHECK_EQ(extra.calls, 1);
}

TEST(the_link_reconnects_after_the_broker_restarts)
{
    CHECK_EQ(it_broker_kill9(&broker), 0);
    struct outcome down = {0};
    CHECK_EQ(sl_peers_send(peers, broker.addr, "p", 0, &fetch, 0, on_done, &down), SL_OK);
    wait_all(&down, 1);
    CHECK_EQ(down.calls, 1);
    CHECK(down.err != SL_OK);
    CHECK_EQ(it_broker_restart(&broker), 0);
    struct outcome up = {0};
    uint64_t deadline = it_mono_ms() + 20000u * IT_SLOWDOWN;
    do { /* (libsluice's reconnect backs off: a few tries) */
        memset(&up, 0, sizeof(up));
        CHECK_EQ(sl_peers_send(peers, broker.addr, "p", 0, &fetch, 0, on_done, &up), SL_OK);
        wait_all(&up, 1);
    } while (up.err != SL_EUNSUPPORTED && it_mono_ms() < deadline);
    CHECK_EQ(up.err, SL_EUNSUPPORTED);
}

TEST(closing_fails_stuck_messages_once_each)
{
    /* a peer that takes the connection and never says a word */
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(l >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CHECK_EQ(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
    CHECK_EQ(listen(l, 16), 0);
    socklen_t al = sizeof(a);
    CHECK_EQ(getsockname(l, (struct sockaddr *)&a, &al), 0);
    char mute[32];
    snprintf(mute, sizeof(mute), "127.0.0.1:%u", ntohs(a.sin_port));
    struct outcome o[4] = {{0}};
    struct sl_repl_msg m = fetch;
    m.to = 3;
    for (int i = 0; i < 4; i++) {
        CHECK_EQ(sl_peers_send(peers, mute, "p", 0, &m, 0, on_done, &o[i]), SL_OK);
    }
    sl_ring_run(&ring, 0, 0);
    sl_peers_close(peers);
    peers = NULL;
    for (int i = 0; i < 4; i++) {
        CHECK_EQ(o[i].calls, 1);
        CHECK(o[i].err != SL_OK);
    }
    close(l);
}

int main(void)
{
    int pf = it_preflight();
    if (pf != 0) {
        return pf;
    }
    if (sl_ring_init(&ring, 64) != SL_OK) {
        return 1;
    }
    struct sl_peers_config cfg = {.self = 7, .connect_timeout_ms = 1000};
    if (it_broker_start(&broker, NULL) != 0 || sl_peers_open(&ring, &cfg, &peers) != SL_OK) {
        it_broker_cleanup(&broker);
        return 1;
    }
    RUN(a_message_reaches_the_broker_and_its_answer_comes_back);
    RUN(an_unreachable_peer_fails_each_message_and_the_queue_is_bounded);
    RUN(the_link_reconnects_after_the_broker_restarts);
    RUN(closing_fails_stuck_messages_once_each);
    sl_peers_close(peers);
    sl_ring_fini(&ring);
    int stop = it_broker_stop(&broker);
    it_broker_cleanup(&broker);
    if (stop != 0) {
        fprintf(stderr, "the broker did not stop cleanly\n");
        return 1;
    }
    TEST_END();
}
