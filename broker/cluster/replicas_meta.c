/* replicas_meta.c - the replica manager's metadata side (replicas.h): the registered
 * session, the cluster's streams (/streams) made in this broker's catalog, each shard's state
 * read with a watch and given to its replica, the leader's ISR writes. Stream creation in
 * ZooKeeper: replicas_create.c.
 *
 * Why the member's session: the controller elects a leader in the session the broker
 * registered with (the state's `session`), and a broker whose session expired is dead to
 * the controller; so the replicas act on that session only, and are suspended (no acks)
 * from its expiry until their states are read again in the next one.
 */
#include "broker/cluster/replicas_int.h"

#include "broker/cluster/member.h"
#include "broker/cluster/stream_settings.h"
#include "broker/engine/catalog.h"
#include "broker/engine/streams.h"
#include "common/assert.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a shard's state ---------------------------------------------------- */

/* The watch names the replicas' manager, not the replica: it stays set in ZooKeeper when the
 * replica is freed (its stream deleted), and finds the replica from the path when it fires. */
static void on_state_watch(void *arg, const char *path)
{
    struct sl_replicas *rs = arg;
    const char *name = path + sizeof(RS_PATH_SHARDS); /* "<stream>/<k>" */
    const char *slash = strrchr(path, '/');
    char stream[SL_CTRL_NAME_MAX];
    size_t n = slash != NULL && slash > name ? (size_t)(slash - name) : 0;
    if (strncmp(path, RS_PATH_SHARDS "/", sizeof(RS_PATH_SHARDS)) != 0 || n == 0 ||
        n >= sizeof(stream)) {
        return;
    }
    memcpy(stream, name, n);
    stream[n] = '\0';
    char *end = NULL;
    unsigned long k = strtoul(slash + 1, &end, 10);
    struct sl_brepl *br = end != slash + 1 && *end == '\0' && k <= UINT32_MAX
                              ? rs_find(rs, stream, (uint32_t)k)
                              : NULL;
    if (br != NULL && !br->gone) {
        rs_state_read(br);
    }
}

/* The state read is not of the stream this broker holds: its node was removed (the stream
 * deleted) or made again (deleted and created anew). The stream is compared with /streams
 * again (the listing, below), which drops this copy. */
static void state_suspect(struct sl_brepl *br)
{
    br->b->stream->cluster_recheck = true;
    br->rs->relist = true;
}

static void on_state(void *arg, int err, const uint8_t *data, size_t len,
                     const struct sl_meta_stat *stat)
{
    struct sl_brepl *br = arg;
    br->get_out = false;
    if (err == SL_ECLOSED || br->gone) {
        return; /* the session ended: the next one reads it again (or deleted here) */
    }
    if ((err == SL_OK && br->state_czxid != 0 && stat->czxid != br->state_czxid) ||
        (err == SL_ENOTFOUND && br->have_state)) {
        state_suspect(br);
        return;
    }
    if (err == SL_OK) {
        br->state_czxid = stat->czxid;
        struct sl_ctrl_state st;
        if (sl_ctrl_state_decode(data, len, &st) != SL_OK) {
            sl_warn("cluster", "%s: the shard state in ZooKeeper is not valid; ignored",
                    br->path);
        } else {
            st.m.version = stat->version;
            /* acks need min_insync replicas, never more than the stream has */
            uint32_t want = br->rs->cfg.min_insync;
            br->r.cfg.min_insync = want < st.m.n_replicas ? want : st.m.n_replicas;
            br->state = st;
            br->have_state = true;
            sl_repl_on_meta(&br->r, &st.m);
            rs_pump(br);
            rs_abdicate(br);
        }
    } else if (err != SL_ENOTFOUND) {
        br->reget = true; /* (SL_EAGAIN: no watch set) at the next tick */
        return;
    }
    if (br->reget) {
        br->reget = false;
        rs_state_read(br);
    }
}

