/* consumer.c - sluice_consumer: cursor reads over a stream's shards, group checkpoints.
 *
 * Per shard the consumer keeps a position (what to fetch next), `skip_below` (a fetch
 * returns whole batches, so records below the asked sequence are skipped here) and
 * `next_seq` (the sequence after the last record handed to the caller: what a commit
 * stores). poll() sends one asynchronous Fetch to every idle shard at once - without
 * waiting when the shard had more data, as a long-poll (max_wait_ms = the time left) when
 * it was at its tail - then drains decoded records round-robin and returns as soon as any
 * are there. A long-poll still in flight when poll returns is picked up by the next poll;
 * a seek bumps the shard's epoch so a stale answer is dropped.
 *
 * Memory: the fetch responses, zstd scratch buffers and attribute arrays behind the
 * records returned by one poll are released at the start of the next poll.
 *
 * A consumer without a group or shard list reads the whole stream across resharding
 * (consumer_lineage.c): a child shard after its parents, new shards found by describing.
 *
 * A consumer with a group and no shard list is a group member (consumer_group.c): its
 * shard array covers the whole stream and `held` marks the shards the coordinator gave it;
 * poll heartbeats and hands shards over between its fetches.
 *
 * Cluster mode (#14): a shard's fetch goes to its leader; NOT_LEADER (or a broken
 * connection in a cluster) marks the routes stale: poll learns them again (rate-limited by
 * the client) before it fetches, from the same positions.
 *
 * Threads: one thread uses a consumer. Fetch completions run on the client's I/O thread
 * and only hand the response over under `mu`.
 */
#include "client/consumer_int.h"

#include "common/assert.h"
#include "common/clock.h"
#include "common/compress.h"
#include "storage/batch.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- memory released at the next poll ---- */

static int release_later(struct sluice_consumer *c, void *ptr, int is_resp)
{
    if (c->rel_len == c->rel_cap) {
        size_t cap = c->rel_cap ? c->rel_cap * 2 : 16;
        struct release *nr = realloc(c->rel, cap * sizeof(*nr));
        if (nr == NULL) {
            return SL_ENOMEM;
        }
        c->rel = nr;
        c->rel_cap = cap;
    }
    c->rel[c->rel_len++] = (struct release){ptr, is_resp};
    return SL_OK;
}

static void release_now(struct sluice_consumer *c)
{
    for (size_t i = 0; i < c->rel_len; i++) {
        if (c->rel[i].is_resp) {
            sl_response_free(c->rel[i].ptr);
        } else {
            free(c->rel[i].ptr);
        }
    }
    c->rel_len = 0;
    /* Keep the head arena block for reuse. */
    struct arena_block *b = c->arena;
    while (b != NULL && b->next != NULL) {
        struct arena_block *n = b->next;
        b->next = n->next;
        free(n);
    }
    if (b != NULL) {
        b->used = 0;
    }
}

static void *arena_alloc(struct sluice_consumer *c, size_t bytes)
{
    bytes = (bytes + 15u) & ~(size_t)15u;
    struct arena_block *b = c->arena;
    if (b == NULL || b->cap - b->used < bytes) {
        size_t cap = bytes > CONSUMER_ARENA_BLOCK ? bytes : CONSUMER_ARENA_BLOCK;
        struct arena_block *nb = malloc(sizeof(*nb) + cap);
        if (nb == NULL) {
            return NULL;
        }
        nb->used = 0;
        nb->cap = cap;
        nb->next = b; /* the newest block is the head: release_now keeps only it */
        c->arena = nb;
        b = nb;
    }
    void *p = b->data + b->used;
    b->used += bytes;
    return p;
}

/* ---- positions ---- */

static void shard_set_position(struct cshard *s, const struct sluice_position *pos)
{
    s->pos = *pos;
    s->skip_below = 0;
    s->next_known = 0;
    s->ctl_run = 0;
    if (pos->kind == SLUICE_AT_SEQUENCE || pos->kind == SLUICE_AFTER_SEQUENCE) {
        s->skip_below = pos->seq + (pos->kind == SLUICE_AFTER_SEQUENCE);
        s->next_seq = s->skip_below;
        s->next_known = 1;
    }
    s->fetched_once = 0;
    s->at_tail = 0;
}

