/* rest_parse.c - the console API's decoders (see rest_parse.h). */
#include "broker/api/rest_parse.h"

#include "common/error.h"
#include "common/isotime.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool sl_rest_u64(const char *s, uint64_t *out)
{
    if (s[0] < '0' || s[0] > '9') {
        return false;
    }
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    *out = v;
    return errno == 0 && *end == '\0';
}

bool sl_rest_position_of(const char *from, uint32_t limit, uint64_t first_seq, uint64_t next_seq,
                         struct sl_position *pos)
{
    uint64_t v = 0;
    if (from == NULL || strcmp(from, "oldest") == 0) {
        *pos = (struct sl_position){.kind = SL_POS_TRIM_HORIZON};
    } else if (strcmp(from, "latest") == 0) {
        uint64_t n = next_seq > first_seq ? next_seq - first_seq : 0;
        *pos = (struct sl_position){.kind = SL_POS_AT_SEQ,
                                    .seq = next_seq - (n < limit ? n : limit)};
    } else if (strncmp(from, "seq:", 4) == 0 && sl_rest_u64(from + 4, &v)) {
        *pos = (struct sl_position){.kind = SL_POS_AT_SEQ, .seq = v};
    } else if (strncmp(from, "time_ms:", 8) == 0 && sl_rest_u64(from + 8, &v)) {
        *pos = (struct sl_position){.kind = SL_POS_AT_TIME, .time_ms = v};
    } else if (strncmp(from, "time:", 5) == 0 && sl_time_parse_iso8601(from + 5, &v) == SL_OK) {
        *pos = (struct sl_position){.kind = SL_POS_AT_TIME, .time_ms = v};
    } else {
        return false;
    }
    return true;
}

static int pos_cmp(const void *a, const void *b)
{
    const struct sl_rest_pos *x = a, *y = b;
    if (x->shard != y->shard) {
        return x->shard < y->shard ? -1 : 1;
    }
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* A sequence as a JSON integer (exact up to 2^53) or a decimal string. */
static bool seq_of(json_t *v, uint64_t *out)
{
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        *out = (uint64_t)json_integer_value(v);
        return true;
    }
    return json_is_string(v) && sl_rest_u64(json_string_value(v), out);
}

int sl_rest_selection_of(json_t *body, struct sl_rest_pos *out, uint32_t *n, char *why,
                         size_t cap)
{
    *n = 0;
    json_t *recs = json_is_object(body) ? json_object_get(body, "records") : NULL;
    if (recs == NULL || json_is_null(recs)) {
        return SL_OK;
    }
    if (!json_is_array(recs) || json_array_size(recs) == 0 ||
        json_array_size(recs) > SL_REST_SELECT_MAX) {
        snprintf(why, cap, "\"records\" is an array of 1 to %u {\"shard\": N, \"seq\": N}",
                 SL_REST_SELECT_MAX);
        return SL_EINVAL;
    }
    size_t i;
    json_t *r;
    json_array_foreach(recs, i, r)
    {
        json_t *shard = json_object_get(r, "shard");
        uint64_t seq;
        if (!json_is_integer(shard) || json_integer_value(shard) < 0 ||
            json_integer_value(shard) > (json_int_t)UINT32_MAX ||
            !seq_of(json_object_get(r, "seq"), &seq)) {
            snprintf(why, cap, "records[%zu] is not {\"shard\": N, \"seq\": N}", i);
            return SL_EINVAL;
        }
        out[i] = (struct sl_rest_pos){.shard = (uint32_t)json_integer_value(shard), .seq = seq};
    }
    size_t k = json_array_size(recs);
    qsort(out, k, sizeof(*out), pos_cmp);
    for (i = 1; i < k; i++) {
        if (pos_cmp(&out[i - 1], &out[i]) == 0) {
            snprintf(why, cap, "record %u#%llu is named twice", out[i].shard,
                     (unsigned long long)out[i].seq);
            return SL_EINVAL;
        }
    }
    *n = (uint32_t)k;
    return SL_OK;
}

int sl_rest_selection_find(const struct sl_rest_pos *sel, uint32_t n, uint32_t shard,
                           uint64_t seq)
{
    struct sl_rest_pos key = {.shard = shard, .seq = seq};
    const struct sl_rest_pos *hit = bsearch(&key, sel, n, sizeof(*sel), pos_cmp);
    return hit != NULL ? (int)(hit - sel) : -1;
}

