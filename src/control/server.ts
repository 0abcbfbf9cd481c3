// `faultline control`: the control plane process — its state (plane.ts) behind its API (api.ts) on one
// listener (plain HTTP or TLS: api-listener.ts), the desired state kept in a file store, and the merged
// event stream fed from each connected sidecar's own /events.
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { ErrorCode, FaultlineError, describe } from '../errors.ts';
import { silentLogger, type Logger } from '../telemetry/log.ts';
import { MeshCa } from '../identity/ca.ts';
import { createControlApp, type IdentityIssuer } from './api.ts';
import { listenControl, type ControlTls } from './api-listener.ts';
import { ControlAccess, type AccessClock } from './auth.ts';
import { ControlPlane } from './plane.ts';
import { gameDayRoutes } from './game-days-api.ts';
import { gameDayRunRoutes, type GameDayLauncher, type PlaneTarget } from './game-day-runs.ts';
import { HeadSweeper } from './head-sweep.ts';
import { Peers } from './peers.ts';
import { ControlLeadership, ELECTION, type LeaderView } from './leadership.ts';
import { electorFor, openStore } from './open-store.ts';
import type { Store } from './store.ts';
import { Sessions } from './sessions.ts';
import { LiveMesh } from './console/live.ts';
import { consolePublicRoutes, consoleRoutes } from './console/routes.ts';
import { reportRoutes } from './console/reports.ts';

export interface ControlPlaneOptions {
  readonly listen: string;
  readonly token: string;
  readonly stateDir: string;
  readonly configFile?: string;
  /** Where the desired state is kept: etcd://host:port[,…][/prefix] (shared by every replica) or a directory; the state directory by default. */
  readonly store?: string;
  readonly log?: Logger;
  /** Admin tokens used before a rotation: the CA key sealed under one of them is opened and sealed again under `token`. */
  readonly previousTokens?: readonly string[];
  /** An operator's CA (certificate and key, PEM files) instead of one made and kept by the control plane. */
  readonly ca?: { readonly certFile: string; readonly keyFile: string };
  /** The time join tokens are checked against (tests); the system's by default. */
  readonly clock?: AccessClock;
  /** How long it still leads if it dies without resigning (its election lease): another leads within this. */
  readonly leaderTtlMs?: number;
  /** Serve the API over HTTPS: the operator's certificate, or one issued from the mesh CA (auto). Plain HTTP without. */
  readonly tls?: ControlTls;
  /** The read-only token (--viewer-token-file): signs a viewer in to the console, reads the API, changes nothing. */
  readonly viewerToken?: string;
  /** Game days started through the API (the console): the experiments of --experiments, injected by the CLI. */
  readonly gameDays?: GameDayLauncher;
}

export interface RunningControlPlane {
  readonly plane: ControlPlane;
  readonly url: string;
  /** With TLS auto: the CA bundle it wrote for clients (--control-ca), and its SHA-256 fingerprint. */
  readonly caFile?: string;
  readonly caFingerprint?: string;
  /** Its campaign in the election "control" (GET /leader). */
  readonly leadership: ControlLeadership;
  /** The desired state's store (leader-only work keeps its state there). */
  readonly store: Store;
  /** The leader's sweep of game-day heads. */
  readonly heads: HeadSweeper;
  /** Halts the game days started here through the API and waits for their rollback (close does too). */
  stopGameDays(): Promise<void>;
  close(): Promise<void>;
}

/**
 * The mesh CA: the operator's, else the one kept in the store, else a new one, kept there. In a file
 * store the key is a 0600 file; in a shared one (etcd) it is encrypted with a key derived from the admin
 * token (never a plaintext private key in etcd), and the first control plane to create it wins: the
 * others load that one, so every replica signs with the same CA.
 */
