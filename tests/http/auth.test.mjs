// auth.test.mjs - SigV4 and ACLs on the AWS APIs of the real sluiced with
// `auth = true` and an auth file of awskey and allow lines, driven by the real
// AWS SDK for JavaScript v3 (Kinesis and SQS clients, HTTP/1.1 and the Kinesis
// client's default HTTP/2), Debian's awscli (Query protocol for SQS) and raw
// requests (node:http) replaying what the SDK signed.
//
// Covers: valid calls succeed with the right keys; a wrong secret, an unknown
// key id, an unsigned request, a replayed request and one dated 20 minutes ago
// are refused with the AWS error names; SDK retries (re-signed) still pass
// the replay check; an ACL matrix (two principals x two streams/queues x
// put, get, GetRecords with another's iterator, delete+create, send, receive,
// queue admin) with every cell's allow/deny checked and 0 unexpected allows;
// ListStreams/ListQueues show only what the principal has a right on;
// /healthz, /metrics stay open; a SIGHUP reload of the auth file grants a
// right that was denied.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { appendFileSync, existsSync } from 'node:fs';
import { request as httpRequest, createServer } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  KinesisClient, CreateStreamCommand, DeleteStreamCommand, DescribeStreamSummaryCommand,
  ListStreamsCommand, ListShardsCommand, PutRecordCommand, GetShardIteratorCommand,
  GetRecordsCommand,
} from '@aws-sdk/client-kinesis';
import {
  SQSClient, CreateQueueCommand, GetQueueUrlCommand, ListQueuesCommand, SendMessageCommand,
  ReceiveMessageCommand, SetQueueAttributesCommand,
} from '@aws-sdk/client-sqs';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { startAuthBroker, httpGet } from './harness.mjs';

const KEYS = {
  admin: ['AKIDADMIN0000000001', 'admin/secret+0000000000000000000000000001'],
  alice: ['AKIDALICE0000000001', 'alice/secret+0000000000000000000000000001'],
  bob: ['AKIDBOB00000000001', 'bob/secret+00000000000000000000000000000001'],
};
// What each principal may do on each stream (a queue is its stream).
const RIGHTS = {
  alice: { s1: ['produce', 'consume'], s2: ['admin'], q1: ['produce', 'queue'], q2: [] },
  bob: { s1: ['admin'], s2: ['produce', 'consume'], q1: [], q2: ['produce', 'queue'] },
};
const AUTH = `# test auth file
awskey ${KEYS.admin[0]} ${KEYS.admin[1]} admin
awskey ${KEYS.alice[0]} ${KEYS.alice[1]} alice
awskey ${KEYS.bob[0]} ${KEYS.bob[1]} bob
allow admin all *
allow alice produce,consume s1
allow alice admin s2
allow alice produce,queue q1
allow bob admin s1
allow bob produce,consume s2
allow bob produce q2
allow bob queue q2*
`;

const b = await startAuthBroker(AUTH);
after(() => b.stop());

const clients = [];
function creds(who, secret) {
  return { accessKeyId: KEYS[who]?.[0] ?? who, secretAccessKey: secret ?? KEYS[who][1] };
}
function kin(who, { secret, h2 = false, endpoint = b.endpoint, ...rest } = {}) {
  const c = new KinesisClient({ endpoint, region: 'us-east-1', credentials: creds(who, secret),
    maxAttempts: 1, ...(h2 ? {} : { requestHandler: new NodeHttpHandler() }), ...rest });
  clients.push(c);
  return c;
}
function sqs(who, { secret, endpoint = b.endpoint, ...rest } = {}) {
  const c = new SQSClient({ endpoint, region: 'us-east-1', credentials: creds(who, secret),
    maxAttempts: 1, requestHandler: new NodeHttpHandler(), ...rest });
  clients.push(c);
  return c;
}
after(() => { for (const c of clients) c.destroy(); });

// 'ok' or the error's AWS name.
async function outcome(p) {
  try { await p; return 'ok'; } catch (e) { return e.name ?? String(e); }
}
async function failsWith(p, name, msg) {
  const e = await p.then(() => null, (x) => x);
  assert.ok(e, `expected ${name}, the call succeeded`);
  assert.equal(e.name, name, `${e.name}: ${e.message}`);
  if (msg) assert.match(e.message, msg);
  return e;
}

