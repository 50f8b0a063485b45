/* gen_seeds.c - writes the seed corpus of the fuzz targets (tests/fuzz/corpus/).
 *
 * Usage: gen_seeds OUTDIR   (run.sh gen). Every seed is valid input built with
 * the project's own encoders (batch builder, protobuf-c packers), so the
 * fuzzers start from the deep paths. The files are checked in; rerun after a
 * format change.
 */
#include "fuzz_util.h"

#include "broker/engine/control.h"
#include "common/assert.h"
#include "common/compress.h"
#include "common/error.h"
#include "proto/frame.h"
#include "storage/batch.h"
#include "storage/epochs.h"

#include <errno.h>
#include <stdbool.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *g_out;

static void put(const char *target, const char *name, const void *p, size_t n)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", g_out, target);
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        perror(path);
        exit(1);
    }
    snprintf(path, sizeof(path), "%s/%s/%s", g_out, target, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

/* Builds a batch of `n` records (some with keys and attributes) into buf. */
static size_t batch(uint8_t *buf, size_t cap, uint32_t n, unsigned codec, uint64_t ts,
                    uint64_t pid, uint64_t pseq)
{
    static struct sl_zctx *z;
    static uint8_t scratch[1 << 16];
    if (z == NULL) {
        z = sl_zctx_new();
    }
    struct sl_batch_builder b;
    sl_batch_builder_init(&b, buf, cap);
    for (uint32_t i = 0; i < n; i++) {
        char key[16], val[64], id[16];
        snprintf(key, sizeof(key), "user-%u", i % 3);
        snprintf(val, sizeof(val), "{\"event\":\"click\",\"n\":%u,\"pad\":\"aaaaaaaaaaaa\"}", i);
        snprintf(id, sizeof(id), "id-%u", i);
        struct sl_attr attrs[3] = {
            {.key = "type", .key_len = 4, .value = "click", .value_len = 5},
            {.key = "price", .key_len = 5, .value = "12.5", .value_len = 4},
            {.key = "sluice.dedup_id", .key_len = 15, .value = id,
             .value_len = (uint32_t)strlen(id)},
        };
        struct sl_record r = {.key = key, .key_len = (i % 4 == 3) ? 0 : (uint32_t)strlen(key),
                              .value = val, .value_len = (uint32_t)strlen(val),
                              .attrs = attrs, .attr_count = i % 4, .timestamp_ms = ts + i};
        if (r.attr_count > 3) {
            r.attr_count = 3;
        }
        SL_ASSERT(sl_batch_builder_add(&b, &r) == SL_OK);
    }
    size_t len = 0;
    SL_ASSERT(sl_batch_builder_finish(&b, codec, 3, z, scratch, sizeof(scratch), pid, pseq,
                                      &len) == SL_OK);
    return len;
}

static void seeds_batch(void)
{
    uint8_t buf[1 + 8192];
    struct {
        const char *name;
        uint32_t n;
        unsigned codec;
    } v[] = {{"one_record", 1, SL_BATCH_CODEC_NONE},
             {"eight_records_attrs", 8, SL_BATCH_CODEC_NONE},
             {"zstd_twenty_records", 20, SL_BATCH_CODEC_ZSTD},
             {"zstd_two_records", 2, SL_BATCH_CODEC_ZSTD}};
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        size_t len = batch(buf + 1, sizeof(buf) - 1, v[i].n, v[i].codec, 1700000000000ull, 7,
                           i);
        char name[64];
        buf[0] = 0x00; /* raw: the checksums as built */
        snprintf(name, sizeof(name), "raw_%s", v[i].name);
        put("fuzz_batch", name, buf, 1 + len);
        buf[0] = 0x01; /* fix-up mode */
        snprintf(name, sizeof(name), "fix_%s", v[i].name);
        put("fuzz_batch", name, buf, 1 + len);
    }
    buf[0] = 0x00;
    put("fuzz_batch", "short_header", buf, 1 + 40);
}

