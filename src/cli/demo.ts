// `faultline demo`: the bundled shop (demo/) behind a sidecar per instance, driven with a bounded
// burst of requests through the mesh, summarised in plain text. Game days build on the same shop.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Pool, request } from 'undici';
import { loadConfigFile } from '../config/load.ts';
import { compileSnapshot, type Snapshot } from '../config/snapshot.ts';
import { Sidecar } from '../proxy/sidecar.ts';
import type { Logger } from '../telemetry/log.ts';

export const DEMO_MESH = fileURLToPath(new URL('../../demo/mesh.yaml', import.meta.url));
const SHOP = fileURLToPath(new URL('../../demo/shop.ts', import.meta.url));
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
  endpoints: { service: string; address: string; available: boolean; health: string }[];
  elapsedMs: number;
  faultPhase?: FaultPhase;
}

/**
 * The same burst again with DEMO_FAULT put on cart's sidecar through its admin API (as a game day
 * will), then removed: how many tries it aborted, how many retries that took, what the edge saw.
 */
async function faultPhase(cart: Sidecar, entry: string, options: DemoOptions): Promise<FaultPhase> {
  const admin = `http://${cart.addresses.admin}/faults/${DEMO_FAULT.id}`;
  const put = await request(admin, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(DEMO_FAULT) });
  const body = await put.body.text();
  if (put.statusCode !== 200) throw new Error(`cart's sidecar refused the demo fault (${put.statusCode}): ${body}`);
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
    let injected = 0;
    let masked = 0;
    for (const [id, n] of aborted) {
      injected += n;
      const status = outcome.get(id);
      if (status !== undefined && status > 0 && status < 500) masked += n;
    }
    return { injected, masked, failed: result.requests - (result.statuses['200'] ?? 0), retries, flags, result };
  } finally {
    for (const off of offs) off();
    await (await request(admin, { method: 'DELETE' })).body.dump();
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
    '  fault removed (DELETE /faults/:id); it was leased for 1 min in any case',
    '',
  ].join('\n');
}

export async function runDemo(options: DemoOptions): Promise<DemoResult> {
  const file = options.mesh ?? DEMO_MESH;
  const snapshot = compileSnapshot((await loadConfigFile(file)).config, file);
  const apps: ChildProcess[] = [];
  const sidecars: Sidecar[] = [];
  try {
    for (const spec of snapshot.sidecars) apps.push(startApp(snapshot, spec.name));
    for (const spec of snapshot.sidecars) sidecars.push(await Sidecar.start({ name: spec.name, snapshot, configFile: file, log: options.log }));
    await until(async () => apps.every((a) => a.exitCode === null) && (await Promise.all(snapshot.sidecars.map((s) => answers(s.app)))).every(Boolean), 15_000, 'the shop\'s services to answer');
    await until(() => sidecars.every((s) => [...s.clusters.values()].every((c) => c.endpoints.every((e) => e.available))), 15_000, 'every endpoint to be healthy');
    const entry = sidecars.find((s) => s.spec.service === ENTRY)!;
    const cart = sidecars.find((s) => s.spec.service === 'cart')!;
    const result = await drive(entry.addresses.inbound, options);
    result.endpoints = [...entry.clusters.values(), ...cart.clusters.values()]
      .filter((c, i, all) => all.findIndex((d) => d.name === c.name) === i && c.name !== ENTRY)
      .flatMap((c) => c.endpoints.map((e) => ({ service: c.name, address: e.address, available: e.available, health: e.health.status })));
    const out = options.out ?? ((t) => process.stdout.write(t));
    out(summarise(result));
    result.faultPhase = await faultPhase(cart, entry.addresses.inbound, options);
    out(summariseFault(result.faultPhase));
    return result;
  } finally {
    await Promise.all(sidecars.map((s) => s.close()));
    await Promise.all(apps.map(stop));
  }
}

function startApp(snapshot: Snapshot, sidecarName: string): ChildProcess {
  const spec = snapshot.sidecars.find((s) => s.name === sidecarName)!;
  const endpoint = snapshot.services.get(spec.service)!.endpoints.find((e) => e.address === spec.app);
  const port = spec.app.slice(spec.app.lastIndexOf(':') + 1);
  return spawn(process.execPath, [SHOP, spec.service, port, endpoint?.labels.version ?? 'v1'], {
    // stdin is a pipe the service watches: when this process dies, however, the pipe closes and the service exits.
    stdio: ['pipe', 'ignore', 'inherit'],
    env: { ...process.env, FAULTLINE_OUTBOUND: spec.outbound },
  });
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
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
  result.latencyMs = { p50: at(0.5), p90: at(0.9), p99: at(0.99), max: latencies.at(-1) ?? 0 };
  return result;
}

function summarise(r: DemoResult): string {
  const ok = r.statuses['200'] ?? 0;
  const pct = (n: number, of: number) => `${((100 * n) / Math.max(1, of)).toFixed(1)}%`;
  const versions = Object.values(r.paymentsVersions).reduce((a, b) => a + b, 0);
  const lines = [
    'faultline demo: the shop behind its sidecars',
    '  frontend → catalog, cart; cart → payments (v1, v2 canary at 10%), stock',
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

async function until(probe: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function answers(address: string): Promise<boolean> {
  try {
    const response = await request(`http://${address}/healthz`, { signal: AbortSignal.timeout(500) });
    await response.body.dump();
    return response.statusCode === 200;
  } catch {
    return false;
  }
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}
