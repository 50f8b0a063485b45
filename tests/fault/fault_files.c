/* fault_files.c - failures of the synchronous file calls (create, rename).
 *
 * Covers (issue #6 suite 3, the calls the ring's fault layer cannot reach;
 * common/fileio.h sl_file_faults_arm):
 *   - shard: the Nth file creation (segment .log/.idx at a roll) fails with
 *     EIO or ENOSPC, N swept over a workload with ~8 rolls: no batch is
 *     acknowledged after the failure unless it is durable, the shard says
 *     SL_EFATAL (with fatal_what), and after a reopen (disarmed) every
 *     acknowledged batch is there with its exact bytes, sequences contiguous,
 *     and appends work again;
 *   - shard: the Nth creation fails with EMFILE (out of descriptors): not
 *     fatal - the batches waiting for the segment fail with SL_ELIMIT, the
 *     sequence has no hole, later appends create the files and go in;
 *   - checkpoint store with a tiny compaction threshold: the Nth rename (the
 *     snapshot install) fails: commits keep being confirmed (the log stays),
 *     and after a reopen every key holds its last confirmed value or a later
 *     committed one.
 */
#include "../unit/test.h"

#include "common/error.h"
#include "common/fileio.h"
#include "common/log.h"
#include "common/ring.h"
#include "storage/batch.h"
#include "storage/checkpoint.h"
#include "storage/shard.h"

#include <errno.h>
#include <stdbool.h>
#include <inttypes.h>
#include <stdint.h>
#include <unistd.h>

#define BATCHES 64u

/* Calls a void helper that may fail the case, and stops the caller if it did. */
#define DO(call)                                                                                   \
    do {                                                                                           \
        call;                                                                                      \
        if (test_cur_failed_) {                                                                    \
            return;                                                                                \
        }                                                                                          \
    } while (0)

static struct sl_ring ring;

struct app {
    int done;
    int err;
    uint64_t base;
};

static void on_ack(void *ctx, int err, uint64_t base, uint32_t n)
{
    (void)n;
    struct app *a = ctx;
    a->done = 1;
    a->err = err;
    a->base = base;
}

static size_t make_batch(uint32_t i, uint8_t *buf, size_t cap)
{
    uint8_t val[300];
    memset(val, (int)(i * 7 + 1), sizeof(val));
    struct sl_batch_builder b;
    sl_batch_builder_init(&b, buf, cap);
    struct sl_record r = {.key = "k", .key_len = 1, .value = val,
                          .value_len = 100 + i % 200, .timestamp_ms = i};
    sl_batch_builder_add(&b, &r);
    size_t len = 0;
    sl_batch_builder_finish(&b, SL_BATCH_CODEC_NONE, 0, NULL, NULL, 0, 0, 0, &len);
    return len;
}

static struct sl_shard_config shard_cfg(void)
{
    struct sl_shard_config c;
    sl_shard_config_default(&c);
    c.segment_bytes = 4 * 1024;
    c.index_interval_bytes = 1024;
    return c;
}

static int rdone, rerr;
static void on_read(struct sl_shard_read *rd, int err)
{
    (void)rd;
    rdone = 1;
    rerr = err;
}

/* Reads batch `seq` (one record each) and compares with what was sent. */
static int check_batch(struct sl_shard *s, uint64_t seq, uint32_t i)
{
    static uint8_t want[4096], got[64 << 10];
    size_t wl = make_batch(i, want, sizeof(want));
    struct sl_shard_read rd = {.from = SL_READ_SEQ, .seq = seq, .buf = got,
                               .buf_cap = sizeof(got), .max_bytes = 1, .cb = on_read};
    rdone = 0;
    sl_shard_read(s, &rd);
    while (!rdone) {
        sl_ring_run(&ring, 1, 0);
    }
    if (rerr != SL_OK || rd.len != wl) {
        return -1;
    }
    /* the stored copy differs only in the stamped fields [8, 32) */
    return memcmp(got + SL_BATCH_CHECKSUM_FROM, want + SL_BATCH_CHECKSUM_FROM,
                  wl - SL_BATCH_CHECKSUM_FROM) == 0
               ? 0
               : -1;
}

