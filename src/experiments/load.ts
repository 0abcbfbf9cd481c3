// A game day's load, as the run sees it: one interface a load model implements (loads/, one model a
// file), the target it sends to, and the record it makes of every response, which the recording keeps.
import type { Experiment } from './spec.ts';

export interface LoadRecord {
  /** Epoch milliseconds when the response (or the error) came. */
  readonly t: number;
  readonly latencyMs: number;
  /** 0 for an error or a timeout (no response). */
  readonly status: number;
  readonly cohort: 'experiment' | 'control' | 'all';
}

export const COHORT_VALUE = 'experiment';

export interface LoadTarget {
  /** Base URL the requests go to (the entry sidecar's inbound listener, or the experiment's url). */
  readonly url: string;
  /** Host header: the entry service's name, when load enters through a sidecar. */
  readonly host?: string;
}

/** A load model: sends the experiment's requests to the target for a time, each response (or error) a record. */
export interface Load {
  /** Sends load for `durationMs`; resolves when it is over (or stopped). */
  run(experiment: Experiment, target: LoadTarget, durationMs: number, record: (r: LoadRecord) => void): Promise<void>;
  stop(): void;
}
