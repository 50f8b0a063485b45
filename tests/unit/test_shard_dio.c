/* test_shard_dio.c - io_mode = direct (storage/shard_direct.c) through the
 * shard's public API and its files.
 *
 * Covers: the config ranges; O_DIRECT writes leave none of the log in the page
 * cache (mincore), where buffered ones do (the control that shows the check
 * can fail); batches ending anywhere in a block - the padding rewritten by
 * the next write - survive a close and reopen, and a copy of the directory
 * taken while the shard is open (what a crash leaves: padding zeros after the
 * data) recovers every record with nothing counted as torn; sealed segments
 * are exactly their batches; tailing reads come from the recent-data cache
 * (read_cache_bytes) and older ones from the file, both verified, none from
 * the cache when it is off; the start-up probe.
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
#include <sys/mman.h>
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

static void base_config(struct sl_shard_config *cfg, uint64_t prezero, enum sl_io_mode mode)
{
    sl_shard_config_default(cfg);
    cfg->io_mode = mode;
    cfg->prezero_bytes = prezero;
    cfg->batch_bytes_max = 1 * MiB;
    cfg->write_buf_bytes = 1 * MiB;
}

#include "tests/unit/shard_fixture.h"

/* ---- cases -------------------------------------------------------------- */

/* Pages of `path` in the page cache, and its pages in all. */
static int resident_pages(const char *path, size_t *total)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return -1;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || sb.st_size == 0) {
        close(fd);
        return -1;
    }
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    size_t n = ((size_t)sb.st_size + pg - 1) / pg;
    void *m = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (m == MAP_FAILED) {
        return -1;
    }
    unsigned char *vec = malloc(n);
    int count = -1;
    if (vec != NULL && mincore(m, (size_t)sb.st_size, vec) == 0) {
        count = 0;
        for (size_t i = 0; i < n; i++) {
            count += vec[i] & 1;
        }
    }
    free(vec);
    munmap(m, (size_t)sb.st_size);
    *total = n;
    return count;
}

static uint64_t cache_reads(struct sl_shard *s)
{
    struct sl_shard_stats st;
    sl_shard_stats(s, &st);
    return st.cache_reads;
}

/* One read from `seq`; its records (verified), or UINT64_MAX. */
static uint64_t read_one(struct sl_shard *s, uint64_t seq, uint32_t buf_cap, uint32_t max_bytes)
{
    static uint8_t buf[4 * MiB];
    struct sl_shard_read rd;
    struct rdw w = {0, 0};
    memset(&rd, 0, sizeof(rd));
    rd.from = SL_READ_SEQ;
    rd.seq = seq;
    rd.buf = buf;
    rd.buf_cap = buf_cap;
    rd.max_bytes = max_bytes;
    rd.cb = read_cb;
    rd.ctx = &w;
    sl_shard_read(s, &rd);
    if (w.done != 0) {
        return UINT64_MAX; /* never from inside sl_shard_read */
    }
    while (w.done == 0) {
        sl_ring_run(&g_ring, 1, 0);
    }
    if (w.err != SL_OK || rd.batch_count == 0) {
        return UINT64_MAX;
    }
    uint64_t records = 0;
    for (uint32_t off = 0; off < rd.len;) {
        struct sl_batch_header h;
        if (sl_batch_validate(buf + off, rd.len - off, rd.len - off, &h) != SL_OK) {
            return UINT64_MAX;
        }
        records += h.record_count;
        off += h.length;
    }
    return records;
}

/* ---- cases -------------------------------------------------------------- */

TEST(config_range)
{
    struct sl_shard_config cfg;
    char why[160];
    base_config(&cfg, 0, SL_IO_DIRECT);
    CHECK_EQ(sl_shard_config_check(&cfg, why, sizeof(why)), SL_OK);
    cfg.io_mode = (enum sl_io_mode)2;
    CHECK_EQ(sl_shard_config_check(&cfg, why, sizeof(why)), SL_EINVAL);
    CHECK(strstr(why, "io_mode") != NULL);
    base_config(&cfg, 0, SL_IO_DIRECT);
    cfg.read_cache_bytes = 0;
    CHECK_EQ(sl_shard_config_check(&cfg, why, sizeof(why)), SL_OK);
    cfg.read_cache_bytes = SL_READ_CACHE_MIN - 1;
    CHECK_EQ(sl_shard_config_check(&cfg, why, sizeof(why)), SL_EINVAL);
    CHECK(strstr(why, "read_cache_bytes") != NULL);
    cfg.read_cache_bytes = SL_READ_CACHE_MAX + 1;
    CHECK_EQ(sl_shard_config_check(&cfg, why, sizeof(why)), SL_EINVAL);
}

/* The point of the mode: what is written does not pass through the page
 * cache. Buffered, the same appends leave the log's pages cached. */
