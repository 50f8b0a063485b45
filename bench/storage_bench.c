/* storage_bench.c - storage engine throughput against the machine's ceilings.
 *
 *   storage_bench [--quick] [--mib N] [--dir D] [--only CASE] [--json]
 *
 * A benchmark, not a test. For each flush policy (ALWAYS; INTERVAL with
 * flush_interval_ms = 100), record size (100 B, 1024 B) and batch size (1,
 * 100, 1000 records) it appends a fixed payload volume (--mib N: exactly N
 * MiB; by default 64 MiB, extended on a fast disk toward 1 s, at most 16x and
 * one segment; every case stops at a 3 s cap) to a
 * fresh shard, keeping as many appends in flight as the shard accepts (append
 * until SL_EAGAIN, then run the ring). The batch bytes are built once per case
 * and appended again and again: encoding is the producer's cost, not the
 * broker's. Reported: records/s and payload MB/s (records x record size), disk
 * MB/s (batch bytes, headers and framing included).
 *
 * Each figure is compared with a ceiling measured right after it with raw
 * io_uring writes (common/ring.h) to a fresh file in the same directory, of
 * the same bytes, in writes of the engine's group-write size (the largest
 * write the engine can issue: min(write_buf_bytes, bytes per fdatasync)),
 * with write_bufs - 1 writes in flight (the engine's limit), and the same
 * fdatasync cadence:
 *   ALWAYS    group commit: an fdatasync after each group of bytes, a group
 *             being the engine's achieved bytes per fdatasync (log bytes /
 *             stats.fsyncs delta); like the engine, writes of the next group
 *             proceed while the fdatasync of the previous one runs (one
 *             fdatasync at a time, each covering the writes completed
 *             before it). The serial form {write, wait, fdatasync, wait} is
 *             no ceiling: the engine overlaps the two and beats it;
 *   INTERVAL  plain writes, an fdatasync (overlapping the writes) every 100 ms.
 * Engine time runs from the first append to the last acknowledgement; ceiling
 * time from the first write to the last write's (ALWAYS: fdatasync's)
 * completion. The closing fdatasync of INTERVAL is outside both.
 *
 * Then a sequential read of each INTERVAL shard with sl_shard_read in 1 MiB
 * reads (the shard verifies every batch); this is page-cache throughput.
 * Then a one-off disk characterisation to choose between buffered and
 * O_DIRECT writes and whether to preallocate segments: 256 KiB writes, each
 * followed by an fdatasync, to (1) a new file (buffered append), (2) a
 * pre-zeroed file (buffered overwrite), (3) the same with O_DIRECT, (4) a file
 * preallocated with fallocate(FALLOC_FL_KEEP_SIZE) (buffered append); and the
 * latency of one 4 KiB append + fdatasync (p50/p99).
 *
 * Data lives in a fresh mkdtemp directory (under /var/tmp, or under --dir),
 * removed at the end. Units: MB = 10^6 bytes, MiB = 2^20. Single-threaded:
 * one ring, every callback on the main thread. Errors other than a case's
 * engine error end the program (this is a tool, not a library).
 */
#include "common/assert.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"
#include "common/ring.h"
#include "storage/batch.h"
#include "storage/shard.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdbool.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#define NS_PER_S 1000000000ull
#define NS_PER_MS 1000000ull
#define MIB ((uint64_t)1 << 20)
#define KIB ((uint64_t)1 << 10)

#define BENCH_RING_ENTRIES 256u
#define BENCH_FLUSH_INTERVAL_MS 100u
#define BENCH_MIB_DEFAULT 64u
#define BENCH_MIB_QUICK 16u
#define BENCH_MIB_MAX 4096u
/* Per-case time caps (engine and ceiling each): 12 cases x 2 x 3 s = 72 s
 * worst case, the rest of the run is ~10-20 s, well under 3 minutes. */
#define BENCH_CAP_NS_DEFAULT (3ull * NS_PER_S)
#define BENCH_CAP_NS_QUICK (400ull * NS_PER_MS)
/* Without --mib, a case that appended its volume in under BENCH_MIN_NS goes
 * on until BENCH_MIN_NS, BENCH_EXTEND_MAX times the volume or one full
 * segment, whichever comes first (a 30 ms sample on a fast disk is noise). */
#define BENCH_MIN_NS (1000ull * NS_PER_MS)
#define BENCH_EXTEND_MAX 16u
#define BENCH_READ_BYTES (1u << 20)
#define BENCH_PATH_MAX 4096u
/* An append that keeps failing with SL_EAGAIN while nothing is in flight
 * can never succeed: after this many such retries the case is a stall. */
#define BENCH_STALL_RETRIES 1000u

#define DISK_WRITE_BYTES (256u << 10)
#define DISK_MIB_DEFAULT 64u
#define DISK_MIB_QUICK 8u
#define DISK_LAT_WRITE_BYTES 4096u
#define DISK_LAT_SAMPLES_DEFAULT 1000u
#define DISK_LAT_SAMPLES_QUICK 100u
#define DISK_REPEATS 3u
#define DISK_ALIGN 4096u /* O_DIRECT buffer, offset and length alignment */

static const uint32_t record_sizes[] = {100, 1024};
static const uint32_t batch_sizes[] = {1, 100, 1000};
static const enum sl_flush_policy policies[] = {SL_FLUSH_ALWAYS, SL_FLUSH_INTERVAL};
#define N_POLICIES (sizeof(policies) / sizeof(policies[0]))
#define N_RECORD_SIZES (sizeof(record_sizes) / sizeof(record_sizes[0]))
#define N_BATCH_SIZES (sizeof(batch_sizes) / sizeof(batch_sizes[0]))
#define N_CASES (N_POLICIES * N_RECORD_SIZES * N_BATCH_SIZES)

struct opts {
    uint64_t payload_bytes; /* per case */
    uint64_t min_ns;        /* per case: keep appending past payload_bytes until this long */
    uint64_t cap_ns;        /* per case: stop at this time even short of payload_bytes */
    uint32_t disk_repeats;  /* disk characterisation: median of this many runs */
    uint64_t disk_bytes;
    uint32_t lat_samples;
    int quick;
    int json;
    const char *parent; /* where the mkdtemp directory goes */
    const char *only;   /* run only the case of this name ("always-100-1000"), or NULL */
    int no_disk;        /* skip the disk characterisation (with --only) */
};

