/* test_shard_truncate.c - cutting a shard's log back (sl_shard_truncate) and
 * the leader epoch in batch headers (sl_shard_append_opt, SL_APPEND_KEEP_STAMPS,
 * sl_shard_scan_epochs), through the public API of storage/shard.h.
 *
 * Covers: a cut inside the active segment, at every batch boundary of a
 * multi-segment log (later segment files gone, the index cut, the state equal
 * before and after a reopen, appends going on at the cut, rolls after it);
 * a cut to the oldest sequence (an empty log); a cut at the end (a no-op);
 * refusals: inside a batch (the log untouched, still writable), past the end,
 * below retention, a second truncate while one runs; appends pending when the
 * truncate is called complete first, appends during it get SL_EAGAIN; reads
 * past the new end get SL_EINVAL; a truncate of a parked shard; close while a
 * truncate waits; injected failures before anything changed (the shard goes
 * on) and after (SL_EFATAL, a reopen recovers a prefix); epochs stamped,
 * read back, kept byte for byte by a follower's append, refused when the
 * follower's log does not continue; the epoch scan over many segments, from
 * the start and from the middle, matching a header-by-header walk.
 * The reset (sl_shard_reset): a multi-segment log emptied and started at a
 * later sequence (reads below it SL_ETRIMMED with first_seq, appends from it,
 * the same after a reopen, no marker left); a fresh shard without files; a
 * reset to the log's own end; a reset below the end (to 0: a removed
 * replica's copy dropped); refusals (past the largest sequence, while a
 * truncate runs). A reset killed after each of its steps: tests/crash/truncate_shard.c.
 */
#include "common/fileio.h"
#include "common/log.h"
#include "storage/shard.h"

#include "tests/unit/test.h"
#include "tests/unit/log_fx.h"

#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>
#include <time.h>

static int count_files(const char *dir, const char *ext)
{
    return lfx_count_names(dir, ext, NULL);
}

static int count_markers(const char *dir)
{
    return lfx_count_names(dir, NULL, "reset-");
}

/* Appends batches of 1..4 records (count i % 4 + 1); bases[] gets each base. */
static int fill(struct lfx *f, uint32_t n, uint64_t *bases, const struct sl_append_opts *o)
{
    for (uint32_t i = 0; i < n; i++) {
        int rc = lfx_append(f, i % 4 + 1, o, &bases[i]);
        if (rc != SL_OK) {
            return rc;
        }
    }
    return SL_OK;
}

static uint64_t next_seq(struct lfx *f)
{
    struct sl_shard_stats st;
    sl_shard_stats_progress(f->s, &st);
    return st.next_seq;
}

TEST(cut_inside_active_segment)
{
    struct lfx f;
    struct sl_shard_config cfg = lfx_cfg_small();
    cfg.segment_bytes = 1 << 20;
    CHECK_EQ(lfx_init(&f, &cfg), SL_OK);
    uint64_t bases[20], end = 0;
    CHECK_EQ(fill(&f, 20, bases, NULL), SL_OK);
    CHECK_EQ(lfx_truncate(&f, bases[12], &end), SL_OK);
    CHECK_EQ(end, bases[12]);
    CHECK_EQ(next_seq(&f), bases[12]);
    uint32_t nb = 0;
    CHECK_EQ(lfx_check_log(&f, 0, &end, NULL, 0, &nb), SL_OK);
    CHECK_EQ(end, bases[12]);
    CHECK_EQ(nb, 12);
    /* a read past the new end is refused as any read past the end */
    static uint8_t buf[LFX_READ_CAP];
    struct sl_shard_read rd;
    CHECK_EQ(lfx_read(&f, bases[12] + 1, buf, &rd), SL_EINVAL);
    uint64_t b = 0;
    CHECK_EQ(lfx_append(&f, 3, NULL, &b), SL_OK);
    CHECK_EQ(b, bases[12]);
    lfx_close(&f);
    CHECK_EQ(lfx_open(&f), SL_OK);
    CHECK_EQ(lfx_check_log(&f, 0, &end, NULL, 0, &nb), SL_OK);
    CHECK_EQ(end, bases[12] + 3);
    CHECK_EQ(nb, 13);
    lfx_fini(&f);
}

