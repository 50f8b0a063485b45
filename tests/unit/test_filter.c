/* test_filter.c - unit tests for broker/engine/filter_parse.c and filter_match.c:
 * event patterns on attributes.
 *
 * Covers: each alternative kind matching and not matching (exact string,
 * number, prefix, suffix, equals-ignore-case, anything-but with a string, a
 * number, a list and a prefix, exists true/false, numeric with one and two
 * comparisons, including non-numeric, overflowing and absent attributes);
 * the AND of keys and the OR of alternatives; $or combined with other keys,
 * nested $or, wide $or; the empty pattern; the first of repeated attributes;
 * \u escapes; SQS/SNS-typed message attributes ("sqs:K" = type NUL value) read
 * as K when the record has no K; invalid patterns (each rejected with SL_EINVAL and a message
 * that names the JSON path), JSON syntax errors (line and column); the limits
 * (text bytes, keys, values per key, $or depth, key length) at and past the
 * edge; a NULL or tiny `why`; sl_filter_free(NULL). Records are real: built
 * with sl_batch_builder, finished, validated and read back with the iterator.
 */
#include "broker/engine/filter.h"

#include "common/error.h"
#include "storage/batch.h"

#include "tests/unit/test.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

/* One record built from "key=value" strings, viewed through the batch
 * iterator as the broker would see it. */
struct fixture {
    uint8_t buf[16384];
    char text[SL_RECORD_ATTRS_MAX][256];
    struct sl_attr attrs[SL_RECORD_ATTRS_MAX];
    struct sl_record_view view;
};

static struct fixture fx;

/* One subject per call: these tests look at attributes only. */
static bool match_view(const struct sl_filter *f, const struct sl_record_view *v)
{
    struct sl_filter_subject s;
    sl_filter_subject_init(&s);
    sl_filter_subject_set(&s, v);
    bool r = sl_filter_match(f, &s);
    sl_filter_subject_fini(&s);
    return r;
}

/* Builds fx from a NULL-terminated list of "key=value"; returns SL_OK or an error. */
static int fixture_build(va_list ap)
{
    uint32_t n = 0;
    for (const char *kv = va_arg(ap, const char *); kv != NULL; kv = va_arg(ap, const char *)) {
        if (n == SL_RECORD_ATTRS_MAX || strlen(kv) >= sizeof(fx.text[n])) {
            return SL_ETOOBIG;
        }
        strcpy(fx.text[n], kv);
        char *eq = strchr(fx.text[n], '=');
        if (eq == NULL) {
            return SL_EINVAL;
        }
        fx.attrs[n] = (struct sl_attr){.key = fx.text[n],
                                       .key_len = (uint32_t)(eq - fx.text[n]),
                                       .value = eq + 1,
                                       .value_len = (uint32_t)strlen(eq + 1)};
        for (char *u = strchr(eq + 1, '\x1f'); u != NULL; u = strchr(u + 1, '\x1f')) {
            *u = '\0'; /* \x1f stands for a NUL byte in a value (typed attributes) */
        }
        n++;
    }
    struct sl_record rec = {
        .value = "v", .value_len = 1, .attrs = fx.attrs, .attr_count = n, .timestamp_ms = 1};
    struct sl_batch_builder b;
    sl_batch_builder_init(&b, fx.buf, sizeof(fx.buf));
    size_t len = 0;
    int rc = sl_batch_builder_add(&b, &rec);
    if (rc == SL_OK) {
        rc = sl_batch_builder_finish(&b, SL_BATCH_CODEC_NONE, 1, NULL, NULL, 0, 0, 0, &len);
    }
    struct sl_batch_header h;
    if (rc == SL_OK) {
        rc = sl_batch_validate(fx.buf, len, sizeof(fx.buf), &h);
    }
    struct sl_batch_iter it;
    if (rc == SL_OK) {
        rc = sl_batch_iter_init(&it, fx.buf, &h, NULL, NULL, 0);
    }
    if (rc == SL_OK) {
        rc = sl_batch_iter_next(&it, &fx.view);
    }
    return rc;
}

/* Parses `pattern`, builds a record from the "key=value" arguments (NULL
 * ended) and returns 1 (match), 0 (no match), -1 (parse failed, printed) or
 * -2 (the record could not be built). */
static int m(const char *pattern, ...)
{
    char why[256];
    struct sl_filter *f = NULL;
    int rc = sl_filter_parse(pattern, strlen(pattern), SL_FILTER_SCOPE_ATTRIBUTES, &f, why, sizeof(why));
    if (rc != SL_OK) {
        fprintf(stderr, "  parse failed (%s): %s\n  pattern: %s\n", sl_errname(rc), why, pattern);
        return -1;
    }
    va_list ap;
    va_start(ap, pattern);
    rc = fixture_build(ap);
    va_end(ap);
    if (rc != SL_OK) {
        sl_filter_free(f);
        return -2;
    }
    int r = match_view(f, &fx.view) ? 1 : 0;
    sl_filter_free(f);
    return r;
}

/* True when `pattern` is rejected with `err` and a message containing `want`. */
static bool rejected(const char *pattern, size_t len, int err, const char *want)
{
    char why[256];
    struct sl_filter *f = (struct sl_filter *)&fx; /* must be reset to NULL */
    int rc = sl_filter_parse(pattern, len, SL_FILTER_SCOPE_ATTRIBUTES, &f, why, sizeof(why));
    bool ok = rc == err && f == NULL && strstr(why, want) != NULL;
    if (!ok) {
        fprintf(stderr, "  pattern %.80s: got %s \"%s\", want %s containing \"%s\"\n", pattern,
                sl_errname(rc), rc == SL_OK ? "" : why, sl_errname(err), want);
        sl_filter_free(rc == SL_OK ? f : NULL);
    }
    return ok;
}

