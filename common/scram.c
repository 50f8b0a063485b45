/* scram.c - SCRAM-SHA-256 (see scram.h). libcrypto does the hashing, the
 * key derivation (PBKDF2), base64 and the random nonces.
 *
 *   SaltedPassword  = PBKDF2-HMAC-SHA-256(password, salt, i)
 *   ClientKey       = HMAC(SaltedPassword, "Client Key"), StoredKey = SHA-256(ClientKey)
 *   ServerKey       = HMAC(SaltedPassword, "Server Key")
 *   AuthMessage     = client-first-bare "," server-first "," client-final-without-proof
 *   ClientProof     = ClientKey XOR HMAC(StoredKey, AuthMessage)
 *   ServerSignature = HMAC(ServerKey, AuthMessage)
 * The server recovers ClientKey from the proof and checks SHA-256 of it
 * against StoredKey (CRYPTO_memcmp: constant time).
 */
#include "common/scram.h"

#include "common/assert.h"
#include "common/error.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define B64_LEN(n)   (4 * (((n) + 2) / 3))
#define NONCE_BYTES  18u /* 24 base64 characters */
#define GS2_HEADER   "n,,"
#define GS2_HEADER_B64 "biws" /* base64("n,,") */

enum { ST_NEW = 0, ST_FIRST_SENT, ST_DONE, ST_FAILED };

bool sl_scram_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > SL_SCRAM_NAME_MAX) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' || ch == '@' || ch == '-';
        if (!ok) {
            return false;
        }
    }
    return true;
}

static void hmac(const uint8_t *key, size_t key_len, const void *msg, size_t len, uint8_t *out)
{
    unsigned int out_len = SL_SCRAM_KEY_BYTES;
    HMAC(EVP_sha256(), key, (int)key_len, msg, len, out, &out_len);
    SL_ASSERT(out_len == SL_SCRAM_KEY_BYTES);
}

static void b64_encode(const uint8_t *in, size_t len, char *out)
{
    EVP_EncodeBlock((unsigned char *)out, in, (int)len); /* NUL-terminates */
}

/* Decodes exactly `want` bytes from base64 `in` (`len` chars). */
static int b64_decode(const char *in, size_t len, uint8_t *out, size_t want)
{
    if (len == 0 || len % 4 != 0 || len > B64_LEN(SL_SCRAM_MSG_MAX)) {
        return SL_EINVAL;
    }
    uint8_t buf[SL_SCRAM_MSG_MAX];
    int n = EVP_DecodeBlock(buf, (const unsigned char *)in, (int)len);
    if (n < 0) {
        return SL_EINVAL;
    }
    size_t pad = (in[len - 1] == '=') + (len > 1 && in[len - 2] == '=');
    if ((size_t)n - pad != want) {
        return SL_EINVAL;
    }
    memcpy(out, buf, want);
    return SL_OK;
}

static void derive(const char *password, size_t password_len, const uint8_t *salt,
                   uint32_t iterations, uint8_t *client_key, struct sl_scram_cred *cred)
{
    uint8_t salted[SL_SCRAM_KEY_BYTES];
    PKCS5_PBKDF2_HMAC(password, (int)password_len, salt, SL_SCRAM_SALT_BYTES, (int)iterations,
                      EVP_sha256(), sizeof(salted), salted);
    hmac(salted, sizeof(salted), "Client Key", 10, client_key);
    if (cred != NULL) {
        SHA256(client_key, SL_SCRAM_KEY_BYTES, cred->stored_key);
        hmac(salted, sizeof(salted), "Server Key", 10, cred->server_key);
    }
    OPENSSL_cleanse(salted, sizeof(salted));
}

int sl_scram_cred_make(const char *password, size_t password_len, uint32_t iterations,
                       struct sl_scram_cred *out)
{
    if (iterations < SL_SCRAM_ITERATIONS_MIN || iterations > SL_SCRAM_ITERATIONS_MAX) {
        return SL_EINVAL;
    }
    memset(out, 0, sizeof(*out));
    out->iterations = iterations;
    if (RAND_bytes(out->salt, SL_SCRAM_SALT_BYTES) != 1) {
        return SL_ESYS;
    }
    uint8_t client_key[SL_SCRAM_KEY_BYTES];
    derive(password, password_len, out->salt, iterations, client_key, out);
    OPENSSL_cleanse(client_key, sizeof(client_key));
    return SL_OK;
}

