/* catalog_limits.c - the catalog's limits on the real broker (#11).
 *
 * Covers:
 *   - streams_max and shards_max: a CreateStream past either is refused with SL_ELIMIT and
 *     a message naming the setting, natively and through the Kinesis API (400
 *     LimitExceededException); a delete makes room again; the streams created are intact.
 *   - open_files_max above what the open-file limit allows: the broker refuses to start
 *     (exit 2).
 *   - running out of descriptors: a broker started under a low open-file limit (RLIMIT_NOFILE
 *     soft = hard, set before exec so it cannot raise it) is given streams with records until
 *     a create fails: the error is SL_ELIMIT with "too many open files (N open, limit M):
 *     raise LimitNOFILE or lower open_files_max", never "system error"; the failed stream
 *     does not exist; the broker keeps serving every stream it has (their records read back,
 *     more appended); after a clean restart under the same limit nothing is lost.
 *   - the stores' descriptors are held within open_files_max too: 40 streams, each with a
 *     consumer group's checkpoint and a queue group (80 stores, 160 descriptors without the
 *     budget) under open_files_max 48, the broker's descriptors stay within 48 + slack more
 *     than it held empty - after the writes, after writing them all again (parked stores
 *     reopened), and after a restart (every store with state opened at start-up) - and
 *     nothing is lost.
 *   - an idle stream makes no checkpoint or queue-state store: its directory holds no
 *     groups/ or queues/, and the broker's descriptors grow by 3 per shard (directory, .log,
 *     .idx), nothing per stream (counted in /proc/PID/fd).
 */
#include "../unit/test.h"
#include "harness.h"

#include "common/error.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define NOFILE_LOW 320u
#define PER_STREAM 20u /* records produced into each stream */

static struct it_broker broker;
static atomic_uint delivery_errors;

/* One HTTP/1.1 POST of a Kinesis action; the status and up to `cap` - 1 bytes of the
 * answer (head and body) into `out`. Returns the status or -1. */
static int kinesis_post(uint32_t port, const char *action, const char *body, char *out, size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    char req[1024];
    int n = snprintf(req, sizeof(req),
                     "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                     "X-Amz-Target: Kinesis_20131202.%s\r\n"
                     "Content-Type: application/x-amz-json-1.1\r\nContent-Length: %zu\r\n\r\n%s",
                     action, strlen(body), body);
    size_t got = 0;
    if (write(fd, req, (size_t)n) == n) {
        ssize_t r;
        while (got + 1 < cap && (r = read(fd, out + got, cap - 1 - got)) > 0) {
            got += (size_t)r;
        }
    }
    out[got] = '\0';
    close(fd);
    int status = -1;
    return sscanf(out, "HTTP/1.1 %d", &status) == 1 ? status : -1;
}

static int create(sluice_client *c, const char *name, uint32_t shards)
{
    struct sluice_stream_opts o = {.shard_count = shards};
    return sluice_stream_create(c, name, &o, NULL);
}

TEST(streams_max_and_shards_max_named)
{
    setenv("SLUICE_STREAMS_MAX", "3", 1);
    setenv("SLUICE_SHARDS_MAX", "6", 1);
    int started = it_broker_start_http(&broker, NULL);
    unsetenv("SLUICE_STREAMS_MAX");
    unsetenv("SLUICE_SHARDS_MAX");
    CHECK_EQ(started, 0);
    sluice_client *c = NULL;
    CHECK_EQ(it_connect(&broker, &c), SL_OK);
    CHECK_EQ(create(c, "a", 2), SL_OK);
    CHECK_EQ(create(c, "b", 2), SL_OK);
    CHECK_EQ(create(c, "c", 3), SL_ELIMIT);
    fprintf(stderr, "  native: %s\n", sluice_last_error());
    CHECK(strstr(sluice_last_error(), "shards_max") != NULL);
    CHECK_EQ(create(c, "c", 2), SL_OK);
    CHECK_EQ(create(c, "d", 1), SL_ELIMIT);
    fprintf(stderr, "  native: %s\n", sluice_last_error());
    CHECK(strstr(sluice_last_error(), "streams_max") != NULL);
    char out[4096];
    int status = kinesis_post(broker.http_port, "CreateStream",
                              "{\"StreamName\":\"k\",\"ShardCount\":1}", out, sizeof(out));
    const char *body = strstr(out, "\r\n\r\n");
    fprintf(stderr, "  kinesis: %d %s\n", status, body != NULL ? body + 4 : "");
    CHECK_EQ(status, 400);
    CHECK(strstr(out, "LimitExceededException") != NULL);
    CHECK(strstr(out, "streams_max") != NULL);
    /* a delete makes room; the others are intact */
    CHECK_EQ(sluice_stream_delete(c, "a"), SL_OK);
    status = kinesis_post(broker.http_port, "CreateStream",
                          "{\"StreamName\":\"k\",\"ShardCount\":1}", out, sizeof(out));
    CHECK_EQ(status, 200);
    struct sluice_stream_info *info = NULL;
    CHECK_EQ(sluice_stream_describe(c, "b", &info), SL_OK);
    CHECK_EQ(info->shard_count, 2);
    sluice_stream_info_free(info);
    sluice_client_free(c);
    CHECK_EQ(it_broker_stop(&broker), 0);
    it_broker_cleanup(&broker);
}

