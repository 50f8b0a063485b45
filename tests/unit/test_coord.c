/* test_coord.c - the group coordinator (broker/engine/coord.c) over a real
 * catalog on one loop: joins, cooperative hand-over (a shard never held by
 * two members), session expiry, leaving, static membership, fencing, bad
 * input. */
#include "test.h"
#include "append_one.h"

#include "broker/engine/catalog.h"
#include "broker/engine/coord.h"
#include "broker/engine/engine.h"
#include "common/error.h"
#include "common/ring.h"

#include <ftw.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define SHARDS  16u
#define SESSION 10000u

static struct sl_ring ring;
static char root[64];
static struct sl_catalog *cat;
static struct sl_engine eng;
static char why[512];

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int setup(void)
{
    struct stat sb;
    snprintf(root, sizeof(root), "%s/sl-coord-XXXXXX",
             stat("/dev/shm", &sb) == 0 ? "/dev/shm" : "/var/tmp");
    if (mkdtemp(root) == NULL || sl_ring_init(&ring, 256) != SL_OK) {
        return -1;
    }
    struct sl_catalog_config cc;
    memset(&cc, 0, sizeof(cc));
    cc.data_dir = root;
    sl_shard_config_default(&cc.shard);
    cc.shard.write_buf_bytes = 64u << 10;
    cc.shard.pending_max = 64;
    sl_ckpt_config_default(&cc.ckpt);
    sl_qstate_config_default(&cc.qstate);
    cc.default_retention_hours = 24;
    cc.streams_max = 16;
    cc.shards_max = 1024;
    struct sl_stream *st = NULL;
    struct sl_engine_config ec = {.fetch_wait_max_ms = 1000, .fetch_bytes_max = 1u << 20,
                                  .batch_bytes_max = 1u << 20};
    if (sl_catalog_open(&ring, &cc, &cat) != SL_OK ||
        sl_catalog_create(cat, "s", SHARDS, 0, 0, NULL, &st, why, sizeof(why)) != SL_OK ||
        sl_catalog_create(cat, "two", 2, 0, 0, NULL, &st, why, sizeof(why)) != SL_OK ||
        sl_engine_init(&eng, &ec, cat) != SL_OK) {
        return -1;
    }
    return 0;
}

