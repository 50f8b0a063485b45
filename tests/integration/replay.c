/* replay.c - a consumer's start positions over the real broker.
 *
 * Covers: on a 2-shard stream with two produce waves separated in time, a consumer started
 * at TRIM_HORIZON returns both waves; AT_TIMESTAMP (a broker time between the waves)
 * returns exactly the second wave; AFTER_SEQUENCE n (per shard, by seek) returns exactly
 * the records above n; AT_SEQUENCE n includes n; LATEST returns none of the existing records
 * and then exactly a third wave produced after it started reading.
 */
#include "../unit/test.h"
#include "harness.h"

#include "common/error.h"

#include <inttypes.h>
#include <stdatomic.h>

#define SHARDS 2u
#define WAVE 500u
#define TOTAL (3u * WAVE)

static struct it_broker broker;
static sluice_client *client;
static uint64_t rec_seq[TOTAL];
static uint32_t rec_shard[TOTAL];
static atomic_uint delivered_err;

static void on_delivery(void *ctx, int err, uint32_t shard, uint64_t seq)
{
    uint32_t i = (uint32_t)(uintptr_t)ctx;
    if (err != SL_OK) {
        atomic_fetch_add(&delivered_err, 1);
        return;
    }
    rec_seq[i] = seq;
    rec_shard[i] = shard;
}

/* Produces records [from, from + WAVE) and waits for their acknowledgements. */
static int produce_wave(uint32_t from)
{
    sluice_producer *p = NULL;
    struct sluice_producer_opts po = {.linger_ms = 1, .block_when_full = 1};
    if (sluice_producer_new(client, "replay", &po, &p) != SL_OK) {
        return -1;
    }
    char key[16], val[32];
    for (uint32_t i = from; i < from + WAVE; i++) {
        int kl = snprintf(key, sizeof(key), "k%u", i % 37);
        int vl = snprintf(val, sizeof(val), "r%u", i);
        if (sluice_produce(p, key, (size_t)kl, val, (size_t)vl, NULL, 0, on_delivery,
                           (void *)(uintptr_t)i) != SL_OK) {
            sluice_producer_free(p);
            return -1;
        }
    }
    int rc = sluice_producer_flush(p, 30000);
    sluice_producer_free(p);
    return rc == SL_OK && atomic_load(&delivered_err) == 0 ? 0 : -1;
}

/* Reads with `c` until `expect` records came or 3 s pass; marks each record's number in
 * `got` (counts). Returns the number of records read, -1 on a poll error or a record that
 * is not ours. Checks every record's (shard, seq) against its delivery report. */
static int64_t read_all(sluice_consumer *c, uint8_t *got, uint32_t expect, uint64_t *min_time)
{
    static struct sluice_record recs[1024];
    int64_t n_total = 0;
    uint64_t deadline = it_mono_ms() + 3000;
    *min_time = UINT64_MAX;
    while (it_mono_ms() < deadline) {
        size_t n = 0;
        int rc = sluice_consumer_poll(c, recs, 1024, &n, n_total >= expect ? 200 : 500);
        if (rc != SL_OK) {
            fprintf(stderr, "  poll: %s (%s)\n", sl_errname(rc), sluice_last_error());
            return -1;
        }
        for (size_t r = 0; r < n; r++) {
            unsigned i;
            char buf[32];
            uint32_t len = recs[r].value_len < 31 ? recs[r].value_len : 31;
            memcpy(buf, recs[r].value, len);
            buf[len] = '\0';
            if (sscanf(buf, "r%u", &i) != 1 || i >= TOTAL || rec_shard[i] != recs[r].shard ||
                rec_seq[i] != recs[r].seq) {
                fprintf(stderr, "  unexpected record '%s' at %u/%" PRIu64 "\n", buf,
                        recs[r].shard, recs[r].seq);
                return -1;
            }
            got[i]++;
            *min_time = recs[r].timestamp_ms < *min_time ? recs[r].timestamp_ms : *min_time;
        }
        n_total += (int64_t)n;
        if (n == 0 && n_total >= expect) {
            break; /* one empty poll after the expected count: nothing extra came */
        }
    }
    return n_total;
}

/* Checks got[i] == 1 exactly for records where want(i), 0 elsewhere. */
static int check_exact(const uint8_t *got, uint32_t upto, int (*want)(uint32_t), const char *what)
{
    int bad = 0;
    for (uint32_t i = 0; i < upto; i++) {
        int w = want(i);
        if (got[i] != w) {
            if (bad++ < 5) {
                fprintf(stderr, "  %s: record %u (shard %u seq %" PRIu64 ") read %u times, "
                                "expected %d\n",
                        what, i, rec_shard[i], rec_seq[i], got[i], w);
            }
        }
    }
    if (bad > 0) {
        fprintf(stderr, "  %s: %d records wrong\n", what, bad);
    }
    return bad == 0;
}

static int want_all(uint32_t i)
{
    (void)i;
    return 1;
}
static int want_wave2(uint32_t i)
{
    return i >= WAVE && i < 2 * WAVE;
}
static int want_wave3(uint32_t i)
{
    return i >= 2 * WAVE;
}
static uint64_t after_seq[SHARDS];
static int want_after(uint32_t i)
{
    return i < 2 * WAVE && rec_seq[i] > after_seq[rec_shard[i]];
}
static int want_at(uint32_t i)
{
    return i < 2 * WAVE && rec_seq[i] >= after_seq[rec_shard[i]];
}

