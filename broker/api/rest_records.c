/* rest_records.c - the console's records: a page of one shard from a
 * position (GET .../records), and one record written (POST .../records).
 *
 * A page is read by position through the shard's index (sl_fetch_start),
 * never by scanning from the start, so browsing a 100 GB stream costs what
 * a page costs. A filter (key, attribute, substring, JSON path) scans
 * forward at most REST_SCAN_BYTES_MAX (REST_SCAN_JSON_BYTES_MAX when it
 * parses values as JSON: that costs the loop ~10 ms a MiB) and
 * REST_SCAN_FETCHES_MAX fetches per request; the answer's next_seq says
 * where to go on. The answer is bounded by REST_PAGE_BYTES_MAX. A whole
 * stream (shard=all) is every shard's page merged by append time (below).
 *
 * Threading: the main loop. Fetch callbacks may run before sl_fetch_start
 * returns; the chain of fetches is bounded by REST_SCAN_FETCHES_MAX per
 * request, shared by the shards of a whole-stream page.
 */
#include "broker/api/batches.h"
#include "broker/api/rest_int.h"
#include "broker/api/rest_parse.h"
#include "broker/engine/catalog.h"
#include "broker/engine/engine.h"
#include "broker/engine/fetch.h"
#include "broker/engine/produce.h"
#include "broker/engine/streams.h"
#include "common/assert.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/partition.h"

#include <inttypes.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#define REST_LIMIT_DEFAULT    50u
#define REST_LIMIT_MAX        1000u
#define REST_PAGE_BYTES_MAX   (4u << 20) /* values, keys and attributes of one answer */
#define REST_SCAN_BYTES_MAX   (16u << 20)
#define REST_SCAN_JSON_BYTES_MAX (2u << 20)
#define REST_SCAN_FETCHES_MAX 32u
#define REST_FETCH_BYTES      (1u << 20)
/* whole-stream pages: every shard at once, sharing the budgets above */
#define REST_MERGE_RECORDS_MAX     100000u /* shards x limit */
#define REST_MERGE_FETCH_BYTES_MIN (16u << 10)
#define REST_CURSOR_TEXT_MAX       (1024u * 21u) /* 1,024 sequences */

struct page_op {
    struct sl_api_call *call;
    char stream[SL_STREAM_NAME_MAX + 1];
    uint32_t shard;
    uint32_t limit;
    /* the filter and the texts it borrows */
    struct sl_rest_filter filter;
    char key[SL_RECORD_KEY_MAX + 1];
    char attr[SL_REST_FILTER_TEXT_MAX + 1];
    char contains[SL_REST_FILTER_TEXT_MAX + 1];
    char jpath[SL_REST_FILTER_TEXT_MAX + 1];
    char jvalue[SL_REST_FILTER_TEXT_MAX + 1];
    uint32_t scan_max; /* bytes */
    uint64_t from_seq; /* records below it are skipped (a batch may start before) */
    uint64_t from_time_ms; /* batches appended before it are skipped (the same) */
    struct sl_position pos;
    json_t *records;
    uint64_t bytes, scanned;
    uint32_t fetches;
    bool started; /* start_seq known */
    uint64_t start_seq;
    /* limits: one shard's page, or its share of a whole-stream page */
    uint32_t page_bytes_max, fetch_bytes, fetches_max;
    /* where the shard stood when the page ended (for the answer, the merge) */
    uint64_t first_seq, tail_seq;
    uint64_t last_append_ms; /* of the last batch scanned */
    /* called once with the page made (err SL_OK) or why not; frees nothing */
    void (*done)(struct page_op *op, int err, const char *why);
    struct merge_op *merge; /* whole-stream pages: the parent */
};

/* A JSON string of the bytes when they are UTF-8, else base64. */
static json_t *bytes_json(const uint8_t *p, uint32_t len, const char **encoding)
{
    json_t *s = json_stringn((const char *)p, len);
    if (s != NULL) {
        *encoding = "utf8";
        return s;
    }
    *encoding = "base64";
    char *b = malloc(4u * ((len + 2u) / 3u) + 1u);
    if (b == NULL) {
        return NULL;
    }
    int n = EVP_EncodeBlock((unsigned char *)b, p, (int)len);
    s = json_stringn(b, (size_t)n);
    free(b);
    return s;
}

