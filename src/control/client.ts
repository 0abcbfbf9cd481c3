// The sidecar's side of distribution: a watch stream (server-sent events) from the control plane,
// each snapshot parsed and checked here again, applied, persisted locally (so a restart without the
// control plane still works), and acknowledged — or refused, with the error acknowledged instead.
// Snapshots that arrive while one is being applied are not each applied: the latest is, and only it
// is acknowledged (a burst of changes costs one apply). Acks ride the sidecar's uplink when the
// control plane says it takes them there (ackOver), else each is a POST /v1/ack. It asks for instance
// deltas: when only registered instances changed it is sent those, and rebuilds the state (checked
// against its version; a mismatch breaks the stream, and the next one starts with the whole state).
// When the stream breaks the sidecar keeps serving its last snapshot and reconnects with backoff.
import { parseConfig } from '../config/load.ts';
import type { SidecarConfig } from '../config/schema.ts';
import { compileSnapshot, type Snapshot } from '../config/snapshot.ts';
import { silentLogger, type Logger } from '../telemetry/log.ts';
import { DELTAS, DELTAS_HEADER, applyDelta, type DesiredState, type InstanceDelta } from './desired-state.ts';
import { ACKS_HEADER, type Ack } from './sidecar-roster.ts';
import { FileStore } from './store.ts';
import { ControlTlsError, controlRequest } from '../http/control-transport.ts';

export interface ControlClientOptions {
  /** The control plane's base URL, e.g. http://127.0.0.1:15100; or several replicas', tried in turn. */
  readonly url: string | readonly string[];
  readonly token: string;
  /** The CA bundle (PEM) its https:// URLs are trusted through (--control-ca); Node's default trust without. */
  readonly ca?: string;
  readonly sidecar: string;
  /** Where the last applied state is kept (a directory). */
  readonly stateDir: string;
  readonly log?: Logger;
  /** Backoff between reconnects: full jitter in [0, min(max, base × 2^n)). */
  readonly backoff?: { baseMs: number; maxMs: number };
  /** A sidecar joined with flags: its own entry, added to every snapshot (the file has none). */
  readonly self?: SidecarConfig & { readonly name: string };
}

export interface Received {
  readonly state: DesiredState;
  readonly snapshot: Snapshot;
}

/** What applying a state did, reported up with the ack: the runtime faults it removed, and those it holds now. */
export interface Applied {
  readonly removed: readonly string[];
  readonly faults?: readonly string[];
}

/** Applies a received state; throws to refuse it (the error is acknowledged). */
export type Apply = (received: Received) => Applied | void;

const STATE_KEY = 'state.json';

export class ControlClient {
  readonly #options: ControlClientOptions;
  readonly #store: FileStore;
  readonly #log: Logger;
  #apply: Apply | undefined;
  #applied: string | undefined;
  #closed = false;
  #abort: AbortController | undefined;
  #failures = 0;
  #connected = false;
  #loop: Promise<void> | undefined;
  #first: ((received: Received) => void) | undefined;
  /** Ends start() when the control plane refuses this sidecar's token (401/403): it says why, and waiting will not help. */
  #refused: ((error: Error) => void) | undefined;
  /** A state that came before anyone could apply it (between start() and onState()). */
  #pending: DesiredState | undefined;
  readonly #urls: readonly string[];
  /** The replica in use: the next one is tried when its stream breaks. */
  #current = 0;
  /** A stream was opened since the last failure. */
  #streamed = false;
  #collect: ((requests: boolean) => void) | undefined;
  /** What the control plane last said it wants (request.done or not), kept for an onCollect that comes later. */
  #wantsRequests: boolean | undefined;
  /** Where acks go instead of a request each, when the control plane in use takes them there. */
  #ackSink: ((ack: Ack) => void) | undefined;
  /** The control plane of the open watch stream takes acks on the uplink. */
  #acksOnUplink = false;
  /** The latest snapshot received and not yet applied; the one being applied meanwhile. */
  #latest: DesiredState | undefined;
  #receiving: Promise<void> | undefined;

