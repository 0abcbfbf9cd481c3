// `npm run bench:fleet`: a fleet's figures (issue 22). A control plane process (the built CLI when
// there is one; pinned to CPU 1) and, in this process (CPU 0), N simulated subscribers — each a watch
// stream of its own (GET /v1/watch, server-sent events) and an uplink of its own (POST /v1/uplink,
// NDJSON) on which it acknowledges the latest snapshot of those that arrived together; it takes
// instance deltas when only instances changed — as `faultline sidecar --control` does — and M simulated instances registering through
// PUT /v1/instances/:name under a short lease and renewing it at a third of its TTL, as a joined
// sidecar does (src/control/registration.ts). Measured:
// - registration: from each PUT until every subscriber's latest snapshot holds the instance (all M at
//   once, a fleet starting; then a few single joins with the fleet up);
// - config: from PUT /config until every subscriber received its version, and until every replica
//   says each of its subscribers applied it (GET /sidecars?health=not-ready answers none, polled);
// - clean stop: from DELETE /v1/instances/:name until no subscriber's latest snapshot holds it;
// - kill -9: from the moment an instance stops renewing until no subscriber holds it (and from its last
//   renewal, which is where its lease runs from);
// - the control plane's RSS and CPU in each phase (its own process: nothing else in it).
// `--store etcd` runs three control plane replicas on a three-member etcd (Debian's etcd-server, as the
// tests start it), the subscribers and instances spread over them; `faultline control` must take
// `--store`. `--cli FILE` runs another tree's CLI. Sizes: `--quick`, `--subscribers N` `--instances M`
// `--lease MS` (or FLEET_SUBSCRIBERS, FLEET_INSTANCES, FLEET_LEASE_MS, FLEET_STORE).
// Every wait has a deadline and the whole run stops at 5 minutes; traffic is on loopback only.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { Agent as HttpAgent, request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { spawnSync } from 'node:child_process';
import { Agent, request } from 'undici';
import { stringify } from 'yaml';
import { Processes, cpuMs, freePort, pinSelf, rss } from './processes.ts';

const TOKEN = 'bench-token';
/** How often the replicas are asked whether every subscriber acknowledged. */
const ACK_POLL_MS = 20;
/** No wait of this bench lasts longer; the whole run, no longer than RUN_DEADLINE_MS. */
const WAIT_MS = 30_000;
const RUN_DEADLINE_MS = 300_000;
const SINGLE_JOINS = 10;
const CONFIG_CHANGES = 5;
const CLEAN_STOPS = 5;
const KILLS = 5;
const STEADY_MS = 3_000;

/** Bad flags: said in one line, and no run. */
function usage(message: string): never {
  process.stderr.write(`fleet bench: ${message}\nusage: node bench/fleet.ts [--quick] [--subscribers N] [--instances M] [--lease MS] [--store file|etcd] [--cli FILE]\n`);
  process.exit(2);
}

const flags = (() => {
  try {
    return parseArgs({
      options: {
        subscribers: { type: 'string' },
        instances: { type: 'string' },
        lease: { type: 'string' },
        store: { type: 'string' },
        quick: { type: 'boolean', default: false },
        cli: { type: 'string' },
      },
    }).values;
  } catch (error) {
    return usage((error as Error).message);
  }
})();
/** The built CLI when there is one (as deployed), else the source; or another tree's (`--cli`). */
const CLI = flags.cli ?? (existsSync('dist/cli/main.js') ? 'dist/cli/main.js' : 'src/cli/main.ts');
const env = process.env;
const count = (flag: string, variable: string, min: number, max: number, fallback: number): number => {
  const text = flags[flag as 'subscribers'] ?? env[variable];
  if (text === undefined || text === '') return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < min || n > max) usage(`--${flag} (or ${variable}): a whole number from ${min} to ${max}, not "${text}"`);
  return n;
};
const SUBSCRIBERS = count('subscribers', 'FLEET_SUBSCRIBERS', 1, 10_000, flags.quick ? 100 : 1_000);
// At least 4: a quarter each for single joins, clean stops and kills (at most 10, 5 and 5).
const INSTANCES = count('instances', 'FLEET_INSTANCES', 4, 5_000, flags.quick ? 20 : 200);
// The control plane takes 1 s to 1 h; a kill is waited for at most WAIT_MS.
const LEASE_MS = count('lease', 'FLEET_LEASE_MS', 1_000, 20_000, 2_000);
const STORE = flags.store ?? env.FLEET_STORE ?? 'file';
if (STORE !== 'file' && STORE !== 'etcd') usage(`--store (or FLEET_STORE): file or etcd, not "${STORE}"`);

