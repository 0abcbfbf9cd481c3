// Bucket edges on the run's clock: whole seconds from the first injection, cut at every fault edge,
// and no sliver where a whole second falls just short of a cut.
import { expect } from 'chai';
import { bucketEdges } from '../../src/analysis/buckets.ts';
import type { AnalysisWindow } from '../../src/analysis/types.ts';

const fault = (name: string, from: number, to: number): AnalysisWindow => ({ name, kind: 'fault', from, to });

describe('time buckets', () => {
  it('count whole seconds from the first injection, from the run\'s start when nothing was injected', () => {
    expect(bucketEdges(1_000, [], [1_000, 3_400])).to.deep.equal([1_000, 2_000, 3_000, 4_000]);
    expect(bucketEdges(1_000, [fault('f', 3_500, 5_500)], [1_000, 6_200])).to.deep.equal([1_000, 1_500, 2_500, 3_500, 4_500, 5_500, 6_500]);
    expect(bucketEdges(1_000, [], [])).to.deep.equal([]);
  });

  it('cut at a later fault\'s edges, the nearest whole second giving way to a cut less than 250 ms from it', () => {
    // f at 0 s, g from 2.1 s (2 s gives way) to 3.6 s (a cut of its own: 400 ms from 4 s).
    const edges = bucketEdges(0, [fault('f', 0, 5_000), fault('g', 2_100, 3_600)], [0, 5_900]);
    expect(edges).to.deep.equal([0, 1_000, 2_100, 3_000, 3_600, 4_000, 5_000, 6_000]);
  });
});
