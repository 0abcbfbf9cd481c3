// The two measures every reader of requests shares — the runner's verdicts, halts and progress line,
// the analysis, the reports, the demo and the benches — so that they count and rank alike.

/**
 * A request succeeded: it got an answer (status 0 is none: an error or a timeout) below 500 and, for a
 * gRPC call, the status OK — a gRPC error rides on HTTP 200, so any other gRPC status is a failure
 * (INVALID_ARGUMENT and NOT_FOUND too: gRPC has no "client error" class the way HTTP's 4xx is one).
 */
export function succeeded(status: number, grpcStatus: number | null = null): boolean {
  return status > 0 && status < 500 && (grpcStatus === null || grpcStatus === 0);
}

/** succeeded() of a recorded request (a request.done, a row made of one): its status and, for a gRPC call, its grpcStatus. */
export function callSucceeded(e: { readonly status: unknown } | Readonly<Record<string, unknown>>): boolean {
  const grpc = (e as { grpcStatus?: unknown }).grpcStatus;
  return succeeded(e.status as number, typeof grpc === 'number' ? grpc : null);
}

/** The p-th percentile (0–100) of values sorted ascending: the nearest rank at or below; NaN of none. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}
