// AutoBot's research page: a user asks a question about a web page and gets
// the answer with its numbered sources. Traced from the browser with the
// OpenTelemetry JS web SDK: the click starts the trace (`research.submit`),
// the fetch instrumentation's CLIENT span carries it to the backend in
// `traceparent`, and the backend continues it. The browser's spans go to
// the OTLP/HTTP endpoint the backend names (AUTOBOT_WEB_OTLP_URL); without
// one the page works untraced and the backend starts the trace.
import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import { FetchInstrumentation } from '@opentelemetry/instrumentation-fetch';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BatchSpanProcessor,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
  WebTracerProvider,
} from '@opentelemetry/sdk-trace-web';

/** The settings the backend writes into the page (services/backend/src/routes/page.rs). */
function readConfig() {
  const element = document.getElementById('autobot-config');
  try {
    return JSON.parse(element ? element.textContent : '{}');
  } catch (_) {
    return {};
  }
}

const config = readConfig();

/** Sets tracing up when the backend names an OTLP endpoint; returns the provider or null. */
function startTracing() {
  if (!config.otlpUrl) return null;
  const provider = new WebTracerProvider({
    resource: resourceFromAttributes({
      'service.name': config.serviceName || 'autobot-frontend',
      'service.namespace': 'autobot',
      'service.version': config.version || '',
      'deployment.environment': config.environment || '',
    }),
    // The backend's rate: a trace the page drops, the backend drops too.
    sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(Number(config.sampleRate ?? 1)) }),
    spanProcessors: [
      new BatchSpanProcessor(new OTLPTraceExporter({ url: config.otlpUrl }), {
        scheduledDelayMillis: 500,
        maxQueueSize: 256,
      }),
    ],
  });
  // W3C traceparent/tracestate and baggage; the stack context manager.
  provider.register();
  registerInstrumentations({
    tracerProvider: provider,
    instrumentations: [
      new FetchInstrumentation({
        // Same-origin requests carry traceparent; no other origin gets it.
        propagateTraceHeaderCorsUrls: [],
        ignoreUrls: [config.otlpUrl],
        clearTimingResources: true,
      }),
    ],
  });
  // Spans leave before the tab does.
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'hidden') provider.forceFlush().catch(() => {});
  });
  return provider;
}

const provider = startTracing();
const tracer = trace.getTracer('autobot-page', config.version || undefined);

// ---- the operator key --------------------------------------------------------
// The backend wants `Authorization: Bearer <key>` when operator keys are on
// (AUTOBOT_API_KEYS_FILE). The user pastes a key; it is kept in this tab's
// sessionStorage only (gone when the tab closes), sent to this origin only,
// and never recorded in a span (the fetch instrumentation records no headers).
const KEY_STORAGE = 'autobot.apiKey';

function storedKey() {
  try {
    return sessionStorage.getItem(KEY_STORAGE) || '';
  } catch (_) {
    return '';
  }
}

function storeKey(key) {
  try {
    if (key) sessionStorage.setItem(KEY_STORAGE, key);
    else sessionStorage.removeItem(KEY_STORAGE);
  } catch (_) {
    // storage refused (private mode): the key lives in the field only
  }
}

/** Every header of an API request: the one place the key is added. */
function requestHeaders(key) {
  const headers = { 'content-type': 'application/json', accept: 'application/json' };
  if (key) headers.authorization = `Bearer ${key}`;
  return headers;
}

// ---- the page ------------------------------------------------------------------

const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') e.className = v;
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

/** The page researched, as recorded: origin and path only (a query may hold a token). */
function urlForSpan(text) {
  try {
    const u = new URL(text);
    return `${u.origin}${u.pathname}`;
  } catch (_) {
    return '';
  }
}

