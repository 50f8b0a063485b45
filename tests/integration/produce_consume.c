/* produce_consume.c - 1,000,000 records through the real broker and back.
 *
 * Covers: the library producer (batching, durable acks) sends 1,000,000 small records
 * (values of 16-64 bytes, 1,000 keys "k<i % 1000>") to a 4-shard stream; every delivery
 * report is OK and names the record's shard and sequence. A consumer then reads the stream
 * from TRIM_HORIZON and checks: every record exactly once, with the exact value produced,
 * in the shard its key hashes to, at the (shard, sequence) its delivery reported; each
 * shard's sequences start at 0 and increase by one without gaps; each key's records come in
 * production order; and nothing more arrives after the last one.
 */
#include "../unit/test.h"
#include "harness.h"

#include "common/error.h"
#include "common/partition.h"

#include <inttypes.h>
#include <stdatomic.h>

#define RECORDS 1000000u
#define KEYS 1000u
#define SHARDS 4u
#define VALUE_MAX 64u

static struct it_broker broker;
static uint64_t *acked_seq;  /* per record: the sequence its delivery reported */
static uint8_t *acked_shard; /* per record: the shard, 0xFF until reported */
static atomic_uint_fast64_t delivered_ok, delivered_err;
static atomic_int first_err;

static uint32_t key_of(uint32_t i, char *out)
{
    return (uint32_t)snprintf(out, 16, "k%u", i % KEYS);
}

/* The value of record i: "<i>:" then filler derived from i; 16..64 bytes. */
static uint32_t value_of(uint32_t i, char *out)
{
    uint32_t len = 16u + (i * 2654435761u) % (VALUE_MAX - 16u + 1u);
    int n = snprintf(out, VALUE_MAX + 1, "%u:", i);
    for (uint32_t j = (uint32_t)n; j < len; j++) {
        out[j] = (char)('a' + (i + j) % 26);
    }
    return len;
}

static void on_delivery(void *ctx, int err, uint32_t shard, uint64_t seq)
{
    uint32_t i = (uint32_t)(uintptr_t)ctx;
    if (err != SL_OK) {
        int zero = 0;
        atomic_compare_exchange_strong(&first_err, &zero, err);
        atomic_fetch_add(&delivered_err, 1);
        return;
    }
    acked_seq[i] = seq;
    acked_shard[i] = (uint8_t)shard;
    atomic_fetch_add(&delivered_ok, 1);
}

