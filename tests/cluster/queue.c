/* queue.c (test) - queue groups on a replicated stream (#14): one ZooKeeper and three sluiced
 * (--cluster); a stream of SHARDS shards, replication factor 3. A queue group's home is the
 * leader of the group's shard; its changes (creation, delivery counts, acks) are control
 * batches in that shard's log, applied by every replica (docs/REPLICATION.md "Queue groups").
 * The test:
 *   1. writes VALUES unique values (ack durable, through a bootstrap list of the three);
 *   1b. dead letters: a group of another stream that dead-letters into a stream not made
 *      yet is refused, naming it; once that is made (replicated, DLQ_SHARDS shards), every
 *      record nacked until its deliveries ran out is in it once, with its source, on shards
 *      led by the group's home and by others (forwarded to their leaders);
 *   2. group G receives FIRST of them and acks the even ones; the odd ones stay leased;
 *   3. kill -9 of the group's home;
 *   4. through the two others, G receives until every value came: no acked value comes
 *      again, every value still leased when the home died comes again with a delivery count
 *      of at least 2 (at-least-once), every other value once; all are acked;
 *   5. an idle group: receives that find nothing add no batch to the group's shard but the
 *      few acks of the control batches they skipped (without the lazy skip of control.h's
 *      batches, the group's own acks would feed it for ever).
 * First, RACE_ROUNDS times: two clients (as two processes) create the same stream at once
 * through different brokers, and the one that does not make it (EEXIST, or OK) describes it
 * and creates a queue group on it at once: both must succeed (`sluice queue create` right
 * after a `stream create` elsewhere; before libsluice waited on EEXIST, 13 of 30 such
 * rounds failed NOT_FOUND on a broker that had not learnt the stream yet).
 * Skipped (77) without java or the ZooKeeper jar.
 */
#include "cluster_it.h"

#include "common/partition.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SESSION_MS  (2000u * IT_SLOWDOWN)
#define NB          3
#define STREAM      "jobs"
#define GROUP       "workers"
#define SHARDS      4u
#define VALUES      300u
#define FIRST       120u
#define RETRY       "retry"
#define DEAD        "retry.dead"
#define DLQ_SHARDS  3u
#define RACE_ROUNDS 10u
#define DEAD_N      12u

static struct cit cl;
static struct it_broker brokers[NB];
static uint8_t acked[VALUES];    /* acked before the failover */
static uint8_t leased[VALUES];   /* received before the failover, not acked */
static uint8_t received[VALUES]; /* deliveries after the failover */

static uint32_t value_of(const struct sluice_message *m)
{
    char buf[16];
    CHECK(m->value_len > 1 && m->value_len < sizeof(buf) && m->value[0] == 'v');
    memcpy(buf, m->value + 1, m->value_len - 1);
    buf[m->value_len - 1] = '\0';
    uint32_t v = (uint32_t)strtoul(buf, NULL, 10);
    CHECK(v < VALUES);
    return v;
}

static const char *attr_of(const struct sluice_record *r, const char *name)
{
    static char v[64];
    for (uint32_t i = 0; i < r->attr_count; i++) {
        const struct sluice_attr *a = &r->attrs[i];
        if (a->key_len == strlen(name) && memcmp(a->key, name, a->key_len) == 0 &&
            a->value_len < sizeof(v)) {
            memcpy(v, a->value, a->value_len);
            v[a->value_len] = '\0';
            return v;
        }
    }
    return NULL;
}

