/* queue_bench.c - queue groups and topic subscriptions through TCP: receive+ack throughput,
 * fan-out and end-to-end latency.
 *
 *   queue_bench [--broker HOST:PORT] [--dir D] [--flush always|interval] [--messages N]
 *               [--receivers R] [--fanout-messages M] [--subs S] [--seconds T]
 *
 * A benchmark, not a test. Without --broker it starts the broker built with it
 * (SLUICED_PATH) on 127.0.0.1, an ephemeral port and a fresh mkdtemp data directory under
 * --dir (default /var/tmp), with --flush (default always: producer ACK_DURABLE means an
 * fdatasync), and stops it (SIGTERM) at the end. Queue acks and delivery counts are always
 * durable (storage/qstate group-commits them: one write + fdatasync per loop tick).
 * Measured with libsluice, every receiver thread on its own client (TCP connection):
 *   a. receive+ack: --messages (default 200,000) records of 100 B pre-loaded into a
 *      2-shard stream with one queue group; --receivers (default 4) threads loop
 *      receive(max 100, wait 100 ms) + ack(all receipts) until every record is acked:
 *      messages/s from the start barrier to the last ack;
 *   b. fan-out: --fanout-messages (default 100,000) records of 100 B in a 2-shard topic;
 *      one subscription drained alone by one thread, then --subs (default 4) new
 *      subscriptions drained at once, one thread each: per-subscription messages/s and
 *      its ratio to the single subscription's;
 *   c. latency: a producer sends one 100 B record every ms for --seconds (default 10)
 *      (linger 1 ms, ACK_DURABLE) to a 2-shard queue; one receiver long-polls
 *      (max 100, wait 1 s) and acks: p50/p99/max from the send (a CLOCK_MONOTONIC
 *      timestamp in the body) to the receive's return.
 * Every record carries its index in its first 8 bytes; each phase checks that every index
 * was acked exactly once (a redelivery after an ack would show as a duplicate).
 * Prints a markdown table. Errors end the program.
 */
#include "bench/bench_broker.h"
#include "client/sluice.h"
#include "common/error.h"

#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef SLUICED_PATH
#define SLUICED_PATH "sluiced"
#endif

#define SHARDS        2u
#define VALUE_BYTES   100u
#define RECV_MAX      100u   /* records per receive (a) and (b) */
#define RECV_WAIT_MS  100u   /* long-poll of (a) and (b) */
#define LAT_WAIT_MS   1000u  /* long-poll of (c) */
#define LAT_DRAIN_MS  10000u /* (c): how long after the last send the receiver may lag */
#define SUBS_MAX      64u
#define RECEIVERS_MAX 64u

static const char *dir_base = "/var/tmp";
static const char *flush_mode = "always";
static struct bench_broker bb;
static const char *broker;
static uint64_t messages = 200000;
static uint32_t receivers = 4;
static uint64_t fanout_messages = 100000;
static uint32_t subs = 4;
static uint32_t seconds = 10;

static _Noreturn void die(const char *what, int rc)
{
    fprintf(stderr, "queue_bench: %s: %s (%s)\n", what, sl_errname(rc), sluice_last_error());
    if (bb.pid > 0) {
        kill(bb.pid, SIGKILL);
    }
    exit(1);
}

static sluice_client *connect_one(void)
{
    sluice_client *c = NULL;
    int rc = sluice_client_new(broker, NULL, &c);
    if (rc != SL_OK) {
        die("connect", rc);
    }
    return c;
}

/* ---- the broker ---- */

/* ---- loading ---- */

static atomic_uint_fast64_t produce_failed;

