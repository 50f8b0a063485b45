/* access.c - authentication and ACLs for the AWS APIs (see access.h).
 *
 * Order per request: SigV4 verified (sigv4.c) with the secret of its access
 * key id from the auth file in force (*api->auth, swapped on SIGHUP), then
 * the signature looked up in the replay table (only verified signatures are
 * recorded, so unsigned garbage cannot evict real entries), then, once the
 * API has decoded the request, one ACL check per stream the action touches.
 *
 * Replays: stricter than AWS, which accepts a signed request again within
 * its 15 minutes. An exact copy of an accepted request (same signature) is
 * refused while its date is in the window. SDK retries are signed anew
 * (new amz-sdk-request attempt header, new date), so they are not copies.
 * The table holds SL_SIGV4_REPLAY_MAX signatures; past that many requests
 * in 15 minutes the oldest are forgotten early (counted, and logged).
 * The table is one per process, made at the first signed request and kept
 * for the process's life (the loop's thread only).
 *
 * Threading: the main loop.
 */
#include "broker/api/access.h"

#include "broker/auth/auth.h"
#include "common/assert.h"
#include "common/clock.h"
#include "common/log.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

_Static_assert(SL_API_PRINCIPAL_MAX == SL_SCRAM_NAME_MAX, "a principal is an auth file name");
_Static_assert(SL_SIGV4_SECRET_MAX == SL_AUTH_SECRET_MAX, "sigv4 takes any auth file secret");

static struct sl_sigv4_replay *g_replay; /* the loop's; lives as long as the process */
static uint64_t g_replay_early_logged;   /* early evictions already logged */

static const struct sl_auth *rules(const struct sl_api_call *call)
{
    return call->api->auth != NULL ? *call->api->auth : NULL;
}

bool sl_access_on(const struct sl_api_call *call)
{
    return call->api->auth != NULL;
}

/* "1.2.3.4:5678" or "[::1]:5678" of the call's peer, for the log. */
static void peer_name(const struct sl_api_call *call, char *out, size_t n)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (getpeername(call->conn->fd, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET) {
            const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
            port = ntohs(a->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
            port = ntohs(a->sin6_port);
        }
    }
    snprintf(out, n, "%s:%u", host, port);
}

static const char *lookup(void *ctx, const char *key_id, const char **principal)
{
    return sl_auth_aws_secret(ctx, key_id, principal);
}

static const char *status_name(enum sl_sigv4_status st)
{
    static const char *const names[] = {"ok",       "unsigned", "malformed", "unknown key",
                                        "mismatch", "expired",  "replay",    "internal"};
    return (size_t)st < sizeof(names) / sizeof(names[0]) ? names[st] : "?";
}

static void log_refusal(const struct sl_api_call *call, const char *service,
                        const struct sl_sigv4_result *res)
{
    static struct sl_log_ratelimit rl = {.interval_ms = 10000, .burst = 20};
    if (!sl_log_ratelimit_ok(&rl)) {
        return;
    }
    char peer[INET6_ADDRSTRLEN + 16];
    peer_name(call, peer, sizeof(peer));
    /* res->why names the key id at most: never the secret nor the signature */
    sl_warn("http", "conn %llu from %s: %s request refused (%s, key id %s): %s",
            (unsigned long long)call->conn->id, peer, service, status_name(res->status),
            res->key_id[0] != '\0' ? res->key_id : "-", res->why);
}

