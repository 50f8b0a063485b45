/* meta_zk.c - the cluster metadata store on Apache ZooKeeper (see meta.h,
 * meta_zk.h). The only includer of zookeeper.h.
 *
 * Two files: this one, the loop's side; meta_zk_thread.c, what runs on the
 * library's threads (meta_zk_int.h between them).
 *
 * Threads. The client library runs an I/O thread and a completion thread;
 * its completions and watchers run on the latter (session events on either).
 * They never call ZooKeeper and never run an owner's callback: they copy what
 * they carry into the record that asked (or a session-event slot), append it
 * to `done` under `mu` and write the eventfd. The loop's armed read of that
 * eventfd (on_wake) takes the list and runs the callbacks in order, on the
 * owner's thread. Records are made and freed on the loop thread only; the
 * library's threads touch a record's result fields and its `done_next`, and
 * only between the library taking the record and the record reaching `done`.
 *
 * Chroot. Done here rather than by the library ("host:port/chroot" to
 * zookeeper_init), so that the store can create the chroot itself: at each
 * connection until it exists, one create per path component, in order on the
 * session; SL_META_CONNECTED reaches the owner once the last one answered OK
 * or ZNODEEXISTS. Every path is prefixed on the way in and stripped from the
 * names (created nodes, watches) on the way out.
 *
 * Watches. Each watch is a record of its own, the library's watcher context;
 * the library calls it with ZOO_SESSION_EVENT at every state change (ignored:
 * the watch stays set across a reconnection of the same session) and once
 * with the node's event, which fires the owner's callback. A read that did
 * not succeed registered no watch: its watch record is freed with it.
 *
 * Errors (meta.h): ZOK -> SL_OK, ZNONODE -> SL_ENOTFOUND, ZNODEEXISTS ->
 * SL_EEXIST, ZBADVERSION -> SL_ECONFLICT, ZNOTEMPTY, ZBADARGUMENTS and
 * ZNOCHILDRENFOREPHEMERALS -> SL_EINVAL, ZCONNECTIONLOSS and
 * ZOPERATIONTIMEOUT -> SL_EAGAIN (outcome unknown), ZSESSIONEXPIRED,
 * ZCLOSING, ZINVALIDSTATE and ZAUTHFAILED -> SL_ECLOSED, ZMARSHALLINGERROR ->
 * SL_ENOMEM; anything else -> SL_EAGAIN (unknown: the caller re-reads).
 */
#include "broker/cluster/meta_zk_int.h"

#include "common/assert.h"
#include "common/error.h"
#include "common/log.h"
#include "common/ring.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
/* LeakSanitizer's hook (sanitized builds only). zookeeper_close of a session that is still
 * registering a watch (a broker stopped right after it became the controller) leaves the
 * library's own completion entry and its path copy unfreed (seen: 371 bytes in 5 objects,
 * every frame inside libzookeeper_mt). With the asynchronous API the library owns every
 * object it allocates (ours are freed in our callbacks), so its module alone is excused. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:libzookeeper_mt.so\n";
}
#endif

static int map_rc(int rc)
{
    switch (rc) {
    case ZOK:
        return SL_OK;
    case ZNONODE:
        return SL_ENOTFOUND;
    case ZNODEEXISTS:
        return SL_EEXIST;
    case ZBADVERSION:
        return SL_ECONFLICT;
    case ZNOTEMPTY:
    case ZBADARGUMENTS:
    case ZNOCHILDRENFOREPHEMERALS:
        return SL_EINVAL;
    case ZSESSIONEXPIRED:
    case ZCLOSING:
    case ZINVALIDSTATE:
    case ZAUTHFAILED:
        return SL_ECLOSED;
    case ZMARSHALLINGERROR:
        return SL_ENOMEM;
    case ZCONNECTIONLOSS:
    case ZOPERATIONTIMEOUT:
    default:
        return SL_EAGAIN;
    }
}

/* ---- records (loop thread) ---- */

static struct zk_rec *rec_new(struct meta_zk *z, enum rec_kind kind, const char *path)
{
    size_t plen = z->chroot_len + (path != NULL ? strlen(path) : 0);
    struct zk_rec *r = calloc(1, sizeof(*r) + plen + 1);
    if (r == NULL) {
        return NULL;
    }
    r->kind = kind;
    r->z = z;
    r->failed_op = -1;
    if (path != NULL) {
        memcpy(r->path, z->chroot, z->chroot_len);
        /* "/" under a chroot is the chroot itself */
        if (!(z->chroot_len > 0 && strcmp(path, "/") == 0)) {
            memcpy(r->path + z->chroot_len, path, strlen(path) + 1);
        }
    }
    if (z->recs == NULL) {
        r->prev = r->next = r;
        z->recs = r;
    } else {
        r->next = z->recs;
        r->prev = z->recs->prev;
        r->prev->next = r;
        z->recs->prev = r;
    }
    return r;
}

