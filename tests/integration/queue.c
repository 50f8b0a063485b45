/* queue.c - queue groups and subscriptions over the real broker.
 *
 * Covers: every record delivered and acked exactly once by competing
 * receives on a 2-shard stream; a lease that expires makes the record
 * visible again with delivery_count 2; nack (now and delayed) and extend;
 * after max_deliveries the record goes to the dead-letter stream with its
 * source attributes and is not delivered again, and redrive brings it back; acks survive kill -9 (no
 * acked record is delivered again after the restart; unacked in-flight ones
 * are, with their counts); three subscriptions each receive all of 100,000
 * records; three subscriptions each receive every record,
 * one with a filter receives exactly the matching ones; an invalid filter is
 * refused with a message; zstd batches are delivered after a restart; a
 * group far behind holds at most max_inflight
 * leases; an ordered group hands each key's records out one at a time, in
 * order, to 4 competing receivers; a record whose sluice.dedup_id was
 * stored within the window is acknowledged but not stored again; a record
 * with sluice.not_before is not delivered before that time; 24 body-filtered
 * groups on one stream (matched through the stream's filter set, one match
 * per record shared by the groups) each receive exactly their records, and
 * groups created after others were deleted (their filter slots reused, the
 * records' answers already remembered) receive exactly theirs.
 */
#include "../unit/test.h"
#include "harness.h"

#include "common/error.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

#define N 1000u

static struct it_broker broker;
static sluice_client *client;
static atomic_uint produce_errors;

static void on_delivery(void *ctx, int err, uint32_t shard, uint64_t seq)
{
    (void)ctx;
    (void)shard;
    (void)seq;
    if (err != SL_OK) {
        atomic_fetch_add(&produce_errors, 1);
    }
}

/* One record to produce, filled by a generator from its index. */
struct gen_rec {
    char key[16], val[160], attr[2][32];
    int kl, vl;
    struct sluice_attr at[2];
    uint32_t na;
};
typedef void (*gen_fn)(uint32_t i, struct gen_rec *r);

/* Produces the records gen makes for indexes [from, to) and waits for all. */
static int produce_range(const char *stream, uint32_t from, uint32_t to, gen_fn gen)
{
    sluice_producer *p = NULL;
    struct sluice_producer_opts po = {.linger_ms = 1, .block_when_full = 1};
    if (sluice_producer_new(client, stream, &po, &p) != SL_OK) {
        return -1;
    }
    for (uint32_t i = from; i < to; i++) {
        struct gen_rec r = {.na = 0};
        gen(i, &r);
        if (sluice_produce(p, r.key, (size_t)r.kl, r.val, (size_t)r.vl, r.at, r.na, on_delivery,
                           NULL) != SL_OK) {
            sluice_producer_free(p);
            return -1;
        }
    }
    int rc = sluice_producer_flush(p, 30000);
    sluice_producer_free(p);
    return rc == SL_OK && atomic_load(&produce_errors) == 0 ? 0 : -1;
}

/* "m<i>" with attributes kind=even|odd and n=<i>. */
static void gen_plain(uint32_t i, struct gen_rec *r)
{
    r->kl = snprintf(r->key, sizeof(r->key), "k%u", i % 53);
    r->vl = snprintf(r->val, sizeof(r->val), "m%u", i);
    int nl = snprintf(r->attr[1], sizeof(r->attr[1]), "%u", i);
    const char *kind = i % 2 == 0 ? "even" : "odd";
    r->at[0] = (struct sluice_attr){"kind", 4, kind, (uint32_t)strlen(kind)};
    r->at[1] = (struct sluice_attr){"n", 1, r->attr[1], (uint32_t)nl};
    r->na = 2;
}

/* Produces N records "m<i>" with attribute kind=even|odd and n=<i>. */
static int produce_n(const char *stream, uint32_t from)
{
    return produce_range(stream, from, from + N, gen_plain);
}

/* "m<i>", or a JSON value that starts {"i":<i>, */
static uint32_t value_index(const struct sluice_message *m)
{
    char buf[32];
    uint32_t n = m->value_len < sizeof(buf) - 1 ? m->value_len : (uint32_t)sizeof(buf) - 1;
    memcpy(buf, m->value, n);
    buf[n] = '\0';
    return (uint32_t)strtoul(buf + (buf[0] == '{' ? 5 : 1), NULL, 10);
}

/* Receives and acks until `want` distinct records came or `ms` passed;
 * counts each record index in seen[]. */
static uint32_t drain(const char *stream, const char *group, uint8_t *seen, uint32_t want,
                      uint32_t ms)
{
    uint32_t got = 0;
    uint64_t end = it_mono_ms() + ms;
    while (got < want && it_mono_ms() < end) {
        struct sluice_message *msgs = NULL;
        size_t n = 0;
        if (sluice_queue_receive(client, stream, group, 100, 500, 0, &msgs, &n) != SL_OK) {
            break;
        }
        const char *receipts[100];
        for (size_t i = 0; i < n; i++) {
            uint32_t idx = value_index(&msgs[i]);
            if (idx < 4 * N) {
                seen[idx]++;
            }
            receipts[i] = msgs[i].receipt;
            got++;
        }
        if (n > 0 && sluice_queue_ack(client, stream, group, receipts, n, NULL) != SL_OK) {
            fprintf(stderr, "  ack failed: %s\n", sluice_last_error());
        }
        sluice_messages_free(msgs, n);
    }
    return got;
}

TEST(every_record_once)
{
    CHECK_EQ(it_create_stream(client, "jobs", 2), SL_OK);
    CHECK_EQ(sluice_queue_group_create(client, "jobs", "workers", NULL), SL_OK);
    CHECK_EQ(produce_n("jobs", 0), 0);
    static uint8_t seen[4 * N];
    memset(seen, 0, sizeof(seen));
    CHECK_EQ(drain("jobs", "workers", seen, N, 20000), N);
    for (uint32_t i = 0; i < N; i++) {
        CHECK_EQ(seen[i], 1);
    }
    struct sluice_queue_stats st;
    memset(&st, 0, sizeof(st));
    CHECK_EQ(sluice_queue_stats(client, "jobs", "workers", &st), SL_OK);
    CHECK_EQ(st.visible, 0);
    CHECK_EQ(st.inflight, 0);
    sluice_queue_stats_fini(&st);
    /* Nothing more to receive. */
    struct sluice_message *msgs = NULL;
    size_t n = 9;
    CHECK_EQ(sluice_queue_receive(client, "jobs", "workers", 10, 100, 0, &msgs, &n), SL_OK);
    CHECK_EQ(n, 0);
}

