/* access.h - who sent an AWS API request (or a console API request) and
 * what they may do, when `auth` is on: SigV4 (sigv4.c) against the auth
 * file's access keys, replays refused (the console: HTTP Basic against its
 * users), then the auth file's allow rules (broker/auth) per action and
 * stream. With auth off (api->auth == NULL) every call passes unchanged.
 * Refusals are logged (rate-limited) with the peer and the key id, never a
 * secret or a signature. /healthz, /readyz and /metrics never come here.
 *
 * Threading: the main loop (the replay table is the loop's).
 */
#ifndef SL_API_ACCESS_H
#define SL_API_ACCESS_H

#include "broker/api/call.h"
#include "broker/api/sigv4.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Verifies the request's SigV4 for `service` ("kinesis", "sqs") and that
 * its signature is not a replay; on success the principal is in
 * call->principal. SL_SIGV4_OK at once when auth is off. Otherwise returns
 * why, with the cause and the fix in `why` (the API answers its error). */
enum sl_sigv4_status sl_access_authenticate(struct sl_api_call *call, const char *service,
                                            char *why, size_t why_len);

/* Whether the call's principal may do any of `ops` (enum sl_acl_op) on
 * `stream`; true when auth is off. Marks the call as decided. A refusal is
 * logged and described (AWS style, with the fix) in `why`. */
bool sl_access_allowed(struct sl_api_call *call, uint32_t ops, const char *stream, char *why,
                       size_t why_len);

/* For listings: whether the principal has any right on `stream` (true when
 * auth is off); marks the call as decided. Not logged. */
bool sl_access_visible(struct sl_api_call *call, const char *stream);

/* The web console's login (HTTP Basic: a user line of the auth file and its
 * password): SL_OK with call->principal set (at once when auth is off);
 * SL_EAUTH (no or wrong credentials: answer 401 with a Basic challenge),
 * SL_ELIMIT (too many failed logins: 429), with why. */
int sl_access_basic(struct sl_api_call *call, char *why, size_t why_len);

/* Whether auth is on for this call's listener. */
bool sl_access_on(const struct sl_api_call *call);

#endif