static void rec_free(struct zk_rec *r)
{
    struct meta_zk *z = r->z;
    SL_ASSERT(r->kind != REC_SESSION);
    if (r->next == r) {
        z->recs = NULL;
    } else {
        r->prev->next = r->next;
        r->next->prev = r->prev;
        if (z->recs == r) {
            z->recs = r->next;
        }
    }
    if (r->kind == REC_WATCH) {
        SL_ASSERT(z->watches > 0);
        z->watches--;
    }
    free(r->data);
    free(r->ops);
    free(r);
}

/* The owner's path with the chroot stripped (a name the library gave back). */
static const char *strip(const struct meta_zk *z, const char *full)
{
    if (z->chroot_len == 0 || strncmp(full, z->chroot, z->chroot_len) != 0) {
        return full;
    }
    return full[z->chroot_len] == '\0' ? "/" : full + z->chroot_len;
}

/* meta.h: starts with '/', no empty component, no trailing '/' (but "/"). */
static bool path_ok(const char *path)
{
    if (path == NULL || path[0] != '/') {
        return false;
    }
    size_t n = strnlen(path, SL_META_PATH_MAX + 1);
    if (n > SL_META_PATH_MAX || (n > 1 && path[n - 1] == '/')) {
        return false;
    }
    bool dot_end =
        (n >= 2 && strcmp(path + n - 2, "/.") == 0) || (n >= 3 && strcmp(path + n - 3, "/..") == 0);
    return !dot_end && strstr(path, "//") == NULL && strstr(path, "/./") == NULL &&
           strstr(path, "/../") == NULL; /* ZooKeeper refuses "." and ".." components */
}

/* ---- delivery (loop thread) ---- */

static void chroot_create(struct meta_zk *z);

static void tell_session(struct meta_zk *z, enum sl_meta_session ev)
{
    if (z->told_any && z->told == ev) {
        return;
    }
    z->told_any = true;
    z->told = ev;
    if (z->base.on_session != NULL) {
        z->base.on_session(z->base.session_arg, ev);
    }
}

static void session_event(struct meta_zk *z, int state, int64_t id)
{
    if (z->expired) {
        return; /* the handle is dead; only close remains */
    }
    if (state == ZOO_CONNECTED_STATE) {
        if (z->session_id != id) {
            sl_info("cluster", "ZooKeeper session 0x%llx established with %s (timeout %d ms)",
                    (unsigned long long)id, z->hosts, zoo_recv_timeout(z->zh));
        }
        z->session_id = id;
        if (!z->chroot_ready) {
            chroot_create(z); /* CONNECTED is told once the chroot exists */
            return;
        }
        tell_session(z, SL_META_CONNECTED);
    } else if (state == ZOO_EXPIRED_SESSION_STATE || state == ZOO_AUTH_FAILED_STATE) {
        z->expired = true;
        sl_warn("cluster",
                "ZooKeeper session 0x%llx %s: its ephemeral nodes are gone and this "
                "handle is dead; the owner opens a new session and registers again",
                (unsigned long long)z->session_id,
                state == ZOO_EXPIRED_SESSION_STATE ? "expired" : "failed authentication");
        tell_session(z, SL_META_EXPIRED);
    } else {
        if (z->told_any && z->told == SL_META_CONNECTED) {
            sl_warn("cluster",
                    "lost the connection to ZooKeeper (%s); reconnecting within the "
                    "session timeout (%u ms) keeps the session",
                    z->hosts, z->session_timeout_ms);
        }
        if (z->told_any) {
            tell_session(z, SL_META_DISCONNECTED);
        }
    }
}

