// One upstream exchange over HTTP/2 (a stream on a pooled session, h2-sessions.ts): the request body
// streamed with backpressure, the caller's request trailers sent after it, the response body streamed
// back as the caller reads it, its trailers kept for the caller. A stream the peer did not process
// (REFUSED_STREAM, above a GOAWAY's lastStreamID) fails as refused — the retry layer's `refused-stream`.
import { constants, type ClientHttp2Stream, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import { Readable } from 'node:stream';
import { MeshError, downstreamReset, idleTimeout, upstreamConnectFailure, upstreamRefusedStream, upstreamReset } from '../errors.ts';
import { formatGrpcTimeout } from '../http/grpc.ts';
import type { ProxyResponse, RequestContext, Trailers } from '../http/types.ts';
// Imported, not the global: globalThis.performance is a lazy getter, read on every use.
import { performance } from 'node:perf_hooks';
import { classify } from './upstream-errors.ts';
import type { Http2Sessions, PooledSession } from './h2-sessions.ts';

/** Headers HTTP/2 forbids (RFC 9113 §8.2.2); node:http2 throws on them. `te` is allowed as `trailers` only. */
const CONNECTION_SPECIFIC = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'http2-settings', 'host']);

export function forwardHttp2(sessions: Http2Sessions, ctx: RequestContext, service: string | undefined, dial: string): Promise<ProxyResponse> {
  if (ctx.cancellation.cancelled) return Promise.reject(ctx.cancellation.reason);
  const headers: OutgoingHttpHeaders = {
    ':method': ctx.method,
    ':path': ctx.path,
    ':authority': String(ctx.headers.host ?? ''),
    ':scheme': 'http',
  };
  for (const key in ctx.headers) {
    if (CONNECTION_SPECIFIC.has(key) || (key === 'te' && ctx.headers.te !== 'trailers')) continue;
    headers[key] = ctx.headers[key];
  }
  // A gRPC call with a deadline: the upstream is told what is left of it (Envoy rewrites it so too).
  if (ctx.grpc && ctx.deadline !== undefined) headers['grpc-timeout'] = formatGrpcTimeout(ctx.deadline - performance.now());
  const body = ctx.body.open();
  // A caller that may send request trailers (it spoke HTTP/2, with a body): the upstream stream waits for them.
  const waitForTrailers = ctx.trailers !== undefined && body !== null;
  let pooled = sessions.session(service, dial);
  let stream: ClientHttp2Stream;
  try {
    try {
      stream = pooled.request(headers, body === null, waitForTrailers);
    } catch (error) {
      // The session went away between the pick and the request (a GOAWAY just read): one new session.
      const code = (error as { code?: string }).code;
      if (code !== 'ERR_HTTP2_GOAWAY_SESSION' && code !== 'ERR_HTTP2_INVALID_SESSION') throw error;
      pooled = sessions.session(service, dial);
      stream = pooled.request(headers, body === null, waitForTrailers);
    }
  } catch (error) {
    // Headers node:http2 will not send (ERR_HTTP2_INVALID_HEADER_VALUE...): one failed request, rescued.
    return Promise.reject(error);
  }
  return new Promise((resolve, reject) => new Http2Exchange(ctx, pooled, stream, dial, body, ctx.trailers, resolve, reject));
}

class Http2Exchange {
  readonly #ctx: RequestContext;
  readonly #pooled: PooledSession;
  readonly #stream: ClientHttp2Stream;
  readonly #dial: string;
  readonly #resolve: (response: ProxyResponse) => void;
  readonly #reject: (error: unknown) => void;
  #body: Readable | undefined;
  /** The whole response came in its head. */
  #complete = false;
  #failure: unknown;
  #idle: NodeJS.Timeout | undefined;
  readonly #unregister: () => void;

