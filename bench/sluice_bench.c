/* sluice_bench.c - a load generator for Sluice anyone can rerun: the real broker through
 * the real client library (libsluice), throughput and latency percentiles, server CPU and
 * disk cost per payload byte.
 *
 *   sluice-bench [--mode produce|consume|tail|queue|scale] [--record-bytes B] [--batch N]
 *                [--inflight N] [--inflight-batches N] [--linger-ms MS] [--shards N]
 *                [--producers N]
 *                [--consumers N] [--ack written|durable] [--compression none|zstd]
 *                [--rate R] [--warmup S] [--duration S] [--backlog N] [--queue-max N]
 *                [--streams N] [--group G]
 *                [--dir D] [--flush always|interval] [--broker-arg ARG]...
 *                [--broker HOST:PORT [--server-pid PID]] [--cpu-server N] [--cpu-client N]
 *                [--json] [--help]
 *
 * Modes (each on a fresh stream "sluice-bench-<pid>", deleted at the end):
 *   produce  producers only.
 *   consume  first fill a backlog (--backlog records, default 1 GB of payload), then
 *            --consumers cursor consumers (sluice_consumer) read it from the oldest record.
 *   tail     producers and consumers at once; consumers tail the stream; end-to-end
 *            latency = receive time - the send time carried in the record.
 *   queue    receivers loop sluice_queue_receive (--queue-max, wait 100 ms) +
 *            sluice_queue_ack on one queue group; with --backlog N they drain a pre-filled
 *            backlog, without it producers run at the same time.
 *   scale    many streams and shards on one broker (issue #11): create rate, idle RSS and
 *            descriptors, restart time (clean and kill -9), produce over all shards vs 4,
 *            read-back; --streams N of --shards S. Its own file: bench/scale_bench.c.
 * Consumers split the shards (consumer i reads shards i, i+C, ...); beyond one consumer per
 * shard the extra ones read a shard again (fan-out) and every delivery counts. With
 * --group G (consume, tail) they are members of consumer group G instead and the broker's
 * coordinator splits the shards (joins and hand-overs are part of the measured run).
 *
 * Load: every producer and consumer is a thread with its own client (TCP connection).
 * Closed loop by default (each producer produces as fast as the client accepts); with
 * --rate R the producers together send R records/s on a fixed schedule (record i of the
 * whole run is due at t0 + i/R) and latencies count from that intended time, also when the
 * generator falls behind (no coordinated omission). --batch N sizes the producer's batch
 * buffer (batch_bytes) so that exactly N records fill it (N = 1: each record is sent
 * alone); a batch is also sent when --linger-ms old (default 5). --inflight N bounds the
 * records produced but not yet acknowledged per producer (the client's buffer_bytes;
 * --inflight-batches N the batches in flight per shard, the client's max_inflight_batches,
 * default 5). Payload: lowercase letters a-p
 * at random (4 bits of entropy a byte, so zstd about halves it), read from a 4 MiB pool
 * walked in order (no repeats inside a batch of under 4 MiB); the first 8 bytes of a
 * record are its intended send time (CLOCK_MONOTONIC ns). No allocation per record.
 *
 * Timeline: --warmup S (default 1) then --duration S (default 5); only the measured
 * period counts: records/s and MB/s (payload, MB = 10^6 bytes) from acknowledgements
 * (produce, tail), records read (consume) or acks (queue) in the period; latency
 * percentiles (p50/p99/p99.9/max, bench/hist.h) of records whose intended send time falls
 * in it - ack latency from the produce call (or intended time) to the delivery callback,
 * end-to-end to the consumer's poll/receive return. Consume and queue-drain runs end early
 * when the backlog is done ("seconds" says how long was measured). Server cost over the
 * period: CPU seconds (utime + stime of /proc/<pid>/stat) per GB of payload, and disk bytes
 * written (/proc/<pid>/io write_bytes) per payload byte; n/a without a server pid.
 *
 * Broker: without --broker, starts the sluiced installed beside this program, else the one
 * built with it (SLUICED_PATH), on 127.0.0.1, an ephemeral port, a fresh directory under
 * --dir (default /var/tmp), with --flush (default interval) and every --broker-arg
 * verbatim; --cpu-server pins it to one core, --cpu-client pins this process. With
 * --broker HOST:PORT it uses a running broker (--server-pid PID for the CPU and disk
 * figures).
 *
 * Output: a short human table, or with --json one JSON object on one line: the settings
 * (mode, record_bytes, batch, shards, producers and consumers - threads of the measured
 * run -, ack, flush, compression, rate, inflight, linger_ms (0: none), backlog, warmup), then
 * records, seconds, records_per_s, mb_per_s, produced_records, consumed_records,
 * failed_records, avg_batch_records, ack_{p50,p99,p999,max}_us,
 * e2e_{p50,p99,p999,max}_us, server_cpu_s_per_gb, disk_bytes_per_payload_byte (null when
 * not measured); tail mode (unless --trace off) adds the latency breakdown (tail_trace.h):
 * traced_records, traced_parked, e2e_from_call_{p50,p99,p999}_us (from the sluice_produce
 * call, as the peers' drivers measure), ack_queued_after_io_p50_us and breakdown[] (stage,
 * p50_us, p99_us, p999_us). Exit: 0 done, 1 a broker or client error (or failed records), 2 a usage
 * error.
 *
 *   sluice-bench --mode produce --record-bytes 1024 --batch 1000 --shards 4 --duration 5
 *   sluice-bench --mode tail --rate 20000 --ack durable --flush always --json
 *   sluice-bench --mode queue --backlog 200000 --record-bytes 100 --consumers 4
 */
#include "bench/bench_broker.h"
#include "bench/hist.h"
#include "bench/scale_bench.h"
#include "bench/tail_trace.h"
#include "client/sluice.h"
#include "common/error.h"
#include "storage/batch.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef SLUICED_PATH
#define SLUICED_PATH "sluiced"
#endif

#define PROG            "sluice-bench"
#define WORKERS_MAX     256u           /* producers, and consumers: a producer index is 8 bits */
#define POOL_BYTES      (4u << 20)     /* payload pool per producer */
#define POLL_MAX        1024u          /* records per consumer poll */
#define POLL_WAIT_MS    100u           /* consumer and receiver long-poll */
#define DRAIN_GRACE_NS  10000000000ull /* after the period: consumers may lag this long */
#define BATCH_SLACK     63u            /* < the producer's 64-byte seal slack (producer.c) */
#define RECORD_OVERHEAD 35u            /* the producer's per-record accounting beyond value */
#define BACKLOG_BYTES   1000000000ull  /* consume mode's default backlog payload */
#define SHARDS_MAX      1024u          /* sluice_stream_opts.shard_count */