TEST(expiry_nack_extend)
{
    CHECK_EQ(it_create_stream(client, "lease", 1), SL_OK);
    struct sluice_queue_group_opts o = {.visibility_timeout_ms = 300};
    CHECK_EQ(sluice_queue_group_create(client, "lease", "g", &o), SL_OK);
    CHECK_EQ(produce_n("lease", 0), 0);
    struct sluice_message *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    CHECK_EQ(sluice_queue_receive(client, "lease", "g", 3, 1000, 0, &a, &na), SL_OK);
    CHECK_EQ(na, 3);
    CHECK_EQ(a[0].delivery_count, 1);
    /* Extend the first, nack the second with a delay, let the third expire. */
    const char *r0 = a[0].receipt, *r1 = a[1].receipt;
    CHECK_EQ(sluice_queue_extend(client, "lease", "g", &r0, 1, 5000, NULL), SL_OK);
    CHECK_EQ(sluice_queue_nack(client, "lease", "g", &r1, 1, 1500, NULL), SL_OK);
    it_sleep_ms(700);
    /* Only the expired third record comes back now, with count 2. */
    CHECK_EQ(sluice_queue_receive(client, "lease", "g", 1, 1000, 0, &b, &nb), SL_OK);
    CHECK_EQ(nb, 1);
    CHECK_EQ(b[0].seq, a[2].seq);
    CHECK_EQ(b[0].delivery_count, 2);
    /* The old receipt of the third record is stale now. */
    int res = 0;
    const char *r2 = a[2].receipt;
    CHECK_EQ(sluice_queue_ack(client, "lease", "g", &r2, 1, &res), SL_ENOTFOUND);
    CHECK_EQ(res, SL_ENOTFOUND);
    const char *rb = b[0].receipt;
    CHECK_EQ(sluice_queue_ack(client, "lease", "g", &rb, 1, NULL), SL_OK);
    sluice_messages_free(b, nb);
    /* After the nack delay the second record is back. */
    it_sleep_ms(1200);
    CHECK_EQ(sluice_queue_receive(client, "lease", "g", 1, 1000, 0, &b, &nb), SL_OK);
    CHECK_EQ(nb, 1);
    CHECK_EQ(b[0].seq, a[1].seq);
    CHECK_EQ(b[0].delivery_count, 2);
    /* The extended first one is still leased: acking its receipt works. */
    CHECK_EQ(sluice_queue_ack(client, "lease", "g", &r0, 1, NULL), SL_OK);
    sluice_messages_free(a, na);
    sluice_messages_free(b, nb);
}

TEST(dead_letter_after_max_deliveries)
{
    CHECK_EQ(it_create_stream(client, "dl", 1), SL_OK);
    struct sluice_queue_group_opts o = {.max_deliveries = 2};
    CHECK_EQ(sluice_queue_group_create(client, "dl", "g", &o), SL_OK);
    CHECK_EQ(produce_n("dl", 0), 0);
    uint64_t seq0 = UINT64_MAX;
    for (int round = 0; round < 2; round++) {
        struct sluice_message *m = NULL;
        size_t n = 0;
        CHECK_EQ(sluice_queue_receive(client, "dl", "g", 1, 1000, 0, &m, &n), SL_OK);
        CHECK_EQ(n, 1);
        CHECK_EQ(m[0].delivery_count, (uint32_t)round + 1);
        seq0 = m[0].seq;
        const char *r = m[0].receipt;
        CHECK_EQ(sluice_queue_nack(client, "dl", "g", &r, 1, 0, NULL), SL_OK);
        sluice_messages_free(m, n);
    }
    /* The third time it is dead-lettered: the next record comes instead. */
    struct sluice_message *m = NULL;
    size_t n = 0;
    CHECK_EQ(sluice_queue_receive(client, "dl", "g", 1, 1000, 0, &m, &n), SL_OK);
    CHECK_EQ(n, 1);
    CHECK(m[0].seq != seq0);
    sluice_messages_free(m, n);
    /* It sits in the DLQ with its source named. */
    it_sleep_ms(200);
    CHECK_EQ(sluice_queue_group_create(client, "dl.g.dlq", "inspect", NULL), SL_OK);
    CHECK_EQ(sluice_queue_receive(client, "dl.g.dlq", "inspect", 10, 2000, 0, &m, &n), SL_OK);
    CHECK_EQ(n, 1);
    char want_seq[24];
    snprintf(want_seq, sizeof(want_seq), "%" PRIu64, seq0);
    int found_seq = 0, found_stream = 0;
    for (uint32_t i = 0; i < m[0].attr_count; i++) {
        const struct sluice_attr *a = &m[0].attrs[i];
        if (a->key_len == 17 && memcmp(a->key, "sluice.source_seq", 17) == 0 &&
            a->value_len == strlen(want_seq) && memcmp(a->value, want_seq, a->value_len) == 0) {
            found_seq = 1;
        }
        if (a->key_len == 20 && memcmp(a->key, "sluice.source_stream", 20) == 0 &&
            a->value_len == 2 && memcmp(a->value, "dl", 2) == 0) {
            found_stream = 1;
        }
    }
    CHECK(found_seq && found_stream);
    sluice_messages_free(m, n);
    struct sluice_queue_stats st;
    memset(&st, 0, sizeof(st));
    CHECK_EQ(sluice_queue_stats(client, "dl", "g", &st), SL_OK);
    CHECK_EQ(st.dead_lettered, 1);
    sluice_queue_stats_fini(&st);
    /* Redrive puts it back on "dl": the group receives it again (a new
     * record, so a fresh delivery count), without the sluice.* attributes. */
    static uint8_t seen[4 * N];
    memset(seen, 0, sizeof(seen));
    /* N - 2: one is dead-lettered, one is still leased from above */
    CHECK_EQ(drain("dl", "g", seen, N - 2, 20000), N - 2);
    uint64_t moved = 0;
    CHECK_EQ(sluice_queue_redrive(client, "dl", "g", 0, &moved), SL_OK);
    CHECK_EQ(moved, 1);
    CHECK_EQ(sluice_queue_receive(client, "dl", "g", 10, 2000, 0, &m, &n), SL_OK);
    CHECK_EQ(n, 1);
    CHECK_EQ(m[0].delivery_count, 1);
    CHECK(m[0].seq >= N);
    for (uint32_t i = 0; i < m[0].attr_count; i++) {
        CHECK(!(m[0].attrs[i].key_len >= 7 && memcmp(m[0].attrs[i].key, "sluice.", 7) == 0));
    }
    sluice_messages_free(m, n);
    CHECK_EQ(sluice_queue_redrive(client, "dl", "g", 0, &moved), SL_OK);
    CHECK_EQ(moved, 0); /* nothing left in the DLQ */
}

