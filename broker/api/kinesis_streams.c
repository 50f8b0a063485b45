/* kinesis_streams.c - the Kinesis API's administration: CreateStream,
 * DeleteStream, DescribeStream(Summary), ListStreams, ListShards, retention,
 * tags and registered consumers.
 *
 * Durable state: streams are the engine's (catalog.h); tags and consumers
 * are stream properties (stream.meta, rewritten synchronously: rare admin
 * requests), keys "kinesis.tag.<Key>" (bytes outside printable ASCII, '=',
 * and '%' percent-encoded) and "kinesis.consumer.<Name>" = creation time in
 * epoch seconds; "kinesis.mode" = ON_DEMAND for on-demand streams. A stream
 * has at most SL_STREAM_PROPS_MAX properties in all (LimitExceeded beyond).
 * Every stream is ACTIVE from creation (creation is durable before the
 * answer), every consumer ACTIVE from registration.
 *
 * Threading: the main loop; everything here is synchronous.
 */
#include "broker/api/access.h"
#include "broker/api/kinesis_int.h"

#include "broker/engine/catalog.h"
#include "broker/engine/engine.h"
#include "broker/engine/streams.h"
#include "common/assert.h"
#include "common/error.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MODE_KEY      "kinesis.mode"
#define LIST_DEFAULT  100u
#define LIST_MAX      10000u
#define TAG_KEY_MAX   128u /* AWS */
#define TAG_VALUE_MAX 256u /* AWS */
#define WHY_MAX       256u

/* An optional integer member in [lo, hi]; *out untouched when absent.
 * Answers the call and returns false when invalid. */
static bool opt_int(struct sl_api_call *call, const json_t *body, const char *key, uint32_t lo,
                    uint32_t hi, uint32_t *out)
{
    const json_t *v = json_object_get(body, key);
    if (v == NULL || json_is_null(v)) {
        return true;
    }
    if (!json_is_integer(v)) {
        sl_kin_fail(call, SL_KIN_SERIALIZATION, "%s must be an integer", key);
        return false;
    }
    json_int_t i = json_integer_value(v);
    if (i < (json_int_t)lo || i > (json_int_t)hi) {
        sl_kin_fail(call, SL_KIN_INVALID_ARGUMENT, "%s must be %u-%u", key, lo, hi);
        return false;
    }
    *out = (uint32_t)i;
    return true;
}

static const char *mode_of(const struct sl_stream *st)
{
    const char *m = sl_catalog_prop(st, MODE_KEY);
    return m != NULL ? m : "PROVISIONED";
}

/* ---- create, delete --------------------------------------------------- */

/* In cluster mode a stream is made in the cluster, replicated (the default replication
 * factor), and the call answered once this broker's catalog has it. */
struct kin_create {
    struct sl_api_call *call;
    char name[SL_STREAM_NAME_MAX + 1];
};

static void on_replicated_created(void *ctx, int err, const char *why, struct sl_stream *st)
{
    (void)st;
    struct kin_create *kc = ctx;
    if (err == SL_EEXIST) {
        sl_kin_fail(kc->call, SL_KIN_RESOURCE_IN_USE,
                    "Stream %s under account " SL_KIN_ACCOUNT " already exists.", kc->name);
    } else if (err != SL_OK) {
        sl_kin_fail(kc->call, sl_kin_err_of(err), "cannot create stream %s: %s", kc->name, why);
    } else {
        sl_kin_reply_json(kc->call, json_object());
    }
    free(kc);
}

