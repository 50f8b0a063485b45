/* secure.c (test) - a cluster whose brokers require TLS and authentication still replicates
 * (#14): one ZooKeeper and two sluiced with tls = true, auth = true, each logging in to the
 * other with peer_credentials_file and verifying it against peer_tls_ca_file. A stream of
 * replication factor 2 with min_insync_replicas 2: every durable ack needs the follower's
 * copy, which only an authenticated TLS peer link can fetch. Also: auth in a cluster without
 * peer_credentials_file, and a peer_credentials_file readable by others, stop the start with
 * a message naming the fix. Skipped (77) without java, the ZooKeeper jar or openssl.
 */
#include "zk_harness.h"

#include "client/sluice.h"
#include "tests/integration/harness.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #c);                           \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

#define NB      2
#define STREAM  "sec"
#define RECORDS 200u

static struct zkh zk;
static struct it_broker brokers[NB];
static char dir[64];
static char cluster_arg[160];

static void path(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", dir, name);
}

static int write_file(const char *name, const char *text, mode_t mode)
{
    char p[160];
    path(p, sizeof(p), name);
    FILE *f = fopen(p, "w");
    if (f == NULL) {
        return -1;
    }
    fputs(text, f);
    fclose(f);
    return chmod(p, mode);
}

/* sluiced run with `extra` flags (and the environment's settings) must refuse to start,
 * saying `want`. */
static void refuses_to_start(const char *extra, const char *want)
{
    char cmd[1024], out[8192];
    snprintf(cmd, sizeof(cmd),
             "'%s' --data %s/refused --port %u --http-port 0 --cluster %s --node-id 9 %s 2>&1",
             SLUICED_PATH, dir, it_free_port(), cluster_arg, extra);
    FILE *f = popen(cmd, "r");
    CHECK(f != NULL);
    size_t n = fread(out, 1, sizeof(out) - 1, f);
    out[n] = '\0';
    int status = pclose(f);
    CHECK(status != 0);
    if (strstr(out, want) == NULL) {
        fprintf(stderr, "expected '%s' in:\n%s\n", want, out);
        CHECK(0);
    }
    printf("ok refused: %s\n", want);
}

static sluice_client *connect_as_alice(const struct it_broker *b)
{
    char ca[160];
    path(ca, sizeof(ca), "certs/ca.pem");
    struct sluice_client_opts o = {.connect_timeout_ms = 5000,
                                   .request_timeout_ms = 20000,
                                   .tls = 1,
                                   .tls_ca_file = ca,
                                   .user = "alice",
                                   .password = "alice-pw"};
    sluice_client *c = NULL;
    CHECK(sluice_client_new(b->addr, &o, &c) == SLUICE_OK);
    return c;
}

static atomic_uint acked, failed;

