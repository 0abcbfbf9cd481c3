// Every error faultline raises has a code (searchable), and the ones that end a proxied request carry
// the HTTP status and the response flag the caller sees. One place names them all.

/** Response flags, as Envoy's, so a caller can tell a mesh failure from an application failure. */
export const ResponseFlag = {
  NoRoute: 'NR',
  NoHealthyUpstream: 'UH',
  UpstreamConnectFailure: 'UF',
  UpstreamConnectionTermination: 'UC',
  /** A circuit breaker refused: a limit was reached or the circuit is open (Envoy's UO). */
  UpstreamOverflow: 'UO',
  UpstreamRequestTimeout: 'UT',
  /** Retries used up: the attempt limit was reached (Envoy's URX). */
  RetryLimitExceeded: 'URX',
  /** A retry was due but the retry budget was spent. */
  RetryBudgetExhausted: 'UBX',
  /** A retry was due but the request body was larger than the replay buffer. */
  RetryBodyTooLarge: 'RBL',
  DownstreamConnectionTermination: 'DC',
  /** A fault aborted the request (status, reset, cut body, partition), as Envoy's FI. */
  FaultInjected: 'FI',
  /** A fault delayed the request, as Envoy's DI. */
  DelayInjected: 'DI',
  NotSupported: 'NS',
  /** Authorization denied the call (as Envoy's RBAC). */
  Unauthorized: 'RBAC',
  InternalError: 'XX',
} as const;
export type ResponseFlag = (typeof ResponseFlag)[keyof typeof ResponseFlag];

