// A listener's protocol front: the one port that takes HTTP/1.1 and HTTP/2 and hands each connection
// to the server for its protocol — an HTTP/1.1 server (listener.ts) or an HTTP/2 one (h2-listener.ts),
// both feeding the same stack. Cleartext, the first bytes tell: the 24-byte HTTP/2 preface (prior
// knowledge, as gRPC channels without TLS and `curl --http2-prior-knowledge` open) or anything else;
// decided on the whole preface or the first byte that differs, so a preface split across packets is
// not misread (Node has no such port of its own: nodejs/node#44887). Under mTLS, ALPN tells (`h2` or
// `http/1.1`; a client that offers none speaks HTTP/1.1). Permissive mTLS takes both: a TLS handshake
// starts with 0x16, which neither HTTP does.
import type { Server as HttpServer } from 'node:http';
import type { Http2Server } from 'node:http2';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import type { SidecarIdentity } from '../identity/provider.ts';
import { createHttp2Listener } from './h2-listener.ts';
import { createListener, type ListenerOptions } from './listener.ts';
import { serverTlsOptions } from './mesh-tls.ts';

/** The client connection preface of HTTP/2 (RFC 9113 §3.4). */
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const TLS_HANDSHAKE = 0x16;

export interface Edge {
  /** What listens: the front. */
  readonly server: NetServer;
  /** Stops the servers behind the front (and following certificate renewals). */
  readonly stop: () => void;
}

type Protocol = 'http1' | 'http2' | 'tls';

/**
 * Plain (mtls off, and every outbound listener), mTLS only (strict), or either (permissive). A renewed
 * certificate replaces the secure context in place: connections already up keep theirs.
 */
export function createEdge(options: ListenerOptions, mtls: 'off' | 'permissive' | 'strict' = 'off', identity?: SidecarIdentity): Edge {
  const http1 = createListener(options);
  const http2 = createHttp2Listener(options);
  const { headersTimeout, maxConnections } = options.limits;
  const byProtocol = (socket: Socket, protocol: 'http1' | 'http2') => (protocol === 'http2' ? http2 : http1).emit('connection', socket);
  let secure: NetServer | undefined;
  let stopRenewals = () => {};
  if (mtls !== 'off') {
    const tls = createTlsServer({ ...serverTlsOptions(identity!.current), ALPNProtocols: ['h2', 'http/1.1'], handshakeTimeout: headersTimeout, noDelay: true });
    tls.on('secureConnection', (socket: TLSSocket) => byProtocol(socket, socket.alpnProtocol === 'h2' ? 'http2' : 'http1'));
    // A failed handshake (no certificate, another CA, plaintext on a strict port) closes that connection only.
    tls.on('tlsClientError', (_error, socket) => socket.destroy());
    stopRenewals = identity!.onRotate((next) => tls.setSecureContext(serverTlsOptions(next)));
    secure = tls;
  }
  // Every front turns Nagle's algorithm off (TCP_NODELAY), as node:http's own servers do: the servers
  // behind it are handed sockets and never set it. With it on, the second of two small segments (a TLS
  // record each, under mTLS) may wait for the caller's delayed ACK: up to 40 ms on Linux.
  let server: NetServer;
  if (mtls === 'strict') {
    server = secure!;
  } else {
    server = createNetServer({ noDelay: true }, (socket) => {
      sniff(socket, headersTimeout, secure !== undefined, (protocol) => {
        if (protocol === 'tls') secure!.emit('connection', socket);
        else byProtocol(socket, protocol);
      });
    });
  }
  server.maxConnections = maxConnections;
  // Node starts checking head deadlines when an HTTP server listens; the ones behind never do (the
  // front listens for them), so they are told they are, and told to stop with the front.
  http1.emit('listening');
  return {
    server,
    stop: () => {
      stopRenewals();
      closeBehind(http1);
      closeBehind(http2);
    },
  };
}

function closeBehind(server: HttpServer | Http2Server): void {
  server.close(() => {});
}

/**
 * Reads a connection's first bytes until its protocol is known, then gives them back to the socket
 * for the server it is handed to. A connection that sends nothing within `timeoutMs` is closed: until
 * it is handed over no server's own deadline covers it.
 */
export function sniff(socket: Socket, timeoutMs: number, tls: boolean, route: (protocol: Protocol) => void): void {
  let seen: Buffer | undefined;
  const cut = () => socket.destroy();
  const onError = () => socket.destroy();
  socket.setTimeout(timeoutMs, cut);
  socket.on('error', onError);
  const onData = (chunk: Buffer) => {
    seen = seen ? Buffer.concat([seen, chunk]) : chunk;
    const protocol = decide(seen, tls);
    if (!protocol) return;
    socket.off('data', onData);
    socket.off('error', onError);
    socket.setTimeout(0);
    socket.off('timeout', cut);
    socket.pause();
    socket.unshift(seen);
    route(protocol);
    process.nextTick(() => socket.resume());
  };
  socket.on('data', onData);
}

/** The protocol the first bytes show, or undefined while they are a prefix of the HTTP/2 preface. */
export function decide(first: Buffer, tls: boolean): Protocol | undefined {
  if (tls && first[0] === TLS_HANDSHAKE) return 'tls';
  const n = Math.min(first.length, PREFACE.length);
  if (first.compare(PREFACE, 0, n, 0, n) !== 0) return 'http1';
  return n === PREFACE.length ? 'http2' : undefined;
}
