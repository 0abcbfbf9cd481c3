// Reloading a sidecar's config file: on demand (SIGHUP, `Sidecar.reload()`), and on every change of
// the file when watched. A bad file is refused and the snapshot in force stays.
import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import { loadConfigFile } from '../config/load.ts';
import { compileSnapshot, type Snapshot } from '../config/snapshot.ts';
import { describe } from '../errors.ts';
import type { EventBus } from '../telemetry/events.ts';
import type { Logger } from '../telemetry/log.ts';

export type ReloadResult = { ok: true; version: string; changed: boolean } | { ok: false; error: string };

/** What a reload reads and changes: the snapshot in force, and how a new one is put in force. */
export interface Reloadable {
  readonly snapshot: Snapshot;
  apply(snapshot: Snapshot): void;
}

export class ConfigReloader {
  readonly #file: string | undefined;
  readonly #target: Reloadable;
  readonly #events: EventBus;
  readonly #log: Logger;
  #reloading: Promise<ReloadResult> | undefined;
  #watcher: FSWatcher | undefined;

  constructor(file: string | undefined, target: Reloadable, events: EventBus, log: Logger) {
    this.#file = file;
    this.#target = target;
    this.#events = events;
    this.#log = log;
  }

  /** Re-reads the file; a reload asked for while one runs gets that one's result. */
  reload(): Promise<ReloadResult> {
    this.#reloading ??= this.#reload().finally(() => (this.#reloading = undefined));
    return this.#reloading;
  }

  /** Reloads whenever the file changes. */
  watch(): void {
    const file = this.#file;
    if (!file) return;
    let debounce: NodeJS.Timeout | undefined;
    // Watch the directory: editors and `mv` replace the file, which ends a watch on the file itself.
    this.#watcher = watch(dirname(file), (_event, name) => {
      if (name !== basename(file)) return;
      clearTimeout(debounce);
      debounce = setTimeout(() => void this.reload(), 100);
    });
    this.#watcher.unref();
  }

  close(): void {
    this.#watcher?.close();
  }

  async #reload(): Promise<ReloadResult> {
    const source = this.#file;
    if (!source) return { ok: false, error: 'this sidecar was not started from a config file' };
    try {
      const loaded = await loadConfigFile(source);
      const snapshot = compileSnapshot(loaded.config, source);
      if (snapshot.version === this.#target.snapshot.version) return { ok: true, version: snapshot.version, changed: false };
      this.#target.apply(snapshot);
      return { ok: true, version: snapshot.version, changed: true };
    } catch (error) {
      const message = error instanceof Error ? error.message : describe(error);
      this.#log.error({ source, error: message }, 'config refused; the snapshot in force stays');
      this.#events.emit('config.rejected', { source, error: message });
      return { ok: false, error: message };
    }
  }
}
