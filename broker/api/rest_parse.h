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

#endif