void sl_kin_create_stream(struct sl_api_call *call, json_t *body)
{
    const char *name = sl_kin_str(body, "StreamName");
    const json_t *md = json_object_get(body, "StreamModeDetails");
    const char *mode = sl_kin_str(md, "StreamMode");
    if (name == NULL || !sl_kin_name_ok(name)) {
        sl_kin_fail(call, SL_KIN_INVALID_ARGUMENT,
                    "StreamName must be 1-%u characters of [a-zA-Z0-9_.-]", SL_KIN_NAME_MAX);
        return;
    }
    if (!sl_kin_allowed(call, name)) {
        return;
    }
    if (mode != NULL && strcmp(mode, "ON_DEMAND") != 0 && strcmp(mode, "PROVISIONED") != 0) {
        sl_kin_fail(call, SL_KIN_INVALID_ARGUMENT, "StreamMode must be PROVISIONED or ON_DEMAND");
        return;
    }
    bool on_demand = mode != NULL && strcmp(mode, "ON_DEMAND") == 0;
    uint32_t shards = 0;
    if (!opt_int(call, body, "ShardCount", 1, SL_STREAM_SHARDS_MAX, &shards)) {
        return;
    }
    if (shards == 0 && !on_demand && mode != NULL) {
        sl_kin_fail(call, SL_KIN_INVALID_ARGUMENT, "a PROVISIONED stream needs ShardCount");
        return;
    }
    on_demand = on_demand || shards == 0;
    shards = shards == 0 ? SL_KIN_ON_DEMAND_SHARDS : shards;
    struct sl_stream_spec spec = {
        .name = name, .shard_count = shards, .retention_hours = SL_KIN_RETENTION_MIN_H};
    if (call->api->engine->repl != NULL) {
        /* (ON_DEMAND is kept as each broker's stream property, which a replicated stream
         * does not have yet: it reads PROVISIONED, with the shards on-demand starts with) */
        struct kin_create *kc = calloc(1, sizeof(*kc));
        if (kc == NULL) {
            sl_kin_fail(call, SL_KIN_INTERNAL_FAILURE, "out of memory");
            return;
        }
        kc->call = call;
        snprintf(kc->name, sizeof(kc->name), "%s", name);
        sl_streams_create_replicated_async(call->api->engine, &spec, on_replicated_created, kc);
        return;
    }
    struct sl_stream *st = NULL;
    char why[WHY_MAX];
    int rc = sl_streams_create(call->api->engine, &spec, &st, why, sizeof(why));
    if (rc == SL_EEXIST) {
        sl_kin_fail(call, SL_KIN_RESOURCE_IN_USE,
                    "Stream %s under account " SL_KIN_ACCOUNT " already exists.", name);
        return;
    }
    if (rc == SL_OK && on_demand) {
        const char *k = MODE_KEY, *v = "ON_DEMAND";
        rc = sl_catalog_set_props(call->api->engine->catalog, st, &k, &v, 1, why, sizeof(why));
    }
    if (rc != SL_OK) { /* the catalog's reasons name the stream already */
        bool named = strncmp(why, "cannot create stream ", 21) == 0;
        sl_kin_fail(call, sl_kin_err_of(rc), "%s%s%s%s", named ? "" : "cannot create stream ",
                    named ? "" : name, named ? "" : ": ", why);
        return;
    }
    sl_kin_reply_json(call, json_object());
}

void sl_kin_delete_stream(struct sl_api_call *call, json_t *body)
{
    struct sl_stream *st = sl_kin_stream(call, body);
    if (st == NULL) {
        return;
    }
    char name[SL_STREAM_NAME_MAX + 1];
    snprintf(name, sizeof(name), "%s", st->name);
    char why[WHY_MAX];
    int rc = sl_streams_delete(call->api->engine, name, why, sizeof(why));
    if (rc != SL_OK) {
        sl_kin_fail(call, sl_kin_err_of(rc), "%s", why);
        return;
    }
    sl_kin_reply_json(call, json_object());
}

/* ---- describe, list ----------------------------------------------------- */

/* A shard's hash key range: Kinesis's exact 128-bit uniform ranges while the
 * stream was never resharded; after, the lineage's 64-bit ranges as the high
 * halves of the 128-bit space (what put_route routes by). */
void sl_kin_hash_range(const struct sl_stream *st, uint32_t i, sl_u128 *lo, sl_u128 *hi)
{
    if (st->lineage.n == st->lineage.open) {
        *lo = sl_kin_range_start(i, st->shard_count);
        *hi = sl_kin_range_end(i, st->shard_count);
        return;
    }
    const struct sl_lineage_shard *ls = &st->lineage.shard[i];
    *lo = (sl_u128)ls->start << 64;
    *hi = ((sl_u128)ls->end << 64) | UINT64_MAX;
}

static json_t *shard_json(const struct sl_stream *st, uint32_t i)
{
    char id[SL_KIN_SHARD_ID_LEN + 1], lo[SL_KIN_DEC_U128_MAX + 1], hi[SL_KIN_DEC_U128_MAX + 1];
    char seq[24];
    struct sl_shard_info si;
    sl_streams_shard_info(st, i, &si);
    sl_kin_shard_id(i, id);
    sl_u128 l, h;
    sl_kin_hash_range(st, i, &l, &h);
    sl_kin_u128_format(l, lo);
    sl_kin_u128_format(h, hi);
    snprintf(seq, sizeof(seq), "%" PRIu64, si.first_seq);
    json_t *j = json_pack("{s:s,s:{s:s,s:s},s:{s:s}}", "ShardId", id, "HashKeyRange",
                          "StartingHashKey", lo, "EndingHashKey", hi, "SequenceNumberRange",
                          "StartingSequenceNumber", seq);
    const struct sl_lineage_shard *ls = &st->lineage.shard[i];
    for (int k = 0; j != NULL && k < 2; k++) { /* ParentShardId, AdjacentParentShardId */
        if (ls->parent[k] != SL_LINEAGE_NONE) {
            char pid[SL_KIN_SHARD_ID_LEN + 1];
            sl_kin_shard_id(ls->parent[k], pid);
            json_object_set_new(j, k == 0 ? "ParentShardId" : "AdjacentParentShardId",
                                json_string(pid));
        }
    }
    if (j != NULL && ls->closed) { /* its last record: no more will come */
        char end[24];
        snprintf(end, sizeof(end), "%" PRIu64, si.next_seq > 0 ? si.next_seq - 1 : 0);
        json_object_set_new(json_object_get(j, "SequenceNumberRange"), "EndingSequenceNumber",
                            json_string(end));
    }
    return j;
}

