/* nats_drv.c - NATS JetStream driver for bench/peers/run.sh: a small client of the NATS
 * text protocol in C (the Node client tops out near 30 k JetStream publishes/s on one core,
 * below the broker; only tail stays in nats_drv.js).
 *
 *   nats_drv --port P --mode calib|produce|consume|queue --record-bytes N --batch N
 *            [--tier T] [--duration S] [--warmup S] [--backlog N]
 *
 * calib:   core NATS: --batch `PUB calib.x` (no subscriber, no JetStream) then PING, wait
 *          for PONG - the driver's and protocol's ceiling
 * produce: JetStream publish: --batch `PUB bench.x <inbox>.<n>` in flight, then wait for
 *          all their acks (MSG on the inbox, a PubAck JSON); p50/p99 = that wait.
 *          The stream `bench` (bench.>, file storage, defaults) is recreated first.
 * consume: --backlog records published first (not timed), then a durable pull consumer
 *          (ack none) read with pull requests of 1,000 records
 * queue:   the same with ack explicit: pull requests of --batch, then one ack (PUB to the
 *          message's reply subject) per message, then PING/PONG; p50/p99 = that round
 */
#define _GNU_SOURCE /* memmem */
#include "drv_common.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

static struct opts o;
static int fd;
static char rbuf[1 << 20];
static size_t rlen, rpos;

static void die(const char *m)
{
    fprintf(stderr, "nats_drv: %s\n", m);
    exit(1);
}

static void send_all(const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w <= 0) {
            die("send failed");
        }
        c += w;
        n -= (size_t)w;
    }
}

/* Ensures `need` bytes are buffered from rpos. */
static void fill(size_t need)
{
    if (rpos + need > rlen || rlen == 0) {
        if (rpos > 0) {
            memmove(rbuf, rbuf + rpos, rlen - rpos);
            rlen -= rpos;
            rpos = 0;
        }
        while (rlen < need) {
            if (rlen == sizeof(rbuf)) {
                die("frame too large");
            }
            ssize_t n = recv(fd, rbuf + rlen, sizeof(rbuf) - rlen, 0);
            if (n <= 0) {
                die("connection closed");
            }
            rlen += (size_t)n;
        }
    }
}

/* Next protocol line (without CRLF), NUL-terminated in place. */
static char *line(void)
{
    for (;;) {
        char *s = rbuf + rpos;
        char *e = memmem(s, rlen - rpos, "\r\n", 2);
        if (e != NULL) {
            *e = 0;
            rpos = (size_t)(e - rbuf) + 2;
            return s;
        }
        fill(rlen - rpos + 1);
    }
}

static char reply_to[256]; /* the reply subject of the last MSG ("" without one) */

/* Reads until a MSG arrives (answering PINGs); returns its payload (NUL-terminated, valid
 * until the next read), or NULL for a PONG. */
static char *next_event(size_t *len)
{
    for (;;) {
        char *l = line();
        if (strncmp(l, "MSG ", 4) == 0) {
            /* MSG <subject> <sid> [reply-to] <#bytes> */
            char *tok[6];
            int nt = 0;
            for (char *p = strtok(l, " "); p != NULL && nt < 6; p = strtok(NULL, " ")) {
                tok[nt++] = p;
            }
            if (nt < 4) {
                die("bad MSG line");
            }
            snprintf(reply_to, sizeof(reply_to), "%s", nt == 5 ? tok[3] : "");
            size_t n = strtoul(tok[nt - 1], NULL, 10);
            fill(n + 2);
            char *p = rbuf + rpos;
            p[n] = 0;
            rpos += n + 2;
            *len = n;
            return p;
        }
        if (strcmp(l, "PONG") == 0) {
            return NULL;
        }
        if (strcmp(l, "PING") == 0) {
            send_all("PONG\r\n", 6);
        } else if (strncmp(l, "-ERR", 4) == 0) {
            fprintf(stderr, "nats_drv: server: %s\n", l);
            exit(1);
        } /* INFO, +OK: ignored */
    }
}

static void connect_nats(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)o.port)};
    inet_pton(AF_INET, o.host, &a.sin_addr);
    fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        die("connect failed");
    }
    const char *c = "CONNECT {\"verbose\":false,\"pedantic\":false,\"headers\":false,"
                    "\"name\":\"sluice-peers\"}\r\nPING\r\n";
    send_all(c, strlen(c));
    size_t n;
    while (next_event(&n) != NULL) {
    }
}

/* A JetStream API request; returns the reply (exits if it holds an error, unless `lenient`). */
static void js_api(const char *subject, const char *body, int lenient)
{
    char hdr[256];
    int h = snprintf(hdr, sizeof(hdr), "PUB %s _INBOX.sbapi %zu\r\n", subject, strlen(body));
    send_all(hdr, (size_t)h);
    send_all(body, strlen(body));
    send_all("\r\n", 2);
    size_t n;
    char *r;
    while ((r = next_event(&n)) == NULL) {
    }
    if (!lenient && strstr(r, "\"error\"") != NULL) {
        fprintf(stderr, "nats_drv: %s: %s\n", subject, r);
        exit(1);
    }
}

static char *out;      /* one batch's frames */
static uint8_t *pl;    /* a record's payload; first 8 bytes = send time */
static uint64_t pubseq;

/* Sends `n` records: JetStream publishes (a reply inbox each) or, for calib, core PUBs
 * then a PING. */
