/* consumer_group.c - a consumer that is a member of a stream consumer group: it joins the
 * broker's group coordinator, heartbeats from poll, reads the shards it is given, and
 * hands over the ones it must give up (docs/PROTOCOL.md, "Consumer groups").
 *
 * Hand-over of a revoked shard, in this order: the application's on_revoked callback; the
 * commit of the shard's position (the sequence after the last record poll returned); the
 * shard's local state dropped; then the shard reported as released in a heartbeat sent at
 * once. Only then does the coordinator give it to its new owner, which starts from that
 * commit - so a shard is never read by two members, and no record handed out before the
 * hand-over is read again unless the member died first (at least once).
 *
 * After a reshard the coordinator assigns shard ids this member's table lacks: the stream is
 * described again and the table grows once no fetch is in flight (none is started until
 * then; the assignment is taken at the next heartbeat). A child shard without a checkpoint
 * starts at its beginning: the coordinator gives it out only once its ancestors were read to
 * their ends and committed, so whatever start the group was made with, its records follow.
 *
 * A heartbeat or a fetch refused with SLUICE_EFENCED means the member is no member any more
 * (its session expired while it was not polling, the group was reset, the broker
 * restarted): its shards are dropped as lost (on_revoked with lost = 1) and it joins again.
 *
 * Threads: the consumer's thread (all calls are synchronous, between fetches).
 */
#include "client/consumer_int.h"

#include "common/assert.h"
#include "common/clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MEMBER_SESSION_DEFAULT_MS 10000u
#define MEMBER_BEAT_DEFAULT_MS    500u /* until the broker says */
#define MEMBER_STEPS_MAX          8u   /* heartbeats in one step (releases are answered at once) */

int sl_cmember_new(struct sluice_consumer *c, const struct sluice_consumer_opts *opts,
                   uint32_t shard_count)
{
    struct cmember *m = calloc(1, sizeof(*m));
    if (m == NULL) {
        sl_client_set_error("out of memory");
        return SL_ENOMEM;
    }
    c->member = m;
    m->session_ms =
        opts->session_timeout_ms != 0 ? opts->session_timeout_ms : MEMBER_SESSION_DEFAULT_MS;
    m->released = calloc(shard_count, sizeof(*m->released));
    m->list = calloc(shard_count, sizeof(*m->list));
    if (opts->instance_id != NULL && opts->instance_id[0] != '\0') {
        m->instance = strdup(opts->instance_id);
        if (m->instance == NULL) {
            sl_client_set_error("out of memory");
            return SL_ENOMEM;
        }
    }
    if (m->released == NULL || m->list == NULL) {
        sl_client_set_error("out of memory");
        return SL_ENOMEM;
    }
    return SL_OK;
}

/* The member's tables for `n` shard ids (a reshard added some): the stream described again
 * for the new shards' parents. Called with no fetch in flight. */
static int member_grow(struct sluice_consumer *c, uint32_t n)
{
    struct cmember *m = c->member;
    struct sluice_stream_info *info = NULL;
    int rc = sluice_stream_describe(c->c, c->stream, &info);
    if (rc != SL_OK) {
        return rc;
    }
    if (info->shard_count < n) {
        sl_client_set_error("group %s: assigned shard %u, the stream has %u", c->group, n - 1,
                            info->shard_count);
        sluice_stream_info_free(info);
        return SL_EPROTO;
    }
    n = info->shard_count;
    uint32_t *rel = realloc(m->released, n * sizeof(*rel));
    if (rel != NULL) {
        m->released = rel;
    }
    uint32_t *list = rel != NULL ? realloc(m->list, n * sizeof(*list)) : NULL;
    if (list != NULL) {
        m->list = list;
    }
    rc = list == NULL ? SL_ENOMEM : sl_consumer_shards_grow(c, n);
    if (rc == SL_OK) {
        sl_consumer_lineage_copy(c, info);
        m->grow_to = 0;
    } else {
        sl_client_set_error("out of memory");
    }
    sluice_stream_info_free(info);
    return rc;
}

static struct cshard *shard_of(struct sluice_consumer *c, uint32_t id)
{
    /* A member's array covers the stream: index = shard id. */
    return id < c->n ? &c->shards[id] : NULL;
}

static int in_list(const uint32_t *v, size_t n, uint32_t x)
{
    for (size_t i = 0; i < n; i++) {
        if (v[i] == x) {
            return 1;
        }
    }
    return 0;
}

static void drop_shard(struct sluice_consumer *c, struct cshard *s)
{
    s->held = 0;
    s->committed_known = 0;
    s->sought = 0;
    sl_consumer_shard_reset(c, s, &c->opts.start);
}

