// One pool: count/min/max, the quantile curve for a chosen method, the
// histogram and a table of chosen percentiles, all refreshed while values
// arrive (a /ws subscription pushes the count as it changes, or, without
// one, GET /pools/{id} once a second; a changed count redraws),
// plus an append form and a file upload with a progress bar (POST /imports).

import { api, ApiError, percent, uploadImport } from './api.js';
import { formatNumber, h } from './dom.js';
import { subscribe } from './live.js';
import { METHODS } from './methods.js';
import { HistogramPlot, QuantilePlot } from './plots.js';

const CURVE_PERCENTILES = Array.from({ length: 201 }, (_, i) => i / 2);
const HISTOGRAM_BINS = 40;
const POLL_MS = 1000;
/** Pushes of the pool's count at most this often. */
const PUSH_MS = 250;

interface Summary {
  poolId: number;
  count: number;
  min: number;
  max: number;
}
interface Quantiles {
  quantiles: { percentile: number; value: number }[];
}
interface Histogram {
  bins: { lo: number; hi: number; count: number }[];
}

/** Renders the pool page; returns a function that stops its live updates. */
export function showPool(view: HTMLElement, poolId: number): () => void {
  const summary = h('p', { class: 'summary', 'data-testid': 'summary' }, 'loading…');
  const method = h('select', { 'data-testid': 'method' }, ...METHODS.map((m) => h('option', { value: m }, m)));
  const chosen = h('input', { value: '50, 90, 99, 99.9', size: '24', 'data-testid': 'percentiles' });
  const curveBox = h('div', { class: 'plot', 'data-testid': 'quantile-plot' });
  const histogramBox = h('div', { class: 'plot', 'data-testid': 'histogram-plot' });
  const table = h('table', { class: 'percentiles', 'data-testid': 'percentile-table' });
  const live = h('span', { class: 'live', 'data-testid': 'live' });

  const values = h('textarea', { rows: '2', cols: '40', placeholder: '1.5, 2, 7 …', 'data-testid': 'append-values' });
  const appendForm = h('form', { class: 'inline' }, values, h('button', { type: 'submit' }, 'Append'));
  const appendResult = h('span', { class: 'note', 'data-testid': 'append-result' });

  const file = h('input', { type: 'file', 'data-testid': 'upload-file' });
  const format = h(
    'select',
    { 'data-testid': 'upload-format' },
    h('option', { value: 'csv' }, 'CSV'),
    h('option', { value: 'ndjson' }, 'NDJSON'),
    h('option', { value: 'f64' }, 'float64 LE'),
  );
  const column = h('input', { placeholder: 'column (name or 0-based index)', size: '26', 'data-testid': 'upload-column' });
  const uploadForm = h('form', { class: 'inline' }, file, format, column, h('button', { type: 'submit' }, 'Import'));
  const bar = h('progress', { max: '100', value: '0', 'data-testid': 'upload-progress' });
  const barText = h('span', { class: 'note', 'data-testid': 'upload-status' });

  view.replaceChildren(
    h('h1', {}, `Pool ${poolId}`, ' ', live),
    summary,
    h('div', { class: 'controls' }, h('label', {}, 'method ', method), h('label', {}, 'percentiles ', chosen)),
    h('div', { class: 'plots' }, curveBox, histogramBox),
    table,
    h('section', {}, h('h2', {}, 'Append values'), appendForm, appendResult),
    h('section', {}, h('h2', {}, 'Import a file'), uploadForm, h('div', { class: 'progress' }, bar, barText)),
  );
  const curve = new QuantilePlot(curveBox);
  const histogram = new HistogramPlot(histogramBox);

  let shownCount = -1;
  let stopped = false;

  async function redraw(s: Summary): Promise<void> {
    const m = method.value;
    const ps = chosen.value
      .split(/[,\s]+/)
      .filter((t) => t !== '')
      .map(Number);
    const [q, hist, picked] = await Promise.all([
      api<Quantiles>(`/pools/${poolId}/quantiles?p=${CURVE_PERCENTILES.join(',')}&method=${m}`),
      api<Histogram>(`/pools/${poolId}/histogram?bins=${HISTOGRAM_BINS}`),
      ps.length > 0 ? api<Quantiles>(`/pools/${poolId}/quantiles?p=${ps.join(',')}&method=${m}`).catch((e: Error) => e) : null,
    ]);
    curve.set(
      q.quantiles.map((x) => x.percentile),
      q.quantiles.map((x) => x.value),
    );
    histogram.set(
      hist.bins.map((b) => b.lo),
      hist.bins.map((b) => b.count),
    );
    if (picked instanceof Error) table.replaceChildren(h('caption', { class: 'error' }, picked.message));
    else if (picked !== null) {
      table.replaceChildren(
        h('thead', {}, h('tr', {}, h('th', {}, 'percentile'), h('th', { class: 'num' }, `value (${m})`))),
        h(
          'tbody',
          {},
          ...picked.quantiles.map((x) => h('tr', {}, h('td', {}, `p${x.percentile}`), h('td', { class: 'num' }, formatNumber(x.value)))),
        ),
      );
    }
    shownCount = s.count;
  }

  async function refresh(force = false): Promise<void> {
    try {
      const s = await api<Summary>(`/pools/${poolId}`);
      summary.textContent = `${formatNumber(s.count)} values · min ${formatNumber(s.min)} · max ${formatNumber(s.max)}`;
      summary.dataset.count = String(s.count);
      if (force || s.count !== shownCount) await redraw(s);
      live.textContent = `live · ${new Date().toLocaleTimeString('en-GB')}`;
    } catch (err) {
      if (err instanceof ApiError && err.code === 'pool_not_found') {
        summary.textContent = 'This pool does not exist yet: append values or import a file to create it.';
        summary.dataset.count = '0';
      } else {
        live.textContent = `update failed: ${(err as Error).message}`;
      }
    }
  }

  method.addEventListener('change', () => void refresh(true));
  chosen.addEventListener('change', () => void refresh(true));
  appendForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const list = values.value
      .split(/[,\s]+/)
      .filter((t) => t !== '')
      .map(Number);
    api<{ status: string; count: number }>(`/pools/${poolId}/values`, { method: 'POST', body: JSON.stringify(list) }).then(
      (r) => {
        appendResult.textContent = `${r.status}: the pool holds ${formatNumber(r.count)} values`;
        values.value = '';
        void refresh();
      },
      (err: Error) => (appendResult.textContent = err.message),
    );
  });
  uploadForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const chosenFile = file.files?.[0];
    if (chosenFile === undefined) return;
    const query = new URLSearchParams({ poolId: String(poolId), format: format.value });
    if (column.value.trim() !== '') query.set('column', column.value.trim());
    bar.value = 0;
    uploadImport(query.toString(), chosenFile, (p) => {
      bar.value = Math.round(p.fraction * 100);
      barText.textContent = `${percent(p.fraction)} · ${p.detail}`;
      bar.dataset.phase = p.phase;
    }).then(
      () => void refresh(),
      (err: Error) => {
        barText.textContent = `failed: ${err.message}`;
        bar.dataset.phase = 'failed';
      },
    );
  });

  // Live: a /ws subscription pushes the pool's count whenever it changes; without one, poll.
  void refresh();
  let timer: ReturnType<typeof setInterval> | null = null;
  let unsubscribe: (() => void) | null = null;
  void subscribe({ topic: 'pool', poolId, percentiles: [50], intervalMs: PUSH_MS }, (push) => {
    if (!stopped && push.count !== shownCount) void refresh();
  }).then((off) => {
    if (stopped) off?.();
    else if (off !== null) {
      unsubscribe = off;
      live.dataset.channel = 'websocket';
    } else {
      timer = setInterval(() => void refresh(), POLL_MS);
      live.dataset.channel = 'polling';
    }
  });
  return () => {
    stopped = true;
    unsubscribe?.();
    if (timer !== null) clearInterval(timer);
  };
}
