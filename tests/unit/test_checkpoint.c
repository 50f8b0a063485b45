/* test_checkpoint.c - consumer-group checkpoints (storage/checkpoint.c)
 * through their public API.
 *
 * The test drives one io_uring loop directly (sl_ring_init, sl_ckpt_open on a
 * fresh nested directory under $TMPDIR or /var/tmp; callbacks count, the loop
 * runs until they have run) and damages the files (docs/FORMAT.md section 4)
 * with ordinary file calls only.
 *
 * Covers: commit then get (only durable values are served; the callback
 * never runs inside the commit); group commit (many commits before the loop
 * runs share one write and one fdatasync); close flushes staged commits;
 * close/reopen round trip and foreach order; a log cut at every byte of its
 * last record recovers the previous value and truncates the tail; a flipped
 * bit at every bit of the last record, and in a middle record, never serves
 * a wrong value; compaction with a small log_bytes_max, then reopen keeps
 * every value (also with a stale .snap.tmp), and so does a crash between the
 * snapshot rename and the log cut (new snapshot + old log); a damaged or cut
 * snapshot fails the open with SL_ECORRUPT; groups_max (also lowered below
 * what is on disk), pending_max and name-length checks; sl_ckpt_present. Not covered: a
 * failing write/fdatasync (SL_EFATAL), which needs fault injection.
 *
 * The descriptor budget (storage/statelog_park.c): 20 stores under a budget of 4
 * descriptors (two stores), written in turns and all at once: the budget holds in the
 * cache's count and in /proc/self/fd, stores are parked and reopened, each parked store
 * goes on appending at its log's end (every record of every round read back after a
 * reopen, the log exactly the records' size); a log cut, replaced or removed behind a
 * parked store's back fails its next commit (SL_EFATAL), the file not written; out of
 * descriptors (RLIMIT_NOFILE lowered) a reopen parks an idle store and retries, or fails
 * with SL_ELIMIT and nothing changed. unit_checkpoint_parked runs every case again with a
 * one-descriptor budget (SL_TEST_STATELOG_PARK=1): the store parks after each batch and
 * reopens at each commit.
 *
 * SLUICE_TEST_LOG=1 shows the store's own log lines.
 */
#include "storage/checkpoint.h"

#include "common/error.h"
#include "common/log.h"
#include "common/ring.h"
#include "storage/statelog.h"

#include "tests/unit/test.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static struct sl_ring g_ring;
static struct sl_statelog_cache g_cache; /* SL_TEST_STATELOG_PARK=1 */

struct fx {
    char root[1024];
    char dir[1200];
    char log[1300];
    char snap[1300];
    struct sl_ckpt_config cfg;
    struct sl_ckpt_store *cs;
};

struct waiter {
    int calls;
    int err;
    int order; /* value of g_order when called */
};

static int g_order;

static void on_commit(void *ctx, int err)
{
    struct waiter *w = ctx;
    w->calls++;
    w->err = err;
    w->order = g_order++;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static int fx_init(struct fx *f)
{
    memset(f, 0, sizeof(*f));
    const char *tmp = getenv("TMPDIR");
    snprintf(f->root, sizeof(f->root), "%s/sl_test_ckpt_XXXXXX",
             tmp != NULL && tmp[0] != '\0' ? tmp : "/var/tmp");
    if (mkdtemp(f->root) == NULL) {
        return -1;
    }
    snprintf(f->dir, sizeof(f->dir), "%s/streams/s1/groups", f->root);
    snprintf(f->log, sizeof(f->log), "%s/checkpoints.log", f->dir);
    snprintf(f->snap, sizeof(f->snap), "%s/checkpoints.snap", f->dir);
    sl_ckpt_config_default(&f->cfg);
    if (getenv("SL_TEST_STATELOG_PARK") != NULL) {
        /* unit_checkpoint_parked: every case with a budget below one store's
         * two descriptors, so the store parks after each batch */
        sl_statelog_cache_init(&g_cache, 1);
        f->cfg.cache = &g_cache;
    }
    return 0;
}

static void fx_fini(struct fx *f)
{
    sl_ckpt_close(f->cs);
    f->cs = NULL;
    nftw(f->root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int fx_open(struct fx *f)
{
    sl_ckpt_close(f->cs);
    f->cs = NULL;
    return sl_ckpt_open(&g_ring, f->dir, &f->cfg, &f->cs);
}

/* Commits and runs the loop until durable; returns the callback's error. */
static int commit_sync(struct fx *f, const char *group, uint32_t shard, uint64_t seq, uint64_t ms)
{
    struct waiter w = {0};
    int rc = sl_ckpt_commit(f->cs, group, shard, seq, ms, on_commit, &w);
    if (rc != SL_OK) {
        return rc;
    }
    while (w.calls == 0) {
        sl_ring_run(&g_ring, 1, 0);
    }
    sl_ring_run(&g_ring, 0, 0); /* the end of the tick: under a budget, a trim may park it */
    return w.err;
}

static uint64_t get_or(struct fx *f, const char *group, uint32_t shard, uint64_t dflt)
{
    uint64_t seq = 0, ms = 0;
    return sl_ckpt_get(f->cs, group, shard, &seq, &ms) == SL_OK ? seq : dflt;
}

static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static int read_file(const char *path, uint8_t *buf, size_t cap, size_t *len)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        return -1;
    }
    ssize_t n = read(fd, buf, cap);
    close(fd);
    if (n < 0) {
        return -1;
    }
    *len = (size_t)n;
    return 0;
}

static int write_file(const char *path, const uint8_t *buf, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        return -1;
    }
    ssize_t n = write(fd, buf, len);
    close(fd);
    return n == (ssize_t)len ? 0 : -1;
}

/* ---- cases -------------------------------------------------------------- */

