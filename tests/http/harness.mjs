// harness.mjs - starts the real sluiced for the HTTP tests (node --test):
// a fresh data directory under /var/tmp, the native port ephemeral (port
// file), the HTTP port a free one (retried if another process takes it
// first). SLUICED_PATH names the binary (tests/CMakeLists.txt sets it).
// Every broker started is killed when the test process exits.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, existsSync, writeFileSync, chmodSync } from 'node:fs';
import { createServer } from 'node:net';
import { createServer as createHttpServer } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';

const SLUICED = process.env.SLUICED_PATH;
const SANITIZER = /ERROR: (AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer)|runtime error:/;
const started = new Set();
process.on('exit', () => {
  for (const b of started) {
    try { b.proc.kill('SIGKILL'); } catch { /* gone */ }
    rmSync(b.root, { recursive: true, force: true });
  }
});

async function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function spawnBroker(b) {
  const args = ['--data', `${b.root}/data`, '--host', '127.0.0.1', '--port', String(b.port ?? 0),
    '--port-file', `${b.root}/port`, '--http-port', String(b.httpPort),
    '--log-level', 'warn', ...b.extra];
  rmSync(`${b.root}/port`, { force: true });
  b.proc = spawn(SLUICED, args, { stdio: ['ignore', 'inherit', 'pipe'] });
  // Its stderr passes through, watched for sanitizer reports (the ASan + UBSan build): a
  // leak or undefined behaviour fails the test that stops the broker.
  let tail = '';
  b.proc.stderr.on('data', (d) => {
    process.stderr.write(d);
    const text = tail + d.toString('latin1');
    if (SANITIZER.test(text)) b.sanitizer = true;
    tail = text.slice(-80);
  });
  b.exited = null;
  b.proc.once('exit', (code, signal) => { b.exited = { code, signal }; });
  const deadline = Date.now() + 10000;
  while (Date.now() < deadline) {
    if (b.exited) return false;
    if (existsSync(`${b.root}/port`)) {
      const p = parseInt(readFileSync(`${b.root}/port`, 'utf8'), 10);
      if (p > 0) { b.port = p; return true; }
    }
    await sleep(10);
  }
  throw new Error('sluiced did not start within 10 s');
}

// Starts a broker; `extra` are more flags (e.g. ['--flush', 'interval']). A broker of a
// cluster (`--cluster` among them) listens on a fixed native port: its peers find it there.
export async function startBroker(extra = []) {
  if (!SLUICED) throw new Error('SLUICED_PATH is not set');
  for (let attempt = 0; attempt < 10; attempt++) {
    const b = { root: mkdtempSync('/var/tmp/sluice-http-'), extra, httpPort: await freePort() };
    if (extra.includes('--cluster')) b.port = await freePort();
    started.add(b);
    if (await spawnBroker(b)) {
      b.endpoint = `http://127.0.0.1:${b.httpPort}`;
      b.stop = () => stopBroker(b);
      b.kill9 = () => killBroker(b, 'SIGKILL');
      b.restart = async () => {
        for (let i = 0; i < 50; i++) {
          if (await spawnBroker(b)) return;
          await sleep(100); // the ports may still be taken for a moment
        }
        throw new Error('sluiced did not restart');
      };
      return b;
    }
    started.delete(b);
    rmSync(b.root, { recursive: true, force: true });
  }
  throw new Error('sluiced could not start (ports busy?)');
}

function sanitizerCheck(b) {
  if (!b.sanitizer) return;
  b.sanitizer = false;
  throw new Error('sluiced reported a sanitizer error (AddressSanitizer, LeakSanitizer or UBSan): see its stderr above');
}

async function killBroker(b, signal) {
  if (b.exited) {
    sanitizerCheck(b);
    return b.exited;
  }
  const done = new Promise((resolve) => b.proc.once('close', (code, sig) => resolve({ code, signal: sig })));
  b.proc.kill(signal);
  const status = await done;
  sanitizerCheck(b);
  return status;
}

// SIGTERM; resolves with the exit status, or fails when the broker reported a sanitizer
// error. The data directory is kept until exit.
export async function stopBroker(b) {
  return killBroker(b, 'SIGTERM');
}

