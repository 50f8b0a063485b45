/* controller.c - controller election and per-shard leader elections (controller.h).
 *
 * Metadata layout (docs/REPLICATION.md, "Metadata layout"):
 *   /controller          ephemeral, data: the controller's broker id (decimal)
 *   /controller_epoch    persistent, data: the epoch (decimal); its version fences writes
 *   /brokers/ids/<id>    ephemeral, one per live broker (registered by the broker itself)
 *   /shards/<stream>/<k> persistent, data: the shard state (sl_ctrl_state_encode)
 *
 * Invariants:
 * - Every write is multi(check /controller_epoch @ epoch_version, ...): a controller whose
 *   epoch was bumped by a successor cannot change anything (KAFKA-6082).
 * - A shard is in at most one multi at a time (busy), and is written only at the version it
 *   was read at; a conflict re-reads it, an unknown outcome (SL_EAGAIN) re-reads every shard
 *   of the multi before deciding again.
 * - A leader is elected from the ISR only, unless unclean election is configured; every
 *   election bumps leader_epoch; a broker that restarted (new session) is re-elected with a
 *   new epoch, since it may have lost the unsynced tail of the epoch it led.
 * - Memory: one entry per shard and per stream (names), queues of shard indexes; reads and
 *   multis outstanding are bounded by SL_CTRL_READS_INFLIGHT_MAX / _MULTIS_INFLIGHT_MAX.
 */
#include "broker/cluster/controller.h"

#include "common/assert.h"
#include "common/error.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/cluster/controller_int.h"

static void pump(struct sl_ctrl *c);
static void campaign(struct sl_ctrl *c);

int sl_ctrl_live_at(const int32_t *live, uint32_t n, int32_t id)
{
    for (uint32_t i = 0; i < n; i++) {
        if (live[i] == id) {
            return (int)i;
        }
    }
    return -1;
}

/* The whole of data[0, len) as a decimal in [0, INT32_MAX) (the controller epoch). */
static bool parse_epoch(const uint8_t *data, size_t len, int64_t *out)
{
    int64_t v = 0;
    if (len == 0 || len > 10) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (data[i] < '0' || data[i] > '9') {
            return false;
        }
        v = v * 10 + (data[i] - '0');
    }
    *out = v;
    return v < INT32_MAX;
}

/* ---- containers --------------------------------------------------------- */

static bool vec_push(struct ctrl_vec *q, uint32_t x)
{
    /* Slide the entries down only when at least half the array is free at the front, else
     * grow: each entry moves O(1) times (sliding on every push of a full FIFO was quadratic
     * and hung the 100,000-shard failover). */
    if (q->head + q->n == q->cap && q->head >= q->cap / 2 && q->head > 0) {
        memmove(q->v, q->v + q->head, q->n * sizeof q->v[0]);
        q->head = 0;
    }
    if (q->head + q->n == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 1024;
        uint32_t *v = realloc(q->v, cap * sizeof *v);
        if (v == NULL) {
            return false;
        }
        q->v = v;
        q->cap = cap;
    }
    q->v[q->head + q->n++] = x;
    return true;
}

static uint32_t vec_pop(struct ctrl_vec *q)
{
    SL_ASSERT(q->n > 0);
    uint32_t x = q->v[q->head];
    q->n--;
    q->head = q->n == 0 ? 0 : q->head + 1;
    return x;
}

uint64_t sl_ctrl_hash_name(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) {
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    }
    return h;
}

static long shard_find(const struct sl_ctrl *c, const char *name)
{
    if (c->index_cap == 0) {
        return -1;
    }
    for (size_t i = sl_ctrl_hash_name(name) & (c->index_cap - 1);;
         i = (i + 1) & (c->index_cap - 1)) {
        if (c->index[i] == 0) {
            return -1;
        }
        if (strcmp(c->shards[c->index[i] - 1]->name, name) == 0) {
            return (long)c->index[i] - 1;
        }
    }
}

static bool index_grow(struct sl_ctrl *c)
{
    size_t cap = c->index_cap ? c->index_cap * 2 : 1024;
    uint32_t *idx = calloc(cap, sizeof *idx);
    if (idx == NULL) {
        return false;
    }
    for (size_t s = 0; s < c->n_shards; s++) {
        size_t i = sl_ctrl_hash_name(c->shards[s]->name) & (cap - 1);
        while (idx[i] != 0) {
            i = (i + 1) & (cap - 1);
        }
        idx[i] = (uint32_t)s + 1;
    }
    free(c->index);
    c->index = idx;
    c->index_cap = cap;
    return true;
}

