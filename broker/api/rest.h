/* rest.h - the console's JSON API under /api/v1 (README "Web console"):
 * the overview, streams, one stream with its shards and consumer groups,
 * a page of records (browse) and a test record (produce). JSON in and out;
 * every error is {"error": "ENOTFOUND", "message": "...cause and fix"} with
 * an HTTP status. A POST must say Content-Type: application/json, which a
 * cross-site form cannot send (so a page elsewhere cannot write here).
 *
 * Threading: the main loop.
 */
#ifndef SL_API_REST_H
#define SL_API_REST_H

#include "broker/api/call.h"

/* Answers `call` for `path` (below /api/v1, without the query). */
void sl_rest_handle(struct sl_api_call *call, const char *path);

#endif