struct case_result {
    enum sl_flush_policy flush;
    uint32_t record_bytes;
    uint32_t batch_records;
    uint32_t batch_len; /* stored bytes of one batch */
    int err;            /* first engine error (SL_OK if none) */
    int capped;         /* the engine stopped at the time cap */
    /* engine */
    uint64_t records;
    uint64_t batches;
    uint64_t log_bytes; /* batches x batch_len */
    uint64_t engine_ns;
    uint64_t writes; /* stats deltas */
    uint64_t fsyncs;
    /* ceiling */
    uint32_t ceil_write_bytes;
    uint64_t ceil_group_bytes; /* 0 = INTERVAL cadence */
    uint64_t ceil_bytes;
    uint64_t ceil_ns;
    uint64_t ceil_fsyncs;
    /* sequential read (INTERVAL cases) */
    int read_err;
    uint64_t read_bytes;
    uint64_t read_batches;
    uint64_t read_ns;
};

struct disk_result {
    const char *name;
    int supported;
    uint64_t bytes;
    uint64_t ns;
};

#define N_DISK 4

struct report {
    struct sl_shard_config defaults;
    char dir[BENCH_PATH_MAX];
    const char *fs_name;
    struct case_result cases[N_CASES];
    uint32_t n_cases;
    struct disk_result disk[N_DISK];
    uint64_t lat_p50_ns;
    uint64_t lat_p99_ns;
    uint64_t lat_max_ns;
    uint32_t lat_samples;
    int disk_done;
};

/* ---- small helpers --------------------------------------------------------------------- */

static _Noreturn void die(const char *what, const char *detail)
{
    fprintf(stderr, "storage_bench: %s: %s\n", what, detail);
    exit(1);
}

/* The one place this file reads errno: a failed setup syscall ends the run. */
static _Noreturn void die_errno(const char *what, const char *path)
{
    char msg[BENCH_PATH_MAX + 64];
    snprintf(msg, sizeof(msg), "%s: %s", path, strerror(errno));
    die(what, msg);
}

static void *xmalloc_aligned(size_t bytes)
{
    void *p = NULL;
    if (posix_memalign(&p, DISK_ALIGN, bytes) != 0) {
        die("posix_memalign", "out of memory");
    }
    return p;
}

static void fill_random(uint8_t *p, size_t len, uint64_t seed)
{
    uint64_t x = seed | 1;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = (uint8_t)x;
    }
}

static double mb_per_s(uint64_t bytes, uint64_t ns)
{
    return ns == 0 ? 0.0 : (double)bytes / 1e6 / ((double)ns / 1e9);
}

static double per_s(uint64_t count, uint64_t ns)
{
    return ns == 0 ? 0.0 : (double)count / ((double)ns / 1e9);
}

static const char *policy_name(enum sl_flush_policy p)
{
    return p == SL_FLUSH_ALWAYS ? "always" : "interval";
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

/* Removes the tree at `path` (nftw walks it without recursion here). */
static void rm_tree(const char *path)
{
    if (nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0) {
        fprintf(stderr, "storage_bench: could not remove all of %s\n", path);
    }
}

/* out = dir + "/" + name; a path too long for BENCH_PATH_MAX ends the run. */
static void path_join(char *out, const char *dir, const char *name)
{
    int n = snprintf(out, BENCH_PATH_MAX, "%s/%s", dir, name);
    if (n < 0 || n >= (int)BENCH_PATH_MAX) {
        die("path too long", dir);
    }
}

/* Commits the filesystem holding `dir` (untimed): with `-o discard` the
 * discards of just-deleted files run at the next journal commit, which
 * would otherwise land inside the next timed fdatasync. */
static void settle(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)syncfs(fd);
        close(fd);
    }
}

static const char *fs_name_of(const char *path)
{
    struct statfs sfs;
    if (statfs(path, &sfs) != 0) {
        return "unknown";
    }
    switch ((unsigned long)sfs.f_type) {
    case EXT4_SUPER_MAGIC:
        return "ext4";
    case XFS_SUPER_MAGIC:
        return "xfs";
    case BTRFS_SUPER_MAGIC:
        return "btrfs";
    case TMPFS_MAGIC:
        return "tmpfs";
    case OVERLAYFS_SUPER_MAGIC:
        return "overlayfs";
    default:
        return "other";
    }
}

static int open_file(const char *path, int flags)
{
    int fd = open(path, flags | O_CLOEXEC, 0644);
    if (fd < 0) {
        die_errno("open", path);
    }
    return fd;
}

/* ---- raw io_uring writer: the ceilings and the disk characterisation ------------------- */

struct raw_write {
    struct sl_io_op op;
    struct raw_run *run;
    uint32_t len;
    int busy;
};

#define RAW_INFLIGHT_MAX 64u /* write_bufs is at most 64 */

/* One sequential write pass: `total_bytes` from `offset0` in writes of
 * `write_bytes`, at most `inflight_max` in flight, fdatasync after every
 * `group_bytes` (group commit) or, with group_bytes == 0, every interval_ns
 * while writing. Every write sends the same buffer. */
struct raw_run {
    struct sl_ring *ring;
    int fd;
    const uint8_t *buf; /* borrowed, >= write_bytes */
    uint32_t write_bytes;
    uint32_t inflight_max;
    uint64_t total_bytes;
    uint64_t group_bytes;
    uint64_t interval_ns;
    uint64_t offset0;
    uint64_t cap_ns; /* 0 = none; stops starting new groups/writes after it */
    /* state */
    uint64_t issued;
    uint64_t completed;
    uint32_t inflight;
    int fsync_inflight;
    uint64_t fsyncs;
    int res_err; /* first negative res or short write */
    struct sl_io_op fsync_op;
    struct raw_write slots[RAW_INFLIGHT_MAX];
};

static void raw_write_done(struct sl_io_op *op, int res)
{
    struct raw_write *w = sl_container_of(op, struct raw_write, op);
    struct raw_run *r = w->run;
    if ((res < 0 || (uint32_t)res != w->len) && r->res_err == 0) {
        r->res_err = res < 0 ? res : -EIO; /* a short write on a regular file: disk full */
    }
    w->busy = 0;
    r->inflight--;
    r->completed += w->len;
}