static void chroot_done(struct zk_rec *r)
{
    struct meta_zk *z = r->z;
    if (r->rc != ZOK && r->rc != ZNODEEXISTS) {
        sl_warn("cluster", "cannot create the chroot component %s in ZooKeeper (%s): %s", r->path,
                z->hosts, zerror(r->rc));
    }
    if (!r->last) {
        return;
    }
    z->chroot_pending = false;
    if (r->rc == ZOK || r->rc == ZNODEEXISTS) {
        z->chroot_ready = true;
        if (!z->expired && zoo_state(z->zh) == ZOO_CONNECTED_STATE) {
            tell_session(z, SL_META_CONNECTED);
        }
    } else if (map_rc(r->rc) != SL_EAGAIN && map_rc(r->rc) != SL_ECLOSED) {
        sl_error("cluster",
                 "the chroot %s cannot be created in ZooKeeper (%s): %s; create it "
                 "(zkCli.sh create %s) or name another one in --cluster",
                 z->chroot, z->hosts, zerror(r->rc), z->chroot);
    }
    /* a lost connection: tried again at the next CONNECTED */
}

static void deliver(struct zk_rec *r)
{
    struct meta_zk *z = r->z;
    int err = map_rc(r->rc);
    switch (r->kind) {
    case REC_GET: {
        if (r->watch != NULL && r->rc != ZOK) {
            rec_free(r->watch); /* not registered: the library sets it on success only */
            r->watch = NULL;
        }
        ((sl_meta_data_cb)r->cb)(r->arg, err, err == SL_OK ? r->data : NULL,
                                 err == SL_OK ? r->len : 0, err == SL_OK ? &r->stat : NULL);
        break;
    }
    case REC_CHILDREN:
        if (r->watch != NULL && r->rc != ZOK) {
            rec_free(r->watch);
            r->watch = NULL;
        }
        ((sl_meta_children_cb)r->cb)(r->arg, err,
                                     err == SL_OK ? (const char *const *)r->data : NULL,
                                     err == SL_OK ? r->len : 0);
        break;
    case REC_CREATE:
        ((sl_meta_done_cb)r->cb)(
            r->arg, err, err == SL_OK && r->data != NULL ? strip(z, (char *)r->data) : NULL);
        break;
    case REC_SET:
    case REC_REMOVE:
        ((sl_meta_done_cb)r->cb)(r->arg, err, NULL);
        break;
    case REC_MULTI:
        ((sl_meta_multi_cb)r->cb)(r->arg, err, err == SL_OK ? -1 : r->failed_op);
        break;
    case REC_WATCH:
        ((sl_meta_watch_cb)r->cb)(r->arg, strip(z, r->path));
        break;
    case REC_CHROOT:
        chroot_done(r);
        break;
    case REC_SESSION:
        break;
    }
}

/* Runs one posted record and frees it (a session slot goes back). */
static void run_one(struct meta_zk *z, struct zk_rec *r)
{
    if (r->kind == REC_SESSION) {
        int state = r->session_state;
        int64_t id = r->session_id;
        pthread_mutex_lock(&z->mu);
        if (z->session_last == r) {
            z->session_last = NULL;
        }
        r->done_next = z->session_free;
        z->session_free = r;
        pthread_mutex_unlock(&z->mu);
        session_event(z, state, id);
        return;
    }
    bool call = r->kind != REC_WATCH && r->kind != REC_CHROOT;
    if (call) {
        SL_ASSERT(z->inflight > 0);
        z->inflight--;
    }
    r->delivered = true;
    deliver(r);
    rec_free(r);
}

/* Takes the posted records, oldest first, and runs them until none is left
 * or a callback closed the store. */
static void drain(struct meta_zk *z)
{
    while (!z->closed) {
        pthread_mutex_lock(&z->mu);
        struct zk_rec *list = z->done;
        z->done = NULL;
        z->done_tail = &z->done;
        pthread_mutex_unlock(&z->mu);
        if (list == NULL) {
            return;
        }
        while (list != NULL) {
            struct zk_rec *next = list->done_next;
            if (z->closed) {
                list = next; /* close answered (or freed) every record; slots go with it */
                continue;
            }
            run_one(z, list);
            list = next;
        }
    }
}

static void free_store(struct meta_zk *z);

static void on_wake(struct sl_io_op *op, int res)
{
    struct meta_zk *z = sl_container_of(op, struct meta_zk, wake_op);
    z->armed = false;
    if (z->closed) {
        free_store(z); /* closed while the read was armed: its last use of the store */
        return;
    }
    if (res < 0 && res != -EINTR) {
        sl_error("cluster", "reading the ZooKeeper wake-up eventfd failed: %s", strerror(-res));
    }
    z->in_drain = true;
    drain(z);
    z->in_drain = false;
    if (z->closed) {
        free_store(z); /* a callback closed the store: the read is not armed */
        return;
    }
    z->armed = true;
    sl_ring_read(z->ring, &z->wake_op, z->efd, &z->wake_val, sizeof(z->wake_val), 0);
}