void rs_state_read(struct sl_brepl *br)
{
    struct sl_replicas *rs = br->rs;
    if (rs->meta == NULL || br->gone) {
        return; /* read when a session is registered (never again once deleted) */
    }
    if (br->get_out) {
        br->reget = true;
        return;
    }
    br->reget = false;
    br->get_gen = rs->gen;
    if (sl_meta_get(rs->meta, br->path, on_state_watch, rs, on_state, br) == SL_OK) {
        br->get_out = true;
    } else {
        br->reget = true; /* the store's bound on calls: at the next tick */
    }
}

static void on_move_notified(void *arg, int err, const char *path)
{
    struct sl_brepl *br = arg;
    SL_ASSERT(br->notes_out > 0);
    br->notes_out--;
    (void)err; /* not written: the controller's own re-read of a moving shard switches it */
    (void)path;
}

static void on_meta_set(void *arg, int err, const char *path)
{
    (void)path;
    struct sl_brepl *br = arg;
    br->meta_writing = false;
    if (br->gone) {
        return;
    }
    if (err == SL_OK && br->move_ready && br->rs->meta != NULL) {
        /* the ISR now holds a move's whole target: ask the controller to switch now rather
         * than at its next re-read of the moving shard (SL_CTRL_MOVE_POLL_TICKS) */
        const char *name = br->path + sizeof(RS_PATH_SHARDS); /* "<stream>/<k>" */
        br->notes_out += sl_meta_create(br->rs->meta, SL_CTRL_PATH_NOTIFY "/n-",
                                        (const uint8_t *)name, strlen(name),
                                        SL_META_SEQUENTIAL, on_move_notified, br) == SL_OK;
    }
    br->move_ready = false;
    sl_repl_meta_done(&br->r, err == SL_OK ? SL_OK : err == SL_ECONFLICT ? SL_ECONFLICT
                                                                          : SL_EAGAIN);
    rs_pump(br);
}

void rs_meta_write(struct sl_brepl *br, const struct sl_repl_meta *m)
{
    /* the rest of the state as read: the elected leader's session, a move in progress (its
     * target; the write is at the version read, so neither can have changed meanwhile) */
    struct sl_ctrl_state st = br->state;
    st.m = *m;
    br->move_ready = st.n_target > 0;
    for (uint32_t i = 0; i < st.n_target && br->move_ready; i++) {
        bool in = false;
        for (uint32_t j = 0; j < m->n_isr && !in; j++) {
            in = m->isr[j] == st.target[i];
        }
        br->move_ready = in;
    }
    char data[SL_CTRL_STATE_MAX];
    size_t len = sl_ctrl_state_encode(&st, data, sizeof(data));
    if (br->rs->meta == NULL ||
        sl_meta_set(br->rs->meta, br->path, (const uint8_t *)data, len, m->version, on_meta_set,
                    br) != SL_OK) {
        br->move_ready = false;
        sl_repl_meta_done(&br->r, SL_EAGAIN); /* not written: it re-reads and decides again */
        br->repump = true;
        return;
    }
    br->meta_writing = true;
}

static void on_notified(void *arg, int err, const char *path)
{
    (void)path;
    struct sl_brepl *br = arg;
    SL_ASSERT(br->notes_out > 0);
    br->notes_out--;
    if (err != SL_OK && !br->gone) { /* (the state stays abdicated: the next pass elects) */
        sl_warn("cluster", "shard %u of %s: cannot ask the controller to elect another "
                "leader (%s): it will at its next change of brokers",
                br->b->id, br->b->stream->name, sl_strerror(err));
    }
}

