/* test_dedup.c - the producer de-dup table of a shard (broker/engine/dedup.c).
 *
 * Covers: an empty table holds no memory, and producers without an id allocate none; the
 * first producer with an id allocates SL_DEDUP_SLOTS_MIN slots; a retry of an acknowledged
 * batch is a duplicate, the batch being appended answers EAGAIN, a failed one is forgotten;
 * the table doubles as producers come, remembering every one, up to SL_DEDUP_SLOTS; there
 * the least recently used producer is evicted (its retry is written again) and producers
 * with a batch being appended are not; the start-up rebuild re-learns producers from a
 * shard's log into an empty table, sized to fit.
 */
#include "test.h"

#include "broker/engine/dedup.h"
#include "broker/engine/seqgate.h"
#include "common/error.h"
#include "common/ring.h"
#include "storage/batch.h"
#include "storage/shard.h"

#include <ftw.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>


/* Begins and ends (successfully) batch `seq` of producer `pid`; returns begin's result. */
static int store(struct sl_dedup *d, uint64_t pid, uint64_t seq)
{
    struct sl_dedup_entry *e = NULL;
    int rc = sl_dedup_begin(d, pid, seq, false, &e);
    if (rc == SL_OK) {
        sl_dedup_end(d, pid, seq, SL_OK, seq * 10, 1);
    }
    return rc;
}

static bool is_retry(struct sl_dedup *d, uint64_t pid, uint64_t seq)
{
    struct sl_dedup_entry *e = NULL;
    int rc = sl_dedup_begin(d, pid, seq, false, &e);
    if (rc == SL_OK) { /* not remembered: undo the pending mark */
        sl_dedup_end(d, pid, seq, SL_EIO, 0, 0);
    }
    return rc == SL_EEXIST && e != NULL && e->base_seq == seq * 10;
}

TEST(empty_table_holds_no_memory)
{
    struct sl_dedup d;
    sl_dedup_init(&d);
    CHECK_EQ(sl_dedup_bytes(&d), 0);
    struct sl_dedup_entry *e = (struct sl_dedup_entry *)1;
    CHECK_EQ(sl_dedup_begin(&d, 0, 5, false, &e), SL_OK); /* no producer id: no de-dup */
    CHECK(e == NULL);
    sl_dedup_end(&d, 0, 5, SL_OK, 0, 1);
    CHECK_EQ(sl_dedup_bytes(&d), 0);
    sl_dedup_end(&d, 42, 1, SL_OK, 0, 1); /* an end without a begin: nothing */
    CHECK_EQ(sl_dedup_bytes(&d), 0);
    sl_dedup_fini(&d);
    sl_dedup_fini(&d);
}

/* Several batches of one producer in flight: taken in order, a resend of one
 * still in flight waits, a batch that skips ahead of the run is refused
 * (SL_ECONFLICT, resend in order), completions shrink the run from its
 * oldest end, a failure lets the failed batch be resent once the run drained. */
