/* transform.c - a push target's body transform (see transform.h).
 *
 * Compile: the spec is parsed once (jansson); a template is cut into
 * segments - literal text, or a placeholder with the variable it names and
 * whether it sits inside a JSON string - so applying it is one pass over
 * the segments. Apply: the event is parsed once; each variable's path is
 * walked in that document; the output is built in a buffer that never
 * grows past SL_PUSH_TRANSFORM_OUT_MAX.
 *
 * Input is untrusted twice over (the spec from an API call, the event from
 * a producer): every type is checked, nothing is asserted about it; the
 * fuzz target fuzz_transform drives both.
 */
#include "broker/push/transform.h"

#include "common/assert.h"
#include "common/error.h"
#include "common/isotime.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TF_NAME_MAX     256u /* a variable's or a path step's name */
#define TF_SEGMENTS_MAX 4096u /* of one template: at most its length in placeholders */
#define TF_RULE_MAX     1600u

enum tf_kind { TF_INPUT = 1, TF_PATH = 2, TF_TEMPLATE = 3 };

enum tf_var { /* predefined variables come after the InputPathsMap ones */
    TF_VAR_EVENT = -1,
    TF_VAR_EVENT_JSON = -2,
    TF_VAR_RULE_NAME = -3,
    TF_VAR_RULE_ARN = -4,
    TF_VAR_INGESTION = -5,
};

struct tf_step {
    char *name;     /* NULL: an index step */
    size_t index;
};

struct tf_path {
    uint32_t n;
    struct tf_step steps[SL_PUSH_TRANSFORM_PATH_MAX];
};

struct tf_segment {
    const char *text; /* a literal (into the template copy), or NULL: a placeholder */
    size_t len;
    int var;          /* >= 0: paths[var]; < 0: enum tf_var */
    bool in_string;
};

struct sl_push_transform {
    enum tf_kind kind;
    char *input;    /* TF_INPUT: the constant; TF_TEMPLATE: the template's copy */
    size_t input_len;
    struct tf_path path; /* TF_PATH */
    uint32_t nvars;
    struct tf_path *paths; /* TF_TEMPLATE: per variable */
    char **names;
    uint32_t nseg;
    struct tf_segment *seg;
    bool json_template;
    char rule_name[TF_RULE_MAX + 1];
    char rule_arn[TF_RULE_MAX + 1];
};

void sl_push_transform_free(struct sl_push_transform *t)
{
    if (t == NULL) {
        return;
    }
    for (uint32_t i = 0; i < t->path.n; i++) {
        free(t->path.steps[i].name);
    }
    for (uint32_t v = 0; v < t->nvars; v++) {
        for (uint32_t i = 0; t->paths != NULL && i < t->paths[v].n; i++) {
            free(t->paths[v].steps[i].name);
        }
        free(t->names != NULL ? t->names[v] : NULL);
    }
    free(t->paths);
    free(t->names);
    free(t->seg);
    free(t->input);
    free(t);
}

static int fail(char *why, size_t why_len, const char *what, const char *detail)
{
    snprintf(why, why_len, "%s: %s", what, detail);
    return SL_EINVAL;
}

/* A JSONPath of the subset: "$", then .name, ['name'] or [index]. */
static int path_compile(const char *s, struct tf_path *p, const char *what, char *why,
                        size_t why_len)
{
    p->n = 0;
    if (s == NULL || s[0] != '$') {
        return fail(why, why_len, what, "a path starts with $ (e.g. $.detail.state)");
    }
    const char *c = s + 1;
    while (*c != '\0') {
        if (p->n >= SL_PUSH_TRANSFORM_PATH_MAX) {
            return fail(why, why_len, what, "the path has too many steps (at most 16)");
        }
        struct tf_step *st = &p->steps[p->n];
        size_t n = 0;
        const char *name = NULL;
        if (*c == '.') {
            name = c + 1;
            n = strcspn(name, ".[");
            c = name + n;
        } else if (c[0] == '[' && (c[1] == '\'' || c[1] == '"')) {
            char q = c[1];
            name = c + 2;
            const char *end = strchr(name, q);
            if (end == NULL || end[1] != ']') {
                return fail(why, why_len, what, "a ['name'] step is not closed");
            }
            n = (size_t)(end - name);
            c = end + 2;
        } else if (c[0] == '[' && c[1] >= '0' && c[1] <= '9') {
            char *end = NULL;
            unsigned long long k = strtoull(c + 1, &end, 10);
            if (end == NULL || *end != ']' || k > 1000000u) {
                return fail(why, why_len, what, "an [index] step needs a number and ]");
            }
            st->name = NULL;
            st->index = (size_t)k;
            p->n++;
            c = end + 1;
            continue;
        } else {
            return fail(why, why_len, what,
                        "after $ come .name, ['name'] or [index] steps (no wildcards or "
                        "filters)");
        }
        if (n == 0 || n > TF_NAME_MAX) {
            return fail(why, why_len, what, "a step's name is empty or too long");
        }
        st->name = strndup(name, n);
        if (st->name == NULL) {
            return SL_ENOMEM;
        }
        p->n++;
    }
    return SL_OK;
}