static void raw_fsync_done(struct sl_io_op *op, int res)
{
    struct raw_run *r = sl_container_of(op, struct raw_run, fsync_op);
    if (res < 0 && r->res_err == 0) {
        r->res_err = res;
    }
    r->fsync_inflight = 0;
    r->fsyncs++;
}

static void raw_issue_write(struct raw_run *r, uint64_t end)
{
    struct raw_write *w = NULL;
    for (uint32_t i = 0; i < r->inflight_max && w == NULL; i++) {
        if (!r->slots[i].busy) {
            w = &r->slots[i];
        }
    }
    if (w == NULL) {
        die("raw writer", "no free write slot");
    }
    uint64_t left = end - r->issued;
    w->len = left < r->write_bytes ? (uint32_t)left : r->write_bytes;
    w->busy = 1;
    w->run = r;
    w->op.cb = raw_write_done;
    sl_ring_write(r->ring, &w->op, r->fd, r->buf, w->len, r->offset0 + r->issued);
    r->issued += w->len;
    r->inflight++;
}

static void raw_check(const struct raw_run *r)
{
    if (r->res_err != 0) {
        die("raw write/fdatasync", strerror(-r->res_err));
    }
}

static void raw_fsync_wait(struct raw_run *r)
{
    r->fsync_op.cb = raw_fsync_done;
    r->fsync_inflight = 1;
    sl_ring_fsync(r->ring, &r->fsync_op, r->fd, 1);
    while (r->fsync_inflight) {
        sl_ring_run(r->ring, 1, 0);
    }
    raw_check(r);
}

/* Group commit: {write one group with up to inflight_max writes in flight,
 * wait, fdatasync, wait} until done. Returns the elapsed ns. */
static uint64_t raw_run_groups(struct raw_run *r)
{
    uint64_t t0 = sl_clock_mono_ns();
    while (r->completed < r->total_bytes &&
           (r->cap_ns == 0 || sl_clock_mono_ns() - t0 < r->cap_ns)) {
        uint64_t end = r->issued + r->group_bytes;
        end = end < r->total_bytes ? end : r->total_bytes;
        while (r->completed < end) {
            while (r->issued < end && r->inflight < r->inflight_max) {
                raw_issue_write(r, end);
            }
            sl_ring_run(r->ring, 1, 0);
            raw_check(r);
        }
        raw_fsync_wait(r);
    }
    return sl_clock_mono_ns() - t0;
}

/* Group commit as the engine does it: writes stay in flight while an
 * fdatasync runs (at most one at a time); an fdatasync is issued, when none
 * is running, once group_bytes more have completed since the last one (or
 * everything has); it covers every write completed before it. Writes run at
 * most two groups ahead of the durable point (one being synced, one being
 * written), as the engine's staging buffers and pending acks bound it.
 * Returns the ns until the last fdatasync completed. */
static uint64_t raw_run_group_pipelined(struct raw_run *r)
{
    uint64_t t0 = sl_clock_mono_ns();
    uint64_t durable = 0;     /* bytes covered by completed fdatasyncs */
    uint64_t sync_target = 0; /* bytes the running fdatasync covers */
    uint64_t total = r->total_bytes;
    while (durable < total) {
        if (r->cap_ns != 0 && r->issued < total && sl_clock_mono_ns() - t0 >= r->cap_ns) {
            total = r->issued; /* stop issuing; finish and sync what was issued */
            r->total_bytes = total;
        }
        uint64_t ahead = durable + 2 * r->group_bytes;
        uint64_t limit = ahead < total ? ahead : total;
        while (r->issued < limit && r->inflight < r->inflight_max) {
            raw_issue_write(r, limit);
        }
        if (!r->fsync_inflight && r->completed > durable &&
            (r->completed - durable >= r->group_bytes || r->completed == total)) {
            r->fsync_op.cb = raw_fsync_done;
            r->fsync_inflight = 1;
            sl_ring_fsync(r->ring, &r->fsync_op, r->fd, 1);
            sync_target = r->completed;
        }
        if (durable < total) {
            sl_ring_run(r->ring, 1, 0);
        }
        raw_check(r);
        if (!r->fsync_inflight) {
            durable = sync_target;
        }
    }
    return sl_clock_mono_ns() - t0;
}

/* Interval cadence: writes kept in flight, an fdatasync every interval_ns.
 * Returns the ns until the last write completed; then waits (untimed) for a
 * pending fdatasync. */
static uint64_t raw_run_interval(struct raw_run *r)
{
    uint64_t t0 = sl_clock_mono_ns();
    uint64_t last_sync = t0;
    uint64_t total = r->total_bytes;
    while (r->completed < total) {
        uint64_t now = sl_clock_mono_ns();
        if (r->cap_ns != 0 && now - t0 >= r->cap_ns && r->issued < total) {
            total = r->issued; /* stop issuing; finish what is in flight */
            r->total_bytes = total;
        }
        while (r->issued < total && r->inflight < r->inflight_max) {
            raw_issue_write(r, total);
        }
        if (!r->fsync_inflight && now - last_sync >= r->interval_ns) {
            r->fsync_op.cb = raw_fsync_done;
            r->fsync_inflight = 1;
            sl_ring_fsync(r->ring, &r->fsync_op, r->fd, 1);
            last_sync = now;
        }
        if (r->completed < total) {
            sl_ring_run(r->ring, 1, 0);
        }
        raw_check(r);
    }
    uint64_t ns = sl_clock_mono_ns() - t0;
    while (r->fsync_inflight) {
        sl_ring_run(r->ring, 1, 0);
    }
    raw_check(r);
    return ns;
}

static void raw_init(struct raw_run *r, struct sl_ring *ring, int fd, const uint8_t *buf,
                     uint32_t write_bytes, uint32_t inflight_max, uint64_t total_bytes)
{
    memset(r, 0, sizeof(*r));
    r->ring = ring;
    r->fd = fd;
    r->buf = buf;
    r->write_bytes = write_bytes;
    r->inflight_max = inflight_max < 1 ? 1 : inflight_max;
    if (r->inflight_max > RAW_INFLIGHT_MAX) {
        r->inflight_max = RAW_INFLIGHT_MAX;
    }
    r->total_bytes = total_bytes;
}

/* ---- engine cases ---------------------------------------------------------------------- */

struct append_state {
    uint64_t submitted; /* batches */
    uint64_t acked;
    uint64_t expect_seq;
    int err;
};

