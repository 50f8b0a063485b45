// kinesis.test.mjs - the Kinesis Data Streams API of the real sluiced, driven
// by the real AWS SDK for JavaScript v3 (@aws-sdk/client-kinesis) over its
// default handler (HTTP/2 cleartext) and over HTTP/1.1 (NodeHttpHandler),
// by the Debian awscli (/usr/bin/aws) and by boto3, plus raw requests for
// what an SDK will not send (bad base64, malformed JSON, unknown operations).
//
// Covers: create/describe (hash ranges cover 0..2^128-1 without gaps),
// PutRecords (500 records, many keys) read back through GetRecords paging:
// every record once, per-key order, each key on the shard whose range holds
// MD5(key); ExplicitHashKey routing; AT_TIMESTAMP, AFTER_SEQUENCE_NUMBER,
// LATEST; ListShards/ListStreams paging; retention, tags and registered
// consumers surviving a restart; the AWS error names; SubscribeToShard read
// through the SDK's event stream; CBOR bodies (the SDK's own CBOR codec).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  KinesisClient, CreateStreamCommand, DescribeStreamCommand, DescribeStreamSummaryCommand,
  ListStreamsCommand, ListShardsCommand, PutRecordCommand, PutRecordsCommand,
  GetShardIteratorCommand, GetRecordsCommand, DeleteStreamCommand,
  IncreaseStreamRetentionPeriodCommand, DecreaseStreamRetentionPeriodCommand,
  AddTagsToStreamCommand, ListTagsForStreamCommand, RemoveTagsFromStreamCommand,
  RegisterStreamConsumerCommand, DescribeStreamConsumerCommand, ListStreamConsumersCommand,
  DeregisterStreamConsumerCommand, SubscribeToShardCommand, SplitShardCommand,
  MergeShardsCommand, UpdateShardCountCommand,
} from '@aws-sdk/client-kinesis';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { cbor, dateToTag } from '@smithy/core/cbor';
import { startBroker } from './harness.mjs';

const b = await startBroker();
after(() => b.stop());

const TWO128 = 1n << 128n;
const creds = { accessKeyId: 'AKIDTEST', secretAccessKey: 'secret' };
const clients = [];
function client(h1) {
  const c = new KinesisClient({
    endpoint: b.endpoint, region: 'us-east-1', credentials: creds, maxAttempts: 1,
    ...(h1 ? { requestHandler: new NodeHttpHandler() } : {}),
  });
  clients.push(c);
  return c;
}
after(() => { for (const c of clients) c.destroy(); });

const md5 = (s) => BigInt('0x' + createHash('md5').update(s, 'utf8').digest('hex'));
const enc = (s) => new TextEncoder().encode(s);
const dec = (u) => new TextDecoder().decode(u);

// The shard whose [start, end] holds h.
function shardFor(shards, h) {
  const s = shards.find((x) => BigInt(x.HashKeyRange.StartingHashKey) <= h &&
    h <= BigInt(x.HashKeyRange.EndingHashKey));
  assert.ok(s, `no shard holds ${h}`);
  return s.ShardId;
}

function checkRanges(shards) {
  let next = 0n;
  for (const s of shards) {
    assert.equal(BigInt(s.HashKeyRange.StartingHashKey), next, `${s.ShardId} starts at ${next}`);
    const end = BigInt(s.HashKeyRange.EndingHashKey);
    assert.ok(end >= next);
    next = end + 1n;
  }
  assert.equal(next, TWO128, 'the ranges end at 2^128 - 1');
}

// Every record of a shard from an iterator, paging with NextShardIterator.
async function readAll(c, iterator, limit = 37) {
  const out = [];
  let it = iterator;
  for (let i = 0; i < 1000; i++) {
    const r = await c.send(new GetRecordsCommand({ ShardIterator: it, Limit: limit }));
    out.push(...r.Records);
    assert.ok(r.NextShardIterator, 'an open shard always gives a next iterator');
    it = r.NextShardIterator;
    if (r.Records.length === 0 && r.MillisBehindLatest === 0) return { records: out, next: it };
  }
  throw new Error('GetRecords never caught up');
}

async function iterator(c, StreamName, ShardId, type, extra = {}) {
  const r = await c.send(new GetShardIteratorCommand({ StreamName, ShardId, ShardIteratorType: type,
    ...extra }));
  return r.ShardIterator;
}

async function rejects(p, name, re) {
  await assert.rejects(p, (e) => {
    assert.equal(e.name, name, `${e.name}: ${e.message}`);
    if (re) assert.match(e.message, re);
    return true;
  });
}

async function raw(target, body, contentType = 'application/x-amz-json-1.1') {
  const r = await fetch(b.endpoint, {
    method: 'POST', body,
    headers: { 'x-amz-target': `Kinesis_20131202.${target}`, 'content-type': contentType },
  });
  return { status: r.status, type: r.headers.get('content-type'), json: await r.json() };
}

