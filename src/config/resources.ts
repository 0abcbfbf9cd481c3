// The mesh's resources — services, routes, sidecars, authorization, telemetry, mTLS — as zod schemas,
// and their types. The whole file format (config/schema.ts) adds the faults to them; the compiled specs
// and the request path read these types without depending on the fault actions.
import { z } from 'zod';
import { Address, Duration, Labels, Method, Name, StringMatch, expecting, hostOf } from './primitives.ts';

export const LoadBalancerPolicy = z.enum(['round-robin', 'least-request', 'random', 'ring-hash', 'ewma']);

const LoadBalancer = z.union([
  LoadBalancerPolicy,
  z.strictObject({
    policy: LoadBalancerPolicy,
    hashOn: z
      .strictObject({ header: z.string().min(1) })
      .optional()
      .meta({ description: 'ring-hash: the request header whose value picks the endpoint' }),
    virtualNodes: z.int().min(1).max(4096).optional().meta({ description: 'ring-hash: points on the ring per endpoint (default 160)' }),
    decay: Duration.optional().meta({ description: 'ewma: how fast old latency samples fade' }),
  }),
]);

const HealthCheck = z.strictObject({
  path: z.string().startsWith('/'),
  interval: Duration.default(5_000),
  timeout: Duration.default(1_000),
  unhealthyThreshold: z.int().min(1).default(3),
  healthyThreshold: z.int().min(1).default(2),
  expectedStatuses: z
    .array(z.int().min(100).max(599))
    .optional()
    .meta({ description: 'statuses that count as healthy (default: any 2xx)' }),
});

const OutlierDetection = z.strictObject({
  consecutive5xx: z.int().min(1).default(5),
  consecutiveGatewayErrors: z.int().min(1).optional().meta({ description: '502, 503, 504 and connect failures in a row' }),
  interval: Duration.default(10_000),
  baseEjectionTime: Duration.default(30_000),
  maxEjectionTime: Duration.default(300_000),
  maxEjectionPercent: z.number().min(0).max(100).default(10),
  failurePercentage: z
    .strictObject({
      threshold: z.number().min(0).max(100).default(85).meta({ description: 'percent of an endpoint\'s tries in the interval that failed (5xx, connect failures, resets, timeouts) at which it is ejected' }),
      minimumHosts: z.int().min(1).default(5).meta({ description: 'judge only when this many endpoints had requestVolume tries in the interval' }),
      requestVolume: z.int().min(1).default(50).meta({ description: 'tries an endpoint needs in the interval to be judged' }),
    })
    .optional()
    .meta({ description: 'each interval, eject endpoints whose failure percentage reached threshold (Envoy\'s failure_percentage, always enforced once set)' }),
  latency: z
    .strictObject({
      percentile: z.number().gt(0).max(100).default(90).meta({ description: 'the latency percentile compared: to response headers, a timed-out try at its timeout' }),
      factor: z.number().min(1).default(3).meta({ description: 'eject when the endpoint\'s percentile is above factor × the median of its siblings\' percentiles' }),
      minimum: Duration.default(50).meta({ description: 'and above this: a fast service\'s jitter ejects nothing' }),
      requestVolume: z.int().min(1).default(20).meta({ description: 'tries an endpoint needs in the interval to be judged or counted as a sibling' }),
      minimumHosts: z.int().min(2).default(3).meta({ description: 'judge only when this many endpoints had requestVolume tries in the interval' }),
    })
    .optional()
    .meta({ description: 'each interval, eject endpoints much slower than their siblings' }),
});

const CircuitBreaker = z.strictObject({
  maxConnections: z.int().min(1).default(1024).meta({ description: 'requests in progress to the destination at once (HTTP/1.1: one per connection)' }),
  maxPendingRequests: z.int().min(0).default(1024).meta({ description: 'requests waiting for one of maxConnections; beyond, 503 UO' }),
  maxRequests: z.int().min(1).default(1024).meta({ description: 'requests outstanding (in progress and waiting); beyond, 503 UO' }),
  maxRetries: z.int().min(0).default(3).meta({ description: 'retries in progress at once; beyond, a due retry is not made (UO)' }),
  consecutiveFailures: z.int().min(1).optional().meta({ description: 'open after this many failures in a row' }),
  failureRatio: z
    .strictObject({ threshold: z.number().gt(0).max(1), minRequests: z.int().min(1).default(20), window: Duration.default(10_000) })
    .optional()
    .meta({ description: 'open when failures / requests over the window reach threshold, once minRequests were seen' }),
  coolDown: z
    .strictObject({ base: Duration.default(5_000), max: Duration.default(60_000) })
    .default({ base: 5_000, max: 60_000 })
    .meta({ description: 'open for base × 2^(trips in a row - 1), at most max, then half-open' }),
  halfOpenRequests: z.int().min(1).default(1).meta({ description: 'probes let through when half-open; all must succeed to close' }),
});

