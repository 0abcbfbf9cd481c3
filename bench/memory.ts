// `node bench/memory.ts`: what an idle sidecar holds, measured so that no figure depends on what was
// imported before it (issue 24, docs/benchmarks.md "Memory"). Two parts:
// - imports: for each package the sidecar's main thread loads (and for faultline's own modules), a
//   fresh process imports Node's own modules that the sidecar uses and every other package first,
//   then that one last; its cost is the RSS after it less the RSS before it (both after gc()). So
//   each figure is what the package adds to a process that already holds everything else — the ESM
//   loader's start, shared dependencies and Node's own modules are paid before it, whatever the
//   order in which the sidecar happens to load them.
// - sidecar: the real process (bench:cost's fully configured sidecar, costMeshFile: tracing at 1 % to
//   an OTLP endpoint), started once per round per variant, read 3 s after it says it started.
//   `--cli PATH` (repeatable) compares builds (e.g. a copy of dist/ from before a change against
//   dist/); each is run with tracing to an endpoint and without one.
// - load (`--only load`; needs wrk and nginx): whether what a loaded sidecar holds levels off, and
//   how much of it is garbage. The bare undici forwarder (bench/forwarders.ts) and bench:cost's
//   sidecar, with a trace endpoint and without one, each in turn in front of an nginx upstream on the
//   sidecar's heap flags, take `--windows N` (default 6) windows of `--seconds S` (default 10) of wrk
//   -c50. During each window RSS is read every 250 ms; after it a full collection is forced over the
//   inspector (`--inspect` on a loopback port; HeapProfiler.collectGarbage) and the main thread's
//   heap and the RSS are read again. Live heap that grows window after window is a leak; RSS under
//   load far above RSS after the collection is garbage V8 had not yet collected (old generation).
//   The trace export worker's heap is read the same way once it runs. `--targets bare,tracing`: some
//   targets only (words of their names).
// `--rounds N` (default 5; rounds alternate the variants), `--only imports|sidecar|load`.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parse, stringify } from 'yaml';
import { WebSocket } from 'undici';
import { SIDECAR_HEAP_FLAGS } from '../src/cli/heap.ts';
import { median } from './head-to-head.ts';
import { CLI, Processes, costMeshFile, freePort, rss, startSpanSink } from './processes.ts';
import { missingTools, nginx, startBareForwarder, waitForPort, wrk } from './wrk-nginx.ts';

const args = process.argv.slice(2);
const flag = (name: string) => args.flatMap((a, i) => (a === name && args[i + 1] !== undefined ? [args[i + 1]!] : []));
const ROUNDS = Number(flag('--rounds')[0] ?? 5);
const ONLY = flag('--only')[0];
const MiB = (bytes: number) => (bytes / 2 ** 20).toFixed(1);

/** The packages `faultline sidecar`'s main thread imports (the worker's OpenTelemetry SDK is measured with the sidecar, below). */
const PACKAGES: Record<string, string[]> = {
  ...Object.fromEntries(['commander', 'yaml', 'zod', 'express', 'prom-client', 'pino', 'seedrandom', '@opentelemetry/api', '@opentelemetry/core', '@opentelemetry/propagator-b3'].map((name) => [name, [name]])),
  'undici (the files src/http/undici.ts loads)': ['undici/lib/dispatcher/agent.js', 'undici/lib/api/api-request.js', 'undici/lib/global.js'],
};
/**
 * Node's own modules the sidecar loads: loaded first in every probe (so that the package that happens
 * to load one first is not charged for it), and measured alone into an empty process.
 */
const BUILTINS = ['node:http', 'node:http2', 'node:https', 'node:tls', 'node:net', 'node:crypto', 'node:stream', 'node:worker_threads', 'node:perf_hooks', 'node:fs/promises', 'node:diagnostics_channel'];
/** faultline's own modules that a sidecar loads, by their roots (cli/main.js itself runs the CLI, so its imports stand in for it). */
const OURS = ['dist/config/load.js', 'dist/config/snapshot.js', 'dist/proxy/sidecar.js', 'dist/telemetry/log.js', 'dist/cli/paths.js'];

/** A process that imports `first` in turn, then `last`; prints the RSS (after gc) before and after `last`. */
const PROBE = `
const [first, last] = JSON.parse(process.argv[1]);
const settle = () => { globalThis.gc(); globalThis.gc(); return process.memoryUsage().rss; };
for (const url of first) await import(url);
const before = settle();
for (const url of last) await import(url);
console.log(JSON.stringify({ before, after: settle() }));`;

function probe(first: string[], last: string[]): { before: number; after: number } {
  const run = spawnSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', PROBE, JSON.stringify([first, last])], { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`probe failed: ${run.stderr}`);
  return JSON.parse(run.stdout);
}