/* sl_ckpt_present: what the broker asks before opening a stream's store at start-up. */
TEST(present_only_with_state)
{
    struct fx f;
    CHECK(fx_init(&f) == 0);
    CHECK(!sl_ckpt_present(f.dir)); /* no directory */
    CHECK_EQ(fx_open(&f), SL_OK);
    sl_ckpt_close(f.cs);
    f.cs = NULL;
    CHECK(!sl_ckpt_present(f.dir)); /* an empty log */
    CHECK_EQ(fx_open(&f), SL_OK);
    CHECK_EQ(commit_sync(&f, "g", 0, 5, 1), SL_OK);
    sl_ckpt_close(f.cs);
    f.cs = NULL;
    CHECK(sl_ckpt_present(f.dir));
    CHECK(truncate(f.log, 0) == 0);
    CHECK(!sl_ckpt_present(f.dir));
    CHECK(write_file(f.snap, (const uint8_t *)"x", 1) == 0); /* a snapshot: open (and judge) */
    CHECK(sl_ckpt_present(f.dir));
    fx_fini(&f);
}

TEST(commit_then_get)
{
    struct fx f;
    CHECK(fx_init(&f) == 0);
    CHECK_EQ(fx_open(&f), SL_OK);
    uint64_t seq = 0, ms = 0;
    CHECK_EQ(sl_ckpt_get(f.cs, "g", 0, &seq, &ms), SL_ENOTFOUND);
    struct waiter w = {0};
    CHECK_EQ(sl_ckpt_commit(f.cs, "g", 0, 42, 1000, on_commit, &w), SL_OK);
    CHECK_EQ(w.calls, 0);                                         /* never from inside the call */
    CHECK_EQ(sl_ckpt_get(f.cs, "g", 0, &seq, &ms), SL_ENOTFOUND); /* not durable yet */
    while (w.calls == 0) {
        sl_ring_run(&g_ring, 1, 0);
    }
    CHECK_EQ(w.calls, 1);
    CHECK_EQ(w.err, SL_OK);
    CHECK_EQ(sl_ckpt_get(f.cs, "g", 0, &seq, &ms), SL_OK);
    CHECK_EQ(seq, 42);
    CHECK_EQ(ms, 1000);
    /* Moving backwards (a replay) is allowed: the last commit wins. */
    CHECK_EQ(commit_sync(&f, "g", 0, 7, 2000), SL_OK);
    CHECK_EQ(get_or(&f, "g", 0, 0), 7);
    CHECK_EQ(sl_ckpt_get(f.cs, "g", 1, &seq, &ms), SL_ENOTFOUND);
    CHECK_EQ(sl_ckpt_get(f.cs, "h", 0, &seq, &ms), SL_ENOTFOUND);
    if (f.cfg.cache != NULL) { /* unit_checkpoint_parked: parked after a batch, reopened */
        CHECK_EQ(commit_sync(&f, "g", 0, 8, 3000), SL_OK);
        CHECK(g_cache.parks >= 2 && g_cache.unparks >= 1);
        CHECK_EQ(get_or(&f, "g", 0, 0), 8);
    }
    fx_fini(&f);
}

TEST(group_commit_shares_one_fsync)
{
    struct fx f;
    CHECK(fx_init(&f) == 0);
    CHECK_EQ(fx_open(&f), SL_OK);
    enum { N = 300 };
    static struct waiter w[N];
    memset(w, 0, sizeof(w));
    g_order = 0;
    char name[32];
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof(name), "group-%d", i % 7);
        CHECK_EQ(sl_ckpt_commit(f.cs, name, (uint32_t)(i % 5), (uint64_t)i, 1, on_commit, &w[i]),
                 SL_OK);
    }
    int done = 0;
    while (!done) {
        sl_ring_run(&g_ring, 1, 0);
        done = w[N - 1].calls > 0;
    }
    struct sl_ckpt_stats st;
    sl_ckpt_stats(f.cs, &st);
    CHECK_EQ(st.fsyncs, 1);
    CHECK_EQ(st.writes, 1);
    CHECK_EQ(st.records, N);
    CHECK_EQ(st.pending, 0);
    for (int i = 0; i < N; i++) {
        CHECK_EQ(w[i].calls, 1);
        CHECK_EQ(w[i].err, SL_OK);
        CHECK_EQ(w[i].order, i); /* in commit order */
    }
    /* The last commit of each key wins. */
    for (int i = N - 35; i < N; i++) {
        snprintf(name, sizeof(name), "group-%d", i % 7);
        CHECK_EQ(get_or(&f, name, (uint32_t)(i % 5), UINT64_MAX), i);
    }
    /* Commits made while a batch is in flight form the next batch. */
    struct waiter a = {0}, b = {0}, c = {0};
    CHECK_EQ(sl_ckpt_commit(f.cs, "x", 0, 1, 1, on_commit, &a), SL_OK);
    sl_ring_run(&g_ring, 0, 0); /* the write of "a" is issued */
    CHECK_EQ(sl_ckpt_commit(f.cs, "x", 0, 2, 1, on_commit, &b), SL_OK);
    CHECK_EQ(sl_ckpt_commit(f.cs, "x", 1, 3, 1, on_commit, &c), SL_OK);
    while (c.calls == 0) {
        sl_ring_run(&g_ring, 1, 0);
    }
    CHECK(a.calls == 1 && b.calls == 1);
    sl_ckpt_stats(f.cs, &st);
    CHECK(st.fsyncs <= 3);
    CHECK_EQ(get_or(&f, "x", 0, 0), 2);
    fx_fini(&f);
}

/* sl_ckpt_sync (a replica's barrier before it writes a control batch to its log): its
 * callback runs after every commit made before it is durable, in order, not counted as a
 * record; with nothing waiting it says so and never calls back. */