const Endpoint = z.strictObject({
  address: Address,
  labels: Labels.default({}),
});

/**
 * A call the service's app makes, as its owners declare it (Istio's Sidecar egress hosts and Kuma's
 * reachable services name the same thing): what `faultline lint` reads the call graph and the app's own
 * policies from, which the mesh cannot see. Absent, the service's calls are unknown (a recording can show them).
 */
const Call = z.union([
  Name,
  z.strictObject({
    service: Name,
    timeout: Duration.optional().meta({ description: 'the app\'s own timeout on this call; absent: it sets none' }),
    retries: z.int().min(0).max(10).default(0).meta({ description: 'retries the app itself makes after a failed call (on top of the mesh\'s)' }),
  }),
]);

/** What a service's app speaks (docs/config.md, "protocol"). */
export const ServiceProtocol = z.enum(['http1', 'http2', 'grpc']);

export const Service = z.strictObject({
  name: Name,
  calls: z.array(Call).optional().meta({
    description: 'the services its app calls, with the app\'s own timeout and retries on each (for faultline lint); absent: not declared',
  }),
  callOrder: z.enum(['parallel', 'sequential']).default('parallel').meta({
    description: 'whether the app makes its calls for one request at once (its time is the slowest call\'s) or one after another (their sum)',
  }),
  endpoints: z.array(Endpoint).default([]).meta({
    description: 'none for a client-only service (a load generator, a batch job, an edge gateway: it calls others and serves nothing) or one whose instances are not known yet; a request to it is 503 UH (FL_NO_ENDPOINTS)',
  }),
  loadBalancer: LoadBalancer.default('round-robin'),
  healthCheck: HealthCheck.optional(),
  outlierDetection: OutlierDetection.optional(),
  circuitBreaker: CircuitBreaker.optional().meta({ description: 'per destination: the service, or each subset a route names, separately' }),
  healthyPanicThreshold: z
    .number()
    .min(0)
    .max(100)
    .default(0)
    .meta({ description: 'percent: below this share of available endpoints, balance over all of them (0, as Istio: never)' }),
  protocol: ServiceProtocol.default('http1').meta({
    description: 'what its app speaks: http1 (HTTP/1.1), http2 (HTTP/2 cleartext, prior knowledge) or grpc (HTTP/2, gRPC); sidecars reach it so, and speak HTTP/2 between them for http2 and grpc',
  }),
});


/** A gRPC call's path is /package.Service/Method: a match on the service, and on one method of it. */
const GrpcMatch = z
  .strictObject({
    service: z
      .string({ error: expecting('a gRPC service with its package, e.g. shop.Payments') })
      .regex(/^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/, { error: 'expected a gRPC service with its package, e.g. shop.Payments' }),
    method: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { error: 'expected a gRPC method name, e.g. Charge' })
      .optional()
      .meta({ description: 'one method of the service; every method when absent' }),
  })
  .meta({ description: 'gRPC calls of a service (and method): the path /service/method' });

const RouteMatch = z
  .strictObject({
    host: z.string().min(1).optional(),
    path: z.string().startsWith('/').optional(),
    pathPrefix: z.string().startsWith('/').optional(),
    pathRegex: z.string().optional(),
    grpc: GrpcMatch.optional(),
    method: z.union([Method, z.array(Method).min(1)]).optional(),
    headers: z.record(z.string(), StringMatch).optional(),
    query: z.record(z.string(), StringMatch).optional(),
  })
  .superRefine((match, ctx) => {
    if (match.grpc === undefined) return;
    const paths = (['path', 'pathPrefix', 'pathRegex'] as const).filter((k) => match[k] !== undefined);
    if (paths.length > 0) ctx.addIssue({ code: 'custom', path: ['grpc'], message: `grpc matches the path /service/method itself: drop ${paths.join(', ')}, or grpc` });
  });

const Destination = z.strictObject({
  service: Name,
  subset: Labels.optional(),
  weight: z.number().min(0).default(1),
});

export const RetryOn = z.enum([
  '5xx',
  'gateway-error',
  'reset',
  'connect-failure',
  'retriable-status-codes',
  'refused-stream',
  // gRPC statuses (Envoy's and Istio's names), retried only when the status came in the response head
  // (trailers-only), before anything of the response was given to the caller.
  'cancelled',
  'deadline-exceeded',
  'internal',
  'resource-exhausted',
  'unavailable',
]);

