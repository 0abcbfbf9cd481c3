// On one machine's file store the process itself is the only control plane: a campaign leads at once
// unless another campaign of the same name in this process does, and then leads when that one resigns.
import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalElector } from '../../src/control/election.ts';
import { electorFor } from '../../src/control/open-store.ts';
import { FileStore } from '../../src/control/store.ts';

describe('local election (file store)', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'faultline-election-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('leads at once; a second campaign of the same name waits for the first to resign, or gives up on its signal', async () => {
    const store = new FileStore(dir);
    const elector = electorFor(store);
    expect(elector).to.be.instanceOf(LocalElector);
    const first = await elector.campaign('scheduler', 'cp', { ttlMs: 10_000 });
    expect(first.isLeader).to.equal(true);
    expect(await first.put('schedules/next', '1')).to.equal(true);
    expect(await store.get('schedules/next')).to.equal('1');
    expect((await elector.campaign('sweeps', 'cp', { ttlMs: 10_000 })).isLeader).to.equal(true);
    const abort = new AbortController();
    const gaveUp = elector.campaign('scheduler', 'quitter', { ttlMs: 10_000, signal: abort.signal }).then(() => 'led', () => 'gave up');
    let second: string | undefined;
    const waiting = elector.campaign('scheduler', 'next', { ttlMs: 10_000 }).then((l) => (second = l.candidateId));
    abort.abort();
    expect(await gaveUp).to.equal('gave up');
    await new Promise((resolve) => setImmediate(resolve));
    expect(second).to.equal(undefined);
    expect(await elector.leader('scheduler')).to.equal('cp');
    await first.resign();
    expect(first.signal.aborted).to.equal(true);
    expect(await first.put('schedules/next', '2')).to.equal(false);
    await waiting;
    expect(second).to.equal('next');
    expect(await elector.leader('scheduler')).to.equal('next');
  });
});
