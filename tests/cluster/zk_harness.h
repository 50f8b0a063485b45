/* zk_harness.h - a real Apache ZooKeeper server for the cluster tests (tests/cluster/).
 *
 * Starts a standalone ZooKeeper (Debian's `zookeeper` package: java and
 * /usr/share/java/zookeeper.jar, whose manifest names its dependencies) on
 * 127.0.0.1 with a free port and a fresh temporary directory under /var/tmp
 * (<root>/zoo.cfg, <root>/data, <root>/zk.log), ready when it answers "ruok".
 * tickTime is 200 ms, so sessions may be as short as 400 ms (2 ticks) and as
 * long as 60 s. The server gets SIGKILL if the test process dies
 * (PR_SET_PDEATHSIG); zkh_cleanup kills it and removes the directory.
 */
#ifndef SL_ZK_HARNESS_H
#define SL_ZK_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct zkh {
    char root[64];    /* /var/tmp/sluice-zk-XXXXXX */
    char connect[32]; /* "127.0.0.1:PORT" */
    uint32_t port;
    pid_t pid; /* 0 when not running */
};

/* 0 when java and the ZooKeeper jar are here, else prints why (and how to
 * install them) and returns 77: the caller exits with it (skipped). */
int zkh_available(void);

/* Creates the directory and starts the server; waits up to 20 s for "imok".
 * Returns 0 or -1 (after printing why and the log's tail). */
int zkh_start(struct zkh *z);

/* Starts it again on the same port and data (after kill9 or stop). */
int zkh_restart(struct zkh *z);

/* SIGKILL and reap. Returns 0. */
int zkh_kill9(struct zkh *z);

/* SIGSTOP / SIGCONT: a server that stops answering but keeps its sockets. */
int zkh_pause(struct zkh *z);
int zkh_resume(struct zkh *z);

/* Kills the server if it runs and removes the directory. Safe to call twice. */
void zkh_cleanup(struct zkh *z);

/* Monotonic milliseconds. */
uint64_t zkh_mono_ms(void);

#endif
