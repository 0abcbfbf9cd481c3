// Value types shared by the mesh config and the fault schema: names, durations, addresses, string
// matches. Each carries its own message, so an error names what was expected.
import { z } from 'zod';
import { parseDuration } from './duration.ts';

/** A message for a value of the wrong shape, and a plain one for a field that is missing. */
export const expecting = (what: string) => (issue: { input?: unknown }) =>
  issue.input === undefined ? `missing: expected ${what}` : `expected ${what}`;

export const Name = z
  .string()
  .regex(/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/, { error: 'expected a DNS-style name: lowercase letters, digits and "-"' });

export const Duration = z
  .string({ error: expecting('a duration such as "250ms", "2s", "1m"') })
  .refine((text) => parseDuration(text) !== undefined, { error: 'expected a duration such as "250ms", "2s", "1m"' })
  .transform((text) => parseDuration(text)!)
  .meta({ description: 'A duration: a number with a unit, ms, s, m or h ("250ms", "2s")' });

const ADDRESS_PATTERN = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/;

export const Address = z
  .string({ error: expecting('an address "host:port"') })
  .superRefine((text, ctx) => {
    const match = ADDRESS_PATTERN.exec(text);
    if (!match) ctx.addIssue({ code: 'custom', message: 'expected an address "host:port", e.g. 127.0.0.1:9101 or [::1]:9101' });
    else if (Number(match[2]) < 1 || Number(match[2]) > 65535) ctx.addIssue({ code: 'custom', message: 'expected a port between 1 and 65535' });
  })
  .meta({ description: 'An address "host:port", e.g. 127.0.0.1:9101 or [::1]:9101' });

/** The host of an address, or undefined when it is not one (then Address says so). */
export const hostOf = (address: string): string | undefined => ADDRESS_PATTERN.exec(address)?.[1];

export const Labels = z.record(z.string(), z.string());

export const StringMatch = z
  .strictObject({
    exact: z.string().optional(),
    prefix: z.string().optional(),
    regex: z.string().optional(),
    present: z.boolean().optional(),
    invert: z.boolean().optional().meta({ description: 'match when the condition does not hold' }),
  })
  .refine((m) => [m.exact, m.prefix, m.regex, m.present].filter((v) => v !== undefined).length === 1, {
    error: 'exactly one of exact, prefix, regex or present',
  });

export const Method = z.string().regex(/^[A-Z]+$/, { error: 'expected an HTTP method in capitals, e.g. GET' });
