// The quick start's job end to end: the demo shop behind nine sidecars answers through the mesh,
// the canary split shows both payments versions, and nothing is left running.
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { DEMO_FAULT, runDemo } from '../src/cli/demo.ts';
import { decisionRandom } from '../src/faults/random.ts';
import { silentLogger } from '../src/telemetry/log.ts';
import { DEMO_SHOP, demoMeshOnFreePorts } from './helpers/mesh.ts';

/**
 * What the demo fault does to `requests` requests sent one at a time, each allowed three tries (the
 * route's 2 retries): the n-th try cart makes to payments is the fault's n-th match, so whether it is
 * aborted is DEMO_FAULT's seeded draw for n, and the whole phase follows from the seed.
 */
function oneAtATime(requests: number): { injected: number; masked: number; failed: number; retries: number } {
  const aborts = (ordinal: number) => decisionRandom(DEMO_FAULT.seed, DEMO_FAULT.id, ordinal)() * 100 < DEMO_FAULT.percent;
  let ordinal = 0;
  const totals = { injected: 0, masked: 0, failed: 0, retries: 0 };
  for (let r = 0; r < requests; r++) {
    let aborted = 0;
    for (let tries = 1; ; tries++) {
      if (!aborts(++ordinal)) {
        totals.masked += aborted;
        break;
      }
      aborted++;
      totals.injected++;
      if (tries === 3) {
        totals.failed++;
        break;
      }
      totals.retries++;
    }
  }
  return totals;
}

describe('faultline demo', function () {
  // Requests one at a time take ~10 s on an idle machine; the limit only guards against a hang.
  this.timeout(120_000);

  it('serves every request through the mesh and splits payments 90/10', async () => {
    let printed = '';
    // One request in flight: the fault's decisions are seeded per try, but which request a try
    // belongs to depends on how concurrent requests interleave (and a retry that comes back quickly
    // takes the next draw: the seed's runs of aborted draws, 204–207, 251–254, 389–391, fail one
    // request each or not, by timing). With one in flight, tries take the draws in order.
    const mesh = await demoMeshOnFreePorts();
    const result = await runDemo({ mesh, requests: 400, concurrency: 1, log: silentLogger, out: (text) => (printed += text) });
    expect(result.requests).to.equal(400);
    expect(result.statuses).to.deep.equal({ 200: 400 });
    expect(result.flags).to.deep.equal({});
    const v2 = result.paymentsVersions.v2 ?? 0;
    expect(v2 + (result.paymentsVersions.v1 ?? 0)).to.equal(400);
    // binomial(400, 0.1): mean 40, sd 6; 4.5 sd either side
    expect(v2).to.be.within(13, 67);
    expect(result.endpoints.map((e) => e.service)).to.include.members(['catalog', 'cart', 'payments', 'stock']);
    expect(result.endpoints.every((e) => e.available)).to.equal(true);
    // Payments is gRPC: an HTTP health check cannot probe it, so it has none (demo/mesh.yaml).
    for (const e of result.endpoints) expect([e.service, e.health]).to.deep.equal([e.service, e.service === 'payments' ? 'not checked' : 'healthy']);
    expect(printed).to.include('availability  100.0% (200: 400)');
    // Then the same burst with a tenth of cart's tries to payments aborted: retries mask nearly all.
    const phase = result.faultPhase!;
    const expected = oneAtATime(400);
    expect({ injected: phase.injected, masked: phase.masked, failed: phase.failed, retries: phase.retries }).to.deep.equal(expected);
    // The seed's sequence itself: about a tenth of tries aborted, and retries save at least 4 in 5.
    expect(expected.injected).to.be.within(15, 75);
    expect(expected.masked / expected.injected).to.be.at.least(0.8);
    expect(phase.result.requests).to.equal(400);
    // Every request that failed at the edge is one of cart's calls that the fault failed (FI), each
    // with the reason no retry saved it: attempts used up (URX) or the breaker's maxRetries (UO).
    expect(phase.flags.FI ?? 0).to.equal(phase.failed);
    expect((phase.flags.URX ?? 0) + (phase.flags.UO ?? 0) + (phase.flags.UBX ?? 0)).to.equal(phase.failed);
    expect(printed).to.match(/injected +\d+ aborted tries/);
  });

  it('leaves no shop process behind', () => {
    let running = '';
    try {
      running = execFileSync('pgrep', ['-f', DEMO_SHOP], { encoding: 'utf8' });
    } catch {
      // pgrep exits 1 when nothing matches
    }
    expect(running.trim()).to.equal('');
  });
});
