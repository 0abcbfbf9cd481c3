// Fault leasing during the method: each step's fault put through the control plane at its time with a
// short lease, the lease renewed every second while this process lives (a ramped step's percent moves
// up on the same tick), and the fault removed when its step ends. A dead runner's faults end on their
// own within LEASE_MS.
import type { Experiment, StepConfig } from '../spec.ts';
import { faultBody, rampPercent } from '../steps.ts';
import { isoAt, type Clock } from '../../clock.ts';
import type { RunJournal } from './journal.ts';

/** How long a fault's lease outlives the moment it was last renewed: a dead runner's faults end this soon. */
export const LEASE_MS = 5_000;
const RENEW_EVERY_MS = 1_000;

/** The control plane's fault API, as far as leasing needs it. */
export interface FaultApi {
  /** `renew`: only if the fault is still there (a renewal must not bring back a fault the emergency stop removed). */
  putFault(spec: Record<string, unknown>, ttlMs: number, renew?: boolean): Promise<unknown>;
  deleteFault(id: string): Promise<void>;
}

export interface FaultLeasesOptions {
  readonly experiment: Experiment;
  readonly seed: number;
  readonly api: FaultApi;
  /** Where injections, removals and renewals are written down. */
  readonly journal: Pick<RunJournal, 'data' | 'note'>;
  readonly clock: Clock;
  /** Whether the run is halting: a step due then is not injected. */
  readonly halted: () => boolean;
  /** A fault could not be put: the run must halt, for this reason. */
  readonly onFailure: (reason: string) => void;
}

export class FaultLeases {
  readonly #o: FaultLeasesOptions;
  /** Steps whose fault is leased now, by fault id. */
  readonly #active = new Map<string, { step: StepConfig; index: number; endsAt: number }>();
  /** Faults put and not yet removed, for the progress line. */
  readonly #injected = new Set<string>();
  readonly #cancels: (() => void)[] = [];
  #methodStart = 0;

  constructor(options: FaultLeasesOptions) {
    this.#o = options;
  }

  /** Faults in force now. */
  get inForce(): number {
    return this.#injected.size;
  }

  /** The method begins now: each step's fault is put at its time and removed at its end. */
  start(): void {
    const { experiment, clock } = this.#o;
    this.#methodStart = clock.now();
    experiment.method.forEach((step, index) => {
      this.#cancels.push(clock.after(step.at, () => void this.#inject(step, index).catch((error: Error) => this.#o.onFailure(`could not inject ${step.fault.id}: ${error.message}`))));
      this.#cancels.push(clock.after(step.at + step.duration, () => void this.#remove(step, index).catch(() => undefined)));
    });
    // Leases renewed every second while this process lives; ramps move up on the same tick.
    this.#cancels.push(clock.every(RENEW_EVERY_MS, () => {
      for (const entry of this.#active.values()) {
        void this.#put(entry, true).then(() => this.#o.journal.data.faults[entry.index]!.renewals++, () => undefined);
      }
    }));
  }

  /** No more injections, removals or renewals: what is in force is left to the rollback. */
  stop(): void {
    for (const cancel of this.#cancels) cancel();
    this.#cancels.length = 0;
  }

  /** The rollback removed every fault. */
  cleared(): void {
    this.#active.clear();
    this.#injected.clear();
  }

  async #inject(step: StepConfig, index: number): Promise<void> {
    if (this.#o.halted()) return;
    const entry = { step, index, endsAt: this.#methodStart + step.at + step.duration };
    this.#active.set(step.fault.id, entry);
    await this.#put(entry);
    this.#injected.add(step.fault.id);
    this.#o.journal.data.faults[index]!.injectedAt = isoAt(this.#o.clock.now());
    await this.#o.journal.note(`injected ${step.fault.id} for ${step.duration} ms`);
  }

  async #remove(step: StepConfig, index: number): Promise<void> {
    this.#active.delete(step.fault.id);
    await this.#o.api.deleteFault(step.fault.id);
    this.#injected.delete(step.fault.id);
    this.#o.journal.data.faults[index]!.removedAt = isoAt(this.#o.clock.now());
    await this.#o.journal.note(`removed ${step.fault.id}`);
  }

  /** Puts a step's fault as it is now (a ramp's current percent), leased until LEASE_MS past now, never past its end. */
  async #put(entry: { step: StepConfig; endsAt: number }, renew = false): Promise<void> {
    const { experiment, seed, api, clock } = this.#o;
    const now = clock.now();
    const body = faultBody(experiment, entry.step, seed, rampPercent(entry.step, now - (this.#methodStart + entry.step.at)));
    await api.putFault(body, Math.min(LEASE_MS, entry.endsAt - now + LEASE_MS), renew);
  }
}
