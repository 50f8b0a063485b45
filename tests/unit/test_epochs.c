/* test_epochs.c - the leader-epoch cache and its file (storage/epochs.c).
 *
 * Covers: encode/decode round trips (empty, one, 256 entries); every bit
 * flip and every truncation of a file refused, never served; well-checksummed
 * files that break an invariant (order, negative values, n over the bound,
 * trailing bytes) refused; a newer version named; the cache rules (an epoch
 * with no record replaced, the oldest dropped when full, truncation); save
 * and load through the durable replace; recovery against a real shard: no
 * file (rebuilt from the batch headers, last_led_epoch from the metadata), a
 * file behind the log (extended), ahead of it (entries past the end
 * dropped), damaged (rebuilt), inconsistent with the log (rebuilt), and a
 * log whose epochs decrease (refused); and that SL_EPOCHS_MAX is the
 * replica's SL_REPL_EPOCHS_MAX.
 */
#include "storage/epochs.h"

#include "broker/cluster/repl.h"
#include "common/bytes.h"
#include "common/checksum.h"
#include "common/log.h"

#include "tests/unit/test.h"
#include "tests/unit/log_fx.h"

#include <fcntl.h>
#include <sys/stat.h>

_Static_assert(SL_EPOCHS_MAX == SL_REPL_EPOCHS_MAX, "the file holds the replica's whole cache");
_Static_assert(SL_EPOCHS_NONE == SL_REPL_NONE, "one 'no epoch'");

static void sample(struct sl_epochs *c, uint32_t n)
{
    sl_epochs_init(c);
    c->last_led_epoch = (int32_t)n + 3;
    for (uint32_t i = 0; i < n; i++) {
        sl_epochs_add(c, (int32_t)(2 * i + 1), (int64_t)i * 1000 + 7);
    }
}

static int same(const struct sl_epochs *a, const struct sl_epochs *b)
{
    if (a->n != b->n || a->last_led_epoch != b->last_led_epoch) {
        return 0;
    }
    for (uint32_t i = 0; i < a->n; i++) {
        if (a->e[i].epoch != b->e[i].epoch || a->e[i].start_offset != b->e[i].start_offset) {
            return 0;
        }
    }
    return 1;
}

TEST(round_trip)
{
    static uint8_t buf[SL_EPOCHS_FILE_BYTES_MAX];
    static struct sl_epochs c, d;
    const uint32_t sizes[] = {0, 1, 2, 17, SL_EPOCHS_MAX};
    char why[128];
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        sample(&c, sizes[k]);
        size_t len = sl_epochs_encode(&c, buf, sizeof(buf));
        CHECK_EQ(len, 24 + 12 * sizes[k]);
        CHECK(memcmp(buf, "SLEP", 4) == 0);
        CHECK_EQ(sl_epochs_decode(buf, len, &d, why, sizeof(why)), SL_OK);
        CHECK(same(&c, &d));
    }
    sl_epochs_init(&c);
    size_t len = sl_epochs_encode(&c, buf, sizeof(buf));
    CHECK_EQ(sl_epochs_decode(buf, len, &d, why, sizeof(why)), SL_OK);
    CHECK_EQ(d.last_led_epoch, SL_EPOCHS_NONE);
    CHECK_EQ(d.n, 0);
}

TEST(every_flip_and_cut_refused)
{
    static uint8_t buf[SL_EPOCHS_FILE_BYTES_MAX + 8];
    static struct sl_epochs c, d;
    char why[128];
    sample(&c, 5);
    size_t len = sl_epochs_encode(&c, buf, sizeof(buf));
    for (size_t bit = 0; bit < len * 8; bit++) {
        buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        int rc = sl_epochs_decode(buf, len, &d, why, sizeof(why));
        buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        CHECK(rc == SL_ECORRUPT || rc == SL_EUNSUPPORTED);
        CHECK(why[0] != '\0');
    }
    for (size_t cut = 0; cut < len; cut++) {
        CHECK_EQ(sl_epochs_decode(buf, cut, &d, why, sizeof(why)), SL_ECORRUPT);
    }
    /* a trailing byte */
    buf[len] = 0;
    CHECK_EQ(sl_epochs_decode(buf, len + 1, &d, why, sizeof(why)), SL_ECORRUPT);
}

/* Rewrites the checksum after a hand edit: only the checks of meaning can
 * catch it. */
static void reseal(uint8_t *buf, size_t len)
{
    sl_put_u64(buf + len - 8, sl_checksum64(buf, len - 8));
}

