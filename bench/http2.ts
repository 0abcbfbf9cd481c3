// `npm run bench:http2`: HTTP/2 through the mesh against direct, in one run on this machine. h2load
// (Debian's nghttp2-client) speaks h2c with prior knowledge, as a gRPC channel without TLS does, to a
// node:http2 upstream answering 1 KiB (bench/h2-upstream.ts): directly, through one sidecar, and
// through a sidecar pair with mTLS off and strict (a control plane issuing the identities). Per path:
// latency at a fixed rate (from h2load's per-request log), the sidecars' RSS then, max throughput, and
// the sidecars' CPU per request in it. `-- --quick` for a short smoke run.
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { percentiles, type Latency } from './load.ts';
import { CLI, Processes, cpuMs, freePort, rss } from './processes.ts';

const quick = process.argv.includes('--quick');
const settings = quick
  ? { warmupS: 1, rateS: 3, maxS: 2, rate: 1_000, rateClients: 10, maxClients: 32, streams: 10 }
  : { warmupS: 10, rateS: 10, maxS: 6, rate: 1_000, rateClients: 10, maxClients: 32, streams: 10 };
type Settings = typeof settings;

const TOKEN = 'bench-http2-token';

interface Target {
  name: string;
  url: string;
  authority?: string;
  sidecars: number[];
}

interface Result {
  name: string;
  maxRps: number;
  failures: number;
  latency: Latency;
  /** The sidecars' CPU (all on the path, summed) per request in the max phase, in µs. */
  sidecarCpuUs: number;
  upstreamCpuUs: number;
  rss: { atRate: number; peak: number }[];
}

interface H2loadRun {
  rps: number;
  succeeded: number;
  failures: number;
  /** Each request's time, ms (only when a log file was asked for). */
  times: number[];
}

/** One h2load run, killed if it outlives its duration by 30 s. */
async function h2load(target: Target, args: string[], durationS: number, logFile?: string): Promise<H2loadRun> {
  const argv = [...args, '-D', String(durationS), ...(target.authority ? ['-H', `:authority: ${target.authority}`] : []), ...(logFile ? ['--log-file', logFile] : []), target.url];
  const stdout = await new Promise<string>((resolve, reject) => {
    const child = spawn('h2load', argv, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), (durationS + 30) * 1000);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`h2load ${argv.join(' ')} ended with ${signal ?? code}\n${out}`));
    });
  });
  const rps = /finished in [^,]+, ([\d.]+) req\/s/.exec(stdout);
  const counts = /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(stdout);
  if (!rps || !counts) throw new Error(`h2load's output not understood:\n${stdout}`);
  const [succeeded, failed, errored, timeout] = [counts[4], counts[5], counts[6], counts[7]].map(Number) as [number, number, number, number];
  // The log: one line per request, `start µs <TAB> status <TAB> duration µs`.
  const times = logFile ? (await readFile(logFile, 'utf8')).split('\n').filter(Boolean).map((line) => Number(line.split('\t')[2]) / 1000) : [];
  return { rps: Number(rps[1]), succeeded, failures: failed + errored + timeout, times };
}

/** Warm-up and the fixed rate first, so the memory read after them is the memory at that rate; then the max, with CPU read around it. */
async function measure(target: Target, upstreamPid: number, s: Settings, dir: string): Promise<Result> {
  const paced = ['-c', String(s.rateClients), '-m', String(s.streams), '--rps', String(s.rate / s.rateClients)];
  await h2load(target, paced, s.warmupS);
  const log = join(dir, `${target.name.replaceAll(/\W+/g, '-')}.log`);
  const fixed = await h2load(target, paced, s.rateS, log);
  const atRate = target.sidecars.map((pid) => rss(pid).now);
  const cpu = () => target.sidecars.reduce((sum, pid) => sum + cpuMs(pid), 0);
  const [sidecarsBefore, upstreamBefore] = [cpu(), cpuMs(upstreamPid)];
  const max = await h2load(target, ['-c', String(s.maxClients), '-m', String(s.streams)], s.maxS);
  const perRequestUs = (ms: number) => (1000 * ms) / Math.max(1, max.succeeded);
  return {
    name: target.name,
    maxRps: max.rps,
    failures: fixed.failures + max.failures,
    latency: percentiles(fixed.times),
    sidecarCpuUs: perRequestUs(cpu() - sidecarsBefore),
    upstreamCpuUs: perRequestUs(cpuMs(upstreamPid) - upstreamBefore),
    rss: target.sidecars.map((pid, i) => ({ atRate: atRate[i]!, peak: rss(pid).peak })),
  };
}

/**
 * The bench meshes: `single` forwards straight to the upstream (on 127.0.0.2: a sidecar fronting an
 * address makes every service with that endpoint dial its inbound); `pair-a` reaches it through
 * `pair-b`, which fronts it. Both upstream services speak HTTP/2, so every hop is HTTP/2.
 */
async function meshConfig(upstreamPort: number, mtls: 'off' | 'strict') {
  const address = async () => `127.0.0.1:${await freePort()}`;
  const listeners = async () => ({ outbound: await address(), inbound: await address(), admin: await address() });
  const [single, pairA] = [await address(), await address()];
  return {
    mesh: { name: `bench-http2-${mtls}` },
    mtls: { mode: mtls, trustDomain: 'bench.test' },
    services: [
      { name: 'client', endpoints: [{ address: single }, { address: pairA }] },
      { name: 'upstream', protocol: 'http2', endpoints: [{ address: `127.0.0.2:${upstreamPort}` }] },
      { name: 'app', protocol: 'http2', endpoints: [{ address: `127.0.0.1:${upstreamPort}` }] },
    ],
    sidecars: [
      ...(mtls === 'off' ? [{ name: 'single', service: 'client', ...(await listeners()), app: single }] : []),
      { name: 'pair-a', service: 'client', ...(await listeners()), app: pairA },
      { name: 'pair-b', service: 'app', ...(await listeners()), app: `127.0.0.1:${upstreamPort}` },
    ],
  };
}

