/* bad_input.c - the broker survives malformed and hostile input on raw sockets.
 *
 * Covers, each on its own raw TCP connection (no library): undecodable bytes with a legal
 * length (EPROTO, id 0, the connection continues); an HTTP request (its first bytes read as
 * a huge length); a 2^31 length prefix; a zero length (each: an error response with id 0
 * and a close, or a clean close); a truncated frame then close, and then half-close (the
 * broker closes too); a request before Hello (EPROTO with its id; Hello then works); a
 * Produce to an unknown stream (ENOTFOUND); a batch with a bad checksum (ECORRUPT); a batch
 * whose key belongs to another shard (EINVAL); a valid raw Produce (OK, so the builder
 * is right); a long-poll Fetch whose connection closes while it waits; a Produce with
 * ACK_NONE (no response; the next request is answered). Meanwhile a library connection keeps
 * producing and consuming a 2-shard stream without any error, and at the end the broker is
 * alive and stops cleanly (exit 0). Then, on a broker with auto_create_streams, produces
 * pipelined to an unknown stream create it once, off the loop, and are stored in order.
 * And produces parsed in place keep their batches alive in the receive buffer until they
 * are stored (regress_batch_in_reused_receive_buffer).
 */
#include "../unit/test.h"
#include "harness.h"

#include "common/error.h"
#include "common/partition.h"
#include "proto/frame.h"
#include "storage/batch.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define RAW_WAIT_MS 5000
#define BAD_SHARDS 4u

static struct it_broker broker;
static atomic_int bg_stop;
static atomic_uint bg_rounds, bg_errors;

/* ---- raw protocol helpers ---- */

