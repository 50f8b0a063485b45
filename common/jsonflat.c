/* jsonflat.c - one pass over a JSON object into values per field path (see
 * jsonflat.h).
 *
 * Paths form a tree: path 0 is the top-level object, every other path is
 * (parent, key) and is found again through an open-addressing table keyed by
 * both. Table slots carry the load's generation, so starting a document costs
 * nothing whatever the size of the previous one. Values at one path are
 * chained in document order (first/last per path, `next` per value).
 *
 * The scanner is a loop with an explicit stack (no recursion): a document's
 * depth is checked against SL_JSONFLAT_DEPTH_MAX before anything is pushed.
 * It accepts exactly RFC 8259 JSON with an object at the top, except that
 * bytes >= 0x80 inside strings are taken as they are (not checked as UTF-8):
 * they compare byte for byte, which is all matching needs.
 */
#include "common/jsonflat.h"

#include "common/assert.h"
#include "common/checksum.h"
#include "common/error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NUMBER_TEXT_MAX 64u /* longer numbers are valid JSON but not compared as numbers */

struct jf_path {
    uint32_t parent;
    uint32_t key_len;
    const char *key;
    uint32_t first, last; /* values */
};

struct jf_slot {
    uint32_t gen;
    uint32_t path;
};

struct sl_jsonflat {
    struct jf_path *paths;
    uint32_t path_count, path_cap;
    struct jf_slot *table;
    uint32_t table_cap; /* a power of two, at least twice path_cap */
    uint32_t gen;
    struct sl_jsonflat_value *values;
    uint32_t value_count, value_cap;
    char *text; /* decoded strings; never moves during a load */
    size_t text_len, text_cap;
};

struct jf_scan {
    struct sl_jsonflat *jf;
    const char *p;
    size_t i, len;
};

struct sl_jsonflat *sl_jsonflat_new(void)
{
    return calloc(1, sizeof(struct sl_jsonflat));
}

void sl_jsonflat_free(struct sl_jsonflat *jf)
{
    if (jf == NULL) {
        return;
    }
    free(jf->paths);
    free(jf->table);
    free(jf->values);
    free(jf->text);
    free(jf);
}

/* ---- storage ---- */

static uint64_t slot_hash(uint32_t parent, const char *key, uint32_t key_len)
{
    return sl_checksum64(key, key_len) ^ ((uint64_t)parent * 0x9E3779B97F4A7C15ull);
}

static uint32_t table_find(const struct sl_jsonflat *jf, uint32_t parent, const char *key,
                           uint32_t key_len, uint32_t *slot)
{
    uint32_t mask = jf->table_cap - 1;
    for (uint32_t s = (uint32_t)slot_hash(parent, key, key_len) & mask;; s = (s + 1) & mask) {
        const struct jf_slot *e = &jf->table[s];
        if (e->gen != jf->gen) {
            *slot = s;
            return SL_JSONFLAT_NONE;
        }
        const struct jf_path *p = &jf->paths[e->path];
        if (p->parent == parent && p->key_len == key_len && memcmp(p->key, key, key_len) == 0) {
            *slot = s;
            return e->path;
        }
    }
}

/* Doubles the path array and rebuilds the table at twice its size. On
 * failure both stay as they were (the table must always hold 2 x path_cap). */
static int paths_grow(struct sl_jsonflat *jf)
{
    uint32_t cap = jf->path_cap == 0 ? 64 : jf->path_cap * 2;
    struct jf_slot *t = calloc((size_t)cap * 2, sizeof(*t));
    struct jf_path *p = t != NULL ? realloc(jf->paths, (size_t)cap * sizeof(*p)) : NULL;
    if (p == NULL) {
        free(t);
        return SL_ENOMEM;
    }
    jf->paths = p;
    jf->path_cap = cap;
    free(jf->table);
    jf->table = t;
    jf->table_cap = cap * 2;
    jf->gen = 1; /* a fresh table: every slot (gen 0) reads empty */
    for (uint32_t i = 1; i < jf->path_count; i++) {
        uint32_t slot;
        const struct jf_path *q = &jf->paths[i];
        SL_ASSERT(table_find(jf, q->parent, q->key, q->key_len, &slot) == SL_JSONFLAT_NONE);
        jf->table[slot] = (struct jf_slot){.gen = jf->gen, .path = i};
    }
    return SL_OK;
}

