/* catalog_reshard.c - splits and merges of a stream's shards (#16): routing
 * by the lineage, and the durable change.
 *
 * A change is prepared (the new lineage, checked against the limits) and
 * committed on the main loop:
 *   1. each child gets its struct sl_bshard (owner, range, empty de-dup
 *      table), its directory (an empty one left by a change that failed
 *      before its commit is reused: no append ever reached it, since appends
 *      reach a child only after the commit) and its log;
 *   2. stream.meta is replaced (tmp, fsync, rename, fsync of the stream
 *      directory, which also makes the children's directory entries
 *      durable). This is the commit point: a restart before it finds the
 *      stream as it was, after it as changed - never between;
 *   3. the children's logs go to their owners and the lineage, the count and
 *      the routing table are installed.
 * A failure in 1 or 2 closes the children's logs and frees them: the stream
 * is as before. The parents' logs are untouched: a closed shard is a
 * lineage flag, its records stay readable until retention removes them.
 *
 * The caller (reshard.c) makes sure no append to a shard being closed is in
 * flight across the commit, so a closed shard's log ends where it ended at
 * the commit, before any record reaches its children.
 *
 * Threading: the main loop.
 */
#include "broker/engine/catalog_int.h"

#include "common/assert.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"
#include "common/partition.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- routing ------------------------------------------------------------------ */

struct open_ref {
    uint64_t start;
    uint32_t id;
};

static int open_ref_cmp(const void *a, const void *b)
{
    const struct open_ref *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start ? 1 : 0;
}

int catalog_route_build(struct sl_stream *st)
{
    const struct sl_lineage *l = &st->lineage;
    free(st->open_start);
    free(st->open_id);
    st->open_start = NULL;
    st->open_id = NULL;
    if (l->n == l->open) {
        return SL_OK; /* never resharded: the uniform ranges of partition.h */
    }
    struct open_ref *v = malloc((size_t)l->open * sizeof(*v));
    st->open_start = malloc((size_t)l->open * sizeof(*st->open_start));
    st->open_id = malloc((size_t)l->open * sizeof(*st->open_id));
    if (v == NULL || st->open_start == NULL || st->open_id == NULL) {
        free(v);
        free(st->open_start);
        free(st->open_id);
        st->open_start = NULL;
        st->open_id = NULL;
        return SL_ENOMEM;
    }
    uint32_t k = 0;
    for (uint32_t i = 0; i < l->n; i++) {
        if (!l->shard[i].closed) {
            v[k++] = (struct open_ref){.start = l->shard[i].start, .id = i};
        }
    }
    SL_ASSERT(k == l->open && k > 0);
    qsort(v, k, sizeof(*v), open_ref_cmp);
    SL_ASSERT(v[0].start == 0);
    for (uint32_t i = 0; i < k; i++) {
        st->open_start[i] = v[i].start;
        st->open_id[i] = v[i].id;
    }
    free(v);
    return SL_OK;
}

uint32_t sl_catalog_route(const struct sl_stream *st, uint64_t hash)
{
    if (st->open_start == NULL) {
        /* never resharded, or no memory was left for the table */
        return st->lineage.n == st->lineage.open ? sl_partition_shard(hash, st->shard_count)
                                                 : sl_lineage_route(&st->lineage, hash);
    }
    uint32_t lo = 0, hi = st->lineage.open; /* the last start <= hash */
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (st->open_start[mid] <= hash) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    uint32_t id = st->open_id[lo];
    SL_ASSERT(hash >= st->lineage.shard[id].start && hash <= st->lineage.shard[id].end);
    return id;
}

uint32_t sl_catalog_open_shard(const struct sl_stream *st, uint32_t k)
{
    SL_ASSERT(k < st->lineage.open);
    if (st->open_id != NULL || st->lineage.n == st->lineage.open) {
        return st->open_id != NULL ? st->open_id[k] : k;
    }
    for (uint32_t i = 0; i < st->lineage.n; i++) { /* (the table's memory failed) */
        if (!st->lineage.shard[i].closed && k-- == 0) {
            return i;
        }
    }
    SL_ASSERT(!"fewer open shards than lineage.open");
    return 0;
}

/* ---- the change ------------------------------------------------------------------ */

void sl_catalog_reshard_free(struct sl_catalog_reshard *r)
{
    sl_lineage_fini(&r->next);
}