static void put_request(const char *name, const sl_request *req)
{
    uint8_t out[16384];
    size_t n = sl_request_size(req);
    SL_ASSERT(n + 4 <= sizeof(out));
    sl_request_pack(req, out + 4);
    sl_frame_put_header(out, (uint32_t)n);
    put("fuzz_frame", name, out, n + 4);
}

static void put_response(const char *name, const sl_response *resp)
{
    uint8_t out[16384];
    size_t n = sl_response_size(resp);
    SL_ASSERT(n + 4 <= sizeof(out));
    sl_response_pack(resp, out + 4);
    sl_frame_put_header(out, (uint32_t)n);
    put("fuzz_frame", name, out, n + 4);
}

/* A three-broker cluster's Metadata answer: for fuzz_frame (as a frame) and fuzz_route (as
 * a payload). */
static void seeds_metadata_response(void)
{
    static const char *addr[3] = {"10.0.0.1:7400", "10.0.0.2:7400", "10.0.0.3:7400"};
    Sluice__V1__BrokerInfo bi[3];
    Sluice__V1__BrokerInfo *bp[3];
    for (int i = 0; i < 3; i++) {
        sluice__v1__broker_info__init(&bi[i]);
        bi[i].node_id = (uint32_t)i + 1;
        bi[i].address = (char *)addr[i];
        bi[i].self = i == 1;
        bi[i].state = (char *)(i == 1 ? "up" : "alive");
        bp[i] = &bi[i];
    }
    int32_t reps[3] = {1, 2, 3}, isr[2] = {1, 2};
    Sluice__V1__ShardRoute sr[4];
    Sluice__V1__ShardRoute *sp[4];
    for (int i = 0; i < 4; i++) {
        sluice__v1__shard_route__init(&sr[i]);
        sr[i].shard = (uint32_t)i;
        sr[i].leader = i == 3 ? -1 : (i % 3) + 1;
        sr[i].leader_epoch = 3 + i;
        sr[i].replicas = reps;
        sr[i].n_replicas = 3;
        sr[i].isr = isr;
        sr[i].n_isr = 2;
        sr[i].open = i != 0;
        sp[i] = &sr[i];
    }
    Sluice__V1__StreamRoute st = SLUICE__V1__STREAM_ROUTE__INIT;
    st.name = (char *)"events";
    st.shards = sp;
    st.n_shards = 4;
    Sluice__V1__StreamRoute *stp[1] = {&st};
    Sluice__V1__MetadataResponse mr = SLUICE__V1__METADATA_RESPONSE__INIT;
    mr.node_id = 2;
    mr.cluster = 1;
    mr.brokers = bp;
    mr.n_brokers = 3;
    mr.streams = stp;
    mr.n_streams = 1;
    sl_response resp = SLUICE__V1__RESPONSE__INIT;
    resp.id = 17;
    resp.body_case = SLUICE__V1__RESPONSE__BODY_METADATA;
    resp.metadata = &mr;
    put_response("resp_metadata", &resp);
    uint8_t out[2048];
    size_t n = sl_response_size(&resp);
    SL_ASSERT(n <= sizeof(out));
    sl_response_pack(&resp, out);
    put("fuzz_route", "resp_metadata", out, n);
    static const char list[] = "10.0.0.1:7400, 10.0.0.2:7400,[::1]:7400";
    put("fuzz_route", "bootstrap_list", list, sizeof(list) - 1);
}

