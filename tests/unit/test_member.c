/* test_member.c - broker membership (broker/cluster/member.c) on a fake metadata store:
 * the branches a real ZooKeeper does not produce on demand.
 *
 * The fake (a handful of nodes, one session per store) applies each call when it is made
 * and answers it from fake_run(), later, in order, as meta.h requires; it can lose the
 * answer of the next create (applied, answered SL_EAGAIN), expire its session, and hold
 * nodes of other sessions. Covers: registration and the list; a create whose answer was
 * lost (the retry finds the node owned by its own session: registered, not refused); an
 * id held by another live broker (refused, the reason names the holder and the fix); an
 * id held by a previous session of this broker's address (waits, registers once it goes);
 * peers whose record does not decode or names another id are left out; expiry (a new
 * store from the opener, registered again, the old one closed).
 */
#include "broker/cluster/member.h"
#include "common/error.h"

#include "tests/unit/test.h"

#include <stdbool.h>
#include <stdint.h>

#define NODES_MAX 32
#define Q_MAX     256

struct fnode {
    bool used;
    char path[SL_META_PATH_MAX + 1];
    uint8_t data[SL_MEMBER_RECORD_MAX];
    size_t len;
    int64_t owner;
};

struct fake;

struct answer {
    enum { A_DONE, A_DATA, A_CHILDREN, A_SESSION, A_WATCH } kind;
    void *cb;
    void *arg;
    int err;
    int node; /* A_DATA: the node answered */
    char path[SL_META_PATH_MAX + 1];
    enum sl_meta_session ev;
    struct fake *f;
};

struct fake {
    struct sl_meta base;
    int64_t session;
    bool closed;
    bool lose_next_create;
    sl_meta_watch_cb child_watch;
    void *child_watch_arg;
};

static struct fnode nodes[NODES_MAX];
static struct answer q[Q_MAX];
static size_t q_head, q_len;
static int64_t next_session = 100;
static struct fake *stores[8];
static int n_stores;

static int find(const char *path)
{
    for (int i = 0; i < NODES_MAX; i++) {
        if (nodes[i].used && strcmp(nodes[i].path, path) == 0) {
            return i;
        }
    }
    return -1;
}

static void push(struct answer a)
{
    if (q_len < Q_MAX) {
        q[(q_head + q_len++) % Q_MAX] = a;
    }
}

static bool is_child_of(const char *path, const char *parent)
{
    size_t n = strlen(parent);
    return strncmp(path, parent, n) == 0 && path[n] == '/' && strchr(path + n + 1, '/') == NULL;
}

/* A child of /brokers/ids came or went: the one-shot children watch fires. */
static void child_changed(struct fake *f, const char *path)
{
    for (int s = 0; s < n_stores; s++) {
        struct fake *w = stores[s];
        if (!w->closed && w->child_watch != NULL && is_child_of(path, "/brokers/ids")) {
            push((struct answer){
                .kind = A_WATCH, .cb = (void *)w->child_watch, .arg = w->child_watch_arg, .f = w});
            w->child_watch = NULL;
        }
    }
    (void)f;
}

static int node_add(const char *path, const uint8_t *data, size_t len, int64_t owner)
{
    for (int i = 0; i < NODES_MAX; i++) {
        if (!nodes[i].used) {
            nodes[i].used = true;
            snprintf(nodes[i].path, sizeof(nodes[i].path), "%s", path);
            if (len > 0) {
                memcpy(nodes[i].data, data, len);
            }
            nodes[i].len = len;
            nodes[i].owner = owner;
            return i;
        }
    }
    return -1;
}

static int f_get(struct sl_meta *m, const char *path, sl_meta_watch_cb watch, void *watch_arg,
                 sl_meta_data_cb cb, void *arg)
{
    struct fake *f = (struct fake *)m;
    (void)watch;
    (void)watch_arg;
    if (f->closed) {
        return SL_ECLOSED;
    }
    int i = find(path);
    push((struct answer){.kind = A_DATA,
                         .cb = (void *)cb,
                         .arg = arg,
                         .f = f,
                         .err = i < 0 ? SL_ENOTFOUND : SL_OK,
                         .node = i});
    return SL_OK;
}

