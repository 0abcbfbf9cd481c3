// A real etcd for tests (Debian's etcd-server): one member or a cluster, each member on its own free
// loopback ports with a temporary data directory, healthy before the test goes on, killed and removed
// after. A member can be killed and started again on the same data, as a crashed host would come back.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { Socket, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './net.ts';

const ETCD = process.env.FAULTLINE_ETCD ?? 'etcd';

export interface EtcdMember {
  readonly name: string;
  /** "127.0.0.1:port", as the store's hosts take it. */
  readonly client: string;
  readonly running: boolean;
  /** SIGKILL (a crash) by default; resolves once the process is gone. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again on its data directory and waits until it answers. */
  start(): Promise<void>;
}

export interface EtcdCluster {
  readonly members: EtcdMember[];
  /** Every member's client address. */
  readonly hosts: string[];
  /** Kills every member and removes the data. */
  stop(): Promise<void>;
}

class Member implements EtcdMember {
  readonly name: string;
  readonly client: string;
  readonly peer: string;
  readonly #dir: string;
  readonly #cluster: string;
  readonly #token: string;
  #child: ChildProcess | undefined;
  #log = '';

  constructor(name: string, client: string, peer: string, dir: string, cluster: string, token: string) {
    this.name = name;
    this.client = client;
    this.peer = peer;
    this.#dir = dir;
    this.#cluster = cluster;
    this.#token = token;
  }

  get running(): boolean {
    return this.#child !== undefined && this.#child.exitCode === null && this.#child.signalCode === null;
  }

  /** Spawns the member; `healthy` waits for it (a cluster's first member is only healthy once a quorum is up). */
  spawn(): void {
    this.#log = '';
    const child = spawn(ETCD, [
      '--name', this.name,
      '--data-dir', join(this.#dir, this.name),
      '--listen-client-urls', `http://${this.client}`,
      '--advertise-client-urls', `http://${this.client}`,
      '--listen-peer-urls', `http://${this.peer}`,
      '--initial-advertise-peer-urls', `http://${this.peer}`,
      '--initial-cluster', this.#cluster,
      '--initial-cluster-token', this.#token,
      '--initial-cluster-state', 'new',
      '--logger', 'zap',
      '--log-level', 'error',
    ], { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr!.on('data', (d: Buffer) => (this.#log = (this.#log + d.toString()).slice(-4_000)));
    child.on('error', (error) => (this.#log += `\ncannot run ${ETCD}: ${error.message} (install Debian's etcd-server: scripts/test-setup.sh)`));
    this.#child = child;
  }

  async healthy(timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (!this.running) throw new Error(`etcd member ${this.name} exited: ${this.#log.trim() || 'no output'}`);
      try {
        const response = await fetch(`http://${this.client}/health`, { signal: AbortSignal.timeout(1_000) });
        if (((await response.json()) as { health?: string }).health === 'true') return;
      } catch {
        // Not listening yet, or no leader yet.
      }
      if (Date.now() > deadline) throw new Error(`etcd member ${this.name} not healthy after ${timeoutMs} ms: ${this.#log.trim()}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.#child;
    if (!child || !this.running) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill(signal);
    });
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.spawn();
    await this.healthy();
  }
}

/** Starts `size` members (1 or 3, say) on loopback and waits until every one is healthy. */
export async function startEtcd(size = 1): Promise<EtcdCluster> {
  const dir = await mkdtemp(join(tmpdir(), 'faultline-etcd-'));
  const ports = await Promise.all(Array.from({ length: size * 2 }, () => freePort()));
  const names = Array.from({ length: size }, (_, i) => `m${i}`);
  const cluster = names.map((name, i) => `${name}=http://127.0.0.1:${ports[2 * i + 1]}`).join(',');
  const token = `faultline-test-${process.pid}-${ports[0]}`;
  const members = names.map((name, i) => new Member(name, `127.0.0.1:${ports[2 * i]}`, `127.0.0.1:${ports[2 * i + 1]}`, dir, cluster, token));
  const stop = async (): Promise<void> => {
    await Promise.all(members.map((m) => m.kill()));
    await rm(dir, { recursive: true, force: true });
  };
  try {
    for (const member of members) member.spawn();
    await Promise.all(members.map((m) => m.healthy()));
  } catch (error) {
    await stop();
    throw error;
  }
  return { members, hosts: members.map((m) => m.client), stop };
}

/**
 * A TCP relay in front of an etcd member, which a test can cut (every connection reset, no new ones:
 * the host is down), silence (bytes dropped both ways, connections left open: a link down) and mend.
 */
export interface Relay {
  readonly address: string;
  cut(): Promise<void>;
  silence(): void;
  mend(): Promise<void>;
  close(): Promise<void>;
}

export async function startRelay(target: string): Promise<Relay> {
  const [targetHost, targetPort] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
  const port = await freePort();
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  let silent = false;
  const forward = (from: Socket, to: Socket): void => {
    from.on('data', (chunk: Buffer) => void (silent || to.write(chunk)));
    from.on('close', () => to.destroy());
  };
  const listen = (): Promise<void> =>
    new Promise((resolve, reject) => {
      server = createServer((downstream) => {
        const upstream = new Socket();
        for (const s of [downstream, upstream]) {
          sockets.add(s);
          s.on('close', () => sockets.delete(s));
          s.on('error', () => undefined);
        }
        upstream.connect(targetPort, targetHost);
        forward(downstream, upstream);
        forward(upstream, downstream);
      });
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
  const cut = async (): Promise<void> => {
    const closing = server;
    server = undefined;
    for (const s of sockets) s.resetAndDestroy();
    if (closing) await new Promise<void>((resolve) => closing.close(() => resolve()));
  };
  const mend = async (): Promise<void> => {
    if (silent) await cut();
    silent = false;
    if (!server) await listen();
  };
  await listen();
  return { address: `127.0.0.1:${port}`, cut, silence: () => void (silent = true), mend, close: cut };
}
