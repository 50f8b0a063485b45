/* conn.c - sluice_client: its connections to the brokers (one link per broker, link.c),
 * which one each call goes on, and the routing table (route.c) by which a shard's produces
 * and fetches go to its leader (cluster mode, #14).
 *
 * Links: the first reachable address of the bootstrap list is the "primary": calls without
 * a shard go there. When it cannot be reached, the next call tries the others (the rest of
 * the list, then the brokers learned) without waiting out their backoff, and the first that
 * connects becomes the primary; with a single address nothing changes from one connection
 * (the call waits out the backoff as it always did). A leader's link is made when a shard
 * is first routed to it; links are never freed before the client, so a link pointer stays
 * valid (at most SL_CLIENT_LINKS_MAX: the list plus the brokers routed to).
 *
 * Routing: a Metadata answer (cluster.c, sluice_cluster_metadata) goes into `route` with
 * the link it came on: its `self` broker is that link's node, the others are matched by
 * address. A shard's call goes to the link of its leader's node, made from the broker's
 * advertised address if need be; an unknown stream or shard, or no leader now, goes to the
 * primary (whose answer, NOT_LEADER, makes the owner refresh).
 *
 * Locks: `mu` guards links[], link_node[], primary, route and the refresh state; it is
 * never held across I/O except a link's creation (a thread start) and never taken inside a
 * link's locks.
 */
#include "client/conn.h"

#include "client/link.h"
#include "client/login.h"
#include "client/route.h"

#include "common/assert.h"
#include "common/clock.h"
#include "common/tls.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONN_MSG_MAX        256u
#define SL_CLIENT_ID_MAX    128u /* bytes of the Hello's client id kept (longer: cut) */
#define SL_CLIENT_LINKS_MAX (SL_ROUTE_BOOTSTRAP_MAX + SL_ROUTE_BROKERS_MAX)

struct sluice_client {
    struct sluice_client_opts opts;
    struct sl_tls_ctx *tls; /* NULL: plaintext */
    char *tls_server_name;  /* owned; NULL: each link's host */
    /* The Hello's client id, kept: every reconnect says it again, long after the caller's
     * string may be gone (opts.client_id points here). */
    char client_id[SL_CLIENT_ID_MAX];
    char *user;       /* owned; NULL: no credentials */
    char *password;   /* owned; wiped at free */
    uint64_t gen_seq; /* connection generations of every link (atomic) */
    struct sl_link_shared sh;
    char (*boot)[SL_ROUTE_ADDR_MAX]; /* owned: the bootstrap list */
    uint32_t n_boot;
    /* Guarded by mu. */
    pthread_mutex_t mu;
    struct sl_link *links[SL_CLIENT_LINKS_MAX];
    int32_t link_node[SL_CLIENT_LINKS_MAX]; /* the node each reaches; SL_ROUTE_NONE: unknown */
    uint32_t n_links;
    uint32_t primary; /* index into links */
    struct sl_route route;
    int route_cluster; /* atomic: the last answer came from a cluster's broker */
    int route_off;     /* the broker predates Metadata: no routing */
    uint64_t refresh_next_ms;
    uint32_t refresh_backoff_ms;
};

static _Thread_local char last_error[CONN_MSG_MAX];

const char *sluice_last_error(void)
{
    return last_error;
}

const char *sluice_strerror(int err)
{
    return sl_strerror(err);
}

void sl_client_set_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof(last_error), fmt, ap);
    va_end(ap);
}

/* ---- links ---- */

/* A new link to `addr` at the end of links[] (under mu). NULL when full or it fails. */
static struct sl_link *link_add_locked(sluice_client *c, const char *addr)
{
    if (c->n_links == SL_CLIENT_LINKS_MAX) {
        return NULL;
    }
    struct sl_link *l = NULL;
    if (sl_link_new(&c->sh, addr, &l) != SL_OK) {
        return NULL;
    }
    c->links[c->n_links] = l;
    c->link_node[c->n_links] = SL_ROUTE_NONE;
    c->n_links++;
    return l;
}

