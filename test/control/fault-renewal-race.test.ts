// A lease renewal (PUT If-Match: *) and a delete of the same fault at the same moment — what a game
// day's last renewal and its step's end do — leave the fault deleted: the plane writes the faults to
// its store one write at a time, so the renewal's write cannot land after the delete's and bring the
// fault back from the store until its lease ends. On a file store and on etcd.
import { expect } from 'chai';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { startControlPlane, type RunningControlPlane } from '../../src/control/server.ts';
import { MeshClient } from '../../src/experiments/mesh-client.ts';
import { startEtcd, type EtcdCluster } from '../helpers/etcd.ts';
import { freeAddress } from '../helpers/net.ts';

const TOKEN = 'renewal-race-token';
const FAULT = { id: 'race', match: { destination: 'api' }, abort: { status: 503 } };

describe('a fault renewed and deleted at once', function () {
  this.timeout(60_000);
  let dir: string;
  let etcd: EtcdCluster | undefined;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'faultline-renewal-race-'));
    await writeFile(join(dir, 'mesh.yaml'), stringify({ mesh: { name: 'race' }, services: [{ name: 'api' }] }));
  });

  after(async () => {
    await etcd?.stop();
  });

  const race = async (store: string | undefined): Promise<void> => {
    const control: RunningControlPlane = await startControlPlane({ listen: await freeAddress(), token: TOKEN, stateDir: join(dir, `cp-${store ? 'etcd' : 'file'}`), configFile: join(dir, 'mesh.yaml'), ...(store && { store }) });
    try {
      const client = new MeshClient(control.url, TOKEN);
      for (let i = 0; i < 10; i++) {
        await client.putFault(FAULT, 5_000);
        await Promise.all([client.putFault(FAULT, 5_000, true).catch(() => undefined), client.deleteFault(FAULT.id)]);
        // Whatever order they came in, the fault is gone and stays gone (its store writes all landed).
        const settled = Date.now() + 300;
        while (Date.now() < settled) {
          expect(control.plane.faults.get(FAULT.id), `round ${i}`).to.equal(undefined);
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      }
    } finally {
      await control.close();
    }
  };

  it('stays deleted, on a file store', async () => {
    await race(undefined);
  });

  it('stays deleted, on etcd', async () => {
    etcd = await startEtcd(1);
    await race(`etcd://${etcd.hosts.join(',')}/race-${process.pid}`);
  });
});
