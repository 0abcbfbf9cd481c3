// `npm run bench` (third part): what per-request telemetry costs. Four sidecar processes in front of
// the same upstream — telemetry off, events + metrics, everything (events, metrics, tracing at 1 %
// sampling exported over OTLP/HTTP to a receiver in this process), and everything with its whole
// /events stream read (as the control plane reads every sidecar's while a game day records; the rest
// of the time it reads decisions only) — run head to head
// (bench/head-to-head.ts): loaded at the same time, all pinned to one CPU, the load generator and
// upstream on the other. Telemetry's throughput cost is the off sidecar's CPU per request divided by
// the other's: the requests a CPU-second serves. Then latency: p99 at a fixed 1,000 rps, one sidecar
// at a time.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { createServer, get } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { percentiles, run } from './load.ts';
import { headToHead, median, perCpuRatios } from './head-to-head.ts';
import { Processes, freePort, pinSelf, type SidecarProcess } from './processes.ts';

const quick = process.argv.includes('--quick');
const ROUND_S = quick ? 2 : 3;
const ROUNDS = quick ? 3 : 21;
const RATE_S = quick ? 3 : 8;
const TARGET = 0.9;

type Variant = 'off' | 'events + metrics' | 'events + metrics + traces (1 %)' | 'the same, whole /events read';
const VARIANTS: Variant[] = ['off', 'events + metrics', 'events + metrics + traces (1 %)', 'the same, whole /events read'];

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
    const everything = { enabled: true, tracing: { otlpEndpoint: otlp, sampleRatio: 0.01 } };
    const settings: Record<Variant, object> = {
      off: { enabled: false },
      'events + metrics': { enabled: true },
      'events + metrics + traces (1 %)': everything,
      'the same, whole /events read': everything,
    };
    const sidecars = {} as Record<Variant, SidecarProcess>;
    for (const [i, variant] of VARIANTS.entries()) sidecars[variant] = await processes.startSidecar('client', await meshFile(upstream, settings[variant]), `sidecar-${i}`, 1);
    const url = (variant: Variant) => `http://${sidecars[variant].addresses.outbound}/`;
    // While a game day records, the control plane reads every sidecar's whole /events; here a reader in this process does.
    let read = 0;
    get(`http://${sidecars[VARIANTS[3]].addresses.admin}/events`, (res) => res.on('data', (chunk: Buffer) => {
      for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) read++;
    }));

    // Head to head: all four loaded at once, each by its own 16 connections.
    const rounds = await headToHead(() => VARIANTS.map((v) => ({ pid: sidecars[v].pid, url: url(v), host: 'upstream' })), ROUNDS, ROUND_S);
    const ratios = (v: Variant) => perCpuRatios(rounds, VARIANTS.indexOf(v));

    // Latency at a fixed rate, one sidecar at a time, in turns.
    const p99 = Object.fromEntries(VARIANTS.map((v) => [v, [] as number[]])) as Record<Variant, number[]>;
    for (let round = 0; round < 2; round++) {
      for (const v of VARIANTS) {
        const times: number[] = [];
        await run(url(v), 'upstream', { connections: 16, duration: RATE_S, overallRate: 1_000 }, times);
        p99[v].push(percentiles(times).p99);
      }
    }

    const dropped = (await (await fetch(`http://${sidecars[VARIANTS[3]].addresses.admin}/metrics`)).text()).match(/^faultline_events_dropped_total (\d+)/m)?.[1];
    const all = VARIANTS[2];
    const ratio = median(ratios(all));
    const cells = (xs: number[], digits = 0) => xs.map((x) => x.toFixed(digits)).join(', ');
    process.stdout.write([
      `node ${process.version}; ${pinning}; head to head: the four sidecars loaded at once (16 connections each), ${ROUNDS} rounds × ${ROUND_S} s; latency: 1000 rps × ${RATE_S} s each, in turns, two rounds`,
      '',
      '| telemetry | CPU ms per 1,000 requests (rounds) | rps in the shared core (rounds) | share of the core (median) | requests per CPU-second ÷ off (median) | p99 ms at 1000 rps (rounds) |',
      '|---|---|---|---|---|---|',
      ...VARIANTS.map((v, i) => `| ${v} | ${cells(rounds.cost[i]!)} | ${cells(rounds.rps[i]!)} | ${(median(rounds.share[i]!) * 100).toFixed(0)} % | ${median(ratios(v)).toFixed(3)}× | ${cells(p99[v], 2)} |`),
      '',
      `Per-round ratios, everything on ÷ off: ${cells(ratios(all).sort((a, b) => a - b), 3)}.`,
      `Telemetry on (events, metrics, traces at 1 %): ${ratio.toFixed(3)}× the throughput per CPU of telemetry off, median of the rounds ` +
        `(cost ${((1 - ratio) * 100).toFixed(1)} %, target ≤ ${((1 - TARGET) * 100).toFixed(0)} %: ${ratio >= TARGET ? 'met' : 'NOT met'}); events + metrics alone ${median(ratios(VARIANTS[1])).toFixed(3)}×; ` +
        `with its whole /events read, as while a game day records, ${median(ratios(VARIANTS[3])).toFixed(3)}× (${read} events read, ${dropped ?? '?'} dropped); ${spans} spans received.`,
      '',
    ].join('\n'));
  } finally {
    await processes.stopAll();
    receiver.close();
  }
}

await main();