enum mode { MODE_PRODUCE, MODE_CONSUME, MODE_TAIL, MODE_QUEUE, MODE_SCALE };
static const char *const mode_names[] = {"produce", "consume", "tail", "queue", "scale"};
#define MODES 5

struct cfg {
    enum mode mode;
    uint32_t record_bytes, batch, inflight, linger_ms, shards, producers, consumers;
    uint32_t inflight_batches; /* per shard; 0 = the client's default */
    uint32_t queue_max;
    uint32_t streams; /* scale mode */
    int shards_given, producers_given, consumers_given, ack_given;
    enum sluice_ack ack;
    enum sluice_compression compression;
    double rate, warmup_s, duration_s;
    uint64_t backlog;
    const char *dir, *flush, *broker;
    const char *group; /* consume/tail: consumers are members of this group */
    int flush_given;
    long server_pid;
    const char *tls_ca; /* NULL: plaintext */
    const char *stream; /* an existing stream to use (kept), NULL: a fresh one */
    int cpu_server, cpu_client, json;
    int trace; /* tail: the latency breakdown (tail_trace.h); --trace off */
    const char *extra[BENCH_BROKER_EXTRA_MAX];
    int extra_len;
};

static struct cfg cfg = {
    .mode = MODE_PRODUCE,
    .record_bytes = 1024,
    .batch = 100,
    .shards = 4,
    .producers = 1,
    .consumers = 1,
    .queue_max = 100,
    .streams = 125,
    .ack = SLUICE_ACK_WRITTEN,
    .compression = SLUICE_COMPRESSION_NONE,
    .warmup_s = -1, /* by mode: check_opts */
    .duration_s = 5,
    .dir = "/var/tmp",
    .flush = "interval",
    .server_pid = -1,
    .cpu_server = -1,
    .cpu_client = -1,
    .trace = 1,
};

/* The timeline (CLOCK_MONOTONIC ns), set before the workers are released. */
static uint64_t t_base, t_start, t_meas, t_end;
static char stream[64];
static const char *broker_addr;
static struct bench_broker bb;

static _Noreturn void die(const char *what, int rc)
{
    fprintf(stderr, PROG ": %s: %s (%s)\n", what, sl_errname(rc), sluice_last_error());
    if (bb.pid > 0) {
        kill(bb.pid, SIGKILL);
    }
    exit(1);
}

/* Whether the run reads a pre-filled backlog with no producers (consume; queue with
 * --backlog): it ends when the backlog is done. */
static int draining(void)
{
    return cfg.mode == MODE_CONSUME || (cfg.mode == MODE_QUEUE && cfg.backlog > 0);
}

static int in_window(uint64_t t)
{
    return t >= t_meas && t < t_end;
}

/* Whether the run takes the tail latency breakdown (tail mode, unless --trace off). */
static int tracing(void)
{
    return cfg.mode == MODE_TAIL && cfg.trace;
}

static sluice_client *connect_one(void)
{
    sluice_client *c = NULL;
    struct sluice_client_opts o = {.tls_ca_file = cfg.tls_ca};
    int rc = sluice_client_new(broker_addr, &o, &c);
    if (rc != SL_OK) {
        die("connect", rc);
    }
    return c;
}

/* ---- producers ---- */

struct producer_w {
    uint32_t idx;
    uint64_t limit; /* > 0: produce this many records (backlog fill), untimed */
    pthread_t th;
    sluice_producer *p;
    uint8_t *pool;
    size_t off;
    /* Written by the client's I/O thread (successful deliveries only). */
    struct bench_hist ack;
    uint64_t acked_window;
    atomic_uint_fast64_t failed;
    struct sluice_producer_stats stats;
};

static struct producer_w *prods;
static pthread_barrier_t ready, go;
static atomic_uint producers_done;

_Static_assert(sizeof(uintptr_t) >= sizeof(uint64_t), "a delivery ctx holds a time in ns");

/* A delivery's ctx is (intended - t_base) << 8 | producer index: no allocation. */
static void on_delivery(void *ctx, int err, uint32_t shard, uint64_t seq)
{
    (void)shard;
    (void)seq;
    uintptr_t v = (uintptr_t)ctx;
    struct producer_w *w = &prods[v & 0xffu];
    if (err != SL_OK) {
        atomic_fetch_add(&w->failed, 1);
        return;
    }
    uint64_t intended = t_base + (v >> 8), now = bench_now_ns();
    if (in_window(intended)) {
        bench_hist_record(&w->ack, now > intended ? now - intended : 0);
    }
    w->acked_window += in_window(now);
}

/* Bytes one of our records (no key, no attributes, a 1-byte timestamp delta: within
 * 127 ms of the batch's first) takes in a batch. */
static size_t record_batch_bytes(uint32_t value_len)
{
    struct sl_record rec = {.value_len = value_len};
    return sl_batch_record_bytes(&rec, 0);
}

static void producer_open(struct producer_w *w, sluice_client *c)
{
    /* The producer seals a batch when under 64 bytes are left: N records plus 63 bytes
     * leave 63 after the N-th record and at least 64 before it. */
    struct sluice_producer_opts po = {
        .batch_bytes = SL_BATCH_HEADER_BYTES +
                       (size_t)cfg.batch * record_batch_bytes(cfg.record_bytes) + BATCH_SLACK,
        .linger_ms = cfg.linger_ms,
        .buffer_bytes = (size_t)cfg.inflight * (cfg.record_bytes + RECORD_OVERHEAD),
        .block_when_full = 1,
        .ack = cfg.ack,
        .compression = cfg.compression,
        .max_inflight_batches = cfg.inflight_batches,
    };
    if (tracing()) {
        po.on_trace = tail_trace_produced;
        po.on_trace_arg = tail_trace_producer(w->idx);
    }
    int rc = sluice_producer_new(c, stream, &po, &w->p);
    if (rc != SL_OK) {
        die("producer", rc);
    }
    w->pool = malloc(POOL_BYTES + cfg.record_bytes);
    if (w->pool == NULL) {
        die("malloc", SL_ENOMEM);
    }
    uint64_t x = 0x9E3779B97F4A7C15ull ^ w->idx;
    for (size_t i = 0; i < POOL_BYTES + cfg.record_bytes; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17; /* xorshift64 */
        w->pool[i] = (uint8_t)('a' + (x >> 60));
    }
}

/* Produces one record due at `intended`. */
static void produce_one(struct producer_w *w, uint64_t intended)
{
    uint8_t *val = w->pool + w->off;
    w->off = w->off + 2u * cfg.record_bytes > POOL_BYTES ? 0 : w->off + cfg.record_bytes;
    memcpy(val, &intended, sizeof(intended));
    if (cfg.record_bytes >= 2 * sizeof(uint64_t)) { /* and when it was produced: tracing */
        uint64_t now = bench_now_ns();
        memcpy(val + sizeof(intended), &now, sizeof(now));
    }
    void *ctx = (void *)(uintptr_t)(((intended - t_base) << 8) | w->idx);
    int rc = sluice_produce(w->p, NULL, 0, val, cfg.record_bytes, NULL, 0, on_delivery, ctx);
    if (rc != SL_OK) {
        die("produce", rc);
    }
}

