/* test_cli_opt.c - the CLI's table-driven option parser (client/cli/opt.c).
 *
 * Covers: unknown options, a missing value, out-of-range and malformed numbers (the error
 * names the option and the allowed range), durations ("30", "0.25", "1500ms", "2m", "1h")
 * and their range, "--opt=value", "--opt value", "-x value" and "-xvalue", flags (and a
 * flag given a value), repeated options (the last scalar wins, a list appends), choices,
 * required options (not required with --help), positionals in any order and after "--",
 * the stop-at-positional mode of global options, unique prefixes and ambiguous ones, the
 * environment fallback (argv wins; a bad value names the variable), two tables in one
 * parse, and the help text written from the table.
 */
#include "test.h"

#include "client/cli/opt.h"

#include <stddef.h>
#include <stdint.h>

#define LIST_MAX 3u

struct t_list {
    uint32_t len;
    const char *v[LIST_MAX];
};

struct t_args {
    int verbose;
    const char *name;
    uint32_t count;
    uint64_t bytes;
    uint32_t wait_ms;
    int color;
    const char *mode;
    struct t_list tags;
};

struct t_conn {
    const char *host;
    uint32_t timeout_ms;
};

static int parse_tag(const char *value, void *dst, char *why, size_t cap)
{
    struct t_list *l = dst;
    if (l->len == LIST_MAX) {
        snprintf(why, cap, "at most %u tags", LIST_MAX);
        return -1;
    }
    l->v[l->len++] = value;
    return 0;
}

static const struct cli_opt_choice colors[] = {{"red", 1}, {"green", 2}, {NULL, 0}};

static const struct cli_opt t_opts[] = {
    {.name = "verbose",
     .shorthand = 'v',
     .kind = CLI_OPT_FLAG,
     .offset = offsetof(struct t_args, verbose),
     .help = "say more"},
    {.name = "name",
     .shorthand = 'n',
     .kind = CLI_OPT_STRING,
     .offset = offsetof(struct t_args, name),
     .value_name = "NAME",
     .help = "a name",
     .max = 8},
    {.name = "count",
     .kind = CLI_OPT_U32,
     .offset = offsetof(struct t_args, count),
     .value_name = "N",
     .help = "how many",
     .min = 1,
     .max = 1024},
    {.name = "bytes",
     .kind = CLI_OPT_U64,
     .offset = offsetof(struct t_args, bytes),
     .value_name = "B",
     .help = "how big"},
    {.name = "wait",
     .kind = CLI_OPT_DURATION,
     .offset = offsetof(struct t_args, wait_ms),
     .value_name = "T",
     .help = "how long",
     .max = 900000},
    {.name = "color",
     .kind = CLI_OPT_CHOICE,
     .offset = offsetof(struct t_args, color),
     .value_name = "C",
     .help = "which",
     .choices = colors},
    {.name = "mode",
     .kind = CLI_OPT_STRING,
     .offset = offsetof(struct t_args, mode),
     .value_name = "M",
     .help = "required mode",
     .env = "TEST_CLI_OPT_MODE",
     .flags = CLI_OPT_REQUIRED},
    {.name = "tag",
     .kind = CLI_OPT_CUSTOM,
     .offset = offsetof(struct t_args, tags),
     .value_name = "T",
     .help = "repeatable",
     .parse = parse_tag},
    {.name = "wait-more",
     .kind = CLI_OPT_FLAG,
     .offset = offsetof(struct t_args, verbose),
     .help = "shares a prefix with --wait"},
    {.name = NULL},
};

static const struct cli_opt t_conn_opts[] = {
    {.name = "host",
     .kind = CLI_OPT_STRING,
     .offset = offsetof(struct t_conn, host),
     .value_name = "H",
     .help = "where",
     .env = "TEST_CLI_OPT_HOST"},
    {.name = "timeout",
     .kind = CLI_OPT_DURATION,
     .offset = offsetof(struct t_conn, timeout_ms),
     .value_name = "T",
     .help = "how long to wait",
     .min = 1},
    {.name = NULL},
};

static struct t_args args;
static struct t_conn conn;
static struct cli_opt_result res;
static char err[CLI_OPT_ERR_MAX];
static char *argv_buf[32];

