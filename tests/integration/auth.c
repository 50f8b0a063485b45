/* auth.c - authentication and ACLs on the native protocol, with the real broker and library.
 *
 * Covers (auth = true, an auth file made with `sluiced --hash-password`):
 * - a client without credentials, with a wrong password, or as an unknown user is refused
 *   (SL_EAUTH, the same message for the last two);
 * - before authentication only Hello/Authenticate are served: a Produce is refused, a frame
 *   over 4 KiB closes the connection;
 * - the ACL matrix: 4 principals x 2 streams x 5 operations (admin create, produce, consume,
 *   queue receive, admin delete), every cell compared with the rules: 0 unexpected allows,
 *   0 unexpected denies;
 * - after login, a frame far above the limit before it is taken (with conn_workers too);
 * - credentials from $SLUICE_USER/$SLUICE_PASSWORD and from a 0600 file; a file readable by
 *   others is refused; the CLI with --user and --password-file or $SLUICE_PASSWORD;
 * - SIGHUP reloads the auth file: a new rule applies to an open connection;
 * - an auth file readable by others stops the broker from starting, naming the fix;
 * - after 5 failed logins from one address the next attempt is refused at once.
 */
#include "../unit/test.h"
#include "harness.h"

#include "common/error.h"
#include "proto/frame.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static struct it_broker broker;
static char dir[64];
static char auth_file[128];

static const char *users[] = {"alice", "bob", "ops", "carol"};
#define N_USERS 4

static const char *rules_v1 =
    "allow alice produce,consume,queue orders*\n" /* a prefix */
    "allow alice admin orders-*\n"
    "allow bob   consume orders\n"
    "allow ops   all *\n";
/* carol: no rule at all */

static char user_lines[N_USERS][256];

static int write_auth(const char *rules, mode_t mode)
{
    char tmp[160];
    snprintf(tmp, sizeof(tmp), "%s.tmp", auth_file);
    FILE *f = fopen(tmp, "w");
    if (f == NULL) {
        return -1;
    }
    fprintf(f, "# test auth file\n");
    for (int i = 0; i < N_USERS; i++) {
        fputs(user_lines[i], f);
    }
    fputs(rules, f);
    fclose(f);
    return chmod(tmp, mode) == 0 && rename(tmp, auth_file) == 0 ? 0 : -1;
}

static int connect_as(const char *user, const char *password, sluice_client **out)
{
    struct sluice_client_opts o = {.connect_timeout_ms = 3000, .request_timeout_ms = 5000,
                                   .reconnect_backoff_ms = 10, .user = user,
                                   .password = password};
    *out = NULL;
    return sluice_client_new(broker.addr, &o, out);
}

static int connect_user(const char *user, sluice_client **out)
{
    char pw[64];
    snprintf(pw, sizeof(pw), "%s-pw", user);
    return connect_as(user, pw, out);
}

TEST(missing_or_wrong_credentials_refused)
{
    sluice_client *c = NULL;
    unsetenv("SLUICE_USER");
    unsetenv("SLUICE_PASSWORD");
    int rc = sluice_client_new(broker.addr, NULL, &c);
    fprintf(stderr, "  none: %s (%s)\n", sl_errname(rc), sluice_last_error());
    CHECK_EQ(rc, SL_EAUTH);
    CHECK(strstr(sluice_last_error(), "requires authentication") != NULL);
    rc = connect_as("alice", "wrong", &c);
    char wrong[256];
    snprintf(wrong, sizeof(wrong), "%s", sluice_last_error());
    fprintf(stderr, "  wrong password: %s (%s)\n", sl_errname(rc), wrong);
    CHECK_EQ(rc, SL_EAUTH);
    rc = connect_as("mallory", "mallory-pw", &c);
    fprintf(stderr, "  unknown user: %s (%s)\n", sl_errname(rc), sluice_last_error());
    CHECK_EQ(rc, SL_EAUTH);
    CHECK(strcmp(wrong, sluice_last_error()) == 0); /* does not tell which names exist */
    CHECK(connect_user("alice", &c) == SL_OK);
    sluice_client_free(c);
}

