// push.test.mjs - push targets (#17) against real HTTP endpoints served by
// this test process: the real sluiced leases a queue group's records and
// POSTs them; the endpoints answer 2xx, partial batch failures, 500s or
// nothing at all. Records are produced and groups made with the real CLI.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { SQSClient, CreateQueueCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { startBroker, until, endpoint } from './harness.mjs';

const CLI = process.env.SLUICE_CLI_PATH;
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const run = promisify(execFile);
let b;

async function cli(args, input) {
  const p = run(CLI, ['--broker', `127.0.0.1:${b.port}`, ...args], { encoding: 'utf8' });
  if (input !== undefined) { p.child.stdin.end(input); }
  return (await p).stdout;
}

async function targets(stream) {
  return JSON.parse(await cli(['target', 'list', '--stream', stream, '--json']));
}

const lines = (prefix, n) => Array.from({ length: n }, (_, i) => `${prefix}-${i}`).join('\n') + '\n';
const sqsBodies = (ep) => ep.posts.flatMap((p) => p.body.Records.map((r) => r.body));

before(async () => { b = await startBroker(); });
// A clean stop (exit 0): under ASan a leak or a bad free at shutdown fails here.
after(async () => { assert.deepEqual(await b.stop(), { code: 0, signal: null }); });

