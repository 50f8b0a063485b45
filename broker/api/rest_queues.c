/* rest_queues.c - the console's queue groups and topic subscriptions: their
 * counters and settings, purge, and the redrive of dead letters back to
 * their source streams.
 *
 * Redrive reads the dead-letter stream through the queue group
 * REDRIVE_GROUP on it - the one `sluice queue redrive` uses - so a record is
 * redriven once whichever tool does it: leased, produced (durably) to the
 * stream named by its sluice.source_stream attribute, then acked; a failed
 * produce nacks the round and nothing is acked. A record may be produced
 * twice if the broker stops between the produce and the ack (at least
 * once, as the CLI). One request moves at most REDRIVE_REQUEST_MAX records
 * and says `more`; the page calls again. Discarding acks them in that group
 * without a produce (the log keeps them until retention), all in one request,
 * and says how many.
 *
 * A selected redrive names the dead letters to move (the page's checked
 * rows): the rounds lease in the group's order, move the named ones and hold
 * the others' leases until the request ends - released then, at once - so
 * the scan goes forward instead of leasing the same records again. It looks
 * at most REDRIVE_REQUEST_MAX pending dead letters and names those it did not
 * find (redriven or discarded already, or beyond the scan).
 *
 * Threading: the main loop. Engine callbacks may run before the call
 * returns; a request's rounds chain at most REDRIVE_REQUEST_MAX /
 * REDRIVE_ROUND_MAX deep.
 */
#include "broker/api/access.h"
#include "broker/api/api.h"
#include "broker/api/rest_int.h"
#include "broker/api/rest_parse.h"
#include "broker/auth/auth.h"
#include "broker/engine/catalog.h"
#include "broker/engine/engine.h"
#include "broker/engine/produce.h"
#include "broker/engine/queue.h"
#include "broker/engine/streams.h"
#include "broker/http/http.h"
#include "broker/push/push.h"
#include "common/assert.h"
#include "common/error.h"
#include "common/log.h"
#include "common/partition.h"
#include "common/url.h"

#include <stdlib.h>
#include <string.h>

#define REDRIVE_GROUP        "sluice.redrive"
#define REDRIVE_ROUND_MAX    500u  /* records leased per round */
#define REDRIVE_REQUEST_MAX  5000u /* records per request: then `more` */
#define REDRIVE_BATCH_BYTES  (1u << 20)
#define REDRIVE_LEASE_MS     60000u
#define SOURCE_STREAM_ATTR   "sluice.source_stream"

/* ---- counters and settings -------------------------------------------------- */

/* Dead letters not redriven or discarded yet: what the redrive group has
 * not acked, or the whole dead-letter stream before its first redrive. */
static uint64_t dead_letters_pending(struct sl_engine *e, const char *dlq)
{
    struct sl_qgroup_stats rs;
    char why[SL_REST_WHY_MAX];
    if (sl_queue_stats(e, dlq, REDRIVE_GROUP, &rs, why, sizeof(why)) == SL_OK) {
        return rs.visible + rs.inflight + rs.delayed;
    }
    struct sl_stream *st = sl_catalog_find(e->catalog, dlq);
    uint64_t n = 0;
    for (uint32_t i = 0; st != NULL && i < st->shard_count; i++) {
        struct sl_shard_info si;
        sl_streams_shard_info(st, i, &si);
        n += si.next_seq - si.first_seq;
    }
    return n;
}

/* A group's push target: where it delivers (a URL without its secrets, or
 * stream:NAME) and how it is doing. */
