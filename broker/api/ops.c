/* ops.c - /healthz, /readyz and /metrics (see ops.h).
 *
 * /metrics walks the catalog once per metric family (the text format wants
 * a family's samples together): O(shards + groups) work and memory per
 * scrape, no per-shard synchronous call (consumer lag's time lookups are
 * batched per worker, sl_consumer_lag_all). Label values are escaped as the
 * format says (\\, \", \n); stream names cannot hold those, group names can.
 */
#include "broker/api/ops.h"

#include "broker/engine/catalog.h"
#include "broker/engine/consumer.h"
#include "broker/engine/engine.h"
#include "broker/engine/queue.h"
#include "broker/engine/streams.h"
#include "common/clock.h"
#include "common/error.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

/* A growing text buffer; a failed allocation marks it failed (503). */
struct text {
    char *p;
    size_t len;
    size_t cap;
    bool failed;
};

__attribute__((format(printf, 2, 3))) static void put(struct text *t, const char *fmt, ...)
{
    if (t->failed) {
        return;
    }
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->p != NULL ? t->p + t->len : NULL, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->failed = true;
            return;
        }
        if ((size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = t->cap > 0 ? t->cap * 2 : 64 * 1024;
        while (cap - t->len <= (size_t)n) {
            cap *= 2;
        }
        char *p = realloc(t->p, cap);
        if (p == NULL) {
            t->failed = true;
            return;
        }
        t->p = p;
        t->cap = cap;
    }
}

/* A label value, escaped. */
static void put_label(struct text *t, const char *v)
{
    for (; *v != '\0'; v++) {
        if (*v == '\\' || *v == '"') {
            put(t, "\\%c", *v);
        } else if (*v == '\n') {
            put(t, "\\n");
        } else {
            put(t, "%c", *v);
        }
    }
}

