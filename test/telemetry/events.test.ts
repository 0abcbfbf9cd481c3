// The event stream: numbered events in a bounded ring, request.done for every request at the edge,
// NDJSON over the admin listener with resume by seq and counted drops, and the access log.
import { expect } from 'chai';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Sidecar } from '../../src/proxy/sidecar.ts';
import { streamEvents } from '../../src/telemetry/event-stream.ts';
import { EventBus, type MeshEvent, type MeshEvents } from '../../src/telemetry/events.ts';
import { call } from '../helpers/client.ts';
import { sidecarEntry, snapshotOf } from '../helpers/mesh.ts';
import { freeAddress, readEvents, startUpstream, waitFor, type Upstream } from '../helpers/net.ts';

const configApplied = (bus: EventBus, n: number) => {
  for (let i = 0; i < n; i++) bus.emit('config.applied', { version: `v${i}`, source: 'x' });
};

describe('event bus', () => {
  it('numbers events and keeps the last ones for readers that resume', () => {
    const bus = new EventBus('s', { requests: 5, decisions: 5 });
    configApplied(bus, 8);
    const { events, missed } = bus.since(0);
    expect(events.map((e) => e.seq)).to.deep.equal([4, 5, 6, 7, 8]);
    expect(missed).to.equal(3);
    expect(bus.since(6)).to.deep.include({ missed: 0 });
    expect(bus.since(6).events.map((e) => e.seq)).to.deep.equal([7, 8]);
    expect(bus.since(8).events).to.deep.equal([]);
    const event = events[0] as MeshEvents['config.applied'];
    expect(event).to.include({ type: 'config.applied', sidecar: 's', version: 'v3' });
    expect(event.time).to.be.closeTo(Date.now(), 5_000);
    expect(event.monotonic).to.be.a('number');
  });

  it('calls every listener of an event once, a removal during a dispatch changing nothing in it', () => {
    const bus = new EventBus('s');
    const calls: string[] = [];
    let offFirst = (): void => undefined;
    offFirst = bus.on('config.applied', (e) => {
      calls.push(`first ${e.version}`);
      offFirst();
    });
    const twice = (e: MeshEvent) => calls.push(`any ${e.type}`);
    const offTwice = bus.onAny(twice);
    bus.onAny(twice);
    bus.on('config.rejected', () => calls.push('rejected'));
    bus.emit('config.applied', { version: 'v1', source: 'x' });
    // The first listener removed itself while it ran: the others still had the event, and it gets no more.
    offTwice();
    offTwice();
    bus.emit('config.applied', { version: 'v2', source: 'x' });
    expect(calls).to.deep.equal(['first v1', 'any config.applied', 'any config.applied', 'any config.applied']);
  });

  it('keeps request.done apart from decisions, so a burst of requests does not push out the decisions', () => {
    const bus = new EventBus('s', { requests: 3, decisions: 4 });
    const done = (requestId: string) => bus.emit('request.done', {
      requestId, traceId: null, direction: 'outbound', source: 'a', service: 'b', route: null, endpoint: null, method: 'GET',
      authority: 'b', path: '/', status: 200, grpcStatus: null, flags: [], attempts: 1, durationMs: 1, protocol: 'http1', requestBytes: 0, responseBytes: 0, faults: [],
    });
    configApplied(bus, 2); // seq 1, 2
    for (let i = 0; i < 5; i++) done(`r${i}`); // seq 3..7: r0 and r1 fall out
    configApplied(bus, 1); // seq 8
    done('r5'); // seq 9: r2 falls out
    const all = bus.since(0);
    expect(all.events.map((e) => e.seq)).to.deep.equal([1, 2, 6, 7, 8, 9]);
    expect(all.missed).to.equal(3);
    const later = bus.since(6);
    expect(later.events.map((e) => e.seq)).to.deep.equal([7, 8, 9]);
    expect(later.missed).to.equal(0);
    expect(bus.since(9)).to.deep.equal({ events: [], missed: 0 });
    expect(new EventBus('t', { requests: 0, decisions: 0 }).since(0)).to.deep.equal({ events: [], missed: 0 });
  });

  it('serves decisions alone, counting the decisions no longer kept', () => {
    const bus = new EventBus('s', { requests: 2, decisions: 3 });
    const done = () => bus.emit('request.done', {
      requestId: 'r', traceId: null, direction: 'outbound', source: 'a', service: 'b', route: null, endpoint: null, method: 'GET',
      authority: 'b', path: '/', status: 200, grpcStatus: null, flags: [], attempts: 1, durationMs: 1, protocol: 'http1', requestBytes: 0, responseBytes: 0, faults: [],
    });
    // seq: 1 d, 2 r, 3 d, 4 r, 5 d, 6 d, 7 r, 8 d — decisions 1, 3, 5, 6, 8; the ring keeps 5, 6, 8.
    configApplied(bus, 1); done(); configApplied(bus, 1); done(); configApplied(bus, 2); done(); configApplied(bus, 1);
    const seqs = (since: number) => bus.since(since, false).events.map((e) => e.seq);
    expect(seqs(0)).to.deep.equal([5, 6, 8]);
    expect(bus.since(0, false).missed).to.equal(2); // decisions 1 and 3
    expect(bus.since(1, false).missed).to.equal(1);
    expect(bus.since(4, false)).to.deep.include({ missed: 0 });
    expect(seqs(5)).to.deep.equal([6, 8]);
    expect(bus.since(0, false).events.every((e) => e.type !== 'request.done')).to.equal(true);
    // And all of it, requests included: the requests ring keeps 4 and 7 of 2, 4, 7; gone: 1, 2, 3.
    expect(bus.since(0).events.map((e) => e.seq)).to.deep.equal([4, 5, 6, 7, 8]);
    expect(bus.since(0).missed).to.equal(3);
  });
});

