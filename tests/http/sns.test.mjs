// sns.test.mjs - the SNS API of the real sluiced (Query protocol), driven by
// unchanged client code: @aws-sdk/client-sns and client-sqs 3.1178.0, and
// awscli (/usr/bin/aws), plus raw requests.
// Covers: the fan-out flow (CreateTopic; two SQS queues subscribed with
// different FilterPolicies (String.Array attributes too), one on MessageAttributes and one on the
// MessageBody; Publish and PublishBatch -> each queue receives exactly its
// share; the Notification JSON vs RawMessageDelivery, and a change of
// RawMessageDelivery taking effect); an HTTP subscriber (a node http server
// here): the SubscriptionConfirmation POST, ConfirmSubscription through its
// SubscribeURL, then notifications with the x-amz-sns-* headers;
// Unsubscribe stopping delivery; a FilterPolicy change; topic and
// subscription attributes and listings with paging; DeleteTopic; bad input
// (SigV4 and ACLs with auth on: AuthorizationError, unsigned refused, the
// SubscribeURL's token as its own credential);
// (missing TopicArn, a bad FilterPolicy, a bad protocol, PublishBatch's
// errors, FIFO topics); a RedrivePolicy dead-lettering what an endpoint
// keeps refusing; persistence across a restart; awscli.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { spawnSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  SNSClient, CreateTopicCommand, ListTopicsCommand, DeleteTopicCommand,
  GetTopicAttributesCommand, SetTopicAttributesCommand, SubscribeCommand, UnsubscribeCommand,
  ListSubscriptionsCommand, ListSubscriptionsByTopicCommand, GetSubscriptionAttributesCommand,
  SetSubscriptionAttributesCommand, PublishCommand, PublishBatchCommand,
  ConfirmSubscriptionCommand,
} from '@aws-sdk/client-sns';
import {
  SQSClient, CreateQueueCommand, GetQueueAttributesCommand, ReceiveMessageCommand,
  DeleteMessageBatchCommand,
} from '@aws-sdk/client-sqs';
import { startBroker, startAuthBroker } from './harness.mjs';

const b = await startBroker();
after(() => b.stop());

const creds = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' };
const cfg = () => ({ endpoint: b.endpoint, region: 'us-east-1', credentials: creds });
const sns = new SNSClient(cfg());
const sqs = new SQSClient(cfg());

async function queue(name) {
  const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: name }));
  const { Attributes } = await sqs.send(new GetQueueAttributesCommand({
    QueueUrl, AttributeNames: ['QueueArn'] }));
  return { url: QueueUrl, arn: Attributes.QueueArn };
}

// Everything the queue holds within `ms` (received and deleted).
async function drain(url, ms = 3000, want = Infinity) {
  const out = [];
  const deadline = Date.now() + ms;
  while (Date.now() < deadline && out.length < want) {
    const { Messages = [] } = await sqs.send(new ReceiveMessageCommand({
      QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, MessageAttributeNames: ['All'] }));
    if (Messages.length > 0) {
      await sqs.send(new DeleteMessageBatchCommand({ QueueUrl: url, Entries: Messages.map((m, i) =>
        ({ Id: `${i}`, ReceiptHandle: m.ReceiptHandle })) }));
    }
    out.push(...Messages);
  }
  return out;
}

async function rejects(promise, name, re) {
  await assert.rejects(promise, (e) => {
    assert.equal(e.name, name, `${e.name}: ${e.message}`);
    if (re) assert.match(e.message, re);
    return true;
  });
}

