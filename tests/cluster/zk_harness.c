/* zk_harness.c - a real ZooKeeper server, or an ensemble, for the cluster tests (see
 * zk_harness.h). */
#include "zk_harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sched.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ZKH_JAR           "/usr/share/java/zookeeper.jar"
#define ZKH_START_WAIT_MS 20000u /* a cold JVM on a loaded CI machine: ~1 s normally */

static struct zkh *registry[8];
static struct zke *ens_registry[2];

uint64_t zkh_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(uint32_t ms)
{
    struct timespec ts = {ms / 1000u, (long)(ms % 1000u) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static const char *java_path(void)
{
    const char *j = getenv("JAVA");
    return j != NULL && j[0] != '\0' ? j : "/usr/bin/java";
}

int zkh_available(void)
{
    if (access(java_path(), X_OK) != 0 || access(ZKH_JAR, R_OK) != 0) {
        fprintf(stderr,
                "SKIP: no ZooKeeper here (%s: %s, %s: %s); install it with "
                "`apt-get install zookeeper` (deploy/install-test-deps.sh does)\n",
                java_path(), access(java_path(), X_OK) == 0 ? "ok" : "missing", ZKH_JAR,
                access(ZKH_JAR, R_OK) == 0 ? "ok" : "missing");
        return 77;
    }
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

static uint32_t free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    uint32_t port = 0;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0) {
        port = ntohs(sa.sin_port);
    }
    if (fd >= 0) {
        close(fd);
    }
    return port;
}

/* Sends a four-letter word to host:port and reads the answer (NUL-terminated) into buf.
 * Returns the bytes read, or -1. A paused server accepts (the kernel does) but never answers:
 * 1 s timeouts. */
static ssize_t four_letters(const char *host, uint32_t port, const char *word, char *buf,
                            size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host[0] != '\0' ? host : "127.0.0.1", &sa.sin_addr) != 1) {
        close(fd);
        return -1;
    }
    struct timeval tv = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    ssize_t got = -1;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        write(fd, word, strlen(word)) == (ssize_t)strlen(word)) {
        got = 0;
        ssize_t n;
        while ((size_t)got < cap - 1 && (n = read(fd, buf + got, cap - 1 - (size_t)got)) > 0) {
            got += n;
        }
    }
    buf[got > 0 ? got : 0] = '\0';
    close(fd);
    return got;
}

/* The four-letter word "ruok": "imok" once the server runs (before it has a quorum). */
static int ruok(const struct zkh *z)
{
    char buf[8];
    return four_letters(z->host, z->port, "ruok", buf, sizeof(buf)) == 4 &&
           memcmp(buf, "imok", 4) == 0;
}

int zkh_mode(const struct zkh *z, char *mode, size_t cap)
{
    char buf[1024];
    mode[0] = '\0';
    if (z->pid == 0 || four_letters(z->host, z->port, "srvr", buf, sizeof(buf)) <= 0) {
        return -1;
    }
    const char *m = strstr(buf, "Mode: ");
    if (m != NULL) {
        m += 6;
        size_t len = strcspn(m, "\r\n");
        snprintf(mode, cap, "%.*s", (int)len, m);
    }
    return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void log_tail(const struct zkh *z)
{
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "tail -n 20 '%s/zk.log' >&2", z->root);
    if (system(cmd) != 0) {
        fprintf(stderr, "  (no ZooKeeper log)\n");
    }
}

