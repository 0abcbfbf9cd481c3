// A sidecar run by the control plane (`faultline sidecar --control URL`): its config and runtime
// faults come from the watch stream; it starts from the control plane's snapshot, or from the copy
// kept locally when the control plane is down, and from then on applies each new snapshot as it comes.
import { hostname } from 'node:os';
import { Sidecar as SidecarSchema, type SidecarConfig } from '../config/resources.ts';
import { hostOf } from '../config/primitives.ts';
import { FaultlineError, ErrorCode } from '../errors.ts';
import { SidecarIdentity } from '../identity/provider.ts';
import { Sidecar, resolveSidecar } from '../proxy/sidecar.ts';
import { silentLogger, type Logger } from '../telemetry/log.ts';
import { ControlClient } from './client.ts';
import { DEFAULT_REGISTRATION_TTL_MS } from './instance-registry.ts';
import { Registration } from './registration.ts';
import { Uplink } from './uplink.ts';

/**
 * A sidecar that joins with flags alone (no entry in the mesh file): its listeners, and the instance it
 * registers — its advertised address and labels — as an endpoint of its service.
 */
export interface JoinOptions {
  readonly service: string;
  /** Its name in the mesh; by default the service and the advertised address (or the host and process, for a client-only one). */
  readonly name?: string;
  readonly app?: string;
  readonly inbound?: string;
  /** Where other sidecars reach the inbound listener; by default the inbound address, unless that is a wildcard. */
  readonly advertise?: string;
  readonly outbound?: string;
  readonly admin?: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly ttlMs?: number;
}

export interface ControlledSidecarOptions {
  /** The control plane, or its replicas (tried in turn). */
  readonly url: string | readonly string[];
  readonly token: string;
  /** The CA bundle (PEM) the control plane's https:// URLs are trusted through (--control-ca). */
  readonly ca?: string;
  /** The sidecar's name in the config (or its service's, when it has one sidecar); with `join`, its name if given. */
  readonly name?: string;
  /** Join with flags instead of an entry of the mesh file. */
  readonly join?: JoinOptions;
  readonly stateDir: string;
  readonly log?: Logger;
  readonly accessLog?: string;
  /** How long to wait for the control plane before starting from the kept snapshot. */
  readonly waitMs?: number;
}

export interface ControlledSidecar {
  readonly sidecar: Sidecar;
  readonly client: ControlClient;
  /** The registration of a joined sidecar that serves (none for a client-only one, or one of the file). */
  readonly registration: Registration | undefined;
  close(): Promise<void>;
}

const WILDCARD = /^(0\.0\.0\.0|\[::\]|::)$/;

/** A joined sidecar's own entry, checked as the file's entries are; and the instance it registers. */
export function joinedSpec(join: JoinOptions): { self: SidecarConfig & { name: string }; advertise: string | undefined } {
  if (join.inbound !== undefined && join.advertise === undefined && WILDCARD.test(hostOf(join.inbound) ?? '')) {
    throw new FaultlineError(ErrorCode.ConfigInvalid, `--inbound ${join.inbound} listens on every address: say which one other hosts reach it at with --advertise HOST:PORT`);
  }
  const advertise = join.inbound === undefined ? undefined : (join.advertise ?? join.inbound);
  // A client-only one is named after its host: the same name when it restarts (two on one host need --name).
  const name = join.name ?? `${join.service}-${(advertise ?? hostname()).toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '')}`.slice(0, 63).replace(/-+$/, '');
  const parsed = SidecarSchema.safeParse({
    name,
    service: join.service,
    admin: join.admin ?? '127.0.0.1:15000',
    ...(join.inbound !== undefined && { inbound: join.inbound }),
    ...(join.outbound !== undefined && { outbound: join.outbound }),
    ...(join.app !== undefined && { app: join.app }),
  });
  if (!parsed.success) {
    const flag = (path: PropertyKey[]) => `--${String(path[0] ?? 'name')}`;
    throw new FaultlineError(ErrorCode.ConfigInvalid, parsed.error.issues.map((i) => `${flag(i.path)}: ${i.message}`).join('; '));
  }
  return { self: { ...parsed.data, name }, advertise };
}

