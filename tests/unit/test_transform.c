/* test_transform.c - push targets' body transforms (broker/push/transform.c)
 * on EventBridge's documented examples ("Transforming target input": the
 * EC2 state-change event; a string template, JSON templates with quoted and
 * unquoted placeholders, escaped quotes, values inside arrays), InputPath
 * and Input, the predefined variables, object and number values, missing
 * paths, a template that is not JSON, index and ['quoted'] path steps, the
 * output bound, and the errors (each names the member at fault).
 */
#include "broker/push/transform.h"

#include "common/error.h"

#include "tests/unit/test.h"

#include <stdbool.h>
#include <stdint.h>

static const char EVENT[] =
    "{\"version\":\"0\",\"id\":\"7bf73129-1428-4cd3-a780-95db273d1602\","
    "\"detail-type\":\"EC2 Instance State-change Notification\",\"source\":\"aws.ec2\","
    "\"account\":\"123456789012\",\"time\":\"2015-11-11T21:29:54Z\",\"region\":\"us-east-1\","
    "\"resources\":[\"arn:aws:ec2:us-east-1:123456789012:instance/i-abcd1111\"],"
    "\"detail\":{\"instance-id\":\"i-0123456789\",\"state\":\"RUNNING\",\"n\":42,"
    "\"tags\":{\"a\":\"b\"},\"list\":[\"x\",\"y\"]}}";

#define MAP "\"InputPathsMap\":{\"instance\":\"$.detail.instance-id\",\"state\":\"$.detail.state\"}"

/* Applies spec to EVENT; returns the output (static) or NULL with rc. */
static const char *apply(const char *spec, int *rc)
{
    static char result[1 << 16];
    struct sl_push_transform *t = NULL;
    char why[256];
    *rc = sl_push_transform_compile(spec, strlen(spec), &t, why, sizeof(why));
    if (*rc != SL_OK) {
        fprintf(stderr, "  compile: %s\n", why);
        return NULL;
    }
    char *out = NULL;
    size_t len = 0;
    *rc = sl_push_transform_apply(t, EVENT, sizeof(EVENT) - 1, 1447277394000ull, &out, &len);
    sl_push_transform_free(t);
    if (*rc != SL_OK) {
        return NULL;
    }
    snprintf(result, sizeof(result), "%s", out);
    if (strlen(result) != len) {
        result[0] = '\0';
    }
    free(out);
    return result;
}

static bool same(const char *spec, const char *want)
{
    int rc;
    const char *got = apply(spec, &rc);
    if (got == NULL || strcmp(got, want) != 0) {
        fprintf(stderr, "  spec %s\n  got  %s\n  want %s\n", spec, got ? got : "(error)", want);
        return false;
    }
    return true;
}

/* The error of compiling spec, its message containing `part`. */
static bool refused(const char *spec, const char *part)
{
    struct sl_push_transform *t = NULL;
    char why[256] = "";
    int rc = sl_push_transform_compile(spec, strlen(spec), &t, why, sizeof(why));
    sl_push_transform_free(t);
    if (rc == SL_OK || strstr(why, part) == NULL) {
        fprintf(stderr, "  spec %s: rc %d why \"%s\" (want \"%s\")\n", spec, rc, why, part);
        return false;
    }
    return true;
}

TEST(docs_string_template)
{
    CHECK(same("{\"InputTransformer\":{" MAP ",\"InputTemplate\":"
               "\"\\\"<instance> is in state <state>\\\"\"}}",
               "\"i-0123456789 is in state RUNNING\""));
}

TEST(docs_json_unquoted_placeholders)
{
    CHECK(same("{\"InputTransformer\":{" MAP ",\"InputTemplate\":"
               "\"{\\\"instance\\\" : <instance>, \\\"state\\\": <state>}\"}}",
               "{\"instance\" : \"i-0123456789\", \"state\": \"RUNNING\"}"));
}

TEST(docs_json_quoted_placeholders)
{
    CHECK(same("{\"InputTransformer\":{" MAP ",\"InputTemplate\":"
               "\"{\\\"instance\\\" : \\\"<instance>\\\", \\\"state\\\": \\\"<state>\\\"}\"}}",
               "{\"instance\" : \"i-0123456789\", \"state\": \"RUNNING\"}"));
}

TEST(docs_escaped_quotes_in_string)
{
    CHECK(same("{\"InputTransformer\":{" MAP ",\"InputTemplate\":"
               "\"\\\"<instance> is in state \\\\\\\"<state>\\\\\\\"\\\"\"}}",
               "\"i-0123456789 is in state \\\"RUNNING\\\"\""));
}

TEST(docs_values_in_array)
{
    CHECK(same("{\"InputTransformer\":{" MAP ",\"InputTemplate\":"
               "\"{\\\"instance\\\" : <instance>, \\\"state\\\": [ 9, <state>, true ], "
               "\\\"Transformed\\\" : \\\"Yes\\\" }\"}}",
               "{\"instance\" : \"i-0123456789\", \"state\": [ 9, \"RUNNING\", true ], "
               "\"Transformed\" : \"Yes\" }"));
}

TEST(objects_numbers_missing_and_steps)
{
    CHECK(same("{\"InputTransformer\":{\"InputPathsMap\":{\"t\":\"$.detail.tags\",\"n\":"
               "\"$.detail.n\",\"m\":\"$.detail.nope\",\"l\":\"$.detail.list[1]\",\"q\":"
               "\"$['detail']['instance-id']\"},\"InputTemplate\":"
               "\"{\\\"t\\\":<t>,\\\"n\\\":<n>,\\\"m\\\":<m>,\\\"ms\\\":\\\"<m>\\\",\\\"l\\\":<l>,"
               "\\\"q\\\":<q>}\"}}",
               "{\"t\":{\"a\":\"b\"},\"n\":42,\"m\":null,\"ms\":\"\",\"l\":\"y\","
               "\"q\":\"i-0123456789\"}"));
}

