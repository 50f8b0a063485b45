/* tls.c - TLS on the broker's listeners, with the library as the client.
 *
 * Covers, against the real sluiced with tls = true (certificates from tests/tls/make_certs.sh):
 * - records produced and consumed back over TLS, byte for byte;
 * - refused, with the cause in sluice_last_error: a broker certificate from another CA, a
 *   certificate for another name, a plaintext client on the TLS port (the broker keeps
 *   serving), an expired broker certificate;
 * - the CLI over TLS (--tls-ca, --tls-server-name), refused without it;
 * - the HTTP listener over TLS with curl: HTTP/1.1 and HTTP/2 (ALPN h2);
 * - SIGHUP reload: new connections get the new certificate, a connection opened before
 *   keeps working, a broken reload (a key that does not match) keeps the current one;
 * - mutual TLS (tls_client_auth = require): a client certificate from the CA is accepted and,
 *   with auth on, its name is the principal whose rules apply; no certificate, one from
 *   another CA, or an expired one are refused.
 */
#include "../unit/test.h"
#include "harness.h"

#include "common/error.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RECORDS 2000u

static char certs[128];
static struct it_broker broker;

static const char *cert(const char *name)
{
    static char bufs[8][192];
    static unsigned next;
    char *b = bufs[next++ % 8];
    snprintf(b, sizeof(bufs[0]), "%s/%s", certs, name);
    return b;
}

static int copy_file(const char *from, const char *to)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "cp '%s' '%s.tmp' && mv '%s.tmp' '%s'", from, to, to, to);
    return system(cmd) == 0 ? 0 : -1;
}

/* The broker serves live.pem/live.key; a reload test swaps them. */
static int use_cert(const char *name)
{
    char pem[64], key[64];
    snprintf(pem, sizeof(pem), "%s.pem", name);
    snprintf(key, sizeof(key), "%s.key", name);
    return copy_file(cert(pem), cert("live.pem")) == 0 &&
                   copy_file(cert(key), cert("live.key")) == 0
               ? 0
               : -1;
}

static int reload(void)
{
    if (kill(broker.pid, SIGHUP) != 0) {
        return -1;
    }
    it_sleep_ms(300); /* the reload runs on the broker's next loop turn */
    return it_broker_alive(&broker) ? 0 : -1;
}

/* Connects with TLS; `ca`, `cert_name` (client certificate) and `server_name` may be NULL. */
static int connect_tls(const char *ca, const char *cert_name, const char *server_name,
                       sluice_client **out)
{
    char pem[64], key[64];
    struct sluice_client_opts o = {.connect_timeout_ms = 3000, .request_timeout_ms = 5000,
                                   .reconnect_backoff_ms = 10, .tls = 1,
                                   .tls_server_name = server_name};
    o.tls_ca_file = ca != NULL ? cert(ca) : NULL;
    if (cert_name != NULL) {
        snprintf(pem, sizeof(pem), "%s.pem", cert_name);
        snprintf(key, sizeof(key), "%s.key", cert_name);
        o.tls_cert_file = cert(pem);
        o.tls_key_file = cert(key);
    }
    *out = NULL;
    return sluice_client_new(broker.addr, &o, out);
}

/* A connection that must fail, with `why` in the library's message. */
static int refused(const char *ca, const char *cert_name, const char *server_name,
                   const char *why)
{
    sluice_client *c = NULL;
    int rc = connect_tls(ca, cert_name, server_name, &c);
    if (rc == SL_OK) {
        /* TLS 1.3: a client's certificate is judged after the client's handshake ends;
         * the refusal arrives as an alert on the first exchange. */
        struct sluice_stream_info *list = NULL;
        size_t n = 0;
        rc = sluice_stream_list(c, &list, &n);
        sluice_stream_list_free(list, n);
        sluice_client_free(c);
    }
    const char *msg = sluice_last_error();
    fprintf(stderr, "  refused: %s (%s)\n", sl_errname(rc), msg);
    return rc != SL_OK && strstr(msg, why) != NULL;
}

static void on_delivery(void *ctx, int err, uint32_t shard, uint64_t seq)
{
    (void)shard;
    (void)seq;
    if (err != SL_OK) {
        (*(int *)ctx)++;
    }
}

