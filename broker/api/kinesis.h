/* kinesis.h - the Amazon Kinesis Data Streams API (X-Amz-Target:
 * Kinesis_20131202.<Op>, application/x-amz-json-1.1 and
 * application/x-amz-cbor-1.1) over the engines. */
#ifndef SL_API_KINESIS_H
#define SL_API_KINESIS_H

#include "broker/api/call.h"

/* Answers `call`; `op` is the part of X-Amz-Target after the dot. */
void sl_kinesis_handle(struct sl_api_call *call, const char *op);

#endif
