// push_bench.mjs - push targets (#17) next to pull receivers, one run:
//   a. throughput: N records of 100 B preloaded in a 2-shard queue; a push
//      target (sluice format) to an HTTP endpoint in this process (Node's
//      http, keep-alive, answers 200 at once): messages/s from `target add`
//      until the endpoint has every record, at batch 100 (concurrency 4) and
//      batch 1 (concurrency 4, N/10 records);
//   b. latency: 500 records/s for 6 s through the broker's HTTP API (each
//      stored durably before it is answered), target batch 10, concurrency
//      2: p50/p99 from a record's append time (its time_ms) to its arrival at
//      the endpoint, the first second (warm-up) left out;
//   c. the pull side in the same run: bench/queue_bench (libsluice
//      receivers, receive 100 + ack; latency at 1,000/s) on its own broker.
// Every record is checked to arrive exactly once (a, b).
//
//   node bench/push_bench.mjs [--records N]     (after building Release)
import { execFile, spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdtempSync, rmSync, readFileSync, existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const BUILD = process.env.SLUICE_BUILD ?? join(ROOT, 'build', 'release');
const SLUICED = join(BUILD, 'broker', 'sluiced');
const CLI = join(BUILD, 'client', 'sluice');
const QUEUE_BENCH = join(BUILD, 'bench', 'queue_bench');
const N = Number(process.argv[process.argv.indexOf('--records') + 1] || 100000) || 100000;
const run = promisify(execFile);
const WARMUP = 500; // latency records sent in the first second, not counted

async function freePort() {
  const s = createServer();
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

async function broker() {
  const root = mkdtempSync('/var/tmp/sluice-push-bench-');
  const httpPort = await freePort();
  const proc = spawn(SLUICED, ['--data', `${root}/data`, '--host', '127.0.0.1', '--port', '0',
    '--port-file', `${root}/port`, '--http-port', String(httpPort), '--log-level', 'warn',
    '--flush', 'always'], { stdio: ['ignore', 'inherit', 'inherit'] });
  for (let i = 0; i < 500 && !existsSync(`${root}/port`); i++) await sleep(10);
  const port = Number(readFileSync(`${root}/port`, 'utf8'));
  const cli = async (args, input) => {
    const p = run(CLI, ['--broker', `127.0.0.1:${port}`, ...args], { maxBuffer: 1 << 26 });
    if (input !== undefined) p.child.stdin.end(input);
    return (await p).stdout;
  };
  const stop = async () => {
    const done = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGTERM');
    await done;
    rmSync(root, { recursive: true, force: true });
  };
  return { cli, stop, httpPort };
}

function endpoint() {
  const ep = { seen: new Map(), dup: 0, lat: [], posts: 0 };
  ep.server = createServer({ keepAlive: true }, (req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const now = Date.now();
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      ep.posts++;
      for (const r of body.records) {
        const k = r.value;
        if (ep.seen.has(k)) ep.dup++;
        ep.seen.set(k, now);
        ep.lat.push([k, now - r.time_ms]);
      }
      res.writeHead(200, { 'Content-Length': 0 });
      res.end();
    });
  });
  return new Promise((resolve) => ep.server.listen(0, '127.0.0.1', () => {
    ep.url = `http://127.0.0.1:${ep.server.address().port}/`;
    resolve(ep);
  }));
}

const pct = (a, p) => { const s = [...a].sort((x, y) => x - y); return s[Math.min(s.length - 1, Math.floor(s.length * p))]; };
const lines = (prefix, n) => Array.from({ length: n }, (_, i) => `${prefix}${String(i).padStart(12, '0')}`.padEnd(100, '.')).join('\n') + '\n';

async function throughput(b, name, n, batch) {
  const ep = await endpoint();
  await b.cli(['queue', 'create', name, '--group', 'g', '--shards', '2']);
  for (let i = 0; i < n; i += 50000) {
    await b.cli(['queue', 'send', name], lines(`${name}-${i}-`, Math.min(50000, n - i)));
  }
  const t0 = performance.now();
  await b.cli(['target', 'add', 'g', '--stream', name, '--url', ep.url, '--batch', String(batch),
    '--concurrency', '4']);
  while (ep.seen.size < n) await sleep(5);
  const s = (performance.now() - t0) / 1000;
  await sleep(200);
  if (ep.dup !== 0 || ep.seen.size !== n) throw new Error(`${name}: ${ep.seen.size} seen, ${ep.dup} twice`);
  ep.server.close();
  return { rate: n / s, posts: ep.posts };
}

async function latency(b, concurrency = Number(process.env.LAT_CONC || 2)) {
  const ep = await endpoint();
  await b.cli(['queue', 'create', 'lat', '--group', 'g', '--shards', '2']);
  await b.cli(['target', 'add', 'g', '--stream', 'lat', '--url', ep.url, '--batch', '10',
    '--concurrency', String(concurrency)]);
  const url = `http://127.0.0.1:${b.httpPort}/api/v1/streams/lat/records`;
  const total = 3000;
  const t0 = Date.now();
  const sends = [];
  for (let i = 0; i < total; i++) {
    const due = t0 + i * 2;
    const wait = due - Date.now();
    if (wait > 0) await sleep(wait);
    sends.push(fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ value: `lat-${i}`, key: `k${i % 64}` }) }).then((r) => r.text()));
  }
  await Promise.all(sends);
  while (ep.seen.size < total) await sleep(5);
  ep.server.close();
  if (ep.dup !== 0) throw new Error(`latency: ${ep.dup} twice`);
  // The first second warms up (segment files, the first connection): left out.
  const lat = ep.lat.filter(([k]) => Number(k.slice(4)) >= WARMUP).map(([, ms]) => ms);
  return { p50: pct(lat, 0.5), p99: pct(lat, 0.99), max: Math.max(...lat), n: lat.length };
}

const b = await broker();
if (process.env.LAT_ONLY) { console.log(await latency(b)); await b.stop(); process.exit(0); }
const big = await throughput(b, 'push100', N, 100);
const one = await throughput(b, 'push1', Math.floor(N / 10), 1);
const lat = await latency(b);
await b.stop();
const pull = (await run(QUEUE_BENCH, ['--messages', String(N), '--fanout-messages', '1000',
  '--subs', '1', '--seconds', '5'], { maxBuffer: 1 << 24, env: { ...process.env, SLUICED_PATH: SLUICED } })).stdout;
const pullRate = /a\. receive[^|]*\|\s*\*\*(\d+) msg\/s/.exec(pull)?.[1] ?? '?';
const pullLat = /c\. latency[^|]*\|\s*([^|\n]+)/.exec(pull)?.[1]?.trim() ?? '?';
const f = (x) => Math.round(x).toLocaleString('en-US');
console.log(`| case | result |\n|---|---|`);
console.log(`| push, batch 100, concurrency 4, ${f(N)} × 100 B (sluice format, local endpoint) | ${f(big.rate)} messages/s (${f(big.posts)} POSTs) |`);
console.log(`| push, batch 1, concurrency 4, ${f(N / 10)} × 100 B | ${f(one.rate)} messages/s |`);
console.log(`| pull: queue_bench receive 100 + ack, 4 receivers, ${f(N)} × 100 B (same run) | ${f(Number(pullRate))} messages/s |`);
console.log(`| push latency at 500 messages/s, append → endpoint, batch 10 (${f(lat.n)} records after 1 s) | p50 ${lat.p50} ms, p99 ${lat.p99} ms, max ${lat.max} ms |`);
console.log(`| pull latency at 1,000 messages/s, send → receive (queue_bench, same run) | ${pullLat} |`);
