/* main.c - sluiced: the Sluice broker process.
 *
 * Start-up: load the configuration (defaults < INI file < SLUICE_*
 * environment < flags), probe io_uring (exit 1 naming the cause and the fix
 * when it is unavailable), open the catalog (recovering every shard: logs one
 * line per shard that had to truncate a torn tail), listen, run. SIGTERM or
 * SIGINT: stop accepting, finish in-flight requests, close every shard (which
 * fsyncs), exit 0. Under systemd (Type=notify) the service manager hears of
 * each step through broker/daemon.c: READY=1 once listening, a status line
 * and watchdog pings from the tick, STOPPING=1.
 */
#include "broker/api/api.h"
#include "broker/api/eb.h"
#include "broker/api/history.h"
#include "broker/security.h"
#include "broker/config.h"
#include "broker/daemon.h"
#include "broker/version.h"
#include "broker/engine/catalog.h"
#include "broker/engine/engine.h"
#include "broker/engine/events.h"
#include "broker/engine/workers.h"
#include "broker/native/handlers.h"
#include "broker/native/native.h"
#include "broker/push/push.h"
#include "broker/api/sns.h"
#include "broker/cluster/join.h"
#include "broker/cluster/member.h"
#include "broker/cluster/replicas.h"
#include "broker/native/peer.h"
#include "broker/net/net.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/fileio.h"
#include "common/log.h"
#include "common/ring.h"

#include <malloc.h>
#include <inttypes.h>
#include <sched.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#define RING_ENTRIES 1024


/* Descriptors open_files_max leaves to the broker's own besides connections:
 * listeners, each worker's ring and eventfds (3 x up to 64 workers), the
 * signalfd, the catalog's short-lived files, a store or a shard being opened
 * (the stores' and shards' budgets come out of open_files_max: catalog.c). */
#define FD_RESERVE 256u
#define OPEN_FILES_MIN 64u /* below this, derived budgets are a warning */

/* Connections and shard files need descriptors: lifts the soft RLIMIT_NOFILE
 * to the hard one, then settles open_files_max: 0 becomes what the limit
 * leaves after max_connections and FD_RESERVE; a set value above that is
 * refused (false, logged: it could only end in EMFILE). *limit: the soft
 * limit now. */
static bool fd_budget(struct sl_broker_config *cfg, uint64_t *limit)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        rl.rlim_cur = rl.rlim_max = 1024; /* not expected; the classic default */
    }
    if (rl.rlim_cur < rl.rlim_max) {
        rlim_t want = rl.rlim_max;
        rl.rlim_cur = want;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
            (void)getrlimit(RLIMIT_NOFILE, &rl);
        }
    }
    uint64_t soft = rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_cur;
    *limit = soft;
    uint64_t reserve = (uint64_t)cfg->max_connections + FD_RESERVE;
    uint64_t room = soft > reserve ? soft - reserve : 0;
    room = room > 1000000000u ? 1000000000u : room; /* the setting's range */
    if (cfg->open_files_max > room) {
        sl_error("broker",
                 "open_files_max = %u (%s) is above what the open-file limit allows: "
                 "%" PRIu64 " - max_connections %u - %u for the broker's own = %" PRIu64
                 "; raise LimitNOFILE (ulimit -n) or lower open_files_max",
                 cfg->open_files_max, sl_config_source(cfg, "open_files_max"), soft,
                 cfg->max_connections, FD_RESERVE, room);
        return false;
    }
    if (cfg->open_files_max == 0 && room < OPEN_FILES_MIN) {
        room = soft / 2;
        sl_warn("broker",
                "open-file limit %" PRIu64 " is below max_connections (%u) + %u + %u for "
                "shard files; open_files_max = %" PRIu64 ": raise LimitNOFILE (ulimit -n) or "
                "lower max_connections",
                soft, cfg->max_connections, FD_RESERVE, OPEN_FILES_MIN, room);
    }
    if (cfg->open_files_max == 0) {
        cfg->open_files_max = (uint32_t)room;
    }
    return true;
}

