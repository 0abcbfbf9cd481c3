// The experiment file format (`experiments/*.yaml`): one zod schema is the source of validation (every
// problem with file, line and field, as for mesh configs), of the types, and of the JSON Schema
// (`faultline schema --experiment`). Faults in method steps are exactly the fault engine's schema; the
// runner gives them their leases.
import { z } from 'zod';
import { parseWithSchema } from '../config/load.ts';
import { Duration, Method, Name } from '../config/primitives.ts';
import { faultTargets } from '../faults/actions/index.ts';
import { FaultSpec } from '../faults/schema.ts';
import { ScheduleSpec } from './schedule.ts';

const Percent = z.number().min(0).max(100);

const Target = z.union([
  z.strictObject({ mesh: z.string().min(1).meta({ description: 'a mesh file: the runner brings it up (faultline up) and down again' }) }),
  z.strictObject({
    control: z
      .union([
        z.string().refine((text) => controlUrls(text).length > 0 && controlUrls(text).every(isUrl), { error: 'a URL, or the replicas\' URLs comma-separated' }),
        z.array(z.url()).min(1),
      ])
      .meta({ description: 'a running control plane; or its replicas (on one store), as a list or comma-separated: calls fail over between them, the event stream is read from every one' }),
    tokenFile: z.string().optional().meta({ description: 'its bearer token (else FAULTLINE_TOKEN)' }),
    ca: z.string().min(1).optional().meta({ description: 'for https:// URLs: the CA bundle (PEM) to trust it through, relative to this file (else FAULTLINE_CONTROL_CA, else the default trust); faultline control --tls auto writes it to <state-dir>/control-ca.pem' }),
  }),
]);

const RequestMix = z.strictObject({
  method: Method.default('GET'),
  path: z.string().startsWith('/').default('/'),
  headers: z.record(z.string(), z.string()).default({}),
  body: z.string().optional(),
  weight: z.int().min(1).default(1),
});

const Load = z
  .strictObject({
    entry: Name.optional().meta({ description: 'the service the load enters at (through its sidecar\'s inbound listener)' }),
    url: z.url().optional().meta({ description: 'or a URL to send the load to' }),
    requests: z.array(RequestMix).min(1).default([{ method: 'GET', path: '/', headers: {}, weight: 1 }]),
    rate: z.number().gt(0).meta({ description: 'requests per second, in total' }),
    model: z.enum(['open', 'closed']).default('open').meta({ description: 'open: requests start on schedule whatever the responses do; closed: each connection waits for its response (benchmarks, not verdicts)' }),
    maxInFlight: z.int().min(1).optional().meta({ description: 'open model: most requests in flight at once, a start beyond it is a missed start (default: rate × the 10 s client timeout, at most 1000)' }),
    connections: z.int().min(1).default(10).meta({ description: 'closed model: connections, each waiting for its response' }),
    cohort: z
      .strictObject({
        percent: z.number().gt(0).lt(100).meta({ description: 'share of the load in the experiment cohort; the rest is the control group' }),
        header: z.string().min(1).default('x-faultline-cohort').meta({ description: 'the header that marks the cohort (value "experiment")' }),
      })
      .optional()
      .meta({ description: 'confine every fault to a cohort of the requests, measured side by side with a control group' }),
  })
  .superRefine((load, ctx) => {
    if ((load.entry === undefined) === (load.url === undefined)) ctx.addIssue({ code: 'custom', message: 'one of entry (a service) or url' });
  });

const Phases = z.strictObject({
  warmup: Duration.default(2_000),
  baseline: Duration.default(5_000),
  recovery: Duration.default(5_000),
});

/** A hypothesis kind, its fields, exactly one per entry. */
const exactlyOne = (kinds: readonly string[]) => (value: Record<string, unknown>, ctx: z.RefinementCtx) => {
  const set = kinds.filter((k) => value[k] !== undefined);
  if (set.length !== 1) ctx.addIssue({ code: 'custom', message: set.length === 0 ? `missing: one of ${kinds.join(', ')}` : `one per entry, not ${set.join(' and ')}` });
};

const Quantile = z.number().gt(0).lt(100).meta({ description: 'percentile, e.g. 99' });

export const STEADY_STATE_KINDS = ['availability', 'latency', 'errorBudgetBurn'] as const;
const SteadyState = z
  .strictObject({
    availability: z.strictObject({ service: Name, min: Percent.meta({ description: 'percent of requests answered below 500' }) }).optional(),
    latency: z.strictObject({ service: Name, percentile: Quantile.default(99), max: Duration }).optional(),
    errorBudgetBurn: z
      .strictObject({ service: Name, slo: Percent.meta({ description: 'the availability objective, e.g. 99.5' }), max: z.number().gt(0).meta({ description: 'highest burn rate: error rate ÷ (1 − slo)' }) })
      .optional(),
  })
  .superRefine(exactlyOne(STEADY_STATE_KINDS));

