/* scale.c - one broker holding many shards under a small descriptor budget (issue #11).
 *
 * Covers: the real sluiced, started with open_files_max = 256 (SLUICE_OPEN_FILES_MAX), is
 * given 2,500 streams of 8 shards = 20,000 shards (SLUICE_IT_LONG=1: 12,500 x 8 = 100,000),
 * created by four clients at once. Records go to a spread of them: every shard of every
 * 10th stream gets two and every other stream one (long: every shard gets two), each
 * record's key chosen to hash into its shard and its value naming stream, shard and
 * number. Then:
 *   - at every checkpoint (after the creates, after the writes, after each restart and
 *     read-back) the broker holds at most open_files_max + FD_SLACK descriptors more than
 *     it held empty (/proc/PID/fd), and its resident memory stays under the bound below
 *     (VmRSS);
 *   - the broker is stopped cleanly (SIGTERM) and restarted, every stream is read back
 *     from TRIM_HORIZON - exactly the records written, each at the sequence its delivery
 *     reported, nothing else - and one more record goes to a sample of shards (one per
 *     100th stream); the same after kill -9.
 * Every delivery is checked at produce time too (shard and sequence as expected).
 *
 * CI size: ~80 s in the ASan build on 2 cores, of which a start (every shard opened and
 * recovered) is ~27 s; the timeout in tests/CMakeLists.txt allows for a loaded machine.
 * Long: several minutes.
 */
#include "../unit/test.h"
#include "harness.h"

#include "common/error.h"
#include "common/partition.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SHARDS         8u
#define STREAMS_CI     2500u
#define STREAMS_LONG   12500u
#define FULL_EVERY     10u  /* CI: every shard of every 10th stream has records */
#define PER_SHARD_FULL 2u   /* records per shard of those (and of every shard, long) */
#define SAMPLE_EVERY   100u /* streams that get one more record after each restart */
#define RECS_MAX       (PER_SHARD_FULL + 2u) /* per shard: the writes and two appends */
#define THREADS        4u
#define OPEN_FILES_MAX 256u
/* Descriptors beyond the empty broker's and open_files_max: the test's connections (five),
 * a creator thread's shard being opened (3 each, 4 threads) before it is parked, and a
 * trim's overshoot (storage/shard_park.c TRIM_TRIES: busy shards are skipped). */
#define FD_SLACK 48u
/* Memory: VmRSS <= the empty broker's + RSS_PER_SHARD_KIB per shard + the caches + slack.
 * Measured at 20,000 shards (2 workers), over the empty broker: Release ~2 KiB per shard
 * (struct sl_shard, its segment, the catalog's struct sl_bshard and stream; a written
 * shard also keeps a de-dup table), Debug + ASan 3-5 KiB (redzones around every
 * allocation; ASan's quarantine of freed memory is capped at 64 MiB for the broker below,
 * ASAN_OPTIONS, and allowed for on top). The bound is the 10 KiB per shard; the
 * caches are the unparked shards' staging buffer (64 KiB at first) and pending ring, at
 * most open_files_max / 3 shards at a time; the slack is the allocator's arenas (a
 * worker's freed buffers stay resident) and five connections' buffers and fetches.
 * Measured peaks: Release ~50 MiB against a bound of ~240, ASan ~125 MiB against ~330. */
#define RSS_PER_SHARD_KIB 10u
#define RSS_CACHE_KIB     ((OPEN_FILES_MAX / 3u) * 96u)
#define RSS_SLACK_KIB     (32u * 1024u)
#ifdef IT_ASAN
#define ASAN_QUARANTINE_MB 64u
#define RSS_ASAN_KIB       ((ASAN_QUARANTINE_MB + 16u) * 1024u) /* + its own tables */
#else
#define RSS_ASAN_KIB 0u
#endif
#define VALUE_MAX     48u
#define READ_WAIT_MS  20000u
#define START_WAIT_MS 300000u /* a start opens every shard */