function imports(): void {
  const packages = new Map(Object.entries(PACKAGES).map(([name, specifiers]) => [name, specifiers.map((specifier) => import.meta.resolve(specifier))]));
  const thirdParty = [...packages.values()].flat();
  // Ours import the packages, so a package is measured after the others without ours; ours after all packages.
  packages.set('faultline\'s own modules (dist/)', OURS.map((path) => pathToFileURL(resolve(path)).href));
  const all = [...packages.values()].flat();
  const costs = new Map<string, number[]>([...packages.keys()].map((name) => [name, []]));
  const totals: number[] = [];
  const empty: number[] = [];
  const builtins: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const whole = probe([], all);
    empty.push(whole.before);
    totals.push(whole.after);
    builtins.push(probe([], BUILTINS).after);
    for (const [name, urls] of packages) {
      const { before, after } = probe([...BUILTINS, ...(urls.every((url) => thirdParty.includes(url)) ? thirdParty : all).filter((url) => !urls.includes(url))], urls);
      costs.get(name)!.push(after - before);
    }
    process.stderr.write(`imports: round ${round + 1} of ${ROUNDS}\n`);
  }
  const out = ['| imported last (after all the others) | RSS it adds, MiB (median; min–max) |', '|---|--:|'];
  for (const [name, values] of [...costs].sort((a, b) => median(b[1]) - median(a[1]))) {
    out.push(`| ${name} | ${MiB(median(values))} (${MiB(Math.min(...values))}–${MiB(Math.max(...values))}) |`);
  }
  const sum = [...costs.values()].reduce((s, v) => s + median(v), 0);
  out.push('', `Node with nothing imported (after gc): ${MiB(median(empty))} MiB; with Node's own modules that the sidecar loads (${BUILTINS.join(', ')}): ${MiB(median(builtins))} MiB; with all of the above: ${MiB(median(totals))} MiB. The costs above add up to ${MiB(sum)} of the ${MiB(median(totals) - median(empty))} MiB between nothing and all (the rest: the ESM loader, Node's own modules and what the packages share).`);
  process.stdout.write(`${out.join('\n')}\n\n`);
}

/** Starts a sidecar, waits for its line and 3 s more, reads its RSS, stops it. */
async function idleRss(cli: string, config: string): Promise<number> {
  const child = spawn(process.execPath, [cli, 'sidecar', '--config', config, '--service', 'client', '--no-watch'], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, FAULTLINE_LOG_LEVEL: 'warn' } });
  await new Promise<void>((started, failed) => {
    child.stdout.once('data', () => started());
    child.once('exit', (code) => failed(new Error(`${cli} exited with ${code}`)));
  });
  await new Promise((r) => setTimeout(r, 3_000));
  const { now } = rss(child.pid!);
  await new Promise<void>((exited) => {
    child.removeAllListeners('exit');
    child.once('exit', () => exited());
    child.kill('SIGTERM');
  });
  return now;
}

/** bench:cost's mesh in front of `upstreamPort`, tracing to `otlp`, and the same mesh without a trace endpoint (no span made, no export worker started). */
async function meshFiles(upstreamPort: number, otlp: string): Promise<{ traced: string; untraced: string }> {
  const traced = await costMeshFile(upstreamPort, otlp);
  const untraced = join(await mkdtemp(join(tmpdir(), 'faultline-bench-memory-')), 'mesh.yaml');
  const mesh = parse(await readFile(traced, 'utf8')) as { telemetry: { tracing?: object } };
  delete mesh.telemetry.tracing;
  await writeFile(untraced, stringify(mesh));
  return { traced, untraced };
}

async function sidecar(): Promise<void> {
  const clis = flag('--cli').length > 0 ? flag('--cli') : [CLI];
  const sink = await startSpanSink();
  const { traced, untraced } = await meshFiles(await freePort(), sink.url);
  const variants = clis.flatMap((cli) => [
    { name: `${cli}, tracing to an endpoint`, cli, config: traced },
    { name: `${cli}, no trace endpoint`, cli, config: untraced },
  ]);
  const values = new Map(variants.map((v) => [v.name, [] as number[]]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const v of round % 2 === 0 ? variants : [...variants].reverse()) values.get(v.name)!.push(await idleRss(v.cli, v.config));
    process.stderr.write(`sidecar: round ${round + 1} of ${ROUNDS}\n`);
  }
  sink.close();
  const out = ['| sidecar (bench:cost\'s mesh) | idle RSS, MiB (median; min–max) |', '|---|--:|'];
  for (const [name, v] of values) out.push(`| ${name} | ${MiB(median(v))} (${MiB(Math.min(...v))}–${MiB(Math.max(...v))}) |`);
  process.stdout.write(`${out.join('\n')}\n`);
}

