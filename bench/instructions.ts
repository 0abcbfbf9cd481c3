// `npm run bench:instructions`: what per-request telemetry costs in instructions, counted by valgrind's
// callgrind rather than timed — the same count for the same work whatever else the machine does, so a
// change of a few hundred instructions per request shows, where the timed bench (bench/telemetry.ts)
// moves by a point from run to run. Three sidecars, one at a time: telemetry off, events + metrics, and
// everything (tracing at 1 %, exported to a receiver in this process). Each runs under callgrind with
// instrumentation off while it warms up (16,000 requests: V8 has optimized the hot code by then), then
// on for 4,000 requests, and reports instructions per request — its main thread (the data path) and
// all its threads (V8's helpers, the trace export worker) — and their ratio to telemetry off.
// Instructions are not time: they leave out cache misses and the kernel, and a thread that does a
// little every second (the export worker) counts for more per request here, where valgrind runs the
// sidecar some fifty times slower. Needs valgrind (`apt-get install valgrind`) and the built CLI; not part of `npm run bench`.
// `--cost` (issue 24) counts instead the bare node:http + undici forwarder (bench/forwarders.ts) and the
// sidecar of bench:cost (a route with retries and a timeout, outlier detection, an idle fault, tracing
// at 1 %) in front of the same upstream, and their ratio: bench:cost's CPU column, without the noise.
// `--cost --ablate` counts that sidecar with one policy taken away at a time: what each layer costs
// (`--rows 0,2` counts only those rows of the table).
import { execFileSync, spawn } from 'node:child_process';
import { readdirSync, rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import autocannon from 'autocannon';
import { SIDECAR_HEAP_FLAGS } from '../src/cli/heap.ts';
import { Processes, clientMeshFile, costMeshFile, type CostPolicies } from './processes.ts';

const WARM = 16_000;
const COUNT = 4_000;

/** Instructions in thousands, as the tables give them. */
const k = (n: number) => `${(n / 1000).toFixed(1)} k`;

interface Count {
  main: number;
  all: number;
  /** Of `main`, what V8's collections cost on the main thread (scavenges and full collections, inclusive). */
  gc: number;
}

/** One process's count as a line: the main thread (its GC, the rest) and all threads. */
const described = (name: string, c: Count) =>
  `${name}: ${k(c.main)} instructions per request on the main thread (GC ${k(c.gc)}, the rest ${k(c.main - c.gc)}), ${k(c.all)} on all threads\n`;

/** How to start what is counted, and the URL its first stdout line gives. */
interface Counted {
  readonly argv: readonly string[];
  readonly url: (line: string) => string;
}

/**
 * Every counted process runs with the sidecar's semi-spaces (src/cli/heap.ts: at most 4 MiB), held at
 * 4 MiB from the start: V8 sizes the young generation by time-based heuristics, which valgrind's
 * slowness throws off, and the count of scavenges in the window (each a fixed cost of thousands of
 * instructions) moved by 2× between runs of the same process. Under sustained load V8 grows it to the
 * maximum anyway. JIT code is named for FAULTLINE_PERF_MAP (a perf map in /tmp, for the callgrind
 * files FAULTLINE_KEEP_CALLGRIND keeps).
 */
const NODE_FLAGS = () => [...(process.env.FAULTLINE_PERF_MAP ? ['--perf-basic-prof'] : []), ...SIDECAR_HEAP_FLAGS, '--min-semi-space-size=4'];

const sidecar = (config: string): Counted => ({
  // The sidecar's own heap sizing (src/cli/heap.ts) re-execs the process, which valgrind would not follow: given here.
  argv: [...NODE_FLAGS(), 'dist/cli/main.js', 'sidecar', '--config', config, '--service', 'client', '--no-watch'],
  url: (line) => `http://${(JSON.parse(line) as { outbound: string }).outbound}/`,
});

/** Instructions per request of one process, counted over COUNT requests after WARM uncounted ones. */
async function count(what: Counted): Promise<Count> {
  const dir = await mkdtemp(join(tmpdir(), 'faultline-callgrind-'));
  const out = join(dir, 'callgrind.out');
  // Fixed seeds: Math.random (sampling, balancing) draws the same numbers in every run.
  const child = spawn(
    'valgrind',
    ['--tool=callgrind', '--instr-atstart=no', '--separate-threads=yes', '--cache-sim=no', `--callgrind-out-file=${out}`, process.execPath, '--random-seed=42', '--hash-seed=42', ...what.argv],
    { env: { ...process.env, FAULTLINE_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'pipe', 'ignore'] },
  );
  try {
    const line = await new Promise<string>((resolve, reject) => {
      createInterface({ input: child.stdout }).once('line', resolve);
      child.once('exit', (code) => reject(new Error(`${what.argv.join(' ')} under valgrind exited (${code}) before it listened`)));
    });
    const url = what.url(line);
    const load = (amount: number) =>
      // A generous timeout: turning instrumentation on makes valgrind translate every hot function again, a pause of seconds.
      new Promise<autocannon.Result>((resolve, reject) => autocannon({ url, headers: { host: 'upstream' }, connections: 16, amount, timeout: 120 }, (e, r) => (e ? reject(e) : resolve(r))));
    await load(WARM);
    execFileSync('callgrind_control', ['--instr=on', String(child.pid)], { stdio: 'ignore' });
    const result = await load(COUNT);
    execFileSync('callgrind_control', ['--instr=off', String(child.pid)], { stdio: 'ignore' });
    if (result.non2xx + result.errors > 0) throw new Error(`${result.non2xx + result.errors} of ${COUNT} requests failed (statuses ${JSON.stringify(result.statusCodeStats)}, ${result.errors} errors of which ${result.timeouts} timeouts): run it again on a quieter machine`);
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
    const total = (file: string) =>
      Number(execFileSync('callgrind_annotate', [join(dir, file)], { encoding: 'utf8', maxBuffer: 1 << 28 }).match(/([\d,]+) \(100\.0%\)\s+PROGRAM TOTALS/)?.[1]?.replaceAll(',', '') ?? 0);
    // One file per thread: -01 is the main thread, the event loop that carries the requests.
    const files = readdirSync(dir).filter((f) => f.startsWith('callgrind.out-')).sort();
    const perThread = files.map(total);
    // The main thread's garbage collections, inclusive: node's binary keeps V8's symbols. What the rest
    // costs (the mutator) moves less from run to run than the total: a collection more or less in the
    // window is thousands of instructions per request.
    const inclusive = execFileSync('callgrind_annotate', ['--inclusive=yes', '--threshold=99.9', join(dir, files[0]!)], { encoding: 'utf8', maxBuffer: 1 << 28 });
    const gc = Number(inclusive.match(/^\s*([\d,]+) \([\s\d.]+%\)\s+\S*v8::internal::Heap::CollectGarbage\(/m)?.[1]?.replaceAll(',', '') ?? 0);
    return { main: perThread[0]! / COUNT, all: perThread.reduce((a, b) => a + b, 0) / COUNT, gc: gc / COUNT };
  } finally {
    child.kill('SIGKILL');
    if (process.env.FAULTLINE_KEEP_CALLGRIND) process.stderr.write(`callgrind files kept in ${dir}\n`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const processes = new Processes();
  const receiver = createServer((req, res) => req.resume().on('end', () => res.end('{}')));
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const otlp = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/v1/traces`;
  try {
    const upstream = Number(await processes.start('upstream', ['bench/upstream.ts'], {}));
    if (process.argv.includes('--cost')) return await cost(upstream, otlp);
    const variants: [string, object][] = [
      ['off', { enabled: false }],
      ['events + metrics', { enabled: true }],
      ['events + metrics + traces (1 %)', { enabled: true, tracing: { otlpEndpoint: otlp, sampleRatio: 0.01 } }],
    ];
    const counts: Count[] = [];
    for (const [, telemetry] of variants) counts.push(await count(sidecar(await clientMeshFile('bench-instructions', upstream, telemetry))));
    const off = counts[0]!;
    process.stdout.write([
      `node ${process.version}; callgrind; each sidecar warmed by ${WARM.toLocaleString('en')} requests uncounted, then ${COUNT.toLocaleString('en')} counted (16 connections)`,
      '',
      '| telemetry | instructions per request, main thread | ÷ off | all threads | ÷ off |',
      '|---|---|---|---|---|',
      ...variants.map(([name], i) => `| ${name} | ${k(counts[i]!.main)} | ${(counts[i]!.main / off.main).toFixed(3)}× | ${k(counts[i]!.all)} | ${(counts[i]!.all / off.all).toFixed(3)}× |`),
      '',
    ].join('\n'));
  } finally {
    await processes.stopAll();
    receiver.close();
  }
}

/**
 * bench:cost's policies with their timeouts ×12 (60 s, per try 24 s): the same code runs for the same
 * requests, but a pause of valgrind's (it translates every hot function again when instrumentation is
 * turned on) does not end a try as a 504, which would count the timeout path instead.
 */
function patient(adjust: (p: CostPolicies) => Partial<CostPolicies> = (p) => p): (p: CostPolicies) => Partial<CostPolicies> {
  return (policies) => {
    const adjusted = adjust(policies);
    const routes = adjusted.routes?.map((r) => ({
      ...r,
      ...('timeout' in r && { timeout: '60s' }),
      ...('retries' in r && { retries: { ...r.retries, perTryTimeout: '24s' } }),
    })) as CostPolicies['routes'] | undefined;
    return { ...adjusted, routes };
  };
}

/** bench:cost's two Node processes, counted: the sidecar's instructions per request ÷ the bare forwarder's. */
async function cost(upstream: number, otlp: string): Promise<void> {
  if (process.argv.includes('--ablate')) return await ablate(upstream, otlp);
  // `--sidecar-only`: count only the sidecar while changing it (`--bare-only`, `--headers-only`: only that forwarder).
  if (process.argv.includes('--sidecar-only')) {
    const c = await count(sidecar(await costMeshFile(upstream, otlp, patient())));
    process.stdout.write(described("faultline sidecar (bench:cost's config)", c));
    return;
  }
  const forwarder = (kind: string): Counted => ({
    argv: [...NODE_FLAGS(), 'bench/forwarders.ts', kind, String(upstream)],
    url: (line) => `http://127.0.0.1:${line.trim()}/`,
  });
  if (process.argv.includes('--headers-only')) {
    process.stdout.write(described("bare forwarder sending the mesh's headers", await count(forwarder('undici-headers'))));
    return;
  }
  const bare = await count(forwarder('undici'));
  if (process.argv.includes('--bare-only')) {
    process.stdout.write(described('bare node:http + undici forwarder', bare));
    return;
  }
  // The same forwarder sending the headers the sidecar adds: what those cost in node:http and undici.
  const headers = await count(forwarder('undici-headers'));
  const configured = await count(sidecar(await costMeshFile(upstream, otlp, patient())));
  const row = (name: string, c: Count) =>
    `| ${name} | ${k(c.main)} | ${(c.main / bare.main).toFixed(3)}× | ${(c.main / headers.main).toFixed(3)}× | ${k(c.gc)} | ${k(c.main - c.gc)} | ${((c.main - c.gc) / (bare.main - bare.gc)).toFixed(3)}× | ${k(c.all)} | ${(c.all / bare.all).toFixed(3)}× |`;
  process.stdout.write([
    `node ${process.version}; callgrind; each warmed by ${WARM.toLocaleString('en')} requests uncounted, then ${COUNT.toLocaleString('en')} counted (16 connections); all with semi-spaces held at 4 MiB`,
    '',
    '| | instructions per request, main thread | ÷ bare | ÷ bare with the mesh\'s headers | of which GC | the rest (mutator) | ÷ bare\'s | all threads | ÷ bare |',
    '|---|---|---|---|---|---|---|---|---|',
    row('bare node:http + undici forwarder', bare),
    row('bare forwarder sending the mesh\'s headers', headers),
    row('faultline sidecar (bench:cost\'s config)', configured),
    '',
  ].join('\n'));
}

/** The policies bench:cost's sidecar has, one taken away at a time (with the route's own parts: its retries, its timeout). */
const ABLATIONS: [string, (p: CostPolicies) => Partial<CostPolicies>][] = [
  ['every policy (bench:cost)', (p) => p],
  ['without the idle fault', (p) => ({ ...p, faults: [] })],
  ['without tracing (events + metrics on)', (p) => ({ ...p, telemetry: { enabled: true } as CostPolicies['telemetry'] })],
  ['tracing at 0 % (trace ids and headers, no span)', (p) => ({ ...p, telemetry: { enabled: true, tracing: { ...p.telemetry.tracing, sampleRatio: 0 } } })],
  ['without telemetry', (p) => ({ ...p, telemetry: { enabled: false } as unknown as CostPolicies['telemetry'] })],
  ['without outlier detection', (p) => ({ ...p, outlierDetection: undefined })],
  ['without retries', (p) => ({ ...p, routes: p.routes.map(({ retries: _, ...r }) => r) as CostPolicies['routes'] })],
  ['without the route timeout', (p) => ({ ...p, routes: p.routes.map(({ timeout: _, ...r }) => r) as CostPolicies['routes'] })],
  ['none: the route alone, telemetry off', (p) => ({ routes: p.routes.map(({ retries: _, timeout: __, ...r }) => r) as CostPolicies['routes'], telemetry: { enabled: false } as unknown as CostPolicies['telemetry'] })],
];

/** The sidecar counted with each policy taken away in turn: what each layer costs per request. */
async function ablate(upstream: number, otlp: string): Promise<void> {
  const rows: string[] = [];
  let full: Count | undefined;
  // `--rows 0,2`: only those rows of ABLATIONS (the first is what the others are compared with).
  const at = process.argv.indexOf('--rows');
  const only = at === -1 ? undefined : new Set(process.argv[at + 1]!.split(',').map(Number));
  for (const [name, adjust] of ABLATIONS.filter((_, i) => !only || only.has(i))) {
    const c = await count(sidecar(await costMeshFile(upstream, otlp, patient(adjust))));
    full ??= c;
    const saved = (n: number, of: number) => (n === of ? '–' : `${k(of - n)}`);
    rows.push(`| ${name} | ${k(c.main)} | ${saved(c.main, full.main)} | ${k(c.gc)} | ${k(c.main - c.gc)} | ${saved(c.main - c.gc, full.main - full.gc)} | ${k(c.all)} | ${saved(c.all, full.all)} |`);
    process.stderr.write(`${rows.at(-1)}\n`);
  }
  process.stdout.write([
    `node ${process.version}; callgrind; bench:cost's sidecar, one policy taken away at a time; each warmed by ${WARM.toLocaleString('en')} requests uncounted, then ${COUNT.toLocaleString('en')} counted (16 connections)`,
    '',
    '| sidecar | instructions per request, main thread | less than every policy | of which GC | the rest (mutator) | less | all threads | less |',
    '|---|---|---|---|---|---|---|---|',
    ...rows,
    '',
  ].join('\n'));
}

await main();