/* Drops the shard's decoded state (its memory goes to the release list). */
static void shard_drop_current(struct sluice_consumer *c, struct cshard *s)
{
    if (s->cur != NULL && release_later(c, s->cur, 1) != SL_OK) {
        sl_response_free(s->cur); /* no record of this poll can point into it yet */
    }
    if (s->scratch != NULL && release_later(c, s->scratch, 0) != SL_OK) {
        free(s->scratch);
    }
    s->cur = NULL;
    s->scratch = NULL;
    s->in_batch = 0;
    s->off = 0;
}

/* ---- fetching ---- */

static void on_fetch_done(void *ctx, int err, const char *msg, sl_response *resp)
{
    struct cshard *s = ctx;
    struct sluice_consumer *c = s->owner;
    pthread_mutex_lock(&c->mu);
    SL_ASSERT(s->fetching && c->fetches > 0);
    s->fetching = 0;
    c->fetches--;
    if (s->fetch_quick) {
        c->quick--;
    }
    if (s->fetch_epoch == s->epoch) {
        s->ready_io_ns = c->opts.trace ? sl_clock_mono_ns() : 0;
        s->ready = 1;
        s->ready_err = err;
        s->ready_resp = resp;
        snprintf(s->ready_msg, sizeof(s->ready_msg), "%s", msg != NULL ? msg : "");
        resp = NULL;
    }
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    sl_response_free(resp);
}

static int fetch_start(struct sluice_consumer *c, struct cshard *s, uint32_t max_wait_ms)
{
    Sluice__V1__Position pos = SLUICE__V1__POSITION__INIT;
    pos.kind = (Sluice__V1__PositionKind)s->pos.kind;
    pos.seq = s->pos.seq;
    pos.time_ms = s->pos.time_ms;
    Sluice__V1__Fetch body = SLUICE__V1__FETCH__INIT;
    body.stream = c->stream;
    body.shard = s->shard;
    body.position = &pos;
    body.max_bytes = c->opts.fetch_max_bytes;
    body.max_wait_ms = max_wait_ms;
    body.trace = c->opts.trace != 0;
    if (c->member != NULL) {
        body.group = c->group;
        body.member_id = c->member->id;
    }
    sl_request req = SLUICE__V1__REQUEST__INIT;
    req.body_case = SLUICE__V1__REQUEST__BODY_FETCH;
    req.fetch = &body;
    pthread_mutex_lock(&c->mu);
    s->fetching = 1;
    s->fetch_quick = max_wait_ms == 0;
    s->fetch_epoch = s->epoch;
    s->fetch_sent_ns = body.trace ? sl_clock_mono_ns() : 0;
    c->fetches++;
    c->quick += s->fetch_quick;
    pthread_mutex_unlock(&c->mu);
    int rc = sl_client_call_async_shard(c->c, c->stream, s->shard, &req, max_wait_ms,
                                        on_fetch_done, s, NULL);
    if (rc != SL_OK) {
        pthread_mutex_lock(&c->mu);
        s->fetching = 0;
        c->fetches--;
        c->quick -= s->fetch_quick;
        pthread_mutex_unlock(&c->mu);
    }
    return rc;
}

/* Takes a completed fetch of `s` (if any) and makes it the current response. Returns an
 * error the caller should report, else SL_OK. */
