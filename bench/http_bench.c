/* http_bench.c - load generator for sluiced's Kinesis API over HTTP/1.1
 * (keep-alive, pipelined) and HTTP/2 cleartext (nghttp2 client, several
 * streams in flight), to set next to the native protocol's sluice-bench in
 * one run (bench/http_vs_native.sh). A benchmark, not a test.
 *
 *   http_bench --port HTTP_PORT --mode put|get|sqs-send|sqs-drain [--h2] [--conns N]
 *              [--depth D]
 *              [--records N] [--record-bytes B] [--duration S] [--stream NAME]
 *              [--shards N]
 *
 * put: every connection sends PutRecords of --records records of
 *      --record-bytes (one JSON body built once per connection: the server's
 *      work is measured, not the client's base64), keeping --depth requests
 *      in flight (h1: pipelined; h2: concurrent streams), for --duration s.
 * get: reads the stream from TRIM_HORIZON with GetRecords (Limit 10000) on
 *      every shard until caught up (fill it with put first).
 * sqs-send: SendMessageBatch of 10 messages of --record-bytes (HTTP/1.1,
 *      --depth in flight) to the queue --stream, for --duration s.
 * sqs-drain: ReceiveMessage (10) + DeleteMessageBatch until the queue is
 *      empty; the latency is that of the pair.
 * Prints records/s, MB/s of record payload and the request latency p50/p99
 * (from the request's send to its whole answer).
 *
 * Threading: one thread per connection, blocking sockets; the latency
 * histograms are merged at the end.
 */
#include "bench/hist.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define DEPTH_MAX 64u
#define CONNS_MAX 64u
#define RESP_MAX (64u << 20)
#define TARGET_PREFIX "Kinesis_20131202."

struct opts {
    uint32_t port;
    bool h2;
    bool get;
    bool sqs;
    uint32_t conns;
    uint32_t depth;
    uint32_t records;
    uint32_t record_bytes;
    double duration_s;
    const char *stream;
    uint32_t shards;
};

static struct opts o = {.conns = 1, .depth = 4, .records = 500, .record_bytes = 1024,
                        .duration_s = 5, .stream = "httpbench", .shards = 4};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what)
{
    fprintf(stderr, "http_bench: %s: %s\n", what, errno ? strerror(errno) : "failed");
    exit(1);
}

static int dial(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)o.port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int one = 1;
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        die("connect");
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

static void write_all(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n > 0) {
        ssize_t w = write(fd, b, n);
        if (w <= 0) {
            die("write");
        }
        b += w;
        n -= (size_t)w;
    }
}

/* A growable byte buffer. */
struct buf {
    char *p;
    size_t len;
    size_t cap;
};

static void buf_put(struct buf *b, const void *p, size_t n)
{
    if (b->cap - b->len < n + 1) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap - b->len < n + 1) {
            cap *= 2;
        }
        b->p = realloc(b->p, cap);
        if (b->p == NULL) {
            die("realloc");
        }
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void buf_str(struct buf *b, const char *s)
{
    buf_put(b, s, strlen(s));
}

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void buf_b64(struct buf *b, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
                     (i + 2 < n ? p[i + 2] : 0);
        char q[4] = {B64[v >> 18 & 63], B64[v >> 12 & 63], i + 1 < n ? B64[v >> 6 & 63] : '=',
                     i + 2 < n ? B64[v & 63] : '='};
        buf_put(b, q, 4);
    }
}

/* The PutRecords body of a connection: keys spread over every shard. */
static void put_body(struct buf *b, uint32_t conn)
{
    uint8_t *data = malloc(o.record_bytes);
    for (uint32_t i = 0; i < o.record_bytes; i++) {
        data[i] = (uint8_t)(i * 31 + conn);
    }
    buf_str(b, "{\"StreamName\":\"");
    buf_str(b, o.stream);
    buf_str(b, "\",\"Records\":[");
    for (uint32_t r = 0; r < o.records; r++) {
        char key[80];
        snprintf(key, sizeof(key), "%s{\"PartitionKey\":\"c%u-k%u\",\"Data\":\"",
                 r > 0 ? "," : "", conn, r);
        buf_str(b, key);
        buf_b64(b, data, o.record_bytes);
        buf_str(b, "\"}");
    }
    buf_str(b, "]}");
    free(data);
}

