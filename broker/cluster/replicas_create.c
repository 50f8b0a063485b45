/* replicas_create.c - a cluster stream created in ZooKeeper by this broker (replicas.h,
 * sl_replicas_create_stream): its shard states placed over the live brokers and the node that
 * publishes it, in one multi or chained multis (docs/REPLICATION.md, "Creating a stream"), and
 * what an abandoned creation of the same name left, removed before creating again. The
 * stream is made in this broker's catalog when the /streams watch lists it
 * (replicas_meta.c), which answers the asker through rs_create_end.
 */
#include "broker/cluster/replicas_int.h"

#include "broker/cluster/member.h"
#include "broker/cluster/stream_settings.h"
#include "broker/engine/catalog.h"
#include "common/assert.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rs_create *rs_create_find(struct sl_replicas *rs, const char *name)
{
    for (struct rs_create *c = rs->creates; c != NULL; c = c->next) {
        if (strcmp(c->name, name) == 0) {
            return c;
        }
    }
    return NULL;
}

bool rs_creating(struct sl_replicas *rs, const char *name)
{
    const struct rs_create *c = rs_create_find(rs, name);
    return c != NULL && c->published;
}

void rs_create_end(struct rs_create *c, int err, const char *why)
{
    struct sl_replicas *rs = c->rs;
    for (struct rs_create **pp = &rs->creates; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    }
    SL_ASSERT(!c->ended);
    if (c->cb != NULL) {
        c->cb(c->ctx, err, why);
    }
    c->ended = true;
    if (c->multis_out == 0) {
        free(c);
    } /* else the last multi's answer frees it */
}


/* ---- creation ----------------------------------------------------------- */

/* One of the creation's multis answered (in the order sent: ZooKeeper answers a session's
 * requests in order). Success shows through the /streams watch; the first error answers,
 * unless the stream was made meanwhile. */
static void leftovers_check(struct rs_create *c);

/* One of the creation's own ZooKeeper calls answered (its multis, and the look for leftovers):
 * true when its callback may go on. False when it may not touch `c` any more: answered
 * already (freed here once nothing else of it is outstanding), or being made here from the
 * /streams watch (published: on_local_created in replicas_meta.c answers, and frees it). */
static bool op_back(struct rs_create *c)
{
    SL_ASSERT(c->multis_out > 0);
    c->multis_out--;
    if (c->ended) {
        if (c->multis_out == 0) {
            free(c);
        }
        return false;
    }
    return !c->published;
}

static void leftovers_check(struct rs_create *c);

static void on_create_multi(void *arg, int err, int failed_op)
{
    (void)failed_op;
    struct rs_create *c = arg;
    if (err != SL_OK && c->multi_err == SL_OK) {
        c->multi_err = err; /* (read by on_local_created when published) */
    }
    if (!op_back(c) || c->multis_out > 0 || c->multi_err == SL_OK) {
        return; /* made here when the /streams watch lists it */
    }
    if (c->multi_err == SL_EEXIST && !c->cleaned) {
        leftovers_check(c); /* the stream, a creation running, or what one left */
        return;
    }
    char why[480];
    snprintf(why, sizeof(why), "creating stream %s in ZooKeeper failed: %s", c->name,
             c->multi_err == SL_EEXIST ? "it exists already (made meanwhile elsewhere)"
                                       : sl_strerror(c->multi_err));
    rs_create_end(c, c->multi_err, why);
}

/* ---- leftovers of an abandoned creation ----------------------------------
 *
 * A chained creation whose session ended between its multis leaves states under
 * /shards/<stream> and never publishes /streams/<stream>: its token is ephemeral, so it went
 * with the session, and every later multi of the chain checks it. A new creation of that
 * name finds /shards/<stream> (EEXIST) and looks: /streams/<stream> exists - the stream does;
 * a token /creates/<stream>.* exists - a creation is running (or its session has not expired
 * yet); neither - the states are an abandoned creation's, never published and never to be
 * (publishing needs the token), so they are removed and the creation is made again, once.
 * Each step is one of the creation's own calls (counted in multis_out, op_back); should the
 * /streams watch list the name meanwhile (made elsewhere), it answers instead (EEXIST). */