test('SQSEvent batches reach the endpoint once each and are acknowledged', async () => {
  const ep = await endpoint(() => ({ status: 200 }));
  await cli(['queue', 'create', 'jobs', '--group', 'workers', '--shards', '2']);
  await cli(['target', 'add', 'workers', '--stream', 'jobs', '--url', ep.url, '--format', 'sqs',
    '--batch', '10']);
  await cli(['queue', 'send', 'jobs'], lines('job', 95));
  await until('95 records', () => sqsBodies(ep).length >= 95);
  await sleep(300); // nothing more may come
  const bodies = sqsBodies(ep);
  assert.equal(bodies.length, 95);
  assert.equal(new Set(bodies).size, 95);
  for (const p of ep.posts) {
    assert.ok(p.body.Records.length >= 1 && p.body.Records.length <= 10);
    assert.equal(p.headers['content-type'], 'application/json');
    const r = p.body.Records[0];
    assert.equal(r.eventSource, 'aws:sqs');
    assert.match(r.messageId, /^[0-9a-f-]{36}$/);
    assert.equal(r.attributes.ApproximateReceiveCount, '1');
  }
  const [t] = await until('settled', async () => {
    const l = await targets('jobs');
    return l[0].delivered === 95 && l[0].inflight === 0 ? l : null;
  });
  assert.equal(t.format, 'sqs');
  assert.equal(t.last_status, 200);
  const stats = JSON.parse(await cli(['queue', 'stats', 'jobs', '--group', 'workers', '--json']));
  assert.equal(stats.visible + stats.inflight, 0);
  const metrics = await (await fetch(`${b.endpoint}/metrics`)).text();
  assert.match(metrics, /^sluice_push_delivered_total\{stream="jobs",group="workers"\} 95$/m);
  assert.match(metrics, /^sluice_push_inflight_batches\{stream="jobs",group="workers"\} 0$/m);
  assert.match(metrics, /^# TYPE sluice_push_consecutive_failures gauge$/m);
  ep.close();
});

test('a partial batch response releases only the named records, retried until they pass', async () => {
  const tries = new Map();
  const ep = await endpoint((body) => {
    const failures = [];
    for (const r of body.Records) {
      const n = (tries.get(r.body) ?? 0) + 1;
      tries.set(r.body, n);
      if (r.body.startsWith('flaky') && n < 3) failures.push({ itemIdentifier: r.messageId });
    }
    return { status: 200, json: { batchItemFailures: failures } };
  });
  await cli(['queue', 'create', 'partial', '--group', 'g', '--max-deliveries', '5']);
  await cli(['target', 'add', 'g', '--stream', 'partial', '--url', ep.url, '--format', 'sqs',
    '--batch', '20', '--retry-base', '50ms', '--retry-max', '200ms']);
  await cli(['queue', 'send', 'partial'], lines('ok', 30) + lines('flaky', 5));
  await until('all settled', async () => {
    const [t] = await targets('partial');
    return t.delivered === 35 && t.inflight === 0;
  });
  for (let i = 0; i < 30; i++) assert.equal(tries.get(`ok-${i}`), 1, `ok-${i} went once`);
  for (let i = 0; i < 5; i++) assert.equal(tries.get(`flaky-${i}`), 3, `flaky-${i} went 3 times`);
  const [t] = await targets('partial');
  assert.equal(t.released, 10);
  ep.close();
});

test('500s are retried with backoff, then the records go to the dead-letter stream', async () => {
  const ep = await endpoint(() => ({ status: 500, json: { error: 'boom' } }));
  await cli(['queue', 'create', 'doomed', '--group', 'g', '--max-deliveries', '3']);
  await cli(['target', 'add', 'g', '--stream', 'doomed', '--url', ep.url, '--batch', '5',
    '--retry-base', '50ms', '--retry-max', '100ms']);
  await cli(['queue', 'send', 'doomed'], lines('d', 5));
  const stats = await until('dead letters', async () => {
    const s = JSON.parse(await cli(['queue', 'stats', 'doomed', '--group', 'g', '--json']));
    return s.dead_lettered === 5 ? s : null;
  });
  assert.equal(stats.visible + stats.inflight, 0);
  const bodies = ep.posts.flatMap((p) => p.body.records.map((r) => r.value));
  for (let i = 0; i < 5; i++) assert.equal(bodies.filter((x) => x === `d-${i}`).length, 3);
  // the sluice format counts deliveries
  assert.deepEqual([...new Set(ep.posts.flatMap((p) => p.body.records.map((r) => r.delivery_count)))].sort(), [1, 2, 3]);
  const [t] = await targets('doomed');
  assert.equal(t.last_status, 500);
  assert.match(t.last_error, /HTTP 500/);
  assert.ok(t.batches_failed >= 3);
  await cli(['queue', 'create', 'doomed.g.dlq', '--group', 'check']);
  const dlq = await cli(['queue', 'receive', 'doomed.g.dlq', '--group', 'check', '--max', '10',
    '--wait', '2']);
  assert.deepEqual(dlq.trim().split('\n').sort(), ['d-0', 'd-1', 'd-2', 'd-3', 'd-4']);
  ep.close();
});

test('a target that never answers is timed out and backed off; another keeps flowing', async () => {
  const stuck = await endpoint(() => null);
  const fine = await endpoint(() => ({ status: 204 }));
  await cli(['topic', 'create', 'fan']);
  await cli(['topic', 'subscribe', 'fan', 'slow']);
  await cli(['topic', 'subscribe', 'fan', 'fast']);
  await cli(['target', 'add', 'slow', '--stream', 'fan', '--url', stuck.url, '--timeout', '300ms',
    '--retry-base', '1s', '--batch', '10']);
  await cli(['target', 'add', 'fast', '--stream', 'fan', '--url', fine.url, '--batch', '10']);
  const t0 = Date.now();
  await cli(['topic', 'publish', 'fan'], lines('f', 200));
  await until('the fast target has everything', () =>
    fine.posts.reduce((n, p) => n + p.body.records.length, 0) >= 200);
  assert.ok(Date.now() - t0 < 10000, 'the fast target was not held back');
  const list = await until('the slow one timed out', async () => {
    const l = await targets('fan');
    return l.find((t) => t.group === 'slow').batches_failed > 0 ? l : null;
  });
  const slow = list.find((t) => t.group === 'slow');
  assert.match(slow.last_error, /[Tt]imeout|timed out/);
  assert.ok(slow.delivered === 0);
  assert.equal(list.find((t) => t.group === 'fast').delivered, 200);
  await cli(['target', 'remove', 'slow', '--stream', 'fan']);
  const after = await targets('fan');
  assert.deepEqual(after.map((t) => t.group), ['fast']);
  stuck.close();
  fine.close();
});

test('an ordered group delivers each key in order across batches', async () => {
  const ep = await endpoint(() => ({ status: 200 }));
  await cli(['queue', 'create', 'ordered', '--group', 'g', '--ordered', '--shards', '2']);
  await cli(['target', 'add', 'g', '--stream', 'ordered', '--url', ep.url, '--batch', '7',
    '--concurrency', '4']);
  for (let k = 0; k < 4; k++) {
    await cli(['queue', 'send', 'ordered', '--key', `k${k}`], lines(`k${k}`, 40));
  }
  await until('160 records', () => ep.posts.reduce((n, p) => n + p.body.records.length, 0) >= 160);
  const seen = new Map();
  for (const p of ep.posts) {
    for (const r of p.body.records) {
      const [key, i] = r.value.split('-');
      assert.equal(key, r.key);
      assert.equal(Number(i), seen.get(key) ?? 0, `${key} in order`);
      seen.set(key, Number(i) + 1);
    }
  }
  assert.equal(seen.size, 4);
  ep.close();
});

test('kill -9 during delivery: nothing lost, only unsettled batches come again', async () => {
  let hold = true;
  const ep = await endpoint(() => (hold ? null : { status: 200 }));
  await cli(['queue', 'create', 'crash', '--group', 'g']);
  await cli(['target', 'add', 'g', '--stream', 'crash', '--url', ep.url, '--batch', '10',
    '--concurrency', '2', '--timeout', '60s']);
  await cli(['queue', 'send', 'crash'], lines('c', 100));
  await until('two batches out', () => ep.hung.length >= 2);
  const held = ep.posts.flatMap((p) => p.body.records.map((r) => r.value));
  assert.equal(held.length, 20);
  await b.kill9();
  for (const r of ep.hung) r.destroy();
  ep.hung.length = 0;
  hold = false;
  ep.posts.length = 0;
  await b.restart();
  await until('every record after the restart', () => {
    const got = new Set(ep.posts.flatMap((p) => p.body.records.map((r) => r.value)));
    return got.size === 100;
  });
  const all = ep.posts.flatMap((p) => p.body.records);
  assert.equal(new Set(all.map((r) => r.value)).size, 100, 'nothing lost');
  // the 20 held at the crash were leased once before: delivery 2 now
  for (const r of all) {
    assert.equal(r.delivery_count, held.includes(r.value) ? 2 : 1, r.value);
  }
  const [t] = await until('settled', async () => {
    const l = await targets('crash');
    return l[0].delivered === 100 ? l : null;
  });
  assert.equal(t.url, ep.url, 'the target survived the crash');
  ep.close();
});

test('bad settings are refused with the reason; the target needs an existing group', async () => {
  await cli(['queue', 'create', 'cfg', '--group', 'g']);
  const fail = async (args, re) => {
    await assert.rejects(cli(['target', 'add', ...args]), (e) => { assert.match(e.stderr, re); return true; });
  };
  await fail(['g', '--stream', 'cfg', '--url', 'ftp://x/'], /url: .* is neither an http/);
  await fail(['g', '--stream', 'cfg', '--url', 'http://'], /url:/);
  await fail(['nope', '--stream', 'cfg', '--url', 'http://127.0.0.1:1/'], /nope/);
  await fail(['g', '--stream', 'cfg', '--url', 'http://127.0.0.1:1/', '--retry-base', '10s',
    '--retry-max', '1s'], /retry/);
  await assert.rejects(cli(['target', 'remove', 'g', '--stream', 'cfg']),
    (e) => { assert.match(e.stderr, /no push target on cfg\/g/); return true; });
});

// An unchanged SQSEvent handler behind each adapter (deploy/examples): its
// batchItemFailures release the message it cannot process, which is
// dead-lettered after two deliveries; the others are done.
for (const [lang, argv] of [
  ['Node', [process.execPath, join(ROOT, 'deploy/examples/lambda-adapter-node/adapter.mjs'),
    join(ROOT, 'deploy/examples/lambda-adapter-node/handler.mjs'), '0']],
  ['Python', ['python3', join(ROOT, 'deploy/examples/lambda-adapter-python/adapter.py'),
    join(ROOT, 'deploy/examples/lambda-adapter-python/handler.py'), '0']],
]) {
  test(`an unchanged Lambda SQSEvent handler behind the ${lang} adapter`, async () => {
    // Port 0: the adapter says where it listens, so no other process can be there.
    const [cmd, ...args] = argv;
    const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    proc.stdout.on('data', (d) => { out += d; });
    const q = `lambda${lang.toLowerCase()}`;
    try {
      const port = await until('the adapter listening',
        () => /listening on http:\/\/[^:]+:(\d+)/.exec(out)?.[1]);
      await cli(['queue', 'create', q, '--group', 'fn', '--max-deliveries', '2']);
      await cli(['target', 'add', 'fn', '--stream', q, '--url', `http://127.0.0.1:${port}/`,
        '--format', 'sqs', '--batch', '10', '--retry-base', '50ms', '--retry-max', '100ms']);
      await cli(['queue', 'send', q], 'hello\nplease fail\nworld\n');
      const stats = await until('two done, one dead-lettered', async () => {
        const s = JSON.parse(await cli(['queue', 'stats', q, '--group', 'fn', '--json']));
        return s.dead_lettered === 1 && s.visible + s.inflight === 0 ? s : null;
      });
      assert.equal(stats.dead_lettered, 1);
      const [t] = await targets(q);
      assert.equal(t.delivered, 2);
      assert.equal(t.released, 2);
    } finally {
      proc.kill();
    }
  });
}

async function consumeJson(stream) {
  const out = await cli(['consume', stream, '--json']);
  return out.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l));
}

