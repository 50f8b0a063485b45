/* test_filter_body.c - event patterns over a record's value read as JSON
 * (SL_FILTER_SCOPE_BODY), with the examples of EventBridge's "event
 * patterns" documentation as the reference, and the operators added for both
 * scopes (wildcard, cidr, anything-but with operators, prefix/suffix
 * ignoring case). Records are real: built by the batch codec and read back.
 */
#include "broker/engine/filter.h"

#include "common/error.h"
#include "storage/batch.h"

#include "tests/unit/test.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint8_t g_buf[1u << 20];
static struct sl_record_view g_view;

/* A one-record batch whose value is `value` (and attributes "k=v"...). */
static int record(const char *value, const char *attr)
{
    struct sl_attr a = {0};
    uint32_t n = 0;
    if (attr != NULL) {
        const char *eq = strchr(attr, '=');
        a = (struct sl_attr){.key = attr, .key_len = (uint32_t)(eq - attr), .value = eq + 1,
                             .value_len = (uint32_t)strlen(eq + 1)};
        n = 1;
    }
    struct sl_record rec = {.value = value, .value_len = (uint32_t)strlen(value), .attrs = &a,
                            .attr_count = n, .timestamp_ms = 1};
    struct sl_batch_builder b;
    sl_batch_builder_init(&b, g_buf, sizeof(g_buf));
    size_t len = 0;
    struct sl_batch_header h;
    struct sl_batch_iter it;
    if (sl_batch_builder_add(&b, &rec) != SL_OK ||
        sl_batch_builder_finish(&b, SL_BATCH_CODEC_NONE, 1, NULL, NULL, 0, 0, 0, &len) != SL_OK ||
        sl_batch_validate(g_buf, len, sizeof(g_buf), &h) != SL_OK ||
        sl_batch_iter_init(&it, g_buf, &h, NULL, NULL, 0) != SL_OK ||
        sl_batch_iter_next(&it, &g_view) != SL_OK) {
        return -1;
    }
    return 0;
}

/* 1 match, 0 no match, -1 the pattern did not parse (printed). */
static int scoped(enum sl_filter_scope scope, const char *pattern, const char *value,
                  const char *attr)
{
    char why[256];
    struct sl_filter *f = NULL;
    int rc = sl_filter_parse(pattern, strlen(pattern), scope, &f, why, sizeof(why));
    if (rc != SL_OK) {
        fprintf(stderr, "  parse failed (%s): %s\n  pattern: %s\n", sl_errname(rc), why, pattern);
        return -1;
    }
    if (record(value, attr) != 0) {
        sl_filter_free(f);
        return -2;
    }
    struct sl_filter_subject s;
    sl_filter_subject_init(&s);
    sl_filter_subject_set(&s, &g_view);
    int r = sl_filter_match(f, &s) ? 1 : 0;
    if ((sl_filter_match(f, &s) ? 1 : 0) != r) { /* a subject is reusable */
        fprintf(stderr, "  a second match on one subject answered differently\n");
        r = -3;
    }
    sl_filter_subject_fini(&s);
    sl_filter_free(f);
    return r;
}

static int body(const char *pattern, const char *value)
{
    return scoped(SL_FILTER_SCOPE_BODY, pattern, value, NULL);
}

static int attrs(const char *pattern, const char *attr)
{
    return scoped(SL_FILTER_SCOPE_ATTRIBUTES, pattern, "v", attr);
}

static bool rejects(enum sl_filter_scope scope, const char *pattern, int err, const char *want)
{
    char why[256];
    struct sl_filter *f = NULL;
    int rc = sl_filter_parse(pattern, strlen(pattern), scope, &f, why, sizeof(why));
    bool ok = rc == err && f == NULL && strstr(why, want) != NULL;
    if (!ok) {
        fprintf(stderr, "  pattern %.80s: got %s \"%s\", want %s containing \"%s\"\n", pattern,
                sl_errname(rc), rc == SL_OK ? "" : why, sl_errname(err), want);
        sl_filter_free(f);
    }
    return ok;
}