static bool rejects(const char *pattern, int err, const char *want)
{
    return rejected(pattern, strlen(pattern), err, want);
}

TEST(exact_string)
{
    const char *p = "{\"color\": [\"red\", \"blue\"]}";
    CHECK_EQ(m(p, "color=red", NULL), 1);
    CHECK_EQ(m(p, "size=9", "color=blue", NULL), 1);
    CHECK_EQ(m(p, "color=green", NULL), 0);
    CHECK_EQ(m(p, "color=Red", NULL), 0);
    CHECK_EQ(m(p, "color=redd", NULL), 0);
    CHECK_EQ(m(p, "color=", NULL), 0);
    CHECK_EQ(m(p, "colour=red", NULL), 0);
    CHECK_EQ(m(p, NULL), 0);
    CHECK_EQ(m("{\"e\": [\"\"]}", "e=", NULL), 1);
    CHECK_EQ(m("{\"e\": [\"\"]}", "f=", NULL), 0);
    /* Escapes decode to UTF-8 bytes. */
    CHECK_EQ(m("{\"caf\\u00e9\": [\"\\u00e9t\\u00e9\"]}", "caf\xc3\xa9=\xc3\xa9t\xc3\xa9", NULL),
             1);
}

TEST(number_equality)
{
    const char *p = "{\"n\": [5]}";
    CHECK_EQ(m(p, "n=5", NULL), 1);
    CHECK_EQ(m(p, "n=5.0", NULL), 1);
    CHECK_EQ(m(p, "n=5e0", NULL), 1);
    CHECK_EQ(m(p, "n=+5", NULL), 1);
    CHECK_EQ(m(p, "n=0.5e1", NULL), 1);
    CHECK_EQ(m(p, "n=6", NULL), 0);
    CHECK_EQ(m(p, "n=five", NULL), 0);
    CHECK_EQ(m(p, "n= 5", NULL), 0);
    CHECK_EQ(m(p, "n=5 ", NULL), 0);
    CHECK_EQ(m(p, "n=0x5", NULL), 0);
    CHECK_EQ(m(p, "n=", NULL), 0);
    CHECK_EQ(m(p, NULL), 0);
    CHECK_EQ(m("{\"n\": [-2.5]}", "n=-2.50", NULL), 1);
    CHECK_EQ(m("{\"n\": [0]}", "n=-0", NULL), 1);
    CHECK_EQ(m("{\"n\": [0.5]}", "n=.5", NULL), 1);
    /* A string alternative compares bytes, not numbers. */
    CHECK_EQ(m("{\"n\": [\"5\"]}", "n=5.0", NULL), 0);
    CHECK_EQ(m("{\"n\": [\"5\"]}", "n=5", NULL), 1);
    /* A big integer literal is accepted (decoded as a double). */
    CHECK_EQ(m("{\"n\": [100000000000000000000]}", "n=1e20", NULL), 1);
}

TEST(prefix_suffix)
{
    CHECK_EQ(m("{\"k\": [{\"prefix\": \"us-\"}]}", "k=us-east", NULL), 1);
    CHECK_EQ(m("{\"k\": [{\"prefix\": \"us-\"}]}", "k=us-", NULL), 1);
    CHECK_EQ(m("{\"k\": [{\"prefix\": \"us-\"}]}", "k=eu-west", NULL), 0);
    CHECK_EQ(m("{\"k\": [{\"prefix\": \"us-\"}]}", "k=us", NULL), 0);
    CHECK_EQ(m("{\"k\": [{\"prefix\": \"us-\"}]}", "k=US-east", NULL), 0);
    CHECK_EQ(m("{\"k\": [{\"prefix\": \"us-\"}]}", NULL), 0);
    CHECK_EQ(m("{\"k\": [{\"prefix\": \"\"}]}", "k=", NULL), 1);
    CHECK_EQ(m("{\"k\": [{\"prefix\": \"\"}]}", NULL), 0);
    CHECK_EQ(m("{\"f\": [{\"suffix\": \".png\"}]}", "f=a.png", NULL), 1);
    CHECK_EQ(m("{\"f\": [{\"suffix\": \".png\"}]}", "f=.png", NULL), 1);
    CHECK_EQ(m("{\"f\": [{\"suffix\": \".png\"}]}", "f=a.jpg", NULL), 0);
    CHECK_EQ(m("{\"f\": [{\"suffix\": \".png\"}]}", "f=png", NULL), 0);
    CHECK_EQ(m("{\"f\": [{\"suffix\": \".png\"}]}", NULL), 0);
    /* Mixed alternatives of one key: any may match. */
    const char *p = "{\"f\": [\"x\", {\"prefix\": \"a\"}, {\"suffix\": \"z\"}]}";
    CHECK_EQ(m(p, "f=x", NULL), 1);
    CHECK_EQ(m(p, "f=abc", NULL), 1);
    CHECK_EQ(m(p, "f=xyz", NULL), 1);
    CHECK_EQ(m(p, "f=xy", NULL), 0);
}

