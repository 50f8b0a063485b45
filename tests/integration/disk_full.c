/* disk_full.c - the broker on a full disk: explicit errors, nothing partial, recovery.
 *
 * Covers: the broker runs with its data directory on a small tmpfs (24 MiB, mounted in a
 * private mount namespace when possible so that it vanishes with the test; no mount
 * permission = skipped, exit 77). A 2-shard stream gets some records, then a filler file
 * leaves little room and durable batches are produced until one fails:
 *   - the failure is an explicit SL_ENOSPC, reported within 1 s of sending the batch that
 *     did not fit, and a retry of the same shard keeps failing with SL_ENOSPC (not a hang,
 *     not SL_EFATAL); describe shows the shard's status SL_ENOSPC;
 *   - while full, everything reads back: every record verifies, every acknowledged record is
 *     at its acknowledged shard and sequence, no failed (partial) record is stored, shards
 *     are contiguous up to their tails;
 *   - after the filler is deleted a produce succeeds within 5 s, later ones too, and the
 *     shards report SL_OK;
 *   - the same with many batches in flight on both shards when the space runs out;
 *   - the same holds after a kill -9 and restart (recovery of a log that was cut back);
 *   - a batch whose data fits but whose index entry needs a new page on the full disk
 *     leaves the shard writable once space is back (an index write's ENOSPC is no lost
 *     fsync).
 * The tmpfs is unmounted at the end, also when a check fails.
 */
#include "../unit/test.h"
#include "harness.h"

#include "common/error.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define SHARDS 2u
#define TMPFS_OPTS "size=24m"
#define ROOM_BYTES (384u << 10) /* left free by the filler: ~25 batches */
#define BATCH_RECORDS 15u
#define VALUE_BYTES 1000u /* a batch is ~15 KiB: more than a page of slack */
#define MAXREC 40000u
#define ENOSPC_WITHIN_MS 1000u
#define RECOVER_WITHIN_MS 5000u
#define FLUSH_WAIT_MS 10000u
#define STREAM "full"
#define IDX_STREAM "idx"

enum { ST_PENDING = 0, ST_OK = 1, ST_FAILED = 2 };

static struct it_broker broker;
static char mnt[80];
static char filler[112];
static bool mounted;
static sluice_client *client; /* freed in main, also after a failed check */
static sluice_producer *producer;
static uint32_t next_rec;
static atomic_uchar rec_status[MAXREC];
static atomic_int rec_err[MAXREC];
static uint8_t rec_shard[MAXREC];
static uint64_t rec_seq[MAXREC];
static atomic_ullong rec_done_ms[MAXREC];
static uint8_t seen[MAXREC];

static size_t make_value(uint32_t i, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "d%u-%08x:", i, i * 2654435761u);
    for (size_t k = (size_t)n; k < VALUE_BYTES && k < cap; k++) {
        buf[k] = (char)('A' + (i * 31u + k) % 26u);
    }
    return VALUE_BYTES < cap ? VALUE_BYTES : cap;
}

/* The record index of a value that matches its own encoding, else UINT32_MAX. */
static uint32_t value_index(const uint8_t *v, uint32_t len)
{
    static char want[VALUE_BYTES + 1];
    char head[32];
    uint32_t hl = len < sizeof(head) - 1 ? len : (uint32_t)sizeof(head) - 1;
    memcpy(head, v, hl);
    head[hl] = '\0';
    unsigned i;
    if (sscanf(head, "d%u-", &i) != 1 || i >= MAXREC) {
        return UINT32_MAX;
    }
    size_t wl = make_value(i, want, sizeof(want));
    return wl == len && memcmp(v, want, len) == 0 ? i : UINT32_MAX;
}

static void on_delivery(void *ctx, int err, uint32_t shard, uint64_t seq)
{
    uint32_t i = (uint32_t)(uintptr_t)ctx;
    atomic_store(&rec_done_ms[i], it_mono_ms());
    if (err != SL_OK) {
        atomic_store(&rec_err[i], err);
        atomic_store(&rec_status[i], ST_FAILED);
        return;
    }
    rec_shard[i] = (uint8_t)shard;
    rec_seq[i] = seq;
    atomic_store(&rec_status[i], ST_OK);
}