/* Tests only: SLUICE_TEST_FAULT_FSYNC_AFTER=N fails (EIO) every fdatasync of every loop
 * from the Nth one on (common/ring.h fault injection): a disk that dies under a running
 * broker (tests/cluster/disk_fault.c). Said loudly: never set in production. */
#define TEST_FAULT_ENV "SLUICE_TEST_FAULT_FSYNC_AFTER"

static void test_faults_arm(struct sl_ring *ring)
{
    const char *v = getenv(TEST_FAULT_ENV);
    if (v == NULL || v[0] == '\0') {
        return;
    }
    char *end = NULL;
    unsigned long long nth = strtoull(v, &end, 10);
    if (*end != '\0' || nth == 0) {
        sl_error("broker", "%s=%s is not a positive count: ignored", TEST_FAULT_ENV, v);
        return;
    }
    struct sl_ring_faults f = {.op = SL_FAULT_FSYNC, .nth = nth, .err = EIO, .persistent = true};
    sl_ring_faults_arm(ring, &f);
    sl_error("broker", "TEST FAULT INJECTION (%s): every fdatasync from the %llu-th on fails "
             "with EIO; unset it outside tests", TEST_FAULT_ENV, nth);
}

static void net_config_from(const struct sl_broker_config *bc, struct sl_net_config *nc)
{
    memset(nc, 0, sizeof(*nc));
    nc->max_connections = bc->max_connections;
    nc->conn_buffer_bytes = bc->conn_buffer_bytes;
    nc->idle_timeout_ms = bc->idle_timeout_ms;
    nc->request_timeout_ms = bc->frame_timeout_ms;
    nc->shutdown_timeout_ms = bc->shutdown_timeout_ms;
}

static void engine_config_from(const struct sl_broker_config *bc, struct sl_engine_config *ec)
{
    memset(ec, 0, sizeof(*ec));
    ec->fetch_wait_max_ms = bc->fetch_wait_max_ms;
    /* a fetch answer fits one native frame */
    ec->fetch_bytes_max = bc->max_frame_bytes - SL_NATIVE_FRAME_SLACK;
    ec->batch_bytes_max = bc->batch_bytes_max;
    /* (in a cluster a stream is created through ZooKeeper, by CreateStream: a produce that
     * made one in this broker's catalog alone would not be replicated) */
    ec->auto_create_streams = bc->auto_create_streams && bc->cluster[0] == '\0';
    ec->dedup_window_ms = bc->dedup_window_ms;
    ec->default_shards = bc->default_shards;
    ec->retention_check_ms = bc->retention_check_ms;
}

/* What the loop's hooks reach: the engines' events and the service manager. */
struct broker {
    struct sl_engine *engine;
    struct sl_net *net;       /* NULL until serving */
    struct sl_security *sec;  /* TLS contexts and auth rules; NULL until serving */
    struct sl_api *api;       /* the HTTP front-end; NULL without an HTTP listener */
    struct sl_push *push;     /* push targets; NULL when off */
    struct sl_member *member; /* cluster membership; NULL for a single broker */
    struct sl_ctrl_run *ctrl; /* running for cluster controller; NULL for a single broker */
    struct sl_peers *peers;   /* links to the other brokers; NULL for a single broker */
    struct sl_replicas *replicas; /* shard replicas; NULL for a single broker */
    struct sl_workers *workers;   /* the shard owners (conn_workers: their loops serve too) */
    struct sl_daemon daemon;
};

static void broker_tick(void *ctx, uint64_t now_ms)
{
    struct broker *b = ctx;
    sl_events_tick(b->engine, now_ms);
    sl_daemon_tick(&b->daemon, now_ms);
    if (b->api != NULL) {
        sl_api_tick(b->api, now_ms);
    }
    sl_push_tick(b->push, now_ms);
    if (b->member != NULL) {
        sl_member_tick(b->member, now_ms);
    }
    if (b->ctrl != NULL) {
        sl_ctrl_run_tick(b->ctrl, now_ms);
    }
    sl_replicas_tick(b->replicas, now_ms);
}

