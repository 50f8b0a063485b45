/* metadata.c (test) - Metadata and libsluice's routing in a real cluster: one ZooKeeper
 * (zk_harness.c) and three sluiced joining it, a stream of 4 shards with replication
 * factor 3 (#14).
 *
 * Covers: every broker answers Metadata with cluster = true, its own node id and the same
 * live brokers (node ids 1..3 at the addresses they advertise, exactly one `self`: itself);
 * once the controller placed the shards, every broker names the same leader and leader
 * epoch for each shard, its replicas are the three brokers, the leader is in the ISR and
 * the ISR within the replicas; `sluice cluster status --stream` lists them. A client given
 * a bootstrap list whose first address is dead connects to the next; its producer sends
 * each shard's batches to that shard's leader (a broker that does not lead a shard refuses
 * its batches, so they are acknowledged only when routed), a consumer reads every record
 * back. Then the leader of shard 0 is killed (kill -9) while the producer writes: the
 * client learns the new leader and every record produced is acknowledged and read back
 * once. Then an abandoned creation (ZooKeeper holds /shards/<name> with 70 states and no
 * /streams/<name>, no token: its broker's session ended mid-chain): creating the name
 * removes the leftovers and makes the stream, which takes a value durably; with a token of
 * a creation still running, the create is refused EEXIST saying so. (The nodes are written
 * with ZooKeeper's own C client.) Skipped (77) without java or the ZooKeeper jar.
 */
#include "zk_cluster.h"

#define THREADED
#include <zookeeper/zookeeper.h>

#include "client/sluice.h"
#include "tests/integration/harness.h"

#include <netinet/in.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #c);                           \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

#define SESSION_MS (2000u * IT_SLOWDOWN)
#define NB         3
#define SHARDS     4u
#define RECORDS    3000u

static struct zkc zc;
static struct it_broker brokers[NB];


/* Broker b's Metadata for `stream` (NULL: brokers only), or NULL. */
static struct sluice_metadata *metadata_of(const struct it_broker *b, const char *stream)
{
    sluice_client *c = NULL;
    if (it_connect(b, &c) != SL_OK) {
        return NULL;
    }
    struct sluice_metadata *m = NULL;
    const char *names[1] = {stream};
    int rc = sluice_cluster_metadata(c, names, stream != NULL ? 1 : 0, &m);
    if (rc != SL_OK) {
        fprintf(stderr, "  metadata from %s: %s (%s)\n", b->addr, sl_errname(rc),
                sluice_last_error());
    }
    sluice_client_free(c);
    return m;
}

/* Whether every broker lists the three. */
static bool all_see_three(void)
{
    for (int i = 0; i < NB; i++) {
        struct sluice_metadata *m = metadata_of(&brokers[i], NULL);
        bool ok = m != NULL && m->n_brokers == NB;
        sluice_metadata_free(m);
        if (!ok) {
            return false;
        }
    }
    return true;
}

static bool in_ids(int32_t id, const int32_t *ids, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        if (ids[i] == id) {
            return true;
        }
    }
    return false;
}

/* One broker's answer: the brokers as the others answer them, its shards consistent. */
static void check_answer(int i, const struct sluice_metadata *m)
{
    CHECK(m->cluster);
    CHECK(m->node_id == (uint32_t)i + 1);
    CHECK(m->n_brokers == NB);
    int selves = 0;
    for (size_t k = 0; k < m->n_brokers; k++) {
        const struct sluice_broker_info *b = &m->brokers[k];
        CHECK(b->node_id == (uint32_t)k + 1); /* sorted by node id */
        CHECK(strcmp(b->address, brokers[k].addr) == 0);
        selves += b->self;
        CHECK(b->self == (b->node_id == m->node_id));
    }
    CHECK(selves == 1);
    CHECK(m->n_streams == 1 && strcmp(m->streams[0].name, "cm") == 0);
    CHECK(m->streams[0].n_shards == SHARDS);
    for (uint32_t s = 0; s < SHARDS; s++) {
        const struct sluice_shard_route *r = &m->streams[0].shards[s];
        CHECK(r->shard == s && r->open);
        CHECK(r->leader >= 1 && r->leader <= NB);
        CHECK(in_ids(r->leader, r->isr, r->n_isr));
        for (uint32_t k = 0; k < r->n_isr; k++) {
            CHECK(in_ids(r->isr[k], r->replicas, r->n_replicas));
        }
        CHECK(r->n_replicas == NB);
    }
}

