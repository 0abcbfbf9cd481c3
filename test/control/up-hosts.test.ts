// `faultline up --hosts 3` (root only): the demo shop spread over three network-namespace hosts, with
// a three-member etcd and a control plane on each host; every sidecar joins by flags and registers at
// its host's address; the shop answers from this machine through the hosts' network; every replica
// serves the same state, over TLS (--tls auto), trusted through the CA file the first one wrote; a game
// day runs on it from here; closed, nothing of it is left.
import { expect } from 'chai';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { stringify } from 'yaml';
import { runExperiment } from '../../src/experiments/runner.ts';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { namespaceNames } from '../../src/control/hosts.ts';
import { controlRequest } from '../../src/http/control-transport.ts';
import { upOnHosts, type HostedMesh } from '../../src/control/up-hosts.ts';

const DEMO = new URL('../../demo/mesh.yaml', import.meta.url).pathname;
const quiet = { write: () => true, isTTY: false } as unknown as NodeJS.WriteStream;

async function get<T>(url: string, token?: string, host?: string): Promise<{ status: number; body: T }> {
  const response = await request(url, { headers: { ...(token && { authorization: `Bearer ${token}` }), ...(host && { host }) }, headersTimeout: 5_000, bodyTimeout: 5_000 });
  return { status: response.statusCode, body: (await response.body.json()) as T };
}

/** A control plane's API, over TLS, trusted through the CA file it wrote. */
async function api<T>(url: string, token: string, ca: string): Promise<{ status: number; body: T }> {
  const response = await controlRequest(url, { headers: { authorization: `Bearer ${token}` }, headersTimeout: 5_000, bodyTimeout: 5_000 }, ca);
  return { status: response.statusCode, body: (await response.body.json()) as T };
}

describe('faultline up --hosts', function () {
  this.timeout(120_000);
  let mesh: HostedMesh | undefined;

  after(async () => {
    await mesh?.close();
  });

  it('spreads the demo shop over three hosts with etcd and three control planes; the shop answers across them, and a game day runs on it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'faultline-up-hosts-'));
    mesh = await upOnHosts({ file: DEMO, hosts: 3, subnet: '10.215.0.0/24', stateDir: join(dir, 'state'), readyTimeoutMs: 90_000 });
    expect(mesh.controls).to.deep.equal(['https://10.215.0.1:15100', 'https://10.215.0.2:15100', 'https://10.215.0.3:15100']);
    const ca = await readFile(mesh.caFile, 'utf8');
    expect(new Set([...mesh.placement.values()].map((h) => h.name))).to.deep.equal(new Set(['h1', 'h2', 'h3']));
    // Every replica lists every instance, at its host's address, and serves the same version.
    const listed = await Promise.all(mesh.controls.map((url) => api<{ version: string; instances: { name: string; address: string }[] }>(`${url}/instances`, mesh!.token, ca)));
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
    const views = await Promise.all(mesh.controls.map((url) => api<{ sidecars: { name: string; connected: boolean; health: string }[] }>(`${url}/sidecars`, mesh!.token, ca)));
    const ready = views.flatMap((v) => v.body.sidecars).filter((s) => s.connected && s.health === 'ready').map((s) => s.name);
    expect(ready.sort()).to.deep.equal([...mesh.placement.keys()].sort());

    // A game day on it, from this machine, against the three replicas: payments aborted at some tries,
    // retries masking them; recorded from every host, rolled back and verified on every sidecar.
    const file = join(dir, 'gameday.yaml');
    await writeFile(file, stringify({
      name: 'hosts-gameday',
      target: { control: mesh.controls, tokenFile: mesh.tokenFile, ca: mesh.caFile },
      load: { entry: 'frontend', rate: 20 },
      phases: { warmup: '1s', baseline: '2s', recovery: '2s' },
      steadyState: [{ availability: { service: 'frontend', min: 90 } }],
      method: [{ at: '0s', duration: '4s', fault: { id: 'payments-errors', match: { destination: 'payments' }, at: 'attempt', percent: 10, abort: { status: 503 } } }],
    }));
    const result = await runExperiment({ file, out: join(dir, 'reports'), seed: 5, stream: quiet });
    expect(result.outcome, result.journal.reason ?? '').to.be.oneOf(['passed', 'failed']);
    expect(result.journal.rollback).to.include({ verified: true });
    expect(result.journal.faults[0]!.injectedAt).to.be.a('string');
    const events = (await readFile(join(result.dir, 'events.ndjson'), 'utf8')).trim().split('\n').map((line) => JSON.parse(line) as { type: string; sidecar: string });
    const hostsSeen = new Set(events.filter((e) => e.type === 'request.done').map((e) => mesh!.placement.get(e.sidecar)?.name));
    expect([...hostsSeen].sort()).to.deep.equal(['h1', 'h2', 'h3']);
    expect(events.some((e) => e.type === 'fault.applied')).to.equal(true);

    const prefix = mesh.network.prefix;
    await mesh.close();
    mesh = undefined;
    expect((await namespaceNames()).filter((n) => n.startsWith(prefix))).to.deep.equal([]);
  });
});
