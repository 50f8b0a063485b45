/* meta_zk_int.h - what the two files of the ZooKeeper store share (meta_zk.c:
 * the loop's side; meta_zk_thread.c: what runs on the library's threads).
 * Included by nothing else; with them, the only includers of zookeeper.h. */
#ifndef SL_CLUSTER_META_ZK_INT_H
#define SL_CLUSTER_META_ZK_INT_H

#include "broker/cluster/meta_zk.h"
#include "common/ring.h"

#include <zookeeper/zookeeper.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

enum rec_kind {
    REC_GET,
    REC_CHILDREN,
    REC_CREATE,
    REC_SET,
    REC_REMOVE,
    REC_MULTI,
    REC_WATCH,   /* a watch (the library's watcher context) */
    REC_CHROOT,  /* the store's own create of a chroot component */
    REC_SESSION, /* a session event (one of the store's slots, never freed) */
};

struct meta_zk;

struct zk_rec {
    enum rec_kind kind;
    struct meta_zk *z;
    struct zk_rec *prev, *next; /* z->recs: every live record (loop thread) */
    struct zk_rec *done_next;   /* z->done (under mu) */
    void (*cb)(void);           /* the owner's callback, cast back by kind */
    void *arg;
    struct zk_rec *watch; /* REC_GET/REC_CHILDREN: the watch it set, or NULL */
    bool delivered;       /* the callback ran (or the record is internal) */
    bool last;            /* REC_CHROOT: the chroot itself (the last component) */
    /* The result, written by the library's thread before the record reaches done. */
    int rc;
    uint8_t *data; /* get: a copy of the node's data; children: the names' block */
    size_t len;    /* get: data bytes; children: the number of names */
    struct sl_meta_stat stat;
    int failed_op;
    int session_state; /* REC_SESSION */
    int64_t session_id;
    /* multi: the library's op and result arrays and the copied paths and data. */
    zoo_op_t *ops;
    zoo_op_result_t *results;
    uint32_t nops;
    char path[]; /* the full path (chroot included) the call named, NUL-terminated */
};

struct meta_zk {
    struct sl_meta base; /* first: a struct sl_meta * is a struct meta_zk * */
    zhandle_t *zh;
    struct sl_ring *ring;
    char hosts[SL_META_ZK_CONNECT_MAX];
    char chroot[SL_META_PATH_MAX]; /* "" or "/a/b" (no trailing slash) */
    size_t chroot_len;
    uint32_t session_timeout_ms;

    /* Loop thread only. */
    struct zk_rec *recs; /* every live record, oldest first (tail: recs->prev) */
    uint32_t inflight;   /* calls whose callback has not run */
    uint32_t watches;    /* watch records alive */
    bool chroot_ready;
    bool chroot_pending;
    bool expired;
    bool closed;
    bool in_drain;             /* on_wake is running callbacks */
    enum sl_meta_session told; /* the last state given to on_session */
    bool told_any;
    int64_t session_id;
    int efd;
    struct sl_io_op wake_op;
    uint64_t wake_val;
    bool armed;
    bool counted; /* in live_stores */

    /* The library's threads and the loop. */
    pthread_mutex_t mu;
    struct zk_rec *done, **done_tail;
    struct zk_rec *session_free; /* unused session-event slots */
    struct zk_rec *session_last; /* the newest session event still in done, or NULL */
    struct zk_rec *session_slots[SL_META_ZK_SESSION_EVENTS_MAX];
};

/* The library's completions and watchers (meta_zk_thread.c): each copies what
 * it carries into its record, appends it to `done` under `mu` and wakes the
 * loop. They never call ZooKeeper and never run an owner's callback. */
void sl_meta_zk_on_void(int rc, const void *data);
void sl_meta_zk_on_string(int rc, const char *value, const void *data);
void sl_meta_zk_on_stat(int rc, const struct Stat *stat, const void *data);
void sl_meta_zk_on_data(int rc, const char *value, int value_len, const struct Stat *stat,
                        const void *data);
void sl_meta_zk_on_strings(int rc, const struct String_vector *strings, const void *data);
void sl_meta_zk_on_multi(int rc, const void *data);
void sl_meta_zk_on_watch(zhandle_t *zh, int type, int state, const char *path, void *ctx);
void sl_meta_zk_on_session(zhandle_t *zh, int type, int state, const char *path, void *ctx);
/* Writes the store's eventfd (any thread). */
void sl_meta_zk_wake(struct meta_zk *z);
/* The library's log lines, at debug (the store logs what the owner needs). */
void sl_meta_zk_log(const char *message);

#endif