static json_t *record_json(const struct sl_record_view *r, uint32_t shard, uint64_t append_ms)
{
    json_t *attrs = json_object();
    uint32_t pos = 0;
    struct sl_attr a;
    char k[SL_RECORD_ATTR_KEY_MAX + 1];
    while (attrs != NULL && sl_record_attr_next(r, &pos, &a) == 1) {
        snprintf(k, sizeof(k), "%.*s", (int)a.key_len, a.key);
        json_t *v = json_stringn(a.value, a.value_len);
        json_object_set_new(attrs, k, v != NULL ? v : json_string("(not UTF-8)"));
    }
    const char *kenc = "utf8", *venc = "utf8";
    json_t *key = r->key_len > 0 ? bytes_json(r->key, r->key_len, &kenc) : json_null();
    json_t *value = bytes_json(r->value, r->value_len, &venc);
    return json_pack("{s:I,s:I,s:I,s:I,s:o*,s:s,s:o*,s:s,s:I,s:o*}", "shard", (json_int_t)shard,
                     "seq", (json_int_t)r->seq, "time_ms", (json_int_t)r->timestamp_ms,
                     "append_ms", (json_int_t)append_ms, "key", key, "key_encoding", kenc,
                     "value", value, "value_encoding", venc, "size",
                     (json_int_t)(r->key_len + r->value_len + r->attrs_len), "attributes", attrs);
}

static bool page_full(const struct page_op *op)
{
    return json_array_size(op->records) >= op->limit || op->bytes >= op->page_bytes_max;
}

/* Adds the records of one batch at or after from_seq to the page. */
static int walk_batch(struct page_op *op, const uint8_t *p, size_t avail,
                      struct sl_batch_header *h)
{
    int rc = sl_api_batch_peek(p, avail, h);
    if (rc != SL_OK) {
        return rc;
    }
    if (h->append_time_ms < op->from_time_ms) {
        return SL_OK;
    }
    op->last_append_ms = h->append_time_ms;
    struct sl_batch_iter it;
    rc = sl_api_batch_iter(p, h, &it);
    struct sl_record_view r;
    while (rc == SL_OK && !page_full(op) && (rc = sl_batch_iter_next(&it, &r)) == SL_OK) {
        if (r.seq < op->from_seq) {
            continue;
        }
        if (!op->started) {
            op->started = true;
            op->start_seq = r.seq;
        }
        op->from_seq = r.seq + 1; /* where the page goes on */
        if (!sl_rest_filter_match(&op->filter, &r)) {
            continue;
        }
        json_t *j = record_json(&r, op->shard, h->append_time_ms);
        if (j == NULL || json_array_append_new(op->records, j) != 0) {
            return SL_ENOMEM;
        }
        op->bytes += r.key_len + r.value_len + r.attrs_len;
    }
    return rc == SL_ENOTFOUND ? SL_OK : rc;
}

static void page_free(struct page_op *op)
{
    json_decref(op->records);
    free(op);
}

static void fetch_page(struct page_op *op);

static void on_page(void *ctx, const struct sl_fetch_result *r)
{
    struct page_op *op = ctx;
    int rc = r->err;
    char why[SL_REST_WHY_MAX];
    if (rc == SL_ETRIMMED && op->fetches == 1) {
        /* below the oldest retained: the page starts there */
        op->pos = (struct sl_position){.kind = SL_POS_AT_SEQ, .seq = r->next_seq};
        op->from_seq = r->next_seq;
        fetch_page(op);
        return;
    }
    if (rc != SL_OK) {
        snprintf(why, sizeof(why), "shard %u of %s: %s", op->shard, op->stream, r->why);
        op->done(op, rc, why);
        return;
    }
    for (uint32_t off = 0; rc == SL_OK && off < r->len && !page_full(op);) {
        struct sl_batch_header h;
        rc = walk_batch(op, r->batches + off, r->len - off, &h);
        off += rc == SL_OK ? h.length : 0;
    }
    if (rc != SL_OK) {
        snprintf(why, sizeof(why), "shard %u of %s cannot be read back: %s", op->shard,
                 op->stream, sl_strerror(rc));
        op->done(op, rc, why);
        return;
    }
    op->scanned += r->len;
    if (op->from_seq < r->next_seq && !page_full(op)) {
        op->from_seq = r->next_seq;
    }
    if (!op->started) {
        op->start_seq = op->from_seq;
    }
    bool more = r->len > 0 && op->from_seq < r->tail_seq && !page_full(op) &&
                op->scanned < op->scan_max && op->fetches < op->fetches_max;
    if (more) {
        op->pos = (struct sl_position){.kind = SL_POS_AT_SEQ, .seq = op->from_seq};
        op->from_time_ms = 0; /* the first record at the time is behind */
        fetch_page(op);
        return;
    }
    op->first_seq = r->first_seq;
    op->tail_seq = r->tail_seq;
    op->done(op, SL_OK, NULL);
}