static int raw_connect(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        return -1;
    }
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)broker.port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {RAW_WAIT_MS / 1000, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int send_all(int fd, const void *p, size_t len)
{
    const uint8_t *b = p;
    while (len > 0) {
        ssize_t n = send(fd, b, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return -1;
        }
        b += n;
        len -= (size_t)n;
    }
    return 0;
}

/* The frame of `req` at out (sl_request_size + SL_FRAME_HEADER_BYTES bytes): its length. */
static size_t put_frame(uint8_t *out, const sl_request *req)
{
    size_t len = sl_request_size(req);
    sl_frame_put_header(out, (uint32_t)len);
    sl_request_pack(req, out + SL_FRAME_HEADER_BYTES);
    return len + SL_FRAME_HEADER_BYTES;
}

static int send_req(int fd, const sl_request *req)
{
    uint8_t *buf = malloc(sl_request_size(req) + SL_FRAME_HEADER_BYTES);
    if (buf == NULL) {
        return -1;
    }
    int rc = send_all(fd, buf, put_frame(buf, req));
    free(buf);
    return rc;
}

/* Reads exactly len bytes: 1 done, 0 EOF at the start, -1 error/timeout/EOF midway. */
static int recv_all(int fd, void *p, size_t len)
{
    uint8_t *b = p;
    size_t got = 0;
    while (got < len) {
        ssize_t n = recv(fd, b + got, len - got, 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n == 0 && got == 0) {
            return 0;
        }
        if (n <= 0) {
            return -1;
        }
        got += (size_t)n;
    }
    return 1;
}

/* Reads one response: 1 with *out, 0 on a clean close (EOF), -1 on timeout/error/garbage.
 * A reset by the peer counts as a close. */
static int recv_resp(int fd, sl_response **out)
{
    uint8_t h[4];
    *out = NULL;
    int rc = recv_all(fd, h, 4);
    if (rc <= 0) {
        return rc == 0 || errno == ECONNRESET ? 0 : -1;
    }
    uint32_t len = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
    if (len == 0 || len > (64u << 20)) {
        return -1;
    }
    uint8_t *buf = malloc(len);
    if (buf == NULL || recv_all(fd, buf, len) != 1) {
        free(buf);
        return -1;
    }
    *out = sl_response_unpack(buf, len);
    free(buf);
    return *out != NULL ? 1 : -1;
}

/* Sends `req` and expects a response with `id` and `code`; returns the response (caller
 * frees) or NULL after printing what came instead. */
static sl_response *call_expect(int fd, sl_request *req, int code)
{
    if (send_req(fd, req) != 0) {
        fprintf(stderr, "  send failed: %s\n", strerror(errno));
        return NULL;
    }
    sl_response *r = NULL;
    int rc = recv_resp(fd, &r);
    if (rc != 1) {
        fprintf(stderr, "  request %" PRIu64 ": no response (%s)\n", req->id,
                rc == 0 ? "connection closed" : "timeout or garbage");
        return NULL;
    }
    if (r->id != req->id || (int)r->code != code) {
        fprintf(stderr, "  request %" PRIu64 ": got id %" PRIu64 " code %s (%s), want %s\n",
                req->id, r->id, sl_errname((int)r->code), r->message ? r->message : "",
                sl_errname(code));
        sl_response_free(r);
        return NULL;
    }
    return r;
}

static int hello(int fd, uint64_t id)
{
    sl_request req = SLUICE__V1__REQUEST__INIT;
    Sluice__V1__Hello h = SLUICE__V1__HELLO__INIT;
    h.version = SL_PROTOCOL_VERSION;
    h.client_id = (char *)"bad-input";
    req.id = id;
    req.body_case = SLUICE__V1__REQUEST__BODY_HELLO;
    req.hello = &h;
    sl_response *r = call_expect(fd, &req, SL_OK);
    int ok = r != NULL && r->body_case == SLUICE__V1__RESPONSE__BODY_HELLO &&
             r->hello->max_frame_bytes > 0;
    sl_response_free(r);
    return ok ? 0 : -1;
}

static int list_streams(int fd, uint64_t id, int code)
{
    sl_request req = SLUICE__V1__REQUEST__INIT;
    Sluice__V1__ListStreams ls = SLUICE__V1__LIST_STREAMS__INIT;
    req.id = id;
    req.body_case = SLUICE__V1__REQUEST__BODY_LIST_STREAMS;
    req.list_streams = &ls;
    sl_response *r = call_expect(fd, &req, code);
    sl_response_free(r);
    return r != NULL ? 0 : -1;
}

/* After a fatal frame: an error response with id 0 (EPROTO or ETOOBIG) and then EOF, or EOF
 * at once. Returns 0 when so. */
static int expect_error_then_close(int fd)
{
    sl_response *r = NULL;
    int rc = recv_resp(fd, &r);
    if (rc == 1) {
        int ok = r->id == 0 && ((int)r->code == SL_EPROTO || (int)r->code == SL_ETOOBIG);
        if (!ok) {
            fprintf(stderr, "  got id %" PRIu64 " code %s, want id 0 EPROTO/ETOOBIG\n", r->id,
                    sl_errname((int)r->code));
        }
        sl_response_free(r);
        if (!ok) {
            return -1;
        }
        rc = recv_resp(fd, &r);
        sl_response_free(r);
    }
    if (rc != 0) {
        fprintf(stderr, "  the broker did not close the connection\n");
        return -1;
    }
    return 0;
}

/* One batch of one record with `key` from producer `pid` (0: none) with sequence `pseq`.
 * Returns its length in buf. */
static size_t make_pbatch(uint8_t *buf, size_t cap, const char *key, const char *value,
                          uint64_t pid, uint64_t pseq)
{
    struct sl_batch_builder b;
    sl_batch_builder_init(&b, buf, cap);
    struct sl_record r = {.key = key, .key_len = (uint32_t)strlen(key), .value = value,
                          .value_len = (uint32_t)strlen(value), .timestamp_ms = it_wall_ms()};
    size_t len = 0;
    if (sl_batch_builder_add(&b, &r) != SL_OK ||
        sl_batch_builder_finish(&b, SL_BATCH_CODEC_NONE, 0, NULL, NULL, 0, pid, pseq, &len) !=
            SL_OK) {
        return 0;
    }
    return len;
}

static size_t make_batch(uint8_t *buf, size_t cap, const char *key, const char *value)
{
    return make_pbatch(buf, cap, key, value, 0, 0);
}

/* A Produce request `req` (its body in `p`, both the caller's) of `batch` (borrowed). */
static void produce_req(sl_request *req, Sluice__V1__Produce *p, uint64_t id, const char *stream,
                        uint32_t shard, const uint8_t *batch, size_t len, int ack)
{
    sluice__v1__request__init(req);
    sluice__v1__produce__init(p);
    p->stream = (char *)stream;
    p->shard = shard;
    p->ack = (Sluice__V1__AckMode)ack;
    p->batch.data = (uint8_t *)batch;
    p->batch.len = len;
    req->id = id;
    req->body_case = SLUICE__V1__REQUEST__BODY_PRODUCE;
    req->produce = p;
}

static sl_response *produce_raw(int fd, uint64_t id, const char *stream, uint32_t shard,
                                const uint8_t *batch, size_t len, int ack, int code)
{
    sl_request req;
    Sluice__V1__Produce p;
    produce_req(&req, &p, id, stream, shard, batch, len, ack);
    if (ack == SLUICE__V1__ACK_MODE__ACK_NONE) {
        return send_req(fd, &req) == 0 ? (sl_response *)1 : NULL;
    }
    return call_expect(fd, &req, code);
}

static uint32_t shard_of(const char *key)
{
    return sl_partition_shard(sl_partition_hash(key, strlen(key)), BAD_SHARDS);
}

/* ---- the well-behaved neighbour ---- */

static void on_bg_delivery(void *ctx, int err, uint32_t shard, uint64_t seq)
{
    (void)ctx;
    (void)shard;
    (void)seq;
    if (err != SL_OK) {
        atomic_fetch_add(&bg_errors, 1);
    }
}

static void *background(void *arg)
{
    sluice_client *c = arg;
    sluice_producer *p = NULL;
    sluice_consumer *cons = NULL;
    struct sluice_producer_opts po = {.linger_ms = 1, .block_when_full = 1};
    struct sluice_consumer_opts co = {.start = {.kind = SLUICE_TRIM_HORIZON}};
    if (sluice_producer_new(c, "bg", &po, &p) != SL_OK ||
        sluice_consumer_new(c, "bg", NULL, &co, &cons) != SL_OK) {
        fprintf(stderr, "  background: %s\n", sluice_last_error());
        atomic_fetch_add(&bg_errors, 1);
        sluice_producer_free(p);
        return NULL;
    }
    static struct sluice_record recs[256];
    uint32_t next = 0, seen = 0;
    while (!atomic_load(&bg_stop)) {
        char key[16], val[32];
        for (int k = 0; k < 100; k++, next++) {
            int kl = snprintf(key, sizeof(key), "b%u", next % 10);
            int vl = snprintf(val, sizeof(val), "bg%u", next);
            if (sluice_produce(p, key, (size_t)kl, val, (size_t)vl, NULL, 0, on_bg_delivery,
                               NULL) != SL_OK) {
                atomic_fetch_add(&bg_errors, 1);
            }
        }
        if (sluice_producer_flush(p, 10000) != SL_OK) {
            fprintf(stderr, "  background flush: %s\n", sluice_last_error());
            atomic_fetch_add(&bg_errors, 1);
        }
        uint64_t deadline = it_mono_ms() + 10000;
        while (seen < next && it_mono_ms() < deadline) {
            size_t n = 0;
            int rc = sluice_consumer_poll(cons, recs, 256, &n, 500);
            if (rc != SL_OK) {
                fprintf(stderr, "  background poll: %s (%s)\n", sl_errname(rc),
                        sluice_last_error());
                atomic_fetch_add(&bg_errors, 1);
                break;
            }
            seen += (uint32_t)n;
        }
        if (seen != next) {
            fprintf(stderr, "  background: read %u of %u records\n", seen, next);
            atomic_fetch_add(&bg_errors, 1);
        }
        atomic_fetch_add(&bg_rounds, 1);
    }
    sluice_consumer_free(cons);
    sluice_producer_free(p);
    return NULL;
}

/* ---- the cases ---- */

TEST(bad_input)
{
    CHECK_EQ(it_broker_start(&broker, "always"), 0);
    sluice_client *c = NULL;
    CHECK_EQ(it_connect(&broker, &c), SL_OK);
    CHECK_EQ(it_create_stream(c, "bg", 2), SL_OK);
    CHECK_EQ(it_create_stream(c, "raw", BAD_SHARDS), SL_OK);
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, background, c), 0);
    int fd;

    fprintf(stderr, "  undecodable bytes with a legal length\n");
    CHECK((fd = raw_connect()) >= 0);
    uint8_t junk[4 + 16] = {0, 0, 0, 16};
    memset(junk + 4, 0xFF, 16);
    CHECK_EQ(send_all(fd, junk, sizeof(junk)), 0);
    sl_response *r = NULL;
    CHECK_EQ(recv_resp(fd, &r), 1);
    CHECK_EQ(r->id, 0);
    CHECK_EQ(r->code, SL_EPROTO);
    sl_response_free(r);
    CHECK_EQ(hello(fd, 1), 0); /* the connection continues */
    CHECK_EQ(list_streams(fd, 2, SL_OK), 0);
    close(fd);

    fprintf(stderr, "  an HTTP request\n");
    CHECK((fd = raw_connect()) >= 0);
    const char http[] = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
    CHECK_EQ(send_all(fd, http, sizeof(http) - 1), 0);
    CHECK_EQ(expect_error_then_close(fd), 0);
    close(fd);

    fprintf(stderr, "  a 2^31 length prefix\n");
    CHECK((fd = raw_connect()) >= 0);
    CHECK_EQ(hello(fd, 1), 0);
    uint8_t huge[8] = {0x80, 0, 0, 0, 1, 2, 3, 4};
    CHECK_EQ(send_all(fd, huge, sizeof(huge)), 0);
    CHECK_EQ(expect_error_then_close(fd), 0);
    close(fd);

    fprintf(stderr, "  a zero length prefix\n");
    CHECK((fd = raw_connect()) >= 0);
    uint8_t zero[4] = {0, 0, 0, 0};
    CHECK_EQ(send_all(fd, zero, sizeof(zero)), 0);
    CHECK_EQ(expect_error_then_close(fd), 0);
    close(fd);

    fprintf(stderr, "  a truncated frame, then close\n");
    CHECK((fd = raw_connect()) >= 0);
    uint8_t part[4 + 10] = {0, 0, 0, 100, 8, 1};
    CHECK_EQ(send_all(fd, part, sizeof(part)), 0);
    close(fd);
    fprintf(stderr, "  a truncated frame, then half-close\n");
    CHECK((fd = raw_connect()) >= 0);
    CHECK_EQ(hello(fd, 1), 0);
    CHECK_EQ(send_all(fd, part, sizeof(part)), 0);
    shutdown(fd, SHUT_WR);
    do {
        /* an error response is fine; then the broker must close */
        int rc = recv_resp(fd, &r);
        sl_response_free(r);
        if (rc == -1) {
            fprintf(stderr, "  the broker kept a half-closed connection open\n");
        }
        CHECK(rc != -1);
        if (rc == 0) {
            break;
        }
    } while (1);
    close(fd);

    fprintf(stderr, "  a request before Hello\n");
    CHECK((fd = raw_connect()) >= 0);
    CHECK_EQ(list_streams(fd, 7, SL_EPROTO), 0);
    CHECK_EQ(hello(fd, 8), 0);
    CHECK_EQ(list_streams(fd, 9, SL_OK), 0);

    /* Produce cases on this connection. */
    static uint8_t batch[4096];
    size_t blen = make_batch(batch, sizeof(batch), "apple", "v1");
    CHECK(blen > 0);
    uint32_t home = shard_of("apple");
    fprintf(stderr, "  a valid raw produce\n");
    r = produce_raw(fd, 10, "raw", home, batch, blen, SLUICE__V1__ACK_MODE__ACK_DURABLE, SL_OK);
    CHECK(r != NULL);
    CHECK_EQ(r->body_case, SLUICE__V1__RESPONSE__BODY_PRODUCE);
    CHECK_EQ(r->produce->base_seq, 0);
    CHECK_EQ(r->produce->count, 1);
    sl_response_free(r);

    fprintf(stderr, "  a produce to an unknown stream\n");
    r = produce_raw(fd, 11, "no-such-stream", 0, batch, blen, SLUICE__V1__ACK_MODE__ACK_DURABLE,
                    SL_ENOTFOUND);
    CHECK(r != NULL);
    sl_response_free(r);
    fprintf(stderr, "  a produce to a shard that does not exist\n");
    r = produce_raw(fd, 12, "raw", BAD_SHARDS, batch, blen, SLUICE__V1__ACK_MODE__ACK_DURABLE,
                    SL_ENOTFOUND);
    CHECK(r != NULL);
    sl_response_free(r);

    fprintf(stderr, "  a batch with a bad checksum\n");
    static uint8_t bad[4096];
    memcpy(bad, batch, blen);
    bad[blen - 1] ^= 0x5A; /* inside the body checksum's range */
    r = produce_raw(fd, 13, "raw", home, bad, blen, SLUICE__V1__ACK_MODE__ACK_DURABLE,
                    SL_ECORRUPT);
    CHECK(r != NULL);
    sl_response_free(r);

    fprintf(stderr, "  a damaged retry of an acknowledged batch is refused, not a duplicate\n");
    {
        static uint8_t idem[4096], dmg[4096];
        struct sl_batch_builder ib;
        sl_batch_builder_init(&ib, idem, sizeof(idem));
        struct sl_record ir = {.key = "apple", .key_len = 5, .value = "idempotent",
                               .value_len = 10, .timestamp_ms = it_wall_ms()};
        size_t ilen = 0;
        CHECK_EQ(sl_batch_builder_add(&ib, &ir), SL_OK);
        CHECK_EQ(sl_batch_builder_finish(&ib, SL_BATCH_CODEC_NONE, 0, NULL, NULL, 0, 4242, 7,
                                         &ilen),
                 SL_OK);
        r = produce_raw(fd, 30, "raw", home, idem, ilen, SLUICE__V1__ACK_MODE__ACK_DURABLE,
                        SL_OK);
        CHECK(r != NULL);
        CHECK(!r->produce->duplicate);
        uint64_t first = r->produce->base_seq;
        sl_response_free(r);
        r = produce_raw(fd, 31, "raw", home, idem, ilen, SLUICE__V1__ACK_MODE__ACK_DURABLE,
                        SL_OK);
        CHECK(r != NULL);
        CHECK(r->produce->duplicate);
        CHECK_EQ(r->produce->base_seq, first);
        sl_response_free(r);
        memcpy(dmg, idem, ilen);
        dmg[ilen - 2] ^= 0x10;
        r = produce_raw(fd, 32, "raw", home, dmg, ilen, SLUICE__V1__ACK_MODE__ACK_DURABLE,
                        SL_ECORRUPT);
        CHECK(r != NULL);
        sl_response_free(r);
    }

    fprintf(stderr, "  a batch flagged control (the broker's own state) is refused\n");
    {
        static uint8_t ctl[4096];
        memcpy(ctl, batch, blen);
        sl_batch_mark_control(ctl, blen); /* a valid checksum: refused for its flag alone */
        r = produce_raw(fd, 33, "raw", home, ctl, blen, SLUICE__V1__ACK_MODE__ACK_DURABLE,
                        SL_EINVAL);
        CHECK(r != NULL);
        CHECK(r->message != NULL && strstr(r->message, "control") != NULL);
        sl_response_free(r);
    }

    fprintf(stderr, "  a batch whose key belongs to another shard\n");
    r = produce_raw(fd, 14, "raw", (home + 1) % BAD_SHARDS, batch, blen,
                    SLUICE__V1__ACK_MODE__ACK_DURABLE, SL_EINVAL);
    CHECK(r != NULL);
    sl_response_free(r);

    fprintf(stderr, "  a batch shorter than its length field\n");
    r = produce_raw(fd, 15, "raw", home, batch, blen - 3, SLUICE__V1__ACK_MODE__ACK_DURABLE,
                    SL_EPROTO);
    CHECK(r != NULL);
    sl_response_free(r);

    fprintf(stderr, "  ACK_NONE gets no response; the next request does\n");
    CHECK(produce_raw(fd, 16, "raw", home, batch, blen, SLUICE__V1__ACK_MODE__ACK_NONE, 0) !=
          NULL);
    CHECK_EQ(list_streams(fd, 17, SL_OK), 0);
    close(fd);

    /* Nothing bad was stored: shard `home` holds exactly the three good records
     * (two raw ones and the idempotent one, once). */
    struct sluice_stream_info *info = NULL;
    CHECK_EQ(sluice_stream_describe(c, "raw", &info), SL_OK);
    uint64_t stored = 0;
    for (uint32_t s = 0; s < info->shards_len; s++) {
        stored += info->shards[s].next_seq;
    }
    uint64_t home_next = info->shards[home].next_seq;
    sluice_stream_info_free(info);
    CHECK_EQ(stored, 3);
    CHECK_EQ(home_next, 3);

    fprintf(stderr, "  a long-poll fetch whose connection closes while it waits\n");
    for (int k = 0; k < 20; k++) {
        CHECK((fd = raw_connect()) >= 0);
        CHECK_EQ(hello(fd, 1), 0);
        sl_request req = SLUICE__V1__REQUEST__INIT;
        Sluice__V1__Fetch f = SLUICE__V1__FETCH__INIT;
        Sluice__V1__Position pos = SLUICE__V1__POSITION__INIT;
        pos.kind = SLUICE__V1__POSITION_KIND__LATEST;
        f.stream = (char *)"raw";
        f.shard = home;
        f.position = &pos;
        f.max_wait_ms = 5000;
        req.id = 2;
        req.body_case = SLUICE__V1__REQUEST__BODY_FETCH;
        req.fetch = &f;
        CHECK_EQ(send_req(fd, &req), 0);
        if (k % 2 == 0) {
            it_sleep_ms(5); /* let it park */
        }
        struct linger lg = {1, 0}; /* some close with a reset */
        if (k % 4 == 1) {
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        }
        close(fd);
    }
    /* Consumer-group requests with bad fields: clear errors, the connection lives on. */
    CHECK((fd = raw_connect()) >= 0);
    CHECK_EQ(hello(fd, 1), 0);
    {
        sl_request req = SLUICE__V1__REQUEST__INIT;
        Sluice__V1__JoinGroup j = SLUICE__V1__JOIN_GROUP__INIT;
        j.stream = (char *)"raw";
        j.group = (char *)"bad group";
        req.id = 40;
        req.body_case = SLUICE__V1__REQUEST__BODY_JOIN_GROUP;
        req.join_group = &j;
        CHECK((r = call_expect(fd, &req, SL_EINVAL)) != NULL);
        sl_response_free(r);
        j.group = (char *)"g";
        j.session_timeout_ms = 1;
        req.id = 41;
        CHECK((r = call_expect(fd, &req, SL_EINVAL)) != NULL);
        sl_response_free(r);
        j.session_timeout_ms = 0;
        j.stream = (char *)"nope";
        req.id = 42;
        CHECK((r = call_expect(fd, &req, SL_ENOTFOUND)) != NULL);
        sl_response_free(r);
        j.stream = (char *)"raw";
        req.id = 43;
        CHECK((r = call_expect(fd, &req, SL_OK)) != NULL);
        char member[64];
        snprintf(member, sizeof(member), "%s", r->join_group->assignment->member_id);
        sl_response_free(r);
        /* released shards the stream does not have */
        uint32_t released[3] = {0, BAD_SHARDS, UINT32_MAX};
        Sluice__V1__Heartbeat hb = SLUICE__V1__HEARTBEAT__INIT;
        hb.stream = (char *)"raw";
        hb.group = (char *)"g";
        hb.member_id = member;
        hb.released = released;
        hb.n_released = 3;
        req = (sl_request)SLUICE__V1__REQUEST__INIT;
        req.id = 44;
        req.body_case = SLUICE__V1__REQUEST__BODY_HEARTBEAT;
        req.heartbeat = &hb;
        CHECK((r = call_expect(fd, &req, SL_EINVAL)) != NULL);
        sl_response_free(r);
        hb.member_id = (char *)"nobody";
        hb.n_released = 0;
        req.id = 45;
        CHECK((r = call_expect(fd, &req, SL_EFENCED)) != NULL);
        sl_response_free(r);
        /* a fetch and a commit naming someone else's membership are fenced */
        Sluice__V1__Fetch f = SLUICE__V1__FETCH__INIT;
        f.stream = (char *)"raw";
        f.shard = 0;
        f.group = (char *)"g";
        f.member_id = (char *)"nobody";
        req = (sl_request)SLUICE__V1__REQUEST__INIT;
        req.id = 46;
        req.body_case = SLUICE__V1__REQUEST__BODY_FETCH;
        req.fetch = &f;
        CHECK((r = call_expect(fd, &req, SL_EFENCED)) != NULL);
        sl_response_free(r);
        /* a reset with no shard, and one while the member is active */
        Sluice__V1__ResetGroup rg = SLUICE__V1__RESET_GROUP__INIT;
        rg.stream = (char *)"raw";
        rg.group = (char *)"g";
        req = (sl_request)SLUICE__V1__REQUEST__INIT;
        req.id = 47;
        req.body_case = SLUICE__V1__REQUEST__BODY_RESET_GROUP;
        req.reset_group = &rg;
        CHECK((r = call_expect(fd, &req, SL_EINVAL)) != NULL);
        sl_response_free(r);
        Sluice__V1__Checkpoint cp = SLUICE__V1__CHECKPOINT__INIT;
        Sluice__V1__Checkpoint *cps[1] = {&cp};
        rg.checkpoints = cps;
        rg.n_checkpoints = 1;
        req.id = 48;
        CHECK((r = call_expect(fd, &req, SL_EINVAL)) != NULL);
        CHECK(strstr(r->message, "active members") != NULL);
        sl_response_free(r);
        cp.shard = BAD_SHARDS; /* forced, but no such shard */
        rg.force = 1;
        req.id = 49;
        CHECK((r = call_expect(fd, &req, SL_ENOTFOUND)) != NULL);
        sl_response_free(r);
    }
    close(fd);

    /* New data wakes parked fetches of closed connections: still fine. */
    CHECK((fd = raw_connect()) >= 0);
    CHECK_EQ(hello(fd, 1), 0);
    r = produce_raw(fd, 2, "raw", home, batch, blen, SLUICE__V1__ACK_MODE__ACK_DURABLE, SL_OK);
    CHECK(r != NULL);
    sl_response_free(r);
    close(fd);

    /* Let the neighbour run a few more rounds, then stop it. */
    uint32_t rounds = atomic_load(&bg_rounds);
    uint64_t deadline = it_mono_ms() + 10000;
    while (atomic_load(&bg_rounds) < rounds + 3 && it_mono_ms() < deadline) {
        it_sleep_ms(10);
    }
    atomic_store(&bg_stop, 1);
    pthread_join(th, NULL);
    fprintf(stderr, "  the library connection ran %u produce/consume rounds, %u errors\n",
            atomic_load(&bg_rounds), atomic_load(&bg_errors));
    CHECK(atomic_load(&bg_rounds) >= rounds + 3);
    CHECK_EQ(atomic_load(&bg_errors), 0);
    sluice_client_free(c);
    CHECK(it_broker_alive(&broker));
    CHECK_EQ(it_broker_stop(&broker), 0);
    it_broker_cleanup(&broker);
}

