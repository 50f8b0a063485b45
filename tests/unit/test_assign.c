/* test_assign.c - the consumer-group assignor (broker/engine/assign.c):
 * balance, stickiness, the least movement, members coming and going. */
#include "test.h"

#include "broker/engine/assign.h"

#include <stdint.h>

#define SHARDS_MAX 1024u

static uint32_t count_of(const uint32_t *a, uint32_t n, uint32_t member)
{
    uint32_t c = 0;
    for (uint32_t i = 0; i < n; i++) {
        c += a[i] == member;
    }
    return c;
}

/* Every shard owned, counts within floor/ceil; returns 0 if not. */
static int balanced(const uint32_t *a, uint32_t n, uint32_t m)
{
    for (uint32_t i = 0; i < n; i++) {
        if (a[i] >= m) {
            return 0;
        }
    }
    for (uint32_t j = 0; j < m; j++) {
        uint32_t c = count_of(a, n, j);
        if (c < n / m || c > (n + m - 1) / m) {
            return 0;
        }
    }
    return 1;
}

static uint32_t moves(const uint32_t *before, const uint32_t *after, uint32_t n)
{
    uint32_t k = 0;
    for (uint32_t i = 0; i < n; i++) {
        k += before[i] != after[i];
    }
    return k;
}

TEST(no_members_no_owners)
{
    uint32_t own[8], out[8];
    for (uint32_t i = 0; i < 8; i++) {
        own[i] = i % 3;
    }
    sl_assign_balance(8, own, 0, out);
    for (uint32_t i = 0; i < 8; i++) {
        CHECK_EQ(out[i], SL_ASSIGN_NONE);
    }
}

TEST(first_member_takes_all_then_joins_move_only_their_share)
{
    enum { N = 16 };
    uint32_t own[N], out[N];
    for (uint32_t i = 0; i < N; i++) {
        own[i] = SL_ASSIGN_NONE;
    }
    sl_assign_balance(N, own, 1, out);
    CHECK(balanced(out, N, 1));
    /* 1 -> 2 -> 3 -> 4 members: each join moves exactly what the newcomer gets */
    for (uint32_t m = 2; m <= 4; m++) {
        memcpy(own, out, sizeof(own));
        sl_assign_balance(N, own, m, out);
        CHECK(balanced(out, N, m));
        CHECK_EQ(moves(own, out, N), count_of(out, N, m - 1));
        for (uint32_t i = 0; i < N; i++) { /* nothing moves between old members */
            CHECK(out[i] == own[i] || out[i] == m - 1);
        }
    }
}

TEST(a_member_leaves_only_its_shards_move)
{
    enum { N = 16, M = 4 };
    uint32_t own[N], out[N];
    for (uint32_t i = 0; i < N; i++) {
        own[i] = i % M;
    }
    /* member 1 leaves: the others are renumbered 0, 1, 2 (2 -> 1, 3 -> 2) */
    uint32_t left[N];
    for (uint32_t i = 0; i < N; i++) {
        left[i] = own[i] == 1 ? SL_ASSIGN_NONE : own[i] == 0 ? 0 : own[i] - 1;
    }
    sl_assign_balance(N, left, M - 1, out);
    CHECK(balanced(out, N, M - 1));
    CHECK_EQ(moves(left, out, N), 4); /* the leaver's four, nothing else */
}

TEST(stable_when_nothing_changes)
{
    enum { N = 10, M = 3 };
    uint32_t own[N], out[N];
    for (uint32_t i = 0; i < N; i++) {
        own[i] = SL_ASSIGN_NONE;
    }
    sl_assign_balance(N, own, M, out);
    CHECK(balanced(out, N, M));
    memcpy(own, out, sizeof(own));
    sl_assign_balance(N, own, M, out);
    CHECK_EQ(moves(own, out, N), 0);
}

TEST(ceil_shares_go_to_those_holding_most)
{
    /* 7 shards, members 0 and 1; member 1 holds 5: it keeps 4 (the ceil), not 3 */
    uint32_t own[7] = {0, 0, 1, 1, 1, 1, 1}, out[7];
    sl_assign_balance(7, own, 2, out);
    CHECK(balanced(out, 7, 2));
    CHECK_EQ(count_of(out, 7, 1), 4);
    CHECK_EQ(moves(own, out, 7), 1);
}

TEST(more_members_than_shards)
{
    uint32_t own[3] = {0, 0, 0}, out[3];
    sl_assign_balance(3, own, 5, out);
    CHECK(balanced(out, 3, 5));
    CHECK_EQ(moves(own, out, 3), 2);
}

/* Random histories: the result is always balanced, in place works, and the
 * moves never exceed the lower bound (shards of leavers + excess over ceil). */
TEST(random_histories)
{
    uint64_t x = 0x9e3779b97f4a7c15ull;
    static uint32_t own[SHARDS_MAX], out[SHARDS_MAX], copy[SHARDS_MAX];
    for (int round = 0; round < 2000; round++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        uint32_t n = 1 + (uint32_t)(x % 200);
        uint32_t m = 1 + (uint32_t)((x >> 20) % 12);
        for (uint32_t i = 0; i < n; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            own[i] = (x % 5 == 0) ? SL_ASSIGN_NONE : (uint32_t)((x >> 8) % (m + 2)); /* some gone */
        }
        sl_assign_balance(n, own, m, out);
        CHECK(balanced(out, n, m));
        uint32_t held[16] = {0}, orphans = 0;
        for (uint32_t i = 0; i < n; i++) {
            if (own[i] < m) {
                held[own[i]]++;
            } else {
                orphans++;
            }
        }
        uint32_t ceil_ = (n + m - 1) / m, excess = 0;
        for (uint32_t j = 0; j < m; j++) {
            excess += held[j] > ceil_ ? held[j] - ceil_ : 0;
        }
        CHECK(moves(own, out, n) >= orphans + excess);
        CHECK(moves(own, out, n) <= orphans + excess + m); /* at most one per ceil share given away */
        memcpy(copy, own, n * sizeof(own[0]));
        sl_assign_balance(n, copy, m, copy); /* in place */
        CHECK(memcmp(copy, out, n * sizeof(out[0])) == 0);
    }
}

int main(void)
{
    RUN(no_members_no_owners);
    RUN(first_member_takes_all_then_joins_move_only_their_share);
    RUN(a_member_leaves_only_its_shards_move);
    RUN(stable_when_nothing_changes);
    RUN(ceil_shares_go_to_those_holding_most);
    RUN(more_members_than_shards);
    RUN(random_histories);
    TEST_END();
}
