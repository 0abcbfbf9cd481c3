// The LintModel: what `faultline lint` reasons over — the mesh's services and the calls between them,
// each call with the routes that carry it (their timeouts, retries) and the app's own declared policy,
// and, when a recording is given, what the calls were observed to do. Rules are pure functions of it.
import { parse } from 'yaml';
import { locator } from '../config/load.ts';
import type { MeshConfig } from '../config/schema.ts';
import { compileSnapshot, type RetryPolicySpec, type RouteSpec, type ServiceSpec, type Snapshot } from '../config/snapshot.ts';
import type { Observation, EdgeObservation, ServiceObservation } from './recording.ts';

/** A place in the mesh file: file, line, column and the field's path (`routes[1].timeout`). */
export interface Where {
  readonly file: string;
  readonly line: number;
  readonly column: number;
  readonly field: string;
}

/** A route that carries calls to a host, with where its fields are. */
export interface HopRoute {
  readonly name: string;
  /** True for a service's implicit route (no route names its host): no timeout, no retries. */
  readonly implicit: boolean;
  /** The methods the route matches; undefined: any. */
  readonly methods: readonly string[] | undefined;
  readonly timeoutMs: number | undefined;
  readonly retries: RetryPolicySpec | undefined;
  /** Whether each retry field was written in the file (false: its default). */
  readonly explicit: { readonly attempts: boolean; readonly retryOn: boolean; readonly budget: boolean; readonly backoff: boolean };
  /** The services it sends to. */
  readonly destinations: readonly string[];
  /** The route (for an implicit one, the service it stands for) and, when set, its fields. */
  readonly at: Where;
  readonly timeoutAt: Where;
  readonly retriesAt: Where;
}

/** The app's own policy on a call, as its service's `calls` declares it. */
export interface AppCall {
  readonly timeoutMs: number | undefined;
  readonly retries: number;
  readonly at: Where;
}

/** Calls from one service to another (by the host the caller names). */
export interface Edge {
  readonly from: string;
  readonly to: string;
  /** The routes that may carry them, first match first: one, or several split by method or path. */
  readonly routes: readonly HopRoute[];
  /** Declared in the caller's `calls`; undefined when the caller declares none for it. */
  readonly app: AppCall | undefined;
  /** Where it is known from. */
  readonly known: 'config' | 'recording' | 'both';
  readonly observed: EdgeObservation | undefined;
  /** The callee speaks gRPC (`protocol: grpc`): its calls (all POST) are retried whatever their method, as the proxy does (proxy/retry.ts). */
  readonly grpc: boolean;
}

export interface LintService {
  readonly name: string;
  readonly spec: ServiceSpec;
  readonly at: Where;
  /** How its calls are known: declared in the file, seen in a recording, both, or not at all. */
  readonly calls: 'declared' | 'observed' | 'both' | 'unknown';
  readonly callOrder: 'parallel' | 'sequential';
  readonly observed: ServiceObservation | undefined;
  /** Where a field of the service is (`outlierDetection.maxEjectionPercent`). */
  readonly where: (...field: (string | number)[]) => Where;
}

export interface LintModel {
  readonly file: string;
  readonly snapshot: Snapshot;
  readonly services: ReadonlyMap<string, LintService>;
  readonly edges: readonly Edge[];
  /** The recording the observations came from, when one was given. */
  readonly recording: { readonly dir: string; readonly windowMs: number } | undefined;
  readonly ignore: MeshConfig['lint']['ignore'];
  readonly where: (path: readonly (string | number)[]) => Where;
}

export function callees(model: LintModel, service: string): Edge[] {
  return model.edges.filter((e) => e.from === service);
}

export function callers(model: LintModel, service: string): Edge[] {
  return model.edges.filter((e) => e.to === service);
}

/**
 * Every call path from a service nobody calls (an entry) down to one that calls nobody, as lists of
 * services; a cycle is cut where it would repeat a service. Services in a cycle with no entry start one too.
 */
export function paths(model: LintModel): string[][] {
  const found: string[][] = [];
  const walk = (path: string[]): void => {
    const next = callees(model, path.at(-1)!).filter((e) => !path.includes(e.to));
    if (next.length === 0) {
      if (path.length > 1) found.push(path);
      return;
    }
    for (const e of next) walk([...path, e.to]);
  };
  const called = new Set(model.edges.map((e) => e.to));
  const entries = [...model.services.keys()].filter((s) => !called.has(s) && callees(model, s).length > 0);
  for (const entry of entries) walk([entry]);
  return found;
}

