/* catalog_settings.c - a stream's settings changed after its creation: properties (tags,
 * the APIs' attributes) and retention, each one durable replace of stream.meta before the
 * change shows in memory. The main loop only. */
#include "broker/engine/catalog_int.h"

#include "broker/engine/workers.h"
#include "common/assert.h"
#include "common/error.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *sl_catalog_prop(const struct sl_stream *st, const char *key)
{
    struct sl_stream_prop k = {.key = (char *)key};
    const struct sl_stream_prop *p =
        st->n_props > 0 ? bsearch(&k, st->props, st->n_props, sizeof(k), catalog_prop_cmp) : NULL;
    return p != NULL ? p->value : NULL;
}

static bool prop_key_ok(const char *k)
{
    size_t n = strlen(k);
    for (size_t i = 0; i < n; i++) {
        if (k[i] <= ' ' || k[i] > '~' || k[i] == '=') {
            return false;
        }
    }
    return n > 0 && n <= SL_STREAM_PROP_KEY_MAX;
}

/* The stream's properties with the changes applied, sorted (returns owned). */
static int props_merged(const struct sl_stream *st, const char *const *keys,
                        const char *const *values, uint32_t n, struct sl_stream_prop **out,
                        uint32_t *out_n)
{
    uint32_t cap = st->n_props + n, m = 0;
    struct sl_stream_prop *p = calloc(cap + 1, sizeof(*p));
    if (p == NULL) {
        return SL_ENOMEM;
    }
    for (uint32_t i = 0; i < st->n_props; i++) {
        p[m].key = strdup(st->props[i].key);
        p[m].value = strdup(st->props[i].value);
        m++;
    }
    for (uint32_t i = 0; i < n; i++) {
        uint32_t j = 0;
        while (j < m && strcmp(p[j].key, keys[i]) != 0) {
            j++;
        }
        if (j == m) {
            p[m].key = strdup(keys[i]);
            p[m].value = NULL;
            m++;
        }
        free(p[j].value);
        p[j].value = values[i] != NULL ? strdup(values[i]) : NULL;
    }
    uint32_t k = 0; /* drop the removed ones */
    for (uint32_t i = 0; i < m; i++) {
        if (p[i].value != NULL) {
            p[k++] = p[i];
        } else {
            free(p[i].key);
        }
    }
    for (uint32_t i = 0; i < k; i++) {
        if (p[i].key == NULL) {
            catalog_props_free(p, k);
            return SL_ENOMEM;
        }
    }
    if (k > 1) {
        qsort(p, k, sizeof(*p), catalog_prop_cmp);
    }
    *out = p;
    *out_n = k;
    return SL_OK;
}

int sl_catalog_set_props(struct sl_catalog *c, struct sl_stream *st, const char *const *keys,
                         const char *const *values, uint32_t n, char *why, size_t why_len)
{
    (void)c;
    if (sl_stream_replicated(st)) {
        /* kept in each broker's stream.meta: set on one broker, the others would differ */
        snprintf(why, why_len, SL_STREAM_REPLICATED_WHY("changing its properties (tags, "
                                                         "registered consumers, stream mode)"));
        return SL_EUNSUPPORTED;
    }
    for (uint32_t i = 0; i < n; i++) {
        if (!prop_key_ok(keys[i])) {
            snprintf(why, why_len, "property names are 1-%u printable characters without '='",
                     SL_STREAM_PROP_KEY_MAX);
            return SL_EINVAL;
        }
        if (values[i] != NULL && strlen(values[i]) > SL_STREAM_PROP_VALUE_MAX) {
            snprintf(why, why_len, "property %s: values are at most %u bytes", keys[i],
                     SL_STREAM_PROP_VALUE_MAX);
            return SL_EINVAL;
        }
    }
    struct sl_stream_prop *p = NULL;
    uint32_t m = 0;
    int rc = props_merged(st, keys, values, n, &p, &m);
    if (rc == SL_OK && m > SL_STREAM_PROPS_MAX) {
        catalog_props_free(p, m);
        snprintf(why, why_len, "a stream holds at most %u properties (tags, attributes)",
                 SL_STREAM_PROPS_MAX);
        return SL_ELIMIT;
    }
    if (rc != SL_OK) {
        snprintf(why, why_len, "%s", sl_strerror(rc));
        return rc;
    }
    struct sl_stream_prop *old = st->props;
    uint32_t old_n = st->n_props;
    st->props = p;
    st->n_props = m;
    rc = catalog_meta_write(st, &st->lineage);
    if (rc != SL_OK) { /* not durable: the old set stands */
        st->props = old;
        st->n_props = old_n;
        catalog_props_free(p, m);
        snprintf(why, why_len, "cannot write %s/stream.meta: %s", st->name, sl_strerror(rc));
        return rc;
    }
    catalog_props_free(old, old_n);
    return SL_OK;
}

int sl_catalog_set_retention(struct sl_catalog *c, struct sl_stream *st, uint32_t hours, char *why,
                             size_t why_len)
{
    (void)c;
    if (sl_stream_replicated(st)) {
        /* set at creation in /streams/<name>, which every broker's copy follows */
        snprintf(why, why_len, SL_STREAM_REPLICATED_WHY("changing its retention"));
        return SL_EUNSUPPORTED;
    }
    if (hours == 0 || hours > 8760) {
        snprintf(why, why_len, "retention must be 1-8760 hours (365 days)");
        return SL_EINVAL;
    }
    uint32_t old = st->retention_hours;
    st->retention_hours = hours;
    int rc = catalog_meta_write(st, &st->lineage);
    if (rc != SL_OK) {
        st->retention_hours = old;
        snprintf(why, why_len, "cannot write %s/stream.meta: %s", st->name, sl_strerror(rc));
        return rc;
    }
    for (uint32_t i = 0; i < st->shard_count; i++) {
        sl_wshard_set_retention(&st->shards[i]->ws, (uint64_t)hours * 3600 * 1000,
                                st->retention_bytes);
    }
    return SL_OK;
}