/* EventBridge's example event (EC2 instance state change), with extra
 * fields the documentation's operator examples use. */
static const char EC2[] =
    "{\"version\": \"0\", \"id\": \"6a7e8feb-b491-4cf7-a9f1-bf3703467718\","
    " \"detail-type\": \"EC2 Instance State-change Notification\", \"source\": \"aws.ec2\","
    " \"account\": \"111122223333\", \"time\": \"2017-12-22T18:43:48Z\","
    " \"region\": \"us-west-1\","
    " \"resources\": [\"arn:aws:ec2:us-west-1:123456789012:instance/i-1234567890abcdef0\"],"
    " \"detail\": {\"instance-id\": \"i-1234567890abcdef0\", \"state\": \"terminated\","
    " \"c-count\": 5, \"d-count\": 3, \"x-limit\": 301.8, \"source-ip\": \"10.0.0.123\","
    " \"responseElements\": null, \"eventVersion\": \"\", \"flag\": true,"
    " \"items\": [{\"sku\": \"a-1\", \"qty\": 2}, {\"sku\": \"b-2\", \"qty\": 7}],"
    " \"tags\": [[\"x\", \"y\"], [], \"z\"]}}";

TEST(eventbridge_examples)
{
    CHECK_EQ(body("{\"source\": [\"aws.ec2\"], \"detail-type\": "
                  "[\"EC2 Instance State-change Notification\"]}",
                  EC2),
             1);
    CHECK_EQ(body("{\"source\": [\"aws.s3\"]}", EC2), 0);
    CHECK_EQ(body("{\"detail\": {\"state\": [\"terminated\"]}}", EC2), 1);
    CHECK_EQ(body("{\"detail\": {\"state\": [\"running\", \"terminated\"]}}", EC2), 1);
    CHECK_EQ(body("{\"detail\": {\"state\": [\"running\"]}}", EC2), 0);
    CHECK_EQ(body("{\"time\": [{\"prefix\": \"2017-12-22\"}]}", EC2), 1);
    CHECK_EQ(body("{\"source\": [{\"suffix\": \"ec2\"}]}", EC2), 1);
    CHECK_EQ(body("{\"detail\": {\"state\": [{\"anything-but\": \"initializing\"}]}}", EC2), 1);
    CHECK_EQ(body("{\"detail\": {\"state\": [{\"anything-but\": [\"stopped\", \"terminated\"]}]}}",
                  EC2),
             0);
    CHECK_EQ(body("{\"detail\": {\"state\": [{\"anything-but\": {\"prefix\": \"init\"}}]}}", EC2),
             1);
    CHECK_EQ(body("{\"detail\": {\"state\": [{\"anything-but\": {\"prefix\": \"term\"}}]}}", EC2),
             0);
    CHECK_EQ(body("{\"detail\": {\"c-count\": [{\"numeric\": [\">\", 0, \"<=\", 5]}]}}", EC2), 1);
    CHECK_EQ(body("{\"detail\": {\"c-count\": [{\"numeric\": [\">\", 5]}]}}", EC2), 0);
    CHECK_EQ(body("{\"detail\": {\"source-ip\": [{\"cidr\": \"10.0.0.0/24\"}]}}", EC2), 1);
    CHECK_EQ(body("{\"detail\": {\"source-ip\": [{\"cidr\": \"10.0.1.0/24\"}]}}", EC2), 0);
    CHECK_EQ(body("{\"detail\": {\"c-count\": [{\"exists\": true}]}}", EC2), 1);
    CHECK_EQ(body("{\"detail\": {\"e-count\": [{\"exists\": false}]}}", EC2), 1);
    CHECK_EQ(body("{\"detail\": {\"c-count\": [{\"exists\": false}]}}", EC2), 0);
    CHECK_EQ(body("{\"detail-type\": [{\"equals-ignore-case\": "
                  "\"ec2 instance state-change notification\"}]}",
                  EC2),
             1);
    CHECK_EQ(body("{\"resources\": [\"arn:aws:ec2:us-west-1:123456789012:instance/i-b188560f\","
                  " \"arn:aws:ec2:us-west-1:123456789012:instance/i-1234567890abcdef0\"]}",
                  EC2),
             1);
    CHECK_EQ(body("{\"detail\": {\"$or\": [{\"c-count\": [{\"numeric\": [\">\", 10]}]},"
                  " {\"d-count\": [{\"numeric\": [\"<\", 10]}]},"
                  " {\"x-limit\": [{\"numeric\": [\"=\", 3.018e2]}]}]}}",
                  EC2),
             1);
    CHECK_EQ(body("{\"source\": [\"aws.ec2\"], \"$or\": [{\"detail\": {\"c-count\": [9]}},"
                  " {\"detail\": {\"d-count\": [9]}}]}",
                  EC2),
             0);
    CHECK_EQ(body("{\"detail\": {\"responseElements\": [null]}}", EC2), 1);
    CHECK_EQ(body("{\"detail\": {\"eventVersion\": [\"\"]}}", EC2), 1);
    CHECK_EQ(body("{\"detail\": {\"flag\": [true]}}", EC2), 1);
    CHECK_EQ(body("{\"detail\": {\"flag\": [false]}}", EC2), 0);
    CHECK_EQ(body("{\"resources\": [{\"wildcard\": \"arn:aws:ec2:*:instance/i-*\"}]}", EC2), 1);
    CHECK_EQ(body("{}", EC2), 1);
}