test('fan-out: two SQS subscriptions with attribute and body filter policies', async () => {
  const { TopicArn } = await sns.send(new CreateTopicCommand({ Name: 'orders',
    Attributes: { DisplayName: 'Orders' } }));
  assert.equal(TopicArn, 'arn:aws:sns:us-east-1:000000000000:orders');
  const again = await sns.send(new CreateTopicCommand({ Name: 'orders' }));
  assert.equal(again.TopicArn, TopicArn, 'CreateTopic is idempotent');
  const big = await queue('big-orders');
  const eu = await queue('eu-orders');
  const s1 = await sns.send(new SubscribeCommand({ TopicArn, Protocol: 'sqs', Endpoint: big.arn,
    ReturnSubscriptionArn: true,
    Attributes: { FilterPolicy: JSON.stringify({ total: [{ numeric: ['>=', 100] }] }) } }));
  assert.match(s1.SubscriptionArn, /^arn:aws:sns:us-east-1:000000000000:orders:[0-9a-f-]{36}$/);
  const s2 = await sns.send(new SubscribeCommand({ TopicArn, Protocol: 'sqs', Endpoint: eu.url,
    Attributes: { FilterPolicy: JSON.stringify({ region: ['eu-west-1', 'eu-central-1'] }),
      FilterPolicyScope: 'MessageBody', RawMessageDelivery: 'true' } }));
  assert.match(s2.SubscriptionArn, /:orders:[0-9a-f-]{36}$/, 'sqs subscriptions need no confirmation');
  const s2again = await sns.send(new SubscribeCommand({ TopicArn, Protocol: 'sqs', Endpoint: eu.arn,
    Attributes: { FilterPolicy: JSON.stringify({ region: ['eu-west-1', 'eu-central-1'] }),
      FilterPolicyScope: 'MessageBody', RawMessageDelivery: 'true' } }));
  assert.equal(s2again.SubscriptionArn, s2.SubscriptionArn, 'Subscribe is idempotent (URL or ARN)');
  await rejects(sns.send(new SubscribeCommand({ TopicArn, Protocol: 'sqs', Endpoint: eu.arn })),
    'InvalidParameterException', /different attributes/);

  const orders = [
    { id: 1, total: 250, region: 'eu-west-1' },  // both
    { id: 2, total: 20, region: 'eu-central-1' }, // eu
    { id: 3, total: 500, region: 'us-east-1' },  // big
    { id: 4, total: 5, region: 'ap-south-1' },   // none
  ];
  const attrs = (o) => ({ total: { DataType: 'Number', StringValue: String(o.total) },
    kind: { DataType: 'String', StringValue: 'order' } });
  const p = await sns.send(new PublishCommand({ TopicArn, Subject: 'order 1',
    Message: JSON.stringify(orders[0]), MessageAttributes: attrs(orders[0]) }));
  assert.match(p.MessageId, /^[0-9a-f-]{36}$/);
  const pb = await sns.send(new PublishBatchCommand({ TopicArn, PublishBatchRequestEntries:
    orders.slice(1).map((o) => ({ Id: `o${o.id}`, Message: JSON.stringify(o),
      MessageAttributes: attrs(o) })) }));
  assert.equal(pb.Successful.length, 3);
  assert.deepEqual(pb.Successful.map((s) => s.Id), ['o2', 'o3', 'o4']);
  assert.equal(pb.Failed?.length ?? 0, 0);

  const bigGot = await drain(big.url, 4000, 2);
  const euGot = await drain(eu.url, 4000, 2);
  // Notification JSON for `big`: exactly orders 1 and 3.
  const notes = bigGot.map((m) => JSON.parse(m.Body));
  assert.deepEqual(notes.map((n) => JSON.parse(n.Message).id).sort(), [1, 3]);
  const n1 = notes.find((n) => JSON.parse(n.Message).id === 1);
  assert.equal(n1.Type, 'Notification');
  assert.equal(n1.TopicArn, TopicArn);
  assert.equal(n1.MessageId, p.MessageId);
  assert.equal(n1.Subject, 'order 1');
  assert.equal(n1.MessageAttributes.total.Type, 'Number');
  assert.equal(n1.MessageAttributes.total.Value, '250');
  assert.equal(n1.SignatureVersion, '1');
  assert.ok('SigningCertURL' in n1 && 'UnsubscribeURL' in n1);
  assert.match(n1.Timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  // Raw delivery for `eu`: the message itself, with its attributes as SQS attributes.
  assert.deepEqual(euGot.map((m) => JSON.parse(m.Body).id).sort(), [1, 2]);
  const raw1 = euGot.find((m) => JSON.parse(m.Body).id === 1);
  assert.equal(raw1.MessageAttributes?.total?.StringValue, '250');
  assert.equal(raw1.MessageAttributes?.total?.DataType, 'Number');
  // Nothing more arrives (order 4 matched no policy).
  assert.equal((await drain(big.url, 1500)).length, 0);
  assert.equal((await drain(eu.url, 500)).length, 0);

  // Subscription attributes, and switching raw delivery off.
  const ga = await sns.send(new GetSubscriptionAttributesCommand({ SubscriptionArn: s2.SubscriptionArn }));
  assert.equal(ga.Attributes.RawMessageDelivery, 'true');
  assert.equal(ga.Attributes.FilterPolicyScope, 'MessageBody');
  assert.equal(ga.Attributes.Endpoint, eu.arn);
  assert.equal(ga.Attributes.PendingConfirmation, 'false');
  await sns.send(new SetSubscriptionAttributesCommand({ SubscriptionArn: s2.SubscriptionArn,
    AttributeName: 'RawMessageDelivery', AttributeValue: 'false' }));
  await sns.send(new PublishCommand({ TopicArn, Message: JSON.stringify({ id: 5, region: 'eu-west-1' }) }));
  const [wrapped] = await drain(eu.url, 4000, 1);
  assert.equal(JSON.parse(wrapped.Body).Type, 'Notification', 'RawMessageDelivery=false wraps');

  // A FilterPolicy change: the group is made again with the new policy.
  await sns.send(new SetSubscriptionAttributesCommand({ SubscriptionArn: s1.SubscriptionArn,
    AttributeName: 'FilterPolicy', AttributeValue: JSON.stringify({ kind: ['refund'] }) }));
  const ga1 = await sns.send(new GetSubscriptionAttributesCommand({ SubscriptionArn: s1.SubscriptionArn }));
  assert.equal(ga1.Attributes.FilterPolicy, '{"kind":["refund"]}');
  let delivered = [];
  for (let i = 0; i < 30 && delivered.length === 0; i++) { // until the janitor made the group again
    await sns.send(new PublishCommand({ TopicArn, Message: `refund ${i}`,
      MessageAttributes: { kind: { DataType: 'String', StringValue: 'refund' } } }));
    delivered = await drain(big.url, 1000);
  }
  assert.ok(delivered.length >= 1, 'the new filter policy delivers');
  await sns.send(new PublishCommand({ TopicArn, Message: 'big but no refund',
    MessageAttributes: { total: { DataType: 'Number', StringValue: '1000' } } }));
  assert.ok((await drain(big.url, 1500)).every((m) => JSON.parse(m.Body).Message.startsWith('refund')));

  // Topic attributes: counts and DisplayName.
  const ta = await sns.send(new GetTopicAttributesCommand({ TopicArn }));
  assert.equal(ta.Attributes.TopicArn, TopicArn);
  assert.equal(ta.Attributes.DisplayName, 'Orders');
  assert.equal(ta.Attributes.SubscriptionsConfirmed, '2');
  assert.equal(ta.Attributes.SubscriptionsPending, '0');
  await sns.send(new SetTopicAttributesCommand({ TopicArn, AttributeName: 'DisplayName',
    AttributeValue: 'All orders' }));
  const ta2 = await sns.send(new GetTopicAttributesCommand({ TopicArn }));
  assert.equal(ta2.Attributes.DisplayName, 'All orders');

  // Unsubscribe stops delivery at once.
  await sns.send(new UnsubscribeCommand({ SubscriptionArn: s2.SubscriptionArn }));
  await sns.send(new PublishCommand({ TopicArn, Message: JSON.stringify({ id: 6, region: 'eu-west-1' }) }));
  assert.equal((await drain(eu.url, 2000)).length, 0, 'no delivery after Unsubscribe');
  await rejects(sns.send(new GetSubscriptionAttributesCommand({ SubscriptionArn: s2.SubscriptionArn })),
    'NotFoundException');
  const lst = await sns.send(new ListSubscriptionsByTopicCommand({ TopicArn }));
  assert.deepEqual(lst.Subscriptions.map((s) => s.SubscriptionArn), [s1.SubscriptionArn]);
  assert.equal(lst.Subscriptions[0].Protocol, 'sqs');
  assert.equal(lst.Subscriptions[0].Endpoint, big.arn);
});

test('an HTTP subscriber: confirmation handshake, then notifications with SNS headers', async () => {
  const got = [];
  const srv = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => { got.push({ headers: req.headers, body }); res.end('ok'); });
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  try {
    const url = `http://127.0.0.1:${srv.address().port}/hook`;
    const { TopicArn } = await sns.send(new CreateTopicCommand({ Name: 'alerts' }));
    const sub = await sns.send(new SubscribeCommand({ TopicArn, Protocol: 'http', Endpoint: url }));
    assert.equal(sub.SubscriptionArn, 'pending confirmation');
    await sns.send(new PublishCommand({ TopicArn, Message: 'before confirmation' }));
    for (let i = 0; i < 100 && got.length === 0; i++) await sleep(50);
    assert.equal(got.length, 1, 'the SubscriptionConfirmation message arrived');
    const c = got.shift();
    assert.equal(c.headers['x-amz-sns-message-type'], 'SubscriptionConfirmation');
    assert.equal(c.headers['x-amz-sns-topic-arn'], TopicArn);
    const msg = JSON.parse(c.body);
    assert.equal(msg.Type, 'SubscriptionConfirmation');
    assert.equal(msg.TopicArn, TopicArn);
    assert.match(msg.Token, /^[0-9a-f]{64}$/);
    assert.match(msg.SubscribeURL, /Action=ConfirmSubscription/);
    const pend = await sns.send(new ListSubscriptionsByTopicCommand({ TopicArn }));
    assert.equal(pend.Subscriptions[0].SubscriptionArn, 'PendingConfirmation');
    const ta = await sns.send(new GetTopicAttributesCommand({ TopicArn }));
    assert.equal(ta.Attributes.SubscriptionsPending, '1');
    // A wrong token is refused; the SubscribeURL (a plain GET) confirms.
    await rejects(sns.send(new ConfirmSubscriptionCommand({ TopicArn, Token: 'f'.repeat(64) })),
      'InvalidParameterException', /token/i);
    const r = await fetch(msg.SubscribeURL);
    const text = await r.text();
    assert.equal(r.status, 200, text);
    const arn = text.match(/<SubscriptionArn>([^<]+)<\/SubscriptionArn>/)[1];
    assert.match(arn, /^arn:aws:sns:us-east-1:000000000000:alerts:[0-9a-f-]{36}$/);
    const again = await sns.send(new ConfirmSubscriptionCommand({ TopicArn, Token: msg.Token }));
    assert.equal(again.SubscriptionArn, arn, 'confirming twice answers the same ARN');

    const p = await sns.send(new PublishCommand({ TopicArn, Message: 'disk full', Subject: 'alert' }));
    for (let i = 0; i < 100 && got.length === 0; i++) await sleep(50);
    assert.equal(got.length, 1, 'one notification (the message before confirmation is not delivered)');
    const n = got.shift();
    assert.equal(n.headers['x-amz-sns-message-type'], 'Notification');
    assert.equal(n.headers['x-amz-sns-message-id'], p.MessageId);
    assert.equal(n.headers['x-amz-sns-topic-arn'], TopicArn);
    assert.equal(n.headers['x-amz-sns-subscription-arn'], arn);
    const body = JSON.parse(n.body);
    assert.equal(body.Message, 'disk full');
    assert.equal(body.Subject, 'alert');
    assert.equal(body.MessageId, p.MessageId);

    await sns.send(new UnsubscribeCommand({ SubscriptionArn: arn }));
    await sns.send(new PublishCommand({ TopicArn, Message: 'after unsubscribe' }));
    await sleep(1500);
    assert.equal(got.length, 0, 'no notification after Unsubscribe');
  } finally {
    srv.close();
  }
});