static sluice_consumer *consumer_at(struct sluice_position pos)
{
    sluice_consumer *c = NULL;
    struct sluice_consumer_opts co = {.start = pos};
    int rc = sluice_consumer_new(client, "replay", NULL, &co, &c);
    if (rc != SL_OK) {
        fprintf(stderr, "  consumer: %s (%s)\n", sl_errname(rc), sluice_last_error());
    }
    return c;
}

TEST(replay)
{
    CHECK_EQ(it_broker_start(&broker, "always"), 0);
    CHECK_EQ(it_connect(&broker, &client), SL_OK);
    CHECK_EQ(it_create_stream(client, "replay", SHARDS), SL_OK);
    CHECK_EQ(produce_wave(0), 0);
    it_sleep_ms(50);
    uint64_t between = it_wall_ms();
    it_sleep_ms(50);
    CHECK_EQ(produce_wave(WAVE), 0);
    static uint8_t got[TOTAL];
    uint64_t tmin;

    /* TRIM_HORIZON: both waves, once each. */
    sluice_consumer *c = consumer_at((struct sluice_position){.kind = SLUICE_TRIM_HORIZON});
    CHECK(c != NULL);
    memset(got, 0, sizeof(got));
    CHECK_EQ(read_all(c, got, 2 * WAVE, &tmin), 2 * WAVE);
    CHECK(check_exact(got, 2 * WAVE, want_all, "TRIM_HORIZON"));
    sluice_consumer_free(c);

    /* AT_TIMESTAMP between the waves: exactly the second wave. */
    c = consumer_at((struct sluice_position){.kind = SLUICE_AT_TIMESTAMP, .time_ms = between});
    CHECK(c != NULL);
    memset(got, 0, sizeof(got));
    int64_t n = read_all(c, got, WAVE, &tmin);
    CHECK(check_exact(got, 2 * WAVE, want_wave2, "AT_TIMESTAMP"));
    CHECK_EQ(n, WAVE);
    CHECK(tmin >= between);
    sluice_consumer_free(c);

    /* AT_TIMESTAMP after everything: nothing. */
    c = consumer_at((struct sluice_position){.kind = SLUICE_AT_TIMESTAMP,
                                             .time_ms = it_wall_ms() + 60000});
    CHECK(c != NULL);
    memset(got, 0, sizeof(got));
    CHECK_EQ(read_all(c, got, 0, &tmin), 0);
    sluice_consumer_free(c);

    /* AFTER_SEQUENCE, per shard (seek): a point inside wave 1 on each shard. */
    struct sluice_stream_info *info = NULL;
    CHECK_EQ(sluice_stream_describe(client, "replay", &info), SL_OK);
    CHECK_EQ(info->shards_len, SHARDS);
    for (uint32_t s = 0; s < SHARDS; s++) {
        CHECK(info->shards[s].next_seq > 20);
        after_seq[s] = info->shards[s].next_seq / 3 + s; /* different points per shard */
    }
    uint64_t tail_total = info->shards[0].next_seq + info->shards[1].next_seq;
    sluice_stream_info_free(info);
    CHECK_EQ(tail_total, 2 * WAVE);
    c = consumer_at((struct sluice_position){.kind = SLUICE_TRIM_HORIZON});
    CHECK(c != NULL);
    for (uint32_t s = 0; s < SHARDS; s++) {
        struct sluice_position pos = {.kind = SLUICE_AFTER_SEQUENCE, .seq = after_seq[s]};
        CHECK_EQ(sluice_consumer_seek(c, s, &pos), SL_OK);
    }
    memset(got, 0, sizeof(got));
    uint32_t expect = 0;
    for (uint32_t i = 0; i < 2 * WAVE; i++) {
        expect += (uint32_t)want_after(i);
    }
    CHECK_EQ(read_all(c, got, expect, &tmin), expect);
    CHECK(check_exact(got, 2 * WAVE, want_after, "AFTER_SEQUENCE"));
    /* ... and AT_SEQUENCE on the same consumer: includes the record itself. */
    for (uint32_t s = 0; s < SHARDS; s++) {
        struct sluice_position pos = {.kind = SLUICE_AT_SEQUENCE, .seq = after_seq[s]};
        CHECK_EQ(sluice_consumer_seek(c, s, &pos), SL_OK);
    }
    memset(got, 0, sizeof(got));
    CHECK_EQ(read_all(c, got, expect + SHARDS, &tmin), expect + SHARDS);
    CHECK(check_exact(got, 2 * WAVE, want_at, "AT_SEQUENCE"));
    sluice_consumer_free(c);

    /* LATEST: nothing that exists; then exactly the third wave. The first poll starts the
     * shards' long-polls at the tail. */
    c = consumer_at((struct sluice_position){.kind = SLUICE_LATEST});
    CHECK(c != NULL);
    memset(got, 0, sizeof(got));
    CHECK_EQ(read_all(c, got, 0, &tmin), 0);
    CHECK_EQ(produce_wave(2 * WAVE), 0);
    CHECK_EQ(read_all(c, got, WAVE, &tmin), WAVE);
    CHECK(check_exact(got, TOTAL, want_wave3, "LATEST"));
    sluice_consumer_free(c);

    sluice_client_free(client);
    client = NULL;
    CHECK_EQ(it_broker_stop(&broker), 0);
    it_broker_cleanup(&broker);
}

int main(void)
{
    int rc = it_preflight();
    if (rc != 0) {
        return rc;
    }
    RUN(replay);
    TEST_END();
}