/* The first shard after ExclusiveStartShardId (0 without one). */
static bool start_shard(struct sl_api_call *call, const json_t *body, uint32_t *out)
{
    const char *ex = sl_kin_str(body, "ExclusiveStartShardId");
    uint32_t s = 0;
    *out = 0;
    if (ex != NULL && sl_kin_shard_parse(ex, &s) != SL_OK) {
        sl_kin_fail(call, SL_KIN_INVALID_ARGUMENT, "ExclusiveStartShardId is not a shard id");
        return false;
    }
    *out = ex != NULL ? s + 1 : 0;
    return true;
}

/* The fields DescribeStream and DescribeStreamSummary share. */
static json_t *stream_json(const struct sl_api_call *call, const struct sl_stream *st)
{
    char arn[SL_KIN_ARN_MAX];
    sl_kin_stream_arn(call, st->name, arn);
    return json_pack("{s:s,s:s,s:s,s:{s:s},s:i,s:f,s:[{s:[]}],s:s}", "StreamName", st->name,
                     "StreamARN", arn, "StreamStatus", "ACTIVE", "StreamModeDetails", "StreamMode",
                     mode_of(st), "RetentionPeriodHours", (json_int_t)st->retention_hours,
                     "StreamCreationTimestamp", (double)st->created_ms / 1000.0,
                     "EnhancedMonitoring", "ShardLevelMetrics", "EncryptionType", "NONE");
}

void sl_kin_describe_stream(struct sl_api_call *call, json_t *body)
{
    struct sl_stream *st = sl_kin_stream(call, body);
    uint32_t limit = LIST_DEFAULT, first = 0;
    if (st == NULL || !opt_int(call, body, "Limit", 1, LIST_MAX, &limit) ||
        !start_shard(call, body, &first)) {
        return;
    }
    json_t *d = stream_json(call, st);
    json_t *shards = json_array();
    uint32_t i = first, listed = 0;
    for (; i < st->shard_count && listed < limit; i++) {
        if (!st->lineage.shard[i].gone) { /* (retention removed it) */
            json_array_append_new(shards, shard_json(st, i));
            listed++;
        }
    }
    while (i < st->shard_count && st->lineage.shard[i].gone) {
        i++;
    }
    json_object_set_new(d, "Shards", shards);
    json_object_set_new(d, "HasMoreShards", json_boolean(i < st->shard_count));
    sl_kin_reply_json(call, json_pack("{s:o}", "StreamDescription", d));
}

static uint32_t count_prefix(const struct sl_stream *st, const char *prefix)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < st->n_props; i++) {
        n += strncmp(st->props[i].key, prefix, strlen(prefix)) == 0;
    }
    return n;
}

void sl_kin_describe_summary(struct sl_api_call *call, json_t *body)
{
    struct sl_stream *st = sl_kin_stream(call, body);
    if (st == NULL) {
        return;
    }
    json_t *d = stream_json(call, st);
    json_object_set_new(d, "OpenShardCount", json_integer(st->lineage.open));
    json_object_set_new(d, "ConsumerCount", json_integer(count_prefix(st, SL_KIN_CONSUMER_PREFIX)));
    sl_kin_reply_json(call, json_pack("{s:o}", "StreamDescriptionSummary", d));
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp((*(const struct sl_stream *const *)a)->name,
                  (*(const struct sl_stream *const *)b)->name);
}

void sl_kin_list_streams(struct sl_api_call *call, json_t *body)
{
    uint32_t limit = LIST_DEFAULT, n = 0;
    const char *after = sl_kin_str(body, "ExclusiveStartStreamName");
    after = after != NULL ? after : sl_kin_str(body, "NextToken");
    if (!opt_int(call, body, "Limit", 1, LIST_MAX, &limit)) {
        return;
    }
    struct sl_catalog *cat = call->api->engine->catalog;
    for (struct sl_stream *st = sl_catalog_first(cat); st != NULL; st = st->next) {
        n++;
    }
    struct sl_stream **v = calloc(n + 1, sizeof(*v));
    if (v == NULL) {
        sl_kin_fail(call, SL_KIN_INTERNAL_FAILURE, "out of memory");
        return;
    }
    n = 0;
    call->acl_checked = true; /* any principal may list: only what it has a right on */
    for (struct sl_stream *st = sl_catalog_first(cat); st != NULL; st = st->next) {
        if (sl_access_visible(call, st->name)) {
            v[n++] = st;
        }
    }
    qsort(v, n, sizeof(*v), name_cmp);
    json_t *names = json_array(), *sums = json_array();
    uint32_t i = 0, shown = 0;
    while (i < n && after != NULL && strcmp(v[i]->name, after) <= 0) {
        i++;
    }
    for (; i < n && shown < limit; i++, shown++) {
        json_t *s = stream_json(call, v[i]);
        json_array_append_new(names, json_string(v[i]->name));
        json_array_append_new(sums, s);
    }
    json_t *out = json_pack("{s:o,s:o,s:b}", "StreamNames", names, "StreamSummaries", sums,
                            "HasMoreStreams", i < n);
    if (i < n && shown > 0) {
        json_object_set_new(out, "NextToken", json_string(v[i - 1]->name));
    }
    free(v);
    sl_kin_reply_json(call, out);
}

