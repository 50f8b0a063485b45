/* controller.h - the cluster controller: election and leader elections for every shard (#14).
 *
 * One broker at a time is the controller: it holds the ephemeral /controller node and has
 * bumped /controller_epoch by compare-and-swap. It watches the registered brokers
 * (/brokers/ids/<id>, ephemeral) and keeps every shard's state {leader, leader_epoch, isr,
 * replicas} (/shards/<stream>/<k>) in memory; when a broker dies, returns or restarts it
 * elects leaders from the ISR only (unless unclean election is configured), bumps their
 * leader_epoch and removes dead brokers from ISRs. Every write is a multi that starts with
 * check(/controller_epoch @ the version it wrote), so a deposed controller cannot write
 * (KAFKA-6082); up to SL_META_MULTI_MAX - 1 shards go in one multi and several multis are
 * in flight, which is how a failover of 100,000 shards stays within seconds
 * (docs/REPLICATION.md, "Controller").
 *
 * Runs on the metadata store's loop (meta.h): every input is a store callback. Session
 * expiry or being deposed makes it DEAD: the owner closes the store (no callback runs
 * after that), frees the controller, and starts over with a new store.
 */
#ifndef SL_CLUSTER_CONTROLLER_H
#define SL_CLUSTER_CONTROLLER_H

#include "broker/cluster/meta.h"
#include "broker/cluster/repl.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Calls outstanding, pipelined: shard reads, write multis, broker node reads (plus a few
 * listings). Their sum stays well under a store's own bound (meta_zk: 256 calls), which
 * other users of the same session share; one ZooKeeper saturates below it anyway. */
#define SL_CTRL_READS_INFLIGHT_MAX  128u
#define SL_CTRL_MULTIS_INFLIGHT_MAX 8u
#define SL_CTRL_BROKER_READS_MAX    32u
#define SL_CTRL_LISTS_INFLIGHT_MAX  16u
/* One encoded shard state, at its longest (ids and epochs as the decoder allows: 10 digits):
 * "leader=" 7 + 10, " epoch=" 7 + 10, " session=" 9 + 16 hex, " isr=" 5 + 76 (7 ids, 6
 * commas), " replicas=" 10 + 76, " target=" 8 + 76, " adding=" 8 + 65 (6 ids: the move keeps
 * at least one old replica) = 383, plus the encoder's NUL. */
#define SL_CTRL_STATE_MAX           384u
#define SL_CTRL_NAME_MAX            200u /* "<stream>/<k>" */
#define SL_CTRL_BROKERS_MAX         4096u
#define SL_CTRL_MOVES_INFLIGHT_MAX  16u /* reassignment requests read or applied at once */
#define SL_CTRL_MOVE_POLL_TICKS     5u  /* a moving shard is re-read every 5 ticks (~0.5 s):
                                         * the leader adds caught-up replicas to its ISR with
                                         * writes the controller does not watch */
/* The largest leader epoch a shard state holds: decode refuses more, and no election is made
 * from it (2^31 elections of one shard do not happen; the bound keeps epoch + 1 defined and
 * every written state decodable). */
#define SL_CTRL_EPOCH_MAX (INT32_MAX - 1)
/* bytes of data in one multi: far below ZooKeeper's packet bound (SL_META_DATA_MAX) so
 * paths and headers fit too */
#define SL_CTRL_MULTI_BYTES_MAX (64u * 1024u)

_Static_assert(SL_CTRL_MULTI_BYTES_MAX >= SL_META_MULTI_MAX * (SL_CTRL_STATE_MAX + 16u),
               "a full multi of states fits the byte bound");

enum sl_ctrl_phase {
    SL_CTRL_CANDIDATE, /* trying to create /controller, or watching it */
    SL_CTRL_BUMPING,   /* holds /controller; bumping /controller_epoch */
    SL_CTRL_ACTIVE,    /* the controller */
    SL_CTRL_DEAD,      /* session lost or deposed: close the store and start over */
};

/* A shard's state as stored: the replica's view plus the session of the broker that was
 * elected leader (a restarted broker has a new session: its epochs are re-elected). */
