/* kinesis_cbor.c - the Kinesis API's application/x-amz-cbor-1.1 bodies (the
 * Java SDK's and the KCL's default), through libcbor (the only module that
 * includes cbor.h).
 *
 * CBOR is translated at the edges so the operations see one format: a
 * request body becomes the json_t its JSON twin would parse to (byte
 * strings - Data - become base64 text, tag 1 epoch times become numbers of
 * seconds), and an answer's JSON text becomes CBOR on the way out ("Data"
 * base64 text back to a byte string, the *Timestamp members to tag 1 with
 * float seconds). The double pass costs memory proportional to the answer;
 * it is bounded by the body and answer limits.
 *
 * Depth: requests nest at most CBOR_DEPTH_MAX levels (Kinesis requests use
 * 3); the converters recurse on that bound only.
 * Memory: libcbor's cbor_load allocates a container for the count its
 * header declares before reading any item, so a 9-byte body could ask for
 * gigabytes (found by fuzz_kinesis). The body is first scanned with the
 * streaming decoder (no allocation): every item takes at least one byte,
 * so the counts declared by all containers together may not exceed the
 * body's length, which bounds cbor_load's memory by O(body).
 * Threading: none of its own (the main loop). Ownership per function.
 */
#include "broker/api/kinesis_cbor.h"

#include "broker/api/kinesis_codec.h"
#include "common/assert.h"
#include "common/base64.h"
#include "common/error.h"

#include <cbor.h>
#include <stdlib.h>
#include <string.h>

#define CBOR_DEPTH_MAX 8u
#define CBOR_TAG_EPOCH 1u
#define CBOR_KEY_MAX   256u

/* ---- CBOR -> json_t ----------------------------------------------------------- */

static json_t *from_cbor(const cbor_item_t *it, uint32_t depth);

/* A definite or chunked (indefinite) string's bytes, as one owned buffer. */
static uint8_t *string_bytes(const cbor_item_t *it, size_t *len)
{
    bool bytes = cbor_isa_bytestring(it);
    bool definite = bytes ? cbor_bytestring_is_definite(it) : cbor_string_is_definite(it);
    if (definite) {
        *len = bytes ? cbor_bytestring_length(it) : cbor_string_length(it);
        uint8_t *p = malloc(*len + 1);
        if (p != NULL && *len > 0) {
            memcpy(p, bytes ? cbor_bytestring_handle(it) : cbor_string_handle(it), *len);
        }
        return p;
    }
    size_t n = bytes ? cbor_bytestring_chunk_count(it) : cbor_string_chunk_count(it);
    cbor_item_t **ch = bytes ? cbor_bytestring_chunks_handle(it) : cbor_string_chunks_handle(it);
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        total += bytes ? cbor_bytestring_length(ch[i]) : cbor_string_length(ch[i]);
    }
    uint8_t *p = malloc(total + 1);
    size_t at = 0;
    for (size_t i = 0; p != NULL && i < n; i++) {
        size_t l = bytes ? cbor_bytestring_length(ch[i]) : cbor_string_length(ch[i]);
        if (l > 0) {
            memcpy(p + at, bytes ? cbor_bytestring_handle(ch[i]) : cbor_string_handle(ch[i]), l);
        }
        at += l;
    }
    *len = total;
    return p;
}

static json_t *from_string(const cbor_item_t *it)
{
    size_t len = 0;
    uint8_t *p = string_bytes(it, &len);
    json_t *v = NULL;
    if (p != NULL && cbor_isa_bytestring(it)) {
        char *b64 = sl_b64_dup(p, len);
        v = b64 != NULL ? json_stringn(b64, sl_b64_len(len)) : NULL;
        free(b64);
    } else if (p != NULL) {
        v = json_stringn((const char *)p, len); /* NULL when not UTF-8 */
    }
    free(p);
    return v;
}

