/* test_route.c - unit tests of client/route.c, libsluice's routing table for cluster mode.
 *
 * Covers: a bootstrap list is split into its addresses (spaces around entries, IPv6 in
 * brackets, one address alone) and a malformed one refused with the bad entry named (empty
 * entry, no port, non-numeric port, too long, more than SL_ROUTE_BOOTSTRAP_MAX); a
 * Metadata answer routes each listed shard to its leader and knows its brokers; ids left
 * out and leaderless shards (-1) are not routed; a later answer replaces a stream's entry
 * and the broker list but keeps other streams; past SL_ROUTE_STREAMS_MAX streams the least
 * recently learned is forgotten; answers that do not hold together (duplicate node ids,
 * two `self`, ids not ascending or past the limit, a leader below -1, too many replicas,
 * a stream twice or without a name) are refused with a reason and leave the table as it
 * was; forget; a wire answer copied into the public structs (replicas, ISR, open) and one
 * with too many replicas refused.
 *
 * client/route.c needs only common/ and the protocol's generated code: compiled in here.
 */
#include "client/route.c"

#include "tests/unit/test.h"

#include <stdint.h>

TEST(bootstrap_list_is_split_and_checked)
{
    char out[SL_ROUTE_BOOTSTRAP_MAX][SL_ROUTE_ADDR_MAX];
    char why[SL_ROUTE_WHY_MAX];
    uint32_t n = 0;
    CHECK_EQ(sl_route_parse_list("127.0.0.1:7400", out, &n, why, sizeof(why)), SL_OK);
    CHECK_EQ(n, 1);
    CHECK(strcmp(out[0], "127.0.0.1:7400") == 0);
    CHECK_EQ(sl_route_parse_list("a:1, b:2 ,[::1]:3", out, &n, why, sizeof(why)), SL_OK);
    CHECK_EQ(n, 3);
    CHECK(strcmp(out[0], "a:1") == 0 && strcmp(out[1], "b:2") == 0);
    CHECK(strcmp(out[2], "[::1]:3") == 0);
    const char *bad[] = {"", "a:1,", ",a:1", "a:1,,b:2", "a", "a:", ":1", "a:1,b:x", "a:1 ,b:2x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why[0] = '\0';
        CHECK_EQ(sl_route_parse_list(bad[i], out, &n, why, sizeof(why)), SL_EINVAL);
        CHECK(strstr(why, "bad broker address") != NULL);
    }
    char many[1024] = "";
    for (uint32_t i = 0; i <= SL_ROUTE_BOOTSTRAP_MAX; i++) {
        strcat(many, i > 0 ? ",h:1" : "h:1");
    }
    CHECK_EQ(sl_route_parse_list(many, out, &n, why, sizeof(why)), SL_EINVAL);
    CHECK(strstr(why, "more than") != NULL);
    char lng[SL_ROUTE_ADDR_MAX + 8];
    memset(lng, 'h', sizeof(lng));
    memcpy(lng + SL_ROUTE_ADDR_MAX, ":1", 3);
    CHECK_EQ(sl_route_parse_list(lng, out, &n, why, sizeof(why)), SL_EINVAL);
}

/* A three-broker answer for `name`: shards 0..n-1 led by (i % 3) + 1, epoch i + 10. */
struct fixture {
    struct sluice_broker_info brokers[3];
    struct sluice_shard_route shards[16];
    struct sluice_stream_route streams[2];
    struct sluice_metadata m;
};

static void fixture(struct fixture *f, const char *name, uint32_t n)
{
    memset(f, 0, sizeof(*f));
    static const char *addr[3] = {"10.0.0.1:7400", "10.0.0.2:7400", "10.0.0.3:7400"};
    for (uint32_t i = 0; i < 3; i++) {
        f->brokers[i] = (struct sluice_broker_info){.node_id = i + 1, .address = addr[i],
                                                    .self = i == 1};
    }
    for (uint32_t i = 0; i < n; i++) {
        f->shards[i] = (struct sluice_shard_route){.shard = i, .leader = (int32_t)(i % 3) + 1,
                                                   .leader_epoch = (int32_t)i + 10, .open = 1,
                                                   .n_replicas = 3, .replicas = {1, 2, 3},
                                                   .n_isr = 2, .isr = {1, 2}};
    }
    f->streams[0] = (struct sluice_stream_route){.name = name, .n_shards = n, .shards = f->shards};
    f->m = (struct sluice_metadata){.cluster = 1, .node_id = 2, .n_brokers = 3,
                                    .brokers = f->brokers, .n_streams = 1, .streams = f->streams};
}