static int spawn_proc(struct zkh *z)
{
    char cfg[128], log[128], cp[160];
    snprintf(cfg, sizeof(cfg), "%s/zoo.cfg", z->root);
    snprintf(log, sizeof(log), "%s/zk.log", z->root);
    snprintf(cp, sizeof(cp), "%s:%s", z->root, ZKH_JAR);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return -1;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) {
            _exit(127);
        }
        if (z->in_netns && setns(z->netns_fd, CLONE_NEWNET) != 0) {
            fprintf(stderr, "setns: %s\n", strerror(errno));
            _exit(127);
        }
        signal(SIGTERM, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        signal(SIGHUP, SIG_DFL);
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execl(java_path(), java_path(), "-Xmx128m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
              "-Dzookeeper.admin.enableServer=false", "-cp", cp,
              "org.apache.zookeeper.server.quorum.QuorumPeerMain", cfg, (char *)NULL);
        fprintf(stderr, "exec %s: %s\n", java_path(), strerror(errno));
        _exit(127);
    }
    z->pid = pid;
    return 0;
}

/* Waits for "imok"; kills the server when it does not come. */
static int wait_ready(struct zkh *z)
{
    pid_t pid = z->pid;
    uint64_t deadline = zkh_mono_ms() + ZKH_START_WAIT_MS;
    while (zkh_mono_ms() < deadline) {
        if (ruok(z)) {
            return 0;
        }
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            z->pid = 0;
            fprintf(stderr, "  ZooKeeper exited before serving (status 0x%x):\n", (unsigned)status);
            log_tail(z);
            return -1;
        }
        sleep_ms(50);
    }
    fprintf(stderr, "  ZooKeeper did not answer ruok on %s within %u ms:\n", z->connect,
            ZKH_START_WAIT_MS);
    log_tail(z);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    z->pid = 0;
    return -1;
}

static int spawn(struct zkh *z)
{
    return spawn_proc(z) == 0 ? wait_ready(z) : -1;
}

static void cleanup_all(void)
{
    for (size_t i = 0; i < sizeof(ens_registry) / sizeof(ens_registry[0]); i++) {
        if (ens_registry[i] != NULL) {
            zke_cleanup(ens_registry[i]);
        }
    }
    for (size_t i = 0; i < sizeof(registry) / sizeof(registry[0]); i++) {
        if (registry[i] != NULL) {
            zkh_cleanup(registry[i]);
        }
    }
}

static void at_exit_once(void)
{
    static int atexit_done;
    if (!atexit_done) {
        atexit(cleanup_all);
        atexit_done = 1;
    }
}

int zkh_start(struct zkh *z)
{
    memset(z, 0, sizeof(*z));
    snprintf(z->host, sizeof(z->host), "127.0.0.1");
    snprintf(z->root, sizeof(z->root), "/var/tmp/sluice-zk-XXXXXX");
    if (mkdtemp(z->root) == NULL) {
        perror("mkdtemp");
        return -1;
    }
    for (size_t i = 0; i < sizeof(registry) / sizeof(registry[0]); i++) {
        if (registry[i] == NULL) {
            registry[i] = z;
            break;
        }
    }
    at_exit_once();
    /* A free port may be taken by another test before the server binds it: three tries,
     * each on a new port. */
    for (int attempt = 0; attempt < 3; attempt++) {
        z->port = free_port();
        snprintf(z->connect, sizeof(z->connect), "127.0.0.1:%u", z->port);
        char path[128];
        snprintf(path, sizeof(path), "%s/zoo.cfg", z->root);
        FILE *f = fopen(path, "w");
        if (f == NULL) {
            perror(path);
            return -1;
        }
        /* tickTime 200 ms: sessions from 400 ms (2 ticks); maxSessionTimeout raised so a
         * test may ask for longer ones. The data directory survives restarts (sessions
         * too). */
        fprintf(f,
                "tickTime=200\ninitLimit=10\nsyncLimit=5\ndataDir=%s/data\n"
                "clientPort=%u\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\n"
                "maxSessionTimeout=60000\n4lw.commands.whitelist=ruok,srvr\n"
                "snapCount=100000\npreAllocSize=1024\n",
                z->root, z->port);
        fclose(f);
        if (spawn(z) == 0) {
            return 0;
        }
    }
    return -1;
}