export const ErrorCode = {
  ConfigInvalid: 'FL_CONFIG_INVALID',
  ConfigUnreadable: 'FL_CONFIG_UNREADABLE',
  /** `--store` names no store faultline can open (not a directory, not etcd://host:port,…). */
  StoreInvalid: 'FL_STORE_INVALID',
  /** The store (etcd) did not answer. */
  StoreUnavailable: 'FL_STORE_UNAVAILABLE',
  SidecarUnknown: 'FL_SIDECAR_UNKNOWN',
  NoRoute: 'FL_NO_ROUTE',
  NoHealthyUpstream: 'FL_NO_HEALTHY_UPSTREAM',
  NoEndpoints: 'FL_NO_ENDPOINTS',
  UpstreamConnectFailure: 'FL_UPSTREAM_CONNECT_FAILURE',
  UpstreamReset: 'FL_UPSTREAM_RESET',
  /** An HTTP/2 upstream did not process the request (REFUSED_STREAM, or above a GOAWAY's last stream): safe to send again. */
  UpstreamRefusedStream: 'FL_UPSTREAM_REFUSED_STREAM',
  UpstreamTimeout: 'FL_UPSTREAM_TIMEOUT',
  UpstreamPerTryTimeout: 'FL_UPSTREAM_PER_TRY_TIMEOUT',
  UpstreamIdleTimeout: 'FL_UPSTREAM_IDLE_TIMEOUT',
  DownstreamReset: 'FL_DOWNSTREAM_RESET',
  CircuitOpen: 'FL_CIRCUIT_OPEN',
  UpstreamOverflow: 'FL_UPSTREAM_OVERFLOW',
  BadRequest: 'FL_BAD_REQUEST',
  /** An API request to a route that is not there. */
  NotFound: 'FL_NOT_FOUND',
  /** An API request body over the API's limit. */
  BodyTooLarge: 'FL_BODY_TOO_LARGE',
  FaultReset: 'FL_FAULT_RESET',
  Forbidden: 'FL_FORBIDDEN',
  /** A bearer that is neither the admin token nor a join token this control plane signed. */
  TokenInvalid: 'FL_TOKEN_INVALID',
  TokenExpired: 'FL_TOKEN_EXPIRED',
  TokenRevoked: 'FL_TOKEN_REVOKED',
  /** A control plane's certificate does not verify, or the URL's scheme is not what it serves (http:// to TLS, https:// to plain). */
  ControlTls: 'FL_CONTROL_TLS',
  FaultPartition: 'FL_FAULT_PARTITION',
  FaultInvalid: 'FL_FAULT_INVALID',
  FaultLimit: 'FL_FAULT_LIMIT',
  /** A sidecar under a control plane takes its runtime faults from there alone. */
  FaultsControlled: 'FL_FAULTS_CONTROLLED',
  Internal: 'FL_INTERNAL',
  /** Hosts as network namespaces (tests, `up --hosts`) need root. */
  HostsNeedRoot: 'FL_HOSTS_NEED_ROOT',
  HostsInvalid: 'FL_HOSTS_INVALID',
  /** An `ip` command making or changing the hosts failed. */
  HostsFailed: 'FL_HOSTS_FAILED',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export class FaultlineError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** A failure that ends a proxied request with a mesh-generated response. */
export class MeshError extends FaultlineError {
  readonly status: number;
  readonly flag: ResponseFlag;
  constructor(code: ErrorCode, status: number, flag: ResponseFlag, message: string, options?: ErrorOptions) {
    super(code, message, options);
    this.status = status;
    this.flag = flag;
  }
}

export const noRoute = (host: string, path: string): MeshError =>
  new MeshError(ErrorCode.NoRoute, 404, ResponseFlag.NoRoute, `no route matches host "${host}" path "${path}"`);

export const noHealthyUpstream = (service: string, subset: string): MeshError =>
  new MeshError(
    ErrorCode.NoHealthyUpstream,
    503,
    ResponseFlag.NoHealthyUpstream,
    `no healthy endpoint for service "${service}"${subset ? ` subset ${subset}` : ''}`,
  );

/** The service has no endpoint at all (client-only, or none known yet): Envoy's UH for an empty cluster. */
export const noEndpoints = (service: string): MeshError =>
  new MeshError(
    ErrorCode.NoEndpoints,
    503,
    ResponseFlag.NoHealthyUpstream,
    `service "${service}" has no endpoints (a client-only service serves nothing, or none is known yet)`,
  );

export const upstreamConnectFailure = (address: string, cause: unknown): MeshError =>
  new MeshError(
    ErrorCode.UpstreamConnectFailure,
    503,
    ResponseFlag.UpstreamConnectFailure,
    `cannot connect to upstream ${address}: ${describe(cause)}`,
    { cause },
  );

export const upstreamReset = (address: string, cause: unknown): MeshError =>
  new MeshError(
    ErrorCode.UpstreamReset,
    503,
    ResponseFlag.UpstreamConnectionTermination,
    `upstream ${address} closed the connection: ${describe(cause)}`,
    { cause },
  );

/** The request never reached the upstream's app: RST_STREAM(REFUSED_STREAM), or a stream above a GOAWAY's lastStreamID (RFC 9113 §8.7). */
export const upstreamRefusedStream = (address: string, why: string): MeshError =>
  new MeshError(ErrorCode.UpstreamRefusedStream, 503, ResponseFlag.UpstreamConnectionTermination, `upstream ${address} refused the stream: ${why}`);

export const upstreamTimeout = (ms: number): MeshError =>
  new MeshError(ErrorCode.UpstreamTimeout, 504, ResponseFlag.UpstreamRequestTimeout, `upstream request timed out after ${ms}ms`);

export const perTryTimeout = (ms: number): MeshError =>
  new MeshError(ErrorCode.UpstreamPerTryTimeout, 504, ResponseFlag.UpstreamRequestTimeout, `upstream attempt timed out after ${ms}ms`);

export const circuitOpen = (destination: string, state: string): MeshError =>
  new MeshError(ErrorCode.CircuitOpen, 503, ResponseFlag.UpstreamOverflow, `circuit breaker for ${destination} is ${state}`);

export const upstreamOverflow = (destination: string, limit: string, value: number): MeshError =>
  new MeshError(ErrorCode.UpstreamOverflow, 503, ResponseFlag.UpstreamOverflow, `circuit breaker for ${destination}: ${limit} (${value}) reached`);

export const idleTimeout = (ms: number): MeshError =>
  new MeshError(ErrorCode.UpstreamIdleTimeout, 504, ResponseFlag.UpstreamRequestTimeout, `no data from upstream for ${ms}ms`);

export const downstreamReset = (): MeshError =>
  new MeshError(ErrorCode.DownstreamReset, 499, ResponseFlag.DownstreamConnectionTermination, 'the caller went away');

export function describe(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code && !error.message.includes(code) ? `${code} ${error.message}` : error.message;
  }
  return String(error);
}
