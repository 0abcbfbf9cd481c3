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
  constructor(problems: readonly ConfigProblem[]) {
    super(ErrorCode.ConfigInvalid, formatProblems(problems));
    this.problems = problems;
  }
}

export function formatProblems(problems: readonly ConfigProblem[]): string {
  const lines = problems.map((p) => `${p.file}:${p.line}:${p.column} ${p.field || '(top level)'}: ${p.message}`);
  return `${ErrorCode.ConfigInvalid}: ${problems.length} problem${problems.length === 1 ? '' : 's'}\n  ${lines.join('\n  ')}`;
}

export function fieldPath(path: readonly PropertyKey[]): string {
  return path
    .map((key, i) => (typeof key === 'number' ? `[${key}]` : `${i === 0 ? '' : '.'}${String(key)}`))
    .join('');
}