static void create_again(struct rs_create *c)
{
    struct sl_replicas *rs = c->rs;
    for (struct rs_create **pp = &rs->creates; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    }
    SL_ASSERT(!c->ended && !c->published && c->multis_out == 0 && c->cleaned);
    struct sl_replicas_stream s = c->req;
    s.name = c->name;
    s.compression = c->compression;
    char why[320];
    int rc = rs->meta != NULL ? sl_replicas_create_stream(rs, &s, c->cb, c->ctx, why, sizeof(why))
                              : SL_ENOT_LEADER;
    if (rc != SL_OK) {
        if (rs->meta == NULL) {
            snprintf(why, sizeof(why), "the ZooKeeper session ended while creating: retry");
        }
        if (c->cb != NULL) {
            c->cb(c->ctx, rc, why);
        }
    } else {
        /* the new creation answers the asker now; it makes no second clean-up */
        struct rs_create *again = rs_create_find(rs, c->name);
        SL_ASSERT(again != NULL);
        again->cleaned = true;
    }
    free(c);
}

static void on_leftover_removed(void *arg, int err, int failed_op)
{
    (void)failed_op;
    struct rs_create *c = arg;
    if (err != SL_OK && err != SL_ENOTFOUND && c->clean_err == SL_OK) {
        c->clean_err = err;
    }
    if (!op_back(c) || c->multis_out > 0) {
        return;
    }
    if (c->clean_err != SL_OK) {
        char why[640];
        snprintf(why, sizeof(why),
                 "stream %s: removing what an abandoned creation of that name left in "
                 "ZooKeeper (under /shards/%s) failed: %s; retry",
                 c->name, c->name, sl_strerror(c->clean_err));
        rs_create_end(c, c->clean_err, why);
        return;
    }
    create_again(c);
}

static void on_leftovers(void *arg, int err, const char *const *names, size_t n)
{
    struct rs_create *c = arg;
    struct sl_replicas *rs = c->rs;
    if (!op_back(c)) {
        return;
    }
    if (err == SL_ENOTFOUND) {
        n = 0; /* (removed meanwhile: create again) */
    } else if (err != SL_OK || rs->meta == NULL) {
        rs_create_end(c, err != SL_OK ? err : SL_ECLOSED,
                      "listing an abandoned creation's leftovers in ZooKeeper failed: retry");
        return;
    } else {
        sl_warn("cluster",
                "stream %s: an abandoned creation (its broker's session ended before it "
                "finished) left %zu shard state(s) in ZooKeeper: removing them and creating "
                "the stream again",
                c->name, n);
    }
    /* the states, then their parent: in multis of SL_META_MULTI_MAX sent at once (applied
     * in order; one that fails leaves the rest for the next attempt) */
    struct sl_meta_op ops[SL_META_MULTI_MAX];
    char paths[SL_META_MULTI_MAX][SL_META_PATH_MAX]; /* (the store copies them) */
    c->clean_err = SL_OK;
    size_t m = 0;
    int rc = SL_OK;
    for (size_t i = 0; i <= n && rc == SL_OK && err == SL_OK; i++) {
        if (i < n) {
            snprintf(paths[m], SL_META_PATH_MAX, RS_PATH_SHARDS "/%s/%s", c->name, names[i]);
        } else {
            snprintf(paths[m], SL_META_PATH_MAX, RS_PATH_SHARDS "/%s", c->name);
        }
        ops[m] = (struct sl_meta_op){.type = SL_META_OP_REMOVE, .path = paths[m], .version = -1};
        m++;
        if (m == SL_META_MULTI_MAX || i == n) {
            rc = sl_meta_multi(rs->meta, ops, m, on_leftover_removed, c);
            c->multis_out += rc == SL_OK;
            m = 0;
        }
    }
    if (rc != SL_OK) {
        c->clean_err = rc;
    }
    if (c->multis_out == 0) { /* (none sent: refused at once, or nothing to remove) */
        if (c->clean_err != SL_OK) {
            rs_create_end(c, c->clean_err, "ZooKeeper refused the request: retry");
        } else {
            create_again(c);
        }
    }
}