/* ---- HTTP/1.1 ---------------------------------------------------------- */

/* Reads one whole response into `resp` (body only); returns the status. */
static int h1_read(int fd, struct buf *in, struct buf *resp)
{
    for (;;) {
        char *end = in->len > 0 ? strstr(in->p, "\r\n\r\n") : NULL;
        if (end != NULL) {
            int status = 0;
            sscanf(in->p, "HTTP/1.1 %d", &status);
            const char *cl = strcasestr(in->p, "content-length:");
            size_t len = cl != NULL && cl < end ? strtoul(cl + 15, NULL, 10) : 0;
            size_t head = (size_t)(end - in->p) + 4;
            if (in->len >= head + len) {
                resp->len = 0;
                buf_put(resp, in->p + head, len);
                memmove(in->p, in->p + head + len, in->len - head - len);
                in->len -= head + len;
                in->p[in->len] = '\0';
                return status;
            }
        }
        char tmp[65536];
        ssize_t r = read(fd, tmp, sizeof(tmp));
        if (r <= 0) {
            die("read (the broker closed the connection)");
        }
        buf_put(in, tmp, (size_t)r);
    }
}

/* A request of the AWS JSON protocols: target "Kinesis_20131202.PutRecords"... */
static void h1_send_to(int fd, const char *target, const char *ctype, const char *body,
                       size_t len)
{
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "POST / HTTP/1.1\r\nhost: 127.0.0.1\r\nx-amz-target: %s\r\n"
                     "content-type: %s\r\ncontent-length: %zu\r\n\r\n",
                     target, ctype, len);
    write_all(fd, head, (size_t)n);
    write_all(fd, body, len);
}

static void h1_send(int fd, const char *op, const char *body, size_t len)
{
    char target[64];
    snprintf(target, sizeof(target), TARGET_PREFIX "%s", op);
    h1_send_to(fd, target, "application/x-amz-json-1.1", body, len);
}

#define SQS_JSON "application/x-amz-json-1.0"

/* One request, answered: the control calls (create, iterators). */
static int h1_call(const char *op, const char *body, struct buf *resp)
{
    int fd = dial();
    struct buf in = {0};
    h1_send(fd, op, body, strlen(body));
    int status = h1_read(fd, &in, resp);
    close(fd);
    free(in.p);
    return status;
}

/* ---- a connection's work -------------------------------------------------- */

struct worker {
    uint32_t idx;
    pthread_t thread;
    struct bench_hist hist;
    uint64_t records;
    uint64_t bytes;
    uint64_t failed;
    struct buf body;
    /* h2 */
    nghttp2_session *ng;
    int fd;
    uint64_t sent_ns[DEPTH_MAX * 2 + 8];
    int32_t stream_of[DEPTH_MAX * 2 + 8];
    uint32_t inflight;
    size_t body_off[DEPTH_MAX * 2 + 8];
    struct buf resp[DEPTH_MAX * 2 + 8];
};

static volatile bool stop_flag;

/* Counts the records a PutRecords answer says were stored. */
static void count_put(struct worker *w, int status, const struct buf *resp)
{
    const char *f = resp->p != NULL ? strstr(resp->p, "\"FailedRecordCount\":") : NULL;
    uint32_t failed = f != NULL ? (uint32_t)strtoul(f + 20, NULL, 10) : o.records;
    if (status != 200) {
        failed = o.records;
    }
    w->failed += failed;
    w->records += o.records - failed;
    w->bytes += (uint64_t)(o.records - failed) * o.record_bytes;
}

static void *h1_put(void *arg)
{
    struct worker *w = arg;
    int fd = dial();
    struct buf in = {0}, resp = {0};
    uint64_t sent[DEPTH_MAX];
    uint32_t head = 0, n = 0;
    while (!stop_flag || n > 0) {
        while (!stop_flag && n < o.depth) {
            sent[(head + n) % DEPTH_MAX] = now_ns();
            h1_send(fd, "PutRecords", w->body.p, w->body.len);
            n++;
        }
        int status = h1_read(fd, &in, &resp);
        bench_hist_record(&w->hist, now_ns() - sent[head]);
        head = (head + 1) % DEPTH_MAX;
        n--;
        count_put(w, status, &resp);
    }
    close(fd);
    free(in.p);
    free(resp.p);
    return NULL;
}