/* Produces RECORDS records over `c` and reads them back. */
static int roundtrip(sluice_client *c, const char *stream)
{
    if (it_create_stream(c, stream, 2) != SL_OK) {
        return -1;
    }
    sluice_producer *p = NULL;
    struct sluice_producer_opts po = {.linger_ms = 1, .block_when_full = 1};
    int errors = 0;
    if (sluice_producer_new(c, stream, &po, &p) != SL_OK) {
        return -1;
    }
    char val[64];
    for (uint32_t i = 0; i < RECORDS; i++) {
        int n = snprintf(val, sizeof(val), "tls-record-%u", i);
        if (sluice_produce(p, val, 8, val, (size_t)n, NULL, 0, on_delivery, &errors) != SL_OK) {
            sluice_producer_free(p);
            return -1;
        }
    }
    int rc = sluice_producer_flush(p, 30000);
    sluice_producer_free(p);
    if (rc != SL_OK || errors != 0) {
        return -1;
    }
    sluice_consumer *cons = NULL;
    if (sluice_consumer_new(c, stream, NULL, NULL, &cons) != SL_OK) {
        return -1;
    }
    static uint8_t seen[RECORDS];
    memset(seen, 0, sizeof(seen));
    static struct sluice_record recs[512];
    uint32_t total = 0;
    uint64_t deadline = it_mono_ms() + 10000;
    while (total < RECORDS && it_mono_ms() < deadline) {
        size_t n = 0;
        if (sluice_consumer_poll(cons, recs, 512, &n, 500) != SL_OK) {
            break;
        }
        for (size_t r = 0; r < n; r++) {
            unsigned i;
            char buf[64];
            uint32_t len = recs[r].value_len < 63 ? recs[r].value_len : 63;
            memcpy(buf, recs[r].value, len);
            buf[len] = '\0';
            if (sscanf(buf, "tls-record-%u", &i) == 1 && i < RECORDS && !seen[i]) {
                seen[i] = 1;
                total++;
            }
        }
    }
    sluice_consumer_free(cons);
    return total == RECORDS ? 0 : -1;
}

/* curl against the HTTPS listener; returns its output's first line. */
static int curl(const char *args, char *out, size_t cap)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "curl -sS --max-time 5 --cacert '%s' %s 2>&1", cert("ca.pem"),
             args);
    FILE *f = popen(cmd, "r");
    if (f == NULL) {
        return -1;
    }
    out[0] = '\0';
    if (fgets(out, (int)cap, f) == NULL) {
        out[0] = '\0';
    }
    return pclose(f) == 0 ? 0 : -1;
}

static sluice_client *before_reload;

TEST(records_roundtrip_over_tls)
{
    CHECK(connect_tls("ca.pem", NULL, NULL, &before_reload) == SL_OK);
    CHECK(roundtrip(before_reload, "tls") == 0);
}

TEST(server_name_defaults_to_the_host_and_is_checked)
{
    sluice_client *c = NULL;
    CHECK(connect_tls("ca.pem", NULL, "localhost", &c) == SL_OK); /* in the SAN too */
    sluice_client_free(c);
    CHECK(refused("ca.pem", NULL, "broker.example", "certificate verify failed"));
}

TEST(certificate_from_another_ca_refused)
{
    CHECK(refused("ca2.pem", NULL, NULL, "certificate verify failed"));
}

TEST(plaintext_client_on_tls_port_refused)
{
    sluice_client *c = NULL;
    struct sluice_client_opts o = {.connect_timeout_ms = 2000, .request_timeout_ms = 2000};
    int rc = sluice_client_new(broker.addr, &o, &c);
    fprintf(stderr, "  plaintext: %s (%s)\n", sl_errname(rc), sluice_last_error());
    CHECK(rc != SL_OK);
    CHECK(strstr(sluice_last_error(), "this port speaks TLS") != NULL); /* told, not dropped */
    CHECK(it_broker_alive(&broker));
    sluice_client *ok = NULL;
    CHECK(connect_tls("ca.pem", NULL, NULL, &ok) == SL_OK); /* still serving TLS */
    sluice_client_free(ok);
}

