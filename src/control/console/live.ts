// What the console's Mesh page shows each second, pushed over one server-sent event stream per open tab
// (GET /ui/live): the graph (services, their endpoints, the calls declared in the config and those
// seen), per edge and per service the last second's rps, error % and p99, the runtime faults in force,
// open breakers, ejected endpoints, and the sidecars with their health.
//
// The numbers come from the sidecars' request.done, aggregated here, server-side, into one-second
// windows. Sidecars send request.done only while someone reads the merged stream (plane.ts: they do
// not pay for serializing an event per request nobody reads): an open console counts as a reader, so
// they flow while a console is open and stop when the last one closes. Decisions (breakers, ejections)
// flow always and are followed from the start.
import { succeeded } from '../../measures.ts';
import type { Response } from 'express';
import type { ControlPlane } from '../plane.ts';
import { serviceOfSidecar } from '../auth.ts';
import { sidecarViews } from '../sidecar-views.ts';
import type { MeshEvents } from '../../telemetry/events.ts';
import { HEALTH_CHECK_SOURCE } from '../../proxy/health.ts';

export interface Rates {
  readonly rps: number;
  /** Share of requests answered 5xx or not at all (status 0), in percent. */
  readonly errorPct: number;
  /** Of the window's durations, in ms; null when it had no request. */
  readonly p99: number | null;
}

export interface LiveEdge extends Rates {
  readonly source: string;
  readonly destination: string;
  /** In the config (a service's `calls`), else only seen. */
  readonly declared: boolean;
}

export interface LiveFrame {
  readonly at: string;
  readonly mesh: string;
  readonly version: string;
  /** Whether request.done flow (the console is a reader): false for the first second, while they start. */
  readonly collecting: boolean;
  readonly services: readonly (Rates & { readonly name: string; readonly endpoints: readonly { address: string; labels: Record<string, string> }[] })[];
  readonly edges: readonly LiveEdge[];
  readonly faults: readonly Record<string, unknown>[];
  readonly breakers: readonly { service: string; subset: string; state: string; sidecar: string; since: string }[];
  readonly ejected: readonly { service: string; endpoint: string; sidecar: string; reason: string; since: string }[];
  readonly sidecars: readonly { name: string; service: string | null; health: string; version: string | null; connected: boolean; faults: string[] | null }[];
  readonly instances: readonly { name: string; service: string; address: string; labels: Record<string, string> }[];
}

interface Window {
  count: number;
  errors: number;
  durations: number[];
}

/** Durations kept per window and key at most (a sample beyond is counted, not kept for p99). */
const MAX_DURATIONS = 10_000;

export class LiveMesh {
  readonly #plane: ControlPlane;
  #edges = new Map<string, Window>();
  #services = new Map<string, Window>();
  /** Edges seen since start (source>destination): shown, idle or not, once seen. */
  readonly #seen = new Set<string>();
  readonly #breakers = new Map<string, { service: string; subset: string; state: string; sidecar: string; since: string }>();
  readonly #ejected = new Map<string, { service: string; endpoint: string; sidecar: string; reason: string; since: string }>();
  /** Per runtime fault in force: how many times the sidecars applied it (fault.applied), mesh-wide. */
  readonly #applied = new Map<string, number>();
  readonly #clients = new Set<{ reader: (frame: LiveFrame) => void }>();
  readonly #unsubscribe: (() => void)[];
  #detach: (() => void) | undefined;
  #timer: NodeJS.Timeout | undefined;
  #last: LiveFrame | undefined;
  readonly #tickMs: number;
  readonly #now: () => number;
  #windowStart: number;

