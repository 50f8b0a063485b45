/* sqs_query.c - the SQS Query protocol (awscli 2.9, boto3 1.26): a
 * form-encoded body (Action=SendMessage&QueueUrl=...&Version=2012-11-05)
 * decoded into the JSON protocol's document, and the JSON answer rendered
 * as the XML one.
 *
 * Form -> document (then sqs_json.c's sl_sqs_decode_doc):
 *   Name=v                               -> {"Name": "v"} (numbers stay text)
 *   AttributeName.N=v (also MessageAttributeName, MessageSystemAttributeName)
 *                                        -> {"AttributeNames": [...]}
 *   Attribute.N.Name / Attribute.N.Value -> {"Attributes": {name: value}}
 *   MessageAttribute.N.Name / .Value.{StringValue,BinaryValue,DataType}
 *                                        -> {"MessageAttributes": {name: {...}}}
 *   <Op>RequestEntry.N.<field...>        -> {"Entries": [{field...}]}
 * N is 1..SL_SQS_QUERY_INDEX_MAX; gaps are dropped. Unknown nested names
 * are ignored (SQS ignores them too).
 *
 * JSON answer -> XML (namespace https://queue.amazonaws.com/doc/2012-11-05/):
 * <OpResponse><OpResult>...</OpResult><ResponseMetadata><RequestId>. Members
 * become elements; lists are flattened (QueueUrls -> QueueUrl..., Messages
 * -> Message..., Successful -> <Op>ResultEntry..., Failed ->
 * BatchResultErrorEntry...); maps become <Attribute><Name/><Value/></Attribute>
 * and <MessageAttribute><Name/><Value>...</Value></MessageAttribute>. The
 * walk uses an explicit stack (no recursion; answers are at most 4 deep).
 *
 * Input is untrusted (bounded, nothing asserted on it); output is ours.
 * Threading: none.
 */
#include "broker/api/query_xml.h"
#include "broker/api/sqs_req.h"
#include "broker/api/urlcode.h"

#include "common/assert.h"
#include "common/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QUERY_NS      "https://queue.amazonaws.com/doc/2012-11-05/"
#define XML_DEPTH_MAX 8u

/* ---- form decoding ------------------------------------------------------ */

/* "12" -> 12 within 1..SL_SQS_QUERY_INDEX_MAX, else 0. */
static uint32_t query_index(const char *s, size_t n)
{
    if (n == 0 || n > 2 || strspn(s, "0123456789") < n) {
        return 0;
    }
    uint32_t v = (uint32_t)strtoul(s, NULL, 10);
    return v >= 1 && v <= SL_SQS_QUERY_INDEX_MAX ? v : 0;
}

/* Element idx (1-based) of the array member `key` of `obj`, created as
 * `make()` when missing. NULL when idx is out of range or memory ran out. */
static json_t *slot(json_t *obj, const char *key, uint32_t idx, bool object)
{
    json_t *arr = json_object_get(obj, key);
    if (arr == NULL) {
        arr = json_array();
        if (arr == NULL || json_object_set_new(obj, key, arr) != 0) {
            return NULL;
        }
    }
    if (!json_is_array(arr) || idx == 0) {
        return NULL;
    }
    while (json_array_size(arr) < idx) {
        if (json_array_append_new(arr, json_null()) != 0) {
            return NULL;
        }
    }
    json_t *e = json_array_get(arr, idx - 1);
    if (object && json_is_null(e)) {
        e = json_object();
        if (e == NULL || json_array_set_new(arr, idx - 1, e) != 0) {
            return NULL;
        }
    }
    return e;
}

static bool seg_is(const char *seg, size_t n, const char *name)
{
    return strlen(name) == n && memcmp(seg, name, n) == 0;
}

static bool ends_with(const char *seg, size_t n, const char *suffix)
{
    size_t k = strlen(suffix);
    return n > k && memcmp(seg + n - k, suffix, k) == 0;
}