TEST(invariants_checked_under_a_good_checksum)
{
    static uint8_t buf[SL_EPOCHS_FILE_BYTES_MAX + 64];
    static struct sl_epochs c, d;
    char why[128];
    struct {
        size_t off; /* byte to overwrite (4 bytes, little-endian) */
        uint32_t v;
        int want;
    } cases[] = {
        {16, 9, SL_ECORRUPT},               /* epoch 1 -> 9 > next epoch 3 */
        {16 + 12, 1, SL_ECORRUPT},          /* epoch 3 -> 1 == previous */
        {16 + 4, 5000, SL_ECORRUPT},        /* start 7 -> 5000 > next start */
        {16 + 12 + 4, 7, SL_ECORRUPT},      /* start 1007 -> 7 == previous */
        {16, 0x80000000u, SL_ECORRUPT},     /* a negative epoch */
        {16 + 8, 0x80000000u, SL_ECORRUPT}, /* a negative start (high word) */
        {8, 0xfffffffeu, SL_ECORRUPT},      /* last_led_epoch -2 */
        {4, 2, SL_EUNSUPPORTED},            /* a newer version */
        {4, 0, SL_ECORRUPT},
        {0, 0x50454C54u, SL_ECORRUPT}, /* magic */
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        sample(&c, 3);
        size_t len = sl_epochs_encode(&c, buf, sizeof(buf));
        sl_put_u32(buf + cases[k].off, cases[k].v);
        reseal(buf, len);
        int rc = sl_epochs_decode(buf, len, &d, why, sizeof(why));
        if (rc != cases[k].want) {
            fprintf(stderr, "  case %zu: %d (%s)\n", k, rc, why);
        }
        CHECK_EQ(rc, cases[k].want);
    }
    /* n over the bound, with the length to match */
    sample(&c, SL_EPOCHS_MAX);
    size_t len = sl_epochs_encode(&c, buf, sizeof(buf));
    sl_put_u32(buf + 12, SL_EPOCHS_MAX + 1);
    memset(buf + len - 8, 0, 12);
    len += 12;
    reseal(buf, len);
    CHECK_EQ(sl_epochs_decode(buf, len, &d, why, sizeof(why)), SL_ECORRUPT);
    /* n that disagrees with the length */
    sample(&c, 3);
    len = sl_epochs_encode(&c, buf, sizeof(buf));
    sl_put_u32(buf + 12, 2);
    reseal(buf, len);
    CHECK_EQ(sl_epochs_decode(buf, len, &d, why, sizeof(why)), SL_ECORRUPT);
}

TEST(cache_rules)
{
    static struct sl_epochs c;
    sl_epochs_init(&c);
    sl_epochs_add(&c, 0, 0);
    sl_epochs_add(&c, 0, 50); /* the same epoch: nothing */
    CHECK_EQ(c.n, 1);
    sl_epochs_add(&c, 2, 100);
    sl_epochs_add(&c, 3, 100); /* epoch 2 had no record */
    CHECK_EQ(c.n, 2);
    CHECK_EQ(c.e[1].epoch, 3);
    sl_epochs_add(&c, 4, 200);
    sl_epochs_truncate(&c, 200);
    CHECK_EQ(c.n, 2);
    sl_epochs_truncate(&c, 101);
    CHECK_EQ(c.n, 2);
    sl_epochs_truncate(&c, 100);
    CHECK_EQ(c.n, 1);
    sl_epochs_init(&c);
    for (uint32_t i = 0; i < SL_EPOCHS_MAX + 10; i++) {
        sl_epochs_add(&c, (int32_t)i, (int64_t)i * 10);
    }
    CHECK_EQ(c.n, SL_EPOCHS_MAX);
    CHECK_EQ(c.e[0].epoch, 10);
    CHECK_EQ(c.e[SL_EPOCHS_MAX - 1].epoch, SL_EPOCHS_MAX + 9);
}

