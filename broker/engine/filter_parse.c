/* filter_parse.c - compiles an event pattern (see filter.h, filter_int.h).
 *
 * Rules. A pattern object ANDs its keys; a key's array ORs its alternatives:
 *   "s"                          the value is the string s (bytes)
 *   5                            the value is the number 5; in attribute scope
 *                                an attribute reading as 5 ("5", "5.0", "5e0")
 *   null, true, false            (body scope) that JSON literal
 *   {"prefix": "s"}, {"suffix": "s"}, or with {"equals-ignore-case": "s"}
 *                                as operand: the same, ASCII case folded
 *   {"equals-ignore-case": "s"}  ASCII case folding; other bytes compare exactly
 *   {"wildcard": "a*b"}          '*' stands for any run of bytes (two in a row
 *                                are refused); "\*" is a star, "\\" a backslash
 *   {"cidr": "10.0.0.0/24"}      an IPv4 or IPv6 address string inside the
 *                                prefix (no "/n": that one address)
 *   {"anything-but": X}          present and not X; X = a literal | a list of
 *                                strings and numbers | {"prefix": s} |
 *                                {"suffix": s} | {"equals-ignore-case": s or
 *                                [s...]} | {"wildcard": s or [s...]}
 *   {"exists": true|false}       present / absent
 *   {"numeric": [op, n (, op, n)]}  a number for which each comparison holds;
 *                                ops = < <= > >=
 * Every alternative but {"exists": false} needs the field present. Strings
 * operators match strings only; numbers match numbers only (in attribute
 * scope every value is a string, and number alternatives read it as one:
 * [+-]digits[.digits][(e|E)[+-]digits], finite, nothing else). Keys that
 * start with '$' are reserved: only "$or" is known, so a typo such as "$OR"
 * cannot silently become a field name.
 *
 * In body scope a key's value may be an object: its keys name fields one
 * level down (at most SL_FILTER_PATH_MAX levels), and it may hold "$or" too.
 *
 * Parsing is breadth first over nodes: a node (the top object, or one element
 * of a "$or") is read whole - its nested objects by recursion bounded by
 * SL_FILTER_PATH_MAX - and every "$or" it holds appends its children to the
 * node array, read later. jansson is included by this file only in the
 * engine: no other engine module sees json_t.
 */
#include "broker/engine/filter_int.h"

#include "common/assert.h"
#include "common/error.h"
#include "storage/batch.h"

#include <jansson.h>

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PATH_BYTES     512u /* an error's JSON path, cut when longer */
#define PATH_KEY_SHOWN 96   /* bytes of a key quoted in a path before it is cut */

/* A node waiting to be read: its object and where it sits. */
struct flt_pending {
    json_t *obj;                   /* borrowed from the document */
    uint32_t seg_first, seg_count; /* the fields above the $or it belongs to */
    uint32_t depth;                /* $or levels above it */
    char path[PATH_BYTES];         /* for errors */
};

struct flt_parse {
    struct sl_filter *f;
    char *why; /* borrowed, may be NULL */
    size_t why_len;
    char path[PATH_BYTES];
    size_t path_len;
    struct flt_seg field[SL_FILTER_PATH_MAX]; /* keys down to the object being read */
    uint32_t field_depth;
    uint32_t node_depth; /* $or levels above the node being read */
    struct flt_pending *pending; /* one per node */
    uint32_t pending_cap;
};

/* ---- errors, paths, storage ---- */

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
    /* Invariant from filter_int.h: decoded strings fit in the text. */
    SL_ASSERT(len <= f->arena_cap - f->arena_len);
    char *dst = f->arena + f->arena_len;
    if (len > 0) {
        memcpy(dst, s, len);
    }
    f->arena_len += len;
    return dst;
}

static const char *arena_string(struct sl_filter *f, const json_t *v, uint32_t *len)
{
    *len = (uint32_t)json_string_length(v);
    return arena_put(f, json_string_value(v), *len);
}

