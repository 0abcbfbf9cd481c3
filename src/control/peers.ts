// The other control planes sharing this one's store. Each replica keeps a leased key
// `replicas/<host-port>` (its URL) while it runs; a replica that dies leaves the list with its lease.
// What one replica must tell about the whole mesh — the emergency stop's verification (stop.ts) —
// asks the others what their attached sidecars said, over their APIs (with the admin token every
// replica holds, trusting the mesh CA their `--tls auto` certificates come from).
import { silentLogger, type Logger } from '../telemetry/log.ts';
import type { SidecarView } from './sidecar-views.ts';
import type { Lease, Store } from './store.ts';
import { controlRequest } from '../http/control-transport.ts';

const PREFIX = 'replicas/';
const TTL_MS = 10_000;
const RENEW_MS = 3_000;
const ASK_TIMEOUT_MS = 2_000;

export interface PeerSidecars {
  readonly url: string;
  /** Its sidecars as it sees them; undefined when it did not answer (with why). */
  readonly sidecars: readonly SidecarView[] | undefined;
  readonly version?: string;
  readonly error?: string;
}

export class Peers {
  readonly #store: Store;
  readonly #self: string;
  readonly #token: string;
  readonly #ca: string | undefined;
  readonly #log: Logger;
  #lease: Lease | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  private constructor(store: Store, self: string, token: string, ca: string | undefined, log: Logger) {
    this.#store = store;
    this.#self = self;
    this.#token = token;
    this.#ca = ca;
    this.#log = log;
  }

  /** Joins the list (and stays on it while it runs). `ca`: the PEM the other replicas' API certificates chain to, if any. */
  static async join(store: Store, self: string, token: string, ca?: string, log: Logger = silentLogger): Promise<Peers> {
    const peers = new Peers(store, self, token, ca, log);
    await peers.#register();
    peers.#timer = setInterval(() => void peers.#renew(), RENEW_MS);
    peers.#timer.unref();
    return peers;
  }

  /** The other replicas' URLs. */
  async others(): Promise<string[]> {
    const urls = [...(await this.#store.entries(PREFIX)).values()].map((v) => (JSON.parse(v) as { url: string }).url);
    return [...new Set(urls)].filter((u) => u !== this.#self).sort();
  }

  /** What each other replica's sidecars said (GET /sidecars on it). */
  async sidecars(): Promise<PeerSidecars[]> {
    return Promise.all((await this.others()).map(async (url): Promise<PeerSidecars> => {
      try {
        const response = await controlRequest(`${url}/sidecars`, { headers: { authorization: `Bearer ${this.#token}` }, signal: AbortSignal.timeout(ASK_TIMEOUT_MS) }, this.#ca);
        if (response.statusCode !== 200) {
          await response.body.dump();
          return { url, sidecars: undefined, error: `answered ${response.statusCode}` };
        }
        const body = (await response.body.json()) as { version: string; sidecars: SidecarView[] };
        return { url, sidecars: body.sidecars, version: body.version };
      } catch (error) {
        return { url, sidecars: undefined, error: (error as Error).message };
      }
    }));
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    if (this.#lease) await this.#store.revoke(this.#lease.id).catch(() => undefined);
  }

  async #register(): Promise<void> {
    this.#lease = await this.#store.grant(TTL_MS);
    await this.#store.putLeased(`${PREFIX}${keyOf(this.#self)}`, JSON.stringify({ url: this.#self }), this.#lease);
  }

  async #renew(): Promise<void> {
    if (this.#closed) return;
    try {
      if (!this.#lease || !(await this.#store.renew(this.#lease.id))) await this.#register();
    } catch (error) {
      this.#log.warn({ error: (error as Error).message }, 'could not renew this control plane on the list of replicas');
    }
  }
}

/** A store key segment for a URL: `https://10.213.0.1:15100` → `https-10.213.0.1-15100`. */
function keyOf(url: string): string {
  return url.toLowerCase().replace(/[^a-z0-9.]+/g, '-').replace(/^-+|-+$/g, '');
}