for (const h1 of [false, true]) {
  const label = h1 ? 'HTTP/1.1 (NodeHttpHandler)' : 'the default handler (HTTP/2)';
  const name = h1 ? 'orders-h1' : 'orders-h2';

  test(`put 500 records and read every one back exactly once, in key order, over ${label}`, async () => {
    const c = client(h1);
    await c.send(new CreateStreamCommand({ StreamName: name, ShardCount: 4 }));
    const d = (await c.send(new DescribeStreamCommand({ StreamName: name }))).StreamDescription;
    assert.equal(d.StreamStatus, 'ACTIVE');
    assert.equal(d.StreamARN, `arn:aws:kinesis:us-east-1:000000000000:stream/${name}`);
    assert.equal(d.HasMoreShards, false);
    assert.deepEqual(d.Shards.map((s) => s.ShardId), [0, 1, 2, 3].map((i) => `shardId-00000000000${i}`));
    checkRanges(d.Shards);

    const keys = Array.from({ length: 37 }, (_, i) => `key-${i}`);
    const Records = Array.from({ length: 500 }, (_, i) => ({
      PartitionKey: keys[i % keys.length], Data: enc(`${keys[i % keys.length]}#${Math.floor(i / keys.length)}`),
    }));
    const put = await c.send(new PutRecordsCommand({ StreamName: name, Records }));
    assert.equal(put.FailedRecordCount, 0);
    assert.equal(put.Records.length, 500);
    put.Records.forEach((r, i) => {
      assert.equal(r.ShardId, shardFor(d.Shards, md5(Records[i].PartitionKey)), `record ${i}`);
      assert.match(r.SequenceNumber, /^\d+$/);
    });

    const seen = new Map();
    const keyShard = new Map();
    for (const s of d.Shards) {
      const { records } = await readAll(c, await iterator(c, name, s.ShardId, 'TRIM_HORIZON'));
      let lastSeq = -1n;
      for (const r of records) {
        const data = dec(r.Data);
        assert.ok(!seen.has(data), `${data} read twice`);
        const [key, n] = data.split('#');
        assert.equal(r.PartitionKey, key);
        assert.equal(s.ShardId, shardFor(d.Shards, md5(key)), `${key} on the shard holding MD5(key)`);
        if (keyShard.has(key)) assert.equal(keyShard.get(key), s.ShardId, `${key} on one shard`);
        keyShard.set(key, s.ShardId);
        assert.ok(BigInt(r.SequenceNumber) > lastSeq, 'sequence numbers increase in a shard');
        lastSeq = BigInt(r.SequenceNumber);
        assert.ok(r.ApproximateArrivalTimestamp instanceof Date);
        assert.ok(Math.abs(r.ApproximateArrivalTimestamp.getTime() - Date.now()) < 60000);
        seen.set(data, Number(n));
      }
      // per-key order: the counters of each key come back 0, 1, 2, ...
      const perKey = new Map();
      for (const r of records) {
        const [key, n] = dec(r.Data).split('#');
        const expect = perKey.get(key) ?? 0;
        assert.equal(Number(n), expect, `${key}: record ${n} after ${expect - 1}`);
        perKey.set(key, expect + 1);
      }
    }
    assert.equal(seen.size, 500, 'every record read back');
    // the sequence numbers PutRecords answered are the ones GetRecords shows
    const bySeq = new Set(put.Records.map((r) => `${r.ShardId}/${r.SequenceNumber}`));
    assert.equal(bySeq.size, 500);
  });

  test(`ExplicitHashKey, AT_TIMESTAMP, AFTER_SEQUENCE_NUMBER and LATEST over ${label}`, async () => {
    const c = client(h1);
    const d = (await c.send(new DescribeStreamCommand({ StreamName: name }))).StreamDescription;
    const s2 = d.Shards[2];
    const h = BigInt(s2.HashKeyRange.StartingHashKey) + 5n;
    const pr = await c.send(new PutRecordCommand({ StreamName: name, PartitionKey: 'x',
      ExplicitHashKey: h.toString(), Data: enc('explicit') }));
    assert.equal(pr.ShardId, s2.ShardId);
    const last = await c.send(new PutRecordCommand({ StreamName: name, PartitionKey: 'x',
      ExplicitHashKey: (TWO128 - 1n).toString(), Data: enc('top') }));
    assert.equal(last.ShardId, 'shardId-000000000003');
    const first = await c.send(new PutRecordCommand({ StreamName: name, PartitionKey: 'x',
      ExplicitHashKey: '0', Data: enc('bottom') }));
    assert.equal(first.ShardId, 'shardId-000000000000');

    // AT_TIMESTAMP: only what was appended after the time
    const key = 'time-key';
    const shard = shardFor(d.Shards, md5(key));
    for (let i = 0; i < 3; i++) {
      await c.send(new PutRecordCommand({ StreamName: name, PartitionKey: key, Data: enc(`before-${i}`) }));
    }
    await sleep(60);
    const t = new Date();
    await sleep(60);
    const after1 = [];
    for (let i = 0; i < 3; i++) {
      after1.push(await c.send(new PutRecordCommand({ StreamName: name, PartitionKey: key,
        Data: enc(`after-${i}`) })));
    }
    const at = await readAll(c, await iterator(c, name, shard, 'AT_TIMESTAMP', { Timestamp: t }));
    assert.deepEqual(at.records.map((r) => dec(r.Data)), ['after-0', 'after-1', 'after-2']);
    assert.ok(at.records.every((r) => r.ApproximateArrivalTimestamp >= t));

    // AT_ / AFTER_SEQUENCE_NUMBER
    const seq0 = after1[0].SequenceNumber;
    const afterSeq = await readAll(c, await iterator(c, name, shard, 'AFTER_SEQUENCE_NUMBER',
      { StartingSequenceNumber: seq0 }));
    assert.deepEqual(afterSeq.records.map((r) => dec(r.Data)), ['after-1', 'after-2']);
    const atSeq = await readAll(c, await iterator(c, name, shard, 'AT_SEQUENCE_NUMBER',
      { StartingSequenceNumber: seq0 }));
    assert.deepEqual(atSeq.records.map((r) => dec(r.Data)), ['after-0', 'after-1', 'after-2']);

    // LATEST: nothing old, then exactly what comes next
    const latest = await readAll(c, await iterator(c, name, shard, 'LATEST'));
    assert.equal(latest.records.length, 0);
    await c.send(new PutRecordCommand({ StreamName: name, PartitionKey: key, Data: enc('new') }));
    const r = await c.send(new GetRecordsCommand({ ShardIterator: latest.next }));
    assert.deepEqual(r.Records.map((x) => dec(x.Data)), ['new']);
  });
}

