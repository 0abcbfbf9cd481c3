// `npm run bench` (fourth part): what installed faults cost requests they do not match, and how exact
// an injected delay is. Two sidecar processes in front of the same upstream — one with 20 faults that
// match nothing the load sends (other destinations, headers, paths), one with none — run head to head
// (bench/head-to-head.ts: loaded at once on one shared CPU, cost = CPU per request), in sessions of
// fresh processes (a process keeps the speed it drew at start); then, on the sidecar with faults, a route delayed by a fixed 50 ms against an undelayed one
// at 1,000 rps: the delayed latency distribution should be the plain one shifted by exactly 50 ms.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool } from 'undici';
import { stringify } from 'yaml';
import { percentiles } from './load.ts';
import { median, medianInterval, sessionRatios, sessions, verdict } from './head-to-head.ts';
import { Processes, freePort, pinSelf, type SidecarProcess } from './processes.ts';

const quick = process.argv.includes('--quick');
const SESSIONS = quick ? 2 : 10;
const ROUNDS = quick ? 2 : 5;
const ROUND_S = quick ? 2 : 3;
const WARMUP_S = quick ? 2 : 4;
const rateS = quick ? 3 : 8;
const DELAY_MS = 50;

/** Twenty faults of every kind, none matching a plain GET / to `upstream` or `delayed`. */
function idleFaults(): object[] {
  return Array.from({ length: 20 }, (_, i) => {
    const match = [
      { destination: 'elsewhere' },
      { destination: 'upstream', headers: { 'x-user': { exact: `user-${i}` } } },
      { destination: 'upstream', pathPrefix: `/never/${i}` },
      { route: 'elsewhere', method: 'POST' },
    ][i % 4];
    const action = [{ abort: { status: 503 } }, { delay: { fixed: '1s' } }, { hang: {} }, { abort: { reset: true } }][i % 4];
    return { id: `idle-${i}`, at: i % 2 === 0 ? 'request' : 'attempt', match, ...action };
  });
}

async function meshFile(upstream: number, faults: object[]): Promise<string> {
  const address = async () => `127.0.0.1:${await freePort()}`;
  const app = await address();
  const config = {
    mesh: { name: 'bench-faults' },
    services: [
      { name: 'client', endpoints: [{ address: app }] },
      { name: 'upstream', endpoints: [{ address: `127.0.0.2:${upstream}` }] },
      { name: 'elsewhere', endpoints: [{ address: `127.0.0.2:${upstream}` }] },
    ],
    routes: [
      { name: 'plain', match: { host: 'upstream' }, destinations: [{ service: 'upstream' }] },
      { name: 'delayed', match: { host: 'delayed' }, destinations: [{ service: 'upstream' }] },
    ],
    sidecars: [{ name: 'client', service: 'client', outbound: await address(), inbound: await address(), admin: await address(), app }],
    faultInjection: { maxActive: 50 },
    faults,
  };
  const dir = await mkdtemp(join(tmpdir(), 'faultline-bench-'));
  await writeFile(join(dir, 'mesh.yaml'), stringify(config));
  return join(dir, 'mesh.yaml');
}