TEST(several_batches_in_flight)
{
    struct sl_dedup d;
    sl_dedup_init(&d);
    struct sl_dedup_entry *e = NULL;
    for (uint64_t s = 1; s <= 5; s++) {
        CHECK_EQ(sl_dedup_begin(&d, 7, s, false, &e), SL_OK);
    }
    CHECK(e != NULL && e->pending == 5 && e->pending_lo == 1 && e->pending_hi == 5);
    CHECK_EQ(sl_dedup_begin(&d, 7, 3, false, &e), SL_EAGAIN);   /* still being appended */
    CHECK_EQ(sl_dedup_begin(&d, 7, 7, false, &e), SL_ECONFLICT); /* skips 6 */
    CHECK_EQ(sl_dedup_begin(&d, 7, 8, false, &e), SL_ECONFLICT); /* held behind 7 */
    CHECK_EQ(sl_dedup_begin(&d, 7, 6, false, &e), SL_OK);        /* 6 was never refused */
    sl_dedup_end(&d, 7, 6, SL_EEXIST, 0, 0);              /* (ended at once: undo) */
    CHECK_EQ(sl_dedup_begin(&d, 7, 8, false, &e), SL_ECONFLICT); /* still behind 7 */
    CHECK_EQ(sl_dedup_begin(&d, 7, 7, false, &e), SL_OK);        /* 7 again: the hold ends */
    CHECK_EQ(e->hold, false);
    sl_dedup_end(&d, 7, 7, SL_EEXIST, 0, 0);
    sl_dedup_end(&d, 7, 1, SL_OK, 100, 2);
    sl_dedup_end(&d, 7, 2, SL_OK, 102, 2);
    CHECK_EQ(sl_dedup_begin(&d, 7, 2, false, &e), SL_EEXIST);
    CHECK(e->base_seq == 102 && e->count == 2);
    CHECK_EQ(sl_dedup_begin(&d, 7, 1, false, &e), SL_EEXIST); /* older: a duplicate too */
    /* 3 fails; 4 and 5 then fail on the owner (they follow a failed batch) */
    sl_dedup_end(&d, 7, 3, SL_EIO, 0, 0);
    CHECK_EQ(sl_dedup_begin(&d, 7, 3, false, &e), SL_ECONFLICT); /* 4, 5 still in flight */
    sl_dedup_end(&d, 7, 4, SL_ECONFLICT, 0, 0);
    sl_dedup_end(&d, 7, 5, SL_ECONFLICT, 0, 0);
    CHECK_EQ(e->pending, 0);
    for (uint64_t s = 3; s <= 5; s++) { /* resent in order */
        CHECK_EQ(sl_dedup_begin(&d, 7, s, false, &e), SL_OK);
    }
    /* the newest ended before its append (its records were all duplicates) */
    sl_dedup_end(&d, 7, 5, SL_EEXIST, 0, 0);
    CHECK(e->pending == 2 && e->pending_lo == 3);
    /* one in the middle ends first (it waited for staging space, then failed) */
    CHECK_EQ(sl_dedup_begin(&d, 7, 6, false, &e), SL_OK);
    sl_dedup_end(&d, 7, 4, SL_ECONFLICT, 0, 0);
    CHECK(e->pending == 2 && e->pending_lo == 3);
    CHECK_EQ(sl_dedup_begin(&d, 7, 4, false, &e), SL_ECONFLICT); /* 3 and 6 still in flight */
    sl_dedup_end(&d, 7, 3, SL_ECONFLICT, 0, 0);
    sl_dedup_end(&d, 7, 6, SL_ECONFLICT, 0, 0);
    CHECK_EQ(e->pending, 0);
    CHECK_EQ(sl_dedup_begin(&d, 7, 3, false, &e), SL_OK);
    CHECK_EQ(sl_dedup_begin(&d, 7, 4, false, &e), SL_OK);
    CHECK(e->hold == false && e->pending == 2);
    CHECK_EQ(sl_dedup_begin(&d, 7, 5, false, &e), SL_OK);
    CHECK_EQ(sl_dedup_begin(&d, 7, 6, false, &e), SL_OK);
    sl_dedup_end(&d, 7, 3, SL_OK, 104, 1);
    sl_dedup_end(&d, 7, 4, SL_OK, 105, 1);
    sl_dedup_end(&d, 7, 5, SL_OK, 105, 1);
    sl_dedup_end(&d, 7, 6, SL_OK, 106, 1);
    CHECK(e->pending == 0 && e->has_last && e->producer_seq == 6);
    /* nothing in flight: a producer that gave batches up goes on past them */
    CHECK_EQ(sl_dedup_begin(&d, 7, 9, false, &e), SL_OK);
    sl_dedup_end(&d, 7, 9, SL_OK, 107, 1);
    CHECK_EQ(sl_dedup_begin(&d, 7, 8, false, &e), SL_EEXIST);
    sl_dedup_fini(&d);
}

/* The owner's order gate: a batch resent on (closed, refused) holds its
 * producer's later batches back until it comes again; a failure the producer
 * does not resend on holds nothing; entries lapse; other producers pass. */
