/* tls.c - TLS sessions over memory BIOs (see tls.h).
 *
 * Each session owns two memory BIOs: `rbio` holds ciphertext fed by the
 * caller until OpenSSL consumes it, `wbio` holds ciphertext OpenSSL produced
 * until the caller takes it. An empty rbio reads as "retry" (not EOF), so
 * SSL_read answers SSL_ERROR_WANT_READ when a record is incomplete. Both are
 * bounded by the caller: it feeds only after reading what was there and
 * takes output before writing more.
 *
 * Renegotiation is off (TLS 1.2 renegotiation is the only way the read side
 * of a session would write after the handshake, besides TLS 1.3 key updates,
 * which the caller flushes like any output).
 */
#include "common/tls.h"

#include "common/assert.h"
#include "common/error.h"
#include "common/log.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ALPN_WIRE_MAX 64u /* a few protocol names, length-prefixed */

struct sl_tls_ctx {
    SSL_CTX *ssl;
    enum sl_tls_role role;
    uint8_t alpn[ALPN_WIRE_MAX]; /* server: ALPN preference list, wire format */
    uint32_t alpn_len;
};

struct sl_tls {
    SSL *ssl;
    BIO *rbio; /* owned by ssl */
    BIO *wbio; /* owned by ssl */
    char why[SL_TLS_WHY_BYTES];
};

/* The most specific reason on this thread's OpenSSL error queue, then the
 * queue cleared. */
static void queue_reason(char *buf, size_t len)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e != 0 ? ERR_reason_error_string(e) : NULL;
    snprintf(buf, len, "%s", r != NULL ? r : "unknown TLS error");
    ERR_clear_error();
}

/* ---- contexts ---------------------------------------------------------- */

/* "h2,http/1.1" -> "\x02h2\x08http/1.1". */
static int alpn_wire(const char *list, uint8_t *out, uint32_t *out_len)
{
    uint32_t n = 0;
    const char *p = list;
    while (*p != '\0') {
        const char *comma = strchr(p, ',');
        size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);
        if (len == 0 || len > 255 || n + 1 + len > ALPN_WIRE_MAX) {
            return SL_EINVAL;
        }
        out[n++] = (uint8_t)len;
        memcpy(out + n, p, len);
        n += (uint32_t)len;
        p += len + (comma != NULL);
    }
    *out_len = n;
    return SL_OK;
}