TEST(sync_is_a_barrier)
{
    struct fx f;
    CHECK(fx_init(&f) == 0);
    CHECK_EQ(fx_open(&f), SL_OK);
    g_order = 0;
    struct waiter a = {0}, b = {0}, s1 = {0}, c = {0}, s2 = {0}, idle = {0};
    CHECK(!sl_ckpt_sync(f.cs, on_commit, &idle)); /* nothing staged or in flight */
    CHECK_EQ(sl_ckpt_commit(f.cs, "g", 0, 1, 1, on_commit, &a), SL_OK);
    CHECK_EQ(sl_ckpt_commit(f.cs, "g", 1, 2, 1, on_commit, &b), SL_OK);
    CHECK(sl_ckpt_sync(f.cs, on_commit, &s1)); /* staged: completes with them */
    sl_ring_run(&g_ring, 0, 0);                /* their write is issued */
    CHECK_EQ(sl_ckpt_commit(f.cs, "g", 2, 3, 1, on_commit, &c), SL_OK);
    CHECK(sl_ckpt_sync(f.cs, on_commit, &s2)); /* after c */
    while (s2.calls == 0) {
        sl_ring_run(&g_ring, 1, 0);
    }
    CHECK(a.calls == 1 && b.calls == 1 && s1.calls == 1 && c.calls == 1 && s2.calls == 1);
    CHECK(a.order < b.order && b.order < s1.order && s1.order < c.order && c.order < s2.order);
    CHECK_EQ(s1.err, SL_OK);
    CHECK_EQ(idle.calls, 0);
    struct sl_ckpt_stats st;
    sl_ckpt_stats(f.cs, &st);
    CHECK_EQ(st.records, 3); /* the barriers are no records */
    /* in flight only: the barrier completes with the batch being written (unless the write
     * and its fsync were done within that one turn) */
    struct waiter d = {0}, s3 = {0};
    CHECK_EQ(sl_ckpt_commit(f.cs, "g", 0, 4, 1, on_commit, &d), SL_OK);
    sl_ring_run(&g_ring, 0, 0);
    if (sl_ckpt_sync(f.cs, on_commit, &s3)) {
        while (s3.calls == 0) {
            sl_ring_run(&g_ring, 1, 0);
        }
        CHECK(d.calls == 1 && d.order < s3.order);
    } else {
        CHECK_EQ(d.calls, 1); /* (it was durable already: nothing to wait for) */
    }
    CHECK(!sl_ckpt_sync(f.cs, on_commit, &idle));
    CHECK_EQ(idle.calls, 0);
    fx_fini(&f);
}

TEST(close_flushes_staged_commits)
{
    struct fx f;
    CHECK(fx_init(&f) == 0);
    CHECK_EQ(fx_open(&f), SL_OK);
    struct waiter w = {0};
    CHECK_EQ(sl_ckpt_commit(f.cs, "g", 3, 99, 5, on_commit, &w), SL_OK);
    sl_ckpt_close(f.cs);
    f.cs = NULL;
    CHECK_EQ(w.calls, 1);
    CHECK_EQ(w.err, SL_OK);
    CHECK_EQ(fx_open(&f), SL_OK);
    CHECK_EQ(get_or(&f, "g", 3, 0), 99);
    fx_fini(&f);
}

/* flush = interval: commits are answered once written, without an fdatasync each;
 * one follows within sync_interval_ms, and close makes everything durable. */
TEST(interval_mode_answers_after_write_and_syncs_later)
{
    struct fx f;
    CHECK(fx_init(&f) == 0);
    f.cfg.sync_interval_ms = 100;
    CHECK_EQ(fx_open(&f), SL_OK);
    struct sl_ckpt_stats st;
    sl_ckpt_stats(f.cs, &st);
    uint64_t fsyncs0 = st.fsyncs;
    enum { N = 50 };
    for (int i = 0; i < N; i++) {
        CHECK_EQ(commit_sync(&f, "g", (uint32_t)(i % 3), (uint64_t)i, 1), SL_OK);
    }
    sl_ckpt_stats(f.cs, &st);
    /* Fifty commits one after another: fifty writes, no fdatasync yet (the
     * timer has not expired), every commit answered. */
    CHECK(st.writes >= N);
    CHECK_EQ(st.fsyncs, fsyncs0);
    CHECK_EQ(get_or(&f, "g", (N - 1) % 3, 0), N - 1);
    /* The timer expires: one fdatasync covers them. */
    for (int i = 0; i < 40; i++) {
        sl_ring_run(&g_ring, 1, 10 * 1000 * 1000);
    }
    sl_ckpt_stats(f.cs, &st);
    CHECK_EQ(st.fsyncs, fsyncs0 + 1);
    /* Writes keep coming, closer together than the interval, for 350 ms: the
     * fdatasyncs still happen (at least two more). */
    for (int i = 0; i < 300; i++) {
        CHECK_EQ(commit_sync(&f, "h", 0, (uint64_t)i, 1), SL_OK);
        if (i % 10 == 0) {
            usleep(12000);
        }
    }
    sl_ckpt_stats(f.cs, &st);
    CHECK(st.fsyncs >= fsyncs0 + 2);
    /* Close right after a commit: the last write is made durable, the timer
     * cancelled (close does not wait for it). */
    CHECK_EQ(commit_sync(&f, "g", 9, 777, 1), SL_OK);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    sl_ckpt_close(f.cs);
    f.cs = NULL;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    CHECK(ms < 90.0);
    CHECK_EQ(fx_open(&f), SL_OK);
    CHECK_EQ(get_or(&f, "g", 9, 0), 777);
    CHECK_EQ(get_or(&f, "h", 0, 0), 299);
    fx_fini(&f);
}

struct seen {
    char names[16][8];
    uint32_t shards[16];
    uint64_t seqs[16];
    int n;
};

static void collect(void *ctx, const char *group, uint32_t shard, uint64_t seq, uint64_t ms)
{
    (void)ms;
    struct seen *s = ctx;
    if (s->n < 16) {
        snprintf(s->names[s->n], sizeof(s->names[0]), "%s", group);
        s->shards[s->n] = shard;
        s->seqs[s->n] = seq;
    }
    s->n++;
}