test('ListStreams and ListShards page; DescribeStreamSummary; DeleteStream', async () => {
  const c = client(false);
  for (const n of ['list-a', 'list-b', 'list-c']) {
    await c.send(new CreateStreamCommand({ StreamName: n, ShardCount: 3 }));
  }
  const all = await c.send(new ListStreamsCommand({}));
  assert.ok(['list-a', 'list-b', 'list-c'].every((n) => all.StreamNames.includes(n)));
  assert.equal(all.HasMoreStreams, false);
  assert.equal(all.StreamSummaries.find((s) => s.StreamName === 'list-b').StreamStatus, 'ACTIVE');
  const p1 = await c.send(new ListStreamsCommand({ Limit: 1, ExclusiveStartStreamName: 'list-a' }));
  assert.deepEqual(p1.StreamNames, ['list-b']);
  assert.equal(p1.HasMoreStreams, true);

  const s1 = await c.send(new ListShardsCommand({ StreamName: 'list-a', MaxResults: 2 }));
  assert.equal(s1.Shards.length, 2);
  assert.ok(s1.NextToken);
  const s2 = await c.send(new ListShardsCommand({ NextToken: s1.NextToken }));
  assert.deepEqual(s2.Shards.map((s) => s.ShardId), ['shardId-000000000002']);
  checkRanges([...s1.Shards, ...s2.Shards]);

  const sum = (await c.send(new DescribeStreamSummaryCommand({ StreamName: 'list-a' })))
    .StreamDescriptionSummary;
  assert.equal(sum.OpenShardCount, 3);
  assert.equal(sum.RetentionPeriodHours, 24);
  assert.equal(sum.StreamStatus, 'ACTIVE');

  const od = 'on-demand';
  await c.send(new CreateStreamCommand({ StreamName: od, StreamModeDetails: { StreamMode: 'ON_DEMAND' } }));
  const ods = (await c.send(new DescribeStreamSummaryCommand({ StreamName: od }))).StreamDescriptionSummary;
  assert.equal(ods.StreamModeDetails.StreamMode, 'ON_DEMAND');
  assert.ok(ods.OpenShardCount >= 1);

  await c.send(new DeleteStreamCommand({ StreamName: 'list-c' }));
  await rejects(c.send(new DescribeStreamCommand({ StreamName: 'list-c' })), 'ResourceNotFoundException');
  const after2 = await c.send(new ListStreamsCommand({}));
  assert.ok(!after2.StreamNames.includes('list-c'));
});

