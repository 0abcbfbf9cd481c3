// `faultline up mesh.yaml`: local staging on one machine — the control plane, one sidecar per declared
// sidecar (taking its config and faults from the control plane, as in a cluster), and the apps whose
// sidecar entry gives a `command`; waits until every app answers (an HTTP/1.1 app its `/healthz`, an
// HTTP/2 or gRPC app the HTTP/2 handshake) and every endpoint is healthy, and
// stops everything on close. A library, not a command: `faultline up`, the demo and game days call it.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { connect } from 'node:http2';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { request } from 'undici';
import { loadConfigFile } from '../config/load.ts';
import type { ServiceProtocol } from '../config/resources.ts';
import { compileSnapshot, type Snapshot } from '../config/snapshot.ts';
import { startControlledSidecar, type ControlledSidecar } from './agent.ts';
import type { GameDayLauncher } from './game-day-runs.ts';
import { startControlPlane, type RunningControlPlane } from './server.ts';
import { silentLogger, type Logger } from '../telemetry/log.ts';

export interface UpOptions {
  readonly file: string;
  /** Where the control plane listens (default 127.0.0.1:15100; port 0 for any). */
  readonly listen?: string;
  /** Where state lives: the control plane's store, each sidecar's kept snapshot, the token file. */
  readonly stateDir?: string;
  readonly token?: string;
  /** The console's read-only token (--viewer-token-file of `faultline control`). */
  readonly viewerToken?: string;
  readonly log?: Logger;
  readonly readyTimeoutMs?: number;
  /** Game days started from the console (`--experiments`): given the token file the runs call the control plane with. */
  readonly gameDays?: (tokenFile: string) => GameDayLauncher;
}

export interface Mesh {
  readonly control: RunningControlPlane;
  readonly token: string;
  readonly tokenFile: string;
  readonly snapshot: Snapshot;
  readonly sidecars: ReadonlyMap<string, ControlledSidecar>;
  /** A table of what runs where, for people. */
  table(): string;
  close(): Promise<void>;
}

export async function up(options: UpOptions): Promise<Mesh> {
  const log = options.log ?? silentLogger;
  const file = resolve(options.file);
  const snapshot = compileSnapshot((await loadConfigFile(file)).config, file);
  const stateDir = resolve(options.stateDir ?? '.faultline');
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  const token = options.token ?? randomBytes(24).toString('base64url');
  const tokenFile = join(stateDir, 'token');
  await writeFile(tokenFile, `${token}\n`, { mode: 0o600 });

  const apps = new Map<string, ChildProcess>();
  const sidecars = new Map<string, ControlledSidecar>();
  let control: RunningControlPlane | undefined;
  const close = async () => {
    // A game day started from the console halts and rolls back while its sidecars still answer.
    await control?.stopGameDays();
    await Promise.all([...sidecars.values()].map((s) => s.close()));
    await control?.close();
    await Promise.all([...apps.values()].map(stop));
  };
  try {
    control = await startControlPlane({ listen: options.listen ?? '127.0.0.1:15100', token, stateDir: join(stateDir, 'control'), configFile: file, log, ...(options.viewerToken !== undefined && { viewerToken: options.viewerToken }), ...(options.gameDays && { gameDays: options.gameDays(tokenFile) }) });
    // The schema gives every sidecar with a command an app to start.
    for (const spec of snapshot.sidecars) if (spec.command && spec.app) apps.set(spec.name, startApp(spec.command, spec.app, spec.outbound, dirname(file)));
    for (const spec of snapshot.sidecars) {
      sidecars.set(spec.name, await startControlledSidecar({ url: control.url, token, name: spec.name, stateDir: join(stateDir, 'sidecars', spec.name), log }));
    }
    const deadline = Date.now() + (options.readyTimeoutMs ?? 20_000);
    await until(async () => {
      for (const [name, app] of apps) if (app.exitCode !== null) throw new Error(`the app of sidecar ${name} exited with ${app.exitCode}`);
      const answering = await Promise.all(snapshot.sidecars.flatMap((s) => (s.command && s.app ? [answers(s.app, snapshot.services.get(s.service)!.protocol)] : [])));
      return answering.every(Boolean) && [...sidecars.values()].every((s) => s.sidecar.ready && [...s.sidecar.clusters.values()].every((c) => c.endpoints.every((e) => e.available)));
    }, deadline, 'every app to answer and every endpoint to be healthy');
  } catch (error) {
    await close();
    throw error;
  }
  const running = control;
  return {
    control: running,
    token,
    tokenFile,
    snapshot,
    sidecars,
    close,
    table: () => {
      const rows = [...sidecars.values()].map(({ sidecar }) => [sidecar.name, sidecar.spec.service, sidecar.spec.app ?? '-', sidecar.addresses.outbound ?? '-', sidecar.addresses.inbound ?? '-', sidecar.addresses.admin]);
      const header = ['sidecar', 'service', 'app', 'outbound', 'inbound', 'admin'];
      const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
      const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
      return [`control plane  ${running.url}  (token in ${tokenFile})`, '', line(header), ...rows.map(line), ''].join('\n');
    },
  };
}

/** Runs an app's command from the mesh file's directory. */
function startApp(command: readonly string[], app: string, outbound: string | undefined, cwd: string): ChildProcess {
  const [program, ...args] = command;
  return spawn(program === 'node' ? process.execPath : program!, args, {
    cwd,
    // stdin is a pipe the demo services watch: when faultline dies, however, it closes and they exit.
    stdio: ['pipe', 'ignore', 'inherit'],
    env: { ...process.env, ...(outbound !== undefined && { FAULTLINE_OUTBOUND: outbound }), PORT: app.slice(app.lastIndexOf(':') + 1) },
  });
}

async function until(probe: () => Promise<boolean>, deadline: number, what: string): Promise<void> {
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Whether the app answers: an HTTP/1.1 app its `/healthz` with 200; an HTTP/2 or gRPC app (which has no
 * `/healthz` to GET: a gRPC server refuses a call that is not gRPC) the HTTP/2 handshake, its SETTINGS.
 */
async function answers(address: string, protocol: ServiceProtocol): Promise<boolean> {
  if (protocol !== 'http1') return speaksHttp2(address);
  try {
    const response = await request(`http://${address}/healthz`, { signal: AbortSignal.timeout(500) });
    await response.body.dump();
    return response.statusCode === 200;
  } catch {
    return false;
  }
}

function speaksHttp2(address: string): Promise<boolean> {
  return new Promise((resolve) => {
    const session = connect(`http://${address}`);
    const done = (ok: boolean) => {
      clearTimeout(timer);
      session.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), 500);
    session.once('remoteSettings', () => done(true));
    session.once('error', () => done(false));
  });
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}