/** An answer's reason: the backend's `{"error": …}` text, else the status. */
async function failure(response) {
  let reason = `${response.status} ${response.statusText}`;
  try {
    const body = await response.json();
    if (body && body.error) reason = `${response.status}: ${body.error.message || body.error}`;
  } catch (_) {
    // not JSON
  }
  if (response.status === 401 || response.status === 403) {
    reason += ' — paste an operator key above (ask your operator for one)';
  }
  return reason;
}

function showAnswer(body, traceId) {
  const answer = $('answer');
  answer.replaceChildren(
    el('h2', {}, 'Answer'),
    el('p', { class: 'answer-text', id: 'answer-text' }, body.answer),
    el('h3', {}, 'Sources'),
    el('ol', { class: 'sources', id: 'sources' },
      ...body.sources.map((s, i) => el('li', { dataset: { n: String(i + 1) } },
        el('span', { class: 'source-text' }, s.text),
        el('span', { class: 'score' }, ` (similarity ${Number(s.score).toFixed(3)})`)))),
  );
  answer.hidden = false;
  showTrace(traceId);
}

function showTrace(traceId) {
  const out = $('trace');
  out.replaceChildren();
  if (traceId) {
    out.append('Trace ', el('code', { id: 'trace-id', dataset: { traceId } }, traceId));
  }
}

function showError(text, traceId) {
  const answer = $('answer');
  answer.replaceChildren(el('p', { class: 'error', role: 'alert', id: 'error' }, text));
  answer.hidden = false;
  showTrace(traceId);
}

/** POST /api/research inside the page's root span; resolves when shown. */
function research(url, question, topK, key) {
  return tracer.startActiveSpan('research.submit', {
    kind: SpanKind.INTERNAL,
    attributes: {
      'research.url': urlForSpan(url),
      'research.question.length': question.length,
      'research.top_k': topK,
    },
  }, async (span) => {
    const traceId = span.isRecording() ? span.spanContext().traceId : '';
    try {
      // Called before the first await: the fetch span is this span's child.
      const pending = fetch('/api/research', {
        method: 'POST',
        headers: requestHeaders(key),
        body: JSON.stringify({ url, question, top_k: topK }),
      });
      const response = await pending;
      const answeredTrace = traceId || traceFromResponse(response);
      if (!response.ok) {
        const reason = await failure(response);
        span.setStatus({ code: SpanStatusCode.ERROR, message: reason });
        showError(reason, answeredTrace);
        return;
      }
      const body = await response.json();
      span.setAttribute('research.sources', body.sources.length);
      showAnswer(body, answeredTrace || body.trace_id || '');
    } catch (e) {
      span.recordException(e);
      span.setStatus({ code: SpanStatusCode.ERROR, message: String(e && e.message ? e.message : e) });
      showError(`The request failed: ${e && e.message ? e.message : e}`, traceId);
    } finally {
      span.end();
      if (provider) await provider.forceFlush().catch(() => {});
    }
  });
}

/** The trace id of `traceresponse` (00-<trace>-<span>-<flags>), when the page is untraced. */
function traceFromResponse(response) {
  const value = response.headers.get('traceresponse') || '';
  const parts = value.split('-');
  return parts.length === 4 && /^[0-9a-f]{32}$/.test(parts[1]) ? parts[1] : '';
}

function init() {
  const form = $('research-form');
  const key = $('api-key');
  key.value = storedKey();
  key.addEventListener('change', () => storeKey(key.value.trim()));
  $('tracing').textContent = provider
    ? 'This page is traced: your request starts the trace the backend continues.'
    : 'Browser tracing is off (the backend names no OTLP endpoint).';
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const button = $('ask');
    button.disabled = true;
    $('answer').replaceChildren(el('p', { class: 'busy' }, 'Reading the page and thinking…'));
    $('answer').hidden = false;
    storeKey(key.value.trim());
    const topK = Number($('top-k').value) || 3;
    research($('url').value.trim(), $('question').value.trim(), topK, key.value.trim())
      .finally(() => { button.disabled = false; document.body.dataset.state = 'answered'; });
  });
  document.body.dataset.state = 'ready';
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
else init();
