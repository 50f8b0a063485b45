/* metadata.c - Metadata on a single broker, and libsluice's bootstrap list (#14).
 *
 * Covers: a single broker answers Metadata as the leader of every shard of the streams
 * asked (node 0, epoch 0, replicas = ISR = {0}, open as described), lists itself alone as
 * `self`, refuses an unknown stream with NOT_FOUND and answers the brokers alone for no
 * stream; `cluster status --stream` prints the same; a bootstrap list whose first address
 * is dead connects to the second, and a producer and a consumer made on that client route
 * every shard there (every record produced is read back); a malformed list is refused
 * with SL_EINVAL naming the bad entry.
 */
#include "../unit/test.h"
#include "harness.h"

#include "common/error.h"

#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define RECORDS 2000u
#define SHARDS  3u

static struct it_broker broker;

/* A TCP port on 127.0.0.1 nobody listens on (bound, then closed: refused at once). */
static uint32_t dead_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        return 1; /* (port 1: refused as well, on any sane machine) */
    }
    close(fd);
    return ntohs(a.sin_port);
}

TEST(metadata_single_broker)
{
    CHECK_EQ(it_broker_start(&broker, "always"), 0);
    sluice_client *c = NULL;
    CHECK_EQ(it_connect(&broker, &c), SL_OK);
    CHECK_EQ(it_create_stream(c, "ma", SHARDS), SL_OK);
    CHECK_EQ(it_create_stream(c, "mb", 1), SL_OK);
    const char *both[2] = {"mb", "ma"};
    struct sluice_metadata *m = NULL;
    CHECK_EQ(sluice_cluster_metadata(c, both, 2, &m), SL_OK);
    CHECK_EQ(m->cluster, 0);
    CHECK_EQ(m->node_id, 0);
    CHECK_EQ(m->n_brokers, 1);
    CHECK(m->brokers[0].self);
    CHECK_EQ(m->brokers[0].node_id, 0);
    CHECK_EQ(m->n_streams, 2);
    CHECK(strcmp(m->streams[0].name, "mb") == 0 && strcmp(m->streams[1].name, "ma") == 0);
    CHECK_EQ(m->streams[0].n_shards, 1);
    CHECK_EQ(m->streams[1].n_shards, SHARDS);
    for (uint32_t i = 0; i < SHARDS; i++) {
        const struct sluice_shard_route *r = &m->streams[1].shards[i];
        CHECK_EQ(r->shard, i);
        CHECK_EQ(r->leader, 0);
        CHECK_EQ(r->leader_epoch, 0);
        CHECK(r->open);
        CHECK_EQ(r->n_replicas, 1);
        CHECK_EQ(r->replicas[0], 0);
        CHECK_EQ(r->n_isr, 1);
        CHECK_EQ(r->isr[0], 0);
    }
    sluice_metadata_free(m);
    m = NULL;
    /* no stream: the brokers alone */
    CHECK_EQ(sluice_cluster_metadata(c, NULL, 0, &m), SL_OK);
    CHECK_EQ(m->n_streams, 0);
    CHECK_EQ(m->n_brokers, 1);
    sluice_metadata_free(m);
    m = NULL;
    /* an unknown stream fails the request, as DescribeStream */
    const char *bad[2] = {"ma", "nope"};
    CHECK_EQ(sluice_cluster_metadata(c, bad, 2, &m), SL_ENOTFOUND);
    CHECK(m == NULL);
    CHECK(strstr(sluice_last_error(), "nope") != NULL);
    /* more than a request may name: refused before it is sent */
    const char *many[SLUICE_METADATA_STREAMS + 1];
    for (size_t i = 0; i <= SLUICE_METADATA_STREAMS; i++) {
        many[i] = "ma";
    }
    CHECK_EQ(sluice_cluster_metadata(c, many, SLUICE_METADATA_STREAMS + 1, &m), SL_ELIMIT);
    /* the CLI shows the same */
    char out[8192];
    const char *args[] = {"--broker", broker.addr, "cluster", "status", "--stream", "ma", NULL};
    CHECK_EQ(it_run_cli(&broker, args, NULL, 0, out, sizeof(out)), 0);
    CHECK(strstr(out, "single broker") != NULL);
    CHECK(strstr(out, "LEADER") != NULL && strstr(out, "ISR") != NULL);
    CHECK(strstr(out, "ma ") != NULL);
    const char *jargs[] = {"--broker", broker.addr, "cluster", "status", "--json", NULL};
    CHECK_EQ(it_run_cli(&broker, jargs, NULL, 0, out, sizeof(out)), 0);
    CHECK(strstr(out, "\"streams\"") != NULL && strstr(out, "\"leader\":0") != NULL);
    CHECK(strstr(out, "\"name\":\"mb\"") != NULL);
    /* copies a single broker cannot keep are refused, not silently dropped */
    struct sluice_stream_opts so = {.shard_count = 1, .replication_factor = 3};
    CHECK_EQ(sluice_stream_create(c, "mrf", &so, NULL), SL_EUNSUPPORTED);
    CHECK(strstr(sluice_last_error(), "--cluster") != NULL);
    so.replication_factor = 1;
    CHECK_EQ(sluice_stream_create(c, "mrf", &so, NULL), SL_OK);
    /* nothing to move on a single broker: said so */
    int32_t ids[] = {1, 2, 3};
    CHECK_EQ(sluice_cluster_reassign(c, "ma", 0, ids, 3), SL_EUNSUPPORTED);
    CHECK(strstr(sluice_last_error(), "--cluster") != NULL);
    CHECK_EQ(sluice_cluster_reassign_cancel(c, "ma", 0), SL_EUNSUPPORTED); /* nor to cancel */
    CHECK(strstr(sluice_last_error(), "--cluster") != NULL);
    sluice_client_free(c);
}