static void teardown(void)
{
    sl_engine_fini(&eng);
    sl_catalog_close(cat);
    sl_ring_fini(&ring);
    nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

struct mem {
    char id[SL_COORD_ID_MAX];
    uint32_t held[SHARDS], n_held;
    uint32_t rev[SHARDS], n_rev;
    uint64_t gen;
};

static void take(struct mem *m, const struct sl_coord_view *v)
{
    snprintf(m->id, sizeof(m->id), "%s", v->member_id);
    memcpy(m->held, v->shards, v->n_shards * sizeof(uint32_t));
    m->n_held = v->n_shards;
    memcpy(m->rev, v->revoke, v->n_revoke * sizeof(uint32_t));
    m->n_rev = v->n_revoke;
    m->gen = v->generation;
}

static int join(struct mem *m, const char *instance, uint64_t now)
{
    struct sl_coord_join j = {.stream = "s", .group = "g", .instance_id = instance,
                              .session_timeout_ms = SESSION};
    struct sl_coord_view v;
    int rc = sl_coord_join(&eng, &j, now, &v, why, sizeof(why));
    if (rc == SL_OK) {
        take(m, &v);
    }
    return rc;
}

/* Heartbeat releasing everything revoked last time (as a member does after
 * its commit). */
static int beat(struct mem *m, uint64_t now)
{
    struct sl_coord_view v;
    int rc = sl_coord_heartbeat(&eng, "s", "g", m->id, m->rev, m->n_rev, now, &v, why,
                                sizeof(why));
    if (rc == SL_OK) {
        take(m, &v);
    }
    return rc;
}

/* No shard is owned by two of them; returns how many they own in all. */
static int owned_total(struct mem **ms, int n, int *dup)
{
    int total = 0;
    *dup = 0;
    for (uint32_t s = 0; s < SHARDS; s++) {
        int owners = 0;
        for (int i = 0; i < n; i++) {
            owners += sl_coord_owns(&eng, "s", "g", ms[i]->id, s, why, sizeof(why)) == SL_OK;
        }
        *dup += owners > 1;
        total += owners;
    }
    return total;
}

TEST(cooperative_join_and_leave)
{
    struct mem a, b, c;
    CHECK_EQ(join(&a, "", 0), SL_OK);
    CHECK_EQ(a.n_held, SHARDS);
    CHECK_EQ(a.n_rev, 0);
    uint64_t g1 = a.gen;
    CHECK_EQ(join(&b, "", 10), SL_OK);
    CHECK_EQ(b.n_held, 0); /* nothing until a releases */
    CHECK(b.gen > g1);
    struct mem *all[3] = {&a, &b, &c};
    int dup;
    CHECK_EQ(beat(&a, 20), SL_OK);
    CHECK_EQ(a.n_held, SHARDS); /* still holds, told to revoke half */
    CHECK_EQ(a.n_rev, SHARDS / 2);
    CHECK_EQ(owned_total(all, 2, &dup), (int)SHARDS);
    CHECK_EQ(dup, 0);
    /* the revoked shard is refused to a until released; b does not hold it yet */
    uint32_t moving = a.rev[0];
    CHECK_EQ(sl_coord_owns(&eng, "s", "g", b.id, moving, why, sizeof(why)), SL_EFENCED);
    CHECK_EQ(beat(&a, 30), SL_OK); /* releases */
    CHECK_EQ(a.n_held, SHARDS / 2);
    CHECK_EQ(a.n_rev, 0);
    CHECK_EQ(sl_coord_owns(&eng, "s", "g", a.id, moving, why, sizeof(why)), SL_EFENCED);
    CHECK(strstr(why, "does not hold shard") != NULL);
    CHECK_EQ(beat(&b, 40), SL_OK);
    CHECK_EQ(b.n_held, SHARDS / 2);
    CHECK_EQ(owned_total(all, 2, &dup), (int)SHARDS);
    CHECK_EQ(dup, 0);
    /* a third: only a third's share moves, from both */
    CHECK_EQ(join(&c, "", 50), SL_OK);
    for (int round = 0; round < 3; round++) {
        CHECK_EQ(beat(&a, 60), SL_OK);
        CHECK_EQ(beat(&b, 60), SL_OK);
        CHECK_EQ(beat(&c, 60), SL_OK);
        CHECK_EQ(dup, 0);
        owned_total(all, 3, &dup);
        CHECK_EQ(dup, 0);
    }
    CHECK_EQ(a.n_held + b.n_held + c.n_held, SHARDS);
    CHECK(c.n_held == 5 || c.n_held == 6);
    CHECK(a.n_held >= 5 && a.n_held <= 6 && b.n_held >= 5 && b.n_held <= 6);
    /* b leaves: its shards go to a and c at their next heartbeats, at once */
    CHECK_EQ(sl_coord_leave(&eng, "s", "g", b.id), SL_OK);
    CHECK_EQ(beat(&b, 70), SL_EFENCED);
    CHECK(strstr(why, "join again") != NULL);
    CHECK_EQ(beat(&a, 70), SL_OK);
    CHECK_EQ(beat(&c, 70), SL_OK);
    CHECK_EQ(a.n_held + c.n_held, SHARDS);
    CHECK_EQ(sl_coord_leave(&eng, "s", "g", a.id), SL_OK);
    CHECK_EQ(sl_coord_leave(&eng, "s", "g", c.id), SL_OK);
    CHECK(!sl_coord_active(&eng, "s", "g"));
    CHECK_EQ(eng.coord_group_count, 0);
}

TEST(expired_member_is_fenced_and_its_shards_move)
{
    struct mem a, b;
    CHECK_EQ(join(&a, "", 1000), SL_OK);
    CHECK_EQ(join(&b, "", 1000), SL_OK);
    CHECK_EQ(beat(&a, 1001), SL_OK);
    CHECK_EQ(beat(&a, 1002), SL_OK);
    CHECK_EQ(beat(&b, 1003), SL_OK);
    CHECK_EQ(b.n_held, SHARDS / 2);
    /* a pauses (SIGSTOP); b keeps beating past a's session */
    sl_coord_tick(&eng, 1000 + SESSION - 1);
    CHECK(sl_coord_active(&eng, "s", "g"));
    CHECK_EQ(beat(&b, 1000 + SESSION - 1), SL_OK);
    sl_coord_tick(&eng, 1002 + SESSION);
    CHECK_EQ(beat(&b, 1002 + SESSION), SL_OK);
    CHECK_EQ(b.n_held, SHARDS);
    /* the zombie wakes: its commits and heartbeats are refused */
    CHECK_EQ(sl_coord_owns(&eng, "s", "g", a.id, a.held[0], why, sizeof(why)), SL_EFENCED);
    CHECK_EQ(beat(&a, 1003 + SESSION), SL_EFENCED);
    sl_coord_tick(&eng, 1000000);
    CHECK_EQ(eng.coord_group_count, 0);
}

TEST(static_member_keeps_its_shards_across_a_quick_restart)
{
    struct mem a, b, a2;
    CHECK_EQ(join(&a, "worker-a", 0), SL_OK);
    CHECK_EQ(join(&b, "worker-b", 0), SL_OK);
    CHECK_EQ(beat(&a, 1), SL_OK);
    CHECK_EQ(beat(&a, 2), SL_OK);
    CHECK_EQ(beat(&b, 3), SL_OK);
    uint64_t gen = b.gen;
    /* a restarts and joins again with its instance id */
    CHECK_EQ(join(&a2, "worker-a", 100), SL_OK);
    CHECK(strcmp(a2.id, a.id) != 0);
    CHECK_EQ(a2.n_held, a.n_held);
    CHECK(memcmp(a2.held, a.held, a.n_held * sizeof(uint32_t)) == 0);
    CHECK_EQ(a2.gen, gen); /* no rebalance */
    CHECK_EQ(beat(&a, 101), SL_EFENCED); /* the old incarnation is fenced */
    CHECK_EQ(sl_coord_owns(&eng, "s", "g", a.id, a.held[0], why, sizeof(why)), SL_EFENCED);
    CHECK_EQ(sl_coord_owns(&eng, "s", "g", a2.id, a2.held[0], why, sizeof(why)), SL_OK);
    sl_coord_tick(&eng, 10000000);
    CHECK_EQ(eng.coord_group_count, 0);
}

TEST(more_members_than_shards_and_bad_input)
{
    struct sl_coord_view v;
    struct sl_coord_join j = {.stream = "two", .group = "g2", .session_timeout_ms = SESSION};
    char ids[3][SL_COORD_ID_MAX];
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(sl_coord_join(&eng, &j, 0, &v, why, sizeof(why)), SL_OK);
        snprintf(ids[i], sizeof(ids[i]), "%s", v.member_id);
    }
    CHECK_EQ(v.n_shards, 0); /* the third waits: two shards */
    CHECK_EQ(v.members, 3);
    j.session_timeout_ms = 10;
    CHECK_EQ(sl_coord_join(&eng, &j, 0, &v, why, sizeof(why)), SL_EINVAL);
    CHECK(strstr(why, "session_timeout_ms") != NULL);
    j.session_timeout_ms = SESSION;
    j.stream = "nope";
    CHECK_EQ(sl_coord_join(&eng, &j, 0, &v, why, sizeof(why)), SL_ENOTFOUND);
    j.stream = "two";
    j.group = "";
    CHECK_EQ(sl_coord_join(&eng, &j, 0, &v, why, sizeof(why)), SL_EINVAL);
    j.group = "g2";
    j.instance_id = "has space";
    CHECK_EQ(sl_coord_join(&eng, &j, 0, &v, why, sizeof(why)), SL_EINVAL);
    uint32_t bogus = 7;
    CHECK_EQ(sl_coord_heartbeat(&eng, "two", "g2", ids[0], &bogus, 1, 1, &v, why, sizeof(why)),
             SL_EINVAL);
    CHECK_EQ(sl_coord_owns(&eng, "two", "nope", ids[0], 0, why, sizeof(why)), SL_EFENCED);
    sl_coord_tick(&eng, 10000000);
    CHECK_EQ(eng.coord_group_count, 0);
}

