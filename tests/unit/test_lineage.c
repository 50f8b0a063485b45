/* test_lineage.c - the resharding rules (broker/engine/lineage.c): splits and merges keep
 * the open shards a partition of the hash space, refuse what Kinesis refuses with a reason,
 * route every hash to the one open shard holding it, plan a shard count as splits then
 * merges (4 -> 8 -> 3 -> 16, the walk), and let a child be read only after its
 * parents were read to their ends. */
#include "test.h"

#include "broker/engine/lineage.h"
#include "common/error.h"
#include "common/partition.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char why[256];

/* Every hash sampled (the range ends, around every boundary, spread values) routes to an
 * open shard whose range holds it. */
static bool routes_cover(const struct sl_lineage *l)
{
    for (uint32_t i = 0; i < l->n; i++) {
        const uint64_t probe[] = {l->shard[i].start, l->shard[i].end,
                                  l->shard[i].start + (l->shard[i].end - l->shard[i].start) / 2};
        for (int k = 0; k < 3; k++) {
            uint32_t r = sl_lineage_route(l, probe[k]);
            if (r >= l->n || l->shard[r].closed || probe[k] < l->shard[r].start ||
                probe[k] > l->shard[r].end) {
                return false;
            }
        }
    }
    return true;
}

static uint32_t open_count(const struct sl_lineage *l)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < l->n; i++) {
        n += l->shard[i].closed ? 0 : 1;
    }
    return n;
}

/* After a plan to `target` ran, the open shards are the uniform ranges of `target`, each
 * boundary within the plan's tolerance. */
static bool uniform(const struct sl_lineage *l, uint32_t target)
{
    if (open_count(l) != target) {
        return false;
    }
    uint64_t tol = sl_partition_width(target) / SL_LINEAGE_TOLERANCE;
    for (uint32_t i = 0; i < target; i++) {
        uint64_t start, end;
        sl_partition_range(i, target, &start, &end);
        uint32_t r = sl_lineage_route(l, start + (end - start) / 2);
        uint64_t ds = l->shard[r].start > start ? l->shard[r].start - start
                                                : start - l->shard[r].start;
        uint64_t de = l->shard[r].end > end ? l->shard[r].end - end : end - l->shard[r].end;
        if (ds > tol || de > tol) {
            return false;
        }
    }
    return true;
}

static int reshard(struct sl_lineage *l, uint32_t target)
{
    struct sl_reshard_step steps[64];
    uint32_t n = 0;
    int rc = sl_lineage_plan(l, target, steps, 64, &n);
    for (uint32_t i = 0; rc == SL_OK && i < n; i++) {
        rc = sl_lineage_apply(l, &steps[i], why, sizeof(why));
        if (rc == SL_OK && sl_lineage_check(l, why, sizeof(why)) != SL_OK) {
            rc = SL_ECORRUPT;
        }
    }
    return rc;
}

TEST(split_and_merge)
{
    struct sl_lineage l;
    CHECK_EQ(sl_lineage_init(&l, 4), SL_OK);
    CHECK_EQ(sl_lineage_check(&l, why, sizeof(why)), SL_OK);
    CHECK(routes_cover(&l));
    uint32_t c[2];
    CHECK_EQ(sl_lineage_split(&l, 1, sl_lineage_middle(&l, 1), c, why, sizeof(why)), SL_OK);
    CHECK(c[0] == 4 && c[1] == 5 && l.shard[1].closed && l.open == 5);
    CHECK(l.shard[4].parent[0] == 1 && l.shard[5].start == sl_lineage_middle(&l, 1));
    CHECK(routes_cover(&l));
    /* refused, with the reason, and nothing changes */
    CHECK_EQ(sl_lineage_split(&l, 1, 5, c, why, sizeof(why)), SL_ESHARD_CLOSED);
    CHECK(strstr(why, "closed") != NULL);
    CHECK_EQ(sl_lineage_split(&l, 9, 5, c, why, sizeof(why)), SL_ENOTFOUND);
    CHECK_EQ(sl_lineage_split(&l, 0, l.shard[0].start, c, why, sizeof(why)), SL_EINVAL);
    CHECK_EQ(sl_lineage_split(&l, 0, l.shard[0].end + 1, c, why, sizeof(why)), SL_EINVAL);
    uint32_t child;
    CHECK_EQ(sl_lineage_merge(&l, 0, 2, &child, why, sizeof(why)), SL_EINVAL); /* 1 between */
    CHECK(strstr(why, "not adjacent") != NULL);
    CHECK_EQ(sl_lineage_merge(&l, 0, 0, &child, why, sizeof(why)), SL_EINVAL);
    CHECK_EQ(l.n, 6);
    /* merge the split's two children back (either order), then with a neighbour */
    CHECK_EQ(sl_lineage_merge(&l, 5, 4, &child, why, sizeof(why)), SL_OK);
    CHECK(child == 6 && l.shard[6].start == l.shard[1].start && l.shard[6].end == l.shard[1].end);
    CHECK(l.shard[6].parent[0] == 4 && l.shard[6].parent[1] == 5);
    CHECK_EQ(sl_lineage_merge(&l, 6, 2, &child, why, sizeof(why)), SL_OK);
    CHECK(l.open == 3 && routes_cover(&l));
    CHECK_EQ(sl_lineage_check(&l, why, sizeof(why)), SL_OK);
    /* a damaged lineage (as read from disk) is refused with a reason */
    l.shard[0].end -= 1;
    CHECK_EQ(sl_lineage_check(&l, why, sizeof(why)), SL_ECORRUPT);
    CHECK(strstr(why, "gap") != NULL);
    sl_lineage_fini(&l);
}