export async function startControlledSidecar(options: ControlledSidecarOptions): Promise<ControlledSidecar> {
  const log = options.log ?? silentLogger;
  const joined = options.join && joinedSpec({ ...options.join, ...(options.name !== undefined && { name: options.join.name ?? options.name }) });
  const name = joined?.self.name ?? options.name;
  if (name === undefined) throw new FaultlineError(ErrorCode.ConfigInvalid, 'a sidecar needs its name (or join options)');
  const urls = typeof options.url === 'string' ? [options.url] : options.url;
  const ca = options.ca !== undefined ? { ca: options.ca } : {};
  const client = new ControlClient({ url: urls, token: options.token, ...ca, sidecar: name, stateDir: options.stateDir, log, ...(joined && { self: joined.self }) });
  let sidecar: Sidecar | undefined;
  let identity: SidecarIdentity | undefined;
  let registration: Registration | undefined;
  let uplink: Uplink | undefined;
  try {
    const first = await client.start(options.waitMs ?? 5_000);
    const mtls = first.snapshot.config.mtls;
    if (mtls.mode !== 'off') {
      const spec = resolveSidecar(first.snapshot, name);
      identity = await SidecarIdentity.obtain({
        url: urls,
        token: options.token,
        ...ca,
        sidecar: spec.name,
        service: spec.service,
        trustDomain: mtls.trustDomain,
        namespace: mtls.namespace,
        stateDir: options.stateDir,
        log,
      });
    }
    // Its runtime faults are the control plane's alone: its admin API refuses to change them (409).
    sidecar = await Sidecar.start({ name, snapshot: first.snapshot, log, faultsFrom: urls.join(','), ...(identity && { identity }), ...(options.accessLog && { accessLog: options.accessLog }) });
    sidecar.faults.sync(first.state.faults);
    const running = sidecar;
    client.onState(({ state, snapshot }) => {
      // A config this sidecar cannot run (its entry gone) throws here: refused, acknowledged as such.
      if (snapshot.version !== running.snapshot.version) running.apply(snapshot);
      const synced = running.faults.sync(state.faults);
      for (const refused of synced.refused) log.warn(refused, 'fault from the control plane refused by a limit');
      // The ack says what it holds now: the control plane verifies a stop or a rollback from it, not by
      // asking its admin listener (on its host's loopback).
      return { removed: synced.removed, faults: running.faults.all().filter((f) => f.origin === 'runtime').map((f) => f.id) };
    });
    // Its events go up over the control connection, for the merged stream and the game days' recorders.
    const events = new Uplink({ sidecar: name, token: options.token, ...ca, url: () => client.url, events: running.events, metrics: () => running.metrics.exposition(), log });
    uplink = events;
    client.onCollect((requests) => events.setRequests(requests));
    // Its acks too, where the control plane takes them there (older ones take a POST /v1/ack each).
    client.ackOver((ack) => events.acknowledge(ack));
    // Serving, it becomes an endpoint of its service: registered once its listeners are up.
    if (joined?.advertise !== undefined) {
      const address = joined.advertise === joined.self.inbound ? (sidecar.addresses.inbound ?? joined.advertise) : joined.advertise;
      registration = await Registration.start({
        urls,
        token: options.token,
        ...ca,
        instance: { name, service: joined.self.service, address, labels: { ...(options.join?.labels ?? {}) } },
        ttlMs: options.join?.ttlMs ?? DEFAULT_REGISTRATION_TTL_MS,
        log,
      });
    }
  } catch (error) {
    await uplink?.close();
    identity?.close();
    await client.close();
    await sidecar?.close();
    throw error;
  }
  const pushing = uplink;
  const started = sidecar;
  return {
    sidecar: started,
    client,
    registration,
    async close() {
      // Leave the endpoints first, so that callers stop choosing it before it stops listening.
      await registration?.close();
      await pushing.close();
      identity?.close();
      await client.close();
      await client.leave();
      await started.close();
    },
  };
}