/* One form parameter into the document (see the file comment). */
static void put_param(json_t *doc, const char *key, const char *value)
{
    json_t *obj = doc;
    const char *p = key;
    for (uint32_t depth = 0; depth < 4; depth++) {
        size_t n = strcspn(p, ".");
        const char *rest = p[n] == '.' ? p + n + 1 : NULL;
        if (rest == NULL) {
            json_object_set_new(obj, p, json_string(value));
            return;
        }
        size_t in = strcspn(rest, ".");
        uint32_t idx = query_index(rest, in);
        const char *tail = rest[in] == '.' ? rest + in + 1 : NULL;
        if (idx == 0) {
            return;
        }
        if (ends_with(p, n, "RequestEntry") && tail != NULL) {
            obj = slot(obj, "Entries", idx, true);
            p = tail;
        } else if ((seg_is(p, n, "AttributeName") || seg_is(p, n, "MessageAttributeName") ||
                    seg_is(p, n, "MessageSystemAttributeName")) &&
                   tail == NULL) {
            char plural[40];
            snprintf(plural, sizeof(plural), "%.*ss", (int)n, p);
            if (slot(obj, plural, idx, false) != NULL) {
                json_array_set_new(json_object_get(obj, plural), idx - 1, json_string(value));
            }
            return;
        } else if ((seg_is(p, n, "Attribute") || seg_is(p, n, "MessageAttribute")) &&
                   tail != NULL) {
            char tmp[24];
            snprintf(tmp, sizeof(tmp), "#%.*s", (int)n, p); /* folded into a map later */
            obj = slot(obj, tmp, idx, true);
            if (obj != NULL && strncmp(tail, "Value.", 6) == 0) {
                json_t *v = json_object_get(obj, "Value");
                if (!json_is_object(v)) {
                    v = json_object();
                    json_object_set_new(obj, "Value", v);
                }
                obj = v;
                p = tail + 6;
            } else {
                p = tail;
            }
        } else {
            return;
        }
        if (obj == NULL || !json_is_object(obj)) {
            return;
        }
    }
}

/* "#Attribute": [{Name, Value}] -> "Attributes": {Name: Value}. */
static void fold_map(json_t *obj, const char *tmp, const char *key)
{
    json_t *arr = json_object_get(obj, tmp);
    if (arr == NULL) {
        return;
    }
    json_t *map = json_object();
    for (size_t i = 0; map != NULL && i < json_array_size(arr); i++) {
        json_t *e = json_array_get(arr, i);
        json_t *name = json_object_get(e, "Name"), *value = json_object_get(e, "Value");
        if (json_is_string(name) && value != NULL) {
            json_object_set(map, json_string_value(name), value);
        }
    }
    if (map != NULL) {
        json_object_set_new(obj, key, map);
    }
    json_object_del(obj, tmp);
}

/* Drops the null gaps of list `key`. */
static void compact(json_t *obj, const char *key)
{
    json_t *arr = json_object_get(obj, key);
    for (size_t i = json_array_size(arr); i > 0; i--) {
        if (json_is_null(json_array_get(arr, i - 1))) {
            json_array_remove(arr, i - 1);
        }
    }
}

static void fold(json_t *doc)
{
    fold_map(doc, "#Attribute", "Attributes");
    fold_map(doc, "#MessageAttribute", "MessageAttributes");
    compact(doc, "AttributeNames");
    compact(doc, "MessageAttributeNames");
    compact(doc, "MessageSystemAttributeNames");
    compact(doc, "Entries");
    json_t *entries = json_object_get(doc, "Entries");
    for (size_t i = 0; i < json_array_size(entries); i++) {
        fold_map(json_array_get(entries, i), "#MessageAttribute", "MessageAttributes");
    }
}