/* The path (parent, key), made when new. SL_JSONFLAT_NONE when out of memory. */
static uint32_t path_intern(struct sl_jsonflat *jf, uint32_t parent, const char *key,
                            uint32_t key_len)
{
    uint32_t slot;
    uint32_t id = table_find(jf, parent, key, key_len, &slot);
    if (id != SL_JSONFLAT_NONE) {
        return id;
    }
    if (jf->path_count == jf->path_cap) {
        if (paths_grow(jf) != SL_OK) {
            return SL_JSONFLAT_NONE;
        }
        SL_ASSERT(table_find(jf, parent, key, key_len, &slot) == SL_JSONFLAT_NONE);
    }
    id = jf->path_count++;
    jf->paths[id] = (struct jf_path){.parent = parent, .key = key, .key_len = key_len,
                                     .first = SL_JSONFLAT_NONE, .last = SL_JSONFLAT_NONE};
    jf->table[slot] = (struct jf_slot){.gen = jf->gen, .path = id};
    SL_ASSERT(jf->path_count * 2 <= jf->table_cap);
    return id;
}

static struct sl_jsonflat_value *value_add(struct sl_jsonflat *jf, uint32_t path, uint8_t type)
{
    if (jf->value_count == jf->value_cap) {
        uint32_t cap = jf->value_cap == 0 ? 64 : jf->value_cap * 2;
        struct sl_jsonflat_value *v = realloc(jf->values, (size_t)cap * sizeof(*v));
        if (v == NULL) {
            return NULL;
        }
        jf->values = v;
        jf->value_cap = cap;
    }
    uint32_t idx = jf->value_count++;
    struct sl_jsonflat_value *v = &jf->values[idx];
    memset(v, 0, sizeof(*v));
    v->type = type;
    v->next = SL_JSONFLAT_NONE;
    struct jf_path *p = &jf->paths[path];
    if (p->last == SL_JSONFLAT_NONE) {
        p->first = idx;
    } else {
        jf->values[p->last].next = idx;
    }
    p->last = idx;
    return v;
}

/* ---- scanning ---- */

static void skip_ws(struct jf_scan *sc)
{
    while (sc->i < sc->len) {
        char c = sc->p[sc->i];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
            return;
        }
        sc->i++;
    }
}

static int hex4(const char *s, uint32_t *out)
{
    uint32_t v = 0;
    for (int k = 0; k < 4; k++) {
        char c = s[k];
        uint32_t d = c >= '0' && c <= '9'   ? (uint32_t)(c - '0')
                     : c >= 'a' && c <= 'f' ? (uint32_t)(c - 'a' + 10)
                     : c >= 'A' && c <= 'F' ? (uint32_t)(c - 'A' + 10)
                                            : 16u;
        if (d == 16u) {
            return SL_EINVAL;
        }
        v = v * 16 + d;
    }
    *out = v;
    return SL_OK;
}

