// The quick start's job end to end: the demo shop behind nine sidecars answers through the mesh,
// the canary split shows both payments versions, and nothing is left running.
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { runDemo } from '../src/cli/demo.ts';
import { silentLogger } from '../src/telemetry/log.ts';

describe('faultline demo', function () {
  this.timeout(60_000);

  it('serves every request through the mesh and splits payments 90/10', async () => {
    let printed = '';
    const result = await runDemo({ requests: 400, concurrency: 8, log: silentLogger, out: (text) => (printed += text) });
    expect(result.requests).to.equal(400);
    expect(result.statuses).to.deep.equal({ 200: 400 });
    expect(result.flags).to.deep.equal({});
    const v2 = result.paymentsVersions.v2 ?? 0;
    expect(v2 + (result.paymentsVersions.v1 ?? 0)).to.equal(400);
    // binomial(400, 0.1): mean 40, sd 6; 4.5 sd either side
    expect(v2).to.be.within(13, 67);
    expect(result.endpoints.map((e) => e.service)).to.include.members(['catalog', 'cart', 'payments', 'stock']);
    expect(result.endpoints.every((e) => e.available && e.health === 'healthy')).to.equal(true);
    expect(printed).to.include('availability  100.0% (200: 400)');
    // Then the same burst with a tenth of cart's tries to payments aborted: retries mask nearly all.
    const phase = result.faultPhase!;
    expect(phase.injected).to.be.within(15, 75);
    expect(phase.masked / phase.injected).to.be.at.least(0.8);
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
      running = execFileSync('pgrep', ['-f', 'demo/shop.ts'], { encoding: 'utf8' });
    } catch {
      // pgrep exits 1 when nothing matches
    }
    expect(running.trim()).to.equal('');
  });
});