static void family(struct text *t, const char *name, const char *type, const char *help)
{
    put(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

struct disk {
    uint64_t free_bytes;
    uint64_t size_bytes;
    bool known;
};

static struct disk disk_of(const char *dir)
{
    struct statvfs v;
    struct disk d = {0};
    if (dir != NULL && statvfs(dir, &v) == 0) {
        d.free_bytes = (uint64_t)v.f_bavail * v.f_frsize;
        d.size_bytes = (uint64_t)v.f_blocks * v.f_frsize;
        d.known = true;
    }
    return d;
}

/* ---- per-shard families ------------------------------------------------ */

enum shard_metric {
    SM_RECORDS_IN,
    SM_BYTES_IN,
    SM_RECORDS_OUT,
    SM_BYTES_OUT,
    SM_FIRST_SEQ,
    SM_NEXT_SEQ,
    SM_RETAINED_BYTES,
    SM_SEGMENTS,
    SM_WRITES,
    SM_FSYNCS,
    SM_FSYNC_SECONDS,
    SM_UP,
    SM_COUNT_
};

static const struct {
    const char *name;
    const char *type;
    const char *help;
} shard_metrics[SM_COUNT_] = {
    {"sluice_shard_records_in_total", "counter", "Records appended to the shard."},
    {"sluice_shard_bytes_in_total", "counter", "Batch bytes appended to the shard."},
    {"sluice_shard_records_out_total", "counter", "Records served by fetches from the shard."},
    {"sluice_shard_bytes_out_total", "counter", "Batch bytes served by fetches from the shard."},
    {"sluice_shard_first_sequence", "gauge", "Sequence of the oldest retained record."},
    {"sluice_shard_next_sequence", "gauge", "Sequence the next record will get (visible tail)."},
    {"sluice_shard_retained_bytes", "gauge", "Bytes of log retained on disk."},
    {"sluice_shard_segments", "gauge", "Segment files of the shard."},
    {"sluice_shard_writes_total", "counter", "Write operations issued to the shard's log."},
    {"sluice_shard_fsyncs_total", "counter",
     "fdatasyncs of the shard's log (one covers every write before it: group commit)."},
    {"sluice_shard_fsync_seconds_total", "counter",
     "Time the shard's fdatasyncs took (rate / rate of fsyncs_total = mean fsync latency)."},
    {"sluice_shard_up", "gauge",
     "1 when the shard takes writes; 0 when it is fatal (an I/O error) or its disk is full."},
};

static double shard_value(enum shard_metric m, const struct sl_bshard *b,
                          const struct sl_shard_info *si)
{
    switch (m) {
    case SM_WRITES:
        return (double)si->writes;
    case SM_FSYNCS:
        return (double)si->fsyncs;
    case SM_FSYNC_SECONDS:
        return (double)si->fsync_ns / 1e9;
    case SM_RECORDS_IN:
        return (double)b->io.records_in;
    case SM_BYTES_IN:
        return (double)b->io.bytes_in;
    case SM_RECORDS_OUT:
        return (double)b->io.records_out;
    case SM_BYTES_OUT:
        return (double)b->io.bytes_out;
    case SM_FIRST_SEQ:
        return (double)si->first_seq;
    case SM_NEXT_SEQ:
        return (double)si->next_seq;
    case SM_RETAINED_BYTES:
        return (double)si->bytes;
    case SM_SEGMENTS:
        return si->segments;
    default:
        return si->status == SL_OK;
    }
}

static void put_shards(struct text *t, struct sl_catalog *cat)
{
    size_t n = 0;
    for (struct sl_stream *st = sl_catalog_first(cat); st != NULL; st = st->next) {
        n += st->shard_count;
    }
    /* each shard's stats once, then one pass per family */
    struct sl_shard_info *info = n > 0 ? malloc(n * sizeof(*info)) : NULL;
    if (n > 0 && info == NULL) {
        t->failed = true;
        return;
    }
    size_t k = 0;
    for (struct sl_stream *st = sl_catalog_first(cat); st != NULL; st = st->next) {
        for (uint32_t i = 0; i < st->shard_count; i++) {
            sl_streams_shard_info(st, i, &info[k++]);
        }
    }
    for (uint32_t m = 0; m < SM_COUNT_; m++) {
        family(t, shard_metrics[m].name, shard_metrics[m].type, shard_metrics[m].help);
        k = 0;
        for (struct sl_stream *st = sl_catalog_first(cat); st != NULL; st = st->next) {
            for (uint32_t i = 0; i < st->shard_count; i++, k++) {
                put(t, "%s{stream=\"%s\",shard=\"%u\"} %.17g\n", shard_metrics[m].name,
                    st->name, i, shard_value(m, &st->shards[i], &info[k]));
            }
        }
    }
    free(info);
}

/* ---- engine operations --------------------------------------------------- */

/* One histogram's samples with one label (cumulative buckets). */
static void put_histogram(struct text *t, const char *name, const char *label,
                          const char *value, const struct sl_latency *h)
{
    uint64_t cum = 0;
    for (uint32_t b = 0; b < SL_LATENCY_BUCKETS - 1; b++) {
        cum += h->bucket[b];
        put(t, "%s_bucket{%s=\"%s\",le=\"%g\"} %llu\n", name, label, value,
            sl_latency_bound_s(b), (unsigned long long)cum);
    }
    put(t, "%s_bucket{%s=\"%s\",le=\"+Inf\"} %llu\n", name, label, value,
        (unsigned long long)h->count);
    put(t, "%s_sum{%s=\"%s\"} %.9f\n", name, label, value, (double)h->sum_ns / 1e9);
    put(t, "%s_count{%s=\"%s\"} %llu\n", name, label, value, (unsigned long long)h->count);
}

static const char *const op_names[SL_OP_COUNT_] = {"produce", "fetch", "commit", "receive",
                                                   "settle"};

static void put_ops(struct text *t, const struct sl_engine_stats *es)
{
    family(t, "sluice_requests_total", "counter",
           "Engine operations by result code (produce, fetch, checkpoint commit, queue "
           "receive, ack/nack/extend), whatever the protocol.");
    for (uint32_t o = 0; o < SL_OP_COUNT_; o++) {
        for (int code = 0; code < SL_ERR_COUNT_; code++) {
            if (code == SL_OK || es->op[o].results[code] > 0) {
                const char *name = sl_errname(code);
                name += strncmp(name, "SL_", 3) == 0 ? 3 : 0;
                put(t, "sluice_requests_total{op=\"%s\",code=\"%s\"} %llu\n", op_names[o], name,
                    (unsigned long long)es->op[o].results[code]);
            }
        }
    }
    family(t, "sluice_request_duration_seconds", "histogram",
           "From an engine operation's start to its answer (a long-poll's wait included).");
    for (uint32_t o = 0; o < SL_OP_COUNT_; o++) {
        put_histogram(t, "sluice_request_duration_seconds", "op", op_names[o],
                      &es->op[o].latency);
    }
}

/* ---- consumer groups and queue groups ------------------------------------ */

static void put_lag(struct text *t, struct sl_engine *e)
{
    struct sl_group_lag *v = NULL;
    size_t n = 0;
    if (sl_consumer_lag_all(e, &v, &n) != SL_OK) {
        t->failed = true;
        return;
    }
    family(t, "sluice_consumer_lag_records", "gauge",
           "Records appended to the shard after the consumer group's checkpoint.");
    for (size_t i = 0; i < n; i++) {
        put(t, "sluice_consumer_lag_records{stream=\"%s\",group=\"", v[i].stream);
        put_label(t, v[i].group);
        put(t, "\",shard=\"%u\"} %llu\n", v[i].lag.shard,
            (unsigned long long)v[i].lag.records_behind);
    }
    family(t, "sluice_consumer_lag_seconds", "gauge",
           "Append time of the shard's newest record minus that of the record at the "
           "consumer group's checkpoint (0 when caught up).");
    for (size_t i = 0; i < n; i++) {
        put(t, "sluice_consumer_lag_seconds{stream=\"%s\",group=\"", v[i].stream);
        put_label(t, v[i].group);
        put(t, "\",shard=\"%u\"} %.3f\n", v[i].lag.shard, (double)v[i].lag.ms_behind / 1000.0);
    }
    sl_consumer_lag_all_free(v, n);
}

struct queue_walk {
    struct sl_engine *e;
    const char *stream;
    struct text *t;
    uint32_t field;
};

static const struct {
    const char *name;
    const char *type;
    const char *help;
} queue_metrics[] = {
    {"sluice_queue_visible", "gauge", "Records of the queue group ready for delivery."},
    {"sluice_queue_inflight", "gauge", "Records leased to receivers (in flight)."},
    {"sluice_queue_delayed", "gauge", "Records nacked with a delay or sent with a delay."},
    {"sluice_queue_dead_lettered_total", "counter",
     "Records moved to the group's dead-letter stream."},
    {"sluice_queue_filtered_total", "counter", "Records skipped by the group's filter."},
};

static void walk_queue(void *ctx, const char *group)
{
    struct queue_walk *w = ctx;
    struct sl_qgroup_stats qs;
    char why[256];
    if (sl_queue_stats(w->e, w->stream, group, &qs, why, sizeof(why)) != SL_OK) {
        return;
    }
    uint64_t v[] = {qs.visible, qs.inflight, qs.delayed, qs.dead_lettered, qs.filtered_out};
    put(w->t, "%s{stream=\"%s\",group=\"", queue_metrics[w->field].name, w->stream);
    put_label(w->t, group);
    put(w->t, "\"} %llu\n", (unsigned long long)v[w->field]);
}

static void put_queues(struct text *t, struct sl_engine *e)
{
    for (uint32_t f = 0; f < sizeof(queue_metrics) / sizeof(queue_metrics[0]); f++) {
        family(t, queue_metrics[f].name, queue_metrics[f].type, queue_metrics[f].help);
        for (struct sl_stream *st = sl_catalog_first(e->catalog); st != NULL; st = st->next) {
            struct queue_walk w = {.e = e, .stream = st->name, .t = t, .field = f};
            char why[256];
            sl_queue_groups(e, st->name, walk_queue, &w, why, sizeof(why));
        }
    }
}

/* ---- the endpoints -------------------------------------------------------- */

static void put_process(struct text *t, struct sl_api *api)
{
    family(t, "sluice_build_info", "gauge", "The broker's version.");
    put(t, "sluice_build_info{version=\"%s\"} 1\n", api->cfg.version);
    family(t, "sluice_uptime_seconds", "gauge", "Seconds since the broker started serving.");
    put(t, "sluice_uptime_seconds %.3f\n",
        (double)(sl_clock_wall_ms() - api->started_ms) / 1000.0);
    family(t, "sluice_connections", "gauge", "Open client connections by protocol.");
    put(t, "sluice_connections{protocol=\"native\"} %u\n", sl_net_conn_count(api->net, "native"));
    put(t, "sluice_connections{protocol=\"http\"} %u\n", sl_net_conn_count(api->net, "http"));
    uint32_t streams = 0, shards = 0;
    for (struct sl_stream *st = sl_catalog_first(api->engine->catalog); st != NULL;
         st = st->next) {
        streams++;
        shards += st->shard_count;
    }
    family(t, "sluice_streams", "gauge", "Streams in the catalog.");
    put(t, "sluice_streams %u\n", streams);
    family(t, "sluice_shards", "gauge", "Shards over all streams.");
    put(t, "sluice_shards %u\n", shards);
    struct disk d = disk_of(api->cfg.data_dir);
    if (d.known) {
        family(t, "sluice_disk_free_bytes", "gauge",
               "Bytes available to the broker on the data directory's filesystem.");
        put(t, "sluice_disk_free_bytes %llu\n", (unsigned long long)d.free_bytes);
        family(t, "sluice_disk_size_bytes", "gauge", "Size of the data directory's filesystem.");
        put(t, "sluice_disk_size_bytes %llu\n", (unsigned long long)d.size_bytes);
    }
    static const char *const routes[SL_ROUTE_COUNT_] = {"ops", "metrics", "kinesis", "sqs",
                                                         "other"};
    family(t, "sluice_http_responses_total", "counter",
           "HTTP answers by front-end route and status class.");
    for (uint32_t r = 0; r < SL_ROUTE_COUNT_; r++) {
        for (uint32_t c = 1; c < 6; c++) {
            put(t, "sluice_http_responses_total{route=\"%s\",code=\"%uxx\"} %llu\n", routes[r], c,
                (unsigned long long)api->answers[r][c]);
        }
    }
    family(t, "sluice_http_request_duration_seconds", "histogram",
           "From an HTTP request's arrival to its answer, by front-end route.");
    for (uint32_t r = 0; r < SL_ROUTE_COUNT_; r++) {
        put_histogram(t, "sluice_http_request_duration_seconds", "route", routes[r],
                      &api->latency[r]);
    }
}

static void metrics(struct sl_api_call *call)
{
    struct sl_api *api = call->api;
    struct text t = {0};
    put_process(&t, api);
    put_ops(&t, &api->engine->stats);
    put_shards(&t, api->engine->catalog);
    put_lag(&t, api->engine);
    put_queues(&t, api->engine);
    if (t.failed) {
        static const char msg[] = "out of memory while rendering the metrics\n";
        sl_api_reply(call, 503, "text/plain", msg, sizeof(msg) - 1);
    } else {
        sl_api_reply(call, 200, "text/plain; version=0.0.4; charset=utf-8", t.p, t.len);
    }
    free(t.p);
}

static void reply_json(struct sl_api_call *call, int status, json_t *body)
{
    char *s = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    if (s == NULL) {
        static const char msg[] = "{\"message\":\"out of memory\"}";
        sl_api_reply(call, 503, "application/json", msg, sizeof(msg) - 1);
    } else {
        sl_api_reply(call, status, "application/json", s, strlen(s));
    }
    free(s);
    json_decref(body);
}

/* Ready: not shutting down, every shard takes writes, the disk has room. */
static void readyz(struct sl_api_call *call)
{
    struct sl_engine *e = call->api->engine;
    json_t *reasons = json_array();
    if (e->stopping) {
        json_array_append_new(reasons, json_string("shutting down"));
    }
    for (struct sl_stream *st = sl_catalog_first(e->catalog); st != NULL; st = st->next) {
        for (uint32_t i = 0; i < st->shard_count && json_array_size(reasons) < 100; i++) {
            struct sl_shard_info si;
            sl_streams_shard_info(st, i, &si);
            if (si.status != SL_OK) {
                char msg[SL_STREAM_NAME_MAX + SL_STATUS_MESSAGE_MAX + 32];
                snprintf(msg, sizeof(msg), "shard %s/%u: %s", st->name, i, si.status_message);
                json_array_append_new(reasons, json_string(msg));
            }
        }
    }
    struct disk d = disk_of(call->api->cfg.data_dir);
    if (d.known && d.free_bytes == 0) {
        json_array_append_new(reasons, json_string("the data directory's disk is full"));
    }
    bool ready = json_array_size(reasons) == 0;
    reply_json(call, ready ? 200 : 503,
               json_pack("{s:b,s:o}", "ready", ready, "reasons", reasons));
}

void sl_ops_handle(struct sl_api_call *call, const char *path)
{
    if (strcmp(path, "/metrics") == 0) {
        metrics(call);
    } else if (strcmp(path, "/readyz") == 0) {
        readyz(call);
    } else {
        reply_json(call, 200, json_pack("{s:s}", "status", "ok"));
    }
}
