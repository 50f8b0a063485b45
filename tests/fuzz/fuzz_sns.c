/* fuzz_sns.c - the SNS front-end's decoders over untrusted bytes (no broker
 * needed): the Query form (broker/api/sns_query.c) and the subscriptions
 * file (broker/api/sns_store.c, as read back from disk).
 *
 * Input: byte 0 = mode: even -> the rest is a form body; odd -> the rest is
 * a subscriptions file (its checksum is fixed up first when byte 0 & 2, so
 * the structure decoder is reached, not only the checksum test).
 * Checks beyond ASan/UBSan: a form decodes to a request whose counts are
 * within SNS's limits and whose strings are readable, or fails with an SNS
 * error code (SL_EPROTO) and a message; an XML answer built from the
 * request's strings is complete and escapes them; a file either loads
 * subscriptions within the limits (each string NUL-terminated within its
 * field, only known flags) or is refused as SL_ECORRUPT.
 */
#include "broker/api/sns_req.h"
#include "broker/api/sns_store.h"
#include "common/assert.h"
#include "common/bytes.h"
#include "common/checksum.h"
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

static void render(const struct sl_sns_req *r)
{
    struct sl_query_xml x = {0};
    sl_sns_xml_begin(&x, r->op, true);
    sl_query_xml_leaf(&x, "TopicArn", r->topic_arn != NULL ? r->topic_arn : "");
    for (uint32_t i = 0; i < r->n_attrs; i++) {
        sl_query_xml_open(&x, "entry");
        sl_query_xml_leaf(&x, "key", r->attrs[i].name);
        sl_query_xml_leaf(&x, "value", r->attrs[i].value);
        sl_query_xml_close(&x, "entry");
    }
    char *xml = sl_sns_xml_end(&x, r->op, true, "fuzz");
    if (xml != NULL) {
        SL_ASSERT(strstr(xml, "<?xml") == xml);
        SL_ASSERT(strstr(xml, "</RequestId></ResponseMetadata>") != NULL);
        SL_ASSERT(r->topic_arn == NULL || strchr(r->topic_arn, '<') == NULL ||
                  strstr(xml, "&lt;") != NULL);
    }
    free(xml);
    char *err = sl_sns_xml_error("Code<&>", true, r->name != NULL ? r->name : "", "id");
    SL_ASSERT(err == NULL || strstr(err, "Code&lt;&amp;&gt;") != NULL);
    free(err);
}

static void form(const uint8_t *data, size_t size)
{
    struct sl_sns_req *r = NULL;
    struct sl_sns_fault f = {0};
    int rc = sl_sns_decode_query(data, size, &r, &f);
    if (rc != SL_OK) {
        SL_ASSERT(r == NULL);
        SL_ASSERT(rc == SL_ENOMEM || (rc == SL_EPROTO && f.code > SL_SNS_OK &&
                                      f.code < SL_SNS_E_COUNT_ && f.why[0] != '\0'));
        return;
    }
    SL_ASSERT(r->op > SL_SNS_UNKNOWN && r->op < SL_SNS_OP_COUNT_);
    SL_ASSERT(r->n_attrs <= SL_SNS_ATTRS_MAX && r->n_entries <= SL_SNS_BATCH_MAX);
    const char *flat[] = {
        r->name,  r->topic_arn,  r->subscription_arn, r->protocol,        r->endpoint,
        r->token, r->next_token, r->attribute_name,   r->attribute_value, r->return_sub_arn};
    for (size_t i = 0; i < sizeof(flat) / sizeof(flat[0]); i++) {
        touch(flat[i]);
    }
    for (uint32_t i = 0; i < r->n_attrs; i++) {
        SL_ASSERT(r->attrs[i].name != NULL && r->attrs[i].value != NULL);
        touch(r->attrs[i].name);
        touch(r->attrs[i].value);
    }
    for (uint32_t i = 0; i < r->n_entries; i++) {
        const struct sl_sns_entry *e = &r->entries[i];
        SL_ASSERT(e->n_attrs <= SL_SNS_MSG_ATTRS_MAX);
        touch(e->id);
        touch(e->message);
        touch(e->subject);
        touch(e->structure);
        for (uint32_t k = 0; k < e->n_attrs; k++) {
            SL_ASSERT(e->attrs[k].name != NULL);
            touch(e->attrs[k].name);
            touch(e->attrs[k].type);
            touch(e->attrs[k].string_value);
            touch(e->attrs[k].binary_b64);
        }
    }
    render(r);
    sl_sns_req_free(r);
}

static void file(const uint8_t *data, size_t size, bool fix)
{
    uint8_t *buf = malloc(size + 1);
    if (buf == NULL) {
        return;
    }
    memcpy(buf, data, size);
    if (fix && size >= 8) {
        sl_put_u64(buf + size - 8, sl_checksum64(buf, size - 8));
    }
    struct sl_sns_store *s = sl_sns_store_empty();
    if (s != NULL) {
        int rc = sl_sns_store_parse(s, buf, size);
        SL_ASSERT(rc == SL_OK || rc == SL_ECORRUPT || rc == SL_ENOMEM);
        SL_ASSERT(s->n <= SL_SNS_SUBS_MAX);
        for (uint32_t i = 0; i < s->n; i++) {
            const struct sl_sns_sub *x = s->subs[i];
            SL_ASSERT(strlen(x->id) <= SL_SNS_ID_MAX && strlen(x->topic) <= SL_SNS_TOPIC_MAX);
            SL_ASSERT(strlen(x->endpoint) <= SL_SNS_ENDPOINT_MAX);
            SL_ASSERT(strlen(x->filter) <= SL_SNS_FILTER_MAX);
            SL_ASSERT((x->flags & ~(uint32_t)SL_SNS_SUB_FLAGS_) == 0);
        }
    }
    sl_sns_store_close(s);
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    if ((data[0] & 1) == 0) {
        form(data + 1, size - 1);
    } else {
        file(data + 1, size - 1, (data[0] & 2) != 0);
    }
    return 0;
}