test('the AWS errors: unknown stream, duplicate, bad iterators, limits, bad input', async () => {
  const c = client(false);
  await rejects(c.send(new DescribeStreamCommand({ StreamName: 'no-such' })), 'ResourceNotFoundException');
  await rejects(c.send(new PutRecordCommand({ StreamName: 'no-such', PartitionKey: 'k', Data: enc('x') })),
    'ResourceNotFoundException');
  await c.send(new CreateStreamCommand({ StreamName: 'errs', ShardCount: 1 }));
  await rejects(c.send(new CreateStreamCommand({ StreamName: 'errs', ShardCount: 1 })), 'ResourceInUseException');
  await rejects(c.send(new CreateStreamCommand({ StreamName: 'bad/name', ShardCount: 1 })),
    'InvalidArgumentException');
  await rejects(c.send(new GetShardIteratorCommand({ StreamName: 'errs', ShardId: 'shardId-000000000007',
    ShardIteratorType: 'TRIM_HORIZON' })), 'ResourceNotFoundException');

  // iterators: garbage, one altered byte, one from a deleted-and-recreated stream
  await rejects(c.send(new GetRecordsCommand({ ShardIterator: 'not-an-iterator' })), 'InvalidArgumentException');
  const it = await iterator(c, 'errs', 'shardId-000000000000', 'TRIM_HORIZON');
  const bytes = Buffer.from(it, 'base64');
  bytes[9] ^= 1; // the position
  await rejects(c.send(new GetRecordsCommand({ ShardIterator: bytes.toString('base64') })),
    'InvalidArgumentException', /signature/);
  const mac = Buffer.from(it, 'base64');
  mac[mac.length - 1] ^= 0x80;
  await rejects(c.send(new GetRecordsCommand({ ShardIterator: mac.toString('base64') })),
    'InvalidArgumentException');
  await c.send(new DeleteStreamCommand({ StreamName: 'errs' }));
  await c.send(new CreateStreamCommand({ StreamName: 'errs', ShardCount: 1 }));
  await rejects(c.send(new GetRecordsCommand({ ShardIterator: it })), 'ResourceNotFoundException');

  // limits
  await assert.rejects(c.send(new PutRecordCommand({ StreamName: 'errs', PartitionKey: 'k',
    Data: new Uint8Array((1 << 20) + 1) })), (e) => {
    assert.equal(e.$metadata.httpStatusCode, 400);
    assert.equal(e.name, 'InvalidArgumentException');
    assert.match(e.message, /1 MiB/);
    return true;
  });
  await rejects(c.send(new PutRecordCommand({ StreamName: 'errs', PartitionKey: 'k'.repeat(257),
    Data: enc('x') })), 'InvalidArgumentException', /PartitionKey/);
  await rejects(c.send(new PutRecordCommand({ StreamName: 'errs', PartitionKey: 'k',
    ExplicitHashKey: TWO128.toString(), Data: enc('x') })), 'InvalidArgumentException', /ExplicitHashKey/);
  await rejects(c.send(new PutRecordsCommand({ StreamName: 'errs', Records: Array.from({ length: 501 },
    () => ({ PartitionKey: 'k', Data: enc('x') })) })), 'InvalidArgumentException', /500/);
  const it2 = await iterator(c, 'errs', 'shardId-000000000000', 'LATEST');
  await rejects(c.send(new GetRecordsCommand({ ShardIterator: it2, Limit: 10001 })), 'InvalidArgumentException');
  await rejects(c.send(new GetShardIteratorCommand({ StreamName: 'errs', ShardId: 'shardId-000000000000',
    ShardIteratorType: 'AT_SEQUENCE_NUMBER', StartingSequenceNumber: '99999' })), 'InvalidArgumentException');

  // what an SDK will not send
  let r = await raw('PutRecord', JSON.stringify({ StreamName: 'errs', PartitionKey: 'k', Data: 'not base64!' }));
  assert.equal(r.status, 400);
  assert.equal(r.type, 'application/x-amz-json-1.1');
  assert.equal(r.json.__type, 'SerializationException');
  r = await raw('PutRecords', JSON.stringify({ StreamName: 'errs', Records: [{ PartitionKey: 'k', Data: 'QQ=' }] }));
  assert.equal(r.json.__type, 'SerializationException');
  r = await raw('PutRecord', '{"StreamName": "errs", "PartitionKey": ');
  assert.equal(r.status, 400);
  assert.equal(r.json.__type, 'SerializationException');
  r = await raw('PutRecord', '[1,2]');
  assert.equal(r.json.__type, 'SerializationException');
  r = await raw('DescribeStream', JSON.stringify({ StreamName: 42 }));
  assert.equal(r.status, 400);
  r = await raw('StartStreamEncryption', '{}');
  assert.equal(r.status, 400);
  assert.equal(r.json.__type, 'UnknownOperationException');
  r = await raw('MergeShards', '{}');
  assert.equal(r.status, 400);
  assert.equal(r.json.__type, 'InvalidArgumentException');
  // a good raw put still works (base64 in, decimal sequence out)
  r = await raw('PutRecord', JSON.stringify({ StreamName: 'errs', PartitionKey: 'k', Data: 'aGk=' }));
  assert.equal(r.status, 200);
  assert.match(r.json.SequenceNumber, /^\d+$/);
});

test('registered consumers: register, describe, list, deregister', async () => {
  const c = client(true);
  await c.send(new CreateStreamCommand({ StreamName: 'fanout', ShardCount: 1 }));
  const arn = (await c.send(new DescribeStreamSummaryCommand({ StreamName: 'fanout' })))
    .StreamDescriptionSummary.StreamARN;
  const reg = (await c.send(new RegisterStreamConsumerCommand({ StreamARN: arn, ConsumerName: 'app1' }))).Consumer;
  assert.equal(reg.ConsumerStatus, 'ACTIVE');
  assert.match(reg.ConsumerARN, new RegExp(`^${arn}/consumer/app1:\\d+$`));
  await rejects(c.send(new RegisterStreamConsumerCommand({ StreamARN: arn, ConsumerName: 'app1' })),
    'ResourceInUseException');
  const desc = (await c.send(new DescribeStreamConsumerCommand({ ConsumerARN: reg.ConsumerARN })))
    .ConsumerDescription;
  assert.equal(desc.ConsumerName, 'app1');
  assert.equal(desc.StreamARN, arn);
  const list = await c.send(new ListStreamConsumersCommand({ StreamARN: arn }));
  assert.deepEqual(list.Consumers.map((x) => x.ConsumerName), ['app1']);
  await c.send(new DeregisterStreamConsumerCommand({ StreamARN: arn, ConsumerName: 'app1' }));
  await rejects(c.send(new DescribeStreamConsumerCommand({ StreamARN: arn, ConsumerName: 'app1' })),
    'ResourceNotFoundException');
});

