/* harness.c - start, stop, kill and restart the real broker for the integration tests
 * (see harness.h). */
#include "harness.h"

#include "common/error.h"
#include "common/ring.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef SLUICED_PATH
#error "SLUICED_PATH must be defined (tests/CMakeLists.txt)"
#endif

#define IT_START_WAIT_MS 10000u
#define IT_STOP_WAIT_MS 20000u
#define IT_BROKERS_MAX 8

static struct it_broker *registry[IT_BROKERS_MAX];
static int atexit_done;

uint64_t it_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t it_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void it_sleep_ms(uint32_t ms)
{
    struct timespec ts = {ms / 1000u, (long)(ms % 1000u) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

int it_rmtree(const char *path)
{
    return nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS) == 0 || errno == ENOENT ? 0 : -1;
}

static void cleanup_all(void)
{
    for (int i = 0; i < IT_BROKERS_MAX; i++) {
        if (registry[i] != NULL) {
            it_broker_cleanup(registry[i]);
        }
    }
}

static void remember(struct it_broker *b)
{
    if (!atexit_done) {
        atexit(cleanup_all);
        atexit_done = 1;
    }
    for (int i = 0; i < IT_BROKERS_MAX; i++) {
        if (registry[i] == b) {
            return;
        }
    }
    for (int i = 0; i < IT_BROKERS_MAX; i++) {
        if (registry[i] == NULL) {
            registry[i] = b;
            return;
        }
    }
}

static void forget(struct it_broker *b)
{
    for (int i = 0; i < IT_BROKERS_MAX; i++) {
        if (registry[i] == b) {
            registry[i] = NULL;
        }
    }
}

int it_preflight(void)
{
    signal(SIGPIPE, SIG_IGN);
    char why[512] = "";
    if (sl_ring_probe(why, sizeof(why)) != SL_OK) {
        fprintf(stderr, "io_uring unavailable: %s\n", why);
        return 77;
    }
    return 0;
}

/* Reads the port file: 0 until it exists and holds a port. */
static uint32_t read_port(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return 0;
    }
    unsigned port = 0;
    if (fscanf(f, "%u", &port) != 1) {
        port = 0;
    }
    fclose(f);
    return port <= 65535 ? port : 0;
}

/* Forks and execs the broker on b->port (0 = ephemeral), waits for the port file.
 * Returns 0, -1 on failure, or 1 when the broker exited early (e.g. the port was busy). */
static int broker_start(struct it_broker *b, const char *flush, uint32_t http_port,
                        const char *src, uint32_t nofile);

/* The flags and port it_broker_start_args hands to broker_start (which clears b first). */
static const char *const *pending_args;
static uint32_t pending_port;

static int spawn(struct it_broker *b)
{
    unlink(b->port_file);
    char port[16];
    snprintf(port, sizeof(port), "%u", b->port);
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
        char http_port[16];
        snprintf(http_port, sizeof(http_port), "%u", b->http_port);
        if (b->nofile > 0) {
            struct rlimit rl = {.rlim_cur = b->nofile, .rlim_max = b->nofile};
            if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
                fprintf(stderr, "setrlimit(RLIMIT_NOFILE, %u): %s\n", b->nofile,
                        strerror(errno));
                _exit(127);
            }
        }
        const char *argv[20 + IT_EXTRA_ARGS_MAX] = {
            SLUICED_PATH, "--data", b->data, "--host", "127.0.0.1", "--port", port,
            "--port-file", b->port_file, "--flush", b->flush, "--log-level", "warn",
            "--http-port", http_port};
        size_t argc = 15;
        for (uint32_t i = 0; i < b->n_extra; i++) {
            argv[argc++] = b->extra[i];
        }
        argv[argc] = NULL;
        execv(SLUICED_PATH, (char *const *)argv);
        fprintf(stderr, "exec %s: %s\n", SLUICED_PATH, strerror(errno));
        _exit(127);
    }
    b->pid = pid;
    uint32_t wait_ms = b->start_wait_ms > 0 ? b->start_wait_ms : IT_START_WAIT_MS;
    uint64_t deadline = it_mono_ms() + wait_ms;
    while (it_mono_ms() < deadline) {
        uint32_t p = read_port(b->port_file);
        if (p != 0) {
            b->port = p;
            snprintf(b->addr, sizeof(b->addr), "127.0.0.1:%u", p);
            return 0;
        }
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            b->pid = 0;
            b->exit_status = status;
            fprintf(stderr, "  broker exited before listening (status 0x%x)\n",
                    (unsigned)status);
            return 1;
        }
        it_sleep_ms(10);
    }
    fprintf(stderr, "  broker did not write its port file within %u ms\n", wait_ms);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    b->pid = 0;
    return -1;
}

/* A port free now (bound, then released: another process may take it). */
uint32_t it_free_port(void)
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

int it_broker_start_http(struct it_broker *b, const char *flush)
{
    return broker_start(b, flush, it_free_port(), NULL, 0);
}

int it_broker_start_nofile(struct it_broker *b, const char *flush, uint32_t nofile)
{
    return broker_start(b, flush, it_free_port(), NULL, nofile);
}

