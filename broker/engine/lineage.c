/* lineage.c - a stream's shards over time (see lineage.h). */
#include "broker/engine/lineage.h"

#include "common/assert.h"
#include "common/error.h"
#include "common/partition.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int grow(struct sl_lineage *l, uint32_t more)
{
    if (l->n + more > SL_LINEAGE_SHARDS_MAX) {
        return SL_ELIMIT;
    }
    if (l->n + more <= l->cap) {
        return SL_OK;
    }
    uint32_t cap = l->cap < 16 ? 16 : l->cap;
    while (cap < l->n + more) {
        cap *= 2;
    }
    cap = cap > SL_LINEAGE_SHARDS_MAX ? SL_LINEAGE_SHARDS_MAX : cap;
    struct sl_lineage_shard *s = realloc(l->shard, (size_t)cap * sizeof(*s));
    if (s == NULL) {
        return SL_ENOMEM;
    }
    l->shard = s;
    l->cap = cap;
    return SL_OK;
}

static void assert_ok(const struct sl_lineage *l)
{
#ifndef NDEBUG
    char why[160];
    int rc = sl_lineage_check(l, why, sizeof(why));
    if (rc != SL_OK) {
        fprintf(stderr, "lineage: %s\n", why);
    }
    SL_ASSERT(rc == SL_OK);
#else
    (void)l;
#endif
}

static uint32_t add(struct sl_lineage *l, uint64_t start, uint64_t end, uint32_t p0, uint32_t p1)
{
    SL_ASSERT(l->n < l->cap && start <= end);
    uint32_t id = l->n++;
    l->shard[id] = (struct sl_lineage_shard){.start = start, .end = end, .parent = {p0, p1},
                                             .child = {SL_LINEAGE_NONE, SL_LINEAGE_NONE}};
    l->open++;
    return id;
}

int sl_lineage_init(struct sl_lineage *l, uint32_t count)
{
    *l = (struct sl_lineage){0};
    if (count == 0 || count > SL_LINEAGE_SHARDS_MAX) {
        return SL_EINVAL;
    }
    int rc = grow(l, count);
    if (rc != SL_OK) {
        return rc;
    }
    for (uint32_t i = 0; i < count; i++) {
        uint64_t start, end;
        sl_partition_range(i, count, &start, &end);
        add(l, start, end, SL_LINEAGE_NONE, SL_LINEAGE_NONE);
    }
    assert_ok(l);
    return SL_OK;
}

void sl_lineage_fini(struct sl_lineage *l)
{
    free(l->shard);
    *l = (struct sl_lineage){0};
}

int sl_lineage_copy(struct sl_lineage *dst, const struct sl_lineage *src)
{
    *dst = (struct sl_lineage){0};
    int rc = grow(dst, src->n);
    if (rc != SL_OK) {
        return rc;
    }
    memcpy(dst->shard, src->shard, (size_t)src->n * sizeof(*src->shard));
    dst->n = src->n;
    dst->open = src->open;
    dst->gone = src->gone;
    return SL_OK;
}

int sl_lineage_restore(struct sl_lineage *l, const struct sl_lineage_shard *shards, uint32_t n,
                       char *why, size_t whylen)
{
    *l = (struct sl_lineage){0};
    if (n == 0 || n > SL_LINEAGE_SHARDS_MAX) {
        snprintf(why, whylen, "%u shards (1 to %u)", n, SL_LINEAGE_SHARDS_MAX);
        return SL_EINVAL;
    }
    int rc = grow(l, n);
    if (rc != SL_OK) {
        return rc;
    }
    memcpy(l->shard, shards, (size_t)n * sizeof(*shards));
    l->n = n;
    for (uint32_t i = 0; i < n; i++) {
        l->open += shards[i].closed ? 0 : 1;
        l->gone += shards[i].gone ? 1 : 0;
    }
    rc = sl_lineage_check(l, why, whylen);
    if (rc != SL_OK) {
        sl_lineage_fini(l);
    }
    return rc;
}

