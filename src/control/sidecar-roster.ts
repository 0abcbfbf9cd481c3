// What the control plane knows of each sidecar that ever subscribed to it, from what the sidecar said
// over its own connections: whether its watch stream is open, the last state it acknowledged (and the
// runtime faults it reported holding then), and its uplink (events pushed, where they resume). The
// emergency stop, rollbacks and GET /sidecars read it; nothing here asks a sidecar anything.
export interface SidecarStatus {
  name: string;
  connected: boolean;
  /** The version it last acknowledged applying, and when. */
  version: string | null;
  error: string | null;
  /** The runtime faults that applying `version` removed from it, as it reported. */
  removed: string[];
  ackedAt: string | null;
  connectedAt: string | null;
  disconnectedAt: string | null;
  /** The runtime faults it held after applying `version`, as it reported with its ack; null before its first. */
  faults: string[] | null;
  /** Its events flow in over its uplink (and with request.done, when `requests`). */
  uplink: { open: boolean; requests: boolean; lastSeq: number };
}

/** A sidecar's acknowledgement: the state it applied, or the error that stopped it, and what that did. */
export interface Ack {
  readonly version: string;
  readonly error: string | null;
  readonly removed: readonly string[];
  /** The runtime faults it holds now (sidecars older than this field say nothing). */
  readonly faults?: readonly string[];
}

/** On the watch stream's head: the control plane takes acks on the uplink ("uplink"). */
export const ACKS_HEADER = 'x-faultline-acks';

/** How many published versions are remembered in order (to tell an ack of a later one). */
const PUBLISHED_KEPT = 10_000;

export class SidecarRoster {
  readonly #sidecars = new Map<string, SidecarStatus>();
  /** Statuses, sorted by name, until the next sidecar comes or goes. */
  #sorted: SidecarStatus[] | undefined;
  readonly #ackWaiters = new Set<() => void>();
  readonly #flowChanged = new Set<() => void>();
  /** Each version this control plane published, with its place in the order (a version made again takes a new place). */
  readonly #published = new Map<string, number>();
  #publishedCount = 0;
  /** Per sidecar, the place of the version it acknowledged, when it acknowledged it. */
  readonly #ackedPlace = new Map<string, number>();

  /** The control plane sends a new state: a sidecar that acknowledges it has applied every earlier one's changes too. */
  published(version: string): void {
    this.#published.delete(version);
    this.#published.set(version, ++this.#publishedCount);
    if (this.#published.size > PUBLISHED_KEPT) this.#published.delete(this.#published.keys().next().value!);
  }

  status(sidecar: string): SidecarStatus {
    let status = this.#sidecars.get(sidecar);
    if (!status) {
      status = { name: sidecar, connected: false, version: null, error: null, removed: [], ackedAt: null, connectedAt: null, disconnectedAt: null, faults: null, uplink: { open: false, requests: false, lastSeq: 0 } };
      this.#sidecars.set(sidecar, status);
      this.#sorted = undefined;
    }
    return status;
  }

  get(sidecar: string): SidecarStatus | undefined {
    return this.#sidecars.get(sidecar);
  }

  all(): readonly SidecarStatus[] {
    this.#sorted ??= [...this.#sidecars.values()].sort((a, b) => a.name.localeCompare(b.name));
    return this.#sorted;
  }

  acknowledge(sidecar: string, ack: Ack): void {
    const status = this.status(sidecar);
    if (!ack.error) {
      status.version = ack.version;
      status.removed = [...ack.removed];
      this.#ackedPlace.set(sidecar, this.#published.get(ack.version) ?? 0);
    }
    if (ack.faults !== undefined) status.faults = [...ack.faults];
    status.error = ack.error;
    status.ackedAt = new Date().toISOString();
    for (const waiter of this.#ackWaiters) waiter();
  }

  /**
   * Whether the sidecar has applied `version` or a state this control plane published after it (a
   * sidecar sent several states at once applies and acknowledges the latest alone).
   */
  hasApplied(sidecar: string, version: string): boolean {
    const status = this.#sidecars.get(sidecar);
    if (!status?.version) return false;
    if (status.version === version) return true;
    const wanted = this.#published.get(version);
    return wanted !== undefined && (this.#ackedPlace.get(sidecar) ?? 0) >= wanted;
  }

  /** A sidecar left for good (a clean stop): no longer listed. */
  forget(sidecar: string): boolean {
    const known = this.#sidecars.delete(sidecar);
    this.#ackedPlace.delete(sidecar);
    this.#sorted = undefined;
    for (const waiter of this.#ackWaiters) waiter();
    return known;
  }

  /** Resolves once every connected sidecar has applied `version` or a later state (or the time is up: false). */
  waitForAcks(version: string, timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const check = () => {
        if (this.all().every((s) => !s.connected || this.hasApplied(s.name, version))) finish(true);
      };
      const finish = (ok: boolean) => {
        clearTimeout(timer);
        this.#ackWaiters.delete(check);
        resolve(ok);
      };
      const timer = setTimeout(() => finish(false), timeoutMs);
      this.#ackWaiters.add(check);
      check();
    });
  }

  /** A sidecar's uplink opened: returns the function that says it closed (closing one a newer replaced changes nothing). */
  uplinkOpened(sidecar: string, requests: boolean): () => void {
    const status = this.status(sidecar);
    const uplink = { open: true, requests, lastSeq: status.uplink.lastSeq };
    status.uplink = uplink;
    this.#flowsChanged();
    return () => {
      if (status.uplink !== uplink) return;
      status.uplink = { ...uplink, open: false };
      this.#flowsChanged();
    };
  }

  /** The last event of a sidecar merged here (0: none). */
  lastSeqOf(sidecar: string): number {
    return this.#sidecars.get(sidecar)?.uplink.lastSeq ?? 0;
  }

  eventMerged(sidecar: string, seq: number): void {
    this.status(sidecar).uplink.lastSeq = seq;
  }

  /** Resolves once every connected sidecar has an uplink open that takes request.done, or after `ms`. */
  requestsFlowing(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#flowChanged.delete(check);
        resolve();
      };
      const check = () => {
        if (this.all().every((s) => !s.connected || (s.uplink.open && s.uplink.requests))) done();
      };
      const timer = setTimeout(done, ms);
      this.#flowChanged.add(check);
      check();
    });
  }

  #flowsChanged(): void {
    for (const check of [...this.#flowChanged]) check();
  }
}