static void shard_trial(uint64_t n, int err, uint32_t *fatal_trials)
{
    char dir[] = "/var/tmp/sluice-ffiles-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char sdir[64];
    snprintf(sdir, sizeof(sdir), "%s/shard", dir);
    struct sl_shard_config sc = shard_cfg();
    struct sl_shard *s;
    CHECK_EQ(sl_shard_open(&ring, sdir, &sc, &s), SL_OK);
    struct sl_file_faults f = {.op = SL_FILE_FAULT_CREATE, .nth = n, .err = err};
    sl_file_faults_arm(&f);
    static struct app apps[BATCHES];
    static uint8_t buf[4096];
    memset(apps, 0, sizeof(apps));
    uint32_t sent = 0;
    for (uint32_t i = 0; i < BATCHES; i++) {
        size_t len = make_batch(i, buf, sizeof(buf));
        int rc;
        while ((rc = sl_shard_append(s, buf, len, on_ack, &apps[i])) == SL_EAGAIN) {
            sl_ring_run(&ring, 1, 0);
        }
        if (rc != SL_OK) {
            CHECK(rc == SL_EFATAL); /* refused at once once the shard is fatal */
            break;
        }
        sent++;
    }
    for (uint32_t i = 0; i < sent; i++) {
        while (!apps[i].done) {
            CHECK(ring.inflight > 0 || ring.deferred_head != NULL);
            sl_ring_run(&ring, 1, 0);
        }
    }
    struct sl_shard_stats st;
    sl_shard_stats(s, &st);
    uint64_t seen = 0, injected = 0;
    sl_file_faults_counts(&seen, &injected);
    if (injected > 0) {
        CHECK_EQ(st.state, SL_EFATAL); /* a segment file could not be created */
        CHECK(st.fatal_what != NULL);
        (*fatal_trials)++;
    }
    /* Acks are in order; once one failed, none after it succeeded. */
    bool failed = false;
    uint32_t acked = 0;
    for (uint32_t i = 0; i < sent; i++) {
        if (apps[i].err != SL_OK) {
            failed = true;
        } else {
            CHECK(!failed);
            CHECK_EQ(apps[i].base, i);
            acked++;
        }
    }
    sl_shard_close(s);
    sl_file_faults_disarm();
    CHECK_EQ(sl_shard_open(&ring, sdir, &sc, &s), SL_OK);
    sl_shard_stats(s, &st);
    CHECK(st.next_seq >= acked);
    for (uint32_t i = 0; i < acked; i++) {
        CHECK_EQ(check_batch(s, i, i), 0); /* every acknowledged batch, intact */
    }
    /* and the shard takes appends again */
    struct app a = {0};
    size_t len = make_batch(0, buf, sizeof(buf));
    CHECK_EQ(sl_shard_append(s, buf, len, on_ack, &a), SL_OK);
    while (!a.done) {
        sl_ring_run(&ring, 1, 0);
    }
    CHECK_EQ(a.err, SL_OK);
    CHECK_EQ(a.base, st.next_seq);
    sl_shard_close(s);
    char cmd[96];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    CHECK_EQ(system(cmd), 0);
}

TEST(segment_create_failures)
{
    const int errs[2] = {EIO, ENOSPC};
    for (int e = 0; e < 2; e++) {
        uint32_t fatal = 0;
        for (uint64_t n = 1; n <= 24; n++) {
            DO(shard_trial(n, errs[e], &fatal));
        }
        fprintf(stderr, "  create %s: 24 trials, %u hit a creation\n",
                errs[e] == EIO ? "EIO" : "ENOSPC", fatal);
        CHECK(fatal >= 4); /* the sweep did reach the rolls */
    }
}

/* Out of descriptors (EMFILE, injected) at the Nth creation: not an I/O
 * error. The batches that waited for the new segment fail with SL_ELIMIT,
 * the shard stays SL_OK, the sequence has no hole (every acknowledged batch's
 * base is the count acknowledged before it), later appends create the files
 * and go in, and after a reopen every acknowledged batch is there. */
static void shard_emfile_trial(uint64_t n, uint32_t *hit)
{
    char dir[] = "/var/tmp/sluice-ffiles-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char sdir[64];
    snprintf(sdir, sizeof(sdir), "%s/shard", dir);
    struct sl_shard_config sc = shard_cfg();
    struct sl_shard *s;
    CHECK_EQ(sl_shard_open(&ring, sdir, &sc, &s), SL_OK);
    struct sl_file_faults f = {.op = SL_FILE_FAULT_CREATE, .nth = n, .err = EMFILE};
    sl_file_faults_arm(&f);
    static struct app apps[BATCHES];
    static bool sent[BATCHES];
    static uint8_t buf[4096];
    memset(apps, 0, sizeof(apps));
    memset(sent, 0, sizeof(sent));
    uint32_t refused = 0;
    for (uint32_t i = 0; i < BATCHES; i++) {
        size_t len = make_batch(i, buf, sizeof(buf));
        int rc;
        while ((rc = sl_shard_append(s, buf, len, on_ack, &apps[i])) == SL_EAGAIN) {
            sl_ring_run(&ring, 1, 0);
        }
        if (rc == SL_ELIMIT) {
            refused++; /* files still owed: refused at once, nothing queued */
            continue;
        }
        CHECK_EQ(rc, SL_OK);
        sent[i] = true;
    }
    for (uint32_t i = 0; i < BATCHES; i++) {
        while (sent[i] && !apps[i].done) {
            CHECK(ring.inflight > 0 || ring.deferred_head != NULL);
            sl_ring_run(&ring, 1, 0);
        }
    }
    struct sl_shard_stats st;
    sl_shard_stats(s, &st);
    CHECK_EQ(st.state, SL_OK);
    uint64_t seen = 0, injected = 0;
    sl_file_faults_counts(&seen, &injected);
    uint32_t acked = 0, failed = 0;
    for (uint32_t i = 0; i < BATCHES; i++) {
        if (!sent[i]) {
            continue;
        }
        if (apps[i].err == SL_OK) {
            CHECK_EQ(apps[i].base, acked);
            acked++;
        } else {
            CHECK_EQ(apps[i].err, SL_ELIMIT);
            failed++;
        }
    }
    CHECK_EQ(st.next_seq, acked);
    if (injected > 0) {
        CHECK(failed + refused > 0);
        (*hit)++;
    }
    sl_shard_close(s);
    sl_file_faults_disarm();
    CHECK_EQ(sl_shard_open(&ring, sdir, &sc, &s), SL_OK);
    sl_shard_stats(s, &st);
    CHECK_EQ(st.next_seq, acked);
    for (uint32_t i = 0, seq = 0; i < BATCHES; i++) {
        if (sent[i] && apps[i].err == SL_OK) {
            CHECK_EQ(check_batch(s, seq++, i), 0); /* every acknowledged batch, intact */
        }
    }
    sl_shard_close(s);
    char cmd[96];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    CHECK_EQ(system(cmd), 0);
}