static long shard_add(struct sl_ctrl *c, const char *name)
{
    if ((c->n_shards + 1) * 2 > c->index_cap && !index_grow(c)) {
        return -1;
    }
    if (c->n_shards == c->cap_shards) {
        size_t cap = c->cap_shards ? c->cap_shards * 2 : 1024;
        struct ctrl_shard **v = realloc(c->shards, cap * sizeof *v);
        if (v == NULL) {
            return -1;
        }
        c->shards = v;
        c->cap_shards = cap;
    }
    struct ctrl_shard *s = calloc(1, sizeof *s);
    if (s == NULL) {
        return -1;
    }
    s->c = c;
    snprintf(s->name, sizeof s->name, "%s", name);
    c->shards[c->n_shards] = s;
    size_t i = sl_ctrl_hash_name(name) & (c->index_cap - 1);
    while (c->index[i] != 0) {
        i = (i + 1) & (c->index_cap - 1);
    }
    c->index[i] = (uint32_t)c->n_shards + 1;
    return (long)c->n_shards++;
}

static void mark_read(struct sl_ctrl *c, uint32_t i)
{
    struct ctrl_shard *s = c->shards[i];
    if (!s->in_read_q && !s->gone && vec_push(&c->read_q, i)) {
        s->in_read_q = true;
    }
}

static void mark_dirty(struct sl_ctrl *c, uint32_t i)
{
    struct ctrl_shard *s = c->shards[i];
    if (!s->in_dirty_q && !s->gone && vec_push(&c->dirty_q, i)) {
        s->in_dirty_q = true;
    }
}

static void go_dead(struct sl_ctrl *c)
{
    c->phase = SL_CTRL_DEAD;
}

/* ---- shards: discovery and reads ----------------------------------------- */

static void on_shard_read(void *arg, int err, const uint8_t *data, size_t len,
                          const struct sl_meta_stat *stat)
{
    struct ctrl_shard *s = arg;
    struct sl_ctrl *c = s->c;
    SL_ASSERT(c->reads_inflight > 0);
    c->reads_inflight--;
    if (c->phase != SL_CTRL_ACTIVE) {
        return;
    }
    uint32_t i = (uint32_t)shard_find(c, s->name);
    if (err == SL_ECLOSED) {
        go_dead(c);
        return;
    }
    if (err == SL_ENOTFOUND) {
        s->gone = true; /* the stream was deleted */
    } else if (err != SL_OK) {
        mark_read(c, i); /* unknown: read again */
    } else {
        struct sl_ctrl_state st;
        if (sl_ctrl_state_decode(data, len, &st) != SL_OK) {
            s->gone = true; /* not ours to fix: left alone (and counted) */
        } else if (!s->loaded || stat->version >= s->st.m.version || stat->czxid != s->czxid) {
            st.m.version = stat->version;
            s->czxid = stat->czxid;
            s->st = st;
            s->loaded = true;
            sl_ctrl_move_note(c, i);
            mark_dirty(c, i);
        }
    }
    pump(c);
}

static void on_stream_children(void *arg, int err, const char *const *names, size_t n);

static void stream_watch(void *arg, const char *path);

/* Lists queued streams, SL_CTRL_LISTS_INFLIGHT_MAX at a time (a failover lists every
 * stream at once otherwise, past the store's bound on calls). */
static void lists_some(struct sl_ctrl *c)
{
    while (c->list_q.n > 0 && c->stream_lists < SL_CTRL_LISTS_INFLIGHT_MAX) {
        struct ctrl_stream *st = c->streams[c->list_q.v[c->list_q.head]];
        char p[SL_META_PATH_MAX];
        snprintf(p, sizeof p, PATH_SHARDS "/%s", st->name);
        if (sl_meta_children(c->meta, p, stream_watch, st, on_stream_children, st) != SL_OK) {
            return; /* the store is at its bound: the next pump or tick tries again */
        }
        vec_pop(&c->list_q);
        st->queued = false;
        c->stream_lists++;
    }
}

