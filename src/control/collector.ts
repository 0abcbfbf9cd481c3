// The control plane's merged event stream: for every sidecar subscribed to it, it reads that sidecar's
// own /events (NDJSON, from its admin listener) and relays each event into one stream, resuming after
// the last event it has when a read breaks — so a recorder can follow the whole mesh from one place.
import { request } from 'undici';
import { readEventStream } from '../telemetry/event-stream.ts';
import type { MeshEvent } from '../telemetry/events.ts';
import type { Logger } from '../telemetry/log.ts';
import type { ControlPlane } from './plane.ts';

export class EventCollector {
  readonly #plane: ControlPlane;
  readonly #log: Logger;
  readonly #readers = new Map<string, AbortController>();
  readonly #lastSeq = new Map<string, number>();
  readonly #timer: NodeJS.Timeout;
  #closed = false;

  constructor(plane: ControlPlane, _token: string, log: Logger) {
    this.#plane = plane;
    this.#log = log;
    // Follows the subscriptions: a reader per connected sidecar whose admin address the config knows.
    this.#timer = setInterval(() => this.#sync(), 250).unref();
  }

  close(): void {
    this.#closed = true;
    clearInterval(this.#timer);
    for (const controller of this.#readers.values()) controller.abort();
  }

  #sync(): void {
    const connected = new Set(this.#plane.sidecars().filter((s) => s.connected).map((s) => s.name));
    for (const [name, controller] of this.#readers) {
      if (!connected.has(name)) {
        controller.abort();
        this.#readers.delete(name);
      }
    }
    for (const name of connected) {
      if (this.#readers.has(name)) continue;
      const spec = this.#plane.snapshot.sidecars.find((s) => s.name === name);
      if (!spec) continue;
      const controller = new AbortController();
      this.#readers.set(name, controller);
      void this.#read(name, spec.admin, controller).finally(() => {
        if (this.#readers.get(name) === controller) this.#readers.delete(name);
      });
    }
  }

  async #read(name: string, admin: string, controller: AbortController): Promise<void> {
    const since = this.#lastSeq.get(name) ?? 0;
    try {
      const response = await request(`http://${admin}/events?since=${since}`, { signal: controller.signal, bodyTimeout: 0 });
      if (response.statusCode !== 200) {
        await response.body.dump();
        return;
      }
      for await (const event of readEventStream(response.body)) {
        if (event.type === 'events.dropped') {
          this.#log.warn({ sidecar: name, count: event.count }, 'events missed from a sidecar');
          continue;
        }
        const meshEvent = event as unknown as MeshEvent;
        this.#lastSeq.set(name, meshEvent.seq);
        this.#plane.events.relay(meshEvent);
      }
    } catch (error) {
      if (!this.#closed && !controller.signal.aborted) this.#log.debug({ sidecar: name, error: (error as Error).message }, 'event read from a sidecar broke; will resume');
    }
  }
}
