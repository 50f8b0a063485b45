/* filter.c - event patterns over record attributes (EventBridge style).
 *
 * Rules. Attributes are a flat map of byte-string keys to byte-string values;
 * when a record repeats a key, the first occurrence counts. A pattern object
 * ANDs its keys; a key's array ORs its alternatives:
 *   "s"                          value == s (bytes)
 *   5                            value parsed as a number == 5 ("5", "5.0", "5e0")
 *   {"prefix": "s"}, {"suffix": "s"}
 *   {"equals-ignore-case": "s"}  ASCII case folding; other bytes compare exactly
 *   {"anything-but": X}          present and not X; X = "s" | number |
 *                                [strings and numbers] | {"prefix": "s"};
 *                                a non-numeric value is "not" any number
 *   {"exists": true|false}       present / absent
 *   {"numeric": [op, n (, op, n)]}  value parsed as a number; each comparison
 *                                must hold (AND); ops = < <= > >=
 * Every alternative but {"exists": false} needs the attribute present. A
 * value is a number when it reads [+-]digits[.digits][(e|E)[+-]digits] (also
 * ".5" and "5.") and is finite as a double; anything else (" 5", "0x10",
 * "inf", "1e999") never matches numeric or number alternatives. Keys that
 * start with '$' are reserved: only "$or" is known, any other is rejected, so
 * a typo such as "$OR" cannot silently become an attribute name.
 *
 * Representation. Parsing flattens the $or tree into nodes: node 0 is the
 * top-level object, every $or element is a child node, and each node owns a
 * contiguous run of conditions (one per key). A record matches when, for
 * some leaf node (one without $or), the conditions of the leaf and of all its
 * ancestors hold. sl_filter_match walks leaves and parent links with loops;
 * condition results are cached in a stack array of SL_FILTER_KEYS_MAX bytes,
 * so a shared ancestor is evaluated once. Parsing is also loop-based: nodes
 * are processed in creation order (breadth first), each pushing its $or
 * children at the end of the node array.
 *
 * Memory: every string of a pattern (keys, operands) is copied into one
 * arena of `len` bytes, allocated once: a decoded JSON string is always
 * shorter than its quoted encoding, and each is stored at most once, so the
 * arena never moves and never overflows. Nodes, alternatives and
 * anything-but items live in arrays that grow only while parsing.
 *
 * jansson is included here only: no other broker module sees json_t.
 */
#include "broker/engine/filter.h"

#include "common/assert.h"
#include "common/error.h"
#include "storage/batch.h"

#include <jansson.h>

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(SL_FILTER_KEYS_MAX <= UINT16_MAX, "condition indices are uint16_t");
_Static_assert(SL_FILTER_OR_DEPTH_MAX < 16, "the path buffer holds the $or chain");

#define NODE_NONE      UINT32_MAX
#define PATH_BYTES     256u /* "$" + 4 x ".$or[255]" + ".<key>[255].anything-but[255]" */
#define PATH_KEY_SHOWN 96   /* bytes of a key quoted in a path before it is cut */

enum alt_op {
    ALT_EXACT,
    ALT_NUMBER,
    ALT_PREFIX,
    ALT_SUFFIX,
    ALT_IGNORE_CASE,
    ALT_BUT_LIST,
    ALT_BUT_PREFIX,
    ALT_EXISTS,
    ALT_NUMERIC,
};

enum cmp_op { CMP_EQ, CMP_LT, CMP_LE, CMP_GT, CMP_GE };

/* One string or number operand of "anything-but". */
struct flt_item {
    const char *s; /* into the arena; NULL for a number */
    uint32_t len;
    double num;
};

struct flt_alt {
    uint8_t op; /* enum alt_op */
    bool exists;
    uint8_t cmp_count; /* ALT_NUMERIC: 1 or 2 */
    uint8_t cmp_op[2]; /* enum cmp_op */
    double cmp_val[2];
    const char *s; /* ALT_EXACT, PREFIX, SUFFIX, IGNORE_CASE, BUT_PREFIX; into the arena */
    uint32_t len;
    double num;          /* ALT_NUMBER */
    uint32_t item_first; /* ALT_BUT_LIST: items[item_first, +item_count) */
    uint32_t item_count;
};

struct flt_cond {
    const char *key; /* into the arena */
    uint32_t key_len;
    uint32_t alt_first; /* alts[alt_first, +alt_count) */
    uint32_t alt_count;
};

