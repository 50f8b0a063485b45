/* eb_envelope.c - a PutEvents entry checked and rendered as the event
 * envelope EventBridge hands to rules and targets:
 *   {"version":"0","id","detail-type","source","account","time","region",
 *    "resources":[...],"detail":{...}}
 * "time" is the entry's Time (epoch seconds, as the SDKs send it, or ISO
 * 8601) or the put time, in whole seconds as EventBridge writes it. The
 * Detail text is spliced in as sent (after checking it is one JSON object
 * without NUL bytes), so numbers keep their digits (a 20-digit integer is
 * not rounded by a re-encoding).
 *
 * Input is untrusted (the fuzz target fuzz_eventbridge drives this file):
 * every member's type is checked, nothing is asserted about it. Pure: no
 * engine, any thread.
 */
#include "broker/api/eb_int.h"

#include "common/isotime.h"
#include "common/jsonflat.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EB_TIME_BYTES    14u /* what AWS counts for a Time member */
#define EB_RESOURCES_MAX 100u

size_t eb_entry_size(const json_t *entry)
{
    size_t n = json_object_get(entry, "Time") != NULL ? EB_TIME_BYTES : 0;
    static const char *const fields[] = {"Source", "DetailType", "Detail"};
    for (size_t i = 0; i < 3; i++) {
        json_t *v = json_object_get(entry, fields[i]);
        n += json_is_string(v) ? json_string_length(v) : 0;
    }
    json_t *res = json_object_get(entry, "Resources");
    for (size_t i = 0; i < json_array_size(res); i++) {
        json_t *v = json_array_get(res, i);
        n += json_is_string(v) ? json_string_length(v) : 0;
    }
    return n;
}

/* The entry's time in ms: Time as epoch seconds or ISO 8601, else now. */
static bool entry_time(const json_t *t, uint64_t now_ms, uint64_t *ms)
{
    if (t == NULL || json_is_null(t)) {
        *ms = now_ms;
        return true;
    }
    if (json_is_number(t)) {
        double s = json_number_value(t);
        if (!isfinite(s) || s < 0 || s > 253402300799.0) { /* up to year 9999 */
            return false;
        }
        *ms = (uint64_t)(s * 1000.0);
        return true;
    }
    return json_is_string(t) && sl_time_parse_iso8601(json_string_value(t), ms) == 0;
}

static char *fail(const char **code, const char *c, char *why, size_t why_len, const char *msg)
{
    *code = c;
    snprintf(why, why_len, "%s", msg);
    return NULL;
}

static bool str_ok(const json_t *v)
{
    return json_is_string(v) && json_string_length(v) > 0;
}

/* The detail's text when it is one JSON object (no NUL: jansson may stop
 * at one and the splice would cut the envelope short). */
static bool detail_ok(const json_t *d)
{
    const char *s = json_string_value(d);
    size_t len = json_string_length(d);
    if (memchr(s, '\0', len) != NULL) {
        return false;
    }
    json_t *o = json_loadb(s, len, JSON_DECODE_INT_AS_REAL, NULL);
    bool ok = json_is_object(o);
    json_decref(o);
    return ok;
}

char *eb_envelope(const json_t *entry, const char *id, uint64_t now_ms, size_t *out_len,
                  const char **code, char *why, size_t why_len)
{
    json_t *src = json_object_get(entry, "Source");
    json_t *dt = json_object_get(entry, "DetailType");
    json_t *detail = json_object_get(entry, "Detail");
    json_t *res = json_object_get(entry, "Resources");
    uint64_t ms = 0;
    if (!json_is_object(entry)) {
        return fail(code, "InvalidArgument", why, why_len, "An entry must be a JSON object.");
    }
    if (!str_ok(src)) {
        return fail(code, "InvalidArgument", why, why_len,
                    "Parameter Source is not valid. Reason: Source is a required argument.");
    }
    if (!str_ok(dt)) {
        return fail(code, "InvalidArgument", why, why_len,
                    "Parameter DetailType is not valid. Reason: DetailType is a required "
                    "argument.");
    }
    if (!str_ok(detail)) {
        return fail(code, "InvalidArgument", why, why_len,
                    "Parameter Detail is not valid. Reason: Detail is a required argument.");
    }
    if (!detail_ok(detail)) {
        return fail(code, "MalformedDetail", why, why_len,
                    "Detail is malformed: it must be one JSON object, e.g. {\"state\": \"x\"}.");
    }
    if (!entry_time(json_object_get(entry, "Time"), now_ms, &ms)) {
        return fail(code, "InvalidArgument", why, why_len,
                    "Parameter Time is not valid: epoch seconds or an ISO 8601 time.");
    }
    json_t *resources = json_array();
    for (size_t i = 0; i < json_array_size(res) && resources != NULL; i++) {
        json_t *r = json_array_get(res, i);
        if (!json_is_string(r) || i >= EB_RESOURCES_MAX) {
            json_decref(resources);
            return fail(code, "InvalidArgument", why, why_len,
                        "Parameter Resources is not valid: a list of up to 100 strings (ARNs).");
        }
        json_array_append(resources, r);
    }
    if (res != NULL && !json_is_null(res) && !json_is_array(res)) {
        json_decref(resources);
        return fail(code, "InvalidArgument", why, why_len,
                    "Parameter Resources is not valid: a list of strings (ARNs).");
    }
    char when[SL_ISOTIME_FORMAT_MAX];
    sl_time_format_iso8601(ms, false, when);
    json_t *o = json_pack("{s:s,s:s,s:O,s:O,s:s,s:s,s:s,s:o}", "version", "0", "id", id,
                          "detail-type", dt, "source", src, "account", EB_ACCOUNT, "time", when,
                          "region", EB_REGION, "resources", resources);
    char *head = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (head == NULL) {
        return fail(code, "InternalFailure", why, why_len, "out of memory");
    }
    static const char key[] = ",\"detail\":";
    size_t hlen = strlen(head) - 1; /* without its closing brace */
    size_t dlen = json_string_length(detail);
    size_t len = hlen + sizeof(key) - 1 + dlen + 1;
    char *out = len <= SL_JSONFLAT_DOC_MAX ? malloc(len + 1) : NULL;
    if (out != NULL) {
        memcpy(out, head, hlen);
        memcpy(out + hlen, key, sizeof(key) - 1);
        memcpy(out + hlen + sizeof(key) - 1, json_string_value(detail), dlen);
        out[len - 1] = '}';
        out[len] = '\0';
        *out_len = len;
    }
    free(head);
    if (out == NULL && len > SL_JSONFLAT_DOC_MAX) {
        *code = "InvalidArgument";
        snprintf(why, why_len,
                 "The event envelope is %zu bytes, past the %u bytes a rule's pattern reads: "
                 "make Detail smaller.",
                 len, SL_JSONFLAT_DOC_MAX);
    } else if (out == NULL) {
        *code = "InternalFailure";
        snprintf(why, why_len, "out of memory");
    }
    return out;
}
