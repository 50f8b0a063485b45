/* fuzz_console.c - the web console API's decoders of untrusted input
 * (broker/api/urlcode.c, broker/api/rest_parse.c, common/isotime.c): a
 * request target's query, a page's position, a record's JSON body.
 *
 * Input: the first byte picks the decoder, the rest is its text.
 *   0: a request target; every parameter the API reads is looked up with
 *      buffers of several sizes. Checks: a value is NUL-terminated within
 *      its buffer and never contains '\0' before its end; a too-small
 *      buffer sets `bad` instead of overflowing. The same text as a push
 *      target's URL shown redacted (common/url.c, an SNS Subscribe's
 *      Endpoint is a client's text): it fits any buffer, and nothing after
 *      a '?' or '#' and no '@' of the authority survives in it.
 *   1: a position (the `from` parameter) over a shard [first, next).
 *      Checks: "latest" is within the shard and at most a page before its
 *      end; a sequence position is the number given.
 *   2: a record body (JSON). Checks: a record decoded fits the batch
 *      builder within the batch limits or is refused with a code; its
 *      attributes are within SL_RECORD_ATTRS_MAX.
 *   3: a record filter: '\n'-separated jpath, jvalue, contains, attr
 *      (NAME=VALUE), then the record's value. Checks: a path accepted by
 *      sl_rest_jpath_ok evaluates without fault on any value; matching is
 *      deterministic; a filter that is only `contains` agrees with memmem.
 */
#include "broker/api/rest_parse.h"
#include "broker/api/urlcode.h"
#include "common/assert.h"
#include "common/error.h"
#include "common/url.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void query(const char *s)
{
    static const char *const names[] = {"shard", "from", "limit", "key", ""};
    static const size_t caps[] = {1, 2, 8, 64, 1024};
    for (size_t n = 0; n < sizeof(names) / sizeof(names[0]); n++) {
        for (size_t c = 0; c < sizeof(caps) / sizeof(caps[0]); c++) {
            char buf[1024];
            memset(buf, 'X', sizeof(buf));
            bool bad = false;
            const char *v = sl_api_query_get(s, names[n], buf, caps[c], &bad);
            SL_ASSERT(v == NULL || v == buf);
            SL_ASSERT(v == NULL || memchr(buf, '\0', caps[c]) != NULL);
            SL_ASSERT(!(v != NULL && bad));
            for (size_t i = caps[c]; i < sizeof(buf); i++) {
                SL_ASSERT(buf[i] == 'X'); /* nothing written past the buffer */
            }
        }
    }
}

static void position(const char *s, size_t len)
{
    uint64_t first = len % 7, next = first + len * 3;
    uint32_t limit = (uint32_t)(len % 1000) + 1;
    struct sl_position pos;
    if (!sl_rest_position_of(s, limit, first, next, &pos)) {
        return;
    }
    if (strcmp(s, "latest") == 0) {
        SL_ASSERT(pos.kind == SL_POS_AT_SEQ && pos.seq >= first && pos.seq <= next);
        SL_ASSERT(next - pos.seq <= limit);
    } else if (strncmp(s, "seq:", 4) == 0) {
        uint64_t v = 0;
        SL_ASSERT(pos.kind == SL_POS_AT_SEQ && sl_rest_u64(s + 4, &v) && v == pos.seq);
    }
}

static void body(const char *s, size_t len)
{
    json_error_t err;
    json_t *j = json_loadb(s, len, JSON_REJECT_DUPLICATES, &err);
    if (!json_is_object(j)) {
        json_decref(j);
        return;
    }
    struct sl_record rec;
    struct sl_attr attrs[SL_RECORD_ATTRS_MAX];
    char why[256];
    if (sl_rest_record_of(j, &rec, attrs, why, sizeof(why)) == SL_OK) {
        SL_ASSERT(rec.attr_count <= SL_RECORD_ATTRS_MAX && rec.key_len <= SL_RECORD_KEY_MAX);
        size_t cap = SL_BATCH_HEADER_BYTES + sl_batch_record_bytes(&rec, 0) + 64;
        uint8_t *buf = malloc(cap);
        if (buf != NULL) {
            struct sl_batch_builder b;
            sl_batch_builder_init(&b, buf, cap);
            int rc = sl_batch_builder_add(&b, &rec);
            size_t out = 0;
            if (rc == SL_OK) {
                rc = sl_batch_builder_finish(&b, SL_BATCH_CODEC_NONE, 0, NULL, NULL, 0, 0, 0, &out);
                SL_ASSERT(rc != SL_OK || out <= cap);
            }
            SL_ASSERT(rc == SL_OK || rc == SL_ETOOBIG);
            free(buf);
        }
    } else {
        SL_ASSERT(why[0] != '\0');
    }
    json_decref(j);
}