static void *producer_main(void *arg)
{
    struct producer_w *w = arg;
    sluice_client *c = connect_one();
    producer_open(w, c);
    pthread_barrier_wait(&ready);
    pthread_barrier_wait(&go);
    if (w->limit > 0) {
        for (uint64_t i = 0; i < w->limit; i++) {
            produce_one(w, bench_now_ns());
        }
    } else if (cfg.rate > 0) {
        double gap_ns = 1e9 / cfg.rate;
        for (uint64_t i = 0;; i++) {
            uint64_t due = t_start + (uint64_t)((double)(i * cfg.producers + w->idx) * gap_ns);
            if (due >= t_end) {
                break;
            }
            uint64_t now = bench_now_ns();
            if (due > now) {
                bench_sleep_ns(due - now);
            } else if (now >= t_end + DRAIN_GRACE_NS) { /* hopelessly behind: say so */
                fprintf(stderr, PROG ": producer %u stopped %.1f s behind its schedule\n", w->idx,
                        (double)(now - due) / 1e9);
                break;
            }
            produce_one(w, due);
        }
    } else {
        for (uint64_t now = bench_now_ns(); now < t_end; now = bench_now_ns()) {
            produce_one(w, now);
        }
    }
    int rc = sluice_producer_flush(w->p, 0);
    if (rc != SL_OK) {
        die("flush", rc);
    }
    sluice_producer_stats(w->p, &w->stats);
    sluice_producer_free(w->p);
    sluice_client_free(c);
    free(w->pool);
    atomic_fetch_add(&producers_done, 1);
    return NULL;
}

/* ---- consumers and queue receivers ---- */

struct consumer_w {
    uint32_t idx;
    pthread_t th;
    struct bench_hist e2e;
    uint64_t got_window, bytes_window;
    uint64_t got_total;
    uint64_t last_ns; /* when it last got a record */
};

static struct consumer_w *cons;
static atomic_uint consumers_done;
static atomic_uint_fast64_t queue_acked; /* all receivers, whole run */

/* Accounts for one delivered record received at `now`. */
static void consumed(struct consumer_w *w, const uint8_t *value, uint32_t len, uint64_t now)
{
    uint64_t sent = 0;
    if (len >= sizeof(sent)) {
        memcpy(&sent, value, sizeof(sent));
    }
    if (cfg.mode != MODE_CONSUME && in_window(sent)) {
        bench_hist_record(&w->e2e, now > sent ? now - sent : 0);
    }
    if (in_window(now)) {
        w->got_window++;
        w->bytes_window += len;
    }
    w->got_total++;
    w->last_ns = now;
}

/* Whether a consumer that just got `n` records at `now` is done: at the end of the period
 * (consume, queue drain), or once the producers are done and it has caught up (tail,
 * queue with producers: records sent in the period count until received), bounded. */
static int consumer_finished(size_t n, int caught_up, uint64_t now)
{
    if (draining()) {
        int drained = cfg.mode == MODE_CONSUME ? n == 0 && caught_up
                                               : atomic_load(&queue_acked) >= cfg.backlog;
        return now >= t_end || drained;
    }
    if (now >= t_end + DRAIN_GRACE_NS) {
        return 1;
    }
    return now >= t_end && atomic_load(&producers_done) == cfg.producers && n == 0 && caught_up;
}

/* Hands a received record's stamps to the breakdown (tail_trace.h). */
static void traced(struct consumer_w *w, sluice_consumer *sc, const struct sluice_record *r,
                   uint64_t now)
{
    uint64_t stamp[2] = {0, 0}; /* intended, produce call (produce_one) */
    uint64_t f[SLUICE_FT_N];
    if (r->value_len < sizeof(stamp)) {
        return;
    }
    memcpy(stamp, r->value, sizeof(stamp));
    if (in_window(stamp[0]) && sluice_consumer_trace(sc, r->shard, f) == SL_OK) {
        tail_trace_consumed(w->idx, r->shard, r->seq, stamp[0], stamp[1], f, now);
    }
}

static sluice_consumer *consumer_open(sluice_client *c, uint32_t idx)
{
    uint32_t shards[SHARDS_MAX], n = 0;
    if (cfg.consumers <= cfg.shards) {
        for (uint32_t s = idx; s < cfg.shards; s += cfg.consumers) {
            shards[n++] = s;
        }
    } else {
        shards[n++] = idx % cfg.shards;
    }
    struct sluice_consumer_opts co = {
        .start = {.kind = SLUICE_TRIM_HORIZON}, .shards = shards, .shards_len = n};
    co.trace = tracing();
    if (cfg.group != NULL) { /* a member: the coordinator says which shards */
        co.shards = NULL;
        co.shards_len = 0;
        co.auto_commit_ms = 1000;
    }
    sluice_consumer *sc = NULL;
    int rc = sluice_consumer_new(c, stream, cfg.group, &co, &sc);
    if (rc != SL_OK) {
        die("consumer", rc);
    }
    return sc;
}

static void *consumer_main(void *arg)
{
    struct consumer_w *w = arg;
    sluice_client *c = connect_one();
    sluice_consumer *sc = consumer_open(c, w->idx);
    struct sluice_record *recs = calloc(POLL_MAX, sizeof(*recs));
    if (recs == NULL) {
        die("calloc", SL_ENOMEM);
    }
    pthread_barrier_wait(&ready);
    pthread_barrier_wait(&go);
    for (;;) {
        size_t n = 0;
        int rc = sluice_consumer_poll(sc, recs, POLL_MAX, &n, POLL_WAIT_MS);
        if (rc != SL_OK) {
            die("poll", rc);
        }
        uint64_t now = bench_now_ns();
        for (size_t i = 0; i < n; i++) {
            consumed(w, recs[i].value, recs[i].value_len, now);
            if (tracing()) {
                traced(w, sc, &recs[i], now);
            }
        }
        if (consumer_finished(n, sluice_consumer_caught_up(sc), now)) {
            break;
        }
    }
    free(recs);
    if (cfg.group != NULL) { /* its shards move to the others from here, not re-read */
        int rc = sluice_consumer_commit(sc);
        if (rc != SL_OK && rc != SL_EFENCED) {
            die("commit", rc);
        }
    }
    sluice_consumer_free(sc);
    sluice_client_free(c);
    atomic_fetch_add(&consumers_done, 1);
    return NULL;
}

