/* workload_repl.c - the replicated workload of the fault test (workload.h; SLUICE_IT_WORKLOAD=
 * repl): a stream of WR_SHARDS shards, replication factor 3, written by WR_PRODUCERS threads
 * with ack = durable through the bootstrap list of every broker (libsluice routes each shard
 * to its leader and follows it when it moves), each value's outcome logged (repl_check.h).
 *
 * check (after each heal): the producers pause once everything they sent has been reported
 * (so the log and the stream stand still); then, within WR_CHECK_WAIT_MS, every broker's own
 * copy of every shard (describe on that broker alone: first and next sequence, bytes) must be
 * the same on all three, every shard led with its three replicas in sync (Metadata), and a
 * consumer reading each shard from its leader up to that end must find every acknowledged
 * value exactly once, nothing twice, positions increasing (rc_read_check). The consumer
 * reads up to the high watermark only, so reaching the end every replica holds also says the
 * HW got there. What it does not check yet: the leader epoch in the batch headers along the
 * log, and record contents replica by replica (equal sizes and ends stand in for it).
 *
 * Failover: for each fault, per shard, the longest stretch without an acknowledgement from
 * the fault to the next check (counted from the fault, or from the shard's last ack after
 * it); the fault's figure is the longest of any shard (for a fault that hits a leader: from
 * the fault to writes accepted again). A producer's round spans every shard and waits for
 * all of them, so a shard whose leader was not hit stalls with the one that was: the figure
 * is the stream's. The window ends when the next check has paused the producers (what they
 * had in flight then is reported, so a stall lasting into the check counts); a shard without
 * an ack in the window is reported as such. A rolling restart is one fault whose window
 * ends at the check after its first step.
 *
 * Queue group (#14): one consumer thread receives from queue group WR_QGROUP of the stream
 * (its home is the leader of the group's shard, which the faults move) and acks what it
 * gets. Each check fails when a value was delivered again after its ack was answered OK
 * (acknowledged records never return, whatever the failovers); at the end the consumer
 * drains the group, and every acknowledged value must have been delivered (at-least-once).
 * It pauses with the producers for the checks (its acks are control batches).
 *
 * Threads: the producers and the queue consumer (started by start, from the test's thread,
 * so in its network namespace), the client's I/O threads (delivery callbacks), the test's thread
 * (fault, check, stop). `mu` guards everything below it in struct wr_state.
 */
#include "repl_check.h"
#include "workload.h"

#include "tests/integration/harness.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WR_STREAM        "faults-repl"
#define WR_SHARDS        3u /* one led by each broker at first */
#define WR_PRODUCERS     2u
#define WR_ROUND         24u        /* values per producer round (8 per shard) */
#define WR_VALUES_CAP    (1u << 22) /* 4 Mi values, 24 MiB with their positions: > an hour */
#define WR_FAULTS_MAX    256u
#define WR_ROUNDS_CAP    (1u << 20)
#define WR_PAUSE_WAIT_MS (90000u * IT_SLOWDOWN) /* > a batch's retries (10, backoff to 5 s) */
#define WR_CHECK_WAIT_MS (30000u * IT_SLOWDOWN)
#define WR_READ_WAIT_MS  (30000u * IT_SLOWDOWN)
#define WR_SLOW_ROUND_MS 1000u /* logged */
#define WR_ROUND_GAP_MS  5u    /* between rounds: the machine is shared */
#define WR_QGROUP        "faults-q"
#define WR_Q_BATCH       64u                    /* records per receive */
#define WR_Q_DRAIN_MS    (60000u * IT_SLOWDOWN) /* the final drain, at most */

struct wr_fault {
    char what[96];
    uint64_t t0;
    /* per shard: the longest time without an acknowledgement in the window (fault .. the
     * next check), from the fault or the last ack before it, and when it ended (ms after the
     * fault); -1: no ack in the window */
    long gap_ms[WR_SHARDS];
    long again_ms[WR_SHARDS];
    bool stalled_at_check; /* a shard had no ack since its last one when the check began */
    bool closed;           /* a check began: no more updates */
};

