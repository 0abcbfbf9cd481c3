// junit.xml: a run as CI tools read a test report (Jenkins' junit step, GitLab's unit test reports,
// the GitHub actions that publish them), so that a gate on it is green only when the run is. One
// testsuite per run; first the run's own cases (no error, a steady baseline, no halt, faults injected,
// rollback verified), then one case per hypothesis and window, measured or not. A run that errored or
// could not verify its rollback is an <error>; a halt or a failed hypothesis a <failure>; an
// inconclusive hypothesis, or one whose window never came, is <skipped> with the reason.
import type { Analysis, HypothesisVerdict } from '../analysis/types.ts';
import { remainingText, scoreText } from './text.ts';

type Result = { readonly kind: 'pass' } | { readonly kind: 'failure' | 'error'; readonly type: string; readonly message: string } | { readonly kind: 'skipped'; readonly message: string };

interface TestCase {
  readonly name: string;
  readonly seconds: number;
  readonly result: Result;
}

const pass: Result = { kind: 'pass' };

export function reportJunit(analysis: Analysis): string {
  const e = analysis.experiment;
  const seconds = ((e.finishedAt ?? e.startedAt) - e.startedAt) / 1000;
  const cases = uniqueNames([...runCases(analysis), ...analysis.hypotheses.map((h) => hypothesisCase(analysis, h))]);
  const count = (kind: Result['kind']) => cases.filter((c) => c.result.kind === kind).length;
  const totals = `tests="${cases.length}" failures="${count('failure')}" errors="${count('error')}" skipped="${count('skipped')}" time="${seconds.toFixed(3)}"`;
  const classname = `faultline.${e.name}`;
  const properties: [string, string][] = [
    ['seed', String(e.seed)],
    ['outcome', e.outcome ?? 'incomplete'],
    ['reason', e.reason ?? ''],
    ['score', analysis.score.value === null ? `none: ${analysis.score.reason ?? ''}` : String(analysis.score.value)],
    ['faults', analysis.faults.map((f) => f.id).join(', ')],
  ];
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="faultline" ${totals}>`,
    `  <testsuite name="${attr(e.name)}" ${totals} timestamp="${new Date(e.startedAt).toISOString().slice(0, 19)}">`,
    '    <properties>',
    ...properties.map(([name, value]) => `      <property name="${name}" value="${attr(value)}"/>`),
    '    </properties>',
    ...cases.map((c) => testcase(classname, c)),
    `    <system-out>${text(summaryOf(analysis))}</system-out>`,
    '  </testsuite>',
    '</testsuites>',
    '',
  ].join('\n');
}

/** What a gate needs to know about the run itself, beside its hypotheses. */
function runCases(a: Analysis): TestCase[] {
  const e = a.experiment;
  const reason = e.reason ?? 'no reason recorded';
  const injected = a.faults.filter((f) => f.injectedAt !== null).map((f) => f.id);
  const reachedMethod = e.outcome === 'passed' || e.outcome === 'failed' || e.outcome === 'halted';
  const hasBaseline = a.windows.some((w) => w.kind === 'baseline');
  const notReached = (what: string): Result => ({ kind: 'skipped', message: `not reached: ${what}` });
  const why = !e.complete ? 'the runner stopped before the run ended'
    : e.outcome === 'error' ? `the run ended in an error (${reason})`
    : e.outcome === 'inconclusive' ? 'the steady state did not hold in the baseline'
    : 'the run stopped before it';
  const rollback = e.rollback;
  return [
    {
      name: 'run: ended without error',
      seconds: 0,
      result: !e.complete
        ? { kind: 'error', type: 'FL_RUN_INCOMPLETE', message: 'the journal is incomplete: the runner stopped before the run ended' }
        : e.outcome === 'error' ? { kind: 'error', type: 'FL_RUN_ERROR', message: reason } : pass,
    },
    {
      name: 'run: steady state held before any fault',
      seconds: 0,
      result: e.outcome === 'inconclusive'
        ? { kind: 'error', type: 'FL_BASELINE_NOT_STEADY', message: `${reason}: nothing was learnt, no fault was injected` }
        : hasBaseline && (reachedMethod || injected.length > 0) ? pass : notReached(why),
    },
    {
      name: 'run: not halted',
      seconds: 0,
      result: e.outcome === 'halted'
        ? { kind: 'failure', type: 'FL_HALTED', message: a.halts.length ? a.halts.map((h) => `halted at +${((h.at - e.startedAt) / 1000).toFixed(1)} s: ${h.reason}`).join('; ') : reason }
        : pass,
    },
    {
      name: 'run: faults injected',
      seconds: 0,
      result: injected.length ? pass : reachedMethod ? { kind: 'error', type: 'FL_NOTHING_INJECTED', message: 'no fault was injected: the run tested nothing' } : notReached(why),
    },
    {
      name: 'run: rollback verified',
      seconds: 0,
      result: rollback
        ? rollback.verified ? pass : { kind: 'error', type: 'FL_ROLLBACK_NOT_VERIFIED', message: `rollback NOT verified: ${remainingText(rollback.remaining)}` }
        : injected.length || !e.complete
          ? { kind: 'error', type: 'FL_ROLLBACK_NOT_VERIFIED', message: 'no rollback was recorded' }
          : { kind: 'skipped', message: 'nothing to roll back: no fault was injected' },
    },
  ];
}

function hypothesisCase(a: Analysis, h: HypothesisVerdict): TestCase {
  const detail = `measured ${h.measured}, objective ${h.objective}, ${h.samples} samples`;
  const result: Result =
    h.outcome === 'fail' ? { kind: 'failure', type: 'FL_HYPOTHESIS_FAILED', message: detail }
    : h.outcome === 'inconclusive' ? { kind: 'skipped', message: `inconclusive: ${detail}` }
    : h.outcome === 'not-run' ? { kind: 'skipped', message: `not run: ${h.measured.replace(/^not measured: /, '')}` }
    : pass;
  return { name: `${h.hypothesis} [${h.window}]`, seconds: h.outcome === 'not-run' ? 0 : windowSeconds(a, h.window), result };
}

/** A window's length by name; `method` spans the fault windows. */
function windowSeconds(a: Analysis, name: string): number {
  const faults = a.windows.filter((w) => w.kind === 'fault');
  const w = name === 'method' && faults.length ? { from: Math.min(...faults.map((f) => f.from)), to: Math.max(...faults.map((f) => f.to)) } : a.windows.find((x) => x.name === name);
  return w ? (w.to - w.from) / 1000 : 0;
}

/** GitLab keeps only the first of test cases with the same name: a repeated name gets " #2", " #3". */
function uniqueNames(cases: readonly TestCase[]): TestCase[] {
  const seen = new Map<string, number>();
  return cases.map((c) => {
    const n = (seen.get(c.name) ?? 0) + 1;
    seen.set(c.name, n);
    return n === 1 ? c : { ...c, name: `${c.name} #${n}` };
  });
}

