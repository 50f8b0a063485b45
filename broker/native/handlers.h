/* handlers.h - the native protocol's request handlers: protobuf requests in,
 * engine calls, protobuf responses out. One file per request family:
 * dispatch.c (Hello and the switch), h_streams.c, h_data.c (produce,
 * fetch), h_cluster.c (ClusterStatus, Metadata), h_consumer.c (checkpoints,
 * groups, lag), h_group.c (consumer-group membership), h_queue.c, h_push.c
 * (push targets); and the conversions they share (convert.c).
 *
 * Each handler answers its request exactly once (or, for a Produce with
 * ACK_NONE, not at all) and calls sl_conn_request_done exactly once
 * (broker/net). A
 * handler answering later holds the connection (sl_conn_hold) until the
 * engine's callback runs.
 *
 * Threading: the main loop.
 */
#ifndef SL_NATIVE_HANDLERS_H
#define SL_NATIVE_HANDLERS_H

#include "broker/auth/auth.h"
#include "broker/engine/engine.h"
#include "broker/native/reply.h"

#include <stdint.h>

struct sl_push;
struct sl_member;
struct sl_ctrl_run;
struct sl_replicas;
struct sl_pview;
struct sl_native_produce_op;

/* Room in a frame for a response's fields around the batches it carries. */
#define SL_NATIVE_FRAME_SLACK 1024u

struct sl_native_config {
    uint32_t max_frame_bytes; /* larger frames close the connection */
    uint32_t max_inflight;    /* unanswered requests per connection */
};

/* Streams one Metadata request may name (its answer must fit a frame too). */
#define SL_NATIVE_METADATA_STREAMS_MAX 64u

/* Frames before authentication (Hello, Authenticate) are at most this. */
#define SL_NATIVE_PREAUTH_FRAME_BYTES 4096u
#define SL_NATIVE_LOGIN_SLOTS         256u /* addresses tracked for failed logins */

struct sl_native_login {
    char ip[48];
    uint64_t window_start_ms;
    uint32_t failures;
};

/* The HTTP front-end's AWS API calls for ApiCall (the broker sets it to
 * sl_api_internal_call; the native front-end does not include broker/api). */
typedef void (*sl_native_api_done)(void *ctx, int status, const char *content_type,
                                   const void *body, size_t len);
typedef int (*sl_native_api_fn)(void *api, struct sl_conn *via, const char *principal,
                                const char *service,
                                const char *action, const void *body, size_t len,
                                sl_native_api_done done, void *ctx, char *why, size_t why_len);

/* The native front-end: the listener's ctx. */
struct sl_native {
    struct sl_native_config cfg;
    struct sl_engine *engine; /* borrowed */
    struct sl_push *push;     /* borrowed; NULL: push targets are off */
    const struct sl_member *member; /* borrowed; NULL: a single broker (ClusterStatus) */
    const struct sl_ctrl_run *ctrl; /* borrowed; NULL: a single broker (ClusterStatus) */
    /* borrowed; NULL: a single broker (no replication; Metadata answers this broker as
     * every shard's leader) */
    struct sl_replicas *replicas;
    sl_native_api_fn api_call;      /* NULL: no HTTP listener (ApiCall refused) */
    void *api_ctx;
    /* *auth: the rules in force (swapped on SIGHUP); auth NULL: auth off */
    struct sl_auth *const *auth;
    uint8_t fake_key[SL_SCRAM_KEY_BYTES]; /* unknown users' salts (h_auth.c) */
    struct sl_native_login logins[SL_NATIVE_LOGIN_SLOTS];
    struct sl_native_produce_op *produce_free; /* reused produce ops (h_data.c) */
    uint32_t produce_free_n;
};

/* proto_flags of a native connection */
#define SL_NATIVE_HELLO_DONE 1u
#define SL_NATIVE_AUTHED     2u /* its principal is in its session (h_auth.c) */

/* Authentication and authorization (h_auth.c). */
void sl_native_auth_init(struct sl_native *srv);
bool sl_native_authed(const struct sl_native *srv, const struct sl_conn *c);
void sl_native_hello_auth(struct sl_native *srv, struct sl_conn *c,
                          Sluice__V1__HelloResponse *hr);
