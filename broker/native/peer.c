/* peer.c - requests to the other brokers of a cluster (see peer.h).
 *
 * A message's life: sl_peers_send (main loop) encodes it into its own Replicate request and
 * queues it on its peer; the peer's sender thread takes it, (re)connects when needed and
 * hands it to libsluice; libsluice's I/O thread runs on_answer with the response, which puts
 * the message on the done list and writes the eventfd; the main loop's read of the eventfd
 * completes and run_done decodes each answer and runs its callback. Every message ends on
 * the done list exactly once: answered, failed by libsluice (its callback always runs once
 * a call is accepted), refused at the send, or failed by the sender at its stop.
 *
 * Ownership: a queued or in-flight message belongs to its peer's thread, then to libsluice
 * until on_answer, then to the done list, then to the main loop, which frees it.
 */
#include "broker/native/peer.h"

#include "broker/native/repl_codec.h"
#include "client/conn.h"
#include "client/sluice.h"
#include "common/assert.h"
#include "common/error.h"
#include "common/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define PEER_STREAM_MAX         256u
#define PEER_CONNECT_TIMEOUT_MS 2000u

struct peer;

struct peer_msg {
    struct peer *peer;
    char addr[SL_PEER_ADDR_MAX];
    char stream[PEER_STREAM_MAX];
    sl_request req;
    Sluice__V1__Replicate rep;
    Sluice__V1__ReplMessage rm;
    Sluice__V1__Produce prod; /* a forwarded append (sl_peers_produce); else NULL pcb */
    uint8_t *batch;           /* owned: the produce's copy */
    sl_peers_produce_cb pcb;
    uint32_t extra_wait_ms;
    sl_peers_cb cb;
    void *ctx;
    /* the outcome, set before the message reaches the done list */
    int err;
    char why[512];
    sl_response *resp;
    struct peer_msg *next;
};

struct peer {
    struct sl_peers *ps;
    int32_t id;
    pthread_t thread;
    pthread_cond_t cv;     /* under ps->mu: queue or stop changed */
    struct peer_msg *head; /* under ps->mu: queued, not handed to libsluice yet */
    struct peer_msg *tail;
    bool stop;             /* under ps->mu */
    uint32_t count;        /* main loop: queued, in flight or done but not run */
    sluice_client *client; /* the sender thread's */
    char client_addr[SL_PEER_ADDR_MAX];
};

struct sl_peers {
    struct sl_ring *ring;
    struct sl_peers_config cfg;
    int efd;
    uint64_t efd_val;
    struct sl_io_op wake_op;
    bool armed;
    bool closing;
    pthread_mutex_t mu;
    struct peer_msg *done_head; /* under mu */
    struct peer_msg *done_tail;
    struct peer *peer[SL_PEERS_MAX];
    uint32_t n_peers;
};

/* ---- any thread: a message is done ---- */

static void finish(struct sl_peers *ps, struct peer_msg *m)
{
    pthread_mutex_lock(&ps->mu);
    m->next = NULL;
    if (ps->done_tail != NULL) {
        ps->done_tail->next = m;
    } else {
        ps->done_head = m;
    }
    ps->done_tail = m;
    pthread_mutex_unlock(&ps->mu);
    uint64_t one = 1;
    ssize_t n;
    do {
        n = write(ps->efd, &one, sizeof(one));
    } while (n < 0 && errno == EINTR);
    SL_ASSERT(n == (ssize_t)sizeof(one)); /* (an eventfd write fails only at 2^64 - 2) */
}

static void fail_msg(struct sl_peers *ps, struct peer_msg *m, int err, const char *why)
{
    m->err = err;
    snprintf(m->why, sizeof(m->why), "%s", why);
    finish(ps, m);
}

/* libsluice's I/O thread (or a sending thread whose write broke the connection). */
static void on_answer(void *ctx, int err, const char *msg, sl_response *resp)
{
    struct peer_msg *m = ctx;
    m->err = err;
    m->resp = resp;
    if (err != SL_OK) {
        snprintf(m->why, sizeof(m->why), "broker %d at %.128s: %.300s", m->peer->id, m->addr,
                 msg != NULL && msg[0] != '\0' ? msg : sl_strerror(err));
    }
    finish(m->peer->ps, m);
}

/* ---- a peer's sender thread ---- */