static void stream_watch(void *arg, const char *path)
{
    (void)path;
    struct ctrl_stream *st = arg;
    struct sl_ctrl *c = st->c;
    if (c->phase == SL_CTRL_ACTIVE && !st->queued && vec_push(&c->list_q, st->index)) {
        st->queued = true;
        lists_some(c);
    }
}

static void on_stream_children(void *arg, int err, const char *const *names, size_t n)
{
    struct ctrl_stream *st = arg;
    struct sl_ctrl *c = st->c;
    SL_ASSERT(c->stream_lists > 0);
    c->stream_lists--;
    if (c->phase != SL_CTRL_ACTIVE) {
        return;
    }
    if (err == SL_ECLOSED) {
        go_dead(c);
        return;
    }
    if (err == SL_EAGAIN) {
        stream_watch(st, NULL);
        return;
    }
    /* deleted: listed again should /shards list the name again (made anew, on_streams) */
    st->missing = err == SL_ENOTFOUND;
    for (size_t k = 0; err == SL_OK && k < n; k++) {
        char name[SL_CTRL_NAME_MAX];
        if ((size_t)snprintf(name, sizeof name, "%s/%s", st->name, names[k]) >= sizeof name) {
            continue;
        }
        long i = shard_find(c, name);
        if (i < 0) {
            i = shard_add(c, name);
        } else if (c->shards[i]->gone) {
            c->shards[i]->gone = false; /* (its stream deleted, then made again) */
            c->shards[i]->loaded = false;
        }
        if (i >= 0) {
            mark_read(c, (uint32_t)i);
        }
    }
    pump(c);
}

static void on_streams(void *arg, int err, const char *const *names, size_t n);

static void streams_watch(void *arg, const char *path)
{
    (void)path;
    struct sl_ctrl *c = arg;
    if (c->phase != SL_CTRL_ACTIVE) {
        return;
    }
    if (sl_meta_children(c->meta, PATH_SHARDS, streams_watch, c, on_streams, c) == SL_OK) {
        c->stream_lists++;
    } else {
        c->streams_relist = true;
    }
}

static void on_streams(void *arg, int err, const char *const *names, size_t n)
{
    struct sl_ctrl *c = arg;
    SL_ASSERT(c->stream_lists > 0);
    c->stream_lists--;
    if (c->phase != SL_CTRL_ACTIVE) {
        return;
    }
    if (err == SL_ECLOSED) {
        go_dead(c);
        return;
    }
    if (err != SL_OK) {
        streams_watch(c, NULL); /* /shards missing (created below) or unknown: list again */
        return;
    }
    for (size_t k = 0; k < n; k++) {
        struct ctrl_stream *known = NULL;
        for (size_t j = 0; j < c->n_streams && known == NULL; j++) {
            known = strcmp(c->streams[j]->name, names[k]) == 0 ? c->streams[j] : NULL;
        }
        if (known != NULL && known->missing) {
            known->missing = false; /* deleted, and made again since: its shards anew */
            stream_watch(known, NULL);
        }
        if (known != NULL || strlen(names[k]) >= SL_CTRL_NAME_MAX / 2) {
            continue;
        }
        if (c->n_streams == c->cap_streams) {
            size_t cap = c->cap_streams ? c->cap_streams * 2 : 64;
            struct ctrl_stream **v = realloc(c->streams, cap * sizeof *v);
            if (v == NULL) {
                continue;
            }
            c->streams = v;
            c->cap_streams = cap;
        }
        struct ctrl_stream *st = calloc(1, sizeof *st);
        if (st == NULL) {
            continue;
        }
        st->c = c;
        snprintf(st->name, sizeof st->name, "%s", names[k]);
        st->index = (uint32_t)c->n_streams;
        c->streams[c->n_streams++] = st;
        stream_watch(st, NULL);
    }
}

/* ---- brokers ------------------------------------------------------------ */

static void on_brokers(void *arg, int err, const char *const *names, size_t n);

static void brokers_watch(void *arg, const char *path)
{
    (void)path;
    struct sl_ctrl *c = arg;
    if (c->phase != SL_CTRL_ACTIVE) {
        return;
    }
    if (c->listing) {
        c->relist = true; /* one listing at a time; this change is seen by the next */
        return;
    }
    if (sl_meta_children(c->meta, PATH_BROKERS, brokers_watch, c, on_brokers, c) == SL_OK) {
        c->listing = true;
    } else {
        c->relist = true; /* the store is at its bound: sl_ctrl_tick lists again */
    }
}