/* The replicas' transport: the peer links (same callback shape). */
static int peers_send(void *ctx, const char *addr, const char *stream, uint32_t shard,
                      const struct sl_repl_msg *msg, uint32_t extra_wait_ms,
                      sl_replicas_reply_fn cb, void *cb_ctx)
{
    return sl_peers_send(ctx, addr, stream, shard, msg, extra_wait_ms, cb, cb_ctx);
}

static int peers_produce(void *ctx, int32_t to, const char *addr, const char *stream,
                         uint32_t shard, const uint8_t *batch, size_t len, bool caller_routed,
                         sl_engine_forwarded_fn cb, void *cb_ctx)
{
    return sl_peers_produce(ctx, to, addr, stream, shard, batch, len, caller_routed, cb, cb_ctx);
}

/* Peer links and shard replicas, once registered. Errors: SL_ESYS, SL_ENOMEM. */
static int replication_start(struct broker *b, struct sl_ring *ring,
                             const struct sl_broker_config *cfg)
{
    /* The peers log in and speak TLS as any client of these brokers must: the same
     * settings on every broker of a cluster. */
    const char *creds = cfg->peer_credentials_file;
    if (creds[0] != '\0') {
        struct stat st;
        int fd = open(creds, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &st) != 0) {
            sl_error("broker", "cluster: peer_credentials_file %s: %s", creds, strerror(errno));
            if (fd >= 0) {
                close(fd);
            }
            return SL_EINVAL;
        }
        close(fd);
        if ((st.st_mode & 077) != 0) {
            sl_error("broker",
                     "cluster: peer_credentials_file %s is readable by others (mode %03o): "
                     "chmod 600 it",
                     creds, (unsigned)(st.st_mode & 0777));
            return SL_EINVAL;
        }
    }
    struct sl_peers_config pc = {
        .self = (int32_t)cfg->node_id,
        .credentials_file = creds[0] != '\0' ? creds : NULL,
        .tls = cfg->tls,
        .tls_ca_file = cfg->peer_tls_ca_file[0] != '\0' ? cfg->peer_tls_ca_file : NULL,
        .tls_cert_file = cfg->tls && cfg->tls_client_auth == SL_TLS_CLIENT_AUTH_REQUIRE
                             ? cfg->tls_cert_file
                             : NULL,
        .tls_key_file = cfg->tls && cfg->tls_client_auth == SL_TLS_CLIENT_AUTH_REQUIRE
                            ? cfg->tls_key_file
                            : NULL,
    };
    int rc = sl_peers_open(ring, &pc, &b->peers);
    if (rc != SL_OK) {
        return rc;
    }
    struct sl_replicas_transport t = {.ctx = b->peers, .send = peers_send,
                                     .produce = peers_produce};
    struct sl_replicas_config rcfg = {.self = (int32_t)cfg->node_id,
                                      .min_insync = cfg->min_insync_replicas,
                                      .replica_lag_ms = cfg->replica_lag_ms,
                                      .session_timeout_ms = cfg->cluster_session_timeout_ms,
                                      .reassign_throttle = cfg->reassign_throttle_bytes};
    rc = sl_replicas_open(b->engine, b->member, &t, &rcfg, &b->replicas);
    if (rc != SL_OK) {
        sl_peers_close(b->peers);
        b->peers = NULL;
    }
    return rc;
}

/* Before the network goes: what followers wait on is answered, reads for them end, and the
 * replicas' writes and cuts at the shard owners complete (within shutdown_timeout_ms, as
 * in-flight requests: a write still out then keeps the replicas' memory to the exit). */
static void replication_stop(struct broker *b, struct sl_ring *ring, uint32_t wait_ms)
{
    if (b->replicas == NULL) {
        return;
    }
    sl_replicas_stop(b->replicas);
    uint64_t deadline = sl_clock_mono_ms() + wait_ms;
    while (sl_replicas_busy(b->replicas) && sl_clock_mono_ms() < deadline) {
        sl_ring_run(ring, 1, 10u * 1000u * 1000u);
    }
    sl_peers_close(b->peers); /* (its callbacks run now, while the replicas live) */
    b->peers = NULL;
}