/* Parses the NULL-terminated `in` (copied: the parser moves positionals) with both tables. */
static int parse_mode(const char *const *in, enum cli_opt_mode mode)
{
    int argc = 0;
    while (in[argc] != NULL && argc < 31) {
        argv_buf[argc] = (char *)in[argc];
        argc++;
    }
    argv_buf[argc] = NULL;
    memset(&args, 0, sizeof(args));
    memset(&conn, 0, sizeof(conn));
    struct cli_optset sets[] = {{t_opts, &args, "options"}, {t_conn_opts, &conn, "conn"}};
    int rc = cli_opt_parse(sets, 2, mode, argc, argv_buf, &res, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "  (error: %s)\n", err);
    }
    return rc;
}

static int parse(const char *const *in)
{
    return parse_mode(in, CLI_OPT_PERMUTE);
}

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

TEST(unknown_option)
{
    CHECK_EQ(parse(ARGS("--mode", "m", "--nope")), -1);
    CHECK(strstr(err, "unknown option '--nope'") != NULL);
    CHECK_EQ(parse(ARGS("--mode", "m", "-z")), -1);
    CHECK(strstr(err, "'-z'") != NULL);
}

TEST(missing_value)
{
    CHECK_EQ(parse(ARGS("--mode", "m", "--count")), -1);
    CHECK(strstr(err, "--count needs a value") != NULL);
    CHECK(strstr(err, "--count N") != NULL);
    CHECK_EQ(parse(ARGS("--mode")), -1);
    CHECK(strstr(err, "--mode") != NULL);
    /* the next word is the value, even when it starts with '-' */
    CHECK_EQ(parse(ARGS("--mode", "m", "--name", "-x")), 0);
    CHECK(strcmp(args.name, "-x") == 0);
}

TEST(out_of_range_numbers)
{
    CHECK_EQ(parse(ARGS("--mode", "m", "--count", "0")), -1);
    CHECK(strstr(err, "--count") != NULL && strstr(err, "1..1024") != NULL);
    CHECK_EQ(parse(ARGS("--mode", "m", "--count", "1025")), -1);
    CHECK(strstr(err, "'1025' is out of range (1..1024)") != NULL);
    CHECK_EQ(parse(ARGS("--mode", "m", "--count", "12abc")), -1);
    CHECK(strstr(err, "not a whole number") != NULL);
    CHECK_EQ(parse(ARGS("--mode", "m", "--count", "-3")), -1);
    CHECK_EQ(parse(ARGS("--mode", "m", "--count", " 3")), -1);
    CHECK_EQ(parse(ARGS("--mode", "m", "--bytes", "18446744073709551616")), -1);
    CHECK(strstr(err, "--bytes") != NULL);
    CHECK_EQ(parse(ARGS("--mode", "m", "--bytes", "18446744073709551615", "--count", "1024")), 0);
    CHECK(args.bytes == UINT64_MAX);
    CHECK_EQ(args.count, 1024);
    CHECK_EQ(parse(ARGS("--mode", "m", "--name", "123456789")), -1);
    CHECK(strstr(err, "longer than 8 bytes") != NULL);
}

TEST(durations)
{
    static const struct {
        const char *in;
        uint32_t ms;
    } ok[] = {{"30", 30000},   {"0.25", 250},   {"0", 0},      {"1500ms", 1500},
              {"2m", 120000},  {"1.5s", 1500},  {"0.0004", 0}, {"900", 900000},
              {"15m", 900000}, {"0.5m", 30000}, {"1ms", 1}};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        CHECK_EQ(parse(ARGS("--mode", "m", "--wait", ok[i].in)), 0);
        CHECK_EQ(args.wait_ms, ok[i].ms);
    }
    static const char *const bad[] = {"", "5x", "-1", "s", "1.5.2", "ms", "1 s", "inf"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK_EQ(parse(ARGS("--mode", "m", "--wait", bad[i])), -1);
        CHECK(strstr(err, "--wait") != NULL && strstr(err, "not a duration") != NULL);
    }
    CHECK_EQ(parse(ARGS("--mode", "m", "--wait", "901")), -1);
    CHECK(strstr(err, "out of range (at most 15m)") != NULL);
    CHECK_EQ(parse(ARGS("--mode", "m", "--wait", "1h")), -1);
    uint32_t ms = 0;
    char why[128];
    CHECK_EQ(cli_opt_duration_ms("1h", 0, 7200000, &ms, why, sizeof(why)), 0);
    CHECK_EQ(ms, 3600000);
    CHECK_EQ(cli_opt_duration_ms("0.0001", 1, 1000, &ms, why, sizeof(why)), -1);
    CHECK(strstr(why, "1ms..1s") != NULL);
    CHECK_EQ(cli_opt_duration_ms("5000000", 0, CLI_DURATION_MAX_MS, &ms, why, sizeof(why)), -1);
}

