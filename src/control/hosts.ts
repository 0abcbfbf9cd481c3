// Hosts on one Linux machine, as network namespaces (root only): one namespace per host with `lo` up
// and an `eth0` on a bridge that sits in a namespace of its own — so the machine's iptables and
// br_netfilter never see the frames, and nothing of the hosts is reachable from the machine's own
// network — with addresses from one IPv4 range. For tests, and for `faultline up --hosts N`.
import { execFile, execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { ErrorCode, FaultlineError } from '../errors.ts';

const run = promisify(execFile);

export interface HostsOptions {
  /** How many hosts (1–250). */
  readonly count: number;
  /** The IPv4 range (CIDR) their addresses come from: host i gets the range's i-th address. Default 10.213.0.0/24. */
  readonly subnet?: string;
  /**
   * What every namespace's name starts with. Default: unique to this process and call, `fl-<pid>-<n>-`.
   * Namespaces already named so (a run that died) are removed first.
   */
  readonly prefix?: string;
}

export interface Host {
  /** h1, h2, …: the host's name, also its namespace's name after the prefix. */
  readonly name: string;
  readonly namespace: string;
  /** Its address on the hosts' network (eth0). */
  readonly address: string;
}

export const DEFAULT_SUBNET = '10.213.0.0/24';
const DEFAULT_PREFIX = /^fl-(\d+)-\d+-/;
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
const IP = ['/usr/sbin/ip', '/sbin/ip', '/usr/bin/ip', '/bin/ip'].find((path) => existsSync(path)) ?? 'ip';

let created = 0;
/** Networks not yet closed: removed synchronously when the process exits or dies of a signal. */
const open = new Set<HostNetwork>();

/** Namespaces are root's: says so clearly rather than fail on the first `ip netns add`. */
export function requireRoot(uid = process.getuid?.()): void {
  if (uid !== 0) {
    throw new FaultlineError(ErrorCode.HostsNeedRoot, `hosts as network namespaces need root (ip netns add, veth, bridge); running as uid ${uid ?? 'unknown'}`);
  }
}

/** The `count` first addresses of an IPv4 range in CIDR form, checked. */
export function addressesIn(subnet: string, count: number): string[] {
  const match = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(subnet);
  const octets = match?.slice(1, 5).map(Number) ?? [];
  const bits = Number(match?.[5]);
  if (!match || octets.some((o) => o > 255) || bits < 8 || bits > 30) {
    throw new FaultlineError(ErrorCode.HostsInvalid, `subnet ${JSON.stringify(subnet)}: expected an IPv4 range such as ${DEFAULT_SUBNET} (prefix length 8–30)`);
  }
  if (!Number.isInteger(count) || count < 1 || count > Math.min(250, 2 ** (32 - bits) - 2)) {
    throw new FaultlineError(ErrorCode.HostsInvalid, `hosts: expected a whole number from 1 to ${Math.min(250, 2 ** (32 - bits) - 2)} for ${subnet}, got ${count}`);
  }
  const mask = (0xffffffff << (32 - bits)) >>> 0;
  const network = (octets.reduce((n, o) => n * 256 + o, 0) & mask) >>> 0;
  return Array.from({ length: count }, (_, i) => {
    const n = (network + i + 1) >>> 0;
    return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}/${bits}`;
  });
}

export class HostNetwork {
  readonly prefix: string;
  readonly hosts: readonly Host[];
  /** The IPv4 range, as given. */
  readonly subnet: string;
  readonly #switch: string;
  #gateway: string | undefined;
  readonly #children = new Set<ChildProcess>();
  #closing: Promise<void> | undefined;

  private constructor(prefix: string, hosts: Host[], subnet: string) {
    this.prefix = prefix;
    this.hosts = hosts;
    this.subnet = subnet;
    this.#switch = `${prefix}sw`;
  }

  /** Makes the bridge and the hosts; on any failure removes what it made and throws. */
  static async create(options: HostsOptions): Promise<HostNetwork> {
    requireRoot();
    const cidrs = addressesIn(options.subnet ?? DEFAULT_SUBNET, options.count);
    const prefix = options.prefix ?? `fl-${process.pid}-${++created}-`;
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,40}$/.test(prefix)) throw new FaultlineError(ErrorCode.HostsInvalid, `prefix ${JSON.stringify(prefix)}: letters, digits, . _ - only (at most 41)`);
    await removeLeftovers(prefix);
    const hosts = cidrs.map((cidr, i): Host => ({ name: `h${i + 1}`, namespace: `${prefix}h${i + 1}`, address: cidr.slice(0, cidr.indexOf('/')) }));
    const network = new HostNetwork(prefix, hosts, options.subnet ?? DEFAULT_SUBNET);
    open.add(network);
    installExitHooks();
    try {
      const sw = network.#switch;
      await ip('netns', 'add', sw);
      await ip('-n', sw, 'link', 'add', 'br0', 'type', 'bridge', 'forward_delay', '0');
      await ip('-n', sw, 'link', 'set', 'br0', 'up');
      for (const [i, host] of hosts.entries()) {
        await ip('netns', 'add', host.namespace);
        await ip('-n', host.namespace, 'link', 'set', 'lo', 'up');
        await ip('-n', sw, 'link', 'add', `p${i + 1}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', host.namespace);
        await ip('-n', sw, 'link', 'set', `p${i + 1}`, 'master', 'br0', 'up');
        await ip('-n', host.namespace, 'addr', 'add', cidrs[i]!, 'dev', 'eth0');
        await ip('-n', host.namespace, 'link', 'set', 'eth0', 'up');
      }
    } catch (error) {
      await network.close();
      throw error;
    }
    return network;
  }

  /**
   * Puts this machine itself on the hosts' network (a veth from its own namespace onto the bridge, with
   * the range's last address), so that an operator's commands here reach the hosts — `faultline up
   * --hosts`. Two networks on one range must not both do it. Returns the machine's address there.
   */
  async attachHere(): Promise<string> {
    if (this.#gateway) return this.#gateway;
    const match = /^(\d+)\.(\d+)\.(\d+)\.(\d+)\/(\d+)$/.exec(this.subnet)!;
    const bits = Number(match[5]);
    const network = (match.slice(1, 5).map(Number).reduce((n, o) => n * 256 + o, 0) & ((0xffffffff << (32 - bits)) >>> 0)) >>> 0;
    const last = (network + 2 ** (32 - bits) - 2) >>> 0;
    const address = `${last >>> 24}.${(last >>> 16) & 255}.${(last >>> 8) & 255}.${last & 255}`;
    // The link's name in this namespace (15 characters at most); its peer goes with the bridge's namespace.
    const link = `flgw${process.pid}`.slice(0, 15);
    await ip('link', 'add', link, 'type', 'veth', 'peer', 'name', 'gw', 'netns', this.#switch);
    await ip('-n', this.#switch, 'link', 'set', 'gw', 'master', 'br0', 'up');
    await ip('addr', 'add', `${address}/${bits}`, 'dev', link);
    await ip('link', 'set', link, 'up');
    this.#gateway = address;
    return address;
  }

  /** A host by name (h1…) or number (1…). */
  host(which: string | number): Host {
    const host = this.hosts.find((h) => h.name === (typeof which === 'number' ? `h${which}` : which));
    if (!host) throw new FaultlineError(ErrorCode.HostsInvalid, `no host ${which}: there are ${this.hosts.map((h) => h.name).join(', ')}`);
    return host;
  }

  /** Runs a command inside a host (`ip netns exec`, which execs it: the child's pid is the command's). */
  run(host: Host | string | number, command: string, args: readonly string[] = [], options: SpawnOptions = {}): ChildProcess {
    if (this.#closing) throw new FaultlineError(ErrorCode.HostsInvalid, 'the hosts are torn down');
    const child = spawn(IP, ['netns', 'exec', this.#resolve(host).namespace, command, ...args], options);
    this.#children.add(child);
    child.once('exit', () => this.#children.delete(child));
    return child;
  }

  /** Takes the host's link down: it reaches no other host and none reaches it; its own loopback still works. */
  async cut(host: Host | string | number): Promise<void> {
    await ip('-n', this.#resolve(host).namespace, 'link', 'set', 'eth0', 'down');
  }

  /** Brings the host's link back up; resolves once it is operational again. */
  async heal(host: Host | string | number): Promise<void> {
    const { namespace } = this.#resolve(host);
    await ip('-n', namespace, 'link', 'set', 'eth0', 'up');
    const deadline = Date.now() + 5_000;
    for (;;) {
      const { stdout } = await run(IP, ['-n', namespace, '-j', 'link', 'show', 'eth0']);
      if ((JSON.parse(stdout) as { operstate: string }[])[0]?.operstate === 'UP') return;
      if (Date.now() > deadline) throw new FaultlineError(ErrorCode.HostsFailed, `eth0 of ${namespace} did not come up within 5 s`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** Every namespace of this network: the hosts', then the bridge's. */
  get namespaces(): string[] {
    return [...this.hosts.map((h) => h.namespace), this.#switch];
  }

  /**
   * Stops every process inside each namespace (SIGTERM, SIGKILL after `graceMs`), then deletes the
   * namespaces. Idempotent; also done, synchronously and with SIGKILL, when the process exits.
   */
  close(graceMs = 2_000): Promise<void> {
    this.#closing ??= (async () => {
      await removeNamespaces(this.namespaces, graceMs);
      open.delete(this);
    })();
    return this.#closing;
  }

  #resolve(host: Host | string | number): Host {
    return typeof host === 'object' ? host : this.host(host);
  }
}

/** Names in `ip netns list`. */
export async function namespaceNames(): Promise<string[]> {
  const { stdout } = await run(IP, ['netns', 'list']);
  return parseList(stdout);
}

function parseList(text: string): string[] {
  return text.split('\n').map((line) => line.split(' ')[0]!).filter(Boolean);
}

/** Namespaces with this prefix (a run that died with the same one), and default-named ones whose process is gone. */
async function removeLeftovers(prefix: string): Promise<void> {
  const stale = (await namespaceNames()).filter((name) => {
    if (name.startsWith(prefix)) return true;
    const pid = DEFAULT_PREFIX.exec(name)?.[1];
    return pid !== undefined && !alive(Number(pid));
  });
  if (stale.length > 0) await removeNamespaces(stale, 500);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function removeNamespaces(names: readonly string[], graceMs: number): Promise<void> {
  const present = new Set(await namespaceNames());
  const existing = names.filter((n) => present.has(n));
  await Promise.all(existing.map((n) => signalAll(n, 'SIGTERM')));
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline && (await Promise.all(existing.map(pidsIn))).some((pids) => pids.length > 0)) {
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  await Promise.all(existing.map((n) => signalAll(n, 'SIGKILL')));
  for (const name of existing) await ip('netns', 'del', name);
}

async function pidsIn(namespace: string): Promise<number[]> {
  const { stdout } = await run(IP, ['netns', 'pids', namespace]).catch(() => ({ stdout: '' }));
  return stdout.split('\n').filter(Boolean).map(Number);
}

async function signalAll(namespace: string, signal: NodeJS.Signals): Promise<void> {
  for (const pid of await pidsIn(namespace)) kill(pid, signal);
}

function kill(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // Gone already.
  }
}

async function ip(...args: string[]): Promise<void> {
  try {
    await run(IP, args);
  } catch (error) {
    const stderr = String((error as { stderr?: string }).stderr ?? '').trim();
    throw new FaultlineError(ErrorCode.HostsFailed, `ip ${args.join(' ')}: ${stderr || (error as Error).message}`, { cause: error });
  }
}

/** At exit (or a fatal signal nobody else handles): SIGKILL everything inside and delete, synchronously. */
function removeOpenSync(): void {
  for (const network of open) {
    for (const name of network.namespaces) {
      try {
        const pids = execFileSync(IP, ['netns', 'pids', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
        for (const pid of pids.split('\n').filter(Boolean)) kill(Number(pid), 'SIGKILL');
        execFileSync(IP, ['netns', 'del', name], { stdio: 'ignore' });
      } catch {
        // Not there (any more).
      }
    }
  }
  open.clear();
}

let hooked = false;
function installExitHooks(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', removeOpenSync);
  for (const signal of SIGNALS) {
    const onSignal = () => {
      // Others listening (faultline up closing gracefully) decide when to exit; the exit hook then runs.
      if (process.listenerCount(signal) > 1) return;
      removeOpenSync();
      process.removeListener(signal, onSignal);
      process.kill(process.pid, signal);
    };
    process.on(signal, onSignal);
  }
}
