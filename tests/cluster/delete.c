/* delete.c (test) - Deleting replicated streams in a real cluster: one ZooKeeper
 * (zk_harness.c) and three sluiced (#14).
 *
 * Covers: a stream of 4 shards, replication factor 3, holding 200 durable values, deleted
 * through broker 1 while a producer still writes to it: the delete answers OK, every broker
 * then answers NOT_FOUND for it, ZooKeeper holds neither /streams/<name> nor /shards/<name>,
 * the producer's batches fail (no hang) and no broker crashes. A broker stopped before a
 * delete and a creation of the same name (2 shards, replication factor 2, 10 new values)
 * drops its old copy when it starts again and holds the new stream: it describes 2 shards
 * with at most the 10 new records, and a consumer bootstrapped through it reads the 10 new
 * values and none of the old. A stream of 70 shards (its states removed in a chain of
 * multis) is deleted the same way, and made again at once under its name. Deleting a name
 * the cluster does not hold is NOT_FOUND. A broker restarted by mistake against another
 * chroot (an empty cluster) drops nothing (its data directory keeps its cluster's id), and
 * serves its streams again once back. A creation past the shards a broker can follow (one
 * ZooKeeper watch each) is refused with the reason. Each broker stops cleanly (exit 0, so no
 * sanitizer report). Skipped (77) without java or the ZooKeeper jar.
 */
#include "zk_cluster.h"

#define THREADED
#include <zookeeper/zookeeper.h>

#include "client/sluice.h"
#include "tests/integration/harness.h"

#include <stdatomic.h>
#include <stdbool.h>
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

#define SESSION_MS (2000u * IT_SLOWDOWN)
#define NB         3
#define WAIT_MS    (15000u * IT_SLOWDOWN)

static struct zkc zc;
static struct it_broker brokers[NB];
static zhandle_t *zh;


static sluice_client *client_of(int i)
{
    sluice_client *c = NULL;
    CHECK(it_connect(&brokers[i], &c) == SL_OK);
    return c;
}

/* The stream as broker i describes it: its shard count and records, or -1 (not found). */
static int describe(int i, const char *name, uint64_t *records)
{
    sluice_client *c = client_of(i);
    struct sluice_stream_info *si = NULL;
    int rc = sluice_stream_describe(c, name, &si);
    int shards = -1;
    if (rc == SL_OK) {
        shards = (int)si->shard_count;
        *records = 0;
        for (uint32_t k = 0; k < si->shards_len; k++) {
            *records += si->shards[k].next_seq - si->shards[k].first_seq;
        }
        sluice_stream_info_free(si);
    } else if (rc == SL_EAGAIN) {
        shards = -2; /* (being made on that broker: not yet) */
    } else {
        CHECK(rc == SL_ENOTFOUND);
    }
    sluice_client_free(c);
    return shards;
}

/* Waits until broker i describes `name` with `shards` shards (-1: not found). */
static void wait_described(int i, const char *name, int shards)
{
    uint64_t t0 = it_mono_ms(), records = 0;
    int got = -2;
    while ((got = describe(i, name, &records)) != shards && it_mono_ms() - t0 < WAIT_MS) {
        it_sleep_ms(50);
    }
    if (got != shards) {
        fprintf(stderr, "FAIL: broker %d describes %s with %d shards, not %d\n", i + 1, name, got,
                shards);
        exit(1);
    }
}

static void create(int i, const char *name, uint32_t shards, uint32_t rf)
{
    sluice_client *c = client_of(i);
    struct sluice_stream_opts so = {.shard_count = shards, .replication_factor = rf};
    int rc = SL_EAGAIN;
    uint64_t t0 = it_mono_ms();
    while ((rc = sluice_stream_create(c, name, &so, NULL)) != SL_OK && rc != SL_EEXIST &&
           it_mono_ms() - t0 < WAIT_MS) {
        it_sleep_ms(200); /* (until the brokers are registered, a create may be refused) */
    }
    if (rc != SL_OK) {
        fprintf(stderr, "FAIL: create %s through broker %d: %s (%s)\n", name, i + 1,
                sl_errname(rc), sluice_last_error());
        exit(1);
    }
    sluice_client_free(c);
}

static void delete(int i, const char *name)
{
    sluice_client *c = client_of(i);
    int rc = sluice_stream_delete(c, name);
    if (rc != SL_OK) {
        fprintf(stderr, "FAIL: delete %s through broker %d: %s (%s)\n", name, i + 1,
                sl_errname(rc), sluice_last_error());
        exit(1);
    }
    sluice_client_free(c);
}

static void check_zk_gone(const char *name)
{
    char path[160];
    snprintf(path, sizeof(path), "/sluice-it/streams/%s", name);
    CHECK(zoo_exists(zh, path, 0, NULL) == ZNONODE);
    snprintf(path, sizeof(path), "/sluice-it/shards/%s", name);
    CHECK(zoo_exists(zh, path, 0, NULL) == ZNONODE);
}