struct wr_state {
    char bootstrap[CW_BROKERS_MAX * 32];
    pthread_t thr[WR_PRODUCERS + 1]; /* and the queue consumer */
    uint32_t n_threads;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint8_t *outcome;   /* [WR_VALUES_CAP] */
    uint8_t *ack_shard; /* [WR_VALUES_CAP]: where the broker said it stored each value */
    uint32_t *ack_seq;
    uint32_t next_value;
    bool stopping, pause;
    uint32_t paused; /* producers waiting on `pause` */
    uint32_t checks;
    uint64_t dup_batches, retries; /* producers' stats at their end */
    uint64_t last_ack[WR_SHARDS];  /* mono ms of each shard's last acknowledgement */
    uint32_t *round_ms;            /* [WR_ROUNDS_CAP]: produce .. every value reported */
    uint32_t n_rounds;
    int last_err; /* the last delivery's */
    struct wr_fault fault[WR_FAULTS_MAX];
    uint32_t n_faults;
    /* the queue consumer's */
    uint8_t *q_seen;  /* [WR_VALUES_CAP]: deliveries (saturating) */
    uint8_t *q_acked; /* [WR_VALUES_CAP]: an ack answered OK */
    uint64_t q_deliveries, q_acks, q_redelivered;
    uint64_t q_violations; /* delivered after an OK ack */
    char q_first_violation[160];
    uint32_t q_missing; /* after the drain: acknowledged values never delivered */
    bool q_drained;
};

/* The one state of the process (delivery callbacks carry only the value). */
static struct wr_state *wr;

static void on_delivery(void *ctx, int err, uint32_t shard, uint64_t seq)
{
    (void)seq;
    uint32_t v = (uint32_t)(uintptr_t)ctx;
    uint64_t now = it_mono_ms();
    pthread_mutex_lock(&wr->mu);
    wr->outcome[v] = (uint8_t)rc_outcome(err);
    wr->ack_shard[v] = (uint8_t)shard;
    wr->ack_seq[v] = (uint32_t)seq;
    if (err != SLUICE_OK && err != wr->last_err) { /* (one line per change of error) */
        fprintf(stderr, "%" PRIu64 " workload repl: value %" PRIu32 " on shard %" PRIu32 ": %s\n",
                it_wall_ms(), v, shard, sluice_strerror(err));
    }
    wr->last_err = err;
    struct wr_fault *f = wr->n_faults > 0 ? &wr->fault[wr->n_faults - 1] : NULL;
    if (err == SLUICE_OK && shard < WR_SHARDS) {
        if (f != NULL && !f->closed) {
            uint64_t from = wr->last_ack[shard] > f->t0 ? wr->last_ack[shard] : f->t0;
            long gap = (long)(now - from);
            if (gap > f->gap_ms[shard]) {
                f->gap_ms[shard] = gap;
                f->again_ms[shard] = (long)(now - f->t0);
            }
        }
        wr->last_ack[shard] = now;
    }
    pthread_mutex_unlock(&wr->mu);
}

/* Waits while paused; false once stopping. */
static bool producer_may_go(void)
{
    pthread_mutex_lock(&wr->mu);
    if (wr->pause && !wr->stopping) {
        wr->paused++;
        pthread_cond_broadcast(&wr->cv);
        while (wr->pause && !wr->stopping) {
            pthread_cond_wait(&wr->cv, &wr->mu);
        }
        wr->paused--;
    }
    bool go = !wr->stopping;
    pthread_mutex_unlock(&wr->mu);
    return go;
}

/* One round: WR_ROUND values (round-robin over the shards: empty keys), then waits until
 * each is reported (a flush that times out is repeated: the values stay in flight, and a
 * check must not start before they are reported). Stops early only when stopping. */
