/* security.h - the broker's TLS contexts and auth rules: built from the
 * [tls] and [auth] settings at start, rebuilt from the same files on SIGHUP.
 *
 * One TLS context per listener kind: the native listener offers no ALPN,
 * the HTTP listener offers h2 and http/1.1. A reload that fails (a file
 * missing, a key that does not match, a malformed auth file) keeps what is
 * in force and logs why, so a broken renewal never takes the listeners down.
 * Connections keep their TLS session and their principal across a reload;
 * their next requests are checked against the new rules.
 *
 * Threading: the main loop's thread only.
 */
#ifndef SL_BROKER_SECURITY_H
#define SL_BROKER_SECURITY_H

#include "broker/auth/auth.h"
#include "broker/config.h"
#include "broker/net/net.h"
#include "common/tls.h"

struct sl_security {
    const struct sl_broker_config *cfg; /* borrowed */
    struct sl_net *net;                 /* borrowed; set once listening */
    struct sl_tls_ctx *native;          /* owned; NULL when tls is off */
    struct sl_tls_ctx *http;            /* owned */
    struct sl_auth *auth;               /* owned; NULL when auth is off */
    uint32_t reloads;                   /* successful certificate reloads */
};

/* Builds both contexts when cfg->tls is on (else leaves them NULL), loads
 * the auth file when cfg->auth is on. Errors: SL_EINVAL with the reason in
 * `why`, SL_ENOTFOUND, SL_ENOMEM. */
int sl_security_init(struct sl_security *sec, const struct sl_broker_config *cfg, char *why,
                     size_t why_len);
/* SIGHUP: the auth file read again, new TLS contexts from the files swapped
 * into the listeners (struct sl_security * as void *, for
 * sl_net_hooks.reload). */
void sl_security_reload(void *sec);
void sl_security_fini(struct sl_security *sec); /* idempotent */

/* `sluiced --hash-password [USER] [--iterations N]`: reads a password from
 * stdin and prints its SCRAM-SHA-256 credentials (with USER: a whole `user`
 * line for the auth file). Returns the exit status. */
int sl_security_hash_password(int argc, char **argv);

#endif
