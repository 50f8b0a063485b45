/* queue_cli.c - the `sluice queue` and `sluice topic` commands against the real broker.
 *
 * Covers (SLUICE_BROKER=127.0.0.1:PORT, every command's exit code checked):
 * - send_receive_ack: `queue create q --shards 2`; `queue send q` with 200 lines on stdin
 *   (some bodies repeated); `queue receive q --max 200 --wait 2 --ack` prints exactly those
 *   200 bodies (compared as multisets); `queue stats q --json` then shows visible 0,
 *   inflight 0, delayed 0, and a second receive gets nothing.
 * - topic_subscriptions_filter: `topic create t --shards 2`; `topic subscribe t a --from
 *   oldest`; `topic subscribe t b --from oldest --filter '{"kind":["x"]}'`; `topic publish
 *   t --attr kind=x` then `--attr kind=y` lines; `queue receive t --group a` gets every
 *   line, `--group b` exactly the kind=x ones (and b's stats count the kind=y ones as
 *   filtered out); `topic subscriptions t` lists a and b; after `topic unsubscribe t b` it
 *   lists only a.
 * - work_retries_failures: 20 messages with bodies 1..20 on q2; `queue work q2 --exec CMD
 *   --concurrency 4` where CMD appends "BODY DELIVERY_COUNT ok|fail" to a file and fails
 *   (exit 1) the first time it sees a body divisible by 5 (a marker file per body). Once
 *   every body is done the CLI gets SIGTERM and must exit 0; every body succeeded exactly
 *   once, the failing ones first failed with delivery_count 1 and then succeeded with
 *   delivery_count 2 (SLUICE_DELIVERY_COUNT), and `queue stats q2` shows nothing visible,
 *   in flight or delayed.
 */
#include "../unit/test.h"
#include "harness.h"

#include "common/error.h"

#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SLUICE_CLI_PATH
#error "SLUICE_CLI_PATH must be defined (tests/CMakeLists.txt)"
#endif

#define OUT_MAX        (1u << 20)
#define QUEUE_LINES    200u
#define QUEUE_DISTINCT 170u /* bodies 170..199 repeat 0..29: a multiset, not a set */
#define TOPIC_X        30u
#define TOPIC_Y        45u
#define WORK_BODIES    20u
#define WORK_WAIT_MS   30000u /* failures come back after a 1 s nack delay; 20 quick commands */
#define LINES_MAX      1024u

static struct it_broker broker;
static char out[OUT_MAX];
static char in_path[128], out_path[128];

/* Forks the CLI with args (NULL-terminated, without argv[0]); stdin from `stdin_path`,
 * stdout to `stdout_path`, stderr the test's. Returns the pid, or -1. */
static pid_t spawn_cli(const char *const *args, const char *stdin_path, const char *stdout_path)
{
    const char *argv[32];
    int argc = 0;
    argv[argc++] = SLUICE_CLI_PATH;
    for (int i = 0; args[i] != NULL && argc < 31; i++) {
        argv[argc++] = args[i];
    }
    argv[argc] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        int in = open(stdin_path, O_RDONLY);
        int o = open(stdout_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (in < 0 || o < 0 || dup2(in, 0) < 0 || dup2(o, 1) < 0) {
            _exit(126);
        }
        execv(SLUICE_CLI_PATH, (char *const *)argv);
        _exit(127);
    }
    return pid;
}

/* Runs the CLI to its end with `input` on stdin (NULL: empty) and stdout captured into
 * `out`. Returns the exit code, or -1 (not started, or killed by a signal). */
static int run_cli(const char *const *args, const char *input)
{
    FILE *f = fopen(in_path, "w");
    if (f == NULL) {
        return -1;
    }
    if (input != NULL) {
        fputs(input, f);
    }
    fclose(f);
    pid_t pid = spawn_cli(args, in_path, out_path);
    int status;
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) {
        return -1;
    }
    f = fopen(out_path, "r");
    size_t n = f != NULL ? fread(out, 1, OUT_MAX - 1, f) : 0;
    if (f != NULL) {
        fclose(f);
    }
    out[n] = '\0';
    return WEXITSTATUS(status);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Splits `s` into lines (in place). Returns the count (may exceed `max`). */