/* ---- HTTP/2 ------------------------------------------------------------------ */

static ssize_t ng_send(nghttp2_session *s, const uint8_t *data, size_t len, int flags, void *u)
{
    (void)s;
    (void)flags;
    struct worker *w = u;
    write_all(w->fd, data, len);
    return (ssize_t)len;
}

static int slot_of(struct worker *w, int32_t id)
{
    for (uint32_t i = 0; i < DEPTH_MAX; i++) {
        if (w->stream_of[i] == id) {
            return (int)i;
        }
    }
    return -1;
}

static ssize_t ng_read_body(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len,
                            uint32_t *flags, nghttp2_data_source *src, void *u)
{
    (void)s;
    (void)src;
    struct worker *w = u;
    int slot = slot_of(w, id);
    size_t off = slot >= 0 ? w->body_off[slot] : w->body.len;
    size_t n = w->body.len - off < len ? w->body.len - off : len;
    memcpy(buf, w->body.p + off, n);
    if (slot >= 0) {
        w->body_off[slot] += n;
    }
    if (off + n == w->body.len) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    }
    return (ssize_t)n;
}

static int ng_chunk(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data,
                    size_t len, void *u)
{
    (void)s;
    (void)flags;
    struct worker *w = u;
    int slot = slot_of(w, id);
    if (slot >= 0 && w->resp[slot].len + len < RESP_MAX) {
        buf_put(&w->resp[slot], data, len);
    }
    return 0;
}

static int ng_close(nghttp2_session *s, int32_t id, uint32_t code, void *u)
{
    (void)s;
    struct worker *w = u;
    int slot = slot_of(w, id);
    if (slot < 0) {
        return 0;
    }
    bench_hist_record(&w->hist, now_ns() - w->sent_ns[slot]);
    bool ok = code == 0 && w->resp[slot].p != NULL &&
              strstr(w->resp[slot].p, "\"FailedRecordCount\"") != NULL;
    count_put(w, ok ? 200 : 500, &w->resp[slot]);
    w->stream_of[slot] = 0;
    w->inflight--;
    return 0;
}

static void h2_submit(struct worker *w)
{
    int slot = slot_of(w, 0);
    char len[24];
    snprintf(len, sizeof(len), "%zu", w->body.len);
    const nghttp2_nv hdrs[] = {
#define NV(n, v) {(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NONE}
        NV(":method", "POST"), NV(":scheme", "http"), NV(":path", "/"),
        NV(":authority", "127.0.0.1"), NV("x-amz-target", TARGET_PREFIX "PutRecords"),
        NV("content-type", "application/x-amz-json-1.1"), NV("content-length", len),
#undef NV
    };
    nghttp2_data_provider dp = {.read_callback = ng_read_body};
    w->body_off[slot] = 0;
    w->resp[slot].len = 0;
    w->sent_ns[slot] = now_ns();
    int32_t id = nghttp2_submit_request(w->ng, NULL, hdrs, sizeof(hdrs) / sizeof(hdrs[0]), &dp,
                                        NULL);
    if (id < 0) {
        die("nghttp2_submit_request");
    }
    w->stream_of[slot] = id;
    w->inflight++;
}

static void *h2_put(void *arg)
{
    struct worker *w = arg;
    w->fd = dial();
    nghttp2_session_callbacks *cb;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_send_callback(cb, ng_send);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, ng_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, ng_close);
    nghttp2_session_client_new(&w->ng, cb, w);
    nghttp2_session_callbacks_del(cb);
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, (1u << 30) - 1}};
    nghttp2_submit_settings(w->ng, NGHTTP2_FLAG_NONE, iv, 1);
    nghttp2_session_set_local_window_size(w->ng, NGHTTP2_FLAG_NONE, 0, (1u << 30) - 1);
    while (!stop_flag || w->inflight > 0) {
        while (!stop_flag && w->inflight < o.depth) {
            h2_submit(w);
        }
        if (nghttp2_session_send(w->ng) != 0) {
            die("nghttp2_session_send");
        }
        uint8_t tmp[65536];
        ssize_t r = read(w->fd, tmp, sizeof(tmp));
        if (r <= 0 || nghttp2_session_mem_recv(w->ng, tmp, (size_t)r) < 0) {
            die("h2 read");
        }
    }
    nghttp2_session_del(w->ng);
    close(w->fd);
    return NULL;
}