static int take_ready(struct sluice_consumer *c, struct cshard *s)
{
    pthread_mutex_lock(&c->mu);
    int ready = s->ready;
    int err = s->ready_err;
    sl_response *resp = s->ready_resp;
    uint64_t sent_ns = s->fetch_sent_ns, io_ns = s->ready_io_ns;
    char msg[sizeof(s->ready_msg)];
    memcpy(msg, s->ready_msg, sizeof(msg));
    s->ready = 0;
    s->ready_resp = NULL;
    pthread_mutex_unlock(&c->mu);
    if (!ready) {
        return SL_OK;
    }
    if (err == SL_OK && (resp == NULL || resp->body_case != SLUICE__V1__RESPONSE__BODY_FETCH)) {
        err = SL_EPROTO;
        snprintf(msg, sizeof(msg), "fetch: response of the wrong kind");
    }
    if (err == SL_ETRIMMED && resp != NULL && resp->body_case == SLUICE__V1__RESPONSE__BODY_FETCH) {
        uint64_t to = resp->fetch->first_seq;
        uint64_t from = s->next_known ? s->next_seq : s->pos.seq;
        struct sluice_position p = {.kind = SLUICE_AT_SEQUENCE, .seq = to};
        shard_set_position(s, &p);
        sl_response_free(resp);
        if (c->opts.on_trimmed != NULL) {
            c->opts.on_trimmed(c->opts.on_trimmed_ctx, s->shard, from, to);
        }
        return SL_OK;
    }
    if (c->lineage && (err == SL_ESHARD_CLOSED || (err == SL_ENOTFOUND && s->closed))) {
        /* the shard closed (or a closed one was removed by retention): the description
         * says where it ends and what follows */
        sl_response_free(resp);
        c->describe_now = 1;
        s->at_tail = 1;
        s->held = err == SL_ENOTFOUND ? 0 : s->held;
        return SL_OK;
    }
    if (err == SL_EFENCED && c->member != NULL) {
        /* The shard moved (or the member expired): the heartbeat says how. */
        sl_response_free(resp);
        c->member->beat_now = 1;
        return SL_OK;
    }
    if (err == SL_ENOT_LEADER || (err == SL_ECLOSED && sl_client_route_cluster(c->c))) {
        /* the shard's leader moved (or its broker went): learn the leaders, fetch again
         * from the same position (#14) */
        sl_response_free(resp);
        c->route_stale = 1;
        return SL_OK;
    }
    if (err != SL_OK) {
        sl_response_free(resp);
        sl_client_set_error("fetch %s/%u: %s", c->stream, s->shard,
                            msg[0] != '\0' ? msg : sl_strerror(err));
        return err;
    }
    s->cur = resp;
    if (c->opts.trace) { /* (a broker that predates Fetch.trace: the client's stamps only) */
        memset(s->trace, 0, sizeof(s->trace));
        s->trace[SLUICE_FT_SENT] = sent_ns;
        size_t n = resp->fetch->n_trace_ns; /* the broker's: RECEIVED .. ANSWERED */
        n = n < SLUICE_FT_ANSWERED - SLUICE_FT_RECEIVED + 1
                ? n : SLUICE_FT_ANSWERED - SLUICE_FT_RECEIVED + 1;
        for (size_t i = 0; i < n; i++) {
            s->trace[SLUICE_FT_RECEIVED + i] = resp->fetch->trace_ns[i];
        }
        s->trace[SLUICE_FT_IO_RECEIVED] = io_ns;
        s->trace[SLUICE_FT_TAKEN] = sl_clock_mono_ns();
        s->traced = 1;
    }
    s->off = 0;
    s->in_batch = 0;
    s->cur_next_seq = resp->fetch->next_seq;
    s->tail_seq = resp->fetch->tail_seq;
    s->fetched_once = 1;
    if (resp->fetch->closed) {
        /* a closed shard: its tail is its end (the broker answers a fetch there at once,
         * so it is not fetched again once read to it); a whole-stream reader describes the
         * stream now to learn the children */
        s->closed = 1;
        s->end_seq = resp->fetch->tail_seq;
        if (c->lineage && resp->fetch->next_seq >= resp->fetch->tail_seq) {
            c->describe_now = 1;
        }
    }
    return SL_OK;
}

/* ---- decoding ---- */

/* Opens the next batch of the current response that has records at or above skip_below.
 * Returns SL_ENOTFOUND at the end of the response. */
static int open_batch(struct sluice_consumer *c, struct cshard *s)
{
    const ProtobufCBinaryData *d = &s->cur->fetch->batches;
    while (s->off < d->len) {
        const uint8_t *p = d->data + s->off;
        int rc = sl_batch_validate(p, d->len - s->off, SL_BATCH_BYTES_MAX, &s->h);
        if (rc != SL_OK) {
            sl_client_set_error("fetch %s/%u: bad batch at offset %zu: %s", c->stream, s->shard,
                                s->off, sl_strerror(rc));
            return rc == SL_EAGAIN ? SL_EPROTO : rc;
        }
        if (sl_batch_last_seq(&s->h) < s->skip_below) {
            s->off += s->h.length; /* wholly before the asked position */
            continue;
        }
        if (!s->h.control) {
            s->ctl_run = 0;
        } else if (!s->ctl_run) {
            s->ctl_run = 1;
            s->ctl_from = s->h.base_seq > s->skip_below ? s->h.base_seq : s->skip_below;
        }
        if ((s->h.codec & SL_BATCH_CODEC_MASK) == SL_BATCH_CODEC_ZSTD) {
            s->scratch = malloc(s->h.records_len ? s->h.records_len : 1);
            if (s->scratch == NULL) {
                sl_client_set_error("out of memory");
                return SL_ENOMEM;
            }
        }
        rc = sl_batch_iter_init(&s->it, p, &s->h, c->z, s->scratch, s->h.records_len);
        if (rc != SL_OK) {
            sl_client_set_error("fetch %s/%u: batch %llu: %s", c->stream, s->shard,
                                (unsigned long long)s->h.base_seq, sl_strerror(rc));
            return rc;
        }
        s->in_batch = 1;
        return SL_OK;
    }
    return SL_ENOTFOUND;
}

