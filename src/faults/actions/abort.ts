// abort: answer with a status instead of the upstream (body and headers optional); or reset the
// connection; or pass the response but close the connection after N body bytes. Where the fault is
// injected decides who sees it: at `attempt` the retry layer does (a status or reset it may retry, as
// it would an upstream's), at `request` and `inbound` the caller does (its connection is reset).
import { Readable } from 'node:stream';
import { z } from 'zod';
import { ErrorCode, MeshError, ResponseFlag } from '../../errors.ts';
import { Header } from '../../http/headers.ts';
import { defineAction, type FaultAction } from './action.ts';

const Abort = z.union([
  z.strictObject({
    status: z.int().min(200).max(599),
    body: z.string().optional(),
    headers: z.record(z.string(), z.string()).optional(),
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
  return {
    name: 'abort',
    plan: () => ({ status: config.status }),
    run: async (ctx, _next, { fault, point }) => {
      const text = config.body ?? `fault "${fault.id}" aborted the request\n`;
      if (point !== 'attempt') ctx.flags.add(ResponseFlag.FaultInjected);
      return {
        status: config.status,
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