TEST(writes_bypass_page_cache)
{
    const enum sl_io_mode modes[2] = {SL_IO_BUFFERED, SL_IO_DIRECT};
    for (int m = 0; m < 2; m++) {
        char dir[PATH_MAX], lp[PATH_MAX + 64];
        fresh_dir(dir, sizeof(dir), m == 0 ? "cache_buffered" : "cache_direct");
        struct sl_shard_config cfg;
        base_config(&cfg, 0, modes[m]);
        struct sl_shard *s = open_shard(dir, &cfg);
        CHECK(s != NULL);
        uint64_t salt = 1;
        uint64_t bytes = append_n(s, 64, 16 * KiB + 123, &salt);
        CHECK(bytes > 0);
        log_path(lp, sizeof(lp), dir, 0);
        size_t total = 0;
        int res = resident_pages(lp, &total);
        fprintf(stderr, "  %s: %d of %zu pages of the log in the page cache\n",
                m == 0 ? "buffered" : "direct", res, total);
        CHECK(res >= 0);
        if (m == 0) {
            CHECK((size_t)res * 2 >= total);
        } else {
            CHECK(res <= 1);
        }
        sl_shard_close(s);
    }
}

/* Batches end anywhere in a block: each write rewrites the block under the
 * previous end. A close cuts the padding; a copy taken while open (a crash)
 * has it, and recovery takes it for the clean end. */
