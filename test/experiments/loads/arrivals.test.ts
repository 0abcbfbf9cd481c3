// The open model's schedule on a virtual clock: arrival i is due at t0 + i / rate however late the
// timers fire (no drift), a late wake starts every arrival already due with its own due time, the
// count is the rate × the duration, and a stop ends it with its span.
import { expect } from 'chai';
import { Arrivals } from '../../../src/experiments/loads/arrivals.ts';
import { FakeClock } from '../../helpers/fake-clock.ts';

/** A clock whose timers all fire `lateMs` after they were asked to: a busy event loop. */
class LateClock extends FakeClock {
  readonly lateMs: number;

  constructor(lateMs: number) {
    super();
    this.lateMs = lateMs;
  }

  override after(ms: number, fn: () => void): () => void {
    return super.after(ms + this.lateMs, fn);
  }
}

function starts(clock: FakeClock, rate: number, durationMs: number) {
  const t0 = clock.now();
  const seen: { index: number; due: number; at: number }[] = [];
  const arrivals = new Arrivals(clock, rate, durationMs, (index, dueAt) => seen.push({ index, due: dueAt - t0, at: clock.now() - t0 }));
  const span = arrivals.run();
  return { seen, span, arrivals, t0 };
}

describe('open-model arrivals', () => {
  it('starts arrival i at i / rate from the start, rate × duration of them, then ends', async () => {
    const clock = new FakeClock();
    const { seen, span, t0 } = starts(clock, 8, 1_000);
    await clock.advance(2_000);
    expect(seen.map((s) => s.due)).to.deep.equal([0, 125, 250, 375, 500, 625, 750, 875]);
    expect(seen.map((s) => s.at)).to.deep.equal([0, 125, 250, 375, 500, 625, 750, 875]);
    expect(await span).to.deep.equal({ from: t0, to: t0 + 1_000 });
    expect(clock.pending).to.equal(0);
  });

  it('does not drift when every timer fires late: due times stay on the grid, none is lost', async () => {
    const clock = new LateClock(7);
    const { seen } = starts(clock, 100, 10_000);
    await clock.advance(5_000);
    // Chained timers 7 ms late would have made about 294 starts by now; the schedule makes one per 10 ms.
    expect(seen.length).to.be.within(499, 501);
    seen.forEach((s, i) => {
      expect(s.index).to.equal(i);
      expect(s.due).to.be.closeTo(i * 10, 1e-9);
      expect(s.at - s.due).to.be.within(0, 10 + clock.lateMs);
    });
  });

  it('starts every overdue arrival at once after a long wake-up, each with its own due time', async () => {
    const clock = new LateClock(300);
    const { seen } = starts(clock, 20, 1_000);
    await clock.advance(301);
    // The first wake (0 ms) is immediate; the next, asked for at 50 ms, comes at 350 ms.
    expect(seen.map((s) => s.due)).to.deep.equal([0]);
    await clock.advance(50);
    expect(seen.map((s) => s.due)).to.deep.equal([0, 50, 100, 150, 200, 250, 300, 350]);
    expect(new Set(seen.slice(1).map((s) => s.at))).to.deep.equal(new Set([350]));
  });

  it('stops: nothing starts after, and the span ends at the stop', async () => {
    const clock = new FakeClock();
    const { seen, span, arrivals, t0 } = starts(clock, 10, 10_000);
    await clock.advance(450);
    arrivals.stop();
    await clock.advance(5_000);
    expect(seen.length).to.equal(5);
    expect(await span).to.deep.equal({ from: t0, to: t0 + 450 });
    expect(clock.pending).to.equal(0);
  });
});
