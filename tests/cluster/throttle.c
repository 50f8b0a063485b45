/* throttle.c (test) - the reassignment throttle with real processes (#14): one ZooKeeper and
 * three sluiced with reassign_throttle_bytes = 256 KiB/s.
 *
 * Covers: a shard of replication factor 2 holding about 1.5 MiB is moved to a set that adds
 * the third broker (`sluice cluster reassign --replicas`, which waits for the move): the copy
 * to the added replica cannot go faster than the throttle, so the move takes at least 60% of
 * the 1.5 MiB / 256 KiB/s (the copy of a log this size is done in well under a second
 * unthrottled on this loopback: the test fails without the throttle), and then the new
 * replica holds the same records as the leader (its Describe, through Metadata's leader).
 * Writes go on during the move, unthrottled: durable produces are acknowledged meanwhile.
 * Skipped (77) without java or the ZooKeeper jar.
 */
#include "zk_cluster.h"

#include "client/sluice.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "FAIL %s:%d: %s (%s)\n", __FILE__, __LINE__, #c,                     \
                    sluice_last_error());                                                          \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

#define SESSION_MS    (2000u * IT_SLOWDOWN)
#define NB            3
#define THROTTLE      (256u * 1024u)
#define RECORD_BYTES  1024u
#define RECORDS       1500u
#define WAIT_MS       (30000u * IT_SLOWDOWN)

static struct zkc zc;
static struct it_broker brokers[NB];
static atomic_uint acked, failed;

static void on_delivery(void *ctx, int err, uint32_t shard, uint64_t seq)
{
    (void)ctx;
    (void)shard;
    (void)seq;
    atomic_fetch_add(err == SL_OK ? &acked : &failed, 1);
}

static void produce(sluice_producer *p, uint32_t from, uint32_t n)
{
    static char value[RECORD_BYTES];
    for (uint32_t i = from; i < from + n; i++) {
        memset(value, 'a' + (int)(i % 26), sizeof(value));
        char key[16];
        int kl = snprintf(key, sizeof(key), "k%u", i);
        CHECK(sluice_produce(p, key, (size_t)kl, value, sizeof(value), NULL, 0, on_delivery,
                             NULL) == SL_OK);
    }
}

/* The replicas of shard 0 of "th" as broker 0 names them (sorted ids), and its leader. */
static uint32_t replicas_of(int32_t *ids, int32_t *leader)
{
    sluice_client *c = NULL;
    CHECK(it_connect(&brokers[0], &c) == SL_OK);
    struct sluice_metadata *m = NULL;
    const char *names[1] = {"th"};
    CHECK(sluice_cluster_metadata(c, names, 1, &m) == SL_OK);
    CHECK(m->n_streams == 1 && m->streams[0].n_shards == 1);
    const struct sluice_shard_route *r = &m->streams[0].shards[0];
    uint32_t n = (uint32_t)r->n_replicas;
    for (uint32_t i = 0; i < n; i++) {
        ids[i] = r->replicas[i];
    }
    *leader = r->leader;
    sluice_metadata_free(m);
    sluice_client_free(c);
    return n;
}

/* Records in shard 0 as broker i's own copy describes it (first..next). */
static uint64_t records_at(int i)
{
    sluice_client *c = NULL;
    CHECK(it_connect(&brokers[i], &c) == SL_OK);
    struct sluice_stream_info *si = NULL;
    uint64_t n = 0;
    if (sluice_stream_describe(c, "th", &si) == SL_OK) {
        n = si->shards[0].next_seq - si->shards[0].first_seq;
        sluice_stream_info_free(si);
    }
    sluice_client_free(c);
    return n;
}