/* ---- get: drain the stream ------------------------------------------------- */

/* The value of a JSON string field `name` in `body` (no escapes in ours). */
static bool json_field(const char *body, const char *name, char *out, size_t cap)
{
    char key[64];
    snprintf(key, sizeof(key), "\"%s\":\"", name);
    const char *p = body != NULL ? strstr(body, key) : NULL;
    if (p == NULL) {
        return false;
    }
    p += strlen(key);
    size_t n = strcspn(p, "\"");
    if (n >= cap) {
        return false;
    }
    memcpy(out, p, n);
    out[n] = '\0';
    return true;
}

static void *h1_get(void *arg)
{
    struct worker *w = arg;
    int fd = dial();
    struct buf in = {0}, resp = {0};
    for (uint32_t s = w->idx; s < o.shards; s += o.conns) {
        char body[1536], iter[1024];
        snprintf(body, sizeof(body),
                 "{\"StreamName\":\"%s\",\"ShardId\":\"shardId-%012u\","
                 "\"ShardIteratorType\":\"TRIM_HORIZON\"}",
                 o.stream, s);
        h1_send(fd, "GetShardIterator", body, strlen(body));
        if (h1_read(fd, &in, &resp) != 200 || !json_field(resp.p, "ShardIterator", iter, sizeof(iter))) {
            die("GetShardIterator");
        }
        for (;;) {
            snprintf(body, sizeof(body), "{\"ShardIterator\":\"%s\",\"Limit\":10000}", iter);
            uint64_t t0 = now_ns();
            h1_send(fd, "GetRecords", body, strlen(body));
            int status = h1_read(fd, &in, &resp);
            bench_hist_record(&w->hist, now_ns() - t0);
            if (status != 200) {
                die("GetRecords");
            }
            uint64_t got = 0;
            for (const char *p = strstr(resp.p, "\"SequenceNumber\""); p != NULL;
                 p = strstr(p + 1, "\"SequenceNumber\"")) {
                got++;
            }
            w->records += got;
            w->bytes += got * o.record_bytes;
            if (got == 0 || !json_field(resp.p, "NextShardIterator", iter, sizeof(iter))) {
                break;
            }
        }
    }
    close(fd);
    free(in.p);
    free(resp.p);
    return NULL;
}

/* ---- SQS: SendMessageBatch, then ReceiveMessage + DeleteMessageBatch ------- */

#define SQS_BATCH 10u /* entries per SendMessageBatch / DeleteMessageBatch (the SQS limit) */

static char sqs_url[128];

static void *sqs_send(void *arg)
{
    struct worker *w = arg;
    int fd = dial();
    struct buf in = {0}, resp = {0}, body = {0};
    char *msg = malloc(o.record_bytes + 1);
    memset(msg, 'a' + (int)(w->idx % 26), o.record_bytes);
    msg[o.record_bytes] = '\0';
    buf_str(&body, "{\"QueueUrl\":\"");
    buf_str(&body, sqs_url);
    buf_str(&body, "\",\"Entries\":[");
    for (uint32_t i = 0; i < SQS_BATCH; i++) {
        char id[48];
        snprintf(id, sizeof(id), "%s{\"Id\":\"m%u\",\"MessageBody\":\"", i > 0 ? "," : "", i);
        buf_str(&body, id);
        buf_str(&body, msg);
        buf_str(&body, "\"}");
    }
    buf_str(&body, "]}");
    uint64_t sent[DEPTH_MAX];
    uint32_t head = 0, n = 0;
    while (!stop_flag || n > 0) {
        while (!stop_flag && n < o.depth) {
            sent[(head + n) % DEPTH_MAX] = now_ns();
            h1_send_to(fd, "AmazonSQS.SendMessageBatch", SQS_JSON, body.p, body.len);
            n++;
        }
        int status = h1_read(fd, &in, &resp);
        bench_hist_record(&w->hist, now_ns() - sent[head]);
        head = (head + 1) % DEPTH_MAX;
        n--;
        bool ok = status == 200 && resp.p != NULL && strstr(resp.p, "\"Failed\":[{") == NULL;
        w->records += ok ? SQS_BATCH : 0;
        w->bytes += ok ? (uint64_t)SQS_BATCH * o.record_bytes : 0;
        w->failed += ok ? 0 : SQS_BATCH;
    }
    close(fd);
    free(msg);
    free(in.p);
    free(resp.p);
    free(body.p);
    return NULL;
}