static void *receiver_main(void *arg)
{
    struct consumer_w *w = arg;
    sluice_client *c = connect_one();
    const char **receipts = calloc(cfg.queue_max, sizeof(*receipts));
    if (receipts == NULL) {
        die("calloc", SL_ENOMEM);
    }
    pthread_barrier_wait(&ready);
    pthread_barrier_wait(&go);
    for (;;) {
        struct sluice_message *msgs = NULL;
        size_t n = 0;
        int rc =
            sluice_queue_receive(c, stream, "bench", cfg.queue_max, POLL_WAIT_MS, 0, &msgs, &n);
        if (rc != SL_OK) {
            die("receive", rc);
        }
        uint64_t now = bench_now_ns();
        for (size_t i = 0; i < n && i < cfg.queue_max; i++) {
            receipts[i] = msgs[i].receipt;
            consumed(w, msgs[i].value, msgs[i].value_len, now);
        }
        if (n > 0 && (rc = sluice_queue_ack(c, stream, "bench", receipts, n, NULL)) != SL_OK) {
            die("ack", rc);
        }
        atomic_fetch_add(&queue_acked, n);
        sluice_messages_free(msgs, n);
        if (consumer_finished(n, 1, now)) {
            break;
        }
    }
    free(receipts);
    sluice_client_free(c);
    atomic_fetch_add(&consumers_done, 1);
    return NULL;
}

/* ---- the server's cost: /proc/<pid>/stat and /proc/<pid>/io ---- */

struct server_sample {
    int cpu_ok, io_ok;
    uint64_t cpu_ticks;   /* utime + stime */
    uint64_t write_bytes; /* bytes this process caused to be written to storage */
};

static void server_sample(long pid, struct server_sample *s)
{
    memset(s, 0, sizeof(*s));
    if (pid <= 0) {
        return;
    }
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (f != NULL) {
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        buf[n] = '\0';
        fclose(f);
        /* After "pid (comm) ": state ppid pgrp session tty tpgid flags minflt cminflt
         * majflt cmajflt utime stime (fields 3..15); comm may hold spaces and ')'. */
        const char *p = strrchr(buf, ')');
        unsigned long long ut = 0, st = 0;
        if (p != NULL && sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
                                &ut, &st) == 2) {
            s->cpu_ok = 1;
            s->cpu_ticks = ut + st;
        }
    }
    snprintf(path, sizeof(path), "/proc/%ld/io", pid);
    f = fopen(path, "r");
    if (f != NULL) {
        unsigned long long wb = 0;
        while (fgets(buf, sizeof(buf), f) != NULL) {
            if (sscanf(buf, "write_bytes: %llu", &wb) == 1) {
                s->io_ok = 1;
                s->write_bytes = wb;
            }
        }
        fclose(f);
    }
}

/* ---- a run ---- */

struct result {
    double seconds;
    uint64_t records, payload; /* the mode's figure: see main's comment */
    uint64_t produced, consumed, failed, batches;
    double avg_batch; /* records per batch sent, over the producers' whole run */
    uint32_t np, nc;  /* producer and consumer threads of the measured run */
    struct bench_hist ack, e2e;
    struct server_sample s0, s1;
};

/* Starts `n` producers; `fill` > 0: they produce that many records between them. */
static void start_producers(uint32_t n, uint64_t fill)
{
    for (uint32_t i = 0; i < n; i++) {
        prods[i].idx = i;
        prods[i].limit = fill == 0 ? 0 : fill / n + (i < fill % n);
        prods[i].acked_window = 0;
        atomic_store(&prods[i].failed, 0);
        bench_hist_reset(&prods[i].ack);
        if (pthread_create(&prods[i].th, NULL, producer_main, &prods[i]) != 0) {
            die("pthread_create", SL_ESYS);
        }
    }
}

static void start_consumers(uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        cons[i].idx = i;
        bench_hist_reset(&cons[i].e2e);
        void *(*fn)(void *) = cfg.mode == MODE_QUEUE ? receiver_main : consumer_main;
        if (pthread_create(&cons[i].th, NULL, fn, &cons[i]) != 0) {
            die("pthread_create", SL_ESYS);
        }
    }
}

/* Before the threads start: one of them may reach the barrier before the
 * main thread is back from creating the others. */
static void barriers_init(uint32_t threads)
{
    pthread_barrier_init(&ready, NULL, threads + 1);
    pthread_barrier_init(&go, NULL, threads + 1);
}

/* Sets the timeline once every thread is connected and releases them. */
static void release(double warmup_s, double duration_s)
{
    pthread_barrier_wait(&ready);
    t_start = bench_now_ns();
    t_meas = t_start + (uint64_t)(warmup_s * 1e9);
    t_end = t_meas + (uint64_t)(duration_s * 1e9);
    pthread_barrier_wait(&go);
}

static void join_all(uint32_t np, uint32_t nc)
{
    for (uint32_t i = 0; i < np; i++) {
        pthread_join(prods[i].th, NULL);
    }
    for (uint32_t i = 0; i < nc; i++) {
        pthread_join(cons[i].th, NULL);
    }
    pthread_barrier_destroy(&ready);
    pthread_barrier_destroy(&go);
}

/* Fills the backlog (untimed) with the run's producer settings. */
static void fill_backlog(void)
{
    fprintf(stderr, PROG ": filling a backlog of %" PRIu64 " records ...\n", cfg.backlog);
    t_base = bench_now_ns();
    barriers_init(cfg.producers);
    start_producers(cfg.producers, cfg.backlog);
    release(0, 0);
    join_all(cfg.producers, 0);
    for (uint32_t i = 0; i < cfg.producers; i++) {
        if (atomic_load(&prods[i].failed) != 0) {
            die("backlog fill", SL_EIO);
        }
    }
    atomic_store(&producers_done, 0);
}

/* Adds up the threads' figures into `r`. */
static void sum_up(struct result *r, uint32_t np, uint32_t nc)
{
    bench_hist_reset(&r->ack);
    bench_hist_reset(&r->e2e);
    uint64_t consumed = 0, bytes = 0, sent = 0;
    for (uint32_t i = 0; i < np; i++) {
        bench_hist_merge(&r->ack, &prods[i].ack);
        r->produced += prods[i].acked_window;
        r->failed += atomic_load(&prods[i].failed);
        r->batches += prods[i].stats.batches_sent;
        sent += prods[i].stats.records_sent;
    }
    for (uint32_t i = 0; i < nc; i++) {
        bench_hist_merge(&r->e2e, &cons[i].e2e);
        consumed += cons[i].got_window;
        bytes += cons[i].bytes_window;
    }
    r->consumed = consumed;
    r->avg_batch = r->batches > 0 ? (double)sent / (double)r->batches : 0;
    /* The mode's figure: what producers had acknowledged (produce, tail) or what was read
     * (consume) or received and acked (queue) in the period. */
    if (cfg.mode == MODE_PRODUCE || cfg.mode == MODE_TAIL) {
        r->records = r->produced;
        r->payload = r->produced * cfg.record_bytes;
    } else {
        r->records = consumed;
        r->payload = bytes;
    }
}