struct flt_node {
    uint32_t parent;   /* NODE_NONE for the top-level object */
    uint32_t or_index; /* position in the parent's $or array (error paths) */
    uint16_t cond_first;
    uint16_t cond_count;
    uint8_t depth; /* $or levels above this node */
    bool leaf;     /* no $or of its own */
    json_t *obj;   /* parse time only (borrowed from the document); NULL after */
};

struct sl_filter {
    struct flt_cond conds[SL_FILTER_KEYS_MAX];
    uint32_t cond_count;
    struct flt_node *nodes;
    uint32_t node_count, node_cap;
    struct flt_alt *alts;
    uint32_t alt_count, alt_cap;
    struct flt_item *items;
    uint32_t item_count, item_cap;
    char *arena;
    size_t arena_len, arena_cap;
};

struct flt_parse {
    struct sl_filter *f;
    char *why; /* borrowed, may be NULL */
    size_t why_len;
    char path[PATH_BYTES];
    size_t path_len;
};

/* ---- parse helpers: errors, paths, storage ---- */

static int fail(struct flt_parse *p, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static size_t path_push(struct flt_parse *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Writes "<path>: <message>" into `why` and returns `err`. */
static int fail(struct flt_parse *p, int err, const char *fmt, ...)
{
    if (p->why != NULL && p->why_len > 0) {
        int n = snprintf(p->why, p->why_len, "%s: ", p->path);
        if (n >= 0 && (size_t)n < p->why_len) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(p->why + n, p->why_len - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
    return err;
}

/* Appends a segment to the current path and returns the length to restore.
 * A path longer than the buffer is cut (snprintf truncates). */
static size_t path_push(struct flt_parse *p, const char *fmt, ...)
{
    size_t saved = p->path_len;
    if (p->path_len + 1 < sizeof(p->path)) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(p->path + p->path_len, sizeof(p->path) - p->path_len, fmt, ap);
        va_end(ap);
        if (n > 0) {
            p->path_len += (size_t)n;
            if (p->path_len >= sizeof(p->path)) {
                p->path_len = sizeof(p->path) - 1;
            }
        }
    }
    return saved;
}

static void path_pop(struct flt_parse *p, size_t saved)
{
    SL_ASSERT(saved <= p->path_len);
    p->path_len = saved;
    p->path[saved] = '\0';
}

/* Sets the path to that of node `n`: "$" then ".$or[i]" per level. */
static void path_of_node(struct flt_parse *p, uint32_t n)
{
    uint32_t chain[SL_FILTER_OR_DEPTH_MAX + 1];
    uint32_t depth = 0;
    for (uint32_t m = n; p->f->nodes[m].parent != NODE_NONE; m = p->f->nodes[m].parent) {
        SL_ASSERT(depth < SL_FILTER_OR_DEPTH_MAX);
        chain[depth++] = p->f->nodes[m].or_index;
    }
    path_pop(p, 0);
    path_push(p, "$");
    while (depth > 0) {
        path_push(p, ".$or[%u]", chain[--depth]);
    }
}

/* Makes room for one more element of `size` bytes in *arr. */
static int grow(void **arr, uint32_t *cap, uint32_t count, size_t size)
{
    if (count < *cap) {
        return SL_OK;
    }
    uint32_t cap_new = *cap == 0 ? 8 : *cap * 2;
    void *a = realloc(*arr, (size_t)cap_new * size);
    if (a == NULL) {
        return SL_ENOMEM;
    }
    *arr = a;
    *cap = cap_new;
    return SL_OK;
}

static const char *arena_put(struct sl_filter *f, const char *s, size_t len)
{
    /* Invariant from the header comment: decoded strings fit in the text. */
    SL_ASSERT(len <= f->arena_cap - f->arena_len);
    char *dst = f->arena + f->arena_len;
    if (len > 0) {
        memcpy(dst, s, len);
    }
    f->arena_len += len;
    return dst;
}

static int alt_new(struct flt_parse *p, uint32_t *idx)
{
    struct sl_filter *f = p->f;
    if (grow((void **)&f->alts, &f->alt_cap, f->alt_count, sizeof(*f->alts)) != SL_OK) {
        return fail(p, SL_ENOMEM, "out of memory");
    }
    *idx = f->alt_count++;
    memset(&f->alts[*idx], 0, sizeof(f->alts[*idx]));
    return SL_OK;
}

/* Appends a string or number operand of anything-but; else SL_EINVAL. */
static int item_add(struct flt_parse *p, const json_t *v)
{
    struct sl_filter *f = p->f;
    if (!json_is_string(v) && !json_is_number(v)) {
        return fail(p, SL_EINVAL, "anything-but takes strings and numbers");
    }
    if (grow((void **)&f->items, &f->item_cap, f->item_count, sizeof(*f->items)) != SL_OK) {
        return fail(p, SL_ENOMEM, "out of memory");
    }
    struct flt_item *it = &f->items[f->item_count++];
    memset(it, 0, sizeof(*it));
    if (json_is_string(v)) {
        it->len = (uint32_t)json_string_length(v);
        it->s = arena_put(f, json_string_value(v), it->len);
    } else {
        it->num = json_number_value(v);
    }
    return SL_OK;
}

/* ---- parse: operators ---- */

static int parse_anything_but(struct flt_parse *p, struct flt_alt *a, const json_t *v)
{
    if (json_is_object(v)) {
        const json_t *pre = json_object_get(v, "prefix");
        if (json_object_size(v) != 1 || !json_is_string(pre)) {
            return fail(p, SL_EINVAL, "anything-but takes an object only as {\"prefix\": string}");
        }
        a->op = ALT_BUT_PREFIX;
        a->len = (uint32_t)json_string_length(pre);
        a->s = arena_put(p->f, json_string_value(pre), a->len);
        return SL_OK;
    }
    a->op = ALT_BUT_LIST;
    a->item_first = p->f->item_count;
    if (!json_is_array(v)) {
        if (!json_is_string(v) && !json_is_number(v)) {
            return fail(p, SL_EINVAL,
                        "anything-but takes a string, a number, an array of them or "
                        "{\"prefix\": string}");
        }
        a->item_count = 1;
        return item_add(p, v);
    }
    size_t n = json_array_size(v);
    if (n == 0) {
        return fail(p, SL_EINVAL, "anything-but needs a non-empty array");
    }
    if (n > SL_FILTER_VALUES_MAX) {
        return fail(p, SL_ETOOBIG, "anything-but has %zu values, more than %u", n,
                    SL_FILTER_VALUES_MAX);
    }
    for (size_t i = 0; i < n; i++) {
        size_t saved = path_push(p, ".anything-but[%zu]", i);
        int rc = item_add(p, json_array_get(v, i));
        path_pop(p, saved);
        if (rc != SL_OK) {
            return rc;
        }
    }
    a->item_count = (uint32_t)n;
    return SL_OK;
}

static int cmp_op_parse(const char *s, uint8_t *op)
{
    static const struct {
        const char *name;
        enum cmp_op op;
    } ops[] = {{"=", CMP_EQ}, {"<", CMP_LT}, {"<=", CMP_LE}, {">", CMP_GT}, {">=", CMP_GE}};
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        if (strcmp(s, ops[i].name) == 0) {
            *op = (uint8_t)ops[i].op;
            return SL_OK;
        }
    }
    return SL_EINVAL;
}

static int parse_numeric(struct flt_parse *p, struct flt_alt *a, const json_t *v)
{
    static const char shape[] = "numeric needs an operator and a number";
    size_t n = json_is_array(v) ? json_array_size(v) : 0;
    if (n != 2 && n != 4) {
        return fail(p, SL_EINVAL, "%s (one or two comparisons: [op, n] or [op, n, op, n])", shape);
    }
    a->op = ALT_NUMERIC;
    a->cmp_count = (uint8_t)(n / 2);
    for (size_t i = 0; i < n; i += 2) {
        const json_t *op = json_array_get(v, i);
        const json_t *num = json_array_get(v, i + 1);
        size_t saved = path_push(p, ".numeric[%zu]", i);
        if (!json_is_string(op)) {
            return fail(p, SL_EINVAL, "%s: expected an operator string", shape);
        }
        if (cmp_op_parse(json_string_value(op), &a->cmp_op[i / 2]) != SL_OK) {
            return fail(p, SL_EINVAL, "unknown numeric operator \"%.16s\" (= < <= > >=)",
                        json_string_value(op));
        }
        path_pop(p, saved);
        saved = path_push(p, ".numeric[%zu]", i + 1);
        if (!json_is_number(num)) {
            return fail(p, SL_EINVAL, "%s: expected a number", shape);
        }
        a->cmp_val[i / 2] = json_number_value(num);
        path_pop(p, saved);
    }
    return SL_OK;
}

/* A string operand of prefix, suffix and equals-ignore-case. */
static int parse_string_op(struct flt_parse *p, struct flt_alt *a, enum alt_op op, const char *name,
                           const json_t *v)
{
    if (!json_is_string(v)) {
        return fail(p, SL_EINVAL, "%s needs a string", name);
    }
    a->op = (uint8_t)op;
    a->len = (uint32_t)json_string_length(v);
    a->s = arena_put(p->f, json_string_value(v), a->len);
    return SL_OK;
}

/* An operator object: exactly one known operator with its operand. */
static int parse_op(struct flt_parse *p, uint32_t idx, json_t *obj)
{
    if (json_object_size(obj) != 1) {
        return fail(p, SL_EINVAL, "an operator object needs exactly one operator, has %zu",
                    json_object_size(obj));
    }
    void *it = json_object_iter(obj);
    const char *name = json_object_iter_key(it);
    const json_t *v = json_object_iter_value(it);
    struct flt_alt *a = &p->f->alts[idx]; /* stable: only items/arena grow below */
    if (strcmp(name, "prefix") == 0) {
        return parse_string_op(p, a, ALT_PREFIX, name, v);
    }
    if (strcmp(name, "suffix") == 0) {
        return parse_string_op(p, a, ALT_SUFFIX, name, v);
    }
    if (strcmp(name, "equals-ignore-case") == 0) {
        return parse_string_op(p, a, ALT_IGNORE_CASE, name, v);
    }
    if (strcmp(name, "anything-but") == 0) {
        return parse_anything_but(p, a, v);
    }
    if (strcmp(name, "numeric") == 0) {
        return parse_numeric(p, a, v);
    }
    if (strcmp(name, "exists") == 0) {
        if (!json_is_boolean(v)) {
            return fail(p, SL_EINVAL, "exists needs true or false");
        }
        a->op = ALT_EXISTS;
        a->exists = json_is_true(v);
        return SL_OK;
    }
    return fail(p, SL_EINVAL, "unknown operator \"%.*s\"", PATH_KEY_SHOWN, name);
}

static int parse_alt(struct flt_parse *p, json_t *v)
{
    uint32_t idx = 0;
    int rc = alt_new(p, &idx);
    if (rc != SL_OK) {
        return rc;
    }
    struct flt_alt *a = &p->f->alts[idx];
    if (json_is_string(v)) {
        a->op = ALT_EXACT;
        a->len = (uint32_t)json_string_length(v);
        a->s = arena_put(p->f, json_string_value(v), a->len);
        return SL_OK;
    }
    if (json_is_number(v)) {
        a->op = ALT_NUMBER;
        a->num = json_number_value(v);
        return SL_OK;
    }
    if (json_is_object(v)) {
        return parse_op(p, idx, v);
    }
    return fail(p, SL_EINVAL, "an alternative must be a string, a number or an operator object");
}

/* ---- parse: keys and nodes ---- */

static int parse_key(struct flt_parse *p, const char *key, json_t *v)
{
    struct sl_filter *f = p->f;
    size_t key_len = strlen(key); /* jansson refuses NUL in object keys */
    if (key[0] == '$') {
        return fail(p, SL_EINVAL, "unknown operator key (only \"$or\" starts with '$')");
    }
    if (key_len > SL_RECORD_ATTR_KEY_MAX) {
        return fail(p, SL_ETOOBIG, "attribute key of %zu bytes, more than %u", key_len,
                    SL_RECORD_ATTR_KEY_MAX);
    }
    if (f->cond_count == SL_FILTER_KEYS_MAX) {
        return fail(p, SL_ETOOBIG, "more than %u keys in the pattern", SL_FILTER_KEYS_MAX);
    }
    if (!json_is_array(v)) {
        return fail(p, SL_EINVAL, "a key's value must be an array of alternatives");
    }
    size_t n = json_array_size(v);
    if (n == 0) {
        return fail(p, SL_EINVAL, "empty array: a key needs at least one alternative");
    }
    if (n > SL_FILTER_VALUES_MAX) {
        return fail(p, SL_ETOOBIG, "%zu alternatives, more than %u", n, SL_FILTER_VALUES_MAX);
    }
    struct flt_cond *c = &f->conds[f->cond_count];
    c->key_len = (uint32_t)key_len;
    c->key = arena_put(f, key, key_len);
    c->alt_first = f->alt_count;
    for (size_t i = 0; i < n; i++) {
        size_t saved = path_push(p, "[%zu]", i);
        int rc = parse_alt(p, json_array_get(v, i));
        path_pop(p, saved);
        if (rc != SL_OK) {
            return rc;
        }
    }
    c->alt_count = (uint32_t)n;
    SL_ASSERT(f->alt_count == c->alt_first + c->alt_count);
    f->cond_count++;
    return SL_OK;
}

/* Appends one child node per element of node n's "$or" array. */
static int parse_or(struct flt_parse *p, uint32_t n, const json_t *v)
{
    struct sl_filter *f = p->f;
    uint8_t depth = (uint8_t)(f->nodes[n].depth + 1);
    if (!json_is_array(v)) {
        return fail(p, SL_EINVAL, "$or needs an array of patterns");
    }
    size_t count = json_array_size(v);
    if (count == 0) {
        return fail(p, SL_EINVAL, "empty array: $or needs at least one pattern");
    }
    if (count > SL_FILTER_VALUES_MAX) {
        return fail(p, SL_ETOOBIG, "$or has %zu patterns, more than %u", count,
                    SL_FILTER_VALUES_MAX);
    }
    if (depth > SL_FILTER_OR_DEPTH_MAX) {
        return fail(p, SL_ETOOBIG, "$or nested more than %u deep", SL_FILTER_OR_DEPTH_MAX);
    }
    for (size_t i = 0; i < count; i++) {
        json_t *sub = json_array_get(v, i);
        if (!json_is_object(sub)) {
            path_push(p, "[%zu]", i);
            return fail(p, SL_EINVAL, "each $or element must be a pattern object");
        }
        if (grow((void **)&f->nodes, &f->node_cap, f->node_count, sizeof(*f->nodes)) != SL_OK) {
            return fail(p, SL_ENOMEM, "out of memory");
        }
        f->nodes[f->node_count++] =
            (struct flt_node){.parent = n, .or_index = (uint32_t)i, .depth = depth, .obj = sub};
    }
    return SL_OK;
}

static int parse_node(struct flt_parse *p, uint32_t n)
{
    struct sl_filter *f = p->f;
    json_t *obj = f->nodes[n].obj;
    json_t *or_value = NULL;
    const char *key;
    json_t *v;
    path_of_node(p, n);
    f->nodes[n].cond_first = (uint16_t)f->cond_count;
    json_object_foreach(obj, key, v)
    {
        size_t saved = path_push(p, ".%.*s", PATH_KEY_SHOWN, key);
        int rc = SL_OK;
        if (strcmp(key, "$or") == 0) {
            or_value = v;
        } else {
            rc = parse_key(p, key, v);
        }
        path_pop(p, saved);
        if (rc != SL_OK) {
            return rc;
        }
    }
    f->nodes[n].cond_count = (uint16_t)(f->cond_count - f->nodes[n].cond_first);
    f->nodes[n].leaf = or_value == NULL;
    if (or_value == NULL) {
        return SL_OK;
    }
    path_push(p, ".$or");
    return parse_or(p, n, or_value);
}

/* Builds the filter from a parsed document whose top level is an object. */
static int parse_document(struct flt_parse *p, json_t *root, size_t len)
{
    struct sl_filter *f = p->f;
    f->arena = malloc(len);
    f->arena_cap = len;
    if (f->arena == NULL ||
        grow((void **)&f->nodes, &f->node_cap, f->node_count, sizeof(*f->nodes)) != SL_OK) {
        return fail(p, SL_ENOMEM, "out of memory");
    }
    f->nodes[f->node_count++] = (struct flt_node){.parent = NODE_NONE, .obj = root};
    /* Breadth first: parse_node appends the children it finds. */
    for (uint32_t n = 0; n < f->node_count; n++) {
        int rc = parse_node(p, n);
        if (rc != SL_OK) {
            return rc;
        }
    }
    for (uint32_t n = 0; n < f->node_count; n++) {
        f->nodes[n].obj = NULL; /* the document is freed by the caller */
        SL_ASSERT(f->nodes[n].cond_first + f->nodes[n].cond_count <= f->cond_count);
    }
    return SL_OK;
}

int sl_filter_parse(const char *json, size_t len, struct sl_filter **out, char *why, size_t why_len)
{
    SL_ASSERT(out != NULL);
    *out = NULL;
    struct flt_parse p = {.why = why, .why_len = why_len, .path = "$", .path_len = 1};
    if (why != NULL && why_len > 0) {
        why[0] = '\0';
    }
    if (json == NULL) {
        return fail(&p, SL_EINVAL, "no pattern text");
    }
    if (len > SL_FILTER_TEXT_MAX) {
        return fail(&p, SL_ETOOBIG, "pattern of %zu bytes, more than %u", len, SL_FILTER_TEXT_MAX);
    }
    json_error_t jerr;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL, &jerr);
    if (root == NULL) {
        int err = json_error_code(&jerr) == json_error_out_of_memory ? SL_ENOMEM : SL_EINVAL;
        return fail(&p, err, "invalid JSON at line %d, column %d: %s", jerr.line, jerr.column,
                    jerr.text);
    }
    if (!json_is_object(root)) {
        json_decref(root);
        return fail(&p, SL_EINVAL, "a pattern must be a JSON object");
    }
    p.f = calloc(1, sizeof(*p.f));
    int rc = p.f == NULL ? fail(&p, SL_ENOMEM, "out of memory") : parse_document(&p, root, len);
    json_decref(root);
    if (rc != SL_OK) {
        sl_filter_free(p.f);
        return rc;
    }
    *out = p.f;
    return SL_OK;
}

void sl_filter_free(struct sl_filter *f)
{
    if (f == NULL) {
        return;
    }
    free(f->nodes);
    free(f->alts);
    free(f->items);
    free(f->arena);
    free(f);
}

/* ---- match ---- */

/* The attribute a condition looks at, with its number parsed on demand. */
struct subject {
    bool present;
    const char *v;
    uint32_t len;
    int8_t numeric; /* -1 not parsed yet, 0 not a number, 1 `num` holds it */
    double num;
};

static size_t digits(const char *s, size_t i, size_t len)
{
    while (i < len && s[i] >= '0' && s[i] <= '9') {
        i++;
    }
    return i;
}

/* [+-](d+[.d*]|.d+)([eE][+-]d+), finite; no spaces, hex, inf or nan. */
static bool number_parse(const char *s, size_t len, double *out)
{
    char buf[SL_RECORD_ATTR_VALUE_MAX + 1]; /* strtod needs a terminated copy */
    if (len == 0 || len >= sizeof(buf)) {
        return false;
    }
    size_t i = (s[0] == '+' || s[0] == '-') ? 1 : 0;
    size_t int_end = digits(s, i, len);
    size_t mant_digits = int_end - i;
    i = int_end;
    if (i < len && s[i] == '.') {
        size_t frac_end = digits(s, i + 1, len);
        mant_digits += frac_end - (i + 1);
        i = frac_end;
    }
    if (mant_digits == 0) {
        return false;
    }
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        i += (i < len && (s[i] == '+' || s[i] == '-')) ? 1 : 0;
        size_t exp_end = digits(s, i, len);
        if (exp_end == i) {
            return false;
        }
        i = exp_end;
    }
    if (i != len) {
        return false;
    }
    memcpy(buf, s, len);
    buf[len] = '\0';
    double d = strtod(buf, NULL); /* the broker never calls setlocale: '.' is the point */
    if (!isfinite(d)) {
        return false;
    }
    *out = d;
    return true;
}