const Retries = z.strictObject({
  attempts: z.int().min(0).max(10).default(2).meta({ description: 'retries after the first try (as Istio): 2 means up to 3 tries' }),
  perTryTimeout: Duration.optional().meta({ description: 'each try, until its response headers' }),
  retryOn: z.array(RetryOn).min(1).default(['connect-failure', 'refused-stream', 'retriable-status-codes']),
  retriableStatusCodes: z.array(z.int().min(100).max(599)).default([503]),
  retryNonIdempotent: z.boolean().default(false).meta({ description: 'also retry POST, PATCH, CONNECT' }),
  backoff: z
    .strictObject({ base: Duration.default(25), max: Duration.default(250) })
    .default({ base: 25, max: 250 })
    .meta({ description: 'exponential with full jitter: a try waits random(0, min(max, base × 2^(n-1)))' }),
  budget: z
    .strictObject({ ratio: z.number().min(0).max(10).default(0.2), minPerSecond: z.number().min(0).default(10) })
    .default({ ratio: 0.2, minPerSecond: 10 })
    .meta({ description: 'retries may add at most ratio × the requests of the last 10 s, plus minPerSecond' }),
  bufferLimit: z.int().min(0).default(65_536).meta({ description: 'bytes of request body kept for replay; larger bodies are not retried' }),
});

export const Route = z.strictObject({
  name: Name,
  match: RouteMatch.default({}),
  destinations: z.array(Destination).min(1, { error: 'at least one destination' }),
  timeout: Duration.optional().meta({ description: 'the whole request, response body included' }),
  idleTimeout: Duration.optional().meta({ description: 'cut a response when no byte arrives from the upstream for this long (headers included)' }),
  retries: Retries.optional(),
});

export const AuthorizationRule = z.strictObject({
  destination: Name.meta({ description: 'the service these rules protect; once it has rules, whatever they do not allow is denied' }),
  allow: z
    .array(
      z.strictObject({
        sources: z.array(Name).min(1).optional().meta({ description: 'calling services (their identities); any when absent' }),
        methods: z.array(Method).min(1).optional(),
        paths: z.array(StringMatch).min(1).optional().meta({ description: 'path matches ({exact}, {prefix}, {regex}); any when absent' }),
      }),
    )
    .default([])
    .meta({ description: 'a request is allowed when one entry matches it in full' }),
});

/** Slow or piled-up clients (slowloris) cannot hold a listener: a cap on connections, a deadline on request heads. */
const ListenerLimits = z.strictObject({
  maxConnections: z.int().min(1).default(4_096).meta({ description: 'connections a listener holds at once; one more is closed as it arrives' }),
  headersTimeout: Duration.refine((ms) => ms >= 100, { error: 'expected at least 100ms' })
    .default(10_000)
    .meta({ description: 'a connection that has begun a request but not sent its whole head within this is answered 408 and closed' }),
});

/**
 * An admin listener is bound to loopback, as Envoy's admin is in Istio (127.0.0.1:15000): it has no
 * credential, and whoever reaches it can inject faults.
 */
const LOOPBACK_HOST = /^(localhost|127\.\d{1,3}\.\d{1,3}\.\d{1,3}|\[::1\])$/;

export const Sidecar = z.strictObject({
  name: Name.optional().meta({ description: 'defaults to the service name; needed when a service has several' }),
  service: Name,
  outbound: Address.optional().meta({ description: 'where its app sends its outbound calls; none for a service that calls nobody' }),
  inbound: Address.optional().meta({ description: 'where other sidecars reach this service; none for a client-only service (a load generator, a batch job), which has no app either' }),
  admin: Address.meta({ description: 'the admin API (health, config, faults): on loopback only, as it has no credential' }),
  app: Address.optional().meta({ description: 'the local app this sidecar serves; none for a client-only service' }),
  command: z
    .array(z.string().min(1))
    .min(1)
    .optional()
    .meta({
      description: 'how `faultline up` starts the app: argv, run with FAULTLINE_OUTBOUND (this sidecar\'s outbound) and PORT (the app\'s) set; "node" is the Node running faultline',
    }),
  tcp: z
    .array(z.strictObject({ name: Name, listen: Address, upstream: Address }))
    .default([])
    .meta({ description: 'L4 listeners for non-HTTP traffic (a database): bytes relayed to upstream, where tcp faults act' }),
  listeners: ListenerLimits.prefault({}).meta({ description: 'overload guards of its HTTP listeners (outbound and inbound), each on its own; take effect when the sidecar starts' }),
}).superRefine((sidecar, ctx) => {
  const adminHost = hostOf(sidecar.admin);
  if (adminHost !== undefined && !LOOPBACK_HOST.test(adminHost)) {
    ctx.addIssue({
      code: 'custom',
      path: ['admin'],
      message: 'the admin listener takes faults without a credential: bind it to loopback (127.0.0.1, [::1] or localhost); from elsewhere, use the control plane\'s API, which needs its token',
    });
  }
  if ((sidecar.inbound === undefined) !== (sidecar.app === undefined)) {
    const missing = sidecar.inbound === undefined ? 'inbound' : 'app';
    ctx.addIssue({ code: 'custom', path: [missing], message: `a sidecar that serves its service has both inbound and app; a client-only one has neither (${missing} is missing)` });
  }
  if (sidecar.command && sidecar.app === undefined) {
    ctx.addIssue({ code: 'custom', path: ['command'], message: 'command starts the app this sidecar serves: give it app (and inbound)' });
  }
});

