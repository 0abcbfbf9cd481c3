// abort: answer with a status instead of the upstream (body and headers optional); or, to a gRPC call,
// with a gRPC status — trailers-only, as Envoy's and Istio's grpcStatus abort: HTTP 200,
// content-type application/grpc, grpc-status and grpc-message in the one HEADERS frame; or reset the
// connection (an HTTP/2 caller: the stream); or pass the response but close the connection (the
// stream) after N body bytes — a streaming call cut mid-way. Where the fault is
// injected decides who sees it: at `attempt` the retry layer does (a status or reset it may retry, as
// it would an upstream's), at `request` and `inbound` the caller does (its connection is reset).
import type { IncomingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import { z } from 'zod';
import { ErrorCode, MeshError, ResponseFlag } from '../../errors.ts';
import { GRPC_STATUS_NAMES, httpStatusOfGrpc, parseGrpcStatus, trailersOnly } from '../../http/grpc.ts';
import { Header } from '../../http/headers.ts';
import type { Trailers } from '../../http/types.ts';
import { defineAction, type FaultAction, type Plan } from './action.ts';

const GrpcStatusValue = z
  .union([z.int().min(0).max(16), z.enum([...GRPC_STATUS_NAMES, ...GRPC_STATUS_NAMES.map((n) => n.toLowerCase())])], {
    error: 'expected a gRPC status: a number 0–16 or a name such as UNAVAILABLE',
  })
  .transform((v) => parseGrpcStatus(v)!)
  .meta({ description: 'a gRPC status, 0–16 or its name (UNAVAILABLE = 14): the call is answered trailers-only with it' });

const Abort = z.union([
  z
    .strictObject({
      status: z.int().min(200).max(599).optional(),
      grpcStatus: GrpcStatusValue.optional(),
      message: z.string().optional().meta({ description: "grpcStatus: the grpc-message (default: which fault aborted the call)" }),
      afterMessages: z.int().min(0).optional().meta({ description: 'grpcStatus: pass the response\'s first N messages, then end the call with the status in its trailers (a stream cut mid-way)' }),
      body: z.string().optional(),
      headers: z.record(z.string(), z.string()).optional(),
    })
    .superRefine((a, ctx) => {
      if ((a.status === undefined) === (a.grpcStatus === undefined)) {
        ctx.addIssue({ code: 'custom', path: [a.status === undefined ? 'status' : 'grpcStatus'], message: 'exactly one of status (HTTP) or grpcStatus (gRPC)' });
      } else if (a.grpcStatus !== undefined && a.body !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['body'], message: 'a gRPC abort is trailers-only: no body (its text goes in message)' });
      } else if (a.status !== undefined && a.afterMessages !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['afterMessages'], message: 'afterMessages cuts a gRPC stream: it goes with grpcStatus' });
      } else if (a.status !== undefined && a.message !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['message'], message: 'message is the grpc-message of a grpcStatus abort: an HTTP abort takes body' });
      }
    }),
  z.strictObject({ reset: z.literal(true).meta({ description: 'reset the connection instead of answering' }) }),
  z.strictObject({ closeAfterBytes: z.int().min(0).meta({ description: 'pass the response, but close the connection after this many body bytes' }) }),
]);

export type AbortConfig = z.output<typeof Abort>;

export const abort = defineAction({
  name: 'abort',
  layer: 'http',
  schema: Abort,
  example: { status: 503 },
  create: (config) => abortAction(config),
});

/** Thrown to make the listener reset the caller's connection. */
export const resetByFault = (id: string): MeshError =>
  new MeshError(ErrorCode.FaultReset, 0, ResponseFlag.FaultInjected, `fault "${id}" reset the connection`);

