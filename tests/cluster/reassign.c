/* reassign.c (test) - reassignment with real processes (#14): one ZooKeeper, three sluiced,
 * a stream of 2 shards with replication factor 3, a writer producing unique values with
 * ack=durable through the bootstrap list the whole time; then a fourth broker joins and
 * `sluice cluster move --from-broker V --to-broker 4` moves every replica of V (the leader of
 * shard 0, so that shard's leadership hands over) onto it:
 *   - broker 4 is paused (SIGSTOP) when the move starts, so the move is seen in progress
 *     (`sluice cluster status` says "moving to") and cannot finish before
 *   - the controller is killed (kill -9, restarted): the next controller resumes the move
 *     from ZooKeeper; then broker 4 resumes, copies both shards, joins the ISRs, and the
 *     controller switches.
 * After the move: broker 4 holds an identical copy of both shards (ends and bytes equal over
 * the new replica set), V is a replica of neither, every acknowledged value is there exactly
 * once, read from the new leaders. Then `sluice cluster reassign` moves shard 0 back (V's old
 * copy rejoins by epoch truncation) and waits, and a move to a broker that is not live is
 * refused with the reason.
 * Then cancelling (`sluice cluster reassign --cancel`): refused with "nothing to cancel" when
 * no move is in progress; with the writer going again, shard 0 is asked to move onto broker 4,
 * paused so it cannot catch up, then killed (kill -9) with the move in progress; the cancel
 * puts the shard back on its old replicas (no target, 4 out of replicas and ISR; `cluster
 * status` shows no move), durable writes go on, and after broker 4 restarts a new move of
 * shard 0 onto it is asked and finishes; every acknowledged value is still read back once.
 * Skipped (77) without java or the ZooKeeper jar.
 */
#include "cluster_it.h"
#include "repl_check.h"

#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SESSION_MS (2000u * IT_SLOWDOWN)
#define NB         4 /* the fourth joins later */
#define NSH        2
#define STREAM     "mv"
#define VALUES_MAX 200000u
#define BURST      50u

static struct cit cl;
static struct it_broker brokers[NB];
static char bootstrap[160]; /* the first three brokers */
static uint8_t outcome[VALUES_MAX];
static uint32_t next_value;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static atomic_bool writer_stop;
static atomic_uint acked;

static int start_broker(int i)
{
    return cit_broker_start(&cl, &brokers[i], i + 1);
}

static void on_delivery(void *ctx, int err, uint32_t shard, uint64_t seq)
{
    rc_on_delivery(ctx, err, shard, seq);
    if (err == SLUICE_OK) {
        atomic_fetch_add(&acked, 1);
    }
}

/* Bursts of BURST values with distinct keys (both shards), each flushed, through the
 * bootstrap list, until told to stop; a client that fails is made again. */
static void *writer(void *arg)
{
    (void)arg;
    struct sluice_client_opts co = {.connect_timeout_ms = 1000, .request_timeout_ms = 4000};
    struct sluice_producer_opts po = {.ack = SLUICE_ACK_DURABLE,
                                      .linger_ms = 2,
                                      .retry_backoff_ms = 50,
                                      .max_inflight_batches = 2};
    sluice_client *c = NULL;
    sluice_producer *p = NULL;
    while (!atomic_load(&writer_stop)) {
        if (c == NULL && sluice_client_new(bootstrap, &co, &c) != SLUICE_OK) {
            c = NULL;
            it_sleep_ms(100);
            continue;
        }
        if (p == NULL && sluice_producer_new(c, STREAM, &po, &p) != SLUICE_OK) {
            p = NULL;
            sluice_client_free(c);
            c = NULL;
            it_sleep_ms(100);
            continue;
        }
        for (uint32_t k = 0; k < BURST && next_value < VALUES_MAX; k++) {
            char val[16], key[16];
            size_t n = rc_value_format(val, next_value);
            int kn = snprintf(key, sizeof(key), "k%u", next_value % 64);
            pthread_mutex_lock(&mu);
            outcome[next_value] = RC_UNKNOWN;
            pthread_mutex_unlock(&mu);
            if (sluice_produce(p, key, (size_t)kn, val, n, NULL, 0, on_delivery,
                               (void *)(uintptr_t)next_value) != SLUICE_OK) {
                pthread_mutex_lock(&mu);
                outcome[next_value] = RC_FAILED;
                pthread_mutex_unlock(&mu);
            }
            next_value++;
        }
        if (sluice_producer_flush(p, 8000) != SLUICE_OK) {
            sluice_producer_free(p); /* (what is not reported stays unknown) */
            p = NULL;
            sluice_client_free(c);
            c = NULL;
        }
        it_sleep_ms(10);
    }
    if (p != NULL) {
        (void)sluice_producer_flush(p, 8000);
        sluice_producer_free(p);
    }
    sluice_client_free(c);
    return NULL;
}