bool sl_scram_cred_check(const struct sl_scram_cred *cred, const char *password,
                         size_t password_len)
{
    struct sl_scram_cred got = *cred;
    uint8_t client_key[SL_SCRAM_KEY_BYTES];
    derive(password, password_len, cred->salt, cred->iterations, client_key, &got);
    bool ok = CRYPTO_memcmp(got.stored_key, cred->stored_key, SL_SCRAM_KEY_BYTES) == 0;
    OPENSSL_cleanse(client_key, sizeof(client_key));
    OPENSSL_cleanse(&got, sizeof(got));
    return ok;
}

void sl_scram_cred_format(const struct sl_scram_cred *cred, char *buf, size_t cap)
{
    char salt[B64_LEN(SL_SCRAM_SALT_BYTES) + 1];
    char stored[B64_LEN(SL_SCRAM_KEY_BYTES) + 1], server[B64_LEN(SL_SCRAM_KEY_BYTES) + 1];
    b64_encode(cred->salt, SL_SCRAM_SALT_BYTES, salt);
    b64_encode(cred->stored_key, SL_SCRAM_KEY_BYTES, stored);
    b64_encode(cred->server_key, SL_SCRAM_KEY_BYTES, server);
    snprintf(buf, cap, "SCRAM-SHA-256$%u:%s$%s:%s", cred->iterations, salt, stored, server);
}

int sl_scram_cred_parse(const char *text, struct sl_scram_cred *out)
{
    static const char prefix[] = "SCRAM-SHA-256$";
    memset(out, 0, sizeof(*out));
    if (strncmp(text, prefix, sizeof(prefix) - 1) != 0) {
        return SL_EINVAL;
    }
    const char *p = text + sizeof(prefix) - 1;
    char *end = NULL;
    unsigned long iter = strtoul(p, &end, 10);
    if (end == p || *end != ':' || iter < SL_SCRAM_ITERATIONS_MIN ||
        iter > SL_SCRAM_ITERATIONS_MAX) {
        return SL_EINVAL;
    }
    out->iterations = (uint32_t)iter;
    const char *salt = end + 1;
    const char *dollar = strchr(salt, '$');
    const char *colon = dollar != NULL ? strchr(dollar, ':') : NULL;
    if (colon == NULL ||
        b64_decode(salt, (size_t)(dollar - salt), out->salt, SL_SCRAM_SALT_BYTES) != SL_OK ||
        b64_decode(dollar + 1, (size_t)(colon - dollar - 1), out->stored_key,
                   SL_SCRAM_KEY_BYTES) != SL_OK ||
        b64_decode(colon + 1, strlen(colon + 1), out->server_key, SL_SCRAM_KEY_BYTES) != SL_OK) {
        return SL_EINVAL;
    }
    return SL_OK;
}

/* The value of attribute `name` ("r=") at `p` up to the next ',' or the
 * end: sets *val and *val_len, returns the position after it. */
static const char *attr(const char *p, const char *end, char name, const char **val,
                        size_t *val_len)
{
    if (p == NULL || end - p < 2 || p[0] != name || p[1] != '=') {
        return NULL;
    }
    const char *v = p + 2;
    const char *comma = memchr(v, ',', (size_t)(end - v));
    const char *stop = comma != NULL ? comma : end;
    *val = v;
    *val_len = (size_t)(stop - v);
    return comma != NULL ? comma + 1 : end;
}

static int random_nonce(char *out)
{
    uint8_t raw[NONCE_BYTES];
    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        return SL_ESYS;
    }
    b64_encode(raw, sizeof(raw), out);
    return SL_OK;
}

/* ---- server ---- */

