/* test_shard.c - the storage engine (storage/shard.c) through its public API.
 *
 * The test drives one io_uring loop directly (sl_ring_init, sl_shard_open on
 * a fresh directory under $TMPDIR or /var/tmp, callbacks set flags, the loop
 * runs until they do) and keeps a model of every batch it appended: its
 * bytes, a hash of each record, and the base sequence its ack reported. Every
 * batch a read returns is validated, compared byte for byte with the model
 * (stamped with its sequence and append time) and decoded record by record.
 *
 * Covers: append -> close -> reopen -> read round trips of random batches
 * (records of 1 B .. 1 MiB, with and without zstd) under both flush policies,
 * and close with appends and reads still pending; truncation of the active
 * segment at every byte of its last batch; a flipped bit at every bit of the
 * active segment's last batch and in a sealed segment (every header bit, one
 * bit per body byte), a damaged record_count (regression), damaged sealed
 * .idx files and a cut sealed .log, an empty newest segment left by a crash;
 * segment rolls by size and by age (also after a reopen); more reads in
 * flight than open_segments_max; retention by time (across a reopen, and
 * while a read holds a doomed segment) and by bytes, and the retention_ms
 * range; SL_READ_TIME lookups; a reader at the tail while appends are in
 * flight; reopening 1000 sealed segments without a data scan; a full disk (a
 * 2 MiB tmpfs, root only, skipped otherwise) under both flush policies and
 * with the zeroed run-ahead;
 * append back-pressure and argument checks; stats; the descriptor budget
 * (parking, reopening); a roll out of descriptors (RLIMIT_NOFILE lowered to
 * the lowest free descriptor): SL_ELIMIT and the shard stays writable, or
 * idle shards parked to free some.
 *
 * Runs in about 15 s with ASan on 2 cores; SLUICE_TEST_LOG=1 shows the
 * shard's own log lines.
 *
 * Segment files are <dir>/<20-digit base seq>.log and .idx (docs/FORMAT.md);
 * the tests read and damage them only with ordinary file calls.
 */
#include "storage/shard.h"

#include "common/checksum.h"
#include "common/clock.h"
#include "common/compress.h"
#include "common/error.h"
#include "common/log.h"
#include "common/ring.h"
#include "storage/batch.h"

#include "tests/unit/test.h"

#include <dirent.h>
#include <time.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define KiB         1024u
#define MiB         (1024u * 1024u)
#define WAIT_NS_MAX (60ull * 1000 * 1000 * 1000) /* a lost callback fails, not hangs */

static struct sl_ring g_ring;
static struct sl_shard_cache g_cache;

/* Test-harness failures (allocation, a generator bug): not a shard result. */
#define SL_TEST_ASSERT(e)                                                                          \
    do {                                                                                           \
        if (!(e)) {                                                                                \
            fprintf(stderr, "%s:%d: harness assertion failed: %s\n", __FILE__, __LINE__, #e);      \
            abort();                                                                               \
        }                                                                                          \
    } while (0)
#define SL_TEST_ALLOC(p) SL_TEST_ASSERT((p) != NULL)

/* ---- deterministic randomness ------------------------------------------ */

static uint64_t rng_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint32_t rng_range(uint64_t *st, uint32_t lo, uint32_t hi) /* [lo, hi] */
{
    return lo + (uint32_t)(rng_next(st) % ((uint64_t)hi - lo + 1));
}

/* Log-uniform in [lo, hi] without libm: a random power of two, then a
 * random offset within that octave. */
static uint32_t rng_logsize(uint64_t *st, uint32_t lo, uint32_t hi)
{
    uint32_t blo = 0, bhi = 0;
    while ((1u << (blo + 1)) <= lo) {
        blo++;
    }
    while ((1u << (bhi + 1)) <= hi && bhi < 30) {
        bhi++;
    }
    uint32_t b = rng_range(st, blo, bhi);
    uint32_t v = (1u << b) + (uint32_t)(rng_next(st) % (1u << b));
    return v < lo ? lo : (v > hi ? hi : v);
}

/* ---- the model ---------------------------------------------------------- */

struct fx;

struct mbatch {
    uint8_t *bytes; /* as built: unstamped */
    uint32_t len;
    uint32_t count;
    uint64_t *rec_hash; /* one per record */
    /* filled by the ack */
    int done; /* callbacks received: must end at exactly 1 */
    int err;
    uint64_t base;
    uint32_t ack_count;
    uint64_t t_lo, t_hi; /* clock before sl_shard_append and at the ack */
    struct fx *f;
};

struct fx {
    char root[1024];    /* mkdtemp'd; removed at the end */
    char dir[PATH_MAX]; /* the shard directory */
    struct sl_shard_config cfg;
    struct sl_clock clock;
    int fake_clock;
    struct sl_shard *s;
    /* every batch created (owned), and the acknowledged ones in ack order */
    struct mbatch **all;
    size_t nall, capall;
    struct mbatch **acked;
    size_t nacked, capacked;
    uint64_t ack_end;  /* end of the contiguous acknowledged sequence */
    int ack_order_bad; /* an ack out of order, or a count mismatch */
    uint32_t acks_pending;
    uint32_t acks_failed;
    int last_fail_err;
    /* codec and read buffers */
    struct sl_zctx *z;
    uint8_t *scratch; /* decompression scratch */
    uint32_t scratch_cap;
    uint8_t *rbuf; /* read buffer */
    uint32_t rbuf_cap;
    uint64_t rng;
    uint64_t batch_no;
    char mnt[1100]; /* a tmpfs mounted by the test, or "" */
    struct sl_shard_cache cache; /* a case's descriptor budget: outlives f->s */
};

static uint64_t fx_now(struct fx *f)
{
    return sl_clock_now_ms(f->fake_clock ? &f->clock : &sl_clock_real);
}

static uint64_t rec_hash(uint64_t ts, const void *k, uint32_t kl, const void *v, uint32_t vl)
{
    return sl_checksum64(v, vl) ^ (sl_checksum64(k, kl) * 31u) ^ (ts * 0x9E3779B97F4A7C15ull);
}

static void model_push(struct fx *f, struct mbatch *b)
{
    if (f->nacked == f->capacked) {
        f->capacked = f->capacked ? f->capacked * 2 : 256;
        f->acked = realloc(f->acked, f->capacked * sizeof(*f->acked));
        SL_TEST_ALLOC(f->acked);
    }
    f->acked[f->nacked++] = b;
}

/* The acknowledged batch whose base is `base`, or NULL. */
static struct mbatch *model_find(struct fx *f, uint64_t base)
{
    size_t lo = 0, hi = f->nacked;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (f->acked[mid]->base < base) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo < f->nacked && f->acked[lo]->base == base ? f->acked[lo] : NULL;
}

static void ack_cb(void *ctx, int err, uint64_t base, uint32_t count)
{
    struct mbatch *b = ctx;
    struct fx *f = b->f;
    b->done++;
    b->err = err;
    b->base = base;
    b->ack_count = count;
    b->t_hi = fx_now(f);
    if (f->acks_pending > 0) {
        f->acks_pending--;
    }
    if (err == SL_OK) {
        if (base != f->ack_end || count != b->count || b->done != 1) {
            f->ack_order_bad = 1;
        }
        f->ack_end = base + count;
        model_push(f, b);
    } else {
        f->acks_failed++;
        f->last_fail_err = err;
    }
}

/* ---- batch generation --------------------------------------------------- */

struct genspec {
    uint32_t nrec_min, nrec_max;
    uint32_t value_min, value_max;
    int logsize;        /* value sizes log-uniform (else uniform) */
    int compressible;   /* -1 = random per batch */
    unsigned codec;     /* SL_BATCH_CODEC_*, or 99 = random per batch */
    uint32_t total_max; /* cap on the sum of value sizes */
};

static void fill_value(uint64_t *st, uint8_t *p, uint32_t n, int compressible)
{
    if (compressible) {
        static const char words[] = "sluice log broker segment shard record batch ";
        uint32_t salt = (uint32_t)rng_next(st);
        for (uint32_t i = 0; i < n; i++) {
            p[i] = (uint8_t)words[(i + salt) % (sizeof(words) - 1)];
        }
        if (n > 0) {
            p[rng_next(st) % n] ^= 1; /* not every value identical */
        }
        return;
    }
    uint32_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t r = rng_next(st);
        memcpy(p + i, &r, 8);
    }
    for (; i < n; i++) {
        p[i] = (uint8_t)rng_next(st);
    }
}

/* Builds a random batch into the model's `all` list (owned there). */
static struct mbatch *gen_batch(struct fx *f, const struct genspec *sp)
{
    uint64_t *st = &f->rng;
    uint32_t n = rng_range(st, sp->nrec_min, sp->nrec_max);
    int compressible = sp->compressible >= 0 ? sp->compressible : (int)(rng_next(st) & 1);
    unsigned codec = sp->codec != 99 ? sp->codec : (unsigned)(rng_next(st) & 1);
    uint32_t *vlen = calloc(n, sizeof(*vlen));
    struct mbatch *b = calloc(1, sizeof(*b));
    SL_TEST_ALLOC(vlen);
    SL_TEST_ALLOC(b);
    size_t total = 0, cap = SL_BATCH_HEADER_BYTES + 16;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t v = sp->logsize ? rng_logsize(st, sp->value_min, sp->value_max)
                                 : rng_range(st, sp->value_min, sp->value_max);
        if (sp->total_max > 0 && total + v > sp->total_max) {
            v = total >= sp->total_max ? sp->value_min : (uint32_t)(sp->total_max - total);
            v = v < sp->value_min ? sp->value_min : v;
        }
        vlen[i] = v;
        total += v;
        cap += v + 64 + 32; /* varints, key, one attribute */
    }
    uint8_t *buf = malloc(cap);
    uint8_t *val = malloc(sp->value_max > 0 ? sp->value_max : 1);
    b->rec_hash = calloc(n, sizeof(*b->rec_hash));
    SL_TEST_ALLOC(buf);
    SL_TEST_ALLOC(val);
    SL_TEST_ALLOC(b->rec_hash);
    struct sl_batch_builder bb;
    sl_batch_builder_init(&bb, buf, cap);
    uint64_t no = f->batch_no++;
    for (uint32_t i = 0; i < n; i++) {
        char key[48], av[24];
        int kl = snprintf(key, sizeof(key), "key-%" PRIu64 "-%u", no, i);
        int al = snprintf(av, sizeof(av), "%u", i);
        struct sl_attr attr = {"i", 1, av, (uint32_t)al};
        fill_value(st, val, vlen[i], compressible);
        struct sl_record r = {key,
                              (uint32_t)kl,
                              val,
                              vlen[i],
                              &attr,
                              i % 3 == 0 ? 1u : 0u,
                              1600000000000ull + no * 100 + i};
        int rc = sl_batch_builder_add(&bb, &r);
        SL_TEST_ASSERT(rc == SL_OK);
        b->rec_hash[i] = rec_hash(r.timestamp_ms, key, (uint32_t)kl, val, vlen[i]);
    }
    size_t scratch_cap = codec == SL_BATCH_CODEC_ZSTD ? sl_compress_bound(cap) : 0;
    uint8_t *scratch = scratch_cap ? malloc(scratch_cap) : NULL;
    size_t len = 0;
    int rc = sl_batch_builder_finish(&bb, codec, 1, f->z, scratch, scratch_cap, 0, 0, &len);
    SL_TEST_ASSERT(rc == SL_OK);
    free(scratch);
    free(val);
    free(vlen);
    b->bytes = buf;
    b->len = (uint32_t)len;
    b->count = n;
    b->f = f;
    if (f->nall == f->capall) {
        f->capall = f->capall ? f->capall * 2 : 256;
        f->all = realloc(f->all, f->capall * sizeof(*f->all));
        SL_TEST_ALLOC(f->all);
    }
    f->all[f->nall++] = b;
    return b;
}

/* A batch of one record of `value_len` random bytes, uncompressed. */
static struct mbatch *gen_fixed(struct fx *f, uint32_t nrec, uint32_t value_len)
{
    struct genspec sp = {nrec, nrec, value_len, value_len, 0, 0, SL_BATCH_CODEC_NONE, 0};
    return gen_batch(f, &sp);
}

/* ---- files -------------------------------------------------------------- */

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

static int is_seg_name(const char *name, const char *ext, uint64_t *base)
{
    size_t n = strlen(name);
    if (n != 20 + strlen(ext) || strcmp(name + 20, ext) != 0) {
        return 0;
    }
    uint64_t v = 0;
    for (int i = 0; i < 20; i++) {
        if (name[i] < '0' || name[i] > '9') {
            return 0;
        }
        v = v * 10 + (uint64_t)(name[i] - '0');
    }
    *base = v;
    return 1;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Base sequences of the .log files in `dir`, ascending; returns the count
 * (at most max). */
static size_t list_logs(const char *dir, uint64_t *bases, size_t max)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        return 0;
    }
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        uint64_t b;
        if (is_seg_name(e->d_name, ".log", &b) && n < max) {
            bases[n++] = b;
        }
    }
    closedir(d);
    qsort(bases, n, sizeof(*bases), cmp_u64);
    return n;
}

static void seg_path(char *out, size_t cap, const char *dir, uint64_t base, const char *ext)
{
    /* the result is checked rather than the truncation warning silenced */
    int n = snprintf(out, cap, "%s/%020" PRIu64 "%s", dir, base, ext);
    if (n < 0 || (size_t)n >= cap) {
        fprintf(stderr, "segment path too long: %s\n", dir);
        abort();
    }
}

static int64_t file_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (int64_t)sb.st_size : -1;
}

static uint8_t *read_file(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return NULL;
    }
    struct stat sb;
    fstat(fd, &sb);
    uint8_t *p = malloc((size_t)sb.st_size + 1);
    ssize_t got = p ? pread(fd, p, (size_t)sb.st_size, 0) : -1;
    close(fd);
    if (got != sb.st_size) {
        free(p);
        return NULL;
    }
    *len = (size_t)sb.st_size;
    return p;
}

static int write_file(const char *path, const void *p, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        return -1;
    }
    ssize_t put = len ? pwrite(fd, p, len, 0) : 0;
    close(fd);
    return put == (ssize_t)len ? 0 : -1;
}

static int flip_bit(const char *path, uint64_t off, int bit)
{
    int fd = open(path, O_RDWR | O_CLOEXEC);
    uint8_t c;
    int ok = fd >= 0 && pread(fd, &c, 1, (off_t)off) == 1;
    c ^= (uint8_t)(1u << bit);
    ok = ok && pwrite(fd, &c, 1, (off_t)off) == 1;
    if (fd >= 0) {
        close(fd);
    }
    return ok ? 0 : -1;
}

/* A copy of every regular file of a directory, to restore between trials. */
struct snap {
    size_t n;
    char names[16][256];
    uint8_t *data[16];
    size_t len[16];
};

static int snap_take(struct snap *sn, const char *dir)
{
    memset(sn, 0, sizeof(*sn));
    DIR *d = opendir(dir);
    if (d == NULL) {
        return -1;
    }
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d)) != NULL) {
        char p[PATH_MAX];
        struct stat sb;
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        if (stat(p, &sb) != 0 || !S_ISREG(sb.st_mode)) {
            continue;
        }
        if (sn->n == 16) {
            rc = -1;
            break;
        }
        snprintf(sn->names[sn->n], sizeof(sn->names[sn->n]), "%s", e->d_name);
        sn->data[sn->n] = read_file(p, &sn->len[sn->n]);
        if (sn->data[sn->n] == NULL) {
            rc = -1;
            break;
        }
        sn->n++;
    }
    closedir(d);
    return rc;
}

/* Makes `dir` hold exactly the snapshot's files. */
static int snap_restore(const struct snap *sn, const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        return -1;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char p[PATH_MAX];
        struct stat sb;
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        if (stat(p, &sb) == 0 && S_ISREG(sb.st_mode)) {
            unlink(p);
        }
    }
    closedir(d);
    for (size_t i = 0; i < sn->n; i++) {
        char p[PATH_MAX];
        snprintf(p, sizeof(p), "%s/%s", dir, sn->names[i]);
        if (write_file(p, sn->data[i], sn->len[i]) != 0) {
            return -1;
        }
    }
    return 0;
}

static void snap_free(struct snap *sn)
{
    for (size_t i = 0; i < sn->n; i++) {
        free(sn->data[i]);
    }
    memset(sn, 0, sizeof(*sn));
}

/* ---- fixture ------------------------------------------------------------ */

static struct fx g_fx;

