// sqs.test.mjs - the SQS API of the real sluiced, driven by unchanged client
// code: the AWS SDK v3 (@aws-sdk/client-sqs, JSON protocol; default handler
// and NodeHttpHandler), Debian's awscli 2.9 (/usr/bin/aws, Query protocol)
// and python3-boto3 1.26 (Query protocol), plus raw requests for malformed
// bodies.
// Covers: the seed's web-app flow (send returns at once; a worker receives
// with a long poll and deletes; nothing comes back), batches of 10 received
// exactly once, message attributes and their MD5 (checked here too, against
// an independent computation), visibility expiry -> redelivery with
// ApproximateReceiveCount 2, ChangeMessageVisibility, long polling (a
// message arriving mid-wait; an empty wait lasting WaitTimeSeconds),
// DelaySeconds, FIFO order per MessageGroupId with de-dup, a dead-letter
// queue through RedrivePolicy (at creation, and set later while empty) and
// back with `sluice queue redrive`, PurgeQueue, GetQueueAttributes counts,
// attributes across a restart, and the errors (unknown queue, forged
// receipt, 11 entries, > 256 KiB, malformed JSON and form, operations not
// served); the Query protocol's batches (boto3) and queue-by-path (raw).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  SQSClient, CreateQueueCommand, GetQueueUrlCommand, ListQueuesCommand, DeleteQueueCommand,
  GetQueueAttributesCommand, SetQueueAttributesCommand, SendMessageCommand,
  SendMessageBatchCommand, ReceiveMessageCommand, DeleteMessageCommand,
  DeleteMessageBatchCommand, ChangeMessageVisibilityCommand, ChangeMessageVisibilityBatchCommand,
  PurgeQueueCommand,
} from '@aws-sdk/client-sqs';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { startBroker } from './harness.mjs';

const b = await startBroker();
after(() => b.stop());

const creds = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' };
function client(handler) {
  return new SQSClient({ endpoint: b.endpoint, region: 'us-east-1', credentials: creds,
    ...(handler ? { requestHandler: handler } : {}) });
}
const sqs = client();
const sqsNode = client(new NodeHttpHandler());

async function createQueue(name, Attributes = undefined, c = sqs) {
  const r = await c.send(new CreateQueueCommand({ QueueName: name, Attributes }));
  assert.match(r.QueueUrl, new RegExp(`/000000000000/${name.replace('.', '\\.')}$`));
  return r.QueueUrl;
}

async function receive(QueueUrl, extra = {}, c = sqs) {
  const r = await c.send(new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 10,
    WaitTimeSeconds: 0, MessageSystemAttributeNames: ['All'], MessageAttributeNames: ['All'],
    ...extra }));
  return r.Messages ?? [];
}

async function attrs(QueueUrl, names = ['All']) {
  const r = await sqs.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: names }));
  return r.Attributes ?? {};
}

async function rejects(promise, name) {
  await assert.rejects(promise, (e) => {
    assert.equal(e.name, name, `${e.name}: ${e.message}`);
    assert.equal(e.$metadata?.httpStatusCode, 400);
    return true;
  });
}

// MD5OfMessageAttributes as SQS defines it, computed independently.
function md5Attrs(ma) {
  const parts = [];
  const field = (buf) => { const l = Buffer.alloc(4); l.writeUInt32BE(buf.length); parts.push(l, buf); };
  for (const name of Object.keys(ma).sort()) {
    const a = ma[name];
    field(Buffer.from(name));
    field(Buffer.from(a.DataType));
    const bin = a.BinaryValue !== undefined;
    parts.push(Buffer.from([bin ? 2 : 1]));
    field(bin ? Buffer.from(a.BinaryValue) : Buffer.from(a.StringValue));
  }
  return createHash('md5').update(Buffer.concat(parts)).digest('hex');
}
const md5 = (s) => createHash('md5').update(s).digest('hex');

