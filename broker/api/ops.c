/* ops.c - /healthz, /readyz and /metrics (see ops.h).
 *
 * /metrics captures every shard's values once (one stats copy each) and
 * consumer lag with its time lookups batched per worker
 * (sl_consumer_lag_all), then renders the text a slice per loop turn: the
 * text format wants a family's samples together, so a family's rows are
 * walked per family, SCRAPE_SLICE_LINES lines per turn, and other
 * connections are served between slices. O(shards + groups) memory per
 * scrape, no per-shard synchronous call. Label values are escaped as the
 * format says (\\, \", \n); stream names cannot hold those, group names can.
 */
#include "broker/api/ops.h"

#include "broker/cluster/replicas.h"
#include "broker/engine/catalog.h"
#include "broker/engine/consumer.h"
#include "broker/engine/engine.h"
#include "broker/engine/queue.h"
#include "broker/engine/streams.h"
#include "broker/push/push.h"
#include "common/assert.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/ring.h"

#include <jansson.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

/* Lines of text a scrape renders per loop turn (~1 ms of formatting). */
#define SCRAPE_SLICE_LINES 2000u

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

struct sl_ops_disk sl_ops_disk_of(const char *dir)
{
    struct statvfs v;
    struct sl_ops_disk d = {0};
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
    SM_ZERO_BYTES,
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
    {"sluice_shard_zero_bytes_total", "counter",
     "Zeros written ahead of the active segment's data (segment_prezero_bytes)."},
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
    case SM_ZERO_BYTES:
        return (double)si->zero_bytes;
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

#define QUEUE_METRICS 5u

static const struct {
    const char *name;
    const char *type;
    const char *help;
} queue_metrics[QUEUE_METRICS] = {
    {"sluice_queue_visible", "gauge", "Records of the queue group ready for delivery."},
    {"sluice_queue_inflight", "gauge", "Records leased to receivers (in flight)."},
    {"sluice_queue_delayed", "gauge", "Records nacked with a delay or sent with a delay."},
    {"sluice_queue_dead_lettered_total", "counter",
     "Records moved to the group's dead-letter stream."},
    {"sluice_queue_filtered_total", "counter", "Records skipped by the group's filter."},
};

/* A queue group's values, taken once per scrape (not once per family). */
struct queue_row {
    const char *stream; /* borrowed: rendered before the loop turns */
    char *group;        /* owned */
    uint64_t v[QUEUE_METRICS];
};

struct queue_rows {
    struct sl_engine *e;
    const char *stream;
    struct queue_row *v;
    size_t n;
    size_t cap;
    bool failed;
};

static void collect_queue(void *ctx, const char *group)
{
    struct queue_rows *q = ctx;
    struct sl_qgroup_stats qs;
    char why[256];
    if (q->failed || sl_queue_stats(q->e, q->stream, group, &qs, why, sizeof(why)) != SL_OK) {
        return;
    }
    if (q->n == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 16;
        struct queue_row *v = realloc(q->v, cap * sizeof(*v));
        if (v == NULL) {
            q->failed = true;
            return;
        }
        q->v = v;
        q->cap = cap;
    }
    struct queue_row *r = &q->v[q->n];
    *r = (struct queue_row){.stream = q->stream, .group = strdup(group),
                            .v = {qs.visible, qs.inflight, qs.delayed, qs.dead_lettered,
                                  qs.filtered_out}};
    q->failed = r->group == NULL;
    q->n += r->group != NULL;
}

/* ---- push targets --------------------------------------------------------- */

#define PUSH_METRICS 7u

static const struct {
    const char *name;
    const char *type;
    const char *help;
} push_metrics[PUSH_METRICS] = {
    {"sluice_push_delivered_total", "counter", "Records a push target acknowledged (2xx)."},
    {"sluice_push_released_total", "counter",
     "Records released for a retry (failed batches, batchItemFailures)."},
    {"sluice_push_batches_failed_total", "counter",
     "POSTs that failed (non-2xx, timeout, transport error)."},
    {"sluice_push_batches_ok_total", "counter", "POSTs answered 2xx."},
    {"sluice_push_inflight_batches", "gauge", "Batches leased and not settled."},
    {"sluice_push_consecutive_failures", "gauge",
     "Failed batches in a row (0 while the target takes them)."},
    {"sluice_push_last_latency_seconds", "gauge", "The last POST's duration."},
};

/* Every target, taken once per scrape; at most SL_PUSH_TARGETS_MAX lines per family. */
static void put_push(struct text *t, const struct sl_push *p)
{
    uint32_t n = p != NULL ? sl_push_list(p, NULL, NULL, 0) : 0;
    struct sl_push_status *st = n > 0 ? calloc(n, sizeof(*st)) : NULL;
    if (n > 0 && st == NULL) {
        t->failed = true;
        return;
    }
    n = st != NULL ? sl_push_list(p, NULL, st, n) : 0;
    for (uint32_t f = 0; f < PUSH_METRICS; f++) {
        family(t, push_metrics[f].name, push_metrics[f].type, push_metrics[f].help);
        for (uint32_t i = 0; i < n; i++) {
            const struct sl_push_status *s = &st[i];
            put(t, "%s{stream=\"", push_metrics[f].name);
            put_label(t, s->target.stream);
            put(t, "\",group=\"");
            put_label(t, s->target.group);
            put(t, "\"} ");
            const uint64_t v[PUSH_METRICS - 1] = {s->delivered,  s->released, s->batches_failed,
                                                  s->batches_ok, s->inflight, s->failures};
            if (f < PUSH_METRICS - 1) {
                put(t, "%llu\n", (unsigned long long)v[f]);
            } else {
                put(t, "%.6f\n", (double)s->last_latency_us / 1e6);
            }
        }
    }
    free(st);
}

static void put_queues(struct text *t, struct sl_engine *e)
{
    struct queue_rows q = {.e = e};
    for (struct sl_stream *st = sl_catalog_first(e->catalog); st != NULL; st = st->next) {
        char why[256];
        q.stream = st->name;
        sl_queue_groups(e, st->name, collect_queue, &q, why, sizeof(why));
    }
    t->failed = t->failed || q.failed;
    for (uint32_t f = 0; f < QUEUE_METRICS; f++) {
        family(t, queue_metrics[f].name, queue_metrics[f].type, queue_metrics[f].help);
        for (size_t i = 0; i < q.n; i++) {
            put(t, "%s{stream=\"%s\",group=\"", queue_metrics[f].name, q.v[i].stream);
            put_label(t, q.v[i].group);
            put(t, "\"} %llu\n", (unsigned long long)q.v[i].v[f]);
        }
    }
    for (size_t i = 0; i < q.n; i++) {
        free(q.v[i].group);
    }
    free(q.v);
}

/* ---- the endpoints -------------------------------------------------------- */

/* Cluster mode: the replicas' health, as Kafka's under-replicated and offline partitions. */
static void put_cluster(struct text *t, const struct sl_api *api)
{
    if (api->replicas == NULL) {
        return;
    }
    struct sl_replicas_stats s;
    sl_replicas_stats(api->replicas, &s);
    family(t, "sluice_cluster_replicas", "gauge",
           "This broker's shard replicas by role (waiting: named in the shard's replicas, not "
           "live - no leader yet, or failed).");
    put(t, "sluice_cluster_replicas{role=\"leader\"} %u\n", s.leading);
    put(t, "sluice_cluster_replicas{role=\"follower\"} %u\n", s.following);
    put(t, "sluice_cluster_replicas{role=\"waiting\"} %u\n", s.waiting);
    family(t, "sluice_cluster_under_replicated_shards", "gauge",
           "Shards this broker leads whose in-sync replicas lack some of their replicas.");
    put(t, "sluice_cluster_under_replicated_shards %u\n", s.under_replicated);
    family(t, "sluice_cluster_under_min_isr_shards", "gauge",
           "Shards this broker leads with fewer in-sync replicas than min_insync_replicas: "
           "durable appends are refused (NOT_ENOUGH_REPLICAS).");
    put(t, "sluice_cluster_under_min_isr_shards %u\n", s.under_min_isr);
    family(t, "sluice_cluster_offline_shards", "gauge",
           "Shards of the cluster's streams with no leader (their state as this broker read "
           "it).");
    put(t, "sluice_cluster_offline_shards %u\n", s.offline);
    family(t, "sluice_cluster_replication_buffer_bytes", "gauge",
           "Bytes held for replication: reads serving followers, fetched batches not yet "
           "written.");
    put(t, "sluice_cluster_replication_buffer_bytes{direction=\"serve\"} %llu\n",
        (unsigned long long)s.serve_bytes);
    put(t, "sluice_cluster_replication_buffer_bytes{direction=\"follow\"} %llu\n",
        (unsigned long long)s.follow_bytes);
    family(t, "sluice_cluster_reassign_throttled_reads", "gauge",
           "Reads for replicas a reassignment adds, waiting on reassign_throttle_bytes.");
    put(t, "sluice_cluster_reassign_throttled_reads %u\n", s.throttled);
    family(t, "sluice_cluster_streams_dropped_total", "counter",
           "Copies of cluster streams this broker dropped since it started (deleted in the "
           "cluster, or made again under their name).");
    put(t, "sluice_cluster_streams_dropped_total %llu\n", (unsigned long long)s.streams_dropped);
}

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
    family(t, "sluice_loop_connections", "gauge",
           "Open client connections by the loop serving them (conn_workers spreads native "
           "ones over the workers; loop 0 is the main loop).");
    for (uint32_t i = 0; i < sl_net_loop_count(api->net); i++) {
        put(t, "sluice_loop_connections{loop=\"%u\"} %u\n", i, sl_net_loop_conn_count(api->net, i));
    }
    uint32_t streams = 0, shards = 0;
    for (struct sl_stream *st = sl_catalog_first(api->engine->catalog); st != NULL;
         st = st->next) {
        streams++;
        shards += st->shard_count - st->lineage.gone;
    }
    family(t, "sluice_streams", "gauge", "Streams in the catalog.");
    put(t, "sluice_streams %u\n", streams);
    family(t, "sluice_shards", "gauge", "Shards over all streams.");
    put(t, "sluice_shards %u\n", shards);
    family(t, "sluice_streams_unloaded", "gauge",
           "Streams found at start-up whose shards are not open yet (loaded in the background "
           "or on first use).");
    put(t, "sluice_streams_unloaded %u\n", sl_catalog_unloaded(api->engine->catalog));
    struct sl_ops_disk d = sl_ops_disk_of(api->cfg.data_dir);
    if (d.known) {
        family(t, "sluice_disk_free_bytes", "gauge",
               "Bytes available to the broker on the data directory's filesystem.");
        put(t, "sluice_disk_free_bytes %llu\n", (unsigned long long)d.free_bytes);
        family(t, "sluice_disk_size_bytes", "gauge", "Size of the data directory's filesystem.");
        put(t, "sluice_disk_size_bytes %llu\n", (unsigned long long)d.size_bytes);
    }
    static const char *const routes[SL_ROUTE_COUNT_] = {"ops", "metrics", "kinesis", "sqs",
                                                         "console", "eventbridge", "other", "sns"};
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

/* ---- the sliced part: per shard and per (group, shard) ------------------- */

/* A scrape in progress. The rows are captured at once (one stats copy per
 * shard, one batched lag lookup); their text is rendered SCRAPE_SLICE_LINES
 * at a time, one slice per loop turn (a zero timeout yields between
 * slices), so a scrape of many shards never holds the loop for long. */
struct shard_row {
    uint32_t stream; /* in names */
    uint32_t shard;
    double v[SM_COUNT_];
};

struct lag_row {
    uint32_t stream; /* in names */
    uint32_t shard;
    const char *group; /* borrowed from lag */
    uint64_t records;
    uint64_t ms;
};

struct scrape {
    struct sl_api_call *call;
    struct sl_io_op yield_op;
    struct text t;
    char **names; /* stream names, owned copies (a stream may go meanwhile) */
    uint32_t n_names;
    struct shard_row *rows;
    size_t n_rows;
    struct sl_group_lag *lag; /* owned (sl_consumer_lag_all) */
    struct lag_row *lag_rows;
    size_t n_lag;
    uint32_t family; /* SM_* then 2 lag families */
    size_t pos;      /* next row of the family */
};

static void scrape_free(struct scrape *sc)
{
    for (uint32_t i = 0; i < sc->n_names; i++) {
        free(sc->names[i]);
    }
    free(sc->names);
    free(sc->rows);
    sl_consumer_lag_all_free(sc->lag, sc->n_lag);
    free(sc->lag_rows);
    free(sc->t.p);
    free(sc);
}

static int capture_shards(struct scrape *sc, struct sl_catalog *cat)
{
    uint32_t streams = 0;
    size_t n = 0;
    for (struct sl_stream *st = sl_catalog_first(cat); st != NULL; st = st->next) {
        streams++;
        n += st->shard_count;
    }
    sc->names = calloc(streams + 1, sizeof(*sc->names));
    sc->rows = calloc(n + 1, sizeof(*sc->rows));
    if (sc->names == NULL || sc->rows == NULL) {
        return SL_ENOMEM;
    }
    for (struct sl_stream *st = sl_catalog_first(cat); st != NULL; st = st->next) {
        if ((sc->names[sc->n_names] = strdup(st->name)) == NULL) {
            return SL_ENOMEM;
        }
        for (uint32_t i = 0; i < st->shard_count; i++) {
            if (st->lineage.shard[i].gone) {
                continue; /* (retention removed it: no series) */
            }
            struct sl_shard_info si;
            sl_streams_shard_info(st, i, &si);
            struct shard_row *r = &sc->rows[sc->n_rows++];
            r->stream = sc->n_names;
            r->shard = i;
            for (uint32_t m = 0; m < SM_COUNT_; m++) {
                r->v[m] = shard_value(m, st->shards[i], &si);
            }
        }
        sc->n_names++;
    }
    return SL_OK;
}

static int capture_lag(struct scrape *sc, struct sl_engine *e)
{
    int rc = sl_consumer_lag_all(e, &sc->lag, &sc->n_lag);
    if (rc != SL_OK) {
        return rc;
    }
    sc->lag_rows = calloc(sc->n_lag + 1, sizeof(*sc->lag_rows));
    if (sc->lag_rows == NULL) {
        return SL_ENOMEM;
    }
    uint32_t s = 0; /* entries come stream by stream, in catalog order */
    for (size_t i = 0; i < sc->n_lag; i++) {
        while (s < sc->n_names && strcmp(sc->names[s], sc->lag[i].stream) != 0) {
            s++;
        }
        SL_ASSERT(s < sc->n_names);
        sc->lag_rows[i] = (struct lag_row){.stream = s, .shard = sc->lag[i].lag.shard,
                                           .group = sc->lag[i].group,
                                           .records = sc->lag[i].lag.records_behind,
                                           .ms = sc->lag[i].lag.ms_behind};
    }
    return SL_OK;
}

static const struct {
    const char *name;
    const char *help;
} lag_metrics[2] = {
    {"sluice_consumer_lag_records",
     "Records appended to the shard after the consumer group's checkpoint."},
    {"sluice_consumer_lag_seconds",
     "Append time of the shard's newest record minus that of the record at the consumer "
     "group's checkpoint (0 when caught up)."},
};

/* Renders up to `lines` more lines; true when everything is rendered. */
static bool scrape_slice(struct scrape *sc, size_t lines)
{
    struct text *t = &sc->t;
    while (lines > 0 && sc->family < SM_COUNT_ + 2) {
        uint32_t f = sc->family;
        bool lag = f >= SM_COUNT_;
        size_t n = lag ? sc->n_lag : sc->n_rows;
        if (sc->pos == 0) {
            if (lag) {
                family(t, lag_metrics[f - SM_COUNT_].name, "gauge",
                       lag_metrics[f - SM_COUNT_].help);
            } else {
                family(t, shard_metrics[f].name, shard_metrics[f].type, shard_metrics[f].help);
            }
        }
        for (; sc->pos < n && lines > 0; sc->pos++, lines--) {
            if (!lag) {
                const struct shard_row *r = &sc->rows[sc->pos];
                put(t, "%s{stream=\"%s\",shard=\"%u\"} %.17g\n", shard_metrics[f].name,
                    sc->names[r->stream], r->shard, r->v[f]);
                continue;
            }
            const struct lag_row *r = &sc->lag_rows[sc->pos];
            put(t, "%s{stream=\"%s\",group=\"", lag_metrics[f - SM_COUNT_].name,
                sc->names[r->stream]);
            put_label(t, r->group);
            if (f == SM_COUNT_) {
                put(t, "\",shard=\"%u\"} %llu\n", r->shard, (unsigned long long)r->records);
            } else {
                put(t, "\",shard=\"%u\"} %.3f\n", r->shard, (double)r->ms / 1000.0);
            }
        }
        if (sc->pos == n) {
            sc->family++;
            sc->pos = 0;
        }
    }
    return sc->family == SM_COUNT_ + 2 || t->failed;
}

static void scrape_finish(struct scrape *sc)
{
    if (sc->t.failed) {
        static const char msg[] = "out of memory while rendering the metrics\n";
        sl_api_reply(sc->call, 503, "text/plain", msg, sizeof(msg) - 1);
    } else {
        sl_api_reply(sc->call, 200, "text/plain; version=0.0.4; charset=utf-8", sc->t.p,
                     sc->t.len);
    }
    scrape_free(sc);
}

static void on_scrape_turn(struct sl_io_op *op, int res)
{
    (void)res;
    struct scrape *sc = sl_container_of(op, struct scrape, yield_op);
    if (scrape_slice(sc, SCRAPE_SLICE_LINES)) {
        scrape_finish(sc);
        return;
    }
    sl_ring_timeout(sc->call->api->ring, &sc->yield_op, 0);
}

static void metrics(struct sl_api_call *call)
{
    struct sl_api *api = call->api;
    struct scrape *sc = calloc(1, sizeof(*sc));
    if (sc == NULL) {
        static const char msg[] = "out of memory while rendering the metrics\n";
        sl_api_reply(call, 503, "text/plain", msg, sizeof(msg) - 1);
        return;
    }
    sc->call = call;
    sc->yield_op.cb = on_scrape_turn;
    put_process(&sc->t, api);
    put_ops(&sc->t, &api->engine->stats);
    put_queues(&sc->t, api->engine);
    put_push(&sc->t, api->push);
    put_cluster(&sc->t, api);
    if (capture_shards(sc, api->engine->catalog) != SL_OK ||
        capture_lag(sc, api->engine) != SL_OK) {
        sc->t.failed = true;
    }
    if (scrape_slice(sc, SCRAPE_SLICE_LINES) || api->ring == NULL) {
        while (!scrape_slice(sc, SIZE_MAX)) {
        }
        scrape_finish(sc);
        return;
    }
    sl_ring_timeout(api->ring, &sc->yield_op, 0);
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
    struct sl_ops_disk d = sl_ops_disk_of(call->api->cfg.data_dir);
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
