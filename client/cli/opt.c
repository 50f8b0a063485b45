/* opt.c - the table-driven option parser and help writer (opt.h).
 *
 * One pass over argv, left to right: an option is looked up in every set (exact name,
 * then a unique prefix), its value parsed by its kind into base + offset; a positional is
 * moved down to argv[pos_count++] (the slot it moves to was read already, so nothing is
 * lost). Then the environment fills options not given, and required ones are checked.
 * Nothing is allocated; every error names the option (or the variable) and says what is
 * allowed.
 */
#include "client/cli/opt.h"

#include "common/assert.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define HELP_COLUMN 24u /* where help text starts: "  --retention-hours H   " */

/* --help and -h belong to every command; a pseudo-option so prefixes ("--he") resolve too. */
static const struct cli_opt opt_help[] = {
    {.name = "help", .shorthand = 'h', .kind = CLI_OPT_FLAG},
    {.name = NULL},
};

static void set_err(char *err, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
}

static uint64_t kind_max(const struct cli_opt *o)
{
    if (o->max != 0) {
        return o->max;
    }
    switch (o->kind) {
    case CLI_OPT_U32:
        return UINT32_MAX;
    case CLI_OPT_DURATION:
        return CLI_DURATION_MAX_MS;
    default:
        return UINT64_MAX;
    }
}

/* "1500ms", "30s", "2m", "1h": the largest unit that divides `ms`. */
static const char *fmt_ms(uint64_t ms, char *buf, size_t cap)
{
    if (ms >= 3600000u && ms % 3600000u == 0) {
        snprintf(buf, cap, "%" PRIu64 "h", ms / 3600000u);
    } else if (ms >= 60000u && ms % 60000u == 0) {
        snprintf(buf, cap, "%" PRIu64 "m", ms / 60000u);
    } else if (ms >= 1000u && ms % 1000u == 0) {
        snprintf(buf, cap, "%" PRIu64 "s", ms / 1000u);
    } else {
        snprintf(buf, cap, "%" PRIu64 "ms", ms);
    }
    return buf;
}

/* What a number or duration may be ("1..1024", "at least 1s", "at most 15m"); empty when
 * it may be anything its field holds (a 32-bit maximum or more counts as no bound). */
static const char *range_text(int duration, uint64_t min, uint64_t max, char *buf, size_t cap)
{
    char lo[24], hi[24]; /* a 64-bit number and a unit */
    int no_max = max >= (duration ? CLI_DURATION_MAX_MS : UINT32_MAX);
    if (duration) {
        fmt_ms(min, lo, sizeof(lo));
        fmt_ms(max, hi, sizeof(hi));
    } else {
        snprintf(lo, sizeof(lo), "%" PRIu64, min);
        snprintf(hi, sizeof(hi), "%" PRIu64, max);
    }
    if (min == 0 && no_max) {
        buf[0] = '\0';
    } else if (no_max) {
        snprintf(buf, cap, "at least %s", lo);
    } else if (min == 0) {
        snprintf(buf, cap, "at most %s", hi);
    } else {
        snprintf(buf, cap, "%s..%s", lo, hi);
    }
    return buf;
}

int cli_opt_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out, char *why, size_t why_cap)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (s[0] < '0' || s[0] > '9' || *end != '\0') {
        set_err(why, why_cap, "'%s' is not a whole number", s);
        return -1;
    }
    if (errno != 0 || v < min || v > max) {
        char r[64];
        range_text(0, min, max, r, sizeof(r));
        set_err(why, why_cap, "'%s' is out of range (%s)", s, r[0] != '\0' ? r : "too large");
        return -1;
    }
    *out = v;
    return 0;
}

int cli_opt_duration_ms(const char *s, uint64_t min_ms, uint64_t max_ms, uint32_t *out, char *why,
                        size_t why_cap)
{
    static const struct {
        const char *suffix;
        double ms;
    } units[] = {{"", 1000.0}, {"s", 1000.0}, {"ms", 1.0}, {"m", 60000.0}, {"h", 3600000.0}};
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    double mult = -1.0;
    for (size_t i = 0; end != NULL && i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(end, units[i].suffix) == 0) {
            mult = units[i].ms;
        }
    }
    if (s[0] < '0' || s[0] > '9' || errno != 0 || mult < 0.0 || !(v >= 0.0)) {
        set_err(why, why_cap, "'%s' is not a duration (seconds like 30 or 0.25, or 1500ms, 2m, 1h)",
                s);
        return -1;
    }
    double ms = v * mult + 0.5;
    if (ms < (double)min_ms || ms >= (double)max_ms + 1.0) {
        char r[64];
        range_text(1, min_ms, max_ms, r, sizeof(r));
        set_err(why, why_cap, "'%s' is out of range (%s)", s, r[0] != '\0' ? r : "too long");
        return -1;
    }
    *out = (uint32_t)ms;
    return 0;
}

