// Game days for real: a short run on the demo shop whose recording is checked file by file; halts (a
// halt condition, and the emergency stop) with rollback and exit code 3; and a runner killed with
// SIGKILL mid-fault, which leaves a journal marked incomplete and no fault past its lease.
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { stringify } from 'yaml';
import { up, type Mesh } from '../../src/control/up.ts';
import { runExperiment } from '../../src/experiments/runner.ts';
import { LEASE_MS } from '../../src/experiments/run/leases.ts';
import { writeReportsLine } from '../../src/reports/write.ts';
import { demoMeshOnFreePorts } from '../helpers/mesh.ts';
import { freeAddress, waitFor } from '../helpers/net.ts';
import { CLI } from '../helpers/process.ts';

const quiet = { write: () => true, isTTY: false } as unknown as NodeJS.WriteStream;

async function lines(file: string): Promise<Record<string, unknown>[]> {
  return (await readFile(file, 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('game day on the demo shop', function () {
  this.timeout(60_000);

  it('runs every phase and records journal, events, load and metrics', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'faultline-gameday-'));
    const file = join(dir, 'short.yaml');
    await writeFile(file, stringify({
      name: 'short-aborts',
      target: { mesh: await demoMeshOnFreePorts() },
      load: { entry: 'frontend', rate: 40, connections: 8, cohort: { percent: 50 } },
      phases: { warmup: '1s', baseline: '2s', recovery: '1s' },
      steadyState: [{ availability: { service: 'frontend', min: 95 } }],
      method: [{ at: '0s', duration: '4s', fault: { id: 'short-errors', match: { destination: 'payments' }, at: 'attempt', percent: 20, abort: { status: 503 } } }],
      expect: [{ retriesMask: { service: 'payments', min: 50 } }],
    }));
    const result = await runExperiment({ file, out: join(dir, 'reports'), seed: 7, stream: quiet, report: writeReportsLine });
    expect(result.outcome, JSON.stringify(result.journal.verdicts)).to.equal('passed');
    expect(result.exitCode).to.equal(0);
    const files = (await readdir(result.dir)).sort();
    expect(files).to.deep.equal(['events.ndjson', 'experiment.yaml', 'journal.json', 'junit.xml', 'load.ndjson', 'mesh.yaml', 'metrics.ndjson', 'report.html', 'report.json', 'report.md', 'summary.txt']);

    const journal = JSON.parse(await readFile(join(result.dir, 'journal.json'), 'utf8'));
    expect(journal).to.include({ status: 'complete', outcome: 'passed', seed: 7 });
    expect(journal.phases.map((p: { name: string }) => p.name)).to.deep.equal(['preflight', 'warm-up', 'baseline', 'method', 'rollback', 'recovery']);
    expect(journal.rollback.verified).to.equal(true);
    const fault = journal.faults[0];
    // The method's 4 s, and up to 2 s more for a busy machine to get round to removing it.
    expect(Date.parse(fault.removedAt) - Date.parse(fault.injectedAt)).to.be.within(3_900, 6_000);
    expect(fault.renewals).to.be.at.least(2);

    const events = await lines(join(result.dir, 'events.ndjson'));
    const applied = events.filter((e) => e.type === 'fault.applied' && e.faultId === 'short-errors');
    expect(applied.length).to.be.at.least(5);
    // The cohort: every injection was on a request of the experiment cohort, at cart's sidecar.
    expect(new Set(applied.map((e) => e.sidecar))).to.deep.equal(new Set(['cart']));
    expect(new Set(events.filter((e) => e.type === 'request.done').map((e) => e.sidecar)).size).to.equal(9);
    expect(events.some((e) => e.type === 'fault.installed' && e.faultId === 'short-errors')).to.equal(true);

    const load = await lines(join(result.dir, 'load.ndjson'));
    // The open model: 40 starts a second on schedule from the load's start to its stop, and load in
    // every phase; the journal says how it was made, and the summary and report.json count alike.
    expect(journal.load).to.include({ model: 'open', rate: 40, maxInFlight: 400 });
    const span = (journal.load.to - journal.load.from) / 1000;
    // (at a stop, a start just due may not have been reached yet by its timer)
    expect(load.length).to.be.within(Math.ceil(span * 40) - 3, Math.ceil(span * 40));
    expect(load.filter((r) => r.kind === 'missed')).to.deep.equal([]);
    for (const phase of journal.phases.filter((p: { name: string }) => ['warm-up', 'baseline', 'method', 'recovery'].includes(p.name))) {
      const [from, to] = [Date.parse(phase.startedAt), Date.parse(phase.endedAt)];
      expect(load.filter((r) => (r.t as number) >= from && (r.t as number) <= to).length, phase.name).to.be.above(0);
    }
    expect(new Set(load.map((r) => r.cohort))).to.deep.equal(new Set(['experiment', 'control']));
    const metrics = await lines(join(result.dir, 'metrics.ndjson'));
    expect(new Set(metrics.map((m) => m.sidecar)).size).to.equal(9);
    expect(metrics.length).to.be.at.least(9 * 6);
    const summary = await readFile(join(result.dir, 'summary.txt'), 'utf8');
    expect(summary).to.match(/game day short-aborts: PASSED[\s\S]*report: .*report\.html/);
    // The analysis of a real run: the retries saved what the fault aborted, as the attribution shows.
    const report = JSON.parse(await readFile(join(result.dir, 'report.json'), 'utf8'));
    expect(report.load).to.include({ model: 'open', sent: load.length, missed: 0 });
    expect(report.load.achieved).to.be.closeTo(40, 1);
    expect(summary).to.include(`${report.load.sent} sent, ${report.load.ok} ok, ${report.load.failed} failed, ${report.load.cut} cut by the load's stop, 0 missed starts`);
    expect(report.faults[0]).to.include({ id: 'short-errors', action: 'abort' });
    expect(report.faults[0].injected).to.equal(applied.length);
    const saved = report.attribution.totals.find((t: { policy: string }) => t.policy === 'retried-and-saved');
    expect(saved.count).to.be.at.least(1);
    expect(report.cohorts.experiment.requests + report.cohorts.control.requests).to.be.above(100);
  });
});

