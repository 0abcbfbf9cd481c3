// The one place where an error becomes a response: status, JSON body and response flags, so a caller
// (and analysis) can tell a mesh failure from an application's; or none, when a fault resets the caller.
// A gRPC caller gets a gRPC answer instead, as Envoy's local replies are: trailers-only (HTTP 200, the
// status in the one HEADERS frame), a timeout as DEADLINE_EXCEEDED (not a 504 its client would read
// as UNAVAILABLE), the rest by gRPC's HTTP mapping (503 UNAVAILABLE, 404 UNIMPLEMENTED, 403
// PERMISSION_DENIED), the mesh's own failure (500) as INTERNAL.
import { ErrorCode, MeshError, ResponseFlag, describe } from '../errors.ts';
import { GrpcStatus, grpcStatusFromHttp, trailersOnly } from '../http/grpc.ts';
import { Header } from '../http/headers.ts';
import type { RequestContext } from '../http/types.ts';

export interface RescuedResponse {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
  /** For a gRPC caller: the status in the head, which ends the stream (body empty). */
  readonly grpcStatus?: number;
}

/** The response for a failed request, or null when a fault reset the caller's connection: an RST, no response. */
export function rescue(error: unknown, ctx: RequestContext): RescuedResponse | null {
  if (error instanceof MeshError && error.code === ErrorCode.FaultReset && error.status === 0) {
    ctx.flags.add(ResponseFlag.FaultInjected);
    return null;
  }
  const mesh = error instanceof MeshError
    ? error
    : new MeshError(ErrorCode.Internal, 500, ResponseFlag.InternalError, `internal proxy error: ${describe(error)}`, { cause: error });
  ctx.flags.add(mesh.flag);
  const flags = [...ctx.flags].join(',');
  if (ctx.grpc) {
    const code = mesh.flag === ResponseFlag.UpstreamRequestTimeout ? GrpcStatus.DEADLINE_EXCEEDED : mesh.status === 500 ? GrpcStatus.INTERNAL : grpcStatusFromHttp(mesh.status);
    return {
      status: 200,
      headers: {
        ...(trailersOnly(code, `${mesh.code}: ${mesh.message}`) as Record<string, string>),
        [Header.flags]: flags,
        [Header.requestId]: ctx.id,
        ...(ctx.attempt > 0 && { [Header.attempts]: String(ctx.attempt) }),
      },
      body: '',
      grpcStatus: code,
    };
  }
  const body = JSON.stringify({
    error: {
      code: mesh.code,
      message: mesh.message,
      flags,
      sidecar: ctx.sidecar,
      requestId: ctx.id,
      ...(ctx.route && { route: ctx.route.name }),
      ...(ctx.destination && { service: ctx.destination.service }),
      ...(ctx.endpoint && { endpoint: ctx.endpoint.address }),
    },
  });
  return {
    status: mesh.status,
    headers: {
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(body)),
      [Header.flags]: flags,
      [Header.requestId]: ctx.id,
      ...(ctx.attempt > 0 && { [Header.attempts]: String(ctx.attempt) }),
    },
    body,
  };
}
