/* route.c (test) - libsluice routes each shard to the broker the routing table names, and
 * follows a leader that is lost (#14), on two real single brokers standing in for a
 * cluster's: the test gives the client a Metadata answer (sl_client_route_learn, the call a
 * real answer goes through) saying broker B (node 2) leads shard 0 and broker A (node 1,
 * the one connected) leads shard 1.
 *
 * Covers: a producer's batches for shard 0 are stored on B only and those for shard 1 on A
 * only (a connection to B opened for them), and a consumer reads both back from where they
 * are; B killed (kill -9) while the producer sends: the batches to B fail as a broken
 * connection in a cluster, the producer asks A for Metadata (A answers that it leads
 * everything), resends them there with their producer id and sequence and every record is
 * acknowledged, none failed.
 *
 * What this cannot show until brokers replicate: NOT_LEADER from a live follower, the new
 * leader de-duplicating a resend the old one stored (tests/cluster/metadata.c says what to
 * check then).
 */
#include "../unit/test.h"
#include "harness.h"

#include "client/conn.h"
#include "common/error.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#define RECORDS 4000u

static struct it_broker a, b;
static atomic_uint acked, failed;

static void on_delivery(void *ctx, int err, uint32_t shard, uint64_t seq)
{
    (void)ctx;
    (void)shard;
    (void)seq;
    atomic_fetch_add(err == SL_OK ? &acked : &failed, 1);
}

/* Records stored in each shard of `stream` on broker `br`. */
static int stored(const struct it_broker *br, uint64_t out[2])
{
    sluice_client *c = NULL;
    if (it_connect(br, &c) != SL_OK) {
        return -1;
    }
    struct sluice_stream_info *info = NULL;
    int rc = sluice_stream_describe(c, "r", &info);
    for (uint32_t i = 0; rc == SL_OK && i < info->shards_len && i < 2; i++) {
        out[info->shards[i].shard] = info->shards[i].next_seq - info->shards[i].first_seq;
    }
    sluice_stream_info_free(info);
    sluice_client_free(c);
    return rc == SL_OK ? 0 : -1;
}

/* Tells the client: node 1 = A (the connected one), node 2 = B; B leads shard 0. */
static int inject_routes(sluice_client *c)
{
    struct sluice_broker_info bi[2] = {{.node_id = 1, .address = a.addr, .self = 1},
                                       {.node_id = 2, .address = b.addr}};
    struct sluice_shard_route sr[2] = {
        {.shard = 0, .leader = 2, .leader_epoch = 1, .open = 1, .n_replicas = 2,
         .replicas = {2, 1}, .n_isr = 2, .isr = {2, 1}},
        {.shard = 1, .leader = 1, .leader_epoch = 1, .open = 1, .n_replicas = 2,
         .replicas = {1, 2}, .n_isr = 2, .isr = {1, 2}}};
    struct sluice_stream_route st = {.name = "r", .n_shards = 2, .shards = sr};
    struct sluice_metadata m = {.cluster = 1, .node_id = 1, .n_brokers = 2, .brokers = bi,
                                .n_streams = 1, .streams = &st};
    /* `via`: the connection the answer "came" on, A's (any call without a shard goes there) */
    Sluice__V1__ClusterStatus body = SLUICE__V1__CLUSTER_STATUS__INIT;
    sl_request req = SLUICE__V1__REQUEST__INIT;
    req.body_case = SLUICE__V1__REQUEST__BODY_CLUSTER_STATUS;
    req.cluster_status = &body;
    sl_response *resp = NULL;
    struct sl_link *via = NULL;
    int rc = sl_client_call_via(c, &req, &resp, &via);
    sl_response_free(resp);
    return rc == SL_OK ? sl_client_route_learn(c, via, &m) : rc;
}

static int produce_n(sluice_producer *p, uint32_t from, uint32_t n)
{
    for (uint32_t i = from; i < from + n; i++) {
        char key[16];
        int len = snprintf(key, sizeof(key), "k%u", i);
        int rc = sluice_produce(p, key, (size_t)len, key, (size_t)len, NULL, 0, on_delivery, NULL);
        if (rc != SL_OK) {
            return rc;
        }
    }
    return SL_OK;
}