TEST(shard_counts_4_8_3_16)
{
    struct sl_lineage l;
    CHECK_EQ(sl_lineage_init(&l, 4), SL_OK);
    const uint32_t walk[] = {8, 3, 16, 1, 5};
    for (size_t i = 0; i < sizeof(walk) / sizeof(walk[0]); i++) {
        CHECK_EQ(reshard(&l, walk[i]), SL_OK);
        CHECK(uniform(&l, walk[i]));
        CHECK(routes_cover(&l));
        fprintf(stderr, "  -> %u open shards, %u in the lineage\n", l.open, l.n);
        CHECK(i != 0 || l.n == 4 + 8); /* 4 -> 8: four splits, no one-hash moves */
    }
    struct sl_reshard_step steps[4];
    uint32_t n = 99;
    CHECK_EQ(sl_lineage_plan(&l, 5, steps, 4, &n), SL_OK); /* already there */
    CHECK_EQ(n, 0);
    CHECK_EQ(sl_lineage_plan(&l, 64, steps, 4, &n), SL_ELIMIT); /* more steps than room */
    CHECK_EQ(sl_lineage_plan(&l, 0, steps, 4, &n), SL_EINVAL);
    sl_lineage_fini(&l);
}

/* Finished shards for sl_lineage_readable. */
static bool is_finished(void *ctx, uint32_t shard)
{
    const bool *done = ctx;
    return done[shard];
}

TEST(children_wait_for_their_parents)
{
    struct sl_lineage l;
    CHECK_EQ(sl_lineage_init(&l, 2), SL_OK);
    uint32_t c[2], m;
    CHECK_EQ(sl_lineage_split(&l, 0, sl_lineage_middle(&l, 0), c, why, sizeof(why)), SL_OK);
    CHECK_EQ(sl_lineage_merge(&l, c[1], 1, &m, why, sizeof(why)), SL_OK);
    bool done[8] = {false};
    CHECK(sl_lineage_readable(&l, 0, is_finished, done)); /* no parents */
    CHECK(!sl_lineage_readable(&l, c[0], is_finished, done));
    done[0] = true;
    CHECK(sl_lineage_readable(&l, c[0], is_finished, done));
    CHECK(!sl_lineage_readable(&l, m, is_finished, done)); /* both parents of a merge */
    done[c[1]] = true;
    CHECK(!sl_lineage_readable(&l, m, is_finished, done));
    done[1] = true;
    CHECK(sl_lineage_readable(&l, m, is_finished, done));
    sl_lineage_fini(&l);
}

/* An empty shard closed in the change that made it (a split of a fresh child) is "read to
 * its end" at once: its children must still wait for its parent. */
