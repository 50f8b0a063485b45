/* controller_state.c - the shard state node's encoding and the controller's pure decisions
 * (controller.h): sl_ctrl_state_encode/decode, sl_ctrl_decide (who leads, which ISR, after a
 * broker died, returned or restarted), sl_ctrl_move_start/_cancel (a reassignment begun or
 * undone) and sl_ctrl_place (replica placement). No I/O, no
 * store: the controller and the simulator's checks call them.
 */
#include "broker/cluster/controller.h"

#include "common/assert.h"
#include "common/error.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* The simulator's test-only bugs (repl.h): 6 = a cancel keeps the added replicas in the ISR,
 * 7 = a cancel replaces the leader without a new epoch. */
#ifdef SL_REPL_MUTATIONS
#define CANCEL_MUTATION(n) (sl_repl_mutation == (n))
#else
#define CANCEL_MUTATION(n) false
#endif

/* ---- encoding ----------------------------------------------------------- */

static size_t put_ids(char *p, size_t cap, const int32_t *ids, uint32_t n)
{
    size_t len = 0;
    for (uint32_t i = 0; i < n && len < cap; i++) {
        int w = snprintf(p + len, cap - len, "%s%" PRId32, i ? "," : "", ids[i]);
        len += w > 0 ? (size_t)w : 0;
    }
    return len < cap ? len : cap;
}

size_t sl_ctrl_state_encode(const struct sl_ctrl_state *s, char *buf, size_t cap)
{
    SL_ASSERT(cap >= SL_CTRL_STATE_MAX);
    SL_ASSERT(s->m.n_isr <= SL_REPL_REPLICAS_MAX && s->m.n_replicas <= SL_REPL_REPLICAS_MAX);
    int w = snprintf(buf, cap,
                     "leader=%" PRId32 " epoch=%" PRId32 " session=%" PRIx64 " isr=", s->m.leader,
                     s->m.leader_epoch, (uint64_t)s->leader_session);
    size_t len = (size_t)w;
    len += put_ids(buf + len, cap - len, s->m.isr, s->m.n_isr);
    len += (size_t)snprintf(buf + len, cap - len, " replicas=");
    len += put_ids(buf + len, cap - len, s->m.replicas, s->m.n_replicas);
    if (s->n_target > 0) {
        SL_ASSERT(s->n_target <= SL_REPL_REPLICAS_MAX);
        len += (size_t)snprintf(buf + len, cap - len, " target=");
        len += put_ids(buf + len, cap - len, s->target, s->n_target);
        if (!s->adding_unknown) { /* (a state read without it is written back without it) */
            SL_ASSERT(s->n_adding < s->m.n_replicas);
            len += (size_t)snprintf(buf + len, cap - len, " adding=");
            len += put_ids(buf + len, cap - len, s->m.replicas + s->m.n_replicas - s->n_adding,
                           s->n_adding);
        }
    } else {
        SL_ASSERT(s->n_adding == 0);
    }
    SL_ASSERT(len < SL_CTRL_STATE_MAX);
    return len;
}

/* Parses a signed decimal (or hex when `hex`) at *p, advancing it. */
static bool parse_num(const char **p, const char *end, bool hex, int64_t *out)
{
    const char *s = *p;
    bool neg = false;
    if (s < end && *s == '-' && !hex) {
        neg = true;
        s++;
    }
    uint64_t v = 0;
    const char *digits = s;
    while (s < end && (s - digits) < 17) {
        int d;
        if (*s >= '0' && *s <= '9') {
            d = *s - '0';
        } else if (hex && *s >= 'a' && *s <= 'f') {
            d = *s - 'a' + 10;
        } else {
            break;
        }
        v = v * (hex ? 16u : 10u) + (uint64_t)d;
        s++;
    }
    if (s == digits || (s < end && *s >= '0' && *s <= '9')) {
        return false;
    }
    *out = neg ? -(int64_t)v : (int64_t)v;
    *p = s;
    return true;
}

