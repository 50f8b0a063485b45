/* test_common.c - unit tests for common/: errors, checksums, compression,
 * clocks and the io_uring loop wrapper.
 *
 * Covers: sl_strerror/sl_errname for every code (and out-of-range values);
 * the stable numbering of enum sl_err; sl_err_from_errno's documented
 * mapping (EMFILE/ENFILE -> SL_ELIMIT) and sl_nofile_why's message at the descriptor
 * limit; XXH3-64 stability against values computed with `xxhsum -H3`;
 * zstd round trips and the bomb safety of sl_decompress (declared size above
 * dst_cap, size mismatches, trailing bytes, frames without a content size,
 * truncated frames); the fake and real clocks; sl_ring_probe, a write + fsync
 * + read round trip on a temporary file, -errno results, a timeout,
 * sl_ring_defer ordering and sl_ring_run_until.
 */
#include "common/checksum.h"
#include "common/clock.h"
#include "common/compress.h"
#include "common/error.h"
#include "common/fileio.h"
#include "common/ring.h"
#include "common/url.h"

#include "tests/unit/test.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/resource.h>
#include <unistd.h>

/* Deterministic PRNG (splitmix64) so failures reproduce. */
static uint64_t rng_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void fill_random(uint8_t *p, size_t n, uint64_t seed)
{
    uint64_t st = seed;
    for (size_t i = 0; i < n; i++) {
        p[i] = (uint8_t)rng_next(&st);
    }
}

/* ---- errors ------------------------------------------------------------ */

static const char *const expected_names[SL_ERR_COUNT_] = {
    "SL_OK",     "SL_EAGAIN",    "SL_ECORRUPT", "SL_ENOSPC",       "SL_EPROTO", "SL_ETOOBIG",
    "SL_ELIMIT", "SL_ENOTFOUND", "SL_ETRIMMED", "SL_EFATAL",       "SL_EIO",    "SL_EINVAL",
    "SL_ENOMEM", "SL_EEXIST",    "SL_ECLOSED",  "SL_EUNSUPPORTED", "SL_ESYS", "SL_EAUTH", "SL_EDENIED",
    "SL_EFENCED", "SL_ESHARD_CLOSED", "SL_ECONFLICT", "SL_ENOT_LEADER", "SL_ENOT_ENOUGH_REPLICAS",
};

TEST(error_codes_are_stable)
{
    /* The values travel on the wire: renumbering one breaks peers. */
    CHECK_EQ(SL_OK, 0);
    CHECK_EQ(SL_EAGAIN, 1);
    CHECK_EQ(SL_ECORRUPT, 2);
    CHECK_EQ(SL_ENOSPC, 3);
    CHECK_EQ(SL_EPROTO, 4);
    CHECK_EQ(SL_ETOOBIG, 5);
    CHECK_EQ(SL_ELIMIT, 6);
    CHECK_EQ(SL_ENOTFOUND, 7);
    CHECK_EQ(SL_ETRIMMED, 8);
    CHECK_EQ(SL_EFATAL, 9);
    CHECK_EQ(SL_EIO, 10);
    CHECK_EQ(SL_EINVAL, 11);
    CHECK_EQ(SL_ENOMEM, 12);
    CHECK_EQ(SL_EEXIST, 13);
    CHECK_EQ(SL_ECLOSED, 14);
    CHECK_EQ(SL_EUNSUPPORTED, 15);
    CHECK_EQ(SL_ESYS, 16);
    CHECK_EQ(SL_EAUTH, 17);
    CHECK_EQ(SL_EDENIED, 18);
    CHECK_EQ(SL_EFENCED, 19);
    CHECK_EQ(SL_ESHARD_CLOSED, 20);
    CHECK_EQ(SL_ECONFLICT, 21);
    CHECK_EQ(SL_ENOT_LEADER, 22);
    CHECK_EQ(SL_ENOT_ENOUGH_REPLICAS, 23);
    CHECK_EQ(SL_ERR_COUNT_, 24);
}

