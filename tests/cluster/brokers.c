/* brokers.c (test) - cluster membership with real processes: one ZooKeeper
 * (zk_harness.c) and three sluiced joining it (--cluster, --node-id).
 *
 * Covers: each broker sees the three (ClusterStatus through libsluice, the CLI's
 * `sluice cluster status`, GET /api/v1/overview's brokers[] with the peers "alive");
 * kill -9 of one -> the others see two within the session timeout; restarted (same id and
 * address) after its old session expired -> three at once, and restarted right after a
 * kill -9 -> it waits for its old session to expire, then registers; a broker paused (SIGSTOP)
 * past the session timeout loses its node, and when resumed registers again with a new
 * session (expiry path) -> three; ZooKeeper killed -> every broker serves on and reports
 * its session disconnected, restarted -> connected again with the three; exactly one broker
 * is the controller, and when it is killed another takes over with a higher controller
 * epoch within the session timeout (kept when the old one returns); a fourth broker with a
 * taken node id is refused at start-up with exit status 1 and a message naming the id, the holder
 * and the fix; a broker without --cluster answers that it is a single broker. Skipped (77) without
 * java or the ZooKeeper jar.
 */
#include "zk_cluster.h"

#include "client/sluice.h"
#include "tests/integration/harness.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
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

static struct zkc zc;
static struct it_broker brokers[NB];

/* The number of live brokers `b` lists, or -1 when it cannot say. */
static int live_count(const struct it_broker *b, int *self_count)
{
    sluice_client *c = NULL;
    if (it_connect(b, &c) != SL_OK) {
        return -1;
    }
    struct sluice_cluster_status *s = NULL;
    int n = -1;
    if (sluice_cluster_status(c, &s) == SL_OK) {
        n = s->cluster ? (int)s->n_brokers : -2;
        int selves = 0;
        for (size_t i = 0; i < s->n_brokers; i++) {
            selves += s->brokers[i].self;
        }
        if (self_count != NULL) {
            *self_count = selves;
        }
        sluice_cluster_status_free(s);
    }
    sluice_client_free(c);
    return n;
}

/* Broker b's ClusterStatus into *out (sluice_cluster_status_free), or -1. */
static int status_of(const struct it_broker *b, struct sluice_cluster_status **out)
{
    sluice_client *c = NULL;
    if (it_connect(b, &c) != SL_OK) {
        return -1;
    }
    int rc = sluice_cluster_status(c, out) == SL_OK ? 0 : -1;
    sluice_client_free(c);
    return rc;
}

/* 1 when broker b's ZooKeeper session is connected, 0 when not, -1 when it cannot say. */
static int connected(const struct it_broker *b)
{
    struct sluice_cluster_status *s = NULL;
    if (status_of(b, &s) != 0) {
        return -1;
    }
    int r = s->connected ? 1 : 0;
    sluice_cluster_status_free(s);
    return r;
}

static bool wait_connected(int want, uint32_t timeout_ms)
{
    uint64_t t0 = it_mono_ms();
    while (it_mono_ms() - t0 < timeout_ms) {
        int ok = 1;
        for (int i = 0; i < NB && ok; i++) {
            ok = connected(&brokers[i]) == want;
        }
        if (ok) {
            return true;
        }
        it_sleep_ms(50);
    }
    return false;
}

/* Waits until every running broker of `which` lists `want` brokers; returns the ms it took,
 * or -1. */
static long wait_all_see(const int *which, int nwhich, int want, uint32_t timeout_ms)
{
    uint64_t t0 = it_mono_ms();
    while (it_mono_ms() - t0 < timeout_ms) {
        int ok = 1;
        for (int i = 0; i < nwhich && ok; i++) {
            ok = live_count(&brokers[which[i]], NULL) == want;
        }
        if (ok) {
            return (long)(it_mono_ms() - t0);
        }
        it_sleep_ms(50);
    }
    for (int i = 0; i < nwhich; i++) {
        fprintf(stderr, "  broker %d (%s) lists %d brokers; want %d\n", which[i] + 1,
                brokers[which[i]].addr, live_count(&brokers[which[i]], NULL), want);
    }
    return -1;
}

/* 1 when broker b says it is the controller (and *epoch its controller epoch), 0 when not,
 * -1 when it cannot say. */
static int is_controller(const struct it_broker *b, int32_t *epoch)
{
    struct sluice_cluster_status *s = NULL;
    if (status_of(b, &s) != 0) {
        return -1;
    }
    int r = s->controller ? 1 : 0;
    *epoch = s->controller_epoch;
    sluice_cluster_status_free(s);
    return r;
}

/* Waits until exactly one broker of `which` says it is the controller and the others say
 * they are not; returns its index (and *epoch), or -1. */