static int f_children(struct sl_meta *m, const char *path, sl_meta_watch_cb watch, void *watch_arg,
                      sl_meta_children_cb cb, void *arg)
{
    struct fake *f = (struct fake *)m;
    if (f->closed) {
        return SL_ECLOSED;
    }
    bool exists = find(path) >= 0;
    if (exists && watch != NULL) {
        f->child_watch = watch;
        f->child_watch_arg = watch_arg;
    }
    struct answer a = {.kind = A_CHILDREN,
                       .cb = (void *)cb,
                       .arg = arg,
                       .f = f,
                       .err = exists ? SL_OK : SL_ENOTFOUND};
    snprintf(a.path, sizeof(a.path), "%s", path);
    push(a);
    return SL_OK;
}

static int f_create(struct sl_meta *m, const char *path, const uint8_t *data, size_t len,
                    uint32_t flags, sl_meta_done_cb cb, void *arg)
{
    struct fake *f = (struct fake *)m;
    if (f->closed) {
        return SL_ECLOSED;
    }
    int err = SL_OK;
    if (find(path) >= 0) {
        err = SL_EEXIST;
    } else {
        node_add(path, data, len, (flags & SL_META_EPHEMERAL) ? f->session : 0);
        child_changed(f, path);
        if (f->lose_next_create && strncmp(path, "/brokers/ids/", 13) == 0) {
            f->lose_next_create = false;
            err = SL_EAGAIN; /* applied, answer lost */
        }
    }
    push((struct answer){.kind = A_DONE, .cb = (void *)cb, .arg = arg, .f = f, .err = err});
    return SL_OK;
}

static int f_unused_set(struct sl_meta *m, const char *p, const uint8_t *d, size_t l, int32_t v,
                        sl_meta_done_cb cb, void *arg)
{
    (void)m, (void)p, (void)d, (void)l, (void)v, (void)cb, (void)arg;
    return SL_EINVAL;
}

static int f_unused_remove(struct sl_meta *m, const char *p, int32_t v, sl_meta_done_cb cb,
                           void *arg)
{
    (void)m, (void)p, (void)v, (void)cb, (void)arg;
    return SL_EINVAL;
}

static int f_unused_multi(struct sl_meta *m, const struct sl_meta_op *ops, size_t n,
                          sl_meta_multi_cb cb, void *arg)
{
    (void)m, (void)ops, (void)n, (void)cb, (void)arg;
    return SL_EINVAL;
}

static int64_t f_session_id(const struct sl_meta *m)
{
    const struct fake *f = (const struct fake *)m;
    return f->closed ? 0 : f->session;
}

/* The session's ephemeral nodes go. */
static void drop_session(int64_t session)
{
    for (int i = 0; i < NODES_MAX; i++) {
        if (nodes[i].used && nodes[i].owner == session) {
            nodes[i].used = false;
            child_changed(NULL, nodes[i].path);
        }
    }
}

static void deliver(struct answer *a);

static void f_close(struct sl_meta *m)
{
    struct fake *f = (struct fake *)m;
    f->closed = true;
    drop_session(f->session);
    /* outstanding answers of this store run with SL_ECLOSED first */
    for (size_t k = 0; k < q_len; k++) {
        struct answer *a = &q[(q_head + k) % Q_MAX];
        if (a->f == f && a->kind != A_WATCH && a->kind != A_SESSION && a->cb != NULL) {
            a->err = SL_ECLOSED;
            deliver(a);
            a->cb = NULL;
        }
    }
}

static const struct sl_meta_vtable fake_vt = {
    .get = f_get,
    .children = f_children,
    .create = f_create,
    .set = f_unused_set,
    .remove = f_unused_remove,
    .multi = f_unused_multi,
    .session_id = f_session_id,
    .close = f_close,
};

static void deliver(struct answer *a)
{
    static const char *names[NODES_MAX];
    switch (a->kind) {
    case A_DONE:
        ((sl_meta_done_cb)a->cb)(a->arg, a->err, NULL);
        break;
    case A_DATA: {
        struct sl_meta_stat st = {0};
        bool ok = a->err == SL_OK && a->node >= 0 && nodes[a->node].used;
        if (ok) {
            st.ephemeral_owner = nodes[a->node].owner;
        }
        ((sl_meta_data_cb)a->cb)(a->arg,
                                 ok                ? SL_OK
                                 : a->err == SL_OK ? SL_ENOTFOUND
                                                   : a->err,
                                 ok ? nodes[a->node].data : NULL, ok ? nodes[a->node].len : 0,
                                 ok ? &st : NULL);
        break;
    }
    case A_CHILDREN: {
        size_t n = 0;
        for (int i = 0; a->err == SL_OK && i < NODES_MAX; i++) {
            if (nodes[i].used && is_child_of(nodes[i].path, a->path)) {
                names[n++] = nodes[i].path + strlen(a->path) + 1;
            }
        }
        ((sl_meta_children_cb)a->cb)(a->arg, a->err, names, n);
        break;
    }
    case A_SESSION:
        if (!a->f->closed && a->f->base.on_session != NULL) {
            a->f->base.on_session(a->f->base.session_arg, a->ev);
        }
        break;
    case A_WATCH:
        if (!a->f->closed) {
            ((sl_meta_watch_cb)a->cb)(a->arg, "/brokers/ids");
        }
        break;
    }
}