void sl_native_authenticate(struct sl_native *srv, struct sl_conn *c, const sl_request *req);
/* SL_OK, or SL_EAUTH/SL_EDENIED with the reason in msg. */
int sl_native_authorize(const struct sl_native *srv, const struct sl_conn *c,
                        const sl_request *req, char *msg, size_t cap);
/* The same for one right (SL_ACL_*) on `stream`, without a Request. */
int sl_native_authorize_op(const struct sl_native *srv, const struct sl_conn *c, uint32_t ops,
                           const char *stream, char *msg, size_t cap);
void sl_native_session_free(struct sl_conn *c); /* the listener's proto->free */
/* The connection's authenticated principal ("" before authentication or with auth off). */
const char *sl_native_principal(const struct sl_conn *c);

/* Takes `req` (counted with sl_conn_request_begin). */
void sl_native_dispatch(struct sl_native *srv, struct sl_conn *c, sl_request *req);

/* A native position (NULL: TRIM_HORIZON); an unknown kind maps to a kind
 * the engine refuses (convert.c). */
struct sl_position sl_native_position(const Sluice__V1__Position *p);

/* Families (borrow `req`, except sl_native_produce which takes it). */
void sl_native_create_stream(struct sl_native *srv, struct sl_conn *c, const sl_request *req);
void sl_native_describe_stream(struct sl_native *srv, struct sl_conn *c, const sl_request *req);
void sl_native_list_streams(struct sl_native *srv, struct sl_conn *c, const sl_request *req);
void sl_native_delete_stream(struct sl_native *srv, struct sl_conn *c, const sl_request *req);
void sl_native_reshard_stream(struct sl_native *srv, struct sl_conn *c, const sl_request *req);
void sl_native_produce(struct sl_native *srv, struct sl_conn *c, sl_request *req);
/* The hot path: a Produce parsed in place (pview.h), its batch referenced
 * in the receive buffer, which stays pinned until the engine's callback
 * (h_data.c). Counts the request itself (sl_conn_request_begin); returns
 * false, having done nothing, for a request it leaves to protobuf-c's path
 * (a stream name longer than any stream's). Called inside proto->recv. */
bool sl_native_produce_view(struct sl_native *srv, struct sl_conn *c, const struct sl_pview *v);
/* Frees the reused produce ops (after the listener is gone). */
void sl_native_produce_fini(struct sl_native *srv);
void sl_native_fetch(struct sl_native *srv, struct sl_conn *c, const sl_request *req);
void sl_native_commit(struct sl_native *srv, struct sl_conn *c, const sl_request *req);
void sl_native_get_checkpoints(struct sl_native *srv, struct sl_conn *c, const sl_request *req);
void sl_native_list_groups(struct sl_native *srv, struct sl_conn *c, const sl_request *req);
void sl_native_group_lag(struct sl_native *srv, struct sl_conn *c, const sl_request *req);
void sl_native_queue(struct sl_native *srv, struct sl_conn *c, const sl_request *req);
void sl_native_cluster_status(struct sl_native *srv, struct sl_conn *c, const sl_request *req);
/* Metadata: the brokers and who leads each shard of the streams asked (h_cluster.c). */
void sl_native_metadata(struct sl_native *srv, struct sl_conn *c, const sl_request *req);
void sl_native_reassign_shard(struct sl_native *srv, struct sl_conn *c, const sl_request *req);
/* Cluster mode's replication (h_repl.c): a follower's Replicate. */
void sl_native_replicate(struct sl_native *srv, struct sl_conn *c, const sl_request *req);
void sl_native_api_call(struct sl_native *srv, struct sl_conn *c, const sl_request *req);
/* SetTarget, RemoveTarget, ListTargets (h_push.c). */
void sl_native_push(struct sl_native *srv, struct sl_conn *c, const sl_request *req);
/* Stream consumer groups' membership (h_group.c). */
void sl_native_join_group(struct sl_native *srv, struct sl_conn *c, const sl_request *req);
void sl_native_heartbeat(struct sl_native *srv, struct sl_conn *c, const sl_request *req);
void sl_native_leave_group(struct sl_native *srv, struct sl_conn *c, const sl_request *req);
void sl_native_describe_group(struct sl_native *srv, struct sl_conn *c, const sl_request *req);
void sl_native_reset_group(struct sl_native *srv, struct sl_conn *c, const sl_request *req);

#endif
