/* groups.c (test) - consumer groups on a replicated stream (#14): one ZooKeeper and three
 * sluiced (--cluster); a stream of SHARDS shards, replication factor 3. A group's checkpoints
 * are control batches in the log of the group's shard (docs/REPLICATION.md "Checkpoints and
 * consumer groups"), whose leader is the group's home. The test:
 *   1. writes VALUES unique values (ack durable, through a bootstrap list of the three);
 *   2. a member of group G reads HALF of them and commits; the checkpoints read back from
 *      the group's home equal, shard by shard, the records it was handed;
 *   3. kill -9 of the home (the leader of the group's shard);
 *   4. through the two others: the checkpoints are still those, and a new member of G
 *      reads exactly the values the first did not, each once (none of the first's again:
 *      acknowledged commits survive the failover);
 *   5. the killed broker comes back; a stream of WIDE_SHARDS shards (more than one
 *      ZooKeeper multi takes) is made, every shard gets a leader, and a record written to
 *      each is read back; a plain consumer (no group) reads every value of the first stream
 *      once from the start on every shard: the control batches never reach a reader;
 *   6. a stream of replication factor 1 (each shard on one broker): describing it through
 *      the bootstrap list gives every shard's true end (each shard asked of its leader; the
 *      broker that answers first holds no copy of the others), and a group's lag on it.
 * Skipped (77) without java or the ZooKeeper jar.
 */
#include "cluster_it.h"

#include "common/partition.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SESSION_MS  (2000u * IT_SLOWDOWN)
#define NB          3
#define STREAM      "grp"
#define GROUP       "billing"
#define SHARDS      4u
#define VALUES      400u
#define HALF        (VALUES / 2)
#define WIDE_SHARDS 130u /* > 62: its states take three ZooKeeper multis */
#define WIDE_GROUPS 8u

static struct cit cl;
static struct it_broker brokers[NB];
static uint8_t seen[VALUES];

/* A client over the bootstrap list of the live brokers. */
static sluice_client *connect_all(void)
{
    sluice_client *c = cit_connect(brokers, NB);
    CHECK(c != NULL);
    return c;
}

static uint32_t value_of(const struct sluice_record *r)
{
    char buf[16];
    CHECK(r->value_len > 1 && r->value_len < sizeof(buf) && ((const char *)r->value)[0] == 'v');
    memcpy(buf, (const char *)r->value + 1, r->value_len - 1);
    buf[r->value_len - 1] = '\0';
    uint32_t v = (uint32_t)strtoul(buf, NULL, 10);
    CHECK(v < VALUES);
    return v;
}

/* Polls `cons` until `want` records came (or the time is up); marks each value seen (never
 * twice) and counts them per shard into per_shard (may be NULL). Returns the count. */
static uint32_t read_values(sluice_consumer *cons, uint32_t want, uint32_t *per_shard,
                            uint32_t timeout_ms)
{
    uint32_t got = 0;
    uint64_t t0 = it_mono_ms();
    while (got < want && it_mono_ms() - t0 < timeout_ms) {
        struct sluice_record recs[64];
        size_t n = 0;
        size_t max = want - got < 64 ? want - got : 64;
        int rc = sluice_consumer_poll(cons, recs, max, &n, 500);
        CHECK(rc == SLUICE_OK || rc == SLUICE_EAGAIN || rc == SLUICE_ECLOSED ||
              rc == SLUICE_ENOT_LEADER);
        for (size_t k = 0; k < n; k++) {
            uint32_t v = value_of(&recs[k]);
            if (seen[v]) {
                fprintf(stderr, "value %u read twice (shard %u seq %" PRIu64 ")\n", v,
                        recs[k].shard, recs[k].seq);
            }
            CHECK(!seen[v]);
            seen[v] = 1;
            CHECK(recs[k].shard < SHARDS);
            if (per_shard != NULL) {
                per_shard[recs[k].shard]++;
            }
            got++;
        }
    }
    return got;
}

/* The group's checkpoints, asked until its home answers (a failover may be under way). */
static void checkpoints(sluice_client *c, uint64_t out[SHARDS], uint32_t timeout_ms)
{
    uint64_t t0 = it_mono_ms();
    for (;;) {
        struct sluice_checkpoint *cps = NULL;
        size_t n = 0;
        int rc = sluice_checkpoints_get(c, GROUP, STREAM, &cps, &n);
        if (rc == SLUICE_OK) {
            memset(out, 0, SHARDS * sizeof(out[0]));
            for (size_t k = 0; k < n; k++) {
                CHECK(cps[k].shard < SHARDS);
                out[cps[k].shard] = cps[k].seq;
            }
            free(cps);
            return;
        }
        if (it_mono_ms() - t0 >= timeout_ms) {
            fprintf(stderr, "checkpoints of %s: %s\n", GROUP, sluice_last_error());
        }
        CHECK(it_mono_ms() - t0 < timeout_ms);
        it_sleep_ms(200);
    }
}