/* A client connected to m->addr, made (again) when there is none or the peer moved. */
static int connect_peer(struct peer *p, const struct peer_msg *m, char *why, size_t why_len)
{
    if (p->client != NULL && strcmp(p->client_addr, m->addr) == 0) {
        return SL_OK;
    }
    sluice_client_free(p->client);
    p->client = NULL;
    const struct sl_peers_config *cfg = &p->ps->cfg;
    char id[48];
    snprintf(id, sizeof(id), "sluiced-peer-%d", cfg->self);
    struct sluice_client_opts o = {
        .connect_timeout_ms =
            cfg->connect_timeout_ms != 0 ? cfg->connect_timeout_ms : PEER_CONNECT_TIMEOUT_MS,
        .request_timeout_ms = SL_REPL_REQ_TIMEOUT_MS,
        .client_id = id,
        .tls = cfg->tls,
        .tls_ca_file = cfg->tls_ca_file,
        .tls_cert_file = cfg->tls_cert_file,
        .tls_key_file = cfg->tls_key_file,
        .user = cfg->user,
        .password = cfg->password,
        .credentials_file = cfg->credentials_file,
    };
    int rc = sluice_client_new(m->addr, &o, &p->client);
    if (rc != SL_OK) {
        snprintf(why, why_len, "cannot reach broker %d at %.128s: %.300s", p->id, m->addr,
                 sluice_last_error());
        p->client = NULL;
        return rc == SL_EAUTH ? SL_EAUTH : SL_ECLOSED;
    }
    snprintf(p->client_addr, sizeof(p->client_addr), "%s", m->addr);
    return SL_OK;
}

static void *sender_main(void *arg)
{
    struct peer *p = arg;
    struct sl_peers *ps = p->ps;
    char why[512];
    for (;;) {
        pthread_mutex_lock(&ps->mu);
        while (!p->stop && p->head == NULL) {
            pthread_cond_wait(&p->cv, &ps->mu);
        }
        struct peer_msg *m = p->head;
        if (m != NULL) {
            p->head = m->next;
            if (p->head == NULL) {
                p->tail = NULL;
            }
        }
        bool stop = p->stop;
        pthread_mutex_unlock(&ps->mu);
        if (m == NULL) {
            break; /* stopping, nothing queued */
        }
        if (stop) {
            fail_msg(ps, m, SL_ECLOSED, "this broker is closing its peer connections");
            continue;
        }
        int rc = connect_peer(p, m, why, sizeof(why));
        if (rc == SL_OK) {
            rc = sl_client_call_async(p->client, &m->req, m->extra_wait_ms, on_answer, m);
            if (rc != SL_OK) {
                snprintf(why, sizeof(why), "broker %d at %.128s: %.300s", p->id, m->addr,
                         sluice_last_error());
            }
        }
        if (rc != SL_OK) {
            fail_msg(ps, m, rc, why);
        }
    }
    sluice_client_free(p->client); /* fails what is in flight: on_answer runs for each */
    p->client = NULL;
    return NULL;
}

/* ---- main loop ---- */

static void produce_done(struct peer_msg *m)
{
    int err = m->err;
    const char *why = m->why;
    uint64_t base = 0;
    if (err == SL_OK) {
        const sl_response *r = m->resp;
        if (r == NULL || r->body_case != SLUICE__V1__RESPONSE__BODY_PRODUCE || r->produce == NULL) {
            err = SL_EPROTO;
            snprintf(m->why, sizeof(m->why),
                     "broker %d at %.128s answered a produce without "
                     "a ProduceResponse",
                     m->peer->id, m->addr);
        } else {
            base = r->produce->base_seq;
        }
    }
    SL_ASSERT(m->peer->count > 0);
    m->peer->count--;
    m->pcb(m->ctx, err, err == SL_OK ? "" : why, base);
    sl_response_free(m->resp);
    free(m->batch);
    free(m);
}

