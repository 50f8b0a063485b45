/* faults.c (test) - cluster mode under real faults: a ZooKeeper ensemble of three and three
 * sluiced, each process on a host of its own (netns_harness.h: a network namespace with its own
 * address, NH_SUBNET.x, on one bridge), the test itself on a seventh host ("client").
 *
 * Faults (the CI schedule runs each once, in this order; SLUICE_IT_LONG=1 runs rounds of them
 * in an order and with the ZooKeeper-cut victim picked by a seeded random generator, the seed
 * printed, SLUICE_IT_SEED=N replays the order; SLUICE_IT_FAULTS=pause,isolate,kill runs a list of
 * kill, pause, cutzk, isolate, zkleader, rolling):
 *   kill -9 the controller broker, then restart it;
 *   pause (SIGSTOP) the controller past its session timeout, then resume it (a zombie);
 *   cut a broker from the three ZooKeeper hosts only (nftables), then heal;
 *   cut the controller from every other host but the client (so the test still sees what the
 *   deposed controller says about itself), then heal;
 *   kill -9 the ZooKeeper leader, then restart it;
 *   rolling restart of every broker (SIGTERM, exit 0, start again).
 * After each fault and its heal, polling ClusterStatus (libsluice) on every broker: exactly one
 * broker says it is the controller and the others that they are not, every broker is connected
 * to ZooKeeper and lists exactly the live brokers, the controller epoch never decreases (and
 * increases when the controller changes), and the workload's check passes (workload.h;
 * cw_repl, SLUICE_IT_WORKLOAD=noop for none). Measured and printed: failover (fault -> another
 * broker says it is the controller with a higher epoch, every other reachable one agreeing), how
 * long a deposed controller still says it is one, the ZooKeeper election after its leader's death,
 * and convergence after each heal. At the end `sluice cluster status` on every broker, a graceful
 * stop of every broker (exit 0) and no sanitizer report in their logs.
 *
 * Skipped (77) without root, ip, nft, java or ZooKeeper's jar.
 */
#include "netns_harness.h"
#include "workload.h"
#include "zk_harness.h"

#include "client/sluice.h"
#include "tests/integration/harness.h"

#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define NZK         3
#define NB          3
#define BROKER_PORT 7000u
#define SESSION_MS  (2000u * IT_SLOWDOWN)
/* A broker restarted right after a kill -9 waits for its old session to expire before it
 * listens; a cluster converges within a couple of session timeouts after a heal. */
#define START_WAIT_MS    (4u * SESSION_MS + 15000u)
#define CONVERGE_WAIT_MS (4u * SESSION_MS + 15000u)
#define LONG_ROUNDS      17u /* x 6 faults: >= 100 with SLUICE_IT_LONG=1 */

static struct nh_net net;
static struct nh_host *zk_host[NZK], *b_host[NB], *client_host;
static struct zke zk;
static struct nh_proc brokers[NB];
static char b_addr[NB][32], b_data[NB][160], b_port_file[NB][160], b_log[NB][160];
static bool b_running[NB]; /* started and not killed or stopped */
static bool b_paused[NB];
static char cluster_arg[256];
static struct cw_workload workload;
static struct cw_cluster cw;
static char bootstrap[NB * 32];

/* Epochs: the highest controller epoch seen converged, and per broker the highest it claimed. */
static int32_t max_epoch;
static int32_t claimed_epoch[NB];

/* Results for the summary. */
struct measure {
    char what[64];
    long ms;
};
static struct measure measures[1024];
static size_t n_measures;

/* On a failure: each broker's log tail, and for one that runs, its state and its threads' stacks
 * (gdb, when installed), which tell a hung broker from an unreachable one. */
