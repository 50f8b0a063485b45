/* catalog.h - the broker's streams: create, find, list, delete; their shards,
 * checkpoint and queue-state stores (opened on first use) and de-dup tables.
 *
 * Threading: one catalog belongs to the loop thread that owns its ring.
 * Ownership: streams and shards are owned by the catalog; pointers returned
 * are borrowed and stay valid until the loop returns to the top level after
 * sl_catalog_delete (deleted streams are reaped by sl_catalog_reap, called
 * from the top of the loop, never from a callback).
 */
#ifndef SL_CATALOG_H
#define SL_CATALOG_H

#include "broker/engine/counters.h"
#include "broker/engine/dedup.h"
#include "broker/engine/lineage.h"
#include "broker/engine/workers.h"
#include "storage/checkpoint.h"
#include "storage/qstate.h"
#include "storage/shard.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sl_ring;
struct sl_catalog;
struct sl_stream;
struct catalog_job;

#define SL_STREAM_NAME_MAX 128u
/* open shards of one stream (Kinesis allows 10,000 after a limit increase;
 * queue groups hold SL_QSTATE_SHARDS_MAX, closed ones included) */
#define SL_STREAM_SHARDS_MAX 4096u
/* Properties: durable key/value pairs the front-ends keep per stream (tags,
 * SQS queue attributes), in stream.meta. Bounded so the file stays small. */
#define SL_STREAM_PROPS_MAX 64u
#define SL_STREAM_PROP_KEY_MAX 128u
#define SL_STREAM_PROP_VALUE_MAX 1024u
/* room for the properties and, once resharded, a line per shard id of the
 * lineage (SL_LINEAGE_SHARDS_MAX x SL_STREAM_META_SHARD_LINE_MAX) */
#define SL_STREAM_META_SHARD_LINE_MAX 112u
#define SL_STREAM_META_PROPS_BYTES (224u << 10) /* settings and properties */
/* the worst the properties can take: every one at its longest, every value byte escaped
 * ("prop." key "=" 3 x value "\n"), plus the settings' lines and the check line */
_Static_assert(SL_STREAM_META_PROPS_BYTES >=
                   SL_STREAM_PROPS_MAX * (6u + SL_STREAM_PROP_KEY_MAX + 3u * SL_STREAM_PROP_VALUE_MAX +
                                          1u) + 1024u,
               "stream.meta's buffer holds the largest properties");
#define SL_STREAM_META_BYTES_MAX                                                                   \
    (SL_STREAM_META_PROPS_BYTES + SL_LINEAGE_SHARDS_MAX * SL_STREAM_META_SHARD_LINE_MAX)

struct sl_stream_prop {
    char *key;   /* owned; printable ASCII without '=' */
    char *value; /* owned; any text without NUL */
};

struct sl_catalog_config {
    const char *data_dir;            /* borrowed */
    struct sl_shard_config shard;    /* per-shard template (retention set per stream) */
    struct sl_ckpt_config ckpt;
    struct sl_qstate_config qstate;
    uint32_t default_retention_hours;
    uint32_t streams_max; /* a create past these is SL_ELIMIT (0: no limit) */
    uint32_t shards_max;
    /* Descriptors the shard files and the stores may hold open together:
     * the storage layer's budgets, derived from RLIMIT_NOFILE at start-up
     * (main.c); split by sl_catalog_open (catalog_store_files). 0: none. */
    uint32_t open_files_max;
    sl_shard_listener listener; /* set on every shard, ctx = its struct sl_bshard */
    struct sl_workers *workers; /* owners of the shards (NULL: all on `ring`) */
    /* Frees what other modules hung on a stream (st->produce, st->fetch,
     * st->queues) before the catalog frees the stream. */
    void (*stream_free)(void *ctx, struct sl_stream *st);
    void *stream_free_ctx;
};

struct sl_msgdedup;
/* Runtime state other engine modules keep per stream, allocated by them on
 * first use and freed through cfg.stream_free; opaque here. */
struct sl_produce_state; /* broker/engine/produce.c */
struct sl_fetch_state;   /* broker/engine/fetch.c */
struct sl_queue_state;   /* broker/engine/queue.c */

struct sl_bshard {
    struct sl_stream *stream;
    uint32_t id;
    uint32_t appends; /* handed to the owner, not answered (produce.c) */
    uint64_t hash_start;
    uint64_t hash_end;
    struct sl_wshard ws;     /* the log, reached through its owner */
    struct sl_dedup dedup;   /* the producers' last batches (no memory until used) */
    struct sl_shard_io io;   /* records and bytes in (produce.c) and out (fetch.c) */
    bool closing;            /* a reshard waits for `appends` to drain (reshard.c) */
    /* Cluster mode (#14): this broker's replica of the shard (broker/cluster/replicas.c owns
     * it; the engine asks it through struct sl_engine_repl), NULL on a single broker. */
    struct sl_brepl *repl;
};

