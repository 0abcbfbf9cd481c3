// A fault's endpoint selector: which instances of its destination it hurts — those with some labels,
// and/or a share (`percent`) or number (`count`) of them chosen by the fault's seed. The choice is a
// ranking: each endpoint's rank is drawn from (seed, its address) alone, and the first k of the
// candidates in rank order are chosen, k = count, or ceil(n × percent / 100) of n candidates (at least
// one when percent > 0). So a replay with the same seed picks the same instances; when endpoints come
// and go the others keep their ranks, and the choice moves only when a newcomer ranks within the first
// k or k itself changes; and faults with the same seed pick the same instances (a delay and an abort on
// one bad instance), other seeds others.
import seedrandom from 'seedrandom';
import { z } from 'zod';
import { Labels } from '../config/primitives.ts';

export const EndpointSelector = z
  .strictObject({
    labels: Labels.optional().meta({ description: 'only endpoints with all these labels' }),
    percent: z.number().gt(0).max(100).optional().meta({
      description: 'this share of the (labelled) endpoints, chosen by the fault\'s seed: the first ceil(n × percent / 100) by a seeded rank',
    }),
    count: z.int().min(1).optional().meta({ description: 'this many of the (labelled) endpoints, chosen by the fault\'s seed' }),
  })
  .superRefine((s, ctx) => {
    if (s.labels === undefined && s.percent === undefined && s.count === undefined) ctx.addIssue({ code: 'custom', message: 'labels, percent or count (an empty selector selects every endpoint: leave it out)' });
    if (s.percent !== undefined && s.count !== undefined) ctx.addIssue({ code: 'custom', path: ['count'], message: 'percent or count, not both' });
  });

export type EndpointSelectorConfig = z.output<typeof EndpointSelector>;

/** An endpoint as the selector reads it. */
export interface SelectableEndpoint {
  readonly address: string;
  readonly labels: Readonly<Record<string, string>>;
}

/** The rank of an endpoint under a seed: in [0, 1), from (seed, address) alone. */
export function endpointRank(seed: number, address: string): number {
  return seedrandom.alea(`endpoints/${seed}/${address}`)();
}

/**
 * The addresses a selector chooses among `endpoints` (one service's, as a snapshot lists them).
 * Memoised per list: a snapshot's lists are frozen, so the choice is made once per snapshot.
 */
export function selectorOf(config: EndpointSelectorConfig, seed: number): (endpoints: readonly SelectableEndpoint[]) => ReadonlySet<string> {
  const chosen = new WeakMap<readonly SelectableEndpoint[], ReadonlySet<string>>();
  return (endpoints) => {
    let set = chosen.get(endpoints);
    if (!set) {
      set = select(config, seed, endpoints);
      chosen.set(endpoints, set);
    }
    return set;
  };
}

export function select(config: EndpointSelectorConfig, seed: number, endpoints: readonly SelectableEndpoint[]): ReadonlySet<string> {
  const labels = Object.entries(config.labels ?? {});
  const candidates = endpoints.filter((e) => labels.every(([key, value]) => e.labels[key] === value));
  const n = candidates.length;
  const k = config.count !== undefined ? Math.min(config.count, n) : config.percent !== undefined ? Math.ceil((n * config.percent) / 100 - 1e-9) : n;
  if (k >= n) return new Set(candidates.map((e) => e.address));
  const ranked = candidates
    .map((e) => ({ address: e.address, rank: endpointRank(seed, e.address) }))
    .sort((a, b) => a.rank - b.rank || (a.address < b.address ? -1 : 1));
  return new Set(ranked.slice(0, k).map((e) => e.address));
}