int sl_scram_server_first(struct sl_scram_server *s, const char *msg, size_t len,
                          sl_scram_lookup_fn lookup, void *ctx, const uint8_t *fake_key,
                          char *out, size_t cap)
{
    memset(s, 0, sizeof(*s));
    s->state = ST_FAILED;
    const char *end = msg + len;
    /* no channel binding: "n,," (or "y,,": the client could but thinks we cannot) */
    if (len > SL_SCRAM_MSG_MAX - 1 || len < 3 || (msg[0] != 'n' && msg[0] != 'y') ||
        msg[1] != ',' || msg[2] != ',' || memchr(msg, '\0', len) != NULL) {
        return SL_EPROTO;
    }
    const char *bare = msg + 3;
    const char *user, *cnonce;
    size_t user_len, cnonce_len;
    const char *p = attr(bare, end, 'n', &user, &user_len);
    p = attr(p, end, 'r', &cnonce, &cnonce_len);
    if (p != end || user_len == 0 || user_len > SL_SCRAM_NAME_MAX || cnonce_len == 0 ||
        cnonce_len > 64 || memchr(cnonce, ',', cnonce_len) != NULL) {
        return SL_EPROTO; /* extensions and a trailing part are refused */
    }
    memcpy(s->user, user, user_len);
    s->user[user_len] = '\0';
    if (!sl_scram_name_ok(s->user)) {
        return SL_EPROTO;
    }
    s->known = lookup(ctx, s->user, &s->cred);
    if (!s->known) {
        /* a salt that is stable per name, so probing twice looks like a real user */
        uint8_t mac[SL_SCRAM_KEY_BYTES];
        hmac(fake_key, SL_SCRAM_KEY_BYTES, s->user, user_len, mac);
        memset(&s->cred, 0, sizeof(s->cred));
        s->cred.iterations = SL_SCRAM_ITERATIONS_MIN;
        memcpy(s->cred.salt, mac, SL_SCRAM_SALT_BYTES);
    }
    char snonce[B64_LEN(NONCE_BYTES) + 1];
    if (random_nonce(snonce) != SL_OK) {
        return SL_ESYS;
    }
    snprintf(s->nonce, sizeof(s->nonce), "%.*s%s", (int)cnonce_len, cnonce, snonce);
    snprintf(s->client_first_bare, sizeof(s->client_first_bare), "%.*s", (int)(end - bare), bare);
    char salt[B64_LEN(SL_SCRAM_SALT_BYTES) + 1];
    b64_encode(s->cred.salt, SL_SCRAM_SALT_BYTES, salt);
    int n = snprintf(s->server_first, sizeof(s->server_first), "r=%s,s=%s,i=%u", s->nonce, salt,
                     s->cred.iterations);
    if (n < 0 || (size_t)n >= sizeof(s->server_first) || (size_t)n >= cap) {
        return SL_EPROTO;
    }
    memcpy(out, s->server_first, (size_t)n + 1);
    s->state = ST_FIRST_SENT;
    return SL_OK;
}

int sl_scram_server_final(struct sl_scram_server *s, const char *msg, size_t len, char *out,
                          size_t cap)
{
    if (s->state != ST_FIRST_SENT) {
        return SL_EPROTO;
    }
    s->state = ST_FAILED;
    if (len > SL_SCRAM_MSG_MAX - 1 || memchr(msg, '\0', len) != NULL) {
        return SL_EPROTO;
    }
    const char *end = msg + len;
    const char *cb, *nonce, *proof_b64;
    size_t cb_len, nonce_len, proof_len;
    const char *p = attr(msg, end, 'c', &cb, &cb_len);
    p = attr(p, end, 'r', &nonce, &nonce_len);
    const char *without_proof_end = p != NULL ? p - 1 : NULL; /* before ",p=" */
    p = attr(p, end, 'p', &proof_b64, &proof_len);
    uint8_t proof[SL_SCRAM_KEY_BYTES];
    if (p != end || cb_len != 4 || memcmp(cb, GS2_HEADER_B64, 4) != 0 ||
        nonce_len != strlen(s->nonce) || memcmp(nonce, s->nonce, nonce_len) != 0 ||
        b64_decode(proof_b64, proof_len, proof, sizeof(proof)) != SL_OK) {
        return SL_EPROTO;
    }
    char auth_msg[3 * SL_SCRAM_MSG_MAX];
    int n = snprintf(auth_msg, sizeof(auth_msg), "%s,%s,%.*s", s->client_first_bare,
                     s->server_first, (int)(without_proof_end - msg), msg);
    SL_ASSERT(n > 0 && (size_t)n < sizeof(auth_msg));
    uint8_t sig[SL_SCRAM_KEY_BYTES], client_key[SL_SCRAM_KEY_BYTES], stored[SL_SCRAM_KEY_BYTES];
    hmac(s->cred.stored_key, SL_SCRAM_KEY_BYTES, auth_msg, (size_t)n, sig);
    for (uint32_t i = 0; i < SL_SCRAM_KEY_BYTES; i++) {
        client_key[i] = proof[i] ^ sig[i];
    }
    SHA256(client_key, sizeof(client_key), stored);
    bool match = CRYPTO_memcmp(stored, s->cred.stored_key, SL_SCRAM_KEY_BYTES) == 0;
    if (!match || !s->known) {
        return SL_EAUTH;
    }
    uint8_t server_sig[SL_SCRAM_KEY_BYTES];
    hmac(s->cred.server_key, SL_SCRAM_KEY_BYTES, auth_msg, (size_t)n, server_sig);
    char v[B64_LEN(SL_SCRAM_KEY_BYTES) + 1];
    b64_encode(server_sig, sizeof(server_sig), v);
    if ((size_t)snprintf(out, cap, "v=%s", v) >= cap) {
        return SL_EPROTO;
    }
    s->state = ST_DONE;
    return SL_OK;
}

/* ---- client ---- */

