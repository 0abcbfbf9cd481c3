// What a run leaves behind for whoever reads it later — the journal's shape, the outcome and the
// result — kept apart from the runner so that the analysis and the reports can read a run without it.
import type { LoadRun } from './load.ts';
import type { Verdict, Window } from './verdicts.ts';

export type RunOutcome = 'passed' | 'failed' | 'halted' | 'inconclusive' | 'error';
export const EXIT_CODES: Record<RunOutcome, number> = { passed: 0, failed: 1, halted: 3, inconclusive: 1, error: 4 };

export interface Journal {
  experiment: string;
  file: string;
  seed: number;
  status: 'running' | 'complete';
  outcome: RunOutcome | null;
  reason: string | null;
  startedAt: string;
  finishedAt: string | null;
  target: string;
  phases: { name: string; startedAt: string; endedAt: string | null; outcome: string | null; notes: string[] }[];
  faults: { id: string; step: number; injectedAt: string | null; removedAt: string | null; renewals: number; spec: Record<string, unknown> }[];
  halts: { at: string; reason: string }[];
  rollback: { at: string; removed: string[]; verified: boolean; remaining: Record<string, string[]> } | null;
  verdicts: Verdict[];
  /** The windows the verdicts were judged over (epoch ms), so that the analysis counts the same samples; absent in older runs. */
  windows?: Window[];
  /** How the load was made; null until it has ended (absent in older runs). */
  load?: LoadRun | null;
}

export interface RunResult {
  readonly outcome: RunOutcome;
  readonly exitCode: number;
  readonly dir: string;
  readonly journal: Journal;
}