/* A raw connection: Hello, then `body` as the next frame; returns the response code (or
 * -1 when the broker closed without one). */
static int raw_after_hello(const uint8_t *frame, size_t len)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)broker.port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        return -2;
    }
    Sluice__V1__Hello hello = SLUICE__V1__HELLO__INIT;
    hello.version = SL_PROTOCOL_VERSION;
    sl_request req = SLUICE__V1__REQUEST__INIT;
    req.body_case = SLUICE__V1__REQUEST__BODY_HELLO;
    req.hello = &hello;
    uint8_t buf[256];
    size_t n = sl_request_size(&req);
    sl_frame_put_header(buf, (uint32_t)n);
    sl_request_pack(&req, buf + SL_FRAME_HEADER_BYTES);
    int code = -1;
    if (write(fd, buf, n + SL_FRAME_HEADER_BYTES) < 0 || write(fd, frame, len) < 0) {
        close(fd);
        return -2;
    }
    struct timeval tv = {.tv_sec = 3};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    static uint8_t in[1 << 16];
    size_t have = 0;
    int responses = 0;
    for (;;) {
        ssize_t r = read(fd, in + have, sizeof(in) - have);
        if (r <= 0) {
            break;
        }
        have += (size_t)r;
        size_t off = 0;
        uint32_t flen;
        while (sl_frame_peek(in + off, have - off, 1u << 20, &flen) == SL_OK &&
               have - off >= SL_FRAME_HEADER_BYTES + flen) {
            sl_response *resp = sl_response_unpack(in + off + SL_FRAME_HEADER_BYTES, flen);
            if (resp != NULL && responses++ == 1) {
                code = (int)resp->code; /* the second response: the one after Hello */
            }
            sl_response_free(resp);
            off += SL_FRAME_HEADER_BYTES + flen;
        }
        memmove(in, in + off, have - off);
        have -= off;
        if (responses >= 2) {
            break;
        }
    }
    close(fd);
    return code;
}

TEST(nothing_but_authentication_before_it)
{
    Sluice__V1__Produce p = SLUICE__V1__PRODUCE__INIT;
    p.stream = (char *)"orders";
    sl_request req = SLUICE__V1__REQUEST__INIT;
    req.id = 7;
    req.body_case = SLUICE__V1__REQUEST__BODY_PRODUCE;
    req.produce = &p;
    uint8_t buf[256];
    size_t n = sl_request_size(&req);
    sl_frame_put_header(buf, (uint32_t)n);
    sl_request_pack(&req, buf + SL_FRAME_HEADER_BYTES);
    CHECK_EQ(raw_after_hello(buf, n + SL_FRAME_HEADER_BYTES), SL_EAUTH);
    /* a 5 KiB frame before authentication: refused, connection closed */
    static uint8_t big[5000 + SL_FRAME_HEADER_BYTES];
    sl_frame_put_header(big, 5000);
    CHECK_EQ(raw_after_hello(big, sizeof(big)), SL_ETOOBIG);
}

enum op { OP_CREATE, OP_PRODUCE, OP_CONSUME, OP_QUEUE, OP_DELETE, N_OPS };
static const char *op_names[N_OPS] = {"create", "produce", "consume", "queue", "delete"};

/* What rules_v1 allows (the test's own reading of the rules). */
static int expected(int user, const char *stream, int op)
{
    const char *u = users[user];
    if (strcmp(u, "ops") == 0) {
        return 1;
    }
    int orders_prefix = strncmp(stream, "orders", 6) == 0;
    if (strcmp(u, "alice") == 0) {
        if (op == OP_CREATE || op == OP_DELETE) {
            return strncmp(stream, "orders-", 7) == 0;
        }
        return orders_prefix;
    }
    if (strcmp(u, "bob") == 0) {
        return op == OP_CONSUME && strcmp(stream, "orders") == 0;
    }
    return 0;
}