static atomic_uint acked, failed;

static void on_delivery(void *ctx, int err, uint32_t shard, uint64_t seq)
{
    (void)ctx;
    (void)shard;
    (void)seq;
    atomic_fetch_add(err == SL_OK ? &acked : &failed, 1);
}

TEST(bootstrap_first_dead)
{
    CHECK(broker.pid != 0); /* (started by the test before) */
    char list[128];
    snprintf(list, sizeof(list), "127.0.0.1:%u, %s", dead_port(), broker.addr);
    sluice_client *c = NULL;
    CHECK_EQ(sluice_client_new(list, NULL, &c), SL_OK);
    CHECK_EQ(it_create_stream(c, "boot", SHARDS), SL_OK);
    sluice_producer *p = NULL;
    struct sluice_producer_opts po = {.ack = SLUICE_ACK_DURABLE, .linger_ms = 2};
    CHECK_EQ(sluice_producer_new(c, "boot", &po, &p), SL_OK);
    for (uint32_t i = 0; i < RECORDS; i++) {
        char key[16];
        int n = snprintf(key, sizeof(key), "k%u", i);
        CHECK_EQ(sluice_produce(p, key, (size_t)n, key, (size_t)n, NULL, 0, on_delivery, NULL),
                 SL_OK);
    }
    CHECK_EQ(sluice_producer_flush(p, 30000), SL_OK);
    CHECK_EQ(atomic_load(&acked), RECORDS);
    CHECK_EQ(atomic_load(&failed), 0);
    sluice_producer_free(p);
    sluice_consumer *cons = NULL;
    CHECK_EQ(sluice_consumer_new(c, "boot", NULL, NULL, &cons), SL_OK);
    size_t got = 0;
    uint64_t t0 = it_mono_ms();
    struct sluice_record recs[256];
    while (got < RECORDS && it_mono_ms() - t0 < 30000) {
        size_t n = 0;
        CHECK_EQ(sluice_consumer_poll(cons, recs, 256, &n, 200), SL_OK);
        got += n;
    }
    CHECK_EQ(got, RECORDS);
    sluice_consumer_free(cons);
    /* the CLI takes the same list */
    char out[4096];
    const char *args[] = {"--broker", list, "stream", "list", NULL};
    CHECK_EQ(it_run_cli(&broker, args, NULL, 0, out, sizeof(out)), 0);
    CHECK(strstr(out, "boot") != NULL);
    sluice_client_free(c);
}

TEST(bootstrap_list_refused)
{
    sluice_client *c = NULL;
    CHECK_EQ(sluice_client_new("127.0.0.1:7400,,127.0.0.1:7401", NULL, &c), SL_EINVAL);
    CHECK(strstr(sluice_last_error(), "bad broker address") != NULL);
    CHECK_EQ(sluice_client_new("127.0.0.1:7400,nohost", NULL, &c), SL_EINVAL);
    CHECK(strstr(sluice_last_error(), "nohost") != NULL);
    char many[512] = "";
    for (int i = 0; i < 17; i++) {
        strcat(many, i > 0 ? ",127.0.0.1:1" : "127.0.0.1:1");
    }
    CHECK_EQ(sluice_client_new(many, NULL, &c), SL_EINVAL);
    CHECK(strstr(sluice_last_error(), "more than 16") != NULL);
    /* every address dead: the error names the list and the last failure */
    char dead[64];
    snprintf(dead, sizeof(dead), "127.0.0.1:%u,127.0.0.1:%u", dead_port(), dead_port());
    struct sluice_client_opts o = {.connect_timeout_ms = 1000};
    CHECK_EQ(sluice_client_new(dead, &o, &c), SL_ECLOSED);
    CHECK(strstr(sluice_last_error(), "no broker of") != NULL);
    CHECK(c == NULL);
}

int main(void)
{
    int rc = it_preflight();
    if (rc != 0) {
        return rc;
    }
    RUN(metadata_single_broker);
    RUN(bootstrap_first_dead);
    RUN(bootstrap_list_refused);
    if (broker.pid != 0) {
        it_broker_stop(&broker);
    }
    it_broker_cleanup(&broker);
    TEST_END();
}