/* Every broker's session is known: install the new set and re-decide every shard. */
static void brokers_install(struct sl_ctrl *c)
{
    c->n_live = c->pend_n;
    memcpy(c->live, c->pend_id, c->pend_n * sizeof c->live[0]);
    memcpy(c->session, c->pend_session, c->pend_n * sizeof c->session[0]);
    c->brokers_known = true;
    c->listing = false;
    for (size_t i = 0; i < c->n_shards; i++) {
        if (c->shards[i]->loaded) {
            mark_dirty(c, (uint32_t)i);
        }
    }
    if (c->relist) {
        c->relist = false;
        brokers_watch(c, NULL);
    }
    pump(c);
}

struct broker_get {
    struct sl_ctrl *c;
    int32_t id;
};

static void on_broker(void *arg, int err, const uint8_t *data, size_t len,
                      const struct sl_meta_stat *stat);

/* Reads the listed brokers' nodes, SL_CTRL_BROKER_READS_MAX at a time. A listing is
 * installed only when every read answered: a broker whose read failed is not dead, and
 * taking it for dead would move its leaderships for nothing. */
static void brokers_next(struct sl_ctrl *c)
{
    while (!c->list_failed && c->todo_next < c->todo_n &&
           c->pend_waiting < SL_CTRL_BROKER_READS_MAX) {
        struct broker_get *g = malloc(sizeof *g);
        char p[SL_META_PATH_MAX];
        int32_t id = c->todo_id[c->todo_next];
        snprintf(p, sizeof p, PATH_BROKERS "/%" PRId32, id);
        if (g != NULL) {
            *g = (struct broker_get){c, id};
        }
        if (g == NULL || sl_meta_get(c->meta, p, NULL, NULL, on_broker, g) != SL_OK) {
            free(g);
            c->list_failed = true;
            break;
        }
        c->todo_next++;
        c->pend_waiting++;
    }
    if (c->pend_waiting > 0 || (!c->list_failed && c->todo_next < c->todo_n)) {
        return;
    }
    if (c->list_failed) {
        c->listing = false;
        c->relist = true; /* sl_ctrl_tick lists again */
        return;
    }
    brokers_install(c);
}

static void on_broker(void *arg, int err, const uint8_t *data, size_t len,
                      const struct sl_meta_stat *stat)
{
    (void)data;
    (void)len;
    struct broker_get *g = arg;
    struct sl_ctrl *c = g->c;
    int32_t id = g->id;
    free(g);
    SL_ASSERT(c->pend_waiting > 0);
    c->pend_waiting--;
    if (c->phase != SL_CTRL_ACTIVE) {
        return;
    }
    if (err == SL_ECLOSED) {
        go_dead(c);
        return;
    }
    if (err == SL_OK && stat->ephemeral_owner != 0 && c->pend_n < SL_CTRL_BROKERS_MAX) {
        c->pend_id[c->pend_n] = id;
        c->pend_session[c->pend_n++] = stat->ephemeral_owner;
    } else if (err != SL_OK && err != SL_ENOTFOUND) {
        c->list_failed = true; /* unknown: judged by the next listing, not taken as dead */
    }
    brokers_next(c);
}

static void on_brokers(void *arg, int err, const char *const *names, size_t n)
{
    struct sl_ctrl *c = arg;
    if (c->phase != SL_CTRL_ACTIVE) {
        return;
    }
    if (err == SL_ECLOSED) {
        go_dead(c);
        return;
    }
    if (err != SL_OK) {
        c->listing = false;
        c->relist = true; /* sl_ctrl_tick lists again (the watch was not set) */
        return;
    }
    c->pend_n = c->pend_waiting = 0;
    c->todo_n = c->todo_next = 0;
    c->list_failed = false;
    for (size_t k = 0; k < n && c->todo_n < SL_CTRL_BROKERS_MAX; k++) {
        char *end;
        long id = strtol(names[k], &end, 10);
        if (*end == '\0' && id >= 0 && id <= INT32_MAX) {
            c->todo_id[c->todo_n++] = (int32_t)id;
        }
    }
    brokers_next(c);
}

