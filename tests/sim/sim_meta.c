/* sim_meta.c - an in-memory model of meta.h's ZooKeeper semantics for the simulator.
 *
 * Modelled: nodes with data and versions (a stale version is SL_ECONFLICT), ephemeral
 * nodes removed when their session expires or closes, sequential names, multi (all or
 * nothing; the first failing op's index), one-shot data and children watches set only by a
 * successful read, one session per handle with a server side that expires after
 * session_timeout without contact (a crashed, paused or cut-off broker), the client told
 * DISCONNECTED after a third of it and EXPIRED when it can talk again; calls sent while
 * cut off fail with SL_EAGAIN unapplied, answers lost to a cut (or to the p_meta_eagain
 * die roll) fail with SL_EAGAIN although applied - the unknown outcome callers must
 * handle. One session's calls are applied in order (constant latency per link). A server
 * cost per read and per written op models ZooKeeper's throughput for the failover
 * benchmark. Not modelled: a multi creating a node and its child together (refused).
 */
#include "tests/sim/sim.h"

#include "common/assert.h"
#include "common/error.h"

#include <stdlib.h>
#include <string.h>

/* Calls outstanding per store, as meta_zk's bound (SL_META_ZK_INFLIGHT_MAX): callers must
 * cope with SL_ELIMIT. */
#define SIM_META_CALLS_MAX 256u

struct mnode {
    char path[SL_META_PATH_MAX];
    uint8_t *data;
    size_t len;
    int32_t version, cversion;
    int64_t owner;
    int64_t czxid; /* the store's count of creations when this one was made */
    bool live;
    uint32_t parent;
    uint32_t *kids;
    uint32_t n_kids, cap_kids;
    uint32_t seq; /* sequential children named so far */
};

struct mhandle;

struct mwatch {
    uint32_t node;
    bool children;
    bool active;
    struct mhandle *h;
    sl_meta_watch_cb cb;
    void *arg;
};

enum mreq_type { RQ_GET, RQ_CHILDREN, RQ_CREATE, RQ_SET, RQ_REMOVE, RQ_MULTI };

struct mreq {
    enum mreq_type type;
    struct mhandle *h;
    char path[SL_META_PATH_MAX];
    uint8_t *data;
    size_t len;
    int32_t version;
    uint32_t flags;
    struct sl_meta_op *ops; /* RQ_MULTI: paths and data copied into `blob` */
    size_t n_ops;
    char *blob;
    sl_meta_watch_cb watch;
    void *watch_arg;
    void *cb;
    void *arg;
    /* the answer */
    int err;
    int failed_op;
    struct sl_meta_stat stat;
    uint8_t *rdata;
    size_t rlen;
    char **names;
    size_t n_names;
    char created[SL_META_PATH_MAX];
    bool answered;                    /* closed: its callback ran already */
    bool lost;                        /* never reached the server: SL_EAGAIN, not applied */
    struct mreq *next_out;            /* the handle's outstanding list */
    struct mreq *all_prev, *all_next; /* every request alive (freed at the end) */
};

struct mhandle {
    struct sl_meta base;
    struct sim *s;
    int broker;
    int64_t session;
    uint32_t n_out;      /* calls outstanding */
    bool expired_server; /* the server ended the session */
    bool closed, abandoned, told_expired, disconnected;
    uint64_t last_contact;
    struct mreq *out;
    struct mhandle *next;
};

struct sim_meta_store {
    struct mnode *nodes;
    uint32_t n_nodes, cap_nodes;
    uint32_t *map; /* path hash -> node index + 1 */
    uint32_t map_cap;
    struct mwatch *watches;
    uint32_t n_watches, cap_watches;
    struct mhandle *handles;
    int64_t next_session;
    struct mreq *all;
    uint64_t latency_us, read_us, write_us, busy_until, ops;
    int64_t creations; /* every node's czxid is the count at its creation: unique */
};

static uint64_t hash_path(const char *p)
{
    uint64_t h = 1469598103934665603ull;
    for (; *p; p++) {
        h = (h ^ (uint8_t)*p) * 1099511628211ull;
    }
    return h;
}

static long node_find(struct sim_meta_store *ms, const char *path)
{
    for (uint32_t i = (uint32_t)(hash_path(path) & (ms->map_cap - 1));;
         i = (i + 1) & (ms->map_cap - 1)) {
        if (ms->map[i] == 0) {
            return -1;
        }
        if (strcmp(ms->nodes[ms->map[i] - 1].path, path) == 0) {
            return ms->map[i] - 1;
        }
    }
}

