// The mesh across hosts (network namespaces; root only): the control plane on host 1, listening on its
// host address; a sidecar and its app on hosts 2 and 3, each sidecar taking its config and identity
// from host 1, its inbound on its host's address, outbound, admin and app on its own loopback. A call
// from host 2's side through its sidecar reaches host 3's app over mTLS; host 3's inbound refuses
// plaintext.
import { expect } from 'chai';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { HostNetwork } from '../../src/control/hosts.ts';
import { requestFrom, serveIn } from '../helpers/hosts.ts';
import { CLI } from '../helpers/process.ts';

/** Starts a faultline command inside a host; resolves with its first stdout line (its addresses) once it prints it. */
function startIn(hosts: HostNetwork, host: number, args: string[]): Promise<{ child: ChildProcess; printed: Record<string, string> }> {
  const child = hosts.run(host, process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FAULTLINE_LOG_LEVEL: 'warn' } });
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d));
    child.stdout!.on('data', (d: Buffer) => {
      out += d;
      if (out.includes('\n')) resolve({ child, printed: JSON.parse(out.split('\n')[0]!) as Record<string, string> });
    });
    child.once('exit', (code) => reject(new Error(`faultline ${args[0]} on h${host} exited with ${code}: ${err}`)));
  });
}

describe('the mesh across hosts', function () {
  this.timeout(30_000);
  let hosts: HostNetwork;

  before(async () => {
    hosts = await HostNetwork.create({ count: 3 });
  });

  after(async () => {
    await hosts?.close();
  });

  it('a control plane on host 1 serves sidecars on hosts 2 and 3, which call each other over mTLS', async () => {
    const [h1, h2, h3] = [hosts.host(1), hosts.host(2), hosts.host(3)];
    const dir = await mkdtemp(join(tmpdir(), 'faultline-hosts-'));
    // Loopback ports differ between the two sidecars although they are on different hosts: the config
    // refuses one listener address used twice, whatever host it is on.
    const config = {
      mesh: { name: 'hosts' },
      mtls: { mode: 'strict', trustDomain: 'shop.test' },
      services: [
        { name: 'client', endpoints: [{ address: '127.0.0.1:8081' }] },
        { name: 'hello', endpoints: [{ address: '127.0.0.1:8080' }] },
      ],
      sidecars: [
        { service: 'client', app: '127.0.0.1:8081', inbound: `${h2.address}:15006`, outbound: '127.0.0.1:15001', admin: '127.0.0.1:15000' },
        { service: 'hello', app: '127.0.0.1:8080', inbound: `${h3.address}:15006`, outbound: '127.0.0.1:15011', admin: '127.0.0.1:15010' },
      ],
    };
    await writeFile(join(dir, 'mesh.yaml'), stringify(config));
    await writeFile(join(dir, 'token'), 'cross-host-token\n', { mode: 0o600 });

    const control = await startIn(hosts, 1, ['control', '--config', join(dir, 'mesh.yaml'), '--listen', `${h1.address}:15100`, '--token-file', join(dir, 'token'), '--state-dir', join(dir, 'control')]);
    expect(control.printed.control).to.equal(`http://${h1.address}:15100`);
    await Promise.all([serveIn(hosts, h2, '127.0.0.1:8081', 'client'), serveIn(hosts, h3, '127.0.0.1:8080', 'hello')]);
    const sidecar = (host: number, service: string) =>
      startIn(hosts, host, ['sidecar', '--control', control.printed.control!, '--token-file', join(dir, 'token'), '--service', service, '--state-dir', join(dir, service)]);
    const [client, hello] = await Promise.all([sidecar(2, 'client'), sidecar(3, 'hello')]);
    expect([client.printed.inbound, hello.printed.inbound]).to.deep.equal([`${h2.address}:15006`, `${h3.address}:15006`]);

    // Host 2's side calls hello through its own sidecar (both listen once they printed their addresses);
    // hello's app sees the caller's identity, not the source the caller wrote.
    const answer = await requestFrom(hosts, h2, 'http://127.0.0.1:15001/', { headers: { host: 'hello', 'x-faultline-source': 'impostor' }, timeoutMs: 5_000 });
    expect(answer).to.have.property('status', 200);
    expect(answer).to.have.property('body', 'hello to client');
    // Hello's inbound is on host 3's address, and speaks only mTLS: plaintext from host 2 is refused, not unanswered.
    const plaintext = await requestFrom(hosts, h2, `http://${h3.address}:15006/`, { headers: { host: 'hello' } });
    expect(plaintext).to.have.property('error').that.is.oneOf(['ECONNRESET', 'socket hang up']);
    // Hello's app itself is on host 3's loopback only.
    expect(await requestFrom(hosts, h2, `http://${h3.address}:8080/`)).to.deep.equal({ error: 'ECONNREFUSED' });
  });
});