/* Every held shard is gone (the member was fenced): no commit is possible any more. */
static void lose_all(struct sluice_consumer *c)
{
    struct cmember *m = c->member;
    uint32_t n = 0;
    for (uint32_t i = 0; i < c->n; i++) {
        if (c->shards[i].held) {
            m->list[n++] = c->shards[i].shard;
            drop_shard(c, &c->shards[i]);
        }
    }
    if (n > 0 && c->opts.on_revoked != NULL) {
        c->opts.on_revoked(c->opts.rebalance_ctx, m->list, n, 1);
    }
    m->id[0] = '\0';
    m->n_released = 0;
    m->waiting = 0;
}

/* Starts newly assigned shards from the group's checkpoints (else opts.start). */
static int start_shards(struct sluice_consumer *c, const uint32_t *ids, uint32_t n)
{
    struct sluice_checkpoint *cps = NULL;
    size_t ncp = 0;
    int rc = sluice_checkpoints_get(c->c, c->group, c->stream, &cps, &ncp);
    if (rc != SL_OK) {
        return rc;
    }
    const struct sluice_position oldest = {.kind = SLUICE_TRIM_HORIZON};
    for (uint32_t k = 0; k < n; k++) {
        struct cshard *s = shard_of(c, ids[k]);
        sl_consumer_shard_reset(c, s, s->parents_len > 0 ? &oldest : &c->opts.start);
        for (size_t j = 0; j < ncp; j++) {
            if (cps[j].shard == s->shard) {
                struct sluice_position p = {.kind = SLUICE_AT_SEQUENCE, .seq = cps[j].seq};
                sl_consumer_shard_reset(c, s, &p);
                s->committed = cps[j].seq;
                s->committed_known = 1;
            }
        }
        s->held = 1;
    }
    free(cps);
    return SL_OK;
}

/* Makes the local shards match the coordinator's answer. */
static int apply(struct sluice_consumer *c, const Sluice__V1__GroupAssignment *a)
{
    struct cmember *m = c->member;
    uint32_t need = 0; /* ids the table must hold */
    for (size_t i = 0; i < a->n_shards; i++) {
        need = a->shards[i] >= need ? a->shards[i] + 1 : need;
    }
    for (size_t i = 0; i < a->n_revoke; i++) {
        need = a->revoke[i] >= need ? a->revoke[i] + 1 : need;
    }
    if (need > CONSUMER_SHARD_IDS_MAX) {
        sl_client_set_error("group %s: assigned shard %u, beyond any stream's %u", c->group,
                            need - 1, CONSUMER_SHARD_IDS_MAX);
        return SL_EPROTO;
    }
    snprintf(m->id, sizeof(m->id), "%s", a->member_id != NULL ? a->member_id : "");
    m->generation = a->generation;
    m->waiting = a->waiting;
    m->next_beat_ms =
        sl_clock_mono_ms() + (a->heartbeat_ms != 0 ? a->heartbeat_ms : MEMBER_BEAT_DEFAULT_MS);
    m->beat_now = 0;
    if (need > c->n) { /* the stream was resharded */
        if (sl_consumer_fetching(c)) {
            m->grow_to = need; /* no new fetch until then; ask again at the next step */
            m->next_beat_ms = sl_clock_mono_ms();
            return SL_OK;
        }
        int rc = member_grow(c, need);
        if (rc != SL_OK) {
            return rc;
        }
    }

    /* Held here but not there: taken away without a revoke (cannot happen while the
     * member is alive; kept as the safe answer). */
    uint32_t n = 0;
    for (uint32_t i = 0; i < c->n; i++) {
        if (c->shards[i].held && !in_list(a->shards, a->n_shards, c->shards[i].shard)) {
            m->list[n++] = c->shards[i].shard;
            drop_shard(c, &c->shards[i]);
        }
    }
    if (n > 0 && c->opts.on_revoked != NULL) {
        c->opts.on_revoked(c->opts.rebalance_ctx, m->list, n, 1);
    }

    /* Revoked: callback, commit, drop, release. */
    n = 0;
    for (size_t i = 0; i < a->n_revoke; i++) {
        struct cshard *s = shard_of(c, a->revoke[i]);
        if (s != NULL && s->held) {
            m->list[n++] = s->shard;
        } else if (s != NULL && in_list(a->shards, a->n_shards, s->shard) &&
                   !in_list(m->released, m->n_released, s->shard)) {
            m->released[m->n_released++] = s->shard; /* given and taken at once: unread */
        }
    }
    if (n > 0) {
        if (c->opts.on_revoked != NULL) {
            c->opts.on_revoked(c->opts.rebalance_ctx, m->list, n, 0);
        }
        for (uint32_t k = 0; k < n; k++) {
            struct cshard *s = shard_of(c, m->list[k]);
            uint32_t fenced = 0;
            int rc = sl_consumer_commit_held(c, s, &fenced);
            if (rc != SL_OK) {
                return rc; /* still held: the next step commits and releases it */
            }
            drop_shard(c, s);
            if (!in_list(m->released, m->n_released, s->shard)) {
                m->released[m->n_released++] = s->shard;
            }
        }
    }
    if (m->n_released > 0) {
        m->beat_now = 1; /* the new owners wait for these */
    }

    /* Newly assigned. */
    n = 0;
    for (size_t i = 0; i < a->n_shards; i++) {
        struct cshard *s = shard_of(c, a->shards[i]);
        if (!s->held && !in_list(a->revoke, a->n_revoke, s->shard)) {
            m->list[n++] = s->shard;
        }
    }
    if (n > 0) {
        int rc = start_shards(c, m->list, n);
        if (rc != SL_OK) {
            return rc;
        }
        if (c->opts.on_assigned != NULL) {
            c->opts.on_assigned(c->opts.rebalance_ctx, m->list, n, 0);
        }
    }
    return SL_OK;
}

