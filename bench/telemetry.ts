// `npm run bench` (third part): what per-request telemetry costs. Two sidecar processes in front of
// the same upstream, one with telemetry on (request.done events, Istio metrics, tracing at 1 %
// sampling exported over OTLP/HTTP to a receiver in this process) and one with it off, measured in
// turns: max throughput, then latency at a fixed rate.
import autocannon from 'autocannon';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { percentiles } from './load.ts';
import { Processes, cpuMs, freePort, pinSelf } from './processes.ts';

const quick = process.argv.includes('--quick');
const maxS = quick ? 2 : 3;
const rateS = quick ? 3 : 8;
/** Max-throughput rounds, off then on back to back: the machine's speed drifts over minutes, so each round's ratio is taken alone and the median reported. */
const ROUNDS = quick ? 2 : 8;

function run(url: string, options: Partial<autocannon.Options>, times?: number[]): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    const instance = autocannon({ url, headers: { host: 'upstream' }, ...options }, (error, result) => (error ? reject(error) : resolve(result)));
    if (times) instance.on('response', (_c, _s, _b, ms: number) => times.push(ms));
  });
}

async function meshFile(upstream: number, telemetry: object): Promise<string> {
  const address = async () => `127.0.0.1:${await freePort()}`;
  const app = await address();
  const config = {
    mesh: { name: 'bench-telemetry' },
    telemetry,
    services: [{ name: 'client', endpoints: [{ address: app }] }, { name: 'upstream', endpoints: [{ address: `127.0.0.2:${upstream}` }] }],
    sidecars: [{ name: 'client', service: 'client', outbound: await address(), inbound: await address(), admin: await address(), app }],
  };
  const dir = await mkdtemp(join(tmpdir(), 'faultline-bench-'));
  await writeFile(join(dir, 'mesh.yaml'), stringify(config));
  return join(dir, 'mesh.yaml');
}

async function main(): Promise<void> {
  const processes = new Processes();
  let spans = 0;
  const receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c));
    req.on('end', () => {
      spans += (body.match(/"spanId"/g) ?? []).length;
      res.end('{}');
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const otlp = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/v1/traces`;
  try {
    const pinning = pinSelf();
    const upstream = Number(await processes.start('upstream', ['bench/upstream.ts'], {}, 0));
    // `--no-tracing`: the same, without the tracer (how much of the cost is tracing's).
    const onTelemetry = process.argv.includes('--no-tracing') ? { enabled: true } : { enabled: true, tracing: { otlpEndpoint: otlp, sampleRatio: 0.01 } };
    const on = await processes.startSidecar('client', await meshFile(upstream, onTelemetry), 'on', 1);
    const off = await processes.startSidecar('client', await meshFile(upstream, { enabled: false }), 'off', 1);
    const targets = { on: `http://${on.addresses.outbound}/`, off: `http://${off.addresses.outbound}/` };
    const rps: Record<'on' | 'off', number[]> = { on: [], off: [] };
    const p99: Record<'on' | 'off', number[]> = { on: [], off: [] };
    /** The sidecar's own CPU per 1,000 requests at the fixed rate: its cost, whatever the load generator gets. */
    const cpu: Record<'on' | 'off', number[]> = { on: [], off: [] };
    const pids = { on: on.pid, off: off.pid };
    for (const name of ['off', 'on'] as const) await run(targets[name], { connections: 32, duration: maxS });
    for (let round = 0; round < ROUNDS; round++) {
      for (const name of round % 2 === 0 ? (['off', 'on'] as const) : (['on', 'off'] as const)) rps[name].push((await run(targets[name], { connections: 32, duration: maxS })).requests.average);
    }
    for (let round = 0; round < 2; round++) {
      for (const name of ['off', 'on'] as const) {
        const times: number[] = [];
        const before = cpuMs(pids[name]);
        const fixed = await run(targets[name], { connections: 16, duration: rateS, overallRate: 1_000 }, times);
        cpu[name].push(((cpuMs(pids[name]) - before) / fixed.requests.total) * 1000);
        p99[name].push(percentiles(times).p99);
      }
    }
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const ratios = rps.on.map((on, i) => on / rps.off[i]!).sort((a, b) => a - b);
    const ratio = ratios.length % 2 ? ratios[(ratios.length - 1) / 2]! : (ratios[ratios.length / 2 - 1]! + ratios[ratios.length / 2]!) / 2;
    process.stdout.write([
      `node ${process.version}; max: 32 connections × ${maxS} s, ${ROUNDS} rounds, off and on back to back (order alternating); latency and CPU: 1000 rps × ${rateS} s, two rounds each; ${pinning}`,
      '',
      '| telemetry | max rps (rounds) | p99 ms at 1000 rps (rounds) | sidecar CPU ms per 1,000 requests at 1000 rps (rounds) |',
      '|---|---|---|---|',
      `| off | ${rps.off.map((r) => r.toFixed(0)).join(', ')} | ${p99.off.map((p) => p.toFixed(2)).join(', ')} | ${cpu.off.map((c) => c.toFixed(0)).join(', ')} |`,
      `| on (events, metrics, traces at 1 %) | ${rps.on.map((r) => r.toFixed(0)).join(', ')} | ${p99.on.map((p) => p.toFixed(2)).join(', ')} | ${cpu.on.map((c) => c.toFixed(0)).join(', ')} |`,
      '',
      `Per-round ratios on ÷ off: ${ratios.map((r) => r.toFixed(3)).join(', ')}.`,
      `Telemetry on: ${ratio.toFixed(3)}× the max throughput with it off, median of the rounds (cost ${((1 - ratio) * 100).toFixed(1)} %, target ≤ 10 %: ${ratio >= 0.9 ? 'met' : 'NOT met'}); ` +
        `${(mean(cpu.on) / mean(cpu.off)).toFixed(2)}× the sidecar CPU per request; ${spans} spans received.`,
      '',
    ].join('\n'));
  } finally {
    await processes.stopAll();
    receiver.close();
  }
}

await main();