/* Regression: after a restart the broker's decompression scratch is empty,
 * and a queue group stalled on a zstd batch (receive returned nothing). */
TEST(zstd_batches_after_restart)
{
    struct sluice_stream_opts so = {.shard_count = 1, .compression = SLUICE_COMPRESSION_ZSTD};
    CHECK_EQ(sluice_stream_create(client, "zq", &so, NULL), SL_OK);
    CHECK_EQ(sluice_queue_group_create(client, "zq", "g", NULL), SL_OK);
    CHECK_EQ(produce_n("zq", 0), 0);
    CHECK_EQ(it_broker_stop(&broker), 0);
    CHECK_EQ(it_broker_restart(&broker), 0);
    static uint8_t seen[4 * N];
    memset(seen, 0, sizeof(seen));
    CHECK_EQ(drain("zq", "g", seen, N, 20000), N);
    for (uint32_t i = 0; i < N; i++) {
        CHECK_EQ(seen[i], 1);
    }
}

TEST(acks_survive_kill9)
{
    CHECK_EQ(it_create_stream(client, "durable", 2), SL_OK);
    CHECK_EQ(sluice_queue_group_create(client, "durable", "g", NULL), SL_OK);
    CHECK_EQ(produce_n("durable", 0), 0);
    static uint8_t acked[4 * N], redelivered[4 * N];
    memset(acked, 0, sizeof(acked));
    memset(redelivered, 0, sizeof(redelivered));
    CHECK_EQ(drain("durable", "g", acked, N / 2, 20000), N / 2);
    /* Lease 10 more without acking: in flight at the crash. */
    struct sluice_message *m = NULL;
    size_t n = 0;
    CHECK_EQ(sluice_queue_receive(client, "durable", "g", 10, 1000, 0, &m, &n), SL_OK);
    CHECK_EQ(n, 10);
    uint32_t inflight_idx[10];
    for (size_t i = 0; i < n; i++) {
        inflight_idx[i] = value_index(&m[i]);
    }
    sluice_messages_free(m, n);
    CHECK_EQ(it_broker_kill9(&broker), 0);
    CHECK_EQ(it_broker_restart(&broker), 0);
    uint32_t got = drain("durable", "g", redelivered, N - N / 2, 30000);
    CHECK_EQ(got, N - N / 2);
    for (uint32_t i = 0; i < N; i++) {
        CHECK_EQ(acked[i] + redelivered[i], 1); /* no acked record came back */
    }
    for (int i = 0; i < 10; i++) {
        CHECK_EQ(redelivered[inflight_idx[i]], 1); /* in-flight ones did */
    }
}

TEST(fan_out_and_filters)
{
    CHECK_EQ(it_create_stream(client, "events", 2), SL_OK);
    struct sluice_queue_group_opts even = {.filter = "{\"kind\": [\"even\"]}"};
    struct sluice_queue_group_opts big = {.filter = "{\"n\": [{\"numeric\": [\">=\", 900]}]}"};
    CHECK_EQ(sluice_queue_group_create(client, "events", "all", NULL), SL_OK);
    CHECK_EQ(sluice_queue_group_create(client, "events", "even", &even), SL_OK);
    CHECK_EQ(sluice_queue_group_create(client, "events", "big", &big), SL_OK);
    struct sluice_queue_group_opts bad = {.filter = "{\"n\": [{\"numeric\": [\"~\", 1]}]}"};
    CHECK_EQ(sluice_queue_group_create(client, "events", "bad", &bad), SL_EINVAL);
    CHECK(strstr(sluice_last_error(), "numeric") != NULL);
    CHECK_EQ(produce_n("events", 0), 0);
    static uint8_t s_all[4 * N], s_even[4 * N], s_big[4 * N];
    memset(s_all, 0, sizeof(s_all));
    memset(s_even, 0, sizeof(s_even));
    memset(s_big, 0, sizeof(s_big));
    CHECK_EQ(drain("events", "all", s_all, N, 20000), N);
    CHECK_EQ(drain("events", "even", s_even, N / 2, 20000), N / 2);
    CHECK_EQ(drain("events", "big", s_big, 100, 20000), 100);
    /* One more (empty) receive walks the frontier past the last odd record. */
    struct sluice_message *m = NULL;
    size_t n = 9;
    CHECK_EQ(sluice_queue_receive(client, "events", "even", 10, 200, 0, &m, &n), SL_OK);
    CHECK_EQ(n, 0);
    for (uint32_t i = 0; i < N; i++) {
        CHECK_EQ(s_all[i], 1);
        CHECK_EQ(s_even[i], i % 2 == 0 ? 1 : 0);
        CHECK_EQ(s_big[i], i >= 900 ? 1 : 0);
    }
    struct sluice_queue_stats st;
    memset(&st, 0, sizeof(st));
    CHECK_EQ(sluice_queue_stats(client, "events", "even", &st), SL_OK);
    CHECK_EQ(st.filtered_out, N / 2);
    sluice_queue_stats_fini(&st);
}

/* {"i": <i>, "detail": {"kind": "even"|"odd", "tags": ["t<i % 3>", "all"],
 * "price": <i / 10>.5}}, no attributes. */
static void gen_json(uint32_t i, struct gen_rec *r)
{
    r->kl = snprintf(r->key, sizeof(r->key), "k%u", i % 53);
    r->vl = snprintf(r->val, sizeof(r->val),
                     "{\"i\":%u,\"detail\":{\"kind\":\"%s\",\"tags\":[\"t%u\",\"all\"],"
                     "\"price\":%u.5}}",
                     i, i % 2 == 0 ? "even" : "odd", i % 3, i / 10);
}

/* Filters on the value's JSON: nested fields, arrays, numbers; the scope
 * survives a restart (the group's state keeps it). */
