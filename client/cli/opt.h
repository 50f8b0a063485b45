/* opt.h - the CLI's one option parser: a command's options are a table of `struct cli_opt`
 * (name, kind, where the value goes, range, help), parsed by cli_opt_parse and printed as
 * help by cli_opt_help, so the help and the checks cannot drift apart.
 *
 * A table is written once, static const, with destinations as offsets into a struct; a
 * `struct cli_optset` pairs it with the struct to fill. One parse takes several sets (a
 * command's own options, then the connection options every command shares). Pure libc:
 * no sluice or jansson, so tests/unit/test_cli_opt.c links this file alone.
 */
#ifndef SL_CLI_OPT_H
#define SL_CLI_OPT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CLI_OPT_SETS_MAX    4u  /* option tables in one parse */
#define CLI_OPT_TABLE_MAX   32u /* options in one table (bits of cli_opt_result.seen) */
#define CLI_OPT_ERR_MAX     256u
#define CLI_DURATION_MAX_MS (UINT32_MAX - 1u) /* the largest millisecond count a field holds */

enum cli_opt_kind {
    CLI_OPT_FLAG,     /* int: set to 1; takes no value */
    CLI_OPT_STRING,   /* const char *: borrowed from argv or the environment; `max`: longest
                       * length in bytes (0: any); `min` 1: not empty */
    CLI_OPT_U32,      /* uint32_t, decimal, in [min, max] (max 0: UINT32_MAX) */
    CLI_OPT_U64,      /* uint64_t, decimal, in [min, max] (max 0: UINT64_MAX) */
    CLI_OPT_DURATION, /* uint32_t milliseconds in [min, max] (max 0: CLI_DURATION_MAX_MS):
                       * "30" and "0.25" are seconds; units ms, s, m, h ("1500ms", "2m") */
    CLI_OPT_CHOICE,   /* int: the value of the named choice (an enum field is an int) */
    CLI_OPT_CUSTOM,   /* parse(value, dst): lists, positions, JSON; runs once per use */
};

#define CLI_OPT_REQUIRED 1u /* the command fails without it (unless --help) */

struct cli_opt_choice {
    const char *name; /* NULL ends a list */
    int value;
};

/* Parses `value` (borrowed; lives as long as argv) into `dst`. Returns 0, or -1 with
 * `why` saying what is wrong (the parser prefixes the option's name). */
typedef int (*cli_opt_parse_fn)(const char *value, void *dst, char *why, size_t why_cap);

struct cli_opt {
    const char *name; /* the long name without "--"; NULL ends a table */
    char shorthand;   /* -x, or 0 */
    enum cli_opt_kind kind;
    size_t offset;                        /* of the destination in the set's struct */
    const char *value_name;               /* in help: "N", "S", "FILE"; unused for flags */
    const char *help;                     /* may hold '\n'; the range is appended from min/max */
    uint64_t min, max;                    /* see the kinds */
    const struct cli_opt_choice *choices; /* CHOICE */
    cli_opt_parse_fn parse;               /* CUSTOM */
    const char *env; /* variable whose value is used when the option is not given */
    unsigned flags;  /* CLI_OPT_REQUIRED */
};

/* One table and the struct it fills (borrowed, both). */
struct cli_optset {
    const struct cli_opt *opts;
    void *base;
    const char *title; /* heading in help: "options", "connection options" */
};

enum cli_opt_mode {
    CLI_OPT_PERMUTE = 0,        /* options and positionals in any order (like getopt) */
    CLI_OPT_STOP_AT_POSITIONAL, /* the first positional ends the options (global options) */
};

struct cli_opt_result {
    int help;                        /* --help or -h was given */
    int pos_count;                   /* positionals, moved to argv[0 .. pos_count) */
    int rest;                        /* STOP mode: index of the first positional, else argc */
    uint32_t seen[CLI_OPT_SETS_MAX]; /* bit i: sets[s].opts[i] was given (or came from env) */
};

/* Parses argv[0 .. argc) (no program or command name) against `sets`: "--name value",
 * "--name=value", "-x value", "-xvalue", flags alone, "--" ends the options, "-" is a
 * positional. A long name may be abbreviated to a unique prefix (getopt_long did). A
 * repeated option parses again: the last value wins, a CUSTOM list appends. After argv,
 * options not given take their `env` variable when it is set and not empty; then
 * REQUIRED options are checked (not when --help was given). Positionals are moved, in
 * order, to the front of argv. Returns 0, or -1 with `err` naming the option and what
 * is wrong (with the allowed range or choices). */
int cli_opt_parse(const struct cli_optset *sets, size_t sets_len, enum cli_opt_mode mode, int argc,
                  char **argv, struct cli_opt_result *res, char *err, size_t err_cap);

/* Whether the option `name` of sets[set] was given (after cli_opt_parse). */
int cli_opt_seen(const struct cli_optset *sets, size_t set, const struct cli_opt_result *res,
                 const char *name);

/* Writes the table's help, one option per line ("  --name VALUE   help (range)"). */
void cli_opt_help(FILE *f, const struct cli_opt *opts);

/* The value parsers behind the kinds, for CUSTOM parsers. Each returns 0, or -1 with `why`. */
int cli_opt_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out, char *why,
                size_t why_cap);
int cli_opt_duration_ms(const char *s, uint64_t min_ms, uint64_t max_ms, uint32_t *out, char *why,
                        size_t why_cap);

#endif