/* ---- chroot ---- */

/* One create per component of the chroot ("/a", "/a/b"), in order on the
 * session, so that each parent exists before its child. */
static void chroot_create(struct meta_zk *z)
{
    if (z->chroot_pending) {
        return;
    }
    char part[SL_META_PATH_MAX];
    for (size_t i = 1; i <= z->chroot_len; i++) {
        if (i < z->chroot_len && z->chroot[i] != '/') {
            continue;
        }
        memcpy(part, z->chroot, i);
        part[i] = '\0';
        size_t saved = z->chroot_len;
        z->chroot_len = 0; /* rec_new prefixes the chroot: not for these */
        struct zk_rec *r = rec_new(z, REC_CHROOT, part);
        z->chroot_len = saved;
        if (r == NULL) {
            sl_error("cluster", "out of memory creating the chroot %s", z->chroot);
            return;
        }
        r->last = i == z->chroot_len;
        r->delivered = true;
        int rc = zoo_acreate(z->zh, r->path, "", 0, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT,
                             sl_meta_zk_on_string, r);
        if (rc != ZOK) {
            sl_warn("cluster", "cannot create the chroot component %s: %s", r->path, zerror(rc));
            rec_free(r);
            return;
        }
        z->chroot_pending = true;
    }
}

/* ---- the vtable ---- */

static struct meta_zk *zk_of(struct sl_meta *m)
{
    return (struct meta_zk *)m;
}

/* Common checks and the record of a call. *rc receives the error when NULL. */
static struct zk_rec *call_new(struct meta_zk *z, enum rec_kind kind, const char *path,
                               void (*cb)(void), void *arg, int *rc)
{
    if (z->closed || z->expired) {
        *rc = SL_ECLOSED;
        return NULL;
    }
    if (path != NULL && !path_ok(path)) {
        *rc = SL_EINVAL;
        return NULL;
    }
    if (z->inflight >= SL_META_ZK_INFLIGHT_MAX) {
        *rc = SL_ELIMIT;
        return NULL;
    }
    struct zk_rec *r = rec_new(z, kind, path);
    if (r == NULL) {
        *rc = SL_ENOMEM;
        return NULL;
    }
    r->cb = cb;
    r->arg = arg;
    z->inflight++;
    return r;
}

/* The library refused the call before sending it: the record goes. */
static int call_refused(struct zk_rec *r, int zrc)
{
    struct meta_zk *z = r->z;
    SL_ASSERT(z->inflight > 0);
    z->inflight--;
    if (r->watch != NULL) {
        rec_free(r->watch);
    }
    rec_free(r);
    /* ZINVALIDSTATE (SL_ECLOSED): the library knows the session expired, but
     * the owner learns it from the EXPIRED event still on its way through the
     * FIFO: marking the store expired here would swallow that event. */
    int err = map_rc(zrc);
    return err == SL_EAGAIN ? SL_ESYS : err;
}

static int zk_read(struct sl_meta *m, enum rec_kind kind, const char *path, sl_meta_watch_cb watch,
                   void *watch_arg, void (*cb)(void), void *arg)
{
    struct meta_zk *z = zk_of(m);
    if (z->inflight >= SL_META_ZK_INFLIGHT_MAX - SL_META_ZK_WRITE_RESERVE && !z->closed &&
        !z->expired) {
        return SL_ELIMIT; /* (the rest is the writes': SL_META_ZK_WRITE_RESERVE) */
    }
    int rc = SL_OK;
    struct zk_rec *r = call_new(z, kind, path, cb, arg, &rc);
    if (r == NULL) {
        return rc;
    }
    struct zk_rec *w = NULL;
    if (watch != NULL) {
        /* The watch record carries its own copy of the full path. */
        w = z->watches < SL_META_ZK_WATCHES_MAX ? rec_new(z, REC_WATCH, path) : NULL;
        if (w == NULL) {
            z->inflight--;
            rec_free(r);
            return z->watches < SL_META_ZK_WATCHES_MAX ? SL_ENOMEM : SL_ELIMIT;
        }
        w->cb = (void (*)(void))watch;
        w->arg = watch_arg;
        w->delivered = true; /* not a call: close frees it silently */
        z->watches++;
        r->watch = w;
    }
    int zrc;
    if (kind == REC_GET) {
        zrc = w != NULL ? zoo_awget(z->zh, r->path, sl_meta_zk_on_watch, w, sl_meta_zk_on_data, r)
                        : zoo_aget(z->zh, r->path, 0, sl_meta_zk_on_data, r);
    } else {
        zrc = w != NULL ? zoo_awget_children(z->zh, r->path, sl_meta_zk_on_watch, w,
                                             sl_meta_zk_on_strings, r)
                        : zoo_aget_children(z->zh, r->path, 0, sl_meta_zk_on_strings, r);
    }
    return zrc == ZOK ? SL_OK : call_refused(r, zrc);
}

