// `npm run bench:cost`: what one sidecar costs next to the best forwarders, in one run (issue 24).
// An nginx upstream answers 1 KiB; in front of it, in turn: nothing (direct), nginx as a forwarder
// (one worker, keep-alive upstream), a bare node:http + undici forwarder (bench/forwarders.ts), and a
// faultline sidecar configured as a staging mesh has it (a route with retries and a timeout, outlier
// detection, one idle fault, telemetry on with tracing at 1 %). The load is wrk (Debian), in its own
// process outside any Node event loop: max throughput at 50 connections, and latency paced at about
// 1,000 req/s (10 connections, each waiting 10 ms between requests: bench/wrk-paced.lua). CPU per
// request is each measured process's run time (/proc/PID/task/*/schedstat) over the max-throughput
// round; RSS idle and after load from /proc. Rounds alternate the targets; medians are reported,
// with /proc/loadavg at every round (a figure taken with loadavg > 2 on this 2-core machine is noise).
// Latency is taken in short paced windows that cycle through the targets (3 s each, 10 cycles), so
// that a slow spell of the machine lands in one window of one target, not in all of one target's
// figure: a target's added latency is the median over the cycles of its window's percentile less
// direct's window's in the same cycle.
// Then the same for a pair (`--pair` for the pair alone, `--one-hop` for the first table alone): client → A → B → upstream, through two nginx
// forwarders (plaintext), two bare undici forwarders (plaintext, and with mutual TLS), and two faultline sidecars, each its own process, with mTLS off and strict
// (identities from a control plane, `faultline control`, the sidecars under it with `--control`): added
// latency, CPU per request of both processes together, the RSS of each, and the ratio of the added p99
// to the nginx pair's and to Istio's published figure.
// `--quick` for a short run; `--only sidecar,undici` to load some targets (words of their names, comma-separated; for profiling, with --rounds N).
// `--if-available` (as `npm run bench` runs it): without wrk or nginx, say what to install and exit 0.
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SIDECAR_HEAP_FLAGS } from '../src/cli/heap.ts';
import { MeshCa } from '../src/identity/ca.ts';
import { spiffeId } from '../src/identity/spiffe.ts';
import { WorkloadKey } from '../src/identity/workload.ts';
import { CLI, Processes, canPin, costMeshFile, costPairMeshFile, cpuMs, freePort, rss, startSpanSink } from './processes.ts';
import { missingTools, nginx, startBareForwarder, waitForPort, wrk, type Wrk } from './wrk-nginx.ts';
import { MiB, pairReport, singleHopReport, type Candidate, type Measured, type Part, type Round, type Target } from './cost-report.ts';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const flag = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const ROUNDS = Number(flag('--rounds') ?? (quick ? 1 : 3));
const WARMUP_S = quick ? 3 : 6;
const MAX_S = quick ? 4 : 8;
/** Latency: cycles of paced windows, one window per target per cycle. */
const WINDOWS = Number(flag('--windows') ?? (quick ? 3 : 10));
const WINDOW_S = quick ? 2 : 3;
const SIDECAR_NODE_OPTIONS = flag('--sidecar-node-options');
/**
 * The bare forwarder runs with the heap the sidecar gives itself (both on V8's default with
 * FAULTLINE_HEAP=default), so that the RSS columns compare like with like; `--undici-node-options` replaces it.
 * (heap.ts re-executes only `faultline sidecar` and `up`: importing it here does nothing else.)
 */
const UNDICI_NODE_OPTIONS = flag('--undici-node-options') ?? (process.env.FAULTLINE_HEAP === 'default' ? undefined : SIDECAR_HEAP_FLAGS.join(' '));
const PAIR_ONLY = args.includes('--pair');
const ONE_HOP_ONLY = args.includes('--one-hop');

const missing = missingTools();
if (missing.length > 0) {
  const what = `bench:cost needs ${missing.join(' and ')}: apt-get install -y wrk nginx-light`;
  if (args.includes('--if-available')) {
    process.stdout.write(`${what} (skipped)\n`);
    process.exit(0);
  }
  process.stderr.write(`${what}\n`);
  process.exit(2);
}

const loadavg = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

const rssOf = (pids: number[]) => pids.reduce((sum, pid) => sum + rss(pid).now, 0);
const cpuOf = (pids: number[]) => pids.reduce((sum, pid) => sum + cpuMs(pid), 0);
const allPids = (t: Target) => t.parts.flatMap((p) => p.pids());