TEST(reopen_and_foreach_order)
{
    struct fx f;
    CHECK(fx_init(&f) == 0);
    CHECK_EQ(fx_open(&f), SL_OK);
    CHECK_EQ(commit_sync(&f, "beta", 2, 20, 1), SL_OK);
    CHECK_EQ(commit_sync(&f, "alpha", 1, 11, 2), SL_OK);
    CHECK_EQ(commit_sync(&f, "beta", 0, 22, 3), SL_OK);
    CHECK_EQ(commit_sync(&f, "gamma", 9, 99, 4), SL_OK);
    CHECK_EQ(commit_sync(&f, "alpha", 0, 10, 5), SL_OK);
    for (int round = 0; round < 2; round++) {
        CHECK_EQ(fx_open(&f), SL_OK);
        struct seen s;
        memset(&s, 0, sizeof(s));
        sl_ckpt_foreach(f.cs, NULL, collect, &s);
        CHECK_EQ(s.n, 5);
        const char *en[] = {"alpha", "alpha", "beta", "beta", "gamma"};
        const uint32_t es[] = {0, 1, 0, 2, 9};
        const uint64_t eq[] = {10, 11, 22, 20, 99};
        for (int i = 0; i < 5; i++) {
            CHECK(strcmp(s.names[i], en[i]) == 0);
            CHECK_EQ(s.shards[i], es[i]);
            CHECK_EQ(s.seqs[i], eq[i]);
        }
        memset(&s, 0, sizeof(s));
        sl_ckpt_foreach(f.cs, "beta", collect, &s);
        CHECK_EQ(s.n, 2);
        memset(&s, 0, sizeof(s));
        sl_ckpt_foreach(f.cs, "delta", collect, &s);
        CHECK_EQ(s.n, 0);
        uint64_t seq = 0, ms = 0;
        CHECK_EQ(sl_ckpt_get(f.cs, "gamma", 9, &seq, &ms), SL_OK);
        CHECK_EQ(ms, 4);
    }
    fx_fini(&f);
}

/* Two records on disk for "g"/0: 1 then 2. Returns the log length and the
 * last record's length. */
static int two_records(struct fx *f, long *len, long *last)
{
    if (fx_open(f) != SL_OK || commit_sync(f, "group-g", 0, 1, 10) != SL_OK) {
        return -1;
    }
    long first = file_size(f->log);
    if (commit_sync(f, "group-g", 0, 2, 20) != SL_OK) {
        return -1;
    }
    sl_ckpt_close(f->cs);
    f->cs = NULL;
    *len = file_size(f->log);
    *last = *len - first;
    return 0;
}

TEST(torn_tail_every_byte)
{
    struct fx f;
    CHECK(fx_init(&f) == 0);
    long len = 0, last = 0;
    CHECK(two_records(&f, &len, &last) == 0);
    CHECK_EQ(last, 8 + 7 + 20);
    uint8_t full[512];
    size_t n = 0;
    CHECK(read_file(f.log, full, sizeof(full), &n) == 0 && (long)n == len);
    for (long cut = len - last; cut <= len; cut++) {
        CHECK(write_file(f.log, full, (size_t)cut) == 0);
        CHECK_EQ(fx_open(&f), SL_OK);
        CHECK_EQ(get_or(&f, "group-g", 0, 0), cut == len ? 2 : 1);
        struct sl_ckpt_stats st;
        sl_ckpt_stats(f.cs, &st);
        CHECK_EQ(st.recovery_truncated_bytes, cut == len ? 0 : cut - (len - last));
        CHECK_EQ(st.log_bytes, cut == len ? len : len - last);
        /* The tail is cut on disk, and the log continues after it. */
        CHECK_EQ(file_size(f.log), cut == len ? len : len - last);
        CHECK_EQ(commit_sync(&f, "group-g", 1, 5, 30), SL_OK);
        CHECK_EQ(fx_open(&f), SL_OK);
        CHECK_EQ(get_or(&f, "group-g", 1, 0), 5);
        CHECK_EQ(get_or(&f, "group-g", 0, 0), cut == len ? 2 : 1);
    }
    fx_fini(&f);
}