TEST(unaligned_ends_survive_reopen_and_crash_copy)
{
    char dir[PATH_MAX], copy[PATH_MAX + 16], lp[PATH_MAX + 64], cp[PATH_MAX + 64];
    fresh_dir(dir, sizeof(dir), "unaligned");
    snprintf(copy, sizeof(copy), "%s.copy", dir);
    nftw(copy, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    struct sl_shard_config cfg;
    base_config(&cfg, 0, SL_IO_DIRECT);
    struct sl_shard *s = open_shard(dir, &cfg);
    CHECK(s != NULL);
    uint64_t salt = 100, bytes = 0;
    for (uint32_t round = 0; round < 8; round++) {
        uint64_t b = append_n(s, 3, 1000 + 777 * round, &salt);
        CHECK(b > 0);
        bytes += b;
    }
    log_path(lp, sizeof(lp), dir, 0);
    CHECK(bytes % SL_DIO_ALIGN != 0);
    CHECK_EQ(fsize(lp), (int64_t)((bytes + SL_DIO_ALIGN - 1) / SL_DIO_ALIGN * SL_DIO_ALIGN));
    CHECK_EQ(copy_dir(dir, copy), 0);
    struct sl_shard_stats st;
    sl_shard_stats(s, &st);
    uint64_t tail = st.next_seq;
    CHECK_EQ(read_all(s, 0), tail);
    sl_shard_close(s);
    CHECK_EQ(fsize(lp), (int64_t)bytes); /* the close cut the padding */

    /* reopen: appends continue inside the last block (read back from the file) */
    s = open_shard(dir, &cfg);
    CHECK(s != NULL);
    uint64_t more = append_n(s, 5, 3001, &salt);
    CHECK(more > 0);
    sl_shard_stats(s, &st);
    CHECK(st.next_seq > tail);
    CHECK_EQ(read_all(s, 0), st.next_seq);
    sl_shard_close(s);
    CHECK_EQ(fsize(lp), (int64_t)(bytes + more));
    CHECK_EQ(batches_end(lp), bytes + more);

    /* the crash copy: every record, nothing torn, the padding cut */
    s = open_shard(copy, &cfg);
    CHECK(s != NULL);
    sl_shard_stats(s, &st);
    CHECK_EQ(st.recovery_truncated_bytes, 0);
    CHECK_EQ(st.next_seq, tail);
    log_path(cp, sizeof(cp), copy, 0);
    CHECK_EQ(fsize(cp), (int64_t)bytes);
    uint64_t again = append_n(s, 2, 5000, &salt);
    CHECK(again > 0);
    sl_shard_stats(s, &st);
    CHECK_EQ(read_all(s, 0), st.next_seq);
    sl_shard_close(s);
    CHECK_EQ(batches_end(cp), bytes + again);
    nftw(copy, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Segments roll; every sealed .log is exactly its batches (the seal cut the
 * padding), and a reopen reads everything back. */
TEST(sealed_segments_are_exact)
{
    char dir[PATH_MAX];
    fresh_dir(dir, sizeof(dir), "sealed");
    struct sl_shard_config cfg;
    base_config(&cfg, SL_PREZERO_MIN, SL_IO_DIRECT);
    cfg.segment_bytes = 64 * KiB;
    struct sl_shard *s = open_shard(dir, &cfg);
    CHECK(s != NULL);
    uint64_t salt = 7;
    CHECK(append_n(s, 200, 5 * KiB + 17, &salt) > 0);
    struct sl_shard_stats st;
    sl_shard_stats(s, &st);
    CHECK(st.segments >= 10);
    uint64_t tail = st.next_seq;
    CHECK_EQ(read_all(s, 0), tail);
    DIR *d = opendir(dir);
    CHECK(d != NULL);
    struct dirent *e;
    uint32_t sealed = 0;
    uint64_t newest = 0;
    while ((e = readdir(d)) != NULL) {
        unsigned long long base;
        if (sscanf(e->d_name, "%llu.log", &base) == 1 && strstr(e->d_name, ".log") != NULL) {
            newest = base > newest ? base : newest;
        }
    }
    rewinddir(d);
    while ((e = readdir(d)) != NULL) {
        unsigned long long base;
        if (sscanf(e->d_name, "%llu.log", &base) != 1 || strstr(e->d_name, ".log") == NULL ||
            base == newest) {
            continue;
        }
        char lp[PATH_MAX + 64];
        log_path(lp, sizeof(lp), dir, base);
        CHECK_EQ((uint64_t)fsize(lp), batches_end(lp));
        sealed++;
    }
    closedir(d);
    CHECK_EQ(sealed + 1, st.segments);
    sl_shard_close(s);
    s = open_shard(dir, &cfg);
    CHECK(s != NULL);
    sl_shard_stats(s, &st);
    CHECK_EQ(st.next_seq, tail);
    CHECK_EQ(read_all(s, 0), tail);
    sl_shard_close(s);
}

/* A tailing read is served from memory; a read of older data than the cache
 * holds comes from the file; both verified. Off, nothing comes from it. */
TEST(tail_reads_from_the_cache)
{
    for (int on = 1; on >= 0; on--) {
        char dir[PATH_MAX];
        fresh_dir(dir, sizeof(dir), on ? "rc_on" : "rc_off");
        struct sl_shard_config cfg;
        base_config(&cfg, 0, SL_IO_DIRECT);
        cfg.read_cache_bytes = on ? SL_READ_CACHE_MIN : 0;
        struct sl_shard *s = open_shard(dir, &cfg);
        CHECK(s != NULL);
        uint64_t salt = 300;
        uint32_t hits = 0;
        for (uint32_t i = 0; i < 40; i++) {
            struct sl_shard_stats st;
            sl_shard_stats(s, &st);
            uint64_t from = st.next_seq;
            CHECK(append_n(s, 1, 3 * KiB + i, &salt) > 0);
            uint64_t before = cache_reads(s);
            CHECK_EQ(read_one(s, from, 1 * MiB, 1 * MiB), 4);
            hits += (uint32_t)(cache_reads(s) - before);
        }
        fprintf(stderr, "  cache %s: %u of 40 tail reads from memory\n", on ? "on" : "off", hits);
        CHECK_EQ(hits, on ? 40u : 0u);
        /* 40 batches of ~3 KiB: the oldest are past a 64 KiB cache */
        uint64_t before = cache_reads(s);
        CHECK_EQ(read_one(s, 0, 8 * KiB, 1), 4); /* (one batch: the first always fits) */
        CHECK_EQ(cache_reads(s), before);
        struct sl_shard_stats st;
        sl_shard_stats(s, &st);
        CHECK_EQ(read_all(s, 0), st.next_seq);
        sl_shard_close(s);
    }
}

TEST(probe)
{
    char why[512] = "";
    CHECK_EQ(sl_shard_probe_direct(g_root, why, sizeof(why)), SL_OK);
    char missing[PATH_MAX];
    snprintf(missing, sizeof(missing), "%s/no/such/dir", g_root);
    CHECK(sl_shard_probe_direct(missing, why, sizeof(why)) != SL_OK);
    CHECK(strstr(why, missing) != NULL);
    /* tmpfs takes O_DIRECT since Linux 6.6; before, the probe names the fix */
    int rc = sl_shard_probe_direct("/dev/shm", why, sizeof(why));
    fprintf(stderr, "  /dev/shm: %s%s%s\n", sl_errname(rc), rc != SL_OK ? ": " : "",
            rc != SL_OK ? why : "");
    CHECK(rc == SL_OK || (rc == SL_EUNSUPPORTED && strstr(why, "io_mode = buffered") != NULL) ||
          access("/dev/shm", W_OK) != 0);
}

int main(void)
{
    if (getenv("SLUICE_TEST_LOG") == NULL) {
        sl_log_level_min = SL_LOG_ERROR + 1;
    }
    const char *tmp = getenv("TMPDIR");
    snprintf(g_root, sizeof(g_root), "%s/sl_test_direct_XXXXXX",
             tmp != NULL && tmp[0] != '\0' ? tmp : "/var/tmp");
    if (mkdtemp(g_root) == NULL || sl_ring_init(&g_ring, 256) != SL_OK) {
        fprintf(stderr, "setup failed: %s\n", strerror(errno));
        return 1;
    }
    char why[512];
    if (sl_shard_probe_direct(g_root, why, sizeof(why)) == SL_EUNSUPPORTED) {
        fprintf(stderr, "skipped: %s\n", why); /* TMPDIR on a filesystem without O_DIRECT */
        nftw(g_root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        return 77;
    }
    RUN(config_range);
    RUN(writes_bypass_page_cache);
    RUN(unaligned_ends_survive_reopen_and_crash_copy);
    RUN(sealed_segments_are_exact);
    RUN(tail_reads_from_the_cache);
    RUN(probe);
    sl_ring_fini(&g_ring);
    nftw(g_root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    TEST_END();
}