static json_t *from_map(const cbor_item_t *it, uint32_t depth)
{
    json_t *o = json_object();
    struct cbor_pair *pairs = cbor_map_handle(it);
    for (size_t i = 0; o != NULL && i < cbor_map_size(it); i++) {
        size_t kl = 0;
        uint8_t *k = cbor_isa_string(pairs[i].key) ? string_bytes(pairs[i].key, &kl) : NULL;
        if (k != NULL) {
            k[kl] = '\0';
        }
        bool key_ok = k != NULL && kl <= CBOR_KEY_MAX && strlen((const char *)k) == kl;
        json_t *v = key_ok ? from_cbor(pairs[i].value, depth + 1) : NULL;
        /* json_object_set_new takes v, also when it fails */
        if (v == NULL || json_object_set_new(o, (const char *)k, v) != 0) {
            json_decref(o);
            o = NULL;
        }
        free(k);
    }
    return o;
}

static json_t *from_cbor(const cbor_item_t *it, uint32_t depth)
{
    if (depth > CBOR_DEPTH_MAX) {
        return NULL;
    }
    switch (cbor_typeof(it)) {
    case CBOR_TYPE_UINT:
        return cbor_get_int(it) > INT64_MAX ? NULL : json_integer((json_int_t)cbor_get_int(it));
    case CBOR_TYPE_NEGINT:
        return cbor_get_int(it) > INT64_MAX ? NULL
                                            : json_integer(-1 - (json_int_t)cbor_get_int(it));
    case CBOR_TYPE_BYTESTRING:
    case CBOR_TYPE_STRING:
        return from_string(it);
    case CBOR_TYPE_MAP:
        return from_map(it, depth);
    case CBOR_TYPE_ARRAY: {
        json_t *a = json_array();
        for (size_t i = 0; a != NULL && i < cbor_array_size(it); i++) {
            json_t *v = from_cbor(cbor_array_handle(it)[i], depth + 1);
            if (v == NULL || json_array_append_new(a, v) != 0) {
                json_decref(a);
                a = NULL;
            }
        }
        return a;
    }
    case CBOR_TYPE_TAG: { /* tag 1: epoch seconds; others: their content */
        cbor_item_t *inner = cbor_tag_item(it);
        json_t *v = inner != NULL ? from_cbor(inner, depth + 1) : NULL;
        if (inner != NULL) {
            cbor_decref(&inner);
        }
        return v;
    }
    case CBOR_TYPE_FLOAT_CTRL:
        if (cbor_float_ctrl_is_ctrl(it)) {
            uint8_t c = cbor_ctrl_value(it);
            return c == CBOR_CTRL_TRUE    ? json_true()
                   : c == CBOR_CTRL_FALSE ? json_false()
                                          : json_null();
        }
        return json_real(cbor_float_get_float(it));
    default:
        return NULL;
    }
}

struct size_check {
    uint64_t declared; /* items declared by every container so far */
    uint64_t limit;    /* the body's length */
};

static void on_array(void *ctx, size_t n)
{
    struct size_check *c = ctx;
    c->declared += n < c->limit ? n : c->limit + 1;
}

static void on_map(void *ctx, size_t n)
{
    struct size_check *c = ctx;
    c->declared += n < c->limit ? 2 * (uint64_t)n : c->limit + 1;
}

/* True when the body is well-formed CBOR whose containers declare no more
 * items than it has bytes. */
static bool sizes_ok(const uint8_t *body, size_t len)
{
    struct cbor_callbacks cb = cbor_empty_callbacks;
    cb.array_start = on_array;
    cb.map_start = on_map;
    struct size_check c = {.limit = len};
    for (size_t off = 0; off < len;) {
        struct cbor_decoder_result r = cbor_stream_decode(body + off, len - off, &cb, &c);
        if (r.status != CBOR_DECODER_FINISHED || r.read == 0 || c.declared > c.limit) {
            return false;
        }
        off += r.read;
    }
    return true;
}

int sl_kin_cbor_to_json(const uint8_t *body, size_t len, json_t **out)
{
    struct cbor_load_result res;
    *out = NULL;
    if (!sizes_ok(body, len)) {
        return SL_EPROTO;
    }
    cbor_item_t *it = cbor_load(body, len, &res);
    if (it == NULL || res.error.code != CBOR_ERR_NONE || res.read != len) {
        if (it != NULL) {
            cbor_decref(&it);
        }
        return SL_EPROTO;
    }
    *out = cbor_isa_map(it) ? from_cbor(it, 0) : NULL;
    cbor_decref(&it);
    return *out != NULL ? SL_OK : SL_EPROTO;
}

