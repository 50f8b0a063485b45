/* payload.h - the body a push target receives for a batch of leased records,
 * in the shape its handler expects, and what the handler's answer says
 * failed.
 *
 * Formats (enum sl_push_format):
 *   SLUICE       {"stream", "group", "records": [{"id", "shard", "seq",
 *                "time_ms", "produced_ms", "delivery_count", "key" (null
 *                when none; + "key_encoding": "utf8"|"base64"),
 *                "value" (+ "value_encoding": "utf8"|"base64"),
 *                "attributes": {name: text}, "attributes_base64": {name:
 *                base64} (values that are not UTF-8; only when any)}]}
 *   SQS          AWS Lambda's SQSEvent: {"Records": [{"messageId",
 *                "receiptHandle", "body", "attributes":
 *                {"ApproximateReceiveCount", "SentTimestamp",
 *                "ApproximateFirstReceiveTimestamp", "MessageGroupId" (the
 *                key, when set)}, "messageAttributes": {name: {"stringValue",
 *                "dataType": "String"} or {"binaryValue" (base64),
 *                "dataType": "Binary"}}, "md5OfBody", "eventSource":
 *                "aws:sqs", "eventSourceARN", "awsRegion"}]}
 *   KINESIS      KinesisStreamEvent: {"Records": [{"kinesis":
 *                {"kinesisSchemaVersion": "1.0", "partitionKey",
 *                "sequenceNumber", "data" (base64),
 *                "approximateArrivalTimestamp" (seconds, fractional)},
 *                "eventSource": "aws:kinesis", "eventVersion": "1.0",
 *                "eventID": "shardId-...:seq", "eventName":
 *                "aws:kinesis:record", "invokeIdentityArn"
 *                (arn:aws:iam::<account>:role/sluice-push), "awsRegion",
 *                "eventSourceARN"}]}
 *   SNS          SNSEvent: {"Records": [{"EventSource": "aws:sns",
 *                "EventVersion": "1.0", "EventSubscriptionArn", "Sns":
 *                {"Type": "Notification", "MessageId", "TopicArn",
 *                "Subject" (attribute sluice.subject or null), "Message",
 *                "Timestamp" (ISO 8601), "SignatureVersion": "1",
 *                "Signature": "", "SigningCertUrl": "", "UnsubscribeUrl": "",
 *                "MessageAttributes": {name: {"Type": "String"|"Binary",
 *                "Value"}}}}]}; EventSubscriptionArn = TopicArn:<group>
 *   EVENTBRIDGE  one EventBridge event per POST (batch size 1 is enforced
 *                by the target), the record's value when it is already an
 *                event envelope (a JSON object with "detail-type" and
 *                "source"), else {"version": "0", "id", "detail-type":
 *                "Sluice Record", "source": "sluice.<stream>", "account",
 *                "time" (whole seconds, as EventBridge's), "region",
 *                "resources": [], "detail": value as JSON, or {"data":
 *                base64} when it is not JSON}
 *   SNS_HTTP     one SNS notification per POST (batch size 1 is enforced by
 *                the target), as SNS delivers to an HTTP endpoint: the body
 *                is sl_push_payload_message's SNS JSON, sent as text/plain
 *                with the x-amz-sns-message-type, -message-id, -topic-arn
 *                and -subscription-arn headers (sl_push_payload_headers);
 *                any 2xx delivers it (the answer's body is not read)
 *
 * Message attributes (SQS, SNS) are the record's attributes: "sqs:N" (as
 * the SQS API stores message attribute N: data type, NUL, value) shows as N
 * with its data type; others as String, or Binary when the value is not
 * UTF-8. Attributes whose names are not UTF-8 or hold a NUL byte are left
 * out everywhere (no JSON reader in C holds a NUL in an object key).
 *
 * Identifiers: a record's id is the SQS API's MessageId for (stream, shard,
 * seq) (broker/msgid.h), so a message reads the same through SQS
 * ReceiveMessage and through a push; Kinesis sequence numbers are the
 * decimal seq and shard ids "shardId-%012u", as the Kinesis API answers.
 * Times are the append time (timestamp_ms); SentTimestamp is its decimal
 * milliseconds, as SQS ReceiveMessage answers it.
 *
 * Threading: pure functions; any thread.
 */
#ifndef SL_PUSH_PAYLOAD_H
#define SL_PUSH_PAYLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sl_attr;

enum sl_push_format {
    SL_PUSH_FORMAT_SLUICE = 0,
    SL_PUSH_FORMAT_SQS = 1,
    SL_PUSH_FORMAT_KINESIS = 2,
    SL_PUSH_FORMAT_SNS = 3,
    SL_PUSH_FORMAT_EVENTBRIDGE = 4,
    SL_PUSH_FORMAT_SNS_HTTP = 5,
};
#define SL_PUSH_FORMAT_COUNT 6u

/* "sluice", "sqs", "kinesis", "sns", "eventbridge", "sns-http"; NULL for an
 * unknown value. */
