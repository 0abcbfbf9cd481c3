// Lease renewals on etcd over one keepalive stream, shared: etcd answers each {ID} sent on it with
// {ID, TTL}, so every renewal of every lease (a fleet's registrations renew several times a second)
// is one message on an open stream, not a gRPC stream opened and closed for each. A stream that
// breaks, or leaves a renewal unanswered past its deadline (a member gone quiet), is dropped and fails
// the renewals waiting on it: the caller tries again, on a new stream (maybe to another member).
import type { LeaseClient } from 'etcd3';

type KeepAliveStream = Awaited<ReturnType<LeaseClient['leaseKeepAlive']>>;

interface Waiter {
  resolve(alive: boolean): void;
  reject(error: Error): void;
}

export class LeaseKeepAlive {
  readonly #leases: LeaseClient;
  #stream: Promise<KeepAliveStream> | undefined;
  /** Renewals sent and not yet answered, by lease id, in the order sent. */
  #waiting = new Map<string, Waiter[]>();

  constructor(leases: LeaseClient) {
    this.#leases = leases;
  }

  /** Renews `leaseId` once: true when it lives on, false when it had ended; throws when no answer came by `deadline`. */
  async renew(leaseId: string, deadline: number): Promise<boolean> {
    const opened = (this.#stream ??= this.#open());
    const stream = await opened;
    return new Promise<boolean>((resolve, reject) => {
      const waiters = this.#waiting.get(leaseId) ?? [];
      this.#waiting.set(leaseId, waiters);
      const timer = setTimeout(() => this.#drop(opened, new Error(`no answer to the keepalive of lease ${leaseId} in time`)), Math.max(0, deadline - Date.now()));
      const waiter: Waiter = {
        resolve: (alive) => {
          clearTimeout(timer);
          resolve(alive);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      waiters.push(waiter);
      stream.write({ ID: leaseId });
    });
  }

  /** Ends the stream (the store closes). */
  close(): void {
    void this.#stream?.then((stream) => stream.end(), () => undefined);
    this.#stream = undefined;
  }

  /** Fails every renewal waiting on `opened` and drops it, if it is still the stream in use. */
  #drop(opened: Promise<KeepAliveStream>, error: Error): void {
    if (this.#stream !== opened) return;
    this.#stream = undefined;
    void opened.then((stream) => stream.end(), () => undefined);
    const waiting = this.#waiting;
    this.#waiting = new Map();
    for (const waiters of waiting.values()) for (const waiter of waiters) waiter.reject(error);
  }

  async #open(): Promise<KeepAliveStream> {
    const stream = await this.#leases.leaseKeepAlive().catch((error: unknown) => {
      this.#stream = undefined;
      throw error;
    });
    const opened = this.#stream!;
    stream.on('data', (response) => {
      const id = String(response.ID);
      const waiters = this.#waiting.get(id);
      const waiter = waiters?.shift();
      if (waiters?.length === 0) this.#waiting.delete(id);
      waiter?.resolve(Number(response.TTL) > 0);
    });
    stream.on('error', (error: Error) => this.#drop(opened, error));
    stream.on('end', () => this.#drop(opened, new Error('the keepalive stream ended')));
    return stream;
  }
}