TEST(strerror_and_errname_every_code)
{
    for (int e = 0; e < SL_ERR_COUNT_; e++) {
        const char *msg = sl_strerror(e);
        const char *name = sl_errname(e);
        CHECK(msg != NULL);
        CHECK(name != NULL);
        CHECK(strlen(msg) > 0);
        CHECK(strcmp(name, expected_names[e]) == 0);
        /* Every code has its own message and name. */
        for (int o = 0; o < e; o++) {
            CHECK(strcmp(msg, sl_strerror(o)) != 0);
            CHECK(strcmp(name, sl_errname(o)) != 0);
        }
    }
    /* Out of range: never NULL, and not mistaken for a real code. */
    const int bad[] = {-1, SL_ERR_COUNT_, 1000, -1000};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *msg = sl_strerror(bad[i]);
        const char *name = sl_errname(bad[i]);
        CHECK(msg != NULL);
        CHECK(name != NULL);
        for (int e = 0; e < SL_ERR_COUNT_; e++) {
            CHECK(strcmp(msg, sl_strerror(e)) != 0);
            CHECK(strcmp(name, sl_errname(e)) != 0);
        }
    }
}

TEST(err_from_errno_mapping)
{
    /* The mapping documented in error.h. */
    CHECK_EQ(sl_err_from_errno(ENOSPC), SL_ENOSPC);
    CHECK_EQ(sl_err_from_errno(EDQUOT), SL_ENOSPC);
    CHECK_EQ(sl_err_from_errno(EIO), SL_EIO);
    CHECK_EQ(sl_err_from_errno(ENOMEM), SL_ENOMEM);
    CHECK_EQ(sl_err_from_errno(ENOENT), SL_ENOTFOUND);
    CHECK_EQ(sl_err_from_errno(EEXIST), SL_EEXIST);
    CHECK_EQ(sl_err_from_errno(EINVAL), SL_EINVAL);
    CHECK_EQ(sl_err_from_errno(EAGAIN), SL_EAGAIN);
    CHECK_EQ(sl_err_from_errno(EWOULDBLOCK), SL_EAGAIN);
    CHECK_EQ(sl_err_from_errno(EMFILE), SL_ELIMIT); /* out of descriptors */
    CHECK_EQ(sl_err_from_errno(ENFILE), SL_ELIMIT);
    /* "others -> SL_ESYS" */
    const int others[] = {EPERM, EBADF, EACCES, EBUSY, EROFS, EISDIR, EFAULT};
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
        if (sl_err_from_errno(others[i]) != SL_ESYS) {
            fprintf(stderr, "  errno %d (%s) -> %s\n", others[i], strerror(others[i]),
                    sl_errname(sl_err_from_errno(others[i])));
        }
        CHECK_EQ(sl_err_from_errno(others[i]), SL_ESYS);
    }
}

/* Out of descriptors, the message counts them and names the limit and the fix - also
 * when not even /proc/self/fd can be opened. */
