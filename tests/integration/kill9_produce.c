/* kill9_produce.c - records acknowledged durable survive kill -9 of the broker.
 *
 * Covers: a producer thread sends records (durable acks, flush policy `always`) to a
 * 4-shard stream while the broker is killed with SIGKILL four times and restarted on the
 * same data directory and port; the producer rides over the outages by retrying. Afterwards
 * every record whose delivery reported success is read back at exactly the shard and
 * sequence the report named, with its content. A record may be stored more than once only
 * where a retry's earlier attempt reached the disk but its acknowledgement was lost (the
 * broker's de-duplication is in memory): such extra copies must sit below the acknowledged
 * sequence in the same shard. Sequences of every shard are contiguous from 0.
 */
#include "../unit/test.h"
#include "harness.h"

#include "common/error.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>

#define SHARDS 4u
#define MAXREC 2000000u
#define KILLS 4

static struct it_broker broker;
static sluice_producer *producer;
static atomic_int stop_producing;
static atomic_uint produced;
static atomic_uchar status[MAXREC]; /* 0 pending, 1 acknowledged, 2 failed */
static uint64_t ack_seq[MAXREC];
static uint8_t ack_shard[MAXREC];
static uint32_t copies[MAXREC];
static uint8_t at_ack[MAXREC];
static atomic_int first_err;

static void on_delivery(void *ctx, int err, uint32_t shard, uint64_t seq)
{
    uint32_t i = (uint32_t)(uintptr_t)ctx;
    if (err != SL_OK) {
        int zero = 0;
        atomic_compare_exchange_strong(&first_err, &zero, err);
        atomic_store(&status[i], 2);
        return;
    }
    ack_seq[i] = seq;
    ack_shard[i] = (uint8_t)shard;
    atomic_store(&status[i], 1);
}

static void *produce_loop(void *arg)
{
    (void)arg;
    char key[16], val[48];
    for (uint32_t i = 0; i < MAXREC && !atomic_load(&stop_producing); i++) {
        int kl = snprintf(key, sizeof(key), "k%u", i % 64);
        int vl = snprintf(val, sizeof(val), "r%u-%08x", i, i * 2654435761u);
        int rc = sluice_produce(producer, key, (size_t)kl, val, (size_t)vl, NULL, 0,
                                on_delivery, (void *)(uintptr_t)i);
        if (rc != SL_OK) {
            fprintf(stderr, "  produce %u: %s (%s)\n", i, sl_errname(rc), sluice_last_error());
            break;
        }
        atomic_store(&produced, i + 1);
        if (i % 50 == 49) {
            it_sleep_ms(1);
        }
    }
    return NULL;
}

