// The edge of the request path: an HTTP/1.1 server that turns each request into a RequestContext,
// runs it through the generation's stack and writes the response, or the rescued error.
import { randomUUID } from 'node:crypto';
import { STATUS_CODES, createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import type { TlsOptions } from 'node:tls';
import type { Duplex } from 'node:stream';
// Imported, not the global: globalThis.performance is a lazy getter, read on every use.
import { performance } from 'node:perf_hooks';
import { stripPort } from '../config/matchers.ts';
import type { DestinationSpec, RouteSpec, Snapshot } from '../config/snapshot.ts';
import { ErrorCode, MeshError, ResponseFlag, downstreamReset } from '../errors.ts';
import { RequestBody, hasBody } from '../http/body.ts';
import { Cancellation } from '../http/cancellation.ts';
import { Header, appendForwardedFor, withoutHopByHop } from '../http/headers.ts';
import { peerService } from './mesh-tls.ts';
import { rescue, type RescuedResponse } from './rescue.ts';
import type { EventBus } from '../telemetry/events.ts';
import { propagate, traceIdOf, type MeshTracer, type SampledSpan } from '../telemetry/tracing.ts';
import type { Generation } from './stack.ts';
import type { EndpointState } from '../http/endpoint-state.ts';
import type { Direction, ProxyResponse, RequestContext, UpgradeRequest } from '../http/types.ts';

export interface ListenerOptions {
  readonly direction: Direction;
  readonly sidecar: string;
  /** The sidecar's own service: the source of its outbound calls. */
  readonly service: string;
  readonly generation: () => Generation;
  readonly events: EventBus;
  readonly tracer: MeshTracer | undefined;
  /** Per-request telemetry (request.done, hence request metrics and access log lines). */
  readonly perRequest: boolean;
}

/** The listener's HTTP server: plain, or (`tls`) HTTPS — the inbound listener under mTLS. */
export function createListener(options: ListenerOptions, tls?: TlsOptions): Server {
  const settings = { keepAliveTimeout: 65_000, requestTimeout: 0, headersTimeout: 30_000 };
  const server: Server = tls ? createHttpsServer({ ...settings, ...tls }) : createServer(settings);
  server.on('request', (req: IncomingMessage, res: ServerResponse) => void handle(options, req, res));
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => void handleUpgrade(options, req, socket, head));
  server.on('connect', (req: IncomingMessage, socket: Duplex) => {
    closeWith(socket, 'HTTP/1.1 405 Method Not Allowed\r\nconnection: close\r\ncontent-type: text/plain\r\n\r\n' +
      'faultline does not tunnel CONNECT: call the destination over plain http:// and let the mesh secure it\n');
  });
  return server;
}

async function handle(options: ListenerOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const cancellation = new Cancellation();
  const generation = options.generation();
  let ctx: RequestContext;
  try {
    ctx = createContext(options, generation.snapshot, req, cancellation, undefined);
  } catch (error) {
    // The request could not even be read (an unparseable target): no context to rescue with.
    const flag = error instanceof MeshError ? error.flag : ResponseFlag.NotSupported;
    res.writeHead(400, { 'content-type': 'text/plain', [Header.flags]: flag }).end(`${(error as Error).message}\n`);
    return;
  }
  const context = ctx;
  let written = '';
  const sent = options.perRequest ? { bytes: 0 } : undefined;
  // One listener for the end of the exchange (a response closes once): a caller that left cancels
  // what is still running, then request.done records what the caller was told.
  res.on('close', () => {
    const finished = res.writableFinished;
    if (!finished) cancellation.cancel(downstreamReset());
    if (sent) recordDone(options.events, context, res.headersSent ? res.statusCode : 0, flagsAtClose(written, context.flags, finished), sent.bytes);
  });
  let response: ProxyResponse;
  try {
    response = await generation[options.direction](ctx);
  } catch (error) {
    if (error instanceof MeshError && error.code === ErrorCode.FaultReset && error.status === 0) {
      // A fault reset the caller's connection: an RST, no response.
      ctx.flags.add(ResponseFlag.FaultInjected);
      req.socket.resetAndDestroy();
      return;
    }
    if (!res.headersSent && !res.destroyed) written = writeRescued(res, rescue(error, ctx), ctx, sent);
    return;
  }
  written = writeResponse(res, response, ctx, sent);
}

/**
 * The flags of a finished exchange: what the caller was told, plus what happened after the head went
 * out (an upstream reset or a timeout mid-body); an unfinished response with neither means the
 * caller left.
 */
function flagsAtClose(written: string, late: ReadonlySet<string>, finished: boolean): string {
  if (finished && late.size === 0) return written;
  const flags = new Set([...written.split(',').filter(Boolean), ...late]);
  const cut = flags.has(ResponseFlag.UpstreamConnectionTermination) || flags.has(ResponseFlag.UpstreamRequestTimeout) || flags.has(ResponseFlag.FaultInjected);
  if (!finished && !cut) flags.add(ResponseFlag.DownstreamConnectionTermination);
  return [...flags].join(',');
}

