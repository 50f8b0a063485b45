/* rest_parse.h - the console API's decoders of untrusted input (a page's
 * position, numbers, a record's JSON body): pure functions, no engine, so
 * they are fuzzed on their own (tests/fuzz/fuzz_console.c). */
#ifndef SL_API_REST_PARSE_H
#define SL_API_REST_PARSE_H

#include "broker/engine/engine.h"
#include "storage/batch.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A whole unsigned decimal number (no sign, no spaces, no overflow). */
bool sl_rest_u64(const char *s, uint64_t *out);

/* The position of a page of `limit` records of a shard holding
 * [first_seq, next_seq) from `from`: NULL or "oldest", "latest" (the last
 * page), "seq:N", "time:ISO-8601", "time_ms:N". false when it is none. */
bool sl_rest_position_of(const char *from, uint32_t limit, uint64_t first_seq, uint64_t next_seq,
                         struct sl_position *pos);

/* The record of a body {"value": string, "key"?: string|null,
 * "attributes"?: {name: string}|null}; rec's pointers borrow from `body`
 * and attrs (SL_RECORD_ATTRS_MAX entries). SL_EINVAL with why. */
int sl_rest_record_of(json_t *body, struct sl_record *rec, struct sl_attr *attrs, char *why,
                      size_t cap);

/* The dead letters a redrive names: a body {"records": [{"shard": N, "seq":
 * N or "N"}, ...]} (at most SL_REST_SELECT_MAX, none twice), sorted by
 * (shard, seq) into `out` (SL_REST_SELECT_MAX entries). A body without
 * "records" names none (*n = 0: every dead letter). SL_EINVAL with why. */
#define SL_REST_SELECT_MAX 500u

struct sl_rest_pos {
    uint32_t shard;
    uint64_t seq;
};

int sl_rest_selection_of(json_t *body, struct sl_rest_pos *out, uint32_t *n, char *why,
                         size_t cap);
/* Whether (shard, seq) is among the n sorted positions: its index, or -1. */
int sl_rest_selection_find(const struct sl_rest_pos *sel, uint32_t n, uint32_t shard,
                           uint64_t seq);

/* A page's record filter (every part set must match): the key, an
 * attribute NAME=VALUE, a substring of the value, a JSON path in the value
 * ("a.b[0].c") that exists or whose scalar equals `jvalue` (strings by
 * text, numbers and booleans by their JSON text). Strings are borrowed. */
#define SL_REST_FILTER_TEXT_MAX 256u
#define SL_REST_JPATH_DEPTH_MAX 16u

struct sl_rest_filter {
    const char *key; /* NULL: any */
    const char *attr_name, *attr_value;
    const char *contains;
    const char *jpath, *jvalue;
};

/* Parses "NAME=VALUE" of an attr parameter into f (pointers into `text`,
 * which is modified). false when it has no '=' or an empty name. */
bool sl_rest_filter_attr(struct sl_rest_filter *f, char *text);
/* Whether a JSON path is well formed (segments a.b, indexes [n]). */
bool sl_rest_jpath_ok(const char *path);
/* Whether the record matches; `any` is false when no part is set. */
bool sl_rest_filter_set(const struct sl_rest_filter *f);
bool sl_rest_filter_match(const struct sl_rest_filter *f, const struct sl_record_view *r);

#endif