static void send_batch(uint32_t n_recs, int calib)
{
    size_t n = 0;
    for (uint32_t i = 0; i < n_recs; i++) {
        if (calib) {
            n += (size_t)sprintf(out + n, "PUB calib.x %u\r\n", o.bytes);
        } else {
            n += (size_t)sprintf(out + n, "PUB bench.x _INBOX.sb.%" PRIu64 " %u\r\n", ++pubseq,
                                 o.bytes);
        }
        payload_stamp(pl);
        memcpy(out + n, pl, o.bytes);
        n += o.bytes;
        out[n++] = '\r';
        out[n++] = '\n';
    }
    if (calib) {
        memcpy(out + n, "PING\r\n", 6);
        n += 6;
    }
    send_all(out, n);
}

/* Waits for the batch's answers: the PONG (calib) or `n_recs` PubAcks. */
static void wait_batch(uint32_t n_recs, int calib)
{
    size_t len;
    if (calib) {
        while (next_event(&len) != NULL) {
        }
        return;
    }
    for (uint32_t got = 0; got < n_recs;) {
        char *r = next_event(&len);
        if (r == NULL) {
            continue;
        }
        if (strstr(r, "\"error\"") != NULL) {
            fprintf(stderr, "nats_drv: publish: %s\n", r);
            exit(1);
        }
        got++;
    }
}

static void produce_round(void *ctx)
{
    int calib = *(const int *)ctx;
    send_batch(o.batch, calib);
    wait_batch(o.batch, calib);
}

static void run_produce(int calib)
{
    produce_loop(&o, calib, produce_round, &calib);
}

/* consume (ack none) or queue (ack explicit, one ack per message): a durable pull consumer
 * on the stored backlog, one pull request of --batch (consume: 1,000) at a time. */
static void run_pull(int queue)
{
    for (uint64_t done = 0; done < o.backlog; done += 1000) {
        send_batch(1000, 0);
        wait_batch(1000, 0);
    }
    char body[256];
    snprintf(body, sizeof(body),
             "{\"stream_name\":\"bench\",\"config\":{\"durable_name\":\"g\","
             "\"deliver_policy\":\"all\",\"ack_policy\":\"%s\",\"max_ack_pending\":%u}}",
             queue ? "explicit" : "none", queue ? (o.batch > 1000 ? o.batch : 1000) : 0);
    js_api("$JS.API.CONSUMER.DURABLE.CREATE.bench.g", body, 0);
    send_all("SUB _INBOX.sbpull 3\r\n", 21);
    uint32_t per = queue ? o.batch : 1000;
    char *acks = malloc((size_t)per * 300 + 16);
    struct lat l;
    lat_init(&l, 1u << 22);
    uint64_t recs = 0, t0 = now_ns(), te = t0 + (uint64_t)(o.duration * 1e9);
    while (recs < o.backlog && now_ns() < te) {
        uint64_t t = now_ns();
        uint32_t want = o.backlog - recs < per ? (uint32_t)(o.backlog - recs) : per;
        char req[128], hdr[160];
        int rl = snprintf(req, sizeof(req), "{\"batch\":%u}", want);
        int hl = snprintf(hdr, sizeof(hdr), "PUB $JS.API.CONSUMER.MSG.NEXT.bench.g _INBOX.sbpull %d\r\n", rl);
        send_all(hdr, (size_t)hl);
        send_all(req, (size_t)rl);
        send_all("\r\n", 2);
        size_t an = 0;
        for (uint32_t got = 0; got < want;) {
            size_t len;
            if (next_event(&len) == NULL) {
                continue;
            }
            got++;
            if (queue && reply_to[0] != 0) {
                an += (size_t)sprintf(acks + an, "PUB %s 0\r\n\r\n", reply_to);
            }
        }
        if (queue) {
            memcpy(acks + an, "PING\r\n", 6); /* the acks are processed when PONG is back */
            send_all(acks, an + 6);
            size_t len;
            while (next_event(&len) != NULL) {
            }
        }
        recs += want;
        lat_add(&l, now_ns() - t);
    }
    emit(&o, queue ? "queue" : "consume", recs, (double)(now_ns() - t0) / 1e9,
         queue ? lat_pct(&l, 50) : -1, queue ? lat_pct(&l, 99) : -1);
}

int main(int argc, char **argv)
{
    opts_parse(&o, argc, argv);
    int calib = strcmp(o.mode, "calib") == 0;
    int produce = strcmp(o.mode, "produce") == 0, consume = strcmp(o.mode, "consume") == 0;
    int queue = strcmp(o.mode, "queue") == 0;
    if (!calib && !produce && !consume && !queue) {
        die("modes: calib, produce, consume, queue (tail is in nats_drv.js)");
    }
    connect_nats();
    const char *sub = "SUB _INBOX.sbapi 1\r\nSUB _INBOX.sb.* 2\r\n";
    send_all(sub, strlen(sub));
    if (!calib) {
        js_api("$JS.API.STREAM.DELETE.bench", "", 1);
        js_api("$JS.API.STREAM.CREATE.bench",
               "{\"name\":\"bench\",\"subjects\":[\"bench.>\"],\"storage\":\"file\","
               "\"num_replicas\":1}",
               0);
    }
    uint32_t most = o.batch > 1000 ? o.batch : 1000;
    out = malloc((64 + (size_t)o.bytes) * most + 16);
    pl = calloc(1, o.bytes);
    memset(pl + 8, 'x', o.bytes - 8);
    if (calib || produce) {
        run_produce(calib);
    } else {
        run_pull(queue);
    }
    if (!calib) {
        js_api("$JS.API.STREAM.DELETE.bench", "", 1);
    }
    close(fd);
    return 0;
}
