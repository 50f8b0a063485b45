/* security.c - the broker's TLS contexts and auth rules (see security.h). */
#include "broker/security.h"

#include "common/assert.h"
#include "common/error.h"
#include "common/log.h"

#include "common/scram.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int build(const struct sl_broker_config *cfg, const char *alpn, struct sl_tls_ctx **out,
                 char *why, size_t why_len)
{
    struct sl_tls_config tc = {
        .role = SL_TLS_SERVER,
        .cert_file = cfg->tls_cert_file,
        .key_file = cfg->tls_key_file,
        .ca_file = cfg->tls_ca_file[0] != '\0' ? cfg->tls_ca_file : NULL,
        .client_auth = cfg->tls_client_auth,
        .tls13_only = cfg->tls_min_version == 1,
        .alpn = alpn,
    };
    return sl_tls_ctx_new(&tc, out, why, why_len);
}

static int build_both(const struct sl_broker_config *cfg, struct sl_tls_ctx **native,
                      struct sl_tls_ctx **http, char *why, size_t why_len)
{
    int rc = build(cfg, NULL, native, why, why_len);
    char bad[128];
    if (rc == SL_OK && sl_tls_ctx_check_validity(*native, bad, sizeof(bad)) != SL_OK) {
        sl_warn("tls", "%s: %s: clients will refuse it; renew it and send SIGHUP",
                cfg->tls_cert_file, bad);
    }
    if (rc == SL_OK) {
        rc = build(cfg, "h2,http/1.1", http, why, why_len);
        if (rc != SL_OK) {
            sl_tls_ctx_free(*native);
            *native = NULL;
        }
    }
    return rc;
}

int sl_security_init(struct sl_security *sec, const struct sl_broker_config *cfg, char *why,
                  size_t why_len)
{
    memset(sec, 0, sizeof(*sec));
    sec->cfg = cfg;
    if (cfg->auth) {
        int rc = sl_auth_load(cfg->auth_file, &sec->auth, why, why_len);
        if (rc != SL_OK) {
            return rc;
        }
        sl_info("auth", "authentication on: %u users from %s", sl_auth_user_count(sec->auth),
                cfg->auth_file);
    }
    if (!cfg->tls) {
        return SL_OK;
    }
    return build_both(cfg, &sec->native, &sec->http, why, why_len);
}

static void reload_auth(struct sl_security *sec)
{
    struct sl_auth *fresh = NULL;
    char why[512];
    if (sl_auth_load(sec->cfg->auth_file, &fresh, why, sizeof(why)) != SL_OK) {
        sl_error("auth", "auth file reload failed, keeping the rules in force: %s", why);
        return;
    }
    sl_auth_free(sec->auth);
    sec->auth = fresh;
    sl_info("auth", "auth file reloaded: %u users", sl_auth_user_count(fresh));
}

void sl_security_reload(void *arg)
{
    struct sl_security *sec = arg;
    if (sec->auth != NULL) {
        reload_auth(sec);
    }
    if (sec->native == NULL) {
        return; /* TLS is off: nothing to reload */
    }
    SL_ASSERT(sec->http != NULL && sec->net != NULL);
    struct sl_tls_ctx *native = NULL, *http = NULL;
    char why[512];
    if (build_both(sec->cfg, &native, &http, why, sizeof(why)) != SL_OK) {
        sl_error("tls", "certificate reload failed, keeping the current ones: %s", why);
        return;
    }
    /* Open sessions hold references to the old contexts: freeing is safe. */
    sl_net_set_tls(sec->net, sec->native, native);
    sl_net_set_tls(sec->net, sec->http, http);
    sl_tls_ctx_free(sec->native);
    sl_tls_ctx_free(sec->http);
    sec->native = native;
    sec->http = http;
    sec->reloads++;
    sl_info("tls", "certificates reloaded from %s", sec->cfg->tls_cert_file);
}

void sl_security_fini(struct sl_security *sec)
{
    sl_tls_ctx_free(sec->native);
    sl_tls_ctx_free(sec->http);
    sec->native = NULL;
    sec->http = NULL;
    sl_auth_free(sec->auth);
    sec->auth = NULL;
}

int sl_security_hash_password(int argc, char **argv)
{
    const char *user = NULL;
    unsigned long iterations = SL_SCRAM_ITERATIONS_DEFAULT;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--iterations") == 0 && i + 1 < argc) {
            char *end = NULL;
            iterations = strtoul(argv[++i], &end, 10);
            if (*end != '\0' || iterations < SL_SCRAM_ITERATIONS_MIN ||
                iterations > SL_SCRAM_ITERATIONS_MAX) {
                fprintf(stderr, "sluiced: --iterations must be between %u and %u\n",
                        SL_SCRAM_ITERATIONS_MIN, SL_SCRAM_ITERATIONS_MAX);
                return 2;
            }
        } else if (user == NULL && argv[i][0] != '-') {
            user = argv[i];
        } else {
            fprintf(stderr, "usage: sluiced --hash-password [USER] [--iterations N] < password\n");
            return 2;
        }
    }
    if (user != NULL && !sl_scram_name_ok(user)) {
        fprintf(stderr, "sluiced: bad user name '%s' ([A-Za-z0-9_.@-], 1 to 64)\n", user);
        return 2;
    }
    char pw[1024];
    if (fgets(pw, sizeof(pw), stdin) == NULL) {
        fprintf(stderr, "sluiced: --hash-password reads the password from stdin\n");
        return 2;
    }
    pw[strcspn(pw, "\r\n")] = '\0';
    struct sl_scram_cred cred;
    int rc = pw[0] == '\0' ? SL_EINVAL
                           : sl_scram_cred_make(pw, strlen(pw), (uint32_t)iterations, &cred);
    memset(pw, 0, sizeof(pw));
    if (rc != SL_OK) {
        fprintf(stderr, "sluiced: %s\n", rc == SL_EINVAL ? "empty password" : sl_strerror(rc));
        return 1;
    }
    char text[SL_SCRAM_CRED_TEXT_MAX];
    sl_scram_cred_format(&cred, text, sizeof(text));
    if (user != NULL) {
        printf("user %s %s\n", user, text); /* a line for the auth file */
    } else {
        printf("%s\n", text);
    }
    return 0;
}
