/* coord.c - the group coordinator (see coord.h).
 *
 * Per group: its members (a list, in join order: the assignor's member
 * index), and per shard `owner` (the member holding it now, or NULL) and
 * `target` (where the last rebalance wants it). What must hold, asserted
 * after every change: a shard has at most one owner; an owner and a target
 * are members of the group; every eligible shard has a target while the
 * group has a member, and no other shard has one; a member's view lists
 * exactly the shards it owns.
 *
 * Resharding (#16): a shard is eligible - assigned to a member - once every
 * parent is finished and until it is finished itself, where finished means
 * closed and the group's committed checkpoint at its end. So a child is read
 * only after its parents were read to their ends and that was committed,
 * which keeps each key's records in order across a split or merge. A member
 * holding a shard that finishes is asked to release it (revoke), as in a
 * rebalance. The stream's shards may grow under a group (a reshard): the
 * group grows with them at the members' next heartbeat.
 */
#include "broker/engine/coord.h"

#include "broker/engine/assign.h"
#include "broker/engine/catalog.h"
#include "broker/engine/consumer.h"
#include "broker/engine/engine.h"

#include "common/assert.h"
#include "common/clock.h"
#include "common/error.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct member {
    char id[SL_COORD_ID_MAX];
    char instance[SL_COORD_ID_MAX]; /* "" for a dynamic member */
    uint64_t last_seen_ms;
    uint32_t session_ms;
    uint32_t *held; /* view arrays, shard_count each */
    uint32_t *rev;
    struct member *next;
};

struct sl_cgroup {
    char *stream;
    char *group;
    uint64_t created_ms; /* the stream's: another value means it was deleted and made again */
    uint32_t shard_count;
    uint8_t *eligible;   /* per shard: assignable (lineage rule above) */
    uint64_t generation;
    struct member *members;
    uint32_t n_members;
    struct member **owner;  /* per shard */
    struct member **target; /* per shard */
    uint32_t *scratch;      /* per shard: the assignor's input and output */
    struct sl_cgroup *prev, *next;
};

static bool id_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= SL_COORD_ID_MAX) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] <= ' ' || s[i] > '~') {
            return false;
        }
    }
    return true;
}

static struct sl_cgroup *group_find(struct sl_engine *e, const char *stream, const char *group)
{
    for (struct sl_cgroup *g = e->coord_groups; g != NULL; g = g->next) {
        if (strcmp(g->group, group) == 0 && strcmp(g->stream, stream) == 0) {
            return g;
        }
    }
    return NULL;
}

static struct member *member_find(struct sl_cgroup *g, const char *id)
{
    for (struct member *m = g->members; m != NULL; m = m->next) {
        if (strcmp(m->id, id) == 0) {
            return m;
        }
    }
    return NULL;
}

static void member_free(struct member *m)
{
    free(m->held);
    free(m->rev);
    free(m);
}

static void group_free(struct sl_engine *e, struct sl_cgroup *g)
{
    if (g->prev != NULL) {
        g->prev->next = g->next;
    } else {
        e->coord_groups = g->next;
    }
    if (g->next != NULL) {
        g->next->prev = g->prev;
    }
    SL_ASSERT(e->coord_group_count > 0);
    e->coord_group_count--;
    while (g->members != NULL) {
        struct member *m = g->members;
        g->members = m->next;
        member_free(m);
    }
    free(g->stream);
    free(g->group);
    free(g->owner);
    free(g->target);
    free(g->scratch);
    free(g->eligible);
    free(g);
}

static void check_group(const struct sl_cgroup *g)
{
    uint32_t n = 0;
    for (const struct member *m = g->members; m != NULL; m = m->next) {
        n++;
    }
    SL_ASSERT(n == g->n_members && n <= SL_ASSIGN_MEMBERS_MAX);
    for (uint32_t s = 0; s < g->shard_count; s++) {
        SL_ASSERT(g->eligible[s] ? g->n_members == 0 || g->target[s] != NULL
                                 : g->target[s] == NULL);
        for (int k = 0; k < 2; k++) {
            const struct member *x = k == 0 ? g->owner[s] : g->target[s];
            if (x == NULL) {
                continue;
            }
            const struct member *m = g->members;
            while (m != NULL && m != x) {
                m = m->next;
            }
            SL_ASSERT(m != NULL); /* owners and targets are members */
        }
    }
}

/* A new target for every eligible shard from the members now (sticky: a
 * shard's planned owner stays where the assignor allows); none for the
 * others. Bumps the generation. */