/* The measured run: producers (unless draining a backlog), consumers (unless produce). */
static void run(struct result *r)
{
    uint32_t np = draining() ? 0 : cfg.producers;
    uint32_t nc = cfg.mode == MODE_PRODUCE ? 0 : cfg.consumers;
    if (np == 0) {
        atomic_store(&producers_done, cfg.producers);
    }
    t_base = bench_now_ns();
    if (tracing() && tail_trace_init(np, nc) != 0) {
        die("calloc", SL_ENOMEM);
    }
    barriers_init(np + nc);
    start_consumers(nc);
    start_producers(np, 0);
    release(cfg.warmup_s, cfg.duration_s);
    uint64_t now = bench_now_ns();
    if (now < t_meas) {
        bench_sleep_ns(t_meas - now);
    }
    server_sample(cfg.server_pid, &r->s0);
    while ((now = bench_now_ns()) < t_end &&
           (nc == 0 || np > 0 || atomic_load(&consumers_done) < nc)) {
        bench_sleep_ns(t_end - now < 10000000u ? t_end - now : 10000000u);
    }
    server_sample(cfg.server_pid, &r->s1);
    uint64_t stop = now < t_end ? now : t_end;
    join_all(np, nc);
    if (tracing()) {
        tail_trace_join(t_meas, t_end);
    }
    r->np = np;
    r->nc = nc;
    sum_up(r, np, nc);
    if (stop < t_end) { /* drained early: up to the last record (not the last empty poll) */
        uint64_t last = t_meas;
        for (uint32_t i = 0; i < nc; i++) {
            last = cons[i].last_ns > last ? cons[i].last_ns : last;
        }
        stop = last < stop ? last : stop;
    }
    r->seconds = (double)(stop - t_meas) / 1e9;
    if (nc > 0 && r->records == 0) {
        fprintf(stderr, PROG ": nothing was read in the measured period (a backlog read during "
                             "the warm-up? use a smaller --warmup or a larger --backlog)\n");
    }
}

/* ---- output ---- */

static const char *ack_name(void)
{
    return cfg.ack == SLUICE_ACK_DURABLE ? "durable" : "written";
}

static const char *flush_name(void)
{
    return cfg.broker == NULL || cfg.flush_given ? cfg.flush : "unknown";
}

static double mb_per_s(const struct result *r)
{
    return r->seconds > 0 ? (double)r->payload / r->seconds / 1e6 : 0;
}

/* Server CPU seconds per GB of payload; < 0 when unknown. */
static double cpu_s_per_gb(const struct result *r)
{
    if (!r->s0.cpu_ok || !r->s1.cpu_ok || r->payload == 0) {
        return -1;
    }
    double cpu_s = (double)(r->s1.cpu_ticks - r->s0.cpu_ticks) / (double)sysconf(_SC_CLK_TCK);
    return cpu_s / ((double)r->payload / 1e9);
}

/* Disk bytes written per payload byte; < 0 when unknown. */
static double disk_per_byte(const struct result *r)
{
    if (!r->s0.io_ok || !r->s1.io_ok || r->payload == 0) {
        return -1;
    }
    return (double)(r->s1.write_bytes - r->s0.write_bytes) / (double)r->payload;
}

/* `"name": value` of a latency in microseconds; null without samples. */
static void json_us(const char *name, const struct bench_hist *h, double p)
{
    if (h->count == 0) {
        printf(", \"%s\": null", name);
    } else {
        printf(", \"%s\": %.1f", name, (double)bench_hist_percentile(h, p) / 1e3);
    }
}

static void json_num(const char *name, double v)
{
    if (v < 0) {
        printf(", \"%s\": null", name);
    } else {
        printf(", \"%s\": %.4g", name, v);
    }
}

static void print_json(const struct result *r)
{
    printf("{\"mode\": \"%s\", \"record_bytes\": %u, \"batch\": %u, \"shards\": %u, "
           "\"producers\": %u, \"consumers\": %u, \"ack\": \"%s\", \"flush\": \"%s\", "
           "\"compression\": \"%s\", \"rate\": %.0f, \"inflight\": %u, \"inflight_batches\": %u, "
           "\"linger_ms\": %u, "
           "\"backlog\": %" PRIu64 ", \"warmup\": %.3f",
           mode_names[cfg.mode], cfg.record_bytes, cfg.batch, cfg.shards, r->np, r->nc, ack_name(),
           flush_name(), cfg.compression == SLUICE_COMPRESSION_ZSTD ? "zstd" : "none", cfg.rate,
           cfg.inflight, cfg.inflight_batches, cfg.linger_ms == SLUICE_LINGER_NONE ? 0u : cfg.linger_ms, cfg.backlog,
           cfg.warmup_s);
    printf(", \"records\": %" PRIu64 ", \"seconds\": %.3f, \"records_per_s\": %.0f, "
           "\"mb_per_s\": %.2f, \"produced_records\": %" PRIu64 ", \"consumed_records\": %" PRIu64
           ", \"failed_records\": %" PRIu64 ", \"avg_batch_records\": %.1f",
           r->records, r->seconds, r->seconds > 0 ? (double)r->records / r->seconds : 0,
           mb_per_s(r), r->produced, r->consumed, r->failed, r->avg_batch);
    static const char *const pn[] = {"p50", "p99", "p999", "max"};
    static const double pv[] = {50, 99, 99.9, 100};
    char name[32];
    for (int k = 0; k < 2; k++) {
        for (int i = 0; i < 4; i++) {
            snprintf(name, sizeof(name), "%s_%s_us", k == 0 ? "ack" : "e2e", pn[i]);
            json_us(name, k == 0 ? &r->ack : &r->e2e, pv[i]);
        }
    }
    json_num("server_cpu_s_per_gb", cpu_s_per_gb(r));
    json_num("disk_bytes_per_payload_byte", disk_per_byte(r));
    if (tracing()) {
        tail_trace_print_json();
    }
    printf("}\n");
}

/* "123.4 us" below a millisecond, else "12.34 ms". */
static const char *fmt_ns(char *buf, size_t len, uint64_t ns)
{
    if (ns < 1000000u) {
        snprintf(buf, len, "%.1f us", (double)ns / 1e3);
    } else {
        snprintf(buf, len, "%.2f ms", (double)ns / 1e6);
    }
    return buf;
}

static void print_latency(const char *what, const struct bench_hist *h)
{
    if (h->count == 0) {
        printf("  %-12s n/a\n", what);
        return;
    }
    char a[32], b[32], c[32], d[32];
    printf("  %-12s p50 %s, p99 %s, p99.9 %s, max %s (%" PRIu64 " samples)\n", what,
           fmt_ns(a, sizeof(a), bench_hist_percentile(h, 50)),
           fmt_ns(b, sizeof(b), bench_hist_percentile(h, 99)),
           fmt_ns(c, sizeof(c), bench_hist_percentile(h, 99.9)), fmt_ns(d, sizeof(d), h->max),
           h->count);
}

