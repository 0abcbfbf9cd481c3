// The lint findings a game day confirms: the run's own mesh file (mesh.yaml, the config in force when it
// began) linted with the run's own recording, and for each finding that predicts a game day, whether
// this run's failures are the ones it predicted — failures at the predicted hop, where one of the
// predicted policies acted, from a fault like the predicted one, with the predicted hypothesis failed.
//
// Honest by construction: a finding the run never put to the test (no fault like its predicted one was
// injected) is "not exercised", never "refuted"; one it did test without the predicted failures is
// "not confirmed" (a short fault or little load may miss what a longer one would show), never "refuted".
import type { MeshConfig } from '../config/schema.ts';
import type { Snapshot } from '../config/snapshot.ts';
import type { Experiment } from '../experiments/spec.ts';
import { actionName, faultTargets } from '../faults/actions/index.ts';
import type { FaultMatchConfig } from '../faults/match.ts';
import type { Finding, Prediction } from '../lint/findings.ts';
import { lint } from '../lint/lint.ts';
import { buildModel } from '../lint/model.ts';
import { observe } from '../lint/recording.ts';
import type { Event } from './common.ts';
import type { AnalysisWindow, Attribution, HypothesisVerdict, LintConfirmation, LintSection } from './types.ts';

/** The run's mesh file as it kept it. */
export interface RunMesh {
  readonly file: string;
  readonly text: string;
  readonly config: MeshConfig;
  readonly snapshot: Snapshot;
}

export interface LintInputs {
  readonly dir: string;
  readonly mesh: RunMesh;
  readonly experiment: Experiment;
  readonly events: readonly Event[];
  readonly windows: readonly AnalysisWindow[];
  readonly attribution: Attribution;
  readonly hypotheses: readonly HypothesisVerdict[];
  /** Why the run halted, when it did: a halt condition tripped under the fault is a failed hypothesis too (the worst kind). */
  readonly halts?: readonly string[];
}

/** Lints the run's mesh with its recording, and tells of each predicting finding whether the run confirms it. */
export function lintSection(run: LintInputs): LintSection {
  const baseline = run.windows.find((w) => w.kind === 'baseline');
  let findings: readonly Finding[];
  try {
    const observation = observe(run.dir, run.events, new Map(run.mesh.snapshot.sidecars.map((s) => [s.name, s.service])), baseline);
    findings = lint(buildModel(run.mesh.config, run.mesh.text, run.mesh.file, observation)).findings;
  } catch (error) {
    return { file: run.mesh.file, error: (error as Error).message, findings: [], unpredicted: 0 };
  }
  const predicting = findings.filter((f): f is Finding & { predicts: Prediction } => f.predicts !== undefined);
  return {
    file: run.mesh.file,
    error: null,
    findings: predicting.map((f) => confirmation(f, run)),
    unpredicted: findings.length - predicting.length,
  };
}

/** Whether the run confirms one finding's prediction, with the counts it rests on. */
export function confirmation(finding: Finding & { predicts: Prediction }, run: Pick<LintInputs, 'experiment' | 'windows' | 'attribution' | 'hypotheses' | 'halts'>): LintConfirmation {
  const p = finding.predicts;
  const { hop, acted } = p.signature;
  // The run's faults that put the finding to the test: injected, and like the predicted one.
  const injected = new Set(run.windows.filter((w) => w.kind === 'fault').map((w) => w.name));
  const like = run.experiment.method.filter((step) => injected.has(step.fault.id) && covers(step.fault, p.fault)).map((step) => step.fault.id);
  const causes = run.attribution.causes.filter((c) => c.hop === hop && acted.includes(c.acted) && c.faults.some((f) => like.includes(f)));
  const failures = causes.reduce((sum, c) => sum + c.failures, 0);
  const elsewhere = run.attribution.causes.filter((c) => !causes.includes(c) && c.faults.some((f) => like.includes(f))).reduce((sum, c) => sum + c.failures, 0);
  // The hypothesis the finding names (its first: same kind, same service) when the experiment states it; else any.
  const named = namedHypotheses(p, run.experiment);
  // Failed under the fault: a baseline that did not hold, or a slow recovery, is not what the finding predicts.
  const failed = run.hypotheses.filter((h) => h.outcome === 'fail' && h.window !== 'baseline' && h.window !== 'recovery' && (named.length === 0 || named.includes(baseId(h.id))));
  // A halt stops the run before its hypotheses can be judged (they are inconclusive): the halt condition is the failure.
  const halted = (run.halts ?? []).map((reason) => `halted: ${reason}`);
  const hypothesis = describeHypothesis(p);
  const base = {
    rule: finding.rule,
    severity: finding.severity,
    service: finding.service,
    path: finding.path,
    route: finding.route ?? null,
    at: { file: finding.at.file, line: finding.at.line, field: finding.at.field },
    message: finding.message,
    predicted: { hop, acted, outcome: p.outcome, hypothesis },
    faults: like,
    failures,
    elsewhere,
    failedHypotheses: [...failed.map((h) => h.id), ...halted],
  };
  if (like.length === 0) {
    return { ...base, status: 'not-exercised', why: `no fault like the predicted one (${describeFault(p.fault)}) was injected in this run: it did not put the finding to the test` };
  }
  const at = `${failures} failed request${failures === 1 ? '' : 's'} at the edge surfaced at ${hop} where ${acted.join(' or ')} acted`;
  const which = named.length > 0 ? `the predicted hypothesis (${hypothesis ?? named.join(', ')})` : 'a hypothesis (the experiment does not state the predicted one)';
  if (failures > 0 && failed.length + halted.length > 0) {
    return { ...base, status: 'confirmed', why: `${at}, from ${like.join(', ')}; ${failed.length > 0 ? `${which} failed: ${failed.map((h) => h.id).join(', ')}` : `the run ${halted.join('; ')}`}` };
  }
  const missing = failures === 0
    ? `no failure surfaced at ${hop} with ${acted.join(' or ')}${elsewhere > 0 ? ` (${elsewhere} surfaced elsewhere)` : ''}`
    : `${at}, but ${which} held`;
  return { ...base, status: 'not-confirmed', why: `${like.join(', ')} put it to the test and ${missing}: not confirmed by this run (a longer fault or more load may yet show it), not refuted` };
}