/* auto_create_streams: a Produce to an unknown stream creates it off the
 * main loop (the catalog's creator thread); produces pipelined meanwhile
 * wait for that one create and are stored in order; the stream survives a
 * restart. */
#define AUTO_PRODUCES 20u

static struct it_broker auto_broker;

TEST(auto_create_on_produce)
{
    setenv("SLUICE_AUTO_CREATE_STREAMS", "true", 1);
    int started = it_broker_start(&auto_broker, "always");
    unsetenv("SLUICE_AUTO_CREATE_STREAMS");
    CHECK_EQ(started, 0);
    uint16_t saved = (uint16_t)broker.port;
    broker.port = auto_broker.port; /* raw_connect dials broker.port */
    int fd = raw_connect();
    CHECK(fd >= 0);
    CHECK_EQ(hello(fd, 1), 0);
    uint8_t batch[512];
    sl_request req[AUTO_PRODUCES];
    Sluice__V1__Produce p[AUTO_PRODUCES];
    for (uint32_t i = 0; i < AUTO_PRODUCES; i++) { /* all sent before any answer */
        char value[32];
        snprintf(value, sizeof(value), "v%u", i);
        size_t len = make_batch(batch, sizeof(batch), "k", value);
        CHECK(len > 0);
        produce_req(&req[i], &p[i], 100 + i, "auto.created", 0, batch, len,
                    SLUICE__V1__ACK_MODE__ACK_DURABLE);
        CHECK_EQ(send_req(fd, &req[i]), 0);
    }
    for (uint32_t i = 0; i < AUTO_PRODUCES; i++) {
        sl_response *r = NULL;
        CHECK_EQ(recv_resp(fd, &r), 1);
        CHECK_EQ((int)r->code, SL_OK);
        CHECK(r->body_case == SLUICE__V1__RESPONSE__BODY_PRODUCE);
        CHECK_EQ(r->id, 100 + i);          /* in order */
        CHECK_EQ(r->produce->base_seq, i); /* one stream, created once */
        sl_response_free(r);
    }
    close(fd);
    CHECK_EQ(it_broker_stop(&auto_broker), 0);
    CHECK_EQ(it_broker_restart(&auto_broker), 0);
    fd = raw_connect();
    CHECK(fd >= 0);
    CHECK_EQ(hello(fd, 1), 0);
    size_t len = make_batch(batch, sizeof(batch), "k", "after restart");
    sl_response *r = produce_raw(fd, 7, "auto.created", 0, batch, len,
                                 SLUICE__V1__ACK_MODE__ACK_DURABLE, SL_OK);
    CHECK(r != NULL);
    CHECK_EQ(r->produce->base_seq, AUTO_PRODUCES);
    sl_response_free(r);
    close(fd);
    broker.port = saved;
    CHECK_EQ(it_broker_stop(&auto_broker), 0);
    it_broker_cleanup(&auto_broker);
}