export const EXPECT_KINDS = ['retriesMask', 'breaker', 'outlierEjects', 'recovers'] as const;
const Expect = z
  .strictObject({
    retriesMask: z.strictObject({ service: Name, min: Percent.meta({ description: 'percent of injected aborts on calls to the service whose request still succeeded' }) }).optional(),
    breaker: z
      .strictObject({ service: Name, opensWithin: Duration.optional(), closesWithin: Duration.optional().meta({ description: 'after the faults on it end' }) })
      .optional(),
    outlierEjects: z.strictObject({ service: Name, within: Duration }).optional(),
    recovers: z.strictObject({ service: Name, within: Duration.meta({ description: 'after rollback, back to every steady-state hypothesis on the service' }) }).optional(),
  })
  .superRefine(exactlyOne(EXPECT_KINDS));

const Halt = z
  .strictObject({
    availability: z.strictObject({ service: Name, below: Percent, for: Duration.default(3_000) }).optional(),
    latency: z.strictObject({ service: Name, percentile: Quantile.default(99), above: Duration, for: Duration.default(3_000) }).optional(),
  })
  .superRefine(exactlyOne(['availability', 'latency']));

const Step = z.strictObject({
  at: Duration.meta({ description: 'offset from the start of the method phase' }),
  duration: Duration.refine((ms) => ms > 0, { error: 'expected a duration above 0' }),
  fault: FaultSpec.refine((f) => f.ttl === undefined && f.expiresAt === undefined, { error: 'the runner sets the lease: no ttl or expiresAt here' }),
  ramp: z
    .strictObject({ from: Percent, every: Duration.default(1_000) })
    .optional()
    .meta({ description: 'raise percent from `from` to the fault\'s percent over the step, in even increments' }),
});

export const ExperimentSpec = z
  .strictObject({
    name: Name,
    description: z.string().default(''),
    target: Target,
    load: Load,
    phases: Phases.prefault({}),
    steadyState: z.array(SteadyState).default([]),
    method: z.array(Step).min(1, { error: 'at least one step' }),
    expect: z.array(Expect).default([]),
    halt: z.array(Halt).default([]),
    seed: z.int().optional().meta({ description: 'seed for every fault (overridden by --seed); recorded with the run' }),
    schedule: ScheduleSpec.optional(),
  })
  .superRefine((spec, ctx) => {
    const ids = new Set<string>();
    spec.method.forEach((step, i) => {
      if (ids.has(step.fault.id)) ctx.addIssue({ code: 'custom', path: ['method', i, 'fault', 'id'], message: `fault "${step.fault.id}" is used by two steps` });
      ids.add(step.fault.id);
      if (step.ramp && step.ramp.from >= step.fault.percent) ctx.addIssue({ code: 'custom', path: ['method', i, 'ramp', 'from'], message: 'a ramp goes up: from must be below the fault\'s percent' });
    });
  });

export type Experiment = z.output<typeof ExperimentSpec>;
export type StepConfig = Experiment['method'][number];
export type SteadyStateConfig = Experiment['steadyState'][number];
export type ExpectConfig = Experiment['expect'][number];
export type HaltConfig = Experiment['halt'][number];

export function parseExperiment(text: string, file: string): Experiment {
  return parseWithSchema(ExperimentSpec, text, file);
}

/** The method phase's length: until the last step ends. */
export function methodLength(experiment: Experiment): number {
  return Math.max(...experiment.method.map((s) => s.at + s.duration));
}

/** Services an experiment injects faults into (for overlap and the blast radius). */
export function targetsOf(experiment: Experiment): string[] {
  const names = new Set<string>();
  for (const { fault } of experiment.method) {
    for (const n of faultTargets(fault)) names.add(n);
  }
  return [...names].sort();
}

/** The URLs of a `control` target: one, or every replica's. */
export function controlUrls(control: string | readonly string[]): string[] {
  return (typeof control === 'string' ? control.split(',') : [...control]).map((u) => u.trim()).filter(Boolean);
}

function isUrl(text: string): boolean {
  return z.url().safeParse(text).success;
}

export function experimentJsonSchema(): unknown {
  return z.toJSONSchema(ExperimentSpec, { io: 'input', target: 'draft-2020-12', unrepresentable: 'any' });
}
