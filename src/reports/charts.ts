// The charts of the HTML report, drawn from the analysis alone: vega-lite specs compiled with vega-lite
// and rendered to SVG strings by vega's headless View (no canvas, no browser, no network). Per service,
// latency p50/p99 and error rate over time; retries per second; breaker states; the propagation graph.
// Every time chart shades the fault windows (labelled with the fault id) and marks each halt with a rule.
// A bucket's figure is drawn over the interval it covers (a bar, or a level step from its start to its
// end), never as a point at its start joined to the next, so nothing shows before the fault that caused it.
// Time is in seconds since the run started, so the output does not depend on the machine's time zone.
import * as vega from 'vega';
import { compile } from 'vega-lite';
import type { TopLevelSpec } from 'vega-lite';
import type { Analysis } from '../analysis/types.ts';

export interface Chart {
  /** Unique among the charts of one report, usable in an HTML id: [a-z0-9-]. */
  readonly id: string;
  readonly title: string;
  /** A standalone SVG document (starts with `<svg`). */
  readonly svg: string;
}

/** The fill of the fault-window shading, as it appears in the SVG. */
export const FAULT_FILL = '#fdd0a2';
/** The fill of the error-rate bars. */
export const ERROR_FILL = '#f4a582';
/** The colour of the halt rules. */
export const HALT_COLOR = '#b2182b';
const BREAKER_STATES = ['closed', 'half-open', 'open'] as const;
const BREAKER_COLORS = ['#4dac26', '#fdb863', '#d7191c'];

/** The plotting area of every chart, in pixels (axes and legends come on top). */
export const CHART_WIDTH = 640;
export const CHART_HEIGHT = 180;
const WIDTH = CHART_WIDTH;
const HEIGHT = CHART_HEIGHT;

type LayerSpec = Extract<TopLevelSpec, { layer: unknown }>;
type Layer = LayerSpec['layer'][number];
type Row = Record<string, string | number | boolean | null>;

/** What every time chart shares: the time axis, the fault windows and the halts. */
interface Timeline {
  readonly domain: [number, number];
  readonly faults: readonly Row[];
  readonly halts: readonly Row[];
}

export async function renderCharts(analysis: Analysis): Promise<Chart[]> {
  const timeline = timelineOf(analysis);
  const ids = new Set<string>();
  const unique = (base: string) => {
    let id = base;
    for (let n = 2; ids.has(id); n++) id = `${base}-${n}`;
    ids.add(id);
    return id;
  };
  const specs: { id: string; title: string; spec: TopLevelSpec }[] = [];
  for (const service of servicesOf(analysis)) {
    const buckets = analysis.timeseries.filter((b) => b.service === service);
    const slug = slugOf(service);
    const latency = buckets.filter((b) => Number.isFinite(b.p50) && Number.isFinite(b.p99));
    specs.push({ id: unique(`latency-${slug}`), title: `${service}: latency p50 and p99 per second`, spec: latencySpec(steps(analysis, latency, (b) => ({ p50: b.p50, p99: b.p99 })), timeline) });
    specs.push({
      id: unique(`errors-${slug}`),
      title: `${service}: error rate per second`,
      spec: errorSpec(buckets.filter((b) => b.requests > 0).map((b) => ({ from: seconds(analysis, b.t), to: seconds(analysis, b.to), rate: (100 * b.errors) / b.requests, errors: b.errors, requests: b.requests })), timeline),
    });
  }
  const retries = analysis.policies.retryTimeline;
  if (retries.length) {
    const perService = [...new Set(retries.map((r) => r.service))].flatMap((service) => steps(analysis, retries.filter((r) => r.service === service), (r) => ({ service, retries: r.retries / ((r.to - r.t) / 1000) })));
    specs.push({ id: unique('retries'), title: 'Retries per second, per service', spec: retrySpec(perService, timeline) });
  }
  if (analysis.policies.breakerTimeline.length) specs.push({ id: unique('breakers'), title: 'Circuit breaker state over time, per service', spec: breakerSpec(analysis, timeline) });
  if (analysis.propagation.nodes.length || analysis.propagation.edges.length) specs.push({ id: unique('propagation'), title: 'Error propagation between services during the fault windows', spec: propagationSpec(analysis) });
  const charts: Chart[] = [];
  for (const { id, title, spec } of specs) charts.push({ id, title, svg: await toSvg(spec) });
  return charts;
}

