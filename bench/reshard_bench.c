/* reshard_bench.c - what a split costs the producers, and how long a large reshard takes
 * (#16).
 *
 *   reshard_bench [--splits N] [--inflight D] [--shards K] [--dir D]
 *
 * A benchmark, not a test. It starts the sluiced built with it (--flush always) on an
 * ephemeral port under --dir (default /var/tmp). Produces are raw requests on libsluice's
 * connection (the loop re-routes by the children a refusal names, without a describe);
 * the changes go through libsluice's API:
 *
 *   1. The pause. One connection keeps --inflight (default 32) durable batches of 100
 *      records of 100 bytes in flight to a "hot" shard of a 4-shard stream. Every 300 ms
 *      the hot shard is split (--splits times, default 20): the batches the broker had
 *      accepted finish in the parent, those that arrive after it closed are answered
 *      SHARD_CLOSED, and the loop sends them again to the child holding its key (a
 *      re-route without a describe: the answer names the children, and the key's hash
 *      picks one). Printed: the split call's latency (request to answer: the wait for the
 *      appends in flight plus the stream.meta replace), and per split the re-route pause:
 *      from the first SHARD_CLOSED answer to the first acknowledged batch in a child.
 *      Batch latency p50/p99/max over the whole run, next to the same loop without splits
 *      in the same run (the machine's baseline).
 *   2. A large change: a stream of --shards K (default 256) empty shards taken to 2K open
 *      shards (UpdateShardCount: K splits, 2K new shard logs, one stream.meta replace), then
 *      back to K (K merges). Printed: each call's latency.
 */
#include "bench/bench_broker.h"
#include "client/conn.h"
#include "client/sluice.h"
#include "common/error.h"
#include "common/partition.h"
#include "storage/batch.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RECORDS   100u
#define VALUE_LEN 100u
#define LAT_MAX   (1u << 20)

static const char *g_prog = "reshard_bench";
static sluice_client *g_client;

static void die(const char *what, int rc)
{
    fprintf(stderr, "%s: %s: %s (%s)\n", g_prog, what, sluice_strerror(rc), sluice_last_error());
    exit(1);
}

/* A split of `split_shard` (>= 0) or a change to `target` open shards, timed, through
 * libsluice's API (sluice_stream_split, sluice_stream_reshard). */
static int reshard(const char *stream, int split_shard, uint32_t target, uint64_t *ns)
{
    struct sluice_reshard_result *r = NULL;
    uint64_t t0 = bench_now_ns();
    int rc = split_shard >= 0
                 ? sluice_stream_split(g_client, stream, (uint32_t)split_shard, NULL, &r)
                 : sluice_stream_reshard(g_client, stream, target, &r);
    *ns = bench_now_ns() - t0;
    sluice_reshard_result_free(r);
    return rc;
}

/* ---- the producing loop ---- */

struct loop {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint32_t inflight;       /* sent, not answered */
    uint32_t hot;            /* the shard the key lives in now */
    uint32_t children[2];    /* of the last closed answer */
    uint32_t n_children;
    uint64_t closed_at_ns;   /* the first SHARD_CLOSED of the current split; 0: none */
    uint64_t *pauses;        /* per split: closed -> first ack in a child */
    uint32_t n_pauses;
    uint64_t *lat;           /* every acknowledged batch's latency */
    uint32_t n_lat;
    uint64_t acked, refused, failed;
};

struct sent {
    struct loop *l;
    uint64_t t0;
    uint32_t shard;
};

static void on_produced(void *ctx, int err, const char *msg, sl_response *resp)
{
    (void)msg;
    struct sent *s = ctx;
    struct loop *l = s->l;
    uint64_t now = bench_now_ns();
    pthread_mutex_lock(&l->mu);
    l->inflight--;
    if (err == SL_OK) {
        l->acked++;
        if (l->n_lat < LAT_MAX) {
            l->lat[l->n_lat++] = now - s->t0;
        }
        if (l->closed_at_ns != 0 && s->shard == l->hot) {
            l->pauses[l->n_pauses++] = now - l->closed_at_ns;
            l->closed_at_ns = 0;
        }
    } else if (err == SL_ESHARD_CLOSED && resp != NULL && resp->produce != NULL) {
        l->refused++;
        if (s->shard == l->hot && resp->produce->n_children > 0) {
            l->closed_at_ns = l->closed_at_ns != 0 ? l->closed_at_ns : now;
            l->n_children = (uint32_t)resp->produce->n_children;
            for (uint32_t i = 0; i < l->n_children && i < 2; i++) {
                l->children[i] = resp->produce->children[i];
            }
            /* the key's hash is at the bottom of the range: the first child holds it */
            l->hot = l->children[0];
        }
    } else {
        l->failed++;
    }
    pthread_cond_signal(&l->cv);
    pthread_mutex_unlock(&l->mu);
    sl_response_free(resp);
    free(s);
}