TEST(equals_ignore_case)
{
    const char *p = "{\"c\": [{\"equals-ignore-case\": \"Alice\"}]}";
    CHECK_EQ(m(p, "c=alice", NULL), 1);
    CHECK_EQ(m(p, "c=ALICE", NULL), 1);
    CHECK_EQ(m(p, "c=Alice", NULL), 1);
    CHECK_EQ(m(p, "c=Alicia", NULL), 0);
    CHECK_EQ(m(p, "c=alice ", NULL), 0);
    CHECK_EQ(m(p, NULL), 0);
    /* ASCII folding only: '@' (0x40) and '`' (0x60) are not case pairs. */
    CHECK_EQ(m("{\"c\": [{\"equals-ignore-case\": \"@\"}]}", "c=`", NULL), 0);
}

TEST(anything_but)
{
    const char *s = "{\"st\": [{\"anything-but\": \"init\"}]}";
    CHECK_EQ(m(s, "st=done", NULL), 1);
    CHECK_EQ(m(s, "st=init", NULL), 0);
    CHECK_EQ(m(s, "st=", NULL), 1);
    CHECK_EQ(m(s, NULL), 0); /* needs the attribute present */
    const char *list = "{\"st\": [{\"anything-but\": [\"init\", \"stopped\", 3]}]}";
    CHECK_EQ(m(list, "st=running", NULL), 1);
    CHECK_EQ(m(list, "st=init", NULL), 0);
    CHECK_EQ(m(list, "st=stopped", NULL), 0);
    CHECK_EQ(m(list, "st=3.0", NULL), 0);
    CHECK_EQ(m(list, "st=4", NULL), 1);
    CHECK_EQ(m(list, NULL), 0);
    const char *num = "{\"n\": [{\"anything-but\": 0}]}";
    CHECK_EQ(m(num, "n=1", NULL), 1);
    CHECK_EQ(m(num, "n=0", NULL), 0);
    CHECK_EQ(m(num, "n=0e5", NULL), 0);
    CHECK_EQ(m(num, "n=zero", NULL), 1); /* not a number, so not 0 */
    const char *pre = "{\"k\": [{\"anything-but\": {\"prefix\": \"tmp/\"}}]}";
    CHECK_EQ(m(pre, "k=data/a", NULL), 1);
    CHECK_EQ(m(pre, "k=tmp/a", NULL), 0);
    CHECK_EQ(m(pre, "k=tmp/", NULL), 0);
    CHECK_EQ(m(pre, "k=tmp", NULL), 1);
    CHECK_EQ(m(pre, NULL), 0);
}

TEST(exists)
{
    const char *t = "{\"k\": [{\"exists\": true}]}";
    const char *f = "{\"k\": [{\"exists\": false}]}";
    CHECK_EQ(m(t, "k=", NULL), 1);
    CHECK_EQ(m(t, "k=v", NULL), 1);
    CHECK_EQ(m(t, "j=v", NULL), 0);
    CHECK_EQ(m(t, NULL), 0);
    CHECK_EQ(m(f, NULL), 1);
    CHECK_EQ(m(f, "j=v", NULL), 1);
    CHECK_EQ(m(f, "k=", NULL), 0);
    CHECK_EQ(m(f, "j=v", "k=v", NULL), 0);
    /* Absent or a given value. */
    const char *either = "{\"k\": [\"v\", {\"exists\": false}]}";
    CHECK_EQ(m(either, NULL), 1);
    CHECK_EQ(m(either, "k=v", NULL), 1);
    CHECK_EQ(m(either, "k=w", NULL), 0);
}

TEST(numeric_ranges)
{
    const char *r = "{\"p\": [{\"numeric\": [\">\", 0, \"<=\", 5]}]}";
    CHECK_EQ(m(r, "p=0", NULL), 0);
    CHECK_EQ(m(r, "p=0.001", NULL), 1);
    CHECK_EQ(m(r, "p=3", NULL), 1);
    CHECK_EQ(m(r, "p=5", NULL), 1);
    CHECK_EQ(m(r, "p=5.0001", NULL), 0);
    CHECK_EQ(m(r, "p=-1", NULL), 0);
    CHECK_EQ(m(r, "p=4e0", NULL), 1);
    CHECK_EQ(m(r, "p=cheap", NULL), 0);
    CHECK_EQ(m(r, "p=3abc", NULL), 0);
    CHECK_EQ(m(r, "p=", NULL), 0);
    CHECK_EQ(m(r, "p=inf", NULL), 0);
    CHECK_EQ(m(r, "p=nan", NULL), 0);
    CHECK_EQ(m(r, NULL), 0);
    CHECK_EQ(m("{\"p\": [{\"numeric\": [\">\", 0]}]}", "p=1e999", NULL), 0); /* overflow */
    CHECK_EQ(m("{\"p\": [{\"numeric\": [\"=\", 7]}]}", "p=7.00", NULL), 1);
    CHECK_EQ(m("{\"p\": [{\"numeric\": [\"=\", 7]}]}", "p=7.01", NULL), 0);
    CHECK_EQ(m("{\"p\": [{\"numeric\": [\"<\", 7]}]}", "p=7", NULL), 0);
    CHECK_EQ(m("{\"p\": [{\"numeric\": [\"<\", 7]}]}", "p=-7", NULL), 1);
    CHECK_EQ(m("{\"p\": [{\"numeric\": [\"<=\", 7]}]}", "p=7", NULL), 1);
    CHECK_EQ(m("{\"p\": [{\"numeric\": [\">=\", 7]}]}", "p=7", NULL), 1);
    CHECK_EQ(m("{\"p\": [{\"numeric\": [\">=\", 7]}]}", "p=6.99", NULL), 0);
    CHECK_EQ(m("{\"p\": [{\"numeric\": [\">=\", -1.5, \"<\", 1e3]}]}", "p=999.9", NULL), 1);
    CHECK_EQ(m("{\"p\": [{\"numeric\": [\">=\", -1.5, \"<\", 1e3]}]}", "p=1000", NULL), 0);
    /* Comparisons are ANDed in any order; an empty range never matches. */
    CHECK_EQ(m("{\"p\": [{\"numeric\": [\"<\", 10, \">\", 2]}]}", "p=5", NULL), 1);
    CHECK_EQ(m("{\"p\": [{\"numeric\": [\">\", 10, \"<\", 2]}]}", "p=5", NULL), 0);
    /* Two ranges as alternatives. */
    const char *two = "{\"p\": [{\"numeric\": [\"<\", 0]}, {\"numeric\": [\">\", 100]}]}";
    CHECK_EQ(m(two, "p=-1", NULL), 1);
    CHECK_EQ(m(two, "p=101", NULL), 1);
    CHECK_EQ(m(two, "p=50", NULL), 0);
}