TEST(order_gate_after_a_failed_batch)
{
    struct sl_seqgate *g = NULL;
    CHECK_EQ(sl_seqgate_admit(&g, 7, 1, 1000), SL_OK);
    sl_seqgate_failed(&g, 7, 5, SL_ENOSPC, 1000); /* reported, not resent */
    CHECK(g == NULL);
    CHECK_EQ(sl_seqgate_admit(&g, 7, 6, 1000), SL_OK);
    sl_seqgate_failed(&g, 7, 6, SL_ECLOSED, 1000);
    sl_seqgate_failed(&g, 7, 7, SL_ECLOSED, 1000); /* keeps the earliest */
    CHECK_EQ(sl_seqgate_count(g), 1);
    CHECK_EQ(sl_seqgate_admit(&g, 7, 7, 1001), SL_ECONFLICT);
    CHECK_EQ(sl_seqgate_admit(&g, 8, 7, 1001), SL_OK); /* another producer */
    CHECK_EQ(sl_seqgate_admit(&g, 0, 9, 1001), SL_OK); /* no producer id */
    CHECK_EQ(sl_seqgate_admit(&g, 7, 4, 1001), SL_OK); /* older: keeps its place */
    CHECK_EQ(sl_seqgate_admit(&g, 7, 6, 1002), SL_OK); /* the resend clears it */
    CHECK_EQ(sl_seqgate_count(g), 0);
    CHECK_EQ(sl_seqgate_admit(&g, 7, 7, 1003), SL_OK);
    sl_seqgate_failed(&g, 9, 1, SL_EAGAIN, 2000);
    CHECK_EQ(sl_seqgate_admit(&g, 9, 2, 2000 + SL_SEQGATE_TTL_MS), SL_ECONFLICT);
    CHECK_EQ(sl_seqgate_admit(&g, 9, 2, 2001 + SL_SEQGATE_TTL_MS), SL_OK); /* lapsed */
    for (uint64_t pid = 1; pid <= SL_SEQGATE_MAX + 3; pid++) { /* bounded */
        sl_seqgate_failed(&g, pid, 10, SL_ECLOSED, 3000 + pid);
        CHECK(sl_seqgate_count(g) <= SL_SEQGATE_MAX);
    }
    CHECK_EQ(sl_seqgate_admit(&g, 1, 11, 4000), SL_OK); /* the oldest were dropped */
    CHECK_EQ(sl_seqgate_admit(&g, SL_SEQGATE_MAX + 3, 11, 4000), SL_ECONFLICT);
    sl_seqgate_free(&g);
    sl_seqgate_free(&g);
}

/* The retry of any of a producer's last SL_DEDUP_RECENT batches is answered with where it
 * was stored; older ones, and sequences it skipped, are duplicates without a position. */
TEST(recent_batches_keep_their_positions)
{
    struct sl_dedup d;
    sl_dedup_init(&d);
    struct sl_dedup_entry *e = NULL;
    for (uint64_t s = 1; s <= 12; s++) {
        if (s == 10) {
            continue; /* skipped: never stored */
        }
        CHECK_EQ(sl_dedup_begin(&d, 5, s, false, &e), SL_OK);
        sl_dedup_end(&d, 5, s, SL_OK, 1000 + s * 10, (uint32_t)s);
    }
    uint64_t base = 0;
    uint32_t count = 0;
    for (uint64_t s = 12; s >= 5; s--) {
        CHECK_EQ(sl_dedup_begin(&d, 5, s, false, &e), SL_EEXIST);
        bool known = sl_dedup_stored(e, s, &base, &count);
        CHECK_EQ(known, s != 10);
        if (known) {
            CHECK(base == 1000 + s * 10 && count == s);
        }
    }
    CHECK_EQ(sl_dedup_begin(&d, 5, 4, false, &e), SL_EEXIST);
    CHECK(!sl_dedup_stored(e, 4, &base, &count)); /* beyond the last 8 */
    sl_dedup_fini(&d);
}

/* In order: a batch that failed while earlier ones are in flight keeps its place - the
 * next one waits for its resend instead of following the run. */
