// The mesh across hosts (network namespaces; root only): the control plane on host 1, listening on its
// host address; a sidecar and its app on hosts 2 and 3, each sidecar taking its config and identity
// from host 1, its inbound on its host's address, outbound, admin and app on its own loopback. A call
// from host 2's side through its sidecar reaches host 3's app over mTLS; host 3's inbound refuses
// plaintext. Then a fleet: sidecars that join by flags with join tokens (the same loopback ports on
// every host), whose instance, readiness, events and emergency stop all reach the control plane over
// their own connections — nothing reads another host's loopback; and a host cut off, whose instance
// leaves with its lease and comes back when healed.
import { expect } from 'chai';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { HostNetwork } from '../../src/control/hosts.ts';
import { faultlineIn, requestFrom, serveIn } from '../helpers/hosts.ts';
import { CLI, firstLine } from '../helpers/process.ts';

/** Starts a faultline command inside a host; resolves with its first stdout line (its addresses) once it prints it. */
async function startIn(hosts: HostNetwork, host: number, args: string[]): Promise<{ child: ChildProcess; printed: Record<string, string> }> {
  const child = hosts.run(host, process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FAULTLINE_LOG_LEVEL: 'warn' } });
  return { child, printed: (await firstLine(child, `faultline ${args[0]} on h${host}`)).printed };
}

