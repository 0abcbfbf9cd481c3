// The fault format: one zod schema for a fault whether it comes from the mesh config (`faults:`) or
// from `PUT /faults/:id` on a sidecar's admin listener, and for the mesh-wide fault settings
// (`faultInjection:`). A fault is a match, an injection point, exactly one action, a percentage and
// count, a seed, and (at runtime) a lease.
import { z } from 'zod';
import { Duration, Method, Name, StringMatch } from '../config/primitives.ts';

const Names = z.union([Name, z.array(Name).min(1)]);

const FaultMatch = z.strictObject({
  source: Names.optional().meta({ description: 'calling service(s)' }),
  destination: Names.optional().meta({ description: 'called service(s)' }),
  route: Names.optional().meta({ description: 'route name(s) (outbound only: inbound knows no route)' }),
  method: z.union([Method, z.array(Method).min(1)]).optional(),
  path: z.string().startsWith('/').optional(),
  pathPrefix: z.string().startsWith('/').optional(),
  pathRegex: z.string().optional(),
  headers: z.record(z.string(), StringMatch).optional(),
});

const positive = (what: string) => Duration.refine((ms) => ms > 0, { error: `expected a ${what} above 0` });

/** Delay distributions, one key each; every sample is at least 0 (and at most `max` when given). */
const DISTRIBUTIONS = {
  fixed: Duration,
  uniform: z.strictObject({ min: Duration, max: Duration }).refine((u) => u.min <= u.max, { error: 'min must not exceed max' }),
  normal: z.strictObject({ mean: Duration, stddev: Duration }),
  lognormal: z.strictObject({ median: positive('median'), p99: positive('p99') }).refine((l) => l.p99 >= l.median, { error: 'p99 must not be below the median' }),
  pareto: z.strictObject({
    scale: positive('scale').meta({ description: 'the smallest delay (xm)' }),
    shape: z.number().gt(0).meta({ description: 'alpha: the lower, the heavier the tail (1.16: the 80/20 rule)' }),
  }),
};
export const DISTRIBUTION_NAMES = Object.keys(DISTRIBUTIONS) as (keyof typeof DISTRIBUTIONS)[];

/** Exactly one of `keys` is set on the object. */
const oneOf = (keys: readonly string[], what: string) => (value: Record<string, unknown>, ctx: z.RefinementCtx) => {
  const set = keys.filter((k) => value[k] !== undefined);
  if (set.length !== 1) {
    ctx.addIssue({ code: 'custom', message: set.length === 0 ? `missing: one ${what}, of ${keys.join(', ')}` : `one ${what}, not ${set.join(' and ')}` });
  }
};

const Delay = z
  .strictObject({
    fixed: DISTRIBUTIONS.fixed.optional(),
    uniform: DISTRIBUTIONS.uniform.optional(),
    normal: DISTRIBUTIONS.normal.optional(),
    lognormal: DISTRIBUTIONS.lognormal.optional(),
    pareto: DISTRIBUTIONS.pareto.optional(),
    before: z.enum(['request', 'headers', 'body']).default('request').meta({
      description: 'request: before the request goes upstream; headers: before the response headers come back; body: before the response body',
    }),
    max: Duration.optional().meta({ description: 'cap on any one sample' }),
  })
  .superRefine(oneOf(DISTRIBUTION_NAMES, 'distribution'));

const Abort = z.union([
  z.strictObject({
    status: z.int().min(200).max(599),
    body: z.string().optional(),
    headers: z.record(z.string(), z.string()).optional(),
  }),
  z.strictObject({ reset: z.literal(true).meta({ description: 'reset the connection instead of answering' }) }),
  z.strictObject({ closeAfterBytes: z.int().min(0).meta({ description: 'pass the response, but close the connection after this many body bytes' }) }),
]);

const Partition = z.strictObject({
  from: z.array(Name).min(1),
  to: z.array(Name).min(1),
  direction: z.enum(['both', 'one-way']).default('both').meta({ description: 'one-way: only calls from `from` to `to` are cut' }),
  mode: z.enum(['blackhole', 'reject']).default('blackhole').meta({
    description: 'blackhole: connections hang until the caller gives up; reject: refused at once',
  }),
});

const Bandwidth = z.strictObject({
  bytesPerSecond: z.int().min(1),
  on: z.enum(['response', 'request']).default('response'),
});

const Slicer = z.strictObject({
  size: z.int().min(1).meta({ description: 'bytes per slice' }),
  delay: Duration.default(10).meta({ description: 'pause between slices' }),
});

const TOXICS = ['latency', 'bandwidth', 'resetPeer', 'timeout', 'slicer', 'limitData'] as const;