static struct sl_link *link_by_addr_locked(const sluice_client *c, const char *addr)
{
    for (uint32_t i = 0; i < c->n_links; i++) {
        if (strcmp(sl_link_addr(c->links[i]), addr) == 0) {
            return c->links[i];
        }
    }
    return NULL;
}

static struct sl_link *primary_link(sluice_client *c)
{
    pthread_mutex_lock(&c->mu);
    SL_ASSERT(c->n_links > 0 && c->primary < c->n_links);
    struct sl_link *l = c->links[c->primary];
    pthread_mutex_unlock(&c->mu);
    return l;
}

/* The link a call without a shard goes on: the primary, or when it cannot be reached the
 * first other that connects now (the bootstrap list's first, then the brokers learned),
 * which becomes the primary. With one address: the primary, as it is. */
static struct sl_link *any_link(sluice_client *c)
{
    pthread_mutex_lock(&c->mu);
    struct sl_link *p = c->links[c->primary];
    int single = c->n_boot == 1 && c->n_links == 1;
    pthread_mutex_unlock(&c->mu);
    if (single || sl_link_connected(p)) {
        return p;
    }
    uint64_t now = sl_clock_mono_ms();
    pthread_mutex_lock(&c->mu);
    for (uint32_t i = 0; i < c->n_boot; i++) { /* every listed broker is a candidate */
        if (link_by_addr_locked(c, c->boot[i]) == NULL) {
            (void)link_add_locked(c, c->boot[i]);
        }
    }
    uint32_t start = c->primary, n = c->n_links;
    pthread_mutex_unlock(&c->mu);
    for (uint32_t k = 0; k < n; k++) {
        uint32_t i = (start + k) % n;
        pthread_mutex_lock(&c->mu);
        struct sl_link *l = c->links[i];
        pthread_mutex_unlock(&c->mu);
        if (sl_link_connect(l, now) == SL_OK) { /* (no wait: a link in backoff is skipped) */
            pthread_mutex_lock(&c->mu);
            c->primary = i;
            pthread_mutex_unlock(&c->mu);
            return l;
        }
    }
    return p; /* none now: the call waits out the primary's backoff, as one address does */
}

/* The link of the leader of (stream, shard), or NULL: not known (under mu). */
static struct sl_link *leader_link_locked(sluice_client *c, const char *stream, uint32_t shard)
{
    int32_t node = SL_ROUTE_NONE;
    if (c->route_off || sl_route_leader(&c->route, stream, shard, &node, NULL) != SL_OK) {
        return NULL;
    }
    for (uint32_t i = 0; i < c->n_links; i++) {
        if (c->link_node[i] == node) {
            return c->links[i];
        }
    }
    const struct sl_route_broker *b = sl_route_broker(&c->route, node);
    if (b == NULL || b->addr[0] == '\0') {
        return NULL;
    }
    struct sl_link *l = link_by_addr_locked(c, b->addr);
    if (l == NULL) {
        l = link_add_locked(c, b->addr); /* opened lazily: it connects on its first call */
    }
    for (uint32_t i = 0; l != NULL && i < c->n_links; i++) {
        if (c->links[i] == l) {
            c->link_node[i] = node;
        }
    }
    return l;
}

static struct sl_link *shard_link(sluice_client *c, const char *stream, uint32_t shard)
{
    pthread_mutex_lock(&c->mu);
    struct sl_link *l = leader_link_locked(c, stream, shard);
    pthread_mutex_unlock(&c->mu);
    return l != NULL ? l : any_link(c);
}

static uint64_t deadline_after(const sluice_client *c, uint32_t extra_timeout_ms)
{
    return sl_clock_mono_ms() + c->opts.request_timeout_ms + extra_timeout_ms;
}

uint32_t sl_client_max_payload(const sluice_client *c)
{
    return sl_link_max_payload(primary_link((sluice_client *)c));
}

/* ---- calls ---- */