int it_broker_start_from(struct it_broker *b, const char *flush, const char *src)
{
    return broker_start(b, flush, 0, src, 0);
}

int it_broker_start(struct it_broker *b, const char *flush)
{
    return broker_start(b, flush, 0, NULL, 0);
}

int it_broker_start_args(struct it_broker *b, const char *flush, uint32_t port,
                         const char *const *args)
{
    uint32_t n = 0;
    while (args != NULL && args[n] != NULL) {
        if (n >= IT_EXTRA_ARGS_MAX || strlen(args[n]) >= sizeof(b->extra[0])) {
            fprintf(stderr, "  it_broker_start_args: too many or too long flags\n");
            return -1;
        }
        n++;
    }
    pending_args = args;
    pending_port = port;
    return broker_start(b, flush, it_free_port(), NULL, 0);
}

static int broker_start(struct it_broker *b, const char *flush, uint32_t http_port,
                        const char *src, uint32_t nofile)
{
    memset(b, 0, sizeof(*b));
    if (pending_args != NULL) { /* it_broker_start_args */
        b->port = pending_port;
        for (; pending_args[b->n_extra] != NULL; b->n_extra++) {
            snprintf(b->extra[b->n_extra], sizeof(b->extra[0]), "%s", pending_args[b->n_extra]);
        }
        pending_args = NULL;
    }
    b->http_port = http_port;
    b->nofile = nofile;
    snprintf(b->root, sizeof(b->root), "/var/tmp/sluice-it-XXXXXX");
    if (mkdtemp(b->root) == NULL) {
        perror("mkdtemp");
        return -1;
    }
    snprintf(b->data, sizeof(b->data), "%s/data", b->root);
    snprintf(b->port_file, sizeof(b->port_file), "%s/port", b->root);
    snprintf(b->flush, sizeof(b->flush), "%s", flush != NULL ? flush : "always");
    remember(b);
    if (src != NULL) {
        char cmd[512];
        snprintf(cmd, sizeof(cmd), "cp -a '%s' '%s'", src, b->data);
        if (system(cmd) != 0) {
            fprintf(stderr, "  cannot copy %s\n", src);
            return -1;
        }
    }
    int rc = spawn(b);
    return rc == 0 ? 0 : rc == 1 && b->n_extra > 0 ? 1 : -1;
}

int it_broker_restart(struct it_broker *b)
{
    if (b->pid != 0) {
        fprintf(stderr, "  restart: the broker is still running\n");
        return -1;
    }
    uint64_t deadline = it_mono_ms() + IT_START_WAIT_MS; /* the port may stay busy this long */
    for (;;) {
        int rc = spawn(b);
        if (rc <= 0) {
            return rc;
        }
        if (it_mono_ms() >= deadline) {
            return -1;
        }
        it_sleep_ms(200); /* the port may still be taken for a moment */
    }
}

static int wait_exit(struct it_broker *b, uint32_t wait_ms)
{
    uint64_t deadline = it_mono_ms() + wait_ms;
    for (;;) {
        int status;
        pid_t r = waitpid(b->pid, &status, WNOHANG);
        if (r == b->pid) {
            b->exit_status = status;
            b->pid = 0;
            return 0;
        }
        if (r < 0 && errno != EINTR) {
            perror("waitpid");
            b->pid = 0;
            return -1;
        }
        if (it_mono_ms() >= deadline) {
            return -1;
        }
        it_sleep_ms(5);
    }
}

int it_broker_stop(struct it_broker *b)
{
    if (b->pid == 0) {
        fprintf(stderr, "  stop: the broker is not running (last status 0x%x)\n",
                (unsigned)b->exit_status);
        return -1;
    }
    kill(b->pid, SIGTERM);
    uint32_t wait_ms = b->stop_wait_ms > 0 ? b->stop_wait_ms : IT_STOP_WAIT_MS;
    if (wait_exit(b, wait_ms) != 0) {
        fprintf(stderr, "  stop: the broker did not exit within %u ms of SIGTERM\n", wait_ms);
        kill(b->pid, SIGKILL);
        wait_exit(b, IT_STOP_WAIT_MS);
        return -1;
    }
    if (!WIFEXITED(b->exit_status) || WEXITSTATUS(b->exit_status) != 0) {
        if (WIFSIGNALED(b->exit_status)) {
            fprintf(stderr, "  stop: the broker died of signal %d\n", WTERMSIG(b->exit_status));
        } else {
            fprintf(stderr, "  stop: the broker exited with status %d\n",
                    WEXITSTATUS(b->exit_status));
        }
        return -1;
    }
    return 0;
}

int it_broker_kill9(struct it_broker *b)
{
    if (b->pid == 0) {
        return -1;
    }
    kill(b->pid, SIGKILL);
    if (wait_exit(b, IT_STOP_WAIT_MS) != 0) {
        return -1;
    }
    return WIFSIGNALED(b->exit_status) && WTERMSIG(b->exit_status) == SIGKILL ? 0 : -1;
}