/* ---- several batches of a producer in flight (#12) ---- */

static struct it_broker order_broker;

/* Sends durable produces of (value "v<seq>", producer 77, seq) for each of seqs[] in ONE
 * write (so the broker takes them in one read, the earlier ones still being appended),
 * then collects the n answers by request id into codes[] and messages[]. */
static int pipeline(int fd, const uint64_t *seqs, uint32_t n, uint64_t id0, bool in_order,
                    int *codes, char (*messages)[256])
{
    uint8_t *all = malloc(n * 1024u);
    size_t off = 0;
    for (uint32_t i = 0; all != NULL && i < n; i++) {
        char value[32];
        snprintf(value, sizeof(value), "v%" PRIu64, seqs[i]);
        uint8_t batch[512];
        size_t len = make_pbatch(batch, sizeof(batch), "k", value, 77, seqs[i]);
        if (len == 0) {
            free(all);
            return -1;
        }
        sl_request req;
        Sluice__V1__Produce p;
        produce_req(&req, &p, id0 + i, "ordered", 0, batch, len,
                    SLUICE__V1__ACK_MODE__ACK_DURABLE);
        p.in_order = in_order;
        off += put_frame(all + off, &req);
    }
    int rc = all != NULL && send_all(fd, all, off) == 0 ? 0 : -1;
    free(all);
    for (uint32_t k = 0; rc == 0 && k < n; k++) {
        sl_response *r = NULL;
        if (recv_resp(fd, &r) != 1 || r->id < id0 || r->id >= id0 + n) {
            sl_response_free(r);
            return -1;
        }
        codes[r->id - id0] = (int)r->code;
        snprintf(messages[r->id - id0], 256, "%s", r->message != NULL ? r->message : "");
        sl_response_free(r);
    }
    return rc;
}