static int parse_choice(const struct cli_opt *o, const char *val, int *dst, char *why, size_t cap)
{
    size_t len = 0;
    for (const struct cli_opt_choice *c = o->choices; c->name != NULL; c++) {
        if (strcmp(c->name, val) == 0) {
            *dst = c->value;
            return 0;
        }
    }
    len = (size_t)snprintf(why, cap, "'%s' is not one of", val);
    for (const struct cli_opt_choice *c = o->choices; c->name != NULL && len < cap; c++) {
        len += (size_t)snprintf(why + len, cap - len, "%s %s", c == o->choices ? "" : ",", c->name);
    }
    return -1;
}

static int parse_string(const struct cli_opt *o, const char *val, const char **dst, char *why,
                        size_t cap)
{
    size_t len = strlen(val);
    if (len < o->min) {
        set_err(why, cap, "may not be empty");
        return -1;
    }
    if (o->max != 0 && len > o->max) {
        set_err(why, cap, "longer than %" PRIu64 " bytes", o->max);
        return -1;
    }
    *dst = val;
    return 0;
}

/* Parses `val` into the option's destination. Returns 0, or -1 with `why`. */
static int opt_value(const struct cli_opt *o, void *base, const char *val, char *why, size_t cap)
{
    void *dst = (char *)base + o->offset;
    uint64_t v = 0;
    switch (o->kind) {
    case CLI_OPT_FLAG:
        *(int *)dst = 1;
        return 0;
    case CLI_OPT_STRING:
        return parse_string(o, val, (const char **)dst, why, cap);
    case CLI_OPT_U32:
    case CLI_OPT_U64:
        if (cli_opt_u64(val, o->min, kind_max(o), &v, why, cap) != 0) {
            return -1;
        }
        if (o->kind == CLI_OPT_U32) {
            *(uint32_t *)dst = (uint32_t)v;
        } else {
            *(uint64_t *)dst = v;
        }
        return 0;
    case CLI_OPT_DURATION:
        return cli_opt_duration_ms(val, o->min, kind_max(o), (uint32_t *)dst, why, cap);
    case CLI_OPT_CHOICE:
        return parse_choice(o, val, (int *)dst, why, cap);
    case CLI_OPT_CUSTOM:
        return o->parse(val, dst, why, cap);
    }
    SL_ASSERT(0 && "unknown option kind");
    return -1;
}

/* Applies one use of option `o` (label: "--name", "-x" or "$VAR"). */
static int opt_apply(const struct cli_opt *o, void *base, const char *label, const char *val,
                     char *err, size_t cap)
{
    char why[CLI_OPT_ERR_MAX];
    why[0] = '\0';
    if (opt_value(o, base, val, why, sizeof(why)) != 0) {
        set_err(err, cap, "%s: %s", label, why);
        return -1;
    }
    return 0;
}

struct found {
    const struct cli_opt *opt;
    size_t set;
    size_t index;
};

/* Finds "--name" (len bytes of `name`): the exact name, else the only option it is a
 * prefix of. Returns 1, 0 (unknown) or -1 (ambiguous; `err` lists the candidates). */
static int find_long(const struct cli_optset *sets, size_t sets_len, const char *name, size_t len,
                     struct found *f, char *err, size_t cap)
{
    int matches = 0;
    size_t used = 0;
    for (size_t s = 0; s <= sets_len; s++) {
        const struct cli_opt *opts = s < sets_len ? sets[s].opts : opt_help;
        for (size_t i = 0; opts[i].name != NULL; i++) {
            if (strncmp(opts[i].name, name, len) != 0) {
                continue;
            }
            if (opts[i].name[len] == '\0') {
                *f = (struct found){&opts[i], s, i};
                return 1;
            }
            if (matches++ == 0) {
                *f = (struct found){&opts[i], s, i};
                used = (size_t)snprintf(err, cap, "'--%.*s' is ambiguous: --%s", (int)len, name,
                                        opts[i].name);
            } else if (used < cap) {
                used += (size_t)snprintf(err + used, cap - used, ", --%s", opts[i].name);
            }
        }
    }
    return matches == 1 ? 1 : matches == 0 ? 0 : -1;
}