/* A new zeroed alternative in *arr (alts or subs); its index in *idx. */
static int alt_new(struct flt_parse *p, struct flt_alt **arr, uint32_t *count, uint32_t *cap,
                   uint32_t *idx)
{
    if (grow((void **)arr, cap, *count, sizeof(**arr)) != SL_OK) {
        return fail(p, SL_ENOMEM, "out of memory");
    }
    *idx = (*count)++;
    memset(&(*arr)[*idx], 0, sizeof((*arr)[*idx]));
    return SL_OK;
}

/* ---- operands ---- */

/* A literal alternative: string, number, or (body scope) null/true/false. */
static bool literal_set(const struct flt_parse *p, struct flt_alt *a, const json_t *v)
{
    if (json_is_string(v)) {
        a->op = FLT_EXACT;
        a->s = arena_string(p->f, v, &a->len);
    } else if (json_is_number(v)) {
        a->op = FLT_NUMBER;
        a->num = json_number_value(v);
    } else if (p->f->scope == SL_FILTER_SCOPE_BODY && (json_is_null(v) || json_is_boolean(v))) {
        a->op = json_is_null(v) ? FLT_NULL : json_is_true(v) ? FLT_TRUE : FLT_FALSE;
    } else {
        return false;
    }
    return true;
}

/* Rejects "**" and an escape other than "\*" or "\\". */
static int wildcard_check(struct flt_parse *p, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\\') {
            if (i + 1 == len || (s[i + 1] != '*' && s[i + 1] != '\\')) {
                return fail(p, SL_EINVAL, "wildcard: '\\' escapes only '*' or '\\'");
            }
            i++;
        } else if (s[i] == '*' && i + 1 < len && s[i + 1] == '*') {
            return fail(p, SL_EINVAL, "wildcard: consecutive '*' are not allowed");
        }
    }
    return SL_OK;
}

static int string_operand(struct flt_parse *p, struct flt_alt *a, enum flt_op op,
                          const char *name, const json_t *v)
{
    if (!json_is_string(v)) {
        return fail(p, SL_EINVAL, "%s needs a string", name);
    }
    a->op = (uint8_t)op;
    a->s = arena_string(p->f, v, &a->len);
    return op == FLT_WILDCARD ? wildcard_check(p, a->s, a->len) : SL_OK;
}

/* prefix and suffix: a string, or {"equals-ignore-case": string}. */
static int affix_operand(struct flt_parse *p, struct flt_alt *a, enum flt_op op,
                         const char *name, const json_t *v)
{
    if (json_is_object(v)) {
        const json_t *s = json_object_get(v, "equals-ignore-case");
        if (json_object_size(v) != 1 || !json_is_string(s)) {
            return fail(p, SL_EINVAL,
                        "%s takes a string or {\"equals-ignore-case\": string}", name);
        }
        a->fold = true;
        v = s;
    }
    return string_operand(p, a, op, name, v);
}

static int cidr_operand(struct flt_parse *p, struct flt_alt *a, const json_t *v)
{
    char buf[64];
    const char *text = json_is_string(v) ? json_string_value(v) : NULL;
    if (text == NULL || json_string_length(v) >= sizeof(buf)) {
        return fail(p, SL_EINVAL, "cidr needs an address prefix string such as \"10.0.0.0/24\"");
    }
    snprintf(buf, sizeof(buf), "%s", text);
    char *slash = strchr(buf, '/');
    long bits = -1;
    if (slash != NULL) {
        char *end = NULL;
        *slash = '\0';
        bits = slash[1] >= '0' && slash[1] <= '9' ? strtol(slash + 1, &end, 10) : -1;
        if (end == NULL || *end != '\0') {
            bits = -2;
        }
    }
    if (inet_pton(AF_INET, buf, a->cidr_addr) == 1) {
        a->cidr_family = 4;
        bits = bits == -1 ? 32 : bits;
    } else if (inet_pton(AF_INET6, buf, a->cidr_addr) == 1) {
        a->cidr_family = 6;
        bits = bits == -1 ? 128 : bits;
    } else {
        return fail(p, SL_EINVAL, "cidr: \"%.48s\" is not an IPv4 or IPv6 address", buf);
    }
    if (bits < 0 || bits > (a->cidr_family == 4 ? 32 : 128)) {
        return fail(p, SL_EINVAL, "cidr: the prefix length must be 0-%d",
                    a->cidr_family == 4 ? 32 : 128);
    }
    a->op = FLT_CIDR;
    a->cidr_bits = (uint8_t)bits;
    return SL_OK;
}

