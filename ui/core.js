/* Sluice web console: what every page file shares - table and stat
 * builders, number/time formatting, the API client and the error banner,
 * the confirmation dialog, a view's timers (newCtx, poll) and the hashes of
 * the pages. index.html loads it after dom.js and before the page files.
 *
 * Two rules shape the console:
 *  - It runs under a strict CSP (no inline script/style, no eval), so all
 *    behaviour is wired with addEventListener and charts are SVG attributes.
 *  - Record keys, values and attributes are untrusted. The DOM is built only
 *    with createElement + textContent (h() of dom.js); never innerHTML.
 */
'use strict';

window.SluiceCore = (() => {
  const API = '/api/v1';
  const POLL_MS = 5000;          // overview / streams / stream page refresh
  const $main = document.getElementById('main');
  const $error = document.getElementById('error');
  const enc = encodeURIComponent;

  // ---------------------------------------------------------------- DOM helpers
  const {h} = window.SluiceDom;

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

  function setStatus(el, text, bad) {
    el.textContent = text;
    el.classList.toggle('bad', !!bad);
  }

  return {
    POLL_MS, $main, enc, h, th, td, emptyRow, table, pill, stat, fmtCount, fmtBytes,
    fmtDuration, fmtRate, fmtMBps, fmtTime, isoUtc, fmtRetention, hashShare, ApiError, api, post,
    showError, clearError, confirmAction, closeConfirm, newCtx, poll, mount, streamHash, queueHash,
    deadLettersHash, qv, setStatus
  };
})();
