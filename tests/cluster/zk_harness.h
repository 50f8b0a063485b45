/* zk_harness.h - a real Apache ZooKeeper server for the cluster tests (tests/cluster/).
 *
 * Starts a standalone ZooKeeper (Debian's `zookeeper` package: java and
 * /usr/share/java/zookeeper.jar, whose manifest names its dependencies) on
 * 127.0.0.1 with a free port and a fresh temporary directory under /var/tmp
 * (<root>/zoo.cfg, <root>/data, <root>/zk.log), ready when it answers "ruok".
 * tickTime is 200 ms, so sessions may be as short as 400 ms (2 ticks) and as
 * long as 60 s. The server gets SIGKILL if the test process dies
 * (PR_SET_PDEATHSIG); zkh_cleanup kills it and removes the directory.
 *
 * An ensemble (zke_start): several servers, each in a host of netns_harness.h, for the fault
 * tests (tests/cluster/faults.c).
 */
#ifndef SL_ZK_HARNESS_H
#define SL_ZK_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct zkh {
    char root[112];   /* /var/tmp/sluice-zk-XXXXXX, or <ensemble root>/zkN */
    char connect[32]; /* "127.0.0.1:PORT" (a member of an ensemble: "IP:2181") */
    char host[16];    /* the address it serves on */
    uint32_t port;
    pid_t pid; /* 0 when not running */
    /* A member of an ensemble runs in a network namespace (netns_harness.h): the fd to setns
     * into before exec when in_netns. */
    int netns_fd;
    int in_netns;
};

/* An ensemble of ZKE_MAX nodes at most: node i (myid i + 1) serves clients on hosts[i]:2181 and
 * talks to its peers on :2888 (quorum) and :3888 (election), each in its own network namespace
 * (so the ports are the same on every host and a cut between two hosts cuts them). Same tickTime
 * as the standalone server (200 ms); initLimit 20 and syncLimit 10 ticks, so a follower on a
 * loaded machine (sanitized builds, two at a time) is not dropped for a 1 s stall. */
#define ZKE_MAX         5
#define ZKE_CLIENT_PORT 2181u

struct zke {
    char root[96]; /* <parent>/zk, or /var/tmp/sluice-zke-XXXXXX */
    uint32_t n;
    struct zkh node[ZKE_MAX];
    char connect[ZKE_MAX * 24]; /* "IP1:2181,IP2:2181,..." */
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

/* Writes the configuration of n nodes (hosts[i] its address, netns_fds[i] its namespace) under
 * <parent>/zk (parent NULL: a new /var/tmp/sluice-zke-XXXXXX; the fault test gives its hosts'
 * directory, so one sweep removes what a killed test left), starts
 * them all and waits until each answers "ruok" and one of them leads (zke_wait_leader). Returns 0
 * or -1 (after printing why and the logs' tails). The nodes are stopped and restarted with
 * zkh_kill9, zkh_pause, zkh_resume and zkh_restart on &e->node[i]. */
int zke_start(struct zke *e, const char *parent, uint32_t n, const char *const *hosts,
              const int *netns_fds);

/* Node z's role from the four-letter word "srvr": writes "leader", "follower", "standalone", or
 * "" (not serving: no quorum, or not running) into mode. Returns 0 when it answered, else -1. */
int zkh_mode(const struct zkh *z, char *mode, size_t cap);

/* The index of the node that says it leads, when exactly one running node does and every other
 * running node is a follower; else -1. */
int zke_leader(const struct zke *e);

/* Waits up to timeout_ms for zke_leader to name one; returns it or -1. */
int zke_wait_leader(const struct zke *e, uint32_t timeout_ms);

/* Kills every node and removes the directory. Safe to call twice. */
void zke_cleanup(struct zke *e);

/* Monotonic milliseconds. */
uint64_t zkh_mono_ms(void);

#endif