static json_t *push_json(const struct sl_push_status *s)
{
    const struct sl_push_target *t = &s->target;
    char dest[SL_PUSH_URL_MAX + 8];
    sl_url_redact(t->url, dest, sizeof(dest));
    const char *format = sl_push_format_name((enum sl_push_format)t->format);
    json_t *j = json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:b,s:s}", "destination", dest, "format",
                          format != NULL ? format : "?", "batch_size", (json_int_t)t->batch_size,
                          "batch_window_ms", (json_int_t)t->batch_window_ms, "concurrency",
                          (json_int_t)t->concurrency, "timeout_ms", (json_int_t)t->timeout_ms,
                          "transform", t->transform[0] != '\0', "replay_name", t->replay_name);
    json_t *state = json_pack(
        "{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:s,s:I}", "inflight_batches", (json_int_t)s->inflight,
        "delivered", (json_int_t)s->delivered, "released", (json_int_t)s->released, "batches_ok",
        (json_int_t)s->batches_ok, "batches_failed", (json_int_t)s->batches_failed,
        "consecutive_failures", (json_int_t)s->failures, "paused_ms", (json_int_t)s->paused_ms,
        "last_status", (json_int_t)s->last_status, "last_error", s->last_error,
        "last_latency_us", (json_int_t)s->last_latency_us);
    if (j == NULL || state == NULL || json_object_update(j, state) != 0) {
        json_decref(j);
        j = NULL;
    }
    json_decref(state);
    return j;
}

static json_t *queue_json(const struct sl_api *api, const char *stream, const char *group)
{
    struct sl_engine *e = api->engine;
    struct sl_qgroup_stats qs;
    char why[SL_REST_WHY_MAX];
    if (sl_queue_stats(e, stream, group, &qs, why, sizeof(why)) != SL_OK) {
        return NULL;
    }
    const struct sl_qgroup_config *c = &qs.config;
    /* no dead-lettering: no dead-letter stream, whatever its default name */
    const char *dlq = c->max_deliveries > 0 && c->dead_letter_stream != NULL
                          ? c->dead_letter_stream
                          : "";
    json_int_t pending = dlq[0] != '\0' ? (json_int_t)dead_letters_pending(e, dlq) : 0;
    json_t *q = json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:b,s:s,s:s}", "stream", stream,
                     "group", group, "visible", (json_int_t)qs.visible, "inflight",
                     (json_int_t)qs.inflight, "delayed", (json_int_t)qs.delayed, "dead_lettered",
                     (json_int_t)qs.dead_lettered, "filtered_out", (json_int_t)qs.filtered_out,
                     "oldest_age_ms", (json_int_t)qs.oldest_age_ms, "visibility_timeout_ms",
                     (json_int_t)c->visibility_timeout_ms, "max_deliveries",
                     (json_int_t)c->max_deliveries, "max_inflight", (json_int_t)c->max_inflight,
                     "ordered", c->ordered, "dead_letter_stream", dlq, "filter",
                     c->filter != NULL ? c->filter : "");
    if (q != NULL) {
        json_object_set_new(q, "dead_letters_pending", json_integer(pending));
        json_object_set_new(q, "filter_scope", json_string(c->filter_body ? "body" : "attributes"));
        struct sl_push_status ps;
        json_object_set_new(q, "push",
                            sl_push_get(api->push, stream, group, &ps) ? push_json(&ps) : json_null());
    }
    return q;
}

struct group_list {
    const struct sl_api *api;
    const char *stream;
    json_t *arr;
};

static void add_group(void *ctx, const char *name)
{
    struct group_list *l = ctx;
    json_t *q = queue_json(l->api, l->stream, name);
    if (q != NULL) {
        json_array_append_new(l->arr, q);
    }
}

json_t *sl_rest_queues_of(const struct sl_api *api, const char *stream)
{
    struct group_list l = {.api = api, .stream = stream, .arr = json_array()};
    char why[SL_REST_WHY_MAX];
    if (l.arr != NULL) {
        (void)sl_queue_groups(api->engine, stream, add_group, &l, why, sizeof(why));
    }
    return l.arr;
}