static bool subject_number(struct subject *s, double *out)
{
    if (s->numeric < 0) {
        s->numeric = number_parse(s->v, s->len, &s->num) ? 1 : 0;
    }
    *out = s->num;
    return s->numeric == 1;
}

static bool has_prefix(const struct subject *s, const char *p, uint32_t len)
{
    return s->len >= len && memcmp(s->v, p, len) == 0;
}

static bool has_suffix(const struct subject *s, const char *p, uint32_t len)
{
    return s->len >= len && memcmp(s->v + (s->len - len), p, len) == 0;
}

static bool equal_ignore_case(const struct subject *s, const char *p, uint32_t len)
{
    if (s->len != len) {
        return false;
    }
    for (uint32_t i = 0; i < len; i++) {
        unsigned char a = (unsigned char)s->v[i], b = (unsigned char)p[i];
        a = (a >= 'A' && a <= 'Z') ? (unsigned char)(a + 32) : a;
        b = (b >= 'A' && b <= 'Z') ? (unsigned char)(b + 32) : b;
        if (a != b) {
            return false;
        }
    }
    return true;
}

static bool compare(double v, uint8_t op, double x)
{
    switch (op) {
    case CMP_EQ:
        return v == x;
    case CMP_LT:
        return v < x;
    case CMP_LE:
        return v <= x;
    case CMP_GT:
        return v > x;
    case CMP_GE:
        return v >= x;
    }
    SL_ASSERT(!"unknown comparison");
    return false;
}