TEST(in_order_failed_batch_keeps_its_place)
{
    struct sl_dedup d;
    sl_dedup_init(&d);
    struct sl_dedup_entry *e = NULL;
    CHECK_EQ(sl_dedup_begin(&d, 9, 1, true, &e), SL_OK);
    CHECK_EQ(sl_dedup_begin(&d, 9, 2, true, &e), SL_OK);
    sl_dedup_end(&d, 9, 2, SL_ECONFLICT, 0, 0);          /* 2 failed; 1 still in flight */
    CHECK_EQ(sl_dedup_begin(&d, 9, 3, true, &e), SL_ECONFLICT); /* not in 2's place */
    sl_dedup_end(&d, 9, 1, SL_OK, 100, 1);
    CHECK_EQ(sl_dedup_begin(&d, 9, 3, true, &e), SL_ECONFLICT); /* strict: 2 comes first */
    CHECK_EQ(sl_dedup_begin(&d, 9, 2, true, &e), SL_OK);
    CHECK_EQ(sl_dedup_begin(&d, 9, 3, true, &e), SL_OK);
    sl_dedup_end(&d, 9, 2, SL_OK, 101, 1);
    sl_dedup_end(&d, 9, 3, SL_OK, 102, 1);
    uint64_t base = 0;
    uint32_t count = 0;
    CHECK_EQ(sl_dedup_begin(&d, 9, 2, true, &e), SL_EEXIST);
    CHECK(sl_dedup_stored(e, 2, &base, &count) && base == 101);
    /* a batch whose records were all repeats (message de-dup ids) is done with nothing
     * stored: the next one follows it, and its retry is a duplicate of nothing */
    CHECK_EQ(sl_dedup_begin(&d, 9, 4, true, &e), SL_OK);
    sl_dedup_end(&d, 9, 4, SL_OK, 0, 0);
    CHECK_EQ(sl_dedup_begin(&d, 9, 5, true, &e), SL_OK);
    sl_dedup_end(&d, 9, 5, SL_OK, 103, 1);
    CHECK_EQ(sl_dedup_begin(&d, 9, 4, true, &e), SL_EEXIST);
    CHECK(sl_dedup_stored(e, 4, &base, &count) && count == 0);
    sl_dedup_fini(&d);
}

TEST(retries_pending_and_failures)
{
    struct sl_dedup d;
    sl_dedup_init(&d);
    CHECK_EQ(store(&d, 7, 1), SL_OK);
    CHECK_EQ(sl_dedup_bytes(&d), SL_DEDUP_SLOTS_MIN * sizeof(struct sl_dedup_entry));
    CHECK(is_retry(&d, 7, 1));
    struct sl_dedup_entry *e = NULL;
    CHECK_EQ(sl_dedup_begin(&d, 7, 0, false, &e), SL_EEXIST); /* an earlier one too */
    CHECK_EQ(sl_dedup_begin(&d, 7, 2, false, &e), SL_OK);
    CHECK_EQ(sl_dedup_begin(&d, 7, 2, false, &e), SL_EAGAIN); /* being appended */
    sl_dedup_end(&d, 7, 2, SL_EIO, 0, 0);              /* failed: a retry is written */
    CHECK_EQ(sl_dedup_begin(&d, 7, 2, false, &e), SL_OK);
    sl_dedup_end(&d, 7, 2, SL_OK, 20, 1);
    CHECK(is_retry(&d, 7, 2));
    sl_dedup_fini(&d);
    CHECK_EQ(sl_dedup_bytes(&d), 0);
}

TEST(grows_by_doubling_and_remembers_every_producer)
{
    struct sl_dedup d;
    sl_dedup_init(&d);
    size_t last = 0;
    uint32_t growths = 0;
    const uint32_t n = SL_DEDUP_SLOTS / 4 * 3 - 1; /* fits the cap without eviction */
    for (uint64_t p = 1; p <= n; p++) {
        CHECK_EQ(store(&d, p * 1000003u, 1), SL_OK);
        size_t now = sl_dedup_bytes(&d);
        if (now != last) {
            CHECK(last == 0 || now == 2 * last);
            growths++;
            last = now;
        }
    }
    CHECK_EQ(last, SL_DEDUP_SLOTS * sizeof(struct sl_dedup_entry));
    CHECK(growths >= 2);
    for (uint64_t p = 1; p <= n; p++) {
        CHECK(is_retry(&d, p * 1000003u, 1));
    }
    sl_dedup_fini(&d);
}