test('a stream: target appends each record to another stream, in order per key', async () => {
  await cli(['queue', 'create', 'fsrc', '--group', 'fwd', '--shards', '2']);
  await cli(['stream', 'create', 'fdst', '--shards', '3']);
  await cli(['target', 'add', 'fwd', '--stream', 'fsrc', '--url', 'stream:fdst', '--batch', '50']);
  const input = Array.from({ length: 300 }, (_, i) => JSON.stringify({ k: `key${i % 7}`, n: i }))
    .join('\n') + '\n';
  await cli(['produce', 'fsrc', '--key-field', 'k', '--attr', 'color=red'], input);
  await cli(['produce', 'fsrc'], 'no key 1\nno key 2\n');
  const [t] = await until('302 forwarded', async () => {
    const l = await targets('fsrc');
    return l[0].delivered === 302 && l[0].inflight === 0 ? l : null;
  });
  assert.equal(t.url, 'stream:fdst');
  assert.equal(t.released, 0);
  const recs = await consumeJson('fdst');
  assert.equal(recs.length, 302);
  const byKey = new Map();
  for (const r of recs) {
    if (r.key === null || r.key === undefined || r.key === '') {
      assert.match(r.value, /^no key \d$/);
      continue;
    }
    assert.equal(r.attributes.color, 'red');
    const v = JSON.parse(r.value);
    assert.equal(v.k, r.key);
    const seen = byKey.get(r.key) ?? { shard: r.shard, last: -1 };
    assert.equal(r.shard, seen.shard, `key ${r.key} stays on one shard`);
    assert.ok(v.n > seen.last, `key ${r.key}: ${v.n} after ${seen.last}`);
    byKey.set(r.key, { shard: r.shard, last: v.n });
  }
  assert.equal(byKey.size, 7);
  assert.ok(new Set(recs.map((r) => r.shard)).size > 1, 'keys spread over the shards');
  const stats = JSON.parse(await cli(['queue', 'stats', 'fsrc', '--group', 'fwd', '--json']));
  assert.equal(stats.visible + stats.inflight, 0);
});

