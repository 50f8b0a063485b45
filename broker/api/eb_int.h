/* eb_int.h - what the EventBridge front-end's files share (eb.c: dispatch,
 * answers, errors, event buses; eb_events.c: PutEvents, the event envelope,
 * TestEventPattern; eb_rules.c: rules and targets; eb_store.c: the state
 * file; eb_sync.c: making the engine's groups and push targets match the
 * rules). Internal to broker/api.
 *
 * The state: what the engine does not hold - buses, rules (pattern, state,
 * description) and their targets (ARN, settings, which queue group serves
 * them since when) - is one jansson document, bounded by EB_*_MAX, written
 * whole to <data>/eventbridge/state on every change (eb_store.c). Layout:
 *   {"version": 1, "serial": N,
 *    "buses": {NAME: {"created": ms}},
 *    "rules": {"BUS/NAME": {"bus", "name", "pattern", "enabled", "description",
 *              "created", "targets": {ID: {"spec": the PutTargets entry,
 *              "url", "transform", "group", "since": ms, "max_deliveries",
 *              "dlq", "ready", "failed"}}}},
 *    "archives": {NAME: {"bus", "days", "created", "pattern", "description"}},
 *    "replays": {NAME: {"archive", "bus", "start", "end", "state", "started",
 *              "ended", "last", "destination", "targets": [{"group", "url",
 *              "transform", "pattern", "since", "end", ...}]}},
 *    "dead": [[stream, group], ...]}   groups to delete (eb_sync.c)
 *
 * Threading: the main loop.
 */
#ifndef SL_API_EB_INT_H
#define SL_API_EB_INT_H

#include "broker/api/call.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct sl_engine;
struct sl_push;

#define EB_ACCOUNT        "000000000000"
#define EB_REGION         "us-east-1"
#define EB_STREAM_PREFIX  "eb."      /* bus B is the stream eb.B */
#define EB_GROUP_PREFIX   "eb."      /* a target's group: eb.<rule>.<serial hex> */
#define EB_DEFAULT_BUS    "default"
#define EB_NAME_MAX       64u  /* a rule's name, a target's Id (AWS) */
#define EB_BUS_NAME_MAX   120u /* + EB_STREAM_PREFIX fits SL_STREAM_NAME_MAX */
#define EB_BUSES_MAX      100u /* AWS's default quota */
#define EB_RULES_MAX      1000u /* rules of every bus together */
#define EB_TARGETS_MAX    5u    /* per rule (AWS) */
#define EB_DEAD_MAX       1024u /* groups waiting to be deleted */
#define EB_WHY_MAX        512u
#define EB_ARN_MAX        1600u /* AWS's limit on a target Arn */
#define EB_DESCRIPTION_MAX 512u
#define EB_ENTRIES_MAX    10u       /* PutEvents entries */
#define EB_EVENT_BYTES_MAX 262144u  /* 256 KiB: PutEvents' entries as AWS counts them */
#define EB_RETRIES_DEFAULT 185u     /* RetryPolicy.MaximumRetryAttempts (AWS default) */
#define EB_STATE_BYTES_MAX (64u << 20)

/* The front-end's state (one per struct sl_api, made at the first call or
 * tick): the document above and the reconciler's progress. */
struct sl_eb {
    struct sl_engine *e;  /* borrowed */
    struct sl_push *push; /* borrowed; NULL when push targets are off */
    char dir[4096];       /* <data>/eventbridge */
    json_t *doc;          /* owned */
    bool busy;            /* a group create or delete is out (eb_sync.c) */
    bool dirty;           /* the reconciler should run */
    bool broken;          /* the file could not be read: every call fails */
    bool closing;         /* sl_eb_free ran while busy: the callback frees it */
    uint64_t next_check_ms; /* replays' progress is looked at then (eb_archive.c) */
    char broken_why[EB_WHY_MAX];
};

enum eb_error {
    EB_E_VALIDATION = 0,  /* ValidationException 400 */
    EB_E_NOT_FOUND,       /* ResourceNotFoundException 400 */
    EB_E_EXISTS,          /* ResourceAlreadyExistsException 400 */
    EB_E_LIMIT,           /* LimitExceededException 400 */
    EB_E_INVALID_PATTERN, /* InvalidEventPatternException 400 */
    EB_E_CONFLICT,        /* ConcurrentModificationException 400 */
    EB_E_UNKNOWN_OP,      /* UnknownOperationException 400 */
    EB_E_INTERNAL,        /* InternalException 500 */
    EB_E_ACCESS,          /* AccessDeniedException 400 */
    EB_E_SIGNATURE,       /* InvalidSignatureException 400 */
    EB_E_CLIENT_TOKEN,    /* UnrecognizedClientException 400 */
    EB_E_COUNT_
};

struct eb_call {
    struct sl_api_call *call;
    struct sl_eb *eb;
    json_t *in; /* owned: the request's JSON object */
    void *op;   /* owned by the operation while an engine call runs */
};