static void dump_logs(void)
{
    for (uint32_t i = 0; i < zk.n; i++) {
        char mode[32] = "";
        int alive = zk.node[i].pid != 0 && kill(zk.node[i].pid, 0) == 0;
        zkh_mode(&zk.node[i], mode, sizeof(mode));
        fprintf(stderr, "  zk%u (pid %d): %s, %s\n", i + 1, (int)zk.node[i].pid,
                alive ? "running" : "not running", mode[0] != '\0' ? mode : "no mode");
    }
    for (int i = 0; i < NB; i++) {
        if (brokers[i].host == NULL) {
            continue;
        }
        nh_proc_log_tail(&brokers[i], 25);
        pid_t pid = brokers[i].pid;
        if (pid != 0 && !nh_proc_alive(&brokers[i])) {
            int st = brokers[i].exit_status;
            fprintf(stderr, "  --- broker %d (pid %d) had ended: %s %d ---\n", i + 1, (int)pid,
                    WIFSIGNALED(st) ? "killed by signal" : "exit status",
                    WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
        }
        if (brokers[i].pid != 0) {
            char cmd[512];
            snprintf(cmd, sizeof(cmd),
                     "grep -E '^State' /proc/%d/status >&2; "
                     "command -v gdb >/dev/null && timeout 20 gdb -batch -p %d "
                     "-ex 'thread apply all bt 12' 2>/dev/null | grep -E '^(#|Thread)' >&2",
                     (int)brokers[i].pid, (int)brokers[i].pid);
            fprintf(stderr, "  --- broker %d (pid %d) ---\n", i + 1, (int)brokers[i].pid);
            if (system(cmd) != 0) {
                fprintf(stderr, "  (no stacks)\n");
            }
        }
    }
}

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #c);                           \
            dump_logs();                                                                           \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

static void record(const char *what, long ms)
{
    if (n_measures < sizeof(measures) / sizeof(measures[0])) {
        snprintf(measures[n_measures].what, sizeof(measures[0].what), "%s", what);
        measures[n_measures].ms = ms;
        n_measures++;
    }
}

/* ---- brokers ---- */

static uint32_t read_port(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return 0;
    }
    unsigned p = 0;
    int n = fscanf(f, "%u", &p);
    fclose(f);
    return n == 1 ? p : 0;
}

/* Waits for broker i's port file (written once it is registered and listens). */
static int wait_listening(int i)
{
    uint64_t deadline = it_mono_ms() + START_WAIT_MS;
    while (it_mono_ms() < deadline) {
        if (read_port(b_port_file[i]) == BROKER_PORT) {
            return 0;
        }
        if (!nh_proc_alive(&brokers[i])) {
            fprintf(stderr, "  broker %d exited before listening (status 0x%x)\n", i + 1,
                    (unsigned)brokers[i].exit_status);
            return -1;
        }
        it_sleep_ms(20);
    }
    fprintf(stderr, "  broker %d did not listen within %u ms\n", i + 1, START_WAIT_MS);
    return -1;
}

static int start_broker(int i)
{
    char node[16], session[16], port[16];
    snprintf(node, sizeof(node), "%d", i + 1);
    snprintf(session, sizeof(session), "%u", SESSION_MS);
    snprintf(port, sizeof(port), "%u", BROKER_PORT);
    snprintf(b_data[i], sizeof(b_data[i]), "%s/b%d-data", net.root, i + 1);
    snprintf(b_port_file[i], sizeof(b_port_file[i]), "%s/b%d.port", net.root, i + 1);
    snprintf(b_log[i], sizeof(b_log[i]), "%s/b%d.log", net.root, i + 1);
    snprintf(b_addr[i], sizeof(b_addr[i]), "%s:%u", b_host[i]->ip, BROKER_PORT);
    /* No HTTP listener; --host is the host's own address, so the advertised address (host:port
     * by default) is what the others and the test reach, and outgoing connections leave from
     * it (eth0 is the namespace's only interface besides lo). */
    const char *argv[] = {SLUICED_PATH,   "--data",      b_data[i], "--host",
                          b_host[i]->ip,  "--port",      port,      "--port-file",
                          b_port_file[i], "--flush",     "always",  "--log-level",
                          "info",         "--http-port", "0",       "--cluster",
                          cluster_arg,    "--node-id",   node,      "--cluster-session-timeout-ms",
                          session,        NULL};
    unlink(b_port_file[i]);
    if (nh_proc_start(&brokers[i], b_host[i], b_log[i], argv) != 0) {
        return -1;
    }
    b_running[i] = true;
    return wait_listening(i);
}

static int restart_broker(int i)
{
    unlink(b_port_file[i]);
    if (nh_proc_restart(&brokers[i]) != 0) {
        return -1;
    }
    b_running[i] = true;
    b_paused[i] = false;
    return wait_listening(i);
}

/* ---- what the brokers say ---- */