/**
 * Whether a run's fault does what the predicted one does: the same action, on the predicted services
 * (at least), at the same point when the prediction names one, and from the predicted source when it
 * names one (a fault on every source covers it).
 */
export function covers(fault: Experiment['method'][number]['fault'], predicted: Prediction['fault']): boolean {
  const like = { id: 'predicted', ...predicted } as { id: string; match?: FaultMatchConfig; at?: string };
  let action: string;
  try {
    action = actionName(like);
  } catch {
    return false;
  }
  if (actionName(fault) !== action) return false;
  const targets = faultTargets(fault);
  if (!faultTargets(like).every((t) => targets.includes(t))) return false;
  if (like.at !== undefined && (fault as { at?: string }).at !== like.at) return false;
  const source = sources(like.match);
  const theirs = sources(fault.match);
  return source.length === 0 || theirs.length === 0 || source.every((s) => theirs.includes(s));
}

function sources(match: FaultMatchConfig | undefined): string[] {
  return match?.source === undefined ? [] : [match.source].flat();
}

/** The ids (steadyState[i], expect[i]) of the experiment's hypotheses that are the prediction's first. */
function namedHypotheses(p: Prediction, experiment: Experiment): string[] {
  const [list, entries] = p.steadyState.length > 0 ? (['steadyState', experiment.steadyState] as const) : (['expect', experiment.expect] as const);
  const first = (p.steadyState[0] ?? p.expect[0]) as Record<string, { service?: string } | undefined> | undefined;
  if (!first) return [];
  const kind = Object.keys(first)[0]!;
  const service = first[kind]?.service;
  return (entries as readonly Record<string, { service?: string } | undefined>[])
    .map((h, i) => ({ h, id: `${list}[${i}]` }))
    .filter(({ h }) => h[kind] !== undefined && h[kind]?.service === service)
    .map(({ id }) => id);
}

/** steadyState[0]@method → steadyState[0]. */
const baseId = (id: string) => id.replace(/@.*$/, '');

function describeHypothesis(p: Prediction): string | null {
  const first = (p.steadyState[0] ?? p.expect[0]) as Record<string, Record<string, unknown> | undefined> | undefined;
  if (!first) return null;
  const kind = Object.keys(first)[0]!;
  const body = first[kind] ?? {};
  return `${kind} of ${String(body.service ?? '?')}${body.min !== undefined ? ` ≥ ${String(body.min)}` : ''}`;
}

function describeFault(fault: Prediction['fault']): string {
  const like = { id: 'predicted', ...fault } as { id: string; match?: FaultMatchConfig; at?: string };
  let action = 'fault';
  try {
    action = actionName(like);
  } catch {
    // an unknown action: named as "fault"
  }
  const source = sources(like.match);
  return `${action} on ${faultTargets(like).join(', ') || 'any service'}${like.at ? ` at ${like.at}` : ''}${source.length ? ` for ${source.join(', ')}` : ''}`;
}