static void broker_stop(void *ctx)
{
    struct broker *b = ctx;
    sl_daemon_stopping(&b->daemon);
    sl_replicas_resign(b->replicas); /* (before the drain: see there) */
    sl_push_stop(b->push);
    sl_events_stop(b->engine);
}

static void broker_turn(void *ctx)
{
    struct broker *b = ctx;
    sl_events_turn(b->engine);
}

/* SIGHUP: certificates and auth rules read again. A reload that fails keeps
 * what is in force (security.h), so the broker is ready again either way. */
static void broker_reload(void *ctx)
{
    struct broker *b = ctx;
    sl_daemon_reloading(&b->daemon);
    sl_security_reload(b->sec);
    sl_daemon_ready(&b->daemon);
}

/* The service's status line (systemctl status): "serving: 3 streams, 12
 * shards, 5 connections". */
static void broker_describe(void *ctx, char *out, uint32_t cap)
{
    struct broker *b = ctx;
    uint32_t streams = 0, shards = 0;
    for (struct sl_stream *st = sl_catalog_first(b->engine->catalog); st != NULL;
         st = st->next) {
        streams += !st->deleted;
        shards += st->deleted ? 0 : st->shard_count;
    }
    uint32_t conns = b->net != NULL ? sl_net_conn_count(b->net, NULL) : 0;
    snprintf(out, cap, "serving: %u stream%s, %u shard%s, %u connection%s", streams,
             streams == 1 ? "" : "s", shards, shards == 1 ? "" : "s", conns,
             conns == 1 ? "" : "s");
}

/* The network loop with its listeners, run until SIGTERM/SIGINT. */
/* The native protocol's ApiCall into the HTTP front-end (the two do not include each
 * other; the function types match field by field). */
static int api_call(void *api, struct sl_conn *via, const char *principal, const char *service,
                    const char *action, const void *body, size_t len, sl_native_api_done done,
                    void *ctx, char *why, size_t why_len)
{
    return sl_api_internal_call(api, via, principal, service, action, body, len, done, ctx, why,
                                why_len);
}

/* sl_net_call_fn over the workers: fn(arg) on worker `loop`'s thread. */
static void call_on_worker(void *ctx, uint32_t loop, void (*fn)(void *arg), void *arg)
{
    sl_workers_call(ctx, loop, fn, arg);
}

/* conn_workers: native connections served on every worker's loop. */
static int spread_connections(struct sl_net *net, struct sl_ring *home, struct sl_workers *ws)
{
    uint32_t n = sl_workers_count(ws);
    struct sl_ring *rings[SL_NET_LOOPS_MAX];
    _Static_assert(SL_WORKERS_MAX <= SL_NET_LOOPS_MAX, "a loop per worker");
    for (uint32_t i = 0; i < n; i++) {
        rings[i] = sl_workers_ring(ws, home, i);
    }
    int rc = sl_net_spread(net, n, rings, call_on_worker, ws);
    if (rc != SL_OK) {
        sl_error("broker", "cannot spread connections over %u workers: %s", n, sl_strerror(rc));
    } else if (n > 1) {
        sl_info("broker", "native connections served on %u workers (conn_workers)", n);
    }
    return rc;
}

