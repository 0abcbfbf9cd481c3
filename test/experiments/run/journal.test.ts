// The run's journal as kept: a new run's journal lists every fault before any is put; each phase and
// note is on disk as soon as it is written (what a killed runner leaves); finish marks it complete.
import { expect } from 'chai';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Journal } from '../../../src/experiments/journal.ts';
import { RunJournal } from '../../../src/experiments/run/journal.ts';
import { experiment } from './experiment.ts';
import { FakeClock } from '../../helpers/fake-clock.ts';

describe('run journal', () => {
  let dir: string;
  const shown: string[] = [];
  const log = { phase: (name: string) => void shown.push(`phase ${name}`), line: (text: string) => void shown.push(text) };

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'faultline-journal-'));
    shown.length = 0;
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const saved = async (): Promise<Journal> => JSON.parse(await readFile(join(dir, 'journal.json'), 'utf8')) as Journal;

  it('starts running, with every fault of the method listed and none put', async () => {
    const clock = new FakeClock();
    const journal = RunJournal.forRun(dir, experiment(), '/x/parts.yaml', 7, log, clock);
    await journal.save();
    const data = await saved();
    expect(data).to.include({ experiment: 'parts', file: '/x/parts.yaml', seed: 7, status: 'running', outcome: null, target: 'control http://127.0.0.1:1', startedAt: new Date(clock.now()).toISOString() });
    expect(data.faults).to.have.length(1);
    expect(data.faults[0]).to.include({ id: 'front-errors', injectedAt: null, removedAt: null, renewals: 0 });
    expect(data.faults[0]!.spec).to.include({ description: 'experiment:parts', seed: 7 });
  });

  it('has each phase and note on disk once written, the previous phase ended when the next begins', async () => {
    const clock = new FakeClock();
    const journal = RunJournal.forRun(dir, experiment(), 'parts.yaml', 1, log, clock);
    await journal.phase('preflight');
    await journal.note('preflight: 1 sidecar ready');
    expect((await saved()).phases).to.deep.equal([{ name: 'preflight', startedAt: new Date(clock.now()).toISOString(), endedAt: null, outcome: null, notes: ['preflight: 1 sidecar ready'] }]);
    await clock.advance(2_000);
    journal.conclude('ok');
    await journal.phase('warm-up');
    const phases = (await saved()).phases;
    expect(phases.map((p) => [p.name, p.outcome, p.endedAt])).to.deep.equal([['preflight', 'ok', new Date(clock.now()).toISOString()], ['warm-up', null, null]]);
    expect(shown).to.deep.equal(['phase preflight', 'preflight: 1 sidecar ready', 'phase warm-up']);
    // Written atomically: nothing but the journal in the directory, no temporary file left behind.
    expect(await readdir(dir)).to.deep.equal(['journal.json']);
  });

  it('finish marks it complete with its outcome and ends the last phase', async () => {
    const clock = new FakeClock();
    const journal = RunJournal.forRun(dir, experiment(), 'parts.yaml', 1, log, clock);
    await journal.phase('recovery');
    await clock.advance(500);
    await journal.finish('passed');
    const data = await saved();
    expect(data).to.include({ status: 'complete', outcome: 'passed', finishedAt: new Date(clock.now()).toISOString() });
    expect(data.phases.at(-1)!.endedAt).to.equal(data.finishedAt);
  });
});