TEST(types_are_kept_apart)
{
    /* In the body a string "5" is not the number 5, and null is not "null". */
    CHECK_EQ(body("{\"a\": [5]}", "{\"a\": \"5\"}"), 0);
    CHECK_EQ(body("{\"a\": [\"5\"]}", "{\"a\": 5}"), 0);
    CHECK_EQ(body("{\"a\": [5]}", "{\"a\": 5.0}"), 1);
    CHECK_EQ(body("{\"a\": [5]}", "{\"a\": 5e0}"), 1);
    CHECK_EQ(body("{\"a\": [{\"numeric\": [\">\", 1]}]}", "{\"a\": \"7\"}"), 0);
    CHECK_EQ(body("{\"a\": [\"null\"]}", "{\"a\": null}"), 0);
    CHECK_EQ(body("{\"a\": [null]}", "{\"a\": \"null\"}"), 0);
    CHECK_EQ(body("{\"a\": [true]}", "{\"a\": \"true\"}"), 0);
    CHECK_EQ(body("{\"a\": [{\"prefix\": \"1\"}]}", "{\"a\": 12}"), 0);
    /* anything-but compares by type too: a number is not the string "5". */
    CHECK_EQ(body("{\"a\": [{\"anything-but\": \"5\"}]}", "{\"a\": 5}"), 1);
    CHECK_EQ(body("{\"a\": [{\"anything-but\": 5}]}", "{\"a\": 5}"), 0);
    /* Numbers too long to compare are valid JSON, equal to nothing. */
    CHECK_EQ(body("{\"a\": [{\"exists\": true}]}",
                  "{\"a\": 1234567890123456789012345678901234567890123456789012345678901234567890}"),
             1);
    CHECK_EQ(body("{\"a\": [{\"numeric\": [\">\", 0]}]}", "{\"a\": 1e999}"), 0);
}