/* One shard's page: the answer. */
static void page_done(struct page_op *op, int err, const char *why)
{
    if (err != SL_OK) {
        sl_rest_fail(op->call, err, "%s", why);
    } else {
        sl_rest_reply(op->call, 200,
                      json_pack("{s:I,s:I,s:I,s:I,s:I,s:O}", "shard", (json_int_t)op->shard,
                                "first_seq", (json_int_t)op->first_seq, "tail_seq",
                                (json_int_t)op->tail_seq, "start_seq",
                                (json_int_t)op->start_seq, "next_seq", (json_int_t)op->from_seq,
                                "records", op->records));
    }
    page_free(op);
}

static void fetch_page(struct page_op *op)
{
    SL_ASSERT(op->fetches < op->fetches_max + 1u);
    op->fetches++;
    struct sl_fetch_req req = {.stream = op->stream, .shard = op->shard, .pos = op->pos,
                               .max_bytes = op->fetch_bytes};
    sl_fetch_start(op->call->api->engine, &req, on_page, op);
}

/* The page's filter from the query (key, attr=NAME=VALUE, contains, jpath
 * and jvalue); answered and false when a part is malformed. */
static bool filter_of(struct sl_api_call *call, struct page_op *op)
{
    struct sl_rest_filter *f = &op->filter;
    bool bad = false;
    f->key = sl_rest_query(call, "key", op->key, sizeof(op->key), &bad);
    const char *attr = bad ? NULL : sl_rest_query(call, "attr", op->attr, sizeof(op->attr), &bad);
    f->contains =
        bad ? NULL : sl_rest_query(call, "contains", op->contains, sizeof(op->contains), &bad);
    f->jpath = bad ? NULL : sl_rest_query(call, "jpath", op->jpath, sizeof(op->jpath), &bad);
    f->jvalue = bad ? NULL : sl_rest_query(call, "jvalue", op->jvalue, sizeof(op->jvalue), &bad);
    if (bad) {
        sl_rest_fail(call, SL_EINVAL,
                     "a filter is badly escaped or too long (a key at most %u bytes, the others "
                     "%u)",
                     SL_RECORD_KEY_MAX, SL_REST_FILTER_TEXT_MAX);
        return false;
    }
    if (attr != NULL && !sl_rest_filter_attr(f, op->attr)) {
        sl_rest_fail(call, SL_EINVAL, "attr: NAME=VALUE (got '%s')", attr);
        return false;
    }
    if ((f->jpath != NULL && !sl_rest_jpath_ok(f->jpath)) || (f->jvalue != NULL && f->jpath == NULL)) {
        sl_rest_fail(call, SL_EINVAL,
                     "jpath: a path into the value's JSON such as detail.items[0].sku (at most "
                     "%u steps); jvalue needs a jpath",
                     SL_REST_JPATH_DEPTH_MAX);
        return false;
    }
    op->scan_max = f->jpath != NULL ? REST_SCAN_JSON_BYTES_MAX : REST_SCAN_BYTES_MAX;
    return true;
}

/* ---- a whole stream: the shards' pages merged by append time ---------------- */

/* Every shard is read from its cursor at once, with a share of the page's
 * budgets; the records are merged by (append time, shard, seq). A record is
 * taken only up to the watermark: the earliest last-scanned append time of
 * the shards that have more, so nothing unread can come before what is
 * shown. The cursor says where each shard goes on. Forward only ("latest"
 * is the newest page of the stream); no previous page. */
struct merge_op {
    struct sl_api_call *call;
    bool latest;
    uint32_t limit;
    uint32_t n, pending;
    int err;
    char why[SL_REST_WHY_MAX];
    struct page_op *shards[]; /* n */
};

struct merge_item {
    uint64_t append_ms, seq;
    uint32_t shard, idx; /* idx: in its shard's records */
};