struct view {
    bool ok;        /* it answered */
    bool connected; /* its ZooKeeper session */
    bool controller;
    int32_t epoch;
    uint32_t live_mask; /* bit (node id - 1) for each broker it lists */
    char err[160];      /* why it did not answer: connecting (refused, timed out) or the call */
};

static bool ask(int i, struct view *v)
{
    memset(v, 0, sizeof(*v));
    struct sluice_client_opts o = {.connect_timeout_ms = 1000,
                                   .request_timeout_ms = 1500,
                                   .reconnect_backoff_ms = 50,
                                   .reconnect_backoff_max_ms = 200,
                                   .client_id = "fault-test"};
    sluice_client *c = NULL;
    int rc = sluice_client_new(b_addr[i], &o, &c);
    if (rc != SL_OK) {
        snprintf(v->err, sizeof(v->err), "connect: %s (%s)", sl_errname(rc), sluice_last_error());
        return false;
    }
    struct sluice_cluster_status *s = NULL;
    rc = sluice_cluster_status(c, &s);
    if (rc != SL_OK) {
        snprintf(v->err, sizeof(v->err), "ClusterStatus: %s (%s)", sl_errname(rc),
                 sluice_last_error());
    } else {
        v->ok = s->cluster != 0;
        v->connected = s->connected != 0;
        v->controller = s->controller != 0;
        v->epoch = s->controller_epoch;
        for (size_t k = 0; k < s->n_brokers; k++) {
            if (s->brokers[k].node_id >= 1 && s->brokers[k].node_id <= 32) {
                v->live_mask |= 1u << (s->brokers[k].node_id - 1);
            }
        }
        sluice_cluster_status_free(s);
    }
    sluice_client_free(c);
    /* A broker claims epochs that never go down: a deposed controller may keep claiming the old
     * one for a while (fenced by its writes' epoch check), but never an older one than it held. */
    if (v->ok && v->controller) {
        CHECK(v->epoch >= 1);
        if (v->epoch < claimed_epoch[i]) {
            fprintf(stderr, "  broker %d claims controller epoch %d after claiming %d\n", i + 1,
                    v->epoch, claimed_epoch[i]);
            CHECK(v->epoch >= claimed_epoch[i]);
        }
        claimed_epoch[i] = v->epoch;
    }
    return v->ok;
}

static uint32_t running_mask(void)
{
    uint32_t m = 0;
    for (int i = 0; i < NB; i++) {
        if (b_running[i] && !b_paused[i]) {
            m |= 1u << i;
        }
    }
    return m;
}

/* True when every broker of `mask` answers, is connected, lists exactly `mask`, and exactly one
 * of them says it is the controller (*ctl, *epoch). */
static bool converged_once(uint32_t mask, int *ctl, int32_t *epoch)
{
    int found = -1, count = 0;
    for (int i = 0; i < NB; i++) {
        if (!(mask & (1u << i))) {
            continue;
        }
        struct view v;
        if (!ask(i, &v) || !v.connected || v.live_mask != mask) {
            return false;
        }
        if (v.controller) {
            found = i;
            *epoch = v.epoch;
            count++;
        }
    }
    *ctl = found;
    return count == 1;
}

static void print_views(uint32_t mask)
{
    for (int i = 0; i < NB; i++) {
        struct view v;
        bool ok = ask(i, &v);
        fprintf(stderr, "  broker %d%s: %s%s connected=%d lists=0x%x controller=%d epoch=%d\n",
                i + 1, (mask & (1u << i)) ? "" : " (not expected live)",
                ok ? "answers" : "no answer: ", v.err, v.connected, v.live_mask, v.controller,
                v.epoch);
    }
}

/* Waits until the running brokers have converged; checks the epoch rule; returns the controller's
 * index and the ms it took, or fails the test. */