static int fill_record(struct sluice_consumer *c, struct cshard *s, const struct sl_record_view *rv,
                       struct sluice_record *out)
{
    *out = (struct sluice_record){
        .shard = s->shard,
        .seq = rv->seq,
        .timestamp_ms = s->h.append_time_ms,
        .produced_ms = rv->timestamp_ms,
        .key = rv->key,
        .key_len = rv->key_len,
        .value = rv->value,
        .value_len = rv->value_len,
    };
    if (rv->attr_count == 0) {
        return SL_OK;
    }
    struct sluice_attr *a = arena_alloc(c, rv->attr_count * sizeof(*a));
    if (a == NULL) {
        sl_client_set_error("out of memory");
        return SL_ENOMEM;
    }
    uint32_t pos = 0, i = 0;
    struct sl_attr at;
    while (i < rv->attr_count && sl_record_attr_next(rv, &pos, &at)) {
        a[i++] = (struct sluice_attr){at.key, at.key_len, at.value, at.value_len};
    }
    out->attrs = a;
    out->attr_count = i;
    return SL_OK;
}

/* Moves up to `max` records of shard `s` into `out`; *n gets how many. */
static int drain_shard(struct sluice_consumer *c, struct cshard *s, struct sluice_record *out,
                       size_t max, size_t *n)
{
    *n = 0;
    while (s->cur != NULL && *n < max) {
        if (!s->in_batch) {
            int rc = open_batch(c, s);
            if (rc == SL_ENOTFOUND) {
                /* Response consumed: continue from where the broker says. */
                struct sluice_position p = {.kind = SLUICE_AT_SEQUENCE, .seq = s->cur_next_seq};
                uint64_t got_to = s->next_known ? s->next_seq : 0;
                uint64_t end = s->ctl_run && s->ctl_from < s->cur_next_seq ? s->ctl_from
                                                                           : s->cur_next_seq;
                s->pos = p;
                s->skip_below = s->cur_next_seq;
                s->at_tail = s->cur_next_seq >= s->tail_seq;
                s->next_seq = got_to > end ? got_to : end;
                s->next_known = 1;
                shard_drop_current(c, s);
                return SL_OK;
            }
            if (rc != SL_OK) {
                shard_drop_current(c, s); /* refetched from the same position next time */
                return rc;
            }
        }
        struct sl_record_view rv;
        int rc = sl_batch_iter_next(&s->it, &rv);
        if (rc == SL_ENOTFOUND) {
            s->in_batch = 0;
            s->off += s->h.length;
            if (s->scratch != NULL) {
                rc = release_later(c, s->scratch, 0);
                if (rc != SL_OK) {
                    return rc;
                }
                s->scratch = NULL;
            }
            continue;
        }
        if (rc != SL_OK) {
            sl_client_set_error("fetch %s/%u: corrupt record in batch %llu", c->stream, s->shard,
                                (unsigned long long)s->h.base_seq);
            shard_drop_current(c, s);
            return rc;
        }
        if (rv.seq < s->skip_below) {
            continue;
        }
        rc = fill_record(c, s, &rv, &out[*n]);
        if (rc != SL_OK) {
            return rc;
        }
        (*n)++;
        s->next_seq = rv.seq + 1;
        s->next_known = 1;
    }
    return SL_OK;
}

/* ---- poll ---- */