int zkh_restart(struct zkh *z)
{
    if (z->pid != 0) {
        fprintf(stderr, "  zkh_restart: the server is still running\n");
        return -1;
    }
    uint64_t deadline = zkh_mono_ms() + 10000u; /* the port may stay busy a moment */
    for (;;) {
        if (spawn(z) == 0) {
            return 0;
        }
        if (zkh_mono_ms() >= deadline) {
            return -1;
        }
        sleep_ms(200);
    }
}

int zkh_kill9(struct zkh *z)
{
    if (z->pid != 0) {
        kill(z->pid, SIGKILL);
        waitpid(z->pid, NULL, 0);
        z->pid = 0;
    }
    return 0;
}

int zke_start(struct zke *e, const char *parent, uint32_t n, const char *const *hosts,
              const int *netns_fds)
{
    memset(e, 0, sizeof(*e));
    if (n == 0 || n > ZKE_MAX || (parent != NULL && strlen(parent) + 4 > sizeof(e->root))) {
        fprintf(stderr, "  zke_start: 1..%d nodes, a parent directory under %zu bytes\n", ZKE_MAX,
                sizeof(e->root) - 4);
        return -1;
    }
    if (parent != NULL) {
        snprintf(e->root, sizeof(e->root), "%s/zk", parent);
        if (mkdir(e->root, 0755) != 0) {
            perror(e->root);
            e->root[0] = '\0';
            return -1;
        }
    } else {
        snprintf(e->root, sizeof(e->root), "/var/tmp/sluice-zke-XXXXXX");
        if (mkdtemp(e->root) == NULL) {
            perror("mkdtemp");
            return -1;
        }
    }
    for (size_t i = 0; i < sizeof(ens_registry) / sizeof(ens_registry[0]); i++) {
        if (ens_registry[i] == NULL) {
            ens_registry[i] = e;
            break;
        }
    }
    at_exit_once();
    e->n = n;
    char servers[ZKE_MAX * 64] = "";
    size_t slen = 0, clen = 0;
    for (uint32_t i = 0; i < n; i++) {
        slen += (size_t)snprintf(servers + slen, sizeof(servers) - slen, "server.%u=%s:2888:3888\n",
                                 i + 1, hosts[i]);
        clen += (size_t)snprintf(e->connect + clen, sizeof(e->connect) - clen, "%s%s:%u",
                                 i > 0 ? "," : "", hosts[i], ZKE_CLIENT_PORT);
    }
    for (uint32_t i = 0; i < n; i++) {
        struct zkh *z = &e->node[i];
        snprintf(z->root, sizeof(z->root), "%s/zk%u", e->root, i + 1);
        snprintf(z->host, sizeof(z->host), "%s", hosts[i]);
        z->port = ZKE_CLIENT_PORT;
        snprintf(z->connect, sizeof(z->connect), "%s:%u", hosts[i], ZKE_CLIENT_PORT);
        z->netns_fd = netns_fds[i];
        z->in_netns = 1;
        char path[160];
        snprintf(path, sizeof(path), "%s/data", z->root);
        if (mkdir(z->root, 0755) != 0 || mkdir(path, 0755) != 0) {
            perror(path);
            return -1;
        }
        snprintf(path, sizeof(path), "%s/data/myid", z->root);
        FILE *f = fopen(path, "w");
        if (f == NULL) {
            perror(path);
            return -1;
        }
        fprintf(f, "%u\n", i + 1);
        fclose(f);
        snprintf(path, sizeof(path), "%s/zoo.cfg", z->root);
        f = fopen(path, "w");
        if (f == NULL) {
            perror(path);
            return -1;
        }
        /* cnxTimeout: how long a peer waits to connect to another during an election (default
         * 5 s, which a cut peer would cost each time); 4lw srvr tells who leads. */
        fprintf(f,
                "tickTime=200\ninitLimit=20\nsyncLimit=10\ndataDir=%s/data\n"
                "clientPort=%u\nclientPortAddress=%s\nadmin.enableServer=false\n"
                "maxSessionTimeout=60000\n4lw.commands.whitelist=ruok,srvr,stat\n"
                "snapCount=100000\npreAllocSize=1024\ncnxTimeout=1000\n%s",
                z->root, ZKE_CLIENT_PORT, hosts[i], servers);
        fclose(f);
    }
    /* all JVMs at once: each takes ~1 s to start, and no quorum exists before two run */
    for (uint32_t i = 0; i < n; i++) {
        if (spawn_proc(&e->node[i]) != 0) {
            return -1;
        }
    }
    for (uint32_t i = 0; i < n; i++) {
        if (wait_ready(&e->node[i]) != 0) {
            return -1;
        }
    }
    if (zke_wait_leader(e, ZKH_START_WAIT_MS) < 0) {
        fprintf(stderr, "  the ensemble elected no leader within %u ms\n", ZKH_START_WAIT_MS);
        for (uint32_t i = 0; i < n; i++) {
            log_tail(&e->node[i]);
        }
        return -1;
    }
    return 0;
}

