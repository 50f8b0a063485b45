/* tail_wake.c - a long-poll parked at a shard's tail is answered by the append that makes
 * records visible, in that append's own loop turn, before its producer's ack (#12, tail
 * latency), and the stages' stamps (Produce.trace, Fetch.trace) come back in order.
 *
 * Covers, without wall-clock thresholds that could flake: a consumer polls with a 20 s
 * long-poll; a record produced while it waits reaches it (the poll returns the record, far
 * inside the 20 s). From the traces of that fetch and that produce (the broker's own
 * CLOCK_MONOTONIC stamps): the fetch was parked and then woken; on one loop (workers = 1)
 * the wake came after the write completed and the fetch's answer was queued before the
 * producer's ack - so it was answered within the acknowledgement of the write, not at a
 * later tick or loop turn (before the change the ack went first and the read took a ring
 * round trip). With two workers the shard may be owned by the other loop: the same order
 * holds, because the owner reads ahead for a watched shard and its notice carries the
 * batches (before: a read round trip to the owner, 130-250 us, after the ack). Rounds where the fetch had not parked yet when the record
 * came (possible on a slow machine) are not judged; most must have parked.
 */
#include "../unit/test.h"
#include "harness.h"

#include "common/error.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define ROUNDS     6
#define LONG_POLL  20000u /* ms */
#define SETTLE_MS  150u   /* for the poll's fetch to reach the broker and park */

static struct it_broker broker;

/* The producer's trace of its last acknowledged batch (I/O thread -> test thread). */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t ptrace[SLUICE_PT_N];
static uint64_t ptrace_seq = UINT64_MAX;
static atomic_int delivered, delivery_err;

static void on_trace(void *arg, uint32_t shard, uint64_t base_seq, uint32_t count,
                     const uint64_t *ns)
{
    (void)arg;
    (void)shard;
    (void)count;
    pthread_mutex_lock(&mu);
    memcpy(ptrace, ns, sizeof(ptrace));
    ptrace_seq = base_seq;
    pthread_mutex_unlock(&mu);
}

static void on_delivery(void *ctx, int err, uint32_t shard, uint64_t seq)
{
    (void)ctx;
    (void)shard;
    (void)seq;
    atomic_store(&delivery_err, err);
    atomic_store(&delivered, 1);
}

struct poller {
    sluice_consumer *c;
    int rc;
    size_t n;
    uint64_t seq;
    uint64_t ms; /* how long the poll took */
    uint64_t ftrace[SLUICE_FT_N];
    int traced;
};

static void *poll_once(void *arg)
{
    struct poller *p = arg;
    struct sluice_record recs[4];
    uint64_t t0 = it_mono_ms();
    p->rc = sluice_consumer_poll(p->c, recs, 4, &p->n, LONG_POLL);
    p->ms = it_mono_ms() - t0;
    if (p->rc == SL_OK && p->n > 0) {
        p->seq = recs[0].seq;
        p->traced = sluice_consumer_trace(p->c, 0, p->ftrace) == SL_OK;
    }
    return NULL;
}

