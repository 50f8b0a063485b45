/* eb_events.c - PutEvents and TestEventPattern.
 *
 * PutEvents: up to EB_ENTRIES_MAX entries, EB_EVENT_BYTES_MAX together as
 * AWS counts them (eb_entry_size), else ValidationException for the whole
 * request. Each entry is checked and rendered as its envelope
 * (eb_envelope.c); an entry that fails gets ErrorCode/ErrorMessage, the
 * others an EventId. The valid entries of one bus are appended as ONE batch
 * (durable before the answer), in their order; entries naming different
 * buses make one batch per bus. Record: value = the envelope, no key, no
 * attributes, timestamp = the put time.
 *
 * TestEventPattern: the pattern compiled by the same parser the rules' queue
 * groups use (body scope) and matched against the event by the same matcher.
 *
 * Threading: the main loop.
 */
#include "broker/api/access.h"
#include "broker/api/eb_int.h"
#include "broker/engine/catalog.h"
#include "broker/engine/engine.h"
#include "broker/engine/filter.h"
#include "broker/engine/produce.h"
#include "common/assert.h"
#include "common/clock.h"
#include "common/error.h"
#include "storage/batch.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

struct put_op {
    struct eb_call *c;
    uint32_t n;
    json_t *results;  /* owned: one object per entry, in order */
    uint32_t failed;  /* entries with an ErrorCode */
    uint32_t pending; /* produces out */
    char *env[EB_ENTRIES_MAX];
    size_t env_len[EB_ENTRIES_MAX];
    char bus[EB_ENTRIES_MAX][EB_BUS_NAME_MAX + 1]; /* "" for a failed entry */
    uint8_t *batch[EB_ENTRIES_MAX];                /* one per bus */
    uint32_t entries_of[EB_ENTRIES_MAX][EB_ENTRIES_MAX];
    uint32_t entries_n[EB_ENTRIES_MAX];
    uint32_t bus_of_batch[EB_ENTRIES_MAX]; /* an entry naming the batch's bus */
};

struct put_part {
    struct put_op *op;
    uint32_t k; /* batch index */
};

static void uuid(char out[37])
{
    uint8_t b[16];
    if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b)) {
        static uint64_t ctr; /* no randomness: unique within the process still */
        uint64_t t = sl_clock_wall_ms() ^ (++ctr << 40);
        memcpy(b, &t, 8);
        memcpy(b + 8, &ctr, 8);
    }
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
             b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
             b[15]);
}

static void put_free(struct put_op *op)
{
    for (uint32_t i = 0; i < EB_ENTRIES_MAX; i++) {
        free(op->env[i]);
        free(op->batch[i]);
    }
    json_decref(op->results);
    free(op);
}

static void set_error(struct put_op *op, uint32_t i, const char *code, const char *msg)
{
    json_array_set_new(op->results, i,
                       json_pack("{s:s,s:s}", "ErrorCode", code, "ErrorMessage", msg));
    op->failed++;
}

static void put_done(struct put_op *op)
{
    json_t *res = json_pack("{s:i,s:O}", "FailedEntryCount", (json_int_t)op->failed, "Entries",
                            op->results);
    struct eb_call *c = op->c;
    put_free(op);
    eb_reply(c, res);
}

static void on_produced(void *ctx, const struct sl_produce_result *r)
{
    struct put_part *part = ctx;
    struct put_op *op = part->op;
    if (r->err != SL_OK) {
        for (uint32_t j = 0; j < op->entries_n[part->k]; j++) {
            set_error(op, op->entries_of[part->k][j], "InternalFailure", r->why);
        }
    }
    free(part);
    SL_ASSERT(op->pending > 0);
    if (--op->pending == 0) {
        put_done(op);
    }
}