static void seeds_frame(void)
{
    sl_request req = SLUICE__V1__REQUEST__INIT;
    Sluice__V1__Hello hello = SLUICE__V1__HELLO__INIT;
    hello.version = SL_PROTOCOL_VERSION;
    req.id = 2;
    req.body_case = SLUICE__V1__REQUEST__BODY_HELLO;
    req.hello = &hello;
    put_request("req_hello", &req);

    uint8_t b[8192];
    Sluice__V1__Produce pr = SLUICE__V1__PRODUCE__INIT;
    pr.stream = "events";
    pr.shard = 1;
    pr.ack = SLUICE__V1__ACK_MODE__ACK_DURABLE;
    pr.batch.data = b;
    pr.batch.len = batch(b, sizeof(b), 6, SL_BATCH_CODEC_NONE, 1700000000000ull, 9, 1);
    req = (sl_request)SLUICE__V1__REQUEST__INIT;
    req.id = 4; /* even: the batch is checked as sent */
    req.body_case = SLUICE__V1__REQUEST__BODY_PRODUCE;
    req.produce = &pr;
    put_request("req_produce", &req);
    req.id = 5; /* odd: the harness fixes the batch's checksums */
    put_request("req_produce_fixup", &req);
    pr.batch.len = batch(b, sizeof(b), 16, SL_BATCH_CODEC_ZSTD, 1700000000000ull, 9, 2);
    req.id = 7;
    put_request("req_produce_zstd", &req);

    Sluice__V1__Fetch fe = SLUICE__V1__FETCH__INIT;
    Sluice__V1__Position pos = SLUICE__V1__POSITION__INIT;
    pos.kind = SLUICE__V1__POSITION_KIND__AT_SEQUENCE;
    pos.seq = 123;
    fe.stream = "events";
    fe.shard = 2;
    fe.position = &pos;
    fe.max_bytes = 65536;
    fe.max_wait_ms = 500;
    req = (sl_request)SLUICE__V1__REQUEST__INIT;
    req.id = 8;
    req.body_case = SLUICE__V1__REQUEST__BODY_FETCH;
    req.fetch = &fe;
    put_request("req_fetch", &req);

    Sluice__V1__CreateStream cs = SLUICE__V1__CREATE_STREAM__INIT;
    cs.name = "events";
    cs.shard_count = 4;
    cs.retention_hours = 24;
    cs.compression = "zstd";
    req = (sl_request)SLUICE__V1__REQUEST__INIT;
    req.id = 10;
    req.body_case = SLUICE__V1__REQUEST__BODY_CREATE_STREAM;
    req.create_stream = &cs;
    put_request("req_create_stream", &req);

    Sluice__V1__CommitCheckpoint cc = SLUICE__V1__COMMIT_CHECKPOINT__INIT;
    cc.stream = "events";
    cc.group = "g1";
    cc.shard = 1;
    cc.seq = 99;
    req = (sl_request)SLUICE__V1__REQUEST__INIT;
    req.id = 12;
    req.body_case = SLUICE__V1__REQUEST__BODY_COMMIT_CHECKPOINT;
    req.commit_checkpoint = &cc;
    put_request("req_commit_checkpoint", &req);

    Sluice__V1__JoinGroup jg = SLUICE__V1__JOIN_GROUP__INIT;
    jg.stream = "events";
    jg.group = "g1";
    jg.instance_id = "worker-1";
    jg.session_timeout_ms = 10000;
    req = (sl_request)SLUICE__V1__REQUEST__INIT;
    req.id = 13;
    req.body_case = SLUICE__V1__REQUEST__BODY_JOIN_GROUP;
    req.join_group = &jg;
    put_request("req_join_group", &req);

    uint32_t released[2] = {1, 3};
    Sluice__V1__Heartbeat hb = SLUICE__V1__HEARTBEAT__INIT;
    hb.stream = "events";
    hb.group = "g1";
    hb.member_id = "worker-1-1a2b3c-1";
    hb.released = released;
    hb.n_released = 2;
    req = (sl_request)SLUICE__V1__REQUEST__INIT;
    req.id = 14;
    req.body_case = SLUICE__V1__REQUEST__BODY_HEARTBEAT;
    req.heartbeat = &hb;
    put_request("req_heartbeat", &req);

    Sluice__V1__Checkpoint rcp = SLUICE__V1__CHECKPOINT__INIT;
    rcp.shard = 2;
    rcp.seq = 40;
    Sluice__V1__Checkpoint *rcps[1] = {&rcp};
    Sluice__V1__ResetGroup rg = SLUICE__V1__RESET_GROUP__INIT;
    rg.stream = "events";
    rg.group = "g1";
    rg.checkpoints = rcps;
    rg.n_checkpoints = 1;
    rg.force = 1;
    req = (sl_request)SLUICE__V1__REQUEST__INIT;
    req.id = 15;
    req.body_case = SLUICE__V1__REQUEST__BODY_RESET_GROUP;
    req.reset_group = &rg;
    put_request("req_reset_group", &req);

    Sluice__V1__ApiCall ac = SLUICE__V1__API_CALL__INIT;
    static const char rule[] = "{\"Name\":\"r\",\"EventPattern\":\"{\\\"source\\\":[\\\"x\\\"]}\"}";
    ac.service = (char *)"events";
    ac.action = (char *)"PutRule";
    ac.body.data = (uint8_t *)rule;
    ac.body.len = sizeof(rule) - 1;
    req = (sl_request)SLUICE__V1__REQUEST__INIT;
    req.id = 16;
    req.body_case = SLUICE__V1__REQUEST__BODY_API_CALL;
    req.api_call = &ac;
    put_request("req_api_call", &req);

    char *mstreams[2] = {(char *)"events", (char *)"orders"};
    Sluice__V1__Metadata md = SLUICE__V1__METADATA__INIT;
    md.streams = mstreams;
    md.n_streams = 2;
    req = (sl_request)SLUICE__V1__REQUEST__INIT;
    req.id = 17;
    req.body_case = SLUICE__V1__REQUEST__BODY_METADATA;
    req.metadata = &md;
    put_request("req_metadata", &req);

    sl_response resp = SLUICE__V1__RESPONSE__INIT;
    seeds_metadata_response();
    Sluice__V1__FetchResponse fr = SLUICE__V1__FETCH_RESPONSE__INIT;
    fr.shard = 2;
    fr.batches.data = b;
    fr.batches.len = batch(b, sizeof(b), 3, SL_BATCH_CODEC_NONE, 1700000000000ull, 0, 0);
    fr.next_seq = 3;
    fr.tail_seq = 3;
    resp.id = 8;
    resp.body_case = SLUICE__V1__RESPONSE__BODY_FETCH;
    resp.fetch = &fr;
    put_response("resp_fetch", &resp);
    resp = (sl_response)SLUICE__V1__RESPONSE__INIT;
    resp.id = 9;
    resp.code = SLUICE__V1__ERROR_CODE__ENOTFOUND;
    resp.message = "stream events not found";
    put_response("resp_error", &resp);

    uint8_t junk[8] = {0, 0, 0, 4, 0x08, 0x01, 0x52, 0x00};
    put("fuzz_frame", "short_frame", junk, sizeof(junk));
}