/* The shard `id` when it is open, else the reason in why. */
static int open_shard(const struct sl_lineage *l, uint32_t id, char *why, size_t whylen)
{
    if (id >= l->n) {
        snprintf(why, whylen, "shard %u does not exist (the stream has had %u)", id, l->n);
        return SL_ENOTFOUND;
    }
    if (l->shard[id].closed) {
        snprintf(why, whylen, "shard %u is closed (split or merged into %u%s)", id,
                 l->shard[id].child[0], l->shard[id].child[1] != SL_LINEAGE_NONE ? " and more" : "");
        return SL_ESHARD_CLOSED;
    }
    return SL_OK;
}

uint64_t sl_lineage_middle(const struct sl_lineage *l, uint32_t id)
{
    SL_ASSERT(id < l->n);
    const struct sl_lineage_shard *s = &l->shard[id];
    return s->start + (s->end - s->start) / 2 + 1;
}

int sl_lineage_split(struct sl_lineage *l, uint32_t id, uint64_t at, uint32_t children[2],
                     char *why, size_t whylen)
{
    int rc = open_shard(l, id, why, whylen);
    if (rc != SL_OK) {
        return rc;
    }
    struct sl_lineage_shard p = l->shard[id];
    if (at <= p.start || at > p.end) {
        snprintf(why, whylen,
                 "hash %llu is not inside shard %u's range (%llu, %llu]: a split point starts "
                 "the second child",
                 (unsigned long long)at, id, (unsigned long long)p.start,
                 (unsigned long long)p.end);
        return SL_EINVAL;
    }
    if ((rc = grow(l, 2)) != SL_OK) {
        snprintf(why, whylen, "%s", rc == SL_ELIMIT ? "the stream has had too many shards "
                                                      "(split and merge keep closed ones)"
                                                    : "out of memory");
        return rc;
    }
    children[0] = add(l, p.start, at - 1, id, SL_LINEAGE_NONE);
    children[1] = add(l, at, p.end, id, SL_LINEAGE_NONE);
    l->shard[id].closed = true;
    l->shard[id].child[0] = children[0];
    l->shard[id].child[1] = children[1];
    l->open--;
    assert_ok(l);
    return SL_OK;
}

int sl_lineage_merge(struct sl_lineage *l, uint32_t a, uint32_t b, uint32_t *child, char *why,
                     size_t whylen)
{
    int rc = open_shard(l, a, why, whylen);
    rc = rc == SL_OK ? open_shard(l, b, why, whylen) : rc;
    if (rc != SL_OK) {
        return rc;
    }
    uint32_t lo = l->shard[a].start < l->shard[b].start ? a : b;
    uint32_t hi = lo == a ? b : a;
    if (a == b || l->shard[lo].end == UINT64_MAX || l->shard[lo].end + 1 != l->shard[hi].start) {
        snprintf(why, whylen, "shards %u and %u are not adjacent: only neighbouring hash ranges "
                              "merge", a, b);
        return SL_EINVAL;
    }
    if ((rc = grow(l, 1)) != SL_OK) {
        snprintf(why, whylen, "%s", rc == SL_ELIMIT ? "the stream has had too many shards "
                                                      "(split and merge keep closed ones)"
                                                    : "out of memory");
        return rc;
    }
    *child = add(l, l->shard[lo].start, l->shard[hi].end, lo, hi);
    for (int k = 0; k < 2; k++) {
        uint32_t p = k == 0 ? lo : hi;
        l->shard[p].closed = true;
        l->shard[p].child[0] = *child;
        l->open--;
    }
    assert_ok(l);
    return SL_OK;
}

uint32_t sl_lineage_route(const struct sl_lineage *l, uint64_t hash)
{
    for (uint32_t i = 0; i < l->n; i++) {
        const struct sl_lineage_shard *s = &l->shard[i];
        if (!s->closed && hash >= s->start && hash <= s->end) {
            return i;
        }
    }
    SL_ASSERT(!"the open shards cover every hash");
    return SL_LINEAGE_NONE;
}

/* ---- planning ---------------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The starts of the open shards, sorted (l->open of them). NULL: no memory. */
static uint64_t *open_starts(const struct sl_lineage *l)
{
    uint64_t *v = malloc((size_t)(l->open ? l->open : 1) * sizeof(*v));
    uint32_t k = 0;
    for (uint32_t i = 0; v != NULL && i < l->n; i++) {
        if (!l->shard[i].closed) {
            v[k++] = l->shard[i].start;
        }
    }
    if (v != NULL) {
        SL_ASSERT(k == l->open);
        qsort(v, k, sizeof(*v), cmp_u64);
    }
    return v;
}

