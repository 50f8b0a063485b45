// ops.test.mjs - the operations endpoints of the real sluiced: /healthz,
// /readyz, /metrics (linted with promtool, values checked against what the
// native CLI did), HTTP/2 cleartext (curl, prior knowledge and Upgrade), bad
// requests and limits on the HTTP listener.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { connect } from 'node:net';
import { startBroker, httpGet } from './harness.mjs';

const CLI = process.env.SLUICE_CLI_PATH;
const b = await startBroker();
after(() => b.stop());

function cli(...args) {
  return execFileSync(CLI, ['--broker', `127.0.0.1:${b.port}`, ...args], { encoding: 'utf8' });
}

// Sends raw bytes, returns everything the broker sends until it closes (or ms pass).
function raw(bytes, ms = 2000) {
  return new Promise((resolve) => {
    const s = connect(b.httpPort, '127.0.0.1');
    const chunks = [];
    const timer = setTimeout(() => { s.destroy(); resolve({ text: Buffer.concat(chunks).toString(), closed: false }); }, ms);
    s.on('data', (d) => chunks.push(d));
    s.on('close', () => { clearTimeout(timer); resolve({ text: Buffer.concat(chunks).toString(), closed: true }); });
    s.on('error', () => {});
    s.write(bytes);
  });
}

function metric(text, name, labels = '') {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

test('healthz answers ok', async () => {
  const r = await httpGet(b, '/healthz');
  assert.equal(r.status, 200);
  assert.deepEqual(JSON.parse(r.body), { status: 'ok' });
});

test('readyz is ready with a healthy broker', async () => {
  const r = await httpGet(b, '/readyz');
  assert.equal(r.status, 200);
  assert.deepEqual(JSON.parse(r.body), { ready: true, reasons: [] });
});

test('metrics count what was produced, consumed and lagged', async () => {
  cli('stream', 'create', 'm1', '--shards', '2');
  execFileSync(CLI, ['--broker', `127.0.0.1:${b.port}`, 'produce', 'm1', '--key-field', 'k'],
    { input: Array.from({ length: 100 }, (_, i) => `{"k":"k${i}"}`).join('\n') + '\n' });
  const out = cli('consume', 'm1', '--from', 'oldest', '--group', 'g1', '--count', '40');
  assert.equal(out.trim().split('\n').length, 40);
  const r = await httpGet(b, '/metrics');
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
  const inTotal = metric(r.body, 'sluice_shard_records_in_total', '{stream="m1",shard="0"}') +
    metric(r.body, 'sluice_shard_records_in_total', '{stream="m1",shard="1"}');
  assert.equal(inTotal, 100);
  assert.equal(metric(r.body, 'sluice_streams'), 1);
  assert.equal(metric(r.body, 'sluice_shards'), 2);
  const lag = metric(r.body, 'sluice_consumer_lag_records', '{stream="m1",group="g1",shard="0"}') +
    metric(r.body, 'sluice_consumer_lag_records', '{stream="m1",group="g1",shard="1"}');
  assert.equal(lag, 60);
  assert.ok(metric(r.body, 'sluice_requests_total', '{op="produce",code="OK"}') >= 1);
  assert.ok(metric(r.body, 'sluice_connections', '{protocol="http"}') >= 1);
  assert.equal(metric(r.body, 'sluice_shard_up', '{stream="m1",shard="0"}'), 1);
  // the segment run-ahead's zeros are counted (a few small appends may have written none)
  assert.ok(metric(r.body, 'sluice_shard_zero_bytes_total', '{stream="m1",shard="0"}') >= 0);
});

test('metrics pass promtool check metrics', async (t) => {
  const promtool = spawnSync('promtool', ['--version']);
  if (promtool.error) { t.skip('promtool not installed (package prometheus)'); return; }
  cli('queue', 'create', 'jobs', '--shards', '1');
  const r = await httpGet(b, '/metrics');
  const lint = spawnSync('promtool', ['check', 'metrics'], { input: r.body, encoding: 'utf8' });
  assert.equal(lint.status, 0, `promtool: ${lint.stdout}${lint.stderr}`);
  assert.ok(metric(r.body, 'sluice_queue_visible', '{stream="jobs",group="jobs"}') !== undefined ||
    r.body.includes('sluice_queue_visible'));
});

test('HTTP/2 cleartext: prior knowledge and Upgrade: h2c (curl)', async (t) => {
  const curl = spawnSync('curl', ['--version'], { encoding: 'utf8' });
  if (curl.error || !/HTTP2/.test(curl.stdout)) { t.skip('curl without HTTP/2'); return; }
  for (const mode of ['--http2-prior-knowledge', '--http2']) {
    const r = spawnSync('curl', ['-s', '-o', '/dev/null', '-w', '%{http_version} %{http_code}',
      mode, `${b.endpoint}/metrics`], { encoding: 'utf8' });
    assert.equal(r.stdout, '2 200', `${mode}: ${r.stdout} ${r.stderr}`);
  }
});

test('unknown path answers 404 with a JSON message', async () => {
  const r = await httpGet(b, '/nope');
  assert.equal(r.status, 404);
  assert.match(JSON.parse(r.body).message, /no such endpoint/);
});

test('a malformed request line gets 400 and the connection closes', async () => {
  const r = await raw('GET /healthz HTTP/1.1\r\nno colon in this header\r\n\r\n');
  assert.match(r.text, /^HTTP\/1\.1 400 /);
  assert.equal(r.closed, true);
  const m = await raw('BREW /pot HTTP/1.1\r\nhost: x\r\n\r\n');
  assert.match(m.text, /^HTTP\/1\.1 501 /);
});

test('headers over http_header_bytes_max get 431', async () => {
  const r = await raw(`GET /healthz HTTP/1.1\r\nhost: x\r\nx-big: ${'a'.repeat(20000)}\r\n\r\n`);
  assert.match(r.text, /^HTTP\/1\.1 431 /);
});

test('a body over http_body_bytes_max gets 413 before it is read', async () => {
  const r = await raw('POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 999999999\r\n\r\n');
  assert.match(r.text, /^HTTP\/1\.1 413 /);
});

test('a request that keeps trickling in is closed after frame_timeout_ms (slowloris)', async () => {
  const slow = await startBroker(['--frame-timeout-ms', '300']);
  try {
    const t0 = Date.now();
    const r = await new Promise((resolve) => {
      const s = connect(slow.httpPort, '127.0.0.1');
      const timer = setTimeout(() => { s.destroy(); resolve({ closed: false }); }, 5000);
      s.on('close', () => { clearTimeout(timer); resolve({ closed: true }); });
      s.on('error', () => {});
      s.write('GET /healthz HTTP/1.1\r\nhost: x\r\n'); /* the head never ends */
    });
    assert.equal(r.closed, true);
    assert.ok(Date.now() - t0 < 3000, 'closed after the timeout, not at the idle timeout');
  } finally {
    await slow.stop();
  }
});

test('pipelined requests are answered in order on one connection', async () => {
  const req = 'GET /healthz HTTP/1.1\r\nhost: x\r\n\r\nGET /readyz HTTP/1.1\r\nhost: x\r\n\r\n' +
    'GET /nope HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n';
  const r = await raw(req);
  const statuses = [...r.text.matchAll(/HTTP\/1\.1 (\d+)/g)].map((m) => m[1]);
  assert.deepEqual(statuses, ['200', '200', '404']);
  assert.equal(r.closed, true);
});
