// What a lint rule is: a pure function from the model to its findings. One rule per file of this
// folder; the registry (index.ts) lists them.
import { RULES, type Finding, type RuleId, type Severity } from '../findings.ts';
import type { LintModel } from '../model.ts';

export interface Rule {
  readonly id: RuleId;
  check(model: LintModel): Finding[];
}

/** A finding of a rule, at its kind's severity unless the rule says otherwise; basis from whether a recording was read. */
export function finding(
  model: LintModel,
  rule: RuleId,
  fields: Omit<Finding, 'rule' | 'severity' | 'basis' | 'predicts' | 'route'> & { severity?: Severity; route?: string; predicts?: Finding['predicts']; observed?: boolean },
): Finding {
  const { severity, observed, route, predicts, ...rest } = fields;
  return {
    rule,
    severity: severity ?? RULES[rule].severity,
    ...rest,
    route,
    basis: observed ?? model.recording !== undefined ? 'config+recording' : 'config',
    predicts,
  };
}