type Reply = { result?: { result?: { value?: unknown } } };

/**
 * A Chrome DevTools Protocol session with a process started with `--inspect=127.0.0.1:PORT`, as soon
 * as it answers; `worker` sends to its trace export worker (src/telemetry/span-export) once that has
 * started (`hasWorker`), over the NodeWorker domain.
 */
async function inspector(port: number): Promise<{ call(method: string, params?: object): Promise<Reply>; hasWorker(): boolean; worker(method: string, params?: object): Promise<Reply>; close(): void }> {
  const deadline = Date.now() + 15_000;
  let url: string | undefined;
  while (url === undefined) {
    try {
      url = ((await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as { webSocketDebuggerUrl: string }[])[0]?.webSocketDebuggerUrl;
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`no inspector on 127.0.0.1:${port} after 15 s: ${(error as Error).message}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const ws = new WebSocket(url);
  await new Promise((opened, failed) => {
    ws.addEventListener('open', opened);
    ws.addEventListener('error', failed);
  });
  const pending = new Map<number, (reply: Reply) => void>();
  const settle = (message: { id?: number } & Reply) => {
    if (message.id === undefined) return;
    pending.get(message.id)?.(message);
    pending.delete(message.id);
  };
  let workerSession: string | undefined;
  ws.addEventListener('message', (event) => {
    const message = JSON.parse(String(event.data)) as { id?: number; method?: string; params?: { sessionId: string; message: string; workerInfo?: { url: string } } } & Reply;
    // The sidecar's one worker thread is its trace exporter (src/telemetry/span-export); another would not be read.
    if (message.method === 'NodeWorker.attachedToWorker' && message.params!.workerInfo?.url.includes('span-export')) workerSession ??= message.params!.sessionId;
    else if (message.method === 'NodeWorker.receivedMessageFromWorker') settle(JSON.parse(message.params!.message));
    else settle(message);
  });
  let id = 0;
  const call = (method: string, params = {}) => new Promise<Reply>((answered) => {
    pending.set(++id, answered);
    ws.send(JSON.stringify({ id, method, params }));
  });
  await call('NodeWorker.enable', { waitForDebuggerOnStart: false });
  return {
    call,
    hasWorker: () => workerSession !== undefined,
    worker: (method, params = {}) => new Promise<Reply>((answered) => {
      const inner = ++id;
      pending.set(inner, answered);
      ws.send(JSON.stringify({ id: ++id, method: 'NodeWorker.sendMessageToWorker', params: { sessionId: workerSession, message: JSON.stringify({ id: inner, method, params }) } }));
    }),
    close: () => ws.close(),
  };
}

/** The heap of the isolate a session evaluates in, after a full collection there. */
async function heapAfterGc(send: (method: string, params?: object) => Promise<Reply>): Promise<NodeJS.MemoryUsage> {
  await send('HeapProfiler.collectGarbage');
  const reply = await send('Runtime.evaluate', { expression: 'JSON.stringify(process.memoryUsage())', returnByValue: true });
  return JSON.parse(String(reply.result?.result?.value)) as NodeJS.MemoryUsage;
}

interface LoadWindow {
  rps: number;
  /** RSS read every 250 ms during the window, its largest. */
  rssUnderLoad: number;
  rssAfterGc: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  /** The worker thread's (the trace export worker's) heap after a full collection there, when it runs. */
  workerHeapUsed: number | undefined;
  workerHeapTotal: number | undefined;
}

/** Windows of wrk -c50 against one target, with a full collection forced and the heap read after each. */
async function loadWindows(pid: number, inspectPort: number, url: string, host: string | undefined, windows: number, seconds: number): Promise<LoadWindow[]> {
  const session = await inspector(inspectPort);
  const out: LoadWindow[] = [];
  try {
    for (let i = 0; i < windows; i++) {
      let rssUnderLoad = 0;
      const sampler = setInterval(() => (rssUnderLoad = Math.max(rssUnderLoad, rss(pid).now)), 250);
      const run = await wrk(url, host, 50, seconds, false).finally(() => clearInterval(sampler));
      const usage = await heapAfterGc(session.call);
      const worker = session.hasWorker() ? await heapAfterGc(session.worker) : undefined;
      out.push({ rps: run.requests / run.seconds, rssUnderLoad, rssAfterGc: rss(pid).now, heapUsed: usage.heapUsed, heapTotal: usage.heapTotal, external: usage.external, workerHeapUsed: worker ? worker.heapUsed : undefined, workerHeapTotal: worker ? worker.heapTotal : undefined });
    }
  } finally {
    session.close();
  }
  return out;
}

async function load(): Promise<void> {
  const missing = missingTools();
  if (missing.length > 0) {
    process.stdout.write(`load: needs ${missing.join(' and ')} (apt-get install -y wrk nginx-light); skipped\n`);
    return;
  }
  const windows = Number(flag('--windows')[0] ?? 6);
  const seconds = Number(flag('--seconds')[0] ?? 10);
  const sink = await startSpanSink();
  const upstreamChildren: ChildProcess[] = [];
  const out: string[] = [];
  try {
    const upstreamPort = await freePort();
    await nginx('memory-upstream', `server { listen 127.0.0.1:${upstreamPort}; listen 127.0.0.2:${upstreamPort}; location / { default_type text/plain; return 200 "${'x'.repeat(1024)}"; } }`, 0, upstreamChildren);
    await waitForPort(upstreamPort);
    const { traced, untraced } = await meshFiles(upstreamPort, sink.url);
    /** bench:cost's sidecar on `config`, as `target` of `processes`: its outbound address, Host `upstream`. */
    const sidecar = async (processes: Processes, env: NodeJS.ProcessEnv, config: string) => {
      const line = await processes.start('target', [CLI, 'sidecar', '--config', config, '--service', 'client', '--no-watch'], env, 1);
      return { url: `http://${(JSON.parse(line) as { outbound: string }).outbound}/`, host: 'upstream' };
    };
    const targets: { name: string; start: (processes: Processes, env: NodeJS.ProcessEnv) => Promise<{ url: string; host?: string }> }[] = [
      { name: 'bare node:http + undici forwarder', start: async (processes, env) => ({ url: `http://127.0.0.1:${await startBareForwarder(processes, 'target', upstreamPort, env)}/` }) },
      { name: 'sidecar, tracing to an endpoint', start: (processes, env) => sidecar(processes, env, traced) },
      { name: 'sidecar, no trace endpoint', start: (processes, env) => sidecar(processes, env, untraced) },
    ];
    out.push(`Load: wrk -t1 -c50, ${windows} windows of ${seconds} s per target, nginx upstream (1 KiB); every process on the sidecar's heap flags (${SIDECAR_HEAP_FLAGS.join(' ')}) and --inspect on a loopback port; MiB.`, '');
    const picked = flag('--targets')[0];
    for (const target of targets.filter((t) => picked === undefined || picked.split(',').some((word) => t.name.includes(word)))) {
      const processes = new Processes();
      try {
        const inspectPort = await freePort();
        // The heap flags given, so `faultline sidecar` does not re-execute itself to add them (heap.ts).
        const env = { FAULTLINE_LOG_LEVEL: 'warn', NODE_OPTIONS: `${SIDECAR_HEAP_FLAGS.join(' ')} --inspect=127.0.0.1:${inspectPort}` };
        const { url, host } = await target.start(processes, env);
        const pid = processes.pid('target');
        const idle = rss(pid).now;
        const measured = await loadWindows(pid, inspectPort, url, host, windows, seconds);
        out.push(`**${target.name}** (idle ${MiB(idle)})`, '', '| window | req/s | RSS under load (largest) | RSS after a full GC | main heap used after it | committed | external | worker heap used after a full GC | committed |', '|--:|--:|--:|--:|--:|--:|--:|--:|--:|');
        const mib = (bytes: number | undefined) => (bytes === undefined ? '–' : MiB(bytes));
        measured.forEach((w, i) => out.push(`| ${i + 1} | ${w.rps.toFixed(0)} | ${MiB(w.rssUnderLoad)} | ${MiB(w.rssAfterGc)} | ${MiB(w.heapUsed)} | ${MiB(w.heapTotal)} | ${MiB(w.external)} | ${mib(w.workerHeapUsed)} | ${mib(w.workerHeapTotal)} |`));
        const second = measured[Math.min(1, measured.length - 1)]!;
        const last = measured.at(-1)!;
        out.push('', `Heap used after a full GC, window 2 → ${measured.length}: ${MiB(second.heapUsed)} → ${MiB(last.heapUsed)} MiB; RSS under load less RSS after the GC (median of windows): ${MiB(median(measured.map((w) => w.rssUnderLoad - w.rssAfterGc)))} MiB.`, '');
      } finally {
        await processes.stopAll();
      }
      process.stderr.write(`load: ${target.name} done\n`);
    }
  } finally {
    sink.close();
    for (const child of upstreamChildren) child.kill('SIGTERM');
  }
  process.stdout.write(`${out.join('\n')}\n`);
}

process.stdout.write(`Node ${process.version}, ${ROUNDS} rounds\n\n`);
if (ONLY === undefined || ONLY === 'imports') imports();
if (ONLY === undefined || ONLY === 'sidecar') await sidecar();
if (ONLY === undefined || ONLY === 'load') await load();