static int on_alpn_select(SSL *ssl, const unsigned char **out, unsigned char *out_len,
                          const unsigned char *in, unsigned int in_len, void *arg)
{
    (void)ssl;
    const struct sl_tls_ctx *ctx = arg;
    unsigned char *sel = NULL;
    /* Our order wins: the first of ours the client offers. */
    if (SSL_select_next_proto(&sel, out_len, ctx->alpn, ctx->alpn_len, in, in_len) !=
        OPENSSL_NPN_NEGOTIATED) {
        return SSL_TLSEXT_ERR_NOACK; /* no common protocol: go on without ALPN */
    }
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

static int ctx_load(struct sl_tls_ctx *ctx, const struct sl_tls_config *cfg, char *why,
                    size_t why_len)
{
    SSL_CTX *s = ctx->ssl;
    char r[SL_TLS_WHY_BYTES];
    bool server = cfg->role == SL_TLS_SERVER;
    if (server && (cfg->cert_file == NULL || cfg->key_file == NULL)) {
        snprintf(why, why_len, "a TLS server needs a certificate and its key (tls_cert_file, "
                               "tls_key_file)");
        return SL_EINVAL;
    }
    if ((cfg->cert_file == NULL) != (cfg->key_file == NULL)) {
        snprintf(why, why_len, "a certificate needs its key and a key its certificate");
        return SL_EINVAL;
    }
    if (cfg->cert_file != NULL) {
        if (SSL_CTX_use_certificate_chain_file(s, cfg->cert_file) != 1) {
            queue_reason(r, sizeof(r));
            snprintf(why, why_len, "cannot load the certificate %s: %s", cfg->cert_file, r);
            return SL_EINVAL;
        }
        if (SSL_CTX_use_PrivateKey_file(s, cfg->key_file, SSL_FILETYPE_PEM) != 1) {
            queue_reason(r, sizeof(r));
            snprintf(why, why_len, "cannot load the private key %s: %s", cfg->key_file, r);
            return SL_EINVAL;
        }
        if (SSL_CTX_check_private_key(s) != 1) {
            queue_reason(r, sizeof(r));
            snprintf(why, why_len, "the key %s does not match the certificate %s: %s",
                     cfg->key_file, cfg->cert_file, r);
            return SL_EINVAL;
        }
    }
    if (server && cfg->client_auth != SL_TLS_CLIENT_AUTH_NONE && cfg->ca_file == NULL) {
        snprintf(why, why_len, "client certificates need the CAs that sign them (tls_ca_file)");
        return SL_EINVAL;
    }
    int ok = cfg->ca_file != NULL ? SSL_CTX_load_verify_locations(s, cfg->ca_file, NULL)
             : server              ? 1
                                   : SSL_CTX_set_default_verify_paths(s);
    if (ok != 1) {
        queue_reason(r, sizeof(r));
        snprintf(why, why_len, "cannot load the CA certificates %s: %s",
                 cfg->ca_file != NULL ? cfg->ca_file : "(system store)", r);
        return SL_EINVAL;
    }
    if (!server) {
        SSL_CTX_set_verify(s, SSL_VERIFY_PEER, NULL);
    } else if (cfg->client_auth != SL_TLS_CLIENT_AUTH_NONE) {
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(cfg->ca_file);
        if (names != NULL) {
            SSL_CTX_set_client_CA_list(s, names); /* takes names */
        }
        int mode = SSL_VERIFY_PEER;
        if (cfg->client_auth == SL_TLS_CLIENT_AUTH_REQUIRE) {
            mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
        }
        SSL_CTX_set_verify(s, mode, NULL);
    }
    return SL_OK;
}

int sl_tls_ctx_new(const struct sl_tls_config *cfg, struct sl_tls_ctx **out, char *why,
                   size_t why_len)
{
    SL_ASSERT(cfg->role == SL_TLS_SERVER || cfg->role == SL_TLS_CLIENT);
    struct sl_tls_ctx *ctx = calloc(1, sizeof(*ctx));
    if (ctx == NULL) {
        snprintf(why, why_len, "out of memory");
        return SL_ENOMEM;
    }
    ctx->role = cfg->role;
    ctx->ssl = SSL_CTX_new(cfg->role == SL_TLS_SERVER ? TLS_server_method() : TLS_client_method());
    if (ctx->ssl == NULL) {
        ERR_clear_error();
        free(ctx);
        snprintf(why, why_len, "out of memory");
        return SL_ENOMEM;
    }
    SSL_CTX *s = ctx->ssl;
    SSL_CTX_set_min_proto_version(s, cfg->tls13_only ? TLS1_3_VERSION : TLS1_2_VERSION);
    SSL_CTX_set_options(s, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                               SSL_OP_CIPHER_SERVER_PREFERENCE);
    /* Idle sessions give their read/write buffers back (many idle connections). */
    SSL_CTX_set_mode(s, SSL_MODE_RELEASE_BUFFERS);
    static const unsigned char sid_ctx[] = "sluice";
    SSL_CTX_set_session_id_context(s, sid_ctx, sizeof(sid_ctx) - 1);
    int rc = ctx_load(ctx, cfg, why, why_len);
    if (rc == SL_OK && cfg->role == SL_TLS_SERVER && cfg->alpn != NULL) {
        rc = alpn_wire(cfg->alpn, ctx->alpn, &ctx->alpn_len);
        if (rc != SL_OK) {
            snprintf(why, why_len, "bad ALPN list \"%s\"", cfg->alpn);
        } else {
            SSL_CTX_set_alpn_select_cb(s, on_alpn_select, ctx);
        }
    }
    if (rc != SL_OK) {
        sl_tls_ctx_free(ctx);
        return rc;
    }
    *out = ctx;
    return SL_OK;
}

int sl_tls_ctx_check_validity(const struct sl_tls_ctx *ctx, char *why, size_t why_len)
{
    X509 *cert = SSL_CTX_get0_certificate(ctx->ssl);
    if (cert == NULL) {
        return SL_OK;
    }
    if (X509_cmp_current_time(X509_get0_notAfter(cert)) < 0) {
        snprintf(why, why_len, "the certificate has expired");
        return SL_EINVAL;
    }
    if (X509_cmp_current_time(X509_get0_notBefore(cert)) > 0) {
        snprintf(why, why_len, "the certificate is not valid yet (check the clock)");
        return SL_EINVAL;
    }
    return SL_OK;
}

void sl_tls_ctx_free(struct sl_tls_ctx *ctx)
{
    if (ctx == NULL) {
        return;
    }
    SSL_CTX_free(ctx->ssl); /* sessions still open hold their own reference */
    free(ctx);
}

/* ---- sessions ---------------------------------------------------------- */

int sl_tls_new(struct sl_tls_ctx *ctx, const char *server_name, struct sl_tls **out)
{
    if (ctx->role == SL_TLS_CLIENT && (server_name == NULL || server_name[0] == '\0')) {
        return SL_EINVAL;
    }
    struct sl_tls *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        return SL_ENOMEM;
    }
    t->ssl = SSL_new(ctx->ssl);
    t->rbio = BIO_new(BIO_s_mem());
    t->wbio = BIO_new(BIO_s_mem());
    if (t->ssl == NULL || t->rbio == NULL || t->wbio == NULL) {
        BIO_free(t->rbio);
        BIO_free(t->wbio);
        SSL_free(t->ssl);
        free(t);
        ERR_clear_error();
        return SL_ENOMEM;
    }
    BIO_set_mem_eof_return(t->rbio, -1); /* empty = "retry", not end of stream */
    SSL_set_bio(t->ssl, t->rbio, t->wbio);
    if (ctx->role == SL_TLS_SERVER) {
        SSL_set_accept_state(t->ssl);
    } else {
        struct in6_addr ip;
        bool is_ip = inet_pton(AF_INET, server_name, &ip) == 1 ||
                     inet_pton(AF_INET6, server_name, &ip) == 1;
        int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), server_name)
                       : SSL_set_tlsext_host_name(t->ssl, server_name) == 1 &&
                             SSL_set1_host(t->ssl, server_name) == 1;
        if (ok != 1) {
            sl_tls_free(t);
            ERR_clear_error();
            return SL_EINVAL;
        }
        SSL_set_connect_state(t->ssl);
    }
    *out = t;
    return SL_OK;
}

