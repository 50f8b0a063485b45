/* rest.c - the console's JSON API (see rest.h): routing, errors, the
 * overview, the stream list and one stream. Records are rest_records.c. */
#include "broker/api/rest.h"

#include "broker/api/access.h"
#include "broker/api/history.h"
#include "broker/api/ops.h"
#include "broker/api/rest_int.h"
#include "broker/api/urlcode.h"
#include "broker/engine/catalog.h"
#include "broker/engine/consumer.h"
#include "broker/engine/engine.h"
#include "broker/engine/queue.h"
#include "broker/engine/streams.h"
#include "broker/auth/auth.h"
#include "broker/cluster/member.h"
#include "common/clock.h"
#include "storage/checkpoint.h"
#include "common/error.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define HDR(n, v) {n, sizeof(n) - 1, v, sizeof(v) - 1}
#define REST_PREFIX "/api/v1"

static int status_of(int err)
{
    switch (err) {
    case SL_EINVAL:
    case SL_EPROTO:
        return 400;
    case SL_EAUTH:
        return 401;
    case SL_EDENIED:
        return 403;
    case SL_ENOTFOUND:
        return 404;
    case SL_EEXIST:
        return 409;
    case SL_ETRIMMED:
        return 410;
    case SL_ETOOBIG:
        return 413;
    case SL_ENOMEM:
    case SL_ENOSPC:
    case SL_ELIMIT:
    case SL_ECLOSED:
    case SL_EAGAIN:
        return 503;
    default:
        return 500;
    }
}

void sl_rest_reply(struct sl_api_call *call, int status, json_t *body)
{
    char *s = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (s == NULL) {
        static const char msg[] = "{\"error\":\"ENOMEM\",\"message\":\"out of memory\"}";
        sl_api_reply(call, 503, "application/json", msg, sizeof(msg) - 1);
        return;
    }
    /* Answers change with every append: never cached, never sniffed. */
    struct sl_http_header h[] = {HDR("cache-control", "no-store"),
                                 HDR("x-content-type-options", "nosniff")};
    sl_api_reply_headers(call, status, "application/json", h, 2, s, strlen(s));
    free(s);
}

