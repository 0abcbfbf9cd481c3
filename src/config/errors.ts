// Config problems, each with file, line, column, field path and what was expected; all of a file at once.
import { FaultlineError, ErrorCode } from '../errors.ts';

export interface ConfigProblem {
  file: string;
  line: number;
  column: number;
  /** Field path as written in the file, e.g. `routes[0].destinations[1].weight`. */
  field: string;
  message: string;
}

export class ConfigError extends FaultlineError {
  readonly problems: readonly ConfigProblem[];
  /** Problems found beyond those listed (a file can have thousands; the first ones are listed). */
  readonly unlisted: number;
  constructor(problems: readonly ConfigProblem[], unlisted = 0) {
    super(ErrorCode.ConfigInvalid, formatProblems(problems, unlisted));
    this.problems = problems;
    this.unlisted = unlisted;
  }
}

export function formatProblems(problems: readonly ConfigProblem[], unlisted = 0): string {
  const lines = problems.map((p) => `${p.file}:${p.line}:${p.column} ${p.field || '(top level)'}: ${p.message}`);
  const total = problems.length + unlisted;
  const head = `${ErrorCode.ConfigInvalid}: ${total} problem${total === 1 ? '' : 's'}${unlisted > 0 ? ` (the first ${problems.length} listed)` : ''}`;
  return `${head}\n  ${lines.join('\n  ')}`;
}

export function fieldPath(path: readonly PropertyKey[]): string {
  return path
    .map((key, i) => (typeof key === 'number' ? `[${key}]` : `${i === 0 ? '' : '.'}${String(key)}`))
    .join('');
}