async function openCa(store: Store, token: string, trustDomain: string, files?: { certFile: string; keyFile: string }, previousTokens: readonly string[] = [], log: Logger = silentLogger): Promise<MeshCa> {
  if (files) return MeshCa.load({ certPem: await readFile(files.certFile, 'utf8'), keyPem: await readFile(files.keyFile, 'utf8') }, trustDomain);
  const shared = store.leasesOutliveProcess;
  const keyKey = shared ? 'ca/key.sealed' : 'ca/key.pem';
  const load = async () => {
    const certPem = await store.get('ca/cert.pem');
    const stored = await store.get(keyKey);
    if (!certPem || !stored) return undefined;
    return MeshCa.load({ certPem, keyPem: shared ? await unsealRotating(store, keyKey, stored, token, previousTokens, log) : stored }, trustDomain);
  };
  const existing = await load();
  if (existing) return existing;
  const ca = await MeshCa.create(trustDomain);
  const material = ca.material();
  // The key first, then the certificate: a CA whose certificate is stored has its key stored.
  if (!(await store.create(keyKey, shared ? seal(material.keyPem, token) : material.keyPem))) {
    // Another control plane made one at the same moment: theirs is the mesh's.
    const theirs = await waitForCa(load);
    return theirs;
  }
  await store.put('ca/cert.pem', material.certPem);
  return ca;
}

