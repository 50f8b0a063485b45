/* bench_broker.c - the benchmarks' broker launcher and clocks. */
#define _XOPEN_SOURCE 700
#include "bench/bench_broker.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void bench_sleep_ns(uint64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

int bench_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void bench_broker_start(struct bench_broker *b, const char *prog, const char *dir_base,
                        const char *flush)
{
    struct bench_broker_opts o = {.flush = flush, .cpu = -1};
    bench_broker_start_opts(b, prog, dir_base, &o);
}

/* The sluiced to start: the one installed beside this program (bin/sluiced next to
 * bin/sluice-bench, `make install`), else the one built with it (SLUICED_PATH). Fills
 * `path` (size `cap`). */
static void sluiced_path(char *path, size_t cap)
{
    static const char name[] = "sluiced";
    ssize_t n = readlink("/proc/self/exe", path, cap - sizeof(name));
    if (n > 0) {
        path[n] = '\0';
        char *slash = strrchr(path, '/');
        if (slash != NULL) {
            memcpy(slash + 1, name, sizeof(name));
            if (access(path, X_OK) == 0) {
                return;
            }
        }
    }
    snprintf(path, cap, "%s", SLUICED_PATH);
}

/* In the forked child: pins it if asked and execs the broker. Never returns. */
static _Noreturn void exec_broker(const char *data, const char *port_file,
                                  const struct bench_broker_opts *o)
{
    char sluiced[4096];
    sluiced_path(sluiced, sizeof(sluiced));
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (o->log_file != NULL) {
        int fd = open(o->log_file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd < 0 || dup2(fd, STDERR_FILENO) < 0 || dup2(fd, STDOUT_FILENO) < 0) {
            perror("broker log file");
            _exit(127);
        }
    }
    if (o->cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(o->cpu, &set);
        if (sched_setaffinity(0, sizeof(set), &set) != 0) {
            perror("sched_setaffinity (broker)");
            _exit(127);
        }
    }
    /* no HTTP listener unless asked (--broker-arg --http-port=N): runs side by side */
    char port[16];
    snprintf(port, sizeof(port), "%d", o->port);
    const char *argv[14 + BENCH_BROKER_EXTRA_MAX] = {
        sluiced,   "--data", data,          "--port", port,          "--port-file", port_file,
        "--flush", o->flush, "--log-level", "warn",   "--http-port", "0",
    };
    int argc = 13;
    for (int i = 0; i < o->extra_len && i < BENCH_BROKER_EXTRA_MAX; i++) {
        argv[argc++] = o->extra[i];
    }
    argv[argc] = NULL;
    execv(sluiced, (char *const *)argv);
    fprintf(stderr, "exec %s: %s\n", sluiced, strerror(errno));
    _exit(127);
}

void bench_broker_start_opts(struct bench_broker *b, const char *prog, const char *dir_base,
                             const struct bench_broker_opts *o)
{
    snprintf(b->root, sizeof(b->root), "%s/sluice-%s-XXXXXX", dir_base, prog);
    if (mkdtemp(b->root) == NULL) {
        perror("mkdtemp");
        exit(1);
    }
    char data[300], port_file[300];
    snprintf(data, sizeof(data), "%s/data", b->root);
    snprintf(port_file, sizeof(port_file), "%s/port", b->root);
    b->pid = fork();
    if (b->pid == 0) {
        exec_broker(data, port_file, o);
    }
    for (int i = 0; i < 1000; i++) {
        FILE *f = fopen(port_file, "r");
        unsigned port = 0;
        if (f != NULL) {
            int ok = fscanf(f, "%u", &port) == 1;
            fclose(f);
            if (ok && port != 0) {
                snprintf(b->addr, sizeof(b->addr), "127.0.0.1:%u", port);
                return;
            }
        }
        if (waitpid(b->pid, NULL, WNOHANG) == b->pid) {
            fprintf(stderr, "%s: the broker exited at start\n", prog);
            exit(1);
        }
        bench_sleep_ns(10000000);
    }
    fprintf(stderr, "%s: the broker did not start\n", prog);
    kill(b->pid, SIGKILL);
    exit(1);
}

void bench_broker_stop(struct bench_broker *b, const char *prog)
{
    if (b->pid > 0) {
        int status = bench_broker_halt(b, SIGTERM, NULL);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "%s: the broker exited with status 0x%x\n", prog, (unsigned)status);
        }
    }
    if (b->root[0] != '\0') {
        nftw(b->root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        b->root[0] = '\0';
    }
}

int bench_broker_halt(struct bench_broker *b, int sig, uint64_t *ns)
{
    int status = 0;
    uint64_t t0 = bench_now_ns();
    if (b->pid > 0) {
        kill(b->pid, sig);
        while (waitpid(b->pid, &status, 0) < 0 && errno == EINTR) {
        }
        b->pid = 0;
    }
    if (ns != NULL) {
        *ns = bench_now_ns() - t0;
    }
    return status;
}

void bench_broker_respawn(struct bench_broker *b, const struct bench_broker_opts *o)
{
    const char *colon = strrchr(b->addr, ':');
    struct bench_broker_opts same = *o;
    same.port = colon != NULL ? atoi(colon + 1) : 0;
    char data[300], port_file[300];
    snprintf(data, sizeof(data), "%s/data", b->root);
    snprintf(port_file, sizeof(port_file), "%s/port", b->root);
    b->pid = fork();
    if (b->pid < 0) {
        perror("fork");
        exit(1);
    }
    if (b->pid == 0) {
        exec_broker(data, port_file, &same);
    }
}

int bench_broker_running(struct bench_broker *b, int *status)
{
    int st = 0;
    if (b->pid > 0 && waitpid(b->pid, &st, WNOHANG) == b->pid) {
        b->pid = 0;
        if (status != NULL) {
            *status = st;
        }
        return 0;
    }
    return b->pid > 0;
}

long bench_proc_rss_kib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kib = -1;
    while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1) {
            break;
        }
    }
    if (f != NULL) {
        fclose(f);
    }
    return kib;
}

long bench_proc_fds(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    if (d == NULL) {
        return -1;
    }
    long n = 0;
    for (struct dirent *e = readdir(d); e != NULL; e = readdir(d)) {
        n += e->d_name[0] != '.';
    }
    closedir(d);
    return n;
}
