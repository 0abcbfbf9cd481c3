// The inbound listener's server for the sidecar's mtls mode: how other sidecars reach this service
// (plain, mTLS only, or either on one port).
import type { Server as HttpsServer } from 'node:https';
import { createServer as createNetServer, type Server as NetServer } from 'node:net';
import type { SidecarIdentity } from '../identity/provider.ts';
import { createListener, type ListenerOptions } from './listener.ts';
import { serverTlsOptions, type MtlsMode } from './mesh-tls.ts';

export interface InboundServer {
  readonly server: NetServer;
  /** Stops following certificate renewals. */
  readonly stop: () => void;
}

/**
 * Plain HTTP (off), HTTPS with client certificates required (strict), or a front that looks at each
 * connection's first byte and hands TLS (a handshake starts with 0x16) to the HTTPS server and
 * anything else to the plain one (permissive). A renewed certificate replaces the secure context in
 * place: connections already up keep theirs.
 */
export function createInboundServer(options: ListenerOptions, mtls: MtlsMode, identity: SidecarIdentity | undefined): InboundServer {
  if (mtls === 'off') return { server: createListener(options), stop: () => {} };
  const secure = createListener(options, serverTlsOptions(identity!.current)) as HttpsServer;
  const stop = identity!.onRotate((next) => secure.setSecureContext(serverTlsOptions(next)));
  if (mtls === 'strict') return { server: secure, stop };
  const plain = createListener(options);
  const { headersTimeout, maxConnections } = options.limits;
  const server = createNetServer((socket) => {
    // Until its first byte a connection belongs to no HTTP server, whose head deadline would cut it.
    const cut = () => socket.destroy();
    socket.setTimeout(headersTimeout, cut);
    socket.once('data', (first: Buffer) => {
      socket.setTimeout(0);
      socket.off('timeout', cut);
      socket.pause();
      socket.unshift(first);
      (first[0] === 0x16 ? secure : plain).emit('connection', socket);
      process.nextTick(() => socket.resume());
    });
  });
  server.maxConnections = maxConnections;
  // Node starts checking head deadlines when an HTTP server listens; these two never do (the front
  // listens for them), so they are told they are, and told to stop with the front.
  for (const behind of [secure, plain]) behind.emit('listening');
  return {
    server,
    stop: () => {
      stop();
      for (const behind of [secure, plain]) behind.close(() => {});
    },
  };
}
