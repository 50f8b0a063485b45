/* h_auth.c - authentication (SCRAM-SHA-256, or the client certificate's
 * name under mutual TLS) and per-request authorization on the native
 * protocol, when the broker has auth = true.
 *
 * A connection starts unauthenticated: Hello says so (auth_required); until
 * an Authenticate exchange succeeds only Hello and Authenticate are
 * accepted, in frames of at most SL_NATIVE_PREAUTH_FRAME_BYTES, so an
 * anonymous peer cannot make the broker buffer megabytes. A failed exchange
 * is answered EAUTH (the same for an unknown user and a wrong password),
 * logged with the peer's address, and the connection closes; an address with
 * LOGIN_FAILURES_MAX failures within LOGIN_WINDOW_MS is refused at once
 * until its window ends (a fixed table: bounded whatever the peers).
 *
 * Every later request is checked against the rules in force (a reload
 * applies to open connections at their next request).
 */
#include "broker/native/handlers.h"

#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define LOGIN_FAILURES_MAX 5u
#define LOGIN_WINDOW_MS    60000u
#define MECHANISM          "SCRAM-SHA-256"

_Static_assert(SL_NATIVE_LOGIN_SLOTS > 0 && (SL_NATIVE_LOGIN_SLOTS & (SL_NATIVE_LOGIN_SLOTS - 1)) ==
                   0,
               "the failure table is indexed by a hash mask");


struct sl_native_session {
    char principal[SL_SCRAM_NAME_MAX + 1];
    struct sl_scram_server scram;
    bool scram_started;
};

static struct sl_native_session *session(struct sl_conn *c)
{
    if (c->proto_state == NULL) {
        c->proto_state = calloc(1, sizeof(struct sl_native_session));
    }
    return c->proto_state;
}

void sl_native_session_free(struct sl_conn *c)
{
    if (c->proto_state != NULL) {
        memset(c->proto_state, 0, sizeof(struct sl_native_session)); /* SCRAM state */
        free(c->proto_state);
        c->proto_state = NULL;
    }
}

bool sl_native_authed(const struct sl_native *srv, const struct sl_conn *c)
{
    return srv->auth == NULL || (c->proto_flags & SL_NATIVE_AUTHED) != 0;
}

/* ---- failed logins by address ---- */

static struct sl_native_login *login_slot(struct sl_native *srv, const char *ip)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const char *p = ip; *p != '\0'; p++) {
        h = (h ^ (uint8_t)*p) * 16777619u;
    }
    return &srv->logins[h & (SL_NATIVE_LOGIN_SLOTS - 1)];
}

/* Milliseconds this address must still wait, 0 if it may try. */
static uint64_t login_wait_ms(struct sl_native *srv, const char *ip, uint64_t now)
{
    struct sl_native_login *l = login_slot(srv, ip);
    if (strcmp(l->ip, ip) != 0 || now - l->window_start_ms >= LOGIN_WINDOW_MS) {
        return 0;
    }
    return l->failures >= LOGIN_FAILURES_MAX ? LOGIN_WINDOW_MS - (now - l->window_start_ms) : 0;
}

static void login_failed(struct sl_native *srv, const char *ip, uint64_t now)
{
    struct sl_native_login *l = login_slot(srv, ip);
    if (strcmp(l->ip, ip) != 0 || now - l->window_start_ms >= LOGIN_WINDOW_MS) {
        /* A colliding address takes the slot. An address's text (IPv6: at most 45 bytes)
         * fits; were one longer, it would be counted by its prefix (and said so). */
        if (snprintf(l->ip, sizeof(l->ip), "%s", ip) >= (int)sizeof(l->ip)) {
            sl_warn("auth", "peer address '%s' cut to %zu bytes for login limiting", ip,
                    sizeof(l->ip) - 1);
        }
        l->window_start_ms = now;
        l->failures = 0;
    }
    l->failures++;
}

/* ---- Hello and Authenticate ---- */

