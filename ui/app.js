/* Sluice web console: plain ES2020, no dependencies, no build step. This
 * file is the routing, the overview, the streams list and a stream's page;
 * dom.js has the DOM helpers, charts.js the time-series chart, core.js what
 * every page shares, records.js the record browser, queues.js the queue
 * groups and dead letters (index.html loads them in that order).
 */
'use strict';

(() => {
  const {
    POLL_MS, $main, enc, h, td, emptyRow, table, pill, stat, fmtCount, fmtBytes, fmtDuration,
    fmtRate, fmtMBps, fmtTime, isoUtc, fmtRetention, hashShare, api, post, showError, clearError,
    closeConfirm, newCtx, poll, mount, streamHash
  } = window.SluiceCore;
  const {browseHash, browserView} = window.SluiceRecords;
  const {sortQueues, queueTable, queueRow, queuesView, queueView} = window.SluiceQueues;
  const HISTORY_MIN_MS = 5000;   // history polls: at the sampling interval, never more often

  const {timeSeriesChart, latest: latestSample} = window.SluiceCharts;

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

  /** A resharded stream's shard: closed (into its children) and where it came from. */
  function lineageNote(sh) {
    const ids = xs => (xs || []).join(' and ');
    const parts = [];
    if (sh.closed) parts.push(`closed → ${ids(sh.children)}`);
    if ((sh.parents || []).length) parts.push(`from ${ids(sh.parents)}`);
    return parts.length ? h('span', {class: 'status-msg muted', 'data-testid': 'shard-lineage',
      text: ' ' + parts.join(', ')}) : null;
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
          sh.status !== 'ok' && sh.status_message ? h('span', {class: 'status-msg', text: ' ' + sh.status_message}) : null,
          lineageNote(sh))))
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


  // ------------------------------------------------------------------------ boot
  window.addEventListener('hashchange', route);
  route();
})();