int zke_leader(const struct zke *e)
{
    int leader = -1, running = 0, followers = 0;
    for (uint32_t i = 0; i < e->n; i++) {
        if (e->node[i].pid == 0) {
            continue;
        }
        running++;
        char mode[32];
        if (zkh_mode(&e->node[i], mode, sizeof(mode)) != 0) {
            return -1;
        }
        if (strcmp(mode, "leader") == 0) {
            if (leader >= 0) {
                return -1;
            }
            leader = (int)i;
        } else if (strcmp(mode, "follower") == 0) {
            followers++;
        }
    }
    return leader >= 0 && followers == running - 1 ? leader : -1;
}

int zke_wait_leader(const struct zke *e, uint32_t timeout_ms)
{
    uint64_t deadline = zkh_mono_ms() + timeout_ms;
    for (;;) {
        int l = zke_leader(e);
        if (l >= 0 || zkh_mono_ms() >= deadline) {
            return l;
        }
        sleep_ms(50);
    }
}

void zke_cleanup(struct zke *e)
{
    for (uint32_t i = 0; i < e->n; i++) {
        struct zkh *z = &e->node[i];
        if (z->pid != 0) {
            kill(z->pid, SIGCONT);
            zkh_kill9(z);
        }
    }
    e->n = 0;
    if (e->root[0] != '\0') {
        if (getenv("SLUICE_KEEP_ZK") == NULL) {
            nftw(e->root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        } else {
            fprintf(stderr, "  kept %s (SLUICE_KEEP_ZK)\n", e->root);
        }
        e->root[0] = '\0';
    }
    for (size_t i = 0; i < sizeof(ens_registry) / sizeof(ens_registry[0]); i++) {
        if (ens_registry[i] == e) {
            ens_registry[i] = NULL;
        }
    }
}

int zkh_pause(struct zkh *z)
{
    return z->pid != 0 && kill(z->pid, SIGSTOP) == 0 ? 0 : -1;
}

int zkh_resume(struct zkh *z)
{
    return z->pid != 0 && kill(z->pid, SIGCONT) == 0 ? 0 : -1;
}

void zkh_cleanup(struct zkh *z)
{
    if (z->pid != 0) {
        kill(z->pid, SIGCONT);
        zkh_kill9(z);
    }
    if (z->root[0] != '\0') {
        if (getenv("SLUICE_KEEP_ZK") == NULL) {
            nftw(z->root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        } else {
            fprintf(stderr, "  kept %s (SLUICE_KEEP_ZK)\n", z->root);
        }
        z->root[0] = '\0';
    }
    for (size_t i = 0; i < sizeof(registry) / sizeof(registry[0]); i++) {
        if (registry[i] == z) {
            registry[i] = NULL;
        }
    }
}
