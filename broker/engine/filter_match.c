/* filter_match.c - matches a compiled pattern against a record (see filter.h;
 * filter_parse.c states the rules).
 *
 * A field's values: in attribute scope, the first attribute with the key
 * (a string; number alternatives read it as a number); in body scope, every
 * scalar at the field's path of the value read as JSON (arrays spread: any
 * element may match). A condition holds when some value satisfies some
 * alternative; {"exists": b} looks only at whether the field has values.
 *
 * The body is read once per subject (sl_jsonflat) and shared by every filter
 * matched against it. The tree walk recurses once per "$or" level, bounded by
 * SL_FILTER_OR_DEPTH_MAX.
 */
#include "broker/engine/filter_int.h"

#include "broker/msgid.h"

#include "common/assert.h"
#include "common/error.h"
#include "common/jsonflat.h"
#include "storage/batch.h"

#include <arpa/inet.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* One value of a field, with an attribute's number parsed on demand. */
struct subject_value {
    const struct sl_jsonflat_value *v;
    bool lenient;   /* attribute scope: a string may be read as a number */
    int8_t numeric; /* lenient: -1 not parsed yet, 0 not a number, 1 `num` holds it */
    double num;
};

void sl_filter_subject_init(struct sl_filter_subject *s)
{
    memset(s, 0, sizeof(*s));
    s->body_state = -1;
}

void sl_filter_subject_fini(struct sl_filter_subject *s)
{
    sl_jsonflat_free(s->body);
    s->body = NULL;
    sl_jsonflat_free(s->array);
    s->array = NULL;
}

void sl_filter_subject_set(struct sl_filter_subject *s, const struct sl_record_view *rec)
{
    s->rec = rec;
    s->body_state = -1;
}

/* ---- numbers and strings ---- */

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

static bool value_number(struct subject_value *sv, double *out)
{
    if (sv->v->type == SL_JSON_NUMBER) {
        *out = sv->v->num;
        return sv->v->num_ok;
    }
    if (!sv->lenient || sv->v->type != SL_JSON_STRING) {
        return false;
    }
    if (sv->numeric < 0) {
        sv->numeric = number_parse(sv->v->s, sv->v->len, &sv->num) ? 1 : 0;
    }
    *out = sv->num;
    return sv->numeric == 1;
}