test('RedrivePolicy: a message an endpoint keeps refusing goes to the dead-letter queue', async () => {
  const confirmations = [];
  let refused = 0;
  const srv = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      if (req.headers['x-amz-sns-message-type'] === 'SubscriptionConfirmation') {
        confirmations.push(JSON.parse(body));
        res.end('ok');
      } else {
        refused++;
        res.statusCode = 500;
        res.end('down');
      }
    });
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  try {
    const { TopicArn } = await sns.send(new CreateTopicCommand({ Name: 'flaky' }));
    const dlq = await queue('flaky-dlq');
    const url = `http://127.0.0.1:${srv.address().port}/`;
    await rejects(sns.send(new SubscribeCommand({ TopicArn, Protocol: 'http', Endpoint: url,
      Attributes: { RedrivePolicy: '{"deadLetterTargetArn": "arn:aws:sqs:us-east-1:000000000000:none"}' } })),
    'InvalidParameterException', /RedrivePolicy/);
    await sns.send(new SubscribeCommand({ TopicArn, Protocol: 'http', Endpoint: url,
      Attributes: { RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlq.arn }) } }));
    for (let i = 0; i < 100 && confirmations.length === 0; i++) await sleep(50);
    assert.equal(confirmations.length, 1);
    const { SubscriptionArn } = await sns.send(new ConfirmSubscriptionCommand({ TopicArn,
      Token: confirmations[0].Token }));
    const ga = await sns.send(new GetSubscriptionAttributesCommand({ SubscriptionArn }));
    assert.equal(JSON.parse(ga.Attributes.RedrivePolicy).deadLetterTargetArn, dlq.arn);
    await sns.send(new PublishCommand({ TopicArn, Message: 'undeliverable' }));
    const [dead] = await drain(dlq.url, 30000, 1);
    assert.equal(dead?.Body, 'undeliverable', 'dead-lettered after the retries');
    assert.ok(refused >= 4, `tried ${refused} times: 1 + SNS's 3 retries`);
  } finally {
    srv.close();
  }
});

