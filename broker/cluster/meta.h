/* meta.h - the cluster's metadata store, behind an interface of our own (#14).
 *
 * What a cluster keeps outside any broker: which brokers are alive, who is the
 * controller, and per shard {leader, leader_epoch, isr, replicas}. ZooKeeper
 * holds it in a real cluster (meta_zk.c); the replication simulator holds it in
 * a deterministic model of ZooKeeper's semantics. Both implement this table, so
 * the controller and the replication code never see which one runs under them.
 *
 * The semantics are ZooKeeper's, because they are the ones the design relies on:
 * - A node has data (at most SL_META_DATA_MAX bytes) and a version that every
 *   successful set increments. A set or remove with version >= 0 applies only
 *   at that version, else SL_ECONFLICT; version -1 means any.
 * - Ephemeral nodes vanish when the session that created them expires (or the
 *   store is closed); sequential nodes get a 10-digit counter appended.
 * - multi applies all of its ops atomically or none (the first failing op's
 *   error is reported, with its index). `check` is how a controller fences
 *   itself: multi(check /controller_epoch@v, set state@v').
 * - Watches are one-shot: they fire once, on the first change after the read
 *   that set them, and must be set again by a new read. A read that fails
 *   (SL_ENOTFOUND included) sets no watch, as ZooKeeper's getData: to learn
 *   when a node appears, watch its parent's children.
 * - SL_EAGAIN means the connection was lost while a call was outstanding: its
 *   outcome is unknown (it may have applied). Callers re-read before acting.
 *   SL_ECLOSED means the session expired or the store was closed: every
 *   ephemeral node of the session is gone; the owner must make a new store,
 *   re-register, and stop acting as leader until it is confirmed again.
 *
 * Threading: every callback (results, watches, session events) runs on the
 * thread that owns the store (the main loop), never on a client library's
 * thread, and never from inside the call that started it. A callback may issue
 * new calls. The store copies every argument it needs before returning; data
 * and names passed to a callback are valid only during the callback.
 *
 * Order: one store's calls are applied and answered in the order they were
 * made (ZooKeeper's FIFO client order), so a create followed by a listing of
 * its parent sees the node. Close: the outstanding calls' callbacks run (with
 * SL_ECLOSED) inside close, watches are dropped without firing, and nothing
 * runs after close returns: the owner may then free what callbacks point to
 * (the controller relies on both).
 */
#ifndef SL_CLUSTER_META_H
#define SL_CLUSTER_META_H

#include <stddef.h>
#include <stdint.h>

/* A node's data, and a multi's data in total. ZooKeeper's jute.maxbuffer
 * (default 0xfffff = 1 MiB - 1) bounds a whole request packet, paths and
 * headers included, and a server refuses a larger one by dropping the
 * connection (every outstanding call then answers SL_EAGAIN): 960 KiB of data
 * plus SL_META_MULTI_MAX paths of SL_META_PATH_MAX bytes stay under it. */
#define SL_META_DATA_MAX (960u * 1024u)
#define SL_META_PATH_MAX 512u
#define SL_META_MULTI_MAX 64u /* ops in one multi */

enum {
    SL_META_EPHEMERAL = 1u << 0,
    SL_META_SEQUENTIAL = 1u << 1,
};

enum sl_meta_session {
    SL_META_CONNECTED,    /* (re)connected; the session is alive */
    SL_META_DISCONNECTED, /* connection lost; the session may still be alive */
    SL_META_EXPIRED,      /* the session is gone, and its ephemeral nodes with it */
};

struct sl_meta_stat {
    int32_t version;         /* data version */
    int32_t cversion;        /* children version */
    int64_t ephemeral_owner; /* session id, 0 for a persistent node */
    /* The transaction that created the node: a node removed and created again at the same
     * path has another (a stream deleted and made anew, docs/REPLICATION.md). */
    int64_t czxid;
};

enum sl_meta_op_type {
    SL_META_OP_CHECK,  /* path at version (no change) */
    SL_META_OP_CREATE, /* path, data, flags */
    SL_META_OP_SET,    /* path, data, version */
    SL_META_OP_REMOVE, /* path, version */
};

struct sl_meta_op {
    enum sl_meta_op_type type;
    const char *path;
    const uint8_t *data;
    size_t len;
    int32_t version;
    uint32_t flags;
};

struct sl_meta;