int sl_sqs_decode_query(const uint8_t *body, size_t len, struct sl_sqs_req **out,
                        struct sl_sqs_fault *f)
{
    *out = NULL;
    json_t *doc = json_object();
    char *buf = malloc(len + 2);
    if (doc == NULL || buf == NULL) {
        json_decref(doc);
        free(buf);
        return SL_ENOMEM;
    }
    const char *s = (const char *)body, *end = s + len;
    char action[64] = "";
    bool ok = true;
    while (ok && s < end) {
        const char *amp = memchr(s, '&', (size_t)(end - s));
        const char *pe = amp != NULL ? amp : end;
        const char *eq = memchr(s, '=', (size_t)(pe - s));
        if (pe > s) {
            const char *ke = eq != NULL ? eq : pe;
            char *key = buf;
            ok = sl_api_url_decode(s, (size_t)(ke - s), key);
            char *val = key + strlen(key) + 1; /* key holds no NUL: within len + 2 */
            val[0] = '\0';
            ok = ok && (eq == NULL || sl_api_url_decode(eq + 1, (size_t)(pe - eq - 1), val));
            if (ok && strcmp(key, "Action") == 0) {
                snprintf(action, sizeof(action), "%s", val);
            } else if (ok && key[0] != '\0' && strcmp(key, "Version") != 0) {
                put_param(doc, key, val);
            }
        }
        s = pe + 1;
    }
    free(buf);
    if (!ok) {
        json_decref(doc);
        f->code = SL_SQS_E_MALFORMED;
        snprintf(f->why, sizeof(f->why), "malformed form body: a bad %%-escape");
        return SL_EPROTO;
    }
    enum sl_sqs_op op = sl_sqs_op_parse(action, strlen(action));
    if (op == SL_SQS_UNKNOWN) {
        json_decref(doc);
        f->code = action[0] == '\0'            ? SL_SQS_E_MISSING_PARAMETER
                  : sl_sqs_op_unserved(action) ? SL_SQS_E_UNSUPPORTED
                                               : SL_SQS_E_INVALID_ACTION;
        snprintf(f->why, sizeof(f->why),
                 action[0] == '\0' ? "The request must contain the parameter Action.%s"
                                   : "The action %.48s is not valid for this endpoint.",
                 action);
        return SL_EPROTO;
    }
    fold(doc);
    return sl_sqs_decode_doc(op, doc, len, out, f);
}

/* ---- XML answers ---------------------------------------------------------- */


static void xtag(struct sl_query_xml *x, const char *open_close, const char *name)
{
    sl_query_xml_put(x, open_close, false);
    sl_query_xml_put(x, name, false);
    sl_query_xml_put(x, ">", false);
}

/* A scalar as text: strings as they are, numbers and booleans printed. */
static void xscalar(struct sl_query_xml *x, const json_t *v)
{
    char num[32];
    if (json_is_string(v)) {
        sl_query_xml_put(x, json_string_value(v), true);
    } else if (json_is_integer(v)) {
        snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(v));
        sl_query_xml_put(x, num, false);
    } else if (json_is_boolean(v)) {
        sl_query_xml_put(x, json_is_true(v) ? "true" : "false", false);
    }
}

enum frame_kind { FR_OBJECT, FR_LIST, FR_MAP };

struct frame {
    const json_t *v;
    enum frame_kind kind;
    void *iter;        /* objects and maps */
    size_t index;      /* lists */
    char item[64];     /* lists: element name; maps: entry name */
    char close[2][64]; /* emitted when the frame ends */
};

/* How member `key` of an answer is written (see the file comment). */
static enum frame_kind member_kind(const char *key, enum sl_sqs_op op, char *item, size_t n)
{
    if (strcmp(key, "Attributes") == 0 || strcmp(key, "MessageAttributes") == 0) {
        snprintf(item, n, "%.*s", (int)strlen(key) - 1, key);
        return FR_MAP;
    }
    if (strcmp(key, "QueueUrls") == 0 || strcmp(key, "Messages") == 0) {
        snprintf(item, n, "%.*s", (int)strlen(key) - 1, key);
        return FR_LIST;
    }
    if (strcmp(key, "Successful") == 0) {
        snprintf(item, n, "%sResultEntry", sl_sqs_op_name(op));
        return FR_LIST;
    }
    if (strcmp(key, "Failed") == 0) {
        snprintf(item, n, "BatchResultErrorEntry");
        return FR_LIST;
    }
    snprintf(item, n, "%s", key);
    return FR_OBJECT;
}

static struct frame *push(struct frame *st, uint32_t *depth, const json_t *v, enum frame_kind k)
{
    SL_ASSERT(*depth < XML_DEPTH_MAX); /* our own answers are at most 4 deep */
    struct frame *f = &st[(*depth)++];
    memset(f, 0, sizeof(*f));
    f->v = v;
    f->kind = k;
    f->iter = k == FR_LIST ? NULL : json_object_iter((json_t *)v);
    return f;
}

/* Writes value `v` under element `name`, then `after` (a closing tag or
 * ""); containers are pushed and closed when their frame ends. */