/* Appends one excluded alternative of anything-but (a literal, or `op`'s
 * string operand when op != FLT_EXACT). */
static int but_sub(struct flt_parse *p, enum flt_op op, const json_t *v)
{
    struct sl_filter *f = p->f;
    uint32_t idx = 0;
    int rc = alt_new(p, &f->subs, &f->sub_count, &f->sub_cap, &idx);
    if (rc != SL_OK) {
        return rc;
    }
    struct flt_alt *sub = &f->subs[idx];
    if (op != FLT_EXACT) {
        return string_operand(p, sub, op, "anything-but's operator", v);
    }
    if (!json_is_string(v) && !json_is_number(v)) {
        return fail(p, SL_EINVAL, "anything-but takes strings and numbers");
    }
    literal_set(p, sub, v);
    return SL_OK;
}

/* A string or an array of strings (or strings and numbers for FLT_EXACT). */
static int but_list(struct flt_parse *p, struct flt_alt *a, enum flt_op op, const json_t *v)
{
    if (!json_is_array(v)) {
        a->sub_count = 1;
        return but_sub(p, op, v);
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
        size_t saved = path_push(p, "[%zu]", i);
        int rc = but_sub(p, op, json_array_get(v, i));
        path_pop(p, saved);
        if (rc != SL_OK) {
            return rc;
        }
    }
    a->sub_count = (uint32_t)n;
    return SL_OK;
}

static int parse_anything_but(struct flt_parse *p, struct flt_alt *a, const json_t *v)
{
    a->op = FLT_BUT;
    a->sub_first = p->f->sub_count;
    if (!json_is_object(v)) {
        if (!json_is_array(v) && !json_is_string(v) && !json_is_number(v)) {
            return fail(p, SL_EINVAL,
                        "anything-but takes a string, a number, an array of them or an "
                        "operator object");
        }
        size_t saved = path_push(p, ".anything-but");
        int rc = but_list(p, a, FLT_EXACT, v);
        path_pop(p, saved);
        return rc;
    }
    static const struct {
        const char *name;
        enum flt_op op;
        bool list;
    } ops[] = {{"prefix", FLT_PREFIX, false},
               {"suffix", FLT_SUFFIX, false},
               {"equals-ignore-case", FLT_IGNORE_CASE, true},
               {"wildcard", FLT_WILDCARD, true}};
    void *it = json_object_iter((json_t *)v);
    const char *name = it != NULL ? json_object_iter_key(it) : "";
    for (size_t i = 0; json_object_size(v) == 1 && i < sizeof(ops) / sizeof(ops[0]); i++) {
        if (strcmp(name, ops[i].name) == 0) {
            const json_t *operand = json_object_iter_value(it);
            if (!ops[i].list && !json_is_string(operand)) {
                return fail(p, SL_EINVAL, "anything-but's %s needs a string", name);
            }
            size_t saved = path_push(p, ".anything-but.%s", name);
            int rc = but_list(p, a, ops[i].op, operand);
            path_pop(p, saved);
            return rc;
        }
    }
    return fail(p, SL_EINVAL,
                "anything-but takes an object only as {\"prefix\"|\"suffix\"|"
                "\"equals-ignore-case\"|\"wildcard\": ...}");
}

static int cmp_op_parse(const char *s, uint8_t *op)
{
    static const struct {
        const char *name;
        enum flt_cmp op;
    } ops[] = {{"=", FLT_CMP_EQ},
               {"<", FLT_CMP_LT},
               {"<=", FLT_CMP_LE},
               {">", FLT_CMP_GT},
               {">=", FLT_CMP_GE}};
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
        return fail(p, SL_EINVAL, "%s (one or two comparisons: [op, n] or [op, n, op, n])",
                    shape);
    }
    a->op = FLT_NUMERIC;
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

