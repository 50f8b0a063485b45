/* stream_settings.c - a cluster stream's settings node (stream_settings.h). */
#include "broker/cluster/stream_settings.h"

#include "broker/cluster/repl.h"
#include "common/assert.h"
#include "common/error.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

size_t sl_cstream_encode(const struct sl_cstream_settings *s, char *buf, size_t cap)
{
    SL_ASSERT(cap >= SL_CSTREAM_SETTINGS_MAX);
    SL_ASSERT(strcmp(s->compression, "none") == 0 || strcmp(s->compression, "zstd") == 0);
    int n = snprintf(buf, cap,
                     "shards=%" PRIu32 " retention_hours=%" PRIu32 " retention_bytes=%" PRIu64
                     " compression=%s rf=%" PRIu32,
                     s->shard_count, s->retention_hours, s->retention_bytes, s->compression,
                     s->rf);
    SL_ASSERT(n > 0 && (size_t)n < cap);
    return (size_t)n;
}

/* One "name=<decimal>" field and the space after it (none after the last). */
static const char *field_u64(const char *p, const char *end, const char *name, uint64_t max,
                             uint64_t *out)
{
    size_t nl = strlen(name);
    if ((size_t)(end - p) < nl + 2 || memcmp(p, name, nl) != 0 || p[nl] != '=') {
        return NULL;
    }
    p += nl + 1;
    uint64_t v = 0;
    const char *start = p;
    while (p < end && *p >= '0' && *p <= '9') {
        uint64_t digit = (uint64_t)(*p - '0');
        if (v > max / 10 || (v == max / 10 && digit > max % 10)) {
            return NULL; /* v * 10 + digit would pass max */
        }
        v = v * 10 + digit;
        p++;
    }
    if (p == start || p - start > 20 || (start[0] == '0' && p - start > 1)) {
        return NULL;
    }
    *out = v;
    return p;
}

static const char *space(const char *p, const char *end)
{
    return p != NULL && p < end && *p == ' ' ? p + 1 : NULL;
}

int sl_cstream_decode(const uint8_t *data, size_t len, struct sl_cstream_settings *s)
{
    if (len == 0 || len >= SL_CSTREAM_SETTINGS_MAX) {
        return SL_EPROTO;
    }
    const char *p = (const char *)data, *end = p + len;
    uint64_t shards = 0, hours = 0, bytes = 0, rf = 0;
    p = space(field_u64(p, end, "shards", SL_CSTREAM_SHARDS_MAX, &shards), end);
    p = p != NULL ? space(field_u64(p, end, "retention_hours", 8760, &hours), end) : NULL;
    p = p != NULL ? space(field_u64(p, end, "retention_bytes", UINT64_MAX, &bytes), end) : NULL;
    const char *comp = NULL;
    if (p != NULL && (size_t)(end - p) >= 17 && memcmp(p, "compression=none ", 17) == 0) {
        comp = "none";
    } else if (p != NULL && (size_t)(end - p) >= 17 && memcmp(p, "compression=zstd ", 17) == 0) {
        comp = "zstd";
    }
    p = comp != NULL ? p + 17 : NULL;
    p = p != NULL ? field_u64(p, end, "rf", SL_REPL_REPLICAS_MAX, &rf) : NULL;
    if (p != end || shards == 0 || rf == 0) {
        return SL_EPROTO;
    }
    *s = (struct sl_cstream_settings){.shard_count = (uint32_t)shards,
                                      .retention_hours = (uint32_t)hours,
                                      .retention_bytes = bytes, .rf = (uint32_t)rf};
    memcpy(s->compression, comp, 5);
    return SL_OK;
}
