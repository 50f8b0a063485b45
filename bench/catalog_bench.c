/* catalog_bench.c - what many idle streams cost the broker: the create rate, the memory
 * and descriptors per idle stream and shard, and the restart time (#11).
 *
 *   catalog_bench [--streams N] [--shards S] [--threads T] [--dir D] [--flush F] [--kill9]
 *                 [--broker-arg ARG]...
 *
 * A benchmark, not a test. Starts the broker built with it (SLUICED_PATH) on 127.0.0.1, an
 * ephemeral port and a fresh data directory under --dir (default /var/tmp), then:
 *   1. T threads (default 4), each with its own connection, create N streams (default 1,000)
 *      of S shards (default 8) one request at a time (CreateStream is durable before its
 *      answer): streams/s, and each create's latency p50/p99;
 *   2. the broker's RSS (VmRSS) and open descriptors (/proc/PID/fd) before and after, per
 *      idle stream and per idle shard;
 *   3. a restart (SIGTERM, or SIGKILL with --kill9): ms until the port answers and until
 *      the last stream is described, and RSS and descriptors after it.
 * Prints a markdown table. Errors end the program.
 */
#include "bench/bench_broker.h"
#include "client/sluice.h"

#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef SLUICED_PATH
#define SLUICED_PATH "sluiced"
#endif

#define PROG           "catalog_bench"
#define THREADS_MAX    64
#define RESTART_WAIT_S 600u

static uint32_t n_streams = 1000, n_shards = 8, n_threads = 4;
static const char *dir_base = "/var/tmp";
static const char *flush = "always";
static int kill9;
static const char *extra[BENCH_BROKER_EXTRA_MAX];
static int extra_len;
static struct bench_broker bb;
static uint64_t *lat_ns; /* per create */
static atomic_uint next_stream;

static sluice_client *connect_or_die(void)
{
    sluice_client *c = NULL;
    if (sluice_client_new(bb.addr, NULL, &c) != SLUICE_OK) {
        fprintf(stderr, PROG ": cannot connect to %s: %s\n", bb.addr, sluice_last_error());
        exit(1);
    }
    return c;
}

static void *creator(void *arg)
{
    (void)arg;
    sluice_client *c = connect_or_die();
    struct sluice_stream_opts o = {.shard_count = n_shards};
    for (;;) {
        uint32_t i = atomic_fetch_add(&next_stream, 1);
        if (i >= n_streams) {
            break;
        }
        char name[32];
        snprintf(name, sizeof(name), "s%07u", i);
        uint64_t t0 = bench_now_ns();
        int rc = sluice_stream_create(c, name, &o, NULL);
        lat_ns[i] = bench_now_ns() - t0;
        if (rc != SLUICE_OK) {
            fprintf(stderr, PROG ": create %s: %s\n", name, sluice_last_error());
            exit(1);
        }
    }
    sluice_client_free(c);
    return NULL;
}

static void usage(void)
{
    fprintf(stderr, "usage: " PROG " [--streams N] [--shards S] [--threads T] [--dir D] "
                    "[--flush always|interval] [--kill9] [--broker-arg ARG]...\n");
    exit(2);
}

static void parse_args(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--kill9") == 0) {
            kill9 = 1;
            continue;
        }
        if (v == NULL) {
            usage();
        }
        i++;
        if (strcmp(a, "--streams") == 0) {
            n_streams = (uint32_t)strtoul(v, NULL, 10);
        } else if (strcmp(a, "--shards") == 0) {
            n_shards = (uint32_t)strtoul(v, NULL, 10);
        } else if (strcmp(a, "--threads") == 0) {
            n_threads = (uint32_t)strtoul(v, NULL, 10);
        } else if (strcmp(a, "--dir") == 0) {
            dir_base = v;
        } else if (strcmp(a, "--flush") == 0) {
            flush = v;
        } else if (strcmp(a, "--broker-arg") == 0 && extra_len < BENCH_BROKER_EXTRA_MAX) {
            extra[extra_len++] = v;
        } else {
            usage();
        }
    }
    if (n_streams == 0 || n_shards == 0 || n_threads == 0 || n_threads > THREADS_MAX) {
        usage();
    }
}

