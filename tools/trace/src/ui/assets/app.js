// autobot-trace's web UI: search, a trace's waterfall, the service graph.
// Plain JavaScript, no build step, no dependency; compiled into the binary
// (tools/trace/src/ui/mod.rs lists the JSON routes it reads). Span data is
// only ever written as text nodes: a span name or attribute from the
// network is never parsed as HTML.
'use strict';

// ---- small helpers ----------------------------------------------------------

/** An element: h('a', {href: '/x', class: 'c'}, 'text', child, [more]). */
function h(tag, attrs, ...children) {
  const e = document.createElement(tag);
  setAttributes(e, attrs);
  append(e, children);
  return e;
}

/** An SVG element, the same way. */
function s(tag, attrs, ...children) {
  const e = document.createElementNS('http://www.w3.org/2000/svg', tag);
  setAttributes(e, attrs);
  append(e, children);
  return e;
}

function setAttributes(e, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') e.setAttribute('class', v);
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else if (k === 'style') Object.assign(e.style, v); // CSSOM: allowed by the CSP
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
}

function append(e, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : String(c));
  }
}

const main = () => document.getElementById('main');

function show(...content) {
  const m = main();
  m.replaceChildren();
  append(m, content);
}

/** GET a JSON route; a non-2xx answer throws its `error` text. */
async function api(path) {
  const response = await fetch(path, { headers: { accept: 'application/json' } });
  let body = null;
  try {
    body = await response.json();
  } catch (_) {
    // not JSON: reported below
  }
  if (!response.ok) {
    const reason = body && (body.error && (body.error.message || body.error));
    throw new Error(`${response.status} ${reason || response.statusText}`);
  }
  return body;
}

function errorBox(e) {
  return h('p', { class: 'error', role: 'alert' }, String(e && e.message ? e.message : e));
}

/** Nanoseconds as Jaeger shows them: 1.23s, 45.6ms, 789µs, 12ns. */
function fmtDuration(nanos) {
  const n = Number(nanos);
  if (n >= 1e9) return `${trim(n / 1e9)}s`;
  if (n >= 1e6) return `${trim(n / 1e6)}ms`;
  if (n >= 1e3) return `${trim(n / 1e3)}µs`;
  return `${n}ns`;
}

function trim(x) {
  return x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2);
}

const pad = (n, w = 2) => String(n).padStart(w, '0');

