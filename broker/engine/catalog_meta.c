/* catalog_meta.c - stream.meta's text (docs/FORMAT.md §5): a stream's settings, properties
 * and, once resharded, its shard lineage, made and parsed here with no I/O (catalog.c reads
 * and replaces the file), so the parser runs under the fuzzer (fuzz_meta) as in the broker.
 * The file is checksummed; a parse that fails on a file whose checksum held is a bug or a
 * hand edit, and is refused as damage (SL_ECORRUPT), never half applied.
 */
#include "broker/engine/catalog_int.h"

#include "common/assert.h"
#include "common/checksum.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Appends `v` with '%', CR and LF as %XX (a property value on one line). */
static size_t escape_into(char *out, size_t cap, const char *v)
{
    size_t n = 0;
    for (; *v != '\0' && n + 4 < cap; v++) {
        if (*v == '%' || *v == '\n' || *v == '\r') {
            n += (size_t)snprintf(out + n, cap - n, "%%%02X", (unsigned char)*v);
        } else {
            out[n++] = *v;
        }
    }
    out[n] = '\0';
    return n;
}

static void unescape(char *v)
{
    char *w = v;
    for (char *r = v; *r != '\0'; r++) {
        unsigned x;
        if (r[0] == '%' && r[1] != '\0' && r[2] != '\0' && sscanf(r + 1, "%2X", &x) == 1) {
            *w++ = (char)x;
            r += 2;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
}

int catalog_meta_format(const struct sl_stream *st, const struct sl_lineage *l, char **out,
                        size_t *len)
{
    SL_ASSERT(l->n >= st->shard_count); /* the stream's, or a reshard's with more ids */
    /* sized for this stream: the lineage's lines only once it was resharded */
    size_t cap = SL_STREAM_META_PROPS_BYTES +
                 (l->n != l->open ? (size_t)l->n * SL_STREAM_META_SHARD_LINE_MAX : 0);
    SL_ASSERT(cap <= SL_STREAM_META_BYTES_MAX);
    char *body = malloc(cap);
    if (body == NULL) {
        return SL_ENOMEM;
    }
    int n = snprintf(body, cap,
                     "name=%s\nshards=%u\nretention_hours=%u\nretention_bytes=%" PRIu64
                     "\ncompression=%s\ncreated_ms=%" PRIu64 "\n",
                     st->name, l->n, st->retention_hours, st->retention_bytes,
                     st->compression, st->created_ms);
    if (n > 0 && (size_t)n < cap && st->cluster) { /* (absent: a local stream, as before) */
        n += snprintf(body + n, cap - (size_t)n, "cluster=1\n");
        if (n > 0 && (size_t)n < cap && st->cluster_id != 0) {
            n += snprintf(body + n, cap - (size_t)n, "cluster_id=%" PRIx64 "\n", st->cluster_id);
        }
    }
    /* A resharded stream's lineage, a line per shard id ("-": none). */
    for (uint32_t i = 0; l->n != l->open && i < l->n; i++) {
        const struct sl_lineage_shard *ls = &l->shard[i];
        char id[4][12];
        const uint32_t v[4] = {ls->parent[0], ls->parent[1], ls->child[0], ls->child[1]};
        for (int k = 0; k < 4; k++) {
            snprintf(id[k], sizeof(id[k]), v[k] == SL_LINEAGE_NONE ? "-" : "%u", v[k]);
        }
        /* closed: 0 open, else when (ms; 1: a time never kept); a gone
         * shard adds its log's end */
        uint64_t closed = ls->closed ? (ls->closed_ms > 1 ? ls->closed_ms : 1) : 0;
        char gone[24] = "";
        if (ls->gone) {
            snprintf(gone, sizeof(gone), ",%" PRIu64, ls->end_seq);
        }
        int w = snprintf(body + n, SL_STREAM_META_SHARD_LINE_MAX,
                         "shard.%u=%016" PRIx64 ",%016" PRIx64 ",%s,%s,%s,%s,%" PRIu64 "%s\n", i,
                         ls->start, ls->end, id[0], id[1], id[2], id[3], closed, gone);
        SL_ASSERT(w > 0 && w < (int)SL_STREAM_META_SHARD_LINE_MAX);
        n += w;
    }
    for (uint32_t i = 0; i < st->n_props; i++) {
        n += snprintf(body + n, cap - (size_t)n, "prop.%s=", st->props[i].key);
        n += (int)escape_into(body + n, cap - (size_t)n, st->props[i].value);
        body[n++] = '\n';
    }
    /* bounds: SL_STREAM_PROPS_MAX x (key + 3 x value + 8) stays below the buffer */
    SL_ASSERT(n > 0 && (size_t)n < cap - 32);
    n += snprintf(body + n, cap - (size_t)n, "check=%016" PRIx64 "\n",
                  sl_checksum64(body, (size_t)n));
    *out = body;
    *len = (size_t)n;
    return SL_OK;
}

void catalog_props_free(struct sl_stream_prop *p, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        free(p[i].key);
        free(p[i].value);
    }
    free(p);
}

int catalog_prop_cmp(const void *a, const void *b)
{
    return strcmp(((const struct sl_stream_prop *)a)->key, ((const struct sl_stream_prop *)b)->key);
}

/* A "prop.<key>=<escaped value>" line into st->props (at load). */
static int meta_prop(struct sl_stream *st, char *line)
{
    char *eq = strchr(line, '=');
    /* within the bounds sl_catalog_set_props keeps, which size what catalog_meta_format
     * writes back */
    if (eq == NULL || st->n_props == SL_STREAM_PROPS_MAX || eq == line + 5 ||
        (size_t)(eq - line - 5) > SL_STREAM_PROP_KEY_MAX ||
        strlen(eq + 1) > 3u * SL_STREAM_PROP_VALUE_MAX) {
        return SL_ECORRUPT;
    }
    *eq = '\0';
    struct sl_stream_prop *p = realloc(st->props, (st->n_props + 1) * sizeof(*p));
    if (p == NULL) {
        return SL_ENOMEM;
    }
    st->props = p;
    p[st->n_props].key = strdup(line + 5);
    p[st->n_props].value = strdup(eq + 1);
    st->n_props++;
    if (p[st->n_props - 1].key == NULL || p[st->n_props - 1].value == NULL) {
        return SL_ENOMEM;
    }
    unescape(p[st->n_props - 1].value);
    return strlen(p[st->n_props - 1].value) <= SL_STREAM_PROP_VALUE_MAX ? SL_OK : SL_ECORRUPT;
}

/* One "shard.<id>=<start>,<end>,<parent>,<parent>,<child>,<child>,<closed>
 * [,<end_seq>]" line (hex ranges, decimal ids or "-", closed 0 or when,
 * end_seq when gone) into (*ls)[id]; ids must come in order, each once. The
 * checksum held, so a line that does not parse is a bug or a hand edit:
 * SL_ECORRUPT either way. */
static int meta_shard_line(const char *line, struct sl_lineage_shard **ls, uint32_t *n)
{
    unsigned id;
    unsigned long long start, end, closed, end_seq = 0;
    char f[4][12];
    int used = 0, used2 = 0;
    if (sscanf(line, "shard.%u=%llx,%llx,%11[0-9-],%11[0-9-],%11[0-9-],%11[0-9-],%llu%n", &id,
               &start, &end, f[0], f[1], f[2], f[3], &closed, &used) != 8 ||
        id != *n || id >= SL_LINEAGE_SHARDS_MAX) {
        return SL_ECORRUPT;
    }
    bool gone = line[used] == ',';
    if (gone && (sscanf(line + used, ",%llu%n", &end_seq, &used2) != 1 || closed == 0)) {
        return SL_ECORRUPT;
    }
    if (line[used + used2] != '\0') {
        return SL_ECORRUPT;
    }
    if (*ls == NULL && (*ls = calloc(SL_LINEAGE_SHARDS_MAX, sizeof(**ls))) == NULL) {
        return SL_ENOMEM;
    }
    uint32_t v[4];
    for (int k = 0; k < 4; k++) {
        char *endp = NULL;
        unsigned long x = strtoul(f[k], &endp, 10);
        if (strcmp(f[k], "-") == 0) {
            v[k] = SL_LINEAGE_NONE;
        } else if (f[k][0] == '\0' || *endp != '\0' || x >= SL_LINEAGE_SHARDS_MAX) {
            return SL_ECORRUPT;
        } else {
            v[k] = (uint32_t)x;
        }
    }
    (*ls)[id] = (struct sl_lineage_shard){.start = start, .end = end, .parent = {v[0], v[1]},
                                          .child = {v[2], v[3]}, .closed = closed != 0,
                                          .closed_ms = closed, .end_seq = end_seq, .gone = gone};
    (*n)++;
    return SL_OK;
}

int catalog_meta_parse(struct sl_stream *st, char *body, size_t n)
{
    body[n] = '\0';
    char *check = NULL; /* the last line's (a value cannot hold a newline) */
    for (char *p = strstr(body, "\ncheck="); p != NULL; p = strstr(p + 1, "\ncheck=")) {
        check = p + 1;
    }
    if (check == NULL) {
        return SL_ECORRUPT;
    }
    uint64_t want = strtoull(check + 6, NULL, 16);
    if (sl_checksum64(body, (size_t)(check - body)) != want) {
        return SL_ECORRUPT;
    }
    *check = '\0';
    unsigned shards = 0, hours = 0;
    unsigned long long bytes = 0, created = 0;
    bool cluster = false;
    uint64_t cluster_id = 0;
    char name[SL_STREAM_NAME_MAX + 1] = "", comp[8] = "";
    char *save = NULL;
    struct sl_lineage_shard *ls = NULL; /* a resharded stream's shard lines */
    uint32_t n_ls = 0;
    for (char *line = strtok_r(body, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "prop.", 5) == 0) {
            int rc = meta_prop(st, line);
            if (rc != SL_OK) {
                free(ls);
                return rc;
            }
            continue;
        }
        if (strncmp(line, "shard.", 6) == 0) {
            int rc = meta_shard_line(line, &ls, &n_ls);
            if (rc != SL_OK) {
                free(ls);
                return rc;
            }
            continue;
        }
        if (strncmp(line, "cluster=", 8) == 0) {
            if (strcmp(line, "cluster=1") != 0) {
                free(ls);
                return SL_ECORRUPT;
            }
            cluster = true;
            continue;
        }
        if (strncmp(line, "cluster_id=", 11) == 0) {
            char *end = NULL;
            cluster_id = strtoull(line + 11, &end, 16);
            if (end == line + 11 || *end != '\0') {
                free(ls);
                return SL_ECORRUPT;
            }
            continue;
        }
        sscanf(line, "name=%128s", name);
        sscanf(line, "shards=%u", &shards);
        sscanf(line, "retention_hours=%u", &hours);
        sscanf(line, "retention_bytes=%llu", &bytes);
        sscanf(line, "compression=%7s", comp);
        sscanf(line, "created_ms=%llu", &created);
    }
    if (strcmp(name, st->name) != 0 || shards == 0 || hours == 0 || hours > 8760 ||
        (n_ls == 0 && shards > SL_STREAM_SHARDS_MAX) || (n_ls != 0 && n_ls != shards)) {
        free(ls);
        return SL_ECORRUPT;
    }
    char why[160];
    int lrc = n_ls != 0 ? sl_lineage_restore(&st->lineage, ls, n_ls, why, sizeof(why))
                        : sl_lineage_init(&st->lineage, shards);
    free(ls);
    if (lrc != SL_OK) {
        if (lrc != SL_ENOMEM) {
            sl_error("catalog", "stream %s: the shard lineage in stream.meta is invalid: %s",
                     st->name, n_ls != 0 ? why : "bad shard count");
        }
        return lrc == SL_ENOMEM ? SL_ENOMEM : SL_ECORRUPT;
    }
    if (st->lineage.open > SL_STREAM_SHARDS_MAX) {
        sl_lineage_fini(&st->lineage);
        return SL_ECORRUPT;
    }
    uint64_t now = sl_clock_wall_ms();
    for (uint32_t i = 0; i < st->lineage.n; i++) {
        if (st->lineage.shard[i].closed && st->lineage.shard[i].closed_ms <= 1) {
            st->lineage.shard[i].closed_ms = now; /* closed when no time was kept */
        }
    }
    st->shard_count = shards;
    st->retention_hours = hours;
    st->retention_bytes = bytes;
    snprintf(st->compression, sizeof(st->compression), "%s", comp);
    st->created_ms = created;
    st->cluster = cluster;
    st->cluster_id = cluster ? cluster_id : 0;
    if (st->n_props > 1) { /* props is NULL without any: qsort(NULL, 0) is UB */
        qsort(st->props, st->n_props, sizeof(*st->props), catalog_prop_cmp);
    }
    return SL_OK;
}

