/* disk_fault.c (test) - a broker's disk fails under a replicated stream (#14): one ZooKeeper
 * and three sluiced; broker 1 runs with SLUICE_TEST_FAULT_FSYNC_AFTER (broker/main.c: every
 * fdatasync of every loop fails with EIO from the Nth on - a disk dying under a running
 * broker, whose process and ZooKeeper session live on). A stream of three shards,
 * replication factor 3 (each broker leads one). Writers produce unique values with
 * ack=durable through a bootstrap list of the three, round after round, before and after
 * the fault. Broker 1's replicas stop for good (FATAL); the one it led must not stay
 * without a leader until the broker restarts: the replica leaves the leadership and the ISR
 * in ZooKeeper and asks the controller (/notify) to elect another. Checked: every round
 * after the fault is acknowledged in full within the session timeout + a margin; Metadata
 * names no shard led by broker 1; read from the leaders, every acknowledged value is there
 * exactly once, none twice, positions increasing. Skipped (77) without java or the ZooKeeper
 * jar.
 */
#include "cluster_it.h"
#include "repl_check.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SESSION_MS  (2000u * IT_SLOWDOWN)
#define NB          3
#define STREAM      "disk"
#define SHARDS      3u
#define ROUND       150u
#define ROUNDS_MAX  60u
#define FSYNC_AFTER "25" /* broker 1's fdatasyncs (per loop) before its disk "dies" */

static struct cit cl;
static struct it_broker brokers[NB];
static uint8_t outcome[ROUND * ROUNDS_MAX];
static uint32_t next_value;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static sluice_client *connect_all(void)
{
    sluice_client *c = cit_connect(brokers, NB);
    CHECK(c != NULL);
    return c;
}

/* One round of ROUND values (keys spread over the shards); returns how many were
 * acknowledged. */
static uint32_t write_round(void)
{
    sluice_client *c = connect_all();
    struct sluice_producer_opts po = {.ack = SLUICE_ACK_DURABLE, .retries = 2,
                                      .retry_backoff_ms = 100, .linger_ms = 2};
    sluice_producer *p = NULL;
    uint32_t ok = 0, first = next_value;
    if (sluice_producer_new(c, STREAM, &po, &p) == SLUICE_OK) {
        CHECK(next_value + ROUND <= ROUND * ROUNDS_MAX);
        for (uint32_t k = 0; k < ROUND; k++) {
            char key[16], val[16];
            int kn = snprintf(key, sizeof(key), "k%u", next_value);
            size_t n = rc_value_format(val, next_value);
            outcome[next_value] = RC_UNKNOWN;
            if (sluice_produce(p, key, (size_t)kn, val, n, NULL, 0, rc_on_delivery,
                               (void *)(uintptr_t)next_value) != SLUICE_OK) {
                outcome[next_value] = RC_FAILED;
            }
            next_value++;
        }
        (void)sluice_producer_flush(p, 8000);
        sluice_producer_free(p);
        pthread_mutex_lock(&mu);
        for (uint32_t v = first; v < next_value; v++) {
            ok += outcome[v] == RC_OK;
        }
        pthread_mutex_unlock(&mu);
    }
    sluice_client_free(c);
    return ok;
}

/* The leader of each shard as Metadata says (node ids, -1 none); false if not answered. */
static bool leaders(int32_t out[SHARDS])
{
    sluice_client *c = connect_all();
    const char *names[1] = {STREAM};
    struct sluice_metadata *md = NULL;
    bool got = false;
    if (sluice_cluster_metadata(c, names, 1, &md) == SLUICE_OK && md->n_streams == 1 &&
        md->streams[0].n_shards == SHARDS) {
        for (uint32_t k = 0; k < SHARDS; k++) {
            out[k] = md->streams[0].shards[k].leader;
        }
        got = true;
    }
    sluice_metadata_free(md);
    sluice_client_free(c);
    return got;
}

int main(void)
{
    rc_set_outcomes(outcome, &mu);
    int rc = cit_preflight();
    if (rc != 0) {
        return rc;
    }
    CHECK(cit_start(&cl, SESSION_MS) == 0);
    CHECK(setenv("SLUICE_TEST_FAULT_FSYNC_AFTER", FSYNC_AFTER, 1) == 0);
    CHECK(cit_broker_start(&cl, &brokers[0], 1) == 0);
    CHECK(unsetenv("SLUICE_TEST_FAULT_FSYNC_AFTER") == 0);
    for (int i = 1; i < NB; i++) {
        CHECK(cit_broker_start(&cl, &brokers[i], i + 1) == 0);
    }
    sluice_client *c = connect_all();
    struct sluice_stream_opts so = {.shard_count = SHARDS, .replication_factor = 3};
    CHECK(cit_stream_create(c, STREAM, &so, 10000, NULL) == SLUICE_OK);
    sluice_client_free(c);

    /* rounds until broker 1 leads nothing (its disk failed and it left); then each round
     * must be acknowledged in full again within the session timeout + a margin */
    int32_t led[SHARDS];
    uint64_t t_gone = 0;
    uint32_t rounds = 0, full_after = 0;
    while (rounds < ROUNDS_MAX && full_after < 3) {
        uint32_t ok = write_round();
        rounds++;
        bool got = leaders(led);
        bool b1_leads = !got;
        for (uint32_t k = 0; got && k < SHARDS; k++) {
            b1_leads = b1_leads || led[k] == 1 || led[k] < 0;
        }
        if (t_gone == 0 && !b1_leads && rounds > 1) {
            t_gone = it_mono_ms();
            printf("round %u: broker 1 leads no shard any more (leaders %d %d %d)\n", rounds,
                   led[0], led[1], led[2]);
        }
        if (t_gone != 0) {
            full_after += ok == ROUND;
            CHECK(it_mono_ms() - t_gone < SESSION_MS + 20000u * IT_SLOWDOWN);
        }
        printf("round %u: %u of %u acknowledged\n", rounds, ok, ROUND);
    }
    CHECK(t_gone != 0);
    CHECK(full_after == 3);

    /* the values: read from the leaders (broker 1's copies are not, its disk "failed") */
    struct rc_shard_end ends[SHARDS];
    for (uint32_t k = 0; k < SHARDS; k++) {
        int32_t l = led[k];
        CHECK(l >= 2 && l <= NB);
        uint32_t n = 0;
        char why[256];
        struct rc_shard_end e[SHARDS];
        CHECK(rc_shard_ends(brokers[l - 1].addr, STREAM, e, SHARDS, &n, why, sizeof(why)) == 0);
        CHECK(n == SHARDS);
        ends[k] = e[k];
    }
    c = connect_all();
    struct rc_result res;
    char why[256];
    if (rc_read_check(c, STREAM, ends, SHARDS, outcome, next_value, 30000, &res, why,
                      sizeof(why)) != 0) {
        fprintf(stderr, "FAIL: %s\n", why);
        exit(1);
    }
    sluice_client_free(c);
    printf("values: %u written, %u acknowledged (%u missing), %u unknown (%u stored)\n",
           res.values, res.ok, res.lost, res.unknown, res.unknown_stored);
    CHECK(res.lost == 0);
    for (int i = 0; i < NB; i++) {
        (void)it_broker_stop(&brokers[i]);
        it_broker_cleanup(&brokers[i]);
    }
    zkh_cleanup(&cl.zk);
    printf("ok\n");
    return 0;
}
