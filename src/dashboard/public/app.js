// The dashboard page: one EventSource to the server, which pushes a complete snapshot after every
// committed batch (and a status whenever the database comes or goes). No framework: the page is a
// handful of counters, three uPlot charts and some tables, rebuilt from each snapshot.
// Everything from the server is rendered with textContent, never as HTML: raw rejected lines are
// untrusted input.

const $ = (id) => document.getElementById(id);

const state = {
  /** @type {EventSource | undefined} */ source: undefined,
  snapshot: undefined,
  /** server clock minus browser clock, so ages are right even when the clocks disagree */
  skewMs: 0,
  receivedAt: 0,
  db: { state: 'connecting', message: undefined },
  problem: null,
  /** the engine's stall alarm, from its /readyz via the dashboard server */
  stream: { stalled: false, detail: null },
  serverUp: false,
  charts: {},
};

// ---------- formatting ----------

const intFmt = new Intl.NumberFormat('en-US');
const moneyFmt = new Intl.NumberFormat('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });
const oneFmt = new Intl.NumberFormat('en-US', { maximumFractionDigits: 1 });
const compactFmt = new Intl.NumberFormat('en-US', { notation: 'compact', maximumFractionDigits: 1 });
const pctFmt = new Intl.NumberFormat('en-US', { style: 'percent', maximumFractionDigits: 1 });
const timeFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });

const int = (n) => (n === null || n === undefined ? '–' : intFmt.format(Math.round(n)));
const money = (n) => (n === null || n === undefined ? '–' : moneyFmt.format(n));
const rate = (n) => (n === null || n === undefined ? '–' : n >= 100 ? intFmt.format(Math.round(n)) : oneFmt.format(n));
const plural = (n, one, many = `${one}s`) => `${int(n)} ${Math.round(n) === 1 ? one : many}`;
const score = (n) => (n === null || n === undefined ? '–' : n.toFixed(3));

