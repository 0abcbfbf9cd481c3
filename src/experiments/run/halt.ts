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

/** The first halt condition that holds over its trailing window at `now`, as a reason; else undefined. */
export function haltReason(experiment: Experiment, recording: Recording, now: number): string | undefined {
  for (const h of experiment.halt as HaltConfig[]) {
    if (h.availability) {
      const samples = samplesFor(recording, h.availability.service, { name: 'halt', from: now - h.availability.for, to: now });
      const value = availability(samples);
      if (samples.length >= MIN_SAMPLES && value < h.availability.below) return `availability of ${h.availability.service} ${value.toFixed(1)} % < ${h.availability.below} % for ${h.availability.for} ms`;
    } else if (h.latency) {
      const samples = samplesFor(recording, h.latency.service, { name: 'halt', from: now - h.latency.for, to: now }).filter((s) => s.status > 0);
      const value = latencyPercentile(samples, h.latency.percentile);
      if (samples.length >= MIN_SAMPLES && value > h.latency.above) return `p${h.latency.percentile} of ${h.latency.service} ${value.toFixed(0)} ms > ${h.latency.above} ms for ${h.latency.for} ms`;
    }
  }
  return undefined;
}