/* Receives up to 10 and deletes them in one batch, until the queue is empty. */
static void *sqs_drain(void *arg)
{
    struct worker *w = arg;
    int fd = dial();
    struct buf in = {0}, resp = {0}, del = {0};
    char recv_body[256];
    int rn = snprintf(recv_body, sizeof(recv_body),
                      "{\"QueueUrl\":\"%s\",\"MaxNumberOfMessages\":10,\"WaitTimeSeconds\":0}",
                      sqs_url);
    for (;;) {
        uint64_t t0 = now_ns();
        h1_send_to(fd, "AmazonSQS.ReceiveMessage", SQS_JSON, recv_body, (size_t)rn);
        if (h1_read(fd, &in, &resp) != 200) {
            die("ReceiveMessage");
        }
        del.len = 0;
        buf_str(&del, "{\"QueueUrl\":\"");
        buf_str(&del, sqs_url);
        buf_str(&del, "\",\"Entries\":[");
        uint32_t got = 0;
        char handle[1024];
        for (const char *p = resp.p; p != NULL && (p = strstr(p, "\"ReceiptHandle\":\"")) != NULL;
             p++) {
            if (!json_field(p, "ReceiptHandle", handle, sizeof(handle))) {
                break;
            }
            char e[1200];
            snprintf(e, sizeof(e), "%s{\"Id\":\"d%u\",\"ReceiptHandle\":\"%s\"}",
                     got > 0 ? "," : "", got, handle);
            buf_str(&del, e);
            got++;
        }
        if (got == 0) {
            break;
        }
        buf_str(&del, "]}");
        h1_send_to(fd, "AmazonSQS.DeleteMessageBatch", SQS_JSON, del.p, del.len);
        if (h1_read(fd, &in, &resp) != 200) {
            die("DeleteMessageBatch");
        }
        bench_hist_record(&w->hist, now_ns() - t0);
        w->records += got;
        w->bytes += (uint64_t)got * o.record_bytes;
    }
    close(fd);
    free(in.p);
    free(resp.p);
    free(del.p);
    return NULL;
}

/* ---- main ------------------------------------------------------------------- */

static void usage(void)
{
    fprintf(stderr, "usage: http_bench --port HTTP_PORT [--mode put|get|sqs-send|sqs-drain] "
                    "[--h2] [--conns N] "
                    "[--depth D] [--records N] [--record-bytes B] [--duration S] "
                    "[--stream NAME] [--shards N]\n");
    exit(2);
}