/** Microseconds since the epoch as local time, 2026-08-20 15:04:05.123. */
function fmtTime(micros) {
  const d = new Date(Number(micros) / 1000);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

/** A stable colour per service, from a palette of well-separated ones. */
const PALETTE = ['#3b7dd8', '#e0823d', '#3aa675', '#c94f7c', '#8e63c7', '#b8961f', '#2a9fb0', '#d2553f', '#6b8e23', '#7a7f8a'];
function serviceColor(name) {
  let hash = 0;
  for (const c of name) hash = (hash * 31 + c.codePointAt(0)) >>> 0;
  return PALETTE[hash % PALETTE.length];
}

function swatch(service) {
  return h('span', { class: 'swatch', style: { background: serviceColor(service) }, 'aria-hidden': 'true' });
}

function badges(completeness) {
  return h('span', { class: 'badges' },
    completeness.badges.map((b) => h('span', {
      class: `badge badge-${b.kind}`,
      title: completeness.problems.join('\n') || 'one root, every parent present, every expected service present',
    }, b.text)));
}

function shortId(id) {
  return id.slice(0, 7);
}

function markNav(which) {
  for (const a of document.querySelectorAll('nav a')) {
    a.classList.toggle('active', a.dataset.nav === which);
  }
}

// ---- routing ------------------------------------------------------------------

async function route() {
  const path = location.pathname.replace(/\/+$/, '') || '/';
  const trace = path.match(/^\/trace\/([^/]+)$/);
  if (path === '/' || path === '/search') return searchPage();
  if (trace) return tracePage(decodeURIComponent(trace[1]));
  if (path === '/graph') return graphPage();
  show(h('p', { class: 'error' }, `No page at ${path}.`));
  return undefined;
}

document.addEventListener('DOMContentLoaded', () => {
  route().catch((e) => show(errorBox(e)));
});

// ---- search --------------------------------------------------------------------

const LOOKBACKS = [
  ['5m', 'Last 5 minutes'], ['15m', 'Last 15 minutes'], ['1h', 'Last hour'],
  ['2h', 'Last 2 hours'], ['6h', 'Last 6 hours'], ['12h', 'Last 12 hours'],
  ['24h', 'Last 24 hours'], ['2d', 'Last 2 days'], ['7d', 'Last 7 days'],
  ['custom', 'Custom range'],
];

/** datetime-local text for microseconds since the epoch, and back. */
function toLocalInput(micros) {
  const d = new Date(Number(micros) / 1000);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}
function fromLocalInput(text) {
  const ms = new Date(text).getTime();
  return Number.isFinite(ms) ? String(ms * 1000) : '';
}

async function searchPage() {
  markNav('search');
  document.title = 'Search · autobot-trace';
  const params = new URLSearchParams(location.search);
  const field = (name, label, input, hint) => h('label', { class: 'field' },
    h('span', { class: 'label' }, label), input, hint ? h('span', { class: 'hint' }, hint) : null);
  const service = h('select', { name: 'service', id: 'service' }, h('option', { value: '' }, 'any service'));
  const operation = h('select', { name: 'operation', id: 'operation' }, h('option', { value: '' }, 'any operation'));
  const tags = h('input', { name: 'tags', id: 'tags', placeholder: 'http.response.status_code=500 error=true', value: params.get('tags') || '' });
  const lookback = h('select', { name: 'lookback', id: 'lookback' },
    LOOKBACKS.map(([v, label]) => h('option', { value: v }, label)));
  const start = h('input', { type: 'datetime-local', name: 'start', id: 'start' });
  const end = h('input', { type: 'datetime-local', name: 'end', id: 'end' });
  const minDuration = h('input', { name: 'minDuration', id: 'minDuration', placeholder: 'e.g. 1.2s, 100ms', value: params.get('minDuration') || '' });
  const maxDuration = h('input', { name: 'maxDuration', id: 'maxDuration', placeholder: 'e.g. 1.2s, 100ms', value: params.get('maxDuration') || '' });
  const limit = h('input', { type: 'number', min: '1', max: '1500', name: 'limit', id: 'limit', value: params.get('limit') || '20' });
  const expect = h('input', { name: 'expect', id: 'expect', placeholder: 'autobot-backend,autobot-browser', value: params.get('expect') || '' });
  const custom = h('div', { class: 'custom-range' },
    field('start', 'From', start), field('end', 'To', end));
  const results = h('section', { id: 'results', 'aria-live': 'polite' });

  lookback.value = params.get('lookback') || (params.get('start') ? 'custom' : '1h');
  if (params.get('start')) start.value = toLocalInput(params.get('start'));
  if (params.get('end')) end.value = toLocalInput(params.get('end'));
  const syncCustom = () => { custom.hidden = lookback.value !== 'custom'; };
  lookback.addEventListener('change', syncCustom);
  syncCustom();

  const form = h('form', { class: 'search', id: 'search-form' },
    field('service', 'Service', service),
    field('operation', 'Operation', operation),
    field('tags', 'Tags', tags, 'key=value pairs, space separated; quote values with spaces'),
    field('lookback', 'Lookback', lookback),
    custom,
    h('div', { class: 'pair' },
      field('minDuration', 'Min duration', minDuration),
      field('maxDuration', 'Max duration', maxDuration)),
    field('limit', 'Limit results', limit),
    field('expect', 'Expected services', expect, 'for the completeness badge, as check --services'),
    h('button', { type: 'submit', id: 'find' }, 'Find traces'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const out = new URLSearchParams();
    const put = (k, v) => { if (v && String(v).trim()) out.set(k, String(v).trim()); };
    put('service', service.value);
    put('operation', operation.value);
    put('tags', tags.value);
    if (lookback.value === 'custom') {
      put('start', fromLocalInput(start.value));
      put('end', fromLocalInput(end.value));
    } else {
      put('lookback', lookback.value);
    }
    put('minDuration', minDuration.value);
    put('maxDuration', maxDuration.value);
    put('limit', limit.value);
    put('expect', expect.value);
    location.assign(`/search?${out}`);
  });

  show(h('div', { class: 'search-page' }, h('aside', { class: 'search-panel' }, h('h1', {}, 'Search'), form), results));

  const loadOperations = async (wanted) => {
    operation.replaceChildren(h('option', { value: '' }, 'any operation'));
    if (!service.value) return;
    const ops = await api(`/api/v3/operations?service=${encodeURIComponent(service.value)}`);
    const names = [...new Set((ops.operations || []).map((o) => o.name))].sort();
    for (const name of names) operation.append(h('option', { value: name }, name));
    if (wanted && !names.includes(wanted)) operation.append(h('option', { value: wanted }, wanted));
    if (wanted) operation.value = wanted;
  };
  service.addEventListener('change', () => loadOperations('').catch((e) => results.replaceChildren(errorBox(e))));
  try {
    const services = (await api('/api/v3/services')).services || [];
    const wanted = params.get('service');
    for (const name of services) service.append(h('option', { value: name }, name));
    if (wanted && !services.includes(wanted)) service.append(h('option', { value: wanted }, wanted));
    if (wanted) service.value = wanted;
    await loadOperations(params.get('operation'));
  } catch (e) {
    results.replaceChildren(errorBox(e));
    return;
  }
  await runSearch(params, results);
}

async function runSearch(params, results) {
  results.replaceChildren(h('p', { class: 'loading' }, 'Searching…'));
  let answer;
  try {
    answer = await api(`/api/autobot/search?${params}`);
  } catch (e) {
    results.replaceChildren(errorBox(e));
    return;
  }
  const traces = answer.traces;
  const longest = Math.max(1, ...traces.map((t) => t.durationNanos));
  const expect = params.get('expect');
  results.replaceChildren();
  append(results, [
    h('h2', { id: 'result-count' }, `${traces.length} trace${traces.length === 1 ? '' : 's'}`,
      h('span', { class: 'range' }, ` from ${fmtTime(answer.startMicros)} to ${fmtTime(answer.endMicros)}`)),
    traces.length === 0 ? h('p', { class: 'empty' }, 'No trace matches. Widen the time range or remove a condition.') : null,
    h('ol', { class: 'results' }, traces.map((t) => {
      const href = `/trace/${t.traceId}${expect ? `?expect=${encodeURIComponent(expect)}` : ''}`;
      return h('li', { class: 'result', dataset: { traceId: t.traceId } },
        h('div', { class: 'result-head' },
          h('a', { class: 'result-title', href },
            swatch(t.rootService || '?'),
            `${t.rootService || '(no root)'}: ${t.rootOperation || '(no root)'}`,
            h('span', { class: 'trace-id' }, ` ${shortId(t.traceId)}`)),
          badges(t.completeness),
          h('span', { class: 'duration' }, fmtDuration(t.durationNanos))),
        h('div', { class: 'result-bar' }, h('span', { style: { width: `${(100 * t.durationNanos) / longest}%` } })),
        h('div', { class: 'result-facts' },
          h('span', { class: 'span-count' }, `${t.spanCount} span${t.spanCount === 1 ? '' : 's'}`),
          t.errorSpanCount > 0 ? h('span', { class: 'errors' }, `${t.errorSpanCount} error${t.errorSpanCount === 1 ? '' : 's'}`) : null,
          h('span', { class: 'services' }, t.services.map((svc) => h('span', {
            class: `service-chip${svc.errorSpanCount ? ' has-errors' : ''}`,
            title: `${svc.spanCount} spans, ${svc.errorSpanCount} errors`,
          }, swatch(svc.name), `${svc.name} (${svc.spanCount})`))),
          h('span', { class: 'start' }, fmtTime(t.startMicros))));
    }))]);
}

// ---- one trace ---------------------------------------------------------------------

const RELATION_TEXT = {
  'produced-by': 'produced by',
  'consumed-by': 'consumed by',
  'links-to': 'links to',
  'linked-from': 'linked from',
};

async function tracePage(traceId) {
  markNav('');
  document.title = `Trace ${shortId(traceId)} · autobot-trace`;
  const params = new URLSearchParams(location.search);
  const expect = params.get('expect');
  show(h('p', { class: 'loading' }, 'Loading trace…'));
  const trace = await api(`/api/autobot/traces/${encodeURIComponent(traceId)}${expect ? `?expect=${encodeURIComponent(expect)}` : ''}`);
  const total = Math.max(1, trace.durationNanos);
  const pct = (nanos) => `${Math.min(100, (100 * nanos) / total)}%`;
  const byId = new Map(trace.spans.map((sp) => [sp.spanId, sp]));
  const rows = new Map();
  const details = h('aside', { class: 'details', id: 'details' },
    h('p', { class: 'hint' }, 'Select a span to see its attributes, events, links, resource and status.'));

  const select = (spanId) => {
    const sp = byId.get(spanId);
    if (!sp) return;
    for (const [id, row] of rows) row.classList.toggle('selected', id === spanId);
    rows.get(spanId).scrollIntoView({ block: 'nearest' });
    details.replaceChildren(spanDetails(sp, trace, byId, select));
    const url = new URL(location.href);
    url.searchParams.set('span', spanId);
    history.replaceState(null, '', url);
  };

  const ticks = [0, 0.25, 0.5, 0.75, 1];
  const ruler = h('div', { class: 'span-row ruler' },
    h('div', { class: 'span-label' }, 'Service · operation'),
    h('div', { class: 'span-timeline' }, ticks.map((t) => h('span', {
      class: 'tick', style: { left: `${t * 100}%` },
    }, fmtDuration(t * trace.durationNanos)))));

  const waterfall = h('div', { class: 'waterfall', id: 'waterfall', role: 'list' }, ruler,
    trace.spans.map((sp) => {
      const row = h('div', {
        class: `span-row${sp.error ? ' is-error' : ''}${sp.critical.length ? ' on-critical-path' : ''}${sp.orphan ? ' is-orphan' : ''}`,
        role: 'listitem',
        tabindex: '0',
        dataset: { spanId: sp.spanId, service: sp.service, kind: sp.kind },
        onclick: () => select(sp.spanId),
        onkeydown: (ev) => { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); select(sp.spanId); } },
      },
      h('div', { class: 'span-label', style: { paddingLeft: `${0.4 + sp.depth * 1.1}em` } },
        swatch(sp.service),
        h('span', { class: 'span-service' }, sp.service),
        h('span', { class: 'span-name' }, sp.name),
        sp.kind !== 'internal' && sp.kind !== 'unspecified' ? h('span', { class: 'span-kind' }, sp.kind) : null,
        sp.error ? h('span', { class: 'error-mark', title: sp.status.message || 'status ERROR' }, '!') : null,
        sp.orphan ? h('span', { class: 'orphan-mark', title: `parent ${sp.parentSpanId} is not in the trace` }, 'orphan') : null),
      h('div', { class: 'span-timeline' },
        h('div', {
          class: 'bar',
          style: { left: pct(sp.startNanos), width: pct(sp.durationNanos), background: serviceColor(sp.service) },
        }),
        sp.critical.map(([a, b]) => h('div', {
          class: 'critical', title: 'critical path', style: { left: pct(a), width: pct(b - a) },
        })),
        h('span', {
          // After the bar; before it when the bar ends near the right edge;
          // inside it when the bar spans nearly everything.
          class: durationPlace(sp.startNanos / total, (sp.startNanos + sp.durationNanos) / total).cls,
          style: durationPlace(sp.startNanos / total, (sp.startNanos + sp.durationNanos) / total).style,
        }, fmtDuration(sp.durationNanos))));
      rows.set(sp.spanId, row);
      return row;
    }));

  const problems = trace.completeness.problems;
  show(
    h('div', { class: 'trace-head' },
      h('h1', {}, swatch(trace.rootService || '?'), `${trace.rootService || '(no root)'}: ${trace.rootOperation || '(no root)'}`,
        h('span', { class: 'trace-id', id: 'trace-id' }, ` ${trace.traceId}`)),
      h('div', { class: 'trace-facts' },
        h('span', {}, `Started ${fmtTime(trace.startMicros)}`),
        h('span', {}, `Duration ${fmtDuration(trace.durationNanos)}`),
        h('span', {}, `${trace.spanCount} spans`),
        h('span', {}, `${trace.services.length} services`),
        trace.errorSpanCount ? h('span', { class: 'errors' }, `${trace.errorSpanCount} error${trace.errorSpanCount === 1 ? '' : 's'}`) : null,
        badges(trace.completeness)),
      problems.length ? h('ul', { class: 'problems' }, problems.map((p) => h('li', {}, p))) : null,
      h('p', { class: 'legend' }, h('span', { class: 'critical-sample' }), ' critical path: the work the trace waited for. ',
        h('a', { href: `/api/v3/traces/${trace.traceId}` }, 'OTLP JSON'))),
    h('div', { class: 'trace-body' }, waterfall, details));
  const wanted = params.get('span');
  if (wanted && byId.has(wanted)) select(wanted);
}

