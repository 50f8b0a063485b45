/* coord.h - the group coordinator of stream consumer groups: membership with
 * session timeouts, shard assignment by the sticky balanced assignor
 * (assign.h), cooperative hand-over and fencing.
 *
 * A member joins a (stream, group) and gets an id; it heartbeats at least
 * once per session timeout or is removed. Every change of membership bumps
 * the group's generation and recomputes the target owner of each shard. A
 * shard moves cooperatively (Kafka's KIP-429): its old owner is told to
 * revoke it (it stops reading, commits, and reports it released in its next
 * heartbeat), and only then is it granted to the new owner - so a shard is
 * never held by two members, and only the shards that move pause. A member
 * that expires or leaves releases its shards at once. A static member (an
 * instance id) that rejoins within its session timeout takes its own entry
 * back, with its shards (KIP-345); the id it held before is fenced.
 *
 * Fencing: sl_coord_owns tells whether a member holds a shard now; commits
 * and fetches that name a member are refused (SL_EFENCED) when it does not.
 *
 * State is in memory (a restart makes every member rejoin; checkpoints are
 * durable, assignments are not). Bounded: SL_COORD_GROUPS_MAX groups,
 * SL_ASSIGN_MEMBERS_MAX members each.
 *
 * Threading: the main loop's thread only.
 */
#ifndef SL_COORD_H
#define SL_COORD_H

#include <stdbool.h>
#include <stdint.h>

struct sl_engine;

#define SL_COORD_GROUPS_MAX     10000u
#define SL_COORD_ID_MAX         64u   /* member and instance ids, NUL included */
#define SL_COORD_SESSION_MIN_MS 1000u
#define SL_COORD_SESSION_MAX_MS 300000u
#define SL_COORD_SESSION_DEFAULT_MS 10000u
/* Members heartbeat every session/SL_COORD_BEATS_PER_SESSION, clamped to
 * [SL_COORD_BEAT_MIN_MS, SL_COORD_BEAT_MAX_MS]: often enough that a shard
 * freed by an expired member is taken within SL_COORD_BEAT_MAX_MS, and a
 * member waiting for a shard heartbeats at SL_COORD_BEAT_MIN_MS. */
#define SL_COORD_BEATS_PER_SESSION 20u
#define SL_COORD_BEAT_MIN_MS       100u
#define SL_COORD_BEAT_MAX_MS       500u

struct sl_coord_join {
    const char *stream; /* borrowed for the call */
    const char *group;
    const char *instance_id;     /* "" or NULL: a dynamic member */
    uint32_t session_timeout_ms; /* [SL_COORD_SESSION_MIN_MS, SL_COORD_SESSION_MAX_MS] */
};

/* What a member may do now. shards/revoke point into the member's own
 * arrays: valid until the next call on the coordinator. */
struct sl_coord_view {
    char member_id[SL_COORD_ID_MAX];
    uint64_t generation;
    const uint32_t *shards; /* held now: read these (ascending) */
    uint32_t n_shards;
    const uint32_t *revoke; /* held but moving away: stop, commit, release (ascending) */
    uint32_t n_revoke;
    uint32_t members;
    uint32_t waiting;      /* shards meant for it that another member still holds */
    uint32_t heartbeat_ms; /* heartbeat at least this often */
};

/* Joins (or, for a static member within its session, rejoins). Errors:
 * SL_ENOTFOUND (stream), SL_EINVAL (names, timeout), SL_ELIMIT (groups or
 * members), SL_ENOMEM; `why` says which. */
int sl_coord_join(struct sl_engine *e, const struct sl_coord_join *req, uint64_t now_ms,
                  struct sl_coord_view *out, char *why, uint32_t why_len);

/* Keeps the member alive; `released` lists shards it gave up (after a
 * revoke: stopped and committed). Errors: SL_EFENCED (not a member: expired,
 * left, replaced, or the broker restarted - join again), SL_EINVAL. */
int sl_coord_heartbeat(struct sl_engine *e, const char *stream, const char *group,
                       const char *member_id, const uint32_t *released, uint32_t n_released,
                       uint64_t now_ms, struct sl_coord_view *out, char *why, uint32_t why_len);

/* Leaves at once (its shards go to the others). SL_OK also for an unknown member. */
int sl_coord_leave(struct sl_engine *e, const char *stream, const char *group,
                   const char *member_id);

/* SL_OK when `member_id` holds `shard` of (stream, group) now; else
 * SL_EFENCED with the reason. */
int sl_coord_owns(struct sl_engine *e, const char *stream, const char *group,
                  const char *member_id, uint32_t shard, char *why, uint32_t why_len);

/* true when the group has live members (a manual reset must not race them). */
bool sl_coord_active(struct sl_engine *e, const char *stream, const char *group);

/* Removes every member at once (a forced reset): their next call is fenced
 * and they join again. */
void sl_coord_evict(struct sl_engine *e, const char *stream, const char *group);

/* Removes members whose session expired. Called from the engine's tick. */
void sl_coord_tick(struct sl_engine *e, uint64_t now_ms);

/* A group's members for `group describe`: fn once per member. */
typedef void (*sl_coord_member_fn)(void *ctx, const char *member_id, const char *instance_id,
                                   uint64_t last_seen_ms, const uint32_t *shards,
                                   uint32_t n_shards);
/* *generation: 0 when the group has no member. */
int sl_coord_describe(struct sl_engine *e, const char *stream, const char *group,
                      sl_coord_member_fn fn, void *ctx, uint64_t *generation);

/* Frees every group (engine shutdown). */
void sl_coord_fini(struct sl_engine *e);

#endif