TEST(and_of_keys)
{
    const char *p = "{\"a\": [\"1\"], \"b\": [{\"prefix\": \"x\"}], \"c\": [{\"exists\": false}]}";
    CHECK_EQ(m(p, "a=1", "b=xy", NULL), 1);
    CHECK_EQ(m(p, "b=xy", "a=1", "d=4", NULL), 1);
    CHECK_EQ(m(p, "a=1", NULL), 0);
    CHECK_EQ(m(p, "b=xy", NULL), 0);
    CHECK_EQ(m(p, "a=2", "b=xy", NULL), 0);
    CHECK_EQ(m(p, "a=1", "b=yx", NULL), 0);
    CHECK_EQ(m(p, "a=1", "b=xy", "c=", NULL), 0);
}

TEST(repeated_attribute_first_wins)
{
    CHECK_EQ(m("{\"k\": [\"first\"]}", "k=first", "k=second", NULL), 1);
    CHECK_EQ(m("{\"k\": [\"second\"]}", "k=first", "k=second", NULL), 0);
}

TEST(empty_pattern_matches_everything)
{
    CHECK_EQ(m("{}", NULL), 1);
    CHECK_EQ(m("{}", "a=1", "b=2", NULL), 1);
    CHECK_EQ(m("  { }  ", "a=1", NULL), 1);
    CHECK_EQ(m("{\"$or\": [{}, {\"a\": [\"1\"]}]}", "z=9", NULL), 1);
}

TEST(or_with_other_keys)
{
    const char *p =
        "{\"region\": [\"eu\"], "
        "\"$or\": [{\"level\": [\"error\"]}, {\"code\": [{\"numeric\": [\">=\", 500]}]}]}";
    CHECK_EQ(m(p, "region=eu", "level=error", NULL), 1);
    CHECK_EQ(m(p, "region=eu", "code=503", NULL), 1);
    CHECK_EQ(m(p, "region=eu", "level=error", "code=200", NULL), 1);
    CHECK_EQ(m(p, "region=eu", "level=info", "code=200", NULL), 0);
    CHECK_EQ(m(p, "region=eu", NULL), 0);
    CHECK_EQ(m(p, "region=us", "level=error", NULL), 0); /* the AND still holds */
    CHECK_EQ(m(p, "level=error", "code=503", NULL), 0);
    /* A branch with several keys needs all of them. */
    const char *q = "{\"$or\": [{\"a\": [\"1\"], \"b\": [\"2\"]}, {\"c\": [\"3\"]}]}";
    CHECK_EQ(m(q, "a=1", "b=2", NULL), 1);
    CHECK_EQ(m(q, "a=1", NULL), 0);
    CHECK_EQ(m(q, "c=3", NULL), 1);
    CHECK_EQ(m(q, "b=2", "c=4", NULL), 0);
}

TEST(or_nested)
{
    /* ((a=1 AND (b=1 OR (c=1 AND (d=1 OR e=1)))) OR f=1), nested four deep. */
    const char *p = "{\"$or\": [{\"a\": [\"1\"], \"$or\": [{\"b\": [\"1\"]}, {\"c\": [\"1\"], "
                    "\"$or\": [{\"$or\": [{\"d\": [\"1\"]}, {\"e\": [\"1\"]}]}]}]}, "
                    "{\"f\": [\"1\"]}]}";
    CHECK_EQ(m(p, "f=1", NULL), 1);
    CHECK_EQ(m(p, "a=1", "b=1", NULL), 1);
    CHECK_EQ(m(p, "a=1", "c=1", "e=1", NULL), 1);
    CHECK_EQ(m(p, "a=1", "c=1", "d=1", NULL), 1);
    CHECK_EQ(m(p, "a=1", "c=1", NULL), 0);
    CHECK_EQ(m(p, "a=1", "d=1", NULL), 0);
    CHECK_EQ(m(p, "c=1", "d=1", NULL), 0);
    CHECK_EQ(m(p, "a=2", "b=1", NULL), 0);
    CHECK_EQ(m(p, NULL), 0);
}

