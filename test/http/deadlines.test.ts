// The request path's deadlines (route and per-try timeouts): one timer for all of them, armed for the
// nearest, never firing one before its time, and what ends in time is never expired. On a fake clock.
import { expect } from 'chai';
import { Deadlines } from '../../src/http/deadlines.ts';
import { FakeClock } from '../helpers/fake-clock.ts';

describe('request deadlines', () => {
  const setUp = () => {
    const clock = new FakeClock(0);
    const deadlines = new Deadlines(clock);
    const expired: string[] = [];
    const deadline = (name: string, inMs: number) => ({ at: clock.now() + inMs, expire: () => expired.push(`${name}@${clock.now()}`) });
    return { clock, deadlines, expired, deadline };
  };

  it('expires each deadline at its time, in order, with one timer armed for the nearest', async () => {
    const { clock, deadlines, expired, deadline } = setUp();
    deadlines.add(deadline('route', 5_000));
    deadlines.add(deadline('try', 2_000));
    deadlines.add(deadline('later try', 2_500));
    expect(clock.pending, 'one timer').to.equal(1);
    expect(clock.due).to.deep.equal([2_000]);
    await clock.advance(1_999);
    expect(expired).to.deep.equal([]);
    await clock.advance(1);
    expect(expired).to.deep.equal(['try@2000']);
    await clock.advance(3_000);
    expect(expired).to.deep.equal(['try@2000', 'later try@2500', 'route@5000']);
    expect([deadlines.size, clock.pending]).to.deep.equal([0, 0]);
  });

  it('never expires what ended in time; the timer armed for it finds nothing due and re-arms for the nearest left', async () => {
    const { clock, deadlines, expired, deadline } = setUp();
    const first = deadline('first', 100);
    deadlines.add(first);
    deadlines.add(deadline('second', 300));
    deadlines.delete(first);
    await clock.advance(100);
    expect(expired).to.deep.equal([]);
    expect(clock.due, 'armed for the one left').to.deep.equal([200]);
    await clock.advance(200);
    expect(expired).to.deep.equal(['second@300']);
  });

  it('re-arms for a nearer deadline added later, and for one a deadline adds as it expires', async () => {
    const { clock, deadlines, expired, deadline } = setUp();
    deadlines.add(deadline('route', 1_000));
    deadlines.add(deadline('try', 50));
    expect(clock.due).to.deep.equal([50]);
    // As a retry does: the expiry of one try starts the next one's deadline.
    deadlines.add({ at: 120, expire: () => (expired.push(`second try@${clock.now()}`), undefined) });
    deadlines.add({ at: 60, expire: () => (expired.push(`first try@${clock.now()}`), deadlines.add(deadline('third try', 10))) });
    await clock.advance(60);
    expect(expired).to.deep.equal(['try@50', 'first try@60']);
    await clock.advance(10);
    expect(expired).to.deep.equal(['try@50', 'first try@60', 'third try@70']);
    await clock.advance(930);
    expect(expired).to.deep.equal(['try@50', 'first try@60', 'third try@70', 'second try@120', 'route@1000']);
  });

  it('rounds a fraction of a millisecond up: never early', async () => {
    const { clock, deadlines, expired } = setUp();
    deadlines.add({ at: 10.4, expire: () => expired.push(`@${clock.now()}`) });
    expect(clock.due).to.deep.equal([11]);
    await clock.advance(11);
    expect(expired).to.deep.equal(['@11']);
  });
});