/* Runs the rounds on a broker with `workers` loops. */
static void rounds(const char *workers)
{
    setenv("SLUICE_WORKERS", workers, 1);
    CHECK_EQ(it_broker_start(&broker, "interval"), 0);
    sluice_client *pc = NULL, *cc = NULL;
    CHECK_EQ(it_connect(&broker, &pc), SL_OK);
    CHECK_EQ(it_connect(&broker, &cc), SL_OK);
    CHECK_EQ(it_create_stream(pc, "tail", 1), SL_OK);
    sluice_producer *p = NULL;
    struct sluice_producer_opts po = {.linger_ms = SLUICE_LINGER_NONE,
                                      .ack = SLUICE_ACK_WRITTEN,
                                      .on_trace = on_trace};
    CHECK_EQ(sluice_producer_new(pc, "tail", &po, &p), SL_OK);
    struct sluice_consumer_opts co = {.start = {.kind = SLUICE_LATEST}, .trace = 1};
    struct poller pl = {0};
    CHECK_EQ(sluice_consumer_new(cc, "tail", NULL, &co, &pl.c), SL_OK);
    int parked = 0;
    for (int r = 0; r < ROUNDS; r++) {
        pthread_t th;
        pl.rc = -1;
        pl.n = 0;
        pl.traced = 0;
        CHECK_EQ(pthread_create(&th, NULL, poll_once, &pl), 0);
        it_sleep_ms(SETTLE_MS * IT_SLOWDOWN);
        atomic_store(&delivered, 0);
        CHECK_EQ(sluice_produce(p, NULL, 0, "tail", 4, NULL, 0, on_delivery, NULL), SL_OK);
        pthread_join(th, NULL);
        CHECK_EQ(pl.rc, SL_OK);
        CHECK_EQ(pl.n, 1u);
        CHECK(pl.ms < LONG_POLL / 2); /* answered by the append, not the long-poll's end */
        CHECK_EQ(sluice_producer_flush(p, 10000), SL_OK);
        CHECK(atomic_load(&delivered));
        CHECK_EQ(atomic_load(&delivery_err), SL_OK);
        CHECK(pl.traced);
        uint64_t pt[SLUICE_PT_N];
        pthread_mutex_lock(&mu);
        memcpy(pt, ptrace, sizeof(pt));
        uint64_t pseq = ptrace_seq;
        pthread_mutex_unlock(&mu);
        CHECK_EQ(pseq, pl.seq);
        const uint64_t *ft = pl.ftrace;
        /* every stage stamped, and in the order they happen */
        CHECK(pt[SLUICE_PT_SEALED] != 0 && pt[SLUICE_PT_SEALED] <= pt[SLUICE_PT_SENT]);
        CHECK(pt[SLUICE_PT_SENT] <= pt[SLUICE_PT_RECEIVED]);
        CHECK(pt[SLUICE_PT_RECEIVED] <= pt[SLUICE_PT_APPEND]);
        CHECK(pt[SLUICE_PT_APPEND] <= pt[SLUICE_PT_WRITE_SUBMIT]);
        CHECK(pt[SLUICE_PT_WRITE_SUBMIT] <= pt[SLUICE_PT_WRITE_DONE]);
        CHECK_EQ(pt[SLUICE_PT_SYNC_DONE], 0u); /* ack written: no fdatasync waited for */
        CHECK(pt[SLUICE_PT_WRITE_DONE] <= pt[SLUICE_PT_ACKED]);
        CHECK(pt[SLUICE_PT_ACKED] <= pt[SLUICE_PT_ANSWERED]);
        CHECK(pt[SLUICE_PT_ANSWERED] <= pt[SLUICE_PT_ACK_RECEIVED]);
        CHECK(ft[SLUICE_FT_SENT] != 0 && ft[SLUICE_FT_SENT] <= ft[SLUICE_FT_RECEIVED]);
        CHECK(ft[SLUICE_FT_READ_DONE] <= ft[SLUICE_FT_ANSWERED]);
        CHECK(ft[SLUICE_FT_ANSWERED] <= ft[SLUICE_FT_IO_RECEIVED]);
        CHECK(ft[SLUICE_FT_IO_RECEIVED] <= ft[SLUICE_FT_TAKEN]);
        if (ft[SLUICE_FT_PARKED] == 0) {
            fprintf(stderr, "  round %d: the fetch had not parked when the record came\n", r);
            continue;
        }
        parked++;
        CHECK(ft[SLUICE_FT_RECEIVED] <= ft[SLUICE_FT_PARKED]);
        CHECK(ft[SLUICE_FT_PARKED] <= pt[SLUICE_PT_RECEIVED]); /* it waited for this record */
        CHECK(ft[SLUICE_FT_WOKEN] != 0 && ft[SLUICE_FT_WOKEN] <= ft[SLUICE_FT_READ_DONE]);
        CHECK(pt[SLUICE_PT_WRITE_DONE] <= ft[SLUICE_FT_WOKEN]);
        /* woken and answered within the write's acknowledgement, before the producer's ack
         * was queued: on one loop directly; on two, the shard's owner read ahead for the
         * parked fetch (sl_wshard_watch) and its notice, which carried the batches, came
         * before the ack's message */
        CHECK(ft[SLUICE_FT_ANSWERED] <= pt[SLUICE_PT_ACKED]);
        CHECK(ft[SLUICE_FT_ANSWERED] <= pt[SLUICE_PT_ANSWERED]);
        fprintf(stderr,
                "  round %d (%s worker(s)): write done -> woken %.1f us, -> answer queued %.1f "
                "us; producer's ack queued %.1f us after the write\n",
                r, workers, (double)(ft[SLUICE_FT_WOKEN] - pt[SLUICE_PT_WRITE_DONE]) / 1e3,
                (double)(ft[SLUICE_FT_ANSWERED] - pt[SLUICE_PT_WRITE_DONE]) / 1e3,
                (double)(pt[SLUICE_PT_ANSWERED] - pt[SLUICE_PT_WRITE_DONE]) / 1e3);
    }
    CHECK(parked >= ROUNDS / 2);
    sluice_consumer_free(pl.c);
    sluice_producer_free(p);
    sluice_client_free(cc);
    sluice_client_free(pc);
    CHECK_EQ(it_broker_stop(&broker), 0);
    it_broker_cleanup(&broker);
}

TEST(tail_wake_same_turn_one_worker)
{
    rounds("1");
}

TEST(tail_wake_two_workers)
{
    rounds("2");
}

int main(void)
{
    int rc = it_preflight();
    if (rc != 0) {
        return rc;
    }
    RUN(tail_wake_same_turn_one_worker);
    RUN(tail_wake_two_workers);
    TEST_END();
}
