// What a recorded run shows about the mesh, for lint: the calls that were made (the observed call
// graph), at what rate, how long they took, how many were in flight at once, how a service made its
// calls (at once or one after another), and the retries — the app's, seen as repeated calls within
// one request, and the mesh's. Read from the run's request.done and retry.attempt events.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { percentile } from '../measures.ts';
import type { MeshEvents } from '../telemetry/events.ts';

type Done = MeshEvents['request.done'];

export interface EdgeObservation {
  readonly from: string;
  readonly to: string;
  readonly calls: number;
  readonly rps: number;
  readonly p50: number;
  readonly p99: number;
  readonly p999: number;
  readonly max: number;
  readonly methods: readonly string[];
  /** Most calls in flight at once. */
  readonly maxInFlight: number;
  /** Mesh retries made (tries beyond the first, summed). */
  readonly meshRetries: number;
  /** Calls beyond the first to the same service within one request of the caller: the app's own retries. */
  readonly appRepeats: number;
}

export interface ServiceObservation {
  readonly service: string;
  /** Requests its sidecars received (inbound). */
  readonly requests: number;
  readonly rps: number;
  readonly p99: number;
  readonly p999: number;
  /** Distinct endpoints its callers reached. */
  readonly endpoints: number;
  /** Most requests in flight at once at its sidecars. */
  readonly maxInFlight: number;
  /** How it made its calls for one request, when it made two or more; undefined when never seen. */
  readonly callOrder: 'parallel' | 'sequential' | undefined;
}

export interface Observation {
  readonly dir: string;
  /** The time the figures cover. */
  readonly windowMs: number;
  readonly edges: readonly EdgeObservation[];
  readonly services: readonly ServiceObservation[];
}

/**
 * A run directory's events → what they show. The figures come from the run's baseline window when the
 * journal names one with calls in it (faults distort the rest); the call graph from the whole run.
 */
export async function readObservation(dir: string, serviceOfSidecar: ReadonlyMap<string, string>): Promise<Observation> {
  const text = await readFile(join(dir, 'events.ndjson'), 'utf8').catch((error: unknown) => {
    throw new Error(`cannot read the recording ${join(dir, 'events.ndjson')}: ${(error as Error).message}`);
  });
  const events = text.split('\n').filter(Boolean).map((line) => JSON.parse(line) as { type: string });
  const journal = await readFile(join(dir, 'journal.json'), 'utf8').then((t) => JSON.parse(t) as { windows?: { name: string; from: number; to: number }[] }, () => undefined);
  return observe(dir, events, serviceOfSidecar, journal?.windows?.find((w) => w.name === 'baseline'));
}

/** `serviceOfSidecar`: the mesh's sidecars and their services, to know whose an inbound call was. */
export function observe(dir: string, events: readonly { type: string }[], serviceOfSidecar: ReadonlyMap<string, string>, baseline?: { from: number; to: number }): Observation {
  const done = events.filter((e): e is Done => e.type === 'request.done');
  const inBaseline = baseline ? done.filter((e) => e.time - e.durationMs >= baseline.from && e.time <= baseline.to) : [];
  const figures = inBaseline.length > 0 ? inBaseline : done;
  const starts = figures.map((e) => e.time - e.durationMs);
  const windowMs = figures.length === 0 ? 0 : baseline && inBaseline.length > 0 ? baseline.to - baseline.from : Math.max(1, Math.max(...figures.map((e) => e.time)) - Math.min(...starts));
  const perSecond = (n: number) => (windowMs > 0 ? (n * 1000) / windowMs : 0);

  const outbound = done.filter((e) => e.direction === 'outbound' && e.service);
  const edgeKeys = [...new Set(outbound.map((e) => `${e.source}\u0000${e.service}`))].sort();
  const edges = edgeKeys.map((key): EdgeObservation => {
    const [from, to] = key.split('\u0000') as [string, string];
    const all = outbound.filter((e) => e.source === from && e.service === to);
    const measured = figures.filter((e) => e.direction === 'outbound' && e.source === from && e.service === to);
    const durations = measured.map((e) => e.durationMs).sort((a, b) => a - b);
    const perRequest = new Map<string, number>();
    for (const e of all) perRequest.set(e.requestId, (perRequest.get(e.requestId) ?? 0) + 1);
    return {
      from,
      to,
      calls: all.length,
      rps: perSecond(measured.length),
      p50: percentile(durations, 50),
      p99: percentile(durations, 99),
      p999: percentile(durations, 99.9),
      max: durations.at(-1) ?? 0,
      methods: [...new Set(all.map((e) => e.method))].sort(),
      maxInFlight: maxInFlight(measured),
      meshRetries: all.reduce((sum, e) => sum + Math.max(0, e.attempts - 1), 0),
      appRepeats: [...perRequest.values()].reduce((sum, n) => sum + n - 1, 0),
    };
  });

  const names = [...new Set([...outbound.map((e) => e.service!), ...outbound.map((e) => e.source)])].sort();
  const services = names.map((service): ServiceObservation => {
    const received = figures.filter((e) => e.direction === 'inbound' && serviceOfSidecar.get(e.sidecar) === service);
    const durations = received.map((e) => e.durationMs).sort((a, b) => a - b);
    return {
      service,
      requests: received.length,
      rps: perSecond(received.length),
      p99: percentile(durations, 99),
      p999: percentile(durations, 99.9),
      endpoints: new Set(outbound.filter((e) => e.service === service && e.endpoint).map((e) => e.endpoint)).size,
      maxInFlight: maxInFlight(received),
      callOrder: callOrderOf(outbound.filter((e) => e.source === service)),
    };
  });
  return { dir, windowMs, edges, services };
}

/** Most intervals [end - duration, end] open at once. */
function maxInFlight(calls: readonly Done[]): number {
  const points = calls.flatMap((e) => [[e.time - e.durationMs, 1], [e.time, -1]] as [number, number][]);
  points.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let open = 0;
  let most = 0;
  for (const [, step] of points) {
    open += step;
    most = Math.max(most, open);
  }
  return most;
}

/**
 * Parallel when, in most requests where the service called two or more others, some two calls
 * overlapped in time; sequential when they never did.
 */
function callOrderOf(calls: readonly Done[]): 'parallel' | 'sequential' | undefined {
  const byRequest = new Map<string, Done[]>();
  for (const e of calls) byRequest.set(e.requestId, [...(byRequest.get(e.requestId) ?? []), e]);
  let parallel = 0;
  let sequential = 0;
  for (const group of byRequest.values()) {
    if (new Set(group.map((e) => e.service)).size < 2) continue;
    const sorted = [...group].sort((a, b) => a.time - a.durationMs - (b.time - b.durationMs));
    const overlaps = sorted.some((e, i) => i > 0 && e.time - e.durationMs < sorted[i - 1]!.time);
    if (overlaps) parallel++;
    else sequential++;
  }
  if (parallel + sequential === 0) return undefined;
  return parallel >= sequential ? 'parallel' : 'sequential';
}