/* Which shards ListShards lists (its ShardFilter). Shards retention removed are never
 * listed. */
enum shard_filter {
    FILTER_ALL = 0, /* none, FROM_TRIM_HORIZON, AFTER_SHARD_ID */
    FILTER_OPEN,    /* AT_LATEST: the shards open now */
    FILTER_ROOTS,   /* AT_TRIM_HORIZON: the shards open at the oldest retained record: those
                       whose parents are all gone (or that have none) */
    FILTER_AT_TIME, /* AT_TIMESTAMP: the shards open at the time */
    FILTER_FROM_TIME, /* FROM_TIMESTAMP: those open at the time and every later one */
};

/* When shard i opened: when its parent closed (the change that made it), or the stream's
 * creation. */
static uint64_t opened_ms(const struct sl_stream *st, uint32_t i)
{
    uint32_t p = st->lineage.shard[i].parent[0];
    return p == SL_LINEAGE_NONE ? st->created_ms : st->lineage.shard[p].closed_ms;
}

static bool filter_keeps(const struct sl_stream *st, uint32_t i, enum shard_filter f,
                         uint64_t at_ms)
{
    const struct sl_lineage_shard *ls = &st->lineage.shard[i];
    if (ls->gone) {
        return false;
    }
    bool open_at = !ls->closed || ls->closed_ms > at_ms; /* (not closed by then) */
    switch (f) {
    case FILTER_ALL:
        return true;
    case FILTER_OPEN:
        return !ls->closed;
    case FILTER_ROOTS:
        for (int k = 0; k < 2; k++) {
            if (ls->parent[k] != SL_LINEAGE_NONE && !st->lineage.shard[ls->parent[k]].gone) {
                return false;
            }
        }
        return true;
    case FILTER_AT_TIME:
        return open_at && opened_ms(st, i) <= at_ms;
    case FILTER_FROM_TIME:
        return open_at;
    }
    return false;
}

/* The ShardFilter of body into *f (and *first for AFTER_SHARD_ID, *at_ms for the timestamp
 * types); false after answering. */
static bool shard_filter(struct sl_api_call *call, const json_t *body, enum shard_filter *f,
                         uint32_t *first, uint64_t *at_ms)
{
    const json_t *sf = json_object_get(body, "ShardFilter");
    *f = FILTER_ALL;
    if (sf == NULL || json_is_null(sf)) {
        return true;
    }
    const char *type = json_is_object(sf) ? sl_kin_str(sf, "Type") : NULL;
    if (type == NULL) {
        sl_kin_fail(call, SL_KIN_INVALID_ARGUMENT, "ShardFilter needs a Type");
        return false;
    }
    if (strcmp(type, "AT_LATEST") == 0) {
        *f = FILTER_OPEN;
    } else if (strcmp(type, "AT_TRIM_HORIZON") == 0) {
        *f = FILTER_ROOTS;
    } else if (strcmp(type, "FROM_TRIM_HORIZON") == 0) {
        *f = FILTER_ALL;
    } else if (strcmp(type, "AFTER_SHARD_ID") == 0) {
        const char *id = sl_kin_str(sf, "ShardId");
        uint32_t s = 0;
        if (id == NULL || sl_kin_shard_parse(id, &s) != SL_OK) {
            sl_kin_fail(call, SL_KIN_INVALID_ARGUMENT,
                        "ShardFilter AFTER_SHARD_ID needs a ShardId (shardId-000000000000)");
            return false;
        }
        *first = s + 1;
    } else if (strcmp(type, "AT_TIMESTAMP") == 0 || strcmp(type, "FROM_TIMESTAMP") == 0) {
        const json_t *ts = json_object_get(sf, "Timestamp");
        double secs = json_is_number(ts) ? json_number_value(ts) : -1.0;
        if (!(secs >= 0.0 && secs < 1e13)) { /* epoch seconds, fractional */
            sl_kin_fail(call, SL_KIN_INVALID_ARGUMENT,
                        "ShardFilter %s needs a Timestamp (epoch seconds)", type);
            return false;
        }
        *f = type[0] == 'A' ? FILTER_AT_TIME : FILTER_FROM_TIME;
        *at_ms = (uint64_t)(secs * 1000.0);
    } else {
        sl_kin_fail(call, SL_KIN_INVALID_ARGUMENT,
                    "ShardFilter Type must be AFTER_SHARD_ID, AT_TRIM_HORIZON, FROM_TRIM_HORIZON, "
                    "AT_LATEST, AT_TIMESTAMP or FROM_TIMESTAMP");
        return false;
    }
    return true;
}