static int zk_get(struct sl_meta *m, const char *path, sl_meta_watch_cb watch, void *watch_arg,
                  sl_meta_data_cb cb, void *arg)
{
    SL_ASSERT(cb != NULL);
    return zk_read(m, REC_GET, path, watch, watch_arg, (void (*)(void))cb, arg);
}

static int zk_children(struct sl_meta *m, const char *path, sl_meta_watch_cb watch, void *watch_arg,
                       sl_meta_children_cb cb, void *arg)
{
    SL_ASSERT(cb != NULL);
    return zk_read(m, REC_CHILDREN, path, watch, watch_arg, (void (*)(void))cb, arg);
}

static int create_mode(uint32_t flags)
{
    bool eph = (flags & SL_META_EPHEMERAL) != 0, seq = (flags & SL_META_SEQUENTIAL) != 0;
    return eph ? (seq ? ZOO_EPHEMERAL_SEQUENTIAL : ZOO_EPHEMERAL)
               : (seq ? ZOO_PERSISTENT_SEQUENTIAL : ZOO_PERSISTENT);
}

static bool data_ok(const uint8_t *data, size_t len)
{
    return len <= SL_META_DATA_MAX && (len == 0 || data != NULL);
}

static int zk_create(struct sl_meta *m, const char *path, const uint8_t *data, size_t len,
                     uint32_t flags, sl_meta_done_cb cb, void *arg)
{
    SL_ASSERT(cb != NULL);
    struct meta_zk *z = zk_of(m);
    if (!data_ok(data, len) || (flags & ~(uint32_t)(SL_META_EPHEMERAL | SL_META_SEQUENTIAL))) {
        return SL_EINVAL;
    }
    int rc = SL_OK;
    struct zk_rec *r = call_new(z, REC_CREATE, path, (void (*)(void))cb, arg, &rc);
    if (r == NULL) {
        return rc;
    }
    /* the library copies the data into its send buffer before returning */
    int zrc = zoo_acreate(z->zh, r->path, len > 0 ? (const char *)data : "", (int)len,
                          &ZOO_OPEN_ACL_UNSAFE, create_mode(flags), sl_meta_zk_on_string, r);
    return zrc == ZOK ? SL_OK : call_refused(r, zrc);
}

static int zk_set(struct sl_meta *m, const char *path, const uint8_t *data, size_t len,
                  int32_t version, sl_meta_done_cb cb, void *arg)
{
    SL_ASSERT(cb != NULL);
    struct meta_zk *z = zk_of(m);
    if (!data_ok(data, len) || version < -1) {
        return SL_EINVAL;
    }
    int rc = SL_OK;
    struct zk_rec *r = call_new(z, REC_SET, path, (void (*)(void))cb, arg, &rc);
    if (r == NULL) {
        return rc;
    }
    int zrc = zoo_aset(z->zh, r->path, len > 0 ? (const char *)data : "", (int)len, version,
                       sl_meta_zk_on_stat, r);
    return zrc == ZOK ? SL_OK : call_refused(r, zrc);
}

static int zk_remove(struct sl_meta *m, const char *path, int32_t version, sl_meta_done_cb cb,
                     void *arg)
{
    SL_ASSERT(cb != NULL);
    struct meta_zk *z = zk_of(m);
    if (version < -1) {
        return SL_EINVAL;
    }
    int rc = SL_OK;
    struct zk_rec *r = call_new(z, REC_REMOVE, path, (void (*)(void))cb, arg, &rc);
    if (r == NULL) {
        return rc;
    }
    int zrc = zoo_adelete(z->zh, r->path, version, sl_meta_zk_on_void, r);
    return zrc == ZOK ? SL_OK : call_refused(r, zrc);
}