TEST(or_wide)
{
    /* 64 one-key branches (the key limit counts every branch); only the last matches. */
    static char p[SL_FILTER_TEXT_MAX + 1];
    size_t n = (size_t)snprintf(p, sizeof(p), "{\"$or\": [");
    for (int i = 0; i < 64; i++) {
        n += (size_t)snprintf(p + n, sizeof(p) - n, "%s{\"k%d\":[\"%d\"]}", i ? "," : "", i, i);
    }
    snprintf(p + n, sizeof(p) - n, "]}");
    CHECK(strlen(p) <= SL_FILTER_TEXT_MAX);
    CHECK_EQ(m(p, "k63=63", NULL), 1);
    CHECK_EQ(m(p, "k0=0", NULL), 1);
    CHECK_EQ(m(p, "k63=0", "k0=63", NULL), 0);
    /* 256 branches (the $or width limit): 41 nested keyed ones, 214 empty, one keyed. */
    n = (size_t)snprintf(p, sizeof(p), "{\"a\":[\"1\"],\"$or\": [");
    for (int i = 0; i < 255; i++) {
        if (i < 41) {
            n += (size_t)snprintf(p + n, sizeof(p) - n, "{\"$or\":[{\"b\":[\"%d\"]}]},", i);
        } else {
            n += (size_t)snprintf(p + n, sizeof(p) - n, "{},");
        }
    }
    snprintf(p + n, sizeof(p) - n, "{\"c\":[\"x\"]}]}");
    CHECK(strlen(p) <= SL_FILTER_TEXT_MAX);
    CHECK_EQ(m(p, "a=1", NULL), 1); /* an empty branch matches everything */
    CHECK_EQ(m(p, "a=1", "b=7", NULL), 1);
    CHECK_EQ(m(p, "a=2", "b=7", "c=x", NULL), 0);
    n = strlen(p) - 2;
    snprintf(p + n, sizeof(p) - n, ",{}]}"); /* 257 branches */
    CHECK(rejects(p, SL_ETOOBIG, "$.$or: $or has 257 patterns, more than 256"));
}

TEST(invalid_patterns_name_the_path)
{
    CHECK(rejects("[]", SL_EINVAL, "$: a pattern must be a JSON object"));
    CHECK(rejects("\"x\"", SL_EINVAL, "$: "));
    CHECK(rejects("{\"a\": \"x\"}", SL_EINVAL, "$.a: a key's value must be an array"));
    CHECK(rejects("{\"a\": {\"prefix\": \"x\"}}", SL_EINVAL, "$.a: "));
    CHECK(rejects("{\"a\": []}", SL_EINVAL, "$.a: empty array"));
    CHECK(rejects("{\"a\": [\"x\", true]}", SL_EINVAL, "$.a[1]: an alternative must be"));
    CHECK(rejects("{\"a\": [null]}", SL_EINVAL, "$.a[0]: "));
    CHECK(rejects("{\"a\": [[\"x\"]]}", SL_EINVAL, "$.a[0]: "));
    CHECK(rejects("{\"a\": [{\"regex\": \"x*\"}]}", SL_EINVAL,
                  "$.a[0]: unknown operator \"regex\""));
    CHECK(rejects("{\"a\": [{}]}", SL_EINVAL, "$.a[0]: an operator object needs exactly one"));
    CHECK(rejects("{\"a\": [{\"prefix\": \"x\", \"suffix\": \"y\"}]}", SL_EINVAL,
                  "$.a[0]: an operator object needs exactly one"));
    CHECK(rejects("{\"a\": [{\"prefix\": 5}]}", SL_EINVAL, "$.a[0]: prefix needs a string"));
    CHECK(rejects("{\"a\": [{\"suffix\": [\"x\"]}]}", SL_EINVAL, "$.a[0]: suffix needs a string"));
    CHECK(rejects("{\"a\": [{\"equals-ignore-case\": 1}]}", SL_EINVAL,
                  "$.a[0]: equals-ignore-case needs a string"));
    CHECK(rejects("{\"a\": [{\"exists\": \"yes\"}]}", SL_EINVAL, "$.a[0]: exists needs true"));
    CHECK(rejects("{\"a\": [{\"anything-but\": []}]}", SL_EINVAL, "$.a[0].anything-but: anything-but needs"));
    CHECK(rejects("{\"a\": [{\"anything-but\": true}]}", SL_EINVAL, "$.a[0]: anything-but"));
    CHECK(rejects("{\"a\": [{\"anything-but\": [\"x\", null]}]}", SL_EINVAL,
                  "$.a[0].anything-but[1]: anything-but takes strings and numbers"));
    CHECK(rejects("{\"a\": [{\"anything-but\": {\"numeric\": [\">\", 1]}}]}", SL_EINVAL,
                  "$.a[0]: anything-but takes an object only as"));
    CHECK(rejects("{\"a\": [{\"anything-but\": {\"prefix\": 1}}]}", SL_EINVAL, "$.a[0]: "));
    CHECK(rejects("{\"price\": [{\"numeric\": [\">\"]}]}", SL_EINVAL,
                  "$.price[0]: numeric needs an operator and a number"));
    CHECK(rejects("{\"price\": [{\"numeric\": []}]}", SL_EINVAL,
                  "$.price[0]: numeric needs an operator and a number"));
    CHECK(rejects("{\"price\": [{\"numeric\": 5}]}", SL_EINVAL, "$.price[0]: numeric needs"));
    CHECK(rejects("{\"price\": [{\"numeric\": [\">\", 1, \"<\"]}]}", SL_EINVAL,
                  "$.price[0]: numeric needs"));
    CHECK(rejects("{\"price\": [{\"numeric\": [\">\", 1, \"<\", 2, \"=\", 3]}]}", SL_EINVAL,
                  "$.price[0]: numeric needs"));
    CHECK(rejects("{\"price\": [{\"numeric\": [\">\", \"1\"]}]}", SL_EINVAL,
                  "$.price[0].numeric[1]: numeric needs an operator and a number"));
    CHECK(
        rejects("{\"price\": [{\"numeric\": [5, \">\"]}]}", SL_EINVAL, "$.price[0].numeric[0]: "));
    CHECK(rejects("{\"price\": [1, {\"numeric\": [\">\", 1, \"!=\", 2]}]}", SL_EINVAL,
                  "$.price[1].numeric[2]: unknown numeric operator \"!=\""));
    CHECK(rejects("{\"$or\": {\"a\": [\"1\"]}}", SL_EINVAL, "$.$or: $or needs an array"));
    CHECK(rejects("{\"$or\": []}", SL_EINVAL, "$.$or: empty array"));
    CHECK(rejects("{\"$or\": [{\"a\": [\"1\"]}, [\"b\"]]}", SL_EINVAL,
                  "$.$or[1]: each $or element must be a pattern object"));
    CHECK(rejects("{\"$or\": [{\"a\": [\"1\"]}, {\"b\": [{\"exists\": 1}]}]}", SL_EINVAL,
                  "$.$or[1].b[0]: exists needs true or false"));
    CHECK(rejects("{\"$or\": [{\"$or\": [{\"c\": []}]}]}", SL_EINVAL, "$.$or[0].$or[0].c: "));
    CHECK(rejects("{\"$and\": [{\"a\": [\"1\"]}]}", SL_EINVAL, "$.$and: unknown operator key"));
    CHECK(rejects("{\"$OR\": [{\"a\": [\"1\"]}]}", SL_EINVAL, "$.$OR: unknown operator key"));
}