test('retention, tags, consumers and records survive a broker restart', async () => {
  let c = client(false);
  const StreamName = 'durable';
  await c.send(new CreateStreamCommand({ StreamName, ShardCount: 2 }));
  await c.send(new IncreaseStreamRetentionPeriodCommand({ StreamName, RetentionPeriodHours: 72 }));
  await rejects(c.send(new IncreaseStreamRetentionPeriodCommand({ StreamName, RetentionPeriodHours: 48 })),
    'InvalidArgumentException');
  await rejects(c.send(new IncreaseStreamRetentionPeriodCommand({ StreamName, RetentionPeriodHours: 8761 })),
    'InvalidArgumentException');
  await c.send(new AddTagsToStreamCommand({ StreamName, Tags: { team: 'data', 'with space': 'a=b%c', gone: 'x' } }));
  await c.send(new RemoveTagsFromStreamCommand({ StreamName, TagKeys: ['gone'] }));
  // 50 tags at most; a refused request changes nothing (not even the tags it overwrites)
  const many = Object.fromEntries(Array.from({ length: 48 }, (_, i) => [`t${i}`, `v${i}`]));
  await c.send(new AddTagsToStreamCommand({ StreamName, Tags: many }));
  await rejects(c.send(new AddTagsToStreamCommand({ StreamName, Tags: { team: 'changed', extra: 'x' } })),
    'LimitExceededException');
  await c.send(new RemoveTagsFromStreamCommand({ StreamName, TagKeys: Object.keys(many) }));
  const arn = (await c.send(new DescribeStreamSummaryCommand({ StreamName }))).StreamDescriptionSummary.StreamARN;
  await c.send(new RegisterStreamConsumerCommand({ StreamARN: arn, ConsumerName: 'kept' }));
  const put = await c.send(new PutRecordCommand({ StreamName, PartitionKey: 'p', Data: enc('kept') }));

  await b.stop();
  await b.restart();
  c = client(false);
  let sum = (await c.send(new DescribeStreamSummaryCommand({ StreamName }))).StreamDescriptionSummary;
  assert.equal(sum.RetentionPeriodHours, 72);
  assert.equal(sum.ConsumerCount, 1);
  const tags = await c.send(new ListTagsForStreamCommand({ StreamName }));
  assert.deepEqual(tags.Tags, [{ Key: 'team', Value: 'data' }, { Key: 'with space', Value: 'a=b%c' }]);
  assert.equal(tags.HasMoreTags, false);
  const cons = await c.send(new ListStreamConsumersCommand({ StreamARN: arn }));
  assert.deepEqual(cons.Consumers.map((x) => x.ConsumerName), ['kept']);
  const it = await iterator(c, StreamName, put.ShardId, 'TRIM_HORIZON');
  const { records } = await readAll(c, it);
  assert.deepEqual(records.map((r) => dec(r.Data)), ['kept']);

  await c.send(new DecreaseStreamRetentionPeriodCommand({ StreamName, RetentionPeriodHours: 30 }));
  await rejects(c.send(new DecreaseStreamRetentionPeriodCommand({ StreamName, RetentionPeriodHours: 23 })),
    'InvalidArgumentException');
  await b.stop();
  await b.restart();
  c = client(true);
  sum = (await c.send(new DescribeStreamSummaryCommand({ StreamName }))).StreamDescriptionSummary;
  assert.equal(sum.RetentionPeriodHours, 30);
});

test('SubscribeToShard pushes old and new records as events (HTTP/2 event stream)', async () => {
  const c = client(false);
  const StreamName = 'pushed';
  await c.send(new CreateStreamCommand({ StreamName, ShardCount: 1 }));
  const arn = (await c.send(new DescribeStreamSummaryCommand({ StreamName }))).StreamDescriptionSummary.StreamARN;
  const { Consumer } = await c.send(new RegisterStreamConsumerCommand({ StreamARN: arn, ConsumerName: 'push' }));
  for (let i = 0; i < 5; i++) {
    await c.send(new PutRecordCommand({ StreamName, PartitionKey: `k${i}`, Data: enc(`old-${i}`) }));
  }
  await rejects(c.send(new SubscribeToShardCommand({ ConsumerARN: `${arn}/consumer/nobody:1`,
    ShardId: 'shardId-000000000000', StartingPosition: { Type: 'TRIM_HORIZON' } })), 'ResourceNotFoundException');

  const sub = await c.send(new SubscribeToShardCommand({ ConsumerARN: Consumer.ConsumerARN,
    ShardId: 'shardId-000000000000', StartingPosition: { Type: 'TRIM_HORIZON' } }));
  const got = [];
  let events = 0;
  let last;
  const deadline = Date.now() + 8000;
  const producer = (async () => {
    await sleep(300);
    for (let i = 0; i < 5; i++) {
      await c.send(new PutRecordCommand({ StreamName, PartitionKey: `k${i}`, Data: enc(`new-${i}`) }));
    }
  })();
  for await (const ev of sub.EventStream) {
    assert.ok(ev.SubscribeToShardEvent, `an event: ${JSON.stringify(Object.keys(ev))}`);
    events++;
    last = ev.SubscribeToShardEvent;
    got.push(...last.Records.map((r) => dec(r.Data)));
    if (got.length >= 10 || Date.now() > deadline) break;
  }
  await producer;
  assert.deepEqual(got, [0, 1, 2, 3, 4].map((i) => `old-${i}`).concat([0, 1, 2, 3, 4].map((i) => `new-${i}`)));
  assert.ok(events >= 2, 'old records, then pushed ones, in separate events');
  assert.match(last.ContinuationSequenceNumber, /^\d+$/);
  assert.equal(BigInt(last.ContinuationSequenceNumber), 10n);
});

// application/x-amz-cbor-1.1 (the Java SDK's and the KCL's default), encoded
// with the CBOR codec the SDK itself ships (@smithy/core/cbor).
async function cborCall(op, body) {
  const r = await fetch(b.endpoint, { method: 'POST', body: body instanceof Uint8Array ? body : cbor.serialize(body),
    headers: { 'x-amz-target': `Kinesis_20131202.${op}`, 'content-type': 'application/x-amz-cbor-1.1' } });
  assert.equal(r.headers.get('content-type'), 'application/x-amz-cbor-1.1');
  return { status: r.status, body: cbor.deserialize(new Uint8Array(await r.arrayBuffer())) };
}

