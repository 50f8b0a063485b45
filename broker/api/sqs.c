/* sqs.c - the SQS API (see sqs.h). No operation is served yet: every one is
 * answered as AWS answers an action it does not know. */
#include "broker/api/sqs.h"

#include <stdio.h>

void sl_sqs_handle(struct sl_api_call *call, const char *op)
{
    char body[256];
    int n = snprintf(body, sizeof(body),
                     "{\"__type\":\"com.amazonaws.sqs#InvalidAction\",\"message\":\"%.64s is not "
                     "served by this broker\"}",
                     op != NULL ? op : "the action");
    sl_api_reply(call, 400, "application/x-amz-json-1.0", body, (size_t)n);
}