static void producer_round(sluice_producer *p)
{
    uint64_t t0 = it_mono_ms();
    for (uint32_t k = 0; k < WR_ROUND; k++) {
        pthread_mutex_lock(&wr->mu);
        uint32_t v = wr->next_value < WR_VALUES_CAP ? wr->next_value++ : UINT32_MAX;
        if (v != UINT32_MAX) {
            wr->outcome[v] = RC_UNKNOWN;
        }
        pthread_mutex_unlock(&wr->mu);
        if (v == UINT32_MAX) {
            it_sleep_ms(100); /* (the log is full: the run is far longer than planned) */
            return;
        }
        char val[16];
        size_t len = rc_value_format(val, v);
        if (sluice_produce(p, NULL, 0, val, len, NULL, 0, on_delivery, (void *)(uintptr_t)v) !=
            SLUICE_OK) {
            pthread_mutex_lock(&wr->mu);
            wr->outcome[v] = RC_FAILED; /* (not queued: never sent) */
            pthread_mutex_unlock(&wr->mu);
        }
    }
    while (sluice_producer_flush(p, 500) != SLUICE_OK) {
        pthread_mutex_lock(&wr->mu);
        bool stopping = wr->stopping;
        pthread_mutex_unlock(&wr->mu);
        if (stopping) {
            return; /* (freeing the producer reports the rest) */
        }
    }
    uint32_t took = (uint32_t)(it_mono_ms() - t0);
    if (took >= WR_SLOW_ROUND_MS) { /* (beside the brokers' logs: the timeline of a stall) */
        fprintf(stderr, "%" PRIu64 " workload repl: a round took %" PRIu32 " ms\n", it_wall_ms(),
                took);
    }
    pthread_mutex_lock(&wr->mu);
    if (wr->n_rounds < WR_ROUNDS_CAP) {
        wr->round_ms[wr->n_rounds++] = took;
    }
    pthread_mutex_unlock(&wr->mu);
}

static void *producer_main(void *arg)
{
    uint32_t id = (uint32_t)(uintptr_t)arg;
    char cid[32];
    snprintf(cid, sizeof(cid), "repl-producer-%" PRIu32, id);
    struct sluice_client_opts co = {.connect_timeout_ms = 1000,
                                    .request_timeout_ms = 3000,
                                    .reconnect_backoff_ms = 50,
                                    .reconnect_backoff_max_ms = 500,
                                    .client_id = cid};
    struct sluice_producer_opts po = {.ack = SLUICE_ACK_DURABLE,
                                      .linger_ms = 2,
                                      .retry_backoff_ms = 50,
                                      .max_inflight_batches = 2};
    sluice_client *c = NULL;
    sluice_producer *p = NULL;
    while (producer_may_go()) {
        if (c == NULL && sluice_client_new(wr->bootstrap, &co, &c) != SLUICE_OK) {
            c = NULL;
            it_sleep_ms(200); /* (every broker of the list down or cut: try again) */
            continue;
        }
        if (p == NULL && sluice_producer_new(c, WR_STREAM, &po, &p) != SLUICE_OK) {
            p = NULL;
            it_sleep_ms(200);
            continue;
        }
        producer_round(p);
        it_sleep_ms(WR_ROUND_GAP_MS);
    }
    if (p != NULL) {
        (void)sluice_producer_flush(p, 10000u * IT_SLOWDOWN);
        struct sluice_producer_stats st;
        sluice_producer_stats(p, &st);
        sluice_producer_free(p); /* (what is not reported by now stays unknown) */
        pthread_mutex_lock(&wr->mu);
        wr->dup_batches += st.duplicates;
        wr->retries += st.retries;
        pthread_mutex_unlock(&wr->mu);
    }
    sluice_client_free(c);
    return NULL;
}

/* ---- the queue consumer ---- */

static int64_t q_value(const struct sluice_message *m)
{
    int64_t v = rc_value_parse(m->value, m->value_len);
    return v < WR_VALUES_CAP ? v : -1;
}