const deadline = setTimeout(() => {
  process.stderr.write(`fleet bench: not done after ${RUN_DEADLINE_MS / 1000} s, stopping\n`);
  void stopEverything().finally(() => process.exit(1));
}, RUN_DEADLINE_MS);
let stopEverything = async (): Promise<void> => undefined;
/** Set once the measuring is over: an ack cut short by the shutdown is no news. */
let stopping = false;

function meshConfig(round: number): object {
  return {
    mesh: { name: 'bench-fleet' },
    services: [{ name: 'svc', endpoints: [{ address: '127.0.0.1:1' }] }],
    routes: [{ name: 'r', match: { host: 'svc', headers: { 'x-round': { exact: String(round) } } }, destinations: [{ service: 'svc' }] }],
  };
}

const now = () => performance.now();

/**
 * Every subscriber's latest snapshot, and for each instance name how many subscribers' latest
 * snapshots hold it. A snapshot is parsed once per version (they are the same bytes for everyone);
 * a subscriber moving from one version to another changes the counts by their difference.
 */
class Fleet {
  readonly #names = new Map<string, Set<string>>();
  readonly #deltas = new Map<string, { added: string[]; removed: string[] }>();
  readonly #current: (string | undefined)[];
  readonly #holders = new Map<string, number>();
  readonly #reached = new Map<string, number>();
  readonly #watchers = new Set<() => void>();
  /** Names meant to leave (deleted or killed): any other that leaves a subscriber's snapshot was dropped. */
  readonly leaving = new Set<string>();
  readonly dropped = new Set<string>();
  snapshots = 0;
  /** Of the snapshots, those sent as instance deltas. */
  deltas = 0;

  constructor(size: number) {
    this.#current = new Array<string | undefined>(size);
  }

  /** Subscribers that have received `version`. */
  reached(version: string): number {
    return this.#reached.get(version) ?? 0;
  }

  holders(name: string): number {
    return this.#holders.get(name) ?? 0;
  }

  /** Subscriber `index` received `data`: the JSON of a whole snapshot, or (`delta`) of an instance delta from the state it holds. */
  received(index: number, data: string, delta = false): string {
    const version = /^\{"version":"([^"]+)"/.exec(data)?.[1] ?? (JSON.parse(data) as { version: string }).version;
    this.snapshots++;
    if (delta) this.deltas++;
    if (!this.#names.has(version)) {
      if (delta) {
        const { base, put, delete: gone } = JSON.parse(data) as { base: string; put: { name: string }[]; delete: string[] };
        const names = new Set(this.#names.get(base));
        for (const name of gone) names.delete(name);
        for (const { name } of put) names.add(name);
        this.#names.set(version, names);
      } else {
        const state = JSON.parse(data) as { instances?: { name: string }[] };
        this.#names.set(version, new Set((state.instances ?? []).map((i) => i.name)));
      }
    }
    const before = this.#current[index];
    if (before === version) return version;
    this.#current[index] = version;
    this.#reached.set(version, this.reached(version) + 1);
    const { added, removed } = this.#delta(before, version);
    for (const name of added) this.#holders.set(name, this.holders(name) + 1);
    for (const name of removed) {
      this.#holders.set(name, this.holders(name) - 1);
      if (!this.leaving.has(name)) this.dropped.add(name);
    }
    this.#changed();
    return version;
  }

  /** Resolves with the ms from `start` until `done()` holds, or Infinity after WAIT_MS. */
  until(start: number, done: () => boolean): Promise<number> {
    return new Promise((resolve) => {
      const check = () => {
        if (!done()) return;
        finish(now() - start);
      };
      const finish = (ms: number) => {
        clearTimeout(timer);
        this.#watchers.delete(check);
        resolve(ms);
      };
      const timer = setTimeout(() => finish(Infinity), WAIT_MS);
      this.#watchers.add(check);
      check();
    });
  }