/* 1b: records nacked past max_deliveries reach a replicated dead-letter stream. */
static void dead_letters(sluice_client *c)
{
    struct sluice_stream_opts so = {.shard_count = 4, .replication_factor = 3};
    CHECK(cit_stream_create(c, RETRY, &so, 10000, NULL) == SLUICE_OK);
    struct sluice_queue_group_opts qo = {
        .max_deliveries = 2, .dead_letter_stream = DEAD, .visibility_timeout_ms = 60000};
    /* (the group's home may not have made RETRY yet: its own NOT_FOUND, or EAGAIN, is asked
     * again; the answer wanted names the dead-letter stream) */
    int rc;
    uint64_t t_made = it_mono_ms();
    while (((rc = sluice_queue_group_create(c, RETRY, "r", &qo)) == SLUICE_EAGAIN ||
            (rc == SLUICE_ENOTFOUND && strstr(sluice_last_error(), DEAD) == NULL)) &&
           it_mono_ms() - t_made < 10000) {
        it_sleep_ms(100);
    }
    printf("dead-letter stream not made yet: %s (%s)\n", sluice_strerror(rc), sluice_last_error());
    CHECK(rc == SLUICE_ENOTFOUND && strstr(sluice_last_error(), DEAD) != NULL);
    struct sluice_stream_opts dso = {.shard_count = DLQ_SHARDS, .replication_factor = 3};
    CHECK(cit_stream_create(c, DEAD, &dso, 10000, NULL) == SLUICE_OK);
    /* (the group's home may not have made yet the stream made through another broker) */
    uint64_t t_create = it_mono_ms();
    for (;;) {
        rc = sluice_queue_group_create(c, RETRY, "r", &qo);
        if ((rc != SLUICE_EAGAIN && rc != SLUICE_ENOTFOUND) || it_mono_ms() - t_create > 10000) {
            break;
        }
        it_sleep_ms(100);
    }
    if (rc != SLUICE_OK) {
        fprintf(stderr, "create: %s (%s)\n", sluice_strerror(rc), sluice_last_error());
    }
    CHECK(rc == SLUICE_OK);

    cit_write_values(c, RETRY, "d", DEAD_N);

    /* every record nacked at each delivery: the third is dead-lettered instead */
    uint32_t nacked = 0, idle = 0;
    uint64_t t0 = it_mono_ms();
    while (idle < 3) {
        CHECK(it_mono_ms() - t0 < 30000);
        struct sluice_message *m = NULL;
        size_t n = 0;
        CHECK(sluice_queue_receive(c, RETRY, "r", 16, 300, 0, &m, &n) == SLUICE_OK);
        idle = n == 0 ? idle + 1 : 0;
        const char *receipts[16];
        for (size_t i = 0; i < n; i++) {
            CHECK(m[i].delivery_count <= 2);
            receipts[i] = m[i].receipt;
        }
        if (n > 0) {
            CHECK(sluice_queue_nack(c, RETRY, "r", receipts, n, 0, NULL) == SLUICE_OK);
        }
        nacked += (uint32_t)n;
        sluice_messages_free(m, n);
    }
    CHECK(nacked == 2 * DEAD_N);

    /* the dead-letter stream holds each once, with its source */
    uint32_t home = sl_partition_group_shard("r", 1, 4);
    int home_broker = cit_leader(c, RETRY, home, NB);
    CHECK(home_broker >= 0);
    uint8_t got[DEAD_N] = {0};
    uint32_t n_got = 0, here = 0, forwarded = 0;
    sluice_consumer *all = NULL;
    struct sluice_consumer_opts aopts = {.start = {.kind = SLUICE_TRIM_HORIZON}};
    CHECK(sluice_consumer_new(c, DEAD, NULL, &aopts, &all) == SLUICE_OK);
    t0 = it_mono_ms();
    while (n_got < DEAD_N && it_mono_ms() - t0 < 20000) {
        struct sluice_record recs[16];
        size_t n = 0;
        rc = sluice_consumer_poll(all, recs, 16, &n, 500);
        CHECK(rc == SLUICE_OK || rc == SLUICE_EAGAIN);
        for (size_t i = 0; i < n; i++) {
            const char *src = attr_of(&recs[i], "sluice.source_stream");
            CHECK(src != NULL && strcmp(src, RETRY) == 0);
            CHECK(recs[i].value_len > 1 && ((const char *)recs[i].value)[0] == 'v');
            uint32_t v = (uint32_t)strtoul((const char *)recs[i].value + 1, NULL, 10);
            CHECK(v < DEAD_N && !got[v]);
            got[v] = 1;
            n_got++;
            if (cit_leader(c, DEAD, recs[i].shard, NB) == home_broker) {
                here++;
            } else {
                forwarded++;
            }
        }
    }
    sluice_consumer_free(all);
    struct sluice_queue_stats qs;
    CHECK(sluice_queue_stats(c, RETRY, "r", &qs) == SLUICE_OK);
    printf("%u records dead-lettered (stats: %" PRIu64 "): %u on shards the group's home "
           "leads, %u forwarded to other leaders\n",
           n_got, qs.dead_lettered, here, forwarded);
    CHECK(n_got == DEAD_N && qs.dead_lettered == DEAD_N);
    sluice_queue_stats_fini(&qs);
}

static void ack_all(sluice_client *c, struct sluice_message *m, size_t n)
{
    const char *receipts[64];
    CHECK(n <= 64);
    for (size_t i = 0; i < n; i++) {
        receipts[i] = m[i].receipt;
    }
    int results[64];
    int rc = sluice_queue_ack(c, STREAM, GROUP, receipts, n, results);
    if (rc != SLUICE_OK) {
        fprintf(stderr, "ack: %s (%s)\n", sluice_strerror(rc), sluice_last_error());
    }
    CHECK(rc == SLUICE_OK);
}