const Tcp = z
  .strictObject({
    listener: Name.meta({ description: 'the name of the sidecar tcp listener it acts on' }),
    direction: z.enum(['upstream', 'downstream']).default('downstream').meta({ description: 'upstream: bytes to the server; downstream: bytes back' }),
    latency: z.strictObject({ latency: Duration, jitter: Duration.default(0) }).optional(),
    bandwidth: z.strictObject({ bytesPerSecond: z.int().min(1) }).optional(),
    resetPeer: z.strictObject({ after: Duration.default(0) }).optional(),
    timeout: z.strictObject({ after: Duration.default(0).meta({ description: '0: hold the connection open forever' }) }).optional(),
    slicer: z.strictObject({ averageSize: z.int().min(1), sizeVariation: z.int().min(0).default(0), delay: Duration.default(0) }).optional(),
    limitData: z.strictObject({ bytes: z.int().min(0) }).optional(),
  })
  .superRefine(oneOf(TOXICS, 'toxic'));

export const ACTIONS = ['delay', 'abort', 'partition', 'bandwidth', 'slicer', 'hang', 'tcp'] as const;
export type ActionName = (typeof ACTIONS)[number];

export const FaultSpec = z
  .strictObject({
    id: Name.meta({ description: 'unique among the faults of a mesh' }),
    description: z.string().optional(),
    match: FaultMatch.default({}),
    at: z.enum(['request', 'attempt', 'inbound']).default('request').meta({
      description: 'request: once, before retries (the caller sees it); attempt: each try, inside the retry loop (retries can mask it); inbound: at the destination sidecar',
    }),
    percent: z.number().min(0).max(100).default(100).meta({ description: 'share of matching requests faulted; fractions allowed' }),
    count: z
      .strictObject({
        first: z.int().min(1).optional().meta({ description: 'only the first N matching requests' }),
        every: z.int().min(1).optional().meta({ description: 'only every K-th matching request' }),
      })
      .refine((c) => c.first !== undefined || c.every !== undefined, { error: 'first, every, or both' })
      .optional(),
    seed: z.int().default(0).meta({ description: 'decisions are a function of (seed, id, ordinal of the matching request)' }),
    ttl: Duration.optional().meta({ description: 'lease: the fault removes itself this long after it is installed' }),
    expiresAt: z.iso.datetime({ offset: true }).optional().meta({ description: 'lease: the fault removes itself at this time' }),
    delay: Delay.optional(),
    abort: Abort.optional(),
    partition: Partition.optional(),
    bandwidth: Bandwidth.optional(),
    slicer: Slicer.optional(),
    hang: z.strictObject({}).optional().meta({ description: 'accept the request and never answer (until the caller gives up)' }),
    tcp: Tcp.optional().meta({ description: 'an L4 fault on a sidecar tcp listener (Toxiproxy\'s toxics)' }),
  })
  .superRefine((fault, ctx) => {
    oneOf(ACTIONS, 'action')(fault, ctx);
    if (fault.ttl !== undefined && fault.expiresAt !== undefined) ctx.addIssue({ code: 'custom', path: ['ttl'], message: 'ttl or expiresAt, not both' });
    const { path, pathPrefix, pathRegex } = fault.match;
    if ([path, pathPrefix, pathRegex].filter((p) => p !== undefined).length > 1) {
      ctx.addIssue({ code: 'custom', path: ['match'], message: 'at most one of path, pathPrefix and pathRegex' });
    }
    const regexes: [(string | number)[], string | undefined][] = [
      [['match', 'pathRegex'], pathRegex],
      ...Object.entries(fault.match.headers ?? {}).map(([name, m]): [(string | number)[], string | undefined] => [['match', 'headers', name, 'regex'], m.regex]),
    ];
    for (const [path, regex] of regexes) {
      if (regex === undefined) continue;
      try {
        new RegExp(regex);
      } catch (error) {
        ctx.addIssue({ code: 'custom', path, message: `not a valid regular expression: ${(error as Error).message}` });
      }
    }
    if (fault.partition && (fault.match.source || fault.match.destination)) {
      ctx.addIssue({ code: 'custom', path: ['match'], message: 'a partition names its services in from and to, not in match' });
    }
  });

export type FaultConfig = z.output<typeof FaultSpec>;
export type DelayConfig = z.output<typeof Delay>;
export type AbortConfig = z.output<typeof Abort>;
export type PartitionConfig = z.output<typeof Partition>;
export type TcpConfig = z.output<typeof Tcp>;
export type FaultMatchConfig = z.output<typeof FaultMatch>;

/** Mesh-wide fault settings: safety limits, leases, and the test-only header triggers. */
export const FaultInjection = z.strictObject({
  maxActive: z.int().min(0).default(50).meta({ description: 'faults a sidecar holds at once (config and runtime together); PUT beyond is refused' }),
  maxPercent: z.number().min(0).max(100).default(100).meta({ description: 'blast radius: the highest percent a fault may declare' }),
  defaultTtl: Duration.default(300_000).meta({ description: 'lease of a runtime fault that names none' }),
  maxTtl: Duration.default(3_600_000).meta({ description: 'the longest lease a runtime fault may take' }),
  responseHeader: z.boolean().default(false).meta({ description: 'set x-faultline-fault: <ids> on responses a fault touched' }),
  headerTriggers: z.boolean().default(false).meta({
    description: 'honour x-faultline-fault-delay-ms and x-faultline-fault-abort request headers (tests only)',
  }),
});

export type FaultInjectionConfig = z.output<typeof FaultInjection>;