/* An operator object: exactly one known operator with its operand. */
static int parse_op(struct flt_parse *p, struct flt_alt *a, json_t *obj)
{
    if (json_object_size(obj) != 1) {
        return fail(p, SL_EINVAL, "an operator object needs exactly one operator, has %zu",
                    json_object_size(obj));
    }
    void *it = json_object_iter(obj);
    const char *name = json_object_iter_key(it);
    const json_t *v = json_object_iter_value(it);
    if (strcmp(name, "prefix") == 0) {
        return affix_operand(p, a, FLT_PREFIX, name, v);
    }
    if (strcmp(name, "suffix") == 0) {
        return affix_operand(p, a, FLT_SUFFIX, name, v);
    }
    if (strcmp(name, "equals-ignore-case") == 0) {
        return string_operand(p, a, FLT_IGNORE_CASE, name, v);
    }
    if (strcmp(name, "wildcard") == 0) {
        return string_operand(p, a, FLT_WILDCARD, name, v);
    }
    if (strcmp(name, "cidr") == 0) {
        return cidr_operand(p, a, v);
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
        a->op = FLT_EXISTS;
        a->exists = json_is_true(v);
        return SL_OK;
    }
    return fail(p, SL_EINVAL, "unknown operator \"%.*s\"", PATH_KEY_SHOWN, name);
}

static int parse_alt(struct flt_parse *p, json_t *v)
{
    struct sl_filter *f = p->f;
    uint32_t idx = 0;
    int rc = alt_new(p, &f->alts, &f->alt_count, &f->alt_cap, &idx);
    if (rc != SL_OK) {
        return rc;
    }
    struct flt_alt *a = &f->alts[idx]; /* stable: only subs and the arena grow below */
    if (json_is_object(v)) {
        return parse_op(p, a, v);
    }
    if (literal_set(p, a, v)) {
        return SL_OK;
    }
    return fail(p, SL_EINVAL, "an alternative must be %s or an operator object",
                f->scope == SL_FILTER_SCOPE_BODY ? "a string, a number, null, true, false"
                                                 : "a string, a number");
}

/* ---- fields, objects and nodes ---- */

/* A field whose value is the array of alternatives `v`. */
static int parse_field(struct flt_parse *p, const char *key, size_t key_len, json_t *v)
{
    struct sl_filter *f = p->f;
    if (f->cond_count == SL_FILTER_KEYS_MAX) {
        return fail(p, SL_ETOOBIG, "more than %u keys in the pattern", SL_FILTER_KEYS_MAX);
    }
    size_t n = json_array_size(v);
    if (n == 0) {
        return fail(p, SL_EINVAL, "empty array: a key needs at least one alternative");
    }
    if (n > SL_FILTER_VALUES_MAX) {
        return fail(p, SL_ETOOBIG, "%zu alternatives, more than %u", n, SL_FILTER_VALUES_MAX);
    }
    if (grow((void **)&f->conds, &f->cond_cap, f->cond_count, sizeof(*f->conds)) != SL_OK) {
        return fail(p, SL_ENOMEM, "out of memory");
    }
    struct flt_cond c = {.seg_first = f->seg_count, .seg_count = p->field_depth + 1,
                         .alt_first = f->alt_count};
    for (uint32_t i = 0; i <= p->field_depth; i++) {
        if (grow((void **)&f->segs, &f->seg_cap, f->seg_count, sizeof(*f->segs)) != SL_OK) {
            return fail(p, SL_ENOMEM, "out of memory");
        }
        f->segs[f->seg_count++] =
            i < p->field_depth ? p->field[i]
                               : (struct flt_seg){arena_put(f, key, key_len), (uint32_t)key_len};
    }
    for (size_t i = 0; i < n; i++) {
        size_t saved = path_push(p, "[%zu]", i);
        int rc = parse_alt(p, json_array_get(v, i));
        path_pop(p, saved);
        if (rc != SL_OK) {
            return rc;
        }
    }
    c.alt_count = (uint32_t)n;
    SL_ASSERT(f->alt_count == c.alt_first + c.alt_count);
    f->conds[f->cond_count++] = c;
    return SL_OK;
}

