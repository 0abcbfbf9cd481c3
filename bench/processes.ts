// Child processes of a benchmark run: started on this Node, each announcing itself with one stdout
// line, all stopped at the end; plus their memory, read from /proc.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { createServer as createHttpServer } from 'node:http';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';

/** The built CLI when there is one (as deployed), else the TypeScript source. */
export const CLI = existsSync('dist/cli/main.js') ? 'dist/cli/main.js' : 'src/cli/main.ts';

export interface SidecarProcess {
  pid: number;
  addresses: { outbound: string; inbound: string; admin: string };
  idleRss: { now: number; peak: number };
}

export class Processes {
  readonly #children = new Map<string, ChildProcess>();

  /** Starts `node ARGS` (on CPU `cpu` only, when given and pinning works here) and resolves with the first line it prints. */
  start(name: string, args: string[], env: NodeJS.ProcessEnv = {}, cpu?: number): Promise<string> {
    const pinned = cpu !== undefined && canPin();
    const child = pinned
      ? spawn('taskset', ['-c', String(cpu), process.execPath, ...args], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...env } })
      : spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...env } });
    this.#children.set(name, child);
    return new Promise((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`${name} did not start within 15 s`)), 15_000);
      child.stdout!.on('data', (data: Buffer) => {
        out += data;
        const newline = out.indexOf('\n');
        if (newline !== -1) {
          clearTimeout(timer);
          resolve(out.slice(0, newline));
        }
      });
      child.once('exit', (code) => reject(new Error(`${name} exited with ${code}`)));
    });
  }

  /** Starts sidecar `name` of the config; `as` names the process when one config's sidecar runs twice. */
  async startSidecar(name: string, config: string, as = name, cpu?: number): Promise<SidecarProcess> {
    const line = await this.start(as, [CLI, 'sidecar', '--config', config, '--service', name, '--no-watch'], { FAULTLINE_LOG_LEVEL: 'warn' }, cpu);
    const pid = this.pid(as);
    return { pid, addresses: JSON.parse(line), idleRss: rss(pid) };
  }

  pid(name: string): number {
    return this.#children.get(name)!.pid!;
  }

  /** Stops every process, all at once; those named in `last` after the others have exited (a control plane after its sidecars, which would log its loss). */
  async stopAll(last: readonly string[] = []): Promise<void> {
    const stop = (children: ChildProcess[]) => Promise.all(children.map((child) => new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    })));
    const named = [...this.#children];
    await stop(named.filter(([name]) => !last.includes(name)).map(([, child]) => child));
    await stop(named.filter(([name]) => last.includes(name)).map(([, child]) => child));
  }
}

/**
 * Whether processes can be pinned to a CPU here: taskset exists and the machine has at least two.
 * Counted from os.cpus(), not availableParallelism(): once pinSelf has run, this process's own
 * affinity is one CPU, and every child would then inherit CPU 0 instead of getting CPU 1.
 */
let pinnable: boolean | undefined;
export function canPin(): boolean {
  pinnable ??= cpus().length >= 2 && spawnSync('taskset', ['-V']).status === 0;
  return pinnable;
}

/**
 * Pins this process (the load generator) to CPU 0 and says what it did, so that a sidecar pinned to
 * CPU 1 has a core of its own: its max throughput is then its own capacity, not a share of a core
 * fought over with the load generator.
 */
export function pinSelf(): string {
  if (!canPin()) return 'not pinned (no taskset, or one CPU)';
  spawnSync('taskset', ['-cp', '0', String(process.pid)]);
  return 'load generator (and upstream) on CPU 0, the measured process(es) on CPU 1';
}

/** Whether this kernel gives each thread's run time (/proc/PID/task/TID/schedstat): one source for every read. */
const SCHEDSTAT = existsSync(`/proc/self/task/${process.pid}/schedstat`);

/**
 * CPU time a process has used so far, in milliseconds: the run time the scheduler counts for each of
 * its threads (/proc/PID/task/TID/schedstat, in nanoseconds). /proc/PID/stat's utime and stime come
 * in clock ticks (10 ms): a round in which a process used 700 ms of CPU (four sharing a core for
 * 3 s) was read to ±1.5 %. A thread that ends between two reads takes its time with it; a Node
 * process's threads (event loop, libuv pool, V8's, workers) live as long as it does. Falls back to
 * stat where schedstat is missing.
 */
export function cpuMs(pid: number): number {
  if (SCHEDSTAT) {
    let ns = 0;
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      } catch {
        // The thread ended between the listing and the read.
      }
    }
    return ns / 1e6;
  }
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  // utime and stime are fields 14 and 15 of /proc/PID/stat, in clock ticks (100 a second here).
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** Resident set size in bytes, now and at its peak (VmHWM). */
export function rss(pid: number): { now: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)![1]) * 1024;
  return { now: kb('VmRSS'), peak: kb('VmHWM') };
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * A mesh file (in a new temporary directory) with one sidecar, 'client', whose outbound calls with
 * Host 'upstream' go to the bench upstream on 127.0.0.2; `telemetry` is the config's telemetry section.
 */