TEST(arrays_and_nesting)
{
    static const char doc[] =
        "{\"items\": [{\"sku\": \"a-1\", \"qty\": 2}, {\"sku\": \"b-2\", \"qty\": 7}],"
        " \"tags\": [[\"x\", \"y\"], [], \"z\"], \"empty\": [], \"obj\": {}, \"deep\":"
        " {\"a\": {\"b\": {\"c\": [1, 2, 3]}}}}";
    CHECK_EQ(body("{\"items\": {\"sku\": [\"b-2\"]}}", doc), 1);
    CHECK_EQ(body("{\"items\": {\"qty\": [{\"numeric\": [\">\", 5]}]}}", doc), 1);
    CHECK_EQ(body("{\"items\": {\"qty\": [{\"numeric\": [\">\", 7]}]}}", doc), 0);
    CHECK_EQ(body("{\"tags\": [\"y\"]}", doc), 1);
    CHECK_EQ(body("{\"tags\": [\"z\"]}", doc), 1);
    /* An empty array or object leaves no value: the field does not exist. */
    CHECK_EQ(body("{\"empty\": [{\"exists\": false}]}", doc), 1);
    CHECK_EQ(body("{\"obj\": [{\"exists\": false}]}", doc), 1);
    /* exists looks at values, not at objects on the way. */
    CHECK_EQ(body("{\"deep\": [{\"exists\": true}]}", doc), 0);
    CHECK_EQ(body("{\"deep\": {\"a\": {\"b\": {\"c\": [3]}}}}", doc), 1);
    CHECK_EQ(body("{\"deep\": {\"a\": {\"b\": {\"c\": [4]}}}}", doc), 0);
    CHECK_EQ(body("{\"deep\": {\"a\": {\"c\": [3]}}}", doc), 0);
    /* anything-but with arrays: some element outside the list is enough. */
    CHECK_EQ(body("{\"items\": {\"sku\": [{\"anything-but\": \"a-1\"}]}}", doc), 1);
    CHECK_EQ(body("{\"items\": {\"sku\": [{\"anything-but\": [\"a-1\", \"b-2\"]}]}}", doc), 0);
    /* Duplicate keys add their values to one path. */
    CHECK_EQ(body("{\"a\": [2]}", "{\"a\": 1, \"a\": 2}"), 1);
    /* Keys are exact bytes: escapes decoded, a '.' in a key is not a step. */
    CHECK_EQ(body("{\"caf\xc3\xa9\": [\"x\\\"y\"]}", "{\"caf\\u00e9\": \"x\\\"y\"}"), 1);
    CHECK_EQ(body("{\"a.b\": [1]}", "{\"a\": {\"b\": 1}}"), 0);
    CHECK_EQ(body("{\"a\": {\"b\": [1]}}", "{\"a.b\": 1}"), 0);
    CHECK_EQ(body("{\"e\": [\"\\ud83d\\ude00\"]}", "{\"e\": \"\\ud83d\\ude00\"}"), 1);
}

TEST(values_that_are_not_json_objects_match_only_the_empty_pattern)
{
    static const char *const bad[] = {"", "not json", "[1, 2]", "\"s\"", "5", "{\"a\": 1",
                                      "{\"a\": 1,}", "{\"a\" 1}", "{'a': 1}", "{\"a\": 01}",
                                      "{\"a\": \"\\x\"}", "{\"a\": \"\\ud800\"}",
                                      "{\"a\": 1} x", "{\"a\": tru}", "{\"a\": [1,]}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK_EQ(body("{\"a\": [{\"exists\": false}]}", bad[i]), 0);
        CHECK_EQ(body("{\"a\": [{\"anything-but\": \"zzz\"}]}", bad[i]), 0);
        CHECK_EQ(body("{}", bad[i]), 1);
    }
    /* Too deep for the reader: refused as a whole, not half read. */
    char deep[300];
    size_t n = 0;
    n += (size_t)snprintf(deep + n, sizeof(deep) - n, "{\"a\": ");
    for (int i = 0; i < 70; i++) {
        deep[n++] = '[';
    }
    deep[n++] = '1';
    for (int i = 0; i < 70; i++) {
        deep[n++] = ']';
    }
    deep[n++] = '}';
    deep[n] = '\0';
    CHECK_EQ(body("{\"a\": [1]}", deep), 0);
}