int sl_catalog_reshard_prepare(struct sl_catalog *c, const struct sl_stream *st,
                               struct sl_lineage *next, struct sl_catalog_reshard *r, char *why,
                               size_t why_len)
{
    memset(r, 0, sizeof(*r));
    r->next = *next; /* taken: sl_catalog_reshard_free frees it whatever follows */
    *next = (struct sl_lineage){0};
    SL_ASSERT(r->next.n > st->lineage.n && r->next.open > 0);
    r->first_new = st->lineage.n;
    uint32_t added = r->next.n - r->first_new;
    if (r->next.open > SL_STREAM_SHARDS_MAX) {
        snprintf(why, why_len, "stream %s would have %u open shards (at most %u)", st->name,
                 r->next.open, SL_STREAM_SHARDS_MAX);
        return SL_ELIMIT;
    }
    uint64_t shards = c->n_shards + c->pending_shards;
    if (c->cfg.shards_max != 0 && shards + added > c->cfg.shards_max) {
        snprintf(why, why_len,
                 "the change adds %u shards and the broker holds %" PRIu64
                 ", shards_max = %u (closed shards count until retention retires them): "
                 "raise shards_max",
                 added, shards, c->cfg.shards_max);
        return SL_ELIMIT;
    }
    uint64_t now = sl_clock_wall_ms();
    for (uint32_t i = 0; i < r->next.n; i++) {
        bool was_closed = i < st->lineage.n && st->lineage.shard[i].closed;
        if (r->next.shard[i].closed && !was_closed) {
            r->next.shard[i].closed_ms = now; /* (children closed in the same change too) */
            if (i < st->lineage.n) {
                r->closed[r->n_closed++] = i;
            }
        }
    }
    SL_ASSERT(r->n_closed <= SL_STREAM_SHARDS_MAX);
    return SL_OK;
}

/* Undoes step 1 for children [from, to): their logs adopted then closed
 * (an unadopted log may sit in its owner's descriptor cache), their shards
 * freed, the pointer array left at the old count. */
static void children_drop(struct sl_catalog *c, struct sl_stream *st, struct sl_shard **logs,
                          uint32_t from, uint32_t to)
{
    for (uint32_t i = from; i < to; i++) {
        struct sl_bshard *b = st->shards[i];
        if (b == NULL) {
            continue;
        }
        if (logs[i - from] != NULL) {
            struct sl_wshard_adoption one = {.b = &b->ws, .log = logs[i - from], .listener_ctx = b};
            sl_wshard_adopt(c->cfg.workers, &one, 1, c->cfg.listener);
            sl_wshard_close(&b->ws);
        }
        sl_dedup_fini(&b->dedup);
        free(b);
        st->shards[i] = NULL;
    }
}

int sl_catalog_reshard_commit(struct sl_catalog *c, struct sl_stream *st,
                              struct sl_catalog_reshard *r, char *why, size_t why_len)
{
    SL_ASSERT(st->loaded && !st->deleted);
    SL_ASSERT(r->first_new == st->shard_count && r->next.n > st->shard_count);
    uint32_t from = st->shard_count, to = r->next.n;
    struct sl_bshard **grown = realloc(st->shards, (size_t)to * sizeof(*grown));
    struct sl_shard **logs = calloc(to - from, sizeof(*logs));
    if (grown != NULL) {
        st->shards = grown; /* (larger is fine whatever follows) */
    }
    if (grown == NULL || logs == NULL) {
        free(logs);
        snprintf(why, why_len, "%s", sl_strerror(SL_ENOMEM));
        return SL_ENOMEM;
    }
    int rc = SL_OK;
    for (uint32_t i = from; i < to; i++) {
        st->shards[i] = NULL;
    }
    for (uint32_t i = from; i < to && rc == SL_OK; i++) {
        struct sl_bshard *b = calloc(1, sizeof(*b));
        if (b == NULL) {
            rc = SL_ENOMEM;
            snprintf(why, why_len, "%s", sl_strerror(rc));
            break;
        }
        b->stream = st;
        b->id = i;
        b->ws.workers = c->cfg.workers;
        b->ws.owner = sl_workers_pick(c->cfg.workers, st->name, i);
        b->hash_start = r->next.shard[i].start;
        b->hash_end = r->next.shard[i].end;
        sl_dedup_init(&b->dedup);
        st->shards[i] = b;
        /* its directory without an fsync of its own: stream.meta's replace fsyncs the
         * stream directory below (one fsync for every child, as at a create) */
        char sub[16];
        snprintf(sub, sizeof(sub), "%u", i);
        char *dir = catalog_path_cat(st->dir, sub);
        rc = dir == NULL ? SL_ENOMEM
             : mkdir(dir, 0755) == 0 || errno == EEXIST ? SL_OK
                                                        : sl_err_from_errno(errno);
        free(dir);
        if (rc != SL_OK) {
            snprintf(why, why_len, "stream %s: cannot make shard %u's directory: %s", st->name, i,
                     sl_strerror(rc));
            break;
        }
        rc = catalog_open_log(c, st, i, false, false, &logs[i - from], why, why_len);
    }
    /* the commit point: stream.meta with the new lineage */
    if (rc == SL_OK) {
        rc = catalog_meta_write(st, &r->next);
        if (rc != SL_OK) {
            char what[SL_STREAM_NAME_MAX + 48];
            snprintf(what, sizeof(what), "cannot write %s/stream.meta", st->name);
            catalog_file_why(why, why_len, what, rc);
        }
    }
    if (rc != SL_OK) {
        children_drop(c, st, logs, from, to);
        free(logs);
        return rc;
    }
    /* From here the change is durable: install it. */
    for (uint32_t i = from; i < to; i++) {
        struct sl_wshard_adoption one = {.b = &st->shards[i]->ws, .log = logs[i - from],
                                         .listener_ctx = st->shards[i]};
        sl_wshard_adopt(c->cfg.workers, &one, 1, c->cfg.listener);
    }
    free(logs);
    sl_lineage_fini(&st->lineage);
    st->lineage = r->next;
    r->next = (struct sl_lineage){0};
    st->shard_count = to;
    c->n_shards += to - from;
    if (catalog_route_build(st) != SL_OK) {
        /* no memory for the table: route by scanning the lineage */
        sl_warn("catalog", "stream %s: no memory for its routing table", st->name);
    }
    sl_info("catalog", "stream %s: %u shard(s) closed, %u opened (shards %u..%u); %u open now",
            st->name, r->n_closed, to - from, from, to - 1, st->lineage.open);
    return SL_OK;
}

