/* conn.c - the connection options (conn.h): their table, defaults and the connect.
 *
 * Precedence, lowest first: the defaults here, the option's environment variable, the
 * option before the command (`sluice --broker B stream list`), the option after it
 * (`sluice stream list --broker B`). The table is parsed together with each command's own,
 * so none of these names may be reused by a command.
 */
#include "client/cli/conn.h"

#include "client/cli/cli.h"
#include "client/cli/output.h"

#include <stddef.h>

#define CLI_CLIENT_ID     "sluice-cli"
#define CLI_CLIENT_ID_MAX 128u     /* free text for logs; longer is surely a mistake */
#define CLI_TIMEOUT_MAX   3600000u /* 1 h: a longer connect or request wait is a mistake */

const struct cli_opt cli_conn_table[] = {
    {.name = "broker",
     .kind = CLI_OPT_STRING,
     .offset = offsetof(struct cli_conn_opts, broker),
     .value_name = "HOST:PORT",
     .help = "the broker (default " SLUICE_DEFAULT_BROKER ")",
     .min = 1,
     .env = "SLUICE_BROKER"},
    {.name = "connect-timeout",
     .kind = CLI_OPT_DURATION,
     .offset = offsetof(struct cli_conn_opts, connect_timeout_ms),
     .value_name = "T",
     .help = "give up connecting after T (default 5s)",
     .min = 1,
     .max = CLI_TIMEOUT_MAX},
    {.name = "request-timeout",
     .kind = CLI_OPT_DURATION,
     .offset = offsetof(struct cli_conn_opts, request_timeout_ms),
     .value_name = "T",
     .help = "give up on an answer after T, long-polls aside (default 30s)",
     .min = 1,
     .max = CLI_TIMEOUT_MAX},
    {.name = "client-id",
     .kind = CLI_OPT_STRING,
     .offset = offsetof(struct cli_conn_opts, client_id),
     .value_name = "ID",
     .help = "name in the broker's logs (default " CLI_CLIENT_ID ")",
     .min = 1,
     .max = CLI_CLIENT_ID_MAX},
    /* TLS and credentials: their entries go here (see struct cli_conn_opts). */
    {.name = NULL},
};

void cli_conn_defaults(struct cli_conn_opts *o)
{
    *o = (struct cli_conn_opts){.broker = SLUICE_DEFAULT_BROKER, .client_id = CLI_CLIENT_ID};
}

int cli_conn_connect(const struct cli_conn_opts *o, sluice_client **out)
{
    struct sluice_client_opts co = {
        .connect_timeout_ms = o->connect_timeout_ms,
        .request_timeout_ms = o->request_timeout_ms,
        .client_id = o->client_id,
    };
    /* TLS and authentication plug in here: load the CA, certificate and key files and the
     * credentials (after checking a credentials file is 0600) into the client options, once
     * sluice_client_opts carries them. */
    int rc = sluice_client_new(o->broker, &co, out);
    return rc == SL_OK ? CLI_EXIT_OK : cli_broker_error("connect", rc);
}