/* The CLI with `args`; returns its exit status. */
static int cli(const char *args)
{
    char cmd[768];
    snprintf(cmd, sizeof(cmd), "'%s' --broker %s %s >/dev/null", SLUICE_CLI_PATH, broker.addr,
             args);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

TEST(cli_over_tls)
{
    char args[256];
    snprintf(args, sizeof(args), "--tls-ca '%s' stream list", cert("ca.pem"));
    CHECK_EQ(cli(args), 0);
    snprintf(args, sizeof(args), "stream list --tls-ca '%s' --tls-server-name localhost",
             cert("ca.pem"));
    CHECK_EQ(cli(args), 0);
    CHECK_EQ(cli("--connect-timeout 2s stream list"), 1);        /* plaintext */
    CHECK_EQ(cli("--tls --connect-timeout 2s stream list"), 1);  /* not in the system's CAs */
}

TEST(https_and_h2_on_the_http_listener)
{
    char out[256], args[256];
    snprintf(args, sizeof(args), "https://127.0.0.1:%u/healthz", broker.http_port);
    CHECK(curl(args, out, sizeof(out)) == 0);
    CHECK(strstr(out, "\"ok\"") != NULL);
    snprintf(args, sizeof(args), "--http2 -o /dev/null -w '%%{http_version} %%{http_code}' "
                                 "https://localhost:%u/healthz", broker.http_port);
    CHECK(curl(args, out, sizeof(out)) == 0);
    fprintf(stderr, "  h2: %s\n", out);
    CHECK(strcmp(out, "2 200") == 0);
    snprintf(args, sizeof(args), "-w ' %%{http_code}' http://127.0.0.1:%u/healthz",
             broker.http_port);
    CHECK(curl(args, out, sizeof(out)) == 0); /* plaintext HTTP: answered 400, in plaintext */
    CHECK(strstr(out, "this port speaks TLS") != NULL);
}

TEST(sighup_reloads_certificates)
{
    CHECK(use_cert("srv2") == 0);
    CHECK(reload() == 0);
    sluice_client *c = NULL;
    CHECK(connect_tls("ca2.pem", NULL, NULL, &c) == SL_OK);
    sluice_client_free(c);
    CHECK(refused("ca.pem", NULL, NULL, "certificate verify failed"));
    /* the connection opened before the reload keeps its session */
    struct sluice_stream_info *list = NULL;
    size_t n = 0;
    CHECK(sluice_stream_list(before_reload, &list, &n) == SL_OK);
    sluice_stream_list_free(list, n);
    CHECK(n == 1);
}

TEST(broken_reload_keeps_the_current_certificate)
{
    CHECK(copy_file(cert("srv.key"), cert("live.key")) == 0); /* not srv2's key */
    CHECK(reload() == 0);
    sluice_client *c = NULL;
    CHECK(connect_tls("ca2.pem", NULL, NULL, &c) == SL_OK);
    sluice_client_free(c);
}

TEST(expired_broker_certificate_refused)
{
    CHECK(use_cert("srv_expired") == 0);
    CHECK(reload() == 0);
    CHECK(refused("ca.pem", NULL, NULL, "certificate has expired"));
}

TEST(mutual_tls)
{
    CHECK(it_broker_stop(&broker) == 0);
    it_broker_cleanup(&broker);
    CHECK(use_cert("srv") == 0);
    setenv("SLUICE_TLS_CLIENT_AUTH", "require", 1);
    setenv("SLUICE_TLS_CA_FILE", cert("ca.pem"), 1);
    /* with auth on, the certificate's name is the principal: no password */
    FILE *f = fopen(cert("auth"), "w");
    CHECK(f != NULL);
    fprintf(f, "allow alice all mtls*\n");
    fclose(f);
    CHECK(chmod(cert("auth"), 0600) == 0);
    setenv("SLUICE_AUTH", "true", 1);
    setenv("SLUICE_AUTH_FILE", cert("auth"), 1);
    CHECK(it_broker_start(&broker, NULL) == 0);
    sluice_client *c = NULL;
    CHECK(connect_tls("ca.pem", "cli", NULL, &c) == SL_OK);
    CHECK(it_create_stream(c, "mtls", 1) == SL_OK);
    CHECK_EQ(it_create_stream(c, "other", 1), SL_EDENIED); /* alice's rules apply */
    sluice_client_free(c);
    CHECK(refused("ca.pem", NULL, NULL, "certificate"));
    CHECK(refused("ca.pem", "cli_other", NULL, "alert"));
    CHECK(refused("ca.pem", "cli_expired", NULL, "alert"));
    CHECK(it_broker_alive(&broker));
}

int main(void)
{
    int pre = it_preflight();
    if (pre != 0) {
        return pre;
    }
    if (system("command -v openssl >/dev/null && command -v curl >/dev/null") != 0) {
        fprintf(stderr, "openssl and curl are needed (deploy/install-test-deps.sh)\n");
        return 77;
    }
    snprintf(certs, sizeof(certs), "/var/tmp/sluice-tls-XXXXXX");
    if (mkdtemp(certs) == NULL) {
        return 1;
    }
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "'%s' '%s'", TLS_CERTS_SCRIPT, certs);
    if (system(cmd) != 0 || use_cert("srv") != 0) {
        fprintf(stderr, "cannot make the test certificates\n");
        return 1;
    }
    setenv("SLUICE_TLS", "true", 1);
    setenv("SLUICE_TLS_CERT_FILE", cert("live.pem"), 1);
    setenv("SLUICE_TLS_KEY_FILE", cert("live.key"), 1);
    if (it_broker_start_http(&broker, NULL) != 0) {
        return 1;
    }
    RUN(records_roundtrip_over_tls);
    RUN(server_name_defaults_to_the_host_and_is_checked);
    RUN(certificate_from_another_ca_refused);
    RUN(plaintext_client_on_tls_port_refused);
    RUN(cli_over_tls);
    RUN(https_and_h2_on_the_http_listener);
    RUN(sighup_reloads_certificates);
    RUN(broken_reload_keeps_the_current_certificate);
    RUN(expired_broker_certificate_refused);
    sluice_client_free(before_reload);
    RUN(mutual_tls);
    it_broker_cleanup(&broker);
    it_rmtree(certs);
    TEST_END();
}
