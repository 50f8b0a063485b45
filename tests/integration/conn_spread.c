/* conn_spread.c - native connections spread over every worker's loop (conn_workers, #12).
 *
 * Covers: a broker with 3 workers and conn_workers = true takes 6 client connections; the
 * metric sluice_loop_connections (each connection counted on the loop serving it) shows
 * exactly 2 on each of loops 1 and 2 (round robin over the 3 loops; loop 0, the main
 * loop, also serves the HTTP scrape) - so a broker that kept every connection on the main
 * loop fails here. Every connection then does real work through its loop: each produces
 * 200 keyed records durably and reads the whole stream back (each of the 1,200 records
 * exactly once, with its value, each key's in order). Once the clients are freed, loops 1
 * and 2 hold no connection (a closed connection is freed on both sides), and the broker
 * stops cleanly (exit status 0, no sanitizer report). And a SIGTERM while a fetch is parked
 * on a connection of each loop: the broker exits cleanly within 5 s (its shutdown timeout
 * is 10 s).
 */
#include "../unit/test.h"
#include "harness.h"

#include "common/error.h"

#include <arpa/inet.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CLIENTS    6u
#define LOOPS      3u
#define PER_CLIENT 200u
#define SHARDS     4u

static struct it_broker broker;
static atomic_uint delivered_ok, delivered_err;

static void on_delivery(void *ctx, int err, uint32_t shard, uint64_t seq)
{
    (void)ctx;
    (void)shard;
    (void)seq;
    atomic_fetch_add(err == SL_OK ? &delivered_ok : &delivered_err, 1);
}

