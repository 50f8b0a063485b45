/* sns.h - the Amazon SNS API over streams, queue groups and push targets:
 * the Query protocol (form-encoded Action=<Op>&Version=2010-03-31, XML
 * answers), which is all that awscli and the AWS SDKs speak to SNS.
 *
 * Mapping (docs/ARCHITECTURE.md, the HTTP front-end; README "SNS"):
 *  - topic T = stream T (SNS_TOPIC_SHARDS shards) with the property
 *    sns.CreatedTimestamp; TopicArn arn:aws:sns:us-east-1:000000000000:T;
 *    topic attributes are stream properties sns.<Name>;
 *  - subscription = a queue group named by its id (a UUID) on the topic's
 *    stream, starting at the log's end, filtered by the FilterPolicy
 *    (attributes or body scope), dead-lettering to the RedrivePolicy's
 *    queue, with a push target: sqs -> url stream:QUEUE in format sns (the
 *    Notification JSON) or sluice (RawMessageDelivery); http/https -> the
 *    endpoint in format sns-http; SubscriptionArn = TopicArn:<id>;
 *  - what the engine does not hold is in the subscriptions file (sns_store.h).
 *
 * Threading: the main loop.
 */
#ifndef SL_API_SNS_H
#define SL_API_SNS_H

#include "broker/api/call.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sl_sns;

/* Loads <data_dir>/sns/subscriptions. Errors: those of sl_sns_store_open
 * (`why` names the file and the fix). */
int sl_sns_open(const char *data_dir, struct sl_sns **out, char *why, size_t why_len);
void sl_sns_close(struct sl_sns *s); /* NULL-safe */

/* From the loop's tick: unconfirmed subscriptions expire (3 days, as SNS),
 * groups of changed or removed subscriptions are re-created or deleted. */
void sl_sns_tick(struct sl_api *api, uint64_t now_ms);

/* Whether `req` (no X-Amz-Target) is an SNS request: SigV4 signed for
 * service sns, or a form (POST body or GET query) whose Action is SNS's. */
bool sl_sns_claims(const struct sl_http_request *req);

/* Answers `call`. */
void sl_sns_handle(struct sl_api_call *call);

#endif
