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
// `--quick` for a short run; `--only sidecar,undici` to load some targets (words of their names, comma-separated; for profiling, with --rounds N).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { median } from './head-to-head.ts';
import { CLI, Processes, canPin, costMeshFile, cpuMs, freePort, rss, startSpanSink } from './processes.ts';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const flag = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const ROUNDS = Number(flag('--rounds') ?? (quick ? 1 : 3));
const WARMUP_S = quick ? 3 : 6;
const MAX_S = quick ? 4 : 8;
const PACED_S = quick ? 5 : 10;
const SIDECAR_NODE_OPTIONS = flag('--sidecar-node-options');
const UNDICI_NODE_OPTIONS = flag('--undici-node-options');

for (const tool of ['wrk', 'nginx']) {
  if (spawnSync('sh', ['-c', `command -v ${tool} || test -x /usr/sbin/${tool}`]).status !== 0) {
    process.stderr.write(`bench:cost needs ${tool}: apt-get install -y wrk nginx-light\n`);
    process.exit(2);
  }
}
const NGINX = spawnSync('sh', ['-c', 'command -v nginx || echo /usr/sbin/nginx']).stdout.toString().trim();

const loadavg = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
const taskset = (cpu: number, argv: string[]) => (canPin() ? ['taskset', '-c', String(cpu), ...argv] : argv);

interface Wrk {
  requests: number;
  seconds: number;
  errors: number;
  p50: number;
  p99: number;
}

/** Runs wrk (pinned to CPU 0 with the upstream) and reads the JSON line bench/wrk-report.lua prints. */
function wrk(url: string, host: string | undefined, connections: number, seconds: number, paced: boolean): Promise<Wrk> {
  const script = paced ? 'bench/wrk-paced.lua' : 'bench/wrk-report.lua';
  const argv = taskset(0, ['wrk', '-t1', `-c${connections}`, `-d${seconds}s`, '-s', script, ...(host ? ['-H', `Host: ${host}`] : []), url]);
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.once('exit', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('{"requests"'));
      if (code !== 0 || !line) return reject(new Error(`wrk exited with ${code}: ${out}`));
      resolve(JSON.parse(line) as Wrk);
    });
  });
}

async function waitForPort(port: number, host = '127.0.0.1'): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = createServer().listen(port, host);
      socket.once('listening', () => socket.close(() => resolve(false)));
      socket.once('error', () => resolve(true));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on ${host}:${port} after 15 s`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** An nginx with one worker, prefix in a temporary directory; `server` is the http block's server section. */
async function nginx(name: string, server: string, cpu: number, children: ChildProcess[]): Promise<{ pids: () => number[] }> {
  const dir = await mkdtemp(join(tmpdir(), `faultline-bench-${name}-`));
  const conf = `worker_processes 1;