TEST(body_filters)
{
    CHECK_EQ(it_create_stream(client, "orders", 2), SL_OK);
    struct sluice_queue_group_opts even = {
        .filter = "{\"detail\": {\"kind\": [\"even\"], \"tags\": [\"t0\"]}}",
        .filter_body = 1};
    struct sluice_queue_group_opts cheap = {
        .filter = "{\"detail\": {\"price\": [{\"numeric\": [\"<\", 10]}]}}", .filter_body = 1};
    struct sluice_queue_group_opts attrs = {.filter = "{\"detail\": {\"kind\": [\"even\"]}}"};
    CHECK_EQ(sluice_queue_group_create(client, "orders", "even-t0", &even), SL_OK);
    CHECK_EQ(sluice_queue_group_create(client, "orders", "cheap", &cheap), SL_OK);
    /* Nested fields are refused on attributes, saying which scope takes them. */
    CHECK_EQ(sluice_queue_group_create(client, "orders", "flat", &attrs), SL_EINVAL);
    CHECK(strstr(sluice_last_error(), "body scope") != NULL);
    CHECK_EQ(it_broker_kill9(&broker), 0);
    CHECK_EQ(it_broker_restart(&broker), 0);
    struct sluice_queue_stats st;
    memset(&st, 0, sizeof(st));
    CHECK_EQ(sluice_queue_stats(client, "orders", "even-t0", &st), SL_OK);
    CHECK_EQ(st.filter_body, 1);
    sluice_queue_stats_fini(&st);
    CHECK_EQ(produce_range("orders", 0, N, gen_json), 0);
    static uint8_t s_even[4 * N], s_cheap[4 * N];
    memset(s_even, 0, sizeof(s_even));
    memset(s_cheap, 0, sizeof(s_cheap));
    uint32_t want_even = 0;
    for (uint32_t i = 0; i < N; i++) {
        want_even += i % 2 == 0 && i % 3 == 0 ? 1 : 0;
    }
    CHECK_EQ(drain("orders", "even-t0", s_even, want_even, 20000), want_even);
    CHECK_EQ(drain("orders", "cheap", s_cheap, 100, 20000), 100);
    struct sluice_message *m = NULL;
    size_t n = 9;
    CHECK_EQ(sluice_queue_receive(client, "orders", "even-t0", 10, 200, 0, &m, &n), SL_OK);
    CHECK_EQ(n, 0);
    for (uint32_t i = 0; i < N; i++) {
        CHECK_EQ(s_even[i], i % 2 == 0 && i % 3 == 0 ? 1 : 0);
        CHECK_EQ(s_cheap[i], i < 100 ? 1 : 0);
    }
}

/* {"i": <i>, "source": "s<i % 8>", "detail": {"kind": "even"|"odd", "tags":
 * ["t<i % 3>", "all"], "price": <i / 10>.5}}: what an event bus carries. */
static void gen_bus(uint32_t i, struct gen_rec *r)
{
    r->kl = snprintf(r->key, sizeof(r->key), "k%u", i % 53);
    r->vl = snprintf(r->val, sizeof(r->val),
                     "{\"i\":%u,\"source\":\"s%u\",\"detail\":{\"kind\":\"%s\","
                     "\"tags\":[\"t%u\",\"all\"],\"price\":%u.5}}",
                     i, i % 8, i % 2 == 0 ? "even" : "odd", i % 3, i / 10);
}

#define BUS_GROUPS 24u

/* Group g's pattern (a rule of the bus) and whether it matches record i. */
static void bus_rule(uint32_t g, char *name, size_t name_len, char *pat, size_t pat_len)
{
    snprintf(name, name_len, "r%u", g);
    if (g < 16) { /* filed in the index: source, or kind */
        snprintf(pat, pat_len, "{\"source\": [\"s%u\"], \"detail\": {\"kind\": [\"%s\"]}}",
                 g % 8, g < 8 ? "even" : "odd");
        return;
    }
    static const char *const others[] = {
        "{\"source\": [{\"prefix\": \"s1\"}]}",
        "{\"detail\": {\"price\": [{\"numeric\": [\"<\", 10]}]}}",
        "{\"$or\": [{\"source\": [\"s2\"]}, {\"detail\": {\"tags\": [\"t1\"]}}]}",
        "{\"detail\": {\"tags\": [\"t2\"]}, \"source\": [\"s3\", \"s5\"]}",
        "{\"detail\": {\"tags\": [\"all\"]}}",
        "{\"source\": [\"S1\"]}",
        "{\"detail\": {\"kind\": [{\"anything-but\": \"even\"}]}}",
        "{\"source\": [\"s7\"]}",
    };
    snprintf(pat, pat_len, "%s", others[g - 16]);
}

static bool bus_wants(uint32_t g, uint32_t i)
{
    bool even = i % 2 == 0;
    if (g < 16) {
        return i % 8 == g % 8 && even == (g < 8);
    }
    switch (g - 16) {
    case 0:
        return i % 8 == 1;
    case 1:
        return i / 10 < 10;
    case 2:
        return i % 8 == 2 || i % 3 == 1;
    case 3:
        return i % 3 == 2 && (i % 8 == 3 || i % 8 == 5);
    case 4:
        return true;
    case 5:
        return false; /* exact strings are case-sensitive */
    case 6:
        return !even;
    default:
        return i % 8 == 7;
    }
}

static int bus_check(const char *group, uint32_t g)
{
    static uint8_t seen[4 * N];
    memset(seen, 0, sizeof(seen));
    uint32_t want = 0;
    for (uint32_t i = 0; i < N; i++) {
        want += bus_wants(g, i) ? 1 : 0;
    }
    uint32_t got = drain("bus", group, seen, want, 20000);
    /* One more receive: nothing else is delivered. */
    struct sluice_message *m = NULL;
    size_t n = 9;
    if (sluice_queue_receive(client, "bus", group, 10, 100, 0, &m, &n) != SL_OK || n != 0) {
        fprintf(stderr, "  %s: %zu records more than its %u\n", group, n, want);
        sluice_messages_free(m, n);
        return -1;
    }
    for (uint32_t i = 0; i < N; i++) {
        if (seen[i] != (bus_wants(g, i) ? 1 : 0)) {
            fprintf(stderr, "  %s: record %u seen %u times\n", group, i, seen[i]);
            return -1;
        }
    }
    return got == want ? 0 : -1;
}