/* A stream of more shards than one ZooKeeper multi takes (its states written in chained
 * multis, replicas_meta.c): every shard gets a leader, and a record written to each of them
 * through the bootstrap list is read back. */
static void wide_stream(sluice_client *c)
{
    struct sluice_stream_opts so = {.shard_count = WIDE_SHARDS, .replication_factor = 2};
    struct sluice_stream_info *si = NULL;
    CHECK(cit_stream_create(c, "wide", &so, 20000, &si) == SLUICE_OK);
    CHECK(si->shard_count == WIDE_SHARDS);
    sluice_stream_info_free(si);
    const char *names[1] = {"wide"};
    uint32_t led = 0;
    uint64_t t0 = it_mono_ms();
    while (led < WIDE_SHARDS && it_mono_ms() - t0 < 30000) {
        struct sluice_metadata *md = NULL;
        led = 0;
        if (sluice_cluster_metadata(c, names, 1, &md) == SLUICE_OK && md->n_streams == 1) {
            for (size_t k = 0; k < md->streams[0].n_shards; k++) {
                led += md->streams[0].shards[k].leader > 0;
            }
        }
        sluice_metadata_free(md);
        if (led < WIDE_SHARDS) {
            it_sleep_ms(200);
        }
    }
    printf("stream of %u shards: %u with a leader\n", WIDE_SHARDS, led);
    CHECK(led == WIDE_SHARDS);
    uint32_t failed = 0;
    struct sluice_producer_opts po = {
        .ack = SLUICE_ACK_DURABLE, .retries = 20, .retry_backoff_ms = 200, .linger_ms = 2};
    sluice_producer *p = NULL;
    CHECK(sluice_producer_new(c, "wide", &po, &p) == SLUICE_OK);
    static uint8_t covered[WIDE_SHARDS];
    uint32_t n_covered = 0;
    for (uint32_t i = 0; n_covered < WIDE_SHARDS && i < 1000000u; i++) {
        char key[16], val[16];
        int kn = snprintf(key, sizeof(key), "w%u", i);
        uint32_t k = sl_partition_shard(sl_partition_hash(key, (size_t)kn), WIDE_SHARDS);
        if (covered[k]) {
            continue; /* one key per shard, found by its hash (common/partition.h) */
        }
        covered[k] = 1;
        n_covered++;
        int vn = snprintf(val, sizeof(val), "v%u", k);
        CHECK(sluice_produce(p, key, (size_t)kn, val, (size_t)vn, NULL, 0, cit_on_delivery,
                             &failed) == SLUICE_OK);
    }
    CHECK(n_covered == WIDE_SHARDS);
    CHECK(sluice_producer_flush(p, 30000) == SLUICE_OK);
    sluice_producer_free(p);
    CHECK(failed == 0);
    sluice_consumer *all = NULL;
    struct sluice_consumer_opts aopts = {.start = {.kind = SLUICE_TRIM_HORIZON}};
    CHECK(sluice_consumer_new(c, "wide", NULL, &aopts, &all) == SLUICE_OK);
    uint32_t got = 0;
    t0 = it_mono_ms();
    while (got < WIDE_SHARDS && it_mono_ms() - t0 < 30000) {
        struct sluice_record recs[64];
        size_t n = 0;
        (void)sluice_consumer_poll(all, recs, 64, &n, 500);
        for (size_t k = 0; k < n; k++) {
            char want[16];
            int wn = snprintf(want, sizeof(want), "v%u", recs[k].shard);
            CHECK(recs[k].value_len == (size_t)wn && memcmp(recs[k].value, want, (size_t)wn) == 0);
        }
        got += (uint32_t)n;
    }
    sluice_consumer_free(all);
    printf("a record written to each of its shards read back: %u\n", got);
    CHECK(got == WIDE_SHARDS);

    /* Groups live at their homes, and with 2 replicas of 3 brokers no broker holds every
     * group's shard: the list merges every leader's. The groups are picked among those whose
     * shard broker 1 (the first address of the client's list) holds no replica of, so a
     * list from broker 1 alone would miss them all. */
    struct sluice_metadata *md = NULL;
    CHECK(sluice_cluster_metadata(c, names, 1, &md) == SLUICE_OK && md->n_streams == 1);
    char gname[WIDE_GROUPS][16];
    uint32_t ng = 0;
    for (uint32_t i = 0; ng < WIDE_GROUPS && i < 100000u; i++) {
        char cand[16];
        int cn = snprintf(cand, sizeof(cand), "team-%05u", i);
        uint32_t k = sl_partition_group_shard(cand, (size_t)cn, WIDE_SHARDS);
        bool on_b1 = true;
        for (size_t s = 0; s < md->streams[0].n_shards; s++) {
            const struct sluice_shard_route *r = &md->streams[0].shards[s];
            if (r->shard != k) {
                continue;
            }
            on_b1 = false;
            for (uint32_t j = 0; j < r->n_replicas; j++) {
                on_b1 = on_b1 || r->replicas[j] == 1;
            }
        }
        if (!on_b1) {
            memcpy(gname[ng++], cand, sizeof(cand));
        }
    }
    sluice_metadata_free(md);
    CHECK(ng == WIDE_GROUPS);
    for (uint32_t g = 0; g < WIDE_GROUPS; g++) {
        CHECK(sluice_checkpoint_commit(c, gname[g], "wide", g, 1) == SLUICE_OK);
    }
    char **groups = NULL;
    size_t n_groups = 0;
    CHECK(sluice_groups_list(c, "wide", &groups, &n_groups) == SLUICE_OK);
    printf("groups listed on a %u-shard stream of 2 replicas: %zu of %u\n", WIDE_SHARDS, n_groups,
           WIDE_GROUPS);
    CHECK(n_groups == WIDE_GROUPS);
    for (uint32_t g = 0; g < WIDE_GROUPS; g++) {
        CHECK(strcmp(groups[g], gname[g]) == 0); /* sorted: found in increasing order */
    }
    sluice_groups_free(groups, n_groups);
}