TEST(answer_routes_each_shard_to_its_leader)
{
    struct sl_route r;
    CHECK_EQ(sl_route_init(&r), SL_OK);
    struct fixture f;
    fixture(&f, "s", 6);
    f.shards[4].leader = SL_ROUTE_NONE; /* offline now */
    f.shards[5].shard = 9;              /* ids 5..8 retention removed */
    char why[SL_ROUTE_WHY_MAX];
    CHECK_EQ(sl_route_apply(&r, &f.m, why, sizeof(why)), SL_OK);
    CHECK_EQ(r.self_id, 2);
    CHECK(r.cluster);
    CHECK(sl_route_knows(&r, "s") && !sl_route_knows(&r, "t"));
    int32_t node = 0, epoch = 0;
    for (uint32_t i = 0; i < 4; i++) {
        CHECK_EQ(sl_route_leader(&r, "s", i, &node, &epoch), SL_OK);
        CHECK_EQ(node, (int32_t)(i % 3) + 1);
        CHECK_EQ(epoch, (int32_t)i + 10);
    }
    CHECK_EQ(sl_route_leader(&r, "s", 4, &node, NULL), SL_ENOTFOUND); /* no leader */
    for (uint32_t i = 5; i < 9; i++) {
        CHECK_EQ(sl_route_leader(&r, "s", i, &node, NULL), SL_ENOTFOUND); /* not listed */
    }
    CHECK_EQ(sl_route_leader(&r, "s", 9, &node, NULL), SL_OK);
    CHECK_EQ(sl_route_leader(&r, "s", 10, &node, NULL), SL_ENOTFOUND);
    CHECK_EQ(sl_route_leader(&r, "t", 0, &node, NULL), SL_ENOTFOUND);
    const struct sl_route_broker *b = sl_route_broker(&r, 3);
    CHECK(b != NULL && strcmp(b->addr, "10.0.0.3:7400") == 0);
    CHECK(sl_route_broker(&r, 4) == NULL);

    /* a second stream, then a new answer for the first: a leader moved, a broker left */
    struct fixture g;
    fixture(&g, "t", 2);
    CHECK_EQ(sl_route_apply(&r, &g.m, why, sizeof(why)), SL_OK);
    fixture(&f, "s", 2);
    f.shards[0].leader = 3;
    f.shards[0].leader_epoch = 11;
    f.m.n_brokers = 2;
    CHECK_EQ(sl_route_apply(&r, &f.m, why, sizeof(why)), SL_OK);
    CHECK_EQ(sl_route_leader(&r, "s", 0, &node, &epoch), SL_OK);
    CHECK_EQ(node, 3);
    CHECK_EQ(epoch, 11);
    CHECK_EQ(sl_route_leader(&r, "s", 3, &node, NULL), SL_ENOTFOUND); /* the new answer only */
    CHECK_EQ(sl_route_leader(&r, "t", 1, &node, NULL), SL_OK);        /* kept */
    CHECK(sl_route_broker(&r, 3) == NULL);
    sl_route_forget(&r, "s");
    CHECK(!sl_route_knows(&r, "s") && sl_route_knows(&r, "t"));
    sl_route_fini(&r);
    sl_route_fini(&r); /* idempotent */
}

/* A group's home shard: the broker's rule (common/partition.h) over the ids the table has,
 * the same for every call; unknown for a stream not in the table. */
TEST(group_home_shard_follows_the_brokers_rule)
{
    struct sl_route r;
    CHECK_EQ(sl_route_init(&r), SL_OK);
    struct fixture f;
    fixture(&f, "s", 6);
    char why[SL_ROUTE_WHY_MAX];
    CHECK_EQ(sl_route_apply(&r, &f.m, why, sizeof(why)), SL_OK);
    static const char *const groups[] = {"billing", "g", "audit-2026", "x"};
    uint32_t seen_mask = 0;
    for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++) {
        uint32_t k = 99;
        CHECK_EQ(sl_route_group_shard(&r, "s", groups[i], &k), SL_OK);
        CHECK_EQ(k, sl_partition_group_shard(groups[i], strlen(groups[i]), 6));
        CHECK(k < 6);
        seen_mask |= 1u << k;
    }
    CHECK(seen_mask != 1u); /* (not every group on shard 0) */
    uint32_t k = 0;
    CHECK_EQ(sl_route_group_shard(&r, "t", "billing", &k), SL_ENOTFOUND);
    sl_route_fini(&r);
}

TEST(least_recent_stream_gives_way)
{
    struct sl_route r;
    CHECK_EQ(sl_route_init(&r), SL_OK);
    char why[SL_ROUTE_WHY_MAX];
    char names[SL_ROUTE_STREAMS_MAX + 1][16];
    for (uint32_t i = 0; i <= SL_ROUTE_STREAMS_MAX; i++) {
        snprintf(names[i], sizeof(names[i]), "s%u", i);
        struct fixture f;
        fixture(&f, names[i], 1);
        CHECK_EQ(sl_route_apply(&r, &f.m, why, sizeof(why)), SL_OK);
        if (i == 1) { /* s0 learned again: s1 is now the least recent */
            fixture(&f, names[0], 1);
            CHECK_EQ(sl_route_apply(&r, &f.m, why, sizeof(why)), SL_OK);
        }
    }
    CHECK_EQ(r.n_streams, SL_ROUTE_STREAMS_MAX);
    CHECK(sl_route_knows(&r, "s0"));
    CHECK(!sl_route_knows(&r, "s1"));
    CHECK(sl_route_knows(&r, names[SL_ROUTE_STREAMS_MAX]));
    sl_route_fini(&r);
}

