// The tools outside Node that bench:cost and bench/memory.ts's load part measure with (Debian's wrk
// and nginx): which are missing, an nginx with one worker in a temporary prefix, wrk reading
// bench/wrk-report.lua's (or wrk-paced.lua's) JSON line; and the bare undici forwarder, built as plain
// JS and started. Processes are pinned as processes.ts's canPin allows.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { canPin, type Processes } from './processes.ts';

/** wrk and nginx (Debian: `apt-get install -y wrk nginx-light`): those not found here. */
export function missingTools(): string[] {
  return ['wrk', 'nginx'].filter((tool) => spawnSync('sh', ['-c', `command -v ${tool} || test -x /usr/sbin/${tool}`]).status !== 0);
}

const NGINX = spawnSync('sh', ['-c', 'command -v nginx || echo /usr/sbin/nginx']).stdout.toString().trim();

/** `argv` pinned to `cpu` where processes can be pinned. */
const taskset = (cpu: number, argv: string[]) => (canPin() ? ['taskset', '-c', String(cpu), ...argv] : argv);

/** Resolves once something listens on host:port (15 s at most). */
export async function waitForPort(port: number, host = '127.0.0.1'): Promise<void> {
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
export async function nginx(name: string, server: string, cpu: number, children: ChildProcess[]): Promise<{ pids: () => number[] }> {
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

/**
 * bench/forwarders.ts as plain JS (esbuild, not bundled: 'undici' resolves from node_modules), so that
 * the bare forwarder measured loads node:http and undici and nothing else: run from the .ts file, Node's
 * type stripping loads its own transformer, and the RSS column would count it.
 */
let forwardersBuilt: Promise<string> | undefined;
function buildForwarders(): Promise<string> {
  const outfile = 'node_modules/.cache/faultline-bench/forwarders.mjs';
  // Once per run: every bare forwarder started runs the same build.
  forwardersBuilt ??= build({ entryPoints: ['bench/forwarders.ts'], outfile, format: 'esm', platform: 'node', target: 'node24', logLevel: 'warning' }).then(() => outfile);
  return forwardersBuilt;
}

export interface Wrk {
  requests: number;
  seconds: number;
  errors: number;
  p50: number;
  p99: number;
}

/** Runs wrk (pinned to CPU 0 with the upstream) and reads the JSON line bench/wrk-report.lua prints. */
export function wrk(url: string, host: string | undefined, connections: number, seconds: number, paced: boolean): Promise<Wrk> {
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

/** The bare undici forwarder (bench/forwarders.ts, built) on CPU 1 in front of 127.0.0.1:`to`, as `name` of `processes`; resolves with its port. `tls`: its TLS flags. */
export async function startBareForwarder(processes: Processes, name: string, to: number, env: NodeJS.ProcessEnv = {}, tls: string[] = []): Promise<number> {
  return Number(await processes.start(name, [await buildForwarders(), 'undici', String(to), ...tls], env, 1));
}