/* Every batch boundary of a log of many segments, each from a fresh copy. */
TEST(cut_at_every_boundary_of_many_segments)
{
    const uint32_t n = 60;
    for (uint32_t cut = 0; cut <= n; cut += 1) {
        struct lfx f;
        struct sl_shard_config cfg = lfx_cfg_small();
        CHECK_EQ(lfx_init(&f, &cfg), SL_OK);
        uint64_t bases[60], end = 0;
        CHECK_EQ(fill(&f, n, bases, NULL), SL_OK);
        uint64_t old_end = next_seq(&f);
        int segs_before = count_files(f.dir, ".log");
        CHECK(segs_before >= 5);
        uint64_t target = cut < n ? bases[cut] : old_end;
        CHECK_EQ(lfx_truncate(&f, target, &end), SL_OK);
        CHECK_EQ(end, target);
        struct sl_shard_stats st;
        sl_shard_stats(f.s, &st);
        CHECK_EQ(st.next_seq, target);
        CHECK_EQ(st.visible_seq, target);
        CHECK_EQ((int)st.segments, count_files(f.dir, ".log"));
        CHECK_EQ(count_files(f.dir, ".idx"), count_files(f.dir, ".log"));
        uint32_t nb = 0;
        CHECK_EQ(lfx_check_log(&f, 0, &end, NULL, 0, &nb), SL_OK);
        CHECK_EQ(end, target);
        CHECK_EQ(nb, cut);
        /* the log grows again from the cut, rolling as before */
        uint64_t more[30];
        CHECK_EQ(fill(&f, 30, more, NULL), SL_OK);
        CHECK_EQ(more[0], target);
        uint64_t grown = next_seq(&f);
        lfx_close(&f);
        CHECK_EQ(lfx_open(&f), SL_OK);
        sl_shard_stats(f.s, &st);
        CHECK_EQ(st.recovery_truncated_bytes, 0);
        CHECK_EQ(lfx_check_log(&f, 0, &end, NULL, 0, &nb), SL_OK);
        CHECK_EQ(end, grown);
        CHECK_EQ(nb, cut + 30);
        lfx_fini(&f);
        if (test_cur_failed_) {
            fprintf(stderr, "  at cut %u\n", cut);
            return;
        }
    }
}

TEST(cut_inside_a_batch_is_refused)
{
    struct lfx f;
    struct sl_shard_config cfg = lfx_cfg_small();
    CHECK_EQ(lfx_init(&f, &cfg), SL_OK);
    uint64_t bases[30], end = 0;
    CHECK_EQ(fill(&f, 30, bases, NULL), SL_OK);
    uint64_t old_end = next_seq(&f);
    /* batch 7 has 4 records: its 2nd..4th sequences are inside it */
    for (uint64_t q = bases[7] + 1; q < bases[8]; q++) {
        CHECK_EQ(lfx_truncate(&f, q, &end), SL_EINVAL);
        CHECK_EQ(end, old_end);
        CHECK_EQ(next_seq(&f), old_end);
    }
    /* and inside a batch of an older sealed segment */
    CHECK_EQ(lfx_truncate(&f, bases[3] + 2, &end), SL_EINVAL);
    uint32_t nb = 0;
    CHECK_EQ(lfx_check_log(&f, 0, &end, NULL, 0, &nb), SL_OK);
    CHECK_EQ(end, old_end);
    CHECK_EQ(nb, 30);
    uint64_t b = 0;
    CHECK_EQ(lfx_append(&f, 1, NULL, &b), SL_OK);
    CHECK_EQ(b, old_end);
    /* past the end, at once */
    CHECK_EQ(sl_shard_truncate(f.s, old_end + 2, lfx_trunc_cb, NULL), SL_EINVAL);
    /* the end: a no-op */
    CHECK_EQ(lfx_truncate(&f, old_end + 1, &end), SL_OK);
    CHECK_EQ(end, old_end + 1);
    lfx_fini(&f);
}

TEST(cut_to_the_start_empties_the_log)
{
    struct lfx f;
    struct sl_shard_config cfg = lfx_cfg_small();
    CHECK_EQ(lfx_init(&f, &cfg), SL_OK);
    uint64_t bases[25], end = 0;
    CHECK_EQ(fill(&f, 25, bases, NULL), SL_OK);
    CHECK_EQ(lfx_truncate(&f, 0, &end), SL_OK);
    CHECK_EQ(end, 0);
    CHECK_EQ(count_files(f.dir, ".log"), 1);
    lfx_close(&f);
    CHECK_EQ(lfx_open(&f), SL_OK);
    CHECK_EQ(next_seq(&f), 0);
    uint64_t b = 9;
    CHECK_EQ(lfx_append(&f, 2, NULL, &b), SL_OK);
    CHECK_EQ(b, 0);
    lfx_fini(&f);
}

TEST(cut_below_retention_is_trimmed)
{
    struct lfx f;
    struct sl_shard_config cfg = lfx_cfg_small();
    cfg.retention_bytes = 8192;
    CHECK_EQ(lfx_init(&f, &cfg), SL_OK);
    uint64_t bases[60];
    CHECK_EQ(fill(&f, 60, bases, NULL), SL_OK);
    CHECK(sl_shard_retention_run(f.s) > 0);
    struct sl_shard_stats st;
    sl_shard_stats_progress(f.s, &st);
    CHECK(st.first_seq > 0);
    CHECK_EQ(sl_shard_truncate(f.s, st.first_seq - 1, lfx_trunc_cb, NULL), SL_ETRIMMED);
    uint64_t end = 0;
    CHECK_EQ(lfx_truncate(&f, st.first_seq, &end), SL_OK);
    CHECK_EQ(end, st.first_seq);
    lfx_fini(&f);
}

/* Appends in flight when the truncate is called are acknowledged first; new
 * appends wait (SL_EAGAIN) until it is done; a second truncate is refused. */