/* A member told it waits for shards heartbeats fast; eviction fences everyone. */
TEST(waiting_member_beats_fast_and_evict_fences)
{
    struct sl_coord_view v;
    struct sl_coord_join j = {.stream = "s", .group = "gw", .session_timeout_ms = SESSION};
    CHECK_EQ(sl_coord_join(&eng, &j, 0, &v, why, sizeof(why)), SL_OK);
    char a[SL_COORD_ID_MAX];
    snprintf(a, sizeof(a), "%s", v.member_id);
    CHECK_EQ(v.waiting, 0);
    CHECK(v.heartbeat_ms >= SL_COORD_BEAT_MIN_MS && v.heartbeat_ms <= SL_COORD_BEAT_MAX_MS);
    CHECK_EQ(sl_coord_join(&eng, &j, 1, &v, why, sizeof(why)), SL_OK);
    char b[SL_COORD_ID_MAX];
    snprintf(b, sizeof(b), "%s", v.member_id);
    CHECK_EQ(v.n_shards, 0);
    CHECK_EQ(v.waiting, SHARDS / 2); /* a still holds them */
    CHECK_EQ(v.heartbeat_ms, SL_COORD_BEAT_MIN_MS);
    CHECK(sl_coord_active(&eng, "s", "gw"));
    sl_coord_evict(&eng, "s", "gw");
    CHECK(!sl_coord_active(&eng, "s", "gw"));
    CHECK_EQ(sl_coord_heartbeat(&eng, "s", "gw", a, NULL, 0, 2, &v, why, sizeof(why)),
             SL_EFENCED);
    CHECK_EQ(sl_coord_owns(&eng, "s", "gw", b, 0, why, sizeof(why)), SL_EFENCED);
    CHECK_EQ(eng.coord_group_count, 0);
}