static long node_live(struct sim_meta_store *ms, const char *path)
{
    long i = node_find(ms, path);
    return i >= 0 && ms->nodes[i].live ? i : -1;
}

static void map_grow(struct sim_meta_store *ms)
{
    uint32_t cap = ms->map_cap * 2;
    uint32_t *m = calloc(cap, sizeof *m);
    SL_ASSERT(m != NULL);
    for (uint32_t n = 0; n < ms->n_nodes; n++) {
        uint32_t i = (uint32_t)(hash_path(ms->nodes[n].path) & (cap - 1));
        while (m[i] != 0) {
            i = (i + 1) & (cap - 1);
        }
        m[i] = n + 1;
    }
    free(ms->map);
    ms->map = m;
    ms->map_cap = cap;
}

static uint32_t node_new(struct sim_meta_store *ms, const char *path)
{
    long old = node_find(ms, path);
    if (old >= 0) {
        return (uint32_t)old; /* removed before: the slot is reused */
    }
    if ((ms->n_nodes + 1) * 2 > ms->map_cap) {
        map_grow(ms);
    }
    if (ms->n_nodes == ms->cap_nodes) {
        ms->cap_nodes *= 2;
        ms->nodes = realloc(ms->nodes, ms->cap_nodes * sizeof *ms->nodes);
        SL_ASSERT(ms->nodes != NULL);
    }
    struct mnode *n = &ms->nodes[ms->n_nodes];
    memset(n, 0, sizeof *n);
    snprintf(n->path, sizeof n->path, "%s", path);
    uint32_t i = (uint32_t)(hash_path(path) & (ms->map_cap - 1));
    while (ms->map[i] != 0) {
        i = (i + 1) & (ms->map_cap - 1);
    }
    ms->map[i] = ms->n_nodes + 1;
    return ms->n_nodes++;
}

static bool parent_of(const char *path, char *out)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL || path[0] != '/' || slash[1] == '\0') {
        return false;
    }
    size_t n = slash == path ? 1 : (size_t)(slash - path);
    memcpy(out, path, n);
    out[n] = '\0';
    return true;
}

static bool path_ok(const char *p)
{
    size_t n = strnlen(p, SL_META_PATH_MAX);
    return n > 0 && n < SL_META_PATH_MAX && p[0] == '/' && (n == 1 || p[n - 1] != '/') &&
           strstr(p, "//") == NULL;
}

/* ---- watches ------------------------------------------------------------ */

static void watch_deliver(struct sim *s, void *p, uint64_t a, uint64_t b);

static void watch_fire(struct sim *s, uint32_t node, bool children)
{
    struct sim_meta_store *ms = s->ms;
    for (uint32_t i = 0; i < ms->n_watches; i++) {
        struct mwatch *w = &ms->watches[i];
        if (w->active && w->node == node && w->children == children) {
            w->active = false;
            if (!w->h->closed && !w->h->abandoned) {
                struct mwatch *copy = malloc(sizeof *copy);
                *copy = *w;
                sim_at(s, s->now + ms->latency_us, -1, watch_deliver, copy, 0, 0);
            }
        }
    }
    /* compact now and then: fired watches are dead weight */
    if (ms->n_watches > 1024) {
        uint32_t k = 0;
        for (uint32_t i = 0; i < ms->n_watches; i++) {
            if (ms->watches[i].active) {
                ms->watches[k++] = ms->watches[i];
            }
        }
        ms->n_watches = k;
    }
}

static void watch_deliver(struct sim *s, void *p, uint64_t a, uint64_t b)
{
    (void)a;
    (void)b;
    struct mwatch *w = p;
    struct mhandle *h = w->h;
    if (h->closed || h->abandoned || h->expired_server) {
        free(w);
        return;
    }
    if (s->cut_meta[h->broker] || s->b[h->broker].paused_until > s->now) {
        sim_at(s, s->now + 100000, -1, watch_deliver, w, 0, 0); /* on reconnect / waking */
        return;
    }
    char path[SL_META_PATH_MAX];
    snprintf(path, sizeof path, "%s", s->ms->nodes[w->node].path);
    sl_meta_watch_cb cb = w->cb;
    void *arg = w->arg;
    free(w);
    cb(arg, path);
}

