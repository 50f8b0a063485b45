/* conn.h - the client: request/response over pipelined TCP connections to the brokers, one
 * per broker (link.h), and in a cluster the routing of a shard's requests to its leader.
 *
 * Internal to libsluice (producer.c, consumer.c, admin.c use it). Calls without a shard go
 * to the broker the client is connected to (the first of the bootstrap list that answered,
 * or the next when it is gone); sl_client_*_shard calls go to the shard's leader as the
 * last Metadata answer said (route.h), or there when it is not known. The request's id is
 * assigned here. Ownership: `req` is borrowed for the call (packed before it returns);
 * a response handed to a caller or callback is owned by it (sl_response_free).
 */
#ifndef SL_CLIENT_CONN_H
#define SL_CLIENT_CONN_H

#include "client/sluice.h"
#include "common/error.h"
#include "proto/frame.h"

#include <stdbool.h>
#include <stdint.h>

struct sl_link;

#define SL_CLIENT_INFLIGHT_DEFAULT 64u /* requests in flight when the broker does not say */

/* Completion of an asynchronous request. err is SL_OK or the failure (a broker error code,
 * SL_ECLOSED when the connection broke, SL_EAGAIN on timeout); `msg` (borrowed for the call)
 * says why; `resp` (owned by the callback, may be NULL on local errors) is the response.
 * Runs on the I/O thread, or on a thread sending into the client when its write broke the
 * connection; it must not block. */
typedef void (*sl_call_cb)(void *ctx, int err, const char *msg, sl_response *resp);

/* Sends `req` and waits for its response. On SL_OK *out (owned) is the response; on an
 * error *out is NULL and the message is in sluice_last_error(). `extra_timeout_ms` is added
 * to the client's request timeout (a fetch's long-poll). Errors: the response's code,
 * SL_ECLOSED, SL_EAGAIN (timeout), SL_ETOOBIG (request over the frame limit), SL_EPROTO
 * (a response of the wrong kind). Thread-safe. */
int sl_client_call(sluice_client *c, sl_request *req, uint32_t extra_timeout_ms, sl_response **out);

/* sl_client_call, except that on a broker error *out (owned, may be NULL) is the response
 * too: for the errors whose body says more (SHARD_CLOSED's children). */
int sl_client_call_keep(sluice_client *c, sl_request *req, uint32_t extra_timeout_ms,
                        sl_response **out);

/* sl_client_call, then checks the response carries body `want` (or no body when `empty_ok`:
 * protobuf cannot tell an empty body message from an unset one). */
int sl_client_call_want(sluice_client *c, sl_request *req, uint32_t extra_timeout_ms,
                        Sluice__V1__Response__BodyCase want, int empty_ok, sl_response **out);

/* The body check of sl_client_call_want on the outcome `rc`, *out of any call. */
int sl_client_want_body(int rc, sl_response **out, Sluice__V1__Response__BodyCase want,
                        int empty_ok);

/* sl_client_call to the leader of shard `shard` of `stream` (as sl_client_call_async_shard
 * routes). */
int sl_client_call_shard(sluice_client *c, const char *stream, uint32_t shard, sl_request *req,
                         uint32_t extra_timeout_ms, sl_response **out);

/* Sends `req`; `cb` runs exactly once with the outcome, unless this returns an error (then
 * it never runs). May block for a reconnect or an in-flight slot. Errors: SL_ECLOSED
 * (cannot connect, or the client is closing), SL_EAGAIN (no in-flight slot before the
 * timeout), SL_ETOOBIG, SL_ENOMEM. Thread-safe. */
int sl_client_call_async(sluice_client *c, sl_request *req, uint32_t extra_timeout_ms,
                         sl_call_cb cb, void *ctx);

/* sl_client_call_async on one connection: *gen 0 = any, else the connection generation the
 * call must go out on (SL_ECLOSED, nothing sent, when that connection is gone); on success
 * *gen is the generation it went on. A producer pins a shard's batches in flight to one
 * connection: the broker keeps a connection's requests in order, while a batch sent on a
 * new connection could overtake one still failing on the old (lost as a "duplicate"). */
int sl_client_call_async_on(sluice_client *c, sl_request *req, uint32_t extra_timeout_ms,
                            sl_call_cb cb, void *ctx, uint64_t *gen);

/* Sends a request that gets no response (Produce with ACK_NONE). Errors as above. */
int sl_client_send_noreply(sluice_client *c, sl_request *req);