/* Whether every broker names the same leader and epoch for every shard (placed: >= 1). */
static bool leaders_agree(int32_t leader[SHARDS])
{
    int32_t epoch[SHARDS];
    bool same = true;
    for (int i = 0; i < NB && same; i++) {
        struct sluice_metadata *m = metadata_of(&brokers[i], "cm");
        same = m != NULL && m->n_streams == 1 && m->streams[0].n_shards == SHARDS;
        for (uint32_t s = 0; same && s < SHARDS; s++) {
            const struct sluice_shard_route *r = &m->streams[0].shards[s];
            same = r->leader >= 1 &&
                   (i == 0 || (r->leader == leader[s] && r->leader_epoch == epoch[s]));
            leader[s] = r->leader;
            epoch[s] = r->leader_epoch;
        }
        sluice_metadata_free(m);
    }
    return same;
}

static atomic_uint acked, failed;

static void on_delivery(void *ctx, int err, uint32_t shard, uint64_t seq)
{
    (void)ctx;
    (void)shard;
    (void)seq;
    atomic_fetch_add(err == SL_OK ? &acked : &failed, 1);
}

/* A free port nobody listens on (bound, then closed). */
static uint32_t dead_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
          getsockname(fd, (struct sockaddr *)&a, &len) == 0);
    close(fd);
    return ntohs(a.sin_port);
}

static uint32_t produce_range(sluice_producer *p, uint32_t from, uint32_t n)
{
    for (uint32_t i = from; i < from + n; i++) {
        char key[16];
        int len = snprintf(key, sizeof(key), "k%06u", i);
        CHECK(sluice_produce(p, key, (size_t)len, key, (size_t)len, NULL, 0, on_delivery, NULL) ==
              SL_OK);
    }
    return from + n;
}

/* Reads the stream from the oldest record: every value k000000..k(n-1) exactly once. */
static void read_back(sluice_client *c, uint32_t n)
{
    sluice_consumer *cons = NULL;
    CHECK(sluice_consumer_new(c, "cm", NULL, NULL, &cons) == SL_OK);
    uint8_t *seen = calloc(n, 1);
    CHECK(seen != NULL);
    size_t got = 0, twice = 0;
    uint64_t t0 = it_mono_ms();
    struct sluice_record recs[256];
    while (got < n && it_mono_ms() - t0 < 60000) {
        size_t k = 0;
        int rc = sluice_consumer_poll(cons, recs, 256, &k, 200);
        CHECK(rc == SL_OK);
        for (size_t j = 0; j < k; j++) {
            CHECK(recs[j].value_len == 7);
            char num[8];
            memcpy(num, (const char *)recs[j].value + 1, 6);
            num[6] = '\0';
            uint32_t v = (uint32_t)strtoul(num, NULL, 10);
            CHECK(v < n);
            twice += seen[v];
            seen[v] = 1;
            got++;
        }
    }
    if (twice > 0 || got != n) {
        fprintf(stderr, "FAIL: read %zu of %u records, %zu of them twice\n", got, n, twice);
        exit(1);
    }
    free(seen);
    sluice_consumer_free(cons);
}

/* Produces through a client bootstrapped "dead, b2, b1, b3"; kills the leader of shard 0
 * half-way; reads everything back. */
static void produce_through_bootstrap_list(int32_t leader0)
{
    char list[256];
    snprintf(list, sizeof(list), "127.0.0.1:%u,%s,%s,%s", dead_port(), brokers[1].addr,
             brokers[0].addr, brokers[2].addr);
    sluice_client *c = NULL;
    CHECK(sluice_client_new(list, NULL, &c) == SL_OK);
    sluice_producer *p = NULL;
    struct sluice_producer_opts po = {.ack = SLUICE_ACK_DURABLE, .linger_ms = 2};
    CHECK(sluice_producer_new(c, "cm", &po, &p) == SL_OK);
    uint32_t n = produce_range(p, 0, RECORDS);
    CHECK(sluice_producer_flush(p, 60000) == SL_OK);
    CHECK(atomic_load(&acked) == RECORDS && atomic_load(&failed) == 0);
    printf("ok %u records through a bootstrap list with a dead first address, each shard to "
           "its leader\n", RECORDS);

    /* the leader of shard 0 dies while the producer writes */
    n = produce_range(p, n, RECORDS / 2);
    uint64_t t_kill = it_mono_ms();
    CHECK(it_broker_kill9(&brokers[leader0 - 1]) == 0);
    n = produce_range(p, n, RECORDS / 2);
    CHECK(sluice_producer_flush(p, 90000) == SL_OK);
    struct sluice_producer_stats ps;
    sluice_producer_stats(p, &ps);
    printf("ok leader %d of shard 0 killed: %u acknowledged, %u failed, %llu retries, "
           "%llu duplicates, all in %llu ms\n", leader0, atomic_load(&acked),
           atomic_load(&failed), (unsigned long long)ps.retries,
           (unsigned long long)ps.duplicates, (unsigned long long)(it_mono_ms() - t_kill));
    CHECK(atomic_load(&failed) == 0 && atomic_load(&acked) == n);
    sluice_producer_free(p);
    read_back(c, n);
    printf("ok every record read back once (%u)\n", n);
    sluice_client_free(c);
}

