// A sidecar: the outbound, inbound and admin listeners of one service instance, the runtime state of
// the endpoints it balances over, and the generation (snapshot + composed stacks) in force. A new
// snapshot builds a new generation and swaps it in one assignment; requests in flight finish on theirs.
// Its parts each have one job: pools (dispatchers.ts), reloads (reload.ts), telemetry
// (sidecar-telemetry.ts), the listeners' protocol front (edge.ts), the admin API (admin.ts).
import { createServer } from 'node:http';
import type { AddressInfo, Server as NetServer, Socket } from 'node:net';
import type { SidecarIdentity } from '../identity/provider.ts';
import type { MtlsMode } from './mesh-tls.ts';
import type { SidecarSpec, Snapshot } from '../config/snapshot.ts';
import { ErrorCode, FaultlineError } from '../errors.ts';
import { EventBus } from '../telemetry/events.ts';
import type { MeshMetrics } from '../telemetry/metrics.ts';
import { silentLogger, type Logger } from '../telemetry/log.ts';
import { createAdminApp } from './admin.ts';
import { Dispatchers } from './dispatchers.ts';
import { EndpointRegistry, type Clusters } from './endpoints.ts';
import { HealthChecker } from './health.ts';
import { createEdge } from './edge.ts';
import { OutlierDetector } from './outlier.ts';
import { ConfigReloader, type ReloadResult } from './reload.ts';
import { RetryBudgets } from './retry-budget.ts';
import { Breakers } from './breaker/registry.ts';
import { SidecarTelemetry } from './sidecar-telemetry.ts';
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
  /** The control plane its runtime faults come from, when it has one: its admin API then only shows them. */
  readonly faultsFrom?: string;
}

export interface SidecarAddresses {
  /** None for a sidecar whose service calls nobody. */
  outbound: string | undefined;
  /** None for a client-only sidecar. */
  inbound: string | undefined;
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
  readonly #dispatchers: Dispatchers;
  /** mtls mode, fixed when the sidecar starts (listeners are built for it). */
  readonly mtls: MtlsMode;
  readonly identity: SidecarIdentity | undefined;
  readonly faultsFrom: string | undefined;
  readonly #health: HealthChecker;
  readonly #outlier: OutlierDetector;
  readonly #reloader: ConfigReloader;
  readonly #telemetry: SidecarTelemetry;
  readonly #servers: NetServer[] = [];
  /** Every listener of its entry is open (a client-only sidecar has no inbound one). */
  #listening = false;
  #stopEdges: (() => void) | undefined;
  #tcp = new Map<string, TcpProxy>();
  #generation: Generation;
  #appliedAt = Date.now();
  #closing: Promise<void> | undefined;
  addresses: SidecarAddresses = { outbound: '', inbound: '', admin: '' };

  private constructor(options: SidecarOptions) {
    this.spec = resolveSidecar(options.snapshot, options.name);
    this.name = this.spec.name;
    this.events = new EventBus(this.name, options.snapshot.config.telemetry.history);
    this.#log = (options.log ?? silentLogger).child({ sidecar: this.name });
    this.breakers = new Breakers(this.events);
    this.faults = new FaultTable(this.events, () => this.snapshot.config.faultInjection);
    this.mtls = options.snapshot.config.mtls.mode;
    this.identity = options.identity;
    this.faultsFrom = options.faultsFrom;
    if (this.mtls !== 'off' && !this.identity) {
      throw new FaultlineError(ErrorCode.ConfigInvalid, `mtls is ${this.mtls}: the sidecar needs an identity from the control plane (run it with --control)`);
    }
    this.#dispatchers = new Dispatchers(options.snapshot.config.mtls, this.identity);
    this.#reloader = new ConfigReloader(options.configFile, this, this.events, this.#log);
    this.#telemetry = new SidecarTelemetry(this.events, { spec: this.spec, config: options.snapshot.config.telemetry, accessLog: options.accessLog, log: this.#log }, this, this.#retryBudgets);
    this.#health = new HealthChecker(this.events, (destination) => this.faults.partitionFor(this.spec.service, destination), (service) => this.#dispatchers.for(service));
    this.#outlier = new OutlierDetector(this.events);
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
    if (options.watch) sidecar.#reloader.watch();
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

  get metrics(): MeshMetrics {
    return this.#telemetry.metrics;
  }

  /** Listening, and every health-checked endpoint has had its first check. */
  get ready(): boolean {
    return this.#listening && this.#health.settled;
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
    return this.#reloader.reload();
  }

  /** Stops listening and lets go of everything; closing twice waits for the one close. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#reloader.close();
    this.#stopEdges?.();
    await Promise.all([...this.#servers.map(closeServer), ...[...this.#tcp.values()].map((p) => p.close())]);
    this.#outlier.close();
    this.faults.close();
    await this.#telemetry.close();
    await this.#health.close();
    await this.#dispatchers.close();
  }

  #compose(snapshot: Snapshot): Generation {
    const clusters = this.#registry.reconcile(snapshot);
    this.faults.setConfigFaults(snapshot.config.faults);
    this.#dispatchers.sync(snapshot);
    this.#health.sync(clusters);
    this.#outlier.sync(clusters);
    return composeGeneration(snapshot, clusters, this.name, {
      dispatcher: (service) => this.#dispatchers.for(service),
      http2: this.#dispatchers.http2,
      outlierDetector: this.#outlier,
      retryBudgets: this.#retryBudgets,
      breakers: this.breakers,
      tracer: this.#telemetry.tracer,
      events: this.events,
      faults: this.faults,
    });
  }

  async #listen(): Promise<void> {
    const generation = () => this.#generation;
    const perRequest = this.snapshot.config.telemetry.enabled;
    const common = { sidecar: this.name, service: this.spec.service, generation, events: this.events, tracer: this.#telemetry.tracer, perRequest, limits: this.spec.listeners };
    // Both take HTTP/1.1 and HTTP/2 on one port; the inbound one is mTLS as the mesh's mode says.
    const outbound = this.spec.outbound === undefined ? undefined : createEdge({ ...common, direction: 'outbound' });
    const inbound = this.spec.inbound === undefined ? undefined : createEdge({ ...common, direction: 'inbound' }, this.mtls, this.identity);
    this.#stopEdges = () => {
      outbound?.stop();
      inbound?.stop();
    };
    const admin = createServer(createAdminApp(this, this.#log));
    this.addresses = {
      outbound: outbound && (await listen(outbound.server, this.spec.outbound!, this.#servers)),
      inbound: inbound && (await listen(inbound.server, this.spec.inbound!, this.#servers)),
      admin: await listen(admin, this.spec.admin, this.#servers),
    };
    this.#listening = true;
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
