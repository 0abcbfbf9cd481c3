// Reads a request once into its RequestContext: where it goes, what to send upstream, who called, and
// its hop's telemetry opened. One class, so every request's context has one shape.
import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
// Imported, not the global: globalThis.performance is a lazy getter, read on every use.
import { performance } from 'node:perf_hooks';
import { stripPort } from '../config/matchers.ts';
import type { DestinationSpec, RouteSpec, Snapshot } from '../config/snapshot.ts';
import { ErrorCode, MeshError, ResponseFlag } from '../errors.ts';
import { RequestBody, hasBody } from '../http/body.ts';
import { isGrpcContentType } from '../http/grpc.ts';
import type { Cancellation } from '../http/cancellation.ts';
import type { EndpointState } from '../http/endpoint-state.ts';
import { Header, appendForwardedFor, http2RequestHeaders, withoutHopByHop } from '../http/headers.ts';
import type { Direction, Protocol, RequestContext, Trailers, UpgradeRequest } from '../http/types.ts';
import type { MeshTracer, SampledSpan } from '../telemetry/tracing.ts';
import { startHop } from './hop-telemetry.ts';
import { peerService } from './mesh-tls.ts';

/** What a context is made with, from the listener that read the request. */
export interface ContextOptions {
  readonly direction: Direction;
  readonly sidecar: string;
  /** The sidecar's own service: the source of its outbound calls. */
  readonly service: string;
  readonly tracer: MeshTracer | undefined;
}

/** Reads the request once: where it goes (origin-form with Host, or a forward proxy's absolute-form URI) and what to send. */
export function createContext(
  options: ContextOptions,
  snapshot: Snapshot,
  req: IncomingMessage,
  cancellation: Cancellation,
  upgrade: UpgradeRequest | undefined,
): RequestContext {
  const headers = withoutHopByHop(req.headers, upgrade !== undefined);
  const body = upgrade === undefined && hasBody(req.headers) ? req : null;
  const length = req.headers['content-length'];
  return read(options, snapshot, 'http1', req.method ?? 'GET', req.url ?? '/', req.headers.host, req.headers, headers, req.socket, body, length, undefined, cancellation, upgrade);
}

/**
 * An HTTP/2 stream's request, read into the same context as an HTTP/1.1 one: `:authority` (or Host)
 * for the host, `:path` for the target; its trailers are kept for the upstream when they come.
 */
export function createHttp2Context(
  options: ContextOptions,
  snapshot: Snapshot,
  stream: ServerHttp2Stream,
  received: IncomingHttpHeaders,
  cancellation: Cancellation,
): RequestContext {
  const body = stream.endAfterHeaders ? null : stream;
  const trailers: Trailers | undefined = body ? { fields: undefined } : undefined;
  if (trailers) stream.once('trailers', (fields: IncomingHttpHeaders) => (trailers.fields = fields));
  const authority = (received[':authority'] as string | undefined) ?? received.host;
  return read(
    options,
    snapshot,
    'http2',
    String(received[':method'] ?? 'GET'),
    String(received[':path'] ?? '/'),
    authority,
    received,
    http2RequestHeaders(received),
    stream.session!.socket as Socket,
    body,
    received['content-length'],
    trailers,
    cancellation,
    undefined,
  );
}

