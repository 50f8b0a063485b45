/* kinesis_cbor.h - application/x-amz-cbor-1.1 for the Kinesis API: requests
 * translated to the json_t of their JSON form, answers from JSON text to
 * CBOR (kinesis_cbor.c, the only user of libcbor).
 *
 * Threading: none of its own; reentrant.
 */
#ifndef SL_API_KINESIS_CBOR_H
#define SL_API_KINESIS_CBOR_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define SL_KIN_CBOR_CONTENT_TYPE "application/x-amz-cbor-1.1"

/* A CBOR map body as JSON: *out returns owned. Errors: SL_EPROTO (not one
 * well-formed CBOR map, too deep, non-UTF-8 text, a key with a NUL). */
int sl_kin_cbor_to_json(const uint8_t *body, size_t len, json_t **out);
/* An answer's JSON text (borrowed) as CBOR: *out returns owned (free()).
 * Errors: SL_ENOMEM. */
int sl_kin_cbor_from_json(const char *json, size_t len, uint8_t **out, size_t *out_len);

#endif