static void rebalance(struct sl_cgroup *g)
{
    struct member *arr[SL_ASSIGN_MEMBERS_MAX];
    uint32_t n = 0;
    for (struct member *m = g->members; m != NULL; m = m->next) {
        arr[n++] = m;
    }
    /* the assignor sees the eligible shards only, packed at the front of scratch */
    uint32_t k = 0;
    for (uint32_t s = 0; s < g->shard_count; s++) {
        if (!g->eligible[s]) {
            g->target[s] = NULL;
            continue;
        }
        const struct member *cur = g->target[s] != NULL ? g->target[s] : g->owner[s];
        g->scratch[k] = SL_ASSIGN_NONE;
        for (uint32_t j = 0; j < n && cur != NULL; j++) {
            if (arr[j] == cur) {
                g->scratch[k] = j;
                break;
            }
        }
        k++;
    }
    sl_assign_balance(k, g->scratch, n, g->scratch);
    k = 0;
    for (uint32_t s = 0; s < g->shard_count; s++) {
        if (g->eligible[s]) {
            g->target[s] = g->scratch[k] == SL_ASSIGN_NONE ? NULL : arr[g->scratch[k]];
            k++;
        }
    }
    g->generation++;
    check_group(g);
}

/* The group's tables for a stream that has `count` shards now (more after a
 * reshard): new shards start unowned and not eligible. */
static int group_grow(struct sl_cgroup *g, uint32_t count)
{
    if (count <= g->shard_count) {
        return SL_OK;
    }
    struct member **owner = realloc(g->owner, count * sizeof(*owner));
    if (owner != NULL) {
        g->owner = owner;
    }
    struct member **target = owner != NULL ? realloc(g->target, count * sizeof(*target)) : NULL;
    if (target != NULL) {
        g->target = target;
    }
    uint32_t *scratch = target != NULL ? realloc(g->scratch, count * sizeof(*scratch)) : NULL;
    if (scratch != NULL) {
        g->scratch = scratch;
    }
    uint8_t *eligible = scratch != NULL ? realloc(g->eligible, count) : NULL;
    if (eligible != NULL) {
        g->eligible = eligible;
    }
    for (struct member *m = g->members; eligible != NULL && m != NULL; m = m->next) {
        uint32_t *held = realloc(m->held, count * sizeof(*held));
        if (held != NULL) {
            m->held = held;
        }
        uint32_t *rev = held != NULL ? realloc(m->rev, count * sizeof(*rev)) : NULL;
        if (rev == NULL) {
            return SL_ENOMEM; /* (what grew stays: a later call goes on) */
        }
        m->rev = rev;
    }
    if (eligible == NULL) {
        return SL_ENOMEM;
    }
    for (uint32_t s = g->shard_count; s < count; s++) {
        g->owner[s] = NULL;
        g->target[s] = NULL;
        g->eligible[s] = 0;
    }
    g->shard_count = count; /* (every member's view arrays hold as many) */
    return SL_OK;
}

/* Whether the group has read shard s to its end and committed that: closed,
 * and its checkpoint at (or past) its last sequence. */
static bool finished(const struct sl_stream *st, const char *group, uint32_t s)
{
    if (!st->lineage.shard[s].closed) {
        return false;
    }
    struct sl_shard_stats ss;
    sl_wshard_stats(&st->shards[s]->ws, &ss);
    uint64_t seq = 0, at = 0;
    bool known = st->ckpt != NULL && sl_ckpt_get(st->ckpt, group, s, &seq, &at) == SL_OK;
    return ss.next_seq == ss.first_seq || (known && seq >= ss.next_seq);
}

/* Brings the group up to its stream: grown with a reshard, each shard's
 * eligibility from the lineage and the group's checkpoints; a rebalance when
 * any changed. A stream never resharded has every shard eligible. */
static int refresh(struct sl_cgroup *g, const struct sl_stream *st)
{
    int rc = group_grow(g, st->shard_count);
    if (rc != SL_OK) {
        return rc;
    }
    bool changed = false;
    bool flat = st->lineage.n == st->lineage.open;
    /* One pass in id order (a parent's id is below its children's): `done` is finished with
     * every ancestor finished - an empty shard closed in the change that made it is finished
     * at once, its parent may not be (lineage.h, sl_lineage_readable) - kept in scratch. */
    uint32_t *done = g->scratch;
    for (uint32_t s = 0; s < g->shard_count; s++) {
        const struct sl_lineage_shard *ls = &st->lineage.shard[s];
        bool parents_done = true;
        for (int k = 0; !flat && k < 2; k++) {
            parents_done &= ls->parent[k] == SL_LINEAGE_NONE || done[ls->parent[k]] != 0;
        }
        done[s] = !flat && parents_done && finished(st, g->group, s);
        uint8_t el = flat || (parents_done && !done[s]);
        changed |= el != g->eligible[s];
        g->eligible[s] = el;
    }
    if (changed) {
        rebalance(g); /* (scratch is the assignor's again) */
    }
    return SL_OK;
}

