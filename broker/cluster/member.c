/* member.c - this broker's membership (member.h) on the metadata store.
 *
 * Registration, at each new session until it succeeds: create /brokers and
 * /brokers/ids (SL_EEXIST is fine), then the ephemeral /brokers/ids/<id>.
 * SL_EEXIST there means the id is held: by this session (a create whose
 * answer was lost, SL_EAGAIN, then retried: registered), by a previous
 * session of this broker (same advertised address, e.g. restarted after a
 * kill -9 before the old session timed out: wait and retry, the node goes
 * when that session expires), or by another broker (refused at start; after
 * an expiry, retried and logged: an operator gave two brokers one id).
 *
 * The list: children of /brokers/ids with a watch, then a get of each; one
 * listing at a time (a watch that fires meanwhile asks for another when it
 * ends), the list replaced only by a listing that read every node. Records
 * that do not decode, or whose id is not their node's name, are left out.
 *
 * Session expiry: the store is dead. The next tick closes it (not from its
 * own callback) and opens a new one through the owner's opener; CONNECTED
 * then registers again. Every callback of a closed store answers SL_ECLOSED
 * and is ignored here.
 */
#include "broker/cluster/member.h"

#include "common/assert.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IDS_PATH "/brokers/ids"

struct list_get {
    struct sl_member *mb;
    uint32_t node_id; /* from the node's name */
};

struct sl_member {
    struct sl_member_info self;
    uint8_t rec[SL_MEMBER_RECORD_MAX];
    size_t rec_len;
    char self_path[32];
    sl_member_open_fn open;
    void *open_ctx;
    sl_member_changed_fn changed;
    void *changed_ctx;
    struct sl_meta *meta; /* NULL between an expiry and the next tick */
    uint32_t generation;  /* registrations so far (one per session) */

    enum sl_member_state state;
    char why[512];
    bool ever_registered;
    bool connected;
    uint64_t cut_since_ms; /* monotonic time the store disconnected (0: connected) */
    bool registered;    /* in the current session */
    bool registering;   /* a registration step is outstanding */
    bool need_register; /* try again at retry_at_ms */
    bool need_open;     /* the session expired: a new store at the next tick */
    bool waiting_logged;
    bool listing; /* a listing is outstanding */
    bool relist;  /* the watch fired during it */
    bool need_list;
    bool list_failed;
    uint64_t now_ms;
    uint64_t retry_at_ms;

    /* The listing in progress: its gets (their callbacks' args) and results. */
    struct list_get *gets; /* the node ids to read */
    size_t ngets;
    size_t issued;  /* reads made */
    size_t pending; /* reads made and not answered */
    struct sl_member_info *next;
    size_t next_n;
    /* The last complete list. */
    struct sl_member_info *live;
    size_t live_n;
    struct sl_log_ratelimit bad_rl;
};

static void notify(struct sl_member *mb)
{
    if (mb->changed != NULL) {
        mb->changed(mb->changed_ctx);
    }
}

/* ---- registration ---- */

static void reg_begin(struct sl_member *mb);

static void reg_retry(struct sl_member *mb, int err, const char *step)
{
    mb->registering = false;
    if (err == SL_ECLOSED) {
        return; /* the session is gone: the next store registers */
    }
    mb->need_register = true;
    mb->retry_at_ms = mb->now_ms + SL_MEMBER_RETRY_MS;
    sl_debug("cluster", "node %" PRIu32 ": %s: %s; trying again in %u ms", mb->self.node_id, step,
             sl_strerror(err), SL_MEMBER_RETRY_MS);
}

static void list_begin(struct sl_member *mb);

static void registered(struct sl_member *mb)
{
    mb->registering = false;
    mb->registered = true;
    mb->ever_registered = true;
    mb->generation++;
    mb->waiting_logged = false;
    mb->state = SL_MEMBER_REGISTERED;
    sl_info("cluster", "registered as broker %" PRIu32 " (%s) in session 0x%" PRIx64,
            mb->self.node_id, mb->self.native_addr, (uint64_t)sl_meta_session_id(mb->meta));
    if (!mb->listing) {
        list_begin(mb);
    } else {
        mb->relist = true;
    }
    notify(mb);
}

