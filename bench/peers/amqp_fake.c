/* amqp_fake.c - a trivial AMQP 0.9.1 server to calibrate amqp_drv (bench/peers/run.sh).
 *
 *   amqp_fake PORT      listen on 127.0.0.1:PORT; serve connections one after another
 *
 * Does the connection handshake (PLAIN, any credentials), opens channels, accepts
 * confirm.select, and confirms every basic.publish: after each read, one basic.ack
 * (multiple) for all publishes seen so far on that channel. Stores nothing, routes nothing.
 * Answers connection.close and channel.close; ignores everything else. Runs until killed.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define RBUF (1u << 20)

static uint8_t wbuf[1 << 16];
static size_t wlen;

static void put8(uint8_t v) { wbuf[wlen++] = v; }
static void put16(uint16_t v) { put8((uint8_t)(v >> 8)); put8((uint8_t)v); }
static void put32(uint32_t v) { put16((uint16_t)(v >> 16)); put16((uint16_t)v); }
static void put64(uint64_t v) { put32((uint32_t)(v >> 32)); put32((uint32_t)v); }

/* Starts a method frame on `ch`; returns the offset of its size field. */
static size_t method(uint16_t ch, uint16_t cls, uint16_t mth)
{
    put8(1);
    put16(ch);
    size_t at = wlen;
    put32(0);
    put16(cls);
    put16(mth);
    return at;
}

static void end_frame(size_t at)
{
    uint32_t n = (uint32_t)(wlen - at - 4);
    wbuf[at] = (uint8_t)(n >> 24);
    wbuf[at + 1] = (uint8_t)(n >> 16);
    wbuf[at + 2] = (uint8_t)(n >> 8);
    wbuf[at + 3] = (uint8_t)n;
    put8(0xCE);
}

static int flush_out(int fd)
{
    size_t off = 0;
    while (off < wlen) {
        ssize_t w = send(fd, wbuf + off, wlen - off, MSG_NOSIGNAL);
        if (w <= 0) {
            return -1;
        }
        off += (size_t)w;
    }
    wlen = 0;
    return 0;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void serve(int fd)
{
    static uint8_t r[RBUF];
    size_t len = 0;
    uint64_t published[8] = {0}, acked[8] = {0};
    int header = 0;
    for (;;) {
        ssize_t n = recv(fd, r + len, RBUF - len, 0);
        if (n <= 0) {
            return;
        }
        len += (size_t)n;
        size_t pos = 0;
        if (!header) {
            if (len < 8) {
                continue;
            }
            pos = 8; /* "AMQP\0\0\9\1" */
            header = 1;
            size_t at = method(0, 10, 10); /* connection.start */
            put8(0);
            put8(9);
            put32(0); /* server-properties: empty table */
            put32(5);
            memcpy(wbuf + wlen, "PLAIN", 5);
            wlen += 5;
            put32(5);
            memcpy(wbuf + wlen, "en_US", 5);
            wlen += 5;
            end_frame(at);
        }
        while (len - pos >= 8) {
            uint8_t type = r[pos];
            uint16_t ch = (uint16_t)(r[pos + 1] << 8 | r[pos + 2]);
            uint32_t size = be32(r + pos + 3);
            if (size + 8 > RBUF) {
                return;
            }
            if (len - pos < size + 8) {
                break;
            }
            const uint8_t *p = r + pos + 7;
            if (type == 1 && size >= 4) {
                uint16_t cls = (uint16_t)(p[0] << 8 | p[1]), mth = (uint16_t)(p[2] << 8 | p[3]);
                size_t at;
                if (cls == 10 && mth == 11) { /* start-ok -> tune */
                    at = method(0, 10, 30);
                    put16(2047);
                    put32(131072);
                    put16(0);
                    end_frame(at);
                } else if (cls == 10 && mth == 40) { /* open -> open-ok */
                    at = method(0, 10, 41);
                    put8(0);
                    end_frame(at);
                } else if (cls == 10 && mth == 50) { /* close -> close-ok */
                    at = method(0, 10, 51);
                    end_frame(at);
                    flush_out(fd);
                    return;
                } else if (cls == 20 && mth == 10) { /* channel.open -> open-ok */
                    at = method(ch, 20, 11);
                    put32(0);
                    end_frame(at);
                } else if (cls == 20 && mth == 40) { /* channel.close -> close-ok */
                    at = method(ch, 20, 41);
                    end_frame(at);
                } else if (cls == 85 && mth == 10) { /* confirm.select -> select-ok */
                    at = method(ch, 85, 11);
                    end_frame(at);
                } else if (cls == 60 && mth == 40 && ch < 8) { /* basic.publish */
                    published[ch]++;
                }
            }
            pos += size + 8;
        }
        memmove(r, r + pos, len - pos);
        len -= pos;
        for (uint16_t ch = 0; ch < 8; ch++) {
            if (published[ch] > acked[ch]) { /* basic.ack, multiple */
                size_t at = method(ch, 60, 80);
                put64(published[ch]);
                put8(1);
                end_frame(at);
                acked[ch] = published[ch];
            }
        }
        if (wlen > 0 && flush_out(fd) != 0) {
            return;
        }
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: amqp_fake PORT\n");
        return 2;
    }
    int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1]))};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(ls, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(ls, 8) != 0) {
        perror("amqp_fake: listen");
        return 1;
    }
    for (;;) {
        int fd = accept(ls, NULL, NULL);
        if (fd < 0) {
            continue;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        serve(fd);
        close(fd);
    }
}