static bool but_list(const struct sl_filter *f, const struct flt_alt *a, struct subject *s)
{
    for (uint32_t i = 0; i < a->item_count; i++) {
        const struct flt_item *it = &f->items[a->item_first + i];
        double d;
        if (it->s != NULL) {
            if (s->len == it->len && memcmp(s->v, it->s, it->len) == 0) {
                return false;
            }
        } else if (subject_number(s, &d) && d == it->num) {
            return false;
        }
    }
    return true;
}

static bool alt_holds(const struct sl_filter *f, const struct flt_alt *a, struct subject *s)
{
    double d;
    if (a->op == ALT_EXISTS) {
        return s->present == a->exists;
    }
    if (!s->present) {
        return false;
    }
    switch (a->op) {
    case ALT_EXACT:
        return s->len == a->len && memcmp(s->v, a->s, a->len) == 0;
    case ALT_NUMBER:
        return subject_number(s, &d) && d == a->num;
    case ALT_PREFIX:
        return has_prefix(s, a->s, a->len);
    case ALT_SUFFIX:
        return has_suffix(s, a->s, a->len);
    case ALT_IGNORE_CASE:
        return equal_ignore_case(s, a->s, a->len);
    case ALT_BUT_LIST:
        return but_list(f, a, s);
    case ALT_BUT_PREFIX:
        return !has_prefix(s, a->s, a->len);
    case ALT_NUMERIC:
        if (!subject_number(s, &d)) {
            return false;
        }
        for (uint32_t i = 0; i < a->cmp_count; i++) {
            if (!compare(d, a->cmp_op[i], a->cmp_val[i])) {
                return false;
            }
        }
        return true;
    }
    SL_ASSERT(!"unknown alternative");
    return false;
}

