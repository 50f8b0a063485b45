/* fuzz_meta.c - stream.meta's parser (broker/engine/catalog_meta.c): settings, properties
 * and the shard lineage of a resharded stream (#16), read from disk at every start.
 *
 * Input: the file's text without its last line; the harness appends a correct
 * "check=<XXH3>" line, so the fuzzer reaches the parser past the checksum (what a hand
 * edit, or a bug of ours that wrote a bad line with a good checksum, would give).
 * Checks beyond ASan/UBSan: the parse is SL_OK, SL_ECORRUPT or SL_ENOMEM; on SL_OK the
 * stream is sane (1..SL_LINEAGE_SHARDS_MAX ids, at most SL_STREAM_SHARDS_MAX open, a lineage
 * that passes sl_lineage_check, retention 1..8760 h, properties sorted) and what the broker
 * would write for it (catalog_meta_format) parses again to the same settings, lineage and
 * properties.
 */
#include "broker/engine/catalog_int.h"
#include "common/assert.h"
#include "common/checksum.h"
#include "common/error.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define INPUT_MAX (256u << 10)

static void stream_init(struct sl_stream *st)
{
    memset(st, 0, sizeof(*st));
    snprintf(st->name, sizeof(st->name), "s");
}

static void stream_fini(struct sl_stream *st)
{
    sl_lineage_fini(&st->lineage);
    catalog_props_free(st->props, st->n_props);
}

/* The text with a correct check line, NUL-free up to it (the parser stops at a NUL). */
static char *with_check(const uint8_t *data, size_t size, size_t *n)
{
    char *buf = malloc(size + 32);
    SL_ASSERT(buf != NULL);
    memcpy(buf, data, size);
    size_t len = size;
    if (len == 0 || buf[len - 1] != '\n') {
        buf[len++] = '\n';
    }
    len += (size_t)snprintf(buf + len, 32, "check=%016" PRIx64 "\n", sl_checksum64(buf, len));
    *n = len;
    return buf;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > INPUT_MAX) {
        return 0;
    }
    size_t n = 0;
    char *buf = with_check(data, size, &n);
    struct sl_stream st;
    stream_init(&st);
    int rc = catalog_meta_parse(&st, buf, n);
    free(buf);
    if (rc != SL_OK) {
        SL_ASSERT(rc == SL_ECORRUPT || rc == SL_ENOMEM);
        stream_fini(&st);
        return 0;
    }
    char why[256];
    SL_ASSERT(st.shard_count >= 1 && st.shard_count <= SL_LINEAGE_SHARDS_MAX);
    SL_ASSERT(st.lineage.n == st.shard_count && st.lineage.open <= SL_STREAM_SHARDS_MAX);
    SL_ASSERT(sl_lineage_check(&st.lineage, why, sizeof(why)) == SL_OK);
    SL_ASSERT(st.retention_hours >= 1 && st.retention_hours <= 8760);
    for (uint32_t i = 1; i < st.n_props; i++) {
        SL_ASSERT(strcmp(st.props[i - 1].key, st.props[i].key) <= 0);
    }
    /* what the broker would write parses to the same stream */
    char *again = NULL;
    size_t alen = 0;
    if (catalog_meta_format(&st, &st.lineage, &again, &alen) == SL_OK) {
        char *copy = malloc(alen + 1);
        SL_ASSERT(copy != NULL);
        memcpy(copy, again, alen);
        free(again);
        struct sl_stream st2;
        stream_init(&st2);
        SL_ASSERT(catalog_meta_parse(&st2, copy, alen) == SL_OK);
        free(copy);
        SL_ASSERT(st2.shard_count == st.shard_count && st2.retention_hours == st.retention_hours &&
                  st2.retention_bytes == st.retention_bytes &&
                  strcmp(st2.compression, st.compression) == 0 &&
                  st2.created_ms == st.created_ms && st2.n_props == st.n_props &&
                  st2.cluster == st.cluster && st2.cluster_id == st.cluster_id);
        SL_ASSERT(st2.lineage.n == st.lineage.n && st2.lineage.open == st.lineage.open &&
                  st2.lineage.gone == st.lineage.gone);
        for (uint32_t i = 0; i < st.lineage.n && st.lineage.n != st.lineage.open; i++) {
            const struct sl_lineage_shard *a = &st.lineage.shard[i], *b = &st2.lineage.shard[i];
            SL_ASSERT(a->start == b->start && a->end == b->end && a->closed == b->closed &&
                      a->gone == b->gone && (!a->gone || a->end_seq == b->end_seq) &&
                      (!a->closed || a->closed_ms == b->closed_ms));
        }
        for (uint32_t i = 0; i < st.n_props; i++) {
            SL_ASSERT(strcmp(st.props[i].key, st2.props[i].key) == 0 &&
                      strcmp(st.props[i].value, st2.props[i].value) == 0);
        }
        stream_fini(&st2);
    }
    stream_fini(&st);
    return 0;
}