struct race_side {
    char name[32];
    int rc;
};

static void *race_create(void *arg)
{
    struct race_side *a = arg;
    sluice_client *c = NULL;
    a->rc = it_connect(&brokers[0], &c);
    if (a->rc == SL_OK) {
        struct sluice_stream_opts so = {.shard_count = SHARDS, .replication_factor = 3};
        a->rc = sluice_stream_create(c, a->name, &so, NULL);
    }
    sluice_client_free(c);
    return NULL;
}

/* Two creates of one stream at once through brokers 1 and 2 (or 3); the second client uses
 * the stream the moment its create returns. */
static void create_race(void)
{
    for (uint32_t i = 0; i < RACE_ROUNDS; i++) {
        struct race_side a;
        snprintf(a.name, sizeof(a.name), "race-%u", i);
        pthread_t t;
        CHECK(pthread_create(&t, NULL, race_create, &a) == 0);
        sluice_client *c = NULL;
        CHECK(it_connect(&brokers[1 + i % 2], &c) == SL_OK);
        struct sluice_stream_opts so = {.shard_count = SHARDS, .replication_factor = 3};
        int rc = sluice_stream_create(c, a.name, &so, NULL);
        if (rc != SLUICE_OK && rc != SLUICE_EEXIST) {
            fprintf(stderr, "FAIL: create of %s: %s (%s)\n", a.name, sluice_strerror(rc),
                    sluice_last_error());
            exit(1);
        }
        struct sluice_stream_info *si = NULL;
        rc = sluice_stream_describe(c, a.name, &si);
        if (rc != SLUICE_OK) {
            fprintf(stderr, "FAIL: describe of %s right after its create: %s (%s)\n", a.name,
                    sluice_strerror(rc), sluice_last_error());
            exit(1);
        }
        sluice_stream_info_free(si);
        struct sluice_queue_group_opts qo = {0};
        rc = sluice_queue_group_create(c, a.name, GROUP, &qo);
        if (rc != SLUICE_OK) {
            fprintf(stderr, "FAIL: queue group on %s right after its create: %s (%s)\n", a.name,
                    sluice_strerror(rc), sluice_last_error());
            exit(1);
        }
        sluice_client_free(c);
        CHECK(pthread_join(t, NULL) == 0);
        CHECK(a.rc == SLUICE_OK || a.rc == SLUICE_EEXIST);
    }
    printf("%u streams created by two clients at once, each used at once\n", RACE_ROUNDS);
}