TEST(grandchildren_wait_for_every_ancestor)
{
    struct sl_lineage l;
    CHECK_EQ(sl_lineage_init(&l, 1), SL_OK);
    uint32_t c[2], g[2], m;
    CHECK_EQ(sl_lineage_split(&l, 0, sl_lineage_middle(&l, 0), c, why, sizeof(why)), SL_OK);
    CHECK_EQ(sl_lineage_split(&l, c[0], sl_lineage_middle(&l, c[0]), g, why, sizeof(why)), SL_OK);
    bool done[16] = {false};
    done[c[0]] = true; /* empty, closed: finished at once */
    CHECK(!sl_lineage_readable(&l, g[0], is_finished, done)); /* shard 0 still has records */
    done[0] = true;
    CHECK(sl_lineage_readable(&l, g[0], is_finished, done));
    /* a diamond (split, then merge the two halves back) is asked once per ancestor */
    CHECK_EQ(sl_lineage_merge(&l, g[1], c[1], &m, why, sizeof(why)), SL_OK);
    CHECK(!sl_lineage_readable(&l, m, is_finished, done));
    done[g[1]] = true;
    CHECK(!sl_lineage_readable(&l, m, is_finished, done));
    done[c[1]] = true;
    CHECK(sl_lineage_readable(&l, m, is_finished, done));
    done[0] = false;
    CHECK(!sl_lineage_readable(&l, m, is_finished, done)); /* the root, two levels up */
    sl_lineage_fini(&l);
}

/* A gone shard (retention removed it) counts as finished; its own ancestors are still asked;
 * the check refuses a gone shard that is open and a miscount. */
TEST(gone_ancestors_are_finished)
{
    struct sl_lineage l;
    CHECK_EQ(sl_lineage_init(&l, 1), SL_OK);
    uint32_t c[2], g[2];
    CHECK_EQ(sl_lineage_split(&l, 0, sl_lineage_middle(&l, 0), c, why, sizeof(why)), SL_OK);
    CHECK_EQ(sl_lineage_split(&l, c[0], sl_lineage_middle(&l, c[0]), g, why, sizeof(why)), SL_OK);
    bool done[16] = {false};
    sl_lineage_retire(&l, c[0], 7);
    CHECK(l.gone == 1 && l.shard[c[0]].gone && l.shard[c[0]].end_seq == 7);
    CHECK_EQ(sl_lineage_check(&l, why, sizeof(why)), SL_OK);
    CHECK(!sl_lineage_readable(&l, g[0], is_finished, done)); /* the root is not finished */
    sl_lineage_retire(&l, 0, 3);
    CHECK(sl_lineage_readable(&l, g[0], is_finished, done));
    CHECK(sl_lineage_readable(&l, c[1], is_finished, done));
    struct sl_lineage copy;
    CHECK_EQ(sl_lineage_copy(&copy, &l), SL_OK);
    CHECK(copy.gone == 2 && copy.shard[0].gone);
    copy.shard[g[0]].gone = true; /* open and gone */
    copy.gone++;
    CHECK_EQ(sl_lineage_check(&copy, why, sizeof(why)), SL_ECORRUPT);
    copy.shard[g[0]].gone = false; /* miscounted */
    CHECK_EQ(sl_lineage_check(&copy, why, sizeof(why)), SL_ECORRUPT);
    sl_lineage_fini(&copy);
    sl_lineage_fini(&l);
}

TEST(bounded)
{
    struct sl_lineage l;
    CHECK_EQ(sl_lineage_init(&l, 0), SL_EINVAL);
    CHECK_EQ(sl_lineage_init(&l, SL_LINEAGE_SHARDS_MAX + 1), SL_EINVAL);
    CHECK_EQ(sl_lineage_init(&l, 1), SL_OK);
    uint32_t c[2];
    int rc = SL_OK;
    for (uint32_t id = 0; rc == SL_OK; id++) { /* breadth first, until the lineage is full */
        rc = sl_lineage_split(&l, id, sl_lineage_middle(&l, id), c, why, sizeof(why));
    }
    CHECK_EQ(rc, SL_ELIMIT);
    CHECK(l.n <= SL_LINEAGE_SHARDS_MAX && strstr(why, "too many shards") != NULL);
    CHECK_EQ(sl_lineage_check(&l, why, sizeof(why)), SL_OK);
    sl_lineage_fini(&l);
}

int main(void)
{
    RUN(split_and_merge);
    RUN(shard_counts_4_8_3_16);
    RUN(children_wait_for_their_parents);
    RUN(grandchildren_wait_for_every_ancestor);
    RUN(gone_ancestors_are_finished);
    RUN(bounded);
    TEST_END();
}
