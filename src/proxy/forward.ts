// The forwarding core: undici connection pools (keep-alive per endpoint origin), driven through its
// handler API so that bodies stream both ways with backpressure and a cancelled request aborts its
// upstream exchange at once (freeing the socket). Chosen over http-proxy-middleware and node:http by
// measurement (docs/benchmarks.md), and because the request body is ours to hand over per attempt,
// which retries with a replayed body need.
import type { IncomingHttpHeaders } from 'node:http';
import { connect } from 'node:net';
import { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { MeshError, ResponseFlag, downstreamReset, idleTimeout } from '../errors.ts';
import type { Cancellation } from '../http/cancellation.ts';
import { withoutHopByHop } from '../http/headers.ts';
import type { Handler, ProxyResponse, RequestContext, Trailers } from '../http/types.ts';
import type { ServiceProtocol } from '../config/resources.ts';
import { forwardHttp2 } from './forward-h2.ts';
import { classify } from './upstream-errors.ts';
import type { Http2Sessions } from './h2-sessions.ts';


/**
 * The one rule for what a hop speaks (docs/architecture.md, "Protocols"): HTTP/2 when the app it ends
 * at speaks it (its service's protocol is http2 or grpc: then the hop between sidecars is HTTP/2 too),
 * or, to a peer sidecar, when the caller spoke HTTP/2 (its trailers and streams then cross the mesh
 * intact; the peer speaks the app's protocol to the app). Otherwise HTTP/1.1, on the pools measured in
 * docs/benchmarks.md; protocol upgrades (WebSocket) are HTTP/1.1 always.
 */
export function speaksHttp2(ctx: RequestContext, appProtocol: ServiceProtocol): boolean {
  if (ctx.upgrade) return false;
  if (appProtocol !== 'http1') return true;
  return ctx.protocol === 'http2' && ctx.endpoint!.spec.sidecar !== undefined;
}

/**
 * The last handler: the request to the chosen endpoint, over HTTP/2 (a stream on a pooled session) or
 * HTTP/1.1 (undici's pools) by speaksHttp2; `appProtocol` is what the app at the end of the hop speaks.
 */
export function forward(dispatcherFor: (service: string | undefined) => Dispatcher, sessions: Http2Sessions, appProtocol: (ctx: RequestContext) => ServiceProtocol): Handler {
  return (ctx) => {
    const dial = ctx.endpoint!.spec.dial;
    const service = ctx.destination?.service;
    if (speaksHttp2(ctx, appProtocol(ctx))) return forwardHttp2(sessions, ctx, service, dial);
    const dispatcher = dispatcherFor(service);
    if (ctx.upgrade) return tunnel(ctx, dial);
    if (ctx.cancellation.cancelled) return Promise.reject(ctx.cancellation.reason);
    // An HTTP/2 caller's `te: trailers` is hop-by-hop in HTTP/1.1: not sent on.
    const headers = ctx.protocol === 'http2' && ctx.headers.te !== undefined ? withoutHopByHop(ctx.headers) : ctx.headers;
    return new Promise((resolve, reject) => {
      dispatcher.dispatch(
        { origin: `http://${dial}`, path: ctx.path, method: ctx.method as Dispatcher.HttpMethod, headers, body: ctx.body.open() },
        new UpstreamExchange(ctx.cancellation, dial, ctx.route?.idleTimeoutMs, resolve, reject),
      );
    });
  };
}

/**
 * One upstream request/response, as undici's handler callbacks, turned into a ProxyResponse with a
 * streaming body. It is its response's trailers holder too (`fields`): no object more per response.
 */
class UpstreamExchange implements Dispatcher.DispatchHandler, Trailers {
  fields: IncomingHttpHeaders | undefined = undefined;
  readonly #cancellation: Cancellation;
  readonly #dial: string;
  readonly #resolve: (response: ProxyResponse) => void;
  readonly #reject: (error: unknown) => void;
  #body: Readable | undefined;
  #ended = false;
  #unregister: (() => void) | undefined;
  readonly #idleMs: number | undefined;
  #idle: NodeJS.Timeout | undefined;

  constructor(
    cancellation: Cancellation,
    dial: string,
    idleMs: number | undefined,
    resolve: (response: ProxyResponse) => void,
    reject: (error: unknown) => void,
  ) {
    this.#cancellation = cancellation;
    this.#dial = dial;
    this.#idleMs = idleMs;
    this.#resolve = resolve;
    this.#reject = reject;
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#unregister = this.#cancellation.onCancel((reason) => controller.abort(reason as Error));
    // The idle timer restarts with every byte the upstream sends; it fires only on silence.
    const idleMs = this.#idleMs;
    if (idleMs !== undefined) this.#idle = setTimeout(() => controller.abort(idleTimeout(idleMs)), idleMs);
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    this.#idle?.refresh();
    if (statusCode < 200) return; // informational (100 Continue): the final response follows
    this.#body = new UpstreamBody(this, controller);
    this.#resolve({ status: statusCode, headers: withoutHopByHop(headers), body: this.#body, trailers: this });
  }

  /** Whether the upstream's response ended (its body is all pushed). */
  get ended(): boolean {
    return this.#ended;
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.#idle?.refresh();
    if (!this.#body!.push(chunk)) controller.pause();
  }

  onResponseEnd(_controller: Dispatcher.DispatchController, trailers: IncomingHttpHeaders): void {
    // undici gives an empty object when there were none: only trailers that came are kept.
    for (const _ in trailers) {
      this.fields = trailers;
      break;
    }
    clearTimeout(this.#idle);
    this.#ended = true;
    this.#unregister?.();
    this.#body!.push(null);
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    clearTimeout(this.#idle);
    this.#ended = true;
    this.#unregister?.();
    const failure = error instanceof MeshError ? error : classify(error, this.#dial, this.#cancellation);
    if (this.#body) this.#body.destroy(failure as Error);
    else this.#reject(failure);
  }
}


/**
 * An upstream response's body as the layers read it: undici's data pushed in, backpressure passed
 * back to undici. A subclass rather than a Readable with read/destroy options: no closures per response.
 */
class UpstreamBody extends Readable {
  readonly #exchange: UpstreamExchange;
  readonly #controller: Dispatcher.DispatchController;

  constructor(exchange: UpstreamExchange, controller: Dispatcher.DispatchController) {
    super();
    this.#exchange = exchange;
    this.#controller = controller;
  }

  override _read(): void {
    this.#controller.resume();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    // The caller went away mid-body: stop the upstream exchange too.
    if (!this.#exchange.ended) this.#controller.abort(error ?? downstreamReset());
    callback(error);
  }
}

/** A protocol upgrade (WebSocket): replay the request head upstream, then splice the two sockets. */
function tunnel(ctx: RequestContext, dial: string): Promise<ProxyResponse> {
  const { socket, head } = ctx.upgrade!;
  const colon = dial.lastIndexOf(':');
  return new Promise((resolve, reject) => {
    const upstream = connect({ host: dial.slice(0, colon).replace(/^\[|\]$/g, ''), port: Number(dial.slice(colon + 1)) });
    upstream.once('error', (error) => reject(classify(error, dial, ctx.cancellation)));
    upstream.once('connect', () => {
      upstream.removeAllListeners('error');
      const lines = [`${ctx.method} ${ctx.path} HTTP/1.1`];
      for (const [name, value] of Object.entries(ctx.headers)) {
        for (const v of Array.isArray(value) ? value : [value]) if (v !== undefined) lines.push(`${name}: ${v}`);
      }
      upstream.write(`${lines.join('\r\n')}\r\n\r\n`);
      if (head.length > 0) upstream.write(head);
      const close = (error?: Error) => {
        if (error) ctx.flags.add(ResponseFlag.UpstreamConnectionTermination);
        upstream.destroy();
        socket.destroy();
      };
      upstream.on('error', close).on('close', () => close());
      socket.on('error', close).on('close', () => close());
      upstream.pipe(socket);
      socket.pipe(upstream);
      resolve({ status: 101, headers: {}, body: null, upgraded: true });
    });
  });
}