static void fx_init(struct fx *f, uint64_t seed)
{
    memset(f, 0, sizeof(*f));
    const char *tmp = getenv("TMPDIR");
    snprintf(f->root, sizeof(f->root), "%s/sl_test_shard_XXXXXX",
             tmp != NULL && tmp[0] != '\0' ? tmp : "/var/tmp");
    CHECK(mkdtemp(f->root) != NULL);
    snprintf(f->dir, sizeof(f->dir), "%s/shard", f->root);
    sl_shard_config_default(&f->cfg);
    f->cfg.segment_bytes = 64ull * MiB;
    f->cfg.batch_bytes_max = 2 * MiB;
    f->cfg.write_buf_bytes = 4 * MiB;
    f->cfg.write_bufs = 4;
    f->cfg.pending_max = 1024;
    f->cfg.flush_interval_ms = 20;
    f->cfg.clock = NULL;
    if (getenv("SL_TEST_SHARD_PARK") != NULL) {
        /* unit_shard_parked: every case again with a one-descriptor budget, so
         * each shard is parked at open and reopened by its first use */
        sl_shard_cache_fini(&g_cache); /* (the previous case's spares) */
        sl_shard_cache_init(&g_cache, 1);
        f->cfg.cache = &g_cache;
    }
    sl_clock_fake_init(&f->clock, 1700000000000ull);
    f->rng = seed;
    f->z = sl_zctx_new();
    f->scratch_cap = 4 * MiB;
    f->scratch = malloc(f->scratch_cap);
    f->rbuf_cap = 4 * MiB;
    f->rbuf = malloc(f->rbuf_cap);
    CHECK(f->z != NULL && f->scratch != NULL && f->rbuf != NULL);
}

static void fx_use_fake_clock(struct fx *f)
{
    f->fake_clock = 1;
    f->cfg.clock = &f->clock;
}

static void fx_open(struct fx *f)
{
    char why[256] = "";
    if (getenv("SL_TEST_SHARD_DIRECT") != NULL) {
        f->cfg.io_mode = SL_IO_DIRECT; /* unit_shard_direct: every case with O_DIRECT writes */
    }
    int rc = sl_shard_config_check(&f->cfg, why, sizeof(why));
    if (rc != SL_OK) {
        fprintf(stderr, "  config: %s\n", why);
    }
    CHECK_EQ(rc, SL_OK);
    f->s = NULL;
    rc = sl_shard_open(&g_ring, f->dir, &f->cfg, &f->s);
    if (rc != SL_OK) {
        fprintf(stderr, "  sl_shard_open(%s): %s\n", f->dir, sl_errname(rc));
    }
    CHECK_EQ(rc, SL_OK);
    CHECK(f->s != NULL);
    struct sl_shard_stats st;
    sl_shard_stats(f->s, &st);
    f->ack_end = st.next_seq;
}

static void fx_close(struct fx *f)
{
    sl_shard_close(f->s);
    f->s = NULL;
}

static void fx_fini(struct fx *f)
{
    if (f->s != NULL) {
        fx_close(f);
    }
    sl_shard_cache_fini(&f->cache);
    if (f->mnt[0] != '\0') {
        if (umount2(f->mnt, 0) != 0) {
            umount2(f->mnt, MNT_DETACH);
        }
    }
    if (f->root[0] != '\0') {
        rm_rf(f->root);
    }
    for (size_t i = 0; i < f->nall; i++) {
        free(f->all[i]->bytes);
        free(f->all[i]->rec_hash);
        free(f->all[i]);
    }
    free(f->all);
    free(f->acked);
    free(f->scratch);
    free(f->rbuf);
    sl_zctx_free(f->z);
    memset(f, 0, sizeof(*f));
}

/* Runs one test body between fx_init and fx_fini. */
#define FX_CASE(name, seed)                                                                        \
    static void case_##name(struct fx *f);                                                         \
    TEST(name)                                                                                     \
    {                                                                                              \
        fx_init(&g_fx, (seed));                                                                    \
        if (!test_cur_failed_) {                                                                   \
            case_##name(&g_fx);                                                                    \
        }                                                                                          \
        fx_fini(&g_fx);                                                                            \
    }                                                                                              \
    static void case_##name(struct fx *f)

/* Calls a void helper that may fail the case, and stops the case if it did. */
#define DO(call)                                                                                   \
    do {                                                                                           \
        call;                                                                                      \
        if (test_cur_failed_ || test_cur_skipped_) {                                               \
            return;                                                                                \
        }                                                                                          \
    } while (0)

/* ---- appends ------------------------------------------------------------ */

/* Appends `b`, running the loop while the shard says SL_EAGAIN. Returns the
 * final result of sl_shard_append (-1000 if the callback ran inside it). */
static int append_try(struct fx *f, struct mbatch *b)
{
    uint64_t t0 = sl_clock_mono_ns();
    for (;;) {
        b->f = f;
        b->done = 0;
        b->err = -1;
        b->t_lo = fx_now(f);
        int rc = sl_shard_append(f->s, b->bytes, b->len, ack_cb, b);
        if (rc == SL_OK) {
            if (b->done != 0) {
                return -1000;
            }
            f->acks_pending++;
            return rc;
        }
        if (rc != SL_EAGAIN || sl_clock_mono_ns() - t0 > WAIT_NS_MAX) {
            return rc;
        }
        sl_ring_run(&g_ring, 1, 0);
    }
}

static void append_ok(struct fx *f, struct mbatch *b)
{
    int rc = append_try(f, b);
    if (rc != SL_OK) {
        fprintf(stderr, "  append (%u bytes): %d %s\n", b->len, rc, sl_errname(rc));
    }
    CHECK_EQ(rc, SL_OK);
}

/* Runs the loop until every append has its callback. */
static void wait_acks(struct fx *f)
{
    uint64_t t0 = sl_clock_mono_ns();
    while (f->acks_pending > 0) {
        CHECK(g_ring.inflight > 0 || g_ring.deferred_head != NULL); /* an ack was lost */
        CHECK(sl_clock_mono_ns() - t0 < WAIT_NS_MAX);
        sl_ring_run(&g_ring, 1, 0);
    }
    CHECK(!f->ack_order_bad);
}

/* Appends and waits; every ack must be SL_OK. */
static void append_wait(struct fx *f, struct mbatch *b)
{
    DO(append_ok(f, b));
    DO(wait_acks(f));
    CHECK_EQ(b->done, 1);
    CHECK_EQ(b->err, SL_OK);
}

/* Generates and appends `n` batches, up to `burst` before waiting. */
static void append_many(struct fx *f, const struct genspec *sp, uint32_t n, uint32_t burst)
{
    for (uint32_t i = 0; i < n; i++) {
        struct mbatch *b = gen_batch(f, sp);
        DO(append_ok(f, b));
        if ((i + 1) % burst == 0) {
            DO(wait_acks(f));
        }
    }
    DO(wait_acks(f));
    CHECK_EQ(f->acks_failed, 0);
}

/* ---- reads -------------------------------------------------------------- */

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

static void read_start(struct fx *f, struct rdw *w, enum sl_read_from from, uint64_t key,
                       uint8_t *buf, uint32_t cap, uint32_t max_bytes, sl_read_cb cb)
{
    memset(w, 0, sizeof(*w));
    w->rd.from = from;
    if (from == SL_READ_SEQ) {
        w->rd.seq = key;
    } else {
        w->rd.time_ms = key;
    }
    w->rd.buf = buf;
    w->rd.buf_cap = cap;
    w->rd.max_bytes = max_bytes;
    w->rd.cb = cb;
    sl_shard_read(f->s, &w->rd);
}

/* Runs the loop until the read's callback ran. Returns its error, or -1001
 * if it never ran (nothing left in flight, or a minute passed), -1002 if it
 * ran twice. */
static int read_wait(struct rdw *w)
{
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

/* A read, run to completion. Returns its error, or -1000 if the callback ran
 * inside sl_shard_read, -1001 if it never ran, -1002 if it ran twice. */
static int read_sync(struct fx *f, struct rdw *w, enum sl_read_from from, uint64_t key,
                     uint32_t max_bytes)
{
    read_start(f, w, from, key, f->rbuf, f->rbuf_cap, max_bytes, read_cb);
    if (w->done) {
        return -1000;
    }
    return read_wait(w);
}

/* One returned batch against its model: same bytes once stamped, append time
 * within the append call .. ack, and every record decodes to the same hash. */
static void verify_batch(struct fx *f, const uint8_t *p, const struct sl_batch_header *h,
                         const struct mbatch *b)
{
    CHECK_EQ(h->length, b->len);
    CHECK_EQ(h->record_count, b->count);
    CHECK_EQ(h->base_seq, b->base);
    CHECK(h->append_time_ms >= b->t_lo && h->append_time_ms <= b->t_hi);
    /* bytes outside the stamp are the producer's, unchanged */
    CHECK(memcmp(p, b->bytes, SL_BATCH_OFF_BASE_SEQ) == 0);
    CHECK(memcmp(p + SL_BATCH_CHECKSUM_FROM - 8, b->bytes + SL_BATCH_CHECKSUM_FROM - 8,
                 b->len - (SL_BATCH_CHECKSUM_FROM - 8)) == 0);
    uint8_t stamped[SL_BATCH_HEADER_BYTES];
    memcpy(stamped, b->bytes, SL_BATCH_HEADER_BYTES);
    sl_batch_stamp(stamped, b->base, h->append_time_ms);
    CHECK(memcmp(p, stamped, SL_BATCH_HEADER_BYTES) == 0);
    struct sl_batch_iter it;
    CHECK_EQ(sl_batch_iter_init(&it, p, h, f->z, f->scratch, f->scratch_cap), SL_OK);
    for (uint32_t i = 0; i < b->count; i++) {
        struct sl_record_view v;
        CHECK_EQ(sl_batch_iter_next(&it, &v), SL_OK);
        CHECK_EQ(v.seq, b->base + i);
        CHECK(rec_hash(v.timestamp_ms, v.key, v.key_len, v.value, v.value_len) == b->rec_hash[i]);
    }
    struct sl_record_view v;
    CHECK_EQ(sl_batch_iter_next(&it, &v), SL_ENOTFOUND);
}

/* Checks a completed read: whole, valid, contiguous batches starting at
 * `first` (the base of the batch containing the requested seq), each equal
 * to the model. *next receives rd.next_seq. */
static void verify_result(struct fx *f, const struct sl_shard_read *rd, uint64_t first,
                          uint64_t *next, uint32_t *batches)
{
    uint32_t off = 0, n = 0;
    uint64_t seq = first;
    while (off < rd->len) {
        struct sl_batch_header h;
        int rc = sl_batch_validate(rd->buf + off, rd->len - off, rd->buf_cap, &h);
        if (rc != SL_OK) {
            fprintf(stderr, "  batch at +%u of a %u-byte read: %s\n", off, rd->len, sl_errname(rc));
        }
        CHECK_EQ(rc, SL_OK);
        if (h.base_seq != seq) {
            fprintf(stderr, "  batch at +%u: base %" PRIu64 ", expected %" PRIu64 "\n", off,
                    h.base_seq, seq);
        }
        CHECK_EQ(h.base_seq, seq);
        struct mbatch *b = model_find(f, h.base_seq);
        CHECK(b != NULL); /* served only if acknowledged */
        DO(verify_batch(f, rd->buf + off, &h, b));
        seq = h.base_seq + h.record_count;
        off += h.length;
        n++;
    }
    CHECK_EQ(off, rd->len);
    CHECK_EQ(n, rd->batch_count);
    /* max_bytes is a soft limit: only a single first batch may pass it */
    CHECK(n <= 1 || rd->len <= rd->max_bytes);
    if (n > 0) {
        CHECK_EQ(rd->next_seq, seq);
    }
    *next = rd->next_seq;
    if (batches != NULL) {
        *batches = n;
    }
}

/* Reads [from, tail) in pieces of about max_bytes and checks everything
 * against the model; the model's acked batches from `from` on must all come
 * back, then a read at the tail returns nothing. */
static void read_all(struct fx *f, uint64_t from, uint64_t tail, uint32_t max_bytes)
{
    uint64_t seq = from;
    size_t expect_batches = 0, got_batches = 0;
    for (size_t i = 0; i < f->nacked; i++) {
        expect_batches += f->acked[i]->base >= from && f->acked[i]->base < tail;
    }
    for (uint32_t guard = 0;; guard++) {
        CHECK(guard < 1000000);
        struct rdw w;
        int rc = read_sync(f, &w, SL_READ_SEQ, seq, max_bytes);
        if (rc != SL_OK) {
            fprintf(stderr, "  read at %" PRIu64 " (tail %" PRIu64 "): %d %s\n", seq, tail, rc,
                    sl_errname(rc));
        }
        CHECK_EQ(rc, SL_OK);
        if (w.rd.len == 0) {
            CHECK_EQ(w.rd.batch_count, 0);
            CHECK_EQ(w.rd.next_seq, tail);
            CHECK_EQ(seq, tail);
            break;
        }
        uint64_t next = 0;
        uint32_t n = 0;
        DO(verify_result(f, &w.rd, seq, &next, &n));
        CHECK(next > seq);
        got_batches += n;
        seq = next;
    }
    CHECK_EQ(got_batches, expect_batches);
}

static void stats(struct fx *f, struct sl_shard_stats *st)
{
    memset(st, 0xff, sizeof(*st)); /* every field must be written */
    sl_shard_stats(f->s, st);
}

/* Sum of the sizes of the .log files. */
/* io_mode = direct (unit_shard_direct): the active segment's .log may end in
 * up to a block of zeros past its data (the padding of an O_DIRECT write). */
static bool direct_mode(void)
{
    return getenv("SL_TEST_SHARD_DIRECT") != NULL;
}

/* A walk of a .log that stopped at `off`: the clean end of the data when the
 * rest is the padding direct mode leaves in the active segment. */
static bool direct_padding(const uint8_t *d, size_t off, size_t len, bool active)
{
    if (!direct_mode() || !active || len - off >= SL_DIO_ALIGN) {
        return false;
    }
    for (size_t i = off; i < len; i++) {
        if (d[i] != 0) {
            return false;
        }
    }
    return true;
}

static uint64_t logs_bytes(const char *dir, size_t *count);

/* The shard's data bytes against its files' sizes: equal, or (direct) the
 * files up to a block of padding longer. */
static bool logs_match(uint64_t data, const char *dir, size_t *count)
{
    uint64_t on_disk = logs_bytes(dir, count);
    return direct_mode() ? on_disk >= data && on_disk < data + SL_DIO_ALIGN : on_disk == data;
}

static uint64_t logs_bytes(const char *dir, size_t *count)
{
    static uint64_t bases[4096];
    size_t n = list_logs(dir, bases, 4096);
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        char p[PATH_MAX];
        seg_path(p, sizeof(p), dir, bases[i], ".log");
        sum += (uint64_t)file_size(p);
    }
    if (count != NULL) {
        *count = n;
    }
    return sum;
}

/* ---- round trips -------------------------------------------------------- */