for (const [label, c] of [['default handler', sqs], ['NodeHttpHandler', sqsNode]]) {
  test(`web-app flow (${label}): send returns at once, a worker receives and deletes`, async () => {
    const url = await createQueue(`webapp-${label.replace(/\W/g, '')}`, undefined, c);
    const t0 = Date.now();
    const sent = await c.send(new SendMessageCommand({ QueueUrl: url,
      MessageBody: 'Hello from Next.js!' }));
    assert.ok(Date.now() - t0 < 1000, 'the send answers at once');
    assert.match(sent.MessageId, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    assert.equal(sent.MD5OfMessageBody, md5('Hello from Next.js!'));
    const r = await c.send(new ReceiveMessageCommand({ QueueUrl: url, WaitTimeSeconds: 5 }));
    assert.equal(r.Messages.length, 1);
    assert.equal(r.Messages[0].Body, 'Hello from Next.js!');
    assert.equal(r.Messages[0].MessageId, sent.MessageId);
    await c.send(new DeleteMessageCommand({ QueueUrl: url,
      ReceiptHandle: r.Messages[0].ReceiptHandle }));
    const again = await c.send(new ReceiveMessageCommand({ QueueUrl: url, WaitTimeSeconds: 1,
      VisibilityTimeout: 0 }));
    assert.equal(again.Messages, undefined, 'nothing is redelivered after the delete');
    const a = await attrs(url);
    assert.equal(a.ApproximateNumberOfMessages, '0');
    assert.equal(a.ApproximateNumberOfMessagesNotVisible, '0');
  });
}

test('queue admin: get-url, list with a prefix, idempotent create, delete', async () => {
  const url = await createQueue('admin-a', { VisibilityTimeout: '45' });
  await createQueue('admin-b');
  assert.equal(await createQueue('admin-a', { VisibilityTimeout: '45' }), url);
  await rejects(sqs.send(new CreateQueueCommand({ QueueName: 'admin-a',
    Attributes: { VisibilityTimeout: '46' } })), 'QueueNameExists');
  const got = await sqs.send(new GetQueueUrlCommand({ QueueName: 'admin-a' }));
  assert.equal(got.QueueUrl, url);
  const l = await sqs.send(new ListQueuesCommand({ QueueNamePrefix: 'admin-' }));
  assert.deepEqual(l.QueueUrls.map((u) => u.split('/').pop()).sort(), ['admin-a', 'admin-b']);
  await sqs.send(new DeleteQueueCommand({ QueueUrl: url }));
  await rejects(sqs.send(new GetQueueUrlCommand({ QueueName: 'admin-a' })), 'QueueDoesNotExist');
  await rejects(sqs.send(new CreateQueueCommand({ QueueName: 'bad name!' })),
    'InvalidParameterValue');
});

test('SendMessageBatch of 10, all received exactly once, DeleteMessageBatch', async () => {
  const url = await createQueue('batch');
  const Entries = Array.from({ length: 10 }, (_, i) => ({ Id: `e${i}`, MessageBody: `m${i}` }));
  const r = await sqs.send(new SendMessageBatchCommand({ QueueUrl: url, Entries }));
  assert.equal(r.Successful.length, 10);
  assert.equal((r.Failed ?? []).length, 0);
  for (const s of r.Successful) assert.equal(s.MD5OfMessageBody, md5(`m${s.Id.slice(1)}`));
  const seen = new Map();
  for (let i = 0; i < 10 && seen.size < 10; i++) {
    for (const m of await receive(url, { WaitTimeSeconds: 1 })) {
      assert.ok(!seen.has(m.Body), `${m.Body} delivered twice`);
      seen.set(m.Body, m);
    }
  }
  assert.deepEqual([...seen.keys()].sort(), Entries.map((e) => e.MessageBody).sort());
  const msgs = [...seen.values()];
  const cv = await sqs.send(new ChangeMessageVisibilityBatchCommand({ QueueUrl: url, Entries: [
    { Id: 'good', ReceiptHandle: msgs[0].ReceiptHandle, VisibilityTimeout: 60 },
    { Id: 'forged', ReceiptHandle: 'AAAA.0123456789abcdef', VisibilityTimeout: 60 }] }));
  assert.deepEqual(cv.Successful.map((e) => e.Id), ['good']);
  assert.deepEqual(cv.Failed.map((e) => [e.Id, e.Code]), [['forged', 'ReceiptHandleIsInvalid']]);
  const d = await sqs.send(new DeleteMessageBatchCommand({ QueueUrl: url,
    Entries: msgs.map((m, i) => ({ Id: `d${i}`, ReceiptHandle: m.ReceiptHandle })) }));
  assert.equal(d.Successful.length, 10);
  assert.equal((await receive(url, { VisibilityTimeout: 0 })).length, 0);
});

test('message attributes round trip with SQS MD5s (String, Number, Binary)', async () => {
  const url = await createQueue('mattrs');
  const MessageAttributes = {
    zeta: { DataType: 'String', StringValue: 'last' },
    alpha: { DataType: 'Number', StringValue: '42' },
    blob: { DataType: 'Binary', BinaryValue: Uint8Array.from([0, 1, 2, 255]) },
    'custom.x': { DataType: 'String.json', StringValue: '{"k":"v ü"}' },
  };
  const s = await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'with attrs',
    MessageAttributes }));
  assert.equal(s.MD5OfMessageAttributes, md5Attrs(MessageAttributes));
  const [m] = await receive(url);
  assert.equal(m.MD5OfMessageAttributes, md5Attrs(MessageAttributes));
  assert.equal(m.MessageAttributes.alpha.StringValue, '42');
  assert.equal(m.MessageAttributes.alpha.DataType, 'Number');
  assert.deepEqual([...m.MessageAttributes.blob.BinaryValue], [0, 1, 2, 255]);
  assert.equal(m.MessageAttributes['custom.x'].StringValue, '{"k":"v ü"}');
  // published vectors (values other SQS implementations pin against AWS)
  for (const [ma, want] of [
    [{ timestamp: { DataType: 'Number', StringValue: '1493147359900' } },
      '235c5c510d26fb653d073faed50ae77c'],
    [{ ordinal: { DataType: 'Number', StringValue: '1' }, category: { DataType: 'String',
      StringValue: 'test' } }, 'd21ae90c49061e927f57df5f5d72be1f'],
    [{ SellerName: { DataType: 'String', StringValue: 'Example Store' } },
      'cd28f3b68aeee4b2eac9c66f2f694b58']]) {
    const v = await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'v',
      MessageAttributes: ma }));
    assert.equal(v.MD5OfMessageAttributes, want);
  }
  const m2 = await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'x' }));
  assert.equal(m2.MD5OfMessageAttributes, undefined);
});

