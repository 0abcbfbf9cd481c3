// Header hygiene at every hop: hop-by-hop headers never cross a proxy (RFC 9110 §7.6.1), and forwarding
// headers say who called.
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'expect',
]);

export const Header = {
  requestId: 'x-request-id',
  /** On each upstream request: which try this is (1, 2, ...). */
  attempt: 'x-faultline-attempt',
  /** On the final response: how many tries it took. */
  attempts: 'x-faultline-attempts',
  flags: 'x-faultline-flags',
  /** On responses a fault touched, when faultInjection.responseHeader is on: the fault ids. */
  fault: 'x-faultline-fault',
  source: 'x-faultline-source',
  forwardedFor: 'x-forwarded-for',
  forwardedProto: 'x-forwarded-proto',
} as const;

/**
 * Connection values that name only headers already hop-by-hop (or none): nearly every message's
 * (`keep-alive`, `close`), read without parsing the list (a lower-casing, a split and a trim per header
 * each time, issue 24).
 */
const NAMES_NOTHING_MORE = new Set(['keep-alive', 'close', 'Keep-Alive', 'Close', 'upgrade', 'Upgrade']);

/** A copy without hop-by-hop headers, including those the Connection header names. */
export function withoutHopByHop<T extends IncomingHttpHeaders | OutgoingHttpHeaders>(headers: T, keepUpgrade = false): T {
  const listed = headers.connection;
  const named = typeof listed === 'string' && !NAMES_NOTHING_MORE.has(listed) ? listed.toLowerCase().split(',').map((s) => s.trim()) : undefined;
  const out: Record<string, unknown> = {};
  for (const key in headers) {
    if ((HOP_BY_HOP.has(key) || named?.includes(key)) && !(keepUpgrade && (key === 'connection' || key === 'upgrade'))) continue;
    out[key] = headers[key];
  }
  return out as T;
}

export function appendForwardedFor(existing: string | string[] | undefined, address: string | undefined): string | undefined {
  if (!address) return Array.isArray(existing) ? existing.join(', ') : existing;
  const client = address.startsWith('::ffff:') ? address.slice(7) : address;
  if (existing === undefined) return client;
  return `${Array.isArray(existing) ? existing.join(', ') : existing}, ${client}`;
}

/**
 * The headers of an HTTP/2 request for the upstream: no pseudo-headers (`:method`, `:path`... are the
 * forwarder's to set), no connection-specific ones; `te: trailers`, the one TE HTTP/2 allows (gRPC
 * requires it), is kept.
 */
export function http2RequestHeaders(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  const out: IncomingHttpHeaders = {};
  for (const key in headers) {
    if (key.charCodeAt(0) === 0x3a /* : */ || (HOP_BY_HOP.has(key) && !(key === 'te' && headers.te === 'trailers'))) continue;
    out[key] = headers[key];
  }
  return out;
}

/** Response headers or trailers for the next hop: pseudo-headers (`:status`) and connection-specific ones dropped. */
export function withoutPseudo<T extends IncomingHttpHeaders | OutgoingHttpHeaders>(headers: T): T {
  const out: Record<string, unknown> = {};
  for (const key in headers) {
    if (key.charCodeAt(0) === 0x3a || HOP_BY_HOP.has(key)) continue;
    out[key] = headers[key];
  }
  return out as T;
}
