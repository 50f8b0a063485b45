/* corrupt_random.c - random damage to a shard's files is always detected.
 *
 * Covers (issue #6 suite 4): a shard with several sealed segments and an
 * active one, every record's content a function of its sequence, is closed;
 * one random file (a sealed or the active .log, or an .idx) gets one random
 * kind of damage — a flipped bit, a zeroed 4 KiB block, or a truncation —
 * and the shard is reopened (recovery) and read from its first sequence to
 * its tail, one sequence at a time where a read fails. Checks, per case:
 *   - never a wrong record: everything served has exactly its content;
 *   - recovery succeeds (a damaged sealed index is rebuilt from the log; a
 *     damaged active tail is truncated);
 *   - damage inside a sealed segment's batches makes exactly that range
 *     answer SL_ECORRUPT (reported, never silently skipped), and the records
 *     of the other segments stay readable;
 *   - the shard takes appends afterwards, continuing the sequence.
 * CI runs 100 cases (seeded, printed); SLUICE_IT_LONG=1 runs 1,000.
 */
#include "../unit/test.h"

#include "common/assert.h"
#include "common/error.h"
#include "common/log.h"
#include "common/ring.h"
#include "storage/batch.h"
#include "storage/shard.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#define BATCHES 120u
#define VALUE_MAX 200u

static struct sl_ring ring;
static uint32_t cases = 100;

static struct sl_shard_config cfg(void)
{
    struct sl_shard_config c;
    sl_shard_config_default(&c);
    if (getenv("SL_TEST_SHARD_DIRECT") != NULL) {
        c.io_mode = SL_IO_DIRECT; /* crash_corrupt_random_direct */
    }
    c.segment_bytes = 8 << 10; /* ~10 segments */
    c.index_interval_bytes = 1024;
    return c;
}

static uint32_t value_for(uint64_t seq, uint8_t *out)
{
    uint32_t len = 8 + (uint32_t)(seq * 2654435761u % (VALUE_MAX - 8));
    for (uint32_t i = 0; i < len; i++) {
        out[i] = (uint8_t)(seq * 131 + i * 7);
    }
    return len;
}

static int acked;
static void on_ack(void *ctx, int err, uint64_t base, uint32_t n)
{
    (void)ctx;
    (void)base;
    (void)n;
    acked += err == SL_OK ? 1 : 0;
}

/* Appends `n` batches of 1-3 records; returns the next sequence. */
static uint64_t fill(struct sl_shard *s, uint32_t n)
{
    static uint8_t buf[8192];
    uint8_t val[VALUE_MAX];
    acked = 0;
    for (uint32_t b = 0; b < n; b++) {
        struct sl_shard_stats st;
        sl_shard_stats(s, &st);
        struct sl_batch_builder bld;
        sl_batch_builder_init(&bld, buf, sizeof(buf));
        for (uint32_t i = 0; i < 1 + b % 3; i++) {
            struct sl_record r = {.key = "k", .key_len = 1, .value = val,
                                  .value_len = value_for(st.next_seq + i, val),
                                  .timestamp_ms = 1};
            SL_ASSERT(sl_batch_builder_add(&bld, &r) == SL_OK);
        }
        size_t len;
        SL_ASSERT(sl_batch_builder_finish(&bld, SL_BATCH_CODEC_NONE, 0, NULL, NULL, 0, 0, 0,
                                          &len) == SL_OK);
        int rc;
        while ((rc = sl_shard_append(s, buf, len, on_ack, NULL)) == SL_EAGAIN) {
            sl_ring_run(&ring, 1, 0);
        }
        SL_ASSERT(rc == SL_OK);
    }
    while (acked < (int)n) {
        sl_ring_run(&ring, 1, 0);
    }
    struct sl_shard_stats st;
    sl_shard_stats(s, &st);
    return st.next_seq;
}

static int rdone, rerr;
static void on_read(struct sl_shard_read *rd, int err)
{
    (void)rd;
    rdone = 1;
    rerr = err;
}

/* Reads from `seq`; checks every record served. Returns the read's error;
 * *next gets where to continue, *bad counts wrong records. */
static int read_at(struct sl_shard *s, uint64_t seq, uint64_t *next, uint32_t *served,
                   uint32_t *bad)
{
    static uint8_t buf[64 << 10];
    uint8_t val[VALUE_MAX];
    struct sl_shard_read rd = {.from = SL_READ_SEQ, .seq = seq, .buf = buf,
                               .buf_cap = sizeof(buf), .max_bytes = sizeof(buf), .cb = on_read};
    rdone = 0;
    sl_shard_read(s, &rd);
    while (!rdone) {
        sl_ring_run(&ring, 1, 0);
    }
    if (rerr != SL_OK) {
        return rerr;
    }
    *next = rd.next_seq;
    for (uint32_t off = 0; off < rd.len;) {
        struct sl_batch_header h;
        struct sl_batch_iter it;
        struct sl_record_view rv;
        if (sl_batch_validate(buf + off, rd.len - off, sizeof(buf), &h) != SL_OK ||
            sl_batch_iter_init(&it, buf + off, &h, NULL, NULL, 0) != SL_OK) {
            (*bad)++; /* served bytes that do not verify */
            return SL_OK;
        }
        while (sl_batch_iter_next(&it, &rv) == SL_OK) {
            uint32_t len = value_for(rv.seq, val);
            if (rv.value_len != len || memcmp(rv.value, val, len) != 0) {
                (*bad)++;
            }
            (*served)++;
        }
        off += h.length;
    }
    return SL_OK;
}