void sl_native_hello_auth(struct sl_native *srv, struct sl_conn *c,
                          Sluice__V1__HelloResponse *hr)
{
    static char *mechanisms[] = {(char *)MECHANISM};
    if (srv->auth == NULL) {
        return;
    }
    struct sl_native_session *s = session(c);
    if (s != NULL && !(c->proto_flags & SL_NATIVE_AUTHED)) {
        char cn[SL_SCRAM_NAME_MAX + 2];
        sl_conn_tls_peer(c, cn, sizeof(cn)); /* a verified client certificate */
        if (cn[0] != '\0' && sl_scram_name_ok(cn)) {
            memcpy(s->principal, cn, strlen(cn) + 1); /* name_ok: at most 64 */
            c->proto_flags |= SL_NATIVE_AUTHED;
            sl_info("auth", "conn %llu: authenticated as %s by its certificate",
                    (unsigned long long)c->id, cn);
        }
    }
    hr->auth_required = !(c->proto_flags & SL_NATIVE_AUTHED);
    hr->n_mechanisms = 1;
    hr->mechanisms = mechanisms;
    hr->principal = s != NULL ? s->principal : (char *)"";
}

static void auth_fail(struct sl_native *srv, struct sl_conn *c, const sl_request *req,
                      const char *user, const char *why)
{
    char ip[64], msg[256];
    sl_conn_peer_ip(c, ip, sizeof(ip));
    login_failed(srv, ip, sl_clock_mono_ms());
    static struct sl_log_ratelimit rl = {.interval_ms = 10000, .burst = 20};
    if (sl_log_ratelimit_ok(&rl)) {
        sl_warn("auth", "conn %llu from %s: login failed for user '%s': %s",
                (unsigned long long)c->id, ip, user, why);
    }
    snprintf(msg, sizeof(msg), "authentication failed: %s", why);
    sl_conn_close_after_send(c); /* first: no request after this one is read */
    sl_native_fail(c, req->id, SL_EAUTH, msg);
}

static void respond_auth(struct sl_conn *c, uint64_t id, const char *data, bool done,
                         const char *principal)
{
    sl_response resp = SLUICE__V1__RESPONSE__INIT;
    Sluice__V1__AuthenticateResponse ar = SLUICE__V1__AUTHENTICATE_RESPONSE__INIT;
    ar.data.data = (uint8_t *)data;
    ar.data.len = strlen(data);
    ar.done = done;
    ar.principal = (char *)principal;
    resp.id = id;
    resp.body_case = SLUICE__V1__RESPONSE__BODY_AUTHENTICATE;
    resp.authenticate = &ar;
    sl_native_respond(c, &resp);
    sl_conn_request_done(c);
}

void sl_native_authenticate(struct sl_native *srv, struct sl_conn *c, const sl_request *req)
{
    const Sluice__V1__Authenticate *a = req->authenticate;
    struct sl_native_session *s = session(c);
    if (srv->auth == NULL || (c->proto_flags & SL_NATIVE_AUTHED)) {
        sl_native_fail(c, req->id, SL_EINVAL,
                       srv->auth == NULL ? "this broker has auth = false: nothing to authenticate"
                                         : "already authenticated");
        return;
    }
    if (s == NULL) {
        sl_native_fail(c, req->id, SL_ENOMEM, "out of memory");
        return;
    }
    char out[SL_SCRAM_MSG_MAX];
    const char *data = (const char *)a->data.data;
    if (!s->scram_started) {
        char ip[64];
        sl_conn_peer_ip(c, ip, sizeof(ip));
        uint64_t wait = login_wait_ms(srv, ip, sl_clock_mono_ms());
        if (wait > 0) {
            char msg[160];
            snprintf(msg, sizeof(msg), "too many failed logins from %s: retry in %llu s", ip,
                     (unsigned long long)(wait + 999) / 1000);
            sl_conn_close_after_send(c);
            sl_native_fail(c, req->id, SL_EAUTH, msg);
            return;
        }
        if (a->mechanism == NULL || strcmp(a->mechanism, MECHANISM) != 0) {
            sl_native_fail(c, req->id, SL_EUNSUPPORTED, "mechanism not supported: use " MECHANISM);
            return;
        }
        int rc = sl_scram_server_first(&s->scram, data, a->data.len, sl_auth_scram_lookup,
                                       *srv->auth, srv->fake_key, out, sizeof(out));
        if (rc != SL_OK) {
            auth_fail(srv, c, req, "?", "malformed SCRAM client-first message");
            return;
        }
        s->scram_started = true;
        respond_auth(c, req->id, out, false, "");
        return;
    }
    int rc = sl_scram_server_final(&s->scram, data, a->data.len, out, sizeof(out));
    if (rc != SL_OK) {
        auth_fail(srv, c, req, s->scram.user,
                  rc == SL_EAUTH ? "wrong user name or password"
                                 : "malformed SCRAM client-final message");
        return;
    }
    memcpy(s->principal, s->scram.user, sizeof(s->principal));
    memset(&s->scram, 0, sizeof(s->scram));
    c->proto_flags |= SL_NATIVE_AUTHED;
    sl_info("auth", "conn %llu: authenticated as %s", (unsigned long long)c->id, s->principal);
    respond_auth(c, req->id, out, true, s->principal);
}