static void on_delivery_shard(void *ctx, int err, uint32_t shard, uint64_t seq)
{
    (void)seq;
    uint32_t *per_shard = ctx;
    CHECK(err == SLUICE_OK && shard < 3);
    __atomic_add_fetch(&per_shard[shard], 1, __ATOMIC_RELAXED);
}

/* 6: describe asks each shard's leader. */
static void describe_single_copies(sluice_client *c)
{
    struct sluice_stream_opts so = {.shard_count = 3, .replication_factor = 1};
    CHECK(cit_stream_create(c, "single", &so, 10000, NULL) == SLUICE_OK);
    uint32_t per_shard[3] = {0};
    struct sluice_producer_opts po = {
        .ack = SLUICE_ACK_DURABLE, .retries = 20, .retry_backoff_ms = 200, .linger_ms = 2};
    sluice_producer *p = NULL;
    CHECK(sluice_producer_new(c, "single", &po, &p) == SLUICE_OK);
    for (uint32_t v = 0; v < 30; v++) {
        char key[16];
        int kn = snprintf(key, sizeof(key), "s%u", v);
        CHECK(sluice_produce(p, key, (size_t)kn, "x", 1, NULL, 0, on_delivery_shard, per_shard) ==
              SLUICE_OK);
    }
    CHECK(sluice_producer_flush(p, 30000) == SLUICE_OK);
    sluice_producer_free(p);
    struct sluice_stream_info *si = NULL;
    CHECK(sluice_stream_describe(c, "single", &si) == SLUICE_OK && si->shards_len == 3);
    for (uint32_t i = 0; i < si->shards_len; i++) {
        uint32_t k = si->shards[i].shard;
        printf("single copy: shard %u led by broker %d: next_seq %" PRIu64 ", %u written\n", k,
               cit_leader(c, "single", k, NB) + 1, si->shards[i].next_seq, per_shard[k]);
        CHECK(si->shards[i].next_seq == per_shard[k]);
    }
    sluice_stream_info_free(si);
    /* a group's lag too: its home holds one shard of three */
    struct sluice_shard_lag *lag = NULL;
    size_t n = 0;
    int rc = sluice_group_lag(c, "audit", "single", &lag, &n);
    if (rc != SLUICE_OK) {
        fprintf(stderr, "lag: %s (%s)\n", sluice_strerror(rc), sluice_last_error());
    }
    CHECK(rc == SLUICE_OK && n == 3);
    for (size_t i = 0; i < n; i++) {
        printf("group lag: shard %u: %" PRIu64 " behind\n", lag[i].shard, lag[i].records_behind);
        CHECK(lag[i].shard < 3 && lag[i].records_behind == per_shard[lag[i].shard]);
    }
    free(lag);
}