static size_t split_lines(char *s, char **lines, size_t max)
{
    size_t n = 0;
    char *save = NULL;
    for (char *t = strtok_r(s, "\n", &save); t != NULL; t = strtok_r(NULL, "\n", &save)) {
        if (n < max) {
            lines[n] = t;
        }
        n++;
    }
    return n;
}

/* 1 when `got` (n lines, sorted here) and `want` (nw lines, sorted here) are the same
 * multiset, else prints the first difference and returns 0. */
static int same_multiset(char **got, size_t n, char **want, size_t nw)
{
    if (n != nw) {
        fprintf(stderr, "  %zu lines, expected %zu\n", n, nw);
        return 0;
    }
    qsort(got, n, sizeof(char *), cmp_str);
    qsort(want, nw, sizeof(char *), cmp_str);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(got[i], want[i]) != 0) {
            fprintf(stderr, "  line %zu (sorted): got '%s', expected '%s'\n", i, got[i], want[i]);
            return 0;
        }
    }
    return 1;
}

/* The value of "field":N in a compact JSON object, or -1. */
static int64_t json_u64(const char *json, const char *field)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "\"%s\":", field);
    const char *t = strstr(json, pat);
    uint64_t v;
    if (t == NULL || sscanf(t + strlen(pat), "%" SCNu64, &v) != 1) {
        fprintf(stderr, "  no %s in '%s'\n", field, json);
        return -1;
    }
    return (int64_t)v;
}

TEST(send_receive_ack)
{
    static char input[QUEUE_LINES * 32], want_buf[QUEUE_LINES * 32];
    size_t len = 0;
    for (uint32_t i = 0; i < QUEUE_LINES; i++) {
        len += (size_t)snprintf(input + len, sizeof(input) - len, "body-%03u %s\n",
                                i % QUEUE_DISTINCT, i % 3 == 0 ? "{\"x\": 1}" : "plain text");
    }
    memcpy(want_buf, input, len + 1);
    CHECK_EQ(run_cli((const char *[]){"queue", "create", "q", "--shards", "2", NULL}, NULL), 0);
    CHECK_EQ(run_cli((const char *[]){"queue", "send", "q", NULL}, input), 0);

    char max[16];
    snprintf(max, sizeof(max), "%u", QUEUE_LINES);
    CHECK_EQ(run_cli((const char *[]){"queue", "receive", "q", "--max", max, "--wait", "2", "--ack",
                                      NULL},
                     NULL),
             0);
    static char *lines[LINES_MAX], *want[LINES_MAX];
    size_t n = split_lines(out, lines, LINES_MAX);
    size_t nw = split_lines(want_buf, want, LINES_MAX);
    CHECK_EQ(nw, QUEUE_LINES);
    CHECK(same_multiset(lines, n, want, nw));

    CHECK_EQ(run_cli((const char *[]){"queue", "stats", "q", "--json", NULL}, NULL), 0);
    CHECK_EQ(json_u64(out, "visible"), 0);
    CHECK_EQ(json_u64(out, "inflight"), 0);
    CHECK_EQ(json_u64(out, "delayed"), 0);

    /* acked for good: nothing more to receive */
    CHECK_EQ(
        run_cli((const char *[]){"queue", "receive", "q", "--max", "10", "--wait", "0.5", NULL},
                NULL),
        0);
    CHECK_EQ(strlen(out), 0);
}

/* "PREFIX-i\n" for i in [0, count). */
static size_t make_lines(char *buf, size_t cap, const char *prefix, uint32_t count)
{
    size_t len = 0;
    for (uint32_t i = 0; i < count; i++) {
        len += (size_t)snprintf(buf + len, cap - len, "%s-%u\n", prefix, i);
    }
    return len;
}

