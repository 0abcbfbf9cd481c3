// The control plane's merged event stream: for every sidecar subscribed to it, it reads that sidecar's
// own /events (NDJSON, from its admin listener) and relays each event into one stream, resuming after
// the last event it has when a read breaks — so a recorder can follow the whole mesh from one place.
// request.done (one per request) is read only while someone reads the merged stream; the decisions
// always. Switching reconnects from the last event it has, so nothing in between is lost.
import { request } from 'undici';
import { readEventStream } from '../telemetry/event-stream.ts';
import type { MeshEvent } from '../telemetry/events.ts';
import type { Logger } from '../telemetry/log.ts';
import type { ControlPlane } from './plane.ts';

export class EventCollector {
  readonly #plane: ControlPlane;
  readonly #log: Logger;
  readonly #readers = new Map<string, { controller: AbortController; requests: boolean }>();
  readonly #stopWatching: () => void;
  readonly #lastSeq = new Map<string, number>();
  /** Per sidecar, whether the last read took request.done too. */
  readonly #tookRequests = new Map<string, boolean>();
  readonly #timer: NodeJS.Timeout;
  /** Sidecars whose current read takes request.done and has begun: their request.done flow in. */
  readonly #flowing = new Set<string>();
  readonly #flowChanged = new Set<() => void>();
  #closed = false;

  constructor(plane: ControlPlane, _token: string, log: Logger) {
    this.#plane = plane;
    this.#log = log;
    // Follows the subscriptions: a reader per connected sidecar whose admin address the config knows.
    this.#timer = setInterval(() => this.#sync(), 250).unref();
    this.#stopWatching = plane.onEventReaders(() => this.#sync());
  }

  /**
   * Resolves once the request.done of every connected sidecar flow into the merged stream — each has
   * a read open that takes them — or after `ms`: a sidecar keeps request.done only while read, so a
   * recorder that starts its load before then would miss the first ones.
   */
  requestsFlowing(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#flowChanged.delete(check);
        resolve();
      };
      const check = () => {
        if ([...this.#readable().keys()].every((name) => this.#flowing.has(name))) done();
      };
      const timer = setTimeout(done, ms);
      this.#flowChanged.add(check);
      check();
    });
  }

  #flowChange(name: string, flowing: boolean): void {
    if (flowing) this.#flowing.add(name);
    else this.#flowing.delete(name);
    for (const check of [...this.#flowChanged]) check();
  }

  close(): void {
    this.#closed = true;
    clearInterval(this.#timer);
    this.#stopWatching();
    for (const { controller } of this.#readers.values()) controller.abort();
  }

  /** The sidecars to read: connected, and known to the config (which has their admin address), by name. */
  #readable(): Map<string, string> {
    const admins = new Map(this.#plane.snapshot.sidecars.map((spec) => [spec.name, spec.admin]));
    return new Map(this.#plane.sidecars().flatMap((s) => (s.connected && admins.has(s.name) ? [[s.name, admins.get(s.name)!] as const] : [])));
  }

  #sync(): void {
    if (this.#closed) return;
    const requests = this.#plane.collectsRequests;
    const readable = this.#readable();
    for (const [name, reader] of this.#readers) {
      if (!readable.has(name) || reader.requests !== requests) {
        reader.controller.abort();
        this.#readers.delete(name);
        this.#flowChange(name, false);
      }
    }
    for (const [name, admin] of readable) {
      if (this.#readers.has(name)) continue;
      const reader = { controller: new AbortController(), requests };
      this.#readers.set(name, reader);
      void this.#read(name, admin, reader).finally(() => {
        if (this.#readers.get(name) !== reader) return;
        this.#readers.delete(name);
        this.#flowChange(name, false);
      });
    }
  }

  async #read(name: string, admin: string, { controller, requests }: { controller: AbortController; requests: boolean }): Promise<void> {
    const since = this.#lastSeq.get(name) ?? 0;
    // From decisions only to everything: the request.done not read since `since` are reported as missed — they were not wanted.
    let widening = requests && this.#tookRequests.get(name) === false;
    this.#tookRequests.set(name, requests);
    try {
      const response = await request(`http://${admin}/events?since=${since}&requests=${requests}`, { signal: controller.signal, bodyTimeout: 0 });
      if (response.statusCode !== 200) {
        await response.body.dump();
        return;
      }
      // The sidecar subscribed this read before it sent the head.
      if (requests && this.#readers.get(name)?.controller === controller) this.#flowChange(name, true);
      for await (const event of readEventStream(response.body)) {
        if (event.type === 'events.dropped') {
          if (widening) this.#log.debug({ sidecar: name, count: event.count }, 'request.done from before the merged stream had a reader: not collected');
          else this.#log.warn({ sidecar: name, count: event.count }, 'events missed from a sidecar');
          widening = false;
          continue;
        }
        widening = false;
        const meshEvent = event as unknown as MeshEvent;
        this.#lastSeq.set(name, meshEvent.seq);
        this.#plane.events.relay(meshEvent);
      }
    } catch (error) {
      if (!this.#closed && !controller.signal.aborted) this.#log.debug({ sidecar: name, error: (error as Error).message }, 'event read from a sidecar broke; will resume');
    }
  }
}
