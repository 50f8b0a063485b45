/* api.h - the HTTP front-end: an HTTP/1.1 + h2c listener (broker/http on
 * broker/net) serving the operations endpoints (/healthz, /readyz,
 * /metrics) and, by X-Amz-Target or Action, the AWS-compatible APIs; each
 * request becomes engine calls (broker/engine) and a JSON, XML or text
 * answer.
 *
 * Threading: the main loop.
 */
#ifndef SL_API_H
#define SL_API_H

#include "broker/auth/auth.h"
#include "broker/net/net.h"
#include "common/latency.h"

#include <stdint.h>

struct sl_engine;
struct sl_history;
struct sl_ring;
struct sl_sns;
struct sl_eb;

struct sl_api_config {
    uint32_t header_bytes_max;
    uint32_t body_bytes_max;
    uint32_t max_inflight;  /* pipelined requests / concurrent h2 streams per connection */
    const char *data_dir;   /* borrowed: disk space in /metrics and /readyz */
    const char *version;    /* borrowed: build_info */
    bool ui;                /* serve the web console's files under /ui/ */
    uint32_t native_port;   /* the bound ports, for the console's broker list */
    uint32_t http_port;
};

/* Room for the answer counters of every route (call.h's enum; checked in
 * server.c). */
#define SL_API_ROUTES_MAX 12u

struct sl_member;

struct sl_api {
    struct sl_api_config cfg;
    struct sl_engine *engine; /* borrowed */
    struct sl_net *net;       /* borrowed: connection counts */
    struct sl_ring *ring;     /* borrowed: the loop's (a scrape yields between slices) */
    uint64_t started_ms;      /* wall clock */
    /* Authentication and ACLs: *auth is the current auth file's rules (the
     * broker's, swapped on SIGHUP), or auth is NULL when `auth` is off. */
    struct sl_auth *const *auth;
    /* answers by route (enum sl_api_route) and status class, for /metrics */
    uint64_t answers[SL_API_ROUTES_MAX][6];
    struct sl_latency latency[SL_API_ROUTES_MAX]; /* by route: request to answer */
    struct sl_history *history;   /* the console's last hour (owned by main); may be NULL */
    struct sl_push *push;         /* push targets, for /metrics, EventBridge and the console
                                   (borrowed); NULL when off */
    struct sl_sns *sns;           /* the SNS API's subscriptions (owned by main); may be NULL */
    struct sl_eb *eventbridge;    /* the EventBridge API's state (eb.c; made at first use) */
    const struct sl_member *member; /* cluster membership (borrowed); NULL: a single broker */
    const struct sl_replicas *replicas; /* this broker's replicas (borrowed); NULL: single */
};

/* From the loop's tick (monotonic ms): the console's samples. */
void sl_api_tick(struct sl_api *api, uint64_t now_ms);

/* An AWS API call from inside the broker: the native protocol's ApiCall (the CLI's
 * `rule` and `replay` commands). It runs as the same call on the HTTP listener would, as
 * `principal` (authenticated by the caller on connection `via`, held by the caller until
 * `done`, named in the log; "" with auth off) with that API's per-action
 * ACLs but no SigV4, and `done` gets the status, content type and body it would have sent
 * (borrowed for the callback), once, on the main loop, possibly before this returns.
 * Services: "events" (EventBridge; `action` as after "AWSEvents."). Errors (then `done`
 * never runs): SL_ENOTFOUND (no such service: `why`), SL_ETOOBIG (body over
 * http_body_bytes_max), SL_ENOMEM. */
typedef void (*sl_api_internal_done)(void *ctx, int status, const char *content_type,
                                     const void *body, size_t len);
struct sl_conn;
int sl_api_internal_call(struct sl_api *api, struct sl_conn *via, const char *principal,
                         const char *service,
                         const char *action, const void *body, size_t len,
                         sl_api_internal_done done, void *ctx, char *why, size_t why_len);

/* The listener's protocol; its ctx is a struct sl_api. */
extern const struct sl_proto sl_api_proto;

#endif
