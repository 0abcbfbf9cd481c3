// Halt watching on a virtual clock: a condition holds only over its trailing window and with enough
// samples; the watch checks every second and wakes the method phase at once; the first reason stays.
import { expect } from 'chai';
import type { LoadRecord } from '../../../src/experiments/load.ts';
import { HaltWatch, haltReason, haltStandings } from '../../../src/experiments/run/halt.ts';
import type { Recording } from '../../../src/experiments/verdicts.ts';
import { experiment } from './experiment.ts';
import { FakeClock } from '../../helpers/fake-clock.ts';

const halting = experiment({ halt: [{ availability: { service: 'front', below: 50, for: '2s' } }, { latency: { service: 'front', percentile: 99, above: '100ms', for: '2s' } }] });

function recording(load: LoadRecord[]): Recording {
  return { entry: 'front', load, events: [], faults: [], rollbackAt: null, cohort: false };
}

/** `n` responses spread over [from, from + 1 s). */
function responses(from: number, n: number, status: number, latencyMs = 5): LoadRecord[] {
  return Array.from({ length: n }, (_, i) => ({ t: from + (i * 1_000) / n, latencyMs, status, cohort: 'all' }));
}

describe('halt conditions', () => {
  const now = Date.parse('2026-01-01T00:00:10Z');

  it('availability below its bound over the trailing window halts, naming service, value and window', () => {
    const load = [...responses(now - 2_000, 10, 503), ...responses(now - 1_000, 10, 200)];
    expect(haltReason(halting, recording(load), now)).to.equal(undefined);
    load.push(...responses(now - 1_000, 5, 0));
    expect(haltReason(halting, recording(load), now)).to.equal('availability of front 40.0 % < 50 % for 2000 ms');
  });

  it('failures older than the window do not count', () => {
    const load = [...responses(now - 5_000, 50, 503), ...responses(now - 1_000, 20, 200)];
    expect(haltReason(halting, recording(load), now)).to.equal(undefined);
  });

  it('fewer than 10 samples in the window say nothing', () => {
    expect(haltReason(halting, recording(responses(now - 1_000, 9, 503)), now)).to.equal(undefined);
  });

  it('stands every condition as the console shows it: value, limit, samples, holds — the one the halt is decided on', () => {
    const load = [...responses(now - 2_000, 10, 503, 50), ...responses(now - 1_000, 10, 200, 80)];
    expect(haltStandings(halting, recording(load), now)).to.deep.equal([
      { condition: 'availability of front below 50 % for 2000 ms', value: 50, limit: 50, kind: 'below', samples: 20, holds: false },
      { condition: 'p99 of front above 100 ms for 2000 ms', value: 80, limit: 100, kind: 'above', samples: 20, holds: false },
    ]);
    load.push(...responses(now - 1_000, 5, 0));
    const [availability] = haltStandings(halting, recording(load), now);
    expect(availability).to.deep.equal({ condition: 'availability of front 40.0 % < 50 % for 2000 ms', value: 40, limit: 50, kind: 'below', samples: 25, holds: true });
    expect(haltStandings(halting, recording([]), now).map((h) => [h.value, h.samples, h.holds])).to.deep.equal([[null, 0, false], [null, 0, false]]);
  });

  it('latency above its bound halts; errors (no answer) are not latencies', () => {
    // Counted as 0 ms, the errors would pull the median down to 0.
    const load = [...responses(now - 1_000, 20, 200, 150), ...responses(now - 1_000, 50, 0, 0)];
    const slow = experiment({ halt: [{ latency: { service: 'front', percentile: 50, above: '100ms', for: '2s' } }] });
    expect(haltReason(slow, recording(load), now)).to.equal('p50 of front 150 ms > 100 ms for 2000 ms');
  });
});

describe('halt watch', () => {
  it('checks every second and wakes the method at once, well before its end', async () => {
    const clock = new FakeClock();
    const load: LoadRecord[] = [];
    const watch = new HaltWatch(clock);
    watch.watch(halting, () => recording(load));
    let woke = false;
    const waiting = watch.wait(30_000).then(() => (woke = true));
    await clock.advance(3_000);
    expect([woke, watch.reason]).to.deep.equal([false, undefined]);
    load.push(...responses(clock.now(), 20, 503));
    await clock.advance(999);
    expect(woke).to.equal(false);
    await clock.advance(1);
    await waiting;
    expect(watch.reason).to.equal('availability of front 0.0 % < 50 % for 2000 ms');
    watch.stop();
  });

  it('keeps the first reason, and a wait begun after a halt ends at once', async () => {
    const clock = new FakeClock();
    const watch = new HaltWatch(clock);
    watch.halt('emergency stop by tester: drill');
    watch.halt('could not inject front-errors: refused');
    await watch.wait(60_000);
    expect(watch.reason).to.equal('emergency stop by tester: drill');
  });

  it('a wait with no halt lasts its whole time', async () => {
    const clock = new FakeClock();
    const watch = new HaltWatch(clock);
    let woke = false;
    const waiting = watch.wait(5_000).then(() => (woke = true));
    await clock.advance(4_999);
    expect(woke).to.equal(false);
    await clock.advance(1);
    await waiting;
  });
});