/* One entry: its bus, its access, its envelope; false when it failed. */
static bool entry_prepare(struct put_op *op, uint32_t i, const json_t *entry, uint64_t now)
{
    struct eb_call *c = op->c;
    char why[EB_WHY_MAX], id[37];
    const char *code = NULL;
    json_t *bn = json_object_get(entry, "EventBusName");
    if (bn != NULL && !json_is_string(bn)) {
        set_error(op, i, "InvalidArgument", "EventBusName must be a string");
        return false;
    }
    if (!eb_bus_name(json_string_value(bn), op->bus[i], sizeof(op->bus[i]), why, sizeof(why))) {
        set_error(op, i, "InvalidArgument", why);
        return false;
    }
    char stream[SL_STREAM_NAME_MAX + 1];
    eb_bus_stream(op->bus[i], stream, sizeof(stream));
    if (!sl_access_allowed(c->call, SL_ACL_PRODUCE, stream, why, sizeof(why))) {
        set_error(op, i, "AccessDeniedException", why);
        return false;
    }
    if (eb_bus_get(c->eb, op->bus[i], true, why, sizeof(why)) == NULL) {
        set_error(op, i, "ResourceNotFoundException", why);
        return false;
    }
    uuid(id);
    op->env[i] = eb_envelope(entry, id, now, &op->env_len[i], &code, why, sizeof(why));
    if (op->env[i] == NULL) {
        set_error(op, i, code, why);
        return false;
    }
    json_array_set_new(op->results, i, json_pack("{s:s}", "EventId", id));
    return true;
}

/* The batch of the entries of batch k (one bus), into op->batch[k]. */
static int build(struct put_op *op, uint32_t k, uint64_t now, size_t *len)
{
    size_t cap = SL_BATCH_HEADER_BYTES;
    for (uint32_t j = 0; j < op->entries_n[k]; j++) {
        uint32_t i = op->entries_of[k][j];
        struct sl_record rec = {.value = op->env[i], .value_len = (uint32_t)op->env_len[i]};
        cap += sl_batch_record_bytes(&rec, 0);
    }
    op->batch[k] = malloc(cap);
    if (op->batch[k] == NULL) {
        return SL_ENOMEM;
    }
    struct sl_batch_builder b;
    sl_batch_builder_init(&b, op->batch[k], cap);
    for (uint32_t j = 0; j < op->entries_n[k]; j++) {
        uint32_t i = op->entries_of[k][j];
        struct sl_record rec = {.value = op->env[i],
                                .value_len = (uint32_t)op->env_len[i],
                                .timestamp_ms = now};
        int rc = sl_batch_builder_add(&b, &rec);
        if (rc != SL_OK) {
            return rc;
        }
    }
    return sl_batch_builder_finish(&b, SL_BATCH_CODEC_NONE, 0, NULL, NULL, 0, 0, 0, len);
}

/* Groups the valid entries by bus, in order; returns the number of batches. */
static uint32_t group_by_bus(struct put_op *op)
{
    uint32_t nb = 0;
    for (uint32_t i = 0; i < op->n; i++) {
        if (op->env[i] == NULL) {
            continue;
        }
        uint32_t k = 0;
        while (k < nb && strcmp(op->bus[op->bus_of_batch[k]], op->bus[i]) != 0) {
            k++;
        }
        if (k == nb) {
            op->bus_of_batch[nb++] = i;
        }
        op->entries_of[k][op->entries_n[k]++] = i;
    }
    return nb;
}

static bool check_request(struct eb_call *c, json_t *entries)
{
    if (!json_is_array(entries) || json_array_size(entries) < 1 ||
        json_array_size(entries) > EB_ENTRIES_MAX) {
        eb_fail(c, EB_E_VALIDATION, "Entries must be a list of 1 to %u entries", EB_ENTRIES_MAX);
        return false;
    }
    size_t total = 0;
    for (size_t i = 0; i < json_array_size(entries); i++) {
        total += eb_entry_size(json_array_get(entries, i));
    }
    if (total > EB_EVENT_BYTES_MAX) {
        eb_fail(c, EB_E_VALIDATION,
                "Total size of the entries in the request is over the limit: %zu bytes (Time "
                "14, Source, DetailType, Detail and Resources as AWS counts them), at most %u "
                "(256 KiB)",
                total, EB_EVENT_BYTES_MAX);
        return false;
    }
    return true;
}

