/* test_http_curl.c - broker/http end to end against the real curl (skipped, 77,
 * without curl): a throwaway blocking server on 127.0.0.1 (ephemeral port) runs
 * one sl_http_session per connection and answers every request with a 300 KB
 * body derived from its path; curl runs with --http1.1 (GET and POST),
 * --http2-prior-knowledge and --http2 (h2c Upgrade) and its output is compared.
 */
#include "broker/http/http.h"
#include "common/error.h"
#include "test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define BODY_BYTES (300u * 1000u)

static uint8_t g_body[BODY_BYTES];

struct conn {
    int fd;
    int n_reqs;
    char proto[8];
};

static int conn_out(void *ctx, const void *data, size_t len)
{
    struct conn *c = ctx;
    const uint8_t *p = data;
    while (len > 0) {
        ssize_t n = write(c->fd, p, len);
        if (n <= 0) {
            return SL_ENOMEM;
        }
        p += n;
        len -= (size_t)n;
    }
    return SL_OK;
}

static void conn_request(void *ctx, struct sl_http_session *s, const struct sl_http_request *r)
{
    struct conn *c = ctx;
    c->n_reqs++;
    snprintf(c->proto, sizeof(c->proto), "%u", r->version);
    size_t n = BODY_BYTES;
    uint8_t fill = (uint8_t)(r->path[strlen(r->path) - 1] + r->body_len);
    memset(g_body, fill, n);
    struct sl_http_header h = {"x-proto", 7, c->proto, (uint32_t)strlen(c->proto)};
    sl_http_respond(s, r->id, 200, &h, 1, g_body, n);
}

static const struct sl_http_callbacks CB = {conn_request, conn_out, NULL, NULL};

/* Serves one connection until the session or the peer closes it. */
static void serve_one(int lfd, struct conn *c)
{
    c->fd = accept(lfd, NULL, NULL);
    struct sl_http_limits lim = {16384, 1 << 20, 16, 1 << 16};
    struct sl_http_session *s;
    if (c->fd < 0 || sl_http_session_new(&lim, &CB, c, &s) != SL_OK) {
        return;
    }
    uint8_t buf[16384];
    while (!sl_http_session_want_close(s)) {
        ssize_t n = read(c->fd, buf, sizeof(buf));
        if (n <= 0 || sl_http_session_feed(s, buf, (size_t)n) != SL_OK) {
            break;
        }
    }
    sl_http_session_free(s);
    close(c->fd);
}

/* Runs curl with `args` against the server; returns its exit status; output in `out`. */
static int run_curl(const char *args, const char *out, int *n_reqs, char *proto)
{
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(lfd, 4) != 0 ||
        getsockname(lfd, (struct sockaddr *)&a, &alen) != 0) {
        return -1;
    }
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "curl -s -S --max-time 20 %s -o %s http://127.0.0.1:%u/p7",
             args, out, ntohs(a.sin_port));
    pid_t pid = fork();
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    struct conn c = {0};
    serve_one(lfd, &c);
    int st = 0;
    waitpid(pid, &st, 0);
    close(lfd);
    *n_reqs = c.n_reqs;
    strcpy(proto, c.proto);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int check_file(const char *path, uint8_t fill)
{
    FILE *f = fopen(path, "rb");
    size_t n = 0;
    int c, bad = 0;
    while (f != NULL && (c = fgetc(f)) != EOF) {
        bad |= c != fill;
        n++;
    }
    if (f != NULL) {
        fclose(f);
    }
    return n == BODY_BYTES && !bad;
}

static void one(const char *args, const char *want_proto, uint8_t fill)
{
    char out[] = "/tmp/sl_http_curl_XXXXXX";
    int fd = mkstemp(out);
    CHECK(fd >= 0);
    close(fd);
    int n_reqs = 0;
    char proto[8] = "";
    int rc = run_curl(args, out, &n_reqs, proto);
    fprintf(stderr, "  curl %s: exit %d, %d request(s), version %s\n", args, rc, n_reqs, proto);
    CHECK_EQ(rc, 0);
    CHECK_EQ(n_reqs, 1);
    CHECK(strcmp(proto, want_proto) == 0);
    CHECK(check_file(out, fill));
    unlink(out);
}

TEST(curl_http11_get)
{
    one("--http1.1", "11", '7');
}

TEST(curl_http11_post)
{
    one("--http1.1 -d hello", "11", '7' + 5);
}

TEST(curl_h2_prior_knowledge)
{
    one("--http2-prior-knowledge", "20", '7');
}

TEST(curl_h2c_upgrade)
{
    one("--http2", "20", '7');
}

int main(void)
{
    if (system("curl --version >/dev/null 2>&1") != 0) {
        fprintf(stderr, "curl not found: skipped\n");
        return 77;
    }
    RUN(curl_http11_get);
    RUN(curl_http11_post);
    RUN(curl_h2_prior_knowledge);
    RUN(curl_h2c_upgrade);
    TEST_END();
}
