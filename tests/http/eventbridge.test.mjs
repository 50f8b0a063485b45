// eventbridge.test.mjs - the Amazon EventBridge API (#17) on the real sluiced
// with the real @aws-sdk/client-eventbridge and client-sqs v3 and awscli:
// buses, PutEvents, rules with patterns, targets (an HTTP endpoint served by
// this test, an SQS queue), DISABLED rules, TestEventPattern on
// EventBridge's documented examples, bad input, state across a restart; and
// the sluice CLI's bus, rule, archive and replay commands (the same API over
// the native protocol's ApiCall).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, execFileSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  EventBridgeClient, CreateEventBusCommand, DeleteEventBusCommand, ListEventBusesCommand,
  DescribeEventBusCommand, PutEventsCommand, PutRuleCommand, DeleteRuleCommand,
  ListRulesCommand, DescribeRuleCommand, EnableRuleCommand, DisableRuleCommand,
  PutTargetsCommand, RemoveTargetsCommand, ListTargetsByRuleCommand, TestEventPatternCommand,
  CreateArchiveCommand, DescribeArchiveCommand, ListArchivesCommand, UpdateArchiveCommand,
  DeleteArchiveCommand, StartReplayCommand, DescribeReplayCommand, CancelReplayCommand,
  ListReplaysCommand,
} from '@aws-sdk/client-eventbridge';
import { SQSClient, CreateQueueCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { startBroker, startAuthBroker, until, endpoint as hookEndpoint } from './harness.mjs';

let b, eb, sqs;
const creds = { accessKeyId: 'sluice', secretAccessKey: 'sluice' };

function clients() {
  eb = new EventBridgeClient({ endpoint: b.endpoint, region: 'us-east-1', credentials: creds });
  sqs = new SQSClient({ endpoint: b.endpoint, region: 'us-east-1', credentials: creds });
}

before(async () => {
  b = await startBroker();
  clients();
});
after(async () => { await b.stop(); });

// The harness's endpoint, collecting the events POSTed to it (answers 200; 500 without
// keeping the event when `fails(event)` says so).
async function endpoint(fails = () => false) {
  const events = [];
  const ep = await hookEndpoint((ev) => {
    if (fails(ev)) return { status: 500, json: {} };
    events.push(ev);
    return { status: 200, json: {} };
  });
  ep.events = events;
  return ep;
}

async function rejects(p, name, re) {
  await assert.rejects(p, (e) => {
    assert.equal(e.name, name, `${e.name}: ${e.message}`);
    if (re) assert.match(e.message, re);
    return true;
  });
}

const entry = (source, detail, extra = {}) => ({
  Source: source, DetailType: 'Order State', Detail: JSON.stringify(detail), ...extra,
});

test('buses: default exists, create, describe, list, delete', async () => {
  const list0 = await eb.send(new ListEventBusesCommand({}));
  assert.ok(list0.EventBuses.some((x) => x.Name === 'default'));
  const c = await eb.send(new CreateEventBusCommand({ Name: 'orders' }));
  assert.equal(c.EventBusArn, 'arn:aws:events:us-east-1:000000000000:event-bus/orders');
  await rejects(eb.send(new CreateEventBusCommand({ Name: 'orders' })), 'ResourceAlreadyExistsException');
  const d = await eb.send(new DescribeEventBusCommand({ Name: 'orders' }));
  assert.equal(d.Name, 'orders');
  assert.equal(d.Arn, c.EventBusArn);
  const tmp = await eb.send(new CreateEventBusCommand({ Name: 'tmp-bus' }));
  assert.ok(tmp.EventBusArn);
  const l = await eb.send(new ListEventBusesCommand({ NamePrefix: 'tmp' }));
  assert.deepEqual(l.EventBuses.map((x) => x.Name), ['tmp-bus']);
  await eb.send(new DeleteEventBusCommand({ Name: 'tmp-bus' }));
  await rejects(eb.send(new DescribeEventBusCommand({ Name: 'tmp-bus' })), 'ResourceNotFoundException');
  await rejects(eb.send(new DeleteEventBusCommand({ Name: 'default' })), 'ValidationException');
  await rejects(eb.send(new CreateEventBusCommand({ Name: 'bad/name' })), 'ValidationException', /not valid/);
});

test('PutEvents: per-entry results, Detail must be a JSON object, 256 KiB limit', async () => {
  const r = await eb.send(new PutEventsCommand({ Entries: [
    entry('shop', { state: 'new' }),
    { Source: 'shop', DetailType: 'x', Detail: 'not json' },
    { Source: 'shop', DetailType: 'x', Detail: '[1,2]' },
    { DetailType: 'x', Detail: '{}' },
    entry('shop', { a: 1 }, { EventBusName: 'no-such-bus' }),
    entry('shop', { state: 'ok' }, { EventBusName: 'orders' }),
  ] }));
  assert.equal(r.FailedEntryCount, 4);
  assert.match(r.Entries[0].EventId, /^[0-9a-f-]{36}$/);
  assert.equal(r.Entries[1].ErrorCode, 'MalformedDetail');
  assert.equal(r.Entries[2].ErrorCode, 'MalformedDetail');
  assert.equal(r.Entries[3].ErrorCode, 'InvalidArgument');
  assert.match(r.Entries[3].ErrorMessage, /Source/);
  assert.equal(r.Entries[4].ErrorCode, 'ResourceNotFoundException');
  assert.ok(r.Entries[5].EventId);
  const big = 'x'.repeat(256 * 1024);
  await rejects(eb.send(new PutEventsCommand({ Entries: [entry('shop', { big })] })),
    'ValidationException', /over the limit/);
  await rejects(eb.send(new PutEventsCommand({ Entries: [] })), 'ValidationException');
});

test('PutRule: bad pattern names the problem, schedules are refused, describe and list', async () => {
  await rejects(eb.send(new PutRuleCommand({ Name: 'bad', EventPattern: '{"source": "shop"}' })),
    'InvalidEventPatternException', /source/);
  await rejects(eb.send(new PutRuleCommand({ Name: 'bad', EventPattern: '{"source": [' })),
    'InvalidEventPatternException');
  await rejects(eb.send(new PutRuleCommand({ Name: 'cron', ScheduleExpression: 'rate(5 minutes)' })),
    'ValidationException', /ScheduleExpression/);
  const p = await eb.send(new PutRuleCommand({ Name: 'list-a', EventPattern: '{"source":["a"]}',
    Description: 'first' }));
  assert.equal(p.RuleArn, 'arn:aws:events:us-east-1:000000000000:rule/list-a');
  await eb.send(new PutRuleCommand({ Name: 'list-b', EventPattern: '{"source":["b"]}', State: 'DISABLED' }));
  await eb.send(new PutRuleCommand({ Name: 'list-c', EventPattern: '{"source":["c"]}' }));
  const d = await eb.send(new DescribeRuleCommand({ Name: 'list-b' }));
  assert.equal(d.State, 'DISABLED');
  assert.equal(d.EventPattern, '{"source":["b"]}');
  const page1 = await eb.send(new ListRulesCommand({ NamePrefix: 'list-', Limit: 2 }));
  assert.deepEqual(page1.Rules.map((x) => x.Name), ['list-a', 'list-b']);
  assert.ok(page1.NextToken);
  const page2 = await eb.send(new ListRulesCommand({ NamePrefix: 'list-', Limit: 2, NextToken: page1.NextToken }));
  assert.deepEqual(page2.Rules.map((x) => x.Name), ['list-c']);
  assert.equal(page2.NextToken, undefined);
  const ob = await eb.send(new PutRuleCommand({ Name: 'on-orders', EventBusName: 'orders',
    EventPattern: '{"source":["shop"]}' }));
  assert.equal(ob.RuleArn, 'arn:aws:events:us-east-1:000000000000:rule/orders/on-orders');
  await rejects(eb.send(new DescribeRuleCommand({ Name: 'nope' })), 'ResourceNotFoundException');
  for (const n of ['list-a', 'list-b', 'list-c']) await eb.send(new DeleteRuleCommand({ Name: n }));
});

test('rule -> http target and SQS target: exactly the matching envelopes, once each; DISABLED stops delivery', async () => {
  const ep = await endpoint();
  const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: 'shipped-q' }));
  await eb.send(new PutRuleCommand({ Name: 'shipped', EventPattern: JSON.stringify({
    source: ['shop'], detail: { state: ['shipped'] } }) }));
  const t = await eb.send(new PutTargetsCommand({ Rule: 'shipped', Targets: [
    { Id: 'hook', Arn: ep.url },
    { Id: 'queue', Arn: 'arn:aws:sqs:us-east-1:000000000000:shipped-q' },
    { Id: 'bad', Arn: 'arn:aws:lambda:us-east-1:000000000000:function:f' },
  ] }));
  assert.equal(t.FailedEntryCount, 1);
  assert.equal(t.FailedEntries[0].TargetId, 'bad');
  assert.match(t.FailedEntries[0].ErrorMessage, /not a target Sluice serves/);
  const lt = await eb.send(new ListTargetsByRuleCommand({ Rule: 'shipped' }));
  assert.deepEqual(lt.Targets.map((x) => x.Id).sort(), ['hook', 'queue']);
  await rejects(eb.send(new DeleteRuleCommand({ Name: 'shipped' })), 'ValidationException', /targets/);

  const put = await eb.send(new PutEventsCommand({ Entries: [
    entry('shop', { state: 'shipped', n: 1 }, { Resources: ['arn:aws:x:1'] }),
    entry('shop', { state: 'new', n: 2 }),
    entry('other', { state: 'shipped', n: 3 }),
    entry('shop', { state: 'shipped', n: 4 }),
  ] }));
  assert.equal(put.FailedEntryCount, 0);
  await until('2 POSTs', () => ep.events.length >= 2);
  await sleep(1000); // no more come
  assert.deepEqual(ep.events.map((e) => e.detail.n), [1, 4]);
  const e1 = ep.events[0];
  assert.equal(e1.id, put.Entries[0].EventId);
  assert.equal(e1.version, '0');
  assert.equal(e1.source, 'shop');
  assert.equal(e1['detail-type'], 'Order State');
  assert.equal(e1.account, '000000000000');
  assert.equal(e1.region, 'us-east-1');
  assert.deepEqual(e1.resources, ['arn:aws:x:1']);
  assert.match(e1.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);

  const got = [];
  await until('2 SQS messages', async () => {
    const r = await sqs.send(new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
    for (const m of r.Messages ?? []) got.push(JSON.parse(m.Body));
    return got.length >= 2;
  });
  assert.deepEqual(got.map((e) => e.detail.n).sort(), [1, 4]);
  assert.deepEqual(got.map((e) => e.id).sort(), [put.Entries[0].EventId, put.Entries[3].EventId].sort());

  await eb.send(new DisableRuleCommand({ Name: 'shipped' }));
  assert.equal((await eb.send(new DescribeRuleCommand({ Name: 'shipped' }))).State, 'DISABLED');
  await eb.send(new PutEventsCommand({ Entries: [entry('shop', { state: 'shipped', n: 5 })] }));
  await sleep(1500);
  assert.deepEqual(ep.events.map((e) => e.detail.n), [1, 4], 'a disabled rule delivers nothing');
  await eb.send(new EnableRuleCommand({ Name: 'shipped' }));
  await eb.send(new PutEventsCommand({ Entries: [entry('shop', { state: 'shipped', n: 6 })] }));
  await until('the event after EnableRule', () => ep.events.length >= 3);
  await sleep(500);
  assert.deepEqual(ep.events.map((e) => e.detail.n), [1, 4, 6], 'n 5 (put while disabled) is never delivered');

  const rm = await eb.send(new RemoveTargetsCommand({ Rule: 'shipped', Ids: ['hook', 'queue'] }));
  assert.equal(rm.FailedEntryCount, 0);
  await eb.send(new PutEventsCommand({ Entries: [entry('shop', { state: 'shipped', n: 7 })] }));
  await sleep(1000);
  assert.equal(ep.events.length, 3);
  await eb.send(new DeleteRuleCommand({ Name: 'shipped' }));
  ep.close();
});