static void round_trip(struct fx *f, enum sl_flush_policy policy)
{
    f->cfg.flush = policy;
    DO(fx_open(f));
    /* records of 1 B .. 1 MiB, log-uniform; batches up to ~1.5 MiB */
    struct genspec sp = {1, 6, 1, MiB, 1, -1, 99, 3 * MiB / 2};
    struct genspec tiny = {1, 1, 1, 1, 0, 0, SL_BATCH_CODEC_NONE, 0};
    struct genspec huge = {1, 1, MiB, MiB, 0, 0, SL_BATCH_CODEC_ZSTD, 0};
    struct genspec hugez = {1, 1, MiB, MiB, 0, 1, SL_BATCH_CODEC_ZSTD, 0};
    DO(append_wait(f, gen_batch(f, &tiny)));
    CHECK_EQ(f->acked[0]->base, 0); /* a new shard starts at sequence 0 */
    DO(append_wait(f, gen_batch(f, &huge)));
    DO(append_wait(f, gen_batch(f, &hugez)));
    DO(append_many(f, &sp, 24, 6));
    uint32_t zstd = 0;
    for (size_t i = 0; i < f->nacked; i++) {
        zstd += (f->acked[i]->bytes[41] & SL_BATCH_CODEC_MASK) == SL_BATCH_CODEC_ZSTD;
    }
    CHECK(zstd >= 2 && zstd < f->nacked); /* both codecs really exercised */
    uint64_t tail = f->ack_end;
    uint64_t total = 0;
    for (size_t i = 0; i < f->nacked; i++) {
        total += f->acked[i]->len;
    }
    fprintf(stderr, "  %zu batches, %" PRIu64 " records, %" PRIu64 " stored bytes (%u zstd)\n",
            f->nacked, tail, total, zstd);
    struct sl_shard_stats st;
    stats(f, &st);
    CHECK_EQ(st.next_seq, tail);
    CHECK_EQ(st.visible_seq, tail);
    DO(read_all(f, 0, tail, 256 * KiB)); /* live */
    DO(fx_close(f));
    DO(fx_open(f));
    stats(f, &st);
    CHECK_EQ(st.next_seq, tail);
    CHECK_EQ(st.visible_seq, tail);
    CHECK_EQ(st.first_seq, 0);
    DO(read_all(f, 0, tail, 256 * KiB)); /* after reopen, several batches per read */
    DO(read_all(f, 0, tail, 1));         /* one batch per read */
    /* A seq inside a batch returns the batch containing it. */
    for (size_t i = 0; i < f->nacked; i++) {
        struct mbatch *b = f->acked[i];
        if (b->count < 2) {
            continue;
        }
        struct rdw w;
        CHECK_EQ(read_sync(f, &w, SL_READ_SEQ, b->base + b->count - 1, 1), SL_OK);
        uint64_t next;
        DO(verify_result(f, &w.rd, b->base, &next, NULL));
        CHECK(w.rd.batch_count >= 1);
    }
    /* At the tail: nothing, next_seq == tail. Beyond: SL_EINVAL. */
    struct rdw w;
    CHECK_EQ(read_sync(f, &w, SL_READ_SEQ, tail, MiB), SL_OK);
    CHECK_EQ(w.rd.len, 0);
    CHECK_EQ(w.rd.next_seq, tail);
    CHECK_EQ(read_sync(f, &w, SL_READ_SEQ, tail + 1, MiB), SL_EINVAL);
    /* A buffer smaller than the batch: SL_ETOOBIG with the size needed. */
    struct mbatch *big = f->acked[1];
    read_start(f, &w, SL_READ_SEQ, big->base, f->rbuf, 64 * KiB, 64 * KiB, read_cb);
    CHECK_EQ(w.done, 0);
    CHECK_EQ(read_wait(&w), SL_ETOOBIG);
    CHECK_EQ(w.rd.need_bytes, big->len);
    /* Appending after reopen continues the sequence. */
    DO(append_wait(f, gen_batch(f, &sp)));
    CHECK_EQ(f->acked[f->nacked - 1]->base, tail);
    DO(read_all(f, 0, f->ack_end, 512 * KiB));
}

FX_CASE(round_trip_flush_always, 101)
{
    round_trip(f, SL_FLUSH_ALWAYS);
}

FX_CASE(round_trip_flush_interval, 102)
{
    DO(round_trip(f, SL_FLUSH_INTERVAL));
    /* Acked after the write; an fdatasync follows within the interval. */
    struct sl_shard_stats st;
    stats(f, &st);
    uint64_t fsyncs0 = st.fsyncs;
    DO(append_wait(f, gen_fixed(f, 1, 100)));
    uint64_t t0 = sl_clock_mono_ns();
    do {
        sl_ring_run(&g_ring, 1, 5u * 1000 * 1000);
        stats(f, &st);
    } while (st.fsyncs == fsyncs0 && sl_clock_mono_ns() - t0 < 2000ull * 1000 * 1000);
    CHECK(st.fsyncs > fsyncs0);
}

/* Close waits for pending appends: their callbacks have run when it returns,
 * and they are there after a reopen. */
FX_CASE(close_completes_pending_appends, 103)
{
    DO(fx_open(f));
    struct mbatch *b[8];
    for (int i = 0; i < 8; i++) {
        b[i] = gen_fixed(f, 2, 3000);
        DO(append_ok(f, b[i]));
    }
    /* and a read in flight: its callback runs before close returns */
    static struct rdw w;
    read_start(f, &w, SL_READ_SEQ, 0, f->rbuf, f->rbuf_cap, MiB, read_cb);
    fx_close(f);
    CHECK_EQ(w.done, 1);
    CHECK(w.err == SL_OK || w.err == SL_ECLOSED);
    if (w.err == SL_OK && w.rd.len > 0) {
        uint64_t next;
        DO(verify_result(f, &w.rd, 0, &next, NULL));
    }
    for (int i = 0; i < 8; i++) {
        CHECK_EQ(b[i]->done, 1);
        CHECK_EQ(b[i]->err, SL_OK);
    }
    CHECK(!f->ack_order_bad);
    CHECK_EQ(f->acks_pending, 0);
    DO(fx_open(f));
    struct sl_shard_stats st;
    stats(f, &st);
    CHECK_EQ(st.next_seq, 16);
    DO(read_all(f, 0, 16, MiB));
}

/* ---- torn tails and flipped bits ---------------------------------------- */

/* Five ~2 KiB batches and a last one of ~300 bytes, all in the active
 * segment, index entries as dense as allowed. The shard is left closed. */
struct small_shard {
    char log[PATH_MAX];
    uint64_t log_len;
    uint64_t last_pos; /* offset of the last batch in the .log */
    uint32_t last_len;
    uint64_t prev_end; /* end of the batch before it */
    uint64_t tail;
    size_t nbefore; /* acked batches before the last */
};

static void make_small_shard(struct fx *f, struct small_shard *ss)
{
    f->cfg.index_interval_bytes = 256;
    DO(fx_open(f));
    struct genspec mid = {2, 2, 900, 1000, 0, 0, SL_BATCH_CODEC_NONE, 0};
    for (int i = 0; i < 5; i++) {
        DO(append_wait(f, gen_batch(f, &mid)));
    }
    ss->prev_end = f->ack_end;
    ss->nbefore = f->nacked;
    struct genspec last = {3, 3, 40, 60, 0, 0, SL_BATCH_CODEC_NONE, 0};
    struct mbatch *lb = gen_batch(f, &last);
    DO(append_wait(f, lb));
    ss->tail = f->ack_end;
    ss->last_len = lb->len;
    CHECK(lb->len >= 200 && lb->len <= 500);
    DO(fx_close(f));
    uint64_t bases[8];
    CHECK_EQ(list_logs(f->dir, bases, 8), 1);
    CHECK_EQ(bases[0], 0);
    seg_path(ss->log, sizeof(ss->log), f->dir, bases[0], ".log");
    int64_t sz = file_size(ss->log);
    CHECK(sz > (int64_t)lb->len);
    ss->log_len = (uint64_t)sz;
    ss->last_pos = ss->log_len - lb->len;
    /* the last batch really sits at the end of the file */
    size_t len = 0;
    uint8_t *all = read_file(ss->log, &len);
    CHECK(all != NULL);
    struct sl_batch_header h;
    int rc = sl_batch_validate(all + ss->last_pos, lb->len, lb->len, &h);
    free(all);
    CHECK_EQ(rc, SL_OK);
    CHECK_EQ(h.base_seq, ss->prev_end);
}

FX_CASE(truncated_tail_every_byte, 201)
{
    struct small_shard ss;
    DO(make_small_shard(f, &ss));
    struct snap sn;
    CHECK_EQ(snap_take(&sn, f->dir), 0);
    struct mbatch *x = gen_fixed(f, 1, 100); /* appended after each recovery */
    for (uint32_t k = 0; k < ss.last_len; k++) {
        if (snap_restore(&sn, f->dir) != 0 || truncate(ss.log, (off_t)(ss.last_pos + k)) != 0) {
            snap_free(&sn);
            CHECK(!"restore/truncate failed");
        }
        f->nacked = ss.nbefore; /* the model without the torn batch */
        fx_open(f);
        if (test_cur_failed_) {
            fprintf(stderr, "  truncated at last batch + %u\n", k);
            break;
        }
        struct sl_shard_stats st;
        stats(f, &st);
        if (st.next_seq != ss.prev_end || st.recovery_truncated_bytes != k) {
            fprintf(stderr,
                    "  cut at +%u: next_seq %" PRIu64 " (want %" PRIu64 "), truncated %" PRIu64
                    " (want %u)\n",
                    k, st.next_seq, ss.prev_end, st.recovery_truncated_bytes, k);
            test_cur_failed_ = 1;
            break;
        }
        if (st.visible_seq != ss.prev_end || st.recovery_read_bytes > ss.log_len) {
            fprintf(stderr, "  cut at +%u: visible %" PRIu64 ", recovery read %" PRIu64 "\n", k,
                    st.visible_seq, st.recovery_read_bytes);
            test_cur_failed_ = 1;
            break;
        }
        read_all(f, 0, ss.prev_end, 4 * KiB);
        if (test_cur_failed_) {
            fprintf(stderr, "  cut at +%u\n", k);
            break;
        }
        append_wait(f, x);
        if (test_cur_failed_ || x->base != ss.prev_end) {
            fprintf(stderr, "  cut at +%u: append after recovery got base %" PRIu64 "\n", k,
                    x->base);
            test_cur_failed_ = 1;
            break;
        }
        read_all(f, 0, ss.prev_end + 1, 4 * KiB);
        if (test_cur_failed_) {
            fprintf(stderr, "  cut at +%u, after the new append\n", k);
            break;
        }
        fx_close(f);
        /* The torn bytes are gone from the file, not just from memory: the
         * next open finds exactly the batches, nothing to cut. */
        int64_t size = file_size(ss.log);
        fx_open(f);
        if (test_cur_failed_) {
            break;
        }
        stats(f, &st);
        fx_close(f);
        if (size != (int64_t)(ss.last_pos + x->len) || st.next_seq != ss.prev_end + 1 ||
            st.recovery_truncated_bytes != 0) {
            fprintf(stderr,
                    "  cut at +%u then one append: file %" PRId64 " bytes (want %" PRIu64
                    "), reopen next_seq %" PRIu64 ", truncated %" PRIu64 "\n",
                    k, size, ss.last_pos + x->len, st.next_seq, st.recovery_truncated_bytes);
            test_cur_failed_ = 1;
            break;
        }
    }
    snap_free(&sn);
}

/* One bit flipped in the active segment's last batch, then reopen: either
 * recovery drops the batch (and only it) or reading it gives SL_ECORRUPT. */
static void flip_trial(struct fx *f, const struct small_shard *ss, uint32_t byte, int bit,
                       uint32_t *truncated, uint32_t *refused)
{
    f->nacked = ss->nbefore + 1;
    CHECK_EQ(flip_bit(ss->log, ss->last_pos + byte, bit), 0);
    fx_open(f);
    if (test_cur_failed_) {
        fprintf(stderr, "  flip byte %u bit %d: open failed\n", byte, bit);
        return;
    }
    struct sl_shard_stats st;
    stats(f, &st);
    if (st.next_seq == ss->prev_end) {
        (*truncated)++;
        f->nacked = ss->nbefore;
        read_all(f, 0, ss->prev_end, 64 * KiB);
    } else if (st.next_seq == ss->tail) {
        struct rdw w;
        int rc = read_sync(f, &w, SL_READ_SEQ, ss->prev_end, 64 * KiB);
        if (rc != SL_ECORRUPT) {
            fprintf(stderr, "  flip byte %u bit %d: kept, read -> %d %s (len %u)\n", byte, bit, rc,
                    sl_errname(rc), w.rd.len);
            test_cur_failed_ = 1;
        }
        (*refused)++;
    } else {
        fprintf(stderr, "  flip byte %u bit %d: next_seq %" PRIu64 "\n", byte, bit, st.next_seq);
        test_cur_failed_ = 1;
    }
    if (test_cur_failed_) {
        fprintf(stderr, "  (flipped byte %u bit %d of the last batch)\n", byte, bit);
    }
    fx_close(f);
}

FX_CASE(flipped_bit_in_active_tail, 202)
{
    struct small_shard ss;
    DO(make_small_shard(f, &ss));
    struct snap sn;
    CHECK_EQ(snap_take(&sn, f->dir), 0);
    uint32_t truncated = 0, refused = 0, trials = 0;
    for (uint32_t byte = 0; byte < ss.last_len && !test_cur_failed_; byte++) {
        for (int bit = 0; bit < 8 && !test_cur_failed_; bit++) {
            if (snap_restore(&sn, f->dir) != 0) {
                test_cur_failed_ = 1;
                break;
            }
            flip_trial(f, &ss, byte, bit, &truncated, &refused);
            trials++;
        }
    }
    snap_free(&sn);
    fprintf(stderr, "  %u flips: %u truncated by recovery, %u refused by reads\n", trials,
            truncated, refused);
}

struct sealed_victim {
    char log[PATH_MAX];
    uint64_t seg_base; /* the sealed segment's base */
    uint64_t pos;      /* offset of the damaged batch in its .log */
    uint64_t seq;      /* its base sequence */
    uint64_t tail;
};

/* Opens the shard over a segment with one flipped bit and reads over it.
 * Fails the case (the caller collects failures) if wrong data is served. */
static void sealed_flip_trial(struct fx *f, const struct sealed_victim *v, uint64_t byte, int bit)
{
    DO(fx_open(f));
    /* From the segment's start, one batch per read: the good batches come
     * back, the damaged one is refused with SL_ECORRUPT. */
    uint64_t seq = v->seg_base;
    int rc = SL_OK;
    for (int i = 0; i < 16 && rc == SL_OK && seq <= v->seq; i++) {
        struct rdw w;
        rc = read_sync(f, &w, SL_READ_SEQ, seq, 1);
        if (rc == SL_OK) {
            uint64_t next;
            verify_result(f, &w.rd, seq, &next, NULL); /* never the damaged bytes */
            if (test_cur_failed_) {
                fprintf(stderr,
                        "  flip +%" PRIu64 " bit %d of batch %" PRIu64 ": read at %" PRIu64
                        " returned SL_OK with the wrong batch (above)\n",
                        byte, bit, v->seq, seq);
                return;
            }
            if (w.rd.len == 0) {
                break;
            }
            seq = next;
        }
    }
    if (rc != SL_ECORRUPT || seq != v->seq) {
        fprintf(stderr,
                "  flip +%" PRIu64 " bit %d of batch %" PRIu64 ": reading from %" PRIu64
                " stopped at %" PRIu64 " with %s\n",
                byte, bit, v->seq, v->seg_base, seq, sl_errname(rc));
        test_cur_failed_ = 1;
        return;
    }
    /* Directly at the damaged batch. */
    struct rdw w;
    rc = read_sync(f, &w, SL_READ_SEQ, v->seq, MiB);
    if (rc != SL_ECORRUPT) {
        fprintf(stderr, "  flip +%" PRIu64 " bit %d of batch %" PRIu64 ": read at it -> %s\n", byte,
                bit, v->seq, sl_errname(rc));
        test_cur_failed_ = 1;
        return;
    }
    /* A large read from the start serves at most the good prefix. */
    rc = read_sync(f, &w, SL_READ_SEQ, v->seg_base, MiB);
    if (rc == SL_OK) {
        uint64_t next;
        DO(verify_result(f, &w.rd, v->seg_base, &next, NULL));
        CHECK(next <= v->seq);
    } else {
        CHECK_EQ(rc, SL_ECORRUPT);
    }
    struct sl_shard_stats st;
    stats(f, &st);
    CHECK_EQ(st.next_seq, v->tail); /* sealed segments are not rewritten */
}

/* Tiny segments, so earlier ones are sealed; damage one batch of the first
 * sealed segment (every bit of its header, one bit of every body byte).
 * Reads over it must return SL_ECORRUPT, never wrong data. */
FX_CASE(flipped_bit_in_sealed_segment, 203)
{
    f->cfg.segment_bytes = 8 * KiB;
    f->cfg.index_interval_bytes = 4 * KiB;
    DO(fx_open(f));
    struct genspec sp = {1, 2, 300, 600, 0, 0, SL_BATCH_CODEC_NONE, 0};
    DO(append_many(f, &sp, 60, 10));
    struct sealed_victim v;
    v.tail = f->ack_end;
    DO(fx_close(f));
    uint64_t bases[64];
    size_t nseg = list_logs(f->dir, bases, 64);
    CHECK(nseg >= 3);
    v.seg_base = bases[0];
    seg_path(v.log, sizeof(v.log), f->dir, bases[0], ".log");
    size_t len = 0;
    uint8_t *data = read_file(v.log, &len);
    CHECK(data != NULL);
    /* Batch boundaries of the sealed segment; damage its third batch. */
    uint64_t pos[64];
    uint64_t base[64];
    size_t nb = 0;
    for (uint64_t off = 0; off < len && nb < 64;) {
        struct sl_batch_header h;
        if (sl_batch_validate(data + off, len - off, len, &h) != SL_OK) {
            break;
        }
        pos[nb] = off;
        base[nb++] = h.base_seq;
        off += h.length;
    }
    free(data);
    CHECK(nb >= 4);
    v.pos = pos[2];
    v.seq = base[2];
    uint64_t victim_len = pos[3] - pos[2];
    uint32_t trials = 0, failures = 0;
    const uint64_t header_bits = SL_BATCH_HEADER_BYTES * 8;
    for (uint64_t trial = 0; trial < header_bits + victim_len; trial++) {
        uint64_t byte = trial < header_bits ? trial / 8 : trial - header_bits;
        if (trial >= header_bits && byte < SL_BATCH_HEADER_BYTES) {
            continue;
        }
        int bit = trial < header_bits ? (int)(trial % 8) : (int)((byte * 3) % 8);
        CHECK_EQ(flip_bit(v.log, v.pos + byte, bit), 0);
        sealed_flip_trial(f, &v, byte, bit);
        if (f->s != NULL) {
            fx_close(f);
        }
        CHECK_EQ(flip_bit(v.log, v.pos + byte, bit), 0); /* undo */
        trials++;
        if (test_cur_failed_) {
            failures++; /* collect them all, then fail */
            test_cur_failed_ = 0;
        }
    }
    fprintf(stderr, "  %u flips in a sealed segment, %u served wrongly or not refused\n", trials,
            failures);
    CHECK_EQ(failures, 0);
    /* Undamaged again: everything reads back. */
    DO(fx_open(f));
    DO(read_all(f, 0, v.tail, 16 * KiB));
}

