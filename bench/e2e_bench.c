/* e2e_bench.c - end-to-end throughput and latency through TCP, next to this machine's
 * ceilings measured in the same run.
 *
 *   e2e_bench [--broker HOST:PORT] [--dir D] [--mib N] [--rate R] [--seconds S]
 *
 * A benchmark, not a test. Without --broker it starts the broker built with it
 * (SLUICED_PATH) on 127.0.0.1, an ephemeral port and a fresh mkdtemp data directory under
 * --dir (default /var/tmp), flush policy `interval`, and stops it (SIGTERM) at the end.
 * Measured with libsluice:
 *   1. produce --mib MiB (default 1024) of 1 KiB records (empty keys: round-robin over 4
 *      shards; producer batch_bytes 1 MiB, i.e. ~1,000 records a batch; ACK_WRITTEN),
 *      first produce to flush done: records/s and payload MB/s;
 *   2. the same volume's worth of time with 100 B records (ACK_WRITTEN): records/s;
 *   3. a consumer reading the backlog of 1. from TRIM_HORIZON: payload MB/s;
 *   4. ACK_DURABLE latency: 1 KiB records on a 1-shard stream at --rate records/s (default
 *      1,000) for --seconds (default 5), linger 1 ms: p50/p99 from produce to delivery.
 * Ceilings of the same run:
 *   - loopback TCP: one thread streams the same volume over a 127.0.0.1 TCP connection in
 *     1 MiB writes to another that reads it: MB/s;
 *   - 4 KiB append + fdatasync on a fresh file in --dir (the data directory's filesystem):
 *     p50/p99 over 1,000 samples (at most 5 s).
 * Prints a markdown table. Units: MB = 10^6 bytes, MiB = 2^20. Errors end the program.
 */
#include "bench/bench_broker.h"
#include "client/sluice.h"
#include "common/error.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef SLUICED_PATH
#define SLUICED_PATH "sluiced"
#endif

#define SHARDS 4u
#define LOOP_CHUNK (1u << 20)
#define FSYNC_SAMPLES 1000u

static const char *dir_base = "/var/tmp";
static struct bench_broker bb;
static uint64_t volume_bytes = 1024ull << 20;
static uint32_t rate = 1000;
static uint32_t seconds = 5;

static _Noreturn void die(const char *what, int rc)
{
    fprintf(stderr, "e2e_bench: %s: %s (%s)\n", what, sl_errname(rc), sluice_last_error());
    if (bb.pid > 0) {
        kill(bb.pid, SIGKILL);
    }
    exit(1);
}

/* ---- the broker ---- */

/* ---- loopback TCP ceiling ---- */

struct loop_arg {
    int fd;
    uint64_t bytes;
};

static void *loop_reader(void *p)
{
    struct loop_arg *a = p;
    uint8_t *buf = malloc(LOOP_CHUNK);
    uint64_t got = 0;
    while (got < a->bytes) {
        ssize_t n = recv(a->fd, buf, LOOP_CHUNK, 0);
        if (n <= 0) {
            break;
        }
        got += (uint64_t)n;
    }
    free(buf);
    a->bytes = got;
    return NULL;
}

static double loopback_mbps(uint64_t bytes)
{
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof(a);
    if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(ls, 1) != 0 ||
        getsockname(ls, (struct sockaddr *)&a, &alen) != 0) {
        perror("loopback listen");
        exit(1);
    }
    int cs = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(cs, (struct sockaddr *)&a, sizeof(a)) != 0) {
        perror("loopback connect");
        exit(1);
    }
    struct loop_arg arg = {.fd = accept(ls, NULL, NULL), .bytes = bytes};
    pthread_t th;
    pthread_create(&th, NULL, loop_reader, &arg);
    uint8_t *buf = malloc(LOOP_CHUNK);
    memset(buf, 0x5A, LOOP_CHUNK);
    uint64_t t0 = bench_now_ns(), sent = 0;
    while (sent < bytes) {
        size_t want = bytes - sent < LOOP_CHUNK ? (size_t)(bytes - sent) : LOOP_CHUNK;
        ssize_t n = send(cs, buf, want, MSG_NOSIGNAL);
        if (n <= 0) {
            perror("loopback send");
            exit(1);
        }
        sent += (uint64_t)n;
    }
    pthread_join(th, NULL);
    uint64_t t1 = bench_now_ns();
    free(buf);
    close(cs);
    close(arg.fd);
    close(ls);
    return (double)arg.bytes / ((double)(t1 - t0) / 1e9) / 1e6;
}