/* Answers `result` (takes; NULL: {}) and frees c. */
void eb_reply(struct eb_call *c, json_t *result);
/* Answers an error and frees c. */
__attribute__((format(printf, 3, 4))) void eb_fail(struct eb_call *c, enum eb_error code,
                                                   const char *fmt, ...);

/* A string member of the request: NULL when absent; when present and not a
 * string, answers ValidationException and sets *failed. */
const char *eb_str(struct eb_call *c, const char *name, bool *failed);
/* The bus a request names (EventBusName: a name or an event-bus ARN; absent:
 * "default") into out. False: not a valid name (why says so). */
bool eb_bus_name(const char *given, char *out, size_t cap, char *why, size_t why_len);
/* The bus's stream name into out. */
void eb_bus_stream(const char *bus, char *out, size_t cap);
/* The bus's state object, or NULL. The default bus is made (stream and
 * state) on first use when `make_default`; *err gets an engine error. */
json_t *eb_bus_get(struct sl_eb *eb, const char *bus, bool make_default, char *why,
                   size_t why_len);
/* arn:aws:events:<region>:<account>:event-bus/<bus> into out. */
void eb_bus_arn(const char *bus, char *out, size_t cap);
/* arn:aws:events:...:rule/[<bus>/]<name> into out. */
void eb_rule_arn(const char *bus, const char *name, char *out, size_t cap);
/* With auth on: may the caller do `ops` on the bus's stream? If not,
 * answers AccessDeniedException and returns false. */
bool eb_allowed(struct eb_call *c, uint32_t ops, const char *bus);

/* Operations (each answers c). */
void eb_put_events(struct eb_call *c);
void eb_test_event_pattern(struct eb_call *c);
void eb_put_rule(struct eb_call *c);
void eb_delete_rule(struct eb_call *c);
void eb_describe_rule(struct eb_call *c);
void eb_list_rules(struct eb_call *c);
void eb_enable_rule(struct eb_call *c, bool enable);
void eb_put_targets(struct eb_call *c);
void eb_remove_targets(struct eb_call *c);
void eb_list_targets(struct eb_call *c);
void eb_create_archive(struct eb_call *c);
void eb_describe_archive(struct eb_call *c);
void eb_update_archive(struct eb_call *c);
void eb_delete_archive(struct eb_call *c);
void eb_list_archives(struct eb_call *c);
void eb_start_replay(struct eb_call *c);
void eb_describe_replay(struct eb_call *c);
void eb_cancel_replay(struct eb_call *c);
void eb_list_replays(struct eb_call *c);
/* From the tick: replays that have made their groups are RUNNING; those
 * past their end with every group read to it are COMPLETED (groups
 * retired). At most every EB_CHECK_EVERY_MS. */
void eb_replay_check(struct sl_eb *eb, uint64_t now_ms);

/* The event envelope of one PutEvents entry (eb_events.c, also for the
 * fuzz target): checks the entry and renders the envelope with `id`
 * and `now_ms` (used when the entry has no Time). Returns NULL with an AWS
 * per-entry ErrorCode in *code and the reason in why. *out_len its bytes;
 * the caller frees it. */
char *eb_envelope(const json_t *entry, const char *id, uint64_t now_ms, size_t *out_len,
                  const char **code, char *why, size_t why_len);
/* The AWS size of a PutEvents entry (Time 14 bytes, Source, DetailType,
 * Detail, each Resources string). */
size_t eb_entry_size(const json_t *entry);

/* State file (eb_store.c). Errors: SL_ECORRUPT, SL_EIO, SL_ENOMEM. No
 * file: a fresh document. */
int eb_store_load(const char *dir, json_t **out, char *why, size_t why_len);
/* Writes the document durably (tmp, fsync, rename, fsync dir). Errors:
 * SL_EIO, SL_ENOSPC, SL_ENOMEM, SL_ETOOBIG (past EB_STATE_BYTES_MAX). */
int eb_store_save(const char *dir, const json_t *doc, char *why, size_t why_len);
/* Frees the state (takes it). */
void eb_free(struct sl_eb *eb);
/* Saves eb->doc; on failure answers InternalException and returns false. */
bool eb_save(struct eb_call *c);

/* The reconciler (eb_sync.c): makes the engine's groups and push targets
 * match the state - creates each enabled target's group (starting at its
 * "since" time, so events put after PutTargets answered are not missed
 * while the group is being made) and push target, removes the push targets
 * of groups on the dead list and deletes those groups. One engine call out
 * at a time; runs from the tick and after each change. */
void eb_sync(struct sl_eb *eb);
/* Moves a target's group (state object t) to the dead list and removes its
 * push target now, so no delivery starts after the answer. */
void eb_sync_retire(struct sl_eb *eb, const char *bus, json_t *t);
/* A fresh group name for a target of rule `rule` (bumps the serial). */
void eb_sync_group_name(struct sl_eb *eb, const char *rule, char *out, size_t cap);

#endif
