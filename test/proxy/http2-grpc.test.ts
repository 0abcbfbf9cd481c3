// A smoke test of the transport with real gRPC: a @grpc/grpc-js client and server through a sidecar
// pair (h2c in, HTTP/2 between the sidecars, h2c to the app, protocol: grpc). Unary and the three
// streaming kinds arrive whole, with the app's metadata and trailers; an error status the app sends as
// trailers-only reaches the client as that status. gRPC's own mesh behaviour (method routes,
// grpc-status in metrics, retries on statuses, grpc-timeout, gRPC aborts): grpc.test.ts.
import * as grpc from '@grpc/grpc-js';
import { expect } from 'chai';
import type { Sidecar } from '../../src/proxy/sidecar.ts';
import type { MeshEvents } from '../../src/telemetry/events.ts';
import { sidecarEntry, startSidecar } from '../helpers/mesh.ts';
import { listenInsecure, rawService, streamingHandlers } from '../helpers/grpc.ts';
import { freeAddress } from '../helpers/net.ts';

/** A service without .proto files: messages are raw bytes. */
const ECHO = rawService({ Echo: [false, false], Fail: [false, false], Count: [false, true], Sum: [true, false], Chat: [true, true] });

type EchoClient = grpc.Client & Record<keyof typeof ECHO, (...args: unknown[]) => unknown>;

describe('gRPC (@grpc/grpc-js) through a sidecar pair', function () {
  this.timeout(20_000);
  let server: grpc.Server;
  let client: Sidecar;
  let payments: Sidecar;
  let stub: EchoClient;

  before(async () => {
    server = new grpc.Server();
    server.addService(ECHO, {
      Echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
        const trailer = new grpc.Metadata();
        trailer.set('x-app-trailer', String(call.metadata.get('x-caller')[0] ?? 'none'));
        callback(null, Buffer.concat([Buffer.from('echo:'), call.request]), trailer);
      },
      Fail: (_call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => callback({ code: grpc.status.UNAVAILABLE, details: 'payments is down' }),
      ...streamingHandlers(),
    });
    const app = await listenInsecure(server);
    const clientApp = await freeAddress();
    const config = {
      mesh: { name: 'grpc' },
      services: [{ name: 'client', endpoints: [{ address: clientApp }] }, { name: 'payments', protocol: 'grpc', endpoints: [{ address: app }] }],
      sidecars: [await sidecarEntry('client', clientApp), await sidecarEntry('payments', app)],
    };
    client = await startSidecar(config, 'client');
    payments = await startSidecar(config, 'payments');
    // The channel goes to the sidecar's outbound listener; :authority names the service (research note: option (a)).
    const Client = grpc.makeGenericClientConstructor(ECHO, 'Echo');
    stub = new Client(client.addresses.outbound!, grpc.credentials.createInsecure(), { 'grpc.default_authority': 'payments' }) as unknown as EchoClient;
  });

  after(async () => {
    stub?.close();
    await client?.close();
    await payments?.close();
    server?.forceShutdown();
  });

  it('carries a unary call with its metadata and the app\'s trailers, over HTTP/2 at the app\'s sidecar', async () => {
    const done: MeshEvents['request.done'][] = [];
    const off = payments.events.on('request.done', (e) => done.push(e));
    const metadata = new grpc.Metadata();
    metadata.set('x-caller', 'checkout');
    const { reply, trailers } = await new Promise<{ reply: Buffer; trailers: grpc.Metadata }>((resolve, reject) => {
      let trailers: grpc.Metadata | undefined;
      const call = stub.Echo(Buffer.from('hi'), metadata, (error: grpc.ServiceError | null, reply: Buffer) => (error ? reject(error) : setImmediate(() => resolve({ reply, trailers: trailers! }))));
      (call as grpc.ClientUnaryCall).on('status', (status: grpc.StatusObject) => (trailers = status.metadata));
    });
    off();
    expect(reply.toString()).to.equal('echo:hi');
    expect(trailers.get('x-app-trailer')).to.deep.equal(['checkout']);
    expect(done.map((e) => [e.protocol, e.path, e.source])).to.deep.equal([['http2', '/test.Echo/Echo', 'client']]);
  });

  it('delivers an error status sent as trailers-only as that status', async () => {
    const error = await new Promise<grpc.ServiceError>((resolve) => stub.Fail(Buffer.from('x'), (e: grpc.ServiceError | null) => resolve(e!)));
    expect(error.code).to.equal(grpc.status.UNAVAILABLE);
    expect(error.details).to.equal('payments is down');
  });

  it('carries server, client and bidirectional streams whole', async () => {
    const counted: string[] = [];
    await new Promise<void>((resolve, reject) => {
      const call = stub.Count(Buffer.from('50')) as grpc.ClientReadableStream<Buffer>;
      call.on('data', (m: Buffer) => counted.push(m.toString()));
      call.on('error', reject);
      call.on('end', () => resolve());
    });
    expect(counted).to.deep.equal(Array.from({ length: 50 }, (_, i) => String(i + 1)));

    const sum = await new Promise<string>((resolve, reject) => {
      const call = stub.Sum((error: grpc.ServiceError | null, reply: Buffer) => (error ? reject(error) : resolve(reply.toString()))) as grpc.ClientWritableStream<Buffer>;
      for (let i = 1; i <= 100; i++) call.write(Buffer.from(String(i)));
      call.end();
    });
    expect(sum).to.equal('5050');

    const chat = stub.Chat() as grpc.ClientDuplexStream<Buffer, Buffer>;
    const replies: string[] = [];
    const status = new Promise<number>((resolve) => chat.on('status', (s: grpc.StatusObject) => resolve(s.code)));
    chat.on('data', (m: Buffer) => replies.push(m.toString()));
    // One message, its answer, then the next: the stream is live both ways, not buffered to the end.
    for (const message of ['a', 'b', 'c']) {
      const answered = new Promise((resolve) => chat.once('data', resolve));
      chat.write(Buffer.from(message));
      await answered;
    }
    chat.end();
    expect(await status).to.equal(grpc.status.OK);
    expect(replies).to.deep.equal(['re:a', 're:b', 're:c']);
  });
});