static void seeds_filter(void)
{
    static const char *p[] = {
        "{}",
        "{\"type\":[\"click\",\"view\"]}",
        "{\"price\":[{\"numeric\":[\">\",10,\"<=\",20]}]}",
        "{\"name\":[{\"prefix\":\"Fo\"},{\"suffix\":\"oo\"}]}",
        "{\"name\":[{\"equals-ignore-case\":\"foo\"}],\"flag\":[{\"exists\":true}]}",
        "{\"region\":[{\"anything-but\":[\"us-east-1\",5]}],\"missing\":[{\"exists\":false}]}",
        "{\"region\":[{\"anything-but\":{\"prefix\":\"us-\"}}]}",
        "{\"$or\":[{\"price\":[5]},{\"$or\":[{\"name\":[\"Foo\"]},{\"x\":[{\"numeric\":[\"=\",1]}]}]}]}",
        "{\"price\":[5,\"5\",-12.5e1]}\nprice=5\nname=Foo",
        "{\"$OR\":[]}",
        "{\"a\":[",
    };
    for (size_t i = 0; i < sizeof(p) / sizeof(p[0]); i++) {
        char name[32];
        snprintf(name, sizeof(name), "pattern_%02zu", i);
        char buf[512];
        size_t n = strlen(p[i]);
        memcpy(buf, p[i], n);
        /* the harness splits the pattern from the extra record's attributes at a NUL */
        char *nl = memchr(buf, '\n', n);
        if (nl != NULL) {
            *nl = '\0';
        }
        put("fuzz_filter", name, buf, n);
    }
}