static void watch_add(struct sim_meta_store *ms, struct mreq *rq, uint32_t node, bool children)
{
    if (rq->watch == NULL) {
        return;
    }
    if (ms->n_watches == ms->cap_watches) {
        ms->cap_watches = ms->cap_watches ? ms->cap_watches * 2 : 256;
        ms->watches = realloc(ms->watches, ms->cap_watches * sizeof *ms->watches);
        SL_ASSERT(ms->watches != NULL);
    }
    ms->watches[ms->n_watches++] =
        (struct mwatch){node, children, true, rq->h, rq->watch, rq->watch_arg};
}

/* ---- applying ----------------------------------------------------------- */

static void kid_add(struct mnode *p, uint32_t kid)
{
    if (p->n_kids == p->cap_kids) {
        p->cap_kids = p->cap_kids ? p->cap_kids * 2 : 8;
        p->kids = realloc(p->kids, p->cap_kids * sizeof *p->kids);
        SL_ASSERT(p->kids != NULL);
    }
    p->kids[p->n_kids++] = kid;
}

static void kid_remove(struct mnode *p, uint32_t kid)
{
    for (uint32_t i = 0; i < p->n_kids; i++) {
        if (p->kids[i] == kid) {
            memmove(&p->kids[i], &p->kids[i + 1], (p->n_kids - i - 1) * sizeof p->kids[0]);
            p->n_kids--;
            return;
        }
    }
}

static int check_create(struct sim_meta_store *ms, const char *path, long *parent)
{
    char pp[SL_META_PATH_MAX];
    if (!path_ok(path) || strcmp(path, "/") == 0 || !parent_of(path, pp)) {
        return SL_EINVAL;
    }
    *parent = node_live(ms, pp);
    if (*parent < 0) {
        return SL_ENOTFOUND;
    }
    if (ms->nodes[*parent].owner != 0) {
        return SL_EINVAL; /* ephemerals have no children */
    }
    return SL_OK;
}

static int do_create(struct sim *s, const char *path, const uint8_t *data, size_t len,
                     uint32_t flags, int64_t session, char *created)
{
    struct sim_meta_store *ms = s->ms;
    long parent;
    int err = check_create(ms, path, &parent);
    if (err != SL_OK) {
        return err;
    }
    char name[SL_META_PATH_MAX];
    snprintf(name, sizeof name, "%s", path);
    if (flags & SL_META_SEQUENTIAL) {
        size_t n = strlen(name);
        if (n + 10 >= sizeof name) {
            return SL_EINVAL;
        }
        snprintf(name + n, sizeof name - n, "%010u", ms->nodes[parent].seq++);
    }
    if (node_live(ms, name) >= 0) {
        return SL_EEXIST;
    }
    uint32_t i = node_new(ms, name);
    struct mnode *nd = &ms->nodes[i];
    free(nd->data);
    nd->data = len ? malloc(len) : NULL;
    if (len) {
        memcpy(nd->data, data, len);
    }
    nd->len = len;
    nd->version = nd->cversion = 0;
    nd->czxid = ++ms->creations;
    nd->owner = (flags & SL_META_EPHEMERAL) ? session : 0;
    nd->live = true;
    nd->parent = (uint32_t)parent;
    nd->n_kids = 0;
    kid_add(&ms->nodes[parent], i);
    ms->nodes[parent].cversion++;
    if (created) {
        snprintf(created, SL_META_PATH_MAX, "%s", name);
    }
    watch_fire(s, (uint32_t)parent, true);
    return SL_OK;
}

static void do_remove_node(struct sim *s, uint32_t i)
{
    struct sim_meta_store *ms = s->ms;
    struct mnode *nd = &ms->nodes[i];
    nd->live = false;
    kid_remove(&ms->nodes[nd->parent], i);
    ms->nodes[nd->parent].cversion++;
    watch_fire(s, i, false);
    watch_fire(s, i, true);
    watch_fire(s, nd->parent, true);
}

static int check_version(const struct mnode *nd, int32_t version)
{
    return version >= 0 && nd->version != version ? SL_ECONFLICT : SL_OK;
}