static void on_abdicated(void *arg, int err, const char *path)
{
    (void)path;
    struct sl_brepl *br = arg;
    br->abdicating = false;
    if (br->gone) {
        return;
    }
    if (err == SL_OK && br->state.m.leader != br->rs->cfg.self) {
        sl_warn("cluster", "shard %u of %s: this broker's replica failed: it left the ISR",
                br->b->id, br->b->stream->name);
    } else if (err == SL_OK) {
        sl_warn("cluster", "shard %u of %s: this broker's replica failed: it left the "
                "shard's leadership and ISR so that the controller elects another",
                br->b->id, br->b->stream->name);
        /* the controller reads shard states without watches: ask it to decide this one */
        const char *name = br->path + sizeof(RS_PATH_SHARDS); /* "<stream>/<k>" */
        br->notes_out++;
        if (br->rs->meta == NULL ||
            sl_meta_create(br->rs->meta, SL_CTRL_PATH_NOTIFY "/n-", (const uint8_t *)name,
                           strlen(name), SL_META_SEQUENTIAL, on_notified, br) != SL_OK) {
            on_notified(br, SL_EAGAIN, NULL);
        }
    } else {
        rs_state_read(br); /* changed meanwhile (or not written): decide on what is there */
    }
}

/* A replica that failed for good (FATAL: a write or fsync failed) would hold its shard
 * back until the broker restarts: named leader (with this broker's session), since the
 * controller elects only when a leader's session ends; in the ISR, since the high watermark
 * waits for it until the leader's lag timeout drops it. It writes the state, at the version
 * read as every ISR change, without itself in the ISR and, as leader, with no leader
 * session: its leader sees the smaller ISR at once (every replica watches the state); the
 * controller, asked through SL_CTRL_PATH_NOTIFY, sees a leader whose session is not the
 * named one and elects from the ISR left (in a new epoch, which fences this one), or marks
 * the shard offline when none is left - never this replica, out of the ISR until it
 * catches up after a restart. */
void rs_abdicate(struct sl_brepl *br)
{
    struct sl_replicas *rs = br->rs;
    const struct sl_ctrl_state *cur = &br->state;
    if (br->r.role != SL_REPL_FATAL || !br->have_state || br->abdicating || rs->meta == NULL ||
        br->gone) {
        return;
    }
    bool leads = cur->m.leader == rs->cfg.self && cur->leader_session != 0;
    struct sl_ctrl_state next = *cur;
    next.m.n_isr = 0;
    for (uint32_t i = 0; i < cur->m.n_isr; i++) {
        if (cur->m.isr[i] != rs->cfg.self) {
            next.m.isr[next.m.n_isr++] = cur->m.isr[i];
        }
    }
    if (!leads && next.m.n_isr == cur->m.n_isr) {
        return; /* neither leads nor holds the ISR back */
    }
    if (leads) {
        next.leader_session = 0;
    }
    char data[SL_CTRL_STATE_MAX];
    size_t len = sl_ctrl_state_encode(&next, data, sizeof(data));
    if (sl_meta_set(rs->meta, br->path, (const uint8_t *)data, len, cur->m.version, on_abdicated,
                    br) == SL_OK) {
        br->abdicating = true;
    } /* else the store's bound on calls: the next state read tries again */
}

const char *rs_addr_of(const struct sl_replicas *rs, int32_t node)
{
    const struct sl_member_info *list = NULL;
    size_t n = rs->stopping ? 0 : sl_member_brokers(rs->mb, &list);
    for (size_t i = 0; i < n; i++) {
        if ((int32_t)list[i].node_id == node) {
            return list[i].native_addr;
        }
    }
    return NULL;
}

/* ---- the cluster's streams in this catalog ------------------------------ */

/* Gives a cluster stream's shards their replicas. A local stream of the same name (made
 * here through an HTTP API, or before this broker joined) is left alone and said once:
 * its one copy must not become a replica of a log it never was. */
