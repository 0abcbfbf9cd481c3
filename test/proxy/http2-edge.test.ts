// The protocol front of a listener (edge.ts) on raw sockets: HTTP/2 decided on the whole 24-byte
// preface however it is split, HTTP/1.1 on the first byte that differs, a connection that stops
// mid-preface closed at the listener's head deadline; and the limits an HTTP/2 server of a sidecar
// advertises and holds to (h2-limits.ts).
import { expect } from 'chai';
import { connect as connectHttp2, constants } from 'node:http2';
import { connect, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { MeshCa } from '../../src/identity/ca.ts';
import type { SidecarIdentity } from '../../src/identity/provider.ts';
import { createEdge, decide } from '../../src/proxy/edge.ts';
import type { ListenerOptions } from '../../src/proxy/listener.ts';
import { HTTP2_LIMITS } from '../../src/proxy/h2-limits.ts';
import type { Sidecar } from '../../src/proxy/sidecar.ts';
import { sidecarEntry, startSidecar } from '../helpers/mesh.ts';
import { freeAddress, startUpstream, type Upstream } from '../helpers/net.ts';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
/** An empty SETTINGS frame: length 0, type 4, no flags, stream 0. */
const EMPTY_SETTINGS = Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]);

function open(address: string): Promise<Socket> {
  const [host, port] = address.split(':');
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port: Number(port), noDelay: true }, () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Writes each piece once the one before has gone to the kernel. */
async function writeInPieces(socket: Socket, pieces: Buffer[]): Promise<void> {
  for (const piece of pieces) await new Promise<void>((resolve, reject) => socket.write(piece, (error) => (error ? reject(error) : resolve())));
}

/** Reads until `enough` says the bytes so far suffice, or the socket closes. */
function readUntil(socket: Socket, enough: (seen: Buffer) => boolean): Promise<Buffer> {
  return new Promise((resolve) => {
    let seen = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      seen = Buffer.concat([seen, chunk]);
      if (enough(seen)) done();
    };
    const done = () => {
      socket.off('data', onData);
      resolve(seen);
    };
    socket.on('data', onData).once('close', done);
  });
}

/** The settings in a SETTINGS frame's payload, by identifier. */
function settingsOf(frame: Buffer): Map<number, number> {
  const length = frame.readUIntBE(0, 3);
  const settings = new Map<number, number>();
  for (let at = 9; at < 9 + length; at += 6) settings.set(frame.readUInt16BE(at), frame.readUInt32BE(at + 2));
  return settings;
}

describe('protocol front: decided on the preface', () => {
  it('decides HTTP/2 only on the whole preface, HTTP/1.1 on the first byte that differs, TLS on 0x16 when it may', () => {
    expect(decide(PREFACE.subarray(0, 1), false)).to.equal(undefined);
    expect(decide(PREFACE.subarray(0, 23), false)).to.equal(undefined);
    expect(decide(PREFACE, false)).to.equal('http2');
    expect(decide(Buffer.concat([PREFACE, EMPTY_SETTINGS]), false)).to.equal('http2');
    expect(decide(Buffer.from('G'), false)).to.equal('http1');
    // PUT shares its first byte with the preface; the second differs.
    expect(decide(Buffer.from('P'), false)).to.equal(undefined);
    expect(decide(Buffer.from('PU'), false)).to.equal('http1');
    expect(decide(Buffer.from('PRI * HTTP/1.1\r\n'), false)).to.equal('http1');
    expect(decide(Buffer.from([0x16, 3, 1]), true)).to.equal('tls');
    expect(decide(Buffer.from([0x16, 3, 1]), false)).to.equal('http1');
  });
});

