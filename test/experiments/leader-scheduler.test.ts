// The scheduler under the control planes' leadership (issue 22's drill): two `faultline control`
// processes on one etcd, both given the same scheduled experiment; the leader runs it. Killed with
// SIGKILL mid-method, the leader says nothing: the other leads within the election's TTL, closes the
// dead run's head (its faults removed), records the run as ended by the stop in the schedule it carries
// on from the store, loses no instance, and runs a later scheduled time itself, to completion.
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { stringify } from 'yaml';
import { startControlledSidecar, type ControlledSidecar } from '../../src/control/agent.ts';
import type { GameDayHead } from '../../src/control/heads.ts';
import type { SchedulerState } from '../../src/experiments/scheduler.ts';
import { STOPPED_DURING_RUN } from '../../src/experiments/scheduler.ts';
import { startEtcd, type EtcdCluster } from '../helpers/etcd.ts';
import { freeAddress, startUpstream, waitFor, type Upstream } from '../helpers/net.ts';
import { CLI, firstLine, stopProcess } from '../helpers/process.ts';

const TOKEN = 'leader-scheduler-token';
const TTL_MS = 2_000;

async function get<T>(url: string, path: string): Promise<T> {
  const response = await request(`${url}${path}`, { headers: { authorization: `Bearer ${TOKEN}` }, signal: AbortSignal.timeout(3_000) });
  expect(response.statusCode, `GET ${url}${path}`).to.equal(200);
  return (await response.body.json()) as T;
}