TEST(shards_go_to_their_leader_and_follow_it_when_lost)
{
    CHECK_EQ(it_broker_start(&a, "always"), 0);
    CHECK_EQ(it_broker_start(&b, "always"), 0);
    sluice_client *c = NULL;
    CHECK_EQ(it_connect(&a, &c), SL_OK);
    CHECK_EQ(it_create_stream(c, "r", 2), SL_OK);
    sluice_client *cb = NULL;
    CHECK_EQ(it_connect(&b, &cb), SL_OK);
    CHECK_EQ(it_create_stream(cb, "r", 2), SL_OK);
    sluice_client_free(cb);
    CHECK_EQ(inject_routes(c), SL_OK);

    sluice_producer *p = NULL;
    struct sluice_producer_opts po = {.ack = SLUICE_ACK_DURABLE, .linger_ms = 2};
    CHECK_EQ(sluice_producer_new(c, "r", &po, &p), SL_OK); /* (knows "r": asks no Metadata) */
    CHECK_EQ(produce_n(p, 0, RECORDS), SL_OK);
    CHECK_EQ(sluice_producer_flush(p, 30000), SL_OK);
    CHECK_EQ(atomic_load(&acked), RECORDS);
    uint64_t on_a[2] = {0, 0}, on_b[2] = {0, 0};
    CHECK_EQ(stored(&a, on_a), 0);
    CHECK_EQ(stored(&b, on_b), 0);
    fprintf(stderr, "  A holds %llu + %llu, B holds %llu + %llu\n", (unsigned long long)on_a[0],
            (unsigned long long)on_a[1], (unsigned long long)on_b[0], (unsigned long long)on_b[1]);
    CHECK(on_a[0] == 0 && on_b[1] == 0); /* each shard on its leader only */
    CHECK(on_b[0] > 0 && on_a[1] > 0);
    CHECK_EQ(on_b[0] + on_a[1], RECORDS);

    sluice_consumer *cons = NULL;
    CHECK_EQ(sluice_consumer_new(c, "r", NULL, NULL, &cons), SL_OK);
    size_t got = 0;
    struct sluice_record recs[256];
    uint64_t t0 = it_mono_ms();
    while (got < RECORDS && it_mono_ms() - t0 < 30000) {
        size_t n = 0;
        CHECK_EQ(sluice_consumer_poll(cons, recs, 256, &n, 200), SL_OK);
        got += n;
    }
    CHECK_EQ(got, RECORDS);
    sluice_consumer_free(cons);

    /* B dies while the producer sends: its shard's batches follow the new answer to A */
    CHECK_EQ(produce_n(p, RECORDS, RECORDS / 2), SL_OK);
    CHECK_EQ(it_broker_kill9(&b), 0);
    CHECK_EQ(produce_n(p, RECORDS + RECORDS / 2, RECORDS / 2), SL_OK);
    CHECK_EQ(sluice_producer_flush(p, 60000), SL_OK);
    CHECK_EQ(atomic_load(&failed), 0);
    CHECK_EQ(atomic_load(&acked), 2 * RECORDS);
    struct sluice_producer_stats ps;
    sluice_producer_stats(p, &ps);
    fprintf(stderr, "  after the kill: %llu retries\n", (unsigned long long)ps.retries);
    uint64_t after[2] = {0, 0};
    CHECK_EQ(stored(&a, after), 0);
    CHECK(after[0] > 0); /* shard 0 moved to A */
    CHECK(after[1] >= on_a[1]);
    sluice_producer_free(p);
    sluice_client_free(c);
    CHECK_EQ(it_broker_stop(&a), 0);
    it_broker_cleanup(&a);
    it_broker_cleanup(&b);
}

int main(void)
{
    int rc = it_preflight();
    if (rc != 0) {
        return rc;
    }
    RUN(shards_go_to_their_leader_and_follow_it_when_lost);
    TEST_END();
}