static void on_delivery(void *ctx, int err, uint32_t shard, uint64_t seq)
{
    (void)ctx;
    (void)shard;
    (void)seq;
    if (err != SL_OK) {
        atomic_fetch_add(&delivery_errors, 1);
    }
}

/* PER_STREAM records "NAME/i" into `name`, acknowledged. */
static int produce(sluice_client *c, const char *name, uint32_t from)
{
    sluice_producer *p = NULL;
    struct sluice_producer_opts po = {.linger_ms = 1, .block_when_full = 1};
    if (sluice_producer_new(c, name, &po, &p) != SL_OK) {
        fprintf(stderr, "  producer %s: %s\n", name, sluice_last_error());
        return -1;
    }
    for (uint32_t i = from; i < from + PER_STREAM; i++) {
        char val[64];
        int n = snprintf(val, sizeof(val), "%s/%u", name, i);
        if (sluice_produce(p, NULL, 0, val, (size_t)n, NULL, 0, on_delivery, NULL) != SL_OK) {
            sluice_producer_free(p);
            return -1;
        }
    }
    int rc = sluice_producer_flush(p, 30000);
    sluice_producer_free(p);
    return rc == SL_OK && atomic_load(&delivery_errors) == 0 ? 0 : -1;
}

/* Reads `name` from the start: exactly `want` records, "NAME/0" .. "NAME/want-1" each once. */
static int read_back(sluice_client *c, const char *name, uint32_t want)
{
    sluice_consumer *k = NULL;
    if (sluice_consumer_new(c, name, NULL, NULL, &k) != SL_OK) {
        fprintf(stderr, "  consumer %s: %s\n", name, sluice_last_error());
        return -1;
    }
    uint8_t seen[4 * PER_STREAM] = {0};
    uint32_t got = 0;
    uint64_t deadline = it_mono_ms() + 10000;
    struct sluice_record recs[64];
    while (got < want && it_mono_ms() < deadline) {
        size_t n = 0;
        if (sluice_consumer_poll(k, recs, 64, &n, 200) != SL_OK) {
            break;
        }
        for (size_t r = 0; r < n; r++) {
            char val[64];
            unsigned i = 0;
            uint32_t len = recs[r].value_len < 63 ? recs[r].value_len : 63;
            memcpy(val, recs[r].value, len);
            val[len] = '\0';
            const char *slash = strrchr(val, '/');
            if (slash == NULL || sscanf(slash + 1, "%u", &i) != 1 || i >= want || seen[i] ||
                strncmp(val, name, (size_t)(slash - val)) != 0) {
                fprintf(stderr, "  %s: unexpected record %s\n", name, val);
                sluice_consumer_free(k);
                return -1;
            }
            seen[i] = 1;
            got++;
        }
    }
    sluice_consumer_free(k);
    if (got != want) {
        fprintf(stderr, "  %s: %u of %u records\n", name, got, want);
        return -1;
    }
    return 0;
}