static int serve(struct sl_ring *ring, const struct sl_broker_config *cfg, struct broker *b)
{
    struct sl_engine *engine = b->engine;
    struct sl_net_config ncfg;
    net_config_from(cfg, &ncfg);
    struct sl_security sec;
    char why[512] = "";
    int rc = sl_security_init(&sec, cfg, why, sizeof(why));
    if (rc != SL_OK) {
        sl_error("broker", "security settings: %s", why);
        return rc;
    }
    b->sec = &sec;
    struct sl_net_hooks hooks = {.tick = broker_tick, .stop = broker_stop,
                                 .turn = broker_turn, .ctx = b,
                                 .reload = broker_reload, .reload_ctx = b};
    struct sl_native native = {.cfg = {.max_frame_bytes = cfg->max_frame_bytes,
                                       .max_inflight = cfg->max_inflight},
                               .engine = engine, .auth = cfg->auth ? &sec.auth : NULL};
    sl_native_auth_init(&native);
    if (cfg->push) {
        rc = sl_push_open(engine, ring, cfg->data, &b->push, why, sizeof(why));
        if (rc != SL_OK) {
            sl_error("broker", "push targets: %s", why);
            sl_security_fini(&sec);
            return rc;
        }
        native.push = b->push;
    }
    if (cfg->cluster[0] != '\0') {
        /* Registered before the listeners open: a node id held by a live broker
         * refuses the start before this one serves anything. */
        sl_daemon_status(&b->daemon, "joining the cluster (ZooKeeper)");
        rc = sl_cluster_join(ring, cfg, SL_BROKER_VERSION, &b->member, why, sizeof(why));
        if (rc != SL_OK) {
            sl_error("broker", "cluster: %s", why);
            sl_push_close(b->push);
            b->push = NULL;
            sl_security_fini(&sec);
            return rc;
        }
        native.member = b->member;
        /* Every broker runs for controller; the one that wins the election watches the
         * brokers and keeps the shards' leaders (docs/REPLICATION.md, "Controller"). */
        rc = sl_cluster_controller_start(cfg, &b->ctrl, why, sizeof(why));
        if (rc != SL_OK) {
            sl_error("broker", "cluster: the controller: %s", why);
            sl_cluster_leave(ring, b->member);
            b->member = NULL;
            sl_push_close(b->push);
            b->push = NULL;
            sl_security_fini(&sec);
            return rc;
        }
        native.ctrl = b->ctrl;
        rc = replication_start(b, ring, cfg);
        if (rc != SL_OK) {
            sl_error("broker", "cluster: replication cannot start: %s", sl_strerror(rc));
            sl_ctrl_run_stop(b->ctrl);
            b->ctrl = NULL;
            sl_cluster_leave(ring, b->member);
            b->member = NULL;
            sl_push_close(b->push);
            b->push = NULL;
            sl_security_fini(&sec);
            return rc;
        }
        native.replicas = b->replicas;
    }
    struct sl_net *net = NULL;
    rc = sl_net_init(&net, ring, &ncfg, &hooks);
    sec.net = net;
    uint32_t port = 0;
    if (rc == SL_OK) {
        struct sl_listener_config lc = {.host = cfg->host, .port = cfg->port,
                                        .max_inflight = cfg->max_inflight,
                                        .proto = &sl_native_proto, .ctx = &native,
                                        .tls = sec.native};
        rc = sl_net_listen(net, &lc, &port);
    }
    const uint32_t native_port = port;
    struct sl_api api = {.cfg = {.header_bytes_max = cfg->http_header_bytes_max,
                                 .body_bytes_max = cfg->http_body_bytes_max,
                                 .max_inflight = cfg->max_inflight,
                                 .data_dir = cfg->data, .version = SL_BROKER_VERSION,
                                 .ui = cfg->ui, .native_port = port,
                                 .http_port = cfg->http_port},
                         .engine = engine, .net = net, .ring = ring,
                         .member = b->member,
                         .replicas = b->replicas,
                         .auth = cfg->auth ? &sec.auth : NULL,
                         .started_ms = sl_clock_wall_ms()};
    if (rc == SL_OK && cfg->http_port != 0) {
        api.history = sl_history_new(cfg->ui_sample_interval_ms); /* NULL: no charts */
        rc = sl_sns_open(cfg->data, &api.sns, why, sizeof(why));
        if (rc != SL_OK) {
            sl_error("broker", "SNS subscriptions: %s", why);
        }
    }
    if (rc == SL_OK && cfg->http_port != 0) {
        api.push = b->push;
        b->api = &api;
        native.api_call = api_call;
        native.api_ctx = &api;
        struct sl_listener_config lc = {.host = cfg->host, .port = cfg->http_port,
                                        .max_inflight = cfg->max_inflight,
                                        .proto = &sl_api_proto, .ctx = &api,
                                        .tls = sec.http};
        rc = sl_net_listen(net, &lc, &port);
    }
    if (rc == SL_OK && cfg->conn_workers) {
        rc = spread_connections(net, ring, b->workers);
    }
    if (rc == SL_OK) {
        /* Written once every listener is bound: whoever waits for the file
         * (tests, scripts) may then use any of the ports. */
        rc = sl_net_write_port_file(cfg->port_file, native_port);
        if (rc != SL_OK) {
            sl_error("broker", "cannot write the port file %s: %s; check that its directory "
                     "exists and is writable", cfg->port_file, strerror(errno));
        }
    }
    if (rc == SL_OK) {
        /* Listening (connections wait in the backlog) with the catalog
         * loaded: serving from the loop's first turn. */
        b->net = net;
        sl_daemon_ready(&b->daemon);
        rc = sl_net_run(net);
    }
    replication_stop(b, ring, cfg->shutdown_timeout_ms);
    b->net = NULL;
    b->sec = NULL;
    b->api = NULL;
    sl_net_fini(net);
    sl_native_produce_fini(&native); /* no connection is left to use its ops */
    sl_push_close(b->push); /* after the network: no request reaches it any more */
    b->push = NULL;
    sl_ctrl_run_stop(b->ctrl); /* its session closes: another broker takes over now */
    b->ctrl = NULL;
    sl_cluster_leave(ring, b->member); /* the session closes: peers see it leave now */
    b->member = NULL;
    sl_replicas_close(b->replicas); /* (after the store: its callbacks ran) */
    b->replicas = NULL;
    sl_history_free(api.history);
    sl_sns_close(api.sns);
    sl_eb_free(&api);
    sl_security_fini(&sec);
    return rc;
}