static void on_delivery(void *ctx, int err, uint32_t shard, uint64_t seq)
{
    (void)ctx;
    (void)shard;
    (void)seq;
    if (err == SLUICE_OK) {
        acked++;
    } else {
        failed++;
    }
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    int rc = it_preflight();
    if (rc != 0) {
        return rc;
    }
    if ((rc = zkh_available()) != 0) {
        return rc;
    }
    if (system("command -v openssl >/dev/null") != 0) {
        fprintf(stderr, "openssl is needed (deploy/install-test-deps.sh)\n");
        return 77;
    }
    snprintf(dir, sizeof(dir), "/var/tmp/sluice-secure-XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
    char cmd[512], p[160];
    snprintf(cmd, sizeof(cmd), "'%s' '%s/certs' >/dev/null", TLS_CERTS_SCRIPT, dir);
    CHECK(system(cmd) == 0);

    char alice[512], peer[512], auth[1400];
    CHECK(it_user_line("alice", alice, sizeof(alice)) == 0);
    CHECK(it_user_line("replicator", peer, sizeof(peer)) == 0);
    snprintf(auth, sizeof(auth), "%s%sallow alice all *\nallow replicator admin *\n", alice, peer);
    CHECK(write_file("auth", auth, 0600) == 0);
    CHECK(write_file("peer.creds", "user = replicator\npassword = replicator-pw\n", 0600) == 0);
    CHECK(write_file("open.creds", "user = replicator\npassword = replicator-pw\n", 0644) == 0);

    path(p, sizeof(p), "auth");
    setenv("SLUICE_AUTH", "true", 1);
    setenv("SLUICE_AUTH_FILE", p, 1);
    setenv("SLUICE_TLS", "true", 1);
    path(p, sizeof(p), "certs/srv.pem");
    setenv("SLUICE_TLS_CERT_FILE", p, 1);
    path(p, sizeof(p), "certs/srv.key");
    setenv("SLUICE_TLS_KEY_FILE", p, 1);
    path(p, sizeof(p), "certs/ca.pem");
    setenv("SLUICE_PEER_TLS_CA_FILE", p, 1);
    setenv("SLUICE_MIN_INSYNC_REPLICAS", "2", 1);

    CHECK(zkh_start(&zk) == 0);
    snprintf(cluster_arg, sizeof(cluster_arg), "zk://%s/secure", zk.connect);

    /* without peer credentials, or with credentials others can read: no start */
    refuses_to_start("", "needs peer_credentials_file");
    path(p, sizeof(p), "open.creds");
    char flag[200];
    snprintf(flag, sizeof(flag), "--peer-credentials-file %s", p);
    refuses_to_start(flag, "chmod 600");

    path(p, sizeof(p), "peer.creds");
    setenv("SLUICE_PEER_CREDENTIALS_FILE", p, 1);
    for (int i = 0; i < NB; i++) {
        char node[16];
        snprintf(node, sizeof(node), "%d", i + 1);
        const char *args[] = {"--cluster", cluster_arg, "--node-id", node, NULL};
        CHECK(it_broker_start_free_port(&brokers[i], NULL, args) == 0);
    }

    sluice_client *c = connect_as_alice(&brokers[0]);
    struct sluice_stream_opts so = {.shard_count = 1, .replication_factor = 2};
    uint64_t t0 = it_mono_ms();
    while ((rc = sluice_stream_create(c, STREAM, &so, NULL)) != SLUICE_OK &&
           it_mono_ms() - t0 < 10000) {
        it_sleep_ms(200); /* (until both brokers are registered) */
    }
    CHECK(rc == SLUICE_OK);

    /* every ack needs the follower's durable copy (min_insync_replicas 2) */
    struct sluice_producer_opts po = {
        .ack = SLUICE_ACK_DURABLE, .retries = 20, .retry_backoff_ms = 100, .linger_ms = 1};
    sluice_producer *pr = NULL;
    CHECK(sluice_producer_new(c, STREAM, &po, &pr) == SLUICE_OK);
    for (uint32_t i = 0; i < RECORDS; i++) {
        char v[16];
        int n = snprintf(v, sizeof(v), "s%05u", i);
        CHECK(sluice_produce(pr, "k", 1, v, (size_t)n, NULL, 0, on_delivery, NULL) == SLUICE_OK);
    }
    CHECK(sluice_producer_flush(pr, 30000) == SLUICE_OK);
    sluice_producer_free(pr);
    printf("acknowledged %u of %u durable records on two brokers (%u failed)\n", acked, RECORDS,
           failed);
    CHECK(acked == RECORDS && failed == 0);

    /* the follower's copy is in sync: both listed in the ISR */
    const char *names[1] = {STREAM};
    struct sluice_metadata *m = NULL;
    CHECK(sluice_cluster_metadata(c, names, 1, &m) == SLUICE_OK);
    CHECK(m->n_streams == 1 && m->streams[0].n_shards == 1);
    CHECK(m->streams[0].shards[0].n_isr == 2);
    sluice_metadata_free(m);
    sluice_client_free(c);

    for (int i = 0; i < NB; i++) {
        CHECK(it_broker_stop(&brokers[i]) == 0);
        it_broker_cleanup(&brokers[i]);
    }
    zkh_cleanup(&zk);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
    printf("ok\n");
    return 0;
}