TEST(produce_consume_4_shards)
{
    CHECK_EQ(it_broker_start(&broker, "always"), 0);
    sluice_client *c = NULL;
    CHECK_EQ(it_connect(&broker, &c), SL_OK);
    CHECK_EQ(it_create_stream(c, "pc", SHARDS), SL_OK);

    acked_seq = calloc(RECORDS, sizeof(*acked_seq));
    acked_shard = malloc(RECORDS);
    CHECK(acked_seq != NULL && acked_shard != NULL);
    memset(acked_shard, 0xFF, RECORDS);

    sluice_producer *p = NULL;
    struct sluice_producer_opts po = {.batch_bytes = 256u << 10, .linger_ms = 5,
                                      .block_when_full = 1, .ack = SLUICE_ACK_DURABLE};
    CHECK_EQ(sluice_producer_new(c, "pc", &po, &p), SL_OK);
    CHECK_EQ(sluice_producer_shard_count(p), SHARDS);
    uint64_t t0 = it_mono_ms();
    char key[16], val[VALUE_MAX + 1];
    for (uint32_t i = 0; i < RECORDS; i++) {
        uint32_t kl = key_of(i, key), vl = value_of(i, val);
        int rc = sluice_produce(p, key, kl, val, vl, NULL, 0, on_delivery, (void *)(uintptr_t)i);
        if (rc != SL_OK) {
            fprintf(stderr, "  produce %u: %s (%s)\n", i, sl_errname(rc), sluice_last_error());
        }
        CHECK_EQ(rc, SL_OK);
    }
    CHECK_EQ(sluice_producer_flush(p, 120000), SL_OK);
    uint64_t t1 = it_mono_ms();
    struct sluice_producer_stats ps;
    sluice_producer_stats(p, &ps);
    sluice_producer_free(p);
    fprintf(stderr, "  produced %u records in %" PRIu64 " ms: %" PRIu64 " batches, %" PRIu64
                    " retries, %" PRIu64 " duplicates\n",
            RECORDS, t1 - t0, ps.batches_sent, ps.retries, ps.duplicates);
    if (atomic_load(&delivered_err) != 0) {
        fprintf(stderr, "  %" PRIu64 " deliveries failed, first: %s\n",
                (uint64_t)atomic_load(&delivered_err), sl_errname(atomic_load(&first_err)));
    }
    CHECK_EQ(atomic_load(&delivered_err), 0);
    CHECK_EQ(atomic_load(&delivered_ok), RECORDS);
    CHECK_EQ(ps.records_sent, RECORDS);

    /* The broker's view: every shard holds sequences [0, next_seq), summing to RECORDS. */
    struct sluice_stream_info *info = NULL;
    CHECK_EQ(sluice_stream_describe(c, "pc", &info), SL_OK);
    CHECK_EQ(info->shards_len, SHARDS);
    uint64_t total = 0;
    for (uint32_t s = 0; s < SHARDS; s++) {
        CHECK_EQ(info->shards[s].first_seq, 0);
        total += info->shards[s].next_seq;
    }
    sluice_stream_info_free(info);
    CHECK_EQ(total, RECORDS);

    /* Read everything back. */
    uint8_t *seen = calloc(RECORDS, 1);
    int64_t last_of_key[KEYS];
    uint64_t next_seq[SHARDS] = {0};
    for (uint32_t k = 0; k < KEYS; k++) {
        last_of_key[k] = -1;
    }
    CHECK(seen != NULL);
    sluice_consumer *cons = NULL;
    struct sluice_consumer_opts co = {.start = {.kind = SLUICE_TRIM_HORIZON}};
    CHECK_EQ(sluice_consumer_new(c, "pc", NULL, &co, &cons), SL_OK);
    static struct sluice_record recs[4096];
    uint64_t got = 0;
    uint64_t deadline = it_mono_ms() + 120000;
    while (got < RECORDS && it_mono_ms() < deadline) {
        size_t n = 0;
        int rc = sluice_consumer_poll(cons, recs, 4096, &n, 1000);
        if (rc != SL_OK) {
            fprintf(stderr, "  poll: %s (%s)\n", sl_errname(rc), sluice_last_error());
        }
        CHECK_EQ(rc, SL_OK);
        for (size_t r = 0; r < n; r++) {
            const struct sluice_record *rec = &recs[r];
            unsigned i = 0;
            CHECK(rec->value_len >= 16 && rec->value_len <= VALUE_MAX);
            CHECK(sscanf((const char *)rec->value, "%u:", &i) == 1 && i < RECORDS);
            CHECK(rec->value_len == value_of(i, val) && memcmp(rec->value, val, rec->value_len) == 0);
            uint32_t kl = key_of(i, key);
            CHECK(rec->key_len == kl && memcmp(rec->key, key, kl) == 0);
            CHECK(rec->shard < SHARDS);
            CHECK_EQ(rec->shard, sl_partition_shard(sl_partition_hash(key, kl), SHARDS));
            if (seen[i]) {
                fprintf(stderr, "  record %u returned twice (shard %u seq %" PRIu64 ")\n", i,
                        rec->shard, rec->seq);
            }
            CHECK(!seen[i]);
            seen[i] = 1;
            if (rec->seq != next_seq[rec->shard]) {
                fprintf(stderr, "  shard %u: seq %" PRIu64 " where %" PRIu64 " was next\n",
                        rec->shard, rec->seq, next_seq[rec->shard]);
            }
            CHECK_EQ(rec->seq, next_seq[rec->shard]);
            next_seq[rec->shard]++;
            CHECK_EQ(rec->shard, acked_shard[i]);
            CHECK_EQ(rec->seq, acked_seq[i]);
            CHECK((int64_t)i > last_of_key[i % KEYS]);
            last_of_key[i % KEYS] = i;
            got++;
        }
    }
    fprintf(stderr, "  consumed %" PRIu64 " records in %" PRIu64 " ms\n", got,
            it_mono_ms() - t1);
    CHECK_EQ(got, RECORDS);
    /* Nothing after the end. */
    size_t extra = 0;
    CHECK_EQ(sluice_consumer_poll(cons, recs, 4096, &extra, 300), SL_OK);
    CHECK_EQ(extra, 0);
    CHECK(sluice_consumer_caught_up(cons));
    sluice_consumer_free(cons);
    sluice_client_free(c);
    free(seen);
    free(acked_seq);
    free(acked_shard);
    CHECK_EQ(it_broker_stop(&broker), 0);
    it_broker_cleanup(&broker);
}

int main(void)
{
    int rc = it_preflight();
    if (rc != 0) {
        return rc;
    }
    RUN(produce_consume_4_shards);
    TEST_END();
}