struct sl_ctrl_state {
    struct sl_repl_meta m; /* m.version is the node's version */
    int64_t leader_session;
    /* A reassignment in progress (n_target > 0): the replica set the shard moves to. While
     * it lasts m.replicas is the old set followed by the target's new members, so the new
     * ones copy the log as followers and join the ISR by the leader's usual rule; once the
     * whole target is in the ISR the controller switches (sl_ctrl_decide). */
    uint32_t n_target;
    int32_t target[SL_REPL_REPLICAS_MAX];
    /* While a move lasts, the replicas it adds (Kafka's addingReplicas): the last n_adding of
     * m.replicas, the target's members that were not replicas before; the rest of m.replicas
     * is the set before the move, which a cancel returns to (sl_ctrl_move_cancel). Stored as
     * " adding=4" after the target. adding_unknown: a move decoded from a state written
     * before the field existed (which replicas it adds cannot be told apart: no cancel). */
    uint32_t n_adding;
    bool adding_unknown;
};

struct sl_ctrl_cfg {
    int32_t self;
    bool unclean_election; /* elect a live out-of-sync replica when no ISR member lives */
};

struct sl_ctrl_stats {
    uint64_t multis_ok, multis_failed, shards_written, elections, reads;
    uint64_t notified; /* shards decided again at a broker's request (SL_CTRL_PATH_NOTIFY) */
    uint64_t moves_started, moves_refused, moves_done; /* reassignments */
    uint64_t moves_cancelled;                          /* cancel requests applied */
    uint32_t shards, brokers_live;
    uint32_t dirty, busy, reads_inflight, multis_inflight;
};

struct sl_ctrl;

/* Starts the candidacy on `meta` (borrowed; it outlives the controller). */
int sl_ctrl_new(struct sl_ctrl **out, const struct sl_ctrl_cfg *cfg, struct sl_meta *meta);
void sl_ctrl_free(struct sl_ctrl *c); /* after sl_meta_close(meta): no callback may follow */

enum sl_ctrl_phase sl_ctrl_phase(const struct sl_ctrl *c);
int32_t sl_ctrl_epoch(const struct sl_ctrl *c);
void sl_ctrl_stats(const struct sl_ctrl *c, struct sl_ctrl_stats *s);
/* Active, every shard loaded, nothing to write or in flight. */
bool sl_ctrl_idle(const struct sl_ctrl *c);

/* Call every ~100 ms from the owner's loop: retries what the store refused at once
 * (SL_ELIMIT: its bound on outstanding calls) or answered with an error that set no
 * watch - a listing of brokers or streams - and resumes reads and writes. */
void sl_ctrl_tick(struct sl_ctrl *c);

/* Creates stream `name` with n_shards shards of `rf` replicas placed over the live brokers
 * (only while ACTIVE). Errors: SL_EINVAL (rf > live brokers, rf > SL_REPL_REPLICAS_MAX, a
 * bad name), SL_ENOT_LEADER (not the controller), SL_ENOMEM. The shards appear through the
 * store's watches; the outcome of each multi shows there too. */
int sl_ctrl_create_stream(struct sl_ctrl *c, const char *name, uint32_t n_shards, uint32_t rf);

/* Pure: the state that starts moving `cur` to the replica set target[0, n) (a reassignment,
 * docs/REPLICATION.md): replicas = the current ones then the target's new members, the same
 * leader, epoch and ISR (nothing is elected; the new members join the ISR when caught up).
 * Errors, with `why`: SL_EINVAL (empty, more than SL_REPL_REPLICAS_MAX, a duplicate or
 * negative id, old and new together past SL_REPL_REPLICAS_MAX), SL_EEXIST (the same target
 * is in progress already: nothing to write), SL_ECONFLICT (another target is in progress). */
int sl_ctrl_move_start(const struct sl_ctrl_state *cur, const int32_t *target, uint32_t n,
                       struct sl_ctrl_state *next, char *why, size_t why_len);
