/* repl.h - one shard's replica: the replication protocol as a pure state machine (#14).
 *
 * Sans-IO: every input is a function call (an append as leader, a message from a peer, a
 * disk completion, a metadata change, a tick with the time) and every output is an effect
 * the caller performs (send a message, write+fdatasync batches, truncate the log, persist
 * the epoch file, acknowledge appends, write the shard's ISR to the metadata store). Nothing
 * here reads a clock, a socket or a file, so the deterministic simulator (tests/sim/) runs
 * the very code the broker runs. docs/REPLICATION.md has the protocol, its invariants and
 * the fault model.
 *
 * The model is Kafka's ZooKeeper-era replication with its later fixes: the leader stamps its
 * leader_epoch into every batch; followers fetch with their epoch and the epoch of their last
 * entry (KIP-320), fdatasync what they get before fetching again, so a fetch offset is a
 * durable ack; high watermark (HW) = lowest durable end over the ISR, leader included; a
 * replica that becomes follower asks the leader where its last epoch ended (KIP-101
 * OffsetForLeaderEpoch) and truncates there, never to its own HW; the ISR is changed by the
 * leader with a versioned write and the leader acts only on an ISR it has seen written.
 *
 * Threading: none; one owner calls everything. Effects are valid until the next call on the
 * same replica (their batch pointers borrow the input of the call that made them).
 */
#ifndef SL_CLUSTER_REPL_H
#define SL_CLUSTER_REPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SL_REPL_REPLICAS_MAX       7u   /* replication factor bound (ISR and replicas lists) */
#define SL_REPL_EPOCHS_MAX         256u /* epoch -> start offset entries kept (oldest dropped) */
#define SL_REPL_FETCH_BYTES_MAX    (1u << 20) /* bytes in one fetch answer (whole batches, >= 1) */
#define SL_REPL_FETCH_BATCHES_MAX  64u        /* batches in one fetch answer */
#define SL_REPL_FETCH_WAIT_MS      500u       /* a caught-up follower's fetch is parked this long */
#define SL_REPL_REQ_TIMEOUT_MS     2000u /* a follower re-sends an unanswered request after this */
#define SL_REPL_REFUSED_RETRY_MS   100u  /* ... and one its leader refused (epoch, not ready) */
#define SL_REPL_REPLICA_LAG_MIN_MS (2 * (SL_REPL_FETCH_WAIT_MS + SL_REPL_REQ_TIMEOUT_MS))
#define SL_REPL_DISK_INFLIGHT_MAX  32u  /* disk operations queued by one replica */
#define SL_REPL_EFFECTS_MAX        48u  /* effects one call may produce */
#define SL_REPL_NONE               (-1) /* no replica / no epoch */

_Static_assert(SL_REPL_EFFECTS_MAX >= 4 * SL_REPL_REPLICAS_MAX + 8,
               "a tick may answer every follower and write the ISR");

enum sl_repl_role {
    SL_REPL_IDLE,     /* no usable metadata yet, not a replica, offline, or waiting for an epoch */
    SL_REPL_LEADER,   /* accepts appends once `ready` (its epoch file is durable) */
    SL_REPL_FOLLOWER, /* truncating (asking where its epoch ended) then fetching */
    SL_REPL_FATAL,    /* a disk operation failed: stopped for good (as the single-node engine) */
};

/* The shard's state in the metadata store, as written by the controller or the leader. */
struct sl_repl_meta {
    int32_t leader;       /* broker id, SL_REPL_NONE when offline */
    int32_t leader_epoch; /* bumped by the controller at every leader election */
    int32_t version;      /* the metadata node's version (ZooKeeper's data version) */
    uint32_t n_isr, n_replicas;
    int32_t isr[SL_REPL_REPLICAS_MAX];
    int32_t replicas[SL_REPL_REPLICAS_MAX]; /* the first one is the preferred leader */
};

/* One batch of records as the replica sees it: where, how many, which epoch stamped it.
 * data/len are the caller's bytes, passed through untouched. */
struct sl_repl_batch {
    int64_t base_offset;
    uint32_t count; /* records, >= 1 */
    int32_t epoch;
    const void *data;
    size_t len;
};

enum sl_repl_msg_type {
    SL_REPL_MSG_FETCH,      /* follower -> leader */
    SL_REPL_MSG_FETCH_RESP, /* leader -> follower */
    SL_REPL_MSG_EPOCH_REQ,  /* follower -> leader: where did `epoch` end in your log? */
    SL_REPL_MSG_EPOCH_RESP, /* leader -> follower */
};