/* Regression: a read by sequence skipped a damaged batch "on its header
 * alone". record_count sits under the body checksum, not the stamp check, so
 * a bit flip that lowers it passed sl_batch_peek, the batch looked like it
 * ended before the wanted seq, and the read returned the NEXT batch with
 * SL_OK: records silently lost. A damaged count must give SL_ECORRUPT. */
FX_CASE(read_skips_batch_with_corrupt_record_count, 205)
{
    f->cfg.segment_bytes = 8 * KiB;
    DO(fx_open(f));
    struct genspec sp = {2, 2, 300, 400, 0, 0, SL_BATCH_CODEC_NONE, 0};
    DO(append_many(f, &sp, 30, 5));
    DO(fx_close(f));
    uint64_t bases[64];
    CHECK(list_logs(f->dir, bases, 64) >= 3);
    char log[PATH_MAX];
    seg_path(log, sizeof(log), f->dir, bases[0], ".log");
    /* the third batch of the first (sealed) segment */
    uint64_t pos = 0;
    struct mbatch *victim = NULL;
    for (size_t i = 0; i < f->nacked && victim == NULL; i++) {
        if (i == 2) {
            victim = f->acked[i];
        } else {
            pos += f->acked[i]->len;
        }
    }
    CHECK(victim != NULL && victim->count == 2);
    const uint32_t off_count = 44; /* record_count, docs/FORMAT.md */
    const uint8_t counts[2] = {0, 1};
    int rcs[2] = {-1, -1};
    for (int k = 0; k < 2; k++) {
        int fd = open(log, O_RDWR | O_CLOEXEC);
        CHECK(fd >= 0);
        ssize_t put = pwrite(fd, &counts[k], 1, (off_t)(pos + off_count));
        close(fd);
        CHECK_EQ(put, 1);
        DO(fx_open(f));
        struct rdw w;
        uint64_t want = victim->base + victim->count - 1; /* its last record */
        int rc = read_sync(f, &w, SL_READ_SEQ, want, MiB);
        if (rc != SL_ECORRUPT) {
            struct sl_batch_header h;
            int v = w.rd.len > 0 ? sl_batch_validate(w.rd.buf, w.rd.len, w.rd.buf_cap, &h) : -1;
            fprintf(stderr,
                    "  record_count %u -> %u: read at seq %" PRIu64 " gave %s, first batch"
                    " base %" PRIu64 "\n",
                    victim->count, counts[k], want, sl_errname(rc),
                    v == SL_OK ? h.base_seq : UINT64_MAX);
        }
        rcs[k] = rc;
        DO(fx_close(f));
    }
    CHECK_EQ(rcs[0], SL_ECORRUPT);
    CHECK_EQ(rcs[1], SL_ECORRUPT);
}

/* A crash between creating a new segment's files and writing its first
 * batch leaves an empty newest .log (and .idx): open takes it as the active
 * segment (or drops it) and the sequence goes on. */
FX_CASE(empty_newest_segment_after_crash, 206)
{
    f->cfg.segment_bytes = 8 * KiB;
    DO(fx_open(f));
    struct genspec sp = {1, 2, 300, 600, 0, 0, SL_BATCH_CODEC_NONE, 0};
    DO(append_many(f, &sp, 20, 5));
    uint64_t tail = f->ack_end;
    DO(fx_close(f));
    char p[PATH_MAX];
    seg_path(p, sizeof(p), f->dir, tail, ".log");
    CHECK_EQ(write_file(p, "", 0), 0);
    seg_path(p, sizeof(p), f->dir, tail, ".idx");
    CHECK_EQ(write_file(p, "", 0), 0);
    DO(fx_open(f));
    struct sl_shard_stats st;
    stats(f, &st);
    CHECK_EQ(st.next_seq, tail);
    CHECK_EQ(st.visible_seq, tail);
    DO(read_all(f, 0, tail, 8 * KiB));
    DO(append_many(f, &sp, 10, 5));
    CHECK_EQ(f->acked[f->nacked - 10]->base, tail);
    DO(read_all(f, 0, f->ack_end, 8 * KiB));
    DO(fx_close(f));
    DO(fx_open(f));
    DO(read_all(f, 0, f->ack_end, 8 * KiB));
}

/* Damage to a sealed segment's .idx (one flipped bit per byte) or a cut in
 * its .log: reads return the right batches or SL_ECORRUPT, never others. */
static void read_segment_checked(struct fx *f, uint64_t from, uint64_t to, uint32_t *refused)
{
    uint64_t seq = from;
    while (seq < to) {
        struct rdw w;
        int rc = read_sync(f, &w, SL_READ_SEQ, seq, 1);
        if (rc == SL_ECORRUPT) {
            (*refused)++;
            return;
        }
        CHECK_EQ(rc, SL_OK);
        CHECK(w.rd.len > 0);
        uint64_t next;
        struct mbatch *b = model_find(f, seq);
        CHECK(b != NULL);
        DO(verify_result(f, &w.rd, seq, &next, NULL));
        seq = next;
    }
}

FX_CASE(damaged_sealed_index_and_log, 204)
{
    f->cfg.segment_bytes = 8 * KiB;
    f->cfg.index_interval_bytes = 1 * KiB;
    fx_use_fake_clock(f);
    DO(fx_open(f));
    struct genspec sp = {1, 2, 300, 600, 0, 0, SL_BATCH_CODEC_NONE, 0};
    for (int i = 0; i < 40; i++) {
        DO(append_wait(f, gen_batch(f, &sp)));
        sl_clock_fake_advance(&f->clock, 1000);
    }
    uint64_t tail = f->ack_end;
    DO(fx_close(f));
    uint64_t bases[64];
    CHECK(list_logs(f->dir, bases, 64) >= 3);
    char idx[PATH_MAX], log[PATH_MAX];
    seg_path(idx, sizeof(idx), f->dir, bases[0], ".idx");
    seg_path(log, sizeof(log), f->dir, bases[0], ".log");
    int64_t idx_len = file_size(idx);
    CHECK(idx_len >= 64); /* a few entries */
    uint32_t refused = 0, trials = 0;
    for (int64_t byte = 0; byte < idx_len; byte++) {
        int bit = (int)((byte * 3) % 8);
        CHECK_EQ(flip_bit(idx, (uint64_t)byte, bit), 0);
        int rc = sl_shard_open(&g_ring, f->dir, &f->cfg, &f->s);
        CHECK(rc == SL_OK || rc == SL_ECORRUPT);
        if (rc == SL_OK) {
            read_segment_checked(f, bases[0], bases[1], &refused);
            /* a time lookup inside the damaged segment */
            struct rdw w;
            struct mbatch *want = f->acked[1];
            int trc = read_sync(f, &w, SL_READ_TIME, want->t_lo, 1);
            if (trc == SL_OK) {
                uint64_t next;
                verify_result(f, &w.rd, want->base, &next, NULL);
            } else {
                CHECK_EQ(trc, SL_ECORRUPT);
            }
            fx_close(f);
        } else {
            refused++;
        }
        CHECK_EQ(flip_bit(idx, (uint64_t)byte, bit), 0);
        if (test_cur_failed_) {
            fprintf(stderr, "  .idx byte %" PRId64 " bit %d\n", byte, bit);
            return;
        }
        trials++;
    }
    fprintf(stderr, "  %u .idx flips, %u refused (SL_ECORRUPT)\n", trials, refused);
    /* A sealed .log cut short: the batches before the cut, then SL_ECORRUPT. */
    int64_t log_len = file_size(log);
    CHECK_EQ(truncate(log, (off_t)(log_len / 2)), 0);
    DO(fx_open(f));
    refused = 0;
    DO(read_segment_checked(f, bases[0], bases[1], &refused));
    CHECK_EQ(refused, 1);
    /* later segments are unaffected */
    DO(read_all(f, bases[1], tail, 16 * KiB));
}

/* ---- segments ----------------------------------------------------------- */

/* Every .log starts with the batch its name says, the segments are
 * contiguous, sealed ones respect segment_bytes, and every .log has an .idx. */
static void check_segment_files(struct fx *f, uint64_t tail, size_t *nseg_out)
{
    static uint64_t bases[4096];
    size_t n = list_logs(f->dir, bases, 4096);
    CHECK(n >= 1);
    uint64_t expect = bases[0];
    for (size_t i = 0; i < n; i++) {
        char p[PATH_MAX], q[PATH_MAX];
        seg_path(p, sizeof(p), f->dir, bases[i], ".log");
        seg_path(q, sizeof(q), f->dir, bases[i], ".idx");
        CHECK(file_size(q) >= 0);
        CHECK_EQ(bases[i], expect);
        size_t len = 0;
        uint8_t *d = read_file(p, &len);
        CHECK(d != NULL);
        uint64_t off = 0;
        int rc = SL_OK;
        while (off < len) {
            struct sl_batch_header h;
            rc = sl_batch_validate(d + off, len - off, len, &h);
            if (rc != SL_OK && direct_padding(d, off, len, i + 1 == n)) {
                rc = SL_OK;
                len = off;
                break;
            }
            if (rc != SL_OK || h.base_seq != expect) {
                rc = rc != SL_OK ? rc : -1;
                break;
            }
            expect += h.record_count;
            off += h.length;
        }
        free(d);
        CHECK_EQ(rc, SL_OK);
        if (i + 1 < n) {
            CHECK(len <= f->cfg.segment_bytes);
            CHECK(len > 0);
        }
    }
    CHECK_EQ(expect, tail);
    *nseg_out = n;
}

FX_CASE(segment_roll_by_size, 301)
{
    f->cfg.segment_bytes = 64 * KiB;
    DO(fx_open(f));
    struct genspec sp = {1, 3, 500, 2500, 0, -1, 99, 0};
    DO(append_many(f, &sp, 150, 16));
    uint64_t tail = f->ack_end;
    size_t nseg = 0;
    DO(check_segment_files(f, tail, &nseg));
    CHECK(nseg >= 3);
    struct sl_shard_stats st;
    stats(f, &st);
    CHECK_EQ(st.segments, nseg);
    size_t nlog = 0;
    CHECK(logs_match(st.bytes, f->dir, &nlog));
    DO(read_all(f, 0, tail, 20 * KiB)); /* reads cross segment boundaries */
    DO(fx_close(f));
    DO(fx_open(f));
    stats(f, &st);
    CHECK_EQ(st.segments, nseg);
    CHECK_EQ(st.next_seq, tail);
    DO(read_all(f, 0, tail, 100 * KiB));
    DO(append_many(f, &sp, 40, 8));
    DO(check_segment_files(f, f->ack_end, &nseg));
    DO(read_all(f, 0, f->ack_end, 64 * KiB));
}

FX_CASE(segment_roll_by_age, 302)
{
    fx_use_fake_clock(f);
    f->cfg.segment_age_ms = 60000;
    DO(fx_open(f));
    struct mbatch *a = gen_fixed(f, 2, 100), *b = gen_fixed(f, 2, 100);
    struct mbatch *c = gen_fixed(f, 2, 100), *d = gen_fixed(f, 2, 100);
    uint64_t bases[8];
    DO(append_wait(f, a));
    sl_clock_fake_advance(&f->clock, 30000);
    DO(append_wait(f, b));
    CHECK_EQ(list_logs(f->dir, bases, 8), 1); /* 30 s old: no roll */
    sl_clock_fake_advance(&f->clock, 31000);
    DO(append_wait(f, c));
    size_t n = list_logs(f->dir, bases, 8);
    CHECK_EQ(n, 2); /* 61 s old: c opens a new segment */
    CHECK_EQ(bases[1], c->base);
    DO(append_wait(f, d));
    CHECK_EQ(list_logs(f->dir, bases, 8), 2);
    DO(read_all(f, 0, f->ack_end, MiB));
    DO(fx_close(f));
    DO(fx_open(f));
    CHECK_EQ(list_logs(f->dir, bases, 8), 2);
    DO(read_all(f, 0, f->ack_end, MiB));
    struct sl_shard_stats st;
    stats(f, &st);
    CHECK_EQ(st.segments, 2);
    /* After a reopen the active segment's age still counts from its first
     * batch (c, at this same fake time): no roll yet ... */
    struct mbatch *e = gen_fixed(f, 1, 100), *g = gen_fixed(f, 1, 100);
    DO(append_wait(f, e));
    CHECK_EQ(list_logs(f->dir, bases, 8), 2);
    /* ... and one once it is old enough. */
    sl_clock_fake_advance(&f->clock, 60001);
    DO(append_wait(f, g));
    CHECK_EQ(list_logs(f->dir, bases, 8), 3);
    CHECK_EQ(bases[2], g->base);
    DO(read_all(f, 0, f->ack_end, MiB));
}

/* More reads in flight on distinct sealed segments than open_segments_max:
 * held segments are not closed under a read; every read completes right.
 * (Found: loading a segment evicted that same segment when every other
 * loaded one was held, before the read took its reference; the read then
 * ran on a closed fd and failed with SL_ESYS.) */
FX_CASE(many_reads_over_open_segments_max, 303)
{
    f->cfg.segment_bytes = 4 * KiB;
    f->cfg.open_segments_max = 2;
    DO(fx_open(f));
    struct genspec sp = {1, 1, 700, 900, 0, 0, SL_BATCH_CODEC_NONE, 0};
    DO(append_many(f, &sp, 80, 10));
    DO(fx_close(f));
    DO(fx_open(f)); /* sealed segments start unloaded */
    static uint64_t bases[64];
    size_t n = list_logs(f->dir, bases, 64);
    CHECK(n >= 12);
    enum { R = 12 };
    static struct rdw w[R];
    static uint8_t bufs[R][16 * KiB];
    for (int i = 0; i < R; i++) {
        read_start(f, &w[i], SL_READ_SEQ, bases[i], bufs[i], sizeof(bufs[i]), 1, read_cb);
    }
    for (int i = 0; i < R; i++) {
        int rc = read_wait(&w[i]);
        if (rc != SL_OK) {
            fprintf(stderr, "  read %d (segment %" PRIu64 "): %d %s\n", i, bases[i], rc,
                    sl_errname(rc));
        }
        CHECK_EQ(rc, SL_OK);
        uint64_t next;
        DO(verify_result(f, &w[i].rd, bases[i], &next, NULL));
        CHECK_EQ(w[i].rd.batch_count, 1);
    }
    struct sl_shard_stats st;
    stats(f, &st);
    CHECK(st.segments_open <= f->cfg.open_segments_max);
    DO(read_all(f, 0, f->ack_end, 3 * KiB));
}

/* ---- retention ---------------------------------------------------------- */

struct seg_info {
    uint64_t base;
    uint64_t bytes;
    uint64_t oldest_ms; /* smallest append time of its batches */
    uint64_t newest_ms; /* largest append time of its batches */
};

static size_t seg_infos(struct fx *f, struct seg_info *out, size_t max)
{
    static uint64_t bases[4096];
    size_t n = list_logs(f->dir, bases, max < 4096 ? max : 4096);
    for (size_t i = 0; i < n; i++) {
        char p[PATH_MAX];
        seg_path(p, sizeof(p), f->dir, bases[i], ".log");
        size_t len = 0;
        uint8_t *d = read_file(p, &len);
        out[i].base = bases[i];
        out[i].bytes = len;
        out[i].newest_ms = 0;
        out[i].oldest_ms = UINT64_MAX;
        for (uint64_t off = 0; d != NULL && off < len;) {
            struct sl_batch_header h;
            if (sl_batch_validate(d + off, len - off, len, &h) != SL_OK) {
                if (direct_padding(d, off, len, i + 1 == n)) {
                    out[i].bytes = off;
                }
                break;
            }
            out[i].newest_ms =
                h.append_time_ms > out[i].newest_ms ? h.append_time_ms : out[i].newest_ms;
            out[i].oldest_ms =
                h.append_time_ms < out[i].oldest_ms ? h.append_time_ms : out[i].oldest_ms;
            off += h.length;
        }
        free(d);
    }
    return n;
}