/* Pure: the state that cancels the move in progress of `cur`: replicas = the set before the
 * move (the adding ones removed, the order kept), ISR = its members in that set, no target.
 * A leader of the old set that is alive in the session it was elected in stays, same epoch
 * (it drops the removed peers within its epoch, as at a switch). Any other leader (one of
 * the added replicas, elected after the old leader died; or a dead one) is replaced by the
 * first live old replica in the ISR, epoch + 1, as an election does; `live`/`sessions` as
 * for sl_ctrl_decide. Errors, with `why`: SL_ENOTFOUND (no move in progress: nothing to
 * cancel), SL_EINVAL (the state was written before the adding field: the old set is not
 * known; or no old replica in the ISR is alive to lead: cancelling would drop the only
 * copies of acknowledged records, so the move must go on). */
int sl_ctrl_move_cancel(const struct sl_ctrl_state *cur, const int32_t *live,
                        const int64_t *sessions, uint32_t n_live, struct sl_ctrl_state *next,
                        char *why, size_t why_len);
/* The data of a reassignment request node (/reassign/<stream>:<k>): "1,2,4", 1 to
 * SL_REPL_REPLICAS_MAX decimal ids; SL_EPROTO for anything else (any ZooKeeper client can
 * write the node). Duplicates are sl_ctrl_move_start's to refuse. The data
 * SL_CTRL_MOVE_CANCEL asks to cancel the move in progress instead (*n = 0, *cancel). */
#define SL_CTRL_MOVE_CANCEL "cancel"
int sl_ctrl_move_parse(const uint8_t *data, size_t len, int32_t *ids, uint32_t *n, bool *cancel);

/* Pure: replicas of shard `k` of a stream whose name hashes to `h`, over `n` brokers
 * (sorted ids): consecutive brokers from a start that rotates with k and h, so leaders
 * (the first replica) spread evenly and a stream's shards do not all start on one broker. */
void sl_ctrl_place(const int32_t *brokers, uint32_t n, uint32_t rf, uint64_t h, uint32_t k,
                   int32_t *out);

/* Pure: FNV-1a of a stream's name, what sl_ctrl_place rotates by (and the shard index). */
uint64_t sl_ctrl_hash_name(const char *s);

/* Where a broker asks the controller to decide a shard again now (it reads shard states at
 * discovery and after its own writes, with no watch on each of them): a persistent
 * sequential child whose data is the shard's name under /shards, "<stream>/<k>". The
 * controller watches the children, reads each, decides that shard again and removes the
 * child. A failed replica leaving its shard's leadership writes one (replicas_meta.c). */
#define SL_CTRL_PATH_NOTIFY       "/notify"
#define SL_CTRL_NOTIFY_ROUND_MAX  64u /* requests read per listing */

/* The shard state node's data: one line of text, readable with zkCli
 * ("leader=1 epoch=4 session=1a2b isr=1,2,3 replicas=1,2,3,4", then " target=1,2,4 adding=4"
 * while a reassignment is in progress; `adding` may be empty, "adding=", and is missing in a
 * state written before it existed: adding_unknown). decode returns SL_EPROTO for
 * anything else (bytes from the store are not trusted), `adding` that is not the tail of
 * `replicas`, all of them, or a member not in `target` included. */
size_t sl_ctrl_state_encode(const struct sl_ctrl_state *s, char *buf, size_t cap);
int sl_ctrl_state_decode(const uint8_t *data, size_t len, struct sl_ctrl_state *s);

/* Pure: what the controller writes for a shard given the live brokers (ids and sessions),
 * or false when nothing changes. For tests and the simulator's checks too. A shard moving
 * (n_target > 0) whose leader is alive and whose ISR holds the whole target switches:
 * replicas = target, ISR = its members in the target, the move ends; a leader that is not in
 * the target hands over to the first target member (epoch + 1). */
bool sl_ctrl_decide(const struct sl_ctrl_state *cur, const int32_t *live, const int64_t *sessions,
                    uint32_t n_live, bool unclean, struct sl_ctrl_state *next);

#endif /* SL_CLUSTER_CONTROLLER_H */
