// Several replicas' event streams made one: a replayed event passes once, a restarted sidecar's new
// events pass, history from before the stream is left out, the replicas' own copies pass once per
// occurrence, metric samples always.
import { expect } from 'chai';
import { EventMerge } from '../../src/experiments/event-merge.ts';

const SINCE = 1_000_000;
const relayed = (sidecar: string, sourceSeq: number, monotonic: number, time = SINCE + monotonic) => ({ type: 'request.done', seq: 900 + sourceSeq, sourceSeq, sidecar, time, monotonic });

describe('EventMerge', () => {
  it('passes a sidecar\'s event once, whichever replica relays it (a failed-over sidecar replays its history)', () => {
    const merge = new EventMerge(SINCE);
    expect(merge.admit('a', relayed('web-1', 1, 10))).to.equal(true);
    expect(merge.admit('a', relayed('web-1', 2, 20))).to.equal(true);
    // Replayed to replica b, renumbered there: the same events.
    expect(merge.admit('b', { ...relayed('web-1', 1, 10), seq: 5 })).to.equal(false);
    expect(merge.admit('b', { ...relayed('web-1', 2, 20), seq: 6 })).to.equal(false);
    expect(merge.admit('b', relayed('web-1', 3, 30))).to.equal(true);
    // Another sidecar's seq 1 is its own.
    expect(merge.admit('b', relayed('api-1', 1, 10))).to.equal(true);
  });

  it('passes a restarted sidecar\'s events though it numbers from 1 again', () => {
    const merge = new EventMerge(SINCE);
    expect(merge.admit('a', relayed('web-1', 1, 10))).to.equal(true);
    expect(merge.admit('a', relayed('web-1', 1, 3))).to.equal(true);
  });

  it('leaves out history from before the stream began', () => {
    const merge = new EventMerge(SINCE);
    expect(merge.admit('b', relayed('web-1', 1, 10, SINCE - 1))).to.equal(false);
  });

  it('passes the replicas\' own events once per occurrence, and metric samples always', () => {
    const merge = new EventMerge(SINCE);
    const installed = (seq: number, time: number) => ({ type: 'fault.installed', seq, time, monotonic: time, sidecar: 'control', faultId: 'f', origin: 'runtime' });
    expect(merge.admit('a', installed(1, 1))).to.equal(true);
    expect(merge.admit('b', installed(7, 2))).to.equal(false);
    // Installed again later (after a removal): a new occurrence, said first by b this time.
    expect(merge.admit('b', installed(9, 3))).to.equal(true);
    expect(merge.admit('a', installed(4, 4))).to.equal(false);
    expect(merge.admit('a', { type: 'mesh.halted', seq: 5, time: 5, monotonic: 5, sidecar: 'control', by: 'x' })).to.equal(true);
    const sample = { type: 'metrics.sample', seq: 0, time: SINCE + 1, sidecar: 'web-1', sampleNo: 1 };
    expect(merge.admit('a', sample)).to.equal(true);
    expect(merge.admit('b', sample)).to.equal(true);
  });
});
