// The Mesh page: services and the calls between them, laid out left to right (callers before callees)
// by dagre and drawn as SVG; per edge and per service the last second's rps, error % and p99; edges a
// runtime fault can hit marked; open breakers and ejected endpoints; per service its instances.
// The layout is computed again only when the set of services or edges changes, so nothing jumps.
import { Graph, layout } from '@dagrejs/dagre';
import { html } from 'htm/preact';
import { useEffect, useMemo, useState } from 'preact/hooks';
import { faultsOn, formatRate, type LiveFrame } from './live.ts';

const NODE_W = 180;
const NODE_H = 64;
/** Below this width the graph runs top to bottom: a phone's screen is tall, not wide. */
const NARROW = '(max-width: 640px)';

interface Laid {
  width: number;
  height: number;
  nodes: Map<string, { x: number; y: number }>;
  edges: Map<string, { points: { x: number; y: number }[]; label: { x: number; y: number } }>;
}

function lay(services: string[], edges: [string, string][], narrow: boolean): Laid {
  const g = new Graph({ multigraph: false });
  g.setGraph(narrow ? { rankdir: 'TB', nodesep: 16, ranksep: 70, marginx: 8, marginy: 8 } : { rankdir: 'LR', nodesep: 36, ranksep: 130, marginx: 16, marginy: 16 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const s of services) g.setNode(s, { width: NODE_W, height: NODE_H });
  for (const [a, b] of edges) g.setEdge(a, b, { width: narrow ? 10 : 150, height: 30, labelpos: 'c' });
  layout(g);
  const nodes = new Map<string, { x: number; y: number }>();
  for (const s of services) {
    const n = g.node(s);
    nodes.set(s, { x: n.x, y: n.y });
  }
  const laidEdges = new Map<string, { points: { x: number; y: number }[]; label: { x: number; y: number } }>();
  for (const [a, b] of edges) {
    const e = g.edge(a, b);
    const points = e.points ?? [];
    const mid = points[Math.floor(points.length / 2)] ?? { x: 0, y: 0 };
    laidEdges.set(`${a}>${b}`, { points, label: { x: e.x ?? mid.x, y: e.y ?? mid.y } });
  }
  const graph = g.graph();
  return { width: graph.width ?? 400, height: graph.height ?? 200, nodes, edges: laidEdges };
}

function path(points: { x: number; y: number }[]): string {
  return points.map((p, i) => `${i === 0 ? 'M' : 'L'}${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(' ');
}

export function MeshPage({ frame }: { frame: LiveFrame | undefined }) {
  const services = frame?.services.map((s) => s.name) ?? [];
  const edgeKeys = frame?.edges.filter((e) => services.includes(e.source) && services.includes(e.destination)).map((e): [string, string] => [e.source, e.destination]) ?? [];
  const [narrow, setNarrow] = useState(() => matchMedia(NARROW).matches);
  useEffect(() => {
    const query = matchMedia(NARROW);
    const changed = () => setNarrow(query.matches);
    query.addEventListener('change', changed);
    return () => query.removeEventListener('change', changed);
  }, []);
  const shape = JSON.stringify([services, edgeKeys, narrow]);
  const laid = useMemo(() => lay(services, edgeKeys, narrow), [shape]);
  if (!frame) return html`<p class="loading">Waiting for the first second of traffic…</p>`;

  const openBreakers = (service: string) => frame.breakers.filter((b) => b.service === service && b.state !== 'closed');
  const ejected = (service: string) => frame.ejected.filter((e) => e.service === service);
  return html`<section aria-labelledby="mesh-title">
    <h1 id="mesh-title">Mesh <small>config ${frame.version.slice(0, 12)} · ${frame.at.slice(11, 19)} UTC${frame.collecting ? '' : ' · starting to collect'}</small></h1>
    <div class="graph-wrap">
      <svg class="graph" viewBox=${`0 0 ${laid.width} ${laid.height}`} width=${laid.width} height=${laid.height} role="img" aria-label="Service graph" data-testid="graph">
        <defs>
          <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" class="arrowhead" /></marker>
        </defs>
        ${frame.edges.map((e) => {
          const at = laid.edges.get(`${e.source}>${e.destination}`);
          if (!at || at.points.length === 0) return null;
          const faults = faultsOn(frame.faults, e.source, e.destination);
          const mid = at.label;
          const cls = ['edge', faults.length > 0 && 'faulted', e.errorPct >= 5 && 'failing', e.rps === 0 && 'idle', !e.declared && 'undeclared'].filter(Boolean).join(' ');
          return html`<g class=${cls} data-testid=${`edge-${e.source}-${e.destination}`} data-faulted=${faults.length > 0 ? faults.map((f) => f.id).join(',') : undefined}>
            <title>${e.source} → ${e.destination}: ${formatRate(e)}${faults.length ? ` · faults: ${faults.map((f) => f.id).join(', ')}` : ''}</title>
            <path d=${path(at.points)} marker-end="url(#arrow)" />
            <text x=${mid.x} y=${narrow ? mid.y : mid.y - 6} text-anchor="middle" class="edge-label" data-testid=${`edge-rate-${e.source}-${e.destination}`}>${e.rps.toFixed(1)}/s · ${e.errorPct.toFixed(0)}% · ${e.p99 === null ? '–' : `${Math.round(e.p99)}ms`}</text>
            ${faults.length > 0 && html`<text x=${mid.x} y=${narrow ? mid.y + 14 : mid.y + 16} text-anchor="middle" class="fault-label">⚡ ${faults.map((f) => f.id).join(', ')}</text>`}
          </g>`;
        })}
        ${frame.services.map((s) => {
          const at = laid.nodes.get(s.name);
          if (!at) return null;
          const breakers = openBreakers(s.name);
          const out = ejected(s.name);
          const cls = ['node', s.errorPct >= 5 && 'failing', breakers.length > 0 && 'breaker-open'].filter(Boolean).join(' ');
          return html`<g class=${cls} transform=${`translate(${at.x - NODE_W / 2},${at.y - NODE_H / 2})`} data-testid=${`node-${s.name}`}>
            <title>${s.name}: ${formatRate(s)}</title>
            <rect width=${NODE_W} height=${NODE_H} rx="8" />
            <text x="10" y="20" class="node-name">${s.name}</text>
            <text x="10" y="38" class="node-rate" data-testid=${`node-rate-${s.name}`}>${s.rps.toFixed(1)}/s · ${s.errorPct.toFixed(1)}% err</text>
            <text x="10" y="54" class="node-rate">p99 ${s.p99 === null ? '–' : `${Math.round(s.p99)} ms`}${breakers.length ? ' · breaker open' : ''}${out.length ? ` · ${out.length} ejected` : ''}</text>
          </g>`;
        })}
      </svg>
    </div>
    <p class="legend"><span class="key faulted">⚡ faulted</span> <span class="key failing">≥ 5% errors</span> <span class="key idle">idle</span> <span class="key undeclared">seen, not declared</span></p>
    <h2>Services and instances</h2>
    <div class="cards">
      ${frame.services.map((s) => {
        const sidecars = frame.sidecars.filter((c) => c.service === s.name);
        const registered = frame.instances.filter((i) => i.service === s.name);
        const out = ejected(s.name);
        const breakers = openBreakers(s.name);
        return html`<article class="card" data-testid=${`service-${s.name}`}>
          <h3>${s.name}</h3>
          <p class="rate">${formatRate(s)}</p>
          ${breakers.map((b) => html`<p class="warn">Breaker ${b.state}${b.subset ? ` (${b.subset})` : ''} at ${b.sidecar} since ${b.since.slice(11, 19)}</p>`)}
          ${out.map((e) => html`<p class="warn">Ejected ${e.endpoint} (by ${e.sidecar}): ${e.reason}</p>`)}
          <table>
            <caption class="sr-only">Endpoints of ${s.name}</caption>
            <thead><tr><th scope="col">endpoint</th><th scope="col">labels</th></tr></thead>
            <tbody>
              ${[...s.endpoints, ...registered].map((e) => html`<tr><td>${e.address}</td><td>${Object.entries(e.labels).map(([k, v]) => `${k}=${v}`).join(', ') || '–'}</td></tr>`)}
            </tbody>
          </table>
          <table>
            <caption class="sr-only">Sidecars of ${s.name}</caption>
            <thead><tr><th scope="col">sidecar</th><th scope="col">health</th><th scope="col">version acked</th></tr></thead>
            <tbody>
              ${sidecars.map((c) => html`<tr><td>${c.name}</td><td class=${`health ${c.health.replace(' ', '-')}`}>${c.health}</td><td title=${c.version ?? ''}>${c.version ? c.version.slice(0, 12) : '–'}</td></tr>`)}
            </tbody>
          </table>
        </article>`;
      })}
    </div>
  </section>`;
}
