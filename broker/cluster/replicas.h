/* replicas.h - the broker's replica manager (#14): one sl_repl (repl.h) per shard of every
 * replicated stream, driven on the main loop; its effects become shard appends (through the
 * produce path on a leader, the shard's log on a follower), reads, truncates and epoch-file
 * saves, peer messages and metadata writes (docs/REPLICATION.md, "The replica manager").
 *
 * The streams of a cluster live in the metadata store: /streams/<name> holds a stream's
 * settings, /shards/<name>/<k> each shard's state (controller.h). Any broker creates a
 * stream (the states, then the /streams node that publishes it, as ZooKeeper-era Kafka's
 * admin wrote a topic's assignment); every broker watches /streams, creates the streams it
 * lacks in its own catalog, and gives each of their shards a replica that reads (and
 * watches) the shard's state. The controller elects leaders in those states.
 *
 * The engine sees a replica only through struct sl_engine_repl (engine.h) and the shard's
 * read_end / read_err; wire formats stay in the native front-end, which carries the
 * messages (the transport below, and sl_replicas_serve for requests from followers).
 *
 * Threading: the main loop only.
 */
#ifndef SL_CLUSTER_REPLICAS_H
#define SL_CLUSTER_REPLICAS_H

#include "broker/cluster/repl.h"
#include "broker/engine/engine.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SL_REPLICAS_RF_DEFAULT       3u          /* replication factor when a create names none */
/* Shards plus streams of the cluster's streams, at most: every broker watches each shard's
 * state and the controller each stream's list of shards, one ZooKeeper watch each, and the
 * store bounds its watches (SL_META_ZK_WATCHES_MAX, 4,096; the rest for /streams, the
 * brokers, /reassign, /notify). A creation past it is refused (replicas_create.c). */
#define SL_REPLICAS_WATCHED_MAX      4000u
#define SL_REPLICAS_SERVE_BYTES_MAX  (64u << 20) /* read buffers serving followers, in all */
#define SL_REPLICAS_FOLLOW_BYTES_MAX (64u << 20) /* fetched batches not yet written, in all */

struct sl_engine;
struct sl_member;
struct sl_replicas;

/* The outcome of a message to a peer (peer.h's sl_peers_cb). */
typedef void (*sl_replicas_reply_fn)(void *ctx, int err, const char *why,
                                     const struct sl_repl_msg *answer);

/* How a follower's requests reach a leader (the native front-end's peer links); `produce`
 * forwards the broker's own appends to a shard another broker leads (peer.h
 * sl_peers_produce; may be NULL: none). */
struct sl_replicas_transport {
    void *ctx;
    int (*send)(void *ctx, const char *addr, const char *stream, uint32_t shard,
                const struct sl_repl_msg *msg, uint32_t extra_wait_ms, sl_replicas_reply_fn cb,
                void *cb_ctx);
    int (*produce)(void *ctx, int32_t to, const char *addr, const char *stream, uint32_t shard,
                   const uint8_t *batch, size_t len, bool caller_routed,
                   sl_engine_forwarded_fn cb, void *cb_ctx);
};

struct sl_replicas_config {
    int32_t self;                /* this broker's node id */
    uint32_t min_insync;         /* acks need this many in-sync replicas (capped by the RF) */
    uint64_t replica_lag_ms;     /* a follower behind for this long leaves the ISR */
    uint64_t session_timeout_ms; /* the ZooKeeper session's (cut from the store: below) */
    /* Bytes a second served, as leader, to the replicas reassignments add (all shards);
     * 0: no limit (replicas_serve.c, "throttle"). */
    uint64_t reassign_throttle;
};

/* Starts the manager: installs the engine's hooks, follows the member's session. Errors:
 * SL_ENOMEM. */
int sl_replicas_open(struct sl_engine *e, struct sl_member *mb,
                     const struct sl_replicas_transport *t, const struct sl_replicas_config *cfg,
                     struct sl_replicas **out);
