/* test_workers.c - shard-owning worker threads (broker/engine/workers.c), driven the way the
 * broker drives them: the test thread is the main loop and runs its ring.
 *
 * Covers: shards spread over 3 loops (worker 0 = this thread); appends routed to the
 * owner are acknowledged in order with contiguous sequences, every callback and every
 * listener call on this thread; the stats copy is never behind an acknowledgement seen;
 * 10,000 appends posted in one tick to one remote shard (more than a message ring holds
 * and more than the shard's pending queue takes: the overflow list and the owner's wait
 * FIFO) all complete, in order; reads through the owner return what was appended;
 * retention and the time lookup run on the owner; close hands back the last messages;
 * reopening on another owner (another worker count) finds the same data; more messages
 * from a worker in one turn than its out ring holds all reach the main loop (regression).
 */
#include "test.h"

#include "broker/engine/workers.h"
#include "common/error.h"
#include "common/ring.h"
#include "storage/batch.h"

#include <ftw.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SHARDS 6u
#define MANY   10000u

static struct sl_ring ring;
static pthread_t main_thread;
static char root[64];

struct acks {
    uint64_t next_seq[SHARDS]; /* expected base of the next ack, per shard */
    uint32_t done;
    uint32_t errors;
    uint32_t out_of_order;
    uint32_t off_thread;
    uint32_t stats_behind;
};

struct app {
    struct acks *a;
    struct sl_wshard *b;
    uint32_t shard;
};

static uint32_t listener_calls, listener_off_thread;

static void on_listener(void *ctx, struct sl_shard *s)
{
    (void)ctx;
    (void)s;
    listener_calls++;
    if (!pthread_equal(pthread_self(), main_thread)) {
        listener_off_thread++;
    }
}

static void on_ack(void *ctx, int err, uint64_t base, uint32_t count)
{
    struct app *p = ctx;
    struct acks *a = p->a;
    if (!pthread_equal(pthread_self(), main_thread)) {
        a->off_thread++;
    }
    if (err != SL_OK) {
        a->errors++;
    } else {
        if (base != a->next_seq[p->shard]) {
            a->out_of_order++;
        }
        a->next_seq[p->shard] = base + count;
        struct sl_shard_stats st;
        sl_wshard_stats(p->b, &st);
        if (st.next_seq < base + count) {
            a->stats_behind++;
        }
    }
    a->done++;
}

static size_t make_batch(uint8_t *buf, size_t cap, uint32_t nrec, uint32_t tag)
{
    struct sl_batch_builder bb;
    sl_batch_builder_init(&bb, buf, cap);
    for (uint32_t i = 0; i < nrec; i++) {
        char v[32];
        int n = snprintf(v, sizeof(v), "r%u-%u", tag, i);
        struct sl_record rec = {.value = v, .value_len = (uint32_t)n, .timestamp_ms = 1};
        if (sl_batch_builder_add(&bb, &rec) != SL_OK) {
            return 0;
        }
    }
    size_t len = 0;
    if (sl_batch_builder_finish(&bb, SL_BATCH_CODEC_NONE, 1, NULL, NULL, 0, 0, 0, &len) !=
        SL_OK) {
        return 0;
    }
    return len;
}