static void on_tokens(void *arg, int err, const char *const *names, size_t n)
{
    struct rs_create *c = arg;
    struct sl_replicas *rs = c->rs;
    if (!op_back(c)) {
        return;
    }
    char why[640];
    if (err != SL_OK && err != SL_ENOTFOUND) {
        snprintf(why, sizeof(why), "creating stream %s: listing %s in ZooKeeper failed: %s",
                 c->name, RS_PATH_CREATES, sl_strerror(err));
        rs_create_end(c, err, why);
        return;
    }
    size_t len = strlen(c->name);
    for (size_t i = 0; err == SL_OK && i < n; i++) {
        if (strncmp(names[i], c->name, len) == 0 && names[i][len] == '.') {
            snprintf(why, sizeof(why),
                     "stream %s is being created or deleted (by the broker and time in "
                     "/creates/%s); retry once that ended: a creation or deletion whose broker "
                     "died is cleaned up by the next creation once that broker's ZooKeeper "
                     "session expired",
                     c->name, names[i]);
            rs_create_end(c, SL_EEXIST, why);
            return;
        }
    }
    char path[SL_META_PATH_MAX];
    snprintf(path, sizeof(path), RS_PATH_SHARDS "/%s", c->name);
    if (rs->meta == NULL ||
        sl_meta_children(rs->meta, path, NULL, NULL, on_leftovers, c) != SL_OK) {
        rs_create_end(c, SL_EAGAIN, "ZooKeeper refused the request: retry");
        return;
    }
    c->multis_out++;
}

static void on_published(void *arg, int err, const uint8_t *data, size_t len,
                         const struct sl_meta_stat *stat)
{
    (void)data;
    (void)len;
    (void)stat;
    struct rs_create *c = arg;
    struct sl_replicas *rs = c->rs;
    if (!op_back(c)) {
        return;
    }
    if (err == SL_OK) {
        char why[320];
        snprintf(why, sizeof(why), "creating stream %s in ZooKeeper failed: it exists already",
                 c->name);
        rs_create_end(c, SL_EEXIST, why);
        return;
    }
    if (err != SL_ENOTFOUND || rs->meta == NULL ||
        sl_meta_children(rs->meta, RS_PATH_CREATES, NULL, NULL, on_tokens, c) != SL_OK) {
        rs_create_end(c, err != SL_ENOTFOUND ? err : SL_EAGAIN,
                      "reading the stream's node in ZooKeeper failed: retry");
        return;
    }
    c->multis_out++;
}

/* The creation's first multi found /shards/<stream> (EEXIST): see above. */
static void leftovers_check(struct rs_create *c)
{
    struct sl_replicas *rs = c->rs;
    SL_ASSERT(!c->ended && !c->published && c->multis_out == 0 && !c->cleaned);
    c->cleaned = true;
    char path[SL_META_PATH_MAX];
    snprintf(path, sizeof(path), RS_PATH_STREAMS "/%s", c->name);
    if (rs->meta == NULL || sl_meta_get(rs->meta, path, NULL, NULL, on_published, c) != SL_OK) {
        rs_create_end(c, SL_EAGAIN, "ZooKeeper refused the request: retry");
        return;
    }
    c->multis_out++;
}

static void sorted_ids(const struct sl_member_info *list, size_t n, int32_t *out)
{
    for (size_t i = 0; i < n; i++) {
        out[i] = (int32_t)list[i].node_id;
    }
    for (size_t i = 1; i < n; i++) { /* (sl_member_brokers sorts already: cheap check) */
        for (size_t j = i; j > 0 && out[j - 1] > out[j]; j--) {
            int32_t t = out[j];
            out[j] = out[j - 1];
            out[j - 1] = t;
        }
    }
}