/* Timeouts, retries; call every loop tick. Cut from ZooKeeper for a third of the session
 * timeout (past the client's own 2/3 to notice: the session may have expired unseen), a
 * leader whose followers have gone silent as well stops acknowledging and answers its
 * pending appends NOT_LEADER (sl_repl_cut), until the store is back and the states are
 * read again; leaders whose followers still fetch go on (ZooKeeper down for everyone). */
void sl_replicas_tick(struct sl_replicas *rs, uint64_t now_ms);
/* What /metrics shows of this broker's replicas (broker/api/ops.c). */
struct sl_replicas_stats {
    uint32_t leading, following; /* this broker's live replicas by role */
    uint32_t waiting;            /* named in a shard's replicas, not live (no leader, failed) */
    uint32_t under_replicated;   /* shards led here whose ISR lacks some of their replicas */
    uint32_t under_min_isr;      /* ... fewer in sync than min_insync_replicas: refusing appends */
    uint32_t offline;            /* shards of the cluster with no leader, as read here */
    uint64_t serve_bytes;        /* read buffers serving followers */
    uint64_t follow_bytes;       /* fetched batches not yet written */
    uint32_t throttled;          /* reads for replicas a move adds, held by the throttle */
    uint64_t streams_dropped;    /* copies dropped since the start (deleted in the cluster) */
};
void sl_replicas_stats(const struct sl_replicas *rs, struct sl_replicas_stats *out);

/* This broker is cut off - from ZooKeeper and from the followers of a shard it leads - for
 * that long (ms; 0: not): its view of the leaders is likely stale (Metadata says so and
 * sends clients to another broker rather than answer from it). */
uint64_t sl_replicas_cut_ms(const struct sl_replicas *rs);
/* The broker stops serving: requests still waiting are answered (SL_ECLOSED) while the
 * network can carry the answers, and the member is let go (it may be freed before the
 * replicas, whose metadata calls end with its store). NULL-safe. */
void sl_replicas_stop(struct sl_replicas *rs);
/* The broker begins to stop (before its connections drain): every shard it leads leaves the
 * role (sl_repl_resign), so produces waiting for follower acks - which the draining
 * connections no longer bring - are answered NOT_LEADER at once and the producers go to the
 * next leader, elected when this broker's session closes at the end of the stop, instead of
 * the drain waiting out shutdown_timeout_ms; followers' requests waiting here are answered
 * (SL_ENOT_LEADER: they re-read the state) for the same reason. NULL-safe. */
void sl_replicas_resign(struct sl_replicas *rs);
/* Reads serving followers, or writes and cuts of replicas, are still in flight (run the loop
 * until not, after a stop). */
bool sl_replicas_busy(const struct sl_replicas *rs);
/* Frees everything (after the peers and the member are closed: their callbacks ran).
 * NULL-safe. */
void sl_replicas_close(struct sl_replicas *rs);

/* A stream to create in the cluster. */
struct sl_replicas_stream {
    const char *name;
    uint32_t shard_count;
    uint32_t retention_hours;
    uint64_t retention_bytes;
    const char *compression;
    uint32_t replication_factor; /* 0: SL_REPLICAS_RF_DEFAULT, capped by the live brokers */
};
/* Told when the stream exists in this broker's catalog (err SL_OK), or why not (SL_EEXIST:
 * the cluster has it already). `why` borrowed for the call. */
typedef void (*sl_replicas_created_fn)(void *ctx, int err, const char *why);
/* Errors at once, with `why`: SL_EINVAL (more replicas than live brokers), SL_ENOT_LEADER
 * (this broker is not registered: no session), SL_ENOMEM. */
int sl_replicas_create_stream(struct sl_replicas *rs, const struct sl_replicas_stream *s,
                              sl_replicas_created_fn cb, void *ctx, char *why, size_t why_len);

/* Deletes a cluster stream: removed from ZooKeeper (/streams/<name>, then its shards'
 * states), and every broker drops its copy (this one before it answers). Told SL_OK, or why
 * not (SL_ENOTFOUND: not in the cluster). Errors at once, with `why`: SL_ENOT_LEADER (no
 * session), SL_ENOMEM, the store's refusal. */