describe('event bus, request.done kept while read', () => {
  const done = (bus: EventBus, path: string) =>
    bus.emit('request.done', {
      requestId: path, traceId: null, direction: 'outbound', source: 'a', service: 'b', route: null, endpoint: null, method: 'GET',
      authority: 'b', path, status: 200, grpcStatus: null, flags: [], attempts: 1, durationMs: 1, protocol: 'http1', requestBytes: 0, responseBytes: 0, faults: [],
    });
  const keptPaths = (bus: EventBus) => bus.since(0).events.map((e) => (e as MeshEvents['request.done']).path);

  it('keeps request.done only while a reader takes them and for the grace time after the last one leaves; decisions always', async () => {
    const bus = new EventBus('s', { requests: 10, decisions: 10, keepRequests: 'while-read', graceMs: 200 });
    done(bus, '/unread');
    configApplied(bus, 1);
    expect(keptPaths(bus)).to.deep.equal([undefined]); // the config.applied, not the request
    expect(bus.since(0).missed).to.equal(1);
    const first = bus.readRequests();
    const second = bus.readRequests();
    done(bus, '/read');
    first();
    first(); // a release counts once
    done(bus, '/still-read');
    second();
    const left = performance.now();
    done(bus, '/grace');
    expect(keptPaths(bus)).to.deep.equal([undefined, '/read', '/still-read', '/grace']);
    await waitFor(() => performance.now() - left > 200, 2_000, 'the grace time to pass');
    done(bus, '/after-grace');
    expect(keptPaths(bus)).to.deep.equal([undefined, '/read', '/still-read', '/grace']);
    expect(bus.since(0).missed).to.equal(2);
    // Kept always: as the control plane's merged stream does, and a sidecar with keepRequests: always.
    const always = new EventBus('s', { requests: 10, decisions: 10 });
    done(always, '/x');
    expect(keptPaths(always)).to.deep.equal(['/x']);
  });
});

