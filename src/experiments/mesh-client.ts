// What the game-day runner asks of a running mesh: the control plane's API (config, sidecars and the
// faults each says it holds, faults, the merged event stream with every sidecar's events and metric
// samples, the emergency halt) with its bearer token. Nothing of it reads a sidecar's admin listener:
// the sidecars may be on other hosts. Given several replicas of the control plane (one store), calls
// fail over between them, and what a replica knows only of its own sidecars (their list, their events)
// is asked of every one and merged.
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { GameDayHead } from '../control/heads.ts';
import { parseConfig } from '../config/load.ts';
import { compileSnapshot, type RegisteredInstance, type Snapshot } from '../config/snapshot.ts';
import type { FaultConfig } from '../faults/schema.ts';
import { readEventStream } from '../telemetry/event-stream.ts';
import { controlRequest, readControlCa } from '../http/control-transport.ts';
import { EventMerge } from './event-merge.ts';

export interface SidecarView {
  name: string;
  connected: boolean;
  version: string | null;
  health: string;
  admin: string | null;
  /** The runtime faults it holds, as its last ack said; null before it said. */
  faults?: string[] | null;
  ackedAt?: string | null;
  connectedAt?: string | null;
  disconnectedAt?: string | null;
}

/** What the control plane answers an emergency stop (its StopReport, with who and why). */
export interface HaltReport {
  deleted: string[];
  verified: boolean;
  sidecars: { name: string; removed: string[]; remaining: string[] | null; problem: string | null }[];
  by: string;
  reason: string;
}

/** How long a halt waits for the sidecars attached to other replicas to say they hold no fault. */
const HALT_VERIFY_MS = 5_000;
/** How soon a replica whose event stream broke is followed again. */
const REFOLLOW_MS = 1_000;

export class MeshClient {
  /** The control plane, or its replicas (one store): calls go to the one that last answered, and fail over. */
  readonly urls: readonly string[];
  readonly #token: string;
  /** The CA bundle (PEM) its https:// URLs are trusted through; Node's default trust without. */
  readonly #ca: string | undefined;
  #current = 0;

  constructor(url: string | readonly string[], token: string, ca?: string) {
    this.urls = (typeof url === 'string' ? url.split(',') : url).map((u) => u.trim().replace(/\/$/, '')).filter(Boolean);
    if (this.urls.length === 0) throw new Error('no control plane URL');
    this.#token = token;
    this.#ca = ca;
  }

  /** The replica calls go to now. */
  get url(): string {
    return this.urls[this.#current]!;
  }

  async #callAt(url: string, method: string, path: string, body?: string, headers: Record<string, string> = {}): Promise<{ status: number; text: string; headers: Record<string, unknown> }> {
    const response = await controlRequest(`${url}${path}`, {
      method: method as 'GET',
      headers: { ...headers, authorization: `Bearer ${this.#token}`, ...(body !== undefined && { 'content-type': 'application/json' }) },
      ...(body !== undefined && { body }),
      signal: AbortSignal.timeout(10_000),
    }, this.#ca);
    return { status: response.statusCode, text: await response.body.text(), headers: response.headers };
  }

  /**
   * A call to the replica that answered last, else the next one, in turn: a network error (refused,
   * reset, timed out) moves on; an answer, whatever its status, is the answer (they share one store).
   */
  async #call(method: string, path: string, body?: string, headers?: Record<string, string>): Promise<{ status: number; text: string; headers: Record<string, unknown> }> {
    const errors: string[] = [];
    for (let i = 0; i < this.urls.length; i++) {
      const at = (this.#current + i) % this.urls.length;
      try {
        const answer = await this.#callAt(this.urls[at]!, method, path, body, headers);
        this.#current = at;
        return answer;
      } catch (error) {
        errors.push(`${this.urls[at]}: ${(error as Error).message}`);
      }
    }
    throw new Error(`${method} ${path}: no control plane answered (${errors.join('; ')})`);
  }

  async #json<T>(method: string, path: string, body?: string, headers?: Record<string, string>): Promise<T> {
    const { status, text } = await this.#call(method, path, body, headers);
    if (status >= 400) throw new Error(`${method} ${path} answered ${status}: ${text.slice(0, 300)}`);
    return (text ? JSON.parse(text) : {}) as T;
  }

