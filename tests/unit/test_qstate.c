/* test_qstate.c - durable queue-group state (storage/qstate.c) through its
 * public API.
 *
 * The test drives one io_uring loop directly (sl_ring_init, sl_qstate_open on
 * a fresh nested directory under $TMPDIR or /var/tmp; callbacks count, the
 * loop runs until they have run) and damages the files (docs/FORMAT.md
 * section 6) with ordinary file calls only. State is compared through a text
 * dump built from the getters (definitions, floors, acked seqs probed over a
 * window, counts, counters).
 *
 * Covers: group create/delete/list and definition round trip; argument
 * errors; acks in and out of order advance the floor exactly when contiguous
 * (a random permutation of 10,000 acks ends at floor 10,000 with no range
 * left), range merging and next_unacked; acks are idempotent; delivery counts
 * set, cleared, ignored when acked, dropped by acks, kept across reopen; group
 * commit (many mutations before the loop runs share one write and one
 * fdatasync; callbacks in order, never inside the call); close flushes;
 * close/reopen preserves everything; a log cut at every byte of its last
 * record; a flipped bit at every bit of the last record, in a middle record
 * and in the header never gives a wrong state; compaction with a small
 * log_bytes_max (also with mutations staged while a write is in flight, a
 * stale .snap.tmp, and a crash between the snapshot rename and the log cut)
 * then reopen gives the same state; a damaged snapshot, or a log whose
 * snapshot is missing, fails the open with SL_ECORRUPT; ranges_max,
 * groups_max and pending_max; 1,000,000 in-order acks keep no range;
 * sl_qstate_present (no directory, the empty header, state, a torn header). Not
 * covered: a failing write/fdatasync (SL_EFATAL), which needs fault injection.
 *
 * The descriptor budget (storage/statelog_park.c): two stores under a budget of one,
 * mutated in turns, each parked while the other is used and reopened by its next
 * mutation, the state of both the same after a reopen. unit_qstate_parked runs every case
 * again with a budget below one store (SL_TEST_STATELOG_PARK=1): the store parks after
 * each batch and reopens at each mutation.
 *
 * SLUICE_TEST_LOG=1 shows the store's own log lines.
 */
#include "storage/qstate.h"

#include "common/error.h"
#include "common/log.h"
#include "common/ring.h"
#include "storage/statelog.h"

#include "tests/unit/test.h"

#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

static struct sl_ring g_ring;
static struct sl_statelog_cache g_cache; /* SL_TEST_STATELOG_PARK=1 */

struct fx {
    char root[1024];
    char dir[1200];
    char log[1300];
    char snap[1300];
    struct sl_qstate_config cfg;
    struct sl_qstate *qs;
};

struct waiter {
    int calls;
    int err;
    int order;
};

static int g_order;

static void on_done(void *ctx, int err)
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
    snprintf(f->root, sizeof(f->root), "%s/sl_test_qstate_XXXXXX",
             tmp != NULL && tmp[0] != '\0' ? tmp : "/var/tmp");
    if (mkdtemp(f->root) == NULL) {
        return -1;
    }
    snprintf(f->dir, sizeof(f->dir), "%s/streams/s1/queues", f->root);
    snprintf(f->log, sizeof(f->log), "%s/qstate.log", f->dir);
    snprintf(f->snap, sizeof(f->snap), "%s/qstate.snap", f->dir);
    sl_qstate_config_default(&f->cfg);
    if (getenv("SL_TEST_STATELOG_PARK") != NULL) {
        /* unit_qstate_parked: every case with a budget below one store's two
         * descriptors, so the store parks after each batch */
        sl_statelog_cache_init(&g_cache, 1);
        f->cfg.cache = &g_cache;
    }
    return 0;
}

static void fx_close(struct fx *f)
{
    sl_qstate_close(f->qs);
    f->qs = NULL;
}