/* A producer with several batches in flight: a batch that skips ahead of those being
 * appended is refused with a retriable error naming the cause, and so is every later one
 * until the refused one comes again; resent in order, the shard holds them in order, once
 * each. */
TEST(producer_batches_kept_in_order)
{
    CHECK_EQ(it_broker_start(&order_broker, "always"), 0);
    sluice_client *c = NULL;
    CHECK_EQ(it_connect(&order_broker, &c), SL_OK);
    CHECK_EQ(it_create_stream(c, "ordered", 1), SL_OK);
    uint16_t saved = (uint16_t)broker.port;
    broker.port = order_broker.port; /* raw_connect dials broker.port */
    int fd = raw_connect();
    CHECK(fd >= 0);
    CHECK_EQ(hello(fd, 1), 0);
    int codes[8];
    char msgs[8][256];
    const uint64_t first[] = {1, 3}; /* 2 is missing */
    CHECK_EQ(pipeline(fd, first, 2, 10, false, codes, msgs), 0);
    CHECK_EQ(codes[0], SL_OK);
    CHECK_EQ(codes[1], SL_EAGAIN);
    fprintf(stderr, "  batch 3 while 1 is in flight: %s\n", msgs[1]);
    CHECK(strstr(msgs[1], "out of order") != NULL && strstr(msgs[1], "resend in order") != NULL);
    const uint64_t second[] = {4, 2, 3, 4, 2}; /* 4 waits for 3; 2 again is a duplicate */
    CHECK_EQ(pipeline(fd, second, 5, 20, false, codes, msgs), 0);
    CHECK_EQ(codes[0], SL_EAGAIN); /* behind the refused 3 */
    CHECK_EQ(codes[1], SL_OK);
    CHECK_EQ(codes[2], SL_OK);
    CHECK_EQ(codes[3], SL_OK);
    CHECK(codes[4] == SL_OK || codes[4] == SL_EAGAIN); /* a duplicate, or still appending */
    /* a producer that keeps its batches in order may not skip one, even with nothing in
     * flight (without in_order, one that gave a batch up may) */
    const uint64_t skip[] = {6};
    CHECK_EQ(pipeline(fd, skip, 1, 30, true, codes, msgs), 0);
    CHECK_EQ(codes[0], SL_EAGAIN);
    fprintf(stderr, "  batch 6 after 4 (in order): %s\n", msgs[0]);
    CHECK(strstr(msgs[0], "the last one stored is 4") != NULL);
    const uint64_t then[] = {5, 6};
    CHECK_EQ(pipeline(fd, then, 2, 40, true, codes, msgs), 0);
    CHECK_EQ(codes[0], SL_OK);
    CHECK_EQ(codes[1], SL_OK);
    close(fd);
    broker.port = saved;

    /* the shard holds v1..v6 in order, once each */
    sluice_consumer *cons = NULL;
    struct sluice_consumer_opts co = {0};
    CHECK_EQ(sluice_consumer_new(c, "ordered", NULL, &co, &cons), SL_OK);
    struct sluice_record recs[16];
    size_t got = 0;
    for (int tries = 0; tries < 20 && got < 6; tries++) {
        size_t n = 0;
        CHECK_EQ(sluice_consumer_poll(cons, recs + got, 16 - got, &n, 200), SL_OK);
        for (size_t i = got; i < got + n; i++) { /* copy out: valid until the next poll */
            char v[16];
            snprintf(v, sizeof(v), "%.*s", (int)recs[i].value_len, (const char *)recs[i].value);
            CHECK(strlen(v) == 2 && v[0] == 'v');
            recs[i].seq = (uint64_t)(v[1] - '0'); /* (reused to keep the value's number) */
        }
        got += n;
    }
    CHECK_EQ(got, 6);
    for (size_t i = 0; i < got; i++) {
        CHECK_EQ(recs[i].seq, i + 1);
    }
    sluice_consumer_free(cons);
    sluice_client_free(c);
    CHECK_EQ(it_broker_stop(&order_broker), 0);
    it_broker_cleanup(&order_broker);
}