function duration(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '–';
  if (ms < 0) ms = 0;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.round(s)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s % 60)} s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ${m % 60} min`;
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}

const serverNow = () => Date.now() + state.skewMs;
const ago = (ms) => (ms === null || ms === undefined ? '–' : `${duration(serverNow() - ms)} ago`);
const clock = (ms) => (ms === null || ms === undefined ? '–' : timeFmt.format(new Date(ms)));

// ---------- tiny DOM helpers ----------

/** h('td', { class: 'num' }, 'text', childNode) */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** Set a counter's text; flash it when new data changed it, so a live update is visible. */
function setValue(id, text, detail, flash = true) {
  const el = $(id);
  const changed = flash && el.dataset.value !== undefined && el.dataset.value !== text;
  if (el.dataset.value !== text || el.dataset.detail !== (detail ?? '')) {
    el.replaceChildren(text, ...(detail ? [h('span', { class: 'detail' }, detail)] : []));
    el.dataset.value = text;
    el.dataset.detail = detail ?? '';
  }
  if (changed) {
    const card = el.closest('.card') ?? el;
    card.classList.remove('flash');
    void card.offsetWidth; // restart the animation
    card.classList.add('flash');
  }
}

function bar(fraction, variant) {
  const fill = h('span');
  fill.style.width = `${Math.max(0, Math.min(1, fraction || 0)) * 100}%`;
  return h('div', { class: `bar${variant ? ` ${variant}` : ''}`, 'aria-hidden': 'true' }, fill);
}

function table(caption, head, rows, opts = {}) {
  return h(
    'table',
    { class: opts.class },
    h('caption', { class: 'sr-only' }, caption),
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        head.map((c) => h('th', { scope: 'col', class: c.num ? 'num' : undefined }, c.label ?? c)),
      ),
    ),
    h('tbody', {}, rows),
  );
}

// ---------- charts (uPlot) ----------

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

function makeChart(el, series, formatValue) {
  const axis = { stroke: cssVar('--muted'), grid: { stroke: cssVar('--line'), width: 1 }, ticks: { stroke: cssVar('--line') } };
  const opts = {
    width: Math.max(260, el.clientWidth),
    height: 210,
    cursor: { drag: { x: false, y: false } },
    scales: { x: { time: true }, y: { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] } },
    legend: { live: true },
    series: [
      {},
      ...series.map((s) => ({
        label: s.label,
        stroke: s.color,
        width: 2,
        fill: s.fill,
        spanGaps: s.spanGaps,
        points: { show: s.points ?? false, size: 5, fill: s.color },
        value: (u, v) => (v === null || v === undefined ? '–' : formatValue(v)),
      })),
    ],
    axes: [axis, { ...axis, size: 64, values: (u, vals) => vals.map((v) => formatValue(v, true)) }],
  };
  const chart = new uPlot(opts, [[], ...series.map(() => [])], el);
  new ResizeObserver(() => chart.setSize({ width: Math.max(260, el.clientWidth), height: 210 })).observe(el);
  return chart;
}

function ensureCharts() {
  if (state.charts.throughput || typeof uPlot === 'undefined') return;
  const c1 = cssVar('--series-1');
  const c2 = cssVar('--series-2');
  const c3 = cssVar('--series-3');
  const axisRate = (v, axis) => (axis ? compactFmt.format(v) : `${rate(v)} rows/s`);
  const axisMs = (v, axis) => (axis ? (v >= 1000 ? `${oneFmt.format(v / 1000)} s` : `${Math.round(v)} ms`) : duration(v));
  state.charts.throughput = makeChart(
    $('chart-throughput'),
    [
      { label: 'input', color: c1, fill: cssVar('--accent-soft') },
      { label: 'inserted', color: c2 },
    ],
    axisRate,
  );
  state.charts.duration = makeChart(
    $('chart-duration'),
    [
      { label: 'average', color: c1, spanGaps: true, points: true },
      { label: 'slowest', color: c3, spanGaps: true },
    ],
    axisMs,
  );
  state.charts.latency = makeChart(
    $('chart-latency'),
    [
      { label: 'p50', color: c2, spanGaps: true, points: true },
      { label: 'p99', color: c3, spanGaps: true },
    ],
    axisMs,
  );
}

const finite = (xs) => xs.filter((v) => v !== null && v !== undefined && Number.isFinite(v));
const maxOf = (xs) => (finite(xs).length ? Math.max(...finite(xs)) : null);
const lastOf = (xs) => {
  const f = finite(xs);
  return f.length ? f[f.length - 1] : null;
};

function renderCharts(s) {
  ensureCharts();
  const tl = s.timeline;
  const windowLabel = $('window').selectedOptions[0]?.textContent ?? '';
  if (state.charts.throughput) {
    state.charts.throughput.setData([tl.t, tl.rowsPerSecond, tl.insertedPerSecond]);
    state.charts.duration.setData([tl.t, tl.durationAvgMs, tl.durationMaxMs]);
    state.charts.latency.setData([tl.t, tl.latencyP50Ms, tl.latencyP99Ms]);
  }
  const batches = tl.batches.reduce((a, b) => a + b, 0);
  const rows = tl.rowsPerSecond.reduce((a, r) => a + r * s.window.stepSeconds, 0);
  const t1 = `${plural(batches, 'batch', 'batches')} and ${plural(rows, 'row')} ${windowLabel}; peak ${rate(maxOf(tl.rowsPerSecond) ?? 0)} rows/s.`;
  const t2 = batches
    ? `Average ${duration(tl.durationAvgMs.reduce((a, v, i) => a + (v ?? 0) * tl.batches[i], 0) / batches)}, slowest ${duration(maxOf(tl.durationMaxMs))}.`
    : 'No batch committed in this window.';
  const t3 = finite(tl.latencyP50Ms).length
    ? `Latest p50 ${duration(lastOf(tl.latencyP50Ms))}, p99 ${duration(lastOf(tl.latencyP99Ms))}; worst p99 ${duration(maxOf(tl.latencyP99Ms))}.`
    : 'No file committed in this window.';
  for (const [id, text] of [
    ['throughput', t1],
    ['duration', t2],
    ['latency', t3],
  ]) {
    $(`sum-${id}`).textContent = text;
    $(`chart-${id}`).setAttribute('aria-label', `${$(`chart-${id}`).closest('figure').querySelector('h3').textContent} chart: ${text}`);
  }
}

// ---------- sections ----------

const ENGINE_WORDS = { processing: 'Processing', idle: 'Running', stopped: 'Stopped', unknown: 'Unknown' };

function renderNow(s) {
  const n = s.now;
  setValue('m-events', int(n.events));
  setValue('m-purchases', int(n.purchases));
  setValue('m-revenue', money(n.revenue));
  setValue('m-rejected', int(n.rejectedRows));
  $('m-rejected')
    .closest('.card')
    .classList.toggle('warn', n.rejectedRows > 0);
  setValue('m-rate', rate(n.rowsPerSecond));
  setValue('m-backlog', n.backlogFiles === null ? 'n/a' : int(n.backlogFiles), n.backlogFiles === null ? 'no landing folder here' : undefined);
  $('m-backlog')
    .closest('.card')
    .classList.toggle('warn', (n.backlogFiles ?? 0) > 0);
  renderAges();
  const engine = $('m-engine');
  engine.dataset.state = n.engine.state;
  setValue('m-engine', ENGINE_WORDS[n.engine.state] ?? n.engine.state, n.engine.detail);

  const facts = $('now-facts');
  facts.replaceChildren(
    'Latency publish → commit, last 5 min: p50 ',
    h('b', {}, duration(n.latencyP50Ms)),
    ', p99 ',
    h('b', {}, duration(n.latencyP99Ms)),
    ' · average inserted_at − event_timestamp: ',
    h('b', {}, n.avgInsertDelaySeconds === null ? '–' : duration(n.avgInsertDelaySeconds * 1000)),
    ' · ',
    h('b', {}, int(n.batches)),
    n.batches === 1 ? ' batch' : ' batches',
    ', last committed ',
    h('b', { id: 'f-last-commit' }, ago(n.lastCommitMs)),
  );
}

/** Ages grow with the clock between pushes; redrawn every second. */
function renderAges() {
  const s = state.snapshot;
  if (!s) return;
  const n = s.now;
  setValue(
    'm-newest',
    n.newestEventMs === null ? '–' : duration(serverNow() - n.newestEventMs),
    n.newestEventMs === null ? 'no events yet' : 'since its event_timestamp',
    false,
  );
  const last = $('f-last-commit');
  if (last) last.textContent = ago(n.lastCommitMs);
}

function renderBusiness(s) {
  const b = s.business;
  const total = b.eventTypes.reduce((a, r) => a + r.events, 0);
  const maxType = Math.max(1, ...b.eventTypes.map((r) => r.events));
  $('biz-types').replaceChildren(
    b.eventTypes.length
      ? table(
          'Events by type',
          ['Type', '', { label: 'Events', num: true }, { label: 'Share', num: true }, { label: 'Avg price', num: true }],
          b.eventTypes.map((r, i) =>
            h(
              'tr',
              {},
              h('th', { scope: 'row' }, r.eventType),
              h('td', { class: 'barcell' }, bar(r.events / maxType, i % 2 ? 'alt' : '')),
              h('td', { class: 'num' }, int(r.events)),
              h('td', { class: 'num' }, pctFmt.format(total ? r.events / total : 0)),
              h('td', { class: 'num' }, r.avgPrice === null ? '–' : money(r.avgPrice)),
            ),
          ),
          { class: 'bars' },
        )
      : h('p', { class: 'empty' }, 'No events stored yet.'),
  );

  const maxRev = Math.max(0.01, ...b.categories.map((r) => r.revenue));
  $('biz-categories').replaceChildren(
    b.categories.length
      ? table(
          'Revenue by product category',
          ['Category', '', { label: 'Revenue', num: true }, { label: 'Purchases', num: true }, { label: 'Conversion', num: true }],
          b.categories.map((r) =>
            h(
              'tr',
              {},
              h('th', { scope: 'row' }, r.category || '(none)'),
              h('td', { class: 'barcell' }, bar(r.revenue / maxRev)),
              h('td', { class: 'num' }, money(r.revenue)),
              h('td', { class: 'num' }, int(r.purchases)),
              h('td', { class: 'num', title: 'purchases per event in the category' }, pctFmt.format(r.events ? r.purchases / r.events : 0)),
            ),
          ),
          { class: 'bars' },
        )
      : h('p', { class: 'empty' }, 'No purchases yet.'),
  );

  const maxProd = Math.max(0.01, ...b.topProducts.map((r) => r.revenue));
  $('biz-products').replaceChildren(
    b.topProducts.length
      ? table(
          'Top products by revenue',
          ['Product', '', { label: 'Revenue', num: true }, { label: 'Purchases', num: true }, { label: 'Events', num: true }],
          b.topProducts.map((r) =>
            h(
              'tr',
              {},
              h('th', { scope: 'row' }, r.name ?? r.productId, h('span', { class: 'reason-desc' }, `${r.productId}${r.category ? ` · ${r.category}` : ''}`)),
              h('td', { class: 'barcell' }, bar(r.revenue / maxProd, 'alt')),
              h('td', { class: 'num' }, money(r.revenue)),
              h('td', { class: 'num' }, int(r.purchases)),
              h('td', { class: 'num' }, int(r.events)),
            ),
          ),
          { class: 'bars' },
        )
      : h('p', { class: 'empty' }, 'No products yet.'),
  );

  const maxDev = Math.max(1, ...b.devices.map((r) => r.events));
  $('biz-devices').replaceChildren(
    b.devices.length
      ? table(
          'Events and revenue by device type',
          ['Device', '', { label: 'Events', num: true }, { label: 'Purchases', num: true }, { label: 'Revenue', num: true }],
          b.devices.map((r) =>
            h(
              'tr',
              {},
              h('th', { scope: 'row' }, r.device || '(none)'),
              h('td', { class: 'barcell' }, bar(r.events / maxDev, 'third')),
              h('td', { class: 'num' }, int(r.events)),
              h('td', { class: 'num' }, int(r.purchases)),
              h('td', { class: 'num' }, money(r.revenue)),
            ),
          ),
          { class: 'bars' },
        )
      : h('p', { class: 'empty' }, 'No events yet.'),
  );
}

const KIND_WORDS = { row: 'rejected', duplicate: 'duplicate', notice: 'file notice' };

function example(e) {
  return h(
    'span',
    { class: 'example' },
    e.raw === null ? h('span', { class: 'muted' }, '(no line: the whole file)') : h('code', { class: 'raw' }, e.raw),
    h('span', { class: 'where' }, `${e.file}${e.line ? `:${e.line}` : ''}${e.detail ? ` — ${e.detail}` : ''}`),
  );
}

function renderQuality(s) {
  const reasons = s.quality.reasons;
  const sum = (k) => reasons.filter((r) => r.kind === k).reduce((a, r) => a + r.rows, 0);
  setValue('q-rejected', int(sum('row')));
  $('q-rejected')
    .closest('.card')
    .classList.toggle('warn', sum('row') > 0);
  setValue('q-duplicates', int(sum('duplicate')));
  setValue('q-notices', int(sum('notice')));
  setValue('q-score', score(s.now.qualityScore));
  setValue('q-last-score', score(s.now.lastQualityScore));
  $('q-reasons').replaceChildren(
    reasons.length
      ? table(
          'Rejected rows by reason code, with the newest raw lines',
          ['Reason', 'Kind', { label: 'Rows', num: true }, 'Last seen', 'Newest examples'],
          reasons.map((r) => {
            const [first, ...more] = r.examples;
            return h(
              'tr',
              { 'data-reason': r.reason },
              h('th', { scope: 'row' }, h('span', { class: 'reason-code' }, r.reason), h('span', { class: 'reason-desc' }, r.description)),
              h('td', {}, h('span', { class: `kind ${r.kind}` }, KIND_WORDS[r.kind] ?? r.kind)),
              h('td', { class: 'num' }, int(r.rows)),
              h('td', { class: 'time' }, r.lastMs === null ? '–' : clock(r.lastMs)),
              h('td', {}, first ? example(first) : '–', more.length ? h('details', {}, h('summary', {}, `${more.length} more`), more.map(example)) : null),
            );
          }),
        )
      : h('p', { class: 'empty' }, 'No rejected rows. Every row so far was valid.'),
  );
}

function renderBatches(s) {
  $('b-table').replaceChildren(
    s.batches.length
      ? table(
          'Latest committed batches, newest first',
          [
            'Batch',
            'Committed',
            'Files',
            { label: 'In', num: true },
            { label: 'Inserted', num: true },
            { label: 'Dup', num: true },
            { label: 'Rejected', num: true },
            { label: 'Quality', num: true },
            { label: 'Duration', num: true },
            { label: 'Latency', num: true },
            'Phases',
          ],
          s.batches.map((b) =>
            h(
              'tr',
              {},
              h('th', { scope: 'row' }, `#${b.batchId}`, h('span', { class: 'reason-desc' }, `${b.engine} · ${b.streamId.slice(0, 8)}`)),
              h('td', { class: 'time' }, clock(b.committedMs)),
              h(
                'td',
                { class: 'files' },
                b.files.join(', '),
                b.fileCount > b.files.length ? h('span', { class: 'muted' }, ` +${int(b.fileCount - b.files.length)} more`) : null,
              ),
              h('td', { class: 'num' }, int(b.inputRows)),
              h('td', { class: 'num' }, int(b.insertedRows)),
              h('td', { class: 'num' }, int(b.duplicateRows)),
              h('td', { class: 'num' }, int(b.rejectedRows)),
              h('td', { class: 'num' }, score(b.qualityScore)),
              h('td', { class: 'num' }, duration(b.durationMs)),
              h('td', { class: 'num', title: 'oldest file published → commit' }, duration(b.latencyMaxMs)),
              h(
                'td',
                { class: 'muted' },
                Object.entries(b.durations)
                  .map(([k, v]) => `${k} ${duration(v)}`)
                  .join(' · ') || '–',
              ),
            ),
          ),
        )
      : h('p', { class: 'empty' }, 'No batch committed yet. Publish a CSV file into the landing folder.'),
  );
}