int main(void)
{
    int rc = cit_preflight();
    if (rc != 0) {
        return rc;
    }
    CHECK(cit_start(&cl, SESSION_MS) == 0);
    for (int i = 0; i < NB; i++) {
        CHECK(cit_broker_start(&cl, &brokers[i], i + 1) == 0);
    }
    sluice_client *c = cit_connect(brokers, NB);
    CHECK(c != NULL);
    struct sluice_stream_opts so = {.shard_count = SHARDS, .replication_factor = 3};
    CHECK(cit_stream_create(c, STREAM, &so, 10000, NULL) == SLUICE_OK);
    create_race(); /* (every broker registered: the create above waited for it) */

    /* 1. the values, durable on the ISR (retried until the leaders are all elected) */
    cit_write_values(c, STREAM, "k", VALUES);
    printf("%u values written\n", VALUES);

    dead_letters(c);

    /* 2. G takes FIRST values and acks the even ones; the odd ones stay leased */
    struct sluice_queue_group_opts qo = {.visibility_timeout_ms = 600000};
    CHECK(sluice_queue_group_create(c, STREAM, GROUP, &qo) == SLUICE_OK);
    uint32_t got = 0, n_acked = 0;
    uint64_t t0 = it_mono_ms();
    while (got < FIRST) {
        CHECK(it_mono_ms() - t0 < 30000);
        struct sluice_message *m = NULL;
        size_t n = 0;
        uint32_t want = FIRST - got < 16 ? FIRST - got : 16;
        rc = sluice_queue_receive(c, STREAM, GROUP, want, 1000, 0, &m, &n);
        if (rc != SLUICE_OK) {
            fprintf(stderr, "receive: %s (%s)\n", sluice_strerror(rc), sluice_last_error());
        }
        CHECK(rc == SLUICE_OK && n <= want);
        struct sluice_message even[16];
        size_t n_even = 0;
        for (size_t i = 0; i < n; i++) {
            uint32_t v = value_of(&m[i]);
            CHECK(!acked[v] && !leased[v]); /* never delivered twice while leased */
            CHECK(m[i].delivery_count == 1);
            if (v % 2 == 0) {
                acked[v] = 1;
                even[n_even++] = m[i];
                n_acked++;
            } else {
                leased[v] = 1;
            }
        }
        if (n_even > 0) {
            ack_all(c, even, n_even);
        }
        got += (uint32_t)n;
        sluice_messages_free(m, n);
    }
    printf("received %u, acked %u, %u left leased\n", got, n_acked, got - n_acked);

    /* 3. kill -9 the group's home */
    uint32_t home = sl_partition_group_shard(GROUP, strlen(GROUP), SHARDS);
    int killed = cit_leader(c, STREAM, home, NB);
    CHECK(killed >= 0);
    printf("group %s lives in shard %u, led by broker %d: kill -9\n", GROUP, home, killed + 1);
    sluice_client_free(c);
    CHECK(it_broker_kill9(&brokers[killed]) == 0);
    uint64_t t_kill = it_mono_ms();

    /* 4. the new home delivers the rest and the leased ones again, never an acked one */
    c = cit_connect(brokers, NB);
    CHECK(c != NULL);
    uint32_t left = VALUES - n_acked, again = 0, first_at = 0;
    t0 = it_mono_ms();
    while (left > 0) {
        CHECK(it_mono_ms() - t0 < SESSION_MS + 40000);
        struct sluice_message *m = NULL;
        size_t n = 0;
        rc = sluice_queue_receive(c, STREAM, GROUP, 32, 1000, 0, &m, &n);
        if (rc != SLUICE_OK) {
            fprintf(stderr, "receive after the failover: %s (%s)\n", sluice_strerror(rc),
                    sluice_last_error());
        }
        CHECK(rc == SLUICE_OK);
        if (n > 0 && first_at == 0) {
            first_at = (uint32_t)(it_mono_ms() - t_kill);
        }
        for (size_t i = 0; i < n; i++) {
            uint32_t v = value_of(&m[i]);
            if (acked[v] || received[v]) {
                fprintf(stderr,
                        "value %u delivered again (acked %d, shard %u seq %" PRIu64 ", count %u)\n",
                        v, acked[v], m[i].shard, m[i].seq, m[i].delivery_count);
            }
            CHECK(!acked[v] && !received[v]);
            received[v] = 1;
            CHECK(leased[v] ? m[i].delivery_count >= 2 : m[i].delivery_count == 1);
            again += leased[v];
            left--;
        }
        for (size_t i = 0; i < n; i += 32) {
            ack_all(c, m + i, n - i < 32 ? n - i : 32);
        }
        sluice_messages_free(m, n);
    }
    printf("the new home delivered after %u ms: %u leased values again (counts >= 2), %u "
           "never received, no acked one\n",
           first_at, again, VALUES - n_acked - again);
    CHECK(again == got - n_acked);

    /* 5. idle: what the receives skip is acked lazily, not fed back into the shard */
    struct sluice_message *m = NULL;
    size_t n = 0;
    CHECK(sluice_queue_receive(c, STREAM, GROUP, 8, 300, 0, &m, &n) == SLUICE_OK && n == 0);
    uint64_t before = cit_shard_end(c, STREAM, home);
    for (int i = 0; i < 6; i++) {
        CHECK(sluice_queue_receive(c, STREAM, GROUP, 8, 300, 0, &m, &n) == SLUICE_OK && n == 0);
    }
    uint64_t after = cit_shard_end(c, STREAM, home);
    printf("6 empty receives: the group's shard grew by %" PRIu64 "\n", after - before);
    CHECK(after - before <= 1);
    struct sluice_queue_stats qs;
    CHECK(sluice_queue_stats(c, STREAM, GROUP, &qs) == SLUICE_OK);
    printf("stats: inflight %" PRIu64 ", delayed %" PRIu64 "\n", qs.inflight, qs.delayed);
    CHECK(qs.inflight == 0 && qs.delayed == 0);
    sluice_queue_stats_fini(&qs);
    sluice_client_free(c);

    for (int i = 0; i < NB; i++) {
        if (i != killed) {
            CHECK(it_broker_stop(&brokers[i]) == 0);
        }
        it_broker_cleanup(&brokers[i]);
    }
    zkh_cleanup(&cl.zk);
    printf("ok\n");
    return 0;
}
