// Fault leasing on a virtual clock: each step's fault put at its time and removed at its end, leases
// renewed every second with a ramp's percent moving up on the same tick, nothing put once halting, a
// fault that cannot be put halts the run, and stop() ends all of it.
import { expect } from 'chai';
import type { Journal } from '../../../src/experiments/journal.ts';
import { FaultLeases, LEASE_MS, type FaultApi } from '../../../src/experiments/run/leases.ts';
import type { Experiment } from '../../../src/experiments/spec.ts';
import { faultBody } from '../../../src/experiments/steps.ts';
import { experiment } from './experiment.ts';
import { FakeClock } from '../../helpers/fake-clock.ts';

interface Put {
  t: number;
  id: string;
  percent: number;
  ttlMs: number;
  renew: boolean;
}

function harness(exp: Experiment, behaviour: { halted?: boolean; putFails?: boolean } = {}) {
  const clock = new FakeClock();
  const start = clock.now();
  const puts: Put[] = [];
  const deletes: { t: number; id: string }[] = [];
  const failures: string[] = [];
  const notes: string[] = [];
  const api: FaultApi = {
    putFault: async (spec, ttlMs, renew = false) => {
      if (behaviour.putFails) throw new Error('refused (409)');
      puts.push({ t: clock.now() - start, id: String(spec.id), percent: spec.percent as number, ttlMs, renew });
    },
    deleteFault: async (id) => {
      deletes.push({ t: clock.now() - start, id });
    },
  };
  const data = { faults: exp.method.map((step, i) => ({ id: step.fault.id, step: i, injectedAt: null, removedAt: null, renewals: 0, spec: faultBody(exp, step, 1) })) } as unknown as Journal;
  const journal = { data, note: async (text: string) => void notes.push(text) };
  const leases = new FaultLeases({ experiment: exp, seed: 1, api, journal, clock, halted: () => behaviour.halted ?? false, onFailure: (reason) => failures.push(reason) });
  return { clock, start, puts, deletes, failures, notes, data, leases };
}

describe('fault leases', () => {
  it('puts each fault at its step time and removes it at the step end, in the journal at those times', async () => {
    const h = harness(experiment());
    h.leases.start();
    await h.clock.advance(999);
    expect(h.puts).to.deep.equal([]);
    await h.clock.advance(1);
    expect(h.puts[0]).to.deep.include({ t: 1_000, id: 'front-errors' });
    expect(h.leases.inForce).to.equal(1);
    expect(h.data.faults[0]!.injectedAt).to.equal(new Date(h.start + 1_000).toISOString());
    await h.clock.advance(3_000);
    expect(h.deletes).to.deep.equal([{ t: 4_000, id: 'front-errors' }]);
    expect(h.leases.inForce).to.equal(0);
    expect(h.data.faults[0]!.removedAt).to.equal(new Date(h.start + 4_000).toISOString());
    expect(h.notes).to.deep.equal(['injected front-errors for 3000 ms', 'removed front-errors']);
    h.leases.stop();
  });

  it('renews every lease each second for LEASE_MS while its step lasts, and no longer after it', async () => {
    const h = harness(experiment());
    h.leases.start();
    await h.clock.advance(6_000);
    h.leases.stop();
    expect([...new Set(h.puts.map((p) => p.t))]).to.deep.equal([1_000, 2_000, 3_000]);
    expect(h.puts.every((p) => p.ttlMs === LEASE_MS)).to.equal(true);
    // Only the first put may install it: a renewal only renews, so it cannot undo an emergency stop.
    expect(h.puts.map((p) => p.renew)).to.deep.equal([false, ...h.puts.slice(1).map(() => true)]);
    expect(h.data.faults[0]!.renewals).to.equal(h.puts.length - 1);
  });

  it('moves a ramped step up on the renewal ticks, from `from` to the fault\'s percent in even steps', async () => {
    const exp = experiment({ method: [{ at: '0s', duration: '4s', ramp: { from: 20, every: '1s' }, fault: { id: 'ramped', match: { destination: 'front' }, at: 'inbound', percent: 60, abort: { status: 503 } } }] });
    const h = harness(exp);
    h.leases.start();
    await h.clock.advance(3_500);
    h.leases.stop();
    const byTime = new Map(h.puts.map((p) => [p.t, p.percent]));
    expect([...byTime]).to.deep.equal([[0, 20], [1_000, 30], [2_000, 40], [3_000, 50]]);
  });

  it('puts nothing once the run is halting', async () => {
    const h = harness(experiment(), { halted: true });
    h.leases.start();
    await h.clock.advance(2_000);
    h.leases.stop();
    expect(h.puts).to.deep.equal([]);
    expect(h.data.faults[0]!.injectedAt).to.equal(null);
  });

  it('a fault the control plane refuses halts the run, saying which and why', async () => {
    const h = harness(experiment(), { putFails: true });
    h.leases.start();
    await h.clock.advance(1_000);
    h.leases.stop();
    expect(h.failures).to.deep.equal(['could not inject front-errors: refused (409)']);
    expect(h.data.faults[0]!.injectedAt).to.equal(null);
  });

  it('stop() leaves no timer: nothing is put, renewed or removed after it', async () => {
    const h = harness(experiment());
    h.leases.start();
    await h.clock.advance(1_500);
    h.leases.stop();
    const puts = h.puts.length;
    expect(h.clock.pending).to.equal(0);
    await h.clock.advance(10_000);
    expect([h.puts.length, h.deletes.length]).to.deep.equal([puts, 0]);
  });
});
