/* replicas_int.h - the replica manager's parts, shared by its files:
 *   replicas.c       one shard's replica: effects, the disk FIFO, following its leader
 *   replicas_serve.c the same replica answering its followers
 *   replicas_meta.c  the metadata side: sessions, /streams, shard states
 *   replicas_create.c, replicas_delete.c  a stream created, deleted in ZooKeeper
 * Nothing outside broker/cluster/replicas*.c includes this file. Threading: the main loop.
 */
#ifndef SL_CLUSTER_REPLICAS_INT_H
#define SL_CLUSTER_REPLICAS_INT_H

#include "broker/cluster/controller.h"
#include "broker/cluster/meta.h"
#include "broker/cluster/replicas.h"
#include "broker/engine/engine.h"

#include <stdbool.h>
#include <stdint.h>

#define RS_PATH_STREAMS "/streams"
#define RS_PATH_SHARDS  "/shards"
/* A creation in several multis (more shards than one takes) holds a token node here from
 * its first multi to its last, which every multi between checks (replicas_meta.c). */
#define RS_PATH_CREATES "/creates"
/* What a request that needs ZooKeeper answers while this broker has no session. */
#define RS_NO_SESSION_WHY                                                                          \
    "this broker is not registered in ZooKeeper right now: retry, or ask another broker"

/* A disk operation the replica queued (its FIFO, mirrored): a leader's write (done by the
 * produce path), a follower's write of fetched batches, a truncate, a reset (the log
 * emptied, starting at the leader's first retained offset), an epoch-file save. */
enum dq_kind { DQ_LWRITE = 1, DQ_FWRITE, DQ_TRUNC, DQ_SAVE, DQ_RESET };

struct dq_entry {
    uint8_t kind;
    bool started, done;
    int err;
    int64_t offset; /* DQ_TRUNC: the new end; DQ_RESET: the new start (and end) */
    /* DQ_FWRITE: the fetched batches, owned (one buffer), submitted in order; a control
     * batch's changes go to this broker's stores first, durable before the batch is
     * written (rs_fwrite_hold): `applied` batches were, `holding` waits for the stores */
    uint8_t *buf;
    size_t buf_len;
    uint32_t n, applied, submitted, completed;
    bool holding;
    uint32_t off[SL_REPL_FETCH_BATCHES_MAX];
    uint32_t len[SL_REPL_FETCH_BATCHES_MAX];
};

/* A follower's request waiting for its answer (a parked fetch, or a read of the batches). */
struct pending_answer {
    bool used;
    int32_t from;
    uint64_t req_id;
    uint64_t since_ms;
    sl_replicas_answer_fn fn;
    void *ctx;
};

struct serve;

struct sl_brepl {
    struct sl_replicas *rs;
    struct sl_bshard *b;
    struct sl_repl r;
    char path[SL_META_PATH_MAX]; /* /shards/<stream>/<k> */
    struct sl_ctrl_state state;  /* as last read (state.m.version -1: never) */
    bool have_state;
    bool get_out;      /* a read of the state is outstanding */
    bool reget;        /* read it again when that one ends */
    uint32_t get_gen;  /* the member generation the watch was set in */
    bool meta_writing; /* a META_WRITE is outstanding */
    bool move_ready;   /* ... and it puts a move's whole target in the ISR: tell the
                        * controller when it applied (replicas_meta.c) */
    bool req_out;      /* a request to the leader is outstanding (peer link) */
    bool in_append;    /* inside the engine's append hook: a WRITE is the leader's */
    bool pumping, repump;
    bool fatal_logged;
    bool abdicating;       /* FATAL: the write leaving leadership is outstanding (rs_abdicate) */
    int link_err;          /* the last failed request's error (SL_OK: the last one answered) */
    uint64_t link_warn_ms; /* when it was last logged (rate: REPLICAS_LINK_WARN_MS) */
    int logged_role;       /* the role and epoch last logged (-1: none yet) */
    int32_t logged_epoch;
    uint64_t hw_published;
    /* The end of what the shard's log has in its file, durable or not (its written listener
     * says; a truncate sets it back): a leader serves followers up to here. */
    uint64_t written_seq;
    /* the batches of the FETCH_RESP being handed to the replica (owned until a WRITE
     * takes them) */
    uint8_t *in_buf;
    size_t in_len;
    struct dq_entry dq[SL_REPL_DISK_INFLIGHT_MAX];
    uint32_t dq_head, dq_n;
    uint32_t store_waits; /* the stores' barriers a held follower write waits for */
    struct pending_answer ans[SL_REPL_REPLICAS_MAX];
    struct serve *serve_wait; /* answers waiting for this broker's write (replicas.c) */
    uint32_t serves;          /* ... and reads serving them, in flight */
    uint32_t notes_out;       /* creates under SL_CTRL_PATH_NOTIFY in flight */
    /* The creation of the state node read first (struct sl_meta_stat.czxid): a node of
     * another creation means the stream was deleted and made again (replicas_meta.c). */
    int64_t state_czxid;
    /* The stream was deleted (or replaced) in the cluster: detached from the engine's use,
     * nothing new started, freed once nothing calls back into it (rs_brepl_quiet); it holds
     * its stream (inflight) until then. */
    bool gone;
    struct sl_brepl *next; /* rs->all */
};