void sl_rest_queues_list(struct sl_api_call *call)
{
    json_t *all = json_array();
    struct sl_catalog *cat = call->api->engine->catalog;
    for (struct sl_stream *st = sl_catalog_first(cat); all != NULL && st != NULL; st = st->next) {
        if (sl_access_visible(call, st->name)) {
            json_t *qs = sl_rest_queues_of(call->api, st->name);
            json_array_extend(all, qs);
            json_decref(qs);
        }
    }
    sl_rest_reply(call, 200, all != NULL ? json_pack("{s:o}", "queues", all) : NULL);
}

/* ---- one group: GET, purge --------------------------------------------------- */

static void on_purged(void *ctx, int err, const char *why)
{
    struct sl_api_call *call = ctx;
    if (err != SL_OK) {
        sl_rest_fail(call, err, "%s", why);
    } else {
        sl_rest_reply(call, 200, json_pack("{s:b}", "purged", 1));
    }
}

void sl_rest_queue(struct sl_api_call *call, struct sl_stream *st, const char *group,
                   const char *verb, bool get)
{
    struct sl_engine *e = call->api->engine;
    char why[SL_REST_WHY_MAX];
    if (strcmp(verb, "") == 0 && get) {
        call->action = "console: describe a queue group";
        if (!sl_access_allowed(call, SL_ACL_ANY, st->name, why, sizeof(why))) {
            sl_rest_fail(call, SL_EDENIED, "%s", why);
            return;
        }
        json_t *q = queue_json(call->api, st->name, group);
        if (q == NULL) {
            sl_rest_fail(call, SL_ENOTFOUND, "stream %s has no queue group %s", st->name, group);
            return;
        }
        sl_rest_reply(call, 200, q);
    } else if (strcmp(verb, "/purge") == 0 && !get) {
        call->action = "console: purge a queue group";
        if (!sl_access_allowed(call, SL_ACL_ADMIN, st->name, why, sizeof(why))) {
            sl_rest_fail(call, SL_EDENIED, "%s", why);
            return;
        }
        sl_queue_purge(e, st->name, group, on_purged, call);
    } else {
        sl_rest_fail(call, SL_ENOTFOUND,
                     "no such endpoint: GET /api/v1/queues/STREAM/GROUP, POST "
                     "/api/v1/queues/STREAM/GROUP/purge");
    }
}

/* ---- redrive ------------------------------------------------------------------- */

struct redrive_op {
    struct sl_api_call *call;
    char dlq[SL_STREAM_NAME_MAX + 1];
    uint64_t moved; /* redriven so far, or discarded */
    /* the round under way: its leases and the batches produced from them */
    char **receipts;
    uint32_t n;
    uint8_t **batches;
    uint32_t n_batches;
    uint32_t pending; /* produces not answered yet */
    int err;
    char why[SL_REST_WHY_MAX];
    /* a selected redrive (n_sel > 0): the records named, sorted, which of
     * them were moved, and the leases held on the others */
    struct sl_rest_pos *sel;
    bool *found;
    uint32_t n_sel;
    uint32_t n_found;
    char **held;
    uint32_t n_held;
    uint64_t scanned;  /* leased so far by this request */
    bool releasing;    /* the held leases are being released: then the answer */
};

static void round_free(struct redrive_op *op)
{
    for (uint32_t i = 0; i < op->n; i++) {
        free(op->receipts[i]);
    }
    for (uint32_t i = 0; i < op->n_batches; i++) {
        free(op->batches[i]);
    }
    free(op->receipts);
    free(op->batches);
    op->receipts = NULL;
    op->batches = NULL;
    op->n = op->n_batches = 0;
}

static void op_free(struct redrive_op *op)
{
    round_free(op);
    for (uint32_t i = 0; i < op->n_held; i++) {
        free(op->held[i]);
    }
    free(op->held);
    free(op->sel);
    free(op->found);
    free(op);
}