/* Queues one child node per element of a "$or" array found in the node being
 * read, at the current field depth. */
static int parse_or(struct flt_parse *p, const json_t *v)
{
    struct sl_filter *f = p->f;
    uint32_t depth = p->node_depth + 1;
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
    if (grow((void **)&f->ors, &f->or_cap, f->or_count, sizeof(*f->ors)) != SL_OK) {
        return fail(p, SL_ENOMEM, "out of memory");
    }
    /* The children's fields start below the fields leading to this $or. */
    uint32_t seg_first = f->seg_count;
    for (uint32_t i = 0; i < p->field_depth; i++) {
        if (grow((void **)&f->segs, &f->seg_cap, f->seg_count, sizeof(*f->segs)) != SL_OK) {
            return fail(p, SL_ENOMEM, "out of memory");
        }
        f->segs[f->seg_count++] = p->field[i];
    }
    f->ors[f->or_count++] = (struct flt_or){.node_first = f->node_count,
                                            .node_count = (uint32_t)count};
    for (size_t i = 0; i < count; i++) {
        json_t *sub = json_array_get(v, i);
        if (!json_is_object(sub)) {
            path_push(p, "[%zu]", i);
            return fail(p, SL_EINVAL, "each $or element must be a pattern object");
        }
        uint32_t cap = f->node_cap;
        if (grow((void **)&f->nodes, &f->node_cap, f->node_count, sizeof(*f->nodes)) != SL_OK ||
            (cap != f->node_cap &&
             grow((void **)&p->pending, &p->pending_cap, f->node_count, sizeof(*p->pending)) !=
                 SL_OK)) {
            return fail(p, SL_ENOMEM, "out of memory");
        }
        SL_ASSERT(p->pending_cap >= f->node_cap);
        struct flt_pending *pd = &p->pending[f->node_count];
        *pd = (struct flt_pending){.obj = sub, .seg_first = seg_first,
                                   .seg_count = p->field_depth, .depth = depth};
        if (snprintf(pd->path, sizeof(pd->path), "%s[%zu]", p->path, i) < 0) {
            pd->path[0] = '\0'; /* a path cut short only shortens error messages */
        }
        f->nodes[f->node_count++] = (struct flt_node){0};
    }
    return SL_OK;
}

/* The keys of `obj`, an object of the node being read at the current field depth. */
static int parse_object(struct flt_parse *p, json_t *obj)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        size_t key_len = strlen(key); /* jansson refuses NUL in object keys */
        size_t saved = path_push(p, ".%.*s", PATH_KEY_SHOWN, key);
        int rc = SL_OK;
        if (strcmp(key, "$or") == 0) {
            rc = parse_or(p, v);
        } else if (key[0] == '$') {
            rc = fail(p, SL_EINVAL, "unknown operator key (only \"$or\" starts with '$')");
        } else if (p->f->scope == SL_FILTER_SCOPE_ATTRIBUTES && key_len > SL_RECORD_ATTR_KEY_MAX) {
            rc = fail(p, SL_ETOOBIG, "attribute key of %zu bytes, more than %u", key_len,
                      SL_RECORD_ATTR_KEY_MAX);
        } else if (json_is_array(v)) {
            rc = parse_field(p, key, key_len, v);
        } else if (json_is_object(v) && p->f->scope == SL_FILTER_SCOPE_BODY) {
            if (p->field_depth + 1 >= SL_FILTER_PATH_MAX) {
                rc = fail(p, SL_ETOOBIG, "fields nested more than %u deep", SL_FILTER_PATH_MAX);
            } else {
                p->field[p->field_depth++] =
                    (struct flt_seg){arena_put(p->f, key, key_len), (uint32_t)key_len};
                rc = parse_object(p, v); /* depth bounded just above */
                p->field_depth--;
            }
        } else if (json_is_object(v)) {
            rc = fail(p, SL_EINVAL,
                      "an attribute pattern is flat: nested fields need the body scope");
        } else {
            rc = fail(p, SL_EINVAL, "a key's value must be an array of alternatives%s",
                      p->f->scope == SL_FILTER_SCOPE_BODY ? " or an object of fields" : "");
        }
        path_pop(p, saved);
        if (rc != SL_OK) {
            return rc;
        }
    }
    return SL_OK;
}