async function toSvg(spec: TopLevelSpec): Promise<string> {
  const compiled = compile(spec, { logger: silentLogger() });
  const view = new vega.View(vega.parse(compiled.spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** vega-lite's warnings (e.g. about an empty domain) are not the report's business. */
const silentLogger = () => vega.logger(vega.None);

function servicesOf(analysis: Analysis): string[] {
  return [...new Set(analysis.timeseries.map((b) => b.service))];
}

function slugOf(text: string): string {
  return text.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '') || 'service';
}

const seconds = (analysis: Analysis, t: number) => (t - analysis.experiment.startedAt) / 1000;

/**
 * A series of buckets (in time order) as level steps: a row at each bucket's start and one at its end
 * with the same figures, and a new `segment` wherever a bucket does not begin where the last one ended,
 * so that a line never slopes across a gap (a line from an empty second into the fault would rise
 * before the fault did). `n` orders the path: a bucket's end and the next one's start share their x.
 */
function steps<B extends { t: number; to: number }>(analysis: Analysis, buckets: readonly B[], figures: (b: B) => Row): Row[] {
  const rows: Row[] = [];
  let segment = 0;
  buckets.forEach((b, i) => {
    if (i > 0 && buckets[i - 1]!.to !== b.t) segment++;
    rows.push({ t: seconds(analysis, b.t), segment, n: rows.length, ...figures(b) }, { t: seconds(analysis, b.to), segment, n: rows.length + 1, ...figures(b) });
  });
  return rows;
}

function timelineOf(analysis: Analysis): Timeline {
  const start = analysis.experiment.startedAt;
  const ends = [
    analysis.experiment.finishedAt ?? start,
    ...analysis.timeseries.map((b) => b.to),
    ...analysis.windows.map((w) => w.to),
    ...analysis.halts.map((h) => h.at),
    ...analysis.policies.retryTimeline.map((r) => r.to),
    ...analysis.policies.breakerTimeline.map((b) => b.t),
  ].filter((t) => Number.isFinite(t));
  const end = Math.max(start + 1000, ...ends);
  return {
    domain: [0, (end - start) / 1000],
    faults: analysis.windows.filter((w) => w.kind === 'fault').map((w) => ({ fault: w.name, from: seconds(analysis, w.from), to: seconds(analysis, w.to) })),
    halts: analysis.halts.map((h) => ({ t: seconds(analysis, h.at), reason: h.reason, label: 'halt' })),
  };
}

const timeAxis = (timeline: Timeline) => ({ type: 'quantitative' as const, scale: { domain: timeline.domain, nice: false, zero: false }, axis: { title: 'seconds since start' } });

/** The fault-window shading (full height, labelled at the top) and the halt rules, drawn behind/over a time chart. */
function faultLayers(timeline: Timeline, height = HEIGHT): Layer[] {
  const layers: Layer[] = [];
  if (timeline.faults.length) {
    layers.push(
      { data: { values: [...timeline.faults] }, mark: { type: 'rect', fill: FAULT_FILL, fillOpacity: 0.6, stroke: null }, encoding: { x: { field: 'from', ...timeAxis(timeline) }, x2: { field: 'to' } } },
      { data: { values: [...timeline.faults] }, mark: { type: 'text', align: 'left', baseline: 'top', dx: 3, dy: 3, fontSize: 10, color: '#8c2d04' }, encoding: { x: { field: 'from', ...timeAxis(timeline) }, y: { value: 0 }, text: { field: 'fault', type: 'nominal' } } },
    );
  }
  if (timeline.halts.length) {
    layers.push(
      { data: { values: [...timeline.halts] }, mark: { type: 'rule', color: HALT_COLOR, strokeWidth: 2, strokeDash: [4, 3] }, encoding: { x: { field: 't', ...timeAxis(timeline) } } },
      { data: { values: [...timeline.halts] }, mark: { type: 'text', align: 'right', baseline: 'bottom', dx: -3, fontSize: 10, color: HALT_COLOR }, encoding: { x: { field: 't', ...timeAxis(timeline) }, y: { value: height }, text: { field: 'label', type: 'nominal' } } },
    );
  }
  return layers;
}

function frame(layers: Layer[], height = HEIGHT): TopLevelSpec {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    width: WIDTH,
    height,
    background: 'white',
    config: { aria: false, font: 'sans-serif', view: { stroke: '#ccc' }, axis: { labelFontSize: 10, titleFontSize: 11 }, legend: { labelFontSize: 10, titleFontSize: 11 } },
    layer: layers,
  };
}

function latencySpec(rows: Row[], timeline: Timeline): TopLevelSpec {
  return frame([
    ...faultLayers(timeline),
    {
      data: { values: rows },
      transform: [{ fold: ['p50', 'p99'], as: ['percentile', 'ms'] }],
      mark: { type: 'line', strokeWidth: 1.5, interpolate: 'linear' },
      encoding: {
        x: { field: 't', ...timeAxis(timeline) },
        y: { field: 'ms', type: 'quantitative', axis: { title: 'latency (ms)' } },
        color: { field: 'percentile', type: 'nominal', scale: { domain: ['p50', 'p99'], range: ['#2166ac', '#762a83'] }, legend: { title: null, orient: 'top-right' } },
        detail: { field: 'segment', type: 'nominal' },
        order: { field: 'n', type: 'quantitative' },
      },
    },
  ]);
}

/** One bar per bucket, from its start to its end, and a rule along its top. */
function errorSpec(rows: Row[], timeline: Timeline): TopLevelSpec {
  const top = Math.min(100, Math.max(5, ...rows.map((r) => Number(r['rate']))));
  const y = { field: 'rate', type: 'quantitative' as const, scale: { domain: [0, top], nice: true }, axis: { title: 'errors (% of requests)' } };
  return frame([
    ...faultLayers(timeline),
    { data: { values: rows }, mark: { type: 'rect', color: ERROR_FILL, opacity: 0.7 }, encoding: { x: { field: 'from', ...timeAxis(timeline) }, x2: { field: 'to' }, y, y2: { datum: 0 } } },
    { data: { values: rows }, mark: { type: 'rule', color: '#b2182b', strokeWidth: 1.5 }, encoding: { x: { field: 'from', ...timeAxis(timeline) }, x2: { field: 'to' }, y } },
  ]);
}

function retrySpec(rows: Row[], timeline: Timeline): TopLevelSpec {
  return frame([
    ...faultLayers(timeline),
    {
      data: { values: rows },
      mark: { type: 'line', strokeWidth: 1.5 },
      encoding: {
        x: { field: 't', ...timeAxis(timeline) },
        y: { field: 'retries', type: 'quantitative', axis: { title: 'retries per second' } },
        color: { field: 'service', type: 'nominal', scale: { scheme: 'tableau10' }, legend: { title: 'service' } },
        detail: { field: 'segment', type: 'nominal' },
        order: { field: 'n', type: 'quantitative' },
      },
    },
  ]);
}

/** One bar per service and state change, from the change to the next one (or the end of the run). */
function breakerSpec(analysis: Analysis, timeline: Timeline): TopLevelSpec {
  const rows: Row[] = [];
  const services = [...new Set(analysis.policies.breakerTimeline.map((b) => b.service))];
  for (const service of services) {
    const changes = analysis.policies.breakerTimeline.filter((b) => b.service === service).toSorted((a, b) => a.t - b.t);
    changes.forEach((c, i) => {
      const from = seconds(analysis, c.t);
      const to = i + 1 < changes.length ? seconds(analysis, changes[i + 1]!.t) : timeline.domain[1];
      if (to > from) rows.push({ service, state: c.state, from, to });
    });
  }
  const height = Math.max(80, 30 * services.length + 24);
  return frame(
    [
      ...faultLayers({ ...timeline, halts: [] }, height),
      {
        data: { values: rows },
        mark: { type: 'bar' },
        encoding: {
          x: { field: 'from', ...timeAxis(timeline) },
          x2: { field: 'to' },
          y: { field: 'service', type: 'nominal', sort: services, scale: { paddingInner: 0.3, paddingOuter: 0.8 }, axis: { title: null } },
          color: { field: 'state', type: 'nominal', scale: { domain: [...BREAKER_STATES], range: BREAKER_COLORS }, legend: { title: 'breaker' } },
        },
      },
      ...faultLayers({ ...timeline, faults: [] }, height),
    ],
    height,
  );
}

/**
 * The services in columns by their depth in the call graph (the longest path from a service nobody
 * calls), spread evenly down each column; edges as rules whose width and colour grow with the errors
 * they propagated, an arrowhead near the callee, and labels. Positions are pixels (scale: null).
 */
function propagationSpec(analysis: Analysis): TopLevelSpec {
  const { nodes, edges } = analysis.propagation;
  const names = [...new Set([...nodes.map((n) => n.service), ...edges.flatMap((e) => [e.from, e.to])])];
  const depth = new Map(names.map((n) => [n, 0]));
  for (let round = 0; round < names.length; round++) {
    let changed = false;
    for (const e of edges) {
      if (e.from === e.to) continue;
      const d = (depth.get(e.from) ?? 0) + 1;
      if (d > (depth.get(e.to) ?? 0) && d < names.length) {
        depth.set(e.to, d);
        changed = true;
      }
    }
    if (!changed) break;
  }
  const columns = Math.max(...depth.values(), 0) + 1;
  const perColumn = new Map<number, string[]>();
  for (const n of names) perColumn.set(depth.get(n)!, [...(perColumn.get(depth.get(n)!) ?? []), n]);
  const rowsMax = Math.max(1, ...[...perColumn.values()].map((c) => c.length));
  const height = Math.max(160, 90 * rowsMax);
  const margin = 90;
  const at = new Map<string, { x: number; y: number }>();
  for (const [d, column] of perColumn) {
    column.forEach((n, i) => at.set(n, { x: columns === 1 ? WIDTH / 2 : margin + (d * (WIDTH - 2 * margin)) / (columns - 1), y: ((i + 1) * height) / (column.length + 1) }));
  }
  const byName = new Map(nodes.map((n) => [n.service, n]));
  const nodeRows: Row[] = names.map((n) => {
    const node = byName.get(n);
    const acting = analysis.faults.filter((f) => f.targets.includes(n)).map((f) => f.id);
    return { service: n, x: at.get(n)!.x, y: at.get(n)!.y, faulted: node?.faulted ? 'fault injected' : 'no fault', detail: `${node?.errors ?? 0} errors`, faults: acting.join(', ') };
  });
  const edgeRows: Row[] = edges
    .filter((e) => e.from !== e.to)
    .map((e) => {
      const a = at.get(e.from)!;
      const b = at.get(e.to)!;
      const dx = b.x - a.x;
      const dy = b.y - a.y;
      const length = Math.hypot(dx, dy) || 1;
      const inset = 22;
      return {
        x: a.x + (dx * inset) / length,
        y: a.y + (dy * inset) / length,
        x2: b.x - (dx * inset) / length,
        y2: b.y - (dy * inset) / length,
        headX: b.x - (dx * (inset + 6)) / length,
        headY: b.y - (dy * (inset + 6)) / length,
        angle: (Math.atan2(dx, -dy) * 180) / Math.PI,
        midX: (a.x + b.x) / 2,
        midY: (a.y + b.y) / 2,
        propagated: e.propagated,
        label: `${e.calls} calls · ${e.errors} errors · ${e.propagated} propagated`,
      };
    });
  const maxPropagated = Math.max(1, ...edges.map((e) => e.propagated));
  const px = (field: string) => ({ field, type: 'quantitative' as const, scale: null, axis: null });
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    width: WIDTH,
    height,
    background: 'white',
    config: { aria: false, font: 'sans-serif', view: { stroke: null }, legend: { labelFontSize: 10, titleFontSize: 11 } },
    layer: [
      {
        data: { values: edgeRows },
        mark: { type: 'rule', strokeCap: 'round' },
        encoding: {
          x: px('x'),
          y: px('y'),
          x2: { field: 'x2' },
          y2: { field: 'y2' },
          strokeWidth: { field: 'propagated', type: 'quantitative', scale: { domain: [0, maxPropagated], range: [1.5, 9] }, legend: null },
          color: { field: 'propagated', type: 'quantitative', scale: { domain: [0, maxPropagated], range: ['#bababa', '#b2182b'] }, legend: null },
        },
      },
      {
        data: { values: edgeRows },
        mark: { type: 'point', shape: 'triangle-up', filled: true, size: 140, opacity: 1 },
        encoding: { x: px('headX'), y: px('headY'), angle: { field: 'angle', type: 'quantitative', scale: null }, color: { field: 'propagated', type: 'quantitative', scale: { domain: [0, maxPropagated], range: ['#bababa', '#b2182b'] }, legend: null } },
      },
      {
        data: { values: edgeRows },
        mark: { type: 'text', dy: -10, fontSize: 10, color: '#333' },
        encoding: { x: px('midX'), y: px('midY'), text: { field: 'label', type: 'nominal' } },
      },
      {
        data: { values: nodeRows },
        mark: { type: 'point', filled: true, size: 900, stroke: '#333', strokeWidth: 1, opacity: 1 },
        encoding: { x: px('x'), y: px('y'), fill: { field: 'faulted', type: 'nominal', scale: { domain: ['fault injected', 'no fault'], range: [FAULT_FILL, '#d1e5f0'] }, legend: { title: null } } },
      },
      {
        data: { values: nodeRows },
        mark: { type: 'text', dy: 28, fontSize: 12, fontWeight: 'bold', color: '#111' },
        encoding: { x: px('x'), y: px('y'), text: { field: 'service', type: 'nominal' } },
      },
      {
        data: { values: nodeRows },
        mark: { type: 'text', dy: 42, fontSize: 10, color: '#555' },
        encoding: { x: px('x'), y: px('y'), text: { field: 'detail', type: 'nominal' } },
      },
      {
        data: { values: nodeRows },
        mark: { type: 'text', dy: -26, fontSize: 10, color: '#8c2d04' },
        encoding: { x: px('x'), y: px('y'), text: { field: 'faults', type: 'nominal' } },
      },
    ],
  };
}
