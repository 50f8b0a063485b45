/* Sluice web console: the time-series chart every page uses for the
 * broker's own history (GET /api/v1/history: wall-clock times `t[]` and one
 * array of samples per series, null where unknown).
 *
 * The SVG has a fixed viewBox and scales uniformly with its box, so axis
 * text is never stretched; line widths stay fixed (non-scaling-stroke).
 * Everything is built with svgEl()/h() and text nodes: no markup, no inline
 * style, as the CSP requires.
 */
'use strict';

window.SluiceCharts = (() => {
  const {h, svgEl} = window.SluiceDom;
  const W = 720, H = 190;
  const M = {left: 64, right: 12, top: 10, bottom: 22};
  const PW = W - M.left - M.right, PH = H - M.top - M.bottom;
  const X_TICKS = 5;

  /** Rounds up to 1/2/5 × 10^k so the y axis has a stable, readable maximum. */
  function niceMax(v) {
    const p = 10 ** Math.floor(Math.log10(v));
    return [1, 2, 5, 10].map(m => m * p).find(x => x >= v);
  }

  const p2 = n => String(n).padStart(2, '0');
  function clock(ms, seconds) {
    const d = new Date(ms);
    return `${p2(d.getHours())}:${p2(d.getMinutes())}${seconds ? ':' + p2(d.getSeconds()) : ''}`;
  }
  function span(ms) {
    const s = Math.round(ms / 1000);
    return s < 120 ? `${s} s` : s < 7200 ? `${Math.round(s / 60)} min` : `${(s / 3600).toFixed(1)} h`;
  }

  const isNum = v => typeof v === 'number' && isFinite(v);

  /** The last known sample of a series, or null. */
  function latest(values) {
    for (let i = (values || []).length - 1; i >= 0; i--) if (isNum(values[i])) return values[i];
    return null;
  }

  /** Path data of one series; a null ends a run, so unknown samples are a gap.
   *  A lone sample is a zero-length segment, drawn as a dot by the round cap. */
  function pathData(t, values, x, y) {
    let d = '', open = false, points = 0;
    for (let i = 0; i < t.length; i++) {
      const v = values[i];
      if (!isNum(v)) { open = false; continue; }
      const px = x(t[i]).toFixed(1), py = y(v).toFixed(1);
      const lone = !open && !isNum(values[i + 1]);
      d += open ? ` L${px},${py}` : ` M${px},${py}${lone ? ' h0.01' : ''}`;
      open = true;
      points++;
    }
    return {d: d.trim(), points};
  }

  /** The x domain: the samples held, at least one interval wide. */
  function domain(t, intervalMs) {
    const t1 = t[t.length - 1], t0 = Math.min(t[0], t1 - intervalMs);
    return [t0, t1];
  }

  function drawGrid(g, yMax, fmt) {
    for (const f of [0, 0.25, 0.5, 0.75, 1]) {
      const y = (M.top + PH - f * PH).toFixed(1);
      g.append(svgEl('line', {x1: M.left, x2: W - M.right, y1: y, y2: y, class: f === 0 ? 'axis' : 'grid'}));
      if (f === 0 || f === 0.5 || f === 1) {
        g.append(svgEl('text', {x: M.left - 6, y, class: 'ylabel', 'text-anchor': 'end',
          'dominant-baseline': 'middle', text: f === 0 ? '0' : fmt(f * yMax)}));
      }
    }
  }

  function drawTimeAxis(g, t0, t1) {
    const seconds = t1 - t0 < 10 * 60 * 1000;
    for (let i = 0; i < X_TICKS; i++) {
      const f = i / (X_TICKS - 1), x = (M.left + f * PW).toFixed(1);
      g.append(svgEl('line', {x1: x, x2: x, y1: M.top, y2: M.top + PH, class: 'grid'}));
      g.append(svgEl('text', {x, y: H - 6, class: 'xlabel',
        'text-anchor': i === 0 ? 'start' : i === X_TICKS - 1 ? 'end' : 'middle',
        text: clock(t0 + f * (t1 - t0), seconds)}));
    }
  }

  function emptyNote(g, text) {
    g.append(svgEl('text', {x: M.left + PW / 2, y: M.top + PH / 2, class: 'empty', 'text-anchor': 'middle',
      'dominant-baseline': 'middle', text}));
  }

  /**
   * One chart: timeSeriesChart({label, testid, series: [{key, name, cls}], fmt, floor})
   * returns {el, update(history)}. `fmt` formats a value for the axis and the
   * legend; `floor` is the smallest y maximum (so an idle chart is not scaled
   * to noise). update() takes an answer of GET /history (or null: unavailable).
   */
  function timeSeriesChart(opts) {
    const svg = svgEl('svg', {class: 'chart', viewBox: `0 0 ${W} ${H}`, role: 'img',
      'aria-label': opts.label, 'data-testid': opts.testid});
    const plot = svgEl('g');
    const cursor = svgEl('line', {class: 'cursor', y1: M.top, y2: M.top + PH, visibility: 'hidden'});
    svg.append(plot, cursor);
    const legend = h('div', {class: 'legend'});
    const el = h('div', {class: 'chart-box'}, svg, legend);
    let cur = null;   // what the last update drew (times, answer, x scale, domain, note), for hovering

    function update(hist) {
      plot.replaceChildren();
      cursor.setAttribute('visibility', 'hidden');
      const t = (hist && hist.t) || [];
      const every = hist && isNum(hist.interval_s) ? `sampled every ${hist.interval_s} s` : '';
      const known = opts.series.some(s => latest(hist && hist[s.key]) != null);
      if (!t.length || !known) {
        cur = null;
        svg.dataset.empty = '1';
        const why = hist === undefined ? 'loading…' : !hist ? 'no history from the broker'
          : hist.kept === false ? 'not sampled: the broker keeps history for 64 streams and 64 groups'
            : `no ${t.length ? 'known ' : ''}samples yet — ${every}`;
        drawGrid(plot, 1, () => '');
        emptyNote(plot, why);
        svg.setAttribute('aria-label', `${opts.label}: ${why}`);
        renderLegend(null, why);
        return;
      }
      delete svg.dataset.empty;
      const [t0, t1] = domain(t, (hist.interval_s || 1) * 1000);
      const all = opts.series.flatMap(s => (hist[s.key] || []).filter(isNum));
      const yMax = niceMax(Math.max(opts.floor || 1, ...all));
      const x = v => M.left + (v - t0) / (t1 - t0) * PW;
      const y = v => M.top + PH - Math.min(v, yMax) / yMax * PH;
      drawGrid(plot, yMax, opts.fmt);
      drawTimeAxis(plot, t0, t1);
      for (const s of opts.series) {
        const {d, points} = pathData(t, hist[s.key] || [], x, y);
        if (points) plot.append(svgEl('path', {d, class: `line ${s.cls}`, 'data-series': s.key, 'data-points': points}));
      }
      const note = `last ${span(t1 - t0)}, ${every} · scale 0–${opts.fmt(yMax)}`;
      cur = {t, hist, x, t0, t1, note};
      const summary = opts.series.map(s => `${s.name} ${fmtOr(latest(hist[s.key]))}`).join(', ');
      svg.setAttribute('aria-label', `${opts.label}, last ${span(t1 - t0)}: latest ${summary}`);
      renderLegend(-1, note);
    }

    const fmtOr = v => (isNum(v) ? opts.fmt(v) : '—');

    /** Legend: each series with its latest value, or its value at sample i (hover). */
    function renderLegend(i, note) {
      const hist = cur && cur.hist;
      legend.replaceChildren(...opts.series.flatMap(s => {
        const vs = hist ? hist[s.key] || [] : [];
        const v = i == null ? null : i < 0 ? latest(vs) : vs[i];
        return [h('span', {class: `sw ${s.cls}`}), h('span', {class: 'legend-item', 'data-series': s.key,
          text: `${s.name} ${fmtOr(v)}`})];
      }), h('span', {class: 'muted', text: ` · ${note}`}));
    }

    /** The sample nearest the pointer: a cursor line and its values in the legend. */
    function onMove(e) {
      if (!cur) return;
      const box = svg.getBoundingClientRect();
      const vx = (e.clientX - box.left) / box.width * W;
      const at = cur.t0 + (vx - M.left) / PW * (cur.t1 - cur.t0);
      let best = 0;
      cur.t.forEach((tt, i) => { if (Math.abs(tt - at) < Math.abs(cur.t[best] - at)) best = i; });
      const px = cur.x(cur.t[best]).toFixed(1);
      cursor.setAttribute('x1', px);
      cursor.setAttribute('x2', px);
      cursor.setAttribute('visibility', 'visible');
      renderLegend(best, `at ${clock(cur.t[best], true)}`);
    }

    svg.addEventListener('mousemove', onMove);
    svg.addEventListener('mouseleave', () => {
      cursor.setAttribute('visibility', 'hidden');
      if (cur) renderLegend(-1, cur.note);
    });
    update(undefined);
    return {el, update};
  }

  return Object.freeze({timeSeriesChart, niceMax, latest});
})();