/* The outcome of one batch: how many records failed, the first error, and the time from
 * the first produce to the last delivery report. */
struct batch_result {
    uint32_t failed;
    int err;
    uint64_t ms;
};

/* Produces one batch of BATCH_RECORDS records under `key` (one shard) and flushes it. */
static int produce_batch(const char *key, struct batch_result *out)
{
    static char val[VALUE_BYTES + 1];
    memset(out, 0, sizeof(*out));
    uint32_t first = next_rec;
    if (first + BATCH_RECORDS > MAXREC) {
        return -1;
    }
    uint64_t t0 = it_mono_ms();
    for (uint32_t r = 0; r < BATCH_RECORDS; r++) {
        uint32_t i = next_rec++;
        size_t vl = make_value(i, val, sizeof(val));
        int rc = sluice_produce(producer, key, strlen(key), val, vl, NULL, 0, on_delivery,
                                (void *)(uintptr_t)i);
        if (rc != SL_OK) {
            fprintf(stderr, "  produce: %s (%s)\n", sl_errname(rc), sluice_last_error());
            return -1;
        }
    }
    int rc = sluice_producer_flush(producer, FLUSH_WAIT_MS);
    if (rc != SL_OK) {
        fprintf(stderr, "  flush: %s (%s)\n", sl_errname(rc), sluice_last_error());
        return -1;
    }
    uint64_t last = t0;
    for (uint32_t i = first; i < next_rec; i++) {
        if (atomic_load(&rec_status[i]) != ST_OK) {
            if (out->failed++ == 0) {
                out->err = atomic_load(&rec_err[i]);
            }
        }
        uint64_t d = atomic_load(&rec_done_ms[i]);
        last = d > last ? d : last;
    }
    out->ms = last - t0;
    return 0;
}

/* Produces `count` records over 16 keys (both shards, several batches in flight), then
 * flushes. *failed counts the records that failed, *first_err is the first error. */
static int produce_pipelined(uint32_t count, uint32_t *failed, int *first_err)
{
    static char val[VALUE_BYTES + 1];
    char key[16];
    uint32_t first = next_rec;
    *failed = 0;
    *first_err = SL_OK;
    if (first + count > MAXREC) {
        return -1;
    }
    for (uint32_t r = 0; r < count; r++) {
        uint32_t i = next_rec++;
        int kl = snprintf(key, sizeof(key), "p%u", i % 16u);
        size_t vl = make_value(i, val, sizeof(val));
        int rc = sluice_produce(producer, key, (size_t)kl, val, vl, NULL, 0, on_delivery,
                                (void *)(uintptr_t)i);
        if (rc != SL_OK) {
            fprintf(stderr, "  produce: %s (%s)\n", sl_errname(rc), sluice_last_error());
            return -1;
        }
    }
    if (sluice_producer_flush(producer, FLUSH_WAIT_MS) != SL_OK) {
        fprintf(stderr, "  flush: %s\n", sluice_last_error());
        return -1;
    }
    for (uint32_t i = first; i < next_rec; i++) {
        if (atomic_load(&rec_status[i]) != ST_OK && (*failed)++ == 0) {
            *first_err = atomic_load(&rec_err[i]);
        }
    }
    return 0;
}

static uint64_t free_bytes(void)
{
    struct statvfs v;
    if (statvfs(mnt, &v) != 0) {
        return 0;
    }
    return (uint64_t)v.f_bavail * v.f_frsize;
}