static enum sl_sigv4_status check_replay(struct sl_sigv4_result *res, uint64_t now_ms)
{
    if (g_replay == NULL) {
        g_replay = sl_sigv4_replay_new();
        if (g_replay == NULL) {
            snprintf(res->why, sizeof(res->why), "out of memory (the replay table)");
            return res->status = SL_SIGV4_INTERNAL;
        }
    }
    if (sl_sigv4_replay_check(g_replay, res->signature, res->date_ms, now_ms)) {
        snprintf(res->why, sizeof(res->why),
                 "this signed request was already received (a replay of a request signed by "
                 "%.40s): this broker accepts each signature once; sign every request anew "
                 "(the AWS SDKs do, retries included)",
                 res->key_id);
        return res->status = SL_SIGV4_REPLAY;
    }
    uint64_t early = sl_sigv4_replay_early_evictions(g_replay);
    if (early > g_replay_early_logged) {
        static struct sl_log_ratelimit rl = {.interval_ms = 60000, .burst = 1};
        if (sl_log_ratelimit_ok(&rl)) {
            sl_warn("http",
                    "SigV4 replay table full: %llu signatures forgotten before their 15 "
                    "minutes (more than %u signed requests in 15 min); replays of those are "
                    "no longer detected",
                    (unsigned long long)early, SL_SIGV4_REPLAY_MAX);
        }
        g_replay_early_logged = early;
    }
    return SL_SIGV4_OK;
}

enum sl_sigv4_status sl_access_authenticate(struct sl_api_call *call, const char *service,
                                            char *why, size_t why_len)
{
    call->principal[0] = '\0';
    const struct sl_auth *auth = rules(call);
    if (!sl_access_on(call)) {
        return SL_SIGV4_OK;
    }
    const struct sl_http_request *req = call->req;
    SL_ASSERT(req != NULL && auth != NULL); /* on arrival; the broker loads rules before serving */
    struct sl_sigv4_request r = {.method = req->method,
                                 .target = req->path,
                                 .headers = req->headers,
                                 .n_headers = req->n_headers,
                                 .body = req->body,
                                 .body_len = req->body_len};
    struct sl_sigv4_result res;
    uint64_t now_ms = sl_clock_wall_ms();
    enum sl_sigv4_status st = sl_sigv4_verify(&r, service, now_ms, lookup, (void *)auth, &res);
    if (st == SL_SIGV4_OK) {
        st = check_replay(&res, now_ms);
    }
    if (st != SL_SIGV4_OK) {
        log_refusal(call, service, &res);
        snprintf(why, why_len, "%s", res.why);
        return st;
    }
    SL_ASSERT(res.principal != NULL && strlen(res.principal) <= SL_API_PRINCIPAL_MAX);
    snprintf(call->principal, sizeof(call->principal), "%s", res.principal);
    return SL_SIGV4_OK;
}

bool sl_access_allowed(struct sl_api_call *call, uint32_t ops, const char *stream, char *why,
                       size_t why_len)
{
    call->acl_checked = true;
    if (!sl_access_on(call)) {
        return true;
    }
    SL_ASSERT(ops != 0 && call->principal[0] != '\0'); /* authenticated, and an action's needs */
    if (sl_auth_allowed(rules(call), call->principal, ops, stream)) {
        return true;
    }
    const char *need = ops == SL_ACL_ANY ? "any" : sl_acl_op_name(ops);
    snprintf(why, why_len,
             "User: %s is not authorized to perform: %s on resource: stream %s (the auth_file "
             "grants %s no %s right on it: add an allow line and reload with SIGHUP)",
             call->principal, call->action != NULL ? call->action : "this action", stream,
             call->principal, need);
    static struct sl_log_ratelimit rl = {.interval_ms = 10000, .burst = 20};
    if (sl_log_ratelimit_ok(&rl)) {
        char peer[INET6_ADDRSTRLEN + 16];
        peer_name(call, peer, sizeof(peer));
        sl_info("http", "conn %llu from %s: denied %s (%s) on stream %s to %s",
                (unsigned long long)call->conn->id, peer, call->action != NULL ? call->action : "?",
                need, stream, call->principal);
    }
    return false;
}

bool sl_access_visible(struct sl_api_call *call, const char *stream)
{
    call->acl_checked = true;
    return !sl_access_on(call) || sl_auth_allowed(rules(call), call->principal, SL_ACL_ANY, stream);
}