/** Writes the response; returns the response flags it carries. */
function writeResponse(res: ServerResponse, response: ProxyResponse, ctx: RequestContext, sent: { bytes: number } | undefined): string {
  const headers = response.headers;
  if (ctx.flags.size > 0) {
    const upstream = headers[Header.flags];
    headers[Header.flags] = upstream ? [...new Set([...String(upstream).split(','), ...ctx.flags])].join(',') : [...ctx.flags].join(',');
  }
  if (headers[Header.requestId] === undefined) headers[Header.requestId] = ctx.id;
  if (ctx.attempt > 0) headers[Header.attempts] = String(ctx.attempt);
  if (ctx.faults && ctx.snapshot.config.faultInjection.responseHeader) headers[Header.fault] = ctx.faults.join(',');
  res.writeHead(response.status, headers);
  if (response.flushHeaders) res.flushHeaders();
  const flags = String(headers[Header.flags] ?? '');
  if (!response.body) {
    res.end();
    return flags;
  }
  // Neither pipeline (an AbortController and a DOMException for every stream it finishes) nor pipe
  // (six listeners added and removed per response, and a second 'data' listener to count the bytes):
  // one 'data' listener writes, counts and holds back when the caller's socket is full.
  const body = response.body;
  body.once('error', (error) => {
    ctx.flags.add(error instanceof MeshError ? error.flag : ResponseFlag.UpstreamConnectionTermination);
    res.destroy();
  });
  res.once('close', () => {
    if (!body.readableEnded) body.destroy();
  });
  body.on('data', (chunk: Buffer) => {
    if (sent) sent.bytes += chunk.length;
    if (!res.write(chunk)) {
      body.pause();
      res.once('drain', () => body.resume());
    }
  });
  body.once('end', () => res.end());
  return flags;
}

function writeRescued(res: ServerResponse, rescued: RescuedResponse, ctx: RequestContext, sent: { bytes: number } | undefined): string {
  const headers: Record<string, string> = rescued.headers;
  if (ctx.faults && ctx.snapshot.config.faultInjection.responseHeader) headers[Header.fault] = ctx.faults.join(',');
  res.writeHead(rescued.status, headers).end(rescued.body);
  if (sent) sent.bytes = Buffer.byteLength(rescued.body);
  return rescued.headers[Header.flags] ?? '';
}

async function handleUpgrade(options: ListenerOptions, req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
  const cancellation = new Cancellation();
  socket.once('close', () => cancellation.cancel(downstreamReset()));
  socket.on('error', () => socket.destroy());
  const generation = options.generation();
  let ctx: RequestContext;
  try {
    ctx = createContext(options, generation.snapshot, req, cancellation, { socket, head });
  } catch (error) {
    closeWith(socket, `HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n${(error as Error).message}\n`);
    return;
  }
  try {
    await generation[options.direction](ctx);
    if (options.perRequest) recordDone(options.events, ctx, 101, [...ctx.flags].join(','));
  } catch (error) {
    if (socket.destroyed) return;
    if (error instanceof MeshError && error.code === ErrorCode.FaultReset && error.status === 0) {
      ctx.flags.add(ResponseFlag.FaultInjected);
      if (options.perRequest) recordDone(options.events, ctx, 0, [...ctx.flags].join(','));
      (socket as Socket).resetAndDestroy();
      return;
    }
    const rescued = rescue(error, ctx);
    if (options.perRequest) recordDone(options.events, ctx, rescued.status, rescued.headers[Header.flags] ?? '');
    const lines = [`HTTP/1.1 ${rescued.status} ${STATUS_CODES[rescued.status] ?? 'Error'}`, 'connection: close'];
    for (const [name, value] of Object.entries(rescued.headers)) lines.push(`${name}: ${value}`);
    closeWith(socket, `${lines.join('\r\n')}\r\n\r\n${rescued.body}`);
  }
}

/** No flags, no faults: one frozen empty list for every event that has none (events are kept in a ring; less to keep). */
const NONE: string[] = Object.freeze([]) as unknown as string[];

/** The request.done event: what the caller got, from the edge, once the exchange is over. */
function recordDone(events: EventBus, ctx: RequestContext, status: number, flags: string, responseBytes = 0): void {
  if (ctx.span) {
    ctx.span.end(status, flags, {
      'faultline.attempts': ctx.attempt,
      ...(ctx.route && { 'faultline.route': ctx.route.name }),
      ...(ctx.destination && { 'faultline.destination': ctx.destination.service }),
      ...(ctx.endpoint && { 'faultline.endpoint': ctx.endpoint.address }),
      ...(ctx.faults && { 'faultline.faults': ctx.faults.join(',') }),
    });
  }
  const monotonic = performance.now();
  // Built now, as the exchange closed; numbered, stamped and handed to subscribers at the end of this turn's I/O.
  events.emitSoon({
    type: 'request.done',
    seq: 0,
    time: 0,
    monotonic,
    sidecar: '',
    requestId: ctx.id,
    traceId: ctx.traceId,
    direction: ctx.direction,
    source: ctx.source,
    service: ctx.destination?.service ?? null,
    route: ctx.route?.name ?? null,
    endpoint: ctx.endpoint?.address ?? null,
    method: ctx.method,
    authority: ctx.host,
    path: ctx.pathname,
    status,
    flags: flags ? flags.split(',') : NONE,
    attempts: ctx.attempt,
    durationMs: monotonic - ctx.startedAt,
    requestBytes: ctx.body.bytes,
    responseBytes,
    faults: ctx.faults ?? NONE,
  });
}