test('CBOR: byte-string Data in and out, tag-1 timestamps, CBOR errors', async () => {
  let r = await cborCall('CreateStream', { StreamName: 'cbor', ShardCount: 1 });
  assert.equal(r.status, 200);
  const bytes = new Uint8Array([0, 1, 2, 250, 255]);
  r = await cborCall('PutRecords', { StreamName: 'cbor', Records: [{ PartitionKey: 'a', Data: bytes },
    { PartitionKey: 'b', Data: new Uint8Array(0) }] });
  assert.equal(r.body.FailedRecordCount, 0);
  const t = Date.now() / 1000;
  await sleep(50);
  r = await cborCall('PutRecord', { StreamName: 'cbor', PartitionKey: 'c', Data: enc('late') });
  assert.equal(r.status, 200);
  r = await cborCall('GetShardIterator', { StreamName: 'cbor', ShardId: 'shardId-000000000000',
    ShardIteratorType: 'TRIM_HORIZON' });
  r = await cborCall('GetRecords', { ShardIterator: r.body.ShardIterator });
  assert.equal(r.status, 200);
  assert.deepEqual(r.body.Records.map((x) => x.PartitionKey), ['a', 'b', 'c']);
  assert.ok(r.body.Records[0].Data instanceof Uint8Array);
  assert.deepEqual([...r.body.Records[0].Data], [...bytes]);
  assert.equal(r.body.Records[1].Data.length, 0);
  assert.equal(r.body.Records[0].ApproximateArrivalTimestamp.tag, 1);
  assert.ok(Math.abs(r.body.Records[0].ApproximateArrivalTimestamp.value - t) < 60);
  // AT_TIMESTAMP with a tag-1 epoch time
  r = await cborCall('GetShardIterator', { StreamName: 'cbor', ShardId: 'shardId-000000000000',
    ShardIteratorType: 'AT_TIMESTAMP', Timestamp: dateToTag(new Date(t * 1000)) });
  assert.equal(r.status, 200);
  r = await cborCall('GetRecords', { ShardIterator: r.body.ShardIterator });
  assert.deepEqual(r.body.Records.map((x) => dec(x.Data)), ['late']);
  r = await cborCall('DescribeStream', { StreamName: 'nope' });
  assert.equal(r.status, 400);
  assert.equal(r.body.__type, 'ResourceNotFoundException');
  r = await cborCall('DescribeStream', new Uint8Array([0xa1, 0x61])); // truncated map
  assert.equal(r.status, 400);
  assert.equal(r.body.__type, 'SerializationException');
  // regress-cbor_map_count_bomb: 9 bytes declaring 2^32 map entries
  r = await cborCall('DescribeStream', new Uint8Array([0xbb, 0, 0, 0, 1, 0, 0, 0, 0]));
  assert.equal(r.body.__type, 'SerializationException');
});

// The Debian awscli: /usr/bin/aws (the `aws` on PATH may be a pyenv shim).
const AWS = '/usr/bin/aws';
const awsEnv = { ...process.env, AWS_ACCESS_KEY_ID: 'AKIDTEST', AWS_SECRET_ACCESS_KEY: 'secret',
  AWS_DEFAULT_REGION: 'us-east-1', AWS_PAGER: '', AWS_CONFIG_FILE: '/dev/null',
  AWS_SHARED_CREDENTIALS_FILE: '/dev/null' };