/* A stream made through the Kinesis API in a cluster is a replicated stream: three
 * replicas per shard in every broker's Metadata, written through its leader. */
static void kinesis_stream_in_a_cluster(const struct it_broker *b)
{
    char cmd[768];
    snprintf(cmd, sizeof(cmd),
             "curl -sf -X POST -H 'X-Amz-Target: Kinesis_20131202.CreateStream' "
             "-H 'Content-Type: application/x-amz-json-1.1' "
             "-d '{\"StreamName\":\"local1\",\"ShardCount\":1}' http://127.0.0.1:%u/ "
             ">/dev/null",
             b->http_port);
    CHECK(system(cmd) == 0);
    sluice_client *c = NULL;
    CHECK(it_connect(b, &c) == SL_OK);
    struct sluice_producer_opts po = {.ack = SLUICE_ACK_DURABLE};
    sluice_producer *p = NULL;
    CHECK(sluice_producer_new(c, "local1", &po, &p) == SL_OK);
    for (int i = 0; i < 3; i++) {
        CHECK(sluice_produce(p, "k", 1, "local", 5, NULL, 0, NULL, NULL) == SL_OK);
    }
    CHECK(sluice_producer_flush(p, 10000) == SL_OK);
    sluice_producer_free(p);
    for (int i = 0; i < NB; i++) {
        uint64_t t0 = it_mono_ms();
        size_t replicas = 0;
        while (replicas != NB && it_mono_ms() - t0 < 10000u * IT_SLOWDOWN) {
            struct sluice_metadata *m = metadata_of(&brokers[i], "local1");
            replicas = m != NULL && m->n_streams == 1 && m->streams[0].n_shards == 1
                           ? m->streams[0].shards[0].n_replicas
                           : 0;
            sluice_metadata_free(m);
            if (replicas != NB) {
                it_sleep_ms(50); /* (made on that broker from ZooKeeper a moment later) */
            }
        }
        CHECK(replicas == NB);
    }
    sluice_client_free(c);
    printf("ok a Kinesis stream made over HTTP in a cluster is replicated (%d replicas), 3 "
           "durable records stored through its leader\n", NB);
}

/* Writes `path` (empty data) with ZooKeeper's own client, as an interrupted creation would
 * have left it. */
static void zk_put(zhandle_t *h, const char *path)
{
    int rc = zoo_create(h, path, "", 0, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0);
    if (rc != ZOK) {
        fprintf(stderr, "FAIL: zoo_create %s: %s\n", path, zerror(rc));
        exit(1);
    }
}

static void on_orphan_ack(void *ctx, int err, uint32_t shard, uint64_t seq)
{
    (void)shard;
    (void)seq;
    *(int *)ctx = err;
}

/* An abandoned chained creation's leftovers are cleaned by the next creation of the name;
 * a creation still running (its token there) is not disturbed. */
static void abandoned_creation(void)
{
    zoo_set_debug_level(ZOO_LOG_LEVEL_ERROR);
    zhandle_t *h = zookeeper_init(zc.zk.connect, NULL, 10000, NULL, NULL, 0);
    CHECK(h != NULL);
    uint64_t t0 = it_mono_ms();
    while (zoo_state(h) != ZOO_CONNECTED_STATE) {
        CHECK(it_mono_ms() - t0 < 10000u * IT_SLOWDOWN);
        it_sleep_ms(20);
    }
    char path[128];
    zk_put(h, "/sluice-it/shards/orphan");
    for (int k = 0; k < 70; k++) {
        snprintf(path, sizeof(path), "/sluice-it/shards/orphan/%d", k);
        zk_put(h, path);
    }
    zk_put(h, "/sluice-it/shards/busy");
    zk_put(h, "/sluice-it/creates/busy.9.1796000000000");
    sluice_client *c = NULL;
    CHECK(it_connect(&brokers[1], &c) == SL_OK);
    struct sluice_stream_opts so = {.shard_count = 3, .replication_factor = NB};
    struct sluice_stream_info *si = NULL;
    int rc = sluice_stream_create(c, "orphan", &so, &si);
    if (rc != SLUICE_OK) {
        fprintf(stderr, "FAIL: create over an abandoned creation's leftovers: %s (%s)\n",
                sluice_strerror(rc), sluice_last_error());
        exit(1);
    }
    CHECK(si->shard_count == 3);
    sluice_stream_info_free(si);
    struct String_vector kids = {0};
    CHECK(zoo_get_children(h, "/sluice-it/shards/orphan", 0, &kids) == ZOK);
    CHECK(kids.count == 3); /* the new states only */
    deallocate_String_vector(&kids);
    /* the new stream takes a value durably */
    sluice_producer *p = NULL;
    struct sluice_producer_opts po = {.ack = SLUICE_ACK_DURABLE};
    CHECK(sluice_producer_new(c, "orphan", &po, &p) == SL_OK);
    int acked_err = -1;
    CHECK(sluice_produce(p, "k", 1, "after-the-leftovers", 19, NULL, 0, on_orphan_ack,
                         &acked_err) == SL_OK);
    CHECK(sluice_producer_flush(p, 30000) == SL_OK);
    CHECK(acked_err == SL_OK);
    sluice_producer_free(p);
    sluice_client_free(c);
    /* a creation still running (its token there) is refused, the token named */
    CHECK(it_connect(&brokers[2], &c) == SL_OK);
    rc = sluice_stream_create(c, "busy", &so, NULL);
    CHECK(rc == SLUICE_EEXIST);
    CHECK(strstr(sluice_last_error(), "being created") != NULL);
    sluice_client_free(c);
    CHECK(zoo_exists(h, "/sluice-it/shards/busy", 0, NULL) == ZOK);
    zookeeper_close(h);
    printf("ok an abandoned creation's 70 states removed by the next creation of its name; "
           "a running one (its token there) refused\n");
}