static void attach(struct sl_replicas *rs, struct sl_stream *st)
{
    if (!st->cluster) {
        if (!st->cluster_clash_logged) {
            st->cluster_clash_logged = true;
            sl_error("cluster",
                     "stream %s is a cluster stream in ZooKeeper, but this broker holds a "
                     "local stream of that name: it keeps serving the local one and holds no "
                     "replica of the cluster's; rename or delete one of them",
                     st->name);
        }
        return;
    }
    for (uint32_t k = 0; k < st->shard_count; k++) {
        struct sl_bshard *b = st->shards[k];
        if (b->repl != NULL || b->ws.log == NULL) {
            continue;
        }
        char path[SL_META_PATH_MAX];
        snprintf(path, sizeof(path), RS_PATH_SHARDS "/%s/%" PRIu32, st->name, k);
        struct sl_brepl *br = rs_brepl_new(rs, b, path);
        if (br != NULL) {
            rs_state_read(br);
        }
    }
}

static void on_local_created(void *ctx, int err, const char *why)
{
    struct rs_create *c = ctx;
    struct sl_stream *st = NULL;
    if (err == SL_OK || err == SL_EEXIST) {
        st = sl_catalog_find(c->rs->e->catalog, c->name);
    }
    if (st != NULL && st->cluster) {
        st->cluster_verified = true; /* (made from /streams just now) */
        attach(c->rs, st);
        /* (our multi failed EEXIST: another creation published it) */
        rs_create_end(c, c->multi_err == SL_EEXIST ? SL_EEXIST : SL_OK,
                      c->multi_err == SL_EEXIST ? "it exists already (made meanwhile elsewhere)"
                                                : "");
        return;
    }
    if (st != NULL) {
        attach(c->rs, st); /* (says why not) */
        rs_create_end(c, SL_EEXIST, "a local stream of that name exists on this broker");
        return;
    }
    sl_error("cluster", "stream %s: cannot create it here: %s", c->name, why);
    rs_create_end(c, err != SL_OK ? err : SL_ENOTFOUND, why);
}

static void on_stream_settings(void *arg, int err, const uint8_t *data, size_t len,
                               const struct sl_meta_stat *stat)
{
    struct rs_create *c = arg;
    struct sl_cstream_settings s;
    if (err == SL_OK && sl_cstream_decode(data, len, &s) != SL_OK) {
        sl_warn("cluster", "/streams/%s: the stream's settings are not valid; ignored", c->name);
        err = SL_EPROTO;
    }
    if (err != SL_OK) {
        c->rs->relist = true; /* tried again at the next tick */
        rs_create_end(c, err, "the stream's settings cannot be read from ZooKeeper");
        return;
    }
    char why[256];
    int rc = sl_catalog_create_async(c->rs->e->catalog, c->name, s.shard_count,
                                     s.retention_hours, s.retention_bytes, s.compression,
                                     SL_CATALOG_CREATE_JOIN | SL_CATALOG_CREATE_CLUSTER,
                                     (uint64_t)stat->czxid, on_local_created, c, why,
                                     sizeof(why));
    if (rc != SL_OK) {
        on_local_created(c, rc, why);
    }
}

static void on_streams_watch(void *arg, const char *path)
{
    (void)path;
    struct sl_replicas *rs = arg;
    rs->relist = true;
}

/* ---- deleted streams ------------------------------------------------------
 *
 * A stream deleted in the cluster (replicas_delete.c) leaves /streams; every broker drops
 * its copy when its listing no longer has it. A broker away meanwhile (stopped, or its
 * session expired) may find the name made again: a stream of the same name that is not the
 * one it holds. So a copy is compared with /streams/<name> (its creation transaction,
 * stream.meta's cluster_id) before its replicas are attached: once per stream after a start,
 * and again when a shard's state node is found removed or made anew (state_suspect). */

void rs_stream_drop(struct sl_replicas *rs, struct sl_stream *st, const char *why)
{
    SL_ASSERT(st->cluster && !st->deleted);
    char name[SL_STREAM_NAME_MAX + 1];
    snprintf(name, sizeof(name), "%s", st->name);
    for (uint32_t k = 0; k < st->shard_count && st->loaded; k++) {
        struct sl_brepl *br = st->shards[k]->repl;
        if (br != NULL && !br->gone) {
            rs_brepl_detach(br);
        }
    }
    char err[256];
    int rc = sl_streams_drop_replica(rs->e, name, err, sizeof(err));
    if (rc != SL_OK) {
        sl_error("cluster", "stream %s %s, but dropping this broker's copy failed: %s", name,
                 why, err);
        return;
    }
    rs->streams_dropped++;
    sl_info("cluster", "stream %s %s: this broker's copy is dropped", name, why);
}