/* Many rules on one bus: one match per record for all of them (filter
 * sets, filter_set.h), each group getting exactly its records; deleted
 * groups' slots reused by new groups that read records whose answers the
 * broker already holds (for the old set of filters: never to be reused). */
TEST(many_rules_on_one_stream)
{
    CHECK_EQ(it_create_stream(client, "bus", 2), SL_OK);
    char name[16], pat[256];
    for (uint32_t g = 0; g < BUS_GROUPS; g++) {
        bus_rule(g, name, sizeof(name), pat, sizeof(pat));
        struct sluice_queue_group_opts o = {.filter = pat, .filter_body = 1};
        CHECK_EQ(sluice_queue_group_create(client, "bus", name, &o), SL_OK);
    }
    CHECK_EQ(produce_range("bus", 0, N, gen_bus), 0);
    for (uint32_t g = 0; g < BUS_GROUPS; g++) {
        bus_rule(g, name, sizeof(name), pat, sizeof(pat));
        CHECK_EQ(bus_check(name, g), 0);
    }
    /* r0 (the first slot, indexed) and r16 (walked) go; two new groups take
     * their slots and read the same records from the start. */
    CHECK_EQ(sluice_queue_group_delete(client, "bus", "r0"), SL_OK);
    CHECK_EQ(sluice_queue_group_delete(client, "bus", "r16"), SL_OK);
    for (uint32_t g = 22; g < BUS_GROUPS; g++) {
        bus_rule(g, name, sizeof(name), pat, sizeof(pat));
        struct sluice_queue_group_opts o = {.filter = pat, .filter_body = 1};
        char nn[16];
        snprintf(nn, sizeof(nn), "n%u", g);
        CHECK_EQ(sluice_queue_group_create(client, "bus", nn, &o), SL_OK);
        CHECK_EQ(bus_check(nn, g), 0);
    }
}

/* Three subscriptions on one topic each receive every one of 100,000
 * records (each drained by its own receives; the log is shared). */
#define FAN 100000u

static int fan_drain(const char *group, uint8_t *seen)
{
    uint32_t got = 0;
    uint64_t end = it_mono_ms() + 90000;
    while (got < FAN && it_mono_ms() < end) {
        struct sluice_message *msgs = NULL;
        size_t n = 0;
        if (sluice_queue_receive(client, "fan", group, 1000, 500, 0, &msgs, &n) != SL_OK) {
            return -1;
        }
        const char *receipts[1000];
        for (size_t i = 0; i < n; i++) {
            uint32_t idx = value_index(&msgs[i]);
            if (idx < FAN) {
                seen[idx]++;
            }
            receipts[i] = msgs[i].receipt;
        }
        int rc = n > 0 ? sluice_queue_ack(client, "fan", group, receipts, n, NULL) : SL_OK;
        sluice_messages_free(msgs, n);
        if (rc != SL_OK) {
            return -1;
        }
        got += (uint32_t)n;
    }
    return (int)got;
}

TEST(three_subscriptions_each_get_all_100k)
{
    CHECK_EQ(it_create_stream(client, "fan", 2), SL_OK);
    const char *subs[3] = {"s1", "s2", "s3"};
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(sluice_queue_group_create(client, "fan", subs[i], NULL), SL_OK);
    }
    sluice_producer *p = NULL;
    struct sluice_producer_opts po = {.linger_ms = 5, .block_when_full = 1};
    CHECK_EQ(sluice_producer_new(client, "fan", &po, &p), SL_OK);
    for (uint32_t i = 0; i < FAN; i++) {
        char key[16], val[16];
        int kl = snprintf(key, sizeof(key), "k%u", i % 101);
        int vl = snprintf(val, sizeof(val), "m%u", i);
        CHECK_EQ(sluice_produce(p, key, (size_t)kl, val, (size_t)vl, NULL, 0, on_delivery, NULL),
                 SL_OK);
    }
    CHECK_EQ(sluice_producer_flush(p, 60000), SL_OK);
    sluice_producer_free(p);
    CHECK_EQ(atomic_load(&produce_errors), 0);
    uint8_t *seen = calloc(FAN, 1);
    CHECK(seen != NULL);
    for (int s = 0; s < 3; s++) {
        memset(seen, 0, FAN);
        int got = fan_drain(subs[s], seen);
        uint32_t once = 0;
        for (uint32_t i = 0; i < FAN; i++) {
            once += seen[i] == 1 ? 1 : 0;
        }
        if (got != (int)FAN || once != FAN) {
            fprintf(stderr, "  %s: got %d, %u exactly once\n", subs[s], got, once);
            free(seen);
            CHECK(0);
        }
    }
    free(seen);
}

TEST(leases_bounded_far_behind)
{
    CHECK_EQ(it_create_stream(client, "backlog", 1), SL_OK);
    struct sluice_queue_group_opts o = {.max_inflight = 50};
    CHECK_EQ(sluice_queue_group_create(client, "backlog", "g", &o), SL_OK);
    for (uint32_t w = 0; w < 3; w++) {
        CHECK_EQ(produce_n("backlog", w * N), 0);
    }
    struct sluice_message *m = NULL;
    size_t n = 0;
    CHECK_EQ(sluice_queue_receive(client, "backlog", "g", 100, 200, 0, &m, &n), SL_OK);
    CHECK_EQ(n, 50); /* capped by max_inflight */
    sluice_messages_free(m, n);
    struct sluice_queue_stats st;
    memset(&st, 0, sizeof(st));
    CHECK_EQ(sluice_queue_stats(client, "backlog", "g", &st), SL_OK);
    CHECK_EQ(st.inflight, 50);
    CHECK_EQ(st.visible, 3 * N - 50);
    sluice_queue_stats_fini(&st);
}

/* "v<i>" with sluice.dedup_id id-<i>, all on key "k". */
static void gen_dedup(uint32_t i, struct gen_rec *r)
{
    r->kl = snprintf(r->key, sizeof(r->key), "k");
    r->vl = snprintf(r->val, sizeof(r->val), "v%u", i);
    int il = snprintf(r->attr[0], sizeof(r->attr[0]), "id-%u", i);
    r->at[0] = (struct sluice_attr){"sluice.dedup_id", 15, r->attr[0], (uint32_t)il};
    r->na = 1;
}

