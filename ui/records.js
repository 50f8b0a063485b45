/* Sluice web console: records - their formatting (hex dump, pretty JSON,
 * keys), a record's detail with "copy as CLI", and the record browser (one
 * shard or all shards merged by append time, filters, paging, live tail).
 */
'use strict';

window.SluiceRecords = (() => {
  const {
    $main, enc, h, th, td, table, fmtCount, fmtBytes, fmtTime, isoUtc, api, showError,
    clearError, mount, streamHash, qv
  } = window.SluiceCore;

  const TAIL_MS = 1000;          // live-tail poll interval
  const MAX_TAIL_ROWS = 500;
  const TAIL_BATCH = 1000;       // largest page the API allows
  const PAGE_SIZES = [20, 50, 100, 500];

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

  // ------------------------------------------------------------ record browser
  // Filters of GET .../records, in the order of the toolbar and the URL.
  const FILTERS = ['key', 'attr', 'contains', 'jpath', 'jvalue'];
  const MERGE_RECORDS_MAX = 100000;   // the API's bound on shards × limit for shard=all

  /** The record browser's URL: every part of its state (browseState() reads it back). */
  function browseHash(name, st) {
    let q = `shard=${st.shard}&from=${qv(st.from)}`;
    if (st.cursor) q += `&cursor=${qv(st.cursor)}`;
    for (const f of FILTERS) if (st[f]) q += `&${f}=${qv(st[f])}`;
    return `${streamHash(name)}/browse?${q}&limit=${st.limit}`;
  }

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


  return {oneLine, keyText, valuePreview, prettyJson, recordDetail, browseHash, browserView};
})();