typedef void (*sl_replicas_deleted_fn)(void *ctx, int err, const char *why);
int sl_replicas_delete_stream(struct sl_replicas *rs, const char *name,
                              sl_replicas_deleted_fn cb, void *ctx, char *why, size_t why_len);

/* A follower's request (FETCH or EPOCH_REQ) for shard `shard` of `stream`, decoded; the
 * answer goes to fn exactly once (possibly inside this call; its batches borrowed for fn). */
typedef void (*sl_replicas_answer_fn)(void *ctx, const struct sl_repl_msg *answer);
void sl_replicas_serve(struct sl_replicas *rs, const char *stream, uint32_t shard,
                       const struct sl_repl_msg *m, sl_replicas_answer_fn fn, void *ctx);

/* Who leads shard `shard` of `stream` and its replicas, as this broker last read the shard's
 * state (m->version -1 never). SL_ENOTFOUND: no replicated state known for that shard (a
 * single broker: rs == NULL; the caller answers itself as the leader). */
/* A follower as its leader sees it. */
struct sl_replicas_lag {
    int32_t node;
    uint64_t behind;           /* records not acknowledged durable by it */
    uint64_t caught_up_ms_ago; /* since its fetch last reached the leader's end */
};
/* The followers of (stream, shard) if this broker leads it: their count, written to out
 * (SL_REPL_REPLICAS_MAX entries); 0 otherwise. */
uint32_t sl_replicas_lag(const struct sl_replicas *rs, const char *stream, uint32_t shard,
                         struct sl_replicas_lag *out);
int sl_replicas_route(const struct sl_replicas *rs, const char *stream, uint32_t shard,
                      struct sl_repl_meta *m);
/* The replica set (stream, shard) is moving to, as this broker last read its state: the
 * count written to out (SL_REPL_REPLICAS_MAX entries), 0 when no move is in progress. */
uint32_t sl_replicas_target(const struct sl_replicas *rs, const char *stream, uint32_t shard,
                            int32_t *out);

/* Asks the controller to move (stream, shard) to the replicas ids[0, n) (a reassignment,
 * docs/REPLICATION.md): checked here against this broker's view (the shard's state, the live
 * brokers), then written as the request node /reassign/<stream>:<k> the controller applies.
 * cb is told once the request is in ZooKeeper (SL_OK: accepted; the move then shows in the
 * shard's state) or why not; `why` borrowed for the call. Errors at once, with `why`:
 * SL_ENOTFOUND (no such replicated shard), SL_EINVAL (an id not a live broker, named twice,
 * fewer than min_insync_replicas, too many), SL_ECONFLICT (another move of the shard is in
 * progress), SL_EEXIST (this move is in progress: nothing to do), SL_ENOT_LEADER /
 * SL_EAGAIN (not registered now, or the shard's state not read yet: retry), SL_ENOMEM. */
typedef void (*sl_replicas_reassigned_fn)(void *ctx, int err, const char *why);
int sl_replicas_reassign(struct sl_replicas *rs, const char *stream, uint32_t shard,
                         const int32_t *ids, uint32_t n, sl_replicas_reassigned_fn cb, void *ctx,
                         char *why, size_t why_len);
/* Asks the controller to cancel the move of (stream, shard) in progress: the request node
 * with the data "cancel", applied as sl_ctrl_move_cancel says (back to the replicas before
 * the move). cb as for sl_replicas_reassign. Errors at once, with `why`: SL_ENOTFOUND (no such
 * replicated shard, or no move in progress: nothing to cancel), SL_EINVAL (a move started
 * before cancelling existed; no replica from before the move alive in the ISR: the move must
 * go on), SL_ENOT_LEADER / SL_EAGAIN (retry), SL_ENOMEM; through cb:
 * SL_ECONFLICT (another request for the shard is waiting for the controller). */
int sl_replicas_reassign_cancel(struct sl_replicas *rs, const char *stream, uint32_t shard,
                                sl_replicas_reassigned_fn cb, void *ctx, char *why,
                                size_t why_len);

#endif /* SL_CLUSTER_REPLICAS_H */
