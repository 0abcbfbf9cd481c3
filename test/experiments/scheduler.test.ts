// The game-day scheduler on a virtual clock: the schedule schema and its allowed times (windows in a
// time zone, blackouts, windows across midnight), runs at cron times, overlap (skip, wait, disjoint
// targets), and restarts on the same state file (nothing repeated, missed runs within the grace run
// once, a run cut by a crash recorded as an error). No test waits in real time.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { allowedAt, ScheduleSpec, upcoming } from '../../src/experiments/schedule.ts';
import {
  MISSED_DOWN,
  STOPPED_BEFORE_START,
  STOPPED_DURING_RUN,
  Scheduler,
  type Clock,
  type RunRecord,
  type ScheduledExperiment,
  type SchedulerState,
} from '../../src/experiments/scheduler.ts';

interface Sleeper {
  readonly at: number;
  readonly owner: 'scheduler' | 'run';
  wake(): void;
}

/** Virtual time: sleepers wake, in time order, only when a test moves the time past them. */
class FakeClock implements Clock {
  #now: number;
  readonly #sleepers = new Set<Sleeper>();

  constructor(start: string) {
    this.#now = Date.parse(start);
  }

  now(): Date {
    return new Date(this.#now);
  }

  sleepUntil(at: Date, signal: AbortSignal): Promise<void> {
    return this.#sleep(at.getTime(), 'scheduler', signal);
  }

  /** What a fake experiment run waits on: `ms` of virtual time. */
  delay(ms: number): Promise<void> {
    return this.#sleep(this.#now + ms, 'run');
  }

  /** Scheduler loops asleep (for a next run or a maxWait). */
  get sleeping(): number {
    return [...this.#sleepers].filter((s) => s.owner === 'scheduler').length;
  }

  /** Moves the time to `at`, waking each sleeper on the way at its own time and letting all settle. */
  async advanceTo(at: string, settle: () => Promise<void>): Promise<void> {
    const target = Date.parse(at);
    await settle();
    for (;;) {
      const due = [...this.#sleepers].filter((s) => s.at <= target).sort((a, b) => a.at - b.at);
      if (due.length === 0) break;
      const first = due[0]!.at;
      this.#now = Math.max(this.#now, first);
      for (const sleeper of due.filter((s) => s.at === first)) sleeper.wake();
      await settle();
    }
    this.#now = Math.max(this.#now, target);
  }

  #sleep(at: number, owner: Sleeper['owner'], signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal?.aborted || at <= this.#now) return resolve();
      const sleeper: Sleeper = {
        at,
        owner,
        wake: () => {
          this.#sleepers.delete(sleeper);
          signal?.removeEventListener('abort', sleeper.wake);
          resolve();
        },
      };
      signal?.addEventListener('abort', sleeper.wake);
      this.#sleepers.add(sleeper);
    });
  }
}

interface Call {
  name: string;
  scheduledFor: string;
  startedAt: string;
}

interface Harness {
  scheduler: Scheduler;
  clock: FakeClock;
  calls: Call[];
  logs: string[];
  /** Runs that started while another on a shared target was running (must stay empty). */
  clashes: string[];
  maxConcurrent: number;
  settle(): Promise<void>;
  advanceTo(at: string): Promise<void>;
  stop(): Promise<void>;
}

interface Behaviour {
  /** Virtual run time per experiment (default 0). */
  durations?: Record<string, number>;
  throws?: Record<string, string>;
}

const MIN = 60_000;

function experiment(name: string, targets: string[], schedule: Record<string, unknown>): ScheduledExperiment {
  return { name, targets, schedule: ScheduleSpec.parse(schedule) };
}