static struct it_broker broker;
static uint32_t streams = STREAMS_CI;
static bool long_mode;
static uint8_t (*recs)[SHARDS]; /* records written and acknowledged, per stream and shard */
static char keys[SHARDS][16];   /* a key that hashes into each shard */
static uint32_t base_fds;
static uint64_t base_rss_kib;
static uint32_t max_fds;
static uint64_t max_rss_kib;

static void stream_name(uint32_t i, char *out, size_t cap)
{
    snprintf(out, cap, "sc%05u", i);
}

static int value_of(uint32_t i, uint32_t shard, uint32_t n, char *out, size_t cap)
{
    return snprintf(out, cap, "sc%05u/%u/%u", i, shard, n);
}

/* ---- work spread over threads, one client each ---- */

typedef int (*stream_fn)(sluice_client *c, uint32_t i, void *arg);

struct pool {
    stream_fn fn;
    void *arg;
    uint32_t step; /* every step-th stream, from 0 */
    atomic_uint next;
    atomic_uint failed;
    atomic_uint first_failed;
};

static void *pool_thread(void *p)
{
    struct pool *pl = p;
    sluice_client *c = NULL;
    if (it_connect(&broker, &c) != SL_OK) {
        atomic_fetch_add(&pl->failed, 1);
        return NULL;
    }
    for (;;) {
        uint32_t i = atomic_fetch_add(&pl->next, pl->step);
        if (i >= streams || atomic_load(&pl->failed) > 0) {
            break;
        }
        if (pl->fn(c, i, pl->arg) != 0) {
            if (atomic_fetch_add(&pl->failed, 1) == 0) {
                atomic_store(&pl->first_failed, i);
            }
        }
    }
    sluice_client_free(c);
    return NULL;
}

/* Runs fn on every step-th stream with THREADS clients; 0 when every call returned 0. */
static int pool_run(stream_fn fn, void *arg, uint32_t step, const char *what)
{
    struct pool pl = {.fn = fn, .arg = arg, .step = step};
    pthread_t th[THREADS];
    uint64_t t0 = it_mono_ms();
    for (uint32_t t = 0; t < THREADS; t++) {
        if (pthread_create(&th[t], NULL, pool_thread, &pl) != 0) {
            return -1;
        }
    }
    for (uint32_t t = 0; t < THREADS; t++) {
        pthread_join(th[t], NULL);
    }
    uint32_t failed = atomic_load(&pl.failed);
    fprintf(stderr, "  %s: %.1f s%s", what, (double)(it_mono_ms() - t0) / 1000.0,
            failed > 0 ? "" : "\n");
    if (failed > 0) {
        fprintf(stderr, ": failed (first at stream %u)\n", atomic_load(&pl.first_failed));
    }
    return failed > 0 ? -1 : 0;
}

/* ---- create ---- */

static int create_one(sluice_client *c, uint32_t i, void *arg)
{
    (void)arg;
    char name[32];
    stream_name(i, name, sizeof(name));
    return it_create_stream(c, name, SHARDS) == SL_OK ? 0 : -1;
}

/* ---- produce ---- */

struct delivery {
    atomic_uint errors;
    atomic_uint wrong; /* a delivery at another shard or sequence than expected */
};

struct rec_ctx {
    struct delivery *d;
    uint32_t shard;
    uint32_t n;
};

static void on_delivery(void *ctx, int err, uint32_t shard, uint64_t seq)
{
    struct rec_ctx *r = ctx;
    if (err != SL_OK) {
        atomic_fetch_add(&r->d->errors, 1);
    } else if (shard != r->shard || seq != r->n) {
        atomic_fetch_add(&r->d->wrong, 1);
    }
}

/* Appends add[k] records to each shard k of stream i (numbered on from what it has),
 * waits for every delivery, and counts them in recs[] when all were acknowledged where
 * expected. */
