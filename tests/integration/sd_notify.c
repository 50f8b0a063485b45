/* sd_notify.c - sluiced speaks systemd's notify protocol, without systemd.
 *
 * The test stands in for the service manager: it binds a unix datagram socket (with
 * SO_PASSCRED, as systemd does, to see each sender's pid) and starts the real sluiced with
 * NOTIFY_SOCKET naming it, WATCHDOG_USEC and WATCHDOG_PID = the broker's pid.
 *
 * Covers: READY=1 arrives once, from the broker's own pid (NotifyAccess=main), and by then
 * the port file exists and the native port accepts a request; its STATUS= names streams,
 * shards and connections, and a later STATUS= counts a stream created meanwhile;
 * WATCHDOG=1 arrives from the loop's tick at half the interval (no gap as long as the
 * interval); SIGHUP (certificates and auth rules read again) is bracketed by RELOADING=1
 * with MONOTONIC_USEC and READY=1; SIGTERM brings STOPPING=1, then a clean exit (0). With a WATCHDOG_PID naming
 * another process, READY=1 comes and no WATCHDOG=1 does.
 */
#include "../unit/test.h"
#include "harness.h"

#include "common/error.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

/* Pings every 1 s; a gap of 2 s (the whole interval) would take a loop stalled for a
 * second, far beyond what a loaded sanitizer build shows. */
#define WATCHDOG_USEC     2000000u
#define WATCHDOG_WATCH_MS 4500u
#define READY_WAIT_MS     20000u
#define STATUS_WAIT_MS    9000u /* the status refreshes every 5 s */

struct manager {
    char root[64];
    char sock_path[96];
    char data[96];
    char port_file[96];
    int fd;
    pid_t pid;
};

static struct manager mgr = {.fd = -1};

static void cleanup(void)
{
    if (mgr.pid > 0) {
        kill(mgr.pid, SIGKILL);
        waitpid(mgr.pid, NULL, 0);
        mgr.pid = 0;
    }
    if (mgr.fd >= 0) {
        close(mgr.fd);
        mgr.fd = -1;
    }
    if (mgr.root[0] != '\0') {
        it_rmtree(mgr.root);
        mgr.root[0] = '\0';
    }
}

static int manager_open(void)
{
    snprintf(mgr.root, sizeof(mgr.root), "/var/tmp/sluice-notify-XXXXXX");
    if (mkdtemp(mgr.root) == NULL) {
        perror("mkdtemp");
        return -1;
    }
    snprintf(mgr.sock_path, sizeof(mgr.sock_path), "%s/notify", mgr.root);
    snprintf(mgr.data, sizeof(mgr.data), "%s/data", mgr.root);
    snprintf(mgr.port_file, sizeof(mgr.port_file), "%s/port", mgr.root);
    mgr.fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", mgr.sock_path);
    int one = 1;
    if (mgr.fd < 0 || bind(mgr.fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        setsockopt(mgr.fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) != 0) {
        perror("notify socket");
        return -1;
    }
    return 0;
}

/* Starts sluiced under our "service manager"; `watchdog_pid_self` 0 names another
 * process in WATCHDOG_PID. */
static int start(int watchdog_pid_self)
{
    unlink(mgr.port_file);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        return -1;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) {
            _exit(127);
        }
        char v[32];
        setenv("NOTIFY_SOCKET", mgr.sock_path, 1);
        snprintf(v, sizeof(v), "%u", WATCHDOG_USEC);
        setenv("WATCHDOG_USEC", v, 1);
        snprintf(v, sizeof(v), "%d", watchdog_pid_self ? (int)getpid() : (int)parent);
        setenv("WATCHDOG_PID", v, 1);
        execl(SLUICED_PATH, SLUICED_PATH, "--data", mgr.data, "--host", "127.0.0.1", "--port", "0",
              "--port-file", mgr.port_file, "--http-port", "0", "--log-level", "info",
              (char *)NULL);
        _exit(127);
    }
    mgr.pid = pid;
    return 0;
}

/* Receives one notification into `msg` within `wait_ms`, with the sender's pid. Returns 0,
 * or -1 on timeout. */
static int recv_msg(char *msg, size_t cap, pid_t *sender, uint32_t wait_ms)
{
    struct pollfd p = {.fd = mgr.fd, .events = POLLIN};
    int r = poll(&p, 1, (int)wait_ms);
    if (r <= 0) {
        return -1;
    }
    char cbuf[CMSG_SPACE(sizeof(struct ucred))];
    struct iovec iov = {.iov_base = msg, .iov_len = cap - 1};
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
    ssize_t n = recvmsg(mgr.fd, &mh, 0);
    if (n < 0) {
        return -1;
    }
    msg[n] = '\0';
    *sender = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
            struct ucred cred;
            memcpy(&cred, CMSG_DATA(c), sizeof(cred));
            *sender = cred.pid;
        }
    }
    return 0;
}

/* 1 when `msg` holds the line `line` (messages are newline-separated assignments). */
static int has_line(const char *msg, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = msg; p != NULL && *p != '\0';) {
        if (strncmp(p, line, n) == 0 && (p[n] == '\n' || p[n] == '\0')) {
            return 1;
        }
        p = strchr(p, '\n');
        p = p != NULL ? p + 1 : NULL;
    }
    return 0;
}