TEST(answer_that_does_not_hold_together_is_refused)
{
    struct sl_route r;
    CHECK_EQ(sl_route_init(&r), SL_OK);
    struct fixture f;
    fixture(&f, "s", 3);
    char why[SL_ROUTE_WHY_MAX];
    CHECK_EQ(sl_route_apply(&r, &f.m, why, sizeof(why)), SL_OK);
    for (int k = 0; k < 9; k++) {
        struct fixture g;
        fixture(&g, "s", 3);
        g.shards[0].leader = 2; /* what a wrongly accepted answer would change */
        switch (k) {
        case 0: g.brokers[2].node_id = 1; break;                     /* duplicate node id */
        case 1: g.brokers[0].self = 1; break;                        /* two selves */
        case 2: g.shards[2].shard = 1; break;                        /* not ascending */
        case 3: g.shards[2].shard = SL_ROUTE_SHARD_IDS_MAX; break;   /* past the limit */
        case 4: g.shards[1].leader = -2; break;                      /* below -1 */
        case 5: g.shards[1].n_isr = SLUICE_REPLICAS_MAX + 1; break;  /* too many */
        case 6: g.streams[1] = g.streams[0]; g.m.n_streams = 2; break; /* twice */
        case 7: g.streams[0].name = ""; break;                       /* no name */
        default: g.brokers[1].node_id = (uint32_t)INT32_MAX + 1u; break; /* out of range */
        }
        why[0] = '\0';
        CHECK_EQ(sl_route_apply(&r, &g.m, why, sizeof(why)), SL_EPROTO);
        CHECK(strncmp(why, "metadata:", 9) == 0);
        int32_t node = 0;
        CHECK_EQ(sl_route_leader(&r, "s", 0, &node, NULL), SL_OK);
        CHECK_EQ(node, 1); /* unchanged */
        CHECK_EQ(r.n_brokers, 3);
    }
    sl_route_fini(&r);
}

TEST(wire_answer_copied_into_public_structs)
{
    int32_t reps[3] = {1, 2, 3}, isr[2] = {2, 1};
    Sluice__V1__ShardRoute sr0 = SLUICE__V1__SHARD_ROUTE__INIT, sr1 = SLUICE__V1__SHARD_ROUTE__INIT;
    sr0.shard = 0;
    sr0.leader = 2;
    sr0.leader_epoch = 7;
    sr0.replicas = reps;
    sr0.n_replicas = 3;
    sr0.isr = isr;
    sr0.n_isr = 2;
    sr0.open = 1;
    sr1.shard = 1;
    sr1.leader = -1;
    Sluice__V1__ShardRoute *srs[2] = {&sr0, &sr1};
    Sluice__V1__StreamRoute st = SLUICE__V1__STREAM_ROUTE__INIT;
    st.name = (char *)"s";
    st.shards = srs;
    st.n_shards = 2;
    Sluice__V1__StreamRoute *sts[1] = {&st};
    Sluice__V1__BrokerInfo bi = SLUICE__V1__BROKER_INFO__INIT;
    bi.node_id = 2;
    bi.address = (char *)"h:1";
    bi.self = 1;
    Sluice__V1__BrokerInfo *bis[1] = {&bi};
    Sluice__V1__MetadataResponse pb = SLUICE__V1__METADATA_RESPONSE__INIT;
    pb.node_id = 2;
    pb.cluster = 1;
    pb.brokers = bis;
    pb.n_brokers = 1;
    pb.streams = sts;
    pb.n_streams = 1;
    struct sluice_metadata *m = NULL;
    char why[SL_ROUTE_WHY_MAX];
    CHECK_EQ(sl_route_metadata_copy(&pb, &m, why, sizeof(why)), SL_OK);
    CHECK(m->cluster && m->node_id == 2 && m->n_brokers == 1 && m->brokers[0].self);
    CHECK(strcmp(m->brokers[0].address, "h:1") == 0 && m->brokers[0].version[0] == '\0');
    CHECK_EQ(m->streams[0].n_shards, 2);
    const struct sluice_shard_route *r = &m->streams[0].shards[0];
    CHECK(r->leader == 2 && r->leader_epoch == 7 && r->open && r->n_replicas == 3);
    CHECK(r->replicas[2] == 3 && r->n_isr == 2 && r->isr[0] == 2);
    CHECK(m->streams[0].shards[1].leader == -1 && !m->streams[0].shards[1].open);
    sluice_metadata_free(m);
    int32_t eight[8] = {0};
    sr0.replicas = eight;
    sr0.n_replicas = 8;
    CHECK_EQ(sl_route_metadata_copy(&pb, &m, why, sizeof(why)), SL_EPROTO);
    CHECK(m == NULL && strstr(why, "replicas") != NULL);
}

int main(void)
{
    RUN(bootstrap_list_is_split_and_checked);
    RUN(answer_routes_each_shard_to_its_leader);
    RUN(group_home_shard_follows_the_brokers_rule);
    RUN(least_recent_stream_gives_way);
    RUN(answer_that_does_not_hold_together_is_refused);
    RUN(wire_answer_copied_into_public_structs);
    TEST_END();
}
