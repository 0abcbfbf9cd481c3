// A sidecar's identity, kept current: its private key (made here, saved owner-only, never sent), a
// workload certificate from the control plane's CA for the CSR, and renewal at 2/3 of each
// certificate's lifetime. Listeners read `current` for each new connection and are told on rotation,
// so a renewed certificate takes over without a failed request.
import { X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import { systemClock, type Clock } from '../clock.ts';
import { controlRequest, type ControlResponse } from '../http/control-transport.ts';
import { silentLogger, type Logger } from '../telemetry/log.ts';
import { spiffeId } from './spiffe.ts';
import { WorkloadKey, renewAt, type WorkloadIdentity } from './workload.ts';

export interface IdentityOptions {
  /** The control plane, or its replicas: each is asked in turn until one issues. */
  readonly url: string | readonly string[];
  readonly token: string;
  /** The CA bundle its https:// URLs are trusted through (--control-ca). */
  readonly ca?: string;
  readonly sidecar: string;
  readonly service: string;
  readonly trustDomain: string;
  readonly namespace: string;
  /** The key is kept here as key.pem (0600). */
  readonly stateDir: string;
  readonly log?: Logger;
  /** What renewal reads the time from and waits on; the system clock unless a test gives its own. */
  readonly clock?: RenewalClock;
}

/** The time and the timers renewal uses. */
export type RenewalClock = Pick<Clock, 'now' | 'after'>;

/** The system's, but a renewal timer does not keep the process alive. */
const systemRenewalClock: RenewalClock = {
  now: systemClock.now,
  after(ms, callback) {
    const timer = setTimeout(callback, ms).unref();
    return () => clearTimeout(timer);
  },
};

export interface CurrentIdentity extends WorkloadIdentity {
  readonly notBefore: Date;
  readonly serial: string;
  /** When this sidecar received it (the CA back-dates notBefore for clock skew). */
  readonly issuedAt: Date;
}

export class SidecarIdentity {
  readonly #options: IdentityOptions;
  readonly #key: WorkloadKey;
  readonly #log: Logger;
  readonly #clock: RenewalClock;
  #current: CurrentIdentity;
  #cancelTimer: (() => void) | undefined;
  readonly #listeners = new Set<(identity: CurrentIdentity) => void>();
  #closed = false;

  private constructor(options: IdentityOptions, key: WorkloadKey, current: CurrentIdentity) {
    this.#options = options;
    this.#key = key;
    this.#current = current;
    this.#log = (options.log ?? silentLogger).child({ identity: current.spiffeId });
    this.#clock = options.clock ?? systemRenewalClock;
    this.#schedule();
  }

  /** Makes (or reloads) the key, gets a first certificate, and keeps renewing it. */
  static async obtain(options: IdentityOptions): Promise<SidecarIdentity> {
    const file = join(options.stateDir, 'key.pem');
    let key: WorkloadKey;
    try {
      key = await WorkloadKey.load(file);
    } catch {
      key = await WorkloadKey.generate();
      await key.save(file);
    }
    return new SidecarIdentity(options, key, await issue(options, key, options.clock ?? systemRenewalClock));
  }

  get current(): CurrentIdentity {
    return this.#current;
  }

  /** Called with each renewed identity. */
  onRotate(listener: (identity: CurrentIdentity) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Renews now (what the timer does at 2/3 of the lifetime). */
  async renew(): Promise<CurrentIdentity> {
    const next = await issue(this.#options, this.#key, this.#clock);
    this.#current = next;
    this.#log.info({ serial: next.serial, notAfter: next.notAfter.toISOString() }, 'certificate renewed');
    for (const listener of this.#listeners) listener(next);
    this.#schedule();
    return next;
  }

  close(): void {
    this.#closed = true;
    this.#cancelTimer?.();
  }

  #schedule(): void {
    this.#cancelTimer?.();
    if (this.#closed) return;
    // 2/3 of the lifetime as this sidecar has it: from issue, not from the back-dated notBefore.
    const { issuedAt, notBefore, notAfter } = this.#current;
    const wait = Math.max(0, renewAt({ notBefore: new Date(Math.max(issuedAt.getTime(), notBefore.getTime())), notAfter }).getTime() - this.#clock.now());
    this.#cancelTimer = this.#clock.after(Math.min(wait, 2 ** 31 - 1), () => this.#attempt(RETRY_FIRST_MS));
  }

  /**
   * Renews; when that fails, tries again after `retryMs`, twice as long each time up to RETRY_MAX_MS,
   * until a renewal succeeds or the identity closes: the certificate in hand is still valid for a third
   * of its life, and a control plane that is down for a while must not leave it to lapse.
   */
  #attempt(retryMs: number): void {
    this.renew().catch((error: Error) => {
      if (this.#closed) return;
      this.#log.warn({ error: error.message, retryInMs: retryMs }, 'certificate renewal failed; retrying');
      this.#cancelTimer?.();
      this.#cancelTimer = this.#clock.after(retryMs, () => this.#attempt(Math.min(retryMs * 2, RETRY_MAX_MS)));
    });
  }
}

const RETRY_FIRST_MS = 1_000;
const RETRY_MAX_MS = 30_000;

async function issue(options: IdentityOptions, key: WorkloadKey, clock: RenewalClock): Promise<CurrentIdentity> {
  const csr = await key.csr(options.service, spiffeId(options.trustDomain, options.namespace, options.service));
  const urls = typeof options.url === 'string' ? [options.url] : options.url;
  let response: ControlResponse | undefined;
  for (const [i, url] of urls.entries()) {
    try {
      response = await controlRequest(`${url}/v1/identity`, {
        method: 'POST',
        headers: { authorization: `Bearer ${options.token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ sidecar: options.sidecar, csr, service: options.service }),
      }, options.ca);
      break;
    } catch (error) {
      if (i === urls.length - 1) throw error;
    }
  }
  if (!response) throw new Error('no control plane to ask for a certificate');
  const body = (await response.body.json()) as { certPem?: string; caPem?: string; spiffeId?: string; notAfter?: string; error?: string };
  if (response.statusCode !== 200 || !body.certPem || !body.caPem || !body.spiffeId) {
    throw new Error(`the control plane did not issue a certificate (${response.statusCode}): ${body.error ?? 'no certificate in the answer'}`);
  }
  const cert = new X509Certificate(body.certPem);
  return {
    keyPem: key.keyPem,
    certPem: body.certPem,
    caPem: body.caPem,
    spiffeId: body.spiffeId,
    notBefore: new Date(cert.validFrom),
    notAfter: new Date(cert.validTo),
    serial: cert.serialNumber,
    issuedAt: new Date(clock.now()),
  };
}
