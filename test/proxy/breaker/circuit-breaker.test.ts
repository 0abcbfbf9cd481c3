// The circuit breaker on its own, with a fake clock: each limit, each transition and its timing, and
// the events they emit.
import { expect } from 'chai';
import { parseConfig } from '../../../src/config/load.ts';
import { compileSnapshot } from '../../../src/config/snapshot.ts';
import { CircuitBreaker, type Ticket } from '../../../src/proxy/breaker/circuit-breaker.ts';
import { Cancellation } from '../../../src/http/cancellation.ts';
import { EventBus, type MeshEvents } from '../../../src/telemetry/events.ts';

function breakerWith(settings: string, clock: { now: number }, events: MeshEvents['breaker.state'][] = []): CircuitBreaker {
  const text = `mesh: {name: a}\nservices: [{name: s, endpoints: [{address: "127.0.0.1:1"}], circuitBreaker: ${settings}}]\n`;
  const config = compileSnapshot(parseConfig(text), 'a.yaml').services.get('s')!.circuitBreaker!;
  const bus = new EventBus('test');
  bus.on('breaker.state', (e) => events.push(e));
  return new CircuitBreaker('s', '', config, bus, () => clock.now);
}

async function refused(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    return (error as { code: string }).code;
  }
  return 'admitted';
}

describe('circuit breaker', () => {
  const clock = { now: 1_000_000 };
  beforeEach(() => (clock.now = 1_000_000));

  const attempt = async (b: CircuitBreaker, verdict: 'success' | 'failure' | 'neutral') => {
    const t = await b.admit(new Cancellation());
    b.judge(t, verdict);
    b.release();
  };

  it('maxConnections: admits that many, queues up to maxPendingRequests, refuses the rest with UO', async () => {
    const b = breakerWith('{maxConnections: 2, maxPendingRequests: 1}', clock);
    const c = new Cancellation();
    const t1 = await b.admit(c);
    await b.admit(c);
    let third: Ticket | undefined;
    const waiting = b.admit(c).then((t) => (third = t));
    expect([b.active, b.pending]).to.deep.equal([2, 1]);
    expect(await refused(b.admit(c))).to.equal('FL_UPSTREAM_OVERFLOW');
    b.judge(t1, 'success');
    b.release();
    await waiting;
    expect(third).to.not.equal(undefined);
    expect([b.active, b.pending]).to.deep.equal([2, 0]);
  });

  it('tryAdmit admits at once only when admit would without waiting, and leaves queueing and refusing to admit', async () => {
    const b = breakerWith('{maxConnections: 2, maxPendingRequests: 1, consecutiveFailures: 1}', clock);
    const first = b.tryAdmit();
    expect(first).to.deep.equal({ probe: false });
    await b.admit(new Cancellation());
    expect([b.tryAdmit(), b.active]).to.deep.equal([undefined, 2]);
    b.judge(first!, 'failure');
    b.release();
    expect(b.state).to.equal('open');
    expect([b.tryAdmit(), b.active]).to.deep.equal([undefined, 1]);
  });

  it('a queued request leaves the queue when cancelled', async () => {
    const b = breakerWith('{maxConnections: 1, maxPendingRequests: 5}', clock);
    await b.admit(new Cancellation());
    const cancellation = new Cancellation();
    const waiting = refused(b.admit(cancellation));
    expect(b.pending).to.equal(1);
    cancellation.cancel(Object.assign(new Error('gone'), { code: 'GONE' }));
    expect(await waiting).to.equal('GONE');
    expect(b.pending).to.equal(0);
  });

  it('maxRequests bounds in-progress and queued together', async () => {
    const b = breakerWith('{maxConnections: 1, maxPendingRequests: 10, maxRequests: 2}', clock);
    await b.admit(new Cancellation());
    void b.admit(new Cancellation());
    expect(await refused(b.admit(new Cancellation()))).to.equal('FL_UPSTREAM_OVERFLOW');
  });

  it('maxRetries bounds retries in progress', () => {
    const b = breakerWith('{maxRetries: 2}', clock);
    expect([b.tryRetry(), b.tryRetry(), b.tryRetry()]).to.deep.equal([true, true, false]);
    b.retryDone();
    expect(b.tryRetry()).to.equal(true);
  });

  it('opens after consecutive failures, refuses while open, half-opens after the cool-down, closes on a good probe', async () => {
    const events: MeshEvents['breaker.state'][] = [];
    const b = breakerWith('{consecutiveFailures: 3, coolDown: {base: 2s, max: 30s}, halfOpenRequests: 1}', clock, events);
    for (let i = 0; i < 3; i++) await attempt(b, 'failure');
    expect(b.state).to.equal('open');
    expect(events[0]).to.include({ from: 'closed', to: 'open', reason: '3 consecutive failures', trips: 1, openForMs: 2_000 });
    expect(await refused(b.admit(new Cancellation()))).to.equal('FL_CIRCUIT_OPEN');
    clock.now += 1_999;
    expect(b.state).to.equal('open');
    clock.now += 1;
    expect(b.state).to.equal('half-open');
    const probe = await b.admit(new Cancellation());
    expect(probe.probe).to.equal(true);
    expect(await refused(b.admit(new Cancellation())), 'only one probe at a time').to.equal('FL_CIRCUIT_OPEN');
    b.judge(probe, 'success');
    b.release();
    expect(b.state).to.equal('closed');
    expect(events.map((e) => `${e.from}>${e.to}`)).to.deep.equal(['closed>open', 'open>half-open', 'half-open>closed']);
  });

  it('trips again on a failed probe, with a cool-down doubling each trip in a row, capped', async () => {
    const events: MeshEvents['breaker.state'][] = [];
    const b = breakerWith('{consecutiveFailures: 1, coolDown: {base: 1s, max: 3s}}', clock, events);
    await attempt(b, 'failure');
    for (let trip = 0; trip < 3; trip++) {
      clock.now += events.at(-1)!.openForMs;
      await attempt(b, 'failure');
    }
    expect(events.filter((e) => e.to === 'open').map((e) => e.openForMs)).to.deep.equal([1_000, 2_000, 3_000, 3_000]);
    expect(events.at(-1)!.reason).to.equal('a half-open probe failed');
  });

  it('opens on the failure ratio over the window once minRequests are seen', async () => {
    const b = breakerWith('{failureRatio: {threshold: 0.5, minRequests: 10, window: 10s}}', clock);
    for (let i = 0; i < 4; i++) await attempt(b, 'failure');
    for (let i = 0; i < 5; i++) await attempt(b, 'success');
    expect(b.state).to.equal('closed'); // 4 of 9: fewer than minRequests
    await attempt(b, 'failure'); // 5 of 10
    expect(b.state).to.equal('open');
  });

  it('forgets failures that left the window', async () => {
    const b = breakerWith('{failureRatio: {threshold: 0.5, minRequests: 4, window: 2s}}', clock);
    for (let i = 0; i < 3; i++) await attempt(b, 'failure');
    clock.now += 3_000;
    await attempt(b, 'failure');
    for (let i = 0; i < 3; i++) await attempt(b, 'success');
    expect(b.state).to.equal('closed'); // 1 of 4 in the window, not 4 of 7
  });

  it('does not count neutral verdicts (a caller that left)', async () => {
    const b = breakerWith('{consecutiveFailures: 1}', clock);
    await attempt(b, 'neutral');
    expect(b.state).to.equal('closed');
  });
});