describe('the scheduler under the leadership of control planes on etcd', function () {
  this.timeout(90_000);
  let etcd: EtcdCluster;
  let dir: string;
  const children: ChildProcess[] = [];
  const sidecars: ControlledSidecar[] = [];
  const apps: Upstream[] = [];

  after(async () => {
    for (const s of sidecars) await s.close().catch(() => undefined);
    for (const child of children) if (child.exitCode === null && child.signalCode === null) await stopProcess(child);
    for (const app of apps) await app.close();
    await etcd?.stop();
  });

  it('the leader killed mid-run: the other leads, closes the run and removes its faults, and runs a later time', async () => {
    etcd = await startEtcd(1);
    dir = await mkdtemp(join(tmpdir(), 'faultline-leader-scheduler-'));
    await writeFile(join(dir, 'token'), TOKEN);
    await writeFile(join(dir, 'mesh.yaml'), stringify({
      mesh: { name: 'scheduled' },
      services: [{ name: 'web' }, { name: 'api' }],
      routes: [{ name: 'api', match: { host: 'api' }, destinations: [{ service: 'api' }], retries: { attempts: 3, retryOn: ['5xx'], backoff: { base: '1ms', max: '5ms' } } }],
    }));
    const listen = [await freeAddress(), await freeAddress()];
    const urls = listen.map((a) => `http://${a}`);
    const outbound = await freeAddress();
    // Every 12 s: the leader runs one (and is killed during it), the survivor the next — however slow a
    // busy machine makes the start or the takeover.
    await mkdir(join(dir, 'experiments'));
    await writeFile(join(dir, 'experiments', 'api-aborts.yaml'), stringify({
      name: 'api-aborts',
      target: { control: urls, tokenFile: '../token' },
      load: { url: `http://${outbound}`, requests: [{ path: '/', headers: { host: 'api' } }], rate: 30 },
      phases: { warmup: '300ms', baseline: '1s', recovery: '1s' },
      steadyState: [{ availability: { service: 'api', min: 90 } }],
      method: [{ at: '0s', duration: '4s', fault: { id: 'api-aborts', match: { destination: 'api' }, at: 'attempt', percent: 20, abort: { status: 503 } } }],
      schedule: { cron: '*/12 * * * * *', timezone: 'UTC' },
    }));
    const control = async (i: number): Promise<ChildProcess> => {
      const child = spawn(process.execPath, [CLI, 'control', '--listen', listen[i]!, '--token-file', join(dir, 'token'), '--state-dir', join(dir, `cp${i}`),
        '--store', `etcd://${etcd.hosts.join(',')}/sched-${process.pid}`, '--leader-ttl', `${TTL_MS}ms`,
        '--experiments', join(dir, 'experiments'), '--reports', join(dir, `reports-${i}`), ...(i === 0 ? ['--config', join(dir, 'mesh.yaml')] : [])],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FAULTLINE_LOG_LEVEL: 'warn' } });
      children.push(child);
      expect((await firstLine(child, `control plane ${i}`)).printed.scheduling).to.deep.equal(['api-aborts']);
      return child;
    };
    const doomed = await control(0);
    await waitFor(async () => (await get<{ leading: boolean }>(urls[0]!, '/leader')).leading, 5_000, 'control plane 0 to lead');
    await control(1);
    for (const [name, service, extra] of [['web-1', 'web', { outbound }], ['api-1', 'api', {}], ['api-2', 'api', {}]] as const) {
      const app = service === 'api' ? await startUpstream(name) : undefined;
      if (app) apps.push(app);
      sidecars.push(await startControlledSidecar({ url: urls, token: TOKEN, stateDir: join(dir, `s-${name}`), waitMs: 5_000,
        join: { service, name, admin: await freeAddress(), ...extra, ...(app && { app: app.address, inbound: await freeAddress() }) } }));
    }
    await waitFor(() => sidecars[0]!.sidecar.snapshot.services.get('api')?.endpoints.length === 2, 10_000, 'web-1 to have both api instances');

    // The leader's scheduler runs the first time: its head says so, and the fault is in force.
    const running = await waitFor(async () => {
      const { heads } = await get<{ heads: GameDayHead[] }>(urls[1]!, '/gamedays');
      return heads.find((h) => h.status === 'running' && h.faults.includes('api-aborts'));
    }, 30_000, 'the scheduled run in its method, seen from the other replica');
    expect(running.scheduledBy).to.equal(urls[0]);
    expect(running.experiment).to.equal('api-aborts');
    await waitFor(() => sidecars.every((s) => s.sidecar.faults.get('api-aborts')), 5_000, 'the fault on every sidecar');

    const exited = new Promise((resolve) => doomed.once('exit', resolve));
    doomed.kill('SIGKILL');
    await exited;
    await waitFor(async () => (await get<{ leading: boolean }>(urls[1]!, '/leader')).leading, TTL_MS + 8_000, 'the survivor to lead');

    // The new leader closes the dead run at once (it was its scheduler's) and removes its faults: before their 5 s lease would end them.
    const closed = await waitFor(async () => {
      const head = await get<GameDayHead>(urls[1]!, `/gamedays/${running.id}`);
      return head.status === 'complete' && head;
    }, 10_000, 'the dead run closed');
    expect(closed).to.include({ outcome: 'error', closedBy: urls[1] });
    // Removed by the new leader (the delete found it still in force), not left to its lease.
    expect(closed.reason).to.match(/stopped leading/).and.to.match(/removed its faults api-aborts/);
    await waitFor(() => sidecars.every((s) => !s.sidecar.faults.get('api-aborts')), 5_000, 'the fault gone from every sidecar');
    // No instance lost: both api instances registered, on every sidecar.
    const instances = await get<{ instances: { name: string }[] }>(urls[1]!, '/instances');
    expect(instances.instances.map((i) => i.name).sort()).to.deep.equal(['api-1', 'api-2']);
    expect(sidecars[0]!.sidecar.snapshot.services.get('api')?.endpoints.length).to.equal(2);
    // The schedule, carried on from the store: the killed run recorded as ended by the stop.
    const killed = await waitFor(async () => {
      const state = await get<SchedulerState>(urls[1]!, '/schedule');
      return state.history.find((r) => r.outcome === 'error' && r.reason === STOPPED_DURING_RUN);
    }, 10_000, 'the survivor to close the killed run in the schedule');
    expect(killed.startedAt).not.to.equal(null);

    // The survivor runs a later time itself, to the end, rolled back and verified.
    const done = await waitFor(async () => {
      const state = await get<SchedulerState>(urls[1]!, '/schedule');
      return state.history.find((r) => r.scheduledFor > killed.scheduledFor && r.finishedAt !== null && r.outcome !== 'skipped');
    }, 45_000, 'a later run to finish');
    expect(done.outcome, done.reason).to.equal('passed');
    const mine = await waitFor(async () => {
      const { heads } = await get<{ heads: GameDayHead[] }>(urls[1]!, '/gamedays');
      return heads.find((h) => h.scheduledBy === urls[1] && h.status === 'complete');
    }, 5_000, "the survivor's run's head complete");
    expect(mine).to.include({ outcome: 'passed', experiment: 'api-aborts' });
    expect(mine.faults).to.deep.equal([]);
  });
});