/* The next '\n'-terminated line of *p (made NUL-terminated in place). */
static char *next_line(char **p)
{
    char *s = *p;
    char *nl = strchr(s, '\n');
    if (nl == NULL) {
        *p = s + strlen(s);
        return s;
    }
    *nl = '\0';
    *p = nl + 1;
    return s;
}

static void filter(char *s)
{
    char *p = s;
    char *jpath = next_line(&p), *jvalue = next_line(&p), *contains = next_line(&p);
    char *attr = next_line(&p);
    struct sl_rest_filter f = {.contains = contains[0] != '\0' ? contains : NULL};
    if (jpath[0] != '\0' && sl_rest_jpath_ok(jpath)) {
        f.jpath = jpath;
        f.jvalue = jvalue[0] != '\0' ? jvalue : NULL;
    }
    if (attr[0] != '\0') {
        (void)sl_rest_filter_attr(&f, attr);
    }
    struct sl_record_view r = {.value = (const uint8_t *)p, .value_len = (uint32_t)strlen(p)};
    bool m1 = sl_rest_filter_match(&f, &r);
    bool m2 = sl_rest_filter_match(&f, &r);
    SL_ASSERT(m1 == m2);
    if (f.jpath == NULL && f.attr_name == NULL && f.contains != NULL) {
        SL_ASSERT(m1 == (memmem(p, strlen(p), f.contains, strlen(f.contains)) != NULL));
    }
    if (f.attr_name != NULL) {
        SL_ASSERT(!m1); /* the record has no attributes */
    }
}

/* A redrive's selection: either refused with a reason or sorted, distinct and
 * each one found again. */
static void selection(const char *s, size_t len)
{
    json_t *j = json_loadb(s, len, 0, NULL);
    struct sl_rest_pos sel[SL_REST_SELECT_MAX];
    uint32_t n = 99;
    char why[256] = "";
    int rc = sl_rest_selection_of(j, sel, &n, why, sizeof(why));
    if (rc != SL_OK) {
        SL_ASSERT(rc == SL_EINVAL && why[0] != '\0');
    } else {
        SL_ASSERT(n <= SL_REST_SELECT_MAX);
        for (uint32_t i = 0; i < n; i++) {
            SL_ASSERT(i == 0 || sel[i - 1].shard < sel[i].shard ||
                      (sel[i - 1].shard == sel[i].shard && sel[i - 1].seq < sel[i].seq));
            SL_ASSERT(sl_rest_selection_find(sel, n, sel[i].shard, sel[i].seq) == (int)i);
        }
    }
    json_decref(j);
}

static void redact(const char *s)
{
    static const size_t caps[] = {1, 2, 8, 64, 4096};
    for (size_t c = 0; c < sizeof(caps) / sizeof(caps[0]); c++) {
        char out[4096];
        memset(out, 'X', sizeof(out));
        sl_url_redact(s, out, caps[c]);
        SL_ASSERT(memchr(out, '\0', caps[c]) != NULL);
    }
    char out[4096];
    sl_url_redact(s, out, sizeof(out));
    const char *host = strstr(s, "://");
    host = host != NULL ? host + 3 : s;
    size_t cut = strcspn(host, "?#");
    if (strlen(s) < 1000 && host[cut] != '\0') {
        /* the tail after '?' or '#' is replaced: the output ends in "?***" */
        size_t n = strlen(out);
        SL_ASSERT(n >= 4 && strcmp(out + n - 4, "?***") == 0);
    }
    const char *oh = strstr(out, "://");
    oh = oh != NULL ? oh + 3 : out;
    size_t auth = strcspn(oh, "/?#");
    const char *at = memchr(oh, '@', auth);
    /* the only '@' left in the authority is the one after the "***" */
    SL_ASSERT(at == NULL || (at - oh == 3 && memcmp(oh, "***", 3) == 0));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) {
        return 0;
    }
    char *s = malloc(size); /* the text after the selector, NUL-terminated */
    if (s == NULL) {
        return 0;
    }
    memcpy(s, data + 1, size - 1);
    s[size - 1] = '\0';
    /* 0xf0 and above: selections (added later; the corpus keeps its modes) */
    switch (data[0] >= 0xf0 ? 4 : data[0] % 4) {
    case 0:
        query(s);
        redact(s);
        break;
    case 1:
        position(s, size - 1);
        break;
    case 2:
        body(s, size - 1);
        break;
    case 4:
        selection(s, size - 1);
        break;
    default:
        filter(s);
    }
    free(s);
    return 0;
}
