// Hosts as network namespaces (root only: without root these fail, saying so): three hosts on one
// bridge reach each other by their addresses and nothing of them shows on the machine's loopback; a
// host whose link is cut is unreachable until healed; teardown stops what runs inside and leaves no
// namespace behind, also one a dead run left with the same prefix.
import { expect } from 'chai';
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { addressesIn, HostNetwork, namespaceNames, requireRoot } from '../../src/control/hosts.ts';
import { requestFrom, serveIn } from '../helpers/hosts.ts';
import { freePort } from '../helpers/net.ts';

const HOSTS_MODULE = fileURLToPath(new URL('../../src/control/hosts.ts', import.meta.url));

describe('hosts as network namespaces', function () {
  this.timeout(15_000);
  let hosts: HostNetwork;

  before(async () => {
    hosts = await HostNetwork.create({ count: 3 });
  });

  after(async () => {
    await hosts?.close();
  });

  it('gives each host its address from the range, and a server on one is reached from another by it, not from the machine\'s loopback', async () => {
    expect(hosts.hosts.map((h) => [h.name, h.address])).to.deep.equal([['h1', '10.213.0.1'], ['h2', '10.213.0.2'], ['h3', '10.213.0.3']]);
    const secret = randomBytes(8).toString('hex');
    // On every address of host 1, and on a port that is free on the machine itself.
    const port = await freePort();
    await serveIn(hosts, hosts.host(1), `0.0.0.0:${port}`, secret);
    expect(await requestFrom(hosts, hosts.host(2), `http://10.213.0.1:${port}/`)).to.deep.equal({ status: 200, body: secret });
    const fromRoot = await request(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(1_000) }).then((r) => r.body.text(), (e: Error) => e.message);
    expect(fromRoot).to.not.equal(secret);
  });

  it('cuts a host off (unreachable from the others) and heals it (reachable again)', async () => {
    const h3 = hosts.host('h3');
    await serveIn(hosts, h3, `${h3.address}:8080`, 'h3');
    expect(await requestFrom(hosts, hosts.host(2), 'http://10.213.0.3:8080/')).to.deep.equal({ status: 200, body: 'h3' });
    await hosts.cut(h3);
    const cut = await requestFrom(hosts, hosts.host(2), 'http://10.213.0.3:8080/', { timeoutMs: 700 });
    expect(cut).to.have.property('error').that.is.oneOf(['timeout', 'EHOSTUNREACH']);
    // From the cut host's side too: no route to the others.
    expect(await requestFrom(hosts, h3, 'http://10.213.0.1:9/', { timeoutMs: 700 })).to.deep.equal({ error: 'ENETUNREACH' });
    await hosts.heal(h3);
    expect(await requestFrom(hosts, hosts.host(2), 'http://10.213.0.3:8080/', { timeoutMs: 2_000 })).to.deep.equal({ status: 200, body: 'h3' });
  });

  it('tears down: what runs inside is stopped, no namespace is left; closing again is harmless', async () => {
    const net = await HostNetwork.create({ count: 2, subnet: '10.213.7.0/28' });
    expect(net.hosts.map((h) => h.address)).to.deep.equal(['10.213.7.1', '10.213.7.2']);
    // A process that ignores SIGTERM is killed after the grace period.
    const stubborn = net.run(1, process.execPath, ['-e', "process.on('SIGTERM', () => {}); console.log('up'); setInterval(() => {}, 1000)"], { stdio: ['ignore', 'pipe', 'ignore'] });
    await new Promise((resolve) => stubborn.stdout!.once('data', resolve));
    const exited = new Promise((resolve) => stubborn.once('exit', (_code, signal) => resolve(signal)));
    expect((await namespaceNames()).filter((n) => n.startsWith(net.prefix))).to.have.length(3);
    await net.close(300);
    expect(await exited).to.equal('SIGKILL');
    expect((await namespaceNames()).filter((n) => n.startsWith(net.prefix))).to.deep.equal([]);
    await net.close();
  });

  it('removes what a dead run left under the same prefix before making its own', async () => {
    const prefix = `fl-test-${randomBytes(3).toString('hex')}-`;
    execFileSync('ip', ['netns', 'add', `${prefix}h1`]);
    execFileSync('ip', ['netns', 'add', `${prefix}old`]);
    const net = await HostNetwork.create({ count: 1, prefix });
    expect((await namespaceNames()).filter((n) => n.startsWith(prefix)).sort()).to.deep.equal([`${prefix}h1`, `${prefix}sw`]);
    await net.close();
    expect((await namespaceNames()).filter((n) => n.startsWith(prefix))).to.deep.equal([]);
  });

  for (const ending of ['exit', 'SIGTERM'] as const) {
    it(`removes its namespaces when the process ends without closing them (${ending})`, async () => {
      const prefix = `fl-test-${randomBytes(3).toString('hex')}-`;
      const script = `const { HostNetwork } = await import(${JSON.stringify(HOSTS_MODULE)});
        const net = await HostNetwork.create({ count: 2, prefix: ${JSON.stringify(prefix)} });
        net.run(1, process.execPath, ['-e', 'setInterval(() => {}, 1000)']);
        console.log('made');
        ${ending === 'exit' ? 'process.exit(3);' : 'setInterval(() => {}, 1000);'}`;
      const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
      const ended = new Promise((resolve) => child.once('exit', (code, signal) => resolve(signal ?? code)));
      await new Promise((resolve) => child.stdout.once('data', resolve));
      if (ending === 'SIGTERM') child.kill('SIGTERM');
      expect(await ended).to.equal(ending === 'exit' ? 3 : 'SIGTERM');
      expect((await namespaceNames()).filter((n) => n.startsWith(prefix))).to.deep.equal([]);
    });
  }

  it('says clearly when not root, and refuses a range or count that cannot be', () => {
    expect(() => requireRoot(1000)).to.throw(/need root .*running as uid 1000/);
    expect(() => addressesIn('10.213.0.0', 3)).to.throw(/expected an IPv4 range such as 10\.213\.0\.0\/24/);
    expect(() => addressesIn('10.213.0.0/30', 3)).to.throw(/from 1 to 2 for 10\.213\.0\.0\/30, got 3/);
    expect(addressesIn('10.213.1.77/24', 2)).to.deep.equal(['10.213.1.1/24', '10.213.1.2/24']);
  });
});
