// gRPC's mesh behaviour with real @grpc/grpc-js clients and servers, through a sidecar pair under
// strict mTLS (h2c in, h2 over mTLS between the sidecars, h2c to the apps): the gRPC status in
// request.done and the metrics, routes by method, retries on UNAVAILABLE that mask an injected abort
// and none once the response was committed, grpc-timeout (the caller's and the route's), gRPC aborts
// as the client sees them, and a server stream cut mid-way; and through one sidecar, to an app
// without one.
import * as grpc from '@grpc/grpc-js';
import { expect } from 'chai';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { startControlledSidecar, type ControlledSidecar } from '../../src/control/agent.ts';
import { startControlPlane, type RunningControlPlane } from '../../src/control/server.ts';
import type { Sidecar } from '../../src/proxy/sidecar.ts';
import type { MeshEvents } from '../../src/telemetry/events.ts';
import { parseSamples } from '../../src/telemetry/metrics.ts';
import { sidecarEntry, startSidecar } from '../helpers/mesh.ts';
import { listenInsecure, rawService, streamingHandlers } from '../helpers/grpc.ts';
import { freeAddress, waitFor } from '../helpers/net.ts';

const TOKEN = 'grpc-test-token';
const ECHO = rawService({
  Echo: [false, false],
  Which: [false, false],
  Slow: [false, false],
  FailOddCalls: [false, false],
  FailAfterOne: [false, true],
  Count: [false, true],
  Sum: [true, false],
  Chat: [true, true],
});
type EchoClient = grpc.Client & Record<keyof typeof ECHO, (...args: unknown[]) => unknown>;

interface App {
  readonly address: string;
  readonly server: grpc.Server;
  /** Calls per method, and what the server saw of each Slow call's deadline (ms left when it arrived). */
  readonly calls: Record<string, number>;
  readonly deadlinesLeft: number[];
}

async function startApp(name: string): Promise<App> {
  const calls: Record<string, number> = {};
  const deadlinesLeft: number[] = [];
  const count = (m: string) => (calls[m] = (calls[m] ?? 0) + 1);
  const server = new grpc.Server();
  server.addService(ECHO, {
    Echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
      count('Echo');
      callback(null, Buffer.concat([Buffer.from('echo:'), call.request]));
    },
    Which: (_call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
      count('Which');
      callback(null, Buffer.from(name));
    },
    FailOddCalls: (_call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
      // The 1st, 3rd… call fails UNAVAILABLE before any message (grpc-js sends it trailers-only).
      if (count('FailOddCalls') % 2 === 1) callback({ code: grpc.status.UNAVAILABLE, details: 'odd call' });
      else callback(null, Buffer.from('even call'));
    },
    Slow: (call: grpc.ServerUnaryCall<Buffer, Buffer>) => {
      count('Slow');
      const deadline = call.getDeadline();
      const at = deadline instanceof Date ? deadline.getTime() : deadline;
      deadlinesLeft.push(Number.isFinite(at) ? at - Date.now() : Infinity);
      // Never answers: the deadline ends it.
    },
    FailAfterOne: (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
      count('FailAfterOne');
      // One message, then the error in real trailers: the response was committed.
      call.write(Buffer.from('first'), () => call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'gone after one' }));
    },
    ...streamingHandlers(8),
  });
  const address = await listenInsecure(server);
  return { address, server, calls, deadlinesLeft };
}

function unary(stub: EchoClient, name: keyof typeof ECHO, message: string, metadata = new grpc.Metadata(), options: grpc.CallOptions = {}): Promise<{ reply?: string; error?: grpc.ServiceError }> {
  return new Promise((resolve) => {
    stub[name](Buffer.from(message), metadata, options, (error: grpc.ServiceError | null, reply?: Buffer) => resolve(error ? { error } : { reply: reply!.toString() }));
  });
}

const header = (name: string, value: string) => {
  const m = new grpc.Metadata();
  m.set(name, value);
  return m;
};