/* ---- fdatasync ceiling ---- */

static void fsync_latency(uint64_t *p50, uint64_t *p99, uint32_t *samples)
{
    char path[300];
    snprintf(path, sizeof(path), "%s/fsync-probe", bb.root[0] ? bb.root : dir_base);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
    if (fd < 0) {
        perror("fsync probe");
        exit(1);
    }
    static uint8_t block[4096];
    memset(block, 0xA5, sizeof(block));
    uint64_t *lat = calloc(FSYNC_SAMPLES, sizeof(*lat));
    uint64_t stop = bench_now_ns() + 5000000000ull;
    uint32_t n = 0;
    while (n < FSYNC_SAMPLES && bench_now_ns() < stop) {
        uint64_t t0 = bench_now_ns();
        if (write(fd, block, sizeof(block)) != (ssize_t)sizeof(block) || fdatasync(fd) != 0) {
            perror("fsync probe");
            exit(1);
        }
        lat[n++] = bench_now_ns() - t0;
    }
    close(fd);
    unlink(path);
    qsort(lat, n, sizeof(*lat), bench_cmp_u64);
    *p50 = lat[n / 2];
    *p99 = lat[n * 99 / 100];
    *samples = n;
    free(lat);
}

/* ---- produce throughput ---- */

static atomic_uint_fast64_t failed;

static void on_delivery(void *ctx, int err, uint32_t shard, uint64_t seq)
{
    (void)ctx;
    (void)shard;
    (void)seq;
    if (err != SL_OK) {
        atomic_fetch_add(&failed, 1);
    }
}

static void make_stream(sluice_client *c, const char *name, uint32_t shards)
{
    struct sluice_stream_opts o = {.shard_count = shards, .compression = SLUICE_COMPRESSION_NONE};
    int rc = sluice_stream_create(c, name, &o, NULL);
    if (rc != SL_OK) {
        die("create stream", rc);
    }
}

/* Produces `records` records of `size` bytes; returns the seconds taken. */
static double produce_run(sluice_client *c, const char *stream, uint64_t records, uint32_t size)
{
    sluice_producer *p = NULL;
    struct sluice_producer_opts po = {.batch_bytes = 1u << 20, .linger_ms = 5,
                                      .block_when_full = 1, .ack = SLUICE_ACK_WRITTEN,
                                      .compression = SLUICE_COMPRESSION_NONE};
    int rc = sluice_producer_new(c, stream, &po, &p);
    if (rc != SL_OK) {
        die("producer", rc);
    }
    uint8_t *val = malloc(size);
    for (uint32_t i = 0; i < size; i++) {
        val[i] = (uint8_t)('a' + i % 26);
    }
    uint64_t t0 = bench_now_ns();
    for (uint64_t i = 0; i < records; i++) {
        memcpy(val, &i, sizeof(i) < size ? sizeof(i) : size);
        rc = sluice_produce(p, NULL, 0, val, size, NULL, 0, on_delivery, NULL);
        if (rc != SL_OK) {
            die("produce", rc);
        }
    }
    rc = sluice_producer_flush(p, 0);
    if (rc != SL_OK) {
        die("flush", rc);
    }
    double s = (double)(bench_now_ns() - t0) / 1e9;
    sluice_producer_free(p);
    free(val);
    if (atomic_load(&failed) != 0) {
        fprintf(stderr, "e2e_bench: %" PRIu64 " records failed\n",
                (uint64_t)atomic_load(&failed));
        exit(1);
    }
    return s;
}