test('sns and eventbridge stream: targets write the message an SQS queue receives', async () => {
  const sqs = new SQSClient({ endpoint: b.endpoint, region: 'us-east-1',
    credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' } });
  const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: 'inbox' }));
  const { QueueUrl: evUrl } = await sqs.send(new CreateQueueCommand({ QueueName: 'events' }));
  await cli(['topic', 'create', 'news']);
  await cli(['topic', 'subscribe', 'news', 'to-inbox']);
  await cli(['topic', 'subscribe', 'news', 'to-events']);
  await cli(['target', 'add', 'to-inbox', '--stream', 'news', '--url', 'stream:inbox',
    '--format', 'sns']);
  await cli(['target', 'add', 'to-events', '--stream', 'news', '--url', 'stream:events',
    '--format', 'eventbridge']);
  await cli(['topic', 'publish', 'news', '--attr', 'sluice.subject=Hello', '--attr', 'color=blue'],
    '{"order":42}\n');
  const got = await until('the notification', async () => {
    const r = await sqs.send(new ReceiveMessageCommand({ QueueUrl, WaitTimeSeconds: 1 }));
    return r.Messages?.length ? r.Messages : null;
  });
  assert.equal(got.length, 1);
  const n = JSON.parse(got[0].Body);
  assert.equal(n.Type, 'Notification');
  assert.match(n.TopicArn, /^arn:aws:sns:[^:]+:\d{12}:news$/);
  assert.equal(n.Message, '{"order":42}');
  assert.equal(n.Subject, 'Hello');
  assert.deepEqual(n.MessageAttributes, { color: { Type: 'String', Value: 'blue' } });
  assert.match(n.MessageId, /^[0-9a-f-]{36}$/);
  assert.equal(n.SigningCertURL, '');
  assert.equal(n.UnsubscribeURL, '');
  assert.ok(!Number.isNaN(Date.parse(n.Timestamp)));
  const ev = await until('the event', async () => {
    const r = await sqs.send(new ReceiveMessageCommand({ QueueUrl: evUrl, WaitTimeSeconds: 1 }));
    return r.Messages?.length ? r.Messages : null;
  });
  const e = JSON.parse(ev[0].Body);
  assert.equal(e.source, 'sluice.news');
  assert.deepEqual(e.detail, { order: 42 });
});