/* ---- authorization ---- */

/* The right a request needs and the stream it is about. */
static uint32_t needs(const sl_request *req, const char **stream)
{
    *stream = "";
    switch (req->body_case) {
    case SLUICE__V1__REQUEST__BODY_CREATE_STREAM:
        *stream = req->create_stream->name;
        return SL_ACL_ADMIN;
    case SLUICE__V1__REQUEST__BODY_DELETE_STREAM:
        *stream = req->delete_stream->name;
        return SL_ACL_ADMIN;
    case SLUICE__V1__REQUEST__BODY_RESHARD_STREAM:
        *stream = req->reshard_stream->stream;
        return SL_ACL_ADMIN;
    case SLUICE__V1__REQUEST__BODY_DESCRIBE_STREAM:
        *stream = req->describe_stream->name;
        return SL_ACL_ANY;
    case SLUICE__V1__REQUEST__BODY_LIST_STREAMS:
        return 0; /* names only: any authenticated principal (docs/SECURITY.md) */
    case SLUICE__V1__REQUEST__BODY_CLUSTER_STATUS:
        return 0; /* the brokers' addresses, which clients need anyway */
    case SLUICE__V1__REQUEST__BODY_METADATA:
        return 0; /* each stream named is checked as DescribeStream (h_cluster.c) */
    case SLUICE__V1__REQUEST__BODY_PRODUCE:
        *stream = req->produce->stream;
        return SL_ACL_PRODUCE;
    case SLUICE__V1__REQUEST__BODY_FETCH:
        *stream = req->fetch->stream;
        return SL_ACL_CONSUME;
    case SLUICE__V1__REQUEST__BODY_COMMIT_CHECKPOINT:
        *stream = req->commit_checkpoint->stream;
        return SL_ACL_CONSUME;
    case SLUICE__V1__REQUEST__BODY_GET_CHECKPOINTS:
        *stream = req->get_checkpoints->stream;
        return SL_ACL_CONSUME;
    case SLUICE__V1__REQUEST__BODY_LIST_GROUPS:
        *stream = req->list_groups->stream;
        return SL_ACL_CONSUME;
    case SLUICE__V1__REQUEST__BODY_GROUP_LAG:
        *stream = req->group_lag->stream;
        return SL_ACL_CONSUME;
    case SLUICE__V1__REQUEST__BODY_JOIN_GROUP:
        *stream = req->join_group->stream;
        return SL_ACL_CONSUME;
    case SLUICE__V1__REQUEST__BODY_HEARTBEAT:
        *stream = req->heartbeat->stream;
        return SL_ACL_CONSUME;
    case SLUICE__V1__REQUEST__BODY_LEAVE_GROUP:
        *stream = req->leave_group->stream;
        return SL_ACL_CONSUME;
    case SLUICE__V1__REQUEST__BODY_DESCRIBE_GROUP:
        *stream = req->describe_group->stream;
        return SL_ACL_CONSUME;
    case SLUICE__V1__REQUEST__BODY_RESET_GROUP:
        *stream = req->reset_group->stream;
        return SL_ACL_CONSUME;
    case SLUICE__V1__REQUEST__BODY_CREATE_GROUP:
        *stream = req->create_group->stream;
        return SL_ACL_QUEUE;
    case SLUICE__V1__REQUEST__BODY_DELETE_GROUP:
        *stream = req->delete_group->stream;
        return SL_ACL_ADMIN;
    case SLUICE__V1__REQUEST__BODY_RECEIVE:
        *stream = req->receive->stream;
        return SL_ACL_QUEUE;
    case SLUICE__V1__REQUEST__BODY_ACK:
        *stream = req->ack->stream;
        return SL_ACL_QUEUE;
    case SLUICE__V1__REQUEST__BODY_NACK:
        *stream = req->nack->stream;
        return SL_ACL_QUEUE;
    case SLUICE__V1__REQUEST__BODY_EXTEND_VISIBILITY:
        *stream = req->extend_visibility->stream;
        return SL_ACL_QUEUE;
    case SLUICE__V1__REQUEST__BODY_GROUP_STATS:
        *stream = req->group_stats->stream;
        return SL_ACL_QUEUE;
    case SLUICE__V1__REQUEST__BODY_LIST_QUEUE_GROUPS:
        *stream = req->list_queue_groups->stream;
        return SL_ACL_QUEUE;
    case SLUICE__V1__REQUEST__BODY_PURGE:
        *stream = req->purge->stream;
        return SL_ACL_ADMIN;
    /* A target makes the broker send a stream's records to a URL of the
     * caller's choosing, and its URL may hold a secret: admin only. */
    case SLUICE__V1__REQUEST__BODY_SET_TARGET:
        *stream = req->set_target->target != NULL ? req->set_target->target->stream : "";
        return SL_ACL_ADMIN;
    case SLUICE__V1__REQUEST__BODY_REMOVE_TARGET:
        *stream = req->remove_target->stream;
        return SL_ACL_ADMIN;
    case SLUICE__V1__REQUEST__BODY_LIST_TARGETS:
        *stream = req->list_targets->stream;
        return SL_ACL_ADMIN;
    /* A follower's fetch reads every record of the shard: a broker's principal, admin. */
    case SLUICE__V1__REQUEST__BODY_REPLICATE:
        *stream = req->replicate->stream;
        return SL_ACL_ADMIN;
    case SLUICE__V1__REQUEST__BODY_REASSIGN_SHARD: /* moves the stream's copies: admin */
        *stream = req->reassign_shard->stream;
        return SL_ACL_ADMIN;
    default:
        return 0; /* Hello, Authenticate; unknown types are refused by the switch */
    }
}

