// handler.mjs - an SQS-triggered Lambda handler as written for Lambda (nothing
// Sluice-specific): processes each message of the SQSEvent and reports the ones it could
// not process as batch item failures, so only those come back (ReportBatchItemFailures).
export async function handler(event, context) {
  const batchItemFailures = [];
  for (const record of event.Records) {
    try {
      await processMessage(record);
    } catch (err) {
      console.error(`${context?.awsRequestId}: ${record.messageId}: ${err.message}`);
      batchItemFailures.push({ itemIdentifier: record.messageId });
    }
  }
  return { batchItemFailures };
}

async function processMessage(record) {
  if (record.body.includes('fail')) throw new Error('cannot process this body');
  console.log(`processed ${record.messageId} (receive ${record.attributes.ApproximateReceiveCount})`);
}