test('visibility timeout expiry redelivers with ApproximateReceiveCount 2; ChangeMessageVisibility', async () => {
  const url = await createQueue('vis', { VisibilityTimeout: '1' });
  await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'again' }));
  const [m1] = await receive(url);
  assert.equal(m1.Attributes.ApproximateReceiveCount, '1');
  assert.equal((await receive(url)).length, 0, 'invisible while leased');
  await sleep(1500);
  const [m2] = await receive(url, { WaitTimeSeconds: 2 });
  assert.equal(m2.Body, 'again');
  assert.equal(m2.MessageId, m1.MessageId);
  assert.equal(m2.Attributes.ApproximateReceiveCount, '2');
  // extend the lease past the queue's 1 s, then make it visible at once
  await sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: url,
    ReceiptHandle: m2.ReceiptHandle, VisibilityTimeout: 5 }));
  await sleep(1500);
  assert.equal((await receive(url)).length, 0, 'the extended lease holds');
  await sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: url,
    ReceiptHandle: m2.ReceiptHandle, VisibilityTimeout: 0 }));
  const [m3] = await receive(url, { WaitTimeSeconds: 2 });
  assert.equal(m3.Attributes.ApproximateReceiveCount, '3');
  // the stale handle: delete answers OK (as SQS does) and deletes nothing
  await sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: m1.ReceiptHandle }));
  await rejects(sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: url,
    ReceiptHandle: m1.ReceiptHandle, VisibilityTimeout: 10 })), 'MessageNotInflight');
  await sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: m3.ReceiptHandle }));
});