static void run_done(struct sl_peers *ps)
{
    pthread_mutex_lock(&ps->mu);
    struct peer_msg *m = ps->done_head;
    ps->done_head = ps->done_tail = NULL;
    pthread_mutex_unlock(&ps->mu);
    while (m != NULL) {
        struct peer_msg *next = m->next;
        if (m->pcb != NULL) {
            produce_done(m);
            m = next;
            continue;
        }
        struct sl_repl_batch batches[SL_REPL_FETCH_BATCHES_MAX];
        struct sl_repl_msg answer;
        int err = m->err;
        const char *why = m->why;
        char dwhy[512];
        bool decoded = false;
        if (err == SL_OK) {
            const sl_response *r = m->resp;
            if (r == NULL || r->body_case != SLUICE__V1__RESPONSE__BODY_REPLICATE ||
                r->replicate == NULL) {
                err = SL_EPROTO;
                snprintf(dwhy, sizeof(dwhy), "broker %d at %.128s answered without a ReplMessage",
                         m->peer->id, m->addr);
                why = dwhy;
            } else if ((err = sl_repl_codec_decode(r->replicate->msg, &answer, batches, dwhy,
                                                   sizeof(dwhy))) != SL_OK) {
                why = dwhy;
            } else {
                decoded = true;
            }
        }
        SL_ASSERT(m->peer->count > 0);
        m->peer->count--;
        m->cb(m->ctx, err, err == SL_OK ? "" : why, decoded ? &answer : NULL);
        sl_response_free(m->resp);
        free(m);
        m = next;
    }
}

static void on_wake(struct sl_io_op *op, int res)
{
    struct sl_peers *ps = sl_container_of(op, struct sl_peers, wake_op);
    ps->armed = false;
    run_done(ps);
    if (res < 0 && res != -EINTR) {
        sl_error("peer",
                 "the peers' wake-up read failed: %s (answers from other brokers "
                 "are lost until a restart)",
                 strerror(-res));
        return;
    }
    if (!ps->closing) {
        sl_ring_read(ps->ring, &ps->wake_op, ps->efd, &ps->efd_val, sizeof(ps->efd_val), 0);
        ps->armed = true;
    }
}

int sl_peers_open(struct sl_ring *ring, const struct sl_peers_config *cfg, struct sl_peers **out)
{
    struct sl_peers *ps = calloc(1, sizeof(*ps));
    if (ps == NULL) {
        return SL_ENOMEM;
    }
    ps->ring = ring;
    ps->cfg = *cfg;
    pthread_mutex_init(&ps->mu, NULL);
    ps->efd = eventfd(0, EFD_CLOEXEC);
    if (ps->efd < 0) {
        int rc = sl_err_from_errno(errno);
        pthread_mutex_destroy(&ps->mu);
        free(ps);
        return rc;
    }
    ps->wake_op.cb = on_wake;
    sl_ring_read(ring, &ps->wake_op, ps->efd, &ps->efd_val, sizeof(ps->efd_val), 0);
    ps->armed = true;
    *out = ps;
    return SL_OK;
}

static struct peer *peer_of(struct sl_peers *ps, int32_t id, int *rc)
{
    for (uint32_t i = 0; i < ps->n_peers; i++) {
        if (ps->peer[i]->id == id) {
            return ps->peer[i];
        }
    }
    if (ps->n_peers == SL_PEERS_MAX) {
        *rc = SL_ELIMIT;
        return NULL;
    }
    struct peer *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        *rc = SL_ENOMEM;
        return NULL;
    }
    p->ps = ps;
    p->id = id;
    pthread_cond_init(&p->cv, NULL);
    if (pthread_create(&p->thread, NULL, sender_main, p) != 0) {
        pthread_cond_destroy(&p->cv);
        free(p);
        *rc = SL_ESYS;
        return NULL;
    }
    ps->peer[ps->n_peers++] = p;
    return p;
}

/* Hands m to p's sender thread. */
static void enqueue(struct sl_peers *ps, struct peer *p, struct peer_msg *m)
{
    p->count++;
    pthread_mutex_lock(&ps->mu);
    if (p->tail != NULL) {
        p->tail->next = m;
    } else {
        p->head = m;
    }
    p->tail = m;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&ps->mu);
}