int main(void)
{
    int rc = cit_preflight();
    if (rc != 0) {
        return rc;
    }
    CHECK(cit_start(&cl, SESSION_MS) == 0);
    for (int i = 0; i < NB; i++) {
        CHECK(cit_broker_start(&cl, &brokers[i], i + 1) == 0);
    }
    sluice_client *c = connect_all();
    struct sluice_stream_opts so = {.shard_count = SHARDS, .replication_factor = 3};
    CHECK(cit_stream_create(c, STREAM, &so, 10000, NULL) == SLUICE_OK);

    /* 1. the values, durable on the ISR (retried until the leaders are all elected) */
    cit_write_values(c, STREAM, "k", VALUES);
    printf("%u values written\n", VALUES);

    /* 2. a member reads half and commits */
    struct sluice_consumer_opts copts = {.start = {.kind = SLUICE_TRIM_HORIZON},
                                         .session_timeout_ms = 3000};
    sluice_consumer *m1 = NULL;
    CHECK(sluice_consumer_new(c, STREAM, GROUP, &copts, &m1) == SLUICE_OK);
    uint32_t first[SHARDS] = {0};
    CHECK(read_values(m1, HALF, first, 30000) == HALF);
    CHECK(sluice_consumer_commit(m1) == SLUICE_OK);
    uint64_t cp[SHARDS];
    checkpoints(c, cp, 5000);
    for (uint32_t k = 0; k < SHARDS; k++) {
        printf("shard %u: %u read, checkpoint %" PRIu64 "\n", k, first[k], cp[k]);
        CHECK(cp[k] == first[k]); /* each shard's data starts at 0 and has no gap yet */
    }
    sluice_consumer_free(m1);

    /* 3. kill -9 the group's home */
    uint32_t home = sl_partition_group_shard(GROUP, strlen(GROUP), SHARDS);
    int killed = cit_leader(c, STREAM, home, NB);
    CHECK(killed >= 0);
    printf("group %s lives in shard %u, led by broker %d: kill -9\n", GROUP, home, killed + 1);
    sluice_client_free(c);
    CHECK(it_broker_kill9(&brokers[killed]) == 0);
    uint64_t t_kill = it_mono_ms();

    /* 4. the checkpoints survive; a new member reads the rest, each value once */
    c = connect_all();
    uint64_t cp2[SHARDS];
    checkpoints(c, cp2, SESSION_MS + 20000);
    printf("checkpoints read from the new home after %" PRIu64 " ms\n", it_mono_ms() - t_kill);
    for (uint32_t k = 0; k < SHARDS; k++) {
        CHECK(cp2[k] == cp[k]);
    }
    sluice_consumer *m2 = NULL;
    struct sluice_consumer_opts auto_opts = copts;
    auto_opts.auto_commit_ms = 100;
    CHECK(sluice_consumer_new(c, STREAM, GROUP, &auto_opts, &m2) == SLUICE_OK);
    CHECK(read_values(m2, VALUES - HALF, NULL, SESSION_MS + 30000) == VALUES - HALF);
    for (uint32_t v = 0; v < VALUES; v++) {
        CHECK(seen[v]);
    }
    CHECK(sluice_consumer_commit(m2) == SLUICE_OK);
    printf("the new member read the %u values the first had not\n", VALUES - HALF);
    /* Idle with auto-commit: a commit is a control batch in the group's shard, which the
     * member reads next; it must not commit over it (one more batch each time, for ever). */
    uint64_t before = cit_shard_end(c, STREAM, home);
    CHECK(read_values(m2, 1, NULL, 2000) == 0);
    uint64_t after = cit_shard_end(c, STREAM, home);
    printf("idle member with auto-commit every 100 ms: the group's shard grew by %" PRIu64
           " in 2 s\n",
           after - before);
    CHECK(after - before <= 1);
    sluice_consumer_free(m2);

    /* 5. every broker back; a reader without a group sees the values only */
    CHECK(it_broker_restart(&brokers[killed]) == 0);
    wide_stream(c);

    memset(seen, 0, sizeof(seen));
    sluice_consumer *all = NULL;
    struct sluice_consumer_opts aopts = {.start = {.kind = SLUICE_TRIM_HORIZON}};
    CHECK(sluice_consumer_new(c, STREAM, NULL, &aopts, &all) == SLUICE_OK);
    CHECK(read_values(all, VALUES, NULL, 30000) == VALUES);
    struct sluice_record extra[8];
    size_t n_extra = 0;
    (void)sluice_consumer_poll(all, extra, 8, &n_extra, 1000);
    CHECK(n_extra == 0); /* the control batches are no records */
    sluice_consumer_free(all);
    describe_single_copies(c);
    sluice_client_free(c);

    for (int i = 0; i < NB; i++) {
        CHECK(it_broker_stop(&brokers[i]) == 0);
        it_broker_cleanup(&brokers[i]);
    }
    zkh_cleanup(&cl.zk);
    printf("ok\n");
    return 0;
}
