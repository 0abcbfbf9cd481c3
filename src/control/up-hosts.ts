// `faultline up --hosts N mesh.yaml`: the mesh spread over N hosts on this machine (network namespaces,
// root only) as a fleet is — a three-member etcd and a control plane on each of the first three hosts
// (sharing it), and each sidecar of the file, in turn on the next host, joining by flags with its app
// beside it, its instance registered at its host's address. The control planes serve their API over
// TLS (--tls auto: one CA, from the store), and every client trusts it through the CA file the first
// writes. This machine is put on the hosts' network, so the operator's commands here (faultline run,
// stop) reach the control planes.
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { parse, stringify } from 'yaml';
import { loadConfigFile } from '../config/load.ts';
import { compileSnapshot, type Snapshot, type SidecarSpec } from '../config/snapshot.ts';
import { ErrorCode, FaultlineError } from '../errors.ts';
import { silentLogger, type Logger } from '../telemetry/log.ts';
import { HostNetwork, type Host } from './hosts.ts';
import { CONTROL_CA_FILE, controlRequest } from '../http/control-transport.ts';

export interface HostsUpOptions {
  readonly file: string;
  readonly hosts: number;
  /** The hosts' IPv4 range (default 10.213.0.0/24). */
  readonly subnet?: string;
  readonly stateDir?: string;
  readonly token?: string;
  readonly log?: Logger;
  readonly readyTimeoutMs?: number;
}

export interface HostedMesh {
  readonly network: HostNetwork;
  /** Every control plane's URL (comma-join them for --control). */
  readonly controls: readonly string[];
  readonly token: string;
  readonly tokenFile: string;
  /** The control planes' CA bundle (give it as --control-ca, or an experiment's target.ca). */
  readonly caFile: string;
  readonly snapshot: Snapshot;
  /** Which sidecar runs on which host. */
  readonly placement: ReadonlyMap<string, Host>;
  table(): string;
  close(): Promise<void>;
}

const CLI = fileURLToPath(new URL('../cli/main.ts', import.meta.url));
const CONTROL_PORT = 15100;

export async function upOnHosts(options: HostsUpOptions): Promise<HostedMesh> {
  const log = options.log ?? silentLogger;
  const file = resolve(options.file);
  const snapshot = compileSnapshot((await loadConfigFile(file)).config, file);
  const serving = snapshot.sidecars.filter((s) => s.inbound !== undefined);
  if (snapshot.sidecars.length === 0) throw new FaultlineError(ErrorCode.ConfigInvalid, `${file} declares no sidecar to spread over the hosts`);
  const stateDir = resolve(options.stateDir ?? '.faultline');
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  const token = options.token ?? randomBytes(24).toString('base64url');
  const tokenFile = join(stateDir, 'token');
  await writeFile(tokenFile, `${token}\n`, { mode: 0o600 });

  // The file for the control planes: no sidecar entries and none of their apps as static endpoints —
  // the sidecars join by flags and their instances register themselves at their hosts' addresses.
  const raw = parse((await loadConfigFile(file)).text) as { sidecars?: unknown; services?: { endpoints?: { address?: string }[] }[] };
  const apps = new Set(snapshot.sidecars.flatMap((s) => (s.app ? [s.app] : [])));
  raw.sidecars = [];
  for (const service of raw.services ?? []) if (service.endpoints) service.endpoints = service.endpoints.filter((e) => !apps.has(e.address ?? ''));
  const fleetFile = join(stateDir, 'mesh.fleet.yaml');
  await writeFile(fleetFile, stringify(raw));

  const network = await HostNetwork.create({ count: options.hosts, ...(options.subnet && { subnet: options.subnet }) });
  const children: ChildProcess[] = [];
  const close = async () => {
    for (const child of children) child.kill('SIGTERM');
    await network.close();
  };
  const placement = new Map<string, Host>();
  try {
    await network.attachHere();
    const planes = network.hosts.slice(0, Math.min(3, network.hosts.length));
    const etcd = planes.map((host, i) => ({ host, name: `m${i}`, client: `${host.address}:2379`, peer: `http://${host.address}:2380` }));
    const cluster = etcd.map((m) => `${m.name}=${m.peer}`).join(',');
    for (const m of etcd) {
      const child = network.run(m.host, 'etcd', [
        '--name', m.name, '--data-dir', join(stateDir, 'etcd', m.name),
        '--listen-client-urls', `http://${m.client}`, '--advertise-client-urls', `http://${m.client}`,
        '--listen-peer-urls', m.peer, '--initial-advertise-peer-urls', m.peer,
        '--initial-cluster', cluster, '--initial-cluster-state', 'new', '--initial-cluster-token', `faultline-${network.prefix}`,
      ], { stdio: ['ignore', 'ignore', 'pipe'] });
      children.push(child);
      child.stderr!.resume();
    }
    const deadline = Date.now() + (options.readyTimeoutMs ?? 60_000);
    await until(async () => (await Promise.all(etcd.map((m) => healthy(`http://${m.client}/health`)))).every(Boolean), deadline, 'etcd to be healthy on every member');

    const store = `etcd://${etcd.map((m) => m.client).join(',')}/up`;
    const controls = planes.map((host) => `https://${host.address}:${CONTROL_PORT}`);
    for (const [i, host] of planes.entries()) {
      children.push(await started(network.run(host, process.execPath, [CLI, 'control', '--config', fleetFile, '--listen', `${host.address}:${CONTROL_PORT}`, '--token-file', tokenFile, '--state-dir', join(stateDir, 'control', `cp${i}`), '--store', store, '--tls', 'auto'], faultlineSpawn()), `the control plane on ${host.name}`));
    }
    // One CA on every replica (kept in the store): the first one's copy is everyone's.
    const caFile = join(stateDir, 'control', 'cp0', CONTROL_CA_FILE);
    const ca = await readFile(caFile, 'utf8');

    // Each sidecar in turn on the next host, its app beside it (started from the file's directory).
    for (const [i, spec] of snapshot.sidecars.entries()) {
      const host = network.hosts[i % network.hosts.length]!;
      placement.set(spec.name, host);
      if (spec.command && spec.app) {
        const [program, ...args] = spec.command;
        const app = network.run(host, program === 'node' ? process.execPath : program!, args, {
          cwd: dirname(file),
          stdio: ['pipe', 'ignore', 'inherit'],
          env: { ...process.env, ...(spec.outbound !== undefined && { FAULTLINE_OUTBOUND: spec.outbound }), PORT: portOf(spec.app) },
        });
        children.push(app);
      }
      children.push(await started(network.run(host, process.execPath, [CLI, 'sidecar', ...joinFlags(spec, snapshot, host, controls, tokenFile, join(stateDir, 'sidecars', spec.name)), '--control-ca', caFile], faultlineSpawn()), `sidecar ${spec.name} on ${host.name}`));
    }

    // Ready: every instance registered, every sidecar connected with the desired version applied.
    await until(async () => {
      const instances = await api<{ instances: unknown[] }>(controls[0]!, '/instances', token, ca);
      if (instances?.instances.length !== serving.length) return false;
      const views = await Promise.all(controls.map((url) => api<{ version: string; sidecars: { connected: boolean; health: string }[] }>(url, '/sidecars', token, ca)));
      const ready = views.flatMap((v) => v?.sidecars ?? []).filter((s) => s.connected && s.health === 'ready');
      return ready.length >= snapshot.sidecars.length;
    }, deadline, 'every sidecar to join and every instance to register');
    log.info({ hosts: network.hosts.map((h) => h.address), controls }, 'mesh up on hosts');
    return {
      network,
      controls,
      token,
      tokenFile,
      caFile,
      snapshot,
      placement,
      close,
      table: () => {
        const rows = snapshot.sidecars.map((s) => [s.name, s.service, placement.get(s.name)!.name, placement.get(s.name)!.address, s.inbound ? portOf(s.inbound) : '-']);
        const header = ['sidecar', 'service', 'host', 'address', 'inbound port'];
        const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
        const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
        return [
          `hosts          ${network.hosts.map((h) => `${h.name} ${h.address}`).join(', ')} (network namespaces ${network.prefix}*)`,
          `etcd           ${store}`,
          `control planes ${controls.join(',')}  (token in ${tokenFile}, CA in ${caFile})`,
          '',
          line(header),
          ...rows.map(line),
          '',
        ].join('\n');
      },
    };
  } catch (error) {
    await close();
    throw error;
  }
}