/* Reads `records` records from TRIM_HORIZON; returns the seconds taken and the payload. */
static double consume_run(sluice_client *c, const char *stream, uint64_t records,
                          uint64_t *payload)
{
    sluice_consumer *cons = NULL;
    struct sluice_consumer_opts co = {.start = {.kind = SLUICE_TRIM_HORIZON}};
    int rc = sluice_consumer_new(c, stream, NULL, &co, &cons);
    if (rc != SL_OK) {
        die("consumer", rc);
    }
    static struct sluice_record recs[8192];
    uint64_t got = 0, bytes = 0, t0 = bench_now_ns();
    while (got < records) {
        size_t n = 0;
        rc = sluice_consumer_poll(cons, recs, 8192, &n, 1000);
        if (rc != SL_OK) {
            die("poll", rc);
        }
        if (n == 0 && sluice_consumer_caught_up(cons)) {
            fprintf(stderr, "e2e_bench: backlog ended after %" PRIu64 " records\n", got);
            exit(1);
        }
        for (size_t i = 0; i < n; i++) {
            bytes += recs[i].value_len;
        }
        got += n;
    }
    double s = (double)(bench_now_ns() - t0) / 1e9;
    sluice_consumer_free(cons);
    *payload = bytes;
    return s;
}

/* ---- durable latency ---- */

struct lat_ctx {
    uint64_t *sent_ns;
    uint64_t *lat_ns;
    atomic_uint done;
};
static struct lat_ctx lat;

static void on_durable(void *ctx, int err, uint32_t shard, uint64_t seq)
{
    (void)shard;
    (void)seq;
    uint32_t i = (uint32_t)(uintptr_t)ctx;
    if (err != SL_OK) {
        atomic_fetch_add(&failed, 1);
    }
    lat.lat_ns[i] = bench_now_ns() - lat.sent_ns[i];
    atomic_fetch_add(&lat.done, 1);
}

static void durable_latency(sluice_client *c, const char *stream, uint64_t *p50, uint64_t *p99,
                            uint32_t *samples)
{
    uint32_t n = rate * seconds;
    lat.sent_ns = calloc(n, sizeof(uint64_t));
    lat.lat_ns = calloc(n, sizeof(uint64_t));
    sluice_producer *p = NULL;
    struct sluice_producer_opts po = {.linger_ms = 1, .block_when_full = 1,
                                      .ack = SLUICE_ACK_DURABLE,
                                      .compression = SLUICE_COMPRESSION_NONE};
    int rc = sluice_producer_new(c, stream, &po, &p);
    if (rc != SL_OK) {
        die("producer", rc);
    }
    static uint8_t val[1024];
    memset(val, 'd', sizeof(val));
    uint64_t t0 = bench_now_ns(), gap = 1000000000ull / rate;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t due = t0 + (uint64_t)i * gap, t = bench_now_ns();
        if (due > t) {
            bench_sleep_ns(due - t);
        }
        lat.sent_ns[i] = bench_now_ns();
        rc = sluice_produce(p, NULL, 0, val, sizeof(val), NULL, 0, on_durable,
                            (void *)(uintptr_t)i);
        if (rc != SL_OK) {
            die("produce", rc);
        }
    }
    if ((rc = sluice_producer_flush(p, 0)) != SL_OK) {
        die("flush", rc);
    }
    sluice_producer_free(p);
    qsort(lat.lat_ns, n, sizeof(uint64_t), bench_cmp_u64);
    *p50 = lat.lat_ns[n / 2];
    *p99 = lat.lat_ns[n * 99 / 100];
    *samples = n;
    free(lat.sent_ns);
    free(lat.lat_ns);
}