/* One message. Fields by type:
 *   FETCH:      from, leader_epoch (the sender's), req_id, offset (fetch offset = the
 *               follower's durable end, its ack), epoch (epoch of its entry at offset-1, or
 *               SL_REPL_NONE when its log is empty: it then starts at `offset`, 0 or where
 *               a reset started it).
 *   FETCH_RESP: err, leader_epoch, req_id (echoed), offset (echoed fetch offset), hw,
 *               read_end (effect only: the caller reads whole batches from offset up to
 *               read_end, at most SL_REPL_FETCH_BYTES_MAX / _BATCHES_MAX, at least one),
 *               batches/n_batches (filled by the caller when it sends, given on receipt);
 *               err SL_ECONFLICT: the follower's log diverges, epoch/end_offset say where
 *               the leader's log has `epoch` ending: truncate there (KIP-320);
 *               log_start (every answer): the leader's first retained offset; err
 *               SL_ETRIMMED: the fetch offset is below it (retention removed what the
 *               follower asks for): a follower whose log ends below log_start resets its
 *               log to start empty there.
 *   EPOCH_REQ:  from, leader_epoch, req_id, epoch (the asker's last epoch).
 *   EPOCH_RESP: err, leader_epoch, req_id, epoch (largest epoch <= the asked one the leader
 *               has, SL_REPL_NONE if none), end_offset (where that epoch ends in its log).
 * err: SL_OK; SL_EFENCED (the request's leader_epoch is older than the leader's: refresh
 * metadata); SL_ENOT_LEADER (not the leader of that epoch, or the request's epoch is newer);
 * SL_ENOTFOUND (the sender is not a replica of the shard); SL_ECONFLICT (above). */
struct sl_repl_msg {
    enum sl_repl_msg_type type;
    int32_t from, to;
    int32_t leader_epoch;
    int err;
    uint64_t req_id;
    int64_t offset;
    int32_t epoch;
    int64_t end_offset;
    int64_t hw;
    int64_t read_end;
    int64_t log_start; /* FETCH_RESP */
    const struct sl_repl_batch *batches;
    uint32_t n_batches;
};

enum sl_repl_effect_type {
    SL_REPL_FX_SEND,         /* send msg to msg.to (fire and forget; losses are retried) */
    SL_REPL_FX_WRITE,        /* append batches at offset, fdatasync, then sl_repl_disk_done */
    SL_REPL_FX_TRUNCATE,     /* cut the log to offset, then sl_repl_disk_done */
    SL_REPL_FX_RESET,        /* empty the log, starting it at offset (0: a copy dropped) */
    SL_REPL_FX_SAVE_EPOCHS,  /* persist the epoch file (sl_repl_epochs), then sl_repl_disk_done */
    SL_REPL_FX_ACK,          /* appends ending at or below offset complete with err */
    SL_REPL_FX_META_WRITE,   /* write meta at meta.version, then sl_repl_meta_done */
    SL_REPL_FX_META_REFRESH, /* re-read the shard's metadata and call sl_repl_on_meta */
    SL_REPL_FX_FATAL,        /* the replica stopped (err says why); stop serving the shard */
};

/* Disk effects complete in the order they were given (one FIFO per replica). */
struct sl_repl_effect {
    enum sl_repl_effect_type type;
    int err;        /* ACK, FATAL */
    int64_t offset; /* WRITE: first offset; TRUNCATE: new end; RESET: new start (and end);
                     * ACK: end covered */
    const struct sl_repl_batch *batches; /* WRITE */
    uint32_t n_batches;                  /* WRITE */
    struct sl_repl_msg msg;              /* SEND */
    struct sl_repl_meta meta;            /* META_WRITE: the whole new state, at meta.version */
};

struct sl_repl_cfg {
    int32_t self;            /* this broker's id */
    uint32_t min_insync;     /* acks need |ISR| >= this (Kafka's min.insync.replicas) */
    uint64_t replica_lag_ms; /* a follower not caught up for this long leaves the ISR */
};

struct sl_repl_epoch {
    int32_t epoch;
    int64_t start_offset;
};

/* What a (re)started replica finds on disk: the log's end and the epoch file reconciled
 * with it (see sl_repl_init). */
struct sl_repl_recovered {
    int64_t log_start; /* the log's first offset (retention or a reset moved it past 0) */
    int64_t log_end;
    int32_t last_led_epoch; /* highest epoch this replica ever led (SL_REPL_NONE if never) */
    const struct sl_repl_epoch *epochs; /* borrowed; ascending epochs, starts <= log_end */
    uint32_t n_epochs;
};