static void on_delivery(void *ctx, int err, uint32_t shard, uint64_t seq)
{
    (void)ctx;
    (void)shard;
    (void)seq;
    if (err != SL_OK) {
        atomic_fetch_add(&produce_failed, 1);
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

static void make_group(sluice_client *c, const char *stream, const char *group)
{
    int rc = sluice_queue_group_create(c, stream, group, NULL);
    if (rc != SL_OK) {
        die("create group", rc);
    }
}

/* Produces `records` 100 B records numbered 0.. (batches of 1 MiB, ACK_DURABLE); returns
 * the seconds taken. */
static double preload(sluice_client *c, const char *stream, uint64_t records)
{
    sluice_producer *p = NULL;
    struct sluice_producer_opts po = {.batch_bytes = 1u << 20,
                                      .linger_ms = 5,
                                      .block_when_full = 1,
                                      .ack = SLUICE_ACK_DURABLE,
                                      .compression = SLUICE_COMPRESSION_NONE};
    int rc = sluice_producer_new(c, stream, &po, &p);
    if (rc != SL_OK) {
        die("producer", rc);
    }
    uint8_t val[VALUE_BYTES];
    memset(val, 'q', sizeof(val));
    uint64_t t0 = bench_now_ns();
    for (uint64_t i = 0; i < records; i++) {
        memcpy(val, &i, sizeof(i));
        rc = sluice_produce(p, NULL, 0, val, sizeof(val), NULL, 0, on_delivery, NULL);
        if (rc != SL_OK) {
            die("produce", rc);
        }
    }
    if ((rc = sluice_producer_flush(p, 0)) != SL_OK) {
        die("flush", rc);
    }
    double s = (double)(bench_now_ns() - t0) / 1e9;
    sluice_producer_free(p);
    if (atomic_load(&produce_failed) != 0) {
        fprintf(stderr, "queue_bench: %" PRIu64 " records failed\n",
                (uint64_t)atomic_load(&produce_failed));
        exit(1);
    }
    return s;
}

/* ---- draining: receive + ack until every record of a set is acked ---- */

/* One group drained by one or more threads. */
struct drain_set {
    const char *stream;
    const char *group;
    uint64_t total;
    atomic_uchar *acked_once; /* per record index: acked (first time) */
    atomic_uint_fast64_t acked;
    atomic_uint_fast64_t duplicates;  /* acked again after it was acked */
    atomic_uint_fast64_t redelivered; /* deliveries with delivery_count > 1 */
    atomic_uint_fast64_t ack_lost;    /* receipts refused (lease ended) */
    atomic_uint_fast64_t receives;
    atomic_uint_fast64_t done_ns; /* when the last record was acked */
};

struct drainer {
    struct drain_set *set;
    pthread_barrier_t *start;
    pthread_t th;
};

static void drain_set_init(struct drain_set *s, const char *stream, const char *group,
                           uint64_t total)
{
    memset(s, 0, sizeof(*s));
    s->stream = stream;
    s->group = group;
    s->total = total;
    s->acked_once = calloc(total, sizeof(*s->acked_once));
    if (s->acked_once == NULL) {
        die("calloc", SL_ENOMEM);
    }
}

static uint64_t msg_index(const struct sluice_message *m)
{
    uint64_t idx = UINT64_MAX;
    if (m->value_len >= sizeof(idx)) {
        memcpy(&idx, m->value, sizeof(idx));
    }
    return idx;
}

/* Acks one receive's messages and accounts for them. */
static void drain_ack(sluice_client *c, struct drain_set *s, const struct sluice_message *msgs,
                      size_t n)
{
    const char *receipts[RECV_MAX] = {NULL};
    int results[RECV_MAX] = {0};
    if (n > RECV_MAX) { /* the broker hands out at most what was asked */
        fprintf(stderr, "queue_bench: receive returned %zu > %u messages\n", n, RECV_MAX);
        exit(1);
    }
    for (size_t i = 0; i < n; i++) {
        receipts[i] = msgs[i].receipt;
        if (msgs[i].delivery_count > 1) {
            atomic_fetch_add(&s->redelivered, 1);
        }
    }
    int rc = sluice_queue_ack(c, s->stream, s->group, receipts, n, results);
    if (rc != SL_OK && rc != SL_ENOTFOUND) {
        die("ack", rc);
    }
    uint64_t fresh = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t idx = msg_index(&msgs[i]);
        if (results[i] != SL_OK) {
            atomic_fetch_add(&s->ack_lost, 1);
        } else if (idx >= s->total) {
            fprintf(stderr, "queue_bench: record index %" PRIu64 " out of range\n", idx);
            exit(1);
        } else if (atomic_exchange(&s->acked_once[idx], 1) != 0) {
            atomic_fetch_add(&s->duplicates, 1);
        } else {
            fresh++;
        }
    }
    if (fresh > 0 && atomic_fetch_add(&s->acked, fresh) + fresh == s->total) {
        atomic_store(&s->done_ns, bench_now_ns());
    }
}

static void *drain_main(void *arg)
{
    struct drainer *d = arg;
    struct drain_set *s = d->set;
    sluice_client *c = connect_one();
    pthread_barrier_wait(d->start);
    while (atomic_load(&s->acked) < s->total) {
        struct sluice_message *msgs = NULL;
        size_t n = 0;
        int rc = sluice_queue_receive(c, s->stream, s->group, RECV_MAX, RECV_WAIT_MS, 0, &msgs, &n);
        if (rc != SL_OK) {
            die("receive", rc);
        }
        atomic_fetch_add(&s->receives, 1);
        if (n > 0) {
            drain_ack(c, s, msgs, n);
        }
        sluice_messages_free(msgs, n);
    }
    sluice_client_free(c);
    return NULL;
}

/* Runs `n` drainers over sets[i % sets_len]; returns the start time (after every thread
 * connected). */
static uint64_t drain_run(struct drain_set *sets, uint32_t sets_len, uint32_t n)
{
    struct drainer d[RECEIVERS_MAX > SUBS_MAX ? RECEIVERS_MAX : SUBS_MAX];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, n + 1);
    for (uint32_t i = 0; i < n; i++) {
        d[i].set = &sets[i % sets_len];
        d[i].start = &start;
        if (pthread_create(&d[i].th, NULL, drain_main, &d[i]) != 0) {
            die("pthread_create", SL_ESYS);
        }
    }
    pthread_barrier_wait(&start);
    uint64_t t0 = bench_now_ns();
    for (uint32_t i = 0; i < n; i++) {
        pthread_join(d[i].th, NULL);
    }
    pthread_barrier_destroy(&start);
    return t0;
}