/** The strict mesh's sidecars take config and certificates from a control plane, as deployed. */
async function startStrictPair(processes: Processes, upstreamPort: number, dir: string): Promise<{ outbound: string; pids: number[] }> {
  await writeFile(join(dir, 'strict.yaml'), stringify(await meshConfig(upstreamPort, 'strict')));
  await writeFile(join(dir, 'token'), TOKEN);
  const env = { FAULTLINE_LOG_LEVEL: 'warn' };
  const line = await processes.start('control', [CLI, 'control', '--config', join(dir, 'strict.yaml'), '--listen', `127.0.0.1:${await freePort()}`, '--token-file', join(dir, 'token'), '--state-dir', join(dir, 'control')], env);
  const control = (JSON.parse(line) as { control: string }).control;
  const start = async (name: string) => {
    const started = await processes.start(`strict-${name}`, [CLI, 'sidecar', '--control', control, '--token-file', join(dir, 'token'), '--state-dir', join(dir, name), '--service', name], env);
    return { addresses: JSON.parse(started) as { outbound: string }, pid: processes.pid(`strict-${name}`) };
  };
  const b = await start('pair-b');
  const a = await start('pair-a');
  return { outbound: a.addresses.outbound, pids: [a.pid, b.pid] };
}

function report(results: Result[], s: Settings, idle: number[], load: { before: string; after: string }): string {
  const direct = results[0]!;
  const ms = (n: number) => n.toFixed(2);
  const mib = (n: number) => (n / (1024 * 1024)).toFixed(0);
  const h2loadVersion = spawnSync('h2load', ['--version'], { encoding: 'utf8' }).stdout.trim();
  const out = [
    `node ${process.version}, ${cpus().length} cores, ${h2loadVersion}; loadavg before ${load.before}, after ${load.after}`,
    `max: ${s.maxClients} connections × ${s.streams} streams, ${s.maxS} s; fixed rate: ${s.rate} rps over ${s.rateClients} connections (≤ ${s.streams} streams each), ${s.rateS} s after ${s.warmupS} s of it`,
    '',
    '| path | max rps | × direct | p50 ms | p90 ms | p99 ms | max ms | added p50 | added p99 | sidecar CPU µs/req | upstream CPU µs/req | failures |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...results.map((r) => `| ${r.name} | ${r.maxRps.toFixed(0)} | ${(r.maxRps / direct.maxRps).toFixed(2)} | ${ms(r.latency.p50)} | ${ms(r.latency.p90)} | ${ms(r.latency.p99)} | ${ms(r.latency.max)} | ${ms(r.latency.p50 - direct.latency.p50)} | ${ms(r.latency.p99 - direct.latency.p99)} | ${r.rss.length ? r.sidecarCpuUs.toFixed(0) : '–'} | ${r.upstreamCpuUs.toFixed(0)} | ${r.failures} |`),
    '',
    `Sidecar RSS at ${s.rate} rps (after ${s.warmupS + s.rateS} s of it), and peak after the max phase: ${results.filter((r) => r.rss.length).map((r) => `${r.name}: ${r.rss.map((m) => `${mib(m.atRate)} MiB (peak ${mib(m.peak)})`).join(', ')}`).join('; ')}. Idle: ${idle.map(mib).join(', ')} MiB.`,
  ];
  return `${out.join('\n')}\n`;
}

async function main(): Promise<void> {
  if (spawnSync('h2load', ['--version']).status !== 0) throw new Error('h2load not found: it is in Debian\'s nghttp2-client (apt-get install nghttp2-client)');
  const loadBefore = readFileSync('/proc/loadavg', 'utf8').trim();
  const processes = new Processes();
  process.once('SIGINT', () => void processes.stopAll().then(() => process.exit(130)));
  const dir = await mkdtemp(join(tmpdir(), 'faultline-bench-http2-'));
  try {
    const upstreamPort = Number(await processes.start('upstream', ['bench/h2-upstream.ts']));
    await writeFile(join(dir, 'off.yaml'), stringify(await meshConfig(upstreamPort, 'off')));
    const single = await processes.startSidecar('single', join(dir, 'off.yaml'));
    const pairA = await processes.startSidecar('pair-a', join(dir, 'off.yaml'));
    const pairB = await processes.startSidecar('pair-b', join(dir, 'off.yaml'));
    const strict = await startStrictPair(processes, upstreamPort, dir);
    const idle = [single.pid, pairA.pid, pairB.pid, ...strict.pids].map((pid) => rss(pid).now);
    const targets: Target[] = [
      { name: 'direct', url: `http://127.0.0.1:${upstreamPort}/`, sidecars: [] },
      { name: 'one sidecar', url: `http://${single.addresses.outbound}/`, authority: 'upstream', sidecars: [single.pid] },
      { name: 'sidecar pair, mTLS off', url: `http://${pairA.addresses.outbound}/`, authority: 'app', sidecars: [pairA.pid, pairB.pid] },
      { name: 'sidecar pair, mTLS strict', url: `http://${strict.outbound}/`, authority: 'app', sidecars: strict.pids },
    ];
    const results: Result[] = [];
    for (const target of targets) {
      process.stderr.write(`measuring ${target.name}...\n`);
      results.push(await measure(target, processes.pid('upstream'), settings, dir));
    }
    process.stdout.write(report(results, settings, idle, { before: loadBefore, after: readFileSync('/proc/loadavg', 'utf8').trim() }));
  } finally {
    await processes.stopAll();
  }
}

await main();