/* ---- writes ------------------------------------------------------------- */

static void on_multi(void *arg, int err, int failed_op)
{
    struct ctrl_multi *mu = arg;
    struct sl_ctrl *c = mu->c;
    SL_ASSERT(mu->used && c->multis_inflight > 0);
    mu->used = false;
    c->multis_inflight--;
    if (c->phase != SL_CTRL_ACTIVE) {
        return;
    }
    if (err == SL_ECLOSED || (err == SL_ECONFLICT && failed_op == 0)) {
        go_dead(c); /* session gone, or a successor bumped the epoch: deposed */
        return;
    }
    if (err == SL_OK) {
        c->stats.multis_ok++;
    } else {
        c->stats.multis_failed++;
    }
    for (uint32_t k = 0; k < mu->n; k++) {
        uint32_t i = mu->shard[k];
        struct ctrl_shard *s = c->shards[i];
        s->busy = false;
        if (err == SL_OK) {
            if (s->next.m.leader_epoch != s->st.m.leader_epoch) {
                c->stats.elections++;
            }
            if (s->st.n_target > 0 && s->next.n_target == 0) {
                c->stats.moves_done++;
            }
            s->st = s->next;
            s->st.m.version = s->next.m.version + 1;
            c->stats.shards_written++;
            sl_ctrl_move_note(c, i);
            mark_dirty(c, i); /* brokers may have changed meanwhile */
        } else if (err == SL_ECONFLICT && failed_op != (int)k + 1) {
            mark_dirty(c, i); /* not applied because of another shard: decide again */
        } else {
            mark_read(c, i); /* changed under us, or unknown: read before deciding */
        }
    }
    pump(c);
}

/* Fills multis from the dirty queue: one check + up to SL_META_MULTI_MAX - 1 sets. */
static void write_some(struct sl_ctrl *c)
{
    while (c->dirty_q.n > 0 && c->multis_inflight < SL_CTRL_MULTIS_INFLIGHT_MAX) {
        /* A partial multi waits while others are in flight and reads still feed the queue:
         * full multis are what makes a failover of many shards fast. */
        bool feeding = c->reads_inflight > 0 || c->read_q.n > 0;
        if (c->dirty_q.n < SL_META_MULTI_MAX - 1 && c->multis_inflight > 0 && feeding) {
            return;
        }
        struct ctrl_multi *mu = NULL;
        for (uint32_t k = 0; k < SL_CTRL_MULTIS_INFLIGHT_MAX && mu == NULL; k++) {
            mu = c->multis[k].used ? NULL : &c->multis[k];
        }
        SL_ASSERT(mu != NULL);
        struct sl_meta_op ops[SL_META_MULTI_MAX];
        ops[0] = (struct sl_meta_op){
            .type = SL_META_OP_CHECK, .path = PATH_EPOCH, .version = c->epoch_version};
        size_t nops = 1, used = 0, bytes = 0;
        mu->n = 0;
        while (c->dirty_q.n > 0 && nops < SL_META_MULTI_MAX &&
               bytes + SL_CTRL_STATE_MAX <= SL_CTRL_MULTI_BYTES_MAX) {
            uint32_t i = vec_pop(&c->dirty_q);
            struct ctrl_shard *s = c->shards[i];
            s->in_dirty_q = false;
            if (s->busy || !s->loaded || s->gone || s->in_read_q) {
                continue; /* its multi's answer or its read marks it again */
            }
            if (!sl_ctrl_decide(&s->st, c->live, c->session, c->n_live, c->cfg.unclean_election,
                                &s->next)) {
                continue;
            }
            char *path = c->scratch + used;
            int w = snprintf(path, SL_META_PATH_MAX, PATH_SHARDS "/%s", s->name);
            used += (size_t)w + 1;
            char *data = c->scratch + used;
            size_t len = sl_ctrl_state_encode(&s->next, data, SL_CTRL_STATE_MAX);
            used += len;
            bytes += len;
            ops[nops++] = (struct sl_meta_op){.type = SL_META_OP_SET,
                                              .path = path,
                                              .data = (const uint8_t *)data,
                                              .len = len,
                                              .version = s->st.m.version};
            s->busy = true;
            mu->shard[mu->n++] = i;
        }
        if (mu->n == 0) {
            continue;
        }
        mu->c = c;
        mu->used = true;
        if (sl_meta_multi(c->meta, ops, nops, on_multi, mu) != SL_OK) {
            mu->used = false;
            for (uint32_t k = 0; k < mu->n; k++) {
                c->shards[mu->shard[k]]->busy = false;
                mark_dirty(c, mu->shard[k]); /* the store is at its bound: the next pump */
            }
            return;
        }
        c->multis_inflight++;
    }
}

