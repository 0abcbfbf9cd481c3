// The typed events the proxy emits for every decision that analysis needs. Names and payloads are
// declared here and nowhere else; consumers subscribe in process.
import { EventEmitter } from 'node:events';

export interface EventBase {
  /** Milliseconds since the Unix epoch. */
  readonly time: number;
  /** Monotonic milliseconds (performance.now()), for ordering and durations. */
  readonly monotonic: number;
  readonly sidecar: string;
}

export interface MeshEvents {
  'health.changed': EventBase & { service: string; endpoint: string; healthy: boolean; reason: string };
  'outlier.ejected': EventBase & { service: string; endpoint: string; ejections: number; durationMs: number; reason: string };
  'outlier.restored': EventBase & { service: string; endpoint: string };
  'retry.attempt': EventBase & {
    requestId: string;
    route: string;
    service: string;
    /** The try about to start (2 for the first retry). */
    attempt: number;
    reason: string;
    failedEndpoint: string | null;
    backoffMs: number;
  };
  'breaker.state': EventBase & {
    service: string;
    subset: string;
    from: 'closed' | 'open' | 'half-open';
    to: 'closed' | 'open' | 'half-open';
    reason: string;
    /** Trips in a row; the cool-down grows with it. */
    trips: number;
    /** When opening: how long until half-open. */
    openForMs: number;
  };
  'config.applied': EventBase & { version: string; source: string };
  'config.rejected': EventBase & { source: string; error: string };
}
export type MeshEventName = keyof MeshEvents;
type Payload<K extends MeshEventName> = Omit<MeshEvents[K], keyof EventBase>;

export class EventBus {
  readonly #emitter = new EventEmitter({ captureRejections: false });
  readonly sidecar: string;

  constructor(sidecar: string) {
    this.sidecar = sidecar;
    this.#emitter.setMaxListeners(0);
  }

  emit<K extends MeshEventName>(name: K, payload: Payload<K>): void {
    if (this.#emitter.listenerCount(name) === 0) return;
    const event = { time: Date.now(), monotonic: performance.now(), sidecar: this.sidecar, ...payload };
    this.#emitter.emit(name, event);
  }

  on<K extends MeshEventName>(name: K, listener: (event: MeshEvents[K]) => void): () => void {
    this.#emitter.on(name, listener);
    return () => this.#emitter.off(name, listener);
  }
}