int sl_rest_record_of(json_t *body, struct sl_record *rec, struct sl_attr *attrs, char *why,
                      size_t cap)
{
    json_t *key = json_object_get(body, "key");
    json_t *value = json_object_get(body, "value");
    json_t *at = json_object_get(body, "attributes");
    if (!json_is_string(value) || (key != NULL && !json_is_string(key) && !json_is_null(key)) ||
        (at != NULL && !json_is_object(at) && !json_is_null(at))) {
        snprintf(why, cap, "the body is {\"value\": string, \"key\": string (optional), "
                           "\"attributes\": {name: string} (optional)}");
        return SL_EINVAL;
    }
    *rec = (struct sl_record){.value = json_string_value(value),
                              .value_len = (uint32_t)json_string_length(value),
                              .attrs = attrs};
    if (json_is_string(key) && json_string_length(key) > 0) {
        rec->key = json_string_value(key);
        rec->key_len = (uint32_t)json_string_length(key);
    }
    if (rec->key_len > SL_RECORD_KEY_MAX) {
        snprintf(why, cap, "a key is at most %u bytes", SL_RECORD_KEY_MAX);
        return SL_EINVAL;
    }
    const char *name;
    json_t *v;
    json_object_foreach(at, name, v)
    {
        if (rec->attr_count == SL_RECORD_ATTRS_MAX || !json_is_string(v) ||
            strlen(name) == 0 || strlen(name) > SL_RECORD_ATTR_KEY_MAX ||
            json_string_length(v) > SL_RECORD_ATTR_VALUE_MAX) {
            snprintf(why, cap,
                     "attributes: at most %u, each a name of 1 to %u bytes and a string value of "
                     "at most %u bytes",
                     SL_RECORD_ATTRS_MAX, SL_RECORD_ATTR_KEY_MAX, SL_RECORD_ATTR_VALUE_MAX);
            return SL_EINVAL;
        }
        attrs[rec->attr_count++] = (struct sl_attr){
            .key = name, .key_len = (uint32_t)strlen(name), .value = json_string_value(v),
            .value_len = (uint32_t)json_string_length(v)};
    }
    return SL_OK;
}

/* ---- record filters ------------------------------------------------------------- */

bool sl_rest_filter_attr(struct sl_rest_filter *f, char *text)
{
    char *eq = strchr(text, '=');
    if (eq == NULL || eq == text) {
        return false;
    }
    *eq = '\0';
    f->attr_name = text;
    f->attr_value = eq + 1;
    return true;
}

/* The next path step at *p: a member name into name (cap bytes) or an
 * index; false at the end or on a malformed step. */
static bool jpath_step(const char **p, char *name, size_t cap, long *index)
{
    const char *s = *p;
    if (*s == '.') {
        s++;
    }
    *index = -1;
    if (*s == '[') {
        char *end = NULL;
        long v = strtol(s + 1, &end, 10);
        if (end == s + 1 || *end != ']' || v < 0 || v > 1000000) {
            return false;
        }
        *index = v;
        *p = end + 1;
        return true;
    }
    size_t n = strcspn(s, ".[");
    if (n == 0 || n >= cap) {
        return false;
    }
    memcpy(name, s, n);
    name[n] = '\0';
    *p = s + n;
    return true;
}

bool sl_rest_jpath_ok(const char *path)
{
    char name[SL_REST_FILTER_TEXT_MAX];
    long index;
    uint32_t depth = 0;
    const char *p = path;
    if (*p == '\0') {
        return false;
    }
    while (*p != '\0') {
        if (++depth > SL_REST_JPATH_DEPTH_MAX || !jpath_step(&p, name, sizeof(name), &index)) {
            return false;
        }
        if (*p != '\0' && *p != '.' && *p != '[') {
            return false;
        }
    }
    return true;
}

static bool json_path_match(const uint8_t *value, uint32_t len, const char *path,
                            const char *want)
{
    json_error_t err;
    json_t *root = json_loadb((const char *)value, len, JSON_DECODE_ANY, &err);
    json_t *j = root;
    const char *p = path;
    char name[SL_REST_FILTER_TEXT_MAX];
    long index;
    while (j != NULL && *p != '\0') {
        if (!jpath_step(&p, name, sizeof(name), &index)) {
            j = NULL;
        } else if (index >= 0) {
            j = json_is_array(j) ? json_array_get(j, (size_t)index) : NULL;
        } else {
            j = json_is_object(j) ? json_object_get(j, name) : NULL;
        }
    }
    bool ok = j != NULL;
    if (ok && want != NULL) {
        if (json_is_string(j)) {
            ok = strcmp(json_string_value(j), want) == 0;
        } else if (json_is_object(j) || json_is_array(j)) {
            ok = false;
        } else {
            char *text = json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT);
            ok = text != NULL && strcmp(text, want) == 0;
            free(text);
        }
    }
    json_decref(root);
    return ok;
}

bool sl_rest_filter_set(const struct sl_rest_filter *f)
{
    return f->key != NULL || f->attr_name != NULL || f->contains != NULL || f->jpath != NULL;
}

bool sl_rest_filter_match(const struct sl_rest_filter *f, const struct sl_record_view *r)
{
    if (f->key != NULL &&
        (r->key_len != strlen(f->key) || memcmp(r->key, f->key, r->key_len) != 0)) {
        return false;
    }
    if (f->attr_name != NULL) {
        uint32_t pos = 0;
        struct sl_attr a;
        bool found = false;
        size_t nl = strlen(f->attr_name), vl = strlen(f->attr_value);
        while (!found && sl_record_attr_next(r, &pos, &a) == 1) {
            found = a.key_len == nl && memcmp(a.key, f->attr_name, nl) == 0 &&
                    a.value_len == vl && memcmp(a.value, f->attr_value, vl) == 0;
        }
        if (!found) {
            return false;
        }
    }
    if (f->contains != NULL && f->contains[0] != '\0' &&
        memmem(r->value, r->value_len, f->contains, strlen(f->contains)) == NULL) {
        return false;
    }
    return f->jpath == NULL || json_path_match(r->value, r->value_len, f->jpath, f->jvalue);
}
