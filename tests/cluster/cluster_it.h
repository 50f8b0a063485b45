/* cluster_it.h - what the cluster tests on real processes share (#14): one ZooKeeper
 * (zk_harness.h) with the `--cluster` and session arguments its brokers take, brokers
 * started on free ports (tests/integration/harness.h), a client over the live brokers'
 * bootstrap list, and a replicated stream made once enough brokers registered.
 */
#ifndef SL_TEST_CLUSTER_IT_H
#define SL_TEST_CLUSTER_IT_H

#include "zk_harness.h"

#include "client/sluice.h"
#include "tests/integration/harness.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#ifndef CHECK
#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #c);                           \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)
/* Whether `id` is among ids[0 .. n) (a route's replicas, ISR or target). */
bool cit_has(const int32_t *ids, size_t n, int32_t id);

/* Where each started one of brokers[0 .. n) keeps its data and whether it runs (an atexit
 * line: what a failure left to look at). */
void cit_print_brokers(struct it_broker *brokers, int n);

#endif

struct cit {
    struct zkh zk;
    char cluster_arg[128]; /* zk://HOST:PORT/sluice */
    char session_arg[32];  /* the session timeout, ms */
};

/* What a cluster test needs before it starts: the integration preflight (sluiced built,
 * limits) and java with the ZooKeeper jar. Returns 0, or the exit code to return (77: skip).
 * Also makes stdout line-buffered (it interleaves with the brokers' stderr). */
int cit_preflight(void);

/* Starts the ZooKeeper. Returns 0 or -1. */
int cit_start(struct cit *c, uint32_t session_ms);

/* Starts broker `node_id` of the cluster on a free port, at info level (the cluster lines -
 * session established, registered, roles - tell what a failure did). Returns 0 or -1. */
int cit_broker_start(const struct cit *c, struct it_broker *b, int node_id);

/* A client over the bootstrap list of the live ones of brokers[0 .. n) (NULL: cannot). */
sluice_client *cit_connect(struct it_broker *brokers, int n);

/* Creates `name` with `so` through `cl`, retrying while the brokers register (up to
 * timeout_ms). *out (may be NULL) gets the description. Returns the last SLUICE_ code. */
int cit_stream_create(sluice_client *cl, const char *name, const struct sluice_stream_opts *so,
                      uint32_t timeout_ms, struct sluice_stream_info **out);

/* A producer's delivery callback: ctx is a uint32_t counting the failures (atomically), each
 * printed with its cause. */
void cit_on_delivery(void *ctx, int err, uint32_t shard, uint64_t seq);

/* Writes `n` values "v0".."v<n-1>" with keys "<key_prefix><i>" to `stream`, ack = durable
 * (retried until the leaders are elected); CHECKs every one was acknowledged. */
void cit_write_values(sluice_client *cl, const char *stream, const char *key_prefix, uint32_t n);

/* The end (next sequence) of shard k of `stream`, as describe says (CHECKed). */
uint64_t cit_shard_end(sluice_client *cl, const char *stream, uint32_t k);

/* The index (0 .. n_brokers - 1; broker ids are index + 1) of the broker that leads shard k
 * of `stream` as Metadata says, or -1. */
int cit_leader(sluice_client *cl, const char *stream, uint32_t k, int n_brokers);

#endif