/* Waits for a message holding `line`; copies it to `out` (may be NULL). Every message on
 * the way must come from the broker's pid. Returns 0 or -1. */
static int wait_for(const char *line, char *out, size_t cap, uint32_t wait_ms)
{
    uint64_t deadline = it_mono_ms() + wait_ms;
    char msg[4096];
    while (it_mono_ms() < deadline) {
        pid_t sender = 0;
        if (recv_msg(msg, sizeof(msg), &sender, (uint32_t)(deadline - it_mono_ms())) != 0) {
            break;
        }
        if (sender != mgr.pid) {
            fprintf(stderr, "  message \"%s\" from pid %d, not the broker's %d\n", msg, (int)sender,
                    (int)mgr.pid);
            return -1;
        }
        if (has_line(msg, line)) {
            if (out != NULL) {
                snprintf(out, cap, "%s", msg);
            }
            return 0;
        }
    }
    fprintf(stderr, "  no %s within %u ms\n", line, wait_ms);
    return -1;
}

static uint32_t read_port(void)
{
    FILE *f = fopen(mgr.port_file, "r");
    unsigned port = 0;
    if (f != NULL) {
        if (fscanf(f, "%u", &port) != 1) {
            port = 0;
        }
        fclose(f);
    }
    return port;
}

static int stop_cleanly(void)
{
    kill(mgr.pid, SIGTERM);
    int status = 0;
    pid_t r = waitpid(mgr.pid, &status, 0);
    mgr.pid = 0;
    return r > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

TEST(ready_status_watchdog_stopping)
{
    CHECK(start(1) == 0);
    char msg[4096];
    CHECK(wait_for("READY=1", msg, sizeof(msg), READY_WAIT_MS) == 0);
    CHECK(strstr(msg, "STATUS=serving: 0 streams, 0 shards, 0 connections") != NULL);
    /* Ready means serving: the port is bound and a request is answered. */
    uint32_t port = read_port();
    CHECK(port != 0);
    struct it_broker b;
    memset(&b, 0, sizeof(b));
    snprintf(b.addr, sizeof(b.addr), "127.0.0.1:%u", port);
    sluice_client *c = NULL;
    CHECK(it_connect(&b, &c) == SL_OK);
    CHECK(it_create_stream(c, "notified", 3) == SL_OK);

    /* Watchdog pings at half the interval: none of the gaps reaches the interval. */
    uint64_t start_ms = it_mono_ms(), last = start_ms, gap_max = 0;
    uint32_t pings = 0;
    int status_seen = 0;
    while (it_mono_ms() - start_ms < WATCHDOG_WATCH_MS) {
        pid_t sender = 0;
        if (recv_msg(msg, sizeof(msg), &sender, 1000) != 0) {
            continue;
        }
        CHECK_EQ(sender, mgr.pid);
        if (has_line(msg, "WATCHDOG=1")) {
            uint64_t t = it_mono_ms();
            gap_max = t - last > gap_max ? t - last : gap_max;
            last = t;
            pings++;
        }
        status_seen |= strstr(msg, "STATUS=serving: 1 stream, 3 shards, 1 connection") != NULL;
    }
    fprintf(stderr, "  %u watchdog pings in %u ms, longest gap %llu ms\n", pings, WATCHDOG_WATCH_MS,
            (unsigned long long)gap_max);
    CHECK(pings >= 3);
    CHECK(gap_max < WATCHDOG_USEC / 1000u);

    /* The status line catches up with the new stream and the open connection. */
    if (!status_seen) {
        CHECK(wait_for("STATUS=serving: 1 stream, 3 shards, 1 connection", NULL, 0,
                       STATUS_WAIT_MS) == 0);
    }
    sluice_client_free(c);

    kill(mgr.pid, SIGHUP);
    CHECK(wait_for("RELOADING=1", msg, sizeof(msg), 10000) == 0);
    CHECK(strstr(msg, "MONOTONIC_USEC=") != NULL);
    CHECK(wait_for("READY=1", NULL, 0, 10000) == 0);

    kill(mgr.pid, SIGTERM);
    CHECK(wait_for("STOPPING=1", NULL, 0, 10000) == 0);
    int status = 0;
    CHECK(waitpid(mgr.pid, &status, 0) == mgr.pid);
    mgr.pid = 0;
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

TEST(watchdog_pid_of_another_process_means_no_pings)
{
    CHECK(start(0) == 0);
    CHECK(wait_for("READY=1", NULL, 0, READY_WAIT_MS) == 0);
    uint64_t start_ms = it_mono_ms();
    char msg[4096];
    while (it_mono_ms() - start_ms < 1500) {
        pid_t sender = 0;
        if (recv_msg(msg, sizeof(msg), &sender, 500) == 0) {
            CHECK(!has_line(msg, "WATCHDOG=1"));
        }
    }
    CHECK(stop_cleanly() == 0);
}

int main(void)
{
    int pre = it_preflight();
    if (pre != 0) {
        return pre;
    }
    atexit(cleanup);
    if (manager_open() != 0) {
        return 1;
    }
    RUN(ready_status_watchdog_stopping);
    cleanup();
    if (manager_open() != 0) {
        return 1;
    }
    RUN(watchdog_pid_of_another_process_means_no_pings);
    TEST_END();
}