/* sl_client_call_async_on to the leader of shard `shard` of `stream` (borrowed) as the
 * routing table has it; the connection it needs is opened when first used. Where the table
 * has no leader for it (a single broker, an unknown stream, no leader now) it goes where
 * calls without a shard go. Errors: as sl_client_call_async. */
int sl_client_call_async_shard(sluice_client *c, const char *stream, uint32_t shard,
                               sl_request *req, uint32_t extra_timeout_ms, sl_call_cb cb, void *ctx,
                               uint64_t *gen);

/* sl_client_send_noreply to the shard's leader (as above). */
int sl_client_send_noreply_shard(sluice_client *c, const char *stream, uint32_t shard,
                                 sl_request *req);

/* sl_client_call to the home of consumer group `group` on `stream`: on a cluster stream the
 * leader of the shard that keeps the group's state (common/partition.h
 * sl_partition_group_shard), which coordinates its members and commits its checkpoints;
 * elsewhere where calls without a shard go. A NOT_LEADER answer (the shard's leader moved),
 * or in a cluster a leader that cannot be reached, learns the leaders again and retries,
 * for up to SL_CLIENT_GROUP_RETRY_MS. Errors: as
 * sl_client_call. Blocks: not for callbacks. */
int sl_client_call_group(sluice_client *c, const char *stream, const char *group, sl_request *req,
                         uint32_t extra_timeout_ms, sl_response **out);
#define SL_CLIENT_GROUP_RETRY_MS 15000u /* a failover takes a session timeout or two */
/* sl_client_call_group without the retries: for a best-effort call (a member leaving, which
 * must not hold up the consumer's free through a failover; its session ends anyway). */
int sl_client_call_group_once(sluice_client *c, const char *stream, const char *group,
                              sl_request *req, sl_response **out);

/* sl_client_call; *via (borrowed, valid for the client's life) is the connection it went
 * on: what a Metadata answer's `self` refers to. */
int sl_client_call_via(sluice_client *c, sl_request *req, sl_response **out, struct sl_link **via);

/* Takes a Metadata answer that came on `via` into the routing table. Errors: SL_EPROTO (an
 * answer that does not hold together; error message set), SL_ENOMEM. */
int sl_client_route_learn(sluice_client *c, struct sl_link *via, const struct sluice_metadata *m);

/* Learns who leads `stream`'s shards again (one Metadata), at most once per
 * SL_CLIENT_REFRESH_MS, backing off to SL_CLIENT_REFRESH_MAX_MS while it fails; `first`
 * (a producer or consumer starting): only when the stream is not known yet, and then at
 * once. Blocks: not for callbacks. Returns SL_OK (learned, or the broker predates
 * Metadata: no routing), SL_EAGAIN (too soon after the last: try later) or the Metadata
 * call's error. */
int sl_client_route_refresh(sluice_client *c, const char *stream, bool first);

/* Whether the last Metadata answer came from a broker in a cluster (a producer then treats
 * a broken connection as a possible leader change). Lock-free. */
bool sl_client_route_cluster(const sluice_client *c);
/* The leader of shard `shard` of `stream` as the routing table has it: SL_OK with *node, or
 * SL_ENOTFOUND (not learned, none now, or not a cluster). */
int sl_client_shard_leader(sluice_client *c, const char *stream, uint32_t shard, int32_t *node);

/* The leader of `stream`'s shard as the routing table names it now: *node (SL_ROUTE_NONE when
 * it names none, or routing is off) and *epoch (0 then). Takes the client's lock briefly. */
void sl_client_route_leader(sluice_client *c, const char *stream, uint32_t shard, int32_t *node,
                            int32_t *epoch);

#define SL_CLIENT_REFRESH_MS     100u  /* Metadata refreshes at most this often */
#define SL_CLIENT_REFRESH_MAX_MS 5000u /* ... backing off to this while they fail */

/* The broker's frame limit (from HelloResponse) minus room for the envelope. */
uint32_t sl_client_max_payload(const sluice_client *c);

/* Sets this thread's sluice_last_error() message (printf format). */
__attribute__((format(printf, 1, 2))) void sl_client_set_error(const char *fmt, ...);

/* Owned copies of `n` names (freed with sluice_groups_free) into *out and
 * *count. Errors: SL_ENOMEM (error message set). admin.c. */
int sl_client_names_dup(char *const *names, size_t n, char ***out, size_t *count);

#endif
