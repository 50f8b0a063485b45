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

/* The queue groups of a stream (rest_queues.c): an array of their counters,
 * settings and push targets (empty when none). */
struct sl_api;
json_t *sl_rest_queues_of(const struct sl_api *api, const char *stream);
/* GET /queues: every queue group of every stream the principal may see. */
void sl_rest_queues_list(struct sl_api_call *call);
/* GET /queues/STREAM/GROUP (verb "") and POST .../purge (verb "/purge"). */
void sl_rest_queue(struct sl_api_call *call, struct sl_stream *st, const char *group,
                   const char *verb, bool get);
/* POST /streams/DLQ/redrive: dead letters back to their source streams. */
void sl_rest_redrive(struct sl_api_call *call, struct sl_stream *dlq);
/* POST /streams/DLQ/discard: the pending dead letters dropped. */
void sl_rest_dlq_discard(struct sl_api_call *call, struct sl_stream *dlq);

/* GET .../records?shard=&from=&limit=&key= and POST .../records. */
void sl_rest_records_get(struct sl_api_call *call, struct sl_stream *st);
void sl_rest_records_post(struct sl_api_call *call, struct sl_stream *st);

#endif
