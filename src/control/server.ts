// `faultline control`: the control plane process — its state (plane.ts) behind its API (api.ts) on one
// listener, the desired state kept in a file store, and the merged event stream fed from each
// connected sidecar's own /events.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFile } from 'node:fs/promises';
import { ErrorCode, FaultlineError, describe } from '../errors.ts';
import { silentLogger, type Logger } from '../telemetry/log.ts';
import { MeshCa } from '../identity/ca.ts';
import { createControlApp, type IdentityIssuer } from './api.ts';
import { ControlAccess, type AccessClock } from './auth.ts';
import { ControlPlane } from './plane.ts';
import { FileStore } from './store.ts';

export interface ControlPlaneOptions {
  readonly listen: string;
  readonly token: string;
  readonly stateDir: string;
  readonly configFile?: string;
  readonly log?: Logger;
  /** An operator's CA (certificate and key, PEM files) instead of one made and kept by the control plane. */
  readonly ca?: { readonly certFile: string; readonly keyFile: string };
  /** The time join tokens are checked against (tests); the system's by default. */
  readonly clock?: AccessClock;
}

export interface RunningControlPlane {
  readonly plane: ControlPlane;
  readonly url: string;
  close(): Promise<void>;
}

/** The mesh CA: the operator's, else the one kept in the store, else a new one (then kept, key 0600). */
async function openCa(store: FileStore, trustDomain: string, files?: { certFile: string; keyFile: string }): Promise<MeshCa> {
  if (files) return MeshCa.load({ certPem: await readFile(files.certFile, 'utf8'), keyPem: await readFile(files.keyFile, 'utf8') }, trustDomain);
  const certPem = await store.get('ca/cert.pem');
  const keyPem = await store.get('ca/key.pem');
  if (certPem && keyPem) return MeshCa.load({ certPem, keyPem }, trustDomain);
  const ca = await MeshCa.create(trustDomain);
  const material = ca.material();
  await store.put('ca/key.pem', material.keyPem);
  await store.put('ca/cert.pem', material.certPem);
  return ca;
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
  const plane = await ControlPlane.open(new FileStore(options.stateDir), log, configText, options.configFile);
  const store = new FileStore(options.stateDir);
  const ca = await openCa(store, plane.snapshot.config.mtls.trustDomain, options.ca);
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
  const access = await ControlAccess.open(options.token, store, options.clock);
  const server: Server = createServer(createControlApp(plane, access, issuer, plane, log));
  const colon = options.listen.lastIndexOf(':');
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(Number(options.listen.slice(colon + 1)), options.listen.slice(0, colon).replace(/^\[|\]$/g, ''), () => resolve());
  });
  const bound = server.address() as AddressInfo;
  const url = `http://${bound.family === 'IPv6' ? `[${bound.address}]` : bound.address}:${bound.port}`;
  log.info({ url, version: plane.state.version }, 'control plane started');
  return {
    plane,
    url,
    async close() {
      access.close();
      plane.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
