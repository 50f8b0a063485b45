// kinesis_cluster.test.mjs - the Kinesis Data Streams API on a cluster of three real
// sluiced joined through a real ZooKeeper (#14), driven by the real AWS SDK for
// JavaScript v3 (@aws-sdk/client-kinesis), each client talking to one broker only, as an
// application pointed at one endpoint does.
//
// Covers: CreateStream through one broker makes a replicated stream (replication factor 3:
// `sluice cluster status` names three replicas per shard) that every broker describes;
// PutRecords through a broker that leads only some of the shards stores every record (the
// others' batches go to their leaders); GetRecords through a third broker reads every
// record once, in order per key (any replica serves reads up to its high watermark); after
// the leader of a shard is killed (SIGKILL) a client of a surviving broker keeps writing
// (failed entries retried as an application does) and every acknowledged record is read
// back (and /metrics of the survivors counts the 4 shards under-replicated, where before
// each broker held 4 live replicas, one leader per shard over the three); UpdateShardCount
// and AddTagsToStream on a replicated stream are refused with a
// message (not retried as a server failure); DeleteStream through one broker removes it
// from every broker. Skipped without java or the ZooKeeper jar.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  KinesisClient, CreateStreamCommand, DescribeStreamCommand, ListStreamsCommand,
  PutRecordsCommand, GetShardIteratorCommand, GetRecordsCommand, DeleteStreamCommand,
  AddTagsToStreamCommand, UpdateShardCountCommand,
} from '@aws-sdk/client-kinesis';
import { startBroker, startZooKeeper, until, httpGet } from './harness.mjs';

const CLI = process.env.SLUICE_CLI_PATH;
const zk = await startZooKeeper();
const skip = zk === null ? 'java or the ZooKeeper jar is missing' : false;
const brokers = [];
if (zk !== null) {
  const cluster = `zk://${zk.connect}/sluice-kc`;
  for (let i = 1; i <= 3; i++) {
    brokers.push(await startBroker(['--cluster', cluster, '--node-id', String(i),
      '--cluster-session-timeout-ms', '2000']));
  }
}
after(async () => {
  for (const b of brokers) if (!b.exited) await b.stop();
  if (zk !== null) zk.stop();
});

const creds = { accessKeyId: 'AKIDTEST', secretAccessKey: 'secret' };
const clients = [];
function client(b) {
  const c = new KinesisClient({
    endpoint: b.endpoint, region: 'us-east-1', credentials: creds, maxAttempts: 4,
  });
  clients.push(c);
  return c;
}
after(() => { for (const c of clients) c.destroy(); });

// A gauge's value in broker b's /metrics (name with its labels, as written), or undefined.
async function metric(b, name) {
  const r = await httpGet(b, '/metrics');
  const line = r.body.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.split(' ')[1]);
}

const enc = (s) => new TextEncoder().encode(s);
const dec = (u) => new TextDecoder().decode(u);

function status(b, stream) {
  const args = ['--broker', `127.0.0.1:${b.port}`, 'cluster', 'status'];
  if (stream) args.push('--stream', stream);
  const r = spawnSync(CLI, args, { encoding: 'utf8' });
  return r.status === 0 ? r.stdout : '';
}

// Puts `values` (key = value) through client c, retrying failed entries (throttling, a
// leader being elected) as an application does; returns when all were acknowledged.
async function putAll(c, stream, values) {
  let todo = values;
  for (let round = 0; todo.length > 0; round++) {
    assert.ok(round < 60, `records still failing after 60 rounds: ${todo.length}`);
    let out;
    try {
      out = await c.send(new PutRecordsCommand({
        StreamName: stream,
        Records: todo.map((v) => ({ Data: enc(v), PartitionKey: v.split('-')[0] })),
      }));
    } catch (e) {
      if (e.$metadata?.httpStatusCode >= 500 || e.name === 'ProvisionedThroughputExceededException') {
        await sleep(250);
        continue;
      }
      throw e;
    }
    todo = todo.filter((_, i) => out.Records[i].ErrorCode !== undefined);
    if (todo.length > 0) await sleep(250);
  }
}

// Every record of every shard, read through client c from TRIM_HORIZON.
async function readAll(c, stream) {
  const d = await c.send(new DescribeStreamCommand({ StreamName: stream }));
  const got = [];
  for (const sh of d.StreamDescription.Shards) {
    let it = (await c.send(new GetShardIteratorCommand({
      StreamName: stream, ShardId: sh.ShardId, ShardIteratorType: 'TRIM_HORIZON',
    }))).ShardIterator;
    for (;;) {
      const r = await c.send(new GetRecordsCommand({ ShardIterator: it, Limit: 1000 }));
      for (const rec of r.Records) got.push({ shard: sh.ShardId, value: dec(rec.Data) });
      it = r.NextShardIterator;
      if (r.Records.length === 0) break;
    }
  }
  return got;
}