TEST(topic_subscriptions_filter)
{
    static char xs[TOPIC_X * 16], ys[TOPIC_Y * 16], all[(TOPIC_X + TOPIC_Y) * 16];
    size_t lx = make_lines(xs, sizeof(xs), "x", TOPIC_X);
    size_t ly = make_lines(ys, sizeof(ys), "y", TOPIC_Y);
    memcpy(all, xs, lx);
    memcpy(all + lx, ys, ly + 1);

    CHECK_EQ(run_cli((const char *[]){"topic", "create", "t", "--shards", "2", NULL}, NULL), 0);
    CHECK_EQ(
        run_cli((const char *[]){"topic", "subscribe", "t", "a", "--from", "oldest", NULL}, NULL),
        0);
    CHECK_EQ(run_cli((const char *[]){"topic", "subscribe", "t", "b", "--from", "oldest",
                                      "--filter", "{\"kind\":[\"x\"]}", NULL},
                     NULL),
             0);
    CHECK_EQ(run_cli((const char *[]){"topic", "publish", "t", "--attr", "kind=x", NULL}, xs), 0);
    CHECK_EQ(run_cli((const char *[]){"topic", "publish", "t", "--attr", "kind=y", NULL}, ys), 0);

    static char *lines[LINES_MAX], *want[LINES_MAX];
    static char want_buf[sizeof(all)];
    CHECK_EQ(run_cli((const char *[]){"queue", "receive", "t", "--group", "a", "--max", "1000",
                                      "--wait", "2", "--ack", NULL},
                     NULL),
             0);
    size_t n = split_lines(out, lines, LINES_MAX);
    memcpy(want_buf, all, sizeof(all));
    size_t nw = split_lines(want_buf, want, LINES_MAX);
    CHECK_EQ(nw, TOPIC_X + TOPIC_Y);
    CHECK(same_multiset(lines, n, want, nw));

    CHECK_EQ(run_cli((const char *[]){"queue", "receive", "t", "--group", "b", "--max", "1000",
                                      "--wait", "2", "--ack", NULL},
                     NULL),
             0);
    n = split_lines(out, lines, LINES_MAX);
    memcpy(want_buf, xs, lx + 1);
    nw = split_lines(want_buf, want, LINES_MAX);
    CHECK_EQ(nw, TOPIC_X);
    CHECK(same_multiset(lines, n, want, nw));

    CHECK_EQ(run_cli((const char *[]){"queue", "stats", "t", "--group", "b", "--json", NULL}, NULL),
             0);
    CHECK_EQ(json_u64(out, "visible"), 0);
    CHECK_EQ(json_u64(out, "inflight"), 0);
    CHECK_EQ(json_u64(out, "filtered_out"), TOPIC_Y);

    CHECK_EQ(run_cli((const char *[]){"topic", "subscriptions", "t", NULL}, NULL), 0);
    n = split_lines(out, lines, LINES_MAX);
    CHECK_EQ(n, 2);
    qsort(lines, n, sizeof(char *), cmp_str);
    CHECK(strcmp(lines[0], "a") == 0 && strcmp(lines[1], "b") == 0);

    CHECK_EQ(run_cli((const char *[]){"topic", "unsubscribe", "t", "b", NULL}, NULL), 0);
    CHECK_EQ(run_cli((const char *[]){"topic", "subscriptions", "t", NULL}, NULL), 0);
    n = split_lines(out, lines, LINES_MAX);
    CHECK_EQ(n, 1);
    CHECK(strcmp(lines[0], "a") == 0);
    /* the subscription is gone: receiving from it is a broker error */
    CHECK_EQ(run_cli((const char *[]){"queue", "receive", "t", "--group", "b", NULL}, NULL), 1);
}

/* A subscription filtering on the value's JSON (--filter-scope body): only
 * the shipped orders come; a value that is not JSON matches nothing. */