describe('events from a sidecar', () => {
  let upstream: Upstream;
  let sidecar: Sidecar;
  let logDir: string;
  let logFile: string;

  before(async () => {
    // A new directory, not a name from the pid: pids come round again (32,768 here), and a file left
    // by an earlier process held a line with the same request id and another endpoint.
    logDir = await mkdtemp(join(tmpdir(), 'faultline-access-'));
    logFile = join(logDir, 'access.log');
    upstream = await startUpstream('app');
    const config = {
      mesh: { name: 'ev' },
      services: [{ name: 'client', endpoints: [{ address: await freeAddress() }] }, { name: 'app', endpoints: [{ address: upstream.address }] }],
      sidecars: [await sidecarEntry('client', await freeAddress())],
    };
    sidecar = await Sidecar.start({ name: 'client', snapshot: snapshotOf(config), accessLog: logFile });
  });

  after(async () => {
    await sidecar.close();
    await upstream.close();
    await rm(logDir, { recursive: true, force: true });
  });

  it('emits request.done for every request, with what the caller got', async () => {
    const done: MeshEvents['request.done'][] = [];
    const off = sidecar.events.on('request.done', (e) => done.push(e));
    await call(sidecar.addresses.outbound!, 'app', '/orders?x=1', { 'x-request-id': 'r-1', traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' });
    await call(sidecar.addresses.outbound!, 'nowhere', '/');
    await waitFor(() => done.length === 2, 2_000, 'two request.done events');
    off();
    expect(done[0]).to.include({
      type: 'request.done',
      requestId: 'r-1',
      direction: 'outbound',
      source: 'client',
      service: 'app',
      route: 'default-app',
      endpoint: upstream.address,
      method: 'GET',
      authority: 'app',
      path: '/orders',
      status: 200,
      attempts: 1,
    });
    expect(done[0]!.flags).to.deep.equal([]);
    expect(done[0]!.traceId, 'read from the caller\'s traceparent, tracing being off').to.equal('4bf92f3577b34da6a3ce929d0e0e4736');
    expect(done[1]!.traceId).to.equal(null);
    expect(done[0]!.durationMs).to.be.within(0, 2_000);
    expect(done[0]).to.include({ requestBytes: 0 });
    expect(done[0]!.responseBytes).to.be.greaterThan(100); // the echo upstream's JSON
    expect(done[1]).to.include({ status: 404, service: null, route: null });
    expect(done[1]!.responseBytes).to.be.greaterThan(50); // the mesh's JSON error
    expect(done[1]!.flags).to.deep.equal(['NR']);
  });

  it('streams events as NDJSON on /events: the kept ones after since, then live ones; request.done is kept only once a reader takes them', async () => {
    // Nobody has read request.done yet: one made now is not kept, and a reader asking for it is told it missed it.
    const unread = sidecar.events.lastSeq;
    await call(sidecar.addresses.outbound!, 'app', '/unread');
    await waitFor(() => sidecar.events.lastSeq > unread, 2_000, 'request.done of /unread');
    const missed = await readEvents(sidecar.addresses.admin, `/events?since=${unread}`, (lines) => lines.length > 0);
    expect(missed).to.deep.equal([{ type: 'events.dropped', count: 1 }]);
    // That reader took request.done: they are kept now (and for a while after it left), for readers that resume.
    const from = sidecar.events.lastSeq;
    await call(sidecar.addresses.outbound!, 'app', '/before');
    const reading = readEvents(sidecar.addresses.admin, `/events?since=${from}`, (lines) => lines.some((l) => l.path === '/after'));
    await waitFor(() => sidecar.events.lastSeq > from, 2_000, 'the first event');
    await call(sidecar.addresses.outbound!, 'app', '/after');
    const lines = await reading;
    expect(lines.map((l) => l.path)).to.deep.equal(['/before', '/after']);
    expect(lines.map((l) => l.seq)).to.deep.equal([from + 1, from + 2]);
  });

  it('refuses a since that is not a sequence number, and a requests that is not true or false', async () => {
    const reply = await call(sidecar.addresses.admin, 'admin', '/events?since=soon');
    expect(reply.status).to.equal(400);
    expect((await call(sidecar.addresses.admin, 'admin', '/events?requests=maybe')).status).to.equal(400);
  });

  it('leaves request.done out of a stream that asks for decisions only', async () => {
    const from = sidecar.events.lastSeq;
    await call(sidecar.addresses.outbound!, 'app', '/not-wanted');
    sidecar.events.emit('config.rejected', { source: 'test', error: 'a decision after the request' });
    const lines = await readEvents(sidecar.addresses.admin, `/events?since=${from}&requests=false`, (seen) => seen.some((l) => l.type === 'config.rejected'));
    expect(lines.filter((l) => l.type === 'request.done')).to.deep.equal([]);
    expect(lines.at(-1)).to.include({ type: 'config.rejected', error: 'a decision after the request' });
    // The same stream with request.done has the request, before the decision.
    const all = await readEvents(sidecar.addresses.admin, `/events?since=${from}`, (seen) => seen.some((l) => l.type === 'config.rejected'));
    expect(all.filter((l) => l.type === 'request.done').map((l) => l.path)).to.deep.equal(['/not-wanted']);
  });

  it('writes an access log line per request', async () => {
    await call(sidecar.addresses.outbound!, 'app', '/logged', { 'x-request-id': 'logged-1' });
    const line = await waitFor(async () => {
      const text = await readFile(logFile, 'utf8').catch(() => '');
      return text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.requestId === 'logged-1');
    }, 3_000, 'the access log line');
    expect(line).to.include({ method: 'GET', authority: 'app', path: '/logged', status: 200, flags: '', endpoint: upstream.address, attempts: 1, sidecar: 'client' });
    expect(line.time).to.match(/^\d{4}-\d\d-\d\dT/);
  });
});

describe('event stream under a slow reader', () => {
  let server: Server;

  afterEach(() => new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  }));

  it('writes events in batches, in order, the kept ones first', async () => {
    const bus = new EventBus('s', { requests: 10, decisions: 10 });
    configApplied(bus, 3); // kept: a reader with since=0 gets these first
    let writes = 0;
    server = createServer((req, res) => {
      const write = res.write.bind(res) as (chunk: string) => boolean;
      res.write = ((chunk: string) => {
        writes++;
        return write(chunk);
      }) as typeof res.write;
      streamEvents(bus, 0, req, res);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const reading = readEvents(`127.0.0.1:${port}`, '/', (lines) => lines.length === 203);
    await waitFor(() => (writes === 1 ? true : undefined), 2_000, 'the kept events written');
    // 200 events at once, as a sidecar under load emits them: one batch (fewer than 256, within 20 ms).
    for (let i = 0; i < 200; i++) bus.emit('config.rejected', { source: 'x', error: `e${i}` });
    const lines = await reading;
    expect(lines.map((l) => l.seq)).to.deep.equal(Array.from({ length: 203 }, (_, i) => i + 1));
    expect(writes, 'one write for the kept events, one for the 200 new ones').to.equal(2);
  });

  it('drops past its queue and says how many, in place', async () => {
    const bus = new EventBus('s', { requests: 10, decisions: 10 });
    server = createServer((req, res) => streamEvents(bus, undefined, req, res, { queueLimit: 50 }));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const lines: MeshEvent[] = [];
    let dropped = 0;
    await new Promise<void>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port, path: '/' }, (res) => {
        res.pause(); // a reader that does not keep up
        // Far more than socket buffers and the queue hold, each event large.
        for (let i = 0; i < 3_000; i++) bus.emit('config.rejected', { source: 'x', error: 'e'.repeat(2_000) });
        let buffer = '';
        res.on('data', (chunk: Buffer) => {
          buffer += chunk;
          let newline: number;
          while ((newline = buffer.indexOf('\n')) !== -1) {
            const line = JSON.parse(buffer.slice(0, newline)) as MeshEvent & { count?: number };
            buffer = buffer.slice(newline + 1);
            if ((line.type as string) === 'events.dropped') dropped += line.count!;
            else lines.push(line);
          }
          if (lines.length + dropped === 3_000) {
            req.destroy();
            resolve();
          }
        });
        res.resume();
      });
      req.on('error', (error) => (error.message === 'socket hang up' ? undefined : reject(error)));
      req.end();
    });
    expect(dropped).to.be.greaterThan(0);
    expect(bus.dropped).to.equal(dropped);
    expect(lines.at(-1)!.seq).to.be.at.most(3_000);
    for (let i = 1; i < lines.length; i++) expect(lines[i]!.seq).to.be.greaterThan(lines[i - 1]!.seq);
  });
});

