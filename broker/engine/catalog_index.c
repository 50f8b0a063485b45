/* catalog_index.c - the catalog's index of live streams: found by name in O(1) (a hash of
 * buckets chained through st->hnext), listed in name order (st->next), placed in that order
 * by a sorted array of pointers (O(log n) to find a neighbour, one memmove to insert). The
 * main loop only. */
#include "broker/engine/catalog_int.h"

#include "common/assert.h"
#include "common/checksum.h"

#include <stdlib.h>
#include <string.h>

/* ---- the index: find by name, keep the list in name order ------------- */

static uint64_t name_hash(const char *name)
{
    return sl_checksum64(name, strlen(name));
}

static struct sl_stream **bucket_of(const struct sl_catalog *c, uint64_t hash)
{
    return &c->buckets[hash & c->index_mask];
}

/* Doubles the buckets (keeps the old ones without memory: chains grow). */
static void index_grow(struct sl_catalog *c)
{
    uint32_t n = (c->index_mask + 1) * 2;
    struct sl_stream **b = calloc(n, sizeof(*b));
    if (b == NULL) {
        return;
    }
    for (uint32_t i = 0; i <= c->index_mask; i++) {
        while (c->buckets[i] != NULL) {
            struct sl_stream *st = c->buckets[i];
            c->buckets[i] = st->hnext;
            st->hnext = b[st->name_hash & (n - 1)];
            b[st->name_hash & (n - 1)] = st;
        }
    }
    free(c->buckets);
    c->buckets = b;
    c->index_mask = n - 1;
}

/* Where `name` is or would go in c->sorted. */
static uint32_t sorted_pos(const struct sl_catalog *c, const char *name)
{
    uint32_t lo = 0, hi = c->n_streams;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (strcmp(c->sorted[mid]->name, name) < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

/* Room for one more stream in the sorted array. Errors: SL_ENOMEM. */
int catalog_index_reserve(struct sl_catalog *c)
{
    if (c->n_streams < c->sorted_cap) {
        return SL_OK;
    }
    uint32_t cap = c->sorted_cap != 0 ? c->sorted_cap * 2 : 256;
    struct sl_stream **v = realloc(c->sorted, cap * sizeof(*v));
    if (v == NULL) {
        return SL_ENOMEM;
    }
    c->sorted = v;
    c->sorted_cap = cap;
    return SL_OK;
}

/* Adds a stream not in the catalog: to the buckets, the sorted array and
 * the list after its predecessor. Room reserved by catalog_index_reserve. */
void catalog_index_add(struct sl_catalog *c, struct sl_stream *st)
{
    SL_ASSERT(c->n_streams < c->sorted_cap);
    st->name_hash = name_hash(st->name);
    struct sl_stream **b = bucket_of(c, st->name_hash);
    st->hnext = *b;
    *b = st;
    uint32_t i = sorted_pos(c, st->name);
    SL_ASSERT(i == c->n_streams || strcmp(c->sorted[i]->name, st->name) > 0);
    memmove(&c->sorted[i + 1], &c->sorted[i], (c->n_streams - i) * sizeof(*c->sorted));
    c->sorted[i] = st;
    c->n_streams++;
    c->n_shards += catalog_live_shards(st);
    struct sl_stream **pp = i == 0 ? &c->streams : &c->sorted[i - 1]->next;
    st->next = *pp;
    *pp = st;
    if (c->n_streams > c->index_mask + 1) {
        index_grow(c);
    }
}

/* Removes a stream of the catalog from the buckets, the array and the list. */
void catalog_index_remove(struct sl_catalog *c, struct sl_stream *st)
{
    struct sl_stream **pp = bucket_of(c, st->name_hash);
    while (*pp != st) {
        SL_ASSERT(*pp != NULL);
        pp = &(*pp)->hnext;
    }
    *pp = st->hnext;
    st->hnext = NULL;
    uint32_t i = sorted_pos(c, st->name);
    SL_ASSERT(i < c->n_streams && c->sorted[i] == st);
    struct sl_stream **prev = i == 0 ? &c->streams : &c->sorted[i - 1]->next;
    SL_ASSERT(*prev == st);
    *prev = st->next;
    st->next = NULL;
    memmove(&c->sorted[i], &c->sorted[i + 1], (c->n_streams - i - 1) * sizeof(*c->sorted));
    c->n_streams--;
    SL_ASSERT(c->n_shards >= catalog_live_shards(st));
    c->n_shards -= catalog_live_shards(st);
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp((*(struct sl_stream *const *)a)->name, (*(struct sl_stream *const *)b)->name);
}

/* Start-up: the streams loaded into c->sorted (in directory order) sorted
 * once, linked and hashed - not n sorted inserts. */
void catalog_index_build(struct sl_catalog *c)
{
    if (c->n_streams > 1) {
        qsort(c->sorted, c->n_streams, sizeof(*c->sorted), name_cmp);
    }
    while (c->index_mask + 1 < c->n_streams) {
        index_grow(c); /* empty: cheap */
    }
    c->streams = NULL;
    c->n_shards = 0;
    for (uint32_t i = c->n_streams; i-- > 0;) {
        struct sl_stream *st = c->sorted[i];
        st->next = c->streams;
        c->streams = st;
        st->name_hash = name_hash(st->name);
        struct sl_stream **b = bucket_of(c, st->name_hash);
        st->hnext = *b;
        *b = st;
        c->n_shards += catalog_live_shards(st);
    }
}

struct sl_stream *catalog_lookup(struct sl_catalog *c, const char *name)
{
    uint64_t h = name_hash(name);
    for (struct sl_stream *st = *bucket_of(c, h); st != NULL; st = st->hnext) {
        if (st->name_hash == h && strcmp(st->name, name) == 0) {
            return st;
        }
    }
    return NULL;
}