test('a rule on a custom bus sees only that bus; state survives a restart', async () => {
  const ep = await endpoint();
  await eb.send(new PutRuleCommand({ Name: 'persist', EventBusName: 'orders',
    EventPattern: '{"detail":{"kind":[{"prefix":"p-"}]}}' }));
  await eb.send(new PutTargetsCommand({ Rule: 'persist', EventBusName: 'orders',
    Targets: [{ Id: 'h', Arn: ep.url }] }));
  await eb.send(new PutEventsCommand({ Entries: [
    entry('s', { kind: 'p-1' }, { EventBusName: 'orders' }),
    entry('s', { kind: 'p-default' }),
    entry('s', { kind: 'q-1' }, { EventBusName: 'arn:aws:events:us-east-1:000000000000:event-bus/orders' }),
  ] }));
  await until('p-1', () => ep.events.length >= 1);
  await b.stop();
  await b.restart();
  clients();
  const d = await eb.send(new DescribeRuleCommand({ Name: 'persist', EventBusName: 'orders' }));
  assert.equal(d.State, 'ENABLED');
  assert.deepEqual((await eb.send(new ListTargetsByRuleCommand({ Rule: 'persist', EventBusName: 'orders' })))
    .Targets.map((x) => x.Id), ['h']);
  await eb.send(new PutEventsCommand({ Entries: [entry('s', { kind: 'p-2' }, { EventBusName: 'orders' })] }));
  await until('p-2 after the restart', () => ep.events.length >= 2);
  await sleep(500);
  assert.deepEqual(ep.events.map((e) => e.detail.kind), ['p-1', 'p-2']);
  await eb.send(new RemoveTargetsCommand({ Rule: 'persist', EventBusName: 'orders', Ids: ['h'] }));
  ep.close();
});

