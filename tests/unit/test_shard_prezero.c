/* test_shard_prezero.c - the zeroed run-ahead of a shard's active segment
 * (storage/shard_prezero.c) through the shard's public API and its files.
 *
 * Covers: the run-ahead keeps the .log past the data by at most
 * prezero_bytes while the stats count data only; a copy of the directory
 * taken while the shard is open (what a crash leaves: the zero tail) recovers
 * cleanly - no truncated bytes, every record kept, the zeros cut, appends
 * continuing at the data end; a torn batch followed by the zeros is still a
 * torn tail, cut and counted; a sealed segment has no zero tail; a parked
 * shard has none and appends at the right place when reopened; a clean close
 * leaves none; prezero_bytes 0 writes no zeros; the config range; a zero
 * write failing (injected through the ring's fault layer) with EIO makes the
 * shard refuse writes, with ENOSPC stops the run-ahead and nothing else.
 *
 * A zero tail is detected by size: a .log longer than its batches.
 */
#include "storage/shard.h"

#include "common/error.h"
#include "common/log.h"
#include "common/ring.h"
#include "storage/batch.h"

#include "tests/unit/test.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#define KiB 1024u
#define MiB (1024u * 1024u)

static struct sl_ring g_ring;
static char g_root[512];

/* ---- helpers ------------------------------------------------------------ */

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static void fresh_dir(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", g_root, name);
    nftw(out, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void base_config(struct sl_shard_config *cfg, uint64_t prezero)
{
    sl_shard_config_default(cfg);
    if (getenv("SL_TEST_SHARD_DIRECT") != NULL) {
        cfg->io_mode = SL_IO_DIRECT; /* unit_shard_prezero_direct */
    }
    cfg->prezero_bytes = prezero;
    cfg->batch_bytes_max = 1 * MiB;
    cfg->write_buf_bytes = 1 * MiB;
}

#include "tests/unit/shard_fixture.h"

/* ---- cases -------------------------------------------------------------- */

TEST(config_range)
{
    struct sl_shard_config cfg;
    char why[160];
    base_config(&cfg, 0);
    CHECK_EQ(sl_shard_config_check(&cfg, why, sizeof(why)), SL_OK);
    cfg.prezero_bytes = SL_PREZERO_MIN - 1;
    CHECK_EQ(sl_shard_config_check(&cfg, why, sizeof(why)), SL_EINVAL);
    CHECK(strstr(why, "prezero_bytes") != NULL);
    cfg.prezero_bytes = SL_PREZERO_MAX + 1;
    CHECK_EQ(sl_shard_config_check(&cfg, why, sizeof(why)), SL_EINVAL);
    cfg.prezero_bytes = SL_PREZERO_MAX;
    CHECK_EQ(sl_shard_config_check(&cfg, why, sizeof(why)), SL_OK);
    sl_shard_config_default(&cfg);
    CHECK(cfg.prezero_bytes == SL_PREZERO_DEFAULT);
}

/* The run-ahead while open, a crash copy recovered, the clean close. */
TEST(run_ahead_and_crash_copy)
{
    char dir[PATH_MAX], copy[PATH_MAX], lp[PATH_MAX + 64], cp[PATH_MAX + 64];
    fresh_dir(dir, sizeof(dir), "ra");
    fresh_dir(copy, sizeof(copy), "ra_copy");
    struct sl_shard_config cfg;
    const uint64_t pz = 256 * KiB;
    base_config(&cfg, pz);
    struct sl_shard *s = open_shard(dir, &cfg);
    CHECK(s != NULL);
    uint64_t salt = 1;
    uint64_t bytes = append_n(s, 128, 16 * KiB, &salt); /* ~2 MiB */
    CHECK(bytes > 0);
    struct sl_shard_stats st;
    sl_shard_stats(s, &st);
    CHECK_EQ(st.bytes, bytes); /* data only */
    CHECK(st.zero_writes > 0);
    /* Each byte past the first chunk of traffic zeroed about once. */
    CHECK(st.zero_bytes >= bytes / 2 && st.zero_bytes <= bytes + pz);
    log_path(lp, sizeof(lp), dir, 0);
    int64_t sz = fsize(lp);
    fprintf(stderr, "  %" PRIu64 " data bytes, file %" PRId64 ", %" PRIu64 " zero writes (%" PRIu64
                    " bytes)\n",
            bytes, sz, st.zero_writes, st.zero_bytes);
    CHECK(sz > (int64_t)bytes && sz <= (int64_t)(bytes + pz));
    CHECK_EQ(batches_end(lp), bytes);
    uint64_t tail = st.next_seq;

    /* What a crash leaves (the page cache's view: data, then zeros). */
    CHECK_EQ(copy_dir(dir, copy), 0);
    log_path(cp, sizeof(cp), copy, 0);
    CHECK_EQ(fsize(cp), sz);
    struct sl_shard *r = open_shard(copy, &cfg);
    CHECK(r != NULL);
    struct sl_shard_stats rs;
    sl_shard_stats(r, &rs);
    CHECK_EQ(rs.recovery_truncated_bytes, 0); /* zeros are the clean end */
    CHECK_EQ(rs.next_seq, tail);
    CHECK_EQ(rs.bytes, bytes);
    CHECK_EQ(fsize(cp), (int64_t)bytes); /* the zeros cut */
    CHECK_EQ(read_all(r, 0), tail);
    /* Appends continue at the data end. */
    uint64_t more = append_n(r, 8, 16 * KiB, &salt);
    CHECK(more > 0);
    CHECK_EQ(read_all(r, 0), tail + 32);
    sl_shard_close(r);
    CHECK_EQ(fsize(cp), (int64_t)(bytes + more)); /* a clean close cuts the zeros */
    CHECK_EQ(batches_end(cp), bytes + more);

    sl_shard_close(s);
    CHECK_EQ(fsize(lp), (int64_t)bytes);
    s = open_shard(dir, &cfg);
    CHECK(s != NULL);
    sl_shard_stats(s, &st);
    CHECK_EQ(st.recovery_truncated_bytes, 0);
    CHECK_EQ(read_all(s, 0), tail);
    sl_shard_close(s);
}

/* A torn batch followed by the zeros is a torn tail: cut and counted. */
TEST(torn_batch_then_zeros_is_cut)
{
    char dir[PATH_MAX], copy[PATH_MAX], cp[PATH_MAX + 64];
    fresh_dir(dir, sizeof(dir), "torn");
    fresh_dir(copy, sizeof(copy), "torn_copy");
    struct sl_shard_config cfg;
    base_config(&cfg, 256 * KiB);
    struct sl_shard *s = open_shard(dir, &cfg);
    CHECK(s != NULL);
    uint64_t salt = 100;
    uint64_t bytes = append_n(s, 64, 16 * KiB, &salt);
    CHECK(bytes > 0);
    struct sl_shard_stats st;
    sl_shard_stats(s, &st);
    uint64_t tail = st.next_seq;
    CHECK_EQ(copy_dir(dir, copy), 0);
    sl_shard_close(s);
    log_path(cp, sizeof(cp), copy, 0);
    int64_t sz = fsize(cp);
    CHECK(sz > (int64_t)bytes + 4096);
    /* The first 3000 bytes of one more batch land; its rest and the zeros
     * after it do not. */
    static uint8_t buf[64 * KiB];
    uint32_t len = make_batch(buf, sizeof(buf), 4, 4 * KiB, 999);
    CHECK(len > 3000);
    int fd = open(cp, O_WRONLY | O_CLOEXEC);
    CHECK(fd >= 0);
    CHECK_EQ(pwrite(fd, buf, 3000, (off_t)bytes), 3000);
    close(fd);
    CHECK_EQ(fsize(cp), sz);
    struct sl_shard *r = open_shard(copy, &cfg);
    CHECK(r != NULL);
    struct sl_shard_stats rs;
    sl_shard_stats(r, &rs);
    CHECK_EQ(rs.recovery_truncated_bytes, (uint64_t)sz - bytes);
    CHECK_EQ(rs.next_seq, tail);
    CHECK_EQ(read_all(r, 0), tail);
    CHECK_EQ(fsize(cp), (int64_t)bytes);
    sl_shard_close(r);
}

/* Zeros, then a batch that landed while the one before it did not (writes
 * reach the disk in any order): torn too, not a clean zero tail. */
TEST(zeros_then_data_is_torn)
{
    char dir[PATH_MAX], cp[PATH_MAX + 64];
    fresh_dir(dir, sizeof(dir), "gap");
    struct sl_shard_config cfg;
    base_config(&cfg, 256 * KiB);
    struct sl_shard *s = open_shard(dir, &cfg);
    CHECK(s != NULL);
    uint64_t salt = 200;
    uint64_t bytes = append_n(s, 64, 16 * KiB, &salt);
    CHECK(bytes > 0);
    struct sl_shard_stats st;
    sl_shard_stats(s, &st);
    uint64_t tail = st.next_seq;
    sl_shard_close(s);
    log_path(cp, sizeof(cp), dir, 0);
    /* 64 KiB of zeros, then a byte of data. */
    int fd = open(cp, O_WRONLY | O_CLOEXEC);
    CHECK(fd >= 0);
    uint8_t one = 0x5a;
    CHECK(ftruncate(fd, (off_t)(bytes + 64 * KiB)) == 0);
    CHECK_EQ(pwrite(fd, &one, 1, (off_t)(bytes + 64 * KiB)), 1);
    close(fd);
    struct sl_shard *r = open_shard(dir, &cfg);
    CHECK(r != NULL);
    struct sl_shard_stats rs;
    sl_shard_stats(r, &rs);
    CHECK_EQ(rs.recovery_truncated_bytes, 64 * KiB + 1);
    CHECK_EQ(rs.next_seq, tail);
    CHECK_EQ(fsize(cp), (int64_t)bytes);
    sl_shard_close(r);
}

/* Sealed segments hold their batches only. */
TEST(sealed_segment_has_no_zero_tail)
{
    char dir[PATH_MAX];
    fresh_dir(dir, sizeof(dir), "seal");
    struct sl_shard_config cfg;
    base_config(&cfg, 256 * KiB);
    cfg.segment_bytes = 768 * KiB;
    struct sl_shard *s = open_shard(dir, &cfg);
    CHECK(s != NULL);
    uint64_t salt = 300;
    uint64_t bytes = append_n(s, 256, 16 * KiB, &salt); /* ~4 MiB: 5+ segments */
    CHECK(bytes > 0);
    struct sl_shard_stats st;
    sl_shard_stats(s, &st);
    CHECK(st.segments >= 4);
    CHECK(st.zero_writes >= st.segments - 1); /* the run-ahead ran in every segment */
    CHECK_EQ(st.bytes, bytes);
    DIR *d = opendir(dir);
    CHECK(d != NULL);
    struct dirent *e;
    uint64_t newest = 0, sealed = 0, sum = 0;
    while ((e = readdir(d)) != NULL) {
        uint64_t b;
        char ext[8];
        if (sscanf(e->d_name, "%20" SCNu64 ".%3s", &b, ext) == 2 && strcmp(ext, "log") == 0) {
            newest = b > newest ? b : newest;
        }
    }
    rewinddir(d);
    int bad = 0;
    while ((e = readdir(d)) != NULL) {
        uint64_t b;
        char ext[8];
        if (sscanf(e->d_name, "%20" SCNu64 ".%3s", &b, ext) != 2 || strcmp(ext, "log") != 0) {
            continue;
        }
        char p[PATH_MAX + 64];
        log_path(p, sizeof(p), dir, b);
        int64_t sz = fsize(p);
        if (b != newest) {
            sealed++;
            bad += (uint64_t)sz != batches_end(p);
        }
        sum += b != newest ? (uint64_t)sz : batches_end(p);
    }
    closedir(d);
    CHECK_EQ(bad, 0);
    CHECK(sealed >= 3);
    CHECK_EQ(sum, bytes);
    uint64_t tail = st.next_seq;
    CHECK_EQ(read_all(s, 0), tail);
    sl_shard_close(s);
    s = open_shard(dir, &cfg);
    CHECK(s != NULL);
    sl_shard_stats(s, &st);
    CHECK_EQ(st.recovery_truncated_bytes, 0);
    CHECK_EQ(st.bytes, bytes);
    CHECK_EQ(read_all(s, 0), tail);
    sl_shard_close(s);
}

/* Two shards under a one-descriptor budget take turns: each use parks the
 * other. A parked shard holds no zero tail, and appends where its data ends. */
TEST(parked_shard_cuts_and_appends_in_place)
{
    char da[PATH_MAX], db[PATH_MAX], pa[PATH_MAX + 64], pb[PATH_MAX + 64];
    fresh_dir(da, sizeof(da), "park_a");
    fresh_dir(db, sizeof(db), "park_b");
    struct sl_shard_cache cache;
    sl_shard_cache_init(&cache, 1);
    struct sl_shard_config cfg;
    base_config(&cfg, 128 * KiB);
    cfg.cache = &cache;
    struct sl_shard *a = open_shard(da, &cfg);
    struct sl_shard *b = open_shard(db, &cfg);
    CHECK(a != NULL && b != NULL);
    log_path(pa, sizeof(pa), da, 0);
    log_path(pb, sizeof(pb), db, 0);
    uint64_t salt = 400, ba = 0, bb = 0;
    uint64_t zero_a = 0;
    for (int round = 0; round < 6; round++) {
        uint64_t n = append_n(a, 24, 16 * KiB, &salt);
        CHECK(n > 0);
        ba += n;
        struct sl_shard_stats st;
        sl_shard_stats(a, &st);
        zero_a = st.zero_writes;
        n = append_n(b, 24, 16 * KiB, &salt); /* parks a */
        CHECK(n > 0);
        bb += n;
        CHECK(cache.parks > 0);
        CHECK_EQ(fsize(pa), (int64_t)ba); /* a is parked: no zero tail */
        CHECK_EQ(batches_end(pa), ba);
    }
    CHECK(zero_a > 0); /* the run-ahead ran between the parks */
    struct sl_shard_stats st;
    sl_shard_stats(a, &st);
    CHECK_EQ(read_all(a, 0), st.next_seq);
    sl_shard_stats(b, &st);
    CHECK_EQ(read_all(b, 0), st.next_seq);
    sl_shard_close(a);
    sl_shard_close(b);
    CHECK_EQ(fsize(pa), (int64_t)ba);
    CHECK_EQ(fsize(pb), (int64_t)bb);
    sl_shard_cache_fini(&cache);
}

/* Opens a shard with the smallest run-ahead, appends until it runs, then
 * arms a fault on the next tick's second write: the append's data write is
 * the first, the zero write that tick starts the second. */
static struct sl_shard *zero_fault_setup(const char *name, char *dir, size_t cap, int err,
                                         uint64_t *salt, uint64_t *bytes)
{
    fresh_dir(dir, cap, name);
    struct sl_shard_config cfg;
    base_config(&cfg, SL_PREZERO_MIN);
    struct sl_shard *s = open_shard(dir, &cfg);
    if (s == NULL) {
        return NULL;
    }
    *bytes = append_n(s, 8, 16 * KiB, salt); /* the run-ahead is full afterwards */
    struct sl_ring_faults f = {.op = SL_FAULT_WRITE, .nth = 2, .err = err, .persistent = false};
    sl_ring_faults_arm(&g_ring, &f);
    return s;
}

/* A zero write failing with EIO is an I/O error like any other: the shard
 * refuses writes, naming it; what was acknowledged survives a reopen. */
TEST(zero_write_eio_is_fatal)
{
    char dir[PATH_MAX];
    uint64_t salt = 600, bytes = 0;
    struct sl_shard *s = zero_fault_setup("zeio", dir, sizeof(dir), EIO, &salt, &bytes);
    CHECK(s != NULL && bytes > 0);
    struct sl_shard_stats st;
    sl_shard_stats(s, &st);
    uint64_t zw = st.zero_writes, acked = st.visible_seq;
    append_n(s, 1, 16 * KiB, &salt); /* its ack may fail: the shard goes fatal */
    struct sl_ring_fault_counts fc;
    sl_ring_faults_counts(&g_ring, &fc);
    sl_ring_faults_disarm(&g_ring);
    sl_shard_stats(s, &st);
    CHECK_EQ(fc.injected, 1);
    CHECK_EQ(st.zero_writes, zw + 1); /* the second write was the zero write */
    CHECK_EQ(st.state, SL_EFATAL);
    CHECK(st.fatal_what != NULL && strstr(st.fatal_what, "zero-fill") != NULL);
    g_acks.failed = 0;
    sl_shard_close(s);
    struct sl_shard_config cfg;
    base_config(&cfg, SL_PREZERO_MIN);
    s = open_shard(dir, &cfg);
    CHECK(s != NULL);
    sl_shard_stats(s, &st);
    CHECK(st.next_seq >= acked);
    CHECK_EQ(read_all(s, 0), st.next_seq);
    sl_shard_close(s);
}

/* A zero write refused for a full disk stops the run-ahead in that segment
 * and gives the space back; the shard stays writable and the data intact. */
TEST(zero_write_enospc_stops_run_ahead)
{
    char dir[PATH_MAX], lp[PATH_MAX + 64];
    uint64_t salt = 700, bytes = 0;
    struct sl_shard *s = zero_fault_setup("zenospc", dir, sizeof(dir), ENOSPC, &salt, &bytes);
    CHECK(s != NULL && bytes > 0);
    struct sl_shard_stats st;
    sl_shard_stats(s, &st);
    uint64_t zw = st.zero_writes;
    uint64_t more = append_n(s, 1, 16 * KiB, &salt);
    struct sl_ring_fault_counts fc;
    sl_ring_faults_counts(&g_ring, &fc);
    sl_ring_faults_disarm(&g_ring);
    CHECK_EQ(fc.injected, 1);
    CHECK(more > 0); /* the data write was not the one refused */
    sl_shard_stats(s, &st);
    CHECK_EQ(st.state, SL_OK);
    CHECK_EQ(st.zero_writes, zw + 1);
    more += append_n(s, 16, 16 * KiB, &salt);
    sl_shard_stats(s, &st);
    CHECK_EQ(st.zero_writes, zw + 1); /* none since, in this segment */
    log_path(lp, sizeof(lp), dir, 0);
    CHECK(fsize(lp) >= (int64_t)(bytes + more));
    CHECK_EQ(batches_end(lp), bytes + more);
    uint64_t tail = st.next_seq;
    CHECK_EQ(read_all(s, 0), tail);
    sl_shard_close(s);
    CHECK_EQ(fsize(lp), (int64_t)(bytes + more));
}

/* prezero_bytes 0: no zero write, the file is its data. */
TEST(off_writes_no_zeros)
{
    char dir[PATH_MAX], lp[PATH_MAX + 64];
    fresh_dir(dir, sizeof(dir), "off");
    struct sl_shard_config cfg;
    base_config(&cfg, 0);
    struct sl_shard *s = open_shard(dir, &cfg);
    CHECK(s != NULL);
    uint64_t salt = 500;
    uint64_t bytes = append_n(s, 64, 16 * KiB, &salt);
    CHECK(bytes > 0);
    struct sl_shard_stats st;
    sl_shard_stats(s, &st);
    CHECK_EQ(st.zero_writes, 0);
    log_path(lp, sizeof(lp), dir, 0);
    if (cfg.io_mode == SL_IO_DIRECT) {
        /* the O_DIRECT padding of the last block, until the close cuts it */
        CHECK_EQ(fsize(lp), (int64_t)((bytes + SL_DIO_ALIGN - 1) / SL_DIO_ALIGN * SL_DIO_ALIGN));
    } else {
        CHECK_EQ(fsize(lp), (int64_t)bytes);
    }
    sl_shard_close(s);
    CHECK_EQ(fsize(lp), (int64_t)bytes);
}

int main(void)
{
    if (getenv("SLUICE_TEST_LOG") == NULL) {
        sl_log_level_min = SL_LOG_ERROR + 1;
    }
    const char *tmp = getenv("TMPDIR");
    snprintf(g_root, sizeof(g_root), "%s/sl_test_prezero_XXXXXX",
             tmp != NULL && tmp[0] != '\0' ? tmp : "/var/tmp");
    if (mkdtemp(g_root) == NULL || sl_ring_init(&g_ring, 256) != SL_OK) {
        fprintf(stderr, "setup failed: %s\n", strerror(errno));
        return 1;
    }
    RUN(config_range);
    RUN(run_ahead_and_crash_copy);
    RUN(torn_batch_then_zeros_is_cut);
    RUN(zeros_then_data_is_torn);
    RUN(sealed_segment_has_no_zero_tail);
    RUN(parked_shard_cuts_and_appends_in_place);
    RUN(off_writes_no_zeros);
    RUN(zero_write_eio_is_fatal);
    RUN(zero_write_enospc_stops_run_ahead);
    sl_ring_fini(&g_ring);
    nftw(g_root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    TEST_END();
}