static int wait_one_controller(const int *which, int nwhich, uint32_t timeout_ms, int32_t *epoch)
{
    uint64_t t0 = it_mono_ms();
    while (it_mono_ms() - t0 < timeout_ms) {
        int found = -1, count = 0, unsure = 0;
        for (int i = 0; i < nwhich; i++) {
            int32_t e = 0;
            int r = is_controller(&brokers[which[i]], &e);
            unsure += r < 0;
            if (r == 1) {
                found = which[i];
                *epoch = e;
                count++;
            }
        }
        if (count == 1 && unsure == 0) {
            return found;
        }
        it_sleep_ms(50);
    }
    return -1;
}

/* Info level: the cluster lines (session established, registered) tell what a failure
 * did. A free port may be taken by another test before the broker binds it: a broker
 * that exits before listening is started again on another port. */

/* GET /api/v1/overview from broker i: the body (static). */
static const char *overview(int i)
{
    static char buf[65536];
    buf[0] = '\0';
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)brokers[i].http_port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        if (fd >= 0) {
            close(fd);
        }
        return buf;
    }
    const char *req = "GET /api/v1/overview HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    CHECK(write(fd, req, strlen(req)) == (ssize_t)strlen(req));
    size_t got = 0;
    ssize_t n;
    while (got < sizeof(buf) - 1 && (n = read(fd, buf + got, sizeof(buf) - 1 - got)) > 0) {
        got += (size_t)n;
    }
    buf[got] = '\0';
    close(fd);
    return buf;
}

static int count_of(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(hay, needle); p != NULL; p = strstr(p + 1, needle)) {
        n++;
    }
    return n;
}