int it_broker_alive(struct it_broker *b)
{
    if (b->pid == 0) {
        return 0;
    }
    int status;
    if (waitpid(b->pid, &status, WNOHANG) == b->pid) {
        b->exit_status = status;
        b->pid = 0;
        fprintf(stderr, "  the broker exited (status 0x%x)\n", (unsigned)status);
        return 0;
    }
    return 1;
}

void it_broker_cleanup(struct it_broker *b)
{
    if (b->pid != 0) {
        kill(b->pid, SIGKILL);
        waitpid(b->pid, NULL, 0);
        b->pid = 0;
    }
    if (b->root[0] != '\0') {
        if (getenv("SLUICE_IT_KEEP") != NULL) {
            fprintf(stderr, "  kept %s\n", b->root);
        } else {
            it_rmtree(b->root);
        }
        b->root[0] = '\0';
    }
    forget(b);
}

uint32_t it_broker_fds(const struct it_broker *b)
{
    if (b->pid == 0) {
        return 0;
    }
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/fd", (int)b->pid);
    DIR *d = opendir(path);
    if (d == NULL) {
        return 0;
    }
    uint32_t n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        n += e->d_name[0] != '.';
    }
    closedir(d);
    return n;
}

uint64_t it_broker_rss_kib(const struct it_broker *b)
{
    if (b->pid == 0) {
        return 0;
    }
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)b->pid);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return 0;
    }
    unsigned long long kib = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (sscanf(line, "VmRSS: %llu", &kib) == 1) {
            break;
        }
    }
    fclose(f);
    return (uint64_t)kib;
}

int it_connect(const struct it_broker *b, sluice_client **out)
{
    struct sluice_client_opts o = {.connect_timeout_ms = 5000,
                                   .request_timeout_ms = 30000,
                                   .reconnect_backoff_ms = 50,
                                   .reconnect_backoff_max_ms = 500,
                                   .client_id = "integration-test"};
    int rc = sluice_client_new(b->addr, &o, out);
    if (rc != SL_OK) {
        fprintf(stderr, "  connect %s: %s (%s)\n", b->addr, sl_errname(rc), sluice_last_error());
    }
    return rc;
}

int it_create_stream(sluice_client *c, const char *name, uint32_t shards)
{
    struct sluice_stream_opts o = {.shard_count = shards,
                                   .compression = SLUICE_COMPRESSION_NONE};
    int rc = sluice_stream_create(c, name, &o, NULL);
    if (rc != SL_OK) {
        fprintf(stderr, "  create stream %s: %s (%s)\n", name, sl_errname(rc),
                sluice_last_error());
    }
    return rc;
}

int it_run_cli(const struct it_broker *b, const char *const *args, const char *input,
               int with_stderr, char *out, size_t cap)
{
    const char *argv[40];
    int argc = 0;
    argv[argc++] = SLUICE_CLI_PATH;
    for (int i = 0; args[i] != NULL; i++) {
        if (argc >= 39) {
            fprintf(stderr, "it_run_cli: more than 38 arguments\n");
            return -1;
        }
        argv[argc++] = args[i];
    }
    argv[argc] = NULL;
    char in_path[160], out_path[160];
    snprintf(in_path, sizeof(in_path), "%s/cli.in", b->root);
    snprintf(out_path, sizeof(out_path), "%s/cli.out", b->root);
    FILE *f = fopen(in_path, "w");
    if (f == NULL) {
        return -1;
    }
    if (input != NULL) {
        fputs(input, f);
    }
    fclose(f);
    pid_t pid = fork();
    if (pid < 0) {
        return -1;
    }
    if (pid == 0) {
        int in = open(in_path, O_RDONLY);
        int o = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (in < 0 || o < 0 || dup2(in, 0) < 0 || dup2(o, 1) < 0 || (with_stderr && dup2(o, 2) < 0)) {
            _exit(126);
        }
        execv(SLUICE_CLI_PATH, (char *const *)argv);
        _exit(127);
    }
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) {
        return -1;
    }
    f = fopen(out_path, "r");
    size_t n = f != NULL ? fread(out, 1, cap - 1, f) : 0;
    if (f != NULL) {
        fclose(f);
    }
    out[n] = '\0';
    return WEXITSTATUS(status);
}

int it_user_line(const char *user, char *line, size_t cap)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "echo '%s-pw' | '%s' --hash-password %s --iterations 4096", user,
             SLUICED_PATH, user);
    FILE *f = popen(cmd, "r");
    if (f == NULL || fgets(line, (int)cap, f) == NULL) {
        if (f != NULL) {
            pclose(f);
        }
        return -1;
    }
    return pclose(f) == 0 ? 0 : -1;
}

int it_broker_start_free_port(struct it_broker *b, const char *flush, const char *const *args)
{
    for (int attempt = 0; attempt < 5; attempt++) {
        int rc = it_broker_start_args(b, flush, it_free_port(), args);
        if (rc != 1) {
            return rc;
        }
        it_broker_cleanup(b); /* the port was taken meanwhile: another */
    }
    return -1;
}
