// The election control planes hold on etcd for what must run once: one leader at a time; the next
// candidate leads at once when the leader resigns or closes, within the TTL when its host dies, and a
// leader cut off from etcd steps down before a rival can lead; its guarded writes stop with it. Then a
// three-member etcd losing its raft leader interrupts no store operation.
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Leadership } from '../../src/control/election.ts';
import { stepDownMarginMs } from '../../src/control/etcd-election.ts';
import { EtcdStore } from '../../src/control/etcd-store.ts';
import type { StoreChange } from '../../src/control/store.ts';
import { startEtcd, startRelay, type EtcdCluster, type Relay } from '../helpers/etcd.ts';
import { waitFor } from '../helpers/net.ts';

const CANDIDATE = fileURLToPath(new URL('../helpers/etcd-candidate.ts', import.meta.url));

describe('etcd election (a real etcd)', function () {
  this.timeout(30_000);
  let etcd: EtcdCluster;
  let opened: EtcdStore[] = [];
  let relays: Relay[] = [];
  let children: ChildProcess[] = [];
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
    prefix = `e${process.pid}-${++n}`;
  });
  afterEach(async () => {
    for (const child of children) child.kill('SIGKILL');
    await Promise.all(opened.map((s) => s.close()));
    await Promise.all(relays.map((r) => r.close()));
    opened = [];
    relays = [];
    children = [];
  });

  it('elects one candidate at a time; the next leads at once when the leader resigns, or closes its store', async () => {
    const [a, b, c] = [await open(), await open(), await open()];
    const first = await a.campaign('scheduler', 'cp-a', { ttlMs: 2_000 });
    expect(first.isLeader).to.equal(true);
    expect(first.ttlMs).to.equal(2_000);
    const leaders: Leadership[] = [];
    const stores = new Map([['cp-b', b], ['cp-c', c]]);
    for (const [id, store] of stores) void store.campaign('scheduler', id, { ttlMs: 2_000 }).then((l) => leaders.push(l));
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(leaders).to.deep.equal([]);
    expect(await c.leader('scheduler')).to.equal('cp-a');
    expect(await a.campaign('sweeps', 'cp-a', { ttlMs: 2_000 }).then((l) => l.isLeader)).to.equal(true);
    const resignedAt = Date.now();
    await first.resign();
    expect(first.isLeader).to.equal(false);
    expect(first.signal.aborted).to.equal(true);
    await waitFor(() => leaders.length === 1, 1_000, 'the next candidate to lead');
    const second = leaders[0]!;
    expect(Date.now() - resignedAt).to.be.below(1_000);
    expect(await a.leader('scheduler')).to.equal(second.candidateId);
    const closedAt = Date.now();
    await stores.get(second.candidateId)!.close();
    expect(second.signal.reason.message).to.equal(`leadership of ${second.candidateId} in "scheduler" ended: the store closed`);
    await waitFor(() => leaders.length === 2, 1_000, 'the last candidate to lead');
    expect(Date.now() - closedAt).to.be.below(1_000);
    expect(leaders.map((l) => l.candidateId).sort()).to.deep.equal(['cp-b', 'cp-c']);
  });

  it('guards a leader\'s writes: they land while it leads and not after', async () => {
    const [a, b] = [await open(), await open()];
    const leadership = await a.campaign('sweeps', 'cp-a', { ttlMs: 2_000 });
    expect(await leadership.put('schedules/next', '1')).to.equal(true);
    expect(await a.get('schedules/next')).to.equal('1');
    await leadership.resign();
    expect(await leadership.put('schedules/next', '2')).to.equal(false);
    const next = await b.campaign('sweeps', 'cp-b', { ttlMs: 2_000 });
    expect(await next.put('schedules/next', '3')).to.equal(true);
    expect(await b.get('schedules/next')).to.equal('3');
  });

  it('gives up a campaign when its signal aborts, leaving no key behind', async () => {
    const [a, b] = [await open(), await open()];
    await a.campaign('scheduler', 'cp-a', { ttlMs: 2_000 });
    const abort = new AbortController();
    const gaveUp = b.campaign('scheduler', 'cp-b', { ttlMs: 2_000, signal: abort.signal }).then(() => undefined, (e: Error) => e);
    await new Promise((resolve) => setTimeout(resolve, 200));
    abort.abort(new Error('shutting down'));
    expect((await gaveUp)?.message).to.match(/^candidacy of cp-b in "scheduler" ended: campaign abandoned/);
    expect(await b.leader('scheduler')).to.equal('cp-a');
    await (await a.campaign('sweeps', 'cp-a', { ttlMs: 2_000 })).resign();
    expect(await b.leader('sweeps')).to.equal(undefined);
    const error = await a.campaign('Bad Name', 'x', { ttlMs: 2_000 }).then(() => undefined, (e: Error) => e);
    expect(error?.message).to.equal('not a valid election name: "Bad Name"');
  });

  it('when the leader\'s process dies (kill -9), the other candidate leads within the TTL', async () => {
    const child = spawn(process.execPath, [CANDIDATE, etcd.hosts.join(','), prefix, 'scheduler', 'cp-dies', '2000'], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(child);
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d));
    await waitFor(() => out.includes('leading'), 10_000, 'the child to lead');
    const survivor = await open();
    const campaign = survivor.campaign('scheduler', 'cp-survives', { ttlMs: 2_000 });
    const killedAt = Date.now();
    child.kill('SIGKILL');
    const leadership = await campaign;
    const took = Date.now() - killedAt;
    expect(leadership.isLeader).to.equal(true);
    // The dead leader's lease ends at most a TTL after its last keepalive; etcd notices within 500 ms.
    expect(took).to.be.below(2_000 + 1_500);
  });

  for (const how of ['refused', 'silent'] as const) {
    it(`a leader cut off from etcd (${how}) steps down before its rival can lead`, async () => {
      const relay = await startRelay(etcd.hosts[0]!);
      relays.push(relay);
      const [cutOff, rival] = [await open([relay.address]), await open()];
      const leadership = await cutOff.campaign('scheduler', 'cp-cut', { ttlMs: 2_000 });
      let steppedDownAt = 0;
      leadership.signal.addEventListener('abort', () => (steppedDownAt = Date.now()));
      const campaign = rival.campaign('scheduler', 'cp-rival', { ttlMs: 2_000 });
      await new Promise((resolve) => setTimeout(resolve, 200));
      const cutAt = Date.now();
      if (how === 'refused') await relay.cut();
      else relay.silence();
      const next = await campaign;
      const ledAt = Date.now();
      expect(steppedDownAt, 'stepped down').to.be.above(0);
      expect(steppedDownAt).to.be.below(ledAt);
      // At the latest when its lease could have ended, less the margin: its first keepalive after the cut.
      expect(steppedDownAt - cutAt).to.be.below(2_000 - stepDownMarginMs(2_000));
      expect(ledAt - cutAt).to.be.below(2_000 + 1_500);
      expect(next.isLeader).to.equal(true);
      expect(await leadership.put('schedules/x', 'stale')).to.equal(false);
      expect(leadership.signal.reason.message).to.match(/^leadership of cp-cut in "scheduler" ended: (a keepalive failed|no keepalive answered in time)/);
    });
  }
});