/* NextToken of ListShards: "<last shard index>[L|R|A<ms>|F<ms>]/<stream name>" (the
 * ShardFilter of the first call: AT_LATEST, AT_TRIM_HORIZON, AT_TIMESTAMP or
 * FROM_TIMESTAMP with its time). */
void sl_kin_list_shards(struct sl_api_call *call, json_t *body)
{
    const char *token = sl_kin_str(body, "NextToken");
    uint32_t limit = 1000, first = 0;
    uint64_t at_ms = 0;
    enum shard_filter filter = FILTER_ALL;
    struct sl_stream *st = NULL;
    if (token != NULL) {
        char *end = NULL;
        unsigned long last = strtoul(token, &end, 10);
        bool ok = end != token;
        if (ok && (*end == 'L' || *end == 'R')) {
            filter = *end == 'L' ? FILTER_OPEN : FILTER_ROOTS;
            end++;
        } else if (ok && (*end == 'A' || *end == 'F')) {
            filter = *end == 'A' ? FILTER_AT_TIME : FILTER_FROM_TIME;
            char *t = end + 1;
            at_ms = strtoull(t, &end, 10);
            ok = end != t;
        }
        if (!ok || *end != '/' || last >= SL_LINEAGE_SHARDS_MAX) { /* (ids: closed too) */
            sl_kin_fail(call, SL_KIN_INVALID_ARGUMENT, "NextToken is not one of ours");
            return;
        }
        if (json_object_get(body, "ShardFilter") != NULL) {
            sl_kin_fail(call, SL_KIN_INVALID_ARGUMENT,
                        "ShardFilter cannot be used with NextToken (the token keeps it)");
            return;
        }
        first = (uint32_t)last + 1;
        st = sl_kin_stream_named(call, end + 1, NULL);
    } else {
        st = sl_kin_stream(call, body);
        if (st != NULL && (!start_shard(call, body, &first) ||
                           !shard_filter(call, body, &filter, &first, &at_ms))) {
            return;
        }
    }
    if (st == NULL || !opt_int(call, body, "MaxResults", 1, LIST_MAX, &limit)) {
        return;
    }
    json_t *shards = json_array();
    uint32_t i = first, listed = 0;
    for (; i < st->shard_count && listed < limit; i++) {
        if (filter_keeps(st, i, filter, at_ms)) {
            json_array_append_new(shards, shard_json(st, i));
            listed++;
        }
    }
    uint32_t more = i;
    while (more < st->shard_count && !filter_keeps(st, more, filter, at_ms)) {
        more++;
    }
    json_t *out = json_pack("{s:o}", "Shards", shards);
    if (more < st->shard_count) {
        char kind[24] = "";
        if (filter == FILTER_OPEN || filter == FILTER_ROOTS) {
            snprintf(kind, sizeof(kind), "%s", filter == FILTER_OPEN ? "L" : "R");
        } else if (filter == FILTER_AT_TIME || filter == FILTER_FROM_TIME) {
            snprintf(kind, sizeof(kind), "%c%" PRIu64, filter == FILTER_AT_TIME ? 'A' : 'F',
                     at_ms);
        }
        char next[SL_STREAM_NAME_MAX + 40];
        snprintf(next, sizeof(next), "%u%s/%s", i - 1, kind, st->name);
        json_object_set_new(out, "NextToken", json_string(next));
    }
    sl_kin_reply_json(call, out);
}

/* ---- retention ------------------------------------------------------------ */

static void retention(struct sl_api_call *call, json_t *body, bool increase)
{
    struct sl_stream *st = sl_kin_stream(call, body);
    uint32_t hours = 0;
    if (st == NULL || !opt_int(call, body, "RetentionPeriodHours", SL_KIN_RETENTION_MIN_H,
                               SL_KIN_RETENTION_MAX_H, &hours)) {
        return;
    }
    if (hours == 0) {
        sl_kin_fail(call, SL_KIN_INVALID_ARGUMENT, "RetentionPeriodHours is required");
        return;
    }
    if (increase ? hours < st->retention_hours : hours > st->retention_hours) {
        sl_kin_fail(call, SL_KIN_INVALID_ARGUMENT,
                    "Requested retention period (%u hours) for stream %s can not be %s than "
                    "existing retention period (%u hours). Use %sStreamRetentionPeriod API.",
                    hours, st->name, increase ? "shorter" : "longer", st->retention_hours,
                    increase ? "Decrease" : "Increase");
        return;
    }
    char why[WHY_MAX];
    int rc = sl_catalog_set_retention(call->api->engine->catalog, st, hours, why, sizeof(why));
    if (rc != SL_OK) {
        sl_kin_fail(call, sl_kin_err_of(rc), "%s", why);
        return;
    }
    sl_kin_reply_json(call, json_object());
}

void sl_kin_increase_retention(struct sl_api_call *call, json_t *body)
{
    retention(call, body, true);
}