/* Runs a command with its stderr and stdout into `out`; returns its exit status. */
static int run_capture(const char *cmd, char *out, size_t cap)
{
    FILE *p = popen(cmd, "r");
    CHECK(p != NULL);
    size_t got = fread(out, 1, cap - 1, p);
    out[got] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

int main(void)
{
    int skip = zkc_available();
    if (skip != 0) {
        return skip;
    }
    const char *const info[] = {"--log-level", "info", NULL};
    CHECK(zkc_start(&zc, brokers, NB, SESSION_MS, info) == 0);
    const int all[NB] = {0, 1, 2};
    long ms = wait_all_see(all, NB, 3, 10000u * IT_SLOWDOWN);
    CHECK(ms >= 0);
    printf("ok three brokers see three (%ld ms)\n", ms);
    int selves = 0;
    CHECK(live_count(&brokers[0], &selves) == 3 && selves == 1);

    /* the console's overview: this broker up, the two peers alive */
    const char *ov = overview(0);
    CHECK(strstr(ov, "200 OK") != NULL);
    CHECK(count_of(ov, "\"state\": \"alive\"") == 2 || count_of(ov, "\"state\":\"alive\"") == 2);
    CHECK(count_of(ov, "\"self\": true") + count_of(ov, "\"self\":true") == 1);
    char addr[64];
    snprintf(addr, sizeof(addr), "\"%s\"", brokers[2].addr);
    CHECK(strstr(ov, addr) != NULL);
    printf("ok overview lists the peers\n");

    /* the CLI */
    char cmd[512], out[8192];
    snprintf(cmd, sizeof(cmd), "%s --broker %s cluster status 2>&1", SLUICE_CLI_PATH,
             brokers[1].addr);
    CHECK(run_capture(cmd, out, sizeof(out)) == 0);
    CHECK(strstr(out, "3 live brokers") != NULL && strstr(out, "(this one)") != NULL);
    printf("ok sluice cluster status:\n%s", out);
    snprintf(cmd, sizeof(cmd), "%s --broker %s cluster status --json 2>&1", SLUICE_CLI_PATH,
             brokers[0].addr);
    CHECK(run_capture(cmd, out, sizeof(out)) == 0);
    CHECK(strstr(out, "\"cluster\":true") != NULL && strstr(out, "\"node_id\":1,") != NULL);
    CHECK(count_of(out, "\"state\":\"alive\"") == 2 && count_of(out, "\"self\":true") == 1);
    printf("ok sluice cluster status --json\n");

    /* kill -9: the others see two within the session timeout */
    CHECK(it_broker_kill9(&brokers[2]) == 0);
    const int two[2] = {0, 1};
    ms = wait_all_see(two, 2, 2, 4 * SESSION_MS + 5000);
    CHECK(ms >= 0);
    printf("ok kill -9: the others saw two after %ld ms (session timeout %u ms)\n", ms, SESSION_MS);
    CHECK(ms <= (long)(SESSION_MS * 3 / 2 + 1000));

    /* restarted: three again */
    CHECK(it_broker_restart(&brokers[2]) == 0);
    ms = wait_all_see(all, NB, 3, 10000u * IT_SLOWDOWN);
    CHECK(ms >= 0);
    printf("ok restarted: three again (%ld ms)\n", ms);

    /* killed and restarted at once: its old session still holds the id; the new process
     * (same id, same address) waits for that session to expire, then registers */
    CHECK(it_broker_kill9(&brokers[2]) == 0);
    uint64_t t0 = it_mono_ms();
    CHECK(it_broker_restart(&brokers[2]) == 0); /* the port file comes after registration */
    uint64_t took = it_mono_ms() - t0;
    ms = wait_all_see(all, NB, 3, 10000u * IT_SLOWDOWN);
    CHECK(ms >= 0);
    printf("ok restarted at once: registered after %llu ms (its old session expired)\n",
           (unsigned long long)took);

    /* a node id held by a live broker refuses the start */
    snprintf(cmd, sizeof(cmd),
             "%s --data %s/dup --host 127.0.0.1 --port %u --http-port 0 --cluster %s "
             "--node-id 2 --cluster-session-timeout-ms %u 2>&1",
             SLUICED_PATH, brokers[0].root, it_free_port(), zc.cluster_arg, SESSION_MS);
    int st = run_capture(cmd, out, sizeof(out));
    CHECK(st == 1);
    CHECK(strstr(out, "node id 2 is taken by a live broker") != NULL);
    CHECK(strstr(out, brokers[1].addr) != NULL && strstr(out, "--node-id") != NULL);
    CHECK(live_count(&brokers[0], NULL) == 3);
    printf("ok a taken node id is refused\n");

    /* paused past the session timeout: its node goes; resumed, it registers again */
    CHECK(kill(brokers[1].pid, SIGSTOP) == 0);
    const int others[2] = {0, 2};
    ms = wait_all_see(others, 2, 2, 4 * SESSION_MS + 5000);
    if (ms < 0) {
        kill(brokers[1].pid, SIGCONT);
    }
    CHECK(ms >= 0);
    printf("ok paused: the others saw two after %ld ms\n", ms);
    CHECK(kill(brokers[1].pid, SIGCONT) == 0);
    ms = wait_all_see(all, NB, 3, 10000u * IT_SLOWDOWN);
    CHECK(ms >= 0);
    printf("ok resumed: registered again with a new session, three (%ld ms)\n", ms);

    /* ZooKeeper killed: the brokers keep serving and say they are disconnected; restarted
     * within the session timeout, the sessions (and the nodes) are still there */
    CHECK(zkh_kill9(&zc.zk) == 0);
    CHECK(wait_connected(0, 4 * SESSION_MS));
    CHECK(live_count(&brokers[0], NULL) == 3); /* the last list, maybe stale */
    CHECK(zkh_restart(&zc.zk) == 0);
    CHECK(wait_connected(1, 10000u * IT_SLOWDOWN));
    ms = wait_all_see(all, NB, 3, 10000u * IT_SLOWDOWN);
    CHECK(ms >= 0);
    printf("ok ZooKeeper killed and restarted: disconnected, then connected with three\n");

    /* one controller among the three; kill -9 it: another takes over, with a higher
     * controller epoch, within the session timeout; restarted, it does not take back */
    int32_t epoch1 = 0, epoch2 = 0, epoch3 = 0;
    int ctl = wait_one_controller(all, NB, 10000u * IT_SLOWDOWN, &epoch1);
    CHECK(ctl >= 0 && epoch1 >= 1);
    printf("ok one controller: broker %d, epoch %d\n", ctl + 1, epoch1);
    int rest[2], nrest = 0;
    for (int i = 0; i < NB; i++) {
        if (i != ctl) {
            rest[nrest++] = i;
        }
    }
    CHECK(it_broker_kill9(&brokers[ctl]) == 0);
    uint64_t k0 = it_mono_ms();
    int ctl2 = wait_one_controller(rest, 2, 4 * SESSION_MS + 5000, &epoch2);
    CHECK(ctl2 >= 0 && ctl2 != ctl && epoch2 > epoch1);
    printf("ok controller killed: broker %d took over after %llu ms, epoch %d (session timeout "
           "%u ms)\n", ctl2 + 1, (unsigned long long)(it_mono_ms() - k0), epoch2, SESSION_MS);
    CHECK(it_broker_restart(&brokers[ctl]) == 0);
    CHECK(wait_all_see(all, NB, 3, 10000u * IT_SLOWDOWN) >= 0);
    CHECK(wait_one_controller(all, NB, 10000u * IT_SLOWDOWN, &epoch3) == ctl2 && epoch3 == epoch2);
    snprintf(cmd, sizeof(cmd), "%s --broker %s cluster status 2>&1", SLUICE_CLI_PATH,
             brokers[ctl2].addr);
    CHECK(run_capture(cmd, out, sizeof(out)) == 0);
    CHECK(strstr(out, "(the controller)") != NULL);
    printf("ok restarted: the controller stays broker %d\n", ctl2 + 1);

    /* a broker without --cluster is a single broker, as before */
    struct it_broker single;
    CHECK(it_broker_start(&single, NULL) == 0);
    CHECK(live_count(&single, NULL) == -2);
    CHECK(it_broker_stop(&single) == 0);
    it_broker_cleanup(&single);
    printf("ok single broker\n");

    CHECK(zkc_stop(&zc, brokers, NB) == 0);
    printf("all cluster brokers cases passed\n");
    return 0;
}
