// Runtime faults through a sidecar's admin API: PUT validated by the config's schema (rejected whole,
// with line and field), limits (active faults, percent, lease) refused with a clear error, leases that
// end on time with nobody calling back, DELETE /faults immediate under load, and config faults that
// come and go with the config.
import { expect } from 'chai';
import type { Sidecar } from '../../src/proxy/sidecar.ts';
import type { MeshEvents } from '../../src/telemetry/events.ts';
import { call, load, send } from '../helpers/client.ts';
import { sidecarEntry, snapshotOf, startSidecar } from '../helpers/mesh.ts';
import { freeAddress, startUpstream, waitFor, type Upstream } from '../helpers/net.ts';

describe('fault admin API', function () {
  this.timeout(30_000);
  let upstream: Upstream;
  let sidecar: Sidecar;
  let config: Record<string, unknown>;
  const removed: MeshEvents['fault.removed'][] = [];

  const put = (id: string, body: string, type = 'application/yaml') =>
    send(sidecar.addresses.admin, { method: 'PUT', path: `/faults/${id}`, headers: { 'content-type': type }, body });

  before(async () => {
    upstream = await startUpstream('upstream');
    config = {
      mesh: { name: 'fault-admin' },
      faultInjection: { maxActive: 3, maxPercent: 50, maxTtl: '10m', defaultTtl: '1m' },
      services: [{ name: 'client', endpoints: [{ address: await freeAddress() }] }, { name: 'upstream', endpoints: [{ address: upstream.address }] }],
      sidecars: [await sidecarEntry('client', await freeAddress())],
      faults: [{ id: 'static', match: { destination: 'upstream', path: '/static' }, abort: { status: 500 }, percent: 50 }],
    };
    sidecar = await startSidecar(config, 'client');
    sidecar.events.on('fault.removed', (e) => removed.push(e));
  });

  afterEach(() => {
    sidecar.faults.deleteAll();
    removed.length = 0;
  });

  after(async () => {
    await sidecar.close();
    await upstream.close();
  });

  it('installs a fault from YAML or JSON, with its lease, and lists it', async () => {
    const yaml = await put('slow', 'match: {destination: upstream}\npercent: 25\ndelay: {fixed: 10ms}\nttl: 2m\n');
    expect(yaml.status).to.equal(200);
    expect(yaml.json()).to.include({ id: 'slow', origin: 'runtime', action: 'delay' });
    const json = await put('errors', JSON.stringify({ id: 'errors', abort: { status: 503 }, percent: 10 }), 'application/json');
    expect(json.status).to.equal(200);
    const listed = (await send(sidecar.addresses.admin, { path: '/faults' })).json<{ faults: { id: string; origin: string; remainingMs: number | null }[] }>();
    expect(listed.faults.map((f) => [f.id, f.origin])).to.deep.equal([['static', 'config'], ['slow', 'runtime'], ['errors', 'runtime']]);
    const [, slow, errors] = listed.faults;
    expect(slow!.remainingMs).to.be.within(110_000, 120_000);
    expect(errors!.remainingMs).to.be.within(50_000, 60_000); // the default ttl
  });

  it('rejects an invalid fault whole, naming line and field, and keeps what was there', async () => {
    await put('keep', 'abort: {status: 503}\npercent: 5\n');
    const reply = await put('keep', 'percent: 5\ndelay:\n  fixed: soon\nmatch: {destination: nowhere}\n');
    expect(reply.status).to.equal(400);
    const problems = reply.json<{ problems: { file: string; line: number; field: string; message: string }[] }>().problems;
    expect(problems.map((p) => [p.file, p.line, p.field, p.message])).to.deep.equal([
      ['PUT /faults/keep', 3, 'delay.fixed', 'expected a duration such as "250ms", "2s", "1m"'],
    ]);
    const unknown = await put('keep', 'match: {destination: nowhere}\nhang: {}\n');
    expect(unknown.json<{ problems: { line: number; field: string; message: string }[] }>().problems).to.deep.equal([
      { file: 'PUT /faults/keep', line: 1, column: 22, field: 'match.destination', message: 'no service named "nowhere"' },
    ]);
    expect(sidecar.faults.get('keep')!.spec.abort).to.deep.equal({ status: 503 });
  });

  it('names the lease field that is wrong: a ttl of 0, an expiresAt already past', async () => {
    const zero = await put('brief', 'hang: {}\npercent: 1\nttl: 0s\n');
    expect(zero.status).to.equal(400);
    expect(zero.json<{ problems: { line: number; field: string; message: string }[] }>().problems.map((p) => [p.line, p.field, p.message])).to.deep.equal([
      [3, 'ttl', 'must be above 0: a lease of 0 would end as it begins'],
    ]);
    const past = await put('brief', 'hang: {}\npercent: 1\nexpiresAt: 2020-01-01T00:00:00Z\n');
    expect([past.status, past.json().error]).to.deep.equal([422, 'expiresAt: 2020-01-01T00:00:00Z has already passed; a lease must end in the future']);
    expect(sidecar.faults.get('brief')).to.equal(undefined);
  });

  it('refuses what a limit forbids, with the limit named', async () => {
    const over = await put('big', 'abort: {status: 503}\npercent: 80\n');
    expect([over.status, over.json().error]).to.deep.equal([422, 'percent 80 is over the limit faultInjection.maxPercent (50)']);
    const long = await put('long', 'abort: {status: 503}\npercent: 5\nttl: 1h\n');
    expect([long.status, long.json().error]).to.deep.equal([422, 'a lease of 3600000 ms is over the limit faultInjection.maxTtl (600000 ms)']);
    expect((await put('a', 'hang: {}\npercent: 1\n')).status).to.equal(200);
    expect((await put('b', 'hang: {}\npercent: 1\n')).status).to.equal(200);
    const full = await put('c', 'hang: {}\npercent: 1\n');
    expect([full.status, full.json().error]).to.deep.equal([422, '3 faults are active, the limit faultInjection.maxActive (3): delete one first']);
    expect((await put('b', 'hang: {}\npercent: 2\n')).status, 'replacing one is not adding one').to.equal(200);
    const fromConfig = await put('static', 'hang: {}\n');
    expect(fromConfig.status).to.equal(422);
  });

  it('ends a lease on time by itself, with no one calling back', async () => {
    const start = Date.now();
    // A 1 s lease: the 20 requests meant to meet it have that long to start, even on a busy machine.
    expect((await put('brief', 'match: {destination: upstream}\nabort: {status: 503}\npercent: 50\nttl: 1s\n')).status).to.equal(200);
    expect((await load(20, 4, () => call(sidecar.addresses.outbound!, 'upstream'))).some((r) => r.status === 503)).to.equal(true);
    // Ended by its own timer: nothing calls the sidecar while this waits.
    await waitFor(() => removed.find((e) => e.faultId === 'brief'), 5_000, 'the lease to end');
    expect(removed[0]).to.include({ faultId: 'brief', reason: 'expired', origin: 'runtime' });
    expect(Date.now() - start).to.be.at.least(990);
    const after = await load(40, 4, () => call(sidecar.addresses.outbound!, 'upstream'));
    expect(after.every((r) => r.status === 200)).to.equal(true);
    expect(sidecar.faults.get('brief')).to.equal(undefined);
  });

  it('DELETE /faults removes every runtime fault at once, releasing requests they hold, under load', async () => {
    await put('stuck', 'match: {destination: upstream}\nhang: {}\npercent: 50\n');
    await put('slow', 'match: {destination: upstream}\ndelay: {fixed: 30s}\npercent: 50\n');
    const inFlight = load(60, 30, () => call(sidecar.addresses.outbound!, 'upstream'));
    await waitFor(() => sidecar.faults.get('stuck')!.counter.applied + sidecar.faults.get('slow')!.counter.applied >= 10, 5_000, 'held requests');
    const start = performance.now();
    const reply = await send(sidecar.addresses.admin, { method: 'DELETE', path: '/faults' });
    expect(reply.json()).to.deep.equal({ deleted: ['stuck', 'slow'], remaining: ['static'] });
    const replies = await inFlight;
    // Released by the removal: held, they would wait 30 s (the delay) or for good (the hang).
    expect(performance.now() - start).to.be.below(10_000);
    expect(replies.every((r) => r.status === 200)).to.equal(true);
  });

  it('renews a lease in place: the same fault with a new ttl keeps its decisions going', async () => {
    await put('renewed', 'match: {destination: upstream}\nabort: {status: 503}\npercent: 50\nseed: 3\nttl: 1m\n');
    const fault = sidecar.faults.get('renewed')!;
    await load(10, 2, () => call(sidecar.addresses.outbound!, 'upstream'));
    const before = fault.expiresAt!;
    await put('renewed', 'match: {destination: upstream}\nabort: {status: 503}\npercent: 50\nseed: 3\nttl: 2m\n');
    expect(sidecar.faults.get('renewed')).to.equal(fault);
    expect(fault.counter.matched).to.equal(10);
    expect(fault.expiresAt! - before).to.be.within(59_000, 61_000);
    expect(removed).to.deep.equal([]);
    await put('renewed', 'match: {destination: upstream}\nabort: {status: 500}\npercent: 50\nseed: 3\nttl: 2m\n');
    expect(sidecar.faults.get('renewed')).to.not.equal(fault);
    expect(removed.map((e) => e.reason)).to.deep.equal(['replaced']);
  });

  it('DELETE /faults/:id: 204, 404 for none, 409 for a config fault', async () => {
    await put('one', 'hang: {}\npercent: 1\n');
    const status = async (id: string) => (await send(sidecar.addresses.admin, { method: 'DELETE', path: `/faults/${id}` })).status;
    expect([await status('one'), await status('one'), await status('static')]).to.deep.equal([204, 404, 409]);
  });

  it('config faults come and go with the config, and keep their sequence across an unrelated reload', async () => {
    const before = sidecar.faults.get('static')!;
    await call(sidecar.addresses.outbound!, 'upstream', '/static');
    sidecar.apply(snapshotOf({ ...config, routes: [{ name: 'other', match: { host: 'other' }, destinations: [{ service: 'upstream' }] }] }));
    expect(sidecar.faults.get('static')).to.equal(before);
    expect(before.counter.matched).to.equal(1);
    sidecar.apply(snapshotOf({ ...config, faults: [] }));
    expect(sidecar.faults.get('static')).to.equal(undefined);
    expect(removed.map((e) => [e.faultId, e.reason])).to.deep.equal([['static', 'config']]);
    expect(before.removed.cancelled).to.equal(true);
    sidecar.apply(snapshotOf(config));
  });
});