/* A segment: `n` batches with contiguous sequences and the append times
 * the broker would have stamped, optionally its index (one entry per batch,
 * as with a small index interval). */
static size_t segment(uint8_t *log, size_t cap, uint32_t n, unsigned codec_every,
                      uint8_t *idx, size_t *idx_len)
{
    size_t off = 0;
    uint64_t seq = 0;
    *idx_len = 0;
    for (uint32_t i = 0; i < n; i++) {
        unsigned codec = codec_every && i % codec_every == 0 ? SL_BATCH_CODEC_ZSTD
                                                             : SL_BATCH_CODEC_NONE;
        size_t len = batch(log + off, cap - off, 1 + i % 5, codec, 1700000000000ull + i, 0, 0);
        struct sl_batch_header h;
        SL_ASSERT(sl_batch_peek(log + off, len, &h) == SL_OK);
        sl_batch_stamp(log + off, seq, 1700000001000ull + i);
        if (idx != NULL) {
            struct fz_idx_entry e = {.seq = seq, .pos = off, .time_ms = 1700000001000ull + i,
                                     .len = (uint32_t)len};
            fz_fix_idx_entry(&e);
            memcpy(idx + *idx_len, &e, sizeof(e));
            *idx_len += sizeof(e);
        }
        seq += h.record_count;
        off += len;
    }
    return off;
}

static void put_recovery(const char *name, unsigned flags, const uint8_t *log, size_t log_len,
                         const uint8_t *idx, size_t idx_len)
{
    static uint8_t buf[3 + 65536];
    SL_ASSERT(3 + log_len + idx_len <= sizeof(buf));
    buf[0] = (uint8_t)flags;
    buf[1] = (uint8_t)idx_len;
    buf[2] = (uint8_t)(idx_len >> 8);
    memcpy(buf + 3, log, log_len);
    memcpy(buf + 3 + log_len, idx, idx_len);
    put("fuzz_recovery", name, buf, 3 + log_len + idx_len);
}

static void seeds_recovery(void)
{
    static uint8_t log[32768], idx[4096];
    size_t il = 0;
    size_t ll = segment(log, sizeof(log), 6, 3, idx, &il);
    put_recovery("segment_no_index", 0x00, log, ll, NULL, 0);
    put_recovery("segment_with_index", 0x04, log, ll, idx, il);
    put_recovery("segment_with_index_appends", 0x24, log, ll, idx, il);
    put_recovery("segment_torn_tail", 0x00, log, ll - 37, NULL, 0);
    put_recovery("segment_one_batch_per_read", 0x10, log, ll, NULL, 0);
    put_recovery("segment_fixup", 0x03, log, ll, NULL, 0);
    put_recovery("empty_appends", 0x20, log, 0, NULL, 0);
    ll = segment(log, sizeof(log), 24, 0, idx, &il);
    put_recovery("segment_24_index_interval_4096", 0x4c, log, ll, idx, il);
    put_recovery("segment_age_roll", 0xa4, log, ll, idx, il);
    /* Bug: an .idx written with a smaller index_interval_bytes (one entry per
     * batch) and recovered with 4096 sizes the active segment's index for the
     * entries on disk plus 3, but appends then add one per 4096 bytes up to
     * segment_bytes: SL_ASSERT(g->idx_count < g->idx_cap) in sl_shard_append. */
    ll = segment(log, sizeof(log), 40, 0, idx, &il);
    put_recovery("known-idx_cap_overflow_after_interval_raise", 0x6c, log, ll, idx, il);
}