struct verify {
    struct sl_replicas *rs;
    char name[SL_STREAM_NAME_MAX + 1];
};

static void on_verified(void *arg, int err, const uint8_t *data, size_t len,
                        const struct sl_meta_stat *stat)
{
    (void)data;
    (void)len;
    struct verify *v = arg;
    struct sl_replicas *rs = v->rs;
    struct sl_stream *st = sl_catalog_find(rs->e->catalog, v->name);
    free(v);
    if (st == NULL || !st->cluster || !st->cluster_verifying) {
        return; /* (dropped meanwhile) */
    }
    st->cluster_verifying = false;
    if (err == SL_ECLOSED) {
        return; /* the session ended: the next one lists and compares again */
    }
    if (err == SL_OK && (st->cluster_id == 0 || (uint64_t)stat->czxid == st->cluster_id)) {
        /* (0: made before creations were told apart - taken as the same) */
        st->cluster_verified = true;
        st->cluster_recheck = false;
        for (uint32_t k = 0; k < st->shard_count && st->loaded; k++) {
            if (st->shards[k]->repl != NULL) {
                st->shards[k]->repl->state_czxid = 0; /* (its state is the stream's) */
            }
        }
        attach(rs, st);
    } else if (err == SL_OK) {
        rs_stream_drop(rs, st, "was deleted and created again while this broker was away");
        rs->relist = true; /* (made anew from the next listing) */
    } else if (err == SL_ENOTFOUND) {
        rs_stream_drop(rs, st, "was deleted in the cluster");
    } else {
        rs->relist = true;
    }
}