  #changed(): void {
    for (const check of [...this.#watchers]) check();
  }

  #delta(from: string | undefined, to: string): { added: string[]; removed: string[] } {
    const key = `${from}>${to}`;
    let delta = this.#deltas.get(key);
    if (!delta) {
      const a = from === undefined ? new Set<string>() : this.#names.get(from)!;
      const b = this.#names.get(to)!;
      delta = { added: [...b].filter((n) => !a.has(n)), removed: [...a].filter((n) => !b.has(n)) };
      this.#deltas.set(key, delta);
    }
    return delta;
  }
}

/**
 * A simulated sidecar: its uplink (asked where to resume, then one long POST whose body it writes its
 * acks to, as a sidecar does) and its watch stream, each its own socket. Of the snapshots that arrive
 * together (one read of the socket) it acknowledges the latest alone, as a sidecar applies only the
 * latest of those that came while it was applying one.
 */
async function subscribe(base: URL, index: number, fleet: Fleet, cursors: HttpAgent): Promise<{ watch: IncomingMessage; uplink: ClientRequest }> {
  const name = `sub-${index}`;
  const headers = { authorization: `Bearer ${TOKEN}` };
  await new Promise<void>((resolve, reject) => {
    const cursor = httpRequest({ host: base.hostname, port: base.port, path: `/v1/uplink?sidecar=${name}`, headers, agent: cursors }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`uplink cursor of ${name} answered ${res.statusCode}`))));
    });
    cursor.on('error', reject);
    cursor.end();
  });
  const uplink = httpRequest({ host: base.hostname, port: base.port, path: `/v1/uplink?sidecar=${name}&requests=false`, method: 'POST', headers: { ...headers, 'content-type': 'application/x-ndjson' }, agent: false });
  uplink.on('error', (error) => void (stopping || process.stderr.write(`uplink of ${name}: ${error.message}\n`)));
  uplink.write('\n');
  const watch = await new Promise<IncomingMessage>((resolve, reject) => {
    const req = httpRequest({ host: base.hostname, port: base.port, path: `/v1/watch?sidecar=${name}&deltas=instances`, headers, agent: false }, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`watch of ${name} answered ${res.statusCode}`));
      if (res.headers['x-faultline-acks'] !== 'uplink') return reject(new Error('the control plane takes no acks on the uplink (no x-faultline-acks): a CLI from before they moved there?'));
      res.setEncoding('utf8');
      let buffer = '';
      let first = true;
      res.on('data', (chunk: string) => {
        buffer += chunk;
        let end: number;
        let latest: string | undefined;
        while ((end = buffer.indexOf('\n\n')) !== -1) {
          const message = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const delta = message.startsWith('event: delta\n');
          if (!delta && !message.startsWith('event: snapshot\n')) continue;
          latest = fleet.received(index, message.slice(message.indexOf('data: ') + 6), delta);
        }
        if (latest === undefined) return;
        uplink.write(`${JSON.stringify({ type: 'ack', version: latest, error: null, removed: [], faults: [] })}\n`);
        if (first) {
          first = false;
          resolve(res);
        }
      });
      res.on('error', () => undefined);
    });
    req.on('error', reject);
    req.end();
  });
  return { watch, uplink };
}

/**
 * Resolves with the ms from `start` until every replica answers that each of its subscribers applied
 * its current version (and that is `version`, when given), or Infinity after WAIT_MS.
 */
async function allAcknowledged(bases: readonly URL[], http: Agent, start: number, version?: string): Promise<number> {
  while (now() - start < WAIT_MS) {
    const answers = await Promise.all(bases.map(async (base) => {
      const response = await request(`${base.origin}/sidecars?health=not-ready`, { dispatcher: http, headers: { authorization: `Bearer ${TOKEN}` } });
      return (await response.body.json()) as { version: string; sidecars: unknown[] };
    }));
    const at = now();
    const versions = new Set(answers.map((a) => a.version));
    if (answers.every((a) => a.sidecars.length === 0) && versions.size === 1 && (version === undefined || versions.has(version))) return at - start;
    await new Promise((resolve) => setTimeout(resolve, ACK_POLL_MS));
  }
  return Infinity;
}

/** A simulated instance: registers on one replica and renews there at a third of its lease, until stopped. */
class Instance {
  lease: string | undefined;
  lastRenewed = 0;
  renewing = false;
  lost = 0;
  #timer: NodeJS.Timeout | undefined;
  readonly name: string;
  readonly index: number;
  readonly base: string;
  readonly http: Agent;

