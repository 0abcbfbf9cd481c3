// Cancellation: callbacks once, children follow their parent, a signal on demand.
import { expect } from 'chai';
import { Cancellation } from '../../src/http/cancellation.ts';

describe('Cancellation', () => {
  it('tells every registered callback once, with the reason', () => {
    const cancellation = new Cancellation();
    const seen: unknown[] = [];
    cancellation.onCancel((r) => seen.push(['a', r]));
    const off = cancellation.onCancel((r) => seen.push(['b', r]));
    off();
    cancellation.cancel('gone');
    cancellation.cancel('again');
    expect(seen).to.deep.equal([['a', 'gone']]);
    expect([cancellation.cancelled, cancellation.reason]).to.deep.equal([true, 'gone']);
  });

  it('calls a late callback at once', () => {
    const cancellation = new Cancellation();
    cancellation.cancel('gone');
    let reason: unknown;
    cancellation.onCancel((r) => (reason = r));
    expect(reason).to.equal('gone');
  });

  it('cancels children with their parent, not parents with their children', () => {
    const parent = new Cancellation();
    const child = parent.child();
    const other = parent.child();
    other.cancel('timeout');
    expect(parent.cancelled).to.equal(false);
    parent.cancel('caller left');
    expect([child.cancelled, child.reason, other.reason]).to.deep.equal([true, 'caller left', 'timeout']);
  });

  it('stops following the parent once released', () => {
    const parent = new Cancellation();
    const child = parent.child();
    child.release();
    parent.cancel('late');
    expect(child.cancelled).to.equal(false);
  });

  it('makes a child of a cancelled parent cancelled already; releases children in any order, twice harmlessly', () => {
    const done = new Cancellation();
    done.cancel('over');
    expect([done.child().cancelled, done.child().reason]).to.deep.equal([true, 'over']);
    const parent = new Cancellation();
    const [a, b, c] = [parent.child(), parent.child(), parent.child()];
    b.release();
    b.release();
    a.release();
    parent.cancel('gone');
    expect([a.cancelled, b.cancelled, c.cancelled, c.reason]).to.deep.equal([false, false, true, 'gone']);
  });

  it('offers an AbortSignal that aborts with it, even when made afterwards', () => {
    const early = new Cancellation();
    const signal = early.signal;
    early.cancel('x');
    expect([signal.aborted, signal.reason]).to.deep.equal([true, 'x']);
    const late = new Cancellation();
    late.cancel('y');
    expect([late.signal.aborted, late.signal.reason]).to.deep.equal([true, 'y']);
  });
});