static bool multi_ok(const struct sl_meta_op *ops, size_t n, size_t *bytes)
{
    if (ops == NULL || n == 0 || n > SL_META_MULTI_MAX) {
        return false;
    }
    size_t total = 0, data = 0;
    for (size_t i = 0; i < n; i++) {
        const struct sl_meta_op *o = &ops[i];
        if (!path_ok(o->path) || (unsigned)o->type > SL_META_OP_REMOVE || o->version < -1) {
            return false;
        }
        bool has_data = o->type == SL_META_OP_CREATE || o->type == SL_META_OP_SET;
        if (has_data && !data_ok(o->data, o->len)) {
            return false;
        }
        data += has_data ? o->len : 0;
        total += strlen(o->path) + 1 + (has_data ? o->len : 0);
    }
    *bytes = total;
    return data <= SL_META_DATA_MAX; /* meta.h: a multi's data in total */
}

static int zk_multi(struct sl_meta *m, const struct sl_meta_op *ops, size_t n, sl_meta_multi_cb cb,
                    void *arg)
{
    SL_ASSERT(cb != NULL);
    struct meta_zk *z = zk_of(m);
    size_t bytes = 0;
    if (!multi_ok(ops, n, &bytes)) {
        return SL_EINVAL;
    }
    int rc = SL_OK;
    struct zk_rec *r = call_new(z, REC_MULTI, NULL, (void (*)(void))cb, arg, &rc);
    if (r == NULL) {
        return rc;
    }
    /* One block: the op array, the result array, then each op's full path and data. */
    size_t head = n * (sizeof(zoo_op_t) + sizeof(zoo_op_result_t) + sizeof(struct Stat));
    r->ops = calloc(1, head + bytes + n * z->chroot_len + 1);
    if (r->ops == NULL) {
        z->inflight--;
        rec_free(r);
        return SL_ENOMEM;
    }
    r->results = (zoo_op_result_t *)(r->ops + n);
    struct Stat *stats = (struct Stat *)(r->results + n);
    char *p = (char *)(stats + n);
    r->nops = (uint32_t)n;
    for (size_t i = 0; i < n; i++) {
        const struct sl_meta_op *o = &ops[i];
        char *full = p;
        memcpy(p, z->chroot, z->chroot_len);
        p += z->chroot_len;
        if (!(z->chroot_len > 0 && strcmp(o->path, "/") == 0)) {
            size_t l = strlen(o->path);
            memcpy(p, o->path, l);
            p += l;
        }
        *p++ = '\0';
        const char *data = p;
        if (o->type == SL_META_OP_CREATE || o->type == SL_META_OP_SET) {
            if (o->len > 0) {
                memcpy(p, o->data, o->len);
                p += o->len;
            }
        }
        switch (o->type) {
        case SL_META_OP_CHECK:
            zoo_check_op_init(&r->ops[i], full, o->version);
            break;
        case SL_META_OP_CREATE:
            if (o->flags & ~(uint32_t)(SL_META_EPHEMERAL | SL_META_SEQUENTIAL)) {
                z->inflight--;
                rec_free(r);
                return SL_EINVAL;
            }
            zoo_create_op_init(&r->ops[i], full, data, (int)o->len, &ZOO_OPEN_ACL_UNSAFE,
                               create_mode(o->flags), NULL, 0);
            break;
        case SL_META_OP_SET:
            zoo_set_op_init(&r->ops[i], full, data, (int)o->len, o->version, &stats[i]);
            break;
        case SL_META_OP_REMOVE:
            zoo_delete_op_init(&r->ops[i], full, o->version);
            break;
        }
    }
    int zrc = zoo_amulti(z->zh, (int)n, r->ops, r->results, sl_meta_zk_on_multi, r);
    return zrc == ZOK ? SL_OK : call_refused(r, zrc);
}

static int64_t zk_session_id(const struct sl_meta *m)
{
    const struct meta_zk *z = (const struct meta_zk *)m;
    return z->expired ? 0 : z->session_id;
}

/* Stores opened and not yet freed (loop thread): a closed store is freed when
 * the ring's read of its eventfd ends, at the loop's next turn. */
static uint32_t live_stores;

uint32_t sl_meta_zk_live_stores(void)
{
    return live_stores;
}