static void read_some(struct sl_ctrl *c)
{
    while (c->read_q.n > 0 && c->reads_inflight < SL_CTRL_READS_INFLIGHT_MAX) {
        uint32_t i = vec_pop(&c->read_q);
        struct ctrl_shard *s = c->shards[i];
        s->in_read_q = false;
        if (s->busy) {
            continue; /* its multi's answer decides what comes next */
        }
        char p[SL_META_PATH_MAX];
        snprintf(p, sizeof p, PATH_SHARDS "/%s", s->name);
        if (sl_meta_get(c->meta, p, NULL, NULL, on_shard_read, s) != SL_OK) {
            mark_read(c, i);
            return;
        }
        c->reads_inflight++;
        c->stats.reads++;
    }
}

/* The controller's bounds and bookkeeping (at every pump, i.e. after every answer). */
static void ctrl_check(const struct sl_ctrl *c)
{
    SL_ASSERT(c->reads_inflight <= SL_CTRL_READS_INFLIGHT_MAX);
    SL_ASSERT(c->multis_inflight <= SL_CTRL_MULTIS_INFLIGHT_MAX);
    SL_ASSERT(c->pend_waiting <= SL_CTRL_BROKER_READS_MAX);
    SL_ASSERT(c->stream_lists <= SL_CTRL_LISTS_INFLIGHT_MAX + 1); /* + the /shards listing */
    SL_ASSERT(c->n_live <= SL_CTRL_BROKERS_MAX && c->pend_n <= c->todo_n);
    SL_ASSERT(c->todo_next <= c->todo_n && c->todo_n <= SL_CTRL_BROKERS_MAX);
    SL_ASSERT(c->read_q.n <= c->n_shards && c->dirty_q.n <= c->n_shards);
    SL_ASSERT(c->list_q.n <= c->n_streams);
    SL_ASSERT(c->moves_inflight <= SL_CTRL_MOVES_INFLIGHT_MAX && c->move_q.n <= c->n_shards);
    SL_ASSERT(c->phase != SL_CTRL_ACTIVE || c->epoch > 0);
    uint32_t used = 0;
    for (uint32_t k = 0; k < SL_CTRL_MULTIS_INFLIGHT_MAX; k++) {
        used += c->multis[k].used;
        SL_ASSERT(!c->multis[k].used ||
                  (c->multis[k].n >= 1 && c->multis[k].n < SL_META_MULTI_MAX));
    }
    SL_ASSERT(used == c->multis_inflight);
}

static void pump(struct sl_ctrl *c)
{
    ctrl_check(c);
    if (c->phase != SL_CTRL_ACTIVE) {
        return;
    }
    lists_some(c);
    read_some(c);
    if (c->brokers_known) {
        write_some(c);
    }
    ctrl_check(c);
}

/* ---- what controller_move.c shares ------------------------------------------ */

void sl_ctrl_pump(struct sl_ctrl *c)
{
    pump(c);
}

void sl_ctrl_mark_read(struct sl_ctrl *c, uint32_t i)
{
    mark_read(c, i);
}

void sl_ctrl_mark_dirty(struct sl_ctrl *c, uint32_t i)
{
    mark_dirty(c, i);
}

long sl_ctrl_find(const struct sl_ctrl *c, const char *name)
{
    return shard_find(c, name);
}

void sl_ctrl_go_dead(struct sl_ctrl *c)
{
    go_dead(c);
}

bool sl_ctrl_listed(struct sl_ctrl *c, int err, bool *listing, bool *relist)
{
    *listing = false;
    if (c->phase != SL_CTRL_ACTIVE) {
        return false;
    }
    if (err == SL_ECLOSED) {
        go_dead(c);
        return false;
    }
    if (err != SL_OK) {
        *relist = true;
        return false;
    }
    return true;
}

bool sl_ctrl_vec_push(struct ctrl_vec *q, uint32_t x)
{
    return vec_push(q, x);
}