/* Messages/s of a set drained since t0; checks every record was acked exactly once. */
static double drain_rate(struct drain_set *s, uint64_t t0)
{
    uint64_t acked = atomic_load(&s->acked), dup = atomic_load(&s->duplicates);
    if (acked != s->total || dup != 0) {
        fprintf(stderr,
                "queue_bench: %s/%s: %" PRIu64 " of %" PRIu64 " acked, %" PRIu64 " duplicates\n",
                s->stream, s->group, acked, s->total, dup);
        exit(1);
    }
    return (double)s->total / ((double)(atomic_load(&s->done_ns) - t0) / 1e9);
}

static void drain_set_fini(struct drain_set *s)
{
    free(s->acked_once);
    s->acked_once = NULL;
}

/* ---- latency ---- */

struct lat_run {
    const char *stream;
    uint32_t n;
    uint64_t *lat_ns; /* per index; 0 = not received */
    uint64_t received;
    uint64_t redelivered;
    uint64_t deadline_ns; /* set by the producer after its last send */
    atomic_int producing;
};

static void *lat_receiver(void *arg)
{
    struct lat_run *r = arg;
    sluice_client *c = connect_one();
    while (r->received < r->n) {
        if (!atomic_load(&r->producing) && bench_now_ns() > r->deadline_ns) {
            break;
        }
        struct sluice_message *msgs = NULL;
        size_t n = 0;
        int rc = sluice_queue_receive(c, r->stream, "g", RECV_MAX, LAT_WAIT_MS, 0, &msgs, &n);
        uint64_t t = bench_now_ns();
        if (rc != SL_OK) {
            die("receive", rc);
        }
        const char *receipts[RECV_MAX] = {NULL};
        if (n > RECV_MAX) {
            fprintf(stderr, "queue_bench: receive returned %zu > %u messages\n", n, RECV_MAX);
            exit(1);
        }
        for (size_t i = 0; i < n; i++) {
            uint64_t idx = msg_index(&msgs[i]), sent = 0;
            memcpy(&sent, msgs[i].value + sizeof(idx), sizeof(sent));
            if (idx < r->n && r->lat_ns[idx] == 0) {
                r->lat_ns[idx] = t - sent;
                r->received++;
            }
            r->redelivered += msgs[i].delivery_count > 1;
            receipts[i] = msgs[i].receipt;
        }
        if (n > 0 && (rc = sluice_queue_ack(c, r->stream, "g", receipts, n, NULL)) != SL_OK) {
            die("ack", rc);
        }
        sluice_messages_free(msgs, n);
    }
    sluice_client_free(c);
    return NULL;
}