/* Sends a fetch to every shard with nothing buffered or in flight. */
static int fetch_idle_shards(struct sluice_consumer *c, uint32_t remaining_ms)
{
    if (sl_consumer_lineage_blocks_fetches(c) || (c->member != NULL && c->member->grow_to > 0)) {
        return SL_OK; /* the shard table grows first */
    }
    for (uint32_t i = 0; i < c->n; i++) {
        struct cshard *s = &c->shards[i];
        pthread_mutex_lock(&c->mu);
        int busy = s->fetching || s->ready;
        pthread_mutex_unlock(&c->mu);
        if (busy || !s->held || s->cur != NULL || (s->at_tail && remaining_ms == 0) ||
            sl_consumer_shard_finished(s) || !sl_consumer_shard_readable(c, s)) {
            continue;
        }
        int rc = fetch_start(c, s, s->at_tail ? remaining_ms : 0);
        if (rc != SL_OK) {
            return rc;
        }
    }
    return SL_OK;
}

/* Waits until some fetch completed, or (when only long-polls are out) until deadline;
 * with `idle` also when no fetch is out (a group member holding no shard waits for its
 * next heartbeat). Returns 0 when it gave up at the deadline with nothing ready. */
static int wait_ready(struct sluice_consumer *c, uint64_t deadline_ms, int idle)
{
    pthread_mutex_lock(&c->mu);
    int got = 0;
    for (;;) {
        for (uint32_t i = 0; i < c->n && !got; i++) {
            got = c->shards[i].ready;
        }
        if (got || (c->fetches == 0 && !idle)) {
            break;
        }
        if (c->quick > 0) {
            pthread_cond_wait(&c->cv, &c->mu);
            continue;
        }
        uint64_t now = sl_clock_mono_ms();
        if (now >= deadline_ms) {
            break;
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t ns = (uint64_t)ts.tv_nsec + (deadline_ms - now) * 1000000u;
        ts.tv_sec += (time_t)(ns / 1000000000u);
        ts.tv_nsec = (long)(ns % 1000000000u);
        pthread_cond_timedwait(&c->cv, &c->mu, &ts);
    }
    pthread_mutex_unlock(&c->mu);
    return got;
}

int sluice_consumer_poll(sluice_consumer *c, struct sluice_record *out, size_t max, size_t *count,
                         uint32_t timeout_ms)
{
    *count = 0;
    release_now(c);
    uint64_t now = sl_clock_mono_ms();
    if (c->group != NULL && c->opts.auto_commit_ms > 0 &&
        now - c->last_commit_ms >= c->opts.auto_commit_ms) {
        uint32_t fenced = 0;
        int rc = sl_consumer_commit_held(c, NULL, &fenced);
        if (rc != SL_OK) {
            return rc;
        }
    }
    uint64_t deadline = now + timeout_ms;
    for (;;) {
        if (c->member != NULL) {
            int rc = sl_cmember_step(c);
            if (rc != SL_OK) {
                return rc;
            }
        }
        int rc0 = sl_consumer_lineage_step(c);
        if (rc0 != SL_OK) {
            return rc0;
        }
        int err = SL_OK;
        for (uint32_t i = 0; i < c->n; i++) {
            int rc = c->shards[i].cur == NULL ? take_ready(c, &c->shards[i]) : SL_OK;
            err = err == SL_OK ? rc : err;
        }
        size_t n = 0;
        for (uint32_t k = 0; k < c->n && n < max; k++) {
            size_t got = 0;
            int rc = drain_shard(c, &c->shards[(c->rr + k) % c->n], out + n, max - n, &got);
            n += got;
            err = err == SL_OK ? rc : err;
        }
        c->rr = (c->rr + 1) % c->n;
        if (n > 0 || err != SL_OK) {
            *count = n;
            return n > 0 ? SL_OK : err;
        }
        now = sl_clock_mono_ms();
        uint32_t remaining = deadline > now ? (uint32_t)(deadline - now) : 0;
        uint64_t until = deadline;
        if (c->member != NULL) { /* a long-poll must not outlast the next heartbeat */
            uint64_t beat = c->member->beat_now ? now : c->member->next_beat_ms;
            until = beat < until ? beat : until;
            remaining = until > now ? (uint32_t)(until - now) : 0;
        }
        if (c->route_stale && now >= c->route_retry_at_ms &&
            sl_client_route_refresh(c->c, c->stream, false) == SL_OK) {
            c->route_stale = 0;
        } else if (c->route_stale && now >= c->route_retry_at_ms) {
            c->route_retry_at_ms = now + SL_CLIENT_REFRESH_MS;
        }
        if (c->route_stale) { /* no fetch to a leader that moved: wait for the next refresh */
            until = c->route_retry_at_ms < until ? c->route_retry_at_ms : until;
        } else {
            int rc = fetch_idle_shards(c, remaining);
            if (rc != SL_OK) {
                return rc;
            }
        }
        uint64_t describe_at = sl_consumer_lineage_wake_ms(c); /* the long-polls stay out */
        until = describe_at < until ? (describe_at > now ? describe_at : now) : until;
        if (!wait_ready(c, until, c->member != NULL || c->lineage || c->route_stale) &&
            sl_clock_mono_ms() >= deadline) {
            return SL_OK;
        }
    }
}

/* One shard's commit; a member's names it (fenced unless it holds the shard). */
static int commit_shard(struct sluice_consumer *c, struct cshard *s)
{
    Sluice__V1__CommitCheckpoint body = SLUICE__V1__COMMIT_CHECKPOINT__INIT;
    body.group = c->group;
    body.stream = c->stream;
    body.shard = s->shard;
    body.seq = s->next_seq;
    body.seek = s->sought != 0;
    if (c->member != NULL) {
        body.member_id = c->member->id;
    }
    sl_request req = SLUICE__V1__REQUEST__INIT;
    req.body_case = SLUICE__V1__REQUEST__BODY_COMMIT_CHECKPOINT;
    req.commit_checkpoint = &body;
    sl_response *resp = NULL;
    int rc = sl_client_call_group(c->c, c->stream, c->group, &req, 0, &resp);
    sl_response_free(resp);
    if (rc == SL_OK) {
        s->committed = s->next_seq;
        s->committed_known = 1;
        s->sought = 0;
    }
    return rc;
}

int sl_consumer_commit_held(struct sluice_consumer *c, const struct cshard *only,
                            uint32_t *fenced)
{
    *fenced = 0;
    if (c->group == NULL) {
        return SL_OK;
    }
    for (uint32_t i = 0; i < c->n; i++) {
        struct cshard *s = &c->shards[i];
        if ((only != NULL && s != only) || !s->held || !s->next_known ||
            (s->committed_known && s->committed == s->next_seq && !s->sought)) {
            continue;
        }
        int rc = commit_shard(c, s);
        if (rc == SL_EFENCED && c->member != NULL) {
            (*fenced)++; /* the new owner reads its records again: at least once */
            c->member->beat_now = 1;
            continue;
        }
        if (rc != SL_OK) {
            return rc;
        }
    }
    if (only == NULL) {
        c->last_commit_ms = sl_clock_mono_ms();
    }
    return SL_OK;
}

int sluice_consumer_commit(sluice_consumer *c)
{
    uint32_t fenced = 0;
    int rc = sl_consumer_commit_held(c, NULL, &fenced);
    if (rc == SL_OK && fenced > 0) {
        sl_client_set_error("%u shard(s) of %s moved to another member of group %s before "
                            "their commit: their new owner reads those records again",
                            fenced, c->stream, c->group);
        return SL_EFENCED;
    }
    return rc;
}

void sl_consumer_shard_reset(struct sluice_consumer *c, struct cshard *s,
                             const struct sluice_position *pos)
{
    pthread_mutex_lock(&c->mu);
    s->epoch++; /* a fetch in flight answers for the old position: dropped */
    sl_response_free(s->ready_resp);
    s->ready_resp = NULL;
    s->ready = 0;
    pthread_mutex_unlock(&c->mu);
    shard_drop_current(c, s);
    shard_set_position(s, pos);
}

int sluice_consumer_seek(sluice_consumer *c, uint32_t shard, const struct sluice_position *pos)
{
    int found = 0;
    for (uint32_t i = 0; i < c->n; i++) {
        struct cshard *s = &c->shards[i];
        if ((shard != SLUICE_ALL_SHARDS && s->shard != shard) || !s->held) {
            continue;
        }
        found = 1;
        sl_consumer_shard_reset(c, s, pos);
        s->sought = 1;
    }
    if (!found) {
        sl_client_set_error("shard %u is not read by this consumer", shard);
        return SL_ENOTFOUND;
    }
    return SL_OK;
}

int sluice_consumer_trace(const sluice_consumer *c, uint32_t shard, uint64_t *ns)
{
    for (uint32_t i = 0; i < c->n; i++) {
        const struct cshard *s = &c->shards[i];
        if (s->shard == shard && s->traced) {
            memcpy(ns, s->trace, sizeof(s->trace));
            return SL_OK;
        }
    }
    return SL_ENOTFOUND;
}

int sluice_consumer_caught_up(const sluice_consumer *c)
{
    if (c->member != NULL && (c->member->id[0] == '\0' || c->member->waiting > 0)) {
        return 0; /* not joined yet, or shards still to come */
    }
    for (uint32_t i = 0; i < c->n; i++) {
        const struct cshard *s = &c->shards[i];
        if (!s->held || sl_consumer_shard_finished(s)) {
            continue;
        }
        if (!s->fetched_once || s->cur != NULL || !s->next_known ||
            sl_cshard_read_to(s) < s->tail_seq) {
            return 0;
        }
    }
    return 1;
}

int sluice_consumer_shard_state(const sluice_consumer *c, uint32_t shard, uint64_t *next_seq,
                                uint64_t *tail_seq)
{
    for (uint32_t i = 0; i < c->n; i++) {
        if (c->shards[i].shard == shard && c->shards[i].held) {
            *next_seq = c->shards[i].next_seq;
            *tail_seq = c->shards[i].tail_seq;
            return SL_OK;
        }
    }
    return SL_ENOTFOUND;
}

uint32_t sluice_consumer_shard_count(const sluice_consumer *c)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < c->n; i++) {
        n += c->shards[i].held != 0;
    }
    return n;
}

