/* certs.c - the broker's TLS contexts (see certs.h). */
#include "broker/certs.h"

#include "common/assert.h"
#include "common/error.h"
#include "common/log.h"

#include <stdio.h>
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

int sl_certs_init(struct sl_certs *certs, const struct sl_broker_config *cfg, char *why,
                  size_t why_len)
{
    memset(certs, 0, sizeof(*certs));
    certs->cfg = cfg;
    if (!cfg->tls) {
        return SL_OK;
    }
    return build_both(cfg, &certs->native, &certs->http, why, why_len);
}

void sl_certs_reload(void *arg)
{
    struct sl_certs *certs = arg;
    if (certs->native == NULL) {
        return; /* TLS is off: nothing to reload */
    }
    SL_ASSERT(certs->http != NULL && certs->net != NULL);
    struct sl_tls_ctx *native = NULL, *http = NULL;
    char why[512];
    if (build_both(certs->cfg, &native, &http, why, sizeof(why)) != SL_OK) {
        sl_error("tls", "certificate reload failed, keeping the current ones: %s", why);
        return;
    }
    /* Open sessions hold references to the old contexts: freeing is safe. */
    sl_net_set_tls(certs->net, certs->native, native);
    sl_net_set_tls(certs->net, certs->http, http);
    sl_tls_ctx_free(certs->native);
    sl_tls_ctx_free(certs->http);
    certs->native = native;
    certs->http = http;
    certs->reloads++;
    sl_info("tls", "certificates reloaded from %s", certs->cfg->tls_cert_file);
}

void sl_certs_fini(struct sl_certs *certs)
{
    sl_tls_ctx_free(certs->native);
    sl_tls_ctx_free(certs->http);
    certs->native = NULL;
    certs->http = NULL;
}