test('input transforms: InputTransformer to an http target, InputPath to a queue, bad specs refused', async () => {
  const ep = await endpoint();
  const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: 'path-q' }));
  await eb.send(new PutRuleCommand({ Name: 'xform', EventPattern: '{"source":["ec2"]}' }));
  const bad = await eb.send(new PutTargetsCommand({ Rule: 'xform', Targets: [
    { Id: 'b1', Arn: ep.url, InputPath: 'detail.x' },
    { Id: 'b2', Arn: ep.url, InputTransformer: { InputPathsMap: { 'aws.x': '$.a' }, InputTemplate: '<x>' } },
    { Id: 'b3', Arn: ep.url, Input: '{not json' },
  ] }));
  assert.equal(bad.FailedEntryCount, 3);
  assert.match(bad.FailedEntries[0].ErrorMessage, /InputPath/);
  assert.match(bad.FailedEntries[1].ErrorMessage, /InputPathsMap\.aws\.x/);
  assert.match(bad.FailedEntries[2].ErrorMessage, /Input/);
  const ok = await eb.send(new PutTargetsCommand({ Rule: 'xform', Targets: [
    { Id: 'h', Arn: ep.url, InputTransformer: {
      InputPathsMap: { instance: '$.detail.instance-id', state: '$.detail.state' },
      InputTemplate: '{"instance": <instance>, "msg": "<instance> is <state>", "rule": <aws.events.rule-name>}' } },
    { Id: 'q', Arn: 'arn:aws:sqs:us-east-1:000000000000:path-q', InputPath: '$.detail' },
  ] }));
  assert.equal(ok.FailedEntryCount, 0);
  await eb.send(new PutEventsCommand({ Entries: [entry('ec2', { 'instance-id': 'i-1', state: 'RUNNING' })] }));
  await until('the transformed POST', () => ep.events.length >= 1);
  assert.deepEqual(ep.events[0], { instance: 'i-1', msg: 'i-1 is RUNNING', rule: 'xform' });
  let body;
  await until('the InputPath message', async () => {
    const r = await sqs.send(new ReceiveMessageCommand({ QueueUrl, WaitTimeSeconds: 1 }));
    body = r.Messages?.[0]?.Body;
    return body;
  });
  assert.deepEqual(JSON.parse(body), { 'instance-id': 'i-1', state: 'RUNNING' });
  await eb.send(new RemoveTargetsCommand({ Rule: 'xform', Ids: ['h', 'q'] }));
  ep.close();
});