void sl_tls_free(struct sl_tls *t)
{
    if (t == NULL) {
        return;
    }
    SSL_free(t->ssl); /* frees both BIOs */
    free(t);
}

int sl_tls_feed(struct sl_tls *t, const void *data, size_t len)
{
    SL_ASSERT(len <= INT_MAX);
    if (len == 0) {
        return SL_OK;
    }
    if (BIO_write(t->rbio, data, (int)len) != (int)len) {
        ERR_clear_error();
        return SL_ENOMEM;
    }
    return SL_OK;
}

/* What an alert from the peer most likely means, for the alerts a
 * misconfiguration causes. */
static const char *alert_hint(const char *reason)
{
    if (strstr(reason, "alert certificate required") != NULL) {
        return " (the peer requires a client certificate)";
    }
    if (strstr(reason, "alert unknown ca") != NULL) {
        return " (the peer does not trust the CA that signed our certificate)";
    }
    if (strstr(reason, "alert certificate expired") != NULL) {
        return " (our certificate has expired)";
    }
    if (strstr(reason, "wrong version number") != NULL ||
        strstr(reason, "packet length too long") != NULL) {
        return " (the peer does not speak TLS on this port?)";
    }
    return "";
}

/* The outcome of an SSL call that returned `n` <= 0. */
static int fail(struct sl_tls *t, int n)
{
    int e = SSL_get_error(t->ssl, n);
    if (e == SSL_ERROR_WANT_READ) {
        ERR_clear_error();
        return SL_EAGAIN;
    }
    if (e == SSL_ERROR_ZERO_RETURN) {
        ERR_clear_error();
        return SL_ECLOSED;
    }
    char r[SL_TLS_WHY_BYTES / 2];
    queue_reason(r, sizeof(r));
    long v = SSL_get_verify_result(t->ssl);
    if (v != X509_V_OK) {
        snprintf(t->why, sizeof(t->why), "%s: %s", r, X509_verify_cert_error_string(v));
    } else {
        snprintf(t->why, sizeof(t->why), "%s%s", r, alert_hint(r));
    }
    return SL_EPROTO;
}