static bool parse_key(const char **p, const char *end, const char *key)
{
    size_t n = strlen(key);
    if ((size_t)(end - *p) < n || memcmp(*p, key, n) != 0) {
        return false;
    }
    *p += n;
    return true;
}

/* A list of distinct ids (a replica named twice would break the counts the decisions
 * assert on, e.g. the switch's ISR = the whole target). */
static bool parse_ids(const char **p, const char *end, int32_t *ids, uint32_t *n)
{
    *n = 0;
    for (;;) {
        int64_t v;
        if (*n == SL_REPL_REPLICAS_MAX || !parse_num(p, end, false, &v) || v < 0 || v > INT32_MAX) {
            return false;
        }
        for (uint32_t i = 0; i < *n; i++) {
            if (ids[i] == v) {
                return false;
            }
        }
        ids[(*n)++] = (int32_t)v;
        if (*p == end || **p != ',') {
            return true;
        }
        (*p)++;
    }
}

/* " adding=" ids (none: an empty list): they must be the tail of the replicas, in order,
 * leave at least one replica before them, and each be in the target. */
static bool parse_adding(const char **p, const char *end, struct sl_ctrl_state *s)
{
    int32_t ids[SL_REPL_REPLICAS_MAX];
    uint32_t n = 0;
    if (*p != end && !parse_ids(p, end, ids, &n)) {
        return false;
    }
    if (n >= s->m.n_replicas ||
        memcmp(ids, s->m.replicas + s->m.n_replicas - n, n * sizeof ids[0]) != 0) {
        return false;
    }
    for (uint32_t i = 0; i < n; i++) {
        bool in = false;
        for (uint32_t j = 0; j < s->n_target && !in; j++) {
            in = s->target[j] == ids[i];
        }
        if (!in) {
            return false;
        }
    }
    s->n_adding = n;
    return true;
}

int sl_ctrl_state_decode(const uint8_t *data, size_t len, struct sl_ctrl_state *s)
{
    const char *p = (const char *)data, *end = p + len;
    int64_t leader, epoch, session;
    memset(s, 0, sizeof *s);
    if (!parse_key(&p, end, "leader=") || !parse_num(&p, end, false, &leader) ||
        !parse_key(&p, end, " epoch=") || !parse_num(&p, end, false, &epoch) ||
        !parse_key(&p, end, " session=") || !parse_num(&p, end, true, &session) ||
        !parse_key(&p, end, " isr=") || !parse_ids(&p, end, s->m.isr, &s->m.n_isr) ||
        !parse_key(&p, end, " replicas=") || !parse_ids(&p, end, s->m.replicas, &s->m.n_replicas)) {
        return SL_EPROTO;
    }
    if (p != end && (!parse_key(&p, end, " target=") ||
                     !parse_ids(&p, end, s->target, &s->n_target))) {
        return SL_EPROTO; /* (a state without " target=" has no move in progress) */
    }
    s->adding_unknown = s->n_target > 0 && p == end; /* written before " adding=" existed */
    if (p != end && (!parse_key(&p, end, " adding=") || !parse_adding(&p, end, s) || p != end)) {
        return SL_EPROTO;
    }
    if (leader < SL_REPL_NONE || leader > INT32_MAX || epoch < 0 || epoch > SL_CTRL_EPOCH_MAX) {
        return SL_EPROTO;
    }
    s->m.leader = (int32_t)leader;
    s->m.leader_epoch = (int32_t)epoch;
    s->leader_session = session;
    return SL_OK;
}

/* ---- decisions ---------------------------------------------------------- */

static int live_at(const int32_t *live, uint32_t n, int32_t id)
{
    for (uint32_t i = 0; i < n; i++) {
        if (live[i] == id) {
            return (int)i;
        }
    }
    return -1;
}

static bool ids_has(const int32_t *ids, uint32_t n, int32_t id)
{
    for (uint32_t i = 0; i < n; i++) {
        if (ids[i] == id) {
            return true;
        }
    }
    return false;
}