TEST(kill9_durable_produce)
{
    CHECK_EQ(it_broker_start(&broker, "always"), 0);
    sluice_client *c = NULL;
    CHECK_EQ(it_connect(&broker, &c), SL_OK);
    CHECK_EQ(it_create_stream(c, "dur", SHARDS), SL_OK);
    struct sluice_producer_opts po = {.batch_bytes = 64u << 10, .linger_ms = 2,
                                      .block_when_full = 1, .ack = SLUICE_ACK_DURABLE,
                                      .retries = 40, .retry_backoff_ms = 50};
    CHECK_EQ(sluice_producer_new(c, "dur", &po, &producer), SL_OK);
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, produce_loop, NULL), 0);
    srand(977);
    for (int k = 0; k < KILLS; k++) {
        it_sleep_ms(600 + (uint32_t)(rand() % 400));
        uint32_t before = atomic_load(&produced);
        CHECK_EQ(it_broker_kill9(&broker), 0);
        it_sleep_ms(50 + (uint32_t)(rand() % 250));
        CHECK_EQ(it_broker_restart(&broker), 0);
        fprintf(stderr, "  kill %d after %u records produced\n", k + 1, before);
    }
    it_sleep_ms(700);
    atomic_store(&stop_producing, 1);
    pthread_join(th, NULL);
    int frc = sluice_producer_flush(producer, 60000);
    if (frc != SL_OK) {
        fprintf(stderr, "  flush: %s (%s)\n", sl_errname(frc), sluice_last_error());
    }
    CHECK_EQ(frc, SL_OK);
    struct sluice_producer_stats ps;
    sluice_producer_stats(producer, &ps);
    sluice_producer_free(producer);
    producer = NULL;
    uint32_t n = atomic_load(&produced);
    uint32_t acked = 0, failed = 0, pending = 0;
    for (uint32_t i = 0; i < n; i++) {
        unsigned char st = atomic_load(&status[i]);
        acked += st == 1;
        failed += st == 2;
        pending += st == 0;
    }
    fprintf(stderr, "  %u records: %u acknowledged, %u failed (first: %s), %u unreported; %"
                    PRIu64 " batches, %" PRIu64 " retries, %" PRIu64 " duplicates\n",
            n, acked, failed, sl_errname(atomic_load(&first_err)), pending, ps.batches_sent,
            ps.retries, ps.duplicates);
    CHECK_EQ(pending, 0);
    CHECK(acked > 0);

    /* Read back everything. */
    sluice_consumer *cons = NULL;
    struct sluice_consumer_opts co = {.start = {.kind = SLUICE_TRIM_HORIZON}};
    CHECK_EQ(sluice_consumer_new(c, "dur", NULL, &co, &cons), SL_OK);
    static struct sluice_record recs[4096];
    uint64_t next[SHARDS] = {0}, total = 0;
    uint64_t deadline = it_mono_ms() + 60000;
    for (;;) {
        size_t got = 0;
        int rc = sluice_consumer_poll(cons, recs, 4096, &got, 500);
        if (rc != SL_OK) {
            fprintf(stderr, "  poll: %s (%s)\n", sl_errname(rc), sluice_last_error());
        }
        CHECK_EQ(rc, SL_OK);
        for (size_t r = 0; r < got; r++) {
            const struct sluice_record *rec = &recs[r];
            char buf[48], want[48];
            uint32_t len = rec->value_len < 47 ? rec->value_len : 47;
            memcpy(buf, rec->value, len);
            buf[len] = '\0';
            unsigned i;
            CHECK(sscanf(buf, "r%u-", &i) == 1 && i < n);
            snprintf(want, sizeof(want), "r%u-%08x", i, i * 2654435761u);
            CHECK(strcmp(buf, want) == 0);
            CHECK(rec->shard < SHARDS);
            CHECK_EQ(rec->seq, next[rec->shard]);
            next[rec->shard]++;
            copies[i]++;
            if (atomic_load(&status[i]) == 1) {
                if (rec->shard == ack_shard[i] && rec->seq == ack_seq[i]) {
                    at_ack[i] = 1;
                } else if (rec->shard != ack_shard[i] || rec->seq > ack_seq[i]) {
                    fprintf(stderr, "  record %u stored at %u/%" PRIu64 ", after its "
                                    "acknowledged position %u/%" PRIu64 "\n",
                            i, rec->shard, rec->seq, ack_shard[i], ack_seq[i]);
                    CHECK(0);
                }
            }
        }
        total += got;
        if (got == 0 && sluice_consumer_caught_up(cons)) {
            break;
        }
        CHECK(it_mono_ms() < deadline);
    }
    sluice_consumer_free(cons);
    uint32_t lost = 0, dup_acked = 0, dup_other = 0, failed_present = 0;
    for (uint32_t i = 0; i < n; i++) {
        unsigned char st = atomic_load(&status[i]);
        if (st == 1 && !at_ack[i]) {
            if (lost++ < 10) {
                fprintf(stderr, "  LOST: record %u acknowledged at %u/%" PRIu64
                                " (copies found: %u)\n",
                        i, ack_shard[i], ack_seq[i], copies[i]);
            }
        }
        dup_acked += st == 1 && copies[i] > 1;
        dup_other += st != 1 && copies[i] > 1;
        failed_present += st == 2 && copies[i] > 0;
    }
    fprintf(stderr, "  read %" PRIu64 " records; %u acknowledged records lost, %u stored "
                    "twice (ack lost, retried), %u failed ones stored, %u unacknowledged "
                    "stored twice\n",
            total, lost, dup_acked, failed_present, dup_other);
    CHECK_EQ(lost, 0);
    CHECK_EQ(failed, 0);
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
    RUN(kill9_durable_produce);
    TEST_END();
}