/* ---- json_t -> CBOR ----------------------------------------------------------- */

static bool is_time_key(const char *k)
{
    size_t n = strlen(k), t = strlen("Timestamp");
    return n >= t && strcmp(k + n - t, "Timestamp") == 0;
}

static cbor_item_t *to_cbor(const json_t *v, const char *key, uint32_t depth);

static cbor_item_t *to_string(const json_t *v, const char *key)
{
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (key == NULL || strcmp(key, "Data") != 0) {
        return cbor_build_stringn(s, n);
    }
    uint8_t *d = malloc(n / 4 * 3 + 3);
    size_t len = 0;
    cbor_item_t *r = NULL;
    if (d != NULL && sl_b64_decode(s, n, d, &len) == SL_OK) {
        r = cbor_build_bytestring(d, len);
    }
    free(d);
    return r;
}

static cbor_item_t *to_map(const json_t *v, uint32_t depth)
{
    cbor_item_t *m = cbor_new_definite_map(json_object_size(v));
    const char *k;
    json_t *x;
    json_object_foreach((json_t *)v, k, x)
    {
        cbor_item_t *kv = cbor_build_string(k);
        cbor_item_t *xv = to_cbor(x, k, depth + 1);
        bool ok = m != NULL && kv != NULL && xv != NULL &&
                  cbor_map_add(m, (struct cbor_pair){.key = kv, .value = xv});
        if (kv != NULL) {
            cbor_decref(&kv);
        }
        if (xv != NULL) {
            cbor_decref(&xv);
        }
        if (!ok) {
            if (m != NULL) {
                cbor_decref(&m);
            }
            return NULL;
        }
    }
    return m;
}

static cbor_item_t *to_number(const json_t *v, const char *key)
{
    double d = json_number_value(v);
    if (key != NULL && is_time_key(key)) {
        cbor_item_t *f = cbor_build_float8(d);
        cbor_item_t *t = f != NULL ? cbor_build_tag(CBOR_TAG_EPOCH, f) : NULL;
        if (f != NULL) {
            cbor_decref(&f);
        }
        return t;
    }
    if (json_is_real(v)) {
        return cbor_build_float8(d);
    }
    json_int_t i = json_integer_value(v);
    return i >= 0 ? cbor_build_uint64((uint64_t)i) : cbor_build_negint64((uint64_t)(-1 - i));
}

static cbor_item_t *to_cbor(const json_t *v, const char *key, uint32_t depth)
{
    SL_ASSERT(depth <= CBOR_DEPTH_MAX); /* our own answers nest 4 levels at most */
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return to_map(v, depth);
    case JSON_ARRAY: {
        cbor_item_t *a = cbor_new_definite_array(json_array_size(v));
        for (size_t i = 0; a != NULL && i < json_array_size(v); i++) {
            cbor_item_t *x = to_cbor(json_array_get(v, i), key, depth + 1);
            bool ok = x != NULL && cbor_array_push(a, x);
            if (x != NULL) {
                cbor_decref(&x);
            }
            if (!ok) {
                cbor_decref(&a);
            }
        }
        return a;
    }
    case JSON_STRING:
        return to_string(v, key);
    case JSON_INTEGER:
    case JSON_REAL:
        return to_number(v, key);
    case JSON_TRUE:
    case JSON_FALSE:
        return cbor_build_bool(json_is_true(v));
    default:
        return cbor_new_null();
    }
}

int sl_kin_cbor_from_json(const char *json, size_t len, uint8_t **out, size_t *out_len)
{
    json_t *v = json_loadb(json, len, 0, NULL);
    cbor_item_t *it = v != NULL ? to_cbor(v, NULL, 0) : NULL;
    json_decref(v);
    *out = NULL;
    *out_len = 0;
    if (it == NULL) {
        return SL_ENOMEM;
    }
    size_t cap = 0;
    *out_len = cbor_serialize_alloc(it, out, &cap);
    cbor_decref(&it);
    return *out_len > 0 ? SL_OK : SL_ENOMEM;
}