describe('protocol front on a sidecar\'s outbound listener', function () {
  this.timeout(20_000);
  let upstream: Upstream;
  let sidecar: Sidecar;
  let outbound: string;

  before(async () => {
    upstream = await startUpstream('echo');
    upstream.handler = (req, res) => res.end(`${req.method} ${req.url} ${req.httpVersion}`);
    const clientApp = await freeAddress();
    const entry = { ...(await sidecarEntry('client', clientApp)), listeners: { headersTimeout: '300ms' } };
    sidecar = await startSidecar({
      mesh: { name: 'edge' },
      services: [{ name: 'client', endpoints: [{ address: clientApp }] }, { name: 'echo', endpoints: [{ address: upstream.address }] }],
      sidecars: [entry],
    }, 'client');
    outbound = sidecar.addresses.outbound!;
  });

  after(async () => {
    await sidecar?.close();
    await upstream?.close();
  });

  it('speaks HTTP/2 on a preface that comes a few bytes at a time, advertising its limits', async () => {
    const socket = await open(outbound);
    try {
      const reply = readUntil(socket, (seen) => seen.length >= 9 && seen.length >= 9 + seen.readUIntBE(0, 3));
      await writeInPieces(socket, [PREFACE.subarray(0, 3), PREFACE.subarray(3, 16), PREFACE.subarray(16), EMPTY_SETTINGS]);
      const frame = await reply;
      expect(frame[3], 'frame type').to.equal(4);
      const settings = settingsOf(frame);
      expect(settings.get(3), 'MAX_CONCURRENT_STREAMS').to.equal(HTTP2_LIMITS.maxConcurrentStreams);
      expect(settings.get(6), 'MAX_HEADER_LIST_SIZE').to.equal(HTTP2_LIMITS.maxHeaderListSize);
    } finally {
      socket.destroy();
    }
  });

  it('speaks HTTP/1.1 to a request whose first bytes look like the preface\'s', async () => {
    const socket = await open(outbound);
    try {
      const reply = readUntil(socket, (seen) => seen.toString().includes('HTTP/1.1'));
      await writeInPieces(socket, [Buffer.from('P'), Buffer.from('UT /put HTTP/1.1\r\nhost: echo\r\ncontent-length: 0\r\nconnection: close\r\n\r\n')]);
      const text = (await reply).toString();
      await new Promise((resolve) => socket.once('close', resolve));
      expect(text).to.match(/^HTTP\/1\.1 200/);
      expect(text).to.include('PUT /put 1.1');
    } catch (error) {
      socket.destroy();
      throw error;
    }
  });

  it('closes a connection that stops mid-preface at the listener\'s head deadline', async () => {
    const socket = await open(outbound);
    const started = Date.now();
    const closed = new Promise((resolve) => socket.once('close', resolve));
    socket.on('error', () => {});
    socket.write(PREFACE.subarray(0, 10));
    await closed;
    // Its deadline is 300 ms; a closed socket long before it would be another failure.
    expect(Date.now() - started).to.be.at.least(250);
  });

  it('takes a head of up to maxHeaderListPairs fields (above node:http2\'s 128), resets one with more (ENHANCE_YOUR_CALM), and serves the next', async () => {
    const session = connectHttp2(`http://${outbound}`);
    session.on('error', () => {});
    const withFields = (n: number, path: string) => {
      const headers: Record<string, string> = { ':path': path, ':authority': 'echo' };
      // The four pseudo-headers count too.
      for (let i = 0; i < n - 4; i++) headers[`x-h${i}`] = 'v';
      return headers;
    };
    const exchange = (headers: Record<string, string>) => new Promise<{ status: number | undefined; rstCode: number | undefined; body: string }>((resolve) => {
      const stream = session.request(headers);
      stream.on('error', () => {});
      let status: number | undefined;
      let body = '';
      stream.once('response', (h) => (status = Number(h[':status'])));
      stream.setEncoding('utf8').on('data', (c: string) => (body += c));
      stream.once('close', () => resolve({ status, rstCode: stream.rstCode, body }));
    });
    try {
      // Node's own default (128) would refuse this one.
      expect(await exchange(withFields(200, '/two-hundred'))).to.include({ status: 200, body: 'GET /two-hundred 1.1' });
      const over = await exchange(withFields(HTTP2_LIMITS.maxHeaderListPairs + 10, '/over'));
      expect(over).to.include({ status: undefined, rstCode: constants.NGHTTP2_ENHANCE_YOUR_CALM });
      expect(await exchange(withFields(4, '/next'))).to.include({ status: 200, body: 'GET /next 1.1' });
    } finally {
      session.destroy();
    }
  });

  it('refuses an HTTP/2 CONNECT (a tunnel) with 405, as on HTTP/1.1', async () => {
    const session = connectHttp2(`http://${outbound}`);
    session.on('error', () => {});
    try {
      const stream = session.request({ ':method': 'CONNECT', ':authority': 'example.com:443' });
      const status = await new Promise((resolve) => stream.once('response', (h) => resolve(h[':status'])));
      expect(status).to.equal(405);
    } finally {
      session.destroy();
    }
  });

  it('serves HTTP/2 and HTTP/1.1 connections at once on the one port', async () => {
    const session = connectHttp2(`http://${outbound}`);
    session.on('error', () => {});
    try {
      const h2 = new Promise<string>((resolve) => {
        let body = '';
        session.request({ ':path': '/two', ':authority': 'echo' }).setEncoding('utf8').on('data', (c: string) => (body += c)).once('end', () => resolve(body));
      });
      const socket = await open(outbound);
      const h1 = readUntil(socket, (seen) => seen.toString().includes('GET /one'));
      socket.write('GET /one HTTP/1.1\r\nhost: echo\r\n\r\n');
      expect(await h2).to.equal('GET /two 1.1');
      expect((await h1).toString()).to.include('GET /one 1.1');
      socket.destroy();
    } finally {
      session.destroy();
    }
  });
});

describe('protocol front: sockets', () => {
  /** Node's own record of setNoDelay on a socket (net.Socket keeps it under this symbol). */
  const noDelayOf = (socket: Socket) => {
    const symbol = Object.getOwnPropertySymbols(socket).find((s) => s.description === 'kSetNoDelay');
    if (!symbol) throw new Error('this Node keeps no kSetNoDelay on its sockets: the test needs another way to read TCP_NODELAY');
    return (socket as unknown as Record<symbol, unknown>)[symbol];
  };
  const options = { limits: { headersTimeout: 1_000, maxConnections: 16 } } as unknown as ListenerOptions;

  it('turns Nagle off (TCP_NODELAY) on every connection it accepts, plain, permissive and strict', async () => {
    const ca = await MeshCa.create('nodelay.test');
    const server = await ca.issueServer({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] }, 3_600_000);
    const identity = { current: { ...server, caPem: ca.material().certPem }, onRotate: () => () => {} } as unknown as SidecarIdentity;
    for (const mode of ['off', 'permissive', 'strict'] as const) {
      const edge = createEdge(options, mode, identity);
      const accepted = new Promise<Socket>((resolve) => edge.server.once('connection', resolve));
      await new Promise<void>((resolve) => edge.server.listen(0, '127.0.0.1', resolve));
      const client = await open(`127.0.0.1:${(edge.server.address() as AddressInfo).port}`);
      const socket = await accepted;
      try {
        expect(noDelayOf(socket), mode).to.equal(true);
      } finally {
        client.destroy();
        socket.destroy();
        edge.stop();
        await new Promise((resolve) => edge.server.close(resolve));
      }
    }
  });
});
