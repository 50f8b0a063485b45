/* truncate_shard.c - a truncate killed (SIGKILL) at any step leaves a log
 * that a restart finds cut at a batch boundary at or after the target, never
 * before it, never with a hole; the truncate run again finishes the job.
 *
 * Covers: a child process opens a shard of many 4 KiB segments and truncates
 * it, killing itself (sl_shard_truncate_test_kill_after) after step k of the
 * cut: every unlink, ftruncate and fsync of storage/shard_truncate.c's order,
 * k = 1, 2, ... until a run completes without being killed. The parent then
 * reopens the shard (recovery), reads the whole log back (every batch valid,
 * every record's value naming its sequence, contiguous from 0) and checks
 * its end E exactly: while segments are being dropped (3 steps each: unlink
 * .log, unlink .idx, directory fsync, newest first) E is the first sequence
 * of the newest segment not yet unlinked; then E stays at the end of the
 * segment holding the cut until its .log is cut, then E is the target; E
 * never goes back up as k grows. Recovery truncates no byte (every cut was at
 * a batch boundary). Then the truncate runs again to the target and appends
 * continue from it, across a reopen. Targets: inside an early segment (many
 * dropped), a segment's first sequence, the log's first sequence (all of
 * it), inside the active segment (nothing dropped).
 *
 * A reset (sl_shard_reset: the log emptied, starting at a later sequence, or at 0 below its
 * end as a removed replica drops its copy) killed after each of its steps the same way: the
 * reopened log is the old one whole or the empty one at the target, never a mix; once the
 * target is seen, never the old log again at a later kill point; no reset marker is left;
 * the reset run again finishes, appends go on from the target across a reopen. Under
 * --power a kill before the marker's directory fsync returned leaves the old log (the
 * marker lost with the power).
 *
 * kill -9 keeps the page cache. With --power MOUNT (tests/crash/
 * truncate_power.sh: the shard on powerfs, tests/power/powerfs.c, which keeps
 * only what was fsynced) the power is also cut right after each kill (every
 * other time tearing the last unsynced write): a step not yet fsynced is
 * lost, so E is then the first sequence of the newest segment whose unlink
 * was followed by its directory fsync, and the cut of the .log counts once
 * its fsync returned.
 */
#include "../unit/test.h"
#include "../unit/log_fx.h"

#include "common/fileio.h"
#include "common/log.h"

#include <dirent.h>
#include <inttypes.h>
#include <signal.h>
#include <sys/wait.h>

#define BATCHES   60
#define SEGS_MAX  64
#define STEPS_MAX 400

static const char *g_power; /* --power MOUNT: powerfs's mount point */

/* Cuts the power of powerfs (everything not fsynced is lost); `tear` keeps
 * a random prefix of the last unsynced write. 0 or -1. */
static int power_cut(int tear)
{
    char ctl[PATH_MAX];
    snprintf(ctl, sizeof(ctl), "%s/.powercut", g_power);
    FILE *fp = fopen(ctl, "w");
    if (fp == NULL) {
        return -1;
    }
    int ok = fputs(tear ? "tear" : "cut", fp) >= 0;
    return fclose(fp) == 0 && ok ? 0 : -1;
}

/* The base sequences of the .log files in dir, ascending. */
static uint32_t seg_bases(const char *dir, uint64_t *out)
{
    DIR *d = opendir(dir);
    uint32_t n = 0;
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL && n < SEGS_MAX) {
        size_t l = strlen(e->d_name);
        if (l == 24 && strcmp(e->d_name + 20, ".log") == 0) {
            out[n++] = strtoull(e->d_name, NULL, 10);
        }
    }
    if (d != NULL) {
        closedir(d);
    }
    for (uint32_t i = 1; i < n; i++) { /* insertion sort: a few dozen */
        for (uint32_t j = i; j > 0 && out[j - 1] > out[j]; j--) {
            uint64_t t = out[j];
            out[j] = out[j - 1];
            out[j - 1] = t;
        }
    }
    return n;
}

/* The child: truncates (or resets) the shard to `target`, killing itself after step
 * `kill_after`; exits 0 when the operation completed. */
