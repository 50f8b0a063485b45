/* checkpoints.c - consumer-group checkpoints survive a broker restart.
 *
 * Covers: on a 3-shard stream, a consumer in group "g1" reads part of the records and
 * commits; a second group "g2" commits shard 0 directly; more records are produced; the
 * broker is stopped with SIGTERM (exit 0) and restarted on the same data directory and
 * port. Then: GetCheckpoints gives exactly the committed sequences (shards that were not
 * read have none), ListGroups gives g1 and g2, GroupLag gives per shard checkpoint, tail
 * and records_behind = tail - checkpoint (total = records produced after the checkpoint),
 * and a new consumer in g1 resumes exactly after the committed position: together the two
 * consumers read every record exactly once. Its commit then brings the lag to 0.
 */
#include "../unit/test.h"
#include "harness.h"

#include "common/error.h"

#include <inttypes.h>
#include <stdatomic.h>

#define SHARDS 3u
#define FIRST 3000u
#define SECOND 500u
#define TOTAL (FIRST + SECOND)
#define READ_FIRST 1200u

static struct it_broker broker;
static atomic_uint delivered_err;
static uint8_t got[TOTAL];

static void on_delivery(void *ctx, int err, uint32_t shard, uint64_t seq)
{
    (void)ctx;
    (void)shard;
    (void)seq;
    if (err != SL_OK) {
        atomic_fetch_add(&delivered_err, 1);
    }
}

static int produce(sluice_client *c, uint32_t from, uint32_t count)
{
    sluice_producer *p = NULL;
    struct sluice_producer_opts po = {.linger_ms = 1, .block_when_full = 1};
    if (sluice_producer_new(c, "ck", &po, &p) != SL_OK) {
        return -1;
    }
    char key[16], val[32];
    for (uint32_t i = from; i < from + count; i++) {
        int kl = snprintf(key, sizeof(key), "k%u", i % 50);
        int vl = snprintf(val, sizeof(val), "r%u", i);
        if (sluice_produce(p, key, (size_t)kl, val, (size_t)vl, NULL, 0, on_delivery, NULL) !=
            SL_OK) {
            sluice_producer_free(p);
            return -1;
        }
    }
    int rc = sluice_producer_flush(p, 30000);
    sluice_producer_free(p);
    return rc == SL_OK && atomic_load(&delivered_err) == 0 ? 0 : -1;
}

/* Polls `c` until `want` records were returned (never more: `max` shrinks), marking `got`
 * and the next sequence per shard. Returns the number read or -1. */
static int64_t read_n(sluice_consumer *c, uint32_t want, uint64_t next[SHARDS], int *moved)
{
    static struct sluice_record recs[256];
    uint32_t n_total = 0;
    uint64_t deadline = it_mono_ms() + 10000;
    while (n_total < want && it_mono_ms() < deadline) {
        size_t n = 0, max = want - n_total < 256 ? want - n_total : 256;
        int rc = sluice_consumer_poll(c, recs, max, &n, 500);
        if (rc != SL_OK || n > max) {
            fprintf(stderr, "  poll: %s (%s), %zu records\n", sl_errname(rc),
                    sluice_last_error(), n);
            return -1;
        }
        for (size_t r = 0; r < n; r++) {
            unsigned i;
            char buf[32];
            uint32_t len = recs[r].value_len < 31 ? recs[r].value_len : 31;
            memcpy(buf, recs[r].value, len);
            buf[len] = '\0';
            if (sscanf(buf, "r%u", &i) != 1 || i >= TOTAL || recs[r].shard >= SHARDS) {
                fprintf(stderr, "  unexpected record '%s'\n", buf);
                return -1;
            }
            got[i]++;
            next[recs[r].shard] = recs[r].seq + 1;
            moved[recs[r].shard] = 1;
        }
        n_total += (uint32_t)n;
    }
    return n_total;
}