TEST(pending_appends_complete_first)
{
    struct lfx f;
    struct sl_shard_config cfg = lfx_cfg_small();
    CHECK_EQ(lfx_init(&f, &cfg), SL_OK);
    uint64_t bases[10];
    CHECK_EQ(fill(&f, 10, bases, NULL), SL_OK);
    static uint8_t buf[LFX_BATCH_CAP];
    struct lfx_wait aw[5] = {{0}};
    uint64_t seq = next_seq(&f);
    for (int i = 0; i < 5; i++) {
        size_t len = lfx_batch(buf, seq, 2);
        CHECK_EQ(sl_shard_append(f.s, buf, len, lfx_append_cb, &aw[i]), SL_OK);
        seq += 2;
    }
    struct lfx_wait tw = {0};
    CHECK_EQ(sl_shard_truncate(f.s, bases[4], lfx_trunc_cb, &tw), SL_OK);
    CHECK_EQ(sl_shard_truncate(f.s, bases[4], lfx_trunc_cb, NULL), SL_EAGAIN);
    size_t len = lfx_batch(buf, seq, 1);
    CHECK_EQ(sl_shard_append(f.s, buf, len, lfx_append_cb, NULL), SL_EAGAIN);
    lfx_run_until(&f, &tw);
    CHECK_EQ(tw.done, 1);
    CHECK_EQ(tw.err, SL_OK);
    for (int i = 0; i < 5; i++) {
        CHECK_EQ(aw[i].done, 1);
        CHECK_EQ(aw[i].err, SL_OK);
    }
    CHECK_EQ(next_seq(&f), bases[4]);
    uint64_t end = 0;
    CHECK_EQ(lfx_check_log(&f, 0, &end, NULL, 0, NULL), SL_OK);
    CHECK_EQ(end, bases[4]);
    lfx_fini(&f);
}

/* Under flush = interval with a long interval, written data is not synced
 * until the timer: a truncate does not wait for it (it asks for the sync). */
TEST(interval_flush_does_not_delay_the_cut)
{
    struct lfx f;
    struct sl_shard_config cfg = lfx_cfg_small();
    cfg.flush = SL_FLUSH_INTERVAL;
    cfg.flush_interval_ms = 3600000;
    CHECK_EQ(lfx_init(&f, &cfg), SL_OK);
    uint64_t bases[20], end = 0;
    CHECK_EQ(fill(&f, 20, bases, NULL), SL_OK);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK_EQ(lfx_truncate(&f, bases[6], &end), SL_OK);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    CHECK_EQ(end, bases[6]);
    CHECK(t1.tv_sec - t0.tv_sec < 10);
    lfx_close(&f);
    CHECK_EQ(lfx_open(&f), SL_OK);
    CHECK_EQ(lfx_check_log(&f, 0, &end, NULL, 0, NULL), SL_OK);
    CHECK_EQ(end, bases[6]);
    lfx_fini(&f);
}

/* A parked shard (a one-descriptor budget) is reopened by the truncate. */
TEST(cut_a_parked_shard)
{
    struct sl_shard_cache cache;
    sl_shard_cache_init(&cache, 1);
    struct lfx f;
    struct sl_shard_config cfg = lfx_cfg_small();
    cfg.cache = &cache;
    CHECK_EQ(lfx_init(&f, &cfg), SL_OK);
    uint64_t bases[30], end = 0;
    CHECK_EQ(fill(&f, 30, bases, NULL), SL_OK);
    lfx_close(&f);
    CHECK_EQ(lfx_open(&f), SL_OK); /* parked at open */
    CHECK_EQ(lfx_truncate(&f, bases[11], &end), SL_OK);
    CHECK_EQ(end, bases[11]);
    CHECK_EQ(lfx_check_log(&f, 0, &end, NULL, 0, NULL), SL_OK);
    CHECK_EQ(end, bases[11]);
    lfx_fini(&f);
    sl_shard_cache_fini(&cache);
}

TEST(close_while_a_truncate_waits)
{
    struct lfx f;
    struct sl_shard_config cfg = lfx_cfg_small();
    CHECK_EQ(lfx_init(&f, &cfg), SL_OK);
    uint64_t bases[10];
    CHECK_EQ(fill(&f, 10, bases, NULL), SL_OK);
    static uint8_t buf[LFX_BATCH_CAP];
    struct lfx_wait aw = {0}, tw = {0};
    size_t len = lfx_batch(buf, next_seq(&f), 1);
    CHECK_EQ(sl_shard_append(f.s, buf, len, lfx_append_cb, &aw), SL_OK);
    CHECK_EQ(sl_shard_truncate(f.s, bases[2], lfx_trunc_cb, &tw), SL_OK);
    lfx_close(&f);
    CHECK_EQ(tw.done, 1);
    CHECK_EQ(tw.err, SL_ECLOSED);
    CHECK_EQ(aw.done, 1);
    CHECK_EQ(lfx_open(&f), SL_OK);
    uint64_t end = 0;
    CHECK_EQ(lfx_check_log(&f, 0, &end, NULL, 0, NULL), SL_OK);
    CHECK_EQ(end, bases[9] + 2 + 1); /* batch 9 has 2 records, then the 1 appended */
    lfx_fini(&f);
}