/** Starts the candidates `--only` keeps, then warms each up and measures them in alternating rounds. */
async function measureTable(title: string, candidates: Candidate[]): Promise<Measured> {
  const only = flag('--only');
  const kept = only ? candidates.filter((c) => only.split(',').some((o) => c.name.includes(o))) : candidates;
  const targets: Target[] = [];
  if (kept.length === 0) return { targets, rounds: new Map(), windows: new Map(), idle: new Map() };
  for (const c of kept) targets.push({ name: c.name, ...(await c.start()) });
  const idle = new Map(targets.map((t) => [t.name, t.parts.map((p) => rssOf(p.pids()))]));
  process.stderr.write(`${title}: started; loadavg ${loadavg()}\n`);
  for (const t of targets) await wrk(t.url, t.host, 50, WARMUP_S, false);

  const rounds = new Map<string, Round[]>(targets.map((t) => [t.name, []]));
  for (let round = 0; round < ROUNDS; round++) {
    // Alternate the order: a drift of the machine's speed within a round lands on different targets.
    const order = round % 2 === 0 ? targets : [...targets].reverse();
    for (const t of order) {
      const before = cpuOf(allPids(t));
      const max = await wrk(t.url, t.host, 50, MAX_S, false);
      const used = cpuOf(allPids(t)) - before;
      const r: Round = {
        rps: max.requests / max.seconds,
        cpuUsPerReq: (used * 1000) / max.requests,
        rssAfter: t.parts.map((p) => rssOf(p.pids())),
        errors: max.errors,
        loadavg: loadavg(),
      };
      rounds.get(t.name)!.push(r);
      process.stderr.write(`round ${round + 1} ${t.name}: ${r.rps.toFixed(0)} req/s, ${r.cpuUsPerReq.toFixed(1)} µs CPU/req, RSS ${r.rssAfter.length ? `${r.rssAfter.map(MiB).join(' + ')} MiB` : '–'}, errors ${r.errors}; loadavg ${r.loadavg}\n`);
    }
  }
  // Latency after the rounds, every target warm: short paced windows, one per target per cycle, the
  // order alternating, so that the machine's slow spells (seconds long on this shared VM) fall on
  // single windows, which the medians over cycles leave out.
  const windows = new Map<string, Wrk[]>(targets.map((t) => [t.name, []]));
  for (let cycle = 0; cycle < WINDOWS; cycle++) {
    const order = cycle % 2 === 0 ? targets : [...targets].reverse();
    for (const t of order) windows.get(t.name)!.push(await wrk(t.url, t.host, 10, WINDOW_S, true));
    process.stderr.write(`latency cycle ${cycle + 1}: ${targets.map((t) => `${t.name} p50 ${windows.get(t.name)![cycle]!.p50} p99 ${windows.get(t.name)![cycle]!.p99} µs`).join('; ')}; loadavg ${loadavg()}\n`);
  }
  return { targets, rounds, windows, idle };
}

/** A bare undici forwarder (bench/forwarders.ts) on CPU 1 to 127.0.0.1:`to`; `tls` its TLS flags. */
async function bareForwarder(processes: Processes, name: string, to: number, tls: string[] = []): Promise<{ port: number; part: Part }> {
  const port = await startBareForwarder(processes, name, to, UNDICI_NODE_OPTIONS === undefined ? {} : { NODE_OPTIONS: UNDICI_NODE_OPTIONS }, tls);
  return { port, part: { name, pids: () => [processes.pid(name)] } };
}

