/* power_cut.c - records acknowledged durable survive a power cut (issue #6 suite 2).
 *
 * Covers: the broker runs on powerfs (tests/power/powerfs.c), a FUSE filesystem that keeps
 * only what was fsynced. Two threads produce (durable acks, flush `always`, one producer
 * each) to a 2-shard stream; each cycle the broker is killed with SIGKILL and at once the
 * power is cut (everything not synced is dropped; every other cycle the last unsynced write
 * is torn, a random prefix of it kept), then the broker restarts on the same data directory
 * and port and the producers ride over the outage by retrying. 5 cycles (50 with
 * SLUICE_IT_LONG=1). Afterwards every record is read back: each verifies (the reader checks
 * the batch checksums; the value matches its id), per-shard sequences are contiguous from 0,
 * and every record whose delivery reported success is at exactly the shard and sequence the
 * report named. Extra copies only below the acknowledged position (a retry whose first
 * attempt reached the disk but whose ack was lost). Segments are 1 MiB, so rolls (new
 * files and their directory fsyncs) happen during the cycles and the read-back goes through
 * sealed segments and their mmapped indexes.
 *
 * Also: streams whose creation was acknowledged survive a kill -9 + power cut in the middle
 * of a burst of creates from 4 connections (3 cycles), each with its shard count, and take
 * and return a record; a create in flight leaves an intact stream or none.
 *
 * Kill first, then cut: a power loss stops the process and loses the unsynced state in the
 * same instant; cutting first would let a live broker sync and acknowledge on top of a state
 * the disk no longer has, which no real machine does.
 *
 * Skips (77) when io_uring or FUSE (/dev/fuse, fusermount3, the powerfs binary) is
 * unavailable. POWERFS_PATH is a compile definition (tests/CMakeLists.txt).
 */
#include "../unit/test.h"
#include "../integration/harness.h"

#include "common/error.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef POWERFS_PATH
#error "POWERFS_PATH must be defined (tests/CMakeLists.txt)"
#endif

#define SHARDS 2u
#define THREADS 2u
#define PER_THREAD 1000000u
#define MAXREC (THREADS * PER_THREAD)
#define FUSE_SUPER_MAGIC_ 0x65735546

static char root[64];      /* /var/tmp/sluice-pw-XXXXXX */
static char mnt[72];       /* <root>/mnt: powerfs */
static pid_t fs_pid;
static int mounted;
static struct it_broker broker;
static sluice_producer *producers[THREADS];
static atomic_int stop_producing;
static atomic_uint produced[THREADS];
static atomic_uchar status[MAXREC]; /* 0 pending, 1 acknowledged, 2 failed */
static uint64_t ack_seq[MAXREC];
static uint8_t ack_shard[MAXREC];
static uint32_t copies[MAXREC];
static uint8_t at_ack[MAXREC];
static atomic_int first_err;
static uint32_t pause_every = 50; /* records per thread between 1 ms pauses */

static int is_mounted(void)
{
    struct statfs sf;
    return statfs(mnt, &sf) == 0 && sf.f_type == FUSE_SUPER_MAGIC_;
}

static struct it_broker cbroker; /* the stream-creation case's */

static void unmount_fs(void)
{
    if (broker.pid != 0) {
        kill(broker.pid, SIGKILL);
        waitpid(broker.pid, NULL, 0);
        broker.pid = 0;
    }
    if (cbroker.pid != 0) {
        kill(cbroker.pid, SIGKILL);
        waitpid(cbroker.pid, NULL, 0);
        cbroker.pid = 0;
    }
    if (mounted) {
        pid_t p = fork();
        if (p == 0) {
            execlp("fusermount3", "fusermount3", "-u", "-z", mnt, (char *)NULL);
            _exit(127);
        }
        if (p > 0) {
            waitpid(p, NULL, 0);
        }
        mounted = 0;
    }
    if (fs_pid != 0) {
        uint64_t deadline = it_mono_ms() + 3000;
        while (waitpid(fs_pid, NULL, WNOHANG) == 0) {
            if (it_mono_ms() >= deadline) {
                kill(fs_pid, SIGKILL);
                waitpid(fs_pid, NULL, 0);
                break;
            }
            it_sleep_ms(10);
        }
        fs_pid = 0;
    }
    if (root[0] != '\0') {
        if (getenv("SLUICE_IT_KEEP") != NULL) {
            fprintf(stderr, "  kept %s\n", root);
        } else {
            it_rmtree(root);
        }
        root[0] = '\0';
    }
}

