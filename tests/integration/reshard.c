/* reshard.c - splitting and merging shards (#16) on the real broker, driven by raw native
 * requests (ReshardStream, DescribeStream, Produce with chosen producer ids and sequences).
 *
 * Covers: a split closes the parent and opens two children over its range (describe shows
 * closed, parents, children, open_shards); an append to the closed shard stores nothing and
 * answers SHARD_CLOSED with the children, except a retry of a batch the shard stored, which
 * is answered duplicate at its first position; appends sent before the split on the same
 * connection are stored in the parent (the change waits for them), those after are refused;
 * children take the keys of their ranges; a batch whose key is outside the shard's range is
 * refused; merge of adjacent shards, refusal of non-adjacent ones, of a closed shard, of a
 * split point outside the range; a target count (UpdateShardCount); the lineage and every
 * record survive kill -9 and a restart; a stream with a queue group is refused.
 */
#include "../unit/test.h"
#include "harness.h"

#include "client/conn.h"
#include "common/error.h"
#include "common/partition.h"
#include "storage/batch.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

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
    struct waiter w;
    waiter_init(&w);
    *out = NULL;
    int rc = sl_client_call_async(client, req, 0, on_answer, &w);
    return rc != SL_OK ? rc : waiter_wait(&w, out);
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
    }
    int ok = 0, closed = 0, split_ok = 0;
    for (int i = 0; i < BEFORE + AFTER + 1; i++) { /* every answer, before any check */
        sl_response *r = NULL;
        int rc = waiter_wait(&w[i], &r);
        if (i < BEFORE) {
            ok += rc == SL_OK;
        } else if (i == BEFORE) {
            split_ok = rc == SL_OK && r->reshard_stream->n_closed == 1 &&
                       r->reshard_stream->closed[0] == 1;
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

TEST(a_stream_with_queue_groups_is_refused)
{
    CHECK_EQ(it_create_stream(client, "rsq", 2), SL_OK);
    CHECK_EQ(sluice_queue_group_create(client, "rsq", "workers", NULL), SL_OK);
    sl_response *r = NULL;
    CHECK_EQ(reshard("rsq", 0, 0, 0, 0, 0, &r), SL_EUNSUPPORTED);
    CHECK(r != NULL && r->message != NULL && strstr(r->message, "queue group") != NULL);
    sl_response_free(r);
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
    RUN(a_stream_with_queue_groups_is_refused);
    sluice_client_free(client);
    int stop = it_broker_stop(&broker);
    it_broker_cleanup(&broker);
    if (stop != 0) {
        fprintf(stderr, "the broker did not stop cleanly\n");
        return 1;
    }
    TEST_END();
}