TEST(topic_body_filter)
{
    CHECK_EQ(run_cli((const char *[]){"topic", "create", "orders", NULL}, NULL), 0);
    CHECK_EQ(run_cli((const char *[]){"topic", "subscribe", "orders", "shipped", "--from", "oldest",
                                      "--filter", "{\"order\":{\"state\":[\"shipped\"]}}",
                                      "--filter-scope", "body", NULL},
                     NULL),
             0);
    /* A bad scope is a usage error, before anything reaches the broker. */
    CHECK_EQ(run_cli((const char *[]){"topic", "subscribe", "orders", "x", "--filter", "{}",
                                      "--filter-scope", "value", NULL},
                     NULL),
             2);
    CHECK_EQ(run_cli((const char *[]){"topic", "publish", "orders", NULL},
                     "{\"order\":{\"id\":1,\"state\":\"shipped\"}}\n"
                     "{\"order\":{\"id\":2,\"state\":\"pending\"}}\n"
                     "order 3 shipped\n"
                     "{\"order\":{\"id\":4,\"state\":\"shipped\"}}\n"),
             0);
    CHECK_EQ(run_cli((const char *[]){"queue", "receive", "orders", "--group", "shipped", "--max",
                                      "10", "--wait", "2", "--ack", NULL},
                     NULL),
             0);
    static char *lines[LINES_MAX];
    size_t n = split_lines(out, lines, LINES_MAX);
    CHECK_EQ(n, 2);
    qsort(lines, n, sizeof(char *), cmp_str);
    CHECK(strstr(lines[0], "\"id\":1") != NULL && strstr(lines[1], "\"id\":4") != NULL);
    CHECK_EQ(run_cli((const char *[]){"queue", "stats", "orders", "--group", "shipped", "--json",
                                      NULL},
                     NULL),
             0);
    CHECK_EQ(json_u64(out, "filtered_out"), 2);
    CHECK(strstr(out, "\"filter_scope\":\"body\"") != NULL);
}

/* Outcome of the work command per body, from the lines "BODY DELIVERY_COUNT ok|fail". */
struct work_tally {
    uint32_t ok[WORK_BODIES + 1];
    uint32_t fail[WORK_BODIES + 1];
    uint32_t ok_count[WORK_BODIES + 1];   /* delivery count of the last success */
    uint32_t fail_count[WORK_BODIES + 1]; /* delivery count of the last failure */
    uint32_t bad_lines;
    uint32_t successes;
};

static void work_read(const char *path, struct work_tally *t)
{
    memset(t, 0, sizeof(*t));
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return;
    }
    char line[128], what[16];
    unsigned body, count;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (sscanf(line, "%u %u %15s", &body, &count, what) != 3 || body == 0 ||
            body > WORK_BODIES) {
            t->bad_lines++;
        } else if (strcmp(what, "ok") == 0) {
            t->ok[body]++;
            t->ok_count[body] = count;
            t->successes++;
        } else if (strcmp(what, "fail") == 0) {
            t->fail[body]++;
            t->fail_count[body] = count;
        } else {
            t->bad_lines++;
        }
    }
    fclose(f);
}

/* 1 when every body has at least one success recorded. */
static int work_all_done(const struct work_tally *t)
{
    for (uint32_t b = 1; b <= WORK_BODIES; b++) {
        if (t->ok[b] == 0) {
            return 0;
        }
    }
    return 1;
}

