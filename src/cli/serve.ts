// The commands that run the mesh: `faultline sidecar`, `control` and `up`. Each loads what it needs
// when it runs (import()), as every command does (main.ts).
import { type Command, InvalidArgumentError } from 'commander';
import { loadConfigFile } from '../config/load.ts';
import { compileSnapshot } from '../config/snapshot.ts';
import type { Sidecar } from '../proxy/sidecar.ts';
import { createLogger } from '../telemetry/log.ts';
import { SIDECAR_HEAP_FLAGS } from './heap.ts';
import { collect, readToken, stopOnSignal } from './options.ts';

export function serveCommands(program: Command): void {
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
}
