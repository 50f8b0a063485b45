/* controller_move.c - reassignment by the controller (docs/REPLICATION.md, "Reassignment"):
 * requests in /reassign, the move started in the shard's state, moving shards re-read until
 * sl_ctrl_decide switches them.
 *
 * A request is a persistent node /reassign/<stream>:<k> whose data is the target replica
 * list ("1,2,4"), created by any broker (sl_replicas_reassign, after checking what it can).
 * The controller lists /reassign with a watch, reads each request and applies it in one
 * multi(check /controller_epoch, set the shard's state @ the version read, remove the
 * request): the move starts, or the request goes, but never one without the other, and a
 * deposed controller changes nothing. A request the state refuses (sl_ctrl_move_start: a
 * different move in progress, too many replicas) is removed the same way, counted in
 * moves_refused. A request for a shard the controller has not loaded yet stays until it has.
 *
 * A request whose data is SL_CTRL_MOVE_CANCEL ("cancel") undoes the move in progress the same
 * way, in the same multi (sl_ctrl_move_cancel: back to the replicas before it, the ISR cut to
 * them, an added leader replaced by an election); one the state refuses (no move in
 * progress - it may have switched meanwhile -, a state written before cancelling existed,
 * no old replica alive in the ISR) is removed and counted in moves_refused. The shard is
 * then decided again as after any write of it.
 *
 * Invariants: at most SL_CTRL_MOVES_INFLIGHT_MAX requests read or applied at once; a shard is
 * in one multi at a time (busy), as for every controller write; a moving shard is in move_q
 * and re-read every SL_CTRL_MOVE_POLL_TICKS ticks (the leader's ISR writes are not watched),
 * which is how the switch follows the last new replica joining the ISR; after a controller
 * failover the new controller finds the moves in the states it reads and goes on.
 */
#include "broker/cluster/controller_int.h"

#include "common/assert.h"
#include "common/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct move_req {
    struct sl_ctrl *c;
    char node[SL_CTRL_NAME_MAX]; /* "<stream>:<k>" */
    long shard;                  /* index while its multi is in flight, else -1 */
    bool cancel;                 /* the request cancels the move in progress */
    bool write;                  /* its multi sets the shard's state (else only checks it) */
    bool refused;                /* removed unapplied: counted in moves_refused once gone */
};

/* "<stream>:<k>" -> "<stream>/<k>" (stream names have no ':'). */
static bool shard_name(const char *node, char *out, size_t cap)
{
    const char *colon = strrchr(node, ':');
    if (colon == NULL || colon == node || colon[1] == '\0' ||
        strspn(colon + 1, "0123456789") != strlen(colon + 1)) {
        return false;
    }
    return (size_t)snprintf(out, cap, "%.*s/%s", (int)(colon - node), node, colon + 1) < cap;
}

static void req_end(struct move_req *q)
{
    struct sl_ctrl *c = q->c;
    SL_ASSERT(c->moves_inflight > 0);
    c->moves_inflight--;
    free(q);
}

static void on_applied(void *arg, int err, int failed_op)
{
    struct move_req *q = arg;
    struct sl_ctrl *c = q->c;
    long i = q->shard;
    bool cancel = q->cancel, write = q->write, refused = q->refused;
    req_end(q);
    if (c->phase != SL_CTRL_ACTIVE) {
        return;
    }
    if (err == SL_ECLOSED || (err == SL_ECONFLICT && failed_op == 0)) {
        sl_ctrl_go_dead(c); /* deposed */
        return;
    }
    if (err == SL_OK && refused) {
        c->stats.moves_refused++;
    }
    if (i >= 0) {
        struct ctrl_shard *s = c->shards[i];
        s->busy = false;
        if (err == SL_OK && !write) {
            /* refused by the state as read, which the store still holds: nothing changed */
        } else if (err == SL_OK) {
            if (cancel) {
                c->stats.moves_cancelled++;
            } else {
                c->stats.moves_started++;
            }
            s->st = s->next;
            s->st.m.version = s->next.m.version + 1;
            sl_ctrl_move_note(c, (uint32_t)i);
            sl_ctrl_mark_dirty(c, (uint32_t)i);
        } else {
            sl_ctrl_mark_read(c, (uint32_t)i); /* changed under us, or unknown */
        }
    }
    if (err != SL_OK) {
        c->moves_relist = true; /* the request may still be there: read it again */
    }
    sl_ctrl_pump(c);
}