static size_t utf8_put(char *dst, uint32_t cp)
{
    if (cp < 0x80) {
        dst[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        dst[0] = (char)(0xC0 | (cp >> 6));
        dst[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        dst[0] = (char)(0xE0 | (cp >> 12));
        dst[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        dst[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    dst[0] = (char)(0xF0 | (cp >> 18));
    dst[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    dst[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    dst[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* One \uXXXX escape (a surrogate pair when it starts one) at sc->i (just past
 * the 'u'), written as UTF-8 at dst. */
static int unicode_escape(struct jf_scan *sc, char *dst, size_t *wrote)
{
    uint32_t cp;
    if (sc->len - sc->i < 4 || hex4(sc->p + sc->i, &cp) != SL_OK) {
        return SL_EINVAL;
    }
    sc->i += 4;
    if (cp >= 0xDC00 && cp <= 0xDFFF) {
        return SL_EINVAL; /* a low surrogate alone */
    }
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        uint32_t lo;
        if (sc->len - sc->i < 6 || sc->p[sc->i] != '\\' || sc->p[sc->i + 1] != 'u' ||
            hex4(sc->p + sc->i + 2, &lo) != SL_OK || lo < 0xDC00 || lo > 0xDFFF) {
            return SL_EINVAL;
        }
        sc->i += 6;
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
    }
    *wrote = utf8_put(dst, cp);
    return SL_OK;
}

/* Decodes the escaped string whose body starts at `start` into the text
 * buffer; sc->i is at its first backslash. Decoded text is never longer than
 * its source, so the buffer (sized to the document) cannot overflow. */
static int string_decode(struct jf_scan *sc, size_t start, const char **s, uint32_t *len)
{
    struct sl_jsonflat *jf = sc->jf;
    char *dst = jf->text + jf->text_len;
    size_t n = sc->i - start;
    memcpy(dst, sc->p + start, n);
    while (sc->i < sc->len) {
        unsigned char c = (unsigned char)sc->p[sc->i++];
        if (c == '"') {
            *s = dst;
            *len = (uint32_t)n;
            jf->text_len += n;
            SL_ASSERT(jf->text_len <= jf->text_cap);
            return SL_OK;
        }
        if (c < 0x20) {
            return SL_EINVAL;
        }
        if (c != '\\') {
            dst[n++] = (char)c;
            continue;
        }
        if (sc->i == sc->len) {
            return SL_EINVAL;
        }
        char e = sc->p[sc->i++];
        static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
        const char *hit = e != '\0' ? strchr(from, e) : NULL;
        if (hit != NULL) {
            dst[n++] = to[hit - from];
        } else if (e == 'u') {
            size_t wrote = 0;
            if (unicode_escape(sc, dst + n, &wrote) != SL_OK) {
                return SL_EINVAL;
            }
            n += wrote;
        } else {
            return SL_EINVAL;
        }
    }
    return SL_EINVAL; /* no closing quote */
}

/* A string at sc->i (the opening quote). */
static int string_scan(struct jf_scan *sc, const char **s, uint32_t *len)
{
    SL_ASSERT(sc->p[sc->i] == '"');
    size_t start = ++sc->i;
    while (sc->i < sc->len) {
        unsigned char c = (unsigned char)sc->p[sc->i];
        if (c == '"') {
            *s = sc->p + start;
            *len = (uint32_t)(sc->i - start);
            sc->i++;
            return SL_OK;
        }
        if (c == '\\') {
            return string_decode(sc, start, s, len);
        }
        if (c < 0x20) {
            return SL_EINVAL;
        }
        sc->i++;
    }
    return SL_EINVAL;
}

static size_t digits_end(const struct jf_scan *sc, size_t i)
{
    while (i < sc->len && sc->p[i] >= '0' && sc->p[i] <= '9') {
        i++;
    }
    return i;
}

/* -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? at sc->i. */
static int number_scan(struct jf_scan *sc, struct sl_jsonflat_value *v)
{
    size_t start = sc->i, i = sc->i;
    i += i < sc->len && sc->p[i] == '-' ? 1 : 0;
    if (i == sc->len || sc->p[i] < '0' || sc->p[i] > '9') {
        return SL_EINVAL;
    }
    i = sc->p[i] == '0' ? i + 1 : digits_end(sc, i);
    if (i < sc->len && sc->p[i] == '.') {
        size_t e = digits_end(sc, i + 1);
        if (e == i + 1) {
            return SL_EINVAL;
        }
        i = e;
    }
    if (i < sc->len && (sc->p[i] == 'e' || sc->p[i] == 'E')) {
        i++;
        i += i < sc->len && (sc->p[i] == '+' || sc->p[i] == '-') ? 1 : 0;
        size_t e = digits_end(sc, i);
        if (e == i) {
            return SL_EINVAL;
        }
        i = e;
    }
    sc->i = i;
    size_t n = i - start;
    if (n < NUMBER_TEXT_MAX) {
        char buf[NUMBER_TEXT_MAX];
        memcpy(buf, sc->p + start, n);
        buf[n] = '\0';
        v->num = strtod(buf, NULL); /* the process never calls setlocale: '.' is the point */
        v->num_ok = isfinite(v->num);
    }
    return SL_OK;
}

static int literal_scan(struct jf_scan *sc, const char *word, size_t n)
{
    if (sc->len - sc->i < n || memcmp(sc->p + sc->i, word, n) != 0) {
        return SL_EINVAL;
    }
    sc->i += n;
    return SL_OK;
}

/* A scalar at sc->i, stored as a value of `path`. */
static int scalar_scan(struct jf_scan *sc, uint32_t path)
{
    char c = sc->p[sc->i];
    uint8_t type = c == '"' ? SL_JSON_STRING
                   : c == 't' ? SL_JSON_TRUE
                   : c == 'f' ? SL_JSON_FALSE
                   : c == 'n' ? SL_JSON_NULL
                              : SL_JSON_NUMBER;
    struct sl_jsonflat_value *v = value_add(sc->jf, path, type);
    if (v == NULL) {
        return SL_ENOMEM;
    }
    switch (type) {
    case SL_JSON_STRING:
        return string_scan(sc, &v->s, &v->len);
    case SL_JSON_TRUE:
        return literal_scan(sc, "true", 4);
    case SL_JSON_FALSE:
        return literal_scan(sc, "false", 5);
    case SL_JSON_NULL:
        return literal_scan(sc, "null", 4);
    default:
        return number_scan(sc, v);
    }
}

struct jf_frame {
    bool object;
    uint32_t path;
};

/* The document's body: sc->i is just past the top-level '{'. */
static int document_scan(struct jf_scan *sc)
{
    struct jf_frame stack[SL_JSONFLAT_DEPTH_MAX];
    uint32_t depth = 0;
    stack[depth++] = (struct jf_frame){.object = true, .path = SL_JSONFLAT_ROOT};
    bool first = true; /* at a container's start: its close may come */
    while (depth > 0) {
        struct jf_frame *top = &stack[depth - 1];
        skip_ws(sc);
        if (sc->i == sc->len) {
            return SL_EINVAL;
        }
        char c = sc->p[sc->i];
        bool close = false;
        if (first && c == (top->object ? '}' : ']')) {
            sc->i++;
            close = true;
        } else {
            uint32_t path = top->path;
            if (top->object) {
                const char *key;
                uint32_t key_len;
                if (c != '"' || string_scan(sc, &key, &key_len) != SL_OK) {
                    return SL_EINVAL;
                }
                skip_ws(sc);
                if (sc->i == sc->len || sc->p[sc->i] != ':') {
                    return SL_EINVAL;
                }
                sc->i++;
                skip_ws(sc);
                if (sc->i == sc->len) {
                    return SL_EINVAL;
                }
                path = path_intern(sc->jf, top->path, key, key_len);
                if (path == SL_JSONFLAT_NONE) {
                    return SL_ENOMEM;
                }
                c = sc->p[sc->i];
            }
            if (c == '{' || c == '[') {
                if (depth == SL_JSONFLAT_DEPTH_MAX) {
                    return SL_EINVAL;
                }
                sc->i++;
                stack[depth++] = (struct jf_frame){.object = c == '{', .path = path};
                first = true;
                continue;
            }
            int rc = scalar_scan(sc, path);
            if (rc != SL_OK) {
                return rc;
            }
        }
        /* After a value or a closed container: a separator or more closes. */
        if (close) {
            depth--;
        }
        for (;;) {
            if (depth == 0) {
                break;
            }
            top = &stack[depth - 1];
            skip_ws(sc);
            if (sc->i == sc->len) {
                return SL_EINVAL;
            }
            c = sc->p[sc->i++];
            if (c == ',') {
                first = false;
                break;
            }
            if (c != (top->object ? '}' : ']')) {
                return SL_EINVAL;
            }
            depth--;
        }
    }
    skip_ws(sc);
    return sc->i == sc->len ? SL_OK : SL_EINVAL;
}

int sl_jsonflat_load(struct sl_jsonflat *jf, const char *doc, size_t len)
{
    SL_ASSERT(jf != NULL);
    jf->path_count = 0;
    jf->value_count = 0;
    jf->text_len = 0;
    if (len > SL_JSONFLAT_DOC_MAX) {
        return SL_ETOOBIG;
    }
    if (jf->text_cap < len) {
        size_t cap = jf->text_cap == 0 ? 4096 : jf->text_cap;
        while (cap < len) {
            cap *= 2;
        }
        char *t = realloc(jf->text, cap);
        if (t == NULL) {
            return SL_ENOMEM;
        }
        jf->text = t;
        jf->text_cap = cap;
    }
    if (jf->path_cap == 0 && paths_grow(jf) != SL_OK) {
        return SL_ENOMEM;
    }
    jf->gen++;
    if (jf->gen == 0) { /* wrapped: stale slots could read as current */
        memset(jf->table, 0, (size_t)jf->table_cap * sizeof(*jf->table));
        jf->gen = 1;
    }
    jf->paths[0] = (struct jf_path){.parent = SL_JSONFLAT_NONE, .first = SL_JSONFLAT_NONE,
                                    .last = SL_JSONFLAT_NONE};
    jf->path_count = 1;
    struct jf_scan sc = {.jf = jf, .p = doc, .len = len};
    skip_ws(&sc);
    int rc = SL_EINVAL;
    if (sc.i < len && doc[sc.i] == '{') {
        sc.i++;
        rc = document_scan(&sc);
    }
    if (rc != SL_OK) {
        jf->path_count = 0; /* nothing found until the next good load */
        jf->value_count = 0;
    }
    return rc;
}

uint32_t sl_jsonflat_child(const struct sl_jsonflat *jf, uint32_t path, const char *key,
                           uint32_t key_len)
{
    if (path >= jf->path_count) {
        return SL_JSONFLAT_NONE;
    }
    uint32_t slot;
    return table_find(jf, path, key, key_len, &slot);
}

uint32_t sl_jsonflat_first(const struct sl_jsonflat *jf, uint32_t path)
{
    return path < jf->path_count ? jf->paths[path].first : SL_JSONFLAT_NONE;
}

const struct sl_jsonflat_value *sl_jsonflat_value(const struct sl_jsonflat *jf, uint32_t idx)
{
    SL_ASSERT(idx < jf->value_count);
    return &jf->values[idx];
}

uint32_t sl_jsonflat_count(const struct sl_jsonflat *jf)
{
    return jf->value_count;
}