int main(void)
{
    int skip = zkc_available();
    if (skip != 0) {
        return skip;
    }
    char rate[32];
    snprintf(rate, sizeof(rate), "%u", THROTTLE);
    const char *const extra[] = {"--reassign-throttle-bytes", rate, NULL};
    CHECK(zkc_start(&zc, brokers, NB, SESSION_MS, extra) == 0);

    sluice_client *c = NULL;
    CHECK(it_connect(&brokers[0], &c) == SL_OK);
    struct sluice_stream_opts so = {.shard_count = 1, .replication_factor = 2};
    int rc = SL_EAGAIN;
    uint64_t t0 = it_mono_ms();
    while ((rc = sluice_stream_create(c, "th", &so, NULL)) != SL_OK &&
           it_mono_ms() - t0 < WAIT_MS) {
        it_sleep_ms(200); /* (until the three are registered) */
    }
    CHECK(rc == SL_OK);
    sluice_client_free(c);

    char list[256];
    snprintf(list, sizeof(list), "%s,%s,%s", brokers[0].addr, brokers[1].addr, brokers[2].addr);
    CHECK(sluice_client_new(list, NULL, &c) == SL_OK);
    sluice_producer *p = NULL;
    struct sluice_producer_opts po = {.ack = SLUICE_ACK_DURABLE};
    CHECK(sluice_producer_new(c, "th", &po, &p) == SL_OK);
    produce(p, 0, RECORDS);
    CHECK(sluice_producer_flush(p, 60000) == SL_OK);
    CHECK(atomic_load(&acked) == RECORDS && atomic_load(&failed) == 0);

    int32_t ids[8], leader = -1;
    uint32_t n = replicas_of(ids, &leader);
    CHECK(n == 2);
    int32_t added = 6 - ids[0] - ids[1]; /* the third broker of 1, 2, 3 */
    char target[32];
    snprintf(target, sizeof(target), "%d,%d,%d", ids[0], ids[1], added);

    /* the move, waited for by the command; writes go on meanwhile */
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "%s --broker %s cluster reassign th --shard 0 --replicas %s",
             SLUICE_CLI_PATH, brokers[0].addr, target);
    uint64_t start = it_mono_ms();
    FILE *f = popen(cmd, "r");
    CHECK(f != NULL);
    produce(p, RECORDS, 100);
    char out[4096];
    size_t got = fread(out, 1, sizeof(out) - 1, f);
    out[got] = '\0';
    int st = pclose(f);
    uint64_t took = it_mono_ms() - start;
    if (st != 0) {
        fprintf(stderr, "FAIL: %s: exit %d: %s\n", cmd, st, out);
        exit(1);
    }
    CHECK(sluice_producer_flush(p, 60000) == SL_OK);
    CHECK(atomic_load(&acked) == RECORDS + 100 && atomic_load(&failed) == 0);
    sluice_producer_free(p);
    sluice_client_free(c);

    uint64_t bytes = (uint64_t)RECORDS * RECORD_BYTES;
    uint64_t floor_ms = bytes * 1000u / THROTTLE * 6u / 10u;
    printf("  the move onto broker %d took %llu ms (floor %llu ms for ~%llu KiB at %u KiB/s)\n",
           added, (unsigned long long)took, (unsigned long long)floor_ms,
           (unsigned long long)(bytes / 1024u), THROTTLE / 1024u);
    CHECK(took >= floor_ms);
    n = replicas_of(ids, &leader);
    CHECK(n == 3);
    t0 = it_mono_ms();
    uint64_t want = records_at(leader - 1), have = 0;
    while ((have = records_at(added - 1)) < want && it_mono_ms() - t0 < WAIT_MS) {
        it_sleep_ms(50);
    }
    CHECK(want >= RECORDS + 100 && have >= want);
    printf("ok a move's copy held to the throttle (%llu ms for %llu KiB at %u KiB/s); broker "
           "%d holds all %llu records; %u durable writes acknowledged during the move\n",
           (unsigned long long)took, (unsigned long long)(bytes / 1024u), THROTTLE / 1024u,
           added, (unsigned long long)have, 100u);
    CHECK(zkc_stop(&zc, brokers, NB) == 0);
    printf("ok\n");
    return 0;
}