test('a Kinesis stream on a cluster: replicated, written and read through any broker, '
  + 'through a leader\'s death, deleted everywhere', { skip }, async () => {
  await until('three live brokers', () => status(brokers[0]).includes('3 live brokers'), 20000,
    100);
  const [c1, c2, c3] = brokers.map(client);
  await c1.send(new CreateStreamCommand({ StreamName: 'kc', ShardCount: 4 }));
  // every broker describes it (each makes it from ZooKeeper), with three replicas per shard
  for (const c of [c1, c2, c3]) {
    await until('the stream on every broker', async () => {
      try {
        const d = await c.send(new DescribeStreamCommand({ StreamName: 'kc' }));
        return d.StreamDescription.Shards.length === 4;
      } catch { return false; }
    }, 15000, 100);
  }
  // `sluice cluster status --stream kc`: a row per shard, SHARD LEADER EPOCH REPLICAS ISR
  const rows = await until('a leader per shard', () => {
    const r = status(brokers[2], 'kc').split('\n').filter((l) => l.startsWith('kc '))
      .map((l) => l.trim().split(/\s+/))
      .map((f) => ({ shard: +f[1], leader: +f[2], replicas: f[4].split(',').map(Number) }));
    return r.length === 4 && r.every((x) => x.leader >= 1) ? r : null;
  }, 15000, 100);
  for (const r of rows) assert.deepEqual([...r.replicas].sort(), [1, 2, 3], 'three replicas');
  // /metrics: each broker holds 4 replicas, the leaders of the 4 shards among them
  let leaders = 0;
  for (const b of brokers) {
    const led = await metric(b, 'sluice_cluster_replicas{role="leader"}');
    const fol = await metric(b, 'sluice_cluster_replicas{role="follower"}');
    assert.equal(led + fol, 4, 'every shard has a live replica on every broker');
    assert.equal(await metric(b, 'sluice_cluster_under_replicated_shards'), 0);
    assert.equal(await metric(b, 'sluice_cluster_offline_shards'), 0);
    leaders += led;
  }
  assert.equal(leaders, 4, 'one leader per shard over the brokers');
  const listed = (await c3.send(new ListStreamsCommand({}))).StreamNames;
  assert.ok(listed.includes('kc'));

  // 400 values over 40 keys through broker 2: forwarded where it does not lead
  const first = [];
  for (let i = 0; i < 400; i++) first.push(`k${i % 40}-${String(i).padStart(4, '0')}`);
  await putAll(c2, 'kc', first);
  const got = await until('every record readable through broker 3', async () => {
    const r = await readAll(c3, 'kc');
    return r.length >= first.length ? r : null;
  }, 15000, 200);
  assert.equal(got.length, first.length, 'each record once');
  assert.deepEqual(new Set(got.map((r) => r.value)), new Set(first));
  const perKey = new Map();
  for (const r of got) {
    const [k, n] = r.value.split('-');
    assert.ok(!perKey.has(k) || perKey.get(k).shard === r.shard, `key ${k} on one shard`);
    assert.ok(!perKey.has(k) || perKey.get(k).n < n, `key ${k} in order`);
    perKey.set(k, { shard: r.shard, n });
  }

  // what only one broker would change is refused, not retried as a failure
  await assert.rejects(c1.send(new AddTagsToStreamCommand({ StreamName: 'kc', Tags: { a: 'b' } })),
    (e) => e.name === 'InvalidArgumentException' && /replicated/.test(e.message));
  await assert.rejects(c1.send(new UpdateShardCountCommand({
    StreamName: 'kc', TargetShardCount: 8, ScalingType: 'UNIFORM_SCALING',
  })), (e) => e.$metadata.httpStatusCode < 500 && /replicated/.test(e.message));

  // broker 1 dies (it leads some shards: placement is round the brokers); clients of
  // brokers 2 and 3 go on
  assert.ok(rows.some((r) => r.leader === 1), 'broker 1 leads a shard');
  await brokers[0].kill9();
  const second = [];
  for (let i = 0; i < 200; i++) second.push(`k${i % 40}-${String(1000 + i).padStart(4, '0')}`);
  await putAll(c2, 'kc', second);
  const all = await until('every acknowledged record readable through broker 3', async () => {
    let r;
    try { r = await readAll(c3, 'kc'); } catch { return null; }
    const seen = new Set(r.map((x) => x.value));
    return [...first, ...second].every((v) => seen.has(v)) ? r : null;
  }, 20000, 250);
  assert.ok(all.length >= first.length + second.length);
  // with broker 1 gone, every shard's ISR lacks it: the survivors' leaders say so
  await until('the shards under-replicated on /metrics', async () => {
    let n = 0;
    for (const b of brokers.slice(1)) n += await metric(b, 'sluice_cluster_under_replicated_shards');
    return n === 4;
  }, 20000, 200);

  await c3.send(new DeleteStreamCommand({ StreamName: 'kc' }));
  for (const c of [c2, c3]) {
    await until('the stream gone from every live broker', async () => {
      try {
        await c.send(new DescribeStreamCommand({ StreamName: 'kc' }));
        return false;
      } catch (e) { return e.name === 'ResourceNotFoundException'; }
    }, 15000, 100);
  }
  await brokers[0].restart(); // its copy, deleted while it was away, goes at its start
  const c1b = client(brokers[0]);
  await until('the stream gone from the restarted broker too', async () => {
    try {
      await c1b.send(new DescribeStreamCommand({ StreamName: 'kc' }));
      return false;
    } catch (e) { return e.name === 'ResourceNotFoundException'; }
  }, 15000, 100);
});
