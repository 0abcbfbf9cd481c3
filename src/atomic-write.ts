// Writing a file so that a crash leaves the old content or the new, never half of it: the control
// plane's store, the scheduler's state, a run's journal and a sidecar's private key all write this way.
import { randomBytes } from 'node:crypto';
import { open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/**
 * A temporary file in the same directory (named `.NAME.RANDOM.tmp`), created with `mode` so that a key
 * is never readable by others, not even for an instant; written and synced, renamed over `file`, and
 * the directory synced so that the rename itself survives a crash.
 */
export async function writeFileAtomic(file: string, value: string, mode = 0o600): Promise<void> {
  const temp = join(dirname(file), `.${basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await open(temp, 'wx', mode);
  try {
    try {
      await handle.chmod(mode); // in case the umask took away the owner's bits
      await handle.writeFile(value);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, file);
  } catch (error) {
    await unlink(temp).catch(() => {});
    throw error;
  }
  await syncDirectory(dirname(file));
}

/** Makes a rename in `dir` durable; best effort (not every platform can open a directory). */
async function syncDirectory(dir: string): Promise<void> {
  try {
    const handle = await open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // the file is written either way
  }
}