static void free_store(struct meta_zk *z)
{
    SL_ASSERT(z->closed && !z->armed && z->recs == NULL);
    if (z->counted) {
        SL_ASSERT(live_stores > 0);
        live_stores--;
    }
    for (uint32_t i = 0; i < SL_META_ZK_SESSION_EVENTS_MAX; i++) {
        free(z->session_slots[i]);
    }
    if (z->efd >= 0) {
        close(z->efd);
    }
    pthread_mutex_destroy(&z->mu);
    free(z);
}

/* Closes the handle (the library answers what it still held with ZCLOSING,
 * onto `done`), then answers every call not yet answered with SL_ECLOSED, in
 * the order they were made, and frees every record. */
static void zk_close(struct sl_meta *m)
{
    struct meta_zk *z = zk_of(m);
    SL_ASSERT(!z->closed);
    z->closed = true;
    if (z->zh != NULL) {
        zookeeper_close(z->zh); /* joins the library's threads: nothing posts after this */
        z->zh = NULL;
    }
    pthread_mutex_lock(&z->mu);
    z->done = NULL;
    z->done_tail = &z->done;
    pthread_mutex_unlock(&z->mu);
    while (z->recs != NULL) {
        struct zk_rec *r = z->recs;
        if (!r->delivered) {
            r->delivered = true;
            r->rc = ZCLOSING;
            SL_ASSERT(z->inflight > 0);
            z->inflight--;
            if (r->watch != NULL) {
                rec_free(r->watch);
                r->watch = NULL;
            }
            deliver(r);
        }
        rec_free(r);
    }
    SL_ASSERT(z->inflight == 0 && z->watches == 0);
    if (z->in_drain) {
        return; /* on_wake frees the store when the callback that closed it returns */
    }
    if (z->armed) {
        /* The ring still names the store: the read ends (and on_wake frees the
         * store) at the loop's next turn. Never run the ring from here: close
         * may be called from any of its callbacks. */
        sl_meta_zk_wake(z);
        return;
    }
    free_store(z);
}

static const struct sl_meta_vtable zk_vtable = {
    .get = zk_get,
    .children = zk_children,
    .create = zk_create,
    .set = zk_set,
    .remove = zk_remove,
    .multi = zk_multi,
    .session_id = zk_session_id,
    .close = zk_close,
};

/* ---- open ---- */

/* "h:p,h:p/chroot" -> hosts and chroot (no trailing '/'). */
static int parse_connect(struct meta_zk *z, const char *connect, char *why, size_t whylen)
{
    size_t n = connect != NULL ? strnlen(connect, SL_META_ZK_CONNECT_MAX) : 0;
    if (n == 0 || n >= SL_META_ZK_CONNECT_MAX) {
        snprintf(why, whylen,
                 "the ZooKeeper connect string is %s; give host:port[,host:port]"
                 "[/chroot] (at most %u bytes)",
                 n == 0 ? "empty" : "too long", SL_META_ZK_CONNECT_MAX - 1);
        return SL_EINVAL;
    }
    const char *slash = strchr(connect, '/');
    size_t hl = slash != NULL ? (size_t)(slash - connect) : n;
    if (hl == 0 || strchr(connect, ':') == NULL || strchr(connect, ':') > connect + hl) {
        snprintf(why, whylen,
                 "the ZooKeeper connect string \"%s\" names no host:port; give "
                 "host:port[,host:port][/chroot]",
                 connect);
        return SL_EINVAL;
    }
    memcpy(z->hosts, connect, hl);
    z->hosts[hl] = '\0';
    if (slash != NULL) {
        size_t cl = n - hl;
        while (cl > 1 && slash[cl - 1] == '/') {
            cl--;
        }
        if (cl >= SL_META_PATH_MAX / 2) {
            snprintf(why, whylen, "the chroot in \"%s\" is longer than %u bytes", connect,
                     SL_META_PATH_MAX / 2 - 1);
            return SL_EINVAL;
        }
        if (cl > 1) {
            memcpy(z->chroot, slash, cl);
            z->chroot[cl] = '\0';
            if (!path_ok(z->chroot)) {
                snprintf(why, whylen,
                         "the chroot \"%s\" is not a ZooKeeper path (\"/name\", "
                         "no empty component)",
                         z->chroot);
                return SL_EINVAL;
            }
            z->chroot_len = cl;
        }
    }
    return SL_OK;
}

