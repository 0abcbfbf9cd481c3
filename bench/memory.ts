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
// `--rounds N` (default 5; rounds alternate the variants), `--only imports|sidecar`.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parse, stringify } from 'yaml';
import { median } from './head-to-head.ts';
import { CLI, costMeshFile, freePort, rss, startSpanSink } from './processes.ts';

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

async function sidecar(): Promise<void> {
  const clis = flag('--cli').length > 0 ? flag('--cli') : [CLI];
  const sink = await startSpanSink();
  const traced = await costMeshFile(await freePort(), sink.url);
  const untraced = join(await mkdtemp(join(tmpdir(), 'faultline-bench-memory-')), 'mesh.yaml');
  // The same mesh without an endpoint: no span is made and no export worker started.
  const mesh = parse(await readFile(traced, 'utf8')) as { telemetry: { tracing?: object } };
  delete mesh.telemetry.tracing;
  await writeFile(untraced, stringify(mesh));
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

process.stdout.write(`Node ${process.version}, ${ROUNDS} rounds\n\n`);
if (ONLY !== 'sidecar') imports();
if (ONLY !== 'imports') await sidecar();