static void on_delivery(void *ctx, int err, uint32_t shard, uint64_t seq)
{
    (void)shard;
    (void)seq;
    *(int *)ctx = err;
}

/* Runs `op` on `stream`; returns 1 allowed, 0 denied (SL_EDENIED), -1 another error. */
static int attempt(sluice_client *c, const char *stream, int op)
{
    int rc = SL_OK;
    if (op == OP_CREATE) {
        rc = it_create_stream(c, stream, 1);
    } else if (op == OP_DELETE) {
        rc = sluice_stream_delete(c, stream);
    } else if (op == OP_PRODUCE) {
        sluice_producer *p = NULL;
        int delivered = -1;
        rc = sluice_producer_new(c, stream, NULL, &p);
        if (rc == SL_OK) {
            rc = sluice_produce(p, "k", 1, "v", 1, NULL, 0, on_delivery, &delivered);
            int frc = rc == SL_OK ? sluice_producer_flush(p, 5000) : rc;
            sluice_producer_free(p);
            rc = rc != SL_OK ? rc : delivered >= 0 ? delivered : frc;
        }
    } else if (op == OP_CONSUME) {
        sluice_consumer *cons = NULL;
        rc = sluice_consumer_new(c, stream, NULL, NULL, &cons);
        if (rc == SL_OK) {
            struct sluice_record rec[4];
            size_t n = 0;
            rc = sluice_consumer_poll(cons, rec, 4, &n, 50);
            sluice_consumer_free(cons);
        }
    } else {
        struct sluice_message *msgs = NULL;
        size_t n = 0;
        rc = sluice_queue_receive(c, stream, "g", 1, 0, 0, &msgs, &n);
        if (rc == SL_OK || rc == SL_ENOTFOUND) {
            sluice_messages_free(msgs, n);
            rc = SL_OK; /* allowed: the group may not exist yet */
        }
    }
    if (rc == SL_OK || rc == SL_EEXIST) {
        return 1;
    }
    if (rc == SL_EDENIED) {
        return 0;
    }
    fprintf(stderr, "  %s on %s: %s (%s)\n", op_names[op], stream, sl_errname(rc),
            sluice_last_error());
    return -1;
}

TEST(acl_matrix)
{
    const char *streams[] = {"orders", "orders-eu", "payments"};
    sluice_client *ops = NULL;
    CHECK(connect_user("ops", &ops) == SL_OK);
    for (int s = 0; s < 3; s++) {
        CHECK(it_create_stream(ops, streams[s], 1) == SL_OK);
    }
    int unexpected_allow = 0, unexpected_deny = 0, errors = 0, cells = 0;
    for (int u = 0; u < N_USERS; u++) {
        sluice_client *c = NULL;
        CHECK(connect_user(users[u], &c) == SL_OK);
        for (int s = 0; s < 3; s++) {
            for (int op = 0; op < N_OPS; op++) {
                int got = attempt(c, streams[s], op);
                int want = expected(u, streams[s], op);
                cells++;
                if (got < 0) {
                    errors++;
                } else if (got && !want) {
                    unexpected_allow++;
                    fprintf(stderr, "  UNEXPECTED ALLOW: %s %s %s\n", users[u], op_names[op],
                            streams[s]);
                } else if (!got && want) {
                    unexpected_deny++;
                    fprintf(stderr, "  unexpected deny: %s %s %s\n", users[u], op_names[op],
                            streams[s]);
                }
                if (got == 1 && op == OP_DELETE) {
                    CHECK(it_create_stream(ops, streams[s], 1) == SL_OK); /* for the next */
                }
            }
        }
        sluice_client_free(c);
    }
    sluice_client_free(ops);
    fprintf(stderr, "  %d cells: %d unexpected allows, %d unexpected denies, %d errors\n",
            cells, unexpected_allow, unexpected_deny, errors);
    CHECK_EQ(unexpected_allow, 0);
    CHECK_EQ(unexpected_deny, 0);
    CHECK_EQ(errors, 0);
}

