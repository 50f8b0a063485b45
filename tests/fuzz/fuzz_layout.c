/* fuzz_layout.c - libsluice's routing table (client/layout.c) built from a stream's
 * description, whose ranges and closed flags come from the broker, so are not trusted; and
 * the records of a batch read back for re-partitioning (sl_layout_batch_each).
 *
 * Input: byte 0 = n (shards, 0..63), then n entries of 19 bytes (start u64 LE, end u64 LE,
 * flags: bit 0 closed, bit 1 draining; id u16 LE), then one batch for sl_layout_batch_each.
 * Checks: a table is either refused (SL_EPROTO with a reason) or its open ranges partition
 * [0, 2^64 - 1]: every hash probed (the range ends, their neighbours, the input's bytes)
 * routes to a range holding it, and routing behind the draining entries returns a draining
 * shard holding the hash or the open one; a refused build leaves the table in use as it
 * was; a batch walk never leaves the batch or its scratch and yields what the header counts.
 */
#include "client/layout.h"
#include "common/assert.h"
#include "common/compress.h"
#include "common/error.h"

#include <stdlib.h>
#include <string.h>

#define SHARDS_MAX 64u
#define ENTRY_BYTES 19u

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct sl_zctx *g_z;
static struct sl_layout g_prev; /* a table in use: a refused build must not touch it */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    g_z = sl_zctx_new();
    struct sluice_shard_info one = {.shard = 0, .hash_start = 0, .hash_end = UINT64_MAX};
    char why[SL_LAYOUT_WHY_MAX];
    SL_ASSERT(g_z != NULL && sl_layout_build(&g_prev, &one, 1, why) == SL_OK);
    return 0;
}

static uint64_t le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) {
        v = v << 8 | p[i];
    }
    return v;
}

static void probe(const struct sl_layout *l, const struct sl_layout_range *d, uint32_t nd,
                  uint64_t h)
{
    uint32_t s = sl_layout_route(l, h);
    int found = 0;
    for (uint32_t i = 0; i < l->open_len; i++) {
        found |= l->open[i].shard == s && l->open[i].start <= h && h <= l->open[i].end;
    }
    SL_ASSERT(found);
    uint32_t t = sl_layout_route_draining(l, d, nd, h, 0);
    int ok = t == s;
    for (uint32_t i = 0; i < nd && !ok; i++) {
        ok = d[i].shard == t && d[i].start <= h && h <= d[i].end;
    }
    SL_ASSERT(ok);
}

struct walk {
    uint32_t n;
    uint64_t sum;
};

static int on_record(void *ctx, uint32_t index, const struct sl_record *rec)
{
    struct walk *w = ctx;
    SL_ASSERT(index == w->n);
    w->n++;
    /* touch every byte handed out: ASan reports a view outside its buffer */
    const uint8_t *k = rec->key, *v = rec->value;
    for (uint32_t i = 0; i < rec->key_len; i++) {
        w->sum += k[i];
    }
    for (uint32_t i = 0; i < rec->value_len; i++) {
        w->sum += v[i];
    }
    for (uint32_t a = 0; a < rec->attr_count; a++) {
        w->sum += (uint8_t)rec->attrs[a].key[0] * (rec->attrs[a].key_len > 0);
        w->sum += rec->attrs[a].value_len > 0 ? (uint8_t)rec->attrs[a].value[rec->attrs[a].value_len - 1] : 0;
    }
    return SL_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    uint32_t n = data[0] % SHARDS_MAX;
    if (size < 1 + (size_t)n * ENTRY_BYTES) {
        return 0;
    }
    struct sluice_shard_info s[SHARDS_MAX];
    struct sl_layout_range d[SHARDS_MAX];
    uint32_t nd = 0;
    memset(s, 0, sizeof(s));
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *e = data + 1 + (size_t)i * ENTRY_BYTES;
        s[i].hash_start = le64(e);
        s[i].hash_end = le64(e + 8);
        s[i].closed = e[16] & 1;
        s[i].shard = (uint32_t)(e[17] | e[18] << 8);
        if ((e[16] & 2) && (nd == 0 || d[nd - 1].shard < s[i].shard)) {
            d[nd++] = (struct sl_layout_range){s[i].hash_start, s[i].hash_end, s[i].shard};
        }
    }
    struct sl_layout l = {0};
    char why[SL_LAYOUT_WHY_MAX];
    why[0] = '\0';
    int rc = sl_layout_build(&l, s, n, why);
    if (rc != SL_OK) {
        SL_ASSERT(rc == SL_EPROTO && why[0] != '\0');
        struct sl_layout_range *before = g_prev.open;
        SL_ASSERT(sl_layout_build(&g_prev, s, n, why) == SL_EPROTO);
        SL_ASSERT(g_prev.open == before && g_prev.open_len == 1);
    } else {
        SL_ASSERT(l.open_len >= 1 && l.open[0].start == 0 &&
                  l.open[l.open_len - 1].end == UINT64_MAX);
        for (uint32_t i = 0; i < l.open_len; i++) {
            uint64_t a = l.open[i].start, b = l.open[i].end;
            probe(&l, d, nd, a);
            probe(&l, d, nd, b);
            probe(&l, d, nd, a - 1);
            probe(&l, d, nd, b + 1);
        }
        for (size_t i = 0; i + 8 <= size; i += 8) {
            probe(&l, d, nd, le64(data + i));
        }
        sl_layout_fini(&l);
    }
    /* the rest: one batch */
    size_t off = 1 + (size_t)n * ENTRY_BYTES;
    struct walk w = {0};
    rc = sl_layout_batch_each(data + off, size - off, g_z, on_record, &w);
    SL_ASSERT(rc == SL_OK || rc == SL_ECORRUPT || rc == SL_ENOMEM);
    if (rc == SL_OK) {
        struct sl_batch_header h;
        SL_ASSERT(sl_batch_validate(data + off, size - off, SL_BATCH_BYTES_MAX, &h) == SL_OK);
        SL_ASSERT(w.n == h.record_count);
    }
    return 0;
}
