// A watch on a prefix of an etcd store that loses nothing and repeats nothing: it lists the prefix at a
// revision and watches from the next one; after a broken stream it resumes where the last event it
// applied left off (etcd3 would resume after the revision etcd had reached, which can skip events still
// on their way); when etcd has compacted past that point it lists again and reports the differences;
// an event no newer than what it already applied (etcd 3.4.23 can send one twice) is dropped.
import type { IKeyValue, IWatchResponse, Namespace, Watcher } from 'etcd3';
import type { StoreChange } from './store.ts';

const RESYNC_BACKOFF_MS = [100, 250, 500, 1_000, 2_000];

export class PrefixWatch {
  readonly #ns: Namespace;
  readonly #prefix: string;
  readonly #onChange: (change: StoreChange) => void;
  /** The keys present as far as this watch has applied, with the revision of their last change. */
  #present = new Map<string, bigint>();
  /** The highest revision applied. */
  #applied = 0n;
  /** Where a new watch stream starts: every event below it has been applied. */
  #resumeAt = 1n;
  #watcher: Watcher | undefined;
  #stopped = false;

  constructor(ns: Namespace, prefix: string, onChange: (change: StoreChange) => void) {
    this.#ns = ns;
    this.#prefix = prefix;
    this.#onChange = onChange;
  }

  /** Resolves once etcd has the watch: every change after this point is reported. */
  async start(): Promise<void> {
    await this.#list(false);
    await this.#attach();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    const watcher = this.#watcher;
    this.#watcher = undefined;
    await watcher?.cancel().catch(() => undefined);
  }

  /** Reads the prefix; with `report`, tells the differences from what was applied (after a compaction). */
  async #list(report: boolean): Promise<void> {
    const { header, kvs } = await this.#ns.getAll().prefix(this.#prefix).exec();
    const listed = new Map<string, { revision: bigint; value: string }>();
    for (const kv of kvs) listed.set(kv.key.toString(), { revision: BigInt(kv.mod_revision), value: kv.value.toString() });
    const before = this.#present;
    this.#present = new Map([...listed].map(([key, { revision }]) => [key, revision]));
    this.#applied = BigInt(header.revision);
    this.#resumeAt = this.#applied + 1n;
    if (!report) return;
    for (const [key, { revision, value }] of listed) if (before.get(key) !== revision) this.#onChange({ key, value });
    for (const key of before.keys()) if (!listed.has(key)) this.#onChange({ key, value: undefined });
  }

  async #attach(): Promise<void> {
    const watcher = this.#ns.watch().prefix(this.#prefix).startRevision(String(this.#resumeAt)).watcher();
    this.#watcher = watcher;
    watcher.on('data', (response: IWatchResponse) => this.#received(response));
    watcher.on('disconnected', () => {
      // etcd3 resumes from its own idea of the revision; ours counts only what was applied.
      watcher.request.start_revision = String(this.#resumeAt);
    });
    let created = false;
    // A cancelled watch (compaction past our revision, mostly) is dropped by etcd3: list again, watch again.
    watcher.on('error', () => {
      if (created && this.#watcher === watcher) void this.#resync();
    });
    await new Promise<void>((resolve, reject) => {
      watcher.once('connected', () => resolve());
      watcher.once('error', reject);
    });
    created = true;
  }

  #received(response: IWatchResponse): void {
    if (this.#stopped) return;
    for (const event of response.events) this.#apply(event.type === 'Put', event.kv);
    if (response.events.length > 0) {
      const last = BigInt(response.events[response.events.length - 1]!.kv.mod_revision);
      if (last + 1n > this.#resumeAt) this.#resumeAt = last + 1n;
    } else if (!response.created && !response.canceled) {
      // A progress notification: etcd has sent every event up to its revision.
      const reached = BigInt(response.header.revision) + 1n;
      if (reached > this.#resumeAt) this.#resumeAt = reached;
    }
  }

  #apply(put: boolean, kv: IKeyValue): void {
    const key = kv.key.toString();
    const revision = BigInt(kv.mod_revision);
    if (revision < this.#applied) return;
    if (put) {
      if (this.#present.get(key) === revision) return;
      this.#present.set(key, revision);
    } else if (!this.#present.delete(key)) {
      return;
    }
    this.#applied = revision;
    this.#onChange({ key, value: put ? kv.value.toString() : undefined });
  }

  async #resync(): Promise<void> {
    for (let attempt = 0; !this.#stopped; attempt++) {
      try {
        await this.#list(true);
        if (this.#stopped) return;
        await this.#attach();
        return;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, RESYNC_BACKOFF_MS[Math.min(attempt, RESYNC_BACKOFF_MS.length - 1)]));
      }
    }
  }
}
