// `faultline lint --suggest DIR`: for each finding that predicts one, the game day that would prove it —
// the fault that exposes it and the hypothesis that would then fail — as an experiment file that
// `faultline validate` accepts and `faultline run` runs.
import { mkdir, writeFile } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { stringify } from 'yaml';
import { parseExperiment } from '../experiments/spec.ts';
import { ms } from './budget.ts';
import type { Finding } from './findings.ts';
import type { LintModel } from './model.ts';

export interface Suggestion {
  readonly finding: Finding;
  readonly file: string;
}

export interface Suggested {
  readonly written: readonly Suggestion[];
  /** Findings with no game day, and why. */
  readonly skipped: readonly { readonly finding: Finding; readonly reason: string }[];
}

export async function writeSuggestions(findings: readonly Finding[], model: LintModel, dir: string): Promise<Suggested> {
  await mkdir(dir, { recursive: true });
  const written: Suggestion[] = [];
  const skipped: { finding: Finding; reason: string }[] = [];
  const names = new Set<string>();
  for (const finding of findings) {
    const made = suggestion(finding, model, dir);
    if (typeof made === 'string') {
      skipped.push({ finding, reason: made });
      continue;
    }
    let name = made.name;
    for (let n = 2; names.has(name); n++) name = `${made.name.slice(0, 60)}-${n}`;
    names.add(name);
    const file = join(dir, `${name}.yaml`);
    const text = made.text.replace(`name: ${made.name}\n`, `name: ${name}\n`);
    parseExperiment(text, file); // what is written is a valid experiment, or this is a bug of lint's
    await writeFile(file, text);
    written.push({ finding, file });
  }
  return { written, skipped };
}

/** The experiment for a finding: its name and YAML text; or why there is none. */
export function suggestion(finding: Finding, model: LintModel, dir: string): { name: string; text: string } | string {
  const p = finding.predicts;
  if (!p) return 'no fault exposes it on its own (it is about settings, not behaviour under a fault)';
  const entry = model.snapshot.sidecars.find((s) => s.service === p.entry && s.inbound !== undefined);
  if (!entry) return `the load would enter at ${p.entry}, which has no sidecar with an inbound listener in ${model.file}`;
  const name = `lint-${finding.rule}-${finding.path.join('-')}`.slice(0, 63).replace(/-+$/, '');
  const experiment = {
    name,
    description: `faultline lint: ${finding.message}`,
    target: { mesh: relative(resolve(dir), resolve(model.file)) },
    load: { entry: p.entry, rate: p.rate },
    phases: { warmup: '1s', baseline: '3s', recovery: '3s' },
    ...(p.steadyState.length > 0 && { steadyState: p.steadyState }),
    method: [{ at: '0s', duration: ms(p.durationMs), fault: { id: `lint-${finding.rule}`.slice(0, 63), seed: 1, ...p.fault } }],
    ...(p.expect.length > 0 && { expect: p.expect }),
  };
  const header = [
    `# Suggested by faultline lint: ${finding.rule} (${finding.severity}) at ${finding.at.file}:${finding.at.line} ${finding.at.field}`,
    `# ${finding.message}`,
    `# Predicted: ${p.outcome}.`,
    `# The first hypothesis should fail, with the failures surfacing at ${p.signature.hop} (${p.signature.acted.join(' or ')});`,
    '# the report lists the finding as confirmed when they do. Fix the finding, run it again: it should hold.',
  ];
  return { name, text: `${header.join('\n')}\n${stringify(experiment, { lineWidth: 0 })}` };
}