TEST(checkpoints_survive_restart)
{
    CHECK_EQ(it_broker_start(&broker, "always"), 0);
    sluice_client *c = NULL;
    CHECK_EQ(it_connect(&broker, &c), SL_OK);
    CHECK_EQ(it_create_stream(c, "ck", SHARDS), SL_OK);
    CHECK_EQ(produce(c, 0, FIRST), 0);

    /* g1 reads READ_FIRST records and commits. */
    uint64_t next[SHARDS] = {0};
    int moved[SHARDS] = {0};
    sluice_consumer *cons = NULL;
    struct sluice_consumer_opts co = {.start = {.kind = SLUICE_TRIM_HORIZON}};
    CHECK_EQ(sluice_consumer_new(c, "ck", "g1", &co, &cons), SL_OK);
    CHECK_EQ(read_n(cons, READ_FIRST, next, moved), READ_FIRST);
    CHECK_EQ(sluice_consumer_commit(cons), SL_OK);
    sluice_consumer_free(cons);
    uint32_t with_ckpt = 0;
    for (uint32_t s = 0; s < SHARDS; s++) {
        with_ckpt += (uint32_t)moved[s];
        fprintf(stderr, "  g1 shard %u: %s %" PRIu64 "\n", s, moved[s] ? "committed" : "none",
                next[s]);
    }
    CHECK(with_ckpt >= 1);
    CHECK_EQ(sluice_checkpoint_commit(c, "g2", "ck", 0, 5), SL_OK);
    /* A checkpoint beyond the tail is refused. */
    CHECK_EQ(sluice_checkpoint_commit(c, "g2", "ck", 1, 1u << 30), SL_EINVAL);

    CHECK_EQ(produce(c, FIRST, SECOND), 0);
    sluice_client_free(c);
    c = NULL;

    CHECK_EQ(it_broker_stop(&broker), 0);
    CHECK_EQ(it_broker_restart(&broker), 0);
    CHECK_EQ(it_connect(&broker, &c), SL_OK);

    /* Checkpoints: exactly what g1 committed. */
    struct sluice_checkpoint *cps = NULL;
    size_t ncp = 0;
    CHECK_EQ(sluice_checkpoints_get(c, "g1", "ck", &cps, &ncp), SL_OK);
    CHECK_EQ(ncp, with_ckpt);
    for (size_t k = 0; k < ncp; k++) {
        CHECK(cps[k].shard < SHARDS && moved[cps[k].shard]);
        CHECK_EQ(cps[k].seq, next[cps[k].shard]);
        CHECK(cps[k].updated_ms > 0);
    }
    free(cps);
    CHECK_EQ(sluice_checkpoints_get(c, "g2", "ck", &cps, &ncp), SL_OK);
    CHECK_EQ(ncp, 1);
    CHECK_EQ(cps[0].shard, 0);
    CHECK_EQ(cps[0].seq, 5);
    free(cps);

    /* Groups. */
    char **groups = NULL;
    size_t ng = 0;
    CHECK_EQ(sluice_groups_list(c, "ck", &groups, &ng), SL_OK);
    CHECK_EQ(ng, 2);
    int has1 = 0, has2 = 0;
    for (size_t k = 0; k < ng; k++) {
        has1 |= strcmp(groups[k], "g1") == 0;
        has2 |= strcmp(groups[k], "g2") == 0;
    }
    sluice_groups_free(groups, ng);
    CHECK(has1 && has2);

    /* Lag: tail - checkpoint per shard; in total everything g1 did not read. */
    struct sluice_stream_info *info = NULL;
    CHECK_EQ(sluice_stream_describe(c, "ck", &info), SL_OK);
    struct sluice_shard_lag *lag = NULL;
    size_t nl = 0;
    CHECK_EQ(sluice_group_lag(c, "g1", "ck", &lag, &nl), SL_OK);
    CHECK_EQ(nl, SHARDS);
    uint64_t behind = 0;
    for (size_t k = 0; k < nl; k++) {
        uint32_t s = lag[k].shard;
        CHECK(s < SHARDS);
        CHECK_EQ(lag[k].tail_seq, info->shards[s].next_seq);
        CHECK_EQ(lag[k].checkpoint, moved[s] ? next[s] : info->shards[s].first_seq);
        CHECK_EQ(lag[k].records_behind, lag[k].tail_seq - lag[k].checkpoint);
        behind += lag[k].records_behind;
    }
    free(lag);
    sluice_stream_info_free(info);
    CHECK_EQ(behind, TOTAL - READ_FIRST);

    /* A new g1 consumer resumes right after the checkpoints: the rest, exactly once. */
    CHECK_EQ(sluice_consumer_new(c, "ck", "g1", &co, &cons), SL_OK);
    int moved2[SHARDS] = {0};
    CHECK_EQ(read_n(cons, TOTAL - READ_FIRST, next, moved2), TOTAL - READ_FIRST);
    static struct sluice_record extra[16];
    size_t n = 0;
    CHECK_EQ(sluice_consumer_poll(cons, extra, 16, &n, 300), SL_OK);
    CHECK_EQ(n, 0);
    for (uint32_t i = 0; i < TOTAL; i++) {
        if (got[i] != 1) {
            fprintf(stderr, "  record %u read %u times\n", i, got[i]);
        }
        CHECK_EQ(got[i], 1);
    }
    CHECK_EQ(sluice_consumer_commit(cons), SL_OK);
    sluice_consumer_free(cons);
    CHECK_EQ(sluice_group_lag(c, "g1", "ck", &lag, &nl), SL_OK);
    behind = 0;
    for (size_t k = 0; k < nl; k++) {
        behind += lag[k].records_behind;
    }
    free(lag);
    CHECK_EQ(behind, 0);

    sluice_client_free(c);
    CHECK_EQ(it_broker_stop(&broker), 0);
    it_broker_cleanup(&broker);
}

int main(void)
{
    int rc = it_preflight();
    if (rc != 0) {
        return rc;
    }
    RUN(checkpoints_survive_restart);
    TEST_END();
}