static void on_append(void *ctx, int err, uint64_t base_seq, uint32_t count)
{
    struct append_state *a = ctx;
    a->acked++;
    if (err != SL_OK) {
        if (a->err == SL_OK) {
            a->err = err;
        }
        return;
    }
    if (base_seq != a->expect_seq && a->err == SL_OK) {
        fprintf(stderr, "storage_bench: ack base_seq %" PRIu64 ", expected %" PRIu64 "\n",
                base_seq, a->expect_seq);
        a->err = SL_ECORRUPT;
    }
    a->expect_seq = base_seq + count;
}

/* Builds one batch of `count` records of `record_bytes` (value only; the
 * producer's time stamp). Returns an owned buffer; *len its stored length. */
static uint8_t *build_batch(uint32_t record_bytes, uint32_t count, size_t *len)
{
    /* Per record: the value plus at most 5 bytes of each of its 5 varints. */
    size_t cap = SL_BATCH_HEADER_BYTES + (size_t)count * (record_bytes + 25u);
    uint8_t *buf = malloc(cap);
    uint8_t *value = malloc(record_bytes);
    if (buf == NULL || value == NULL) {
        die("malloc", "out of memory");
    }
    fill_random(value, record_bytes, record_bytes);
    struct sl_batch_builder b;
    sl_batch_builder_init(&b, buf, cap);
    uint64_t ts = sl_clock_wall_ms();
    for (uint32_t i = 0; i < count; i++) {
        struct sl_record rec = {
            .value = value,
            .value_len = record_bytes,
            .timestamp_ms = ts,
        };
        int rc = sl_batch_builder_add(&b, &rec);
        if (rc != SL_OK) {
            die("sl_batch_builder_add", sl_strerror(rc));
        }
    }
    int rc = sl_batch_builder_finish(&b, SL_BATCH_CODEC_NONE, 0, NULL, NULL, 0, 0, 0, len);
    if (rc != SL_OK) {
        die("sl_batch_builder_finish", sl_strerror(rc));
    }
    free(value);
    return buf;
}

/* When to stop appending: after `target` batches once `min_ns` passed, after
 * `target_max` batches, or at `cap_ns`, whichever comes first. */
struct append_limits {
    uint64_t target;
    uint64_t target_max;
    uint64_t min_ns;
    uint64_t cap_ns;
};

/* Returns 1 when the append loop should stop (sets *capped at the cap). */
static int append_should_stop(const struct append_limits *lim, uint64_t submitted, uint64_t t0,
                              int *capped)
{
    uint64_t elapsed = sl_clock_mono_ns() - t0;
    if (elapsed >= lim->cap_ns) {
        *capped = submitted < lim->target;
        return 1;
    }
    return submitted >= lim->target_max || (submitted >= lim->target && elapsed >= lim->min_ns);
}

/* Appends the batch until the limits say stop, keeping appends in flight,
 * and waits for every acknowledgement. Returns the elapsed ns. */
static uint64_t append_loop(struct sl_ring *ring, struct sl_shard *s, const uint8_t *batch,
                            size_t len, const struct append_limits *lim, struct append_state *a,
                            int *capped)
{
    uint64_t t0 = sl_clock_mono_ns();
    uint32_t stalls = 0;
    while (a->err == SL_OK) {
        int rc = sl_shard_append(s, batch, len, on_append, a);
        if (rc == SL_OK) {
            a->submitted++;
            stalls = 0;
            /* The clock is read every 64 appends: ~20 ns each, not per append. */
            if ((a->submitted >= lim->target || (a->submitted & 63) == 0) &&
                append_should_stop(lim, a->submitted, t0, capped)) {
                break;
            }
            continue;
        }
        if (rc != SL_EAGAIN) {
            a->err = rc;
            break;
        }
        if (ring->inflight == 0 && ring->deferred_head == NULL && ++stalls > BENCH_STALL_RETRIES) {
            fprintf(stderr, "storage_bench: append keeps returning SL_EAGAIN with no I/O in "
                            "flight (after %" PRIu64 " batches, %" PRIu64 " acked)\n",
                    a->submitted, a->acked);
            a->err = SL_EAGAIN;
            break;
        }
        sl_ring_run(ring, 1, 0);
        if (append_should_stop(lim, a->submitted, t0, capped)) {
            break;
        }
    }
    while (a->acked < a->submitted) {
        if (ring->inflight == 0 && ring->deferred_head == NULL) {
            fprintf(stderr, "storage_bench: %" PRIu64 " appends never acknowledged\n",
                    a->submitted - a->acked);
            a->err = a->err == SL_OK ? SL_EFATAL : a->err;
            break;
        }
        sl_ring_run(ring, 1, 0);
    }
    return sl_clock_mono_ns() - t0;
}

struct read_state {
    int done;
    int err;
};

static void on_read(struct sl_shard_read *rd, int err)
{
    struct read_state *st = rd->ctx;
    st->err = err;
    st->done = 1;
}

/* Reads [from, to) in BENCH_READ_BYTES reads, one in flight. */
static void read_back(struct sl_ring *ring, struct sl_shard *s, uint64_t from, uint64_t to,
                      struct case_result *c)
{
    uint8_t *buf = xmalloc_aligned(BENCH_READ_BYTES);
    uint64_t seq = from;
    uint64_t t0 = sl_clock_mono_ns();
    while (seq < to) {
        struct read_state st = {0, SL_OK};
        struct sl_shard_read rd;
        memset(&rd, 0, sizeof(rd));
        rd.from = SL_READ_SEQ;
        rd.seq = seq;
        rd.buf = buf;
        rd.buf_cap = BENCH_READ_BYTES;
        rd.max_bytes = BENCH_READ_BYTES;
        rd.cb = on_read;
        rd.ctx = &st;
        sl_shard_read(s, &rd);
        if (sl_ring_run_until(ring, &st.done) != SL_OK) {
            fprintf(stderr, "storage_bench: read at seq %" PRIu64 " never completed\n", seq);
            c->read_err = SL_EFATAL;
            break;
        }
        if (st.err != SL_OK || rd.len == 0 || rd.next_seq <= seq) {
            fprintf(stderr, "storage_bench: read at seq %" PRIu64 " (tail %" PRIu64 "): %s, "
                            "len %u, next_seq %" PRIu64 "\n",
                    seq, to, sl_strerror(st.err), rd.len, rd.next_seq);
            c->read_err = st.err != SL_OK ? st.err : SL_ECORRUPT;
            break;
        }
        c->read_bytes += rd.len;
        c->read_batches += rd.batch_count;
        seq = rd.next_seq;
    }
    c->read_ns = sl_clock_mono_ns() - t0;
    free(buf);
}