TEST(json_syntax_errors_carry_line_and_column)
{
    CHECK(rejects("{\"a\": [\"x\"],\n \"b\": [\"y\" }", SL_EINVAL, "line 2, column"));
    CHECK(rejects("{\"a\": [\"x\"]} trailing", SL_EINVAL, "$: invalid JSON at line 1"));
    CHECK(rejects("", SL_EINVAL, "invalid JSON"));
    CHECK(rejects("{\"a\": [\"1\"], \"a\": [\"2\"]}", SL_EINVAL, "duplicate"));
    CHECK(rejects("{\"a\": [\"\\u0000\"]}", SL_EINVAL, "invalid JSON"));
    /* Only `len` bytes are read: the closing brace is outside. */
    CHECK(rejected("{\"a\": [\"x\"]}", 11, SL_EINVAL, "invalid JSON"));
}

/* Appends keys k<first>..k<first+n-1> at p[at], the first one right after '{'. */
static size_t put_keys(char *p, size_t cap, size_t at, int first, int n)
{
    for (int i = first; i < first + n; i++) {
        const char *sep = i == first ? "" : ",";
        at += (size_t)snprintf(p + at, cap - at, "%s\"k%d\":[\"%d\"]", sep, i, i);
    }
    return at;
}

TEST(limit_keys)
{
    static char p[SL_FILTER_TEXT_MAX + 1];
    size_t n = put_keys(p, sizeof(p), (size_t)snprintf(p, sizeof(p), "{"), 0, 64);
    snprintf(p + n, sizeof(p) - n, "}");
    CHECK_EQ(m(p, "k0=0", "k63=63", NULL), 0);
    char why[128];
    struct sl_filter *f = NULL;
    CHECK_EQ(sl_filter_parse(p, strlen(p), SL_FILTER_SCOPE_ATTRIBUTES, &f, why, sizeof(why)), SL_OK);
    sl_filter_free(f);
    n = put_keys(p, sizeof(p), (size_t)snprintf(p, sizeof(p), "{"), 0, 65);
    snprintf(p + n, sizeof(p) - n, "}");
    CHECK(rejects(p, SL_ETOOBIG, "$.k64: more than 64 keys"));
    /* Keys inside $or branches count towards the same limit. */
    n = put_keys(p, sizeof(p), (size_t)snprintf(p, sizeof(p), "{"), 0, 40);
    n += (size_t)snprintf(p + n, sizeof(p) - n, ",\"$or\":[{");
    n = put_keys(p, sizeof(p), n, 40, 25);
    snprintf(p + n, sizeof(p) - n, "}]}");
    CHECK(rejects(p, SL_ETOOBIG, "$.$or[0].k64: more than 64 keys"));
}

