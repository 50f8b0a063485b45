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
 * The web console's API logs in with HTTP Basic instead (sl_access_basic):
 * a user line of the auth file and its password, checked against the
 * SCRAM credentials (PBKDF2 at the file's iterations, ~5 ms). A verified
 * login is remembered for BASIC_CACHE_MS as an HMAC under a per-process key
 * (never the password), and re-checked against the user's current StoredKey
 * on each hit, so a SIGHUP that changes or removes the user ends it. Failed
 * logins are limited to BASIC_FAILS_MAX per BASIC_FAIL_WINDOW_MS (over all
 * peers): beyond that the loop spends no more PBKDF2 on guesses (429).
 *
 * Threading: the main loop.
 */
#include "broker/api/access.h"

#include "broker/auth/auth.h"
#include "common/assert.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"

#include <arpa/inet.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
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
                 "%.40s): this broker accepts each signature once; an identical request "
                 "signed in the same second (X-Amz-Date has 1 s resolution) is one, so "
                 "send it again a second later or add a unique signed header",
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
    if (call->internal_done != NULL) {
        return SL_SIGV4_OK; /* its caller authenticated it and set the principal */
    }
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

/* ---- HTTP Basic: the web console ------------------------------------------ */

#define BASIC_CACHE_SLOTS    64u
#define BASIC_CACHE_MS       (5u * 60u * 1000u)
#define BASIC_FAILS_MAX      20u
#define BASIC_FAIL_WINDOW_MS 10000u
#define BASIC_HEADER_MAX     512u /* base64 of "user:password" */

struct basic_slot {
    uint8_t tag[32]; /* HMAC-SHA256(key, "user:password") */
    uint8_t stored_key[SL_SCRAM_KEY_BYTES];
    char user[SL_API_PRINCIPAL_MAX + 1];
    uint64_t expires_ms; /* monotonic; 0: empty */
};

static struct {
    uint8_t key[32];
    bool keyed;
    struct basic_slot slot[BASIC_CACHE_SLOTS];
    uint32_t next; /* the slot a new login takes (round robin) */
    uint64_t window_start_ms;
    uint32_t fails;
} g_basic;

/* "user:password" from the header into out (NUL-terminated); its length. */
static int basic_decode(const char *h, char *out, size_t cap, size_t *len)
{
    while (*h == ' ') {
        h++;
    }
    size_t n = strlen(h);
    while (n > 0 && h[n - 1] == ' ') {
        n--;
    }
    if (n == 0 || n % 4 != 0 || n > BASIC_HEADER_MAX || cap < n / 4 * 3 + 1) {
        return SL_EINVAL;
    }
    int got = EVP_DecodeBlock((unsigned char *)out, (const unsigned char *)h, (int)n);
    if (got < 0) {
        return SL_EINVAL;
    }
    size_t pad = (h[n - 1] == '=') + (h[n - 2] == '=');
    *len = (size_t)got - pad;
    out[*len] = '\0';
    return SL_OK;
}

static bool basic_failures_left(uint64_t now)
{
    if (now - g_basic.window_start_ms >= BASIC_FAIL_WINDOW_MS) {
        g_basic.window_start_ms = now;
        g_basic.fails = 0;
    }
    return g_basic.fails < BASIC_FAILS_MAX;
}

int sl_access_basic(struct sl_api_call *call, char *why, size_t why_len)
{
    if (!sl_access_on(call)) {
        return SL_OK;
    }
    const char *h = call->req != NULL ? sl_api_header(call->req, "authorization") : NULL;
    if (h == NULL || strncasecmp(h, "Basic ", 6) != 0) {
        snprintf(why, why_len,
                 "the console needs a login: a user of the broker's auth file and its password");
        return SL_EAUTH;
    }
    char up[BASIC_HEADER_MAX];
    size_t len = 0;
    char *colon = NULL;
    if (basic_decode(h + 6, up, sizeof(up), &len) != SL_OK ||
        (colon = memchr(up, ':', len)) == NULL) {
        snprintf(why, why_len, "the Authorization header is not Basic base64(user:password)");
        return SL_EAUTH;
    }
    *colon = '\0';
    const char *user = up, *password = colon + 1;
    size_t password_len = len - (size_t)(colon + 1 - up);
    if (!g_basic.keyed) {
        if (RAND_bytes(g_basic.key, sizeof(g_basic.key)) != 1) {
            snprintf(why, why_len, "no randomness for the login cache");
            return SL_ESYS;
        }
        g_basic.keyed = true;
    }
    uint8_t tag[32];
    unsigned tag_len = 0;
    *colon = ':'; /* the tag covers "user:password" */
    HMAC(EVP_sha256(), g_basic.key, sizeof(g_basic.key), (const unsigned char *)up, len, tag,
         &tag_len);
    *colon = '\0';
    struct sl_scram_cred cred;
    bool known = sl_scram_name_ok(user) &&
                 sl_auth_scram_lookup((void *)rules(call), user, &cred);
    uint64_t now = sl_clock_mono_ms();
    for (uint32_t i = 0; known && i < BASIC_CACHE_SLOTS; i++) {
        struct basic_slot *s = &g_basic.slot[i];
        if (s->expires_ms > now && strcmp(s->user, user) == 0 &&
            CRYPTO_memcmp(s->tag, tag, sizeof(tag)) == 0 &&
            CRYPTO_memcmp(s->stored_key, cred.stored_key, SL_SCRAM_KEY_BYTES) == 0) {
            snprintf(call->principal, sizeof(call->principal), "%.*s", (int)SL_API_PRINCIPAL_MAX, user);
            OPENSSL_cleanse(up, sizeof(up));
            return SL_OK;
        }
    }
    if (!basic_failures_left(now)) {
        OPENSSL_cleanse(up, sizeof(up));
        snprintf(why, why_len,
                 "too many failed console logins (%u in %u s, from all addresses): wait and "
                 "try again",
                 BASIC_FAILS_MAX, BASIC_FAIL_WINDOW_MS / 1000u);
        return SL_ELIMIT;
    }
    bool ok = known && sl_scram_cred_check(&cred, password, password_len);
    OPENSSL_cleanse(up + (password - up), password_len);
    if (!ok) {
        g_basic.fails++;
        static struct sl_log_ratelimit rl = {.interval_ms = 10000, .burst = 20};
        if (sl_log_ratelimit_ok(&rl)) {
            char peer[INET6_ADDRSTRLEN + 16];
            peer_name(call, peer, sizeof(peer));
            sl_info("http", "conn %llu from %s: console login failed for user %.64s",
                    (unsigned long long)call->conn->id, peer, user);
        }
        snprintf(why, why_len, "wrong user or password (users are the auth file's user lines)");
        return SL_EAUTH;
    }
    struct basic_slot *s = &g_basic.slot[g_basic.next++ % BASIC_CACHE_SLOTS];
    memcpy(s->tag, tag, sizeof(tag));
    memcpy(s->stored_key, cred.stored_key, SL_SCRAM_KEY_BYTES);
    snprintf(s->user, sizeof(s->user), "%.*s", (int)SL_API_PRINCIPAL_MAX, user);
    s->expires_ms = now + BASIC_CACHE_MS;
    snprintf(call->principal, sizeof(call->principal), "%.*s", (int)SL_API_PRINCIPAL_MAX, user);
    return SL_OK;
}