async function main(): Promise<void> {
  // The sidecars export their sampled spans here; it counts them.
  const sink = await startSpanSink();
  const otlp = sink.url;
  const upstreamChildren: ChildProcess[] = [];
  const sidecarEnv = { FAULTLINE_LOG_LEVEL: 'warn', ...(SIDECAR_NODE_OPTIONS === undefined ? {} : { NODE_OPTIONS: SIDECAR_NODE_OPTIONS }) };
  const settings = `node ${process.version}; ${canPin() ? 'wrk and the nginx upstream on CPU 0, the measured process(es) on CPU 1' : 'not pinned'}; ${ROUNDS} round(s), targets alternating; wrk -t1: max throughput -c50 ${MAX_S} s, latency paced ~1,000 req/s -c10 in ${WINDOWS} cycles of ${WINDOW_S} s windows per target; medians; 1 KiB body; sidecars: ${CLI}${SIDECAR_NODE_OPTIONS ? ` NODE_OPTIONS='${SIDECAR_NODE_OPTIONS}'` : ''}`;
  const out: string[] = [];
  try {
    const upstreamPort = await freePort();
    const body = 'x'.repeat(1024);
    await nginx('upstream', `server { listen 127.0.0.1:${upstreamPort}; listen 127.0.0.2:${upstreamPort}; location / { default_type text/plain; return 200 "${body}"; } }`, 0, upstreamChildren);
    await waitForPort(upstreamPort);
    const direct: Candidate = { name: 'direct (nginx upstream)', start: async () => ({ url: `http://127.0.0.1:${upstreamPort}/`, parts: [] }) };
    process.stderr.write(`sidecar heap: ${process.env.FAULTLINE_HEAP === 'default' ? 'V8 defaults (FAULTLINE_HEAP=default)' : `faultline's own (${SIDECAR_HEAP_FLAGS.join(' ')})`}; bare forwarder: ${UNDICI_NODE_OPTIONS ?? 'V8 defaults'}\n`);

    /** Each table starts its own processes and stops them before the next: idle ones would take the CPU's caches and timers. */
    const table = async (title: string, candidates: (processes: Processes, children: ChildProcess[]) => Candidate[]): Promise<Measured> => {
      const processes = new Processes();
      const children: ChildProcess[] = [];
      try {
        return await measureTable(title, candidates(processes, children));
      } finally {
        await processes.stopAll(['control']);
        for (const child of children) child.kill('SIGTERM');
      }
    };
    /** An nginx forwarder on CPU 1 to 127.0.0.1:`to`, keep-alive pool towards it; resolves with its port. */
    const nginxForwarder = async (name: string, to: number, children: ChildProcess[]) => {
      const port = await freePort();
      const forwarder = await nginx(
        name,
        `upstream u { server 127.0.0.1:${to}; keepalive 64; keepalive_requests 10000000; }
  server { listen 127.0.0.1:${port}; location / { proxy_pass http://u; proxy_http_version 1.1; proxy_set_header Connection ""; } }`,
        1,
        children,
      );
      await waitForPort(port);
      return { port, part: { name, pids: forwarder.pids } };
    };

    if (!PAIR_ONLY) {
      const names = { direct: direct.name, nginx: 'nginx forwarder (one worker)', undici: 'bare node:http + undici forwarder', sidecar: 'faultline sidecar' };
      const m = await table('one hop', (processes, children) => [
        direct,
        {
          name: names.nginx,
          start: async () => {
            const { port, part } = await nginxForwarder('forwarder', upstreamPort, children);
            return { url: `http://127.0.0.1:${port}/`, parts: [part] };
          },
        },
        {
          name: names.undici,
          start: async () => {
            const { port, part } = await bareForwarder(processes, 'undici', upstreamPort);
            return { url: `http://127.0.0.1:${port}/`, parts: [part] };
          },
        },
        {
          name: names.sidecar,
          start: async () => {
            const line = await processes.start('sidecar', [CLI, 'sidecar', '--config', await costMeshFile(upstreamPort, otlp), '--service', 'client', '--no-watch'], sidecarEnv, 1);
            const { outbound } = JSON.parse(line) as { outbound: string };
            return { url: `http://${outbound}/`, host: 'upstream', parts: [{ name: 'sidecar', pids: () => [processes.pid('sidecar')] }] };
          },
        },
      ]);
      if (m.targets.length > 0) out.push(...singleHopReport(m, names, settings), '');
    }

    if (ONE_HOP_ONLY) {
      process.stdout.write(`${out.join('\n')}\n`);
      return;
    }
    const pairNames = { direct: direct.name, nginx: 'nginx pair', undici: 'bare undici forwarder pair', undiciTls: 'bare undici forwarder pair, mutual TLS', off: 'faultline pair, mTLS off', strict: 'faultline pair, mTLS strict' };
    const m = await table('pair', (processes, children) => [
      direct,
      {
        name: pairNames.nginx,
        start: async () => {
          const b = await nginxForwarder('pair-b', upstreamPort, children);
          const a = await nginxForwarder('pair-a', b.port, children);
          return { url: `http://127.0.0.1:${a.port}/`, parts: [a.part, b.part] };
        },
      },
      {
        // Node's floor for a pair: two bare forwarders in a chain, plaintext, nothing but forwarding.
        name: pairNames.undici,
        start: async () => {
          const b = await bareForwarder(processes, 'undici-b', upstreamPort);
          const a = await bareForwarder(processes, 'undici-a', b.port);
          return { url: `http://127.0.0.1:${a.port}/`, parts: [a.part, b.part] };
        },
      },
      {
        // The same with mutual TLS between A and B, as the faultline pair under mTLS strict: each a
        // P-256 workload certificate of one mesh CA (made here as the control plane makes them).
        name: pairNames.undiciTls,
        start: async () => {
          const ca = await MeshCa.create('bench.test');
          const identity = async (service: string) => {
            const dir = await mkdtemp(join(tmpdir(), `faultline-bench-cost-tls-${service}-`));
            const key = await WorkloadKey.generate();
            const signed = await ca.sign(await key.csr(service, spiffeId('bench.test', 'default', service)), service);
            await Promise.all([writeFile(join(dir, 'ca.pem'), ca.certPem), writeFile(join(dir, 'cert.pem'), signed.certPem), writeFile(join(dir, 'key.pem'), key.keyPem, { mode: 0o600 })]);
            return dir;
          };
          const b = await bareForwarder(processes, 'undici-tls-b', upstreamPort, ['--tls-listen', await identity('pair-b')]);
          const a = await bareForwarder(processes, 'undici-tls-a', b.port, ['--tls-upstream', await identity('pair-a')]);
          return { url: `http://127.0.0.1:${a.port}/`, parts: [a.part, b.part] };
        },
      },
      {
        name: pairNames.off,
        start: async () => {
          const config = await costPairMeshFile(upstreamPort, otlp, 'off');
          const start = async (name: string) => {
            const line = await processes.start(`off-${name}`, [CLI, 'sidecar', '--config', config, '--service', name, '--no-watch'], sidecarEnv, 1);
            return { outbound: (JSON.parse(line) as { outbound: string }).outbound, part: { name, pids: () => [processes.pid(`off-${name}`)] } };
          };
          const b = await start('pair-b');
          const a = await start('pair-a');
          return { url: `http://${a.outbound}/`, host: 'app', parts: [a.part, b.part] };
        },
      },
      {
        name: pairNames.strict,
        start: async () => {
          // mTLS needs a control plane (a sidecar run from a file with mtls on refuses to start): as
          // deployed, one on loopback with a state dir, on CPU 0 (it is idle while the pair is loaded).
          const dir = await mkdtemp(join(tmpdir(), 'faultline-bench-cost-strict-'));
          await writeFile(join(dir, 'token'), randomBytes(24).toString('base64url'), { mode: 0o600 });
          const config = await costPairMeshFile(upstreamPort, otlp, 'strict');
          const line = await processes.start('control', [CLI, 'control', '--config', config, '--listen', `127.0.0.1:${await freePort()}`, '--token-file', join(dir, 'token'), '--state-dir', join(dir, 'control')], { FAULTLINE_LOG_LEVEL: 'warn' }, 0);
          const control = (JSON.parse(line) as { control: string }).control;
          const start = async (name: string) => {
            const started = await processes.start(`strict-${name}`, [CLI, 'sidecar', '--control', control, '--token-file', join(dir, 'token'), '--state-dir', join(dir, name), '--service', name], sidecarEnv, 1);
            return { outbound: (JSON.parse(started) as { outbound: string }).outbound, part: { name, pids: () => [processes.pid(`strict-${name}`)] } };
          };
          const b = await start('pair-b');
          const a = await start('pair-a');
          return { url: `http://${a.outbound}/`, host: 'app', parts: [a.part, b.part] };
        },
      },
    ]);
    if (m.targets.length > 0) out.push(...pairReport(m, pairNames, settings), '');
    out.push(`Spans exported at 1 %: ${sink.spans()}.`);
    process.stdout.write(`${out.join('\n')}\n`);
  } finally {
    for (const child of upstreamChildren) child.kill('SIGTERM');
    sink.close();
  }
}

await main();
