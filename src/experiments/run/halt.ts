// Halt watching: the experiment's halt conditions checked every second over their trailing windows,
// and any other reason to stop (an emergency stop, a fault that could not be put) taken at once; the
// first reason is kept and wakes the method phase, which then ends early.
import type { Experiment, HaltConfig } from '../spec.ts';
import { availability, latencyPercentile, samplesFor, type Recording } from '../verdicts.ts';
import type { Clock } from '../../clock.ts';

const CHECK_EVERY_MS = 1_000;
/** Fewer samples than this in a halt's window say nothing either way. */
const MIN_SAMPLES = 10;

export class HaltWatch {
  readonly #clock: Clock;
  #reason: string | undefined;
  #wake: (() => void) | undefined;
  #stopWatching: (() => void) | undefined;

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  /** Why the run halts; undefined while it need not. */
  get reason(): string | undefined {
    return this.#reason;
  }

  /** The run must halt: the first reason given is the one kept. */
  halt(reason: string): void {
    this.#reason ??= reason;
    this.#wake?.();
  }

  /** Checks the experiment's halt conditions every second against the recording as it is then. */
  watch(experiment: Experiment, recording: () => Recording): void {
    this.#stopWatching = this.#clock.every(CHECK_EVERY_MS, () => {
      const reason = haltReason(experiment, recording(), this.#clock.now());
      if (reason) this.halt(reason);
    });
  }

  stop(): void {
    this.#stopWatching?.();
  }

  /** Waits `ms`, or less if the run halts meanwhile (at once if it already has). */
  wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const cancel = this.#clock.after(ms, resolve);
      this.#wake = () => {
        cancel();
        resolve();
      };
      if (this.#reason) this.#wake();
    });
  }
}

/** One halt condition as it stands at a moment: its measure over its trailing window, and whether it holds. */
export interface HaltStanding {
  readonly condition: string;
  /** Availability in %, or the latency percentile in ms; null with no sample. */
  readonly value: number | null;
  readonly limit: number;
  readonly kind: 'below' | 'above';
  readonly samples: number;
  /** The run halts on it (enough samples, past its limit). */
  readonly holds: boolean;
}

/** Every halt condition at `now`: what the halt watch decides on, and what the console shows of how close each is. */
export function haltStandings(experiment: Experiment, recording: Recording, now: number): HaltStanding[] {
  return (experiment.halt as HaltConfig[]).map((h) => {
    if (h.availability) {
      const samples = samplesFor(recording, h.availability.service, { name: 'halt', from: now - h.availability.for, to: now });
      const value = availability(samples);
      const holds = samples.length >= MIN_SAMPLES && value < h.availability.below;
      return { condition: `availability of ${h.availability.service} ${holds ? value.toFixed(1) : ''}${holds ? ' % < ' : 'below '}${h.availability.below} % for ${h.availability.for} ms`, value: Number.isNaN(value) ? null : value, limit: h.availability.below, kind: 'below' as const, samples: samples.length, holds };
    }
    const l = h.latency!;
    const samples = samplesFor(recording, l.service, { name: 'halt', from: now - l.for, to: now }).filter((s) => s.status > 0);
    const value = latencyPercentile(samples, l.percentile);
    const holds = samples.length >= MIN_SAMPLES && value > l.above;
    return { condition: `p${l.percentile} of ${l.service} ${holds ? `${value.toFixed(0)} ms > ` : 'above '}${l.above} ms for ${l.for} ms`, value: Number.isNaN(value) ? null : value, limit: l.above, kind: 'above' as const, samples: samples.length, holds };
  });
}

/** The first halt condition that holds over its trailing window at `now`, as a reason; else undefined. */
export function haltReason(experiment: Experiment, recording: Recording, now: number): string | undefined {
  return haltStandings(experiment, recording, now).find((h) => h.holds)?.condition;
}
