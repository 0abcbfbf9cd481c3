// A sidecar: the outbound, inbound and admin listeners of one service instance, the runtime state of
// the endpoints it balances over, and the generation (snapshot + composed stacks) in force. A reload
// builds a new generation and swaps it in one assignment; requests in flight finish on theirs.
import { watch, type FSWatcher } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import type { SidecarIdentity } from '../identity/provider.ts';
import { spiffeId } from '../identity/spiffe.ts';
import { meshConnector, serverTlsOptions, type MtlsMode } from './mesh-tls.ts';
import { basename, dirname } from 'node:path';
import { Agent } from 'undici';
import { loadConfigFile } from '../config/load.ts';
import { compileSnapshot, type SidecarSpec, type Snapshot } from '../config/snapshot.ts';
import { ErrorCode, FaultlineError, describe } from '../errors.ts';
import { openAccessLog, type AccessLog } from '../telemetry/access-log.ts';
import { EventBus } from '../telemetry/events.ts';
import { MeshMetrics } from '../telemetry/metrics.ts';
import { MeshTracer } from '../telemetry/tracing.ts';
import { silentLogger, type Logger } from '../telemetry/log.ts';
import { createAdminApp } from './admin.ts';
import { EndpointRegistry, type Clusters } from './endpoints.ts';
import { HealthChecker } from './health.ts';
import { createListener, type ListenerOptions } from './listener.ts';
import { OutlierDetector } from './outlier.ts';
import { RetryBudgets } from './retry-budget.ts';
import { Breakers } from './breaker/registry.ts';
import { composeGeneration, type Generation } from './stack.ts';
import { FaultTable } from '../faults/table.ts';
import { startTcpListeners } from './tcp/listeners.ts';
import type { TcpProxy } from './tcp/proxy.ts';

export interface SidecarOptions {
  /** The sidecar's name in the config, or its service's when that is unambiguous. */
  readonly name: string;
  readonly snapshot: Snapshot;
  /** The config file, for reloads (SIGHUP, `reload()`, or watching when `watch` is set). */
  readonly configFile?: string;
  readonly watch?: boolean;
  readonly log?: Logger;
  /** Write an access log line per request to this file, or to stdout with '-'. */
  readonly accessLog?: string;
  /** Its mesh identity (from the control plane's CA), needed when the config's mtls mode is not off. */
  readonly identity?: SidecarIdentity;
}

export type ReloadResult = { ok: true; version: string; changed: boolean } | { ok: false; error: string };

export interface SidecarAddresses {
  outbound: string;
  inbound: string;
  admin: string;
  /** tcp listeners by name, when the sidecar has any. */
  tcp?: Record<string, string>;
}

export class Sidecar {
  readonly name: string;
  readonly spec: SidecarSpec;
  readonly events: EventBus;
  readonly #log: Logger;
  readonly #registry = new EndpointRegistry();
  readonly #retryBudgets = new RetryBudgets();
  readonly breakers: Breakers;
  /** Faults in force: the config's and runtime ones (admin API), under leases. */
  readonly faults: FaultTable;
  /** Pools for plain calls, and under mTLS one per destination service (each requires that service's identity). */
  readonly #dispatchers = new Map<string, Agent>();
  /** mtls mode, fixed when the sidecar starts (listeners are built for it). */
  readonly mtls: MtlsMode;
  /** Trust domain and namespace of the mesh's identities, fixed at start with the mode. */
  readonly #mtlsIdentity: { readonly trustDomain: string; readonly namespace: string };
  readonly identity: SidecarIdentity | undefined;
  /** Inbound addresses of the sidecars that front endpoints: reached over mTLS when it is on. */
  #meshAddresses = new Set<string>();
  #offRotate: (() => void) | undefined;
  readonly #health: HealthChecker;
  readonly #outlier: OutlierDetector;
  readonly #configFile: string | undefined;
  readonly #servers: NetServer[] = [];
  #tcp = new Map<string, TcpProxy>();
  #generation: Generation;
  #appliedAt = Date.now();
  #watcher: FSWatcher | undefined;
  #reloading: Promise<ReloadResult> | undefined;
  readonly #accessLog: AccessLog | undefined;
  readonly metrics: MeshMetrics;
  /** Tracing is set up from the config the sidecar starts with; a reload does not change it. */
  readonly #tracer: MeshTracer | undefined;
  #closing: Promise<void> | undefined;
  addresses: SidecarAddresses = { outbound: '', inbound: '', admin: '' };