/* Mounts powerfs on <root>/mnt. Returns 0, 77 (FUSE unavailable) or -1. */
static int mount_fs(void)
{
    if (access("/dev/fuse", R_OK | W_OK) != 0) {
        fprintf(stderr, "  /dev/fuse unavailable: %s\n", strerror(errno));
        return 77;
    }
    if (access(POWERFS_PATH, X_OK) != 0) {
        fprintf(stderr, "  %s: %s\n", POWERFS_PATH, strerror(errno));
        return 77;
    }
    snprintf(root, sizeof(root), "/var/tmp/sluice-pw-XXXXXX");
    if (mkdtemp(root) == NULL) {
        perror("mkdtemp");
        return -1;
    }
    atexit(unmount_fs);
    snprintf(mnt, sizeof(mnt), "%s/mnt", root);
    if (mkdir(mnt, 0755) != 0) {
        perror("mkdir");
        return -1;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return -1;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) {
            _exit(127);
        }
        /* auto_unmount: fusermount3 unmounts if powerfs dies (e.g. a CTest timeout). */
        execl(POWERFS_PATH, POWERFS_PATH, "-f", "-s", "-o", "auto_unmount", mnt, (char *)NULL);
        _exit(127);
    }
    fs_pid = pid;
    uint64_t deadline = it_mono_ms() + 10000;
    while (!is_mounted()) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            fs_pid = 0;
            fprintf(stderr, "  powerfs exited before mounting (status 0x%x)\n", (unsigned)st);
            return 77;
        }
        if (it_mono_ms() >= deadline) {
            fprintf(stderr, "  powerfs did not mount within 10 s\n");
            return 77;
        }
        it_sleep_ms(10);
    }
    mounted = 1;
    return 0;
}

static int fsync_path(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY);
    if (fd < 0) {
        return -1;
    }
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* Cuts the power: "cut" or "tear". Returns 0 or -1. */
static int power_cut(int tear)
{
    char ctl[128];
    snprintf(ctl, sizeof(ctl), "%s/.powercut", mnt);
    int fd = open(ctl, O_WRONLY);
    if (fd < 0) {
        perror("open .powercut");
        return -1;
    }
    const char *what = tear ? "tear" : "cut";
    ssize_t n = write(fd, what, strlen(what));
    close(fd);
    return n == (ssize_t)strlen(what) ? 0 : -1;
}

static void on_delivery(void *ctx, int err, uint32_t shard, uint64_t seq)
{
    uint32_t i = (uint32_t)(uintptr_t)ctx;
    if (err != SL_OK) {
        int zero = 0;
        atomic_compare_exchange_strong(&first_err, &zero, err);
        atomic_store(&status[i], 2);
        return;
    }
    ack_seq[i] = seq;
    ack_shard[i] = (uint8_t)shard;
    atomic_store(&status[i], 1);
}

static void *produce_loop(void *arg)
{
    uint32_t t = (uint32_t)(uintptr_t)arg;
    char key[16], val[48];
    for (uint32_t j = 0; j < PER_THREAD && !atomic_load(&stop_producing); j++) {
        uint32_t i = t * PER_THREAD + j;
        int kl = snprintf(key, sizeof(key), "k%u", i % 64);
        int vl = snprintf(val, sizeof(val), "r%u-%08x", i, i * 2654435761u);
        int rc = sluice_produce(producers[t], key, (size_t)kl, val, (size_t)vl, NULL, 0,
                                on_delivery, (void *)(uintptr_t)i);
        if (rc != SL_OK) {
            fprintf(stderr, "  produce %u: %s (%s)\n", i, sl_errname(rc), sluice_last_error());
            break;
        }
        atomic_store(&produced[t], j + 1);
        if (j % pause_every == pause_every - 1) {
            it_sleep_ms(1);
        }
    }
    return NULL;
}