static int append_stream(sluice_client *c, uint32_t i, const uint32_t add[SHARDS])
{
    char name[32];
    stream_name(i, name, sizeof(name));
    sluice_producer *p = NULL;
    struct sluice_producer_opts po = {.linger_ms = SLUICE_LINGER_NONE,
                                      .block_when_full = 1,
                                      .ack = SLUICE_ACK_DURABLE,
                                      .compression = SLUICE_COMPRESSION_NONE};
    if (sluice_producer_new(c, name, &po, &p) != SL_OK) {
        fprintf(stderr, "  producer %s: %s\n", name, sluice_last_error());
        return -1;
    }
    struct delivery d;
    memset(&d, 0, sizeof(d));
    struct rec_ctx ctx[SHARDS][RECS_MAX];
    int rc = SL_OK;
    for (uint32_t k = 0; k < SHARDS && rc == SL_OK; k++) {
        for (uint32_t j = 0; j < add[k] && rc == SL_OK; j++) {
            uint32_t n = recs[i][k] + j;
            if (n >= RECS_MAX) {
                rc = SL_EINVAL;
                break;
            }
            char val[VALUE_MAX];
            int vl = value_of(i, k, n, val, sizeof(val));
            ctx[k][j] = (struct rec_ctx){.d = &d, .shard = k, .n = n};
            rc = sluice_produce(p, keys[k], strlen(keys[k]), val, (size_t)vl, NULL, 0, on_delivery,
                                &ctx[k][j]);
        }
    }
    int frc = sluice_producer_flush(p, 60000);
    sluice_producer_free(p);
    if (rc != SL_OK || frc != SL_OK || atomic_load(&d.errors) > 0 || atomic_load(&d.wrong) > 0) {
        fprintf(stderr, "  produce to %s: %s / flush %s; %u failed, %u misplaced (%s)\n", name,
                sl_errname(rc), sl_errname(frc), atomic_load(&d.errors), atomic_load(&d.wrong),
                sluice_last_error());
        return -1;
    }
    for (uint32_t k = 0; k < SHARDS; k++) {
        recs[i][k] = (uint8_t)(recs[i][k] + add[k]);
    }
    return 0;
}

static int write_one(sluice_client *c, uint32_t i, void *arg)
{
    (void)arg;
    uint32_t add[SHARDS] = {0};
    bool full = long_mode || i % FULL_EVERY == 0;
    for (uint32_t k = 0; k < SHARDS; k++) {
        add[k] = full ? PER_SHARD_FULL : (k == i % SHARDS ? 1u : 0u);
    }
    return append_stream(c, i, add);
}

/* One record to one shard of a sampled stream (another shard each round). */
static int sample_one(sluice_client *c, uint32_t i, void *arg)
{
    uint32_t round = *(const uint32_t *)arg;
    uint32_t add[SHARDS] = {0};
    add[(i / SAMPLE_EVERY + round) % SHARDS] = 1;
    return append_stream(c, i, add);
}

/* ---- read back ---- */

/* Reads stream i from TRIM_HORIZON until caught up: exactly the records of recs[i], each
 * at its own sequence with its own value, once. */