  /** The config in force, compiled and as text, and its version. */
  async snapshot(): Promise<{ snapshot: Snapshot; text: string; version: string }> {
    const { status, text, headers } = await this.#call('GET', '/config');
    if (status !== 200) throw new Error(`GET /config answered ${status}: ${text.slice(0, 300)}`);
    // The instances that registered themselves are the mesh's too (the load may enter at one of them).
    const listed = await this.#call('GET', '/instances').catch(() => undefined);
    const instances = listed?.status === 200 ? (JSON.parse(listed.text) as { instances: RegisteredInstance[] }).instances : [];
    const source = `${this.url}/config`;
    return { snapshot: compileSnapshot(parseConfig(text, source), source, { instances }), text, version: String(headers['x-faultline-version']) };
  }

  /**
   * Every sidecar and what it last said. A replica knows only the sidecars attached to it, so with
   * several, each reachable one is asked and their lists merged: a sidecar's entry where it is
   * connected, else its latest; the version is the answering replica's (they make the same one).
   */
  async sidecars(): Promise<{ version: string; sidecars: SidecarView[] }> {
    if (this.urls.length === 1) return this.#json('GET', '/sidecars');
    const first = await this.#json<{ version: string; sidecars: SidecarView[] }>('GET', '/sidecars');
    const others = await Promise.all(
      this.urls.filter((u) => u !== this.url).map(async (url) => {
        const answer = await this.#callAt(url, 'GET', '/sidecars').catch(() => undefined);
        return answer?.status === 200 ? (JSON.parse(answer.text) as { sidecars: SidecarView[] }).sidecars : [];
      }),
    );
    const merged = new Map<string, SidecarView>();
    for (const s of [first.sidecars, ...others].flat()) {
      const known = merged.get(s.name);
      if (!known || (s.connected && !known.connected) || (s.connected === known.connected && lastHeard(s) > lastHeard(known))) merged.set(s.name, s);
    }
    return { version: first.version, sidecars: [...merged.values()].sort((a, b) => a.name.localeCompare(b.name)) };
  }

