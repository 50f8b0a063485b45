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

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CLI_CLIENT_ID     "sluice-cli"
#define CLI_CLIENT_ID_MAX 128u     /* free text for logs; longer is surely a mistake */
#define CLI_TIMEOUT_MAX   3600000u /* 1 h: a longer connect or request wait is a mistake */

const struct cli_opt cli_conn_table[] = {
    {.name = "broker",
     .kind = CLI_OPT_STRING,
     .offset = offsetof(struct cli_conn_opts, broker),
     .value_name = "HOST:PORT[,...]",
     .help = "the broker, or a cluster's bootstrap list H1:P1,H2:P2,... (the first that\n"
             "answers; default " SLUICE_DEFAULT_BROKER ")",
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
    {.name = "tls",
     .kind = CLI_OPT_FLAG,
     .offset = offsetof(struct cli_conn_opts, tls),
     .help = "connect with TLS, verifying the broker against the system's CAs"},
    {.name = "tls-ca",
     .kind = CLI_OPT_STRING,
     .offset = offsetof(struct cli_conn_opts, tls_ca),
     .value_name = "FILE",
     .help = "PEM CAs that sign the broker's certificate (turns TLS on)",
     .min = 1,
     .env = "SLUICE_TLS_CA"},
    {.name = "tls-cert",
     .kind = CLI_OPT_STRING,
     .offset = offsetof(struct cli_conn_opts, tls_cert),
     .value_name = "FILE",
     .help = "PEM client certificate, for brokers that require one (mutual TLS)",
     .min = 1,
     .env = "SLUICE_TLS_CERT"},
    {.name = "tls-key",
     .kind = CLI_OPT_STRING,
     .offset = offsetof(struct cli_conn_opts, tls_key),
     .value_name = "FILE",
     .help = "PEM private key of --tls-cert",
     .min = 1,
     .env = "SLUICE_TLS_KEY"},
    {.name = "tls-server-name",
     .kind = CLI_OPT_STRING,
     .offset = offsetof(struct cli_conn_opts, tls_server_name),
     .value_name = "NAME",
     .help = "name the broker's certificate must carry (default: the host of --broker)",
     .min = 1},
    {.name = "user",
     .kind = CLI_OPT_STRING,
     .offset = offsetof(struct cli_conn_opts, user),
     .value_name = "NAME",
     .help = "authenticate as NAME (password from --password-file or $SLUICE_PASSWORD)",
     .min = 1},
    {.name = "password-file",
     .kind = CLI_OPT_STRING,
     .offset = offsetof(struct cli_conn_opts, password_file),
     .value_name = "FILE",
     .help = "the password, first line of a file only you may read (0600)",
     .min = 1},
    {.name = "credentials-file",
     .kind = CLI_OPT_STRING,
     .offset = offsetof(struct cli_conn_opts, credentials_file),
     .value_name = "FILE",
     .help = "'user = NAME' and 'password = SECRET' lines, mode 0600 "
             "(or $SLUICE_CREDENTIALS_FILE)",
     .min = 1},
    {.name = NULL},
};

void cli_conn_defaults(struct cli_conn_opts *o)
{
    *o = (struct cli_conn_opts){.broker = SLUICE_DEFAULT_BROKER, .client_id = CLI_CLIENT_ID};
}

/* The first line of a password file only its owner may read. */
static int read_password(const char *path, char *buf, size_t cap)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "sluice: --password-file %s: %s\n", path, strerror(errno));
        return CLI_EXIT_USAGE;
    }
    if ((st.st_mode & 077) != 0) {
        fprintf(stderr, "sluice: --password-file %s is readable by others (mode %04o): chmod 600 "
                        "it\n",
                path, (unsigned)(st.st_mode & 07777));
        return CLI_EXIT_USAGE;
    }
    FILE *f = fopen(path, "r");
    if (f == NULL || fgets(buf, (int)cap, f) == NULL) {
        fprintf(stderr, "sluice: --password-file %s: %s\n", path,
                f == NULL ? strerror(errno) : "empty");
        if (f != NULL) {
            fclose(f);
        }
        return CLI_EXIT_USAGE;
    }
    fclose(f);
    buf[strcspn(buf, "\r\n")] = '\0';
    return CLI_EXIT_OK;
}

int cli_conn_connect(const struct cli_conn_opts *o, sluice_client **out)
{
    struct sluice_client_opts co = {
        .connect_timeout_ms = o->connect_timeout_ms,
        .request_timeout_ms = o->request_timeout_ms,
        .client_id = o->client_id,
        .tls = o->tls,
        .tls_ca_file = o->tls_ca,
        .tls_cert_file = o->tls_cert,
        .tls_key_file = o->tls_key,
        .tls_server_name = o->tls_server_name,
        .credentials_file = o->credentials_file,
    };
    char password[512];
    if (o->user != NULL) {
        const char *env = getenv("SLUICE_PASSWORD");
        if (o->password_file != NULL) {
            int rc = read_password(o->password_file, password, sizeof(password));
            if (rc != CLI_EXIT_OK) {
                return rc;
            }
        } else if (env != NULL) {
            snprintf(password, sizeof(password), "%s", env);
        } else {
            fprintf(stderr, "sluice: --user needs --password-file FILE or $SLUICE_PASSWORD\n");
            return CLI_EXIT_USAGE;
        }
        co.user = o->user;
        co.password = password;
    } else if (o->password_file != NULL) {
        fprintf(stderr, "sluice: --password-file goes with --user\n");
        return CLI_EXIT_USAGE;
    }
    int rc = sluice_client_new(o->broker, &co, out);
    memset(password, 0, sizeof(password));
    return rc == SL_OK ? CLI_EXIT_OK : cli_broker_error("connect", rc);
}
