"""handler.py - an SQS-triggered Lambda handler as written for Lambda (nothing
Sluice-specific): processes each message of the SQS event and reports the ones it
could not process as batch item failures, so only those come back."""


def process_message(record):
    if "fail" in record["body"]:
        raise ValueError("cannot process this body")
    print("processed %s (receive %s)" % (record["messageId"],
                                          record["attributes"]["ApproximateReceiveCount"]))


def handler(event, context):
    batch_item_failures = []
    for record in event["Records"]:
        try:
            process_message(record)
        except Exception as e:
            print("%s: %s: %s" % (context.aws_request_id, record["messageId"], e))
            batch_item_failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": batch_item_failures}
