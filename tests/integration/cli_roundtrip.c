/* cli_roundtrip.c - the `sluice` CLI against the real broker.
 *
 * Covers (SLUICE_BROKER=127.0.0.1:PORT, every command's exit code checked):
 * `stream create S --shards 2`; `produce S --key-field k` with JSON lines on stdin;
 * `consume S --from oldest --count N` prints exactly those lines (compared as sorted sets,
 * and each key's lines in production order); `stream describe S` (2 shards whose NEXT_SEQ
 * sum to N); `stream list` names S; `consume S --group G --count 50` then
 * `lag G --stream S` shows N - 50 behind; `consume S --group G` prints the other N - 50
 * lines and the lag drops to 0; `stream delete S`, after which S is gone from the list and
 * `stream describe S` fails with exit 1; a bad usage exits 2.
 */
#include "../unit/test.h"
#include "harness.h"

#include "common/error.h"

#include <fcntl.h>
#include <inttypes.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SLUICE_CLI_PATH
#error "SLUICE_CLI_PATH must be defined (tests/CMakeLists.txt)"
#endif

#define LINES 300u
#define KEYS 7u
#define OUT_MAX (1u << 20)

static struct it_broker broker;
static char out[OUT_MAX];

/* The CLI with args (NULL-terminated, without argv[0]); stdin from `input` (NULL: empty);
 * stdout captured into `out`. Returns the exit code, or -1. */