/* The engine half of a case: a fresh shard in `dir`, appends, read back
 * (INTERVAL), close. Fills the engine fields of `c`. */
static void engine_case(struct sl_ring *ring, const char *dir, const struct opts *o,
                        struct case_result *c)
{
    size_t len = 0;
    uint8_t *batch = build_batch(c->record_bytes, c->batch_records, &len);
    c->batch_len = (uint32_t)len;
    struct sl_shard_config cfg;
    sl_shard_config_default(&cfg);
    cfg.flush = c->flush;
    cfg.flush_interval_ms = BENCH_FLUSH_INTERVAL_MS;
    if (cfg.batch_bytes_max < len) {
        cfg.batch_bytes_max = (uint32_t)len;
    }
    char why[256];
    if (sl_shard_config_check(&cfg, why, sizeof(why)) != SL_OK) {
        die("shard config", why);
    }
    struct sl_shard *s = NULL;
    int rc = sl_shard_open(ring, dir, &cfg, &s);
    if (rc != SL_OK) {
        die("sl_shard_open", sl_strerror(rc));
    }
    struct sl_shard_stats st0, st1;
    sl_shard_stats(s, &st0);
    uint64_t per_batch = (uint64_t)c->record_bytes * c->batch_records;
    struct append_limits lim = {
        .target = (o->payload_bytes + per_batch - 1) / per_batch,
        .target_max = (o->payload_bytes * BENCH_EXTEND_MAX + per_batch - 1) / per_batch,
        .min_ns = o->min_ns,
        .cap_ns = o->cap_ns,
    };
    /* Extend within one segment only: the ceiling writes one file, and an
     * fdatasync slows later writes to the same file (not to a new one), so
     * a multi-segment engine run against a one-file ceiling is unfair. */
    uint64_t seg_batches = cfg.segment_bytes / len;
    if (lim.target_max > seg_batches) {
        lim.target_max = seg_batches > lim.target ? seg_batches : lim.target;
    }
    struct append_state a = {0, 0, st0.next_seq, SL_OK};
    c->engine_ns = append_loop(ring, s, batch, len, &lim, &a, &c->capped);
    sl_shard_stats(s, &st1);
    c->err = a.err;
    c->batches = a.acked;
    c->records = a.acked * c->batch_records;
    c->log_bytes = a.acked * len;
    c->writes = st1.writes - st0.writes;
    c->fsyncs = st1.fsyncs - st0.fsyncs;
    bool stats_off = st1.next_seq - st0.next_seq != c->records ||
                     st1.visible_seq != st1.next_seq || st1.bytes - st0.bytes != c->log_bytes;
    if (c->err == SL_OK && stats_off) {
        fprintf(stderr, "storage_bench: after %" PRIu64 " records / %" PRIu64 " bytes: "
                        "next_seq +%" PRIu64 ", visible_seq %" PRIu64 " of %" PRIu64
                        ", bytes +%" PRIu64 "\n",
                c->records, c->log_bytes, st1.next_seq - st0.next_seq, st1.visible_seq,
                st1.next_seq, st1.bytes - st0.bytes);
    }
    if (c->err == SL_OK && c->flush == SL_FLUSH_INTERVAL) {
        read_back(ring, s, st0.next_seq, st1.visible_seq, c);
    }
    sl_shard_close(s);
    free(batch);
}

/* The ceiling half: the same bytes, write size and fdatasync cadence with
 * raw io_uring writes to a new file in `dir`. */
static void ceiling_case(struct sl_ring *ring, const char *dir, const struct opts *o,
                         const struct sl_shard_config *def, const uint8_t *wbuf,
                         struct case_result *c)
{
    if (c->log_bytes == 0) {
        return;
    }
    char path[BENCH_PATH_MAX];
    path_join(path, dir, "ceiling.dat");
    int fd = open_file(path, O_WRONLY | O_CREAT | O_TRUNC);
    struct raw_run r;
    uint32_t wmax = def->write_buf_bytes;
    if (c->flush == SL_FLUSH_ALWAYS) {
        uint64_t group = c->fsyncs > 0 ? c->log_bytes / c->fsyncs : c->log_bytes;
        group = group > 0 ? group : 1;
        uint32_t w = group < wmax ? (uint32_t)group : wmax;
        raw_init(&r, ring, fd, wbuf, w, def->write_bufs - 1, c->log_bytes);
        r.group_bytes = group;
        r.cap_ns = o->cap_ns;
        c->ceil_ns = raw_run_group_pipelined(&r);
        c->ceil_group_bytes = group;
    } else {
        raw_init(&r, ring, fd, wbuf, wmax, def->write_bufs - 1, c->log_bytes);
        r.interval_ns = BENCH_FLUSH_INTERVAL_MS * NS_PER_MS;
        r.cap_ns = o->cap_ns;
        c->ceil_ns = raw_run_interval(&r);
        raw_fsync_wait(&r); /* untimed: leave nothing dirty for the next case */
    }
    c->ceil_write_bytes = r.write_bytes;
    c->ceil_bytes = r.completed;
    c->ceil_fsyncs = r.fsyncs;
    close(fd);
}

static void run_cases(struct sl_ring *ring, const struct opts *o, struct report *rep)
{
    uint8_t *wbuf = xmalloc_aligned(rep->defaults.write_buf_bytes);
    fill_random(wbuf, rep->defaults.write_buf_bytes, 42);
    for (size_t p = 0; p < N_POLICIES; p++) {
        for (size_t rs = 0; rs < N_RECORD_SIZES; rs++) {
            for (size_t bs = 0; bs < N_BATCH_SIZES; bs++) {
                char name[64], dir[BENCH_PATH_MAX];
                snprintf(name, sizeof(name), "%s-%u-%u", policy_name(policies[p]),
                         record_sizes[rs], batch_sizes[bs]);
                if (o->only != NULL && strcmp(o->only, name) != 0) {
                    continue;
                }
                struct case_result *c = &rep->cases[rep->n_cases++];
                memset(c, 0, sizeof(*c));
                c->flush = policies[p];
                c->record_bytes = record_sizes[rs];
                c->batch_records = batch_sizes[bs];
                path_join(dir, rep->dir, name);
                if (mkdir(dir, 0755) != 0) {
                    die_errno("mkdir", dir);
                }
                fprintf(stderr, "storage_bench: %s %u B x %u ...\n", policy_name(c->flush),
                        c->record_bytes, c->batch_records);
                char shard_dir[BENCH_PATH_MAX];
                path_join(shard_dir, dir, "shard");
                engine_case(ring, shard_dir, o, c);
                /* Free the engine's page cache (and let discard run) before
                 * the ceiling, so neither run pays for the other's files. */
                rm_tree(shard_dir);
                settle(dir);
                ceiling_case(ring, dir, o, &rep->defaults, wbuf, c);
                rm_tree(dir);
                settle(rep->dir);
            }
        }
    }
    free(wbuf);
}

