// The emergency stop removes every runtime fault the store holds, not only those this control plane has
// taken: a replica whose watch has not yet brought another's put (or that refused one over a limit)
// still removes it — the stop is mesh-wide or it is not a stop.
import { expect } from 'chai';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { parseFault } from '../../src/faults/admin.ts';
import { ControlPlane } from '../../src/control/plane.ts';
import { stopAllFaults } from '../../src/control/stop.ts';
import { FileStore } from '../../src/control/store.ts';
import { silentLogger } from '../../src/telemetry/log.ts';

describe('the emergency stop and the store', () => {
  it('removes a fault the store holds that this control plane has not taken', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'faultline-stop-store-'));
    const mine = new FileStore(dir);
    const plane = await ControlPlane.open(mine, silentLogger, stringify({ mesh: { name: 'stop' }, services: [{ name: 'api' }] }));
    try {
      plane.faults.put(parseFault('match: {destination: api}\nabort: {status: 503}\nttl: 1m\n', 'known', plane.snapshot));
      // Another writer of the same store (another replica), unseen by this plane's watch.
      const other = new FileStore(dir);
      const expiresAt = new Date(Date.now() + 60_000).toISOString();
      await other.put('faults/unseen', JSON.stringify({ id: 'unseen', match: { destination: 'api' }, abort: { status: 503 }, expiresAt }));
      expect(plane.faults.get('unseen')).to.equal(undefined);

      const report = await stopAllFaults(plane, undefined, 100);
      expect(report.deleted).to.deep.equal(['known', 'unseen']);
      expect(await other.list('faults/')).to.deep.equal([]);
    } finally {
      plane.close();
    }
  });
});