/* The id is held by another session: whose? */
static void on_holder(void *arg, int err, const uint8_t *data, size_t len,
                      const struct sl_meta_stat *st)
{
    struct sl_member *mb = arg;
    if (err == SL_ENOTFOUND) {
        mb->registering = false;
        reg_begin(mb); /* the holder just left */
        return;
    }
    if (err != SL_OK) {
        reg_retry(mb, err, "reading the broker that holds the id");
        return;
    }
    if (st->ephemeral_owner == sl_meta_session_id(mb->meta)) {
        registered(mb); /* ours: the answer to our create was lost */
        return;
    }
    struct sl_member_info h;
    bool known = sl_member_record_decode(data, len, &h) == SL_OK;
    if (known && strcmp(h.native_addr, mb->self.native_addr) == 0) {
        if (!mb->waiting_logged) {
            sl_warn("cluster",
                    "node id %" PRIu32 " is still held by a previous session "
                    "(0x%" PRIx64 ") of this broker (%s); waiting for ZooKeeper to expire it",
                    mb->self.node_id, (uint64_t)st->ephemeral_owner, h.native_addr);
            mb->waiting_logged = true;
        }
        reg_retry(mb, SL_EEXIST, "waiting for the previous session to expire");
        return;
    }
    snprintf(mb->why, sizeof(mb->why),
             "node id %" PRIu32 " is taken by a live broker (%s, ZooKeeper session 0x%" PRIx64
             "): give this broker another --node-id, or stop that broker first",
             mb->self.node_id, known ? h.native_addr : "a record this version cannot read",
             (uint64_t)st->ephemeral_owner);
    if (!mb->ever_registered) {
        mb->registering = false;
        mb->state = SL_MEMBER_REFUSED;
        sl_error("cluster", "%s", mb->why);
        notify(mb);
        return;
    }
    sl_error("cluster", "cannot register again: %s", mb->why);
    reg_retry(mb, SL_EEXIST, "registering again");
}

static void on_self_created(void *arg, int err, const char *path)
{
    (void)path;
    struct sl_member *mb = arg;
    if (err == SL_OK) {
        registered(mb);
        return;
    }
    if (err == SL_EEXIST) {
        int rc = sl_meta_get(mb->meta, mb->self_path, NULL, NULL, on_holder, mb);
        if (rc != SL_OK) {
            reg_retry(mb, rc, "reading the broker that holds the id");
        }
        return;
    }
    reg_retry(mb, err, "creating this broker's node");
}

static void on_ids_created(void *arg, int err, const char *path)
{
    (void)path;
    struct sl_member *mb = arg;
    if (err != SL_OK && err != SL_EEXIST) {
        reg_retry(mb, err, "creating " IDS_PATH);
        return;
    }
    int rc = sl_meta_create(mb->meta, mb->self_path, mb->rec, mb->rec_len, SL_META_EPHEMERAL,
                            on_self_created, mb);
    if (rc != SL_OK) {
        reg_retry(mb, rc, "creating this broker's node");
    }
}

static void on_base_created(void *arg, int err, const char *path)
{
    (void)path;
    struct sl_member *mb = arg;
    if (err != SL_OK && err != SL_EEXIST) {
        reg_retry(mb, err, "creating /brokers");
        return;
    }
    int rc = sl_meta_create(mb->meta, IDS_PATH, NULL, 0, 0, on_ids_created, mb);
    if (rc != SL_OK) {
        reg_retry(mb, rc, "creating " IDS_PATH);
    }
}

static void reg_begin(struct sl_member *mb)
{
    SL_ASSERT(!mb->registering && mb->meta != NULL);
    if (mb->registered || mb->state == SL_MEMBER_REFUSED) {
        return;
    }
    mb->registering = true;
    mb->need_register = false;
    int rc = sl_meta_create(mb->meta, "/brokers", NULL, 0, 0, on_base_created, mb);
    if (rc != SL_OK) {
        reg_retry(mb, rc, "creating /brokers");
    }
}

/* ---- the list of live brokers ---- */

static int by_node_id(const void *a, const void *b)
{
    const struct sl_member_info *x = a, *y = b;
    return x->node_id < y->node_id ? -1 : x->node_id > y->node_id;
}

static void list_done(struct sl_member *mb)
{
    SL_ASSERT(mb->listing && mb->pending == 0);
    free(mb->gets);
    mb->gets = NULL;
    mb->listing = false;
    if (mb->list_failed) {
        free(mb->next);
        mb->next = NULL;
        mb->need_list = true;
        mb->retry_at_ms = mb->now_ms + SL_MEMBER_RETRY_MS;
        return;
    }
    qsort(mb->next, mb->next_n, sizeof(mb->next[0]), by_node_id);
    free(mb->live);
    mb->live = mb->next;
    mb->live_n = mb->next_n;
    mb->next = NULL;
    mb->next_n = 0;
    notify(mb);
    if (mb->relist && mb->meta != NULL) {
        list_begin(mb);
    }
}

static void list_more(struct sl_member *mb);

