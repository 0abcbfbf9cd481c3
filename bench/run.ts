// `npm run bench`: the data plane against a direct connection, in one run on this machine. Starts a
// fixed upstream, two bare forwarding cores (undici, http-proxy-middleware), one sidecar and a sidecar
// pair as real `faultline sidecar` processes; measures max throughput and latency at a fixed rate
// with autocannon, and the sidecars' RSS; prints absolute figures and ratios to direct.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { measure, type Measurement, type Target } from './load.ts';
import { Processes, freePort, rss } from './processes.ts';
import { printReport } from './report.ts';

const quick = process.argv.includes('--quick');
const settings = quick
  ? { warmupS: 1, maxS: 2, rateS: 3, rate: 1_000, maxConnections: 32, rateConnections: 16 }
  : { warmupS: 10, maxS: 6, rateS: 10, rate: 1_000, maxConnections: 32, rateConnections: 16 };

async function main(): Promise<void> {
  const processes = new Processes();
  process.once('SIGINT', () => void processes.stopAll().then(() => process.exit(130)));
  try {
    const upstreamPort = Number(await processes.start('upstream', ['bench/upstream.ts']));
    const undiciPort = Number(await processes.start('undici', ['bench/forwarders.ts', 'undici', String(upstreamPort)]));
    // Two bare undici forwarders in a row: the floor for any pair of Node proxies on this machine.
    const undiciFrontPort = Number(await processes.start('undici-front', ['bench/forwarders.ts', 'undici', String(undiciPort)]));
    const nodeHttpPort = Number(await processes.start('node-http', ['bench/forwarders.ts', 'node-http', String(upstreamPort)]));
    const hpmPort = Number(await processes.start('hpm', ['bench/forwarders.ts', 'hpm', String(upstreamPort)]));
    const mesh = await meshFile(upstreamPort);
    const single = await processes.startSidecar('single', mesh.file);
    const pairA = await processes.startSidecar('pair-a', mesh.file);
    const pairB = await processes.startSidecar('pair-b', mesh.file);

    const targets: Target[] = [
      { name: 'direct', url: `http://127.0.0.1:${upstreamPort}/`, sidecars: [] },
      { name: 'bare undici forwarder', url: `http://127.0.0.1:${undiciPort}/`, sidecars: [] },
      { name: 'bare node:http forwarder', url: `http://127.0.0.1:${nodeHttpPort}/`, sidecars: [] },
      { name: 'bare http-proxy-middleware', url: `http://127.0.0.1:${hpmPort}/`, sidecars: [] },
      { name: 'bare undici forwarder pair', url: `http://127.0.0.1:${undiciFrontPort}/`, sidecars: [] },
      { name: 'one sidecar', url: `http://${single.addresses.outbound}/`, host: 'upstream', sidecars: [single.pid] },
      { name: 'sidecar pair', url: `http://${pairA.addresses.outbound}/`, host: 'app', sidecars: [pairA.pid, pairB.pid] },
    ];
    const results: Measurement[] = [];
    for (const target of targets) {
      process.stderr.write(`measuring ${target.name}...\n`);
      let atRate: number[] = [];
      const measurement = await measure(target, settings, () => (atRate = target.sidecars.map((pid) => rss(pid).now)));
      results.push({ ...measurement, rss: target.sidecars.map((pid, i) => ({ atRate: atRate[i]!, peak: rss(pid).peak })) });
    }
    await printReport(results, settings, {
      idleRss: [single.idleRss, pairA.idleRss, pairB.idleRss],
      forwarderRss: { undici: rss(processes.pid('undici')), 'node:http': rss(processes.pid('node-http')), 'http-proxy-middleware': rss(processes.pid('hpm')) },
    });
  } finally {
    await processes.stopAll();
  }
}

/** The bench mesh: `single` forwards straight to the upstream; `pair-a` reaches the upstream through `pair-b`, which fronts it. */
async function meshFile(upstreamPort: number): Promise<{ file: string }> {
  const upstream = `127.0.0.1:${upstreamPort}`;
  const listeners = async () => ({
    outbound: `127.0.0.1:${await freePort()}`,
    inbound: `127.0.0.1:${await freePort()}`,
    admin: `127.0.0.1:${await freePort()}`,
  });
  const config = {
    mesh: { name: 'bench' },
    services: [
      { name: 'client', endpoints: [{ address: `127.0.0.1:${await freePort()}` }, { address: `127.0.0.1:${await freePort()}` }] },
      // The same upstream process on a second loopback address: a sidecar fronting an address makes
      // every service with that endpoint dial its inbound, and `single` must go straight to the upstream.
      { name: 'upstream', endpoints: [{ address: `127.0.0.2:${upstreamPort}` }] },
      { name: 'app', endpoints: [{ address: `127.0.0.1:${upstreamPort}` }] },
    ],
    sidecars: [] as Record<string, string>[],
  };
  const [c1, c2] = config.services[0]!.endpoints.map((e) => e.address);
  config.sidecars.push({ name: 'single', service: 'client', ...(await listeners()), app: c1! });
  config.sidecars.push({ name: 'pair-a', service: 'client', ...(await listeners()), app: c2! });
  config.sidecars.push({ name: 'pair-b', service: 'app', ...(await listeners()), app: upstream });
  const dir = await mkdtemp(join(tmpdir(), 'faultline-bench-'));
  const file = join(dir, 'mesh.yaml');
  await writeFile(file, stringify(config));
  return { file };
}

await main();