static const json_t *path_get(const json_t *doc, const struct tf_path *p)
{
    const json_t *v = doc;
    for (uint32_t i = 0; i < p->n && v != NULL; i++) {
        v = p->steps[i].name != NULL ? json_object_get(v, p->steps[i].name)
                                     : json_array_get(v, p->steps[i].index);
    }
    return v;
}

static int var_of(const struct sl_push_transform *t, const char *name, size_t n)
{
    static const struct {
        const char *name;
        int var;
    } predefined[] = {
        {"aws.events.event", TF_VAR_EVENT},
        {"aws.events.event.json", TF_VAR_EVENT_JSON},
        {"aws.events.rule-name", TF_VAR_RULE_NAME},
        {"aws.events.rule-arn", TF_VAR_RULE_ARN},
        {"aws.events.event.ingestion-time", TF_VAR_INGESTION},
    };
    for (size_t i = 0; i < sizeof(predefined) / sizeof(predefined[0]); i++) {
        if (strlen(predefined[i].name) == n && memcmp(predefined[i].name, name, n) == 0) {
            return predefined[i].var;
        }
    }
    for (uint32_t v = 0; v < t->nvars; v++) {
        if (strlen(t->names[v]) == n && memcmp(t->names[v], name, n) == 0) {
            return (int)v;
        }
    }
    return 0x7fffffff; /* none */
}

static void seg_literal(struct sl_push_transform *t, const char *from, const char *to)
{
    if (to > from) {
        t->seg[t->nseg++] = (struct tf_segment){.text = from, .len = (size_t)(to - from)};
    }
}

/* Cuts the template (t->input) into segments, tracking JSON strings. */
static int template_cut(struct sl_push_transform *t)
{
    const char *s = t->input;
    size_t len = t->input_len;
    size_t ws = strspn(s, " \t\r\n");
    t->json_template = s[ws] == '{' || s[ws] == '[' || s[ws] == '"';
    t->seg = calloc(len / 2 + 2, sizeof(*t->seg)); /* a placeholder takes >= 3 bytes */
    if (t->seg == NULL) {
        return SL_ENOMEM;
    }
    bool in_str = false, esc = false;
    const char *lit = s;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (t->json_template && in_str && esc) {
            esc = false;
            continue;
        }
        if (t->json_template && ch == '\\' && in_str) {
            esc = true;
            continue;
        }
        if (t->json_template && ch == '"') {
            in_str = !in_str;
            continue;
        }
        if (ch != '<') {
            continue;
        }
        size_t n = strcspn(s + i + 1, "<> \t\r\n\"");
        int var = s[i + 1 + n] == '>' ? var_of(t, s + i + 1, n) : 0x7fffffff;
        if (var == 0x7fffffff) {
            continue; /* not a variable: stays as written */
        }
        seg_literal(t, lit, s + i);
        t->seg[t->nseg++] = (struct tf_segment){.var = var, .in_string = in_str};
        i += n + 1;
        lit = s + i + 1;
    }
    seg_literal(t, lit, s + len);
    SL_ASSERT(t->nseg <= len / 2 + 2);
    return SL_OK;
}