static int verify_one(sluice_client *c, uint32_t i, void *arg)
{
    (void)arg;
    char name[32];
    stream_name(i, name, sizeof(name));
    /* small fetches: a stream holds a few records, and a fetch reserves its whole buffer
     * in the broker's fetch memory (4 MiB each by default) */
    struct sluice_consumer_opts co = {.start = {.kind = SLUICE_TRIM_HORIZON},
                                      .fetch_max_bytes = 16u << 10};
    sluice_consumer *k = NULL;
    if (sluice_consumer_new(c, name, NULL, &co, &k) != SL_OK) {
        fprintf(stderr, "  consumer %s: %s\n", name, sluice_last_error());
        return -1;
    }
    uint32_t want = 0, got = 0, bad = 0;
    uint8_t seen[SHARDS][RECS_MAX];
    memset(seen, 0, sizeof(seen));
    for (uint32_t s = 0; s < SHARDS; s++) {
        want += recs[i][s];
    }
    struct sluice_record out[32];
    uint64_t deadline = it_mono_ms() + READ_WAIT_MS;
    int rc = SL_OK;
    while (it_mono_ms() < deadline) {
        size_t n = 0;
        /* no long-poll: shards at their tail answer at once (a tail long-poll would wait
         * for the broker's tick), and the loop sleeps a little while fetches fly */
        rc = sluice_consumer_poll(k, out, 32, &n, 0);
        if (rc != SL_OK) {
            break;
        }
        for (size_t r = 0; r < n; r++) {
            const struct sluice_record *rec = &out[r];
            char val[VALUE_MAX];
            int vl = rec->shard < SHARDS && rec->seq < recs[i][rec->shard]
                         ? value_of(i, rec->shard, (uint32_t)rec->seq, val, sizeof(val))
                         : -1;
            if (vl < 0 || rec->value_len != (uint32_t)vl ||
                memcmp(rec->value, val, (size_t)vl) != 0 || seen[rec->shard][rec->seq]) {
                if (bad++ < 3) {
                    fprintf(stderr, "  %s: unexpected record %u/%" PRIu64 " (%.*s)\n", name,
                            rec->shard, rec->seq, (int)rec->value_len, (const char *)rec->value);
                }
                continue;
            }
            seen[rec->shard][rec->seq] = 1;
            got++;
        }
        if (n == 0 && sluice_consumer_caught_up(k)) {
            break;
        }
        if (n == 0) {
            it_sleep_ms(1);
        }
    }
    int caught_up = sluice_consumer_caught_up(k);
    sluice_consumer_free(k);
    if (rc != SL_OK || !caught_up || got != want || bad > 0) {
        fprintf(stderr, "  %s: %u of %u records, %u unexpected, %s, %s (%s)\n", name, got, want,
                bad, caught_up ? "caught up" : "not caught up", sl_errname(rc),
                sluice_last_error());
        return -1;
    }
    return 0;
}

/* ---- checkpoints ---- */

/* Descriptors and memory now against the bounds (see FD_SLACK and RSS_*). */
static int checkpoint(const char *when)
{
    uint32_t fds = it_broker_fds(&broker);
    uint64_t rss = it_broker_rss_kib(&broker);
    uint64_t shards = (uint64_t)streams * SHARDS;
    uint64_t rss_bound =
        base_rss_kib + shards * RSS_PER_SHARD_KIB + RSS_CACHE_KIB + RSS_SLACK_KIB + RSS_ASAN_KIB;
    max_fds = fds > max_fds ? fds : max_fds;
    max_rss_kib = rss > max_rss_kib ? rss : max_rss_kib;
    fprintf(stderr,
            "  %s: %u descriptors (empty %u, bound %u), RSS %" PRIu64 " KiB (empty %" PRIu64
            ", %.1f KiB per shard over it; bound %" PRIu64 ")\n",
            when, fds, base_fds, base_fds + OPEN_FILES_MAX + FD_SLACK, rss, base_rss_kib,
            rss > base_rss_kib ? (double)(rss - base_rss_kib) / (double)shards : 0.0, rss_bound);
    if (fds == 0 || fds > base_fds + OPEN_FILES_MAX + FD_SLACK) {
        return -1;
    }
    return rss > 0 && rss <= rss_bound ? 0 : -1;
}

/* Waits for the shards written last to be synced, indexed and parked (a shard that goes
 * quiet over the budget trims it), so a checkpoint sees the steady state. */
static void settle(void)
{
    it_sleep_ms(1500);
}