/* The selected records not moved, as [{"shard", "seq"}]. */
static json_t *missing_json(const struct redrive_op *op)
{
    json_t *a = json_array();
    for (uint32_t i = 0; a != NULL && i < op->n_sel; i++) {
        if (!op->found[i]) {
            char seq[24];
            snprintf(seq, sizeof(seq), "%llu", (unsigned long long)op->sel[i].seq);
            json_array_append_new(a, json_pack("{s:I,s:s}", "shard", (json_int_t)op->sel[i].shard,
                                               "seq", seq));
        }
    }
    return a;
}

static void answer(struct redrive_op *op, bool more)
{
    if (op->err != SL_OK) {
        sl_rest_fail(op->call, op->err, "%s (%llu records redriven before)", op->why,
                     (unsigned long long)op->moved);
    } else if (op->n_sel > 0) {
        json_t *body = json_pack("{s:I,s:b,s:o}", "redriven", (json_int_t)op->moved, "more", 0,
                                 "missing", missing_json(op));
        if (body != NULL && op->n_found < op->n_sel) {
            char why[200];
            snprintf(why, sizeof(why),
                     op->scanned >= REDRIVE_REQUEST_MAX
                         ? "not among the first %u pending dead letters (redriven or discarded "
                           "already, or further back: Redrive all moves those)"
                         : "not pending (redriven or discarded already)",
                     REDRIVE_REQUEST_MAX);
            json_object_set_new(body, "missing_reason", json_string(why));
        }
        sl_rest_reply(op->call, 200, body);
    } else {
        sl_rest_reply(op->call, 200, json_pack("{s:I,s:b}", "redriven", (json_int_t)op->moved,
                                               "more", more));
    }
    op_free(op);
}

static void on_released(void *ctx, int err, const char *why, const int *results, uint32_t n)
{
    (void)results, (void)n;
    struct redrive_op *op = ctx;
    if (err != SL_OK) { /* they come back when their lease runs out */
        sl_warn("console", "releasing %u dead-letter leases of %s: %s", op->n_held, op->dlq, why);
    }
    answer(op, false);
}

/* Ends the request: the held leases released first (a selected redrive). */
static void redrive_end(struct redrive_op *op, bool more)
{
    if (op->n_held == 0 || op->releasing) {
        answer(op, more);
        return;
    }
    op->releasing = true;
    struct sl_settle_req req = {.stream = op->dlq, .group = REDRIVE_GROUP, .kind = SL_SETTLE_NACK,
                                .receipts = (const char *const *)op->held, .n = op->n_held};
    sl_queue_settle(op->call->api->engine, &req, on_released, op);
}

static void redrive_round(struct redrive_op *op);

static void on_settled(void *ctx, int err, const char *why, const int *results, uint32_t n)
{
    (void)results, (void)n;
    struct redrive_op *op = ctx;
    if (op->err == SL_OK && err != SL_OK) {
        op->err = err;
        snprintf(op->why, sizeof(op->why), "the dead letters were produced but not acked: %s",
                 why);
    }
    if (op->err != SL_OK) {
        redrive_end(op, false);
        return;
    }
    op->moved += op->n;
    round_free(op);
    if (op->n_sel > 0 ? op->n_found == op->n_sel || op->scanned >= REDRIVE_REQUEST_MAX
                      : op->moved >= REDRIVE_REQUEST_MAX) {
        redrive_end(op, op->n_sel == 0);
    } else {
        redrive_round(op);
    }
}

/* Acks the round's leases when every produce succeeded, else nacks them
 * (visible again at once) and ends with the error. */
static void settle_round(struct redrive_op *op)
{
    struct sl_settle_req req = {.stream = op->dlq, .group = REDRIVE_GROUP,
                                .kind = op->err == SL_OK ? SL_SETTLE_ACK : SL_SETTLE_NACK,
                                .receipts = (const char *const *)op->receipts, .n = op->n};
    sl_queue_settle(op->call->api->engine, &req, on_settled, op);
}

