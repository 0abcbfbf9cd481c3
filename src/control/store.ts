// Where the control plane keeps its desired state. Callers see a small key-value interface, so that an
// etcd-backed store can replace the file one without touching them. The file store writes atomically
// (atomic-write.ts): a crash leaves the old value or the new one, never half of one.
import { mkdir, readFile, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../atomic-write.ts';

export interface Store {
  get(key: string): Promise<string | undefined>;
  put(key: string, value: string): Promise<void>;
  delete(key: string): Promise<void>;
  /** Keys under a prefix ("faults/"), sorted. */
  list(prefix: string): Promise<string[]>;
}

/** Keys are paths of safe segments: lowercase letters, digits, "-", "." and "/" between them. */
const KEY = /^[a-z0-9][a-z0-9.-]*(\/[a-z0-9][a-z0-9.-]*)*$/;

export class FileStore implements Store {
  readonly #dir: string;

  constructor(dir: string) {
    this.#dir = dir;
  }

  async get(key: string): Promise<string | undefined> {
    try {
      return await readFile(this.#path(key), 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  async put(key: string, value: string): Promise<void> {
    const file = this.#path(key);
    await mkdir(file.slice(0, file.lastIndexOf('/')), { recursive: true, mode: 0o700 });
    await writeFileAtomic(file, value);
  }

  async delete(key: string): Promise<void> {
    await rm(this.#path(key), { force: true });
  }

  async list(prefix: string): Promise<string[]> {
    const dir = join(this.#dir, prefix);
    try {
      const names = await readdir(dir);
      return names.filter((n) => !n.endsWith('.tmp')).map((n) => `${prefix}${n}`).sort();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
  }

  #path(key: string): string {
    if (!KEY.test(key) || key.split('/').includes('..')) throw new Error(`not a valid store key: "${key}"`);
    return join(this.#dir, key);
  }
}