describe('gRPC through a sidecar pair under strict mTLS (@grpc/grpc-js)', function () {
  this.timeout(30_000);
  let payments: App;
  let ledger: App;
  let control: RunningControlPlane;
  let checkout: ControlledSidecar;
  let paymentsSidecar: ControlledSidecar;
  let ledgerSidecar: ControlledSidecar;
  let stub: EchoClient;

  before(async () => {
    payments = await startApp('payments');
    ledger = await startApp('ledger');
    const checkoutApp = await freeAddress();
    const dir = await mkdtemp(join(tmpdir(), 'faultline-grpc-'));
    const config = {
      mesh: { name: 'grpc' },
      mtls: { mode: 'strict', trustDomain: 'shop.test' },
      services: [
        { name: 'checkout', endpoints: [{ address: checkoutApp }] },
        { name: 'payments', protocol: 'grpc', endpoints: [{ address: payments.address }] },
        { name: 'ledger', protocol: 'grpc', endpoints: [{ address: ledger.address }] },
      ],
      routes: [
        // One method of the service goes elsewhere.
        { name: 'which-to-ledger', match: { host: 'payments', grpc: { service: 'test.Echo', method: 'Which' } }, destinations: [{ service: 'ledger' }] },
        { name: 'slow', match: { host: 'payments', grpc: { service: 'test.Echo', method: 'Slow' }, headers: { 'x-route-timeout': { present: true } } }, destinations: [{ service: 'payments' }], timeout: '150ms' },
        { name: 'payments', match: { host: 'payments', grpc: { service: 'test.Echo' } }, destinations: [{ service: 'payments' }], retries: { attempts: 2, retryOn: ['unavailable', 'connect-failure'], backoff: { base: '1ms', max: '5ms' } } },
      ],
      faults: [
        // The first try of each marked call fails UNAVAILABLE at the caller's attempt: the retry masks it.
        { id: 'unavailable-once', match: { destination: 'payments', headers: { 'x-fault': { exact: 'abort-attempt' }, 'x-faultline-attempt': { exact: '1' } } }, at: 'attempt', abort: { grpcStatus: 14 } },
        { id: 'unavailable', match: { destination: 'payments', headers: { 'x-fault': { exact: 'abort' } } }, at: 'request', abort: { grpcStatus: 'UNAVAILABLE', message: 'payments is down (injected)' } },
        { id: 'cut', match: { destination: 'payments', headers: { 'x-fault': { exact: 'cut' } } }, at: 'request', abort: { closeAfterBytes: 100 } },
        { id: 'cut-after-3', match: { destination: 'payments', headers: { 'x-fault': { exact: 'cut-after-3' } } }, at: 'attempt', abort: { grpcStatus: 'UNAVAILABLE', afterMessages: 3, message: 'cut after 3' } },
      ],
      sidecars: [await sidecarEntry('checkout', checkoutApp), await sidecarEntry('payments', payments.address), await sidecarEntry('ledger', ledger.address)],
    };
    await writeFile(join(dir, 'mesh.yaml'), stringify(config));
    control = await startControlPlane({ listen: '127.0.0.1:0', token: TOKEN, stateDir: join(dir, 'control'), configFile: join(dir, 'mesh.yaml') });
    const start = (name: string) => startControlledSidecar({ url: control.url, token: TOKEN, name, stateDir: join(dir, name), waitMs: 2_000 });
    checkout = await start('checkout');
    paymentsSidecar = await start('payments');
    ledgerSidecar = await start('ledger');
    const Client = grpc.makeGenericClientConstructor(ECHO, 'Echo');
    stub = new Client(checkout.sidecar.addresses.outbound!, grpc.credentials.createInsecure(), { 'grpc.default_authority': 'payments' }) as unknown as EchoClient;
  });

  after(async () => {
    stub?.close();
    for (const s of [checkout, paymentsSidecar, ledgerSidecar]) await s?.close();
    await control?.close();
    payments?.server.forceShutdown();
    ledger?.server.forceShutdown();
  });

  /** The outbound request.done of checkout's sidecar for the calls `task` makes. */
  async function outbound<T>(task: () => Promise<T>, n = 1): Promise<{ result: T; done: MeshEvents['request.done'][] }> {
    const done: MeshEvents['request.done'][] = [];
    const off = checkout.sidecar.events.on('request.done', (e) => e.direction === 'outbound' && done.push(e));
    try {
      const result = await task();
      await waitFor(() => done.length >= n, 5_000, 'request.done');
      return { result, done };
    } finally {
      off();
    }
  }

  it('carries unary and the three streaming kinds, each request.done with grpcStatus 0', async () => {
    const { result, done } = await outbound(async () => {
      const echo = await unary(stub, 'Echo', 'hi');
      const counted: string[] = [];
      await new Promise<void>((resolve, reject) => {
        const call = stub.Count(Buffer.from('20')) as grpc.ClientReadableStream<Buffer>;
        call.on('data', (m: Buffer) => counted.push(m.toString()));
        call.on('error', reject);
        call.on('end', () => resolve());
      });
      const sum = await new Promise<string>((resolve, reject) => {
        const call = stub.Sum((error: grpc.ServiceError | null, reply: Buffer) => (error ? reject(error) : resolve(reply.toString()))) as grpc.ClientWritableStream<Buffer>;
        for (let i = 1; i <= 10; i++) call.write(Buffer.from(String(i)));
        call.end();
      });
      const chat = stub.Chat() as grpc.ClientDuplexStream<Buffer, Buffer>;
      const replies: string[] = [];
      chat.on('data', (m: Buffer) => replies.push(m.toString()));
      const status = new Promise<number>((resolve) => chat.on('status', (s: grpc.StatusObject) => resolve(s.code)));
      for (const m of ['a', 'b']) {
        const answered = new Promise((resolve) => chat.once('data', resolve));
        chat.write(Buffer.from(m));
        await answered;
      }
      chat.end();
      return { echo: echo.reply, counted: counted.length, sum, chat: await status, replies };
    }, 4);
    expect(result).to.deep.equal({ echo: 'echo:hi', counted: 20, sum: '55', chat: grpc.status.OK, replies: ['re:a', 're:b'] });
    expect(done.map((e) => [e.path, e.status, e.grpcStatus])).to.have.deep.members([
      ['/test.Echo/Echo', 200, 0],
      ['/test.Echo/Count', 200, 0],
      ['/test.Echo/Sum', 200, 0],
      ['/test.Echo/Chat', 200, 0],
    ]);
  });

  it('routes one method of the service elsewhere (match.grpc)', async () => {
    const { result, done } = await outbound(async () => [await unary(stub, 'Which', ''), await unary(stub, 'Echo', 'x')], 2);
    expect(result.map((r) => r.reply)).to.deep.equal(['ledger', 'echo:x']);
    expect(done.map((e) => [e.route, e.service])).to.have.deep.members([['which-to-ledger', 'ledger'], ['payments', 'payments']]);
  });

  it('answers a gRPC abort trailers-only: the client sees its code and message, request.done and metrics its status', async () => {
    const { result, done } = await outbound(() => unary(stub, 'Echo', 'x', header('x-fault', 'abort')));
    expect(result.error?.code).to.equal(grpc.status.UNAVAILABLE);
    expect(result.error?.details).to.equal('payments is down (injected)');
    expect(done[0]).to.include({ status: 200, grpcStatus: 14, path: '/test.Echo/Echo' });
    expect(done[0]!.flags).to.include('FI');
    const metrics = parseSamples(await (await fetch(`http://${checkout.sidecar.addresses.admin}/metrics`)).text());
    const aborted = Object.entries(metrics).filter(([k]) => k.startsWith('istio_requests_total{') && k.includes('grpc_response_status="14"') && k.includes('response_code="200"') && k.includes('reporter="source"'));
    expect(aborted.map(([, v]) => v).reduce((a, b) => a + b, 0)).to.be.at.least(1);
    expect(Object.keys(metrics).some((k) => k.startsWith('istio_requests_total{') && k.includes('grpc_response_status="0"') && k.includes('request_protocol="grpc"'))).to.equal(true);
  });

  it('retries an UNAVAILABLE attempt (retryOn unavailable): the injected abort is masked', async () => {
    const before = payments.calls.Echo ?? 0;
    const { result, done } = await outbound(() => unary(stub, 'Echo', 'again', header('x-fault', 'abort-attempt')));
    expect(result.reply).to.equal('echo:again');
    expect(done[0]).to.include({ grpcStatus: 0, attempts: 2 });
    expect(done[0]!.faults).to.deep.equal(['unavailable-once']);
    expect((payments.calls.Echo ?? 0) - before).to.equal(1);
  });

  it('retries the server\'s own trailers-only UNAVAILABLE on the next try', async () => {
    const { result, done } = await outbound(() => unary(stub, 'FailOddCalls', ''));
    expect(result.reply).to.equal('even call');
    expect(payments.calls.FailOddCalls).to.equal(2);
    expect(done[0]).to.include({ grpcStatus: 0, attempts: 2 });
  });

  it('does not retry a status that came in real trailers, after a message: the response was committed', async () => {
    const { result, done } = await outbound(() => new Promise<{ messages: string[]; code: number }>((resolve) => {
      const messages: string[] = [];
      const call = stub.FailAfterOne(Buffer.from('')) as grpc.ClientReadableStream<Buffer>;
      call.on('data', (m: Buffer) => messages.push(m.toString()));
      call.on('error', () => {});
      call.on('status', (s: grpc.StatusObject) => resolve({ messages, code: s.code }));
    }));
    expect(result).to.deep.equal({ messages: ['first'], code: grpc.status.UNAVAILABLE });
    expect(payments.calls.FailAfterOne).to.equal(1);
    expect(done[0]).to.include({ status: 200, grpcStatus: 14, attempts: 1 });
  });

  it('honours the caller\'s deadline: 200 ms to a server that never answers ends DEADLINE_EXCEEDED, and the server was given less', async () => {
    const before = payments.deadlinesLeft.length;
    const { result } = await outbound(() => unary(stub, 'Slow', '', new grpc.Metadata(), { deadline: Date.now() + 200 }));
    expect(result.error?.code).to.equal(grpc.status.DEADLINE_EXCEEDED);
    await waitFor(() => payments.deadlinesLeft.length > before, 5_000, 'the server saw the call');
    const left = payments.deadlinesLeft.at(-1)!;
    expect(left).to.be.greaterThan(0).and.lessThan(200);
  });

  it('bounds a call by the route timeout when it is the smaller: the sidecar answers DEADLINE_EXCEEDED trailers-only, flag UT', async () => {
    const before = payments.deadlinesLeft.length;
    const { result, done } = await outbound(() => unary(stub, 'Slow', '', header('x-route-timeout', '1'), { deadline: Date.now() + 10_000 }));
    expect(result.error?.code).to.equal(grpc.status.DEADLINE_EXCEEDED);
    expect(result.error?.details).to.include('FL_UPSTREAM_TIMEOUT');
    expect(done[0]).to.include({ route: 'slow', status: 200, grpcStatus: 4 });
    expect(done[0]!.flags).to.include('UT');
    await waitFor(() => payments.deadlinesLeft.length > before, 5_000, 'the server saw the call');
    // The upstream was told the route's 150 ms (what was left of it), not the caller's 10 s.
    expect(payments.deadlinesLeft.at(-1)!).to.be.greaterThan(0).and.at.most(150);
  });

  it('cuts a server stream mid-way (abort closeAfterBytes): the client has part of it and an error', async () => {
    const { result, done } = await outbound(() => new Promise<{ messages: number; code: number }>((resolve) => {
      let messages = 0;
      const call = stub.Count(Buffer.from('50'), header('x-fault', 'cut')) as grpc.ClientReadableStream<Buffer>;
      call.on('data', () => messages++);
      call.on('error', () => {});
      call.on('status', (s: grpc.StatusObject) => resolve({ messages, code: s.code }));
    }));
    // 13 bytes a message (5 of framing, 8 of payload): 100 bytes hold 7 whole messages, of which the
    // client gets those that reached it before the reset (a reset may overtake data still queued).
    expect(result.messages).to.be.at.most(7);
    expect(result.code).to.equal(grpc.status.INTERNAL);
    expect(done[0]).to.include({ grpcStatus: 13 });
    expect(done[0]!.flags).to.include('FI');
  });

  it('cuts a server stream after N messages with a status in its trailers (abort grpcStatus, afterMessages), not retried: committed', async () => {
    const { result, done } = await outbound(() => new Promise<{ messages: string[]; code: number; details: string }>((resolve) => {
      const messages: string[] = [];
      const call = stub.Count(Buffer.from('10'), header('x-fault', 'cut-after-3')) as grpc.ClientReadableStream<Buffer>;
      call.on('data', (m: Buffer) => messages.push(m.toString()));
      call.on('error', () => {});
      call.on('status', (s: grpc.StatusObject) => resolve({ messages, code: s.code, details: s.details }));
    }));
    expect(result).to.deep.equal({ messages: ['00000001', '00000002', '00000003'], code: grpc.status.UNAVAILABLE, details: 'cut after 3' });
    expect(done[0]).to.include({ status: 200, grpcStatus: 14, attempts: 1 });
    expect(done[0]!.faults).to.deep.equal(['cut-after-3']);
    // A stream shorter than that ends as the server ended it.
    const short = await new Promise<{ messages: number; code: number }>((resolve) => {
      let messages = 0;
      const call = stub.Count(Buffer.from('2'), header('x-fault', 'cut-after-3')) as grpc.ClientReadableStream<Buffer>;
      call.on('data', () => messages++);
      call.on('error', () => {});
      call.on('status', (s: grpc.StatusObject) => resolve({ messages, code: s.code }));
    });
    expect(short).to.deep.equal({ messages: 2, code: grpc.status.OK });
  });
});