static void on_produced(void *ctx, const struct sl_produce_result *r)
{
    struct redrive_op *op = ctx;
    SL_ASSERT(op->pending > 0);
    if (r->err != SL_OK && op->err == SL_OK) {
        op->err = r->err;
        snprintf(op->why, sizeof(op->why), "%s", r->why);
    }
    if (--op->pending == 0) {
        settle_round(op);
    }
}

static bool attr_is(const struct sl_attr *a, const char *name)
{
    size_t n = strlen(name);
    return a->key_len == n && memcmp(a->key, name, n) == 0;
}

/* The record as it was before it died: the sluice.* attributes the dead
 * lettering added are dropped. */
static struct sl_record record_of(const struct sl_qrecord *q, struct sl_attr *kept)
{
    uint32_t nk = 0;
    for (uint32_t a = 0; a < q->attr_count && nk < SL_RECORD_ATTRS_MAX; a++) {
        if (!(q->attrs[a].key_len >= 7 && memcmp(q->attrs[a].key, "sluice.", 7) == 0)) {
            kept[nk++] = q->attrs[a];
        }
    }
    return (struct sl_record){.key = q->key, .key_len = q->key_len, .value = q->value,
                              .value_len = q->value_len, .attrs = kept, .attr_count = nk,
                              .timestamp_ms = q->produced_ms};
}

/* Where a dead letter goes: its source stream (looked up, and the
 * principal's produce right checked) and the shard its key routes to. */
static int target_of(struct redrive_op *op, const struct sl_qrecord *q, struct sl_stream **st,
                     uint32_t *shard)
{
    char name[SL_STREAM_NAME_MAX + 1] = "";
    for (uint32_t a = 0; a < q->attr_count; a++) {
        if (attr_is(&q->attrs[a], SOURCE_STREAM_ATTR) && q->attrs[a].value_len < sizeof(name)) {
            memcpy(name, q->attrs[a].value, q->attrs[a].value_len);
            name[q->attrs[a].value_len] = '\0';
        }
    }
    if (name[0] == '\0') {
        snprintf(op->why, sizeof(op->why),
                 "record %u#%llu of %s has no " SOURCE_STREAM_ATTR " attribute: not a dead letter",
                 q->shard, (unsigned long long)q->seq, op->dlq);
        return SL_EINVAL;
    }
    int rc = SL_OK;
    *st = sl_engine_stream(op->call->api->engine, name, op->why, sizeof(op->why), &rc);
    if (*st == NULL) {
        return rc;
    }
    if (!sl_access_allowed(op->call, SL_ACL_PRODUCE, name, op->why, sizeof(op->why))) {
        return SL_EDENIED;
    }
    static uint32_t next_shard; /* unkeyed records: round robin, as a producer */
    *shard = q->key_len > 0
                 ? sl_catalog_route(*st, sl_partition_hash(q->key, q->key_len))
                 : sl_catalog_open_shard(*st, next_shard++ % (*st)->lineage.open);
    return SL_OK;
}

/* A batch of the records [from, n) that go to (st, shard), in lease order,
 * up to REDRIVE_BATCH_BYTES (at least one); *done marks them. */
static int build_batch(struct redrive_op *op, const struct sl_qrecord *recs,
                       struct sl_stream **sts, const uint32_t *shards, bool *done, uint32_t from,
                       size_t *len)
{
    size_t cap = SL_BATCH_HEADER_BYTES;
    struct sl_attr kept[SL_RECORD_ATTRS_MAX];
    for (uint32_t i = from; i < op->n; i++) {
        if (!done[i] && sts[i] == sts[from] && shards[i] == shards[from]) {
            struct sl_record r = record_of(&recs[i], kept);
            size_t b = sl_batch_record_bytes(&r, 0) + 16;
            if (i != from && cap + b > REDRIVE_BATCH_BYTES) {
                break;
            }
            cap += b;
        }
    }
    uint8_t *buf = malloc(cap);
    if (buf == NULL) {
        return SL_ENOMEM;
    }
    op->batches[op->n_batches++] = buf;
    struct sl_batch_builder b;
    sl_batch_builder_init(&b, buf, cap);
    for (uint32_t i = from; i < op->n; i++) {
        if (!done[i] && sts[i] == sts[from] && shards[i] == shards[from]) {
            struct sl_record r = record_of(&recs[i], kept);
            if (i != from && b.len + sl_batch_record_bytes(&r, 0) + 16 > cap) {
                break;
            }
            int rc = sl_batch_builder_add(&b, &r);
            if (rc != SL_OK) {
                return rc;
            }
            done[i] = true;
        }
    }
    return sl_batch_builder_finish(&b, SL_BATCH_CODEC_NONE, 0, NULL, NULL, 0, 0, 0, len);
}