static uint32_t acked_now(void)
{
    uint32_t a = 0;
    for (uint32_t t = 0; t < THREADS; t++) {
        uint32_t n = atomic_load(&produced[t]);
        for (uint32_t j = 0; j < n; j++) {
            a += atomic_load(&status[t * PER_THREAD + j]) == 1;
        }
    }
    return a;
}

TEST(power_cut_durable_produce)
{
    int rc = mount_fs();
    if (rc == 77) {
        SKIP("FUSE unavailable");
    }
    CHECK_EQ(rc, 0);
    /* The data directory, durable before the broker starts. */
    snprintf(broker.root, sizeof(broker.root), "%s", root);
    snprintf(broker.data, sizeof(broker.data), "%s/data", mnt);
    snprintf(broker.port_file, sizeof(broker.port_file), "%s/port", root);
    snprintf(broker.flush, sizeof(broker.flush), "always");
    /* Small segments: rolls (new files, directory fsyncs, sealed indexes read through mmap)
     * happen every few hundred milliseconds. The broker reads SLUICE_* from the environment. */
    setenv("SLUICE_SEGMENT_BYTES", "1MiB", 1);
    /* The zeroed run-ahead from a segment's first 64 KiB on (the default waits
     * for 1 MiB of traffic, a whole segment here): cuts land on zero tails,
     * and seals cut them. */
    setenv("SLUICE_SEGMENT_PREZERO_BYTES", "256KiB", 0);
    CHECK_EQ(mkdir(broker.data, 0755), 0);
    CHECK_EQ(fsync_path(mnt), 0);
    CHECK_EQ(it_broker_restart(&broker), 0); /* first start: port 0 = ephemeral */

    sluice_client *c = NULL;
    CHECK_EQ(it_connect(&broker, &c), SL_OK);
    CHECK_EQ(it_create_stream(c, "pw", SHARDS), SL_OK);
    struct sluice_producer_opts po = {.batch_bytes = 64u << 10, .linger_ms = 2,
                                      .block_when_full = 1, .ack = SLUICE_ACK_DURABLE,
                                      .retries = 100, .retry_backoff_ms = 50};
    for (uint32_t t = 0; t < THREADS; t++) {
        CHECK_EQ(sluice_producer_new(c, "pw", &po, &producers[t]), SL_OK);
    }
    int cycles = getenv("SLUICE_IT_LONG") != NULL ? 50 : 5;
    pause_every = cycles > 5 ? 10 : 50; /* the long run must not exhaust PER_THREAD */
    pthread_t th[THREADS];
    for (uint32_t t = 0; t < THREADS; t++) {
        CHECK_EQ(pthread_create(&th[t], NULL, produce_loop, (void *)(uintptr_t)t), 0);
    }
    srand(6151);
    uint64_t t0 = it_mono_ms();
    for (int k = 0; k < cycles; k++) {
        it_sleep_ms(500 + (uint32_t)(rand() % 700));
        uint32_t acked = acked_now();
        int tear = k % 2 == 1;
        CHECK_EQ(it_broker_kill9(&broker), 0);
        CHECK_EQ(power_cut(tear), 0);
        uint64_t r0 = it_mono_ms();
        CHECK_EQ(it_broker_restart(&broker), 0);
        fprintf(stderr, "  cycle %d: kill -9 + power cut%s after %u records acknowledged; "
                        "restarted in %" PRIu64 " ms\n",
                k + 1, tear ? " (torn write)" : "", acked, it_mono_ms() - r0);
    }
    it_sleep_ms(700);
    atomic_store(&stop_producing, 1);
    for (uint32_t t = 0; t < THREADS; t++) {
        pthread_join(th[t], NULL);
    }
    uint64_t retries = 0, dups = 0;
    for (uint32_t t = 0; t < THREADS; t++) {
        int frc = sluice_producer_flush(producers[t], 60000);
        if (frc != SL_OK) {
            fprintf(stderr, "  flush: %s (%s)\n", sl_errname(frc), sluice_last_error());
        }
        CHECK_EQ(frc, SL_OK);
        struct sluice_producer_stats ps;
        sluice_producer_stats(producers[t], &ps);
        retries += ps.retries;
        dups += ps.duplicates;
        sluice_producer_free(producers[t]);
        producers[t] = NULL;
    }
    uint32_t acked = 0, failed = 0, pending = 0, n = 0;
    for (uint32_t t = 0; t < THREADS; t++) {
        uint32_t pn = atomic_load(&produced[t]);
        n += pn;
        for (uint32_t j = 0; j < pn; j++) {
            unsigned char st = atomic_load(&status[t * PER_THREAD + j]);
            acked += st == 1;
            failed += st == 2;
            pending += st == 0;
        }
    }
    fprintf(stderr, "  %d cycles in %" PRIu64 " ms; %u records: %u acknowledged, %u failed "
                    "(first: %s), %u unreported; %" PRIu64 " retries, %" PRIu64
                    " duplicates\n",
            cycles, it_mono_ms() - t0, n, acked, failed, sl_errname(atomic_load(&first_err)),
            pending, retries, dups);
    CHECK_EQ(pending, 0);
    CHECK(acked > 0);

    /* Read back everything: verified by the reader, contiguous, acknowledged ones in place. */
    sluice_consumer *cons = NULL;
    struct sluice_consumer_opts co = {.start = {.kind = SLUICE_TRIM_HORIZON}};
    CHECK_EQ(sluice_consumer_new(c, "pw", NULL, &co, &cons), SL_OK);
    static struct sluice_record recs[4096];
    uint64_t next[SHARDS] = {0}, total = 0;
    uint64_t deadline = it_mono_ms() + 60000;
    int bad = 0;
    for (;;) {
        size_t got = 0;
        rc = sluice_consumer_poll(cons, recs, 4096, &got, 500);
        if (rc != SL_OK) {
            fprintf(stderr, "  poll: %s (%s)\n", sl_errname(rc), sluice_last_error());
        }
        CHECK_EQ(rc, SL_OK);
        for (size_t r = 0; r < got; r++) {
            const struct sluice_record *rec = &recs[r];
            char buf[48], want[48];
            uint32_t len = rec->value_len < 47 ? rec->value_len : 47;
            memcpy(buf, rec->value, len);
            buf[len] = '\0';
            unsigned i;
            CHECK(sscanf(buf, "r%u-", &i) == 1 && i < MAXREC);
            snprintf(want, sizeof(want), "r%u-%08x", i, i * 2654435761u);
            CHECK(strcmp(buf, want) == 0);
            CHECK(rec->shard < SHARDS);
            if (rec->seq != next[rec->shard]) {
                fprintf(stderr, "  GAP: shard %u expected seq %" PRIu64 ", got %" PRIu64 "\n",
                        rec->shard, next[rec->shard], rec->seq);
                CHECK(0);
            }
            next[rec->shard]++;
            copies[i]++;
            if (atomic_load(&status[i]) == 1) {
                if (rec->shard == ack_shard[i] && rec->seq == ack_seq[i]) {
                    at_ack[i] = 1;
                } else if (rec->shard != ack_shard[i] || rec->seq > ack_seq[i]) {
                    if (bad++ < 10) {
                        fprintf(stderr, "  record %u stored at %u/%" PRIu64 ", after its "
                                        "acknowledged position %u/%" PRIu64 "\n",
                                i, rec->shard, rec->seq, ack_shard[i], ack_seq[i]);
                    }
                }
            }
        }
        total += got;
        if (got == 0 && sluice_consumer_caught_up(cons)) {
            break;
        }
        CHECK(it_mono_ms() < deadline);
    }
    sluice_consumer_free(cons);
    uint32_t lost = 0, dup_acked = 0, dup_other = 0;
    for (uint32_t i = 0; i < MAXREC; i++) {
        unsigned char st = atomic_load(&status[i]);
        if (st == 1 && !at_ack[i]) {
            if (lost++ < 10) {
                fprintf(stderr, "  LOST: record %u acknowledged at %u/%" PRIu64
                                " (copies found: %u)\n",
                        i, ack_shard[i], ack_seq[i], copies[i]);
            }
        }
        dup_acked += st == 1 && copies[i] > 1;
        dup_other += st != 1 && copies[i] > 1;
    }
    fprintf(stderr, "  read %" PRIu64 " records (shard tails %" PRIu64 ", %" PRIu64 "); %u "
                    "acknowledged records lost, %u misplaced, %u stored twice (ack lost, "
                    "retried), %u unacknowledged stored twice\n",
            total, next[0], next[1], lost, bad, dup_acked, dup_other);
    CHECK_EQ(lost, 0);
    CHECK_EQ(bad, 0);
    CHECK_EQ(failed, 0);
    sluice_client_free(c);
    CHECK_EQ(it_broker_stop(&broker), 0);
}