static int validate_op(struct sim_meta_store *ms, const struct sl_meta_op *op)
{
    long i = path_ok(op->path) ? node_live(ms, op->path) : -2;
    long parent;
    switch (op->type) {
    case SL_META_OP_CREATE:
        if (check_create(ms, op->path, &parent) != SL_OK) {
            return check_create(ms, op->path, &parent);
        }
        return i >= 0 && !(op->flags & SL_META_SEQUENTIAL) ? SL_EEXIST : SL_OK;
    case SL_META_OP_CHECK:
    case SL_META_OP_SET:
        return i == -2 ? SL_EINVAL
               : i < 0 ? SL_ENOTFOUND
                       : check_version(&ms->nodes[i], op->version);
    case SL_META_OP_REMOVE:
        if (i < 0) {
            return i == -2 ? SL_EINVAL : SL_ENOTFOUND;
        }
        if (ms->nodes[i].n_kids > 0) {
            return SL_EINVAL;
        }
        return check_version(&ms->nodes[i], op->version);
    }
    return SL_EINVAL;
}

static void do_set(struct sim *s, uint32_t i, const uint8_t *data, size_t len)
{
    struct mnode *nd = &s->ms->nodes[i];
    free(nd->data);
    nd->data = len ? malloc(len) : NULL;
    if (len) {
        memcpy(nd->data, data, len);
    }
    nd->len = len;
    nd->version++;
    watch_fire(s, i, false);
}

static void apply(struct sim *s, struct mreq *rq)
{
    struct sim_meta_store *ms = s->ms;
    long i = path_ok(rq->path) ? node_live(ms, rq->path) : -2;
    rq->failed_op = -1;
    ms->ops += rq->type == RQ_MULTI ? rq->n_ops : 1;
    switch (rq->type) {
    case RQ_GET:
        rq->err = i == -2 ? SL_EINVAL : i < 0 ? SL_ENOTFOUND : SL_OK;
        if (rq->err == SL_OK) {
            struct mnode *nd = &ms->nodes[i];
            rq->rlen = nd->len;
            rq->rdata = nd->len ? malloc(nd->len) : NULL;
            if (nd->len) {
                memcpy(rq->rdata, nd->data, nd->len);
            }
            rq->stat = (struct sl_meta_stat){nd->version, nd->cversion, nd->owner, nd->czxid};
            watch_add(ms, rq, (uint32_t)i, false);
        }
        break;
    case RQ_CHILDREN:
        rq->err = i == -2 ? SL_EINVAL : i < 0 ? SL_ENOTFOUND : SL_OK;
        if (rq->err == SL_OK) {
            struct mnode *nd = &ms->nodes[i];
            rq->names = malloc((nd->n_kids + 1) * sizeof *rq->names);
            for (uint32_t k = 0; k < nd->n_kids; k++) {
                const char *full = ms->nodes[nd->kids[k]].path;
                rq->names[k] = strdup(strrchr(full, '/') + 1);
            }
            rq->n_names = nd->n_kids;
            watch_add(ms, rq, (uint32_t)i, true);
        }
        break;
    case RQ_CREATE:
        rq->err = do_create(s, rq->path, rq->data, rq->len, rq->flags, rq->h->session, rq->created);
        break;
    case RQ_SET:
        rq->err = i == -2 ? SL_EINVAL
                  : i < 0 ? SL_ENOTFOUND
                          : check_version(&ms->nodes[i], rq->version);
        if (rq->err == SL_OK) {
            do_set(s, (uint32_t)i, rq->data, rq->len);
        }
        break;
    case RQ_REMOVE: {
        struct sl_meta_op op = {
            .type = SL_META_OP_REMOVE, .path = rq->path, .version = rq->version};
        rq->err = validate_op(ms, &op);
        if (rq->err == SL_OK) {
            do_remove_node(s, (uint32_t)i);
        }
        break;
    }
    case RQ_MULTI:
        rq->err = SL_OK;
        for (size_t k = 0; k < rq->n_ops && rq->err == SL_OK; k++) {
            for (size_t j = 0; j < k; j++) {
                if (strcmp(rq->ops[j].path, rq->ops[k].path) == 0) {
                    rq->err = SL_EINVAL; /* one op per node per multi in this model */
                }
            }
            if (rq->err == SL_OK) {
                rq->err = validate_op(ms, &rq->ops[k]);
            }
            if (rq->err != SL_OK) {
                rq->failed_op = (int)k;
            }
        }
        for (size_t k = 0; rq->err == SL_OK && k < rq->n_ops; k++) {
            const struct sl_meta_op *op = &rq->ops[k];
            long n = node_live(ms, op->path);
            if (op->type == SL_META_OP_CREATE) {
                int e = do_create(s, op->path, op->data, op->len, op->flags, rq->h->session, NULL);
                SL_ASSERT(e == SL_OK);
            } else if (op->type == SL_META_OP_SET) {
                do_set(s, (uint32_t)n, op->data, op->len);
            } else if (op->type == SL_META_OP_REMOVE) {
                do_remove_node(s, (uint32_t)n);
            }
        }
        break;
    }
}