/** A one-service mesh whose app answers 200, brought up in this process; load enters at `front`. */
async function tinyMesh(): Promise<{ mesh: Mesh; dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'faultline-tiny-'));
  await writeFile(join(dir, 'app.mjs'), "import { createServer } from 'node:http'; process.stdin.on('close', () => process.exit(0)); createServer((q, s) => s.end('ok')).listen(Number(process.env.PORT), '127.0.0.1');\n");
  const app = await freeAddress();
  await writeFile(join(dir, 'mesh.yaml'), stringify({
    mesh: { name: 'tiny' },
    services: [{ name: 'front', endpoints: [{ address: app }] }],
    sidecars: [{ service: 'front', app, outbound: await freeAddress(), inbound: await freeAddress(), admin: await freeAddress(), command: ['node', 'app.mjs'] }],
  }));
  const mesh = await up({ file: join(dir, 'mesh.yaml'), listen: '127.0.0.1:0', stateDir: join(dir, 'state') });
  await writeFile(join(dir, 'token'), mesh.token);
  return { mesh, dir };
}

async function experiment(dir: string, mesh: Mesh, name: string, extra: Record<string, unknown>): Promise<string> {
  const file = join(dir, `${name}.yaml`);
  await writeFile(file, stringify({
    name,
    target: { control: mesh.control.url, tokenFile: join(dir, 'token') },
    load: { entry: 'front', rate: 50, connections: 4 },
    phases: { warmup: '500ms', baseline: '1s', recovery: '500ms' },
    steadyState: [{ availability: { service: 'front', min: 99 } }],
    ...extra,
  }));
  return file;
}