/* ---- stream creation (#11: fewer fsyncs per create, shared in batches) ---------------- */

#define CREATE_THREADS 4u
#define CREATE_PER_THREAD 4000u

static atomic_int stop_creating;
static uint8_t created_shards[CREATE_THREADS][CREATE_PER_THREAD]; /* 0: not acknowledged */
static atomic_uint attempted[CREATE_THREADS];

struct create_arg {
    uint32_t t;
    int cycle;
};

/* Creates streams "c<cycle>-<t>-<i>" (1-3 shards) until stopped or the broker is gone. */
static void *create_loop(void *arg)
{
    const struct create_arg *a = arg;
    sluice_client *c = NULL;
    if (it_connect(&cbroker, &c) != SL_OK) {
        return NULL;
    }
    for (uint32_t i = 0; i < CREATE_PER_THREAD && !atomic_load(&stop_creating); i++) {
        char name[48];
        snprintf(name, sizeof(name), "c%d-%u-%04u", a->cycle, a->t, i);
        struct sluice_stream_opts o = {.shard_count = 1 + i % 3};
        atomic_store(&attempted[a->t], i + 1);
        if (sluice_stream_create(c, name, &o, NULL) != SL_OK) {
            break; /* the broker died (or the test stops): unknown from here */
        }
        created_shards[a->t][i] = (uint8_t)o.shard_count;
    }
    sluice_client_free(c);
    return NULL;
}