uint32_t sluice_consumer_shard_id(const sluice_consumer *c, uint32_t i)
{
    for (uint32_t k = 0; k < c->n; k++) {
        if (c->shards[k].held && i-- == 0) {
            return c->shards[k].shard;
        }
    }
    SL_ASSERT(!"shard index beyond sluice_consumer_shard_count");
    return 0;
}

const char *sluice_consumer_member_id(const sluice_consumer *c, uint64_t *generation)
{
    if (generation != NULL) {
        *generation = c->member != NULL ? c->member->generation : 0;
    }
    return c->member != NULL ? c->member->id : "";
}

/* ---- lifecycle ---- */

/* Fills c->shards from the stream's description and the options' shard list. */
int sl_consumer_fetching(struct sluice_consumer *c)
{
    pthread_mutex_lock(&c->mu);
    int n = c->fetches > 0;
    pthread_mutex_unlock(&c->mu);
    return n;
}

int sl_consumer_shards_grow(struct sluice_consumer *c, uint32_t n)
{
    SL_ASSERT(c->opts.shards == NULL && !sl_consumer_fetching(c));
    if (n <= c->n) {
        return SL_OK;
    }
    struct cshard *ns = realloc(c->shards, n * sizeof(*ns));
    if (ns == NULL) {
        sl_client_set_error("out of memory");
        return SL_ENOMEM;
    }
    memset(ns + c->n, 0, (n - c->n) * sizeof(*ns));
    c->shards = ns;
    for (uint32_t i = 0; i < n; i++) { /* (ids are indexes: the array may have moved) */
        ns[i].owner = c;
        ns[i].shard = i;
    }
    c->n = n;
    return SL_OK;
}