/* Takes one receive's messages and acks them; false when it got none. */
static bool q_round(sluice_client *c, uint32_t wait_ms)
{
    struct sluice_message *m = NULL;
    size_t n = 0;
    if (sluice_queue_receive(c, WR_STREAM, WR_QGROUP, WR_Q_BATCH, wait_ms, 20000, &m, &n) !=
            SLUICE_OK ||
        n == 0) {
        sluice_messages_free(m, n);
        return false;
    }
    const char *receipts[WR_Q_BATCH];
    int results[WR_Q_BATCH];
    int64_t vals[WR_Q_BATCH];
    pthread_mutex_lock(&wr->mu);
    for (size_t i = 0; i < n; i++) {
        receipts[i] = m[i].receipt;
        vals[i] = q_value(&m[i]);
        if (vals[i] < 0) {
            continue;
        }
        uint32_t v = (uint32_t)vals[i];
        wr->q_deliveries++;
        wr->q_redelivered += wr->q_seen[v] > 0;
        if (wr->q_acked[v] && wr->q_violations++ == 0) {
            snprintf(wr->q_first_violation, sizeof(wr->q_first_violation),
                     "value %" PRIu32 " delivered again (shard %" PRIu32 " seq %" PRIu64
                     ", count %" PRIu32 ") after its ack was answered OK",
                     v, m[i].shard, m[i].seq, m[i].delivery_count);
        }
        wr->q_seen[v] = wr->q_seen[v] < 255 ? (uint8_t)(wr->q_seen[v] + 1) : 255;
    }
    pthread_mutex_unlock(&wr->mu);
    memset(results, 0, sizeof(results));
    int rc = sluice_queue_ack(c, WR_STREAM, WR_QGROUP, receipts, n, results);
    pthread_mutex_lock(&wr->mu);
    for (size_t i = 0; i < n && rc != SLUICE_EPROTO; i++) {
        /* (a request that failed whole leaves every result its error) */
        if (vals[i] >= 0 && results[i] == SLUICE_OK) {
            wr->q_acked[vals[i]] = 1;
            wr->q_acks++;
        }
    }
    pthread_mutex_unlock(&wr->mu);
    sluice_messages_free(m, n);
    return true;
}

static void *consumer_main(void *arg)
{
    (void)arg;
    struct sluice_client_opts co = {.connect_timeout_ms = 1000,
                                    .request_timeout_ms = 3000,
                                    .reconnect_backoff_ms = 50,
                                    .reconnect_backoff_max_ms = 500,
                                    .client_id = "repl-queue"};
    sluice_client *c = NULL;
    bool made = false;
    while (producer_may_go()) {
        if (c == NULL && sluice_client_new(wr->bootstrap, &co, &c) != SLUICE_OK) {
            c = NULL;
            it_sleep_ms(200);
            continue;
        }
        if (!made) {
            int rc = sluice_queue_group_create(c, WR_STREAM, WR_QGROUP, NULL);
            made = rc == SLUICE_OK || rc == SLUICE_EEXIST;
            if (!made) {
                it_sleep_ms(200);
            }
            continue;
        }
        (void)q_round(c, 300);
    }
    /* the drain: the producers stopped; what is left of the group, until quiet */
    uint64_t t0 = it_mono_ms();
    uint32_t empty = 0;
    while (made && c != NULL && empty < 5 && it_mono_ms() - t0 < WR_Q_DRAIN_MS) {
        empty = q_round(c, 500) ? 0 : empty + 1;
    }
    pthread_mutex_lock(&wr->mu);
    wr->q_drained = made && c != NULL && empty >= 5;
    pthread_mutex_unlock(&wr->mu);
    sluice_client_free(c);
    return NULL;
}

/* Creates the stream (retrying while the brokers register) and waits until Metadata names a
 * leader for every shard. */
static int create_stream(const struct cw_cluster *cl)
{
    struct sluice_client_opts co = {.connect_timeout_ms = 1000, .request_timeout_ms = 5000};
    sluice_client *c = NULL;
    int rc = sluice_client_new(cl->bootstrap, &co, &c);
    if (rc != SLUICE_OK) {
        fprintf(stderr, "  workload repl: connect %s: %s (%s)\n", cl->bootstrap,
                sluice_strerror(rc), sluice_last_error());
        return -1;
    }
    struct sluice_stream_opts so = {.shard_count = WR_SHARDS, .replication_factor = 3};
    uint64_t t0 = it_mono_ms();
    struct sluice_stream_info *si = NULL;
    while ((rc = sluice_stream_create(c, WR_STREAM, &so, &si)) != SLUICE_OK &&
           it_mono_ms() - t0 < WR_CHECK_WAIT_MS) {
        it_sleep_ms(200);
    }
    sluice_stream_info_free(si);
    bool led = false;
    while (rc == SLUICE_OK && !led && it_mono_ms() - t0 < WR_CHECK_WAIT_MS) {
        const char *names[1] = {WR_STREAM};
        struct sluice_metadata *md = NULL;
        led = sluice_cluster_metadata(c, names, 1, &md) == SLUICE_OK && md->n_streams == 1 &&
              md->streams[0].n_shards == WR_SHARDS;
        for (size_t k = 0; led && k < WR_SHARDS; k++) {
            led = md->streams[0].shards[k].leader >= 1;
        }
        sluice_metadata_free(md);
        if (!led) {
            it_sleep_ms(100);
        }
    }
    sluice_client_free(c);
    if (rc != SLUICE_OK || !led) {
        fprintf(stderr, "  workload repl: stream %s (rf 3, %u shards): %s\n", WR_STREAM, WR_SHARDS,
                rc != SLUICE_OK ? sluice_strerror(rc) : "no leader for every shard");
        return -1;
    }
    printf("ok workload repl: stream %s, %u shards, replication factor 3 (%llu ms)\n", WR_STREAM,
           WR_SHARDS, (unsigned long long)(it_mono_ms() - t0));
    return 0;
}