/* A move whose whole target is in the ISR (dead brokers already out of it) ends: replicas =
 * target, ISR = its members in the target (all of the target: never fewer than it), and a
 * leader that is not in the target hands over to the first target member in the ISR with a
 * new epoch (its followers truncate by epoch as after any election; its pending appends end
 * NOT_LEADER and producers retry idempotently). */
static bool move_switch(struct sl_ctrl_state *next, const int32_t *live, const int64_t *sessions,
                        uint32_t n_live)
{
    if (next->n_target == 0) {
        return false;
    }
    for (uint32_t i = 0; i < next->n_target; i++) {
        if (!ids_has(next->m.isr, next->m.n_isr, next->target[i])) {
            return false; /* still copying: the leader adds it when caught up */
        }
    }
    int32_t isr[SL_REPL_REPLICAS_MAX];
    uint32_t n_isr = 0;
    for (uint32_t i = 0; i < next->m.n_isr; i++) {
        if (ids_has(next->target, next->n_target, next->m.isr[i])) {
            isr[n_isr++] = next->m.isr[i];
        }
    }
    SL_ASSERT(n_isr == next->n_target);
    if (!ids_has(next->target, next->n_target, next->m.leader) &&
        next->m.leader_epoch >= SL_CTRL_EPOCH_MAX) {
        return false; /* no epoch left to hand over with */
    }
    if (!ids_has(next->target, next->n_target, next->m.leader)) {
        int32_t cand = next->target[0]; /* in the ISR, so alive (dead ones left it above) */
        int li = live_at(live, n_live, cand);
        SL_ASSERT(li >= 0);
        next->m.leader = cand;
        next->m.leader_epoch++;
        next->leader_session = sessions[li];
    }
    next->m.n_replicas = next->n_target;
    memcpy(next->m.replicas, next->target, next->n_target * sizeof next->target[0]);
    next->m.n_isr = n_isr;
    memcpy(next->m.isr, isr, n_isr * sizeof isr[0]);
    next->n_target = 0;
    next->n_adding = 0;
    next->adding_unknown = false;
    SL_ASSERT(ids_has(next->m.isr, next->m.n_isr, next->m.leader));
    return true;
}

int sl_ctrl_move_parse(const uint8_t *data, size_t len, int32_t *ids, uint32_t *n, bool *cancel)
{
    const char *p = (const char *)data, *end = p + len;
    *cancel = len == strlen(SL_CTRL_MOVE_CANCEL) && memcmp(data, SL_CTRL_MOVE_CANCEL, len) == 0;
    if (*cancel) {
        *n = 0;
        return SL_OK;
    }
    if (len == 0 || !parse_ids(&p, end, ids, n) || p != end) {
        return SL_EPROTO;
    }
    return SL_OK;
}

int sl_ctrl_move_start(const struct sl_ctrl_state *cur, const int32_t *target, uint32_t n,
                       struct sl_ctrl_state *next, char *why, size_t why_len)
{
    if (n == 0 || n > SL_REPL_REPLICAS_MAX) {
        snprintf(why, why_len, "a shard has 1 to %u replicas; %u named", SL_REPL_REPLICAS_MAX, n);
        return SL_EINVAL;
    }
    for (uint32_t i = 0; i < n; i++) {
        if (target[i] < 0 || ids_has(target, i, target[i])) {
            snprintf(why, why_len, "broker id %" PRId32 " is %s", target[i],
                     target[i] < 0 ? "negative" : "named twice");
            return SL_EINVAL;
        }
    }
    if (cur->n_target > 0) {
        bool same = cur->n_target == n;
        for (uint32_t i = 0; same && i < n; i++) {
            same = cur->target[i] == target[i];
        }
        snprintf(why, why_len, "%s", same ? "this move is in progress already"
                                          : "another move of this shard is in progress: wait "
                                            "for it to end (sluice cluster status shows it)");
        return same ? SL_EEXIST : SL_ECONFLICT;
    }
    *next = *cur;
    for (uint32_t i = 0; i < n; i++) {
        if (ids_has(next->m.replicas, next->m.n_replicas, target[i])) {
            continue;
        }
        if (next->m.n_replicas == SL_REPL_REPLICAS_MAX) {
            snprintf(why, why_len, "the old and the new replicas together would be more than %u "
                     "(both hold the shard while it moves): move it in two steps",
                     SL_REPL_REPLICAS_MAX);
            return SL_EINVAL;
        }
        next->m.replicas[next->m.n_replicas++] = target[i];
    }
    next->n_target = n;
    memcpy(next->target, target, n * sizeof target[0]);
    next->n_adding = next->m.n_replicas - cur->m.n_replicas;
    next->adding_unknown = false;
    SL_ASSERT(next->n_adding < next->m.n_replicas);
    return SL_OK;
}

