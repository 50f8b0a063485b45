/* Sluice web console: queue groups and topic subscriptions - the shared
 * table, the queues page, a group's page (counters, settings, purge) and its
 * dead letters (redrive selected or all, discard all).
 */
'use strict';

window.SluiceQueues = (() => {
  const {
    POLL_MS, enc, h, th, td, emptyRow, table, stat, fmtCount, fmtDuration, fmtTime, isoUtc,
    ApiError, api, post, showError, clearError, confirmAction, poll, mount, streamHash, queueHash,
    deadLettersHash, setStatus
  } = window.SluiceCore;
  const {
    oneLine, keyText, valuePreview, prettyJson, recordDetail, browseHash
  } = window.SluiceRecords;

  const DLQ_LIMIT = 50;          // newest dead letters shown on a queue group page

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
      ['Delayed', 'num'], ['Dead-lettered', 'num'], ['Oldest', 'num'], ['Ordered'], ['Filter'], ['DLQ'],
      ['Push target']],
    tbody, 'queues');
  }
  const QUEUE_COLS = 11;   // with the stream column

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
        : h('td', {class: 'muted', text: '—'}),
      q.push
        ? h('td', {class: 'push-cell', 'data-testid': 'q-push'}, pushState(q.push), ' ',
          h('span', {class: 'mono', title: q.push.destination, text: shorten(q.push.destination, 40)}))
        : h('td', {class: 'muted', 'data-testid': 'q-push', text: '—'}));
  }

  // ---------------------------------------------------------------- push targets
  // A group the broker delivers by itself (sluice target add, SNS subscriptions,
  // EventBridge rules): where to, how, and how it is going.

  /** "flowing", or "paused" with why and for how long. */
  function pushState(p) {
    if (p.paused_ms > 0) {
      return h('span', {class: 'pill bad', 'data-testid': 'push-state',
        title: `${fmtCount(p.consecutive_failures)} failed batches in a row; next try in ${fmtDuration(p.paused_ms)}`,
        text: 'paused'});
    }
    return h('span', {class: 'pill ' + (p.consecutive_failures > 0 ? 'bad' : 'ok'), 'data-testid': 'push-state',
      text: p.consecutive_failures > 0 ? 'retrying' : 'flowing'});
  }

  /** The push target panel of a group page: settings, then counters and the last answer. */
  function pushPanel(p) {
    const row = (k, v, testid) => h('tr', null, h('th', {text: k}), h('td', {'data-testid': testid}, v));
    const answer = p.last_status > 0 ? `HTTP ${p.last_status}` : p.last_error ? 'no answer' : '—';
    const wait = p.batch_window_ms > 0 ? `, waiting up to ${fmtDuration(p.batch_window_ms)} to fill it` : '';
    return h('div', {class: 'panel push', 'data-testid': 'push-panel'},
      h('div', {class: 'stats'},
        stat('Delivered', fmtCount(p.delivered), 'push-delivered'),
        stat('Released for retry', fmtCount(p.released), 'push-released'),
        stat('Batches ok', fmtCount(p.batches_ok), 'push-batches-ok'),
        stat('Batches failed', fmtCount(p.batches_failed), 'push-batches-failed'),
        stat('Batches out', fmtCount(p.inflight_batches), 'push-inflight')),
      h('table', {class: 'kv config'}, h('tbody', null,
        row('State', h('span', null, pushState(p), p.paused_ms > 0
          ? ` after ${fmtCount(p.consecutive_failures)} failed batches in a row; next try in ${fmtDuration(p.paused_ms)}`
          : ''), 'push-state-row'),
        row('Destination', h('span', {class: 'mono', text: p.destination}), 'push-destination'),
        row('Format', h('span', {class: 'mono', text: p.format}), 'push-format'),
        row('Batches', `up to ${fmtCount(p.batch_size)} records${wait}; ${fmtCount(p.concurrency)} at once`,
          'push-batching'),
        row('Timeout', fmtDuration(p.timeout_ms), 'push-timeout'),
        p.transform ? row('Input transform', 'yes (the rule\'s Input, InputPath or InputTransformer)', null) : null,
        p.replay_name ? row('Replay', h('span', {class: 'mono', text: p.replay_name}), 'push-replay') : null,
        row('Last answer', p.last_latency_us > 0 ? `${answer} in ${fmtDuration(p.last_latency_us / 1000)}` : answer,
          'push-last-status'),
        p.last_error ? row('Last error', h('span', {class: 'bad-text', text: p.last_error}), 'push-last-error') : null)));
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
        dlqSlot: h('div'), pushSlot: h('div'),
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
        f.pushSlot,
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

      r.pushSlot.replaceChildren(...(q.push ? [h('h2', {text: 'Push target'}), pushPanel(q.push)] : []));

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


  return {sortQueues, queueTable, queueRow, queuesView, queueView};
})();