test('bad input: clear errors naming the parameter', async () => {
  await rejects(sns.send(new PublishCommand({ Message: 'x' })), 'InvalidParameterException', /TopicArn/);
  await rejects(sns.send(new PublishCommand({ TopicArn: 'arn:aws:sns:us-east-1:000000000000:nope',
    Message: 'x' })), 'NotFoundException');
  const { TopicArn } = await sns.send(new CreateTopicCommand({ Name: 'errs' }));
  const q = await queue('errs-q');
  await rejects(sns.send(new SubscribeCommand({ TopicArn, Protocol: 'sqs', Endpoint: q.arn,
    Attributes: { FilterPolicy: '{"a": [{"numeric": [">"]}]}' } })), 'InvalidParameterException',
  /FilterPolicy/);
  await rejects(sns.send(new SubscribeCommand({ TopicArn, Protocol: 'sqs', Endpoint: q.arn,
    Attributes: { FilterPolicy: 'not json' } })), 'InvalidParameterException', /FilterPolicy/);
  await rejects(sns.send(new SubscribeCommand({ TopicArn, Protocol: 'email', Endpoint: 'a@b.c' })),
    'InvalidParameterException', /Protocol/);
  await rejects(sns.send(new SubscribeCommand({ TopicArn, Protocol: 'sqs',
    Endpoint: 'arn:aws:sqs:us-east-1:000000000000:missing' })), 'InvalidParameterException', /Endpoint/);
  await rejects(sns.send(new CreateTopicCommand({ Name: 'f.fifo', Attributes: { FifoTopic: 'true' } })),
    'InvalidParameterException', /FIFO/);
  await rejects(sns.send(new CreateTopicCommand({ Name: 'bad name' })), 'InvalidParameterException');
  await rejects(sns.send(new PublishCommand({ TopicArn, Message: '{"x":1}', MessageStructure: 'json' })),
    'InvalidParameterException', /default/);
  await rejects(sns.send(new PublishBatchCommand({ TopicArn, PublishBatchRequestEntries: [
    { Id: 'a', Message: '1' }, { Id: 'a', Message: '2' }] })), 'BatchEntryIdsNotDistinctException');
  await rejects(sns.send(new PublishBatchCommand({ TopicArn, PublishBatchRequestEntries:
    Array.from({ length: 11 }, (_, i) => ({ Id: `e${i}`, Message: 'm' })) })),
  'TooManyEntriesInBatchRequestException');
  await rejects(sns.send(new PublishBatchCommand({ TopicArn, PublishBatchRequestEntries: [] })),
    'EmptyBatchRequestException');
  const mixed = await sns.send(new PublishBatchCommand({ TopicArn, PublishBatchRequestEntries: [
    { Id: 'ok', Message: 'fine' }, { Id: 'empty', Message: '' }] }));
  assert.deepEqual(mixed.Successful.map((s) => s.Id), ['ok']);
  assert.equal(mixed.Failed[0].Id, 'empty');
  assert.equal(mixed.Failed[0].Code, 'InvalidParameter');
  assert.equal(mixed.Failed[0].SenderFault, true);
  // MessageStructure=json delivers the default text.
  await sns.send(new SubscribeCommand({ TopicArn, Protocol: 'sqs', Endpoint: q.arn,
    Attributes: { RawMessageDelivery: 'true' } }));
  await sns.send(new PublishCommand({ TopicArn, MessageStructure: 'json',
    Message: JSON.stringify({ default: 'the default', sqs: 'for sqs' }) }));
  const [m] = await drain(q.url, 4000, 1);
  assert.equal(m?.Body, 'the default');
  // A raw form with an unknown SNS-signed action.
  const r = await fetch(b.endpoint, { method: 'POST', headers: {
    'content-type': 'application/x-www-form-urlencoded' },
  body: 'Action=CreatePlatformApplication&Version=2010-03-31' });
  assert.equal(r.status, 400);
  assert.match(await r.text(), /<Code>InvalidAction<\/Code>.*not served/s);
});