test('a stream: target is refused into itself, into no stream, or in a batch format', async () => {
  await cli(['queue', 'create', 'floop', '--group', 'g']);
  const refused = async (args, re) => {
    await assert.rejects(cli(['target', 'add', 'g', '--stream', 'floop', ...args]),
      (e) => { assert.match(e.stderr, re); return true; });
  };
  await refused(['--url', 'stream:floop'], /cannot forward floop into itself/);
  await refused(['--url', 'stream:nowhere'], /nowhere/);
  await refused(['--url', 'stream:fdst', '--format', 'sqs'], /not as sqs batches/);
  await refused(['--url', 'stream:'], /stream name of 1/);
  assert.deepEqual(await targets('floop'), []);
});

test('sns-http: one message per POST with the headers an SNS HTTP subscriber reads', async () => {
  const ep = await endpoint(() => ({ status: 200 }));
  await cli(['topic', 'create', 'alerts']);
  await cli(['topic', 'subscribe', 'alerts', 'pager']);
  await cli(['target', 'add', 'pager', '--stream', 'alerts', '--url', ep.url,
    '--format', 'sns-http', '--batch', '10']);
  await cli(['topic', 'publish', 'alerts', '--attr', 'sluice.subject=Disk', '--attr', 'sev=high'],
    'disk 91%\ndisk 95%\ndisk 99%\n');
  await until('3 POSTs', () => ep.posts.length >= 3);
  await sleep(300);
  assert.equal(ep.posts.length, 3);
  const seen = [];
  for (const p of ep.posts) {
    const n = p.body;
    assert.equal(n.Type, 'Notification');
    assert.equal(p.headers['x-amz-sns-message-type'], 'Notification');
    assert.equal(p.headers['x-amz-sns-message-id'], n.MessageId);
    assert.equal(p.headers['x-amz-sns-topic-arn'], n.TopicArn);
    assert.match(p.headers['x-amz-sns-subscription-arn'], /^arn:aws:sns:[^:]+:\d{12}:alerts:/);
    assert.match(p.headers['content-type'], /^text\/plain; charset=UTF-8$/i);
    assert.equal(n.Subject, 'Disk');
    assert.deepEqual(n.MessageAttributes, { sev: { Type: 'String', Value: 'high' } });
    seen.push(n.Message);
  }
  assert.deepEqual(seen.sort(), ['disk 91%', 'disk 95%', 'disk 99%']);
  ep.close();
});

