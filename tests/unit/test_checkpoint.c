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
 * SLUICE_TEST_LOG=1 shows the store's own log lines.
 */
#include "storage/checkpoint.h"

#include "common/error.h"
#include "common/log.h"
#include "common/ring.h"

#include "tests/unit/test.h"

#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static struct sl_ring g_ring;

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
    sl_ring_fini(&g_ring);
    TEST_END();
}
