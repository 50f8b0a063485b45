/* Sluice web console: the DOM helpers every page file builds with.
 *
 * Record keys, values and attributes are untrusted, and the CSP allows no
 * inline script or style: elements are made with createElement and text
 * only ever goes in as text nodes (never innerHTML), behaviour is wired with
 * addEventListener.
 */
'use strict';

window.SluiceDom = (() => {
  // Properties that must be set as DOM properties rather than attributes.
  const PROPS = new Set(['value', 'checked', 'disabled', 'readOnly', 'selected', 'colSpan']);

  /** h('td', {class: 'num', text: 42}, ...children). Functions become listeners;
   *  strings become text nodes, so data can never turn into markup. */
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v == null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'text') el.textContent = String(v);
      else if (typeof v === 'function') el.addEventListener(k.replace(/^on/, ''), v);
      else if (PROPS.has(k)) el[k] = v;
      else el.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children.flat(Infinity)) {
      if (c != null && c !== false) el.append(c instanceof Node ? c : String(c));
    }
    return el;
  }

  const SVGNS = 'http://www.w3.org/2000/svg';
  /** svgEl('path', {d: ..., text: 'label'}): attributes only; text goes in as text. */
  function svgEl(tag, attrs) {
    const el = document.createElementNS(SVGNS, tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v == null) continue;
      if (k === 'text') el.textContent = String(v);
      else el.setAttribute(k, String(v));
    }
    return el;
  }

  return Object.freeze({h, svgEl});
})();
