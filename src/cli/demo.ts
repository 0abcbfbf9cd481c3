// `faultline demo`: the bundled shop (demo/) brought up with `faultline up` (control plane, a sidecar
// per instance, the services), driven with a bounded burst of requests through the mesh, then again
// with a fault put through the control plane, summarised in plain text. Game days build on the same.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool, request } from 'undici';
import type { Sidecar } from '../proxy/sidecar.ts';
import type { Logger } from '../telemetry/log.ts';
import { DEMO_MESH } from './paths.ts';
import { up, type Mesh } from '../control/up.ts';
import { percentile, succeeded } from '../measures.ts';

const ENTRY = 'frontend';

export interface DemoOptions {
  mesh?: string;
  requests: number;
  concurrency: number;
  /** Stop sending after this long, whatever the count. */
  timeLimitMs?: number;
  log: Logger;
  out?: (text: string) => void;
}

/**
 * The demo's fault: a tenth of cart's tries to payments answered 503 by cart's sidecar, which its
 * retries should mask. (At a fifth, the retries needed pass the route's retry budget — 20 % of
 * requests — and some aborts reach the caller as UBX: a game day's finding, not a demo's.)
 */
export const DEMO_FAULT = {
  id: 'demo-payments-errors',
  description: 'cart → payments: 10 % of tries aborted with 503 at the attempt, inside the retry loop',
  match: { source: 'cart', destination: 'payments' },
  at: 'attempt',
  percent: 10,
  seed: 1,
  abort: { status: 503 },
  ttl: '1m',
};

export interface FaultPhase {
  /** Tries the fault aborted, at cart's sidecar. */
  injected: number;
  /** Requests at the edge that failed. */
  failed: number;
  /** Aborted tries whose request (cart → payments) still succeeded: saved by a retry. */
  masked: number;
  retries: number;
  /** Response flags of cart's failed calls to payments (why a retry did not save them). */
  flags: Record<string, number>;
  result: DemoResult;
}

export interface DemoResult {
  requests: number;
  statuses: Record<string, number>;
  flags: Record<string, number>;
  latencyMs: { p50: number; p90: number; p99: number; max: number };
  paymentsVersions: Record<string, number>;
  /** `health`: the active check's verdict, or `not checked` for a service without one (payments: gRPC). */
  endpoints: { service: string; address: string; available: boolean; health: string }[];
  elapsedMs: number;
  faultPhase?: FaultPhase;
}

/**
 * The same burst again with DEMO_FAULT put through the control plane's API (as a game day will), which
 * sends it to every sidecar — cart's is the one whose calls it matches — then removed: how many tries
 * it aborted, how many of those retries saved, what the edge saw.
 */