daemon off;
master_process on;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fcgi;
  uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  keepalive_requests 10000000;
  keepalive_timeout 65s;
  ${server}
}
`;
  await writeFile(join(dir, 'nginx.conf'), conf);
  const argv = taskset(cpu, [NGINX, '-p', dir, '-c', join(dir, 'nginx.conf')]);
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'inherit', 'inherit'] });
  children.push(child);
  const master = () => child.pid!;
  return {
    // The master (idle) and its worker(s): CPU and RSS of the whole nginx.
    pids: () => [master(), ...spawnSync('pgrep', ['-P', String(master())]).stdout.toString().split('\n').filter(Boolean).map(Number)],
  };
}

interface Target {
  name: string;
  url: string;
  host?: string;
  pids: () => number[];
}

interface Round {
  rps: number;
  p50: number;
  p99: number;
  pacedRps: number;
  cpuUsPerReq: number;
  rssAfter: number;
  errors: number;
  loadavg: string;
}

const rssOf = (pids: number[]) => pids.reduce((sum, pid) => sum + rss(pid).now, 0);
const cpuOf = (pids: number[]) => pids.reduce((sum, pid) => sum + cpuMs(pid), 0);
const MiB = (bytes: number) => (bytes / 2 ** 20).toFixed(0);

async function main(): Promise<void> {
  const processes = new Processes();
  const children: ChildProcess[] = [];
  // The sidecars export their sampled spans here; it counts them.
  const sink = await startSpanSink();
  const otlp = sink.url;
  try {
    const upstreamPort = await freePort();
    const body = 'x'.repeat(1024);
    const upstream = await nginx('upstream', `server { listen 127.0.0.1:${upstreamPort}; listen 127.0.0.2:${upstreamPort}; location / { default_type text/plain; return 200 "${body}"; } }`, 0, children);
    await waitForPort(upstreamPort);
    const forwarderPort = await freePort();
    const forwarder = await nginx(
      'forwarder',
      `upstream u { server 127.0.0.1:${upstreamPort}; keepalive 64; keepalive_requests 10000000; }
  server { listen 127.0.0.1:${forwarderPort}; location / { proxy_pass http://u; proxy_http_version 1.1; proxy_set_header Connection ""; } }`,
      1,
      children,
    );
    await waitForPort(forwarderPort);
    const undiciPort = Number(await processes.start('undici', ['bench/forwarders.ts', 'undici', String(upstreamPort)], UNDICI_NODE_OPTIONS === undefined ? {} : { NODE_OPTIONS: UNDICI_NODE_OPTIONS }, 1));
    const env = SIDECAR_NODE_OPTIONS === undefined ? {} : { NODE_OPTIONS: SIDECAR_NODE_OPTIONS };
    process.stderr.write(`sidecar heap: ${process.env.FAULTLINE_HEAP === 'default' ? 'V8 defaults (FAULTLINE_HEAP=default)' : 'faultline\'s own (--max-semi-space-size=4)'}\n`);
    const line = await processes.start('sidecar', [CLI, 'sidecar', '--config', await costMeshFile(upstreamPort, otlp), '--service', 'client', '--no-watch'], { FAULTLINE_LOG_LEVEL: 'warn', ...env }, 1);
    const sidecar = { pid: processes.pid('sidecar'), addresses: JSON.parse(line) as { outbound: string } };

    const all: Target[] = [
      { name: 'direct (nginx upstream)', url: `http://127.0.0.1:${upstreamPort}/`, pids: () => [] },
      { name: 'nginx forwarder (one worker)', url: `http://127.0.0.1:${forwarderPort}/`, pids: forwarder.pids },
      { name: 'bare node:http + undici forwarder', url: `http://127.0.0.1:${undiciPort}/`, pids: () => [processes.pid('undici')] },
      { name: 'faultline sidecar', url: `http://${sidecar.addresses.outbound}/`, host: 'upstream', pids: () => [sidecar.pid] },
    ];
    const only = flag('--only');
    const targets = only ? all.filter((t) => only.split(',').some((o) => t.name.includes(o))) : all;
    const idle = new Map(targets.map((t) => [t.name, rssOf(t.pids())]));
    process.stderr.write(`started; loadavg ${loadavg()}\n`);
    for (const t of targets) await wrk(t.url, t.host, 50, WARMUP_S, false);

    const rounds = new Map<string, Round[]>(targets.map((t) => [t.name, []]));
    for (let round = 0; round < ROUNDS; round++) {
      // Alternate the order: a drift of the machine's speed within a round lands on different targets.
      const order = round % 2 === 0 ? targets : [...targets].reverse();
      for (const t of order) {
        const before = cpuOf(t.pids());
        const max = await wrk(t.url, t.host, 50, MAX_S, false);
        const used = cpuOf(t.pids()) - before;
        const paced = await wrk(t.url, t.host, 10, PACED_S, true);
        const r: Round = {
          rps: max.requests / max.seconds,
          p50: paced.p50,
          p99: paced.p99,
          pacedRps: paced.requests / paced.seconds,
          cpuUsPerReq: (used * 1000) / max.requests,
          rssAfter: rssOf(t.pids()),
          errors: max.errors + paced.errors,
          loadavg: loadavg(),
        };
        rounds.get(t.name)!.push(r);
        process.stderr.write(`round ${round + 1} ${t.name}: ${r.rps.toFixed(0)} req/s, p50 ${r.p50} µs, p99 ${r.p99} µs at ${r.pacedRps.toFixed(0)} req/s, ${r.cpuUsPerReq.toFixed(1)} µs CPU/req, RSS ${MiB(r.rssAfter)} MiB, errors ${r.errors}; loadavg ${r.loadavg}\n`);
      }
    }

    const med = (name: string, key: keyof Omit<Round, 'loadavg'>) => median(rounds.get(name)!.map((r) => r[key]));
    const direct = all[0]!.name;
    const ref = (name: string) => (rounds.has(name) ? name : undefined);
    const nginxName = ref(all[1]!.name);
    const undiciName = ref(all[2]!.name);
    const signed = (us: number) => `${us >= 0 ? '+' : '−'}${Math.abs(us).toFixed(0)} µs`;
    const ratio = (value: number, base: number | undefined) => (base === undefined || base <= 0 ? '–' : `${(value / base).toFixed(2)}×`);
    const hasDirect = rounds.has(direct);
    const out = [
      `node ${process.version}; ${canPin() ? 'wrk and the nginx upstream on CPU 0, the measured forwarder on CPU 1' : 'not pinned'}; ${ROUNDS} round(s), targets alternating; wrk -t1: max throughput -c50 ${MAX_S} s, latency paced ~1,000 req/s -c10 ${PACED_S} s; medians; 1 KiB body; sidecar: ${CLI}${SIDECAR_NODE_OPTIONS ? ` NODE_OPTIONS='${SIDECAR_NODE_OPTIONS}'` : ''}`,
      `loadavg per round: ${[...rounds.values()].flat().map((r) => r.loadavg.split(' ')[0]).join(', ')}; spans exported at 1 %: ${sink.spans()}`,
      '',
      '| | req/s | × direct | added p50 | added p99 | CPU µs/req | × nginx CPU | × undici CPU | added p99 × undici | RSS idle | RSS after load |',
      '|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|',
    ];
    for (const t of targets) {
      const rps = med(t.name, 'rps');
      const isDirect = t.name === direct;
      const addedP50 = hasDirect && !isDirect ? med(t.name, 'p50') - med(direct, 'p50') : undefined;
      const addedP99 = hasDirect && !isDirect ? med(t.name, 'p99') - med(direct, 'p99') : undefined;
      const undiciAddedP99 = hasDirect && undiciName ? med(undiciName, 'p99') - med(direct, 'p99') : undefined;
      const cpu = med(t.name, 'cpuUsPerReq');
      out.push(
        `| ${t.name} | ${rps.toFixed(0)} | ${hasDirect ? (rps / med(direct, 'rps')).toFixed(2) : '–'} | ${isDirect ? `${med(t.name, 'p50')} µs` : addedP50 === undefined ? '–' : signed(addedP50)} | ${isDirect ? `${med(t.name, 'p99')} µs` : addedP99 === undefined ? '–' : signed(addedP99)} | ${isDirect ? '–' : cpu.toFixed(1)} | ${isDirect ? '–' : ratio(cpu, nginxName ? med(nginxName, 'cpuUsPerReq') : undefined)} | ${isDirect ? '–' : ratio(cpu, undiciName ? med(undiciName, 'cpuUsPerReq') : undefined)} | ${isDirect || addedP99 === undefined ? '–' : ratio(addedP99, undiciAddedP99)} | ${isDirect ? '–' : `${MiB(idle.get(t.name)!)} MiB`} | ${isDirect ? '–' : `${MiB(med(t.name, 'rssAfter'))} MiB`} |`,
      );
    }
    const errors = [...rounds.values()].flat().reduce((s, r) => s + r.errors, 0);
    out.push('', `Targets (issue 24): sidecar CPU ≤ 1.1× undici's; added p99 ≤ 1.5× undici's; RSS ≤ 80 MiB after load, ≤ 60 MiB idle. Socket errors and non-2xx in all rounds: ${errors}.`);
    process.stdout.write(`${out.join('\n')}\n`);
  } finally {
    await processes.stopAll();
    for (const child of children) child.kill('SIGTERM');
    sink.close();
  }
}

await main();
