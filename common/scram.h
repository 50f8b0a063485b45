/* scram.h - SCRAM-SHA-256 (RFC 5802, RFC 7677) without channel binding:
 * credentials, the server's and the client's side of the exchange.
 *
 * The exchange (each message at most SL_SCRAM_MSG_MAX bytes):
 *   client-first  "n,,n=USER,r=CNONCE"
 *   server-first  "r=CNONCE SNONCE,s=SALT,i=ITERATIONS"
 *   client-final  "c=biws,r=NONCE,p=PROOF"
 *   server-final  "v=SIGNATURE"
 * The server keeps only StoredKey and ServerKey (RFC 5803 text form), never
 * the password; the proof is compared in constant time. An unknown user
 * gets a salt derived from the name and fails at the proof like a wrong
 * password, so the answer does not tell which names exist.
 *
 * User names are [A-Za-z0-9_.@-]{1,64} (no SASLprep or '=' escaping is
 * needed for them); passwords are used as bytes.
 */
#ifndef SL_SCRAM_H
#define SL_SCRAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SL_SCRAM_KEY_BYTES       32u
#define SL_SCRAM_SALT_BYTES      16u
#define SL_SCRAM_NAME_MAX        64u
#define SL_SCRAM_MSG_MAX         512u
#define SL_SCRAM_ITERATIONS_MIN  4096u
#define SL_SCRAM_ITERATIONS_MAX  10000000u
#define SL_SCRAM_ITERATIONS_DEFAULT 8192u /* ~5 ms per login on this class of machine */
#define SL_SCRAM_CRED_TEXT_MAX   256u

struct sl_scram_cred {
    uint32_t iterations;
    uint8_t salt[SL_SCRAM_SALT_BYTES];
    uint8_t stored_key[SL_SCRAM_KEY_BYTES];
    uint8_t server_key[SL_SCRAM_KEY_BYTES];
};

/* Whether `name` is a valid user name. */
bool sl_scram_name_ok(const char *name);

/* Credentials for `password` with a random salt. Errors: SL_EINVAL
 * (iterations out of range), SL_ESYS (no randomness). */
int sl_scram_cred_make(const char *password, size_t password_len, uint32_t iterations,
                       struct sl_scram_cred *out);
/* Whether `password` is the one `cred` was made from (a plain-password
 * login, e.g. HTTP Basic: costs the credential's iterations; constant-time
 * comparison). */
bool sl_scram_cred_check(const struct sl_scram_cred *cred, const char *password,
                         size_t password_len);
/* "SCRAM-SHA-256$ITER:SALT$STOREDKEY:SERVERKEY" (RFC 5803; base64). */
void sl_scram_cred_format(const struct sl_scram_cred *cred, char *buf, size_t cap);
/* Parses the form above. Errors: SL_EINVAL. */
int sl_scram_cred_parse(const char *text, struct sl_scram_cred *out);

/* ---- server ---- */

struct sl_scram_server {
    int state; /* 0 new, 1 server-first sent, 2 done, 3 failed */
    char user[SL_SCRAM_NAME_MAX + 1];
    bool known; /* the user exists (else the proof fails whatever it is) */
    struct sl_scram_cred cred;
    char nonce[96];
    char client_first_bare[SL_SCRAM_MSG_MAX];
    char server_first[SL_SCRAM_MSG_MAX];
};

/* Looks a user up: fills *cred and returns true when it exists. */
typedef bool (*sl_scram_lookup_fn)(void *ctx, const char *user, struct sl_scram_cred *cred);

/* `fake_key` (SL_SCRAM_KEY_BYTES, the broker's secret for this process)
 * derives an unknown user's salt. Answers client-first with server-first
 * in `out` (NUL-terminated). Errors: SL_EPROTO (malformed message, bad
 * name), SL_ESYS. */
int sl_scram_server_first(struct sl_scram_server *s, const char *msg, size_t len,
                          sl_scram_lookup_fn lookup, void *ctx, const uint8_t *fake_key,
                          char *out, size_t cap);
/* Verifies client-final; on SL_OK `out` holds server-final and s->user
 * is authenticated. Errors: SL_EAUTH (wrong password or unknown user),
 * SL_EPROTO (malformed, wrong order). */
int sl_scram_server_final(struct sl_scram_server *s, const char *msg, size_t len, char *out,
                          size_t cap);

/* ---- client ---- */

struct sl_scram_client {
    int state;
    char nonce[64];
    char client_first_bare[SL_SCRAM_MSG_MAX];
    uint8_t server_signature[SL_SCRAM_KEY_BYTES];
};

/* client-first into `out`. Errors: SL_EINVAL (bad name), SL_ESYS. */
int sl_scram_client_first(struct sl_scram_client *c, const char *user, char *out, size_t cap);
/* From server-first, client-final into `out`. Errors: SL_EPROTO (malformed,
 * a nonce that does not extend ours, iterations out of range). */
int sl_scram_client_final(struct sl_scram_client *c, const char *password, size_t password_len,
                          const char *server_first, size_t len, char *out, size_t cap);
/* Checks server-final (the broker proves it knows the credentials too).
 * Errors: SL_EAUTH (the server refused: "e=..."), SL_EPROTO (wrong signature). */
int sl_scram_client_verify(struct sl_scram_client *c, const char *server_final, size_t len);

#endif