test('ListTopics pages with NextToken; DeleteTopic removes the topic and its subscriptions', async () => {
  for (let i = 0; i < 105; i++) {
    await sns.send(new CreateTopicCommand({ Name: `page-${String(i).padStart(3, '0')}` }));
  }
  const seen = new Set();
  let NextToken;
  let pages = 0;
  do {
    const r = await sns.send(new ListTopicsCommand({ NextToken }));
    assert.ok(r.Topics.length <= 100);
    for (const t of r.Topics) seen.add(t.TopicArn);
    NextToken = r.NextToken;
    pages++;
  } while (NextToken);
  assert.ok(pages >= 2, 'more than one page');
  for (let i = 0; i < 105; i++) {
    assert.ok(seen.has(`arn:aws:sns:us-east-1:000000000000:page-${String(i).padStart(3, '0')}`));
  }
  const { TopicArn } = await sns.send(new CreateTopicCommand({ Name: 'doomed' }));
  const q = await queue('doomed-q');
  const s = await sns.send(new SubscribeCommand({ TopicArn, Protocol: 'sqs', Endpoint: q.arn }));
  await sns.send(new DeleteTopicCommand({ TopicArn }));
  await rejects(sns.send(new GetTopicAttributesCommand({ TopicArn })), 'NotFoundException');
  await rejects(sns.send(new GetSubscriptionAttributesCommand({ SubscriptionArn: s.SubscriptionArn })),
    'NotFoundException');
  const all = await sns.send(new ListSubscriptionsCommand({}));
  assert.ok(!(all.Subscriptions ?? []).some((x) => x.TopicArn === TopicArn));
  await sns.send(new DeleteTopicCommand({ TopicArn })); // idempotent

  // A topic deleted by other means (the CLI): its subscriptions are dropped by the janitor.
  const other = await sns.send(new CreateTopicCommand({ Name: 'cli-deleted' }));
  const s2 = await sns.send(new SubscribeCommand({ TopicArn: other.TopicArn, Protocol: 'sqs',
    Endpoint: q.arn }));
  const cli = spawnSync(process.env.SLUICE_CLI_PATH, ['--broker', `127.0.0.1:${b.port}`, 'stream',
    'delete', 'cli-deleted'], { encoding: 'utf8' });
  assert.equal(cli.status, 0, cli.stderr);
  let gone = false;
  for (let i = 0; i < 50 && !gone; i++) {
    await sleep(100);
    gone = !((await sns.send(new ListSubscriptionsCommand({}))).Subscriptions ?? [])
      .some((x) => x.SubscriptionArn === s2.SubscriptionArn);
  }
  assert.ok(gone, 'the subscription of a topic deleted with the CLI is dropped');
});

