// nats_drv.js - NATS JetStream driver for bench/peers/run.sh (npm `nats` 2.x, Node 20).
//
//   node nats_drv.js --port P --mode produce|consume|tail|queue --record-bytes N
//                    --batch N [--tier T] [--duration S] [--warmup S] [--rate R] [--backlog N]
//
// Stream `bench` (subjects bench.>, file storage, JetStream defaults: no fsync per message)
// is recreated at start.
// produce: --batch JetStream publishes in flight (PUB with a reply inbox), then await all acks;
//          p50/p99 = that wait
// consume: --backlog messages first (not timed), then an ordered consumer from the start
// tail:    publishes at --rate (await each ack) while an ordered consumer (deliver new) reads;
//          p50/p99 = end to end
// queue:   backlog, then a durable pull consumer (ack explicit), max_messages --batch, ack each
// Prints one JSON line like the C drivers (drv_common.h). run.sh uses this driver for tail only;
// the other cells use nats_drv.c, as this client tops out near 30 k JetStream publishes/s
// and ~200 k consumed messages/s on one core (below the broker).
"use strict";
const { connect, AckPolicy, DeliverPolicy, StorageType } = require("nats");

const o = { host: "127.0.0.1", port: 4222, mode: "produce", system: "?", tier: "?", bytes: 1024,
            batch: 1, warmup: 0.5, duration: 3, rate: 1000, backlog: 200000 };
const names = { "--host": "host", "--port": "port", "--mode": "mode", "--system": "system",
                "--tier": "tier", "--record-bytes": "bytes", "--batch": "batch",
                "--warmup": "warmup", "--duration": "duration", "--rate": "rate",
                "--backlog": "backlog" };
for (let i = 2; i < process.argv.length; i += 2) {
  const k = names[process.argv[i]];
  if (!k) { console.error(`nats_drv: bad option ${process.argv[i]}`); process.exit(2); }
  const v = process.argv[i + 1];
  o[k] = typeof o[k] === "number" ? Number(v) : v;
}

const now = () => process.hrtime.bigint();
const NS = 1000000000n;

function payload() {
  const b = new Uint8Array(o.bytes).fill(120);
  return b;
}
function stamp(b) {
  new DataView(b.buffer, b.byteOffset, 8).setBigUint64(0, now(), true);
}
function stampOf(b) {
  return new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true);
}
function pct(a, p) {
  if (a.length === 0) return null;
  a.sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
  return Number(a[Math.round((p / 100) * (a.length - 1))]) / 1000;
}
function emit(workload, recs, secs, p50, p99) {
  const rps = secs > 0 ? recs / secs : 0;
  const r1 = (x) => (x === null ? null : Math.round(x * 10) / 10);
  console.log(JSON.stringify({ system: o.system, tier: o.tier, workload, record_bytes: o.bytes,
    batch: o.batch, records_per_s: r1(rps), mb_per_s: Math.round(rps * o.bytes / 1e4) / 100,
    p50_us: r1(p50), p99_us: r1(p99) }));
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function fill(js) {
  const b = payload();
  for (let done = 0; done < o.backlog; done += 1000) {
    const ps = [];
    for (let i = 0; i < 1000; i++) ps.push(js.publish("bench.x", b));
    await Promise.all(ps);
  }
}

async function main() {
  const nc = await connect({ servers: `${o.host}:${o.port}`, maxPingOut: 100 });
  const jsm = await nc.jetstreamManager();
  try { await jsm.streams.delete("bench"); } catch (e) { /* absent */ }
  await jsm.streams.add({ name: "bench", subjects: ["bench.>"], storage: StorageType.File });
  const js = nc.jetstream();
  const lat = [];
  const tw = now() + BigInt(Math.round(o.warmup * 1e9));
  const te = tw + BigInt(Math.round(o.duration * 1e9));
  if (o.mode === "produce") {
    const b = payload();
    let recs = 0, tstart = 0n, t;
    while ((t = now()) < te) {
      const ps = [];
      for (let i = 0; i < o.batch; i++) { stamp(b); ps.push(js.publish("bench.x", b)); }
      await Promise.all(ps);
      const t2 = now();
      if (t >= tw) {
        if (tstart === 0n) tstart = t;
        recs += o.batch;
        lat.push(t2 - t);
      }
    }
    emit("produce", recs, Number(now() - tstart) / 1e9, pct(lat, 50), pct(lat, 99));
  } else if (o.mode === "consume" || o.mode === "queue") {
    await fill(js);
    let c;
    if (o.mode === "queue") {
      await jsm.consumers.add("bench", { durable_name: "g", ack_policy: AckPolicy.Explicit });
      c = await js.consumers.get("bench", "g");
    } else {
      c = await js.consumers.get("bench");
    }
    const t0 = now(), tend = t0 + BigInt(Math.round(o.duration * 1e9));
    let recs = 0;
    const msgs = await c.consume({ max_messages: o.mode === "queue" ? o.batch : 1000 });
    const guard = setTimeout(() => msgs.stop(), o.duration * 1000 + 500);
    for await (const m of msgs) {
      if (o.mode === "queue") m.ack();
      recs++;
      if (recs >= o.backlog || (recs % 1000 === 0 && now() > tend)) break;
    }
    clearTimeout(guard);
    emit(o.mode, recs, Number(now() - t0) / 1e9, null, null);
  } else if (o.mode === "tail") {
    const c = await js.consumers.get("bench", { deliver_policy: DeliverPolicy.New });
    const msgs = await c.consume({ max_messages: 1000 });
    let recs = 0, stop = false;
    const reader = (async () => {
      for await (const m of msgs) {
        const t = now();
        if (t >= tw && t < te) { lat.push(t - stampOf(m.data)); recs++; }
        if (stop) break;
      }
    })();
    const b = payload();
    const gap = NS / BigInt(o.rate);
    let next = now();
    while (now() < te) {
      const d = next - now();
      if (d > 0n) await sleep(Number(d / 1000000n));
      next += gap;
      stamp(b);
      await js.publish("bench.x", b);
    }
    stop = true;
    await sleep(100);
    msgs.stop();
    await reader;
    emit("tail", recs, o.duration, pct(lat, 50), pct(lat, 99));
  } else {
    console.error(`nats_drv: unknown mode ${o.mode}`);
    process.exit(2);
  }
  try { await jsm.streams.delete("bench"); } catch (e) { /* ignore */ }
  await nc.close();
}
main().catch((e) => { console.error(`nats_drv: ${e.stack || e}`); process.exit(1); });