static atomic_uint acked, failed;

static void on_delivery(void *ctx, int err, uint32_t shard, uint64_t seq)
{
    (void)ctx;
    (void)shard;
    (void)seq;
    atomic_fetch_add(err == SL_OK ? &acked : &failed, 1);
}

/* n durable values "<prefix>-<i>" through the leaders, bootstrapped at broker i. */
static void produce(int i, const char *name, const char *prefix, uint32_t n)
{
    char list[256];
    snprintf(list, sizeof(list), "%s", brokers[i].addr);
    sluice_client *c = NULL;
    CHECK(sluice_client_new(list, NULL, &c) == SL_OK);
    sluice_producer *p = NULL;
    struct sluice_producer_opts po = {.ack = SLUICE_ACK_DURABLE};
    CHECK(sluice_producer_new(c, name, &po, &p) == SL_OK);
    atomic_store(&acked, 0);
    atomic_store(&failed, 0);
    for (uint32_t k = 0; k < n; k++) {
        char v[32];
        int len = snprintf(v, sizeof(v), "%s-%u", prefix, k);
        CHECK(sluice_produce(p, v, (size_t)len, v, (size_t)len, NULL, 0, on_delivery, NULL) ==
              SL_OK);
    }
    CHECK(sluice_producer_flush(p, 60000) == SL_OK);
    CHECK(atomic_load(&acked) == n && atomic_load(&failed) == 0);
    sluice_producer_free(p);
    sluice_client_free(c);
}

/* Reads the stream through broker i's bootstrap: every value has `prefix`, n of them. */
static void read_back(int i, const char *name, const char *prefix, uint32_t n)
{
    sluice_client *c = NULL;
    CHECK(sluice_client_new(brokers[i].addr, NULL, &c) == SL_OK);
    sluice_consumer *cons = NULL;
    CHECK(sluice_consumer_new(c, name, NULL, NULL, &cons) == SL_OK);
    uint32_t got = 0;
    uint64_t t0 = it_mono_ms();
    while (got < n && it_mono_ms() - t0 < WAIT_MS) {
        struct sluice_record recs[64];
        size_t nr = 0;
        int rc = sluice_consumer_poll(cons, recs, 64, &nr, 200);
        CHECK(rc == SL_OK);
        for (size_t j = 0; j < nr; j++) {
            CHECK(recs[j].value_len > strlen(prefix) &&
                  memcmp(recs[j].value, prefix, strlen(prefix)) == 0);
            got++;
        }
    }
    CHECK(got == n);
    sluice_consumer_free(cons);
    sluice_client_free(c);
}

/* Deleted while a producer writes to it (ack none: batches keep flowing): the delete
 * answers, the producer's later batches fail rather than hang. */
static void delete_while_written(void)
{
    create(0, "dw", 4, NB);
    for (int i = 0; i < NB; i++) {
        wait_described(i, "dw", 4);
    }
    produce(1, "dw", "old", 200);
    sluice_client *c = NULL;
    CHECK(sluice_client_new(brokers[1].addr, NULL, &c) == SL_OK);
    sluice_producer *p = NULL;
    struct sluice_producer_opts po = {
        .ack = SLUICE_ACK_WRITTEN, .retries = 2, .retry_backoff_ms = 50};
    CHECK(sluice_producer_new(c, "dw", &po, &p) == SL_OK);
    atomic_store(&acked, 0);
    atomic_store(&failed, 0);
    uint32_t sent = 0;
    for (; sent < 2000; sent++) {
        char v[32];
        int len = snprintf(v, sizeof(v), "busy-%u", sent);
        CHECK(sluice_produce(p, v, (size_t)len, v, (size_t)len, NULL, 0, on_delivery, NULL) ==
              SL_OK);
        if (sent == 1000) {
            delete(0, "dw");
        }
    }
    (void)sluice_producer_flush(p, 30000); /* (fails: the stream went) */
    CHECK(atomic_load(&acked) + atomic_load(&failed) == sent);
    CHECK(atomic_load(&failed) > 0);
    sluice_producer_free(p);
    sluice_client_free(c);
    for (int i = 0; i < NB; i++) {
        wait_described(i, "dw", -1);
    }
    check_zk_gone("dw");
    printf("ok a stream of 4 shards deleted while written: gone from every broker and from "
           "ZooKeeper; of the producer's 2,000 values %u were acknowledged, %u failed (none hung)\n",
           atomic_load(&acked), atomic_load(&failed));
}

