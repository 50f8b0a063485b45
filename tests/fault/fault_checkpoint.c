/* fault_checkpoint.c - the checkpoint store under injected I/O faults.
 *
 * Covers: storage/checkpoint.c with the ring's fault layer failing the Nth
 * log write or fdatasync (EIO, ENOSPC; once or persistent) or shortening
 * writes, N swept over a workload of 40 commits to 12 (group, shard) keys in
 * group-commit bursts. Each trial asserts: every accepted commit gets one
 * callback; after a failure the store is SL_EFATAL (stats.state), refuses
 * commits with SL_EFATAL and acknowledges nothing more; short writes are
 * transparent; sl_ckpt_get serves the last acknowledged value; after close
 * (still armed) + reopen (disarmed) every key holds its last acknowledged
 * value or a later committed one (never an older or a made-up one), and the
 * store takes commits again. Compaction is synchronous (plain syscalls) and
 * not injectable here. fault_io_checkpoint_parked (SL_TEST_STATELOG_PARK=1):
 * the same under a budget below one store (storage/statelog_park.c), so the
 * store parks whenever a burst is durable and reopens at the next commit.
 */
#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"
#include "common/ring.h"
#include "storage/checkpoint.h"
#include "storage/statelog.h"

#include "tests/unit/test.h"

#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#define COMMITS 40
#define KEYS 12
#define WAIT_NS_MAX (30ull * 1000 * 1000 * 1000)

#define DO(call)                                                                                   \
    do {                                                                                           \
        call;                                                                                      \
        if (test_cur_failed_) {                                                                    \
            return;                                                                                \
        }                                                                                          \
    } while (0)

static struct sl_ring g_ring;
static char g_root[1024];
static char g_dir[1100];

struct commit {
    uint32_t key;
    uint64_t seq;
    int rc;
    int done;
    int err;
    uint64_t event;
};

struct trial {
    struct sl_ckpt_store *cs;
    struct commit c[COMMITS + 4];
    uint32_t n;
    uint32_t pending;
    uint64_t events;
    uint64_t first_fail;
    bool ok_after_fail;
    uint32_t ok, failed;
};

static struct trial g_t;

static const char *group_of(uint32_t key)
{
    static const char *const g[3] = {"billing", "audit", "search"};
    return g[key % 3];
}

static uint32_t shard_of(uint32_t key)
{
    return key / 3;
}