/* ---- requests ----------------------------------------------------------- */

static void out_remove(struct mhandle *h, struct mreq *rq)
{
    for (struct mreq **pp = &h->out; *pp; pp = &(*pp)->next_out) {
        if (*pp == rq) {
            *pp = rq->next_out;
            SL_ASSERT(h->n_out > 0);
            h->n_out--;
            return;
        }
    }
}

static struct sim_meta_store *g_ms; /* rq_free unlinks from the one store */

static void rq_free(struct mreq *rq)
{
    if (rq->all_prev) {
        rq->all_prev->all_next = rq->all_next;
    } else {
        g_ms->all = rq->all_next;
    }
    if (rq->all_next) {
        rq->all_next->all_prev = rq->all_prev;
    }
    free(rq->data);
    free(rq->rdata);
    free(rq->ops);
    free(rq->blob);
    for (size_t i = 0; i < rq->n_names; i++) {
        free(rq->names[i]);
    }
    free(rq->names);
    free(rq);
}

static void rq_callback(struct mreq *rq)
{
    switch (rq->type) {
    case RQ_GET:
        ((sl_meta_data_cb)rq->cb)(rq->arg, rq->err, rq->err == SL_OK ? rq->rdata : NULL,
                                  rq->err == SL_OK ? rq->rlen : 0,
                                  rq->err == SL_OK ? &rq->stat : NULL);
        break;
    case RQ_CHILDREN:
        ((sl_meta_children_cb)rq->cb)(rq->arg, rq->err,
                                      rq->err == SL_OK ? (const char *const *)rq->names : NULL,
                                      rq->err == SL_OK ? rq->n_names : 0);
        break;
    case RQ_CREATE:
        ((sl_meta_done_cb)rq->cb)(rq->arg, rq->err, rq->err == SL_OK ? rq->created : NULL);
        break;
    case RQ_SET:
    case RQ_REMOVE:
        ((sl_meta_done_cb)rq->cb)(rq->arg, rq->err, NULL);
        break;
    case RQ_MULTI:
        ((sl_meta_multi_cb)rq->cb)(rq->arg, rq->err, rq->err == SL_OK ? -1 : rq->failed_op);
        break;
    }
}

static void rq_reply(struct sim *s, void *p, uint64_t applied, uint64_t b)
{
    (void)b;
    struct mreq *rq = p;
    if (rq->answered) {
        rq_free(rq);
        return;
    }
    struct mhandle *h = rq->h;
    if (!h->closed && !h->abandoned && s->b[h->broker].paused_until > s->now) {
        sim_at(s, s->b[h->broker].paused_until, -1, rq_reply, rq, applied, 0);
        return; /* a paused process takes its answers when it wakes */
    }
    out_remove(h, rq);
    if (h->closed || h->abandoned) {
        rq_free(rq);
        return;
    }
    if (rq->lost) {
        rq->err = SL_EAGAIN;
    } else if (h->expired_server) {
        rq->err = SL_ECLOSED;
    } else if (s->cut_meta[h->broker] || (applied && sim_chance(s, s->cfg.p_meta_eagain))) {
        rq->err = SL_EAGAIN; /* the connection broke: applied or not, the caller can't tell */
    }
    rq_callback(rq);
    rq_free(rq);
}

static void rq_arrive(struct sim *s, void *p, uint64_t a, uint64_t b)
{
    (void)a;
    (void)b;
    struct mreq *rq = p;
    struct sim_meta_store *ms = s->ms;
    struct mhandle *h = rq->h;
    uint64_t cost = (rq->type == RQ_GET || rq->type == RQ_CHILDREN)
                        ? ms->read_us
                        : ms->write_us * (rq->type == RQ_MULTI ? rq->n_ops : 1);
    uint64_t start = ms->busy_until > s->now ? ms->busy_until : s->now;
    ms->busy_until = start + cost;
    bool applied = false;
    if (!h->expired_server && !h->abandoned) {
        apply(s, rq);
        applied = true;
    } else {
        rq->err = SL_ECLOSED;
    }
    sim_at(s, ms->busy_until + ms->latency_us, -1, rq_reply, rq, applied, 0);
}