TEST(wildcard)
{
    CHECK_EQ(attrs("{\"f\": [{\"wildcard\": \"*.png\"}]}", "f=dir/pic.png"), 1);
    CHECK_EQ(attrs("{\"f\": [{\"wildcard\": \"*.png\"}]}", "f=dir/pic.jpg"), 0);
    CHECK_EQ(attrs("{\"f\": [{\"wildcard\": \"a*b*c\"}]}", "f=aXXbYYc"), 1);
    CHECK_EQ(attrs("{\"f\": [{\"wildcard\": \"a*b*c\"}]}", "f=abc"), 1);
    CHECK_EQ(attrs("{\"f\": [{\"wildcard\": \"a*b*c\"}]}", "f=acb"), 0);
    CHECK_EQ(attrs("{\"f\": [{\"wildcard\": \"*\"}]}", "f="), 1);
    CHECK_EQ(attrs("{\"f\": [{\"wildcard\": \"a\\\\*\"}]}", "f=a*"), 1);
    CHECK_EQ(attrs("{\"f\": [{\"wildcard\": \"a\\\\*\"}]}", "f=ab"), 0);
    CHECK_EQ(attrs("{\"f\": [{\"wildcard\": \"a\\\\\\\\b\"}]}", "f=a\\b"), 1);
    CHECK_EQ(attrs("{\"f\": [{\"anything-but\": {\"wildcard\": [\"*.png\", \"*.jpg\"]}}]}",
                   "f=x.gif"),
             1);
    CHECK_EQ(attrs("{\"f\": [{\"anything-but\": {\"wildcard\": [\"*.png\", \"*.jpg\"]}}]}",
                   "f=x.jpg"),
             0);
    CHECK(rejects(SL_FILTER_SCOPE_ATTRIBUTES, "{\"f\": [{\"wildcard\": \"a**b\"}]}", SL_EINVAL,
                  "$.f[0]: wildcard: consecutive '*'"));
    CHECK(rejects(SL_FILTER_SCOPE_ATTRIBUTES, "{\"f\": [{\"wildcard\": \"a\\\\b\"}]}", SL_EINVAL,
                  "wildcard: '\\' escapes only"));
    CHECK(rejects(SL_FILTER_SCOPE_BODY, "{\"f\": [{\"wildcard\": 5}]}", SL_EINVAL,
                  "wildcard needs a string"));
}

TEST(cidr)
{
    CHECK_EQ(attrs("{\"ip\": [{\"cidr\": \"10.0.0.0/8\"}]}", "ip=10.200.3.4"), 1);
    CHECK_EQ(attrs("{\"ip\": [{\"cidr\": \"10.0.0.0/8\"}]}", "ip=11.0.0.1"), 0);
    CHECK_EQ(attrs("{\"ip\": [{\"cidr\": \"192.168.1.128/25\"}]}", "ip=192.168.1.200"), 1);
    CHECK_EQ(attrs("{\"ip\": [{\"cidr\": \"192.168.1.128/25\"}]}", "ip=192.168.1.127"), 0);
    CHECK_EQ(attrs("{\"ip\": [{\"cidr\": \"192.168.1.7\"}]}", "ip=192.168.1.7"), 1);
    CHECK_EQ(attrs("{\"ip\": [{\"cidr\": \"0.0.0.0/0\"}]}", "ip=8.8.8.8"), 1);
    CHECK_EQ(attrs("{\"ip\": [{\"cidr\": \"0.0.0.0/0\"}]}", "ip=not-an-ip"), 0);
    CHECK_EQ(attrs("{\"ip\": [{\"cidr\": \"2001:db8::/32\"}]}", "ip=2001:db8:1::5"), 1);
    CHECK_EQ(attrs("{\"ip\": [{\"cidr\": \"2001:db8::/32\"}]}", "ip=2001:db9::5"), 0);
    CHECK_EQ(attrs("{\"ip\": [{\"cidr\": \"2001:db8::/32\"}]}", "ip=10.0.0.1"), 0);
    CHECK(rejects(SL_FILTER_SCOPE_ATTRIBUTES, "{\"ip\": [{\"cidr\": \"10.0.0.0/33\"}]}", SL_EINVAL,
                  "prefix length must be 0-32"));
    CHECK(rejects(SL_FILTER_SCOPE_ATTRIBUTES, "{\"ip\": [{\"cidr\": \"10.0.0.0/\"}]}", SL_EINVAL,
                  "prefix length"));
    CHECK(rejects(SL_FILTER_SCOPE_ATTRIBUTES, "{\"ip\": [{\"cidr\": \"10.0.0/8\"}]}", SL_EINVAL,
                  "is not an IPv4 or IPv6 address"));
    CHECK(rejects(SL_FILTER_SCOPE_ATTRIBUTES, "{\"ip\": [{\"cidr\": 10}]}", SL_EINVAL,
                  "cidr needs an address prefix string"));
}

