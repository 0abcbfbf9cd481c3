// The merged event streams of several control-plane replicas, made one: every sidecar pushes its events
// to the replica it is attached to, and when that replica dies it fails over and replays its history
// to the next one (which never had it). Relayed events are told apart by (sidecar, sourceSeq), so a
// replayed one — the same event, its times untouched — passes once (a sidecar that restarted numbers
// from 1 again: its events have other times, and pass); history from before the stream began is not
// this stream's. A replica's
// own events (its fault table's fault.installed/removed, made by every replica from the one store)
// pass once per occurrence, whichever replica says it first; metric samples (seq 0) and a stream's
// events.dropped always pass.

/** The fields that say where and when an event was numbered, not what happened. */
const STAMPS = new Set(['seq', 'time', 'monotonic', 'sourceSeq']);

export class EventMerge {
  readonly #since: number;
  /** Per sidecar, the sourceSeqs passed, each with its event's monotonic time. */
  readonly #seen = new Map<string, Map<number, unknown>>();
  /** Per replica's own event (by content), how many times each replica said it, and how many passed. */
  readonly #own = new Map<string, { passed: number; said: Map<string, number> }>();

  /** `since`: when the stream began (ms since the epoch); relayed events from before it are history. */
  constructor(since: number) {
    this.#since = since;
  }

  /** Whether `event`, read from `replica`, is new to the merged stream. */
  admit(replica: string, event: Record<string, unknown>): boolean {
    if (event.type === 'metrics.sample' || event.type === 'events.dropped') return true;
    if (typeof event.sourceSeq === 'number') {
      if (typeof event.time === 'number' && event.time < this.#since) return false;
      const sidecar = String(event.sidecar);
      let seen = this.#seen.get(sidecar);
      if (!seen) this.#seen.set(sidecar, (seen = new Map()));
      if (seen.has(event.sourceSeq) && seen.get(event.sourceSeq) === event.monotonic) return false;
      seen.set(event.sourceSeq, event.monotonic);
      return true;
    }
    const key = JSON.stringify(Object.entries(event).filter(([k]) => !STAMPS.has(k)));
    let own = this.#own.get(key);
    if (!own) this.#own.set(key, (own = { passed: 0, said: new Map() }));
    const said = (own.said.get(replica) ?? 0) + 1;
    own.said.set(replica, said);
    if (said <= own.passed) return false;
    own.passed = said;
    return true;
  }
}