static void cb(void *ctx, int err)
{
    struct commit *c = ctx;
    struct trial *t = &g_t;
    c->done++;
    c->err = err;
    c->event = ++t->events;
    t->pending--;
    if (err == SL_OK) {
        t->ok++;
        t->ok_after_fail = t->ok_after_fail || t->first_fail != 0;
    } else {
        t->failed++;
        t->first_fail = t->first_fail != 0 ? t->first_fail : c->event;
    }
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static void drain(struct trial *t)
{
    uint64_t t0 = sl_clock_mono_ns();
    while (t->pending > 0 || g_ring.inflight > 0 || g_ring.deferred_head != NULL) {
        CHECK(g_ring.inflight > 0 || g_ring.deferred_head != NULL); /* a lost callback */
        CHECK(sl_clock_mono_ns() - t0 < WAIT_NS_MAX);
        sl_ring_run(&g_ring, g_ring.inflight > 0 ? 1 : 0, 0);
    }
}

static void commit_one(struct trial *t, uint32_t key, uint64_t seq)
{
    struct commit *c = &t->c[t->n++];
    *c = (struct commit){.key = key, .seq = seq, .err = -1};
    c->rc = sl_ckpt_commit(t->cs, group_of(key), shard_of(key), seq, 1700000000000ull + seq, cb,
                           c);
    if (c->rc == SL_OK) {
        CHECK_EQ(c->done, 0);
        t->pending++;
    } else {
        CHECK_EQ(c->rc, SL_EFATAL);
    }
}

static struct sl_statelog_cache g_cache; /* SL_TEST_STATELOG_PARK=1 */

static void open_store(struct trial *t)
{
    struct sl_ckpt_config cfg;
    sl_ckpt_config_default(&cfg);
    if (getenv("SL_TEST_STATELOG_PARK") != NULL) {
        cfg.cache = &g_cache; /* (files_max 1: set in main) */
    }
    int rc = sl_ckpt_open(&g_ring, g_dir, &cfg, &t->cs);
    CHECK_EQ(rc, SL_OK);
}

/* The last acknowledged seq of `key` (0: none); commit seqs start at 1. */
static uint64_t last_acked(const struct trial *t, uint32_t key)
{
    uint64_t v = 0;
    for (uint32_t i = 0; i < t->n; i++) {
        if (t->c[i].key == key && t->c[i].rc == SL_OK && t->c[i].err == SL_OK) {
            v = t->c[i].seq > v ? t->c[i].seq : v;
        }
    }
    return v;
}

static bool was_committed(const struct trial *t, uint32_t key, uint64_t seq)
{
    for (uint32_t i = 0; i < t->n; i++) {
        if (t->c[i].key == key && t->c[i].rc == SL_OK && t->c[i].seq == seq) {
            return true;
        }
    }
    return false;
}

enum kind { K_WRITE_EIO, K_WRITE_ENOSPC, K_FSYNC_EIO, K_WRITE_SHORT, K_COUNT };
static const char *const kind_name[K_COUNT] = {"write EIO", "write ENOSPC", "fsync EIO",
                                               "write short"};

static void trial_body(struct trial *t, enum kind k, uint64_t nth, bool persistent,
                       struct sl_ring_fault_counts *fc)
{
    DO(open_store(t));
    struct sl_ring_faults f = {.op = k == K_FSYNC_EIO ? SL_FAULT_FSYNC : SL_FAULT_WRITE,
                               .nth = nth,
                               .err = k == K_WRITE_ENOSPC ? ENOSPC : (k == K_WRITE_SHORT ? 0 : EIO),
                               .persistent = persistent};
    sl_ring_faults_arm(&g_ring, &f);
    for (uint32_t i = 0; i < COMMITS;) {
        uint32_t burst = 1 + (i * 7 + 3) % 3;
        for (uint32_t j = 0; j < burst && i < COMMITS; j++, i++) {
            DO(commit_one(t, (i * 5) % KEYS, i + 1)); /* seqs grow per key */
        }
        DO(drain(t));
    }
    sl_ring_faults_counts(&g_ring, fc);
    struct sl_ckpt_stats st;
    sl_ckpt_stats(t->cs, &st);
    CHECK(!t->ok_after_fail);
    for (uint32_t i = 0; i < t->n; i++) {
        CHECK(t->c[i].rc != SL_OK || t->c[i].done == 1);
    }
    if (fc->injected == 0 || k == K_WRITE_SHORT) {
        CHECK_EQ(st.state, SL_OK);
        CHECK_EQ(t->ok, COMMITS);
    } else {
        CHECK_EQ(st.state, SL_EFATAL);
        CHECK(t->failed > 0);
        DO(commit_one(t, 0, COMMITS + 1));
        CHECK_EQ(t->c[t->n - 1].rc, SL_EFATAL);
    }
    for (uint32_t key = 0; key < KEYS; key++) { /* get serves the durable value */
        uint64_t v = 0, want = last_acked(t, key);
        int rc = sl_ckpt_get(t->cs, group_of(key), shard_of(key), &v, NULL);
        CHECK_EQ(rc, want > 0 ? SL_OK : SL_ENOTFOUND);
        CHECK_EQ(v, want);
    }
    sl_ckpt_close(t->cs); /* still armed: must finish */
    t->cs = NULL;
    sl_ring_faults_disarm(&g_ring);
    DO(open_store(t));
    for (uint32_t key = 0; key < KEYS; key++) {
        uint64_t v = 0, want = last_acked(t, key);
        int rc = sl_ckpt_get(t->cs, group_of(key), shard_of(key), &v, NULL);
        if (rc == SL_ENOTFOUND) {
            CHECK_EQ(want, 0); /* nothing acknowledged is lost */
            continue;
        }
        CHECK_EQ(rc, SL_OK);
        if (v < want || !was_committed(t, key, v)) {
            fprintf(stderr, "  key %u: %" PRIu64 " after reopen, last acknowledged %" PRIu64 "\n",
                    key, v, want);
        }
        CHECK(v >= want);
        CHECK(was_committed(t, key, v));
    }
    t->pending = 0;
    DO(commit_one(t, 1, COMMITS + 2));
    CHECK_EQ(t->c[t->n - 1].rc, SL_OK);
    DO(drain(t));
    CHECK_EQ(t->c[t->n - 1].err, SL_OK);
    sl_ckpt_close(t->cs);
    t->cs = NULL;
}

static bool trial(enum kind k, uint64_t nth, bool persistent, struct sl_ring_fault_counts *fc)
{
    struct trial *t = &g_t;
    memset(t, 0, sizeof(*t));
    memset(fc, 0, sizeof(*fc));
    nftw(g_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    int failed_before = test_cur_failed_;
    test_cur_failed_ = 0;
    trial_body(t, k, nth, persistent, fc);
    bool ok = !test_cur_failed_;
    test_cur_failed_ = failed_before || !ok;
    sl_ring_faults_disarm(&g_ring);
    if (t->cs != NULL) {
        sl_ckpt_close(t->cs);
        t->cs = NULL;
    }
    if (!ok) {
        fprintf(stderr, "  [%s, N=%" PRIu64 ", %s] FAILED (checks above)\n", kind_name[k], nth,
                persistent ? "persistent" : "once");
    }
    return ok;
}

static uint64_t g_ops[K_COUNT];

static void sweep(enum kind k, bool persistent)
{
    uint32_t bad = 0, hit = 0;
    for (uint64_t n = 1; n <= g_ops[k] + 1; n++) {
        struct sl_ring_fault_counts fc;
        bad += !trial(k, n, persistent, &fc);
        hit += fc.injected > 0;
    }
    fprintf(stderr, "  %s %s: N = 1..%" PRIu64 ", %u injected, %u failed\n", kind_name[k],
            persistent ? "persistent" : "once", g_ops[k] + 1, hit, bad);
    CHECK_EQ(bad, 0);
}

TEST(clean_workload_counts)
{
    struct sl_ring_fault_counts fc;
    CHECK(trial(K_WRITE_EIO, UINT64_MAX, false, &fc));
    g_ops[K_WRITE_EIO] = g_ops[K_WRITE_ENOSPC] = g_ops[K_WRITE_SHORT] = fc.seen;
    CHECK(trial(K_FSYNC_EIO, UINT64_MAX, false, &fc));
    g_ops[K_FSYNC_EIO] = fc.seen;
    fprintf(stderr, "  the workload queues %" PRIu64 " writes and %" PRIu64 " fsyncs\n",
            g_ops[K_WRITE_EIO], g_ops[K_FSYNC_EIO]);
    CHECK(g_ops[K_WRITE_EIO] > 4 && g_ops[K_FSYNC_EIO] > 4);
}

TEST(write_eio_once) { sweep(K_WRITE_EIO, false); }
TEST(write_eio_persistent) { sweep(K_WRITE_EIO, true); }
TEST(write_enospc_once) { sweep(K_WRITE_ENOSPC, false); }
TEST(write_enospc_persistent) { sweep(K_WRITE_ENOSPC, true); }
TEST(fsync_eio_once) { sweep(K_FSYNC_EIO, false); }
TEST(fsync_eio_persistent) { sweep(K_FSYNC_EIO, true); }
TEST(write_short_once) { sweep(K_WRITE_SHORT, false); }
TEST(write_short_persistent) { sweep(K_WRITE_SHORT, true); }

int main(void)
{
    const char *log = getenv("SLUICE_TEST_LOG");
    sl_log_set_level(log != NULL && log[0] == '1' ? SL_LOG_DEBUG : SL_LOG_OFF);
    char why[512] = "";
    if (sl_ring_probe(why, sizeof(why)) != SL_OK || sl_ring_init(&g_ring, 64) != SL_OK) {
        fprintf(stderr, "io_uring unavailable: %s\n", why);
        return 77;
    }
    const char *tmp = getenv("TMPDIR");
    snprintf(g_root, sizeof(g_root), "%s/sl_fault_ckpt_XXXXXX",
             tmp != NULL && tmp[0] != '\0' ? tmp : "/var/tmp");
    if (mkdtemp(g_root) == NULL) {
        fprintf(stderr, "mkdtemp: %s\n", strerror(errno));
        return 1;
    }
    snprintf(g_dir, sizeof(g_dir), "%s/groups", g_root);
    sl_statelog_cache_init(&g_cache, 1);
    RUN(clean_workload_counts);
    RUN(write_eio_once);
    RUN(write_eio_persistent);
    RUN(write_enospc_once);
    RUN(write_enospc_persistent);
    RUN(fsync_eio_once);
    RUN(fsync_eio_persistent);
    RUN(write_short_once);
    RUN(write_short_persistent);
    if (getenv("SL_TEST_STATELOG_PARK") != NULL) {
        fprintf(stderr, "parked mode: %" PRIu64 " parks, %" PRIu64 " unparks\n", g_cache.parks,
                g_cache.unparks);
        if (g_cache.unparks == 0) { /* the mode did not do what it is for */
            test_failed_++;
        }
    }
    nftw(g_root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    sl_ring_fini(&g_ring);
    TEST_END();
}
