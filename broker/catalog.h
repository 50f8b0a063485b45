/* catalog.h - the broker's streams: create, find, list, delete; their shards,
 * checkpoint stores, producer de-duplication and parked fetches.
 *
 * Threading: one catalog belongs to the loop thread that owns its ring.
 * Ownership: streams and shards are owned by the catalog; pointers returned
 * are borrowed and stay valid until the loop returns to the top level after
 * sl_catalog_delete (deleted streams are reaped by sl_catalog_reap, called
 * from the top of the loop, never from a callback).
 */
#ifndef SL_CATALOG_H
#define SL_CATALOG_H

#include "storage/checkpoint.h"
#include "storage/qstate.h"
#include "storage/shard.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sl_ring;
struct sl_catalog;

#define SL_STREAM_NAME_MAX 128u
#define SL_STREAM_SHARDS_MAX 1024u
#define SL_DEDUP_SLOTS 1024u /* producers remembered per shard (power of two) */

struct sl_catalog_config {
    const char *data_dir;            /* borrowed */
    struct sl_shard_config shard;    /* per-shard template (retention set per stream) */
    struct sl_ckpt_config ckpt;
    struct sl_qstate_config qstate;
    uint32_t default_retention_hours;
    sl_shard_listener listener; /* set on every shard, ctx = its struct sl_bshard */
    struct sl_workers *workers; /* owners of the shards (NULL: all on `ring`) */
};

/* One remembered producer: the last batch it got acknowledged, and the one
 * being appended. */
struct sl_dedup_entry {
    uint64_t producer_id; /* 0 = empty slot */
    uint64_t producer_seq; /* of the last acknowledged batch (valid if has_last) */
    uint64_t base_seq;
    uint64_t pending_seq;  /* of the batch being appended (valid if pending) */
    uint64_t last_use;
    uint32_t count;
    bool has_last;
    bool pending;
};

struct sl_fetch_wait; /* a parked long-poll fetch (broker/handler.c) */
struct sl_produce_op; /* a produce waiting for staging space (broker/handler.c) */
struct qgroup;        /* a queue group's runtime state (broker/queue.c) */
struct sl_workers;
struct sl_bshard_wait; /* an append waiting on the owner (broker/workers.c) */

struct sl_bshard {
    struct sl_stream *stream;
    uint32_t id;
    uint64_t hash_start;
    uint64_t hash_end;
    struct sl_shard *log; /* touched only on its owner's thread (broker/workers.h) */
    struct sl_workers *workers; /* NULL: one loop */
    uint32_t owner;             /* the worker owning the log (0: the main loop) */
    bool closed;
    sl_shard_listener listener; /* run on the main loop when records become visible */
    struct sl_shard_stats mirror; /* remote shards: the owner's stats as last reported */
    /* the owner's thread only (broker/workers.c) */
    struct sl_bshard *ow_next;
    struct sl_bshard *ow_wait_next;
    struct sl_bshard_wait *ow_wait_head;
    struct sl_bshard_wait *ow_wait_tail;
    struct sl_shard_stats ow_published;
    /* the main loop's */
    struct sl_dedup_entry *dedup; /* SL_DEDUP_SLOTS, open addressing by producer id */
    uint64_t dedup_clock;
    struct sl_fetch_wait *waiters; /* parked fetches, woken on new records */
    struct sl_produce_op *produce_head; /* produces waiting for staging space */
    struct sl_produce_op *produce_tail;
};

/* Message de-dup ids seen recently on a stream (sluice.dedup_id). */
#define SL_MSGDEDUP_SLOTS 65536u /* per stream, allocated on first use */
#define SL_MSGDEDUP_ATTR "sluice.dedup_id"
struct sl_msgdedup_slot {
    uint64_t hash;    /* XXH3-64 of the id; 0 = empty */
    uint64_t time_ms; /* when it was stored (0 = forgotten) */
};

struct sl_stream {
    char name[SL_STREAM_NAME_MAX + 1];
    uint32_t shard_count;
    uint32_t retention_hours;
    uint64_t retention_bytes;
    char compression[8];
    uint64_t created_ms;
    char *dir;
    struct sl_bshard *shards;
    struct sl_ckpt_store *ckpt;
    struct sl_qstate *qstate;   /* queue groups' durable state */
    struct qgroup *qgroups;     /* their runtime state (broker/queue.c) */
    struct sl_msgdedup_slot *msgdedup;
    uint32_t inflight; /* broker ops holding this stream (appends, reads, commits) */
    bool deleted;
    struct sl_stream *next;
};

/* Opens the catalog: loads and recovers every stream under
 * <data>/streams. Synchronous (start-up). Errors: SL_ECORRUPT (a stream's
 * metadata is damaged: named in the log), SL_EIO, SL_ENOMEM. */
int sl_catalog_open(struct sl_ring *ring, const struct sl_catalog_config *cfg,
                    struct sl_catalog **out);
/* Closes every stream (waits for their I/O). NULL-safe. */
void sl_catalog_close(struct sl_catalog *c);

/* Creates a stream and its shards, durable before it returns. Errors:
 * SL_EEXIST, SL_EINVAL (name, shard count, retention, compression: `why`
 * says which), SL_EIO, SL_ENOSPC. */
int sl_catalog_create(struct sl_catalog *c, const char *name, uint32_t shard_count,
                      uint32_t retention_hours, uint64_t retention_bytes, const char *compression,
                      struct sl_stream **out, char *why, size_t why_len);

/* Removes a stream from the catalog at once (new requests get ENOTFOUND),
 * moves its directory aside durably, and schedules its shards to be closed
 * and its files deleted by sl_catalog_reap. Errors: SL_ENOTFOUND, SL_EIO. */
int sl_catalog_delete(struct sl_catalog *c, const char *name);

struct sl_stream *sl_catalog_find(struct sl_catalog *c, const char *name);
struct sl_stream *sl_catalog_first(struct sl_catalog *c); /* then s->next */

/* Closes and deletes streams removed by sl_catalog_delete once nothing holds
 * them. Call from the top of the loop only. */
void sl_catalog_reap(struct sl_catalog *c);

/* Runs retention on every shard (deletes expired sealed segments). */
void sl_catalog_retention(struct sl_catalog *c);

/* Producer de-duplication (per shard). Looks up the batch's producer:
 * returns SL_EEXIST with *e filled when (producer_id, producer_seq) is the
 * last acknowledged batch of that producer or an earlier one (a retry),
 * SL_EAGAIN when that same batch is still being appended, else SL_OK and
 * records it as pending in *e (may be NULL when producer_id == 0). */
int sl_dedup_begin(struct sl_bshard *b, uint64_t producer_id, uint64_t producer_seq,
                   struct sl_dedup_entry **e);
/* Completes a pending entry: on success remembers base_seq/count; on
 * failure forgets the batch so that a retry is written. */
void sl_dedup_end(struct sl_bshard *b, uint64_t producer_id, uint64_t producer_seq, int err,
                  uint64_t base_seq, uint32_t count);

/* Message de-dup: returns true when `hash` was stored within `window_ms`
 * before `now_ms` (a duplicate); else remembers it and returns false. The
 * table is bounded: when a probe run is full, the oldest id in it goes. */
bool sl_msgdedup_seen(struct sl_stream *st, uint64_t hash, uint64_t now_ms, uint64_t window_ms);
/* Forgets `hash` (its append failed, so a retry must be stored). */
void sl_msgdedup_forget(struct sl_stream *st, uint64_t hash);

#endif