/* One multi: check the epoch, the shard's new state when `s` and `write` (else, with `s`,
 * a check that its state is still the one the refusal was decided on: a state read before
 * the leader's last ISR write, or a switch, is read again and the request decided again),
 * remove the request. */
static void apply(struct move_req *q, struct ctrl_shard *s, long i, bool write)
{
    struct sl_ctrl *c = q->c;
    char rpath[SL_META_PATH_MAX], spath[SL_META_PATH_MAX], data[SL_CTRL_STATE_MAX];
    struct sl_meta_op ops[3];
    size_t n = 0;
    ops[n++] = (struct sl_meta_op){
        .type = SL_META_OP_CHECK, .path = PATH_EPOCH, .version = c->epoch_version};
    if (s != NULL) {
        snprintf(spath, sizeof spath, PATH_SHARDS "/%s", s->name);
        size_t len = write ? sl_ctrl_state_encode(&s->next, data, sizeof data) : 0;
        ops[n++] = (struct sl_meta_op){.type = write ? SL_META_OP_SET : SL_META_OP_CHECK,
                                       .path = spath,
                                       .data = write ? (const uint8_t *)data : NULL,
                                       .len = len,
                                       .version = s->st.m.version};
        s->busy = true;
    }
    q->write = s != NULL && write;
    snprintf(rpath, sizeof rpath, PATH_REASSIGN "/%s", q->node);
    ops[n++] = (struct sl_meta_op){.type = SL_META_OP_REMOVE, .path = rpath, .version = -1};
    q->shard = s != NULL ? i : -1;
    if (sl_meta_multi(c->meta, ops, n, on_applied, q) != SL_OK) {
        if (s != NULL) {
            s->busy = false;
        }
        c->moves_relist = true; /* the store is at its bound: the next tick */
        req_end(q);
    }
}

/* Every stream listed and every shard read: a shard not found now does not exist (a request
 * for it would otherwise be read again at every tick, for ever). */
static bool loaded_all(const struct sl_ctrl *c)
{
    if (c->list_q.n > 0 || c->stream_lists > 0 || c->streams_relist || c->read_q.n > 0 ||
        c->reads_inflight > 0) {
        return false;
    }
    for (size_t i = 0; i < c->n_shards; i++) {
        if (!c->shards[i]->loaded && !c->shards[i]->gone) {
            return false;
        }
    }
    return true;
}

static void on_request(void *arg, int err, const uint8_t *data, size_t len,
                       const struct sl_meta_stat *stat)
{
    (void)stat;
    struct move_req *q = arg;
    struct sl_ctrl *c = q->c;
    if (c->phase != SL_CTRL_ACTIVE) {
        req_end(q);
        return;
    }
    if (err == SL_ECLOSED) {
        req_end(q);
        sl_ctrl_go_dead(c);
        return;
    }
    if (err == SL_ENOTFOUND) {
        req_end(q); /* applied meanwhile (by us, or a predecessor) */
        return;
    }
    char name[SL_CTRL_NAME_MAX];
    int32_t target[SL_REPL_REPLICAS_MAX];
    uint32_t n = 0;
    bool cancel = false;
    if (err != SL_OK) {
        c->moves_relist = true;
        req_end(q);
        return;
    }
    if (!shard_name(q->node, name, sizeof name) ||
        sl_ctrl_move_parse(data, len, target, &n, &cancel) != SL_OK) {
        q->refused = true;
        apply(q, NULL, -1, false); /* not a request we can read: removed (the broker checked it) */
        return;
    }
    long i = sl_ctrl_find(c, name);
    struct ctrl_shard *s = i >= 0 ? c->shards[i] : NULL;
    if ((s == NULL || s->gone) && loaded_all(c)) {
        q->refused = true;
        apply(q, NULL, -1, false); /* every shard is listed and read: no such shard */
        return;
    }
    if (s == NULL || !s->loaded || s->busy || s->in_read_q || s->gone ||
        (cancel && !c->brokers_known)) { /* (a cancel may elect: it needs the live brokers) */
        c->moves_relist = true; /* not known yet, or being written: at a later tick */
        req_end(q);
        return;
    }
    char why[256];
    q->cancel = cancel;
    int rc = cancel ? sl_ctrl_move_cancel(&s->st, c->live, c->session, c->n_live, &s->next, why,
                                          sizeof why)
                    : sl_ctrl_move_start(&s->st, target, n, &s->next, why, sizeof why);
    q->refused = rc != SL_OK && rc != SL_EEXIST;
    apply(q, s, i, rc == SL_OK);
}

