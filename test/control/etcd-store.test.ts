// The control plane's store on a real etcd (Debian's etcd-server, started here on loopback): the Store
// interface as the file store has it, leases kept on etcd's clock and renewable by id from any client
// (many at once on one keepalive stream), watches that see every writer and lose nothing across a
// broken connection or a compaction, and `--store` parsing. Several control planes are several EtcdStore clients on one etcd.
import { expect } from 'chai';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { EtcdStore } from '../../src/control/etcd-store.ts';
import { openStore, parseEtcdSpec } from '../../src/control/open-store.ts';
import { FileStore, type StoreChange } from '../../src/control/store.ts';
import { startEtcd, startRelay, type EtcdCluster, type Relay } from '../helpers/etcd.ts';
import { freePort, waitFor } from '../helpers/net.ts';

/** A watch's changes, with when each arrived. */
function recorder(): { changes: (StoreChange & { at: number })[]; onChange: (change: StoreChange) => void } {
  const changes: (StoreChange & { at: number })[] = [];
  return { changes, onChange: (change) => changes.push({ ...change, at: Date.now() }) };
}

describe('etcd store (a real etcd)', function () {
  this.timeout(30_000);
  let etcd: EtcdCluster;
  let opened: EtcdStore[] = [];
  let relays: Relay[] = [];
  let n = 0;
  let prefix: string;

  async function open(hosts = etcd.hosts): Promise<EtcdStore> {
    const store = await EtcdStore.connect({ hosts, prefix });
    opened.push(store);
    return store;
  }

  before(async () => {
    etcd = await startEtcd(1);
  });
  after(async () => {
    await etcd?.stop();
  });
  beforeEach(() => {
    prefix = `t${process.pid}-${++n}`;
  });
  afterEach(async () => {
    await Promise.all(opened.map((s) => s.close()));
    await Promise.all(relays.map((r) => r.close()));
    opened = [];
    relays = [];
  });

  it('gets, puts, deletes, lists and reads entries under its own prefix only', async () => {
    const store = await open();
    expect(await store.get('config/mesh.yaml')).to.equal(undefined);
    await store.put('config/mesh.yaml', 'a: 1');
    await store.put('faults/b', 'B');
    await store.put('faults/a', 'A');
    await store.put('faults/a', 'A2');
    expect(await store.get('config/mesh.yaml')).to.equal('a: 1');
    expect(await store.list('faults/')).to.deep.equal(['faults/a', 'faults/b']);
    expect([...(await store.entries('faults/'))]).to.deep.equal([['faults/a', 'A2'], ['faults/b', 'B']]);
    expect(await store.list('')).to.deep.equal(['config/mesh.yaml', 'faults/a', 'faults/b']);
    await store.delete('faults/a');
    await store.delete('faults/never');
    expect(await store.list('faults/')).to.deep.equal(['faults/b']);
    const other = await EtcdStore.connect({ hosts: etcd.hosts, prefix: `${prefix}-other` });
    opened.push(other);
    expect(await other.list('')).to.deep.equal([]);
    expect(store.root).to.equal(`/faultline/${prefix}/`);
    const big = await store.put('config/mesh.yaml', 'x'.repeat(2 * 1024 * 1024)).then(() => undefined, (e: Error) => e);
    expect(big?.message).to.equal('"config/mesh.yaml" (2.0 MiB) is larger than etcd takes (1.5 MiB, its --max-request-bytes)');
    await store.put('config/big.yaml', 'x'.repeat(1024 * 1024 + 512 * 1024 - 200));
    expect(await store.get('config/mesh.yaml')).to.equal('a: 1');
    for (const bad of ['../escape', '/abs', 'Upper', 'a//b']) {
      const error = await store.put(bad, 'x').then(() => undefined, (e: Error) => e);
      expect(error?.message, bad).to.equal(`not a valid store key: "${bad}"`);
    }
  });

  it('replaces a value only while it is the one expected (compare-and-swap), on etcd and on the file store alike', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'faultline-cas-'));
    for (const store of [await open(), new FileStore(dir)]) {
      expect(await store.replace('gamedays/run', undefined, 'v1')).to.equal(true);
      expect(await store.replace('gamedays/run', undefined, 'other')).to.equal(false);
      expect(await store.replace('gamedays/run', 'v0', 'other')).to.equal(false);
      expect(await store.replace('gamedays/run', 'v1', 'v2')).to.equal(true);
      expect(await store.get('gamedays/run')).to.equal('v2');
      // Of many writers racing from the same value, exactly one wins.
      const wins = await Promise.all(Array.from({ length: 8 }, (_, i) => store.replace('gamedays/run', 'v2', `w${i}`)));
      expect(wins.filter(Boolean)).to.have.length(1);
      expect(await store.get('gamedays/run')).to.equal(`w${wins.indexOf(true)}`);
      if (store instanceof FileStore) await store.close();
    }
  });

  it('grants leases in whole seconds, no shorter than etcd keeps (2 s), and a key not renewed vanishes on etcd\'s clock', async () => {
    const [owner, watcher] = [await open(), await open()];
    const seen = recorder();
    await watcher.watch('instances/', seen.onChange);
    const asked = Date.now();
    const lease = await owner.grant(500);
    expect(lease.ttlMs).to.equal(2_000);
    expect((await owner.grant(2_500)).ttlMs).to.equal(3_000);
    await owner.putLeased('instances/a', 'A', lease);
    expect(await watcher.get('instances/a')).to.equal('A');
    const gone = await waitFor(() => seen.changes.find((c) => c.value === undefined), 6_000, 'the leased key to vanish');
    const lived = gone.at - asked;
    // etcd checks expiry every 500 ms and deletes through raft: never before the TTL, a little after.
    expect(lived).to.be.within(lease.ttlMs - 50, lease.ttlMs + 1_500);
    expect(await owner.get('instances/a')).to.equal(undefined);
    expect(await owner.renew(lease.id)).to.equal(false);
    const error = await owner.putLeased('instances/b', 'B', lease).then(() => undefined, (e: Error) => e);
    expect(error?.message).to.equal(`lease ${lease.id} has ended`);
  });

  it('renews a lease by id from another client (another control plane), and revoking deletes its keys at once', async () => {
    const [granter, renewer, watcher] = [await open(), await open(), await open()];
    const seen = recorder();
    await watcher.watch('instances/', seen.onChange);
    const lease = await granter.grant(2_000);
    await granter.putLeased('instances/a', 'A', lease);
    await granter.putLeased('instances/b', 'B', lease);
    await granter.close();
    const until = Date.now() + lease.ttlMs * 1.5;
    while (Date.now() < until) {
      expect(await renewer.renew(lease.id)).to.equal(true);
      await new Promise((resolve) => setTimeout(resolve, 400));
    }
    expect(await renewer.list('instances/')).to.deep.equal(['instances/a', 'instances/b']);
    expect(seen.changes.filter((c) => c.value === undefined)).to.deep.equal([]);
    const revokedAt = Date.now();
    await renewer.revoke(lease.id);
    expect(await renewer.list('instances/')).to.deep.equal([]);
    await waitFor(() => seen.changes.filter((c) => c.value === undefined).length === 2, 2_000, 'both deletions');
    expect(seen.changes.at(-1)!.at - revokedAt).to.be.below(1_000);
    await renewer.revoke(lease.id);
    for (const bad of ['', 'abc', '-1', '0x10']) {
      const error = await renewer.renew(bad).then(() => undefined, (e: Error) => e);
      expect(error?.message).to.equal(`not an etcd lease id: "${bad}"`);
    }
  });

  it('renews many leases at once on one keepalive stream, each answer for its own lease; a stream gone quiet fails in its time, and the next works', async () => {
    const relay = await startRelay(etcd.hosts[0]!);
    relays.push(relay);
    const granter = await open();
    const renewer = await EtcdStore.connect({ hosts: [relay.address], prefix, callTimeoutMs: 1_000 });
    opened.push(renewer);
    const leases = await Promise.all(Array.from({ length: 20 }, () => granter.grant(5_000)));
    await granter.revoke(leases[7]!.id);
    expect(await Promise.all(leases.map((lease) => renewer.renew(lease.id)))).to.deep.equal(leases.map((_, i) => i !== 7));
    relay.silence();
    const started = Date.now();
    const error = await renewer.renew(leases[0]!.id).then(() => undefined, (e: Error) => e);
    expect(error?.message).to.match(/cannot renew lease/);
    expect(Date.now() - started).to.be.lessThan(3_000);
    await relay.mend();
    expect(await waitFor(() => renewer.renew(leases[0]!.id), 10_000, 'a renewal once the link is back')).to.equal(true);
  });

  it('watches puts, deletes and lease ends by other clients, in order, and nothing after it stops', async () => {
    const [writer, watcher] = [await open(), await open()];
    await writer.put('faults/before', 'x');
    const seen = recorder();
    const stop = await watcher.watch('faults/', seen.onChange);
    await writer.put('faults/a', '1');
    await writer.put('config', 'not under the prefix');
    await writer.put('faults/a', '2');
    await writer.delete('faults/before');
    const lease = await writer.grant(1_000);
    await writer.putLeased('faults/leased', 'L', lease);
    await writer.revoke(lease.id);
    await waitFor(() => seen.changes.length >= 5, 3_000, 'five changes');
    expect(seen.changes.map(({ key, value }) => ({ key, value }))).to.deep.equal([
      { key: 'faults/a', value: '1' },
      { key: 'faults/a', value: '2' },
      { key: 'faults/before', value: undefined },
      { key: 'faults/leased', value: 'L' },
      { key: 'faults/leased', value: undefined },
    ]);
    stop();
    await writer.put('faults/after', 'x');
    await writer.put('faults/marker', 'x');
    const marker = recorder();
    const stopMarker = await watcher.watch('faults/', marker.onChange);
    await writer.put('faults/marker', 'y');
    await waitFor(() => marker.changes.length === 1, 3_000, 'the second watch');
    stopMarker();
    expect(seen.changes).to.have.length(5);
  });

  it('resumes a broken watch where it left off: no change lost, none twice', async () => {
    const relay = await startRelay(etcd.hosts[0]!);
    relays.push(relay);
    const [writer, watcher] = [await open(), await open([relay.address])];
    const seen = recorder();
    await watcher.watch('instances/', seen.onChange);
    await writer.put('instances/a', '1');
    await waitFor(() => seen.changes.length === 1, 3_000, 'the first change');
    await relay.cut();
    await writer.put('instances/a', '2');
    await writer.put('instances/b', '1');
    await writer.delete('instances/a');
    await relay.mend();
    await waitFor(() => seen.changes.length >= 4, 10_000, 'the changes made while cut off');
    await writer.put('instances/c', '1');
    await waitFor(() => seen.changes.length >= 5, 3_000, 'a change after');
    expect(seen.changes.map(({ key, value }) => `${key}=${value}`)).to.deep.equal([
      'instances/a=1', 'instances/a=2', 'instances/b=1', 'instances/a=undefined', 'instances/c=1',
    ]);
  });

  it('after a compaction past where a watch broke off, lists again and reports just the differences', async () => {
    const relay = await startRelay(etcd.hosts[0]!);
    relays.push(relay);
    const [writer, watcher] = [await open(), await open([relay.address])];
    await writer.put('instances/same', 's');
    await writer.put('instances/changed', '1');
    await writer.put('instances/deleted', 'd');
    const seen = recorder();
    await watcher.watch('instances/', seen.onChange);
    await relay.cut();
    await writer.put('instances/changed', '2');
    await writer.put('instances/changed', '3');
    await writer.delete('instances/deleted');
    await writer.put('instances/added', 'a');
    await writer.put('instances/transient', 't');
    await writer.delete('instances/transient');
    const raw = new Etcd3({ hosts: etcd.hosts });
    try {
      const { header } = await raw.get('x').exec();
      await raw.kv.compact({ revision: header.revision, physical: true });
    } finally {
      raw.close();
    }
    await relay.mend();
    await waitFor(() => seen.changes.length >= 3, 10_000, 'the differences');
    await writer.put('instances/after', 'x');
    await waitFor(() => seen.changes.some((c) => c.key === 'instances/after'), 3_000, 'a change after the re-list');
    expect(seen.changes.map(({ key, value }) => `${key}=${value}`).sort()).to.deep.equal([
      'instances/added=a', 'instances/after=x', 'instances/changed=3', 'instances/deleted=undefined',
    ]);
  });

  it('parses --store etcd://… and opens a file store for a directory, refusing what it cannot open', async () => {
    expect(parseEtcdSpec('etcd://h1:2379,h2:2380,10.213.0.3')).to.deep.equal({ hosts: ['h1:2379', 'h2:2380', '10.213.0.3:2379'], prefix: 'default' });
    expect(parseEtcdSpec('etcd://127.0.0.1:12379/shop')).to.deep.equal({ hosts: ['127.0.0.1:12379'], prefix: 'shop' });
    const problems: Record<string, string> = {
      'etcd://': '"" is not host:port',
      'etcd://h1:99999': 'port 99999 of "h1:99999" is out of range',
      'etcd://h1:2379,/x': '"" is not host:port',
      'etcd://h1/Shop': 'the prefix "Shop" is not lowercase letters, digits, "-" and "."',
    };
    for (const [spec, why] of Object.entries(problems)) {
      expect(() => parseEtcdSpec(spec), spec).to.throw(`--store ${spec}: ${why} (expected etcd://host:port[,host:port…][/prefix])`);
    }
    expect(await openStore(undefined, '/tmp/x')).to.be.instanceOf(FileStore);
    expect(await openStore('/var/lib/faultline', '/tmp/x')).to.be.instanceOf(FileStore);
    const error = await openStore('consul://h:8500', '/tmp/x').then(() => undefined, (e: { code: string; message: string }) => e);
    expect(error?.code).to.equal('FL_STORE_INVALID');
    const store = await openStore(`etcd://${etcd.hosts[0]}/${prefix}`, '/tmp/x');
    opened.push(store as EtcdStore);
    expect(store).to.be.instanceOf(EtcdStore);
    const nobody = `127.0.0.1:${await freePort()}`;
    const started = Date.now();
    const refused = await openStore(`etcd://${nobody}`, '/tmp/x').then(() => undefined, (e: { code: string; message: string }) => e);
    expect(refused?.code).to.equal('FL_STORE_UNAVAILABLE');
    expect(refused?.message).to.match(new RegExp(`^cannot reach etcd at http://${nobody}: `));
    expect(Date.now() - started).to.be.below(6_000);
  });
});