/* Many segments expiring at once (a year of hourly segments after retention
 * was lowered): one run deletes at most SL_RETAIN_DELETES_PER_RUN, the shard
 * deletes the rest by itself over later loop turns, and what is left reads. */
FX_CASE(retention_spread_over_turns, 402)
{
    enum { SEGS = 3 * SL_RETAIN_DELETES_PER_RUN / 2 + 10 };
    fx_use_fake_clock(f);
    const uint64_t hour = 3600ull * 1000;
    f->cfg.segment_bytes = 4 * KiB;
    f->cfg.retention_ms = hour;
    DO(fx_open(f));
    struct sl_shard_stats st;
    for (int guard = 0; guard < 100000; guard++) {
        stats(f, &st);
        if (st.segments >= SEGS) {
            break;
        }
        DO(append_wait(f, gen_fixed(f, 1, 1500)));
    }
    CHECK(st.segments >= SEGS);
    uint32_t before = st.segments;
    uint64_t tail = f->ack_end;
    sl_clock_fake_advance(&f->clock, 2 * hour);
    DO(append_wait(f, gen_fixed(f, 1, 10))); /* a young batch in the active segment */
    uint32_t deleted = sl_shard_retention_run(f->s);
    CHECK_EQ(deleted, SL_RETAIN_DELETES_PER_RUN);
    stats(f, &st);
    CHECK_EQ(st.segments, before - SL_RETAIN_DELETES_PER_RUN);
    uint64_t t0 = sl_clock_mono_ns();
    while (st.segments > 1 && sl_clock_mono_ns() - t0 < WAIT_NS_MAX) {
        sl_ring_run(&g_ring, 1, 0);
        stats(f, &st);
    }
    CHECK_EQ(st.segments, 1); /* the rest went without another call */
    CHECK(st.first_seq <= tail && st.first_seq + 8 > tail); /* the active segment's */
    DO(read_all(f, st.first_seq, f->ack_end, 8 * KiB));
}

FX_CASE(retention_by_time, 401)
{
    fx_use_fake_clock(f);
    const uint64_t hour = 3600ull * 1000;
    f->cfg.segment_bytes = 8 * KiB;
    f->cfg.retention_ms = hour;
    DO(fx_open(f));
    struct genspec sp = {1, 2, 400, 700, 0, 0, SL_BATCH_CODEC_NONE, 0};
    DO(append_many(f, &sp, 25, 5)); /* at T0 */
    for (int i = 0; i < 4; i++) {   /* leave room in the active segment */
        uint64_t lb[64];
        size_t nl = list_logs(f->dir, lb, 64);
        char p[PATH_MAX];
        CHECK(nl >= 1);
        seg_path(p, sizeof(p), f->dir, lb[nl - 1], ".log");
        if (file_size(p) + 400 < (int64_t)f->cfg.segment_bytes) {
            break;
        }
        DO(append_wait(f, gen_batch(f, &sp)));
    }
    uint64_t phase2 = f->ack_end;
    sl_clock_fake_advance(&f->clock, hour / 2);
    /* at T0 + 30 min; the first one small, so it shares a segment with
     * batches from T0 (checked below) */
    DO(append_wait(f, gen_fixed(f, 1, 50)));
    DO(append_many(f, &sp, 25, 5));
    uint64_t tail = f->ack_end;
    sl_clock_fake_advance(&f->clock, hour / 2 + 10 * 60 * 1000); /* T0 + 70 min */
    uint64_t cutoff = sl_clock_now_ms(&f->clock) - hour;
    static struct seg_info before[64], after[64];
    size_t nb = seg_infos(f, before, 64);
    CHECK(nb >= 4);
    /* Reopened first: segment ages come from what is on disk. */
    DO(fx_close(f));
    DO(fx_open(f));
    uint32_t deleted = sl_shard_retention_run(f->s);
    size_t na = seg_infos(f, after, 64);
    /* Exactly the sealed segments whose newest batch is past retention go,
     * oldest first; nothing younger than retention is deleted. */
    size_t expect_deleted = 0;
    while (expect_deleted + 1 < nb && before[expect_deleted].newest_ms < cutoff) {
        expect_deleted++;
    }
    CHECK(expect_deleted >= 2);
    /* The segment holding both ages is kept: its newest batch is young. */
    CHECK(before[expect_deleted].oldest_ms < cutoff);
    CHECK(before[expect_deleted].newest_ms >= cutoff);
    CHECK_EQ(deleted, expect_deleted);
    CHECK_EQ(na, nb - expect_deleted);
    for (size_t i = 0; i < na; i++) {
        CHECK_EQ(after[i].base, before[i + expect_deleted].base);
    }
    CHECK(after[0].base <= phase2); /* all phase-2 data kept */
    struct sl_shard_stats st;
    stats(f, &st);
    CHECK_EQ(st.first_seq, after[0].base);
    CHECK_EQ(st.segments, na);
    CHECK(logs_match(st.bytes, f->dir, NULL));
    CHECK_EQ(st.next_seq, tail);
    /* Below the retained range: SL_ETRIMMED with first_seq. */
    struct rdw w;
    CHECK_EQ(read_sync(f, &w, SL_READ_SEQ, 0, MiB), SL_ETRIMMED);
    CHECK_EQ(w.rd.first_seq, st.first_seq);
    CHECK_EQ(read_sync(f, &w, SL_READ_SEQ, st.first_seq - 1, MiB), SL_ETRIMMED);
    DO(read_all(f, st.first_seq, tail, 8 * KiB));
    CHECK_EQ(sl_shard_retention_run(f->s), 0); /* nothing more to do */
    /* Reopen: the trimmed range stays trimmed. */
    DO(fx_close(f));
    DO(fx_open(f));
    stats(f, &st);
    CHECK_EQ(st.first_seq, after[0].base);
    CHECK_EQ(read_sync(f, &w, SL_READ_SEQ, 0, MiB), SL_ETRIMMED);
    CHECK_EQ(w.rd.first_seq, after[0].base);
    /* Far in the future: every sealed segment goes, the active one stays. */
    sl_clock_fake_advance(&f->clock, 10 * hour);
    uint32_t d2 = sl_shard_retention_run(f->s);
    size_t n2 = seg_infos(f, after, 64);
    CHECK_EQ(n2, 1);
    CHECK_EQ(d2, na - 1);
    CHECK_EQ(after[0].base, before[nb - 1].base);
    stats(f, &st);
    CHECK_EQ(st.segments, 1);
    CHECK_EQ(st.first_seq, before[nb - 1].base);
    CHECK_EQ(st.next_seq, tail);
    DO(read_all(f, st.first_seq, tail, 8 * KiB));
    DO(append_wait(f, gen_batch(f, &sp)));
    CHECK_EQ(f->acked[f->nacked - 1]->base, tail);
    DO(read_all(f, st.first_seq, f->ack_end, 8 * KiB));
}

/* A read in flight on a sealed segment when retention deletes it: the read
 * completes with the right bytes (or reports SL_ETRIMMED), never garbage,
 * SL_EIO or a use-after-free (ASan). */
FX_CASE(retention_while_read_in_flight, 403)
{
    fx_use_fake_clock(f);
    f->cfg.segment_bytes = 8 * KiB;
    f->cfg.retention_ms = 3600ull * 1000;
    DO(fx_open(f));
    struct genspec sp = {1, 2, 400, 700, 0, 0, SL_BATCH_CODEC_NONE, 0};
    DO(append_many(f, &sp, 30, 5));
    uint64_t tail = f->ack_end;
    uint64_t bases[64];
    size_t n0 = list_logs(f->dir, bases, 64);
    CHECK(n0 >= 3);
    sl_clock_fake_advance(&f->clock, 2 * 3600ull * 1000);
    struct rdw w;
    read_start(f, &w, SL_READ_SEQ, 0, f->rbuf, f->rbuf_cap, 4 * KiB, read_cb);
    CHECK_EQ(w.done, 0);
    uint32_t deleted = sl_shard_retention_run(f->s);
    int rc = read_wait(&w);
    fprintf(stderr, "  retention deleted %u of %zu segments; the read got %s\n", deleted, n0,
            sl_errname(rc));
    CHECK(rc == SL_OK || rc == SL_ETRIMMED);
    if (rc == SL_OK) {
        uint64_t next;
        DO(verify_result(f, &w.rd, 0, &next, NULL));
        CHECK(w.rd.len > 0);
    }
    /* Once the read is done, the old segments go for good. */
    deleted += sl_shard_retention_run(f->s);
    CHECK_EQ(deleted, n0 - 1);
    CHECK_EQ(list_logs(f->dir, bases, 64), 1);
    struct sl_shard_stats st;
    stats(f, &st);
    CHECK_EQ(st.segments, 1);
    CHECK_EQ(read_sync(f, &w, SL_READ_SEQ, 0, MiB), SL_ETRIMMED);
    CHECK_EQ(w.rd.first_seq, st.first_seq);
    DO(read_all(f, st.first_seq, tail, 8 * KiB));
}

FX_CASE(retention_by_bytes, 402)
{
    f->cfg.segment_bytes = 8 * KiB;
    f->cfg.retention_ms = SL_RETENTION_MS_MAX;
    f->cfg.retention_bytes = 32 * KiB;
    DO(fx_open(f));
    struct genspec sp = {1, 2, 400, 800, 0, 0, SL_BATCH_CODEC_NONE, 0};
    DO(append_many(f, &sp, 80, 10));
    uint64_t tail = f->ack_end;
    static struct seg_info before[64], after[64];
    size_t nb = seg_infos(f, before, 64);
    uint64_t total = 0;
    for (size_t i = 0; i < nb; i++) {
        total += before[i].bytes;
    }
    CHECK(total > 2 * f->cfg.retention_bytes);
    uint32_t deleted = sl_shard_retention_run(f->s);
    size_t na = seg_infos(f, after, 64);
    CHECK(deleted >= 1);
    CHECK_EQ(na, nb - deleted);
    uint64_t left = 0;
    for (size_t i = 0; i < na; i++) {
        CHECK_EQ(after[i].base, before[i + deleted].base); /* the oldest went */
        left += after[i].bytes;
    }
    struct sl_shard_stats st;
    stats(f, &st);
    CHECK_EQ(st.bytes, left);
    CHECK(left <= f->cfg.retention_bytes || na == 1);
    /* ... and no more than needed: one segment fewer would still be over. */
    CHECK(left + before[deleted - 1].bytes > f->cfg.retention_bytes);
    CHECK_EQ(st.first_seq, after[0].base);
    struct rdw w;
    CHECK_EQ(read_sync(f, &w, SL_READ_SEQ, 0, MiB), SL_ETRIMMED);
    CHECK_EQ(w.rd.first_seq, st.first_seq);
    DO(read_all(f, st.first_seq, tail, 16 * KiB));
}

/* A floor (a replicated shard's high watermark): retention deletes a segment only once every
 * record of it is below the floor, whatever the byte cap says; lifted, the cap applies. */
FX_CASE(retention_stops_at_the_floor, 404)
{
    f->cfg.segment_bytes = 8 * KiB;
    f->cfg.retention_ms = SL_RETENTION_MS_MAX;
    f->cfg.retention_bytes = 16 * KiB;
    DO(fx_open(f));
    struct genspec sp = {1, 2, 400, 800, 0, 0, SL_BATCH_CODEC_NONE, 0};
    DO(append_many(f, &sp, 80, 10));
    uint64_t tail = f->ack_end;
    static struct seg_info before[64];
    size_t nb = seg_infos(f, before, 64);
    CHECK(nb >= 6);
    /* floor 0: nothing goes */
    sl_shard_set_retention_floor(f->s, 0);
    CHECK_EQ(sl_shard_retention_run(f->s), 0);
    /* inside segment 2: segments 0 and 1 go, 2 holds records at the floor and stays */
    uint64_t floor = before[2].base + 1;
    sl_shard_set_retention_floor(f->s, floor);
    CHECK_EQ(sl_shard_retention_run(f->s), 2);
    struct sl_shard_stats st;
    stats(f, &st);
    CHECK_EQ(st.first_seq, before[2].base);
    CHECK(st.bytes > f->cfg.retention_bytes); /* (over the cap: the floor won) */
    CHECK_EQ(sl_shard_retention_run(f->s), 0);
    DO(read_all(f, st.first_seq, tail, 16 * KiB));
    /* lifted: the cap applies again */
    sl_shard_set_retention_floor(f->s, SL_RETAIN_FLOOR_NONE);
    CHECK(sl_shard_retention_run(f->s) >= 1);
    stats(f, &st);
    CHECK(st.bytes <= f->cfg.retention_bytes || st.segments == 1);
    CHECK(st.first_seq > before[2].base);
    DO(read_all(f, st.first_seq, tail, 16 * KiB));
}

TEST(retention_config_range)
{
    struct sl_shard_config cfg;
    sl_shard_config_default(&cfg);
    char why[256] = "";
    CHECK_EQ(sl_shard_config_check(&cfg, why, sizeof(why)), SL_OK);
    cfg.retention_ms = 8760ull * 3600 * 1000;
    CHECK_EQ(sl_shard_config_check(&cfg, why, sizeof(why)), SL_OK);
    cfg.retention_ms = 1;
    CHECK_EQ(sl_shard_config_check(&cfg, why, sizeof(why)), SL_OK);
    why[0] = '\0';
    cfg.retention_ms = 8761ull * 3600 * 1000;
    CHECK_EQ(sl_shard_config_check(&cfg, why, sizeof(why)), SL_EINVAL);
    CHECK(strlen(why) > 0);
    cfg.retention_ms = SL_RETENTION_MS_MAX + 1;
    CHECK_EQ(sl_shard_config_check(&cfg, why, sizeof(why)), SL_EINVAL);
    cfg.retention_ms = 0;
    CHECK_EQ(sl_shard_config_check(&cfg, why, sizeof(why)), SL_EINVAL);
    /* and open refuses an invalid config */
    struct sl_shard *s = NULL;
    CHECK_EQ(sl_shard_open(&g_ring, "/nonexistent-sluice-test/never-created", &cfg, &s), SL_EINVAL);
    CHECK(s == NULL);
}

/* ---- lookups by time ---------------------------------------------------- */

FX_CASE(read_by_time, 501)
{
    fx_use_fake_clock(f);
    f->cfg.segment_bytes = 8 * KiB;
    f->cfg.index_interval_bytes = 2 * KiB;
    DO(fx_open(f));
    const uint64_t t0 = sl_clock_now_ms(&f->clock);
    enum { N = 30 };
    struct genspec sp = {1, 2, 300, 900, 0, 0, SL_BATCH_CODEC_NONE, 0};
    struct mbatch *bs[N + 2];
    for (int i = 0; i < N; i++) {
        bs[i] = gen_batch(f, &sp);
        DO(append_wait(f, bs[i]));
        sl_clock_fake_advance(&f->clock, 1000);
    }
    /* two batches with the same append time */
    bs[N] = gen_batch(f, &sp);
    bs[N + 1] = gen_batch(f, &sp);
    DO(append_wait(f, bs[N]));
    DO(append_wait(f, bs[N + 1]));
    const uint64_t t_last = t0 + (uint64_t)N * 1000;
    uint64_t tail = f->ack_end;
    uint64_t bases[64];
    CHECK(list_logs(f->dir, bases, 64) >= 3);
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i <= N; i++) {
            uint64_t ti = t0 + (uint64_t)i * 1000;
            const uint64_t probes[3] = {ti, ti - 500, ti - 999};
            for (int k = 0; k < 3; k++) {
                struct rdw w;
                int rc = read_sync(f, &w, SL_READ_TIME, probes[k], 4 * KiB);
                if (rc != SL_OK || w.rd.len == 0) {
                    fprintf(stderr, "  time %" PRIu64 " (batch %d): %s len %u\n", probes[k], i,
                            sl_errname(rc), w.rd.len);
                }
                CHECK_EQ(rc, SL_OK);
                CHECK(w.rd.len > 0);
                uint64_t next;
                DO(verify_result(f, &w.rd, bs[i]->base, &next, NULL));
            }
        }
        /* before everything: the first batch */
        struct rdw w;
        CHECK_EQ(read_sync(f, &w, SL_READ_TIME, 0, 4 * KiB), SL_OK);
        uint64_t next;
        DO(verify_result(f, &w.rd, 0, &next, NULL));
        CHECK(w.rd.len > 0);
        /* after everything: nothing, next_seq == tail */
        CHECK_EQ(read_sync(f, &w, SL_READ_TIME, t_last + 1, 4 * KiB), SL_OK);
        CHECK_EQ(w.rd.len, 0);
        CHECK_EQ(w.rd.next_seq, tail);
        CHECK_EQ(read_sync(f, &w, SL_READ_TIME, UINT64_MAX / 2, 4 * KiB), SL_OK);
        CHECK_EQ(w.rd.len, 0);
        CHECK_EQ(w.rd.next_seq, tail);
        /* and the same after a reopen (the index is rebuilt or reloaded) */
        DO(fx_close(f));
        DO(fx_open(f));
    }
}

