// Experiment files: the bundled game days are valid; bad ones are refused whole, each problem with
// file, line and field; `faultline validate` tells an experiment from a mesh config.
import { expect } from 'chai';
import { mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, type ConfigProblem } from '../../src/config/errors.ts';
import { controlUrls, experimentJsonSchema, parseExperiment, targetsOf } from '../../src/experiments/spec.ts';
import { select } from '../../src/faults/endpoints.ts';
import { runCli } from '../helpers/process.ts';

const BASE = `name: t
target: {mesh: mesh.yaml}
load: {entry: front, rate: 10}
method:
  - at: 0s
    duration: 2s
    fault: {id: f, match: {destination: front}, abort: {status: 503}}
`;

function problems(text: string): ConfigProblem[] {
  try {
    parseExperiment(text, 'x.yaml');
  } catch (error) {
    expect(error).to.be.instanceOf(ConfigError);
    return [...(error as ConfigError).problems];
  }
  return expect.fail('accepted');
}

describe('experiment files', () => {
  it('the bundled game days are valid, with their targets', async () => {
    const files = (await readdir('experiments')).filter((f) => f.endsWith('.yaml'));
    expect(files.length).to.be.at.least(4);
    for (const file of files) {
      const experiment = parseExperiment(await readFile(join('experiments', file), 'utf8'), file);
      expect(targetsOf(experiment).length, file).to.be.at.least(1);
    }
  });

  it('names line and field of each problem, all at once', () => {
    const found = problems(BASE.replace('duration: 2s', 'duration: soon').replace('rate: 10', 'rate: -1'));
    expect(found.map((p) => [p.line, p.field, p.message])).to.deep.equal([
      [3, 'load.rate', 'Too small: expected number to be >0'],
      [6, 'method[0].duration', 'expected a duration such as "250ms", "2s", "1m"'],
    ]);
  });

  it('refuses what the runner cannot do: a lease in a step, two steps on one fault, a ramp down, two load targets', () => {
    expect(problems(BASE.replace('abort: {status: 503}}', 'abort: {status: 503}, ttl: 1m}'))[0]).to.include({ field: 'method[0].fault', message: 'the runner sets the lease: no ttl or expiresAt here' });
    const twice = `${BASE}  - at: 1s\n    duration: 1s\n    fault: {id: f, hang: {}}\n`;
    expect(problems(twice)[0]).to.include({ field: 'method[1].fault.id', line: 10 });
    expect(problems(BASE.replace('    fault:', '    ramp: {from: 100}\n    fault:'))[0]).to.include({ field: 'method[0].ramp.from' });
    expect(problems(BASE.replace('entry: front,', 'entry: front, url: "http://127.0.0.1:1/",'))[0]).to.include({ field: 'load', message: 'one of entry (a service) or url' });
  });

  it('takes a control plane\'s replicas as a list or comma-separated, each a URL', () => {
    const target = (t: string) => BASE.replace('target: {mesh: mesh.yaml}', `target: ${t}`);
    const list = parseExperiment(target('{control: [http://cp-a:15100, http://cp-b:15100]}'), 'x.yaml').target;
    expect(list).to.deep.equal({ control: ['http://cp-a:15100', 'http://cp-b:15100'] });
    expect(controlUrls((parseExperiment(target('{control: "http://cp-a:15100, http://cp-b:15100"}'), 'x.yaml').target as { control: string }).control)).to.deep.equal(['http://cp-a:15100', 'http://cp-b:15100']);
    expect(problems(target('{control: "http://cp-a:15100,cp-b"}')).map((p) => p.field)).to.include('target.control');
    expect(problems(target('{control: []}')).map((p) => p.field)).to.include('target.control');
    expect(JSON.stringify(experimentJsonSchema())).to.contain('its replicas');
  });

  it('wants one kind per hypothesis, and known kinds', () => {
    const text = `${BASE}steadyState:\n  - {availability: {service: front, min: 99}, latency: {service: front, max: 1s}}\nexpect:\n  - {retriesSave: {service: front}}\n`;
    const found = problems(text);
    expect(found.map((p) => [p.field, p.message])).to.deep.include.members([
      ['steadyState[0]', 'one per entry, not availability and latency'],
      ['expect[0].retriesSave', 'unknown field "retriesSave"'],
    ]);
  });

  it('faultline validate says which kind of file it checked; exit 2 when invalid', async () => {
    const good = await runCli(['validate', 'experiments/payments-aborts.yaml']);
    expect([good.code, good.stdout]).to.deep.equal([0, 'experiments/payments-aborts.yaml: valid experiment payments-aborts (1 steps, 2 hypotheses, targets payments)\n']);
    const mesh = await runCli(['validate', 'demo/mesh.yaml']);
    expect(mesh.stdout).to.match(/valid \(version/);
    const file = join(await mkdtemp(join(tmpdir(), 'faultline-exp-')), 'bad.yaml');
    await writeFile(file, BASE.replace('rate: 10', 'rate: lots'));
    const bad = await runCli(['validate', file]);
    expect([bad.code, bad.stderr]).to.deep.equal([2, `FL_CONFIG_INVALID: 1 problem\n  ${file}:3:28 load.rate: expected number, received string\n`]);
  });
});

describe('faultline schedule --list', () => {
  it('lists the upcoming runs of the scheduled experiments, soonest first, inside their windows', async () => {
    const state = join(await mkdtemp(join(tmpdir(), 'faultline-sched-')), 'state.json');
    const run = await runCli(['schedule', 'experiments', '--list', '-n', '3', '--state', state]);
    expect(run.code, run.stderr).to.equal(0);
    const rows = run.stdout.trim().split('\n').map((l) => l.split(/\s+/));
    expect(rows.map((r) => r[1])).to.deep.equal(['payments-latency', 'payments-latency', 'payments-latency']);
    const times = rows.map((r) => new Date(r[0]!));
    // Tuesdays at 10:00 in Berlin (09:00 UTC in winter, 08:00 in summer), a week apart.
    expect(times.every((t) => t.getUTCDay() === 2 && [8, 9].includes(t.getUTCHours()))).to.equal(true);
    expect(times[1]!.getTime() - times[0]!.getTime()).to.be.within(7 * 86_400_000 - 3_600_000, 7 * 86_400_000 + 3_600_000);
  });
});

describe('faultline run --dry-run', () => {
  it('prints each fault\'s blast radius — services, endpoints, share of traffic — and injects nothing', async () => {
    const run = await runCli(['run', 'experiments/payments-aborts.yaml', '--dry-run', '--seed', '5']);
    expect(run.code, run.stderr).to.equal(0);
    expect(run.stdout).to.include('dry run of payments-aborts (payments-aborts.yaml), seed 5: nothing injected');
    expect(run.stdout).to.include('endpoints 3: payments 127.0.0.1:17031; payments 127.0.0.1:17032; payments 127.0.0.1:17033');
    expect(run.stdout).to.include('traffic   up to 5.00 % of matching requests (the experiment cohort is 50 % of the load)');
  });

  it('lists the instances a fault on chosen endpoints would hurt: those the run\'s seed chooses', async () => {
    const v1 = [{ address: '127.0.0.1:17031', labels: { version: 'v1' } }, { address: '127.0.0.1:17032', labels: { version: 'v1' } }, { address: '127.0.0.1:17033', labels: { version: 'v2' } }];
    for (const seed of [2, 5]) {
      const [chosen] = [...select({ labels: { version: 'v1' }, count: 1 }, seed, v1)];
      const run = await runCli(['run', 'experiments/payments-bad-instance.yaml', '--dry-run', '--seed', String(seed)]);
      expect(run.code, run.stderr).to.equal(0);
      expect(run.stdout).to.include(`endpoints 1 (chosen by seed ${seed}): payments ${chosen}`);
    }
  });
});
