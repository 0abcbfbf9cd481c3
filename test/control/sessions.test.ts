// The console's sessions (control/sessions.ts): a session lasts its time and no longer; signing out
// forgets it and cuts the streams it holds open, as its end does; the oldest are forgotten beyond the
// limit; the CSRF token and the id are fresh random strings each time.
import { expect } from 'chai';
import { EventEmitter } from 'node:events';
import { Sessions, SESSION_TTL_MS, sameSecret } from '../../src/control/sessions.ts';

class Stream extends EventEmitter {
  destroyed = false;
  destroy(): void {
    this.destroyed = true;
    this.emit('close');
  }
}

describe('console sessions', () => {
  it('lasts its time and no longer', () => {
    let now = 1_000;
    const sessions = new Sessions(() => now, 60_000);
    const { id, session } = sessions.create('viewer');
    expect(session).to.deep.include({ role: 'viewer', expiresAt: 61_000 });
    now = 60_999;
    expect(sessions.get(id)?.role).to.equal('viewer');
    now = 61_000;
    expect(sessions.get(id)).to.equal(undefined);
    expect(sessions.get(undefined)).to.equal(undefined);
    expect(sessions.get('not-a-session')).to.equal(undefined);
  });

  it('makes a fresh id and CSRF token each time, 256 random bits each', () => {
    const sessions = new Sessions();
    const a = sessions.create('admin');
    const b = sessions.create('admin');
    expect(a.id).to.match(/^[\w-]{43}$/);
    expect(a.session.csrf).to.match(/^[\w-]{43}$/);
    expect(new Set([a.id, b.id, a.session.csrf, b.session.csrf]).size).to.equal(4);
    expect(a.session.expiresAt - Date.now()).to.be.within(SESSION_TTL_MS - 5_000, SESSION_TTL_MS);
  });

  it('cuts the streams a session holds when it signs out, and only its own', () => {
    const sessions = new Sessions();
    const a = sessions.create('admin');
    const b = sessions.create('admin');
    const [s1, s2, other] = [new Stream(), new Stream(), new Stream()];
    sessions.hold(a.id, a.session, s1);
    sessions.hold(a.id, a.session, s2);
    sessions.hold(b.id, b.session, other);
    sessions.delete(a.id);
    expect([s1.destroyed, s2.destroyed, other.destroyed]).to.deep.equal([true, true, false]);
    expect(sessions.get(a.id)).to.equal(undefined);
    expect(sessions.get(b.id)?.role).to.equal('admin');
    other.destroy();
  });

  it('cuts a held stream when its session ends', async () => {
    const sessions = new Sessions(Date.now, 50);
    const { id, session } = sessions.create('viewer');
    const stream = new Stream();
    sessions.hold(id, session, stream);
    await new Promise<void>((resolve) => stream.once('close', resolve));
    expect(stream.destroyed).to.equal(true);
  });

  it('forgets the oldest beyond 1,000 sessions, cutting its streams', () => {
    const sessions = new Sessions();
    const first = sessions.create('admin');
    const stream = new Stream();
    sessions.hold(first.id, first.session, stream);
    for (let i = 0; i < 999; i++) sessions.create('viewer');
    expect([sessions.size, sessions.get(first.id)?.role]).to.deep.equal([1_000, 'admin']);
    sessions.create('viewer');
    expect([sessions.size, sessions.get(first.id), stream.destroyed]).to.deep.equal([1_000, undefined, true]);
  });

  it('compares secrets of any length', () => {
    expect([sameSecret('a', 'a'), sameSecret('a', 'ab'), sameSecret('', 'x')]).to.deep.equal([true, false, false]);
  });
});