const char *sl_push_format_name(enum sl_push_format f);
/* The format named `name`; false when none is. */
bool sl_push_format_parse(const char *name, enum sl_push_format *out);

/* One leased record (everything borrowed for the call). */
struct sl_push_record {
    uint32_t shard;
    uint64_t seq;
    uint64_t timestamp_ms; /* appended */
    uint64_t produced_ms;  /* the producer's timestamp */
    uint32_t delivery_count;
    const char *receipt; /* the lease; SQS receiptHandle */
    const uint8_t *key;
    uint32_t key_len;
    const uint8_t *value;
    uint32_t value_len;
    const struct sl_attr *attrs;
    uint32_t attr_count;
};

/* Where the batch comes from (borrowed). ARNs are built as
 * arn:aws:<service>:<region>:<account>:<stream> (sqs, kinesis: ...:stream/<stream>,
 * sns). */
struct sl_push_source {
    const char *stream;
    const char *group;
    const char *region;  /* "sluice" when NULL */
    const char *account; /* "000000000000" when NULL */
    const char *replay;  /* EVENTBRIDGE: the replay delivering (its "replay-name"); NULL: live */
};

/* A record's id as a handler sees and answers it: the decimal seq for
 * KINESIS, else the SQS-style message id of (stream, shard, seq). */
#define SL_PUSH_ID_MAX 37u /* SL_MSGID_LEN + NUL; a decimal u64 is shorter */
void sl_push_record_id(enum sl_push_format f, const char *stream, const struct sl_push_record *r,
                       char out[SL_PUSH_ID_MAX]);

/* Renders the body into *out (malloc'd, the caller frees it; *out_len bytes,
 * NUL-terminated after them). Keys and values that are not valid UTF-8 are
 * sent base64 (SLUICE: with "key_encoding" / "value_encoding": "base64"; SQS
 * and SNS: body and Message as base64 text with the message attribute
 * "sluice.body_encoding" = "base64"; a key as base64 text in MessageGroupId
 * and partitionKey, which is "" without a key). Attributes whose names start
 * "sluice." stay out of messageAttributes (except sluice.subject as SNS
 * Subject). Errors: SL_EINVAL (n == 0, n > 1 for EVENTBRIDGE or SNS_HTTP, an unknown
 * format, a name of src that is not UTF-8, an SQS record without a UTF-8
 * receipt), SL_ENOMEM. SNS_HTTP renders as sl_push_payload_message (SNS). */
int sl_push_payload_render(enum sl_push_format f, const struct sl_push_source *src,
                           const struct sl_push_record *recs, uint32_t n, char **out,
                           size_t *out_len);

/* One record as a message of its own, for a target that forwards records
 * into a stream (forward.h) rather than POSTing a batch: SNS renders the SNS
 * Notification JSON as SNS delivers it to an SQS queue or an HTTP endpoint
 * (the Sns object of SNSEvent, with the URL fields spelled SigningCertURL
 * and UnsubscribeURL); EVENTBRIDGE renders the event as that format's POST
 * body. *out is malloc'd and NUL-terminated after *out_len bytes. Errors:
 * SL_EINVAL (another format, a name of src that is not UTF-8), SL_ENOMEM. */
int sl_push_payload_message(enum sl_push_format f, const struct sl_push_source *src,
                            const struct sl_push_record *r, char **out, size_t *out_len);

/* The request headers a format adds to its POST of record `r` ("Name:
 * value" lines, each ended by '\n', replacing a default header of the same
 * name), into *out (malloc'd; NULL when the format adds none). Errors:
 * SL_ENOMEM. */
int sl_push_payload_headers(enum sl_push_format f, const struct sl_push_source *src,
                            const struct sl_push_record *r, char **out);

/* Reads a 2xx answer's body for Lambda's partial batch response (SNS_HTTP
 * reads none: any 2xx delivers),
 * {"batchItemFailures": [{"itemIdentifier": ID}, ...]}, where ID is the
 * SQS messageId, the Kinesis sequenceNumber, the SNS MessageId or the
 * SLUICE or EVENTBRIDGE id (sl_push_record_id). Sets failed[i] for each
 * record named (others false; an id naming several records, e.g. one seq
 * in two shards, names them all) and *nfailed (records, not entries). An
 * empty, non-JSON or differently shaped body, or an empty or null list,
 * means every record succeeded. An identifier naming no record of the batch
 * fails the whole batch (Lambda's rule: the answer cannot be trusted), as
 * does an itemIdentifier that is missing, null, empty or not a string.
 * Returns SL_OK, SL_EINVAL for a batch the answer fails as a whole, or
 * SL_ENOMEM (also the whole batch: redelivery is safe); both set every
 * failed[i]. */
int sl_push_response_failures(enum sl_push_format f, const struct sl_push_source *src,
                              const struct sl_push_record *recs, uint32_t n, const char *body,
                              size_t len, bool *failed, uint32_t *nfailed);

#endif