/* Produces the leased records: one batch per (target stream, shard) run. */
static int produce_round(struct redrive_op *op, const struct sl_receive_result *r)
{
    struct sl_stream **sts = calloc(r->n, sizeof(*sts));
    uint32_t *shards = calloc(r->n, sizeof(*shards));
    bool *done = calloc(r->n, sizeof(*done));
    op->batches = calloc(r->n, sizeof(*op->batches));
    int rc = sts != NULL && shards != NULL && done != NULL && op->batches != NULL ? SL_OK
                                                                                  : SL_ENOMEM;
    for (uint32_t i = 0; rc == SL_OK && i < r->n; i++) {
        rc = target_of(op, &r->records[i], &sts[i], &shards[i]);
    }
    /* build every batch first: a failure leaves nothing produced */
    size_t *lens = rc == SL_OK ? calloc(r->n, sizeof(*lens)) : NULL;
    rc = rc == SL_OK && lens == NULL ? SL_ENOMEM : rc;
    uint32_t *batch_shard = rc == SL_OK ? calloc(r->n, sizeof(*batch_shard)) : NULL;
    struct sl_stream **batch_st = rc == SL_OK ? calloc(r->n, sizeof(*batch_st)) : NULL;
    rc = rc == SL_OK && (batch_shard == NULL || batch_st == NULL) ? SL_ENOMEM : rc;
    for (uint32_t i = 0; rc == SL_OK && i < r->n; i++) {
        if (!done[i]) {
            batch_shard[op->n_batches] = shards[i];
            batch_st[op->n_batches] = sts[i];
            rc = build_batch(op, r->records, sts, shards, done, i, &lens[op->n_batches]);
            if (rc != SL_OK) {
                snprintf(op->why, sizeof(op->why), "a dead letter does not fit a batch: %s",
                         sl_strerror(rc));
            }
        }
    }
    if (rc == SL_OK) {
        op->pending = op->n_batches; /* before the first submit: callbacks may run at once */
        uint32_t nb = op->n_batches;
        for (uint32_t k = 0; k < nb; k++) {
            struct sl_produce_req req = {.stream = batch_st[k]->name, .shard = batch_shard[k],
                                         .batch = op->batches[k], .len = lens[k],
                                         .ack = SL_ACK_DURABLE, .forward = true};
            sl_produce_submit(op->call->api->engine, &req, on_produced, op);
        }
    }
    free(sts);
    free(shards);
    free(done);
    free(lens);
    free(batch_shard);
    free(batch_st);
    return rc;
}

/* A selected redrive's round: the named records of `r` are produced and
 * acked, the others' leases held (the scan must not lease them again). */