test('batch size 1: each record of one multi-record batch is delivered once', async () => {
  const ep = await endpoint(() => ({ status: 200 }));
  await cli(['queue', 'create', 'single', '--group', 'g']);
  await cli(['target', 'add', 'g', '--stream', 'single', '--url', ep.url, '--format', 'sqs',
    '--batch', '1']);
  await cli(['queue', 'send', 'single'], lines('one', 6));
  await until('settled', async () => {
    const [t] = await targets('single');
    return t.delivered === 6 && t.inflight === 0;
  });
  await sleep(300);
  assert.deepEqual(sqsBodies(ep), Array.from({ length: 6 }, (_, i) => `one-${i}`));
  ep.close();
  // the same through a body-filtered subscription that skips every other record
  const ep2 = await endpoint(() => ({ status: 200 }));
  await cli(['topic', 'create', 'singles']);
  await cli(['topic', 'subscribe', 'singles', 'evens', '--filter', '{"even":[true]}',
    '--filter-scope', 'body']);
  await cli(['target', 'add', 'evens', '--stream', 'singles', '--url', ep2.url, '--format', 'sqs',
    '--batch', '1']);
  await cli(['topic', 'publish', 'singles'],
    Array.from({ length: 8 }, (_, i) => JSON.stringify({ n: i, even: i % 2 === 0 })).join('\n') + '\n');
  await until('settled', async () => {
    const [t] = await targets('singles');
    return t.delivered === 4 && t.inflight === 0;
  });
  await sleep(300);
  assert.deepEqual(sqsBodies(ep2).map((v) => JSON.parse(v).n), [0, 2, 4, 6]);
  ep2.close();
});

test('deleting a group or its stream with a target parked on it: at once, and the target goes', async () => {
  const ep = await endpoint(() => ({ status: 200 }));
  await cli(['topic', 'create', 'gone']);
  await cli(['topic', 'subscribe', 'gone', 'a']);
  await cli(['topic', 'subscribe', 'gone', 'b']);
  await cli(['target', 'add', 'a', '--stream', 'gone', '--url', ep.url]);
  await cli(['target', 'add', 'b', '--stream', 'gone', '--url', ep.url]);
  await sleep(300); // both targets' receives park (10 s long-polls)
  let t0 = Date.now();
  await cli(['topic', 'unsubscribe', 'gone', 'a']);
  assert.ok(Date.now() - t0 < 2000, `unsubscribed in ${Date.now() - t0} ms`);
  await until('target a removed', async () => (await targets('gone')).length === 1, 5000);
  assert.equal((await targets('gone'))[0].group, 'b');
  t0 = Date.now();
  await cli(['stream', 'delete', 'gone']);
  await until('target b removed', async () => {
    return (await targets('gone')).length === 0;
  }, 5000);
  assert.ok(Date.now() - t0 < 3000, `target gone ${Date.now() - t0} ms after the stream`);
  assert.equal(ep.posts.length, 0);
  ep.close();
});

test('a POST still out when the broker stops does not hold the stop back', async () => {
  const hung = await endpoint(() => null);
  await cli(['queue', 'create', 'last', '--group', 'g']);
  await cli(['target', 'add', 'g', '--stream', 'last', '--url', hung.url, '--timeout', '10m']);
  await cli(['queue', 'send', 'last'], 'x\n');
  await until('the POST out', () => hung.hung.length === 1);
  const t0 = Date.now();
  assert.deepEqual(await b.stop(), { code: 0, signal: null });
  assert.ok(Date.now() - t0 < 5000, `stopped in ${Date.now() - t0} ms`);
  await b.restart(); // for after()
  hung.close();
});