/* ---- election ----------------------------------------------------------- */

static void on_parent_created(void *arg, int err, const char *path)
{
    (void)path;
    struct sl_ctrl *c = arg;
    if (err == SL_ECLOSED) {
        go_dead(c);
    }
}

static void activate(struct sl_ctrl *c)
{
    c->phase = SL_CTRL_ACTIVE;
    /* The parents exist before they are listed (a failed read sets no watch); the store
     * answers one session's calls in order, so the listings below see them. */
    static const char *const parents[] = {"/brokers", PATH_BROKERS, PATH_SHARDS,
                                          SL_CTRL_PATH_NOTIFY, PATH_REASSIGN};
    for (size_t i = 0; i < sizeof parents / sizeof parents[0]; i++) {
        if (sl_meta_create(c->meta, parents[i], NULL, 0, 0, on_parent_created, c) != SL_OK) {
            go_dead(c);
            return;
        }
    }
    brokers_watch(c, NULL);
    streams_watch(c, NULL);
    sl_ctrl_notify_list(c, true);
    sl_ctrl_moves_watch(c, NULL);
}

static void on_epoch_get(void *arg, int err, const uint8_t *data, size_t len,
                         const struct sl_meta_stat *stat);

static void read_epoch(struct sl_ctrl *c)
{
    if (sl_meta_get(c->meta, PATH_EPOCH, NULL, NULL, on_epoch_get, c) != SL_OK) {
        go_dead(c);
    }
}

static void on_epoch_set(void *arg, int err, const char *path)
{
    (void)path;
    struct sl_ctrl *c = arg;
    if (c->phase != SL_CTRL_BUMPING) {
        return;
    }
    if (err == SL_OK) {
        c->epoch_version++;
        activate(c);
    } else if (err == SL_ECLOSED) {
        go_dead(c);
    } else {
        read_epoch(c); /* lost the race or unknown: read and (if still ours) bump again */
    }
}

static void on_epoch_created(void *arg, int err, const char *path)
{
    (void)path;
    struct sl_ctrl *c = arg;
    if (c->phase == SL_CTRL_BUMPING) {
        err == SL_ECLOSED ? go_dead(c) : read_epoch(c);
    }
}

static void on_epoch_get(void *arg, int err, const uint8_t *data, size_t len,
                         const struct sl_meta_stat *stat)
{
    struct sl_ctrl *c = arg;
    if (c->phase != SL_CTRL_BUMPING) {
        return;
    }
    if (err == SL_ENOTFOUND) {
        static const uint8_t zero[] = "0";
        if (sl_meta_create(c->meta, PATH_EPOCH, zero, 1, 0, on_epoch_created, c) != SL_OK) {
            go_dead(c);
        }
        return;
    }
    int64_t e;
    if (err != SL_OK || !parse_epoch(data, len, &e)) {
        err == SL_EAGAIN ? read_epoch(c) : go_dead(c);
        return;
    }
    /* Only the holder of /controller bumps, so after an unknown outcome a value one above
     * what we last read, at one version above, is our own bump. */
    if (c->epoch > 0 && e == c->epoch && stat->version == c->epoch_version + 1) {
        c->epoch_version = stat->version;
        activate(c);
        return;
    }
    char buf[16];
    int w = snprintf(buf, sizeof buf, "%" PRId64, e + 1);
    c->epoch = (int32_t)e + 1;
    c->epoch_version = stat->version;
    if (sl_meta_set(c->meta, PATH_EPOCH, (const uint8_t *)buf, (size_t)w, stat->version,
                    on_epoch_set, c) != SL_OK) {
        go_dead(c);
    }
}

static void controller_watch(void *arg, const char *path)
{
    (void)path;
    struct sl_ctrl *c = arg;
    if (c->phase == SL_CTRL_CANDIDATE) {
        campaign(c);
    }
}

static void on_controller_get(void *arg, int err, const uint8_t *data, size_t len,
                              const struct sl_meta_stat *stat)
{
    (void)data;
    (void)len;
    struct sl_ctrl *c = arg;
    if (c->phase != SL_CTRL_CANDIDATE) {
        return;
    }
    if (err == SL_OK && stat->ephemeral_owner == sl_meta_session_id(c->meta)) {
        c->phase = SL_CTRL_BUMPING; /* our create applied after all */
        read_epoch(c);
    } else if (err == SL_ENOTFOUND || err == SL_EAGAIN) {
        campaign(c); /* gone before we could watch it (no watch set): try again */
    } else if (err != SL_OK) {
        go_dead(c);
    }
    /* else: someone else's; its watch calls campaign() when it goes */
}