/* A failure before any file changed leaves the shard as it was, writable; a
 * failure after makes it refuse writes, and a reopen finds a prefix that
 * ends at a batch boundary at or after the target. */
TEST(injected_failures)
{
    struct lfx f;
    struct sl_shard_config cfg = lfx_cfg_small();
    CHECK_EQ(lfx_init(&f, &cfg), SL_OK);
    uint64_t bases[40], end = 0;
    CHECK_EQ(fill(&f, 40, bases, NULL), SL_OK);
    uint64_t old_end = next_seq(&f);
    /* the first unlink fails: nothing changed */
    struct sl_file_faults ff = {.op = SL_FILE_FAULT_UNLINK, .nth = 1, .err = EIO};
    sl_file_faults_arm(&ff);
    int rc = lfx_truncate(&f, bases[5], &end);
    sl_file_faults_disarm();
    CHECK_EQ(rc, SL_EIO);
    CHECK_EQ(next_seq(&f), old_end);
    CHECK_EQ(lfx_check_log(&f, 0, &end, NULL, 0, NULL), SL_OK);
    CHECK_EQ(end, old_end);
    uint64_t b = 0;
    CHECK_EQ(lfx_append(&f, 1, NULL, &b), SL_OK);
    old_end = b + 1;
    /* the third unlink (the second segment's .log) fails: fatal */
    ff = (struct sl_file_faults){.op = SL_FILE_FAULT_UNLINK, .nth = 3, .err = EIO};
    sl_file_faults_arm(&ff);
    rc = lfx_truncate(&f, bases[5], &end);
    sl_file_faults_disarm();
    CHECK_EQ(rc, SL_EFATAL);
    CHECK_EQ(lfx_append(&f, 1, NULL, &b), SL_EFATAL);
    lfx_close(&f);
    CHECK_EQ(lfx_open(&f), SL_OK);
    CHECK_EQ(lfx_check_log(&f, 0, &end, NULL, 0, NULL), SL_OK);
    CHECK(end > bases[5] && end < old_end); /* the newest segment went, not the rest */
    CHECK_EQ(lfx_truncate(&f, bases[5], &end), SL_OK);
    CHECK_EQ(end, bases[5]);
    /* the cut of the .log fails after the .idx was cut: fatal, recovered */
    ff = (struct sl_file_faults){.op = SL_FILE_FAULT_FTRUNCATE, .nth = 2, .err = EIO};
    sl_file_faults_arm(&ff);
    rc = lfx_truncate(&f, bases[3], &end);
    sl_file_faults_disarm();
    CHECK_EQ(rc, SL_EFATAL);
    lfx_close(&f);
    CHECK_EQ(lfx_open(&f), SL_OK);
    CHECK_EQ(lfx_check_log(&f, 0, &end, NULL, 0, NULL), SL_OK);
    CHECK_EQ(end, bases[5]);
    lfx_fini(&f);
}

/* ---- leader epochs ------------------------------------------------------ */

TEST(epochs_stamped_and_read_back)
{
    struct lfx f;
    struct sl_shard_config cfg = lfx_cfg_small();
    CHECK_EQ(lfx_init(&f, &cfg), SL_OK);
    const uint32_t want[] = {0, 0, 3, 3, 3, 7, 0x7fffffff};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        struct sl_append_opts o = {.leader_epoch = want[i]};
        CHECK_EQ(lfx_append(&f, 2, &o, NULL), SL_OK);
    }
    uint32_t got[16], nb = 0;
    uint64_t end = 0;
    CHECK_EQ(lfx_check_log(&f, 0, &end, got, 16, &nb), SL_OK);
    CHECK_EQ(nb, 7);
    for (uint32_t i = 0; i < nb; i++) {
        CHECK_EQ(got[i], want[i]);
    }
    /* and after a restart (recovery verifies the stamps) */
    lfx_close(&f);
    CHECK_EQ(lfx_open(&f), SL_OK);
    CHECK_EQ(lfx_check_log(&f, 0, &end, got, 16, &nb), SL_OK);
    CHECK_EQ(got[6], 0x7fffffff);
    /* a plain append stamps 0 */
    CHECK_EQ(lfx_append(&f, 1, NULL, NULL), SL_OK);
    CHECK_EQ(lfx_check_log(&f, 0, &end, got, 16, &nb), SL_OK);
    CHECK_EQ(got[7], 0);
    lfx_fini(&f);
}

/* A follower stores its leader's batches as they are (SL_APPEND_KEEP_STAMPS):
 * the two logs are byte for byte equal; a batch that does not continue the
 * follower's log is refused. */
