// gRPC as the mesh reads it (https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md): a call is
// an HTTP/2 request with content-type application/grpc[+proto|;…]; its status is `grpc-status` in the
// response's one HEADERS frame (trailers-only: an error before any message) or in its trailers. A call
// that ended without one is mapped as @grpc/grpc-js does: a reset by its HTTP/2 error code, an HTTP
// answer by gRPC's http-grpc-status-mapping. Here, below the proxy and the faults, so that both (and
// telemetry) read one definition.
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { constants } from 'node:http2';

/** gRPC status codes, by number (the index). */
export const GRPC_STATUS_NAMES = [
  'OK',
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
] as const;
export type GrpcStatusName = (typeof GRPC_STATUS_NAMES)[number];

export const GrpcStatus = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  DEADLINE_EXCEEDED: 4,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;

/** The retryOn tokens for gRPC statuses (Envoy's and Istio's names), and the status each stands for. */
export const GRPC_RETRY_ON = {
  cancelled: GrpcStatus.CANCELLED,
  'deadline-exceeded': GrpcStatus.DEADLINE_EXCEEDED,
  internal: GrpcStatus.INTERNAL,
  'resource-exhausted': GrpcStatus.RESOURCE_EXHAUSTED,
  unavailable: GrpcStatus.UNAVAILABLE,
} as const;
export type GrpcRetryOn = keyof typeof GRPC_RETRY_ON;
export const GRPC_RETRY_TOKENS = Object.keys(GRPC_RETRY_ON) as GrpcRetryOn[];

/** Whether a content-type is gRPC's (application/grpc, +proto, +json, ;params): not gRPC-Web, whose status rides in the body. */
export function isGrpcContentType(value: string | string[] | undefined): boolean {
  if (typeof value !== 'string' || !value.startsWith('application/grpc')) return false;
  const next = value.charCodeAt(16);
  return Number.isNaN(next) || next === 0x2b /* + */ || next === 0x3b /* ; */;
}

/** The grpc-status a header block carries, or null when it has none (a value that is not a code 0–16 counts as UNKNOWN, so that labels stay bounded). */
export function grpcStatusOf(fields: IncomingHttpHeaders | OutgoingHttpHeaders | undefined): number | null {
  const value = fields?.['grpc-status'];
  if (value === undefined) return null;
  const code = Number(Array.isArray(value) ? value[0] : value);
  return Number.isInteger(code) && code >= 0 && code <= 16 ? code : GrpcStatus.UNKNOWN;
}

/** gRPC's http-grpc-status-mapping: the status a client gives an HTTP answer that carried no grpc-status. */
export function grpcStatusFromHttp(status: number): number {
  switch (status) {
    case 400:
    case 431:
      return GrpcStatus.INTERNAL;
    case 401:
      return GrpcStatus.UNAUTHENTICATED;
    case 403:
      return GrpcStatus.PERMISSION_DENIED;
    case 404:
      return GrpcStatus.UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
      return GrpcStatus.UNAVAILABLE;
    default:
      return GrpcStatus.UNKNOWN;
  }
}

/** The status @grpc/grpc-js gives a call whose stream was reset with `rstCode` before a grpc-status came (subchannel-call.ts). */
export function grpcStatusFromReset(rstCode: number): number {
  switch (rstCode) {
    case constants.NGHTTP2_REFUSED_STREAM:
      return GrpcStatus.UNAVAILABLE;
    case constants.NGHTTP2_CANCEL:
      return GrpcStatus.CANCELLED;
    case constants.NGHTTP2_ENHANCE_YOUR_CALM:
      return GrpcStatus.RESOURCE_EXHAUSTED;
    case constants.NGHTTP2_INADEQUATE_SECURITY:
      return GrpcStatus.PERMISSION_DENIED;
    default:
      return GrpcStatus.INTERNAL;
  }
}

/**
 * The HTTP status a gRPC status stands for where the mesh judges by HTTP classes — breakers and outlier
 * detection, as Envoy's `Grpc::Utility::grpcToHttpStatus`: UNAVAILABLE 503, DEADLINE_EXCEEDED 504,
 * UNKNOWN, INTERNAL and DATA_LOSS 500, UNIMPLEMENTED 501; client errors 4xx; OK 200.
 */
export function httpStatusOfGrpc(code: number): number {
  return GRPC_HTTP[code] ?? 500;
}
const GRPC_HTTP = [200, 499, 500, 400, 504, 404, 409, 403, 429, 400, 409, 400, 501, 500, 503, 500, 401];

/**
 * The status a response is judged by where the mesh judges by HTTP classes (breakers, outlier
 * detection): a gRPC answer with its status in the head (trailers-only) by that status, mapped as
 * Envoy does (UNAVAILABLE a 503); anything else by its HTTP status. A status in real trailers comes
 * after the response started, when these judged it already: it is not counted (as in Envoy).
 */
export function judgedStatus(response: { readonly status: number; readonly headers: IncomingHttpHeaders | OutgoingHttpHeaders }): number {
  if (response.status !== 200) return response.status;
  const code = grpcStatusOf(response.headers);
  return code === null || !isGrpcContentType(response.headers['content-type'] as string | undefined) ? response.status : httpStatusOfGrpc(code);
}

/** A gRPC status by number (0–16) or by name ("UNAVAILABLE", any case), or undefined. */
export function parseGrpcStatus(value: number | string): number | undefined {
  if (typeof value === 'number') return Number.isInteger(value) && value >= 0 && value <= 16 ? value : undefined;
  const at = (GRPC_STATUS_NAMES as readonly string[]).indexOf(value.toUpperCase());
  return at === -1 ? undefined : at;
}

const TIMEOUT_UNITS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1_000, m: 1, u: 0.001, n: 0.000_001 };

/** `grpc-timeout` (1–8 digits and a unit: H M S m u n) in milliseconds; undefined when absent or malformed (then ignored, as servers do). */
export function parseGrpcTimeout(value: string | string[] | undefined): number | undefined {
  if (typeof value !== 'string') return undefined;
  const match = /^(\d{1,8})([HMSmun])$/.exec(value);
  return match ? Number(match[1]) * TIMEOUT_UNITS[match[2]!]! : undefined;
}

/** Milliseconds as a `grpc-timeout`, rounded down to the finest unit that fits 8 digits (never more than is left). */
export function formatGrpcTimeout(ms: number): string {
  const left = Math.max(0, ms);
  if (left * 1_000 < 1e8) return `${Math.floor(left * 1_000)}u`;
  if (left < 1e8) return `${Math.floor(left)}m`;
  if (left / 1_000 < 1e8) return `${Math.floor(left / 1_000)}S`;
  return `${Math.min(99_999_999, Math.floor(left / 60_000))}M`;
}

/** `grpc-message` percent-encoded as the protocol asks (bytes outside 0x20–0x7E, and '%'). */
export function encodeGrpcMessage(message: string): string {
  let out = '';
  for (const byte of Buffer.from(message)) out += byte >= 0x20 && byte <= 0x7e && byte !== 0x25 ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  return out;
}

/** The head of a trailers-only answer: HTTP 200 with the status in its one HEADERS frame (the stream ends with it). */
export function trailersOnly(code: number, message: string): OutgoingHttpHeaders {
  return { 'content-type': 'application/grpc', 'grpc-status': String(code), 'grpc-message': encodeGrpcMessage(message) };
}
