/* control.c - checkpoints as control records (see control.h). */
#include "broker/engine/control.h"

#include "common/assert.h"
#include "common/bytes.h"
#include "common/error.h"

#include <string.h>

#define KEY_LEN ((uint32_t)(sizeof(SL_CONTROL_CKPT_KEY) - 1u))

int sl_control_ckpt_batch(const struct sl_control_ckpt *c, uint8_t *buf, size_t cap,
                          size_t *len)
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
    struct sl_record rec = {.key = SL_CONTROL_CKPT_KEY, .key_len = KEY_LEN, .value = value,
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

/* Iterates the batch's records; fn NULL: checks only. */
static int walk(const uint8_t *batch, const struct sl_batch_header *h, sl_control_ckpt_fn fn,
                void *ctx)
{
    struct sl_batch_iter it;
    int rc = sl_batch_iter_init_all(&it, batch, h, NULL, NULL, 0);
    struct sl_record_view rv;
    while (rc == SL_OK && (rc = sl_batch_iter_next(&it, &rv)) == SL_OK) {
        struct sl_control_ckpt c;
        int d = decode(&rv, &c);
        if (d < 0) {
            return SL_ECORRUPT;
        }
        if (d > 0 && fn != NULL) {
            fn(ctx, &c);
        }
    }
    return rc == SL_ENOTFOUND ? SL_OK : SL_ECORRUPT;
}

int sl_control_each_ckpt(const uint8_t *batch, const struct sl_batch_header *h,
                         sl_control_ckpt_fn fn, void *ctx)
{
    if (!h->control) {
        return SL_EINVAL;
    }
    if (h->codec != SL_BATCH_CODEC_NONE) {
        return SL_ECORRUPT; /* never written compressed: no decompression of a peer's bytes */
    }
    int rc = walk(batch, h, NULL, NULL);
    return rc == SL_OK ? walk(batch, h, fn, ctx) : rc;
}