TEST(follower_keeps_the_leaders_stamps)
{
    struct lfx ld, fl;
    struct sl_shard_config cfg = lfx_cfg_small();
    CHECK_EQ(lfx_init(&ld, &cfg), SL_OK);
    CHECK_EQ(lfx_init(&fl, &cfg), SL_OK);
    for (uint32_t i = 0; i < 40; i++) {
        struct sl_append_opts o = {.leader_epoch = 1 + i / 10};
        CHECK_EQ(lfx_append(&ld, i % 3 + 1, &o, NULL), SL_OK);
    }
    static uint8_t a[LFX_READ_CAP], b[LFX_READ_CAP];
    struct sl_append_opts keep = {.flags = SL_APPEND_KEEP_STAMPS | SL_APPEND_DURABLE,
                                  .leader_epoch = 99 /* ignored */};
    uint64_t seq = 0;
    for (;;) {
        struct sl_shard_read rd;
        CHECK_EQ(lfx_read(&ld, seq, a, &rd), SL_OK);
        if (rd.len == 0) {
            break;
        }
        for (uint32_t off = 0; off < rd.len;) {
            struct sl_batch_header h;
            CHECK_EQ(sl_batch_peek(a + off, rd.len - off, &h), SL_OK);
            if (seq == 0) {
                /* not the follower's next sequence: refused, nothing stored */
                struct sl_batch_header h2 = h;
                uint8_t tmp[LFX_BATCH_CAP];
                memcpy(tmp, a + off, h.length);
                sl_batch_stamp_epoch(tmp, 5, h2.append_time_ms, h2.leader_epoch);
                CHECK_EQ(sl_shard_append_opt(fl.s, tmp, h.length, &keep, lfx_append_cb, NULL),
                         SL_EINVAL);
            }
            struct lfx_wait w = {0};
            CHECK_EQ(sl_shard_append_opt(fl.s, a + off, h.length, &keep, lfx_append_cb, &w), SL_OK);
            lfx_run_until(&fl, &w);
            CHECK_EQ(w.err, SL_OK);
            CHECK_EQ(w.seq, h.base_seq);
            seq += h.record_count;
            off += h.length;
        }
    }
    /* the same bytes from both */
    struct sl_shard_read ra, rb;
    CHECK_EQ(lfx_read(&ld, 0, a, &ra), SL_OK);
    CHECK_EQ(lfx_read(&fl, 0, b, &rb), SL_OK);
    CHECK(ra.len > 0 && ra.len == rb.len && memcmp(a, b, ra.len) == 0);
    lfx_fini(&ld);
    lfx_fini(&fl);
}

struct epoch_seen {
    uint32_t n;
    uint32_t epoch[64];
    uint64_t start[64];
};

static int collect_epoch(void *ctx, uint32_t epoch, uint64_t start)
{
    struct epoch_seen *s = ctx;
    if (s->n < 64) {
        s->epoch[s->n] = epoch;
        s->start[s->n] = start;
    }
    s->n++;
    return SL_OK;
}

/* The scan's answer equals a header-by-header walk of the log, from every
 * batch start; segments of a single epoch are skipped on two headers. */
TEST(scan_epochs_matches_the_headers)
{
    struct lfx f;
    struct sl_shard_config cfg = lfx_cfg_small();
    CHECK_EQ(lfx_init(&f, &cfg), SL_OK);
    /* epochs 0 (a single-node history), then 2, 3 (long: several segments), 9 */
    uint32_t ep[90];
    uint64_t bases[90];
    for (uint32_t i = 0; i < 90; i++) {
        ep[i] = i < 10 ? 0 : i < 14 ? 2 : i < 80 ? 3 : 9;
        struct sl_append_opts o = {.leader_epoch = ep[i]};
        CHECK_EQ(lfx_append(&f, i % 4 + 1, &o, &bases[i]), SL_OK);
    }
    for (int reopen = 0; reopen < 2; reopen++) {
        for (uint32_t from = 0; from < 90; from += 7) {
            struct epoch_seen s = {0};
            CHECK_EQ(sl_shard_scan_epochs(f.s, bases[from], collect_epoch, &s), SL_OK);
            /* the model: the first batch at or after `from`, then each change */
            struct epoch_seen m = {0};
            for (uint32_t i = from; i < 90; i++) {
                if (i == from || ep[i] != ep[i - 1]) {
                    (void)collect_epoch(&m, ep[i], bases[i]);
                }
            }
            CHECK_EQ(s.n, m.n);
            for (uint32_t i = 0; i < s.n; i++) {
                CHECK_EQ(s.epoch[i], m.epoch[i]);
                CHECK_EQ(s.start[i], m.start[i]);
            }
        }
        /* from inside a batch: the start is clamped to it */
        struct epoch_seen s = {0};
        CHECK_EQ(sl_shard_scan_epochs(f.s, bases[3] + 1, collect_epoch, &s), SL_OK);
        CHECK_EQ(s.start[0], bases[3] + 1);
        CHECK_EQ(s.epoch[0], 0);
        lfx_close(&f);
        CHECK_EQ(lfx_open(&f), SL_OK);
    }
    /* the end: nothing */
    struct epoch_seen s = {0};
    CHECK_EQ(sl_shard_scan_epochs(f.s, next_seq(&f), collect_epoch, &s), SL_OK);
    CHECK_EQ(s.n, 0);
    lfx_fini(&f);
}