static void print_human(const struct result *r)
{
    printf(PROG ": mode %s, %u B records, batch %u, %u shards, %u producers, %u consumers, "
                "ack %s, flush %s, compression %s, ",
           mode_names[cfg.mode], cfg.record_bytes, cfg.batch, cfg.shards, r->np, r->nc, ack_name(),
           flush_name(), cfg.compression == SLUICE_COMPRESSION_ZSTD ? "zstd" : "none");
    if (cfg.rate > 0) {
        printf("rate %.0f records/s\n", cfg.rate);
    } else {
        printf("closed loop\n");
    }
    printf("  measured     %.2f s after %.1f s of warm-up\n", r->seconds, cfg.warmup_s);
    printf("  throughput   %.0f records/s, %.1f MB/s payload (%" PRIu64
           " records; produced %" PRIu64 ", consumed %" PRIu64 ", failed %" PRIu64
           ", %.1f records a batch)\n",
           r->seconds > 0 ? (double)r->records / r->seconds : 0, mb_per_s(r), r->records,
           r->produced, r->consumed, r->failed, r->avg_batch);
    print_latency("ack latency", &r->ack);
    print_latency("end to end", &r->e2e);
    if (tracing()) {
        tail_trace_print_human();
    }
    double cpu = cpu_s_per_gb(r), disk = disk_per_byte(r);
    if (cpu < 0) {
        printf("  server       CPU n/a");
    } else {
        printf("  server       %.2f CPU-s per GB", cpu);
    }
    if (disk < 0) {
        printf(", disk writes n/a\n");
    } else {
        printf(", %.3f disk bytes written per payload byte\n", disk);
    }
}

/* ---- options ---- */

static const char usage_text[] =
    "usage: " PROG " [options]\n"
    "Load generator for sluiced through libsluice: throughput, latency percentiles, server\n"
    "CPU and disk cost per payload byte (MB = 10^6 bytes).\n"
    "\n"
    "  --mode M            produce | consume | tail | queue | scale (default produce)\n"
    "                        produce: producers only\n"
    "                        consume: fill --backlog, then consumers read it from the oldest\n"
    "                        tail:    producers and consumers at once (end-to-end latency)\n"
    "                        queue:   receivers receive + ack on a queue group; producers\n"
    "                                 at the same time, or a --backlog drained alone\n"
    "                        scale:   --streams N of --shards S (default 125 x 8) on its own\n"
    "                                 broker: create rate, idle RSS and descriptors, restart\n"
    "                                 time (clean, kill -9), produce over all shards vs one\n"
    "                                 stream of 4, read everything back; defaults there:\n"
    "                                 4 producers, 4 consumers, --ack durable, --flush\n"
    "                                 always; --batch records per request to one shard,\n"
    "                                 --inflight records in flight per producer (default 64\n"
    "                                 requests); the broker's log goes to --dir\n"
    "  --streams N         streams of the scale mode (default 125)\n"
    "  --record-bytes B    value bytes per record, >= 8 (default 1024)\n"
    "  --batch N           records per producer batch; 1 sends each alone (default 100;\n"
    "                      the client caps a batch at the frame limit, 16 MiB)\n"
    "  --linger-ms MS      send a batch that is not full after MS, or `none`: as soon as\n"
    "                      the shard has no batch in flight (default: none with --rate;\n"
    "                      1000 in closed loop, so that batches fill to --batch)\n"
    "  --inflight N        records produced but not acknowledged per producer (the client's\n"
    "                      buffer_bytes); 0 = the client default, 64 MiB (default 0)\n"
    "  --inflight-batches N  batches in flight per shard, 1..8 (the client's\n"
    "                      max_inflight_batches; default 0: the client's, 5)\n"
    "  --shards N          shards of the stream, 1..1024 (default 4)\n"
    "  --producers N       producer threads, one connection each, 1..255 (default 1)\n"
    "  --consumers N       consumer or receiver threads, one connection each, 1..256\n"
    "                      (default 1); they split the shards\n"
    "  --ack A             written | durable (default written)\n"
    "  --compression C     none | zstd, for the stream and the producers (default none)\n"
    "  --rate R            records/s of all producers together on a fixed schedule; latency\n"
    "                      counts from each record's intended send time (default 0: closed\n"
    "                      loop, as fast as the client accepts)\n"
    "  --warmup S          seconds before the measured period (default 1; 0 when draining\n"
    "                      a backlog: consume, and queue with --backlog)\n"
    "  --duration S        measured seconds (default 5)\n"
    "  --backlog N         records to produce before the run: consume mode (default 1 GB\n"
    "                      of payload) and queue mode (default 0: produce concurrently)\n"
    "  --queue-max N       messages per queue receive, 1..10000 (default 100)\n"
    "  --group G           consume, tail: the consumers are members of consumer group G\n"
    "                      (the broker splits the shards between them) instead of\n"
    "                      splitting the shards themselves\n"
    "  --trace on|off      tail: the end-to-end latency broken down by stage, from stamps\n"
    "                      the client and broker take per batch and per fetch (default on)\n"
    "  --json              print one JSON object on one line instead of the table\n"
    "\n"
    "Broker (default: start the sluiced beside this program, else the one built with it,\n"
    "on 127.0.0.1, an ephemeral port):\n"
    "  --dir D             parent of its fresh data directory (default /var/tmp)\n"
    "  --flush F           always | interval (default interval)\n"
    "  --tls-ca FILE       connect with TLS, verifying the broker against these CAs\n"
    "  --broker-arg ARG    one more argument for sluiced, verbatim; repeatable\n"
    "                      (e.g. --broker-arg --flush-interval-ms=200)\n"
    "  --cpu-server N      pin the started broker to CPU N\n"
    "  --broker HOST:PORT  use a running broker instead (--flush is then only a label)\n"
    "  --stream NAME       with --broker: an existing stream (kept; its shards are used as\n"
    "                      they are, e.g. a replicated one this broker leads; queue mode\n"
    "                      makes its group \"bench\" there if missing)\n"
    "  --server-pid PID    its process, for the CPU and disk figures (else n/a)\n"
    "  --cpu-client N      pin this process to CPU N\n"
    "  --help              this text\n"
    "\n"
    "Exit status: 0 done, 1 a broker or client error, 2 a usage error.\n";

__attribute__((format(printf, 1, 2))) static _Noreturn void usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, PROG ": ");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(" PROG " --help lists the options)\n");
    exit(2);
}

static uint64_t parse_u64(const char *opt, const char *v, uint64_t lo, uint64_t hi)
{
    char *end = NULL;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || v[0] == '-' || x < lo || x > hi) {
        usage_error("%s wants an integer in %" PRIu64 "..%" PRIu64 ", not '%s'", opt, lo, hi, v);
    }
    return x;
}

