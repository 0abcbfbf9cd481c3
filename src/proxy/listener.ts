// The edge of the request path: an HTTP/1.1 server that turns each request into a RequestContext
// (context.ts), runs it through the generation's stack and writes the response, or the rescued error;
// when the exchange is over, it ends the hop's telemetry (hop-telemetry.ts) once. Its overload guards
// (a cap on connections, a deadline on request heads) keep slow clients from holding it.
import { STATUS_CODES, createServer, type IncomingMessage, type OutgoingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { ListenerLimitsConfig } from '../config/resources.ts';
import type { Duplex } from 'node:stream';
import { MeshError, ResponseFlag, downstreamReset } from '../errors.ts';
import { Cancellation } from '../http/cancellation.ts';
import { Header, withoutPseudo } from '../http/headers.ts';
import type { ProxyResponse, RequestContext } from '../http/types.ts';
import type { EventBus } from '../telemetry/events.ts';
import { createContext, type ContextOptions } from './context.ts';
import { endHop } from './hop-telemetry.ts';
import { rescue, type RescuedResponse } from './rescue.ts';
import type { Generation } from './stack.ts';

export interface ListenerOptions extends ContextOptions {
  readonly generation: () => Generation;
  readonly events: EventBus;
  /** Per-request telemetry (request.done, hence request metrics and access log lines). */
  readonly perRequest: boolean;
  /** Its overload guards (the sidecar's `listeners`). */
  readonly limits: ListenerLimitsConfig;
}

/** The listener's HTTP/1.1 server; its connections come from the protocol front (edge.ts), TLS ones under mTLS. */
export function createListener(options: ListenerOptions): Server {
  const { headersTimeout, maxConnections } = options.limits;
  // Node looks for heads past their deadline every connectionsCheckingInterval (30 s unless told):
  // checked ten times per deadline, at least once a second, a slow head is cut close to its deadline.
  const settings = { keepAliveTimeout: 65_000, requestTimeout: 0, headersTimeout, connectionsCheckingInterval: Math.min(1_000, headersTimeout / 10) };
  const server: Server = createServer(settings);
  server.maxConnections = maxConnections;
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
    if (sent) endHop(options.events, context, res.headersSent ? res.statusCode : 0, flagsAtClose(written, context.flags, finished), sent.bytes);
  });
  let response: ProxyResponse;
  try {
    response = await generation[options.direction]!(ctx);
  } catch (error) {
    if (res.headersSent || res.destroyed) return;
    const rescued = rescue(error, ctx);
    if (rescued) written = writeRescued(res, rescued, ctx, sent);
    else req.socket.resetAndDestroy();
    return;
  }
  written = writeResponse(res, response, ctx, sent);
}

/**
 * The flags of a finished exchange: what the caller was told, plus what happened after the head went
 * out (an upstream reset or a timeout mid-body); an unfinished response with neither means the
 * caller left.
 */
export function flagsAtClose(written: string, late: ReadonlySet<string>, finished: boolean): string {
  if (finished && late.size === 0) return written;
  const flags = new Set([...written.split(',').filter(Boolean), ...late]);
  const cut = flags.has(ResponseFlag.UpstreamConnectionTermination) || flags.has(ResponseFlag.UpstreamRequestTimeout) || flags.has(ResponseFlag.FaultInjected);
  if (!finished && !cut) flags.add(ResponseFlag.DownstreamConnectionTermination);
  return [...flags].join(',');
}

/** Adds what the mesh tells the caller to a response's headers (flags, request id, attempts, faults); returns its flags. */
export function markResponse(headers: OutgoingHttpHeaders, ctx: RequestContext): string {
  if (ctx.flags.size > 0) {
    const upstream = headers[Header.flags];
    headers[Header.flags] = upstream ? [...new Set([...String(upstream).split(','), ...ctx.flags])].join(',') : [...ctx.flags].join(',');
  }
  if (headers[Header.requestId] === undefined) headers[Header.requestId] = ctx.id;
  if (ctx.attempt > 0) headers[Header.attempts] = String(ctx.attempt);
  if (ctx.faults && ctx.snapshot.config.faultInjection.responseHeader) headers[Header.fault] = ctx.faults.join(',');
  return String(headers[Header.flags] ?? '');
}

/** Writes the response; returns the response flags it carries. */
function writeResponse(res: ServerResponse, response: ProxyResponse, ctx: RequestContext, sent: { bytes: number } | undefined): string {
  const headers = response.headers;
  const flags = markResponse(headers, ctx);
  res.writeHead(response.status, headers);
  if (response.flushHeaders) res.flushHeaders();
  if (!response.body) {
    res.end();
    return flags;
  }
  // Neither pipeline (an AbortController and a DOMException for every stream it finishes) nor pipe
  // (six listeners added and removed per response, and a second 'data' listener to count the bytes):
  // one 'data' listener writes, counts and holds back when the caller's socket is full.
  // `on`, not `once`: each of these events comes once per stream, and once() would make a wrapper
  // and a bound function per listener.
  const body = response.body;
  body.on('error', (error) => {
    ctx.flags.add(error instanceof MeshError ? error.flag : ResponseFlag.UpstreamConnectionTermination);
    res.destroy();
  });
  res.on('close', () => {
    if (!body.readableEnded) body.destroy();
  });
  body.on('data', (chunk: Buffer) => {
    if (sent) sent.bytes += chunk.length;
    if (!res.write(chunk)) {
      body.pause();
      res.once('drain', () => body.resume());
    }
  });
  body.on('end', () => {
    // Trailers reach an HTTP/1.1 caller on a chunked response (Node sends them only then).
    const trailers = response.trailers?.fields;
    if (trailers) res.addTrailers(withoutPseudo(trailers) as OutgoingHttpHeaders);
    res.end();
  });
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
  let rescued: RescuedResponse | null = null;
  let status = 101;
  try {
    await generation[options.direction]!(ctx);
  } catch (error) {
    if (socket.destroyed) return;
    rescued = rescue(error, ctx);
    status = rescued ? rescued.status : 0;
  }
  // The exchange is over: spliced to the upstream (101), rescued, or reset by a fault (0).
  if (options.perRequest) endHop(options.events, ctx, status, [...ctx.flags].join(','));
  if (rescued) closeWith(socket, rawResponse(rescued));
  else if (status === 0) (socket as Socket).resetAndDestroy();
}

/** A rescued response as the raw text of an HTTP/1.1 response that closes the connection. */
function rawResponse(rescued: RescuedResponse): string {
  const lines = [`HTTP/1.1 ${rescued.status} ${STATUS_CODES[rescued.status] ?? 'Error'}`, 'connection: close'];
  for (const [name, value] of Object.entries(rescued.headers)) lines.push(`${name}: ${value}`);
  return `${lines.join('\r\n')}\r\n\r\n${rescued.body}`;
}

/** Writes a last raw response on a socket outside HTTP handling (upgrade, CONNECT) and closes it. */
function closeWith(socket: Duplex, text: string): void {
  socket.end(text, () => socket.destroy());
}