static void parse(int argc, char **argv)
{
    static const struct option lo[] = {
        {"port", 1, 0, 'p'},   {"mode", 1, 0, 'm'},         {"h2", 0, 0, '2'},
        {"conns", 1, 0, 'c'},  {"depth", 1, 0, 'd'},        {"records", 1, 0, 'r'},
        {"record-bytes", 1, 0, 'b'}, {"duration", 1, 0, 't'}, {"stream", 1, 0, 's'},
        {"shards", 1, 0, 'n'}, {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (ch) {
        case 'p': o.port = (uint32_t)atoi(optarg); break;
        case 'm':
            o.get = strcmp(optarg, "get") == 0 || strcmp(optarg, "sqs-drain") == 0;
            o.sqs = strncmp(optarg, "sqs", 3) == 0;
            break;
        case '2': o.h2 = true; break;
        case 'c': o.conns = (uint32_t)atoi(optarg); break;
        case 'd': o.depth = (uint32_t)atoi(optarg); break;
        case 'r': o.records = (uint32_t)atoi(optarg); break;
        case 'b': o.record_bytes = (uint32_t)atoi(optarg); break;
        case 't': o.duration_s = atof(optarg); break;
        case 's': o.stream = optarg; break;
        case 'n': o.shards = (uint32_t)atoi(optarg); break;
        default: usage();
        }
    }
    if (o.port == 0 || o.conns == 0 || o.conns > CONNS_MAX || o.depth == 0 ||
        o.depth > DEPTH_MAX || o.records == 0 || o.records > 500 || o.record_bytes == 0) {
        usage();
    }
}

int main(int argc, char **argv)
{
    parse(argc, argv);
    struct buf resp = {0};
    char body[256];
    int st;
    if (o.sqs) { /* CreateQueue is idempotent */
        snprintf(body, sizeof(body), "{\"QueueName\":\"%s\"}", o.stream);
        int fd = dial();
        struct buf in = {0};
        h1_send_to(fd, "AmazonSQS.CreateQueue", SQS_JSON, body, strlen(body));
        st = h1_read(fd, &in, &resp);
        close(fd);
        free(in.p);
        if (st != 200 || !json_field(resp.p, "QueueUrl", sqs_url, sizeof(sqs_url))) {
            fprintf(stderr, "http_bench: CreateQueue: %d %s\n", st, resp.p ? resp.p : "");
            return 1;
        }
    } else {
        snprintf(body, sizeof(body), "{\"StreamName\":\"%s\",\"ShardCount\":%u}", o.stream,
                 o.shards);
        st = h1_call("CreateStream", body, &resp); /* 400 ResourceInUse when it exists */
        if (st != 200 && (resp.p == NULL || strstr(resp.p, "ResourceInUseException") == NULL)) {
            fprintf(stderr, "http_bench: CreateStream: %d %s\n", st, resp.p ? resp.p : "");
            return 1;
        }
    }
    struct worker *w = calloc(o.conns, sizeof(*w));
    for (uint32_t i = 0; i < o.conns; i++) {
        w[i].idx = i;
        bench_hist_reset(&w[i].hist);
        if (!o.get && !o.sqs) {
            put_body(&w[i].body, i);
        }
    }
    uint64_t t0 = now_ns();
    for (uint32_t i = 0; i < o.conns; i++) {
        void *(*fn)(void *) = o.sqs ? (o.get ? sqs_drain : sqs_send)
                              : o.get ? h1_get
                              : o.h2  ? h2_put
                                      : h1_put;
        pthread_create(&w[i].thread, NULL, fn, &w[i]);
    }
    if (!o.get) {
        struct timespec d = {(time_t)o.duration_s,
                             (long)((o.duration_s - (double)(time_t)o.duration_s) * 1e9)};
        nanosleep(&d, NULL);
        stop_flag = true;
    }
    struct bench_hist all;
    bench_hist_reset(&all);
    uint64_t records = 0, bytes = 0, failed = 0;
    for (uint32_t i = 0; i < o.conns; i++) {
        pthread_join(w[i].thread, NULL);
        bench_hist_merge(&all, &w[i].hist);
        records += w[i].records;
        bytes += w[i].bytes;
        failed += w[i].failed;
        free(w[i].body.p);
        for (uint32_t k = 0; k < sizeof(w[i].resp) / sizeof(w[i].resp[0]); k++) {
            free(w[i].resp[k].p);
        }
    }
    double secs = (double)(now_ns() - t0) / 1e9;
    printf("{\"mode\":\"%s\",\"transport\":\"%s\",\"conns\":%u,\"depth\":%u,"
           "\"records\":%llu,\"failed\":%llu,\"seconds\":%.3f,\"records_per_s\":%.0f,"
           "\"mb_per_s\":%.1f,\"p50_ms\":%.3f,\"p99_ms\":%.3f}\n",
           o.sqs ? (o.get ? "sqs-drain" : "sqs-send") : o.get ? "get" : "put",
           o.get || o.sqs ? "http1.1" : o.h2 ? "h2c" : "http1.1", o.conns,
           o.depth, (unsigned long long)records, (unsigned long long)failed, secs,
           (double)records / secs, (double)bytes / secs / 1e6,
           (double)bench_hist_percentile(&all, 50) / 1e6,
           (double)bench_hist_percentile(&all, 99) / 1e6);
    free(w);
    free(resp.p);
    return failed > 0 ? 1 : 0;
}