static int submit(struct mhandle *h, struct mreq *rq)
{
    struct sim *s = h->s;
    if (h->closed || h->told_expired) {
        rq_free(rq);
        return SL_ECLOSED;
    }
    if (h->n_out >= SIM_META_CALLS_MAX) {
        rq_free(rq);
        return SL_ELIMIT; /* as meta_zk: a bound on calls outstanding per store */
    }
    h->n_out++;
    rq->h = h;
    rq->next_out = h->out;
    h->out = rq;
    if (s->cut_meta[h->broker] || h->expired_server) {
        /* not sent: the client reports the lost connection after a while */
        rq->lost = true;
        sim_at(s, s->now + s->cfg.session_timeout_us / 3, -1, rq_reply, rq, 0, 0);
    } else if (sim_chance(s, s->cfg.p_meta_eagain)) {
        rq->lost = true; /* lost on the way: never applied */
        sim_at(s, s->now + s->ms->latency_us * 2, -1, rq_reply, rq, 0, 0);
    } else {
        sim_at(s, s->now + s->ms->latency_us, -1, rq_arrive, rq, 0, 0);
    }
    return SL_OK;
}

static struct mreq *rq_new(enum mreq_type type, const char *path, sl_meta_watch_cb watch,
                           void *watch_arg, void *cb, void *arg)
{
    struct mreq *rq = calloc(1, sizeof *rq);
    SL_ASSERT(rq != NULL);
    rq->all_next = g_ms->all;
    if (g_ms->all) {
        g_ms->all->all_prev = rq;
    }
    g_ms->all = rq;
    rq->type = type;
    if (path) {
        snprintf(rq->path, sizeof rq->path, "%s", path);
    }
    rq->watch = watch;
    rq->watch_arg = watch_arg;
    rq->cb = cb;
    rq->arg = arg;
    return rq;
}

static int m_get(struct sl_meta *m, const char *path, sl_meta_watch_cb watch, void *watch_arg,
                 sl_meta_data_cb cb, void *arg)
{
    if (!path_ok(path)) {
        return SL_EINVAL;
    }
    return submit((struct mhandle *)m, rq_new(RQ_GET, path, watch, watch_arg, (void *)cb, arg));
}

static int m_children(struct sl_meta *m, const char *path, sl_meta_watch_cb watch, void *watch_arg,
                      sl_meta_children_cb cb, void *arg)
{
    if (!path_ok(path)) {
        return SL_EINVAL;
    }
    return submit((struct mhandle *)m,
                  rq_new(RQ_CHILDREN, path, watch, watch_arg, (void *)cb, arg));
}

static int m_write(struct sl_meta *m, enum mreq_type type, const char *path, const uint8_t *data,
                   size_t len, int32_t version, uint32_t flags, void *cb, void *arg)
{
    if (!path_ok(path) || len > SL_META_DATA_MAX) {
        return SL_EINVAL;
    }
    struct mreq *rq = rq_new(type, path, NULL, NULL, cb, arg);
    if (len) {
        rq->data = malloc(len);
        memcpy(rq->data, data, len);
    }
    rq->len = len;
    rq->version = version;
    rq->flags = flags;
    return submit((struct mhandle *)m, rq);
}

static int m_create(struct sl_meta *m, const char *path, const uint8_t *data, size_t len,
                    uint32_t flags, sl_meta_done_cb cb, void *arg)
{
    return m_write(m, RQ_CREATE, path, data, len, -1, flags, (void *)cb, arg);
}

static int m_set(struct sl_meta *m, const char *path, const uint8_t *data, size_t len,
                 int32_t version, sl_meta_done_cb cb, void *arg)
{
    return m_write(m, RQ_SET, path, data, len, version, 0, (void *)cb, arg);
}

static int m_remove(struct sl_meta *m, const char *path, int32_t version, sl_meta_done_cb cb,
                    void *arg)
{
    return m_write(m, RQ_REMOVE, path, NULL, 0, version, 0, (void *)cb, arg);
}

