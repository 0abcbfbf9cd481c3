#!/usr/bin/env node
// The faultline command.
import { SIDECAR_HEAP_FLAGS } from './heap.ts';
import { Command, InvalidArgumentError } from 'commander';
import { ConfigError } from '../config/errors.ts';
import { loadConfigFile } from '../config/load.ts';
import { meshJsonSchema } from '../config/schema.ts';
import { compileSnapshot } from '../config/snapshot.ts';
import { mkdir, readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { isMap, parseDocument } from 'yaml';
import { ErrorCode, FaultlineError } from '../errors.ts';
import type { Sidecar } from '../proxy/sidecar.ts';
import { createLogger } from '../telemetry/log.ts';
import { DEMO_EXPERIMENT, DEMO_MESH } from './paths.ts';

// Each command loads what it needs when it runs (below, with import()): a sidecar process must not
// carry the runner, the charts or the load generator in its memory.


/** Exit codes: 1 for a failure at run time, 2 for invalid input (config, arguments). */
const EXIT_INVALID = 2;

const program = new Command()
  .name('faultline')
  .description('A service mesh for staging in which fault injection is first class')
  .showHelpAfterError()
  .exitOverride((error) => process.exit(error.exitCode === 0 ? 0 : EXIT_INVALID));

program
  .command('sidecar')
  .description('run the sidecar proxy of one service: outbound, inbound and admin listeners')
  .addHelpText('after', `\nMemory: the sidecar starts V8 with ${SIDECAR_HEAP_FLAGS.join(' ')} (a bounded young generation: a lower RSS under load).` + '\nTo change it, give your own: NODE_OPTIONS=\'--max-semi-space-size=8 --max-old-space-size=256\' faultline sidecar ...\n(yours win), or FAULTLINE_HEAP=default for V8\'s own sizing.')
  .option('-c, --config <file>', 'the mesh config (YAML), when the sidecar runs without a control plane')
  .option('--control <urls>', 'the control plane to take config and faults from, e.g. https://cp1:15100; replicas comma-separated, tried in turn')
  .option('--token-file <file>', 'with --control: the bearer token (or set FAULTLINE_TOKEN)')
  .option('--control-ca <file>', 'for https:// control planes: the CA bundle (PEM) to trust them through (or set FAULTLINE_CONTROL_CA; default: Node\'s trusted roots)')
  .option('--state-dir <dir>', 'with --control: where the last snapshot is kept (default .faultline/sidecars/<name>)')
  .requiredOption('-s, --service <name>', 'the sidecar to run: its entry\'s name, or its service when the service has one sidecar; with the join flags below, its service')
  .option('--no-watch', 'do not reload when the config file changes (SIGHUP still reloads)')
  .option('--access-log <file>', 'a JSON line per request to this file, or to stdout with -')
  .option('--app <address>', 'join (with --control, no entry in the mesh file needed): the local app this sidecar serves')
  .option('--inbound <address>', 'join: where other sidecars reach it (e.g. 0.0.0.0:15006); none for a client-only sidecar, which registers no endpoint')
  .option('--advertise <address>', 'join: the address other hosts reach the inbound listener at (default: --inbound, unless a wildcard)')
  .option('--outbound <address>', 'join: where its app sends its outbound calls (e.g. 127.0.0.1:15001); none for a service that calls nobody')
  .option('--admin <address>', 'join: the admin listener, on loopback', '127.0.0.1:15000')
  .option('--labels <k=v,...>', 'join: labels of its instance (subsets: version=v2 makes a canary)')
  .option('--name <name>', 'join: its name in the mesh (default: service and advertised address)')
  .option('--lease <duration>', 'join: how long its registration outlives its last renewal (it renews at a third of it)', '10s')
  .action(async (options: { config?: string; control?: string; tokenFile?: string; controlCa?: string; stateDir?: string; service: string; watch: boolean; accessLog?: string; app?: string; inbound?: string; advertise?: string; outbound?: string; admin: string; labels?: string; name?: string; lease: string }) => {
    const log = createLogger('faultline-sidecar');
    if (Boolean(options.config) === Boolean(options.control)) throw new InvalidArgumentError('give either --config FILE or --control URL');
    const joining = [options.app, options.inbound, options.advertise, options.outbound, options.labels, options.name].some((v) => v !== undefined);
    if (joining && !options.control) throw new InvalidArgumentError('--app, --inbound, --advertise, --outbound, --labels and --name join a control plane: give --control URL');
    let sidecar: Sidecar;
    let stopControl: (() => Promise<void>) | undefined;
    if (options.control) {
      const { startControlledSidecar } = await import('../control/agent.ts');
      const { parseDuration } = await import('../config/duration.ts');
      const ttlMs = parseDuration(options.lease);
      if (ttlMs === undefined || ttlMs < 1_000) throw new InvalidArgumentError('--lease: a duration of at least 1s, e.g. 10s');
      const labels = options.labels === undefined ? {} : Object.fromEntries(options.labels.split(',').filter(Boolean).map((pair) => {
        const eq = pair.indexOf('=');
        if (eq <= 0) throw new InvalidArgumentError(`--labels: expected key=value pairs separated by commas, got "${pair}"`);
        return [pair.slice(0, eq).trim(), pair.slice(eq + 1).trim()];
      }));
      const { readControlCa } = await import('../http/control-transport.ts');
      const ca = await readControlCa(options.controlCa);
      const controlled = await startControlledSidecar({
        url: options.control.split(',').map((u) => u.trim().replace(/\/$/, '')).filter(Boolean),
        token: await readToken(options.tokenFile),
        ...(ca !== undefined && { ca }),
        ...(joining
          ? { join: { service: options.service, admin: options.admin, labels, ttlMs, ...(options.name && { name: options.name }), ...(options.app && { app: options.app }), ...(options.inbound && { inbound: options.inbound }), ...(options.advertise && { advertise: options.advertise }), ...(options.outbound && { outbound: options.outbound }) } }
          : { name: options.service }),
        stateDir: options.stateDir ?? `.faultline/sidecars/${options.name ?? options.service}`,
        log,
        ...(options.accessLog && { accessLog: options.accessLog }),
      });
      sidecar = controlled.sidecar;
      stopControl = () => controlled.close();
    } else {
      const loaded = await loadConfigFile(options.config!);
      const { Sidecar } = await import('../proxy/sidecar.ts');
      sidecar = await Sidecar.start({
        name: options.service,
        snapshot: compileSnapshot(loaded.config, options.config!),
        configFile: options.config!,
        watch: options.watch,
        log,
        ...(options.accessLog && { accessLog: options.accessLog }),
      });
      process.on('SIGHUP', () => void sidecar.reload());
    }
    stopOnSignal(async () => {
      // Under a control plane: deregister, stop watching, then close the sidecar (all in its close).
      if (stopControl) await stopControl();
      else await sidecar.close();
      log.flush();
    });
    process.stdout.write(`${JSON.stringify({ sidecar: sidecar.name, version: sidecar.snapshot.version, ...sidecar.addresses })}\n`);
  });

program
  .command('control')
  .description('run the control plane: desired state, distribution to sidecars, runtime faults under leases')
  .option('-c, --config <file>', 'the mesh config to serve (else the one kept in --state-dir)')
  .option('--listen <address>', 'where its API listens', '127.0.0.1:15100')
  .option('--token-file <file>', 'the bearer token every caller must present (or set FAULTLINE_TOKEN)')
  .option('--state-dir <dir>', 'where the desired state is kept', '.faultline/control')
  .option('--store <store>', 'keep the desired state in etcd, shared by every control plane given the same: etcd://host:port[,host:port…][/prefix] (default: files in --state-dir)')
  .option('--ca-cert <file>', 'an operator\'s CA certificate (PEM) to issue identities from, instead of one made and kept here')
  .option('--ca-key <file>', 'its private key (PEM)')
  .option('--leader-ttl <duration>', 'with several on one store: how long one that dies without resigning still leads (etcd rounds up to whole seconds)', '10s')
  .option('--tls <mode>', 'serve the API over HTTPS with a certificate it issues itself from the mesh CA and renews (auto); writes the CA to <state-dir>/control-ca.pem for clients\' --control-ca')
  .option('--tls-san <names>', 'with --tls auto: more DNS names or IP addresses for its certificate (comma-separated, repeatable); the listen address is always in it', collect)
  .option('--tls-cert <file>', 'serve the API over HTTPS with this certificate (PEM, chain after the leaf)')
  .option('--tls-key <file>', 'with --tls-cert: its private key (PEM)')
  .option('--previous-token-file <file>', 'after rotating the admin token: the old one, to open the CA key a shared store holds sealed under it (sealed again under the new one)')
  .option('--viewer-token-file <file>', 'a read-only token: signs a viewer in to the console (/ui) and reads the API; anything that changes state is refused (403)')
  .option('--experiments <dir>', 'run the scheduled experiments of this directory while this control plane leads (give every replica the same); their state is kept in the store. The console lists them, and dry-runs and runs them against this control plane')
  .option('--reports <dir>', 'with --experiments: where their runs are recorded', 'reports')
  .action(async (options: { config?: string; listen: string; tokenFile?: string; stateDir: string; store?: string; caCert?: string; caKey?: string; leaderTtl: string; tls?: string; tlsSan?: string[]; tlsCert?: string; tlsKey?: string; experiments?: string; reports: string; previousTokenFile?: string; viewerTokenFile?: string }) => {
    if (Boolean(options.caCert) !== Boolean(options.caKey)) throw new InvalidArgumentError('--ca-cert and --ca-key go together');
    if (Boolean(options.tlsCert) !== Boolean(options.tlsKey)) throw new InvalidArgumentError('--tls-cert and --tls-key go together');
    if (options.tls !== undefined && options.tls !== 'auto') throw new InvalidArgumentError(`--tls: expected auto (or give --tls-cert and --tls-key), got "${options.tls}"`);
    if (options.tls && options.tlsCert) throw new InvalidArgumentError('--tls auto issues its own certificate: give either it or --tls-cert/--tls-key');
    const sans = (options.tlsSan ?? []).flatMap((s) => s.split(',')).map((s) => s.trim()).filter(Boolean);
    if (sans.length > 0 && options.tls !== 'auto') throw new InvalidArgumentError('--tls-san names go into the certificate --tls auto issues: give --tls auto');
    const { checkSan } = await import('../control/api-listener.ts');
    try {
      sans.forEach(checkSan);
    } catch (error) {
      throw new InvalidArgumentError((error as Error).message);
    }
    const { parseDuration } = await import('../config/duration.ts');
    const leaderTtlMs = parseDuration(options.leaderTtl);
    if (leaderTtlMs === undefined || leaderTtlMs < 1_000) throw new InvalidArgumentError('--leader-ttl: a duration of at least 1s, e.g. 10s');
    const log = createLogger('faultline-control');
    const { startControlPlane } = await import('../control/server.ts');
    // The schedules are read (and checked) before anything starts: an invalid experiment stops the start.
    const leaderScheduler = options.experiments ? await import('../experiments/leader-scheduler.ts') : undefined;
    const scheduled = options.experiments && leaderScheduler ? await leaderScheduler.scheduledIn(options.experiments) : [];
    // The same directory's experiments can be dry-run and run from the console (every replica).
    const runs = options.experiments ? { ...(await import('../experiments/runner.ts')), ...(await import('../reports/write.ts')), ...(await import('../experiments/launcher.ts')) } : undefined;
    const gameDays = options.experiments && runs?.directoryLauncher(options.experiments, options.reports, { report: runs.writeReportsLine, tokenFile: options.tokenFile, log });
    const control = await startControlPlane({
      listen: options.listen,
      ...(gameDays && { gameDays }),
      token: await readToken(options.tokenFile),
      stateDir: options.stateDir,
      log,
      leaderTtlMs,
      ...(options.store && { store: options.store }),
      ...(options.config && { configFile: options.config }),
      ...(options.caCert && options.caKey && { ca: { certFile: options.caCert, keyFile: options.caKey } }),
      ...(options.previousTokenFile && { previousTokens: [await readToken(options.previousTokenFile)] }),
      ...(options.viewerTokenFile && { viewerToken: await readToken(options.viewerTokenFile) }),
      ...(options.tls === 'auto' && { tls: { mode: 'auto' as const, sans } }),
      ...(options.tlsCert && options.tlsKey && { tls: { mode: 'files' as const, certFile: options.tlsCert, keyFile: options.tlsKey } }),
    });
    let scheduling: { stop(): Promise<void> } | undefined;
    if (leaderScheduler && runs) {
      scheduling = leaderScheduler.scheduleUnderLeadership(control, scheduled, (file, run) => runs.runExperiment({ file, out: options.reports, report: runs.writeReportsLine, ...run }), log);
    }
    stopOnSignal(async () => {
      await scheduling?.stop();
      await control.close();
      log.flush();
    });
    const ca = control.caFile && { controlCa: control.caFile, caFingerprint: control.caFingerprint };
    process.stdout.write(`${JSON.stringify({ control: control.url, version: control.plane.state.version, ...ca, ...(options.experiments && { scheduling: scheduled.map((e) => e.name) }) })}\n`);
  });

program
  .command('up')
  .description('local staging: the control plane, a sidecar per declared sidecar, and the apps with a command; Ctrl-C stops all')
  .addHelpText('after', `\nMemory: like \`faultline sidecar\`, starts V8 with ${SIDECAR_HEAP_FLAGS.join(' ')} unless` + ' NODE_OPTIONS or node\'s flags give one; FAULTLINE_HEAP=default keeps V8\'s own sizing.')
  .argument('<mesh>', 'the mesh config (YAML)')
  .option('--listen <address>', 'where the control plane listens', '127.0.0.1:15100')
  .option('--state-dir <dir>', 'control plane store, kept snapshots and the token file', '.faultline')
  .option('--token-file <file>', 'use this bearer token (else a new one is made and written to <state-dir>/token)')
  .option('--viewer-token-file <file>', 'a read-only token for the console (/ui) and the API')
  .option('--experiments <dir>', 'experiments the console lists, dry-runs and runs against this mesh (whatever target their files name)')
  .option('--reports <dir>', 'with --experiments: where runs started from the console are recorded', 'reports')
  .option('--hosts <n>', 'spread the mesh over N hosts on this machine (network namespaces; root only): a three-member etcd and a control plane on each of the first three, each sidecar joining on the next host', (v) => Number.parseInt(v, 10))
  .option('--subnet <cidr>', 'with --hosts: the hosts\' IPv4 range', '10.213.0.0/24')
  .action(async (file: string, options: { listen: string; stateDir: string; tokenFile?: string; viewerTokenFile?: string; hosts?: number; subnet: string; experiments?: string; reports: string }) => {
    const log = createLogger('faultline-up', process.env.FAULTLINE_LOG_LEVEL ?? 'warn');
    if (options.hosts !== undefined) {
      if (options.experiments) throw new InvalidArgumentError('--experiments with --hosts is not built: give the control planes --experiments (faultline control) instead');
      if (!Number.isInteger(options.hosts) || options.hosts < 1) throw new InvalidArgumentError('--hosts: a whole number of hosts, at least 1');
      const { upOnHosts } = await import('../control/up-hosts.ts');
      const mesh = await upOnHosts({ file, hosts: options.hosts, subnet: options.subnet, stateDir: options.stateDir, log, ...(options.tokenFile && { token: await readToken(options.tokenFile) }) });
      process.stdout.write(mesh.table());
      process.stdout.write(`ready; a game day here: target {control: ${mesh.controls[0]}, tokenFile: ${mesh.tokenFile}, ca: ${mesh.caFile}}; Ctrl-C stops everything\n`);
      stopOnSignal(async () => {
        await mesh.close();
        log.flush();
      });
      return;
    }
    const { up } = await import('../control/up.ts');
    const runs = options.experiments ? { ...(await import('../reports/write.ts')), ...(await import('../experiments/launcher.ts')) } : undefined;
    const experiments = options.experiments;
    const gameDays = runs && experiments ? (tokenFile: string) => runs.directoryLauncher(experiments, options.reports, { report: runs.writeReportsLine, tokenFile, log }) : undefined;
    const mesh = await up({ file, listen: options.listen, stateDir: options.stateDir, log, ...(gameDays && { gameDays }), ...(options.tokenFile && { token: await readToken(options.tokenFile) }), ...(options.viewerTokenFile && { viewerToken: await readToken(options.viewerTokenFile) }) });
    process.stdout.write(mesh.table());
    process.stdout.write(`console        ${mesh.control.url}/ui  (sign in with the token)\n`);
    process.stdout.write('ready; Ctrl-C stops everything\n');
    stopOnSignal(async () => {
      await mesh.close();
      log.flush();
    });
  });

/** On SIGINT or SIGTERM: close what runs, then exit 0. */
function stopOnSignal(close: () => Promise<void>): void {
  const stop = async () => {
    await close();
    process.exit(0);
  };
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());
}

/** The control plane an operator's command talks to: its URL, the admin token, the CA to trust it through. */
async function controlAt(options: { control: string; tokenFile?: string; controlCa?: string }): Promise<{ url: string; token: string; ca: string | undefined }> {
  const { readControlCa } = await import('../http/control-transport.ts');
  return { url: options.control, token: await readToken(options.tokenFile), ca: await readControlCa(options.controlCa) };
}

/** A repeatable option's values, in order. */
function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

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

/** The bearer token: from a file (trimmed) or FAULTLINE_TOKEN; never printed. */
async function readToken(file: string | undefined): Promise<string> {
  const token = file ? (await readFile(file, 'utf8')).trim() : (process.env.FAULTLINE_TOKEN ?? '').trim();
  if (!token) throw new InvalidArgumentError(file ? `the token file ${file} is empty` : 'a token is required: --token-file FILE or FAULTLINE_TOKEN');
  return token;
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

export function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('expected a positive whole number');
  return n;
}

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