/* Frames before login are held to 4 KiB; after it, to max_frame_bytes - also on a
 * connection another loop serves (conn_workers), whose loop cuts frames by the flags the
 * main loop sends it (it once kept the small limit and closed the connection). */
static void on_big_delivery(void *ctx, int err, uint32_t shard, uint64_t seq)
{
    (void)shard;
    (void)seq;
    *(int *)ctx = err == SL_OK ? 1 : -1;
}

TEST(large_frames_after_login)
{
    /* four connections: whichever loop serves each (round robin over up to 4 loops) */
    sluice_client *c[4] = {0};
    for (int i = 0; i < 4; i++) {
        CHECK(connect_user("ops", &c[i]) == SL_OK);
    }
    CHECK(it_create_stream(c[0], "big-after-login", 1) == SL_OK);
    static char value[64u << 10]; /* one frame of 16 x the limit before login */
    memset(value, 'v', sizeof(value));
    for (int i = 0; i < 4; i++) {
        sluice_producer *p = NULL;
        CHECK_EQ(sluice_producer_new(c[i], "big-after-login", NULL, &p), SL_OK);
        volatile int done = 0;
        CHECK_EQ(sluice_produce(p, "k", 1, value, sizeof(value), NULL, 0, on_big_delivery,
                                (void *)&done),
                 SL_OK);
        CHECK_EQ(sluice_producer_flush(p, 10000), SL_OK);
        struct sluice_producer_stats st;
        sluice_producer_stats(p, &st);
        sluice_producer_free(p);
        CHECK_EQ(done, 1);
        CHECK_EQ(st.retries, 0u); /* taken at once, the connection kept */
    }
    for (int i = 0; i < 4; i++) {
        sluice_client_free(c[i]);
    }
}

TEST(credentials_from_environment_and_file)
{
    sluice_client *c = NULL;
    setenv("SLUICE_USER", "bob", 1);
    setenv("SLUICE_PASSWORD", "bob-pw", 1);
    CHECK(sluice_client_new(broker.addr, NULL, &c) == SL_OK);
    sluice_client_free(c);
    unsetenv("SLUICE_USER");
    unsetenv("SLUICE_PASSWORD");
    char path[160];
    snprintf(path, sizeof(path), "%s/creds", dir);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    fprintf(f, "# bob\nuser = bob\npassword = bob-pw\n");
    fclose(f);
    CHECK(chmod(path, 0644) == 0);
    struct sluice_client_opts o = {.credentials_file = path};
    int rc = sluice_client_new(broker.addr, &o, &c);
    fprintf(stderr, "  0644: %s (%s)\n", sl_errname(rc), sluice_last_error());
    CHECK_EQ(rc, SL_EINVAL);
    CHECK(strstr(sluice_last_error(), "chmod 600") != NULL);
    CHECK(chmod(path, 0600) == 0);
    CHECK(sluice_client_new(broker.addr, &o, &c) == SL_OK);
    sluice_client_free(c);
}

TEST(cli_with_credentials)
{
    char pwfile[160], cmd[768];
    snprintf(pwfile, sizeof(pwfile), "%s/alice.pw", dir);
    FILE *f = fopen(pwfile, "w");
    CHECK(f != NULL);
    fputs("alice-pw\n", f);
    fclose(f);
    CHECK(chmod(pwfile, 0600) == 0);
    snprintf(cmd, sizeof(cmd), "'%s' --broker %s --user alice --password-file '%s' stream list "
                               ">/dev/null", SLUICE_CLI_PATH, broker.addr, pwfile);
    CHECK_EQ(system(cmd), 0);
    snprintf(cmd, sizeof(cmd), "SLUICE_PASSWORD=alice-pw '%s' --broker %s --user alice stream "
                               "describe orders >/dev/null", SLUICE_CLI_PATH, broker.addr);
    CHECK_EQ(system(cmd), 0);
    snprintf(cmd, sizeof(cmd), "'%s' --broker %s stream list 2>/dev/null", SLUICE_CLI_PATH,
             broker.addr);
    CHECK(system(cmd) != 0); /* no credentials */
    CHECK(chmod(pwfile, 0644) == 0);
    snprintf(cmd, sizeof(cmd), "'%s' --broker %s --user alice --password-file '%s' stream list "
                               "2>/dev/null", SLUICE_CLI_PATH, broker.addr, pwfile);
    CHECK(system(cmd) != 0); /* a password file readable by others */
}