static uint32_t acked_now(void)
{
    return atomic_load(&acked);
}

/* The stream's routes from `addr` (a bootstrap list, or one broker), or NULL. */
static struct sluice_metadata *routes(const char *addr)
{
    sluice_client *c = NULL;
    struct sluice_client_opts co = {.connect_timeout_ms = 1000, .request_timeout_ms = 3000};
    if (sluice_client_new(addr, &co, &c) != SLUICE_OK) {
        return NULL;
    }
    const char *names[1] = {STREAM};
    struct sluice_metadata *m = NULL;
    if (sluice_cluster_metadata(c, names, 1, &m) != SLUICE_OK || m->n_streams != 1 ||
        m->streams[0].n_shards != NSH) {
        sluice_metadata_free(m);
        m = NULL;
    }
    sluice_client_free(c);
    return m;
}

/* The broker that is the controller now (node id), or -1. */
static int controller(void)
{
    for (int i = 0; i < NB; i++) {
        sluice_client *c = NULL;
        struct sluice_cluster_status *s = NULL;
        if (!it_broker_alive(&brokers[i]) || it_connect(&brokers[i], &c) != SL_OK) {
            continue;
        }
        bool is = sluice_cluster_status(c, &s) == SLUICE_OK && s->controller;
        sluice_cluster_status_free(s);
        sluice_client_free(c);
        if (is) {
            return i + 1;
        }
    }
    return -1;
}

/* Every shard of the stream on each broker of its replica set (per `m`) the same: ends and
 * bytes. *ends gets them. */
static bool replicas_identical(const struct sluice_metadata *m, struct rc_shard_end *ends,
                               char *why, size_t whylen)
{
    for (uint32_t s = 0; s < NSH; s++) {
        const struct sluice_shard_route *r = &m->streams[0].shards[s];
        for (uint32_t i = 0; i < r->n_replicas; i++) {
            struct rc_shard_end e[NSH];
            uint32_t n = 0;
            int id = r->replicas[i];
            if (rc_shard_ends(brokers[id - 1].addr, STREAM, e, NSH, &n, why, whylen) != 0 ||
                n != NSH) {
                return false;
            }
            if (i == 0) {
                ends[s] = e[s];
            } else if (memcmp(&ends[s], &e[s], sizeof(e[s])) != 0) {
                snprintf(why, whylen,
                         "shard %u: broker %d ends at %" PRIu64 " (%" PRIu64
                         " bytes), broker %d at %" PRIu64 " (%" PRIu64 " bytes)",
                         s, r->replicas[0], ends[s].next_seq, ends[s].bytes, id, e[s].next_seq,
                         e[s].bytes);
                return false;
            }
        }
    }
    return true;
}

