// Writes a run's reports next to its recording: report.json, report.md, junit.xml and report.html.
// `faultline report DIR` calls it offline; the commands that run a game day hand writeReportsLine to
// the runner, which calls it when the run ends.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { analyze, readRun } from '../analysis/analyze.ts';
import { prometheusFigures } from '../analysis/promql.ts';
import type { Analysis } from '../analysis/types.ts';
import { renderHtml } from './html.ts';
import { reportJunit } from './junit.ts';
import { reportJson, reportMarkdown, scoreText } from './text.ts';

export interface WrittenReports {
  readonly analysis: Analysis;
  readonly files: { readonly html: string; readonly json: string; readonly markdown: string; readonly junit: string };
}

/** `prometheus`: also compute the window figures with PromQL from this Prometheus (it scraped the sidecars during the run). */
export async function writeReports(dir: string, options: { prometheus?: string } = {}): Promise<WrittenReports> {
  const run = await readRun(dir);
  let analysis = await analyze(run);
  if (options.prometheus) {
    const services = [...new Set(analysis.services.map((s) => s.service))];
    analysis = { ...analysis, prometheus: await prometheusFigures(options.prometheus, services, run.experiment.load.entry, analysis.windows) };
  }
  const files = { html: join(dir, 'report.html'), json: join(dir, 'report.json'), markdown: join(dir, 'report.md'), junit: join(dir, 'junit.xml') };
  await writeFile(files.json, reportJson(analysis));
  await writeFile(files.markdown, reportMarkdown(analysis));
  await writeFile(files.junit, reportJunit(analysis));
  await writeFile(files.html, await renderHtml(analysis));
  return { analysis, files };
}

/** Writes the reports of a run that has just ended; returns its summary's last line: where they are, or why not. */
export async function writeReportsLine(dir: string): Promise<string> {
  try {
    const written = await writeReports(dir);
    return `  report: ${written.files.html} (and report.md, report.json, junit.xml); ${scoreText(written.analysis.score)}\n`;
  } catch (error) {
    return `  report: not written (${(error as Error).message}); the recording is complete: faultline report ${dir}\n`;
  }
}