static int repl_start(struct cw_workload *w, const struct cw_cluster *cl)
{
    wr = calloc(1, sizeof(*wr));
    if (wr == NULL || (wr->outcome = calloc(WR_VALUES_CAP, 1)) == NULL ||
        (wr->round_ms = calloc(WR_ROUNDS_CAP, sizeof(uint32_t))) == NULL ||
        (wr->ack_shard = calloc(WR_VALUES_CAP, 1)) == NULL ||
        (wr->ack_seq = calloc(WR_VALUES_CAP, sizeof(uint32_t))) == NULL ||
        (wr->q_seen = calloc(WR_VALUES_CAP, 1)) == NULL ||
        (wr->q_acked = calloc(WR_VALUES_CAP, 1)) == NULL) {
        fprintf(stderr, "  workload repl: out of memory\n");
        return -1;
    }
    w->state = wr;
    struct rc_acked_at at = {.shard = wr->ack_shard, .seq = wr->ack_seq};
    rc_set_acked_at(&at);
    pthread_mutex_init(&wr->mu, NULL);
    pthread_cond_init(&wr->cv, NULL);
    snprintf(wr->bootstrap, sizeof(wr->bootstrap), "%s", cl->bootstrap);
    if (create_stream(cl) != 0) {
        return -1;
    }
    for (uint32_t i = 0; i < WR_PRODUCERS; i++) {
        if (pthread_create(&wr->thr[i], NULL, producer_main, (void *)(uintptr_t)i) != 0) {
            fprintf(stderr, "  workload repl: cannot start a producer thread\n");
            return -1;
        }
        wr->n_threads++;
    }
    if (pthread_create(&wr->thr[wr->n_threads], NULL, consumer_main, NULL) != 0) {
        fprintf(stderr, "  workload repl: cannot start the queue consumer\n");
        return -1;
    }
    wr->n_threads++;
    return 0;
}

static void repl_fault(struct cw_workload *w, const char *what)
{
    (void)w;
    pthread_mutex_lock(&wr->mu);
    if (wr->n_faults < WR_FAULTS_MAX) {
        struct wr_fault *f = &wr->fault[wr->n_faults++];
        memset(f, 0, sizeof(*f));
        snprintf(f->what, sizeof(f->what), "%s", what);
        f->t0 = it_mono_ms();
        for (uint32_t k = 0; k < WR_SHARDS; k++) {
            f->gap_ms[k] = -1;
            f->again_ms[k] = -1;
        }
    }
    pthread_mutex_unlock(&wr->mu);
}

/* Pauses the producers once what they sent is reported; -1 when they cannot within
 * WR_PAUSE_WAIT_MS (writes not accepted long after the heal). */