test('long polling: a message sent mid-wait is answered; an empty wait lasts WaitTimeSeconds', async () => {
  const url = await createQueue('longpoll');
  const t0 = Date.now();
  const pending = sqs.send(new ReceiveMessageCommand({ QueueUrl: url, WaitTimeSeconds: 2 }));
  await sleep(500);
  await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'late' }));
  const r = await pending;
  assert.equal(r.Messages?.[0]?.Body, 'late');
  assert.ok(Date.now() - t0 < 1900, `answered on arrival (${Date.now() - t0} ms)`);
  const t1 = Date.now();
  const empty = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url, WaitTimeSeconds: 1 }));
  assert.equal(empty.Messages, undefined);
  const waited = Date.now() - t1;
  assert.ok(waited >= 900 && waited < 3000, `waited ${waited} ms`);
});

test('DelaySeconds holds a message back (per message and per queue)', async () => {
  const url = await createQueue('delay');
  await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'later', DelaySeconds: 2 }));
  await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'now' }));
  const first = await receive(url, { WaitTimeSeconds: 1 });
  assert.deepEqual(first.map((m) => m.Body), ['now']);
  const t0 = Date.now();
  let got = [];
  while (got.length === 0 && Date.now() - t0 < 5000) got = await receive(url, { WaitTimeSeconds: 1 });
  assert.deepEqual(got.map((m) => m.Body), ['later']);
  const q2 = await createQueue('delay-queue', { DelaySeconds: '1' });
  await sqs.send(new SendMessageCommand({ QueueUrl: q2, MessageBody: 'q' }));
  assert.equal((await receive(q2)).length, 0, 'the queue default delays it');
  assert.equal((await receive(q2, { WaitTimeSeconds: 3 }))[0]?.Body, 'q');
});

test('FIFO: order per MessageGroupId, MessageDeduplicationId de-dup', async () => {
  const url = await createQueue('orders.fifo', { FifoQueue: 'true' });
  await rejects(sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'x',
    MessageDeduplicationId: 'x' })), 'MissingParameter');
  for (let i = 0; i < 3; i++) {
    for (const g of ['A', 'B']) {
      await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: `${g}${i}`,
        MessageGroupId: g, MessageDeduplicationId: `${g}-${i}` }));
    }
  }
  const dup = await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'A0',
    MessageGroupId: 'A', MessageDeduplicationId: 'A-0' }));
  assert.ok(dup.MessageId, 'a duplicate send is accepted');
  const order = { A: [], B: [] };
  for (let round = 0; round < 10 && order.A.length + order.B.length < 6; round++) {
    const ms = await receive(url, { WaitTimeSeconds: 1 });
    for (const m of ms) {
      assert.equal(m.Attributes.MessageGroupId, m.Body[0]);
      order[m.Body[0]].push(m.Body);
      await sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: m.ReceiptHandle }));
    }
  }
  assert.deepEqual(order.A, ['A0', 'A1', 'A2']);
  assert.deepEqual(order.B, ['B0', 'B1', 'B2']);
  assert.equal((await receive(url, { WaitTimeSeconds: 1 })).length, 0, 'the duplicate is not delivered');
  const cbd = await createQueue('cbd.fifo', { FifoQueue: 'true', ContentBasedDeduplication: 'true' });
  await sqs.send(new SendMessageCommand({ QueueUrl: cbd, MessageBody: 'same', MessageGroupId: 'g' }));
  await sqs.send(new SendMessageCommand({ QueueUrl: cbd, MessageBody: 'same', MessageGroupId: 'g' }));
  const got = await receive(cbd, { WaitTimeSeconds: 1 });
  assert.equal(got.length, 1);
  assert.equal(got[0].Attributes.MessageDeduplicationId,
    createHash('sha256').update('same').digest('hex'));
});