static int item_cmp(const void *a, const void *b)
{
    const struct merge_item *x = a, *y = b;
    if (x->append_ms != y->append_ms) {
        return x->append_ms < y->append_ms ? -1 : 1;
    }
    if (x->shard != y->shard) {
        return x->shard < y->shard ? -1 : 1;
    }
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void merge_free(struct merge_op *m)
{
    for (uint32_t i = 0; i < m->n; i++) {
        if (m->shards[i] != NULL) {
            page_free(m->shards[i]);
        }
    }
    free(m);
}

/* The merged answer: records, the cursor, whether any shard has more. */
static json_t *merge_answer(struct merge_op *m)
{
    size_t total = 0;
    uint64_t watermark = UINT64_MAX;
    for (uint32_t i = 0; i < m->n; i++) {
        struct page_op *c = m->shards[i];
        total += json_array_size(c->records);
        if (c->from_seq < c->tail_seq && c->last_append_ms < watermark) {
            watermark = c->last_append_ms;
        }
    }
    struct merge_item *items = calloc(total + 1, sizeof(*items));
    uint32_t *taken = calloc(m->n, sizeof(*taken)); /* per shard: records taken, in order */
    json_t *records = json_array(), *cursor = json_array();
    if (items == NULL || taken == NULL || records == NULL || cursor == NULL) {
        free(items);
        free(taken);
        json_decref(records);
        json_decref(cursor);
        return NULL;
    }
    size_t k = 0;
    for (uint32_t i = 0; i < m->n; i++) {
        json_t *arr = m->shards[i]->records;
        for (size_t j = 0; j < json_array_size(arr); j++) {
            json_t *r = json_array_get(arr, j);
            items[k++] = (struct merge_item){
                .append_ms = (uint64_t)json_integer_value(json_object_get(r, "append_ms")),
                .seq = (uint64_t)json_integer_value(json_object_get(r, "seq")),
                .shard = i, .idx = (uint32_t)j};
        }
    }
    SL_ASSERT(k == total);
    qsort(items, total, sizeof(*items), item_cmp);
    size_t from = 0, to = 0;
    while (to < total && to - from < m->limit && items[to].append_ms <= watermark) {
        to++;
    }
    if (m->latest) { /* every shard was read to its tail: the newest page */
        from = total > m->limit ? total - m->limit : 0;
        to = total;
    }
    for (size_t i = from; i < to; i++) {
        json_array_append(records,
                          json_array_get(m->shards[items[i].shard]->records, items[i].idx));
    }
    /* Records of a shard are taken in its order, so a shard's next record
     * is the first it did not give; all given: its scan went to from_seq. */
    for (size_t i = 0; i < to; i++) {
        taken[items[i].shard]++;
    }
    bool more = to < total;
    for (uint32_t i = 0; i < m->n; i++) {
        struct page_op *c = m->shards[i];
        uint64_t next = c->from_seq;
        if (taken[i] < json_array_size(c->records)) {
            next = (uint64_t)json_integer_value(
                json_object_get(json_array_get(c->records, taken[i]), "seq"));
        }
        more = more || next < c->tail_seq;
        json_array_append_new(cursor, json_integer((json_int_t)next));
    }
    free(items);
    free(taken);
    return json_pack("{s:s,s:o,s:o,s:b}", "shard", "all", "records", records, "cursor", cursor,
                     "more", more);
}

/* One shard's page done (or the starting loop's hold released): the last answers. */
static void merge_release(struct merge_op *m, int err, const char *why)
{
    SL_ASSERT(m->pending > 0);
    if (err != SL_OK && m->err == SL_OK) {
        m->err = err;
        snprintf(m->why, sizeof(m->why), "%s", why);
    }
    if (--m->pending > 0) {
        return;
    }
    if (m->err != SL_OK) {
        sl_rest_fail(m->call, m->err, "%s", m->why);
    } else {
        sl_rest_reply(m->call, 200, merge_answer(m));
    }
    merge_free(m);
}

static void merge_shard_done(struct page_op *op, int err, const char *why)
{
    merge_release(op->merge, err, why);
}

/* ---- GET .../records ------------------------------------------------------------ */

/* A page of one shard with the request's filter and limits (or NULL, answered). */
static struct page_op *page_new(struct sl_api_call *call, const struct sl_stream *st,
                                uint32_t shard, uint32_t limit, uint32_t share)
{
    struct page_op *op = calloc(1, sizeof(*op));
    json_t *records = json_array();
    if (op == NULL || records == NULL) {
        free(op);
        json_decref(records);
        sl_rest_fail(call, SL_ENOMEM, "out of memory");
        return NULL;
    }
    *op = (struct page_op){.call = call, .shard = shard, .limit = limit, .records = records,
                           .done = page_done};
    snprintf(op->stream, sizeof(op->stream), "%s", st->name);
    if (!filter_of(call, op)) {
        page_free(op);
        return NULL;
    }
    /* a whole-stream page shares the budgets between its shards */
    op->page_bytes_max = REST_PAGE_BYTES_MAX / share;
    op->fetch_bytes = REST_FETCH_BYTES / share > REST_MERGE_FETCH_BYTES_MIN
                          ? REST_FETCH_BYTES / share
                          : REST_MERGE_FETCH_BYTES_MIN;
    op->scan_max = op->scan_max / share > op->fetch_bytes ? op->scan_max / share : op->fetch_bytes;
    op->fetches_max = REST_SCAN_FETCHES_MAX / share > 0 ? REST_SCAN_FETCHES_MAX / share : 1;
    return op;
}

/* Sets the page's first position; answered and false when `from` is bad. */
static bool page_from(struct page_op *op, const struct sl_stream *st, const char *from)
{
    struct sl_shard_info si;
    sl_streams_shard_info(st, op->shard, &si);
    if (!sl_rest_position_of(from, op->limit, si.first_seq, si.next_seq, &op->pos)) {
        sl_rest_fail(op->call, SL_EINVAL,
                     "from: oldest, latest, seq:N, time:ISO-8601 or time_ms:N (got '%s')", from);
        return false;
    }
    op->from_seq = op->pos.kind == SL_POS_AT_SEQ ? op->pos.seq : 0;
    op->from_time_ms = op->pos.kind == SL_POS_AT_TIME ? op->pos.time_ms : 0;
    return true;
}

static void records_all(struct sl_api_call *call, struct sl_stream *st, uint32_t limit,
                        const char *from)
{
    char cbuf[REST_CURSOR_TEXT_MAX];
    bool bad = false;
    const char *cursor = sl_rest_query(call, "cursor", cbuf, sizeof(cbuf), &bad);
    if ((uint64_t)limit * st->shard_count > REST_MERGE_RECORDS_MAX || bad) {
        sl_rest_fail(call, SL_EINVAL,
                     bad ? "cursor: badly escaped or too long"
                         : "a whole-stream page of %u shards takes at most %u records: ask "
                           "for fewer",
                     st->shard_count, REST_MERGE_RECORDS_MAX / st->shard_count);
        return;
    }
    struct merge_op *m = calloc(1, sizeof(*m) + st->shard_count * sizeof(m->shards[0]));
    if (m == NULL) {
        sl_rest_fail(call, SL_ENOMEM, "out of memory");
        return;
    }
    *m = (struct merge_op){.call = call, .limit = limit, .n = st->shard_count,
                           .latest = from != NULL && strcmp(from, "latest") == 0};
    const char *c = cursor;
    for (uint32_t i = 0; i < m->n; i++) {
        struct page_op *op = page_new(call, st, i, limit, m->n);
        if (op == NULL) {
            merge_free(m);
            return;
        }
        m->shards[i] = op;
        op->done = merge_shard_done;
        op->merge = m;
        if (c != NULL) { /* a cursor: one sequence per shard, comma-separated */
            char *end = NULL;
            unsigned long long v = strtoull(c, &end, 10);
            if (end == c || (*end != ',' && *end != '\0') || (*end == '\0') != (i + 1 == m->n)) {
                merge_free(m);
                sl_rest_fail(call, SL_EINVAL,
                             "cursor: %u sequences, comma-separated, as a previous page gave",
                             st->shard_count);
                return;
            }
            op->pos = (struct sl_position){.kind = SL_POS_AT_SEQ, .seq = v};
            op->from_seq = v;
            c = *end == ',' ? end + 1 : end;
        } else if (!page_from(op, st, from)) {
            merge_free(m);
            return;
        }
    }
    /* Callbacks may run inside sl_fetch_start (fetch.h): +1 held by this loop, so the last
     * shard's answer cannot free the merge while shards are still to be started. */
    m->pending = m->n + 1;
    for (uint32_t i = 0; i < m->n; i++) {
        fetch_page(m->shards[i]);
    }
    merge_release(m, SL_OK, "");
}

void sl_rest_records_get(struct sl_api_call *call, struct sl_stream *st)
{
    char buf[64], from[64];
    bool bad = false;
    const char *s = sl_rest_query(call, "shard", buf, sizeof(buf), &bad);
    uint64_t shard = 0, limit = REST_LIMIT_DEFAULT;
    bool all = s != NULL && strcmp(s, "all") == 0;
    if (bad || (s != NULL && !all && (!sl_rest_u64(s, &shard) || shard >= st->shard_count))) {
        sl_rest_fail(call, SL_EINVAL, "shard: all, or a number below the stream's %u shards",
                     st->shard_count);
        return;
    }
    s = sl_rest_query(call, "limit", buf, sizeof(buf), &bad);
    if (bad || (s != NULL && (!sl_rest_u64(s, &limit) || limit == 0 || limit > REST_LIMIT_MAX))) {
        sl_rest_fail(call, SL_EINVAL, "limit: 1 to %u records", REST_LIMIT_MAX);
        return;
    }
    const char *f = sl_rest_query(call, "from", from, sizeof(from), &bad);
    if (bad) {
        sl_rest_fail(call, SL_EINVAL, "from: badly escaped or too long");
        return;
    }
    if (all) {
        records_all(call, st, (uint32_t)limit, f);
        return;
    }
    struct page_op *op = page_new(call, st, (uint32_t)shard, (uint32_t)limit, 1);
    if (op != NULL && page_from(op, st, f)) {
        fetch_page(op);
    } else if (op != NULL) {
        page_free(op);
    }
}

/* ---- one record written ---------------------------------------------------- */

struct put_op {
    struct sl_api_call *call;
    uint8_t *batch;
};

static void on_put(void *ctx, const struct sl_produce_result *r)
{
    struct put_op *op = ctx;
    if (r->err != SL_OK) {
        sl_rest_fail(op->call, r->err, "%s", r->why);
    } else {
        sl_rest_reply(op->call, 200, json_pack("{s:I,s:I}", "shard", (json_int_t)r->shard, "seq",
                                               (json_int_t)r->base_seq));
    }
    free(op->batch);
    free(op);
}

void sl_rest_records_post(struct sl_api_call *call, struct sl_stream *st)
{
    json_error_t jerr;
    json_t *body = json_loadb((const char *)call->req->body, call->req->body_len,
                              JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(body)) {
        json_decref(body);
        sl_rest_fail(call, SL_EINVAL, "the body is not a JSON object: %s", jerr.text);
        return;
    }
    struct sl_record rec;
    struct sl_attr attrs[SL_RECORD_ATTRS_MAX];
    char why[SL_REST_WHY_MAX];
    int rc = sl_rest_record_of(body, &rec, attrs, why, sizeof(why));
    if (rc != SL_OK) {
        json_decref(body);
        sl_rest_fail(call, rc, "%s", why);
        return;
    }
    rec.timestamp_ms = sl_clock_wall_ms();
    size_t cap = SL_BATCH_HEADER_BYTES + sl_batch_record_bytes(&rec, 0) + 64;
    struct put_op *op = calloc(1, sizeof(*op));
    uint8_t *batch = malloc(cap);
    size_t len = 0;
    struct sl_batch_builder b;
    rc = op != NULL && batch != NULL ? SL_OK : SL_ENOMEM;
    if (rc == SL_OK) {
        sl_batch_builder_init(&b, batch, cap);
        rc = sl_batch_builder_add(&b, &rec);
    }
    rc = rc == SL_OK
             ? sl_batch_builder_finish(&b, SL_BATCH_CODEC_NONE, 0, NULL, NULL, 0, 0, 0, &len)
             : rc;
    static uint32_t next_shard; /* records without a key: round robin */
    uint32_t shard = rec.key_len > 0
                         ? sl_catalog_route(st, sl_partition_hash(rec.key, rec.key_len))
                         : sl_catalog_open_shard(st, next_shard++ % st->lineage.open);
    json_decref(body); /* the record's bytes are in the batch from here */
    if (rc != SL_OK) {
        free(op);
        free(batch);
        sl_rest_fail(call, rc, "the record does not fit in a batch: %s", sl_strerror(rc));
        return;
    }
    *op = (struct put_op){.call = call, .batch = batch};
    struct sl_produce_req req = {.stream = st->name, .shard = shard, .batch = batch, .len = len,
                                 .ack = SL_ACK_DURABLE, .forward = true};
    sl_produce_submit(call->api->engine, &req, on_put, op);
}