int sl_client_call_async(sluice_client *c, sl_request *req, uint32_t extra_timeout_ms,
                         sl_call_cb cb, void *ctx)
{
    return sl_client_call_async_on(c, req, extra_timeout_ms, cb, ctx, NULL);
}

int sl_client_call_async_on(sluice_client *c, sl_request *req, uint32_t extra_timeout_ms,
                            sl_call_cb cb, void *ctx, uint64_t *gen)
{
    return sl_link_call_async(any_link(c), req, deadline_after(c, extra_timeout_ms), cb, ctx, gen);
}

int sl_client_call_async_shard(sluice_client *c, const char *stream, uint32_t shard,
                               sl_request *req, uint32_t extra_timeout_ms, sl_call_cb cb, void *ctx,
                               uint64_t *gen)
{
    return sl_link_call_async(shard_link(c, stream, shard), req,
                              deadline_after(c, extra_timeout_ms), cb, ctx, gen);
}

int sl_client_send_noreply(sluice_client *c, sl_request *req)
{
    return sl_link_send_noreply(any_link(c), req, deadline_after(c, 0));
}

int sl_client_send_noreply_shard(sluice_client *c, const char *stream, uint32_t shard,
                                 sl_request *req)
{
    return sl_link_send_noreply(shard_link(c, stream, shard), req, deadline_after(c, 0));
}

int sl_client_call(sluice_client *c, sl_request *req, uint32_t extra_timeout_ms, sl_response **out)
{
    return sl_link_call_sync(any_link(c), req, deadline_after(c, extra_timeout_ms), out, false);
}

int sl_client_shard_leader(sluice_client *c, const char *stream, uint32_t shard, int32_t *node)
{
    pthread_mutex_lock(&c->mu);
    int rc = c->route_off ? SL_ENOTFOUND : sl_route_leader(&c->route, stream, shard, node, NULL);
    pthread_mutex_unlock(&c->mu);
    return rc;
}

int sl_client_call_shard(sluice_client *c, const char *stream, uint32_t shard, sl_request *req,
                         uint32_t extra_timeout_ms, sl_response **out)
{
    return sl_link_call_sync(shard_link(c, stream, shard), req, deadline_after(c, extra_timeout_ms),
                             out, false);
}

int sl_client_call_keep(sluice_client *c, sl_request *req, uint32_t extra_timeout_ms,
                        sl_response **out)
{
    return sl_link_call_sync(any_link(c), req, deadline_after(c, extra_timeout_ms), out, true);
}

static int call_group(sluice_client *c, const char *stream, const char *group, sl_request *req,
                      uint32_t extra_timeout_ms, sl_response **out, uint32_t retry_ms)
{
    (void)sl_client_route_refresh(c, stream, true); /* a stream not known yet: learned once */
    uint64_t give_up = sl_clock_mono_ms() + retry_ms;
    for (;;) {
        uint32_t shard = 0;
        pthread_mutex_lock(&c->mu);
        int known =
            !c->route_off && sl_route_group_shard(&c->route, stream, group, &shard) == SL_OK;
        pthread_mutex_unlock(&c->mu);
        struct sl_link *l = known ? shard_link(c, stream, shard) : any_link(c);
        int rc = sl_link_call_sync(l, req, deadline_after(c, extra_timeout_ms), out, false);
        bool moved = rc == SL_ENOT_LEADER || rc == SL_EAGAIN ||
                     (rc == SL_ECLOSED && known && sl_client_route_cluster(c));
        if (!moved || sl_clock_mono_ms() >= give_up) {
            return rc;
        }
        /* the group's shard has another leader, or none yet (an election), or its leader
         * cannot be reached (it may have died), or it is still making the stream just
         * created (EAGAIN): ask again */
        sl_clock_sleep_ms(SL_CLIENT_REFRESH_MS);
        (void)sl_client_route_refresh(c, stream, false);
    }
}

int sl_client_call_group(sluice_client *c, const char *stream, const char *group, sl_request *req,
                         uint32_t extra_timeout_ms, sl_response **out)
{
    return call_group(c, stream, group, req, extra_timeout_ms, out, SL_CLIENT_GROUP_RETRY_MS);
}

