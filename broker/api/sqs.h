/* sqs.h - the Amazon SQS API over streams and queue groups: the JSON
 * protocol (X-Amz-Target: AmazonSQS.<Op>, application/x-amz-json-1.0) and
 * the Query protocol (form-encoded Action=..., XML answers). */
#ifndef SL_API_SQS_H
#define SL_API_SQS_H

#include "broker/api/call.h"

/* Answers `call`; `op` is the part of X-Amz-Target after the dot, or NULL
 * for a Query-protocol request (the action is in the form body). */
void sl_sqs_handle(struct sl_api_call *call, const char *op);

#endif
