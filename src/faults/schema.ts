// The fault format: one zod schema for a fault whether it comes from the mesh config (`faults:`) or
// from `PUT /faults/:id` on a sidecar's admin listener, and for the mesh-wide fault settings
// (`faultInjection:`). A fault is a match, an injection point, exactly one action, a percentage and
// count, a seed, and (at runtime) a lease. The actions' fields come from their registry (actions/index.ts).
import { z } from 'zod';
import { Duration, Name } from '../config/primitives.ts';
import type { ActionDefinition } from './actions/action.ts';
import { ACTION_DEFINITIONS, ACTIONS } from './actions/index.ts';
import { oneOf, optionalFields } from './fields.ts';
import { FaultMatch } from './match.ts';

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
    ttl: Duration.refine((ms) => ms > 0, { error: 'must be above 0: a lease of 0 would end as it begins' })
      .optional()
      .meta({ description: 'lease: the fault removes itself this long after it is installed' }),
    expiresAt: z.iso.datetime({ offset: true }).optional().meta({ description: 'lease: the fault removes itself at this time' }),
    ...optionalFields(ACTION_DEFINITIONS),
  })
  .superRefine((fault, ctx) => {
    oneOf(ACTIONS, 'action')(fault, ctx);
    if (fault.ttl !== undefined && fault.expiresAt !== undefined) ctx.addIssue({ code: 'custom', path: ['ttl'], message: 'ttl or expiresAt, not both' });
    if (fault.match.endpoints !== undefined) {
      if (fault.match.destination === undefined) {
        ctx.addIssue({ code: 'custom', path: ['match', 'endpoints'], message: 'an endpoint selector needs match.destination: the service whose instances it chooses' });
      } else if (fault.at === 'request') {
        ctx.addIssue({ code: 'custom', path: ['at'], message: 'a fault on chosen endpoints acts where the endpoint is known: at attempt (after balancing) or inbound (at the instance), not request' });
      }
    }
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
    for (const definition of ACTION_DEFINITIONS as readonly ActionDefinition[]) {
      const settings = (fault as Record<string, unknown>)[definition.name];
      if (settings === undefined || !definition.check) continue;
      for (const { path, message } of definition.check(settings, fault.match)) ctx.addIssue({ code: 'custom', path: [...path], message });
    }
  });

export type FaultConfig = z.output<typeof FaultSpec>;
export type DelayConfig = NonNullable<FaultConfig['delay']>;
export type { FaultMatchConfig } from './match.ts';

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