/** The flags a sidecar of the file joins with on `host`: its listeners' ports, its app, its labels. */
function joinFlags(spec: SidecarSpec, snapshot: Snapshot, host: Host, controls: readonly string[], tokenFile: string, stateDir: string): string[] {
  const labels = [...snapshot.services.get(spec.service)?.endpoints ?? []].find((e) => e.address === spec.app)?.labels ?? {};
  return [
    '--control', controls.join(','), '--token-file', tokenFile, '--service', spec.service, '--name', spec.name,
    '--admin', spec.admin, '--state-dir', stateDir,
    ...(spec.outbound ? ['--outbound', spec.outbound] : []),
    ...(spec.app && spec.inbound ? ['--app', spec.app, '--inbound', `0.0.0.0:${portOf(spec.inbound)}`, '--advertise', `${host.address}:${portOf(spec.inbound)}`] : []),
    ...(Object.keys(labels).length > 0 ? ['--labels', Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(',')] : []),
  ];
}

function portOf(address: string): string {
  return address.slice(address.lastIndexOf(':') + 1);
}

function faultlineSpawn(): { stdio: ['ignore', 'pipe', 'pipe']; env: NodeJS.ProcessEnv } {
  return { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FAULTLINE_LOG_LEVEL: process.env.FAULTLINE_LOG_LEVEL ?? 'warn' } };
}

/** Resolves once a faultline process printed its first line (it listens), or rejects with what it said when it exits first. */
function started(child: ChildProcess, what: string): Promise<ChildProcess> {
  return new Promise((resolvePromise, reject) => {
    let out = '';
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d));
    child.stdout!.on('data', (d: Buffer) => {
      out += d;
      if (out.includes('\n')) resolvePromise(child);
    });
    child.once('exit', (code) => reject(new FaultlineError(ErrorCode.HostsFailed, `${what} exited with ${code}: ${err.trim().slice(-2_000)}`)));
  });
}

async function healthy(url: string): Promise<boolean> {
  try {
    const response = await request(url, { headersTimeout: 1_000, bodyTimeout: 1_000 });
    const body = (await response.body.json()) as { health?: string };
    return response.statusCode === 200 && body.health === 'true';
  } catch {
    return false;
  }
}

async function api<T>(url: string, path: string, token: string, ca: string): Promise<T | undefined> {
  try {
    const response = await controlRequest(`${url}${path}`, { headers: { authorization: `Bearer ${token}` }, headersTimeout: 2_000, bodyTimeout: 2_000 }, ca);
    if (response.statusCode !== 200) {
      await response.body.dump();
      return undefined;
    }
    return (await response.body.json()) as T;
  } catch {
    return undefined;
  }
}

async function until(probe: () => Promise<boolean>, deadline: number, what: string): Promise<void> {
  while (!(await probe())) {
    if (Date.now() > deadline) throw new FaultlineError(ErrorCode.HostsFailed, `timed out waiting for ${what}`);
    await new Promise((resolvePromise) => setTimeout(resolvePromise, 200));
  }
}
