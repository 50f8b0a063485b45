/* fault_shard.c - the shard under injected I/O faults (issue #6 item 3).
 *
 * Covers: the fault layer of common/ring.c (sl_ring_faults_arm) failing the
 * Nth file write or fsync the shard queues, once or persistently, swept over
 * N for a fixed workload (60 appends in bursts of 1..4, flush ALWAYS, 16 KiB
 * segments so rolls and seals happen, a 1 KiB index interval so index
 * writes happen): write EIO, write ENOSPC, fsync EIO, and short writes.
 * Injected failures never reach the kernel (the write did not happen; the
 * fsync did not happen). Each trial asserts:
 *   - every accepted append gets exactly one callback, acks come in append
 *     order with contiguous sequences (no gaps, also across ENOSPC rewinds);
 *   - EIO (write or fsync): the shard ends in SL_EFATAL (stats.state), later
 *     appends return SL_EFATAL at once, nothing is acknowledged after the
 *     first failure, and acknowledged batches stay readable;
 *   - ENOSPC: failed appends report SL_ENOSPC, the state is SL_ENOSPC
 *     (persistent) or back to SL_OK (once: later appends succeed), and the
 *     first append after the fault is lifted succeeds;
 *   - short writes and faults past the workload's last op: nothing fails;
 *   - after close (still armed) + reopen (disarmed): every acknowledged batch
 *     is there with its exact bytes, the log is contiguous and valid, any
 *     unacknowledged batch found after the acknowledged tail is intact, and
 *     the shard accepts appends again.
 * Plus: a failed read (EIO) reports SL_EIO and leaves the shard writable;
 * short reads are transparent.
 *
 * Regressions (once bugs in storage/shard.c, all fixed and now checked on
 * every run; SLUICE_FAULT_KNOWN_BUGS=0 only counts them):
 *   1. ENOSPC on an .idx write made the shard SL_EFATAL (idx_done).
 *   2. ENOSPC on a data write while a segment roll was in flight made the
 *      shard SL_EFATAL ("ENOSPC across a segment roll").
 *   3. A short .idx write (not a whole number of entries) made the shard
 *      SL_EFATAL, logged as an I/O error.
 *   4. A short read that cut the first wanted batch was served as
 *      SL_ECORRUPT (read_done), though nothing on disk was damaged.
 *
 * SLUICE_TEST_LOG=1 shows the shard's own log lines (it logs every injected
 * failure); SLUICE_FAULT_N_MAX changes the cap on N (default 64, past the
 * workload's last write). Runs in a few seconds.
 *
 * open(), rename(), ftruncate() and the synchronous fsyncs (recovery,
 * retention, common/fileio.c) are plain syscalls, not ring ops: this layer
 * cannot fail them.
 */
#include "common/assert.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"
#include "common/ring.h"
#include "storage/batch.h"
#include "storage/shard.h"

#include "tests/unit/test.h"

#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#define BATCHES 60
#define N_MAX_DEFAULT 64
#define WAIT_NS_MAX (30ull * 1000 * 1000 * 1000) /* a lost callback fails, not hangs */
#define RBUF_BYTES (256u * 1024)

static struct sl_ring g_ring;
static char g_root[1024];
static bool g_known_bugs;   /* SLUICE_FAULT_KNOWN_BUGS=1: check the known-bad cases too */
static uint32_t g_known_hits; /* trials that showed a known bug (checked or not) */

/* ---- workload ----------------------------------------------------------- */

struct wbatch {
    uint8_t *bytes; /* as built: unstamped */
    uint32_t len;
    uint32_t count;
};

#define EXTRA 4 /* workload batches past BATCHES, for appends after the fault */
static struct wbatch g_work[BATCHES + EXTRA];

/* Calls a void helper that may fail the case, and stops the caller if it did. */
#define DO(call)                                                                                   \
    do {                                                                                           \
        call;                                                                                      \
        if (test_cur_failed_) {                                                                    \
            return;                                                                                \
        }                                                                                          \
    } while (0)