static void latency_run(sluice_client *c, const char *stream, uint64_t *p50, uint64_t *p99,
                        uint64_t *max, uint32_t *samples, uint64_t *redelivered)
{
    struct lat_run r = {.stream = stream, .n = 1000u * seconds};
    r.lat_ns = calloc(r.n, sizeof(uint64_t));
    atomic_store(&r.producing, 1);
    sluice_producer *p = NULL;
    struct sluice_producer_opts po = {.linger_ms = 1,
                                      .block_when_full = 1,
                                      .ack = SLUICE_ACK_DURABLE,
                                      .compression = SLUICE_COMPRESSION_NONE};
    int rc = sluice_producer_new(c, stream, &po, &p);
    if (rc != SL_OK) {
        die("producer", rc);
    }
    pthread_t th;
    pthread_create(&th, NULL, lat_receiver, &r);
    uint8_t val[VALUE_BYTES];
    memset(val, 'l', sizeof(val));
    uint64_t t0 = bench_now_ns();
    for (uint64_t i = 0; i < r.n; i++) {
        uint64_t due = t0 + i * 1000000u, t = bench_now_ns();
        if (due > t) {
            bench_sleep_ns(due - t);
        }
        uint64_t sent = bench_now_ns();
        memcpy(val, &i, sizeof(i));
        memcpy(val + sizeof(i), &sent, sizeof(sent));
        if ((rc = sluice_produce(p, NULL, 0, val, sizeof(val), NULL, 0, on_delivery, NULL)) !=
            SL_OK) {
            die("produce", rc);
        }
    }
    r.deadline_ns = bench_now_ns() + (uint64_t)LAT_DRAIN_MS * 1000000u;
    atomic_store(&r.producing, 0);
    if ((rc = sluice_producer_flush(p, 0)) != SL_OK) {
        die("flush", rc);
    }
    sluice_producer_free(p);
    pthread_join(th, NULL);
    if (r.received != r.n) {
        fprintf(stderr, "queue_bench: latency: %" PRIu64 " of %u received\n", r.received, r.n);
        exit(1);
    }
    qsort(r.lat_ns, r.n, sizeof(uint64_t), bench_cmp_u64);
    *p50 = r.lat_ns[r.n / 2];
    *p99 = r.lat_ns[(uint64_t)r.n * 99 / 100];
    *max = r.lat_ns[r.n - 1];
    *samples = r.n;
    *redelivered = r.redelivered;
    free(r.lat_ns);
}

/* ---- main ---- */

static void usage(void)
{
    fprintf(stderr, "usage: queue_bench [--broker HOST:PORT] [--dir D] [--flush always|interval]"
                    " [--messages N] [--receivers R] [--fanout-messages M] [--subs S]"
                    " [--seconds T]\n");
    exit(2);
}

static void parse_args(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v == NULL) {
            usage();
        } else if (strcmp(argv[i], "--broker") == 0) {
            broker = v;
        } else if (strcmp(argv[i], "--dir") == 0) {
            dir_base = v;
        } else if (strcmp(argv[i], "--flush") == 0) {
            flush_mode = v;
        } else if (strcmp(argv[i], "--messages") == 0) {
            messages = strtoull(v, NULL, 10);
        } else if (strcmp(argv[i], "--receivers") == 0) {
            receivers = (uint32_t)strtoul(v, NULL, 10);
        } else if (strcmp(argv[i], "--fanout-messages") == 0) {
            fanout_messages = strtoull(v, NULL, 10);
        } else if (strcmp(argv[i], "--subs") == 0) {
            subs = (uint32_t)strtoul(v, NULL, 10);
        } else if (strcmp(argv[i], "--seconds") == 0) {
            seconds = (uint32_t)strtoul(v, NULL, 10);
        } else {
            usage();
        }
        i++;
    }
    if (messages == 0 || receivers == 0 || receivers > RECEIVERS_MAX || fanout_messages == 0 ||
        subs == 0 || subs > SUBS_MAX || seconds == 0) {
        usage();
    }
}