static int converge(const char *after, long *took_ms)
{
    uint32_t mask = running_mask();
    uint64_t t0 = it_mono_ms();
    int ctl = -1;
    int32_t epoch = 0;
    while (!converged_once(mask, &ctl, &epoch)) {
        if (it_mono_ms() - t0 > CONVERGE_WAIT_MS) {
            fprintf(stderr,
                    "  not converged %u ms after %s (want brokers 0x%x live, one "
                    "controller):\n",
                    CONVERGE_WAIT_MS, after, mask);
            print_views(mask);
            CHECK(!"converged");
        }
        it_sleep_ms(50);
    }
    long ms = (long)(it_mono_ms() - t0);
    if (epoch < max_epoch) {
        fprintf(stderr, "  controller epoch went down: %d after %d\n", epoch, max_epoch);
        CHECK(epoch >= max_epoch);
    }
    max_epoch = epoch;
    char why[512] = "";
    if (workload.check(&workload, &cw, why, sizeof(why)) != 0) {
        fprintf(stderr, "  workload %s: %s\n", workload.name, why);
        CHECK(!"workload check");
    }
    if (took_ms != NULL) {
        *took_ms = ms;
    }
    return ctl;
}

/* Waits until a broker other than `old` (and not in `skip_mask`) says it is the controller with an
 * epoch above old_epoch and every other reachable broker outside skip_mask agrees. Returns the
 * new controller's index and the ms since t0 (the fault). */
static int wait_failover(int old, int32_t old_epoch, uint32_t skip_mask, uint64_t t0, long *ms)
{
    for (;;) {
        int found = -1, count = 0;
        bool others_agree = true;
        for (int i = 0; i < NB; i++) {
            if (i == old || (skip_mask & (1u << i)) || !b_running[i] || b_paused[i]) {
                continue;
            }
            struct view v;
            if (!ask(i, &v)) {
                others_agree = false;
                continue;
            }
            if (v.controller) {
                count++;
                if (v.epoch > old_epoch) {
                    found = i;
                } else {
                    others_agree = false;
                }
            }
        }
        if (found >= 0 && count == 1 && others_agree) {
            *ms = (long)(it_mono_ms() - t0);
            return found;
        }
        if (it_mono_ms() - t0 > CONVERGE_WAIT_MS) {
            fprintf(stderr, "  no new controller %u ms after the fault on broker %d\n",
                    CONVERGE_WAIT_MS, old + 1);
            print_views(running_mask());
            CHECK(!"failover");
        }
        it_sleep_ms(20);
    }
}

/* Waits until every broker of `watchers` lists `want` (a mask); returns the ms since t0. */
static long wait_lists(uint32_t watchers, uint32_t want, uint64_t t0)
{
    for (;;) {
        bool ok = true;
        for (int i = 0; i < NB && ok; i++) {
            struct view v;
            if (watchers & (1u << i)) {
                ok = ask(i, &v) && v.live_mask == want;
            }
        }
        if (ok) {
            return (long)(it_mono_ms() - t0);
        }
        if (it_mono_ms() - t0 > CONVERGE_WAIT_MS) {
            fprintf(stderr, "  brokers 0x%x do not list 0x%x\n", watchers, want);
            print_views(running_mask());
            CHECK(!"lists");
        }
        it_sleep_ms(20);
    }
}

/* ---- faults ---- */

static int controller_now(int32_t *epoch)
{
    long ms;
    int ctl = converge("(before a fault)", &ms);
    *epoch = max_epoch;
    return ctl;
}

static void announce(const char *what)
{
    printf("-- %s\n", what);
    fflush(stdout);
    workload.fault(&workload, what);
}

static void fault_kill_controller(void)
{
    int32_t e0;
    int ctl = controller_now(&e0);
    char what[96];
    snprintf(what, sizeof(what), "kill -9 the controller (broker %d, epoch %d)", ctl + 1, e0);
    announce(what);
    uint64_t t0 = it_mono_ms();
    CHECK(nh_proc_kill9(&brokers[ctl]) == 0);
    b_running[ctl] = false;
    long ms;
    int ctl2 = wait_failover(ctl, e0, 0, t0, &ms);
    printf("ok failover: broker %d is the controller %ld ms after the kill (session %u ms)\n",
           ctl2 + 1, ms, SESSION_MS);
    record("failover after kill -9 of the controller", ms);
    CHECK(restart_broker(ctl) == 0);
    long conv;
    int ctl3 = converge("the killed controller's restart", &conv);
    CHECK(ctl3 == ctl2); /* the old controller does not take it back */
    printf("ok restarted: registered, %ld ms to converge; broker %d stays the controller\n", conv,
           ctl3 + 1);
    record("converge after restart of the killed broker", conv);
}