export function edgeOf(model: LintModel, from: string, to: string): Edge | undefined {
  return model.edges.find((e) => e.from === from && e.to === to);
}

export function buildModel(config: MeshConfig, text: string, file: string, observation?: Observation): LintModel {
  const snapshot = compileSnapshot(config, file);
  const where = locator(text, file);
  const document: unknown = parse(text);
  const index = new Map(config.services.map((s, i) => [s.name, i]));
  const routeIndex = new Map(config.routes.map((r, i) => [r.name, i]));

  const hopRoute = (route: RouteSpec): HopRoute => {
    const i = route.implicit ? undefined : routeIndex.get(route.name);
    const raw = i === undefined ? undefined : config.routes[i];
    const at = i === undefined ? where(['services', index.get(route.destinations[0]!.service) ?? 0]) : where(['routes', i]);
    const field = (...path: (string | number)[]) => (i === undefined ? at : where(['routes', i, ...path]));
    const written = (key: string) => i !== undefined && writtenKeys(document, ['routes', i, 'retries']).includes(key);
    const method = raw?.match.method;
    return {
      name: route.name,
      implicit: route.implicit,
      methods: method === undefined ? undefined : typeof method === 'string' ? [method] : method,
      timeoutMs: route.timeoutMs,
      retries: route.retries,
      explicit: { attempts: written('attempts'), retryOn: written('retryOn'), budget: written('budget'), backoff: written('backoff') },
      destinations: [...new Set(route.destinations.map((d) => d.service))],
      at,
      timeoutAt: raw?.timeout !== undefined ? field('timeout') : at,
      retriesAt: raw?.retries !== undefined ? field('retries') : at,
    };
  };
  /** The routes a call to `host` may take: those naming the host, or naming none, in order. */
  const routesTo = (host: string): HopRoute[] =>
    snapshot.routes
      .filter((r) => {
        const i = r.implicit ? undefined : routeIndex.get(r.name);
        const named = i === undefined ? r.destinations[0]!.service : config.routes[i]!.match.host?.toLowerCase();
        return named === undefined || named === host;
      })
      .map(hopRoute);

  const edges = new Map<string, Edge>();
  const add = (from: string, to: string, app: AppCall | undefined, observed: EdgeObservation | undefined): void => {
    const key = `${from}\u0000${to}`;
    const before = edges.get(key);
    const known = before ? 'both' : observed ? 'recording' : 'config';
    const grpc = snapshot.services.get(to)?.protocol === 'grpc';
    edges.set(key, { from, to, routes: routesTo(to), app: app ?? before?.app, known, observed: observed ?? before?.observed, grpc });
  };
  config.services.forEach((service, s) => {
    (service.calls ?? []).forEach((call, i) => {
      const declared = typeof call === 'string' ? { service: call, timeout: undefined, retries: 0 } : call;
      add(service.name, declared.service, { timeoutMs: declared.timeout, retries: declared.retries, at: where(['services', s, 'calls', i]) }, undefined);
    });
  });
  for (const seen of observation?.edges ?? []) {
    if (!index.has(seen.from) || !index.has(seen.to)) continue;
    add(seen.from, seen.to, undefined, seen);
  }

  const services = new Map<string, LintService>();
  config.services.forEach((service, s) => {
    const declared = service.calls !== undefined;
    const seen = observation?.edges.some((e) => e.from === service.name) ?? false;
    services.set(service.name, {
      name: service.name,
      spec: snapshot.services.get(service.name)!,
      at: where(['services', s]),
      calls: declared && seen ? 'both' : declared ? 'declared' : seen ? 'observed' : 'unknown',
      callOrder: observation?.services.find((o) => o.service === service.name)?.callOrder ?? service.callOrder,
      observed: observation?.services.find((o) => o.service === service.name),
      where: (...field) => where(['services', s, ...field]),
    });
  });

  return {
    file,
    snapshot,
    services,
    edges: [...edges.values()],
    recording: observation && { dir: observation.dir, windowMs: observation.windowMs },
    ignore: config.lint.ignore,
    where,
  };
}

/** The keys written in the file at a path (to tell a written value from a default). */
function writtenKeys(document: unknown, path: readonly (string | number)[]): string[] {
  let node = document;
  for (const key of path) {
    if (node === null || typeof node !== 'object') return [];
    node = (node as Record<string | number, unknown>)[key];
  }
  return node !== null && typeof node === 'object' && !Array.isArray(node) ? Object.keys(node) : [];
}