/* A dead-letter stream named at group creation is written by the broker on
 * the creator's behalf: it needs the right to produce there too. */
static const char *dlq_stream(const sl_request *req)
{
    if (req->body_case != SLUICE__V1__REQUEST__BODY_CREATE_GROUP ||
        req->create_group->config == NULL ||
        req->create_group->config->dead_letter_stream == NULL) {
        return "";
    }
    return req->create_group->config->dead_letter_stream;
}

const char *sl_native_principal(const struct sl_conn *c)
{
    const struct sl_native_session *s = c->proto_state;
    return s != NULL && (c->proto_flags & SL_NATIVE_AUTHED) ? s->principal : "";
}

int sl_native_authorize_op(const struct sl_native *srv, const struct sl_conn *c, uint32_t ops,
                           const char *stream, char *msg, size_t cap)
{
    if (srv->auth == NULL) {
        return SL_OK;
    }
    if (!(c->proto_flags & SL_NATIVE_AUTHED)) {
        snprintf(msg, cap, "authenticate first: the broker has auth = true (SCRAM-SHA-256 with a "
                           "user and password, or a client certificate)");
        return SL_EAUTH;
    }
    const struct sl_native_session *s = c->proto_state;
    const char *who = s != NULL ? s->principal : "";
    if (stream == NULL) {
        stream = "";
    }
    if (ops != 0 && !sl_auth_allowed(*srv->auth, who, ops, stream)) {
        snprintf(msg, cap, "%s lacks the %s right on stream '%s' (no allow rule in the auth file "
                           "grants it)",
                 who, sl_acl_op_name(ops), stream);
        return SL_EDENIED;
    }
    return SL_OK;
}

int sl_native_authorize(const struct sl_native *srv, const struct sl_conn *c,
                        const sl_request *req, char *msg, size_t cap)
{
    if (srv->auth == NULL || req->body_case == SLUICE__V1__REQUEST__BODY_HELLO ||
        req->body_case == SLUICE__V1__REQUEST__BODY_AUTHENTICATE) {
        return SL_OK;
    }
    const char *stream = NULL;
    uint32_t ops = needs(req, &stream);
    int rc = sl_native_authorize_op(srv, c, ops, stream, msg, cap);
    if (rc != SL_OK) {
        return rc;
    }
    const struct sl_native_session *s = c->proto_state;
    const char *who = s != NULL ? s->principal : "";
    const char *dlq = dlq_stream(req);
    if (dlq[0] != '\0' && !sl_auth_allowed(*srv->auth, who, SL_ACL_PRODUCE, dlq)) {
        snprintf(msg, cap, "%s may not produce to the dead-letter stream '%s'", who, dlq);
        return SL_EDENIED;
    }
    return SL_OK;
}

void sl_native_auth_init(struct sl_native *srv)
{
    /* derives unknown users' salts (scram.h); a failure leaves the zero key,
     * which only makes unknown users' salts predictable */
    if (getrandom(srv->fake_key, sizeof(srv->fake_key), 0) != (ssize_t)sizeof(srv->fake_key)) {
        sl_warn("auth", "getrandom failed: unknown users' salts are predictable");
    }
}