TEST(work_retries_failures)
{
    char dir[128], results[160], cmd[1024], input[WORK_BODIES * 8];
    snprintf(dir, sizeof(dir), "%s/work", broker.root);
    snprintf(results, sizeof(results), "%s/results", dir);
    CHECK_EQ(mkdir(dir, 0755), 0);
    /* Append one line per run; fail the first run of a body divisible by 5. The marker is
     * made before the failure is recorded, so a second run always succeeds. */
    snprintf(cmd, sizeof(cmd),
             "b=$(cat); "
             "if [ $((b %% 5)) -eq 0 ] && [ ! -e %s/seen-$b ]; then "
             "touch %s/seen-$b; echo \"$b $SLUICE_DELIVERY_COUNT fail\" >> %s; exit 1; "
             "fi; "
             "echo \"$b $SLUICE_DELIVERY_COUNT ok\" >> %s",
             dir, dir, results, results);
    size_t len = 0;
    for (uint32_t b = 1; b <= WORK_BODIES; b++) {
        len += (size_t)snprintf(input + len, sizeof(input) - len, "%u\n", b);
    }
    CHECK_EQ(run_cli((const char *[]){"queue", "create", "q2", "--shards", "2", NULL}, NULL), 0);
    CHECK_EQ(run_cli((const char *[]){"queue", "send", "q2", NULL}, input), 0);

    char work_out[160];
    snprintf(work_out, sizeof(work_out), "%s/work.stdout", dir);
    pid_t pid = spawn_cli(
        (const char *[]){"queue", "work", "q2", "--exec", cmd, "--concurrency", "4", NULL},
        "/dev/null", work_out);
    CHECK(pid > 0);
    static struct work_tally t;
    uint64_t end = it_mono_ms() + WORK_WAIT_MS;
    int exited = 0, status = 0;
    do {
        it_sleep_ms(100);
        work_read(results, &t);
        exited = waitpid(pid, &status, WNOHANG) == pid;
    } while (!exited && !work_all_done(&t) && it_mono_ms() < end);
    if (!exited) {
        CHECK_EQ(kill(pid, SIGTERM), 0);
        CHECK_EQ(waitpid(pid, &status, 0), pid);
    }
    CHECK(!exited); /* it must keep working until told to stop */
    CHECK(WIFEXITED(status));
    CHECK_EQ(WEXITSTATUS(status), 0);

    work_read(results, &t); /* final: nothing may have run twice after the poll */
    CHECK_EQ(t.bad_lines, 0);
    CHECK_EQ(t.successes, WORK_BODIES);
    for (uint32_t b = 1; b <= WORK_BODIES; b++) {
        if (t.ok[b] != 1) {
            fprintf(stderr, "  body %u succeeded %u times\n", b, t.ok[b]);
        }
        CHECK_EQ(t.ok[b], 1);
        if (b % 5 == 0) {
            CHECK_EQ(t.fail[b], 1);
            CHECK_EQ(t.fail_count[b], 1);
            CHECK_EQ(t.ok_count[b], 2);
        } else {
            CHECK_EQ(t.fail[b], 0);
            CHECK_EQ(t.ok_count[b], 1);
        }
    }

    CHECK_EQ(run_cli((const char *[]){"queue", "stats", "q2", "--json", NULL}, NULL), 0);
    CHECK_EQ(json_u64(out, "visible"), 0);
    CHECK_EQ(json_u64(out, "inflight"), 0);
    CHECK_EQ(json_u64(out, "delayed"), 0);
}

int main(void)
{
    int pre = it_preflight();
    if (pre != 0) {
        return pre;
    }
    if (it_broker_start(&broker, "always") != 0) {
        it_broker_cleanup(&broker);
        return 1;
    }
    snprintf(in_path, sizeof(in_path), "%s/stdin", broker.root);
    snprintf(out_path, sizeof(out_path), "%s/stdout", broker.root);
    if (setenv("SLUICE_BROKER", broker.addr, 1) != 0) {
        it_broker_cleanup(&broker);
        return 1;
    }
    RUN(send_receive_ack);
    RUN(topic_subscriptions_filter);
    RUN(topic_body_filter);
    RUN(work_retries_failures);
    if (it_broker_stop(&broker) != 0) {
        fprintf(stderr, "broker did not stop cleanly\n");
        test_failed_++;
    }
    it_broker_cleanup(&broker);
    TEST_END();
}