void sl_consumer_lineage_copy(struct sluice_consumer *c, const struct sluice_stream_info *info)
{
    for (uint32_t i = 0; c->opts.shards == NULL && i < info->shards_len; i++) {
        const struct sluice_shard_info *si = &info->shards[i];
        if (si->shard >= c->n) {
            continue;
        }
        struct cshard *s = &c->shards[si->shard];
        s->closed = si->closed;
        s->end_seq = si->closed ? si->next_seq : 0;
        s->parents_len = si->parents_len <= SLUICE_SHARD_PARENTS_MAX ? si->parents_len : 0;
        memcpy(s->parents, si->parents, sizeof(s->parents));
    }
}

static int consumer_shards_init(struct sluice_consumer *c, const struct sluice_stream_info *info)
{
    uint32_t n = c->opts.shards != NULL ? c->opts.shards_len : info->shard_count;
    if (n == 0) {
        sl_client_set_error("no shards to read");
        return SL_EINVAL;
    }
    c->shards = calloc(n, sizeof(*c->shards));
    if (c->shards == NULL) {
        sl_client_set_error("out of memory");
        return SL_ENOMEM;
    }
    c->n = n;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t id = c->opts.shards != NULL ? c->opts.shards[i] : i;
        if (id >= info->shard_count) {
            sl_client_set_error("stream %s has no shard %u (it has %u)", c->stream, id,
                                info->shard_count);
            return SL_EINVAL;
        }
        c->shards[i].owner = c;
        c->shards[i].shard = id;
        c->shards[i].held = c->member == NULL; /* a member's come from the coordinator */
        shard_set_position(&c->shards[i], &c->opts.start);
    }
    sl_consumer_lineage_copy(c, info); /* a member starts a child at its beginning */
    return SL_OK;
}

