// Lint tests build their model from a small mesh written in the test, as a user would write it.
import { parseConfig } from '../../src/config/load.ts';
import type { Finding, RuleId } from '../../src/lint/findings.ts';
import { lint } from '../../src/lint/lint.ts';
import { buildModel, type LintModel } from '../../src/lint/model.ts';
import type { Observation } from '../../src/lint/recording.ts';

export function modelOf(yaml: string, observation?: Observation): LintModel {
  return buildModel(parseConfig(yaml, 'mesh.yaml'), yaml, 'mesh.yaml', observation);
}

/** The findings of one kind for a mesh (suppressions applied). */
export function findingsOf(rule: RuleId, yaml: string, observation?: Observation): Finding[] {
  return lint(modelOf(yaml, observation)).findings.filter((f) => f.rule === rule);
}
