// The connection pools a sidecar calls upstreams through: with mtls off, one plain pool for all; with
// mtls on, one per destination service, each requiring that service's own identity of its peers. HTTP/1.1
// goes through undici's agents; HTTP/2 through the session pool (h2-sessions.ts), under the same rule
// for who must be at the other end.
import { Agent } from '../http/undici.ts';
import type { MtlsConfig } from '../config/schema.ts';
import type { Snapshot } from '../config/snapshot.ts';
import type { SidecarIdentity } from '../identity/provider.ts';
import { spiffeId } from '../identity/spiffe.ts';
import { Http2Sessions } from './h2-sessions.ts';
import { meshConnector, type MeshPeer } from './mesh-tls.ts';

export class Dispatchers {
  readonly #agents = new Map<string, Agent>();
  /** The mtls settings the sidecar started with (its listeners are built for that mode). */
  readonly #mtls: MtlsConfig;
  readonly #identity: SidecarIdentity | undefined;
  /** Inbound addresses of the sidecars that front endpoints: reached over mTLS when it is on. */
  #meshAddresses = new Set<string>();
  readonly http2: Http2Sessions;

  constructor(mtls: MtlsConfig, identity: SidecarIdentity | undefined) {
    this.#mtls = mtls;
    this.#identity = identity;
    this.http2 = new Http2Sessions((service, address) => this.#peer(service, address));
  }

  /** How to reach `address` for a call to `service` over HTTP/2: mTLS with ALPN h2 to a peer sidecar when mtls is on, else plain h2c. */
  #peer(service: string | undefined, address: string): MeshPeer | undefined {
    if (this.#mtls.mode === 'off' || service === undefined || !this.#meshAddresses.has(address)) return undefined;
    const identity = this.#identity?.current;
    return identity && { identity, want: spiffeId(this.#mtls.trustDomain, this.#mtls.namespace, service), alpn: 'h2' };
  }

  /** Learns from a new snapshot which endpoints are sidecars, to be dialled over mTLS. */
  sync(snapshot: Snapshot): void {
    this.#meshAddresses = new Set(this.#mtls.mode === 'off' ? [] : [...snapshot.services.values()].flatMap((s) => s.endpoints.filter((e) => e.sidecar).map((e) => e.dial)));
  }

  /**
   * The pool for calls to `service`. With mtls on, its connections to a peer sidecar are mTLS and
   * require that sidecar to present the service's own SPIFFE ID — an endpoint listed under a service
   * but fronted by another's sidecar is refused (UF) rather than trusted.
   */
  for(service: string | undefined): Agent {
    const key = this.#mtls.mode === 'off' || service === undefined ? '' : service;
    let agent = this.#agents.get(key);
    if (!agent) {
      const want = key ? spiffeId(this.#mtls.trustDomain, this.#mtls.namespace, key) : undefined;
      const connect = meshConnector(() => this.#identity?.current, (address) => (want && this.#meshAddresses.has(address) ? want : undefined));
      agent = new Agent({ keepAliveTimeout: 4_000, headersTimeout: 0, bodyTimeout: 0, connect });
      this.#agents.set(key, agent);
    }
    return agent;
  }

  close(): Promise<void> {
    return Promise.all([...[...this.#agents.values()].map((agent) => agent.destroy()), this.http2.close()]).then(() => undefined);
  }
}