/* Creates the filler so that about `room` bytes stay free. Returns 0 or -1. */
static int fill_leaving(uint64_t room)
{
    uint64_t avail = free_bytes();
    if (avail <= room) {
        return 0;
    }
    uint64_t size = (avail - room) & ~(uint64_t)4095;
    int fd = open(filler, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    if (fd < 0) {
        perror("open filler");
        return -1;
    }
    int rc = posix_fallocate(fd, 0, (off_t)size);
    close(fd);
    if (rc != 0) {
        fprintf(stderr, "  fallocate filler: %s\n", strerror(rc));
        return -1;
    }
    return 0;
}

/* Mounts the tmpfs and points the broker at it. Returns 0, 77 (no mount) or -1. */
static int setup_mount(void)
{
    memset(&broker, 0, sizeof(broker));
    snprintf(broker.root, sizeof(broker.root), "/var/tmp/sluice-df-XXXXXX");
    if (mkdtemp(broker.root) == NULL) {
        perror("mkdtemp");
        return -1;
    }
    snprintf(mnt, sizeof(mnt), "%s/mnt", broker.root);
    snprintf(filler, sizeof(filler), "%s/filler", mnt);
    snprintf(broker.data, sizeof(broker.data), "%s/data", mnt);
    snprintf(broker.port_file, sizeof(broker.port_file), "%s/port", broker.root);
    snprintf(broker.flush, sizeof(broker.flush), "always");
    if (mkdir(mnt, 0755) != 0) {
        perror("mkdir");
        return -1;
    }
    /* A private mount namespace: the tmpfs disappears with this process and the broker,
     * even when CTest kills them. Without one the mount is still removed at exit. */
    if (unshare(CLONE_NEWNS) == 0 && mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) {
        perror("  mount --make-rprivate /");
    }
    if (mount("tmpfs", mnt, "tmpfs", 0, TMPFS_OPTS) != 0) {
        fprintf(stderr, "  mount -t tmpfs -o %s %s: %s\n", TMPFS_OPTS, mnt, strerror(errno));
        return 77;
    }
    mounted = true;
    return 0;
}

static void cleanup(void)
{
    if (broker.pid != 0) {
        it_broker_kill9(&broker);
    }
    if (mounted) {
        if (umount(mnt) != 0) {
            fprintf(stderr, "  umount %s: %s; detaching\n", mnt, strerror(errno));
            umount2(mnt, MNT_DETACH);
        }
        mounted = false;
    }
    if (broker.root[0] != '\0') {
        it_rmtree(broker.root);
        broker.root[0] = '\0';
    }
}

/* Reads the whole stream: every record verifies and is an acknowledged record at its
 * acknowledged position, shards are contiguous to their tails, and every acknowledged
 * record is there once. Returns the number of records, or -1 (after printing why). */
static int64_t verify_stream_named(sluice_client *c, const char *stream, uint32_t rec_lo,
                                   uint32_t rec_hi)
{
    struct sluice_stream_info *info = NULL;
    int rc = sluice_stream_describe(c, stream, &info);
    if (rc != SL_OK) {
        fprintf(stderr, "  describe: %s (%s)\n", sl_errname(rc), sluice_last_error());
        return -1;
    }
    sluice_consumer *cons = NULL;
    struct sluice_consumer_opts co = {.start = {.kind = SLUICE_TRIM_HORIZON}};
    rc = sluice_consumer_new(c, stream, NULL, &co, &cons);
    if (rc != SL_OK) {
        fprintf(stderr, "  consumer: %s (%s)\n", sl_errname(rc), sluice_last_error());
        sluice_stream_info_free(info);
        return -1;
    }
    memset(seen, 0, sizeof(seen));
    uint64_t next[SHARDS] = {0};
    int64_t total = 0, bad = 0;
    static struct sluice_record recs[1024];
    uint64_t deadline = it_mono_ms() + 30000;
    for (;;) {
        size_t got = 0;
        rc = sluice_consumer_poll(cons, recs, 1024, &got, 300);
        if (rc != SL_OK) {
            fprintf(stderr, "  poll: %s (%s)\n", sl_errname(rc), sluice_last_error());
            bad++;
            break;
        }
        for (size_t r = 0; r < got; r++) {
            const struct sluice_record *rec = &recs[r];
            uint32_t i = value_index(rec->value, rec->value_len);
            bool ok = i != UINT32_MAX && rec->shard < SHARDS && rec->seq == next[rec->shard] &&
                      atomic_load(&rec_status[i]) == ST_OK && rec_shard[i] == rec->shard &&
                      rec_seq[i] == rec->seq;
            if (!ok && bad++ < 5) {
                fprintf(stderr, "  record %u/%" PRIu64 " (%u bytes, index %d, status %d): not "
                                "an acknowledged record at its position\n",
                        rec->shard, rec->seq, rec->value_len, (int)i,
                        i != UINT32_MAX ? (int)atomic_load(&rec_status[i]) : -1);
            }
            if (i != UINT32_MAX) {
                seen[i]++;
            }
            if (rec->shard < SHARDS) {
                next[rec->shard] = rec->seq + 1;
            }
        }
        total += (int64_t)got;
        if (got == 0 && sluice_consumer_caught_up(cons)) {
            break;
        }
        if (it_mono_ms() > deadline) {
            fprintf(stderr, "  read: not caught up in 30 s\n");
            bad++;
            break;
        }
    }
    sluice_consumer_free(cons);
    for (uint32_t s = 0; s < SHARDS && s < info->shards_len; s++) {
        if (next[s] != info->shards[s].next_seq) {
            fprintf(stderr, "  shard %u: read to %" PRIu64 ", tail %" PRIu64 "\n", s, next[s],
                    info->shards[s].next_seq);
            bad++;
        }
    }
    sluice_stream_info_free(info);
    for (uint32_t i = rec_lo; i < rec_hi && i < next_rec; i++) {
        bool want = atomic_load(&rec_status[i]) == ST_OK;
        if (seen[i] != (want ? 1 : 0) && bad++ < 10) {
            fprintf(stderr, "  record %u (status %d) found %u times\n", i,
                    (int)atomic_load(&rec_status[i]), seen[i]);
        }
    }
    return bad == 0 ? total : -1;
}

/* The records of STREAM are those below idx_first_rec; IDX_STREAM has the rest. */
static uint32_t idx_first_rec = MAXREC;

static int64_t verify_stream(sluice_client *c)
{
    return verify_stream_named(c, STREAM, 0, idx_first_rec);
}

/* Counts the shards of `stream` in each status. */
static int shard_states_named(sluice_client *c, const char *stream, uint32_t *ok,
                              uint32_t *nospc, uint32_t *fatal)
{
    struct sluice_stream_info *info = NULL;
    int rc = sluice_stream_describe(c, stream, &info);
    *ok = *nospc = *fatal = 0;
    if (rc != SL_OK) {
        return rc;
    }
    for (uint32_t s = 0; s < info->shards_len; s++) {
        *ok += info->shards[s].status == SL_OK;
        *nospc += info->shards[s].status == SL_ENOSPC;
        *fatal += info->shards[s].status == SL_EFATAL;
    }
    sluice_stream_info_free(info);
    return SL_OK;
}

static int shard_states(sluice_client *c, uint32_t *ok, uint32_t *nospc, uint32_t *fatal)
{
    return shard_states_named(c, STREAM, ok, nospc, fatal);
}

static int new_producer(sluice_client *c)
{
    struct sluice_producer_opts po = {.batch_bytes = 64u << 10, .linger_ms = 1000,
                                      .block_when_full = 1, .ack = SLUICE_ACK_DURABLE,
                                      .retries = 3, .retry_backoff_ms = 50};
    return sluice_producer_new(c, STREAM, &po, &producer);
}

/* The data of a batch fits but the index entry written after it needs a new page: the
 * shard must stay writable once space is back (ENOSPC is not a lost fsync). */
static void index_page_on_full_disk(sluice_client *c)
{
    char idx[192];
    snprintf(idx, sizeof(idx), "%s/streams/%s/0/%020d.idx", broker.data, IDX_STREAM, 0);
    CHECK_EQ(it_create_stream(c, IDX_STREAM, 1), SL_OK);
    struct sluice_producer_opts po = {.batch_bytes = 64u << 10, .linger_ms = 1000,
                                      .ack = SLUICE_ACK_DURABLE, .retries = 3};
    CHECK_EQ(sluice_producer_new(c, IDX_STREAM, &po, &producer), SL_OK);
    idx_first_rec = next_rec;
    struct batch_result br;
    struct stat st = {0};
    /* Until the index file is exactly one full page (128 entries of 32 bytes). */
    for (uint32_t b = 0; b < 1000 && st.st_size < 4096; b++) {
        CHECK_EQ(produce_batch("x", &br), 0);
        CHECK_EQ(br.failed, 0);
        it_sleep_ms(2); /* the entry is written after the ack's fdatasync */
        CHECK_EQ(stat(idx, &st), 0);
    }
    CHECK_EQ(st.st_size, 4096);
    /* Room for the data of two more batches (~31 KiB: 8 pages and the tail page's slack),
     * none for another index page. */
    CHECK_EQ(fill_leaving(8u * 4096u), 0);
    uint32_t fitted = 0;
    for (int b = 0; b < 2; b++) {
        CHECK_EQ(produce_batch("x", &br), 0);
        fitted += br.failed == 0;
    }
    it_sleep_ms(100);
    uint32_t ok, nospc, fatal;
    CHECK_EQ(shard_states_named(c, IDX_STREAM, &ok, &nospc, &fatal), SL_OK);
    stat(idx, &st);
    fprintf(stderr, "  index page: %u of 2 batches fitted; index %lld bytes; shards: %u OK, "
                    "%u ENOSPC, %u EFATAL\n", fitted, (long long)st.st_size, ok, nospc, fatal);
    CHECK_EQ(unlink(filler), 0);
    uint64_t t0 = it_mono_ms();
    int64_t ok_ms = -1;
    while (it_mono_ms() - t0 <= RECOVER_WITHIN_MS) {
        CHECK_EQ(produce_batch("x", &br), 0);
        if (br.failed == 0) {
            ok_ms = (int64_t)(it_mono_ms() - t0);
            break;
        }
        it_sleep_ms(50);
    }
    fprintf(stderr, "  index page: writes succeed after %" PRId64 " ms (last: %s)\n", ok_ms,
            sl_errname(br.err));
    CHECK(ok_ms >= 0);
    sluice_producer_free(producer);
    producer = NULL;
    CHECK(verify_stream_named(c, IDX_STREAM, idx_first_rec, MAXREC) > 0);
}

TEST(disk_full)
{
    int rc = setup_mount();
    if (rc == 77) {
        SKIP("cannot mount a tmpfs (needs CAP_SYS_ADMIN)");
    }
    CHECK_EQ(rc, 0);
    CHECK_EQ(it_broker_restart(&broker), 0); /* starts it on our directories */
    CHECK_EQ(it_connect(&broker, &client), SL_OK);
    sluice_client *c = client;
    CHECK_EQ(it_create_stream(c, STREAM, SHARDS), SL_OK);
    CHECK_EQ(new_producer(c), SL_OK);
    char key[16];
    struct batch_result br;
    for (uint32_t b = 0; b < 8; b++) { /* some data from before the disk filled up */
        snprintf(key, sizeof(key), "b%u", b);
        CHECK_EQ(produce_batch(key, &br), 0);
        CHECK_EQ(br.failed, 0);
    }

    /* Fill the disk; produce until a batch does not fit. */
    CHECK_EQ(fill_leaving(ROOM_BYTES), 0);
    fprintf(stderr, "  %" PRIu64 " KiB free after the filler\n", free_bytes() >> 10);
    uint32_t batches = 0;
    char full_key[16] = "";
    for (uint32_t b = 100; b < 100 + 4 * ROOM_BYTES / (BATCH_RECORDS * VALUE_BYTES); b++) {
        snprintf(key, sizeof(key), "b%u", b);
        CHECK_EQ(produce_batch(key, &br), 0);
        if (br.failed > 0) {
            snprintf(full_key, sizeof(full_key), "%s", key);
            break;
        }
        batches++;
    }
    fprintf(stderr, "  %u batches fitted; then %u records failed with %s after %" PRIu64
                    " ms; %" PRIu64 " KiB free\n",
            batches, br.failed, sl_errname(br.err), br.ms, free_bytes() >> 10);
    CHECK(full_key[0] != '\0'); /* the disk did fill up */
    CHECK_EQ(br.err, SL_ENOSPC); /* (the producer may have sent part of it earlier) */
    CHECK(br.ms <= ENOSPC_WITHIN_MS);

    /* Still full: the same shard keeps refusing, explicitly and quickly. */
    CHECK_EQ(produce_batch(full_key, &br), 0);
    CHECK(br.failed > 0);
    CHECK_EQ(br.err, SL_ENOSPC);
    CHECK(br.ms <= ENOSPC_WITHIN_MS);
    uint32_t ok, nospc, fatal;
    CHECK_EQ(shard_states(c, &ok, &nospc, &fatal), SL_OK);
    fprintf(stderr, "  while full: shards %u OK, %u ENOSPC, %u EFATAL\n", ok, nospc, fatal);
    CHECK_EQ(fatal, 0);
    CHECK(nospc >= 1);

    /* Reads keep working; nothing partial is stored. */
    int64_t n = verify_stream(c);
    CHECK(n > 0);
    fprintf(stderr, "  while full: %" PRId64 " records read back, all verified\n", n);

    /* Room again: writes succeed within 5 s. */
    CHECK_EQ(unlink(filler), 0);
    uint64_t t0 = it_mono_ms();
    int64_t ok_ms = -1;
    while (it_mono_ms() - t0 <= RECOVER_WITHIN_MS) {
        CHECK_EQ(produce_batch(full_key, &br), 0);
        if (br.failed == 0) {
            ok_ms = (int64_t)(it_mono_ms() - t0);
            break;
        }
        it_sleep_ms(50);
    }
    fprintf(stderr, "  after freeing space: writes succeed after %" PRId64 " ms (last: %s)\n",
            ok_ms, sl_errname(br.err));
    CHECK(ok_ms >= 0 && ok_ms <= (int64_t)RECOVER_WITHIN_MS);
    for (uint32_t b = 200; b < 210; b++) {
        snprintf(key, sizeof(key), "b%u", b);
        CHECK_EQ(produce_batch(key, &br), 0);
        CHECK_EQ(br.failed, 0);
    }
    CHECK_EQ(shard_states(c, &ok, &nospc, &fatal), SL_OK);
    CHECK_EQ(ok, SHARDS);
    n = verify_stream(c);
    CHECK(n > 0);

    /* Full again, with many batches in flight on both shards when the space runs out. */
    CHECK_EQ(fill_leaving(ROOM_BYTES / 2), 0);
    uint32_t failed = 0;
    int first_err = SL_OK;
    for (uint32_t round = 0; round < 8 && failed == 0; round++) {
        CHECK_EQ(produce_pipelined(BATCH_RECORDS * 16, &failed, &first_err), 0);
    }
    fprintf(stderr, "  pipelined: %u records failed (first: %s)\n", failed,
            sl_errname(first_err));
    CHECK(failed > 0);
    CHECK_EQ(first_err, SL_ENOSPC);
    CHECK_EQ(shard_states(c, &ok, &nospc, &fatal), SL_OK);
    CHECK_EQ(fatal, 0);
    n = verify_stream(c);
    CHECK(n > 0);
    CHECK_EQ(unlink(filler), 0);
    t0 = it_mono_ms();
    ok_ms = -1;
    while (it_mono_ms() - t0 <= RECOVER_WITHIN_MS) {
        CHECK_EQ(produce_pipelined(BATCH_RECORDS * 4, &failed, &first_err), 0);
        if (failed == 0) {
            ok_ms = (int64_t)(it_mono_ms() - t0);
            break;
        }
        it_sleep_ms(50);
    }
    fprintf(stderr, "  pipelined: writes succeed again after %" PRId64 " ms\n", ok_ms);
    CHECK(ok_ms >= 0);
    n = verify_stream(c);
    CHECK(n > 0);

    /* Crash recovery of the log that was cut back. */
    sluice_producer_free(producer);
    producer = NULL;
    CHECK_EQ(it_broker_kill9(&broker), 0);
    CHECK_EQ(it_broker_restart(&broker), 0);
    int64_t n2 = verify_stream(c); /* the client reconnects */
    if (n2 < 0) {
        n2 = verify_stream(c); /* the first call may see the old connection break */
    }
    CHECK_EQ(n2, n);
    CHECK_EQ(new_producer(c), SL_OK);
    CHECK_EQ(produce_batch(full_key, &br), 0);
    CHECK_EQ(br.failed, 0);
    fprintf(stderr, "  after kill -9: %" PRId64 " records verified, writes work\n", n2);
    sluice_producer_free(producer);
    producer = NULL;
    index_page_on_full_disk(c);
    if (test_cur_failed_) {
        return;
    }
    sluice_client_free(c);
    client = NULL;
    CHECK_EQ(it_broker_stop(&broker), 0);
}

int main(void)
{
    int rc = it_preflight();
    if (rc != 0) {
        return rc;
    }
    atexit(cleanup);
    RUN(disk_full);
    if (producer != NULL) {
        sluice_producer_free(producer); /* a failed check left it; the broker may be gone */
    }
    sluice_client_free(client);
    cleanup();
    TEST_END();
}
