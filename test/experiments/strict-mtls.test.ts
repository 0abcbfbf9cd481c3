// A game day on a mesh under strict mTLS: the entry's inbound listener takes only mesh identities, so
// the load goes through the mesh's client-only sidecar (a load generator's), as a workload's requests
// do — to the entry over mTLS, with that sidecar's identity — and the steady state is measured on them.
import { expect } from 'chai';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { runExperiment } from '../../src/experiments/runner.ts';
import { freeAddress } from '../helpers/net.ts';

const quiet = { write: () => true, isTTY: false } as unknown as NodeJS.WriteStream;

async function lines(file: string): Promise<Record<string, unknown>[]> {
  return (await readFile(file, 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('game day under strict mTLS', function () {
  this.timeout(60_000);

  it('sends the load through a client-only sidecar with a mesh identity, and the steady state is measured', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'faultline-strict-'));
    await writeFile(join(dir, 'app.mjs'), "import { createServer } from 'node:http'; process.stdin.on('close', () => process.exit(0)); createServer((q, s) => s.end('ok')).listen(Number(process.env.PORT), '127.0.0.1');\n");
    const app = await freeAddress();
    await writeFile(join(dir, 'mesh.yaml'), stringify({
      mesh: { name: 'strict' },
      mtls: { mode: 'strict', trustDomain: 'strict.local' },
      services: [{ name: 'front', endpoints: [{ address: app }] }, { name: 'loadgen' }],
      sidecars: [
        { service: 'front', app, outbound: await freeAddress(), inbound: await freeAddress(), admin: await freeAddress(), command: ['node', 'app.mjs'] },
        { service: 'loadgen', outbound: await freeAddress(), admin: await freeAddress() },
      ],
    }));
    const file = join(dir, 'strict.yaml');
    await writeFile(file, stringify({
      name: 'strict',
      target: { mesh: 'mesh.yaml' },
      load: { entry: 'front', rate: 60, connections: 4 },
      phases: { warmup: '500ms', baseline: '1s', recovery: '1s' },
      steadyState: [{ availability: { service: 'front', min: 95 } }],
      method: [{ at: '0s', duration: '1s', fault: { id: 'front-slow', match: { destination: 'front' }, at: 'inbound', delay: { fixed: '5ms' } } }],
    }));
    const result = await runExperiment({ file, out: join(dir, 'reports'), seed: 3, stream: quiet });
    expect(result.outcome, JSON.stringify(result.journal)).to.equal('passed');
    expect(result.journal.verdicts.map((v) => [v.window, v.outcome])).to.deep.equal([['baseline', 'pass'], ['method', 'pass'], ['recovery', 'pass']]);
    const load = await lines(join(result.dir, 'load.ndjson'));
    expect(load.length).to.be.above(40);
    expect(load.every((r) => r.status === 200)).to.equal(true);
    // At front's sidecar, every request came in over mTLS from loadgen's identity, and the fault met them there.
    const events = await lines(join(result.dir, 'events.ndjson'));
    const inbound = events.filter((e) => e.type === 'request.done' && e.sidecar === 'front' && e.direction === 'inbound');
    expect(inbound.length).to.be.at.least(load.length * 0.9);
    expect(new Set(inbound.map((e) => e.source))).to.deep.equal(new Set(['loadgen']));
    expect(events.some((e) => e.type === 'fault.applied' && e.faultId === 'front-slow')).to.equal(true);
  });
});