describe('per-request telemetry switched off', () => {
  it('emits no request.done (so no request metrics or access log lines), and still proxies', async () => {
    const upstream = await startUpstream('app');
    const config = {
      mesh: { name: 'quiet' },
      telemetry: { enabled: false },
      services: [{ name: 'client', endpoints: [{ address: await freeAddress() }] }, { name: 'app', endpoints: [{ address: upstream.address }] }],
      sidecars: [await sidecarEntry('client', await freeAddress())],
    };
    const sidecar = await Sidecar.start({ name: 'client', snapshot: snapshotOf(config) });
    try {
      let events = 0;
      sidecar.events.onAny(() => events++);
      expect((await call(sidecar.addresses.outbound!, 'app')).status).to.equal(200);
      expect((await call(sidecar.addresses.outbound!, 'nowhere')).status).to.equal(404);
      expect(events).to.equal(0);
    } finally {
      await sidecar.close();
      await upstream.close();
    }
  });
});

describe('request sizes', () => {
  it('counts a request body by its length, a buffered one whole, and leaves a streamed chunked one uncounted', async () => {
    const { RequestBody } = await import('../../src/http/body.ts');
    const { Readable } = await import('node:stream');
    expect(new RequestBody(null).bytes).to.equal(0);
    expect(new RequestBody(Readable.from(['abc']), 3).bytes).to.equal(3);
    const chunked = new RequestBody(Readable.from([Buffer.from('hello'), Buffer.from(' world')]));
    expect(chunked.bytes).to.equal(null);
    expect(await chunked.bufferForReplay(1_000)).to.equal(true);
    expect(chunked.bytes).to.equal(11);
  });
});
