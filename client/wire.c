/* wire.c - plaintext or TLS byte stream over a blocking socket (see wire.h).
 *
 * TLS: the writer encrypts one record's worth under `mu`, takes the
 * ciphertext into its own buffer and sends it with `mu` released; the
 * reader receives ciphertext into its own buffer, then feeds and decrypts it
 * under `mu`. The session's output is a FIFO, so whichever side takes it
 * sends it in the order the session produced it (the reader only produces
 * output for TLS 1.3 key updates, which our broker does not request).
 */
#include "client/wire.h"

#include "common/assert.h"
#include "common/clock.h"
#include "common/error.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define WIRE_CIPHER_BYTES (32u << 10) /* two records per recv or send */

struct sl_wire {
    int fd;
    atomic_uint refs;
    struct sl_tls *tls; /* NULL: plaintext */
    pthread_mutex_t mu; /* the session, between reader and writer */
    uint8_t *rbuf;      /* reader's ciphertext */
    uint8_t *wbuf;      /* writer's ciphertext */
};


static int send_all(int fd, const uint8_t *p, size_t len, char *why, size_t why_len)
{
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            snprintf(why, why_len, "send: %s", strerror(errno));
            return SL_ECLOSED;
        }
        p += n;
        len -= (size_t)n;
    }
    return SL_OK;
}

/* Sends what the session produced. The caller is the only writer. */
static int flush_tls(struct sl_wire *w, char *why, size_t why_len)
{
    for (;;) {
        pthread_mutex_lock(&w->mu);
        size_t n = sl_tls_take(w->tls, w->wbuf, WIRE_CIPHER_BYTES);
        pthread_mutex_unlock(&w->mu);
        if (n == 0) {
            return SL_OK;
        }
        int rc = send_all(w->fd, w->wbuf, n, why, why_len);
        if (rc != SL_OK) {
            return rc;
        }
    }
}

/* Waits for the socket to be readable, then receives. 0 bytes on timeout. */
static int recv_some(int fd, void *buf, size_t cap, uint32_t timeout_ms, size_t *got, char *why,
                     size_t why_len)
{
    *got = 0;
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int r = poll(&pfd, 1, (int)timeout_ms);
    if (r <= 0) {
        return SL_OK; /* timeout or EINTR: the caller's loop decides */
    }
    ssize_t n = recv(fd, buf, cap, 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
        return SL_OK;
    }
    if (n <= 0) {
        snprintf(why, why_len, "%s", n == 0 ? "closed by the broker" : strerror(errno));
        return SL_ECLOSED;
    }
    *got = (size_t)n;
    return SL_OK;
}

static int handshake(struct sl_wire *w, uint64_t deadline_ms, char *why, size_t why_len)
{
    for (;;) {
        pthread_mutex_lock(&w->mu);
        int rc = sl_tls_handshake(w->tls);
        pthread_mutex_unlock(&w->mu);
        char sent_why[128];
        int frc = flush_tls(w, sent_why, sizeof(sent_why)); /* our messages, or our alert */
        if (rc == SL_OK) {
            if (frc != SL_OK) {
                snprintf(why, why_len, "TLS handshake: %s", sent_why);
                return SL_ECLOSED;
            }
            return SL_OK;
        }
        if (rc != SL_EAGAIN) {
            snprintf(why, why_len, "TLS handshake failed: %s", sl_tls_why(w->tls));
            return SL_ECLOSED;
        }
        uint64_t now = sl_clock_mono_ms();
        if (now >= deadline_ms || frc != SL_OK) {
            snprintf(why, why_len, "TLS handshake: %s",
                     frc != SL_OK ? sent_why : "timed out (is the port speaking TLS?)");
            return SL_ECLOSED;
        }
        size_t got = 0;
        char rwhy[128];
        if (recv_some(w->fd, w->rbuf, WIRE_CIPHER_BYTES, (uint32_t)(deadline_ms - now), &got,
                      rwhy, sizeof(rwhy)) != SL_OK) {
            snprintf(why, why_len, "TLS handshake: %s", rwhy);
            return SL_ECLOSED;
        }
        pthread_mutex_lock(&w->mu);
        rc = sl_tls_feed(w->tls, w->rbuf, got);
        pthread_mutex_unlock(&w->mu);
        if (rc != SL_OK) {
            snprintf(why, why_len, "out of memory");
            return SL_ECLOSED;
        }
    }
}

