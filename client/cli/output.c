/* output.c - broker errors, JSON and time text for every command (output.h).
 *
 * Data goes to stdout, status and errors to stderr, so `sluice ... | tool` pipes only data.
 */
#include "client/cli/output.h"

#include "client/cli/cli.h"
#include "common/isotime.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CLI_ATTR_KEY_MAX 160u /* longest attribute name printed (the broker's limit is lower) */

int cli_broker_error(const char *what, int rc)
{
    const char *msg = sluice_last_error();
    fprintf(stderr, "sluice: %s: %s (%s)\n", what, msg[0] != '\0' ? msg : sluice_strerror(rc),
            sl_errname(rc));
    return CLI_EXIT_ERR;
}

void cli_print_json(json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT);
    if (s != NULL) {
        fputs(s, stdout);
        fputc('\n', stdout);
        free(s);
    }
}

static void b64(const uint8_t *p, size_t n, char *out)
{
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
                     (i + 2 < n ? p[i + 2] : 0);
        out[o++] = t[v >> 18 & 63];
        out[o++] = t[v >> 12 & 63];
        out[o++] = i + 1 < n ? t[v >> 6 & 63] : '=';
        out[o++] = i + 2 < n ? t[v & 63] : '=';
    }
    out[o] = '\0';
}

void cli_json_set_bytes(json_t *obj, const char *name, const uint8_t *p, size_t n)
{
    json_t *s = json_stringn((const char *)p, n);
    if (s != NULL) {
        json_object_set_new(obj, name, s);
        return;
    }
    char *enc = malloc(4 * (n / 3 + 1) + 1);
    char key[64];
    if (enc != NULL) {
        b64(p, n, enc);
        snprintf(key, sizeof(key), "%s_base64", name);
        json_object_set_new(obj, key, json_string(enc));
        free(enc);
    }
}

json_t *cli_json_attrs(const struct sluice_attr *attrs, uint32_t count)
{
    json_t *o = json_object();
    for (uint32_t i = 0; i < count && o != NULL; i++) {
        char k[CLI_ATTR_KEY_MAX];
        snprintf(k, sizeof(k), "%.*s", (int)attrs[i].key_len, attrs[i].key);
        json_t *v = json_stringn(attrs[i].value, attrs[i].value_len);
        json_object_set_new(o, k, v != NULL ? v : json_null());
    }
    return o;
}

const char *cli_fmt_time(uint64_t ms, char *buf, size_t cap)
{
    char t[SL_ISOTIME_FORMAT_MAX];
    sl_time_format_iso8601(ms, true, t);
    snprintf(buf, cap, "%s", t);
    return buf;
}

const char *cli_fmt_position(const struct sluice_position *p, char *buf, size_t cap)
{
    char t[40];
    switch (p->kind) {
    case SLUICE_TRIM_HORIZON:
        return "oldest";
    case SLUICE_LATEST:
        return "latest";
    case SLUICE_AT_TIMESTAMP:
        snprintf(buf, cap, "time:%s", cli_fmt_time(p->time_ms, t, sizeof(t)));
        return buf;
    case SLUICE_AT_SEQUENCE:
        snprintf(buf, cap, "seq:%" PRIu64, p->seq);
        return buf;
    case SLUICE_AFTER_SEQUENCE:
        snprintf(buf, cap, "after:%" PRIu64, p->seq);
        return buf;
    }
    return "?";
}
