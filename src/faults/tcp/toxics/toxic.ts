// The contract of an L4 toxic, as Toxiproxy's toxics/toxic.go: its field in a tcp fault and schema,
// its kind as Toxiproxy names it, the settings the proxy carries, and the stage that acts on one
// direction of a connection. One module each under toxics/, one line in toxics/index.ts.
import type { z } from 'zod';
import type { ToxicLink, ToxicStage } from './stage.ts';

export interface ToxicDefinition<N extends string = string, K extends string = string, S extends z.ZodType = z.ZodType, P = unknown> {
  /** Its field in a tcp fault (`resetPeer`). */
  readonly name: N;
  /** Its name in Toxiproxy and in `fault.applied` events (`reset_peer`). */
  readonly kind: K;
  /** Its settings, with descriptions. */
  readonly schema: S;
  /** Valid settings as written in a file: the registry test parses and round-trips them. */
  readonly example: z.input<S>;
  /** Settings that are durations, as dotted paths: the runner turns them back into text for the fault API. */
  readonly durations?: readonly string[];
  /** The settings as the proxy carries them (durations in milliseconds, named so). */
  settings(config: z.output<S>): P;
  /** A stage for one direction of one connection. */
  stage(link: ToxicLink, settings: P): ToxicStage;
}

/** Declares a toxic, keeping its name, kind and settings types for the schema and the proxy. */
export const defineToxic = <const N extends string, const K extends string, S extends z.ZodType, P>(
  definition: ToxicDefinition<N, K, S, P>,
): ToxicDefinition<N, K, S, P> => definition;