static _Noreturn void child_cut(struct lfx *f, uint64_t target, bool reset, uint32_t kill_after)
{
    /* a ring of its own: the parent's is shared memory with the kernel */
    sl_ring_fini(&f->ring);
    if (sl_ring_init(&f->ring, 64) != SL_OK || lfx_open(f) != SL_OK) {
        _exit(10);
    }
    sl_shard_truncate_test_kill_after(f->s, kill_after);
    uint64_t end = 0;
    int rc = lfx_cut(f, target, reset, &end);
    _exit(rc == SL_OK && end == target ? 0 : 11);
}

/* A fresh log of BATCHES batches (bases[] gets each base), closed; under --power made
 * durable with its directories' entries (the shard syncs its own files). *end: its end. */
static void make_log(struct lfx *f, uint64_t *bases, uint64_t *end)
{
    *end = 0;
    struct sl_shard_config cfg = lfx_cfg_small();
    CHECK_EQ(lfx_init(f, &cfg), SL_OK);
    for (uint32_t i = 0; i < BATCHES; i++) {
        CHECK_EQ(lfx_append(f, i % 4 + 1, NULL, &bases[i]), SL_OK);
    }
    lfx_close(f);
    if (g_power != NULL) {
        char up[PATH_MAX];
        snprintf(up, sizeof(up), "%s/..", f->root);
        CHECK_EQ(sl_fsync_dir(f->root), SL_OK);
        CHECK_EQ(sl_fsync_dir(up), SL_OK);
    }
    *end = bases[BATCHES - 1] + (BATCHES - 1) % 4 + 1;
}

/* Runs child_cut in a child killed after step k (under --power the power is cut then,
 * every other time tearing the last unsynced write); *killed: whether it was killed. */
static void cut_killed(struct lfx *f, uint64_t target, bool reset, uint32_t k, bool *killed)
{
    *killed = false;
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        child_cut(f, target, reset, k);
    }
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    *killed = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
    CHECK(*killed || (WIFEXITED(status) && WEXITSTATUS(status) == 0));
    if (g_power != NULL && *killed) {
        CHECK_EQ(power_cut(k % 2 == 0), 0);
    }
}

/* One target: every kill point. `which` picks it from the log built. */
static void run_target(int which)
{
    uint64_t prev_end = UINT64_MAX;
    for (uint32_t k = 1; k <= STEPS_MAX; k++) {
        struct lfx f;
        uint64_t bases[BATCHES];
        uint64_t old_end = 0;
        make_log(&f, bases, &old_end);
        uint64_t segs[SEGS_MAX];
        uint32_t n = seg_bases(f.dir, segs);
        CHECK(n >= 6);
        uint64_t target = which == 0 ? bases[9] : which == 1 ? segs[2] : which == 2 ? 0 : bases[57];
        uint32_t seg_k = 0; /* the segment holding the cut */
        while (seg_k + 1 < n && segs[seg_k + 1] <= target) {
            seg_k++;
        }
        uint32_t dropped = n - 1 - seg_k;
        bool killed = false;
        cut_killed(&f, target, false, k, &killed);
        CHECK_EQ(lfx_open(&f), SL_OK);
        struct sl_shard_stats st;
        sl_shard_stats(f.s, &st);
        CHECK_EQ(st.recovery_truncated_bytes, 0);
        uint64_t end = 0;
        CHECK_EQ(lfx_check_log(&f, 0, &end, NULL, 0, NULL), SL_OK);
        CHECK_EQ(end, st.next_seq);
        /* the exact state after step k */
        uint64_t seg_end = dropped > 0 ? segs[seg_k + 1] : old_end;
        if (!killed) {
            CHECK_EQ(end, target);
        } else if (g_power != NULL && k <= 3 * dropped) {
            /* segments whose unlinks a directory fsync made durable */
            CHECK_EQ(end, k / 3 == 0 ? old_end : segs[n - k / 3]);
        } else if (k <= 3 * dropped) {
            CHECK_EQ(end, segs[n - (k + 2) / 3]);
        } else {
            CHECK(end == seg_end || end == target);
        }
        CHECK(end >= target && end <= prev_end);
        prev_end = end;
        /* the truncate again, then the log grows from the target */
        uint64_t e2 = 0;
        CHECK_EQ(lfx_truncate(&f, target, &e2), SL_OK);
        CHECK_EQ(e2, target);
        uint64_t b = 0;
        for (int i = 0; i < 12; i++) {
            CHECK_EQ(lfx_append(&f, 2, NULL, &b), SL_OK);
        }
        lfx_close(&f);
        CHECK_EQ(lfx_open(&f), SL_OK);
        CHECK_EQ(lfx_check_log(&f, 0, &end, NULL, 0, NULL), SL_OK);
        CHECK_EQ(end, target + 24);
        lfx_fini(&f);
        if (test_cur_failed_) {
            fprintf(stderr, "  target %d, killed after step %u\n", which, k);
            return;
        }
        if (!killed) {
            fprintf(stderr, "  target %" PRIu64 ": %u kill points, %u segments dropped\n", target,
                    k - 1, dropped);
            return;
        }
    }
    CHECK(!"the truncate never finished within STEPS_MAX steps");
}

