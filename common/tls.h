/* tls.h - TLS over memory buffers: the one module that includes OpenSSL.
 *
 * The socket I/O stays with the caller (the broker's io_uring loop, the
 * client's blocking socket): ciphertext received is fed in, plaintext comes
 * out; plaintext to send goes in, ciphertext to send comes out. Neither side
 * ever blocks here.
 *
 * A context (struct sl_tls_ctx) is built from PEM files and shared by many
 * sessions; it is immutable after creation. A reload builds a new context:
 * sessions started on the old one keep it alive (OpenSSL counts references)
 * until they end, so freeing the old context at once is safe.
 *
 * Threads: a context may be used from any thread; a session from one thread
 * at a time (the caller serialises). Errors leave a reason in the session
 * (sl_tls_why) naming the cause: "certificate verify failed: certificate has
 * expired", "peer did not return a certificate", ...
 */
#ifndef SL_TLS_H
#define SL_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sl_tls_ctx;
struct sl_tls;

/* One TLS record's plaintext: the most one sl_tls_write call should take. */
#define SL_TLS_RECORD_BYTES (16u << 10)
#define SL_TLS_WHY_BYTES    256u

enum sl_tls_role { SL_TLS_SERVER = 0, SL_TLS_CLIENT = 1 };

enum sl_tls_client_auth {
    SL_TLS_CLIENT_AUTH_NONE = 0,     /* no certificate asked */
    SL_TLS_CLIENT_AUTH_OPTIONAL = 1, /* asked; verified when sent */
    SL_TLS_CLIENT_AUTH_REQUIRE = 2,  /* a verified certificate is required (mTLS) */
};

struct sl_tls_config {
    enum sl_tls_role role;
    const char *cert_file; /* PEM chain; a server's is required, a client's optional (mTLS) */
    const char *key_file;  /* PEM private key of cert_file */
    /* PEM CA certificates that verify the peer. Client: NULL = the system's
     * store. Server: required unless client_auth is NONE. */
    const char *ca_file;
    enum sl_tls_client_auth client_auth; /* server only */
    bool tls13_only;                     /* else TLS 1.2 and 1.3 */
    /* Server: protocols offered in ALPN, in preference order, as a
     * comma-separated list ("h2,http/1.1"); NULL = no ALPN. */
    const char *alpn;
};

/* Builds a context. Errors: SL_EINVAL (a file missing, unreadable, not PEM,
 * a key that does not match its certificate: the reason, naming the file,
 * is in `why`), SL_ENOMEM. */
int sl_tls_ctx_new(const struct sl_tls_config *cfg, struct sl_tls_ctx **out, char *why,
                   size_t why_len);
void sl_tls_ctx_free(struct sl_tls_ctx *ctx); /* NULL-safe */
/* SL_EINVAL (why says which) when the context's own certificate is expired
 * or not valid yet: OpenSSL serves it anyway and every peer refuses it. */
int sl_tls_ctx_check_validity(const struct sl_tls_ctx *ctx, char *why, size_t why_len);

/* A session on `ctx`. A client verifies the server's certificate against
 * `server_name` (a DNS name or an IP address; also sent as SNI when a name).
 * Errors: SL_ENOMEM, SL_EINVAL (server_name missing for a client). */
int sl_tls_new(struct sl_tls_ctx *ctx, const char *server_name, struct sl_tls **out);
void sl_tls_free(struct sl_tls *t); /* NULL-safe */

/* Ciphertext received from the peer (copied). Errors: SL_ENOMEM. */
int sl_tls_feed(struct sl_tls *t, const void *data, size_t len);
/* Drives the handshake without application data. SL_OK: established;
 * SL_EAGAIN: send sl_tls_take's bytes and feed more; SL_EPROTO: failed
 * (sl_tls_why says why; an alert may be waiting in sl_tls_take). */
int sl_tls_handshake(struct sl_tls *t);
/* Decrypts into `buf` (at most `cap` bytes; *got set on SL_OK, > 0). Drives
 * the handshake first if needed. SL_EAGAIN: needs more ciphertext; SL_ECLOSED:
 * the peer sent close_notify; SL_EPROTO: failed, as above. Output may be
 * produced (handshake messages): check sl_tls_out_pending after each call. */
int sl_tls_read(struct sl_tls *t, void *buf, size_t cap, size_t *got);
/* Encrypts all of `len` bytes (<= SL_TLS_RECORD_BYTES is one record) after
 * the handshake. Errors: SL_EPROTO (not established, or failed), SL_ENOMEM. */
int sl_tls_write(struct sl_tls *t, const void *buf, size_t len);
/* Ciphertext waiting to be sent, and taking up to `cap` bytes of it. */
size_t sl_tls_out_pending(const struct sl_tls *t);
size_t sl_tls_take(struct sl_tls *t, void *buf, size_t cap);
/* Whether processed plaintext or a whole record may be waiting to be read
 * (sl_tls_read may make progress without more ciphertext). */
bool sl_tls_in_pending(const struct sl_tls *t);
/* Queues close_notify (best effort, for a graceful close). */
void sl_tls_close(struct sl_tls *t);

bool sl_tls_established(const struct sl_tls *t);
/* The reason of the last failure ("" if none); valid until the next call. */
const char *sl_tls_why(const struct sl_tls *t);
/* "TLSv1.3"; "" before the handshake. */
const char *sl_tls_version(const struct sl_tls *t);
/* The protocol ALPN selected ("h2"), or "" when none. Copies into buf. */
void sl_tls_alpn(const struct sl_tls *t, char *buf, size_t cap);
/* The common name of the peer's verified certificate ("" when none). */
void sl_tls_peer_name(const struct sl_tls *t, char *buf, size_t cap);

#endif