  constructor(name: string, index: number, base: string, http: Agent) {
    this.name = name;
    this.index = index;
    this.base = base;
    this.http = http;
  }

  async register(): Promise<void> {
    const response = await request(`${this.base}/v1/instances/${this.name}`, {
      method: 'PUT',
      dispatcher: this.http,
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ service: 'app', address: `127.0.0.1:${20_000 + this.index}`, labels: { version: this.index % 5 === 0 ? 'v2' : 'v1' }, ttl: `${LEASE_MS}ms` }),
      headersTimeout: WAIT_MS,
      bodyTimeout: WAIT_MS,
    });
    const body = (await response.body.json()) as { lease?: { id: string }; error?: string };
    if (response.statusCode !== 200 || !body.lease) throw new Error(`registration of ${this.name} answered ${response.statusCode}: ${body.error ?? ''}`);
    this.lease = body.lease.id;
    this.lastRenewed = now();
  }

  startRenewing(): void {
    this.renewing = true;
    this.#schedule();
  }

  /** Its sidecar dies without a word: no renewal after this. */
  stopRenewing(): void {
    this.renewing = false;
    clearTimeout(this.#timer);
  }

  async deregister(): Promise<void> {
    this.stopRenewing();
    const response = await request(`${this.base}/v1/instances/${this.name}`, { method: 'DELETE', dispatcher: this.http, headers: { authorization: `Bearer ${TOKEN}` }, headersTimeout: WAIT_MS, bodyTimeout: WAIT_MS });
    await response.body.dump();
    if (response.statusCode !== 204) throw new Error(`DELETE of ${this.name} answered ${response.statusCode}`);
  }

  #schedule(): void {
    if (!this.renewing) return;
    this.#timer = setTimeout(() => void this.#renew().finally(() => this.#schedule()), LEASE_MS / 3);
  }

  async #renew(): Promise<void> {
    const sent = now();
    try {
      const response = await request(`${this.base}/v1/instances/${this.name}/renew`, {
        method: 'POST',
        dispatcher: this.http,
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ lease: this.lease }),
        headersTimeout: LEASE_MS,
        bodyTimeout: LEASE_MS,
      });
      await response.body.dump();
      // Its lease runs from about when the renewal was sent, even one that was under way when it stopped.
      if (response.statusCode === 204) this.lastRenewed = sent;
      if (!this.renewing) return;
      if (response.statusCode === 404) {
        // The lease ended while it was renewing (the control plane answered too late): as a sidecar does, register again.
        this.lost++;
        await this.register();
      }
    } catch (error) {
      process.stderr.write(`renewal of ${this.name}: ${(error as Error).message}\n`);
    }
  }
}

interface Phase {
  name: string;
  wallMs: number;
  cpuMs: number[];
  rss: { now: number; peak: number }[];
  /** This process's CPU (the subscribers and instances): near a whole core, its own delays are in the figures. */
  benchCpuMs: number;
  /** The etcd members' CPU, all together (etcd variant). */
  etcdCpuMs: number;
}

/** This process's etcd children (the test helper's members), found in /proc. */
function etcdPids(): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (comm === 'etcd' && ppid === process.pid) found.push(Number(entry));
    } catch {
      // Gone meanwhile.
    }
  }
  return found;
}

