/* internal.c - AWS API calls from inside the broker (api.h: sl_api_internal_call): the
 * native protocol's ApiCall runs EventBridge's operations through the very handlers of
 * the HTTP listener, so one implementation, one state and one set of ACLs serve awscli,
 * the SDKs and the sluice CLI.
 *
 * An internal call is an ordinary struct sl_api_call on the caller's connection (the log
 * names its peer) without an HTTP session: its request is made here (POST, no headers, a
 * copy of the body), its principal is the caller's, and sl_api_reply hands the answer to
 * the caller's callback instead of a session (call.c).
 *
 * Threading: the main loop.
 */
#include "broker/api/call.h"
#include "broker/api/eb.h"

#include "common/clock.h"
#include "common/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct internal_call {
    struct sl_api_call call; /* first: sl_api_reply frees the allocation through it */
    struct sl_http_request req;
};

int sl_api_internal_call(struct sl_api *api, struct sl_conn *via, const char *principal,
                         const char *service, const char *action, const void *body, size_t len,
                         sl_api_internal_done done, void *ctx, char *why, size_t why_len)
{
    if (strcmp(service, "events") != 0) {
        snprintf(why, why_len, "no API service '%.64s' over the native protocol (served: events)",
                 service);
        return SL_ENOTFOUND;
    }
    if (len > api->cfg.body_bytes_max) {
        snprintf(why, why_len, "the call's body is %zu bytes, over http_body_bytes_max (%u)", len,
                 api->cfg.body_bytes_max);
        return SL_ETOOBIG;
    }
    if (strlen(principal) > SL_API_PRINCIPAL_MAX) {
        snprintf(why, why_len, "principal name longer than %u bytes", SL_API_PRINCIPAL_MAX);
        return SL_EINVAL;
    }
    struct internal_call *ic = calloc(1, sizeof(*ic));
    uint8_t *copy = malloc(len + 1); /* NUL-ended, as a session's bodies are */
    if (ic == NULL || copy == NULL) {
        free(ic);
        free(copy);
        snprintf(why, why_len, "out of memory");
        return SL_ENOMEM;
    }
    if (len > 0) {
        memcpy(copy, body, len);
    }
    copy[len] = '\0';
    ic->req = (struct sl_http_request){.id = 0,
                                       .version = 11,
                                       .method = "POST",
                                       .path = "/",
                                       .body = copy,
                                       .body_len = (uint32_t)len};
    ic->call = (struct sl_api_call){.api = api,
                                    .conn = via,
                                    .req = &ic->req,
                                    .route = SL_ROUTE_EVENTBRIDGE,
                                    .start_ns = sl_clock_mono_ns(),
                                    .internal_done = done,
                                    .internal_ctx = ctx,
                                    .internal_body = copy};
    snprintf(ic->call.principal, sizeof(ic->call.principal), "%s", principal);
    sl_eb_handle(&ic->call, action);
    return SL_OK;
}