int sl_scram_client_first(struct sl_scram_client *c, const char *user, char *out, size_t cap)
{
    memset(c, 0, sizeof(*c));
    if (!sl_scram_name_ok(user)) {
        return SL_EINVAL;
    }
    if (random_nonce(c->nonce) != SL_OK) {
        return SL_ESYS;
    }
    snprintf(c->client_first_bare, sizeof(c->client_first_bare), "n=%s,r=%s", user, c->nonce);
    if ((size_t)snprintf(out, cap, GS2_HEADER "%s", c->client_first_bare) >= cap) {
        return SL_EINVAL;
    }
    c->state = ST_FIRST_SENT;
    return SL_OK;
}

int sl_scram_client_final(struct sl_scram_client *c, const char *password, size_t password_len,
                          const char *server_first, size_t len, char *out, size_t cap)
{
    if (c->state != ST_FIRST_SENT || len > SL_SCRAM_MSG_MAX - 1 ||
        memchr(server_first, '\0', len) != NULL) {
        return SL_EPROTO;
    }
    c->state = ST_FAILED;
    const char *end = server_first + len;
    const char *nonce, *salt_b64, *iter;
    size_t nonce_len, salt_len, iter_len;
    const char *p = attr(server_first, end, 'r', &nonce, &nonce_len);
    p = attr(p, end, 's', &salt_b64, &salt_len);
    p = attr(p, end, 'i', &iter, &iter_len);
    size_t ours = strlen(c->nonce);
    uint8_t salt[SL_SCRAM_SALT_BYTES];
    char iter_text[16];
    if (p != end || nonce_len <= ours || nonce_len > 95 || memcmp(nonce, c->nonce, ours) != 0 ||
        b64_decode(salt_b64, salt_len, salt, sizeof(salt)) != SL_OK || iter_len == 0 ||
        iter_len >= sizeof(iter_text)) {
        return SL_EPROTO;
    }
    memcpy(iter_text, iter, iter_len);
    iter_text[iter_len] = '\0';
    char *iend = NULL;
    unsigned long iterations = strtoul(iter_text, &iend, 10);
    if (*iend != '\0' || iterations < SL_SCRAM_ITERATIONS_MIN ||
        iterations > SL_SCRAM_ITERATIONS_MAX) {
        return SL_EPROTO;
    }
    char without_proof[SL_SCRAM_MSG_MAX];
    snprintf(without_proof, sizeof(without_proof), "c=" GS2_HEADER_B64 ",r=%.*s",
             (int)nonce_len, nonce);
    char auth_msg[3 * SL_SCRAM_MSG_MAX];
    int n = snprintf(auth_msg, sizeof(auth_msg), "%s,%.*s,%s", c->client_first_bare, (int)len,
                     server_first, without_proof);
    SL_ASSERT(n > 0 && (size_t)n < sizeof(auth_msg));
    struct sl_scram_cred cred;
    uint8_t client_key[SL_SCRAM_KEY_BYTES], sig[SL_SCRAM_KEY_BYTES], proof[SL_SCRAM_KEY_BYTES];
    derive(password, password_len, salt, (uint32_t)iterations, client_key, &cred);
    hmac(cred.stored_key, SL_SCRAM_KEY_BYTES, auth_msg, (size_t)n, sig);
    for (uint32_t i = 0; i < SL_SCRAM_KEY_BYTES; i++) {
        proof[i] = client_key[i] ^ sig[i];
    }
    hmac(cred.server_key, SL_SCRAM_KEY_BYTES, auth_msg, (size_t)n, c->server_signature);
    OPENSSL_cleanse(client_key, sizeof(client_key));
    OPENSSL_cleanse(&cred, sizeof(cred));
    char proof_b64[B64_LEN(SL_SCRAM_KEY_BYTES) + 1];
    b64_encode(proof, sizeof(proof), proof_b64);
    if ((size_t)snprintf(out, cap, "%s,p=%s", without_proof, proof_b64) >= cap) {
        return SL_EPROTO;
    }
    c->state = ST_DONE;
    return SL_OK;
}

int sl_scram_client_verify(struct sl_scram_client *c, const char *server_final, size_t len)
{
    if (c->state != ST_DONE) {
        return SL_EPROTO;
    }
    if (len >= 2 && server_final[0] == 'e' && server_final[1] == '=') {
        return SL_EAUTH;
    }
    uint8_t sig[SL_SCRAM_KEY_BYTES];
    if (len < 2 || server_final[0] != 'v' || server_final[1] != '=' ||
        b64_decode(server_final + 2, len - 2, sig, sizeof(sig)) != SL_OK ||
        CRYPTO_memcmp(sig, c->server_signature, sizeof(sig)) != 0) {
        return SL_EPROTO;
    }
    return SL_OK;
}
