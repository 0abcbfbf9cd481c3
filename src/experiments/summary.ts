// The plain-text summary a run prints at its end (and keeps as summary.txt).
import type { Journal } from './journal.ts';
import { describeLoad, isSample, loadFigures } from './load.ts';
import { availability, type Recording } from './verdicts.ts';

export function summarise(journal: Journal, dir: string, recording: Recording): string {
  const load = journal.load ? loadFigures(recording.load, journal.load) : undefined;
  const lines = [
    '',
    `game day ${journal.experiment}: ${journal.outcome?.toUpperCase()}${journal.reason ? ` — ${journal.reason}` : ''}`,
    `  seed ${journal.seed}; ${recording.events.length} events recorded`,
    `  load: ${load ? `${describeLoad(load)}; availability ${availability(recording.load.filter(isSample)).toFixed(2)} % of ${load.ok + load.failed} samples` : 'none sent'}`,
    `  faults: ${journal.faults.map((f) => `${f.id} ${f.injectedAt ? `${f.injectedAt.slice(11, 23)}–${f.removedAt?.slice(11, 23) ?? '?'}` : 'not injected'}`).join('; ')}`,
    `  rollback: ${journal.rollback ? (journal.rollback.verified ? 'verified' : 'NOT verified') : 'none'}`,
    '  hypotheses:',
    ...journal.verdicts.map((v) => `    ${v.outcome.toUpperCase().padEnd(12)} [${v.window}] ${v.hypothesis}: ${v.measured} (objective ${v.objective}, ${v.samples} samples)`),
    `  recording: ${dir}`,
    '',
  ];
  return lines.join('\n');
}