/** Where a span's duration label goes, from its bar's start and end (0–1). */
function durationPlace(start, end) {
  if (end <= 0.8) return { cls: 'span-duration', style: { left: `${100 * end}%` } };
  if (start >= 0.15) return { cls: 'span-duration', style: { right: `${100 - 100 * start}%` } };
  return { cls: 'span-duration inside', style: { right: `${100 - 100 * end}%` } };
}

function kvTable(className, pairs) {
  if (!pairs.length) return h('p', { class: 'none' }, 'none');
  return h('table', { class: `kv ${className}` },
    h('tbody', {}, pairs.map((kv) => h('tr', { dataset: { key: kv.key } },
      h('th', { scope: 'row' }, kv.key),
      h('td', { title: kv.type || '' }, kv.value)))));
}

function spanDetails(sp, trace, byId, select) {
  const section = (title, ...content) => h('section', { class: `detail-section detail-${title.toLowerCase().replace(/\W+/g, '-')}` },
    h('h3', {}, title), content);
  const spanLink = (traceId, spanId, label) => {
    if (traceId === trace.traceId && byId.has(spanId)) {
      return h('a', { href: `?span=${spanId}`, class: 'span-link', onclick: (ev) => { ev.preventDefault(); select(spanId); } }, label);
    }
    return h('a', { href: `/trace/${traceId}?span=${spanId}`, class: 'span-link' }, label);
  };
  const parent = sp.parentSpanId
    ? (byId.has(sp.parentSpanId)
      ? spanLink(trace.traceId, sp.parentSpanId, `${sp.parentSpanId} (${byId.get(sp.parentSpanId).name})`)
      : h('span', { class: 'missing' }, `${sp.parentSpanId} — not in the trace`))
    : 'none (root)';
  return h('div', { class: 'span-details', dataset: { spanId: sp.spanId } },
    h('h2', {}, swatch(sp.service), sp.name),
    h('table', { class: 'kv facts' }, h('tbody', {},
      [['Service', sp.service], ['Kind', sp.kind], ['Span ID', sp.spanId], ['Parent', parent],
        ['Start', `+${fmtDuration(sp.startNanos)}`], ['Duration', fmtDuration(sp.durationNanos)],
        ['Status', h('span', { class: `status status-${sp.status.code.toLowerCase()}` },
          sp.status.code, sp.status.message ? `: ${sp.status.message}` : '')],
        ['Critical path', sp.critical.length ? sp.critical.map(([a, b]) => `+${fmtDuration(a)}–+${fmtDuration(b)}`).join(', ') : 'no'],
      ].map(([k, v]) => h('tr', {}, h('th', { scope: 'row' }, k), h('td', {}, v))))),
    sp.related.length ? section('Related spans', h('ul', { class: 'related' }, sp.related.map((r) => h('li', {
      class: `relation relation-${r.relation}`, dataset: { relation: r.relation, spanId: r.spanId },
    }, h('span', { class: 'relation-name' }, RELATION_TEXT[r.relation] || r.relation), ' ',
    r.found
      ? spanLink(r.traceId, r.spanId, `${r.service}: ${r.name} (${r.kind})${r.sameTrace ? '' : ` in trace ${shortId(r.traceId)}`}`)
      : h('span', { class: 'missing' }, `span ${r.spanId} of trace ${shortId(r.traceId)}, not stored`))))) : null,
    section('Attributes', kvTable('attributes', sp.attributes)),
    section('Events', sp.events.length ? h('ol', { class: 'events' }, sp.events.map((ev) => h('li', {},
      h('span', { class: 'event-time' }, `+${fmtDuration(Math.max(0, ev.offsetNanos))}`), ' ',
      h('span', { class: 'event-name' }, ev.name),
      ev.attributes.length ? kvTable('event-attributes', ev.attributes) : null))) : h('p', { class: 'none' }, 'none')),
    section('Links', sp.links.length ? h('ul', { class: 'links' }, sp.links.map((l) => h('li', {},
      spanLink(l.traceId, l.spanId, `span ${l.spanId} of trace ${shortId(l.traceId)}`),
      l.attributes.length ? kvTable('link-attributes', l.attributes) : null))) : h('p', { class: 'none' }, 'none')),
    section('Resource', kvTable('resource', sp.resource)),
    section('Scope', kvTable('scope', [
      { key: 'name', value: sp.scope.name }, { key: 'version', value: sp.scope.version },
      ...sp.scope.attributes].filter((kv) => kv.value !== ''))),
    sp.warnings.length ? section('Warnings', h('ul', { class: 'warnings' }, sp.warnings.map((w) => h('li', {}, w)))) : null);
}

