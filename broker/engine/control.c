/* control.c - checkpoints and queue-state changes as control records (see control.h). */
#include "broker/engine/control.h"

#include "common/assert.h"
#include "common/bytes.h"
#include "common/error.h"

#include <string.h>

#define KEY_LEN ((uint32_t)(sizeof(SL_CONTROL_CKPT_KEY) - 1u))

int sl_control_ckpt_batch(const struct sl_control_ckpt *c, uint8_t *buf, size_t cap, size_t *len)
{
    SL_ASSERT(cap >= SL_CONTROL_CKPT_BATCH_MAX);
    size_t glen = strnlen(c->group, sizeof(c->group));
    if (glen == 0 || glen > SL_CKPT_GROUP_NAME_MAX) {
        return SL_EINVAL;
    }
    uint8_t value[SL_CONTROL_CKPT_FIXED + SL_CKPT_GROUP_NAME_MAX];
    sl_put_u32(value, c->shard);
    sl_put_u64(value + 4, c->seq);
    memcpy(value + SL_CONTROL_CKPT_FIXED, c->group, glen);
    struct sl_record rec = {.key = SL_CONTROL_CKPT_KEY,
                            .key_len = KEY_LEN,
                            .value = value,
                            .value_len = (uint32_t)(SL_CONTROL_CKPT_FIXED + glen),
                            .timestamp_ms = c->updated_ms};
    struct sl_batch_builder b;
    sl_batch_builder_init(&b, buf, cap);
    int rc = sl_batch_builder_add(&b, &rec);
    if (rc == SL_OK) {
        rc = sl_batch_builder_finish(&b, SL_BATCH_CODEC_NONE, 0, NULL, NULL, 0, 0, 0, len);
    }
    SL_ASSERT(rc == SL_OK); /* sized for the largest: nothing else can fail */
    sl_batch_mark_control(buf, *len);
    return SL_OK;
}

/* One record as a checkpoint: 1 decoded, 0 another kind (skipped), -1 malformed. */
static int decode(const struct sl_record_view *rv, struct sl_control_ckpt *out)
{
    if (rv->key_len != KEY_LEN || memcmp(rv->key, SL_CONTROL_CKPT_KEY, KEY_LEN) != 0) {
        return 0;
    }
    if (rv->value_len <= SL_CONTROL_CKPT_FIXED ||
        rv->value_len > SL_CONTROL_CKPT_FIXED + SL_CKPT_GROUP_NAME_MAX || rv->attr_count != 0) {
        return -1;
    }
    uint32_t glen = rv->value_len - SL_CONTROL_CKPT_FIXED;
    const uint8_t *g = rv->value + SL_CONTROL_CKPT_FIXED;
    if (memchr(g, '\0', glen) != NULL) {
        return -1;
    }
    out->shard = sl_get_u32(rv->value);
    out->seq = sl_get_u64(rv->value + 4);
    out->updated_ms = rv->timestamp_ms;
    memcpy(out->group, g, glen);
    out->group[glen] = '\0';
    return 1;
}

/* Iterates the batch's records, decoding each with `dec` (1 decoded into `out`, 0 another
 * kind, -1 malformed) and passing what decoded to `fn`; fn NULL: checks only. */
typedef int (*decode_fn)(const struct sl_record_view *rv, void *out);
typedef void (*apply_fn)(void *ctx, const void *decoded);

static int walk(const uint8_t *batch, const struct sl_batch_header *h, decode_fn dec, void *out,
                apply_fn fn, void *ctx)
{
    struct sl_batch_iter it;
    int rc = sl_batch_iter_init_all(&it, batch, h, NULL, NULL, 0);
    struct sl_record_view rv;
    while (rc == SL_OK && (rc = sl_batch_iter_next(&it, &rv)) == SL_OK) {
        int d = dec(&rv, out);
        if (d < 0) {
            return SL_ECORRUPT;
        }
        if (d > 0 && fn != NULL) {
            fn(ctx, out);
        }
    }
    return rc == SL_ENOTFOUND ? SL_OK : SL_ECORRUPT;
}

/* Checks the whole batch, then applies it: a batch that fails a check applies nothing. */
static int each(const uint8_t *batch, const struct sl_batch_header *h, decode_fn dec, void *out,
                apply_fn fn, void *ctx)
{
    if (!h->control) {
        return SL_EINVAL;
    }
    if (h->codec != SL_BATCH_CODEC_NONE) {
        return SL_ECORRUPT; /* never written compressed: no decompression of a peer's bytes */
    }
    int rc = walk(batch, h, dec, out, NULL, NULL);
    return rc == SL_OK ? walk(batch, h, dec, out, fn, ctx) : rc;
}

struct ckpt_apply {
    sl_control_ckpt_fn fn;
    void *ctx;
};

static int decode_ckpt(const struct sl_record_view *rv, void *out)
{
    return decode(rv, out);
}

static void apply_ckpt(void *ctx, const void *decoded)
{
    const struct ckpt_apply *a = ctx;
    a->fn(a->ctx, decoded);
}

