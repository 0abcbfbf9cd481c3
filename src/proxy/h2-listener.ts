// The HTTP/2 side of a listener: each stream becomes the same RequestContext an HTTP/1.1 request does
// (context.ts) and runs through the same stack; the response, or the rescued error, goes back on the
// stream with its trailers; the hop's telemetry ends once the stream closes. Sessions come from the
// protocol front (edge.ts), which hands this server the connections that opened with the HTTP/2
// preface or chose h2 by ALPN. Its limits (h2-limits.ts) hold against floods of streams and resets.
import { constants, createServer, type Http2Server, type IncomingHttpHeaders, type OutgoingHttpHeaders, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import { ErrorCode, MeshError, ResponseFlag, downstreamReset } from '../errors.ts';
import { Cancellation } from '../http/cancellation.ts';
import { grpcStatusFromHttp, grpcStatusFromReset, grpcStatusOf, GrpcStatus } from '../http/grpc.ts';
import { Header, withoutPseudo } from '../http/headers.ts';
import type { ProxyResponse, RequestContext } from '../http/types.ts';
import { createHttp2Context } from './context.ts';
import { HTTP2_LIMITS, http2ServerOptions } from './h2-limits.ts';
import { endHop } from './hop-telemetry.ts';
import { flagsAtClose, markResponse, type ListenerOptions } from './listener.ts';
import { rescue } from './rescue.ts';

/** Headers HTTP/2 forbids in a response (RFC 9113 §8.2.2): an HTTP/1.1 upstream's are dropped on the way. */
const CONNECTION_SPECIFIC = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']);

export function createHttp2Listener(options: ListenerOptions): Http2Server {
  const server = createServer(http2ServerOptions());
  server.on('session', (session: ServerHttp2Session) => {
    // A session's errors end it; they must not end the sidecar (an unhandled 'error' would).
    session.on('error', () => session.destroy());
    session.setTimeout(HTTP2_LIMITS.idleTimeoutMs, () => session.close());
  });
  server.on('sessionError', () => {});
  server.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => void handleStream(options, stream, headers));
  return server;
}

async function handleStream(options: ListenerOptions, stream: ServerHttp2Stream, received: IncomingHttpHeaders): Promise<void> {
  stream.on('error', () => {
    // A reset or a broken session: read on 'close', where the exchange ends.
  });
  if (received[':method'] === 'CONNECT') {
    // As on HTTP/1.1 (listener.ts): no tunnels; the mesh secures plain calls itself.
    stream.respond({ ':status': 405, 'content-type': 'text/plain' });
    stream.end('faultline does not tunnel CONNECT: call the destination over plain http:// and let the mesh secure it\n');
    return;
  }
  const cancellation = new Cancellation();
  const generation = options.generation();
  let ctx: RequestContext;
  try {
    ctx = createHttp2Context(options, generation.snapshot, stream, received, cancellation);
  } catch (error) {
    const flag = error instanceof MeshError ? error.flag : ResponseFlag.NotSupported;
    if (stream.closed) return;
    stream.respond({ ':status': 400, 'content-type': 'text/plain', [Header.flags]: flag });
    stream.end(`${(error as Error).message}\n`);
    return;
  }
  const context = ctx;
  let written = '';
  let status = 0;
  const sent = options.perRequest ? { bytes: 0 } : undefined;
  stream.once('close', () => {
    const finished = stream.headersSent && stream.rstCode === constants.NGHTTP2_NO_ERROR && stream.writableFinished;
    if (!finished) cancellation.cancel(downstreamReset());
    // A gRPC call that ended without a grpc-status: what its client makes of it (src/http/grpc.ts).
    if (context.grpc && context.grpcStatus === null) {
      context.grpcStatus = !finished ? grpcStatusFromReset(stream.rstCode ?? constants.NGHTTP2_INTERNAL_ERROR) : status === 200 ? GrpcStatus.UNKNOWN : grpcStatusFromHttp(status);
    }
    if (sent) endHop(options.events, context, status, flagsAtClose(written, context.flags, finished), sent.bytes);
  });
  let response: ProxyResponse;
  try {
    response = await generation[options.direction]!(ctx);
  } catch (error) {
    if (stream.headersSent || stream.closed || stream.destroyed) return;
    // An upstream that did not process the request: refused on to the caller, so that it (or its
    // sidecar's retry layer, or a gRPC client) may send it again, as it would have from the upstream itself.
    if (error instanceof MeshError && error.code === ErrorCode.UpstreamRefusedStream) {
      ctx.flags.add(error.flag);
      stream.close(constants.NGHTTP2_REFUSED_STREAM);
      return;
    }
    const rescued = rescue(error, ctx);
    if (!rescued) {
      // A fault's reset: the stream alone is reset, the caller's other streams go on.
      stream.close(constants.NGHTTP2_INTERNAL_ERROR);
      return;
    }
    const headers: OutgoingHttpHeaders = { ...rescued.headers, ':status': rescued.status };
    if (ctx.faults && ctx.snapshot.config.faultInjection.responseHeader) headers[Header.fault] = ctx.faults.join(',');
    status = rescued.status;
    written = rescued.headers[Header.flags] ?? '';
    if (rescued.grpcStatus !== undefined) {
      // gRPC's trailers-only answer: one HEADERS frame that ends the stream.
      ctx.grpcStatus = rescued.grpcStatus;
      stream.respond(headers, { endStream: true });
      return;
    }
    stream.respond(headers);
    stream.end(rescued.body);
    if (sent) sent.bytes = Buffer.byteLength(rescued.body);
    return;
  }
  if (stream.closed || stream.destroyed) {
    response.body?.destroy();
    return;
  }
  status = response.status;
  written = writeResponse(stream, response, ctx, sent);
}

/** Writes the response and its trailers on the stream; returns the response flags it carries. */
function writeResponse(stream: ServerHttp2Stream, response: ProxyResponse, ctx: RequestContext, sent: { bytes: number } | undefined): string {
  const headers: OutgoingHttpHeaders = { ':status': response.status };
  for (const key in response.headers) if (!CONNECTION_SPECIFIC.has(key) && key.charCodeAt(0) !== 0x3a) headers[key] = response.headers[key];
  const flags = markResponse(headers, ctx);
  const body = response.body;
  const trailers = response.trailers;
  if (ctx.grpc && body === null) ctx.grpcStatus = grpcStatusOf(response.headers);
  stream.respond(headers, { endStream: body === null, waitForTrailers: body !== null && trailers !== undefined });
  if (!body) return flags;
  if (stream.writableEnded) {
    // HEAD, 204, 304: node:http2 ended the stream with the head; nothing of a body may follow.
    body.destroy();
    return flags;
  }
  if (trailers) {
    stream.once('wantTrailers', () => {
      if (ctx.grpc) ctx.grpcStatus = grpcStatusOf(trailers.fields);
      stream.sendTrailers(trailers.fields ? withoutPseudo(trailers.fields) : {});
    });
  }
  body.once('error', (error) => {
    ctx.flags.add(error instanceof MeshError ? error.flag : ResponseFlag.UpstreamConnectionTermination);
    if (!stream.closed) stream.close(constants.NGHTTP2_INTERNAL_ERROR);
  });
  stream.once('close', () => {
    if (!body.readableEnded) body.destroy();
  });
  body.on('data', (chunk: Buffer) => {
    if (sent) sent.bytes += chunk.length;
    if (!stream.write(chunk)) {
      body.pause();
      stream.once('drain', () => body.resume());
    }
  });
  body.once('end', () => stream.end());
  return flags;
}