/* A number >= lo (and <= 10^7): seconds, or records/s for --rate. */
static double parse_num(const char *opt, const char *v, double lo)
{
    char *end = NULL;
    double x = strtod(v, &end);
    if (end == v || *end != '\0' || !(x >= lo) || x > 1e7) {
        usage_error("%s wants a number from %g, not '%s'", opt, lo, v);
    }
    return x;
}

static int parse_choice(const char *opt, const char *v, const char *const *names, int n)
{
    for (int i = 0; i < n; i++) {
        if (strcmp(v, names[i]) == 0) {
            return i;
        }
    }
    usage_error("%s: unknown value '%s'", opt, v);
}

/* Options of the load; returns 0 if `o` is not one of them. */
static int load_opt(const char *o, const char *v)
{
    static const char *const acks[] = {"written", "durable"};
    static const char *const codecs[] = {"none", "zstd"};
    if (strcmp(o, "--mode") == 0) {
        cfg.mode = (enum mode)parse_choice(o, v, mode_names, MODES);
    } else if (strcmp(o, "--record-bytes") == 0) {
        cfg.record_bytes = (uint32_t)parse_u64(o, v, 8, 8u << 20);
    } else if (strcmp(o, "--batch") == 0) {
        cfg.batch = (uint32_t)parse_u64(o, v, 1, 1000000);
    } else if (strcmp(o, "--linger-ms") == 0) {
        cfg.linger_ms = v != NULL && strcmp(v, "none") == 0
                            ? SLUICE_LINGER_NONE
                            : (uint32_t)parse_u64(o, v, 1, 60000); /* 0 = by mode, below */
    } else if (strcmp(o, "--inflight") == 0) {
        cfg.inflight = (uint32_t)parse_u64(o, v, 0, 100000000);
    } else if (strcmp(o, "--inflight-batches") == 0) {
        cfg.inflight_batches = (uint32_t)parse_u64(o, v, 1, SLUICE_INFLIGHT_BATCHES_MAX);
    } else if (strcmp(o, "--shards") == 0) {
        cfg.shards = (uint32_t)parse_u64(o, v, 1, SHARDS_MAX);
        cfg.shards_given = 1;
    } else if (strcmp(o, "--streams") == 0) {
        cfg.streams = (uint32_t)parse_u64(o, v, 1, 10000000);
    } else if (strcmp(o, "--producers") == 0) {
        cfg.producers = (uint32_t)parse_u64(o, v, 1, WORKERS_MAX - 1);
        cfg.producers_given = 1;
    } else if (strcmp(o, "--consumers") == 0) {
        cfg.consumers = (uint32_t)parse_u64(o, v, 1, WORKERS_MAX);
        cfg.consumers_given = 1;
    } else if (strcmp(o, "--ack") == 0) {
        cfg.ack = parse_choice(o, v, acks, 2) == 0 ? SLUICE_ACK_WRITTEN : SLUICE_ACK_DURABLE;
        cfg.ack_given = 1;
    } else if (strcmp(o, "--compression") == 0) {
        cfg.compression =
            parse_choice(o, v, codecs, 2) == 0 ? SLUICE_COMPRESSION_NONE : SLUICE_COMPRESSION_ZSTD;
    } else if (strcmp(o, "--rate") == 0) {
        cfg.rate = parse_num(o, v, 0);
    } else if (strcmp(o, "--warmup") == 0) {
        cfg.warmup_s = parse_num(o, v, 0);
    } else if (strcmp(o, "--duration") == 0) {
        cfg.duration_s = parse_num(o, v, 0.001);
    } else if (strcmp(o, "--backlog") == 0) {
        cfg.backlog = parse_u64(o, v, 0, UINT64_MAX >> 8);
    } else if (strcmp(o, "--group") == 0) {
        cfg.group = v;
    } else if (strcmp(o, "--trace") == 0) {
        static const char *const onoff[] = {"off", "on"};
        cfg.trace = parse_choice(o, v, onoff, 2);
    } else if (strcmp(o, "--queue-max") == 0) {
        cfg.queue_max = (uint32_t)parse_u64(o, v, 1, SLUICE_QUEUE_RECEIVE_MAX);
    } else {
        return 0;
    }
    return 1;
}

/* Options of the broker; returns 0 if `o` is not one of them. */
static int broker_opt(const char *o, const char *v)
{
    static const char *const flushes[] = {"always", "interval"};
    if (strcmp(o, "--dir") == 0) {
        cfg.dir = v;
    } else if (strcmp(o, "--flush") == 0) {
        cfg.flush = flushes[parse_choice(o, v, flushes, 2)];
        cfg.flush_given = 1;
    } else if (strcmp(o, "--broker-arg") == 0) {
        if (cfg.extra_len == BENCH_BROKER_EXTRA_MAX) {
            usage_error("%s: at most %d", o, BENCH_BROKER_EXTRA_MAX);
        }
        cfg.extra[cfg.extra_len++] = v;
    } else if (strcmp(o, "--cpu-server") == 0) {
        cfg.cpu_server = (int)parse_u64(o, v, 0, CPU_SETSIZE - 1);
    } else if (strcmp(o, "--cpu-client") == 0) {
        cfg.cpu_client = (int)parse_u64(o, v, 0, CPU_SETSIZE - 1);
    } else if (strcmp(o, "--broker") == 0) {
        cfg.broker = v;
    } else if (strcmp(o, "--server-pid") == 0) {
        cfg.server_pid = (long)parse_u64(o, v, 1, 1u << 30);
    } else if (strcmp(o, "--tls-ca") == 0) {
        cfg.tls_ca = v;
    } else if (strcmp(o, "--stream") == 0) {
        cfg.stream = v;
    } else {
        return 0;
    }
    return 1;
}

/* Scale mode's checks and defaults: 8 shards a stream, 4 producers and 4 consumers,
 * durable acks and flush always (a durable ack under `interval` waits for the timer). */
static void check_scale_opts(void)
{
    if (cfg.broker != NULL) {
        usage_error("--mode scale starts (and restarts) its own broker: no --broker");
    }
    if (cfg.rate > 0 || cfg.backlog > 0 || cfg.compression != SLUICE_COMPRESSION_NONE) {
        usage_error("--mode scale takes neither --rate, --backlog nor --compression");
    }
    cfg.shards = cfg.shards_given ? cfg.shards : 8;
    cfg.producers = cfg.producers_given ? cfg.producers : 4;
    cfg.consumers = cfg.consumers_given ? cfg.consumers : 4;
    cfg.ack = cfg.ack_given ? cfg.ack : SLUICE_ACK_DURABLE;
    cfg.flush = cfg.flush_given ? cfg.flush : "always";
    cfg.warmup_s = cfg.warmup_s < 0 ? 1 : cfg.warmup_s;
}

