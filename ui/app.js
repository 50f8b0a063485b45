/* Sluice web console: plain ES2020, no dependencies, no build step. This
 * file is the pages and the routing; dom.js has the DOM helpers, charts.js
 * the time-series chart (index.html loads them first).
 *
 * Two rules shape the console:
 *  - It runs under a strict CSP (no inline script/style, no eval), so all
 *    behaviour is wired with addEventListener and charts are SVG attributes.
 *  - Record keys, values and attributes are untrusted. The DOM is built only
 *    with createElement + textContent (h() of dom.js); never innerHTML.
 */
'use strict';

(() => {
  const API = '/api/v1';
  const POLL_MS = 5000;          // overview / streams / stream page refresh
  const TAIL_MS = 1000;          // live-tail poll interval
  const HISTORY_MIN_MS = 5000;   // history polls: at the sampling interval, never more often
  const MAX_TAIL_ROWS = 500;
  const TAIL_BATCH = 1000;       // largest page the API allows
  const PAGE_SIZES = [20, 50, 100, 500];
  const DLQ_LIMIT = 50;          // newest dead letters shown on a queue group page

  const $main = document.getElementById('main');
  const $error = document.getElementById('error');
  const enc = encodeURIComponent;

  // ---------------------------------------------------------------- DOM helpers
  const {h} = window.SluiceDom;
  const {timeSeriesChart, latest: latestSample} = window.SluiceCharts;

  const th = (label, cls) => h('th', {class: cls, text: label});
  const td = (text, cls) => h('td', {class: cls, text});
  const emptyRow = (cols, text) => h('tr', {class: 'empty'}, h('td', {colSpan: cols, text}));
  const table = (heads, tbody, cls) =>
    h('table', {class: 'tbl ' + (cls || '')},
      h('thead', null, h('tr', null, heads.map(([l, c]) => th(l, c)))), tbody);
  /** A status badge: green for 'ok'; `text` overrides the word shown. */
  const pill = (status, text) => h('span', {class: 'pill ' + (status === 'ok' ? 'ok' : 'bad'), text: text || status || '?'});

  function stat(label, value, testid) {
    return h('div', {class: 'stat'},
      h('div', {class: 'stat-label', text: label}),
      h('div', {class: 'stat-value', 'data-testid': testid, text: value}));
  }

  // ------------------------------------------------------------------ formatting
  const nf = new Intl.NumberFormat('en-US');
  const fmtCount = n => (typeof n === 'number' && isFinite(n) ? nf.format(n) : '—');

  function fmtBytes(n) {
    if (typeof n !== 'number' || !isFinite(n)) return '—';
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
    let v = n, i = 0;
    while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return i === 0 ? `${v} B` : `${v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0)} ${units[i]}`;
  }

  /** 1500 → "1.5 s", 200000 → "3 min 20 s", 90000000 → "1 d 1 h". */
  function fmtDuration(ms) {
    if (typeof ms !== 'number' || !isFinite(ms)) return '—';
    if (ms <= 0) return '0 s';
    if (ms < 1000) return `${Math.round(ms)} ms`;
    if (ms < 10000) return `${(ms / 1000).toFixed(1)} s`;
    let s = Math.floor(ms / 1000);
    const parts = [[Math.floor(s / 86400), 'd'], [Math.floor(s / 3600) % 24, 'h'],
      [Math.floor(s / 60) % 60, 'min'], [s % 60, 's']];
    const i = parts.findIndex(p => p[0] > 0);
    return parts.slice(i, i + 2).filter((p, j) => j === 0 || p[0] > 0).map(p => p.join(' ')).join(' ');
  }

  const fmtRate = r => (r == null ? '—' : r < 10 ? r.toFixed(1) : nf.format(Math.round(r)));
  const fmtMBps = b => (b == null ? '—' : `${(b / 1e6).toFixed(2)} MB/s`);

  /** Local time, ISO-like with milliseconds: "2026-12-01 10:00:00.123". */
  function fmtTime(ms) {
    if (!ms) return '—';
    const d = new Date(ms), p = (n, w = 2) => String(n).padStart(w, '0');
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ` +
      `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
  }
  function isoUtc(ms) {
    const d = new Date(ms);
    return isNaN(d.getTime()) ? '' : d.toISOString();
  }

  function fmtRetention(hours, bytes) {
    let t = !hours ? 'unlimited' : hours % 24 === 0 ? `${hours / 24} d` : `${hours} h`;
    if (bytes > 0) t += ` / ${fmtBytes(bytes)}`;
    return t;
  }

  /** Share of the 64-bit hash space a shard owns (hash bounds are decimal strings). */
  function hashShare(start, end) {
    try {
      return ` (${(Number(BigInt(end) - BigInt(start) + 1n) / 2 ** 64 * 100).toFixed(1)}%)`;
    } catch { return ''; }
  }

  // ---------------------------------------------------------------- API + errors
  class ApiError extends Error {
    constructor(code, message, status) { super(message); this.code = code; this.status = status || 0; }
  }

  async function api(path, init) {
    let res;
    try { res = await fetch(API + path, init); }
    catch (e) { throw new ApiError('ENETWORK', `cannot reach the broker (${e.message})`); }
    const text = await res.text().catch(() => '');
    let body = null;
    try { body = text ? JSON.parse(text) : null; } catch { /* reported below */ }
    if (!res.ok) {
      throw new ApiError((body && body.error) || `HTTP ${res.status}`,
        (body && body.message) || text.slice(0, 300) || res.statusText, res.status);
    }
    if (!body || typeof body !== 'object') throw new ApiError('EBADRESP', `unexpected response from ${path}`);
    return body;
  }

  /** Every POST carries a JSON body (at least {}): the broker refuses one without. */
  const post = (path, body) => api(path, {method: 'POST', headers: {'Content-Type': 'application/json'},
    body: JSON.stringify(body || {})});

  /** Errors of user actions are sticky: a background refresh that succeeds
   *  (clearError() without force) must not wipe the reason a purge was refused. */
  function showError(err, sticky) {
    const code = err && err.code;
    $error.replaceChildren(
      code ? h('strong', {class: 'error-code', text: code}) : '', code ? ' ' : '',
      h('span', {class: 'error-msg', text: (err && err.message) || String(err)}),
      h('button', {class: 'error-close', type: 'button', title: 'Dismiss', 'aria-label': 'Dismiss',
        text: '×', onclick: () => clearError(true)}));
    $error.dataset.sticky = sticky ? '1' : '';
    $error.hidden = false;
  }
  function clearError(force) {
    if (!force && $error.dataset.sticky === '1') return;
    $error.hidden = true;
    $error.dataset.sticky = '';
    $error.replaceChildren();
  }

  // ------------------------------------------------------- confirmation dialog
  // One modal <dialog> for every destructive action. confirmAction() resolves
  // true only for the OK button; Cancel, Escape and leaving the page give false.
  let $confirm = null;
  let confirmResolve = null;

  function confirmDialog() {
    if ($confirm) return $confirm;
    const el = h('dialog', {class: 'confirm', 'data-testid': 'confirm-dialog', 'aria-labelledby': 'confirm-title',
      'aria-describedby': 'confirm-text'});
    const text = h('p', {id: 'confirm-text', class: 'confirm-text'});
    const ok = h('button', {type: 'button', class: 'btn danger', 'data-testid': 'confirm-ok', text: 'OK',
      onclick: () => el.close('ok')});
    const cancel = h('button', {type: 'button', class: 'btn', 'data-testid': 'confirm-cancel', text: 'Cancel',
      onclick: () => el.close('cancel')});
    el.append(h('h2', {id: 'confirm-title', text: 'Please confirm'}), text,
      h('div', {class: 'confirm-buttons'}, cancel, ok));
    // Escape fires "cancel" and then closes with the returnValue left at ''.
    el.addEventListener('close', () => {
      if (el.open) return;    // a stale close event arriving after a new showModal()
      settleConfirm(el.returnValue === 'ok');
    });
    document.body.append(el);
    $confirm = {el, text, ok, cancel};
    return $confirm;
  }

  function settleConfirm(answer) {
    const resolve = confirmResolve;
    confirmResolve = null;
    if (resolve) resolve(answer);
  }

  /** Asks before a destructive action; `sentence` says exactly what will happen. */
  function confirmAction(sentence, okLabel) {
    const d = confirmDialog();
    closeConfirm();
    d.text.textContent = sentence;
    d.ok.textContent = okLabel || 'OK';
    d.el.returnValue = '';
    return new Promise(resolve => {
      confirmResolve = resolve;
      d.el.showModal();
      d.cancel.focus();       // the safe choice is the default one
    });
  }

  function closeConfirm() {
    settleConfirm(false);
    if ($confirm && $confirm.el.open) $confirm.el.close('cancel');
  }

  // --------------------------------------------------------- views and routing
  /** A view owns its timers; destroy() stops them and makes late responses no-ops
   *  (every async path checks ctx.alive before touching the DOM). */
  function newCtx(key) {
    const timers = new Set();
    const ctx = {
      key, alive: true, update: null,
      later(fn, ms) {
        const id = setTimeout(() => { timers.delete(id); if (ctx.alive) fn(); }, ms);
        timers.add(id);
      },
      destroy() { ctx.alive = false; timers.forEach(clearTimeout); timers.clear(); },
    };
    return ctx;
  }

  /** Runs fn now and again `ms` (or ms() when a function) after each completion
   *  (never overlapping). */
  function poll(ctx, fn, ms) {
    const run = async () => {
      try { await fn(); } catch (e) { if (ctx.alive) showError(e); }
      ctx.later(run, typeof ms === 'function' ? ms() : ms);
    };
    run();
  }

  function mount(ctx, node) { if (ctx.alive) $main.replaceChildren(node); }

  const streamHash = name => `#/streams/${enc(name)}`;
  const queueHash = (stream, group) => `#/queues/${enc(stream)}/${enc(group)}`;
  const deadLettersHash = (stream, group) => `${queueHash(stream, group)}?section=dlq`;
  // Keep "seq:5" / "time:..." readable in the address bar; everything else is escaped.
  const qv = v => enc(v).replace(/%3A/gi, ':').replace(/%2C/gi, ',');
  /** The record browser's URL: every part of its state (browseState() reads it back). */
  function browseHash(name, st) {
    let q = `shard=${st.shard}&from=${qv(st.from)}`;
    if (st.cursor) q += `&cursor=${qv(st.cursor)}`;
    for (const f of FILTERS) if (st[f]) q += `&${f}=${qv(st[f])}`;
    return `${streamHash(name)}/browse?${q}&limit=${st.limit}`;
  }

  function parseHash() {
    const raw = location.hash.replace(/^#/, '');
    const q = raw.indexOf('?');
    const path = q < 0 ? raw : raw.slice(0, q);
    const params = new URLSearchParams(q < 0 ? '' : raw.slice(q + 1));
    const parts = path.split('/').filter(Boolean).map(p => {
      try { return decodeURIComponent(p); } catch { return p; }
    });
    return {parts, params};
  }

  let view = null;

  function route() {
    const {parts, params} = parseHash();
    let key = null, start = null, title = 'Sluice';
    if (parts.length === 0) {
      key = 'overview'; start = overviewView; title = 'Overview · Sluice';
    } else if (parts[0] === 'streams' && parts.length === 1) {
      key = 'streams'; start = streamsView; title = 'Streams · Sluice';
    } else if (parts[0] === 'streams' && parts.length === 2) {
      key = 'stream:' + parts[1]; start = ctx => streamView(ctx, parts[1]); title = `${parts[1]} · Sluice`;
    } else if (parts[0] === 'streams' && parts.length === 3 && parts[2] === 'browse') {
      key = 'browse:' + parts[1]; start = ctx => browserView(ctx, parts[1], params);
      title = `${parts[1]} records · Sluice`;
    } else if (parts[0] === 'queues' && parts.length === 1) {
      key = 'queues'; start = queuesView; title = 'Queues · Sluice';
    } else if (parts[0] === 'queues' && parts.length === 3) {
      key = 'queue:' + JSON.stringify(parts.slice(1));
      start = ctx => queueView(ctx, parts[1], parts[2], params);
      title = `${parts[2]} · ${parts[1]} · Sluice`;
    }
    document.title = title;
    for (const a of document.querySelectorAll('[data-nav]')) {
      a.classList.toggle('active', a.dataset.nav === (parts[0] || 'overview'));
    }
    // Same browser page with new parameters (back/forward, edited URL): keep the view.
    if (view && view.key === key && view.update) { view.update(params); return; }
    if (view) view.destroy();
    view = null;
    closeConfirm();
    clearError(true);
    if (!key) {
      $main.replaceChildren();
      showError({code: 'ENOTFOUND', message: `no such page: ${location.hash}`});
      return;
    }
    $main.replaceChildren(h('p', {class: 'loading', text: 'Loading…'}));
    view = newCtx(key);
    start(view);
  }

  // --------------------------------------------------------------------- charts
  // Every chart draws the broker's own samples (GET /history), so it shows the
  // last hour as soon as a page opens, whatever the browser did before.
  const fmtPerSec = v => `${fmtRate(v)}/s`;
  const IN_OUT = (inKey, outKey) => [{key: inKey, name: 'in', cls: 'in'}, {key: outKey, name: 'out', cls: 'out'}];
  const CHARTS = {
    records: {label: 'records per second, in and out', series: IN_OUT('records_in', 'records_out'),
      fmt: fmtPerSec, floor: 1},
    bytes: {label: 'megabytes per second, in and out', series: IN_OUT('bytes_in', 'bytes_out'),
      fmt: fmtMBps, floor: 1e5},
    lagRecords: {label: 'records behind', series: [{key: 'records_behind', name: 'records behind', cls: 'lag'}],
      fmt: fmtCount, floor: 10},
    lagTime: {label: 'time behind', series: [{key: 'ms_behind', name: 'time behind', cls: 'lag-time'}],
      fmt: fmtDuration, floor: 1000},
  };
  const chart = (kind, testid, label) =>
    timeSeriesChart({...CHARTS[kind], testid, label: label || CHARTS[kind].label});

  /** A sample changes once per interval: ask at that pace, never faster than HISTORY_MIN_MS. */
  function historyEvery(hist) {
    return Math.max(HISTORY_MIN_MS, hist && hist.interval_s > 0 ? hist.interval_s * 1000 : 0);
  }

  // ------------------------------------------------------------------- overview
  function card(label, testid) {
    const val = h('div', {class: 'card-value', 'data-testid': testid, text: '—'});
    const sub = h('div', {class: 'card-sub'});
    return {el: h('div', {class: 'card'}, h('div', {class: 'card-label', text: label}), val, sub), val, sub};
  }

  function overviewView(ctx) {
    let r = null, ov = null, hist = undefined;
    const show = () => {
      if (!ctx.alive || !ov) return;
      if (!r) { r = buildOverview(); mount(ctx, r.root); }
      fillOverview(r, ov, hist);
    };
    poll(ctx, async () => {
      ov = await api('/overview');
      if (!ctx.alive) return;
      clearError();
      show();
    }, POLL_MS);
    poll(ctx, async () => {
      try { hist = await api('/history'); } catch (e) { hist = null; throw e; } finally { show(); }
    }, () => historyEvery(hist));
  }

  function buildOverview() {
    const c = {
      version: card('Version', 'ov-version'), uptime: card('Uptime', 'ov-uptime'),
      streams: card('Streams', 'ov-streams'), shards: card('Shards', 'ov-shards'),
      conns: card('Connections', 'ov-connections'), retained: card('Retained', 'ov-retained'),
      disk: card('Disk free', 'ov-disk-free'),
      rin: card('In (records/s)', 'ov-rate-in'), rout: card('Out (records/s)', 'ov-rate-out'),
    };
    const meter = h('meter', {min: 0, max: 1, value: 0, 'aria-label': 'disk used'});
    const records = chart('records', 'chart-records');
    const bytes = chart('bytes', 'chart-bytes');
    const brokers = h('tbody');
    const errBody = h('tbody');
    const errTable = table([['Code'], ['Count', 'num']], errBody);
    errTable.setAttribute('data-testid', 'ov-errors');
    const brokerTable = table([['ID', 'num'], ['Host'], ['Native port', 'num'], ['HTTP port', 'num'],
      ['Version'], ['Uptime', 'num'], ['State']], brokers, 'brokers');
    brokerTable.setAttribute('data-testid', 'ov-brokers');
    const root = h('section', {'data-testid': 'overview', 'data-loaded': '1'},
      h('h1', null, 'Overview'),
      h('div', {class: 'cards'}, Object.values(c).map(x => x.el)),
      h('div', {class: 'charts'},
        h('div', {class: 'panel'}, h('h2', {text: 'Records/s in and out'}), records.el),
        h('div', {class: 'panel'}, h('h2', {text: 'MB/s in and out'}), bytes.el)),
      h('div', {class: 'split'},
        h('div', {class: 'panel'}, h('h2', {text: 'Brokers'}), brokerTable),
        h('div', {class: 'panel'}, h('h2', {text: 'Errors by code'}), errTable)));
    return {root, c, meter, records, bytes, brokers, errBody};
  }

  function fillOverview(r, ov, hist) {
    const {c} = r;
    c.version.val.textContent = ov.version || '—';
    c.uptime.val.textContent = fmtDuration((ov.uptime_s || 0) * 1000);
    c.streams.val.textContent = fmtCount(ov.streams);
    c.shards.val.textContent = fmtCount(ov.shards);
    c.conns.val.textContent = fmtCount(ov.connections);
    c.retained.val.textContent = fmtBytes(ov.retained_bytes);
    const disk = ov.disk || {};
    c.disk.val.textContent = fmtBytes(disk.free_bytes);
    if (disk.size_bytes > 0) {
      r.meter.max = disk.size_bytes;
      r.meter.value = disk.size_bytes - disk.free_bytes;
      c.disk.sub.replaceChildren(`of ${fmtBytes(disk.size_bytes)} ` +
        `(${Math.round((1 - disk.free_bytes / disk.size_bytes) * 100)}% used)`, r.meter);
    }
    rateCard(c.rin, hist, 'records_in', 'bytes_in', ov.records_in);
    rateCard(c.rout, hist, 'records_out', 'bytes_out', ov.records_out);
    r.records.update(hist);
    r.bytes.update(hist);
    r.brokers.replaceChildren(...((ov.brokers || []).length ? ov.brokers.map(brokerRow)
      : [emptyRow(7, 'No brokers reported.')]));
    const errs = Object.entries(ov.errors || {}).sort((a, b) => b[1] - a[1]);
    r.errBody.replaceChildren(...(errs.length
      ? errs.map(([code, n]) => h('tr', {'data-code': code}, td(code, 'mono'), td(fmtCount(n), 'num')))
      : [emptyRow(2, 'No errors since start')]));
  }

  /** The latest sampled rate (records and MB per second) and the counter since start. */
  function rateCard(card, hist, recKey, byteKey, total) {
    const rate = hist ? latestSample(hist[recKey]) : null;
    const bytes = hist ? latestSample(hist[byteKey]) : null;
    card.val.textContent = fmtRate(rate);
    card.sub.replaceChildren(rate != null ? fmtMBps(bytes) : '',
      h('span', {class: 'muted', text: `${rate != null ? ' · ' : ''}total ${fmtCount(total)}`}));
  }

  function brokerRow(br) {
    return h('tr', {'data-testid': 'broker-row', 'data-id': br.id},
      td(br.id, 'num'),
      h('td', {class: 'mono'}, br.host || '—', br.self ? h('span', {class: 'muted', text: ' (this one)'}) : null),
      td(br.native_port, 'num mono'), td(br.http_port, 'num mono'), td(br.version || '—'),
      td(fmtDuration((br.uptime_s || 0) * 1000), 'num'),
      h('td', null, pill(br.state === 'up' || br.state === 'alive' ? 'ok' : br.state, br.state)));
  }

  // -------------------------------------------------------------- streams list
  const streamSamples = new Map();   // name → {t, ri, rate}, persists across visits

  function streamRate(s, now) {
    const prev = streamSamples.get(s.name);
    if (prev && now - prev.t < 1000) return prev.rate;
    const rate = prev && s.records_in >= prev.ri ? (s.records_in - prev.ri) * 1000 / (now - prev.t) : null;
    streamSamples.set(s.name, {t: now, ri: s.records_in, rate});
    return rate;
  }

  function streamsView(ctx) {
    let tbody = null, count = null;
    poll(ctx, async () => {
      const data = await api('/streams');
      if (!ctx.alive) return;
      clearError();
      const list = (data.streams || []).slice().sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      if (!tbody) {
        tbody = h('tbody');
        count = h('span', {class: 'muted small'});
        mount(ctx, h('section', {'data-testid': 'streams', 'data-loaded': '1'},
          h('h1', null, 'Streams', count),
          table([['Name'], ['Shards', 'num'], ['Retention'], ['Compression'], ['Retained', 'num'],
            ['Records', 'num'], ['In (records/s)', 'num'], ['Status']], tbody)));
      }
      count.textContent = `${list.length} total`;
      const now = Date.now();
      tbody.replaceChildren(...(list.length ? list.map(s => {
        const rate = streamRate(s, now);
        return h('tr', {'data-testid': 'stream-row', 'data-name': s.name},
          h('td', null, h('a', {href: streamHash(s.name), class: 'mono', 'data-testid': 'stream-link', text: s.name})),
          td(fmtCount(s.shards), 'num'), td(fmtRetention(s.retention_hours, s.retention_bytes)),
          td(s.compression), td(fmtBytes(s.retained_bytes), 'num'), td(fmtCount(s.records), 'num'),
          td(fmtRate(rate), 'num'), h('td', null, pill(s.status)));
      }) : [emptyRow(8, 'No streams.')]));
    }, POLL_MS);
  }

  // ---------------------------------------------------------------- stream page
  function parseAttrs(text) {
    const out = Object.create(null);   // so an attribute named "__proto__" is kept
    text.split(/\r?\n/).forEach((line, i) => {
      if (!line.trim()) return;
      const eq = line.indexOf('=');
      if (eq <= 0 || !line.slice(0, eq).trim()) throw new Error(`attributes line ${i + 1}: expected name=value`);
      out[line.slice(0, eq).trim()] = line.slice(eq + 1);
    });
    return out;
  }

  function streamView(ctx, name) {
    const expanded = new Set();   // groups whose per-shard rows are open; survives refreshes
    let r = null, last = null, histEvery = HISTORY_MIN_MS;
    // Charts outlive the table rows rebuilt on every refresh, so they keep their data.
    const tp = {records: chart('records', 'chart-stream-records'), bytes: chart('bytes', 'chart-stream-bytes')};
    const lagCharts = new Map();   // group → {records, time}

    const refresh = async () => {
      const s = await api(`/streams/${enc(name)}`);
      if (!ctx.alive) return;
      clearError();
      last = s;
      if (!r) { r = build(); mount(ctx, r.root); }
      fill(s);
    };

    function build() {
      const f = {
        title: h('h1'), summary: h('div', {class: 'stats'}),
        shards: h('tbody'), groups: h('tbody'), queues: h('tbody'),
        key: h('input', {type: 'text', name: 'produce-key', class: 'mono', placeholder: '(optional)',
          autocomplete: 'off', 'data-testid': 'produce-key'}),
        value: h('textarea', {name: 'produce-value', rows: 4, class: 'mono', 'data-testid': 'produce-value'}),
        attrs: h('textarea', {name: 'produce-attrs', rows: 3, class: 'mono', placeholder: 'type=order\nsource=console',
          'data-testid': 'produce-attrs'}),
        result: h('span', {class: 'produce-result', role: 'status', 'data-testid': 'produce-result'}),
        resultLink: h('span'),
      };
      f.send = h('button', {type: 'button', class: 'btn primary', 'data-testid': 'produce-send', text: 'Send',
        onclick: produce});
      f.root = h('section', {class: 'stream-page', 'data-testid': 'stream-page', 'data-loaded': '1'},
        h('div', {class: 'crumbs'}, h('a', {href: '#/streams', text: 'Streams'}), ' / '),
        h('div', {class: 'page-head'}, f.title,
          h('a', {class: 'btn', href: browseHash(name, {shard: 0, from: 'latest', key: '', limit: 50}),
            'data-testid': 'browse-link', text: 'Browse records →'})),
        f.summary,
        h('h2', {text: 'Throughput'}),
        h('div', {class: 'charts'},
          h('div', {class: 'panel'}, h('h3', {text: 'Records/s in and out'}), tp.records.el),
          h('div', {class: 'panel'}, h('h3', {text: 'MB/s in and out'}), tp.bytes.el)),
        h('h2', {text: 'Shards'}),
        table([['Shard', 'num'], ['Hash range'], ['First seq', 'num'], ['Next seq', 'num'], ['Records', 'num'],
          ['Bytes', 'num'], ['Segments', 'num'], ['Last append'], ['Status']], f.shards),
        h('h2', {text: 'Consumer groups'}),
        table([['Group'], ['Records behind', 'num'], ['Time behind', 'num'], ['Shards', 'num']], f.groups, 'groups'),
        f.queuesSec = h('div', {class: 'stream-queues', 'data-testid': 'stream-queues', hidden: true},
          h('h2', {text: 'Queue groups and subscriptions'}),
          queueTable(f.queues, false)),
        h('h2', {text: 'Produce a test record'}),
        h('div', {class: 'panel produce'},
          h('label', null, h('span', {text: 'Key'}), f.key),
          h('label', null, h('span', {text: 'Value'}), f.value),
          h('label', null, h('span', {text: 'Attributes (name=value per line)'}), f.attrs),
          h('div', {class: 'row'}, f.send, f.result, f.resultLink)));
      return f;
    }

    function fill(s) {
      r.title.replaceChildren(h('span', {class: 'mono', text: s.name}), pill(s.status));
      r.summary.replaceChildren(
        stat('Shards', fmtCount(s.shards), 'sp-shards'),
        stat('Retention', fmtRetention(s.retention_hours, s.retention_bytes)),
        stat('Compression', s.compression || '—'),
        stat('Retained', fmtBytes(s.retained_bytes), 'sp-retained'),
        stat('Records', fmtCount(s.records), 'sp-records'),
        stat('In', `${fmtCount(s.records_in)} rec · ${fmtBytes(s.bytes_in)}`),
        stat('Out', `${fmtCount(s.records_out)} rec · ${fmtBytes(s.bytes_out)}`));
      const shards = s.shard_list || [];
      r.shards.replaceChildren(...(shards.length ? shards.map(sh => h('tr', {'data-testid': 'shard-row', 'data-shard': sh.shard},
        h('td', {class: 'num'}, h('a', {href: browseHash(name, {shard: sh.shard, from: 'latest', key: '', limit: 50}),
          title: 'Browse this shard', text: sh.shard})),
        h('td', {class: 'mono small', text: `${sh.hash_start} – ${sh.hash_end}${hashShare(sh.hash_start, sh.hash_end)}`}),
        td(sh.first_seq, 'num mono'), td(sh.next_seq, 'num mono'), td(fmtCount(sh.next_seq - sh.first_seq), 'num'),
        td(fmtBytes(sh.retained_bytes), 'num'), td(fmtCount(sh.segments), 'num'),
        h('td', {title: sh.tail_time_ms ? isoUtc(sh.tail_time_ms) : null,
          text: sh.tail_time_ms ? `${fmtTime(sh.tail_time_ms)} (${fmtDuration(Date.now() - sh.tail_time_ms)} ago)` : 'never'}),
        h('td', {class: 'wrap'}, pill(sh.status),
          sh.status !== 'ok' && sh.status_message ? h('span', {class: 'status-msg', text: ' ' + sh.status_message}) : null)))
        : [emptyRow(9, 'No shards.')]));
      renderGroups();
      const queues = sortQueues(s.queues);
      r.queuesSec.hidden = queues.length === 0;
      r.queues.replaceChildren(...queues.map(q => queueRow(q, false)));
    }

    function renderGroups() {
      const groups = (last && last.groups) || [];
      r.groups.replaceChildren(...(groups.length ? groups.flatMap(g => {
        const open = expanded.has(g.group);
        const toggle = h('button', {type: 'button', class: 'toggle', 'aria-expanded': String(open),
          title: 'Per-shard lag and lag over time', text: open ? '▾' : '▸', onclick: () => {
            if (!expanded.delete(g.group)) {
              expanded.add(g.group);
              loadLag(g.group).catch(e => { if (ctx.alive) showError(e); });
            }
            renderGroups();
          }});
        const rows = [h('tr', {'data-testid': 'group-row', 'data-group': g.group},
          h('td', null, toggle, h('span', {class: 'mono', text: g.group})),
          h('td', {class: 'num', 'data-testid': 'lag-records', text: fmtCount(g.records_behind)}),
          td(fmtDuration(g.ms_behind), 'num'), td(fmtCount((g.shards || []).length), 'num'))];
        if (open) {
          const c = lagChartsOf(g.group);
          rows.push(h('tr', {class: 'sub', 'data-testid': 'group-detail', 'data-group': g.group}, h('td', {colSpan: 4},
            table([['Shard', 'num'], ['Checkpoint', 'num'], ['Tail seq', 'num'], ['Records behind', 'num'],
              ['Time behind', 'num']], h('tbody', null, (g.shards || []).map(x => h('tr', {'data-shard': x.shard},
              td(x.shard, 'num'), td(x.checkpoint, 'num mono'), td(x.tail_seq, 'num mono'),
              td(fmtCount(x.records_behind), 'num'), td(fmtDuration(x.ms_behind), 'num')))), 'inner'),
            h('div', {class: 'charts lag-charts'}, c.records.el, c.time.el))));
        }
        return rows;
      }) : [emptyRow(4, 'No consumer groups.')]));
    }

    function lagChartsOf(group) {
      if (!lagCharts.has(group)) {
        lagCharts.set(group, {records: chart('lagRecords', 'chart-lag-records', `records behind of group ${group}`),
          time: chart('lagTime', 'chart-lag-time', `time behind of group ${group}`)});
      }
      return lagCharts.get(group);
    }

    /** One answer feeds both charts; a failure shows in them as well as in the banner. */
    async function loadHistory(query, charts) {
      let hist = null;
      try { hist = await api(`/history?stream=${enc(name)}${query}`); return hist; }
      finally { if (ctx.alive) charts.forEach(c => c.update(hist)); }
    }
    const loadLag = group => {
      const c = lagChartsOf(group);
      return loadHistory(`&group=${enc(group)}`, [c.records, c.time]);
    };

    async function refreshHistory() {
      histEvery = historyEvery(await loadHistory('', [tp.records, tp.bytes]));
      // only groups that still exist: the history of a gone one is a 404
      const groups = new Set(((last && last.groups) || []).map(g => g.group));
      await Promise.all([...expanded].filter(g => groups.has(g)).map(loadLag));
    }

    async function produce() {
      const setResult = (text, bad) => {
        r.result.textContent = text;
        r.result.classList.toggle('bad', !!bad);
        r.resultLink.replaceChildren();
      };
      const body = {value: r.value.value};
      if (r.key.value !== '') body.key = r.key.value;
      try {
        const attrs = parseAttrs(r.attrs.value);
        if (Object.keys(attrs).length) body.attributes = attrs;
      } catch (e) { setResult(e.message, true); return; }
      r.send.disabled = true;
      setResult('sending…');
      try {
        const res = await post(`/streams/${enc(name)}/records`, body);
        if (!ctx.alive) return;
        clearError(true);
        setResult(`stored at shard ${res.shard}, seq ${res.seq}`);
        r.resultLink.append(' ', h('a', {text: 'view',
          href: browseHash(name, {shard: res.shard, from: `seq:${res.seq}`, key: '', limit: 50})}));
        refresh().catch(() => {});   // counters changed; the regular poll will report errors
      } catch (e) {
        if (!ctx.alive) return;
        setResult(`failed: ${e.message}`, true);
        showError(e, true);
      } finally {
        r.send.disabled = false;
      }
    }

    poll(ctx, refresh, POLL_MS);
    poll(ctx, refreshHistory, () => histEvery);
  }

  // ------------------------------------------------- records: formatting, detail
  function b64bytes(s) {
    try {
      const bin = atob(s || '');
      const out = new Uint8Array(bin.length);
      for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
      return out;
    } catch { return null; }
  }
  const hex = b => b.toString(16).padStart(2, '0');

  /** Classic hex dump: offset, 16 bytes of hex, printable ASCII. */
  function hexDump(bytes, limit = 65536) {
    const n = Math.min(bytes.length, limit), lines = [];
    for (let off = 0; off < n; off += 16) {
      let hx = '', asc = '';
      for (let i = 0; i < 16; i++) {
        if (i === 8) hx += ' ';
        const b = bytes[off + i];
        if (off + i < n) { hx += hex(b) + ' '; asc += b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.'; }
        else hx += '   ';
      }
      lines.push(`${off.toString(16).padStart(8, '0')}  ${hx} |${asc}|`);
    }
    if (bytes.length > n) lines.push(`… ${fmtCount(bytes.length - n)} more bytes not shown`);
    return lines.join('\n') || '(empty)';
  }

  // Control characters would break the single-line preview; show them as "·".
  const oneLine = s => s.replace(/[\r\n\t\u2028\u2029]+/g, ' ').replace(/[\x00-\x1f\x7f]/g, '·');

  function keyText(rec) {
    if (rec.key == null) return '—';
    return rec.key_encoding === 'base64' ? `base64:${rec.key}` : oneLine(rec.key);
  }

  function valuePreview(rec) {
    const v = rec.value || '';
    if (rec.value_encoding === 'base64') {
      const b = b64bytes(v);
      return b ? `[binary ${fmtBytes(b.length)}] ${Array.from(b.subarray(0, 48), hex).join(' ')}` : '[invalid base64]';
    }
    return oneLine(v.slice(0, 200));
  }

  /** Pretty JSON if the value parses, else null. Values with integers beyond 2^53
   *  stay raw: JSON.parse would silently round them and show wrong data. */
  function prettyJson(text) {
    const t = text.trim();
    if (!t || /(?<![\w."])-?\d{16,}/.test(t)) return null;
    try { return JSON.stringify(JSON.parse(t), null, 2); } catch { return null; }
  }

  /** Only quotes names that need it, so the common case matches the documented form. */
  const shellQuote = s => (/^[A-Za-z0-9._\-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

  /** The detail panel of one record: used by the browser and the dead letters. */
  function recordDetail(name, shard, rec, onClose) {
    const kv = (k, v, cls) => h('tr', null, h('th', {text: k}), h('td', {class: cls, text: v}));
    const keyBytes = rec.key_encoding === 'base64' ? b64bytes(rec.key) : null;
    const attrs = Object.entries(rec.attributes || {});
    let valueText, valueNote;
    if (rec.value_encoding === 'base64') {
      const b = b64bytes(rec.value);
      valueText = b ? hexDump(b) : rec.value;
      valueNote = b ? `binary, ${fmtCount(b.length)} bytes (hex dump)` : 'invalid base64';
    } else {
      const pretty = prettyJson(rec.value || '');
      valueText = pretty != null ? pretty : rec.value || '';
      valueNote = pretty != null ? 'JSON (pretty-printed)' : 'text';
    }
    const cli = h('input', {type: 'text', readOnly: true, name: 'cli-command', class: 'mono',
      'aria-label': 'CLI command', 'data-testid': 'cli-command',
      value: `sluice consume ${shellQuote(name)} --shard ${shard} --from seq:${rec.seq} --count 1 --json`});
    const copy = h('button', {type: 'button', class: 'btn', text: 'Copy'});
    copy.addEventListener('click', () => {
      cli.select();
      // Clipboard may be unavailable (non-secure origin) or denied; the selection still helps.
      const p = navigator.clipboard && navigator.clipboard.writeText(cli.value);
      if (p) p.then(() => { copy.textContent = 'Copied'; setTimeout(() => { copy.textContent = 'Copy'; }, 1500); }, () => {});
    });
    return h('aside', {class: 'panel detail', 'data-testid': 'record-detail'},
      h('div', {class: 'detail-head'}, h('h2', null, 'Record ', h('span', {class: 'mono', text: `${shard}/${rec.seq}`})),
        h('button', {type: 'button', class: 'btn small', text: 'Close', onclick: onClose})),
      h('table', {class: 'kv'}, h('tbody', null,
        kv('Shard', shard, 'mono'), kv('Seq', rec.seq, 'mono'),
        kv('Time (local)', fmtTime(rec.time_ms), 'mono'), kv('Time (UTC)', isoUtc(rec.time_ms), 'mono'),
        kv('Key', rec.key == null ? '(none)' : rec.key, 'mono wrap'),
        rec.key != null ? kv('Key encoding', rec.key_encoding || 'utf8') : null,
        keyBytes ? kv('Key (hex)', Array.from(keyBytes, hex).join(' '), 'mono wrap') : null,
        kv('Value encoding', rec.value_encoding || 'utf8'),
        kv('Size', `${fmtCount(rec.size)} bytes`))),
      h('h3', {text: 'Attributes'}),
      attrs.length
        ? table([['Name'], ['Value']], h('tbody', null, attrs.map(([k, v]) =>
          h('tr', null, td(k, 'mono'), td(typeof v === 'string' ? v : JSON.stringify(v), 'mono wrap')))), 'attrs')
        : h('p', {class: 'muted', text: 'No attributes.'}),
      h('h3', null, 'Value ', h('span', {class: 'muted small', text: valueNote})),
      h('pre', {class: 'value' + (rec.value_encoding === 'base64' ? ' hex' : ''), 'data-testid': 'detail-value', text: valueText}),
      h('h3', {text: 'Copy as CLI'}),
      h('div', {class: 'cli'}, cli, copy));
  }

  // ------------------------------------------------- queue groups: shared table
  // A queue group and a topic subscription (a queue group with a filter) are the
  // same object (Q in the API); the queues page and the stream page list them.
  const yesNo = b => (b ? 'yes' : 'no');
  const fmtAge = ms => (ms > 0 ? fmtDuration(ms) : '—');
  const shorten = (s, n) => (s.length > n ? s.slice(0, n - 1) + '…' : s);

  /** The filter on one line: compact JSON if it parses (and has no huge integers). */
  function compactFilter(text) {
    const pretty = prettyJson(text);
    return oneLine(pretty != null ? JSON.stringify(JSON.parse(pretty)) : text.trim());
  }

  function sortQueues(list) {
    const cmp = (a, b) => (a < b ? -1 : a > b ? 1 : 0);
    return (list || []).slice().sort((a, b) => cmp(a.stream, b.stream) || cmp(a.group, b.group));
  }

  function queueTable(tbody, withStream) {
    return table([...(withStream ? [['Stream']] : []), ['Group'], ['Visible', 'num'], ['In flight', 'num'],
      ['Delayed', 'num'], ['Dead-lettered', 'num'], ['Oldest', 'num'], ['Ordered'], ['Filter'], ['DLQ']],
    tbody, 'queues');
  }
  const QUEUE_COLS = 10;   // with the stream column

  function queueRow(q, withStream) {
    const num = (testid, n) => h('td', {class: 'num', 'data-testid': testid, text: fmtCount(n)});
    return h('tr', {'data-testid': 'queue-row', 'data-stream': q.stream, 'data-group': q.group},
      withStream ? h('td', null, h('a', {href: streamHash(q.stream), class: 'mono', text: q.stream})) : null,
      h('td', null, h('a', {href: queueHash(q.stream, q.group), class: 'mono', 'data-testid': 'queue-link',
        text: q.group})),
      num('q-visible', q.visible), num('q-inflight', q.inflight), num('q-delayed', q.delayed),
      num('q-dead', q.dead_lettered),
      h('td', {class: 'num', title: q.oldest_age_ms > 0 ? `${fmtCount(q.oldest_age_ms)} ms` : null,
        text: fmtAge(q.oldest_age_ms)}),
      td(yesNo(q.ordered)),
      q.filter
        ? h('td', {class: 'mono filter', 'data-testid': 'q-filter', title: q.filter, text: shorten(compactFilter(q.filter), 60)})
        : h('td', {class: 'muted', 'data-testid': 'q-filter', text: '—'}),
      q.dead_letter_stream
        ? h('td', null, h('a', {href: deadLettersHash(q.stream, q.group), class: 'mono', 'data-testid': 'q-dlq-link',
          title: 'Dead letters of this group', text: q.dead_letter_stream}))
        : h('td', {class: 'muted', text: '—'}));
  }

  // --------------------------------------------------------------- queues list
  function queuesView(ctx) {
    let tbody = null, count = null;
    poll(ctx, async () => {
      const data = await api('/queues');
      if (!ctx.alive) return;
      clearError();
      const list = sortQueues(data.queues);
      if (!tbody) {
        tbody = h('tbody');
        count = h('span', {class: 'muted small'});
        mount(ctx, h('section', {'data-testid': 'queues', 'data-loaded': '1'},
          h('h1', null, 'Queue groups and subscriptions', count),
          queueTable(tbody, true)));
      }
      count.textContent = `${list.length} total`;
      tbody.replaceChildren(...(list.length ? list.map(q => queueRow(q, true))
        : [emptyRow(QUEUE_COLS, 'No queue groups.')]));
    }, POLL_MS);
  }

  // ---------------------------------------------------------- queue group page
  function queueView(ctx, stream, group, params) {
    const path = `/queues/${enc(stream)}/${enc(group)}`;
    let r = null, dl = null, lastDead = null;
    let wantDlq = params.get('section') === 'dlq';

    // A link to this page's dead-letter section while already on the page.
    ctx.update = p => {
      wantDlq = p.get('section') === 'dlq';
      if (wantDlq && dl) dl.root.scrollIntoView({block: 'start'});
    };

    const refresh = async () => {
      const q = await api(path);
      if (!ctx.alive) return;
      clearError();
      if (!r) { r = build(); mount(ctx, r.root); }
      fill(q);
    };

    function build() {
      const f = {
        title: h('h1'), stats: h('div', {class: 'stats'}), config: h('tbody'),
        result: h('span', {class: 'action-result', role: 'status', 'data-testid': 'action-result'}),
        dlqSlot: h('div'),
      };
      f.purge = h('button', {type: 'button', class: 'btn danger', 'data-testid': 'queue-purge', text: 'Purge…',
        title: 'Acknowledge every visible message', onclick: purge});
      f.root = h('section', {class: 'queue-page', 'data-testid': 'queue-page', 'data-loaded': '1'},
        h('div', {class: 'crumbs'}, h('a', {href: '#/queues', text: 'Queues'}), ' / ',
          h('a', {href: streamHash(stream), class: 'mono', text: stream}), ' / '),
        h('div', {class: 'page-head'}, f.title, h('div', {class: 'row'}, f.result, f.purge)),
        f.stats,
        h('h2', {text: 'Configuration'}),
        h('div', {class: 'panel'}, h('table', {class: 'kv config'}, f.config)),
        f.dlqSlot);
      return f;
    }

    function fill(q) {
      r.title.replaceChildren(h('span', {class: 'muted', text: q.filter ? 'Subscription' : 'Queue group'}),
        h('span', {class: 'mono', 'data-testid': 'queue-name', text: q.group}),
        h('span', {class: 'muted small'}, 'of stream ', h('a', {href: streamHash(q.stream), class: 'mono', text: q.stream})));
      r.stats.replaceChildren(...[
        stat('Visible', fmtCount(q.visible), 'q-visible'),
        stat('In flight', fmtCount(q.inflight), 'q-inflight'),
        stat('Delayed', fmtCount(q.delayed), 'q-delayed'),
        stat('Dead-lettered', fmtCount(q.dead_lettered), 'q-dead'),
        // the dead-letter stream keeps redriven and discarded records: this is what is left to do
        q.dead_letter_stream ? stat('Dead letters pending', fmtCount(q.dead_letters_pending), 'q-dead-pending') : null,
        stat('Filtered out', fmtCount(q.filtered_out), 'q-filtered'),
        stat('Oldest message', fmtAge(q.oldest_age_ms), 'q-oldest')].filter(Boolean));
      const row = (k, v, testid) => h('tr', null, h('th', {text: k}), h('td', {'data-testid': testid}, v));
      const pretty = q.filter ? prettyJson(q.filter) : null;
      r.config.replaceChildren(...[
        row('Visibility timeout', h('span', {title: `${fmtCount(q.visibility_timeout_ms)} ms`,
          text: fmtDuration(q.visibility_timeout_ms)}), 'q-visibility'),
        row('Max deliveries', q.max_deliveries > 0 ? fmtCount(q.max_deliveries) : 'no dead-lettering', 'q-max-deliveries'),
        row('Max in flight', fmtCount(q.max_inflight), 'q-max-inflight'),
        row('Ordered', yesNo(q.ordered), 'q-ordered'),
        row('Dead-letter stream', q.dead_letter_stream
          ? h('a', {href: deadLettersHash(q.stream, q.group), class: 'mono', text: q.dead_letter_stream}) : '—',
        'q-dead-letter-stream'),
        row('Filter', q.filter
          ? h('pre', {class: 'value filter', 'data-testid': 'q-filter', text: pretty != null ? pretty : q.filter})
          : h('span', {class: 'muted', text: 'none: every record of the stream'}), null),
        q.filter ? row('Filter reads', q.filter_scope === 'body'
          ? 'the value, as a JSON object' : 'the attributes', 'q-filter-scope') : null].filter(Boolean));

      // The dead-letter section follows the configured stream; it reloads by
      // itself when the group dead-letters more (unless a record is open).
      const dlq = q.dead_letter_stream || '';
      if (!dl || dl.dlq !== dlq) {
        dl = dlq ? deadLetters(ctx, dlq, () => refresh().catch(() => {})) : null;
        r.dlqSlot.replaceChildren(dl ? dl.root : '');
        if (dl) {
          const first = dl.load();
          if (wantDlq) first.then(() => { if (ctx.alive) dl.root.scrollIntoView({block: 'start'}); });
        }
      } else if (lastDead !== null && q.dead_lettered !== lastDead) {
        dl.reloadIfIdle();
      }
      lastDead = q.dead_lettered;
    }

    async function purge() {
      const ok = await confirmAction(`Purge queue group ${group} of stream ${stream}: ` +
        'every visible message is acknowledged and will not be delivered.', 'Purge');
      if (!ok || !ctx.alive) return;
      r.purge.disabled = true;
      setStatus(r.result, 'purging…');
      try {
        await post(`${path}/purge`, {});
        if (!ctx.alive) return;
        clearError(true);
        setStatus(r.result, 'Purged.');
        refresh().catch(() => {});   // the regular poll reports errors
      } catch (e) {
        if (!ctx.alive) return;
        setStatus(r.result, 'Purge failed.', true);
        showError(e, true);
      } finally {
        r.purge.disabled = false;
      }
    }

    poll(ctx, refresh, POLL_MS);
  }

  function setStatus(el, text, bad) {
    el.textContent = text;
    el.classList.toggle('bad', !!bad);
  }

  // -------------------------------------------------------------- dead letters
  /** Source position a dead letter came from, from its sluice.source_* attributes. */
  function deadLetterSource(rec) {
    const a = rec.attributes || {};
    const at = k => (typeof a[k] === 'string' ? oneLine(a[k]) : '?');
    return a['sluice.source_stream'] == null ? '—'
      : `${at('sluice.source_stream')}/${at('sluice.source_shard')}#${at('sluice.source_seq')}`;
  }

  /** The dead-letter section of a queue group page: the newest DLQ_LIMIT records of
   *  one shard of stream `dlq`, their detail, "Redrive selected" (the checked rows),
   *  "Redrive all" and "Discard all".
   *  `changed` runs after either so the page can refresh its counters. */
  function deadLetters(ctx, dlq, changed) {
    let shard = 0, loadGen = 0, busy = false;
    const f = {
      shard: h('select', {name: 'dlq-shard', 'data-testid': 'dlq-shard'}),
      note: h('p', {class: 'dlq-note', 'data-testid': 'dlq-note'}),
      tbody: h('tbody'),
      detail: h('div', {class: 'detail-slot'}),
      result: h('span', {class: 'action-result', role: 'status', 'data-testid': 'dlq-result'}),
      browse: h('a', {class: 'btn', 'data-testid': 'dlq-browse', text: 'Browse the dead-letter stream →'}),
    };
    f.shardLabel = h('label', {class: 'inline', hidden: true}, h('span', {text: 'Shard'}), f.shard);
    f.redriveSel = h('button', {type: 'button', class: 'btn danger', 'data-testid': 'dlq-redrive-selected',
      text: 'Redrive selected…', disabled: true,
      title: 'Send the checked dead letters back to their source stream', onclick: () => runSelected()});
    f.redrive = h('button', {type: 'button', class: 'btn danger', 'data-testid': 'dlq-redrive', text: 'Redrive all…',
      title: 'Send every dead letter back to its source stream', onclick: () => runAll('redrive')});
    f.discard = h('button', {type: 'button', class: 'btn danger', 'data-testid': 'dlq-discard', text: 'Discard all…',
      title: 'Drop every dead letter without redriving it (needs the admin right)', onclick: () => runAll('discard')});
    f.reload = h('button', {type: 'button', class: 'btn', 'data-testid': 'dlq-reload', text: 'Reload',
      onclick: () => load()});
    f.wrap = h('div', {class: 'records-wrap dlq-wrap', hidden: true},
      table([['', 'check'], ['Seq', 'num'], ['Time'], ['Source'], ['Deliveries', 'num'], ['Key'], ['Value']], f.tbody, 'records'));
    f.body = h('div', {class: 'browse-body'}, f.wrap, f.detail);
    f.shard.addEventListener('change', () => { shard = +f.shard.value; load(); });
    f.root = h('section', {class: 'dlq', id: 'dlq', 'data-testid': 'dlq'},
      h('h2', null, 'Dead letters in ', h('span', {class: 'mono', text: dlq}),
        h('span', {class: 'muted small', text: ` · newest ${DLQ_LIMIT} of a shard, newest first`})),
      h('div', {class: 'toolbar'}, f.shardLabel, f.reload, f.redriveSel, f.redrive, f.discard, f.browse, f.result),
      f.note, f.body);

    function closeDetail() {
      f.detail.replaceChildren();
      f.body.classList.remove('with-detail');
      const sel = f.tbody.querySelector('tr.selected');
      if (sel) sel.classList.remove('selected');
    }

    /** The checked rows' positions, for "Redrive selected". */
    const checked = () => Array.from(f.tbody.querySelectorAll('input.dlq-check:checked'),
      c => ({shard, seq: c.dataset.seq}));
    const syncSelected = () => {
      const n = checked().length;
      f.redriveSel.disabled = busy || n === 0;
      f.redriveSel.textContent = n ? `Redrive ${fmtCount(n)} selected…` : 'Redrive selected…';
    };

    function row(rec) {
      const a = rec.attributes || {};
      const check = h('input', {type: 'checkbox', class: 'dlq-check', 'data-testid': 'dlq-check',
        'data-seq': String(rec.seq), 'aria-label': `Select dead letter ${rec.seq}`});
      check.addEventListener('click', e => e.stopPropagation());   // checking is not opening
      check.addEventListener('change', syncSelected);
      const tr = h('tr', {'data-testid': 'dlq-row', 'data-seq': rec.seq, tabindex: 0},
        h('td', {class: 'check'}, check),
        h('td', {class: 'num mono', text: rec.seq}),
        h('td', {class: 'mono nowrap', title: isoUtc(rec.time_ms), text: fmtTime(rec.time_ms)}),
        h('td', {class: 'mono', 'data-testid': 'dlq-source', text: deadLetterSource(rec)}),
        h('td', {class: 'num', 'data-testid': 'dlq-deliveries',
          text: typeof a['sluice.delivery_count'] === 'string' ? oneLine(a['sluice.delivery_count']) : '—'}),
        h('td', {class: 'mono key' + (rec.key == null ? ' muted' : ''), text: keyText(rec)}),
        h('td', {class: 'mono preview' + ((rec.value || '').length > 200 && rec.value_encoding !== 'base64' ? ' trunc' : ''),
          'data-testid': 'dlq-value', text: valuePreview(rec)}));
      const open = () => {
        closeDetail();
        tr.classList.add('selected');
        f.detail.replaceChildren(recordDetail(dlq, shard, rec, closeDetail));
        f.body.classList.add('with-detail');
      };
      tr.addEventListener('click', open);
      tr.addEventListener('keydown', e => { if (e.key === 'Enter' && e.target === tr) open(); });
      return tr;
    }

    function showMissing() {
      closeDetail();
      f.tbody.replaceChildren();
      f.wrap.hidden = true;
      f.shardLabel.hidden = true;
      f.redrive.hidden = f.discard.hidden = f.redriveSel.hidden = true;
      f.browse.hidden = true;
      f.note.textContent = `There are no dead letters yet (stream ${dlq} does not exist).`;
    }

    /** Whether stream `dlq` exists, asked of the stream list first: a GET of a
     *  missing stream is a 404, which the browser logs as a console error. */
    async function dlqInfo() {
      const list = await api('/streams');
      if (!(list.streams || []).some(s => s.name === dlq)) return null;
      try { return await api(`/streams/${enc(dlq)}`); }
      catch (e) { if (e.status === 404) return null; throw e; }   // deleted meanwhile
    }

    async function load() {
      const gen = ++loadGen;
      const stale = () => !ctx.alive || gen !== loadGen;
      f.root.removeAttribute('data-loaded');
      try {
        const info = await dlqInfo();
        if (stale()) return;
        if (!info) { showMissing(); f.root.dataset.loaded = '1'; return; }
        const ids = (info.shard_list || []).map(s => s.shard);
        const shardIds = ids.length ? ids : Array.from({length: info.shards || 1}, (_, i) => i);
        if (!shardIds.includes(shard)) shard = shardIds[0] || 0;
        if (f.shard.options.length !== shardIds.length ||
            shardIds.some((id, i) => f.shard.options[i].value !== String(id))) {
          f.shard.replaceChildren(...shardIds.map(i => h('option', {value: String(i), text: String(i)})));
        }
        f.shard.value = String(shard);
        f.shardLabel.hidden = shardIds.length <= 1;
        f.redrive.hidden = f.discard.hidden = f.redriveSel.hidden = false;
        f.browse.hidden = false;
        f.browse.href = browseHash(dlq, {shard, from: 'latest', key: '', limit: DLQ_LIMIT});
        const res = await api(`/streams/${enc(dlq)}/records?shard=${shard}&from=latest&limit=${DLQ_LIMIT}`);
        if (stale()) return;
        const recs = (res.records || []).slice().reverse();
        closeDetail();
        f.tbody.replaceChildren(...recs.map(row));
        syncSelected();
        f.wrap.hidden = recs.length === 0;
        f.note.textContent = recs.length ? '' : `There are no dead letters in shard ${shard}.`;
        f.root.dataset.loaded = '1';
      } catch (e) {
        if (stale()) return;
        f.note.textContent = 'The dead letters could not be loaded.';
        showError(e, true);
      }
    }

    const plural = n => `${fmtCount(n)} record${n === 1 ? '' : 's'}`;
    const ACTIONS = {
      redrive: {button: () => f.redrive, ok: 'Redrive', count: res => res.redriven, doing: 'Redriving…',
        sentence: () => `Send every dead letter of ${dlq} back to its source stream.`,
        done: n => `Redriven ${plural(n)}.`, failed: n => `Redrive stopped after ${plural(n)}.`},
      discard: {button: () => f.discard, ok: 'Discard', count: res => res.records, doing: 'Discarding…',
        sentence: () => `Discard every dead letter of ${dlq}: none of them will be redriven ` +
          '(the records stay in the stream until its retention drops them).',
        done: n => `Discarded ${plural(n)}.`,
        failed: n => (n ? `Discard stopped after ${plural(n)}.` : 'Nothing was discarded.')},
    };

    /** Redrive or discard every dead letter, behind the confirmation dialog. A
     *  request may stop at the broker's bound and say "more": call until done.
     *  Leaving the page stops the loop; what was done so far stays done. */
    async function runAll(verb) {
      const a = ACTIONS[verb];
      const ok = await confirmAction(a.sentence(), a.ok);
      if (!ok || !ctx.alive) return;
      busy = true;
      f.redrive.disabled = f.discard.disabled = f.redriveSel.disabled = true;
      let total = 0, more = true, idle = 0;
      setStatus(f.result, a.doing);
      try {
        while (more && ctx.alive) {
          const res = await post(`/streams/${enc(dlq)}/${verb}`, {});
          const n = Number(a.count(res)) || 0;
          total += n;
          more = res.more === true;
          // Guard against a request loop if the broker keeps saying "more" but moves nothing.
          idle = n > 0 ? 0 : idle + 1;
          if (more && idle >= 3) throw new ApiError('E' + verb.toUpperCase(), `the broker reports more dead letters but ${verb}s none`);
          if (more && ctx.alive) setStatus(f.result, `${a.doing} ${plural(total)} so far.`);
        }
        if (!ctx.alive) return;
        clearError(true);
        setStatus(f.result, a.done(total));
      } catch (e) {
        if (!ctx.alive) return;
        setStatus(f.result, a.failed(total), true);
        showError(e, true);
      } finally {
        busy = false;
        f.redrive.disabled = f.discard.disabled = false;
        syncSelected();
      }
      changed();
      await load();
    }

    /** Redrive the checked dead letters, behind the confirmation dialog; the
     *  broker names those it did not find (redriven or discarded already). */
    async function runSelected() {
      const sel = checked();
      if (!sel.length) return;
      const ok = await confirmAction(`Send the ${plural(sel.length)} selected in ${dlq} back to their source stream.`,
        'Redrive');
      if (!ok || !ctx.alive) return;
      busy = true;
      f.redrive.disabled = f.discard.disabled = f.redriveSel.disabled = true;
      setStatus(f.result, 'Redriving…');
      try {
        const res = await post(`/streams/${enc(dlq)}/redrive`, {records: sel});
        if (!ctx.alive) return;
        const missing = (res.missing || []).length;
        clearError(true);
        setStatus(f.result, `Redriven ${plural(Number(res.redriven) || 0)}.` +
          (missing ? ` ${plural(missing)} ${res.missing_reason || 'not found'}.` : ''), missing > 0);
      } catch (e) {
        if (!ctx.alive) return;
        setStatus(f.result, 'Nothing was redriven.', true);
        showError(e, true);
      } finally {
        busy = false;
        f.redrive.disabled = f.discard.disabled = false;
      }
      changed();
      await load();
    }

    return {
      dlq, root: f.root, load,
      reloadIfIdle() {
        if (!busy && !f.body.classList.contains('with-detail') && !checked().length) load();
      },
    };
  }

  // ------------------------------------------------------------ record browser
  // Filters of GET .../records, in the order of the toolbar and the URL.
  const FILTERS = ['key', 'attr', 'contains', 'jpath', 'jvalue'];
  const MERGE_RECORDS_MAX = 100000;   // the API's bound on shards × limit for shard=all

  function browseState(params) {
    const rawShard = params.get('shard') || '0';
    const shard = rawShard === 'all' ? 'all' : parseInt(rawShard, 10);
    const limit = parseInt(params.get('limit') || '50', 10);
    const st = {
      shard: shard === 'all' || shard >= 0 ? shard : 0,
      from: (params.get('from') || 'latest').trim(),
      // where each shard of the merged view goes on (from a previous page); wins over `from`
      cursor: shard === 'all' ? params.get('cursor') || '' : '',
      limit: limit >= 1 && limit <= 1000 ? limit : 50,
    };
    for (const f of FILTERS) st[f] = params.get(f) || '';
    return st;
  }

  const isFiltered = st => FILTERS.some(f => st[f]);

  /** Why the filters cannot be sent as they are, or null: said before asking the broker. */
  function filterProblem(st) {
    if (st.attr && st.attr.indexOf('=') <= 0) return 'Attribute filter: name=value, e.g. type=order';
    if (st.jvalue && !st.jpath) return 'A JSON value needs a JSON path to compare it with';
    return null;
  }

  function browserView(ctx, name, params) {
    let st = browseState(params);
    // Page-start positions ({from, cursor}) for "Prev" where pages have no fixed
    // size: filtered, or the merged view, which the API pages forward only.
    // Stored in history.state so back/forward and reload keep a consistent stack.
    let backStack = stackOf(history.state);
    let page = null;       // last records response, adjusted while tailing
    let viewStart = 0;     // seq of the first row shown (moves as tail trims rows)
    let loadGen = 0, tailGen = 0, tailOn = false, loads = 0, shardCount = 1;
    let r = null;

    ctx.update = p => {
      st = browseState(p);
      backStack = stackOf(history.state);
      if (!r) return;     // initial load is still running and will read st
      setTail(false);
      syncControls();
      load();
    };

    (async () => {
      let info;
      try { info = await api(`/streams/${enc(name)}`); }
      catch (e) { if (ctx.alive) { $main.replaceChildren(); showError(e); } return; }
      if (!ctx.alive) return;
      r = build(info);
      syncControls();
      await load();
      mount(ctx, r.root);
    })();

    /** Stacks saved before positions were objects hold plain `from` strings. */
    function stackOf(state) {
      return ((state && state.stack) || []).map(p => (typeof p === 'string' ? {from: p, cursor: ''} : p));
    }

    const merged = () => st.shard === 'all';

    function build(info) {
      const ids = (info.shard_list || []).map(s => s.shard);
      const shardIds = ids.length ? ids : Array.from({length: info.shards || 1}, (_, i) => i);
      shardCount = shardIds.length;
      const text = (nm, placeholder, cls) => h('input', {type: 'text', name: nm, class: 'mono ' + (cls || ''),
        autocomplete: 'off', spellcheck: 'false', placeholder, 'data-testid': `browse-${nm}`});
      const f = {
        shard: h('select', {name: 'shard', 'data-testid': 'browse-shard'},
          h('option', {value: 'all', text: 'all shards'}),
          shardIds.map(i => h('option', {value: String(i), text: String(i)}))),
        from: text('from', 'oldest | latest | seq:N | time:2026-12-01T00:00:00Z', 'from'),
        key: text('key', 'any key'),
        attr: text('attr', 'name=value'),
        contains: text('contains', 'text in the value'),
        jpath: text('jpath', 'detail.items[0].sku'),
        jvalue: text('jvalue', 'any value'),
        limit: h('select', {name: 'limit', 'data-testid': 'browse-limit'},
          PAGE_SIZES.map(n => h('option', {value: String(n), text: String(n)}))),
        tail: h('input', {type: 'checkbox', name: 'live-tail', 'data-testid': 'live-tail'}),
        range: h('span', {class: 'range mono', 'data-testid': 'browse-range'}),
        thead: h('thead'),
        tbody: h('tbody'),
        empty: h('p', {class: 'empty-note', hidden: true}),
        detail: h('div', {class: 'detail-slot'}),
      };
      const btn = (label, testid, onclick, cls) => h('button', {type: 'button', class: 'btn ' + (cls || ''),
        'data-testid': testid, text: label, onclick});
      f.prev = btn('◀ Prev', 'page-prev', prev);
      f.next = btn('Next ▶', 'page-next', next);
      f.wrap = h('div', {class: 'records-wrap'}, h('table', {class: 'tbl records'}, f.thead, f.tbody), f.empty);
      f.body = h('div', {class: 'browse-body'}, f.wrap, f.detail);
      const onEnter = e => { if (e.key === 'Enter') nav(controls()); };
      for (const k of ['from', ...FILTERS]) f[k].addEventListener('keydown', onEnter);
      f.shard.addEventListener('change', () => nav(controls()));
      f.limit.addEventListener('change', () => nav(controls()));
      f.tail.addEventListener('change', onTailToggle);
      const field = (label, input, cls) => h('label', {class: cls}, h('span', {text: label}), input);
      f.root = h('section', {class: 'browser', 'data-testid': 'browser'},
        h('div', {class: 'crumbs'}, h('a', {href: '#/streams', text: 'Streams'}), ' / ',
          h('a', {href: streamHash(name), class: 'mono', text: name}), ' / '),
        h('h1', null, 'Records in ', h('span', {class: 'mono', text: name})),
        h('div', {class: 'toolbar'},
          field('Shard', f.shard),
          field('From', f.from, 'grow'),
          field('Page size', f.limit),
          btn('Go', 'browse-go', () => nav(controls()), 'primary'),
          h('div', {class: 'btn-group'},
            btn('Oldest', 'page-oldest', () => nav({...controls(), from: 'oldest'})),
            f.prev, f.next,
            btn('Latest', 'page-latest', () => nav({...controls(), from: 'latest'}))),
          h('label', {class: 'check'}, f.tail, h('span', {text: 'Live tail'})),
          h('div', {class: 'filters', role: 'group', 'aria-label': 'Filters'},
            field('Key', f.key), field('Attribute', f.attr), field('Value contains', f.contains, 'grow'),
            field('JSON path', f.jpath), field('JSON value', f.jvalue),
            btn('Clear filters', 'browse-clear', () => nav({...controls(), ...Object.fromEntries(FILTERS.map(k => [k, '']))})))),
        h('div', {class: 'rangebar'}, f.range),
        f.body);
      return f;
    }

    /** Makes sure a select shows `value`, adding an option for linked-in odd values. */
    function selectValue(sel, value) {
      if (![...sel.options].some(o => o.value === value)) sel.append(h('option', {value, text: value}));
      sel.value = value;
    }

    function syncControls() {
      selectValue(r.shard, String(st.shard));
      selectValue(r.limit, String(st.limit));
      r.from.value = st.from;
      for (const f of FILTERS) r[f].value = st[f];
    }

    function controls() {
      const c = {shard: r.shard.value === 'all' ? 'all' : +r.shard.value, from: r.from.value.trim() || 'latest',
        cursor: '', limit: +r.limit.value};
      // keys and substrings may mean their spaces; a name=value or a path does not
      for (const f of FILTERS) c[f] = f === 'attr' || f === 'jpath' ? r[f].value.trim() : r[f].value;
      return c;
    }

    /** Every navigation goes through the URL so the page can be linked and reloaded. */
    function go(next, stack = []) {
      const problem = filterProblem(next);
      if (problem) { showError({code: 'EINVAL', message: problem}); return Promise.resolve(); }
      st = next;
      backStack = stack;
      const hash = browseHash(name, st);
      // pushState does not fire hashchange, so the router won't rebuild this view.
      if (location.hash !== hash) history.pushState({stack}, '', hash);
      else history.replaceState({stack}, '', hash);
      syncControls();
      return load();
    }
    function nav(next, stack) { setTail(false); return go(next, stack); }

    const here = () => ({from: st.from, cursor: st.cursor});

    function prev() {
      if (!page) return;
      if ((merged() || isFiltered(st)) && backStack.length) {
        nav({...st, ...backStack[backStack.length - 1]}, backStack.slice(0, -1));
      } else if (!merged()) {
        // Unfiltered sequence numbers are dense, so the previous page start is exact.
        nav({...st, from: `seq:${Math.max(page.first_seq, page.start_seq - st.limit)}`});
      }
    }
    function next() {
      if (!page) return;
      if (merged()) nav({...st, cursor: page.cursor.join(',')}, [...backStack, here()]);
      else nav({...st, from: `seq:${page.next_seq}`}, isFiltered(st) ? [...backStack, here()] : []);
    }

    /** A merged page asks every shard for `limit`; the API bounds shards × limit. */
    const pageLimit = limit => (merged() ? Math.min(limit, Math.floor(MERGE_RECORDS_MAX / shardCount)) : limit);

    function recordsQuery(pos, limit) {
      let q = `/streams/${enc(name)}/records?shard=${st.shard}&limit=${pageLimit(limit)}` +
        (pos.cursor ? `&cursor=${enc(pos.cursor)}` : `&from=${enc(pos.from)}`);
      for (const f of FILTERS) if (st[f]) q += `&${f}=${enc(st[f])}`;
      return q;
    }

    function setHeads() {
      const heads = [...(merged() ? [['Shard', 'num']] : []), ['Seq', 'num'], ['Time'], ['Key'], ['Value'], ['Size', 'num']];
      r.thead.replaceChildren(h('tr', null, heads.map(([l, c]) => th(l, c))));
    }

    async function load() {
      const gen = ++loadGen;
      r.range.textContent = 'loading…';
      try {
        const res = await api(recordsQuery(st, st.limit));
        if (!ctx.alive || gen !== loadGen) return;
        clearError();
        page = res;
        viewStart = res.start_seq;
        closeDetail();
        setHeads();
        r.tbody.replaceChildren(...(res.records || []).map(recordRow));
        r.wrap.scrollTop = 0;
        r.root.dataset.loaded = '1';
      } catch (e) {
        if (!ctx.alive || gen !== loadGen) return;
        page = null;
        closeDetail();
        r.tbody.replaceChildren();
        showError(e);
      }
      renderState();
      r.root.dataset.loads = String(++loads);   // lets a test wait for this page, not the last one
    }

    function renderState() {
      const rows = r.tbody.rows.length, filtered = isFiltered(st);
      r.empty.hidden = rows > 0 || !page;
      r.empty.textContent = filtered ? 'No matching records in the scanned range.' : 'No records.';
      r.prev.disabled = !page || (merged() || filtered ? !backStack.length : page.start_seq <= page.first_seq);
      r.prev.title = merged() && !backStack.length
        ? 'The merged view of all shards pages forward only: use Oldest or Latest' : '';
      r.next.disabled = !page || (merged() ? !page.more : page.next_seq >= page.tail_seq);
      if (!page) { r.range.textContent = ''; return; }
      const matching = filtered ? ` · ${fmtCount(rows)} matching` : '';
      const live = tailOn ? ' · live' : '';
      if (merged()) {
        r.range.textContent = `all ${shardCount} shards by append time · ${fmtCount(rows)} records` +
          (filtered ? ' matching' : '') + (page.more ? ' · more after this page' : ' · up to the end') + live;
        return;
      }
      const of = `${page.first_seq}–${page.tail_seq - 1}`;
      const end = page.next_seq - 1;
      r.range.textContent = (page.tail_seq <= page.first_seq ? `shard ${st.shard} is empty (next seq ${page.tail_seq})`
        : end >= viewStart ? `seq ${viewStart}–${end} of ${of}` : `no records at seq ${viewStart} of ${of}`) +
        matching + live;
    }

    function recordRow(rec) {
      const tr = h('tr', {'data-testid': 'record-row', 'data-shard': rec.shard, 'data-seq': rec.seq,
        'data-append': rec.append_ms, tabindex: 0},
        merged() ? h('td', {class: 'num mono', 'data-testid': 'rec-shard', text: rec.shard}) : null,
        h('td', {class: 'num mono', 'data-testid': 'rec-seq', text: rec.seq}),
        h('td', {class: 'mono nowrap', title: isoUtc(rec.time_ms), text: fmtTime(rec.time_ms)}),
        h('td', {class: 'mono key' + (rec.key == null ? ' muted' : ''), 'data-testid': 'rec-key', text: keyText(rec)}),
        h('td', {class: 'mono preview' + ((rec.value || '').length > 200 && rec.value_encoding !== 'base64' ? ' trunc' : ''),
          'data-testid': 'rec-value', text: valuePreview(rec)}),
        td(fmtBytes(rec.size), 'num'));
      const open = () => showDetail(tr, rec);
      tr.addEventListener('click', open);
      tr.addEventListener('keydown', e => { if (e.key === 'Enter') open(); });
      return tr;
    }

    function closeDetail() {
      r.detail.replaceChildren();
      r.body.classList.remove('with-detail');
      const sel = r.tbody.querySelector('tr.selected');
      if (sel) sel.classList.remove('selected');
    }

    function showDetail(tr, rec) {
      closeDetail();
      tr.classList.add('selected');
      r.detail.replaceChildren(recordDetail(name, rec.shard, rec, closeDetail));
      r.body.classList.add('with-detail');
    }

    function setTail(on) {
      tailOn = on;
      tailGen++;
      if (!r) return;
      r.tail.checked = on;
      r.root.classList.toggle('tailing', on);
      renderState();
      if (on) tailTick(tailGen);
    }

    async function onTailToggle() {
      if (!r.tail.checked) { setTail(false); return; }
      // Tailing appends from the end of the current page. If that is far behind the
      // head, start from the newest page instead of replaying the whole backlog.
      const behind = !page || (merged() ? page.more : !isFiltered(st) && page.tail_seq - page.next_seq > MAX_TAIL_ROWS);
      if (behind) await go({...st, from: 'latest', cursor: ''});
      if (ctx.alive && r.tail.checked && page) setTail(true);
      else if (ctx.alive) r.tail.checked = false;
    }

    async function tailTick(gen) {
      if (gen !== tailGen || !ctx.alive || !page) return;
      try {
        const pos = merged() ? {cursor: page.cursor.join(',')} : {from: `seq:${page.next_seq}`};
        const res = await api(recordsQuery(pos, TAIL_BATCH));
        if (gen !== tailGen || !ctx.alive) return;
        clearError();
        append(res);
      } catch (e) {
        if (gen === tailGen && ctx.alive) showError(e);
      }
      if (gen === tailGen) ctx.later(() => tailTick(gen), TAIL_MS);
    }

    function append(res) {
      const w = r.wrap;
      const atBottom = w.scrollHeight - w.scrollTop - w.clientHeight < 40;
      const recs = (res.records || []).slice(-MAX_TAIL_ROWS);
      if (recs.length) {
        r.tbody.append(...recs.map(recordRow));
        while (r.tbody.rows.length > MAX_TAIL_ROWS) r.tbody.rows[0].remove();
        if (atBottom) w.scrollTop = w.scrollHeight;
      }
      if (merged()) {
        page.cursor = res.cursor;
        page.more = res.more;
      } else {
        page.next_seq = Math.max(page.next_seq, res.next_seq);
        page.tail_seq = res.tail_seq;
        page.first_seq = res.first_seq;
        viewStart = r.tbody.rows.length ? Number(r.tbody.rows[0].dataset.seq) : page.next_seq;
        page.start_seq = viewStart;   // so Prev continues from what is on screen
      }
      renderState();
    }
  }

  // ------------------------------------------------------------------------ boot
  window.addEventListener('hashchange', route);
  route();
})();
