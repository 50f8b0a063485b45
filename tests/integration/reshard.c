/* reshard.c - splitting and merging shards (#16) on the real broker, driven by raw native
 * requests (ReshardStream, DescribeStream, Produce with chosen producer ids and sequences).
 *
 * Covers: a split closes the parent and opens two children over its range (describe shows
 * closed, parents, children, open_shards); an append to the closed shard stores nothing and
 * answers SHARD_CLOSED with the children, except a retry of a batch the shard stored, which
 * is answered duplicate at its first position; an ACK_NONE batch to it (whose producer hears
 * no refusal) is routed by the broker to the children; appends sent before the split on the same
 * connection are stored in the parent (the change waits for them), those after are refused
 * (ACK_NONE ones, held behind the change, are routed to the children);
 * children take the keys of their ranges; a batch whose key is outside the shard's range is
 * refused; merge of adjacent shards, refusal of non-adjacent ones, of a closed shard, of a
 * split point outside the range; a target count (UpdateShardCount); the lineage and every
 * record survive kill -9 and a restart; queue groups read the children (an ordered one only
 * after the parent is fully acknowledged); retention retires a closed shard once its close
 * is past the retention (gone from the description and the disk, its children read at once,
 * across restarts); kill -9 at random points of splits, merges and
 * target counts leaves the stream before or after each change, whole, with every record.
 */
#include "../unit/test.h"
#include "harness.h"

#include "client/conn.h"
#include "common/checksum.h"
#include "common/error.h"
#include "common/partition.h"
#include "storage/batch.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct it_broker broker;
static sluice_client *client;

/* ---- a synchronous call that keeps the response of an error too ---- */

struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done, err;
    sl_response *resp;
};