TEST(nofile_why_names_count_limit_and_fix)
{
    struct rlimit old;
    CHECK(getrlimit(RLIMIT_NOFILE, &old) == 0);
    struct rlimit low = old;
    low.rlim_cur = 64;
    CHECK(setrlimit(RLIMIT_NOFILE, &low) == 0);
    int fds[64];
    int n = 0;
    while (n < 64 && (fds[n] = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0) {
        n++;
    }
    int err = errno;
    char why[160];
    sl_nofile_why(why, sizeof(why));
    for (int i = 0; i < n; i++) {
        close(fds[i]);
    }
    char half[160];
    sl_nofile_why(half, sizeof(half));
    CHECK(setrlimit(RLIMIT_NOFILE, &old) == 0);
    fprintf(stderr, "  at the limit: %s\n  below it:     %s\n", why, half);
    CHECK_EQ(err, EMFILE);
    CHECK_EQ(sl_err_from_errno(err), SL_ELIMIT);
    CHECK(strcmp(why, "too many open files (64 open, limit 64): raise LimitNOFILE or lower "
                      "open_files_max") == 0);
    CHECK(strstr(half, "open, limit 64): raise LimitNOFILE or lower open_files_max") != NULL);
    CHECK(strncmp(half, "too many open files (64 open", 28) != 0);
}

/* ---- checksums --------------------------------------------------------- */

/* Expected values computed with xxhash's CLI (`xxhsum -H3`, xxHash 0.8):
 *   printf '' | xxhsum -H3                                   -> 2d06800538d394c2
 *   printf 'The quick brown fox jumps over the lazy dog' | xxhsum -H3
 *                                                            -> ce7d19a5418fb365
 *   bytes 0..199                                             -> f42a8864feaf0703
 *   1000 bytes, byte i = (i * 31 + 7) & 0xff                 -> 989765d0ea7a5ecd
 * The last two exercise XXH3's 129..240 byte and long-input paths. */
TEST(checksum_xxh3_known_values)
{
    CHECK(sl_checksum64("", 0) == 0x2d06800538d394c2ull);
    const char *fox = "The quick brown fox jumps over the lazy dog";
    CHECK(sl_checksum64(fox, strlen(fox)) == 0xce7d19a5418fb365ull);
    uint8_t buf[1000];
    for (int i = 0; i < 200; i++) {
        buf[i] = (uint8_t)i;
    }
    CHECK(sl_checksum64(buf, 200) == 0xf42a8864feaf0703ull);
    for (int i = 0; i < 1000; i++) {
        buf[i] = (uint8_t)((i * 31 + 7) & 0xff);
    }
    CHECK(sl_checksum64(buf, 1000) == 0x989765d0ea7a5ecdull);
    CHECK(sl_checksum32(buf, 1000) == 0xea7a5ecdu);
    CHECK(sl_checksum32(fox, strlen(fox)) == (uint32_t)0xce7d19a5418fb365ull);
}

TEST(checksum_sensitive_to_every_bit)
{
    uint8_t buf[64];
    fill_random(buf, sizeof(buf), 7);
    uint64_t base = sl_checksum64(buf, sizeof(buf));
    for (size_t i = 0; i < sizeof(buf) * 8; i++) {
        buf[i / 8] ^= (uint8_t)(1u << (i % 8));
        CHECK(sl_checksum64(buf, sizeof(buf)) != base);
        buf[i / 8] ^= (uint8_t)(1u << (i % 8));
    }
    CHECK(sl_checksum64(buf, sizeof(buf)) == base);
    /* Length is part of the input. */
    CHECK(sl_checksum64(buf, sizeof(buf) - 1) != base);
}

/* ---- compression ------------------------------------------------------- */

/* Compresses `src` and returns a malloc'd frame in *frame / *frame_len. */
static void compress_alloc(struct sl_zctx *z, const void *src, size_t n, uint8_t **frame,
                           size_t *frame_len)
{
    size_t cap = sl_compress_bound(n);
    *frame = malloc(cap);
    CHECK(*frame != NULL);
    CHECK_EQ(sl_compress(z, 3, *frame, cap, frame_len, src, n), SL_OK);
    CHECK(*frame_len > 0 && *frame_len <= cap);
}

TEST(zstd_round_trip)
{
    struct sl_zctx *z = sl_zctx_new();
    CHECK(z != NULL);
    const size_t sizes[] = {1, 2, 100, 4096, 65537, 1u << 20};
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        size_t n = sizes[k];
        for (int pattern = 0; pattern < 2; pattern++) {
            uint8_t *src = malloc(n);
            uint8_t *out = malloc(n);
            CHECK(src != NULL && out != NULL);
            if (pattern == 0) {
                fill_random(src, n, 1000 + n);
            } else {
                for (size_t i = 0; i < n; i++) {
                    src[i] = (uint8_t) "sluice log broker "[i % 18];
                }
            }
            uint8_t *frame = NULL;
            size_t flen = 0;
            compress_alloc(z, src, n, &frame, &flen);
            if (test_cur_failed_) {
                free(src);
                free(out);
                free(frame);
                sl_zctx_free(z);
                return;
            }
            if (pattern == 1 && n >= 4096) {
                CHECK(flen < n / 10); /* repetitive input really compresses */
            }
            memset(out, 0, n);
            /* dst exactly the content size: allowed. ASan catches overruns. */
            int rc = sl_decompress(z, out, n, n, frame, flen);
            int same = memcmp(src, out, n) == 0;
            free(src);
            free(out);
            free(frame);
            if (rc != SL_OK || !same) {
                sl_zctx_free(z);
            }
            CHECK_EQ(rc, SL_OK);
            CHECK(same);
        }
    }
    sl_zctx_free(z);
    sl_zctx_free(NULL); /* NULL-safe */
}