  async faults(): Promise<{ id: string; origin: string; spec: FaultConfig }[]> {
    return (await this.#json<{ faults: { id: string; origin: string; spec: FaultConfig }[] }>('GET', '/faults')).faults;
  }

  /**
   * Installs a runtime fault with a lease of `ttlMs`, or with `renew` renews it only if it is still
   * there (If-Match: *; 412 when it was removed); resolves with the desired-state version.
   */
  async putFault(spec: Record<string, unknown>, ttlMs: number, renew = false): Promise<string> {
    const body = { ...spec, ttl: `${Math.ceil(ttlMs)}ms` };
    return (await this.#json<{ version: string }>('PUT', `/faults/${String(spec.id)}`, JSON.stringify(body), renew ? { 'if-match': '*' } : {})).version;
  }

  /** Writes a game day's journal head (control/heads.ts); a 409 says the leader closed the run. */
  async putHead(head: GameDayHead): Promise<void> {
    const { status, text } = await this.#call('PUT', `/v1/gamedays/${head.id}`, JSON.stringify(head));
    if (status !== 204) throw new Error(`PUT /v1/gamedays/${head.id} answered ${status}: ${text.slice(0, 300)}`);
  }

  async deleteFault(id: string): Promise<void> {
    const { status, text } = await this.#call('DELETE', `/faults/${id}`);
    if (status !== 204 && status !== 404) throw new Error(`DELETE /faults/${id} answered ${status}: ${text.slice(0, 300)}`);
  }

  /**
   * The emergency stop: every runtime fault removed mesh-wide, and what each sidecar still holds after.
   * The replica that stops knows only its own sidecars; with several, the others' are checked from what
   * they acked on theirs (polled until none holds a runtime fault, for at most HALT_VERIFY_MS).
   */
  async halt(by: string, reason: string): Promise<HaltReport> {
    const report = await this.#json<HaltReport>('POST', '/halt', JSON.stringify({ by, reason }));
    if (this.urls.length === 1) return report;
    const deadline = Date.now() + HALT_VERIFY_MS;
    for (;;) {
      const { sidecars } = await this.sidecars();
      const checked = sidecars.map((s) => {
        const own = report.sidecars.find((r) => r.name === s.name);
        if (own && own.problem === null) return own;
        const remaining = s.faults ?? null;
        const problem = !s.connected ? 'disconnected from every replica: its runtime faults end with their leases, on its own clock'
          : remaining === null ? 'has not said which runtime faults it holds'
          : remaining.length > 0 ? `still holds ${remaining.join(', ')}`
          : null;
        return { name: s.name, removed: own?.removed ?? [], remaining, problem };
      });
      const verified = checked.every((s) => s.problem === null);
      if (verified || Date.now() > deadline) return { ...report, verified, sidecars: checked };
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /**
   * Follows the merged event stream from now on — every replica's at once, made one (EventMerge: a
   * sidecar that failed over replays its history to its new replica); a replica whose stream breaks is
   * followed again once it answers. `ready` resolves once every replica answered (each does when its
   * sidecars' request.done flow into it) or failed; `stop` ends it.
   */
  follow(onEvent: (event: Record<string, unknown>) => void, onError: (error: Error) => void): { ready: Promise<void>; stop: () => void } {
    const controller = new AbortController();
    const merge = new EventMerge(Date.now());
    const ready = Promise.all(this.urls.map((url) => this.#followOne(url, controller.signal, (event) => merge.admit(url, event) && onEvent(event), onError)));
    return { ready: ready.then(() => undefined), stop: () => controller.abort() };
  }

  /** One replica's /events, read until `signal` aborts: broken, it is read again (from then on) once it answers. */
  #followOne(url: string, signal: AbortSignal, onEvent: (event: Record<string, unknown>) => void, onError: (error: Error) => void): Promise<void> {
    let answered!: () => void;
    const ready = new Promise<void>((resolve) => (answered = resolve));
    void (async () => {
      let broken = false;
      while (!signal.aborted) {
        try {
          const response = await controlRequest(`${url}/events`, { headers: { authorization: `Bearer ${this.#token}` }, signal, bodyTimeout: 0 }, this.#ca);
          if (response.statusCode !== 200) throw new Error(`GET /events answered ${response.statusCode}: ${(await response.body.text()).slice(0, 300)}`);
          answered();
          broken = false;
          for await (const event of readEventStream(response.body)) onEvent(event);
          if (!signal.aborted) throw new Error('the event stream ended');
        } catch (error) {
          answered();
          if (signal.aborted) return;
          // Said once per outage, not on every attempt while the replica is down.
          if (!broken) onError(new Error(this.urls.length > 1 ? `${url}: ${(error as Error).message}` : (error as Error).message));
          broken = true;
        }
        await new Promise((resolve) => setTimeout(resolve, REFOLLOW_MS).unref());
      }
    })();
    return ready;
  }
}

/** When a replica last heard from a sidecar, as far as its entry says. */
function lastHeard(s: SidecarView): number {
  return Math.max(...[s.ackedAt, s.connectedAt, s.disconnectedAt].map((t) => (t ? Date.parse(t) : 0)));
}

/**
 * The client of an experiment's `target.control`: its token from target.tokenFile (relative to the
 * experiment file) or FAULTLINE_TOKEN; the CA its https:// URLs are trusted through from target.ca
 * (relative too) or FAULTLINE_CONTROL_CA.
 */
export async function targetClient(target: { control: string | readonly string[]; tokenFile?: string | undefined; ca?: string | undefined }, experimentFile: string): Promise<MeshClient> {
  const token = target.tokenFile ? (await readFile(resolve(dirname(experimentFile), target.tokenFile), 'utf8')).trim() : (process.env.FAULTLINE_TOKEN ?? '').trim();
  if (!token) throw new Error('the target control plane needs a token: target.tokenFile or FAULTLINE_TOKEN');
  const ca = target.ca !== undefined ? await readControlCa(resolve(dirname(experimentFile), target.ca), `${experimentFile}: target.ca`) : await readControlCa();
  return new MeshClient(target.control, token, ca);
}