static int restart(bool kill9)
{
    uint64_t t0 = it_mono_ms();
    int rc = kill9 ? it_broker_kill9(&broker) : it_broker_stop(&broker);
    uint64_t t1 = it_mono_ms();
    if (rc != 0 || it_broker_restart(&broker) != 0) {
        fprintf(stderr, "  %s or restart failed\n", kill9 ? "kill -9" : "stop");
        return -1;
    }
    fprintf(stderr, "  %s in %.1f s, listening again after %.1f s\n",
            kill9 ? "kill -9" : "stop (SIGTERM)", (double)(t1 - t0) / 1000.0,
            (double)(it_mono_ms() - t1) / 1000.0);
    return 0;
}

static void find_keys(void)
{
    for (uint32_t k = 0; k < SHARDS; k++) {
        for (uint32_t j = 0;; j++) {
            char key[16];
            int n = snprintf(key, sizeof(key), "key%u", j);
            if (sl_partition_shard(sl_partition_hash(key, (size_t)n), SHARDS) == k) {
                memcpy(keys[k], key, (size_t)n + 1);
                break;
            }
        }
    }
}

TEST(many_shards_small_budget)
{
    find_keys();
    recs = calloc(streams, sizeof(*recs));
    CHECK(recs != NULL);
    char budget[16];
    snprintf(budget, sizeof(budget), "%u", OPEN_FILES_MAX);
    setenv("SLUICE_OPEN_FILES_MAX", budget, 1); /* kept: restarts inherit it */
#ifdef IT_ASAN
    /* the broker's quarantine of freed memory, bounded (this process keeps its own) */
    char asan[512];
    const char *was = getenv("ASAN_OPTIONS");
    snprintf(asan, sizeof(asan), "%s%squarantine_size_mb=%u", was != NULL ? was : "",
             was != NULL && was[0] != '\0' ? ":" : "", ASAN_QUARANTINE_MB);
    setenv("ASAN_OPTIONS", asan, 1);
#endif
    CHECK_EQ(it_broker_start(&broker, "always"), 0);
    broker.start_wait_ms = START_WAIT_MS;
    broker.stop_wait_ms = START_WAIT_MS;
    it_sleep_ms(300);
    base_fds = it_broker_fds(&broker);
    base_rss_kib = it_broker_rss_kib(&broker);
    CHECK(base_fds > 0 && base_rss_kib > 0);
    fprintf(stderr, "  %u streams of %u shards; open_files_max %u\n", streams, SHARDS,
            OPEN_FILES_MAX);

    CHECK_EQ(pool_run(create_one, NULL, 1, "create"), 0);
    CHECK_EQ(checkpoint("created"), 0);
    CHECK_EQ(pool_run(write_one, NULL, 1, "write"), 0);
    settle();
    CHECK_EQ(checkpoint("written"), 0);
    CHECK_EQ(pool_run(verify_one, NULL, 1, "read back"), 0);
    CHECK_EQ(checkpoint("read back"), 0);

    for (uint32_t round = 0; round < 2; round++) {
        bool kill9 = round == 1;
        CHECK_EQ(restart(kill9), 0);
        CHECK_EQ(checkpoint(kill9 ? "after kill -9" : "after a clean restart"), 0);
        CHECK_EQ(pool_run(verify_one, NULL, 1, "read back"), 0);
        CHECK_EQ(pool_run(sample_one, &round, SAMPLE_EVERY, "append to a sample"), 0);
        CHECK_EQ(pool_run(verify_one, NULL, SAMPLE_EVERY, "read back the sample"), 0);
        CHECK_EQ(checkpoint("read back, sample appended"), 0);
    }
    fprintf(stderr, "  at most %u descriptors, %" PRIu64 " KiB RSS\n", max_fds, max_rss_kib);
    CHECK_EQ(it_broker_stop(&broker), 0);
    it_broker_cleanup(&broker);
}

int main(void)
{
    int pre = it_preflight();
    if (pre != 0) {
        return pre;
    }
    const char *v = getenv("SLUICE_IT_LONG");
    long_mode = v != NULL && strcmp(v, "1") == 0;
    streams = long_mode ? STREAMS_LONG : STREAMS_CI;
    RUN(many_shards_small_budget);
    free(recs);
    TEST_END();
}