static int open_handle(struct meta_zk *z, char *why, size_t whylen)
{
    /* The library's threads inherit this mask: every signal blocked in them,
     * as in every helper thread of the broker (common/thread.h). */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    errno = 0;
    z->zh = zookeeper_init2(z->hosts, sl_meta_zk_on_session, (int)z->session_timeout_ms, NULL, z, 0,
                            sl_meta_zk_log);
    int e = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (z->zh == NULL) {
        snprintf(why, whylen,
                 "the ZooKeeper client refused \"%s\" (%s): check that each "
                 "HOST:PORT --cluster names resolves and is well formed",
                 z->hosts, strerror(e != 0 ? e : EINVAL));
        return e == EINVAL || e == 0 ? SL_EINVAL : SL_ESYS;
    }
    return SL_OK;
}

int sl_meta_zk_open(const char *connect, uint32_t session_timeout_ms, struct sl_ring *ring,
                    sl_meta_session_cb on_session, void *session_arg, struct sl_meta **out,
                    char *why, size_t whylen)
{
    SL_ASSERT(ring != NULL && out != NULL);
    *out = NULL;
    if (session_timeout_ms < SL_META_ZK_SESSION_MIN_MS ||
        session_timeout_ms > SL_META_ZK_SESSION_MAX_MS) {
        snprintf(why, whylen, "the ZooKeeper session timeout %u ms is out of range [%u, %u]",
                 session_timeout_ms, SL_META_ZK_SESSION_MIN_MS, SL_META_ZK_SESSION_MAX_MS);
        return SL_EINVAL;
    }
    struct meta_zk *z = calloc(1, sizeof(*z));
    if (z == NULL) {
        snprintf(why, whylen, "out of memory");
        return SL_ENOMEM;
    }
    z->base.vt = &zk_vtable;
    z->base.on_session = on_session;
    z->base.session_arg = session_arg;
    z->ring = ring;
    z->session_timeout_ms = session_timeout_ms;
    z->efd = -1;
    z->done_tail = &z->done;
    z->chroot_ready = true;
    pthread_mutex_init(&z->mu, NULL);
    int rc = parse_connect(z, connect, why, whylen);
    z->chroot_ready = z->chroot_len == 0;
    for (uint32_t i = 0; rc == SL_OK && i < SL_META_ZK_SESSION_EVENTS_MAX; i++) {
        struct zk_rec *s = calloc(1, sizeof(*s) + 1);
        if (s == NULL) {
            snprintf(why, whylen, "out of memory");
            rc = SL_ENOMEM;
            break;
        }
        s->kind = REC_SESSION;
        s->z = z;
        s->done_next = z->session_free;
        z->session_free = s;
        z->session_slots[i] = s;
    }
    if (rc == SL_OK) {
        z->efd = eventfd(0, EFD_CLOEXEC);
        if (z->efd < 0) {
            snprintf(why, whylen, "eventfd: %s", strerror(errno));
            rc = SL_ESYS;
        }
    }
    if (rc == SL_OK) {
        rc = open_handle(z, why, whylen);
    }
    if (rc != SL_OK) {
        z->closed = true;
        free_store(z);
        return rc;
    }
    z->wake_op.cb = on_wake;
    z->armed = true;
    z->counted = true;
    live_stores++;
    sl_ring_read(ring, &z->wake_op, z->efd, &z->wake_val, sizeof(z->wake_val), 0);
    sl_info("cluster", "connecting to ZooKeeper at %s (chroot %s, session timeout %u ms)", z->hosts,
            z->chroot_len > 0 ? z->chroot : "/", session_timeout_ms);
    *out = &z->base;
    return SL_OK;
}

/* ---- test hook ---- */

static void quiet_watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx)
{
    (void)zh;
    (void)type;
    (void)state;
    (void)path;
    (void)ctx;
}

int sl_meta_zk_expire_for_test(struct sl_meta *m)
{
    struct meta_zk *z = zk_of(m);
    if (z->closed || z->expired || z->zh == NULL || zoo_state(z->zh) != ZOO_CONNECTED_STATE) {
        return SL_ECLOSED;
    }
    clientid_t cid = *zoo_client_id(z->zh);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    zhandle_t *twin = zookeeper_init2(z->hosts, quiet_watcher, (int)z->session_timeout_ms, &cid,
                                      NULL, 0, sl_meta_zk_log);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (twin == NULL) {
        return SL_ESYS;
    }
    int rc = SL_EAGAIN;
    for (int i = 0; i < 1000; i++) {
        if (zoo_state(twin) == ZOO_CONNECTED_STATE) {
            rc = SL_OK;
            break;
        }
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    zookeeper_close(twin); /* closes the shared session: the server drops its ephemerals */
    return rc;
}