/* ---- a reader at the tail while appending -------------------------------- */

struct tail_reader {
    struct rdw w;
    struct fx *f;
    uint64_t seq;
    int busy;
    uint32_t reads, with_data, bad;
};

static void tail_read_cb(struct sl_shard_read *rd, int err)
{
    struct rdw *w = sl_container_of(rd, struct rdw, rd);
    struct tail_reader *t = sl_container_of(w, struct tail_reader, w);
    w->done++;
    w->err = err;
    t->busy = 0;
    t->reads++;
    if (err != SL_OK) {
        fprintf(stderr, "  tail read at %" PRIu64 ": %s\n", t->seq, sl_errname(err));
        t->bad = 1;
        return;
    }
    /* Only acknowledged batches are visible (their callbacks ran first). */
    if (rd->len > 0 && rd->next_seq > t->f->ack_end) {
        fprintf(stderr, "  read returned up to %" PRIu64 " but acked only %" PRIu64 "\n",
                rd->next_seq, t->f->ack_end);
        t->bad = 1;
        return;
    }
    uint64_t next = 0;
    verify_result(t->f, rd, t->seq, &next, NULL);
    if (test_cur_failed_) {
        t->bad = 1;
        return;
    }
    if (rd->len > 0) {
        t->with_data++;
        t->seq = next;
    } else if (next != t->seq) {
        t->bad = 1;
    }
}

FX_CASE(concurrent_tail_reader, 601)
{
    f->cfg.flush = SL_FLUSH_ALWAYS;
    f->cfg.write_buf_bytes = 256 * KiB;
    f->cfg.segment_bytes = 512 * KiB;
    DO(fx_open(f));
    static struct tail_reader t;
    memset(&t, 0, sizeof(t));
    t.f = f;
    enum { N = 400 };
    struct genspec sp = {1, 4, 50, 8000, 1, -1, 99, 0};
    uint32_t appended = 0;
    uint64_t t0 = sl_clock_mono_ns();
    while (!t.bad && !test_cur_failed_) {
        /* a few appends per tick, left in flight */
        for (int k = 0; k < 3 && appended < N; k++) {
            struct mbatch *b = gen_batch(f, &sp);
            b->f = f;
            b->t_lo = fx_now(f);
            int rc = sl_shard_append(f->s, b->bytes, b->len, ack_cb, b);
            if (rc == SL_EAGAIN) {
                f->nall--; /* not appended: drop it */
                free(b->bytes);
                free(b->rec_hash);
                free(b);
                break;
            }
            CHECK_EQ(rc, SL_OK);
            f->acks_pending++;
            appended++;
        }
        if (!t.busy) {
            if (appended == N && f->acks_pending == 0 && t.seq == f->ack_end) {
                break; /* caught up */
            }
            t.busy = 1;
            read_start(f, &t.w, SL_READ_SEQ, t.seq, f->rbuf, f->rbuf_cap, 32 * KiB, tail_read_cb);
            CHECK_EQ(t.w.done, 0);
        }
        CHECK(sl_clock_mono_ns() - t0 < WAIT_NS_MAX);
        sl_ring_run(&g_ring, 1, 0);
    }
    CHECK(!t.bad);
    CHECK_EQ(appended, N);
    CHECK_EQ(f->acks_failed, 0);
    CHECK(!f->ack_order_bad);
    CHECK_EQ(t.seq, f->ack_end);
    fprintf(stderr, "  %u reads, %u with data\n", t.reads, t.with_data);
    CHECK(t.with_data >= 2);
    DO(read_all(f, 0, f->ack_end, 256 * KiB));
}

/* ---- many sealed segments ------------------------------------------------ */

struct bulk {
    uint64_t acked_end;
    uint32_t pending;
    uint32_t failed;
    int order_bad;
};

static void bulk_cb(void *ctx, int err, uint64_t base, uint32_t count)
{
    struct bulk *k = ctx;
    k->pending--;
    if (err != SL_OK) {
        k->failed++;
        return;
    }
    if (base != k->acked_end || count != 1) {
        k->order_bad = 1;
    }
    k->acked_end = base + count;
}

/* INTERVAL: writeback starts every WB_CHUNK (1 MiB) written, so the periodic
 * fdatasync has little left to do; the data reads back whole. */
FX_CASE(interval_starts_writeback_early, 702)
{
    f->cfg.flush = SL_FLUSH_INTERVAL;
    f->cfg.flush_interval_ms = 60000; /* no timer fdatasync during the case */
    DO(fx_open(f));
    struct mbatch *tmpl = gen_fixed(f, 16, 1000); /* ~16 KiB a batch */
    const uint32_t n = 600;                       /* ~9.6 MiB */
    struct bulk k = {0, 0, 0, 0};
    uint64_t t0 = sl_clock_mono_ns();
    for (uint32_t i = 0; i < n; i++) {
        int rc;
        while ((rc = sl_shard_append(f->s, tmpl->bytes, tmpl->len, bulk_cb, &k)) == SL_EAGAIN) {
            sl_ring_run(&g_ring, 1, 0);
        }
        CHECK_EQ(rc, SL_OK);
        k.pending++;
    }
    while (k.pending > 0) {
        CHECK(sl_clock_mono_ns() - t0 < WAIT_NS_MAX);
        sl_ring_run(&g_ring, 1, 0);
    }
    CHECK_EQ(k.failed, 0);
    struct sl_shard_stats st;
    stats(f, &st);
    /* One start is in flight at a time; each covers what was written meanwhile,
     * so the starts catch up with the writes once these are done. */
    for (int i = 0; i < 500 && st.writebacks < 2; i++) {
        sl_ring_run(&g_ring, 1, 10 * 1000 * 1000);
        stats(f, &st);
    }
    fprintf(stderr, "  %" PRIu64 " writeback starts, %" PRIu64 " fdatasyncs for %u batches\n",
            st.writebacks, st.fsyncs, n);
    if (direct_mode()) {
        CHECK_EQ(st.writebacks, 0); /* O_DIRECT writes leave no dirty pages to start */
        return;
    }
    CHECK(st.writebacks >= 2); /* one at a time: each covers what was written meanwhile */
    CHECK_EQ(st.fsyncs, 0);
    struct rdw w;
    CHECK_EQ(read_sync(f, &w, SL_READ_SEQ, 16 * (n - 1), 1), SL_OK);
    CHECK_EQ(w.rd.batch_count, 1);
    DO(fx_close(f)); /* close makes it durable (the fdatasync it owes) */
}

/* INTERVAL: a close does not wait for the armed flush timer (an op in flight for up to
 * flush_interval_ms, a minute here): it syncs at once, and the record is there after. */
FX_CASE(close_does_not_wait_for_the_interval_timer, 703)
{
    f->cfg.flush = SL_FLUSH_INTERVAL;
    f->cfg.flush_interval_ms = 60000;
    DO(fx_open(f));
    struct mbatch *tmpl = gen_fixed(f, 4, 100);
    struct bulk k = {0, 0, 0, 0};
    CHECK_EQ(sl_shard_append(f->s, tmpl->bytes, tmpl->len, bulk_cb, &k), SL_OK);
    k.pending++;
    while (k.pending > 0) {
        sl_ring_run(&g_ring, 1, 0);
    }
    CHECK_EQ(k.failed, 0);
    uint64_t t0 = sl_clock_mono_ns();
    DO(fx_close(f));
    uint64_t took_ms = (sl_clock_mono_ns() - t0) / 1000000u;
    fprintf(stderr, "  close took %" PRIu64 " ms (flush interval 60,000 ms)\n", took_ms);
    CHECK(took_ms < 20000u); /* (it waited the whole minute before) */
    DO(fx_open(f));
    struct sl_shard_stats st;
    stats(f, &st);
    CHECK_EQ(st.next_seq, 4u);
}

/* What sl_shard_scan_recent saw: consecutive batches, counted. */
struct recent {
    uint64_t first;
    uint64_t next;
    uint32_t count;
    bool gap;
};

static void on_recent(void *ctx, const struct sl_batch_header *h)
{
    struct recent *r = ctx;
    if (r->count == 0) {
        r->first = h->base_seq;
    } else if (h->base_seq != r->next) {
        r->gap = true;
    }
    r->next = h->base_seq + h->record_count;
    r->count++;
}

/* sl_shard_scan_recent: the batches it reports are the newest, consecutive,
 * covering at least the last N bytes across segments and not much more; none
 * when the newest is older than `since`. */
FX_CASE(scan_recent, 703)
{
    f->cfg.segment_bytes = 256 * KiB;
    f->cfg.index_interval_bytes = 4 * KiB;
    DO(fx_open(f));
    struct mbatch *tmpl = gen_fixed(f, 1, 1000); /* ~1 KiB batches, 1 record each */
    const uint32_t n = 2000;                     /* ~2 MiB: 8 segments */
    struct bulk k = {0, 0, 0, 0};
    for (uint32_t i = 0; i < n; i++) {
        int rc;
        while ((rc = sl_shard_append(f->s, tmpl->bytes, tmpl->len, bulk_cb, &k)) == SL_EAGAIN) {
            sl_ring_run(&g_ring, 1, 0);
        }
        CHECK_EQ(rc, SL_OK);
        k.pending++;
    }
    while (k.pending > 0) {
        sl_ring_run(&g_ring, 1, 0);
    }
    CHECK_EQ(k.failed, 0);
    for (int pass = 0; pass < 2; pass++) {
        const uint64_t wants[] = {1, 10 * KiB, 300 * KiB, 1 * MiB, 100 * MiB};
        for (size_t i = 0; i < sizeof(wants) / sizeof(wants[0]); i++) {
            struct recent r = {0, 0, 0, false};
            CHECK_EQ(sl_shard_scan_recent(f->s, 0, wants[i], on_recent, &r), SL_OK);
            uint64_t covered = (uint64_t)r.count * tmpl->len; /* one record a batch */
            CHECK(!r.gap);
            CHECK_EQ(r.next, n);
            CHECK(covered >= wants[i] || r.first == 0);
            CHECK(covered <= wants[i] + 4 * KiB + tmpl->len); /* one index interval more */
        }
        struct recent none = {0, 0, 0, false};
        CHECK_EQ(sl_shard_scan_recent(f->s, sl_clock_wall_ms() + 3600 * 1000, 1 * MiB, on_recent,
                                      &none),
                 SL_OK);
        CHECK_EQ(none.count, 0);
        DO(fx_close(f));
        DO(fx_open(f)); /* again with sealed segments not loaded, the writing one recovered */
    }
}

FX_CASE(reopen_1000_segments_no_scan, 701)
{
    f->cfg.segment_bytes = 4 * KiB;
    f->cfg.flush = SL_FLUSH_INTERVAL;
    f->cfg.flush_interval_ms = 200;
    f->cfg.write_buf_bytes = 64 * KiB;
    f->cfg.batch_bytes_max = 64 * KiB;
    DO(fx_open(f));
    /* ~1 KiB batches: four fit a 4 KiB segment, the fifth rolls */
    struct mbatch *tmpl = gen_fixed(f, 1, 900);
    CHECK(tmpl->len > 900 && tmpl->len < 1024);
    /* SLUICE_IT_LONG: 8,761 segments, a year of hourly ones */
    const uint32_t n = (getenv("SLUICE_IT_LONG") != NULL ? 8761 : 1001) * 4 + 2;
    struct bulk k = {0, 0, 0, 0};
    uint64_t t0 = sl_clock_mono_ns();
    for (uint32_t i = 0; i < n; i++) {
        int rc;
        while ((rc = sl_shard_append(f->s, tmpl->bytes, tmpl->len, bulk_cb, &k)) == SL_EAGAIN) {
            sl_ring_run(&g_ring, 1, 0);
        }
        CHECK_EQ(rc, SL_OK);
        k.pending++;
    }
    while (k.pending > 0) {
        CHECK(sl_clock_mono_ns() - t0 < WAIT_NS_MAX);
        sl_ring_run(&g_ring, 1, 0);
    }
    CHECK_EQ(k.failed, 0);
    CHECK(!k.order_bad);
    CHECK_EQ(k.acked_end, n);
    fprintf(stderr, "  appended %u batches in %.2f s\n", n,
            (double)(sl_clock_mono_ns() - t0) / 1e9);
    DO(fx_close(f));
    static uint64_t bases[16384];
    size_t nseg = list_logs(f->dir, bases, 16384);
    CHECK(nseg >= 1001);
    char active[PATH_MAX];
    seg_path(active, sizeof(active), f->dir, bases[nseg - 1], ".log");
    int64_t active_bytes = file_size(active);
    uint64_t t1 = sl_clock_mono_ns();
    DO(fx_open(f));
    double open_s = (double)(sl_clock_mono_ns() - t1) / 1e9;
    struct sl_shard_stats st;
    stats(f, &st);
    fprintf(stderr,
            "  reopen of %zu segments: %.3f s, recovery read %" PRIu64 " bytes (active %" PRId64
            "), %u open\n",
            nseg, open_s, st.recovery_read_bytes, active_bytes, st.segments_open);
    CHECK(st.segments >= 1000);
    CHECK_EQ(st.segments, nseg);
    CHECK(open_s < 1.0);
    uint64_t recovery_read = st.recovery_read_bytes; /* checked last */
    CHECK_EQ(st.next_seq, n);
    CHECK_EQ(st.first_seq, 0);
    CHECK(st.segments_open <= f->cfg.open_segments_max);
    /* Sample reads across the range. */
    const uint64_t probes[] = {0, 1, 3, 4, 2001, 3999, n - 1};
    for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
        struct rdw w;
        CHECK_EQ(read_sync(f, &w, SL_READ_SEQ, probes[i], 1), SL_OK);
        CHECK_EQ(w.rd.batch_count, 1);
        struct sl_batch_header h;
        CHECK_EQ(sl_batch_validate(w.rd.buf, w.rd.len, w.rd.len, &h), SL_OK);
        CHECK_EQ(h.base_seq, probes[i]);
        CHECK(memcmp(w.rd.buf + 40, tmpl->bytes + 40, tmpl->len - 40) == 0);
    }
    /* A full sequential scan crossing every segment. */
    uint64_t seq = 0;
    while (seq < n) {
        struct rdw w;
        CHECK_EQ(read_sync(f, &w, SL_READ_SEQ, seq, 64 * KiB), SL_OK);
        CHECK(w.rd.len > 0);
        uint32_t off = 0;
        while (off < w.rd.len) {
            struct sl_batch_header h;
            CHECK_EQ(sl_batch_validate(w.rd.buf + off, w.rd.len - off, w.rd.len, &h), SL_OK);
            CHECK_EQ(h.base_seq, seq);
            seq++;
            off += h.length;
        }
        CHECK_EQ(w.rd.next_seq, seq);
    }
    stats(f, &st);
    CHECK(st.segments_open <= f->cfg.open_segments_max);
    /* Sealed segments are trusted: recovery reads the active one only. */
    CHECK(recovery_read <= (uint64_t)active_bytes);
    /* All but the active one expire at once: deleted in runs of at most
     * SL_RETAIN_DELETES_PER_RUN, the longest one reported (not timed: a
     * benchmark figure, docs/ARCHITECTURE.md). */
    sl_shard_set_retention(f->s, 1, 0);
    struct timespec nap = {0, 2000000};
    nanosleep(&nap, NULL);
    nap.tv_nsec = 200000;
    uint64_t t2 = sl_clock_mono_ns();
    uint32_t first_run = sl_shard_retention_run(f->s);
    uint64_t longest = sl_clock_mono_ns() - t2;
    CHECK_EQ(first_run, SL_RETAIN_DELETES_PER_RUN);
    stats(f, &st);
    while (st.segments > 1 && sl_clock_mono_ns() - t2 < WAIT_NS_MAX) {
        uint64_t t3 = sl_clock_mono_ns(); /* the work of a turn, not its wait */
        sl_ring_run(&g_ring, 0, 0);
        longest = sl_clock_mono_ns() - t3 > longest ? sl_clock_mono_ns() - t3 : longest;
        nanosleep(&nap, NULL);
        stats(f, &st);
    }
    CHECK_EQ(st.segments, 1);
    fprintf(stderr, "  retention of %zu segments: %.3f s in all, the longest loop turn %.2f ms\n",
            nseg - 1, (double)(sl_clock_mono_ns() - t2) / 1e9, (double)longest / 1e6);
}

