// The scheduler's state — each experiment's last and next run, and the history — and where it is
// kept: a file (`faultline schedule`) or the control planes' store under the leadership
// (leader-scheduler.ts). Read back checked, so a damaged state is refused with where it is.
import { mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from '../atomic-write.ts';

const OUTCOMES = ['passed', 'failed', 'halted', 'inconclusive', 'error', 'skipped'] as const;

export interface RunRecord {
  name: string;
  scheduledFor: string;
  startedAt: string | null;
  finishedAt: string | null;
  outcome: (typeof OUTCOMES)[number];
  reason?: string;
}

export interface SchedulerState {
  experiments: Record<string, { lastRun: RunRecord | null; nextRun: string | null }>;
  history: RunRecord[];
}

/**
 * Where the state is kept: a file (`faultline schedule`: written atomically — temp file in the same
 * dir + fsync + rename), or the control planes' shared store under the leader's election
 * (leader-scheduler.ts), so that the next leader carries on from it.
 */
export interface StateKeeper {
  /** Where it is, for messages. */
  readonly where: string;
  /** The state as last written, or undefined when none was. */
  read(): Promise<string | undefined>;
  write(text: string): Promise<void>;
}

/** The state in a file. */
export function fileState(file: string): StateKeeper {
  return {
    where: `the scheduler state file ${file}`,
    async read() {
      try {
        return await readFile(file, 'utf8');
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw error;
      }
    },
    async write(text) {
      await mkdir(dirname(file), { recursive: true });
      await writeFileAtomic(file, text, 0o644);
    },
  };
}

const Timestamp = z.iso.datetime({ offset: true });
const StoredRecord = z.object({
  name: z.string(),
  scheduledFor: Timestamp,
  startedAt: Timestamp.nullable(),
  finishedAt: Timestamp.nullable(),
  outcome: z.enum(OUTCOMES),
  reason: z.string().optional(),
});
const StateFile = z.object({
  experiments: z.record(z.string(), z.object({ lastRun: StoredRecord.nullable(), nextRun: Timestamp.nullable() })),
  history: z.array(StoredRecord),
});

/** The state as kept, checked (a state that is not valid is refused rather than started over). */
export async function loadState(keeper: StateKeeper): Promise<SchedulerState> {
  const text = await keeper.read();
  if (text === undefined) return { experiments: {}, history: [] };
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new Error(`${keeper.where} is not JSON: ${(error as Error).message}`);
  }
  const parsed = StateFile.safeParse(json);
  if (!parsed.success) throw new Error(`${keeper.where} is not valid: ${z.prettifyError(parsed.error)}`);
  return parsed.data;
}