int sl_wire_new(int fd, struct sl_tls_ctx *tls, const char *server_name, uint64_t deadline_ms,
                struct sl_wire **out, char *why, size_t why_len)
{
    SL_ASSERT(fd >= 0);
    struct sl_wire *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        close(fd);
        snprintf(why, why_len, "out of memory");
        return SL_ENOMEM;
    }
    w->fd = fd;
    atomic_init(&w->refs, 1);
    pthread_mutex_init(&w->mu, NULL);
    if (tls == NULL) {
        *out = w;
        return SL_OK;
    }
    w->rbuf = malloc(WIRE_CIPHER_BYTES);
    w->wbuf = malloc(WIRE_CIPHER_BYTES);
    int rc = w->rbuf == NULL || w->wbuf == NULL ? SL_ENOMEM : sl_tls_new(tls, server_name, &w->tls);
    if (rc != SL_OK) {
        snprintf(why, why_len, "%s", rc == SL_ENOMEM ? "out of memory" : "bad TLS server name");
    } else {
        rc = handshake(w, deadline_ms, why, why_len);
    }
    if (rc != SL_OK) {
        sl_wire_unref(w);
        return rc;
    }
    *out = w;
    return SL_OK;
}

void sl_wire_ref(struct sl_wire *w)
{
    atomic_fetch_add(&w->refs, 1);
}

void sl_wire_unref(struct sl_wire *w)
{
    if (w == NULL || atomic_fetch_sub(&w->refs, 1) != 1) {
        return;
    }
    close(w->fd);
    sl_tls_free(w->tls);
    pthread_mutex_destroy(&w->mu);
    free(w->rbuf);
    free(w->wbuf);
    free(w);
}

void sl_wire_shutdown(struct sl_wire *w)
{
    shutdown(w->fd, SHUT_RDWR);
}

int sl_wire_write(struct sl_wire *w, const void *data, size_t len, char *why, size_t why_len)
{
    if (w->tls == NULL) {
        return send_all(w->fd, data, len, why, why_len);
    }
    const uint8_t *p = data;
    while (len > 0) {
        size_t n = len < SL_TLS_RECORD_BYTES ? len : SL_TLS_RECORD_BYTES;
        pthread_mutex_lock(&w->mu);
        int rc = sl_tls_write(w->tls, p, n);
        if (rc != SL_OK) {
            snprintf(why, why_len, "TLS: %s", sl_tls_why(w->tls));
        }
        pthread_mutex_unlock(&w->mu);
        if (rc != SL_OK) {
            return SL_ECLOSED;
        }
        rc = flush_tls(w, why, why_len);
        if (rc != SL_OK) {
            return rc;
        }
        p += n;
        len -= n;
    }
    return SL_OK;
}

/* Decrypts what the session holds into buf. */
static int tls_read(struct sl_wire *w, void *buf, size_t cap, size_t *got, char *why,
                    size_t why_len)
{
    pthread_mutex_lock(&w->mu);
    int rc = sl_tls_read(w->tls, buf, cap, got);
    if (rc == SL_EPROTO) {
        snprintf(why, why_len, "TLS: %s", sl_tls_why(w->tls));
    }
    pthread_mutex_unlock(&w->mu);
    if (rc == SL_EAGAIN) {
        *got = 0;
        return SL_OK;
    }
    if (rc == SL_ECLOSED) {
        snprintf(why, why_len, "closed by the broker");
    }
    return rc == SL_OK ? SL_OK : SL_ECLOSED;
}

int sl_wire_read(struct sl_wire *w, void *buf, size_t cap, uint32_t timeout_ms, size_t *got,
                 char *why, size_t why_len)
{
    SL_ASSERT(cap > 0);
    if (w->tls == NULL) {
        return recv_some(w->fd, buf, cap, timeout_ms, got, why, why_len);
    }
    int rc = tls_read(w, buf, cap, got, why, why_len); /* records already received */
    if (rc != SL_OK || *got > 0) {
        return rc;
    }
    size_t n = 0;
    rc = recv_some(w->fd, w->rbuf, WIRE_CIPHER_BYTES, timeout_ms, &n, why, why_len);
    if (rc != SL_OK || n == 0) {
        return rc;
    }
    pthread_mutex_lock(&w->mu);
    rc = sl_tls_feed(w->tls, w->rbuf, n);
    pthread_mutex_unlock(&w->mu);
    if (rc != SL_OK) {
        snprintf(why, why_len, "out of memory");
        return SL_ECLOSED;
    }
    return tls_read(w, buf, cap, got, why, why_len);
}