static void fault_pause_controller(void)
{
    int32_t e0;
    int ctl = controller_now(&e0);
    char what[96];
    snprintf(what, sizeof(what), "pause the controller (broker %d) past its session", ctl + 1);
    announce(what);
    uint64_t t0 = it_mono_ms();
    CHECK(nh_proc_pause(&brokers[ctl]) == 0);
    b_paused[ctl] = true;
    long ms;
    int ctl2 = wait_failover(ctl, e0, 0, t0, &ms);
    printf("ok failover: broker %d is the controller %ld ms after the pause\n", ctl2 + 1, ms);
    record("failover after pause of the controller", ms);
    /* the others drop the paused one from their lists */
    long gone = wait_lists(running_mask(), running_mask(), t0);
    printf("ok the paused broker left the lists after %ld ms\n", gone);
    it_sleep_ms(SESSION_MS / 2);
    uint64_t t1 = it_mono_ms();
    CHECK(nh_proc_resume(&brokers[ctl]) == 0);
    b_paused[ctl] = false;
    /* the zombie wakes up believing it is the controller until it learns its session expired */
    long zombie = -1;
    for (;;) {
        struct view v;
        if (ask(ctl, &v) && !v.controller) {
            zombie = (long)(it_mono_ms() - t1);
            break;
        }
        CHECK(it_mono_ms() - t1 < CONVERGE_WAIT_MS);
        it_sleep_ms(10);
    }
    long conv;
    int ctl3 = converge("the paused controller's resume", &conv);
    CHECK(ctl3 == ctl2);
    printf("ok resumed: it stopped saying it is the controller within %ld ms, converged in %ld "
           "ms\n",
           zombie, conv);
    record("zombie controller after SIGCONT", zombie);
    record("converge after resume", conv);
}

/* victim -1: a broker that is not the controller (the CI schedule, so that the case is the same
 * every run); the long schedule also picks the controller. */
static void fault_cut_from_zk(int victim)
{
    int32_t e0;
    int ctl = controller_now(&e0);
    if (victim < 0) {
        victim = (ctl + 1) % NB;
    }
    char what[96];
    snprintf(what, sizeof(what), "cut broker %d%s from the ZooKeeper hosts", victim + 1,
             victim == ctl ? " (the controller)" : "");
    announce(what);
    uint64_t t0 = it_mono_ms();
    CHECK(nh_cut(&net, b_host[victim], zk_host, NZK) == 0);
    uint32_t others = running_mask() & ~(1u << victim);
    long gone = wait_lists(others, others, t0);
    printf("ok the others dropped broker %d after %ld ms\n", victim + 1, gone);
    record("cut from ZooKeeper: others drop it", gone);
    long fo = -1;
    if (victim == ctl) {
        int ctl2 = wait_failover(ctl, e0, 1u << victim, t0, &fo);
        printf("ok failover: broker %d is the controller %ld ms after the cut\n", ctl2 + 1, fo);
        record("failover after cut of the controller from ZooKeeper", fo);
    }
    it_sleep_ms(SESSION_MS / 2);
    CHECK(nh_heal(&net, b_host[victim]) == 0);
    long conv; /* (from the heal: converge starts at once; the workload's check not counted) */
    converge("healing the cut from ZooKeeper", &conv);
    printf("ok healed: broker %d registered again, converged %ld ms after the heal\n", victim + 1,
           conv);
    record("converge after heal of the cut from ZooKeeper", conv);
}