struct sl_repl_peer {
    int32_t id;
    int64_t ack;           /* validated durable end (fetch offset) in this epoch; -1 unknown */
    uint64_t caught_up_ms; /* last time its fetch reached the leader's end (Kafka's rule) */
    uint64_t prev_fetch_ms;
    int64_t leo_at_prev_fetch;
    bool parked; /* a fetch waits for data (long poll) */
    uint64_t parked_req_id;
    int64_t parked_offset;
    uint64_t parked_ms;
    int64_t hw_sent; /* last HW told to it */
};

struct sl_repl {
    struct sl_repl_cfg cfg;
    enum sl_repl_role role;
    struct sl_repl_meta meta; /* last metadata applied (version -1: none yet) */
    int32_t epoch;            /* leader_epoch this replica acts in */
    int32_t last_led_epoch;   /* persisted before leading: never lead an epoch twice */
    int32_t saved_led_epoch;  /* what the epoch file durably says */
    bool ready;               /* leader: epoch file durable, appends accepted */
    bool suspended;           /* leader: metadata session lost, no acks until re-confirmed */
    uint64_t now_ms;

    int64_t log_start;   /* first offset of the log (retention trims, a reset moves it) */
    int64_t leo;         /* log end including queued writes */
    int64_t durable_end; /* end covered by completed writes (fdatasync) */
    int64_t hw;

    struct sl_repl_epoch epochs[SL_REPL_EPOCHS_MAX];
    uint32_t n_epochs;

    /* disk FIFO: the kind and end offset of each queued operation */
    uint8_t disk_kind[SL_REPL_DISK_INFLIGHT_MAX];
    int64_t disk_end[SL_REPL_DISK_INFLIGHT_MAX];
    uint32_t disk_head, disk_n;

    /* leader */
    struct sl_repl_peer peers[SL_REPL_REPLICAS_MAX];
    uint32_t n_peers;
    int64_t pending_end; /* end of the last accepted append */
    int64_t acked_end;   /* appends up to here are answered */
    int64_t failed_end;  /* ... of them, up to here with an error while leading (cut off) */
    bool isr_writing;    /* a META_WRITE is outstanding, its proposal not settled by a read */
    /* A META_WRITE's completion (sl_repl_meta_done) has not come yet, whatever the role or a
     * newer read say: no other is issued before it, so every completion is the answer to the
     * one write outstanding (two in flight had the first's answer taken for the second's,
     * which dropped an applied ISR expansion from the HW set: the simulator's seed 2790 with
     * SLUICE_IT_LONG=1). Kept across role changes; cleared only by the completion. */
    bool meta_pending;
    bool isr_unknown;    /* it ended with an unknown outcome: keep `proposed` until re-read */
    int32_t isr_base_version;
    uint32_t n_proposed;
    int32_t proposed[SL_REPL_REPLICAS_MAX];
    struct sl_repl_batch append_batch; /* the WRITE effect of the last append points here */

    /* follower */
    bool truncating; /* asking where an epoch ended */
    bool req_out;    /* a FETCH or EPOCH_REQ is outstanding */
    uint64_t req_id; /* id of the outstanding request */
    uint64_t req_resend_ms; /* the outstanding request is sent again at this time */
    int32_t req_epoch; /* EPOCH_REQ: the epoch asked */
    int64_t leader_hw; /* HW heard from the leader */

    /* statistics */
    uint64_t rejected_msgs; /* stale, duplicate or malformed messages dropped */

    struct sl_repl_effect fx[SL_REPL_EFFECTS_MAX];
    uint32_t n_fx;
};

/* Starts a replica from what recovery found. The caller rebuilt `rec.epochs` from the epoch
 * file: entries whose start is past the log end dropped, then entries added for batches
 * after the file's last entry (their headers carry the epoch), so the cache matches the
 * log whatever the file missed. It starts IDLE; the first sl_repl_on_meta gives it a role. */
void sl_repl_init(struct sl_repl *r, const struct sl_repl_cfg *cfg,
                  const struct sl_repl_recovered *rec, uint64_t now_ms);

/* Leader: accepts a batch (b->count records; b->data passed through). On SL_OK *base and
 * *epoch are what the caller stamps in the batch; a WRITE effect follows, and an ACK later.
 * Errors: SL_ENOT_LEADER (not leader, or suspended), SL_EAGAIN (epoch file not yet durable,
 * or the disk FIFO is full), SL_ENOT_ENOUGH_REPLICAS (|ISR| < min_insync), SL_EFATAL. */