/* Whether sorted v holds a value within `tol` of x. */
static bool near(const uint64_t *v, uint32_t n, uint64_t x, uint64_t tol)
{
    uint32_t lo = 0, hi = n; /* first v[i] >= x - tol */
    uint64_t from = x > tol ? x - tol : 0;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (v[mid] < from) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo < n && (v[lo] >= x ? v[lo] - x : x - v[lo]) <= tol;
}

int sl_lineage_plan(const struct sl_lineage *l, uint32_t target, struct sl_reshard_step *steps,
                    uint32_t cap, uint32_t *n)
{
    *n = 0;
    if (target == 0 || target > SL_LINEAGE_SHARDS_MAX) {
        return SL_EINVAL;
    }
    uint64_t *cur = open_starts(l);
    uint64_t *want = malloc((size_t)target * sizeof(*want));
    if (cur == NULL || want == NULL) {
        free(cur);
        free(want);
        return SL_ENOMEM;
    }
    for (uint32_t i = 0; i < target; i++) {
        uint64_t end;
        sl_partition_range(i, target, &want[i], &end);
    }
    /* Boundaries this close count as the same: uniform widths of different
     * counts differ by rounding (UINT64_MAX / 8 * 2 != UINT64_MAX / 4), and a
     * split and a merge to move a boundary by one hash would be waste. */
    uint64_t tol = sl_partition_width(target) / SL_LINEAGE_TOLERANCE;
    int rc = SL_OK;
    for (uint32_t i = 1; i < target && rc == SL_OK; i++) { /* 0 starts both */
        if (!near(cur, l->open, want[i], tol)) {
            rc = *n < cap ? SL_OK : SL_ELIMIT;
            if (rc == SL_OK) {
                steps[(*n)++] = (struct sl_reshard_step){.merge = false, .at = want[i]};
            }
        }
    }
    for (uint32_t i = 1; i < l->open && rc == SL_OK; i++) {
        if (!near(want, target, cur[i], tol)) {
            rc = *n < cap ? SL_OK : SL_ELIMIT;
            if (rc == SL_OK) {
                steps[(*n)++] = (struct sl_reshard_step){.merge = true, .at = cur[i]};
            }
        }
    }
    free(cur);
    free(want);
    return rc;
}

int sl_lineage_apply(struct sl_lineage *l, const struct sl_reshard_step *step, char *why,
                     size_t whylen)
{
    if (!step->merge) {
        uint32_t c[2];
        return sl_lineage_split(l, sl_lineage_route(l, step->at), step->at, c, why, whylen);
    }
    if (step->at == 0) {
        snprintf(why, whylen, "no shard before hash 0 to merge with");
        return SL_EINVAL;
    }
    uint32_t right = sl_lineage_route(l, step->at);
    if (l->shard[right].start != step->at) {
        snprintf(why, whylen, "no open shard starts at hash %llu", (unsigned long long)step->at);
        return SL_EINVAL;
    }
    uint32_t child;
    return sl_lineage_merge(l, sl_lineage_route(l, step->at - 1), right, &child, why, whylen);
}

void sl_lineage_retire(struct sl_lineage *l, uint32_t id, uint64_t end_seq)
{
    SL_ASSERT(id < l->n && l->shard[id].closed && !l->shard[id].gone);
    l->shard[id].gone = true;
    l->shard[id].end_seq = end_seq;
    l->gone++;
    SL_ASSERT(l->gone <= l->n - l->open);
}