/* ---- disk characterisation -------------------------------------------------------------- */

enum disk_kind { DISK_APPEND = 0, DISK_OVERWRITE = 1, DISK_DIRECT = 2, DISK_FALLOC = 3 };

static const char *const disk_names[N_DISK] = {
    "buffered append, new file",
    "buffered overwrite, pre-zeroed file",
    "O_DIRECT overwrite, pre-zeroed file",
    "buffered append, fallocate(KEEP_SIZE) file",
};

/* Writes `bytes` of zeros (buffered) and fdatasyncs: untimed preparation. */
static void prezero(struct sl_ring *ring, int fd, uint64_t bytes, const uint8_t *zeros)
{
    struct raw_run r;
    raw_init(&r, ring, fd, zeros, DISK_WRITE_BYTES, 4, bytes);
    r.group_bytes = bytes;
    (void)raw_run_groups(&r);
}

static void disk_one(struct sl_ring *ring, const char *dir, const struct opts *o,
                     enum disk_kind kind, const uint8_t *buf, const uint8_t *zeros,
                     struct disk_result *d)
{
    char name[32], path[BENCH_PATH_MAX];
    snprintf(name, sizeof(name), "disk-%d.dat", (int)kind);
    path_join(path, dir, name);
    d->name = disk_names[kind];
    d->supported = 1;
    int fd = open_file(path, O_RDWR | O_CREAT | O_TRUNC);
    if (kind == DISK_OVERWRITE || kind == DISK_DIRECT) {
        prezero(ring, fd, o->disk_bytes, zeros);
        settle(dir);
    }
    if (kind == DISK_DIRECT) {
        close(fd);
        fd = open(path, O_RDWR | O_DIRECT | O_CLOEXEC);
        if (fd < 0) {
            d->supported = 0; /* e.g. EINVAL on a filesystem without O_DIRECT */
            unlink(path);
            return;
        }
    }
    if (kind == DISK_FALLOC && fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, (off_t)o->disk_bytes) != 0) {
        d->supported = 0;
        close(fd);
        unlink(path);
        return;
    }
    struct raw_run r;
    raw_init(&r, ring, fd, buf, DISK_WRITE_BYTES, 1, o->disk_bytes);
    r.group_bytes = DISK_WRITE_BYTES;
    d->ns = raw_run_groups(&r);
    d->bytes = r.completed;
    close(fd);
    unlink(path);
    settle(dir);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Latency of one 4 KiB append + fdatasync, sequentially, on a new file. */
static void disk_latency(struct sl_ring *ring, const char *dir, const struct opts *o,
                         const uint8_t *buf, struct report *rep)
{
    char path[BENCH_PATH_MAX];
    path_join(path, dir, "latency.dat");
    int fd = open_file(path, O_WRONLY | O_CREAT | O_TRUNC);
    uint64_t *lat = calloc(o->lat_samples, sizeof(*lat));
    if (lat == NULL) {
        die("calloc", "out of memory");
    }
    for (uint32_t i = 0; i < o->lat_samples; i++) {
        struct raw_run r;
        raw_init(&r, ring, fd, buf, DISK_LAT_WRITE_BYTES, 1, DISK_LAT_WRITE_BYTES);
        r.offset0 = (uint64_t)i * DISK_LAT_WRITE_BYTES;
        r.group_bytes = DISK_LAT_WRITE_BYTES;
        lat[i] = raw_run_groups(&r);
    }
    qsort(lat, o->lat_samples, sizeof(*lat), cmp_u64);
    rep->lat_samples = o->lat_samples;
    rep->lat_p50_ns = lat[o->lat_samples / 2];
    rep->lat_p99_ns = lat[(uint64_t)o->lat_samples * 99 / 100];
    rep->lat_max_ns = lat[o->lat_samples - 1];
    free(lat);
    close(fd);
    unlink(path);
}

static void run_disk(struct sl_ring *ring, const struct opts *o, struct report *rep)
{
    fprintf(stderr, "storage_bench: disk characterisation ...\n");
    uint8_t *buf = xmalloc_aligned(DISK_WRITE_BYTES);
    uint8_t *zeros = xmalloc_aligned(DISK_WRITE_BYTES);
    fill_random(buf, DISK_WRITE_BYTES, 7);
    memset(zeros, 0, DISK_WRITE_BYTES);
    SL_ASSERT(o->disk_repeats >= 1 && o->disk_repeats <= DISK_REPEATS);
    for (int k = 0; k < N_DISK; k++) {
        /* The median of disk_repeats runs (same bytes each): one run on a
         * fast disk lasts well under 100 ms, so one sample is noisy. */
        uint64_t ns[DISK_REPEATS];
        for (uint32_t i = 0; i < o->disk_repeats; i++) {
            disk_one(ring, rep->dir, o, (enum disk_kind)k, buf, zeros, &rep->disk[k]);
            ns[i] = rep->disk[k].ns;
        }
        qsort(ns, o->disk_repeats, sizeof(ns[0]), cmp_u64);
        rep->disk[k].ns = ns[o->disk_repeats / 2];
    }
    disk_latency(ring, rep->dir, o, buf, rep);
    rep->disk_done = 1;
    free(zeros);
    free(buf);
}

/* ---- output ----------------------------------------------------------------------------- */

static double case_payload_mbs(const struct case_result *c)
{
    return mb_per_s(c->records * c->record_bytes, c->engine_ns);
}

static double case_ceiling_payload_mbs(const struct case_result *c)
{
    /* The ceiling moves disk bytes; scale to payload by the batch's framing. */
    double payload_share = (double)c->record_bytes * c->batch_records / c->batch_len;
    return mb_per_s(c->ceil_bytes, c->ceil_ns) * payload_share;
}