static int produce_with_ids(const char *stream, uint32_t from, uint32_t to)
{
    return produce_range(stream, from, to, gen_dedup);
}

TEST(dedup_ids_within_window)
{
    CHECK_EQ(it_create_stream(client, "dedup", 1), SL_OK);
    CHECK_EQ(produce_with_ids("dedup", 0, 10), 0);
    /* 10 repeats (acknowledged, not stored) and 5 new ones. */
    CHECK_EQ(produce_with_ids("dedup", 0, 15), 0);
    struct sluice_stream_info *info = NULL;
    CHECK_EQ(sluice_stream_describe(client, "dedup", &info), SL_OK);
    uint64_t stored = info->shards[0].next_seq - info->shards[0].first_seq;
    sluice_stream_info_free(info);
    CHECK_EQ(stored, 15);
    /* One producer: a batch of nothing but repeats, then new records. The repeats' batch
     * is done with nothing stored; the producer's next batch follows it (the broker keeps
     * a producer's batches in order, and must not wait for that one again). */
    sluice_producer *p = NULL;
    struct sluice_producer_opts po = {.linger_ms = 1, .block_when_full = 1};
    CHECK_EQ(sluice_producer_new(client, "dedup", &po, &p), SL_OK);
    for (uint32_t round = 0; round < 2; round++) {
        for (uint32_t i = 0; i < 5; i++) {
            struct gen_rec r = {.na = 0};
            gen_dedup(round == 0 ? i : 100 + i, &r);
            CHECK_EQ(sluice_produce(p, r.key, (size_t)r.kl, r.val, (size_t)r.vl, r.at, r.na,
                                    on_delivery, NULL), SL_OK);
        }
        CHECK_EQ(sluice_producer_flush(p, 10000), SL_OK);
    }
    sluice_producer_free(p);
    CHECK_EQ(atomic_load(&produce_errors), 0);
    CHECK_EQ(sluice_stream_describe(client, "dedup", &info), SL_OK);
    stored = info->shards[0].next_seq - info->shards[0].first_seq;
    sluice_stream_info_free(info);
    CHECK_EQ(stored, 20);
}

TEST(delay_on_send)
{
    CHECK_EQ(it_create_stream(client, "later", 1), SL_OK);
    CHECK_EQ(sluice_queue_group_create(client, "later", "g", NULL), SL_OK);
    sluice_producer *p = NULL;
    struct sluice_producer_opts po = {.linger_ms = 1, .block_when_full = 1};
    CHECK_EQ(sluice_producer_new(client, "later", &po, &p), SL_OK);
    char at[24];
    int al = snprintf(at, sizeof(at), "%" PRIu64, it_wall_ms() + 1500);
    struct sluice_attr nb = {"sluice.not_before", 17, at, (uint32_t)al};
    CHECK_EQ(sluice_produce(p, "k", 1, "m1", 2, &nb, 1, on_delivery, NULL), SL_OK);
    CHECK_EQ(sluice_produce(p, "k", 1, "m2", 2, NULL, 0, on_delivery, NULL), SL_OK);
    CHECK_EQ(sluice_producer_flush(p, 30000), SL_OK);
    sluice_producer_free(p);
    uint64_t t0 = it_mono_ms();
    struct sluice_message *m = NULL;
    size_t n = 0;
    /* Only the undelayed one is there now. */
    CHECK_EQ(sluice_queue_receive(client, "later", "g", 10, 300, 0, &m, &n), SL_OK);
    CHECK_EQ(n, 1);
    CHECK(m[0].value_len == 2 && memcmp(m[0].value, "m2", 2) == 0);
    const char *r = m[0].receipt;
    CHECK_EQ(sluice_queue_ack(client, "later", "g", &r, 1, NULL), SL_OK);
    sluice_messages_free(m, n);
    /* The delayed one arrives after its time (a long-poll wakes for it). */
    CHECK_EQ(sluice_queue_receive(client, "later", "g", 10, 5000, 0, &m, &n), SL_OK);
    CHECK_EQ(n, 1);
    CHECK(m[0].value_len == 2 && memcmp(m[0].value, "m1", 2) == 0);
    CHECK_EQ(m[0].delivery_count, 1);
    CHECK(it_mono_ms() - t0 >= 1200);
    r = m[0].receipt;
    CHECK_EQ(sluice_queue_ack(client, "later", "g", &r, 1, NULL), SL_OK);
    sluice_messages_free(m, n);
}

/* ---- ordered (FIFO per key) with 4 competing receivers ---- */

#define OKEYS 10u
#define OPER_KEY 40u

static pthread_mutex_t omu = PTHREAD_MUTEX_INITIALIZER;
static int oheld[OKEYS];        /* messages of the key held (received, not acked) */
static int onext[OKEYS];        /* next expected index per key */
static atomic_int oviolations;
static atomic_uint odone;

static void *ordered_receiver(void *arg)
{
    sluice_client *cl = NULL;
    if (it_connect(&broker, &cl) != SL_OK) {
        atomic_fetch_add(&oviolations, 1000);
        return NULL;
    }
    (void)arg;
    uint64_t end = it_mono_ms() + 30000;
    while (atomic_load(&odone) < OKEYS * OPER_KEY && it_mono_ms() < end) {
        struct sluice_message *m = NULL;
        size_t n = 0;
        if (sluice_queue_receive(cl, "fifo", "g", 5, 200, 0, &m, &n) != SL_OK) {
            break;
        }
        pthread_mutex_lock(&omu);
        for (size_t i = 0; i < n; i++) {
            unsigned k = 0, idx = 0;
            char v[32];
            size_t vl = m[i].value_len < sizeof(v) - 1 ? m[i].value_len : sizeof(v) - 1;
            memcpy(v, m[i].value, vl);
            v[vl] = '\0';
            if (sscanf(v, "%u:%u", &k, &idx) != 2 || k >= OKEYS) {
                atomic_fetch_add(&oviolations, 1);
                continue;
            }
            if (oheld[k] != 0 || (int)idx != onext[k]) {
                fprintf(stderr, "  key %u: got %u, expected %d, held %d\n", k, idx, onext[k],
                        oheld[k]);
                atomic_fetch_add(&oviolations, 1);
            }
            oheld[k]++;
        }
        pthread_mutex_unlock(&omu);
        it_sleep_ms(1); /* hold them a moment: others must not get the same keys */
        for (size_t i = 0; i < n; i++) {
            unsigned k = 0, idx = 0;
            char v[32];
            size_t vl = m[i].value_len < sizeof(v) - 1 ? m[i].value_len : sizeof(v) - 1;
            memcpy(v, m[i].value, vl);
            v[vl] = '\0';
            sscanf(v, "%u:%u", &k, &idx);
            /* release before the ack: the next one may arrive right after it */
            pthread_mutex_lock(&omu);
            if (k < OKEYS) {
                oheld[k]--;
                onext[k] = (int)idx + 1;
            }
            pthread_mutex_unlock(&omu);
            const char *r = m[i].receipt;
            if (sluice_queue_ack(cl, "fifo", "g", &r, 1, NULL) == SL_OK) {
                atomic_fetch_add(&odone, 1);
            } else {
                atomic_fetch_add(&oviolations, 1);
            }
        }
        sluice_messages_free(m, n);
    }
    sluice_client_free(cl);
    return NULL;
}