static int compile_transformer(struct sl_push_transform *t, const json_t *it, char *why,
                               size_t why_len)
{
    const json_t *map = json_object_get(it, "InputPathsMap");
    const json_t *tpl = json_object_get(it, "InputTemplate");
    if (!json_is_string(tpl)) {
        return fail(why, why_len, "InputTransformer.InputTemplate", "a string is required");
    }
    if (map != NULL && !json_is_object(map)) {
        return fail(why, why_len, "InputTransformer.InputPathsMap",
                    "an object of variable: path");
    }
    if (json_object_size(map) > SL_PUSH_TRANSFORM_VARS_MAX) {
        return fail(why, why_len, "InputTransformer.InputPathsMap", "at most 100 variables");
    }
    t->kind = TF_TEMPLATE;
    size_t nv = json_object_size(map);
    t->paths = calloc(nv + 1, sizeof(*t->paths));
    t->names = calloc(nv + 1, sizeof(*t->names));
    if (t->paths == NULL || t->names == NULL) {
        return SL_ENOMEM;
    }
    const char *name;
    const json_t *path;
    json_object_foreach((json_t *)map, name, path)
    {
        char what[TF_NAME_MAX + 64];
        snprintf(what, sizeof(what), "InputPathsMap.%.256s", name);
        size_t n = strlen(name);
        if (n == 0 || n > TF_NAME_MAX || strcspn(name, "<> \t\r\n\"") != n ||
            strncmp(name, "aws.", 4) == 0) {
            return fail(why, why_len, what,
                        "a variable's name is 1-256 characters without <, >, quotes or spaces, "
                        "and does not start with aws. (reserved)");
        }
        t->names[t->nvars] = strdup(name);
        if (t->names[t->nvars] == NULL) {
            return SL_ENOMEM;
        }
        t->nvars++;
        int rc = path_compile(json_string_value(path), &t->paths[t->nvars - 1], what, why,
                              why_len);
        if (rc != SL_OK) {
            return rc;
        }
    }
    t->input_len = json_string_length(tpl);
    t->input = t->input_len <= SL_PUSH_TRANSFORM_SPEC_MAX
                   ? strndup(json_string_value(tpl), t->input_len)
                   : NULL;
    if (t->input == NULL || memchr(t->input, '\0', t->input_len) != NULL) {
        return t->input == NULL ? SL_ENOMEM
                                : fail(why, why_len, "InputTemplate", "holds a NUL character");
    }
    return template_cut(t);
}

static int compile_doc(struct sl_push_transform *t, const json_t *d, char *why, size_t why_len)
{
    const json_t *input = json_object_get(d, "Input");
    const json_t *path = json_object_get(d, "InputPath");
    const json_t *it = json_object_get(d, "InputTransformer");
    if ((input != NULL) + (path != NULL) + (it != NULL) != 1) {
        return fail(why, why_len, "the transform",
                    "give exactly one of Input, InputPath and InputTransformer");
    }
    const char *rn = json_string_value(json_object_get(d, "RuleName"));
    const char *ra = json_string_value(json_object_get(d, "RuleArn"));
    snprintf(t->rule_name, sizeof(t->rule_name), "%s", rn != NULL ? rn : "");
    snprintf(t->rule_arn, sizeof(t->rule_arn), "%s", ra != NULL ? ra : "");
    if (input != NULL) {
        json_t *v = json_is_string(input) ? json_loads(json_string_value(input),
                                                       JSON_DECODE_ANY, NULL)
                                          : NULL;
        json_decref(v);
        if (v == NULL) {
            return fail(why, why_len, "Input", "must be a string holding valid JSON text");
        }
        t->kind = TF_INPUT;
        t->input_len = json_string_length(input);
        t->input = strndup(json_string_value(input), t->input_len);
        return t->input != NULL ? SL_OK : SL_ENOMEM;
    }
    if (path != NULL) {
        t->kind = TF_PATH;
        return path_compile(json_string_value(path), &t->path, "InputPath", why, why_len);
    }
    if (!json_is_object(it)) {
        return fail(why, why_len, "InputTransformer", "an object with InputTemplate");
    }
    return compile_transformer(t, it, why, why_len);
}

int sl_push_transform_compile(const char *spec, size_t len, struct sl_push_transform **out,
                              char *why, size_t why_len)
{
    *out = NULL;
    if (len > SL_PUSH_TRANSFORM_SPEC_MAX) {
        snprintf(why, why_len, "the transform is %zu bytes, past %u", len,
                 SL_PUSH_TRANSFORM_SPEC_MAX);
        return SL_ETOOBIG;
    }
    json_error_t je;
    json_t *d = json_loadb(spec, len, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(d)) {
        json_decref(d);
        return fail(why, why_len, "the transform", "not a JSON object");
    }
    struct sl_push_transform *t = calloc(1, sizeof(*t));
    int rc = t == NULL ? SL_ENOMEM : compile_doc(t, d, why, why_len);
    json_decref(d);
    if (rc != SL_OK) {
        if (rc == SL_ENOMEM) {
            snprintf(why, why_len, "out of memory");
        }
        sl_push_transform_free(t);
        return rc;
    }
    *out = t;
    return SL_OK;
}

/* ---- apply ---- */

struct tf_out {
    char *buf;
    size_t len, cap;
    bool over;  /* past SL_PUSH_TRANSFORM_OUT_MAX */
    bool nomem;
};

