/* meta_zk_thread.c - the ZooKeeper store's side that runs on the client
 * library's threads (see meta_zk.c for the whole picture): completions and
 * watchers copy what they carry into their record (or a session-event slot),
 * append it to the store's `done` FIFO under `mu` and write the eventfd. They
 * never call ZooKeeper, never run an owner's callback and never free a
 * record: the loop does that once it has taken the record from `done`. */
#include "broker/cluster/meta_zk_int.h"

#include "common/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void sl_meta_zk_wake(struct meta_zk *z)
{
    uint64_t one = 1;
    ssize_t n;
    do {
        n = write(z->efd, &one, sizeof(one));
    } while (n < 0 && errno == EINTR);
    /* (an eventfd's counter only overflows after 2^64 - 2 writes) */
}

static void post(struct zk_rec *r)
{
    struct meta_zk *z = r->z;
    pthread_mutex_lock(&z->mu);
    r->done_next = NULL;
    *z->done_tail = r;
    z->done_tail = &r->done_next;
    pthread_mutex_unlock(&z->mu);
    sl_meta_zk_wake(z);
}

void sl_meta_zk_on_void(int rc, const void *data)
{
    struct zk_rec *r = (struct zk_rec *)data;
    r->rc = rc;
    post(r);
}

void sl_meta_zk_on_string(int rc, const char *value, const void *data)
{
    struct zk_rec *r = (struct zk_rec *)data;
    r->rc = rc;
    if (rc == ZOK && value != NULL) {
        size_t n = strlen(value);
        r->data = malloc(n + 1);
        if (r->data != NULL) {
            memcpy(r->data, value, n + 1);
            r->len = n;
        } else {
            r->rc = ZMARSHALLINGERROR; /* applied, but the name is lost: reported as ENOMEM */
        }
    }
    post(r);
}

static void copy_stat(struct sl_meta_stat *out, const struct Stat *st)
{
    out->version = st->version;
    out->cversion = st->cversion;
    out->ephemeral_owner = st->ephemeralOwner;
    out->czxid = st->czxid;
}

void sl_meta_zk_on_stat(int rc, const struct Stat *stat, const void *data)
{
    struct zk_rec *r = (struct zk_rec *)data;
    r->rc = rc;
    if (rc == ZOK && stat != NULL) {
        copy_stat(&r->stat, stat);
    }
    post(r);
}

void sl_meta_zk_on_data(int rc, const char *value, int value_len, const struct Stat *stat,
                        const void *data)
{
    struct zk_rec *r = (struct zk_rec *)data;
    r->rc = rc;
    if (rc == ZOK) {
        copy_stat(&r->stat, stat);
        size_t n = value != NULL && value_len > 0 ? (size_t)value_len : 0;
        if (n > SL_META_DATA_MAX) {
            r->rc = ZMARSHALLINGERROR; /* the server's jute.maxbuffer is larger than ours */
        } else if (n > 0) {
            r->data = malloc(n);
            if (r->data == NULL) {
                r->rc = ZMARSHALLINGERROR;
            } else {
                memcpy(r->data, value, n);
                r->len = n;
            }
        }
    }
    post(r);
}

/* The names as one block: n pointers, then the NUL-terminated strings. */
void sl_meta_zk_on_strings(int rc, const struct String_vector *strings, const void *data)
{
    struct zk_rec *r = (struct zk_rec *)data;
    r->rc = rc;
    if (rc == ZOK && strings != NULL && strings->count > 0) {
        size_t n = (size_t)strings->count;
        size_t bytes = n * sizeof(char *);
        for (size_t i = 0; i < n; i++) {
            bytes += strlen(strings->data[i]) + 1;
        }
        char **names = malloc(bytes);
        if (names == NULL) {
            r->rc = ZMARSHALLINGERROR;
        } else {
            char *p = (char *)(names + n);
            for (size_t i = 0; i < n; i++) {
                size_t l = strlen(strings->data[i]) + 1;
                memcpy(p, strings->data[i], l);
                names[i] = p;
                p += l;
            }
            r->data = (uint8_t *)names;
            r->len = n;
        }
    }
    post(r);
}

/* The first op that failed: the server answers ZOK for the ops before it and
 * ZRUNTIMEINCONSISTENCY for those after. */
void sl_meta_zk_on_multi(int rc, const void *data)
{
    struct zk_rec *r = (struct zk_rec *)data;
    r->rc = rc;
    r->failed_op = -1;
    if (rc != ZOK) {
        for (uint32_t i = 0; i < r->nops; i++) {
            int e = r->results[i].err;
            if (e != ZOK && e != ZRUNTIMEINCONSISTENCY) {
                r->failed_op = (int)i;
                r->rc = e;
                break;
            }
        }
    }
    post(r);
}

void sl_meta_zk_on_watch(zhandle_t *zh, int type, int state, const char *path, void *ctx)
{
    (void)zh;
    (void)state;
    (void)path;
    if (type == ZOO_SESSION_EVENT || type == ZOO_NOTWATCHING_EVENT) {
        return; /* still set (or gone with the session): not a change of the node */
    }
    post((struct zk_rec *)ctx);
}

void sl_meta_zk_on_session(zhandle_t *zh, int type, int state, const char *path, void *ctx)
{
    (void)path;
    if (type != ZOO_SESSION_EVENT) {
        return;
    }
    struct meta_zk *z = ctx;
    int64_t id = 0;
    if (state == ZOO_CONNECTED_STATE) {
        const clientid_t *cid = zoo_client_id(zh);
        id = cid != NULL ? cid->client_id : 0;
    }
    pthread_mutex_lock(&z->mu);
    struct zk_rec *s = z->session_free;
    if (s != NULL) {
        z->session_free = s->done_next;
        s->session_state = state;
        s->session_id = id;
        s->done_next = NULL;
        *z->done_tail = s;
        z->done_tail = &s->done_next;
        z->session_last = s;
    } else if (z->session_last != NULL &&
               z->session_last->session_state != ZOO_EXPIRED_SESSION_STATE) {
        z->session_last->session_state = state; /* full: the newest state wins */
        z->session_last->session_id = id;
    }
    pthread_mutex_unlock(&z->mu);
    sl_meta_zk_wake(z);
}

/* The library's log lines (connection refused, reconnecting...) at debug:
 * the store logs what the owner needs (lost, expired) itself. */
void sl_meta_zk_log(const char *message)
{
    sl_debug("zookeeper", "%s", message);
}
