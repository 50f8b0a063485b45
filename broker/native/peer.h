/* peer.h - this broker's requests to the other brokers of a cluster (#14): a follower's
 * replication messages (FETCH, EPOCH_REQ) to a shard's leader, answered on the main loop.
 *
 * Each peer broker gets a libsluice client (the native protocol's own client: framing,
 * pipelining, reconnects, TLS and SCRAM come with it) and a sender thread of its own, made
 * on the first message to it. Why threads: connecting blocks, and so may a send while the
 * connection is re-made; the main loop never waits for a peer, and a peer that is down holds
 * up only its own thread. The answers come back through one eventfd whose read is armed on
 * the main loop, and their callbacks run there.
 *
 * It also forwards the broker's own appends to shards another broker leads
 * (sl_peers_produce).
 *
 * Bounds: SL_PEERS_MAX peers, SL_PEER_QUEUE_MAX messages waiting or in flight per peer (a
 * send past it is refused at once with SL_ELIMIT: the replica re-sends on its timeout).
 *
 * Threading: sl_peers_* on the main loop only; callbacks run there too.
 */
#ifndef SL_NATIVE_PEER_H
#define SL_NATIVE_PEER_H

#include "broker/cluster/repl.h"
#include "common/ring.h"

#include <stddef.h>
#include <stdint.h>

#define SL_PEERS_MAX      64u  /* brokers this one talks to */
#define SL_PEER_QUEUE_MAX 256u /* messages per peer, waiting or in flight */
#define SL_PEER_ADDR_MAX  256u /* "host:port" */

struct sl_peers;

struct sl_peers_config {
    int32_t self;                /* this broker's id (the messages' `from`) */
    uint32_t connect_timeout_ms; /* 0: 2000 */
    /* Credentials and TLS for the peers (NULL: none), as libsluice takes them. Borrowed for
     * the life of the peers. */
    const char *user;
    const char *password;
    const char *credentials_file; /* 'user = ' and 'password = ' lines, as libsluice reads */
    int tls;
    const char *tls_ca_file;
    const char *tls_cert_file;
    const char *tls_key_file;
};

/* The outcome of one message: err SL_OK and the peer's answer (borrowed for the call, its
 * batches too), or the failure with why (the peer cannot be reached: SL_ECLOSED; the answer
 * was refused by the broker: its code; malformed: SL_EPROTO). */
typedef void (*sl_peers_cb)(void *ctx, int err, const char *why, const struct sl_repl_msg *answer);

/* Errors: SL_ESYS (eventfd), SL_ENOMEM. */
int sl_peers_open(struct sl_ring *ring, const struct sl_peers_config *cfg, struct sl_peers **out);

/* Sends `msg` (a FETCH or EPOCH_REQ; copied) about shard `shard` of `stream` to broker
 * msg->to at `addr`. `cb` runs exactly once, on the main loop, after this returns - unless
 * this returns an error. `extra_wait_ms`: how long the peer may hold the answer (a fetch's
 * long poll). Errors: SL_ELIMIT (the peer's queue is full, or SL_PEERS_MAX peers), SL_EINVAL
 * (an address too long, a message that is not a request), SL_ECLOSED (closing), SL_ENOMEM. */
int sl_peers_send(struct sl_peers *p, const char *addr, const char *stream, uint32_t shard,
                  const struct sl_repl_msg *msg, uint32_t extra_wait_ms, sl_peers_cb cb, void *ctx);

/* The outcome of a forwarded append: SL_OK with the batch's first sequence once durable at
 * the shard's leader (ack = durable there: on min_insync_replicas brokers), or why not (the
 * leader's code - SL_ENOT_LEADER when it moved -, SL_ECLOSED when it cannot be reached). */
typedef void (*sl_peers_produce_cb)(void *ctx, int err, const char *why, uint64_t base_seq);

/* Appends `batch` (len bytes, copied) to shard `shard` of `stream` at broker `to` at `addr`,
 * its leader, as a Produce with ack = durable: the broker's own writes to a replicated shard
 * it does not lead (a queue group's dead letters; an HTTP API's batch, `caller_routed` when
 * that API chose the shard by its own rule). `cb` runs exactly once, on the main loop,
 * after this returns - unless this returns an error. Errors: as sl_peers_send. */
int sl_peers_produce(struct sl_peers *ps, int32_t to, const char *addr, const char *stream,
                     uint32_t shard, const uint8_t *batch, size_t len, bool caller_routed,
                     sl_peers_produce_cb cb, void *ctx);

/* Stops every sender, fails what is still queued or in flight with SL_ECLOSED (callbacks
 * run, here), and frees everything. NULL-safe. */
void sl_peers_close(struct sl_peers *p);

#endif