static void run_until(const uint32_t *counter, uint32_t want)
{
    for (int i = 0; i < 200000 && *counter < want; i++) {
        sl_ring_run(&ring, 1, 1000000);
    }
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static struct sl_wshard *open_shards(struct sl_workers *ws)
{
    struct sl_wshard *bs = calloc(SHARDS, sizeof(*bs));
    if (bs == NULL) {
        return NULL;
    }
    struct sl_shard_config cfg;
    sl_shard_config_default(&cfg);
    cfg.pending_max = 64; /* small: the owner's wait FIFO gets used */
    cfg.segment_bytes = 256u << 10;
    for (uint32_t i = 0; i < SHARDS; i++) {
        struct sl_wshard *b = &bs[i];
        b->workers = ws;
        b->owner = i % sl_workers_count(ws);
        char dir[128];
        snprintf(dir, sizeof(dir), "%s/%u", root, i);
        if (sl_wshard_open(b, &ring, dir, &cfg, on_listener, b) != SL_OK) {
            free(bs);
            return NULL;
        }
    }
    return bs;
}

static void close_shards(struct sl_wshard *bs)
{
    for (uint32_t i = 0; i < SHARDS; i++) {
        sl_wshard_close(&bs[i]);
    }
    free(bs);
}

struct reader {
    struct sl_wshard_read wr;
    uint32_t done;
    int err;
};

static void on_read(struct sl_shard_read *rd, int err)
{
    struct reader *r = rd->ctx;
    if (!pthread_equal(pthread_self(), main_thread)) {
        r->err = SL_EINVAL;
    } else {
        r->err = err;
    }
    r->done = 1;
}

/* Reads the whole shard through its owner; returns the records seen. */
static uint64_t read_all(struct sl_wshard *b, uint8_t *buf, uint32_t cap, int *err)
{
    uint64_t seq = 0, records = 0;
    *err = SL_OK;
    for (;;) {
        struct reader r = {.wr.rd = {.from = SL_READ_SEQ, .seq = seq, .buf = buf,
                                     .buf_cap = cap, .max_bytes = cap, .cb = on_read}};
        r.wr.rd.ctx = &r;
        sl_wshard_read(b, &r.wr);
        run_until(&r.done, 1);
        if (!r.done || r.err != SL_OK) {
            *err = r.done ? r.err : SL_EAGAIN;
            return records;
        }
        if (r.wr.rd.len == 0) {
            return records;
        }
        records += r.wr.rd.next_seq - seq;
        seq = r.wr.rd.next_seq;
    }
}

TEST(appends_reads_and_overflow_across_three_workers)
{
    struct sl_workers *ws = NULL;
    CHECK_EQ(sl_workers_start(3, 256, &ring, &ws), SL_OK);
    CHECK_EQ(sl_workers_count(ws), 3);
    struct sl_wshard *bs = open_shards(ws);
    CHECK(bs != NULL);
    uint8_t *batch = malloc(64u << 10);
    CHECK(batch != NULL);
    size_t len = make_batch(batch, 64u << 10, 10, 7);
    CHECK(len > 0);

    /* 300 appends spread over the shards, several ticks. */
    struct acks a;
    memset(&a, 0, sizeof(a));
    struct app *apps = calloc(MANY + 600, sizeof(*apps));
    CHECK(apps != NULL);
    uint32_t posted = 0;
    for (uint32_t round = 0; round < 30; round++) {
        for (uint32_t i = 0; i < SHARDS * 2; i++) {
            struct app *p = &apps[posted++];
            *p = (struct app){.a = &a, .b = &bs[i % SHARDS], .shard = i % SHARDS};
            /* A shard of this loop says EAGAIN when full (the broker's handler
             * then waits in its FIFO); a remote one never does. */
            int rc;
            while ((rc = sl_wshard_append(p->b, batch, len, 0, on_ack, p)) == SL_EAGAIN &&
                   p->b->owner == 0) {
                sl_ring_run(&ring, 1, 1000000);
            }
            CHECK_EQ(rc, SL_OK);
        }
        sl_ring_run(&ring, 0, 0);
    }
    run_until(&a.done, posted);
    CHECK_EQ(a.done, posted);
    CHECK_EQ(a.errors, 0);

    /* MANY appends to one remote shard in one tick: more than a message ring holds
     * (4,096) and than the shard's pending queue takes (64). */
    struct sl_wshard *remote = &bs[1];
    CHECK(remote->owner != 0);
    uint32_t before = a.done;
    for (uint32_t i = 0; i < MANY; i++) {
        struct app *p = &apps[posted++];
        *p = (struct app){.a = &a, .b = remote, .shard = 1};
        CHECK_EQ(sl_wshard_append(remote, batch, len, SL_APPEND_DURABLE, on_ack, p), SL_OK);
    }
    run_until(&a.done, before + MANY);
    CHECK_EQ(a.done, before + MANY);
    CHECK_EQ(a.errors, 0);
    CHECK_EQ(a.out_of_order, 0);
    CHECK_EQ(a.off_thread, 0);
    CHECK_EQ(a.stats_behind, 0);
    CHECK(listener_calls > 0);
    CHECK_EQ(listener_off_thread, 0);
    fprintf(stderr, "  %u appends acknowledged in order, %u listener calls on the main loop\n",
            a.done, listener_calls);

    /* Reads through the owner, the stats copy and the time lookup agree. */
    uint32_t cap = 1u << 20;
    uint8_t *rbuf = malloc(cap);
    CHECK(rbuf != NULL);
    for (uint32_t i = 0; i < SHARDS; i++) {
        int err = SL_OK;
        uint64_t n = read_all(&bs[i], rbuf, cap, &err);
        CHECK_EQ(err, SL_OK);
        CHECK_EQ(n, a.next_seq[i]);
        struct sl_shard_stats st;
        sl_wshard_stats(&bs[i], &st);
        CHECK_EQ(st.visible_seq, a.next_seq[i]);
        uint64_t t = 0;
        CHECK_EQ(sl_wshard_time_near_seq(&bs[i], 0, &t), SL_OK);
        CHECK(t > 0);
        sl_wshard_retention(&bs[i], SL_RETAIN_FLOOR_NONE); /* nothing expired: disturbs nothing */
    }
    sl_ring_run(&ring, 0, 0);
    close_shards(bs);
    sl_workers_stop(ws);
    /* The stopped workers' wake-up read stays on the ring: a new ring, as sluiced
     * would have at its next start. */
    sl_ring_fini(&ring);
    CHECK_EQ(sl_ring_init(&ring, 256), SL_OK);

    /* Reopened with another number of workers: the owners change, the data does not. */
    CHECK_EQ(sl_workers_start(2, 256, &ring, &ws), SL_OK);
    bs = open_shards(ws);
    CHECK(bs != NULL);
    for (uint32_t i = 0; i < SHARDS; i++) {
        int err = SL_OK;
        CHECK_EQ(read_all(&bs[i], rbuf, cap, &err), a.next_seq[i]);
        CHECK_EQ(err, SL_OK);
    }
    close_shards(bs);
    sl_workers_stop(ws);
    sl_ring_fini(&ring);
    CHECK_EQ(sl_ring_init(&ring, 256), SL_OK);
    free(rbuf);
    free(apps);
    free(batch);
}

/* Regression (found by integration_scale, a broker with 20,000 shards hung after a restart):
 * a worker that posts more messages in one turn than its out ring holds keeps the rest in
 * its overflow list and wakes the main loop; the main loop drains the ring; the worker's
 * next turn moves the overflow into the ring, and woke nobody when that turn posted nothing
 * new - the main loop slept on messages it was never told about. 4,500 shards on one
 * worker, one append each: their stats changes are published in one turn (4,500 M_STATS
 * messages, more than the 4,096 slots); every shard's copy on the main loop must catch up. */
TEST(regress_out_ring_overflow_wakes_main_loop)
{
    enum { N = 4500 };
    /* On a tmpfs when there is one: instant fsyncs put every shard's change in the same
     * publication (on a disk they spread over many turns and the ring never fills). */
    char shm_root[64] = "";
    snprintf(shm_root, sizeof(shm_root), "/dev/shm/sl-workers-XXXXXX");
    if (mkdtemp(shm_root) == NULL) {
        shm_root[0] = '\0';
    }
    struct sl_workers *ws = NULL;
    CHECK_EQ(sl_workers_start(2, 256, &ring, &ws), SL_OK);
    struct sl_shard_cache cache; /* worker 1's descriptor budget: 4,500 shards, few files */
    sl_shard_cache_init(&cache, 96);
    struct sl_shard_config cfg;
    sl_shard_config_default(&cfg);
    cfg.cache = &cache;
    struct sl_wshard *bs = calloc(N, sizeof(*bs));
    struct app *apps = calloc(N, sizeof(*apps));
    uint8_t batch[4096];
    size_t len = make_batch(batch, sizeof(batch), 1, 9);
    CHECK(bs != NULL && apps != NULL && len > 0);
    for (uint32_t i = 0; i < N; i++) {
        bs[i].workers = ws;
        bs[i].owner = 1;
        char dir[128];
        snprintf(dir, sizeof(dir), "%s/many/%u", shm_root[0] != '\0' ? shm_root : root, i);
        CHECK_EQ(sl_wshard_open(&bs[i], &ring, dir, &cfg, NULL, NULL), SL_OK);
    }
    struct acks a;
    memset(&a, 0, sizeof(a));
    for (uint32_t i = 0; i < N; i++) {
        apps[i] = (struct app){.a = &a, .b = &bs[i], .shard = 0};
        CHECK_EQ(sl_wshard_append(&bs[i], batch, len, 0, on_ack, &apps[i]), SL_OK);
    }
    run_until(&a.done, N);
    CHECK_EQ(a.done, N);
    CHECK_EQ(a.errors, 0);
    /* The stats (bytes) come with the owner's next publication: within a second or two. */
    uint32_t stale = N;
    for (int t = 0; t < 3000 && stale > 0; t++) {
        sl_ring_run(&ring, 1, 1000000);
        stale = 0;
        for (uint32_t i = 0; i < N; i++) {
            struct sl_shard_stats st;
            sl_wshard_stats(&bs[i], &st);
            stale += st.bytes != len;
        }
    }
    if (stale > 0) {
        fprintf(stderr, "  %u of %u shards' stats never reached the main loop\n", stale, N);
    }
    for (uint32_t i = 0; i < N; i++) {
        sl_wshard_close(&bs[i]);
    }
    sl_workers_stop(ws);
    sl_shard_cache_fini(&cache); /* (the spares its owner kept) */
    sl_ring_fini(&ring);
    CHECK_EQ(sl_ring_init(&ring, 256), SL_OK);
    free(bs);
    free(apps);
    if (shm_root[0] != '\0') {
        nftw(shm_root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    }
    CHECK_EQ(stale, 0);
}

TEST(one_worker_is_the_plain_loop)
{
    struct sl_workers *ws = NULL;
    CHECK_EQ(sl_workers_start(1, 256, &ring, &ws), SL_OK);
    CHECK_EQ(sl_workers_pick(ws, "any", 5), 0);
    CHECK_EQ(sl_workers_count(NULL), 1);
    struct sl_workers *bad = NULL;
    CHECK_EQ(sl_workers_start(0, 256, &ring, &bad), SL_EINVAL);
    CHECK_EQ(sl_workers_start(SL_WORKERS_MAX + 1, 256, &ring, &bad), SL_EINVAL);
    sl_workers_stop(ws);
    sl_workers_stop(NULL);
}

TEST(pick_spreads_a_stream_over_every_worker)
{
    struct sl_workers *ws = NULL;
    CHECK_EQ(sl_workers_start(4, 64, &ring, &ws), SL_OK);
    sl_workers_stop(ws);
    sl_ring_fini(&ring);
    CHECK_EQ(sl_ring_init(&ring, 256), SL_OK);
    CHECK_EQ(sl_workers_start(4, 64, &ring, &ws), SL_OK);
    uint32_t seen[4] = {0};
    for (uint32_t i = 0; i < 8; i++) {
        uint32_t w = sl_workers_pick(ws, "orders", i);
        CHECK(w < 4);
        seen[w]++;
    }
    for (uint32_t w = 0; w < 4; w++) {
        CHECK_EQ(seen[w], 2);
    }
    sl_workers_stop(ws);
    sl_ring_fini(&ring);
    CHECK_EQ(sl_ring_init(&ring, 256), SL_OK);
}

int main(void)
{
    main_thread = pthread_self();
    snprintf(root, sizeof(root), "/tmp/sl-workers-XXXXXX");
    if (mkdtemp(root) == NULL || sl_ring_init(&ring, 256) != SL_OK) {
        fprintf(stderr, "setup failed\n");
        return 1;
    }
    RUN(appends_reads_and_overflow_across_three_workers);
    RUN(regress_out_ring_overflow_wakes_main_loop);
    RUN(one_worker_is_the_plain_loop);
    RUN(pick_spreads_a_stream_over_every_worker);
    sl_ring_fini(&ring);
    nftw(root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    TEST_END();
}
