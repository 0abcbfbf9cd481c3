// Why an upstream exchange failed, as the mesh names it — shared by the HTTP/1.1 (forward.ts) and the
// HTTP/2 (forward-h2.ts) paths, so that retries and flags read the same failure whichever carried it.
import { downstreamReset, upstreamConnectFailure, upstreamReset } from '../errors.ts';
import type { Cancellation } from '../http/cancellation.ts';

const CONNECT_FAILURES = new Set([
  // mTLS: the server is not who the destination must be.
  'FL_MTLS_IDENTITY',
  'ECONNREFUSED',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
  'EAI_AGAIN',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/** Why an upstream request failed: the caller's cancellation (or a timeout's), a failed connect, or a reset. */
export function classify(error: unknown, address: string, cancellation: Cancellation): unknown {
  if (cancellation.cancelled) return cancellation.reason ?? downstreamReset();
  const code = (error as { code?: string }).code ?? (error as { cause?: { code?: string } }).cause?.code;
  return code && CONNECT_FAILURES.has(code) ? upstreamConnectFailure(address, error) : upstreamReset(address, error);
}