int sl_client_call_group_once(sluice_client *c, const char *stream, const char *group,
                              sl_request *req, sl_response **out)
{
    return call_group(c, stream, group, req, 0, out, 0);
}

int sl_client_call_via(sluice_client *c, sl_request *req, sl_response **out, struct sl_link **via)
{
    *via = any_link(c);
    int rc = sl_link_call_sync(*via, req, deadline_after(c, 0), out, false);
    if (rc != SL_EAGAIN) {
        return rc;
    }
    /* A broker that would answer from a stale view (cut from ZooKeeper) says EAGAIN: the
     * other brokers the client knows are asked in turn, and one that answers becomes the
     * primary. */
    pthread_mutex_lock(&c->mu);
    for (uint32_t i = 0; i < c->n_boot; i++) {
        if (link_by_addr_locked(c, c->boot[i]) == NULL) {
            (void)link_add_locked(c, c->boot[i]);
        }
    }
    uint32_t n = c->n_links;
    pthread_mutex_unlock(&c->mu);
    uint64_t now = sl_clock_mono_ms();
    for (uint32_t i = 0; i < n; i++) {
        pthread_mutex_lock(&c->mu);
        struct sl_link *l = c->links[i];
        pthread_mutex_unlock(&c->mu);
        if (l == *via || sl_link_connect(l, now) != SL_OK) {
            continue;
        }
        sl_response *r = NULL;
        if (sl_link_call_sync(l, req, deadline_after(c, 0), &r, false) == SL_OK) {
            pthread_mutex_lock(&c->mu);
            c->primary = i;
            pthread_mutex_unlock(&c->mu);
            *via = l;
            *out = r;
            return SL_OK;
        }
    }
    return rc;
}

int sl_client_want_body(int rc, sl_response **out, Sluice__V1__Response__BodyCase want,
                        int empty_ok)
{
    if (rc == SL_OK && (*out)->body_case != want &&
        !(empty_ok && (*out)->body_case == SLUICE__V1__RESPONSE__BODY__NOT_SET)) {
        int got = (int)(*out)->body_case;
        sl_response_free(*out);
        *out = NULL;
        sl_client_set_error("unexpected response kind %d (want %d)", got, (int)want);
        return SL_EPROTO;
    }
    SL_ASSERT(rc != SL_OK || *out != NULL);
    return rc;
}

int sl_client_call_want(sluice_client *c, sl_request *req, uint32_t extra_timeout_ms,
                        Sluice__V1__Response__BodyCase want, int empty_ok, sl_response **out)
{
    return sl_client_want_body(sl_client_call(c, req, extra_timeout_ms, out), out, want, empty_ok);
}

/* ---- routing ---- */

int sl_client_route_learn(sluice_client *c, struct sl_link *via, const struct sluice_metadata *m)
{
    char why[SL_ROUTE_WHY_MAX];
    pthread_mutex_lock(&c->mu);
    int rc = sl_route_apply(&c->route, m, why, sizeof(why));
    if (rc == SL_OK) {
        /* which node each link reaches: `via` is the one that answered, others by address */
        for (uint32_t i = 0; i < c->n_links; i++) {
            const char *addr = sl_link_addr(c->links[i]);
            c->link_node[i] = c->links[i] == via ? c->route.self_id : SL_ROUTE_NONE;
            for (uint32_t b = 0; c->links[i] != via && b < c->route.n_brokers; b++) {
                const struct sl_route_broker *rb = &c->route.brokers[b];
                if (rb->node_id != c->route.self_id && strcmp(rb->addr, addr) == 0) {
                    c->link_node[i] = rb->node_id;
                }
            }
        }
        __atomic_store_n(&c->route_cluster, m->cluster, __ATOMIC_RELAXED);
    }
    pthread_mutex_unlock(&c->mu);
    if (rc != SL_OK) {
        sl_client_set_error("%s", why);
    }
    return rc;
}

