// Exactly one of a set of optional fields: how a fault picks its action, a tcp fault its toxic and a
// delay its distribution. The fields and the check are built from the same list of definitions.
import { z } from 'zod';

/** Exactly one of `keys` is set on the object. */
export const oneOf = (keys: readonly string[], what: string) => (value: Record<string, unknown>, ctx: z.RefinementCtx) => {
  const set = keys.filter((k) => value[k] !== undefined);
  if (set.length !== 1) {
    ctx.addIssue({ code: 'custom', message: set.length === 0 ? `missing: one ${what}, of ${keys.join(', ')}` : `one ${what}, not ${set.join(' and ')}` });
  }
};

/** Each definition's schema as an optional field under its name, typed field by field. */
export type OptionalFields<D extends { readonly name: string; readonly schema: z.ZodType }> = {
  [K in D as K['name']]: z.ZodOptional<K['schema']>;
};

export function optionalFields<const D extends { readonly name: string; readonly schema: z.ZodType }>(definitions: readonly D[]): OptionalFields<D> {
  return Object.fromEntries(definitions.map((d) => [d.name, d.schema.optional()])) as OptionalFields<D>;
}
