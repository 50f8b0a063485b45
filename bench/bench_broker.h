/* bench_broker.h - what the end-to-end benchmarks share: starting the built
 * sluiced on an ephemeral port in a fresh directory, stopping it (or killing it
 * and starting it again on the same directory), clocks. */
#ifndef SL_BENCH_BROKER_H
#define SL_BENCH_BROKER_H

#include <stdint.h>
#include <sys/types.h>

struct bench_broker {
    char root[256]; /* <dir_base>/sluice-<tag>-XXXXXX: data/ and port */
    char addr[64];  /* "127.0.0.1:PORT" once started */
    pid_t pid;
};

#define BENCH_BROKER_EXTRA_MAX 32

/* How to start it beyond the data directory and port. */
struct bench_broker_opts {
    const char *flush;        /* --flush value */
    const char *const *extra; /* borrowed: more arguments, passed verbatim after the others */
    int extra_len;            /* <= BENCH_BROKER_EXTRA_MAX */
    int cpu;                  /* >= 0: pin the broker to this CPU (sched_setaffinity) */
    int port;                 /* 0: an ephemeral port (the port file says which) */
    const char *log_file;     /* NULL: the broker's stderr is ours; else appended there */
};

/* Starts SLUICED_PATH with --flush `flush` under `dir_base`, waits for its
 * port file (10 s). Exits the process with a message on failure. */
void bench_broker_start(struct bench_broker *b, const char *prog, const char *dir_base,
                        const char *flush);
/* The same with extra arguments and CPU pinning. */
void bench_broker_start_opts(struct bench_broker *b, const char *prog, const char *dir_base,
                             const struct bench_broker_opts *o);
/* SIGTERM, wait (a non-zero exit is reported), remove the directory (also when the
 * broker was no longer running). */
void bench_broker_stop(struct bench_broker *b, const char *prog);

/* Sends `sig` (SIGTERM: a clean stop; SIGKILL: a crash) and waits for the exit, keeping
 * the directory. Returns the wait status; *ns (may be NULL) gets the time from the
 * signal to the exit. */
int bench_broker_halt(struct bench_broker *b, int sig, uint64_t *ns);
/* Starts the broker again on the same directory and the same port, without waiting for
 * it: the caller measures when it answers. Exits the process if fork fails. */
void bench_broker_respawn(struct bench_broker *b, const struct bench_broker_opts *o);
/* 1 while the started broker runs; 0 once it has exited (its wait status in *status, may
 * be NULL; the process is reaped). */
int bench_broker_running(struct bench_broker *b, int *status);

uint64_t bench_now_ns(void);
/* A process's resident memory (VmRSS, KiB) and open descriptors; -1 when unknown. */
long bench_proc_rss_kib(pid_t pid);
long bench_proc_fds(pid_t pid);
void bench_sleep_ns(uint64_t ns);
int bench_cmp_u64(const void *a, const void *b); /* for qsort */

#endif