/* ---- a full disk --------------------------------------------------------- */

static uint64_t g_enospc_zero_writes; /* the zeroed run-ahead's writes in the last enospc() */

static void enospc(struct fx *f, enum sl_flush_policy policy)
{
    snprintf(f->mnt, sizeof(f->mnt), "%s/mnt", f->root);
    CHECK_EQ(mkdir(f->mnt, 0755), 0);
    if (mount("tmpfs", f->mnt, "tmpfs", 0, "size=2m") != 0) {
        fprintf(stderr, "  mount tmpfs: %s\n", strerror(errno));
        f->mnt[0] = '\0';
        SKIP("cannot mount a tmpfs (needs root / CAP_SYS_ADMIN)");
    }
    char filler[PATH_MAX];
    snprintf(filler, sizeof(filler), "%s/filler", f->mnt);
    static uint8_t fill[512 * 1024];
    memset(fill, 0x5a, sizeof(fill));
    CHECK_EQ(write_file(filler, fill, sizeof(fill)), 0);
    snprintf(f->dir, sizeof(f->dir), "%s/shard", f->mnt);
    f->cfg.segment_bytes = 256 * KiB;
    f->cfg.write_buf_bytes = 64 * KiB;
    f->cfg.batch_bytes_max = 64 * KiB;
    f->cfg.flush = policy;
    DO(fx_open(f));
    struct genspec sp = {1, 2, 2000, 6000, 0, 0, SL_BATCH_CODEC_NONE, 0};
    /* Append (a few in flight at a time) until the disk refuses one. */
    int refused = SL_OK;
    for (uint32_t i = 0; i < 2000 && refused == SL_OK && f->acks_failed == 0; i++) {
        struct mbatch *b = gen_batch(f, &sp);
        int rc = append_try(f, b);
        if (rc != SL_OK) {
            CHECK_EQ(rc, SL_ENOSPC);
            refused = rc;
        }
        if (i % 4 == 3) {
            DO(wait_acks(f));
        }
    }
    DO(wait_acks(f));
    CHECK(f->acks_failed > 0 || refused == SL_ENOSPC);
    if (f->acks_failed > 0) {
        CHECK_EQ(f->last_fail_err, SL_ENOSPC);
    }
    uint64_t acked = f->ack_end;
    fprintf(stderr, "  disk full after %zu acknowledged batches (%" PRIu64 " records)\n", f->nacked,
            acked);
    CHECK(acked > 0);
    struct sl_shard_stats st;
    stats(f, &st);
    CHECK_EQ(st.state, SL_ENOSPC);
    CHECK_EQ(st.next_seq, acked); /* failed batches took no sequence numbers */
    CHECK_EQ(st.visible_seq, acked);
    DO(read_all(f, 0, acked, 64 * KiB)); /* every acked record, still readable */
    /* Still full: further appends fail with SL_ENOSPC (at once or in their
     * callback) or, if they happen to fit, succeed; never anything else. */
    for (int i = 0; i < 8; i++) {
        struct mbatch *b = gen_batch(f, &sp);
        int rc = append_try(f, b);
        CHECK(rc == SL_OK || rc == SL_ENOSPC);
        DO(wait_acks(f));
        CHECK(rc == SL_ENOSPC || b->err == SL_OK || b->err == SL_ENOSPC);
    }
    stats(f, &st);
    CHECK(st.state == SL_ENOSPC || st.state == SL_OK);
    acked = f->ack_end;
    CHECK_EQ(st.next_seq, acked);
    DO(read_all(f, 0, acked, 64 * KiB));
    /* Free space: appends work again (the first try may still report it). */
    CHECK_EQ(unlink(filler), 0);
    struct mbatch *b = gen_batch(f, &sp);
    int rc = SL_ENOSPC;
    for (int tries = 0; tries < 3 && rc != SL_OK; tries++) {
        rc = append_try(f, b);
        if (rc == SL_OK) {
            DO(wait_acks(f));
            rc = b->err;
        }
    }
    CHECK_EQ(rc, SL_OK);
    CHECK_EQ(b->base, acked);
    for (int i = 0; i < 10; i++) {
        DO(append_wait(f, gen_batch(f, &sp)));
    }
    stats(f, &st);
    CHECK_EQ(st.state, SL_OK);
    CHECK_EQ(st.next_seq, f->ack_end);
    g_enospc_zero_writes = st.zero_writes;
    DO(read_all(f, 0, f->ack_end, 64 * KiB));
    /* and after a reopen: exactly the acknowledged batches */
    uint64_t tail = f->ack_end;
    DO(fx_close(f));
    DO(fx_open(f));
    stats(f, &st);
    CHECK_EQ(st.next_seq, tail);
    DO(read_all(f, 0, tail, 64 * KiB));
    DO(fx_close(f));
}

FX_CASE(enospc_tmpfs_flush_always, 801)
{
    enospc(f, SL_FLUSH_ALWAYS);
}

/* The same with the smallest zeroed run-ahead: zero writes fill the disk too
 * (and give their space back), data writes land on zeros or past them. */
FX_CASE(enospc_tmpfs_prezero, 803)
{
    f->cfg.prezero_bytes = SL_PREZERO_MIN;
    DO(enospc(f, SL_FLUSH_ALWAYS));
    fprintf(stderr, "  %" PRIu64 " zero writes\n", g_enospc_zero_writes);
    CHECK(g_enospc_zero_writes > 0);
}

FX_CASE(enospc_tmpfs_flush_interval, 802)
{
    enospc(f, SL_FLUSH_INTERVAL);
}

/* ---- appends refused, stats --------------------------------------------- */

/* pending_max bounds the appends awaiting their ack: the next one gets
 * SL_EAGAIN with no side effect, and goes in once the loop ran. */
FX_CASE(append_backpressure, 903)
{
    f->cfg.pending_max = 3;
    DO(fx_open(f));
    struct mbatch *b[4];
    for (int i = 0; i < 4; i++) {
        b[i] = gen_fixed(f, 1, 200);
        b[i]->f = f;
    }
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(sl_shard_append(f->s, b[i]->bytes, b[i]->len, ack_cb, b[i]), SL_OK);
        f->acks_pending++;
    }
    struct sl_shard_stats st;
    stats(f, &st);
    CHECK_EQ(st.next_seq, 3);
    CHECK_EQ(sl_shard_append(f->s, b[3]->bytes, b[3]->len, ack_cb, b[3]), SL_EAGAIN);
    stats(f, &st);
    CHECK_EQ(st.next_seq, 3); /* the refused one took no sequence */
    DO(wait_acks(f));
    CHECK_EQ(b[3]->done, 0);
    DO(append_wait(f, b[3]));
    CHECK_EQ(b[3]->base, 3);
    DO(read_all(f, 0, 4, MiB));
}

/* A shard's memory starts small and grows with its traffic: the pending ring
 * (16 at first), the writing segment's index (16 entries at first, grown only
 * while no index write points into it) and the staging buffers (64 KiB at
 * first). 1,500 appends in bursts without running the loop force every one of
 * them to grow, with index writes in flight; order, acks, reads and a reopen
 * must not notice. */
FX_CASE(memory_grows_with_traffic, 904)
{
    f->cfg.index_interval_bytes = 256; /* every batch indexed */
    DO(fx_open(f));
    enum { N = 1500 };
    struct mbatch *b[N];
    for (int i = 0; i < N; i++) {
        b[i] = gen_fixed(f, 1, 300 + (uint32_t)(i % 7) * 100);
        b[i]->f = f;
    }
    int refused = 0;
    for (int i = 0; i < N; i++) {
        int rc = sl_shard_append(f->s, b[i]->bytes, b[i]->len, ack_cb, b[i]);
        if (rc == SL_EAGAIN) {
            refused++;
            DO(wait_acks(f)); /* buffers full: let them drain, then retry */
            rc = sl_shard_append(f->s, b[i]->bytes, b[i]->len, ack_cb, b[i]);
        }
        CHECK_EQ(rc, SL_OK);
        f->acks_pending++;
        if (i % 200 == 199) {
            sl_ring_run(&g_ring, 0, 0); /* index writes start while appends go on */
        }
    }
    DO(wait_acks(f));
    CHECK_EQ(f->ack_order_bad, 0);
    for (int i = 0; i < N; i++) {
        CHECK_EQ(b[i]->base, (uint64_t)i);
    }
    DO(read_all(f, 0, N, MiB));
    DO(fx_close(f));
    DO(fx_open(f));
    DO(read_all(f, 0, N, MiB));
    (void)refused;
}

static void count_ack(void *ctx, int err, uint64_t base, uint32_t count)
{
    (void)base;
    (void)count;
    int *n = ctx;
    *n += err == SL_OK ? 1 : 1000000; /* a failed ack fails the count check */
}

static void count_read(struct sl_shard_read *rd, int err)
{
    int *done = rd->ctx;
    *done = err == SL_OK ? 1 : -1;
}

/* Reads a shard from `seq` to its tail, counting records; -1 on an error. */
static long read_count(struct fx *f, struct sl_shard *s, uint64_t seq)
{
    long n = 0;
    for (;;) {
        int done = 0;
        struct sl_shard_read rd = {.from = SL_READ_SEQ,
                                   .seq = seq,
                                   .buf = f->rbuf,
                                   .buf_cap = (uint32_t)f->rbuf_cap,
                                   .max_bytes = 64 * KiB,
                                   .cb = count_read,
                                   .ctx = &done};
        sl_shard_read(s, &rd);
        while (done == 0) {
            sl_ring_run(&g_ring, 1, 0);
        }
        if (done < 0) {
            return -1;
        }
        if (rd.len == 0) {
            return n;
        }
        n += (long)(rd.next_seq - seq);
        seq = rd.next_seq;
    }
}

/* Twelve shards under a budget of seven descriptors: parked at open (nothing
 * charged), reopened by appends and reads, parked again least recently used
 * first; a shard with a read in flight is never parked; every record reads
 * back, also after a close and reopen. */
FX_CASE(descriptor_budget_parks_and_reopens, 905)
{
    enum { NS = 12, ROUNDS = 30, RECS = 4 };
    struct sl_shard_cache c;
    sl_shard_cache_init(&c, 7);
    struct sl_shard_config cfg = f->cfg;
    cfg.cache = &c;
    cfg.segment_bytes = 32 * KiB; /* several sealed segments per shard */
    struct sl_shard *sh[NS];
    char dir[PATH_MAX];
    for (int i = 0; i < NS; i++) {
        snprintf(dir, sizeof(dir), "%s/s%d", f->root, i);
        CHECK_EQ(sl_shard_open(&g_ring, dir, &cfg, &sh[i]), SL_OK);
    }
    CHECK_EQ(c.files, 0);
    struct mbatch *b = gen_fixed(f, RECS, 1000);
    int acks = 0, want = 0;
    for (int r = 0; r < ROUNDS; r++) {
        for (int i = 0; i < NS; i++) {
            CHECK_EQ(sl_shard_append(sh[i], b->bytes, b->len, count_ack, &acks), SL_OK);
            want++;
        }
        uint64_t t0 = sl_clock_mono_ns();
        while (acks < want && sl_clock_mono_ns() - t0 < WAIT_NS_MAX) {
            sl_ring_run(&g_ring, 1, 0);
        }
        CHECK_EQ(acks, want);
    }
    CHECK(c.parks > 0 && c.unparks > 0);
    for (int i = 0; i < NS; i++) {
        CHECK_EQ(read_count(f, sh[i], 0), (long)ROUNDS * RECS);
        CHECK(c.files <= c.files_max + 3 + cfg.open_segments_max);
    }
    /* A read in flight on sh[0] while every other shard is used: sh[0] stays. */
    int done = 0;
    struct sl_shard_read rd = {.from = SL_READ_SEQ,
                               .seq = 0,
                               .buf = f->rbuf,
                               .buf_cap = (uint32_t)f->rbuf_cap,
                               .max_bytes = 64 * KiB,
                               .cb = count_read,
                               .ctx = &done};
    sl_shard_read(sh[0], &rd);
    for (int i = 1; i < NS; i++) {
        CHECK_EQ(sl_shard_append(sh[i], b->bytes, b->len, count_ack, &acks), SL_OK);
        want++;
    }
    while (done == 0 || acks < want) {
        sl_ring_run(&g_ring, 1, 0);
    }
    CHECK_EQ(done, 1);
    CHECK(rd.len > 0);
    for (int i = 0; i < NS; i++) {
        sl_shard_close(sh[i]);
    }
    CHECK_EQ(c.files, 0);
    CHECK(c.head == NULL && c.tail == NULL);
    snprintf(dir, sizeof(dir), "%s/s%d", f->root, 5);
    CHECK_EQ(sl_shard_open(&g_ring, dir, &cfg, &sh[5]), SL_OK);
    CHECK_EQ(read_count(f, sh[5], 0), (long)(ROUNDS + 1) * RECS);
    sl_shard_close(sh[5]);
    /* the parked shards' first-size staging buffers went to the spares */
    CHECK(c.spare_len > 0 && c.spare_len <= SL_SHARD_SPARE_BUFS);
    sl_shard_cache_fini(&c);
    CHECK_EQ(c.spare_len, 0);
}

/* A new shard makes its first segment's files at its first append (files_owed):
 * creating it costs a directory, nothing else; a reopen before any append
 * finds it empty; the first append's ack waits for the files and their
 * directory fsync. */
static int dir_entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        return -1;
    }
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        n += e->d_name[0] != '.';
    }
    closedir(d);
    return n;
}

FX_CASE(new_shard_makes_files_at_first_append, 907)
{
    struct sl_shard_cache c;
    sl_shard_cache_init(&c, 8);
    struct sl_shard_config cfg = f->cfg;
    cfg.cache = &c;
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/lazy", f->root);
    struct sl_shard *s = NULL;
    CHECK_EQ(sl_shard_open(&g_ring, dir, &cfg, &s), SL_OK);
    CHECK_EQ(dir_entries(dir), 0);
    CHECK_EQ(c.files, 0);
    CHECK_EQ(read_count(f, s, 0), 0); /* a read of the empty shard opens no file */
    CHECK_EQ(dir_entries(dir), 0);
    sl_shard_close(s);
    CHECK_EQ(sl_shard_open(&g_ring, dir, &cfg, &s), SL_OK); /* reopened before any append */
    CHECK_EQ(dir_entries(dir), 0);
    struct mbatch *b = gen_fixed(f, 3, 100);
    int acks = 0;
    CHECK_EQ(sl_shard_append(s, b->bytes, b->len, count_ack, &acks), SL_OK);
    uint64_t t0 = sl_clock_mono_ns();
    while (acks < 1 && sl_clock_mono_ns() - t0 < WAIT_NS_MAX) {
        sl_ring_run(&g_ring, 1, 0);
    }
    CHECK_EQ(acks, 1);
    CHECK_EQ(dir_entries(dir), 2); /* its .log and .idx */
    sl_shard_close(s);
    CHECK_EQ(sl_shard_open(&g_ring, dir, &cfg, &s), SL_OK);
    CHECK_EQ(read_count(f, s, 0), 3);
    sl_shard_close(s);
    sl_shard_cache_fini(&c);
}

/* ---- out of descriptors at a roll (EMFILE) ------------------------------- */

/* Lowers the soft RLIMIT_NOFILE to the lowest descriptor number free now, so
 * that the next open fails with EMFILE whatever holes lie above it (the
 * descriptors already open stay valid). `saved` receives the limits to
 * restore. 0 on success. */
static int nofile_squeeze(struct rlimit *saved)
{
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || getrlimit(RLIMIT_NOFILE, saved) != 0) {
        return -1;
    }
    close(fd);
    struct rlimit rl = *saved;
    rl.rlim_cur = (rlim_t)fd;
    return setrlimit(RLIMIT_NOFILE, &rl);
}

/* Appends one-record batches of `value_len` bytes, each waited for, until one
 * needs a new segment (the shard's segment count grows). Returns that batch;
 * its ack (already received) tells how the roll went. */
static struct mbatch *append_until_roll(struct fx *f, uint32_t value_len)
{
    struct sl_shard_stats st;
    sl_shard_stats(f->s, &st);
    uint32_t segs = st.segments;
    for (int guard = 0; guard < 10000; guard++) {
        struct mbatch *b = gen_fixed(f, 1, value_len);
        if (append_try(f, b) != SL_OK) {
            return NULL;
        }
        uint64_t t0 = sl_clock_mono_ns();
        while (f->acks_pending > 0 && sl_clock_mono_ns() - t0 < WAIT_NS_MAX) {
            sl_ring_run(&g_ring, 1, 0);
        }
        sl_shard_stats(f->s, &st);
        if (f->acks_pending > 0 || b->err != SL_OK || st.segments != segs) {
            return b;
        }
    }
    return NULL;
}