/* Gives `m` the shards meant for it that nobody holds. */
static void grant(struct sl_cgroup *g, struct member *m)
{
    for (uint32_t s = 0; s < g->shard_count; s++) {
        if (g->owner[s] == NULL && g->target[s] == m) {
            g->owner[s] = m;
        }
    }
}

static uint32_t beat_ms(uint32_t session_ms)
{
    uint32_t b = session_ms / SL_COORD_BEATS_PER_SESSION;
    return b < SL_COORD_BEAT_MIN_MS ? SL_COORD_BEAT_MIN_MS
                                    : (b > SL_COORD_BEAT_MAX_MS ? SL_COORD_BEAT_MAX_MS : b);
}

static void view(struct sl_cgroup *g, struct member *m, struct sl_coord_view *out)
{
    uint32_t nh = 0, nr = 0, waiting = 0;
    for (uint32_t s = 0; s < g->shard_count; s++) {
        if (g->owner[s] == m) {
            m->held[nh++] = s;
            if (g->target[s] != m) {
                m->rev[nr++] = s;
            }
        } else if (g->target[s] == m) {
            waiting++;
        }
    }
    memset(out, 0, sizeof(*out));
    snprintf(out->member_id, sizeof(out->member_id), "%s", m->id);
    out->generation = g->generation;
    out->shards = m->held;
    out->n_shards = nh;
    out->revoke = m->rev;
    out->n_revoke = nr;
    out->members = g->n_members;
    out->waiting = waiting;
    out->heartbeat_ms = waiting > 0 ? SL_COORD_BEAT_MIN_MS : beat_ms(m->session_ms);
}

static void member_remove(struct sl_cgroup *g, struct member *m)
{
    struct member **pp = &g->members;
    while (*pp != m) {
        pp = &(*pp)->next;
    }
    *pp = m->next;
    g->n_members--;
    for (uint32_t s = 0; s < g->shard_count; s++) {
        if (g->owner[s] == m) {
            g->owner[s] = NULL; /* released at once: its session is over */
        }
        if (g->target[s] == m) {
            g->target[s] = NULL;
        }
    }
    member_free(m);
    rebalance(g);
}

static void new_id(struct sl_engine *e, const char *instance, char *out)
{
    /* Unique across restarts of the broker (the wall clock) and within one
     * (the serial); a static member's instance id is kept readable. */
    uint64_t wall = sl_clock_wall_ms();
    e->coord_serial++;
    snprintf(out, SL_COORD_ID_MAX, "%.24s-%" PRIx64 "-%" PRIx64,
             instance[0] != '\0' ? instance : "member", wall, e->coord_serial);
}

static struct sl_cgroup *group_new(struct sl_engine *e, const char *stream, const char *group,
                                   uint32_t shard_count, uint64_t created_ms)
{
    struct sl_cgroup *g = calloc(1, sizeof(*g));
    if (g == NULL) {
        return NULL;
    }
    g->stream = strdup(stream);
    g->group = strdup(group);
    g->shard_count = shard_count;
    g->created_ms = created_ms;
    g->owner = calloc(shard_count, sizeof(*g->owner));
    g->target = calloc(shard_count, sizeof(*g->target));
    g->scratch = calloc(shard_count, sizeof(*g->scratch));
    g->eligible = calloc(shard_count, 1);
    g->next = e->coord_groups;
    if (g->next != NULL) {
        g->next->prev = g;
    }
    e->coord_groups = g;
    e->coord_group_count++;
    if (g->stream == NULL || g->group == NULL || g->owner == NULL || g->target == NULL ||
        g->scratch == NULL || g->eligible == NULL) {
        group_free(e, g);
        return NULL;
    }
    return g;
}