static uint8_t *g_batch;
static size_t g_batch_len;

/* A batch keyed "hot-<n>" where n makes the key's hash the lowest found in a sample: it stays
 * in the first child of every split of its shard. */
static void make_batch(void)
{
    char best[32] = "", key[32];
    uint64_t lo = UINT64_MAX;
    for (uint32_t i = 0; i < 200000; i++) {
        snprintf(key, sizeof(key), "hot-%u", i);
        uint64_t h = sl_partition_hash(key, strlen(key));
        if (h < lo) {
            lo = h;
            snprintf(best, sizeof(best), "%s", key);
        }
    }
    size_t cap = 64 + RECORDS * (VALUE_LEN + 64);
    g_batch = malloc(cap);
    uint8_t val[VALUE_LEN];
    memset(val, 'v', sizeof(val));
    struct sl_batch_builder b;
    sl_batch_builder_init(&b, g_batch, cap);
    for (uint32_t i = 0; i < RECORDS; i++) {
        struct sl_record rec = {.key = best, .key_len = (uint32_t)strlen(best), .value = val,
                                .value_len = VALUE_LEN};
        if (sl_batch_builder_add(&b, &rec) != SL_OK) {
            die("batch", SL_EINVAL);
        }
    }
    if (sl_batch_builder_finish(&b, 0, 0, NULL, NULL, 0, 0, 0, &g_batch_len) != SL_OK) {
        die("batch", SL_EINVAL);
    }
}

static void send_one(struct loop *l, const char *stream, uint32_t shard)
{
    struct sent *s = malloc(sizeof(*s));
    *s = (struct sent){.l = l, .t0 = bench_now_ns(), .shard = shard};
    Sluice__V1__Produce m = SLUICE__V1__PRODUCE__INIT;
    m.stream = (char *)stream;
    m.shard = shard;
    m.ack = SLUICE__V1__ACK_MODE__ACK_DURABLE;
    m.batch.data = g_batch;
    m.batch.len = g_batch_len;
    sl_request req = SLUICE__V1__REQUEST__INIT;
    req.body_case = SLUICE__V1__REQUEST__BODY_PRODUCE;
    req.produce = &m;
    int rc = sl_client_call_async(g_client, &req, 10000, on_produced, s);
    if (rc != SL_OK) {
        die("produce", rc);
    }
}

/* Splits the loop's hot shard every 300 ms, on its own thread (the loop keeps sending). */
struct splitter {
    struct loop *l;
    const char *stream;
    uint32_t max, n;
    uint64_t ns[64];
    atomic_bool stop;
};

static void *split_main(void *arg)
{
    struct splitter *sp = arg;
    while (!atomic_load(&sp->stop) && sp->n < sp->max) {
        bench_sleep_ns(300000000u);
        pthread_mutex_lock(&sp->l->mu);
        uint32_t shard = sp->l->hot;
        pthread_mutex_unlock(&sp->l->mu);
        uint64_t ns = 0;
        int rc = reshard(sp->stream, (int)shard, 0, &ns);
        if (rc != SL_OK) {
            die("split", rc);
        }
        sp->ns[sp->n++] = ns;
    }
    return NULL;
}

/* Runs the loop for `ms` (with a splitter when sp is not NULL). */
static void run(struct loop *l, const char *stream, uint32_t depth, uint64_t ms,
                struct splitter *sp)
{
    pthread_t t;
    if (sp != NULL && pthread_create(&t, NULL, split_main, sp) != 0) {
        die("thread", SL_ESYS);
    }
    uint64_t end = bench_now_ns() + ms * 1000000u;
    while (bench_now_ns() < end) {
        pthread_mutex_lock(&l->mu);
        while (l->inflight >= depth) {
            pthread_cond_wait(&l->cv, &l->mu);
        }
        uint32_t shard = l->hot;
        l->inflight++;
        pthread_mutex_unlock(&l->mu);
        send_one(l, stream, shard);
    }
    if (sp != NULL) {
        atomic_store(&sp->stop, true);
        pthread_join(t, NULL);
    }
    pthread_mutex_lock(&l->mu);
    while (l->inflight > 0) {
        pthread_cond_wait(&l->cv, &l->mu);
    }
    pthread_mutex_unlock(&l->mu);
}