/* Issue #11: a roll whose new segment's files cannot be created for want of
 * descriptors used to fence the shard (SL_EFATAL until a restart). Now the
 * batch that needed the segment fails with SL_ELIMIT, the shard stays SL_OK
 * and readable, appends fail with SL_ELIMIT at once while descriptors are
 * still short, retention keeps the newest segment on disk, and once the limit
 * is raised the next append creates the files: every acknowledged record
 * reads back, also after a reopen. */
static void roll_emfile(struct fx *f, enum sl_flush_policy policy)
{
    f->cfg.flush = policy;
    f->cfg.segment_bytes = 16 * KiB;
    DO(fx_open(f));
    /* Two sealed segments first (retention is checked on them below). */
    for (int i = 0; i < 2; i++) {
        struct mbatch *b = append_until_roll(f, 1500);
        CHECK(b != NULL);
        CHECK_EQ(b->err, SL_OK);
    }
    DO(append_wait(f, gen_fixed(f, 1, 1500))); /* the shard is open (unparked) */
    struct sl_shard_stats st;
    stats(f, &st);
    CHECK_EQ(st.segments, 3);
    struct rlimit saved;
    if (nofile_squeeze(&saved) != 0) {
        SKIP("cannot lower RLIMIT_NOFILE");
    }
    /* Appends that fit go on (they need no descriptor); the one that rolls
     * fails in its callback. */
    struct mbatch *b = append_until_roll(f, 1500);
    uint64_t tail = f->ack_end;
    struct sl_shard_stats st2;
    stats(f, &st2);
    struct mbatch *b2 = gen_fixed(f, 1, 1500);
    int rc2 = append_try(f, b2); /* still short: refused at once, nothing queued */
    struct sl_shard_stats st3;
    stats(f, &st3);
    /* Retention by bytes (1 byte): the two older sealed segments go, the
     * newest on disk stays - the active one has no files yet, and that one
     * carries the sequence across a restart. */
    sl_shard_set_retention(f->s, SL_RETENTION_MS_MAX, 1);
    uint32_t deleted = sl_shard_retention_run(f->s);
    sl_shard_set_retention(f->s, SL_RETENTION_MS_MAX, 0);
    CHECK_EQ(setrlimit(RLIMIT_NOFILE, &saved), 0);
    CHECK(b != NULL);
    CHECK_EQ(b->done, 1);
    CHECK_EQ(b->err, SL_ELIMIT);
    CHECK_EQ(f->acks_failed, 1);
    CHECK_EQ(st2.state, SL_OK);
    CHECK_EQ(st2.next_seq, tail); /* the failed batch took no sequence */
    CHECK_EQ(st2.visible_seq, tail);
    CHECK_EQ(rc2, SL_ELIMIT);
    CHECK_EQ(b2->done, 0);
    CHECK_EQ(st3.state, SL_OK);
    CHECK_EQ(st3.next_seq, tail);
    CHECK_EQ(deleted, 2);
    stats(f, &st);
    CHECK_EQ(st.segments, 2);
    uint64_t first = st.first_seq;
    CHECK(first > 0 && first < tail);
    DO(read_all(f, first, tail, 8 * KiB)); /* reads never stopped */
    /* Descriptors again: the next append creates the segment and goes in. */
    DO(append_wait(f, b2));
    CHECK_EQ(b2->base, tail);
    for (int i = 0; i < 20; i++) {
        DO(append_wait(f, gen_fixed(f, 1, 1500))); /* and rolls again */
    }
    stats(f, &st);
    CHECK_EQ(st.state, SL_OK);
    CHECK_EQ(st.next_seq, f->ack_end);
    size_t nseg = 0;
    DO(check_segment_files(f, f->ack_end, &nseg));
    DO(read_all(f, first, f->ack_end, 8 * KiB));
    tail = f->ack_end;
    DO(fx_close(f));
    DO(fx_open(f));
    stats(f, &st);
    CHECK_EQ(st.next_seq, tail);
    CHECK_EQ(st.first_seq, first);
    DO(read_all(f, first, tail, 8 * KiB));
}

FX_CASE(regress_roll_emfile_fences_shard, 906)
{
    roll_emfile(f, SL_FLUSH_ALWAYS);
}

FX_CASE(regress_roll_emfile_fences_shard_interval, 908)
{
    roll_emfile(f, SL_FLUSH_INTERVAL);
}

/* The same roll, out of descriptors while other shards of the loop sit idle
 * and open: they are parked (least recently used first) to free descriptors,
 * the files are created on the second try, and nothing fails. */
FX_CASE(roll_emfile_parks_idle_shards, 907)
{
    enum { NS = 4 };
    struct sl_shard_cache *c = &f->cache;
    sl_shard_cache_init(c, 1000); /* a budget that parks nothing by itself */
    f->cfg.cache = c;
    f->cfg.segment_bytes = 16 * KiB;
    DO(fx_open(f));
    struct sl_shard *sh[NS];
    char dir[PATH_MAX];
    struct mbatch *one = gen_fixed(f, 1, 100);
    int acks = 0;
    for (int i = 0; i < NS; i++) {
        snprintf(dir, sizeof(dir), "%s/idle%d", f->root, i);
        CHECK_EQ(sl_shard_open(&g_ring, dir, &f->cfg, &sh[i]), SL_OK);
        CHECK_EQ(sl_shard_append(sh[i], one->bytes, one->len, count_ack, &acks), SL_OK);
    }
    while (acks < NS) {
        sl_ring_run(&g_ring, 1, 0);
    }
    CHECK_EQ(acks, NS);
    DO(append_wait(f, gen_fixed(f, 1, 1500)));
    uint64_t parks = c->parks;
    struct rlimit saved;
    if (nofile_squeeze(&saved) != 0) {
        SKIP("cannot lower RLIMIT_NOFILE");
    }
    struct mbatch *b = append_until_roll(f, 1500);
    int rc = SL_OK;
    for (int i = 0; i < 5 && rc == SL_OK; i++) {
        rc = append_try(f, gen_fixed(f, 1, 1500)); /* in the new segment */
        /* no CHECK (which returns) before the limit is back */
        uint64_t t0 = sl_clock_mono_ns();
        while (f->acks_pending > 0 && sl_clock_mono_ns() - t0 < WAIT_NS_MAX) {
            sl_ring_run(&g_ring, 1, 0);
        }
    }
    CHECK_EQ(setrlimit(RLIMIT_NOFILE, &saved), 0);
    CHECK(b != NULL);
    CHECK_EQ(b->err, SL_OK);
    CHECK_EQ(rc, SL_OK);
    CHECK_EQ(f->acks_pending, 0);
    CHECK_EQ(f->acks_failed, 0);
    CHECK(c->parks > parks);
    struct sl_shard_stats st;
    stats(f, &st);
    CHECK_EQ(st.state, SL_OK);
    CHECK(st.segments >= 2);
    DO(read_all(f, 0, f->ack_end, 8 * KiB));
    for (int i = 0; i < NS; i++) {
        CHECK_EQ(read_count(f, sh[i], 0), 1); /* parked ones reopen */
        sl_shard_close(sh[i]);
    }
    uint64_t tail = f->ack_end;
    DO(fx_close(f));
    DO(fx_open(f));
    DO(read_all(f, 0, tail, 8 * KiB));
}

/* Twelve shards written at once (nothing parkable while every one is busy, so each
 * touch's trim finds nothing to park) under a budget of seven: once they are quiet, the
 * budget holds again without any further use (regression: they all stayed open). */
FX_CASE(budget_holds_after_a_burst, 909)
{
    enum { NS = 12 };
    struct sl_shard_cache *c = &f->cache;
    sl_shard_cache_init(c, 7);
    struct sl_shard_config cfg = f->cfg;
    cfg.cache = c;
    struct sl_shard *sh[NS];
    char dir[PATH_MAX];
    for (int i = 0; i < NS; i++) {
        snprintf(dir, sizeof(dir), "%s/b%d", f->root, i);
        CHECK_EQ(sl_shard_open(&g_ring, dir, &cfg, &sh[i]), SL_OK);
    }
    struct mbatch *b = gen_fixed(f, 2, 500);
    int acks = 0;
    for (int i = 0; i < NS; i++) {
        CHECK_EQ(sl_shard_append(sh[i], b->bytes, b->len, count_ack, &acks), SL_OK);
    }
    CHECK(c->files > c->files_max); /* all busy: over the budget for now */
    uint64_t t0 = sl_clock_mono_ns();
    while ((acks < NS || g_ring.inflight > 0 || g_ring.deferred_head != NULL) &&
           sl_clock_mono_ns() - t0 < WAIT_NS_MAX) {
        sl_ring_run(&g_ring, 1, 0);
    }
    CHECK_EQ(acks, NS);
    fprintf(stderr, "  %" PRIu64 " descriptors charged once quiet (budget %" PRIu64 ")\n",
            c->files, c->files_max);
    CHECK(c->files <= c->files_max);
    for (int i = 0; i < NS; i++) {
        CHECK_EQ(read_count(f, sh[i], 0), 2);
    }
    for (int i = 0; i < NS; i++) {
        sl_shard_close(sh[i]);
    }
    CHECK_EQ(c->files, 0);
}

FX_CASE(append_rejects_invalid, 901)
{
    f->cfg.batch_bytes_max = 64 * KiB;
    DO(fx_open(f));
    struct mbatch *good = gen_fixed(f, 2, 100);
    DO(append_wait(f, good));
    struct sl_shard_stats st0, st;
    stats(f, &st0);
    int called = 0;
    struct mbatch *b = gen_fixed(f, 1, 300);
    uint8_t *copy = malloc(b->len);
    CHECK(copy != NULL);
    /* a flipped bit: refused, nothing queued */
    memcpy(copy, b->bytes, b->len);
    copy[b->len - 1] ^= 0x10;
    int r1 = sl_shard_append(f->s, copy, b->len, ack_cb, b);
    /* fewer bytes than the header declares */
    int r2 = sl_shard_append(f->s, b->bytes, b->len - 1, ack_cb, b);
    /* more bytes than the batch: trailing garbage */
    int r3 = SL_OK;
    uint8_t *longer = malloc(b->len + 8);
    if (longer != NULL) {
        memcpy(longer, b->bytes, b->len);
        memset(longer + b->len, 0, 8);
        r3 = sl_shard_append(f->s, longer, b->len + 8, ack_cb, b);
        free(longer);
    }
    free(copy);
    called = b->done;
    /* larger than batch_bytes_max */
    struct mbatch *big = gen_fixed(f, 1, 70 * KiB);
    int r4 = sl_shard_append(f->s, big->bytes, big->len, ack_cb, big);
    called += big->done;
    /* let the loop run: no callback may come for the refused ones */
    sl_ring_run(&g_ring, 0, 0);
    called += b->done + big->done;
    stats(f, &st);
    CHECK(r1 == SL_ECORRUPT || r1 == SL_EPROTO);
    CHECK(r2 == SL_ECORRUPT || r2 == SL_EPROTO || r2 == SL_EAGAIN);
    CHECK(r2 != SL_EAGAIN); /* a short buffer is not "try again" */
    CHECK(r3 == SL_ECORRUPT || r3 == SL_EPROTO);
    CHECK_EQ(r4, SL_ETOOBIG);
    CHECK_EQ(called, 0);
    CHECK_EQ(st.next_seq, st0.next_seq);
    CHECK_EQ(st.bytes, st0.bytes);
    DO(append_wait(f, b)); /* the intact batch still goes in, right after */
    CHECK_EQ(b->base, good->base + good->count);
    DO(read_all(f, 0, f->ack_end, MiB));
}

FX_CASE(stats_sane, 902)
{
    DO(fx_open(f));
    struct sl_shard_stats st;
    stats(f, &st);
    CHECK_EQ(st.first_seq, 0);
    CHECK_EQ(st.next_seq, 0);
    CHECK_EQ(st.visible_seq, 0);
    CHECK_EQ(st.bytes, 0);
    CHECK(st.segments <= 1);
    CHECK_EQ(st.recovery_read_bytes, 0);
    CHECK_EQ(st.recovery_truncated_bytes, 0);
    CHECK_EQ(st.state, SL_OK);
    /* Appended, not yet acknowledged: sequences assigned, not visible. */
    struct mbatch *b[3];
    uint64_t records = 0, bytes = 0;
    for (int i = 0; i < 3; i++) {
        b[i] = gen_fixed(f, (uint32_t)(i + 1), 500);
        DO(append_ok(f, b[i]));
        records += b[i]->count;
        bytes += b[i]->len;
    }
    stats(f, &st);
    CHECK_EQ(st.next_seq, records);
    CHECK_EQ(st.visible_seq, 0);
    /* a read now sees nothing yet */
    struct rdw w;
    read_start(f, &w, SL_READ_SEQ, 0, f->rbuf, f->rbuf_cap, MiB, read_cb);
    CHECK_EQ(w.done, 0);
    DO(wait_acks(f));
    CHECK_EQ(read_wait(&w), SL_OK);
    if (w.rd.len > 0) {
        uint64_t next;
        DO(verify_result(f, &w.rd, 0, &next, NULL)); /* only acked batches */
    }
    stats(f, &st);
    CHECK_EQ(st.next_seq, records);
    CHECK_EQ(st.visible_seq, records);
    CHECK_EQ(st.first_seq, 0);
    size_t nlog = 0;
    CHECK(logs_match(st.bytes, f->dir, &nlog));
    CHECK(st.bytes >= bytes);
    CHECK_EQ(st.segments, nlog);
    CHECK_EQ(st.segments, 1);
    CHECK(st.writes >= 1);
    CHECK(st.fsyncs >= 1); /* ALWAYS: acks after fdatasync */
    CHECK_EQ(st.state, SL_OK);
    DO(fx_close(f));
    DO(fx_open(f));
    stats(f, &st);
    CHECK_EQ(st.next_seq, records);
    CHECK_EQ(st.visible_seq, records);
    CHECK_EQ(st.recovery_truncated_bytes, 0);
    CHECK_EQ(st.first_seq, 0);
    DO(read_all(f, 0, records, MiB));
    /* recovery read the active segment's tail: something, at most all of it */
    CHECK(st.recovery_read_bytes > 0);
    CHECK(st.recovery_read_bytes <= st.bytes);
    sl_shard_close(NULL); /* NULL-safe */
}

int main(void)
{
    /* The shard logs every recovery and refused read; SLUICE_TEST_LOG=1 shows
     * them. */
    const char *log = getenv("SLUICE_TEST_LOG");
    sl_log_set_level(log != NULL && log[0] == '1' ? SL_LOG_DEBUG : SL_LOG_OFF);
    char why[512] = "";
    if (sl_ring_probe(why, sizeof(why)) != SL_OK || sl_ring_init(&g_ring, 256) != SL_OK) {
        fprintf(stderr, "io_uring unavailable: %s\n", why);
        return 77;
    }
    RUN(retention_config_range);
    RUN(stats_sane);
    RUN(append_rejects_invalid);
    RUN(append_backpressure);
    RUN(memory_grows_with_traffic);
    RUN(descriptor_budget_parks_and_reopens);
    RUN(new_shard_makes_files_at_first_append);
    RUN(regress_roll_emfile_fences_shard);
    RUN(regress_roll_emfile_fences_shard_interval);
    RUN(roll_emfile_parks_idle_shards);
    RUN(budget_holds_after_a_burst);
    RUN(round_trip_flush_always);
    RUN(round_trip_flush_interval);
    RUN(close_completes_pending_appends);
    RUN(truncated_tail_every_byte);
    RUN(flipped_bit_in_active_tail);
    RUN(flipped_bit_in_sealed_segment);
    RUN(damaged_sealed_index_and_log);
    RUN(read_skips_batch_with_corrupt_record_count);
    RUN(empty_newest_segment_after_crash);
    RUN(segment_roll_by_size);
    RUN(segment_roll_by_age);
    RUN(many_reads_over_open_segments_max);
    RUN(retention_by_time);
    RUN(retention_spread_over_turns);
    RUN(retention_by_bytes);
    RUN(retention_stops_at_the_floor);
    RUN(retention_while_read_in_flight);
    RUN(read_by_time);
    RUN(concurrent_tail_reader);
    RUN(reopen_1000_segments_no_scan);
    RUN(interval_starts_writeback_early);
    RUN(close_does_not_wait_for_the_interval_timer);
    RUN(scan_recent);
    RUN(enospc_tmpfs_flush_always);
    RUN(enospc_tmpfs_flush_interval);
    RUN(enospc_tmpfs_prezero);
    sl_ring_fini(&g_ring);
    TEST_END();
}