static void on_answer(void *ctx, int err, const char *msg, sl_response *resp)
{
    (void)msg;
    struct waiter *w = ctx;
    pthread_mutex_lock(&w->mu);
    w->err = err;
    w->resp = resp;
    w->done = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static void waiter_init(struct waiter *w)
{
    memset(w, 0, sizeof(*w));
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
}

static int waiter_wait(struct waiter *w, sl_response **out)
{
    pthread_mutex_lock(&w->mu);
    while (!w->done) {
        pthread_cond_wait(&w->cv, &w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    *out = w->resp;
    return w->err;
}

static int call(sl_request *req, sl_response **out)
{
    return sl_client_call_keep(client, req, 0, out);
}

/* ---- requests ---- */

static int reshard(const char *stream, int kind, uint32_t a, uint32_t b, int has_at, uint64_t at,
                   sl_response **out)
{
    Sluice__V1__ReshardStream m = SLUICE__V1__RESHARD_STREAM__INIT;
    Sluice__V1__SplitShard sp = SLUICE__V1__SPLIT_SHARD__INIT;
    Sluice__V1__MergeShards mg = SLUICE__V1__MERGE_SHARDS__INIT;
    m.stream = (char *)stream;
    if (kind == 0) {
        sp.shard = a;
        sp.has_at = has_at;
        sp.at = at;
        m.change_case = SLUICE__V1__RESHARD_STREAM__CHANGE_SPLIT;
        m.split = &sp;
    } else if (kind == 1) {
        mg.shard = a;
        mg.adjacent = b;
        m.change_case = SLUICE__V1__RESHARD_STREAM__CHANGE_MERGE;
        m.merge = &mg;
    } else {
        m.change_case = SLUICE__V1__RESHARD_STREAM__CHANGE_TARGET_SHARDS;
        m.target_shards = a;
    }
    sl_request req = SLUICE__V1__REQUEST__INIT;
    req.body_case = SLUICE__V1__REQUEST__BODY_RESHARD_STREAM;
    req.reshard_stream = &m;
    return call(&req, out);
}

static Sluice__V1__StreamInfo *describe(const char *stream, sl_response **keep)
{
    Sluice__V1__DescribeStream m = SLUICE__V1__DESCRIBE_STREAM__INIT;
    m.name = (char *)stream;
    sl_request req = SLUICE__V1__REQUEST__INIT;
    req.body_case = SLUICE__V1__REQUEST__BODY_DESCRIBE_STREAM;
    req.describe_stream = &m;
    int rc = call(&req, keep);
    return rc == SL_OK && *keep != NULL && (*keep)->describe_stream != NULL
               ? (*keep)->describe_stream->stream
               : NULL;
}

/* A batch of `n` (at most 32) records keyed `key` (NULL: no key) for producer `pid`, batch
 * `pseq`; values "<tag>-<i>". */
static uint8_t *batch_of(const char *key, const char *tag, uint32_t n, uint64_t pid,
                         uint64_t pseq, size_t *len)
{
    size_t cap = 64 + (size_t)n * 96;
    uint8_t *buf = malloc(cap);
    struct sl_batch_builder b;
    sl_batch_builder_init(&b, buf, cap);
    char val[32][48];
    for (uint32_t i = 0; i < n && i < 32; i++) {
        uint32_t kl = key != NULL ? (uint32_t)strlen(key) : 0;
        int vl = snprintf(val[i], sizeof(val[i]), "%s-%u", tag, i);
        struct sl_record rec = {.key = key, .key_len = kl, .value = val[i],
                                .value_len = (uint32_t)vl, .timestamp_ms = it_wall_ms()};
        if (sl_batch_builder_add(&b, &rec) != SL_OK) {
            free(buf);
            return NULL;
        }
    }
    if (sl_batch_builder_finish(&b, 0, 0, NULL, NULL, 0, pid, pseq, len) != SL_OK) {
        free(buf);
        return NULL;
    }
    return buf;
}

static void produce_req(sl_request *req, Sluice__V1__Produce *m, const char *stream,
                        uint32_t shard, uint8_t *batch, size_t len)
{
    sluice__v1__produce__init(m);
    m->stream = (char *)stream;
    m->shard = shard;
    m->ack = SLUICE__V1__ACK_MODE__ACK_DURABLE;
    m->batch.data = batch;
    m->batch.len = len;
    sluice__v1__request__init(req);
    req->body_case = SLUICE__V1__REQUEST__BODY_PRODUCE;
    req->produce = m;
}

static int produce(const char *stream, uint32_t shard, const char *key, const char *tag,
                   uint32_t n, uint64_t pid, uint64_t pseq, sl_response **out)
{
    size_t len = 0;
    uint8_t *batch = batch_of(key, tag, n, pid, pseq, &len);
    if (batch == NULL) {
        return SL_ENOMEM;
    }
    sl_request req;
    Sluice__V1__Produce m;
    produce_req(&req, &m, stream, shard, batch, len);
    int rc = call(&req, out);
    free(batch);
    return rc;
}

/* A key (by prefix search) whose hash falls in [lo, hi]. */
static void key_in(uint64_t lo, uint64_t hi, char *out, size_t cap)
{
    for (uint32_t i = 0;; i++) {
        snprintf(out, cap, "key-%u", i);
        uint64_t h = sl_partition_hash(out, strlen(out));
        if (h >= lo && h <= hi) {
            return;
        }
    }
}

static uint64_t fetch_count(const char *stream, uint32_t shard)
{
    sl_response *r = NULL;
    Sluice__V1__StreamInfo *si = describe(stream, &r);
    uint64_t n = si != NULL && shard < si->n_shards
                     ? si->shards[shard]->next_seq - si->shards[shard]->first_seq
                     : UINT64_MAX;
    sl_response_free(r);
    return n;
}

/* Sends a batch of `n` records keyed `key` (NULL: none) to `shard` with ACK_NONE: no
 * answer comes. SL_OK or the send's error. */
static int produce_noreply(const char *stream, uint32_t shard, const char *key, const char *tag,
                           uint32_t n)
{
    size_t len = 0;
    uint8_t *batch = batch_of(key, tag, n, 0, 0, &len);
    if (batch == NULL) {
        return SL_ENOMEM;
    }
    sl_request req;
    Sluice__V1__Produce m;
    produce_req(&req, &m, stream, shard, batch, len);
    m.ack = SLUICE__V1__ACK_MODE__ACK_NONE;
    int rc = sl_client_send_noreply(client, &req);
    free(batch);
    return rc;
}

/* The records shards a and b hold together once they reach `want` (an ACK_NONE append
 * answers nobody: it shows only in the shards), or what they hold after 10 s. */
static uint64_t wait_pair_holds(const char *stream, uint32_t a, uint32_t b, uint64_t want)
{
    uint64_t until = it_mono_ms() + 10000u * IT_SLOWDOWN;
    uint64_t have = fetch_count(stream, a) + fetch_count(stream, b);
    while (have < want && it_mono_ms() < until) {
        it_sleep_ms(20);
        have = fetch_count(stream, a) + fetch_count(stream, b);
    }
    return have;
}

/* ---- the tests ---- */

TEST(split_closes_the_parent_and_opens_two_children)
{
    CHECK_EQ(it_create_stream(client, "rs", 2), SL_OK);
    sl_response *r = NULL;
    /* two batches stored in shard 0 by producer 77 (keys of shard 0's range) */
    char key[32];
    uint64_t lo0, hi0;
    sl_partition_range(0, 2, &lo0, &hi0);
    key_in(lo0, hi0, key, sizeof(key));
    CHECK_EQ(produce("rs", 0, key, "a", 1, 77, 1, &r), SL_OK);
    CHECK(r != NULL && r->produce != NULL && r->produce->base_seq == 0);
    sl_response_free(r);
    CHECK_EQ(produce("rs", 0, key, "b", 1, 77, 2, &r), SL_OK);
    sl_response_free(r);

    CHECK_EQ(reshard("rs", 0, 0, 0, 0, 0, &r), SL_OK);
    CHECK(r != NULL && r->reshard_stream != NULL);
    Sluice__V1__ReshardStreamResponse *rr = r->reshard_stream;
    CHECK_EQ(rr->n_closed, 1u);
    CHECK_EQ(rr->closed[0], 0u);
    CHECK_EQ(rr->n_opened, 2u);
    CHECK(rr->opened[0] == 2 && rr->opened[1] == 3);
    Sluice__V1__StreamInfo *si = rr->stream;
    CHECK(si != NULL && si->shard_count == 4 && si->open_shards == 3 && si->n_shards == 4);
    CHECK(si->shards[0]->closed && si->shards[0]->n_children == 2);
    CHECK(si->shards[0]->children[0] == 2 && si->shards[0]->children[1] == 3);
    CHECK(!si->shards[2]->closed && si->shards[2]->n_parents == 1 && si->shards[2]->parents[0] == 0);
    CHECK(si->shards[2]->hash_start == lo0 && si->shards[3]->hash_end == hi0);
    CHECK(si->shards[2]->hash_end + 1 == si->shards[3]->hash_start);
    CHECK_EQ(si->shards[0]->next_seq, 2u); /* the parent keeps what it stored */
    sl_response_free(r);

    /* a new batch to the closed shard: refused with the children, nothing stored */
    CHECK_EQ(produce("rs", 0, key, "c", 1, 78, 1, &r), SL_ESHARD_CLOSED);
    CHECK(r != NULL && r->produce != NULL && r->produce->n_children == 2);
    CHECK(r->produce->children[0] == 2 && r->produce->children[1] == 3);
    CHECK(r->message != NULL && strstr(r->message, "closed") != NULL);
    sl_response_free(r);
    CHECK_EQ(fetch_count("rs", 0), 2u);
    /* a retry of a batch the shard stored: duplicate, at its position */
    CHECK_EQ(produce("rs", 0, key, "b", 1, 77, 2, &r), SL_OK);
    CHECK(r != NULL && r->produce != NULL && r->produce->duplicate && r->produce->base_seq == 1);
    sl_response_free(r);

    /* ACK_NONE to the closed shard: its producer would never hear the refusal, so the
     * broker routes the records to the children itself (a keyed batch and an unkeyed one) */
    uint64_t kids_before = fetch_count("rs", 2) + fetch_count("rs", 3);
    CHECK_EQ(produce_noreply("rs", 0, key, "n", 5), SL_OK);
    CHECK_EQ(produce_noreply("rs", 0, NULL, "n", 5), SL_OK);
    CHECK_EQ(wait_pair_holds("rs", 2, 3, kids_before + 10), kids_before + 10);
    CHECK_EQ(fetch_count("rs", 0), 2u);

    /* the children take their ranges' keys, and refuse the other's */
    char k2[32], k3[32];
    sl_response *d = NULL;
    si = describe("rs", &d);
    CHECK(si != NULL);
    key_in(si->shards[2]->hash_start, si->shards[2]->hash_end, k2, sizeof(k2));
    key_in(si->shards[3]->hash_start, si->shards[3]->hash_end, k3, sizeof(k3));
    sl_response_free(d);
    CHECK_EQ(produce("rs", 2, k2, "d", 1, 79, 1, &r), SL_OK);
    sl_response_free(r);
    CHECK_EQ(produce("rs", 3, k3, "e", 1, 79, 1, &r), SL_OK);
    sl_response_free(r);
    CHECK_EQ(produce("rs", 2, k3, "f", 1, 80, 1, &r), SL_EINVAL);
    sl_response_free(r);
}

TEST(appends_sent_before_the_split_end_in_the_parent)
{
    /* 20 batches to shard 1 in flight, the split right behind them on the same connection,
     * then 5 more: the split waits for the 20, the 5 are refused. */
    enum { BEFORE = 20, AFTER = 5 };
    struct waiter w[BEFORE + AFTER + 1];
    uint8_t *batches[BEFORE + AFTER];
    uint64_t lo1, hi1;
    sl_partition_range(1, 2, &lo1, &hi1);
    char key[32];
    key_in(lo1, hi1, key, sizeof(key));
    uint64_t before = fetch_count("rs", 1);
    for (int i = 0; i < BEFORE + AFTER + 1; i++) {
        waiter_init(&w[i]);
    }
    for (int i = 0; i < BEFORE + AFTER + 1; i++) {
        sl_request req;
        Sluice__V1__Produce m;
        Sluice__V1__ReshardStream rm = SLUICE__V1__RESHARD_STREAM__INIT;
        Sluice__V1__SplitShard sp = SLUICE__V1__SPLIT_SHARD__INIT;
        int b = i < BEFORE ? i : i - 1;
        if (i == BEFORE) {
            sp.shard = 1;
            rm.stream = "rs";
            rm.change_case = SLUICE__V1__RESHARD_STREAM__CHANGE_SPLIT;
            rm.split = &sp;
            sluice__v1__request__init(&req);
            req.body_case = SLUICE__V1__REQUEST__BODY_RESHARD_STREAM;
            req.reshard_stream = &rm;
        } else {
            size_t len = 0;
            batches[b] = batch_of(key, "g", 8, 90, (uint64_t)b + 1, &len);
            CHECK(batches[b] != NULL);
            produce_req(&req, &m, "rs", 1, batches[b], len);
        }
        CHECK_EQ(sl_client_call_async(client, &req, 0, on_answer, &w[i]), SL_OK);
        for (int k = 0; i == BEFORE && k < 2; k++) {
            /* ACK_NONE right behind the split: held while it waits, then routed to the
             * children by the broker (its producer hears no refusal) */
            CHECK_EQ(produce_noreply("rs", 1, key, "q", 8), SL_OK);
        }
    }
    uint32_t kids[2] = {0, 0};
    int ok = 0, closed = 0, split_ok = 0;
    for (int i = 0; i < BEFORE + AFTER + 1; i++) { /* every answer, before any check */
        sl_response *r = NULL;
        int rc = waiter_wait(&w[i], &r);
        if (i < BEFORE) {
            ok += rc == SL_OK;
        } else if (i == BEFORE) {
            split_ok = rc == SL_OK && r->reshard_stream->n_closed == 1 &&
                       r->reshard_stream->closed[0] == 1 && r->reshard_stream->n_opened == 2;
            if (split_ok) {
                kids[0] = r->reshard_stream->opened[0];
                kids[1] = r->reshard_stream->opened[1];
            }
        } else {
            closed += rc == SL_ESHARD_CLOSED;
        }
        sl_response_free(r);
    }
    CHECK(split_ok);
    for (int b = 0; b < BEFORE + AFTER; b++) {
        free(batches[b]);
    }
    CHECK_EQ(ok, BEFORE);
    CHECK_EQ(closed, AFTER);
    CHECK_EQ(fetch_count("rs", 1), before + BEFORE * 8u);
    CHECK_EQ(wait_pair_holds("rs", kids[0], kids[1], 16), 16u);
}

TEST(merge_and_the_refusals)
{
    sl_response *r = NULL;
    /* shards now: 0, 1 closed; 2, 3 (from 0), 4, 5 (from 1) open */
    CHECK_EQ(reshard("rs", 1, 2, 4, 0, 0, &r), SL_EINVAL); /* 2 and 4 are not neighbours */
    CHECK(r != NULL && r->message != NULL && strstr(r->message, "adjacent") != NULL);
    sl_response_free(r);
    CHECK_EQ(reshard("rs", 1, 0, 2, 0, 0, &r), SL_ESHARD_CLOSED);
    sl_response_free(r);
    CHECK_EQ(reshard("rs", 0, 9, 0, 0, 0, &r), SL_ENOTFOUND);
    sl_response_free(r);
    CHECK_EQ(reshard("rs", 0, 2, 0, 1, 0, &r), SL_EINVAL); /* at the start of the range */
    sl_response_free(r);
    CHECK_EQ(reshard("nope", 0, 0, 0, 0, 0, &r), SL_ENOTFOUND);
    sl_response_free(r);
    CHECK_EQ(reshard("rs", 1, 3, 2, 0, 0, &r), SL_OK); /* either order */
    CHECK(r->reshard_stream->n_closed == 2 && r->reshard_stream->n_opened == 1 &&
          r->reshard_stream->opened[0] == 6);
    Sluice__V1__ShardInfo *m = r->reshard_stream->stream->shards[6];
    CHECK(m->n_parents == 2 && !m->closed);
    CHECK(m->hash_start == 0);
    sl_response_free(r);
    /* UpdateShardCount: 3 open shards now (6, 4, 5) -> 2 */
    CHECK_EQ(reshard("rs", 2, 2, 0, 0, 0, &r), SL_OK);
    CHECK_EQ(r->reshard_stream->stream->open_shards, 2u);
    sl_response_free(r);
    CHECK_EQ(reshard("rs", 2, 2, 0, 0, 0, &r), SL_EINVAL); /* already there */
    sl_response_free(r);
}

TEST(lineage_and_records_survive_kill9)
{
    sl_response *r = NULL;
    Sluice__V1__StreamInfo *si = describe("rs", &r);
    CHECK(si != NULL);
    uint32_t count = si->shard_count, open = si->open_shards;
    uint64_t seqs[16];
    for (uint32_t i = 0; i < count && i < 16; i++) {
        seqs[i] = si->shards[i]->next_seq;
    }
    sl_response_free(r);
    sluice_client_free(client);
    client = NULL;
    CHECK_EQ(it_broker_kill9(&broker), 0);
    CHECK_EQ(it_broker_restart(&broker), 0);
    CHECK_EQ(it_connect(&broker, &client), SL_OK);
    si = describe("rs", &r);
    CHECK(si != NULL && si->shard_count == count && si->open_shards == open);
    for (uint32_t i = 0; i < count && i < 16; i++) {
        CHECK_EQ(si->shards[i]->next_seq, seqs[i]);
        CHECK_EQ(si->shards[i]->closed, (protobuf_c_boolean)(i < count && si->shards[i]->n_children > 0));
    }
    CHECK(si->shards[0]->closed && si->shards[1]->closed);
    sl_response_free(r);
    /* a closed shard still refuses, after the restart too */
    char key[32];
    uint64_t lo0, hi0;
    sl_partition_range(0, 2, &lo0, &hi0);
    key_in(lo0, hi0, key, sizeof(key));
    CHECK_EQ(produce("rs", 0, key, "h", 1, 91, 1, &r), SL_ESHARD_CLOSED);
    sl_response_free(r);
}

/* Checks a described stream's lineage: the open shards partition the hash space, each
 * closed one names children that exist and cover it; returns the records it holds. */
static int lineage_ok(const Sluice__V1__StreamInfo *si, uint64_t *records)
{
    uint64_t next = 0; /* the open shards, in range order: where the next must start */
    bool done = false;
    *records = 0;
    for (uint32_t k = 0; k < si->n_shards && !done; k++) {
        const Sluice__V1__ShardInfo *found = NULL;
        for (uint32_t i = 0; i < si->n_shards; i++) {
            if (!si->shards[i]->closed && si->shards[i]->hash_start == next) {
                found = si->shards[i];
            }
        }
        if (found == NULL) {
            fprintf(stderr, "  no open shard starts at %" PRIu64 "\n", next);
            return -1;
        }
        done = found->hash_end == UINT64_MAX;
        next = found->hash_end + 1;
    }
    uint32_t open = 0;
    for (uint32_t i = 0; i < si->n_shards; i++) {
        const Sluice__V1__ShardInfo *sh = si->shards[i];
        open += !sh->closed;
        *records += sh->next_seq - sh->first_seq;
        if (sh->closed && (sh->n_children == 0 || sh->children[0] >= si->n_shards ||
                           si->shards[sh->children[0]]->hash_start > sh->hash_start)) {
            fprintf(stderr, "  closed shard %u without valid children\n", i);
            return -1;
        }
    }
    return done && open == si->open_shards ? 0 : -1;
}

struct bg_reshard {
    struct waiter w;
    Sluice__V1__ReshardStream m;
    Sluice__V1__SplitShard sp;
    Sluice__V1__MergeShards mg;
};

/* kill -9 while a change is under way, at random points of it (before, during, after its
 * metadata write), again and again, with durable appends between: after every restart the
 * stream is before or after the change (after when the change was answered), the lineage
 * is whole, and every acknowledged record is there exactly once. */
/* Moves the close time of shard `id` of `stream` back by `back_ms` in its stream.meta (the
 * broker stopped), the checksum redone as the broker writes it (docs/FORMAT.md §5): what the
 * file says once that much time has passed since the change. */
static int age_close(const char *stream, uint32_t id, uint64_t back_ms)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/streams/%s/stream.meta", broker.data, stream);
    FILE *fp = fopen(path, "r");
    if (fp == NULL) {
        return -1;
    }
    static char body[1 << 16], out[(1 << 16) + 64];
    size_t n = fread(body, 1, sizeof(body) - 1, fp);
    fclose(fp);
    body[n] = '\0';
    char want[32];
    snprintf(want, sizeof(want), "\nshard.%u=", id);
    char *line = strstr(body, want);
    char *check = strstr(body, "\ncheck=");
    if (line == NULL || check == NULL) {
        return -1;
    }
    char *f = line + 1; /* the 7th field: after the 6th comma */
    for (int commas = 0; commas < 6 && f != NULL; commas++) {
        f = strchr(f, ',');
        f = f != NULL ? f + 1 : NULL;
    }
    if (f == NULL) {
        return -1;
    }
    char *rest = NULL;
    unsigned long long closed = strtoull(f, &rest, 10);
    if (closed <= back_ms) {
        return -1;
    }
    check[1] = '\0'; /* the body the checksum covers ends with the newline before check= */
    int w = snprintf(out, sizeof(out), "%.*s%llu%s", (int)(f - body), body, closed - back_ms, rest);
    w += snprintf(out + w, sizeof(out) - (size_t)w, "check=%016" PRIx64 "\n",
                  sl_checksum64(out, (size_t)w));
    fp = fopen(path, "w");
    if (fp == NULL) {
        return -1;
    }
    fwrite(out, 1, (size_t)w, fp);
    return fclose(fp) == 0 ? 0 : -1;
}

/* Retention retires a closed shard once its close is past the stream's retention: the
 * broker (restarted with the close moved back by the retention and an hour) drops it from
 * the description and removes its directory; a whole-stream consumer from the start reads
 * the children at once (a gone parent counts as read) and never the gone shard's records;
 * it stays gone across a restart, and the stream takes appends and changes as before. */
TEST(retention_retires_a_closed_shard)
{
    CHECK_EQ(it_create_stream(client, "rr", 2), SL_OK);
    sl_response *r = NULL;
    char key[32];
    uint64_t lo0, hi0;
    sl_partition_range(0, 2, &lo0, &hi0);
    key_in(lo0, hi0, key, sizeof(key));
    CHECK_EQ(produce("rr", 0, key, "old", 4, 301, 1, &r), SL_OK);
    sl_response_free(r);
    CHECK_EQ(reshard("rr", 0, 0, 0, 0, 0, &r), SL_OK); /* 0 -> 2, 3 */
    sl_response_free(r);
    Sluice__V1__StreamInfo *si = describe("rr", &r);
    CHECK(si != NULL && si->n_shards == 4);
    uint32_t hours = si->retention_hours;
    char k2[32];
    key_in(si->shards[2]->hash_start, si->shards[2]->hash_end, k2, sizeof(k2));
    sl_response_free(r);
    CHECK_EQ(produce("rr", 2, k2, "new", 3, 302, 1, &r), SL_OK);
    sl_response_free(r);

    sluice_client_free(client);
    client = NULL;
    CHECK_EQ(it_broker_stop(&broker), 0);
    CHECK_EQ(age_close("rr", 0, ((uint64_t)hours + 1) * 3600000u), 0);
    setenv("SLUICE_RETENTION_CHECK_MS", "1s", 1); /* (kept by the later restarts) */
    CHECK_EQ(it_broker_restart(&broker), 0);
    CHECK_EQ(it_connect(&broker, &client), SL_OK);
    uint64_t deadline = it_mono_ms() + 20000u * IT_SLOWDOWN;
    uint32_t listed = 4;
    while (listed == 4 && it_mono_ms() < deadline) {
        si = describe("rr", &r);
        CHECK(si != NULL);
        listed = (uint32_t)si->n_shards;
        sl_response_free(r);
        if (listed == 4) {
            it_sleep_ms(100);
        }
    }
    for (int round = 0; round < 2; round++) {
        si = describe("rr", &r);
        CHECK(si != NULL && si->shard_count == 4 && si->n_shards == 3 && si->open_shards == 3);
        CHECK(si->shards[0]->shard == 1 && si->shards[1]->shard == 2 && si->shards[2]->shard == 3);
        CHECK(si->shards[1]->n_parents == 1 && si->shards[1]->parents[0] == 0);
        sl_response_free(r);
        char dir[256];
        snprintf(dir, sizeof(dir), "%s/streams/rr/0", broker.data);
        CHECK(access(dir, F_OK) != 0);
        /* a whole-stream reader: shard 2's records at once, none of the gone shard's */
        sluice_consumer *c = NULL;
        struct sluice_consumer_opts o = {.start = {.kind = SLUICE_TRIM_HORIZON}};
        CHECK_EQ(sluice_consumer_new(client, "rr", NULL, &o, &c), SL_OK);
        struct sluice_record recs[16];
        uint32_t got = 0, from_gone = 0;
        uint64_t until = it_mono_ms() + 10000u * IT_SLOWDOWN;
        while (got < 3 && it_mono_ms() < until) {
            size_t n = 0;
            CHECK_EQ(sluice_consumer_poll(c, recs, 16, &n, 200), SL_OK);
            for (size_t i = 0; i < n; i++) {
                got++;
                from_gone += recs[i].shard == 0;
            }
        }
        size_t more = 0;
        CHECK_EQ(sluice_consumer_poll(c, recs, 16, &more, 300), SL_OK);
        sluice_consumer_free(c);
        CHECK(got == 3 && from_gone == 0 && more == 0);
        if (round == 0) {
            sluice_client_free(client);
            client = NULL;
            CHECK_EQ(it_broker_kill9(&broker), 0);
            CHECK_EQ(it_broker_restart(&broker), 0);
            CHECK_EQ(it_connect(&broker, &client), SL_OK);
        }
    }
    /* the stream goes on: appends to the children, a change of a child */
    CHECK_EQ(produce("rr", 2, k2, "later", 1, 302, 2, &r), SL_OK);
    sl_response_free(r);
    CHECK_EQ(reshard("rr", 0, 2, 0, 0, 0, &r), SL_OK);
    CHECK(r != NULL && r->reshard_stream != NULL && r->reshard_stream->stream->shard_count == 6);
    sl_response_free(r);
}

TEST(kill9_during_changes_leaves_before_or_after)
{
    const uint32_t rounds = getenv("SLUICE_IT_LONG") != NULL ? 60 : 12;
    CHECK_EQ(it_create_stream(client, "rc", 2), SL_OK);
    uint64_t acked = 0, pid = 500;
    uint32_t after = 0, answered_n = 0;
    srand(1234);
    for (uint32_t round = 0; round < rounds; round++) {
        sl_response *d = NULL;
        Sluice__V1__StreamInfo *si = describe("rc", &d);
        CHECK(si != NULL);
        uint32_t before = si->shard_count;
        /* four records to every open shard, acknowledged durable */
        uint32_t first_open = UINT32_MAX, right = UINT32_MAX;
        for (uint32_t i = 0; i < si->n_shards; i++) {
            const Sluice__V1__ShardInfo *sh = si->shards[i];
            if (sh->closed) {
                continue;
            }
            if (sh->hash_start == 0) {
                first_open = i;
            }
            char key[32];
            key_in(sh->hash_start, sh->hash_end, key, sizeof(key));
            sl_response *r = NULL;
            CHECK_EQ(produce("rc", i, key, "k", 4, ++pid, 1, &r), SL_OK);
            sl_response_free(r);
            acked += 4;
        }
        CHECK(first_open != UINT32_MAX);
        uint64_t next_start = si->shards[first_open]->hash_end + 1;
        for (uint32_t i = 0; i < si->n_shards; i++) {
            if (!si->shards[i]->closed && si->shards[i]->hash_start == next_start) {
                right = i;
            }
        }
        uint32_t open = si->open_shards;
        sl_response_free(d);
        /* the change, and a kill -9 somewhere in it */
        struct bg_reshard *bg = calloc(1, sizeof(*bg));
        waiter_init(&bg->w);
        sluice__v1__reshard_stream__init(&bg->m);
        sluice__v1__split_shard__init(&bg->sp);
        sluice__v1__merge_shards__init(&bg->mg);
        bg->m.stream = "rc";
        int kind = round % 3;
        if (kind == 0 || (kind == 1 && right == UINT32_MAX)) {
            bg->sp.shard = first_open;
            bg->m.change_case = SLUICE__V1__RESHARD_STREAM__CHANGE_SPLIT;
            bg->m.split = &bg->sp;
        } else if (kind == 1) {
            bg->mg.shard = first_open;
            bg->mg.adjacent = right;
            bg->m.change_case = SLUICE__V1__RESHARD_STREAM__CHANGE_MERGE;
            bg->m.merge = &bg->mg;
        } else {
            bg->m.change_case = SLUICE__V1__RESHARD_STREAM__CHANGE_TARGET_SHARDS;
            bg->m.target_shards = open >= 6 ? 2 : open + 3;
        }
        sl_request req = SLUICE__V1__REQUEST__INIT;
        req.body_case = SLUICE__V1__REQUEST__BODY_RESHARD_STREAM;
        req.reshard_stream = &bg->m;
        CHECK_EQ(sl_client_call_async(client, &req, 0, on_answer, &bg->w), SL_OK);
        it_sleep_ms((uint32_t)(rand() % 6));
        CHECK_EQ(it_broker_kill9(&broker), 0);
        sl_response *r = NULL;
        int answered = waiter_wait(&bg->w, &r) == SL_OK;
        sl_response_free(r);
        free(bg);
        sluice_client_free(client);
        client = NULL;
        CHECK_EQ(it_broker_restart(&broker), 0);
        CHECK_EQ(it_connect(&broker, &client), SL_OK);
        si = describe("rc", &d);
        CHECK(si != NULL);
        uint64_t records = 0;
        CHECK_EQ(lineage_ok(si, &records), 0);
        CHECK_EQ(records, acked); /* none lost, none twice */
        CHECK(!answered || si->shard_count > before); /* answered: durable */
        after += si->shard_count > before;
        answered_n += answered;
        sl_response_free(d);
    }
    fprintf(stderr, "  %u kills: %u found the change made (%u of them answered first), %u not\n",
            rounds, after, answered_n, rounds - after);
}

/* Receives up to `max` on `group` without waiting; SIZE_MAX on an error. */
static size_t receive(const char *group, uint32_t max, struct sluice_message **msgs)
{
    size_t n = 0;
    *msgs = NULL;
    if (sluice_queue_receive(client, "rsq", group, max, 0, 30000, msgs, &n) != SL_OK) {
        return SIZE_MAX;
    }
    return n;
}

static int ack_all(const char *group, struct sluice_message *m, size_t n)
{
    const char *receipts[64];
    int results[64];
    for (size_t i = 0; i < n && i < 64; i++) {
        receipts[i] = m[i].receipt;
    }
    return sluice_queue_ack(client, "rsq", group, receipts, n, results);
}

/* Queue groups take the children too; an ordered group delivers a child's records only once
 * its parent is closed and every record of it acknowledged (per-key order across a split),
 * an unordered one at once. */
TEST(queue_groups_read_the_children)
{
    CHECK_EQ(it_create_stream(client, "rsq", 2), SL_OK);
    /* one lease at a time: what the group reads first is what it delivers first */
    struct sluice_queue_group_opts ordered = {.ordered = 1, .max_inflight = 1};
    CHECK_EQ(sluice_queue_group_create(client, "rsq", "fifo", &ordered), SL_OK);
    CHECK_EQ(sluice_queue_group_create(client, "rsq", "any", NULL), SL_OK);
    char key[32], other[32];
    uint64_t lo0, hi0, lo1, hi1;
    sl_partition_range(0, 2, &lo0, &hi0);
    sl_partition_range(1, 2, &lo1, &hi1);
    key_in(lo0, lo0 + (hi0 - lo0) / 4, key, sizeof(key)); /* in the first child after a split */
    key_in(lo1, hi1, other, sizeof(other));
    sl_response *r = NULL;
    /* One record in shard 1, received first: the groups' round robin over the shards then
     * starts its next turn past shard 1 - at the children, before the parent, which is what
     * an ordered group must not deliver first. */
    CHECK_EQ(produce("rsq", 1, other, "x", 1, 99, 1, &r), SL_OK);
    sl_response_free(r);
    for (int g = 0; g < 2; g++) {
        struct sluice_message *m = NULL;
        size_t n = receive(g == 0 ? "fifo" : "any", 10, &m);
        CHECK_EQ(n, 1u);
        CHECK_EQ(ack_all(g == 0 ? "fifo" : "any", m, n), SL_OK);
        sluice_messages_free(m, n);
    }
    CHECK_EQ(produce("rsq", 0, key, "p", 3, 100, 1, &r), SL_OK); /* 3 records in the parent */
    sl_response_free(r);
    CHECK_EQ(reshard("rsq", 0, 0, 0, 0, 0, &r), SL_OK); /* 0 -> 2, 3 */
    sl_response_free(r);
    sl_response *d = NULL;
    Sluice__V1__StreamInfo *si = describe("rsq", &d);
    CHECK(si != NULL);
    uint32_t child = sl_partition_hash(key, strlen(key)) >= si->shards[3]->hash_start ? 3 : 2;
    sl_response_free(d);
    CHECK_EQ(child, 2u);
    CHECK_EQ(produce("rsq", child, key, "c", 2, 101, 1, &r), SL_OK); /* 2 more, in the child */
    sl_response_free(r);

    /* ordered: one record of the key at a time, the parent's first, then the child's */
    const char *want[5] = {"p-0", "p-1", "p-2", "c-0", "c-1"};
    for (int i = 0; i < 5; i++) {
        struct sluice_message *m = NULL;
        size_t n = receive("fifo", 10, &m);
        CHECK_EQ(n, 1u);
        CHECK(m[0].value_len == strlen(want[i]) && memcmp(m[0].value, want[i], 3) == 0);
        CHECK_EQ(m[0].shard, i < 3 ? 0u : child);
        struct sluice_message *more = NULL;
        size_t none = receive("fifo", 10, &more);
        sluice_messages_free(more, none == SIZE_MAX ? 0 : none);
        CHECK_EQ(none, 0u); /* nothing else of the key while it is leased */
        CHECK_EQ(ack_all("fifo", m, n), SL_OK);
        sluice_messages_free(m, n);
    }
    /* unordered: all five at once, both shards */
    struct sluice_message *m = NULL;
    size_t n = receive("any", 10, &m);
    CHECK_EQ(n, 5u);
    CHECK_EQ(ack_all("any", m, n), SL_OK);
    sluice_messages_free(m, n);
    struct sluice_queue_stats qs;
    CHECK_EQ(sluice_queue_stats(client, "rsq", "fifo", &qs), SL_OK);
    CHECK_EQ(qs.visible, 0u);
    sluice_queue_stats_fini(&qs);
}

int main(void)
{
    int pf = it_preflight();
    if (pf != 0) {
        return pf;
    }
    if (it_broker_start(&broker, NULL) != 0 || it_connect(&broker, &client) != SL_OK) {
        it_broker_cleanup(&broker);
        return 1;
    }
    RUN(split_closes_the_parent_and_opens_two_children);
    RUN(appends_sent_before_the_split_end_in_the_parent);
    RUN(merge_and_the_refusals);
    RUN(lineage_and_records_survive_kill9);
    RUN(queue_groups_read_the_children);
    RUN(retention_retires_a_closed_shard);
    RUN(kill9_during_changes_leaves_before_or_after);
    sluice_client_free(client);
    int stop = it_broker_stop(&broker);
    it_broker_cleanup(&broker);
    if (stop != 0) {
        fprintf(stderr, "the broker did not stop cleanly\n");
        return 1;
    }
    TEST_END();
}
