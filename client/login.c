/* login.c - Hello and authentication at the start of a connection (see login.h).
 *
 * Each step is one request frame and one response frame (ids 0), read before the I/O
 * thread starts reading, so nothing else is in flight. The password is used only to derive
 * the SCRAM proof and never leaves the process.
 */
#include "client/login.h"

#include "client/conn.h"
#include "common/assert.h"
#include "common/clock.h"
#include "common/scram.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define LOGIN_FRAME_MAX  (1u << 20) /* a response during login: Hello, Authenticate */
#define LOGIN_REQ_MAX    2048u
#define CREDS_LINE_MAX   512u
#define MECHANISM        "SCRAM-SHA-256"

/* Reads exactly `len` bytes before `deadline_ms`. */
static int read_exact(struct sl_wire *w, uint8_t *p, size_t len, uint64_t deadline_ms)
{
    while (len > 0) {
        uint64_t now = sl_clock_mono_ms();
        if (now >= deadline_ms) {
            sl_client_set_error("handshake timed out");
            return SL_ECLOSED;
        }
        size_t got = 0;
        char why[160];
        if (sl_wire_read(w, p, len, (uint32_t)(deadline_ms - now), &got, why, sizeof(why)) !=
            SL_OK) {
            sl_client_set_error("handshake: %s", why);
            return SL_ECLOSED;
        }
        p += got;
        len -= got;
    }
    return SL_OK;
}

/* Sends `req` and reads one response of kind `want` into *out (owned). A broker error is
 * returned as its code with the message set, prefixed by `step`. */
static int exchange(struct sl_wire *w, const sl_request *req, int want, uint32_t timeout_ms,
                    const char *step, sl_response **out)
{
    *out = NULL;
    uint8_t buf[LOGIN_REQ_MAX];
    size_t n = sl_request_size(req);
    SL_ASSERT(n + SL_FRAME_HEADER_BYTES <= sizeof(buf));
    sl_frame_put_header(buf, (uint32_t)n);
    sl_request_pack(req, buf + SL_FRAME_HEADER_BYTES);
    char why[160];
    if (sl_wire_write(w, buf, n + SL_FRAME_HEADER_BYTES, why, sizeof(why)) != SL_OK) {
        sl_client_set_error("%s: %s", step, why);
        return SL_ECLOSED;
    }
    uint64_t deadline = sl_clock_mono_ms() + timeout_ms;
    uint32_t len = 0;
    int rc = read_exact(w, buf, SL_FRAME_HEADER_BYTES, deadline);
    if (rc == SL_OK && sl_frame_peek(buf, SL_FRAME_HEADER_BYTES, LOGIN_FRAME_MAX, &len) != SL_OK) {
        sl_client_set_error("%s: bad frame header", step);
        rc = SL_EPROTO;
    }
    uint8_t *payload = rc == SL_OK ? malloc(len) : NULL;
    if (rc == SL_OK && payload == NULL) {
        rc = SL_ENOMEM;
    }
    if (rc == SL_OK) {
        rc = read_exact(w, payload, len, deadline);
    }
    sl_response *resp = rc == SL_OK ? sl_response_unpack(payload, len) : NULL;
    free(payload);
    if (rc == SL_OK && resp == NULL) {
        sl_client_set_error("%s: malformed response", step);
        rc = SL_EPROTO;
    } else if (rc == SL_OK && (int)resp->code != SL_OK) {
        sl_client_set_error("%s: %s", step, resp->message);
        rc = (int)resp->code >= 0 && (int)resp->code < SL_ERR_COUNT_ ? (int)resp->code : SL_EPROTO;
    } else if (rc == SL_OK && (int)resp->body_case != want) {
        sl_client_set_error("%s: a response of the wrong kind", step);
        rc = SL_EPROTO;
    }
    if (rc != SL_OK) {
        sl_response_free(resp);
        return rc;
    }
    *out = resp;
    return SL_OK;
}

/* One Authenticate step: `data` out, the broker's answer into `answer` (NUL-terminated). */
static int auth_step(struct sl_wire *w, const char *data, uint32_t timeout_ms, char *answer,
                     size_t cap, int *done)
{
    Sluice__V1__Authenticate a = SLUICE__V1__AUTHENTICATE__INIT;
    a.mechanism = (char *)MECHANISM;
    a.data.data = (uint8_t *)data;
    a.data.len = strlen(data);
    sl_request req = SLUICE__V1__REQUEST__INIT;
    req.body_case = SLUICE__V1__REQUEST__BODY_AUTHENTICATE;
    req.authenticate = &a;
    sl_response *resp = NULL;
    int rc = exchange(w, &req, SLUICE__V1__RESPONSE__BODY_AUTHENTICATE, timeout_ms,
                      "authentication", &resp);
    if (rc != SL_OK) {
        return rc;
    }
    const ProtobufCBinaryData *d = &resp->authenticate->data;
    if (d->len >= cap) {
        sl_response_free(resp);
        sl_client_set_error("authentication: the broker's message is too long");
        return SL_EPROTO;
    }
    memcpy(answer, d->data, d->len);
    answer[d->len] = '\0';
    *done = resp->authenticate->done;
    sl_response_free(resp);
    return SL_OK;
}