// ---- service graph -------------------------------------------------------------

async function graphPage() {
  markNav('graph');
  document.title = 'Service graph · autobot-trace';
  const params = new URLSearchParams(location.search);
  const lookback = h('select', { name: 'lookback', id: 'graph-lookback' },
    LOOKBACKS.filter(([v]) => v !== 'custom').map(([v, label]) => h('option', { value: v }, label)));
  lookback.value = params.get('lookback') || '1h';
  lookback.addEventListener('change', () => location.assign(`/graph?lookback=${encodeURIComponent(lookback.value)}`));
  const body = h('section', { id: 'graph' }, h('p', { class: 'loading' }, 'Loading…'));
  show(h('div', { class: 'graph-page' },
    h('h1', {}, 'Service graph'),
    h('p', { class: 'hint' }, 'Who calls whom, from the stored spans: one call per span whose parent is in another service; an error when either side\'s span has status ERROR. ',
      h('label', {}, 'Time range ', lookback)),
    body));
  let graph;
  try {
    graph = await api(`/api/autobot/service-graph?${new URLSearchParams({ lookback: lookback.value })}`);
  } catch (e) {
    body.replaceChildren(errorBox(e));
    return;
  }
  body.replaceChildren(
    h('p', { class: 'graph-facts' }, `${graph.services.length} services, ${graph.edges.length} edges, from ${graph.traceCount} traces (${graph.spanCount} spans)`),
    graph.services.length ? drawGraph(graph) : h('p', { class: 'empty' }, 'No spans in this time range.'),
    h('table', { class: 'edges', id: 'edges' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Caller'), h('th', {}, 'Callee'), h('th', {}, 'Calls'), h('th', {}, 'Errors'))),
      h('tbody', {}, graph.edges.map((e) => h('tr', { class: 'edge', dataset: { parent: e.parent, child: e.child } },
        h('td', {}, swatch(e.parent), e.parent), h('td', {}, swatch(e.child), e.child),
        h('td', { class: 'calls' }, e.calls), h('td', { class: `errors-cell${e.errors ? ' has-errors' : ''}` }, e.errors))))));
}

/** Services in columns by their distance from the callers nobody calls. */
function drawGraph(graph) {
  const names = graph.services.map((sv) => sv.name);
  const rank = new Map(names.map((n) => [n, 0]));
  // Longest path from a root, at most one pass per service (cycles stop there).
  for (let pass = 0; pass < names.length; pass++) {
    let changed = false;
    for (const e of graph.edges) {
      const next = rank.get(e.parent) + 1;
      if (e.parent !== e.child && next > rank.get(e.child) && next < names.length) {
        rank.set(e.child, next);
        changed = true;
      }
    }
    if (!changed) break;
  }
  const columns = [];
  for (const n of names) (columns[rank.get(n)] = columns[rank.get(n)] || []).push(n);
  const W = 190, H = 46, GX = 110, GY = 34, M = 20;
  const pos = new Map();
  columns.forEach((col, x) => col.forEach((n, y) => pos.set(n, { x: M + x * (W + GX), y: M + y * (H + GY) })));
  const width = M * 2 + columns.length * W + (columns.length - 1) * GX;
  const height = M * 2 + Math.max(...columns.map((c) => c.length)) * (H + GY) - GY;
  const byName = new Map(graph.services.map((sv) => [sv.name, sv]));
  const svg = s('svg', { class: 'graph', viewBox: `0 0 ${width} ${height}`, width, height, role: 'img', 'aria-label': 'service graph' },
    s('defs', {}, s('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: '10', refY: '5', markerWidth: '7', markerHeight: '7', orient: 'auto-start-reverse' },
      s('path', { d: 'M 0 0 L 10 5 L 0 10 z', class: 'arrow-head' }))));
  for (const e of graph.edges) {
    const a = pos.get(e.parent), b = pos.get(e.child);
    if (!a || !b) continue;
    const forward = b.x > a.x;
    const x1 = forward ? a.x + W : a.x + W / 2, y1 = forward ? a.y + H / 2 : a.y + H;
    const x2 = forward ? b.x : b.x + W / 2, y2 = forward ? b.y + H / 2 : b.y;
    const mx = (x1 + x2) / 2;
    const d = forward ? `M ${x1} ${y1} C ${mx} ${y1}, ${mx} ${y2}, ${x2} ${y2}` : `M ${x1} ${y1} C ${x1 + 60} ${y1 + 40}, ${x2 + 60} ${y2 - 40}, ${x2} ${y2}`;
    svg.append(s('g', { class: `graph-edge${e.errors ? ' has-errors' : ''}` },
      s('path', { d, 'marker-end': 'url(#arrow)' }),
      s('text', { x: forward ? x2 - 6 : x2 + 40, y: y2 - 6, 'text-anchor': 'end' }, `${e.calls} call${e.calls === 1 ? '' : 's'}${e.errors ? `, ${e.errors} error${e.errors === 1 ? '' : 's'}` : ''}`)));
  }
  for (const [n, p] of pos) {
    const sv = byName.get(n);
    svg.append(s('g', { class: 'graph-node', transform: `translate(${p.x} ${p.y})` },
      s('rect', { width: W, height: H, rx: 6, style: { stroke: serviceColor(n) } }),
      s('text', { x: 10, y: 19, class: 'node-name' }, n),
      s('text', { x: 10, y: 36, class: 'node-facts' }, `${sv.spanCount} spans${sv.errorSpanCount ? `, ${sv.errorSpanCount} errors` : ''}`)));
  }
  return h('div', { class: 'graph-wrap' }, svg);
}