struct sl_stream {
    char name[SL_STREAM_NAME_MAX + 1];
    uint32_t shard_count;
    uint32_t retention_hours;
    uint64_t retention_bytes;
    char compression[8];
    uint64_t created_ms;
    char *dir;
    /* shards[id] for every id of the stream. Each shard stays at its address
     * while the stream lives (engine ops and workers hold pointers into it),
     * so a reshard that adds shards grows only this pointer array: the
     * shards made with the stream live in `shard_slab`, later ones alone. */
    struct sl_bshard **shards;
    struct sl_bshard *shard_slab;
    uint32_t slab_n;
    /* Every shard id's range, parents and children, open or closed (#16);
     * lineage.n == shard_count. A stream never resharded has shard_count
     * open uniform ranges (common/partition.h) and stream.meta says nothing
     * of them. */
    struct sl_lineage lineage;
    /* The open shards by range start, for routing a hash once the stream
     * was resharded (sl_catalog_route); NULL before. */
    uint64_t *open_start;
    uint32_t *open_id;
    /* NULL until used (sl_catalog_ckpt, sl_catalog_qstate) - opened at
     * start-up only when their directories hold state; NULL reads as empty */
    struct sl_ckpt_store *ckpt;
    struct sl_qstate *qstate; /* queue groups' durable state */
    struct sl_msgdedup *msgdedup;
    struct sl_stream_prop *props; /* sorted by key */
    uint32_t n_props;
    struct sl_produce_state *produce;
    struct sl_fetch_state *fetch;
    struct sl_queue_state *queues;
    uint32_t inflight; /* broker ops holding this stream (appends, reads, commits) */
    struct sl_reshard_op *reshard; /* the change of its shards under way, or NULL */
    bool deleted;
    /* A cluster stream (#14, created through ZooKeeper; stream.meta's `cluster=1`): its
     * shards take appends and reads only through their replicas (struct sl_bshard.repl),
     * never as a single broker's. False: a local stream, one copy on this broker. */
    bool cluster;
    bool cluster_clash_logged; /* a cluster stream of its name exists: said once */
    /* Which creation of the name this copy is (stream.meta's `cluster_id`: the creation
     * transaction of /streams/<name> in ZooKeeper; 0: made before it was kept). A stream
     * deleted and made again under its name while this broker was away is another stream:
     * broker/cluster/replicas_meta.c compares the two before it attaches replicas. */
    uint64_t cluster_id;
    bool cluster_verified;  /* compared since the start (replicas_meta.c) */
    bool cluster_verifying; /* ... its read in flight */
    bool cluster_recheck;   /* to compare again (a shard's state node went or was made anew) */
    /* A stream found at start-up is loaded lazily (catalog_jobs.c): until
     * `loaded`, its shards have no log (shards[i].ws.log NULL, stats read as
     * zero) and nothing but the catalog touches shards[] or the stores;
     * sl_catalog_find and sl_catalog_lookup load it before returning it. */
    bool loaded;
    int load_rc;             /* the last failed load's error (SL_OK: none) */
    uint64_t load_failed_ms; /* when (monotonic); tried again LOAD_RETRY_MS later */
    char *load_why;          /* its message (owned), or NULL */
    struct catalog_job *load_job; /* queued or under way (catalog_jobs.c) */
    struct sl_stream *next;  /* the next live stream in name order (or in the graveyard) */
    struct sl_stream *hnext; /* the catalog's name index (catalog.c) */
    uint64_t name_hash;
};

/* Cluster mode (#14): the stream's shards are replicas of the cluster's (a stream exists in
 * every broker's catalog or none, and every shard of it has a replica). */
static inline bool sl_stream_replicated(const struct sl_stream *st)
{
    return st->cluster;
}

/* The answer to what cluster mode does not do yet on a replicated stream. */
#define SL_STREAM_REPLICATED_WHY(what)                                                             \
    what " is not supported on a replicated stream yet (cluster mode, docs/REPLICATION.md)"


/* The open shard whose range holds `hash` (the produce path of front-ends
 * that route by key, and unkeyed records spread over the open shards). */
uint32_t sl_catalog_route(const struct sl_stream *st, uint64_t hash);
/* The `k`-th open shard in range order (k < lineage.open): round-robin over
 * the shards that take appends. */
uint32_t sl_catalog_open_shard(const struct sl_stream *st, uint32_t k);