/* ---- retirement: closed shards retention removed whole -------------------------------- */

void catalog_shard_dir_remove(const struct sl_stream *st, uint32_t i)
{
    char sub[16];
    snprintf(sub, sizeof(sub), "%u", i);
    char *dir = catalog_path_cat(st->dir, sub);
    if (dir != NULL) {
        catalog_remove_tree(dir, 1);
        free(dir);
    }
}

uint32_t sl_catalog_retire(struct sl_catalog *c, struct sl_stream *st, uint64_t now_ms)
{
    const struct sl_lineage *l = &st->lineage;
    if (!st->loaded || st->deleted || st->reshard != NULL || l->n - l->open == l->gone) {
        return 0; /* nothing closed left, or a change under way owns the lineage */
    }
    uint64_t keep_ms = (uint64_t)st->retention_hours * 3600u * 1000u;
    uint32_t due[SL_CATALOG_RETIRE_PER_RUN];
    uint32_t n = 0;
    for (uint32_t i = 0; i < l->n && n < SL_CATALOG_RETIRE_PER_RUN; i++) {
        const struct sl_lineage_shard *ls = &l->shard[i];
        /* Every record of a closed shard was appended before it closed: once
         * closed_ms is past retention, all of them are. */
        if (ls->closed && !ls->gone && ls->closed_ms + keep_ms <= now_ms) {
            due[n++] = i;
        }
    }
    if (n == 0) {
        return 0;
    }
    struct sl_lineage next;
    if (sl_lineage_copy(&next, l) != SL_OK) {
        return 0; /* retried at the next run */
    }
    for (uint32_t k = 0; k < n; k++) {
        struct sl_shard_stats ss;
        sl_wshard_stats(&st->shards[due[k]]->ws, &ss);
        sl_lineage_retire(&next, due[k], ss.next_seq);
    }
    /* The commit point: stream.meta says gone. A crash after it finds the
     * shards gone and removes what is left of their directories (load). */
    int rc = catalog_meta_write(st, &next);
    if (rc != SL_OK) {
        sl_error("catalog",
                 "stream %s: cannot record that retention removes %u closed shard(s): "
                 "writing stream.meta: %s (retried at the next retention run)",
                 st->name, n, sl_strerror(rc));
        sl_lineage_fini(&next);
        return 0;
    }
    sl_lineage_fini(&st->lineage);
    st->lineage = next;
    for (uint32_t k = 0; k < n; k++) {
        uint32_t i = due[k];
        sl_wshard_retire(&st->shards[i]->ws, c->ring, st->lineage.shard[i].end_seq);
        catalog_shard_dir_remove(st, i);
        SL_ASSERT(c->n_shards > 0);
        c->n_shards--;
        sl_info("catalog",
                "stream %s: retention removed closed shard %u (closed %" PRIu64
                " s ago, its log ended at %" PRIu64 ")",
                st->name, i, (now_ms - st->lineage.shard[i].closed_ms) / 1000u,
                st->lineage.shard[i].end_seq);
    }
    SL_ASSERT(st->lineage.gone <= st->lineage.n - st->lineage.open);
    return n;
}