export async function clientMeshFile(mesh: string, upstream: number, telemetry: object): Promise<string> {
  const address = async () => `127.0.0.1:${await freePort()}`;
  const app = await address();
  const config = {
    mesh: { name: mesh },
    telemetry,
    services: [{ name: 'client', endpoints: [{ address: app }] }, { name: 'upstream', endpoints: [{ address: `127.0.0.2:${upstream}` }] }],
    sidecars: [{ name: 'client', service: 'client', outbound: await address(), inbound: await address(), admin: await address(), app }],
  };
  const dir = await mkdtemp(join(tmpdir(), 'faultline-bench-'));
  await writeFile(join(dir, 'mesh.yaml'), stringify(config));
  return join(dir, 'mesh.yaml');
}

/**
 * bench:cost's policies towards service `service`, reached with Host `service`: a route with retries and
 * a timeout, outlier detection on the service, one fault that matches nothing, telemetry with tracing at
 * 1 % to `otlp`. One sidecar (costMeshFile) and the pair (costPairMeshFile) both have them.
 */
function costPolicies(service: string, otlp: string) {
  return {
    telemetry: { enabled: true, tracing: { otlpEndpoint: otlp, sampleRatio: 0.01 } },
    outlierDetection: { consecutive5xx: 5 },
    routes: [
      {
        name: service,
        match: { host: service },
        destinations: [{ service }],
        timeout: '5s',
        retries: { attempts: 2, perTryTimeout: '2s', retryOn: ['5xx', 'reset', 'connect-failure'] },
      },
    ],
    faults: [{ id: 'idle', at: 'request', match: { destination: service, headers: { 'x-user': { exact: 'nobody' } } }, abort: { status: 503 } }],
  };
}

async function writeMesh(prefix: string, config: object): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  await writeFile(join(dir, 'mesh.yaml'), stringify(config));
  return join(dir, 'mesh.yaml');
}

/** bench:cost's policies, as costPolicies gives them. */
export type CostPolicies = ReturnType<typeof costPolicies>;

/**
 * bench:cost's sidecar mesh (also counted by bench:instructions --cost): route `upstream` with retries and
 * a timeout, outlier detection, one fault that matches nothing, telemetry with tracing at 1 %. `adjust`
 * changes the policies first (bench:instructions --ablate takes one away at a time).
 */
export async function costMeshFile(upstreamPort: number, otlp: string, adjust: (policies: CostPolicies) => Partial<CostPolicies> = (p) => p): Promise<string> {
  const address = async () => `127.0.0.1:${await freePort()}`;
  const app = await address();
  const { telemetry, outlierDetection, routes, faults } = adjust(costPolicies('upstream', otlp));
  return writeMesh('faultline-bench-cost-', {
    mesh: { name: 'bench-cost' },
    telemetry,
    services: [
      { name: 'client', endpoints: [{ address: app }] },
      { name: 'upstream', endpoints: [{ address: `127.0.0.2:${upstreamPort}` }], outlierDetection },
    ],
    routes,
    sidecars: [{ name: 'client', service: 'client', outbound: await address(), inbound: await address(), admin: await address(), app }],
    faults,
  });
}

/**
 * bench:cost's sidecar pair: sidecar `pair-a` (service `client`) calls service `app` with Host `app`;
 * `pair-b` fronts `app`, whose one endpoint is the upstream on 127.0.0.1:`upstreamPort`, so A dials B's
 * inbound, and B forwards to the upstream. The policies of costMeshFile, towards `app`; `mtls` the
 * mesh's mode (strict needs the sidecars under a control plane: `faultline control --config` this file).
 */
export async function costPairMeshFile(upstreamPort: number, otlp: string, mtls: 'off' | 'strict'): Promise<string> {
  const address = async () => `127.0.0.1:${await freePort()}`;
  const listeners = async () => ({ outbound: await address(), inbound: await address(), admin: await address() });
  const appA = await address();
  const upstream = `127.0.0.1:${upstreamPort}`;
  const { telemetry, outlierDetection, routes, faults } = costPolicies('app', otlp);
  return writeMesh(`faultline-bench-cost-pair-${mtls}-`, {
    mesh: { name: `bench-cost-pair-${mtls}` },
    mtls: { mode: mtls, trustDomain: 'bench.test' },
    telemetry,
    services: [
      { name: 'client', endpoints: [{ address: appA }] },
      { name: 'app', endpoints: [{ address: upstream }], outlierDetection },
    ],
    routes,
    sidecars: [
      { name: 'pair-a', service: 'client', ...(await listeners()), app: appA },
      { name: 'pair-b', service: 'app', ...(await listeners()), app: upstream },
    ],
    faults,
  });
}

/** An OTLP/HTTP trace receiver on loopback that counts the spans the sidecars export to it. */
export async function startSpanSink(): Promise<{ readonly url: string; readonly spans: () => number; close(): void }> {
  let spans = 0;
  const receiver = createHttpServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c));
    req.on('end', () => {
      spans += (body.match(/"spanId"/g) ?? []).length;
      res.end('{}');
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/v1/traces`, spans: () => spans, close: () => receiver.close() };
}