  private constructor(options: SidecarOptions) {
    this.spec = resolveSidecar(options.snapshot, options.name);
    this.name = this.spec.name;
    this.events = new EventBus(this.name, options.snapshot.config.telemetry.history);
    this.#log = (options.log ?? silentLogger).child({ sidecar: this.name });
    this.#configFile = options.configFile;
    this.breakers = new Breakers(this.events);
    this.faults = new FaultTable(this.events, () => this.snapshot.config.faultInjection);
    this.mtls = options.snapshot.config.mtls.mode;
    this.#mtlsIdentity = options.snapshot.config.mtls;
    this.identity = options.identity;
    if (this.mtls !== 'off' && !this.identity) {
      throw new FaultlineError(ErrorCode.ConfigInvalid, `mtls is ${this.mtls}: the sidecar needs an identity from the control plane (run it with --control)`);
    }
    this.#accessLog = options.accessLog ? openAccessLog(this.events, options.accessLog) : undefined;
    const { enabled, tracing } = options.snapshot.config.telemetry;
    this.#tracer = enabled && tracing ? new MeshTracer(this.spec.service, this.name, tracing) : undefined;
    this.metrics = new MeshMetrics(this.events, this.spec.service, {
      endpoints: () => [...this.clusters.values()].flatMap((c) =>
        c.endpoints.map((e) => ({ service: c.name, endpoint: e.address, healthy: e.health.status !== 'unhealthy', ejected: e.outlier.ejected }))),
      breakers: () => this.breakers.all().map((b) => ({ service: b.service, subset: b.subset, state: b.state })),
      retryBudgets: () => [...this.#retryBudgets.entries()].map(([route, budget]) => ({ route, remaining: budget.totals().remaining })),
      configVersion: () => this.snapshot.version,
      faults: () => this.faults.all().map((f) => ({ id: f.id, action: f.actionName, origin: f.origin })),
    });
    this.#health = new HealthChecker(this.events, (destination) => this.faults.partitionFor(this.spec.service, destination), (service) => this.#dispatcherFor(service));
    this.#outlier = new OutlierDetector(this.events);
    this.events.on('health.changed', (e) => this.#log.info(e, `endpoint ${e.healthy ? 'healthy' : 'unhealthy'}`));
    this.events.on('outlier.ejected', (e) => this.#log.warn(e, 'endpoint ejected'));
    this.events.on('outlier.restored', (e) => this.#log.info(e, 'endpoint restored'));
    this.events.on('breaker.state', (e) => this.#log.warn(e, `circuit ${e.to}`));
    this.#generation = this.#compose(options.snapshot);
  }

  static async start(options: SidecarOptions): Promise<Sidecar> {
    const sidecar = new Sidecar(options);
    try {
      await sidecar.#listen();
    } catch (error) {
      await sidecar.close();
      throw error;
    }
    if (options.watch && options.configFile) sidecar.#watch(options.configFile);
    sidecar.#log.info({ addresses: sidecar.addresses, version: sidecar.snapshot.version }, 'sidecar started');
    return sidecar;
  }

  get snapshot(): Snapshot {
    return this.#generation.snapshot;
  }

  get clusters(): Clusters {
    return this.#generation.clusters;
  }

  get appliedAt(): number {
    return this.#appliedAt;
  }

  /** Listening, and every health-checked endpoint has had its first check. */
  get ready(): boolean {
    return this.#servers.length === 3 && this.#health.settled;
  }

  /** Swaps in a new snapshot. Throws, changing nothing, when the snapshot has no entry for this sidecar. */
  apply(snapshot: Snapshot): void {
    const spec = resolveSidecar(snapshot, this.name);
    const moved = (['outbound', 'inbound', 'admin'] as const).filter((k) => spec[k] !== this.spec[k]);
    if (moved.length > 0) this.#log.warn({ moved }, 'listener addresses changed in config; they take effect on restart');
    this.#generation = this.#compose(snapshot);
    this.#appliedAt = Date.now();
    this.events.emit('config.applied', { version: snapshot.version, source: snapshot.source });
    this.#log.info({ version: snapshot.version }, 'config applied');
  }

  /** Re-reads the config file; a bad file is refused and the snapshot in force stays. */
  reload(): Promise<ReloadResult> {
    this.#reloading ??= this.#reload().finally(() => (this.#reloading = undefined));
    return this.#reloading;
  }

  /** Stops listening and lets go of everything; closing twice waits for the one close. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#watcher?.close();
    this.#offRotate?.();
    await Promise.all([...this.#servers.map(closeServer), ...[...this.#tcp.values()].map((p) => p.close())]);
    this.#outlier.close();
    this.faults.close();
    this.metrics.close();
    await this.#accessLog?.close();
    await this.#tracer?.close();
    await this.#health.close();
    await Promise.all([...this.#dispatchers.values()].map((d) => d.destroy()));
  }

  #compose(snapshot: Snapshot): Generation {
    const clusters = this.#registry.reconcile(snapshot);
    this.faults.setConfigFaults(snapshot.config.faults);
    this.#meshAddresses = new Set(this.mtls === 'off' ? [] : [...snapshot.services.values()].flatMap((s) => s.endpoints.filter((e) => e.sidecar).map((e) => e.dial)));
    this.#health.sync(clusters);
    this.#outlier.sync(clusters);
    return composeGeneration(snapshot, clusters, this.name, {
      dispatcher: (service) => this.#dispatcherFor(service),
      outlierDetector: this.#outlier,
      retryBudgets: this.#retryBudgets,
      breakers: this.breakers,
      tracer: this.#tracer,
      events: this.events,
      faults: this.faults,
    });
  }

  async #reload(): Promise<ReloadResult> {
    const source = this.#configFile;
    if (!source) return { ok: false, error: 'this sidecar was not started from a config file' };
    try {
      const loaded = await loadConfigFile(source);
      const snapshot = compileSnapshot(loaded.config, source);
      if (snapshot.version === this.snapshot.version) return { ok: true, version: snapshot.version, changed: false };
      this.apply(snapshot);
      return { ok: true, version: snapshot.version, changed: true };
    } catch (error) {
      const message = error instanceof Error ? error.message : describe(error);
      this.#log.error({ source, error: message }, 'config refused; the snapshot in force stays');
      this.events.emit('config.rejected', { source, error: message });
      return { ok: false, error: message };
    }
  }

  #watch(file: string): void {
    let debounce: NodeJS.Timeout | undefined;
    // Watch the directory: editors and `mv` replace the file, which ends a watch on the file itself.
    this.#watcher = watch(dirname(file), (_event, name) => {
      if (name !== basename(file)) return;
      clearTimeout(debounce);
      debounce = setTimeout(() => void this.reload(), 100);
    });
    this.#watcher.unref();
  }

  /**
   * The pool for calls to `service`. With mtls off, one plain pool for all. With mtls on, one per
   * service, whose connections to a peer sidecar are mTLS and require that sidecar to present the
   * service's own SPIFFE ID — an endpoint listed under a service but fronted by another's sidecar is
   * refused (UF) rather than trusted.
   */
  #dispatcherFor(service: string | undefined): Agent {
    const key = this.mtls === 'off' || service === undefined ? '' : service;
    let agent = this.#dispatchers.get(key);
    if (!agent) {
      const { trustDomain, namespace } = this.#mtlsIdentity;
      const want = key ? spiffeId(trustDomain, namespace, key) : undefined;
      const connect = meshConnector(() => this.identity?.current, (address) => (want && this.#meshAddresses.has(address) ? want : undefined));
      agent = new Agent({ keepAliveTimeout: 4_000, headersTimeout: 0, bodyTimeout: 0, connect });
      this.#dispatchers.set(key, agent);
    }
    return agent;
  }

  /**
   * The inbound listener for the mtls mode: plain HTTP (off), HTTPS with client certificates required
   * (strict), or a front that looks at each connection's first byte and hands TLS (a handshake starts
   * with 0x16) to the HTTPS server and anything else to the plain one (permissive). A renewed
   * certificate replaces the secure context in place: connections already up keep theirs.
   */
  #inboundServer(options: ListenerOptions): NetServer {
    if (this.mtls === 'off') return createListener(options);
    const identity = this.identity!;
    const secure = createListener(options, serverTlsOptions(identity.current)) as HttpsServer;
    this.#offRotate = identity.onRotate((next) => secure.setSecureContext(serverTlsOptions(next)));
    if (this.mtls === 'strict') return secure;
    const plain = createListener(options);
    return createNetServer((socket) => {
      socket.once('data', (first: Buffer) => {
        socket.pause();
        socket.unshift(first);
        (first[0] === 0x16 ? secure : plain).emit('connection', socket);
        process.nextTick(() => socket.resume());
      });
    });
  }

  async #listen(): Promise<void> {
    const generation = () => this.#generation;
    const perRequest = this.snapshot.config.telemetry.enabled;
    const common = { sidecar: this.name, service: this.spec.service, generation, events: this.events, tracer: this.#tracer, perRequest };
    const outbound = createListener({ ...common, direction: 'outbound' });
    const inbound = this.#inboundServer({ ...common, direction: 'inbound' });
    const admin = createServer(createAdminApp(this));
    this.addresses = {
      outbound: await listen(outbound, this.spec.outbound, this.#servers),
      inbound: await listen(inbound, this.spec.inbound, this.#servers),
      admin: await listen(admin, this.spec.admin, this.#servers),
    };
    if (this.spec.tcp.length > 0) {
      this.#tcp = await startTcpListeners(this.spec.tcp, this.faults, this.events, this.spec.service);
      this.addresses.tcp = Object.fromEntries([...this.#tcp].map(([name, proxy]) => [name, proxy.address]));
    }
  }
}

export function resolveSidecar(snapshot: Snapshot, name: string): SidecarSpec {
  const byName = snapshot.sidecars.find((s) => s.name === name);
  if (byName) return byName;
  const byService = snapshot.sidecars.filter((s) => s.service === name);
  if (byService.length === 1) return byService[0]!;
  const known = snapshot.sidecars.map((s) => s.name).join(', ') || 'none';
  throw new FaultlineError(
    ErrorCode.SidecarUnknown,
    byService.length > 1
      ? `service "${name}" has ${byService.length} sidecars; name one: ${byService.map((s) => s.name).join(', ')}`
      : `no sidecar "${name}" in ${snapshot.source} (sidecars: ${known})`,
  );
}

/** Closes a server and every connection it holds, upgraded (tunnelled) ones included. */
function closeServer(server: NetServer): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    for (const socket of openSockets.get(server) ?? []) socket.destroy();
  });
}

const openSockets = new WeakMap<NetServer, Set<Socket>>();

function listen(server: NetServer, address: string, servers: NetServer[]): Promise<string> {
  const sockets = new Set<Socket>();
  openSockets.set(server, sockets);
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  const colon = address.lastIndexOf(':');
  const host = address.slice(0, colon).replace(/^\[|\]$/g, '');
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(Number(address.slice(colon + 1)), host, () => {
      server.off('error', reject);
      servers.push(server);
      const bound = server.address() as AddressInfo;
      resolve(bound.family === 'IPv6' ? `[${bound.address}]:${bound.port}` : `${bound.address}:${bound.port}`);
    });
  });
}