int main(int argc, char **argv)
{
    /* Request and fetch buffers of up to a few MiB come and go per request:
     * serve them from the heap (reused) rather than fresh mmaps, whose page
     * faults cost more than the copy they hold (measured with perf). */
    mallopt(M_MMAP_THRESHOLD, 64 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
    if (argc >= 2 && strcmp(argv[1], "--hash-password") == 0) {
        return sl_security_hash_password(argc, argv);
    }
    struct sl_broker_config cfg;
    char err[512] = "";
    int help = 0;
    int rc = sl_config_load(&cfg, argc, argv, &help, err, sizeof(err));
    if (help) {
        sl_config_fini(&cfg);
        return 0;
    }
    if (rc != SL_OK) {
        fprintf(stderr, "sluiced: %s\n", err);
        fprintf(stderr, "sluiced: see sluiced --help\n");
        sl_config_fini(&cfg);
        return 2;
    }
    if (cfg.print_config) {
        sl_config_print(stdout, &cfg);
        sl_config_fini(&cfg);
        return fflush(stdout) == 0 ? 0 : 1;
    }
    sl_log_set_level(cfg.log_level);
    sl_log_set_format(cfg.log_format);
    uint64_t nofile = 0;
    if (!fd_budget(&cfg, &nofile)) {
        sl_config_fini(&cfg);
        return 2;
    }
    char why[512] = "";
    if (sl_ring_probe(why, sizeof(why)) != SL_OK) {
        sl_error("broker", "%s", why);
        sl_config_fini(&cfg);
        return 1;
    }
    struct sl_ring ring;
    rc = sl_ring_init(&ring, RING_ENTRIES);
    if (rc != SL_OK) {
        sl_error("broker", "cannot set up io_uring: %s", sl_strerror(rc));
        sl_config_fini(&cfg);
        return 1;
    }
    test_faults_arm(&ring); /* before the workers: they copy its plan */
    uint32_t nworkers = cfg.workers;
    if (nworkers == 0) {
        /* The cores this process may run on (taskset, a container's cpuset),
         * not all the machine has. */
        cpu_set_t set;
        long cpus = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set)
                                                               : sysconf(_SC_NPROCESSORS_ONLN);
        nworkers = cpus < 1 ? 1 : cpus > (long)SL_WORKERS_MAX ? SL_WORKERS_MAX : (uint32_t)cpus;
    }
    struct sl_workers *workers = NULL;
    rc = sl_workers_start(nworkers, RING_ENTRIES, &ring, &workers);
    if (rc != SL_OK) {
        sl_error("broker", "cannot start %u workers: %s", nworkers, sl_strerror(rc));
        sl_ring_fini(&ring);
        sl_config_fini(&cfg);
        return 1;
    }
    struct sl_catalog_config cc;
    memset(&cc, 0, sizeof(cc));
    cc.workers = workers;
    cc.data_dir = cfg.data;
    sl_config_shard(&cfg, &cc.shard);
    sl_config_ckpt(&cfg, &cc.ckpt);
    sl_qstate_config_default(&cc.qstate);
    cc.qstate.groups_max = cfg.queue_groups_max;
    /* flush = interval covers queue acks and delivery counts too */
    cc.qstate.sync_interval_ms = cfg.flush == SL_FLUSH_INTERVAL ? cfg.flush_interval_ms : 0;
    cc.default_retention_hours = cfg.default_retention_hours;
    cc.streams_max = cfg.streams_max;
    cc.shards_max = cfg.shards_max;
    cc.open_files_max = cfg.open_files_max;
    struct sl_engine engine;
    memset(&engine, 0, sizeof(engine));
    struct broker broker = {.engine = &engine, .workers = workers};
    sl_daemon_init(&broker.daemon, broker_describe, &broker);
    cc.listener = sl_events_shard_listener;
    cc.stream_free = sl_events_stream_free;
    cc.stream_free_ctx = &engine;
    char shard_why[512];
    if (sl_shard_config_check(&cc.shard, shard_why, sizeof(shard_why)) != SL_OK) {
        sl_error("broker", "invalid shard settings: %s", shard_why);
        sl_workers_stop(workers);
        sl_ring_fini(&ring);
        sl_config_fini(&cfg);
        return 2;
    }
    if (cc.shard.io_mode == SL_IO_DIRECT) {
        /* Said once here, naming the fix, rather than by every shard's first write. */
        rc = sl_mkdir_p(cfg.data);
        if (rc != SL_OK) {
            snprintf(shard_why, sizeof(shard_why), "cannot create data directory %s: %s",
                     cfg.data, sl_strerror(rc));
        } else {
            rc = sl_shard_probe_direct(cfg.data, shard_why, sizeof(shard_why));
        }
        if (rc != SL_OK) {
            sl_error("broker", "%s", shard_why);
            sl_workers_stop(workers);
            sl_ring_fini(&ring);
            sl_config_fini(&cfg);
            return 2;
        }
    }
    sl_info("broker", "sluiced starting: data %s, flush %s, io_mode %s, %u worker%s", cfg.data,
            cfg.flush == SL_FLUSH_ALWAYS ? "always" : "interval",
            cc.shard.io_mode == SL_IO_DIRECT ? "direct" : "buffered", nworkers,
            nworkers == 1 ? "" : "s");
    sl_info("broker",
            "limits: streams_max %u, shards_max %u, open_files_max %u (open-file limit "
            "%" PRIu64 ", max_connections %u)",
            cfg.streams_max, cfg.shards_max, cfg.open_files_max, nofile, cfg.max_connections);
    sl_daemon_status(&broker.daemon, "opening the data directory (recovering shards)");
    struct sl_catalog *catalog = NULL;
    rc = sl_catalog_open(&ring, &cc, &catalog);
    if (rc != SL_OK) {
        sl_error("broker", "cannot open the data directory %s (%s): the reason is logged above",
                 cfg.data, sl_errname(rc));
        sl_workers_stop(workers);
        sl_ring_fini(&ring);
        sl_config_fini(&cfg);
        return 1;
    }
    struct sl_engine_config ecfg;
    engine_config_from(&cfg, &ecfg);
    rc = sl_engine_init(&engine, &ecfg, catalog);
    if (rc == SL_OK) {
        rc = serve(&ring, &cfg, &broker);
    }
    sl_catalog_close(catalog); /* fsyncs every shard */
    sl_workers_stop(workers);
    sl_engine_fini(&engine);
    sl_ring_fini(&ring);
    sl_config_fini(&cfg);
    if (rc != SL_OK) {
        sl_error("broker", "exiting: %s", sl_strerror(rc));
        return 1;
    }
    sl_info("broker", "stopped cleanly");
    return 0;
}