TEST(equals_and_space_forms)
{
    CHECK_EQ(parse(ARGS("--mode=a", "--name", "x", "--count=7", "--wait", "2")), 0);
    CHECK(strcmp(args.mode, "a") == 0 && strcmp(args.name, "x") == 0);
    CHECK_EQ(args.count, 7);
    CHECK_EQ(args.wait_ms, 2000);
    CHECK_EQ(parse(ARGS("--mode", "b", "--name=y=z", "-n", "short")), 0);
    CHECK(strcmp(args.name, "short") == 0);
    CHECK_EQ(parse(ARGS("--mode", "b", "-nattached")), 0);
    CHECK(strcmp(args.name, "attached") == 0);
    CHECK_EQ(parse(ARGS("--mode", "b", "--name=y=z")), 0);
    CHECK(strcmp(args.name, "y=z") == 0);
    CHECK_EQ(parse(ARGS("--mode", "b", "--name=")), 0); /* an empty value is a value */
    CHECK(strcmp(args.name, "") == 0);
}

TEST(flags)
{
    CHECK_EQ(parse(ARGS("--mode", "m")), 0);
    CHECK_EQ(args.verbose, 0);
    CHECK_EQ(parse(ARGS("--verbose", "--mode", "m")), 0);
    CHECK_EQ(args.verbose, 1);
    CHECK(cli_opt_seen((struct cli_optset[]){{t_opts, &args, NULL}}, 0, &res, "verbose"));
    CHECK(!cli_opt_seen((struct cli_optset[]){{t_opts, &args, NULL}}, 0, &res, "count"));
    CHECK_EQ(parse(ARGS("-v", "--mode", "m")), 0);
    CHECK_EQ(args.verbose, 1);
    CHECK_EQ(parse(ARGS("--verbose=1", "--mode", "m")), -1);
    CHECK(strstr(err, "--verbose takes no value") != NULL);
    CHECK_EQ(parse(ARGS("--help")), 0); /* --mode is required, but not for help */
    CHECK_EQ(res.help, 1);
    CHECK_EQ(parse(ARGS("-h")), 0);
    CHECK_EQ(res.help, 1);
}

TEST(repeated_options)
{
    CHECK_EQ(parse(ARGS("--mode", "m", "--count", "3", "--count", "5", "--verbose", "--verbose")),
             0);
    CHECK_EQ(args.count, 5);
    CHECK_EQ(args.verbose, 1);
    CHECK_EQ(parse(ARGS("--tag", "a", "--mode", "m", "--tag=b", "--tag", "c")), 0);
    CHECK_EQ(args.tags.len, 3);
    CHECK(strcmp(args.tags.v[0], "a") == 0 && strcmp(args.tags.v[2], "c") == 0);
    CHECK_EQ(parse(ARGS("--tag", "a", "--tag", "b", "--tag", "c", "--tag", "d", "--mode", "m")),
             -1);
    CHECK(strstr(err, "--tag: at most 3 tags") != NULL);
}

TEST(choices)
{
    CHECK_EQ(parse(ARGS("--mode", "m", "--color", "green")), 0);
    CHECK_EQ(args.color, 2);
    CHECK_EQ(parse(ARGS("--mode", "m", "--color", "blue")), -1);
    CHECK(strstr(err, "--color: 'blue' is not one of red, green") != NULL);
}

TEST(required)
{
    unsetenv("TEST_CLI_OPT_MODE");
    CHECK_EQ(parse(ARGS("--count", "3")), -1);
    CHECK(strstr(err, "missing --mode M") != NULL);
}