static bool cond_holds(const struct sl_filter *f, const struct flt_cond *c,
                       const struct sl_record_view *rec)
{
    struct subject s = {.numeric = -1};
    struct sl_attr attr;
    uint32_t pos = 0;
    while (sl_record_attr_next(rec, &pos, &attr)) {
        if (attr.key_len == c->key_len && memcmp(attr.key, c->key, c->key_len) == 0) {
            s.present = true;
            s.v = attr.value;
            s.len = attr.value_len;
            break;
        }
    }
    for (uint32_t i = 0; i < c->alt_count; i++) {
        if (alt_holds(f, &f->alts[c->alt_first + i], &s)) {
            return true;
        }
    }
    return false;
}

bool sl_filter_match(const struct sl_filter *f, const struct sl_record_view *rec)
{
    SL_ASSERT(f != NULL && rec != NULL);
    SL_ASSERT(f->cond_count <= SL_FILTER_KEYS_MAX);
    uint8_t verdict[SL_FILTER_KEYS_MAX] = {0}; /* 0 unknown, 1 false, 2 true */
    for (uint32_t leaf = 0; leaf < f->node_count; leaf++) {
        if (!f->nodes[leaf].leaf) {
            continue;
        }
        bool ok = true;
        /* Up the parent links: at most SL_FILTER_OR_DEPTH_MAX + 1 nodes. */
        for (uint32_t n = leaf; ok && n != NODE_NONE; n = f->nodes[n].parent) {
            const struct flt_node *node = &f->nodes[n];
            for (uint32_t i = 0; ok && i < node->cond_count; i++) {
                uint32_t c = node->cond_first + i;
                if (verdict[c] == 0) {
                    verdict[c] = cond_holds(f, &f->conds[c], rec) ? 2 : 1;
                }
                ok = verdict[c] == 2;
            }
        }
        if (ok) {
            return true;
        }
    }
    return false;
}