/* A stream this broker is creating in its catalog from /streams (or was asked to create). */
struct rs_create {
    struct sl_replicas *rs;
    char name[SL_CTRL_NAME_MAX];
    sl_replicas_created_fn cb; /* the asker's, or NULL */
    void *ctx;
    bool published;      /* the /streams node exists (the asker's multi applied) */
    uint32_t multis_out; /* its own ZooKeeper calls not answered yet: freed when 0 and ended */
    int multi_err;       /* the first of its multis' errors (EEXIST: made elsewhere) */
    int clean_err;       /* the first error removing an abandoned creation's leftovers */
    bool ended;          /* answered (create_end): freed by the last multi's answer */
    /* The request, kept to create again once an abandoned creation's leftovers are gone
     * (replicas_meta.c, "leftovers"): tried once. */
    struct sl_replicas_stream req;
    char compression[8];
    bool cleaned;
    struct rs_create *next;
};

/* Whether this broker's data belongs to the cluster at --cluster (replicas_id.c). */
enum rs_id_state { RS_ID_UNKNOWN = 0, RS_ID_READING, RS_ID_SAME, RS_ID_OTHER };

struct sl_replicas {
    struct sl_engine *e;
    struct sl_member *mb;
    struct sl_replicas_transport t;
    struct sl_replicas_config cfg;
    struct sl_engine_repl hooks;
    struct sl_meta *meta; /* the registered session's store, NULL while none */
    uint32_t gen;
    bool listing, relist; /* /streams */
    uint64_t now_ms;
    bool stopping; /* answers go out no more (sl_replicas_stop) */
    uint64_t serve_bytes, follow_bytes;
    /* The reassignment throttle's bucket (replicas_serve.c): bytes that may be served now
     * to replicas a move adds (below 0: owed by reads already made), refilled at the tick. */
    int64_t throttle_tokens;
    uint64_t throttle_ms;
    uint32_t serves;        /* reads serving followers in flight */
    uint64_t cut_ms;        /* cut from ZooKeeper this long, past the threshold (else 0) */
    uint32_t cut_leaders;   /* ... and leading this many shards whose followers are silent */
    uint64_t link_warn_ms;  /* the last link failure logged, any shard */
    uint32_t link_unlogged; /* failures not logged since (the rate limit) */
    struct sl_brepl *all;
    struct rs_create *creates;
    enum rs_id_state id_state; /* streams are listed only once SAME */
    uint64_t streams_dropped;  /* (sl_replicas_stats) */
};

/* replicas.c */
struct sl_brepl *rs_brepl_new(struct sl_replicas *rs, struct sl_bshard *b, const char *path);
void rs_brepl_free(struct sl_brepl *br);
/* The stream is deleted here: the replica answers what waits on it and stops (gone). */
void rs_brepl_detach(struct sl_brepl *br);
/* Nothing of a gone replica's is in flight: it may be freed. */
bool rs_brepl_quiet(const struct sl_brepl *br);
/* A write or a cut is at the shard's owner, which will call back into br. */
bool rs_brepl_disk_busy(const struct sl_brepl *br);
void rs_pump(struct sl_brepl *br);
void rs_brepl_tick(struct sl_brepl *br);
struct sl_brepl *rs_find(const struct sl_replicas *rs, const char *stream, uint32_t shard);
int rs_hooks_install(struct sl_replicas *rs); /* the engine's struct sl_engine_repl */

/* replicas_serve.c */
/* A FETCH_RESP or EPOCH_RESP the replica sends a follower: answers its request (a fetch's
 * batches read first, once this broker's write of them landed). */
void rs_fx_answer(struct sl_brepl *br, const struct sl_repl_msg *m);
/* Issues the answers waiting for a write that landed (all of them with `all`; those held
 * by the reassignment throttle only while it has bytes, or when the broker stops). */
void rs_serve_wake(struct sl_brepl *br, bool all);
/* Refills the reassignment throttle's bucket (the tick). */
void rs_throttle_refill(struct sl_replicas *rs, uint64_t now_ms);
/* Reads waiting on the throttle among br's answers to make. */
uint32_t rs_serve_throttled(const struct sl_brepl *br);
void rs_on_shard_written(void *ctx, uint64_t written_seq); /* sl_wshard_on_written's fn */
void rs_brepl_answer_all(struct sl_brepl *br); /* what followers wait on: SL_ENOT_LEADER */
void rs_answers_expire(struct sl_brepl *br);   /* requests held past their long poll */

/* replicas_meta.c */
void rs_meta_changed(void *ctx);         /* the member's session or list changed */
void rs_state_read(struct sl_brepl *br); /* (re)reads the shard's state with a watch */
void rs_meta_write(struct sl_brepl *br, const struct sl_repl_meta *m);
/* A FATAL replica named leader leaves the leadership and the ISR in the shard's state (the
 * controller then elects another); nothing otherwise. */
void rs_abdicate(struct sl_brepl *br);
/* Whether `name` is published in /streams and being made in this broker's catalog. */
bool rs_creating(struct sl_replicas *rs, const char *name);
/* Drops this broker's copy of a cluster stream the cluster deleted (or replaced): its
 * replicas detached, the stream deleted from the catalog; `why` completes the log line. */
void rs_stream_drop(struct sl_replicas *rs, struct sl_stream *st, const char *why);
/* replicas_create.c: the creation asked of this broker for `name` (NULL: none); its answer
 * to the asker (the creation is freed once its last multi answered). */
struct rs_create *rs_create_find(struct sl_replicas *rs, const char *name);
void rs_create_end(struct rs_create *c, int err, const char *why);
const char *rs_addr_of(const struct sl_replicas *rs, int32_t node);
/* replicas_id.c: compares the cluster's id with the data directory's, once (again at a
 * later session or tick while unknown); the listing of /streams waits for SAME. */
void rs_cluster_id_check(struct sl_replicas *rs);

#endif /* SL_CLUSTER_REPLICAS_INT_H */
