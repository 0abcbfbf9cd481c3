// The forwarding core: undici connection pools (keep-alive per endpoint origin) with bodies streamed
// both ways. Chosen over http-proxy-middleware by measurement (docs/benchmarks.md), and because the
// body is ours to hand over per attempt, which retries with a replayed body need.
import { connect } from 'node:net';
import type { Dispatcher } from 'undici';
import { ResponseFlag, downstreamReset, upstreamConnectFailure, upstreamReset } from '../errors.ts';
import { withoutHopByHop } from './headers.ts';
import type { Handler, ProxyResponse, RequestContext } from './types.ts';

const CONNECT_FAILURES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
  'EAI_AGAIN',
  'UND_ERR_CONNECT_TIMEOUT',
]);

export function forward(dispatcher: Dispatcher): Handler {
  return async (ctx) => {
    const dial = ctx.endpoint!.spec.dial;
    if (ctx.upgrade) return tunnel(ctx, dial);
    try {
      const response = await dispatcher.request({
        origin: `http://${dial}`,
        path: ctx.path,
        method: ctx.method as Dispatcher.HttpMethod,
        headers: ctx.headers,
        body: ctx.body.open(),
        signal: ctx.signal,
      });
      return { status: response.statusCode, headers: withoutHopByHop(response.headers), body: response.body };
    } catch (error) {
      throw classify(error, dial, ctx.signal);
    }
  };
}

/** Why an upstream request failed: the caller's abort (or a timeout's), a failed connect, or a reset. */
export function classify(error: unknown, address: string, signal: AbortSignal): unknown {
  if (signal.aborted) return signal.reason ?? downstreamReset();
  const code = (error as { code?: string }).code ?? (error as { cause?: { code?: string } }).cause?.code;
  return code && CONNECT_FAILURES.has(code) ? upstreamConnectFailure(address, error) : upstreamReset(address, error);
}

/** A protocol upgrade (WebSocket): replay the request head upstream, then splice the two sockets. */
function tunnel(ctx: RequestContext, dial: string): Promise<ProxyResponse> {
  const { socket, head } = ctx.upgrade!;
  const colon = dial.lastIndexOf(':');
  return new Promise((resolve, reject) => {
    const upstream = connect({ host: dial.slice(0, colon).replace(/^\[|\]$/g, ''), port: Number(dial.slice(colon + 1)) });
    upstream.once('error', (error) => reject(classify(error, dial, ctx.signal)));
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