/* ---- zero-copy produce: batches referenced in the receive buffer (#12) ---- */

static struct it_broker zc_broker;

#define ZC_FRAMES 160u /* enough replaced buffers to reach SL_NET_IN_RETIRED_MAX (a pause) */
#define ZC_VALUE_MAX 6000u /* above the 4 KiB receive buffer: those frames grow it */

static size_t zc_value(uint32_t i, char *v)
{
    size_t n = i % 3 == 0 ? ZC_VALUE_MAX : 100u + (i * 397u) % 1400u;
    for (size_t j = 0; j < n; j++) {
        v[j] = (char)('a' + (i * 31u + j) % 26u);
    }
    v[n] = '\0';
    return n;
}

/* A batch referencing freed or reused receive memory: the broker parses a Produce in
 * place and the shard copies its batch later (here on another worker), so the receive
 * buffer must outlive every batch in it. Many durable produces in ONE write, of sizes
 * below and above a 4 KiB receive buffer (so it is outgrown, refilled and replaced while
 * appends are pending): every one is stored intact (a batch read from reused memory
 * fails its checksum: ECORRUPT; ASan sees a use after free) and in order. */
TEST(regress_batch_in_reused_receive_buffer)
{
    const char *args[] = {"--conn-buffer-bytes", "4KiB", "--workers", "2", NULL};
    CHECK_EQ(it_broker_start_args(&zc_broker, "always", 0, args), 0);
    sluice_client *c = NULL;
    CHECK_EQ(it_connect(&zc_broker, &c), SL_OK);
    CHECK_EQ(it_create_stream(c, "zc", 1), SL_OK);
    uint16_t saved = (uint16_t)broker.port;
    broker.port = zc_broker.port; /* raw_connect dials broker.port */
    int fd = raw_connect();
    CHECK(fd >= 0);
    CHECK_EQ(hello(fd, 1), 0);
    uint8_t *all = malloc(ZC_FRAMES * (ZC_VALUE_MAX + 512u));
    uint8_t *batch = malloc(ZC_VALUE_MAX + 256u);
    char *value = malloc(ZC_VALUE_MAX + 1u);
    CHECK(all != NULL && batch != NULL && value != NULL);
    size_t off = 0;
    for (uint32_t i = 0; i < ZC_FRAMES; i++) {
        zc_value(i, value);
        size_t len = make_batch(batch, ZC_VALUE_MAX + 256u, "", value);
        CHECK(len > 0);
        sl_request req;
        Sluice__V1__Produce p;
        produce_req(&req, &p, 100 + i, "zc", 0, batch, len, SLUICE__V1__ACK_MODE__ACK_DURABLE);
        off += put_frame(all + off, &req);
    }
    CHECK_EQ(send_all(fd, all, off), 0);
    uint32_t ok = 0;
    for (uint32_t k = 0; k < ZC_FRAMES; k++) {
        sl_response *r = NULL;
        CHECK_EQ(recv_resp(fd, &r), 1);
        if ((int)r->code != SL_OK) {
            fprintf(stderr, "  produce %" PRIu64 ": %d %s\n", r->id, (int)r->code,
                    r->message != NULL ? r->message : "");
        }
        ok += (int)r->code == SL_OK;
        sl_response_free(r);
    }
    CHECK_EQ(ok, ZC_FRAMES);
    close(fd);
    broker.port = saved;

    sluice_consumer *cons = NULL;
    struct sluice_consumer_opts co = {0};
    CHECK_EQ(sluice_consumer_new(c, "zc", NULL, &co, &cons), SL_OK);
    uint32_t got = 0;
    for (int tries = 0; tries < 50 && got < ZC_FRAMES; tries++) {
        struct sluice_record recs[16];
        size_t n = 0;
        CHECK_EQ(sluice_consumer_poll(cons, recs, 16, &n, 200), SL_OK);
        for (size_t i = 0; i < n; i++, got++) {
            size_t want = zc_value(got, value);
            CHECK_EQ(recs[i].value_len, want);
            CHECK(memcmp(recs[i].value, value, want) == 0);
        }
    }
    CHECK_EQ(got, ZC_FRAMES);
    sluice_consumer_free(cons);
    free(all);
    free(batch);
    free(value);
    sluice_client_free(c);
    CHECK_EQ(it_broker_stop(&zc_broker), 0);
    it_broker_cleanup(&zc_broker);
}

int main(void)
{
    int rc = it_preflight();
    if (rc != 0) {
        return rc;
    }
    RUN(bad_input);
    RUN(auto_create_on_produce);
    RUN(producer_batches_kept_in_order);
    RUN(regress_batch_in_reused_receive_buffer);
    TEST_END();
}
