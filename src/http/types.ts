// The request path's one abstraction: a Layer wraps the next Handler. The sidecar composes its layers
// once per snapshot (src/proxy/stack.ts); each request then runs through them with its own context.
// Here, below src/proxy and src/faults, so that fault layers use it without importing the proxy.
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { Duplex, Readable } from 'node:stream';
import type { DestinationSpec, RequestSnapshot, RouteSpec } from '../config/specs.ts';
import type { ResponseFlag } from '../errors.ts';
import type { RequestBody } from './body.ts';
import type { Cancellation } from './cancellation.ts';
import type { EndpointState } from './endpoint-state.ts';
import type { SampledSpan } from '../telemetry/tracing.ts';

export interface ProxyResponse {
  readonly status: number;
  readonly headers: OutgoingHttpHeaders;
  readonly body: Readable | null;
  /** Send the head at once rather than with the first body bytes (the body will be slow to come). */
  readonly flushHeaders?: boolean;
  /** The forwarder took the connection over (a protocol upgrade): nothing is left to write. */
  readonly upgraded?: boolean;
  /** Trailers after the body, filled in by the forwarder before the body ends (a holder, so that layers copying the response keep it). */
  readonly trailers?: Trailers;
}

/** Trailer fields that follow a body (HTTP/2, or HTTP/1.1 chunked): `fields` is set, if they come, before the body ends. */
export interface Trailers {
  fields: IncomingHttpHeaders | undefined;
}

/** The protocol a request came in with: HTTP/1.1 (or 1.0), or HTTP/2 (cleartext prior knowledge, or h2 over mTLS). */
export type Protocol = 'http1' | 'http2';

export type Handler = (ctx: RequestContext) => Promise<ProxyResponse>;
export type Layer = (next: Handler) => Handler;

export type Direction = 'outbound' | 'inbound';

/** A protocol upgrade (WebSocket): the caller's socket and the bytes read past the request head. */
export interface UpgradeRequest {
  readonly socket: Duplex;
  readonly head: Buffer;
}

/** Per-request state. Layers read the snapshot it was created with and record their decisions here. */
export interface RequestContext {
  readonly id: string;
  readonly direction: Direction;
  readonly sidecar: string;
  /** The calling service: the sidecar's own on outbound, the peer's on inbound. */
  readonly source: string;
  readonly snapshot: RequestSnapshot;
  readonly startedAt: number;
  readonly method: string;
  /** Host without port, lowercased: what routes match on. */
  readonly host: string;
  /** Path and query as sent upstream. */
  readonly path: string;
  readonly pathname: string;
  readonly query: URLSearchParams;
  /** Headers for the upstream request: hop-by-hop removed, forwarding headers added. */
  readonly headers: IncomingHttpHeaders;
  readonly body: RequestBody;
  /** The caller's request trailers (HTTP/2 only), filled in before its body ends. */
  readonly trailers: Trailers | undefined;
  readonly upgrade: UpgradeRequest | undefined;
  /** What the caller spoke. */
  readonly protocol: Protocol;
  /** A gRPC call: HTTP/2 with content-type application/grpc (src/http/grpc.ts). */
  readonly grpc: boolean;
  /** The gRPC status the caller got (set as the listener writes or ends the response); null for a call that is not gRPC, or not yet known. */
  grpcStatus: number | null;
  /**
   * When the request must be over (performance.now() ms): the smaller of the route timeout and the
   * caller's grpc-timeout, narrowed per try by the per-try timeout; the forwarder tells the upstream
   * what is left of it (grpc-timeout). Undefined: no deadline.
   */
  deadline: number | undefined;
  readonly flags: Set<ResponseFlag>;
  /** Fires when the caller goes away; layers may narrow it (a timeout sets a child). */
  cancellation: Cancellation;
  /** The trace this request belongs to (from the caller's headers, or the hop span's). */
  traceId: string | null;
  /** This hop's span, when tracing is on. */
  span?: SampledSpan;
  /** The try in progress (1 for the first); set by the retry layer. */
  attempt: number;
  /** Endpoints already tried for this request, which a retry avoids when it can. */
  tried?: Set<EndpointState>;
  /** Ids of the faults injected into this request so far, at any point and attempt. */
  faults?: string[];
  route?: RouteSpec;
  destination?: DestinationSpec;
  endpoint?: EndpointState;
}

export function compose(layers: readonly Layer[], last: Handler): Handler {
  return layers.reduceRight<Handler>((next, layer) => layer(next), last);
}

/** Calls `done` once the response body is finished or destroyed (at once when there is none). */
export function onResponseDone(response: ProxyResponse, done: () => void): void {
  if (!response.body || response.body.destroyed) done();
  // `on`, not `once`: 'close' is emitted once, and once() would make a wrapper and a bound function per call.
  else response.body.on('close', done);
}