/* Streams acknowledged as created before a kill -9 and a power cut all exist after the
 * restart, with their shard counts, and take and return a record; the one in flight, if
 * it exists, is intact (a damaged stream.meta would stop the broker from starting). */
TEST(power_cut_acknowledged_creates)
{
    if (!mounted) {
        int rc = mount_fs();
        if (rc == 77) {
            SKIP("FUSE unavailable");
        }
        CHECK_EQ(rc, 0);
    }
    memset(&cbroker, 0, sizeof(cbroker));
    snprintf(cbroker.root, sizeof(cbroker.root), "%s", root);
    snprintf(cbroker.data, sizeof(cbroker.data), "%s/data-create", mnt);
    snprintf(cbroker.port_file, sizeof(cbroker.port_file), "%s/port-create", root);
    snprintf(cbroker.flush, sizeof(cbroker.flush), "always");
    CHECK_EQ(mkdir(cbroker.data, 0755), 0);
    CHECK_EQ(fsync_path(mnt), 0);
    CHECK_EQ(it_broker_restart(&cbroker), 0);
    srand(1109);
    for (int k = 0; k < 3; k++) {
        memset(created_shards, 0, sizeof(created_shards));
        atomic_store(&stop_creating, 0);
        pthread_t th[CREATE_THREADS];
        struct create_arg args[CREATE_THREADS];
        for (uint32_t t = 0; t < CREATE_THREADS; t++) {
            args[t] = (struct create_arg){.t = t, .cycle = k};
            atomic_store(&attempted[t], 0);
            CHECK_EQ(pthread_create(&th[t], NULL, create_loop, &args[t]), 0);
        }
        it_sleep_ms(300 + (uint32_t)(rand() % 500));
        CHECK_EQ(it_broker_kill9(&cbroker), 0);
        CHECK_EQ(power_cut(k % 2 == 1), 0);
        atomic_store(&stop_creating, 1);
        for (uint32_t t = 0; t < CREATE_THREADS; t++) {
            pthread_join(th[t], NULL);
        }
        CHECK_EQ(it_broker_restart(&cbroker), 0);
        sluice_client *c = NULL;
        CHECK_EQ(it_connect(&cbroker, &c), SL_OK);
        uint32_t acked = 0, found_unacked = 0;
        for (uint32_t t = 0; t < CREATE_THREADS; t++) {
            uint32_t n = atomic_load(&attempted[t]);
            for (uint32_t i = 0; i < n; i++) {
                char name[48];
                snprintf(name, sizeof(name), "c%d-%u-%04u", k, t, i);
                struct sluice_stream_info *info = NULL;
                int rc = sluice_stream_describe(c, name, &info);
                if (created_shards[t][i] != 0) {
                    acked++;
                    if (rc != SL_OK) {
                        fprintf(stderr, "  LOST: stream %s acknowledged, then %s\n", name,
                                sl_errname(rc));
                    }
                    CHECK_EQ(rc, SL_OK);
                    CHECK_EQ(info->shard_count, created_shards[t][i]);
                } else if (rc == SL_OK) {
                    found_unacked++;
                    CHECK_EQ(info->shard_count, 1 + i % 3);
                }
                sluice_stream_info_free(info);
            }
        }
        fprintf(stderr, "  cycle %d: kill -9 + power cut%s after %u creates acknowledged: all "
                        "there; %u in flight there too\n",
                k + 1, k % 2 == 1 ? " (torn write)" : "", acked, found_unacked);
        CHECK(acked > 0);
        /* the newest acknowledged ones take and return a record */
        for (uint32_t t = 0; t < CREATE_THREADS; t++) {
            uint32_t n = atomic_load(&attempted[t]);
            for (uint32_t i = n; i-- > 0;) {
                if (created_shards[t][i] == 0) {
                    continue;
                }
                char name[48];
                snprintf(name, sizeof(name), "c%d-%u-%04u", k, t, i);
                sluice_producer *p = NULL;
                CHECK_EQ(sluice_producer_new(c, name, NULL, &p), SL_OK);
                CHECK_EQ(sluice_produce(p, NULL, 0, "x", 1, NULL, 0, NULL, NULL), SL_OK);
                CHECK_EQ(sluice_producer_flush(p, 10000), SL_OK);
                sluice_producer_free(p);
                sluice_consumer *cons = NULL;
                CHECK_EQ(sluice_consumer_new(c, name, NULL, NULL, &cons), SL_OK);
                struct sluice_record rec;
                size_t got = 0;
                for (int tries = 0; tries < 20 && got == 0; tries++) {
                    CHECK_EQ(sluice_consumer_poll(cons, &rec, 1, &got, 200), SL_OK);
                }
                sluice_consumer_free(cons);
                CHECK_EQ(got, 1);
                break;
            }
        }
        sluice_client_free(c);
    }
    CHECK_EQ(it_broker_stop(&cbroker), 0);
}

int main(void)
{
    int rc = it_preflight();
    if (rc != 0) {
        return rc;
    }
    RUN(power_cut_durable_produce);
    RUN(power_cut_acknowledged_creates);
    unmount_fs();
    TEST_END();
}