test('subscriptions and topics survive a restart', async () => {
  const { TopicArn } = await sns.send(new CreateTopicCommand({ Name: 'durable' }));
  const q = await queue('durable-q');
  const s = await sns.send(new SubscribeCommand({ TopicArn, Protocol: 'sqs', Endpoint: q.arn,
    Attributes: { FilterPolicy: '{"keep": ["yes"]}', RawMessageDelivery: 'true' } }));
  await b.stop();
  await b.restart();
  const ga = await sns.send(new GetSubscriptionAttributesCommand({ SubscriptionArn: s.SubscriptionArn }));
  assert.equal(ga.Attributes.FilterPolicy, '{"keep": ["yes"]}');
  assert.equal(ga.Attributes.RawMessageDelivery, 'true');
  await sns.send(new PublishCommand({ TopicArn, Message: 'dropped',
    MessageAttributes: { keep: { DataType: 'String', StringValue: 'no' } } }));
  await sns.send(new PublishCommand({ TopicArn, Message: 'kept',
    MessageAttributes: { keep: { DataType: 'String', StringValue: 'yes' } } }));
  const got = await drain(q.url, 4000, 1);
  assert.deepEqual(got.map((m) => m.Body), ['kept']);
  assert.equal((await drain(q.url, 1000)).length, 0);
});