static void verify(struct sl_replicas *rs, struct sl_stream *st)
{
    if (st->cluster_verifying) {
        return;
    }
    struct verify *v = calloc(1, sizeof(*v));
    char path[SL_META_PATH_MAX];
    snprintf(path, sizeof(path), RS_PATH_STREAMS "/%s", st->name);
    if (v == NULL) {
        rs->relist = true;
        return;
    }
    v->rs = rs;
    snprintf(v->name, sizeof(v->name), "%s", st->name);
    if (sl_meta_get(rs->meta, path, NULL, NULL, on_verified, v) != SL_OK) {
        free(v);
        rs->relist = true; /* the store's bound on calls: at the next tick */
        return;
    }
    st->cluster_verifying = true;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The cluster streams of this catalog that /streams no longer lists (`sorted`): deleted.
 * One compared since the start was seen deleted; one not yet compared (held since before a
 * start) was deleted while this broker was away. (The listing waits until the data
 * directory is known to be this cluster's, replicas_id.c: --cluster naming another
 * ensemble or chroot by mistake must not drop every stream.) */
static void drop_unlisted(struct sl_replicas *rs, const char *const *sorted, size_t n)
{
    SL_ASSERT(rs->id_state == RS_ID_SAME);
    struct sl_stream *next = NULL;
    for (struct sl_stream *st = sl_catalog_first(rs->e->catalog); st != NULL; st = next) {
        next = st->next;
        if (!st->cluster ||
            bsearch(&(const char *){st->name}, sorted, n, sizeof(*sorted), name_cmp) != NULL) {
            continue;
        }
        rs_stream_drop(rs, st,
                       st->cluster_verified ? "was deleted in the cluster"
                                            : "was deleted in the cluster while this broker "
                                              "was away");
    }
}

static void on_streams(void *arg, int err, const char *const *names, size_t n)
{
    struct sl_replicas *rs = arg;
    rs->listing = false;
    if (err == SL_ECLOSED) {
        return;
    }
    const char **sorted = err == SL_OK ? malloc((n > 0 ? n : 1) * sizeof(*sorted)) : NULL;
    if (sorted == NULL) {
        rs->relist = true;
        return;
    }
    if (n > 0) {
        memcpy(sorted, names, n * sizeof(*sorted));
        qsort(sorted, n, sizeof(*sorted), name_cmp);
    }
    drop_unlisted(rs, sorted, n);
    free(sorted);
    for (size_t i = 0; i < n; i++) {
        struct sl_stream *st = sl_catalog_find(rs->e->catalog, names[i]);
        if (st != NULL && st->cluster) {
            struct rs_create *mine = rs_create_find(rs, names[i]);
            if (mine != NULL && !mine->published) {
                st->cluster_recheck = true; /* (asked to create a name it holds: which?) */
            }
            if (!st->cluster_verified || st->cluster_recheck) {
                verify(rs, st);
            } else {
                attach(rs, st);
            }
            continue;
        }
        if (st != NULL) {
            attach(rs, st); /* (a local stream of that name: says why not) */
            continue;
        }
        struct rs_create *c = rs_create_find(rs, names[i]);
        if (c != NULL && c->published) {
            continue; /* being made here already */
        }
        if (c == NULL) {
            c = calloc(1, sizeof(*c));
            if (c == NULL || strlen(names[i]) >= sizeof(c->name)) {
                free(c);
                continue;
            }
            c->rs = rs;
            snprintf(c->name, sizeof(c->name), "%s", names[i]);
            c->next = rs->creates;
            rs->creates = c;
        }
        c->published = true;
        char path[SL_META_PATH_MAX];
        snprintf(path, sizeof(path), RS_PATH_STREAMS "/%s", names[i]);
        if (sl_meta_get(rs->meta, path, NULL, NULL, on_stream_settings, c) != SL_OK) {
            c->published = false;
            rs->relist = true;
        }
    }
}

static void list_streams(struct sl_replicas *rs)
{
    if (rs->meta == NULL || rs->listing) {
        return;
    }
    if (rs->id_state != RS_ID_SAME) {
        rs->relist = true; /* (its data's cluster not compared yet: replicas_id.c) */
        rs_cluster_id_check(rs);
        return;
    }
    rs->relist = false;
    if (sl_meta_children(rs->meta, RS_PATH_STREAMS, on_streams_watch, rs, on_streams, rs) ==
        SL_OK) {
        rs->listing = true;
    } else {
        rs->relist = true;
    }
}

static void on_parent(void *arg, int err, const char *path)
{
    (void)err; /* SL_EEXIST is the usual answer */
    (void)path;
    (void)arg;
}

/* ---- the session -------------------------------------------------------- */

void rs_meta_changed(void *ctx)
{
    struct sl_replicas *rs = ctx;
    uint32_t gen = 0;
    struct sl_meta *m = sl_member_store(rs->mb, &gen);
    if (m == NULL) {
        if (rs->meta != NULL) { /* no acks until the states are read in a new session */
            rs->meta = NULL;
            rs->listing = false;
            for (struct sl_brepl *br = rs->all; br != NULL; br = br->next) {
                br->get_out = false;
                sl_repl_suspend(&br->r);
                rs_pump(br);
            }
        }
        return;
    }
    if (m == rs->meta && gen == rs->gen) {
        return; /* (the list of brokers changed: nothing to do here) */
    }
    if (rs->meta != NULL && m != rs->meta) {
        for (struct sl_brepl *br = rs->all; br != NULL; br = br->next) {
            sl_repl_suspend(&br->r);
            rs_pump(br);
        }
    }
    rs->meta = m;
    rs->gen = gen;
    rs->listing = false;
    (void)sl_meta_create(m, RS_PATH_STREAMS, NULL, 0, 0, on_parent, NULL);
    (void)sl_meta_create(m, RS_PATH_SHARDS, NULL, 0, 0, on_parent, NULL);
    (void)sl_meta_create(m, RS_PATH_CREATES, NULL, 0, 0, on_parent, NULL);
    (void)sl_meta_create(m, SL_CTRL_PATH_NOTIFY, NULL, 0, 0, on_parent, NULL);
    list_streams(rs);
    for (struct sl_brepl *br = rs->all; br != NULL; br = br->next) {
        br->get_out = false; /* (the old store's calls ended with it) */
        rs_state_read(br);
    }
}

/* ---- life --------------------------------------------------------------- */

int sl_replicas_open(struct sl_engine *e, struct sl_member *mb,
                     const struct sl_replicas_transport *t, const struct sl_replicas_config *cfg,
                     struct sl_replicas **out)
{
    struct sl_replicas *rs = calloc(1, sizeof(*rs));
    if (rs == NULL) {
        return SL_ENOMEM;
    }
    rs->e = e;
    rs->mb = mb;
    rs->t = *t;
    rs->cfg = *cfg;
    rs->now_ms = sl_clock_mono_ms();
    (void)rs_hooks_install(rs);
    sl_member_set_changed(mb, rs_meta_changed, rs);
    rs_meta_changed(rs);
    *out = rs;
    return SL_OK;
}

void sl_replicas_tick(struct sl_replicas *rs, uint64_t now_ms)
{
    if (rs == NULL || rs->stopping) {
        return;
    }
    rs->now_ms = now_ms;
    rs_meta_changed(rs); /* (a session that came back while nothing else happened) */
    uint64_t cut = sl_member_cut_ms(rs->mb, now_ms);
    uint64_t doubt_ms = rs->cfg.session_timeout_ms / 3;
    if (cut >= doubt_ms) {
        uint32_t n_cut = 0;
        for (struct sl_brepl *br = rs->all; br != NULL; br = br->next) {
            if (!br->gone && sl_repl_cut(&br->r, doubt_ms)) {
                n_cut++;
                rs_pump(br);
            }
        }
        if (n_cut > 0 && rs->cut_leaders == 0) {
            sl_warn("cluster",
                    "cut from ZooKeeper for %" PRIu64 " ms and from the followers of %u shards "
                    "it leads: its session may have expired unseen, so it stops "
                    "acknowledging them (appends waiting are answered NOT_LEADER) until "
                    "ZooKeeper answers again",
                    cut, n_cut);
        }
        rs->cut_leaders = n_cut;
    } else if (rs->cut_ms != 0) {
        if (rs->cut_leaders > 0) {
            sl_info("cluster", "ZooKeeper answers again: the shards' states are read again");
        }
        rs->cut_leaders = 0;
        for (struct sl_brepl *br = rs->all; br != NULL; br = br->next) {
            br->reget = true; /* (the same session: a read re-confirms a leader) */
        }
    }
    rs->cut_ms = cut >= doubt_ms ? cut : 0;
    if (rs->relist) {
        list_streams(rs);
    }
    rs_throttle_refill(rs, now_ms);
    for (struct sl_brepl **pp = &rs->all; *pp != NULL;) {
        struct sl_brepl *br = *pp;
        if (br->gone && rs_brepl_quiet(br)) {
            *pp = br->next; /* (its stream deleted, nothing of it in flight any more) */
            rs_brepl_free(br);
            continue;
        }
        if (br->reget && !br->get_out) {
            rs_state_read(br);
        }
        rs_brepl_tick(br);
        pp = &br->next;
    }
}

void sl_replicas_stop(struct sl_replicas *rs)
{
    if (rs == NULL) {
        return;
    }
    rs->stopping = true;
    sl_member_set_changed(rs->mb, NULL, NULL); /* (the member may go before the replicas) */
    for (struct sl_brepl *br = rs->all; br != NULL; br = br->next) {
        rs_brepl_answer_all(br);
    }
}

void sl_replicas_stats(const struct sl_replicas *rs, struct sl_replicas_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (rs == NULL) {
        return;
    }
    out->serve_bytes = rs->serve_bytes;
    out->follow_bytes = rs->follow_bytes;
    out->streams_dropped = rs->streams_dropped;
    for (const struct sl_brepl *br = rs->all; br != NULL; br = br->next) {
        if (br->gone) {
            continue;
        }
        const struct sl_repl_meta *m = &br->state.m;
        out->throttled += rs_serve_throttled(br);
        out->offline += br->have_state && m->leader < 0;
        if (br->r.role == SL_REPL_LEADER) {
            out->leading++;
            out->under_replicated += m->n_isr < m->n_replicas;
            out->under_min_isr += m->n_isr < br->r.cfg.min_insync;
            continue;
        }
        if (br->r.role == SL_REPL_FOLLOWER) {
            out->following++;
            continue;
        }
        bool named = false;
        for (uint32_t i = 0; i < m->n_replicas && br->have_state; i++) {
            named |= m->replicas[i] == rs->cfg.self;
        }
        out->waiting += named;
    }
}

uint64_t sl_replicas_cut_ms(const struct sl_replicas *rs)
{
    return rs != NULL && rs->cut_leaders > 0 ? rs->cut_ms : 0;
}

void sl_replicas_resign(struct sl_replicas *rs)
{
    if (rs == NULL) {
        return;
    }
    for (struct sl_brepl *br = rs->all; br != NULL; br = br->next) {
        if (br->r.role == SL_REPL_LEADER) {
            sl_repl_resign(&br->r);
            rs_pump(br); /* (its ACK effects answer the produces waiting) */
        }
        /* followers' fetches parked here would hold their connections - and so the drain -
         * until their long poll expires (ANSWER_WAIT_MS, 2.5 s): answered now */
        rs_brepl_answer_all(br);
    }
}

bool sl_replicas_busy(const struct sl_replicas *rs)
{
    if (rs == NULL) {
        return false;
    }
    if (rs->serves > 0) {
        return true;
    }
    for (const struct sl_brepl *br = rs->all; br != NULL; br = br->next) {
        if (rs_brepl_disk_busy(br)) {
            return true;
        }
    }
    return false;
}

/* What sl_replicas_close leaves to the process's exit (replica work still in flight), held
 * here so that it stays reachable: memory handed to the exit on purpose, not a lost pointer
 * for a leak checker to report (it failed sanitized stops in cluster_faults' rolling
 * restart). The warning says what was still in flight. */
static struct sl_replicas *volatile rs_left_to_exit; /* (volatile: the store is kept) */

void sl_replicas_close(struct sl_replicas *rs)
{
    if (rs == NULL) {
        return;
    }
    rs->mb = NULL; /* (stopped and freed before: sl_replicas_stop let it go) */
    if (sl_replicas_busy(rs)) {
        /* A write or a cut still at a shard's owner would call back into freed replicas
         * (a follower stopped right after a restart hit a double free): left to the exit.
         * Said with the first shard still busy, for whoever finds out why. */
        const struct sl_brepl *busy = rs->all;
        while (busy != NULL && !rs_brepl_disk_busy(busy)) {
            busy = busy->next;
        }
        char what[SL_CTRL_NAME_MAX + 64];
        if (busy != NULL) {
            snprintf(what, sizeof(what),
                     "shard %u of %s: %u queued disk operations, %u store "
                     "syncs waited on",
                     busy->b->id, busy->b->stream->name, busy->dq_n, busy->store_waits);
        } else {
            snprintf(what, sizeof(what), "no shard's writes");
        }
        sl_warn("cluster",
                "replica work still in flight at shutdown (%u follower reads being served; "
                "%s): the replicas' memory is left to the process's exit",
                rs->serves, what);
        rs_left_to_exit = rs;
        return;
    }
    while (rs->creates != NULL) {
        rs_create_end(rs->creates, SL_ECLOSED, "the broker is shutting down");
    }
    while (rs->all != NULL) {
        struct sl_brepl *br = rs->all;
        rs->all = br->next;
        rs_brepl_free(br);
    }
    rs->e->repl = NULL;
    free(rs);
}