TEST(descriptor_budget_holds_and_nothing_lost)
{
    /* an open_files_max the limit cannot give is refused at start (exit 2) */
    setenv("SLUICE_OPEN_FILES_MAX", "1000", 1);
    int refused = it_broker_start_nofile(&broker, NULL, NOFILE_LOW);
    unsetenv("SLUICE_OPEN_FILES_MAX");
    CHECK(refused != 0);
    CHECK(WIFEXITED(broker.exit_status) && WEXITSTATUS(broker.exit_status) == 2);
    it_broker_cleanup(&broker);
    setenv("SLUICE_MAX_CONNECTIONS", "16", 1);
    setenv("SLUICE_OPEN_FILES_MAX", "48", 1); /* all that 320 - 16 - 256 leaves */
    int started = it_broker_start_nofile(&broker, NULL, NOFILE_LOW);
    unsetenv("SLUICE_MAX_CONNECTIONS");
    unsetenv("SLUICE_OPEN_FILES_MAX");
    CHECK_EQ(started, 0);
    sluice_client *c = NULL;
    CHECK_EQ(it_connect(&broker, &c), SL_OK);
    char name[32];
    uint32_t made = 0;
    /* The shards' descriptors are held within open_files_max (48 here) whatever their
     * number: 80 streams of 2 shards, each written (480 descriptors without the budget),
     * all created and served (before the budget, creation failed with EMFILE at ~50
     * streams). */
    uint32_t base = it_broker_fds(&broker);
    for (; made < 80; made++) {
        snprintf(name, sizeof(name), "nf%03u", made);
        CHECK_EQ(create(c, name, 2), SL_OK);
        CHECK_EQ(produce(c, name, 0), 0);
    }
    /* shards written last may still wait for their fdatasync: let them settle, then one
     * more use makes the owners park down to their budget */
    usleep(1200 * 1000);
    for (uint32_t i = 0; i < 4; i++) {
        snprintf(name, sizeof(name), "nf%03u", i);
        CHECK_EQ(read_back(c, name, PER_STREAM), 0);
    }
    uint32_t fds = it_broker_fds(&broker);
    fprintf(stderr, "  %u streams of 2 shards: %u descriptors (%u before)\n", made, fds, base);
    CHECK(fds <= base + 48 + 16);
    CHECK(it_broker_alive(&broker));
    /* every stream still served: read back, and one more write to the first and last */
    for (uint32_t i = 0; i < made; i++) {
        snprintf(name, sizeof(name), "nf%03u", i);
        CHECK_EQ(read_back(c, name, PER_STREAM), 0);
    }
    CHECK_EQ(produce(c, "nf000", PER_STREAM), 0);
    snprintf(name, sizeof(name), "nf%03u", made - 1);
    CHECK_EQ(produce(c, name, PER_STREAM), 0);
    sluice_client_free(c);
    /* restarted under the same limit: nothing lost */
    CHECK_EQ(it_broker_stop(&broker), 0);
    CHECK_EQ(it_broker_restart(&broker), 0);
    CHECK_EQ(it_connect(&broker, &c), SL_OK);
    for (uint32_t i = 0; i < made; i++) {
        snprintf(name, sizeof(name), "nf%03u", i);
        uint32_t want = i == 0 || i == made - 1 ? 2 * PER_STREAM : PER_STREAM;
        CHECK_EQ(read_back(c, name, want), 0);
    }
    sluice_client_free(c);
    CHECK_EQ(it_broker_stop(&broker), 0);
    it_broker_cleanup(&broker);
}

#define STORE_STREAMS 40u