async function harness(experiments: ScheduledExperiment[], stateFile: string, start: string, behaviour: Behaviour = {}): Promise<Harness> {
  const clock = new FakeClock(start);
  const calls: Call[] = [];
  const logs: string[] = [];
  const clashes: string[] = [];
  const running = new Set<ScheduledExperiment>();
  let maxConcurrent = 0;
  const scheduler = await Scheduler.open({
    experiments,
    stateFile,
    clock,
    log: (line) => logs.push(line),
    run: async (e, scheduledFor) => {
      calls.push({ name: e.name, scheduledFor: scheduledFor.toISOString(), startedAt: clock.now().toISOString() });
      for (const other of running) if (other.targets.some((t) => e.targets.includes(t))) clashes.push(`${e.name} with ${other.name}`);
      running.add(e);
      maxConcurrent = Math.max(maxConcurrent, running.size);
      try {
        const ms = behaviour.durations?.[e.name] ?? 0;
        if (ms > 0) await clock.delay(ms);
        const message = behaviour.throws?.[e.name];
        if (message !== undefined) throw new Error(message);
        return { outcome: 'passed' };
      } finally {
        running.delete(e);
      }
    },
  });
  /**
   * Every scheduler loop is blocked: asleep on the clock, or inside a run. Checked after a turn of
   * the event loop at least, so that what was just woken has run up to its next wait or I/O.
   */
  const settle = async (): Promise<void> => {
    const deadline = Date.now() + 5000;
    do {
      if (Date.now() > deadline) throw new Error(`the scheduler did not settle: ${clock.sleeping} asleep, ${running.size} running\n${logs.join('\n')}`);
      await new Promise((resolve) => setImmediate(resolve));
    } while (clock.sleeping + running.size < experiments.length);
  };
  return {
    scheduler,
    clock,
    calls,
    logs,
    clashes,
    get maxConcurrent() {
      return maxConcurrent;
    },
    settle,
    advanceTo: (at) => clock.advanceTo(at, settle),
    stop: () => scheduler.stop(),
  };
}

const iso = (dates: Date[]): string[] => dates.map((d) => d.toISOString());
const of = (state: SchedulerState, name: string): RunRecord[] => state.history.filter((r) => r.name === name);

function issues(input: unknown): { path: string; message: string }[] {
  const result = ScheduleSpec.safeParse(input);
  expect(result.success, 'expected the schedule to be refused').to.equal(false);
  return result.error!.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
}