static void usage(void)
{
    fprintf(stderr, "usage: e2e_bench [--broker HOST:PORT] [--dir D] [--mib N] [--rate R] "
                    "[--seconds S]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *broker = NULL;
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "--broker") == 0) {
            broker = argv[++i];
        } else if (i + 1 < argc && strcmp(argv[i], "--dir") == 0) {
            dir_base = argv[++i];
        } else if (i + 1 < argc && strcmp(argv[i], "--mib") == 0) {
            volume_bytes = strtoull(argv[++i], NULL, 10) << 20;
        } else if (i + 1 < argc && strcmp(argv[i], "--rate") == 0) {
            rate = (uint32_t)strtoul(argv[++i], NULL, 10);
        } else if (i + 1 < argc && strcmp(argv[i], "--seconds") == 0) {
            seconds = (uint32_t)strtoul(argv[++i], NULL, 10);
        } else {
            usage();
        }
    }
    if (volume_bytes == 0 || rate == 0 || seconds == 0) {
        usage();
    }
    signal(SIGPIPE, SIG_IGN);
    if (broker == NULL) {
        bench_broker_start(&bb, "e2e", dir_base, "interval");
        broker = bb.addr;
    }
    sluice_client *c = NULL;
    int rc = sluice_client_new(broker, NULL, &c);
    if (rc != SL_OK) {
        die("connect", rc);
    }
    char s1k[64], s100[64], slat[64];
    snprintf(s1k, sizeof(s1k), "e2e-1k-%d", (int)getpid());
    snprintf(s100, sizeof(s100), "e2e-100-%d", (int)getpid());
    snprintf(slat, sizeof(slat), "e2e-lat-%d", (int)getpid());
    make_stream(c, s1k, SHARDS);
    make_stream(c, s100, SHARDS);
    make_stream(c, slat, 1);

    uint64_t n1k = volume_bytes / 1024;
    fprintf(stderr, "produce %" PRIu64 " x 1 KiB ...\n", n1k);
    double t1k = produce_run(c, s1k, n1k, 1024);
    fprintf(stderr, "loopback TCP ...\n");
    double loop = loopback_mbps(n1k * 1024);
    uint64_t n100 = volume_bytes / 256; /* 4x the records of the 1 KiB case */
    fprintf(stderr, "produce %" PRIu64 " x 100 B ...\n", n100);
    double t100 = produce_run(c, s100, n100, 100);
    fprintf(stderr, "consume the 1 KiB backlog ...\n");
    uint64_t payload = 0;
    double tc = consume_run(c, s1k, n1k, &payload);
    fprintf(stderr, "durable latency at %u records/s for %u s ...\n", rate, seconds);
    uint64_t d50, d99, f50, f99;
    uint32_t dn, fn;
    durable_latency(c, slat, &d50, &d99, &dn);
    fprintf(stderr, "fdatasync latency ...\n");
    fsync_latency(&f50, &f99, &fn);

    sluice_stream_delete(c, s1k);
    sluice_stream_delete(c, s100);
    sluice_stream_delete(c, slat);
    sluice_client_free(c);
    bench_broker_stop(&bb, "e2e");

    printf("| case | result | ceiling (same run) |\n");
    printf("|---|---|---|\n");
    printf("| produce 1 KiB records, %" PRIu64 " MiB, batches of ~1,000 (1 MiB), ACK_WRITTEN, "
           "%u shards | %.0f records/s, %.0f MB/s | loopback TCP %.0f MB/s (%.0f%%) |\n",
           (n1k * 1024) >> 20, SHARDS, (double)n1k / t1k, (double)n1k * 1024 / t1k / 1e6, loop,
           100.0 * ((double)n1k * 1024 / t1k / 1e6) / loop);
    printf("| produce 100 B records, %" PRIu64 " records, ACK_WRITTEN | %.0f records/s, "
           "%.0f MB/s | |\n",
           n100, (double)n100 / t100, (double)n100 * 100 / t100 / 1e6);
    printf("| consumer catch-up of the 1 KiB backlog | %.0f MB/s (%.0f records/s) | loopback "
           "TCP %.0f MB/s |\n",
           (double)payload / tc / 1e6, (double)n1k / tc, loop);
    printf("| ACK_DURABLE latency, 1 KiB at %u records/s, %u samples | p50 %.2f ms, p99 %.2f ms "
           "| 4 KiB append+fdatasync (%u samples): p50 %.2f ms, p99 %.2f ms |\n",
           rate, dn, (double)d50 / 1e6, (double)d99 / 1e6, fn, (double)f50 / 1e6,
           (double)f99 / 1e6);
    return 0;
}
