/* zk_cluster.h (test) - one ZooKeeper (zk_harness.h) and brokers joining it on 127.0.0.1,
 * for the cluster tests that need no network namespace (netns_harness.h for those that
 * do): broker i is node i + 1 in chroot /sluice-it. */
#ifndef SL_TEST_ZK_CLUSTER_H
#define SL_TEST_ZK_CLUSTER_H

#include "tests/integration/harness.h"
#include "zk_harness.h"

#include <stdint.h>

struct zkc {
    struct zkh zk;
    char cluster_arg[128]; /* --cluster zk://HOST:PORT/sluice-it */
    char session_arg[32];  /* --cluster-session-timeout-ms */
};

/* 0 when io_uring, java and the ZooKeeper jar are here; else the code to exit with (77:
 * skip), said why. Call first in main. */
int zkc_available(void);

/* Starts ZooKeeper, then brokers[0..n) with sessions of session_ms and the flags in
 * `extra` (NULL-terminated, or NULL). 0, or -1 (said why). */
int zkc_start(struct zkc *c, struct it_broker *brokers, int n, uint32_t session_ms,
              const char *const *extra);

/* Starts broker i (node id i + 1) of the cluster, on a free port. 0, or -1. */
int zkc_start_broker(struct zkc *c, struct it_broker *b, int i, const char *const *extra);

/* Stops every broker still running (each must exit 0: no sanitizer report), removes their
 * directories and ZooKeeper's. 0, or -1 when a stop failed. */
int zkc_stop(struct zkc *c, struct it_broker *brokers, int n);

#endif