/* Polls until every shard's move ended with `want(shard)` as its replicas' condition. */
static struct sluice_metadata *wait_moved(int gone, int came, uint32_t timeout_ms)
{
    char all[200];
    snprintf(all, sizeof(all), "%s,%s", bootstrap, brokers[3].addr);
    uint64_t t0 = it_mono_ms();
    while (it_mono_ms() - t0 < timeout_ms) {
        struct sluice_metadata *m = routes(all);
        bool done = m != NULL;
        for (uint32_t s = 0; done && s < NSH; s++) {
            const struct sluice_shard_route *r = &m->streams[0].shards[s];
            done = r->n_target == 0 && cit_has(r->replicas, r->n_replicas, came) &&
                   !cit_has(r->replicas, r->n_replicas, gone) && r->leader >= 1 &&
                   cit_has(r->isr, r->n_isr, came);
        }
        if (done) {
            return m;
        }
        sluice_metadata_free(m);
        it_sleep_ms(200);
    }
    return NULL;
}

/* Until every shard is the same on each broker of its replica set (per `m`), within 20 s;
 * *ends gets the ends. Exits the test (naming `when`) otherwise. */
static void wait_identical(const struct sluice_metadata *m, struct rc_shard_end *ends,
                           const char *when)
{
    char why[512] = "";
    bool same = false;
    for (uint64_t t0 = it_mono_ms(); !same && it_mono_ms() - t0 < 20000; it_sleep_ms(200)) {
        same = replicas_identical(m, ends, why, sizeof(why));
    }
    if (!same) {
        fprintf(stderr, "FAIL: replicas differ %s: %s\n", when, why);
        exit(1);
    }
}

/* Every acknowledged value once, read through `addr` up to `ends`; exits the test (naming
 * `when`) otherwise. */
static void read_back(const char *addr, const struct rc_shard_end *ends, const char *when,
                      struct rc_result *res)
{
    char why[512] = "";
    sluice_client *c = NULL;
    CHECK(sluice_client_new(addr, NULL, &c) == SLUICE_OK);
    if (rc_read_check(c, STREAM, ends, NSH, outcome, next_value, 30000, res, why, sizeof(why)) !=
        0) {
        fprintf(stderr, "FAIL: %s: %s\n", when, why);
        exit(1);
    }
    sluice_client_free(c);
}

static void ids_fmt(const int32_t *ids, uint32_t n, char *buf, size_t cap)
{
    size_t off = 0;
    buf[0] = '\0';
    for (uint32_t i = 0; i < n && off < cap; i++) {
        off += (size_t)snprintf(buf + off, cap - off, "%s%d", i ? "," : "", (int)ids[i]);
    }
}

/* Until `acked` grew by `more` (writes acknowledged durably); false after 20 s. */
static bool acks_grow(uint32_t more)
{
    uint32_t from = acked_now();
    uint64_t t0 = it_mono_ms();
    while (acked_now() < from + more && it_mono_ms() - t0 < 20000) {
        it_sleep_ms(50);
    }
    return acked_now() >= from + more;
}

static void print_routes(const char *when, const struct sluice_metadata *m);

/* Cancelling a move whose new broker is lost (see the file's comment): shard 0, whose
 * replicas are old[0, n) now; the writer runs again meanwhile. */
