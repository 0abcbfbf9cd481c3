// Retries over real sockets: each retryOn condition, attempt limits (URX), idempotency, body replay
// and its limit (RBL), another endpoint on retry, the budget under a failing upstream (UBX), per-try
// and total timeouts that free their sockets, and the retry.attempt events.
import { expect } from 'chai';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Sidecar } from '../../src/proxy/sidecar.ts';
import type { MeshEvents } from '../../src/telemetry/events.ts';
import { load, send, type Reply } from '../helpers/client.ts';
import { sidecarEntry, startSidecar } from '../helpers/mesh.ts';
import { freeAddress, startUpstream, waitFor, type Upstream } from '../helpers/net.ts';

const fast = { base: '1ms', max: '2ms' };

describe('retries', function () {
  let a: Upstream;
  let b: Upstream;
  let sidecar: Sidecar;
  let calls: { attempt: string; body: string; upstream: string }[];
  /** The handler of the test in progress, with how many calls it has seen. */
  let behave: (n: number, req: IncomingMessage, res: ServerResponse) => void;
  const events: MeshEvents['retry.attempt'][] = [];

  before(async () => {
    a = await startUpstream('a');
    b = await startUpstream('b');
    for (const upstream of [a, b]) {
      upstream.handler = (req, res) => {
        let body = '';
        req.on('data', (c: Buffer) => (body += c));
        req.on('end', () => {
          calls.push({ attempt: String(req.headers['x-faultline-attempt']), body, upstream: upstream === a ? 'a' : 'b' });
          behave(calls.length, req, res);
        });
      };
    }
    const route = (name: string, retries: object, extra: object = {}, service = 'app') =>
      ({ name, match: { host: name }, destinations: [{ service }], retries: { backoff: fast, ...retries }, ...extra });
    const config = {
      mesh: { name: 'retries' },
      services: [
        { name: 'client', endpoints: [{ address: await freeAddress() }] },
        { name: 'app', endpoints: [{ address: a.address }] },
        { name: 'pair', loadBalancer: 'random', endpoints: [{ address: b.address }, { address: a.address }] },
        { name: 'capped', endpoints: [{ address: a.address }], circuitBreaker: { maxRetries: 0 } },
        { name: 'half-down', loadBalancer: 'round-robin', endpoints: [{ address: await freeAddress() }, { address: a.address }] },
      ],
      routes: [
        route('r5xx', { attempts: 2, retryOn: ['5xx'] }),
        route('rgw', { retryOn: ['gateway-error'] }),
        route('rcodes', { retryOn: ['retriable-status-codes'], retriableStatusCodes: [409] }),
        route('rreset', { retryOn: ['reset'] }),
        route('rconn', { retryOn: ['connect-failure'] }, {}, 'half-down'),
        route('rother', { attempts: 1, retryOn: ['5xx'] }, {}, 'pair'),
        route('rpost', { retryOn: ['5xx'], retryNonIdempotent: true }),
        route('rbig', { retryOn: ['5xx'], retryNonIdempotent: true, bufferLimit: 1000 }),
        route('rbudget', { attempts: 3, retryOn: ['5xx'], budget: { ratio: 0.2, minPerSecond: 1 } }),
        // 5 s: the route's default 1 s would leave a busy machine little room for the second try.
        route('rpertry', { perTryTimeout: '150ms', retryOn: ['5xx'] }, { timeout: '5s' }),
        route('rcapped', { retryOn: ['5xx'] }, {}, 'capped'),
        // Up to 11 tries of 200 ms, over 2 s: only the route's 300 ms can end it sooner.
        route('rtotal', { attempts: 10, perTryTimeout: '200ms', retryOn: ['5xx'] }, { timeout: '300ms' }),
      ],
      sidecars: [await sidecarEntry('client', await freeAddress())],
    };
    sidecar = await startSidecar(config, 'client');
    sidecar.events.on('retry.attempt', (e) => events.push(e));
  });

  beforeEach(() => {
    calls = [];
    events.length = 0;
  });

  after(async () => {
    await sidecar.close();
    await a.close();
    await b.close();
  });

  const ok = (res: ServerResponse) => res.end('ok');
  const fail = (status: number) => (res: ServerResponse) => res.writeHead(status).end(`status ${status}`);
  const to = (host: string, options: { method?: string; body?: string } = {}): Promise<Reply> =>
    send(sidecar.addresses.outbound!, { path: '/', method: options.method ?? 'GET', headers: { host }, ...(options.body !== undefined && { body: options.body }) });

  it('5xx: retries until success, numbering each try and reporting the count', async () => {
    behave = (n, _req, res) => (n <= 2 ? fail(500)(res) : ok(res));
    const reply = await to('r5xx');
    expect([reply.status, reply.text, reply.headers['x-faultline-attempts']]).to.deep.equal([200, 'ok', '3']);
    expect(calls.map((c) => c.attempt)).to.deep.equal(['1', '2', '3']);
    expect(events.map((e) => [e.attempt, e.reason])).to.deep.equal([[2, '5xx'], [3, '5xx']]);
    expect(events[0]!.backoffMs).to.be.within(0, 1);
  });

  it('returns the last failure with flag URX when the attempts run out', async () => {
    behave = (_n, _req, res) => fail(503)(res);
    const reply = await to('r5xx');
    expect([reply.status, reply.headers['x-faultline-flags'], reply.headers['x-faultline-attempts']]).to.deep.equal([503, 'URX', '3']);
    expect(calls).to.have.length(3);
  });

  it('gateway-error: retries 502 but not 500', async () => {
    behave = (n, _req, res) => (n === 1 ? fail(502)(res) : ok(res));
    expect((await to('rgw')).status).to.equal(200);
    calls = [];
    behave = (_n, _req, res) => fail(500)(res);
    const reply = await to('rgw');
    expect([reply.status, calls.length]).to.deep.equal([500, 1]);
    expect(reply.headers).to.not.have.property('x-faultline-flags');
  });

  it('retriable-status-codes: retries the listed codes', async () => {
    behave = (n, _req, res) => (n === 1 ? fail(409)(res) : ok(res));
    const reply = await to('rcodes');
    expect([reply.status, reply.headers['x-faultline-attempts']]).to.deep.equal([200, '2']);
  });

  it('reset: retries when the upstream drops the connection', async () => {
    behave = (n, req, res) => (n === 1 ? req.socket.destroy() : ok(res));
    const reply = await to('rreset');
    expect([reply.status, reply.headers['x-faultline-attempts']]).to.deep.equal([200, '2']);
    expect(events[0]!.reason).to.equal('reset');
  });

  it('connect-failure: retries a refused connection on the other endpoint', async () => {
    behave = (_n, _req, res) => ok(res);
    const replies = await Promise.all(Array.from({ length: 6 }, () => to('rconn')));
    expect(replies.map((r) => r.status)).to.deep.equal([200, 200, 200, 200, 200, 200]);
    expect(replies.some((r) => r.headers['x-faultline-attempts'] === '2')).to.equal(true);
    expect(events.every((e) => e.reason === 'connect-failure')).to.equal(true);
  });

  it('goes to another endpoint on retry when one exists', async () => {
    behave = (_n, req, res) => (calls.at(-1)!.upstream === 'b' ? fail(500)(res) : ok(res));
    // b always fails, a always answers; one retry and a random balancer: only avoiding b makes all succeed
    const replies = await load(30, 4, () => to('rother'));
    expect(replies.map((r) => r.status).filter((s) => s !== 200)).to.deep.equal([]);
    expect(calls.filter((c) => c.attempt === '2').every((c) => c.upstream === 'a')).to.equal(true);
  });

  it('never retries a non-idempotent method unless the route says so, and then replays the body', async () => {
    behave = (_n, _req, res) => fail(500)(res);
    const refused = await to('r5xx', { method: 'POST', body: 'order-1' });
    expect([refused.status, calls.length, refused.headers['x-faultline-flags']]).to.deep.equal([500, 1, undefined]);
    calls = [];
    behave = (n, _req, res) => (n === 1 ? fail(500)(res) : ok(res));
    const reply = await to('rpost', { method: 'POST', body: 'order-2' });
    expect(reply.status).to.equal(200);
    expect(calls.map((c) => c.body)).to.deep.equal(['order-2', 'order-2']);
  });

  it('does not retry a body larger than the replay buffer, and says so with RBL', async () => {
    behave = (_n, _req, res) => fail(500)(res);
    const body = 'x'.repeat(5_000);
    const reply = await to('rbig', { method: 'PUT', body });
    expect([reply.status, reply.headers['x-faultline-flags']]).to.deep.equal([500, 'RBL']);
    expect(calls.map((c) => c.body.length)).to.deep.equal([5_000]);
  });

  it('holds a retry storm within the budget: upstream load stays ≤ (1 + ratio) × offered + minimum', async () => {
    behave = (_n, _req, res) => fail(500)(res);
    const offered = 300;
    const replies = await load(offered, 10, () => to('rbudget'));
    // without a budget: 4 tries each, 1,200 upstream requests
    expect(calls.length).to.be.at.most(offered * 1.2 + 10);
    expect(calls.length).to.be.at.least(offered);
    const exhausted = replies.filter((r) => String(r.headers['x-faultline-flags']).includes('UBX')).length;
    expect(exhausted).to.be.greaterThan(offered / 2);
    expect(replies.every((r) => r.status === 500)).to.equal(true);
  });

  it('makes no retry beyond the destination breaker\'s maxRetries, and says so with UO', async () => {
    behave = (_n, _req, res) => fail(500)(res);
    const reply = await to('rcapped');
    expect([reply.status, reply.headers['x-faultline-flags'], reply.headers['x-faultline-attempts'], calls.length]).to.deep.equal([500, 'UO', '1', 1]);
  });

  it('per-try timeout: gives up on a hanging try, frees its socket and retries', async () => {
    let firstClosed = false;
    behave = (n, req, res) => {
      if (n === 1) req.socket.once('close', () => (firstClosed = true));
      else ok(res);
    };
    const started = Date.now();
    const reply = await to('rpertry');
    expect([reply.status, reply.headers['x-faultline-attempts']]).to.deep.equal([200, '2']);
    // After the 150 ms per-try timeout, and before the route's 5 s.
    expect(Date.now() - started).to.be.within(140, 5_000);
    await waitFor(() => firstClosed, 2_000, 'the hung try\'s socket to close');
  });

  it('the route timeout bounds all tries together', async () => {
    const sockets: boolean[] = [];
    behave = (_n, req) => {
      const index = sockets.push(false) - 1;
      req.socket.once('close', () => (sockets[index] = true));
    };
    const started = Date.now();
    const reply = await to('rtotal');
    const elapsed = Date.now() - started;
    expect([reply.status, reply.headers['x-faultline-flags']]).to.deep.equal([504, 'UT']);
    expect(elapsed).to.be.within(290, 2_000);
    expect(sockets.length).to.be.within(1, 2);
    await waitFor(() => sockets.every(Boolean), 2_000, 'every try\'s socket to close');
  });
});