static int pause_producers(char *why, size_t whylen)
{
    uint64_t t0 = it_mono_ms();
    pthread_mutex_lock(&wr->mu);
    wr->pause = true;
    while (wr->paused < wr->n_threads && !wr->stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&wr->cv, &wr->mu, &ts);
        if (it_mono_ms() - t0 > WR_PAUSE_WAIT_MS) {
            pthread_mutex_unlock(&wr->mu);
            snprintf(why, whylen,
                     "the producers' writes are not all reported %u ms after the "
                     "heal (a hang?)",
                     WR_PAUSE_WAIT_MS);
            return -1;
        }
    }
    /* The fault's window ends here: what was in flight is reported (rounds still stuck since
     * the fault counted in it), and no new round starts until the resume. */
    struct wr_fault *f = wr->n_faults > 0 ? &wr->fault[wr->n_faults - 1] : NULL;
    if (f != NULL && !f->closed) {
        f->closed = true;
        for (uint32_t k = 0; k < WR_SHARDS; k++) {
            f->stalled_at_check = f->stalled_at_check || f->again_ms[k] < 0;
        }
    }
    pthread_mutex_unlock(&wr->mu);
    return 0;
}

static void resume_producers(void)
{
    pthread_mutex_lock(&wr->mu);
    wr->pause = false;
    uint64_t now = it_mono_ms();
    for (uint32_t k = 0; k < WR_SHARDS; k++) {
        wr->last_ack[k] = now; /* (the pause is no gap of the next fault's) */
    }
    pthread_cond_broadcast(&wr->cv);
    pthread_mutex_unlock(&wr->mu);
}

/* Every shard led, its three replicas in sync, as one broker's Metadata says. */
static bool shards_in_sync(sluice_client *c, char *why, size_t whylen)
{
    const char *names[1] = {WR_STREAM};
    struct sluice_metadata *md = NULL;
    int rc = sluice_cluster_metadata(c, names, 1, &md);
    bool ok = rc == SLUICE_OK && md->n_streams == 1 && md->streams[0].n_shards == WR_SHARDS;
    if (!ok) {
        snprintf(why, whylen, "Metadata: %s",
                 rc == SLUICE_OK ? "not the stream's shards" : sluice_strerror(rc));
    }
    for (size_t k = 0; ok && k < WR_SHARDS; k++) {
        const struct sluice_shard_route *r = &md->streams[0].shards[k];
        ok = r->leader >= 1 && r->n_isr == 3;
        if (!ok) {
            snprintf(why, whylen, "shard %zu: leader %d epoch %d, %u in sync", k, r->leader,
                     r->leader_epoch, r->n_isr);
        }
    }
    sluice_metadata_free(md);
    return ok;
}

/* Every broker's own copy of every shard ends at the same place with the same bytes, and the
 * ISRs are full; ends[] gets the common ends. Waits up to WR_CHECK_WAIT_MS. */
static int replicas_agree(const struct cw_cluster *cl, sluice_client *c, struct rc_shard_end *ends,
                          char *why, size_t whylen)
{
    uint64_t t0 = it_mono_ms();
    for (;;) {
        bool same = shards_in_sync(c, why, whylen);
        for (uint32_t i = 0; i < cl->n_brokers && same; i++) {
            struct rc_shard_end e[RC_SHARDS_MAX];
            uint32_t n = 0;
            same = rc_shard_ends(cl->addr[i], WR_STREAM, e, RC_SHARDS_MAX, &n, why, whylen) == 0;
            if (same && n != WR_SHARDS) {
                snprintf(why, whylen, "broker %u has %u shards", i + 1, n);
                same = false;
            }
            for (uint32_t k = 0; same && k < WR_SHARDS; k++) {
                if (i == 0) {
                    ends[k] = e[k];
                } else if (memcmp(&e[k], &ends[k], sizeof(e[k])) != 0) {
                    snprintf(why, whylen,
                             "shard %u: broker 1 has seq %" PRIu64 "..%" PRIu64 " (%" PRIu64
                             " bytes), broker %u %" PRIu64 "..%" PRIu64 " (%" PRIu64 " bytes)",
                             k, ends[k].first_seq, ends[k].next_seq, ends[k].bytes, i + 1,
                             e[k].first_seq, e[k].next_seq, e[k].bytes);
                    same = false;
                }
            }
        }
        if (same) {
            return 0;
        }
        if (it_mono_ms() - t0 > WR_CHECK_WAIT_MS) {
            char was[256];
            snprintf(was, sizeof(was), "%s", why);
            snprintf(why, whylen, "replicas not identical %u ms after the heal: %s",
                     WR_CHECK_WAIT_MS, was);
            return -1;
        }
        it_sleep_ms(100);
    }
}