/* Starts every shard that has a checkpoint in the group from it. */
static int consumer_load_checkpoints(struct sluice_consumer *c)
{
    struct sluice_checkpoint *cps = NULL;
    size_t ncp = 0;
    int rc = sluice_checkpoints_get(c->c, c->group, c->stream, &cps, &ncp);
    if (rc != SL_OK) {
        return rc;
    }
    for (size_t k = 0; k < ncp; k++) {
        for (uint32_t i = 0; i < c->n; i++) {
            struct cshard *s = &c->shards[i];
            if (s->shard == cps[k].shard) {
                struct sluice_position p = {.kind = SLUICE_AT_SEQUENCE, .seq = cps[k].seq};
                shard_set_position(s, &p);
                s->committed = cps[k].seq;
                s->committed_known = 1;
            }
        }
    }
    free(cps);
    return SL_OK;
}

int sluice_consumer_new(sluice_client *cl, const char *stream, const char *group,
                        const struct sluice_consumer_opts *opts, sluice_consumer **out)
{
    *out = NULL;
    struct sluice_stream_info *info = NULL;
    int rc = sluice_stream_describe(cl, stream, &info);
    if (rc != SL_OK) {
        return rc;
    }
    sluice_consumer *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        sluice_stream_info_free(info);
        sl_client_set_error("out of memory");
        return SL_ENOMEM;
    }
    c->c = cl;
    /* who leads the shards: one Metadata at start (not fatal: see the producer's) */
    c->route_stale = sl_client_route_refresh(cl, stream, true) != SL_OK;
    if (opts != NULL) {
        c->opts = *opts;
    }
    if (c->opts.fetch_max_bytes == 0) {
        c->opts.fetch_max_bytes = CONSUMER_FETCH_BYTES_DEFAULT;
    }
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    c->stream = strdup(stream);
    c->group = group != NULL ? strdup(group) : NULL;
    c->z = sl_zctx_new();
    rc = c->stream == NULL || (group != NULL && c->group == NULL) || c->z == NULL ? SL_ENOMEM
                                                                                  : SL_OK;
    if (rc != SL_OK) {
        sl_client_set_error("out of memory");
    }
    if (rc == SL_OK && group != NULL && c->opts.shards == NULL) {
        rc = sl_cmember_new(c, &c->opts, info->shard_count);
    }
    c->lineage = group == NULL && c->opts.shards == NULL;
    if (rc == SL_OK) {
        rc = c->lineage ? sl_consumer_lineage_init(c, info) : consumer_shards_init(c, info);
    }
    sluice_stream_info_free(info);
    if (rc == SL_OK && group != NULL && c->member == NULL) {
        rc = consumer_load_checkpoints(c);
    }
    c->opts.shards = NULL; /* borrowed only for new() */
    c->opts.instance_id = NULL;
    c->last_commit_ms = sl_clock_mono_ms();
    if (rc != SL_OK) {
        sluice_consumer_free(c);
        return rc;
    }
    *out = c;
    return SL_OK;
}

void sluice_consumer_free(sluice_consumer *c)
{
    if (c == NULL) {
        return;
    }
    sl_cmember_free(c); /* first: the shards move while the long-polls below end */
    pthread_mutex_lock(&c->mu);
    while (c->fetches > 0) { /* their callbacks point at our shards */
        pthread_cond_wait(&c->cv, &c->mu);
    }
    pthread_mutex_unlock(&c->mu);
    for (uint32_t i = 0; i < c->n; i++) {
        sl_response_free(c->shards[i].ready_resp);
        shard_drop_current(c, &c->shards[i]);
    }
    release_now(c);
    sluice_stream_info_free(c->layout_pending);
    free(c->arena);
    free(c->rel);
    free(c->shards);
    sl_zctx_free(c->z);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    free(c->stream);
    free(c->group);
    free(c);
}