int sl_repl_append(struct sl_repl *r, const struct sl_repl_batch *b, int64_t *base, int32_t *epoch);

/* The log's first offset as storage now has it (retention deleted its oldest segments):
 * a leader answers fetches below it with SL_ETRIMMED and the start. Never moves back,
 * never past leo (ignored then). Any role; the caller feeds it when it may have changed. */
void sl_repl_set_log_start(struct sl_repl *r, int64_t start);

/* A message from a peer (borrowed; its batches must stay valid until the effects are done). */
void sl_repl_on_msg(struct sl_repl *r, const struct sl_repl_msg *m);

/* The oldest queued disk effect completed (err != SL_OK: the replica goes FATAL). */
void sl_repl_disk_done(struct sl_repl *r, int err);

/* The shard's metadata as read (from a watch or a refresh). Older versions are ignored. A
 * state that no longer names this replica (a reassignment moved the shard away) makes it
 * drop its copy: a RESET effect to 0 (or at a later tick, while its disk FIFO is full). */
void sl_repl_on_meta(struct sl_repl *r, const struct sl_repl_meta *m);

/* The outstanding META_WRITE finished: SL_OK (applied: new version = written + 1),
 * SL_ECONFLICT (not applied), SL_EAGAIN/SL_ECLOSED (unknown: the caller re-reads). */
void sl_repl_meta_done(struct sl_repl *r, int err);

/* The metadata session was lost: stop acknowledging until metadata is read again. */
void sl_repl_suspend(struct sl_repl *r);
/* The broker has been cut from the metadata store for so long that its session may have
 * expired unseen. A leader whose followers still fetch goes on (the whole store may be
 * down: nobody can elect another leader meanwhile, and acks need those followers, who
 * would have left its epoch); one that has heard from fewer than min_insync - 1 of them
 * within `silent_ms` is cut off: suspended as above, its appends not yet acknowledged
 * answered SL_ENOT_LEADER at once (outcome unknown: producers resend them, with their ids,
 * to whoever leads) instead of hanging. Returns whether it is cut off. */
bool sl_repl_cut(struct sl_repl *r, uint64_t silent_ms);

/* The broker is stopping: a leader leaves the role now (appends pending complete with
 * SL_ENOT_LEADER, their outcome unknown to the producer; new ones are refused) rather than
 * wait for follower acks its draining connections no longer bring. It leads again only
 * through a new epoch, as after any loss of the role. Other roles: nothing. */
void sl_repl_resign(struct sl_repl *r);

/* Time passes (timeouts, long-poll expiry, ISR changes). now_ms never decreases. */
void sl_repl_tick(struct sl_repl *r, uint64_t now_ms);

/* The effects produced since the last sl_repl_fx_clear. */
static inline const struct sl_repl_effect *sl_repl_fx(const struct sl_repl *r, uint32_t *n)
{
    *n = r->n_fx;
    return r->fx;
}
static inline void sl_repl_fx_clear(struct sl_repl *r)
{
    r->n_fx = 0;
}

/* Reads below the high watermark only (consumers never see uncommitted records). */
static inline int64_t sl_repl_hw(const struct sl_repl *r)
{
    return r->hw;
}

/* The epoch cache and the highest epoch led, as the epoch file must hold them (SAVE_EPOCHS). */
const struct sl_repl_epoch *sl_repl_epochs(const struct sl_repl *r, uint32_t *n,
                                           int32_t *last_led_epoch);

/* Where `epoch` ends in this replica's log: the largest epoch <= `epoch` it has (*found, or
 * SL_REPL_NONE) and the start of the next one (or the log end). Pure; for tests too. */
int64_t sl_repl_epoch_end(const struct sl_repl *r, int32_t epoch, int32_t *found);

/* Asserts every invariant of the replica (also run at entry and after each change). */
void sl_repl_check(const struct sl_repl *r);

#ifdef SL_REPL_MUTATIONS
/* Test-only bugs, compiled only into the simulator's binary (tests/sim): 1 = a follower
 * truncates to its own HW instead of the leader's epoch end (Kafka's pre-KIP-101 loss of
 * acknowledged data); 2 = the leader acks once its own disk has a batch, without the ISR;
 * (3 is the controller's unclean election); 4 = a follower ignores ETRIMMED and never resets
 * its log (the bug of issue #14's retention: it asks below its leader's start for ever);
 * 5 = a replica drops its copy whenever it is idle, named by the state or not; (6 and 7 are
 * a reassignment cancel's, controller_state.c). */
extern int sl_repl_mutation;
#endif

#endif /* SL_CLUSTER_REPL_H */