TEST(evicts_least_recently_used_at_the_cap)
{
    struct sl_dedup d;
    sl_dedup_init(&d);
    const uint32_t full = SL_DEDUP_SLOTS / 4 * 3;
    /* producer 1 stays pending all along: never evicted */
    struct sl_dedup_entry *e = NULL;
    CHECK_EQ(sl_dedup_begin(&d, 1, 1, false, &e), SL_OK);
    for (uint64_t p = 2; p <= full + 10; p++) {
        CHECK_EQ(store(&d, p, 1), SL_OK);
    }
    CHECK_EQ(sl_dedup_bytes(&d), SL_DEDUP_SLOTS * sizeof(struct sl_dedup_entry));
    /* the oldest acknowledged ones went, the newest stayed */
    CHECK(!is_retry(&d, 2, 1));
    CHECK(is_retry(&d, full + 10, 1));
    CHECK_EQ(sl_dedup_begin(&d, 1, 1, false, &e), SL_EAGAIN);
    sl_dedup_end(&d, 1, 1, SL_OK, 10, 1);
    CHECK(is_retry(&d, 1, 1));
    sl_dedup_fini(&d);
}

/* ---- the start-up rebuild ---------------------------------------------- */

static char root[64];

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void on_ack(void *ctx, int err, uint64_t base, uint32_t count)
{
    (void)base;
    (void)count;
    int *left = ctx;
    *left -= err == SL_OK ? 1 : 1000000;
}

TEST(rebuild_relearns_producers_into_an_empty_table)
{
    struct sl_ring ring;
    char why[256];
    if (sl_ring_probe(why, sizeof(why)) != SL_OK || sl_ring_init(&ring, 64) != SL_OK) {
        SKIP("no io_uring");
    }
    struct stat sb;
    snprintf(root, sizeof(root), "%s/sl-dedup-XXXXXX",
             stat("/dev/shm", &sb) == 0 ? "/dev/shm" : "/var/tmp");
    CHECK(mkdtemp(root) != NULL);
    struct sl_shard_config cfg;
    sl_shard_config_default(&cfg);
    cfg.write_buf_bytes = 64u << 10;
    struct sl_shard *s = NULL;
    CHECK_EQ(sl_shard_open(&ring, root, &cfg, &s), SL_OK);
    const uint32_t producers = 100;
    int left = (int)producers;
    uint8_t buf[512];
    for (uint32_t p = 1; p <= producers; p++) {
        struct sl_batch_builder bb;
        sl_batch_builder_init(&bb, buf, sizeof(buf));
        struct sl_record rec = {.value = "v", .value_len = 1};
        CHECK_EQ(sl_batch_builder_add(&bb, &rec), SL_OK);
        size_t len = 0;
        CHECK_EQ(sl_batch_builder_finish(&bb, SL_BATCH_CODEC_NONE, 1, NULL, NULL, 0, p, 3, &len),
                 SL_OK);
        CHECK_EQ(sl_shard_append(s, buf, len, on_ack, &left), SL_OK);
    }
    while (left > 0) {
        sl_ring_run(&ring, 1, 0);
    }
    CHECK_EQ(left, 0);
    sl_shard_close(s);
    CHECK_EQ(sl_shard_open(&ring, root, &cfg, &s), SL_OK);
    struct sl_dedup d;
    sl_dedup_init(&d);
    CHECK_EQ(sl_dedup_rebuild(&d, s), SL_OK);
    sl_shard_close(s);
    CHECK(sl_dedup_bytes(&d) >= producers * sizeof(struct sl_dedup_entry) * 4 / 3);
    CHECK(sl_dedup_bytes(&d) <= SL_DEDUP_SLOTS * sizeof(struct sl_dedup_entry));
    for (uint64_t p = 1; p <= producers; p++) {
        struct sl_dedup_entry *e = NULL;
        CHECK_EQ(sl_dedup_begin(&d, p, 3, false, &e), SL_EEXIST);
        CHECK_EQ(sl_dedup_begin(&d, p, 4, false, &e), SL_OK);
    }
    sl_dedup_fini(&d);
    nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    sl_ring_fini(&ring);
}

int main(void)
{
    RUN(empty_table_holds_no_memory);
    RUN(retries_pending_and_failures);
    RUN(several_batches_in_flight);
    RUN(order_gate_after_a_failed_batch);
    RUN(recent_batches_keep_their_positions);
    RUN(in_order_failed_batch_keeps_its_place);
    RUN(grows_by_doubling_and_remembers_every_producer);
    RUN(evicts_least_recently_used_at_the_cap);
    RUN(rebuild_relearns_producers_into_an_empty_table);
    TEST_END();
}