test('archive -> replay of a time range to one rule: the range again, nothing later, nothing to other rules', async () => {
  const ep = await endpoint();
  const other = await endpoint();
  const bus = await eb.send(new CreateEventBusCommand({ Name: 'replaybus' }));
  const arc = await eb.send(new CreateArchiveCommand({ ArchiveName: 'arc', EventSourceArn: bus.EventBusArn,
    RetentionDays: 30, Description: 'all of it' }));
  assert.equal(arc.State, 'ENABLED');
  await rejects(eb.send(new CreateArchiveCommand({ ArchiveName: 'arc2', EventSourceArn: bus.EventBusArn,
    EventPattern: '{"source": "x"}' })), 'InvalidEventPatternException');
  const rule = await eb.send(new PutRuleCommand({ Name: 'rp', EventBusName: 'replaybus', EventPattern: '{"source":["rp"]}' }));
  await eb.send(new PutRuleCommand({ Name: 'rp-other', EventBusName: 'replaybus', EventPattern: '{"source":["rp"]}' }));
  await eb.send(new PutTargetsCommand({ Rule: 'rp', EventBusName: 'replaybus', Targets: [{ Id: 'h', Arn: ep.url }] }));
  await eb.send(new PutTargetsCommand({ Rule: 'rp-other', EventBusName: 'replaybus', Targets: [{ Id: 'h', Arn: other.url }] }));
  const put = (n) => eb.send(new PutEventsCommand({ Entries: [entry('rp', { n }, { EventBusName: 'replaybus' })] }));
  await put(1);
  await sleep(1100);
  const t0 = new Date();
  await put(2);
  await put(3);
  await sleep(1100);
  const t1 = new Date();
  await sleep(200);
  await put(4);
  await until('4 live events', () => ep.events.length >= 4 && other.events.length >= 4);

  const d = await eb.send(new DescribeArchiveCommand({ ArchiveName: 'arc' }));
  assert.equal(d.EventSourceArn, bus.EventBusArn);
  assert.equal(d.RetentionDays, 30);
  assert.ok(d.EventCount >= 4, `EventCount ${d.EventCount}`);
  assert.ok(d.SizeBytes > 0);
  assert.deepEqual((await eb.send(new ListArchivesCommand({ NamePrefix: 'ar' }))).Archives.map((a) => a.ArchiveName), ['arc']);
  await eb.send(new UpdateArchiveCommand({ ArchiveName: 'arc', RetentionDays: 60 }));
  assert.equal((await eb.send(new DescribeArchiveCommand({ ArchiveName: 'arc' }))).RetentionDays, 60);

  const r = await eb.send(new StartReplayCommand({ ReplayName: 'again', EventSourceArn: arc.ArchiveArn,
    EventStartTime: t0, EventEndTime: t1, Destination: { Arn: bus.EventBusArn, FilterArns: [rule.RuleArn] } }));
  assert.equal(r.State, 'STARTING');
  const done = await until('COMPLETED', async () => {
    const x = await eb.send(new DescribeReplayCommand({ ReplayName: 'again' }));
    return x.State === 'COMPLETED' ? x : null;
  });
  assert.equal(done.EventLastReplayedTime.getTime(), t1.getTime(), 'EventLastReplayedTime = EventEndTime');
  await sleep(1000); // nothing more comes
  assert.deepEqual(ep.events.map((e) => e.detail.n), [1, 2, 3, 4, 2, 3], 'the range again, once');
  assert.deepEqual(other.events.map((e) => e.detail.n), [1, 2, 3, 4], 'rules not in FilterArns get nothing');
  assert.deepEqual(ep.events.map((e) => e['replay-name'] ?? null), [null, null, null, null, 'again', 'again'],
    'a replayed event names its replay, a live one does not');
  assert.equal((await eb.send(new ListReplaysCommand({ State: 'COMPLETED' }))).Replays[0].ReplayName, 'again');

  const future = await eb.send(new StartReplayCommand({ ReplayName: 'later', EventSourceArn: arc.ArchiveArn,
    EventStartTime: t0, EventEndTime: new Date(Date.now() + 3600e3), Destination: { Arn: bus.EventBusArn, FilterArns: [rule.RuleArn] } }));
  assert.equal(future.State, 'STARTING');
  const c = await eb.send(new CancelReplayCommand({ ReplayName: 'later' }));
  assert.equal(c.State, 'CANCELLED');
  assert.equal((await eb.send(new DescribeReplayCommand({ ReplayName: 'later' }))).State, 'CANCELLED');
  await rejects(eb.send(new StartReplayCommand({ ReplayName: 'bad', EventSourceArn: arc.ArchiveArn,
    EventStartTime: t1, EventEndTime: t0, Destination: { Arn: bus.EventBusArn } })), 'ValidationException');
  await eb.send(new DeleteArchiveCommand({ ArchiveName: 'arc' }));
  await rejects(eb.send(new DescribeArchiveCommand({ ArchiveName: 'arc' })), 'ResourceNotFoundException');
  for (const n of ['rp', 'rp-other']) {
    await eb.send(new RemoveTargetsCommand({ Rule: n, EventBusName: 'replaybus', Ids: ['h'] }));
  }
  ep.close();
  other.close();
});

