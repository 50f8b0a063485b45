/* login.h - the start of every connection to a broker: Hello, then SCRAM-SHA-256 when the
 * broker requires authentication; and where the credentials come from.
 *
 * Internal to libsluice (conn.c). Runs on the connecting thread, before the I/O thread owns
 * the connection's read side, with blocking request/response frames on the wire.
 */
#ifndef SL_CLIENT_LOGIN_H
#define SL_CLIENT_LOGIN_H

#include "client/sluice.h"
#include "client/wire.h"

#include <stdint.h>

struct sl_login {
    const char *client_id; /* borrowed */
    const char *user;      /* borrowed; NULL: no credentials */
    const char *password;  /* borrowed */
    uint32_t timeout_ms;   /* per exchange */
};

/* Says Hello and authenticates if the broker asks. Fills the broker's limits. Errors (with
 * sluice_last_error set): SL_ECLOSED (the connection failed), SL_EPROTO, SL_EUNSUPPORTED
 * (protocol version), SL_EAUTH (credentials missing or refused), SL_ENOMEM. */
int sl_login_run(const struct sl_login *l, struct sl_wire *w, uint32_t *max_inflight,
                 uint32_t *max_frame);

/* The user and password (owned copies, or NULL) from the options, else $SLUICE_USER and
 * $SLUICE_PASSWORD, else the credentials file (opts, else $SLUICE_CREDENTIALS_FILE), which
 * must not be readable by group or others. Errors: SL_EINVAL (a file that cannot be read,
 * is readable by others or is malformed; message set), SL_ENOMEM. */
int sl_login_credentials(const struct sluice_client_opts *o, char **user, char **password);

#endif
