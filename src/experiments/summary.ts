// The plain-text summary a run prints at its end (and keeps as summary.txt).
import { succeeded } from '../measures.ts';
import type { Journal } from './journal.ts';
import type { Experiment } from './spec.ts';
import { availability, type Recording } from './verdicts.ts';

export function summarise(journal: Journal, dir: string, recording: Recording, experiment: Experiment): string {
  const ok = recording.load.filter((r) => succeeded(r.status)).length;
  const lines = [
    '',
    `game day ${journal.experiment}: ${journal.outcome?.toUpperCase()}${journal.reason ? ` — ${journal.reason}` : ''}`,
    `  seed ${journal.seed}; ${recording.load.length} requests at ${experiment.load.rate}/s, ${ok} ok (${availability(recording.load).toFixed(2)} %); ${recording.events.length} events recorded`,
    `  faults: ${journal.faults.map((f) => `${f.id} ${f.injectedAt ? `${f.injectedAt.slice(11, 23)}–${f.removedAt?.slice(11, 23) ?? '?'}` : 'not injected'}`).join('; ')}`,
    `  rollback: ${journal.rollback ? (journal.rollback.verified ? 'verified' : 'NOT verified') : 'none'}`,
    '  hypotheses:',
    ...journal.verdicts.map((v) => `    ${v.outcome.toUpperCase().padEnd(12)} [${v.window}] ${v.hypothesis}: ${v.measured} (objective ${v.objective}, ${v.samples} samples)`),
    `  recording: ${dir}`,
    '',
  ];
  return lines.join('\n');
}

