/* rest_records.c - the console's records: a page of one shard from a
 * position (GET .../records), and one record written (POST .../records).
 *
 * A page is read by position through the shard's index (sl_fetch_start),
 * never by scanning from the start, so browsing a 100 GB stream costs what
 * a page costs. A filter (key, attribute, substring, JSON path) scans
 * forward at most REST_SCAN_BYTES_MAX (REST_SCAN_JSON_BYTES_MAX when it
 * parses values as JSON: that costs the loop ~10 ms a MiB) and
 * REST_SCAN_FETCHES_MAX fetches per request; the answer's next_seq says
 * where to go on. The answer is bounded by REST_PAGE_BYTES_MAX.
 *
 * Threading: the main loop. Fetch callbacks may run before sl_fetch_start
 * returns; the chain of fetches is bounded by REST_SCAN_FETCHES_MAX.
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

static json_t *record_json(const struct sl_record_view *r)
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
    return json_pack("{s:I,s:I,s:o*,s:s,s:o*,s:s,s:I,s:o*}", "seq", (json_int_t)r->seq, "time_ms",
                     (json_int_t)r->timestamp_ms, "key", key, "key_encoding", kenc, "value",
                     value, "value_encoding", venc, "size",
                     (json_int_t)(r->key_len + r->value_len + r->attrs_len), "attributes", attrs);
}

static bool page_full(const struct page_op *op)
{
    return json_array_size(op->records) >= op->limit || op->bytes >= REST_PAGE_BYTES_MAX;
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
        json_t *j = record_json(&r);
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
    if (rc == SL_ETRIMMED && op->fetches == 1) {
        /* below the oldest retained: the page starts there */
        op->pos = (struct sl_position){.kind = SL_POS_AT_SEQ, .seq = r->next_seq};
        op->from_seq = r->next_seq;
        fetch_page(op);
        return;
    }
    if (rc != SL_OK) {
        sl_rest_fail(op->call, rc, "shard %u of %s: %s", op->shard, op->stream, r->why);
        page_free(op);
        return;
    }
    for (uint32_t off = 0; rc == SL_OK && off < r->len && !page_full(op);) {
        struct sl_batch_header h;
        rc = walk_batch(op, r->batches + off, r->len - off, &h);
        off += rc == SL_OK ? h.length : 0;
    }
    if (rc != SL_OK) {
        sl_rest_fail(op->call, rc, "shard %u of %s cannot be read back: %s", op->shard,
                     op->stream, sl_strerror(rc));
        page_free(op);
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
                op->scanned < op->scan_max && op->fetches < REST_SCAN_FETCHES_MAX;
    if (more) {
        op->pos = (struct sl_position){.kind = SL_POS_AT_SEQ, .seq = op->from_seq};
        op->from_time_ms = 0; /* the first record at the time is behind */
        fetch_page(op);
        return;
    }
    json_t *body = json_pack("{s:I,s:I,s:I,s:I,s:I,s:O}", "shard", (json_int_t)op->shard,
                             "first_seq", (json_int_t)r->first_seq, "tail_seq",
                             (json_int_t)r->tail_seq, "start_seq", (json_int_t)op->start_seq,
                             "next_seq", (json_int_t)op->from_seq, "records", op->records);
    sl_rest_reply(op->call, 200, body);
    page_free(op);
}

static void fetch_page(struct page_op *op)
{
    SL_ASSERT(op->fetches < REST_SCAN_FETCHES_MAX + 1u);
    op->fetches++;
    struct sl_fetch_req req = {.stream = op->stream, .shard = op->shard, .pos = op->pos,
                               .max_bytes = REST_FETCH_BYTES};
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

void sl_rest_records_get(struct sl_api_call *call, struct sl_stream *st)
{
    char buf[64], from[64];
    bool bad = false;
    const char *s = sl_rest_query(call, "shard", buf, sizeof(buf), &bad);
    uint64_t shard = 0, limit = REST_LIMIT_DEFAULT;
    if (bad || (s != NULL && (!sl_rest_u64(s, &shard) || shard >= st->shard_count))) {
        sl_rest_fail(call, SL_EINVAL, "shard: a number below the stream's %u shards",
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
    struct page_op *op = calloc(1, sizeof(*op));
    json_t *records = json_array();
    if (op == NULL || records == NULL) {
        free(op);
        json_decref(records);
        sl_rest_fail(call, SL_ENOMEM, "out of memory");
        return;
    }
    *op = (struct page_op){.call = call, .shard = (uint32_t)shard, .limit = (uint32_t)limit,
                           .records = records};
    snprintf(op->stream, sizeof(op->stream), "%s", st->name);
    if (!filter_of(call, op)) {
        page_free(op);
        return;
    }
    struct sl_shard_info si;
    sl_streams_shard_info(st, op->shard, &si);
    if (!sl_rest_position_of(f, op->limit, si.first_seq, si.next_seq, &op->pos)) {
        page_free(op);
        sl_rest_fail(call, SL_EINVAL,
                     "from: oldest, latest, seq:N, time:ISO-8601 or time_ms:N (got '%s')", f);
        return;
    }
    op->from_seq = op->pos.kind == SL_POS_AT_SEQ ? op->pos.seq : 0;
    op->from_time_ms = op->pos.kind == SL_POS_AT_TIME ? op->pos.time_ms : 0;
    fetch_page(op);
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
                         ? sl_partition_shard(sl_partition_hash(rec.key, rec.key_len),
                                              st->shard_count)
                         : next_shard++ % st->shard_count;
    json_decref(body); /* the record's bytes are in the batch from here */
    if (rc != SL_OK) {
        free(op);
        free(batch);
        sl_rest_fail(call, rc, "the record does not fit in a batch: %s", sl_strerror(rc));
        return;
    }
    *op = (struct put_op){.call = call, .batch = batch};
    struct sl_produce_req req = {.stream = st->name, .shard = shard, .batch = batch, .len = len,
                                 .ack = SL_ACK_DURABLE};
    sl_produce_submit(call->api->engine, &req, on_put, op);
}