TEST(zstd_compress_errors)
{
    struct sl_zctx *z = sl_zctx_new();
    CHECK(z != NULL);
    uint8_t src[4096], dst[64];
    fill_random(src, sizeof(src), 3);
    size_t len = 0;
    int small = sl_compress(z, 3, dst, sizeof(dst), &len, src, sizeof(src));
    int level0 = sl_compress(z, 0, dst, sizeof(dst), &len, src, 1);
    int level_neg = sl_compress(z, -1, dst, sizeof(dst), &len, src, 1);
    int level_big = sl_compress(z, 1000, dst, sizeof(dst), &len, src, 1);
    int level1 = sl_compress(z, 1, dst, sizeof(dst), &len, "a", 1);
    int level19 = sl_compress(z, 19, dst, sizeof(dst), &len, "a", 1);
    sl_zctx_free(z);
    CHECK_EQ(small, SL_ETOOBIG);
    CHECK_EQ(level0, SL_EINVAL);
    CHECK_EQ(level_neg, SL_EINVAL);
    CHECK_EQ(level_big, SL_EINVAL);
    CHECK_EQ(level1, SL_OK);
    CHECK_EQ(level19, SL_OK);
}

/* A small frame (1 MiB of zeros compresses to a few dozen bytes) declaring
 * more than dst_cap must be refused before anything is written past dst_cap. */
TEST(zstd_bomb_declared_size_over_cap)
{
    const size_t n = 1u << 20;
    const size_t cap = 4096;
    struct sl_zctx *z = sl_zctx_new();
    uint8_t *src = calloc(1, n);
    uint8_t *dst = malloc(2 * cap);
    CHECK(z != NULL && src != NULL && dst != NULL);
    uint8_t *frame = NULL;
    size_t flen = 0;
    compress_alloc(z, src, n, &frame, &flen);
    int rc = -1, canary_ok = 0, small_frame = flen < 1024;
    if (!test_cur_failed_) {
        memset(dst, 0xA5, 2 * cap);
        rc = sl_decompress(z, dst, cap, n, frame, flen);
        canary_ok = 1;
        for (size_t i = cap; i < 2 * cap; i++) {
            canary_ok &= dst[i] == 0xA5;
        }
    }
    free(frame);
    free(src);
    free(dst);
    sl_zctx_free(z);
    if (test_cur_failed_) {
        return;
    }
    CHECK(small_frame);
    CHECK_EQ(rc, SL_ETOOBIG);
    CHECK(canary_ok);
}

TEST(zstd_decompress_rejects_malformed)
{
    struct sl_zctx *z = sl_zctx_new();
    CHECK(z != NULL);
    const size_t n = 5000;
    uint8_t src[5000], out[6000];
    for (size_t i = 0; i < n; i++) {
        src[i] = (uint8_t)(i % 7);
    }
    uint8_t *frame = NULL;
    size_t flen = 0;
    compress_alloc(z, src, n, &frame, &flen);
    if (test_cur_failed_) {
        free(frame);
        sl_zctx_free(z);
        return;
    }
    uint8_t *big = malloc(2 * flen + 16);
    CHECK(big != NULL);
    int r_ok = sl_decompress(z, out, sizeof(out), n, frame, flen);
    int ok_same = memcmp(out, src, n) == 0;
    /* expect_len differs from the declared content size */
    int r_less = sl_decompress(z, out, sizeof(out), n - 1, frame, flen);
    int r_more = sl_decompress(z, out, sizeof(out), n + 1, frame, flen);
    /* trailing garbage after the frame */
    memcpy(big, frame, flen);
    big[flen] = 0x42;
    int r_trail = sl_decompress(z, out, sizeof(out), n, big, flen + 1);
    /* two frames back to back: "exactly one frame" */
    memcpy(big + flen, frame, flen);
    int r_two = sl_decompress(z, out, sizeof(out), n, big, 2 * flen);
    /* truncated frame */
    int r_trunc = sl_decompress(z, out, sizeof(out), n, frame, flen - 1);
    int r_empty = sl_decompress(z, out, sizeof(out), n, frame, 0);
    /* not a frame at all */
    uint8_t junk[64];
    fill_random(junk, sizeof(junk), 11);
    int r_junk = sl_decompress(z, out, sizeof(out), n, junk, sizeof(junk));
    /* a valid frame (checked with `zstd -d`) that does not declare its
     * content size: magic, FHD 0x00, window byte, one raw last block "abc" */
    static const uint8_t no_fcs[] = {0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x00,
                                     0x19, 0x00, 0x00, 'a',  'b',  'c'};
    int r_nofcs = sl_decompress(z, out, sizeof(out), 3, no_fcs, sizeof(no_fcs));
    /* a corrupted block inside a frame with a correct header */
    memcpy(big, frame, flen);
    big[flen - 3] ^= 0xff;
    big[flen / 2] ^= 0x5a;
    int r_body = sl_decompress(z, out, sizeof(out), n, big, flen);
    free(big);
    free(frame);
    sl_zctx_free(z);
    CHECK_EQ(r_ok, SL_OK);
    CHECK(ok_same);
    CHECK_EQ(r_less, SL_ECORRUPT);
    CHECK_EQ(r_more, SL_ECORRUPT);
    CHECK_EQ(r_trail, SL_ECORRUPT);
    CHECK_EQ(r_two, SL_ECORRUPT);
    CHECK_EQ(r_trunc, SL_ECORRUPT);
    CHECK_EQ(r_empty, SL_ECORRUPT);
    CHECK_EQ(r_junk, SL_ECORRUPT);
    CHECK_EQ(r_nofcs, SL_ECORRUPT);
    CHECK(r_body != SL_OK);
}