/* Broker 3 is away while "dr" is deleted and made again: it drops its old copy. */
static void deleted_and_made_again_while_away(void)
{
    create(0, "dr", 4, NB);
    for (int i = 0; i < NB; i++) {
        wait_described(i, "dr", 4);
    }
    produce(0, "dr", "old", 200);
    uint64_t records = 0;
    uint64_t t0 = it_mono_ms();
    while ((describe(2, "dr", &records) != 4 || records < 200) && it_mono_ms() - t0 < WAIT_MS) {
        it_sleep_ms(50);
    }
    CHECK(records == 200); /* (broker 3's copy holds every old value) */
    CHECK(it_broker_stop(&brokers[2]) == 0);
    delete(0, "dr");
    check_zk_gone("dr");
    wait_described(1, "dr", -1);
    create(1, "dr", 2, 2);
    produce(1, "dr", "new", 10);
    CHECK(it_broker_restart(&brokers[2]) == 0);
    wait_described(2, "dr", 2);
    CHECK(describe(2, "dr", &records) == 2 && records <= 10);
    read_back(2, "dr", "new", 10);
    printf("ok a broker away while its stream was deleted and made again dropped its old copy "
           "(200 values, 4 shards) and holds the new stream (2 shards, %llu records here)\n",
           (unsigned long long)records);
}

/* 70 shards: the states go in a chain of multis; the name is made again at once. */
static void delete_many_shards(void)
{
    create(2, "dm", 70, 2);
    for (int i = 0; i < NB; i++) {
        wait_described(i, "dm", 70);
    }
    delete(1, "dm");
    check_zk_gone("dm");
    for (int i = 0; i < NB; i++) {
        wait_described(i, "dm", -1);
    }
    create(0, "dm", 3, NB);
    for (int i = 0; i < NB; i++) {
        wait_described(i, "dm", 3);
    }
    produce(2, "dm", "again", 30);
    read_back(0, "dm", "again", 30);
    printf("ok a stream of 70 shards deleted (its states in chained multis) and made again "
           "under its name at once: 30 values written and read back\n");
}

/* Broker 3 started by mistake against another chroot (an empty cluster): its data belongs
 * to this cluster (cluster.id), so it drops nothing; back on the right one it serves. */
static void another_cluster_by_mistake(void)
{
    create(0, "keep", 2, NB);
    for (int i = 0; i < NB; i++) {
        wait_described(i, "keep", 2);
    }
    produce(0, "keep", "kept", 20);
    struct it_broker *b = &brokers[2];
    CHECK(it_broker_stop(b) == 0);
    CHECK(b->n_extra >= 2 && strcmp(b->extra[0], "--cluster") == 0);
    char right[256];
    snprintf(right, sizeof(right), "%s", b->extra[1]);
    snprintf(b->extra[1], sizeof(b->extra[1]), "zk://%s/sluice-other", zc.zk.connect);
    CHECK(it_broker_restart(b) == 0);
    uint64_t t0 = it_mono_ms();
    while (zoo_exists(zh, "/sluice-other/cluster_id", 0, NULL) != ZOK &&
           it_mono_ms() - t0 < WAIT_MS) {
        it_sleep_ms(50);
    }
    CHECK(zoo_exists(zh, "/sluice-other/cluster_id", 0, NULL) == ZOK);
    it_sleep_ms(1000); /* (time to list /streams there, were it allowed to) */
    uint64_t records = 0;
    CHECK(describe(2, "keep", &records) == 2); /* kept: not "deleted while away" */
    CHECK(it_broker_stop(b) == 0);
    snprintf(b->extra[1], sizeof(b->extra[1]), "%s", right);
    CHECK(it_broker_restart(b) == 0);
    read_back(2, "keep", "kept", 20);
    printf("ok a broker started against another chroot by mistake dropped nothing (its data "
           "is another cluster's) and serves its streams again on the right one\n");
}

int main(void)
{
    int skip = zkc_available();
    if (skip != 0) {
        return skip;
    }
    CHECK(zkc_start(&zc, brokers, NB, SESSION_MS, NULL) == 0);
    zoo_set_debug_level(ZOO_LOG_LEVEL_ERROR);
    zh = zookeeper_init(zc.zk.connect, NULL, 10000, NULL, NULL, 0);
    CHECK(zh != NULL);
    uint64_t t0 = it_mono_ms();
    while (zoo_state(zh) != ZOO_CONNECTED_STATE) {
        CHECK(it_mono_ms() - t0 < WAIT_MS);
        it_sleep_ms(20);
    }

    delete_while_written();
    deleted_and_made_again_while_away();
    delete_many_shards();
    another_cluster_by_mistake();

    sluice_client *c = client_of(0);
    CHECK(sluice_stream_delete(c, "never-made") == SL_ENOTFOUND);
    printf("ok deleting a name the cluster does not hold: NOT_FOUND\n");
    /* past what a broker can watch: refused at once, saying why */
    struct sluice_stream_opts big = {.shard_count = 4000, .replication_factor = NB};
    CHECK(sluice_stream_create(c, "too-many", &big, NULL) == SL_ELIMIT);
    CHECK(strstr(sluice_last_error(), "ZooKeeper watch") != NULL);
    sluice_client_free(c);
    printf("ok a stream past the shards a broker can follow: refused (%s)\n",
           sluice_last_error());

    zookeeper_close(zh);
    CHECK(zkc_stop(&zc, brokers, NB) == 0);
    printf("ok\n");
    return 0;
}