static unsigned char fold(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

static bool bytes_equal(const char *a, const char *b, uint32_t len, bool folded)
{
    if (!folded) {
        return memcmp(a, b, len) == 0;
    }
    for (uint32_t i = 0; i < len; i++) {
        if (fold((unsigned char)a[i]) != fold((unsigned char)b[i])) {
            return false;
        }
    }
    return true;
}

/* '*' = any run; "\*" and "\\" stand for themselves. Greedy with one
 * backtrack point: O(len(s) x len(p)) at worst, linear in practice. */
static bool wildcard_match(const char *s, uint32_t slen, const char *p, uint32_t plen)
{
    uint32_t si = 0, pi = 0, star_pi = UINT32_MAX, star_si = 0;
    while (si < slen) {
        if (pi < plen && p[pi] == '*') {
            star_pi = pi++;
            star_si = si;
            continue;
        }
        uint32_t lit_at = pi < plen && p[pi] == '\\' ? pi + 1 : pi;
        if (lit_at < plen && p[lit_at] == s[si]) {
            pi = lit_at + 1;
            si++;
            continue;
        }
        if (star_pi == UINT32_MAX) {
            return false;
        }
        pi = star_pi + 1;
        si = ++star_si;
    }
    while (pi < plen && p[pi] == '*') {
        pi++;
    }
    return pi == plen;
}

static bool cidr_match(const struct flt_alt *a, const char *s, uint32_t len)
{
    char buf[64];
    uint8_t addr[16];
    if (len >= sizeof(buf)) {
        return false;
    }
    memcpy(buf, s, len);
    buf[len] = '\0';
    if (inet_pton(a->cidr_family == 4 ? AF_INET : AF_INET6, buf, addr) != 1) {
        return false;
    }
    uint32_t full = a->cidr_bits / 8u, rest = a->cidr_bits % 8u;
    if (memcmp(addr, a->cidr_addr, full) != 0) {
        return false;
    }
    uint8_t mask = (uint8_t)(0xFFu << (8u - rest));
    return rest == 0 || (addr[full] & mask) == (a->cidr_addr[full] & mask);
}

static bool compare(double v, uint8_t op, double x)
{
    switch (op) {
    case FLT_CMP_EQ:
        return v == x;
    case FLT_CMP_LT:
        return v < x;
    case FLT_CMP_LE:
        return v <= x;
    case FLT_CMP_GT:
        return v > x;
    case FLT_CMP_GE:
        return v >= x;
    }
    SL_ASSERT(!"unknown comparison");
    return false;
}

/* ---- alternatives ---- */

/* The string operators; false for a value that is not a string. */
static bool string_holds(const struct flt_alt *a, const struct sl_jsonflat_value *v)
{
    if (v->type != SL_JSON_STRING) {
        return false;
    }
    switch (a->op) {
    case FLT_EXACT:
        return v->len == a->len && memcmp(v->s, a->s, a->len) == 0;
    case FLT_PREFIX:
        return v->len >= a->len && bytes_equal(v->s, a->s, a->len, a->fold);
    case FLT_SUFFIX:
        return v->len >= a->len && bytes_equal(v->s + (v->len - a->len), a->s, a->len, a->fold);
    case FLT_IGNORE_CASE:
        return v->len == a->len && bytes_equal(v->s, a->s, a->len, true);
    case FLT_WILDCARD:
        return wildcard_match(v->s, v->len, a->s, a->len);
    case FLT_CIDR:
        return cidr_match(a, v->s, v->len);
    }
    return false;
}

static bool alt_holds(const struct sl_filter *f, const struct flt_alt *a,
                      struct subject_value *sv)
{
    double d;
    switch (a->op) {
    case FLT_NUMBER:
        return value_number(sv, &d) && d == a->num;
    case FLT_NULL:
        return sv->v->type == SL_JSON_NULL;
    case FLT_TRUE:
        return sv->v->type == SL_JSON_TRUE;
    case FLT_FALSE:
        return sv->v->type == SL_JSON_FALSE;
    case FLT_NUMERIC:
        if (!value_number(sv, &d)) {
            return false;
        }
        for (uint32_t i = 0; i < a->cmp_count; i++) {
            if (!compare(d, a->cmp_op[i], a->cmp_val[i])) {
                return false;
            }
        }
        return true;
    case FLT_BUT:
        for (uint32_t i = 0; i < a->sub_count; i++) {
            if (alt_holds(f, &f->subs[a->sub_first + i], sv)) { /* subs hold no FLT_BUT */
                return false;
            }
        }
        return true;
    case FLT_EXISTS:
        SL_ASSERT(!"exists is decided per field");
        return false;
    default:
        return string_holds(a, sv->v);
    }
}

/* ---- fields ---- */

/* The first value of a condition's field in `s`, SL_JSONFLAT_NONE if absent;
 * false when the body cannot be read (no field can hold). */
const struct sl_jsonflat *flt_subject_body(struct sl_filter_subject *s)
{
    SL_ASSERT(s->rec != NULL);
    if (s->body_state < 0) {
        s->body_state = 0;
        if (s->body == NULL) {
            s->body = sl_jsonflat_new();
        }
        if (s->body != NULL &&
            sl_jsonflat_load(s->body, (const char *)s->rec->value, s->rec->value_len) == SL_OK) {
            s->body_state = 1;
        }
    }
    return s->body_state == 1 ? s->body : NULL;
}

static bool body_field(const struct sl_filter *f, const struct flt_cond *c,
                       struct sl_filter_subject *s, uint32_t *first)
{
    if (flt_subject_body(s) == NULL) {
        return false;
    }
    uint32_t path = SL_JSONFLAT_ROOT;
    for (uint32_t i = 0; i < c->seg_count && path != SL_JSONFLAT_NONE; i++) {
        const struct flt_seg *seg = &f->segs[c->seg_first + i];
        path = sl_jsonflat_child(s->body, path, seg->s, seg->len);
    }
    *first = path != SL_JSONFLAT_NONE ? sl_jsonflat_first(s->body, path) : SL_JSONFLAT_NONE;
    return true;
}

/* Whether alternative `a` holds for one of the values from `first` on (a
 * field's values in a flattened document, each with its JSON type). */
static bool values_hold(const struct sl_filter *f, const struct flt_alt *a,
                        const struct sl_jsonflat *jf, uint32_t first)
{
    for (uint32_t v = first; v != SL_JSONFLAT_NONE;) {
        const struct sl_jsonflat_value *jv = sl_jsonflat_value(jf, v);
        struct subject_value sv = {.v = jv};
        if (alt_holds(f, a, &sv)) {
            return true;
        }
        v = jv->next;
    }
    return false;
}

static bool cond_holds_body(const struct sl_filter *f, const struct flt_cond *c,
                            struct sl_filter_subject *s)
{
    uint32_t first;
    if (!body_field(f, c, s, &first)) {
        return false;
    }
    for (uint32_t i = 0; i < c->alt_count; i++) {
        const struct flt_alt *a = &f->alts[c->alt_first + i];
        if (a->op == FLT_EXISTS) {
            if ((first != SL_JSONFLAT_NONE) == a->exists) {
                return true;
            }
            continue;
        }
        if (values_hold(f, a, s->body, first)) {
            return true;
        }
    }
    return false;
}

/* Message attribute K as the SQS and SNS APIs store it: record attribute
 * "sqs:K" = data type, NUL, value (broker/msgid.h). A pattern on K reads its
 * value when the record has no attribute K itself, so an SNS FilterPolicy
 * on MessageAttributes works on what Publish and SendMessage store. */
static bool typed_attr(const struct sl_record_view *rec, const char *name, size_t len,
                       struct sl_jsonflat_value *v, bool *array)
{
    const size_t pl = sizeof(SL_SQS_ATTR_PREFIX) - 1;
    struct sl_attr attr;
    uint32_t pos = 0;
    while (sl_record_attr_next(rec, &pos, &attr)) {
        if (attr.key_len != pl + len || memcmp(attr.key, SL_SQS_ATTR_PREFIX, pl) != 0 ||
            memcmp((const char *)attr.key + pl, name, len) != 0) {
            continue;
        }
        const char *nul = memchr(attr.value, '\0', attr.value_len);
        if (nul == NULL) {
            return false; /* not what the APIs write: not this attribute */
        }
        v->s = nul + 1;
        v->len = attr.value_len - (uint32_t)(nul + 1 - (const char *)attr.value);
        static const char arr[] = "String.Array";
        *array = (size_t)(nul - (const char *)attr.value) == sizeof(arr) - 1 &&
                 memcmp(attr.value, arr, sizeof(arr) - 1) == 0;
        return true;
    }
    return false;
}

bool flt_attr_value(const struct sl_record_view *rec, const char *key, uint32_t key_len,
                    struct sl_jsonflat_value *v, bool *array)
{
    *v = (struct sl_jsonflat_value){.type = SL_JSON_STRING, .next = SL_JSONFLAT_NONE};
    *array = false;
    struct sl_attr attr;
    uint32_t pos = 0;
    while (sl_record_attr_next(rec, &pos, &attr)) {
        if (attr.key_len == key_len && memcmp(attr.key, key, key_len) == 0) {
            v->s = attr.value; /* the first occurrence counts */
            v->len = attr.value_len;
            return true;
        }
    }
    return typed_attr(rec, key, key_len, v, array);
}

uint32_t flt_attr_elements(struct sl_filter_subject *s, const struct sl_jsonflat_value *v,
                           const struct sl_jsonflat **jf)
{
    /* {"v": <the array>}: the flattener reads objects; an attribute is at most
     * SL_RECORD_ATTR_VALUE_MAX bytes, so the copy is on the stack */
    char doc[SL_RECORD_ATTR_VALUE_MAX + 8];
    *jf = NULL;
    if (v->len > SL_RECORD_ATTR_VALUE_MAX ||
        (s->array == NULL && (s->array = sl_jsonflat_new()) == NULL)) {
        return SL_JSONFLAT_NONE;
    }
    memcpy(doc, "{\"v\":", 5);
    memcpy(doc + 5, v->s, v->len);
    doc[5 + v->len] = '}';
    if (sl_jsonflat_load(s->array, doc, v->len + 6) != SL_OK) {
        return SL_JSONFLAT_NONE;
    }
    *jf = s->array;
    uint32_t at = sl_jsonflat_child(s->array, SL_JSONFLAT_ROOT, "v", 1);
    return at != SL_JSONFLAT_NONE ? sl_jsonflat_first(s->array, at) : SL_JSONFLAT_NONE;
}

static bool cond_holds_attrs(const struct sl_filter *f, const struct flt_cond *c,
                             struct sl_filter_subject *s)
{
    SL_ASSERT(c->seg_count == 1);
    const struct flt_seg *key = &f->segs[c->seg_first];
    struct sl_jsonflat_value v;
    bool array = false;
    bool present = flt_attr_value(s->rec, key->s, key->len, &v, &array);
    struct subject_value sv = {.v = &v, .lenient = true, .numeric = -1};
    const struct sl_jsonflat *jf = NULL;
    uint32_t first = array ? flt_attr_elements(s, &v, &jf) : SL_JSONFLAT_NONE;
    for (uint32_t i = 0; i < c->alt_count; i++) {
        const struct flt_alt *a = &f->alts[c->alt_first + i];
        if (a->op == FLT_EXISTS) {
            if (present == a->exists) {
                return true;
            }
            continue;
        }
        if (present && !array && alt_holds(f, a, &sv)) {
            return true;
        }
        /* String.Array (SNS): a condition holds when it holds for one element,
         * each element with its JSON type (as a body array's) */
        if (values_hold(f, a, jf, first)) {
            return true;
        }
    }
    return false;
}

static bool node_holds(const struct sl_filter *f, uint32_t n, struct sl_filter_subject *s,
                       uint32_t depth)
{
    SL_ASSERT(depth <= SL_FILTER_OR_DEPTH_MAX);
    const struct flt_node *node = &f->nodes[n];
    for (uint32_t i = 0; i < node->cond_count; i++) {
        const struct flt_cond *c = &f->conds[node->cond_first + i];
        bool ok = f->scope == SL_FILTER_SCOPE_BODY ? cond_holds_body(f, c, s)
                                                   : cond_holds_attrs(f, c, s);
        if (!ok) {
            return false;
        }
    }
    for (uint32_t o = 0; o < node->or_count; o++) {
        const struct flt_or *group = &f->ors[node->or_first + o];
        bool any = false;
        for (uint32_t k = 0; k < group->node_count && !any; k++) {
            any = node_holds(f, group->node_first + k, s, depth + 1);
        }
        if (!any) {
            return false;
        }
    }
    return true;
}

bool sl_filter_match(const struct sl_filter *f, struct sl_filter_subject *s)
{
    SL_ASSERT(f != NULL && s != NULL && s->rec != NULL);
    SL_ASSERT(f->node_count > 0);
    return node_holds(f, 0, s, 0);
}
