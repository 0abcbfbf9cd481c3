// `faultline lint`: a mesh file (and a recording of it, when given) → findings, suppressions applied.
import { readFile } from 'node:fs/promises';
import { parseConfig } from '../config/load.ts';
import { compileSnapshot } from '../config/snapshot.ts';
import { atLeast, SEVERITIES, type Finding, type Severity } from './findings.ts';
import { buildModel, type LintModel } from './model.ts';
import { readObservation } from './recording.ts';
import { RULE_CHECKS } from './rules/index.ts';

export interface LintResult {
  readonly file: string;
  readonly recording: string | undefined;
  /** Findings in force, by service, then severity, then rule. */
  readonly findings: readonly Finding[];
  /** Findings the mesh file's lint.ignore left alone, each with the reason given. */
  readonly suppressed: readonly { readonly finding: Finding; readonly reason: string }[];
}

export async function lintFile(file: string, options: { recording?: string } = {}): Promise<{ result: LintResult; model: LintModel }> {
  const text = await readFile(file, 'utf8');
  const config = parseConfig(text, file);
  const sidecars = compileSnapshot(config, file).sidecars;
  const observation = options.recording === undefined ? undefined : await readObservation(options.recording, new Map(sidecars.map((s) => [s.name, s.service])));
  const model = buildModel(config, text, file, observation);
  return { result: lint(model), model };
}

export function lint(model: LintModel): LintResult {
  const all = RULE_CHECKS.flatMap((rule) => rule.check(model));
  const findings: Finding[] = [];
  const suppressed: { finding: Finding; reason: string }[] = [];
  for (const finding of all) {
    const ignored = model.ignore.find((i) => i.rule === finding.rule && (i.service === undefined || i.service === finding.service) && (i.route === undefined || i.route === finding.route));
    if (ignored) suppressed.push({ finding, reason: ignored.reason });
    else findings.push(finding);
  }
  return { file: model.file, recording: model.recording?.dir, findings: findings.sort(byServiceSeverity), suppressed };
}

function byServiceSeverity(a: Finding, b: Finding): number {
  return a.service.localeCompare(b.service) || SEVERITIES.indexOf(a.severity) - SEVERITIES.indexOf(b.severity) || a.rule.localeCompare(b.rule) || a.at.line - b.at.line;
}

/** Whether a finding at or above the threshold is present (exit status 1). */
export function fails(result: LintResult, threshold: Severity): boolean {
  return result.findings.some((f) => atLeast(f.severity, threshold));
}