function renderArchitecture(s) {
  const arch = $('arch');
  const want = s.architecture ? 'svg' : 'none';
  if (arch.dataset.shown === want) return;
  arch.dataset.shown = want;
  arch.replaceChildren(
    s.architecture
      ? h(
          'a',
          { href: '/architecture.svg', target: '_blank', rel: 'noopener' },
          h('img', {
            src: `/architecture.svg?t=${Date.now()}`,
            alt: 'Architecture diagram: the generator publishes CSV files into the landing folder; the stream engine loads them into PostgreSQL, one transaction per batch, with its checkpoint beside it; this dashboard reads PostgreSQL.',
          }),
        )
      : h('p', { class: 'empty' }, 'The architecture diagram appears here once docs/diagrams/ecommerce_streaming_architecture.svg has been generated.'),
  );
}

/**
 * Tables are rebuilt only when their data changed: a rebuild would take keyboard focus (say, on an
 * example's "more" toggle) away from someone reading them every few seconds.
 */
const lastRendered = {};
function changed(key, data) {
  const json = JSON.stringify(data);
  if (lastRendered[key] === json) return false;
  lastRendered[key] = json;
  return true;
}

function render(s) {
  state.snapshot = s;
  state.skewMs = s.generatedAtMs - Date.now();
  state.receivedAt = Date.now();
  renderNow(s);
  renderCharts(s);
  if (changed('business', s.business)) renderBusiness(s);
  if (changed('quality', [s.quality, s.now.qualityScore, s.now.lastQualityScore])) renderQuality(s);
  if (changed('batches', s.batches)) renderBatches(s);
  renderArchitecture(s);
  $('updated').textContent = `Updated ${clock(s.generatedAtMs)}`;
  document.body.dataset.ready = 'true';
}