TEST(flipped_bit_never_serves_a_wrong_value)
{
    struct fx f;
    CHECK(fx_init(&f) == 0);
    long len = 0, last = 0;
    CHECK(two_records(&f, &len, &last) == 0);
    uint8_t full[512], bad[512];
    size_t n = 0;
    CHECK(read_file(f.log, full, sizeof(full), &n) == 0 && (long)n == len);
    for (long bit = (len - last) * 8; bit < len * 8; bit++) {
        memcpy(bad, full, n);
        bad[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        CHECK(write_file(f.log, bad, n) == 0);
        CHECK_EQ(fx_open(&f), SL_OK);
        uint64_t seq = 0, ms = 0;
        CHECK_EQ(sl_ckpt_get(f.cs, "group-g", 0, &seq, &ms), SL_OK);
        CHECK_EQ(seq, 1);
        CHECK_EQ(ms, 10);
        struct seen s;
        memset(&s, 0, sizeof(s));
        sl_ckpt_foreach(f.cs, NULL, collect, &s);
        CHECK_EQ(s.n, 1); /* no record under a damaged name or shard */
        struct sl_ckpt_stats st;
        sl_ckpt_stats(f.cs, &st);
        CHECK_EQ(st.recovery_truncated_bytes, last);
    }
    /* A damaged middle record: it and what follows are dropped (the value
     * goes back, never to a wrong one). */
    CHECK(write_file(f.log, full, n) == 0);
    CHECK_EQ(fx_open(&f), SL_OK);
    CHECK_EQ(commit_sync(&f, "group-g", 0, 3, 30), SL_OK);
    sl_ckpt_close(f.cs);
    f.cs = NULL;
    CHECK(read_file(f.log, bad, sizeof(bad), &n) == 0);
    bad[len - last + 10] ^= 0x40; /* inside the group name of record 2 */
    CHECK(write_file(f.log, bad, n) == 0);
    CHECK_EQ(fx_open(&f), SL_OK);
    CHECK_EQ(get_or(&f, "group-g", 0, 0), 1);
    fx_fini(&f);
}

static uint64_t model_seq(int round, int g, int s)
{
    return (uint64_t)round * 1000 + (uint64_t)g * 10 + (uint64_t)s;
}

TEST(compaction_then_reopen)
{
    struct fx f;
    CHECK(fx_init(&f) == 0);
    f.cfg.log_bytes_max = 4096;
    CHECK_EQ(fx_open(&f), SL_OK);
    enum { G = 20, S = 4, ROUNDS = 12 };
    char name[32];
    for (int r = 0; r < ROUNDS; r++) {
        static struct waiter w[G * S];
        memset(w, 0, sizeof(w));
        for (int g = 0; g < G; g++) {
            for (int s = 0; s < S; s++) {
                snprintf(name, sizeof(name), "consumer-%02d", g);
                CHECK_EQ(sl_ckpt_commit(f.cs, name, (uint32_t)s, model_seq(r, g, s), (uint64_t)r,
                                        on_commit, &w[g * S + s]),
                         SL_OK);
            }
        }
        while (w[G * S - 1].calls == 0) {
            sl_ring_run(&g_ring, 1, 0);
        }
        for (int i = 0; i < G * S; i++) {
            CHECK_EQ(w[i].err, SL_OK);
        }
    }
    struct sl_ckpt_stats st;
    sl_ckpt_stats(f.cs, &st);
    CHECK(st.compactions >= 2);
    CHECK(st.log_bytes <= 4096 + (uint64_t)G * S * 40);
    CHECK(file_size(f.snap) > 0);
    /* A stale tmp from a crash mid-compaction is ignored and removed. */
    char tmp[1400];
    snprintf(tmp, sizeof(tmp), "%s.tmp", f.snap);
    CHECK(write_file(tmp, (const uint8_t *)"garbage", 7) == 0);
    for (int pass = 0; pass < 2; pass++) {
        CHECK_EQ(fx_open(&f), SL_OK);
        CHECK_EQ(file_size(tmp), -1);
        for (int g = 0; g < G; g++) {
            for (int s = 0; s < S; s++) {
                snprintf(name, sizeof(name), "consumer-%02d", g);
                uint64_t seq = 0, ms = 0;
                CHECK_EQ(sl_ckpt_get(f.cs, name, (uint32_t)s, &seq, &ms), SL_OK);
                CHECK_EQ(seq, model_seq(ROUNDS - 1, g, s));
                CHECK_EQ(ms, ROUNDS - 1);
            }
        }
        sl_ckpt_stats(f.cs, &st);
        CHECK_EQ(st.entries, G * S);
        CHECK_EQ(st.groups, G);
    }
    /* A log over the limit at open is compacted there. */
    sl_ckpt_close(f.cs);
    f.cs = NULL;
    f.cfg.log_bytes_max = 1u << 20;
    CHECK_EQ(fx_open(&f), SL_OK);
    for (int i = 0; i < 200; i++) {
        CHECK_EQ(commit_sync(&f, "consumer-00", 0, (uint64_t)i, 1), SL_OK);
    }
    sl_ckpt_close(f.cs);
    f.cs = NULL;
    f.cfg.log_bytes_max = 4096;
    CHECK_EQ(fx_open(&f), SL_OK);
    CHECK_EQ(file_size(f.log), 0);
    CHECK_EQ(get_or(&f, "consumer-00", 0, 0), 199);
    CHECK_EQ(get_or(&f, "consumer-19", 3, 0), model_seq(ROUNDS - 1, 19, 3));
    fx_fini(&f);
}

/* A crash after the snapshot's rename but before the log was cut: the new
 * snapshot plus the old log must give the same values. */
TEST(crash_between_snapshot_rename_and_log_cut)
{
    struct fx f;
    CHECK(fx_init(&f) == 0);
    f.cfg.log_bytes_max = 1u << 20;
    CHECK_EQ(fx_open(&f), SL_OK);
    for (int i = 0; i < 300; i++) {
        CHECK_EQ(commit_sync(&f, i % 3 ? "a" : "b", (uint32_t)(i % 4), (uint64_t)(300 - i), 1),
                 SL_OK);
    }
    sl_ckpt_close(f.cs);
    f.cs = NULL;
    static uint8_t old_log[64 * 1024];
    size_t n = 0;
    CHECK(read_file(f.log, old_log, sizeof(old_log), &n) == 0 && n > 4096);
    f.cfg.log_bytes_max = 4096;
    CHECK_EQ(fx_open(&f), SL_OK); /* compacts at open */
    uint64_t want[2][4];
    for (int s = 0; s < 4; s++) {
        want[0][s] = get_or(&f, "a", (uint32_t)s, 0);
        want[1][s] = get_or(&f, "b", (uint32_t)s, 0);
    }
    sl_ckpt_close(f.cs);
    f.cs = NULL;
    CHECK_EQ(file_size(f.log), 0);
    CHECK(write_file(f.log, old_log, n) == 0); /* the cut never happened */
    f.cfg.log_bytes_max = 1u << 20;
    CHECK_EQ(fx_open(&f), SL_OK);
    for (int s = 0; s < 4; s++) {
        CHECK_EQ(get_or(&f, "a", (uint32_t)s, 0), want[0][s]);
        CHECK_EQ(get_or(&f, "b", (uint32_t)s, 0), want[1][s]);
        CHECK(want[0][s] != 0 && want[1][s] != 0);
    }
    fx_fini(&f);
}

TEST(corrupt_snapshot_is_an_error)
{
    struct fx f;
    CHECK(fx_init(&f) == 0);
    f.cfg.log_bytes_max = 4096;
    CHECK_EQ(fx_open(&f), SL_OK);
    for (int i = 0; i < 200; i++) {
        CHECK_EQ(commit_sync(&f, i % 2 ? "odd" : "even", (uint32_t)(i % 3), (uint64_t)i, 1), SL_OK);
    }
    struct sl_ckpt_stats st;
    sl_ckpt_stats(f.cs, &st);
    CHECK(st.compactions >= 1);
    sl_ckpt_close(f.cs);
    f.cs = NULL;
    uint8_t good[4096], bad[4096];
    size_t n = 0;
    CHECK(read_file(f.snap, good, sizeof(good), &n) == 0 && n > 32);
    /* Every byte of the snapshot: one flipped bit is detected. */
    for (size_t i = 0; i < n; i++) {
        memcpy(bad, good, n);
        bad[i] ^= (uint8_t)(1u << (i % 8));
        CHECK(write_file(f.snap, bad, n) == 0);
        CHECK_EQ(fx_open(&f), SL_ECORRUPT);
        CHECK(f.cs == NULL);
    }
    /* Cut, empty. */
    CHECK(write_file(f.snap, good, n - 1) == 0);
    CHECK_EQ(fx_open(&f), SL_ECORRUPT);
    CHECK(write_file(f.snap, good, 0) == 0);
    CHECK_EQ(fx_open(&f), SL_ECORRUPT);
    /* Restored: everything is back. */
    CHECK(write_file(f.snap, good, n) == 0);
    CHECK_EQ(fx_open(&f), SL_OK);
    CHECK_EQ(get_or(&f, "odd", 199 % 3, 0), 199);
    CHECK_EQ(get_or(&f, "even", 198 % 3, 0), 198);
    fx_fini(&f);
}

TEST(groups_max_enforced)
{
    struct fx f;
    CHECK(fx_init(&f) == 0);
    f.cfg.groups_max = 3;
    CHECK_EQ(fx_open(&f), SL_OK);
    CHECK_EQ(commit_sync(&f, "a", 0, 1, 1), SL_OK);
    CHECK_EQ(commit_sync(&f, "b", 0, 1, 1), SL_OK);
    struct waiter w = {0};
    CHECK_EQ(sl_ckpt_commit(f.cs, "c", 0, 1, 1, on_commit, &w), SL_OK);
    /* "c" counts although not yet durable */
    CHECK_EQ(sl_ckpt_commit(f.cs, "d", 0, 1, 1, on_commit, &w), SL_ELIMIT);
    while (w.calls == 0) {
        sl_ring_run(&g_ring, 1, 0);
    }
    CHECK_EQ(w.calls, 1);
    CHECK_EQ(sl_ckpt_commit(f.cs, "d", 0, 1, 1, NULL, NULL), SL_ELIMIT);
    CHECK_EQ(commit_sync(&f, "a", 7, 2, 1), SL_OK); /* new shard, old group: fine */
    /* Lowered below what is on disk: all kept, new groups refused. */
    f.cfg.groups_max = 2;
    CHECK_EQ(fx_open(&f), SL_OK);
    CHECK_EQ(get_or(&f, "c", 0, 0), 1);
    CHECK_EQ(sl_ckpt_commit(f.cs, "d", 0, 1, 1, NULL, NULL), SL_ELIMIT);
    CHECK_EQ(commit_sync(&f, "c", 0, 5, 1), SL_OK);
    fx_fini(&f);
}

TEST(argument_and_pending_limits)
{
    struct fx f;
    CHECK(fx_init(&f) == 0);
    f.cfg.pending_max = 4;
    CHECK_EQ(fx_open(&f), SL_OK);
    char name[SL_CKPT_GROUP_NAME_MAX + 2];
    memset(name, 'n', sizeof(name));
    name[SL_CKPT_GROUP_NAME_MAX + 1] = '\0';
    CHECK_EQ(sl_ckpt_commit(f.cs, name, 0, 1, 1, NULL, NULL), SL_EINVAL); /* 129 bytes */
    CHECK_EQ(sl_ckpt_commit(f.cs, "", 0, 1, 1, NULL, NULL), SL_EINVAL);
    CHECK_EQ(sl_ckpt_commit(f.cs, NULL, 0, 1, 1, NULL, NULL), SL_EINVAL);
    name[SL_CKPT_GROUP_NAME_MAX] = '\0';
    CHECK_EQ(commit_sync(&f, name, 0, 1, 1), SL_OK); /* 128 bytes */
    for (int i = 0; i < 4; i++) {
        CHECK_EQ(sl_ckpt_commit(f.cs, "p", (uint32_t)i, 1, 1, NULL, NULL), SL_OK);
    }
    CHECK_EQ(sl_ckpt_commit(f.cs, "p", 9, 1, 1, NULL, NULL), SL_EAGAIN);
    struct sl_ckpt_stats st;
    sl_ckpt_stats(f.cs, &st);
    CHECK_EQ(st.pending, 4);
    CHECK_EQ(fx_open(&f), SL_OK); /* close flushes them */
    CHECK_EQ(get_or(&f, "p", 3, 0), 1);
    CHECK_EQ(get_or(&f, name, 0, 0), 1);
    f.cfg.groups_max = 0;
    struct sl_ckpt_store *cs = NULL;
    CHECK_EQ(sl_ckpt_open(&g_ring, f.dir, &f.cfg, &cs), SL_EINVAL);
    fx_fini(&f);
}

/* ---- the descriptor budget (storage/statelog_park.c) --------------------- */

#define BUDGET_STORES 20u
#define BUDGET_FILES  4u /* two stores' directory + log */
#define BUDGET_ROUNDS 5u
#define BUDGET_REC    30u /* a record of a 2-byte group name: 8 + 2 + 20 */

static uint32_t open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    uint32_t n = 0;
    if (d == NULL) {
        return 0;
    }
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        n += e->d_name[0] != '.';
    }
    closedir(d);
    return n - 1; /* (the DIR's own) */
}