function testcase(classname: string, c: TestCase): string {
  const open = `    <testcase classname="${attr(classname)}" name="${attr(c.name)}" time="${c.seconds.toFixed(3)}"`;
  const r = c.result;
  if (r.kind === 'pass') return `${open}/>`;
  if (r.kind === 'skipped') return `${open}>\n      <skipped message="${attr(r.message)}"/>\n    </testcase>`;
  return `${open}>\n      <${r.kind} type="${r.type}" message="${attr(r.message)}">${text(r.message)}</${r.kind}>\n    </testcase>`;
}

function summaryOf(a: Analysis): string {
  const e = a.experiment;
  const n = (outcome: HypothesisVerdict['outcome']) => a.hypotheses.filter((h) => h.outcome === outcome).length;
  return [
    `game day ${e.name}: ${(e.outcome ?? 'incomplete').toUpperCase()}${e.reason ? ` (${e.reason})` : ''}`,
    `seed ${e.seed}; ${scoreText(a.score)}`,
    `hypotheses: ${n('pass')} passed, ${n('fail')} failed, ${n('inconclusive')} inconclusive, ${n('not-run')} not run`,
    `rollback: ${e.rollback ? (e.rollback.verified ? 'verified' : `NOT verified (${remainingText(e.rollback.remaining)})`) : 'none recorded'}`,
  ].join('\n');
}

// XML 1.0 allows neither these characters nor lone surrogates, escaped or not: they become U+FFFD.
const NOT_XML = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu;
const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;', '\t': '&#9;', '\n': '&#10;', '\r': '&#13;' };

/** Character data: markup escaped, \r kept (a parser would turn a raw one into \n). */
function text(value: string): string {
  return value.replace(NOT_XML, '\uFFFD').replace(/[&<>\r]/g, (c) => ESCAPES[c]!);
}

/** An attribute value: quotes escaped too, and tabs and newlines, which a parser would turn into spaces. */
function attr(value: string): string {
  return value.replace(NOT_XML, '\uFFFD').replace(/[&<>"'\t\n\r]/g, (c) => ESCAPES[c]!);
}