/* GET /metrics on the HTTP port; returns a malloc'd NUL-terminated body, or NULL. */
static char *scrape(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        return NULL;
    }
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)broker.http_port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    const char req[] = "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        send(fd, req, sizeof(req) - 1, 0) != (ssize_t)(sizeof(req) - 1)) {
        close(fd);
        return NULL;
    }
    size_t cap = 1u << 16, len = 0;
    char *buf = malloc(cap);
    for (ssize_t n; buf != NULL && (n = recv(fd, buf + len, cap - len - 1, 0)) > 0;) {
        len += (size_t)n;
        if (cap - len < 1024) {
            char *nb = realloc(buf, cap * 2);
            if (nb == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    close(fd);
    if (buf != NULL) {
        buf[len] = '\0';
    }
    return buf;
}

/* The connections each loop serves, from one scrape; false if the scrape failed. */
static bool loop_conns(uint32_t out[LOOPS])
{
    char *m = scrape();
    if (m == NULL) {
        return false;
    }
    bool ok = true;
    for (uint32_t i = 0; i < LOOPS && ok; i++) {
        char name[64];
        snprintf(name, sizeof(name), "sluice_loop_connections{loop=\"%u\"} ", i);
        const char *p = strstr(m, name);
        ok = p != NULL;
        out[i] = ok ? (uint32_t)strtoul(p + strlen(name), NULL, 10) : 0;
    }
    free(m);
    return ok;
}

TEST(connections_on_every_worker)
{
    const char *args[] = {"--workers", "3", "--conn-workers", "true", NULL};
    CHECK_EQ(it_broker_start_args(&broker, "always", 0, args), 0);
    sluice_client *c[CLIENTS] = {0};
    for (uint32_t i = 0; i < CLIENTS; i++) {
        CHECK_EQ(it_connect(&broker, &c[i]), SL_OK);
    }
    CHECK_EQ(it_create_stream(c[0], "spread", SHARDS), SL_OK);
    uint32_t n[LOOPS];
    CHECK(loop_conns(n));
    fprintf(stderr, "  connections per loop: %u %u %u\n", n[0], n[1], n[2]);
    CHECK_EQ(n[1], CLIENTS / LOOPS);
    CHECK_EQ(n[2], CLIENTS / LOOPS);
    CHECK(n[0] >= CLIENTS / LOOPS); /* (and the scrape's own HTTP connection) */

    /* every connection produces through its loop */
    for (uint32_t i = 0; i < CLIENTS; i++) {
        sluice_producer *p = NULL;
        struct sluice_producer_opts po = {
            .linger_ms = 1, .block_when_full = 1, .ack = SLUICE_ACK_DURABLE};
        CHECK_EQ(sluice_producer_new(c[i], "spread", &po, &p), SL_OK);
        for (uint32_t j = 0; j < PER_CLIENT; j++) {
            char key[16], val[32];
            int kl = snprintf(key, sizeof(key), "c%u", i);
            int vl = snprintf(val, sizeof(val), "c%u:%u", i, j);
            CHECK_EQ(
                sluice_produce(p, key, (size_t)kl, val, (size_t)vl, NULL, 0, on_delivery, NULL),
                SL_OK);
        }
        CHECK_EQ(sluice_producer_flush(p, 30000), SL_OK);
        sluice_producer_free(p);
    }

    CHECK_EQ(atomic_load(&delivered_err), 0u);
    CHECK_EQ(atomic_load(&delivered_ok), CLIENTS * PER_CLIENT);

    /* and every connection reads it all back */
    for (uint32_t i = 0; i < CLIENTS; i++) {
        sluice_consumer *cons = NULL;
        CHECK_EQ(sluice_consumer_new(c[i], "spread", NULL, NULL, &cons), SL_OK);
        uint32_t next[CLIENTS] = {0}, got = 0;
        uint64_t deadline = it_mono_ms() + 30000;
        while (got < CLIENTS * PER_CLIENT && it_mono_ms() < deadline) {
            struct sluice_record r[256];
            size_t count = 0;
            CHECK_EQ(sluice_consumer_poll(cons, r, 256, &count, 500), SL_OK);
            for (size_t k = 0; k < count; k++) {
                unsigned ci = 0, j = 0;
                char v[32];
                CHECK(r[k].value_len < sizeof(v));
                memcpy(v, r[k].value, r[k].value_len);
                v[r[k].value_len] = '\0';
                CHECK_EQ(sscanf(v, "c%u:%u", &ci, &j), 2);
                CHECK(ci < CLIENTS);
                CHECK_EQ(j, next[ci]); /* once each, in its key's order */
                next[ci]++;
                got++;
            }
        }
        sluice_consumer_free(cons);
        CHECK_EQ(got, CLIENTS * PER_CLIENT);
    }

    for (uint32_t i = 0; i < CLIENTS; i++) {
        sluice_client_free(c[i]);
    }
    uint64_t deadline = it_mono_ms() + 5000;
    do {
        CHECK(loop_conns(n));
    } while ((n[1] != 0 || n[2] != 0) && it_mono_ms() < deadline && (it_sleep_ms(20), 1));
    CHECK_EQ(n[1], 0u);
    CHECK_EQ(n[2], 0u);
    CHECK_EQ(it_broker_stop(&broker), 0);
    it_broker_cleanup(&broker);
}

/* A consumer long-polling an empty stream until the broker goes away. */
static void *long_poll(void *arg)
{
    sluice_consumer *cons = arg;
    struct sluice_record r[4];
    size_t count = 0;
    (void)sluice_consumer_poll(cons, r, 4, &count, 10000); /* (ends when the broker does) */
    return NULL;
}

/* SIGTERM while every loop has a connection whose fetch is parked at the tail: the parked
 * fetches are answered, each loop closes its connections, and the broker exits cleanly and
 * at once (not after shutdown_timeout_ms) - the hand-over's shutdown path. */
TEST(shutdown_with_long_polls_on_every_loop)
{
    const char *args[] = {"--workers", "3", "--conn-workers", "true", NULL};
    CHECK_EQ(it_broker_start_args(&broker, "always", 0, args), 0);
    sluice_client *c[LOOPS] = {0};
    sluice_consumer *cons[LOOPS] = {0};
    pthread_t t[LOOPS];
    for (uint32_t i = 0; i < LOOPS; i++) {
        CHECK_EQ(it_connect(&broker, &c[i]), SL_OK); /* loops 1, 2, 0 */
    }
    CHECK_EQ(it_create_stream(c[0], "idle", 1), SL_OK);
    for (uint32_t i = 0; i < LOOPS; i++) {
        CHECK_EQ(sluice_consumer_new(c[i], "idle", NULL, NULL, &cons[i]), SL_OK);
        CHECK_EQ(pthread_create(&t[i], NULL, long_poll, cons[i]), 0);
    }
    uint32_t n[LOOPS];
    CHECK(loop_conns(n));
    CHECK(n[0] >= 1 && n[1] == 1 && n[2] == 1);
    it_sleep_ms(300); /* the fetches reach the broker and park */
    uint64_t t0 = it_mono_ms();
    CHECK_EQ(it_broker_stop(&broker), 0);
    uint64_t took = it_mono_ms() - t0;
    fprintf(stderr, "  stopped in %llu ms\n", (unsigned long long)took);
    CHECK(took < 5000); /* (shutdown_timeout_ms is 10 s: nothing waited it out) */
    for (uint32_t i = 0; i < LOOPS; i++) {
        pthread_join(t[i], NULL);
        sluice_consumer_free(cons[i]);
        sluice_client_free(c[i]);
    }
    it_broker_cleanup(&broker);
}

int main(void)
{
    int pre = it_preflight();
    if (pre != 0) {
        return pre;
    }
    RUN(connections_on_every_worker);
    RUN(shutdown_with_long_polls_on_every_loop);
    TEST_END();
}