const admin = kin('admin');
const adminSqs = sqs('admin');
const qurl = (q) => `${b.endpoint}/000000000000/${q}`;

test('setup: the admin principal creates the streams and queues', async () => {
  for (const s of ['s1', 's2', 's3']) await admin.send(new CreateStreamCommand({ StreamName: s, ShardCount: 1 }));
  for (const q of ['q1', 'q2', 'q3']) await adminSqs.send(new CreateQueueCommand({ QueueName: q }));
});

test('valid SDK calls succeed: Kinesis over HTTP/1.1 and HTTP/2, SQS JSON', async () => {
  const a = kin('alice');
  const put = await a.send(new PutRecordCommand({ StreamName: 's1', PartitionKey: 'k', Data: new Uint8Array([1, 2]) }));
  assert.ok(put.SequenceNumber);
  const s = await kin('alice', { h2: true }).send(new DescribeStreamSummaryCommand({ StreamName: 's1' }));
  assert.equal(s.StreamDescriptionSummary.StreamName, 's1');
  const q = sqs('alice');
  const sent = await q.send(new SendMessageCommand({ QueueUrl: qurl('q1'), MessageBody: 'hi' }));
  assert.ok(sent.MessageId);
  const got = await q.send(new ReceiveMessageCommand({ QueueUrl: qurl('q1'), WaitTimeSeconds: 1 }));
  assert.equal(got.Messages?.[0]?.Body, 'hi');
});

test('operations endpoints stay unauthenticated', async () => {
  assert.equal((await httpGet(b, '/healthz')).status, 200);
  assert.equal((await httpGet(b, '/metrics')).status, 200);
});

test('a wrong secret is refused: InvalidSignatureException / SignatureDoesNotMatch', async () => {
  await failsWith(kin('alice', { secret: 'not-the-secret' }).send(
    new DescribeStreamSummaryCommand({ StreamName: 's1' })), 'InvalidSignatureException', /does not match/);
  await failsWith(sqs('alice', { secret: 'not-the-secret' }).send(
    new GetQueueUrlCommand({ QueueName: 'q1' })), 'SignatureDoesNotMatch', /does not match/);
});

test('an unknown access key id is refused: UnrecognizedClientException / InvalidClientTokenId', async () => {
  const e = await failsWith(kin('AKIDNOBODY', { secret: 'x' }).send(
    new DescribeStreamSummaryCommand({ StreamName: 's1' })), 'UnrecognizedClientException', /AKIDNOBODY.*auth_file/);
  assert.equal(e.$metadata.httpStatusCode, 400);
  const e2 = await failsWith(sqs('AKIDNOBODY', { secret: 'x' }).send(
    new GetQueueUrlCommand({ QueueName: 'q1' })), 'InvalidClientTokenId', /AKIDNOBODY/);
  assert.equal(e2.$metadata.httpStatusCode, 403);
});