static void lease_selected(struct redrive_op *op, const struct sl_receive_result *r)
{
    SL_ASSERT(op->n_held + r->n <= REDRIVE_REQUEST_MAX);
    struct sl_qrecord *picked = calloc(r->n, sizeof(*picked));
    op->receipts = calloc(r->n, sizeof(*op->receipts));
    int rc = picked != NULL && op->receipts != NULL ? SL_OK : SL_ENOMEM;
    uint32_t k = 0;
    for (uint32_t i = 0; rc == SL_OK && i < r->n; i++) {
        const struct sl_qrecord *q = &r->records[i];
        int at = sl_rest_selection_find(op->sel, op->n_sel, q->shard, q->seq);
        char *receipt = strdup(q->receipt);
        if (receipt == NULL) {
            rc = SL_ENOMEM;
        } else if (at >= 0 && !op->found[at]) {
            op->found[at] = true;
            op->n_found++;
            picked[k] = *q;
            op->receipts[k++] = receipt;
            op->n = k;
        } else {
            op->held[op->n_held++] = receipt;
        }
    }
    if (rc == SL_OK && k == 0) {
        free(picked);
        round_free(op);
        if (op->scanned >= REDRIVE_REQUEST_MAX) {
            redrive_end(op, false);
        } else {
            redrive_round(op);
        }
        return;
    }
    struct sl_receive_result sub = {.records = picked, .n = k};
    rc = rc == SL_OK ? produce_round(op, &sub) : rc;
    free(picked); /* produce_round copied what it needs into its batches */
    if (rc != SL_OK) {
        op->err = rc;
        if (op->why[0] == '\0') {
            snprintf(op->why, sizeof(op->why), "%s", sl_strerror(rc));
        }
        settle_round(op);
    }
}

static void on_leased(void *ctx, const struct sl_receive_result *r)
{
    struct redrive_op *op = ctx;
    if (r->err != SL_OK) {
        op->err = r->err;
        snprintf(op->why, sizeof(op->why), "%s", r->why);
        redrive_end(op, false);
        return;
    }
    if (r->n == 0) {
        redrive_end(op, false); /* nothing left */
        return;
    }
    op->scanned += r->n;
    if (op->n_sel > 0) {
        lease_selected(op, r);
        return;
    }
    op->receipts = calloc(r->n, sizeof(*op->receipts));
    int rc = op->receipts != NULL ? SL_OK : SL_ENOMEM;
    for (uint32_t i = 0; rc == SL_OK && i < r->n; i++) {
        op->receipts[i] = strdup(r->records[i].receipt);
        rc = op->receipts[i] != NULL ? SL_OK : SL_ENOMEM;
        op->n = i + 1;
    }
    rc = rc == SL_OK ? produce_round(op, r) : rc;
    if (rc != SL_OK) {
        op->err = rc;
        if (op->why[0] == '\0') {
            snprintf(op->why, sizeof(op->why), "%s", sl_strerror(rc));
        }
        settle_round(op); /* nacks what was leased */
    }
}

static void redrive_round(struct redrive_op *op)
{
    uint64_t left = REDRIVE_REQUEST_MAX - (op->n_sel > 0 ? op->scanned : op->moved);
    struct sl_receive_req req = {.stream = op->dlq, .group = REDRIVE_GROUP,
                                 .max_records = (uint32_t)(left < REDRIVE_ROUND_MAX
                                                               ? left
                                                               : REDRIVE_ROUND_MAX),
                                 .visibility_timeout_ms = REDRIVE_LEASE_MS};
    sl_queue_receive(op->call->api->engine, &req, on_leased, op);
}

static void on_group(void *ctx, int err, const char *why)
{
    struct redrive_op *op = ctx;
    if (err != SL_OK && err != SL_EEXIST) {
        op->err = err;
        snprintf(op->why, sizeof(op->why), "%s", why);
        redrive_end(op, false);
        return;
    }
    redrive_round(op);
}

/* The op of a dead-letter action on `dlq` once the principal's right is
 * checked (NULL: answered). Discarding uses only call and dlq. */
static struct redrive_op *dlq_op_new(struct sl_api_call *call, const struct sl_stream *dlq,
                                     uint32_t ops, const char *action)
{
    char why[SL_REST_WHY_MAX];
    call->action = action;
    if (!sl_access_allowed(call, ops, dlq->name, why, sizeof(why))) {
        sl_rest_fail(call, SL_EDENIED, "%s", why);
        return NULL;
    }
    struct redrive_op *op = calloc(1, sizeof(*op));
    if (op == NULL) {
        sl_rest_fail(call, SL_ENOMEM, "out of memory");
        return NULL;
    }
    op->call = call;
    snprintf(op->dlq, sizeof(op->dlq), "%s", dlq->name);
    return op;
}