describe('gRPC through one sidecar (@grpc/grpc-js, the app reached in h2c without a sidecar of its own)', function () {
  this.timeout(20_000);
  let payments: App;
  let checkout: Sidecar;
  let stub: EchoClient;

  before(async () => {
    payments = await startApp('payments');
    const checkoutApp = await freeAddress();
    const config = {
      mesh: { name: 'grpc-one' },
      services: [
        { name: 'checkout', endpoints: [{ address: checkoutApp }] },
        { name: 'payments', protocol: 'grpc', endpoints: [{ address: payments.address }] },
      ],
      routes: [{ name: 'payments', match: { host: 'payments' }, destinations: [{ service: 'payments' }], retries: { attempts: 1, retryOn: ['unavailable'], backoff: { base: '1ms', max: '5ms' } } }],
      faults: [
        { id: 'unavailable-once', match: { destination: 'payments', headers: { 'x-fault': { exact: 'abort-attempt' }, 'x-faultline-attempt': { exact: '1' } } }, at: 'attempt', abort: { grpcStatus: 14 } },
        { id: 'always', match: { destination: 'payments', headers: { 'x-fault': { exact: 'always' } } }, at: 'attempt', abort: { grpcStatus: 14 } },
      ],
      sidecars: [await sidecarEntry('checkout', checkoutApp)],
    };
    checkout = await startSidecar(config, 'checkout');
    const Client = grpc.makeGenericClientConstructor(ECHO, 'Echo');
    stub = new Client(checkout.addresses.outbound!, grpc.credentials.createInsecure(), { 'grpc.default_authority': 'payments' }) as unknown as EchoClient;
  });

  after(async () => {
    stub?.close();
    await checkout?.close();
    payments?.server.forceShutdown();
  });

  async function outbound<T>(task: () => Promise<T>): Promise<{ result: T; done: MeshEvents['request.done'] }> {
    const done: MeshEvents['request.done'][] = [];
    const off = checkout.events.on('request.done', (e) => done.push(e));
    try {
      const result = await task();
      await waitFor(() => done.length > 0, 5_000, 'request.done');
      return { result, done: done[0]! };
    } finally {
      off();
    }
  }

  it('carries a unary call and a bidirectional stream, grpcStatus 0', async () => {
    expect((await outbound(() => unary(stub, 'Echo', 'one'))).result.reply).to.equal('echo:one');
    const { result, done } = await outbound(async () => {
      const chat = stub.Chat() as grpc.ClientDuplexStream<Buffer, Buffer>;
      const replies: string[] = [];
      chat.on('data', (m: Buffer) => replies.push(m.toString()));
      const status = new Promise<number>((resolve) => chat.on('status', (s: grpc.StatusObject) => resolve(s.code)));
      for (const m of ['x', 'y', 'z']) {
        const answered = new Promise((resolve) => chat.once('data', resolve));
        chat.write(Buffer.from(m));
        await answered;
      }
      chat.end();
      return { code: await status, replies };
    });
    expect(result).to.deep.equal({ code: grpc.status.OK, replies: ['re:x', 're:y', 're:z'] });
    expect(done).to.include({ path: '/test.Echo/Chat', status: 200, grpcStatus: 0, protocol: 'http2' });
  });

  it('masks one UNAVAILABLE by a retry; when every try fails, the client gets UNAVAILABLE and the flag URX', async () => {
    const masked = await outbound(() => unary(stub, 'Echo', 'm', header('x-fault', 'abort-attempt')));
    expect(masked.result.reply).to.equal('echo:m');
    expect(masked.done).to.include({ grpcStatus: 0, attempts: 2 });
    const failed = await outbound(() => unary(stub, 'Echo', 'f', header('x-fault', 'always')));
    expect(failed.result.error?.code).to.equal(grpc.status.UNAVAILABLE);
    expect(failed.done).to.include({ status: 200, grpcStatus: 14, attempts: 2 });
    expect(failed.done.flags).to.include('URX');
  });
});