static void on_broker(void *arg, int err, const uint8_t *data, size_t len,
                      const struct sl_meta_stat *st)
{
    struct list_get *g = arg;
    struct sl_member *mb = g->mb;
    SL_ASSERT(mb->pending > 0);
    mb->pending--;
    if (err == SL_OK) {
        struct sl_member_info *info = &mb->next[mb->next_n];
        if (sl_member_record_decode(data, len, info) == SL_OK && info->node_id == g->node_id) {
            info->session_id = st->ephemeral_owner;
            mb->next_n++;
        } else if (sl_log_ratelimit_ok(&mb->bad_rl)) {
            sl_warn("cluster",
                    IDS_PATH "/%" PRIu32 " holds no valid broker record (%zu bytes); "
                             "left out of the list",
                    g->node_id, len);
        }
    } else if (err != SL_ENOTFOUND) {
        mb->list_failed = true; /* SL_ENOTFOUND: it left between the two reads */
    }
    list_more(mb);
}

/* A node's name as a node id (digits only, 1..SL_MEMBER_NODE_ID_MAX), or 0. */
static uint32_t parse_id(const char *s)
{
    uint64_t v = 0;
    size_t i = 0;
    for (; s[i] >= '0' && s[i] <= '9' && i < 8; i++) {
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    return i > 0 && s[i] == '\0' && s[0] != '0' && v <= SL_MEMBER_NODE_ID_MAX ? (uint32_t)v : 0;
}

/* Keeps up to SL_MEMBER_LIST_WINDOW reads outstanding (the store bounds its
 * calls), and ends the listing when the last has answered. */
static void list_more(struct sl_member *mb)
{
    char path[sizeof(IDS_PATH) + 16];
    while (!mb->list_failed && mb->issued < mb->ngets && mb->pending < SL_MEMBER_LIST_WINDOW) {
        struct list_get *g = &mb->gets[mb->issued++];
        snprintf(path, sizeof(path), IDS_PATH "/%" PRIu32, g->node_id);
        if (sl_meta_get(mb->meta, path, NULL, NULL, on_broker, g) != SL_OK) {
            mb->list_failed = true;
            break;
        }
        mb->pending++;
    }
    if (mb->pending == 0 && (mb->list_failed || mb->issued == mb->ngets)) {
        list_done(mb);
    }
}

static void on_children(void *arg, int err, const char *const *names, size_t n)
{
    struct sl_member *mb = arg;
    SL_ASSERT(mb->listing && mb->pending == 0);
    if (err != SL_OK) {
        mb->list_failed = true;
        list_done(mb);
        return;
    }
    if (n > SL_MEMBER_BROKERS_MAX) {
        sl_warn("cluster", IDS_PATH " has %zu brokers; only the first %u are listed", n,
                SL_MEMBER_BROKERS_MAX);
        n = SL_MEMBER_BROKERS_MAX;
    }
    mb->next = calloc(n > 0 ? n : 1, sizeof(mb->next[0]));
    mb->gets = calloc(n > 0 ? n : 1, sizeof(mb->gets[0]));
    mb->next_n = 0;
    mb->ngets = 0;
    mb->issued = 0;
    if (mb->next == NULL || mb->gets == NULL) {
        mb->list_failed = true;
        list_done(mb);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t id = parse_id(names[i]);
        if (id != 0) {
            mb->gets[mb->ngets++] = (struct list_get){.mb = mb, .node_id = id};
        }
    }
    list_more(mb);
}

static void on_ids_watch(void *arg, const char *path)
{
    (void)path;
    struct sl_member *mb = arg;
    if (mb->listing) {
        mb->relist = true;
    } else if (mb->meta != NULL) {
        list_begin(mb);
    }
}

static void list_begin(struct sl_member *mb)
{
    SL_ASSERT(!mb->listing && mb->meta != NULL);
    mb->listing = true;
    mb->relist = false;
    mb->need_list = false;
    mb->list_failed = false;
    int rc = sl_meta_children(mb->meta, IDS_PATH, on_ids_watch, mb, on_children, mb);
    if (rc != SL_OK) {
        mb->listing = false;
        mb->need_list = true;
        mb->retry_at_ms = mb->now_ms + SL_MEMBER_RETRY_MS;
    }
}

/* ---- the session ---- */

static void on_session(void *arg, enum sl_meta_session ev)
{
    struct sl_member *mb = arg;
    switch (ev) {
    case SL_META_CONNECTED:
        mb->connected = true;
        mb->cut_since_ms = 0;
        if (!mb->registered && !mb->registering) {
            reg_begin(mb);
        }
        if (!mb->listing) {
            list_begin(mb);
        }
        break;
    case SL_META_DISCONNECTED:
        mb->connected = false;
        if (mb->cut_since_ms == 0) {
            mb->cut_since_ms = sl_clock_mono_ms();
        }
        break;
    case SL_META_EXPIRED:
        mb->connected = false;
        mb->registered = false;
        if (mb->state == SL_MEMBER_REGISTERED) {
            mb->state = SL_MEMBER_JOINING;
        }
        mb->need_open = true; /* closed and opened again at the next tick */
        sl_warn("cluster",
                "broker %" PRIu32 ": ZooKeeper session expired; registering again "
                "with a new session",
                mb->self.node_id);
        break;
    }
    notify(mb);
}

static int open_store(struct sl_member *mb, char *why, size_t whylen)
{
    struct sl_meta *m = NULL;
    int rc = mb->open(mb->open_ctx, on_session, mb, &m, why, whylen);
    if (rc == SL_OK) {
        mb->meta = m;
        mb->need_open = false;
    }
    return rc;
}

/* ---- public ---- */

int sl_member_start(const struct sl_member_info *self, sl_member_open_fn open, void *open_ctx,
                    sl_member_changed_fn changed, void *changed_ctx, struct sl_member **out,
                    char *why, size_t whylen)
{
    SL_ASSERT(self != NULL && open != NULL && out != NULL);
    *out = NULL;
    struct sl_member *mb = calloc(1, sizeof(*mb));
    if (mb == NULL) {
        snprintf(why, whylen, "out of memory");
        return SL_ENOMEM;
    }
    mb->self = *self;
    mb->self.session_id = 0;
    mb->rec_len = sl_member_record_encode(&mb->self, mb->rec, sizeof(mb->rec));
    if (mb->rec_len == 0) {
        snprintf(why, whylen,
                 "node id %" PRIu32 " (1..%u) or the advertised address \"%s\" "
                 "(printable, shorter than %u bytes) is not valid",
                 self->node_id, SL_MEMBER_NODE_ID_MAX, self->native_addr, SL_MEMBER_ADDR_MAX);
        free(mb);
        return SL_EINVAL;
    }
    snprintf(mb->self_path, sizeof(mb->self_path), IDS_PATH "/%" PRIu32, self->node_id);
    mb->open = open;
    mb->open_ctx = open_ctx;
    mb->changed = changed;
    mb->changed_ctx = changed_ctx;
    mb->state = SL_MEMBER_JOINING;
    mb->bad_rl.interval_ms = 60000;
    mb->bad_rl.burst = 5;
    int rc = open_store(mb, why, whylen);
    if (rc != SL_OK) {
        free(mb);
        return rc;
    }
    *out = mb;
    return SL_OK;
}

void sl_member_tick(struct sl_member *mb, uint64_t now_ms)
{
    mb->now_ms = now_ms;
    if (mb->need_open) {
        if (mb->meta != NULL) {
            struct sl_meta *old = mb->meta;
            mb->meta = NULL;
            sl_meta_close(old); /* its callbacks answer SL_ECLOSED: ignored */
        }
        char why[256] = "";
        if (open_store(mb, why, sizeof(why)) != SL_OK) {
            sl_error("cluster", "cannot open a new ZooKeeper session: %s", why);
            return; /* tried again next tick */
        }
    }
    if (mb->meta == NULL || !mb->connected || now_ms < mb->retry_at_ms) {
        return;
    }
    if (mb->need_register && !mb->registering) {
        reg_begin(mb);
    }
    if (mb->need_list && !mb->listing) {
        list_begin(mb);
    }
}

enum sl_member_state sl_member_state(const struct sl_member *mb, char *why, size_t whylen)
{
    if (why != NULL && whylen > 0) {
        snprintf(why, whylen, "%s", mb->state == SL_MEMBER_REFUSED ? mb->why : "");
    }
    return mb->state;
}

bool sl_member_connected(const struct sl_member *mb)
{
    return mb->connected;
}

uint64_t sl_member_cut_ms(const struct sl_member *mb, uint64_t now_ms)
{
    return mb->cut_since_ms != 0 && now_ms > mb->cut_since_ms ? now_ms - mb->cut_since_ms : 0;
}

size_t sl_member_brokers(const struct sl_member *mb, const struct sl_member_info **list)
{
    *list = mb->live;
    return mb->live_n;
}

const struct sl_member_info *sl_member_self(const struct sl_member *mb)
{
    return &mb->self;
}

void sl_member_stop(struct sl_member *mb)
{
    if (mb == NULL) {
        return;
    }
    mb->changed = NULL; /* nobody to tell any more */
    if (mb->meta != NULL) {
        struct sl_meta *m = mb->meta;
        sl_meta_close(m); /* callbacks run with SL_ECLOSED; the listing ends */
        mb->meta = NULL;
    }
    SL_ASSERT(mb->pending == 0);
    free(mb->gets);
    free(mb->next);
    free(mb->live);
    free(mb);
}

void sl_member_set_changed(struct sl_member *mb, sl_member_changed_fn changed, void *ctx)
{
    mb->changed = changed;
    mb->changed_ctx = ctx;
}

struct sl_meta *sl_member_store(const struct sl_member *mb, uint32_t *generation)
{
    *generation = mb->generation;
    return mb->registered ? mb->meta : NULL;
}