  /** A frame each `tickMs`; `now`, the clock windows are measured by (tests give their own, and end windows themselves). */
  constructor(plane: ControlPlane, options: { tickMs?: number; now?: () => number } = {}) {
    this.#plane = plane;
    this.#tickMs = options.tickMs ?? 1_000;
    this.#now = options.now ?? Date.now;
    this.#windowStart = this.#now();
    this.#unsubscribe = [
      plane.events.on('request.done', (e) => this.#request(e)),
      plane.events.on('breaker.state', (e) => {
        const key = `${e.sidecar}|${e.service}|${e.subset}`;
        if (e.to === 'closed') this.#breakers.delete(key);
        else this.#breakers.set(key, { service: e.service, subset: e.subset, state: e.to, sidecar: e.sidecar, since: new Date(e.time).toISOString() });
      }),
      plane.events.on('outlier.ejected', (e) => {
        this.#ejected.set(`${e.sidecar}|${e.service}|${e.endpoint}`, { service: e.service, endpoint: e.endpoint, sidecar: e.sidecar, reason: e.reason, since: new Date(e.time).toISOString() });
      }),
      plane.events.on('fault.applied', (e) => void this.#applied.set(e.faultId, (this.#applied.get(e.faultId) ?? 0) + 1)),
      plane.events.on('outlier.restored', (e) => void this.#ejected.delete(`${e.sidecar}|${e.service}|${e.endpoint}`)),
    ];
  }

  /** A console's stream: a frame now (the last, if any) and one each second until it closes. */
  stream(res: Response): void {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    res.flushHeaders();
    res.write('retry: 2000\n\n');
    const detach = this.attach((frame) => send(res, frame));
    send(res, this.#last ?? this.frame());
    res.once('close', detach);
  }

  /**
   * A reader of the frames: while any is attached the sidecars send request.done and a frame is made
   * each tick. Returns the function that detaches it.
   */
  attach(reader: (frame: LiveFrame) => void): () => void {
    const client = { reader };
    this.#clients.add(client);
    if (this.#clients.size === 1) this.#start();
    return () => {
      if (!this.#clients.delete(client)) return;
      if (this.#clients.size === 0) this.#stop();
    };
  }

  /** The frame of the window that ends now; resets the window. */
  frame(): LiveFrame {
    const plane = this.#plane;
    const snapshot = plane.snapshot;
    const edgeWindows = this.#edges;
    const serviceWindows = this.#services;
    const now = this.#now();
    // Rates over the window's true length (a tick that comes late is not a busier second).
    const seconds = Math.max(0.001, (now - this.#windowStart) / 1_000);
    this.#edges = new Map();
    this.#services = new Map();
    this.#windowStart = now;
    const declared = new Set<string>();
    for (const service of snapshot.config.services) {
      for (const call of service.calls ?? []) declared.add(`${service.name}>${typeof call === 'string' ? call : call.service}`);
    }
    const edges = [...new Set([...declared, ...this.#seen])].sort().map((key) => {
      const [source, destination] = key.split('>') as [string, string];
      return { source, destination, declared: declared.has(key), ...rates(edgeWindows.get(key), seconds) };
    });
    const faults = plane.faults.all();
    for (const id of this.#applied.keys()) if (!faults.some((f) => f.id === id)) this.#applied.delete(id);
    const sidecars = sidecarViews(plane);
    const connected = sidecars.filter((s) => s.connected);
    return {
      at: new Date(now).toISOString(),
      mesh: snapshot.mesh.name,
      version: plane.state.version,
      collecting: plane.collectsRequests,
      services: [...snapshot.services.values()].map((s) => ({
        name: s.name,
        endpoints: s.endpoints.map((e) => ({ address: e.address, labels: { ...e.labels } })),
        ...rates(serviceWindows.get(s.name), seconds),
      })),
      edges,
      // The control plane's own table counts nothing (the sidecars apply faults): applied is theirs,
      // summed from fault.applied; heldBy, how many connected sidecars said they hold it.
      faults: faults.map((f) => ({
        ...f.view(now),
        applied: this.#applied.get(f.id) ?? 0,
        heldBy: connected.filter((s) => s.faults?.includes(f.id)).length,
        sidecars: connected.length,
      })),
      breakers: [...this.#breakers.values()],
      ejected: [...this.#ejected.values()],
      sidecars: sidecars.map((s) => ({ name: s.name, service: serviceOfSidecar(plane, s.name) ?? null, health: s.health, version: s.version, connected: s.connected, faults: s.faults })),
      instances: plane.instances().map((i) => ({ name: i.name, service: i.service, address: i.address, labels: { ...i.labels } })),
    };
  }

  /** Stops following the plane; the streams open end with the server's connections. */
  close(): void {
    for (const off of this.#unsubscribe) off();
    this.#clients.clear();
    this.#stop();
  }

  #start(): void {
    // A reader of the merged stream: the sidecars start sending request.done.
    this.#detach = this.#plane.attachEventReader();
    this.#edges = new Map();
    this.#services = new Map();
    this.#windowStart = this.#now();
    this.#timer = setInterval(() => {
      const frame = this.frame();
      this.#last = frame;
      for (const client of this.#clients) client.reader(frame);
    }, this.#tickMs);
    this.#timer.unref();
  }

  #stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#detach?.();
    this.#detach = undefined;
    this.#last = undefined;
  }

  #request(e: MeshEvents['request.done']): void {
    if (!this.#timer) return;
    // What the analysis counts as a failure (a gRPC error rides on HTTP 200): measures.ts.
    const failed = !succeeded(e.status, e.grpcStatus);
    if (e.direction === 'outbound') {
      if (e.service === null) return;
      const key = `${e.source}>${e.service}`;
      this.#seen.add(key);
      add(this.#edges, key, failed, e.durationMs);
    } else if (e.source !== HEALTH_CHECK_SOURCE) {
      // A service's own numbers: what its instances' sidecars served (health checks left out).
      const service = serviceOfSidecar(this.#plane, e.sidecar);
      if (service !== undefined) add(this.#services, service, failed, e.durationMs);
    }
  }
}

function add(windows: Map<string, Window>, key: string, failed: boolean, durationMs: number): void {
  let w = windows.get(key);
  if (!w) windows.set(key, (w = { count: 0, errors: 0, durations: [] }));
  w.count++;
  if (failed) w.errors++;
  if (w.durations.length < MAX_DURATIONS) w.durations.push(durationMs);
}

function rates(w: Window | undefined, seconds: number): Rates {
  if (!w || w.count === 0) return { rps: 0, errorPct: 0, p99: null };
  const sorted = w.durations.sort((a, b) => a - b);
  // Nearest rank: the smallest duration with at least 99 % of the window's at or below it.
  const p99 = sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * 0.99) - 1)]!;
  return { rps: round(w.count / seconds), errorPct: round((100 * w.errors) / w.count), p99: round(p99) };
}

function round(n: number): number {
  return Math.round(n * 10) / 10;
}

function send(res: Response, frame: LiveFrame): void {
  res.write(`event: frame\ndata: ${JSON.stringify(frame)}\n\n`);
}
