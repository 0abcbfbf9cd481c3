// Which control plane leads, among replicas on one etcd: each campaigns as it starts (its URL the
// candidate) and GET /leader says who leads. A leader killed with SIGKILL says nothing: the other leads
// once the dead one's election lease ends — within the TTL (--leader-ttl), not at once and not never.
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { stringify } from 'yaml';
import { startEtcd, type EtcdCluster } from '../helpers/etcd.ts';
import { freeAddress, waitFor } from '../helpers/net.ts';
import { CLI, firstLine, stopProcess } from '../helpers/process.ts';

const TOKEN = 'leader-test-token';
const TTL_MS = 2_000;

interface Leader {
  leader: string | null;
  self: string;
  leading: boolean;
}

async function leaderOf(url: string): Promise<Leader> {
  const response = await request(`${url}/leader`, { headers: { authorization: `Bearer ${TOKEN}` }, signal: AbortSignal.timeout(2_000) });
  expect(response.statusCode).to.equal(200);
  return (await response.body.json()) as Leader;
}

describe('the leader among control planes on etcd', function () {
  this.timeout(60_000);
  let etcd: EtcdCluster;
  let dir: string;
  const children: ChildProcess[] = [];

  /** `faultline control` on the shared store, as a process of its own; resolves with its URL once it serves. */
  const control = async (i: number, withConfig: boolean): Promise<{ child: ChildProcess; url: string }> => {
    const args = ['control', '--listen', await freeAddress(), '--token-file', join(dir, 'token'), '--state-dir', join(dir, `cp${i}`), '--store', `etcd://${etcd.hosts.join(',')}/leader-${process.pid}`, '--leader-ttl', `${TTL_MS}ms`];
    const child = spawn(process.execPath, [CLI, ...args, ...(withConfig ? ['--config', join(dir, 'mesh.yaml')] : [])], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FAULTLINE_LOG_LEVEL: 'warn' } });
    children.push(child);
    return { child, url: (await firstLine(child, 'control plane')).printed.control! };
  };

  before(async () => {
    etcd = await startEtcd(1);
    dir = await mkdtemp(join(tmpdir(), 'faultline-leader-'));
    await writeFile(join(dir, 'token'), TOKEN);
    await writeFile(join(dir, 'mesh.yaml'), stringify({ mesh: { name: 'leader' }, services: [{ name: 'api' }] }));
  });

  after(async () => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) await stopProcess(child);
    await etcd?.stop();
  });

  it('one leads, both say which; the leader killed with SIGKILL, the other leads within the TTL', async () => {
    const planes = [await control(0, true), await control(1, false)];
    const urls = planes.map((p) => p.url);
    const views = await waitFor(async () => {
      const both = await Promise.all(urls.map(leaderOf));
      return both.every((v) => v.leader !== null && v.leader === both[0]!.leader) && both.filter((v) => v.leading).length === 1 && both;
    }, 10_000, 'one leader, named by both');
    expect(urls).to.include(views[0]!.leader);
    const leader = planes.find((p) => p.url === views[0]!.leader)!;
    const survivor = planes.find((p) => p !== leader)!;
    expect(await leaderOf(survivor.url)).to.deep.equal({ leader: leader.url, self: survivor.url, leading: false });

    const exited = new Promise((resolve) => leader.child.once('exit', resolve));
    leader.child.kill('SIGKILL');
    await exited;
    const killedAt = Date.now();
    await waitFor(async () => (await leaderOf(survivor.url)).leading, TTL_MS + 3_000, 'the survivor to lead');
    const tookMs = Date.now() - killedAt;
    expect(await leaderOf(survivor.url)).to.deep.equal({ leader: survivor.url, self: survivor.url, leading: true });
    // The dead one's lease was renewed at most a third of the TTL before it died: it ends no sooner than
    // the other two thirds; and no later than the TTL (give or take etcd's expiry check and this poll).
    expect(tookMs, `took ${tookMs} ms`).to.be.within(TTL_MS / 2, TTL_MS + 1_000);
  });
});
