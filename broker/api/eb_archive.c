/* eb_archive.c - archives and replays: CreateArchive, DescribeArchive,
 * ListArchives, UpdateArchive, DeleteArchive, StartReplay, DescribeReplay,
 * CancelReplay, ListReplays.
 *
 * An archive of a bus is the bus's stream itself, kept long enough: its
 * retention becomes RetentionDays (0 = "indefinitely" = 365 days, the
 * longest a stream keeps) when that is longer than it was; an optional
 * EventPattern narrows what a replay from it re-delivers. EventCount and
 * SizeBytes are the bus stream's (every event, whatever the pattern: read
 * from the shard's sequences and bytes, no scan).
 *
 * A replay re-delivers the events appended in [EventStartTime, EventEndTime)
 * to the targets of the rules in Destination.FilterArns (all the bus's rules
 * when absent), without touching the live rules' groups: per (rule, target)
 * a temporary queue group starting at EventStartTime and ENDING at
 * EventEndTime (sl_qgroup_config.end_time_ms: later records are skipped),
 * filtered by the rule's pattern (merged with the archive's), with a push
 * target like the rule's (same destination, transform, retries). The
 * reconciler (eb_sync.c) makes them; sl_eb_tick (eb_replay_check) marks the
 * replay COMPLETED once the end time has passed and every group has read to
 * the end with nothing in flight, then removes the groups. CancelReplay
 * removes them at once. States: STARTING (groups being made), RUNNING,
 * COMPLETED, CANCELLED, FAILED. EventLastReplayedTime follows the slowest
 * target while the replay runs (the time of the oldest event still pending
 * on one of its groups) and is EventEndTime once completed. Replayed events
 * carry "replay-name" (their targets' replay_name, push/target.h).
 *
 * Threading: the main loop.
 */
#include "broker/api/eb_int.h"

#include "broker/engine/catalog.h"
#include "broker/engine/engine.h"
#include "broker/engine/filter.h"
#include "broker/engine/queue.h"
#include "broker/engine/streams.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EB_ARCHIVES_MAX     100u
#define EB_REPLAYS_MAX      100u /* kept, finished ones included (oldest finished dropped) */
#define EB_REPLAYS_ACTIVE   10u  /* at once (AWS) */
#define EB_HOURS_MAX        8760u
#define EB_MERGE_DEPTH_MAX  16u
#define EB_CHECK_EVERY_MS   500u