function read(
  options: ContextOptions,
  snapshot: Snapshot,
  protocol: Protocol,
  method: string,
  url: string,
  host: string | undefined,
  received: IncomingHttpHeaders,
  headers: IncomingHttpHeaders,
  socket: Socket,
  stream: Readable | null,
  length: string | undefined,
  trailers: Trailers | undefined,
  cancellation: Cancellation,
  upgrade: UpgradeRequest | undefined,
): RequestContext {
  let authority: string;
  let path: string;
  if (url.startsWith('/')) {
    authority = host ?? '';
    path = url;
  } else {
    const absolute = parseAbsolute(url);
    authority = absolute.host;
    path = absolute.pathname + absolute.search;
  }
  headers.host = authority;
  headers[Header.forwardedFor] = appendForwardedFor(received[Header.forwardedFor], socket.remoteAddress);
  headers[Header.forwardedProto] ??= 'http';
  const id = (received[Header.requestId] as string | undefined) || randomUUID();
  headers[Header.requestId] = id;
  // Inbound, the caller is who its client certificate says (mTLS), else who its sidecar's header says.
  const peer = options.direction === 'inbound' ? peerService(socket) : undefined;
  const source = options.direction === 'outbound' ? options.service : (peer ?? String(received[Header.source] ?? 'unknown'));
  // Outbound, and inbound under mTLS, the app downstream is told who called, whatever the caller claimed.
  if (options.direction === 'outbound' || peer) headers[Header.source] = source;

  const queryAt = path.indexOf('?');
  const pathname = queryAt === -1 ? path : path.slice(0, queryAt);
  const hostname = stripPort(authority).toLowerCase();
  const body = new RequestBody(stream, length === undefined ? undefined : Number(length));
  const grpc = protocol === 'http2' && isGrpcContentType(received['content-type']);
  const ctx = new Context(id, options, source, snapshot, protocol, grpc, method, hostname, path, pathname, headers, body, trailers, upgrade, cancellation);
  startHop(options.tracer, ctx, received);
  return ctx;
}

/**
 * A request's context, as a class rather than an object literal: V8 makes a literal with a getter
 * (the lazy `query` once was one) a dictionary-mode object — every layer's read of a context a hash
 * lookup — and such literals outlive young-generation collections, dead or not, to be promoted and
 * die in a full one (docs/benchmarks.md: 2.7 KB promoted per request, telemetry off). Every field a
 * layer may set is here from the start too, so every context has one shape; `query` is the
 * prototype's, parsed on first use.
 */
class Context implements RequestContext {
  readonly id: string;
  readonly direction: Direction;
  readonly sidecar: string;
  readonly source: string;
  readonly snapshot: Snapshot;
  readonly startedAt: number;
  readonly method: string;
  readonly host: string;
  readonly path: string;
  readonly pathname: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: RequestBody;
  readonly trailers: Trailers | undefined;
  readonly upgrade: UpgradeRequest | undefined;
  readonly protocol: Protocol;
  readonly grpc: boolean;
  grpcStatus: number | null = null;
  deadline: number | undefined = undefined;
  readonly flags = new Set<ResponseFlag>();
  cancellation: Cancellation;
  traceId: string | null = null;
  span: SampledSpan | undefined = undefined;
  attempt = 0;
  tried: Set<EndpointState> | undefined = undefined;
  faults: string[] | undefined = undefined;
  route: RouteSpec | undefined = undefined;
  destination: DestinationSpec | undefined = undefined;
  endpoint: EndpointState | undefined = undefined;
  #query: URLSearchParams | undefined = undefined;

  constructor(
    id: string,
    options: ContextOptions,
    source: string,
    snapshot: Snapshot,
    protocol: Protocol,
    grpc: boolean,
    method: string,
    host: string,
    path: string,
    pathname: string,
    headers: IncomingHttpHeaders,
    body: RequestBody,
    trailers: Trailers | undefined,
    upgrade: UpgradeRequest | undefined,
    cancellation: Cancellation,
  ) {
    this.id = id;
    this.direction = options.direction;
    this.sidecar = options.sidecar;
    this.source = source;
    this.snapshot = snapshot;
    this.startedAt = performance.now();
    this.method = method;
    this.host = host;
    this.path = path;
    this.pathname = pathname;
    this.headers = headers;
    this.body = body;
    this.trailers = trailers;
    this.upgrade = upgrade;
    this.protocol = protocol;
    this.grpc = grpc;
    this.cancellation = cancellation;
  }

  get query(): URLSearchParams {
    const at = this.path.indexOf('?');
    return (this.#query ??= new URLSearchParams(at === -1 ? '' : this.path.slice(at + 1)));
  }
}

function parseAbsolute(url: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new MeshError(ErrorCode.BadRequest, 400, ResponseFlag.NotSupported, `cannot parse request target "${url}"`);
  }
  if (parsed.protocol !== 'http:') {
    throw new MeshError(ErrorCode.BadRequest, 400, ResponseFlag.NotSupported, `only http:// targets are proxied, not ${parsed.protocol}`);
  }
  return parsed;
}