static void pct(const char *what, uint64_t *v, uint32_t n)
{
    if (n == 0) {
        printf("  %-34s (none)\n", what);
        return;
    }
    qsort(v, n, sizeof(*v), bench_cmp_u64);
    printf("  %-34s n=%-6u p50 %7.2f ms  p99 %7.2f ms  max %7.2f ms\n", what, n,
           (double)v[n / 2] / 1e6, (double)v[(uint64_t)n * 99 / 100] / 1e6,
           (double)v[n - 1] / 1e6);
}

int main(int argc, char **argv)
{
    uint32_t splits = 20, depth = 32, shards = 256;
    const char *dir = "/var/tmp";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--splits") == 0) {
            splits = (uint32_t)atoi(argv[i + 1]);
        } else if (strcmp(argv[i], "--inflight") == 0) {
            depth = (uint32_t)atoi(argv[i + 1]);
        } else if (strcmp(argv[i], "--shards") == 0) {
            shards = (uint32_t)atoi(argv[i + 1]);
        } else if (strcmp(argv[i], "--dir") == 0) {
            dir = argv[i + 1];
        } else {
            fprintf(stderr, "usage: %s [--splits N] [--inflight D] [--shards K] [--dir D]\n",
                    g_prog);
            return 2;
        }
    }
    if (splits == 0 || splits > 64 || depth == 0 || depth > 256 || shards == 0 ||
        shards > 2048) {
        fprintf(stderr, "%s: --splits 1-64, --inflight 1-256, --shards 1-2048\n", g_prog);
        return 2;
    }
    struct bench_broker b;
    bench_broker_start(&b, g_prog, dir, "always");
    struct sluice_client_opts co = {0};
    int rc = sluice_client_new(b.addr, &co, &g_client);
    if (rc != SL_OK) {
        die("connect", rc);
    }
    make_batch();
    printf("reshard_bench: %u durable batches of %u x %u B in flight to one shard\n", depth,
           RECORDS, VALUE_LEN);

    struct sluice_stream_opts so = {.shard_count = 4};
    if ((rc = sluice_stream_create(g_client, "base", &so, NULL)) != SL_OK ||
        (rc = sluice_stream_create(g_client, "hot", &so, NULL)) != SL_OK) {
        die("create", rc);
    }
    struct loop base = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    struct loop hot = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    base.lat = malloc(LAT_MAX * sizeof(uint64_t));
    hot.lat = malloc(LAT_MAX * sizeof(uint64_t));
    hot.pauses = calloc(64, sizeof(uint64_t));
    struct splitter sp = {.l = &hot, .stream = "hot", .max = splits};
    uint64_t ms = 300u * (splits + 1) + 200u;
    run(&base, "base", depth, ms, NULL);
    run(&hot, "hot", depth, ms, &sp);
    printf("1. %u splits of the shard being written, one every 300 ms (%" PRIu64
           " batches acknowledged, %" PRIu64 " answered SHARD_CLOSED and sent again, %" PRIu64
           " failed)\n",
           sp.n, hot.acked, hot.refused, hot.failed + base.failed);
    pct("split call (request to answer)", sp.ns, sp.n);
    pct("re-route pause (closed -> ack)", hot.pauses, hot.n_pauses);
    pct("batch latency, with splits", hot.lat, hot.n_lat);
    pct("batch latency, no splits (baseline)", base.lat, base.n_lat);

    so.shard_count = shards;
    if ((rc = sluice_stream_create(g_client, "wide", &so, NULL)) != SL_OK) {
        die("create wide", rc);
    }
    uint64_t up = 0, down = 0;
    if ((rc = reshard("wide", -1, 2 * shards, &up)) != SL_OK ||
        (rc = reshard("wide", -1, shards, &down)) != SL_OK) {
        die("reshard wide", rc);
    }
    printf("2. UpdateShardCount of an idle stream: %u -> %u open shards %.1f ms (%u splits, "
           "%u new shard logs); %u -> %u %.1f ms (%u merges)\n",
           shards, 2 * shards, (double)up / 1e6, shards, 2 * shards, 2 * shards, shards,
           (double)down / 1e6, shards);
    sluice_client_free(g_client);
    bench_broker_stop(&b, g_prog);
    free(base.lat);
    free(hot.lat);
    free(hot.pauses);
    free(g_batch);
    return hot.failed + base.failed == 0 ? 0 : 1;
}