static int find_short(const struct cli_optset *sets, size_t sets_len, char c, struct found *f)
{
    for (size_t s = 0; s < sets_len; s++) {
        for (size_t i = 0; sets[s].opts[i].name != NULL; i++) {
            if (sets[s].opts[i].shorthand == c) {
                *f = (struct found){&sets[s].opts[i], s, i};
                return 1;
            }
        }
    }
    if (c == opt_help[0].shorthand) {
        *f = (struct found){&opt_help[0], sets_len, 0};
        return 1;
    }
    return 0;
}

/* Looks up the option in argv[*i] and applies it, taking argv[*i + 1] as its value when it
 * needs one and has none attached. */
static int parse_one(const struct cli_optset *sets, size_t sets_len, int argc, char **argv, int *i,
                     struct cli_opt_result *res, char *err, size_t cap)
{
    const char *a = argv[*i];
    const char *val = NULL;
    struct found f;
    char label[80];
    int r;
    if (a[1] == '-') {
        const char *eq = strchr(a + 2, '=');
        size_t len = eq != NULL ? (size_t)(eq - (a + 2)) : strlen(a + 2);
        r = find_long(sets, sets_len, a + 2, len, &f, err, cap);
        val = eq != NULL ? eq + 1 : NULL;
    } else {
        r = find_short(sets, sets_len, a[1], &f);
        val = a[2] != '\0' ? a + 2 : NULL;
    }
    if (r <= 0) {
        if (r == 0) {
            set_err(err, cap, "unknown option '%s'", a);
        }
        return -1;
    }
    snprintf(label, sizeof(label), "--%s", f.opt->name);
    if (f.opt->kind == CLI_OPT_FLAG && val != NULL) {
        set_err(err, cap, "%s takes no value (got '%s')", label, val);
        return -1;
    }
    if (f.opt->kind != CLI_OPT_FLAG && val == NULL) {
        if (*i + 1 >= argc) {
            set_err(err, cap, "%s needs a value: %s %s", label, label,
                    f.opt->value_name != NULL ? f.opt->value_name : "VALUE");
            return -1;
        }
        val = argv[++*i];
    }
    if (f.opt == &opt_help[0]) {
        res->help = 1;
        return 0;
    }
    res->seen[f.set] |= 1u << f.index;
    return opt_apply(f.opt, sets[f.set].base, label, val, err, cap);
}

/* Options not given take their environment variable (when set and not empty); then the
 * required ones must have been given one way or the other. */
static int parse_finish(const struct cli_optset *sets, size_t sets_len, struct cli_opt_result *res,
                        char *err, size_t cap)
{
    for (size_t s = 0; s < sets_len; s++) {
        for (size_t i = 0; sets[s].opts[i].name != NULL; i++) {
            const struct cli_opt *o = &sets[s].opts[i];
            const char *v = o->env != NULL && !(res->seen[s] & 1u << i) ? getenv(o->env) : NULL;
            char label[80];
            if (v != NULL && v[0] != '\0') {
                snprintf(label, sizeof(label), "$%s", o->env);
                if (opt_apply(o, sets[s].base, label, v, err, cap) != 0) {
                    return -1;
                }
                res->seen[s] |= 1u << i;
            }
            if ((o->flags & CLI_OPT_REQUIRED) && !(res->seen[s] & 1u << i) && !res->help) {
                set_err(err, cap, "missing --%s %s", o->name,
                        o->value_name != NULL ? o->value_name : "");
                return -1;
            }
        }
    }
    return 0;
}

/* A table is code: a mistake in one is a programmer's error, caught on its first use. */
static void table_check(const struct cli_opt *opts)
{
    size_t n = 0;
    for (; opts[n].name != NULL; n++) {
        const struct cli_opt *o = &opts[n];
        SL_ASSERT(o->kind != CLI_OPT_CUSTOM || o->parse != NULL);
        SL_ASSERT(o->kind != CLI_OPT_CHOICE || o->choices != NULL);
        SL_ASSERT(o->max == 0 || o->min <= o->max);
        SL_ASSERT(strcmp(o->name, opt_help[0].name) != 0 && o->shorthand != 'h');
    }
    SL_ASSERT(n <= CLI_OPT_TABLE_MAX);
}