static void on_controller_created(void *arg, int err, const char *path)
{
    (void)path;
    struct sl_ctrl *c = arg;
    if (c->phase != SL_CTRL_CANDIDATE) {
        return;
    }
    if (err == SL_OK) {
        c->phase = SL_CTRL_BUMPING;
        read_epoch(c);
    } else if (err == SL_EEXIST || err == SL_EAGAIN) {
        /* another controller, or our own create with an unknown outcome: look (and watch) */
        if (sl_meta_get(c->meta, PATH_CONTROLLER, controller_watch, c, on_controller_get, c) !=
            SL_OK) {
            go_dead(c);
        }
    } else {
        go_dead(c);
    }
}

static void campaign(struct sl_ctrl *c)
{
    char id[16];
    int w = snprintf(id, sizeof id, "%" PRId32, c->cfg.self);
    if (sl_meta_create(c->meta, PATH_CONTROLLER, (const uint8_t *)id, (size_t)w, SL_META_EPHEMERAL,
                       on_controller_created, c) != SL_OK) {
        go_dead(c);
    }
}

/* ---- lifecycle ---------------------------------------------------------- */

int sl_ctrl_new(struct sl_ctrl **out, const struct sl_ctrl_cfg *cfg, struct sl_meta *meta)
{
    SL_ASSERT(cfg->self >= 0);
    struct sl_ctrl *c = calloc(1, sizeof *c);
    if (c == NULL) {
        return SL_ENOMEM;
    }
    c->cfg = *cfg;
    c->meta = meta;
    c->phase = SL_CTRL_CANDIDATE;
    campaign(c);
    *out = c;
    return SL_OK;
}

void sl_ctrl_free(struct sl_ctrl *c)
{
    if (c == NULL) {
        return;
    }
    for (size_t i = 0; i < c->n_shards; i++) {
        free(c->shards[i]);
    }
    for (size_t i = 0; i < c->n_streams; i++) {
        free(c->streams[i]);
    }
    free(c->shards);
    free(c->streams);
    free(c->index);
    free(c->read_q.v);
    free(c->list_q.v);
    free(c->dirty_q.v);
    free(c->move_q.v);
    free(c);
}

enum sl_ctrl_phase sl_ctrl_phase(const struct sl_ctrl *c)
{
    return c->phase;
}

int32_t sl_ctrl_epoch(const struct sl_ctrl *c)
{
    return c->phase == SL_CTRL_ACTIVE ? c->epoch : SL_REPL_NONE;
}

void sl_ctrl_stats(const struct sl_ctrl *c, struct sl_ctrl_stats *s)
{
    *s = c->stats;
    s->shards = (uint32_t)c->n_shards;
    s->brokers_live = c->n_live;
    s->dirty = (uint32_t)c->dirty_q.n;
    s->busy = 0;
    s->reads_inflight = c->reads_inflight + (uint32_t)c->read_q.n;
    s->multis_inflight = c->multis_inflight;
}

void sl_ctrl_tick(struct sl_ctrl *c)
{
    if (c->phase != SL_CTRL_ACTIVE) {
        return;
    }
    if (c->relist && !c->listing) {
        c->relist = false;
        brokers_watch(c, NULL);
    }
    if (c->streams_relist) {
        c->streams_relist = false;
        streams_watch(c, NULL);
    }
    sl_ctrl_notify_tick(c);
    sl_ctrl_moves_tick(c);
    pump(c);
}

bool sl_ctrl_idle(const struct sl_ctrl *c)
{
    return c->phase == SL_CTRL_ACTIVE && c->brokers_known && !c->listing && !c->relist &&
           !c->streams_relist && c->list_q.n == 0 && c->stream_lists == 0 && c->read_q.n == 0 &&
           c->reads_inflight == 0 && c->dirty_q.n == 0 && c->multis_inflight == 0 &&
           c->notify_out == 0 && !c->notify_listing && c->moves_inflight == 0 &&
           !c->moves_relist;
}