/* ---- clocks ------------------------------------------------------------ */

TEST(fake_clock)
{
    struct sl_clock c;
    sl_clock_fake_init(&c, 1000);
    CHECK(sl_clock_now_ms(&c) == 1000);
    CHECK(sl_clock_now_ms(&c) == 1000); /* does not move by itself */
    sl_clock_fake_advance(&c, 5);
    CHECK(sl_clock_now_ms(&c) == 1005);
    sl_clock_fake_advance(&c, 0);
    CHECK(sl_clock_now_ms(&c) == 1005);
    sl_clock_fake_set(&c, 42);
    CHECK(sl_clock_now_ms(&c) == 42);
    sl_clock_fake_set(&c, 8760ull * 3600 * 1000 * 50);
    sl_clock_fake_advance(&c, 1);
    CHECK(sl_clock_now_ms(&c) == 8760ull * 3600 * 1000 * 50 + 1);
}

TEST(real_clocks)
{
    uint64_t w0 = sl_clock_wall_ms();
    uint64_t r = sl_clock_now_ms(&sl_clock_real);
    uint64_t w1 = sl_clock_wall_ms();
    CHECK(w0 <= r && r <= w1);
    CHECK(w0 > 1600000000000ull); /* after 2020: really milliseconds since the epoch */
    uint64_t m0 = sl_clock_mono_ns();
    usleep(2000);
    uint64_t m1 = sl_clock_mono_ns();
    CHECK(m1 >= m0 + 1000000u); /* nanoseconds: 2 ms passed */
}

/* ---- ring -------------------------------------------------------------- */

struct io_probe {
    struct sl_io_op op;
    int done;
    int res;
    int calls;
};

static void io_probe_cb(struct sl_io_op *op, int res)
{
    struct io_probe *p = sl_container_of(op, struct io_probe, op);
    p->done = 1;
    p->res = res;
    p->calls++;
}

static void io_probe_init(struct io_probe *p)
{
    memset(p, 0, sizeof(*p));
    p->op.cb = io_probe_cb;
}

TEST(ring_probe_ok)
{
    char why[512] = "";
    int rc = sl_ring_probe(why, sizeof(why));
    if (rc != SL_OK) {
        fprintf(stderr, "  probe: %s\n", why);
    }
    CHECK_EQ(rc, SL_OK);
}