// A plain HTTP/1.1 request: { status, headers, body (string) }.
export async function httpGet(b, path, init = {}) {
  const r = await fetch(`${b.endpoint}${path}`, init);
  return { status: r.status, headers: r.headers, body: await r.text() };
}

// A broker with `auth = true`: `authText` (awskey, allow and user lines) is
// written to an auth file of mode 0600 (the broker refuses any other).
// b.authFile names it; b.hup() sends SIGHUP (the broker rereads it).
export async function startAuthBroker(authText, extra = []) {
  const dir = mkdtempSync('/var/tmp/sluice-auth-');
  const authFile = `${dir}/auth`;
  writeFileSync(authFile, authText, { mode: 0o600 });
  chmodSync(authFile, 0o600);
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  const b = await startBroker(['--auth', 'true', '--auth-file', authFile, ...extra]);
  b.authFile = authFile;
  b.hup = () => b.proc.kill('SIGHUP');
  return b;
}

// Polls fn (sync or async) every `everyMs` until it returns a truthy value: that value, or
// a failure after `ms` naming `what`.
export async function until(what, fn, ms = 20000, everyMs = 50) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

// A push target's endpoint served by the test process: every POST's JSON body
// and headers are kept in `posts`; `answer(body, n)` returns {status, json} or
// null (never answer: the request hangs until close()).
export async function endpoint(answer) {
  const ep = { posts: [], hung: [] };
  ep.server = createHttpServer((req, res) => {
    let data = '';
    req.setEncoding('utf8');
    req.on('data', (c) => { data += c; });
    req.on('end', () => {
      const body = JSON.parse(data);
      ep.posts.push({ body, headers: req.headers, at: Date.now() });
      const a = answer(body, ep.posts.length);
      if (a === null) { ep.hung.push(res); return; }
      res.writeHead(a.status, { 'Content-Type': 'application/json' });
      res.end(a.json !== undefined ? JSON.stringify(a.json) : '');
    });
  });
  await new Promise((resolve) => ep.server.listen(0, '127.0.0.1', resolve));
  ep.url = `http://127.0.0.1:${ep.server.address().port}/hook`;
  ep.close = () => { for (const r of ep.hung) r.destroy(); ep.server.closeAllConnections(); ep.server.close(); };
  return ep;
}

// A standalone ZooKeeper (Debian's zookeeper package, run with java) for cluster tests:
// { connect: "127.0.0.1:PORT", stop() }, or null when java or the jar is missing (the
// test skips). Killed when the test process exits.
const ZK_JAR = '/usr/share/java/zookeeper.jar';
export async function startZooKeeper() {
  const java = process.env.JAVA || '/usr/bin/java';
  if (!existsSync(java) || !existsSync(ZK_JAR)) return null;
  const root = mkdtempSync('/var/tmp/sluice-zk-');
  const port = await freePort();
  writeFileSync(`${root}/zoo.cfg`,
    `tickTime=200\ninitLimit=10\nsyncLimit=5\ndataDir=${root}/data\nclientPort=${port}\n` +
    'clientPortAddress=127.0.0.1\nadmin.enableServer=false\nmaxSessionTimeout=60000\n' +
    '4lw.commands.whitelist=ruok\n');
  const proc = spawn(java, ['-Xmx128m', '-XX:+UseSerialGC', '-XX:TieredStopAtLevel=1',
    '-Dzookeeper.admin.enableServer=false', '-cp', `${root}:${ZK_JAR}`,
    'org.apache.zookeeper.server.quorum.QuorumPeerMain', `${root}/zoo.cfg`],
  { stdio: 'ignore' });
  const zk = { connect: `127.0.0.1:${port}`, proc, root };
  process.on('exit', () => {
    try { proc.kill('SIGKILL'); } catch { /* gone */ }
    rmSync(root, { recursive: true, force: true });
  });
  zk.stop = () => { try { proc.kill('SIGKILL'); } catch { /* gone */ } };
  const { connect } = await import('node:net');
  const ruok = () => new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    let got = '';
    s.on('connect', () => s.write('ruok'));
    s.on('data', (d) => { got += d; });
    s.on('close', () => resolve(got === 'imok'));
    s.on('error', () => resolve(false));
  });
  await until('ZooKeeper to answer imok', ruok, 30000, 100);
  return zk;
}