/* Checks that the options go together and fills mode-dependent defaults. */
static void check_opts(int backlog_given)
{
    if (cfg.mode == MODE_SCALE) {
        check_scale_opts();
        return;
    }
    if (cfg.mode == MODE_CONSUME && !backlog_given) {
        cfg.backlog = BACKLOG_BYTES / cfg.record_bytes;
    }
    int drain = draining();
    if (cfg.warmup_s < 0) {
        cfg.warmup_s = drain ? 0 : 1; /* a backlog read during a warm-up is not measured */
    }
    if (cfg.linger_ms == 0) {
        cfg.linger_ms = cfg.rate > 0 ? SLUICE_LINGER_NONE : 1000;
    }
    if (cfg.mode == MODE_CONSUME && cfg.backlog == 0) {
        usage_error("--mode consume needs a --backlog above 0");
    }
    if (cfg.group != NULL && cfg.mode != MODE_CONSUME && cfg.mode != MODE_TAIL) {
        usage_error("--group is for the consume and tail modes, not %s", mode_names[cfg.mode]);
    }
    if (drain && cfg.rate > 0) {
        usage_error("--rate paces producers during the run; --mode %s%s has none",
                    mode_names[cfg.mode], cfg.mode == MODE_QUEUE ? " with --backlog" : "");
    }
    if ((cfg.mode == MODE_PRODUCE || cfg.mode == MODE_TAIL) && cfg.backlog > 0) {
        usage_error("--backlog is for the consume and queue modes, not %s", mode_names[cfg.mode]);
    }
    if (cfg.stream != NULL && cfg.broker == NULL) {
        fprintf(stderr, PROG ": --stream needs --broker\n");
        exit(2);
    }
    if (cfg.broker != NULL && (cfg.cpu_server >= 0 || cfg.extra_len > 0)) {
        usage_error("--cpu-server and --broker-arg need a started broker (no --broker)");
    }
    if (cfg.broker == NULL && cfg.server_pid > 0) {
        usage_error("--server-pid goes with --broker");
    }
}

static void parse_args(int argc, char **argv)
{
    int backlog_given = 0;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        if (strcmp(o, "--help") == 0 || strcmp(o, "-h") == 0) {
            fputs(usage_text, stdout);
            exit(0);
        }
        if (strcmp(o, "--json") == 0) {
            cfg.json = 1;
            continue;
        }
        char name[64];
        const char *v = NULL, *eq = strchr(o, '=');
        if (eq != NULL && (size_t)(eq - o) < sizeof(name)) { /* --opt=value */
            memcpy(name, o, (size_t)(eq - o));
            name[eq - o] = '\0';
            o = name;
            v = eq + 1;
        } else if (i + 1 < argc) {
            v = argv[++i];
        } else {
            usage_error("%s: missing value (or unknown option)", o);
        }
        backlog_given |= strcmp(o, "--backlog") == 0;
        if (!load_opt(o, v) && !broker_opt(o, v)) {
            usage_error("unknown option '%s'", o);
        }
    }
    check_opts(backlog_given);
}

/* ---- main ---- */

static void pin_self(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof(set), &set) != 0) {
        perror(PROG ": sched_setaffinity");
        exit(1);
    }
}

static void setup_stream(sluice_client *c)
{
    int rc;
    if (cfg.stream != NULL) {
        snprintf(stream, sizeof(stream), "%s", cfg.stream);
    } else {
        snprintf(stream, sizeof(stream), "sluice-bench-%d", (int)getpid());
        struct sluice_stream_opts so = {.shard_count = cfg.shards,
                                        .compression = cfg.compression};
        if ((rc = sluice_stream_create(c, stream, &so, NULL)) != SL_OK) {
            die("create stream", rc);
        }
    }
    if (cfg.mode != MODE_QUEUE) {
        return;
    }
    /* (a stream just made in a cluster may not be made yet on the group's home: retried) */
    for (int tries = 0;; tries++) {
        rc = sluice_queue_group_create(c, stream, "bench", NULL);
        if (rc == SL_OK || rc == SL_EEXIST) {
            return;
        }
        if ((rc != SL_EAGAIN && rc != SL_ENOTFOUND) || tries >= 100) {
            die("create queue group", rc);
        }
        usleep(100 * 1000);
    }
}

int main(int argc, char **argv)
{
    parse_args(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    if (cfg.cpu_client >= 0) {
        pin_self(cfg.cpu_client);
    }
    if (cfg.mode == MODE_SCALE) {
        struct scale_opts so = {.streams = cfg.streams,
                                .shards = cfg.shards,
                                .record_bytes = cfg.record_bytes,
                                .batch = cfg.batch,
                                .inflight = cfg.inflight,
                                .producers = cfg.producers,
                                .consumers = cfg.consumers,
                                .ack_durable = cfg.ack == SLUICE_ACK_DURABLE,
                                .warmup_s = cfg.warmup_s,
                                .duration_s = cfg.duration_s,
                                .dir = cfg.dir,
                                .flush = cfg.flush,
                                .extra = cfg.extra,
                                .extra_len = cfg.extra_len,
                                .cpu_server = cfg.cpu_server,
                                .tls_ca = cfg.tls_ca,
                                .json = cfg.json};
        return scale_run(&so);
    }
    broker_addr = cfg.broker;
    if (broker_addr == NULL) {
        struct bench_broker_opts bo = {.flush = cfg.flush,
                                       .extra = cfg.extra,
                                       .extra_len = cfg.extra_len,
                                       .cpu = cfg.cpu_server};
        bench_broker_start_opts(&bb, "bench", cfg.dir, &bo);
        broker_addr = bb.addr;
        cfg.server_pid = bb.pid;
    }
    prods = calloc(cfg.producers, sizeof(*prods));
    cons = calloc(cfg.consumers, sizeof(*cons));
    static struct result r;
    if (prods == NULL || cons == NULL) {
        die("calloc", SL_ENOMEM);
    }
    sluice_client *c = connect_one();
    setup_stream(c);
    if (cfg.backlog > 0) {
        fill_backlog();
    }
    if (!cfg.json) {
        fprintf(stderr, PROG ": %.1f s warm-up, %.1f s measured ...\n", cfg.warmup_s,
                cfg.duration_s);
    }
    run(&r);
    if (r.failed > 0) {
        fprintf(stderr, PROG ": %" PRIu64 " records failed\n", r.failed);
    }
    if (cfg.json) {
        print_json(&r);
    } else {
        print_human(&r);
    }
    if (cfg.stream == NULL) {
        sluice_stream_delete(c, stream);
    }
    sluice_client_free(c);
    bench_broker_stop(&bb, "bench");
    free(prods);
    free(cons);
    tail_trace_free();
    return r.failed > 0 ? 1 : 0;
}