int sl_peers_send(struct sl_peers *ps, const char *addr, const char *stream, uint32_t shard,
                  const struct sl_repl_msg *msg, uint32_t extra_wait_ms, sl_peers_cb cb, void *ctx)
{
    if (ps->closing) {
        return SL_ECLOSED;
    }
    if ((msg->type != SL_REPL_MSG_FETCH && msg->type != SL_REPL_MSG_EPOCH_REQ) ||
        msg->n_batches != 0 || msg->to < 0 || strlen(addr) >= SL_PEER_ADDR_MAX ||
        strlen(stream) >= PEER_STREAM_MAX) {
        return SL_EINVAL;
    }
    int rc = SL_OK;
    struct peer *p = peer_of(ps, msg->to, &rc);
    if (p == NULL) {
        return rc;
    }
    if (p->count >= SL_PEER_QUEUE_MAX) {
        return SL_ELIMIT;
    }
    struct peer_msg *m = calloc(1, sizeof(*m));
    if (m == NULL) {
        return SL_ENOMEM;
    }
    m->peer = p;
    snprintf(m->addr, sizeof(m->addr), "%s", addr);
    snprintf(m->stream, sizeof(m->stream), "%s", stream);
    struct sl_repl_msg copy = *msg;
    copy.from = ps->cfg.self;
    struct sl_repl_wire w;
    sl_repl_codec_encode(&copy, &w);
    m->rm = w.msg; /* (a request carries no batches: nothing of w is borrowed) */
    sluice__v1__replicate__init(&m->rep);
    m->rep.stream = m->stream;
    m->rep.shard = shard;
    m->rep.msg = &m->rm;
    sluice__v1__request__init(&m->req);
    m->req.body_case = SLUICE__V1__REQUEST__BODY_REPLICATE;
    m->req.replicate = &m->rep;
    m->extra_wait_ms = extra_wait_ms;
    m->cb = cb;
    m->ctx = ctx;
    enqueue(ps, p, m);
    return SL_OK;
}

int sl_peers_produce(struct sl_peers *ps, int32_t to, const char *addr, const char *stream,
                     uint32_t shard, const uint8_t *batch, size_t len, bool caller_routed,
                     sl_peers_produce_cb cb, void *ctx)
{
    if (ps->closing) {
        return SL_ECLOSED;
    }
    if (to < 0 || strlen(addr) >= SL_PEER_ADDR_MAX || strlen(stream) >= PEER_STREAM_MAX ||
        len == 0) {
        return SL_EINVAL;
    }
    int rc = SL_OK;
    struct peer *p = peer_of(ps, to, &rc);
    if (p == NULL) {
        return rc;
    }
    if (p->count >= SL_PEER_QUEUE_MAX) {
        return SL_ELIMIT;
    }
    struct peer_msg *m = calloc(1, sizeof(*m));
    uint8_t *copy = m != NULL ? malloc(len) : NULL;
    if (copy == NULL) {
        free(m);
        return SL_ENOMEM;
    }
    memcpy(copy, batch, len);
    m->peer = p;
    m->batch = copy;
    snprintf(m->addr, sizeof(m->addr), "%s", addr);
    snprintf(m->stream, sizeof(m->stream), "%s", stream);
    sluice__v1__produce__init(&m->prod);
    m->prod.stream = m->stream;
    m->prod.shard = shard;
    m->prod.ack = SLUICE__V1__ACK_MODE__ACK_DURABLE;
    m->prod.batch = (ProtobufCBinaryData){.len = len, .data = copy};
    m->prod.caller_routed = caller_routed;
    sluice__v1__request__init(&m->req);
    m->req.body_case = SLUICE__V1__REQUEST__BODY_PRODUCE;
    m->req.produce = &m->prod;
    m->pcb = cb;
    m->ctx = ctx;
    enqueue(ps, p, m);
    return SL_OK;
}

void sl_peers_close(struct sl_peers *ps)
{
    if (ps == NULL) {
        return;
    }
    ps->closing = true;
    for (uint32_t i = 0; i < ps->n_peers; i++) {
        struct peer *p = ps->peer[i];
        pthread_mutex_lock(&ps->mu);
        p->stop = true;
        pthread_cond_signal(&p->cv);
        pthread_mutex_unlock(&ps->mu);
        pthread_join(p->thread, NULL); /* every message of it is on the done list now */
    }
    run_done(ps);
    if (ps->armed) { /* complete the armed read, so the ring names nothing freed */
        uint64_t one = 1;
        ssize_t n = write(ps->efd, &one, sizeof(one));
        SL_ASSERT(n == (ssize_t)sizeof(one));
        while (ps->armed) {
            sl_ring_run(ps->ring, 1, 0);
        }
    }
    for (uint32_t i = 0; i < ps->n_peers; i++) {
        SL_ASSERT(ps->peer[i]->count == 0);
        pthread_cond_destroy(&ps->peer[i]->cv);
        free(ps->peer[i]);
    }
    close(ps->efd);
    pthread_mutex_destroy(&ps->mu);
    free(ps);
}