static void fault_isolate_controller(void)
{
    int32_t e0;
    int ctl = controller_now(&e0);
    char what[96];
    snprintf(what, sizeof(what), "cut the controller (broker %d) from every other host", ctl + 1);
    announce(what);
    struct nh_host *all[NZK + NB];
    size_t n = 0;
    for (int i = 0; i < NZK; i++) {
        all[n++] = zk_host[i];
    }
    for (int i = 0; i < NB; i++) {
        if (i != ctl) {
            all[n++] = b_host[i];
        }
    }
    uint64_t t0 = it_mono_ms();
    CHECK(nh_cut(&net, b_host[ctl], all, n) == 0);
    long fo;
    int ctl2 = wait_failover(ctl, e0, 0, t0, &fo);
    printf("ok failover: broker %d is the controller %ld ms after the cut\n", ctl2 + 1, fo);
    record("failover after isolating the controller", fo);
    /* what the isolated one says about itself: it cannot learn of its expiry while cut off; it
     * may step down on its own when its session times out on its side */
    uint64_t hold_until = it_mono_ms() + SESSION_MS;
    long stepped = -1;
    while (it_mono_ms() < hold_until) {
        struct view v;
        if (stepped < 0 && ask(ctl, &v) && !v.controller) {
            stepped = (long)(it_mono_ms() - t0);
        }
        it_sleep_ms(50);
    }
    if (stepped >= 0) {
        printf("ok the isolated broker stopped saying it is the controller %ld ms after the "
               "cut\n",
               stepped);
    } else {
        printf("note the isolated broker still says it is the controller %ld ms after the cut "
               "(two claim it, epochs %d and higher; writes are fenced by the epoch)\n",
               (long)(it_mono_ms() - t0), e0);
    }
    CHECK(nh_heal(&net, b_host[ctl]) == 0);
    long conv; /* (from the heal, as above) */
    int ctl3 = converge("healing the isolated controller", &conv);
    CHECK(ctl3 == ctl2);
    printf("ok healed: converged %ld ms after the heal, broker %d stays the controller\n", conv,
           ctl3 + 1);
    record("converge after heal of the isolated controller", conv);
}

static void fault_kill_zk_leader(void)
{
    int leader = zke_leader(&zk);
    CHECK(leader >= 0);
    char what[96];
    snprintf(what, sizeof(what), "kill -9 the ZooKeeper leader (zk%d)", leader + 1);
    announce(what);
    uint64_t t0 = it_mono_ms();
    CHECK(zkh_kill9(&zk.node[leader]) == 0);
    int l2 = zke_wait_leader(&zk, CONVERGE_WAIT_MS);
    CHECK(l2 >= 0 && l2 != leader);
    long elect = (long)(it_mono_ms() - t0);
    printf("ok zk%d leads %ld ms after the kill\n", l2 + 1, elect);
    record("ZooKeeper election after kill -9 of its leader", elect);
    long conv;
    long before = (long)(it_mono_ms() - t0);
    converge("the ZooKeeper leader's death", &conv);
    printf("ok brokers converged %ld ms after the kill\n", before + conv);
    record("brokers converge after ZooKeeper leader kill", before + conv);
    CHECK(zkh_restart(&zk.node[leader]) == 0);
    CHECK(zke_wait_leader(&zk, CONVERGE_WAIT_MS) >= 0);
    converge("the ZooKeeper node's restart", &conv);
    printf("ok zk%d restarted and follows\n", leader + 1);
}

static void fault_rolling_restart(void)
{
    announce("rolling restart of every broker");
    for (int i = 0; i < NB; i++) {
        int32_t e0;
        int ctl = controller_now(&e0);
        uint64_t t0 = it_mono_ms();
        CHECK(nh_proc_stop(&brokers[i], 20000u * IT_SLOWDOWN) == 0);
        b_running[i] = false;
        CHECK(!nh_proc_log_sanitizer(&brokers[i]));
        long fo = -1;
        if (i == ctl) {
            wait_failover(ctl, e0, 0, t0, &fo);
            record("failover after SIGTERM of the controller", fo);
        }
        CHECK(restart_broker(i) == 0);
        long conv;
        long before = (long)(it_mono_ms() - t0);
        converge("a rolling restart step", &conv);
        long total = before + conv; /* (the workload's check not counted) */
        printf("ok broker %d restarted%s: %ld ms stop to converged%s", i + 1,
               i == ctl ? " (the controller)" : "", total, fo >= 0 ? "" : "\n");
        if (fo >= 0) {
            printf(", failover %ld ms\n", fo);
        }
        record("rolling restart step", total);
    }
}

/* ---- schedule ---- */

static uint32_t rng_state;

static uint32_t rnd(uint32_t n)
{
    rng_state = rng_state * 1103515245u + 12345u;
    return (rng_state >> 8) % n;
}

static void run_round(bool randomized)
{
    int victim = randomized ? (int)rnd(NB) : -1;
    void (*order[6])(void) = {
        fault_kill_controller,    fault_pause_controller, NULL,
        fault_isolate_controller, fault_kill_zk_leader,   fault_rolling_restart};
    int idx[6] = {0, 1, 2, 3, 4, 5};
    if (randomized) {
        for (int k = 5; k > 0; k--) {
            int j = (int)rnd((uint32_t)k + 1);
            int t = idx[k];
            idx[k] = idx[j];
            idx[j] = t;
        }
    }
    for (int k = 0; k < 6; k++) {
        if (idx[k] == 2) {
            fault_cut_from_zk(victim);
        } else {
            order[idx[k]]();
        }
    }
}

