// push_adapter.test.mjs - the Lambda adapters of deploy/examples/ as real processes (no
// broker): node adapter.mjs and python3 adapter.py, each with its example handler on a
// port of its own (port 0: the adapter prints the one it got), sent an SQSEvent as a push
// target renders it (broker/push/payload.h), answer exactly the failed message's id in
// batchItemFailures; a handler that throws answers 500 with the error; the context
// object carries a request id, the function's name and the time left; a body that is not
// JSON answers 400.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const EXAMPLES = join(ROOT, 'deploy', 'examples');
const PYTHON = process.env.PYTHON3 ?? 'python3';
const tmp = mkdtempSync(join(tmpdir(), 'sluice-adapter-'));
const procs = [];
after(() => {
  for (const p of procs) p.kill('SIGKILL');
  rmSync(tmp, { recursive: true, force: true });
});

// Handlers that throw unless the event asks for the context back.
writeFileSync(join(tmp, 'throwing.mjs'), `export async function handler(event, context) {
  if (event.echo) return { id: context.awsRequestId, name: context.functionName,
    left: context.getRemainingTimeInMillis() };
  throw new TypeError('boom: ' + event.Records.length);
}\n`);
writeFileSync(join(tmp, 'throwing.py'), `def handler(event, context):
    if event.get("echo"):
        return {"id": context.aws_request_id, "name": context.function_name,
                "left": context.get_remaining_time_in_millis()}
    raise TypeError("boom: %d" % len(event["Records"]))\n`);

// Starts an adapter and resolves with its URL once it listens.
function start(cmd, args) {
  const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  procs.push(p);
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`${args[0]} did not listen: ${out}`)), 10000);
    p.once('exit', (code) => reject(new Error(`${args[0]} exited with ${code}: ${out}`)));
    p.stdout.on('data', (d) => {
      out += d;
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
  });
}

async function post(url, body) {
  const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body) });
  return { status: r.status, json: await r.json() };
}

// An SQSEvent of three messages, the second one's body containing "fail".
function sqsEvent() {
  const ids = ['0a1b2c3d-0000-0000-0000-000000000001', '0a1b2c3d-0000-0000-0000-000000000002',
    '0a1b2c3d-0001-0000-0000-000000000007'];
  const bodies = ['{"order":1}', 'please fail this one', 'caf\u00e9 \u2713'];
  return { ids, event: { Records: ids.map((messageId, i) => ({
    messageId, receiptHandle: `r-${i}`, body: bodies[i],
    attributes: { ApproximateReceiveCount: '1', SentTimestamp: '1700000000123',
      ApproximateFirstReceiveTimestamp: '1700000000123' },
    messageAttributes: { color: { stringValue: 'blue', dataType: 'String' } },
    md5OfBody: '', eventSource: 'aws:sqs', eventSourceARN: 'arn:aws:sqs:us-east-1:000000000000:orders',
    awsRegion: 'us-east-1' })) } };
}

const adapters = [
  { name: 'node', cmd: process.execPath, adapter: 'lambda-adapter-node/adapter.mjs',
    handler: 'lambda-adapter-node/handler.mjs', throwing: 'throwing.mjs' },
  { name: 'python', cmd: PYTHON, adapter: 'lambda-adapter-python/adapter.py',
    handler: 'lambda-adapter-python/handler.py', throwing: 'throwing.py' },
];

for (const a of adapters) {
  test(`${a.name}: the example handler's batchItemFailures name the failed message`, async () => {
    const url = await start(a.cmd, [join(EXAMPLES, a.adapter), join(EXAMPLES, a.handler), '0']);
    const { ids, event } = sqsEvent();
    const r = await post(url, event);
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, { batchItemFailures: [{ itemIdentifier: ids[1] }] });
    const none = await post(url, { Records: [event.Records[0], event.Records[2]] });
    assert.deepEqual(none, { status: 200, json: { batchItemFailures: [] } });
    const bad = await post(url, 'not json');
    assert.equal(bad.status, 400);
  });

  test(`${a.name}: a throwing handler answers 500; the context`, async () => {
    const url = await start(a.cmd, [join(EXAMPLES, a.adapter), join(tmp, a.throwing), '0']);
    const r = await post(url, sqsEvent().event);
    assert.equal(r.status, 500);
    assert.equal(r.json.errorType, 'TypeError');
    assert.equal(r.json.errorMessage, 'boom: 3');
    const c1 = await post(url, { echo: true }), c2 = await post(url, { echo: true });
    assert.equal(c1.status, 200);
    assert.equal(c1.json.name, 'throwing');
    assert.match(c1.json.id, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    assert.notEqual(c1.json.id, c2.json.id);
    assert.ok(c1.json.left > 25000 && c1.json.left <= 30000, `${c1.json.left} ms left`);
  });
}