describe('experiments/schedule', () => {
  it('fills in the defaults', () => {
    const schedule = ScheduleSpec.parse({ cron: '0 9 * * mon' });
    expect(schedule).to.deep.equal({ cron: '0 9 * * mon', timezone: 'UTC', windows: [], blackouts: [], overlap: 'skip', maxWait: 15 * MIN });
    expect(ScheduleSpec.parse({ cron: '30 0 9 * * *', maxWait: '90s', overlap: 'wait' }).maxWait).to.equal(90_000);
  });

  it('refuses a bad cron expression with croner\'s message', () => {
    const [issue, ...rest] = issues({ cron: '61 * * * *' });
    expect(rest).to.deep.equal([]);
    expect(issue!.path).to.equal('cron');
    expect(issue!.message).to.match(/^not a valid cron expression: .*minute/);
    expect(issues({ cron: 'every day' })[0]!.message).to.match(/^not a valid cron expression: .*five, six/);
    expect(issues({ cron: '0 0 0 1 1 * 2030' })[0]!.path).to.equal('cron');
    expect(issues({ cron: '0 0 30 2 *' })).to.deep.equal([{ path: 'cron', message: 'the cron expression never fires' }]);
  });

  it('refuses an unknown time zone', () => {
    const [issue] = issues({ cron: '0 * * * *', timezone: 'Europe/Atlantis' });
    expect(issue!.path).to.equal('timezone');
    expect(issue!.message).to.match(/^not a known IANA time zone \(.*Europe\/Atlantis/);
  });

  it('refuses bad window times and days', () => {
    expect(issues({ cron: '0 * * * *', windows: [{ from: '9:00', to: '17:00' }] })).to.deep.equal([
      { path: 'windows.0.from', message: 'expected a time "HH:MM", from 00:00 to 23:59' },
    ]);
    expect(issues({ cron: '0 * * * *', windows: [{ from: '09:00', to: '24:30' }] })).to.deep.equal([
      { path: 'windows.0.to', message: 'expected a time "HH:MM", from 00:00 to 24:00' },
    ]);
    expect(issues({ cron: '0 * * * *', windows: [{ from: '09:00', to: '09:00' }] })[0]!.path).to.equal('windows.0.to');
    expect(issues({ cron: '0 * * * *', windows: [{ days: ['monday'], from: '09:00', to: '10:00' }] })[0]!.path).to.equal('windows.0.days.0');
    expect(issues({ cron: '0 * * * *', windows: [{ days: [], from: '09:00', to: '10:00' }] })[0]!.path).to.equal('windows.0.days');
  });

  it('refuses a blackout that ends before it starts, or has no offset', () => {
    expect(issues({ cron: '0 * * * *', blackouts: [{ from: '2025-03-02T10:00:00Z', to: '2025-03-02T09:00:00Z' }] })).to.deep.equal([
      { path: 'blackouts.0.to', message: 'to must be after from' },
    ]);
    expect(issues({ cron: '0 * * * *', blackouts: [{ from: '2025-03-02T10:00:00', to: '2025-03-02T12:00:00Z' }] })[0]!.path).to.equal('blackouts.0.from');
  });

  it('upcoming(): hourly within mon–fri 09:00–17:00 in Europe/Berlin skips nights and the weekend, across a DST change', () => {
    const schedule = ScheduleSpec.parse({
      cron: '0 * * * *',
      timezone: 'Europe/Berlin',
      windows: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '09:00', to: '17:00' }],
    });
    // Friday 28 March 2025, 16:30 in Berlin (CET, +01:00); summer time starts on Sunday 30 March.
    const times = upcoming(schedule, new Date('2025-03-28T15:30:00Z'), 10);
    expect(iso(times)).to.deep.equal([
      // Monday 31 March, 09:00 to 16:00 CEST (+02:00): 17:00 is the end of the window, not in it.
      ...[7, 8, 9, 10, 11, 12, 13, 14].map((h) => `2025-03-31T${String(h).padStart(2, '0')}:00:00.000Z`),
      '2025-04-01T07:00:00.000Z',
      '2025-04-01T08:00:00.000Z',
    ]);
    expect(allowedAt(schedule, new Date('2025-03-31T07:00:00Z'))).to.equal(true);
    expect(allowedAt(schedule, new Date('2025-03-31T06:59:00Z'))).to.equal(false);
    expect(allowedAt(schedule, new Date('2025-03-29T10:00:00Z'))).to.equal(false);
  });

  it('upcoming(): skips cron times inside blackouts (from inclusive, to exclusive)', () => {
    const schedule = ScheduleSpec.parse({
      cron: '0 12 * * *',
      blackouts: [
        { from: '2025-03-02T00:00:00+01:00', to: '2025-03-04T12:00:00Z' },
        { from: '2025-03-05T12:00:00Z', to: '2025-03-05T12:00:01Z' },
      ],
    });
    expect(iso(upcoming(schedule, new Date('2025-03-01T00:00:00Z'), 3))).to.deep.equal([
      '2025-03-01T12:00:00.000Z',
      '2025-03-04T12:00:00.000Z',
      '2025-03-06T12:00:00.000Z',
    ]);
    expect(allowedAt(schedule, new Date('2025-03-01T23:00:00Z'))).to.equal(false);
    expect(allowedAt(schedule, new Date('2025-03-01T22:59:59Z'))).to.equal(true);
  });

  it('upcoming(): a window spanning midnight belongs to the day it starts on', () => {
    const fridayNights = ScheduleSpec.parse({ cron: '0 * * * *', windows: [{ days: ['fri'], from: '22:00', to: '02:00' }] });
    // Monday 3 March 2025.
    expect(iso(upcoming(fridayNights, new Date('2025-03-03T00:00:00Z'), 5))).to.deep.equal([
      '2025-03-07T22:00:00.000Z',
      '2025-03-07T23:00:00.000Z',
      '2025-03-08T00:00:00.000Z',
      '2025-03-08T01:00:00.000Z',
      '2025-03-14T22:00:00.000Z',
    ]);
    const nights = ScheduleSpec.parse({ cron: '30 * * * *', windows: [{ from: '23:00', to: '01:00' }] });
    expect(iso(upcoming(nights, new Date('2025-03-03T12:00:00Z'), 3))).to.deep.equal([
      '2025-03-03T23:30:00.000Z',
      '2025-03-04T00:30:00.000Z',
      '2025-03-04T23:30:00.000Z',
    ]);
  });

  it('upcoming(): a cron that never meets its windows gives nothing, quickly', () => {
    const schedule = ScheduleSpec.parse({ cron: '* * * * * sun', windows: [{ days: ['mon'], from: '09:00', to: '10:00' }] });
    const started = performance.now();
    expect(upcoming(schedule, new Date('2025-03-03T00:00:00Z'), 1)).to.deep.equal([]);
    expect(performance.now() - started).to.be.below(2000);
  });
});