TEST(positionals)
{
    CHECK_EQ(parse(ARGS("first", "--mode", "m", "second", "--", "--count", "-")), 0);
    CHECK_EQ(res.pos_count, 4);
    CHECK(strcmp(argv_buf[0], "first") == 0 && strcmp(argv_buf[1], "second") == 0);
    CHECK(strcmp(argv_buf[2], "--count") == 0 && strcmp(argv_buf[3], "-") == 0);
    CHECK_EQ(args.count, 0);
    /* global options: the first positional ends them */
    CHECK_EQ(parse_mode(ARGS("--host", "h", "cmd", "--count", "x"), CLI_OPT_STOP_AT_POSITIONAL),
             -1); /* --mode is required in this table; the stop point is still reported */
    CHECK_EQ(res.rest, 2);
    setenv("TEST_CLI_OPT_MODE", "env", 1);
    CHECK_EQ(parse_mode(ARGS("--host", "h", "cmd", "--count", "x"), CLI_OPT_STOP_AT_POSITIONAL), 0);
    CHECK_EQ(res.rest, 2);
    CHECK_EQ(res.pos_count, 3);
    CHECK(strcmp(conn.host, "h") == 0);
    CHECK_EQ(args.count, 0);
    unsetenv("TEST_CLI_OPT_MODE");
}

TEST(prefixes)
{
    CHECK_EQ(parse(ARGS("--mode", "m", "--cou", "9", "--verb")), 0);
    CHECK_EQ(args.count, 9);
    CHECK_EQ(args.verbose, 1);
    CHECK_EQ(parse(ARGS("--mode", "m", "--wait", "1")), 0); /* exact beats --wait-more */
    CHECK_EQ(args.wait_ms, 1000);
    CHECK_EQ(parse(ARGS("--mode", "m", "--wai", "1")), -1);
    CHECK(strstr(err, "ambiguous") != NULL && strstr(err, "--wait-more") != NULL);
    CHECK_EQ(parse(ARGS("--mode", "m", "--he")), 0);
    CHECK_EQ(res.help, 1);
}

TEST(environment)
{
    setenv("TEST_CLI_OPT_MODE", "from-env", 1);
    setenv("TEST_CLI_OPT_HOST", "env-host", 1);
    CHECK_EQ(parse(ARGS("--count", "1")), 0);
    CHECK(strcmp(args.mode, "from-env") == 0);
    CHECK(strcmp(conn.host, "env-host") == 0);
    CHECK(cli_opt_seen((struct cli_optset[]){{t_opts, &args, NULL}}, 0, &res, "mode"));
    CHECK_EQ(parse(ARGS("--mode", "argv", "--host=h2")), 0);
    CHECK(strcmp(args.mode, "argv") == 0);
    CHECK(strcmp(conn.host, "h2") == 0);
    setenv("TEST_CLI_OPT_HOST", "", 1); /* empty: as if unset */
    CHECK_EQ(parse(ARGS("--count", "1")), 0);
    CHECK(conn.host == NULL);
    unsetenv("TEST_CLI_OPT_HOST");
    setenv("TEST_CLI_OPT_MODE", "waytoolongforit", 1);
    CHECK_EQ(parse(ARGS("--count", "1")), 0); /* --mode has no length limit */
    unsetenv("TEST_CLI_OPT_MODE");
}

TEST(second_table)
{
    CHECK_EQ(parse(ARGS("--timeout", "250ms", "--mode", "m", "--host", "h")), 0);
    CHECK_EQ(conn.timeout_ms, 250);
    CHECK_EQ(parse(ARGS("--timeout", "0", "--mode", "m")), -1);
    CHECK(strstr(err, "--timeout: '0' is out of range (at least 1ms)") != NULL);
}

TEST(help_text)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    CHECK(f != NULL);
    cli_opt_help(f, t_opts);
    fclose(f);
    CHECK(strstr(text, "  -v, --verbose") != NULL);
    CHECK(strstr(text, "  --count N") != NULL && strstr(text, "how many [1..1024]") != NULL);
    CHECK(strstr(text, "how long [at most 15m]") != NULL);
    CHECK(strstr(text, "which [red | green]") != NULL);
    CHECK(strstr(text, "[env: TEST_CLI_OPT_MODE] [required]") != NULL);
    CHECK(strstr(text, "how big\n") != NULL); /* no range on a full-range number */
    free(text);
}

int main(void)
{
    unsetenv("TEST_CLI_OPT_MODE");
    unsetenv("TEST_CLI_OPT_HOST");
    RUN(unknown_option);
    RUN(missing_value);
    RUN(out_of_range_numbers);
    RUN(durations);
    RUN(equals_and_space_forms);
    RUN(flags);
    RUN(repeated_options);
    RUN(choices);
    RUN(required);
    RUN(positionals);
    RUN(prefixes);
    RUN(environment);
    RUN(second_table);
    RUN(help_text);
    TEST_END();
}