describe('the mesh across hosts', function () {
  this.timeout(60_000);
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

  it('sidecars join by flags with join tokens, the same loopback ports on every host; readiness, events and the emergency stop reach across', async () => {
    const [h1, h2, h3] = [hosts.host(1), hosts.host(2), hosts.host(3)];
    const dir = await mkdtemp(join(tmpdir(), 'faultline-fleet-'));
    // No sidecar entry, no endpoint: the instances say where they are.
    await writeFile(join(dir, 'mesh.yaml'), stringify({ mesh: { name: 'fleet' }, mtls: { mode: 'strict' }, services: [{ name: 'client' }, { name: 'hello' }] }));
    await writeFile(join(dir, 'admin.token'), 'fleet-admin-token\n', { mode: 0o600 });
    const url = `http://${h1.address}:15200`;
    await startIn(hosts, 1, ['control', '--config', join(dir, 'mesh.yaml'), '--listen', `${h1.address}:15200`, '--token-file', join(dir, 'admin.token'), '--state-dir', join(dir, 'control')]);
    // The operator makes a join token per service; the hosts get those, not the admin token.
    for (const service of ['client', 'hello']) {
      const made = await faultlineIn(hosts, h1, ['token', 'create', '--control', url, '--token-file', join(dir, 'admin.token'), '--service', service]);
      expect(made.code, made.stderr).to.equal(0);
      await writeFile(join(dir, `${service}.token`), made.stdout, { mode: 0o600 });
    }
    await serveIn(hosts, h3, '127.0.0.1:8090', 'hello');
    const join_ = (host: number, service: string, flags: string[]) =>
      startIn(hosts, host, ['sidecar', '--control', url, '--token-file', join(dir, `${service}.token`), '--service', service, '--admin', '127.0.0.1:15020', '--state-dir', join(dir, `${service}-${host}`), ...flags]);
    const hello = await join_(3, 'hello', ['--app', '127.0.0.1:8090', '--inbound', '0.0.0.0:15016', '--advertise', `${h3.address}:15016`, '--labels', 'version=v1', '--lease', '3s']);
    await join_(2, 'client', ['--outbound', '127.0.0.1:15021']);
    expect(hello.printed.inbound).to.equal('0.0.0.0:15016');

    const admin = { authorization: 'Bearer fleet-admin-token' };
    const json = async (path: string, options: { method?: string; body?: string } = {}) => {
      const answer = await requestFrom(hosts, h2, `${url}${path}`, { headers: { ...admin, 'content-type': 'application/yaml' }, timeoutMs: 5_000, ...options });
      if (!('status' in answer)) throw new Error(`${path}: ${answer.error}`);
      return { status: answer.status, body: answer.body ? (JSON.parse(answer.body) as Record<string, unknown>) : {} };
    };
    const { body: listed } = await json('/instances');
    expect((listed.instances as { name: string; address: string; labels: Record<string, string> }[]).map((i) => [i.name, i.address, i.labels.version])).to.deep.equal([[`hello-${h3.address.replace(/\./g, '-')}-15016`, `${h3.address}:15016`, 'v1']]);

    // The client's app calls hello by name; its sidecar has hello's registered instance, over mTLS.
    let answer = await requestFrom(hosts, h2, 'http://127.0.0.1:15021/', { headers: { host: 'hello' }, timeoutMs: 5_000 });
    for (let tries = 0; !('status' in answer && answer.status === 200) && tries < 50; tries++) {
      // The client's sidecar may not have the registration yet: it comes within the coalescing window.
      await new Promise((resolve) => setTimeout(resolve, 100));
      answer = await requestFrom(hosts, h2, 'http://127.0.0.1:15021/', { headers: { host: 'hello' }, timeoutMs: 5_000 });
    }
    expect(answer).to.deep.include({ status: 200, body: 'hello to client' });

    // Health comes over each sidecar's own connection, not from its admin listener (on its host's loopback).
    const { body: sidecars } = await json('/sidecars');
    expect((sidecars.sidecars as { name: string; health: string; uplink: { open: boolean } }[]).map((s) => [s.name.split('-')[0], s.health, s.uplink.open])).to.deep.equal([['client', 'ready', true], ['hello', 'ready', true]]);

    // A fault from the control plane acts on host 3's sidecar; its events reach the merged stream.
    expect((await json('/faults/hello-down', { method: 'PUT', body: 'match: {destination: hello}\nat: inbound\nabort: {status: 503}\nttl: 1m\n' })).status).to.equal(200);
    let faulted = await requestFrom(hosts, h2, 'http://127.0.0.1:15021/', { headers: { host: 'hello' }, timeoutMs: 5_000 });
    for (let tries = 0; !('status' in faulted && faulted.status === 503) && tries < 50; tries++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      faulted = await requestFrom(hosts, h2, 'http://127.0.0.1:15021/', { headers: { host: 'hello' }, timeoutMs: 5_000 });
    }
    expect(faulted).to.have.property('status', 503);
    const events = await requestFrom(hosts, h2, `${url}/events?since=0`, { headers: admin, timeoutMs: 1_500 });
    const applied = ('body' in events ? events.body : '').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { type: string; sidecar: string; faultId?: string });
    expect(applied.some((e) => e.type === 'fault.applied' && e.faultId === 'hello-down' && e.sidecar.startsWith('hello-'))).to.equal(true);

    // The emergency stop, from host 1: verified on both hosts' sidecars from what they acknowledged.
    const stop = await faultlineIn(hosts, h1, ['stop', '--control', url, '--token-file', join(dir, 'admin.token'), '--by', 'tester', '--reason', 'drill']);
    expect(stop.code, stop.stdout + stop.stderr).to.equal(0);
    expect(stop.stdout).to.contain('halted by tester: 1 runtime fault(s) removed (hello-down)').and.contain('verified: no runtime fault is left on any of 2 sidecar(s)');

    // Host 3 cut off (its link down): its instance stays everywhere until its 3 s lease says otherwise,
    // then leaves; host 3's sidecar goes on serving locally; healed, it registers again and is called again.
    await hosts.cut(h3);
    const cutAt = Date.now();
    const registered = async () => ((await json('/instances')).body.instances as unknown[]).length;
    await waitUntil(async () => (await registered()) === 0, 10_000, 'the cut-off instance to leave with its lease');
    expect(Date.now() - cutAt, 'not before its lease could end').to.be.above(3_000 / 3);
    expect(await requestFrom(hosts, h3, 'http://127.0.0.1:15020/ready')).to.have.property('status', 200);
    await hosts.heal(h3);
    await waitUntil(async () => (await registered()) === 1, 15_000, 'the healed instance to register again');
    await waitUntil(async () => {
      const again = await requestFrom(hosts, h2, 'http://127.0.0.1:15021/', { headers: { host: 'hello' }, timeoutMs: 3_000 });
      return 'status' in again && again.status === 200;
    }, 10_000, 'client to call hello again');
  });
});

/** Polls an async probe until it holds, or fails after `ms`. */
async function waitUntil(probe: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await probe().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