  constructor(
    ctx: RequestContext,
    pooled: PooledSession,
    stream: ClientHttp2Stream,
    dial: string,
    body: Readable | null,
    trailers: Trailers | undefined,
    resolve: (response: ProxyResponse) => void,
    reject: (error: unknown) => void,
  ) {
    this.#ctx = ctx;
    this.#pooled = pooled;
    this.#stream = stream;
    this.#dial = dial;
    this.#resolve = resolve;
    this.#reject = reject;
    this.#unregister = ctx.cancellation.onCancel((reason) => this.#fail(reason, constants.NGHTTP2_CANCEL));
    const idleMs = ctx.route?.idleTimeoutMs;
    if (idleMs !== undefined) this.#idle = setTimeout(() => this.#fail(idleTimeout(idleMs), constants.NGHTTP2_CANCEL), idleMs);

    // The request body, with backpressure (pipe waits for 'drain'); the caller's trailers after it.
    if (body) {
      if (trailers) stream.once('wantTrailers', () => stream.sendTrailers(trailers.fields ?? {}));
      body.once('error', (error) => this.#fail(error instanceof MeshError ? error : downstreamReset(), constants.NGHTTP2_CANCEL));
      body.pipe(stream);
    }
    stream.on('error', () => {
      // Read on 'close' from rstCode and the session's state: one place decides what failed.
    });
    stream.once('response', (head: IncomingHttpHeaders, flags: number) => this.#respond(head, flags));
    stream.once('close', () => this.#closed());
  }

  #respond(head: IncomingHttpHeaders, flags: number): void {
    this.#idle?.refresh();
    const stream = this.#stream;
    const status = Number(head[':status']);
    const headers: OutgoingHttpHeaders = {};
    for (const key in head) if (key.charCodeAt(0) !== 0x3a) headers[key] = head[key];
    if (flags & constants.NGHTTP2_FLAG_END_STREAM) {
      // A head that ends the stream (gRPC's trailers-only error: grpc-status in the one HEADERS frame)
      // stays one: no body, no trailers after it, or a gRPC client would not look for its status there.
      this.#complete = true;
      clearTimeout(this.#idle);
      this.#unregister();
      stream.resume();
      this.#resolve({ status, headers, body: null });
      return;
    }
    const trailers: Trailers = { fields: undefined };
    const body = (this.#body = new Readable({
      read: () => stream.resume(),
      destroy: (error, callback) => {
        // The caller went away mid-body: cancel the upstream stream too.
        if (!stream.closed) stream.close(constants.NGHTTP2_CANCEL);
        callback(error);
      },
    }));
    stream.on('data', (chunk: Buffer) => {
      this.#idle?.refresh();
      if (!body.push(chunk)) stream.pause();
    });
    stream.once('trailers', (fields: IncomingHttpHeaders) => (trailers.fields = fields));
    stream.once('end', () => {
      clearTimeout(this.#idle);
      this.#unregister();
      body.push(null);
    });
    this.#resolve({ status, headers, body, trailers });
  }

  /** Fails the exchange (a cancellation, a timeout, the caller's body) and resets the stream with `code`. */
  #fail(reason: unknown, code: number): void {
    this.#failure ??= reason;
    if (!this.#stream.closed) this.#stream.close(code);
  }

  #closed(): void {
    clearTimeout(this.#idle);
    this.#unregister();
    const stream = this.#stream;
    if (this.#complete || this.#body?.readableEnded || (this.#body && stream.readableEnded && stream.rstCode === constants.NGHTTP2_NO_ERROR)) return;
    const failure = this.#failure ?? this.#why();
    if (this.#body) {
      if (!this.#body.destroyed) this.#body.destroy(failure as Error);
    } else {
      this.#reject(failure);
    }
  }

  /** Why the stream closed without a whole response: the caller's cancellation, a failed connect, a refusal, or a reset. */
  #why(): unknown {
    const pooled = this.#pooled;
    const stream = this.#stream;
    if (this.#ctx.cancellation.cancelled) return this.#ctx.cancellation.reason;
    if (!pooled.connected) return pooled.error ? classify(pooled.error, this.#dial, this.#ctx.cancellation) : upstreamConnectFailure(this.#dial, 'the HTTP/2 session closed before it connected');
    if (!this.#body && pooled.unprocessed(stream)) {
      const why = stream.rstCode === constants.NGHTTP2_REFUSED_STREAM ? 'REFUSED_STREAM' : `GOAWAY (last stream ${pooled.goaway?.lastStreamID ?? 'none'}, this one ${stream.id ?? 'never sent'})`;
      return upstreamRefusedStream(this.#dial, why);
    }
    return upstreamReset(this.#dial, new Error(`HTTP/2 stream closed with ${rstName(stream.rstCode)}${pooled.goaway ? ` after GOAWAY ${rstName(pooled.goaway.code)}` : ''}`));
  }
}

/** HTTP/2 error codes by number (RFC 9113 §7), for messages. */
const ERROR_CODES = ['NO_ERROR', 'PROTOCOL_ERROR', 'INTERNAL_ERROR', 'FLOW_CONTROL_ERROR', 'SETTINGS_TIMEOUT', 'STREAM_CLOSED', 'FRAME_SIZE_ERROR', 'REFUSED_STREAM', 'CANCEL', 'COMPRESSION_ERROR', 'CONNECT_ERROR', 'ENHANCE_YOUR_CALM', 'INADEQUATE_SECURITY', 'HTTP_1_1_REQUIRED'];

export function rstName(code: number | undefined): string {
  return code === undefined ? 'no code' : (ERROR_CODES[code] ?? `error code ${code}`);
}