int sl_coord_join(struct sl_engine *e, const struct sl_coord_join *req, uint64_t now_ms,
                  struct sl_coord_view *out, char *why, uint32_t why_len)
{
    const char *instance = req->instance_id != NULL ? req->instance_id : "";
    if (req->group == NULL || !id_ok(req->group)) {
        snprintf(why, why_len, "a consumer group needs a name (1-63 printable characters)");
        return SL_EINVAL;
    }
    if (instance[0] != '\0' && !id_ok(instance)) {
        snprintf(why, why_len, "instance id must be 1-63 printable characters");
        return SL_EINVAL;
    }
    if (req->session_timeout_ms < SL_COORD_SESSION_MIN_MS ||
        req->session_timeout_ms > SL_COORD_SESSION_MAX_MS) {
        snprintf(why, why_len, "session_timeout_ms must be in [%u, %u]", SL_COORD_SESSION_MIN_MS,
                 SL_COORD_SESSION_MAX_MS);
        return SL_EINVAL;
    }
    int rc = SL_OK;
    struct sl_stream *st = sl_engine_stream(e, req->stream, why, why_len, &rc);
    if (st == NULL) {
        return rc;
    }
    struct sl_bshard *home = NULL; /* a cluster stream's group: only its home coordinates */
    if ((rc = sl_consumer_group_home(e, st, req->group, &home, why, why_len)) != SL_OK) {
        return rc;
    }
    struct sl_cgroup *g = group_find(e, st->name, req->group);
    if (g != NULL && (g->created_ms != st->created_ms || g->shard_count > st->shard_count)) {
        group_free(e, g); /* the stream was deleted and made again: its members start over */
        g = NULL;
    }
    if (g == NULL) {
        if (e->coord_group_count >= SL_COORD_GROUPS_MAX) {
            snprintf(why, why_len, "too many consumer groups with members (%u)",
                     SL_COORD_GROUPS_MAX);
            return SL_ELIMIT;
        }
        g = group_new(e, st->name, req->group, st->shard_count, st->created_ms);
        if (g == NULL) {
            snprintf(why, why_len, "%s", sl_strerror(SL_ENOMEM));
            return SL_ENOMEM;
        }
    }
    if (refresh(g, st) != SL_OK) {
        if (g->members == NULL) {
            group_free(e, g);
        }
        snprintf(why, why_len, "%s", sl_strerror(SL_ENOMEM));
        return SL_ENOMEM;
    }
    struct member *m = NULL;
    if (instance[0] != '\0') {
        for (m = g->members; m != NULL && strcmp(m->instance, instance) != 0; m = m->next) {
        }
    }
    if (m != NULL) {
        /* A static member back within its session: its entry and shards, a
         * new id (the old one, maybe a paused zombie, is fenced). */
        new_id(e, instance, m->id);
        m->last_seen_ms = now_ms;
        m->session_ms = req->session_timeout_ms;
    } else {
        if (g->n_members >= SL_ASSIGN_MEMBERS_MAX) {
            snprintf(why, why_len, "group %s has %u members already", req->group, g->n_members);
            return SL_ELIMIT;
        }
        m = calloc(1, sizeof(*m));
        if (m != NULL) {
            m->held = malloc(g->shard_count * sizeof(*m->held));
            m->rev = malloc(g->shard_count * sizeof(*m->rev));
        }
        if (m == NULL || m->held == NULL || m->rev == NULL) {
            if (m != NULL) {
                member_free(m);
            }
            if (g->members == NULL) {
                group_free(e, g);
            }
            snprintf(why, why_len, "%s", sl_strerror(SL_ENOMEM));
            return SL_ENOMEM;
        }
        new_id(e, instance, m->id);
        snprintf(m->instance, sizeof(m->instance), "%s", instance);
        m->last_seen_ms = now_ms;
        m->session_ms = req->session_timeout_ms;
        struct member **pp = &g->members; /* join order: the assignor's index */
        while (*pp != NULL) {
            pp = &(*pp)->next;
        }
        *pp = m;
        g->n_members++;
        rebalance(g);
    }
    grant(g, m);
    check_group(g);
    view(g, m, out);
    return SL_OK;
}

static int fenced(char *why, uint32_t why_len, const char *member_id, const char *group)
{
    snprintf(why, why_len,
             "member %s is not in group %s (its session expired, it left or was replaced, or "
             "the broker restarted): join again",
             member_id, group);
    return SL_EFENCED;
}

