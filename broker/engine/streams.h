/* streams.h - stream administration for the front-ends: create, delete,
 * describe (a stream and each shard's sequences, size and status).
 * Listing walks the catalog (sl_catalog_first, st->next).
 *
 * Threading: the main loop. Create and delete are durable before they
 * answer (catalog.h): delete and sl_streams_create synchronously, with the
 * file work on the loop; sl_streams_create_async on the catalog's creator
 * threads.
 */
#ifndef SL_STREAMS_H
#define SL_STREAMS_H

#include <stdint.h>

struct sl_engine;
struct sl_stream;

#define SL_STATUS_MESSAGE_MAX 96u

struct sl_stream_spec {
    const char *name;
    uint32_t shard_count;
    uint32_t retention_hours; /* 0: the broker's default */
    uint64_t retention_bytes; /* 0: no cap */
    const char *compression;  /* NULL or "": none */
    uint32_t replication_factor; /* sl_streams_create_replicated_async: 0 = the default */
};

struct sl_shard_info {
    uint32_t shard;
    uint64_t hash_start;
    uint64_t hash_end;
    uint64_t first_seq;
    uint64_t next_seq; /* visible tail */
    uint64_t tail_time_ms;
    uint64_t bytes;
    uint32_t segments;
    uint64_t writes;   /* write ops issued */
    uint64_t fsyncs;   /* data fdatasyncs issued */
    uint64_t fsync_ns; /* their total duration */
    uint64_t zero_bytes; /* zeros the segment run-ahead wrote (segment_prezero_bytes) */
    int status; /* SL_OK, SL_EFATAL, SL_ENOSPC */
    char status_message[SL_STATUS_MESSAGE_MAX]; /* why it is not OK, or "" */
};

/* Errors: those of sl_catalog_create; `why` names the cause. */
int sl_streams_create(struct sl_engine *e, const struct sl_stream_spec *spec,
                      struct sl_stream **out, char *why, uint32_t why_len);
/* Told once: err SL_OK with the new stream (borrowed, as from the catalog),
 * or the error with `why` (borrowed for the call) and st NULL. */
typedef void (*sl_stream_created_cb)(void *ctx, int err, const char *why, struct sl_stream *st);
/* The same create without blocking the loop on its file work (the
 * catalog's creator threads): `cb` runs exactly once, possibly before this
 * returns (an argument or limit error, or the stream exists). A create of a
 * name already under way is SL_EEXIST. `spec`'s strings are borrowed for the
 * call. */
void sl_streams_create_async(struct sl_engine *e, const struct sl_stream_spec *spec,
                             sl_stream_created_cb cb, void *ctx);
/* In cluster mode (struct sl_engine_repl), a replicated stream made in the cluster
 * (struct sl_engine_repl.create): told once it exists in this broker's catalog; on a single
 * broker, sl_streams_create_async. */
void sl_streams_create_replicated_async(struct sl_engine *e, const struct sl_stream_spec *spec,
                                        sl_stream_created_cb cb, void *ctx);
/* Answers the stream's parked fetches ENOTFOUND, then deletes it. Errors:
 * SL_ENOTFOUND, SL_EIO (why says which). A replicated stream is deleted in the cluster
 * (struct sl_engine_repl.remove): SL_OK once asked, gone here within a ZooKeeper round trip
 * (errors at once: no session; SL_EUNSUPPORTED on a broker started without --cluster). */
int sl_streams_delete(struct sl_engine *e, const char *name, char *why, uint32_t why_len);
/* Cluster mode: the same for this broker's copy of a replicated stream, which the cluster
 * deleted (or which a creation of its name since then replaced); the caller detached its
 * replicas first. */
int sl_streams_drop_replica(struct sl_engine *e, const char *name, char *why, uint32_t why_len);
void sl_streams_shard_info(const struct sl_stream *st, uint32_t shard, struct sl_shard_info *out);

#endif