static bool name_ok(const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;
    return n >= 1 && n <= 48 &&
           strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

static void arn_of(const char *kind, const char *name, char *out, size_t cap)
{
    snprintf(out, cap, "arn:aws:events:%s:%s:%s/%s", EB_REGION, EB_ACCOUNT, kind, name);
}

static json_t *secs(json_t *ms)
{
    return json_real((double)json_integer_value(ms) / 1000.0);
}

static json_t *objects(struct sl_eb *eb, const char *key)
{
    json_t *o = json_object_get(eb->doc, key);
    if (o == NULL) {
        json_object_set_new(eb->doc, key, json_object());
        o = json_object_get(eb->doc, key);
    }
    return o;
}

/* The archive name of a request member, checked. NULL: answered. */
static const char *archive_name(struct eb_call *c, const char *member)
{
    bool bad = false;
    const char *n = eb_str(c, member, &bad);
    if (!bad && !name_ok(n)) {
        eb_fail(c, EB_E_VALIDATION, "%s %.64s is not valid: 1-48 characters of A-Z a-z 0-9 . _ -",
                member, n != NULL ? n : "(missing)");
        return NULL;
    }
    return bad ? NULL : n;
}

static bool pattern_ok(struct eb_call *c, const char *pattern)
{
    if (pattern == NULL) {
        return true;
    }
    struct sl_filter *f = NULL;
    char why[EB_WHY_MAX];
    int rc = sl_filter_parse(pattern, strlen(pattern), SL_FILTER_SCOPE_BODY, &f, why, sizeof(why));
    sl_filter_free(f);
    if (rc != SL_OK) {
        eb_fail(c, EB_E_INVALID_PATTERN, "Event pattern is not valid. Reason: %s", why);
    }
    return rc == SL_OK;
}

/* Raises the bus stream's retention to `days` (0: 365). */
static bool keep_days(struct eb_call *c, const char *bus, json_int_t days)
{
    char stream[SL_STREAM_NAME_MAX + 1], why[EB_WHY_MAX];
    eb_bus_stream(bus, stream, sizeof(stream));
    int rc = SL_OK; /* (sl_engine_stream sets it on failure only) */
    struct sl_stream *st = sl_engine_stream(c->eb->e, stream, why, sizeof(why), &rc);
    uint32_t hours = days == 0 || days * 24 > EB_HOURS_MAX ? EB_HOURS_MAX : (uint32_t)days * 24u;
    if (st != NULL && st->retention_hours < hours) {
        rc = sl_catalog_set_retention(c->eb->e->catalog, st, hours, why, sizeof(why));
    }
    if (st == NULL || rc != SL_OK) {
        eb_fail(c, EB_E_INTERNAL, "the archive's retention: %s", why);
        return false;
    }
    return true;
}

static bool archive_args(struct eb_call *c, const char **desc, const char **pattern,
                         json_int_t *days)
{
    bool bad = false;
    *desc = eb_str(c, "Description", &bad);
    *pattern = bad ? NULL : eb_str(c, "EventPattern", &bad);
    json_t *d = json_object_get(c->in, "RetentionDays");
    *days = json_is_integer(d) ? json_integer_value(d) : 0;
    if (bad) {
        return false;
    }
    if (d != NULL && (!json_is_integer(d) || *days < 0)) {
        eb_fail(c, EB_E_VALIDATION, "RetentionDays must be a whole number of days >= 0 (0: kept "
                                    "as long as Sluice keeps a stream, 365 days)");
        return false;
    }
    return pattern_ok(c, *pattern);
}

void eb_create_archive(struct eb_call *c)
{
    const char *name = archive_name(c, "ArchiveName");
    const char *desc, *pattern;
    json_int_t days;
    bool bad = false;
    const char *src = name != NULL ? eb_str(c, "EventSourceArn", &bad) : NULL;
    char bus[EB_BUS_NAME_MAX + 1], why[EB_WHY_MAX];
    if (name == NULL || bad || !archive_args(c, &desc, &pattern, &days)) {
        return;
    }
    if (src == NULL || strstr(src, ":event-bus/") == NULL ||
        !eb_bus_name(src, bus, sizeof(bus), why, sizeof(why)) ||
        eb_bus_get(c->eb, bus, true, why, sizeof(why)) == NULL) {
        eb_fail(c, EB_E_NOT_FOUND, "EventSourceArn must be an existing event bus's ARN: %s",
                src == NULL ? "missing" : src);
        return;
    }
    json_t *all = objects(c->eb, "archives");
    if (json_object_get(all, name) != NULL) {
        eb_fail(c, EB_E_EXISTS, "Archive %s already exists.", name);
        return;
    }
    if (json_object_size(all) >= EB_ARCHIVES_MAX) {
        eb_fail(c, EB_E_LIMIT, "%u archives already: delete one first", EB_ARCHIVES_MAX);
        return;
    }
    if (!keep_days(c, bus, days)) {
        return;
    }
    json_t *a = json_pack("{s:s,s:I,s:I}", "bus", bus, "days", days, "created",
                          (json_int_t)sl_clock_wall_ms());
    if (pattern != NULL) {
        json_object_set_new(a, "pattern", json_string(pattern));
    }
    if (desc != NULL) {
        json_object_set_new(a, "description", json_string(desc));
    }
    json_object_set_new(all, name, a);
    if (!eb_save(c)) {
        return;
    }
    char arn[256];
    arn_of("archive", name, arn, sizeof(arn));
    eb_reply(c, json_pack("{s:s,s:s,s:o}", "ArchiveArn", arn, "State", "ENABLED", "CreationTime",
                          secs(json_object_get(a, "created"))));
}

static json_t *archive_view(struct sl_eb *eb, const char *name, const json_t *a, bool full)
{
    char arn[256], bus_arn[256], stream[SL_STREAM_NAME_MAX + 1], why[64];
    const char *bus = json_string_value(json_object_get(a, "bus"));
    arn_of("archive", name, arn, sizeof(arn));
    eb_bus_arn(bus, bus_arn, sizeof(bus_arn));
    eb_bus_stream(bus, stream, sizeof(stream));
    uint64_t count = 0, bytes = 0;
    int rc;
    struct sl_stream *st = sl_engine_stream(eb->e, stream, why, sizeof(why), &rc);
    for (uint32_t s = 0; st != NULL && s < st->shard_count; s++) {
        struct sl_shard_info si;
        sl_streams_shard_info(st, s, &si);
        count += si.next_seq - si.first_seq;
        bytes += si.bytes;
    }
    json_t *o = json_pack("{s:s,s:s,s:s,s:O,s:I,s:I,s:o}", "ArchiveName", name, "EventSourceArn",
                          bus_arn, "State", "ENABLED", "RetentionDays", json_object_get(a, "days"),
                          "SizeBytes", (json_int_t)bytes, "EventCount", (json_int_t)count,
                          "CreationTime", secs(json_object_get(a, "created")));
    if (full) {
        json_object_set_new(o, "ArchiveArn", json_string(arn));
        json_t *p = json_object_get(a, "pattern");
        json_t *d = json_object_get(a, "description");
        if (p != NULL) {
            json_object_set(o, "EventPattern", p);
        }
        if (d != NULL) {
            json_object_set(o, "Description", d);
        }
    }
    return o;
}

/* The archive or replay a request names in `member`, from state table
 * `table`, or NULL (answered). */
static json_t *named_get(struct eb_call *c, const char *member, const char *table,
                         const char *what, const char **name)
{
    *name = archive_name(c, member);
    json_t *o = *name != NULL ? json_object_get(objects(c->eb, table), *name) : NULL;
    if (*name != NULL && o == NULL) {
        eb_fail(c, EB_E_NOT_FOUND, "%s %s does not exist.", what, *name);
    }
    return o;
}

static json_t *archive_get(struct eb_call *c, const char **name)
{
    return named_get(c, "ArchiveName", "archives", "Archive", name);
}

void eb_describe_archive(struct eb_call *c)
{
    const char *name;
    json_t *a = archive_get(c, &name);
    if (a != NULL) {
        eb_reply(c, archive_view(c->eb, name, a, true));
    }
}

void eb_update_archive(struct eb_call *c)
{
    const char *name, *desc, *pattern;
    json_int_t days;
    json_t *a = archive_get(c, &name);
    if (a == NULL || !archive_args(c, &desc, &pattern, &days)) {
        return;
    }
    if (json_object_get(c->in, "RetentionDays") != NULL) {
        if (!keep_days(c, json_string_value(json_object_get(a, "bus")), days)) {
            return;
        }
        json_object_set_new(a, "days", json_integer(days));
    }
    if (pattern != NULL) {
        json_object_set_new(a, "pattern", json_string(pattern));
    }
    if (desc != NULL) {
        json_object_set_new(a, "description", json_string(desc));
    }
    if (!eb_save(c)) {
        return;
    }
    char arn[256];
    arn_of("archive", name, arn, sizeof(arn));
    eb_reply(c, json_pack("{s:s,s:s,s:o}", "ArchiveArn", arn, "State", "ENABLED", "CreationTime",
                          secs(json_object_get(a, "created"))));
}

void eb_delete_archive(struct eb_call *c)
{
    const char *name;
    json_t *a = archive_get(c, &name);
    if (a == NULL) {
        return;
    }
    json_object_del(objects(c->eb, "archives"), name); /* the stream keeps its retention */
    if (eb_save(c)) {
        eb_reply(c, NULL);
    }
}

void eb_list_archives(struct eb_call *c)
{
    bool bad = false;
    const char *prefix = eb_str(c, "NamePrefix", &bad);
    const char *src = bad ? NULL : eb_str(c, "EventSourceArn", &bad);
    if (bad) {
        return;
    }
    json_t *out = json_array();
    const char *k;
    json_t *a;
    char bus_arn[256];
    json_object_foreach(objects(c->eb, "archives"), k, a)
    {
        eb_bus_arn(json_string_value(json_object_get(a, "bus")), bus_arn, sizeof(bus_arn));
        if ((prefix == NULL || strncmp(k, prefix, strlen(prefix)) == 0) &&
            (src == NULL || strcmp(src, bus_arn) == 0)) {
            json_array_append_new(out, archive_view(c->eb, k, a, false));
        }
    }
    eb_reply(c, json_pack("{s:o}", "Archives", out));
}

/* ---- replays ---- */

/* dst := dst AND src, for patterns whose keys do not collide at a leaf (a
 * field both restrict, or $or in both, is refused: why says which). */
static bool merge(json_t *dst, const json_t *src, uint32_t depth, char *why, size_t why_len)
{
    const char *k;
    json_t *v;
    if (depth > EB_MERGE_DEPTH_MAX) {
        snprintf(why, why_len, "the patterns nest too deep to combine");
        return false;
    }
    json_object_foreach((json_t *)src, k, v)
    {
        json_t *d = json_object_get(dst, k);
        if (d == NULL) {
            json_object_set(dst, k, v);
        } else if (json_is_object(d) && json_is_object(v) && strcmp(k, "$or") != 0) {
            if (!merge(d, v, depth + 1, why, why_len)) {
                return false;
            }
        } else {
            snprintf(why, why_len,
                     "the archive's pattern and the rule's both restrict \"%.64s\": Sluice "
                     "cannot combine them (remove one of them, or replay without the archive "
                     "pattern)",
                     k);
            return false;
        }
    }
    return true;
}

/* The pattern a replay's group filters by: the rule's AND the archive's. */
static char *replay_pattern(const char *rule, const char *archive, char *why, size_t why_len)
{
    json_t *r = json_loads(rule, 0, NULL);
    json_t *a = archive != NULL ? json_loads(archive, 0, NULL) : json_object();
    char *out = NULL;
    if (json_is_object(r) && json_is_object(a) && merge(r, a, 0, why, why_len)) {
        out = json_dumps(r, JSON_COMPACT);
        if (out != NULL && strlen(out) > SL_FILTER_TEXT_MAX) {
            snprintf(why, why_len, "the combined pattern is longer than %u bytes",
                     SL_FILTER_TEXT_MAX);
            free(out);
            out = NULL;
        }
    } else if (why[0] == '\0') {
        snprintf(why, why_len, "a stored pattern does not parse");
    }
    json_decref(r);
    json_decref(a);
    return out;
}

static bool active(const json_t *r)
{
    const char *s = json_string_value(json_object_get(r, "state"));
    return strcmp(s, "STARTING") == 0 || strcmp(s, "RUNNING") == 0;
}

/* The rules a replay goes to (FilterArns, or every rule of the bus) into
 * `rules` (an array of rule objects, borrowed). False: answered. */
static bool replay_rules(struct eb_call *c, const char *bus, json_t *rules)
{
    json_t *fa = json_object_get(json_object_get(c->in, "Destination"), "FilterArns");
    json_t *all = json_object_get(c->eb->doc, "rules");
    const char *k;
    json_t *r;
    if (fa == NULL) {
        json_object_foreach(all, k, r)
        {
            if (strcmp(json_string_value(json_object_get(r, "bus")), bus) == 0) {
                json_array_append(rules, r);
            }
        }
        return true;
    }
    size_t i;
    json_t *arn;
    json_array_foreach(fa, i, arn)
    {
        const char *s = json_string_value(arn);
        const char *slash = s != NULL ? strrchr(s, '/') : NULL;
        char key[EB_BUS_NAME_MAX + EB_NAME_MAX + 2];
        snprintf(key, sizeof(key), "%s/%s", bus, slash != NULL ? slash + 1 : "");
        r = json_object_get(all, key);
        if (r == NULL || strstr(s, ":rule/") == NULL) {
            eb_fail(c, EB_E_NOT_FOUND, "FilterArns: %.200s is not a rule of event bus %s",
                    s != NULL ? s : "(not a string)", bus);
            return false;
        }
        json_array_append(rules, r);
    }
    return true;
}

/* One temporary target per (rule, target): like the rule's, with its own
 * group, the combined pattern and the replay's range. */
static bool replay_targets(struct eb_call *c, json_t *rep, json_t *rules, const char *apattern,
                           const char *name)
{
    size_t i;
    json_t *r;
    json_t *out = json_object_get(rep, "targets");
    json_array_foreach(rules, i, r)
    {
        char why[EB_WHY_MAX] = "";
        char *pattern = replay_pattern(json_string_value(json_object_get(r, "pattern")), apattern,
                                       why, sizeof(why));
        if (pattern == NULL) {
            eb_fail(c, EB_E_VALIDATION, "rule %s: %s",
                    json_string_value(json_object_get(r, "name")), why);
            return false;
        }
        const char *id;
        json_t *t;
        json_object_foreach(json_object_get(r, "targets"), id, t)
        {
            char group[SL_QUEUE_GROUP_NAME_MAX + 1];
            char label[EB_NAME_MAX + 16];
            snprintf(label, sizeof(label), "replay.%s", name);
            eb_sync_group_name(c->eb, label, group, sizeof(group));
            json_array_append_new(
                out, json_pack("{s:s,s:O,s:O,s:O,s:O,s:s,s:O,s:O,s:b,s:s}", "group", group, "url",
                               json_object_get(t, "url"), "transform",
                               json_object_get(t, "transform"), "max_deliveries",
                               json_object_get(t, "max_deliveries"), "dlq",
                               json_object_get(t, "dlq"), "pattern", pattern, "since",
                               json_object_get(rep, "start"), "end",
                               json_object_get(rep, "end"), "ready", 0, "replay", name));
        }
        free(pattern);
    }
    return true;
}

/* A time member (epoch seconds) in ms; false when absent or not a time. */
static bool time_of(const json_t *v, uint64_t *ms)
{
    double s = json_is_number(v) ? json_number_value(v) : -1;
    if (!isfinite(s) || s < 0 || s > 253402300799.0) {
        return false;
    }
    *ms = (uint64_t)(s * 1000.0 + 0.5);
    return true;
}

/* Room for one more replay: finished ones past EB_REPLAYS_MAX are dropped
 * (oldest first); active ones are bounded by EB_REPLAYS_ACTIVE. */
static bool replay_room(struct eb_call *c, json_t *all)
{
    const char *k, *oldest = NULL;
    json_t *r;
    uint32_t n_active = 0;
    json_int_t t_old = 0;
    json_object_foreach(all, k, r)
    {
        json_int_t t = json_integer_value(json_object_get(r, "started"));
        n_active += active(r) ? 1u : 0u;
        if (!active(r) && (oldest == NULL || t < t_old)) {
            oldest = k;
            t_old = t;
        }
    }
    if (n_active >= EB_REPLAYS_ACTIVE) {
        eb_fail(c, EB_E_LIMIT, "%u replays are running: wait for one or cancel it",
                EB_REPLAYS_ACTIVE);
        return false;
    }
    if (json_object_size(all) >= EB_REPLAYS_MAX && oldest != NULL) {
        json_object_del(all, oldest);
    }
    return true;
}

void eb_start_replay(struct eb_call *c)
{
    const char *name = archive_name(c, "ReplayName");
    bool bad = false;
    const char *src = name != NULL ? eb_str(c, "EventSourceArn", &bad) : NULL;
    const char *desc = name != NULL && !bad ? eb_str(c, "Description", &bad) : NULL;
    uint64_t start = 0, end = 0;
    if (name == NULL || bad) {
        return;
    }
    const char *slash = src != NULL ? strrchr(src, '/') : NULL;
    json_t *a = slash != NULL && strstr(src, ":archive/") != NULL
                    ? json_object_get(objects(c->eb, "archives"), slash + 1)
                    : NULL;
    if (a == NULL) {
        eb_fail(c, EB_E_NOT_FOUND, "EventSourceArn must name an archive: %s",
                src != NULL ? src : "missing");
        return;
    }
    if (!time_of(json_object_get(c->in, "EventStartTime"), &start) ||
        !time_of(json_object_get(c->in, "EventEndTime"), &end) || start >= end) {
        eb_fail(c, EB_E_VALIDATION, "EventStartTime and EventEndTime are required, start before "
                                    "end");
        return;
    }
    const char *bus = json_string_value(json_object_get(a, "bus"));
    char bus_arn[256];
    eb_bus_arn(bus, bus_arn, sizeof(bus_arn));
    const char *dest = json_string_value(
        json_object_get(json_object_get(c->in, "Destination"), "Arn"));
    if (dest == NULL || strcmp(dest, bus_arn) != 0) {
        eb_fail(c, EB_E_VALIDATION, "Destination.Arn must be the archive's event bus, %s",
                bus_arn);
        return;
    }
    json_t *all = objects(c->eb, "replays");
    if (json_object_get(all, name) != NULL) {
        eb_fail(c, EB_E_EXISTS, "Replay %s already exists.", name);
        return;
    }
    if (!replay_room(c, all)) {
        return;
    }
    json_t *rules = json_array();
    json_t *rep = json_pack("{s:s,s:s,s:I,s:I,s:s,s:I,s:[],s:O}", "archive", slash + 1, "bus",
                            bus, "start", (json_int_t)start, "end", (json_int_t)end, "state",
                            "STARTING", "started", (json_int_t)sl_clock_wall_ms(), "targets",
                            "destination", json_object_get(c->in, "Destination"));
    if (desc != NULL) {
        json_object_set_new(rep, "description", json_string(desc));
    }
    bool ok = replay_rules(c, bus, rules) &&
              replay_targets(c, rep, rules,
                             json_string_value(json_object_get(a, "pattern")), name);
    json_decref(rules);
    if (!ok) {
        json_decref(rep);
        return;
    }
    json_object_set_new(all, name, rep);
    c->eb->dirty = true;
    if (!eb_save(c)) {
        return;
    }
    eb_sync(c->eb);
    char arn[256];
    arn_of("replay", name, arn, sizeof(arn));
    eb_reply(c, json_pack("{s:s,s:s,s:o}", "ReplayArn", arn, "State", "STARTING",
                          "ReplayStartTime", secs(json_object_get(rep, "started"))));
}

static json_t *replay_view(const char *name, const json_t *r, bool full)
{
    char arn[256], src[256];
    arn_of("replay", name, arn, sizeof(arn));
    arn_of("archive", json_string_value(json_object_get(r, "archive")), src, sizeof(src));
    json_t *o = json_pack("{s:s,s:s,s:O,s:o,s:o,s:o}", "ReplayName", name, "EventSourceArn", src,
                          "State", json_object_get(r, "state"), "EventStartTime",
                          secs(json_object_get(r, "start")), "EventEndTime",
                          secs(json_object_get(r, "end")), "ReplayStartTime",
                          secs(json_object_get(r, "started")));
    if (json_object_get(r, "ended") != NULL) {
        json_object_set_new(o, "ReplayEndTime", secs(json_object_get(r, "ended")));
    }
    if (json_object_get(r, "last") != NULL) {
        json_object_set_new(o, "EventLastReplayedTime", secs(json_object_get(r, "last")));
    }
    if (json_object_get(r, "reason") != NULL) {
        json_object_set(o, "StateReason", json_object_get(r, "reason"));
    }
    if (full) {
        json_object_set_new(o, "ReplayArn", json_string(arn));
        json_object_set(o, "Destination", json_object_get(r, "destination"));
        if (json_object_get(r, "description") != NULL) {
            json_object_set(o, "Description", json_object_get(r, "description"));
        }
    }
    return o;
}

static json_t *replay_get(struct eb_call *c, const char **name)
{
    return named_get(c, "ReplayName", "replays", "Replay", name);
}

void eb_describe_replay(struct eb_call *c)
{
    const char *name;
    json_t *r = replay_get(c, &name);
    if (r != NULL) {
        eb_reply(c, replay_view(name, r, true));
    }
}

void eb_list_replays(struct eb_call *c)
{
    bool bad = false;
    const char *prefix = eb_str(c, "NamePrefix", &bad);
    const char *state = bad ? NULL : eb_str(c, "State", &bad);
    if (bad) {
        return;
    }
    json_t *out = json_array();
    const char *k;
    json_t *r;
    json_object_foreach(objects(c->eb, "replays"), k, r)
    {
        if ((prefix == NULL || strncmp(k, prefix, strlen(prefix)) == 0) &&
            (state == NULL || strcmp(state, json_string_value(json_object_get(r, "state"))) == 0)) {
            json_array_append_new(out, replay_view(k, r, false));
        }
    }
    eb_reply(c, json_pack("{s:o}", "Replays", out));
}

/* The replay's groups retired; its state `state`. */
static void replay_finish(struct sl_eb *eb, json_t *r, const char *state)
{
    size_t i;
    json_t *t;
    const char *bus = json_string_value(json_object_get(r, "bus"));
    json_array_foreach(json_object_get(r, "targets"), i, t)
    {
        eb_sync_retire(eb, bus, t);
    }
    json_object_set_new(r, "state", json_string(state));
    json_object_set_new(r, "ended", json_integer((json_int_t)sl_clock_wall_ms()));
    if (strcmp(state, "COMPLETED") == 0) {
        json_object_set(r, "last", json_object_get(r, "end"));
    }
}

void eb_cancel_replay(struct eb_call *c)
{
    const char *name;
    json_t *r = replay_get(c, &name);
    if (r == NULL) {
        return;
    }
    if (!active(r)) {
        eb_fail(c, EB_E_VALIDATION, "Replay %s is %s: only a STARTING or RUNNING one cancels",
                name, json_string_value(json_object_get(r, "state")));
        return;
    }
    replay_finish(c->eb, r, "CANCELLED");
    if (!eb_save(c)) {
        return;
    }
    char arn[256];
    arn_of("replay", name, arn, sizeof(arn));
    eb_reply(c, json_pack("{s:s,s:s}", "ReplayArn", arn, "State", "CANCELLED"));
}

/* Whether every target of r is made and has read to its end. */
/* Whether every target of replay r delivered its range; *running: every
 * target's group exists; *last_ms: the replay's progress, an event time
 * before which every target delivered everything (the oldest event still
 * pending on any of them, else now), as EventLastReplayedTime reports it. */
static bool replay_done(struct sl_eb *eb, json_t *r, bool *running, uint64_t *last_ms)
{
    char stream[SL_STREAM_NAME_MAX + 1], why[EB_WHY_MAX];
    eb_bus_stream(json_string_value(json_object_get(r, "bus")), stream, sizeof(stream));
    size_t i;
    json_t *t;
    bool done = true;
    uint64_t now = sl_clock_wall_ms();
    *running = true;
    *last_ms = now;
    json_array_foreach(json_object_get(r, "targets"), i, t)
    {
        if (!json_is_true(json_object_get(t, "ready"))) {
            *running = false;
            done = false;
            continue;
        }
        struct sl_qgroup_stats st;
        const char *group = json_string_value(json_object_get(t, "group"));
        if (sl_queue_stats(eb->e, stream, group, &st, why, sizeof(why)) != SL_OK) {
            done = false;
            *last_ms = 0;
        } else if (st.visible + st.inflight + st.delayed > 0) {
            done = false;
            uint64_t oldest = now > st.oldest_age_ms ? now - st.oldest_age_ms : 0;
            *last_ms = oldest < *last_ms ? oldest : *last_ms;
        }
    }
    return done;
}

void eb_replay_check(struct sl_eb *eb, uint64_t now_ms)
{
    if (now_ms < eb->next_check_ms) {
        return;
    }
    eb->next_check_ms = now_ms + EB_CHECK_EVERY_MS;
    const char *k;
    json_t *r;
    bool changed = false;
    json_object_foreach(objects(eb, "replays"), k, r)
    {
        if (!active(r)) {
            continue;
        }
        bool running = false;
        uint64_t last = 0;
        bool done = replay_done(eb, r, &running, &last);
        if (running && strcmp(json_string_value(json_object_get(r, "state")), "STARTING") == 0) {
            json_object_set_new(r, "state", json_string("RUNNING"));
            changed = true;
        }
        /* progress within [start, end]; only forward (saved with the next change) */
        json_int_t start = json_integer_value(json_object_get(r, "start"));
        json_int_t end = json_integer_value(json_object_get(r, "end"));
        json_int_t prev = json_integer_value(json_object_get(r, "last"));
        json_int_t at = (json_int_t)last < start ? start
                        : (json_int_t)last > end ? end
                                                 : (json_int_t)last;
        if (running && at > prev && at > start) {
            json_object_set_new(r, "last", json_integer(at));
        }
        if (done && sl_clock_wall_ms() >= (uint64_t)json_integer_value(json_object_get(r, "end"))) {
            replay_finish(eb, r, "COMPLETED");
            sl_info("eventbridge", "replay %s completed", k);
            changed = true;
        }
    }
    char why[EB_WHY_MAX];
    if (changed && eb_store_save(eb->dir, eb->doc, why, sizeof(why)) != SL_OK) {
        sl_error("eventbridge", "%s", why);
    }
}
