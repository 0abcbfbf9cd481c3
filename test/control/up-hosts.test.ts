// `faultline up --hosts 3` (root only): the demo shop spread over three network-namespace hosts, with
// a three-member etcd and a control plane on each host; every sidecar joins by flags and registers at
// its host's address; the shop answers from this machine through the hosts' network; every replica
// serves the same state; closed, nothing of it is left.
import { expect } from 'chai';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { namespaceNames } from '../../src/control/hosts.ts';
import { upOnHosts, type HostedMesh } from '../../src/control/up-hosts.ts';

const DEMO = new URL('../../demo/mesh.yaml', import.meta.url).pathname;

async function get<T>(url: string, token?: string, host?: string): Promise<{ status: number; body: T }> {
  const response = await request(url, { headers: { ...(token && { authorization: `Bearer ${token}` }), ...(host && { host }) }, headersTimeout: 5_000, bodyTimeout: 5_000 });
  return { status: response.statusCode, body: (await response.body.json()) as T };
}

describe('faultline up --hosts', function () {
  this.timeout(120_000);
  let mesh: HostedMesh | undefined;

  after(async () => {
    await mesh?.close();
  });

  it('spreads the demo shop over three hosts with etcd and three control planes; the shop answers across them', async () => {
    mesh = await upOnHosts({ file: DEMO, hosts: 3, subnet: '10.215.0.0/24', stateDir: await mkdtemp(join(tmpdir(), 'faultline-up-hosts-')), readyTimeoutMs: 90_000 });
    expect(mesh.controls).to.deep.equal(['http://10.215.0.1:15100', 'http://10.215.0.2:15100', 'http://10.215.0.3:15100']);
    expect(new Set([...mesh.placement.values()].map((h) => h.name))).to.deep.equal(new Set(['h1', 'h2', 'h3']));
    // Every replica lists every instance, at its host's address, and serves the same version.
    const listed = await Promise.all(mesh.controls.map((url) => get<{ version: string; instances: { name: string; address: string }[] }>(`${url}/instances`, mesh!.token)));
    for (const { body } of listed) {
      expect(body.instances.map((i) => i.name).sort()).to.deep.equal([...mesh.placement.keys()].sort());
      expect(body.version).to.equal(listed[0]!.body.version);
    }
    const payments1 = listed[0]!.body.instances.find((i) => i.name === 'payments-1')!;
    expect(payments1.address).to.equal(`${mesh.placement.get('payments-1')!.address}:17231`);
    // The front page, from this machine: frontend on h1 calls catalog and cart on other hosts, cart calls payments and stock.
    const frontend = mesh.placement.get('frontend')!;
    const page = await get<{ page: string; cart: { quote: { amount: number }; stock: { level: number } } }>(`http://${frontend.address}:17201/`, undefined, 'frontend');
    expect(page.status).to.equal(200);
    expect(page.body.page).to.equal('home');
    expect(page.body.cart.quote.amount).to.equal(42);
    // Each sidecar is attached to one replica; together they have all nine, ready.
    const views = await Promise.all(mesh.controls.map((url) => get<{ sidecars: { name: string; connected: boolean; health: string }[] }>(`${url}/sidecars`, mesh!.token)));
    const ready = views.flatMap((v) => v.body.sidecars).filter((s) => s.connected && s.health === 'ready').map((s) => s.name);
    expect(ready.sort()).to.deep.equal([...mesh.placement.keys()].sort());

    const prefix = mesh.network.prefix;
    await mesh.close();
    mesh = undefined;
    expect((await namespaceNames()).filter((n) => n.startsWith(prefix))).to.deep.equal([]);
  });
});