void sl_rest_fail(struct sl_api_call *call, int err, const char *fmt, ...)
{
    char msg[SL_REST_WHY_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    const char *name = sl_errname(err);
    name += strncmp(name, "SL_", 3) == 0 ? 3 : 0;
    sl_rest_reply(call, status_of(err),
                  json_pack("{s:s,s:s}", "error", name, "message",
                            msg[0] != '\0' ? msg : sl_strerror(err)));
}

const char *sl_rest_query(const struct sl_api_call *call, const char *name, char *buf, size_t cap,
                          bool *bad)
{
    return sl_api_query_get(call->req != NULL ? call->req->path : NULL, name, buf, cap, bad);
}

/* ---- the overview and the streams ----------------------------------------- */

struct totals {
    uint64_t shards, retained_bytes, records;
    struct sl_shard_io io;
    int status; /* the worst shard's */
};

static void add_shard(struct totals *t, const struct sl_stream *st, uint32_t i)
{
    struct sl_shard_info si;
    sl_streams_shard_info(st, i, &si);
    t->shards++;
    t->retained_bytes += si.bytes;
    t->records += si.next_seq - si.first_seq;
    t->io.records_in += st->shards[i]->io.records_in;
    t->io.bytes_in += st->shards[i]->io.bytes_in;
    t->io.records_out += st->shards[i]->io.records_out;
    t->io.bytes_out += st->shards[i]->io.bytes_out;
    if (si.status != SL_OK) {
        t->status = si.status;
    }
}

static const char *status_name(int status)
{
    return status == SL_OK ? "ok" : status == SL_ENOSPC ? "enospc" : "fatal";
}

static json_t *stream_json(const struct sl_stream *st, struct totals *t)
{
    for (uint32_t i = 0; i < st->shard_count; i++) {
        add_shard(t, st, i);
    }
    return json_pack("{s:s,s:I,s:I,s:I,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:s}", "name", st->name,
                     "shards", (json_int_t)st->shard_count, "retention_hours",
                     (json_int_t)st->retention_hours, "retention_bytes",
                     (json_int_t)st->retention_bytes, "compression",
                     st->compression[0] != '\0' ? st->compression : "none", "retained_bytes",
                     (json_int_t)t->retained_bytes, "records", (json_int_t)t->records,
                     "records_in", (json_int_t)t->io.records_in, "bytes_in",
                     (json_int_t)t->io.bytes_in, "records_out", (json_int_t)t->io.records_out,
                     "bytes_out", (json_int_t)t->io.bytes_out, "status", status_name(t->status));
}

/* "host:port" -> its port (0 when absent), and the host's length. */
static json_int_t addr_port(const char *addr, int *host_len)
{
    const char *colon = strrchr(addr, ':');
    *host_len = colon != NULL ? (int)(colon - addr) : (int)strlen(addr);
    return colon != NULL ? (json_int_t)strtoul(colon + 1, NULL, 10) : 0;
}

/* The brokers behind this API: this one alone for a single broker; in a
 * cluster every live broker of /brokers/ids (member.h), this one marked
 * "self" and "up", the others "alive". */
static json_t *brokers_json(const struct sl_api *api, json_int_t uptime_s)
{
    char host[256];
    if (gethostname(host, sizeof(host)) != 0) {
        host[0] = '\0';
    }
    host[sizeof(host) - 1] = '\0'; /* a truncated name is not terminated */
    const char *version = api->cfg.version != NULL ? api->cfg.version : "";
    if (api->member == NULL) {
        return json_pack("[{s:i,s:s,s:I,s:I,s:s,s:I,s:b,s:s}]", "id", 0, "host", host,
                         "native_port", (json_int_t)api->cfg.native_port, "http_port",
                         (json_int_t)api->cfg.http_port, "version", version, "uptime_s",
                         uptime_s, "self", 1, "state", "up");
    }
    const struct sl_member_info *self = sl_member_self(api->member), *list = NULL;
    size_t n = sl_member_brokers(api->member, &list);
    json_t *arr = json_array();
    bool self_listed = false;
    uint64_t now = sl_clock_wall_ms();
    for (size_t i = 0; arr != NULL && i < n; i++) {
        const struct sl_member_info *b = &list[i];
        bool is_self = b->node_id == self->node_id &&
                       strcmp(b->native_addr, self->native_addr) == 0;
        self_listed = self_listed || is_self;
        int hl = 0, hl2 = 0;
        json_int_t nport = addr_port(b->native_addr, &hl);
        json_int_t hport = b->http_addr[0] != '\0' ? addr_port(b->http_addr, &hl2) : 0;
        json_int_t up = is_self ? uptime_s
                                : (json_int_t)(now > b->start_ms ? (now - b->start_ms) / 1000 : 0);
        json_array_append_new(
            arr, json_pack("{s:I,s:s%,s:I,s:I,s:s,s:s,s:I,s:b,s:s}", "id",
                           (json_int_t)b->node_id, "host", b->native_addr, (size_t)hl,
                           "native_port", nport, "http_port", hport, "address", b->native_addr,
                           "version", b->version, "uptime_s", up, "self", is_self, "state",
                           is_self ? "up" : "alive"));
    }
    if (arr != NULL && !self_listed) { /* re-registering after an expiry: still serving */
        int hl = 0;
        json_int_t nport = addr_port(self->native_addr, &hl);
        json_array_append_new(
            arr, json_pack("{s:I,s:s%,s:I,s:I,s:s,s:s,s:I,s:b,s:s}", "id",
                           (json_int_t)self->node_id, "host", self->native_addr, (size_t)hl,
                           "native_port", nport, "http_port", (json_int_t)api->cfg.http_port,
                           "address", self->native_addr, "version", version, "uptime_s",
                           uptime_s, "self", 1, "state",
                           sl_member_connected(api->member) ? "joining" : "disconnected"));
    }
    return arr;
}

static void overview(struct sl_api_call *call)
{
    struct sl_api *api = call->api;
    struct sl_engine *e = api->engine;
    struct totals all = {0};
    json_int_t streams = 0;
    for (struct sl_stream *st = sl_catalog_first(e->catalog); st != NULL; st = st->next) {
        if (!sl_access_visible(call, st->name)) {
            continue;
        }
        for (uint32_t i = 0; i < st->shard_count; i++) {
            add_shard(&all, st, i);
        }
        streams++;
    }
    json_t *errors = json_object();
    for (int code = 1; errors != NULL && code < SL_ERR_COUNT_; code++) {
        uint64_t n = 0;
        for (uint32_t o = 0; o < SL_OP_COUNT_; o++) {
            n += e->stats.op[o].results[code];
        }
        if (n > 0) {
            const char *name = sl_errname(code);
            json_object_set_new(errors, name + (strncmp(name, "SL_", 3) == 0 ? 3 : 0),
                                json_integer((json_int_t)n));
        }
    }
    struct sl_ops_disk d = sl_ops_disk_of(api->cfg.data_dir);
    uint64_t now = sl_clock_wall_ms();
    uint32_t conns = sl_net_conn_count(api->net, "native") + sl_net_conn_count(api->net, "http");
    json_int_t uptime_s = (json_int_t)(now > api->started_ms ? (now - api->started_ms) / 1000 : 0);
    sl_rest_reply(
        call, 200,
        json_pack("{s:s,s:I,s:{s:I,s:I},s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:o*,s:o*}", "version",
                  api->cfg.version != NULL ? api->cfg.version : "", "uptime_s", uptime_s, "disk",
                  "size_bytes", (json_int_t)d.size_bytes, "free_bytes", (json_int_t)d.free_bytes,
                  "connections", (json_int_t)conns, "streams", streams, "shards",
                  (json_int_t)all.shards, "retained_bytes", (json_int_t)all.retained_bytes,
                  "records_in", (json_int_t)all.io.records_in, "bytes_in",
                  (json_int_t)all.io.bytes_in, "records_out", (json_int_t)all.io.records_out,
                  "bytes_out", (json_int_t)all.io.bytes_out, "errors", errors, "brokers",
                  brokers_json(api, uptime_s)));
}

static void list_streams(struct sl_api_call *call)
{
    json_t *arr = json_array();
    struct sl_catalog *cat = call->api->engine->catalog;
    for (struct sl_stream *st = sl_catalog_first(cat); arr != NULL && st != NULL; st = st->next) {
        if (!sl_access_visible(call, st->name)) {
            continue;
        }
        struct totals t = {0};
        if (json_array_append_new(arr, stream_json(st, &t)) != 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    sl_rest_reply(call, 200, arr != NULL ? json_pack("{s:o}", "streams", arr) : NULL);
}

static json_t *shard_json(const struct sl_stream *st, uint32_t i)
{
    struct sl_shard_info si;
    sl_streams_shard_info(st, i, &si);
    char hs[24], he[24]; /* 64-bit: beyond a JavaScript number's exact range */
    snprintf(hs, sizeof(hs), "%" PRIu64, si.hash_start);
    snprintf(he, sizeof(he), "%" PRIu64, si.hash_end);
    const struct sl_shard_io *io = &st->shards[i]->io;
    const struct sl_lineage_shard *ls = &st->lineage.shard[i];
    json_t *j = json_pack("{s:I,s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:s,s:s}", "shard",
                     (json_int_t)i, "hash_start", hs, "hash_end", he, "first_seq",
                     (json_int_t)si.first_seq, "next_seq", (json_int_t)si.next_seq,
                     "tail_time_ms", (json_int_t)si.tail_time_ms, "retained_bytes",
                     (json_int_t)si.bytes, "segments", (json_int_t)si.segments, "records_in",
                     (json_int_t)io->records_in, "bytes_in", (json_int_t)io->bytes_in,
                     "records_out", (json_int_t)io->records_out, "bytes_out",
                     (json_int_t)io->bytes_out, "status", status_name(si.status),
                     "status_message", si.status_message);
    /* the lineage (#16): a closed shard takes no appends, its children do */
    json_t *parents = json_array(), *children = json_array();
    for (int k = 0; k < 2; k++) {
        if (ls->parent[k] != SL_LINEAGE_NONE) {
            json_array_append_new(parents, json_integer(ls->parent[k]));
        }
        if (ls->closed && ls->child[k] != SL_LINEAGE_NONE) {
            json_array_append_new(children, json_integer(ls->child[k]));
        }
    }
    if (j != NULL) {
        json_object_set_new(j, "closed", json_boolean(ls->closed));
        json_object_set_new(j, "parents", parents != NULL ? parents : json_array());
        json_object_set_new(j, "children", children != NULL ? children : json_array());
    } else {
        json_decref(parents);
        json_decref(children);
    }
    return j;
}

/* Group names of the stream, collected from its checkpoints (in name order,
 * so a name repeats only in a run). */
struct group_names {
    json_t *arr;
};

static void collect_group(void *ctx, const char *group, uint32_t shard, uint64_t seq,
                          uint64_t updated_ms)
{
    (void)shard, (void)seq, (void)updated_ms;
    struct group_names *g = ctx;
    size_t n = json_array_size(g->arr);
    const char *last = n > 0 ? json_string_value(json_array_get(g->arr, n - 1)) : NULL;
    if (last == NULL || strcmp(last, group) != 0) {
        json_array_append_new(g->arr, json_string(group));
    }
}

static json_t *groups_json(struct sl_engine *e, const struct sl_stream *st)
{
    struct group_names g = {.arr = json_array()};
    json_t *out = json_array();
    char why[SL_REST_WHY_MAX];
    if (g.arr == NULL || out == NULL ||
        sl_consumer_checkpoints(e, st->name, NULL, collect_group, &g, why, sizeof(why)) != SL_OK) {
        json_decref(g.arr);
        return out;
    }
    for (size_t gi = 0; gi < json_array_size(g.arr); gi++) {
        const char *group = json_string_value(json_array_get(g.arr, gi));
        struct sl_shard_lag *lag = NULL;
        uint32_t n = 0;
        if (sl_consumer_lag(e, st->name, group, &lag, &n, why, sizeof(why)) != SL_OK) {
            continue;
        }
        json_t *shards = json_array();
        uint64_t records = 0, ms = 0;
        for (uint32_t i = 0; i < n; i++) {
            records += lag[i].records_behind;
            ms = lag[i].ms_behind > ms ? lag[i].ms_behind : ms;
            json_array_append_new(
                shards, json_pack("{s:I,s:I,s:I,s:I,s:I}", "shard", (json_int_t)lag[i].shard,
                                  "checkpoint", (json_int_t)lag[i].checkpoint, "tail_seq",
                                  (json_int_t)lag[i].tail_seq, "records_behind",
                                  (json_int_t)lag[i].records_behind, "ms_behind",
                                  (json_int_t)lag[i].ms_behind));
        }
        free(lag);
        json_array_append_new(out, json_pack("{s:s,s:I,s:I,s:o}", "group", group,
                                             "records_behind", (json_int_t)records, "ms_behind",
                                             (json_int_t)ms, "shards", shards));
    }
    json_decref(g.arr);
    return out;
}

static void describe_stream(struct sl_api_call *call, struct sl_stream *st)
{
    struct totals t = {0};
    json_t *body = stream_json(st, &t);
    json_t *shards = json_array();
    for (uint32_t i = 0; shards != NULL && i < st->shard_count; i++) {
        if (!st->lineage.shard[i].gone) { /* (retention removed it) */
            json_array_append_new(shards, shard_json(st, i));
        }
    }
    if (body != NULL && shards != NULL) {
        json_object_set_new(body, "shard_list", shards);
        json_object_set_new(body, "groups", groups_json(call->api->engine, st));
        json_object_set_new(body, "queues", sl_rest_queues_of(call->api, st->name));
    } else {
        json_decref(shards);
        json_decref(body);
        body = NULL;
    }
    sl_rest_reply(call, 200, body);
}

static void note_group(void *ctx, const char *group, uint32_t shard, uint64_t seq,
                       uint64_t updated_ms)
{
    (void)group, (void)shard, (void)seq, (void)updated_ms;
    *(bool *)ctx = true;
}

/* Whether the stream (and the group: a checkpoint of it) exists. */
static bool history_known(struct sl_engine *e, const char *stream, const char *group)
{
    if (sl_catalog_find(e->catalog, stream) == NULL) {
        return false;
    }
    bool found = group == NULL;
    char why[SL_REST_WHY_MAX];
    if (!found) {
        (void)sl_consumer_checkpoints(e, stream, group, note_group, &found, why, sizeof(why));
    }
    return found;
}

/* GET /history[?stream=S[&group=G]]: the last hour's rates (or lag). */
static void history(struct sl_api_call *call)
{
    char stream[SL_STREAM_NAME_MAX + 1], group[SL_CKPT_GROUP_NAME_MAX + 1];
    bool bad = false;
    const char *s = sl_rest_query(call, "stream", stream, sizeof(stream), &bad);
    const char *g = bad ? NULL : sl_rest_query(call, "group", group, sizeof(group), &bad);
    if (bad || (g != NULL && s == NULL)) {
        sl_rest_fail(call, SL_EINVAL, "history: stream=NAME (and group=GROUP with it), escaped");
        return;
    }
    call->action = "console: history";
    if (s != NULL && !sl_access_visible(call, s)) {
        sl_rest_fail(call, SL_EDENIED, "%s has no right on stream %s", call->principal, s);
        return;
    }
    json_t *j = sl_history_json(call->api->history, s, g);
    if (j == NULL && s != NULL && history_known(call->api->engine, s, g)) {
        /* not sampled yet: an empty chart, not a 404 the browser logs */
        j = sl_history_json_none(call->api->history, g);
    }
    if (j == NULL) {
        sl_rest_fail(call, SL_ENOTFOUND, "no history for %s%s%s: %s",
                     s != NULL ? s : "the broker", g != NULL ? " group " : "", g != NULL ? g : "",
                     call->api->history == NULL ? "no memory for it at start"
                     : g != NULL ? "no such stream, or no checkpoint of that group on it"
                                 : "no such stream");
        return;
    }
    sl_rest_reply(call, 200, j);
}

/* ---- routing --------------------------------------------------------------- */

/* Whether the principal may; answered 403 with the fix when not. */
static bool allowed(struct sl_api_call *call, uint32_t ops, const struct sl_stream *st)
{
    char why[SL_REST_WHY_MAX];
    if (sl_access_allowed(call, ops, st->name, why, sizeof(why))) {
        return true;
    }
    sl_rest_fail(call, SL_EDENIED, "%s", why);
    return false;
}

/* The stream named by the path segment at `rest`; answered (and NULL)
 * when it is malformed or unknown. *end: past the segment. */
static struct sl_stream *stream_at(struct sl_api_call *call, const char *rest, const char **end)
{
    size_t seg = strcspn(rest, "/");
    char name[SL_STREAM_NAME_MAX * 3 + 1];
    if (seg == 0 || seg >= sizeof(name) || !sl_api_url_decode(rest, seg, name)) {
        sl_rest_fail(call, SL_EINVAL, "a stream name is 1 to %u characters", SL_STREAM_NAME_MAX);
        return NULL;
    }
    char why[SL_REST_WHY_MAX];
    int rc = SL_OK;
    struct sl_stream *st = sl_engine_stream(call->api->engine, name, why, sizeof(why), &rc);
    if (st == NULL) {
        sl_rest_fail(call, rc, "%s", why);
        return NULL;
    }
    *end = rest + seg;
    return st;
}

/* /queues/STREAM/GROUP[/purge] */
static void on_queue(struct sl_api_call *call, const char *rest, bool get)
{
    const char *sub = NULL;
    struct sl_stream *st = stream_at(call, rest, &sub);
    if (st == NULL) {
        return;
    }
    size_t seg = *sub == '/' ? strcspn(sub + 1, "/") : 0;
    char group[SL_QUEUE_GROUP_NAME_MAX * 3 + 1];
    if (seg == 0 || seg >= sizeof(group) || !sl_api_url_decode(sub + 1, seg, group)) {
        sl_rest_fail(call, SL_EINVAL, "a queue group name is 1 to %u characters",
                     SL_QUEUE_GROUP_NAME_MAX);
        return;
    }
    sl_rest_queue(call, st, group, sub + 1 + seg, get);
}

static void on_stream(struct sl_api_call *call, const char *rest, bool get)
{
    const char *sub = NULL;
    struct sl_stream *st = stream_at(call, rest, &sub);
    if (st == NULL) {
        return;
    }
    if (strcmp(sub, "") == 0 && get) {
        call->action = "console: describe a stream";
        if (allowed(call, SL_ACL_ANY, st)) {
            describe_stream(call, st);
        }
    } else if (strcmp(sub, "/records") == 0 && get) {
        call->action = "console: read records";
        if (allowed(call, SL_ACL_CONSUME, st)) {
            sl_rest_records_get(call, st);
        }
    } else if (strcmp(sub, "/records") == 0) {
        call->action = "console: produce a record";
        if (allowed(call, SL_ACL_PRODUCE, st)) {
            sl_rest_records_post(call, st);
        }
    } else if (strcmp(sub, "/redrive") == 0 && !get) {
        sl_rest_redrive(call, st);
    } else if (strcmp(sub, "/discard") == 0 && !get) {
        sl_rest_dlq_discard(call, st);
    } else {
        sl_rest_fail(call, SL_ENOTFOUND,
                     "no such endpoint: GET " REST_PREFIX "/streams/NAME, GET or POST "
                     REST_PREFIX "/streams/NAME/records, POST " REST_PREFIX
                     "/streams/NAME/redrive, POST " REST_PREFIX "/streams/NAME/discard");
    }
}

void sl_rest_handle(struct sl_api_call *call, const char *path)
{
    const char *m = call->req->method;
    bool get = strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0;
    bool post = strcmp(m, "POST") == 0;
    const char *rest = path + strlen(REST_PREFIX);
    char why[SL_REST_WHY_MAX];
    int rc = sl_access_basic(call, why, sizeof(why));
    if (rc != SL_OK) {
        /* 401 with a challenge: the browser asks for the user and password,
         * then retries; 429 when failed logins are being limited */
        struct sl_http_header h[] = {
            HDR("cache-control", "no-store"),
            HDR("www-authenticate", "Basic realm=\"sluice console\", charset=\"UTF-8\"")};
        json_t *j = json_pack("{s:s,s:s}", "error", rc == SL_EAUTH ? "EAUTH" : "ELIMIT",
                              "message", why);
        char *body = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
        sl_api_reply_headers(call, rc == SL_EAUTH ? 401 : 429, "application/json", h,
                             rc == SL_EAUTH ? 2 : 1, body != NULL ? body : "{}",
                             body != NULL ? strlen(body) : 2);
        free(body);
        return;
    }
    if (!get && !post) {
        sl_rest_fail(call, SL_EINVAL, "use GET, or POST for records");
        return;
    }
    if (post) {
        const char *ct = sl_api_header(call->req, "content-type");
        if (ct == NULL || strncasecmp(ct, "application/json", 16) != 0) {
            sl_rest_fail(call, SL_EINVAL, "a POST needs Content-Type: application/json");
            return;
        }
    }
    if (strcmp(rest, "/overview") == 0 && get) {
        overview(call);
    } else if (strcmp(rest, "/streams") == 0 && get) {
        list_streams(call);
    } else if (strncmp(rest, "/streams/", 9) == 0) {
        on_stream(call, rest + 9, get);
    } else if (strcmp(rest, "/history") == 0 && get) {
        history(call);
    } else if (strcmp(rest, "/queues") == 0 && get) {
        sl_rest_queues_list(call);
    } else if (strncmp(rest, "/queues/", 8) == 0) {
        on_queue(call, rest + 8, get);
    } else {
        sl_rest_fail(call, SL_ENOTFOUND,
                     "no such endpoint: GET " REST_PREFIX "/overview, " REST_PREFIX
                     "/streams, " REST_PREFIX "/streams/NAME, " REST_PREFIX
                     "/streams/NAME/records, " REST_PREFIX "/queues, " REST_PREFIX
                     "/queues/STREAM/GROUP; POST " REST_PREFIX "/streams/NAME/records, "
                     REST_PREFIX "/streams/NAME/redrive, " REST_PREFIX
                     "/queues/STREAM/GROUP/purge");
    }
}
