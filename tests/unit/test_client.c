/* test_client.c - unit tests for the pure parts of libsluice (no broker needed).
 *
 * Covers: sluice_position_parse (oldest, latest, seq:N, after:N, time:MS, time:ISO8601, and
 * rejected forms); sluice_time_parse_iso8601 (UTC, offsets, fractions, leap days, invalid
 * dates); and the partitioner the producer routes by (common/partition.h): every hash
 * lands in the shard whose inclusive range holds it, ranges tile the 64-bit space.
 *
 * client/position.c depends only on common/error.h, so it is compiled in here directly:
 * sl_unit_test links sl_storage and sl_common, not the client library.
 */
#include "client/position.c"

#include "common/partition.h"

#include "tests/unit/test.h"

TEST(position_keywords)
{
    struct sluice_position p;
    CHECK_EQ(sluice_position_parse("oldest", &p), SL_OK);
    CHECK_EQ(p.kind, SLUICE_TRIM_HORIZON);
    CHECK_EQ(sluice_position_parse("latest", &p), SL_OK);
    CHECK_EQ(p.kind, SLUICE_LATEST);
    CHECK_EQ(sluice_position_parse("seq:42", &p), SL_OK);
    CHECK_EQ(p.kind, SLUICE_AT_SEQUENCE);
    CHECK_EQ(p.seq, 42);
    CHECK_EQ(sluice_position_parse("after:0", &p), SL_OK);
    CHECK_EQ(p.kind, SLUICE_AFTER_SEQUENCE);
    CHECK_EQ(p.seq, 0);
    CHECK(sluice_position_parse("seq:18446744073709551615", &p) == SL_OK && p.seq == UINT64_MAX);
}

TEST(position_rejects)
{
    struct sluice_position p = {.kind = SLUICE_LATEST, .seq = 7};
    const char *bad[] = {"",       "old",
                         "seq:",   "seq:-1",
                         "seq:1x", "seq: 1",
                         "after:", "seq:18446744073709551616",
                         "time:",  "time:yesterday",
                         "SEQ:1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK_EQ(sluice_position_parse(bad[i], &p), SL_EINVAL);
    }
    CHECK_EQ(p.kind, SLUICE_LATEST); /* untouched on error */
    CHECK_EQ(p.seq, 7);
}

TEST(position_time)
{
    struct sluice_position p;
    CHECK_EQ(sluice_position_parse("time:1700000000123", &p), SL_OK);
    CHECK_EQ(p.kind, SLUICE_AT_TIMESTAMP);
    CHECK_EQ(p.time_ms, 1700000000123ll);
    CHECK_EQ(sluice_position_parse("time:2023-11-14T22:13:20Z", &p), SL_OK);
    CHECK_EQ(p.time_ms, 1700000000000ll);
}

TEST(iso8601_forms)
{
    uint64_t ms = 0;
    CHECK_EQ(sluice_time_parse_iso8601("1970-01-01T00:00:00Z", &ms), SL_OK);
    CHECK_EQ(ms, 0);
    CHECK_EQ(sluice_time_parse_iso8601("2023-11-14T22:13:20.5Z", &ms), SL_OK);
    CHECK_EQ(ms, 1700000000500ll);
    CHECK_EQ(sluice_time_parse_iso8601("2023-11-14T22:13:20.123456Z", &ms), SL_OK);
    CHECK_EQ(ms, 1700000000123ll);
    CHECK_EQ(sluice_time_parse_iso8601("2023-11-15T00:13:20+02:00", &ms), SL_OK);
    CHECK_EQ(ms, 1700000000000ll);
    CHECK_EQ(sluice_time_parse_iso8601("2023-11-14T17:13:20-0500", &ms), SL_OK);
    CHECK_EQ(ms, 1700000000000ll);
    CHECK_EQ(sluice_time_parse_iso8601("2023-11-14 22:13:20", &ms), SL_OK); /* no zone: UTC */
    CHECK_EQ(ms, 1700000000000ll);
    CHECK_EQ(sluice_time_parse_iso8601("2023-11-14T22:13Z", &ms), SL_OK);
    CHECK_EQ(ms, 1699999980000ll);
    CHECK_EQ(sluice_time_parse_iso8601("2024-02-29", &ms), SL_OK);
    CHECK_EQ(ms, 1709164800000ll);
}

TEST(iso8601_rejects)
{
    uint64_t ms = 0;
    const char *bad[] = {"2023-02-29",
                         "2023-13-01",
                         "2023-00-10",
                         "2023-01-32",
                         "2023-01-01T24:00:00Z",
                         "2023-01-01T10:60Z",
                         "2023-1-01",
                         "2023-01-01T10:00:00.Z",
                         "2023-01-01T10:00:00+25:00",
                         "2023-01-01T10:00:00Zjunk",
                         "1969-12-31T23:59:59Z",
                         "1900-02-29"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (sluice_time_parse_iso8601(bad[i], &ms) != SL_EINVAL) {
            fprintf(stderr, "accepted: %s\n", bad[i]);
            CHECK(0);
        }
    }
}

TEST(partition_ranges_tile)
{
    const uint32_t counts[] = {1, 2, 3, 4, 7, 16, 1000, 1024};
    for (size_t k = 0; k < sizeof(counts) / sizeof(counts[0]); k++) {
        uint32_t n = counts[k];
        uint64_t expect_start = 0;
        for (uint32_t s = 0; s < n; s++) {
            uint64_t a, b;
            sl_partition_range(s, n, &a, &b);
            CHECK(a == expect_start && a <= b);
            CHECK_EQ(sl_partition_shard(a, n), s);
            CHECK_EQ(sl_partition_shard(b, n), s);
            expect_start = b + 1;
        }
        CHECK(expect_start == 0); /* the last range ends at 2^64 - 1 (wrapped to 0) */
    }
}

TEST(partition_keys_route_into_range)
{
    char key[32];
    for (int i = 0; i < 10000; i++) {
        int len = snprintf(key, sizeof(key), "user-%d", i);
        uint64_t h = sl_partition_hash(key, (size_t)len);
        uint32_t s = sl_partition_shard(h, 7);
        uint64_t a, b;
        sl_partition_range(s, 7, &a, &b);
        CHECK(h >= a && h <= b);
    }
    /* Same key, same shard; the hash is XXH3-64 seed 0 of exactly the key bytes. */
    CHECK_EQ(sl_partition_hash("abc", 3), sl_partition_hash("abcd", 3));
}

int main(void)
{
    RUN(position_keywords);
    RUN(position_rejects);
    RUN(position_time);
    RUN(iso8601_forms);
    RUN(iso8601_rejects);
    RUN(partition_ranges_tile);
    RUN(partition_keys_route_into_range);
    TEST_END();
}
