// Prints a benchmark run as Markdown: absolute figures, ratios to direct, and the targets.
import type { LoadSettings, Measurement } from './load.ts';

const MIB = 1024 * 1024;
const TARGETS = { addedP50: 1, addedP99: 3, rssMiB: 60 };

export interface MemoryFigures {
  idleRss: { now: number; peak: number }[];
  forwarderRss: Record<string, { now: number; peak: number }>;
}

const ms = (n: number) => n.toFixed(2);
const mib = (n: number) => (n / MIB).toFixed(0);

export async function printReport(results: Measurement[], s: LoadSettings, memory: MemoryFigures): Promise<void> {
  const direct = results[0]!;
  const out: string[] = [];
  const { cpus } = await import('node:os');
  out.push(`node ${process.version}, ${cpus().length} cores; max: ${s.maxConnections} connections × ${s.maxS} s; fixed rate: ${s.rate} rps, ${s.rateConnections} connections × ${s.rateS} s`);
  out.push('');
  out.push('| path | max rps | × direct | p50 ms | p90 ms | p99 ms | max ms | added p50 | added p99 | failures |');
  out.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of results) {
    out.push(`| ${r.name} | ${r.maxRps.toFixed(0)} | ${(r.maxRps / direct.maxRps).toFixed(2)} | ${ms(r.latency.p50)} | ${ms(r.latency.p90)} | ${ms(r.latency.p99)} | ${ms(r.latency.max)} | ${ms(r.latency.p50 - direct.latency.p50)} | ${ms(r.latency.p99 - direct.latency.p99)} | ${r.failures} |`);
  }
  out.push('');
  const rss = results.filter((r) => r.rss.length > 0).map((r) => `${r.name}: ${r.rss.map((m) => `${mib(m.atRate)} MiB (peak ${mib(m.peak)})`).join(', ')}`);
  out.push(`Sidecar RSS at ${s.rate} rps (after ${s.warmupS + s.rateS} s of it), and peak after the max phase: ${rss.join('; ')}. Idle: ${memory.idleRss.map((m) => `${mib(m.now)} MiB`).join(', ')}.`);
  out.push(`Bare forwarders after load: ${Object.entries(memory.forwarderRss).map(([name, m]) => `${name} ${mib(m.now)} MiB`).join(', ')}.`);
  out.push('');
  const pair = results.find((r) => r.name === 'sidecar pair')!;
  const atRate = Math.max(...results.flatMap((r) => r.rss.map((m) => m.atRate)));
  const check = (ok: boolean) => (ok ? 'met' : 'NOT met');
  out.push(`Targets: sidecar pair adds ≤ ${TARGETS.addedP50} ms p50: ${ms(pair.latency.p50 - direct.latency.p50)} ms, ${check(pair.latency.p50 - direct.latency.p50 <= TARGETS.addedP50)}; ` +
    `≤ ${TARGETS.addedP99} ms p99: ${ms(pair.latency.p99 - direct.latency.p99)} ms, ${check(pair.latency.p99 - direct.latency.p99 <= TARGETS.addedP99)}; ` +
    `RSS ≤ ${TARGETS.rssMiB} MB per sidecar at ${s.rate} rps: up to ${mib(atRate)} MiB, ${check(atRate <= TARGETS.rssMiB * MIB)}.`);
  const barePair = results.find((r) => r.name === 'bare undici forwarder pair')!;
  out.push(`Against a pair of bare undici forwarders (the floor for two Node proxies here): the sidecar pair adds ${ms(pair.latency.p50 - barePair.latency.p50)} ms p50 and ` +
    `${ms(pair.latency.p99 - barePair.latency.p99)} ms p99, at ${(pair.maxRps / barePair.maxRps).toFixed(2)}× its max rps.`);
  const undici = results.find((r) => r.name === 'bare undici forwarder')!;
  const hpm = results.find((r) => r.name === 'bare http-proxy-middleware')!;
  const nodeHttp = results.find((r) => r.name === 'bare node:http forwarder')!;
  out.push(`Forwarding core: undici ${(undici.maxRps / hpm.maxRps).toFixed(2)}× the max rps of http-proxy-middleware and ${(undici.maxRps / nodeHttp.maxRps).toFixed(2)}× node:http's; ` +
    `p99 at ${s.rate} rps: undici ${ms(undici.latency.p99)}, node:http ${ms(nodeHttp.latency.p99)}, http-proxy-middleware ${ms(hpm.latency.p99)} ms.`);
  process.stdout.write(`${out.join('\n')}\n`);
}
