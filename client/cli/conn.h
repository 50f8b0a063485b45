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
    /* TLS (--tls, --tls-ca FILE, --tls-cert FILE, --tls-key FILE, --tls-server-name NAME)
     * and credentials (--user NAME / $SLUICE_USER, --password-file FILE / $SLUICE_PASSWORD,
     * a 0600 credentials file) become fields here and entries in cli_conn_table. */
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