static double case_ratio(const struct case_result *c)
{
    double disk = mb_per_s(c->log_bytes, c->engine_ns);
    double ceil = mb_per_s(c->ceil_bytes, c->ceil_ns);
    return ceil > 0 ? disk / ceil : 0.0;
}

static void print_md_row(const struct case_result *c)
{
    char per_fsync[32] = "-"; /* INTERVAL cases shorter than the interval never fsync */
    if (c->fsyncs > 0) {
        snprintf(per_fsync, sizeof(per_fsync), "%.1f", (double)c->log_bytes / c->fsyncs / KIB);
    }
    printf("| %s | %u | %u | %.0f | %.1f | %.1f | %.2f | %.1f | %.1f | %s | %.1f | %.0f |%s\n",
           policy_name(c->flush), c->record_bytes, c->batch_records,
           per_s(c->records, c->engine_ns), case_payload_mbs(c), case_ceiling_payload_mbs(c),
           case_ratio(c), mb_per_s(c->log_bytes, c->engine_ns),
           c->writes ? (double)c->log_bytes / c->writes / KIB : 0.0, per_fsync,
           (double)c->ceil_write_bytes / KIB, (double)c->log_bytes / 1e6,
           c->capped ? " (time cap)" : "");
}

static void print_markdown(const struct report *rep)
{
    const struct sl_shard_config *d = &rep->defaults;
    printf("# storage_bench\n\ndata dir %s (%s); shard defaults: write_buf_bytes %u KiB x %u, "
           "pending_max %u, segment_bytes %" PRIu64 " MiB; INTERVAL flush every %u ms. "
           "MB = 10^6 B; MB/s is payload (records x record size); ceiling = raw io_uring "
           "writes of the same bytes, write size and fdatasync cadence; ratio = engine disk "
           "MB/s / ceiling disk MB/s.\n\n",
           rep->dir, rep->fs_name, d->write_buf_bytes >> 10, d->write_bufs, d->pending_max,
           d->segment_bytes / MIB, BENCH_FLUSH_INTERVAL_MS);
    printf("| policy | record B | batch | records/s | MB/s | ceiling MB/s | ratio | disk MB/s "
           "| KiB/write | KiB/fsync | ceiling KiB/write | disk MB |\n");
    printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (uint32_t i = 0; i < rep->n_cases; i++) {
        const struct case_result *c = &rep->cases[i];
        if (c->err != SL_OK) {
            printf("| %s | %u | %u | error %s after %" PRIu64 " records | | | | | | | | |\n",
                   policy_name(c->flush), c->record_bytes, c->batch_records,
                   sl_errname(c->err), c->records);
            continue;
        }
        print_md_row(c);
    }
    printf("\nSequential read (sl_shard_read, 1 MiB reads, verified by the shard; "
           "page cache):\n\n");
    for (uint32_t i = 0; i < rep->n_cases; i++) {
        const struct case_result *c = &rep->cases[i];
        if (c->flush != SL_FLUSH_INTERVAL || c->err != SL_OK) {
            continue;
        }
        if (c->read_err != SL_OK) {
            printf("- read %u B x %u: error %s\n", c->record_bytes, c->batch_records,
                   sl_errname(c->read_err));
            continue;
        }
        printf("- read %u B x %u: %.1f MB/s payload, %.1f MB/s disk, %.0f batches/s "
               "(%.1f MB)\n",
               c->record_bytes, c->batch_records,
               mb_per_s(c->read_bytes / c->batch_len * c->batch_records * c->record_bytes,
                        c->read_ns),
               mb_per_s(c->read_bytes, c->read_ns), per_s(c->read_batches, c->read_ns),
               (double)c->read_bytes / 1e6);
    }
    if (!rep->disk_done) {
        return;
    }
    printf("\nDisk characterisation (%" PRIu64 " MiB in %u KiB writes, fdatasync after each):\n\n",
           rep->disk[0].bytes / MIB, DISK_WRITE_BYTES >> 10);
    for (int k = 0; k < N_DISK; k++) {
        const struct disk_result *r = &rep->disk[k];
        if (!r->supported) {
            printf("- %s: unsupported here\n", r->name);
        } else {
            printf("- %s: %.1f MB/s\n", r->name, mb_per_s(r->bytes, r->ns));
        }
    }
    printf("- 4 KiB append + fdatasync latency (%u samples): p50 %.0f us, p99 %.0f us, "
           "max %.0f us\n",
           rep->lat_samples, (double)rep->lat_p50_ns / 1e3, (double)rep->lat_p99_ns / 1e3,
           (double)rep->lat_max_ns / 1e3);
}

static void print_json_case(const struct case_result *c, int last)
{
    printf("    {\"policy\": \"%s\", \"record_bytes\": %u, \"batch_records\": %u, "
           "\"batch_bytes\": %u, \"error\": \"%s\", \"time_capped\": %s, \"records\": %" PRIu64
           ", \"seconds\": %.4f, \"records_per_s\": %.1f, \"mb_per_s\": %.2f, "
           "\"disk_mb_per_s\": %.2f, \"writes\": %" PRIu64 ", \"fsyncs\": %" PRIu64 ", "
           "\"ceiling_mb_per_s\": %.2f, \"ceiling_disk_mb_per_s\": %.2f, \"ratio\": %.3f, "
           "\"ceiling_write_bytes\": %u, \"ceiling_group_bytes\": %" PRIu64 ", "
           "\"ceiling_fsyncs\": %" PRIu64,
           policy_name(c->flush), c->record_bytes, c->batch_records, c->batch_len,
           sl_errname(c->err), c->capped ? "true" : "false", c->records,
           (double)c->engine_ns / 1e9, per_s(c->records, c->engine_ns), case_payload_mbs(c),
           mb_per_s(c->log_bytes, c->engine_ns), c->writes, c->fsyncs,
           case_ceiling_payload_mbs(c), mb_per_s(c->ceil_bytes, c->ceil_ns), case_ratio(c),
           c->ceil_write_bytes, c->ceil_group_bytes, c->ceil_fsyncs);
    if (c->flush == SL_FLUSH_INTERVAL && c->err == SL_OK) {
        printf(", \"read\": {\"error\": \"%s\", \"bytes\": %" PRIu64 ", \"batches\": %" PRIu64
               ", \"disk_mb_per_s\": %.2f}",
               sl_errname(c->read_err), c->read_bytes, c->read_batches,
               mb_per_s(c->read_bytes, c->read_ns));
    }
    printf("}%s\n", last ? "" : ",");
}