static int scram(const struct sl_login *l, struct sl_wire *w)
{
    struct sl_scram_client sc;
    char out[SL_SCRAM_MSG_MAX], in[SL_SCRAM_MSG_MAX];
    int done = 0;
    if (sl_scram_client_first(&sc, l->user, out, sizeof(out)) != SL_OK) {
        sl_client_set_error("bad user name '%s' ([A-Za-z0-9_.@-], 1 to 64 characters)", l->user);
        return SL_EINVAL;
    }
    int rc = auth_step(w, out, l->timeout_ms, in, sizeof(in), &done);
    if (rc == SL_OK && (done || sl_scram_client_final(&sc, l->password, strlen(l->password), in,
                                                      strlen(in), out, sizeof(out)) != SL_OK)) {
        sl_client_set_error("authentication: malformed SCRAM server-first message");
        rc = SL_EPROTO;
    }
    if (rc == SL_OK) {
        rc = auth_step(w, out, l->timeout_ms, in, sizeof(in), &done);
    }
    if (rc == SL_OK && (!done || sl_scram_client_verify(&sc, in, strlen(in)) != SL_OK)) {
        /* the broker could not prove it knows the credentials: not our broker */
        sl_client_set_error("authentication: the broker's SCRAM signature is wrong");
        rc = SL_EAUTH;
    }
    memset(&sc, 0, sizeof(sc));
    return rc;
}

int sl_login_run(const struct sl_login *l, struct sl_wire *w, uint32_t *max_inflight,
                 uint32_t *max_frame)
{
    Sluice__V1__Hello hello = SLUICE__V1__HELLO__INIT;
    hello.version = SL_PROTOCOL_VERSION;
    hello.client_id = (char *)l->client_id;
    sl_request req = SLUICE__V1__REQUEST__INIT;
    req.body_case = SLUICE__V1__REQUEST__BODY_HELLO;
    req.hello = &hello;
    sl_response *resp = NULL;
    int rc = exchange(w, &req, SLUICE__V1__RESPONSE__BODY_HELLO, l->timeout_ms, "hello", &resp);
    if (rc != SL_OK) {
        return rc;
    }
    const Sluice__V1__HelloResponse *hr = resp->hello;
    *max_inflight = hr->max_inflight ? hr->max_inflight : SL_CLIENT_INFLIGHT_DEFAULT;
    *max_frame = hr->max_frame_bytes ? hr->max_frame_bytes : SL_FRAME_BYTES_DEFAULT;
    if (*max_frame > SL_FRAME_BYTES_MAX) {
        *max_frame = SL_FRAME_BYTES_MAX;
    }
    bool required = hr->auth_required;
    sl_response_free(resp);
    if (!required) {
        return SL_OK; /* auth off, or the client certificate authenticated us */
    }
    if (l->user == NULL || l->password == NULL) {
        sl_client_set_error("the broker requires authentication: give a user and password "
                            "(SLUICE_USER and SLUICE_PASSWORD, or a credentials file) or a "
                            "client certificate");
        return SL_EAUTH;
    }
    return scram(l, w);
}

/* ---- credentials ---- */

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t') {
        s++;
    }
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r')) {
        s[--n] = '\0';
    }
    return s;
}

static int read_creds_file(const char *path, char **user, char **password)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        sl_client_set_error("credentials file %s: %s", path, strerror(errno));
        return SL_EINVAL;
    }
    if ((st.st_mode & 077) != 0) {
        sl_client_set_error("credentials file %s is readable by others (mode %04o): chmod 600 it",
                            path, (unsigned)(st.st_mode & 07777));
        return SL_EINVAL;
    }
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        sl_client_set_error("credentials file %s: %s", path, strerror(errno));
        return SL_EINVAL;
    }
    char line[CREDS_LINE_MAX];
    int rc = SL_OK;
    for (int lineno = 1; rc == SL_OK && fgets(line, sizeof(line), f) != NULL; lineno++) {
        char *t = trim(line);
        if (t[0] == '\0' || t[0] == '#') {
            continue;
        }
        char *eq = strchr(t, '=');
        if (eq == NULL) {
            sl_client_set_error("%s:%d: want 'user = NAME' or 'password = SECRET'", path, lineno);
            rc = SL_EINVAL;
            break;
        }
        *eq = '\0';
        char *key = trim(t), *val = trim(eq + 1);
        char **dst = strcmp(key, "user") == 0 ? user : strcmp(key, "password") == 0 ? password
                                                                                     : NULL;
        if (dst == NULL) {
            sl_client_set_error("%s:%d: unknown key '%s' (user, password)", path, lineno, key);
            rc = SL_EINVAL;
        } else {
            free(*dst);
            *dst = strdup(val);
            rc = *dst == NULL ? SL_ENOMEM : SL_OK;
        }
    }
    memset(line, 0, sizeof(line));
    fclose(f);
    return rc;
}

int sl_login_credentials(const struct sluice_client_opts *o, char **user, char **password)
{
    *user = NULL;
    *password = NULL;
    const char *u = o->user, *p = o->password;
    if (u == NULL && p == NULL) {
        u = getenv("SLUICE_USER");
        p = getenv("SLUICE_PASSWORD");
    }
    if (u == NULL && p == NULL) {
        const char *file =
            o->credentials_file != NULL ? o->credentials_file : getenv("SLUICE_CREDENTIALS_FILE");
        if (file == NULL || file[0] == '\0') {
            return SL_OK; /* no credentials: fine unless the broker asks */
        }
        int rc = read_creds_file(file, user, password);
        if (rc == SL_OK && (*user == NULL) != (*password == NULL)) {
            sl_client_set_error("credentials file %s: needs both user and password", file);
            rc = SL_EINVAL;
        }
        if (rc != SL_OK) {
            free(*user);
            free(*password);
            *user = *password = NULL;
        }
        return rc;
    }
    if (u == NULL || p == NULL) {
        sl_client_set_error("a user needs a password and a password a user");
        return SL_EINVAL;
    }
    *user = strdup(u);
    *password = strdup(p);
    if (*user == NULL || *password == NULL) {
        free(*user);
        free(*password);
        *user = *password = NULL;
        return SL_ENOMEM;
    }
    return SL_OK;
}