bool sl_lineage_readable(const struct sl_lineage *l, uint32_t id,
                         bool (*finished)(void *ctx, uint32_t shard), void *ctx)
{
    SL_ASSERT(id < l->n);
    uint8_t need[SL_LINEAGE_SHARDS_MAX / 8] = {0}; /* id, then the ancestors found so far */
    need[id / 8] = (uint8_t)(1u << (id % 8));
    uint32_t pending = 1;
    for (uint32_t i = id + 1; i-- > 0 && pending > 0;) {
        if (!(need[i / 8] & (1u << (i % 8)))) {
            continue;
        }
        pending--;
        if (i != id && !l->shard[i].gone && !finished(ctx, i)) {
            return false;
        }
        for (int k = 0; k < 2; k++) {
            uint32_t p = l->shard[i].parent[k];
            if (p != SL_LINEAGE_NONE && !(need[p / 8] & (1u << (p % 8)))) {
                SL_ASSERT(p < i);
                need[p / 8] |= (uint8_t)(1u << (p % 8));
                pending++;
            }
        }
    }
    SL_ASSERT(pending == 0);
    return true;
}

/* ---- invariants ---------------------------------------------------------------- */

struct open_at {
    uint64_t start;
    uint32_t id;
};

static int cmp_open_at(const void *a, const void *b)
{
    uint64_t x = ((const struct open_at *)a)->start, y = ((const struct open_at *)b)->start;
    return x < y ? -1 : x > y;
}

static int fail(char *why, size_t whylen, const char *what, uint32_t id)
{
    snprintf(why, whylen, "shard lineage damaged: shard %u %s", id, what);
    return SL_ECORRUPT;
}

int sl_lineage_check(const struct sl_lineage *l, char *why, size_t whylen)
{
    uint32_t open = 0, gone = 0;
    for (uint32_t i = 0; i < l->n; i++) {
        const struct sl_lineage_shard *s = &l->shard[i];
        gone += s->gone ? 1 : 0;
        if (s->start > s->end) {
            return fail(why, whylen, "has an empty range", i);
        }
        for (int k = 0; k < 2; k++) {
            if (s->parent[k] != SL_LINEAGE_NONE && s->parent[k] >= i) {
                return fail(why, whylen, "names a parent that is not older", i);
            }
        }
        if (!s->closed) {
            if (s->gone) {
                return fail(why, whylen, "is gone but not closed", i);
            }
            open++;
            continue;
        }
        uint32_t c0 = s->child[0], c1 = s->child[1];
        if (c0 >= l->n || c0 <= i || (c1 != SL_LINEAGE_NONE && (c1 >= l->n || c1 <= i))) {
            return fail(why, whylen, "is closed without valid children", i);
        }
        const struct sl_lineage_shard *a = &l->shard[c0];
        bool split_ok = c1 != SL_LINEAGE_NONE && a->start == s->start &&
                        a->end != UINT64_MAX && a->end + 1 == l->shard[c1].start &&
                        l->shard[c1].end == s->end && a->parent[0] == i &&
                        l->shard[c1].parent[0] == i;
        bool merge_ok = c1 == SL_LINEAGE_NONE && a->start <= s->start && a->end >= s->end &&
                        (a->parent[0] == i || a->parent[1] == i);
        if (!split_ok && !merge_ok) {
            return fail(why, whylen, "is not covered by its children", i);
        }
    }
    if (gone != l->gone) {
        return fail(why, whylen, "count: the gone shards are miscounted", gone);
    }
    if (open != l->open || open == 0) {
        return fail(why, whylen, "count: the open shards are miscounted", open);
    }
    struct open_at *v = malloc((size_t)open * sizeof(*v));
    if (v == NULL) {
        return SL_OK; /* (no memory to check the partition: the counts held) */
    }
    uint32_t k = 0;
    for (uint32_t i = 0; i < l->n; i++) {
        if (!l->shard[i].closed) {
            v[k++] = (struct open_at){.start = l->shard[i].start, .id = i};
        }
    }
    qsort(v, open, sizeof(*v), cmp_open_at);
    int rc = SL_OK;
    if (v[0].start != 0 || l->shard[v[open - 1].id].end != UINT64_MAX) {
        rc = fail(why, whylen, "is where the open shards fail to reach both ends of the hash "
                               "space", v[0].id);
    }
    for (uint32_t j = 1; j < open && rc == SL_OK; j++) {
        uint64_t end = l->shard[v[j - 1].id].end;
        if (end == UINT64_MAX || end + 1 != v[j].start) {
            rc = fail(why, whylen, "leaves a gap or an overlap with the next open shard",
                      v[j - 1].id);
        }
    }
    free(v);
    return rc;
}