TEST(save_and_load)
{
    struct lfx f;
    struct sl_shard_config cfg = lfx_cfg_small();
    CHECK_EQ(lfx_init(&f, &cfg), SL_OK);
    static struct sl_epochs c, d;
    char why[128];
    CHECK_EQ(sl_epochs_load(f.dir, &d, why, sizeof(why)), SL_ENOTFOUND);
    sample(&c, 40);
    CHECK_EQ(sl_epochs_save(f.dir, &c), SL_OK);
    CHECK_EQ(sl_epochs_load(f.dir, &d, why, sizeof(why)), SL_OK);
    CHECK(same(&c, &d));
    sample(&c, 2);
    CHECK_EQ(sl_epochs_save(f.dir, &c), SL_OK);
    CHECK_EQ(sl_epochs_load(f.dir, &d, why, sizeof(why)), SL_OK);
    CHECK(same(&c, &d));
    /* a file longer than any valid one is refused without reading it all */
    char path[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/%s", f.dir, SL_EPOCHS_FILE);
    FILE *fp = fopen(path, "ab");
    CHECK(fp != NULL);
    for (int i = 0; i < 10000; i++) {
        fputc(0, fp);
    }
    fclose(fp);
    CHECK_EQ(sl_epochs_load(f.dir, &d, why, sizeof(why)), SL_ECORRUPT);
    lfx_fini(&f);
}

/* A log with epochs 0 x5, 4 x10, 6 x20, 7 x5 over several segments. */
static int epoch_log(struct lfx *f, uint64_t *bases)
{
    for (uint32_t i = 0; i < 40; i++) {
        struct sl_append_opts o = {.leader_epoch = i < 5 ? 0 : i < 15 ? 4 : i < 35 ? 6 : 7};
        int rc = lfx_append(f, i % 3 + 1, &o, &bases[i]);
        if (rc != SL_OK) {
            return rc;
        }
    }
    return SL_OK;
}

static void expect_log_epochs(struct sl_epochs *want, const uint64_t *bases, int32_t led)
{
    sl_epochs_init(want);
    want->last_led_epoch = led;
    sl_epochs_add(want, 0, (int64_t)bases[0]);
    sl_epochs_add(want, 4, (int64_t)bases[5]);
    sl_epochs_add(want, 6, (int64_t)bases[15]);
    sl_epochs_add(want, 7, (int64_t)bases[35]);
}

TEST(recover_against_the_log)
{
    struct lfx f;
    struct sl_shard_config cfg = lfx_cfg_small();
    CHECK_EQ(lfx_init(&f, &cfg), SL_OK);
    uint64_t bases[40];
    CHECK_EQ(epoch_log(&f, bases), SL_OK);
    static struct sl_epochs want, got, file;
    /* no file: from the headers, last_led_epoch from the metadata */
    expect_log_epochs(&want, bases, 9);
    CHECK_EQ(sl_epochs_recover(f.s, f.dir, 9, &got), SL_OK);
    CHECK(same(&want, &got));
    /* behind: only the first two entries; last_led_epoch kept from the file */
    sl_epochs_init(&file);
    file.last_led_epoch = 6;
    sl_epochs_add(&file, 0, (int64_t)bases[0]);
    sl_epochs_add(&file, 4, (int64_t)bases[5]);
    CHECK_EQ(sl_epochs_save(f.dir, &file), SL_OK);
    expect_log_epochs(&want, bases, 6);
    CHECK_EQ(sl_epochs_recover(f.s, f.dir, 9, &got), SL_OK);
    CHECK(same(&want, &got));
    /* ahead: an entry past the log's end goes, one at the end stays (a
     * leader's epoch before its first record) */
    uint64_t end = bases[39] + 39 % 3 + 1;
    file = want;
    sl_epochs_add(&file, 8, (int64_t)end);
    CHECK_EQ(sl_epochs_save(f.dir, &file), SL_OK);
    CHECK_EQ(sl_epochs_recover(f.s, f.dir, 9, &got), SL_OK);
    CHECK(same(&file, &got));
    file = want;
    sl_epochs_add(&file, 8, (int64_t)end + 5);
    sl_epochs_add(&file, 9, (int64_t)end + 50);
    CHECK_EQ(sl_epochs_save(f.dir, &file), SL_OK);
    CHECK_EQ(sl_epochs_recover(f.s, f.dir, 9, &got), SL_OK);
    CHECK(same(&want, &got));
    /* damaged: rebuilt, never served */
    char path[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/%s", f.dir, SL_EPOCHS_FILE);
    int fd = open(path, O_WRONLY);
    CHECK(fd >= 0);
    CHECK(pwrite(fd, "X", 1, 20) == 1);
    close(fd);
    expect_log_epochs(&want, bases, 11);
    CHECK_EQ(sl_epochs_recover(f.s, f.dir, 11, &got), SL_OK);
    CHECK(same(&want, &got));
    /* inconsistent: its last epoch (8) starts where the log says 6 */
    sl_epochs_init(&file);
    file.last_led_epoch = 8;
    sl_epochs_add(&file, 8, (int64_t)bases[20]);
    CHECK_EQ(sl_epochs_save(f.dir, &file), SL_OK);
    CHECK_EQ(sl_epochs_recover(f.s, f.dir, 11, &got), SL_OK);
    CHECK(same(&want, &got));
    /* after a truncate the recovered cache follows the log */
    CHECK_EQ(lfx_truncate(&f, bases[15], NULL), SL_OK);
    unlink(path);
    CHECK_EQ(sl_epochs_recover(f.s, f.dir, 11, &got), SL_OK);
    CHECK_EQ(got.n, 2);
    CHECK_EQ(got.e[1].epoch, 4);
    /* a log whose epochs go back is refused */
    struct sl_append_opts o = {.leader_epoch = 2};
    CHECK_EQ(lfx_append(&f, 1, &o, NULL), SL_OK);
    CHECK_EQ(sl_epochs_recover(f.s, f.dir, 11, &got), SL_ECORRUPT);
    lfx_fini(&f);
}

TEST(recover_an_empty_log)
{
    struct lfx f;
    struct sl_shard_config cfg = lfx_cfg_small();
    CHECK_EQ(lfx_init(&f, &cfg), SL_OK);
    static struct sl_epochs got;
    CHECK_EQ(sl_epochs_recover(f.s, f.dir, SL_EPOCHS_NONE, &got), SL_OK);
    CHECK_EQ(got.n, 0);
    CHECK_EQ(got.last_led_epoch, SL_EPOCHS_NONE);
    lfx_fini(&f);
}

int main(void)
{
    if (getenv("SLUICE_TEST_LOG") == NULL) {
        sl_log_set_level(SL_LOG_OFF);
    }
    RUN(round_trip);
    RUN(every_flip_and_cut_refused);
    RUN(invariants_checked_under_a_good_checksum);
    RUN(cache_rules);
    RUN(save_and_load);
    RUN(recover_against_the_log);
    RUN(recover_an_empty_log);
    TEST_END();
}