void sl_kin_decrease_retention(struct sl_api_call *call, json_t *body)
{
    retention(call, body, false);
}

/* ---- tags ---------------------------------------------------------------- */

/* The property key of tag `key`; false when it does not fit. */
static bool tag_prop(const char *key, char *out, size_t cap)
{
    size_t o = (size_t)snprintf(out, cap, "%s", SL_KIN_TAG_PREFIX);
    for (const unsigned char *p = (const unsigned char *)key; *p != '\0'; p++) {
        bool plain = *p > ' ' && *p <= '~' && *p != '=' && *p != '%';
        if (o + 4 > cap) {
            return false;
        }
        o += (size_t)(plain ? snprintf(out + o, cap - o, "%c", *p)
                            : snprintf(out + o, cap - o, "%%%02X", *p));
    }
    return o > strlen(SL_KIN_TAG_PREFIX) && o <= SL_STREAM_PROP_KEY_MAX;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* The tag key of property key `prop` (after the prefix) into out. */
static void tag_key(const char *prop, char *out, size_t cap)
{
    size_t o = 0;
    for (const char *p = prop; *p != '\0' && o + 1 < cap; p++) {
        if (*p == '%' && hexval(p[1]) >= 0 && hexval(p[2]) >= 0) {
            out[o++] = (char)(hexval(p[1]) << 4 | hexval(p[2]));
            p += 2;
        } else {
            out[o++] = *p;
        }
    }
    out[o] = '\0';
}

/* Tags the stream would hold after setting (value) or removing (NULL) the
 * n property keys pk. */
static uint32_t tags_after(const struct sl_stream *st, const char *const *pk,
                           const char *const *values, uint32_t n)
{
    uint32_t count = count_prefix(st, SL_KIN_TAG_PREFIX);
    for (uint32_t i = 0; i < n; i++) {
        bool dup = false;
        for (uint32_t j = 0; j < i && !dup; j++) {
            dup = strcmp(pk[j], pk[i]) == 0;
        }
        bool had = sl_catalog_prop(st, pk[i]) != NULL;
        if (!dup && values[i] != NULL && !had) {
            count++;
        } else if (!dup && values[i] == NULL && had) {
            count--;
        }
    }
    return count;
}

/* Applies n (key, value or NULL) tag changes durably, all or none. */
static void set_tags(struct sl_api_call *call, struct sl_stream *st, const char **keys,
                     const char **values, uint32_t n)
{
    char(*props)[SL_STREAM_PROP_KEY_MAX + 1] = calloc(n + 1, sizeof(*props));
    const char **pk = calloc(n + 1, sizeof(*pk));
    char why[WHY_MAX];
    int rc = props == NULL || pk == NULL ? SL_ENOMEM : SL_OK;
    for (uint32_t i = 0; rc == SL_OK && i < n; i++) {
        if (!tag_prop(keys[i], props[i], sizeof(props[i]))) {
            snprintf(why, sizeof(why), "tag key %.200s: 1-%u characters", keys[i],
                     (unsigned)(SL_STREAM_PROP_KEY_MAX - strlen(SL_KIN_TAG_PREFIX)));
            rc = SL_EINVAL;
        }
        pk[i] = props[i];
    }
    if (rc == SL_OK && tags_after(st, pk, values, n) > SL_KIN_TAGS_MAX) {
        snprintf(why, sizeof(why), "a stream has at most %u tags", SL_KIN_TAGS_MAX);
        rc = SL_ELIMIT;
    }
    if (rc == SL_OK) {
        rc = sl_catalog_set_props(call->api->engine->catalog, st, pk, values, n, why, sizeof(why));
    }
    SL_ASSERT(rc != SL_OK || count_prefix(st, SL_KIN_TAG_PREFIX) <= SL_KIN_TAGS_MAX);
    free(props);
    free(pk);
    if (rc != SL_OK) {
        sl_kin_fail(call, rc == SL_ENOMEM ? SL_KIN_INTERNAL_FAILURE : sl_kin_err_of(rc), "%s",
                    rc == SL_ENOMEM ? "out of memory" : why);
        return;
    }
    sl_kin_reply_json(call, json_object());
}

void sl_kin_add_tags(struct sl_api_call *call, json_t *body)
{
    struct sl_stream *st = sl_kin_stream(call, body);
    const json_t *tags = json_object_get(body, "Tags");
    if (st == NULL) {
        return;
    }
    size_t n = json_object_size(tags);
    if (!json_is_object(tags) || n == 0 || n > SL_KIN_TAGS_MAX) {
        sl_kin_fail(call, SL_KIN_INVALID_ARGUMENT, "Tags must map 1-%u keys to values",
                    SL_KIN_TAGS_MAX);
        return;
    }
    const char *keys[SL_KIN_TAGS_MAX], *values[SL_KIN_TAGS_MAX];
    uint32_t i = 0;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)tags, k, v)
    {
        if (!json_is_string(v) || strlen(k) > TAG_KEY_MAX ||
            json_string_length(v) > TAG_VALUE_MAX) {
            sl_kin_fail(call, SL_KIN_INVALID_ARGUMENT,
                        "tag %.200s: keys are 1-%u characters, values strings of 0-%u", k,
                        TAG_KEY_MAX, TAG_VALUE_MAX);
            return;
        }
        keys[i] = k;
        values[i++] = json_string_value(v);
    }
    set_tags(call, st, keys, values, i);
}