static const Sluice__V1__GroupAssignment *assignment_of(const sl_response *r)
{
    if (r->body_case == SLUICE__V1__RESPONSE__BODY_JOIN_GROUP && r->join_group != NULL) {
        return r->join_group->assignment;
    }
    if (r->body_case == SLUICE__V1__RESPONSE__BODY_HEARTBEAT && r->heartbeat != NULL) {
        return r->heartbeat->assignment;
    }
    return NULL;
}

static int join(struct sluice_consumer *c, sl_response **out)
{
    struct cmember *m = c->member;
    Sluice__V1__JoinGroup body = SLUICE__V1__JOIN_GROUP__INIT;
    body.stream = c->stream;
    body.group = c->group;
    body.instance_id = m->instance;
    body.session_timeout_ms = m->session_ms;
    sl_request req = SLUICE__V1__REQUEST__INIT;
    req.body_case = SLUICE__V1__REQUEST__BODY_JOIN_GROUP;
    req.join_group = &body;
    return sl_client_call_group(c->c, c->stream, c->group, &req, 0, out);
}

static int heartbeat(struct sluice_consumer *c, sl_response **out)
{
    struct cmember *m = c->member;
    Sluice__V1__Heartbeat body = SLUICE__V1__HEARTBEAT__INIT;
    body.stream = c->stream;
    body.group = c->group;
    body.member_id = m->id;
    body.released = m->released;
    body.n_released = m->n_released;
    sl_request req = SLUICE__V1__REQUEST__INIT;
    req.body_case = SLUICE__V1__REQUEST__BODY_HEARTBEAT;
    req.heartbeat = &body;
    int rc = sl_client_call_group(c->c, c->stream, c->group, &req, 0, out);
    if (rc == SL_OK) {
        m->n_released = 0; /* the coordinator has them */
    }
    return rc;
}

int sl_cmember_step(struct sluice_consumer *c)
{
    struct cmember *m = c->member;
    SL_ASSERT(m != NULL);
    for (uint32_t step = 0; step < MEMBER_STEPS_MAX; step++) {
        int joined = m->id[0] != '\0';
        if (joined && !m->beat_now && sl_clock_mono_ms() < m->next_beat_ms) {
            return SL_OK;
        }
        sl_response *resp = NULL;
        int rc = joined ? heartbeat(c, &resp) : join(c, &resp);
        if (rc == SL_EFENCED && joined) {
            lose_all(c); /* joins again in the next round */
            continue;
        }
        if (rc != SL_OK) {
            return rc;
        }
        const Sluice__V1__GroupAssignment *a = assignment_of(resp);
        if (a == NULL) {
            sl_response_free(resp);
            sl_client_set_error("group %s: the broker's answer carries no assignment", c->group);
            return SL_EPROTO;
        }
        rc = apply(c, a);
        sl_response_free(resp);
        if (rc != SL_OK) {
            return rc;
        }
    }
    return SL_OK;
}

void sl_cmember_free(struct sluice_consumer *c)
{
    struct cmember *m = c->member;
    if (m == NULL) {
        return;
    }
    if (m->id[0] != '\0' && m->instance == NULL) {
        /* A dynamic member leaves so its shards move at once; a static one keeps them
         * for its session, to find them again after a restart. */
        Sluice__V1__LeaveGroup body = SLUICE__V1__LEAVE_GROUP__INIT;
        body.stream = c->stream;
        body.group = c->group;
        body.member_id = m->id;
        sl_request req = SLUICE__V1__REQUEST__INIT;
        req.body_case = SLUICE__V1__REQUEST__BODY_LEAVE_GROUP;
        req.leave_group = &body;
        sl_response *resp = NULL;
        /* best effort: else its session ends */
        (void)sl_client_call_group_once(c->c, c->stream, c->group, &req, &resp);
        sl_response_free(resp);
    }
    free(m->instance);
    free(m->released);
    free(m->list);
    free(m);
    c->member = NULL;
}