describe('etcd store on three members: killing the raft leader interrupts nothing', function () {
  this.timeout(40_000);
  let etcd: EtcdCluster;

  before(async () => {
    etcd = await startEtcd(3);
  });
  after(async () => {
    await etcd?.stop();
  });

  async function raftLeader(): Promise<number> {
    const statuses = await Promise.all(etcd.members.map(async (m) => {
      const response = await fetch(`http://${m.client}/v3/maintenance/status`, { method: 'POST', body: '{}' });
      return (await response.json()) as { header: { member_id: string }; leader: string };
    }));
    return statuses.findIndex((s) => s.header.member_id === s.leader);
  }

  it('every put, get and lease renewal succeeds and the watch sees every change while the raft leader is killed', async () => {
    const [writer, watcher] = [await EtcdStore.connect({ hosts: etcd.hosts, prefix: 'ha' }), await EtcdStore.connect({ hosts: etcd.hosts, prefix: 'ha' })];
    try {
      const lease = await writer.grant(3_000);
      await writer.putLeased('instances/leased', 'L', lease);
      const seen: StoreChange[] = [];
      await watcher.watch('instances/k', (change) => seen.push(change));
      const leader = await waitFor(async () => { const i = await raftLeader(); return i >= 0 ? i : undefined; }, 5_000, 'a raft leader');
      const failures: string[] = [];
      let written = 0;
      const until = Date.now() + 4_000;
      let killed = false;
      let lastRenew = Date.now();
      let slowest = 0;
      while (Date.now() < until) {
        if (!killed && written === 10) {
          await etcd.members[leader]!.kill();
          killed = true;
        }
        const key = `instances/k${written}`;
        const t = Date.now();
        await writer.put(key, String(written)).catch((e: Error) => failures.push(`put ${key}: ${e.message}`));
        const read = await writer.get(key).catch((e: Error) => `get ${key}: ${e.message}`);
        if (read !== String(written)) failures.push(`get ${key}: ${read}`);
        written++;
        slowest = Math.max(slowest, Date.now() - t);
        if (Date.now() - lastRenew > 500) {
          lastRenew = Date.now();
          const renewed = await writer.renew(lease.id).catch((e: Error) => e.message);
          if (renewed !== true) failures.push(`renew: ${renewed}`);
        }
      }
      expect(killed).to.equal(true);
      expect(failures).to.deep.equal([]);
      // A put in flight to the dead leader is lost with it: it is retried after its 2 s deadline.
      expect(slowest).to.be.below(2 * 2_000 + 1_000);
      expect(await writer.get('instances/leased')).to.equal('L');
      await waitFor(() => seen.length >= written, 10_000, `the watch to see all ${written} puts`);
      expect(seen.map((c) => c.key)).to.deep.equal(Array.from({ length: written }, (_, i) => `instances/k${i}`));
    } finally {
      await writer.close();
      await watcher.close();
    }
  });
});