TEST(ordered_per_key_with_4_receivers)
{
    CHECK_EQ(it_create_stream(client, "fifo", 2), SL_OK);
    struct sluice_queue_group_opts o = {.ordered = 1};
    CHECK_EQ(sluice_queue_group_create(client, "fifo", "g", &o), SL_OK);
    sluice_producer *p = NULL;
    struct sluice_producer_opts po = {.linger_ms = 1, .block_when_full = 1};
    CHECK_EQ(sluice_producer_new(client, "fifo", &po, &p), SL_OK);
    for (uint32_t i = 0; i < OPER_KEY; i++) {
        for (uint32_t k = 0; k < OKEYS; k++) {
            char key[16], val[32];
            int kl = snprintf(key, sizeof(key), "key-%u", k);
            int vl = snprintf(val, sizeof(val), "%u:%u", k, i);
            CHECK_EQ(sluice_produce(p, key, (size_t)kl, val, (size_t)vl, NULL, 0, on_delivery,
                                    NULL),
                     SL_OK);
        }
    }
    CHECK_EQ(sluice_producer_flush(p, 30000), SL_OK);
    sluice_producer_free(p);
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        CHECK_EQ(pthread_create(&th[i], NULL, ordered_receiver, NULL), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
    }
    CHECK_EQ(atomic_load(&oviolations), 0);
    CHECK_EQ(atomic_load(&odone), OKEYS * OPER_KEY);
    for (uint32_t k = 0; k < OKEYS; k++) {
        CHECK_EQ(onext[k], (int)OPER_KEY);
    }
}

/* A group's lease table starts small and grows as leases need it: 3,000 leases held at
 * once (receipts taken before each growth still ack), the expired half delivered again
 * from the grown table, and an ordered group whose blocked records fill it, in key order. */
TEST(lease_table_grows)
{
    enum { HELD = 3 * N };
    CHECK_EQ(it_create_stream(client, "grow", 1), SL_OK);
    struct sluice_queue_group_opts o = {.visibility_timeout_ms = 2000};
    CHECK_EQ(sluice_queue_group_create(client, "grow", "g", &o), SL_OK);
    struct sluice_queue_group_opts oo = {.ordered = 1};
    CHECK_EQ(sluice_queue_group_create(client, "grow", "o", &oo), SL_OK);
    for (uint32_t w = 0; w < 3; w++) {
        CHECK_EQ(produce_n("grow", w * N), 0);
    }
    static struct sluice_message *held[HELD / 100 + 1];
    static size_t held_n[HELD / 100 + 1];
    static uint8_t seen[HELD];
    memset(seen, 0, sizeof(seen));
    uint32_t total = 0, rounds = 0;
    while (total < HELD && rounds < HELD / 100 + 1) {
        CHECK_EQ(sluice_queue_receive(client, "grow", "g", 100, 1000, 0, &held[rounds],
                                      &held_n[rounds]), SL_OK);
        CHECK(held_n[rounds] > 0);
        for (size_t i = 0; i < held_n[rounds]; i++) {
            uint32_t idx = value_index(&held[rounds][i]);
            CHECK(idx < HELD && seen[idx]++ == 0);
        }
        total += (uint32_t)held_n[rounds++];
    }
    CHECK_EQ(total, HELD);
    struct sluice_queue_stats st;
    memset(&st, 0, sizeof(st));
    CHECK_EQ(sluice_queue_stats(client, "grow", "g", &st), SL_OK);
    CHECK_EQ(st.inflight, HELD);
    sluice_queue_stats_fini(&st);
    /* ack the even rounds: their receipts name slots from before and after the growths */
    uint32_t acked = 0;
    for (uint32_t r = 0; r < rounds; r += 2) {
        const char *rc[100];
        for (size_t i = 0; i < held_n[r]; i++) {
            rc[i] = held[r][i].receipt;
        }
        CHECK_EQ(sluice_queue_ack(client, "grow", "g", rc, held_n[r], NULL), SL_OK);
        acked += (uint32_t)held_n[r];
    }
    /* the odd rounds expire and come back, delivery count 2 */
    it_sleep_ms(2500);
    memset(seen, 0, sizeof(seen));
    uint32_t again = 0;
    uint64_t end = it_mono_ms() + 30000;
    while (again < HELD - acked && it_mono_ms() < end) {
        struct sluice_message *m = NULL;
        size_t n = 0;
        CHECK_EQ(sluice_queue_receive(client, "grow", "g", 100, 500, 0, &m, &n), SL_OK);
        const char *rc[100];
        for (size_t i = 0; i < n; i++) {
            uint32_t idx = value_index(&m[i]);
            CHECK(idx < HELD && seen[idx]++ == 0);
            CHECK_EQ(m[i].delivery_count, 2);
            rc[i] = m[i].receipt;
        }
        if (n > 0) {
            CHECK_EQ(sluice_queue_ack(client, "grow", "g", rc, n, NULL), SL_OK);
        }
        again += (uint32_t)n;
        sluice_messages_free(m, n);
    }
    CHECK_EQ(again, HELD - acked);
    for (uint32_t r = 0; r < rounds; r++) {
        sluice_messages_free(held[r], held_n[r]);
    }
    memset(&st, 0, sizeof(st));
    CHECK_EQ(sluice_queue_stats(client, "grow", "g", &st), SL_OK);
    CHECK_EQ(st.inflight + st.visible + st.delayed, 0);
    sluice_queue_stats_fini(&st);

    /* ordered: one head per key (53) leased, the rest blocked in the table */
    static int next_of[53];
    memset(next_of, -1, sizeof(next_of));
    uint32_t got = 0;
    end = it_mono_ms() + 60000;
    while (got < HELD && it_mono_ms() < end) {
        struct sluice_message *m = NULL;
        size_t n = 0;
        CHECK_EQ(sluice_queue_receive(client, "grow", "o", 100, 500, 0, &m, &n), SL_OK);
        const char *rc[100];
        for (size_t i = 0; i < n; i++) {
            uint32_t idx = value_index(&m[i]);
            uint32_t k = idx % 53;
            CHECK((int)idx > next_of[k]); /* in order per key */
            next_of[k] = (int)idx;
            rc[i] = m[i].receipt;
        }
        if (n > 0) {
            CHECK_EQ(sluice_queue_ack(client, "grow", "o", rc, n, NULL), SL_OK);
        }
        got += (uint32_t)n;
        sluice_messages_free(m, n);
    }
    CHECK_EQ(got, HELD);
}