/* A reset to past the end (`below` false: a replica starting at its leader's log start) or
 * to 0 (`below` true: a removed replica dropping its copy, its first segment full). */
static void run_reset(bool below)
{
    bool reset_seen = false;
    for (uint32_t k = 1; k <= STEPS_MAX; k++) {
        struct lfx f;
        uint64_t bases[BATCHES];
        uint64_t old_end = 0;
        make_log(&f, bases, &old_end);
        uint64_t target = below ? 0 : old_end + 50;
        bool killed = false;
        cut_killed(&f, target, true, k, &killed);
        CHECK_EQ(lfx_open(&f), SL_OK);
        CHECK_EQ(lfx_count_names(f.dir, NULL, "reset-"), 0); /* recovery finished it */
        struct sl_shard_stats st;
        sl_shard_stats(f.s, &st);
        CHECK_EQ(st.recovery_truncated_bytes, 0);
        uint64_t end = 0;
        if (st.next_seq == old_end) {
            /* the old log, whole: only before the commit (the marker durable) */
            CHECK(killed && !reset_seen);
            CHECK(g_power != NULL && k <= 1); /* (kill -9 keeps the page cache) */
            CHECK_EQ(st.next_seq, old_end);
            CHECK_EQ(lfx_check_log(&f, 0, &end, NULL, 0, NULL), SL_OK);
            CHECK_EQ(end, old_end);
            CHECK_EQ(lfx_reset(&f, target, &end), SL_OK);
        } else {
            reset_seen = true;
        }
        sl_shard_stats(f.s, &st);
        CHECK_EQ(st.first_seq, target);
        CHECK_EQ(st.next_seq, target);
        CHECK_EQ(st.segments, 1);
        uint64_t b = 0;
        for (int i = 0; i < 12; i++) {
            CHECK_EQ(lfx_append(&f, 2, NULL, &b), SL_OK);
        }
        lfx_close(&f);
        CHECK_EQ(lfx_open(&f), SL_OK);
        CHECK_EQ(lfx_check_log(&f, target, &end, NULL, 0, NULL), SL_OK);
        CHECK_EQ(end, target + 24);
        lfx_fini(&f);
        if (test_cur_failed_) {
            fprintf(stderr, "  reset to %" PRIu64 " killed after step %u\n", target, k);
            return;
        }
        if (!killed) {
            fprintf(stderr, "  reset to %" PRIu64 ": %u kill points\n", target, k - 1);
            return;
        }
    }
    CHECK(!"the reset never finished within STEPS_MAX steps");
}

TEST(kill_resetting)
{
    run_reset(false);
}

TEST(kill_resetting_below_the_end)
{
    run_reset(true);
}

TEST(kill_inside_an_early_segment)
{
    run_target(0);
}

TEST(kill_at_a_segment_start)
{
    run_target(1);
}

TEST(kill_cutting_everything)
{
    run_target(2);
}

TEST(kill_inside_the_active_segment)
{
    run_target(3);
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--power") == 0) {
        g_power = argv[2];
    } else if (argc != 1) {
        fprintf(stderr, "usage: crash_truncate_shard [--power POWERFS_MOUNT]\n");
        return 2;
    }
    if (getenv("SLUICE_TEST_LOG") == NULL) {
        sl_log_set_level(SL_LOG_OFF);
    }
    RUN(kill_inside_an_early_segment);
    RUN(kill_at_a_segment_start);
    RUN(kill_cutting_everything);
    RUN(kill_inside_the_active_segment);
    RUN(kill_resetting);
    RUN(kill_resetting_below_the_end);
    TEST_END();
}