int sl_replicas_create_stream(struct sl_replicas *rs, const struct sl_replicas_stream *s,
                              sl_replicas_created_fn cb, void *ctx, char *why, size_t why_len)
{
    if (rs->meta == NULL) {
        snprintf(why, why_len, RS_NO_SESSION_WHY);
        return SL_ENOT_LEADER;
    }
    const struct sl_member_info *list = NULL;
    size_t n = sl_member_brokers(rs->mb, &list);
    uint32_t rf = s->replication_factor != 0 ? s->replication_factor : SL_REPLICAS_RF_DEFAULT;
    if (s->replication_factor == 0 && rf > n) {
        rf = (uint32_t)n;
    }
    if (rf == 0 || rf > n || rf > SL_REPL_REPLICAS_MAX) {
        snprintf(why, why_len,
                 "replication factor %u needs as many live brokers; %zu are registered "
                 "(and at most %u replicas)", rf, n, SL_REPL_REPLICAS_MAX);
        return SL_EINVAL;
    }
    if (s->shard_count == 0 || s->shard_count > SL_CSTREAM_SHARDS_MAX) {
        snprintf(why, why_len, "a cluster stream has 1 to %u shards", SL_CSTREAM_SHARDS_MAX);
        return SL_EINVAL;
    }
    if (rs_create_find(rs, s->name) != NULL) {
        snprintf(why, why_len, "stream %s is being created", s->name);
        return SL_EEXIST;
    }
    uint64_t watched = (uint64_t)s->shard_count + 1;
    for (const struct sl_stream *st = sl_catalog_first(rs->e->catalog); st != NULL;
         st = st->next) {
        watched += st->cluster ? (uint64_t)st->shard_count + 1 : 0;
    }
    if (watched > SL_REPLICAS_WATCHED_MAX) {
        snprintf(why, why_len,
                 "the cluster's streams would count %" PRIu64 " shards and streams, past the %u "
                 "a broker follows (one ZooKeeper watch each): delete a stream, or use fewer "
                 "shards",
                 watched, SL_REPLICAS_WATCHED_MAX);
        return SL_ELIMIT;
    }
    struct rs_create *c = calloc(1, sizeof(*c));
    /* the body: /shards/<name>, a state per shard, /streams/<name>; and per multi of a
     * chained creation up to four more ops (checks, the token) */
    size_t body = (size_t)s->shard_count + 2;
    size_t cap = (body + 1) * (SL_META_PATH_MAX + SL_CTRL_STATE_MAX) + SL_CSTREAM_SETTINGS_MAX;
    char *scratch = malloc(cap);
    int32_t *ids = malloc(n * sizeof(*ids));
    struct sl_meta_op *ops = malloc(body * sizeof(*ops));
    struct sl_meta_op *multi = malloc(SL_META_MULTI_MAX * sizeof(*multi));
    if (c == NULL || scratch == NULL || ids == NULL || ops == NULL || multi == NULL) {
        free(c);
        free(scratch);
        free(ids);
        free(ops);
        free(multi);
        snprintf(why, why_len, "out of memory");
        return SL_ENOMEM;
    }
    sorted_ids(list, n, ids);
    /* The body, in order: the shards' states, then the node that publishes the stream
     * (every broker acts on /streams, so no broker sees a stream without states). */
    size_t used = 0, nops = 0;
    char *p = scratch + used;
    used += (size_t)snprintf(p, SL_META_PATH_MAX, RS_PATH_SHARDS "/%s", s->name) + 1;
    ops[nops++] = (struct sl_meta_op){.type = SL_META_OP_CREATE, .path = p};
    uint64_t h = sl_ctrl_hash_name(s->name);
    for (uint32_t k = 0; k < s->shard_count; k++) {
        struct sl_ctrl_state st = {.m = {.leader_epoch = 0}};
        sl_ctrl_place(ids, (uint32_t)n, rf, h, k, st.m.replicas);
        st.m.n_replicas = st.m.n_isr = rf;
        memcpy(st.m.isr, st.m.replicas, rf * sizeof(st.m.isr[0]));
        st.m.leader = st.m.replicas[0];
        for (size_t i = 0; i < n; i++) {
            if ((int32_t)list[i].node_id == st.m.leader) {
                st.leader_session = list[i].session_id;
            }
        }
        char *path = scratch + used;
        used += (size_t)snprintf(path, SL_META_PATH_MAX, RS_PATH_SHARDS "/%s/%" PRIu32,
                                 s->name, k) + 1;
        char *data = scratch + used;
        size_t len = sl_ctrl_state_encode(&st, data, SL_CTRL_STATE_MAX);
        used += len;
        ops[nops++] = (struct sl_meta_op){.type = SL_META_OP_CREATE, .path = path,
                                          .data = (const uint8_t *)data, .len = len};
    }
    char *spath = scratch + used;
    used += (size_t)snprintf(spath, SL_META_PATH_MAX, RS_PATH_STREAMS "/%s", s->name) + 1;
    char *sdata = scratch + used;
    struct sl_cstream_settings cs = {.shard_count = s->shard_count,
                                     .retention_hours = s->retention_hours,
                                     .retention_bytes = s->retention_bytes, .rf = rf};
    snprintf(cs.compression, sizeof(cs.compression), "%s",
             s->compression != NULL && strcmp(s->compression, "zstd") == 0 ? "zstd" : "none");
    size_t slen = sl_cstream_encode(&cs, sdata, SL_CSTREAM_SETTINGS_MAX);
    used += slen;
    ops[nops++] = (struct sl_meta_op){.type = SL_META_OP_CREATE, .path = spath,
                                      .data = (const uint8_t *)sdata, .len = slen};
    SL_ASSERT(nops == body);
    c->rs = rs;
    snprintf(c->name, sizeof(c->name), "%s", s->name);
    c->cb = cb;
    c->ctx = ctx;
    c->req = *s;
    snprintf(c->compression, sizeof(c->compression), "%s", cs.compression);
    int rc = SL_OK;
    if (body <= SL_META_MULTI_MAX) {
        /* one multi, all or nothing */
        SL_ASSERT(used <= cap);
        c->multis_out = 1;
        rc = sl_meta_multi(rs->meta, ops, nops, on_create_multi, c);
        c->multis_out = rc == SL_OK ? 1 : 0;
    } else {
        /* Several multis, chained so that the stream is published only when all applied:
         * the first makes /shards/<name> (so nothing under it predates this creation) and
         * a token; every later one checks the token and the last state the one before
         * made; the last makes /streams/<name> and removes the token. ZooKeeper applies a
         * session's requests in order, so a multi that failed fails every one after it;
         * what an interrupted creation leaves (the states, the token) is never published. */
        char *token = scratch + used;
        used += (size_t)snprintf(token, SL_META_PATH_MAX, RS_PATH_CREATES "/%s.%d.%" PRIu64,
                                 s->name, rs->cfg.self, sl_clock_wall_ms()) + 1;
        SL_ASSERT(used <= cap);
        size_t i = 0;
        const char *prev_last = NULL;
        while (rc == SL_OK && i < body) {
            size_t m = 0;
            if (i == 0) {
                multi[m++] = ops[i++]; /* /shards/<name> */
                /* ephemeral: it goes with this session, so a creation cut short is never
                 * published and the next one of the name may clean up (leftovers) */
                multi[m++] = (struct sl_meta_op){
                    .type = SL_META_OP_CREATE, .path = token, .flags = SL_META_EPHEMERAL};
            } else {
                multi[m++] = (struct sl_meta_op){.type = SL_META_OP_CHECK, .path = token,
                                                 .version = -1};
                multi[m++] = (struct sl_meta_op){.type = SL_META_OP_CHECK, .path = prev_last,
                                                 .version = -1};
            }
            /* states, keeping two places for the publishing pair should the body end */
            while (i < body - 1 && m < SL_META_MULTI_MAX - 2) {
                prev_last = ops[i].path;
                multi[m++] = ops[i++];
            }
            if (i == body - 1) {
                multi[m++] = ops[i++]; /* /streams/<name> */
                multi[m++] = (struct sl_meta_op){.type = SL_META_OP_REMOVE, .path = token,
                                                 .version = -1};
            }
            SL_ASSERT(m <= SL_META_MULTI_MAX);
            rc = sl_meta_multi(rs->meta, multi, m, on_create_multi, c);
            c->multis_out += rc == SL_OK;
        }
    }
    free(scratch);
    free(ids);
    free(ops);
    free(multi);
    if (rc != SL_OK && c->multis_out == 0) {
        free(c);
        snprintf(why, why_len, "ZooKeeper refused the request: %s", sl_strerror(rc));
        return rc;
    }
    /* (a refusal after some multis went: they fail on the chain and answer through
     * on_create_multi) */
    c->multi_err = rc;
    c->next = rs->creates;
    rs->creates = c;
    return SL_OK;
}