static void print_json(const struct report *rep)
{
    const struct sl_shard_config *d = &rep->defaults;
    printf("{\n  \"data_dir\": \"%s\", \"fs\": \"%s\",\n", rep->dir, rep->fs_name);
    printf("  \"defaults\": {\"write_buf_bytes\": %u, \"write_bufs\": %u, \"pending_max\": %u, "
           "\"segment_bytes\": %" PRIu64 ", \"flush_interval_ms\": %u},\n",
           d->write_buf_bytes, d->write_bufs, d->pending_max, d->segment_bytes,
           BENCH_FLUSH_INTERVAL_MS);
    printf("  \"cases\": [\n");
    for (uint32_t i = 0; i < rep->n_cases; i++) {
        print_json_case(&rep->cases[i], i + 1 == rep->n_cases);
    }
    if (!rep->disk_done) {
        printf("  ]\n}\n");
        return;
    }
    printf("  ],\n  \"disk\": {\"write_bytes\": %u, \"modes\": [\n", DISK_WRITE_BYTES);
    for (int k = 0; k < N_DISK; k++) {
        const struct disk_result *r = &rep->disk[k];
        printf("    {\"name\": \"%s\", \"supported\": %s, \"bytes\": %" PRIu64
               ", \"mb_per_s\": %.2f}%s\n",
               r->name, r->supported ? "true" : "false", r->bytes, mb_per_s(r->bytes, r->ns),
               k + 1 == N_DISK ? "" : ",");
    }
    printf("  ], \"fdatasync_4k\": {\"samples\": %u, \"p50_us\": %.1f, \"p99_us\": %.1f, "
           "\"max_us\": %.1f}}\n}\n",
           rep->lat_samples, (double)rep->lat_p50_ns / 1e3, (double)rep->lat_p99_ns / 1e3,
           (double)rep->lat_max_ns / 1e3);
}

/* ---- main ------------------------------------------------------------------------------- */

static void usage(void)
{
    fprintf(stderr,
            "usage: storage_bench [--quick] [--mib N] [--dir D] [--only CASE] [--json]\n"
            "  --quick   small volumes (%u MiB per case), for a smoke run (< 15 s)\n"
            "  --mib N   payload MiB appended per case (default %u; cases also stop at %llu s)\n"
            "  --dir D   create the scratch directory under D (default /var/tmp)\n"
            "  --only C  run only case C (e.g. always-100-1000) and skip the disk section\n"
            "  --json    print the results as JSON\n",
            BENCH_MIB_QUICK, BENCH_MIB_DEFAULT, BENCH_CAP_NS_DEFAULT / NS_PER_S);
}

static int parse_args(int argc, char **argv, struct opts *o)
{
    uint32_t mib = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            o->quick = 1;
        } else if (strcmp(argv[i], "--json") == 0) {
            o->json = 1;
        } else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc) {
            o->only = argv[++i];
            o->no_disk = 1;
        } else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc) {
            o->parent = argv[++i];
        } else if (strcmp(argv[i], "--mib") == 0 && i + 1 < argc) {
            char *end = NULL;
            unsigned long v = strtoul(argv[++i], &end, 10);
            if (*end != '\0' || v == 0 || v > BENCH_MIB_MAX) {
                fprintf(stderr, "storage_bench: --mib must be 1..%u\n", BENCH_MIB_MAX);
                return 0;
            }
            mib = (uint32_t)v;
        } else {
            usage();
            return 0;
        }
    }
    o->payload_bytes = (uint64_t)(mib ? mib : o->quick ? BENCH_MIB_QUICK : BENCH_MIB_DEFAULT) * MIB;
    o->cap_ns = o->quick ? BENCH_CAP_NS_QUICK : BENCH_CAP_NS_DEFAULT;
    /* --mib N means exactly N MiB (or the time cap); see BENCH_MIN_NS. */
    o->min_ns = mib != 0 || o->quick ? 0 : BENCH_MIN_NS;
    o->disk_repeats = o->quick ? 1 : DISK_REPEATS;
    o->disk_bytes = (uint64_t)(o->quick ? DISK_MIB_QUICK : DISK_MIB_DEFAULT) * MIB;
    o->lat_samples = o->quick ? DISK_LAT_SAMPLES_QUICK : DISK_LAT_SAMPLES_DEFAULT;
    return 1;
}

int main(int argc, char **argv)
{
    struct opts o = {.parent = "/var/tmp"};
    if (!parse_args(argc, argv, &o)) {
        return 2;
    }
    char why[512];
    if (sl_ring_probe(why, sizeof(why)) != SL_OK) {
        fprintf(stderr, "storage_bench: %s\n", why);
        return 1;
    }
    sl_log_set_level(SL_LOG_WARN); /* keep segment/recovery info lines out of the report */
    static struct report rep;
    sl_shard_config_default(&rep.defaults);
    snprintf(rep.dir, sizeof(rep.dir), "%s/sluice-bench-XXXXXX", o.parent);
    if (mkdtemp(rep.dir) == NULL) {
        die_errno("mkdtemp", rep.dir);
    }
    rep.fs_name = fs_name_of(rep.dir);
    if (strcmp(rep.fs_name, "tmpfs") == 0) {
        fprintf(stderr, "storage_bench: warning: %s is on tmpfs; figures will not reflect a "
                        "disk\n", rep.dir);
    }
    struct sl_ring ring;
    int rc = sl_ring_init(&ring, BENCH_RING_ENTRIES);
    if (rc != SL_OK) {
        die("sl_ring_init", sl_strerror(rc));
    }
    run_cases(&ring, &o, &rep);
    if (!o.no_disk) {
        run_disk(&ring, &o, &rep);
    }
    sl_ring_fini(&ring);
    rm_tree(rep.dir);
    if (o.json) {
        print_json(&rep);
    } else {
        print_markdown(&rep);
    }
    int failed = 0;
    for (uint32_t i = 0; i < rep.n_cases; i++) {
        failed |= rep.cases[i].err != SL_OK || rep.cases[i].read_err != SL_OK;
    }
    return failed ? 1 : 0;
}