struct seg_file {
    char name[256];
    off_t size;
};

static uint32_t list_files(const char *dir, struct seg_file *out, uint32_t max)
{
    DIR *d = opendir(dir);
    uint32_t n = 0;
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL && n < max) {
        size_t l = strlen(e->d_name);
        if (l < 5 || (strcmp(e->d_name + l - 4, ".log") != 0 &&
                      strcmp(e->d_name + l - 4, ".idx") != 0)) {
            continue;
        }
        char path[512];
        struct stat st;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (stat(path, &st) == 0 && st.st_size > 0) {
            snprintf(out[n].name, sizeof(out[n].name), "%s", e->d_name);
            out[n].size = st.st_size;
            n++;
        }
    }
    if (d != NULL) {
        closedir(d);
    }
    return n;
}

/* One random damage to one random file; returns a description. */
static void damage(const char *dir, char *what, size_t what_len)
{
    struct seg_file files[128];
    uint32_t n = list_files(dir, files, 128);
    SL_ASSERT(n > 0);
    struct seg_file *f = &files[(uint32_t)rand() % n];
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, f->name);
    int fd = open(path, O_RDWR);
    SL_ASSERT(fd >= 0);
    int kind = rand() % 3;
    off_t at = (off_t)((uint64_t)rand() % (uint64_t)f->size);
    if (kind == 0) {
        uint8_t b;
        SL_ASSERT(pread(fd, &b, 1, at) == 1);
        b ^= (uint8_t)(1u << (rand() % 8));
        SL_ASSERT(pwrite(fd, &b, 1, at) == 1);
        snprintf(what, what_len, "bit flip in %s at %lld", f->name, (long long)at);
    } else if (kind == 1) {
        static const uint8_t zero[4096];
        at &= ~(off_t)4095;
        off_t len = f->size - at < 4096 ? f->size - at : 4096;
        SL_ASSERT(pwrite(fd, zero, (size_t)len, at) == len);
        snprintf(what, what_len, "zeroed 4 KiB block in %s at %lld", f->name, (long long)at);
    } else {
        SL_ASSERT(ftruncate(fd, at) == 0);
        snprintf(what, what_len, "truncated %s to %lld", f->name, (long long)at);
    }
    close(fd);
}

TEST(random_damage_always_detected)
{
    uint32_t served_total = 0, corrupt_reads = 0;
    for (uint32_t c = 0; c < cases; c++) {
        char dir[] = "/var/tmp/sluice-corrupt-XXXXXX";
        CHECK(mkdtemp(dir) != NULL);
        char sdir[64];
        snprintf(sdir, sizeof(sdir), "%s/shard", dir);
        struct sl_shard_config sc = cfg();
        struct sl_shard *s;
        CHECK_EQ(sl_shard_open(&ring, sdir, &sc, &s), SL_OK);
        uint64_t tail = fill(s, BATCHES);
        sl_shard_close(s);
        char what[160];
        damage(sdir, what, sizeof(what));
        int rc = sl_shard_open(&ring, sdir, &sc, &s);
        if (rc != SL_OK) {
            fprintf(stderr, "  case %u (%s): reopen failed: %s\n", c, what, sl_errname(rc));
            CHECK_EQ(rc, SL_OK);
        }
        struct sl_shard_stats st;
        sl_shard_stats(s, &st);
        CHECK(st.next_seq <= tail); /* recovery may cut the active tail, never add */
        uint64_t seq = st.first_seq;
        uint32_t served = 0, bad = 0;
        while (seq < st.visible_seq) {
            uint64_t next = seq;
            rc = read_at(s, seq, &next, &served, &bad);
            if (rc == SL_ECORRUPT) {
                corrupt_reads++;
                seq++; /* reported; the records after it must stay reachable */
                continue;
            }
            CHECK_EQ(rc, SL_OK);
            CHECK(next > seq);
            seq = next;
        }
        if (bad != 0) {
            fprintf(stderr, "  case %u (%s): %u wrong records served\n", c, what, bad);
        }
        CHECK_EQ(bad, 0);
        served_total += served;
        /* Appends continue right after the recovered tail. */
        uint64_t before = st.next_seq;
        uint64_t after = fill(s, 3);
        CHECK(after > before);
        uint32_t s2 = 0;
        uint64_t nx = 0;
        CHECK_EQ(read_at(s, before, &nx, &s2, &bad), SL_OK);
        CHECK(s2 > 0 && bad == 0);
        sl_shard_close(s);
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        CHECK_EQ(system(cmd), 0);
    }
    fprintf(stderr, "  %u cases: %u records served (all correct), %u reads refused as corrupt\n",
            cases, served_total, corrupt_reads);
}

int main(void)
{
    sl_log_set_level(getenv("SLUICE_TEST_LOG") ? SL_LOG_DEBUG : SL_LOG_OFF);
    char why[512] = "";
    if (sl_ring_probe(why, sizeof(why)) != SL_OK || sl_ring_init(&ring, 256) != SL_OK) {
        fprintf(stderr, "io_uring unavailable: %s\n", why);
        return 77;
    }
    const char *lng = getenv("SLUICE_IT_LONG");
    if (lng != NULL && lng[0] == '1') {
        cases = 1000;
    }
    unsigned seed = getenv("SLUICE_SEED") ? (unsigned)atoi(getenv("SLUICE_SEED")) : 20261125u;
    fprintf(stderr, "seed %u\n", seed);
    srand(seed);
    RUN(random_damage_always_detected);
    sl_ring_fini(&ring);
    TEST_END();
}