/* A change of a stream's shards (#16), prepared then committed: prepare
 * takes the new lineage (the stream's, with splits and merges applied:
 * lineage.h checks each) and checks it against the limits;
 * commit makes it durable (the children's directories, then stream.meta
 * replaced: the one write that moves the stream from before the change to
 * after it), opens the children's logs and installs the lineage. The
 * caller makes sure no append to a shard being closed is in flight between
 * the two (produce.c holds them). */
struct sl_catalog_reshard {
    struct sl_lineage next;
    uint32_t closed[SL_STREAM_SHARDS_MAX]; /* open before, closed after */
    uint32_t n_closed;
    uint32_t first_new; /* ids first_new .. next.n - 1 are the children */
};
/* `next` is taken (left empty). Errors (why says which): SL_ELIMIT
 * (SL_STREAM_SHARDS_MAX open shards, the broker's shards_max). Nothing
 * changes; sl_catalog_reshard_free after either outcome. */
int sl_catalog_reshard_prepare(struct sl_catalog *c, const struct sl_stream *st,
                               struct sl_lineage *next, struct sl_catalog_reshard *r, char *why,
                               size_t why_len);
/* Errors: SL_EIO, SL_ENOSPC, SL_ELIMIT (descriptors), SL_ENOMEM with why;
 * the stream is then as before (a child's directory may remain, empty: a
 * later change reuses it). */
int sl_catalog_reshard_commit(struct sl_catalog *c, struct sl_stream *st,
                              struct sl_catalog_reshard *r, char *why, size_t why_len);
void sl_catalog_reshard_free(struct sl_catalog_reshard *r);

/* Opens the catalog: reads the metadata of every stream under
 * <data>/streams (synchronous, start-up) and starts loading their shards in
 * the background (catalog_jobs.c). Errors: SL_ECORRUPT (a stream's metadata
 * is damaged: named in the log), SL_EIO, SL_ENOMEM. A shard that cannot be
 * recovered fails its stream's load, not the start-up. */
int sl_catalog_open(struct sl_ring *ring, const struct sl_catalog_config *cfg,
                    struct sl_catalog **out);
/* Closes every stream (waits for their I/O). NULL-safe. */
void sl_catalog_close(struct sl_catalog *c);

/* Creates a stream and its shards, durable before it returns. Errors:
 * SL_EEXIST, SL_EINVAL (name, shard count, retention, compression: `why`
 * says which), SL_ELIMIT (streams_max or shards_max reached - `why` names
 * the setting - or out of descriptors: `why` says "too many open files"),
 * SL_EIO, SL_ENOSPC. */
/* The checks a create makes of its arguments (not of the catalog: existence, limits).
 * Errors: SL_EINVAL with `why`. */
int sl_catalog_check_spec(const char *name, uint32_t shard_count, uint32_t retention_hours,
                          const char *compression, char *why, size_t why_len);
int sl_catalog_create(struct sl_catalog *c, const char *name, uint32_t shard_count,
                      uint32_t retention_hours, uint64_t retention_bytes, const char *compression,
                      struct sl_stream **out, char *why, size_t why_len);

/* Told when a background create finished: err SL_OK (the stream is in the
 * catalog: sl_catalog_find), or why not (SL_ECLOSED when the broker closed
 * first). `why` is borrowed for the call. */
typedef void (*sl_catalog_created_cb)(void *ctx, int err, const char *why);
/* Creates a stream off the main loop: its directories, metadata and shard
 * files are made, fsynced and opened by the catalog's creator threads
 * (several at once, in batches that share the fsync of streams/), then
 * installed by sl_catalog_poll, which runs `cb` - woken by the creators, so
 * as soon as the loop turns. With SL_CATALOG_CREATE_JOIN, a create of the
 * same name under way is joined (`cb` runs when it finishes: auto-create); without, that is
 * SL_EEXIST (CreateStream). Returns SL_OK (cb will run) or, without running
 * cb, the argument and limit errors of sl_catalog_create (SL_EEXIST when the
 * stream exists), SL_ENOMEM. For the paths that must not block on file
 * work: a produce to an unknown stream with auto_create_streams, the native
 * CreateStream. */
#define SL_CATALOG_CREATE_JOIN    1u /* join a create of the same name under way */
#define SL_CATALOG_CREATE_CLUSTER 2u /* a cluster stream (struct sl_stream.cluster) */
/* cluster_id: with SL_CATALOG_CREATE_CLUSTER, struct sl_stream.cluster_id (else 0). */
int sl_catalog_create_async(struct sl_catalog *c, const char *name, uint32_t shard_count,
                            uint32_t retention_hours, uint64_t retention_bytes,
                            const char *compression, unsigned flags, uint64_t cluster_id,
                            sl_catalog_created_cb cb,
                            void *ctx, char *why, size_t why_len);
/* Installs the background creates that finished; from the top of the loop
 * (never a callback). */
void sl_catalog_poll(struct sl_catalog *c);

