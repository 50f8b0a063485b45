/* fuzz_sqs.c - the SQS front-end's decoders over untrusted bodies
 * (broker/api/sqs_json.c, sqs_query.c) and its XML rendering of untrusted
 * strings (no broker needed).
 *
 * Input: byte 0 = mode: even -> the Query protocol (the rest is a form
 * body), odd -> the JSON protocol with operation (byte 0 >> 1) % ops (the
 * rest is the JSON body).
 * Checks beyond ASan/UBSan: a decode either succeeds with a request whose
 * counts are within the SQS limits, whose strings are readable and
 * NUL-terminated and whose decoded binary values lie inside the arena, or
 * fails with an SQS error code (SL_EPROTO) and a message; an XML answer
 * built from the request's strings renders (stack walk within its bound,
 * envelope complete) and an error's code comes out escaped.
 */
#include "broker/api/sqs_req.h"
#include "common/assert.h"
#include "common/error.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile size_t sink;

static void touch(const char *s)
{
    if (s != NULL) {
        sink += strlen(s);
    }
}

static void check_entry(const struct sl_sqs_req *r, const struct sl_sqs_entry *e)
{
    touch(e->id);
    touch(e->group_id);
    touch(e->dedup_id);
    touch(e->receipt);
    if (e->body != NULL) {
        SL_ASSERT(e->body[e->body_len] == '\0');
    }
    SL_ASSERT(e->n_attrs <= SL_SQS_MSG_ATTRS_MAX);
    for (uint32_t i = 0; i < e->n_attrs; i++) {
        const struct sl_sqs_mattr *a = &e->attrs[i];
        touch(a->name);
        touch(a->type);
        touch(a->string_value);
        SL_ASSERT(a->type != NULL && (a->string_value == NULL) != (a->binary == NULL));
        if (a->binary != NULL) {
            SL_ASSERT(a->binary >= r->arena &&
                      a->binary + a->binary_len <= r->arena + r->arena_len);
        }
    }
}

/* An answer made of the request's strings, rendered as XML. */
static void render(const struct sl_sqs_req *r)
{
    json_t *attrs = json_object();
    for (uint32_t i = 0; i < r->n_attrs; i++) {
        json_object_set_new(attrs, r->attrs[i].name, json_string(r->attrs[i].value));
    }
    json_t *msgs = json_array();
    for (uint32_t i = 0; i < r->n_entries; i++) {
        const struct sl_sqs_entry *e = &r->entries[i];
        json_t *ma = json_object();
        for (uint32_t k = 0; k < e->n_attrs; k++) {
            json_object_set_new(ma, e->attrs[k].name,
                                json_pack("{s:s,s:s?}", "DataType", e->attrs[k].type, "StringValue",
                                          e->attrs[k].string_value));
        }
        json_array_append_new(msgs,
                              json_pack("{s:s?,s:o}", "Body", e->body, "MessageAttributes", ma));
    }
    json_t *res = json_pack("{s:o,s:o,s:[s?]}", "Attributes", attrs, "Messages", msgs, "QueueUrls",
                            r->queue_url);
    char *xml = res != NULL ? sl_sqs_xml_result(r->op, res, "fuzz") : NULL;
    if (xml != NULL) {
        SL_ASSERT(strstr(xml, "<?xml") == xml);
        SL_ASSERT(strstr(xml, "</RequestId></ResponseMetadata>") != NULL);
    }
    free(xml);
    json_decref(res);
    char *err = sl_sqs_xml_error("Code<&>", true, r->queue_url != NULL ? r->queue_url : "", "id");
    SL_ASSERT(err == NULL || strstr(err, "Code&lt;&amp;&gt;") != NULL);
    free(err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    struct sl_sqs_req *r = NULL;
    struct sl_sqs_fault f = {0};
    int rc;
    if ((data[0] & 1) == 0) {
        rc = sl_sqs_decode_query(data + 1, size - 1, &r, &f);
    } else {
        uint32_t op = 1u + (uint32_t)(data[0] >> 1) % (SL_SQS_OP_COUNT_ - 1u);
        rc = sl_sqs_decode_json(sl_sqs_op_name((enum sl_sqs_op)op), data + 1, size - 1, &r, &f);
    }
    if (rc != SL_OK) {
        SL_ASSERT(r == NULL);
        SL_ASSERT(rc == SL_ENOMEM || (rc == SL_EPROTO && f.code > SL_SQS_OK &&
                                      f.code < SL_SQS_E_COUNT_ && f.why[0] != '\0'));
        return 0;
    }
    SL_ASSERT(r->op > SL_SQS_UNKNOWN && r->op < SL_SQS_OP_COUNT_);
    SL_ASSERT(r->n_entries <= SL_SQS_BATCH_MAX && r->n_attrs <= SL_SQS_QUEUE_ATTRS_MAX);
    SL_ASSERT(r->n_names <= SL_SQS_NAMES_MAX && r->n_mattr_names <= SL_SQS_NAMES_MAX);
    SL_ASSERT(r->arena_len <= r->arena_cap);
    touch(r->queue_name);
    touch(r->queue_url);
    touch(r->prefix);
    for (uint32_t i = 0; i < r->n_names; i++) {
        touch(r->names[i]);
    }
    for (uint32_t i = 0; i < r->n_entries; i++) {
        check_entry(r, &r->entries[i]);
    }
    render(r);
    sl_sqs_req_free(r);
    return 0;
}