// ---------- connection status ----------

function renderStatus() {
  const conn = $('conn');
  const banner = $('banner');
  let mode;
  let text;
  let message = null;
  if (!state.serverUp) {
    mode = 'server-down';
    text = 'Dashboard server unreachable';
    message = 'The dashboard server is not answering; reconnecting…';
  } else if (state.db.state === 'unavailable') {
    mode = 'db-down';
    text = 'Database unavailable';
    message = `Database unavailable: ${state.db.message ?? 'no connection'}. Retrying; the page recovers by itself.`;
  } else if (state.stream?.stalled) {
    mode = 'stalled';
    text = 'Stream stalled';
    message = `Stream stalled: ${state.stream.detail ?? 'files wait and no batch has committed'}. The engine logged a warning; see its /readyz.`;
  } else if (state.db.state === 'connecting') {
    mode = 'connecting';
    text = 'Connecting…';
  } else if (state.problem) {
    mode = 'problem';
    text = 'Query problem';
    message = state.problem;
  } else {
    mode = 'live';
    text = 'Live';
  }
  conn.dataset.state = mode;
  document.body.dataset.connection = mode;
  if ($('conn-text').textContent !== text) $('conn-text').textContent = text;
  banner.hidden = message === null;
  banner.classList.toggle('problem', mode === 'problem');
  if (message !== null && banner.textContent !== message) banner.textContent = message;
}

