/* zk_harness.c - a real ZooKeeper server for the cluster tests (see zk_harness.h). */
#include "zk_harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
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

/* The four-letter word "ruok": "imok" once the server serves. */
static int ruok(uint32_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return 0;
    }
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval tv = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    int ok = 0;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && write(fd, "ruok", 4) == 4) {
        char buf[8] = {0};
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        ok = n == 4 && memcmp(buf, "imok", 4) == 0;
    }
    close(fd);
    return ok;
}

static void log_tail(const struct zkh *z)
{
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "tail -n 20 '%s/zk.log' >&2", z->root);
    if (system(cmd) != 0) {
        fprintf(stderr, "  (no ZooKeeper log)\n");
    }
}

static int spawn(struct zkh *z)
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
    uint64_t deadline = zkh_mono_ms() + ZKH_START_WAIT_MS;
    while (zkh_mono_ms() < deadline) {
        if (ruok(z->port)) {
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
    fprintf(stderr, "  ZooKeeper did not answer ruok on port %u within %u ms:\n", z->port,
            ZKH_START_WAIT_MS);
    log_tail(z);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    z->pid = 0;
    return -1;
}

static void cleanup_all(void)
{
    for (size_t i = 0; i < sizeof(registry) / sizeof(registry[0]); i++) {
        if (registry[i] != NULL) {
            zkh_cleanup(registry[i]);
        }
    }
}

int zkh_start(struct zkh *z)
{
    static int atexit_done;
    memset(z, 0, sizeof(*z));
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
    if (!atexit_done) {
        atexit(cleanup_all);
        atexit_done = 1;
    }
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

int zkh_pause(struct zkh *z)
{
    return z->pid != 0 && kill(z->pid, SIGSTOP) == 0 ? 0 : -1;
}

int zkh_resume(struct zkh *z)
{
    return z->pid != 0 && kill(z->pid, SIGCONT) == 0 ? 0 : -1;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
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