TEST(affixes_ignoring_case_and_anything_but_operators)
{
    CHECK_EQ(attrs("{\"a\": [{\"prefix\": {\"equals-ignore-case\": \"ABC\"}}]}", "a=abcdef"), 1);
    CHECK_EQ(attrs("{\"a\": [{\"prefix\": {\"equals-ignore-case\": \"ABD\"}}]}", "a=abcdef"), 0);
    CHECK_EQ(attrs("{\"a\": [{\"suffix\": {\"equals-ignore-case\": \"DEF\"}}]}", "a=abcdef"), 1);
    CHECK_EQ(attrs("{\"a\": [{\"anything-but\": {\"suffix\": \".tmp\"}}]}", "a=x.tmp"), 0);
    CHECK_EQ(attrs("{\"a\": [{\"anything-but\": {\"suffix\": \".tmp\"}}]}", "a=x.txt"), 1);
    CHECK_EQ(attrs("{\"a\": [{\"anything-but\": {\"equals-ignore-case\": [\"X\", \"Y\"]}}]}",
                   "a=y"),
             0);
    CHECK_EQ(attrs("{\"a\": [{\"anything-but\": {\"equals-ignore-case\": \"X\"}}]}", "a=z"), 1);
    /* anything-but still needs the field present. */
    CHECK_EQ(attrs("{\"a\": [{\"anything-but\": \"x\"}]}", "b=1"), 0);
    CHECK(rejects(SL_FILTER_SCOPE_ATTRIBUTES,
                  "{\"a\": [{\"prefix\": {\"equals-ignore-case\": 1}}]}", SL_EINVAL,
                  "prefix takes a string or {\"equals-ignore-case\": string}"));
    CHECK(rejects(SL_FILTER_SCOPE_ATTRIBUTES, "{\"a\": [{\"anything-but\": {\"prefix\": [\"x\"]}}]}",
                  SL_EINVAL, "anything-but's prefix needs a string"));
}

TEST(scopes_are_explicit)
{
    /* Attribute scope stays flat and string-typed; body scope reads only the value. */
    CHECK(rejects(SL_FILTER_SCOPE_ATTRIBUTES, "{\"a\": {\"b\": [\"x\"]}}", SL_EINVAL,
                  "$.a: an attribute pattern is flat: nested fields need the body scope"));
    CHECK(rejects(SL_FILTER_SCOPE_ATTRIBUTES, "{\"a\": [null]}", SL_EINVAL,
                  "$.a[0]: an alternative must be a string, a number or"));
    CHECK(rejects(SL_FILTER_SCOPE_BODY, "{\"a\": {\"$and\": [1]}}", SL_EINVAL,
                  "$.a.$and: unknown operator key"));
    CHECK(rejects(SL_FILTER_SCOPE_BODY, "{\"a\": \"x\"}", SL_EINVAL,
                  "array of alternatives or an object of fields"));
    CHECK(rejects(SL_FILTER_SCOPE_BODY, "{\"a\": {\"$or\": [{\"b\": [1]}, 5]}}", SL_EINVAL,
                  "$.a.$or[1]: each $or element must be a pattern object"));
    CHECK(rejects(SL_FILTER_SCOPE_BODY, "{\"a\": {\"$or\": [{\"b\": {\"c\": [[1]]}}]}}",
                  SL_EINVAL, "$.a.$or[0].b.c[0]: "));
    CHECK_EQ(scoped(SL_FILTER_SCOPE_BODY, "{\"type\": [\"x\"]}", "{\"type\": \"y\"}", "type=x"), 0);
    CHECK_EQ(scoped(SL_FILTER_SCOPE_ATTRIBUTES, "{\"type\": [\"x\"]}", "{\"type\": \"y\"}",
                    "type=x"),
             1);
    /* Attribute numbers are read from strings, as before. */
    CHECK_EQ(attrs("{\"n\": [5]}", "n=5.0"), 1);
    /* Nesting is bounded. */
    char p[512];
    size_t n = 0;
    for (unsigned i = 0; i <= SL_FILTER_PATH_MAX; i++) {
        n += (size_t)snprintf(p + n, sizeof(p) - n, "{\"k%u\": ", i);
    }
    n += (size_t)snprintf(p + n, sizeof(p) - n, "[1]");
    for (unsigned i = 0; i <= SL_FILTER_PATH_MAX; i++) {
        p[n++] = '}';
    }
    p[n] = '\0';
    CHECK(rejects(SL_FILTER_SCOPE_BODY, p, SL_ETOOBIG, "fields nested more than 16 deep"));
    CHECK(rejects((enum sl_filter_scope)7, "{}", SL_EINVAL, "unknown filter scope 7"));
}