void sl_kin_remove_tags(struct sl_api_call *call, json_t *body)
{
    struct sl_stream *st = sl_kin_stream(call, body);
    const json_t *tk = json_object_get(body, "TagKeys");
    if (st == NULL) {
        return;
    }
    size_t n = json_array_size(tk);
    if (!json_is_array(tk) || n == 0 || n > SL_KIN_TAGS_MAX) {
        sl_kin_fail(call, SL_KIN_INVALID_ARGUMENT, "TagKeys must list 1-%u keys", SL_KIN_TAGS_MAX);
        return;
    }
    const char *keys[SL_KIN_TAGS_MAX], *values[SL_KIN_TAGS_MAX];
    for (size_t i = 0; i < n; i++) {
        keys[i] = json_string_value(json_array_get(tk, i));
        values[i] = NULL;
        if (keys[i] == NULL) {
            sl_kin_fail(call, SL_KIN_SERIALIZATION, "TagKeys must be strings");
            return;
        }
    }
    set_tags(call, st, keys, values, (uint32_t)n);
}

void sl_kin_list_tags(struct sl_api_call *call, json_t *body)
{
    struct sl_stream *st = sl_kin_stream(call, body);
    uint32_t limit = SL_KIN_TAGS_MAX;
    if (st == NULL || !opt_int(call, body, "Limit", 1, SL_KIN_TAGS_MAX, &limit)) {
        return;
    }
    const char *after = sl_kin_str(body, "ExclusiveStartTagKey");
    size_t plen = strlen(SL_KIN_TAG_PREFIX);
    json_t *tags = json_array();
    bool more = false;
    for (uint32_t i = 0; i < st->n_props; i++) {
        char key[SL_STREAM_PROP_KEY_MAX + 1];
        if (strncmp(st->props[i].key, SL_KIN_TAG_PREFIX, plen) != 0) {
            continue;
        }
        tag_key(st->props[i].key + plen, key, sizeof(key));
        if (after != NULL && strcmp(key, after) <= 0) {
            continue;
        }
        if (json_array_size(tags) == limit) {
            more = true;
            break;
        }
        json_array_append_new(tags,
                              json_pack("{s:s,s:s}", "Key", key, "Value", st->props[i].value));
    }
    sl_kin_reply_json(call, json_pack("{s:o,s:b}", "Tags", tags, "HasMoreTags", more));
}

/* ---- registered consumers ------------------------------------------------- */

/* A consumer's property key: the prefix and the name must fit a key. */
#define CONSUMER_NAME_MAX  (SL_STREAM_PROP_KEY_MAX - (sizeof(SL_KIN_CONSUMER_PREFIX) - 1))
#define CONSUMER_KEY_BYTES (sizeof(SL_KIN_CONSUMER_PREFIX) + SL_KIN_NAME_MAX)

static void consumer_key(const char *name, char *key /* CONSUMER_KEY_BYTES */)
{
    snprintf(key, CONSUMER_KEY_BYTES, SL_KIN_CONSUMER_PREFIX "%s", name);
}

struct consumer_ref {
    struct sl_stream *st;
    char name[SL_KIN_NAME_MAX + 1];
    char stream_arn[SL_KIN_ARN_MAX];
};

/* The stream and consumer named by StreamARN + ConsumerName, or by
 * ConsumerARN ("<stream ARN>/consumer/<name>:<epoch>"); answers and returns
 * false when they are wrong. */
static bool consumer_of(struct sl_api_call *call, const json_t *body, bool need_name,
                        struct consumer_ref *c)
{
    const char *carn = sl_kin_str(body, "ConsumerARN");
    const char *cname = sl_kin_str(body, "ConsumerName");
    char stream[SL_KIN_NAME_MAX + 1];
    const char *rest = "";
    if (carn != NULL) {
        size_t n = 0;
        if (sl_kin_arn_stream(carn, stream, &rest) != SL_OK ||
            strncmp(rest, "/consumer/", 10) != 0 || (n = strcspn(rest + 10, ":")) == 0 ||
            n > SL_KIN_NAME_MAX) {
            sl_kin_fail(call, SL_KIN_INVALID_ARGUMENT, "ConsumerARN is not a consumer ARN");
            return false;
        }
        snprintf(c->name, sizeof(c->name), "%.*s", (int)n, rest + 10);
        c->st = sl_kin_stream_named(call, stream, NULL);
    } else {
        c->st = sl_kin_stream_named(call, NULL, sl_kin_str(body, "StreamARN"));
        snprintf(c->name, sizeof(c->name), "%s", cname != NULL ? cname : "");
    }
    if (c->st == NULL) {
        return false;
    }
    if (need_name && (!sl_kin_name_ok(c->name) || strlen(c->name) > CONSUMER_NAME_MAX)) {
        sl_kin_fail(call, SL_KIN_INVALID_ARGUMENT,
                    "ConsumerName must be 1-%zu characters of [a-zA-Z0-9_.-]", CONSUMER_NAME_MAX);
        return false;
    }
    sl_kin_stream_arn(call, c->st->name, c->stream_arn);
    return true;
}

