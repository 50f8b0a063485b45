/* kinesis.c - the Kinesis API (see kinesis.h). No operation is served yet:
 * every one is answered as AWS answers an operation it does not know. */
#include "broker/api/kinesis.h"

#include <stdio.h>

void sl_kinesis_handle(struct sl_api_call *call, const char *op)
{
    char body[256];
    int n = snprintf(body, sizeof(body),
                     "{\"__type\":\"UnknownOperationException\",\"message\":\"%.64s is not served "
                     "by this broker\"}",
                     op);
    sl_api_reply(call, 400, "application/x-amz-json-1.1", body, (size_t)n);
}