/* The election's rule (sl_ctrl_decide, sl_ctrl_move_cancel): the first of replicas[0, n)
 * (the preferred order) that is in isr[0, n_isr), whose members are all alive; or
 * SL_REPL_NONE. */
static int32_t elect(const int32_t *replicas, uint32_t n, const int32_t *isr, uint32_t n_isr)
{
    for (uint32_t i = 0; i < n; i++) {
        if (ids_has(isr, n_isr, replicas[i])) {
            return replicas[i];
        }
    }
    return SL_REPL_NONE;
}

int sl_ctrl_move_cancel(const struct sl_ctrl_state *cur, const int32_t *live,
                        const int64_t *sessions, uint32_t n_live, struct sl_ctrl_state *next,
                        char *why, size_t why_len)
{
    if (cur->n_target == 0) {
        snprintf(why, why_len, "no move of this shard is in progress: nothing to cancel");
        return SL_ENOTFOUND;
    }
    if (cur->adding_unknown) {
        snprintf(why, why_len, "this move was started by a broker older than cancelling (its "
                 "state does not say which replicas it adds): it can only go on to its end");
        return SL_EINVAL;
    }
    SL_ASSERT(cur->n_adding < cur->m.n_replicas);
    *next = *cur;
    next->m.n_replicas = cur->m.n_replicas - cur->n_adding; /* the old set: a prefix */
    next->n_target = 0;
    next->n_adding = 0;
    memset(next->target, 0, sizeof next->target);
    /* ISR = its members of the old set: every acknowledged record is on every ISR member */
    next->m.n_isr = 0;
    for (uint32_t i = 0; i < cur->m.n_isr; i++) {
        if (ids_has(next->m.replicas, next->m.n_replicas, cur->m.isr[i]) || CANCEL_MUTATION(6)) {
            next->m.isr[next->m.n_isr++] = cur->m.isr[i];
        }
    }
    int li = cur->m.leader >= 0 ? live_at(live, n_live, cur->m.leader) : -1;
    if (li >= 0 && sessions[li] == cur->leader_session &&
        ids_has(next->m.isr, next->m.n_isr, cur->m.leader)) {
        return SL_OK; /* an old replica leads: it stays, same epoch, and drops the added peers */
    }
    /* an added replica leads (or a dead leader): elect among the old set's live ISR */
    int32_t isr_live[SL_REPL_REPLICAS_MAX];
    uint32_t n_isr_live = 0;
    for (uint32_t i = 0; i < next->m.n_isr; i++) {
        if (live_at(live, n_live, next->m.isr[i]) >= 0) {
            isr_live[n_isr_live++] = next->m.isr[i];
        }
    }
    int32_t cand = elect(next->m.replicas, next->m.n_replicas, isr_live, n_isr_live);
    if (cur->m.leader_epoch >= SL_CTRL_EPOCH_MAX) {
        snprintf(why, why_len, "the shard's leader epoch is at its maximum: no election");
        return SL_EINVAL;
    }
    if (cand == SL_REPL_NONE) {
        snprintf(why, why_len, "no replica of the set before the move is alive and in sync "
                 "(%s): cancelling would leave only copies that may miss acknowledged records; "
                 "the move can go on, or cancel once an old replica is back in the ISR",
                 next->m.n_isr == 0 ? "the ISR holds only added replicas" : "those in it are down");
        return SL_EINVAL;
    }
    next->m.n_isr = n_isr_live;
    memcpy(next->m.isr, isr_live, n_isr_live * sizeof isr_live[0]);
    next->m.leader = cand;
    next->m.leader_epoch = cur->m.leader_epoch + (CANCEL_MUTATION(7) ? 0 : 1);
    next->leader_session = sessions[live_at(live, n_live, cand)];
    SL_ASSERT(ids_has(next->m.isr, next->m.n_isr, cand));
    return SL_OK;
}