function abortAction(config: AbortConfig): FaultAction {
  if ('reset' in config) {
    return {
      name: 'abort',
      plan: () => ({ reset: true }),
      run: (ctx, _next, { fault, point }) => {
        if (point !== 'attempt') throw resetByFault(fault.id);
        // To the retry layer this is an upstream that reset the connection: retryOn `reset` applies.
        throw new MeshError(ErrorCode.FaultReset, 503, ResponseFlag.UpstreamConnectionTermination, `fault "${fault.id}" reset the upstream connection`);
      },
    };
  }
  if ('closeAfterBytes' in config) {
    const limit = config.closeAfterBytes;
    return {
      name: 'abort',
      plan: () => ({ closeAfterBytes: limit }),
      async run(ctx, next, { fault }) {
        const response = await next(ctx);
        ctx.flags.add(ResponseFlag.FaultInjected);
        return response.body ? { ...response, body: cutAfter(response.body, limit, fault.id) } : response;
      },
    };
  }
  const grpcStatus = config.grpcStatus;
  // A grpcStatus abort on a call that is not gRPC (an HTTP/1.1 caller, say) answers the HTTP status
  // that gRPC status stands for (UNAVAILABLE: 503), so that it still fails as the fault meant.
  const status = grpcStatus === undefined ? config.status! : httpStatusOfGrpc(grpcStatus);
  return {
    name: 'abort',
    plan: (): Plan => (grpcStatus === undefined ? { status } : { grpcStatus }),
    run: async (ctx, next, { fault, point }) => {
      if (point !== 'attempt') ctx.flags.add(ResponseFlag.FaultInjected);
      const message = config.message ?? `fault "${fault.id}" aborted the call`;
      if (grpcStatus !== undefined && ctx.grpc && config.afterMessages !== undefined) {
        // The call goes through; its response stream is cut after N messages, the status in its trailers.
        const response = await next(ctx);
        ctx.flags.add(ResponseFlag.FaultInjected);
        if (!response.body) return response;
        const trailers: Trailers = { fields: undefined };
        // A stream that ends before N messages ends as the upstream ended it.
        const cut = (done: boolean) => (trailers.fields = done ? trailersOf(grpcStatus, message) : response.trailers?.fields);
        return { ...response, body: cutAfterMessages(response.body, config.afterMessages, cut), trailers };
      }
      if (grpcStatus !== undefined && ctx.grpc) {
        // Trailers-only: no body, the status in the head; the retry layer reads it there (retryOn unavailable...).
        return {
          status: 200,
          headers: { ...config.headers, ...trailersOnly(grpcStatus, message), [Header.flags]: ResponseFlag.FaultInjected },
          body: null,
        };
      }
      const text = config.body ?? (config.message === undefined ? `fault "${fault.id}" aborted the request\n` : `${config.message}\n`);
      return {
        status,
        headers: {
          'content-type': 'text/plain; charset=utf-8',
          ...config.headers,
          'content-length': String(Buffer.byteLength(text)),
          [Header.flags]: ResponseFlag.FaultInjected,
        },
        body: Readable.from([Buffer.from(text)]),
      };
    },
  };
}

/** Passes `limit` bytes, then fails the stream as an upstream reset would: the caller's connection is closed mid-body. */
function cutAfter(body: Readable, limit: number, id: string): Readable {
  return Readable.from(
    (async function* () {
      let passed = 0;
      for await (const chunk of body as AsyncIterable<Buffer>) {
        const room = limit - passed;
        if (chunk.length < room) {
          passed += chunk.length;
          yield chunk;
          continue;
        }
        if (room > 0) yield chunk.subarray(0, room);
        throw new MeshError(ErrorCode.FaultReset, 503, ResponseFlag.UpstreamConnectionTermination, `fault "${id}" closed the connection after ${limit} bytes`);
      }
    })(),
    { objectMode: false },
  );
}

/** A gRPC status as trailer fields. */
function trailersOf(code: number, message: string): IncomingHttpHeaders {
  const { 'grpc-status': status, 'grpc-message': text } = trailersOnly(code, message);
  return { 'grpc-status': String(status), 'grpc-message': String(text) };
}

/**
 * Passes the first `limit` gRPC messages (each a 5-byte prefix — compressed flag, 4-byte length — and
 * its bytes), then ends the body (the upstream's stream is cancelled) after `end(true)` set the
 * trailers; `end(false)` when the upstream ended first.
 */
function cutAfterMessages(body: Readable, limit: number, end: (cut: boolean) => void): Readable {
  return Readable.from(
    (async function* () {
      let passed = 0;
      /** Bytes of the message in progress still to pass; its prefix, while incomplete. */
      let left = 0;
      let prefix = Buffer.alloc(0);
      if (limit > 0) {
        for await (const chunk of body as AsyncIterable<Buffer>) {
          let at = 0;
          let out: Buffer[] = [];
          while (at < chunk.length && passed < limit) {
            if (left > 0) {
              const take = Math.min(left, chunk.length - at);
              out.push(chunk.subarray(at, at + take));
              at += take;
              left -= take;
              if (left === 0) passed++;
              continue;
            }
            const need = 5 - prefix.length;
            const part = chunk.subarray(at, at + need);
            prefix = Buffer.concat([prefix, part]);
            at += part.length;
            if (prefix.length < 5) break;
            out.push(prefix);
            left = prefix.readUInt32BE(1);
            prefix = Buffer.alloc(0);
            if (left === 0) passed++;
          }
          if (out.length > 0) yield Buffer.concat(out);
          out = [];
          if (passed >= limit) break;
        }
      }
      body.destroy();
      end(passed >= limit);
    })(),
    { objectMode: false },
  );
}