static int m_multi(struct sl_meta *m, const struct sl_meta_op *ops, size_t n, sl_meta_multi_cb cb,
                   void *arg)
{
    size_t bytes = 0, total = 0;
    if (n == 0 || n > SL_META_MULTI_MAX) {
        return SL_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        if (!path_ok(ops[i].path)) {
            return SL_EINVAL;
        }
        bytes += ops[i].len;
        total += strlen(ops[i].path) + 1 + ops[i].len;
    }
    if (bytes > SL_META_DATA_MAX) {
        return SL_EINVAL;
    }
    struct mreq *rq = rq_new(RQ_MULTI, NULL, NULL, NULL, (void *)cb, arg);
    rq->ops = malloc(n * sizeof *rq->ops);
    rq->blob = malloc(total);
    rq->n_ops = n;
    char *w = rq->blob;
    for (size_t i = 0; i < n; i++) {
        rq->ops[i] = ops[i];
        size_t pl = strlen(ops[i].path) + 1;
        memcpy(w, ops[i].path, pl);
        rq->ops[i].path = w;
        w += pl;
        if (ops[i].len) {
            memcpy(w, ops[i].data, ops[i].len);
            rq->ops[i].data = (const uint8_t *)w;
            w += ops[i].len;
        }
    }
    return submit((struct mhandle *)m, rq);
}

static int64_t m_session_id(const struct sl_meta *m)
{
    return ((const struct mhandle *)m)->session;
}

static void expire_server(struct sim *s, struct mhandle *h)
{
    if (h->expired_server) {
        return;
    }
    h->expired_server = true;
    s->n_expired++;
    struct sim_meta_store *ms = s->ms;
    for (uint32_t i = 0; i < ms->n_nodes; i++) {
        if (ms->nodes[i].live && ms->nodes[i].owner == h->session) {
            do_remove_node(s, i);
        }
    }
    sim_log(s, "meta: session %llx of broker %d expired", (unsigned long long)h->session,
            h->broker);
}

static void m_close(struct sl_meta *m)
{
    struct mhandle *h = (struct mhandle *)m;
    SL_ASSERT(!h->closed);
    h->closed = true;
    expire_server(h->s, h); /* a closed session ends now: its ephemerals go */
    while (h->out != NULL) {
        struct mreq *rq = h->out;
        h->out = rq->next_out;
        h->n_out--;
        rq->err = SL_ECLOSED;
        rq->h = NULL;
        rq_callback(rq);
        /* the scheduled reply event still points at it: it finds h == NULL */
        rq->answered = true;
    }
}

static const struct sl_meta_vtable vt = {m_get,    m_children, m_create,     m_set,
                                         m_remove, m_multi,    m_session_id, m_close};

/* ---- sessions ----------------------------------------------------------- */

static void session_event(struct sim *s, void *p, uint64_t ev, uint64_t b)
{
    (void)b;
    struct mhandle *h = p;
    if (h->closed || h->abandoned) {
        return;
    }
    if (s->b[h->broker].paused_until > s->now) {
        sim_at(s, s->b[h->broker].paused_until, -1, session_event, h, ev, 0);
        return;
    }
    if (h->base.on_session) {
        h->base.on_session(h->base.session_arg, (enum sl_meta_session)ev);
    }
}

struct sl_meta *sim_meta_connect(struct sim *s, int b, sl_meta_session_cb cb, void *arg)
{
    struct sim_meta_store *ms = s->ms;
    struct mhandle *h = calloc(1, sizeof *h);
    SL_ASSERT(h != NULL);
    h->base.vt = &vt;
    h->base.on_session = cb;
    h->base.session_arg = arg;
    h->s = s;
    h->broker = b;
    h->session = ++ms->next_session;
    h->last_contact = s->now;
    h->next = ms->handles;
    ms->handles = h;
    return &h->base;
}

void sim_meta_abandon(struct sl_meta *m)
{
    struct mhandle *h = (struct mhandle *)m;
    h->abandoned = true; /* no heartbeat from now on: the server times the session out */
}

void sim_meta_tick(struct sim *s)
{
    for (struct mhandle *h = s->ms->handles; h != NULL; h = h->next) {
        if (h->closed || h->told_expired) {
            continue;
        }
        bool reach = !h->abandoned && sim_broker_alive(s, h->broker) && !s->cut_meta[h->broker];
        if (!h->expired_server) {
            if (reach) {
                h->last_contact = s->now;
            } else if (s->now - h->last_contact > s->cfg.session_timeout_us) {
                expire_server(s, h);
            }
        }
        if (h->abandoned || !s->b[h->broker].up) {
            continue;
        }
        /* the client's view (delivered as events: a paused process sees them on waking) */
        bool link = !s->cut_meta[h->broker];
        if (!link && !h->disconnected && s->now - h->last_contact > s->cfg.session_timeout_us / 3) {
            h->disconnected = true;
            sim_at(s, s->now, -1, session_event, h, SL_META_DISCONNECTED, 0);
        } else if (link && h->expired_server && sim_broker_alive(s, h->broker)) {
            h->told_expired = true;
            sim_at(s, s->now, -1, session_event, h, SL_META_EXPIRED, 0);
        } else if (link && h->disconnected) {
            h->disconnected = false;
            sim_at(s, s->now, -1, session_event, h, SL_META_CONNECTED, 0);
        }
    }
}