int sl_tls_handshake(struct sl_tls *t)
{
    if (SSL_is_init_finished(t->ssl)) {
        return SL_OK;
    }
    ERR_clear_error();
    int n = SSL_do_handshake(t->ssl);
    return n == 1 ? SL_OK : fail(t, n);
}

int sl_tls_read(struct sl_tls *t, void *buf, size_t cap, size_t *got)
{
    SL_ASSERT(cap > 0);
    ERR_clear_error();
    int n = SSL_read(t->ssl, buf, cap > INT_MAX ? INT_MAX : (int)cap);
    if (n > 0) {
        *got = (size_t)n;
        return SL_OK;
    }
    return fail(t, n);
}

int sl_tls_write(struct sl_tls *t, const void *buf, size_t len)
{
    SL_ASSERT(len > 0 && len <= INT_MAX);
    if (!SSL_is_init_finished(t->ssl)) {
        snprintf(t->why, sizeof(t->why), "write before the TLS handshake finished");
        return SL_EPROTO;
    }
    ERR_clear_error();
    int n = SSL_write(t->ssl, buf, (int)len);
    if (n == (int)len) {
        return SL_OK;
    }
    int rc = fail(t, n);
    return rc == SL_EAGAIN || rc == SL_ECLOSED ? SL_EPROTO : rc;
}

size_t sl_tls_out_pending(const struct sl_tls *t)
{
    return BIO_ctrl_pending(t->wbio);
}

size_t sl_tls_take(struct sl_tls *t, void *buf, size_t cap)
{
    if (cap == 0 || BIO_ctrl_pending(t->wbio) == 0) {
        return 0;
    }
    int n = BIO_read(t->wbio, buf, cap > INT_MAX ? INT_MAX : (int)cap);
    return n > 0 ? (size_t)n : 0;
}

bool sl_tls_in_pending(const struct sl_tls *t)
{
    return SSL_has_pending(t->ssl) || BIO_ctrl_pending(t->rbio) > 0;
}

void sl_tls_close(struct sl_tls *t)
{
    if (SSL_is_init_finished(t->ssl)) {
        ERR_clear_error();
        (void)SSL_shutdown(t->ssl); /* queues close_notify; the reply is not awaited */
        ERR_clear_error();
    }
}

bool sl_tls_established(const struct sl_tls *t)
{
    return SSL_is_init_finished(t->ssl);
}

const char *sl_tls_why(const struct sl_tls *t)
{
    return t->why;
}

const char *sl_tls_version(const struct sl_tls *t)
{
    return SSL_is_init_finished(t->ssl) ? SSL_get_version(t->ssl) : "";
}

void sl_tls_alpn(const struct sl_tls *t, char *buf, size_t cap)
{
    const unsigned char *p = NULL;
    unsigned int len = 0;
    SSL_get0_alpn_selected(t->ssl, &p, &len);
    snprintf(buf, cap, "%.*s", (int)len, p != NULL ? (const char *)p : "");
}

void sl_tls_peer_name(const struct sl_tls *t, char *buf, size_t cap)
{
    SL_ASSERT(cap > 0);
    buf[0] = '\0';
    X509 *cert = SSL_get1_peer_certificate(t->ssl);
    if (cert == NULL) {
        return;
    }
    if (SSL_get_verify_result(t->ssl) == X509_V_OK &&
        X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, buf,
                                  cap > INT_MAX ? INT_MAX : (int)cap) < 0) {
        buf[0] = '\0';
    }
    X509_free(cert);
}