bool sl_ctrl_decide(const struct sl_ctrl_state *cur, const int32_t *live, const int64_t *sessions,
                    uint32_t n_live, bool unclean, struct sl_ctrl_state *next)
{
    const struct sl_repl_meta *m = &cur->m;
    *next = *cur;
    int li = m->leader >= 0 ? live_at(live, n_live, m->leader) : -1;
    bool leader_ok = li >= 0 && sessions[li] == cur->leader_session;
    /* the ISR without dead brokers (the leader stays in it while it leads) */
    next->m.n_isr = 0;
    for (uint32_t i = 0; i < m->n_isr; i++) {
        if (live_at(live, n_live, m->isr[i]) >= 0) {
            next->m.isr[next->m.n_isr++] = m->isr[i];
        }
    }
    if (leader_ok) {
        if (move_switch(next, live, sessions, n_live)) {
            return true;
        }
        if (next->m.n_isr == m->n_isr) {
            return false;
        }
        return true; /* same leader and epoch, dead followers out of the ISR */
    }
    int32_t cand = elect(m->replicas, m->n_replicas, next->m.isr, next->m.n_isr);
    if (cand < 0 && unclean) {
        for (uint32_t i = 0; i < m->n_replicas && cand < 0; i++) {
            if (live_at(live, n_live, m->replicas[i]) >= 0) {
                cand = m->replicas[i];
                next->m.n_isr = 1;
                next->m.isr[0] = cand; /* it alone is in sync with itself now */
            }
        }
    }
    if (m->leader_epoch >= SL_CTRL_EPOCH_MAX) {
        *next = *cur;
        return false; /* no epoch left to elect or fence with */
    }
    if (cand < 0) {
        if (m->leader == SL_REPL_NONE) {
            *next = *cur;
            return false; /* offline already: wait for an ISR member */
        }
        /* offline: fence the old leader with a new epoch, keep the last ISR so one of its
         * members is elected when it returns (no unclean election) */
        next->m = *m;
        next->m.leader = SL_REPL_NONE;
        next->m.leader_epoch = m->leader_epoch + 1;
        next->leader_session = 0;
        return true;
    }
    next->m.leader = cand;
    next->m.leader_epoch = m->leader_epoch + 1;
    next->leader_session = sessions[live_at(live, n_live, cand)];
    SL_ASSERT(ids_has(next->m.isr, next->m.n_isr, cand));
    return true;
}

void sl_ctrl_place(const int32_t *brokers, uint32_t n, uint32_t rf, uint64_t h, uint32_t k,
                   int32_t *out)
{
    SL_ASSERT(rf >= 1 && rf <= n && rf <= SL_REPL_REPLICAS_MAX);
    uint32_t start = (uint32_t)((h + k) % n);
    /* a second shift by k / n varies the followers of shards sharing a leader */
    uint32_t step = 1 + (uint32_t)((h / n + k / n) % (n > rf ? n - rf + 1 : 1));
    for (uint32_t i = 0; i < rf; i++) {
        out[i] = brokers[(start + (i == 0 ? 0 : (step + i - 1))) % n];
    }
    for (uint32_t i = 0; i < rf; i++) {
        for (uint32_t j = 0; j < i; j++) {
            SL_ASSERT(out[i] != out[j]);
        }
    }
}