TEST(not_json_template_gets_raw_text)
{
    CHECK(same("{\"InputTransformer\":{" MAP ",\"InputTemplate\":"
               "\"Instance <instance> is <state>, <unknown> stays\"}}",
               "Instance i-0123456789 is RUNNING, <unknown> stays"));
}

TEST(predefined_variables)
{
    CHECK(same("{\"RuleName\":\"r1\",\"RuleArn\":\"arn:aws:events:us-east-1:0:rule/r1\","
               "\"InputTransformer\":{\"InputTemplate\":\"{\\\"rule\\\":<aws.events.rule-name>,"
               "\\\"arn\\\":\\\"<aws.events.rule-arn>\\\",\\\"at\\\":"
               "<aws.events.event.ingestion-time>}\"}}",
               "{\"rule\":\"r1\",\"arn\":\"arn:aws:events:us-east-1:0:rule/r1\","
               "\"at\":\"2015-11-11T21:29:54.000Z\"}"));
    int rc;
    const char *all = apply("{\"InputTransformer\":{\"InputTemplate\":"
                            "\"{\\\"e\\\":<aws.events.event.json>}\"}}",
                            &rc);
    CHECK(all != NULL && strncmp(all, "{\"e\":{\"version\":\"0\"", 19) == 0);
    CHECK(strstr(all, "\"detail\":{") != NULL);
    const char *head = apply("{\"InputTransformer\":{\"InputTemplate\":"
                             "\"{\\\"e\\\":<aws.events.event>}\"}}",
                             &rc);
    CHECK(head != NULL && strstr(head, "\"source\":\"aws.ec2\"") != NULL);
    CHECK(strstr(head, "detail\":") == NULL);
}

TEST(input_path_and_input)
{
    CHECK(same("{\"InputPath\":\"$.detail.tags\"}", "{\"a\":\"b\"}"));
    CHECK(same("{\"InputPath\":\"$.source\"}", "\"aws.ec2\""));
    CHECK(same("{\"InputPath\":\"$.nope\"}", "null"));
    CHECK(same("{\"Input\":\"{\\\"fixed\\\": [1, 2]}\"}", "{\"fixed\": [1, 2]}"));
}

TEST(errors_name_the_problem)
{
    CHECK(refused("{\"InputPath\":\"detail.x\"}", "InputPath"));
    CHECK(refused("{\"InputPath\":\"$.a[*]\"}", "InputPath"));
    CHECK(refused("{\"Input\":\"{not json\"}", "Input"));
    CHECK(refused("{\"Input\":\"{}\",\"InputPath\":\"$\"}", "exactly one"));
    CHECK(refused("{}", "exactly one"));
    CHECK(refused("{\"InputTransformer\":{\"InputPathsMap\":{}}}", "InputTemplate"));
    CHECK(refused("{\"InputTransformer\":{\"InputPathsMap\":{\"aws.x\":\"$\"},"
                  "\"InputTemplate\":\"x\"}}",
                  "InputPathsMap.aws.x"));
    CHECK(refused("{\"InputTransformer\":{\"InputPathsMap\":{\"v\":\"$.['x\"},"
                  "\"InputTemplate\":\"x\"}}",
                  "InputPathsMap.v"));
    CHECK(refused("[1]", "not a JSON object"));
}

TEST(output_is_bounded_and_event_must_be_an_object)
{
    /* a template of 1 KiB placeholders each giving the whole event: past the bound */
    static char spec[SL_PUSH_TRANSFORM_SPEC_MAX];
    int n = snprintf(spec, sizeof(spec), "{\"InputTransformer\":{\"InputTemplate\":\"[");
    for (int i = 0; i < 400; i++) {
        n += snprintf(spec + n, sizeof(spec) - (size_t)n, "<aws.events.event.json>,");
    }
    snprintf(spec + n, sizeof(spec) - (size_t)n, "0]\"}}");
    struct sl_push_transform *t = NULL;
    char why[256];
    CHECK_EQ(sl_push_transform_compile(spec, strlen(spec), &t, why, sizeof(why)), SL_OK);
    static char big[200000];
    memset(big, ' ', sizeof(big));
    memcpy(big, "{\"a\":1", 6);
    big[sizeof(big) - 2] = '}';
    big[sizeof(big) - 1] = '\0';
    char *out = NULL;
    size_t len = 0;
    CHECK_EQ(sl_push_transform_apply(t, big, strlen(big), 0, &out, &len), SL_ETOOBIG);
    CHECK(out == NULL);
    CHECK_EQ(sl_push_transform_apply(t, "[1]", 3, 0, &out, &len), SL_EINVAL);
    CHECK_EQ(sl_push_transform_apply(t, "{\"a\"\0:1}", 8, 0, &out, &len), SL_EINVAL);
    sl_push_transform_free(t);
}

int main(void)
{
    RUN(docs_string_template);
    RUN(docs_json_unquoted_placeholders);
    RUN(docs_json_quoted_placeholders);
    RUN(docs_escaped_quotes_in_string);
    RUN(docs_values_in_array);
    RUN(objects_numbers_missing_and_steps);
    RUN(not_json_template_gets_raw_text);
    RUN(predefined_variables);
    RUN(input_path_and_input);
    RUN(errors_name_the_problem);
    RUN(output_is_bounded_and_event_must_be_an_object);
    TEST_END();
}