/* Calls `then` once REDRIVE_GROUP exists on op's dead-letter stream (made
 * at the first redrive or discard; SL_EEXIST from a race is success). */
static void with_redrive_group(struct redrive_op *op, sl_done_cb then)
{
    struct sl_engine *e = op->call->api->engine;
    struct sl_qgroup_stats qs;
    char why[SL_REST_WHY_MAX];
    if (sl_queue_stats(e, op->dlq, REDRIVE_GROUP, &qs, why, sizeof(why)) == SL_OK) {
        then(op, SL_OK, "");
        return;
    }
    struct sl_qgroup_config cfg = {.start = {.kind = SL_POS_TRIM_HORIZON}};
    sl_queue_create_group(e, op->dlq, REDRIVE_GROUP, &cfg, then, op);
}

/* The request's selection, if its body names records: SL_OK, or answered. */
static int selection_of(struct redrive_op *op)
{
    const struct sl_http_request *req = op->call->req;
    if (req->body_len == 0) {
        return SL_OK;
    }
    json_error_t jerr;
    json_t *body = json_loadb((const char *)req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(body)) {
        json_decref(body);
        sl_rest_fail(op->call, SL_EINVAL, "the body is not a JSON object: %s", jerr.text);
        return SL_EINVAL;
    }
    char why[SL_REST_WHY_MAX];
    op->sel = calloc(SL_REST_SELECT_MAX, sizeof(*op->sel));
    op->found = calloc(SL_REST_SELECT_MAX, sizeof(*op->found));
    op->held = calloc(REDRIVE_REQUEST_MAX, sizeof(*op->held));
    int rc = op->sel != NULL && op->found != NULL && op->held != NULL
                 ? sl_rest_selection_of(body, op->sel, &op->n_sel, why, sizeof(why))
                 : SL_ENOMEM;
    json_decref(body);
    if (rc != SL_OK) {
        sl_rest_fail(op->call, rc, "%s", rc == SL_ENOMEM ? "out of memory" : why);
    }
    return rc;
}

void sl_rest_redrive(struct sl_api_call *call, struct sl_stream *dlq)
{
    struct redrive_op *op = dlq_op_new(call, dlq, SL_ACL_QUEUE, "console: redrive dead letters");
    if (op != NULL && selection_of(op) != SL_OK) {
        op_free(op);
        return;
    }
    if (op != NULL) {
        with_redrive_group(op, on_group);
    }
}

/* ---- discard: the dead letters dropped without a redrive -------------------- */

static void on_discarded(void *ctx, int err, const char *why)
{
    struct redrive_op *op = ctx;
    if (err != SL_OK) {
        sl_rest_fail(op->call, err, "%s", why);
    } else {
        sl_rest_reply(op->call, 200, json_pack("{s:b,s:I}", "discarded", 1, "records",
                                               (json_int_t)op->moved));
    }
    free(op);
}

static void on_discard_group(void *ctx, int err, const char *why)
{
    struct redrive_op *op = ctx;
    if (err != SL_OK && err != SL_EEXIST) {
        on_discarded(op, err, why);
        return;
    }
    /* counted now: the purge drops what is pending at this moment, on this loop */
    op->moved = dead_letters_pending(op->call->api->engine, op->dlq);
    sl_queue_purge(op->call->api->engine, op->dlq, REDRIVE_GROUP, on_discarded, op);
}

void sl_rest_dlq_discard(struct sl_api_call *call, struct sl_stream *dlq)
{
    struct redrive_op *op = dlq_op_new(call, dlq, SL_ACL_ADMIN, "console: discard dead letters");
    if (op != NULL) {
        with_redrive_group(op, on_discard_group);
    }
}