/* err: SL_OK, SL_ENOTFOUND, SL_EEXIST, SL_ECONFLICT, SL_EINVAL (a remove of a node
 * with children, a bad path), SL_EAGAIN (outcome unknown), SL_ECLOSED. */
typedef void (*sl_meta_data_cb)(void *arg, int err, const uint8_t *data, size_t len,
                                const struct sl_meta_stat *stat);
typedef void (*sl_meta_children_cb)(void *arg, int err, const char *const *names, size_t n);
/* path: the created node's name (with its sequence suffix) for a create; NULL otherwise. */
typedef void (*sl_meta_done_cb)(void *arg, int err, const char *path);
/* multi: failed_op is the index of the op that failed, or -1. */
typedef void (*sl_meta_multi_cb)(void *arg, int err, int failed_op);
/* A one-shot watch fired: the node (or its children) changed or was removed. */
typedef void (*sl_meta_watch_cb)(void *arg, const char *path);
typedef void (*sl_meta_session_cb)(void *arg, enum sl_meta_session ev);

struct sl_meta_vtable {
    int (*get)(struct sl_meta *m, const char *path, sl_meta_watch_cb watch, void *watch_arg,
               sl_meta_data_cb cb, void *arg);
    int (*children)(struct sl_meta *m, const char *path, sl_meta_watch_cb watch,
                    void *watch_arg, sl_meta_children_cb cb, void *arg);
    int (*create)(struct sl_meta *m, const char *path, const uint8_t *data, size_t len,
                  uint32_t flags, sl_meta_done_cb cb, void *arg);
    int (*set)(struct sl_meta *m, const char *path, const uint8_t *data, size_t len,
               int32_t version, sl_meta_done_cb cb, void *arg);
    int (*remove)(struct sl_meta *m, const char *path, int32_t version, sl_meta_done_cb cb,
                  void *arg);
    int (*multi)(struct sl_meta *m, const struct sl_meta_op *ops, size_t n, sl_meta_multi_cb cb,
                 void *arg);
    int64_t (*session_id)(const struct sl_meta *m);
    void (*close)(struct sl_meta *m); /* outstanding callbacks run with SL_ECLOSED first */
};

/* The common head of every implementation. A call returns SL_OK when its
 * callback will run, or an error (SL_EINVAL: path or size out of bounds,
 * SL_ECLOSED, SL_ENOMEM, SL_ELIMIT: the implementation's bound on calls or
 * watches outstanding is reached) when it will not. */
struct sl_meta {
    const struct sl_meta_vtable *vt;
    sl_meta_session_cb on_session;
    void *session_arg;
};

static inline int sl_meta_get(struct sl_meta *m, const char *path, sl_meta_watch_cb watch,
                              void *watch_arg, sl_meta_data_cb cb, void *arg)
{
    return m->vt->get(m, path, watch, watch_arg, cb, arg);
}
static inline int sl_meta_children(struct sl_meta *m, const char *path, sl_meta_watch_cb watch,
                                   void *watch_arg, sl_meta_children_cb cb, void *arg)
{
    return m->vt->children(m, path, watch, watch_arg, cb, arg);
}
static inline int sl_meta_create(struct sl_meta *m, const char *path, const uint8_t *data,
                                 size_t len, uint32_t flags, sl_meta_done_cb cb, void *arg)
{
    return m->vt->create(m, path, data, len, flags, cb, arg);
}
static inline int sl_meta_set(struct sl_meta *m, const char *path, const uint8_t *data,
                              size_t len, int32_t version, sl_meta_done_cb cb, void *arg)
{
    return m->vt->set(m, path, data, len, version, cb, arg);
}
static inline int sl_meta_remove(struct sl_meta *m, const char *path, int32_t version,
                                 sl_meta_done_cb cb, void *arg)
{
    return m->vt->remove(m, path, version, cb, arg);
}
static inline int sl_meta_multi(struct sl_meta *m, const struct sl_meta_op *ops, size_t n,
                                sl_meta_multi_cb cb, void *arg)
{
    return m->vt->multi(m, ops, n, cb, arg);
}
static inline int64_t sl_meta_session_id(const struct sl_meta *m)
{
    return m->vt->session_id(m);
}
static inline void sl_meta_close(struct sl_meta *m)
{
    m->vt->close(m);
}

#endif /* SL_CLUSTER_META_H */