// EventBridge's documented pattern examples (content filtering page).
test('TestEventPattern: prefix, suffix, anything-but, numeric, exists, cidr, $or, arrays', async () => {
  const ev = {
    id: '7bf73129-1428-4cd3-a780-95db273d1602', 'detail-type': 'EC2 Instance State-change Notification',
    source: 'aws.ec2', account: '123456789012', time: '2015-11-11T21:29:54Z', region: 'us-east-1',
    resources: ['arn:aws:ec2:us-east-1:123456789012:instance/i-abcd1111'],
    detail: { 'instance-id': 'i-0123456789', state: 'terminated', 'source-ip': '10.0.0.255',
      'c-count': 5, 'd-count': 10, 'x-limit': 3.018e2, filename: 'image.png', location: null },
  };
  const cases = [
    [{ source: ['aws.ec2'] }, true],
    [{ source: ['aws.s3'] }, false],
    [{ region: [{ prefix: 'us-' }] }, true],
    [{ detail: { filename: [{ suffix: '.png' }] } }, true],
    [{ detail: { state: [{ 'anything-but': 'initializing' }] } }, true],
    [{ detail: { state: [{ 'anything-but': ['stopped', 'terminated'] }] } }, false],
    [{ detail: { state: [{ 'anything-but': { prefix: 'init' } }] } }, true],
    [{ detail: { 'c-count': [{ numeric: ['>', 0, '<=', 5] }] } }, true],
    [{ detail: { 'd-count': [{ numeric: ['<', 10] }] } }, false],
    [{ detail: { 'x-limit': [{ numeric: ['=', 301.8] }] } }, true],
    [{ detail: { 'instance-id': [{ exists: true }] } }, true],
    [{ detail: { 'no-such': [{ exists: false }] } }, true],
    [{ detail: { 'source-ip': [{ cidr: '10.0.0.0/24' }] } }, true],
    [{ detail: { 'source-ip': [{ cidr: '10.0.1.0/24' }] } }, false],
    [{ detail: { location: [null] } }, true],
    [{ resources: ['arn:aws:ec2:us-east-1:123456789012:instance/i-abcd1111'] }, true],
    [{ detail: { $or: [{ 'c-count': [{ numeric: ['>', 10] }] }, { 'd-count': [10] }] } }, true],
    [{ $or: [{ source: ['x'] }, { region: ['eu-west-1'] }] }, false],
    [{ 'detail-type': [{ 'equals-ignore-case': 'ec2 instance state-change notification' }] }, true],
    [{ detail: { filename: [{ wildcard: 'im*.png' }] } }, true],
  ];
  for (const [p, want] of cases) {
    const r = await eb.send(new TestEventPatternCommand({ EventPattern: JSON.stringify(p), Event: JSON.stringify(ev) }));
    assert.equal(r.Result, want, JSON.stringify(p));
  }
  await rejects(eb.send(new TestEventPatternCommand({ EventPattern: '{"detail":{"n":[{"numeric":[">"]}]}}',
    Event: JSON.stringify(ev) })), 'InvalidEventPatternException', /numeric/);
  await rejects(eb.send(new TestEventPatternCommand({ EventPattern: '{}', Event: '{"source":"x"}' })),
    'ValidationException', /Event is not valid/);
});

