/* eb_sync.c - the reconciler: the state (eb_int.h) says which queue groups
 * and push targets should exist; this makes the engine agree.
 *
 * Why a reconciler rather than engine calls inside each API call: a rule
 * change touches several groups (one per target), each created or deleted
 * asynchronously, and a delete is refused while a receive is parked on the
 * group (a push target's long-poll may still be out after its removal). The
 * API call changes the state durably and answers; the tick does the engine
 * work one call at a time, and redoes whatever a crash or a busy group left
 * undone. Nothing is lost meanwhile: a target's group starts at the time
 * the target was put ("since", SL_POS_AT_TIME), so it sees every event put
 * after PutTargets (or EnableRule) answered even if it is made later.
 *
 * Per target: "ready" false -> the group is made if missing, then the push
 * target set (sl_push_set replaces an existing one), then ready = true.
 * Dead list: its groups' push targets are removed (also done at once by
 * eb_sync_retire), then the groups deleted; a delete that fails (the state
 * store's I/O) is retried at a later tick.
 *
 * Threading: the main loop; at most one engine call out (eb->busy).
 */
#include "broker/api/eb_int.h"

#include "broker/engine/catalog.h"
#include "broker/engine/engine.h"
#include "broker/engine/queue.h"
#include "broker/push/push.h"
#include "broker/push/forward.h"
#include "common/assert.h"
#include "common/error.h"
#include "common/log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EB_VISIBILITY_MS 30000u

struct sync_op {
    struct sl_eb *eb;
    char stream[SL_STREAM_NAME_MAX + 1];
    char group[SL_QUEUE_GROUP_NAME_MAX + 1];
};

void eb_sync_group_name(struct sl_eb *eb, const char *rule, char *out, size_t cap)
{
    json_t *serial = json_object_get(eb->doc, "serial");
    json_int_t s = json_integer_value(serial) + 1;
    json_integer_set(serial, s);
    snprintf(out, cap, "%s%s.%" PRIx64, EB_GROUP_PREFIX, rule, (uint64_t)s);
}

void eb_sync_retire(struct sl_eb *eb, const char *bus, json_t *t)
{
    const char *group = json_string_value(json_object_get(t, "group"));
    if (group == NULL) {
        return;
    }
    char stream[SL_STREAM_NAME_MAX + 1], why[EB_WHY_MAX];
    eb_bus_stream(bus, stream, sizeof(stream));
    if (eb->push != NULL) {
        (void)sl_push_remove(eb->push, stream, group, why, sizeof(why)); /* ENOTFOUND: fine */
    }
    json_array_append_new(json_object_get(eb->doc, "dead"), json_pack("[s,s]", stream, group));
    json_object_del(t, "group");
    json_object_set_new(t, "ready", json_false());
}

static void save_logged(struct sl_eb *eb)
{
    char why[EB_WHY_MAX];
    if (eb_store_save(eb->dir, eb->doc, why, sizeof(why)) != SL_OK) {
        sl_error("eventbridge", "%s", why);
    }
}

static void on_deleted(void *ctx, int err, const char *why)
{
    struct sync_op *op = ctx;
    struct sl_eb *eb = op->eb;
    SL_ASSERT(eb->busy);
    eb->busy = false;
    if (eb->closing) { /* shutdown: the file says what is left to do */
        free(op);
        eb_free(eb);
        return;
    }
    if (err == SL_OK || err == SL_ENOTFOUND) {
        json_t *dead = json_object_get(eb->doc, "dead");
        for (size_t i = 0; i < json_array_size(dead); i++) {
            json_t *d = json_array_get(dead, i);
            if (strcmp(json_string_value(json_array_get(d, 0)), op->stream) == 0 &&
                strcmp(json_string_value(json_array_get(d, 1)), op->group) == 0) {
                json_array_remove(dead, i);
                break;
            }
        }
        save_logged(eb);
    } else {
        sl_warn("eventbridge", "group %s/%s not deleted yet: %s", op->stream, op->group, why);
        json_t *dead = json_object_get(eb->doc, "dead"); /* to the end: the others go first */
        json_t *d = json_array_get(dead, 0);
        if (d != NULL) {
            json_incref(d);
            json_array_remove(dead, 0);
            json_array_append_new(dead, d);
        }
    }
    free(op);
}

/* The first dead group: its push target off, the group deleted. */
static bool sync_dead(struct sl_eb *eb)
{
    json_t *d = json_array_get(json_object_get(eb->doc, "dead"), 0);
    if (d == NULL) {
        return false;
    }
    struct sync_op *op = calloc(1, sizeof(*op));
    if (op == NULL) {
        return true;
    }
    op->eb = eb;
    snprintf(op->stream, sizeof(op->stream), "%s", json_string_value(json_array_get(d, 0)));
    snprintf(op->group, sizeof(op->group), "%s", json_string_value(json_array_get(d, 1)));
    char why[EB_WHY_MAX];
    if (eb->push != NULL) {
        (void)sl_push_remove(eb->push, op->stream, op->group, why, sizeof(why));
    }
    eb->busy = true;
    sl_queue_delete_group(eb->e, op->stream, op->group, on_deleted, op);
    return true;
}