TEST(stores_within_the_budget)
{
    setenv("SLUICE_MAX_CONNECTIONS", "16", 1);
    setenv("SLUICE_OPEN_FILES_MAX", "48", 1); /* the stores' share: 16 (catalog_store_files) */
    int started = it_broker_start_nofile(&broker, NULL, NOFILE_LOW); /* (the restart too) */
    CHECK_EQ(started, 0);
    sluice_client *c = NULL;
    CHECK_EQ(it_connect(&broker, &c), SL_OK);
    uint32_t base = it_broker_fds(&broker);
    char name[32];
    for (uint32_t i = 0; i < STORE_STREAMS; i++) {
        snprintf(name, sizeof(name), "st%03u", i);
        CHECK_EQ(create(c, name, 1), SL_OK);
        CHECK_EQ(sluice_checkpoint_commit(c, "g", name, 0, 0), SL_OK);
        CHECK_EQ(sluice_queue_group_create(c, name, "q", NULL), SL_OK);
    }
    uint32_t fds = it_broker_fds(&broker);
    fprintf(stderr,
            "  %u streams with a checkpoint and a queue group: %u descriptors (%u before)\n",
            STORE_STREAMS, fds, base);
    CHECK(fds <= base + 48 + 16);
    /* every store written again: the parked ones reopen, others park */
    for (uint32_t i = 0; i < STORE_STREAMS; i++) {
        snprintf(name, sizeof(name), "st%03u", i);
        CHECK_EQ(sluice_checkpoint_commit(c, "h", name, 0, 0), SL_OK);
        CHECK_EQ(sluice_queue_group_create(c, name, "r", NULL), SL_OK);
    }
    fds = it_broker_fds(&broker);
    CHECK(fds <= base + 48 + 16);
    sluice_client_free(c);
    /* restarted: every store holds state, so each is opened at start-up */
    CHECK_EQ(it_broker_stop(&broker), 0);
    CHECK_EQ(it_broker_restart(&broker), 0);
    CHECK_EQ(it_connect(&broker, &c), SL_OK);
    for (uint32_t i = 0; i < STORE_STREAMS; i++) {
        snprintf(name, sizeof(name), "st%03u", i);
        for (int k = 0; k < 2; k++) {
            struct sluice_checkpoint *cp = NULL;
            size_t n = 0;
            CHECK_EQ(sluice_checkpoints_get(c, k == 0 ? "g" : "h", name, &cp, &n), SL_OK);
            CHECK(n == 1 && cp[0].shard == 0 && cp[0].seq == 0);
            free(cp);
        }
        char **groups = NULL;
        size_t n = 0;
        CHECK_EQ(sluice_queue_groups_list(c, name, &groups, &n), SL_OK);
        CHECK_EQ(n, 2);
        sluice_groups_free(groups, n);
    }
    fds = it_broker_fds(&broker);
    fprintf(stderr, "  after a restart: %u descriptors\n", fds);
    CHECK(fds <= base + 48 + 16);
    CHECK_EQ(sluice_queue_group_delete(c, "st000", "r"), SL_OK); /* a parked store reopens */
    sluice_client_free(c);
    CHECK_EQ(it_broker_stop(&broker), 0);
    it_broker_cleanup(&broker);
    unsetenv("SLUICE_MAX_CONNECTIONS");
    unsetenv("SLUICE_OPEN_FILES_MAX");
}

static bool exists(const char *stream, const char *sub)
{
    char path[256];
    struct stat sb;
    snprintf(path, sizeof(path), "%s/streams/%s/%s", broker.data, stream, sub);
    return stat(path, &sb) == 0;
}

TEST(idle_streams_open_no_stores)
{
    CHECK_EQ(it_broker_start(&broker, NULL), 0);
    sluice_client *c = NULL;
    CHECK_EQ(it_connect(&broker, &c), SL_OK);
    CHECK_EQ(create(c, "first", 1), SL_OK);
    uint32_t before = it_broker_fds(&broker);
    const uint32_t streams = 20, shards = 2;
    char name[32];
    for (uint32_t i = 0; i < streams; i++) {
        snprintf(name, sizeof(name), "idle%02u", i);
        CHECK_EQ(create(c, name, shards), SL_OK);
    }
    uint32_t after = it_broker_fds(&broker);
    fprintf(stderr, "  descriptors: %u, then %u after %u idle streams of %u shards\n", before,
            after, streams, shards);
    CHECK_EQ(after, before); /* idle shards are parked: no descriptor (storage/shard_park.c) */
    CHECK(!exists("idle00", "groups") && !exists("idle00", "queues"));
    CHECK(exists("idle00", "0") && exists("idle00", "stream.meta"));
    /* the first commit makes the checkpoint store (and only it) */
    sluice_consumer *k = NULL;
    CHECK_EQ(sluice_consumer_new(c, "first", "g", NULL, &k), SL_OK);
    CHECK_EQ(produce(c, "first", 0), 0);
    struct sluice_record recs[PER_STREAM];
    size_t n = 0;
    for (int tries = 0; tries < 50 && n == 0; tries++) {
        CHECK_EQ(sluice_consumer_poll(k, recs, PER_STREAM, &n, 200), SL_OK);
    }
    CHECK(n > 0);
    CHECK_EQ(sluice_consumer_commit(k), SL_OK);
    sluice_consumer_free(k);
    CHECK(exists("first", "groups") && !exists("first", "queues"));
    sluice_client_free(c);
    CHECK_EQ(it_broker_stop(&broker), 0);
    it_broker_cleanup(&broker);
}

int main(void)
{
    int pre = it_preflight();
    if (pre != 0) {
        return pre;
    }
    RUN(streams_max_and_shards_max_named);
    RUN(descriptor_budget_holds_and_nothing_lost);
    RUN(stores_within_the_budget);
    RUN(idle_streams_open_no_stores);
    TEST_END();
}