/** Writes a last raw response on a socket outside HTTP handling (upgrade, CONNECT) and closes it. */
function closeWith(socket: Duplex, text: string): void {
  socket.end(text, () => socket.destroy());
}

/** Reads the request once: where it goes (origin-form with Host, or a forward proxy's absolute-form URI) and what to send. */
export function createContext(
  options: ListenerOptions,
  snapshot: Snapshot,
  req: IncomingMessage,
  cancellation: Cancellation,
  upgrade: UpgradeRequest | undefined,
): RequestContext {
  const url = req.url ?? '/';
  let authority: string;
  let path: string;
  if (url.startsWith('/')) {
    authority = req.headers.host ?? '';
    path = url;
  } else {
    const absolute = parseAbsolute(url);
    authority = absolute.host;
    path = absolute.pathname + absolute.search;
  }
  const headers = withoutHopByHop(req.headers, upgrade !== undefined);
  headers.host = authority;
  headers[Header.forwardedFor] = appendForwardedFor(req.headers[Header.forwardedFor], req.socket.remoteAddress);
  headers[Header.forwardedProto] ??= 'http';
  const id = (req.headers[Header.requestId] as string | undefined) || randomUUID();
  headers[Header.requestId] = id;
  // Inbound, the caller is who its client certificate says (mTLS), else who its sidecar's header says.
  const peer = options.direction === 'inbound' ? peerService(req.socket) : undefined;
  const source = options.direction === 'outbound' ? options.service : (peer ?? String(req.headers[Header.source] ?? 'unknown'));
  // Outbound, and inbound under mTLS, the app downstream is told who called, whatever the caller claimed.
  if (options.direction === 'outbound' || peer) headers[Header.source] = source;

  const queryAt = path.indexOf('?');
  const pathname = queryAt === -1 ? path : path.slice(0, queryAt);
  const host = stripPort(authority).toLowerCase();
  const method = req.method ?? 'GET';
  const hop = options.tracer?.startHop(options.direction === 'outbound', req.headers, headers);
  const span = hop?.span;
  // The span's name and attributes are built only for a hop that is sampled.
  span?.describe(`${method} ${host}`, {
    'http.request.method': method,
    'server.address': host,
    'url.path': pathname,
    'faultline.sidecar': options.sidecar,
    'faultline.direction': options.direction,
  });
  // Inbound, the app's own calls continue from this hop; outbound, each attempt span takes over.
  if (span && options.direction === 'inbound') propagate(span, headers);
  const body = new RequestBody(
    upgrade === undefined && hasBody(req.headers) ? req : null,
    req.headers['content-length'] === undefined ? undefined : Number(req.headers['content-length']),
  );
  const traceId = hop ? hop.traceId : traceIdOf(req.headers);
  return new Context(id, options, source, snapshot, method, host, path, pathname, headers, body, upgrade, cancellation, traceId, span);
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
  readonly upgrade: UpgradeRequest | undefined;
  readonly flags = new Set<ResponseFlag>();
  cancellation: Cancellation;
  traceId: string | null;
  span: SampledSpan | undefined;
  attempt = 0;
  tried: Set<EndpointState> | undefined = undefined;
  faults: string[] | undefined = undefined;
  route: RouteSpec | undefined = undefined;
  destination: DestinationSpec | undefined = undefined;
  endpoint: EndpointState | undefined = undefined;
  #query: URLSearchParams | undefined = undefined;

  constructor(
    id: string,
    listener: ListenerOptions,
    source: string,
    snapshot: Snapshot,
    method: string,
    host: string,
    path: string,
    pathname: string,
    headers: IncomingHttpHeaders,
    body: RequestBody,
    upgrade: UpgradeRequest | undefined,
    cancellation: Cancellation,
    traceId: string | null,
    span: SampledSpan | undefined,
  ) {
    this.id = id;
    this.direction = listener.direction;
    this.sidecar = listener.sidecar;
    this.source = source;
    this.snapshot = snapshot;
    this.startedAt = performance.now();
    this.method = method;
    this.host = host;
    this.path = path;
    this.pathname = pathname;
    this.headers = headers;
    this.body = body;
    this.upgrade = upgrade;
    this.cancellation = cancellation;
    this.traceId = traceId;
    this.span = span;
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