void eb_put_events(struct eb_call *c)
{
    json_t *entries = json_object_get(c->in, "Entries");
    if (!check_request(c, entries)) {
        return;
    }
    struct put_op *op = calloc(1, sizeof(*op));
    json_t *results = json_array();
    if (op == NULL || results == NULL) {
        free(op);
        json_decref(results);
        eb_fail(c, EB_E_INTERNAL, "out of memory");
        return;
    }
    op->c = c;
    op->results = results;
    op->n = (uint32_t)json_array_size(entries);
    uint64_t now = sl_clock_wall_ms();
    for (uint32_t i = 0; i < op->n; i++) {
        json_array_append_new(results, json_null());
    }
    sl_access_visible(c->call, ""); /* decided per entry; none may be left undecided */
    for (uint32_t i = 0; i < op->n; i++) {
        entry_prepare(op, i, json_array_get(entries, i), now);
    }
    uint32_t nb = group_by_bus(op);
    op->pending = nb + 1; /* +1: none answers before every batch is out */
    for (uint32_t k = 0; k < nb; k++) {
        size_t len = 0;
        int rc = build(op, k, now, &len);
        struct put_part *part = rc == SL_OK ? malloc(sizeof(*part)) : NULL;
        if (part == NULL) {
            for (uint32_t j = 0; j < op->entries_n[k]; j++) {
                set_error(op, op->entries_of[k][j], "InternalFailure",
                          rc == SL_OK ? "out of memory" : sl_strerror(rc));
            }
            op->pending--;
            continue;
        }
        char stream[SL_STREAM_NAME_MAX + 1];
        eb_bus_stream(op->bus[op->bus_of_batch[k]], stream, sizeof(stream));
        *part = (struct put_part){.op = op, .k = k};
        struct sl_produce_req pr = {.stream = stream,
                                    .shard = 0,
                                    .batch = op->batch[k],
                                    .len = len,
                                    .ack = SL_ACK_DURABLE,
                                    .forward = true};
        sl_produce_submit(c->eb->e, &pr, on_produced, part);
    }
    if (--op->pending == 0) {
        put_done(op);
    }
}

void eb_test_event_pattern(struct eb_call *c)
{
    bool bad = false;
    const char *pattern = eb_str(c, "EventPattern", &bad);
    const char *event = bad ? NULL : eb_str(c, "Event", &bad);
    if (bad) {
        return;
    }
    if (pattern == NULL || event == NULL) {
        eb_fail(c, EB_E_VALIDATION, "EventPattern and Event are required");
        return;
    }
    json_t *ev = json_loads(event, JSON_DECODE_INT_AS_REAL, NULL);
    bool ok = json_is_object(ev);
    static const char *const required[] = {"id", "account", "source", "time", "region",
                                           "detail-type"};
    const char *missing = NULL;
    for (size_t i = 0; ok && i < sizeof(required) / sizeof(required[0]); i++) {
        if (json_object_get(ev, required[i]) == NULL) {
            missing = required[i];
        }
    }
    json_decref(ev);
    if (!ok || missing != NULL) {
        eb_fail(c, EB_E_VALIDATION,
                "Parameter Event is not valid: %s%s", ok ? "it lacks the field " : "",
                ok ? missing : "it must be one JSON object (the event envelope)");
        return;
    }
    struct sl_filter *f = NULL;
    char why[EB_WHY_MAX];
    int rc = sl_filter_parse(pattern, strlen(pattern), SL_FILTER_SCOPE_BODY, &f, why, sizeof(why));
    if (rc != SL_OK) {
        eb_fail(c, EB_E_INVALID_PATTERN, "Event pattern is not valid. Reason: %s", why);
        return;
    }
    struct sl_record_view rv = {.value = (const uint8_t *)event,
                                .value_len = (uint32_t)strlen(event)};
    struct sl_filter_subject s;
    sl_filter_subject_init(&s);
    sl_filter_subject_set(&s, &rv);
    bool match = sl_filter_match(f, &s);
    sl_filter_subject_fini(&s);
    sl_filter_free(f);
    eb_reply(c, json_pack("{s:b}", "Result", match));
}