TEST(sighup_reloads_rules)
{
    sluice_client *c = NULL;
    CHECK(connect_user("carol", &c) == SL_OK);
    CHECK_EQ(attempt(c, "payments", OP_PRODUCE), 0);
    char rules[1024];
    snprintf(rules, sizeof(rules), "%sallow carol produce payments\n", rules_v1);
    CHECK(write_auth(rules, 0600) == 0);
    CHECK(kill(broker.pid, SIGHUP) == 0);
    it_sleep_ms(300);
    CHECK_EQ(attempt(c, "payments", OP_PRODUCE), 1); /* the open connection, new rules */
    /* a broken file (readable by others) keeps the rules in force */
    CHECK(write_auth(rules_v1, 0644) == 0);
    CHECK(kill(broker.pid, SIGHUP) == 0);
    it_sleep_ms(300);
    CHECK_EQ(attempt(c, "payments", OP_PRODUCE), 1);
    sluice_client_free(c);
}

TEST(auth_file_readable_by_others_stops_the_start)
{
    CHECK(it_broker_stop(&broker) == 0);
    it_broker_cleanup(&broker);
    CHECK(write_auth(rules_v1, 0640) == 0);
    CHECK(it_broker_start(&broker, NULL) != 0);
    it_broker_cleanup(&broker);
    CHECK(write_auth(rules_v1, 0600) == 0);
    CHECK(it_broker_start(&broker, NULL) == 0);
}

TEST(failed_logins_rate_limited)
{
    sluice_client *c = NULL;
    for (int i = 0; i < 5; i++) {
        CHECK_EQ(connect_as("alice", "nope", &c), SL_EAUTH);
    }
    int rc = connect_user("alice", &c); /* right password, but too soon */
    fprintf(stderr, "  6th: %s (%s)\n", sl_errname(rc), sluice_last_error());
    CHECK_EQ(rc, SL_EAUTH);
    CHECK(strstr(sluice_last_error(), "too many failed logins") != NULL);
}

int main(void)
{
    int pre = it_preflight();
    if (pre != 0) {
        return pre;
    }
    snprintf(dir, sizeof(dir), "/var/tmp/sluice-auth-XXXXXX");
    if (mkdtemp(dir) == NULL) {
        return 1;
    }
    snprintf(auth_file, sizeof(auth_file), "%s/auth", dir);
    for (int i = 0; i < N_USERS; i++) {
        if (it_user_line(users[i], user_lines[i], sizeof(user_lines[i])) != 0) {
            fprintf(stderr, "sluiced --hash-password failed\n");
            return 1;
        }
    }
    if (write_auth(rules_v1, 0600) != 0) {
        return 1;
    }
    setenv("SLUICE_AUTH", "true", 1);
    setenv("SLUICE_AUTH_FILE", auth_file, 1);
    if (it_broker_start(&broker, NULL) != 0) {
        return 1;
    }
    RUN(missing_or_wrong_credentials_refused);
    RUN(nothing_but_authentication_before_it);
    RUN(acl_matrix);
    RUN(large_frames_after_login);
    RUN(credentials_from_environment_and_file);
    RUN(cli_with_credentials);
    RUN(sighup_reloads_rules);
    RUN(auth_file_readable_by_others_stops_the_start);
    RUN(failed_logins_rate_limited);
    it_broker_cleanup(&broker);
    it_rmtree(dir);
    TEST_END();
}
