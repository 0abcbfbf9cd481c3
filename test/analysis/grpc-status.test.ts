// A gRPC error rides on HTTP 200: the shared measure, a steady-state availability over recorded
// request.done and the retry-masking verdict count a non-OK gRPC status as a failure.
import { expect } from 'chai';
import { callSucceeded, succeeded } from '../../src/measures.ts';
import { availability, samplesFor, type Recording } from '../../src/experiments/verdicts.ts';

const done = (requestId: string, status: number, grpcStatus: number | null) => ({
  type: 'request.done', time: 1_000, sidecar: 'checkout', requestId, direction: 'outbound', service: 'payments', status, grpcStatus, durationMs: 3, flags: [], faults: [],
});

describe('gRPC status in the measures', () => {
  it('counts a non-OK gRPC status as a failure, OK and plain HTTP as before', () => {
    expect(succeeded(200, 0)).to.equal(true);
    expect(succeeded(200, 14)).to.equal(false);
    expect(succeeded(200, 5)).to.equal(false);
    expect(succeeded(200)).to.equal(true);
    expect(succeeded(503, null)).to.equal(false);
    expect(callSucceeded(done('a', 200, 14))).to.equal(false);
    expect(callSucceeded(done('b', 200, null))).to.equal(true);
    expect(callSucceeded({ status: 200 })).to.equal(true);
  });

  it('gives a recorded gRPC service its availability by grpcStatus', () => {
    const events = [done('a', 200, 0), done('b', 200, 14), done('c', 200, 0), done('d', 200, 4)];
    const recording = { entry: 'checkout', load: [], events } as unknown as Recording;
    const samples = samplesFor(recording, 'payments', { name: 'method', from: 0, to: 2_000 });
    expect(samples.map((s) => s.grpcStatus)).to.deep.equal([0, 14, 0, 4]);
    expect(availability(samples)).to.equal(50);
  });
});