/* SLUICE_IT_FAULTS: a comma-separated list of faults run in order, for replaying a sequence that
 * failed ("pause,isolate,kill" ...). Returns the number run, or fails on an unknown name. */
static unsigned run_list(const char *list)
{
    static const struct {
        const char *name;
        void (*fn)(void);
    } faults[] = {{"kill", fault_kill_controller},
                  {"pause", fault_pause_controller},
                  {"isolate", fault_isolate_controller},
                  {"zkleader", fault_kill_zk_leader},
                  {"rolling", fault_rolling_restart}};
    unsigned n = 0;
    while (*list != '\0') {
        size_t len = strcspn(list, ",");
        bool known = false;
        if (len == 5 && strncmp(list, "cutzk", 5) == 0) {
            fault_cut_from_zk(-1);
            known = true;
        }
        for (size_t k = 0; !known && k < sizeof(faults) / sizeof(faults[0]); k++) {
            if (strlen(faults[k].name) == len && strncmp(list, faults[k].name, len) == 0) {
                faults[k].fn();
                known = true;
            }
        }
        if (!known) {
            fprintf(stderr,
                    "FAIL: SLUICE_IT_FAULTS: unknown fault '%.*s' (known: kill, pause, "
                    "cutzk, isolate, zkleader, rolling)\n",
                    (int)len, list);
            exit(1);
        }
        n++;
        list += len;
        list += *list == ',';
    }
    return n;
}

static void summary(void)
{
    printf("\nsummary (session timeout %u ms):\n", SESSION_MS);
    for (size_t i = 0; i < n_measures; i++) {
        bool seen = false;
        for (size_t j = 0; j < i; j++) {
            seen = seen || strcmp(measures[j].what, measures[i].what) == 0;
        }
        if (seen) {
            continue;
        }
        long lo = measures[i].ms, hi = measures[i].ms;
        unsigned cnt = 0;
        for (size_t j = i; j < n_measures; j++) {
            if (strcmp(measures[j].what, measures[i].what) == 0) {
                lo = measures[j].ms < lo ? measures[j].ms : lo;
                hi = measures[j].ms > hi ? measures[j].ms : hi;
                cnt++;
            }
        }
        printf("  %-55s n=%-3u %6ld..%ld ms\n", measures[i].what, cnt, lo, hi);
    }
}