static void fx_fini(struct fx *f)
{
    fx_close(f);
    nftw(f->root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int fx_open(struct fx *f)
{
    fx_close(f);
    return sl_qstate_open(&g_ring, f->dir, &f->cfg, &f->qs);
}

static void wait_for(struct waiter *w)
{
    while (w->calls == 0) {
        sl_ring_run(&g_ring, 1, 0);
    }
    sl_ring_run(&g_ring, 0, 0); /* the end of the tick: under a budget, a trim may park it */
}

/* Runs the loop until no mutation of the store is pending. */
static void drain(struct fx *f)
{
    struct sl_qstate_stats st;
    for (;;) {
        sl_qstate_stats(f->qs, &st);
        if (st.pending == 0) {
            return;
        }
        sl_ring_run(&g_ring, 1, 0);
    }
}

static void def_init(struct sl_qgroup_def *d, const char *name)
{
    memset(d, 0, sizeof(*d));
    snprintf(d->name, sizeof(d->name), "%s", name);
    d->visibility_timeout_ms = 30000;
    d->max_deliveries = 5;
    d->max_inflight = 100;
    d->created_ms = 1700000000000ull;
}

/* Creates `name` with `shards` shards starting at floor `floor0` + shard. */
static int create_sync(struct fx *f, const char *name, uint32_t shards, uint64_t floor0)
{
    struct sl_qgroup_def d;
    def_init(&d, name);
    uint64_t floors[16];
    for (uint32_t i = 0; i < shards && i < 16; i++) {
        floors[i] = floor0 + i;
    }
    struct waiter w = {0};
    int rc = sl_qstate_create_group(f->qs, &d, shards, floors, on_done, &w);
    if (rc != SL_OK) {
        return rc;
    }
    wait_for(&w);
    return w.err;
}

static int ack_sync(struct fx *f, const char *g, uint32_t shard, uint64_t first, uint64_t end)
{
    struct waiter w = {0};
    int rc = sl_qstate_ack(f->qs, g, shard, first, end, on_done, &w);
    if (rc != SL_OK) {
        return rc;
    }
    wait_for(&w);
    return w.err;
}

static int count_sync(struct fx *f, const char *g, uint32_t shard, uint64_t seq, uint32_t n)
{
    struct waiter w = {0};
    int rc = sl_qstate_set_count(f->qs, g, shard, seq, n, on_done, &w);
    if (rc != SL_OK) {
        return rc;
    }
    wait_for(&w);
    return w.err;
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
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fd, buf + n, cap - n);
        if (r <= 0) {
            close(fd);
            *len = n;
            return r < 0 ? -1 : 0;
        }
        n += (size_t)r;
    }
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

/* ---- state dump ------------------------------------------------------------ */

#define PROBE_WINDOW 1200u

struct dump {
    FILE *out;
    const struct sl_qstate *qs;
};

static void dump_count(void *ctx, uint64_t seq, uint32_t count)
{
    fprintf(ctx, " c%" PRIu64 "=%u", seq, count);
}

static void dump_group(void *ctx, const struct sl_qgroup_def *d)
{
    struct dump *du = ctx;
    FILE *o = du->out;
    fprintf(o,
            "G %s vis=%u md=%u mi=%u dls=%s ord=%d f=%s sk=%u ss=%" PRIu64 " st=%" PRIu64
            " cr=%" PRIu64 " end=%" PRIu64 "\n",
            d->name, d->visibility_timeout_ms, d->max_deliveries, d->max_inflight,
            d->dead_letter_stream, (int)d->ordered, d->filter != NULL ? d->filter : "(null)",
            d->start_kind, d->start_seq, d->start_time_ms, d->created_ms, d->end_time_ms);
    uint64_t dl = 0, fl = 0;
    sl_qstate_counters(du->qs, d->name, &dl, &fl);
    uint32_t n = sl_qstate_shard_count(du->qs, d->name);
    fprintf(o, " shards=%u dl=%" PRIu64 " fl=%" PRIu64 "\n", n, dl, fl);
    for (uint32_t s = 0; s < n; s++) {
        uint64_t floor = sl_qstate_floor(du->qs, d->name, s);
        fprintf(o, " S%u floor=%" PRIu64 " next=%" PRIu64 " acked:", s, floor,
                sl_qstate_next_unacked(du->qs, d->name, s, 0));
        for (uint64_t q = floor; q < floor + PROBE_WINDOW; q++) {
            if (sl_qstate_is_acked(du->qs, d->name, s, q)) {
                fprintf(o, " %" PRIu64, q);
            }
        }
        fprintf(o, "\n counts:");
        sl_qstate_foreach_count(du->qs, d->name, s, dump_count, o);
        fprintf(o, "\n");
    }
}

/* Returns an owned text dump of the whole state. */
static char *dump_state(const struct sl_qstate *qs)
{
    char *text = NULL;
    size_t len = 0;
    struct dump du = {.out = open_memstream(&text, &len), .qs = qs};
    if (du.out == NULL) {
        return NULL;
    }
    struct sl_qstate_stats st;
    sl_qstate_stats(qs, &st);
    fprintf(du.out, "groups=%u ranges=%" PRIu64 " counts=%" PRIu64 "\n", st.groups, st.ranges,
            st.counts);
    sl_qstate_foreach_group(qs, dump_group, &du);
    fclose(du.out);
    return text;
}

/* Reopens and checks the state is `want`. */
static int reopen_equal(struct fx *f, const char *want)
{
    if (fx_open(f) != SL_OK) {
        return -1;
    }
    char *got = dump_state(f->qs);
    int eq = got != NULL && strcmp(got, want) == 0;
    if (!eq) {
        fprintf(stderr, "--- want\n%s--- got\n%s", want, got != NULL ? got : "(null)");
    }
    free(got);
    return eq ? 0 : -1;
}

/* ---- cases -------------------------------------------------------------- */

struct names {
    char n[8][SL_QSTATE_NAME_MAX + 1];
    int count;
};

static void collect_name(void *ctx, const struct sl_qgroup_def *d)
{
    struct names *ns = ctx;
    if (ns->count < 8) {
        snprintf(ns->n[ns->count], sizeof(ns->n[0]), "%s", d->name);
    }
    ns->count++;
}

/* sl_qstate_present: what the broker asks before opening a stream's store at start-up. */
TEST(present_only_with_state)
{
    struct fx f;
    CHECK(fx_init(&f) == 0);
    CHECK(!sl_qstate_present(f.dir)); /* no directory */
    CHECK_EQ(fx_open(&f), SL_OK);
    fx_close(&f);
    CHECK(!sl_qstate_present(f.dir)); /* the header of an empty store */
    CHECK_EQ(fx_open(&f), SL_OK);
    struct sl_qgroup_def d;
    def_init(&d, "g");
    uint64_t floors[1] = {0};
    struct waiter w = {0};
    CHECK_EQ(sl_qstate_create_group(f.qs, &d, 1, floors, on_done, &w), SL_OK);
    wait_for(&w);
    fx_close(&f);
    CHECK(sl_qstate_present(f.dir));
    CHECK(truncate(f.log, 24) == 0); /* the header alone again */
    CHECK(!sl_qstate_present(f.dir));
    CHECK(truncate(f.log, 20) == 0); /* a torn header: open (and judge) */
    CHECK(sl_qstate_present(f.dir));
    fx_fini(&f);
}

TEST(group_create_delete_list)
{
    struct fx f;
    CHECK(fx_init(&f) == 0);
    CHECK_EQ(fx_open(&f), SL_OK);
    struct sl_qgroup_def d;
    def_init(&d, "workers");
    snprintf(d.dead_letter_stream, sizeof(d.dead_letter_stream), "orders.workers.dlq");
    d.ordered = true;
    d.filter = "{\"type\":[\"order\"]}";
    d.start_kind = SL_QSTART_AT_SEQUENCE;
    d.start_seq = 77;
    d.start_time_ms = 5;
    uint64_t floors[3] = {77, 0, 12};
    struct waiter w = {0};
    CHECK_EQ(sl_qstate_create_group(f.qs, &d, 3, floors, on_done, &w), SL_OK);
    CHECK_EQ(w.calls, 0); /* never from inside the call */
    const struct sl_qgroup_def *got = sl_qstate_group(f.qs, "workers");
    CHECK(got != NULL);                                                   /* visible at once */
    CHECK(got->filter != d.filter && strcmp(got->filter, d.filter) == 0); /* copied */
    CHECK_EQ(sl_qstate_floor(f.qs, "workers", 2), 12);
    wait_for(&w);
    CHECK_EQ(w.err, SL_OK);
    CHECK_EQ(sl_qstate_create_group(f.qs, &d, 3, floors, NULL, NULL), SL_EEXIST);
    CHECK_EQ(create_sync(&f, "alpha", 1, 0), SL_OK);
    CHECK_EQ(create_sync(&f, "zulu", 2, 100), SL_OK);
    struct names ns = {.count = 0};
    sl_qstate_foreach_group(f.qs, collect_name, &ns);
    CHECK_EQ(ns.count, 3);
    CHECK(strcmp(ns.n[0], "alpha") == 0 && strcmp(ns.n[1], "workers") == 0 &&
          strcmp(ns.n[2], "zulu") == 0);
    /* Bad arguments. */
    CHECK_EQ(sl_qstate_ack(f.qs, "alpha", 1, 0, 1, NULL, NULL), SL_EINVAL); /* shard */
    CHECK_EQ(sl_qstate_ack(f.qs, "alpha", 0, 5, 5, NULL, NULL), SL_EINVAL); /* empty */
    CHECK_EQ(sl_qstate_ack(f.qs, "nope", 0, 0, 1, NULL, NULL), SL_ENOTFOUND);
    CHECK_EQ(sl_qstate_set_count(f.qs, "nope", 0, 0, 1, NULL, NULL), SL_ENOTFOUND);
    CHECK_EQ(sl_qstate_add_counters(f.qs, "", 1, 1, NULL, NULL), SL_EINVAL);
    CHECK_EQ(sl_qstate_add_counters(f.qs, NULL, 1, 1, NULL, NULL), SL_EINVAL);
    d.start_kind = 5;
    snprintf(d.name, sizeof(d.name), "bad");
    CHECK_EQ(sl_qstate_create_group(f.qs, &d, 1, floors, NULL, NULL), SL_EINVAL);
    d.start_kind = 0;
    CHECK_EQ(sl_qstate_create_group(f.qs, &d, 0, floors, NULL, NULL), SL_EINVAL);
    CHECK_EQ(sl_qstate_create_group(f.qs, &d, SL_QSTATE_SHARDS_MAX + 1, floors, NULL, NULL),
             SL_EINVAL);
    CHECK_EQ(sl_qstate_create_group(f.qs, &d, 1, NULL, NULL, NULL), SL_EINVAL);
    static char big[SL_QSTATE_FILTER_MAX + 2];
    memset(big, 'x', sizeof(big) - 1);
    d.filter = big;
    CHECK_EQ(sl_qstate_create_group(f.qs, &d, 1, floors, NULL, NULL), SL_EINVAL);
    big[SL_QSTATE_FILTER_MAX] = '\0'; /* exactly the limit: fine */
    CHECK_EQ(sl_qstate_create_group(f.qs, &d, 1, floors, NULL, NULL), SL_OK);
    /* Delete; the name can be reused with fresh state. */
    CHECK_EQ(ack_sync(&f, "zulu", 1, 101, 150), SL_OK);
    struct waiter dw = {0};
    CHECK_EQ(sl_qstate_delete_group(f.qs, "zulu", on_done, &dw), SL_OK);
    CHECK(sl_qstate_group(f.qs, "zulu") == NULL);
    CHECK_EQ(sl_qstate_delete_group(f.qs, "zulu", NULL, NULL), SL_ENOTFOUND);
    wait_for(&dw);
    CHECK_EQ(dw.err, SL_OK);
    CHECK_EQ(create_sync(&f, "zulu", 2, 7), SL_OK);
    CHECK_EQ(sl_qstate_floor(f.qs, "zulu", 1), 8);
    char *want = dump_state(f.qs);
    CHECK(want != NULL);
    int eq = reopen_equal(&f, want);
    free(want);
    CHECK_EQ(eq, 0);
    got = sl_qstate_group(f.qs, "workers");
    CHECK(got != NULL && got->ordered && got->start_seq == 77 &&
          strcmp(got->dead_letter_stream, "orders.workers.dlq") == 0);
    CHECK(strcmp(got->filter, "{\"type\":[\"order\"]}") == 0);
    CHECK(sl_qstate_group(f.qs, "alpha")->filter == NULL);
    CHECK_EQ(strlen(sl_qstate_group(f.qs, "bad")->filter), SL_QSTATE_FILTER_MAX);
    if (f.cfg.cache != NULL) { /* unit_qstate_parked: parked after each batch, reopened */
        CHECK(g_cache.parks >= 2 && g_cache.unparks >= 2);
    }
    fx_fini(&f);
}

TEST(acks_advance_floor_only_when_contiguous)
{
    struct fx f;
    CHECK(fx_init(&f) == 0);
    CHECK_EQ(fx_open(&f), SL_OK);
    CHECK_EQ(create_sync(&f, "g", 2, 0), SL_OK);
    /* Merging: [10,20) [30,40) then [20,30) joins them; [0,10) reaches the floor. */
    CHECK_EQ(sl_qstate_ack(f.qs, "g", 0, 10, 20, NULL, NULL), SL_OK);
    CHECK_EQ(sl_qstate_ack(f.qs, "g", 0, 30, 40, NULL, NULL), SL_OK);
    CHECK_EQ(sl_qstate_floor(f.qs, "g", 0), 0);
    CHECK_EQ(sl_qstate_next_unacked(f.qs, "g", 0, 0), 0);
    CHECK_EQ(sl_qstate_next_unacked(f.qs, "g", 0, 10), 20);
    CHECK_EQ(sl_qstate_next_unacked(f.qs, "g", 0, 25), 25);
    CHECK(sl_qstate_is_acked(f.qs, "g", 0, 19) && !sl_qstate_is_acked(f.qs, "g", 0, 20));
    CHECK(sl_qstate_is_acked(f.qs, "g", 0, 30) && !sl_qstate_is_acked(f.qs, "g", 0, 40));
    struct sl_qstate_stats st;
    sl_qstate_stats(f.qs, &st);
    CHECK_EQ(st.ranges, 2);
    CHECK_EQ(sl_qstate_ack(f.qs, "g", 0, 20, 30, NULL, NULL), SL_OK);
    sl_qstate_stats(f.qs, &st);
    CHECK_EQ(st.ranges, 1);
    CHECK_EQ(sl_qstate_next_unacked(f.qs, "g", 0, 12), 40);
    CHECK_EQ(sl_qstate_ack(f.qs, "g", 0, 0, 10, NULL, NULL), SL_OK);
    CHECK_EQ(sl_qstate_floor(f.qs, "g", 0), 40);
    sl_qstate_stats(f.qs, &st);
    CHECK_EQ(st.ranges, 0);
    CHECK_EQ(sl_qstate_next_unacked(f.qs, "g", 0, 0), 40);
    /* Shard 1 (floor 1): a random permutation of 10,000 single acks. The
     * floor moves exactly when the acks below it are all in. */
    enum { N = 10000 };
    static uint64_t perm[N];
    static uint8_t done[N + 1];
    memset(done, 0, sizeof(done));
    for (uint64_t i = 0; i < N; i++) {
        perm[i] = i + 1;
    }
    uint64_t rng = 0x9E3779B97F4A7C15ull;
    for (uint32_t i = N - 1; i > 0; i--) {
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        uint32_t j = (uint32_t)((rng >> 33) % (i + 1));
        uint64_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    uint64_t model_floor = 1;
    for (uint32_t i = 0; i < N; i++) {
        CHECK_EQ(sl_qstate_ack(f.qs, "g", 1, perm[i], perm[i] + 1, NULL, NULL), SL_OK);
        done[perm[i] - 1] = 1;
        while (model_floor <= N && done[model_floor - 1]) {
            model_floor++;
        }
        CHECK_EQ(sl_qstate_floor(f.qs, "g", 1), model_floor);
        if (i % 997 == 0) {
            uint64_t probe = perm[(i * 7) % N];
            CHECK_EQ(sl_qstate_is_acked(f.qs, "g", 1, probe), done[probe - 1]);
            uint64_t want = probe;
            while (want <= N && done[want - 1]) {
                want++;
            }
            CHECK_EQ(sl_qstate_next_unacked(f.qs, "g", 1, probe), want);
        }
    }
    drain(&f);
    CHECK_EQ(sl_qstate_floor(f.qs, "g", 1), N + 1);
    sl_qstate_stats(f.qs, &st);
    CHECK_EQ(st.ranges, 0);
    CHECK_EQ(st.state, SL_OK);
    CHECK_EQ(fx_open(&f), SL_OK);
    CHECK_EQ(sl_qstate_floor(f.qs, "g", 1), N + 1);
    CHECK_EQ(sl_qstate_floor(f.qs, "g", 0), 40);
    fx_fini(&f);
}

TEST(ack_is_idempotent)
{
    struct fx f;
    CHECK(fx_init(&f) == 0);
    CHECK_EQ(fx_open(&f), SL_OK);
    CHECK_EQ(create_sync(&f, "g", 1, 100), SL_OK);
    CHECK_EQ(ack_sync(&f, "g", 0, 200, 210), SL_OK);
    char *a = dump_state(f.qs);
    CHECK(a != NULL);
    CHECK_EQ(ack_sync(&f, "g", 0, 200, 210), SL_OK); /* again */
    CHECK_EQ(ack_sync(&f, "g", 0, 203, 205), SL_OK); /* inside */
    CHECK_EQ(ack_sync(&f, "g", 0, 5, 100), SL_OK);   /* below the floor */
    CHECK_EQ(ack_sync(&f, "g", 0, 0, 101), SL_OK);   /* acks 100 only */
    CHECK_EQ(sl_qstate_floor(f.qs, "g", 0), 101);
    CHECK_EQ(ack_sync(&f, "g", 0, 0, 101), SL_OK);
    CHECK_EQ(sl_qstate_floor(f.qs, "g", 0), 101);
    CHECK_EQ(ack_sync(&f, "g", 0, 205, 215), SL_OK); /* overlaps the end */
    CHECK(sl_qstate_is_acked(f.qs, "g", 0, 214) && !sl_qstate_is_acked(f.qs, "g", 0, 215));
    CHECK(!sl_qstate_is_acked(f.qs, "g", 0, 199));
    struct sl_qstate_stats st;
    sl_qstate_stats(f.qs, &st);
    CHECK_EQ(st.ranges, 1);
    CHECK_EQ(ack_sync(&f, "g", 0, 101, 200), SL_OK);
    CHECK_EQ(sl_qstate_floor(f.qs, "g", 0), 215);
    CHECK_EQ(ack_sync(&f, "g", 0, 101, 200), SL_OK);
    CHECK_EQ(sl_qstate_floor(f.qs, "g", 0), 215);
    free(a);
    fx_fini(&f);
}

struct seen {
    uint64_t seq[16];
    uint32_t count[16];
    int n;
};

static void collect_count(void *ctx, uint64_t seq, uint32_t count)
{
    struct seen *s = ctx;
    if (s->n < 16) {
        s->seq[s->n] = seq;
        s->count[s->n] = count;
    }
    s->n++;
}

TEST(counts_set_survive_and_drop)
{
    struct fx f;
    CHECK(fx_init(&f) == 0);
    CHECK_EQ(fx_open(&f), SL_OK);
    CHECK_EQ(create_sync(&f, "g", 1, 0), SL_OK);
    CHECK_EQ(sl_qstate_count(f.qs, "g", 0, 5), 0);
    CHECK_EQ(count_sync(&f, "g", 0, 9, 1), SL_OK);
    CHECK_EQ(count_sync(&f, "g", 0, 5, 2), SL_OK);
    CHECK_EQ(count_sync(&f, "g", 0, 7, 3), SL_OK);
    CHECK_EQ(count_sync(&f, "g", 0, 20, 1), SL_OK);
    CHECK_EQ(count_sync(&f, "g", 0, 21, 4), SL_OK);
    CHECK_EQ(count_sync(&f, "g", 0, 5, 3), SL_OK); /* update */
    CHECK_EQ(count_sync(&f, "g", 0, 9, 0), SL_OK); /* cleared */
    CHECK_EQ(sl_qstate_count(f.qs, "g", 0, 5), 3);
    CHECK_EQ(sl_qstate_count(f.qs, "g", 0, 9), 0);
    struct waiter w = {0};
    CHECK_EQ(sl_qstate_add_counters(f.qs, "g", 2, 30, NULL, NULL), SL_OK);
    CHECK_EQ(sl_qstate_add_counters(f.qs, "g", 1, 0, on_done, &w), SL_OK);
    wait_for(&w);
    for (int round = 0; round < 2; round++) {
        CHECK_EQ(fx_open(&f), SL_OK); /* survive reopen */
        struct seen s = {.n = 0};
        sl_qstate_foreach_count(f.qs, "g", 0, collect_count, &s);
        CHECK_EQ(s.n, 4);
        CHECK(s.seq[0] == 5 && s.seq[1] == 7 && s.seq[2] == 20 && s.seq[3] == 21);
        CHECK(s.count[0] == 3 && s.count[1] == 3 && s.count[2] == 1 && s.count[3] == 4);
        uint64_t dl = 0, fl = 0;
        sl_qstate_counters(f.qs, "g", &dl, &fl);
        CHECK(dl == 3 && fl == 30);
    }
    /* Acked above the floor: the count inside goes; the floor doesn't move. */
    CHECK_EQ(ack_sync(&f, "g", 0, 20, 21), SL_OK);
    CHECK_EQ(sl_qstate_count(f.qs, "g", 0, 20), 0);
    CHECK_EQ(sl_qstate_count(f.qs, "g", 0, 21), 4);
    /* Ignored when acked. */
    CHECK_EQ(count_sync(&f, "g", 0, 20, 9), SL_OK);
    CHECK_EQ(sl_qstate_count(f.qs, "g", 0, 20), 0);
    /* The floor passes 5 and 7 (and the range at 20): their counts go. */
    CHECK_EQ(ack_sync(&f, "g", 0, 0, 20), SL_OK);
    CHECK_EQ(sl_qstate_floor(f.qs, "g", 0), 21);
    CHECK_EQ(sl_qstate_count(f.qs, "g", 0, 5), 0);
    CHECK_EQ(count_sync(&f, "g", 0, 3, 9), SL_OK); /* below the floor: ignored */
    struct sl_qstate_stats st;
    sl_qstate_stats(f.qs, &st);
    CHECK_EQ(st.counts, 1);
    CHECK_EQ(st.ranges, 0);
    CHECK_EQ(fx_open(&f), SL_OK);
    struct seen s = {.n = 0};
    sl_qstate_foreach_count(f.qs, "g", 0, collect_count, &s);
    CHECK_EQ(s.n, 1);
    CHECK(s.seq[0] == 21 && s.count[0] == 4);
    fx_fini(&f);
}

TEST(group_commit_shares_one_fsync)
{
    struct fx f;
    CHECK(fx_init(&f) == 0);
    CHECK_EQ(fx_open(&f), SL_OK);
    CHECK_EQ(create_sync(&f, "g", 4, 0), SL_OK);
    struct sl_qstate_stats st0, st;
    sl_qstate_stats(f.qs, &st0);
    enum { N = 400 };
    static struct waiter w[N];
    memset(w, 0, sizeof(w));
    g_order = 0;
    struct sl_qgroup_def d;
    def_init(&d, "h");
    uint64_t floor = 0;
    CHECK_EQ(sl_qstate_create_group(f.qs, &d, 1, &floor, on_done, &w[0]), SL_OK);
    for (int i = 1; i < N; i++) {
        uint32_t shard = (uint32_t)(i % 4);
        uint64_t seq = (uint64_t)(i / 4);
        int rc = 0;
        switch (i % 3) {
        case 0:
            rc = sl_qstate_ack(f.qs, "g", shard, seq * 2, seq * 2 + 1, on_done, &w[i]);
            break;
        case 1:
            rc = sl_qstate_set_count(f.qs, "g", shard, seq * 2 + 1, 2, on_done, &w[i]);
            break;
        default:
            rc = sl_qstate_add_counters(f.qs, "h", 1, 0, on_done, &w[i]);
            break;
        }
        CHECK_EQ(rc, SL_OK);
    }
    for (int i = 0; i < N; i++) {
        CHECK_EQ(w[i].calls, 0);
    }
    wait_for(&w[N - 1]);
    sl_qstate_stats(f.qs, &st);
    CHECK_EQ(st.writes - st0.writes, 1);
    CHECK_EQ(st.fsyncs - st0.fsyncs, 1);
    CHECK_EQ(st.records - st0.records, N);
    CHECK_EQ(st.pending, 0);
    for (int i = 0; i < N; i++) {
        CHECK_EQ(w[i].calls, 1);
        CHECK_EQ(w[i].err, SL_OK);
        CHECK_EQ(w[i].order, i); /* in call order */
    }
    /* Mutations made while a batch is in flight form the next batch. */
    struct waiter a = {0}, b = {0}, c = {0};
    CHECK_EQ(sl_qstate_add_counters(f.qs, "h", 0, 1, on_done, &a), SL_OK);
    sl_ring_run(&g_ring, 0, 0);
    CHECK_EQ(sl_qstate_add_counters(f.qs, "h", 0, 1, on_done, &b), SL_OK);
    CHECK_EQ(sl_qstate_add_counters(f.qs, "h", 0, 1, on_done, &c), SL_OK);
    wait_for(&c);
    CHECK(a.calls == 1 && b.calls == 1);
    sl_qstate_stats(f.qs, &st);
    CHECK(st.fsyncs - st0.fsyncs <= 3);
    /* close flushes what is staged */
    struct waiter z = {0};
    CHECK_EQ(sl_qstate_add_counters(f.qs, "h", 0, 100, on_done, &z), SL_OK);
    char *want = dump_state(f.qs);
    CHECK(want != NULL);
    fx_close(&f);
    CHECK_EQ(z.calls, 1);
    CHECK_EQ(z.err, SL_OK);
    int eq = reopen_equal(&f, want);
    free(want);
    CHECK_EQ(eq, 0);
    uint64_t dl = 0, fl = 0;
    sl_qstate_counters(f.qs, "h", &dl, &fl);
    CHECK_EQ(dl, N / 3);
    CHECK_EQ(fl, 103);
    fx_fini(&f);
}

/* A varied state: 3 groups, ranges, counts, counters. */
static int build_state(struct fx *f, int salt)
{
    char name[32];
    for (int g = 0; g < 3; g++) {
        snprintf(name, sizeof(name), "grp-%d-%d", salt, g);
        if (create_sync(f, name, 3, (uint64_t)g * 10) != SL_OK) {
            return -1;
        }
        for (uint32_t s = 0; s < 3; s++) {
            for (uint64_t q = 0; q < 60; q++) {
                uint64_t seq = (uint64_t)g * 10 + s + q;
                int rc = SL_OK;
                if ((q * 7 + s + (uint64_t)salt) % 3 == 0) {
                    rc = sl_qstate_ack(f->qs, name, s, seq, seq + 1 + q % 3, NULL, NULL);
                } else if (q % 5 == 1) {
                    rc =
                        sl_qstate_set_count(f->qs, name, s, seq, (uint32_t)(q % 4 + 1), NULL, NULL);
                }
                if (rc != SL_OK) {
                    return -1;
                }
            }
        }
        if (sl_qstate_add_counters(f->qs, name, (uint64_t)g, (uint64_t)salt, NULL, NULL) != SL_OK) {
            return -1;
        }
    }
    drain(f);
    return 0;
}

TEST(reopen_preserves_everything)
{
    struct fx f;
    CHECK(fx_init(&f) == 0);
    CHECK_EQ(fx_open(&f), SL_OK);
    CHECK(build_state(&f, 1) == 0);
    struct sl_qstate_stats st;
    sl_qstate_stats(f.qs, &st);
    CHECK(st.ranges > 10 && st.counts > 10);
    char *want = dump_state(f.qs);
    CHECK(want != NULL);
    int eq0 = reopen_equal(&f, want);
    int eq1 = reopen_equal(&f, want);
    free(want);
    CHECK_EQ(eq0, 0);
    CHECK_EQ(eq1, 0);
    fx_fini(&f);
}

/* A group's end time (a replay's, broker/engine/queue.h) is kept by the log
 * and by a snapshot; a group without one reads back 0, so older records
 * (no flag bit 3) read as before. */
TEST(end_time_survives_reopen_and_compaction)
{
    struct fx f;
    CHECK(fx_init(&f) == 0);
    CHECK_EQ(fx_open(&f), SL_OK);
    struct sl_qgroup_def d;
    def_init(&d, "replay-1");
    d.end_time_ms = 1700000012345ull;
    uint64_t floors[2] = {0, 0};
    struct waiter w = {0};
    CHECK_EQ(sl_qstate_create_group(f.qs, &d, 2, floors, on_done, &w), SL_OK);
    wait_for(&w);
    CHECK_EQ(w.err, SL_OK);
    CHECK_EQ(create_sync(&f, "plain", 1, 0), SL_OK);
    fx_close(&f);
    CHECK_EQ(fx_open(&f), SL_OK);
    CHECK(sl_qstate_group(f.qs, "replay-1") != NULL);
    CHECK(sl_qstate_group(f.qs, "replay-1")->end_time_ms == 1700000012345ull);
    CHECK(sl_qstate_group(f.qs, "plain")->end_time_ms == 0);
    char *want = dump_state(f.qs);
    CHECK(want != NULL);
    CHECK(strstr(want, "end=1700000012345") != NULL);
    fx_close(&f);
    f.cfg.log_bytes_max = 4096; /* the open compacts: the snapshot keeps it too */
    for (int i = 0; i < 200; i++) {
        CHECK_EQ(fx_open(&f), SL_OK);
        CHECK_EQ(ack_sync(&f, "plain", 0, (uint64_t)i, (uint64_t)i + 1), SL_OK);
        fx_close(&f);
    }
    CHECK(file_size(f.snap) > 0);
    CHECK_EQ(fx_open(&f), SL_OK);
    CHECK(sl_qstate_group(f.qs, "replay-1")->end_time_ms == 1700000012345ull);
    free(want);
    fx_fini(&f);
}

/* A reshard grows a group (#16): the new shards start empty and take acks,
 * the growth survives a reopen (log replay) and a compaction (the snapshot's
 * create carries the new count); a grow that does not grow is refused. */
TEST(grow_survives_reopen_and_compaction)
{
    struct fx f;
    CHECK(fx_init(&f) == 0);
    CHECK_EQ(fx_open(&f), SL_OK);
    CHECK_EQ(create_sync(&f, "g", 2, 5), SL_OK);
    struct waiter w = {0};
    CHECK_EQ(sl_qstate_grow_group(f.qs, "g", 2, on_done, &w), SL_EINVAL);
    CHECK_EQ(sl_qstate_grow_group(f.qs, "g", SL_QSTATE_SHARDS_MAX + 1, on_done, &w), SL_EINVAL);
    CHECK_EQ(sl_qstate_grow_group(f.qs, "nope", 4, on_done, &w), SL_ENOTFOUND);
    CHECK_EQ(sl_qstate_ack(f.qs, "g", 3, 0, 1, NULL, NULL), SL_EINVAL); /* not yet */
    CHECK_EQ(sl_qstate_grow_group(f.qs, "g", 4, on_done, &w), SL_OK);
    wait_for(&w);
    CHECK_EQ(w.err, SL_OK);
    CHECK_EQ(sl_qstate_shard_count(f.qs, "g"), 4u);
    CHECK_EQ(sl_qstate_floor(f.qs, "g", 1), 6u); /* the old shards keep their floors */
    CHECK_EQ(sl_qstate_floor(f.qs, "g", 3), 0u);
    CHECK_EQ(ack_sync(&f, "g", 3, 0, 2), SL_OK);
    CHECK_EQ(ack_sync(&f, "g", 2, 4, 6), SL_OK);
    char *want = dump_state(f.qs);
    CHECK(want != NULL);
    fx_close(&f);
    CHECK_EQ(reopen_equal(&f, want), 0);
    fx_close(&f);
    f.cfg.log_bytes_max = 4096; /* the open compacts: the snapshot holds the grown group */
    for (int i = 0; i < 200; i++) {
        CHECK_EQ(fx_open(&f), SL_OK);
        CHECK_EQ(ack_sync(&f, "g", 0, (uint64_t)i + 5, (uint64_t)i + 6), SL_OK);
        fx_close(&f);
    }
    CHECK(file_size(f.snap) > 0);
    CHECK_EQ(fx_open(&f), SL_OK);
    CHECK_EQ(sl_qstate_shard_count(f.qs, "g"), 4u);
    CHECK_EQ(sl_qstate_floor(f.qs, "g", 3), 2u);
    CHECK(sl_qstate_is_acked(f.qs, "g", 2, 5));
    free(want);
    fx_fini(&f);
}

/* Two ack records on disk after a create: [0,1) then [1,2) on "group-g".
 * Returns the log length and the last record's length. */
static int two_acks(struct fx *f, long *len, long *last)
{
    if (fx_open(f) != SL_OK || create_sync(f, "group-g", 1, 0) != SL_OK ||
        ack_sync(f, "group-g", 0, 0, 1) != SL_OK) {
        return -1;
    }
    long first = file_size(f->log);
    if (count_sync(f, "group-g", 0, 1, 7) != SL_OK) {
        return -1;
    }
    fx_close(f);
    *len = file_size(f->log);
    *last = *len - first;
    return 0;
}

TEST(torn_tail_every_byte)
{
    struct fx f;
    CHECK(fx_init(&f) == 0);
    long len = 0, last = 0;
    CHECK(two_acks(&f, &len, &last) == 0);
    CHECK_EQ(last, 8 + 2 + 7 + 16);
    static uint8_t full[4096];
    size_t n = 0;
    CHECK(read_file(f.log, full, sizeof(full), &n) == 0 && (long)n == len);
    for (long cut = len - last; cut <= len; cut++) {
        CHECK(write_file(f.log, full, (size_t)cut) == 0);
        CHECK_EQ(fx_open(&f), SL_OK);
        CHECK_EQ(sl_qstate_floor(f.qs, "group-g", 0), 1);
        CHECK_EQ(sl_qstate_count(f.qs, "group-g", 0, 1), cut == len ? 7 : 0);
        struct sl_qstate_stats st;
        sl_qstate_stats(f.qs, &st);
        CHECK_EQ(st.truncated_bytes, cut == len ? 0 : cut - (len - last));
        CHECK_EQ(st.log_bytes, cut == len ? len : len - last);
        CHECK_EQ(file_size(f.log), cut == len ? len : len - last);
        /* The log continues after the cut. */
        CHECK_EQ(ack_sync(&f, "group-g", 0, 3, 4), SL_OK);
        CHECK_EQ(fx_open(&f), SL_OK);
        CHECK(sl_qstate_is_acked(f.qs, "group-g", 0, 3));
        CHECK_EQ(sl_qstate_count(f.qs, "group-g", 0, 1), cut == len ? 7 : 0);
    }
    /* A log torn inside its header (a crash at creation) is restarted. */
    for (long cut = 1; cut < 24; cut++) {
        CHECK(write_file(f.log, full, (size_t)cut) == 0);
        CHECK_EQ(fx_open(&f), SL_OK);
        CHECK(sl_qstate_group(f.qs, "group-g") == NULL);
        CHECK_EQ(file_size(f.log), 24);
        CHECK_EQ(create_sync(&f, "again", 1, 0), SL_OK);
        CHECK_EQ(fx_open(&f), SL_OK);
        CHECK(sl_qstate_group(f.qs, "again") != NULL);
    }
    fx_fini(&f);
}

TEST(flipped_bit_never_gives_a_wrong_state)
{
    struct fx f;
    CHECK(fx_init(&f) == 0);
    long len = 0, last = 0;
    CHECK(two_acks(&f, &len, &last) == 0);
    CHECK_EQ(fx_open(&f), SL_OK);
    char *good = dump_state(f.qs);
    CHECK(good != NULL);
    fx_close(&f);
    static uint8_t full[4096], bad[4096];
    size_t n = 0;
    CHECK(read_file(f.log, full, sizeof(full), &n) == 0 && (long)n == len);
    /* The state without the last record. */
    CHECK(write_file(f.log, full, (size_t)(len - last)) == 0);
    CHECK_EQ(fx_open(&f), SL_OK);
    char *before = dump_state(f.qs);
    fx_close(&f);
    CHECK(before != NULL);
    for (long bit = (len - last) * 8; bit < len * 8; bit++) {
        memcpy(bad, full, n);
        bad[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        CHECK(write_file(f.log, bad, n) == 0);
        int eq = reopen_equal(&f, before);
        CHECK_EQ(eq, 0);
        struct sl_qstate_stats st;
        sl_qstate_stats(f.qs, &st);
        CHECK_EQ(st.truncated_bytes, last);
    }
    /* A damaged middle record: it and what follows are dropped. */
    CHECK(write_file(f.log, full, n) == 0);
    CHECK_EQ(reopen_equal(&f, good), 0);
    memcpy(bad, full, n);
    bad[len - last - 3] ^= 0x10; /* inside the ack record before the last */
    CHECK(write_file(f.log, bad, n) == 0);
    CHECK_EQ(fx_open(&f), SL_OK);
    CHECK(sl_qstate_group(f.qs, "group-g") != NULL);
    CHECK_EQ(sl_qstate_floor(f.qs, "group-g", 0), 0);
    CHECK_EQ(sl_qstate_count(f.qs, "group-g", 0, 1), 0);
    /* A damaged header drops the whole log (no snapshot: nothing is left). */
    fx_close(&f);
    memcpy(bad, full, n);
    bad[9] ^= 0x01; /* the gen */
    CHECK(write_file(f.log, bad, n) == 0);
    CHECK_EQ(fx_open(&f), SL_OK);
    CHECK(sl_qstate_group(f.qs, "group-g") == NULL);
    struct sl_qstate_stats st;
    sl_qstate_stats(f.qs, &st);
    CHECK_EQ(st.truncated_bytes, len);
    free(good);
    free(before);
    fx_fini(&f);
}

TEST(compaction_then_reopen)
{
    struct fx f;
    CHECK(fx_init(&f) == 0);
    f.cfg.log_bytes_max = 4096;
    CHECK_EQ(fx_open(&f), SL_OK);
    CHECK(build_state(&f, 2) == 0);
    /* Rounds where a second group of mutations is staged while the first is
     * in flight: a compaction then covers the staged ones too. */
    enum { ROUNDS = 30, PER = 40 };
    static struct waiter w[ROUNDS][2 * PER];
    memset(w, 0, sizeof(w));
    for (int r = 0; r < ROUNDS; r++) {
        for (int i = 0; i < 2 * PER; i++) {
            if (i == PER) {
                sl_ring_run(&g_ring, 0, 0); /* the first half's write goes out */
            }
            uint64_t seq = 1000 + (uint64_t)r * 2 * PER + (uint64_t)i;
            int rc = (i % 2 == 0) ? sl_qstate_ack(f.qs, "grp-2-1", (uint32_t)(i % 3), seq, seq + 1,
                                                  on_done, &w[r][i])
                                  : sl_qstate_set_count(f.qs, "grp-2-0", (uint32_t)(i % 3), seq,
                                                        (uint32_t)r + 1, on_done, &w[r][i]);
            CHECK_EQ(rc, SL_OK);
        }
        CHECK_EQ(sl_qstate_add_counters(f.qs, "grp-2-2", 1, 1, NULL, NULL), SL_OK);
        wait_for(&w[r][2 * PER - 1]);
        for (int i = 0; i < 2 * PER; i++) {
            CHECK_EQ(w[r][i].calls, 1);
            CHECK_EQ(w[r][i].err, SL_OK);
        }
    }
    drain(&f);
    struct sl_qstate_stats st;
    sl_qstate_stats(f.qs, &st);
    CHECK(st.compactions >= 3);
    /* Some staged mutations were made durable by a snapshot, not a write. */
    CHECK(st.records < st.mutations);
    CHECK(st.log_bytes <= 4096 + 2 * PER * 64);
    CHECK(file_size(f.snap) > 0);
    char *want = dump_state(f.qs);
    CHECK(want != NULL);
    /* A stale tmp from a crash mid-compaction is ignored and removed. */
    char tmp[1400];
    snprintf(tmp, sizeof(tmp), "%s.tmp", f.snap);
    CHECK(write_file(tmp, (const uint8_t *)"garbage", 7) == 0);
    int eq0 = reopen_equal(&f, want);
    CHECK_EQ(file_size(tmp), -1);
    int eq1 = reopen_equal(&f, want);
    fx_close(&f);
    /* A log over the limit at open is compacted there. */
    f.cfg.log_bytes_max = 1u << 20;
    CHECK_EQ(fx_open(&f), SL_OK);
    for (int i = 0; i < 300; i++) {
        CHECK_EQ(sl_qstate_add_counters(f.qs, "grp-2-2", 0, 1, NULL, NULL), SL_OK);
    }
    drain(&f);
    char *want2 = dump_state(f.qs);
    fx_close(&f);
    CHECK(file_size(f.log) > 4096);
    f.cfg.log_bytes_max = 4096;
    int eq2 = reopen_equal(&f, want2);
    CHECK_EQ(file_size(f.log), 24);
    free(want);
    free(want2);
    CHECK_EQ(eq0, 0);
    CHECK_EQ(eq1, 0);
    CHECK_EQ(eq2, 0);
    fx_fini(&f);
}

/* A crash after the snapshot's rename but before the log was cut: the new
 * snapshot plus the old log must give the same state (the old log's records
 * are not idempotent: counters would double). */
TEST(crash_between_snapshot_rename_and_log_cut)
{
    struct fx f;
    CHECK(fx_init(&f) == 0);
    f.cfg.log_bytes_max = 1u << 20;
    CHECK_EQ(fx_open(&f), SL_OK);
    CHECK(build_state(&f, 3) == 0);
    for (int i = 0; i < 100; i++) {
        CHECK_EQ(sl_qstate_add_counters(f.qs, "grp-3-0", 1, 2, NULL, NULL), SL_OK);
    }
    drain(&f);
    char *want = dump_state(f.qs);
    CHECK(want != NULL);
    fx_close(&f);
    static uint8_t old_log[256 * 1024];
    size_t n = 0;
    CHECK(read_file(f.log, old_log, sizeof(old_log), &n) == 0 && n > 4096);
    f.cfg.log_bytes_max = 4096;
    int eq0 = reopen_equal(&f, want); /* compacts at open */
    fx_close(&f);
    CHECK_EQ(file_size(f.log), 24);
    CHECK(write_file(f.log, old_log, n) == 0); /* the cut never happened */
    f.cfg.log_bytes_max = 1u << 20;
    int eq1 = reopen_equal(&f, want);
    CHECK_EQ(file_size(f.log), 24); /* the stale log was discarded */
    uint64_t dl = 0;
    sl_qstate_counters(f.qs, "grp-3-0", &dl, NULL);
    free(want);
    CHECK_EQ(eq0, 0);
    CHECK_EQ(eq1, 0);
    CHECK_EQ(dl, 100);
    fx_fini(&f);
}

TEST(corrupt_snapshot_is_an_error)
{
    struct fx f;
    CHECK(fx_init(&f) == 0);
    f.cfg.log_bytes_max = 4096;
    CHECK_EQ(fx_open(&f), SL_OK);
    CHECK_EQ(create_sync(&f, "q", 2, 0), SL_OK);
    for (int i = 0; i < 200; i++) {
        CHECK_EQ(sl_qstate_ack(f.qs, "q", (uint32_t)(i % 2), (uint64_t)i * 2, (uint64_t)i * 2 + 1,
                               NULL, NULL),
                 SL_OK);
        if (i % 50 == 0) {
            drain(&f);
        }
    }
    CHECK_EQ(count_sync(&f, "q", 1, 1, 3), SL_OK);
    struct sl_qstate_stats st;
    sl_qstate_stats(f.qs, &st);
    CHECK(st.compactions >= 1);
    char *want = dump_state(f.qs);
    CHECK(want != NULL);
    fx_close(&f);
    static uint8_t good[64 * 1024], bad[64 * 1024];
    size_t n = 0;
    CHECK(read_file(f.snap, good, sizeof(good), &n) == 0 && n > 40);
    int wrong = 0;
    for (size_t i = 0; i < n; i++) {
        memcpy(bad, good, n);
        bad[i] ^= (uint8_t)(1u << (i % 8));
        CHECK(write_file(f.snap, bad, n) == 0);
        wrong += fx_open(&f) != SL_ECORRUPT || f.qs != NULL;
    }
    CHECK_EQ(wrong, 0);
    CHECK(write_file(f.snap, good, n - 1) == 0);
    CHECK_EQ(fx_open(&f), SL_ECORRUPT);
    CHECK(write_file(f.snap, good, 0) == 0);
    CHECK_EQ(fx_open(&f), SL_ECORRUPT);
    /* Missing: the log (gen >= 1) follows a snapshot that is gone. */
    CHECK(remove(f.snap) == 0);
    CHECK_EQ(fx_open(&f), SL_ECORRUPT);
    /* Restored: everything is back. */
    CHECK(write_file(f.snap, good, n) == 0);
    int eq = reopen_equal(&f, want);
    free(want);
    CHECK_EQ(eq, 0);
    fx_fini(&f);
}

TEST(limits_enforced)
{
    struct fx f;
    CHECK(fx_init(&f) == 0);
    f.cfg.ranges_max = 4;
    f.cfg.groups_max = 2;
    f.cfg.pending_max = 8;
    CHECK_EQ(fx_open(&f), SL_OK);
    CHECK_EQ(create_sync(&f, "a", 2, 0), SL_OK);
    struct sl_qgroup_def d;
    def_init(&d, "b");
    uint64_t floors[2] = {0, 0};
    CHECK_EQ(sl_qstate_create_group(f.qs, &d, 1, floors, NULL, NULL), SL_OK);
    /* "b" counts although not yet durable */
    def_init(&d, "c");
    CHECK_EQ(sl_qstate_create_group(f.qs, &d, 1, floors, NULL, NULL), SL_ELIMIT);
    drain(&f);
    /* ranges_max: 4 separate ranges, a 5th is refused with no side effect;
     * extending or merging one is fine; the floor absorbing one frees room. */
    for (uint64_t i = 0; i < 4; i++) {
        CHECK_EQ(ack_sync(&f, "a", 0, 10 + i * 10, 11 + i * 10), SL_OK);
    }
    char *before = dump_state(f.qs);
    CHECK(before != NULL);
    CHECK_EQ(sl_qstate_ack(f.qs, "a", 0, 100, 101, NULL, NULL), SL_ELIMIT);
    char *after = dump_state(f.qs);
    int same = after != NULL && strcmp(before, after) == 0;
    free(before);
    free(after);
    CHECK(same);
    CHECK_EQ(ack_sync(&f, "a", 0, 11, 15), SL_OK);   /* extends [10,11) */
    CHECK_EQ(ack_sync(&f, "a", 0, 15, 20), SL_OK);   /* merges with [20,21) */
    CHECK_EQ(ack_sync(&f, "a", 0, 100, 101), SL_OK); /* room again */
    CHECK_EQ(sl_qstate_ack(f.qs, "a", 0, 200, 201, NULL, NULL), SL_ELIMIT);
    CHECK_EQ(ack_sync(&f, "a", 1, 200, 201), SL_OK); /* per shard */
    CHECK_EQ(ack_sync(&f, "a", 0, 0, 10), SL_OK);    /* floor to 21 */
    CHECK_EQ(sl_qstate_floor(f.qs, "a", 0), 21);
    CHECK_EQ(ack_sync(&f, "a", 0, 200, 201), SL_OK);
    /* ranges_max bounds the counts too. */
    for (uint64_t i = 0; i < 4; i++) {
        CHECK_EQ(count_sync(&f, "a", 1, 10 + i, 1), SL_OK); /* floor of shard 1 is 1 */
    }
    CHECK_EQ(sl_qstate_set_count(f.qs, "a", 1, 50, 1, NULL, NULL), SL_ELIMIT);
    CHECK_EQ(count_sync(&f, "a", 1, 13, 2), SL_OK); /* update: fine */
    /* pending_max */
    for (int i = 0; i < 8; i++) {
        CHECK_EQ(sl_qstate_add_counters(f.qs, "a", 1, 0, NULL, NULL), SL_OK);
    }
    CHECK_EQ(sl_qstate_add_counters(f.qs, "a", 1, 0, NULL, NULL), SL_EAGAIN);
    drain(&f);
    CHECK_EQ(sl_qstate_add_counters(f.qs, "a", 1, 0, NULL, NULL), SL_OK);
    /* Lowered below what is on disk: all kept, new growth refused. */
    f.cfg.groups_max = 1;
    f.cfg.ranges_max = 1;
    CHECK_EQ(fx_open(&f), SL_OK);
    CHECK(sl_qstate_group(f.qs, "b") != NULL);
    CHECK_EQ(sl_qstate_count(f.qs, "a", 1, 13), 2);
    CHECK_EQ(sl_qstate_create_group(f.qs, &d, 1, floors, NULL, NULL), SL_ELIMIT);
    f.cfg.ranges_max = 0;
    struct sl_qstate *qs = NULL;
    CHECK_EQ(sl_qstate_open(&g_ring, f.dir, &f.cfg, &qs), SL_EINVAL);
    fx_fini(&f);
}

TEST(million_in_order_acks_keep_no_range)
{
    struct fx f;
    CHECK(fx_init(&f) == 0);
    CHECK_EQ(fx_open(&f), SL_OK);
    CHECK_EQ(create_sync(&f, "m", 1, 0), SL_OK);
    enum { N = 1000000, CHUNK = 50000 };
    struct sl_qstate_stats st;
    for (uint64_t base = 0; base < N; base += CHUNK) {
        for (uint64_t q = base; q < base + CHUNK; q++) {
            if (q % 1000 == 0) { /* a delivered record, counted then acked */
                CHECK_EQ(sl_qstate_set_count(f.qs, "m", 0, q + 5, 1, NULL, NULL), SL_OK);
            }
            CHECK_EQ(sl_qstate_ack(f.qs, "m", 0, q, q + 1, NULL, NULL), SL_OK);
        }
        sl_qstate_stats(f.qs, &st);
        CHECK_EQ(st.ranges, 0);
        CHECK(st.counts <= 1);
        drain(&f);
    }
    CHECK_EQ(sl_qstate_floor(f.qs, "m", 0), N);
    sl_qstate_stats(f.qs, &st);
    CHECK_EQ(st.ranges, 0);
    CHECK_EQ(st.counts, 0);
    CHECK(st.compactions >= 1);
    CHECK_EQ(st.state, SL_OK);
    CHECK_EQ(fx_open(&f), SL_OK);
    CHECK_EQ(sl_qstate_floor(f.qs, "m", 0), N);
    fx_fini(&f);
}

static bool parked(const struct fx *f)
{
    struct sl_qstate_stats st;
    sl_qstate_stats(f->qs, &st);
    return st.parked;
}

TEST(budget_parks_and_reopens_stores)
{
    struct fx a, b;
    struct sl_statelog_cache cache;
    sl_statelog_cache_init(&cache, SL_STATELOG_FDS); /* one store open at a time */
    CHECK(fx_init(&a) == 0);
    CHECK(fx_init(&b) == 0);
    a.cfg.cache = b.cfg.cache = &cache;
    CHECK_EQ(fx_open(&a), SL_OK);
    CHECK_EQ(create_sync(&a, "g", 2, 10), SL_OK);
    CHECK_EQ(fx_open(&b), SL_OK); /* makes room: a is parked */
    CHECK(parked(&a) && !parked(&b));
    CHECK_EQ(create_sync(&b, "h", 3, 0), SL_OK);
    for (uint64_t i = 0; i < 20; i++) { /* in turns: each parked while the other works */
        struct fx *f = i % 2 == 0 ? &a : &b;
        uint64_t floor = (i % 2 == 0 ? 11 : 1) + i / 2; /* shard 1's: start floor + 1 */
        CHECK_EQ(ack_sync(f, i % 2 == 0 ? "g" : "h", 1, floor, floor + 1), SL_OK);
        CHECK_EQ(count_sync(f, i % 2 == 0 ? "g" : "h", 0, 100 + i, (uint32_t)i + 1), SL_OK);
        CHECK(!parked(f) && parked(i % 2 == 0 ? &b : &a));
        CHECK(cache.files <= cache.files_max);
    }
    CHECK(cache.parks >= 20 && cache.unparks >= 20);
    CHECK_EQ(sl_qstate_floor(a.qs, "g", 1), 21); /* ten acks, each at the floor */
    CHECK_EQ(sl_qstate_floor(b.qs, "h", 1), 11);
    char *want_a = dump_state(a.qs);
    char *want_b = dump_state(b.qs);
    CHECK(want_a != NULL && want_b != NULL);
    int eq_a = reopen_equal(&a, want_a), eq_b = reopen_equal(&b, want_b);
    free(want_a);
    free(want_b);
    CHECK(eq_a == 0 && eq_b == 0);
    fx_fini(&a);
    fx_fini(&b);
    CHECK_EQ(cache.files, 0);
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
    RUN(group_create_delete_list);
    RUN(acks_advance_floor_only_when_contiguous);
    RUN(ack_is_idempotent);
    RUN(counts_set_survive_and_drop);
    RUN(group_commit_shares_one_fsync);
    RUN(reopen_preserves_everything);
    RUN(end_time_survives_reopen_and_compaction);
    RUN(grow_survives_reopen_and_compaction);
    RUN(torn_tail_every_byte);
    RUN(flipped_bit_never_gives_a_wrong_state);
    RUN(compaction_then_reopen);
    RUN(crash_between_snapshot_rename_and_log_cut);
    RUN(corrupt_snapshot_is_an_error);
    RUN(limits_enforced);
    RUN(million_in_order_acks_keep_no_range);
    RUN(budget_parks_and_reopens_stores);
    sl_ring_fini(&g_ring);
    TEST_END();
}