/* fuzz_http: flags byte, split byte, then client bytes (fuzz_http.c). */
static void put_http(const char *name, uint8_t flags, uint8_t split, const void *p, size_t n)
{
    static uint8_t buf[16384];
    SL_ASSERT(n + 2 <= sizeof(buf));
    buf[0] = flags;
    buf[1] = split;
    memcpy(buf + 2, p, n);
    put("fuzz_http", name, buf, n + 2);
}

static ssize_t h2_seed_body(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t len,
                            uint32_t *flags, nghttp2_data_source *src, void *user)
{
    (void)ng;
    (void)id;
    (void)user;
    const char *b = src->ptr;
    size_t n = strlen(b) < len ? strlen(b) : len;
    memcpy(buf, b, n);
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

/* The bytes an nghttp2 client sends for `n` requests (prior knowledge). */
static size_t h2_client_bytes(uint8_t *out, size_t cap, int n, bool extras)
{
    nghttp2_session_callbacks *cbs;
    nghttp2_session *ng;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_client_new(&ng, cbs, NULL);
    nghttp2_session_callbacks_del(cbs);
    nghttp2_settings_entry iv = {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 65535};
    nghttp2_submit_settings(ng, NGHTTP2_FLAG_NONE, &iv, 1);
#define NV(a, b) {(uint8_t *)a, (uint8_t *)b, sizeof(a) - 1, sizeof(b) - 1, NGHTTP2_NV_FLAG_NONE}
    nghttp2_nv get[] = {NV(":method", "GET"), NV(":scheme", "http"), NV(":authority", "h"),
                        NV(":path", "/s?x=1"), NV("x-amz-target", "Kinesis_20131202.PutRecord")};
    nghttp2_nv post[] = {NV(":method", "POST"), NV(":scheme", "http"), NV(":authority", "h"),
                         NV(":path", "/"), NV("content-type", "application/x-amz-json-1.1")};
#undef NV
    nghttp2_data_provider prd = {.source = {.ptr = (void *)"{\"StreamName\":\"s\"}"},
                                 .read_callback = h2_seed_body};
    for (int i = 0; i < n; i++) {
        int32_t id = i % 2 ? nghttp2_submit_request(ng, NULL, post, 5, &prd, NULL)
                           : nghttp2_submit_request(ng, NULL, get, 5, NULL, NULL);
        if (extras && i == 1) {
            nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
        }
    }
    if (extras) {
        nghttp2_submit_ping(ng, NGHTTP2_FLAG_NONE, NULL);
        nghttp2_submit_window_update(ng, NGHTTP2_FLAG_NONE, 0, 100000);
        nghttp2_submit_goaway(ng, NGHTTP2_FLAG_NONE, 0, NGHTTP2_NO_ERROR, NULL, 0);
    }
    size_t len = 0;
    const uint8_t *d;
    ssize_t k;
    while ((k = nghttp2_session_mem_send(ng, &d)) > 0) {
        SL_ASSERT(len + (size_t)k <= cap);
        memcpy(out + len, d, (size_t)k);
        len += (size_t)k;
    }
    nghttp2_session_del(ng);
    return len;
}

static void seeds_http(void)
{
    static const struct {
        const char *name, *text;
    } h1[] = {
        {"get", "GET /a?x=1 HTTP/1.1\r\nHost: h\r\nUser-Agent: t\r\n\r\n"},
        {"post", "POST / HTTP/1.1\r\nHost: h\r\nContent-Type: application/x-amz-json-1.1\r\n"
                 "X-Amz-Target: Kinesis_20131202.PutRecord\r\nContent-Length: 18\r\n\r\n"
                 "{\"StreamName\":\"s\"}"},
        {"pipeline", "GET /1 HTTP/1.1\r\n\r\nHEAD /2 HTTP/1.1\r\n\r\n"
                     "POST /3 HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
                     "GET /4 HTTP/1.1\r\nConnection: close\r\n\r\n"},
        {"chunked", "PUT /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                    "5\r\nhello\r\n6;e=1\r\n world\r\n0\r\nT: x\r\n\r\n"},
        {"expect", "PUT /e HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc"},
        {"http10", "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /2 HTTP/1.0\r\n\r\n"},
        {"upgrade_ws", "GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
                       "GET /after HTTP/1.1\r\n\r\n"},
        {"big_length", "POST / HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n"},
        {"bad", "GET / HTTP/1.1x\r\n\r\n"},
    };
    for (size_t i = 0; i < sizeof(h1) / sizeof(h1[0]); i++) {
        char name[64];
        size_t n = strlen(h1[i].text);
        snprintf(name, sizeof(name), "h1_%s", h1[i].name);
        put_http(name, 1, 0, h1[i].text, n);
        snprintf(name, sizeof(name), "h1_%s_async_split", h1[i].name);
        put_http(name, 0, 7, h1[i].text, n);
        snprintf(name, sizeof(name), "h1_%s_stream_tiny", h1[i].name);
        put_http(name, 6, 0, h1[i].text, n);
    }
    static uint8_t buf[8192];
    size_t n = h2_client_bytes(buf, sizeof(buf), 3, false);
    put_http("h2_three", 1, 0, buf, n);
    put_http("h2_three_async_stream_split", 2, 9, buf, n);
    n = h2_client_bytes(buf, sizeof(buf), 4, true);
    put_http("h2_rst_ping_goaway", 0, 0, buf, n);
    put_http("h2_rst_ping_goaway_tiny", 5, 3, buf, n);
    /* h2c upgrade: HTTP2-Settings = INITIAL_WINDOW_SIZE 65535, then the client preface. */
    static const char up[] = "GET /up HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                             "Upgrade: h2c\r\nHTTP2-Settings: AAQAAP__\r\n\r\n";
    memmove(buf + sizeof(up) - 1, buf, n);
    memcpy(buf, up, sizeof(up) - 1);
    put_http("h2c_upgrade", 1, 0, buf, n + sizeof(up) - 1);
}

/* Valid leader-epochs files (mode byte 0, then the file): what a replica
 * writes (storage/epochs.c). */
static void seeds_epochs(void)
{
    static struct sl_epochs c;
    static uint8_t buf[1 + SL_EPOCHS_FILE_BYTES_MAX];
    const uint32_t sizes[] = {0, 1, 3, SL_EPOCHS_MAX};
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        sl_epochs_init(&c);
        c.last_led_epoch = k == 0 ? SL_EPOCHS_NONE : (int32_t)(sizes[k] * 2);
        for (uint32_t i = 0; i < sizes[k]; i++) {
            sl_epochs_add(&c, (int32_t)(i * 2 + (i > 0)), (int64_t)i * 4096 + (i > 0));
        }
        buf[0] = 0;
        size_t n = sl_epochs_encode(&c, buf + 1, sizeof(buf) - 1);
        char name[32];
        snprintf(name, sizeof(name), "epochs_%u", sizes[k]);
        put("fuzz_epochs", name, buf, n + 1);
    }
}

/* Control batches (mode byte 0, then the batch) as a leader writes them
 * (broker/engine/control.c), and one records section alone (mode 1). */
static void seeds_control(void)
{
    static uint8_t buf[1 + SL_CONTROL_CKPT_BATCH_MAX];
    static const char *const groups[] = {"g", "billing", "a-group-name-of-the-longest-kind-"
                                                         "0123456789012345678901234567890123456789"
                                                         "0123456789012345678901234567890123456"};
    for (size_t k = 0; k < sizeof(groups) / sizeof(groups[0]); k++) {
        struct sl_control_ckpt c = {.shard = (uint32_t)k * 7, .seq = 1000u * k + 3,
                                    .updated_ms = 1765000000000ull + k};
        snprintf(c.group, sizeof(c.group), "%s", groups[k]);
        size_t n = 0;
        buf[0] = 0;
        if (sl_control_ckpt_batch(&c, buf + 1, sizeof(buf) - 1, &n) != SL_OK) {
            abort();
        }
        char name[32];
        snprintf(name, sizeof(name), "ckpt_%zu", k);
        put("fuzz_control", name, buf, n + 1);
        if (k == 1) { /* its records section alone, resealed by the target (mode 1) */
            buf[SL_BATCH_HEADER_BYTES] = 1;
            put("fuzz_control", "section_1", buf + SL_BATCH_HEADER_BYTES,
                n + 1 - SL_BATCH_HEADER_BYTES);
        }
    }
}

/* A control batch of queue-group changes (mode 0): every kind, a create with a filter. */
static size_t qops_batch(uint8_t *out, size_t cap, const struct sl_control_qop *ops, size_t n)
{
    static uint8_t value[SL_CONTROL_Q_VALUE_MAX];
    struct sl_batch_builder bb;
    sl_batch_builder_init(&bb, out, cap);
    for (size_t i = 0; i < n; i++) {
        struct sl_record rec;
        if (sl_control_qop_record(&ops[i], 1765000000000ull + i, value, &rec) != SL_OK ||
            sl_batch_builder_add(&bb, &rec) != SL_OK) {
            abort();
        }
    }
    size_t len = 0;
    if (sl_batch_builder_finish(&bb, SL_BATCH_CODEC_NONE, 0, NULL, NULL, 0, 0, 0, &len) != SL_OK) {
        abort();
    }
    sl_batch_mark_control(out, len);
    return len;
}

static void seeds_control_queue(void)
{
    static uint8_t buf[1 + 4 * SL_CONTROL_Q_VALUE_MAX];
    static const uint64_t floors[4] = {0, 17, 3, 1u << 20};
    struct sl_control_qop ops[5] = {
        {.kind = SL_CONTROL_Q_CREATE, .shard_count = 4, .floors = floors,
         .def = {.name = "work", .visibility_timeout_ms = 30000, .max_inflight = 100,
                 .ordered = true, .filter = "{\"type\":[\"order\"]}", .start_kind = 2,
                 .start_seq = 5, .created_ms = 1765000000000ull}},
        {.kind = SL_CONTROL_Q_ACK, .group = "work", .shard = 1, .a = 17, .b = 40},
        {.kind = SL_CONTROL_Q_COUNT, .group = "work", .shard = 2, .a = 9, .b = 3},
        {.kind = SL_CONTROL_Q_COUNTERS, .group = "work", .a = 1, .b = 12},
        {.kind = SL_CONTROL_Q_DELETE, .group = "work"},
    };
    buf[0] = 0;
    size_t n = qops_batch(buf + 1, sizeof(buf) - 1, ops, 5);
    put("fuzz_control", "qops", buf, n + 1);
    /* three of them as a records section alone, resealed by the target (mode 1, 3 records) */
    n = qops_batch(buf + 1, sizeof(buf) - 1, ops + 1, 3);
    buf[SL_BATCH_HEADER_BYTES] = (2u << 1) | 1u;
    put("fuzz_control", "qops_section", buf + SL_BATCH_HEADER_BYTES,
        n + 1 - SL_BATCH_HEADER_BYTES);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: gen_seeds OUTDIR\n");
        return 2;
    }
    g_out = argv[1];
    seeds_batch();
    seeds_frame();
    seeds_filter();
    seeds_recovery();
    seeds_http();
    seeds_epochs();
    seeds_control();
    seeds_control_queue();
    return 0;
}