/* Bytes this process has read through read/pread so far (/proc/self/io
 * rchar; page-cache hits included): 0 when unreadable. */
static uint64_t bytes_read(void)
{
    FILE *fp = fopen("/proc/self/io", "r");
    unsigned long long v = 0;
    if (fp != NULL) {
        if (fscanf(fp, "rchar: %llu", &v) != 1) {
            v = 0;
        }
        fclose(fp);
    }
    return v;
}

/* The cost claimed in shard.h: a segment of one epoch, the epoch before it,
 * is skipped on two headers (and its index's last entry). A log of ~40
 * segments of epoch 5 then one of epoch 6: the scan reads a few KiB, not the
 * log's ~150 KiB. */
TEST(scan_epochs_skips_single_epoch_segments)
{
    struct lfx f;
    struct sl_shard_config cfg = lfx_cfg_small();
    CHECK_EQ(lfx_init(&f, &cfg), SL_OK);
    uint64_t b = 0, b6 = 0;
    for (uint32_t i = 0; i < 500; i++) {
        struct sl_append_opts o = {.leader_epoch = i < 480 ? 5 : 6};
        CHECK_EQ(lfx_append(&f, 1, &o, &b), SL_OK);
        b6 = i == 480 ? b : b6;
    }
    lfx_close(&f);
    CHECK_EQ(lfx_open(&f), SL_OK);
    struct sl_shard_stats st;
    sl_shard_stats(f.s, &st);
    CHECK(st.segments >= 30);
    uint64_t r0 = bytes_read();
    if (r0 == 0) {
        lfx_fini(&f);
        SKIP("/proc/self/io is not readable");
    }
    struct epoch_seen s = {0};
    CHECK_EQ(sl_shard_scan_epochs(f.s, 0, collect_epoch, &s), SL_OK);
    uint64_t used = bytes_read() - r0;
    CHECK_EQ(s.n, 2);
    CHECK_EQ(s.epoch[1], 6);
    CHECK_EQ(s.start[1], b6);
    fprintf(stderr, "  %u segments, %llu log bytes: the scan read %llu bytes\n", st.segments,
            (unsigned long long)st.bytes, (unsigned long long)used);
    CHECK(used < st.bytes / 8);
    lfx_fini(&f);
}

/* Unsynced reads (a replicated leader serving its followers): a durable append's batch is
 * readable with .unsynced once written, before its fdatasync; a plain read still stops at
 * what was acknowledged. The written listener runs in between. */
struct unsynced_probe {
    struct lfx *f;
    int calls;
    uint64_t visible, written; /* the stats at the first call */
    struct lfx_read plain, unsynced;
    uint8_t plain_buf[LFX_READ_CAP];
    uint8_t unsynced_buf[LFX_READ_CAP];
};

static void on_written(void *ctx, struct sl_shard *s)
{
    struct unsynced_probe *p = ctx;
    if (p->calls++ > 0) {
        return;
    }
    struct sl_shard_stats st;
    sl_shard_stats_progress(s, &st);
    p->visible = st.visible_seq;
    p->written = sl_shard_written_seq(s);
    lfx_read_start(p->f, 0, p->plain_buf, false, &p->plain);
    lfx_read_start(p->f, 0, p->unsynced_buf, true, &p->unsynced);
}

TEST(unsynced_read_sees_written_before_durable)
{
    struct lfx f;
    struct sl_shard_config cfg = lfx_cfg_small();
    cfg.segment_bytes = 1 << 20;
    cfg.flush = SL_FLUSH_ALWAYS;
    CHECK_EQ(lfx_init(&f, &cfg), SL_OK);
    static struct unsynced_probe p;
    memset(&p, 0, sizeof(p));
    p.f = &f;
    sl_shard_set_written_listener(f.s, on_written, &p);
    struct sl_append_opts durable = {.flags = SL_APPEND_DURABLE};
    uint64_t base = 0;
    CHECK_EQ(lfx_append(&f, 3, &durable, &base), SL_OK);
    lfx_run_until(&f, &p.unsynced.w);
    lfx_run_until(&f, &p.plain.w);
    CHECK(p.calls >= 1);
    CHECK_EQ(p.visible, 0);
    CHECK_EQ(p.written, 3);
    CHECK_EQ(p.plain.w.err, SL_OK);
    CHECK_EQ(p.plain.rd.len, 0); /* not acknowledged yet: a plain read is at the tail */
    CHECK_EQ(p.plain.rd.next_seq, 0);
    CHECK_EQ(p.unsynced.w.err, SL_OK);
    CHECK_EQ(p.unsynced.rd.batch_count, 1);
    CHECK_EQ(p.unsynced.rd.next_seq, 3);
    struct sl_batch_header h;
    CHECK_EQ(sl_batch_peek(p.unsynced_buf, p.unsynced.rd.len, &h), SL_OK);
    CHECK_EQ(h.base_seq, 0);
    CHECK_EQ(h.record_count, 3);
    /* acknowledged: both ends meet; an unsynced read past the written end is refused */
    struct sl_shard_stats st;
    sl_shard_stats_progress(f.s, &st);
    CHECK_EQ(st.visible_seq, 3);
    CHECK_EQ(sl_shard_written_seq(f.s), 3);
    int calls = p.calls;
    CHECK_EQ(lfx_append(&f, 2, &durable, &base), SL_OK);
    CHECK(p.calls > calls);
    sl_shard_stats_progress(f.s, &st);
    CHECK_EQ(st.visible_seq, 5);
    CHECK_EQ(sl_shard_written_seq(f.s), 5);
    lfx_read_start(&f, 6, p.unsynced_buf, true, &p.unsynced);
    lfx_run_until(&f, &p.unsynced.w);
    CHECK_EQ(p.unsynced.w.err, SL_EINVAL);
    lfx_fini(&f);
}