static void fake_run(void)
{
    while (q_len > 0) {
        struct answer a = q[q_head];
        q_head = (q_head + 1) % Q_MAX;
        q_len--;
        if (a.cb != NULL || a.kind == A_SESSION) {
            deliver(&a);
        }
    }
}

static int opens;

static int fake_open(void *ctx, sl_meta_session_cb on_session, void *session_arg,
                     struct sl_meta **out, char *why, size_t whylen)
{
    (void)ctx, (void)why, (void)whylen;
    struct fake *f = calloc(1, sizeof(*f));
    f->base.vt = &fake_vt;
    f->base.on_session = on_session;
    f->base.session_arg = session_arg;
    f->session = next_session++;
    stores[n_stores++] = f;
    opens++;
    push((struct answer){.kind = A_SESSION, .ev = SL_META_CONNECTED, .f = f});
    *out = &f->base;
    return SL_OK;
}

static void reset(void)
{
    memset(nodes, 0, sizeof(nodes));
    q_head = q_len = 0;
    for (int i = 0; i < n_stores; i++) {
        free(stores[i]);
    }
    n_stores = 0;
    opens = 0;
}

static struct sl_member_info info(uint32_t id, const char *addr)
{
    struct sl_member_info m;
    memset(&m, 0, sizeof(m));
    m.node_id = id;
    m.start_ms = 1;
    snprintf(m.native_addr, sizeof(m.native_addr), "%s", addr);
    snprintf(m.version, sizeof(m.version), "test");
    return m;
}

/* A node of another session (another broker) with the record of `m`. */
static void peer(const struct sl_member_info *m, const char *path, int64_t session)
{
    uint8_t rec[SL_MEMBER_RECORD_MAX];
    size_t len = sl_member_record_encode(m, rec, sizeof(rec));
    node_add(path, rec, len, session);
}

static struct sl_member *start(uint32_t id, const char *addr)
{
    struct sl_member_info self = info(id, addr);
    struct sl_member *mb = NULL;
    char why[256];
    if (sl_member_start(&self, fake_open, NULL, NULL, NULL, &mb, why, sizeof(why)) != SL_OK) {
        return NULL;
    }
    return mb;
}

TEST(registers_and_lists)
{
    reset();
    node_add("/brokers", NULL, 0, 0);
    node_add("/brokers/ids", NULL, 0, 0);
    struct sl_member_info p2 = info(2, "10.0.0.2:7400");
    peer(&p2, "/brokers/ids/2", 50);
    struct sl_member_info p3 = info(3, "10.0.0.3:7400");
    peer(&p3, "/brokers/ids/4", 51); /* a record naming another id than its node */
    node_add("/brokers/ids/5", (const uint8_t *)"junk", 4, 52); /* does not decode */
    node_add("/brokers/ids/x", NULL, 0, 53);                    /* not an id */
    struct sl_member *mb = start(1, "10.0.0.1:7400");
    CHECK(mb != NULL);
    CHECK_EQ(sl_member_state(mb, NULL, 0), SL_MEMBER_JOINING);
    fake_run();
    CHECK_EQ(sl_member_state(mb, NULL, 0), SL_MEMBER_REGISTERED);
    CHECK(sl_member_connected(mb));
    const struct sl_member_info *list = NULL;
    size_t n = sl_member_brokers(mb, &list);
    CHECK_EQ(n, 2);
    CHECK_EQ(list[0].node_id, 1);
    CHECK_EQ(list[1].node_id, 2);
    CHECK(strcmp(list[1].native_addr, "10.0.0.2:7400") == 0);
    CHECK_EQ(list[1].session_id, 50);
    /* a peer leaves: the watch relists */
    nodes[find("/brokers/ids/2")].used = false;
    child_changed(NULL, "/brokers/ids/2");
    fake_run();
    CHECK_EQ(sl_member_brokers(mb, &list), 1);
    sl_member_stop(mb);
    CHECK_EQ(find("/brokers/ids/1"), -1); /* the session closed: the node went */
}