TEST(segment_create_emfile)
{
    uint32_t hit = 0;
    for (uint64_t n = 1; n <= 16; n++) {
        DO(shard_emfile_trial(n, &hit));
    }
    fprintf(stderr, "  create EMFILE: 16 trials, %u hit a creation\n", hit);
    CHECK(hit >= 4); /* the sweep did reach the rolls, .log and .idx */
}

/* ---- checkpoint store: snapshot rename failures ---- */

struct ck {
    int done;
    int err;
};
static void on_commit(void *ctx, int err)
{
    struct ck *c = ctx;
    c->done = 1;
    c->err = err;
}

static void ckpt_trial(uint64_t n, uint32_t *hit)
{
    char dir[] = "/var/tmp/sluice-fckpt-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    struct sl_ckpt_config cc;
    sl_ckpt_config_default(&cc);
    cc.log_bytes_max = 4096; /* compact often (the minimum) */
    struct sl_ckpt_store *cs;
    CHECK_EQ(sl_ckpt_open(&ring, dir, &cc, &cs), SL_OK);
    struct sl_file_faults f = {.op = SL_FILE_FAULT_RENAME, .nth = n, .err = EIO};
    sl_file_faults_arm(&f);
    enum { KEYS = 8, ROUNDS = 200 };
    uint64_t confirmed[KEYS] = {0};
    static struct ck cks[KEYS * ROUNDS];
    memset(cks, 0, sizeof(cks));
    for (uint32_t r = 0; r < ROUNDS; r++) {
        for (uint32_t k = 0; k < KEYS; k++) {
            struct ck *c = &cks[r * KEYS + k];
            int rc = sl_ckpt_commit(cs, "g", k, r + 1, 1000 + r, on_commit, c);
            CHECK_EQ(rc, SL_OK);
        }
        for (uint32_t k = 0; k < KEYS; k++) {
            struct ck *c = &cks[r * KEYS + k];
            while (!c->done) {
                CHECK(ring.inflight > 0 || ring.deferred_head != NULL); /* a lost callback */
                sl_ring_run(&ring, ring.inflight > 0 ? 1 : 0, 0);
            }
            CHECK_EQ(c->err, SL_OK); /* a failed snapshot install keeps the log */
            confirmed[k] = r + 1;
        }
    }
    uint64_t seen = 0, injected = 0;
    sl_file_faults_counts(&seen, &injected);
    *hit += injected > 0 ? 1 : 0;
    sl_ckpt_close(cs);
    sl_file_faults_disarm();
    CHECK_EQ(sl_ckpt_open(&ring, dir, &cc, &cs), SL_OK);
    for (uint32_t k = 0; k < KEYS; k++) {
        uint64_t seq = 0, upd = 0;
        CHECK_EQ(sl_ckpt_get(cs, "g", k, &seq, &upd), SL_OK);
        CHECK(seq >= confirmed[k]);
    }
    sl_ckpt_close(cs);
    char cmd[96];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    CHECK_EQ(system(cmd), 0);
}

TEST(snapshot_rename_failures)
{
    uint32_t hit = 0;
    for (uint64_t n = 1; n <= 6; n++) {
        DO(ckpt_trial(n, &hit));
    }
    fprintf(stderr, "  rename EIO: 6 trials, %u hit a snapshot install\n", hit);
    CHECK(hit >= 1);
}

int main(void)
{
    sl_log_set_level(getenv("SLUICE_TEST_LOG") ? SL_LOG_DEBUG : SL_LOG_OFF);
    char why[512] = "";
    if (sl_ring_probe(why, sizeof(why)) != SL_OK || sl_ring_init(&ring, 256) != SL_OK) {
        fprintf(stderr, "io_uring unavailable: %s\n", why);
        return 77;
    }
    RUN(segment_create_failures);
    RUN(segment_create_emfile);
    RUN(snapshot_rename_failures);
    sl_ring_fini(&ring);
    TEST_END();
}
