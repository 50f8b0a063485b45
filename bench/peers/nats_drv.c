/* nats_drv.c - NATS producer driver for bench/peers/run.sh: a small client of the NATS
 * text protocol in C (the Node client tops out near 30 k JetStream publishes/s on one core,
 * below the broker; consume, tail and queue stay in nats_drv.js).
 *
 *   nats_drv --port P --mode calib|produce --record-bytes N --batch N [--tier T]
 *            [--duration S] [--warmup S]
 *
 * calib:   core NATS: --batch `PUB calib.x` (no subscriber, no JetStream) then PING, wait
 *          for PONG - the driver's and protocol's ceiling
 * produce: JetStream publish: --batch `PUB bench.x <inbox>.<n>` in flight, then wait for
 *          all their acks (MSG on the inbox, a PubAck JSON); p50/p99 = that wait.
 *          The stream `bench` (bench.>, file storage, defaults) is recreated first.
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

/* Reads until a MSG arrives (answering PINGs); returns its payload (NUL-terminated, valid
 * until the next read), or NULL for a PONG. */
static char *next_event(size_t *len)
{
    for (;;) {
        char *l = line();
        if (strncmp(l, "MSG ", 4) == 0) {
            char *sp = strrchr(l, ' ');
            size_t n = strtoul(sp + 1, NULL, 10);
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

int main(int argc, char **argv)
{
    opts_parse(&o, argc, argv);
    int calib = strcmp(o.mode, "calib") == 0;
    if (!calib && strcmp(o.mode, "produce") != 0) {
        die("modes: calib, produce (the others are in nats_drv.js)");
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
    /* one batch's frames, rebuilt per batch (the payload carries its send time) */
    size_t per = 64 + o.bytes;
    char *out = malloc(per * o.batch + 16);
    uint8_t *pl = calloc(1, o.bytes);
    memset(pl + 8, 'x', o.bytes - 8);
    struct lat l;
    lat_init(&l, 1u << 22);
    uint64_t t0 = now_ns(), tw = t0 + (uint64_t)(o.warmup * 1e9), te = tw + (uint64_t)(o.duration * 1e9);
    uint64_t recs = 0, tstart = 0, t, seq = 0;
    while ((t = now_ns()) < te) {
        size_t n = 0;
        for (uint32_t i = 0; i < o.batch; i++) {
            if (calib) {
                n += (size_t)sprintf(out + n, "PUB calib.x %u\r\n", o.bytes);
            } else {
                n += (size_t)sprintf(out + n, "PUB bench.x _INBOX.sb.%" PRIu64 " %u\r\n", ++seq, o.bytes);
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
        if (calib) {
            size_t len;
            while (next_event(&len) != NULL) {
            }
        } else {
            for (uint32_t got = 0; got < o.batch;) {
                size_t len;
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
        uint64_t t2 = now_ns();
        if (t >= tw) {
            if (tstart == 0) {
                tstart = t;
            }
            recs += o.batch;
            lat_add(&l, t2 - t);
        }
    }
    double secs = (double)(now_ns() - tstart) / 1e9;
    emit(&o, calib ? "calib-produce" : "produce", recs, secs, lat_pct(&l, 50), lat_pct(&l, 99));
    if (!calib) {
        js_api("$JS.API.STREAM.DELETE.bench", "", 1);
    }
    close(fd);
    return 0;
}
