// What the game-day runner asks of a running mesh: the control plane's API (config, sidecars and the
// faults each says it holds, faults, the merged event stream with every sidecar's events and metric
// samples, the emergency halt) with its bearer token. Nothing of it reads a sidecar's admin listener:
// the sidecars may be on other hosts.
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { request } from 'undici';
import { parseConfig } from '../config/load.ts';
import { compileSnapshot, type Snapshot } from '../config/snapshot.ts';
import type { FaultConfig } from '../faults/schema.ts';
import { readEventStream } from '../telemetry/event-stream.ts';

export interface SidecarView {
  name: string;
  connected: boolean;
  version: string | null;
  health: string;
  admin: string | null;
  /** The runtime faults it holds, as its last ack said; null before it said. */
  faults?: string[] | null;
}

/** What the control plane answers an emergency stop (its StopReport, with who and why). */
export interface HaltReport {
  deleted: string[];
  verified: boolean;
  sidecars: { name: string; removed: string[]; remaining: string[] | null; problem: string | null }[];
  by: string;
  reason: string;
}

export class MeshClient {
  readonly url: string;
  readonly #token: string;

  constructor(url: string, token: string) {
    this.url = url.replace(/\/$/, '');
    this.#token = token;
  }

  async #call(method: string, path: string, body?: string, headers: Record<string, string> = {}): Promise<{ status: number; text: string }> {
    const response = await request(`${this.url}${path}`, {
      method: method as 'GET',
      headers: { ...headers, authorization: `Bearer ${this.#token}`, ...(body !== undefined && { 'content-type': 'application/json' }) },
      ...(body !== undefined && { body }),
      signal: AbortSignal.timeout(10_000),
    });
    return { status: response.statusCode, text: await response.body.text() };
  }

  async #json<T>(method: string, path: string, body?: string, headers?: Record<string, string>): Promise<T> {
    const { status, text } = await this.#call(method, path, body, headers);
    if (status >= 400) throw new Error(`${method} ${path} answered ${status}: ${text.slice(0, 300)}`);
    return (text ? JSON.parse(text) : {}) as T;
  }

  /** The config in force, compiled and as text, and its version. */
  async snapshot(): Promise<{ snapshot: Snapshot; text: string; version: string }> {
    const response = await request(`${this.url}/config`, { headers: { authorization: `Bearer ${this.#token}` }, signal: AbortSignal.timeout(10_000) });
    const text = await response.body.text();
    if (response.statusCode !== 200) throw new Error(`GET /config answered ${response.statusCode}: ${text.slice(0, 300)}`);
    return { snapshot: compileSnapshot(parseConfig(text, `${this.url}/config`), `${this.url}/config`), text, version: String(response.headers['x-faultline-version']) };
  }

  async sidecars(): Promise<{ version: string; sidecars: SidecarView[] }> {
    return this.#json('GET', '/sidecars');
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

  async deleteFault(id: string): Promise<void> {
    const { status, text } = await this.#call('DELETE', `/faults/${id}`);
    if (status !== 204 && status !== 404) throw new Error(`DELETE /faults/${id} answered ${status}: ${text.slice(0, 300)}`);
  }

  /** The emergency stop: every runtime fault removed mesh-wide, and what each sidecar still holds after. */
  async halt(by: string, reason: string): Promise<HaltReport> {
    return this.#json('POST', '/halt', JSON.stringify({ by, reason }));
  }

  /**
   * Follows the merged event stream from now on: `ready` resolves once the control plane answers,
   * which it does when every sidecar's request.done flow into it (or the stream failed); `stop` ends it.
   */
  follow(onEvent: (event: Record<string, unknown>) => void, onError: (error: Error) => void): { ready: Promise<void>; stop: () => void } {
    const controller = new AbortController();
    let answered!: () => void;
    const ready = new Promise<void>((resolve) => (answered = resolve));
    void (async () => {
      try {
        const response = await request(`${this.url}/events`, { headers: { authorization: `Bearer ${this.#token}` }, signal: controller.signal, bodyTimeout: 0 });
        answered();
        for await (const event of readEventStream(response.body)) onEvent(event);
      } catch (error) {
        answered();
        if (!controller.signal.aborted) onError(error as Error);
      }
    })();
    return { ready, stop: () => controller.abort() };
  }
}

/** The client of an experiment's `target.control`: its token from target.tokenFile (relative to the experiment file) or FAULTLINE_TOKEN. */
export async function targetClient(target: { control: string; tokenFile?: string | undefined }, experimentFile: string): Promise<MeshClient> {
  const token = target.tokenFile ? (await readFile(resolve(dirname(experimentFile), target.tokenFile), 'utf8')).trim() : (process.env.FAULTLINE_TOKEN ?? '').trim();
  if (!token) throw new Error('the target control plane needs a token: target.tokenFile or FAULTLINE_TOKEN');
  return new MeshClient(target.control, token);
}