static void on_requests(void *arg, int err, const char *const *names, size_t n)
{
    struct sl_ctrl *c = arg;
    if (!sl_ctrl_listed(c, err, &c->moves_listing, &c->moves_relist)) {
        return;
    }
    for (size_t k = 0; k < n; k++) {
        if (c->moves_inflight >= SL_CTRL_MOVES_INFLIGHT_MAX) {
            c->moves_relist = true; /* the rest at a later tick */
            break;
        }
        if (strlen(names[k]) >= SL_CTRL_NAME_MAX) {
            continue;
        }
        struct move_req *q = calloc(1, sizeof *q);
        if (q == NULL) {
            c->moves_relist = true;
            break;
        }
        q->c = c;
        q->shard = -1;
        snprintf(q->node, sizeof q->node, "%s", names[k]);
        char p[SL_META_PATH_MAX];
        snprintf(p, sizeof p, PATH_REASSIGN "/%s", names[k]);
        if (sl_meta_get(c->meta, p, NULL, NULL, on_request, q) != SL_OK) {
            free(q);
            c->moves_relist = true;
            break;
        }
        c->moves_inflight++;
    }
}

void sl_ctrl_moves_watch(void *arg, const char *path)
{
    (void)path;
    struct sl_ctrl *c = arg;
    if (c->phase != SL_CTRL_ACTIVE) {
        return;
    }
    /* One listing at a time, and none while requests are in flight: a request listed twice
     * would be applied twice (the second finds the move in progress: harmless, but a
     * different later request for the shard would be refused for nothing). */
    if (c->moves_listing || c->moves_inflight > 0) {
        c->moves_relist = true;
        return;
    }
    if (sl_meta_children(c->meta, PATH_REASSIGN, sl_ctrl_moves_watch, c, on_requests, c) == SL_OK) {
        c->moves_listing = true;
        c->moves_relist = false;
    } else {
        c->moves_relist = true;
    }
}

void sl_ctrl_move_note(struct sl_ctrl *c, uint32_t i)
{
    struct ctrl_shard *s = c->shards[i];
    if (s->st.n_target > 0 && !s->in_move_q && sl_ctrl_vec_push(&c->move_q, i)) {
        s->in_move_q = true;
    }
}

void sl_ctrl_moves_tick(struct sl_ctrl *c)
{
    if (c->moves_relist) {
        sl_ctrl_moves_watch(c, NULL);
    }
    if (++c->move_ticks < SL_CTRL_MOVE_POLL_TICKS) {
        return;
    }
    c->move_ticks = 0;
    /* re-read the moving shards, dropping those whose move ended */
    struct ctrl_vec *q = &c->move_q;
    size_t kept = 0;
    for (size_t k = 0; k < q->n; k++) {
        uint32_t i = q->v[q->head + k];
        struct ctrl_shard *s = c->shards[i];
        if (s->st.n_target == 0 || s->gone) {
            s->in_move_q = false;
            continue;
        }
        q->v[q->head + kept++] = i;
        if (!s->busy) {
            sl_ctrl_mark_read(c, i);
        }
    }
    q->n = kept;
    if (q->n == 0) {
        q->head = 0;
    }
}
