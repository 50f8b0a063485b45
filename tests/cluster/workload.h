/* workload.h - what runs against the cluster while tests/cluster/faults.c injects faults.
 *
 * The fault test owns the hosts, the processes and the schedule; a workload only talks to the
 * brokers as a client would. The test calls start once the cluster is up, check after every
 * fault has been healed and the cluster has converged (one controller, every live broker
 * registered), and stop then check once more at the end. A workload runs its own threads between
 * start and stop; the test's thread only polls ClusterStatus meanwhile.
 *
 * Two exist: cw_noop (the harness's own checks alone; SLUICE_IT_WORKLOAD=noop) and cw_repl
 * (workload_repl.c, SLUICE_IT_WORKLOAD=repl; the plan of #14 below, and what it does not
 * check yet, is said there):
 *   start: create a stream with --replication-factor 3 through any broker; N producer threads
 *          write unique values ("<producer>-<seq>") with ack = durable through a bootstrap list
 *          of all brokers, logging each value as ok / failed / unknown (timeout, connection lost);
 *   check (after each heal): a consumer reads every shard from its leader up to the high
 *          watermark and verifies every acknowledged value present at exactly one position,
 *          positions increasing, the leader epoch in batch headers never decreasing along the log,
 *          group checkpoints never moving backwards; reading the same shard from every replica
 *          (a follower read, or the broker's replica dump) gives identical records up to the HW;
 *   stop:  joins the producers and prints ok / failed / unknown counts and produce latency
 *          around each fault (writes accepted again = the failover time the issue targets).
 */
#ifndef SL_CLUSTER_WORKLOAD_H
#define SL_CLUSTER_WORKLOAD_H

#include <stddef.h>
#include <stdint.h>

#define CW_BROKERS_MAX 8

/* The cluster as a client sees it: native addresses "IP:PORT" of every broker (running or not). */
struct cw_cluster {
    uint32_t n_brokers;
    const char *addr[CW_BROKERS_MAX];
    const char *bootstrap; /* "IP1:PORT,IP2:PORT,..." */
};

struct cw_workload {
    const char *name;
    void *state; /* the workload's own */
    /* 0 or -1 (printed why): the test fails */
    int (*start)(struct cw_workload *w, const struct cw_cluster *c);
    /* a fault begins (`fault` names it, e.g. "kill -9 controller b2"); for the workload's log */
    void (*fault)(struct cw_workload *w, const char *fault);
    /* 0 when every invariant holds, else -1 with why[] saying which and where */
    int (*check)(struct cw_workload *w, const struct cw_cluster *c, char *why, size_t whylen);
    int (*stop)(struct cw_workload *w);
};

/* The workload that does nothing and always checks out: the harness's own schedule and checks. */
extern const struct cw_workload cw_noop;
/* The replicated workload (workload_repl.c): what it does and checks is said there. */
extern const struct cw_workload cw_repl;

#endif
