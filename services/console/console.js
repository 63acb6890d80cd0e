// The shardkit web console: polls /console/state (same origin, nothing else) and draws it.
// Rates and the charts come from the difference between two polls, kept in this page only.
'use strict';

const POLL_MS = Number(new URLSearchParams(location.search).get('interval_ms')) || 2000;
const SAMPLES = 60;  // points per chart
const charts = {};  // key -> [numbers], the charts' points
let previous = null; // the last state, for rates

function showError(text) {
  const box = document.getElementById('js-errors');
  box.hidden = false;
  box.textContent += text + '\n';
}
window.addEventListener('error', (e) => showError('error: ' + e.message));
window.addEventListener('unhandledrejection', (e) => showError('unhandled: ' + e.reason));

// el('td', {class: 'x'}, 'text', child…): a DOM element (no HTML strings anywhere).
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  for (const c of children) node.append(c instanceof Node ? c : String(c));
  return node;
}
function table(headers, rows) {
  const t = el('table', {}, el('tr', {}, ...headers.map((h) => el('th', {}, h))));
  for (const r of rows) t.append(el('tr', {}, ...r.map((c) => el('td', {}, c))));
  return t;
}
function fill(id, ...children) {
  const box = document.getElementById(id);
  box.replaceChildren(...children);
  box.classList.remove('muted');
}
function push(key, value) {
  const points = charts[key] || (charts[key] = []);
  points.push(value);
  if (points.length > SAMPLES) points.shift();
  return points;
}
// A small line chart of `points` (inline SVG), scaled to `top` (default: the largest point).
function spark(points, top = undefined, width = 160, height = 28) {
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('class', 'spark');
  svg.setAttribute('width', width);
  svg.setAttribute('height', height);
  const max = top ?? Math.max(...points, 1e-9);
  const step = width / Math.max(SAMPLES - 1, 1);
  const line = document.createElementNS('http://www.w3.org/2000/svg', 'polyline');
  line.setAttribute('points', points.map((p, i) =>
    `${(i * step).toFixed(1)},${(height - 2 - (p / max) * (height - 4)).toFixed(1)}`).join(' '));
  svg.append(line);
  return svg;
}
const fixed = (x, digits = 1) => (Number.isFinite(x) ? x.toFixed(digits) : '–');
function bytes(n) {
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${fixed(n, i ? 1 : 0)} ${units[i]}`;
}
function seconds(s) {
  if (!Number.isFinite(s)) return '–';
  return s < 90 ? `${Math.round(s)} s` : `${Math.round(s / 60)} min`;
}
const sum = (o) => Object.values(o || {}).reduce((a, b) => a + b, 0);

// A range's share of the keyspace: "40-80" -> [0.25, 0.5].
function span(range) {
  const [lo, hi] = range.split('-');
  const at = (hex, empty) => (hex ? parseInt(hex.padEnd(13, '0').slice(0, 13), 16) / 16 ** 13 : empty);
  return [at(lo, 0), at(hi, 1)];
}

// Whether route `pattern` has the term name:value (values may be printed quoted or bare).
const hasTerm = (pattern, name, value) =>
  pattern.split(',').some((t) => t === `${name}:${value}` || t === `${name}:"${value}"`);

// Requests per second of each route since the last poll.
function routeRates(state, dt) {
  const rates = {};
  const now = (state.stats && state.stats.routes) || {};
  const before = (previous && previous.stats && previous.stats.routes) || {};
  for (const [pattern, codes] of Object.entries(now)) {
    rates[pattern] = dt > 0 && before[pattern] ? (sum(codes) - sum(before[pattern])) / dt : 0;
  }
  return rates;
}

function drawMaps(state, rates) {
  const maps = Object.entries(state.maps || {});
  if (!maps.length) return;
  const stores = (state.services || []).filter((s) => s.type === 'store');
  const routes = (state.routes && state.routes.routes) || [];
  const parts = [];
  for (const [name, map] of maps) {
    if (map['error$']) { parts.push(el('p', {class: 'bad'}, `${name}: ${map['error$'].message}`)); continue; }
    const ranges = map.ranges || [];
    const bar = el('div', {class: 'bar', id: `bar-${name}`});
    const rows = [];
    for (const range of ranges) {
      const [lo, hi] = span(range);
      const owner = stores.filter((s) => s.shard === range);
      const route = routes.find((r) => hasTerm(r.pattern, 'shard', range));
      const where = owner.length ? owner.map((s) => s.name).join(', ') : (route ? route.to : 'elsewhere');
      const engine = owner.map((s) => s.backend).join(', ') || '–';
      const known = owner.filter((s) => s.bytes !== undefined);
      const size = known.length ? bytes(known.reduce((a, s) => a + s.bytes, 0)) : '–';
      let rate = 0;
      for (const [pattern, r] of Object.entries(rates)) if (hasTerm(pattern, 'shard', range)) rate += r;
      const cell = el('div', {class: 'range', title: `${range}: ${where} (${engine})`}, range);
      cell.style.flexGrow = String(Math.max(hi - lo, 0.0001));
      bar.append(cell);
      rows.push([range, where, engine, size, fixed(rate)]);
    }
    parts.push(el('div', {}, el('b', {}, `map ${name}`), ` epoch ${map.epoch}`,
      el('span', {class: 'muted'}, '  keyspace - to -')));
    parts.push(bar);
    const list = el('div', {class: 'ranges', 'data-map': name, 'data-epoch': map.epoch,
      'data-ranges': ranges.join(' ')});
    list.append(table(['range', 'owner', 'engine', 'on disk', 'req/s'], rows));
    parts.push(list);
  }
  fill('maps', ...parts);
}

function drawMigrations(state) {
  const lists = Object.entries(state.migrations || {});
  if (!lists.length) return;
  const parts = [];
  for (const [service, reply] of lists) {
    if (reply['error$']) { parts.push(el('p', {class: 'bad'}, `${service}: ${reply['error$'].message}`)); continue; }
    const all = reply.migrations || [];
    if (!all.length) parts.push(el('p', {class: 'muted'}, `${service}: no migration open`));
    for (const m of all) {
      const done = m.rows_to_copy ? m.rows_copied / m.rows_to_copy : (m.phase === 'created' ? 0 : 1);
      const left = m.rows_to_copy - m.rows_copied;
      const eta = m.copy_rows_per_s > 0 && left > 0 ? seconds(left / m.copy_rows_per_s) : '–';
      const bar = el('div', {class: 'progress'}, el('div'));
      bar.firstChild.style.width = `${(Math.min(done, 1) * 100).toFixed(1)}%`;
      const phases = el('div', {class: 'phases', 'data-migration': m.id});
      const seen = (state.history || {})[m.id] || [];
      for (const [i, change] of seen.entries()) {
        const at = new Date(change.at_ms).toLocaleTimeString();
        phases.append(el('span', {class: i === seen.length - 1 ? 'phase now' : 'phase', title: at}, change.phase));
      }
      if (!seen.length) phases.append(el('span', {class: 'phase now'}, m.phase));
      parts.push(el('div', {class: 'migration', 'data-phase': m.phase},
        el('b', {}, `${m.id}`), ` phase ${m.phase}, epoch ${m.epoch}`, bar,
        table(['rows copied', 'of', 'rows/s', 'ETA', 'lag'],
          [[m.rows_copied, m.rows_to_copy, fixed(m.copy_rows_per_s, 0), eta, m.lag]]),
        el('div', {class: 'muted'}, 'phases seen by this node:'), phases));
    }
  }
  fill('migrations', ...parts);
}

function drawRequests(state, rates, dt) {
  const stats = state.stats || {};
  const total = sum(stats.requests);
  const before = previous && previous.stats ? sum(previous.stats.requests) : total;
  const rate = dt > 0 ? (total - before) / dt : 0;
  const lat = stats.latency_ms || {};
  const rows = [['all requests', fixed(rate), spark(push('rate', rate)), lat.p50, lat.p99]];
  const perRoute = stats.route_latency_ms || {};
  for (const [pattern, r] of Object.entries(rates).sort((a, b) => b[1] - a[1])) {
    const l = perRoute[pattern] || {};
    rows.push([pattern, fixed(r), spark(push(`route ${pattern}`, r)), l.p50 ?? '–', l.p99 ?? '–']);
  }
  fill('requests', el('div', {}, `in flight ${stats.in_flight ?? 0}`),
    table(['pattern', 'req/s', '', 'p50 ms', 'p99 ms'], rows));
}

function drawCaches(state) {
  const caches = Object.entries(state.caches || {});
  if (!caches.length) return;
  const rows = [];
  for (const [name, c] of caches) {
    if (c['error$']) { rows.push([name, c['error$'].message, '', '', '', '', '']); continue; }
    const p = previous && previous.caches && previous.caches[name];
    const asked = p ? (c.hits - p.hits) + (c.misses - p.misses) : 0;
    const recent = asked > 0 ? (c.hits - p.hits) / asked : c.hit_ratio;
    const ratio = el('span', {class: 'hit-ratio', 'data-cache': name, 'data-hit-ratio': c.hit_ratio}, fixed(c.hit_ratio, 3));
    rows.push([name, ratio, spark(push(`cache ${name}`, recent), 1), bytes(c.bytes_used), c.entries, c.evictions, c.coalesced]);
  }
  fill('caches', table(['cache', 'hit ratio', 'recent', 'bytes', 'entries', 'evictions', 'coalesced'], rows));
}

function drawProjections(state) {
  const rows = [];
  for (const [service, reply] of Object.entries(state.projections || {})) {
    if (reply['error$']) { rows.push([service, reply['error$'].message, '', '', '', '']); continue; }
    for (const item of reply.items || []) {
      rows.push([`${service} ${item.name}`, item.role, item.applied, item.lag,
        spark(push(`lag ${service} ${item.name}`, item.lag)), item.dead_letters]);
    }
  }
  if (rows.length) fill('projections', table(['name', 'role', 'applied', 'lag', '', 'dead letters'], rows));
}

function drawCluster(state) {
  if (!state.cluster) return;
  fill('cluster', table(['node', 'health', 'patterns'], state.cluster.map((n) => [
    n.node + (n.self ? ' (this node)' : ''),
    n.self ? (n.connected ? 'connected to NATS' : 'NATS link down') : 'registered (alive)',
    n.patterns ?? '–'])));
}

function drawRoutes(state) {
  const routes = (state.routes && state.routes.routes) || [];
  fill('routes', table(['pattern', 'to'], routes.map((r) => [r.pattern, r.to])));
}

function draw(state) {
  const dt = previous ? (state.at_ms - previous.at_ms) / 1000 : 0;
  const rates = routeRates(state, dt);
  document.getElementById('node').textContent = state.node;
  document.title = `shardkit ${state.node}`;
  drawMaps(state, rates);
  drawMigrations(state);
  drawRequests(state, rates, dt);
  drawCaches(state);
  drawProjections(state);
  drawCluster(state);
  drawRoutes(state);
  previous = state;
}

async function poll() {
  const status = document.getElementById('status');
  try {
    const response = await fetch('/console/state', {cache: 'no-store', credentials: 'same-origin'});
    const state = await response.json();
    if (!response.ok) throw new Error(state['error$'] ? state['error$'].message : response.status);
    draw(state);
    status.textContent = `updated ${new Date(state.at_ms).toLocaleTimeString()}`;
    status.dataset.polls = String(Number(status.dataset.polls || 0) + 1);
  } catch (e) {
    status.textContent = `cannot read the node: ${e.message}`;
  }
  setTimeout(poll, POLL_MS);
}

document.getElementById('explain-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const text = document.getElementById('explain-input').value.trim();
  const out = document.getElementById('explain');
  if (!text) return;
  const response = await fetch(`/console/explain?msg=${encodeURIComponent(text)}`, {cache: 'no-store'});
  const reply = await response.json();
  out.textContent = reply['error$'] ? `error: ${reply['error$'].message}` :
    `${reply.summary}\n` + (reply.candidates || []).map((c) =>
      `${c.matched ? '✓' : '✗'} ${c.pattern} → ${c.to}${c.reason ? ` (${c.reason})` : ''}`).join('\n');
});

poll();