struct many {
    char root[1024];
    char dir[BUDGET_STORES][1200];
    struct sl_ckpt_store *cs[BUDGET_STORES];
    struct sl_statelog_cache cache;
    struct sl_ckpt_config cfg;
};

static int many_open(struct many *m, uint32_t files_max)
{
    memset(m, 0, sizeof(*m));
    const char *tmp = getenv("TMPDIR");
    snprintf(m->root, sizeof(m->root), "%s/sl_test_ckpt_XXXXXX",
             tmp != NULL && tmp[0] != '\0' ? tmp : "/var/tmp");
    if (mkdtemp(m->root) == NULL) {
        return -1;
    }
    sl_statelog_cache_init(&m->cache, files_max);
    sl_ckpt_config_default(&m->cfg);
    m->cfg.cache = &m->cache;
    for (uint32_t i = 0; i < BUDGET_STORES; i++) {
        snprintf(m->dir[i], sizeof(m->dir[i]), "%s/streams/s%02u/groups", m->root, i);
        if (sl_ckpt_open(&g_ring, m->dir[i], &m->cfg, &m->cs[i]) != SL_OK) {
            return -1;
        }
    }
    return 0;
}

static void many_close(struct many *m)
{
    for (uint32_t i = 0; i < BUDGET_STORES; i++) {
        sl_ckpt_close(m->cs[i]);
        m->cs[i] = NULL;
    }
}