static int append_one(struct sl_stream *st, uint32_t shard)
{
    return test_append_one(&ring, &st->shards[shard]->ws, 0, 0);
}

static void on_commit(void *ctx, int err)
{
    *(int *)ctx = err == SL_OK ? 0 : -1;
}

static int commit(struct sl_stream *st, const char *group, uint32_t shard, uint64_t seq)
{
    struct sl_ckpt_store *cs = NULL;
    int rc = sl_catalog_ckpt(cat, st, &cs, why, sizeof(why));
    int left = 1;
    if (rc == SL_OK) {
        rc = sl_ckpt_commit(cs, group, shard, seq, 1, on_commit, &left);
    }
    while (rc == SL_OK && left > 0) {
        sl_ring_run(&ring, 1, 0);
    }
    return rc != SL_OK ? rc : left == 0 ? SL_OK : SL_EIO;
}

static int split(struct sl_stream *st, uint32_t shard)
{
    struct sl_catalog_reshard *r = calloc(1, sizeof(*r));
    struct sl_lineage next;
    uint32_t kids[2];
    int rc = r == NULL ? SL_ENOMEM : sl_lineage_copy(&next, &st->lineage);
    if (rc == SL_OK) {
        rc = sl_lineage_split(&next, shard, sl_lineage_middle(&next, shard), kids, why,
                              sizeof(why));
        rc = rc == SL_OK ? sl_catalog_reshard_prepare(cat, st, &next, r, why, sizeof(why)) : rc;
        sl_lineage_fini(&next);
    }
    if (rc == SL_OK) {
        rc = sl_catalog_reshard_commit(cat, st, r, why, sizeof(why));
    }
    if (r != NULL) {
        sl_catalog_reshard_free(r);
    }
    free(r);
    return rc;
}

static bool holds(const struct mem *m, uint32_t s)
{
    for (uint32_t i = 0; i < m->n_held; i++) {
        if (m->held[i] == s) {
            return true;
        }
    }
    return false;
}

/* #16: children are assigned only once every parent is read to its end and
 * that is committed; a finished parent is revoked; the group grows with the
 * stream's shards, without fencing its members. */