TEST(ring_write_fsync_read_round_trip)
{
    char path[] = "/var/tmp/sl_test_ring_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    unlink(path);
    struct sl_ring ring;
    int rc = sl_ring_init(&ring, 8);
    if (rc != SL_OK) {
        close(fd);
    }
    CHECK_EQ(rc, SL_OK);
    CHECK_EQ(ring.inflight, 0);

    uint8_t data[10000], back[10000];
    fill_random(data, sizeof(data), 99);
    struct io_probe w, s, r, eof, bad;
    io_probe_init(&w);
    sl_ring_write(&ring, &w.op, fd, data, sizeof(data), 4096);
    int inflight_after_queue = (int)ring.inflight;
    int until_w = sl_ring_run_until(&ring, &w.done);
    io_probe_init(&s);
    sl_ring_fsync(&ring, &s.op, fd, 1);
    int until_s = sl_ring_run_until(&ring, &s.done);
    io_probe_init(&r);
    memset(back, 0, sizeof(back));
    sl_ring_read(&ring, &r.op, fd, back, sizeof(back), 4096);
    int until_r = sl_ring_run_until(&ring, &r.done);
    /* A read past the end returns 0 bytes. */
    io_probe_init(&eof);
    sl_ring_read(&ring, &eof.op, fd, back, 16, 1u << 20);
    int until_eof = sl_ring_run_until(&ring, &eof.done);
    /* -errno is delivered as is. */
    io_probe_init(&bad);
    sl_ring_write(&ring, &bad.op, -1, data, 16, 0);
    int until_bad = sl_ring_run_until(&ring, &bad.done);
    /* Nothing in flight: run_until stops with SL_EAGAIN. */
    int never = 0;
    int until_idle = sl_ring_run_until(&ring, &never);
    uint32_t inflight_end = ring.inflight;
    off_t size = lseek(fd, 0, SEEK_END);
    close(fd);
    sl_ring_fini(&ring);
    sl_ring_fini(&ring); /* idempotent */

    CHECK_EQ(inflight_after_queue, 1);
    CHECK_EQ(until_w, SL_OK);
    CHECK_EQ(w.res, (int)sizeof(data));
    CHECK_EQ(w.calls, 1);
    CHECK_EQ(until_s, SL_OK);
    CHECK_EQ(s.res, 0);
    CHECK_EQ(until_r, SL_OK);
    CHECK_EQ(r.res, (int)sizeof(data));
    CHECK(memcmp(data, back, sizeof(data)) == 0);
    CHECK_EQ(size, 4096 + (off_t)sizeof(data));
    CHECK_EQ(until_eof, SL_OK);
    CHECK_EQ(eof.res, 0);
    CHECK_EQ(until_bad, SL_OK);
    CHECK_EQ(bad.res, -EBADF);
    CHECK_EQ(until_idle, SL_EAGAIN);
    CHECK_EQ(inflight_end, 0);
}

TEST(ring_many_ops_more_than_entries)
{
    /* More ops than submission slots: queueing never fails. */
    char path[] = "/var/tmp/sl_test_ring_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    unlink(path);
    struct sl_ring ring;
    CHECK_EQ(sl_ring_init(&ring, 4), SL_OK);
    enum { N = 64 };
    static struct io_probe ops[N];
    static uint8_t blocks[N][512];
    for (int i = 0; i < N; i++) {
        memset(blocks[i], i, sizeof(blocks[i]));
        io_probe_init(&ops[i]);
        sl_ring_write(&ring, &ops[i].op, fd, blocks[i], sizeof(blocks[i]), (uint64_t)i * 512);
    }
    while (ring.inflight > 0) {
        sl_ring_run(&ring, 1, 0);
    }
    int ok = 1;
    for (int i = 0; i < N; i++) {
        ok &= ops[i].calls == 1 && ops[i].res == 512;
    }
    uint8_t back[512];
    ssize_t got = pread(fd, back, sizeof(back), 37 * 512);
    close(fd);
    sl_ring_fini(&ring);
    CHECK(ok);
    CHECK_EQ(got, 512);
    CHECK(back[0] == 37 && back[511] == 37);
}

