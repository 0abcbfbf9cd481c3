// Mutual TLS between sidecars. Inbound: TLS 1.3 only, a client certificate required and chained to the
// mesh CA; the caller's identity is its certificate's SPIFFE ID. Outbound: a connection to another
// sidecar is TLS 1.3 with this sidecar's certificate, and the server must present the SPIFFE ID of the
// service it fronts — not just any mesh certificate. Both read the identity in force per connection,
// so a renewed certificate is used from the next connection on.
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type PeerCertificate, type TLSSocket, type TlsOptions } from 'node:tls';
import type { buildConnector } from 'undici';
import type { CurrentIdentity } from '../identity/provider.ts';
import { parseSpiffeId, spiffeIdOf } from '../identity/spiffe.ts';

export type MtlsMode = 'off' | 'permissive' | 'strict';

/** Server options for an inbound listener under mTLS. */
export function serverTlsOptions(identity: CurrentIdentity): TlsOptions {
  return {
    key: identity.keyPem,
    cert: identity.certPem,
    ca: [identity.caPem],
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.3',
  };
}

const peerServices = new WeakMap<Socket, string | null>();

/** The calling service proven by the connection's client certificate, or undefined on plaintext. */
export function peerService(socket: Socket): string | undefined {
  if (!(socket as TLSSocket).encrypted) return undefined;
  let service = peerServices.get(socket);
  if (service === undefined) {
    const tls = socket as TLSSocket;
    const id = tls.authorized ? spiffeIdOf(tls.getPeerCertificate().subjectaltname) : undefined;
    service = (id && parseSpiffeId(id)?.service) ?? null;
    peerServices.set(socket, service);
  }
  return service ?? undefined;
}

const CONNECT_TIMEOUT_MS = 5_000;

/**
 * undici's `connect` for a sidecar's pools: to an address that `expected` names a SPIFFE ID for (a
 * peer sidecar's inbound, with mTLS on), TLS with this sidecar's identity and that exact server
 * identity required; to anything else, plain TCP.
 */
export function meshConnector(identity: () => CurrentIdentity | undefined, expected: (address: string) => string | undefined): buildConnector.connector {
  return (options, callback) => {
    const address = options.hostname.includes(':') && !options.hostname.startsWith('[') ? `[${options.hostname}]:${options.port}` : `${options.hostname}:${options.port}`;
    const want = expected(address);
    const current = want ? identity() : undefined;
    const socket = meshSocket(address, want && current ? { identity: current, want, alpn: 'http/1.1' } : undefined);
    const secure = want !== undefined && current !== undefined;
    const onError = (error: Error) => callback(error, null);
    socket.once('error', onError);
    socket.once(secure ? 'secureConnect' : 'connect', () => {
      socket.off('error', onError);
      callback(null, socket);
    });
  };
}

/** How to reach a peer sidecar over mTLS: this sidecar's identity, the server's required SPIFFE ID, the ALPN protocol to ask for. */
export interface MeshPeer {
  readonly identity: CurrentIdentity;
  readonly want: string;
  readonly alpn: 'h2' | 'http/1.1';
}

/**
 * A connection to `address` (host:port): TLS 1.3 with this sidecar's certificate to a peer sidecar
 * that must present `peer.want`, or plain TCP without `peer`. Destroyed with UND_ERR_CONNECT_TIMEOUT
 * when not up (handshake included) within 5 s.
 */
export function meshSocket(address: string, peer: MeshPeer | undefined): Socket {
  const colon = address.lastIndexOf(':');
  const host = address.slice(0, colon).replace(/^\[|\]$/g, '');
  const port = Number(address.slice(colon + 1));
  let socket: Socket;
  if (peer) {
    const { identity: current, want } = peer;
    socket = tlsConnect({
      host,
      port,
      key: current.keyPem,
      cert: current.certPem,
      ca: [current.caPem],
      minVersion: 'TLSv1.3',
      // The server picks by it (inbound-server.ts): h2 for the HTTP/2 pool, http/1.1 for undici's.
      ALPNProtocols: [peer.alpn],
      // No DNS name to check: the server's identity is its SPIFFE ID.
      checkServerIdentity: (_host: string, cert: PeerCertificate) => {
        const got = spiffeIdOf(cert.subjectaltname);
        if (got === want) return undefined;
        return Object.assign(new Error(`peer at ${address} is ${got ?? 'no SPIFFE identity'}, not ${want}`), { code: 'FL_MTLS_IDENTITY' });
      },
    });
  } else {
    socket = netConnect({ host, port });
  }
  socket.setNoDelay(true);
  const timer = setTimeout(() => socket.destroy(Object.assign(new Error(`connect to ${address} timed out`), { code: 'UND_ERR_CONNECT_TIMEOUT' })), CONNECT_TIMEOUT_MS);
  socket.once(peer ? 'secureConnect' : 'connect', () => clearTimeout(timer));
  socket.once('close', () => clearTimeout(timer));
  return socket;
}