function connect() {
  state.source?.close();
  const windowKey = $('window').value;
  const source = new EventSource(`/api/events?window=${encodeURIComponent(windowKey)}`);
  state.source = source;
  source.addEventListener('open', () => {
    state.serverUp = true;
    renderStatus();
  });
  source.addEventListener('status', (e) => {
    const msg = JSON.parse(e.data);
    state.db = msg.db;
    state.problem = msg.problem;
    state.stream = msg.stream;
    state.serverUp = true;
    renderStatus();
  });
  source.addEventListener('snapshot', (e) => {
    const s = JSON.parse(e.data);
    if (s.window.key !== $('window').value) return;
    render(s);
  });
  source.addEventListener('error', () => {
    // EventSource reconnects by itself (the server sets retry: 2000); show why the numbers are frozen.
    if (source.readyState !== EventSource.OPEN) {
      state.serverUp = false;
      renderStatus();
    }
  });
}

function init() {
  const select = $('window');
  const saved = localStorage.getItem('ecomstream.window');
  if (saved && [...select.options].some((o) => o.value === saved)) select.value = saved;
  select.addEventListener('change', () => {
    localStorage.setItem('ecomstream.window', select.value);
    connect();
  });
  // Moving to a section from the nav also moves keyboard focus there.
  for (const a of document.querySelectorAll('nav a')) {
    a.addEventListener('click', () => {
      const target = document.querySelector(a.getAttribute('href'));
      if (target) {
        target.setAttribute('tabindex', '-1');
        target.focus({ preventScroll: true });
      }
    });
  }
  state.serverUp = true;
  renderStatus();
  connect();
  setInterval(renderAges, 1000);
}

init();