test('awscli: aws events put-events, list-rules', async () => {
  const env = { ...process.env, AWS_ACCESS_KEY_ID: 'sluice', AWS_SECRET_ACCESS_KEY: 'sluice',
    AWS_DEFAULT_REGION: 'us-east-1', AWS_PAGER: '', AWS_EC2_METADATA_DISABLED: 'true' };
  const aws = (...args) => {
    const r = spawnSync('aws', ['--endpoint-url', b.endpoint, '--output', 'json', ...args], { env, encoding: 'utf8' });
    assert.equal(r.status, 0, `aws ${args.join(' ')}: ${r.stderr}`);
    return JSON.parse(r.stdout);
  };
  const r = aws('events', 'put-events', '--entries',
    JSON.stringify([{ Source: 'cli', DetailType: 't', Detail: '{"from":"awscli"}' }]));
  assert.equal(r.FailedEntryCount, 0);
  assert.match(r.Entries[0].EventId, /^[0-9a-f-]{36}$/);
  aws('events', 'put-rule', '--name', 'cli-rule', '--event-pattern', '{"source":["cli"]}');
  const l = aws('events', 'list-rules', '--name-prefix', 'cli-');
  assert.deepEqual(l.Rules.map((x) => x.Name), ['cli-rule']);
});

// ---- the sluice CLI: the same API over the native connection ------------------------------