/* The restart: halted, started again, then the last stream described. */
static void restart(const struct bench_broker_opts *o, double *port_ms, double *serve_ms)
{
    bench_broker_halt(&bb, kill9 ? SIGKILL : SIGTERM, NULL);
    uint64_t t0 = bench_now_ns();
    bench_broker_respawn(&bb, o);
    sluice_client *c = NULL;
    while (sluice_client_new(bb.addr, NULL, &c) != SLUICE_OK) {
        if (!bench_broker_running(&bb, NULL) ||
            bench_now_ns() - t0 > (uint64_t)RESTART_WAIT_S * 1000000000u) {
            fprintf(stderr, PROG ": the broker did not answer after the restart\n");
            exit(1);
        }
        usleep(2000);
    }
    *port_ms = (double)(bench_now_ns() - t0) / 1e6;
    char name[32];
    snprintf(name, sizeof(name), "s%07u", n_streams - 1);
    struct sluice_stream_info *info = NULL;
    if (sluice_stream_describe(c, name, &info) != SLUICE_OK) {
        fprintf(stderr, PROG ": describe %s after the restart: %s\n", name, sluice_last_error());
        exit(1);
    }
    *serve_ms = (double)(bench_now_ns() - t0) / 1e6;
    sluice_stream_info_free(info);
    sluice_client_free(c);
}

int main(int argc, char **argv)
{
    parse_args(argc, argv);
    lat_ns = calloc(n_streams, sizeof(*lat_ns));
    if (lat_ns == NULL) {
        return 1;
    }
    struct bench_broker_opts o = {
        .flush = flush, .extra = extra, .extra_len = extra_len, .cpu = -1};
    bench_broker_start_opts(&bb, PROG, dir_base, &o);
    bench_sleep_ns(300000000);
    long rss0 = bench_proc_rss_kib(bb.pid);
    long fds0 = bench_proc_fds(bb.pid);
    pthread_t th[THREADS_MAX];
    uint64_t t0 = bench_now_ns();
    for (uint32_t i = 0; i < n_threads; i++) {
        pthread_create(&th[i], NULL, creator, NULL);
    }
    for (uint32_t i = 0; i < n_threads; i++) {
        pthread_join(th[i], NULL);
    }
    double secs = (double)(bench_now_ns() - t0) / 1e9;
    bench_sleep_ns(1000000000);
    long rss1 = bench_proc_rss_kib(bb.pid);
    long fds1 = bench_proc_fds(bb.pid);
    qsort(lat_ns, n_streams, sizeof(*lat_ns), bench_cmp_u64);
    double port_ms = 0, serve_ms = 0;
    restart(&o, &port_ms, &serve_ms);
    bench_sleep_ns(1000000000);
    long rss2 = bench_proc_rss_kib(bb.pid);
    long fds2 = bench_proc_fds(bb.pid);
    bench_broker_stop(&bb, PROG);
    uint64_t shards = (uint64_t)n_streams * n_shards;
    printf("| %u streams x %u shards, %u threads, flush %s | |\n|---|---:|\n", n_streams, n_shards,
           n_threads, flush);
    printf("| creates/s | %.0f |\n", n_streams / secs);
    printf("| create latency p50 / p99 (ms) | %.2f / %.2f |\n", (double)lat_ns[n_streams / 2] / 1e6,
           (double)lat_ns[n_streams * 99 / 100] / 1e6);
    printf("| RSS fresh / after creates (MiB) | %.1f / %.1f |\n", rss0 / 1024.0, rss1 / 1024.0);
    printf("| RSS per idle stream / shard (KiB) | %.1f / %.2f |\n",
           (double)(rss1 - rss0) / n_streams, (double)(rss1 - rss0) / (double)shards);
    printf("| descriptors fresh / after creates | %ld / %ld |\n", fds0, fds1);
    printf("| restart (%s): port / last stream described (ms) | %.0f / %.0f |\n",
           kill9 ? "kill -9" : "SIGTERM", port_ms, serve_ms);
    printf("| after the restart: RSS (MiB), descriptors | %.1f, %ld |\n", rss2 / 1024.0, fds2);
    printf("| RSS per shard after the restart (KiB) | %.2f |\n",
           (double)(rss2 > rss0 ? rss2 - rss0 : 0) / (double)shards);
    free(lat_ns);
    return 0;
}