int sl_coord_heartbeat(struct sl_engine *e, const char *stream, const char *group,
                       const char *member_id, const uint32_t *released, uint32_t n_released,
                       uint64_t now_ms, struct sl_coord_view *out, char *why, uint32_t why_len)
{
    struct sl_cgroup *g = group_find(e, stream, group);
    struct member *m = g != NULL ? member_find(g, member_id) : NULL;
    struct sl_stream *home_st = g != NULL ? sl_catalog_find(e->catalog, g->stream) : NULL;
    struct sl_bshard *home = NULL;
    int rc = home_st != NULL ? sl_consumer_group_home(e, home_st, group, &home, why, why_len)
                             : SL_OK;
    if (rc != SL_OK) {
        return rc; /* its shard moved to another leader: the member joins there */
    }
    if (m == NULL) {
        return fenced(why, why_len, member_id, group);
    }
    m->last_seen_ms = now_ms;
    /* a reshard or a finished parent changes what may be assigned */
    const struct sl_stream *st = sl_catalog_find(e->catalog, g->stream);
    if (st != NULL && st->created_ms == g->created_ms && refresh(g, st) != SL_OK) {
        snprintf(why, why_len, "%s", sl_strerror(SL_ENOMEM));
        return SL_ENOMEM;
    }
    for (uint32_t i = 0; i < n_released; i++) {
        uint32_t s = released[i];
        if (s >= g->shard_count) {
            snprintf(why, why_len, "released shard %u: the stream has %u", s, g->shard_count);
            return SL_EINVAL;
        }
        if (g->owner[s] == m && g->target[s] != m) {
            g->owner[s] = NULL; /* its new owner takes it at its next heartbeat */
        }
    }
    grant(g, m);
    /* The released shards go to their targets that are here now too: the
     * next heartbeat of each takes them (grant), nothing waits on this one. */
    check_group(g);
    view(g, m, out);
    return SL_OK;
}

int sl_coord_leave(struct sl_engine *e, const char *stream, const char *group,
                   const char *member_id)
{
    struct sl_cgroup *g = group_find(e, stream, group);
    struct member *m = g != NULL ? member_find(g, member_id) : NULL;
    if (m == NULL) {
        return SL_OK;
    }
    member_remove(g, m);
    if (g->n_members == 0) {
        group_free(e, g);
    }
    return SL_OK;
}

int sl_coord_owns(struct sl_engine *e, const char *stream, const char *group,
                  const char *member_id, uint32_t shard, char *why, uint32_t why_len)
{
    struct sl_cgroup *g = group_find(e, stream, group);
    struct member *m = g != NULL ? member_find(g, member_id) : NULL;
    if (m == NULL) {
        return fenced(why, why_len, member_id, group);
    }
    if (shard >= g->shard_count || g->owner[shard] != m) {
        snprintf(why, why_len,
                 "member %s does not hold shard %u of group %s in generation %" PRIu64
                 " (it was reassigned): refused",
                 member_id, shard, group, g->generation);
        return SL_EFENCED;
    }
    return SL_OK;
}

bool sl_coord_active(struct sl_engine *e, const char *stream, const char *group)
{
    const struct sl_cgroup *g = group_find(e, stream, group);
    return g != NULL && g->n_members > 0;
}

void sl_coord_evict(struct sl_engine *e, const char *stream, const char *group)
{
    struct sl_cgroup *g = group_find(e, stream, group);
    if (g != NULL) {
        group_free(e, g);
    }
}

void sl_coord_tick(struct sl_engine *e, uint64_t now_ms)
{
    for (struct sl_cgroup *g = e->coord_groups, *gn; g != NULL; g = gn) {
        gn = g->next;
        for (struct member *m = g->members, *mn; m != NULL; m = mn) {
            mn = m->next;
            if (now_ms >= m->last_seen_ms + m->session_ms) {
                member_remove(g, m);
            }
        }
        if (g->n_members == 0) {
            group_free(e, g);
        }
    }
}

int sl_coord_describe(struct sl_engine *e, const char *stream, const char *group,
                      sl_coord_member_fn fn, void *ctx, uint64_t *generation)
{
    struct sl_cgroup *g = group_find(e, stream, group);
    *generation = g != NULL ? g->generation : 0;
    if (g == NULL) {
        return SL_OK;
    }
    for (struct member *m = g->members; m != NULL; m = m->next) {
        struct sl_coord_view v;
        view(g, m, &v);
        fn(ctx, m->id, m->instance, m->last_seen_ms, v.shards, v.n_shards);
    }
    return SL_OK;
}

void sl_coord_fini(struct sl_engine *e)
{
    while (e->coord_groups != NULL) {
        group_free(e, e->coord_groups);
    }
}