TEST(ring_timeout)
{
    struct sl_ring ring;
    CHECK_EQ(sl_ring_init(&ring, 8), SL_OK);
    struct io_probe t;
    io_probe_init(&t);
    uint64_t t0 = sl_clock_mono_ns();
    sl_ring_timeout(&ring, &t.op, 20u * 1000 * 1000);
    /* A bounded wait with nothing ready returns without running callbacks. */
    int ran_early = sl_ring_run(&ring, 1, 1000u * 1000);
    int done_early = t.done;
    int until = sl_ring_run_until(&ring, &t.done);
    uint64_t elapsed = sl_clock_mono_ns() - t0;
    sl_ring_fini(&ring);
    CHECK_EQ(ran_early, 0);
    CHECK_EQ(done_early, 0);
    CHECK_EQ(until, SL_OK);
    CHECK_EQ(t.res, -ETIME);
    CHECK_EQ(t.calls, 1);
    CHECK(elapsed >= 15u * 1000 * 1000);
    CHECK(elapsed < 2000u * 1000 * 1000);
}

struct order_log {
    int seen[16];
    int n;
};

struct order_item {
    struct sl_deferred d;
    int id;
    struct order_log *log;
    struct sl_ring *ring;
    struct order_item *chain; /* deferred from inside fn */
};

static void order_fn(struct sl_deferred *d)
{
    struct order_item *it = sl_container_of(d, struct order_item, d);
    if (it->log->n < 16) {
        it->log->seen[it->log->n++] = it->id;
    }
    if (it->chain != NULL) {
        sl_ring_defer(it->ring, &it->chain->d);
    }
}

TEST(ring_defer_order)
{
    struct sl_ring ring;
    CHECK_EQ(sl_ring_init(&ring, 8), SL_OK);
    struct order_log log;
    memset(&log, 0, sizeof(log));
    struct order_item items[4];
    memset(items, 0, sizeof(items));
    for (int i = 0; i < 4; i++) {
        items[i].d.fn = order_fn;
        items[i].id = i;
        items[i].log = &log;
        items[i].ring = &ring;
    }
    items[0].chain = &items[3]; /* deferred while running: same tick, after the others */
    sl_ring_defer(&ring, &items[2].d);
    sl_ring_defer(&ring, &items[0].d);
    sl_ring_defer(&ring, &items[1].d);
    sl_ring_defer(&ring, &items[2].d); /* queued twice: no-op */
    int queued2 = items[2].d.queued;
    int before = log.n; /* nothing runs at queue time */
    sl_ring_run(&ring, 0, 0);
    int after_first = log.n;
    int flags_clear =
        !items[0].d.queued && !items[1].d.queued && !items[2].d.queued && !items[3].d.queued;
    /* Requeue after running: runs again on the next tick. */
    items[0].chain = NULL;
    sl_ring_defer(&ring, &items[0].d);
    sl_ring_run(&ring, 0, 0);
    sl_ring_run(&ring, 0, 0); /* an empty tick runs nothing */
    sl_ring_fini(&ring);
    CHECK(queued2);
    CHECK_EQ(before, 0);
    CHECK_EQ(after_first, 4);
    CHECK_EQ(log.seen[0], 2);
    CHECK_EQ(log.seen[1], 0);
    CHECK_EQ(log.seen[2], 1);
    CHECK_EQ(log.seen[3], 3);
    CHECK(flags_clear);
    CHECK_EQ(log.n, 5);
    CHECK_EQ(log.seen[4], 0);
}

/* Deferred work runs before the submit of the same tick, so an op queued by
 * deferred work is submitted and completed by sl_ring_run_until. */
struct defer_write {
    struct sl_deferred d;
    struct io_probe io;
    struct sl_ring *ring;
    int fd;
};

static void defer_write_fn(struct sl_deferred *d)
{
    struct defer_write *w = sl_container_of(d, struct defer_write, d);
    sl_ring_write(w->ring, &w->io.op, w->fd, "deferred", 8, 0);
}

TEST(ring_defer_then_submit)
{
    char path[] = "/var/tmp/sl_test_ring_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    unlink(path);
    struct sl_ring ring;
    CHECK_EQ(sl_ring_init(&ring, 8), SL_OK);
    struct defer_write w;
    memset(&w, 0, sizeof(w));
    w.d.fn = defer_write_fn;
    io_probe_init(&w.io);
    w.ring = &ring;
    w.fd = fd;
    sl_ring_defer(&ring, &w.d);
    int rc = sl_ring_run_until(&ring, &w.io.done);
    char back[8] = {0};
    ssize_t got = pread(fd, back, 8, 0);
    close(fd);
    sl_ring_fini(&ring);
    CHECK_EQ(rc, SL_OK);
    CHECK_EQ(w.io.res, 8);
    CHECK_EQ(got, 8);
    CHECK(memcmp(back, "deferred", 8) == 0);
}