function cli(...args) {
  const r = spawnSync(process.env.SLUICE_CLI_PATH, ['--broker', `127.0.0.1:${b.port}`, ...args],
    { encoding: 'utf8', timeout: 20000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('sluice bus/rule/archive/replay: rules the SDK sees and serves, a replay marked as one, errors named', async () => {
  const ep = await endpoint();
  try {
    await cliFlow(ep);
  } finally {
    ep.close();
  }
});

async function cliFlow(ep) {
  let r = cli('bus', 'create', 'clibus');
  assert.equal(r.code, 0, r.err);
  assert.ok((await eb.send(new ListEventBusesCommand({}))).EventBuses.some((x) => x.Name === 'clibus'));
  r = cli('rule', 'put', 'shipped', '--bus', 'clibus', '--pattern', '{"source":["cli"],"detail":{"state":["shipped"]}}',
    '--target', ep.url, '--description', 'from the CLI');
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /rule\/clibus\/shipped/);
  const d = await eb.send(new DescribeRuleCommand({ Name: 'shipped', EventBusName: 'clibus' }));
  assert.equal(d.Description, 'from the CLI');
  assert.deepEqual(JSON.parse(d.EventPattern), { source: ['cli'], detail: { state: ['shipped'] } });
  const t = await eb.send(new ListTargetsByRuleCommand({ Rule: 'shipped', EventBusName: 'clibus' }));
  assert.deepEqual(t.Targets.map((x) => x.Arn), [ep.url]);

  const put = (n, state) => eb.send(new PutEventsCommand({ Entries: [entry('cli', { n, state }, { EventBusName: 'clibus' })] }));
  r = cli('archive', 'create', 'cliarc', '--bus', 'clibus', '--days', '7');
  assert.equal(r.code, 0, r.err);
  await sleep(1100);
  const t0 = new Date();
  await put(1, 'shipped');
  await put(2, 'pending');
  await put(3, 'shipped');
  await until('2 live events', () => ep.events.length >= 2);
  await sleep(1100);
  const t1 = new Date();
  assert.deepEqual(ep.events.map((e) => e.detail.n), [1, 3], 'only the matches');

  r = cli('rule', 'list', '--bus', 'clibus', '--json');
  assert.equal(r.code, 0, r.err);
  const rules = JSON.parse(r.out);
  assert.deepEqual(rules.map((x) => [x.Name, x.State, x.Targets.map((y) => y.Arn)]), [['shipped', 'ENABLED', [ep.url]]]);
  r = cli('rule', 'list', '--bus', 'clibus');
  assert.match(r.out, /^shipped\s+ENABLED/m);

  r = cli('replay', 'start', 'clibus', '--name', 'cli-again', '--from', t0.toISOString(), '--to', t1.toISOString(),
    '--rule', 'shipped');
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /replay cli-again of archive cliarc/);
  await until('replay COMPLETED', () => JSON.parse(cli('replay', 'describe', 'cli-again', '--json').out).State === 'COMPLETED');
  await until('2 replayed events', () => ep.events.length >= 4);
  await sleep(500);
  assert.deepEqual(ep.events.map((e) => [e.detail.n, e['replay-name'] ?? null]),
    [[1, null], [3, null], [1, 'cli-again'], [3, 'cli-again']]);
  r = cli('replay', 'describe', 'cli-again');
  assert.match(r.out, /state\s+COMPLETED/);
  assert.ok(JSON.parse(cli('replay', 'list', '--json').out).some((x) => x.ReplayName === 'cli-again'));

  // errors: the API's own, named; usage errors before any call
  r = cli('rule', 'put', 'bad', '--bus', 'clibus', '--pattern', '{"source": "x"}');
  assert.equal(r.code, 1);
  assert.match(r.err, /InvalidEventPatternException/);
  r = cli('rule', 'put', 'bad', '--bus', 'clibus', '--pattern', '{}', '--target', 'ftp://x');
  assert.equal(r.code, 2, 'a target that is neither a URL nor an ARN is a usage error');
  r = cli('replay', 'start', 'clibus', '--from', 'yesterday', '--to', 'now');
  assert.equal(r.code, 2);
  assert.match(r.err, /ISO-8601/);
  r = cli('replay', 'start', 'default', '--from', t0.toISOString(), '--to', 'now');
  assert.equal(r.code, 1);
  assert.match(r.err, /has 0 archives: create one first/);

  r = cli('rule', 'delete', 'shipped', '--bus', 'clibus');
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /1 target removed/);
  assert.deepEqual((await eb.send(new ListRulesCommand({ EventBusName: 'clibus' }))).Rules, []);
  r = cli('rule', 'delete', 'shipped', '--bus', 'clibus');
  assert.equal(r.code, 1);
  assert.match(r.err, /ResourceNotFoundException/);
  assert.equal(cli('archive', 'delete', 'cliarc').code, 0);
  assert.equal(cli('bus', 'delete', 'clibus').code, 0);
  assert.ok(!(await eb.send(new ListEventBusesCommand({}))).EventBuses.some((x) => x.Name === 'clibus'));
}