static int run_cli(const char *const *args, const char *input)
{
    return it_run_cli(&broker, args, input, 0, out, OUT_MAX);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Splits `out` into lines (in place). Returns the count. */
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

/* Checks that `lines` (n of them) are exactly the produced lines [from, LINES) as a set,
 * and that each key's lines come in production order. */
static int check_lines(char **lines, size_t n, uint32_t from, uint32_t count)
{
    if (n != count) {
        fprintf(stderr, "  %zu lines, expected %u\n", n, count);
        return 0;
    }
    int last[KEYS];
    for (uint32_t k = 0; k < KEYS; k++) {
        last[k] = -1;
    }
    static uint8_t seen[LINES];
    memset(seen, 0, sizeof(seen));
    for (size_t i = 0; i < n; i++) {
        unsigned k, j;
        char want[64];
        if (sscanf(lines[i], "{\"k\":\"key%u\",\"n\":%u}", &k, &j) != 2 || j >= LINES ||
            k != j % KEYS) {
            fprintf(stderr, "  unexpected line '%s'\n", lines[i]);
            return 0;
        }
        snprintf(want, sizeof(want), "{\"k\":\"key%u\",\"n\":%u}", k, j);
        if (strcmp(lines[i], want) != 0 || seen[j] || j < from) {
            fprintf(stderr, "  line '%s' unexpected or repeated\n", lines[i]);
            return 0;
        }
        seen[j] = 1;
        if ((int)j < last[k]) {
            fprintf(stderr, "  key%u: n %u after %d (out of order)\n", k, j, last[k]);
            return 0;
        }
        last[k] = (int)j;
    }
    return 1;
}

/* The "total" line of `sluice lag`. */
static int64_t lag_total(const char *s)
{
    const char *t = strstr(s, "total");
    uint64_t v;
    if (t == NULL || sscanf(t, "total %" SCNu64, &v) != 1) {
        fprintf(stderr, "  no total in lag output:\n%s\n", s);
        return -1;
    }
    return (int64_t)v;
}

TEST(cli_roundtrip)
{
    CHECK_EQ(it_broker_start(&broker, "always"), 0);
    CHECK_EQ(setenv("SLUICE_BROKER", broker.addr, 1), 0);

    CHECK_EQ(run_cli((const char *[]){"stream", "create", "S", "--shards", "2", NULL}, NULL), 0);

    static char input[LINES * 40];
    static char sorted_in[LINES * 40];
    size_t len = 0;
    for (uint32_t j = 0; j < LINES; j++) {
        len += (size_t)snprintf(input + len, sizeof(input) - len, "{\"k\":\"key%u\",\"n\":%u}\n",
                                j % KEYS, j);
    }
    memcpy(sorted_in, input, len + 1);
    CHECK_EQ(run_cli((const char *[]){"produce", "S", "--key-field", "k", NULL}, input), 0);

    /* consume everything: the same lines */
    char count[16];
    snprintf(count, sizeof(count), "%u", LINES);
    CHECK_EQ(run_cli((const char *[]){"consume", "S", "--from", "oldest", "--count", count, NULL},
                     NULL),
             0);
    static char *lines[LINES + 10], *want[LINES + 10];
    size_t n = split_lines(out, lines, LINES + 10);
    CHECK(check_lines(lines, n, 0, LINES));
    size_t nw = split_lines(sorted_in, want, LINES + 10);
    CHECK_EQ(nw, n);
    qsort(lines, n, sizeof(char *), cmp_str);
    qsort(want, nw, sizeof(char *), cmp_str);
    for (size_t i = 0; i < n; i++) {
        CHECK(strcmp(lines[i], want[i]) == 0);
    }

    /* describe */
    CHECK_EQ(run_cli((const char *[]){"stream", "describe", "S", NULL}, NULL), 0);
    CHECK(strstr(out, "stream       S\n") != NULL);
    CHECK(strstr(out, "shards       2\n") != NULL);
    uint64_t next_total = 0;
    uint32_t rows = 0;
    {
        char *save = NULL;
        for (char *t = strtok_r(out, "\n", &save); t != NULL; t = strtok_r(NULL, "\n", &save)) {
            unsigned shard;
            uint64_t hs, he, first, next;
            if (sscanf(t, "%u %" SCNx64 " %" SCNx64 " %" SCNu64 " %" SCNu64, &shard, &hs, &he,
                       &first, &next) == 5) {
                CHECK_EQ(shard, rows);
                CHECK_EQ(first, 0);
                next_total += next;
                rows++;
            }
        }
    }
    CHECK_EQ(rows, 2);
    CHECK_EQ(next_total, LINES);

    /* list */
    CHECK_EQ(run_cli((const char *[]){"stream", "list", NULL}, NULL), 0);
    CHECK(strstr(out, "\nS ") != NULL);

    /* a group reads 50, then the rest */
    CHECK_EQ(run_cli((const char *[]){"consume", "S", "--group", "G", "--from", "oldest",
                                      "--count", "50", NULL},
                     NULL),
             0);
    n = split_lines(out, lines, LINES + 10);
    CHECK_EQ(n, 50);
    CHECK_EQ(run_cli((const char *[]){"lag", "G", "--stream", "S", NULL}, NULL), 0);
    CHECK_EQ(lag_total(out), LINES - 50);
    CHECK_EQ(run_cli((const char *[]){"consume", "S", "--group", "G", NULL}, NULL), 0);
    n = split_lines(out, lines, LINES + 10);
    CHECK_EQ(n, LINES - 50);
    CHECK_EQ(run_cli((const char *[]){"lag", "G", "--stream", "S", NULL}, NULL), 0);
    CHECK_EQ(lag_total(out), 0);

    /* usage error */
    CHECK_EQ(run_cli((const char *[]){"stream", "create", "T", NULL}, NULL), 2);

    /* delete */
    CHECK_EQ(run_cli((const char *[]){"stream", "delete", "S", NULL}, NULL), 0);
    CHECK_EQ(run_cli((const char *[]){"stream", "list", NULL}, NULL), 0);
    CHECK(strstr(out, "\nS ") == NULL);
    CHECK_EQ(run_cli((const char *[]){"stream", "describe", "S", NULL}, NULL), 1);

    CHECK_EQ(it_broker_stop(&broker), 0);
    it_broker_cleanup(&broker);
}

int main(void)
{
    int rc = it_preflight();
    if (rc != 0) {
        return rc;
    }
    RUN(cli_roundtrip);
    TEST_END();
}