/* The shard is the empty log at `x`, or holds `x`.. after appends: stats and reads agree. */
static void check_starts_at(struct lfx *f, uint64_t x, uint64_t end_want)
{
    struct sl_shard_stats st;
    sl_shard_stats(f->s, &st);
    CHECK_EQ(st.first_seq, x);
    CHECK_EQ(st.next_seq, end_want);
    CHECK_EQ(st.visible_seq, end_want);
    static uint8_t buf[LFX_READ_CAP];
    struct sl_shard_read rd;
    if (x > 0) {
        CHECK_EQ(lfx_read(f, x - 1, buf, &rd), SL_ETRIMMED);
        CHECK_EQ(rd.first_seq, x);
        CHECK_EQ(lfx_read(f, 0, buf, &rd), SL_ETRIMMED);
    }
    uint64_t end = 0;
    CHECK_EQ(lfx_check_log(f, x, &end, NULL, 0, NULL), SL_OK);
    CHECK_EQ(end, end_want);
    CHECK_EQ(count_files(f->dir, ".idx") <= count_files(f->dir, ".log"), 1);
}

TEST(reset_empties_the_log_and_starts_it_later)
{
    struct lfx f;
    struct sl_shard_config cfg = lfx_cfg_small();
    CHECK_EQ(lfx_init(&f, &cfg), SL_OK);
    uint64_t bases[60], end = 0;
    CHECK_EQ(fill(&f, 60, bases, NULL), SL_OK);
    CHECK(count_files(f.dir, ".log") >= 5);
    uint64_t x = next_seq(&f) + 1000;
    CHECK_EQ(lfx_reset(&f, x, &end), SL_OK);
    CHECK_EQ(end, x);
    check_starts_at(&f, x, x);
    CHECK_EQ(count_files(f.dir, ".log"), 1);
    CHECK_EQ(count_markers(f.dir), 0);
    /* the same after a reopen (an empty segment whose base is x) */
    lfx_close(&f);
    CHECK_EQ(lfx_open(&f), SL_OK);
    check_starts_at(&f, x, x);
    /* appends go on from x, rolling as before, and survive a reopen */
    uint64_t more[30];
    CHECK_EQ(fill(&f, 30, more, NULL), SL_OK);
    CHECK_EQ(more[0], x);
    uint64_t grown = next_seq(&f);
    check_starts_at(&f, x, grown);
    lfx_close(&f);
    CHECK_EQ(lfx_open(&f), SL_OK);
    check_starts_at(&f, x, grown);
    /* a truncate back to x empties it again; below x is trimmed */
    CHECK_EQ(sl_shard_truncate(f.s, x - 1, lfx_trunc_cb, NULL), SL_ETRIMMED);
    CHECK_EQ(lfx_truncate(&f, x, &end), SL_OK);
    check_starts_at(&f, x, x);
    lfx_fini(&f);
}

TEST(reset_of_a_fresh_shard_and_to_the_end)
{
    struct lfx f;
    struct sl_shard_config cfg = lfx_cfg_small();
    CHECK_EQ(lfx_init(&f, &cfg), SL_OK);
    uint64_t end = 0;
    CHECK_EQ(lfx_reset(&f, 0, &end), SL_OK);   /* empty at 0 already: a no-op */
    CHECK_EQ(lfx_reset(&f, 777, &end), SL_OK); /* a shard that never made its files */
    CHECK_EQ(end, 777);
    check_starts_at(&f, 777, 777);
    CHECK_EQ(lfx_reset(&f, 777, &end), SL_OK); /* there already */
    lfx_close(&f);
    CHECK_EQ(lfx_open(&f), SL_OK);
    check_starts_at(&f, 777, 777);
    uint64_t bases[20];
    CHECK_EQ(fill(&f, 20, bases, NULL), SL_OK);
    uint64_t e2 = next_seq(&f);
    /* to its own end: what it held goes, the sequence goes on */
    CHECK_EQ(lfx_reset(&f, e2, &end), SL_OK);
    check_starts_at(&f, e2, e2);
    /* refusals: past the largest sequence; while a truncate runs */
    CHECK_EQ(fill(&f, 3, bases, NULL), SL_OK);
    CHECK_EQ(sl_shard_reset(f.s, SL_SHARD_RESET_SEQ_MAX + 1, lfx_trunc_cb, NULL), SL_EINVAL);
    struct lfx_wait w = {0};
    CHECK_EQ(sl_shard_truncate(f.s, e2, lfx_trunc_cb, &w), SL_OK);
    CHECK_EQ(sl_shard_reset(f.s, e2 + 100, lfx_trunc_cb, NULL), SL_EAGAIN);
    lfx_run_until(&f, &w);
    CHECK_EQ(w.err, SL_OK);
    check_starts_at(&f, e2, e2);
    lfx_fini(&f);
}