describe('game day halts and safety', function () {
  this.timeout(60_000);
  let tiny: Awaited<ReturnType<typeof tinyMesh>>;

  before(async () => {
    tiny = await tinyMesh();
  });

  after(async () => {
    await tiny.mesh.close();
  });

  const down = { at: '0s', duration: '20s', fault: { id: 'front-down', match: { destination: 'front' }, at: 'inbound', abort: { status: 503 } } };

  it('halts on a halt condition: rolls back at once, records why, exit code 3', async () => {
    const file = await experiment(tiny.dir, tiny.mesh, 'halting', { method: [down], halt: [{ availability: { service: 'front', below: 50, for: '1s' } }] });
    const started = Date.now();
    const result = await runExperiment({ file, out: join(tiny.dir, 'reports'), stream: quiet });
    expect([result.outcome, result.exitCode]).to.deep.equal(['halted', 3]);
    expect(Date.now() - started).to.be.below(10_000);
    // Below 50 % for the second it was measured over, which on a busy machine may begin before
    // every sidecar had the fault (a few requests still answered): not necessarily 0.0 %.
    const [, measured] = /^availability of front (\d+\.\d) % < 50 % for 1000 ms/.exec(result.journal.halts[0]!.reason) ?? [];
    expect(Number(measured), result.journal.halts[0]!.reason).to.be.below(50);
    expect(result.journal.rollback).to.include({ verified: true });
    expect(tiny.mesh.sidecars.get('front')!.sidecar.faults.get('front-down')).to.equal(undefined);
  });

  it('halts on the emergency stop (POST /halt), recording who', async () => {
    const file = await experiment(tiny.dir, tiny.mesh, 'stopped', { method: [down] });
    const running = runExperiment({ file, out: join(tiny.dir, 'reports'), stream: quiet });
    const sidecar = tiny.mesh.sidecars.get('front')!.sidecar;
    await waitFor(() => sidecar.faults.get('front-down'), 10_000, 'the fault to be in force');
    const response = await request(`${tiny.mesh.control.url}/halt`, { method: 'POST', headers: { authorization: `Bearer ${tiny.mesh.token}`, 'content-type': 'application/json' }, body: JSON.stringify({ by: 'tester', reason: 'drill' }) });
    expect(((await response.body.json()) as { deleted: string[] }).deleted).to.deep.equal(['front-down']);
    const result = await running;
    expect([result.outcome, result.exitCode]).to.deep.equal(['halted', 3]);
    expect(result.journal.halts[0]!.reason).to.equal('emergency stop by tester: drill');
  });

  it('a runner killed with SIGKILL mid-fault leaves a journal marked incomplete, and no fault past its lease', async () => {
    const file = await experiment(tiny.dir, tiny.mesh, 'killed', { method: [{ ...down, fault: { ...down.fault, percent: 10 } }] });
    const out = join(tiny.dir, 'killed-reports');
    const child = spawn(process.execPath, [CLI, 'run', file, '--out', out], { stdio: 'ignore' });
    const sidecar = tiny.mesh.sidecars.get('front')!.sidecar;
    await waitFor(() => sidecar.faults.get('front-down'), 15_000, 'the fault to be in force');
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    const killedAt = Date.now();
    const runDir = join(out, 'killed', (await readdir(join(out, 'killed')))[0]!);
    const journal = JSON.parse(await readFile(join(runDir, 'journal.json'), 'utf8'));
    expect(journal).to.include({ status: 'running', outcome: null });
    expect(journal.phases.at(-1).name).to.equal('method');
    // Gone within the lease (5 s) plus a little, with nobody calling back: from the sidecar and the control plane.
    await waitFor(() => sidecar.faults.get('front-down') === undefined && tiny.mesh.control.plane.faults.get('front-down') === undefined, LEASE_MS + 2_000, 'the fault to expire');
    expect(Date.now() - killedAt).to.be.below(LEASE_MS + 2_000);
  });
});