async function main(): Promise<void> {
  const processes = new Processes();
  try {
    const pinning = pinSelf();
    const upstream = Number(await processes.start('upstream', ['bench/upstream.ts'], {}, 0));
    // Half the delayed route's requests are delayed (seeded), so delayed and undelayed ones share one load.
    const delayFault = { id: 'delay-50', match: { route: 'delayed' }, percent: 50, seed: 1, delay: { fixed: `${DELAY_MS}ms` } };
    const configs = { with: await meshFile(upstream, [...idleFaults(), delayFault]), without: await meshFile(upstream, []) };
    const all = await sessions(SESSIONS, async (session) => {
      const these = new Processes();
      // Started in turns: which of the two starts first changes from session to session.
      const order = session % 2 === 0 ? (['without', 'with'] as const) : (['with', 'without'] as const);
      const started = { with: undefined as SidecarProcess | undefined, without: undefined as SidecarProcess | undefined };
      for (const which of order) started[which] = await these.startSidecar('client', configs[which], `${which}-faults`, 1);
      const contenders = [started.without!, started.with!].map((sidecar) => ({ pid: sidecar.pid, url: `http://${sidecar.addresses.outbound}/`, host: 'upstream' }));
      return { contenders, stop: () => these.stopAll() };
    }, { rounds: ROUNDS, seconds: ROUND_S, warmupS: WARMUP_S });
    const ratios = sessionRatios(all, 1);
    const ratio = median(ratios);
    const [low, high] = medianInterval(ratios);
    const withFaults = await processes.startSidecar('client', configs.with, 'with-faults', 1);

    // Delay accuracy: one stream of requests at a steady 1,000 rps, half of them delayed (told apart by
    // the DI flag): the delayed latency distribution against the undelayed one, quantile by quantile.
    const times = await steady(withFaults.addresses.outbound, 'delayed', 1_000, rateS * 1_000);
    const plain = percentiles(times.plain);
    const delayed = percentiles(times.delayed);
    const shift = (q: 'p50' | 'p90' | 'p99') => delayed[q] - plain[q] - DELAY_MS;
    const worst = Math.max(...(['p50', 'p90', 'p99'] as const).map((q) => Math.abs(shift(q))));

    process.stdout.write([
      `node ${process.version}; ${pinning}; ${SESSIONS} sessions of fresh processes, each: both sidecars warmed alone ${WARMUP_S} s, then loaded at once (16 connections each), ${ROUNDS} rounds × ${ROUND_S} s; delay: ${rateS * 1000} requests at 1000 rps, half delayed`,
      '',
      '| sidecar | CPU ms per 1,000 requests (session medians) |',
      '|---|---|',
      ...['no faults', '20 faults, none matching'].map((name, v) => `| ${name} | ${all.map((rounds) => median(rounds.cost[v]!).toFixed(0)).join(', ')} |`),
      '',
      `Per-session ratios, requests per CPU-second with the faults ÷ without: ${[...ratios].sort((a, b) => a - b).map((r) => r.toFixed(3)).join(', ')}.`,
      `20 idle faults: ${ratio.toFixed(3)}× the throughput per CPU without, median of the sessions (cost ${((1 - ratio) * 100).toFixed(1)} %, 95 % interval ${((1 - high) * 100).toFixed(1)}–${((1 - low) * 100).toFixed(1)} % by bootstrap over the sessions; target ≤ 3 %: ${verdict([low, high], 0.97)}).`,
      '',
      `| requests at 1000 rps, one stream | requests | p50 ms | p90 ms | p99 ms |`,
      '|---|---|---|---|---|',
      `| not delayed | ${times.plain.length} | ${plain.p50.toFixed(2)} | ${plain.p90.toFixed(2)} | ${plain.p99.toFixed(2)} |`,
      `| delayed ${DELAY_MS} ms | ${times.delayed.length} | ${delayed.p50.toFixed(2)} | ${delayed.p90.toFixed(2)} | ${delayed.p99.toFixed(2)} |`,
      `| delayed − not delayed − ${DELAY_MS} | | ${shift('p50').toFixed(2)} | ${shift('p90').toFixed(2)} | ${shift('p99').toFixed(2)} |`,
      '',
      `Delay accuracy: worst quantile shift error ${worst.toFixed(2)} ms (target p99 ≤ 2 ms: ${Math.abs(shift('p99')) <= 2 ? 'met' : 'NOT met'}).`,
      '',
    ].join('\n'));
  } finally {
    await processes.stopAll();
  }
}

/**
 * `count` requests, one every 1000/rps ms on a schedule (not waiting for answers), through a pool of
 * connections; each one's latency, split by whether a delay was injected (the DI response flag).
 */
async function steady(address: string, host: string, rps: number, count: number): Promise<{ plain: number[]; delayed: number[] }> {
  const pool = new Pool(`http://${address}`, { connections: 200, pipelining: 1 });
  const result = { plain: [] as number[], delayed: [] as number[] };
  const start = performance.now();
  const pending: Promise<void>[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const due = start + (i * 1000) / rps;
      const wait = due - performance.now();
      if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
      const sent = performance.now();
      pending.push(
        pool.request({ path: '/', method: 'GET', headers: { host } }).then(async (response) => {
          await response.body.dump();
          const ms = performance.now() - sent;
          (String(response.headers['x-faultline-flags'] ?? '').includes('DI') ? result.delayed : result.plain).push(ms);
        }),
      );
    }
    await Promise.all(pending);
  } finally {
    await pool.close();
  }
  return result;
}

await main();
