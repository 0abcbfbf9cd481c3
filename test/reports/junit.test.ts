// junit.xml as a CI gate, read by a strict XML reader the way Jenkins reads it: a run against an
// unreachable control plane (through the CLI), a halted run and a passing one, each on a real mesh,
// each must gate as it ended; every hypothesis in every window is a test case; every string escaped.
import { expect } from 'chai';
import { mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { Analysis } from '../../src/analysis/types.ts';
import { up, type Mesh } from '../../src/control/up.ts';
import { runExperiment } from '../../src/experiments/runner.ts';
import { reportJunit } from '../../src/reports/junit.ts';
import { writeReportsLine } from '../../src/reports/write.ts';
import { gatePasses, readJunit, type JunitSuite } from '../helpers/junit.ts';
import { freeAddress } from '../helpers/net.ts';
import { runCli } from '../helpers/process.ts';
import { FAULT_ID, fixtureAnalysis } from './fixture.ts';

const quiet = { write: () => true, isTTY: false } as unknown as NodeJS.WriteStream;
const RUN_CASES = ['run: ended without error', 'run: steady state held before any fault', 'run: not halted', 'run: faults injected', 'run: rollback verified'];
const WINDOWS = ['baseline', 'method', 'recovery'];

async function suiteOf(dir: string): Promise<JunitSuite> {
  const { suites } = readJunit(await readFile(join(dir, 'junit.xml'), 'utf8'));
  expect(suites).to.have.length(1);
  return suites[0]!;
}

/** Test case names: the run's own, then each hypothesis of report.json in order. */
async function expectedNames(dir: string): Promise<string[]> {
  const report = JSON.parse(await readFile(join(dir, 'report.json'), 'utf8')) as Analysis;
  return [...RUN_CASES, ...report.hypotheses.map((h) => `${h.hypothesis} [${h.window}]`)];
}

const byName = (suite: JunitSuite, name: string) => suite.cases.find((c) => c.name === name)!;

describe('junit.xml as a CI gate', function () {
  this.timeout(60_000);

  it('fails the gate of a run against an unreachable control plane, and gives it no score', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'faultline-junit-'));
    await writeFile(join(dir, 'token'), 'not-used\n');
    const file = join(dir, 'unreachable.yaml');
    await writeFile(file, stringify({
      name: 'unreachable',
      target: { control: `http://${await freeAddress()}`, tokenFile: 'token' },
      load: { entry: 'front', rate: 10 },
      steadyState: [{ availability: { service: 'front', min: 99 } }, { latency: { service: 'front', percentile: 99, max: '500ms' } }],
      method: [{ at: '0s', duration: '2s', fault: { id: 'front-down', match: { destination: 'front' }, at: 'inbound', abort: { status: 503 } } }],
      expect: [{ recovers: { service: 'front', within: '2s' } }],
    }));
    const run = await runCli(['run', file, '--out', join(dir, 'reports')], 30_000);
    expect(run.code, run.stderr).to.equal(4);
    const runDir = join(dir, 'reports', 'unreachable', (await readdir(join(dir, 'reports', 'unreachable')))[0]!);
    const suite = await suiteOf(runDir);
    expect(gatePasses([suite]), 'the gate passes').to.equal(false);
    expect(run.stdout).to.include('no resilience score: no fault was injected').and.not.match(/score \d/);
    const error = byName(suite, 'run: ended without error');
    expect(error).to.include({ result: 'error', type: 'FL_RUN_ERROR' });
    expect(error.message).to.match(/ECONNREFUSED|fetch failed/);
    expect(byName(suite, 'run: rollback verified')).to.include({ result: 'error', type: 'FL_ROLLBACK_NOT_VERIFIED' });
    // Every hypothesis in every window, each skipped with why it was not measured.
    const hypotheses = ['availability of front ≥ 99 %', 'p99 latency of front < 500 ms'].flatMap((h) => WINDOWS.map((w) => `${h} [${w}]`));
    expect(suite.cases.map((c) => c.name)).to.deep.equal([...RUN_CASES, ...hypotheses, 'recovers [method]']);
    for (const c of suite.cases.slice(RUN_CASES.length)) {
      expect(c.result, c.name).to.equal('skipped');
      expect(c.message, c.name).to.match(/^not run: the run ended in an error before it: /);
    }
    expect(suite.properties.score).to.equal('none: no fault was injected');
    expect(suite.systemOut).to.include('no resilience score: no fault was injected');
    const report = JSON.parse(await readFile(join(runDir, 'report.json'), 'utf8')) as Analysis;
    expect(report.score).to.deep.equal({ value: null, reason: 'no fault was injected', parts: [] });
    expect(await readFile(join(runDir, 'report.md'), 'utf8')).to.include('**No resilience score**: no fault was injected.').and.include('Rollback: **NOT verified**');
    expect(await readFile(join(runDir, 'report.html'), 'utf8')).to.include('<strong>No resilience score</strong>: no fault was injected.');
  });

  describe('on a real one-service mesh', () => {
    let mesh: Mesh;
    let dir: string;

    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'faultline-junit-mesh-'));
      await writeFile(join(dir, 'app.mjs'), "import { createServer } from 'node:http'; process.stdin.on('close', () => process.exit(0)); createServer((q, s) => s.end('ok')).listen(Number(process.env.PORT), '127.0.0.1');\n");
      const app = await freeAddress();
      await writeFile(join(dir, 'mesh.yaml'), stringify({
        mesh: { name: 'gate' },
        services: [{ name: 'front', endpoints: [{ address: app }] }],
        sidecars: [{ service: 'front', app, outbound: await freeAddress(), inbound: await freeAddress(), admin: await freeAddress(), command: ['node', 'app.mjs'] }],
      }));
      mesh = await up({ file: join(dir, 'mesh.yaml'), listen: '127.0.0.1:0', stateDir: join(dir, 'state') });
      await writeFile(join(dir, 'token'), mesh.token);
    });

    after(async () => {
      await mesh.close();
    });

    async function gameDay(name: string, extra: Record<string, unknown>) {
      const file = join(dir, `${name}.yaml`);
      await writeFile(file, stringify({
        name,
        target: { control: mesh.control.url, tokenFile: 'token' },
        load: { entry: 'front', rate: 50, connections: 4 },
        phases: { warmup: '500ms', baseline: '1s', recovery: '1s' },
        steadyState: [{ availability: { service: 'front', min: 99 } }, { latency: { service: 'front', percentile: 99, max: '2s' } }],
        ...extra,
      }));
      return runExperiment({ file, out: join(dir, 'reports'), stream: quiet, report: writeReportsLine });
    }

    it('fails the gate of a halted run with the halt as a failure; the windows it never reached are skipped', async () => {
      const result = await gameDay('halting', {
        method: [{ at: '0s', duration: '20s', fault: { id: 'front-down', match: { destination: 'front' }, at: 'inbound', abort: { status: 503 } } }],
        halt: [{ availability: { service: 'front', below: 50, for: '1s' } }],
      });
      expect(result.outcome).to.equal('halted');
      const suite = await suiteOf(result.dir);
      expect(gatePasses([suite])).to.equal(false);
      const halt = byName(suite, 'run: not halted');
      expect(halt).to.include({ result: 'failure', type: 'FL_HALTED' });
      expect(halt.message).to.include(result.journal.halts[0]!.reason);
      expect(byName(suite, 'run: rollback verified').result).to.equal('pass');
      expect(suite.cases.map((c) => c.name)).to.deep.equal(await expectedNames(result.dir));
      expect(suite.cases.filter((c) => c.name.endsWith('[recovery]')).map((c) => [c.result, c.message])).to.deep.equal([
        ['skipped', `not run: the run halted before it: ${result.journal.reason}`],
        ['skipped', `not run: the run halted before it: ${result.journal.reason}`],
      ]);
    });

    it('passes the gate of a passing run, which lists every hypothesis in every window', async () => {
      const result = await gameDay('passing', {
        method: [{ at: '0s', duration: '1500ms', fault: { id: 'front-slow', match: { destination: 'front' }, at: 'inbound', delay: { fixed: '2ms' } } }],
        // Recovery is judged on whole seconds of load after the rollback: two seconds leave room for one.
        phases: { warmup: '500ms', baseline: '1s', recovery: '2s' },
        expect: [{ recovers: { service: 'front', within: '3s' } }],
      });
      expect([result.outcome, result.exitCode], JSON.stringify(result.journal.verdicts)).to.deep.equal(['passed', 0]);
      const suite = await suiteOf(result.dir);
      expect(gatePasses([suite])).to.equal(true);
      const hypotheses = ['availability of front ≥ 99 %', 'p99 latency of front < 2000 ms'].flatMap((h) => WINDOWS.map((w) => `${h} [${w}]`));
      expect(suite.cases.map((c) => c.name)).to.deep.equal([...RUN_CASES, ...hypotheses, 'front back to steady state after rollback [recovery]']);
      expect(suite.cases.filter((c) => c.result !== 'pass' && c.result !== 'skipped')).to.deep.equal([]);
      expect(Number(suite.properties.score)).to.be.within(50, 100);
    });
  });

  it('escapes every string and keeps names unique, however hostile', () => {
    const a = fixtureAnalysis();
    const nasty = 'quote " apos \' amp & lt < gt > end ]]> tab\there\nnew line\r\u0000nul \u001b esc \ud800 lone';
    const clean = nasty.replace(/[\u0000\u001b\ud800]/g, '\uFFFD');
    const hostile: Analysis = {
      ...a,
      experiment: { ...a.experiment, name: `exp ${nasty}`, reason: nasty },
      halts: [{ at: a.experiment.startedAt + 18_000, reason: nasty }],
      hypotheses: [...a.hypotheses, { ...a.hypotheses[1]!, id: 'again', hypothesis: `${nasty}` }, { ...a.hypotheses[1]!, id: 'again-2', hypothesis: `${nasty}` }],
      score: { value: null, reason: nasty, parts: [] },
    };
    const { suites } = readJunit(reportJunit(hostile));
    const suite = suites[0]!;
    expect(suite.attrs.name).to.equal(`exp ${clean}`);
    expect(suite.cases.every((c) => c.classname === `faultline.exp ${clean}`)).to.equal(true);
    expect(byName(suite, 'run: not halted').message).to.equal(`halted at +18.0 s: ${clean}`);
    expect(byName(suite, 'run: not halted').body).to.equal(`halted at +18.0 s: ${clean}`);
    expect(suite.properties.reason).to.equal(clean);
    const names = suite.cases.map((c) => c.name);
    expect(new Set(names).size).to.equal(names.length);
    expect(names).to.include(`${clean} [${FAULT_ID}]`).and.include(`${clean} [${FAULT_ID}] #2`);
    // The fixture's own markup (a fault id holding <b>, a halt reason holding <script>) is text too.
    expect(readJunit(reportJunit(a)).suites[0]!.cases.map((c) => c.name)).to.include(`frontend availability ≥ 95 % [${FAULT_ID}]`);
  });
});