static int parse_node(struct flt_parse *p, uint32_t n)
{
    struct sl_filter *f = p->f;
    const struct flt_pending *pd = &p->pending[n];
    SL_ASSERT(pd->seg_count < SL_FILTER_PATH_MAX);
    path_pop(p, 0);
    path_push(p, "%s", pd->path);
    p->field_depth = pd->seg_count;
    if (pd->seg_count > 0) { /* segs is NULL until the first field */
        memcpy(p->field, f->segs + pd->seg_first, pd->seg_count * sizeof(*p->field));
    }
    p->node_depth = pd->depth;
    f->nodes[n].cond_first = f->cond_count;
    f->nodes[n].or_first = f->or_count;
    int rc = parse_object(p, pd->obj);
    f->nodes[n].cond_count = f->cond_count - f->nodes[n].cond_first;
    f->nodes[n].or_count = f->or_count - f->nodes[n].or_first;
    return rc;
}

/* Builds the filter from a parsed document whose top level is an object. */
static int parse_document(struct flt_parse *p, json_t *root, size_t len)
{
    struct sl_filter *f = p->f;
    f->arena = malloc(len);
    f->arena_cap = len;
    if (f->arena == NULL ||
        grow((void **)&f->nodes, &f->node_cap, f->node_count, sizeof(*f->nodes)) != SL_OK ||
        grow((void **)&p->pending, &p->pending_cap, 0, sizeof(*p->pending)) != SL_OK) {
        return fail(p, SL_ENOMEM, "out of memory");
    }
    p->pending[0] = (struct flt_pending){.obj = root, .path = "$"};
    f->nodes[f->node_count++] = (struct flt_node){0};
    /* Breadth first: parse_node appends the children it finds. */
    for (uint32_t n = 0; n < f->node_count; n++) {
        int rc = parse_node(p, n);
        if (rc != SL_OK) {
            return rc;
        }
    }
    for (uint32_t n = 0; n < f->node_count; n++) {
        const struct flt_node *node = &f->nodes[n];
        SL_ASSERT(node->cond_first + node->cond_count <= f->cond_count);
        SL_ASSERT(node->or_first + node->or_count <= f->or_count);
    }
    for (uint32_t o = 0; o < f->or_count; o++) {
        SL_ASSERT(f->ors[o].node_first > 0 && f->ors[o].node_count > 0);
        SL_ASSERT(f->ors[o].node_first + f->ors[o].node_count <= f->node_count);
    }
    return SL_OK;
}

int sl_filter_parse(const char *json, size_t len, enum sl_filter_scope scope,
                    struct sl_filter **out, char *why, size_t why_len)
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
    if (scope != SL_FILTER_SCOPE_ATTRIBUTES && scope != SL_FILTER_SCOPE_BODY) {
        return fail(&p, SL_EINVAL, "unknown filter scope %d", (int)scope);
    }
    if (len > SL_FILTER_TEXT_MAX) {
        return fail(&p, SL_ETOOBIG, "pattern of %zu bytes, more than %u", len,
                    SL_FILTER_TEXT_MAX);
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
    int rc = SL_ENOMEM;
    if (p.f == NULL) {
        fail(&p, SL_ENOMEM, "out of memory");
    } else {
        p.f->scope = (uint8_t)scope;
        rc = parse_document(&p, root, len);
    }
    json_decref(root);
    free(p.pending);
    if (rc != SL_OK) {
        sl_filter_free(p.f);
        return rc;
    }
    *out = p.f;
    return SL_OK;
}

enum sl_filter_scope sl_filter_scope(const struct sl_filter *f)
{
    return (enum sl_filter_scope)f->scope;
}

void sl_filter_free(struct sl_filter *f)
{
    if (f == NULL) {
        return;
    }
    free(f->nodes);
    free(f->ors);
    free(f->conds);
    free(f->segs);
    free(f->alts);
    free(f->subs);
    free(f->arena);
    free(f);
}
