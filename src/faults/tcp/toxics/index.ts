// The L4 toxics, one module each, in the order a tcp fault's schema lists them. A new toxic is a module
// and a line here: the tcp fault's schema, the runner's durations and the proxy's stages follow.
import type { z } from 'zod';
import { bandwidth } from './bandwidth.ts';
import { latency } from './latency.ts';
import { limitData } from './limit-data.ts';
import { resetPeer } from './reset-peer.ts';
import { slicer } from './slicer.ts';
import type { ToxicLink, ToxicStage } from './stage.ts';
import { timeout } from './timeout.ts';
import type { ToxicDefinition } from './toxic.ts';

export type { ToxicLink, ToxicStage } from './stage.ts';

export const TOXICS = [
  latency,
  bandwidth,
  resetPeer,
  timeout,
  slicer,
  limitData,
] as const;

type Toxic = (typeof TOXICS)[number];
type SpecOf<T> = T extends ToxicDefinition<string, infer K, z.ZodType, infer P> ? { readonly kind: K } & P : never;

/** A toxic as the proxy carries it: its kind and its settings. */
export type TcpToxicSpec = SpecOf<Toxic>;

const byKind = new Map<string, ToxicDefinition>(TOXICS.map((t) => [t.kind, t as ToxicDefinition]));

/** The toxic a tcp fault names (its schema lets exactly one through), as the proxy carries it. */
export function toxicOf(tcp: Partial<Record<Toxic['name'], unknown>>): TcpToxicSpec {
  const fields = tcp as Record<string, unknown>;
  const toxic = (TOXICS as readonly ToxicDefinition[]).find((t) => fields[t.name] !== undefined)!;
  return { kind: toxic.kind, ...(toxic.settings(fields[toxic.name]) as object) } as TcpToxicSpec;
}

export function createStage(spec: TcpToxicSpec, link: ToxicLink): ToxicStage {
  return byKind.get(spec.kind)!.stage(link, spec);
}