TEST(limit_values_per_key)
{
    static char p[SL_FILTER_TEXT_MAX + 1];
    for (int count = 256; count <= 257; count++) {
        size_t n = (size_t)snprintf(p, sizeof(p), "{\"k\":[");
        for (int i = 0; i < count; i++) {
            n += (size_t)snprintf(p + n, sizeof(p) - n, "%s%d", i ? "," : "", i);
        }
        snprintf(p + n, sizeof(p) - n, "]}");
        CHECK(strlen(p) <= SL_FILTER_TEXT_MAX);
        if (count == 256) {
            CHECK_EQ(m(p, "k=255", NULL), 1);
            CHECK_EQ(m(p, "k=256", NULL), 0);
        } else {
            CHECK(rejects(p, SL_ETOOBIG, "$.k: 257 alternatives, more than 256"));
        }
    }
    /* The same bound on anything-but lists. */
    size_t n = (size_t)snprintf(p, sizeof(p), "{\"k\":[{\"anything-but\":[");
    for (int i = 0; i < 257; i++) {
        n += (size_t)snprintf(p + n, sizeof(p) - n, "%s%d", i ? "," : "", i);
    }
    snprintf(p + n, sizeof(p) - n, "]}]}");
    CHECK(rejects(p, SL_ETOOBIG, "$.k[0].anything-but: anything-but has 257 values"));
}

TEST(limit_or_depth)
{
    const char *four = "{\"$or\":[{\"$or\":[{\"$or\":[{\"$or\":[{\"a\":[\"1\"]}]}]}]}]}";
    const char *five =
        "{\"$or\":[{\"$or\":[{\"$or\":[{\"$or\":[{\"$or\":[{\"a\":[\"1\"]}]}]}]}]}]}";
    CHECK_EQ(m(four, "a=1", NULL), 1);
    CHECK_EQ(m(four, "a=2", NULL), 0);
    CHECK(rejects(five, SL_ETOOBIG, "$.$or[0].$or[0].$or[0].$or[0].$or: $or nested more than 4"));
}

TEST(limit_text_bytes)
{
    static char p[SL_FILTER_TEXT_MAX + 2];
    /* {"k":["xxxx..."]} of exactly 4096 bytes parses; one more byte does not. */
    size_t fixed = strlen("{\"k\":[\"\"]}");
    memcpy(p, "{\"k\":[\"", 7);
    memset(p + 7, 'x', SL_FILTER_TEXT_MAX - fixed);
    memcpy(p + 7 + (SL_FILTER_TEXT_MAX - fixed), "\"]}", 4);
    CHECK_EQ(strlen(p), SL_FILTER_TEXT_MAX);
    struct sl_filter *f = NULL;
    char why[128];
    CHECK_EQ(sl_filter_parse(p, strlen(p), SL_FILTER_SCOPE_ATTRIBUTES, &f, why, sizeof(why)), SL_OK);
    sl_filter_free(f);
    memmove(p + 1, p, SL_FILTER_TEXT_MAX + 1);
    p[0] = ' ';
    CHECK(rejects(p, SL_ETOOBIG, "$: pattern of 4097 bytes, more than 4096"));
}

TEST(limit_key_length)
{
    static char p[512];
    char key[SL_RECORD_ATTR_KEY_MAX + 2];
    memset(key, 'a', sizeof(key) - 1);
    key[sizeof(key) - 1] = '\0';
    snprintf(p, sizeof(p), "{\"%s\":[\"v\"]}", key);
    CHECK(rejects(p, SL_ETOOBIG, "attribute key of 129 bytes, more than 128"));
    key[SL_RECORD_ATTR_KEY_MAX] = '\0';
    snprintf(p, sizeof(p), "{\"%s\":[{\"exists\":true}]}", key);
    char attr[SL_RECORD_ATTR_KEY_MAX + 4];
    snprintf(attr, sizeof(attr), "%s=v", key);
    CHECK_EQ(m(p, attr, NULL), 1);
}

TEST(why_may_be_null_or_small)
{
    struct sl_filter *f = (struct sl_filter *)&fx;
    CHECK_EQ(sl_filter_parse("{\"a\": 1}", 8, SL_FILTER_SCOPE_ATTRIBUTES, &f, NULL, 0), SL_EINVAL);
    CHECK(f == NULL);
    char why[6];
    memset(why, '#', sizeof(why));
    CHECK_EQ(sl_filter_parse("{\"a\": [{\"numeric\": 1}]}", 23, SL_FILTER_SCOPE_ATTRIBUTES, &f, why, sizeof(why)), SL_EINVAL);
    CHECK_EQ(strlen(why), sizeof(why) - 1);
    CHECK(strncmp(why, "$.a[0", 5) == 0);
    CHECK_EQ(sl_filter_parse("{}", 2, SL_FILTER_SCOPE_ATTRIBUTES, &f, why, 1), SL_OK);
    CHECK_EQ(why[0], '\0');
    sl_filter_free(f);
    CHECK_EQ(sl_filter_parse(NULL, 0, SL_FILTER_SCOPE_ATTRIBUTES, &f, why, sizeof(why)), SL_EINVAL);
    sl_filter_free(NULL);
}