int sl_control_each_ckpt(const uint8_t *batch, const struct sl_batch_header *h,
                         sl_control_ckpt_fn fn, void *ctx)
{
    struct sl_control_ckpt c;
    struct ckpt_apply a = {.fn = fn, .ctx = ctx};
    return each(batch, h, decode_ckpt, &c, fn != NULL ? apply_ckpt : NULL, &a);
}

/* ---- queue-group state ----------------------------------------------------------------- */

struct qkey {
    const char *key;
    enum sl_control_qkind kind;
    uint32_t fixed; /* bytes before the group name (CREATE: before the names) */
};

static const struct qkey QKEYS[] = {
    {"q.ack", SL_CONTROL_Q_ACK, 20u},
    {"q.count", SL_CONTROL_Q_COUNT, 16u},
    {"q.counters", SL_CONTROL_Q_COUNTERS, 16u},
    {"q.delete", SL_CONTROL_Q_DELETE, 0u},
    {"q.create", SL_CONTROL_Q_CREATE, SL_CONTROL_Q_CREATE_FIXED},
};
#define QKEYS_N (sizeof(QKEYS) / sizeof(QKEYS[0]))

static const struct qkey *qkey_of(enum sl_control_qkind kind)
{
    for (size_t i = 0; i < QKEYS_N; i++) {
        if (QKEYS[i].kind == kind) {
            return &QKEYS[i];
        }
    }
    return NULL;
}

static bool name_ok(const char *s, size_t len, bool empty_ok)
{
    return (empty_ok || len > 0) && len <= SL_QSTATE_NAME_MAX && memchr(s, '\0', len) == NULL;
}

int sl_control_qop_record(const struct sl_control_qop *op, uint64_t now_ms, uint8_t *value,
                          struct sl_record *rec)
{
    const struct qkey *k = qkey_of(op->kind);
    SL_ASSERT(k != NULL);
    const char *group = op->kind == SL_CONTROL_Q_CREATE ? op->def.name : op->group;
    size_t glen = strnlen(group, SL_QSTATE_NAME_MAX + 1);
    if (!name_ok(group, glen, false)) {
        return SL_EINVAL;
    }
    uint8_t *p = value;
    switch (op->kind) {
    case SL_CONTROL_Q_ACK:
        sl_put_u32(p, op->shard);
        sl_put_u64(p + 4, op->a);
        sl_put_u64(p + 12, op->b);
        break;
    case SL_CONTROL_Q_COUNT:
        sl_put_u32(p, op->shard);
        sl_put_u64(p + 4, op->a);
        sl_put_u32(p + 12, (uint32_t)op->b);
        break;
    case SL_CONTROL_Q_COUNTERS:
        sl_put_u64(p, op->a);
        sl_put_u64(p + 8, op->b);
        break;
    case SL_CONTROL_Q_DELETE:
        break;
    case SL_CONTROL_Q_CREATE: {
        const struct sl_qgroup_def *d = &op->def;
        size_t dlen = strnlen(d->dead_letter_stream, SL_QSTATE_NAME_MAX + 1);
        size_t flen = d->filter != NULL ? strnlen(d->filter, SL_QSTATE_FILTER_MAX + 1) : 0;
        if (!name_ok(d->dead_letter_stream, dlen, true) || flen > SL_QSTATE_FILTER_MAX ||
            op->shard_count == 0 || op->shard_count > SL_QSTATE_SHARDS_MAX ||
            d->start_kind > 0xffu) {
            return SL_EINVAL;
        }
        sl_put_u32(p, op->shard_count);
        sl_put_u32(p + 4, d->visibility_timeout_ms);
        sl_put_u32(p + 8, d->max_deliveries);
        sl_put_u32(p + 12, d->max_inflight);
        p[16] = (uint8_t)((d->ordered ? 1u : 0u) | (d->filter_body ? 2u : 0u));
        p[17] = (uint8_t)d->start_kind;
        sl_put_u64(p + 18, d->start_seq);
        sl_put_u64(p + 26, d->start_time_ms);
        sl_put_u64(p + 34, d->created_ms);
        sl_put_u64(p + 42, d->end_time_ms);
        sl_put_u16(p + 50, (uint16_t)glen);
        sl_put_u16(p + 52, (uint16_t)dlen);
        sl_put_u32(p + 54, (uint32_t)flen);
        uint8_t *q = p + SL_CONTROL_Q_CREATE_FIXED;
        memcpy(q, group, glen);
        memcpy(q + glen, d->dead_letter_stream, dlen);
        if (flen > 0) {
            memcpy(q + glen + dlen, d->filter, flen);
        }
        q += glen + dlen + flen;
        for (uint32_t i = 0; i < op->shard_count; i++) {
            sl_put_u64(q + 8u * i, op->floors[i]);
        }
        *rec = (struct sl_record){.key = k->key,
                                  .key_len = (uint32_t)strlen(k->key),
                                  .value = value,
                                  .value_len = (uint32_t)(q + 8u * op->shard_count - value),
                                  .timestamp_ms = now_ms};
        SL_ASSERT(rec->value_len <= SL_CONTROL_Q_VALUE_MAX);
        return SL_OK;
    }
    }
    memcpy(p + k->fixed, group, glen);
    *rec = (struct sl_record){.key = k->key,
                              .key_len = (uint32_t)strlen(k->key),
                              .value = value,
                              .value_len = (uint32_t)(k->fixed + glen),
                              .timestamp_ms = now_ms};
    return SL_OK;
}

