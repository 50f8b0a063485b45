/* producer_linger.c - a record produced to an idle producer is sent after linger_ms, not at
 * the flusher's 1 s idle wake-up (regression: producer_linger_ignored_when_idle).
 *
 * Covers: with linger_ms = 5 and durable acks, single records produced one at a time
 * (sparse traffic, no flush call) are each acknowledged well within 250 ms. Before the fix,
 * opening a new batch did not wake the flusher thread, which slept until its idle wake-up
 * (PRODUCER_IDLE_WAKE_MS, 1 s): acknowledgements took 0-1000 ms (p50 ~500 ms), whatever
 * linger_ms said.
 */
#include "../unit/test.h"
#include "harness.h"

#include "common/error.h"

#include <inttypes.h>
#include <string.h>
#include <stdatomic.h>

#define ROUNDS 8
#define LIMIT_MS 250u

static struct it_broker broker;
static atomic_int acked, ack_err;

static void on_delivery(void *ctx, int err, uint32_t shard, uint64_t seq)
{
    (void)ctx;
    (void)shard;
    (void)seq;
    atomic_store(&ack_err, err);
    atomic_store(&acked, 1);
}

TEST(producer_linger_ignored_when_idle)
{
    CHECK_EQ(it_broker_start(&broker, "always"), 0);
    sluice_client *c = NULL;
    CHECK_EQ(it_connect(&broker, &c), SL_OK);
    CHECK_EQ(it_create_stream(c, "linger", 1), SL_OK);
    sluice_producer *p = NULL;
    struct sluice_producer_opts po = {.linger_ms = 5, .ack = SLUICE_ACK_DURABLE};
    CHECK_EQ(sluice_producer_new(c, "linger", &po, &p), SL_OK);
    uint64_t worst = 0;
    for (int r = 0; r < ROUNDS; r++) {
        it_sleep_ms(30 + (uint32_t)r * 17); /* the flusher goes idle */
        atomic_store(&acked, 0);
        uint64_t t0 = it_mono_ms();
        CHECK_EQ(sluice_produce(p, "k", 1, "v", 1, NULL, 0, on_delivery, NULL), SL_OK);
        while (!atomic_load(&acked) && it_mono_ms() - t0 < 5000) {
            it_sleep_ms(1);
        }
        uint64_t ms = it_mono_ms() - t0;
        CHECK(atomic_load(&acked));
        CHECK_EQ(atomic_load(&ack_err), SL_OK);
        worst = ms > worst ? ms : worst;
        fprintf(stderr, "  record %d acknowledged after %" PRIu64 " ms\n", r, ms);
    }
    CHECK(worst < LIMIT_MS);
    sluice_producer_free(p);
    sluice_client_free(c);
    CHECK_EQ(it_broker_stop(&broker), 0);
    it_broker_cleanup(&broker);
}

/* SLUICE_LINGER_NONE: an idle shard's record goes at once; under load records
 * gather while a batch is in flight, so they still travel in batches, in order. */
static atomic_uint_fast64_t last_seq, out_of_order, delivered;

static void on_ordered(void *ctx, int err, uint32_t shard, uint64_t seq)
{
    (void)ctx;
    (void)shard;
    if (err != SL_OK) {
        atomic_store(&ack_err, err);
        return;
    }
    if (atomic_load(&delivered) > 0 && seq != atomic_load(&last_seq) + 1) {
        atomic_fetch_add(&out_of_order, 1);
    }
    atomic_store(&last_seq, seq);
    atomic_fetch_add(&delivered, 1);
}

TEST(producer_linger_none)
{
    CHECK_EQ(it_broker_start(&broker, "always"), 0);
    sluice_client *c = NULL;
    CHECK_EQ(it_connect(&broker, &c), SL_OK);
    CHECK_EQ(it_create_stream(c, "eager", 1), SL_OK);
    sluice_producer *p = NULL;
    struct sluice_producer_opts po = {.linger_ms = SLUICE_LINGER_NONE,
                                      .ack = SLUICE_ACK_DURABLE};
    CHECK_EQ(sluice_producer_new(c, "eager", &po, &p), SL_OK);
    atomic_store(&ack_err, SL_OK);
    uint64_t worst = 0;
    for (int r = 0; r < ROUNDS; r++) {
        it_sleep_ms(20);
        uint64_t before = atomic_load(&delivered);
        uint64_t t0 = it_mono_ms();
        CHECK_EQ(sluice_produce(p, "k", 1, "v", 1, NULL, 0, on_ordered, NULL), SL_OK);
        while (atomic_load(&delivered) == before && it_mono_ms() - t0 < 5000) {
            it_sleep_ms(1);
        }
        uint64_t ms = it_mono_ms() - t0;
        CHECK(atomic_load(&delivered) == before + 1);
        worst = ms > worst ? ms : worst;
    }
    fprintf(stderr, "  idle records acknowledged within %" PRIu64 " ms\n", worst);
    CHECK(worst < LIMIT_MS);
    struct sluice_producer_stats st0;
    sluice_producer_stats(p, &st0);
    enum { N = 50000 };
    char value[100];
    memset(value, 'x', sizeof(value));
    for (int i = 0; i < N; i++) {
        CHECK_EQ(sluice_produce(p, "k", 1, value, sizeof(value), NULL, 0, on_ordered, NULL),
                 SL_OK);
    }
    CHECK_EQ(sluice_producer_flush(p, 30000), SL_OK);
    struct sluice_producer_stats st;
    sluice_producer_stats(p, &st);
    uint64_t batches = st.batches_sent - st0.batches_sent;
    fprintf(stderr, "  %d records under load went in %" PRIu64 " batches\n", N, batches);
    CHECK_EQ(atomic_load(&ack_err), SL_OK);
    CHECK_EQ(atomic_load(&delivered), (uint64_t)(N + ROUNDS));
    CHECK_EQ(atomic_load(&out_of_order), 0u);
    CHECK(batches < N / 10); /* gathered while a batch was in flight */
    sluice_producer_free(p);
    sluice_client_free(c);
    CHECK_EQ(it_broker_stop(&broker), 0);
    it_broker_cleanup(&broker);
}

int main(void)
{
    int rc = it_preflight();
    if (rc != 0) {
        return rc;
    }
    RUN(producer_linger_ignored_when_idle);
    RUN(producer_linger_none);
    TEST_END();
}
