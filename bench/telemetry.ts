// `npm run bench` (third part): what per-request telemetry costs. Four sidecar processes in front of
// the same upstream — telemetry off, events + metrics, everything (events, metrics, tracing at 1 %
// sampling exported over OTLP/HTTP to a receiver in this process), and everything with its whole
// /events stream read (as the control plane reads every sidecar's while a game day records; the rest
// of the time it reads decisions only) — run head to head (bench/head-to-head.ts): loaded at the
// same time, all pinned to one CPU, the load generator and upstream on the other. Telemetry's
// throughput cost is the off sidecar's CPU per request divided by the other's: the requests a
// CPU-second serves. A process keeps the speed it drew at start, so this is done in sessions of
// fresh processes, and the median over sessions reported. Then latency: p99 at a fixed 1,000 rps,
// one sidecar at a time. `--aa` runs four identical sidecars (events + metrics) instead: the
// method's own spread.
import { get } from 'node:http';
import { percentiles, run } from './load.ts';
import { median, medianInterval, sessionRatios, sessions, verdict, type Contender } from './head-to-head.ts';
import { Processes, clientMeshFile, pinSelf, startSpanSink, type SidecarProcess } from './processes.ts';

const quick = process.argv.includes('--quick');
const aa = process.argv.includes('--aa');
const SESSIONS = quick ? 2 : 12;
const ROUNDS = quick ? 2 : 5;
const ROUND_S = quick ? 2 : 3;
const WARMUP_S = quick ? 2 : 4;
const RATE_S = quick ? 3 : 6;
const TARGET = 0.9;

type Variant = 'off' | 'events + metrics' | 'events + metrics + traces (1 %)' | 'the same, whole /events read';
const VARIANTS: Variant[] = ['off', 'events + metrics', 'events + metrics + traces (1 %)', 'the same, whole /events read'];