/** Runs `body` and records the control plane processes' CPU and RSS over it (and this process's, and etcd's). */
async function phase<T>(phases: Phase[], name: string, pids: number[], body: () => Promise<T>): Promise<T> {
  const etcd = etcdPids();
  const cpuOf = (list: number[]) => list.reduce((sum, pid) => sum + cpuMs(pid), 0);
  const start = now();
  const cpu = pids.map(cpuMs);
  const bench = process.cpuUsage();
  const etcdCpu = cpuOf(etcd);
  const result = await body();
  const used = process.cpuUsage(bench);
  phases.push({ name, wallMs: now() - start, cpuMs: pids.map((pid, i) => cpuMs(pid) - cpu[i]!), rss: pids.map(rss), benchCpuMs: (used.user + used.system) / 1000, etcdCpuMs: cpuOf(etcd) - etcdCpu });
  return result;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

async function main(): Promise<void> {
  const processes = new Processes();
  const pinning = pinSelf();
  const dir = await mkdtemp(join(tmpdir(), 'faultline-bench-fleet-'));
  await writeFile(join(dir, 'mesh.yaml'), stringify(meshConfig(0)));
  await writeFile(join(dir, 'token'), TOKEN);
  let etcd: { hosts: string[]; stop(): Promise<void> } | undefined;
  const cursors = new HttpAgent({ keepAlive: true, maxSockets: 64 });
  // As many connections as instances want (each real one has its own): a PUT's time is not spent queued here.
  const http = new Agent();
  const sockets: { watch: IncomingMessage; uplink: ClientRequest }[] = [];
  const instances: Instance[] = [];
  stopEverything = async () => {
    stopping = true;
    for (const instance of instances) instance.stopRenewing();
    for (const { watch, uplink } of sockets) {
      watch.destroy();
      uplink.destroy();
    }
    cursors.destroy();
    await http.close().catch(() => undefined);
    await processes.stopAll();
    await etcd?.stop();
    await rm(dir, { recursive: true, force: true });
  };
  try {
    let replicas = 1;
    const storeArgs: string[][] = [[]];
    if (STORE === 'etcd') {
      const help = spawnSync(process.execPath, [CLI, 'control', '--help'], { encoding: 'utf8' });
      if (!help.stdout.includes('--store')) throw new Error('`faultline control` takes no --store yet: the etcd variant needs it');
      const { startEtcd } = await import('../test/helpers/etcd.ts');
      etcd = await startEtcd(3);
      replicas = 3;
      const spec = `etcd://${etcd.hosts.join(',')}/bench-fleet-${process.pid}`;
      storeArgs.length = 0;
      for (let r = 0; r < replicas; r++) storeArgs.push(['--store', spec]);
    }
    const bases: URL[] = [];
    for (let r = 0; r < replicas; r++) {
      const port = await freePort();
      // Only the first replica takes the file; the others read it from the shared store.
      const config = r === 0 ? ['--config', join(dir, 'mesh.yaml')] : [];
      const line = await processes.start(`control-${r}`, [CLI, 'control', ...config, '--listen', `127.0.0.1:${port}`, '--token-file', join(dir, 'token'), '--state-dir', join(dir, `state-${r}`), ...storeArgs[r]!], { FAULTLINE_LOG_LEVEL: 'warn' }, 1);
      bases.push(new URL((JSON.parse(line) as { control: string }).control));
    }
    const pids = bases.map((_, r) => processes.pid(`control-${r}`));
    const idle = pids.map(rss);
    const fleet = new Fleet(SUBSCRIBERS);
    const phases: Phase[] = [];

    // Subscribers, 100 at a time, spread over the replicas.
    await phase(phases, `${SUBSCRIBERS} subscribers connect`, pids, async () => {
      for (let i = 0; i < SUBSCRIBERS; i += 100) {
        sockets.push(...(await Promise.all(Array.from({ length: Math.min(100, SUBSCRIBERS - i) }, (_, j) => subscribe(bases[(i + j) % replicas]!, i + j, fleet, cursors)))));
      }
    });

    const singles = Math.min(SINGLE_JOINS, Math.floor(INSTANCES / 4));
    const burstSize = INSTANCES - singles;
    for (let i = 0; i < INSTANCES; i++) instances.push(new Instance(`inst-${i}`, i, bases[i % replicas]!.origin, http));
    const all = (name: string) => () => fleet.holders(name) === SUBSCRIBERS;
    const none = (name: string) => () => fleet.holders(name) === 0;

    // A fleet starting: every instance's PUT at once; each timed until every subscriber holds it.
    // `answered`: until its PUT was answered (the store has it); the rest is the way out to every subscriber.
    const answered: number[] = [];
    const burst = await phase(phases, `${burstSize} instances register at once`, pids, () => Promise.all(instances.slice(0, burstSize).map(async (instance) => {
      const start = now();
      const seen = fleet.until(start, all(instance.name));
      await instance.register();
      answered.push(now() - start);
      instance.startRenewing();
      return seen;
    })));

    // Joins one at a time, with the fleet up and renewing.
    const single: number[] = [];
    await phase(phases, `${singles} single joins`, pids, async () => {
      for (const instance of instances.slice(burstSize)) {
        const start = now();
        const seen = fleet.until(start, all(instance.name));
        await instance.register();
        answered.push(now() - start);
        instance.startRenewing();
        single.push(await seen);
      }
    });

    // Every subscriber's ack of the last of the joins' states is taken first.
    const settled = await allAcknowledged(bases, http, now());

    // Nothing changing: what the fleet costs the control plane at rest (its renewals, the watch streams).
    await phase(phases, `steady: ${INSTANCES} renewing, nothing changing`, pids, () => new Promise((resolve) => setTimeout(resolve, STEADY_MS)));

    // Config changes, with every instance in every snapshot: until every subscriber has it, and has acked it.
    const config: { received: number; acked: number }[] = [];
    await phase(phases, `${CONFIG_CHANGES} config changes`, pids, async () => {
      for (let round = 1; round <= CONFIG_CHANGES; round++) {
        const start = now();
        const response = await request(`${bases[0]!.origin}/config`, { method: 'PUT', dispatcher: http, headers: { authorization: `Bearer ${TOKEN}` }, body: stringify(meshConfig(round)) });
        const { version } = (await response.body.json()) as { version: string };
        if (response.statusCode !== 200) throw new Error(`PUT /config answered ${response.statusCode}`);
        const acked = allAcknowledged(bases, http, start, version);
        const received = await fleet.until(start, () => fleet.reached(version) >= SUBSCRIBERS);
        config.push({ received, acked: await acked });
      }
    });

    // Clean stops, one at a time.
    // Only instances every subscriber holds now (one whose lease ended under load is being registered again).
    const held = instances.slice(0, burstSize).filter((i) => fleet.holders(i.name) === SUBSCRIBERS);
    const stops = Math.min(CLEAN_STOPS, Math.floor(INSTANCES / 4), Math.floor(held.length / 2));
    const clean: number[] = [];
    await phase(phases, `${stops} clean stops`, pids, async () => {
      for (const instance of held.slice(0, stops)) {
        fleet.leaving.add(instance.name);
        const start = now();
        const gone = fleet.until(start, none(instance.name));
        await instance.deregister();
        clean.push(await gone);
      }
    });

    // kill -9: renewals stop, spread over one renewal interval so that each dies at another point of its cycle.
    const kills = Math.min(KILLS, Math.floor(INSTANCES / 4), held.length - stops);
    const killed = held.slice(stops, stops + kills);
    const deaths = await phase(phases, `${kills} killed (lease ${LEASE_MS} ms)`, pids, () => Promise.all(killed.map(async (instance, k) => {
      await new Promise((resolve) => setTimeout(resolve, (k * LEASE_MS) / 3 / kills));
      fleet.leaving.add(instance.name);
      const start = now();
      instance.stopRenewing();
      const ms = await fleet.until(start, none(instance.name));
      return { ms, sinceRenewal: start + ms - instance.lastRenewed };
    })));
    const lost = instances.reduce((sum, i) => sum + i.lost, 0);
    const dropped = [...fleet.dropped];
    const end = pids.map(rss);

    // The report.
    const sorted = (list: number[]) => [...list].sort((a, b) => a - b);
    const f = (ms: number) => (Number.isFinite(ms) ? ms.toFixed(0) : `> ${WAIT_MS}`);
    const stats = (list: number[]) => {
      if (list.length === 0) return 'none';
      const s = sorted(list);
      return `p50 ${f(percentile(s, 50))}, p99 ${f(percentile(s, 99))}, max ${f(s.at(-1)!)} ms`;
    };
    const mib = (bytes: number) => (bytes / 1024 / 1024).toFixed(0);
    const verdict = (ok: boolean) => (ok ? 'met' : '**NOT met**');
    const burstS = sorted(burst);
    const joined = sorted([...burst, ...single]);
    const killS = sorted(deaths.map((d) => d.ms));
    const killWorst = killS.at(-1) ?? Infinity;
    const out: string[] = [];
    out.push(`node ${process.version}, ${cpus().length} cores; store: ${STORE === 'etcd' ? `etcd, 3 members; ${replicas} control plane replicas` : 'file, one control plane'}; ` +
      `${SUBSCRIBERS} simulated subscribers (one watch socket and one uplink socket each, acks on the uplink${replicas > 1 ? '; spread over the replicas' : ''}), ` +
      `${INSTANCES} simulated instances (lease ${LEASE_MS} ms, renewed every ${(LEASE_MS / 3).toFixed(0)} ms); ${pinning}`);
    out.push('');
    out.push('| measure | value | target | |');
    out.push('|---|---|---|---|');
    out.push(`| registration → all ${SUBSCRIBERS} subscribers hold it: ${burstSize} at once | ${stats(burst)} | p99 ≤ 1,000 ms | ${verdict(percentile(burstS, 99) <= 1_000)} |`);
    out.push(`| … ${single.length} single joins, the fleet up | ${stats(single)} | p99 ≤ 1,000 ms | ${verdict(single.length === 0 || percentile(sorted(single), 99) <= 1_000)} |`);
    out.push(`| … all ${joined.length} | ${stats(joined)} | p99 ≤ 1,000 ms | ${verdict(percentile(joined, 99) <= 1_000)} |`);
    out.push(`| … of which until its PUT was answered (all ${answered.length}) | ${stats(answered)} | | |`);
    out.push(`| after the joins, until every replica says every subscriber applied the last | ${f(settled)} ms | | |`);
    out.push(`| PUT /config → all ${SUBSCRIBERS} acknowledged (each change) | ${config.map((c) => f(c.acked)).join(', ')} ms | ≤ 1,000 ms | ${verdict(Math.max(...config.map((c) => c.acked)) <= 1_000)} |`);
    out.push(`| … → all ${SUBSCRIBERS} received it | ${config.map((c) => f(c.received)).join(', ')} ms | | |`);
    out.push(`| DELETE (clean stop) → no subscriber holds it | ${clean.map(f).join(', ')} ms | at once | |`);
    out.push(`| kill -9 (renewals stop) → no subscriber holds it | ${killS.map(f).join(', ')} ms (${killS.map((ms) => (ms / LEASE_MS).toFixed(2)).join(', ')} × lease) | ≤ lease + 1 s = ${LEASE_MS + 1_000} ms | ${verdict(killWorst <= LEASE_MS + 1_000)} |`);
    out.push(`| … from its last renewal (where the lease runs from) | ${sorted(deaths.map((d) => d.sinceRenewal)).map(f).join(', ')} ms | | |`);
    out.push(`| instances dropped while renewing; renewals refused (lease ended) | ${dropped.length}${dropped.length ? ` (${dropped.slice(0, 5).join(', ')})` : ''}; ${lost} | 0; 0 | ${verdict(dropped.length === 0 && lost === 0)} |`);
    out.push(`| snapshots received by the subscribers | ${fleet.snapshots} (${(fleet.snapshots / SUBSCRIBERS).toFixed(1)} each; ${fleet.deltas} of them instance deltas) | | |`);
    out.push('');
    const who = (r: number) => (replicas > 1 ? `replica ${r}: ` : '');
    out.push(`Control plane RSS: idle ${pids.map((_, r) => `${who(r)}${mib(idle[r]!.now)}`).join(', ')} MiB; at the end ${pids.map((_, r) => `${who(r)}${mib(end[r]!.now)} (peak ${mib(end[r]!.peak)})`).join(', ')} MiB.`);
    out.push('');
    const share = (cpu: number, p: Phase) => `${((100 * cpu) / p.wallMs).toFixed(0)} %`;
    const withEtcd = etcd !== undefined;
    out.push(`| phase | wall | control plane CPU${replicas > 1 ? ' (all replicas)' : ''}, % of a core | RSS after${replicas > 1 ? ' (each replica)' : ''} | bench CPU${withEtcd ? ' | etcd CPU (3 members)' : ''} |`);
    out.push(`|---|---:|---|---|---:|${withEtcd ? '---:|' : ''}`);
    for (const p of phases) {
      const total = p.cpuMs.reduce((a, b) => a + b, 0);
      const each = replicas > 1 ? ` (${p.cpuMs.map((c) => (c / 1000).toFixed(1)).join(' + ')})` : '';
      out.push(`| ${p.name} | ${(p.wallMs / 1000).toFixed(1)} s | ${(total / 1000).toFixed(1)} s${each}, ${share(total, p)} | ${p.rss.map((m) => mib(m.now)).join(' / ')} MiB | ${share(p.benchCpuMs, p)} |${withEtcd ? ` ${share(p.etcdCpuMs, p)} |` : ''}`);
    }
    out.push('');
    process.stdout.write(`${out.join('\n')}\n`);
  } finally {
    clearTimeout(deadline);
    await stopEverything();
  }
}

await main().then(
  () => process.exit(0),
  (error: Error) => {
    process.stderr.write(`fleet bench: ${error.message}\n`);
    process.exit(1);
  },
);
