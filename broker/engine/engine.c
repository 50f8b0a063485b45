/* engine.c - the engines' shared context (see engine.h). */
#include "broker/engine/engine.h"

#include "broker/engine/catalog.h"
#include "broker/engine/coord.h"
#include "broker/engine/filter.h"
#include "broker/engine/filter_set.h"
#include "common/compress.h"
#include "common/error.h"
#include "storage/batch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sl_engine_init(struct sl_engine *e, const struct sl_engine_config *cfg,
                   struct sl_catalog *catalog)
{
    memset(e, 0, sizeof(*e));
    e->cfg = *cfg;
    e->catalog = catalog;
    e->zctx = sl_zctx_new();
    sl_filter_subject_init(&e->filter_subject);
    return e->zctx != NULL ? SL_OK : SL_ENOMEM;
}

void sl_engine_fini(struct sl_engine *e)
{
    sl_coord_fini(e);
    sl_zctx_free(e->zctx);
    e->zctx = NULL;
    sl_filter_subject_fini(&e->filter_subject);
    sl_filter_memo_free(e->filter_memo);
    e->filter_memo = NULL;
    free(e->scratch);
    e->scratch = NULL;
    e->scratch_cap = 0;
}

int sl_engine_scratch_reserve(struct sl_engine *e, uint32_t codec, uint32_t records_len)
{
    if (codec != SL_BATCH_CODEC_ZSTD || records_len <= e->scratch_cap) {
        return SL_OK;
    }
    if (records_len > 4 * e->cfg.batch_bytes_max) {
        return SL_ETOOBIG;
    }
    uint8_t *n = realloc(e->scratch, records_len);
    if (n == NULL) {
        return SL_ENOMEM;
    }
    e->scratch = n;
    e->scratch_cap = records_len;
    return SL_OK;
}

struct sl_stream *sl_engine_stream(struct sl_engine *e, const char *name, char *why,
                                   uint32_t why_len, int *err)
{
    struct sl_stream *st = NULL;
    int rc = sl_catalog_lookup(e->catalog, name != NULL ? name : "", &st, why, why_len);
    if (rc == SL_ENOTFOUND && e->repl != NULL && name != NULL &&
        e->repl->creating(e->repl->ctx, name)) {
        /* a cluster stream just made: the other brokers' clients (routed by ZooKeeper's
         * states) may reach this broker before its catalog has it */
        snprintf(why, why_len, "stream %s is being created on this broker: retry", name);
        rc = SL_EAGAIN;
    }
    if (rc != SL_OK) {
        *err = rc;
    }
    return st;
}

int sl_engine_read_end(const struct sl_engine *e, const struct sl_bshard *b, uint64_t *end)
{
    int32_t epoch = -1;
    *end = 0;
    return e->repl != NULL && b->repl != NULL ? e->repl->replica(e->repl->ctx, b, end, &epoch)
                                              : SL_ENOT_LEADER;
}

struct sl_bshard *sl_engine_shard(struct sl_engine *e, const char *name, uint32_t shard,
                                  char *why, uint32_t why_len, int *err)
{
    struct sl_stream *st = sl_engine_stream(e, name, why, why_len, err);
    if (st == NULL) {
        return NULL;
    }
    if (shard >= st->shard_count) {
        snprintf(why, why_len, "stream %s has %u shards; shard %u does not exist", st->name,
                 st->shard_count, shard);
        *err = SL_ENOTFOUND;
        return NULL;
    }
    return st->shards[shard];
}
