/* eb.h - the Amazon EventBridge API over streams, filtered queue groups and
 * push targets: AWS JSON 1.1, X-Amz-Target: AWSEvents.<Op> (eb.c says what
 * maps to what).
 *
 * Threading: the main loop.
 */
#ifndef SL_API_EB_H
#define SL_API_EB_H

#include "broker/api/call.h"

/* Answers `call`; `op` is the part of X-Amz-Target after "AWSEvents.". */
void sl_eb_handle(struct sl_api_call *call, const char *op);
/* From the loop's tick: brings the engine's groups and push targets in
 * line with the rules (after a restart, a change, a group still busy). */
void sl_eb_tick(struct sl_api *api);
/* Frees the front-end's state (at shutdown). */
void sl_eb_free(struct sl_api *api);

#endif