static void cancel_scenario(const int32_t *old, uint32_t n)
{
    char all[200], out[8192], ids[64], target_ids[64];
    snprintf(all, sizeof(all), "%s,%s", bootstrap, brokers[3].addr);
    const char *none_args[] = {"--broker", all, "cluster", "reassign", STREAM, "--shard", "0",
                               "--cancel", NULL};
    int rc = it_run_cli(&brokers[0], none_args, NULL, 1, out, sizeof(out));
    printf("a cancel with no move in progress (exit %d): %s", rc, out);
    CHECK(rc == 1 && strstr(out, "nothing to cancel") != NULL);

    pthread_t wt;
    atomic_store(&writer_stop, false);
    CHECK(pthread_create(&wt, NULL, writer, NULL) == 0);
    CHECK(acks_grow(200));
    struct sluice_metadata *m = routes(all);
    CHECK(m != NULL);
    int leader = m->streams[0].shards[0].leader;
    sluice_metadata_free(m);
    /* the last old replica that does not lead is replaced by 4 (the leader stays) */
    int32_t target[SLUICE_REPLICAS_MAX];
    memcpy(target, old, n * sizeof(old[0]));
    for (uint32_t i = n; i-- > 0;) {
        if (target[i] != leader) {
            target[i] = 4;
            break;
        }
    }
    ids_fmt(old, n, ids, sizeof(ids));
    ids_fmt(target, n, target_ids, sizeof(target_ids));
    CHECK(kill(brokers[3].pid, SIGSTOP) == 0);
    const char *move_args[] = {"--broker", all,        "cluster",  "reassign",  STREAM, "--shard",
                               "0",        "--replicas", target_ids, "--no-wait", NULL};
    rc = it_run_cli(&brokers[0], move_args, NULL, 1, out, sizeof(out));
    printf("sluice cluster reassign %s --shard 0 --replicas %s --no-wait, broker 4 paused "
           "(exit %d): %s",
           STREAM, target_ids, rc, out);
    CHECK(rc == 0);
    bool moving = false;
    for (uint64_t t0 = it_mono_ms(); !moving && it_mono_ms() - t0 < 20000; it_sleep_ms(100)) {
        m = routes(bootstrap);
        moving = m != NULL && m->streams[0].shards[0].n_target > 0;
        sluice_metadata_free(m);
    }
    CHECK(moving);
    CHECK(it_broker_kill9(&brokers[3]) == 0); /* lost for good, as far as the move knows */
    printf("broker 4 killed (kill -9) with the move in progress\n");

    const char *cancel_args[] = {"--broker", bootstrap, "cluster",   "reassign", STREAM, "--shard",
                                 "0",        "--cancel", "--timeout", "30s",      NULL};
    uint64_t t_cancel = it_mono_ms();
    rc = it_run_cli(&brokers[0], cancel_args, NULL, 1, out, sizeof(out));
    printf("sluice cluster reassign %s --shard 0 --cancel (exit %d, %" PRIu64 " ms):\n%s", STREAM,
           rc, it_mono_ms() - t_cancel, out);
    CHECK(rc == 0 && strstr(out, "cancelled") != NULL && strstr(out, ids) != NULL);
    m = routes(bootstrap);
    CHECK(m != NULL);
    print_routes("cancelled", m);
    const struct sluice_shard_route *r0 = &m->streams[0].shards[0];
    CHECK(r0->n_target == 0 && r0->n_replicas == n &&
          memcmp(r0->replicas, old, n * sizeof(old[0])) == 0);
    CHECK(!cit_has(r0->isr, r0->n_isr, 4) && r0->leader == leader);
    sluice_metadata_free(m);
    const char *status_args[] = {"--broker", bootstrap, "cluster", "status", "--stream",
                                 STREAM,     NULL};
    rc = it_run_cli(&brokers[0], status_args, NULL, 1, out, sizeof(out));
    printf("sluice cluster status after the cancel (exit %d):\n%s", rc, out);
    CHECK(rc == 0 && strstr(out, "moving to") == NULL);
    CHECK(acks_grow(300)); /* durable writes go on (shard 1 too, once 4 leaves its ISR) */
    printf("writes acknowledged after the cancel: %" PRIu64 " ms after it\n",
           it_mono_ms() - t_cancel);

    /* broker 4 back: the same move asked again, and it finishes */
    CHECK(it_broker_restart(&brokers[3]) == 0);
    const char *again_args[] = {"--broker", all,          "cluster",  "reassign",  STREAM,
                                "--shard",  "0",          "--replicas", target_ids, "--timeout",
                                "60s",      NULL};
    rc = -1;
    uint64_t t_again = it_mono_ms();
    for (int tries = 0; rc != 0 && tries < 50; tries++) {
        rc = it_run_cli(&brokers[0], again_args, NULL, 1, out, sizeof(out));
        if (rc != 0) {
            it_sleep_ms(200); /* (until broker 4 is registered again: "not a live broker") */
        }
    }
    printf("sluice cluster reassign %s --shard 0 --replicas %s after the cancel (exit %d, "
           "%" PRIu64 " ms):\n%s",
           STREAM, target_ids, rc, it_mono_ms() - t_again, out);
    CHECK(rc == 0 && strstr(out, "moved") != NULL);
    CHECK(acks_grow(200));
    atomic_store(&writer_stop, true);
    CHECK(pthread_join(wt, NULL) == 0);

    m = routes(all);
    CHECK(m != NULL);
    print_routes("moved again", m);
    struct rc_shard_end ends[NSH];
    wait_identical(m, ends, "after the cancel and the new move");
    sluice_metadata_free(m);
    struct rc_result res;
    read_back(all, ends, "after the cancel", &res);
    printf("after the cancel and the new move: %" PRIu32 " acknowledged (%" PRIu32
           " missing), %" PRIu32 " unknown\n",
           res.ok, res.lost, res.unknown);
    CHECK(res.lost == 0);
}