/* Removes a stream from the catalog at once (new requests get ENOTFOUND),
 * moves its directory aside durably, and schedules its shards to be closed
 * and its files deleted by sl_catalog_reap. Errors: SL_ENOTFOUND, SL_EIO. */
int sl_catalog_delete(struct sl_catalog *c, const char *name);

/* The live stream `name`, loaded (its shards recovered: a stream found at
 * start-up and not loaded by the background yet is loaded now, on the
 * loop), or NULL when there is none or it cannot be loaded (logged). O(1)
 * for a loaded stream: a hash index. */
struct sl_stream *sl_catalog_find(struct sl_catalog *c, const char *name);
/* sl_catalog_find with the reason: SL_ENOTFOUND ("stream X not found"), or
 * the load's error (a shard's files cannot be opened or recovered, the
 * descriptors ran out) with `why` naming the shard and the cause. */
int sl_catalog_lookup(struct sl_catalog *c, const char *name, struct sl_stream **out, char *why,
                      size_t why_len);

/* The value of property `key`, or NULL. Borrowed until the next change. */
const char *sl_catalog_prop(const struct sl_stream *st, const char *key);
/* Sets (value) or removes (value NULL) properties, all or none, durable
 * before it returns (stream.meta rewritten: synchronous, for rare admin
 * requests). Errors: SL_EINVAL (a key or value too long or with a forbidden
 * byte), SL_ELIMIT (more than SL_STREAM_PROPS_MAX), SL_EIO, SL_ENOMEM; `why`
 * says which. */
int sl_catalog_set_props(struct sl_catalog *c, struct sl_stream *st, const char *const *keys,
                         const char *const *values, uint32_t n, char *why, size_t why_len);
/* Changes the stream's retention (1 .. 8760 hours), durable before it
 * returns, applied to every shard. Errors: SL_EINVAL, SL_EIO. */
int sl_catalog_set_retention(struct sl_catalog *c, struct sl_stream *st, uint32_t hours,
                             char *why, size_t why_len);
struct sl_stream *sl_catalog_first(struct sl_catalog *c); /* then s->next */
/* Live streams not loaded yet (0 once the background finished). */
uint32_t sl_catalog_unloaded(const struct sl_catalog *c);

/* The stream's checkpoint store (queue-group state store), opened on first
 * use: for a write that needs it (a commit, a queue group's creation); a
 * read finds st->ckpt (st->qstate) NULL when the stream has none, which
 * reads as empty. The first call makes the directory and the log (a mkdir
 * and two fsyncs, synchronous on the loop, once per stream). *out is the
 * store (borrowed) on SL_OK. Errors: those of sl_ckpt_open (sl_qstate_open),
 * SL_ELIMIT when out of descriptors; `why` says which. */
int sl_catalog_ckpt(struct sl_catalog *c, struct sl_stream *st, struct sl_ckpt_store **out,
                    char *why, size_t why_len);
int sl_catalog_qstate(struct sl_catalog *c, struct sl_stream *st, struct sl_qstate **out,
                      char *why, size_t why_len);
/* The workers owning the shards (NULL: one loop). */
struct sl_workers *sl_catalog_workers(const struct sl_catalog *c);
/* The broker's data directory (the catalog's configuration, borrowed). */
const char *sl_catalog_data_dir(const struct sl_catalog *c);
/* The main loop's ring (the catalog's). */
struct sl_ring *sl_catalog_ring(const struct sl_catalog *c);

/* Closes and deletes streams removed by sl_catalog_delete once nothing holds
 * them. Call from the top of the loop only. */
void sl_catalog_reap(struct sl_catalog *c);

/* Runs retention on every shard (deletes expired sealed segments), never past
 * floor(ctx, shard) (NULL: no floor), and retires the closed shards past it
 * (sl_catalog_retire). */
typedef uint64_t (*sl_catalog_floor_fn)(void *ctx, const struct sl_bshard *b);
void sl_catalog_retention(struct sl_catalog *c, sl_catalog_floor_fn floor, void *ctx);
/* Retires stream st's closed shards that closed more than its retention
 * before `now_ms` (wall clock), at most SL_CATALOG_RETIRE_PER_RUN per call:
 * stream.meta marks them gone (one durable replace), their logs close (reads
 * in flight finish first) and their directories are removed. A gone shard
 * keeps its id, range and parents in the lineage; it has no records, reads
 * answer as at its end, listings leave it out, and it no longer counts
 * against shards_max. Not while a reshard of the stream is under way.
 * Returns how many it retired; a failed write is logged and retried by the
 * next call. */
#define SL_CATALOG_RETIRE_PER_RUN 64u
uint32_t sl_catalog_retire(struct sl_catalog *c, struct sl_stream *st, uint64_t now_ms);

#endif