describe('experiments/scheduler', () => {
  let dir: string;
  let stateFile: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'faultline-scheduler-'));
    stateFile = join(dir, 'state', 'schedule.json');
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const hourly = (name: string, targets: string[], extra: Record<string, unknown> = {}): ScheduledExperiment =>
    experiment(name, targets, { cron: '0 * * * *', ...extra });

  it('runs an experiment at its cron times', async () => {
    const h = await harness([hourly('payments-latency', ['payments'])], stateFile, '2025-03-03T09:30:00Z');
    h.scheduler.start();
    await h.advanceTo('2025-03-03T12:30:00Z');
    expect(h.calls).to.deep.equal(
      ['10', '11', '12'].map((hour) => ({ name: 'payments-latency', scheduledFor: `2025-03-03T${hour}:00:00.000Z`, startedAt: `2025-03-03T${hour}:00:00.000Z` })),
    );
    const state = h.scheduler.state;
    expect(state.history.map((r) => [r.scheduledFor, r.startedAt, r.finishedAt, r.outcome])).to.deep.equal(
      ['10', '11', '12'].map((hour) => [`2025-03-03T${hour}:00:00.000Z`, `2025-03-03T${hour}:00:00.000Z`, `2025-03-03T${hour}:00:00.000Z`, 'passed']),
    );
    expect(state.experiments['payments-latency']!.nextRun).to.equal('2025-03-03T13:00:00.000Z');
    expect(h.logs).to.include('payments-latency: due (scheduled for 2025-03-03T10:00:00.000Z)');
    expect(h.logs).to.include('payments-latency: finished: passed');
    await h.stop();
    const onDisk = JSON.parse(await readFile(stateFile, 'utf8')) as SchedulerState;
    expect(onDisk).to.deep.equal(h.scheduler.state);
  });

  it('records a run whose `run` throws as an error with its message', async () => {
    const h = await harness([hourly('bad', ['payments'])], stateFile, '2025-03-03T09:30:00Z', { throws: { bad: 'no such fault: x' } });
    h.scheduler.start();
    await h.advanceTo('2025-03-03T10:00:00Z');
    await h.stop();
    expect(h.scheduler.state.experiments['bad']!.lastRun).to.include({ outcome: 'error', reason: 'no such fault: x', finishedAt: '2025-03-03T10:00:00.000Z' });
  });

  describe('overlap', () => {
    // db-latency runs 10:00–10:45 on orders and db; db-partition (on db) is due at 10:30.
    const blocking = (): ScheduledExperiment => experiment('db-latency', ['orders', 'db'], { cron: '0 10 * * *' });
    const durations = { 'db-latency': 45 * MIN };

    it('skip: a run due while an overlapping experiment runs is recorded skipped, naming it', async () => {
      const partition = experiment('db-partition', ['db'], { cron: '30 * * * *', overlap: 'skip' });
      const h = await harness([blocking(), partition], stateFile, '2025-03-03T09:50:00Z', { durations });
      h.scheduler.start();
      await h.advanceTo('2025-03-03T11:40:00Z');
      await h.stop();
      expect(h.calls.map((c) => `${c.name}@${c.startedAt}`)).to.deep.equal(['db-latency@2025-03-03T10:00:00.000Z', 'db-partition@2025-03-03T11:30:00.000Z']);
      expect(of(h.scheduler.state, 'db-partition')).to.deep.equal([
        { name: 'db-partition', scheduledFor: '2025-03-03T10:30:00.000Z', startedAt: null, finishedAt: null, outcome: 'skipped', reason: 'db-latency was running on db' },
        { name: 'db-partition', scheduledFor: '2025-03-03T11:30:00.000Z', startedAt: '2025-03-03T11:30:00.000Z', finishedAt: '2025-03-03T11:30:00.000Z', outcome: 'passed' },
      ]);
      expect(h.logs).to.include('db-partition: skipped the run scheduled for 2025-03-03T10:30:00.000Z: db-latency was running on db');
      expect(h.clashes).to.deep.equal([]);
    });

    it('wait: a run due while an overlapping experiment runs starts when it finishes', async () => {
      const partition = experiment('db-partition', ['db'], { cron: '30 10 * * *', overlap: 'wait', maxWait: '30m' });
      const h = await harness([blocking(), partition], stateFile, '2025-03-03T09:50:00Z', { durations });
      h.scheduler.start();
      await h.advanceTo('2025-03-03T10:40:00Z');
      expect(h.scheduler.state.experiments['db-partition']!.lastRun).to.include({ startedAt: null, finishedAt: null, reason: 'waiting for db-latency' });
      await h.advanceTo('2025-03-03T11:00:00Z');
      await h.stop();
      expect(h.calls).to.deep.equal([
        { name: 'db-latency', scheduledFor: '2025-03-03T10:00:00.000Z', startedAt: '2025-03-03T10:00:00.000Z' },
        { name: 'db-partition', scheduledFor: '2025-03-03T10:30:00.000Z', startedAt: '2025-03-03T10:45:00.000Z' },
      ]);
      expect(h.scheduler.state.experiments['db-partition']!.lastRun).to.deep.equal({
        name: 'db-partition',
        scheduledFor: '2025-03-03T10:30:00.000Z',
        startedAt: '2025-03-03T10:45:00.000Z',
        finishedAt: '2025-03-03T10:45:00.000Z',
        outcome: 'passed',
      });
      expect(h.logs.some((l) => l.startsWith('db-partition: waiting for db-latency to finish (it runs on db)'))).to.equal(true);
      expect(h.clashes).to.deep.equal([]);
    });

    it('wait: gives up after maxWait and records the run skipped', async () => {
      const partition = experiment('db-partition', ['db'], { cron: '30 10 * * *', overlap: 'wait', maxWait: '10m' });
      const h = await harness([blocking(), partition], stateFile, '2025-03-03T09:50:00Z', { durations });
      h.scheduler.start();
      await h.advanceTo('2025-03-03T11:00:00Z');
      await h.stop();
      expect(h.calls.map((c) => c.name)).to.deep.equal(['db-latency']);
      expect(h.scheduler.state.experiments['db-partition']!.lastRun).to.deep.equal({
        name: 'db-partition',
        scheduledFor: '2025-03-03T10:30:00.000Z',
        startedAt: null,
        finishedAt: null,
        outcome: 'skipped',
        reason: 'waited 10 min (maxWait) for db-latency, which was still running',
      });
    });

    it('experiments on disjoint targets run at the same time', async () => {
      const a = experiment('payments-latency', ['payments'], { cron: '0 10 * * *', overlap: 'wait' });
      const b = experiment('inventory-abort', ['inventory'], { cron: '0 10 * * *', overlap: 'wait' });
      const h = await harness([a, b], stateFile, '2025-03-03T09:50:00Z', { durations: { 'payments-latency': 30 * MIN, 'inventory-abort': 30 * MIN } });
      h.scheduler.start();
      await h.advanceTo('2025-03-03T10:15:00Z');
      expect(h.maxConcurrent).to.equal(2);
      await h.advanceTo('2025-03-03T10:30:00Z');
      await h.stop();
      expect(h.calls.map((c) => c.startedAt)).to.deep.equal(['2025-03-03T10:00:00.000Z', '2025-03-03T10:00:00.000Z']);
      expect(h.scheduler.state.history.map((r) => r.outcome)).to.deep.equal(['passed', 'passed']);
    });
  });

  describe('restarts', () => {
    const exp = (): ScheduledExperiment => hourly('payments-latency', ['payments']);

    it('does not repeat a run that already happened', async () => {
      const first = await harness([exp()], stateFile, '2025-03-03T09:30:00Z');
      first.scheduler.start();
      await first.advanceTo('2025-03-03T10:30:00Z');
      await first.stop();
      const second = await harness([exp()], stateFile, '2025-03-03T10:30:00Z');
      expect(second.scheduler.state.experiments['payments-latency']).to.deep.include({ nextRun: '2025-03-03T11:00:00.000Z' });
      second.scheduler.start();
      await second.advanceTo('2025-03-03T11:30:00Z');
      await second.stop();
      expect(second.calls.map((c) => c.scheduledFor)).to.deep.equal(['2025-03-03T11:00:00.000Z']);
      expect(second.scheduler.state.history.map((r) => [r.scheduledFor, r.outcome])).to.deep.equal([
        ['2025-03-03T10:00:00.000Z', 'passed'],
        ['2025-03-03T11:00:00.000Z', 'passed'],
      ]);
    });

    it('runs the latest missed time once when it is within the grace, and records older ones skipped', async () => {
      const first = await harness([exp()], stateFile, '2025-03-03T09:30:00Z');
      first.scheduler.start();
      await first.advanceTo('2025-03-03T10:10:00Z');
      await first.stop();
      // Down from 10:10 to 12:03: 11:00 and 12:00 were missed; 12:00 is 3 minutes ago.
      const second = await harness([exp()], stateFile, '2025-03-03T12:03:00Z');
      second.scheduler.start();
      await second.settle();
      await second.stop();
      expect(second.calls).to.deep.equal([{ name: 'payments-latency', scheduledFor: '2025-03-03T12:00:00.000Z', startedAt: '2025-03-03T12:03:00.000Z' }]);
      expect(second.scheduler.state.history.map((r) => [r.scheduledFor, r.startedAt, r.outcome, r.reason])).to.deep.equal([
        ['2025-03-03T10:00:00.000Z', '2025-03-03T10:00:00.000Z', 'passed', undefined],
        ['2025-03-03T11:00:00.000Z', null, 'skipped', MISSED_DOWN],
        ['2025-03-03T12:00:00.000Z', '2025-03-03T12:03:00.000Z', 'passed', undefined],
      ]);
      // Restarted again a minute later: the late run is not run a second time.
      const third = await harness([exp()], stateFile, '2025-03-03T12:04:00Z');
      third.scheduler.start();
      await third.advanceTo('2025-03-03T13:00:00Z');
      await third.stop();
      expect(third.calls.map((c) => c.scheduledFor)).to.deep.equal(['2025-03-03T13:00:00.000Z']);
      expect(third.scheduler.state.history).to.have.length(4);
    });

    it('records a missed time older than the grace skipped, and goes on to the next', async () => {
      const first = await harness([exp()], stateFile, '2025-03-03T09:30:00Z');
      first.scheduler.start();
      await first.advanceTo('2025-03-03T10:10:00Z');
      await first.stop();
      const second = await harness([exp()], stateFile, '2025-03-03T12:10:00Z');
      second.scheduler.start();
      await second.settle();
      expect(second.calls).to.deep.equal([]);
      expect(second.scheduler.state.experiments['payments-latency']!.nextRun).to.equal('2025-03-03T13:00:00.000Z');
      await second.advanceTo('2025-03-03T13:00:00Z');
      await second.stop();
      expect(second.scheduler.state.history.map((r) => [r.scheduledFor, r.outcome, r.reason])).to.deep.equal([
        ['2025-03-03T10:00:00.000Z', 'passed', undefined],
        ['2025-03-03T11:00:00.000Z', 'skipped', MISSED_DOWN],
        ['2025-03-03T12:00:00.000Z', 'skipped', MISSED_DOWN],
        ['2025-03-03T13:00:00.000Z', 'passed', undefined],
      ]);
      expect(second.logs).to.include(`payments-latency: skipped the run scheduled for 2025-03-03T12:00:00.000Z: ${MISSED_DOWN}`);
    });

    it('marks a run the scheduler died during as an error, and does not repeat it', async () => {
      const crashed = await harness([exp()], stateFile, '2025-03-03T09:30:00Z', { durations: { 'payments-latency': 2 * 60 * MIN } });
      crashed.scheduler.start();
      await crashed.advanceTo('2025-03-03T10:30:00Z');
      // Mid-run, the file says it started and has not finished. The scheduler is then abandoned, as in a crash.
      const midRun = JSON.parse(await readFile(stateFile, 'utf8')) as SchedulerState;
      expect(midRun.experiments['payments-latency']!.lastRun).to.include({ startedAt: '2025-03-03T10:00:00.000Z', finishedAt: null, reason: 'running' });
      const next = await harness([exp()], stateFile, '2025-03-03T10:40:00Z');
      const expected = { scheduledFor: '2025-03-03T10:00:00.000Z', startedAt: '2025-03-03T10:00:00.000Z', finishedAt: null, outcome: 'error', reason: STOPPED_DURING_RUN };
      expect(next.scheduler.state.experiments['payments-latency']!.lastRun).to.include(expected);
      expect((JSON.parse(await readFile(stateFile, 'utf8')) as SchedulerState).history[0]).to.include(expected);
      expect(next.logs).to.deep.equal([`payments-latency: the run scheduled for 2025-03-03T10:00:00.000Z never finished: error (${STOPPED_DURING_RUN})`]);
      next.scheduler.start();
      await next.advanceTo('2025-03-03T11:00:00Z');
      await next.stop();
      expect(next.calls.map((c) => c.scheduledFor)).to.deep.equal(['2025-03-03T11:00:00.000Z']);
    });

    it('closes the open records of a state file left by a crash: started → error, due → skipped', async () => {
      const open = (name: string, startedAt: string | null): RunRecord => ({
        name,
        scheduledFor: '2025-03-03T10:00:00.000Z',
        startedAt,
        finishedAt: null,
        outcome: 'inconclusive',
        reason: startedAt ? 'running' : 'waiting for a',
      });
      const a = open('a', '2025-03-03T10:00:00.000Z');
      const b = open('b', null);
      const file: SchedulerState = { experiments: { a: { lastRun: a, nextRun: null }, b: { lastRun: b, nextRun: null } }, history: [a, b] };
      await writeFile(join(dir, 'crashed.json'), JSON.stringify(file));
      const h = await harness([hourly('a', ['x']), hourly('b', ['x'])], join(dir, 'crashed.json'), '2025-03-03T10:20:00Z');
      const state = h.scheduler.state;
      expect(state.history.map((r) => [r.name, r.outcome, r.reason])).to.deep.equal([
        ['a', 'error', STOPPED_DURING_RUN],
        ['b', 'skipped', STOPPED_BEFORE_START],
      ]);
      expect(state.experiments['a']!.lastRun).to.deep.equal(state.history[0]);
      expect(state.experiments['b']!.nextRun).to.equal('2025-03-03T11:00:00.000Z');
    });

    it('refuses a state file that is not valid, rather than starting over', async () => {
      await writeFile(join(dir, 'bad.json'), JSON.stringify({ experiments: {}, history: [{ name: 'a' }] }));
      const error = await harness([exp()], join(dir, 'bad.json'), '2025-03-03T10:00:00Z').then(
        () => undefined,
        (e: unknown) => e as Error,
      );
      expect(error?.message).to.match(/state file .*bad\.json is not valid/);
    });
  });

  it('upcoming(count) lists the runs of every experiment, soonest first', async () => {
    const schedule = (cron: string): Record<string, unknown> => ({ cron });
    const h = await harness(
      [
        experiment('every-two-hours', ['a'], schedule('0 */2 * * *')),
        experiment('half-past', ['b'], schedule('30 * * * *')),
        experiment('daily', ['c'], schedule('15 10 * * *')),
      ],
      stateFile,
      '2025-03-03T09:10:00Z',
    );
    expect(h.scheduler.upcoming(6).map(({ name, at }) => `${at.toISOString().slice(11, 16)} ${name}`)).to.deep.equal([
      '09:30 half-past',
      '10:00 every-two-hours',
      '10:15 daily',
      '10:30 half-past',
      '11:30 half-past',
      '12:00 every-two-hours',
    ]);
    expect(h.scheduler.upcoming(0)).to.deep.equal([]);
  });
});