// ---- awscli (Query protocol) -----------------------------------------------------------

const awsEnv = { ...process.env, AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE', AWS_SECRET_ACCESS_KEY: 'secret',
  AWS_DEFAULT_REGION: 'us-east-1', AWS_PAGER: '', AWS_EC2_METADATA_DISABLED: 'true' };

function aws(...args) {
  const r = spawnSync('/usr/bin/aws', ['--endpoint-url', b.endpoint, '--output', 'json', ...args],
    { env: awsEnv, encoding: 'utf8' });
  return { status: r.status, out: r.status === 0 && r.stdout.trim() ? JSON.parse(r.stdout) : {},
    err: r.stderr };
}

test('awscli: create-topic, subscribe, publish, list-topics, errors', async () => {
  const c = aws('--debug', 'sns', 'create-topic', '--name', 'cli-topic');
  assert.equal(c.status, 0, c.err);
  assert.match(c.err, /'Action': 'CreateTopic'/, 'awscli speaks the Query protocol');
  assert.equal(c.out.TopicArn, 'arn:aws:sns:us-east-1:000000000000:cli-topic');
  const q = await queue('cli-q');
  const s = aws('sns', 'subscribe', '--topic-arn', c.out.TopicArn, '--protocol', 'sqs',
    '--notification-endpoint', q.arn, '--attributes', 'RawMessageDelivery=true');
  assert.equal(s.status, 0, s.err);
  const p = aws('sns', 'publish', '--topic-arn', c.out.TopicArn, '--message', 'from the cli',
    '--message-attributes', '{"k":{"DataType":"String","StringValue":"v"}}');
  assert.equal(p.status, 0, p.err);
  assert.match(p.out.MessageId, /^[0-9a-f-]{36}$/);
  const l = aws('sns', 'list-topics');
  assert.equal(l.status, 0, l.err);
  assert.ok(l.out.Topics.some((t) => t.TopicArn === c.out.TopicArn));
  const [m] = await drain(q.url, 4000, 1);
  assert.equal(m?.Body, 'from the cli');
  assert.equal(m?.MessageAttributes?.k?.StringValue, 'v');
  const bad = aws('sns', 'publish', '--topic-arn', 'arn:aws:sns:us-east-1:000000000000:none',
    '--message', 'x');
  assert.notEqual(bad.status, 0);
  assert.match(bad.err, /NotFound/);
});

// ---- auth = true: SigV4 for service sns, and the ACLs ------------------------------------