int main(int argc, char **argv)
{
    parse_args(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    if (broker == NULL) {
        bench_broker_start(&bb, "qb", dir_base, flush_mode);
        broker = bb.addr;
    }
    sluice_client *c = connect_one();
    char sq[64], sf[64], sl[64];
    snprintf(sq, sizeof(sq), "qb-queue-%d", (int)getpid());
    snprintf(sf, sizeof(sf), "qb-fanout-%d", (int)getpid());
    snprintf(sl, sizeof(sl), "qb-lat-%d", (int)getpid());

    /* a. receive + ack */
    make_stream(c, sq, SHARDS);
    make_group(c, sq, "g");
    fprintf(stderr, "preload %" PRIu64 " x %u B ...\n", messages, VALUE_BYTES);
    double tload = preload(c, sq, messages);
    fprintf(stderr, "receive+ack with %u receivers ...\n", receivers);
    struct drain_set qa;
    drain_set_init(&qa, sq, "g", messages);
    uint64_t t0 = drain_run(&qa, 1, receivers);
    double rate_a = drain_rate(&qa, t0);
    struct sluice_queue_stats st;
    int rc = sluice_queue_stats(c, sq, "g", &st);
    if (rc != SL_OK || st.visible != 0 || st.inflight != 0) {
        fprintf(stderr,
                "queue_bench: after draining: visible %" PRIu64 ", inflight %" PRIu64 " (%s)\n",
                st.visible, st.inflight, sl_errname(rc));
        exit(1);
    }
    sluice_queue_stats_fini(&st);

    /* b. fan-out */
    make_stream(c, sf, SHARDS);
    make_group(c, sf, "solo");
    fprintf(stderr, "fan-out: load %" PRIu64 " x %u B ...\n", fanout_messages, VALUE_BYTES);
    preload(c, sf, fanout_messages);
    fprintf(stderr, "fan-out: one subscription alone ...\n");
    struct drain_set solo;
    drain_set_init(&solo, sf, "solo", fanout_messages);
    t0 = drain_run(&solo, 1, 1);
    double rate_solo = drain_rate(&solo, t0);
    fprintf(stderr, "fan-out: %u subscriptions at once ...\n", subs);
    static struct drain_set fan[SUBS_MAX];
    static char names[SUBS_MAX][16];
    for (uint32_t i = 0; i < subs; i++) {
        snprintf(names[i], sizeof(names[i]), "sub%u", i);
        make_group(c, sf, names[i]);
        drain_set_init(&fan[i], sf, names[i], fanout_messages);
    }
    t0 = drain_run(fan, subs, subs);
    double fan_min = 0, fan_max = 0, fan_sum = 0;
    uint64_t fan_end = 0;
    for (uint32_t i = 0; i < subs; i++) {
        double r = drain_rate(&fan[i], t0);
        fan_min = i == 0 || r < fan_min ? r : fan_min;
        fan_max = r > fan_max ? r : fan_max;
        fan_sum += r;
        uint64_t e = atomic_load(&fan[i].done_ns);
        fan_end = e > fan_end ? e : fan_end;
    }
    double fan_mean = fan_sum / subs;
    double fan_total = (double)fanout_messages * subs / ((double)(fan_end - t0) / 1e9);

    /* c. latency */
    make_stream(c, sl, SHARDS);
    make_group(c, sl, "g");
    fprintf(stderr, "latency: 1 message/ms for %u s ...\n", seconds);
    uint64_t l50, l99, lmax, lredo;
    uint32_t ln;
    latency_run(c, sl, &l50, &l99, &lmax, &ln, &lredo);

    sluice_stream_delete(c, sq);
    sluice_stream_delete(c, sf);
    sluice_stream_delete(c, sl);
    sluice_client_free(c);
    bench_broker_stop(&bb, "qb");

    printf("| case | result | notes |\n");
    printf("|---|---|---|\n");
    printf("| preload: %" PRIu64 " x %u B, %u shards, ACK_DURABLE, flush %s | %.0f msg/s | "
           "batches of 1 MiB |\n",
           messages, VALUE_BYTES, SHARDS, flush_mode, (double)messages / tload);
    printf("| a. receive(max %u, wait %u ms) + ack, %u receivers, %" PRIu64 " messages | "
           "**%.0f msg/s** | target >= 200,000/s; %" PRIu64 " receives, %" PRIu64
           " redelivered, %" PRIu64 " acks refused |\n",
           RECV_MAX, RECV_WAIT_MS, receivers, messages, rate_a, (uint64_t)atomic_load(&qa.receives),
           (uint64_t)atomic_load(&qa.redelivered), (uint64_t)atomic_load(&qa.ack_lost));
    printf("| b. one subscription alone, %" PRIu64 " messages, 1 thread | %.0f msg/s | |\n",
           fanout_messages, rate_solo);
    printf("| b. fan-out: %u subscriptions, %" PRIu64 " messages each, 1 thread each | "
           "per subscription %.0f msg/s (min %.0f, max %.0f); ratio to alone **%.2f** | "
           "aggregate %.0f msg/s delivered |\n",
           subs, fanout_messages, fan_mean, fan_min, fan_max, fan_mean / rate_solo, fan_total);
    printf("| c. latency send -> receive, 1 msg/ms, linger 1 ms, ACK_DURABLE, long-poll "
           "%u ms, %u samples | p50 %.2f ms, p99 %.2f ms (max %.2f ms) | %" PRIu64
           " redelivered |\n",
           LAT_WAIT_MS, ln, (double)l50 / 1e6, (double)l99 / 1e6, (double)lmax / 1e6, lredo);
    drain_set_fini(&qa);
    drain_set_fini(&solo);
    for (uint32_t i = 0; i < subs; i++) {
        drain_set_fini(&fan[i]);
    }
    return 0;
}