export const Telemetry = z.strictObject({
  enabled: z.boolean().default(true).meta({ description: 'per-request telemetry: request.done events, request metrics, access log lines and traces' }),
  tracing: z
    .strictObject({
      otlpEndpoint: z.url({ error: 'expected an OTLP/HTTP traces URL, e.g. http://127.0.0.1:4318/v1/traces' }),
      sampleRatio: z.number().min(0).max(1).default(1).meta({ description: 'share of new traces recorded; a caller\'s sampled flag is followed' }),
      exportDelayMs: z.number().int().min(10).max(60_000).default(5_000).meta({ description: 'how long an ended span waits to be sent with others (OpenTelemetry\'s own default): at most twice this from its end to the collector' }),
    })
    .optional()
    .meta({ description: 'spans per hop and per attempt, exported over OTLP/HTTP; off when absent' }),
  history: z
    .strictObject({
      requests: z.number().int().min(0).default(1_024).meta({ description: 'request.done events kept' }),
      decisions: z.number().int().min(0).default(10_000).meta({ description: 'every other event kept (faults, retries, breakers, health, config)' }),
      keepRequests: z
        .enum(['while-read', 'always'])
        .default('while-read')
        .meta({ description: 'while-read: request.done are kept only while an /events reader takes them and for 60 s after the last one leaves (kept events cost throughput); always: from the start' }),
    })
    .prefault({})
    .meta({ description: 'events a sidecar keeps for /events readers that resume with ?since=N; takes effect when a sidecar starts' }),
});

export const Mtls = z.strictObject({
  mode: z.enum(['off', 'permissive', 'strict']).default('off').meta({
    description: 'strict: sidecars accept only mutual TLS 1.3 from mesh identities; permissive: TLS and plaintext both; off: plaintext',
  }),
  trustDomain: z
    .string()
    .regex(/^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/, { error: 'expected a trust domain: lowercase letters, digits, "." and "-"' })
    .default('faultline.local'),
  namespace: Name.default('default'),
  certTtl: Duration.refine((ms) => ms >= 1_000, { error: 'expected at least 1s' }).default(3_600_000).meta({ description: 'lifetime of workload certificates; sidecars renew at 2/3 of it' }),
});

/** What `faultline lint` is told to leave alone, each with the reason (listed in its output). */
export const Lint = z.strictObject({
  ignore: z
    .array(
      z.strictObject({
        rule: Name.meta({ description: 'the finding kind, e.g. retry-amplification' }),
        service: Name.optional().meta({ description: 'only findings of this service (the caller, for a hop)' }),
        route: Name.optional().meta({ description: 'only findings on this route' }),
        reason: z.string().min(1, { error: 'say why: a suppression needs a reason' }),
      }),
    )
    .default([]),
});

export type RouteConfig = z.output<typeof Route>;
export type LintConfig = z.output<typeof Lint>;
export type ServiceConfig = z.output<typeof Service>;
export type SidecarConfig = z.output<typeof Sidecar>;
export type ListenerLimitsConfig = z.output<typeof ListenerLimits>;
export type MtlsConfig = z.output<typeof Mtls>;
export type AuthorizationConfig = z.output<typeof AuthorizationRule>;
export type CircuitBreakerConfig = z.output<typeof CircuitBreaker>;
export type RetriesConfig = z.output<typeof Retries>;
export type RetryOnCondition = z.output<typeof RetryOn>;
export type StringMatchConfig = z.output<typeof StringMatch>;
export type HealthCheckConfig = z.output<typeof HealthCheck>;
export type OutlierDetectionConfig = z.output<typeof OutlierDetection>;
export type LoadBalancerPolicy = z.output<typeof LoadBalancerPolicy>;
export type ServiceProtocol = z.output<typeof ServiceProtocol>;
