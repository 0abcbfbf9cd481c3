#!/usr/bin/env node
// The faultline command.
// First: for `sidecar` and `up`, heap.ts re-executes the process with the sidecar's heap flags before anything else loads.
import './heap.ts';
import { Command, InvalidArgumentError } from 'commander';
import { ConfigError } from '../config/errors.ts';
import { loadConfigFile } from '../config/load.ts';
import { meshJsonSchema } from '../config/schema.ts';
import { compileSnapshot } from '../config/snapshot.ts';
import { mkdir, readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { isMap, parseDocument } from 'yaml';
import { ErrorCode, FaultlineError } from '../errors.ts';
import { createLogger } from '../telemetry/log.ts';
import { DEMO_EXPERIMENT, DEMO_MESH } from './paths.ts';
import { controlAt, positiveInt, readToken, stopOnSignal } from './options.ts';
import { serveCommands } from './serve.ts';

// Each command loads what it needs when it runs (below, with import()): a sidecar process must not
// carry the runner, the charts or the load generator in its memory.


/** Exit codes: 1 for a failure at run time, 2 for invalid input (config, arguments). */
const EXIT_INVALID = 2;

const program = new Command()
  .name('faultline')
  .description('A service mesh for staging in which fault injection is first class')
  .showHelpAfterError()
  .exitOverride((error) => process.exit(error.exitCode === 0 ? 0 : EXIT_INVALID));

serveCommands(program);

/**
 * An experiment file has a method; a mesh config has none. Asked of the document's top-level keys, not
 * of its values: the file is not yet validated (an alias bomb expands only when read in full, which the
 * parser then refuses with a position).
 */
function isExperiment(text: string): boolean {
  try {
    const doc = parseDocument(text);
    return isMap(doc.contents) && doc.contents.has('method');
  } catch {
    return false;
  }
}

program
  .command('validate')
  .description('check a mesh config or an experiment file; prints every problem with file, line and field')
  .argument('<file>', 'a mesh config or an experiment (YAML)')
  .action(async (file: string) => {
    const text = await readFile(file, 'utf8').catch((error: Error) => {
      throw new FaultlineError(ErrorCode.ConfigUnreadable, `cannot read ${file}: ${error.message}`);
    });
    if (isExperiment(text)) {
      const { parseExperiment, targetsOf } = await import('../experiments/spec.ts');
      const experiment = parseExperiment(text, file);
      process.stdout.write(`${file}: valid experiment ${experiment.name} (${experiment.method.length} steps, ${experiment.steadyState.length + experiment.expect.length} hypotheses, targets ${targetsOf(experiment).join(', ') || 'none'})\n`);
      return;
    }
    const loaded = await loadConfigFile(file);
    const snapshot = compileSnapshot(loaded.config, file);
    process.stdout.write(`${file}: valid (version ${snapshot.version}, ${snapshot.services.size} services, ${snapshot.routes.length} routes, ${snapshot.sidecars.length} sidecars)\n`);
  });

program
  .command('lint')
  .description('find resilience bugs in a mesh before a game day does: timeout inversions, hops with no timeout, retries that multiply, breakers that cannot trip; exit 1 when a finding at or above --fail-on is present')
  .argument('<mesh>', 'the mesh config (YAML)')
  .option('--recording <dir>', 'a recorded run (reports/<experiment>/<timestamp>/): adds the observed calls, rates and latencies')
  .option('--suggest <dir>', 'write a game day per finding into this directory: the fault that exposes it and the hypothesis that would fail')
  .option('--json', 'print the findings as JSON (schema faultline.lint/v1)')
  .option('--fail-on <severity>', 'exit 1 when a finding of this severity or above is present: error, warning, info, or never', 'error')
  .action(async (file: string, options: { recording?: string; suggest?: string; json?: boolean; failOn: string }) => {
    if (!['error', 'warning', 'info', 'never'].includes(options.failOn)) throw new InvalidArgumentError('--fail-on: expected error, warning, info or never');
    const { lintFile, fails } = await import('../lint/lint.ts');
    const { lintJson, lintText } = await import('../lint/format.ts');
    const { result, model } = await lintFile(file, { ...(options.recording !== undefined && { recording: options.recording }) });
    process.stdout.write(options.json ? lintJson(result) : lintText(result));
    if (options.suggest !== undefined) {
      const { writeSuggestions } = await import('../lint/suggest.ts');
      const suggested = await writeSuggestions(result.findings, model, options.suggest);
      const out = options.json ? process.stderr : process.stdout;
      for (const s of suggested.written) out.write(`suggested ${s.file}  (${s.finding.rule} ${s.finding.path.join(' → ')})\n`);
      for (const s of suggested.skipped) out.write(`no game day for ${s.finding.rule} ${s.finding.path.join(' → ')}: ${s.reason}\n`);
    }
    if (options.failOn !== 'never' && fails(result, options.failOn as 'error' | 'warning' | 'info')) process.exitCode = 1;
  });

program
  .command('run')
  .description('run a game day: load, faults, halts, rollback, recording; exit 0 held, 1 failed, 2 invalid, 3 halted, 4 error')
  .argument('<experiment>', 'the experiment file (YAML)')
  .option('--seed <n>', 'seed for every fault decision (recorded with the run)', (v) => Number.parseInt(v, 10))
  .option('--out <dir>', 'where runs are recorded', 'reports')
  .option('--dry-run', 'validate, resolve every fault against the mesh and print the blast radius; inject nothing')
  .action(async (file: string, options: { seed?: number; out: string; dryRun?: boolean }) => {
    if (options.seed !== undefined && !Number.isInteger(options.seed)) throw new InvalidArgumentError('--seed: expected a whole number');
    const { runExperiment } = await import('../experiments/runner.ts');
    const { writeReportsLine } = await import('../reports/write.ts');
    const result = await runExperiment({ file, out: options.out, report: writeReportsLine, ...(options.seed !== undefined && { seed: options.seed }), ...(options.dryRun && { dryRun: true }) });
    process.exitCode = result.exitCode;
  });

program
  .command('report')
  .description('(re)make the reports of a recorded run from its recording alone: report.html, report.md, report.json, junit.xml')
  .argument('<dir>', 'the run directory, reports/<experiment>/<timestamp>/')
  .option('--prometheus <url>', 'also compute the window figures with PromQL from this Prometheus (it scraped the sidecars during the run)')
  .action(async (dir: string, options: { prometheus?: string }) => {
    const { writeReports } = await import('../reports/write.ts');
    const { scoreText } = await import('../reports/text.ts');
    const { analysis, files } = await writeReports(dir, options.prometheus ? { prometheus: options.prometheus } : {});
    process.stdout.write(`${analysis.experiment.name}: ${analysis.experiment.outcome ?? 'incomplete'}, ${scoreText(analysis.score)}; ${analysis.hypotheses.filter((h) => h.outcome === 'fail').length} of ${analysis.hypotheses.length} hypotheses failed\n  ${Object.values(files).join('\n  ')}\n`);
  });

program
  .command('schedule')
  .description('run the experiments of a directory on their cron schedules, within their windows, one at a time per target')
  .argument('<dir>', 'the experiments directory')
  .option('--state <file>', 'where last and next runs are kept across restarts', '.faultline/schedule.json')
  .option('--out <dir>', 'where runs are recorded', 'reports')
  .option('--list', 'print the upcoming runs and exit')
  .option('-n, --count <n>', 'with --list: how many', positiveInt, 10)
  .action(async (dir: string, options: { state: string; out: string; list?: boolean; count: number }) => {
    const { Scheduler } = await import('../experiments/scheduler.ts');
    const { scheduledIn } = await import('../experiments/leader-scheduler.ts');
    const { runExperiment } = await import('../experiments/runner.ts');
    const { writeReportsLine } = await import('../reports/write.ts');
    const scheduled = await scheduledIn(dir);
    const files = new Map(scheduled.map((e) => [e.name, e.file]));
    await mkdir(dirname(resolve(options.state)), { recursive: true });
    const scheduler = await Scheduler.open({
      experiments: scheduled,
      stateFile: options.state,
      log: (line) => process.stdout.write(`${new Date().toISOString()} ${line}\n`),
      run: async (experiment) => {
        const result = await runExperiment({ file: files.get(experiment.name)!, out: options.out, report: writeReportsLine });
        return { outcome: result.outcome, ...(result.journal.reason && { reason: result.journal.reason }) };
      },
    });
    if (options.list) {
      if (scheduled.length === 0) process.stdout.write(`no experiment in ${dir} has a schedule\n`);
      for (const run of scheduler.upcoming(options.count)) process.stdout.write(`${run.at.toISOString()}  ${run.name}\n`);
      return;
    }
    process.stdout.write(`scheduling ${scheduled.map((e) => e.name).join(', ') || 'nothing'}; state in ${options.state}\n`);
    scheduler.start();
    stopOnSignal(() => scheduler.stop());
  });

program
  .command('stop')
  .description('emergency stop: remove every runtime fault mesh-wide at once and halt running experiments')
  .option('--control <urls>', 'the control plane (replicas comma-separated: every one is checked)', 'http://127.0.0.1:15100')
  .option('--token-file <file>', 'its bearer token (or set FAULTLINE_TOKEN)')
  .option('--control-ca <file>', 'for https:// control planes: the CA bundle (PEM) to trust them through (or set FAULTLINE_CONTROL_CA; default: Node\'s trusted roots)')
  .option('--by <name>', 'who stops it (recorded)', process.env.USER ?? 'unknown')
  .option('--reason <text>', 'why (recorded)', 'emergency stop')
  .action(async (options: { control: string; tokenFile?: string; controlCa?: string; by: string; reason: string }) => {
    const { MeshClient } = await import('../experiments/mesh-client.ts');
    const { readControlCa } = await import('../http/control-transport.ts');
    const client = new MeshClient(options.control, await readToken(options.tokenFile), await readControlCa(options.controlCa));
    const { deleted, verified, sidecars } = await client.halt(options.by, options.reason);
    process.stdout.write(`halted by ${options.by}: ${deleted.length} runtime fault(s) removed${deleted.length ? ` (${deleted.join(', ')})` : ''}\n`);
    const width = Math.max(0, ...sidecars.map((s) => s.name.length));
    for (const s of sidecars) {
      const removed = s.removed.length ? `removed ${s.removed.join(', ')}` : 'removed nothing';
      process.stdout.write(`  ${s.name.padEnd(width)}  ${removed}; ${s.problem ? `NOT verified: ${s.problem}` : 'none left'}\n`);
    }
    process.stdout.write(verified ? `verified: no runtime fault is left on any of ${sidecars.length} sidecar(s)\n` : 'NOT verified: see the sidecars above\n');
    if (!verified) process.exitCode = 1;
  });

const token = program
  .command('token')
  .description('join tokens: a token that lets a sidecar join as one service only (its watch, acks, identity, instances)');

token
  .command('create')
  .description('make a join token for a service and print it (signed with a key derived from the admin token; never stored)')
  .option('--control <url>', 'the control plane', 'http://127.0.0.1:15100')
  .option('--token-file <file>', 'the admin token (or set FAULTLINE_TOKEN)')
  .option('--control-ca <file>', 'for https:// control planes: the CA bundle (PEM) to trust them through (or set FAULTLINE_CONTROL_CA; default: Node\'s trusted roots)')
  .requiredOption('--service <name>', 'the service the token lets a sidecar join as')
  .option('--ttl <duration>', 'how long it is valid, from 1s to 365d, e.g. 24h or 30d (default 30d)')
  .action(async (options: { control: string; tokenFile?: string; controlCa?: string; service: string; ttl?: string }) => {
    const { checkService, parseTtl } = await import('../control/join-token.ts');
    try {
      checkService(options.service);
      if (options.ttl !== undefined) parseTtl(options.ttl);
    } catch (error) {
      throw new InvalidArgumentError((error as Error).message);
    }
    const { createToken } = await import('../control/tokens-client.ts');
    const made = await createToken(await controlAt(options), options.service, options.ttl);
    process.stderr.write(`join token ${made.id} for ${made.service}, valid until ${made.expiresAt}\n`);
    process.stdout.write(`${made.token}\n`);
  });

token
  .command('revoke')
  .description('revoke a join token on every control plane sharing the store; the streams it opened are cut')
  .argument('<token-or-id>', 'the token, its id (as token create printed), or a file holding the token')
  .option('--control <url>', 'the control plane', 'http://127.0.0.1:15100')
  .option('--token-file <file>', 'the admin token (or set FAULTLINE_TOKEN)')
  .option('--control-ca <file>', 'for https:// control planes: the CA bundle (PEM) to trust them through (or set FAULTLINE_CONTROL_CA; default: Node\'s trusted roots)')
  .action(async (tokenOrId: string, options: { control: string; tokenFile?: string; controlCa?: string }) => {
    const { revokeToken } = await import('../control/tokens-client.ts');
    const revoked = await revokeToken(await controlAt(options), tokenOrId);
    process.stdout.write(`revoked join token ${revoked.jti}${revoked.service ? ` for ${revoked.service}` : ''} at ${revoked.revokedAt}\n`);
  });

program
  .command('schema')
  .description('print the JSON Schema of the mesh config format (or, with --experiment, of experiment files), for editors')
  .option('--experiment', 'the experiment file format')
  .action(async (options: { experiment?: boolean }) => {
    const schema = options.experiment ? (await import('../experiments/spec.ts')).experimentJsonSchema() : meshJsonSchema();
    process.stdout.write(`${JSON.stringify(schema, null, 2)}\n`);
  });

program
  .command('demo')
  .description('the quick start: a bundled game day on the demo shop (brought up and down again), its summary and where its recording is')
  .option('--experiment <file>', 'the game day to run', DEMO_EXPERIMENT)
  .option('--out <dir>', 'where runs are recorded', 'reports')
  .option('--burst', 'instead: bring the shop up, send it a bounded burst of requests (then again with a fault), print a summary')
  .option('--mesh <file>', 'with --burst: the mesh config of the shop', DEMO_MESH)
  .option('-n, --requests <n>', 'with --burst: requests to send', positiveInt, 2_000)
  .option('--concurrency <n>', 'with --burst: requests in flight at once', positiveInt, 16)
  .action(async (options: { experiment: string; out: string; burst?: boolean; mesh: string; requests: number; concurrency: number }) => {
    const log = createLogger('faultline-demo', process.env.FAULTLINE_LOG_LEVEL ?? 'warn');
    if (options.burst) {
      const { runDemo } = await import('./demo.ts');
      const result = await runDemo({ mesh: options.mesh, requests: options.requests, concurrency: options.concurrency, log });
      process.exitCode = (result.statuses['200'] ?? 0) === result.requests ? 0 : 1;
      return;
    }
    process.stdout.write(`faultline demo: the game day ${options.experiment} on the demo shop (demo/mesh.yaml)\n`);
    const { runExperiment } = await import('../experiments/runner.ts');
    const { writeReportsLine } = await import('../reports/write.ts');
    const result = await runExperiment({ file: options.experiment, out: options.out, seed: 1, report: writeReportsLine });
    process.stdout.write(`exit ${result.exitCode} (0: every hypothesis held; 1: one failed; 3: halted). The recording: ${result.dir}\n`);
    process.exitCode = result.exitCode;
  });


try {
  await program.parseAsync();
} catch (error) {
  if (error instanceof ConfigError || error instanceof InvalidArgumentError) {
    process.stderr.write(`${error.message}\n`);
    process.exit(EXIT_INVALID);
  }
  process.stderr.write(`${error instanceof FaultlineError ? `${error.code}: ` : ''}${(error as Error).message}\n`);
  process.exit(error instanceof FaultlineError && error.code.startsWith('FL_CONFIG') ? EXIT_INVALID : 1);
}