test('an unsigned request is refused: MissingAuthenticationToken(Exception)', async () => {
  const k = await fetch(b.endpoint, { method: 'POST', body: '{"StreamName":"s1"}', headers: {
    'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'Kinesis_20131202.DescribeStreamSummary' } });
  assert.equal(k.status, 400);
  assert.equal((await k.json()).__type, 'MissingAuthenticationTokenException');
  const q = await fetch(b.endpoint, { method: 'POST', body: 'Action=ListQueues&Version=2012-11-05',
    headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  assert.equal(q.status, 403);
  assert.match(await q.text(), /<Code>MissingAuthenticationToken<\/Code>/);
  const j = await fetch(b.endpoint, { method: 'POST', body: '{}', headers: {
    'content-type': 'application/x-amz-json-1.0', 'x-amz-target': 'AmazonSQS.ListQueues' } });
  assert.equal(j.status, 403);
  assert.match((await j.json()).__type, /#MissingAuthenticationToken$/);
});

// A request handler that records what the SDK signed and sends it on.
class Capture {
  constructor() { this.inner = new NodeHttpHandler(); this.sent = []; }
  async handle(req, opts) {
    this.sent.push({ method: req.method, path: req.path, headers: { ...req.headers }, body: req.body });
    return this.inner.handle(req, opts);
  }
  updateHttpClientConfig() {}
  httpHandlerConfigs() { return {}; }
  destroy() { this.inner.destroy(); }
}

// Sends exactly these headers and body (node:http keeps them as given).
function rawSend(r) {
  return new Promise((resolve, reject) => {
    const body = typeof r.body === 'string' ? Buffer.from(r.body) : Buffer.from(r.body ?? '');
    const q = httpRequest({ host: '127.0.0.1', port: b.httpPort, method: r.method, path: r.path,
      headers: r.headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString() }));
    });
    q.on('error', reject);
    q.end(body);
  });
}

test('a replayed request (the same headers and body sent again) is refused the second time', async () => {
  for (const api of ['kinesis', 'sqs']) {
    const cap = new Capture();
    const c = api === 'kinesis' ? kin('alice', { requestHandler: cap }) : sqs('alice', { requestHandler: cap });
    if (api === 'kinesis') await c.send(new DescribeStreamSummaryCommand({ StreamName: 's1' }));
    else await c.send(new GetQueueUrlCommand({ QueueName: 'q1' }));
    assert.equal(cap.sent.length, 1);
    const again = await rawSend(cap.sent[0]);
    assert.equal(again.status, api === 'kinesis' ? 400 : 403, again.body);
    assert.match(again.body, api === 'kinesis' ? /InvalidSignatureException/ : /SignatureDoesNotMatch/);
    assert.match(again.body, /already received/);
    // the same call made again through the SDK is signed anew: accepted
    if (api === 'kinesis') await c.send(new DescribeStreamSummaryCommand({ StreamName: 's1' }));
    else await c.send(new GetQueueUrlCommand({ QueueName: 'q1' }));
    assert.notEqual(cap.sent[1].headers.authorization, cap.sent[0].headers.authorization);
  }
});

test('a request signed 20 minutes ago is refused, naming both times', async () => {
  const old = { systemClockOffset: -20 * 60 * 1000 };
  await failsWith(kin('alice', old).send(new DescribeStreamSummaryCommand({ StreamName: 's1' })),
    'InvalidSignatureException', /Signature expired: \d{8}T\d{6}Z is now earlier than \d{8}T\d{6}Z/);
  await failsWith(sqs('alice', old).send(new GetQueueUrlCommand({ QueueName: 'q1' })),
    'SignatureDoesNotMatch', /Signature expired/);
});

test('SDK retries are signed anew, so the replay check lets them through', async () => {
  // A proxy that forwards every attempt to the broker but answers the first
  // one 500, as if its answer had been lost: the SDK retries the call.
  const seen = [];
  const proxy = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', async () => {
      const r = await rawSend({ method: req.method, path: req.url, headers: req.headers,
        body: Buffer.concat(chunks) });
      seen.push({ authorization: req.headers.authorization, status: r.status });
      if (seen.length === 1) {
        res.writeHead(500, { 'content-type': 'application/x-amz-json-1.0' });
        res.end('{"__type":"com.amazonaws.sqs#InternalError","message":"lost"}');
      } else {
        res.writeHead(r.status, { 'content-type': 'application/x-amz-json-1.0' });
        res.end(r.body);
      }
    });
  });
  await new Promise((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  try {
    const c = sqs('alice', { endpoint: `http://127.0.0.1:${proxy.address().port}`, maxAttempts: 3 });
    const r = await c.send(new SendMessageCommand({ QueueUrl: qurl('q1'), MessageBody: 'retried' }));
    assert.ok(r.MessageId);
    assert.equal(seen.length, 2, 'one retry');
    assert.deepEqual(seen.map((s) => s.status), [200, 200], 'the broker accepted both attempts');
    assert.notEqual(seen[0].authorization, seen[1].authorization, 'the retry has its own signature');
  } finally {
    proxy.close();
  }
});

test('ACL matrix: every cell as the auth file says, 0 unexpected allows', async () => {
  const may = (who, s, right) => RIGHTS[who][s].includes(right);
  const shard = async (s) => (await admin.send(new ListShardsCommand({ StreamName: s }))).Shards[0].ShardId;
  const cells = [];
  const cell = async (who, s, op, right, fn) => {
    cells.push({ who, s, op, expect: may(who, s, right) ? 'allow' : 'deny', got: await outcome(fn()) });
  };
  for (const who of ['alice', 'bob']) {
    const k = kin(who);
    const q = sqs(who);
    for (const s of ['s1', 's2']) {
      await cell(who, s, 'put', 'produce', () => k.send(new PutRecordCommand({ StreamName: s,
        PartitionKey: 'p', Data: new Uint8Array([7]) })));
      await cell(who, s, 'get', 'consume', async () => {
        const it = await k.send(new GetShardIteratorCommand({ StreamName: s, ShardId: await shard(s),
          ShardIteratorType: 'TRIM_HORIZON' }));
        await k.send(new GetRecordsCommand({ ShardIterator: it.ShardIterator }));
      });
      // an iterator someone else obtained is no right: GetRecords checks its stream
      const it = await admin.send(new GetShardIteratorCommand({ StreamName: s, ShardId: await shard(s),
        ShardIteratorType: 'TRIM_HORIZON' }));
      await cell(who, s, 'get-records(admin iterator)', 'consume',
        () => k.send(new GetRecordsCommand({ ShardIterator: it.ShardIterator })));
      await cell(who, s, 'delete+create', 'admin', async () => {
        await k.send(new DeleteStreamCommand({ StreamName: s }));
        for (let i = 0; ; i++) {
          try {
            await k.send(new CreateStreamCommand({ StreamName: s, ShardCount: 1 }));
            return;
          } catch (e) {
            if (e.name !== 'ResourceInUseException' || i >= 50) throw e;
            await sleep(100);
          }
        }
      });
    }
    for (const s of ['q1', 'q2']) {
      await cell(who, s, 'send', 'produce', () => q.send(new SendMessageCommand({ QueueUrl: qurl(s),
        MessageBody: 'm' })));
      await cell(who, s, 'receive', 'queue', () => q.send(new ReceiveMessageCommand({ QueueUrl: qurl(s),
        WaitTimeSeconds: 0 })));
      await cell(who, s, 'set-attributes', 'admin', () => q.send(new SetQueueAttributesCommand({
        QueueUrl: qurl(s), Attributes: { VisibilityTimeout: '30' } })));
    }
  }
  assert.equal(cells.length, 2 * 2 * 4 + 2 * 2 * 3);
  const denied = (c) => /^AccessDenied/.test(c.got);
  const unexpectedAllows = cells.filter((c) => c.expect === 'deny' && !denied(c));
  const unexpectedDenies = cells.filter((c) => c.expect === 'allow' && c.got !== 'ok');
  assert.equal(unexpectedAllows.length, 0, `unexpected allows: ${JSON.stringify(unexpectedAllows)}`);
  assert.equal(unexpectedDenies.length, 0, `unexpected failures: ${JSON.stringify(unexpectedDenies)}`);
  assert.ok(cells.some((c) => c.expect === 'allow') && cells.some((c) => c.expect === 'deny'));
  for (const c of cells.filter(denied)) {
    assert.equal(c.got, c.s.startsWith('q') ? 'AccessDenied' : 'AccessDeniedException', JSON.stringify(c));
  }
  // the streams the allowed deletes removed were created again
  const all = await admin.send(new ListStreamsCommand({}));
  assert.deepEqual(all.StreamNames.filter((n) => /^s\d$/.test(n)).sort(), ['s1', 's2', 's3']);
});

test('an ACL refusal says who, what, where and how to fix it', async () => {
  const e = await failsWith(kin('alice').send(new PutRecordCommand({ StreamName: 's3', PartitionKey: 'p',
    Data: new Uint8Array([1]) })), 'AccessDeniedException');
  assert.match(e.message, /User: alice is not authorized to perform: PutRecord on resource: stream s3/);
  assert.match(e.message, /add an allow line/);
  assert.equal(e.$metadata.httpStatusCode, 400);
  const e2 = await failsWith(sqs('bob').send(new GetQueueUrlCommand({ QueueName: 'q1' })), 'AccessDenied');
  assert.equal(e2.$metadata.httpStatusCode, 403);
  // a stream that does not exist is refused the same way (no existence oracle)
  await failsWith(kin('alice').send(new DescribeStreamSummaryCommand({ StreamName: 'nope' })),
    'AccessDeniedException');
});

test('ListStreams and ListQueues show only what the principal has a right on', async () => {
  const names = async (who) => (await kin(who).send(new ListStreamsCommand({}))).StreamNames.sort();
  // a queue is a stream too: alice has rights on q1, bob on q2, nobody but admin on s3, q3
  assert.deepEqual(await names('alice'), ['q1', 's1', 's2']);
  assert.deepEqual(await names('bob'), ['q2', 's1', 's2']);
  assert.ok((await names('admin')).includes('s3'));
  const queues = async (who) => ((await sqs(who).send(new ListQueuesCommand({}))).QueueUrls ?? [])
    .map((u) => u.split('/').pop()).sort();
  assert.deepEqual(await queues('alice'), ['q1']);
  assert.deepEqual(await queues('bob'), ['q2']);
  assert.deepEqual(await queues('admin'), ['q1', 'q2', 'q3']);
});

// ---- awscli: credentials from the environment ----------------------------------------

const AWS = '/usr/bin/aws';
function aws(who, secret, ...args) {
  const env = { ...process.env, AWS_ACCESS_KEY_ID: KEYS[who][0], AWS_SECRET_ACCESS_KEY: secret ?? KEYS[who][1],
    AWS_DEFAULT_REGION: 'us-east-1', AWS_PAGER: '', AWS_CONFIG_FILE: '/dev/null',
    AWS_SHARED_CREDENTIALS_FILE: '/dev/null', AWS_EC2_METADATA_DISABLED: 'true' };
  return spawnSync(AWS, ['--endpoint-url', b.endpoint, '--output', 'json', ...args], { env, encoding: 'utf8' });
}

test('awscli with AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY: Kinesis and SQS (Query protocol)', (t) => {
  if (!existsSync(AWS)) { t.skip('awscli is not installed (/usr/bin/aws)'); return; }
  const l = aws('alice', null, 'kinesis', 'list-streams');
  assert.equal(l.status, 0, l.stderr);
  assert.deepEqual(JSON.parse(l.stdout).StreamNames.sort(), ['q1', 's1', 's2']);
  const s = aws('alice', null, 'sqs', 'send-message', '--queue-url', qurl('q1'), '--message-body', 'cli');
  assert.equal(s.status, 0, s.stderr);
  // the same command twice, in two different seconds: awscli does not sign a per-call id, so
  // within one second the two would be byte-identical - a replay (docs/SECURITY-sigv4.md)
  for (let i = 0; i < 2; i++) {
    if (i > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1100);
    const g = aws('alice', null, 'sqs', 'get-queue-url', '--queue-name', 'q1');
    assert.equal(g.status, 0, g.stderr);
  }
  const bad = aws('alice', 'wrong', 'sqs', 'get-queue-url', '--queue-name', 'q1');
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /SignatureDoesNotMatch/);
  const denied = aws('alice', null, 'kinesis', 'delete-stream', '--stream-name', 's1');
  assert.notEqual(denied.status, 0);
  assert.match(denied.stderr, /AccessDeniedException/);
});

test('SIGHUP rereads the auth file: a right added there is granted', async () => {
  const put = () => kin('alice').send(new PutRecordCommand({ StreamName: 's2', PartitionKey: 'p',
    Data: new Uint8Array([1]) }));
  await failsWith(put(), 'AccessDeniedException');
  appendFileSync(b.authFile, 'allow alice produce s2\n');
  b.hup();
  let got = '';
  for (let i = 0; i < 100 && got !== 'ok'; i++) {
    got = await outcome(put());
    if (got !== 'ok') await sleep(50);
  }
  assert.equal(got, 'ok', 'the reloaded rule allows the put');
});