static int repl_check(struct cw_workload *w, const struct cw_cluster *cl, char *why, size_t whylen)
{
    (void)w;
    why[0] = '\0';
    uint64_t t0 = it_mono_ms();
    if (pause_producers(why, whylen) != 0) {
        return -1;
    }
    pthread_mutex_lock(&wr->mu);
    uint64_t violations = wr->q_violations;
    uint32_t missing = wr->q_missing;
    if (violations > 0) {
        snprintf(why, whylen, "queue group %s: %" PRIu64 " deliveries after an OK ack; first: %s",
                 WR_QGROUP, violations, wr->q_first_violation);
    } else if (missing > 0) {
        snprintf(why, whylen,
                 "queue group %s: %" PRIu32 " acknowledged values never delivered after the "
                 "drain",
                 WR_QGROUP, missing);
    }
    pthread_mutex_unlock(&wr->mu);
    if (violations > 0 || missing > 0) {
        resume_producers();
        return -1;
    }
    uint64_t t_paused = it_mono_ms();
    struct sluice_client_opts co = {.connect_timeout_ms = 1000,
                                    .request_timeout_ms = 3000,
                                    .reconnect_backoff_ms = 50,
                                    .reconnect_backoff_max_ms = 500,
                                    .client_id = "repl-check"};
    sluice_client *c = NULL;
    int rc = sluice_client_new(cl->bootstrap, &co, &c);
    if (rc != SLUICE_OK) {
        snprintf(why, whylen, "connect %s: %s (%s)", cl->bootstrap, sluice_strerror(rc),
                 sluice_last_error());
        return -1;
    }
    struct rc_shard_end ends[WR_SHARDS];
    int ret = replicas_agree(cl, c, ends, why, whylen);
    uint64_t t_same = it_mono_ms();
    struct rc_result res;
    if (ret == 0) {
        /* (the producers are paused: the log and the outcomes stand still) */
        ret = rc_read_check(c, WR_STREAM, ends, WR_SHARDS, wr->outcome, wr->next_value,
                            WR_READ_WAIT_MS, &res, why, whylen);
    }
    sluice_client_free(c);
    if (ret == 0) {
        wr->checks++;
        printf("ok workload repl check %u: replicas identical (%" PRIu64 "/%" PRIu64 "/%" PRIu64
               " records), %" PRIu32 " values: %" PRIu32 " acknowledged all present once, %" PRIu32
               " failed (%" PRIu32 " stored), %" PRIu32 " unknown (%" PRIu32
               " stored); pause %llu + agree %llu + read %llu ms\n",
               wr->checks, ends[0].next_seq, ends[1].next_seq, ends[2].next_seq, res.values, res.ok,
               res.failed, res.failed_stored, res.unknown, res.unknown_stored,
               (unsigned long long)(t_paused - t0), (unsigned long long)(t_same - t_paused),
               (unsigned long long)(it_mono_ms() - t_same));
    }
    resume_producers();
    return ret;
}

/* The fault's kind: its name up to " (" (the broker named in it varies). */
static size_t kind_len(const char *what)
{
    const char *p = strstr(what, " (");
    return p != NULL ? (size_t)(p - what) : strlen(what);
}

/* A fault's failover: the longest stretch without an acknowledgement on any shard in its
 * window (counted from the fault, or from the shard's last ack after it), *again when it
 * ended (ms after the fault); -1 when a shard had no ack in the window at all. */