static void many_fini(struct many *m)
{
    many_close(m);
    nftw(m->root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Runs the loop until `n` waiters have run, then the deferred trims. */
static void wait_all(struct waiter *w, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        while (w[i].calls == 0) {
            sl_ring_run(&g_ring, 1, 0);
        }
    }
    sl_ring_run(&g_ring, 0, 0);
}

TEST(budget_holds_over_many_stores)
{
    struct many m;
    uint32_t fds0 = open_fds();
    CHECK(many_open(&m, BUDGET_FILES) == 0);
    /* opening twenty stores under a budget of two: parked as the next opened */
    CHECK(m.cache.files <= BUDGET_FILES);
    CHECK(open_fds() <= fds0 + BUDGET_FILES);
    CHECK(m.cache.parks >= BUDGET_STORES - 2);
    char group[8];
    for (uint32_t r = 0; r < BUDGET_ROUNDS; r++) {
        snprintf(group, sizeof(group), "r%u", r);
        if (r % 2 == 0) { /* in turns: one store in use at a time */
            for (uint32_t i = 0; i < BUDGET_STORES; i++) {
                struct waiter w = {0};
                CHECK_EQ(sl_ckpt_commit(m.cs[i], group, i, 100 * r + i, r, on_commit, &w), SL_OK);
                wait_all(&w, 1);
                CHECK_EQ(w.err, SL_OK);
                CHECK(m.cache.files <= BUDGET_FILES);
                CHECK(open_fds() <= fds0 + BUDGET_FILES);
            }
        } else { /* all at once: over the budget while in flight, back within it after */
            struct waiter w[BUDGET_STORES] = {{0}};
            for (uint32_t i = 0; i < BUDGET_STORES; i++) {
                CHECK_EQ(sl_ckpt_commit(m.cs[i], group, i, 100 * r + i, r, on_commit, &w[i]),
                         SL_OK);
            }
            CHECK(m.cache.files > BUDGET_FILES); /* (each store in use keeps its files) */
            wait_all(w, BUDGET_STORES);
            for (uint32_t i = 0; i < BUDGET_STORES; i++) {
                CHECK_EQ(w[i].err, SL_OK);
            }
            CHECK(m.cache.files <= BUDGET_FILES);
            CHECK(open_fds() <= fds0 + BUDGET_FILES);
        }
    }
    fprintf(stderr, "  %u stores, budget %u: %" PRIu64 " parks, %" PRIu64 " unparks\n",
            BUDGET_STORES, BUDGET_FILES, m.cache.parks, m.cache.unparks);
    CHECK(m.cache.unparks >= (BUDGET_ROUNDS - 1) * (BUDGET_STORES - 2));
    CHECK(m.cache.parks >= m.cache.unparks);
    /* every parked store went on at its log's end: nothing overwritten */
    for (uint32_t i = 0; i < BUDGET_STORES; i++) {
        struct sl_ckpt_stats st;
        sl_ckpt_stats(m.cs[i], &st);
        CHECK_EQ(st.log_bytes, BUDGET_ROUNDS * BUDGET_REC);
        char log[1300];
        snprintf(log, sizeof(log), "%s/checkpoints.log", m.dir[i]);
        CHECK_EQ(file_size(log), BUDGET_ROUNDS * BUDGET_REC);
    }
    many_close(&m);
    CHECK_EQ(m.cache.files, 0);
    CHECK(m.cache.head == NULL && m.cache.tail == NULL);
    CHECK(open_fds() <= fds0);
    /* reopened without a budget: every round's value of every store */
    m.cfg.cache = NULL;
    for (uint32_t i = 0; i < BUDGET_STORES; i++) {
        CHECK_EQ(sl_ckpt_open(&g_ring, m.dir[i], &m.cfg, &m.cs[i]), SL_OK);
        for (uint32_t r = 0; r < BUDGET_ROUNDS; r++) {
            snprintf(group, sizeof(group), "r%u", r);
            uint64_t seq = 0, ms = 0;
            CHECK_EQ(sl_ckpt_get(m.cs[i], group, i, &seq, &ms), SL_OK);
            CHECK_EQ(seq, 100 * r + i);
            CHECK_EQ(ms, r);
        }
    }
    many_fini(&m);
}

/* Store 0 parked (the others opened after it), its log damaged, then a commit. */
static int damaged_commit(struct many *m, const char *how)
{
    struct sl_ckpt_stats st;
    sl_ckpt_stats(m->cs[0], &st);
    if (!st.parked || st.log_bytes != 2 * BUDGET_REC) {
        return -1;
    }
    char log[1300], other[1300];
    snprintf(log, sizeof(log), "%s/checkpoints.log", m->dir[0]);
    snprintf(other, sizeof(other), "%s/other", m->dir[0]);
    uint8_t buf[2 * BUDGET_REC];
    size_t len = 0;
    if (strcmp(how, "cut") == 0) {
        if (truncate(log, BUDGET_REC) != 0) {
            return -1;
        }
    } else if (strcmp(how, "replaced") == 0) { /* same bytes, another file */
        if (read_file(log, buf, sizeof(buf), &len) != 0 || write_file(other, buf, len) != 0 ||
            rename(other, log) != 0) {
            return -1;
        }
    } else if (unlink(log) != 0) {
        return -1;
    }
    long before = file_size(log);
    int rc = sl_ckpt_commit(m->cs[0], "r9", 0, 9, 9, NULL, NULL);
    sl_ring_run(&g_ring, 0, 0);
    sl_ckpt_stats(m->cs[0], &st);
    /* refused at once, the store fatal, the file as it was left */
    if (rc != SL_EFATAL || st.state != SL_EFATAL || st.pending != 0 || file_size(log) != before) {
        fprintf(stderr, "  %s: rc %d state %d size %ld (was %ld)\n", how, rc, st.state,
                file_size(log), before);
        return -1;
    }
    /* still refused (never a write at a wrong offset), and the others unaffected */
    rc = sl_ckpt_commit(m->cs[0], "r9", 0, 10, 9, NULL, NULL);
    return rc == SL_EFATAL ? 0 : -1;
}

TEST(log_changed_while_parked_is_refused)
{
    static const char *const hows[] = {"cut", "replaced", "removed"};
    for (size_t k = 0; k < sizeof(hows) / sizeof(hows[0]); k++) {
        struct many m;
        CHECK(many_open(&m, BUDGET_FILES) == 0);
        for (uint32_t r = 0; r < 2; r++) {
            for (uint32_t i = 0; i < BUDGET_STORES; i++) {
                struct waiter w = {0};
                CHECK_EQ(sl_ckpt_commit(m.cs[i], r == 0 ? "r0" : "r1", 0, r, 0, on_commit, &w),
                         SL_OK);
                wait_all(&w, 1);
                CHECK_EQ(w.err, SL_OK);
            }
        }
        CHECK(damaged_commit(&m, hows[k]) == 0);
        struct waiter w = {0};
        CHECK_EQ(sl_ckpt_commit(m.cs[1], "r2", 0, 2, 0, on_commit, &w), SL_OK);
        wait_all(&w, 1);
        CHECK_EQ(w.err, SL_OK);
        many_fini(&m);
    }
}

/* Opens /dev/null into held[] until EMFILE: every descriptor below the limit taken. */
static void fds_fill(int *held, uint32_t cap, uint32_t *n)
{
    for (int fd; *n < cap && (fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0;) {
        held[(*n)++] = fd;
    }
}

TEST(out_of_descriptors_sheds_idle_stores)
{
    struct many m;
    CHECK(many_open(&m, 2 * BUDGET_FILES) == 0); /* four stores open at a time */
    for (uint32_t i = 0; i < BUDGET_STORES; i++) {
        struct waiter w = {0};
        CHECK_EQ(sl_ckpt_commit(m.cs[i], "g", 0, i, 0, on_commit, &w), SL_OK);
        wait_all(&w, 1);
    }
    struct sl_ckpt_stats st;
    sl_ckpt_stats(m.cs[0], &st);
    CHECK(st.parked);
    /* A soft limit a little above what is open, and every descriptor under it taken. */
    struct rlimit old, rl;
    CHECK(getrlimit(RLIMIT_NOFILE, &old) == 0);
    rl = old;
    rl.rlim_cur = open_fds() + 32u;
    if (rl.rlim_cur > old.rlim_cur || setrlimit(RLIMIT_NOFILE, &rl) != 0) {
        many_fini(&m);
        SKIP("cannot lower RLIMIT_NOFILE");
    }
    enum { HELD_MAX = 256 };
    int held[HELD_MAX];
    uint32_t n = 0;
    fds_fill(held, HELD_MAX, &n);
    /* store 0 needs two descriptors: idle stores are parked for them, once */
    uint64_t parks = m.cache.parks;
    struct waiter w0 = {0};
    int rc0 = sl_ckpt_commit(m.cs[0], "g", 0, 100, 0, on_commit, &w0);
    uint64_t shed = m.cache.parks - parks;
    /* the open stores all busy (a commit staged in each): nothing to shed for store 1 */
    fds_fill(held, HELD_MAX, &n);
    struct waiter w[BUDGET_STORES] = {{0}};
    bool staged[BUDGET_STORES] = {false};
    for (uint32_t i = 2; i < BUDGET_STORES; i++) {
        sl_ckpt_stats(m.cs[i], &st);
        staged[i] =
            !st.parked && sl_ckpt_commit(m.cs[i], "g", 0, 200 + i, 0, on_commit, &w[i]) == SL_OK;
    }
    sl_ckpt_stats(m.cs[1], &st);
    bool parked1 = st.parked;
    int rc1 = sl_ckpt_commit(m.cs[1], "h", 0, 101, 0, NULL, NULL);
    struct sl_ckpt_stats st1;
    sl_ckpt_stats(m.cs[1], &st1);
    while (n > 0) {
        close(held[--n]);
    }
    CHECK(setrlimit(RLIMIT_NOFILE, &old) == 0);
    CHECK_EQ(rc0, SL_OK);
    CHECK(shed >= 1);
    CHECK(parked1);
    CHECK_EQ(rc1, SL_ELIMIT); /* refused at once, nothing changed */
    CHECK(st1.parked && st1.state == SL_OK && st1.pending == 0 && st1.groups == 1);
    wait_all(&w0, 1);
    CHECK_EQ(w0.err, SL_OK);
    for (uint32_t i = 2; i < BUDGET_STORES; i++) {
        if (staged[i]) {
            wait_all(&w[i], 1);
            CHECK_EQ(w[i].err, SL_OK);
        }
    }
    /* with descriptors back, store 1 reopens */
    struct waiter w1 = {0};
    CHECK_EQ(sl_ckpt_commit(m.cs[1], "h", 0, 101, 0, on_commit, &w1), SL_OK);
    wait_all(&w1, 1);
    CHECK_EQ(w1.err, SL_OK);
    uint64_t seq = 0;
    CHECK_EQ(sl_ckpt_get(m.cs[0], "g", 0, &seq, NULL), SL_OK);
    CHECK_EQ(seq, 100);
    CHECK_EQ(sl_ckpt_get(m.cs[1], "h", 0, &seq, NULL), SL_OK);
    CHECK_EQ(seq, 101);
    many_fini(&m);
}

int main(void)
{
    const char *log = getenv("SLUICE_TEST_LOG");
    sl_log_set_level(log != NULL && log[0] == '1' ? SL_LOG_DEBUG : SL_LOG_OFF);
    char why[512] = "";
    if (sl_ring_probe(why, sizeof(why)) != SL_OK || sl_ring_init(&g_ring, 64) != SL_OK) {
        fprintf(stderr, "io_uring unavailable: %s\n", why);
        return 77;
    }
    RUN(present_only_with_state);
    RUN(commit_then_get);
    RUN(group_commit_shares_one_fsync);
    RUN(sync_is_a_barrier);
    RUN(close_flushes_staged_commits);
    RUN(reopen_and_foreach_order);
    RUN(torn_tail_every_byte);
    RUN(flipped_bit_never_serves_a_wrong_value);
    RUN(compaction_then_reopen);
    RUN(crash_between_snapshot_rename_and_log_cut);
    RUN(corrupt_snapshot_is_an_error);
    RUN(groups_max_enforced);
    RUN(argument_and_pending_limits);
    RUN(interval_mode_answers_after_write_and_syncs_later);
    RUN(budget_holds_over_many_stores);
    RUN(log_changed_while_parked_is_refused);
    RUN(out_of_descriptors_sheds_idle_stores);
    sl_ring_fini(&g_ring);
    TEST_END();
}
