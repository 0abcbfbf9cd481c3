// A joined sidecar's registration: its instance becomes an endpoint of its service for every other
// sidecar while it renews the lease (at a third of its TTL, so two renewals may fail before it ends);
// a renewal the control plane no longer knows (the lease ended: a long partition, a store that lost
// it) registers again; a clean stop deregisters at once. Replicas are tried in turn.
import type { RegisteredInstance } from '../config/snapshot.ts';
import { silentLogger, type Logger } from '../telemetry/log.ts';
import type { InstanceRecord } from './instance-registry.ts';
import { controlRequest, type ControlResponse } from '../http/control-transport.ts';

export interface RegistrationOptions {
  readonly urls: readonly string[];
  readonly token: string;
  /** The CA bundle its https:// URLs are trusted through (--control-ca). */
  readonly ca?: string;
  readonly instance: RegisteredInstance;
  readonly ttlMs: number;
  readonly log?: Logger;
}

export class Registration {
  readonly #options: RegistrationOptions;
  readonly #log: Logger;
  #current = 0;
  #lease: string | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  /** Renewals and registrations that failed in a row (every replica unreachable): logged once each time it starts. */
  #failing = false;

  private constructor(options: RegistrationOptions) {
    this.#options = options;
    this.#log = (options.log ?? silentLogger).child({ instance: options.instance.name });
  }

  /** Registers (throws when no replica accepts it: the sidecar then does not start) and keeps renewing. */
  static async start(options: RegistrationOptions): Promise<Registration> {
    const registration = new Registration(options);
    await registration.#register();
    registration.#schedule();
    return registration;
  }

  get lease(): string | undefined {
    return this.#lease;
  }

  /** Deregisters: the instance leaves every sidecar's endpoints now, not when its lease would end. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    await this.#call('DELETE', `/v1/instances/${this.#options.instance.name}`).catch((error: Error) => this.#log.warn({ error: error.message }, 'could not deregister; the lease will end it'));
  }

  #schedule(): void {
    if (this.#closed) return;
    this.#timer = setTimeout(() => void this.#renew().finally(() => this.#schedule()), Math.max(200, this.#options.ttlMs / 3)).unref();
  }

  async #register(): Promise<void> {
    const { instance, ttlMs } = this.#options;
    const response = await this.#call('PUT', `/v1/instances/${instance.name}`, { service: instance.service, address: instance.address, labels: instance.labels, ttl: `${ttlMs}ms` });
    const body = (await response.body.json()) as Partial<InstanceRecord> & { error?: string };
    if (response.statusCode !== 200 || !body.lease) throw new Error(`registration of ${instance.name} refused (${response.statusCode}): ${body.error ?? 'no lease in the answer'}`);
    this.#lease = body.lease.id;
    this.#log.info({ service: instance.service, address: instance.address, ttlMs }, 'registered');
  }

  async #renew(): Promise<void> {
    try {
      const response = await this.#call('POST', `/v1/instances/${this.#options.instance.name}/renew`, { lease: this.#lease });
      await response.body.dump();
      if (response.statusCode === 404) {
        this.#log.warn('registration ended (lease expired): registering again');
        await this.#register();
      } else if (response.statusCode !== 204) {
        throw new Error(`renewal answered ${response.statusCode}`);
      }
      if (this.#failing) this.#log.info('registration renewed again');
      this.#failing = false;
    } catch (error) {
      if (!this.#failing) this.#log.warn({ error: (error as Error).message }, 'could not renew the registration; retrying');
      this.#failing = true;
    }
  }

  /** A call to the replica in use; on a network error, the same call to the next one, until each was tried. */
  async #call(method: 'PUT' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<ControlResponse> {
    const { urls, token, ca } = this.#options;
    let last: unknown;
    for (let tried = 0; tried < urls.length; tried++) {
      const url = urls[this.#current]!;
      try {
        return await controlRequest(`${url}${path}`, {
          method,
          headers: { authorization: `Bearer ${token}`, ...(body !== undefined && { 'content-type': 'application/json' }) },
          ...(body !== undefined && { body: JSON.stringify(body) }),
          headersTimeout: 5_000,
          bodyTimeout: 5_000,
        }, ca);
      } catch (error) {
        last = error;
        this.#current = (this.#current + 1) % urls.length;
      }
    }
    throw last instanceof Error ? last : new Error(String(last));
  }
}