static int decode_create(const struct sl_record_view *rv, struct sl_control_qop *out)
{
    const uint8_t *p = rv->value;
    uint32_t n = sl_get_u32(p);
    uint32_t glen = sl_get_u16(p + 50), dlen = sl_get_u16(p + 52), flen = sl_get_u32(p + 54);
    if (n == 0 || n > SL_QSTATE_SHARDS_MAX || flen > SL_QSTATE_FILTER_MAX ||
        (uint64_t)SL_CONTROL_Q_CREATE_FIXED + glen + dlen + flen + 8ull * n != rv->value_len) {
        return -1;
    }
    const char *name = (const char *)p + SL_CONTROL_Q_CREATE_FIXED;
    const char *dlq = name + glen;
    const char *filter = dlq + dlen;
    if (!name_ok(name, glen, false) || !name_ok(dlq, dlen, true) ||
        memchr(filter, '\0', flen) != NULL || (p[16] & ~3u) != 0) {
        return -1;
    }
    struct sl_qgroup_def *d = &out->def;
    memset(d, 0, sizeof(*d));
    memcpy(d->name, name, glen);
    memcpy(out->group, name, glen);
    out->group[glen] = '\0';
    memcpy(d->dead_letter_stream, dlq, dlen);
    memcpy(out->filter, filter, flen);
    out->filter[flen] = '\0';
    d->filter = flen > 0 ? out->filter : NULL;
    d->visibility_timeout_ms = sl_get_u32(p + 4);
    d->max_deliveries = sl_get_u32(p + 8);
    d->max_inflight = sl_get_u32(p + 12);
    d->ordered = (p[16] & 1u) != 0;
    d->filter_body = (p[16] & 2u) != 0;
    d->start_kind = p[17];
    d->start_seq = sl_get_u64(p + 18);
    d->start_time_ms = sl_get_u64(p + 26);
    d->created_ms = sl_get_u64(p + 34);
    d->end_time_ms = sl_get_u64(p + 42);
    out->shard_count = n;
    out->floors = NULL;
    out->floors_be = (const uint8_t *)filter + flen;
    return 1;
}

/* One record as a queue-state change: 1 decoded, 0 another kind, -1 malformed. */
static int decode_qop(const struct sl_record_view *rv, void *outp)
{
    struct sl_control_qop *out = outp;
    const struct qkey *k = NULL;
    for (size_t i = 0; i < QKEYS_N && k == NULL; i++) {
        size_t kl = strlen(QKEYS[i].key);
        if (rv->key_len == kl && memcmp(rv->key, QKEYS[i].key, kl) == 0) {
            k = &QKEYS[i];
        }
    }
    if (k == NULL) {
        return 0;
    }
    if (rv->attr_count != 0 || rv->value_len < k->fixed) {
        return -1;
    }
    out->kind = k->kind;
    out->shard = 0;
    out->a = out->b = 0;
    if (k->kind == SL_CONTROL_Q_CREATE) {
        return decode_create(rv, out);
    }
    uint32_t glen = rv->value_len - k->fixed;
    const char *g = (const char *)rv->value + k->fixed;
    if (!name_ok(g, glen, false)) {
        return -1;
    }
    memcpy(out->group, g, glen);
    out->group[glen] = '\0';
    const uint8_t *p = rv->value;
    switch (k->kind) {
    case SL_CONTROL_Q_ACK:
        out->shard = sl_get_u32(p);
        out->a = sl_get_u64(p + 4);
        out->b = sl_get_u64(p + 12);
        return out->a < out->b ? 1 : -1;
    case SL_CONTROL_Q_COUNT:
        out->shard = sl_get_u32(p);
        out->a = sl_get_u64(p + 4);
        out->b = sl_get_u32(p + 12);
        return 1;
    case SL_CONTROL_Q_COUNTERS:
        out->a = sl_get_u64(p);
        out->b = sl_get_u64(p + 8);
        return 1;
    default:
        return 1;
    }
}

struct qop_apply {
    sl_control_qop_fn fn;
    void *ctx;
};

static void apply_qop(void *ctx, const void *decoded)
{
    const struct qop_apply *a = ctx;
    a->fn(a->ctx, decoded);
}

int sl_control_each_qop(const uint8_t *batch, const struct sl_batch_header *h,
                        struct sl_control_qop *scratch, sl_control_qop_fn fn, void *ctx)
{
    struct qop_apply a = {.fn = fn, .ctx = ctx};
    return each(batch, h, decode_qop, scratch, fn != NULL ? apply_qop : NULL, &a);
}