/* The push target of target t (the group exists). */
static int set_push(struct sl_eb *eb, const char *stream, json_t *t, char *why, size_t why_len)
{
    if (eb->push == NULL) {
        snprintf(why, why_len, "push targets are off (push = false)");
        return SL_EINVAL;
    }
    struct sl_push_target pt;
    memset(&pt, 0, sizeof(pt));
    snprintf(pt.stream, sizeof(pt.stream), "%s", stream);
    snprintf(pt.group, sizeof(pt.group), "%s", json_string_value(json_object_get(t, "group")));
    snprintf(pt.url, sizeof(pt.url), "%s", json_string_value(json_object_get(t, "url")));
    pt.format = SL_PUSH_FORMAT_EVENTBRIDGE;
    const char *tf = json_string_value(json_object_get(t, "transform"));
    snprintf(pt.transform, sizeof(pt.transform), "%s", tf != NULL ? tf : "");
    const char *replay = json_string_value(json_object_get(t, "replay"));
    snprintf(pt.replay_name, sizeof(pt.replay_name), "%s", replay != NULL ? replay : "");
    pt.batch_size = 1;
    int rc = sl_push_set(eb->push, &pt, why, why_len);
    if (rc == SL_OK) {
        json_object_set_new(t, "ready", json_true());
        save_logged(eb);
    }
    return rc;
}

struct create_op {
    struct sl_eb *eb;
    char stream[SL_STREAM_NAME_MAX + 1];
    char group[SL_QUEUE_GROUP_NAME_MAX + 1];
};

static void on_created(void *ctx, int err, const char *why)
{
    struct create_op *op = ctx;
    struct sl_eb *eb = op->eb;
    SL_ASSERT(eb->busy);
    eb->busy = false;
    if (eb->closing) {
        free(op);
        eb_free(eb);
        return;
    }
    eb->dirty = true; /* the next tick sets the push target, or retries */
    if (err != SL_OK) {
        sl_warn("eventbridge", "group %s/%s not made: %s (retried)", op->stream, op->group, why);
    }
    free(op);
}

/* Makes the group of target t (on stream) with `pattern`; t's "since" is
 * where it starts, its "end" (replays) where it ends. */
static void create_group(struct sl_eb *eb, const char *stream, const char *pattern, json_t *t)
{
    struct create_op *op = calloc(1, sizeof(*op));
    if (op == NULL) {
        return;
    }
    op->eb = eb;
    snprintf(op->stream, sizeof(op->stream), "%s", stream);
    snprintf(op->group, sizeof(op->group), "%s", json_string_value(json_object_get(t, "group")));
    const char *dlq = json_string_value(json_object_get(t, "dlq"));
    struct sl_qgroup_config cfg = {
        .visibility_timeout_ms = EB_VISIBILITY_MS,
        .max_deliveries = (uint32_t)json_integer_value(json_object_get(t, "max_deliveries")),
        .dead_letter_stream = dlq,
        .filter = pattern,
        .filter_body = true,
        .start = {.kind = SL_POS_AT_TIME,
                  .time_ms = (uint64_t)json_integer_value(json_object_get(t, "since"))},
        .end_time_ms = (uint64_t)json_integer_value(json_object_get(t, "end")),
    };
    eb->busy = true;
    sl_queue_create_group(eb->e, op->stream, op->group, &cfg, on_created, op);
}

/* One step towards target t (group made, then push target set). True: an
 * engine call went out. */
static bool sync_one(struct sl_eb *eb, const char *stream, const char *pattern, json_t *t,
                     const char *label)
{
    const char *group = json_string_value(json_object_get(t, "group"));
    if (json_is_true(json_object_get(t, "ready")) || group == NULL ||
        json_object_get(t, "failed") != NULL) {
        return false;
    }
    struct sl_qgroup_stats st;
    char why[EB_WHY_MAX];
    if (sl_queue_stats(eb->e, stream, group, &st, why, sizeof(why)) != SL_OK) {
        create_group(eb, stream, pattern, t);
        return true;
    }
    if (set_push(eb, stream, t, why, sizeof(why)) != SL_OK) {
        /* e.g. the destination went: not retried until the target changes */
        sl_warn("eventbridge", "%s: %s", label, why);
        json_object_set_new(t, "failed", json_string(why));
    }
    return false;
}

/* The first target not ready: one step towards it. False: none left. */
static bool sync_targets(struct sl_eb *eb)
{
    const char *k, *id;
    json_t *r, *t;
    char stream[SL_STREAM_NAME_MAX + 1];
    json_object_foreach(json_object_get(eb->doc, "rules"), k, r)
    {
        if (!json_is_true(json_object_get(r, "enabled"))) {
            continue;
        }
        eb_bus_stream(json_string_value(json_object_get(r, "bus")), stream, sizeof(stream));
        const char *pattern = json_string_value(json_object_get(r, "pattern"));
        json_object_foreach(json_object_get(r, "targets"), id, t)
        {
            if (sync_one(eb, stream, pattern, t, k)) {
                return true;
            }
        }
    }
    json_object_foreach(json_object_get(eb->doc, "replays"), k, r)
    {
        const char *state = json_string_value(json_object_get(r, "state"));
        if (strcmp(state, "STARTING") != 0 && strcmp(state, "RUNNING") != 0) {
            continue;
        }
        eb_bus_stream(json_string_value(json_object_get(r, "bus")), stream, sizeof(stream));
        size_t i;
        json_array_foreach(json_object_get(r, "targets"), i, t)
        {
            if (sync_one(eb, stream, json_string_value(json_object_get(t, "pattern")), t, k)) {
                return true;
            }
        }
    }
    return false;
}

void eb_sync(struct sl_eb *eb)
{
    if (!eb->busy && eb->dirty) { /* new targets first: a dead group may wait long */
        eb->dirty = sync_targets(eb);
    }
    if (!eb->busy) {
        sync_dead(eb);
    }
}