bool sim_meta_peek(struct sim *s, const char *path, struct sl_ctrl_state *st)
{
    long i = node_live(s->ms, path);
    if (i < 0 || sl_ctrl_state_decode(s->ms->nodes[i].data, s->ms->nodes[i].len, st) != SL_OK) {
        return false;
    }
    st->m.version = s->ms->nodes[i].version;
    return true;
}

uint64_t sim_meta_ops(const struct sim *s)
{
    return s->ms->ops;
}

void sim_meta_set_costs(struct sim *s, uint64_t latency_us, uint64_t read_us, uint64_t write_us)
{
    s->ms->latency_us = latency_us;
    s->ms->read_us = read_us;
    s->ms->write_us = write_us;
}

struct sim_meta_store *sim_meta_store_new(struct sim *s)
{
    struct sim_meta_store *ms = calloc(1, sizeof *ms);
    SL_ASSERT(ms != NULL);
    g_ms = ms;
    ms->cap_nodes = 1024;
    ms->nodes = calloc(ms->cap_nodes, sizeof *ms->nodes);
    ms->map_cap = 2048;
    ms->map = calloc(ms->map_cap, sizeof *ms->map);
    ms->latency_us = 1000;
    s->ms = ms;
    uint32_t root = node_new(ms, "/");
    ms->nodes[root].live = true;
    return ms;
}

void sim_meta_store_free(struct sim_meta_store *ms)
{
    while (ms->all != NULL) {
        rq_free(ms->all);
    }
    for (uint32_t i = 0; i < ms->n_nodes; i++) {
        free(ms->nodes[i].data);
        free(ms->nodes[i].kids);
    }
    while (ms->handles != NULL) {
        struct mhandle *h = ms->handles;
        ms->handles = h->next;
        free(h);
    }
    free(ms->nodes);
    free(ms->map);
    free(ms->watches);
    free(ms);
    g_ms = NULL;
}

bool sim_meta_event_free(const struct sim_ev *ev)
{
    if (ev->fn == watch_deliver) {
        free(ev->p);
        return true;
    }
    return false; /* requests are freed with the store; session events carry a handle */
}

bool sim_meta_put(struct sim *s, const char *path, const uint8_t *data, size_t len)
{
    int err = do_create(s, path, data, len, 0, 0, NULL);
    SL_ASSERT(err == SL_OK || err == SL_EEXIST);
    return err == SL_OK;
}

static void quiet_session(void *arg, enum sl_meta_session ev)
{
    (void)arg;
    (void)ev; /* (the benchmarks' brokers have no faults but a crash: nothing to do) */
}

static void on_registered(void *arg, int err, const char *path)
{
    (void)arg;
    (void)path;
    SL_ASSERT(err == SL_OK || err == SL_ECLOSED);
}

struct sl_meta *sim_meta_register(struct sim *s, int b)
{
    struct sl_meta *m = sim_meta_connect(s, b, quiet_session, NULL);
    char path[64], id[16];
    snprintf(path, sizeof path, "/brokers/ids/%d", b);
    int n = snprintf(id, sizeof id, "%d", b);
    sl_meta_create(m, path, (const uint8_t *)id, (size_t)n, SL_META_EPHEMERAL, on_registered,
                   NULL);
    return m;
}

bool sim_meta_set(struct sim *s, const char *path, const uint8_t *data, size_t len)
{
    long i = path_ok(path) ? node_live(s->ms, path) : -1;
    if (i < 0) {
        return false;
    }
    do_set(s, (uint32_t)i, data, len);
    return true;
}

bool sim_meta_remove(struct sim *s, const char *path)
{
    long i = path_ok(path) ? node_live(s->ms, path) : -1;
    if (i < 0 || s->ms->nodes[i].n_kids > 0) {
        return false;
    }
    do_remove_node(s, (uint32_t)i);
    return true;
}