/* sl_file_replace: the parts in order, the old file replaced whole; a step
 * named when a call fails. */
TEST(file_replace_parts_and_step)
{
    char dir[] = "/tmp/sl_replace_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char sub[128], tmp[160], path[160];
    snprintf(sub, sizeof(sub), "%s/a/b", dir);
    snprintf(tmp, sizeof(tmp), "%s/f.tmp", sub);
    snprintf(path, sizeof(path), "%s/f", sub);
    const char *step = NULL;
    CHECK_EQ(sl_file_replace(sub, tmp, path, (const void *const[]){"old contents"},
                             (const size_t[]){12}, 1, &step),
             SL_OK);
    CHECK_EQ(sl_file_replace(sub, tmp, path, (const void *const[]){"head\n", "body"},
                             (const size_t[]){5, 4}, 2, &step),
             SL_OK);
    char got[32] = {0};
    int fd = open(path, O_RDONLY);
    CHECK(fd >= 0);
    CHECK_EQ(read(fd, got, sizeof(got)), 9);
    close(fd);
    CHECK(strcmp(got, "head\nbody") == 0);
    CHECK(access(tmp, F_OK) != 0); /* renamed away */
    /* the directory is a file: nothing can be made under it */
    char bad[200], badtmp[220], badpath[220];
    snprintf(bad, sizeof(bad), "%s/sub", path);
    snprintf(badtmp, sizeof(badtmp), "%s/x.tmp", bad);
    snprintf(badpath, sizeof(badpath), "%s/x", bad);
    CHECK(sl_file_replace(bad, badtmp, badpath, (const void *const[]){"x"}, (const size_t[]){1},
                          1, &step) != SL_OK);
    CHECK(strcmp(step, "create the directory of") == 0);
    unlink(path);
    rmdir(sub);
    snprintf(sub, sizeof(sub), "%s/a", dir);
    rmdir(sub);
    rmdir(dir);
}

/* What may be a secret never survives; the destination stays recognisable;
 * a short buffer cuts, never overruns. */
TEST(url_redact_hides_userinfo_query_and_fragment)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"https://hooks.example.com/a/b", "https://hooks.example.com/a/b"},
        {"http://u:pw@127.0.0.1:8080/hook?token=x", "http://***@127.0.0.1:8080/hook?***"},
        {"https://h/p#frag", "https://h/p?***"},
        {"https://user@h", "https://***@h"},
        {"https://u:p@ss@h/x", "https://***@h/x"}, /* an unescaped '@' in a password */
        {"https://h?q=1@x", "https://h?***"}, /* an '@' in the query is not userinfo */
        {"https://h/a@b", "https://h/a@b"},   /* nor one in the path */
        {"stream:orders", "stream:orders"},
        {"", ""},
    };
    char out[128];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        sl_url_redact(cases[i].in, out, sizeof(out));
        CHECK(strcmp(out, cases[i].out) == 0);
    }
    char tiny[8];
    sl_url_redact("http://u:pw@host/path", tiny, sizeof(tiny));
    CHECK(strcmp(tiny, "http://") == 0);
}

int main(void)
{
    RUN(error_codes_are_stable);
    RUN(strerror_and_errname_every_code);
    RUN(err_from_errno_mapping);
    RUN(nofile_why_names_count_limit_and_fix);
    RUN(checksum_xxh3_known_values);
    RUN(checksum_sensitive_to_every_bit);
    RUN(zstd_round_trip);
    RUN(zstd_compress_errors);
    RUN(zstd_bomb_declared_size_over_cap);
    RUN(zstd_decompress_rejects_malformed);
    RUN(fake_clock);
    RUN(real_clocks);
    RUN(ring_probe_ok);
    RUN(ring_write_fsync_read_round_trip);
    RUN(ring_many_ops_more_than_entries);
    RUN(ring_timeout);
    RUN(ring_defer_order);
    RUN(ring_defer_then_submit);
    RUN(file_replace_parts_and_step);
    RUN(url_redact_hides_userinfo_query_and_fragment);
    TEST_END();
}