TEST(nested_or_at_several_levels_is_an_and_of_ors)
{
    /* (a.x=1 or a.y=1) and (b.x=1 or b.y=1) */
    const char *p = "{\"a\": {\"$or\": [{\"x\": [1]}, {\"y\": [1]}]},"
                    " \"b\": {\"$or\": [{\"x\": [1]}, {\"y\": [1]}]}}";
    CHECK_EQ(body(p, "{\"a\": {\"y\": 1}, \"b\": {\"x\": 1}}"), 1);
    CHECK_EQ(body(p, "{\"a\": {\"y\": 1}, \"b\": {\"z\": 1}}"), 0);
    CHECK_EQ(body(p, "{\"a\": {\"z\": 1}, \"b\": {\"x\": 1}}"), 0);
    const char *q = "{\"$or\": [{\"k\": {\"$or\": [{\"m\": [\"1\"]}, {\"n\": [\"2\"]}]}},"
                    " {\"j\": [true]}]}";
    CHECK_EQ(body(q, "{\"k\": {\"n\": \"2\"}}"), 1);
    CHECK_EQ(body(q, "{\"j\": true}"), 1);
    CHECK_EQ(body(q, "{\"k\": {\"n\": \"3\"}, \"j\": false}"), 0);
}

TEST(one_subject_many_filters)
{
    /* A thousand filters against one subject: each answer as when alone. */
    enum { N = 1000 };
    static struct sl_filter *fs[N];
    for (int i = 0; i < N; i++) {
        char p[128];
        snprintf(p, sizeof(p), "{\"detail\": {\"n\": [%d], \"s\": [{\"prefix\": \"v\"}]}}", i);
        CHECK_EQ(sl_filter_parse(p, strlen(p), SL_FILTER_SCOPE_BODY, &fs[i], NULL, 0), SL_OK);
    }
    struct sl_filter_subject s;
    sl_filter_subject_init(&s);
    for (int v = 0; v < 5; v++) {
        char doc[128];
        snprintf(doc, sizeof(doc), "{\"detail\": {\"n\": %d, \"s\": \"v%d\"}}", v * 300, v);
        CHECK_EQ(record(doc, NULL), 0);
        sl_filter_subject_set(&s, &g_view);
        int hits = 0;
        for (int i = 0; i < N; i++) {
            bool m = sl_filter_match(fs[i], &s);
            CHECK_EQ(m, i == v * 300);
            hits += m ? 1 : 0;
        }
        CHECK_EQ(hits, v * 300 < N ? 1 : 0);
    }
    sl_filter_subject_fini(&s);
    for (int i = 0; i < N; i++) {
        sl_filter_free(fs[i]);
    }
}

int main(void)
{
    RUN(eventbridge_examples);
    RUN(types_are_kept_apart);
    RUN(arrays_and_nesting);
    RUN(values_that_are_not_json_objects_match_only_the_empty_pattern);
    RUN(wildcard);
    RUN(cidr);
    RUN(affixes_ignoring_case_and_anything_but_operators);
    RUN(scopes_are_explicit);
    RUN(nested_or_at_several_levels_is_an_and_of_ors);
    RUN(one_subject_many_filters);
    TEST_END();
}