test('auth: SigV4 and per-topic rights; AuthorizationError names the fix', async () => {
  const K = { admin: ['AKIDSNSADMIN000001', 'admin/secret+0000000000000000000000000001'],
    pub: ['AKIDSNSPUB00000001', 'pub/secret+000000000000000000000000000001'] };
  const a = await startAuthBroker(`awskey ${K.admin[0]} ${K.admin[1]} admin
awskey ${K.pub[0]} ${K.pub[1]} pub
allow admin all *
allow pub produce news
`);
  try {
    const mk = (k) => new SNSClient({ endpoint: a.endpoint, region: 'us-east-1',
      credentials: { accessKeyId: k[0], secretAccessKey: k[1] } });
    const admin = mk(K.admin);
    const pub = mk(K.pub);
    const { TopicArn } = await admin.send(new CreateTopicCommand({ Name: 'news' }));
    await admin.send(new CreateTopicCommand({ Name: 'secret' }));
    const p = await pub.send(new PublishCommand({ TopicArn, Message: 'hello' }));
    assert.match(p.MessageId, /^[0-9a-f-]{36}$/);
    await rejects(pub.send(new PublishCommand({ TopicArn: TopicArn.replace('news', 'secret'),
      Message: 'x' })), 'AuthorizationErrorException');
    await rejects(pub.send(new DeleteTopicCommand({ TopicArn })), 'AuthorizationErrorException');
    const lt = await pub.send(new ListTopicsCommand({}));
    assert.deepEqual(lt.Topics.map((t) => t.TopicArn), [TopicArn], 'only what pub has a right on');
    const wrong = mk([K.pub[0], 'not-the-secret']);
    await assert.rejects(wrong.send(new ListTopicsCommand({})), (e) => e.$metadata?.httpStatusCode === 403);
    const r = await fetch(a.endpoint, { method: 'POST', headers: {
      'content-type': 'application/x-www-form-urlencoded' },
    body: 'Action=ListTopics&Version=2010-03-31' });
    assert.equal(r.status, 403);
    assert.match(await r.text(), /MissingAuthenticationToken/);
    // An unsigned GET with a bad token is refused as a token, not as a signature.
    const g = await fetch(`${a.endpoint}/?Action=ConfirmSubscription&TopicArn=${encodeURIComponent(TopicArn)}&Token=${'0'.repeat(64)}`);
    assert.equal(g.status, 400);
    assert.match(await g.text(), /Invalid token/);
  } finally {
    await a.stop();
  }
});

test('String.Array message attributes: a FilterPolicy holds when one element does', async () => {
  const { TopicArn } = await sns.send(new CreateTopicCommand({ Name: 'sports' }));
  const fans = await queue('football-fans');
  const high = await queue('high-scores');
  await sns.send(new SubscribeCommand({ TopicArn, Protocol: 'sqs', Endpoint: fans.arn,
    Attributes: { FilterPolicy: JSON.stringify({ interests: ['football'] }), RawMessageDelivery: 'true' } }));
  await sns.send(new SubscribeCommand({ TopicArn, Protocol: 'sqs', Endpoint: high.arn,
    Attributes: { FilterPolicy: JSON.stringify({ scores: [{ numeric: ['>', 90] }] }), RawMessageDelivery: 'true' } }));
  const arr = (v) => ({ DataType: 'String.Array', StringValue: JSON.stringify(v) });
  await sns.send(new PublishBatchCommand({ TopicArn, PublishBatchRequestEntries: [
    { Id: 'm1', Message: 'm1', MessageAttributes: { interests: arr(['rugby', 'football']), scores: arr([50, 95]) } },
    { Id: 'm2', Message: 'm2', MessageAttributes: { interests: arr(['tennis']), scores: arr([10, 90]) } },
    { Id: 'm3', Message: 'm3', MessageAttributes: { interests: arr(['footballs']) } },
    { Id: 'm4', Message: 'm4' },
  ] }));
  const [got, hi] = await Promise.all([drain(fans.url, 2500), drain(high.url, 2500)]);
  assert.deepEqual(got.map((m) => m.Body), ['m1'], 'one element matches; "footballs" does not');
  assert.deepEqual(hi.map((m) => m.Body), ['m1'], 'a number element matches a numeric condition');
});
