/* loopback.c - loopback TCP ceiling for bench/peers/run.sh.
 *
 *   loopback --serve PORT               accept on 127.0.0.1:PORT, read a connection until
 *                                       EOF (skipping empty ones), print the payload MB/s (10^6 bytes) received
 *   loopback --send PORT --seconds S    connect and stream 1 MiB writes for S seconds
 *
 * run.sh pins the receiver to the server core and the sender to the client core.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (1u << 20)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: loopback --serve PORT | --send PORT --seconds S\n");
        return 2;
    }
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[2]))};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    uint8_t *buf = malloc(CHUNK);
    memset(buf, 0x5A, CHUNK);
    if (strcmp(argv[1], "--serve") == 0) {
        int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
        setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(ls, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(ls, 1) != 0) {
            perror("loopback: listen");
            return 1;
        }
        uint64_t got = 0;
        double t0 = 0;
        while (got == 0) { /* a connection that sends nothing (a port probe) does not count */
            int fd = accept(ls, NULL, NULL);
            for (;;) {
                ssize_t n = recv(fd, buf, CHUNK, 0);
                if (n <= 0) {
                    break;
                }
                if (t0 == 0) {
                    t0 = now_s();
                }
                got += (uint64_t)n;
            }
            close(fd);
        }
        printf("%.1f\n", (double)got / (now_s() - t0) / 1e6);
        return 0;
    }
    double secs = argc >= 5 ? atof(argv[4]) : 3;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        perror("loopback: connect");
        return 1;
    }
    double end = now_s() + secs;
    while (now_s() < end) {
        if (send(fd, buf, CHUNK, MSG_NOSIGNAL) <= 0) {
            perror("loopback: send");
            return 1;
        }
    }
    close(fd);
    return 0;
}