TEST(reset_after_retention_trimmed_the_head)
{
    struct lfx f;
    struct sl_shard_config cfg = lfx_cfg_small();
    cfg.retention_bytes = 8192;
    CHECK_EQ(lfx_init(&f, &cfg), SL_OK);
    uint64_t bases[60], end = 0;
    CHECK_EQ(fill(&f, 60, bases, NULL), SL_OK);
    CHECK(sl_shard_retention_run(f.s) > 0);
    uint64_t x = next_seq(&f) + 5;
    CHECK_EQ(lfx_reset(&f, x, &end), SL_OK);
    check_starts_at(&f, x, x);
    CHECK_EQ(sl_shard_retention_run(f.s), 0); /* the active segment is never deleted */
    check_starts_at(&f, x, x);
    lfx_fini(&f);
}

/* A replica removed from its shard drops its copy: a reset below the end (to 0) leaves the
 * log as a shard that never held a record, whether it started at 0 (its first segment,
 * full, goes too) or later (a reset or retention moved its start). */
TEST(reset_below_the_end_drops_the_copy)
{
    struct lfx f;
    struct sl_shard_config cfg = lfx_cfg_small();
    CHECK_EQ(lfx_init(&f, &cfg), SL_OK);
    uint64_t bases[60], end = 0;
    CHECK_EQ(fill(&f, 60, bases, NULL), SL_OK);
    CHECK(count_files(f.dir, ".log") >= 5);
    CHECK_EQ(lfx_reset(&f, 0, &end), SL_OK);
    CHECK_EQ(end, 0);
    check_starts_at(&f, 0, 0);
    CHECK_EQ(count_files(f.dir, ".log"), 1);
    CHECK_EQ(count_markers(f.dir), 0);
    /* nothing of the old records is read back, before or after a reopen */
    static uint8_t buf[LFX_READ_CAP];
    struct sl_shard_read rd;
    CHECK_EQ(lfx_read(&f, 0, buf, &rd), SL_OK); /* at the tail: nothing there */
    CHECK_EQ(rd.len, 0);
    CHECK_EQ(rd.batch_count, 0);
    lfx_close(&f);
    CHECK_EQ(lfx_open(&f), SL_OK);
    check_starts_at(&f, 0, 0);
    /* appends start again at 0; then the same from a log that starts later */
    CHECK_EQ(fill(&f, 20, bases, NULL), SL_OK);
    CHECK_EQ(bases[0], 0);
    uint64_t x = next_seq(&f) + 500;
    CHECK_EQ(lfx_reset(&f, x, &end), SL_OK);
    CHECK_EQ(fill(&f, 30, bases, NULL), SL_OK);
    CHECK_EQ(bases[0], x);
    CHECK_EQ(lfx_reset(&f, 0, &end), SL_OK);
    check_starts_at(&f, 0, 0);
    CHECK_EQ(count_files(f.dir, ".log"), 1);
    lfx_close(&f);
    CHECK_EQ(lfx_open(&f), SL_OK);
    check_starts_at(&f, 0, 0);
    CHECK_EQ(fill(&f, 5, bases, NULL), SL_OK);
    CHECK_EQ(bases[0], 0);
    lfx_close(&f);
    CHECK_EQ(lfx_open(&f), SL_OK);
    CHECK_EQ(lfx_check_log(&f, 0, &end, NULL, 0, NULL), SL_OK);
    CHECK_EQ(end, next_seq(&f));
    lfx_fini(&f);
}

int main(void)
{
    if (getenv("SLUICE_TEST_LOG") == NULL) {
        sl_log_set_level(SL_LOG_OFF);
    }
    RUN(cut_inside_active_segment);
    RUN(cut_at_every_boundary_of_many_segments);
    RUN(cut_inside_a_batch_is_refused);
    RUN(cut_to_the_start_empties_the_log);
    RUN(cut_below_retention_is_trimmed);
    RUN(pending_appends_complete_first);
    RUN(interval_flush_does_not_delay_the_cut);
    RUN(cut_a_parked_shard);
    RUN(close_while_a_truncate_waits);
    RUN(injected_failures);
    RUN(epochs_stamped_and_read_back);
    RUN(follower_keeps_the_leaders_stamps);
    RUN(scan_epochs_matches_the_headers);
    RUN(scan_epochs_skips_single_epoch_segments);
    RUN(unsynced_read_sees_written_before_durable);
    RUN(reset_empties_the_log_and_starts_it_later);
    RUN(reset_of_a_fresh_shard_and_to_the_end);
    RUN(reset_after_retention_trimmed_the_head);
    RUN(reset_below_the_end_drops_the_copy);
    TEST_END();
}
