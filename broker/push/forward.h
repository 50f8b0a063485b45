/* forward.h - push targets that append to a stream of this broker instead
 * of POSTing: url "stream:NAME" (#17).
 *
 * This is how an SNS subscription of protocol sqs, or an EventBridge rule
 * whose target is an SQS queue, a Kinesis stream or an SNS topic, reaches
 * its destination: the source group's records are leased as for any push
 * target, appended to the destination durably (ack = durable), and only then
 * acknowledged. A broker killed between the two appends them again after
 * the lease runs out: delivery is at least once, as SNS and EventBridge are.
 *
 * What a forwarded record holds, by the target's format:
 *   SLUICE       the record as it is: key, value, attributes (SNS
 *                RawMessageDelivery; SQS message attributes stay "sqs:N")
 *   SNS          value = the SNS Notification JSON (payload.h
 *                sl_push_payload_message), the key kept, no attributes
 *   EVENTBRIDGE  value = the event envelope, the key kept, no attributes
 * Routing: a keyed record goes to the destination shard its key hashes to
 * (the engine's rule, so per-key order holds in the destination); the
 * unkeyed records of one batch go together to one shard, the next batch to
 * the next shard. Per destination shard the records keep their order and
 * are cut into batches of at most the engine's batch_bytes_max.
 *
 * Threading: the main loop.
 */
#ifndef SL_PUSH_FORWARD_H
#define SL_PUSH_FORWARD_H

#include "broker/push/payload.h"
#include "broker/push/transform.h"

#include <stdbool.h>
#include <stdint.h>

#define SL_PUSH_FORWARD_PREFIX "stream:"

struct sl_engine;

/* The stream a target url forwards to, or NULL when `url` is not a
 * "stream:NAME" url. */
const char *sl_push_forward_stream(const char *url);

/* The formats a forward target may use (SLUICE, SNS, EVENTBRIDGE). */
bool sl_push_forward_format_ok(enum sl_push_format f);

/* Runs once every append has answered: `err` and `why` are the first
 * failure (SL_OK and "" when none); failed[i] is set for each record that
 * was not stored, *nfailed of them. Borrowed for the call. */
typedef void (*sl_push_forward_cb)(void *ctx, int err, const char *why, uint32_t nfailed);

/* Appends recs[0..n) to stream `dest` (borrowed until the callback, as are
 * recs and src) in format `f`. failed[] (n entries) is written before the
 * callback. `rr` is the caller's round-robin position for unkeyed records.
 * `tf` (borrowed until the callback; NULL: none) transforms each rendered
 * EVENTBRIDGE value (transform.h).
 * The callback runs exactly once, possibly before this returns. */
void sl_push_forward(struct sl_engine *e, enum sl_push_format f,
                     const struct sl_push_transform *tf, const struct sl_push_source *src,
                     const char *dest, const struct sl_push_record *recs, uint32_t n,
                     bool *failed, uint32_t *rr, sl_push_forward_cb cb, void *ctx);

#endif