test('dead-letter queue after maxReceiveCount (RedrivePolicy)', async () => {
  const dlq = await createQueue('work-dlq');
  const dlqArn = (await attrs(dlq, ['QueueArn'])).QueueArn;
  assert.equal(dlqArn, 'arn:aws:sqs:us-east-1:000000000000:work-dlq');
  const RedrivePolicy = JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: 2 });
  const url = await createQueue('work', { VisibilityTimeout: '1', RedrivePolicy });
  assert.equal((await attrs(url, ['RedrivePolicy'])).RedrivePolicy, RedrivePolicy);
  await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'poison' }));
  for (let i = 1; i <= 2; i++) {
    const [m] = await receive(url, { WaitTimeSeconds: 3 });
    assert.equal(m?.Attributes.ApproximateReceiveCount, String(i));
    await sleep(1200);
  }
  assert.equal((await receive(url, { WaitTimeSeconds: 1 })).length, 0, 'moved, not delivered');
  const [d] = await receive(dlq, { WaitTimeSeconds: 3 });
  assert.equal(d?.Body, 'poison');
  // the documented redrive: the CLI moves dead letters back to their queue
  const cli = spawnSync(process.env.SLUICE_CLI_PATH, ['--broker', `127.0.0.1:${b.port}`, 'queue',
    'redrive', 'work', '--group', 'sqs'], { encoding: 'utf8' });
  assert.equal(cli.status, 0, cli.stderr);
  const [back] = await receive(url, { WaitTimeSeconds: 3 });
  assert.equal(back?.Body, 'poison');
  assert.equal(back.Attributes.ApproximateReceiveCount, '1');
  // a RedrivePolicy to a queue that does not exist is refused
  await rejects(sqs.send(new SetQueueAttributesCommand({ QueueUrl: url, Attributes: {
    RedrivePolicy: JSON.stringify({ deadLetterTargetArn: 'arn:aws:sqs:us-east-1:000000000000:nope',
      maxReceiveCount: 3 }) } })), 'InvalidParameterValue');
});

test('RedrivePolicy set later: only while the queue is empty, then dead-letters', async () => {
  const dlq = await createQueue('later-dlq');
  const url = await createQueue('later-src', { VisibilityTimeout: '1' });
  const RedrivePolicy = JSON.stringify({
    deadLetterTargetArn: 'arn:aws:sqs:us-east-1:000000000000:later-dlq', maxReceiveCount: 1 });
  await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'early' }));
  await rejects(sqs.send(new SetQueueAttributesCommand({ QueueUrl: url,
    Attributes: { RedrivePolicy } })), 'InvalidParameterValue');
  await sqs.send(new PurgeQueueCommand({ QueueUrl: url }));
  await sqs.send(new SetQueueAttributesCommand({ QueueUrl: url, Attributes: { RedrivePolicy } }));
  await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'once' }));
  const [m] = await receive(url, { WaitTimeSeconds: 2 });
  assert.equal(m?.Body, 'once');
  await sleep(1200);
  assert.equal((await receive(url, { WaitTimeSeconds: 1 })).length, 0);
  const [d] = await receive(dlq, { WaitTimeSeconds: 3 });
  assert.equal(d?.Body, 'once');
});