function aws(...args) {
  const r = spawnSync(AWS, ['--endpoint-url', b.endpoint, '--output', 'json', 'kinesis', ...args],
    { env: awsEnv, encoding: 'utf8' });
  assert.equal(r.status, 0, `aws ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim() === '' ? {} : JSON.parse(r.stdout);
}

test('resharding: SplitShard, MergeShards, UpdateShardCount; closed shards end with ChildShards', async () => {
  const k = client();
  const StreamName = 'kreshard';
  await k.send(new CreateStreamCommand({ StreamName, ShardCount: 2 }));
  const put = async (n, tag) => {
    const Records = Array.from({ length: n }, (_, i) => ({ PartitionKey: `pk-${i % 50}`, Data: enc(`${tag}-${i}`) }));
    const r = await k.send(new PutRecordsCommand({ StreamName, Records }));
    assert.equal(r.FailedRecordCount, 0);
    return r.Records.map((x) => x.ShardId);
  };
  await put(200, 'before');
  // times between the changes, for ListShards' timestamp filters (the broker keeps when each
  // shard closed; a child opened when its parent closed)
  const pause = () => new Promise((r) => setTimeout(r, 30));
  await pause();
  const tBeforeSplit = new Date();
  await pause();
  let shards = (await k.send(new ListShardsCommand({ StreamName }))).Shards;
  const s0 = shards[0];
  const lo = BigInt(s0.HashKeyRange.StartingHashKey), hi = BigInt(s0.HashKeyRange.EndingHashKey);
  const mid = lo + (hi - lo) / 2n;
  await k.send(new SplitShardCommand({ StreamName, ShardToSplit: s0.ShardId,
    NewStartingHashKey: mid.toString() }));
  shards = (await k.send(new ListShardsCommand({ StreamName }))).Shards;
  assert.equal(shards.length, 4);
  const [p, , c1, c2] = shards;
  assert.ok(p.SequenceNumberRange.EndingSequenceNumber, 'the closed parent has an end');
  assert.equal(c1.ParentShardId, p.ShardId);
  assert.equal(c2.ParentShardId, p.ShardId);
  // the children cover the parent exactly (once resharded, ranges are the lineage's 64-bit
  // ranges as high halves: within a few 2^64 of the 128-bit uniform ones reported before)
  assert.equal(p.HashKeyRange.StartingHashKey, c1.HashKeyRange.StartingHashKey);
  assert.equal(p.HashKeyRange.EndingHashKey, c2.HashKeyRange.EndingHashKey);
  assert.ok(BigInt(p.HashKeyRange.EndingHashKey) - hi <= (2n << 64n) &&
    hi - BigInt(p.HashKeyRange.EndingHashKey) <= (2n << 64n));
  assert.equal(BigInt(c1.HashKeyRange.StartingHashKey), lo);
  assert.equal(BigInt(c1.HashKeyRange.EndingHashKey) + 1n, BigInt(c2.HashKeyRange.StartingHashKey));
  const sum = (await k.send(new DescribeStreamSummaryCommand({ StreamName }))).StreamDescriptionSummary;
  assert.equal(sum.OpenShardCount, 3);
  // new records go to open shards only, each to the shard whose range holds its key
  const open = shards.filter((x) => !x.SequenceNumberRange.EndingSequenceNumber);
  const where = await put(200, 'after');
  for (let i = 0; i < where.length; i++) {
    assert.notEqual(where[i], p.ShardId);
    assert.equal(where[i], shardFor(open, md5(`pk-${i % 50}`)));
  }
  // reading the closed parent to its end: no iterator, its children
  let it = (await k.send(new GetShardIteratorCommand({ StreamName, ShardId: p.ShardId,
    ShardIteratorType: 'TRIM_HORIZON' }))).ShardIterator;
  let got = 0, last;
  for (let i = 0; i < 20 && it; i++) {
    last = await k.send(new GetRecordsCommand({ ShardIterator: it, Limit: 1000 }));
    got += last.Records.length;
    it = last.NextShardIterator;
  }
  assert.equal(it, undefined, 'a closed shard read to its end has no next iterator');
  assert.ok(got > 0);
  assert.deepEqual(last.ChildShards.map((x) => x.ShardId), [c1.ShardId, c2.ShardId]);
  assert.deepEqual(last.ChildShards[0].ParentShards, [p.ShardId]);
  // a subscription to the closed parent ends with its children
  const arn = (await k.send(new DescribeStreamSummaryCommand({ StreamName }))).StreamDescriptionSummary.StreamARN;
  const { Consumer } = await k.send(new RegisterStreamConsumerCommand({ StreamARN: arn, ConsumerName: 'efo' }));
  const h2 = client(false);
  const sub = await h2.send(new SubscribeToShardCommand({ ConsumerARN: Consumer.ConsumerARN,
    ShardId: p.ShardId, StartingPosition: { Type: 'TRIM_HORIZON' } }));
  let pushed = 0, end;
  for await (const ev of sub.EventStream) {
    pushed += ev.SubscribeToShardEvent.Records.length;
    end = ev.SubscribeToShardEvent;
  }
  assert.equal(pushed, got, 'every record of the parent, then the stream ends');
  assert.equal(end.ContinuationSequenceNumber, undefined);
  assert.deepEqual(end.ChildShards.map((x) => x.ShardId), [c1.ShardId, c2.ShardId]);
  // merge the two children back; then four uniform open shards
  await pause();
  const tBeforeMerge = new Date();
  await pause();
  await k.send(new MergeShardsCommand({ StreamName, ShardToMerge: c2.ShardId,
    AdjacentShardToMerge: c1.ShardId }));
  shards = (await k.send(new ListShardsCommand({ StreamName }))).Shards;
  const m = shards[4];
  assert.deepEqual([m.ParentShardId, m.AdjacentParentShardId].sort(), [c1.ShardId, c2.ShardId].sort());
  const u = await k.send(new UpdateShardCountCommand({ StreamName, TargetShardCount: 4,
    ScalingType: 'UNIFORM_SCALING' }));
  assert.equal(u.CurrentShardCount, 2);
  assert.equal(u.TargetShardCount, 4);
  const after4 = (await k.send(new DescribeStreamSummaryCommand({ StreamName }))).StreamDescriptionSummary;
  assert.equal(after4.OpenShardCount, 4);
  await put(100, 'four');
  // ListShards' ShardFilter: open now, open at the trim horizon, after a shard, paged
  const ids = async (f, extra = {}) =>
    (await k.send(new ListShardsCommand({ StreamName, ShardFilter: f, ...extra }))).Shards.map((x) => x.ShardId);
  const all = (await k.send(new ListShardsCommand({ StreamName }))).Shards;
  const openIds = all.filter((x) => !x.SequenceNumberRange.EndingSequenceNumber).map((x) => x.ShardId);
  assert.equal(openIds.length, 4);
  assert.deepEqual(await ids({ Type: 'AT_LATEST' }), openIds);
  assert.deepEqual(await ids({ Type: 'AT_TRIM_HORIZON' }), [all[0].ShardId, all[1].ShardId]);
  assert.deepEqual(await ids({ Type: 'FROM_TRIM_HORIZON' }), all.map((x) => x.ShardId));
  assert.deepEqual(await ids({ Type: 'AFTER_SHARD_ID', ShardId: all[3].ShardId }), all.slice(4).map((x) => x.ShardId));
  const paged = [];
  let page = await k.send(new ListShardsCommand({ StreamName, ShardFilter: { Type: 'AT_LATEST' }, MaxResults: 1 }));
  for (;;) {
    paged.push(...page.Shards.map((x) => x.ShardId));
    if (!page.NextToken) break;
    page = await k.send(new ListShardsCommand({ NextToken: page.NextToken, MaxResults: 1 }));
  }
  assert.deepEqual(paged, openIds);
  // ... open at a time; open at a time or opened since (paged too)
  const sid = (n) => `shardId-${String(n).padStart(12, '0')}`;
  assert.deepEqual(await ids({ Type: 'AT_TIMESTAMP', Timestamp: tBeforeSplit }), [sid(0), sid(1)]);
  assert.deepEqual(await ids({ Type: 'AT_TIMESTAMP', Timestamp: tBeforeMerge }), [sid(1), sid(2), sid(3)]);
  await pause();
  const now = new Date();
  assert.deepEqual(await ids({ Type: 'AT_TIMESTAMP', Timestamp: now }), openIds);
  assert.deepEqual(await ids({ Type: 'FROM_TIMESTAMP', Timestamp: now }), openIds);
  assert.deepEqual(await ids({ Type: 'FROM_TIMESTAMP', Timestamp: tBeforeSplit }), all.map((x) => x.ShardId));
  assert.deepEqual(await ids({ Type: 'FROM_TIMESTAMP', Timestamp: tBeforeMerge }),
    all.map((x) => x.ShardId).filter((x) => x !== sid(0)));
  const pagedT = [];
  page = await k.send(new ListShardsCommand({ StreamName, ShardFilter: { Type: 'AT_TIMESTAMP',
    Timestamp: tBeforeMerge }, MaxResults: 2 }));
  for (;;) {
    pagedT.push(...page.Shards.map((x) => x.ShardId));
    if (!page.NextToken) break;
    page = await k.send(new ListShardsCommand({ NextToken: page.NextToken, MaxResults: 2 }));
  }
  assert.deepEqual(pagedT, [sid(1), sid(2), sid(3)]);
  await assert.rejects(ids({ Type: 'AT_TIMESTAMP' }),
    (e) => e.name === 'InvalidArgumentException' && /Timestamp/.test(e.message));
  // refusals: a closed shard, a key outside the shard, non-neighbours
  await assert.rejects(k.send(new SplitShardCommand({ StreamName, ShardToSplit: p.ShardId,
    NewStartingHashKey: mid.toString() })), (e) => e.name === 'InvalidArgumentException');
  await assert.rejects(k.send(new SplitShardCommand({ StreamName, ShardToSplit: 'shardId-000000000099',
    NewStartingHashKey: '1' })), (e) => e.name === 'ResourceNotFoundException');
  await assert.rejects(k.send(new UpdateShardCountCommand({ StreamName, TargetShardCount: 4,
    ScalingType: 'UNIFORM_SCALING' })), (e) => e.name === 'InvalidArgumentException');
});

test('the awscli: create-stream, put-record, get-shard-iterator, get-records, list-streams', (t) => {
  if (!existsSync(AWS)) { t.skip('awscli is not installed (/usr/bin/aws)'); return; }
  aws('create-stream', '--stream-name', 'cli', '--shard-count', '2');
  const put = aws('put-record', '--cli-binary-format', 'raw-in-base64-out', '--stream-name', 'cli',
    '--partition-key', 'pk-1', '--data', 'hello from the cli');
  assert.match(put.SequenceNumber, /^\d+$/);
  const it = aws('get-shard-iterator', '--stream-name', 'cli', '--shard-id', put.ShardId,
    '--shard-iterator-type', 'TRIM_HORIZON').ShardIterator;
  const recs = aws('get-records', '--shard-iterator', it);
  assert.equal(recs.Records.length, 1);
  assert.equal(Buffer.from(recs.Records[0].Data, 'base64').toString(), 'hello from the cli');
  assert.equal(recs.Records[0].PartitionKey, 'pk-1');
  assert.ok(aws('list-streams').StreamNames.includes('cli'));
  const bad = spawnSync(AWS, ['--endpoint-url', b.endpoint, 'kinesis', 'describe-stream',
    '--stream-name', 'nope'], { env: awsEnv, encoding: 'utf8' });
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /ResourceNotFoundException/);
});

test('boto3: put_records and get_records', (t) => {
  const py = '/usr/bin/python3';
  if (spawnSync(py, ['-c', 'import boto3']).status !== 0) { t.skip('python3-boto3 is not installed'); return; }
  const script = `
import boto3, sys
k = boto3.client('kinesis', endpoint_url=sys.argv[1], region_name='us-east-1',
                 aws_access_key_id='AKIDTEST', aws_secret_access_key='secret')
k.create_stream(StreamName='boto', ShardCount=1)
r = k.put_records(StreamName='boto', Records=[{'Data': b'b%d' % i, 'PartitionKey': 'k%d' % i} for i in range(10)])
assert r['FailedRecordCount'] == 0, r
it = k.get_shard_iterator(StreamName='boto', ShardId='shardId-000000000000', ShardIteratorType='TRIM_HORIZON')['ShardIterator']
got = k.get_records(ShardIterator=it)['Records']
assert [x['Data'] for x in got] == [b'b%d' % i for i in range(10)], got
try:
    k.describe_stream(StreamName='nope')
    raise SystemExit('no error')
except k.exceptions.ResourceNotFoundException:
    pass
print('ok')
`;
  const r = spawnSync(py, ['-c', script, b.endpoint], { encoding: 'utf8',
    env: { ...process.env, AWS_CONFIG_FILE: '/dev/null', AWS_SHARED_CREDENTIALS_FILE: '/dev/null' } });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'ok');
});