TEST(lost_create_answer_is_ours)
{
    reset();
    struct sl_member *mb = start(1, "10.0.0.1:7400");
    CHECK(mb != NULL);
    stores[0]->lose_next_create = true;
    fake_run();
    CHECK_EQ(sl_member_state(mb, NULL, 0), SL_MEMBER_JOINING); /* answered EAGAIN */
    CHECK(find("/brokers/ids/1") >= 0);                        /* but applied */
    sl_member_tick(mb, 500);
    fake_run();
    CHECK_EQ(sl_member_state(mb, NULL, 0), SL_MEMBER_JOINING); /* retried after 1 s */
    sl_member_tick(mb, 1000 + SL_MEMBER_RETRY_MS);
    fake_run();
    char why[512];
    CHECK_EQ(sl_member_state(mb, why, sizeof(why)), SL_MEMBER_REGISTERED);
    sl_member_stop(mb);
}

TEST(taken_id_refused)
{
    reset();
    node_add("/brokers", NULL, 0, 0);
    node_add("/brokers/ids", NULL, 0, 0);
    struct sl_member_info other = info(7, "10.0.0.8:7400");
    peer(&other, "/brokers/ids/7", 42);
    struct sl_member *mb = start(7, "10.0.0.7:7400");
    CHECK(mb != NULL);
    fake_run();
    char why[512];
    CHECK_EQ(sl_member_state(mb, why, sizeof(why)), SL_MEMBER_REFUSED);
    CHECK(strstr(why, "node id 7 is taken by a live broker (10.0.0.8:7400") != NULL);
    CHECK(strstr(why, "--node-id") != NULL);
    sl_member_stop(mb);
    CHECK(find("/brokers/ids/7") >= 0); /* the holder's node stays */
}

TEST(previous_session_of_this_broker_waited_out)
{
    reset();
    node_add("/brokers", NULL, 0, 0);
    node_add("/brokers/ids", NULL, 0, 0);
    struct sl_member_info old = info(3, "10.0.0.3:7400");
    peer(&old, "/brokers/ids/3", 77); /* this broker before its kill -9 */
    struct sl_member *mb = start(3, "10.0.0.3:7400");
    CHECK(mb != NULL);
    fake_run();
    CHECK_EQ(sl_member_state(mb, NULL, 0), SL_MEMBER_JOINING); /* waiting, not refused */
    sl_member_tick(mb, 10 * SL_MEMBER_RETRY_MS);
    fake_run();
    CHECK_EQ(sl_member_state(mb, NULL, 0), SL_MEMBER_JOINING);
    drop_session(77); /* ZooKeeper expires the old session */
    sl_member_tick(mb, 20 * SL_MEMBER_RETRY_MS);
    fake_run();
    CHECK_EQ(sl_member_state(mb, NULL, 0), SL_MEMBER_REGISTERED);
    CHECK(nodes[find("/brokers/ids/3")].owner == stores[0]->session);
    sl_member_stop(mb);
}

TEST(expiry_registers_again)
{
    reset();
    struct sl_member *mb = start(1, "10.0.0.1:7400");
    CHECK(mb != NULL);
    fake_run();
    CHECK_EQ(sl_member_state(mb, NULL, 0), SL_MEMBER_REGISTERED);
    struct fake *first = stores[0];
    drop_session(first->session);
    push((struct answer){.kind = A_SESSION, .ev = SL_META_EXPIRED, .f = first});
    fake_run();
    CHECK_EQ(sl_member_state(mb, NULL, 0), SL_MEMBER_JOINING);
    CHECK(!sl_member_connected(mb));
    CHECK_EQ(opens, 1); /* the new store is opened from the tick, not the callback */
    sl_member_tick(mb, 5000);
    CHECK(first->closed);
    CHECK_EQ(opens, 2);
    fake_run();
    CHECK_EQ(sl_member_state(mb, NULL, 0), SL_MEMBER_REGISTERED);
    CHECK(nodes[find("/brokers/ids/1")].owner == stores[1]->session);
    const struct sl_member_info *list = NULL;
    CHECK_EQ(sl_member_brokers(mb, &list), 1);
    sl_member_stop(mb);
}

int main(void)
{
    RUN(registers_and_lists);
    RUN(lost_create_answer_is_ours);
    RUN(taken_id_refused);
    RUN(previous_session_of_this_broker_waited_out);
    RUN(expiry_registers_again);
    reset();
    TEST_END();
}
