/* msgid.h - the SQS-style message id of a record: one definition for the
 * SQS API's MessageId (broker/api/sqs_messages.c) and the push payloads'
 * record ids (broker/push/payload.c), so a message reads the same through
 * ReceiveMessage and through a push.
 *
 * Threading: pure; any thread.
 */
#ifndef SL_MSGID_H
#define SL_MSGID_H

#include <stdint.h>

/* "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx": 36 lowercase hex digits and dashes. */
#define SL_MSGID_LEN 36u

/* Record attribute "sqs:N" is SQS message attribute N; its value is the data
 * type, a NUL byte, then the value's bytes (written by the SQS API). */
#define SL_SQS_ATTR_PREFIX "sqs:"

/* Writes the id of (stream, shard, seq) and a NUL into out: XXH3-32 of the
 * stream name, the shard's low 16 bits, then all 64 bits of seq (4 + 12 +
 * 48). Stable across restarts and receives. */
void sl_msgid_format(const char *stream, uint32_t shard, uint64_t seq, char out[SL_MSGID_LEN + 1]);

#endif