  constructor(options: ControlClientOptions) {
    this.#options = options;
    this.#urls = (typeof options.url === 'string' ? [options.url] : options.url).map((u) => u.replace(/\/$/, ''));
    if (this.#urls.length === 0) throw new Error('no control plane URL');
    // Replicas are equal: start at a random one, so that a fleet spreads over them.
    this.#current = Math.floor(Math.random() * this.#urls.length);
    this.#store = new FileStore(options.stateDir);
    this.#log = (options.log ?? silentLogger).child({ control: this.#urls.join(',') });
  }

  /** The control plane replica in use now. */
  get url(): string {
    return this.#urls[this.#current]!;
  }

  /** The next replica (after a failure of this one). */
  failover(): string {
    this.#current = (this.#current + 1) % this.#urls.length;
    return this.url;
  }

  get connected(): boolean {
    return this.#connected;
  }

  /** The version last applied (from the control plane or the local copy). */
  get version(): string | undefined {
    return this.#applied;
  }

  /**
   * The state to start from: the control plane's first snapshot when it answers within `waitMs`, else
   * the one kept locally from the last run; throws when there is neither. The watch keeps running.
   */
  async start(waitMs: number): Promise<Received> {
    const first = new Promise<Received>((resolve, reject) => {
      this.#first = resolve;
      this.#refused = reject;
    });
    this.#loop = this.#run();
    const timeout = new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), waitMs).unref());
    const received = await Promise.race([first, timeout]);
    if (received) return received;
    const kept = await this.#store.get(STATE_KEY);
    if (!kept) throw new Error(`the control plane at ${this.#urls.join(', ')} did not answer within ${waitMs} ms and no state is kept in ${this.#options.stateDir}`);
    const local = this.#parse(JSON.parse(kept) as DesiredState, 'local copy');
    this.#log.warn({ version: local.state.version }, 'control plane unreachable: starting from the kept snapshot');
    this.#applied = local.state.version;
    this.#first = undefined;
    this.#refused = undefined;
    return local;
  }

  /** What the control plane wants of this sidecar's events: request.done too (someone reads them), or decisions only. */
  onCollect(collect: (requests: boolean) => void): void {
    this.#collect = collect;
    if (this.#wantsRequests !== undefined) collect(this.#wantsRequests);
  }

  /**
   * Acks go to `sink` (the uplink) from now on, whenever the control plane in use says it takes them
   * there; the sink keeps the latest and sends it again on each new uplink, so none is lost between two.
   */
  ackOver(sink: (ack: Ack) => void): void {
    this.#ackSink = sink;
  }

  /** From now on, every new snapshot goes to `apply` (after the first one, which start() returned). */
  onState(apply: Apply): void {
    this.#apply = apply;
    const pending = this.#pending;
    this.#pending = undefined;
    if (pending) this.#take(pending);
  }

  /** Says this sidecar leaves for good (a clean stop), after close(): best effort, the replica in use only. */
  async leave(): Promise<void> {
    try {
      const response = await controlRequest(`${this.url}/v1/leave`, {
        method: 'POST',
        headers: { authorization: `Bearer ${this.#options.token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ sidecar: this.#options.sidecar }),
        headersTimeout: 2_000,
        bodyTimeout: 2_000,
      }, this.#options.ca);
      await response.body.dump();
    } catch (error) {
      this.#log.debug({ error: (error as Error).message }, 'could not say it leaves');
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#abort?.abort();
    await this.#loop;
    await this.#receiving;
  }

  async #run(): Promise<void> {
    const { baseMs, maxMs } = this.#options.backoff ?? { baseMs: 100, maxMs: 5_000 };
    /** Replicas that failed in a row since the last good stream: another is tried at once, until all were. */
    let failedInRow = 0;
    while (!this.#closed) {
      try {
        await this.#watch();
      } catch (error) {
        if (this.#closed) break;
        // Refused, or not to be spoken to as given (its certificate, the scheme): waiting will not help.
        if ((error instanceof WatchRefused || error instanceof ControlTlsError) && this.#first) this.#refused?.(error);
        this.#log.warn({ error: (error as Error).message, control: this.url }, 'watch stream lost; serving the last snapshot');
      }
      this.#connected = false;
      if (this.#closed) break;
      if (this.#streamed) failedInRow = 0;
      this.#streamed = false;
      failedInRow++;
      this.failover();
      if (failedInRow % this.#urls.length !== 0) continue;
      const wait = Math.random() * Math.min(maxMs, baseMs * 2 ** Math.min(this.#failures++, 16));
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }

  async #watch(): Promise<void> {
    this.#abort = new AbortController();
    const response = await controlRequest(`${this.url}/v1/watch?sidecar=${encodeURIComponent(this.#options.sidecar)}&deltas=${DELTAS}`, {
      headers: { authorization: `Bearer ${this.#options.token}`, accept: 'text/event-stream' },
      signal: this.#abort.signal,
      // The control plane sends a heartbeat every 15 s: silence for 45 s means the connection is dead.
      bodyTimeout: 45_000,
      headersTimeout: 10_000,
    }, this.#options.ca);
    if (response.statusCode !== 200) {
      const text = await response.body.text();
      if (response.statusCode === 401 || response.statusCode === 403) throw new WatchRefused(response.statusCode, text);
      throw new Error(`watch answered ${response.statusCode}: ${text.slice(0, 200)}`);
    }
    this.#connected = true;
    this.#streamed = true;
    this.#acksOnUplink = response.headers[ACKS_HEADER] === 'uplink';
    this.#failures = 0;
    /** The last whole state this stream sent or a delta made: what its next delta applies to. */
    let held: DesiredState | undefined;
    let buffer = '';
    for await (const chunk of response.body) {
      buffer += String(chunk);
      let end: number;
      while ((end = buffer.indexOf('\n\n')) !== -1) {
        const message = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = message.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
        if (message.includes('event: snapshot') && data) this.#take((held = JSON.parse(data) as DesiredState));
        else if (message.includes('event: delta') && data) {
          if (!held || response.headers[DELTAS_HEADER] !== DELTAS) throw new Error('the control plane sent a delta before any state, or unasked');
          this.#take((held = applyDelta(held, JSON.parse(data) as InstanceDelta)));
        } else if (message.includes('event: collect') && data) {
          this.#wantsRequests = (JSON.parse(data) as { requests: boolean }).requests;
          this.#collect?.(this.#wantsRequests);
        }
      }
    }
    throw new Error('the control plane closed the watch stream');
  }

  /** A snapshot came: applied now, or after the one being applied — unless a newer one comes first. */
  #take(state: DesiredState): void {
    this.#latest = state;
    this.#receiving ??= (async () => {
      try {
        for (let next = this.#latest; next; next = this.#latest) {
          this.#latest = undefined;
          await this.#receive(next);
        }
      } finally {
        this.#receiving = undefined;
      }
    })();
  }

  async #receive(state: DesiredState): Promise<void> {
    if (state.version === this.#applied) return this.#ack(state.version, null);
    let received: Received;
    let applied: Applied | void = undefined;
    try {
      received = this.#parse(state, `control plane version ${state.version}`);
      if (this.#first) {
        this.#first(received);
        this.#first = undefined;
      } else if (this.#apply) {
        applied = this.#apply(received);
      } else {
        this.#pending = state;
        return;
      }
    } catch (error) {
      const message = (error as Error).message;
      this.#log.error({ version: state.version, error: message }, 'snapshot refused; the one in force stays');
      return this.#ack(state.version, message);
    }
    this.#applied = state.version;
    await this.#store.put(STATE_KEY, JSON.stringify(state)).catch((error: Error) => this.#log.error({ error: error.message }, 'could not keep the snapshot locally'));
    await this.#ack(state.version, null, applied?.removed, applied?.faults);
  }

  #parse(state: DesiredState, source: string): Received {
    return { state, snapshot: compileSnapshot(parseConfig(state.config, source), source, { instances: state.instances ?? [], ...(this.#options.self && { self: this.#options.self }) }) };
  }

  async #ack(version: string, error: string | null, removed: readonly string[] = [], faults?: readonly string[]): Promise<void> {
    if (this.#ackSink && this.#acksOnUplink) return this.#ackSink({ version, error, removed, ...(faults && { faults }) });
    try {
      const response = await controlRequest(`${this.url}/v1/ack`, {
        method: 'POST',
        headers: { authorization: `Bearer ${this.#options.token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ sidecar: this.#options.sidecar, version, error, removed, ...(faults && { faults }) }),
      }, this.#options.ca);
      await response.body.dump();
    } catch (failure) {
      this.#log.warn({ error: (failure as Error).message }, 'could not acknowledge');
    }
  }
}

/** The control plane refused this sidecar's token (revoked, expired, another service's): its reason, as it gave it. */
class WatchRefused extends Error {
  constructor(status: number, body: string) {
    let reason = body.slice(0, 300);
    try {
      reason = String((JSON.parse(body) as { error?: unknown }).error ?? reason);
    } catch {
      // Not JSON: the body as it came.
    }
    super(`the control plane refused this sidecar (${status}): ${reason}`);
    this.name = 'WatchRefused';
  }
}