static uint64_t mix(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* Batch i: 1..3 records of 150..1400 bytes, contents derived from i. */
static int build_batch(uint32_t i, struct wbatch *b)
{
    uint32_t n = 1 + (uint32_t)(mix(i) % 3);
    size_t cap = SL_BATCH_HEADER_BYTES + 3 * (1400 + 128);
    uint8_t *buf = malloc(cap);
    uint8_t val[1400];
    if (buf == NULL) {
        return SL_ENOMEM;
    }
    struct sl_batch_builder bb;
    sl_batch_builder_init(&bb, buf, cap);
    for (uint32_t r = 0; r < n; r++) {
        uint64_t h = mix(((uint64_t)i << 8) | r);
        uint32_t vlen = 150 + (uint32_t)(h % 1250);
        for (uint32_t k = 0; k < vlen; k++) {
            val[k] = (uint8_t)(mix(h + k) >> 13);
        }
        char key[32];
        int kl = snprintf(key, sizeof(key), "k%u-%u", i, r);
        struct sl_record rec = {key, (uint32_t)kl, val, vlen, NULL, 0, 1700000000000ull + i};
        int rc = sl_batch_builder_add(&bb, &rec);
        if (rc != SL_OK) {
            free(buf);
            return rc;
        }
    }
    size_t len = 0;
    int rc = sl_batch_builder_finish(&bb, SL_BATCH_CODEC_NONE, 0, NULL, NULL, 0, 0, 0, &len);
    if (rc != SL_OK) {
        free(buf);
        return rc;
    }
    b->bytes = buf;
    b->len = (uint32_t)len;
    b->count = n;
    return SL_OK;
}

/* Burst sizes 1..4 before waiting for the acks: several writes and group
 * commits in flight at once. */
static uint32_t burst_of(uint32_t i)
{
    return 1 + (uint32_t)(mix(i * 7 + 3) % 4);
}

/* ---- one trial ---------------------------------------------------------- */

struct slot {
    struct trial *t;
    uint32_t i;   /* workload index */
    int rc;       /* sl_shard_append's result */
    int done;     /* callbacks */
    int err;
    uint64_t base;
    uint64_t event; /* order of the callback */
};

struct trial {
    struct sl_shard *s;
    struct sl_shard_config cfg;
    char dir[PATH_MAX];
    struct slot slots[BATCHES + 16];
    uint32_t nslots;
    uint32_t pending;
    uint64_t events;
    uint64_t ack_end;     /* sequence after the last SL_OK ack */
    uint64_t first_fail;  /* event of the first failed callback (0: none) */
    bool ok_after_fail;   /* an SL_OK ack after a failed one */
    bool order_bad;       /* an ack with a base other than ack_end */
    uint32_t ok, failed_enospc, failed_fatal, failed_other;
    uint32_t refused_enospc, refused_fatal;
};

static struct trial g_t;

static void ack_cb(void *ctx, int err, uint64_t base, uint32_t count)
{
    struct slot *sl = ctx;
    struct trial *t = sl->t;
    sl->done++;
    sl->err = err;
    sl->base = base;
    sl->event = ++t->events;
    if (t->pending > 0) {
        t->pending--;
    }
    if (err == SL_OK) {
        if (base != t->ack_end || count != g_work[sl->i].count) {
            t->order_bad = true;
        }
        t->ack_end = base + count;
        t->ok++;
        if (t->first_fail != 0) {
            t->ok_after_fail = true;
        }
        return;
    }
    if (t->first_fail == 0) {
        t->first_fail = sl->event;
    }
    if (err == SL_ENOSPC) {
        t->failed_enospc++;
    } else if (err == SL_EFATAL) {
        t->failed_fatal++;
    } else {
        t->failed_other++;
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

static void rm_rf(const char *path)
{
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void trial_cfg(struct sl_shard_config *cfg)
{
    sl_shard_config_default(cfg);
    cfg->segment_bytes = 16 * 1024; /* a roll every ~8 batches */
    cfg->index_interval_bytes = 1024;
    cfg->write_buf_bytes = 8 * 1024; /* a burst may need two staging buffers */
    cfg->write_bufs = 4;
    cfg->batch_bytes_max = 64 * 1024;
    cfg->pending_max = 64;
    cfg->flush = SL_FLUSH_ALWAYS;
}

/* Runs the loop until every accepted append had its callback. */
static void wait_acks(struct trial *t)
{
    uint64_t t0 = sl_clock_mono_ns();
    while (t->pending > 0) {
        CHECK(g_ring.inflight > 0 || g_ring.deferred_head != NULL); /* a lost callback */
        CHECK(sl_clock_mono_ns() - t0 < WAIT_NS_MAX);
        sl_ring_run(&g_ring, 1, 0);
    }
}

/* Runs the loop until nothing is in flight: acks can come before the index
 * writes they trigger, and an injected failure must be delivered before the
 * outcome is judged. */
static void drain(void)
{
    uint64_t t0 = sl_clock_mono_ns();
    while (g_ring.inflight > 0 || g_ring.deferred_head != NULL) {
        CHECK(sl_clock_mono_ns() - t0 < WAIT_NS_MAX);
        sl_ring_run(&g_ring, g_ring.inflight > 0 ? 1 : 0, 0);
    }
}

/* Appends workload batch i (running the loop on SL_EAGAIN); records rc. */
static void append_one(struct trial *t, uint32_t i)
{
    SL_ASSERT(t->nslots < sizeof(t->slots) / sizeof(t->slots[0]));
    struct slot *sl = &t->slots[t->nslots++];
    *sl = (struct slot){.t = t, .i = i, .err = -1};
    uint64_t t0 = sl_clock_mono_ns();
    for (;;) {
        int rc = sl_shard_append(t->s, g_work[i].bytes, g_work[i].len, ack_cb, sl);
        sl->rc = rc;
        if (rc == SL_OK) {
            CHECK_EQ(sl->done, 0); /* never called back from inside append */
            t->pending++;
            return;
        }
        if (rc != SL_EAGAIN) {
            t->refused_enospc += rc == SL_ENOSPC;
            t->refused_fatal += rc == SL_EFATAL;
            CHECK(rc == SL_ENOSPC || rc == SL_EFATAL);
            return;
        }
        CHECK(sl_clock_mono_ns() - t0 < WAIT_NS_MAX);
        sl_ring_run(&g_ring, 1, 0);
    }
}

static void open_shard(struct trial *t)
{
    t->s = NULL;
    int rc = sl_shard_open(&g_ring, t->dir, &t->cfg, &t->s);
    if (rc != SL_OK) {
        fprintf(stderr, "  sl_shard_open: %s\n", sl_errname(rc));
    }
    CHECK_EQ(rc, SL_OK);
}

/* The stored batch `p` (header `h`) is workload batch w, stamped. */
static bool same_batch(const uint8_t *p, const struct sl_batch_header *h, const struct wbatch *w)
{
    static uint8_t tmp[64 * 1024];
    if (h->length != w->len || w->len > sizeof(tmp)) {
        return false;
    }
    memcpy(tmp, w->bytes, w->len);
    sl_batch_stamp(tmp, h->base_seq, h->append_time_ms);
    return memcmp(tmp, p, w->len) == 0;
}

struct rdw {
    struct sl_shard_read rd;
    int done;
    int err;
};

static void read_cb(struct sl_shard_read *rd, int err)
{
    struct rdw *w = sl_container_of(rd, struct rdw, rd);
    w->done++;
    w->err = err;
}

static int read_at(struct trial *t, struct rdw *w, uint8_t *buf, uint64_t seq)
{
    memset(w, 0, sizeof(*w));
    w->rd.from = SL_READ_SEQ;
    w->rd.seq = seq;
    w->rd.buf = buf;
    w->rd.buf_cap = RBUF_BYTES;
    w->rd.max_bytes = RBUF_BYTES;
    w->rd.cb = read_cb;
    sl_shard_read(t->s, &w->rd);
    uint64_t t0 = sl_clock_mono_ns();
    while (!w->done) {
        if ((g_ring.inflight == 0 && g_ring.deferred_head == NULL) ||
            sl_clock_mono_ns() - t0 > WAIT_NS_MAX) {
            return -1001;
        }
        sl_ring_run(&g_ring, 1, 0);
    }
    return w->done == 1 ? w->err : -1002;
}

/* The acknowledged slot whose base is `base`, or NULL. */
static struct slot *acked_at(struct trial *t, uint64_t base)
{
    for (uint32_t k = 0; k < t->nslots; k++) {
        struct slot *sl = &t->slots[k];
        if (sl->rc == SL_OK && sl->err == SL_OK && sl->base == base) {
            return sl;
        }
    }
    return NULL;
}

/* Reads [0, tail): contiguous valid batches; below acked_end each is the
 * acknowledged batch of that base, byte for byte; at or past it each is
 * some batch this trial appended, intact. Counts the acknowledged ones. */
static void read_check(struct trial *t, uint64_t tail, uint64_t acked_end, uint32_t *acked_seen)
{
    static uint8_t buf[RBUF_BYTES];
    uint64_t seq = 0;
    *acked_seen = 0;
    while (seq < tail) {
        struct rdw w;
        int rc = read_at(t, &w, buf, seq);
        if (rc != SL_OK) {
            fprintf(stderr, "  read at %" PRIu64 " (tail %" PRIu64 "): %d %s\n", seq, tail, rc,
                    sl_errname(rc));
        }
        CHECK_EQ(rc, SL_OK);
        CHECK(w.rd.len > 0);
        uint32_t off = 0;
        while (off < w.rd.len) {
            struct sl_batch_header h;
            CHECK_EQ(sl_batch_validate(buf + off, w.rd.len - off, RBUF_BYTES, &h), SL_OK);
            CHECK_EQ(h.base_seq, seq); /* no gap, no overlap */
            if (h.base_seq < acked_end) {
                struct slot *sl = acked_at(t, h.base_seq);
                if (sl == NULL || !same_batch(buf + off, &h, &g_work[sl->i])) {
                    fprintf(stderr, "  acknowledged batch at seq %" PRIu64 " %s\n", seq,
                            sl == NULL ? "has no ack of that base" : "differs");
                }
                CHECK(sl != NULL);
                CHECK(same_batch(buf + off, &h, &g_work[sl->i]));
                (*acked_seen)++;
            } else {
                bool found = false;
                for (uint32_t k = 0; k < t->nslots && !found; k++) {
                    found = t->slots[k].rc == SL_OK &&
                            same_batch(buf + off, &h, &g_work[t->slots[k].i]);
                }
                if (!found) {
                    fprintf(stderr, "  unacknowledged batch at seq %" PRIu64 " is damaged\n",
                            seq);
                }
                CHECK(found);
            }
            seq = sl_batch_last_seq(&h) + 1;
            off += h.length;
        }
    }
    CHECK_EQ(seq, tail);
}

enum kind { K_WRITE_EIO, K_WRITE_ENOSPC, K_FSYNC_EIO, K_WRITE_SHORT, K_COUNT };
static const char *const kind_name[K_COUNT] = {"write EIO", "write ENOSPC", "fsync EIO",
                                               "write short"};

static struct sl_ring_faults plan_of(enum kind k, uint64_t n, bool persistent)
{
    struct sl_ring_faults f = {.op = SL_FAULT_WRITE, .nth = n, .err = EIO,
                               .persistent = persistent};
    if (k == K_WRITE_ENOSPC) {
        f.err = ENOSPC;
    } else if (k == K_FSYNC_EIO) {
        f.op = SL_FAULT_FSYNC;
    } else if (k == K_WRITE_SHORT) {
        f.err = 0;
    }
    return f;
}

/* Prints one line per trial that failed a check, naming it. */
static void trial_fail_note(enum kind k, uint64_t n, bool persistent, const char *what)
{
    fprintf(stderr, "  [%s, N=%" PRIu64 ", %s] %s\n", kind_name[k], n,
            persistent ? "persistent" : "once", what);
}

/* The ENOSPC outcome: failed appends say SL_ENOSPC, never SL_EFATAL (the
 * contract of sl_shard_append). Known bugs, both make the shard SL_EFATAL:
 * an ENOSPC on an .idx write (idx_done -> go_fatal "index write"), and an
 * ENOSPC on a data write while a roll is under way (rewind_after_enospc ->
 * go_fatal "ENOSPC across a segment roll"). Returns false when seen. */
static bool enospc_not_fatal(struct trial *t, const struct sl_shard_stats *st, enum kind k,
                             uint64_t n, bool persistent)
{
    if (st->state != SL_EFATAL && t->failed_fatal == 0 && t->refused_fatal == 0) {
        return true;
    }
    g_known_hits++;
    if (g_known_bugs) {
        trial_fail_note(k, n, persistent, "ENOSPC made the shard SL_EFATAL");
    }
    return false;
}

/* Checks after the workload, with the fault still armed. */
static void check_outcome(struct trial *t, enum kind k, uint64_t n, bool persistent,
                          const struct sl_ring_fault_counts *fc)
{
    struct sl_shard_stats st;
    sl_shard_stats(t->s, &st);
    CHECK(!t->order_bad);
    CHECK_EQ(t->failed_other, 0);
    for (uint32_t i = 0; i < t->nslots; i++) {
        CHECK(t->slots[i].rc != SL_OK || t->slots[i].done == 1);
    }
    CHECK_EQ(st.visible_seq, t->ack_end);
    bool eio = k == K_WRITE_EIO || k == K_FSYNC_EIO;
    if (k == K_WRITE_SHORT && fc->injected > 0 && st.state == SL_EFATAL) {
        /* Known bug: idx_done treats a short .idx write whose length is not
         * a whole number of entries as an I/O error (go_fatal "index
         * write", logged as EIO) instead of resuming it like data writes. */
        g_known_hits++;
        if (g_known_bugs) {
            trial_fail_note(k, n, persistent, "a short index write made the shard SL_EFATAL");
            CHECK_EQ(st.state, SL_OK);
        }
        return; /* the universal checks after reopen still run */
    }
    if (fc->injected == 0 || k == K_WRITE_SHORT) {
        /* nothing failed (the fault lay past the workload, or was short) */
        CHECK_EQ(st.state, SL_OK);
        CHECK_EQ(t->ok, BATCHES);
        CHECK_EQ(st.next_seq, t->ack_end);
        return;
    }
    if (eio) {
        CHECK_EQ(st.state, SL_EFATAL); /* the status says why: the shard is fatal */
        CHECK(!t->ok_after_fail);      /* nothing acknowledged after the failure */
        CHECK_EQ(t->failed_enospc + t->refused_enospc, 0);
        DO(append_one(t, BATCHES));
        CHECK_EQ(t->slots[t->nslots - 1].rc, SL_EFATAL); /* refused at once */
        uint32_t seen = 0;
        DO(read_check(t, t->ack_end, t->ack_end, &seen));
        CHECK_EQ(seen, t->ok); /* reads keep working */
        return;
    }
    /* ENOSPC */
    bool strict = enospc_not_fatal(t, &st, k, n, persistent);
    if (!strict) {
        if (g_known_bugs) {
            CHECK(strict);
        }
        return; /* the EFATAL path is covered by the EIO trials */
    }
    if (t->failed_enospc + t->refused_enospc == 0) {
        /* The fault hit index writes only: the index is an accelerator, so
         * the shard absorbs it (entries written again later, or a sealed
         * segment rebuilt from its log) and every append succeeded. */
        CHECK_EQ(t->ok, BATCHES);
        CHECK_EQ(st.next_seq, t->ack_end);
        CHECK(st.state == SL_OK || st.state == SL_ENOSPC);
        return;
    }
    CHECK_EQ(st.next_seq, t->ack_end); /* rewound: failed batches took no sequence */
    if (persistent) {
        CHECK_EQ(st.state, SL_ENOSPC);
        sl_ring_faults_disarm(&g_ring); /* space freed */
    } else {
        /* once: the state is back to SL_OK, or still SL_ENOSPC when the
         * failed write was the workload's last one */
        CHECK(st.state == SL_OK || st.state == SL_ENOSPC);
    }
    /* The next append is tried again, and succeeds right after the last
     * acknowledged batch. */
    DO(append_one(t, BATCHES));
    CHECK_EQ(t->slots[t->nslots - 1].rc, SL_OK);
    DO(wait_acks(t));
    CHECK_EQ(t->slots[t->nslots - 1].err, SL_OK);
    sl_shard_stats(t->s, &st);
    CHECK_EQ(st.state, SL_OK);
}

/* After close (armed) + disarm + reopen: exactly what the checks promise. */
static void check_reopen(struct trial *t)
{
    sl_ring_faults_disarm(&g_ring);
    DO(open_shard(t));
    struct sl_shard_stats st;
    sl_shard_stats(t->s, &st);
    CHECK_EQ(st.state, SL_OK);
    CHECK(st.next_seq >= t->ack_end); /* nothing acknowledged is lost */
    uint32_t seen = 0;
    DO(read_check(t, st.next_seq, t->ack_end, &seen));
    CHECK_EQ(seen, t->ok);
    /* and it takes appends again, right after the recovered tail */
    t->ack_end = st.next_seq;
    t->first_fail = 0;
    DO(append_one(t, BATCHES + 1));
    CHECK_EQ(t->slots[t->nslots - 1].rc, SL_OK);
    DO(wait_acks(t));
    CHECK_EQ(t->slots[t->nslots - 1].err, SL_OK);
    CHECK_EQ(t->slots[t->nslots - 1].base, st.next_seq);
}

static void trial_body(struct trial *t, enum kind k, uint64_t n, bool persistent,
                       struct sl_ring_fault_counts *fc)
{
    DO(open_shard(t));
    struct sl_ring_faults plan = plan_of(k, n, persistent);
    sl_ring_faults_arm(&g_ring, &plan);
    for (uint32_t i = 0; i < BATCHES;) {
        uint32_t b = burst_of(i);
        for (uint32_t j = 0; j < b && i < BATCHES; j++, i++) {
            DO(append_one(t, i));
        }
        DO(wait_acks(t));
    }
    DO(drain());
    sl_ring_faults_counts(&g_ring, fc);
    DO(check_outcome(t, k, n, persistent, fc));
    sl_shard_close(t->s); /* still armed (unless ENOSPC persistent): must finish */
    t->s = NULL;
    DO(check_reopen(t));
    sl_shard_close(t->s);
    t->s = NULL;
}

/* One trial on a fresh directory. Returns true when every check passed. */
static bool trial(enum kind k, uint64_t n, bool persistent, struct sl_ring_fault_counts *fc)
{
    struct trial *t = &g_t;
    memset(t, 0, sizeof(*t));
    trial_cfg(&t->cfg);
    snprintf(t->dir, sizeof(t->dir), "%s/shard", g_root);
    rm_rf(t->dir);
    int failed_before = test_cur_failed_;
    test_cur_failed_ = 0;
    memset(fc, 0, sizeof(*fc));
    trial_body(t, k, n, persistent, fc);
    bool ok = !test_cur_failed_;
    test_cur_failed_ = failed_before || !ok;
    sl_ring_faults_disarm(&g_ring);
    if (t->s != NULL) {
        sl_shard_close(t->s);
        t->s = NULL;
    }
    rm_rf(t->dir);
    return ok;
}

/* ---- the sweeps ---------------------------------------------------------- */

static uint64_t g_ops[K_COUNT]; /* ops of each kind the clean workload queues */

/* Sweeps N over 1 .. (ops the clean workload queues of that kind) + 1, at
 * most SLUICE_FAULT_N_MAX (default N_MAX_DEFAULT); the last N lies past the
 * workload's writes (or reaches into close/reopen). */
static void sweep(enum kind k, bool persistent)
{
    uint64_t n_max = g_ops[k] + 1;
    const char *env = getenv("SLUICE_FAULT_N_MAX");
    uint64_t cap = env != NULL ? strtoull(env, NULL, 10) : N_MAX_DEFAULT;
    if (cap > 0 && n_max > cap) {
        n_max = cap;
    }
    uint32_t bad = 0, hit = 0, known_before = g_known_hits;
    for (uint64_t n = 1; n <= n_max; n++) {
        struct sl_ring_fault_counts fc;
        if (!trial(k, n, persistent, &fc)) {
            trial_fail_note(k, n, persistent, "FAILED (checks above)");
            bad++;
        }
        hit += fc.injected > 0;
    }
    fprintf(stderr, "  %s %s: N = 1..%" PRIu64 ", %u trials injected, %u failed, %u known-bug\n",
            kind_name[k], persistent ? "persistent" : "once", n_max, hit, bad,
            g_known_hits - known_before);
    CHECK_EQ(bad, 0);
}

/* Counts the ops of each kind the workload queues with nothing injected. */
TEST(clean_workload_counts)
{
    for (int k = 0; k < K_COUNT; k++) {
        if (k == K_WRITE_ENOSPC || k == K_WRITE_SHORT) {
            g_ops[k] = g_ops[K_WRITE_EIO];
            continue;
        }
        struct sl_ring_fault_counts fc;
        uint64_t never = UINT64_MAX;
        CHECK(trial((enum kind)k, never, false, &fc));
        CHECK_EQ(fc.injected, 0);
        g_ops[k] = fc.seen;
    }
    fprintf(stderr, "  the workload queues %" PRIu64 " writes and %" PRIu64 " fsyncs\n",
            g_ops[K_WRITE_EIO], g_ops[K_FSYNC_EIO]);
    CHECK(g_ops[K_WRITE_EIO] > BATCHES / 4 && g_ops[K_FSYNC_EIO] > 0);
}

TEST(write_eio_once) { sweep(K_WRITE_EIO, false); }
TEST(write_eio_persistent) { sweep(K_WRITE_EIO, true); }
TEST(fsync_eio_once) { sweep(K_FSYNC_EIO, false); }
TEST(fsync_eio_persistent) { sweep(K_FSYNC_EIO, true); }
TEST(write_short_once) { sweep(K_WRITE_SHORT, false); }
TEST(write_short_persistent) { sweep(K_WRITE_SHORT, true); }
/* Known bugs 1 and 2 (file comment): with SLUICE_FAULT_KNOWN_BUGS=1 the
 * trials that hit them fail; without, they still run every other check. */
TEST(write_enospc_once) { sweep(K_WRITE_ENOSPC, false); }
TEST(write_enospc_persistent) { sweep(K_WRITE_ENOSPC, true); }

/* A shard with 12 acknowledged batches, for the read cases. */
static void read_fixture(struct trial *t)
{
    memset(t, 0, sizeof(*t));
    trial_cfg(&t->cfg);
    snprintf(t->dir, sizeof(t->dir), "%s/shard", g_root);
    rm_rf(t->dir);
    DO(open_shard(t));
    for (uint32_t i = 0; i < 12; i++) {
        DO(append_one(t, i));
    }
    DO(wait_acks(t));
    CHECK_EQ(t->ok, 12);
}

static void read_fixture_end(struct trial *t)
{
    sl_ring_faults_disarm(&g_ring);
    sl_shard_close(t->s);
    t->s = NULL;
    rm_rf(t->dir);
}

/* A failed read reports SL_EIO and changes nothing else: the shard stays
 * writable and the next reads work. */
static void case_read_eio(struct trial *t)
{
    DO(read_fixture(t));
    static uint8_t buf[RBUF_BYTES];
    struct rdw w;
    struct sl_ring_faults f = {.op = SL_FAULT_READ, .nth = 1, .err = EIO, .persistent = false};
    sl_ring_faults_arm(&g_ring, &f);
    CHECK_EQ(read_at(t, &w, buf, 0), SL_EIO);
    struct sl_shard_stats st;
    sl_shard_stats(t->s, &st);
    CHECK_EQ(st.state, SL_OK);
    uint32_t seen = 0;
    DO(read_check(t, t->ack_end, t->ack_end, &seen));
    CHECK_EQ(seen, 12);
    sl_ring_faults_disarm(&g_ring);
    DO(append_one(t, 12));
    DO(wait_acks(t));
    CHECK_EQ(t->slots[t->nslots - 1].err, SL_OK);
}

TEST(read_eio)
{
    case_read_eio(&g_t);
    read_fixture_end(&g_t);
}

/* A short read (the kernel returned fewer bytes than asked, no error) must be
 * transparent: the shard reads on. Known bug: read_done treats a first
 * batch cut by a short read as corruption (SL_ECORRUPT, "corrupt batch ...
 * not served") when no whole batch fits in what came back. Counted, and
 * checked only with SLUICE_FAULT_KNOWN_BUGS=1. */
TEST(read_short)
{
    struct trial *t = &g_t;
    DO(read_fixture(t));
    uint32_t bad = 0, tried = 0;
    for (int persistent = 0; persistent < 2; persistent++) {
        for (uint64_t n = 1; n <= 8; n++) {
            struct sl_ring_faults f = {.op = SL_FAULT_READ, .nth = n, .err = 0,
                                       .persistent = persistent != 0};
            sl_ring_faults_arm(&g_ring, &f);
            int failed_before = test_cur_failed_;
            test_cur_failed_ = 0;
            uint32_t seen = 0;
            read_check(t, t->ack_end, t->ack_end, &seen);
            bool ok = !test_cur_failed_ && seen == 12;
            test_cur_failed_ = failed_before;
            tried++;
            if (!ok) {
                bad++;
                if (g_known_bugs) {
                    fprintf(stderr, "  [read short, N=%" PRIu64 ", %s] not transparent\n", n,
                            persistent ? "persistent" : "once");
                }
            }
        }
    }
    sl_ring_faults_disarm(&g_ring);
    fprintf(stderr, "  short reads: %u of %u read sweeps failed (known bug)\n", bad, tried);
    g_known_hits += bad;
    if (g_known_bugs) {
        CHECK_EQ(bad, 0);
    }
    struct sl_shard_stats st;
    sl_shard_stats(t->s, &st);
    CHECK_EQ(st.state, SL_OK);
    read_fixture_end(t);
}

int main(void)
{
    const char *log = getenv("SLUICE_TEST_LOG");
    sl_log_set_level(log != NULL && log[0] == '1' ? SL_LOG_DEBUG : SL_LOG_OFF);
    const char *kb = getenv("SLUICE_FAULT_KNOWN_BUGS");
    g_known_bugs = kb == NULL || kb[0] != '0'; /* the regressions are checked by default */
    char why[512] = "";
    if (sl_ring_probe(why, sizeof(why)) != SL_OK || sl_ring_init(&g_ring, 256) != SL_OK) {
        fprintf(stderr, "io_uring unavailable: %s\n", why);
        return 77;
    }
    const char *tmp = getenv("TMPDIR");
    snprintf(g_root, sizeof(g_root), "%s/sl_fault_shard_XXXXXX",
             tmp != NULL && tmp[0] != '\0' ? tmp : "/var/tmp");
    if (mkdtemp(g_root) == NULL) {
        fprintf(stderr, "mkdtemp: %s\n", strerror(errno));
        return 1;
    }
    for (uint32_t i = 0; i < BATCHES + EXTRA; i++) {
        if (build_batch(i, &g_work[i]) != SL_OK) {
            fprintf(stderr, "cannot build batch %u\n", i);
            return 1;
        }
    }
    RUN(clean_workload_counts);
    RUN(write_eio_once);
    RUN(write_eio_persistent);
    RUN(fsync_eio_once);
    RUN(fsync_eio_persistent);
    RUN(write_short_once);
    RUN(write_short_persistent);
    RUN(write_enospc_once);
    RUN(write_enospc_persistent);
    RUN(read_eio);
    RUN(read_short);
    rm_rf(g_root);
    for (uint32_t i = 0; i < BATCHES + EXTRA; i++) {
        free(g_work[i].bytes);
    }
    sl_ring_fini(&g_ring);
    if (g_known_hits > 0) {
        fprintf(stderr, "%u trial(s) hit a known shard bug%s\n", g_known_hits,
                g_known_bugs ? "" : " (set SLUICE_FAULT_KNOWN_BUGS=1 to fail on them)");
    }
    TEST_END();
}