test('sluice rule with auth on: the native user\'s ACLs decide, as for its access key', async () => {
  const line = (user, pw) => execFileSync(process.env.SLUICED_PATH, ['--hash-password', user],
    { input: pw, encoding: 'utf8' }).trim();
  const auth = [line('admin', 'pw-admin'), line('writer', 'pw-writer'),
    'awskey AKIDEBADMIN000000001 eb/secret+000000000000000000000000001 admin',
    'allow admin all *', 'allow writer produce eb.default'].join('\n');
  const a = await startAuthBroker(`${auth}\n`);
  try {
    const as = (user, pw, ...args) => spawnSync(process.env.SLUICE_CLI_PATH,
      ['--broker', `127.0.0.1:${a.port}`, '--user', user, ...args],
      { encoding: 'utf8', timeout: 20000, env: { ...process.env, SLUICE_PASSWORD: pw } });
    let r = as('writer', 'pw-writer', 'rule', 'put', 'w', '--pattern', '{"source":["x"]}');
    assert.equal(r.status, 1);
    assert.match(r.stderr, /AccessDeniedException: .*writer/);
    r = as('admin', 'pw-admin', 'rule', 'put', 'w', '--pattern', '{"source":["x"]}');
    assert.equal(r.status, 0, r.stderr);
    r = as('admin', 'pw-admin', 'rule', 'list', '--json');
    assert.deepEqual(JSON.parse(r.stdout).map((x) => x.Name), ['w']);
    r = as('admin', 'wrong', 'rule', 'list');
    assert.equal(r.status, 1, 'a wrong password is refused before any call');
    // signed (SigV4) calls: every operation reaches an access decision (none answers 500)
    const seb = new EventBridgeClient({ endpoint: a.endpoint, region: 'us-east-1',
      credentials: { accessKeyId: 'AKIDEBADMIN000000001', secretAccessKey: 'eb/secret+000000000000000000000000001' } });
    try {
      assert.ok((await seb.send(new ListEventBusesCommand({}))).EventBuses.some((x) => x.Name === 'default'));
      assert.deepEqual((await seb.send(new ListRulesCommand({}))).Rules.map((x) => x.Name), ['w']);
      const pe = await seb.send(new PutEventsCommand({ Entries: [entry('x', { n: 1 })] }));
      assert.equal(pe.FailedEntryCount, 0);
      const tp = await seb.send(new TestEventPatternCommand({ EventPattern: '{"source":["x"]}',
        Event: JSON.stringify({ id: '1', source: 'x', 'detail-type': 't', account: '1', time: '2026-12-06T00:00:00Z', region: 'us-east-1', resources: [], detail: {} }) }));
      assert.equal(tp.Result, true);
      await seb.send(new DeleteRuleCommand({ Name: 'w' }));
    } finally {
      seb.destroy();
    }
  } finally {
    await a.stop();
  }
});

test('a replay held up by a failing target reports its progress: EventLastReplayedTime stops at the event still pending', async () => {
  let failN = 2;
  const ep = await endpoint((ev) => ev.detail.n === failN);
  const got = ep.events;
  const { url } = ep;
  try {
    const bus = await eb.send(new CreateEventBusCommand({ Name: 'progressbus' }));
    const arc = await eb.send(new CreateArchiveCommand({ ArchiveName: 'progress', EventSourceArn: bus.EventBusArn }));
    await eb.send(new PutRuleCommand({ Name: 'p', EventBusName: 'progressbus', EventPattern: '{"source":["pg"]}' }));
    const put = (n) => eb.send(new PutEventsCommand({ Entries: [entry('pg', { n }, { EventBusName: 'progressbus' })] }));
    await sleep(1100);
    const t0 = new Date();
    await put(1);
    await sleep(300);
    const before2 = Date.now();
    await put(2);
    const after2 = Date.now();
    await sleep(300);
    await put(3);
    await sleep(1100);
    const t1 = new Date();
    // the rule gets its target only now: the live group starts after the events
    await eb.send(new PutTargetsCommand({ Rule: 'p', EventBusName: 'progressbus', Targets: [{ Id: 'h', Arn: url }] }));
    await eb.send(new StartReplayCommand({ ReplayName: 'held', EventSourceArn: arc.ArchiveArn,
      EventStartTime: t0, EventEndTime: t1, Destination: { Arn: bus.EventBusArn } }));
    const held = await until('RUNNING with progress', async () => {
      const x = await eb.send(new DescribeReplayCommand({ ReplayName: 'held' }));
      return x.State === 'RUNNING' && x.EventLastReplayedTime !== undefined && got.length >= 1 ? x : null;
    });
    const last = held.EventLastReplayedTime.getTime();
    assert.ok(last > t0.getTime() && last >= before2 - 1000 && last <= after2 + 1000,
      `EventLastReplayedTime ${last} is event 2's time (put between ${before2} and ${after2})`);
    await sleep(1500);
    const still = await eb.send(new DescribeReplayCommand({ ReplayName: 'held' }));
    assert.equal(still.State, 'RUNNING', 'not complete while event 2 fails');
    assert.ok(still.EventLastReplayedTime.getTime() <= after2 + 1000, 'no progress past the pending event');
    failN = -1; // the target heals: the retry goes through
    const done = await until('COMPLETED', async () => {
      const x = await eb.send(new DescribeReplayCommand({ ReplayName: 'held' }));
      return x.State === 'COMPLETED' ? x : null;
    }, 30000);
    assert.equal(done.EventLastReplayedTime.getTime(), t1.getTime());
    assert.deepEqual(got.map((e) => [e.detail.n, e['replay-name']]).sort(), [[1, 'held'], [2, 'held'], [3, 'held']]);
  } finally {
    ep.close();
  }
});
