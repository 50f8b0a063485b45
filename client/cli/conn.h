/* conn.h - the connection options every `sluice` command takes, and the one place that
 * turns them into a connected client.
 *
 * Adding a connection option is one entry in cli_conn_table (conn.c) and one field here;
 * every command's parser and --help pick it up.
 */
#ifndef SL_CLI_CONN_H
#define SL_CLI_CONN_H

#include "client/cli/opt.h"
#include "client/sluice.h"

#include <stdint.h>

struct cli_conn_opts {
    const char *broker;          /* HOST:PORT; --broker, $SLUICE_BROKER, else the default */
    uint32_t connect_timeout_ms; /* 0: the library's (5 s) */
    uint32_t request_timeout_ms; /* 0: the library's (30 s) */
    const char *client_id;       /* shown in the broker's logs */
    int tls;                     /* --tls: TLS with the system's CAs */
    const char *tls_ca;          /* --tls-ca FILE ($SLUICE_TLS_CA); implies TLS */
    const char *tls_cert;        /* --tls-cert FILE ($SLUICE_TLS_CERT): mutual TLS */
    const char *tls_key;         /* --tls-key FILE ($SLUICE_TLS_KEY) */
    const char *tls_server_name; /* --tls-server-name NAME: else the broker's host */
    /* Credentials: --user with --password-file (0600) or $SLUICE_PASSWORD; else the
     * library's own lookup ($SLUICE_USER/$SLUICE_PASSWORD, then --credentials-file or
     * $SLUICE_CREDENTIALS_FILE). Never a password on the command line: argv is public. */
    const char *user;
    const char *password_file;
    const char *credentials_file;
};

/* The table for struct cli_conn_opts (ends with a NULL name). */
extern const struct cli_opt cli_conn_table[];

/* The defaults, before the environment and argv. */
void cli_conn_defaults(struct cli_conn_opts *o);

/* Connects to o->broker with the options (borrowed) and says Hello. On failure prints why
 * on stderr. Returns CLI_EXIT_OK with *out set (free with sluice_client_free), or
 * CLI_EXIT_ERR. */
int cli_conn_connect(const struct cli_conn_opts *o, sluice_client **out);

#endif
