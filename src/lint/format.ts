// Lint results for people (text grouped by service and severity) and for machines (JSON, schema
// "faultline.lint/v1").
import { SEVERITIES, type Finding } from './findings.ts';
import type { LintResult } from './lint.ts';

export function lintJson(result: LintResult): string {
  const count = (severity: string) => result.findings.filter((f) => f.severity === severity).length;
  return `${JSON.stringify({
    schema: 'faultline.lint/v1',
    file: result.file,
    recording: result.recording ?? null,
    counts: { error: count('error'), warning: count('warning'), info: count('info'), suppressed: result.suppressed.length },
    findings: result.findings,
    suppressed: result.suppressed.map((s) => ({ rule: s.finding.rule, service: s.finding.service, route: s.finding.route ?? null, at: s.finding.at, message: s.finding.message, reason: s.reason })),
  }, null, 2)}\n`;
}

export function lintText(result: LintResult): string {
  const lines: string[] = [];
  const services = [...new Set(result.findings.map((f) => f.service))];
  for (const service of services) {
    lines.push(`${service}`);
    for (const severity of SEVERITIES) {
      for (const f of result.findings.filter((x) => x.service === service && x.severity === severity)) lines.push(...describe(f));
    }
    lines.push('');
  }
  if (result.suppressed.length > 0) {
    lines.push('left alone (lint.ignore):');
    for (const s of result.suppressed) lines.push(`  ${s.finding.rule} ${s.finding.service}${s.finding.route ? ` route ${s.finding.route}` : ''}: ${s.reason}`);
    lines.push('');
  }
  const count = (severity: string) => result.findings.filter((f) => f.severity === severity).length;
  const basis = result.recording ? `${result.file} with the recording ${result.recording}` : `${result.file} (config only; --recording adds the observed calls and latencies)`;
  lines.push(`${count('error')} errors, ${count('warning')} warnings, ${count('info')} info${result.suppressed.length ? `, ${result.suppressed.length} left alone` : ''} — ${basis}`);
  return `${lines.join('\n')}\n`;
}

function describe(f: Finding): string[] {
  return [
    `  ${f.severity.padEnd(7)} ${f.rule}  ${f.path.join(' → ')}  ${f.at.file}:${f.at.line}:${f.at.column} ${f.at.field}`,
    `          ${f.message}`,
    `          why: ${f.why}`,
    `          fix: ${f.fix}`,
    `          from: ${f.figures.map((n) => `${n.name} ${n.value} (${n.origin})`).join('; ')}`,
  ];
}