async function main(): Promise<void> {
  const shared = new Processes();
  // The sidecars export their sampled spans here; it counts them.
  const sink = await startSpanSink();
  const otlp = sink.url;
  try {
    const pinning = pinSelf();
    const upstream = Number(await shared.start('upstream', ['bench/upstream.ts'], {}, 0));
    const everything = { enabled: true, tracing: { otlpEndpoint: otlp, sampleRatio: 0.01 } };
    const settings: Record<Variant, object> = aa
      ? (Object.fromEntries(VARIANTS.map((v) => [v, { enabled: true }])) as Record<Variant, object>)
      : { off: { enabled: false }, 'events + metrics': { enabled: true }, 'events + metrics + traces (1 %)': everything, 'the same, whole /events read': everything };
    const configs = await Promise.all(VARIANTS.map((v) => clientMeshFile('bench-telemetry', upstream, settings[v])));
    const url = (sidecar: SidecarProcess) => `http://${sidecar.addresses.outbound}/`;
    // While a game day records, the control plane reads every sidecar's whole /events; here a reader in this process does.
    let read = 0;
    let dropped = 0;
    let current = {} as Record<Variant, SidecarProcess>;
    const p99 = Object.fromEntries(VARIANTS.map((v) => [v, [] as number[]])) as Record<Variant, number[]>;

    const all = await sessions(SESSIONS, async (session) => {
      const processes = new Processes();
      const sidecars = (current = {} as Record<Variant, SidecarProcess>);
      // Started in a different order each session: which process starts first is not always the same variant.
      for (let i = 0; i < VARIANTS.length; i++) {
        const v = VARIANTS[(i + session) % VARIANTS.length]!;
        sidecars[v] = await processes.startSidecar('client', configs[VARIANTS.indexOf(v)]!, `sidecar-${VARIANTS.indexOf(v)}`, 1);
      }
      const reader = get(`http://${sidecars[VARIANTS[3]].addresses.admin}/events`, (res) => res.on('data', (chunk: Buffer) => {
        for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) read++;
      }));
      reader.on('error', () => undefined);
      const contenders: Contender[] = VARIANTS.map((v) => ({ pid: sidecars[v].pid, url: url(sidecars[v]), host: 'upstream' }));
      return {
        contenders,
        stop: async () => {
          reader.destroy();
          await processes.stopAll();
        },
      };
    }, {
      rounds: ROUNDS,
      seconds: ROUND_S,
      warmupS: WARMUP_S,
      during: async (session) => {
        const admin = current[VARIANTS[3]].addresses.admin;
        dropped += Number((await (await fetch(`http://${admin}/metrics`)).text()).match(/^faultline_events_dropped_total (\d+)/m)?.[1] ?? NaN);
        if (session < SESSIONS - 1) return;
        for (let round = 0; round < 2; round++) {
          for (const v of VARIANTS) {
            const times: number[] = [];
            await run(url(current[v]), 'upstream', { connections: 16, duration: RATE_S, overallRate: 1_000 }, times);
            p99[v].push(percentiles(times).p99);
          }
        }
      },
    });
    const ratios = (v: Variant) => sessionRatios(all, VARIANTS.indexOf(v));
    const costs = (i: number) => all.map((rounds) => median(rounds.cost[i]!));
    const shares = (i: number) => all.flatMap((rounds) => rounds.share[i]!);
    const cells = (xs: number[], digits = 0) => xs.map((x) => x.toFixed(digits)).join(', ');
    const total = VARIANTS[2];
    const ratio = median(ratios(total));
    const [low, high] = medianInterval(ratios(total));
    process.stdout.write([
      `node ${process.version}; ${pinning}; ${aa ? 'A/A check: four identical sidecars (events + metrics) under the variants\' names; ' : ''}` +
        `${SESSIONS} sessions of fresh processes, each: every sidecar warmed alone ${WARMUP_S} s, then the four loaded at once (16 connections each), ${ROUNDS} rounds × ${ROUND_S} s; ` +
        `latency: 1000 rps × ${RATE_S} s each, in turns, in the last session`,
      '',
      '| telemetry | requests per CPU-second ÷ off, per session (sorted) | median | CPU ms per 1,000 requests (session medians) | share of the core (median) | p99 ms at 1000 rps |',
      '|---|---|---|---|---|---|',
      ...VARIANTS.map((v, i) => `| ${v} | ${cells([...ratios(v)].sort((a, b) => a - b), 3)} | ${median(ratios(v)).toFixed(3)}× | ${cells(costs(i))} | ${(median(shares(i)) * 100).toFixed(0)} % | ${cells(p99[v], 2)} |`),
      '',
      aa
        ? `A/A: identical sidecars (events + metrics) measured against the first: ${median(ratios(VARIANTS[1])).toFixed(3)}× and ${median(ratios(VARIANTS[2])).toFixed(3)}× ` +
          `(the method's own error); the fourth, identical but with its whole /events read: ${median(ratios(VARIANTS[3])).toFixed(3)}× (${read} events read, ${dropped} dropped).`
        : `Telemetry on (events, metrics, traces at 1 %): ${ratio.toFixed(3)}× the throughput per CPU of telemetry off, median of the sessions ` +
          `(cost ${((1 - ratio) * 100).toFixed(1)} %, 95 % interval ${((1 - high) * 100).toFixed(1)}–${((1 - low) * 100).toFixed(1)} % by bootstrap over the sessions; ` +
          `target ≤ ${((1 - TARGET) * 100).toFixed(0)} %: ${verdict([low, high], TARGET)}); events + metrics alone ${median(ratios(VARIANTS[1])).toFixed(3)}×; ` +
          `with its whole /events read, as while a game day records, ${median(ratios(VARIANTS[3])).toFixed(3)}× (${read} events read, ${dropped} dropped); ${sink.spans()} spans received.`,
      '',
    ].join('\n'));
  } finally {
    await shared.stopAll();
    sink.close();
  }
}

await main();
