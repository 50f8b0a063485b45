/* rest_int.h - what rest.c (routing, streams) and rest_records.c (browse,
 * produce) share. Not for other modules. */
#ifndef SL_API_REST_INT_H
#define SL_API_REST_INT_H

#include "broker/api/call.h"

#include <jansson.h>

struct sl_stream;

#define SL_REST_WHY_MAX 512u

/* Answers `body` (taken; NULL = out of memory: 503) with `status`. */
void sl_rest_reply(struct sl_api_call *call, int status, json_t *body);
/* Answers an engine error code (its HTTP status) with the message. */
void sl_rest_fail(struct sl_api_call *call, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The value of `name` in the request's query, percent-decoded into buf;
 * NULL when absent; *bad set when present but undecodable or too long. */
const char *sl_rest_query(const struct sl_api_call *call, const char *name, char *buf,
                          size_t cap, bool *bad);

/* GET .../records?shard=&from=&limit=&key= and POST .../records. */
void sl_rest_records_get(struct sl_api_call *call, struct sl_stream *st);
void sl_rest_records_post(struct sl_api_call *call, struct sl_stream *st);

#endif