/* An ordered group's records that waited behind an earlier one of their key come back
 * after its ack, several from one read of the shard (broker/engine/queue.c
 * on_redelivery_read): each once, in key order, with its own delivery count; records
 * nacked with a delay stay back; one with its deliveries had is dead-lettered, not handed
 * out. 53 keys, 1,000 records, max_deliveries 1: of the keys' first records, those of keys
 * k % 4 == 1 are nacked (their next hand-out dead-letters them), k % 4 == 3 nacked with a
 * 10-minute delay (so their keys stop), the rest acked; then the others drain. */
TEST(ordered_unblocked_records_come_back_in_order)
{
    CHECK_EQ(it_create_stream(client, "unblock", 1), SL_OK);
    struct sluice_queue_group_opts o = {.ordered = 1, .max_deliveries = 1};
    CHECK_EQ(sluice_queue_group_create(client, "unblock", "o", &o), SL_OK);
    CHECK_EQ(produce_n("unblock", 0), 0);
    struct sluice_message *m = NULL;
    size_t n = 0;
    CHECK_EQ(sluice_queue_receive(client, "unblock", "o", 1000, 1000, 0, &m, &n), SL_OK);
    CHECK_EQ(n, 53); /* one per key; the rest wait behind them */
    const char *dead[53], *later[53], *done[53];
    size_t n_dead = 0, n_later = 0, n_done = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t idx = value_index(&m[i]);
        CHECK(idx < 53);
        if (idx % 4 == 1) {
            dead[n_dead++] = m[i].receipt;
        } else if (idx % 4 == 3) {
            later[n_later++] = m[i].receipt;
        } else {
            done[n_done++] = m[i].receipt;
        }
    }
    CHECK_EQ(sluice_queue_nack(client, "unblock", "o", dead, n_dead, 0, NULL), SL_OK);
    CHECK_EQ(sluice_queue_nack(client, "unblock", "o", later, n_later, 600000, NULL), SL_OK);
    CHECK_EQ(sluice_queue_ack(client, "unblock", "o", done, n_done, NULL), SL_OK);
    sluice_messages_free(m, n);
    uint32_t want = 0;
    for (uint32_t i = 53; i < N; i++) {
        want += i % 53 % 4 != 3;
    }
    static uint8_t seen[N];
    memset(seen, 0, sizeof(seen));
    int last[53];
    for (uint32_t k = 0; k < 53; k++) {
        last[k] = (int)k; /* the first records are done: acked or dead-lettered */
    }
    uint32_t got = 0;
    uint64_t end = it_mono_ms() + 60000;
    while (got < want && it_mono_ms() < end) {
        CHECK_EQ(sluice_queue_receive(client, "unblock", "o", 1000, 200, 0, &m, &n), SL_OK);
        const char *rc[1000];
        for (size_t i = 0; i < n; i++) {
            uint32_t idx = value_index(&m[i]);
            CHECK(idx >= 53 && idx < N && seen[idx]++ == 0);
            CHECK(idx % 53 % 4 != 3); /* behind a delayed one */
            CHECK_EQ(m[i].delivery_count, 1);
            CHECK_EQ((int)idx - 53, last[idx % 53]); /* the key's next, nothing skipped */
            last[idx % 53] = (int)idx;
            rc[i] = m[i].receipt;
        }
        if (n > 0) {
            CHECK_EQ(sluice_queue_ack(client, "unblock", "o", rc, n, NULL), SL_OK);
        }
        got += (uint32_t)n;
        sluice_messages_free(m, n);
    }
    CHECK_EQ(got, want);
    CHECK_EQ(sluice_queue_receive(client, "unblock", "o", 1000, 300, 0, &m, &n), SL_OK);
    sluice_messages_free(m, n);
    CHECK_EQ(n, 0);
    struct sluice_queue_stats st;
    memset(&st, 0, sizeof(st));
    CHECK_EQ(sluice_queue_stats(client, "unblock", "o", &st), SL_OK);
    uint64_t dl = st.dead_lettered, inflight = st.inflight;
    sluice_queue_stats_fini(&st);
    CHECK_EQ(dl, n_dead);
    CHECK_EQ(inflight, 0);
}

int main(void)
{
    int pre = it_preflight();
    if (pre != 0) {
        return pre;
    }
    if (it_broker_start(&broker, "always") != 0 || it_connect(&broker, &client) != SL_OK) {
        it_broker_cleanup(&broker);
        return 1;
    }
    RUN(every_record_once);
    RUN(expiry_nack_extend);
    RUN(dead_letter_after_max_deliveries);
    RUN(zstd_batches_after_restart);
    RUN(acks_survive_kill9);
    RUN(fan_out_and_filters);
    RUN(body_filters);
    RUN(many_rules_on_one_stream);
    RUN(three_subscriptions_each_get_all_100k);
    RUN(leases_bounded_far_behind);
    RUN(lease_table_grows);
    RUN(ordered_per_key_with_4_receivers);
    RUN(ordered_unblocked_records_come_back_in_order);
    RUN(dedup_ids_within_window);
    RUN(delay_on_send);
    sluice_client_free(client);
    if (it_broker_stop(&broker) != 0) {
        fprintf(stderr, "broker did not stop cleanly\n");
        test_failed_++;
    }
    it_broker_cleanup(&broker);
    TEST_END();
}