TEST(match_is_repeatable)
{
    /* One filter, many records: no state carried between calls. */
    const char *p =
        "{\"n\": [{\"numeric\": [\">\", 10]}], \"$or\": [{\"a\": [\"x\"]}, {\"b\": [\"y\"]}]}";
    struct sl_filter *f = NULL;
    char why[128];
    CHECK_EQ(sl_filter_parse(p, strlen(p), SL_FILTER_SCOPE_ATTRIBUTES, &f, why, sizeof(why)), SL_OK);
    for (int i = 0; i < 100; i++) {
        char n[32];
        snprintf(n, sizeof(n), "n=%d", i);
        struct sl_attr attrs[2] = {
            {.key = "n", .key_len = 1, .value = n + 2, .value_len = (uint32_t)strlen(n + 2)},
            {.key = i % 2 ? "a" : "b", .key_len = 1, .value = "x", .value_len = 1}};
        struct sl_record rec = {.attrs = attrs, .attr_count = 2, .timestamp_ms = 1};
        struct sl_batch_builder b;
        sl_batch_builder_init(&b, fx.buf, sizeof(fx.buf));
        size_t len = 0;
        struct sl_batch_header h;
        struct sl_batch_iter it;
        struct sl_record_view v;
        CHECK_EQ(sl_batch_builder_add(&b, &rec), SL_OK);
        CHECK_EQ(sl_batch_builder_finish(&b, SL_BATCH_CODEC_NONE, 1, NULL, NULL, 0, 0, 0, &len),
                 SL_OK);
        CHECK_EQ(sl_batch_validate(fx.buf, len, sizeof(fx.buf), &h), SL_OK);
        CHECK_EQ(sl_batch_iter_init(&it, fx.buf, &h, NULL, NULL, 0), SL_OK);
        CHECK_EQ(sl_batch_iter_next(&it, &v), SL_OK);
        /* Odd i: a=x (matches the $or); even i: b=x (does not). */
        CHECK_EQ(match_view(f, &v), i > 10 && i % 2 == 1);
    }
    sl_filter_free(f);
}

TEST(typed_message_attributes)
{
    /* What the SQS and SNS APIs store for message attribute K: "sqs:K" = type NUL value. */
    const char *p = "{\"color\": [\"red\"], \"n\": [{\"numeric\": [\">\", 10]}]}";
    CHECK_EQ(m(p, "sqs:color=String\x1fred", "sqs:n=Number\x1f" "12", NULL), 1);
    CHECK_EQ(m(p, "sqs:color=String\x1f" "blue", "sqs:n=Number\x1f" "12", NULL), 0);
    CHECK_EQ(m(p, "sqs:color=String\x1fred", "sqs:n=Number\x1f" "9", NULL), 0);
    /* an attribute K itself wins over sqs:K */
    CHECK_EQ(m(p, "color=red", "sqs:color=String\x1f" "blue", "n=11", NULL), 1);
    /* without the NUL it is not what the APIs write: absent */
    CHECK_EQ(m("{\"color\": [{\"exists\": false}]}", "sqs:color=red", NULL), 1);
    CHECK_EQ(m("{\"color\": [{\"exists\": true}]}", "sqs:color=String\x1f", NULL), 1);
    CHECK_EQ(m("{\"color\": [\"\"]}", "sqs:color=String\x1f", NULL), 1);
    /* the prefix alone, or a longer name, is not K */
    CHECK_EQ(m("{\"color\": [{\"exists\": true}]}", "sqs:colors=String\x1fred", NULL), 0);
    CHECK_EQ(m("{\"color\": [{\"exists\": true}]}", "sqs:=String\x1fred", NULL), 0);
    /* String.Array (SNS): a condition holds when one element holds, each with its JSON type */
    const char *arr = "sqs:color=String.Array\x1f[\"blue\", \"red\"]";
    CHECK_EQ(m("{\"color\": [\"red\"]}", arr, NULL), 1);
    CHECK_EQ(m("{\"color\": [\"green\"]}", arr, NULL), 0);
    CHECK_EQ(m("{\"color\": [{\"prefix\": \"bl\"}]}", arr, NULL), 1);
    CHECK_EQ(m("{\"color\": [{\"anything-but\": \"red\"}]}", arr, NULL), 1);
    CHECK_EQ(m("{\"color\": [{\"anything-but\": [\"red\", \"blue\"]}]}", arr, NULL), 0);
    CHECK_EQ(m("{\"color\": [{\"exists\": true}]}", arr, NULL), 1);
    CHECK_EQ(m("{\"color\": [\"[\\\"blue\\\", \\\"red\\\"]\"]}", arr, NULL), 0); /* not the text */
    const char *nums = "sqs:n=String.Array\x1f[5, 12, true]";
    CHECK_EQ(m("{\"n\": [{\"numeric\": [\">\", 10]}]}", nums, NULL), 1);
    CHECK_EQ(m("{\"n\": [{\"numeric\": [\">\", 20]}]}", nums, NULL), 0);
    CHECK_EQ(m("{\"n\": [\"12\"]}", nums, NULL), 0); /* a number element is no string */
    /* not JSON: no element */
    CHECK_EQ(m("{\"color\": [\"red\"]}", "sqs:color=String.Array\x1f[\"red\"", NULL), 0);
    CHECK_EQ(m("{\"color\": [{\"exists\": true}]}", "sqs:color=String.Array\x1f[", NULL), 1);
}

int main(void)
{
    RUN(exact_string);
    RUN(number_equality);
    RUN(prefix_suffix);
    RUN(equals_ignore_case);
    RUN(anything_but);
    RUN(exists);
    RUN(numeric_ranges);
    RUN(and_of_keys);
    RUN(repeated_attribute_first_wins);
    RUN(empty_pattern_matches_everything);
    RUN(or_with_other_keys);
    RUN(or_nested);
    RUN(or_wide);
    RUN(invalid_patterns_name_the_path);
    RUN(json_syntax_errors_carry_line_and_column);
    RUN(limit_keys);
    RUN(limit_values_per_key);
    RUN(limit_or_depth);
    RUN(limit_text_bytes);
    RUN(limit_key_length);
    RUN(why_may_be_null_or_small);
    RUN(match_is_repeatable);
    RUN(typed_message_attributes);
    TEST_END();
}