int cli_opt_parse(const struct cli_optset *sets, size_t sets_len, enum cli_opt_mode mode, int argc,
                  char **argv, struct cli_opt_result *res, char *err, size_t err_cap)
{
    SL_ASSERT(sets_len <= CLI_OPT_SETS_MAX);
    for (size_t s = 0; s < sets_len; s++) {
        table_check(sets[s].opts);
        for (size_t i = 0; sets[s].opts[i].name != NULL; i++) {
            struct found f;
            char amb[CLI_OPT_ERR_MAX];
            /* every name is found as itself: no table shadows another's option */
            SL_ASSERT(find_long(sets, sets_len, sets[s].opts[i].name, strlen(sets[s].opts[i].name),
                                &f, amb, sizeof(amb)) == 1 &&
                      f.opt == &sets[s].opts[i]);
        }
    }
    memset(res, 0, sizeof(*res));
    res->rest = argc;
    err[0] = '\0';
    int only_pos = 0;
    for (int i = 0; i < argc; i++) {
        char *a = argv[i];
        int is_opt = !only_pos && a[0] == '-' && a[1] != '\0';
        if (is_opt && strcmp(a, "--") == 0) {
            only_pos = 1;
            if (mode == CLI_OPT_STOP_AT_POSITIONAL) {
                res->rest = i + 1;
                break;
            }
            continue;
        }
        if (!is_opt && mode == CLI_OPT_STOP_AT_POSITIONAL) {
            res->rest = i;
            break;
        }
        if (!is_opt) {
            argv[res->pos_count++] = a;
        } else if (parse_one(sets, sets_len, argc, argv, &i, res, err, err_cap) != 0) {
            return -1;
        }
    }
    if (mode == CLI_OPT_STOP_AT_POSITIONAL) {
        res->pos_count = argc - res->rest;
    }
    return parse_finish(sets, sets_len, res, err, err_cap);
}

int cli_opt_seen(const struct cli_optset *sets, size_t set, const struct cli_opt_result *res,
                 const char *name)
{
    for (size_t i = 0; sets[set].opts[i].name != NULL; i++) {
        if (strcmp(sets[set].opts[i].name, name) == 0) {
            return (res->seen[set] & 1u << i) != 0;
        }
    }
    SL_ASSERT(0 && "no such option in the table");
    return 0;
}

/* The text after an option's help, from the table: " [1..1024]", " [zstd | none]",
 * " [env: SLUICE_BROKER]", " [required]". */
static void help_suffix(const struct cli_opt *o, char *buf, size_t cap)
{
    char r[64];
    size_t n = 0;
    buf[0] = '\0';
    r[0] = '\0';
    if (o->kind == CLI_OPT_U32 || o->kind == CLI_OPT_U64 || o->kind == CLI_OPT_DURATION) {
        range_text(o->kind == CLI_OPT_DURATION, o->min, kind_max(o), r, sizeof(r));
    }
    if (r[0] != '\0') {
        n += (size_t)snprintf(buf + n, cap - n, " [%s]", r);
    }
    for (const struct cli_opt_choice *c = o->choices; c != NULL && c->name != NULL && n < cap;
         c++) {
        n += (size_t)snprintf(buf + n, cap - n, "%s%s%s", c == o->choices ? " [" : " | ", c->name,
                              c[1].name == NULL ? "]" : "");
    }
    if (o->env != NULL && n < cap) {
        n += (size_t)snprintf(buf + n, cap - n, " [env: %s]", o->env);
    }
    if ((o->flags & CLI_OPT_REQUIRED) && n < cap) {
        snprintf(buf + n, cap - n, " [required]");
    }
}

void cli_opt_help(FILE *f, const struct cli_opt *opts)
{
    for (size_t i = 0; opts[i].name != NULL; i++) {
        const struct cli_opt *o = &opts[i];
        char left[96], suffix[160];
        int n = o->shorthand ? snprintf(left, sizeof(left), "  -%c, --%s", o->shorthand, o->name)
                             : snprintf(left, sizeof(left), "  --%s", o->name);
        if (o->kind != CLI_OPT_FLAG) {
            n += snprintf(left + n, sizeof(left) - (size_t)n, " %s",
                          o->value_name != NULL ? o->value_name : "VALUE");
        }
        help_suffix(o, suffix, sizeof(suffix));
        fprintf(f, "%-*s", (int)HELP_COLUMN, left);
        if ((size_t)n + 1 > HELP_COLUMN) {
            fprintf(f, "\n%*s", (int)HELP_COLUMN, "");
        }
        for (const char *p = o->help != NULL ? o->help : ""; *p != '\0'; p++) {
            fputc(*p, f);
            if (*p == '\n') {
                fprintf(f, "%*s", (int)HELP_COLUMN, "");
            }
        }
        fprintf(f, "%s\n", suffix);
    }
}
