/* streams.c - stream administration (see streams.h). */
#include "broker/engine/streams.h"

#include "broker/engine/catalog.h"
#include "broker/engine/engine.h"
#include "broker/engine/fetch.h"
#include "broker/engine/queue.h"
#include "common/assert.h"
#include "common/error.h"
#include "common/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sl_streams_create(struct sl_engine *e, const struct sl_stream_spec *spec,
                      struct sl_stream **out, char *why, uint32_t why_len)
{
    return sl_catalog_create(e->catalog, spec->name != NULL ? spec->name : "",
                             spec->shard_count, spec->retention_hours, spec->retention_bytes,
                             spec->compression, out, why, why_len);
}

struct create_op {
    struct sl_engine *e;
    char name[SL_STREAM_NAME_MAX + 1];
    sl_stream_created_cb cb;
    void *ctx;
};

static void on_created(void *ctx, int err, const char *why)
{
    struct create_op *op = ctx;
    struct sl_stream *st = err == SL_OK ? sl_catalog_find(op->e->catalog, op->name) : NULL;
    SL_ASSERT(err != SL_OK || st != NULL);
    op->cb(op->ctx, err, why, st);
    free(op);
}

void sl_streams_create_async(struct sl_engine *e, const struct sl_stream_spec *spec,
                             sl_stream_created_cb cb, void *ctx)
{
    const char *name = spec->name != NULL ? spec->name : "";
    char why[256] = "";
    struct create_op *op = calloc(1, sizeof(*op));
    if (op == NULL) {
        cb(ctx, SL_ENOMEM, sl_strerror(SL_ENOMEM), NULL);
        return;
    }
    *op = (struct create_op){.e = e, .cb = cb, .ctx = ctx};
    snprintf(op->name, sizeof(op->name), "%s", name); /* a longer one fails the name check */
    int rc = sl_catalog_create_async(e->catalog, name, spec->shard_count, spec->retention_hours,
                                     spec->retention_bytes, spec->compression, 0, 0,
                                     on_created, op, why, sizeof(why));
    if (rc != SL_OK) {
        free(op);
        cb(ctx, rc, why, NULL);
    }
}

/* A replicated create: the cluster's answer, then the stream as this catalog has it. */
static void on_cluster_created(void *ctx, int err, const char *why)
{
    struct create_op *op = ctx;
    struct sl_stream *st = err == SL_OK ? sl_catalog_find(op->e->catalog, op->name) : NULL;
    if (err == SL_OK && st == NULL) {
        err = SL_ENOTFOUND;
        why = "the stream was deleted again before it could be used";
    }
    op->cb(op->ctx, err, why, st);
    free(op);
}

void sl_streams_create_replicated_async(struct sl_engine *e, const struct sl_stream_spec *spec,
                                        sl_stream_created_cb cb, void *ctx)
{
    if (e->repl == NULL || e->repl->create == NULL) {
        sl_streams_create_async(e, spec, cb, ctx);
        return;
    }
    const char *name = spec->name != NULL ? spec->name : "";
    char why[320] = "";
    int rc = sl_catalog_check_spec(name, spec->shard_count, spec->retention_hours,
                                   spec->compression, why, sizeof(why));
    if (rc == SL_OK && sl_catalog_find(e->catalog, name) != NULL) {
        rc = SL_EEXIST;
        snprintf(why, sizeof(why), "stream %s already exists", name);
    }
    struct create_op *op = rc == SL_OK ? calloc(1, sizeof(*op)) : NULL;
    if (rc == SL_OK && op == NULL) {
        rc = SL_ENOMEM;
        snprintf(why, sizeof(why), "out of memory");
    }
    if (rc == SL_OK) {
        *op = (struct create_op){.e = e, .cb = cb, .ctx = ctx};
        snprintf(op->name, sizeof(op->name), "%s", name);
        rc = e->repl->create(e->repl->ctx, name, spec->shard_count, spec->retention_hours,
                             spec->retention_bytes, spec->compression,
                             spec->replication_factor, on_cluster_created, op, why, sizeof(why));
        if (rc != SL_OK) {
            free(op);
        }
    }
    if (rc != SL_OK) {
        cb(ctx, rc, why, NULL);
    }
}

static void on_cluster_removed(void *ctx, int err, const char *why)
{
    char *name = ctx;
    if (err != SL_OK && err != SL_ENOTFOUND) {
        sl_error("streams", "deleting replicated stream %s in the cluster failed: %s", name, why);
    }
    free(name);
}

static int delete_stream(struct sl_engine *e, const char *name, bool replica, char *why,
                         uint32_t why_len)
{
    name = name != NULL ? name : "";
    struct sl_stream *st = sl_catalog_find(e->catalog, name);
    if (st != NULL && sl_stream_replicated(st) && !replica) {
        /* Deleted in the cluster: answered once asked (as the AWS APIs' deletes, which
         * leave the stream DELETING), gone here within the ZooKeeper round trip. */
        char *copy = e->repl != NULL && e->repl->remove != NULL ? strdup(name) : NULL;
        if (copy == NULL && e->repl == NULL) {
            snprintf(why, why_len,
                     "stream %s is replicated and this broker was started without --cluster: "
                     "delete it through a broker of its cluster",
                     name);
            return SL_EUNSUPPORTED;
        }
        if (copy == NULL) {
            snprintf(why, why_len, "out of memory deleting stream %s", name);
            return SL_ENOMEM;
        }
        int rc = e->repl->remove(e->repl->ctx, name, on_cluster_removed, copy, why, why_len);
        if (rc != SL_OK) {
            free(copy);
        }
        return rc;
    }
    if (st != NULL) {
        sl_fetch_stream_wake(st, SL_ENOTFOUND);
    }
    int rc = sl_catalog_delete(e->catalog, name);
    if (rc != SL_OK) {
        snprintf(why, why_len, "cannot delete stream %s: %s", name, sl_strerror(rc));
    } else if (st != NULL) {
        sl_queue_stream_deleted(st);
    }
    return rc;
}

int sl_streams_delete(struct sl_engine *e, const char *name, char *why, uint32_t why_len)
{
    return delete_stream(e, name, false, why, why_len);
}

int sl_streams_drop_replica(struct sl_engine *e, const char *name, char *why, uint32_t why_len)
{
    return delete_stream(e, name, true, why, why_len);
}

void sl_streams_shard_info(const struct sl_stream *st, uint32_t shard, struct sl_shard_info *out)
{
    SL_ASSERT(shard < st->shard_count);
    const struct sl_bshard *b = st->shards[shard];
    struct sl_shard_stats ss;
    sl_wshard_stats(&b->ws, &ss);
    memset(out, 0, sizeof(*out));
    out->shard = shard;
    out->hash_start = b->hash_start;
    out->hash_end = b->hash_end;
    out->first_seq = ss.first_seq;
    out->next_seq = ss.visible_seq;
    out->tail_time_ms = ss.visible_time_ms;
    out->bytes = ss.bytes;
    out->segments = ss.segments;
    out->writes = ss.writes;
    out->fsyncs = ss.fsyncs;
    out->fsync_ns = ss.fsync_ns;
    out->zero_bytes = ss.zero_bytes;
    out->status = ss.state;
    if (ss.state == SL_EFATAL && ss.fatal_what != NULL) {
        snprintf(out->status_message, sizeof(out->status_message), "%s failed: %s",
                 ss.fatal_what, strerror(ss.fatal_errno));
    } else if (ss.state == SL_ENOSPC) {
        snprintf(out->status_message, sizeof(out->status_message), "disk full at the last write");
    }
}