test('PurgeQueue and GetQueueAttributes counts', async () => {
  const url = await createQueue('counts');
  await sqs.send(new SendMessageBatchCommand({ QueueUrl: url, Entries: [1, 2, 3, 4, 5].map((i) => ({
    Id: `i${i}`, MessageBody: `c${i}` })) }));
  await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'd', DelaySeconds: 60 }));
  const got = await receive(url, { MaxNumberOfMessages: 2 });
  assert.equal(got.length, 2);
  const a = await attrs(url, ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible',
    'ApproximateNumberOfMessagesDelayed']);
  assert.equal(a.ApproximateNumberOfMessagesNotVisible, '2');
  assert.equal(Number(a.ApproximateNumberOfMessages) + Number(a.ApproximateNumberOfMessagesDelayed), 4);
  await sqs.send(new PurgeQueueCommand({ QueueUrl: url }));
  assert.equal((await attrs(url, ['ApproximateNumberOfMessages'])).ApproximateNumberOfMessages, '0');
  assert.equal((await receive(url, { VisibilityTimeout: 0 })).length, 0);
  await rejects(sqs.send(new GetQueueAttributesCommand({ QueueUrl: url,
    AttributeNames: ['NoSuchAttribute'] })), 'InvalidAttributeName');
});

test('errors: unknown queue, forged receipt, 11 entries, > 256 KiB, malformed bodies', async () => {
  const url = await createQueue('errors');
  const gone = url.replace('errors', 'no-such-queue');
  await rejects(sqs.send(new SendMessageCommand({ QueueUrl: gone, MessageBody: 'x' })),
    'QueueDoesNotExist');
  await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'x' }));
  const [m] = await receive(url);
  const h = m.ReceiptHandle;
  const forged = h.slice(0, 2) + (h[2] === 'A' ? 'B' : 'A') + h.slice(3);
  await rejects(sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: forged })),
    'ReceiptHandleIsInvalid');
  await rejects(sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: 'garbage' })),
    'ReceiptHandleIsInvalid');
  await rejects(sqs.send(new SendMessageBatchCommand({ QueueUrl: url, Entries:
    Array.from({ length: 11 }, (_, i) => ({ Id: `e${i}`, MessageBody: 'x' })) })),
  'TooManyEntriesInBatchRequest');
  await rejects(sqs.send(new SendMessageBatchCommand({ QueueUrl: url, Entries:
    [{ Id: 'same', MessageBody: 'x' }, { Id: 'same', MessageBody: 'y' }] })),
  'BatchEntryIdsNotDistinct');
  await rejects(sqs.send(new SendMessageCommand({ QueueUrl: url,
    MessageBody: 'x'.repeat(256 * 1024 + 1) })), 'InvalidParameterValue');
  const part = await sqs.send(new SendMessageBatchCommand({ QueueUrl: url, Entries: [
    { Id: 'ok', MessageBody: 'fine' }, { Id: 'big', MessageBody: 'x'.repeat(256 * 1024 + 1) }] }));
  assert.deepEqual(part.Successful.map((e) => e.Id), ['ok']);
  assert.deepEqual(part.Failed.map((e) => [e.Id, e.Code, e.SenderFault]),
    [['big', 'InvalidParameterValue', true]]);
  const bad = await fetch(b.endpoint, { method: 'POST', body: '{"QueueUrl": ',
    headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': 'AmazonSQS.SendMessage' } });
  assert.equal(bad.status, 400);
  const badBody = await bad.json();
  assert.equal(badBody.__type, 'com.amazonaws.sqs#InvalidParameterValue');
  assert.match(badBody.message, /malformed JSON/);
  const move = await fetch(b.endpoint, { method: 'POST', body: '{}', headers: {
    'content-type': 'application/x-amz-json-1.0', 'x-amz-target': 'AmazonSQS.StartMessageMoveTask' } });
  assert.equal(move.status, 400);
  assert.equal((await move.json()).__type, 'com.amazonaws.sqs#UnsupportedOperation');
  const form = await fetch(b.endpoint, { method: 'POST', body: 'Action=SendMessage&QueueUrl=%zz',
    headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  assert.equal(form.status, 400);
  assert.match(await form.text(), /<Code>MalformedQueryString<\/Code>/);
  // the Query protocol may name the queue by the path it POSTs to
  const byPath = await fetch(`${b.endpoint}/000000000000/errors`, { method: 'POST',
    body: 'Action=GetQueueAttributes&AttributeName.1=QueueArn&Version=2012-11-05',
    headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  assert.equal(byPath.status, 200);
  const xml = await byPath.text();
  assert.match(xml, /<GetQueueAttributesResponse xmlns="https:\/\/queue\.amazonaws\.com\/doc\/2012-11-05\/">/);
  assert.match(xml, /<Attribute><Name>QueueArn<\/Name><Value>arn:aws:sqs:us-east-1:000000000000:errors<\/Value><\/Attribute>/);
  assert.match(xml, /<ResponseMetadata><RequestId>[0-9a-f-]{36}<\/RequestId><\/ResponseMetadata>/);
  const noAction = await fetch(b.endpoint, { method: 'POST', body: 'Version=2012-11-05',
    headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  assert.equal(noAction.status, 400);
  assert.match(await noAction.text(), /<Code>MissingParameter<\/Code>/);
});

test('queue attributes survive a broker restart', async () => {
  const url = await createQueue('durable', { VisibilityTimeout: '17', DelaySeconds: '3',
    ReceiveMessageWaitTimeSeconds: '2', MessageRetentionPeriod: '7200' });
  await sqs.send(new SetQueueAttributesCommand({ QueueUrl: url, Attributes: { DelaySeconds: '0' } }));
  await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'kept' }));
  const before = await attrs(url);
  await b.stop();
  await b.restart();
  const a = await attrs(url);
  for (const k of ['VisibilityTimeout', 'DelaySeconds', 'ReceiveMessageWaitTimeSeconds',
    'MessageRetentionPeriod', 'CreatedTimestamp', 'QueueArn']) {
    assert.equal(a[k], before[k], k);
  }
  assert.equal(a.VisibilityTimeout, '17');
  assert.equal(a.DelaySeconds, '0');
  const [m] = await receive(url, { WaitTimeSeconds: 2 });
  assert.equal(m?.Body, 'kept');
});

// ---- the Query protocol: Debian's awscli and boto3 ------------------------------------

const awsEnv = { ...process.env, AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE', AWS_SECRET_ACCESS_KEY: 'secret',
  AWS_DEFAULT_REGION: 'us-east-1', AWS_PAGER: '', AWS_EC2_METADATA_DISABLED: 'true' };

function aws(...args) {
  const r = spawnSync('/usr/bin/aws', ['--endpoint-url', b.endpoint, '--output', 'json', ...args],
    { env: awsEnv, encoding: 'utf8' });
  assert.equal(r.status, 0, `aws ${args.join(' ')}: ${r.stderr}`);
  return { out: r.stdout.trim() ? JSON.parse(r.stdout) : {}, err: r.stderr };
}

test('awscli (Query protocol): create, send, receive, delete, attributes, list', async () => {
  const { out: c, err } = aws('--debug', 'sqs', 'create-queue', '--queue-name', 'cli-q');
  assert.match(err, /'Action': 'CreateQueue'/, 'awscli speaks the Query protocol');
  assert.match(c.QueueUrl, /\/000000000000\/cli-q$/);
  const { out: s } = aws('sqs', 'send-message', '--queue-url', c.QueueUrl, '--message-body',
    'from the cli', '--message-attributes', 'k={DataType=String,StringValue=v}');
  assert.equal(s.MD5OfMessageBody, md5('from the cli'));
  assert.equal(s.MD5OfMessageAttributes, md5Attrs({ k: { DataType: 'String', StringValue: 'v' } }));
  const { out: r } = aws('sqs', 'receive-message', '--queue-url', c.QueueUrl, '--wait-time-seconds',
    '2', '--attribute-names', 'All', '--message-attribute-names', 'All');
  assert.equal(r.Messages[0].Body, 'from the cli');
  assert.equal(r.Messages[0].MessageAttributes.k.StringValue, 'v');
  assert.equal(r.Messages[0].Attributes.ApproximateReceiveCount, '1');
  aws('sqs', 'delete-message', '--queue-url', c.QueueUrl, '--receipt-handle', r.Messages[0].ReceiptHandle);
  const { out: a } = aws('sqs', 'get-queue-attributes', '--queue-url', c.QueueUrl,
    '--attribute-names', 'All');
  assert.equal(a.Attributes.ApproximateNumberOfMessages, '0');
  assert.equal(a.Attributes.ApproximateNumberOfMessagesNotVisible, '0');
  assert.equal(a.Attributes.VisibilityTimeout, '30');
  const { out: l } = aws('sqs', 'list-queues', '--queue-name-prefix', 'cli-');
  assert.deepEqual(l.QueueUrls, [c.QueueUrl]);
  const bad = spawnSync('/usr/bin/aws', ['--endpoint-url', b.endpoint, 'sqs', 'get-queue-url',
    '--queue-name', 'cli-none'], { env: awsEnv, encoding: 'utf8' });
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /NonExistentQueue|QueueDoesNotExist/);
});

test('boto3 (Query protocol): send, receive, delete', () => {
  const py = `
import boto3, json, sys
c = boto3.client('sqs', endpoint_url=sys.argv[1], region_name='us-east-1',
                 aws_access_key_id='AKIDEXAMPLE', aws_secret_access_key='secret')
url = c.create_queue(QueueName='boto-q')['QueueUrl']
s = c.send_message(QueueUrl=url, MessageBody='from boto3',
                   MessageAttributes={'n': {'DataType': 'Number', 'StringValue': '7'}})
r = c.receive_message(QueueUrl=url, WaitTimeSeconds=2, MessageAttributeNames=['All'])
m = r['Messages'][0]
c.delete_message(QueueUrl=url, ReceiptHandle=m['ReceiptHandle'])
left = c.receive_message(QueueUrl=url, WaitTimeSeconds=1, VisibilityTimeout=0).get('Messages', [])
sb = c.send_message_batch(QueueUrl=url, Entries=[
    {'Id': 'a', 'MessageBody': 'b1', 'MessageAttributes': {'x': {'DataType': 'String', 'StringValue': 'y'}}},
    {'Id': 'b', 'MessageBody': 'b2', 'DelaySeconds': 0}])
got = []
for _ in range(5):
    got += c.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get('Messages', [])
    if len(got) >= 2:
        break
db = c.delete_message_batch(QueueUrl=url, Entries=[
    {'Id': 'd%d' % i, 'ReceiptHandle': m['ReceiptHandle']} for i, m in enumerate(got)])
cv = c.change_message_visibility_batch(QueueUrl=url, Entries=[
    {'Id': 'z', 'ReceiptHandle': 'forged.0123456789abcdef', 'VisibilityTimeout': 5}])
print(json.dumps({'sent': s['MessageId'], 'got': m['MessageId'], 'body': m['Body'],
                  'n': m['MessageAttributes']['n']['StringValue'], 'left': len(left),
                  'md5': m['MD5OfBody'], 'batch_ok': sorted(e['Id'] for e in sb['Successful']),
                  'batch_bodies': sorted(x['Body'] for x in got),
                  'deleted': len(db['Successful']),
                  'cv_failed': [(e['Id'], e['Code']) for e in cv['Failed']]}))
`;
  const r = spawnSync('/usr/bin/python3', ['-c', py, b.endpoint], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.body, 'from boto3');
  assert.equal(out.got, out.sent);
  assert.equal(out.n, '7');
  assert.equal(out.md5, md5('from boto3'));
  assert.equal(out.left, 0);
  assert.deepEqual(out.batch_ok, ['a', 'b']);
  assert.deepEqual(out.batch_bodies, ['b1', 'b2']);
  assert.equal(out.deleted, 2);
  assert.deepEqual(out.cv_failed, [['z', 'ReceiptHandleIsInvalid']]);
});
