/* catalog_int.h - the catalog's private parts, shared by its files:
 *   catalog.c       streams on disk and in memory: stream.meta read and
 *                   replaced, open and close, create, delete, retention runs
 *   catalog_index.c the live streams by name (hash) and in name order
 *   catalog_meta.c  stream.meta's text, made and parsed (no I/O; fuzzed)
 *   catalog_settings.c  properties and retention changed after creation
 *   catalog_jobs.c  file work off the main loop: background creates and the
 *                   lazy loading of the streams found at start-up
 *   catalog_reshard.c  splits and merges of a stream's shards (#16): routing
 *                   by the lineage, the durable change; retiring closed
 *                   shards past retention
 * Nothing outside broker/engine/catalog*.c includes this file.
 *
 * Threading: the catalog belongs to the main loop, except the fields marked
 * "under mu", which the creator threads share.
 */
#ifndef SL_CATALOG_INT_H
#define SL_CATALOG_INT_H

#include "broker/engine/catalog.h"
#include "storage/statelog.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Creator threads: creates and loads in the background run in parallel
 * (their fsyncs meet in the file system's journal commits); creates in
 * batches of up to CREATE_BATCH_MAX (one fsync of streams/ each). */
#define CREATORS         4u
#define CREATE_BATCH_MAX 64u
#define LOAD_BATCH_MAX   16u
#define CACHE_FILES_MIN  16u   /* descriptors a shard owner may hold at least */
/* The stores' share of open_files_max (checkpoint and queue-state stores, two
 * descriptors each, all on the main loop): a sixteenth, at least
 * STORE_FILES_MIN (8 stores in use at once) but at most half. Taken from the
 * total before the shards' split, so shards and stores together stay within
 * open_files_max (unless the per-owner floors above lift it). */
#define STORE_FILES_DIV  16u
#define STORE_FILES_MIN  16u
#define LOAD_RETRY_MS    1000u /* a stream that failed to load is tried again after */

struct create_waiter {
    sl_catalog_created_cb cb;
    void *ctx;
    struct create_waiter *next;
};

enum catalog_job_kind {
    JOB_CREATE = 0, /* a new stream: files made, logs opened, then indexed */
    JOB_LOAD,       /* a stream found at start-up: logs opened (recovered) */
};

/* A stream's file work off the main loop: built on the main loop, done by a
 * creator thread (or, for a load the main loop needs at once, by the main
 * loop itself), installed by the main loop (sl_catalog_poll). */
struct catalog_job {
    enum catalog_job_kind kind;
    struct sl_stream *st;
    struct sl_shard **logs; /* opened with their owners' rings, not used yet */
    int rc;
    bool started;  /* under mu: taken (by a creator, or back by the main loop) */
    bool finished; /* under mu: on `done` */
    char why[256];
    struct create_waiter *waiters;  /* creates */
    struct catalog_job *next;       /* in todo, loads or done (under mu) */
    struct catalog_job *prev;       /* in loads (under mu): taken back in O(1) */
    struct catalog_job *next_live;  /* creates: in pending (main loop) */
};

struct sl_catalog {
    struct sl_ring *ring;
    struct sl_catalog_config cfg;
    char *streams_dir;
    char *trash_dir;
    struct sl_stream *streams;   /* live, linked in name order (st->next) */
    struct sl_stream *graveyard; /* deleted, waiting for reap */
    /* The live streams indexed twice: by name hash (find, O(1)) and in a
     * name-sorted array (where a new stream goes in the list, and its
     * predecessor when it leaves: O(log n) + one memmove of pointers). */
    struct sl_stream **buckets; /* chained through st->hnext; index_mask + 1 of them */
    uint32_t index_mask;
    struct sl_stream **sorted; /* n_streams of them, by strcmp of names */
    uint32_t sorted_cap;
    uint32_t n_streams;
    uint64_t n_shards;        /* of the live streams */
    uint32_t pending_streams; /* background creates not installed (count in the limits) */
    uint64_t pending_shards;
    /* One descriptor budget per shard owner (open_files_max split evenly),
     * each touched only by its owner's thread (storage/shard.h). */
    struct sl_shard_cache *caches;
    uint32_t n_caches;
    /* The stores' budget (catalog_store_files): every stream's checkpoint
     * and queue-state store, on the main loop (storage/statelog_park.c). */
    struct sl_statelog_cache stores;
    /* lazy loading (catalog_jobs.c) */
    uint32_t unloaded;      /* live streams not loaded yet */
    /* under mu: the syncfs of streams/ the first background load runs (after
     * a kill -9 the page cache may hold writes never synced); loads after
     * it recover without an fdatasync per shard. */
    enum { SYNC_NONE = 0, SYNC_RUNNING, SYNC_DONE, SYNC_FAILED } sync_state;
    uint64_t load_start_ns; /* of sl_catalog_open, for the "all loaded" line */
    /* the creator threads, their queues, the wake-up */
    pthread_t creators[CREATORS];
    uint32_t creators_started;
    bool creator_stop; /* under mu */
    int wake_fd;       /* eventfd: a batch is done */
    uint64_t wake_val;
    struct sl_io_op wake_op; /* its read, armed on `ring` while wake_armed */
    bool wake_armed;
    bool closing;
    pthread_mutex_t mu;
    pthread_cond_t cv;      /* creators wait for work */
    pthread_cond_t done_cv; /* the main loop waits for a load a creator holds */
    struct catalog_job *todo; /* under mu: creates, FIFO (todo_tail) */
    struct catalog_job **todo_tail;
    uint32_t todo_len;                     /* under mu */
    struct catalog_job *loads, *loads_tail; /* under mu: load jobs, FIFO, doubly linked */
    uint32_t loads_len;                    /* under mu */
    struct catalog_job *done;              /* under mu */
    struct catalog_job *pending;           /* main loop: every create not installed yet */
};

/* Shards that count against shards_max: every id but the gone ones. */
static inline uint32_t catalog_live_shards(const struct sl_stream *st)
{
    return st->shard_count - st->lineage.gone;
}

/* catalog_meta.c: stream.meta's text */
/* The whole file for `st` with lineage `l` (the stream's, or a reshard's next one: its
 * shard count is l->n), checksum line included, into *out (malloc'd, *len bytes). */
int catalog_meta_format(const struct sl_stream *st, const struct sl_lineage *l, char **out,
                        size_t *len);
/* Parses the file's text (`body` holds n bytes and room for a NUL at n; it is cut in
 * place) into st's settings, properties and lineage; st->name must be the name the file
 * gives. SL_OK, SL_ECORRUPT (checksum, a line, the lineage rules), SL_ENOMEM. On an error
 * st->props may hold what was read (catalog_props_free). */
int catalog_meta_parse(struct sl_stream *st, char *body, size_t n);
void catalog_props_free(struct sl_stream_prop *p, uint32_t n);
int catalog_prop_cmp(const void *a, const void *b);

/* catalog.c */
char *catalog_path_cat(const char *a, const char *b);
void catalog_file_why(char *why, size_t why_len, const char *what, int rc);
void catalog_create_why(char *why, size_t why_len, const char *name, int rc);
int catalog_move_to_trash(struct sl_catalog *c, const char *name);
int catalog_create_dirs(struct sl_catalog *c, struct sl_stream *st);
int catalog_create_commit(struct sl_catalog *c);
int catalog_create_prepare(struct sl_catalog *c, const char *name, uint32_t shard_count,
                           uint32_t retention_hours, uint64_t retention_bytes,
                           const char *compression, struct sl_stream **out, char *why,
                           size_t why_len);
int catalog_shards_init(struct sl_catalog *c, struct sl_stream *st);
/* Replaces stream.meta with the stream's settings and properties and the
 * lineage `l` (the stream's, or a reshard's next one: its shard count is
 * l->n), durably (the commit point of a create, a property change, a
 * reshard). */
int catalog_meta_write(const struct sl_stream *st, const struct sl_lineage *l);
/* Opens (creating if missing) shard i's log into *log (see catalog_open_logs). */
int catalog_open_log(struct sl_catalog *c, struct sl_stream *st, uint32_t i, bool rebuild,
                     bool synced, struct sl_shard **log, char *why, size_t why_len);
/* The stores' share of open_files_max (0: no budget); the rest is the shards'. */
uint32_t catalog_store_files(uint32_t open_files_max);
void catalog_remove_tree(const char *path, int depth);
/* Opens every shard's log but the gone ones' (whose directories, left by a
 * crash after the retirement's commit, are removed here). */
int catalog_open_logs(struct sl_catalog *c, struct sl_stream *st, bool rebuild, bool synced,
                      struct sl_shard **logs, char *why, size_t why_len);
void catalog_adopt_logs(struct sl_catalog *c, struct sl_stream *st, struct sl_shard **logs);
int catalog_stores_open_present(struct sl_catalog *c, struct sl_stream *st, char *why,
                                size_t why_len);
/* catalog_index.c */
#define INDEX_BUCKETS_MIN 64u /* a power of two; doubles when streams > buckets */
int catalog_index_reserve(struct sl_catalog *c);
/* Removes a stream of the catalog from the buckets, the array and the list. */
void catalog_index_remove(struct sl_catalog *c, struct sl_stream *st);
/* Start-up: the streams loaded into c->sorted sorted once, linked and hashed. */
void catalog_index_build(struct sl_catalog *c);
void catalog_index_add(struct sl_catalog *c, struct sl_stream *st);
struct sl_stream *catalog_lookup(struct sl_catalog *c, const char *name);
/* Closes the shard logs of the streams (one call per owner for all). */
void catalog_close_logs(struct sl_catalog *c, struct sl_stream *const *v, uint32_t n);
void catalog_stream_free(struct sl_catalog *c, struct sl_stream *st);

/* catalog_reshard.c */
/* st->open_start/open_id from the lineage (nothing while never resharded). */
int catalog_route_build(struct sl_stream *st);
/* Removes shard i's directory and its files (a gone shard's: stream.meta no
 * longer needs them, so no fsync). */
void catalog_shard_dir_remove(const struct sl_stream *st, uint32_t i);

/* catalog_jobs.c */
int catalog_jobs_start(struct sl_catalog *c);
void catalog_jobs_stop(struct sl_catalog *c);
bool catalog_pending_name(const struct sl_catalog *c, const char *name);
int catalog_load_queue(struct sl_catalog *c, struct sl_stream *st);
/* Loads a stream not loaded yet, now (see catalog_jobs.c); SL_OK, or the
 * load's error with `why`. */
int catalog_load_now(struct sl_catalog *c, struct sl_stream *st, char *why, size_t why_len);
/* Leaves no load job naming the stream: a queued one is dropped, one under
 * way is waited for and installed. */
void catalog_load_settle(struct sl_catalog *c, struct sl_stream *st);

#endif
