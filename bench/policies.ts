// `npm run bench` (second part): what the resilience policies cost when nothing fails, and what the
// retry budget saves when everything does. Two sidecar processes of the same config serve a route
// without policies and a route with all of them (timeouts, retries, a circuit breaker, outlier
// detection); head to head (bench/head-to-head.ts), one is loaded on each route at the same time, the
// two swapping routes every round, and the cost is CPU per request; then a storm: a fixed rate against an upstream that always answers 503, with and without a budget,
// counting what reaches the upstream.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { stringify } from 'yaml';
import { headToHead, median, perCpuRatios } from './head-to-head.ts';
import { run } from './load.ts';
import { Processes, freePort, pinSelf } from './processes.ts';

const quick = process.argv.includes('--quick');
const ROUND_S = quick ? 2 : 4;
const ROUNDS = quick ? 4 : 10;
const stormRate = 500;
/** A count, not a duration: every offered request completes, so offered and reached compare exactly. */
const stormRequests = quick ? 1_500 : 3_000;

async function count(port: number): Promise<number> {
  const response = await request(`http://127.0.0.1:${port}/__count`);
  return Number(await response.body.text());
}

async function main(): Promise<void> {
  const processes = new Processes();
  try {
    const pinning = pinSelf();
    const ok = Number(await processes.start('upstream', ['bench/upstream.ts'], {}, 0));
    const failing = Number(await processes.start('failing', ['bench/upstream.ts', 'fail'], {}, 0));
    // Two copies of the config: the same routes and policies, each sidecar on addresses of its own.
    const sidecars = [
      await processes.startSidecar('policies', await meshFile(ok, failing), 'policies', 1),
      await processes.startSidecar('policies', await meshFile(ok, failing), 'policies-2', 1),
    ];
    const url = `http://${sidecars[0]!.addresses.outbound}/`;
    // Variant 0 is the plain route, 1 the guarded one; the processes take turns at each.
    const rounds = await headToHead((round) => ['plain', 'guarded'].map((host, v) => {
      const sidecar = sidecars[(round + v) % 2]!;
      return { pid: sidecar.pid, url: `http://${sidecar.addresses.outbound}/`, host };
    }), ROUNDS, ROUND_S);
    const ratios = perCpuRatios(rounds, 1);
    const overhead = median(ratios);

    const storms: string[] = [];
    let held = false;
    for (const host of ['storm-budget', 'storm-unbudgeted']) {
      const before = await count(failing);
      const result = await run(url, host, { connections: 16, amount: stormRequests, overallRate: stormRate });
      const offered = result.requests.total;
      const reached = (await count(failing)) - before;
      storms.push(`| ${host} | ${offered} | ${reached} | ${(reached / offered).toFixed(2)} |`);
      if (host === 'storm-budget') held = reached <= 1.2 * offered + 10 * 10;
    }

    const out = [
      `node ${process.version}; ${pinning}; head to head: two sidecars loaded at once (16 connections each), one per route, swapping every round; ${ROUNDS} rounds × ${ROUND_S} s`,
      '',
      '| route | CPU ms per 1,000 requests (rounds) | rps in the shared core (rounds) |',
      '|---|---|---|',
      ...['no policies', 'all policies'].map((name, v) => `| ${name} | ${rounds.cost[v]!.map((c) => c.toFixed(0)).join(', ')} | ${rounds.rps[v]!.map((r) => r.toFixed(0)).join(', ')} |`),
      '',
      `Per-round ratios, requests per CPU-second with all policies ÷ without: ${[...ratios].sort((a, b) => a - b).map((r) => r.toFixed(3)).join(', ')}.`,
      `Policy overhead when nothing fails: ${overhead.toFixed(3)}× the throughput per CPU without policies, median of the rounds (target ≥ 0.95: ${overhead >= 0.95 ? 'met' : 'NOT met'}).`,
      '',
      `Retry storm: ${stormRequests} requests at ${stormRate} rps to an upstream answering 503, 3 retries allowed per request.`,
      '',
      '| route | requests offered | requests at the upstream | × offered |',
      '|---|---:|---:|---:|',
      ...storms,
      '',
      `With the budget (ratio 0.2, minPerSecond 10) the bound is (1 + 0.2) × offered + 10 × 10 s: ${held ? 'held' : 'NOT held'}; without, up to 4 × offered.`,
    ];
    process.stdout.write(`${out.join('\n')}\n`);
  } finally {
    await processes.stopAll();
  }
}

async function meshFile(ok: number, failing: number): Promise<string> {
  const address = async () => `127.0.0.1:${await freePort()}`;
  const storm = (name: string, budget: object) => ({
    name,
    match: { host: name },
    destinations: [{ service: 'failing' }],
    retries: { attempts: 3, retryOn: ['5xx'], backoff: { base: '1ms', max: '5ms' }, budget },
  });
  const config = {
    mesh: { name: 'bench-policies' },
    services: [
      { name: 'client', endpoints: [{ address: await address() }] },
      { name: 'plain', endpoints: [{ address: `127.0.0.2:${ok}` }] },
      {
        name: 'guarded',
        endpoints: [{ address: `127.0.0.2:${ok}` }],
        circuitBreaker: { consecutiveFailures: 50, failureRatio: { threshold: 0.5 } },
        outlierDetection: { consecutive5xx: 5 },
      },
      { name: 'failing', endpoints: [{ address: `127.0.0.1:${failing}` }] },
    ],
    routes: [
      {
        name: 'guarded',
        match: { host: 'guarded' },
        destinations: [{ service: 'guarded' }],
        timeout: '5s',
        idleTimeout: '30s',
        retries: { attempts: 2, perTryTimeout: '2s', retryOn: ['5xx', 'reset', 'connect-failure'] },
      },
      storm('storm-budget', { ratio: 0.2, minPerSecond: 10 }),
      storm('storm-unbudgeted', { ratio: 10, minPerSecond: 100_000 }),
    ],
    sidecars: [{ name: 'policies', service: 'client', outbound: await address(), inbound: await address(), admin: await address(), app: (await address()) }],
  };
  config.sidecars[0]!.app = config.services[0]!.endpoints[0]!.address;
  const dir = await mkdtemp(join(tmpdir(), 'faultline-bench-'));
  const file = join(dir, 'mesh.yaml');
  await writeFile(file, stringify(config));
  return file;
}

await main();