static void put(struct tf_out *o, const char *s, size_t n)
{
    if (o->over || o->len + n > SL_PUSH_TRANSFORM_OUT_MAX) {
        o->over = true;
        return;
    }
    if (o->len + n + 1 > o->cap) {
        size_t cap = o->cap * 2 > o->len + n + 1 ? o->cap * 2 : o->len + n + 1;
        cap = cap > SL_PUSH_TRANSFORM_OUT_MAX + 1 ? SL_PUSH_TRANSFORM_OUT_MAX + 1 : cap;
        char *b = realloc(o->buf, cap);
        if (b == NULL) {
            o->over = o->nomem = true;
            free(o->buf);
            o->buf = NULL;
            o->cap = 0;
            return;
        }
        o->buf = b;
        o->cap = cap;
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
    o->buf[o->len] = '\0';
}

/* A value as JSON text, or (`text`) a string's own characters, escaped
 * (`escape`, inside a JSON string) or raw. */
static void put_value(struct tf_out *o, const json_t *v, bool text, bool escape)
{
    if (v == NULL) {
        put(o, text ? "" : "null", text ? 0 : 4);
        return;
    }
    if (text && json_is_string(v) && !escape) {
        put(o, json_string_value(v), json_string_length(v));
        return;
    }
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (s == NULL) {
        o->over = o->nomem = true;
        return;
    }
    size_t n = strlen(s);
    if (text && json_is_string(v)) {
        put(o, s + 1, n - 2); /* without its quotes */
    } else {
        put(o, s, n);
    }
    free(s);
}

static void put_var(struct tf_out *o, const struct sl_push_transform *t, const json_t *doc,
                    const struct tf_segment *sg, const char *event, size_t len,
                    uint64_t ingestion_ms)
{
    bool text = sg->in_string || !t->json_template;
    bool escape = sg->in_string && t->json_template;
    json_t *tmp = NULL;
    const json_t *v = NULL;
    char when[SL_ISOTIME_FORMAT_MAX];
    switch (sg->var) {
    case TF_VAR_EVENT_JSON:
        put(o, event, len);
        return;
    case TF_VAR_EVENT:
        tmp = json_copy((json_t *)doc);
        json_object_del(tmp, "detail");
        v = tmp;
        break;
    case TF_VAR_RULE_NAME: v = tmp = json_string(t->rule_name); break;
    case TF_VAR_RULE_ARN: v = tmp = json_string(t->rule_arn); break;
    case TF_VAR_INGESTION:
        sl_time_format_iso8601(ingestion_ms, true, when);
        v = tmp = json_string(when);
        break;
    default:
        SL_ASSERT(sg->var >= 0 && (uint32_t)sg->var < t->nvars);
        v = path_get(doc, &t->paths[sg->var]);
        break;
    }
    put_value(o, v, text, escape);
    json_decref(tmp);
}

int sl_push_transform_apply(const struct sl_push_transform *t, const char *event, size_t len,
                            uint64_t ingestion_ms, char **out, size_t *out_len)
{
    SL_ASSERT(t != NULL && out != NULL && out_len != NULL);
    *out = NULL;
    struct tf_out o = {0};
    if (t->kind == TF_INPUT) {
        put(&o, t->input, t->input_len);
    } else {
        json_t *doc = memchr(event, '\0', len) == NULL ? json_loadb(event, len, 0, NULL) : NULL;
        if (doc == NULL) { /* integers past int64: read as reals */
            doc = memchr(event, '\0', len) == NULL
                      ? json_loadb(event, len, JSON_DECODE_INT_AS_REAL, NULL)
                      : NULL;
        }
        if (!json_is_object(doc)) {
            json_decref(doc);
            return SL_EINVAL;
        }
        if (t->kind == TF_PATH) {
            put_value(&o, path_get(doc, &t->path), false, false);
        }
        for (uint32_t i = 0; t->kind == TF_TEMPLATE && i < t->nseg; i++) {
            const struct tf_segment *sg = &t->seg[i];
            if (sg->text != NULL) {
                put(&o, sg->text, sg->len);
            } else {
                put_var(&o, t, doc, sg, event, len, ingestion_ms);
            }
        }
        json_decref(doc);
    }
    if (o.over) {
        free(o.buf);
        return o.nomem ? SL_ENOMEM : SL_ETOOBIG;
    }
    if (o.buf == NULL) { /* an empty output */
        o.buf = calloc(1, 1);
        if (o.buf == NULL) {
            return SL_ENOMEM;
        }
    }
    *out = o.buf;
    *out_len = o.len;
    return SL_OK;
}
