// A sidecar's parts alone: reloads of its config file, and its connection pools per destination.
import { expect } from 'chai';
import { writeFile } from 'node:fs/promises';
import { stringify } from 'yaml';
import type { Snapshot } from '../../src/config/snapshot.ts';
import { Dispatchers } from '../../src/proxy/dispatchers.ts';
import { ConfigReloader } from '../../src/proxy/reload.ts';
import { EventBus } from '../../src/telemetry/events.ts';
import { silentLogger } from '../../src/telemetry/log.ts';
import { snapshotOf, writeMesh } from '../helpers/mesh.ts';

const mesh = (port: number) => ({
  mesh: { name: 'parts' },
  services: [{ name: 'web', endpoints: [{ address: `127.0.0.1:${port}` }] }],
  sidecars: [{ name: 'web', service: 'web', outbound: '127.0.0.1:1', inbound: '127.0.0.1:2', admin: '127.0.0.1:3', app: `127.0.0.1:${port}` }],
});

describe('ConfigReloader', () => {
  /** A sidecar as a reload sees it: the snapshot in force and what applied. */
  function target(snapshot: Snapshot) {
    const applied: string[] = [];
    return { applied, snapshot, apply(next: Snapshot) { this.snapshot = next; applied.push(next.version); } };
  }

  it('applies a changed file, says when nothing changed, and answers reloads asked for meanwhile with the one in progress', async () => {
    const file = await writeMesh(mesh(4));
    const sidecar = target(snapshotOf(mesh(4), file));
    const reloader = new ConfigReloader(file, sidecar, new EventBus('web'), silentLogger);
    expect(await reloader.reload()).to.deep.include({ ok: true, changed: false });
    await writeFile(file, stringify(mesh(5)));
    const [first, second] = await Promise.all([reloader.reload(), reloader.reload()]);
    expect(first).to.deep.equal(second).and.to.deep.include({ ok: true, changed: true });
    expect(sidecar.applied).to.have.length(1);
  });

  it('refuses a bad file, keeps the snapshot in force and emits config.rejected', async () => {
    const file = await writeMesh(mesh(4));
    const sidecar = target(snapshotOf(mesh(4), file));
    const events = new EventBus('web');
    const rejected: string[] = [];
    events.on('config.rejected', (e) => rejected.push(e.source));
    await writeFile(file, 'services: [');
    const result = await new ConfigReloader(file, sidecar, events, silentLogger).reload();
    expect(result.ok).to.equal(false);
    expect([sidecar.applied, rejected]).to.deep.equal([[], [file]]);
  });

  it('cannot reload a sidecar started without a file', async () => {
    const result = await new ConfigReloader(undefined, target(snapshotOf(mesh(4))), new EventBus('web'), silentLogger).reload();
    expect(result).to.deep.equal({ ok: false, error: 'this sidecar was not started from a config file' });
  });
});

describe('Dispatchers', () => {
  const mtls = (mode: 'off' | 'strict') => ({ ...snapshotOf(mesh(4)).config.mtls, mode });

  it('with mtls off, one pool for every destination', async () => {
    const dispatchers = new Dispatchers(mtls('off'), undefined);
    expect(dispatchers.for('a')).to.equal(dispatchers.for('b')).and.to.equal(dispatchers.for(undefined));
    await dispatchers.close();
  });

  it('with mtls on, one pool per destination service, kept', async () => {
    const dispatchers = new Dispatchers(mtls('strict'), undefined);
    expect(dispatchers.for('a')).to.not.equal(dispatchers.for('b'));
    expect(dispatchers.for('a')).to.equal(dispatchers.for('a'));
    await dispatchers.close();
  });
});