static void print_logs(void)
{
    cit_print_brokers(brokers, NB);
}

static void print_routes(const char *when, const struct sluice_metadata *m)
{
    for (uint32_t s = 0; s < NSH; s++) {
        const struct sluice_shard_route *r = &m->streams[0].shards[s];
        printf("%s: shard %u leader %d epoch %d replicas", when, s, (int)r->leader,
               (int)r->leader_epoch);
        for (uint32_t i = 0; i < r->n_replicas; i++) {
            printf("%s%d", i ? "," : " ", (int)r->replicas[i]);
        }
        printf(" isr");
        for (uint32_t i = 0; i < r->n_isr; i++) {
            printf("%s%d", i ? "," : " ", (int)r->isr[i]);
        }
        printf("\n");
    }
}

int main(void)
{
    rc_set_outcomes(outcome, &mu);
    int rc = cit_preflight();
    if (rc != 0) {
        return rc;
    }
    atexit(print_logs);
    CHECK(cit_start(&cl, SESSION_MS) == 0);
    for (int i = 0; i < 3; i++) {
        CHECK(start_broker(i) == 0);
    }
    snprintf(bootstrap, sizeof(bootstrap), "%s,%s,%s", brokers[0].addr, brokers[1].addr,
             brokers[2].addr);

    sluice_client *c = NULL;
    CHECK(it_connect(&brokers[0], &c) == SL_OK);
    struct sluice_stream_opts so = {.shard_count = NSH, .replication_factor = 3};
    struct sluice_stream_info *si = NULL;
    uint64_t t0 = it_mono_ms();
    while ((rc = sluice_stream_create(c, STREAM, &so, &si)) != SLUICE_OK &&
           it_mono_ms() - t0 < 10000) {
        it_sleep_ms(200); /* (until the three brokers are registered) */
    }
    CHECK(rc == SLUICE_OK);
    sluice_stream_info_free(si);
    sluice_client_free(c);

    pthread_t wt;
    CHECK(pthread_create(&wt, NULL, writer, NULL) == 0);
    t0 = it_mono_ms();
    while (acked_now() < 2000 && it_mono_ms() - t0 < 20000) {
        it_sleep_ms(50);
    }
    CHECK(acked_now() >= 2000);

    /* a fourth broker joins: it makes the stream in its catalog and holds no replica */
    CHECK(start_broker(3) == 0);
    struct sluice_metadata *m = NULL;
    t0 = it_mono_ms();
    while ((m = routes(brokers[3].addr)) == NULL && it_mono_ms() - t0 < 15000) {
        it_sleep_ms(200);
    }
    CHECK(m != NULL);
    sluice_metadata_free(m);
    m = routes(bootstrap);
    CHECK(m != NULL);
    print_routes("before", m);
    int victim = m->streams[0].shards[0].leader;
    CHECK(victim >= 1 && victim <= 3);
    int32_t before[NSH][SLUICE_REPLICAS_MAX];
    uint32_t n_before = m->streams[0].shards[0].n_replicas;
    memcpy(before[0], m->streams[0].shards[0].replicas, sizeof(before[0]));
    for (uint32_t s = 0; s < NSH; s++) {
        CHECK(!cit_has(m->streams[0].shards[s].replicas, m->streams[0].shards[s].n_replicas, 4));
    }
    sluice_metadata_free(m);

    /* broker 4 paused: the move starts and cannot finish */
    CHECK(kill(brokers[3].pid, SIGSTOP) == 0);
    char from[16], out[8192];
    snprintf(from, sizeof(from), "%d", victim);
    const char *move_args[] = {"--broker", bootstrap,     "cluster", "move",      "--from-broker",
                               from,       "--to-broker", "4",       "--no-wait", NULL};
    uint64_t t_move = it_mono_ms();
    rc = it_run_cli(&brokers[0], move_args, NULL, 1, out, sizeof(out));
    printf("sluice cluster move --from-broker %d --to-broker 4 --no-wait (exit %d):\n%s", victim,
           rc, out);
    CHECK(rc == 0 && strstr(out, "moving") != NULL);
    /* At once, while broker 4's session lives, `cluster status` lists it and asks it for its
     * lags, a Hello nobody answers: it must give up on it after its own short wait
     * (CLI_CLUSTER_LAG_WAIT_MS), not the library's 30 s request timeout (none set here, as a
     * user would run it). */
    const char *status_args[] = {"--broker", bootstrap, "cluster", "status", "--stream",
                                 STREAM,     NULL};
    uint64_t t_status = it_mono_ms();
    rc = it_run_cli(&brokers[0], status_args, NULL, 1, out, sizeof(out));
    uint64_t status_ms = it_mono_ms() - t_status;
    printf("sluice cluster status with broker 4 paused (exit %d, %" PRIu64 " ms):\n%s", rc,
           status_ms, out);
    CHECK(rc == 0 && status_ms < 10000);
    bool listed = strstr(out, "\n4 ") != NULL; /* (its session may have ended meanwhile) */
    CHECK(!listed || strstr(out, "broker 4 leads are unknown") != NULL);
    bool seen = false;
    for (t0 = it_mono_ms(); !seen && it_mono_ms() - t0 < 20000; it_sleep_ms(200)) {
        rc = it_run_cli(&brokers[0], status_args, NULL, 1, out, sizeof(out));
        seen = rc == 0 && strstr(out, "moving to") != NULL;
    }
    printf("sluice cluster status during the move (%" PRIu64 " ms after the request):\n%s",
           it_mono_ms() - t_move, out);
    CHECK(seen);

    /* the controller killed mid-move, restarted; its successor goes on from ZooKeeper */
    int ctl = controller();
    CHECK(ctl >= 1 && ctl <= 3);
    printf("controller: broker %d, killed (kill -9) mid-move\n", ctl);
    CHECK(it_broker_kill9(&brokers[ctl - 1]) == 0);
    CHECK(it_broker_restart(&brokers[ctl - 1]) == 0);
    printf("controller restarted %" PRIu64 " ms after the request\n", it_mono_ms() - t_move);
    CHECK(kill(brokers[3].pid, SIGCONT) == 0);
    uint64_t t_resume = it_mono_ms();

    m = wait_moved(victim, 4, 60000u * IT_SLOWDOWN);
    CHECK(m != NULL);
    uint64_t now = it_mono_ms();
    print_routes("after", m);
    printf("moved: broker %d's replicas onto broker 4, %" PRIu64 " ms after the request, %" PRIu64
           " ms after broker 4 resumed (it was paused past its session, and the controller "
           "was killed, meanwhile)\n",
           victim, now - t_move, now - t_resume);
    int32_t ctl_after = controller();
    printf("controller after: broker %d\n", (int)ctl_after);
    uint32_t acked_at_move = acked_now();
    t0 = it_mono_ms();
    while (acked_now() < acked_at_move + 500 && it_mono_ms() - t0 < 20000) {
        it_sleep_ms(50); /* writes acknowledged by the new replica sets */
    }
    CHECK(acked_now() >= acked_at_move + 500);
    atomic_store(&writer_stop, true);
    CHECK(pthread_join(wt, NULL) == 0);

    /* broker 4 holds an identical copy; the victim is a replica of nothing */
    struct rc_shard_end ends[NSH];
    wait_identical(m, ends, "after the move");
    for (uint32_t s = 0; s < NSH; s++) {
        const struct sluice_shard_route *r = &m->streams[0].shards[s];
        CHECK(!cit_has(r->replicas, r->n_replicas, victim) && !cit_has(r->isr, r->n_isr, victim));
        CHECK(cit_has(r->replicas, r->n_replicas, 4) && r->n_replicas == 3);
        printf("shard %u: identical on brokers", s);
        for (uint32_t i = 0; i < r->n_replicas; i++) {
            printf(" %d", (int)r->replicas[i]);
        }
        printf(": ends at %" PRIu64 ", %" PRIu64 " bytes\n", ends[s].next_seq, ends[s].bytes);
    }
    CHECK(m->streams[0].shards[0].leader != victim); /* (it led shard 0: handed over) */

    /* every acknowledged value once, read from the new leaders */
    struct rc_result res;
    read_back(bootstrap, ends, "after the move", &res);
    printf("log: %" PRIu64 " records; values: %" PRIu32 " written, %" PRIu32
           " acknowledged (%" PRIu32 " missing), %" PRIu32 " unknown (%" PRIu32 " stored)\n",
           res.records, res.values, res.ok, res.lost, res.unknown, res.unknown_stored);
    CHECK(res.lost == 0 && res.ok >= 2500);
    sluice_metadata_free(m);

    /* shard 0 moved back, waiting: the victim's old copy rejoins (truncated by epoch) */
    char ids[64];
    size_t off = 0;
    for (uint32_t i = 0; i < n_before; i++) {
        off +=
            (size_t)snprintf(ids + off, sizeof(ids) - off, "%s%d", i ? "," : "", (int)before[0][i]);
    }
    char all[200];
    snprintf(all, sizeof(all), "%s,%s", bootstrap, brokers[3].addr);
    const char *back_args[] = {"--broker", all,          "cluster", "reassign",  STREAM, "--shard",
                               "0",        "--replicas", ids,       "--timeout", "60s",  NULL};
    t0 = it_mono_ms();
    rc = it_run_cli(&brokers[0], back_args, NULL, 1, out, sizeof(out));
    printf("sluice cluster reassign %s --shard 0 --replicas %s (exit %d, %" PRIu64 " ms):\n%s",
           STREAM, ids, rc, it_mono_ms() - t0, out);
    CHECK(rc == 0 && strstr(out, "moved") != NULL);
    m = routes(all);
    CHECK(m != NULL);
    print_routes("moved back", m);
    const struct sluice_shard_route *r0 = &m->streams[0].shards[0];
    CHECK(r0->n_replicas == n_before &&
          memcmp(r0->replicas, before[0], n_before * sizeof(before[0][0])) == 0);
    wait_identical(m, ends, "after moving back");
    sluice_metadata_free(m);

    /* refusals name the cause */
    const char *bad_args[] = {"--broker", all,          "cluster", "reassign",  STREAM, "--shard",
                              "1",        "--replicas", "1,2,99",  "--no-wait", NULL};
    rc = it_run_cli(&brokers[0], bad_args, NULL, 1, out, sizeof(out));
    printf("a move to a broker that is not live (exit %d): %s", rc, out);
    CHECK(rc == 1 && strstr(out, "broker 99 is not a live broker") != NULL);
    const char *one_args[] = {"--broker", all,          "cluster", "reassign",  STREAM, "--shard",
                              "1",        "--replicas", "4",       "--no-wait", NULL};
    rc = it_run_cli(&brokers[0], one_args, NULL, 1, out, sizeof(out));
    printf("a move to fewer replicas than min_insync_replicas (exit %d): %s", rc, out);
    CHECK(rc == 1 && strstr(out, "min_insync_replicas") != NULL);

    cancel_scenario(before[0], n_before);

    for (int i = 0; i < NB; i++) {
        CHECK(it_broker_stop(&brokers[i]) == 0);
        it_broker_cleanup(&brokers[i]);
    }
    zkh_cleanup(&cl.zk);
    printf("ok\n");
    return 0;
}