void sl_client_route_leader(sluice_client *c, const char *stream, uint32_t shard, int32_t *node,
                            int32_t *epoch)
{
    pthread_mutex_lock(&c->mu);
    if (c->route_off || sl_route_leader(&c->route, stream, shard, node, epoch) != SL_OK) {
        *node = SL_ROUTE_NONE;
        *epoch = 0;
    }
    pthread_mutex_unlock(&c->mu);
}

bool sl_client_route_cluster(const sluice_client *c)
{
    return __atomic_load_n(&c->route_cluster, __ATOMIC_RELAXED) != 0;
}

int sl_client_route_refresh(sluice_client *c, const char *stream, bool first)
{
    uint64_t now = sl_clock_mono_ms();
    pthread_mutex_lock(&c->mu);
    int off = c->route_off || (first && sl_route_knows(&c->route, stream));
    int early = !first && now < c->refresh_next_ms;
    if (!off && !early) {
        c->refresh_next_ms = now + c->refresh_backoff_ms; /* one refresh at a time */
    }
    pthread_mutex_unlock(&c->mu);
    if (off) {
        return SL_OK;
    }
    if (early) {
        sl_client_set_error("metadata refreshed less than %u ms ago", SL_CLIENT_REFRESH_MS);
        return SL_EAGAIN;
    }
    struct sluice_metadata *m = NULL;
    const char *names[1] = {stream};
    int rc = sluice_cluster_metadata(c, names, 1, &m);
    sluice_metadata_free(m);
    pthread_mutex_lock(&c->mu);
    if (rc == SL_EUNSUPPORTED) {
        c->route_off = 1; /* a broker older than Metadata: one broker, no routing */
        rc = SL_OK;
    } else if (rc == SL_ENOTFOUND) {
        sl_route_forget(&c->route, stream);
    }
    if (rc == SL_OK) {
        c->refresh_backoff_ms = SL_CLIENT_REFRESH_MS;
    } else {
        c->refresh_backoff_ms = c->refresh_backoff_ms * 2 > SL_CLIENT_REFRESH_MAX_MS
                                    ? SL_CLIENT_REFRESH_MAX_MS
                                    : c->refresh_backoff_ms * 2;
        c->refresh_next_ms = sl_clock_mono_ms() + c->refresh_backoff_ms;
    }
    pthread_mutex_unlock(&c->mu);
    return rc;
}

/* ---- lifecycle ---- */

static void opts_defaults(struct sluice_client_opts *o)
{
    o->connect_timeout_ms = o->connect_timeout_ms ? o->connect_timeout_ms : 5000;
    o->request_timeout_ms = o->request_timeout_ms ? o->request_timeout_ms : 30000;
    o->reconnect_backoff_ms = o->reconnect_backoff_ms ? o->reconnect_backoff_ms : 100;
    o->reconnect_backoff_max_ms = o->reconnect_backoff_max_ms ? o->reconnect_backoff_max_ms : 5000;
    o->client_id = o->client_id != NULL ? o->client_id : "libsluice";
}

/* The TLS context, from the files named in the options (read once, here). */
static int tls_setup(sluice_client *c)
{
    struct sluice_client_opts *o = &c->opts;
    if (!o->tls && o->tls_ca_file == NULL && o->tls_cert_file == NULL) {
        return SL_OK;
    }
    struct sl_tls_config tc = {.role = SL_TLS_CLIENT,
                               .cert_file = o->tls_cert_file,
                               .key_file = o->tls_key_file,
                               .ca_file = o->tls_ca_file};
    char why[CONN_MSG_MAX / 2];
    int rc = sl_tls_ctx_new(&tc, &c->tls, why, sizeof(why));
    if (rc != SL_OK) {
        sl_client_set_error("TLS: %s", why);
        return rc;
    }
    if (o->tls_server_name != NULL) {
        c->tls_server_name = strdup(o->tls_server_name);
        if (c->tls_server_name == NULL) {
            sl_client_set_error("out of memory");
            return SL_ENOMEM;
        }
    }
    /* borrowed for the call only */
    o->tls_ca_file = o->tls_cert_file = o->tls_key_file = o->tls_server_name = NULL;
    return SL_OK;
}