static void xvalue(struct sl_query_xml *x, struct frame *st, uint32_t *depth, const json_t *v,
                   const char *name, const char *after, enum sl_sqs_op op)
{
    if (json_is_object(v)) {
        xtag(x, "<", name);
        struct frame *f = push(st, depth, v, FR_OBJECT);
        snprintf(f->close[0], sizeof(f->close[0]), "%s", name);
        snprintf(f->close[1], sizeof(f->close[1]), "%s", after);
        (void)op;
        return;
    }
    xtag(x, "<", name);
    xscalar(x, v);
    xtag(x, "</", name);
    if (after[0] != '\0') {
        xtag(x, "</", after);
    }
}

static void xchild(struct sl_query_xml *x, struct frame *st, uint32_t *depth, const char *key,
                   const json_t *v, enum sl_sqs_op op)
{
    char item[64];
    enum frame_kind k = member_kind(key, op, item, sizeof(item));
    if (k == FR_OBJECT || (k == FR_LIST && !json_is_array(v)) ||
        (k == FR_MAP && !json_is_object(v))) {
        xvalue(x, st, depth, v, item, "", op);
        return;
    }
    struct frame *f = push(st, depth, v, k);
    snprintf(f->item, sizeof(f->item), "%s", item);
}

/* One step of the walk: the top frame's next member, or its end. */
static void xstep(struct sl_query_xml *x, struct frame *st, uint32_t *depth, enum sl_sqs_op op)
{
    struct frame *f = &st[*depth - 1];
    if (f->kind == FR_LIST) {
        if (f->index < json_array_size(f->v)) {
            const json_t *e = json_array_get(f->v, f->index++);
            char item[64];
            snprintf(item, sizeof(item), "%s", f->item);
            xvalue(x, st, depth, e, item, "", op);
            return;
        }
    } else if (f->iter != NULL) {
        const char *key = json_object_iter_key(f->iter);
        const json_t *v = json_object_iter_value(f->iter);
        f->iter = json_object_iter_next((json_t *)f->v, f->iter);
        if (f->kind == FR_OBJECT) {
            xchild(x, st, depth, key, v, op);
        } else {
            char item[64];
            snprintf(item, sizeof(item), "%s", f->item);
            xtag(x, "<", item);
            sl_query_xml_put(x, "<Name>", false);
            sl_query_xml_put(x, key, true);
            sl_query_xml_put(x, "</Name>", false);
            xvalue(x, st, depth, v, "Value", item, op);
        }
        return;
    }
    char close0[64], close1[64];
    snprintf(close0, sizeof(close0), "%s", f->close[0]);
    snprintf(close1, sizeof(close1), "%s", f->close[1]);
    (*depth)--;
    if (close0[0] != '\0') {
        xtag(x, "</", close0);
    }
    if (close1[0] != '\0') {
        xtag(x, "</", close1);
    }
}

/* Whether the operation's answer has an <OpResult> element (botocore
 * wants it, even empty, for every operation with an output shape). */
static bool has_result(enum sl_sqs_op op)
{
    return op != SL_SQS_DELETE_MESSAGE && op != SL_SQS_DELETE_QUEUE &&
           op != SL_SQS_SET_QUEUE_ATTRIBUTES && op != SL_SQS_CHANGE_VISIBILITY &&
           op != SL_SQS_PURGE_QUEUE;
}

char *sl_sqs_xml_result(enum sl_sqs_op op, const json_t *result, const char *request_id)
{
    struct sl_query_xml x = {0};
    const char *name = sl_sqs_op_name(op);
    sl_query_xml_begin(&x, QUERY_NS, name, false);
    if (has_result(op)) {
        char res[64];
        snprintf(res, sizeof(res), "%sResult", name);
        struct frame st[XML_DEPTH_MAX];
        uint32_t depth = 0;
        xvalue(&x, st, &depth, result, res, "", op);
        for (uint32_t steps = 0; depth > 0; steps++) {
            xstep(&x, st, &depth, op);
        }
    }
    return sl_query_xml_end(&x, name, false, request_id);
}

char *sl_sqs_xml_error(const char *code, bool sender, const char *message, const char *request_id)
{
    return sl_query_xml_error(QUERY_NS, code, sender, message, true, request_id);
}
