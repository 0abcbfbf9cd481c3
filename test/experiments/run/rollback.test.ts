// Rollback verification on a virtual clock: every fault removed, then the sidecars polled until none
// holds one (verified), or until the deadline, naming what is left where (not verified).
import { expect } from 'chai';
import type { SidecarView } from '../../../src/experiments/mesh-client.ts';
import { rollBack, type RollbackApi } from '../../../src/experiments/run/rollback.ts';
import { FakeClock } from '../../helpers/fake-clock.ts';

const ids = ['a', 'b'];

function sidecar(name: string, connected = true): SidecarView {
  return { name, connected, version: 'v1', health: 'ready', admin: `127.0.0.1:${name.length}` };
}

function mesh(sidecars: SidecarView[]) {
  const deleted: string[] = [];
  const api: RollbackApi = { deleteFault: async (id) => void deleted.push(id), sidecars: async () => ({ sidecars }) };
  return { api, deleted };
}

describe('rollback', () => {
  it('removes every fault and is verified once no sidecar holds one', async () => {
    const clock = new FakeClock();
    const { api, deleted } = mesh([sidecar('front'), sidecar('back')]);
    // back still reports fault b for its first three reads, as a sidecar yet to apply the removal.
    let backReads = 0;
    const faultsOf = async (view: SidecarView) => (view.name === 'back' && ++backReads <= 3 ? ['b', 'other-experiment'] : []);
    const done = rollBack(ids, api, clock, faultsOf);
    await clock.advance(300);
    const result = await done;
    expect(deleted).to.deep.equal(ids);
    expect(result).to.deep.equal({ at: new Date(clock.now() - 300).toISOString(), removed: ids, verified: true, remaining: {} });
    expect(backReads).to.equal(4);
  });

  it('is not verified when a fault outlives the deadline, and says which sidecar holds which', async () => {
    const clock = new FakeClock();
    const { api } = mesh([sidecar('front'), sidecar('gone', false)]);
    let settled = false;
    const done = rollBack(ids, api, clock, async () => ['a']).then((r) => ((settled = true), r));
    await clock.advance(4_900);
    expect(settled).to.equal(false);
    await clock.advance(300);
    const result = await done;
    expect(result).to.include({ verified: false });
    expect(result.remaining).to.deep.equal({ front: ['a'] });
  });

  it('by default reads what each sidecar said with its last ack; one that has said nothing holds every fault', async () => {
    const clock = new FakeClock();
    const { api } = mesh([{ ...sidecar('front'), faults: [] }, { ...sidecar('back'), faults: ['b', 'other'] }, { ...sidecar('new'), faults: null }]);
    const done = rollBack(ids, api, clock);
    await clock.advance(6_000);
    expect((await done).remaining).to.deep.equal({ back: ['b'], new: ids });
  });

  it('takes a sidecar that cannot say what it holds to hold every fault', async () => {
    const clock = new FakeClock();
    const { api } = mesh([sidecar('front')]);
    const done = rollBack(ids, api, clock, async () => {
      throw new Error('ECONNREFUSED');
    });
    await clock.advance(6_000);
    expect((await done).remaining).to.deep.equal({ front: ids });
  });
});
