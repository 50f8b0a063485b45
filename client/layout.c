/* layout.c - the routing table of a stream's open shards and the records of a batch read
 * back for re-partitioning (layout.h).
 *
 * Invariants of a built table: open_len >= 1, open[0].start == 0, open[last].end ==
 * UINT64_MAX, open[i].end + 1 == open[i + 1].start; so sl_layout_route's binary search always
 * lands in exactly one range. A broker that described anything else is refused (SL_EPROTO)
 * before the table replaces the one in use.
 */
#include "client/layout.h"

#include "common/assert.h"
#include "common/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int range_cmp(const void *a, const void *b)
{
    const struct sl_layout_range *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start ? 1 : 0;
}

/* Whether the sorted ranges partition [0, UINT64_MAX]; else `why` names the first flaw. */
static int ranges_partition(const struct sl_layout_range *r, uint32_t n, char *why)
{
    if (r[0].start != 0) {
        snprintf(why, SL_LAYOUT_WHY_MAX, "no open shard holds hash 0 (the first starts at %llx)",
                 (unsigned long long)r[0].start);
        return 0;
    }
    for (uint32_t i = 0; i < n; i++) {
        if (r[i].end < r[i].start) {
            snprintf(why, SL_LAYOUT_WHY_MAX, "shard %u's range ends before it starts", r[i].shard);
            return 0;
        }
        if (i + 1 < n && (r[i].end == UINT64_MAX || r[i].end + 1 != r[i + 1].start)) {
            snprintf(why, SL_LAYOUT_WHY_MAX, "open shards %u and %u %s", r[i].shard, r[i + 1].shard,
                     r[i].end == UINT64_MAX || r[i].end >= r[i + 1].start ? "overlap"
                                                                          : "leave a gap");
            return 0;
        }
    }
    if (r[n - 1].end != UINT64_MAX) {
        snprintf(why, SL_LAYOUT_WHY_MAX, "no open shard holds the hashes above %llx",
                 (unsigned long long)r[n - 1].end);
        return 0;
    }
    return 1;
}

int sl_layout_build(struct sl_layout *l, const struct sluice_shard_info *shards, size_t n,
                    char *why)
{
    uint32_t open = 0;
    for (size_t i = 0; i < n; i++) {
        open += shards[i].closed ? 0 : 1;
    }
    if (open == 0) {
        snprintf(why, SL_LAYOUT_WHY_MAX, "the stream has no open shard");
        return SL_EPROTO;
    }
    struct sl_layout_range *r = malloc(open * sizeof(*r));
    if (r == NULL) {
        snprintf(why, SL_LAYOUT_WHY_MAX, "out of memory");
        return SL_ENOMEM;
    }
    uint32_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (!shards[i].closed) {
            r[k++] =
                (struct sl_layout_range){shards[i].hash_start, shards[i].hash_end, shards[i].shard};
        }
    }
    SL_ASSERT(k == open);
    qsort(r, open, sizeof(*r), range_cmp);
    if (!ranges_partition(r, open, why)) {
        free(r);
        return SL_EPROTO;
    }
    sl_layout_fini(l);
    l->open = r;
    l->open_len = open;
    return SL_OK;
}

void sl_layout_fini(struct sl_layout *l)
{
    free(l->open);
    l->open = NULL;
    l->open_len = 0;
}

uint32_t sl_layout_route(const struct sl_layout *l, uint64_t hash)
{
    SL_ASSERT(l->open_len >= 1 && l->open[0].start == 0);
    /* the last range starting at or below hash: open[lo].start <= hash < open[hi].start */
    uint32_t lo = 0, hi = l->open_len;
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (l->open[mid].start <= hash) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    SL_ASSERT(l->open[lo].start <= hash && hash <= l->open[lo].end);
    return l->open[lo].shard;
}

uint32_t sl_layout_route_draining(const struct sl_layout *l, const struct sl_layout_range *draining,
                                  uint32_t n, uint64_t hash, uint32_t min_id)
{
    for (uint32_t k = 0; k < n; k++) {
        SL_ASSERT(k == 0 || draining[k - 1].shard < draining[k].shard);
        if (draining[k].shard >= min_id && draining[k].start <= hash && hash <= draining[k].end) {
            return draining[k].shard;
        }
    }
    return sl_layout_route(l, hash);
}

int sl_layout_batch_each(const void *batch, size_t len, struct sl_zctx *z, sl_layout_record_fn fn,
                         void *ctx)
{
    struct sl_batch_header h;
    int rc = sl_batch_validate(batch, len, SL_BATCH_BYTES_MAX, &h);
    if (rc != SL_OK) {
        return rc == SL_EAGAIN || rc == SL_ETOOBIG ? SL_ECORRUPT : rc;
    }
    void *scratch = NULL;
    if ((h.codec & SL_BATCH_CODEC_MASK) == SL_BATCH_CODEC_ZSTD) {
        if (z == NULL) {
            return SL_EINVAL;
        }
        scratch = malloc(h.records_len > 0 ? h.records_len : 1);
        if (scratch == NULL) {
            return SL_ENOMEM;
        }
    }
    struct sl_batch_iter it;
    rc = sl_batch_iter_init(&it, batch, &h, z, scratch, h.records_len);
    struct sl_attr attrs[SL_RECORD_ATTRS_MAX];
    uint32_t index = 0;
    while (rc == SL_OK) {
        struct sl_record_view rv;
        rc = sl_batch_iter_next(&it, &rv);
        if (rc != SL_OK) {
            rc = rc == SL_ENOTFOUND && index == h.record_count ? SL_OK
                 : rc == SL_ENOTFOUND                          ? SL_ECORRUPT
                                                               : rc;
            break;
        }
        uint32_t pos = 0, na = 0;
        while (na < SL_RECORD_ATTRS_MAX && sl_record_attr_next(&rv, &pos, &attrs[na])) {
            na++;
        }
        if (na != rv.attr_count) {
            rc = SL_ECORRUPT;
            break;
        }
        struct sl_record rec = {
            .key = rv.key,
            .key_len = rv.key_len,
            .value = rv.value,
            .value_len = rv.value_len,
            .attrs = attrs,
            .attr_count = na,
            .timestamp_ms = rv.timestamp_ms,
        };
        rc = fn(ctx, index++, &rec);
    }
    free(scratch);
    return rc;
}