int main(void)
{
    int skip = it_preflight();
    if (skip == 0) {
        skip = nh_available();
    }
    if (skip == 0) {
        skip = zkh_available();
    }
    if (skip != 0) {
        return skip;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    workload = cw_noop; /* (its check runs at every convergence, the first included) */
    uint64_t t_start = it_mono_ms();
    CHECK(nh_net_init(&net) == 0);
    const char *zk_ips[NZK];
    int zk_fds[NZK];
    for (int i = 0; i < NZK; i++) {
        char name[8];
        snprintf(name, sizeof(name), "zk%d", i + 1);
        CHECK(nh_host_add(&net, name, 11u + (uint32_t)i, &zk_host[i]) == 0);
        zk_ips[i] = zk_host[i]->ip;
        zk_fds[i] = zk_host[i]->nsfd;
    }
    for (int i = 0; i < NB; i++) {
        char name[8];
        snprintf(name, sizeof(name), "b%d", i + 1);
        CHECK(nh_host_add(&net, name, 21u + (uint32_t)i, &b_host[i]) == 0);
    }
    CHECK(nh_host_add(&net, "client", 100u, &client_host) == 0);
    CHECK(nh_enter(client_host) == 0); /* this process talks from the client host from now on */
    printf("ok hosts: zk %s..%s, brokers %s..%s, client %s (%llu ms)\n", zk_host[0]->ip,
           zk_host[NZK - 1]->ip, b_host[0]->ip, b_host[NB - 1]->ip, client_host->ip,
           (unsigned long long)(it_mono_ms() - t_start));

    uint64_t t = it_mono_ms();
    CHECK(zke_start(&zk, net.root, NZK, zk_ips, zk_fds) == 0);
    printf("ok ZooKeeper ensemble %s, zk%d leads (%llu ms)\n", zk.connect, zke_leader(&zk) + 1,
           (unsigned long long)(it_mono_ms() - t));
    snprintf(cluster_arg, sizeof(cluster_arg), "zk://%s/sluice-faults", zk.connect);

    t = it_mono_ms();
    for (int i = 0; i < NB; i++) {
        CHECK(start_broker(i) == 0);
    }
    long conv;
    int ctl = converge("the start", &conv);
    printf("ok three brokers, broker %d the controller (epoch %d), %llu ms\n", ctl + 1, max_epoch,
           (unsigned long long)(it_mono_ms() - t));

    /* the workload: SLUICE_IT_WORKLOAD picks one (repl by default; noop: the harness's own
     * checks alone) */
    const char *wname = getenv("SLUICE_IT_WORKLOAD");
    if (wname == NULL || wname[0] == '\0') {
        wname = "repl";
    }
    if (strcmp(wname, "repl") == 0) {
        workload = cw_repl;
    } else if (strcmp(wname, "noop") != 0) {
        fprintf(stderr, "FAIL: SLUICE_IT_WORKLOAD=%s: no such workload (known: repl, noop)\n",
                wname);
        return 1;
    }
    printf("workload %s\n", workload.name);
    size_t blen = 0;
    cw.n_brokers = NB;
    for (int i = 0; i < NB; i++) {
        cw.addr[i] = b_addr[i];
        blen += (size_t)snprintf(bootstrap + blen, sizeof(bootstrap) - blen, "%s%s",
                                 i > 0 ? "," : "", b_addr[i]);
    }
    cw.bootstrap = bootstrap;
    CHECK(workload.start(&workload, &cw) == 0);

    const char *lg = getenv("SLUICE_IT_LONG");
    bool longrun = lg != NULL && lg[0] != '\0' && strcmp(lg, "0") != 0;
    const char *seed = getenv("SLUICE_IT_SEED");
    rng_state = seed != NULL ? (uint32_t)strtoul(seed, NULL, 10) : (uint32_t)it_wall_ms();
    if (longrun) {
        printf("long schedule: %u rounds of 6 faults, seed %u (SLUICE_IT_SEED=%u replays the "
               "order)\n",
               LONG_ROUNDS, rng_state, rng_state);
    }
    const char *list = getenv("SLUICE_IT_FAULTS");
    unsigned rounds = longrun ? LONG_ROUNDS : 1u, n_faults = rounds * 6u;
    if (list != NULL && list[0] != '\0') {
        n_faults = run_list(list);
    } else {
        for (unsigned r = 0; r < rounds; r++) {
            run_round(longrun && r > 0);
        }
    }

    CHECK(workload.stop(&workload) == 0);
    char why[512] = "";
    if (workload.check(&workload, &cw, why, sizeof(why)) != 0) {
        fprintf(stderr, "  workload %s: %s\n", workload.name, why);
        CHECK(!"final workload check");
    }

    /* the operator's view from every broker */
    for (int i = 0; i < NB; i++) {
        char cmd[512], out[8192];
        snprintf(cmd, sizeof(cmd), "%s --broker %s cluster status 2>&1", SLUICE_CLI_PATH,
                 b_addr[i]);
        FILE *p = popen(cmd, "r");
        CHECK(p != NULL);
        size_t got = fread(out, 1, sizeof(out) - 1, p);
        out[got] = '\0';
        int st = pclose(p);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        CHECK(strstr(out, "3 live brokers") != NULL);
        if (i == 0) {
            printf("ok sluice cluster status:\n%s", out);
        }
    }
    printf("ok sluice cluster status from every broker lists three\n");

    for (int i = 0; i < NB; i++) {
        CHECK(nh_proc_stop(&brokers[i], 20000u * IT_SLOWDOWN) == 0);
        b_running[i] = false;
    }
    for (int i = 0; i < NB; i++) {
        CHECK(!nh_proc_log_sanitizer(&brokers[i]));
    }
    summary();
    printf("all cluster fault cases passed (%u faults, %llu ms)\n", n_faults,
           (unsigned long long)(it_mono_ms() - t_start));
    zke_cleanup(&zk);
    nh_net_cleanup(&net);
    return 0;
}
