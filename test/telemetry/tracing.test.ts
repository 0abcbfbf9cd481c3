// Traces over OTLP/HTTP to a small real receiver: a two-hop call with a retry makes one trace — the
// caller's span, the outbound hop, an attempt span per try, and under each try the inbound hop that
// it reached — and both W3C and B3 from the caller are honoured and passed on.
import { expect } from 'chai';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Sidecar } from '../../src/proxy/sidecar.ts';
import { call } from '../helpers/client.ts';
import { sidecarEntry, startSidecar } from '../helpers/mesh.ts';
import { freeAddress, startUpstream, waitFor, type Upstream } from '../helpers/net.ts';

interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  service: string;
  attributes: Record<string, unknown>;
  traceState: string | undefined;
  /** Milliseconds since the Unix epoch. */
  start: number;
  end: number;
  /** 2 is ERROR. */
  status: number;
  events: { name: string; time: number; attributes: Record<string, unknown> }[];
}

const SERVER = 2;
const CLIENT = 3;

/** An OTLP/HTTP JSON receiver: collects every span it is sent. */
async function startReceiver(): Promise<{ server: Server; url: string; spans: ReceivedSpan[] }> {
  const spans: ReceivedSpan[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c));
    req.on('end', () => {
      const payload = JSON.parse(body) as { resourceSpans: { resource: { attributes: Attribute[] }; scopeSpans: { spans: RawSpan[] }[] }[] };
      for (const resource of payload.resourceSpans) {
        const service = String(valueOf(resource.resource.attributes.find((a) => a.key === 'service.name')!.value));
        for (const scope of resource.scopeSpans) {
          for (const span of scope.spans) {
            spans.push({
              traceId: span.traceId,
              spanId: span.spanId,
              ...(span.parentSpanId && { parentSpanId: span.parentSpanId }),
              name: span.name,
              kind: span.kind,
              service,
              attributes: Object.fromEntries(span.attributes.map((a) => [a.key, valueOf(a.value)])),
              traceState: span.traceState,
              start: nanosToMs(span.startTimeUnixNano),
              end: nanosToMs(span.endTimeUnixNano),
              status: span.status?.code ?? 0,
              events: (span.events ?? []).map((e) => ({ name: e.name, time: nanosToMs(e.timeUnixNano), attributes: Object.fromEntries(e.attributes.map((a) => [a.key, valueOf(a.value)])) })),
            });
          }
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/traces`, spans };
}

type Attribute = { key: string; value: Record<string, unknown> };
type RawSpan = {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  traceState?: string;
  name: string;
  kind: number;
  attributes: Attribute[];
  startTimeUnixNano: string | number;
  endTimeUnixNano: string | number;
  status?: { code?: number };
  events?: { name: string; timeUnixNano: string | number; attributes: Attribute[] }[];
};
const nanosToMs = (nanos: string | number) => Number(BigInt(nanos) / 1_000n) / 1_000;
const valueOf = (v: Record<string, unknown>) => v.stringValue ?? v.intValue ?? v.boolValue ?? v.doubleValue;

describe('tracing', function () {
  this.timeout(30_000);
  let app: Upstream;
  /** A service outside the mesh (no sidecar): it sees what the caller's sidecar sends upstream. */
  let ledger: Upstream;
  let client: Sidecar;
  let server: Sidecar;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let seen: IncomingHttpHeaders[];

  before(async () => {
    receiver = await startReceiver();
    app = await startUpstream('payments');
    ledger = await startUpstream('ledger');
    const config = {
      mesh: { name: 'traces' },
      faultInjection: { headerTriggers: true },
      // Spans batched for 100 ms rather than the default second: the tests wait for them.
      telemetry: { tracing: { otlpEndpoint: receiver.url, exportDelayMs: 100 } },
      services: [
        { name: 'checkout', endpoints: [{ address: await freeAddress() }] },
        { name: 'payments', endpoints: [{ address: app.address }] },
        { name: 'ledger', endpoints: [{ address: ledger.address }] },
      ],
      routes: [{ name: 'pay', match: { host: 'payments' }, destinations: [{ service: 'payments' }], retries: { attempts: 1, retryOn: ['5xx'], backoff: { base: '1ms', max: '1ms' } } }],
      sidecars: [await sidecarEntry('checkout', await freeAddress()), await sidecarEntry('payments', app.address)],
    };
    client = await startSidecar(config, 'checkout');
    server = await startSidecar(config, 'payments');
  });

  beforeEach(() => {
    seen = [];
    receiver.spans.length = 0;
    app.handler = (req, res) => {
      seen.push(req.headers);
      res.writeHead(seen.length === 1 ? 503 : 200).end();
    };
  });

  after(async () => {
    await client.close();
    await server.close();
    await app.close();
    await ledger.close();
    await new Promise<void>((resolve) => receiver.server.close(() => resolve()));
  });

  it('makes one trace of a two-hop call with a retry, each try a child of the request', async () => {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const callerSpan = '00f067aa0ba902b7';
    const reply = await call(client.addresses.outbound!, 'payments', '/charge', { traceparent: `00-${traceId}-${callerSpan}-01` });
    expect(reply.status).to.equal(200);
    const spans = await waitFor(() => (receiver.spans.length >= 5 ? receiver.spans : undefined), 10_000, 'five spans');
    expect(spans.every((s) => s.traceId === traceId)).to.equal(true);
    const hop = spans.find((s) => s.kind === CLIENT && s.service === 'checkout' && s.name === 'GET payments')!;
    expect(hop.parentSpanId).to.equal(callerSpan);
    expect(hop.attributes).to.include({ 'faultline.route': 'pay', 'faultline.attempts': 2, 'http.response.status_code': 200 });
    const attempts = spans.filter((s) => s.name.startsWith('attempt')).sort((a, b) => Number(a.attributes['faultline.attempt']) - Number(b.attributes['faultline.attempt']));
    expect(attempts.map((s) => [s.name, s.parentSpanId, s.attributes['http.response.status_code']])).to.deep.equal([
      ['attempt 1', hop.spanId, 503],
      ['attempt 2', hop.spanId, 200],
    ]);
    const inbound = spans.filter((s) => s.kind === SERVER && s.service === 'payments');
    expect(inbound.map((s) => s.parentSpanId).sort()).to.deep.equal(attempts.map((s) => s.spanId).sort());
    // The app sees the inbound hop as its parent, in both formats.
    const lastInbound = inbound.find((s) => s.parentSpanId === attempts[1]!.spanId)!;
    expect(seen[1]!.traceparent).to.equal(`00-${traceId}-${lastInbound.spanId}-01`);
    expect(seen[1]!['x-b3-traceid']).to.equal(traceId);
    expect(seen[1]!['x-b3-spanid']).to.equal(lastInbound.spanId);
    expect(seen[1]!.b3).to.match(new RegExp(`^${traceId}-${lastInbound.spanId}-1`));
  });

  it("keeps the caller's tracestate, times each span within its parent, marks a failed try and records a fault as an event", async () => {
    const traceId = 'a3ce929d0e0e47364bf92f3577b34da6';
    const before = Date.now();
    const reply = await call(client.addresses.outbound!, 'payments', '/', {
      traceparent: `00-${traceId}-00f067aa0ba902b7-01`,
      tracestate: 'vendor=opaque,other=1',
      'x-faultline-fault-delay-ms': '40',
    });
    const after = Date.now();
    expect(reply.status).to.equal(200);
    expect(seen.map((h) => h.tracestate)).to.deep.equal(['vendor=opaque,other=1', 'vendor=opaque,other=1']);
    const spans = await waitFor(() => (receiver.spans.length >= 5 ? receiver.spans : undefined), 10_000, 'five spans');
    expect(new Set(spans.map((s) => s.traceState))).to.deep.equal(new Set(['vendor=opaque,other=1']));
    const hop = spans.find((s) => s.kind === CLIENT && s.name === 'GET payments')!;
    // The delay (a request fault) is inside the hop and before the first try.
    expect(hop.start).to.be.within(before - 1, after + 1);
    expect(hop.end).to.be.within(hop.start + 40, after + 1);
    expect(hop.events.map((e) => [e.name, e.attributes['faultline.fault_id']])).to.deep.equal([['fault.applied', 'header-delay']]);
    const attempts = spans.filter((s) => s.parentSpanId === hop.spanId).sort((a, b) => a.start - b.start);
    expect(attempts.map((s) => [s.name, s.status])).to.deep.equal([['attempt 1', 2], ['attempt 2', 0]]);
    // Across spans, within 1 ms: the SDK stamps each span from its own reading of the wall clock (1 ms resolution).
    // The fault's event is recorded when it acts, before its 40 ms delay and so 40 ms before the first
    // try, however long the machine took to get there (no fixed allowance after the hop's start).
    expect(hop.events[0]!.time).to.be.at.least(hop.start - 1);
    expect(attempts[0]!.start - hop.events[0]!.time).to.be.at.least(40 - 1);
    expect(attempts[0]!.start).to.be.at.least(hop.start + 40 - 1);
    expect(attempts[0]!.end).to.be.at.most(attempts[1]!.start + 1);
    expect(attempts[1]!.end).to.be.at.most(hop.end + 1);
    for (const inbound of spans.filter((s) => s.kind === SERVER)) {
      const parent = attempts.find((a) => a.spanId === inbound.parentSpanId)!;
      expect(inbound.start).to.be.within(parent.start - 1, parent.end + 1);
    }
    expect(hop.status).to.equal(0);
  });

  it('writes W3C upstream, and B3 there only in the forms the request carries, each naming the try', async () => {
    const upstream: IncomingHttpHeaders[] = [];
    ledger.handler = (req, res) => {
      upstream.push(req.headers);
      res.end();
    };
    const traceId = '6e0c63257de34c926f9efcd03927272e';
    const caller = 'a2fb4a1d1a96d312';
    await call(client.addresses.outbound!, 'ledger', '/', { traceparent: `00-${traceId}-${caller}-01` });
    await call(client.addresses.outbound!, 'ledger', '/', { b3: `${traceId}-${caller}-1` });
    await call(client.addresses.outbound!, 'ledger', '/', { 'x-b3-traceid': traceId, 'x-b3-spanid': caller, 'x-b3-sampled': '1' });
    const spans = await waitFor(() => (receiver.spans.filter((s) => s.name === 'attempt 1').length >= 3 ? receiver.spans : undefined), 10_000, 'three tries');
    const tries = new Set(spans.filter((s) => s.name === 'attempt 1').map((s) => s.spanId));
    const written = upstream.map((h) => ({
      w3c: String(h.traceparent).split('-')[2],
      b3: h.b3 === undefined ? undefined : String(h.b3).split('-')[1],
      multi: h['x-b3-spanid'],
    }));
    expect(upstream.every((h) => String(h.traceparent).startsWith(`00-${traceId}-`))).to.equal(true);
    expect(written.every((w) => tries.has(w.w3c!))).to.equal(true);
    expect(written).to.deep.equal([
      { w3c: written[0]!.w3c, b3: undefined, multi: undefined },
      { w3c: written[1]!.w3c, b3: written[1]!.w3c, multi: undefined },
      { w3c: written[2]!.w3c, b3: undefined, multi: written[2]!.w3c },
    ]);
    expect(upstream[2]!['x-b3-traceid']).to.equal(traceId);
  });

  it('continues a trace the caller sent in B3 headers', async () => {
    const traceId = '463ac35c9f6413ad48485a3953bb6124';
    await call(client.addresses.outbound!, 'payments', '/', { 'x-b3-traceid': traceId, 'x-b3-spanid': 'a2fb4a1d1a96d312', 'x-b3-sampled': '1' });
    const spans = await waitFor(() => (receiver.spans.length >= 5 ? receiver.spans : undefined), 10_000, 'five spans');
    expect(new Set(spans.map((s) => s.traceId))).to.deep.equal(new Set([traceId]));
    expect(spans.find((s) => s.name === 'GET payments' && s.kind === CLIENT)!.parentSpanId).to.equal('a2fb4a1d1a96d312');
  });

  it('puts the trace id on request.done and retry.attempt events', async () => {
    const traceId = '0af7651916cd43dd8448eb211c80319c';
    const done: string[] = [];
    const retried: string[] = [];
    const offDone = client.events.on('request.done', (e) => done.push(String(e.traceId)));
    const offRetry = client.events.on('retry.attempt', (e) => retried.push(String(e.traceId)));
    await call(client.addresses.outbound!, 'payments', '/', { traceparent: `00-${traceId}-b7ad6b7169203331-01` });
    await waitFor(() => done.length === 1, 2_000, 'request.done');
    offDone();
    offRetry();
    expect([done, retried]).to.deep.equal([[traceId], [traceId]]);
  });
});

describe('tracing, hops not sampled', function () {
  this.timeout(30_000);
  let app: Upstream;
  let client: Sidecar;
  let server: Sidecar;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let seen: IncomingHttpHeaders[];

  before(async () => {
    receiver = await startReceiver();
    app = await startUpstream('payments');
    seen = [];
    app.handler = (req, res) => {
      seen.push(req.headers);
      res.writeHead(200).end();
    };
    const config = {
      mesh: { name: 'traces-unsampled' },
      telemetry: { tracing: { otlpEndpoint: receiver.url, sampleRatio: 0, exportDelayMs: 100 } },
      services: [{ name: 'checkout', endpoints: [{ address: await freeAddress() }] }, { name: 'payments', endpoints: [{ address: app.address }] }],
      sidecars: [await sidecarEntry('checkout', await freeAddress()), await sidecarEntry('payments', app.address)],
    };
    client = await startSidecar(config, 'checkout');
    server = await startSidecar(config, 'payments');
  });

  after(async () => {
    await client.close();
    await server.close();
    await app.close();
    await new Promise<void>((resolve) => receiver.server.close(() => resolve()));
  });

  it('gives a root request one trace id across hops, with the sampled flag off, and exports none of it', async () => {
    const done: string[] = [];
    const offClient = client.events.on('request.done', (e) => done.push(String(e.traceId)));
    const offServer = server.events.on('request.done', (e) => done.push(String(e.traceId)));
    await call(client.addresses.outbound!, 'payments', '/');
    await waitFor(() => done.length === 2, 2_000, 'request.done at both hops');
    offClient();
    offServer();
    const traceparent = String(seen.at(-1)!.traceparent);
    expect(traceparent).to.match(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
    expect(done).to.deep.equal([traceparent.slice(3, 35), traceparent.slice(3, 35)]);
    // A sampled request afterwards is exported; the unsampled one before it never is.
    const sampled = '5b8efff798038103d269b633813fc60c';
    await call(client.addresses.outbound!, 'payments', '/', { traceparent: `00-${sampled}-eee19b7ec3c1b174-01` });
    const spans = await waitFor(() => (receiver.spans.length >= 3 ? receiver.spans : undefined), 10_000, 'the sampled spans');
    expect(new Set(spans.map((s) => s.traceId))).to.deep.equal(new Set([sampled]));
  });

  it("passes a caller's unsampled context through untouched", async () => {
    const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b9c7c989f97918e1-00';
    await call(client.addresses.outbound!, 'payments', '/', { traceparent });
    expect(seen.at(-1)!.traceparent).to.equal(traceparent);
    const b3 = '80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-0';
    await call(client.addresses.outbound!, 'payments', '/', { b3 });
    expect([seen.at(-1)!.b3, seen.at(-1)!.traceparent]).to.deep.equal([b3, undefined]);
  });
});

describe('tracing, sample ratio', function () {
  this.timeout(30_000);

  it('records the configured share of new traces', async () => {
    const receiver = await startReceiver();
    const app = await startUpstream('payments');
    const config = {
      mesh: { name: 'traces-ratio' },
      telemetry: { tracing: { otlpEndpoint: receiver.url, sampleRatio: 0.25 } },
      services: [{ name: 'checkout', endpoints: [{ address: await freeAddress() }] }, { name: 'payments', endpoints: [{ address: app.address }] }],
      sidecars: [await sidecarEntry('checkout', await freeAddress())],
    };
    const client = await startSidecar(config, 'checkout');
    try {
      const calls = 800;
      for (let i = 0; i < calls; i++) await call(client.addresses.outbound!, 'payments', '/');
      await client.close();
      // Each sampled root is one hop span and one attempt span. The draws are Math.random's (the
      // sampler has no seed): 800 at 25 % are 200 ± 12.2 (σ); ± 5 σ (about 1 run in 1.7 million
      // outside it) still tells 25 % from 20 % or 30 % (160 or 240 expected).
      const roots = receiver.spans.filter((s) => s.kind === CLIENT && !s.parentSpanId).length;
      expect(roots).to.be.within(139, 261);
      expect(receiver.spans.length).to.equal(2 * roots);
    } finally {
      await client.close();
      await app.close();
      await new Promise<void>((resolve) => receiver.server.close(() => resolve()));
    }
  });
});