async function waitForCa(load: () => Promise<MeshCa | undefined>): Promise<MeshCa> {
  for (let i = 0; i < 100; i++) {
    const ca = await load();
    if (ca) return ca;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new FaultlineError(ErrorCode.ConfigInvalid, 'the store has a CA key but no CA certificate: another control plane died making it; remove ca/ from the store');
}

/** AES-256-GCM with a key derived (HKDF) from the admin token: what a shared store holds of the CA key. */
function seal(plain: string, token: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', sealKey(token), iv);
  const data = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
  return JSON.stringify({ v: 1, iv: iv.toString('base64'), tag: cipher.getAuthTag().toString('base64'), data: data.toString('base64') });
}

/**
 * The stored key, opened with the admin token; after a rotation, with a previous one
 * (`--previous-token-file`), and then sealed again under the new token so that the previous one is
 * needed no more.
 */
async function unsealRotating(store: Store, key: string, sealed: string, token: string, previous: readonly string[], log: Logger): Promise<string> {
  try {
    return unseal(sealed, token);
  } catch (error) {
    for (const old of previous) {
      let plain: string;
      try {
        plain = unseal(sealed, old);
      } catch {
        continue;
      }
      await store.put(key, seal(plain, token));
      log.warn({}, 'the CA key in the store was sealed under a previous admin token: sealed again under the current one (the previous token is no longer needed for it)');
      return plain;
    }
    throw error;
  }
}

function unseal(sealed: string, token: string): string {
  const { iv, tag, data } = JSON.parse(sealed) as { iv: string; tag: string; data: string };
  const decipher = createDecipheriv('aes-256-gcm', sealKey(token), Buffer.from(iv, 'base64'));
  decipher.setAuthTag(Buffer.from(tag, 'base64'));
  try {
    return Buffer.concat([decipher.update(Buffer.from(data, 'base64')), decipher.final()]).toString('utf8');
  } catch {
    throw new FaultlineError(ErrorCode.ConfigInvalid, 'the CA key in the store does not open with this admin token: every control plane sharing a store needs the same --token-file (after a rotation, give the old one as --previous-token-file)');
  }
}

function sealKey(token: string): Buffer {
  return Buffer.from(hkdfSync('sha256', token, 'faultline-ca', 'faultline ca key sealing v1', 32));
}

export async function startControlPlane(options: ControlPlaneOptions): Promise<RunningControlPlane> {
  const log = options.log ?? silentLogger;
  let configText: string | undefined;
  if (options.configFile) {
    try {
      configText = await readFile(options.configFile, 'utf8');
    } catch (error) {
      throw new FaultlineError(ErrorCode.ConfigUnreadable, `cannot read config ${options.configFile}: ${describe(error)}`, { cause: error });
    }
  }
  const store = await openStore(options.store, options.stateDir);
  const plane = await ControlPlane.open(store, log, configText, options.configFile).catch(async (error: unknown) => {
    await store.close();
    throw error;
  });
  // A start that fails from here on leaves nothing open behind it (the store's connection, its watches).
  const ca = await openCa(store, options.token, plane.snapshot.config.mtls.trustDomain, options.ca, options.previousTokens, log).catch(async (error: unknown) => {
    plane.close();
    await store.close();
    throw error;
  });
  const issuer: IdentityIssuer = {
    async issue(sidecar, csrPem, asked) {
      // A sidecar of the file is of its entry's service; one joined with flags says its service (a join
      // token allows only its own: api.ts), and once registered is held to it.
      const service = plane.snapshot.sidecars.find((s) => s.name === sidecar)?.service ?? plane.instance(sidecar)?.service ?? asked;
      if (!service) throw new Error(`no sidecar "${sidecar}" in the mesh config, and the request names no service`);
      if (asked !== undefined && asked !== service) throw new Error(`sidecar "${sidecar}" is of service ${service}, not ${asked}`);
      const { namespace, certTtl } = plane.snapshot.config.mtls;
      const signed = await ca.sign(csrPem, service, { namespace, ttlMs: certTtl });
      log.info({ sidecar, spiffeId: signed.spiffeId, notAfter: signed.notAfter.toISOString() }, 'workload certificate issued');
      return { certPem: signed.certPem, caPem: ca.certPem, spiffeId: signed.spiffeId, notAfter: signed.notAfter.toISOString() };
    },
  };
  // Join tokens are signed with a key derived from the admin token; their revocations are kept in the store.
  // The console's sessions (server-side, this replica's) are checked with the tokens.
  const access = await ControlAccess.open(options.token, store, options.clock, { sessions: new Sessions(), ...(options.viewerToken !== undefined && { viewerToken: options.viewerToken }) }).catch(async (error: unknown) => {
    plane.close();
    await store.close();
    throw error;
  });
  const live = new LiveMesh(plane);
  // Its campaign for leadership starts once its URL (the candidate) is known; GET /leader says who leads.
  const elector = electorFor(store);
  let leadership: ControlLeadership | undefined;
  const leader: LeaderView = {
    get candidate() {
      return leadership?.candidate ?? '';
    },
    get isLeader() {
      return leadership?.isLeader ?? false;
    },
    leader: () => elector.leader(ELECTION),
  };
  let peers: Peers | undefined;
  let self: PlaneTarget | undefined;
  const runs = gameDayRunRoutes(store, options.gameDays, () => self!);
  const app = createControlApp(plane, access, {
    identity: issuer,
    flow: plane,
    log,
    leader,
    ...(options.tls?.mode === 'auto' && { publicCa: ca.certPem }),
    routers: [runs.router, gameDayRoutes(store), consoleRoutes(access, live), reportRoutes(store, options.gameDays?.reportsDir, access)],
    publicRouters: [consolePublicRoutes(access)],
    peers: () => peers,
  });
  const listener = await listenControl(app, options.listen, { ca, stateDir: options.stateDir, log, ...(options.tls && { tls: options.tls }) }).catch(async (error: unknown) => {
    access.close();
    plane.close();
    await store.close();
    throw error;
  });
  const { url } = listener;
  self = { control: url, ...(listener.caFile && { ca: listener.caFile }) };
  log.info({ url, version: plane.state.version, ...(listener.caFile && { caFile: listener.caFile }) }, 'control plane started');
  leadership = new ControlLeadership(elector, url, options.leaderTtlMs, log);
  const campaigning = leadership;
  // On the list of replicas, for the others' emergency stops to ask about its sidecars (and it about theirs).
  peers = await Peers.join(store, url, options.token, ca.certPem, log);
  const heads = new HeadSweeper(store, plane, url, log);
  campaigning.onLead((won) => heads.lead(won));
  return {
    plane,
    url,
    ...(listener.caFile && { caFile: listener.caFile, caFingerprint: listener.caFingerprint! }),
    leadership: campaigning,
    store,
    heads,
    stopGameDays: () => runs.close(),
    async close() {
      await runs.close();
      await campaigning.close();
      await peers?.close();
      live.close();
      access.close();
      plane.close();
      await listener.close();
      await store.close();
    },
  };
}
