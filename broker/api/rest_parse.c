/* rest_parse.c - the console API's decoders (see rest_parse.h). */
#include "broker/api/rest_parse.h"

#include "common/error.h"
#include "common/isotime.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool sl_rest_u64(const char *s, uint64_t *out)
{
    if (s[0] < '0' || s[0] > '9') {
        return false;
    }
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    *out = v;
    return errno == 0 && *end == '\0';
}

bool sl_rest_position_of(const char *from, uint32_t limit, uint64_t first_seq, uint64_t next_seq,
                         struct sl_position *pos)
{
    uint64_t v = 0;
    if (from == NULL || strcmp(from, "oldest") == 0) {
        *pos = (struct sl_position){.kind = SL_POS_TRIM_HORIZON};
    } else if (strcmp(from, "latest") == 0) {
        uint64_t n = next_seq > first_seq ? next_seq - first_seq : 0;
        *pos = (struct sl_position){.kind = SL_POS_AT_SEQ,
                                    .seq = next_seq - (n < limit ? n : limit)};
    } else if (strncmp(from, "seq:", 4) == 0 && sl_rest_u64(from + 4, &v)) {
        *pos = (struct sl_position){.kind = SL_POS_AT_SEQ, .seq = v};
    } else if (strncmp(from, "time_ms:", 8) == 0 && sl_rest_u64(from + 8, &v)) {
        *pos = (struct sl_position){.kind = SL_POS_AT_TIME, .time_ms = v};
    } else if (strncmp(from, "time:", 5) == 0 && sl_time_parse_iso8601(from + 5, &v) == SL_OK) {
        *pos = (struct sl_position){.kind = SL_POS_AT_TIME, .time_ms = v};
    } else {
        return false;
    }
    return true;
}

int sl_rest_record_of(json_t *body, struct sl_record *rec, struct sl_attr *attrs, char *why,
                      size_t cap)
{
    json_t *key = json_object_get(body, "key");
    json_t *value = json_object_get(body, "value");
    json_t *at = json_object_get(body, "attributes");
    if (!json_is_string(value) || (key != NULL && !json_is_string(key) && !json_is_null(key)) ||
        (at != NULL && !json_is_object(at) && !json_is_null(at))) {
        snprintf(why, cap, "the body is {\"value\": string, \"key\": string (optional), "
                           "\"attributes\": {name: string} (optional)}");
        return SL_EINVAL;
    }
    *rec = (struct sl_record){.value = json_string_value(value),
                              .value_len = (uint32_t)json_string_length(value),
                              .attrs = attrs};
    if (json_is_string(key) && json_string_length(key) > 0) {
        rec->key = json_string_value(key);
        rec->key_len = (uint32_t)json_string_length(key);
    }
    if (rec->key_len > SL_RECORD_KEY_MAX) {
        snprintf(why, cap, "a key is at most %u bytes", SL_RECORD_KEY_MAX);
        return SL_EINVAL;
    }
    const char *name;
    json_t *v;
    json_object_foreach(at, name, v)
    {
        if (rec->attr_count == SL_RECORD_ATTRS_MAX || !json_is_string(v) ||
            strlen(name) == 0 || strlen(name) > SL_RECORD_ATTR_KEY_MAX ||
            json_string_length(v) > SL_RECORD_ATTR_VALUE_MAX) {
            snprintf(why, cap,
                     "attributes: at most %u, each a name of 1 to %u bytes and a string value of "
                     "at most %u bytes",
                     SL_RECORD_ATTRS_MAX, SL_RECORD_ATTR_KEY_MAX, SL_RECORD_ATTR_VALUE_MAX);
            return SL_EINVAL;
        }
        attrs[rec->attr_count++] = (struct sl_attr){
            .key = name, .key_len = (uint32_t)strlen(name), .value = json_string_value(v),
            .value_len = (uint32_t)json_string_length(v)};
    }
    return SL_OK;
}
