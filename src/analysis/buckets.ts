// The figures over time that the charts draw, in buckets cut on the run's own clock: one second long,
// counted from the first fault's injection (from the run's start when nothing was injected), and cut
// at every fault window's edges. A bucket is never partly inside a fault window, so nothing a
// fault caused can fall into a bucket that began before it (wall-clock seconds put a fault injected at
// .5 s into a bucket that starts half a second before the fault).
import { percentile, callSucceeded, succeeded } from '../measures.ts';
import type { AnalysisWindow, Bucket } from './types.ts';
import type { Event } from './common.ts';

const BUCKET_MS = 1_000;
/** A bucket cut at a fault's edge is at least this long (so one is 0.75–1.25 s, but at the run's start and end). */
const MIN_BUCKET_MS = 250;

/**
 * The edges of the buckets that hold `times` (epoch ms) of a run started at `start`: bucket i is
 * [edges[i], edges[i + 1]). The first starts at the run's start; times before it are not bucketed.
 */
export function bucketEdges(start: number, windows: readonly AnalysisWindow[], times: readonly number[]): number[] {
  // A loop, not Math.max(...times): a long run's records are too many for a call's arguments.
  let last = -Infinity;
  for (const t of times) if (t >= start && t > last) last = t;
  if (last === -Infinity) return [];
  const faults = windows.filter((w) => w.kind === 'fault');
  const origin = faults.length ? Math.min(...faults.map((w) => w.from)) : start;
  // The first whole second after the start, counted from the origin (which may lie after the start).
  const first = origin + Math.floor((start - origin) / BUCKET_MS + 1) * BUCKET_MS;
  let end = first;
  while (end <= last) end += BUCKET_MS;
  const cuts = faults.flatMap((w) => [w.from, w.to]).filter((cut) => cut > start && cut < end);
  // A whole second that falls just short of (or just past) a cut gives way to it: no sliver of a bucket,
  // whose handful of requests or retries would be drawn as a spike.
  const seconds: number[] = [];
  for (let edge = first; edge < end; edge += BUCKET_MS) if (!cuts.some((cut) => Math.abs(cut - edge) < MIN_BUCKET_MS)) seconds.push(edge);
  return [...new Set([start, ...seconds, ...cuts, end])].sort((a, b) => a - b);
}

/** The index of the bucket holding `t`, or -1 outside them. */
function bucketOf(edges: readonly number[], t: number): number {
  if (edges.length < 2 || t < edges[0]! || t >= edges.at(-1)!) return -1;
  let lo = 0;
  let hi = edges.length - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (edges[mid]! <= t) lo = mid;
    else hi = mid;
  }
  return lo;
}

/** Per service and bucket: requests, errors, p50 and p99 of those that got an answer; empty buckets left out. */
export function timeseries(services: readonly string[], calls: (service: string) => readonly { t: number; status: number; grpcStatus?: number | null; latencyMs: number }[], edges: readonly number[]): Bucket[] {
  const out: Bucket[] = [];
  for (const service of services) {
    const buckets = new Map<number, { status: number; latencyMs: number }[]>();
    for (const c of calls(service)) {
      const i = bucketOf(edges, c.t);
      if (i < 0) continue;
      let list = buckets.get(i);
      if (!list) buckets.set(i, (list = []));
      list.push(c);
    }
    for (const [i, list] of [...buckets].sort((a, b) => a[0] - b[0])) {
      const latencies = list.filter((c) => c.status > 0).map((c) => c.latencyMs).sort((a, b) => a - b);
      out.push({ service, t: edges[i]!, to: edges[i + 1]!, requests: list.length, errors: list.filter((c) => !callSucceeded(c)).length, p50: percentile(latencies, 50), p99: percentile(latencies, 99) });
    }
  }
  return out;
}

/** Retries (retry.attempt events) per service and bucket, in time order. */
export function retryTimeline(events: readonly Event[], edges: readonly number[]): { service: string; t: number; to: number; retries: number }[] {
  const counts = new Map<string, Map<number, number>>();
  for (const e of events) {
    if (e.type !== 'retry.attempt') continue;
    const i = bucketOf(edges, e.time);
    if (i < 0) continue;
    const service = String(e.service);
    const perBucket = counts.get(service) ?? new Map<number, number>();
    counts.set(service, perBucket);
    perBucket.set(i, (perBucket.get(i) ?? 0) + 1);
  }
  return [...counts]
    .flatMap(([service, perBucket]) => [...perBucket].map(([i, retries]) => ({ service, t: edges[i]!, to: edges[i + 1]!, retries })))
    .sort((a, b) => a.t - b.t);
}