/* Connects to the first of the list that answers: it becomes links[0], the primary. */
static int connect_first(sluice_client *c, const char *list)
{
    int rc = SL_ECLOSED;
    char why[CONN_MSG_MAX];
    why[0] = '\0';
    for (uint32_t i = 0; i < c->n_boot; i++) {
        struct sl_link *l = NULL;
        rc = sl_link_new(&c->sh, c->boot[i], &l);
        if (rc == SL_OK) {
            rc = sl_link_connect(l, sl_clock_mono_ms());
        }
        if (rc == SL_OK) {
            pthread_mutex_lock(&c->mu);
            c->links[0] = l;
            c->link_node[0] = SL_ROUTE_NONE;
            c->n_links = 1;
            c->primary = 0;
            pthread_mutex_unlock(&c->mu);
            return SL_OK;
        }
        sl_link_free(l);
        snprintf(why, sizeof(why), "%s", sluice_last_error());
        if (rc == SL_EAUTH || rc == SL_EUNSUPPORTED || rc == SL_EINVAL) {
            break; /* the broker answered and refused: the next one would too */
        }
    }
    if (c->n_boot > 1) {
        sl_client_set_error("no broker of '%.100s' answered; the last: %.120s", list, why);
    }
    return rc;
}

int sluice_client_new(const char *host_port, const struct sluice_client_opts *opts,
                      sluice_client **out)
{
    *out = NULL;
    sluice_client *c = calloc(1, sizeof(*c));
    char why[SL_ROUTE_WHY_MAX];
    if (c == NULL || (c->boot = calloc(SL_ROUTE_BOOTSTRAP_MAX, sizeof(*c->boot))) == NULL ||
        sl_route_init(&c->route) != SL_OK) {
        sl_client_set_error("out of memory");
        if (c != NULL) {
            sl_route_fini(&c->route);
            free(c->boot);
        }
        free(c);
        return SL_ENOMEM;
    }
    pthread_mutex_init(&c->mu, NULL);
    int rc = sl_route_parse_list(host_port, c->boot, &c->n_boot, why, sizeof(why));
    if (rc != SL_OK) {
        sl_client_set_error("%s", why);
        sluice_client_free(c);
        return rc;
    }
    if (opts != NULL) {
        c->opts = *opts;
    }
    opts_defaults(&c->opts);
    snprintf(c->client_id, sizeof(c->client_id), "%s", c->opts.client_id);
    c->opts.client_id = c->client_id;
    c->refresh_backoff_ms = SL_CLIENT_REFRESH_MS;
    rc = tls_setup(c);
    if (rc == SL_OK) {
        rc = sl_login_credentials(&c->opts, &c->user, &c->password);
        c->opts.user = c->opts.password = c->opts.credentials_file = NULL; /* borrowed */
    }
    c->sh = (struct sl_link_shared){.opts = &c->opts,
                                    .tls = c->tls,
                                    .tls_server_name = c->tls_server_name,
                                    .user = c->user,
                                    .password = c->password,
                                    .gen_seq = &c->gen_seq};
    if (rc == SL_OK) {
        rc = connect_first(c, host_port);
    }
    if (rc != SL_OK) {
        sluice_client_free(c);
        return rc;
    }
    SL_ASSERT(c->n_links == 1 && c->primary == 0);
    *out = c;
    return SL_OK;
}

void sluice_client_free(sluice_client *c)
{
    if (c == NULL) {
        return;
    }
    for (uint32_t i = 0; i < c->n_links; i++) {
        sl_link_free(c->links[i]); /* fails its calls in flight: their callbacks run */
    }
    sl_route_fini(&c->route);
    sl_tls_ctx_free(c->tls);
    free(c->tls_server_name);
    free(c->user);
    if (c->password != NULL) {
        memset(c->password, 0, strlen(c->password));
        free(c->password);
    }
    pthread_mutex_destroy(&c->mu);
    free(c->boot);
    free(c);
}