async function faultPhase(mesh: Mesh, cart: Sidecar, entry: string, options: DemoOptions): Promise<FaultPhase> {
  const url = `${mesh.control.url}/faults/${DEMO_FAULT.id}`;
  const auth = { authorization: `Bearer ${mesh.token}` };
  const put = await request(url, { method: 'PUT', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify(DEMO_FAULT) });
  const body = (await put.body.json()) as { version?: string; error?: string };
  if (put.statusCode !== 200 || !body.version) throw new Error(`the control plane refused the demo fault (${put.statusCode}): ${JSON.stringify(body)}`);
  if (!(await mesh.control.plane.waitForAcks(body.version, 5_000))) throw new Error('not every sidecar acknowledged the demo fault within 5 s');
  let retries = 0;
  const aborted = new Map<string, number>();
  const outcome = new Map<string, number>();
  const offs = [
    cart.events.on('retry.attempt', () => retries++),
    cart.events.on('fault.applied', (e) => e.requestId && aborted.set(e.requestId, (aborted.get(e.requestId) ?? 0) + 1)),
    cart.events.on('request.done', (e) => {
      if (e.faults.length === 0) return;
      outcome.set(e.requestId, e.status);
      if (e.status >= 500) for (const flag of e.flags) flags[flag] = (flags[flag] ?? 0) + 1;
    }),
  ];
  const flags: Record<string, number> = {};
  try {
    const result = await drive(entry, options);
    // Cart's request.done follows the close of its response, which may come after the edge's answer
    // was read: wait (briefly) for the outcome of every request the fault touched before counting.
    const deadline = Date.now() + 2_000;
    while ([...aborted.keys()].some((id) => !outcome.has(id)) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    let injected = 0;
    let masked = 0;
    for (const [id, n] of aborted) {
      injected += n;
      const status = outcome.get(id);
      if (status !== undefined && succeeded(status)) masked += n;
    }
    return { injected, masked, failed: result.requests - (result.statuses['200'] ?? 0), retries, flags, result };
  } finally {
    for (const off of offs) off();
    await (await request(url, { method: 'DELETE', headers: auth })).body.dump();
  }
}

function summariseFault(phase: FaultPhase): string {
  const r = phase.result;
  const ok = r.statuses['200'] ?? 0;
  return [
    `with a fault  ${DEMO_FAULT.id}: ${DEMO_FAULT.description}`,
    `  injected    ${phase.injected} aborted tries; cart's sidecar retried ${phase.retries} times`,
    `  masked      ${phase.masked} of them (${((100 * phase.masked) / Math.max(1, phase.injected)).toFixed(1)}%): their request still succeeded on a retry`,
    `  edge        ${ok} of ${r.requests} requests ok (${((100 * ok) / Math.max(1, r.requests)).toFixed(1)}%); ${phase.failed} failed` +
      (Object.keys(phase.flags).length > 0 ? `; cart's failed calls to payments: ${Object.entries(phase.flags).map(([f, n]) => `${f} ${n}`).join(', ')}` : ''),
    `  latency     p50 ${r.latencyMs.p50.toFixed(1)} ms, p99 ${r.latencyMs.p99.toFixed(1)} ms`,
    '  (URX: attempts used up; UO: the breaker\'s maxRetries, 3 at once as Envoy\'s default; UBX: the retry budget)',
    '  fault put and removed through the control plane (PUT, DELETE /faults/:id); leased for 1 min in any case',
    '',
  ].join('\n');
}

export async function runDemo(options: DemoOptions): Promise<DemoResult> {
  const file = options.mesh ?? DEMO_MESH;
  // A fresh state directory: the demo must not inherit faults or snapshots from an earlier run.
  const stateDir = await mkdtemp(join(tmpdir(), 'faultline-demo-'));
  try {
    const mesh = await up({ file, listen: '127.0.0.1:0', stateDir, log: options.log });
    try {
      const sidecars = [...mesh.sidecars.values()].map((s) => s.sidecar);
      const entry = sidecars.find((s) => s.spec.service === ENTRY)!;
      const cart = sidecars.find((s) => s.spec.service === 'cart')!;
      const inbound = entry.addresses.inbound!; // the demo's frontend serves: its sidecar has an inbound listener
      const result = await drive(inbound, options);
      result.endpoints = [...entry.clusters.values(), ...cart.clusters.values()]
        .filter((c, i, all) => all.findIndex((d) => d.name === c.name) === i && c.name !== ENTRY)
        .flatMap((c) => c.endpoints.map((e) => ({ service: c.name, address: e.address, available: e.available, health: c.spec.healthCheck ? e.health.status : 'not checked' })));
      const out = options.out ?? ((t) => process.stdout.write(t));
      out(summarise(result, mesh.control.url));
      result.faultPhase = await faultPhase(mesh, cart, inbound, options);
      out(summariseFault(result.faultPhase));
      return result;
    } finally {
      await mesh.close();
    }
  } finally {
    await rm(stateDir, { recursive: true, force: true });
  }
}

/** Sends the requests to the entry service through its sidecar's inbound listener, as another sidecar would. */
async function drive(inbound: string, options: DemoOptions): Promise<DemoResult> {
  const pool = new Pool(`http://${inbound}`, { connections: options.concurrency });
  const deadline = Date.now() + (options.timeLimitMs ?? 60_000);
  const result: DemoResult = { requests: 0, statuses: {}, flags: {}, latencyMs: { p50: 0, p90: 0, p99: 0, max: 0 }, paymentsVersions: {}, endpoints: [], elapsedMs: 0 };
  const latencies: number[] = [];
  const started = performance.now();
  const count = (into: Record<string, number>, key: string) => (into[key] = (into[key] ?? 0) + 1);
  const worker = async () => {
    while (result.requests < options.requests && Date.now() < deadline) {
      result.requests++;
      const t = performance.now();
      try {
        const response = await pool.request({ path: '/', method: 'GET', headers: { host: ENTRY }, signal: AbortSignal.timeout(5_000) });
        const body = (await response.body.json()) as { cart?: { quote?: { version?: string } } };
        count(result.statuses, String(response.statusCode));
        const flags = response.headers['x-faultline-flags'];
        if (typeof flags === 'string') for (const flag of flags.split(',')) count(result.flags, flag);
        const version = body.cart?.quote?.version;
        if (version) count(result.paymentsVersions, version);
      } catch (error) {
        count(result.statuses, `error ${(error as Error).name}`);
      }
      latencies.push(performance.now() - t);
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, worker));
  await pool.close();
  result.elapsedMs = performance.now() - started;
  latencies.sort((a, b) => a - b);
  const at = (p: number) => (latencies.length ? percentile(latencies, p) : 0);
  result.latencyMs = { p50: at(50), p90: at(90), p99: at(99), max: latencies.at(-1) ?? 0 };
  return result;
}

function summarise(r: DemoResult, control: string): string {
  const ok = r.statuses['200'] ?? 0;
  const pct = (n: number, of: number) => `${((100 * n) / Math.max(1, of)).toFixed(1)}%`;
  const versions = Object.values(r.paymentsVersions).reduce((a, b) => a + b, 0);
  const lines = [
    'faultline demo: the shop behind its sidecars',
    '  frontend → catalog, cart; cart → payments (gRPC; v1, v2 canary at 10%), stock',
    `  brought up by faultline up: control plane ${control}, 9 sidecars taking their config from it`,
    '',
    `requests      ${r.requests} in ${(r.elapsedMs / 1000).toFixed(1)} s (${((r.requests * 1000) / r.elapsedMs).toFixed(0)}/s)`,
    `availability  ${pct(ok, r.requests)} (${Object.entries(r.statuses).map(([s, n]) => `${s}: ${n}`).join(', ')})`,
    `latency       p50 ${r.latencyMs.p50.toFixed(1)} ms, p90 ${r.latencyMs.p90.toFixed(1)} ms, p99 ${r.latencyMs.p99.toFixed(1)} ms, max ${r.latencyMs.max.toFixed(1)} ms`,
    `mesh flags    ${Object.keys(r.flags).length === 0 ? 'none' : Object.entries(r.flags).map(([f, n]) => `${f}: ${n}`).join(', ')}`,
    `canary split  ${Object.entries(r.paymentsVersions).sort().map(([v, n]) => `${v} ${pct(n, versions)}`).join(', ')} of payments calls (route weights 90/10)`,
    'endpoints',
    ...r.endpoints.map((e) => `  ${e.service.padEnd(9)} ${e.address.padEnd(16)} ${e.available ? 'available' : 'OUT'} (health ${e.health})`),
    '',
  ];
  return lines.join('\n');
}