static long fault_stall_ms(const struct wr_fault *f, long *again)
{
    long gap = 0;
    *again = 0;
    for (uint32_t k = 0; k < WR_SHARDS; k++) {
        if (f->gap_ms[k] > gap) {
            gap = f->gap_ms[k];
            *again = f->again_ms[k];
        }
    }
    return f->stalled_at_check ? -1 : gap;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static void print_failovers(void)
{
    printf("\nworkload repl: failover per fault: the longest time no shard's write was "
           "acknowledged (from the fault or a later ack to the next ack; when that ended, ms "
           "after the fault):\n");
    for (uint32_t i = 0; i < wr->n_faults; i++) {
        long again;
        long stall = fault_stall_ms(&wr->fault[i], &again);
        if (stall >= 0) {
            printf("  %-66s %6ld ms (ended at %ld ms)\n", wr->fault[i].what, stall, again);
        } else {
            printf("  %-66s a shard had no ack before the check after the heal\n",
                   wr->fault[i].what);
        }
    }
    printf("workload repl: failover by kind (n, min..max ms):\n");
    for (uint32_t i = 0; i < wr->n_faults; i++) {
        const char *what = wr->fault[i].what;
        size_t len = kind_len(what);
        bool seen = false;
        for (uint32_t j = 0; j < i && !seen; j++) {
            seen = kind_len(wr->fault[j].what) == len && strncmp(wr->fault[j].what, what, len) == 0;
        }
        if (seen) {
            continue;
        }
        long lo = -1, hi = -1;
        uint32_t n = 0, stalled = 0;
        for (uint32_t j = i; j < wr->n_faults; j++) {
            const struct wr_fault *f = &wr->fault[j];
            long again;
            long stall = fault_stall_ms(f, &again);
            if (kind_len(f->what) != len || strncmp(f->what, what, len) != 0) {
                continue;
            }
            if (stall < 0) {
                stalled++;
                continue;
            }
            lo = n == 0 || stall < lo ? stall : lo;
            hi = n == 0 || stall > hi ? stall : hi;
            n++;
        }
        printf("  %-55.*s n=%-3u %6ld..%ld ms%s\n", (int)len, what, n, lo, hi,
               stalled > 0 ? " (and some with a shard not acked before the check)" : "");
    }
    if (wr->n_rounds > 0) {
        qsort(wr->round_ms, wr->n_rounds, sizeof(uint32_t), cmp_u32);
        printf("workload repl: a round of %u values written to every value reported: p50 %" PRIu32
               " ms, p99 %" PRIu32 " ms, max %" PRIu32 " ms (%" PRIu32 " rounds)\n",
               WR_ROUND, wr->round_ms[wr->n_rounds / 2], wr->round_ms[wr->n_rounds * 99 / 100],
               wr->round_ms[wr->n_rounds - 1], wr->n_rounds);
    }
}

static int repl_stop(struct cw_workload *w)
{
    (void)w;
    pthread_mutex_lock(&wr->mu);
    wr->stopping = true;
    pthread_cond_broadcast(&wr->cv);
    pthread_mutex_unlock(&wr->mu);
    for (uint32_t i = 0; i < wr->n_threads; i++) {
        pthread_join(wr->thr[i], NULL);
    }
    wr->n_threads = 0;
    uint32_t cnt[4] = {0, 0, 0, 0};
    for (uint32_t v = 0; v < wr->next_value; v++) {
        cnt[wr->outcome[v] & 3u]++;
    }
    printf("workload repl: %u producers wrote %" PRIu32 " values: %" PRIu32
           " acknowledged, %" PRIu32 " failed, %" PRIu32 " unknown; %" PRIu64 " retries, %" PRIu64
           " duplicate batches (a retry the broker had stored)\n",
           WR_PRODUCERS, wr->next_value, cnt[RC_OK], cnt[RC_FAILED], cnt[RC_UNKNOWN], wr->retries,
           wr->dup_batches);
    print_failovers();
    uint32_t missing = 0;
    for (uint32_t v = 0; v < wr->next_value; v++) {
        missing += wr->outcome[v] == RC_OK && wr->q_seen[v] == 0;
    }
    wr->q_missing = wr->q_drained ? missing : 0;
    printf("workload repl: queue group %s: %" PRIu64 " deliveries (%" PRIu64
           " again: leases a failover or a failed ack left), %" PRIu64 " acked, %" PRIu64
           " after an OK ack; drained: %s, acknowledged values never delivered: %" PRIu32 "\n",
           WR_QGROUP, wr->q_deliveries, wr->q_redelivered, wr->q_acks, wr->q_violations,
           wr->q_drained ? "yes" : "no (not within the time)", missing);
    return 0;
}

const struct cw_workload cw_repl = {.name = "repl",
                                    .start = repl_start,
                                    .fault = repl_fault,
                                    .check = repl_check,
                                    .stop = repl_stop};
