/* bench_broker.h - what the end-to-end benchmarks share: starting the built
 * sluiced on an ephemeral port in a fresh directory, stopping it, clocks. */
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
};

/* Starts SLUICED_PATH with --flush `flush` under `dir_base`, waits for its
 * port file (10 s). Exits the process with a message on failure. */
void bench_broker_start(struct bench_broker *b, const char *prog, const char *dir_base,
                        const char *flush);
/* The same with extra arguments and CPU pinning. */
void bench_broker_start_opts(struct bench_broker *b, const char *prog, const char *dir_base,
                             const struct bench_broker_opts *o);
/* SIGTERM, wait (a non-zero exit is reported), remove the directory. */
void bench_broker_stop(struct bench_broker *b, const char *prog);
/* SIGTERM (or SIGKILL with `kill9`) and wait; the directory stays for a restart. */
void bench_broker_halt(struct bench_broker *b, const char *prog, int kill9);
/* Starts the broker again on the directory of the last start (after
 * bench_broker_halt), waiting up to `wait_s` seconds for its port file. Exits the
 * process with a message on failure. */
void bench_broker_restart(struct bench_broker *b, const char *prog,
                          const struct bench_broker_opts *o, uint32_t wait_s);

uint64_t bench_now_ns(void);
void bench_sleep_ns(uint64_t ns);
int bench_cmp_u64(const void *a, const void *b); /* for qsort */

#endif