int main(void)
{
    int skip = zkc_available();
    if (skip != 0) {
        return skip;
    }
    CHECK(zkc_start(&zc, brokers, NB, SESSION_MS, NULL) == 0);
    uint64_t t0 = it_mono_ms();
    while (!all_see_three() && it_mono_ms() - t0 < 10000u * IT_SLOWDOWN) {
        it_sleep_ms(50);
    }
    CHECK(all_see_three());
    printf("ok three brokers answer Metadata with three brokers\n");

    /* the stream, made through broker 1 (until the three are registered it may refuse) */
    sluice_client *c = NULL;
    CHECK(it_connect(&brokers[0], &c) == SL_OK);
    struct sluice_stream_opts so = {.shard_count = SHARDS, .replication_factor = NB};
    struct sluice_stream_info *si = NULL;
    int rc = SL_EAGAIN;
    t0 = it_mono_ms();
    while ((rc = sluice_stream_create(c, "cm", &so, &si)) != SL_OK &&
           it_mono_ms() - t0 < 10000u * IT_SLOWDOWN) {
        it_sleep_ms(200);
    }
    CHECK(rc == SL_OK);
    sluice_stream_info_free(si);
    sluice_client_free(c);
    int32_t leader[SHARDS];
    t0 = it_mono_ms();
    while (!leaders_agree(leader) && it_mono_ms() - t0 < 15000u * IT_SLOWDOWN) {
        it_sleep_ms(100);
    }
    CHECK(leaders_agree(leader));
    for (int i = 0; i < NB; i++) {
        struct sluice_metadata *m = metadata_of(&brokers[i], "cm");
        CHECK(m != NULL);
        check_answer(i, m);
        sluice_metadata_free(m);
    }
    printf("ok every broker names the same brokers and the same leader and epoch per shard "
           "(leaders %d %d %d %d)\n", leader[0], leader[1], leader[2], leader[3]);

    char cmd[512];
    snprintf(cmd, sizeof(cmd), "%s --broker %s cluster status --stream cm 2>&1", SLUICE_CLI_PATH,
             brokers[2].addr);
    FILE *f = popen(cmd, "r");
    CHECK(f != NULL);
    char out[8192];
    size_t n = fread(out, 1, sizeof(out) - 1, f);
    out[n] = '\0';
    CHECK(pclose(f) == 0);
    CHECK(strstr(out, "3 live brokers") != NULL && strstr(out, "LEADER") != NULL);
    CHECK(strstr(out, "cm ") != NULL);
    /* each shard's followers as its leader sees them, asked of every broker: two per shard
     * ("node:records behind"), none unknown */
    CHECK(strstr(out, "LAG") != NULL && strstr(out, " ?") == NULL);
    uint32_t lags = 0;
    for (const char *q = strstr(out, "LAG"); q != NULL && (q = strchr(q, ':')) != NULL; q++) {
        lags += q[-1] >= '1' && q[-1] <= '3' && q[1] >= '0' && q[1] <= '9';
    }
    CHECK(lags == SHARDS * (NB - 1));
    printf("ok sluice cluster status --stream:\n%s", out);

    kinesis_stream_in_a_cluster(&brokers[2]);
    abandoned_creation();
    produce_through_bootstrap_list(leader[0]);

    CHECK(zkc_stop(&zc, brokers, NB) == 0);
    printf("ok\n");
    return 0;
}