TEST(children_wait_for_their_parents_to_finish)
{
    struct sl_stream *st = sl_catalog_find(cat, "two");
    CHECK(st != NULL);
    CHECK_EQ(append_one(st, 0), SL_OK);
    struct sl_coord_join j = {.stream = "two", .group = "lg", .session_timeout_ms = SESSION};
    struct sl_coord_view v;
    struct mem m = {0};
    CHECK_EQ(sl_coord_join(&eng, &j, 1000, &v, why, sizeof(why)), SL_OK);
    take(&m, &v);
    CHECK(m.n_held == 2 && holds(&m, 0) && holds(&m, 1));
    CHECK_EQ(split(st, 0), SL_OK); /* 0 -> 2, 3; shard 0 holds one record */
    struct sl_coord_view hv;
#define BEAT() \
    do { \
        CHECK_EQ(sl_coord_heartbeat(&eng, "two", "lg", m.id, m.rev, m.n_rev, 2000, &hv, why, \
                                    sizeof(why)), SL_OK); \
        take(&m, &hv); \
    } while (0)
    BEAT();
    CHECK(m.n_held == 2 && holds(&m, 0) && holds(&m, 1) && m.n_rev == 0); /* not yet */
    CHECK_EQ(commit(st, "lg", 0, 1), SL_OK); /* read to its end, committed */
    BEAT();
    CHECK(m.n_rev == 1 && m.rev[0] == 0); /* finished: give it back */
    BEAT();                                 /* (released) */
    CHECK(m.n_held == 3 && !holds(&m, 0) && holds(&m, 1) && holds(&m, 2) && holds(&m, 3));
    /* an empty shard that closes is finished at once: its children follow */
    CHECK_EQ(split(st, 1), SL_OK); /* 1 -> 4, 5 */
    BEAT();
    CHECK(m.n_rev == 1 && m.rev[0] == 1);
    BEAT();
    CHECK(m.n_held == 4 && holds(&m, 2) && holds(&m, 3) && holds(&m, 4) && holds(&m, 5));
#undef BEAT
}


/* #16: ancestors retention removed count as finished, read or not: their descendants are
 * assigned and they are given back. */
TEST(a_gone_parent_is_finished)
{
    struct sl_stream *st = sl_catalog_find(cat, "two");
    CHECK(st != NULL && st->shard_count == 6 && !st->lineage.shard[2].closed);
    CHECK_EQ(append_one(st, 2), SL_OK);
    CHECK_EQ(split(st, 2), SL_OK); /* 2 -> 6, 7; shard 2 holds a record nobody read */
    struct sl_coord_join j = {.stream = "two", .group = "gg", .session_timeout_ms = SESSION};
    struct sl_coord_view v, hv;
    struct mem m = {0};
    CHECK_EQ(sl_coord_join(&eng, &j, 1000, &v, why, sizeof(why)), SL_OK);
    take(&m, &v);
    /* shard 0's record is unread by this group: it holds 0, not 0's descendants 2, 6, 7 */
    CHECK(holds(&m, 0) && !holds(&m, 2) && !holds(&m, 6) && !holds(&m, 7));
    uint64_t keep = (uint64_t)st->retention_hours * 3600000u;
    CHECK_EQ(sl_catalog_retire(cat, st, st->lineage.shard[2].closed_ms + keep), 3u); /* 0, 1, 2 */
    for (int i = 0; i < 2; i++) {
        CHECK_EQ(sl_coord_heartbeat(&eng, "two", "gg", m.id, m.rev, m.n_rev, 2000, &hv, why,
                                    sizeof(why)), SL_OK);
        take(&m, &hv);
    }
    CHECK(m.n_held == 5 && !holds(&m, 0) && holds(&m, 3) && holds(&m, 4) && holds(&m, 5) &&
          holds(&m, 6) && holds(&m, 7));
}

int main(void)
{
    if (setup() != 0) {
        fprintf(stderr, "setup failed: %s\n", why);
        return 1;
    }
    RUN(cooperative_join_and_leave);
    RUN(expired_member_is_fenced_and_its_shards_move);
    RUN(static_member_keeps_its_shards_across_a_quick_restart);
    RUN(more_members_than_shards_and_bad_input);
    RUN(waiting_member_beats_fast_and_evict_fences);
    RUN(children_wait_for_their_parents_to_finish);
    RUN(a_gone_parent_is_finished);
    teardown();
    TEST_END();
}
