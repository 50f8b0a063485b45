/* rules_bench.c - a bus with 1, 100 and 1,000 rules end to end (#17): each
 * rule a queue group with a body filter on one 2-shard stream (what
 * eb_rules.c makes of a rule), events put in rounds and every group drained
 * after each round, as groups tailing a live bus do.
 *
 *   rules_bench [--events N] [--round R] [--dir D]
 *
 * A benchmark, not a test. It starts the sluiced installed beside it (else the
 * one built with it, SLUICED_PATH) with --flush interval on an ephemeral port
 * under --dir (default /var/tmp). Per rule count: --events (default 10,000)
 * events of bench/rules_gen.h in rounds of --round (default 500); after each
 * round one client receives (max 1,000, no wait) and acks on every group in
 * turn until the group answers empty. Printed: the drain time (receives and
 * acks only), events/s through all the rules, the broker's CPU time (utime +
 * stime from /proc) per event over the drains, the deliveries (1 in 50
 * events per rule) and the broker's resident memory after the run (each
 * queue group's lease table grows with the leases it holds, up to max_inflight). Copying
 * this program next to another build's sluiced measures that build the same way.
 */
#include "bench/bench_broker.h"
#include "bench/rules_gen.h"
#include "client/sluice.h"
#include "common/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SHARDS     2u
#define RECV_MAX   1000u
#define RULES_MAX  1000u /* EventBridge's rules (EB_RULES_MAX); queue_groups_max is 1,024 */
#define EVENTS_DEF 10000u
#define ROUND_DEF  500u

static const char *g_prog = "rules_bench";

static void die(const char *what, int rc)
{
    fprintf(stderr, "%s: %s: %s (%s)\n", g_prog, what, sluice_strerror(rc), sluice_last_error());
    exit(1);
}

/* utime + stime of `pid` in clock ticks, 0 when unknown. */
static uint64_t cpu_ticks(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return 0;
    }
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    const char *p = strrchr(buf, ')'); /* comm may hold spaces */
    unsigned long long ut = 0, st = 0;
    if (p == NULL ||
        sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2) {
        return 0;
    }
    return ut + st;
}

static void produce(sluice_client *c, const char *stream, uint32_t from, uint32_t to)
{
    sluice_producer *p = NULL;
    struct sluice_producer_opts po = {.linger_ms = 1, .block_when_full = 1};
    int rc = sluice_producer_new(c, stream, &po, &p);
    if (rc != SL_OK) {
        die("producer", rc);
    }
    for (uint32_t i = from; i < to; i++) {
        char value[1024], key[16];
        int n = rules_gen_event(i, value, sizeof(value));
        int kl = snprintf(key, sizeof(key), "k%u", i % 97);
        if ((rc = sluice_produce(p, key, (size_t)kl, value, (size_t)n, NULL, 0, NULL, NULL)) !=
            SL_OK) {
            die("produce", rc);
        }
    }
    if ((rc = sluice_producer_flush(p, 60000)) != SL_OK) {
        die("flush", rc);
    }
    sluice_producer_free(p);
}

/* Receives and acks on `group` until it answers empty; the deliveries. */
static uint64_t drain(sluice_client *c, const char *stream, const char *group)
{
    static const char *receipts[RECV_MAX];
    uint64_t got = 0;
    for (;;) {
        struct sluice_message *m = NULL;
        size_t n = 0;
        int rc = sluice_queue_receive(c, stream, group, RECV_MAX, 0, 0, &m, &n);
        if (rc != SL_OK) {
            die("receive", rc);
        }
        if (n == 0) {
            return got;
        }
        for (size_t i = 0; i < n; i++) {
            receipts[i] = m[i].receipt;
        }
        if ((rc = sluice_queue_ack(c, stream, group, receipts, n, NULL)) != SL_OK) {
            die("ack", rc);
        }
        sluice_messages_free(m, n);
        got += n;
    }
}

static void run(sluice_client *c, pid_t pid, uint32_t rules, uint32_t events, uint32_t round)
{
    char stream[32], group[16], pat[512];
    snprintf(stream, sizeof(stream), "bus%u", rules);
    struct sluice_stream_opts so = {.shard_count = SHARDS};
    int rc = sluice_stream_create(c, stream, &so, NULL);
    if (rc != SL_OK) {
        die("stream create", rc);
    }
    for (uint32_t r = 0; r < rules; r++) {
        snprintf(group, sizeof(group), "r%u", r);
        rules_gen_pattern(r, pat, sizeof(pat));
        struct sluice_queue_group_opts o = {.filter = pat, .filter_body = 1};
        if ((rc = sluice_queue_group_create(c, stream, group, &o)) != SL_OK) {
            die("group create", rc);
        }
    }
    uint64_t ns = 0, ticks = 0, got = 0;
    for (uint32_t from = 0; from < events; from += round) {
        uint32_t to = from + round < events ? from + round : events;
        produce(c, stream, from, to);
        uint64_t t0 = bench_now_ns(), c0 = cpu_ticks(pid);
        for (uint32_t r = 0; r < rules; r++) {
            snprintf(group, sizeof(group), "r%u", r);
            got += drain(c, stream, group);
        }
        ns += bench_now_ns() - t0;
        ticks += cpu_ticks(pid) - c0;
    }
    double s = (double)ns / 1e9;
    double cpu_us = (double)ticks * 1e6 / (double)sysconf(_SC_CLK_TCK);
    long rss = bench_proc_rss_kib(pid);
    printf("| %5u | %7u | %8.2f | %10.0f | %14.1f | %10llu | %8.1f |\n", rules, events, s,
           events / s, cpu_us / events, (unsigned long long)got, rss >= 0 ? rss / 1024.0 : -1.0);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    uint32_t events = EVENTS_DEF, round = ROUND_DEF;
    const char *dir = "/var/tmp";
    const char *slash = strrchr(argv[0], '/');
    g_prog = slash != NULL ? slash + 1 : argv[0]; /* also the data directory's tag */
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--events") == 0) {
            events = (uint32_t)strtoul(argv[i + 1], NULL, 10);
        } else if (strcmp(argv[i], "--round") == 0) {
            round = (uint32_t)strtoul(argv[i + 1], NULL, 10);
        } else if (strcmp(argv[i], "--dir") == 0) {
            dir = argv[i + 1];
        } else {
            fprintf(stderr, "usage: rules_bench [--events N] [--round R] [--dir D]\n");
            return 2;
        }
    }
    if (events == 0 || round == 0) {
        fprintf(stderr, "%s: --events and --round must be at least 1\n", g_prog);
        return 2;
    }
    struct bench_broker b;
    bench_broker_start(&b, g_prog, dir, "interval");
    sluice_client *c = NULL;
    int rc = sluice_client_new(b.addr, NULL, &c);
    if (rc != SL_OK) {
        die("connect", rc);
    }
    printf(
        "| rules | events | drain s | events/s | broker CPU us/event | deliveries | RSS MiB |\n");
    printf(
        "|------:|-------:|--------:|---------:|--------------------:|-----------:|--------:|\n");
    static const uint32_t counts[] = {1, 100, RULES_MAX};
    for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
        run(c, b.pid, counts[i], events, round);
    }
    sluice_client_free(c);
    bench_broker_stop(&b, g_prog);
    return 0;
}