static json_t *consumer_json(const struct consumer_ref *c, const char *name, const char *epoch,
                             bool with_stream)
{
    char arn[SL_KIN_ARN_MAX + SL_KIN_NAME_MAX + 64];
    snprintf(arn, sizeof(arn), "%s/consumer/%s:%.20s", c->stream_arn, name, epoch);
    json_t *o =
        json_pack("{s:s,s:s,s:s,s:I}", "ConsumerName", name, "ConsumerARN", arn, "ConsumerStatus",
                  "ACTIVE", "ConsumerCreationTimestamp", (json_int_t)strtoll(epoch, NULL, 10));
    if (with_stream) {
        json_object_set_new(o, "StreamARN", json_string(c->stream_arn));
    }
    return o;
}

void sl_kin_register_consumer(struct sl_api_call *call, json_t *body)
{
    struct consumer_ref c;
    if (!consumer_of(call, body, true, &c)) {
        return;
    }
    char key[CONSUMER_KEY_BYTES], epoch[24], why[WHY_MAX];
    consumer_key(c.name, key);
    if (sl_catalog_prop(c.st, key) != NULL) {
        sl_kin_fail(call, SL_KIN_RESOURCE_IN_USE, "Consumer %s already exists", c.name);
        return;
    }
    if (count_prefix(c.st, SL_KIN_CONSUMER_PREFIX) >= SL_KIN_CONSUMERS_MAX) {
        sl_kin_fail(call, SL_KIN_LIMIT_EXCEEDED, "a stream has at most %u consumers",
                    SL_KIN_CONSUMERS_MAX);
        return;
    }
    snprintf(epoch, sizeof(epoch), "%" PRIu64, (uint64_t)time(NULL));
    const char *k = key, *v = epoch;
    int rc = sl_catalog_set_props(call->api->engine->catalog, c.st, &k, &v, 1, why, sizeof(why));
    if (rc != SL_OK) {
        sl_kin_fail(call, sl_kin_err_of(rc), "%s", why);
        return;
    }
    sl_kin_reply_json(call,
                      json_pack("{s:o}", "Consumer", consumer_json(&c, c.name, epoch, false)));
}

void sl_kin_deregister_consumer(struct sl_api_call *call, json_t *body)
{
    struct consumer_ref c;
    if (!consumer_of(call, body, true, &c)) {
        return;
    }
    char key[CONSUMER_KEY_BYTES], why[WHY_MAX];
    consumer_key(c.name, key);
    if (sl_catalog_prop(c.st, key) == NULL) {
        sl_kin_fail(call, SL_KIN_RESOURCE_NOT_FOUND, "Consumer %s not found", c.name);
        return;
    }
    const char *k = key, *v = NULL;
    int rc = sl_catalog_set_props(call->api->engine->catalog, c.st, &k, &v, 1, why, sizeof(why));
    if (rc != SL_OK) {
        sl_kin_fail(call, sl_kin_err_of(rc), "%s", why);
        return;
    }
    sl_kin_reply_json(call, json_object());
}

void sl_kin_describe_consumer(struct sl_api_call *call, json_t *body)
{
    struct consumer_ref c;
    if (!consumer_of(call, body, true, &c)) {
        return;
    }
    char key[CONSUMER_KEY_BYTES];
    consumer_key(c.name, key);
    const char *epoch = sl_catalog_prop(c.st, key);
    if (epoch == NULL) {
        sl_kin_fail(call, SL_KIN_RESOURCE_NOT_FOUND, "Consumer %s not found", c.name);
        return;
    }
    sl_kin_reply_json(
        call, json_pack("{s:o}", "ConsumerDescription", consumer_json(&c, c.name, epoch, true)));
}

void sl_kin_list_consumers(struct sl_api_call *call, json_t *body)
{
    struct consumer_ref c;
    if (!consumer_of(call, body, false, &c)) {
        return;
    }
    size_t plen = strlen(SL_KIN_CONSUMER_PREFIX);
    json_t *list = json_array();
    for (uint32_t i = 0; i < c.st->n_props; i++) {
        const char *k = c.st->props[i].key;
        if (strncmp(k, SL_KIN_CONSUMER_PREFIX, plen) == 0) {
            json_array_append_new(list, consumer_json(&c, k + plen, c.st->props[i].value, false));
        }
    }
    sl_kin_reply_json(call, json_pack("{s:o}", "Consumers", list));
}
