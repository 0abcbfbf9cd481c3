// HTTP/2 through the sidecars, mTLS off (h2c): curl --http2-prior-knowledge and HTTP/1.1 on one
// outbound port; a node:http2 client through a sidecar pair to an HTTP/2 app and an HTTP/1.1 app, with
// trailers both ways and bodies of several MB streamed with backpressure; an upstream's REFUSED_STREAM
// and GOAWAY (graceful, and with streams above its lastStreamID); a rapid-reset flood that ends with
// the flooding session closed while the sidecar serves others.
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { connect, constants, createServer, type ClientHttp2Session, type Http2Server, type IncomingHttpHeaders, type OutgoingHttpHeaders, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import type { Sidecar } from '../../src/proxy/sidecar.ts';
import type { MeshEvents } from '../../src/telemetry/events.ts';
import { sidecarEntry, startSidecar } from '../helpers/mesh.ts';
import { freeAddress, startUpstream, waitFor, type Upstream } from '../helpers/net.ts';
import { source as streamOf } from '../helpers/streams.ts';

const run = promisify(execFile);
const MiB = 1024 * 1024;
const CHUNK = Buffer.alloc(64 * 1024, 0x62);

const source = (bytes: number, pulled?: (n: number) => void): Readable => streamOf(bytes, CHUNK, pulled);

/** An HTTP/2 app on loopback whose streams a test answers; it counts sessions and streams. */
interface H2App {
  readonly address: string;
  readonly server: Http2Server;
  readonly sessions: ServerHttp2Session[];
  streams: number;
  handler: (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => void;
  close(): Promise<void>;
}

async function startH2App(maxConcurrentStreams?: number): Promise<H2App> {
  const address = await freeAddress();
  const server = createServer(maxConcurrentStreams === undefined ? {} : { settings: { maxConcurrentStreams } });
  const app: H2App = {
    address,
    server,
    sessions: [],
    streams: 0,
    handler: (stream, headers) => {
      stream.respond({ ':status': 200, 'content-type': 'application/json' });
      stream.end(JSON.stringify({ app: 'h2', path: headers[':path'], authority: headers[':authority'] }));
    },
    close: () => new Promise((resolve) => {
      for (const session of app.sessions) session.destroy();
      server.close(() => resolve());
    }),
  };
  server.on('session', (session) => {
    app.sessions.push(session);
    session.on('error', () => {});
  });
  server.on('stream', (stream, headers) => {
    app.streams++;
    stream.on('error', () => {});
    app.handler(stream, headers);
  });
  await new Promise<void>((resolve) => server.listen(Number(address.split(':')[1]), '127.0.0.1', resolve));
  return app;
}

interface H2Reply {
  status: number;
  headers: IncomingHttpHeaders;
  trailers: IncomingHttpHeaders | undefined;
  body: Buffer;
}

/** One request on an HTTP/2 session; `body` is sent with `trailers` after it when given. */
function h2request(session: ClientHttp2Session, headers: OutgoingHttpHeaders, body?: Readable | Buffer, trailers?: OutgoingHttpHeaders): Promise<H2Reply> {
  return new Promise((resolve, reject) => {
    const stream = session.request(headers, { endStream: body === undefined, waitForTrailers: trailers !== undefined });
    if (trailers) stream.once('wantTrailers', () => stream.sendTrailers(trailers));
    if (body instanceof Readable) body.pipe(stream);
    else if (body) stream.end(body);
    let head: IncomingHttpHeaders = {};
    let received: IncomingHttpHeaders | undefined;
    const chunks: Buffer[] = [];
    stream.once('response', (h) => (head = h));
    stream.once('trailers', (t) => (received = t));
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.once('end', () => resolve({ status: Number(head[':status']), headers: head, trailers: received, body: Buffer.concat(chunks) }));
    stream.once('error', reject);
  });
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

describe('HTTP/2 through sidecars (h2c)', function () {
  this.timeout(30_000);
  let echo: Upstream;
  let h2app: H2App;
  let direct: H2App;
  let narrow: H2App;
  let client: Sidecar;
  let echoSidecar: Sidecar;
  let h2Sidecar: Sidecar;
  let session: ClientHttp2Session;
  let outbound: string;

  before(async () => {
    echo = await startUpstream('echo');
    echo.handler = (req, res) => {
      if (req.url === '/trailers') {
        res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-checksum' });
        res.write('body then ');
        res.addTrailers({ 'x-checksum': 'h1-trailer' });
        return void res.end('trailers');
      }
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ app: 'h1', method: req.method, url: req.url, httpVersion: req.httpVersion, headers: req.headers }));
    };
    h2app = await startH2App();
    direct = await startH2App();
    narrow = await startH2App(2);
    const clientApp = await freeAddress();
    const config = {
      mesh: { name: 'h2c' },
      services: [
        { name: 'client', endpoints: [{ address: clientApp }] },
        { name: 'echo', endpoints: [{ address: echo.address }] },
        { name: 'h2app', protocol: 'http2', endpoints: [{ address: h2app.address }] },
        // No sidecar in front: the client's sidecar speaks h2c to it straight.
        { name: 'direct', protocol: 'http2', endpoints: [{ address: direct.address }] },
        { name: 'narrow', protocol: 'http2', endpoints: [{ address: narrow.address }] },
      ],
      routes: [
        { name: 'direct', match: { host: 'direct' }, destinations: [{ service: 'direct' }], retries: { attempts: 2, retryOn: ['refused-stream'], backoff: { base: '1ms', max: '2ms' } } },
      ],
      sidecars: [await sidecarEntry('client', clientApp), await sidecarEntry('echo', echo.address), await sidecarEntry('h2app', h2app.address)],
    };
    client = await startSidecar(config, 'client');
    echoSidecar = await startSidecar(config, 'echo');
    h2Sidecar = await startSidecar(config, 'h2app');
    outbound = client.addresses.outbound!;
    session = connect(`http://${outbound}`);
    session.on('error', () => {});
  });

  after(async () => {
    session?.destroy();
    for (const s of [client, echoSidecar, h2Sidecar]) await s?.close();
    await echo?.close();
    await h2app?.close();
    await direct?.close();
    await narrow?.close();
  });

  it('answers curl --http2-prior-knowledge and HTTP/1.1 on the same outbound port', async () => {
    const format = ['-w', '\n%{http_version}'];
    const h2 = await run('curl', ['--http2-prior-knowledge', '-sS', '-H', 'host: echo', ...format, `http://${outbound}/via-h2`]);
    const [h2body, h2version] = h2.stdout.split('\n');
    expect(h2version).to.equal('2');
    expect(JSON.parse(h2body!)).to.include({ app: 'h1', url: '/via-h2', httpVersion: '1.1' });
    const h1 = await run('curl', ['--http1.1', '-sS', '-H', 'host: echo', ...format, `http://${outbound}/via-h1`]);
    const [h1body, h1version] = h1.stdout.split('\n');
    expect(h1version).to.equal('1.1');
    expect(JSON.parse(h1body!)).to.include({ app: 'h1', url: '/via-h1' });
  });

  it('carries an HTTP/2 caller through a sidecar pair to an HTTP/1.1 app, the hop between the sidecars in HTTP/2', async () => {
    const inbound: MeshEvents['request.done'][] = [];
    const off = echoSidecar.events.on('request.done', (e) => inbound.push(e));
    const reply = await h2request(session, { ':path': '/pair', ':authority': 'echo', 'x-mine': 'kept' });
    off();
    expect(reply.status).to.equal(200);
    const seen = JSON.parse(reply.body.toString()) as { headers: Record<string, string>; httpVersion: string };
    expect(seen.httpVersion).to.equal('1.1');
    expect(seen.headers).to.include({ host: 'echo', 'x-mine': 'kept', 'x-faultline-source': 'client' });
    expect(reply.headers['x-request-id']).to.equal(seen.headers['x-request-id']);
    expect(inbound.map((e) => [e.direction, e.protocol, e.status])).to.deep.equal([['inbound', 'http2', 200]]);
  });

  it('carries an HTTP/1.1 caller to an HTTP/2 app (protocol: http2), HTTP/2 from the outbound sidecar on', async () => {
    const inbound: MeshEvents['request.done'][] = [];
    const off = h2Sidecar.events.on('request.done', (e) => inbound.push(e));
    const { stdout } = await run('curl', ['--http1.1', '-sS', '-H', 'host: h2app', `http://${outbound}/from-h1`]);
    off();
    expect(JSON.parse(stdout)).to.deep.equal({ app: 'h2', path: '/from-h1', authority: 'h2app' });
    expect(inbound.map((e) => e.protocol)).to.deep.equal(['http2']);
  });

  it('keeps trailers both ways: the caller\'s request trailers reach an HTTP/2 app, the app\'s response trailers reach the caller', async () => {
    h2app.handler = (stream, headers) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.once('trailers', (t: IncomingHttpHeaders) => {
        stream.respond({ ':status': 200 }, { waitForTrailers: true });
        stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0', 'x-echoed': String(t['x-request-trailer']) }));
        stream.end(`${headers.te ?? 'no te'}:${Buffer.concat(chunks).toString()}`);
      });
    };
    const reply = await h2request(session, { ':method': 'POST', ':path': '/t', ':authority': 'h2app', te: 'trailers' }, Buffer.from('payload'), { 'x-request-trailer': 'sent' });
    expect(reply.status).to.equal(200);
    expect(reply.body.toString()).to.equal('trailers:payload');
    expect(reply.trailers).to.include({ 'grpc-status': '0', 'x-echoed': 'sent' });
    // An HTTP/1.1 app's chunked trailers reach an HTTP/2 caller too.
    const h1 = await h2request(session, { ':path': '/trailers', ':authority': 'echo' });
    expect(h1.body.toString()).to.equal('body then trailers');
    expect(h1.trailers).to.include({ 'x-checksum': 'h1-trailer' });
  });

  it('keeps a head that ends the stream (gRPC\'s trailers-only error) one HEADERS frame through the pair', async () => {
    h2app.handler = (stream) => stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '14', 'grpc-message': 'payments%20down' }, { endStream: true });
    const result = await new Promise<{ head: IncomingHttpHeaders; flags: number; trailers: boolean }>((resolve, reject) => {
      const stream = session.request({ ':method': 'POST', ':path': '/pkg.Payments/Charge', ':authority': 'h2app', 'content-type': 'application/grpc', te: 'trailers' }, { endStream: true });
      let trailers = false;
      let response: { head: IncomingHttpHeaders; flags: number } | undefined;
      stream.once('response', (head, flags) => (response = { head, flags }));
      stream.once('trailers', () => (trailers = true));
      stream.resume();
      stream.once('error', reject);
      stream.once('close', () => (response ? resolve({ ...response, trailers }) : reject(new Error(`closed with ${stream.rstCode} and no response`))));
    });
    expect(result.head).to.include({ 'grpc-status': '14', 'grpc-message': 'payments%20down' });
    expect(result.flags & constants.NGHTTP2_FLAG_END_STREAM, 'END_STREAM on the head').to.not.equal(0);
    expect(result.trailers).to.equal(false);
  });

  it('streams several MB both ways through the pair, byte for byte', async () => {
    h2app.handler = (stream) => {
      stream.respond({ ':status': 200 });
      stream.pipe(stream);
    };
    const size = 12 * MiB + 12_345;
    const sent = createHash('sha256');
    const upload = source(size).on('data', (c: Buffer) => sent.update(c));
    const reply = await h2request(session, { ':method': 'POST', ':path': '/echo', ':authority': 'h2app' }, upload);
    expect(reply.status).to.equal(200);
    expect(reply.body.length).to.equal(size);
    expect(sha256(reply.body)).to.equal(sent.digest('hex'));
  });

  it('holds the app back while the caller does not read (flow control on every hop), then delivers every byte', async () => {
    const size = 32 * MiB;
    let pulled = 0;
    h2app.handler = (stream) => {
      stream.respond({ ':status': 200 });
      source(size, (n) => (pulled += n)).pipe(stream);
    };
    const stream = session.request({ ':path': '/big', ':authority': 'h2app' });
    stream.pause();
    await new Promise((resolve) => stream.once('response', resolve));
    // Wait until the app stops being able to send: what it pulled no longer grows.
    let last = -1;
    await waitFor(async () => {
      await new Promise((resolve) => setTimeout(resolve, 200));
      const steady = pulled === last && pulled > 0;
      last = pulled;
      return steady;
    }, 15_000, 'the app held back');
    const held = pulled;
    let received = 0;
    stream.on('data', (c: Buffer) => (received += c.length));
    stream.resume();
    await new Promise((resolve) => stream.once('end', resolve));
    expect(received).to.equal(size);
    // Measured: 1.6 MiB (stream windows of 64 KiB to 1 MiB on three hops, a few socket and stream
    // buffers); a body that did not wait for the caller would be all 32 MiB.
    expect(held, `held ${(held / MiB).toFixed(1)} MiB`).to.be.below(8 * MiB);
  });

  it('multiplexes calls on one session per endpoint, and opens another only past the peer\'s SETTINGS_MAX_CONCURRENT_STREAMS', async () => {
    const held: ServerHttp2Stream[] = [];
    narrow.handler = (stream) => held.push(stream);
    // One call first, so that the sidecar has the app's SETTINGS (2 streams at most) before the rest.
    const calls = [h2request(session, { ':path': '/0', ':authority': 'narrow' })];
    await waitFor(() => held.length === 1, 5_000, 'the first call at the app');
    for (let i = 1; i < 5; i++) calls.push(h2request(session, { ':path': `/${i}`, ':authority': 'narrow' }));
    await waitFor(() => held.length === 5, 5_000, 'five calls at the app at once');
    // 2 + 2 + 1 streams; never more than 2 on a session.
    expect(narrow.sessions.length).to.equal(3);
    const perSession = narrow.sessions.map((s) => held.filter((h) => h.session === s).length);
    expect(perSession.sort()).to.deep.equal([1, 2, 2]);
    for (const stream of held) {
      stream.respond({ ':status': 200 });
      stream.end();
    }
    expect((await Promise.all(calls)).map((r) => r.status)).to.deep.equal([200, 200, 200, 200, 200]);
  });

  it('cancels the upstream stream when the caller resets its own', async () => {
    let upstream: ServerHttp2Stream | undefined;
    h2app.handler = (stream) => {
      upstream = stream;
      stream.respond({ ':status': 200 });
      stream.write('first bytes');
    };
    const stream = session.request({ ':path': '/cancel-me', ':authority': 'h2app' });
    stream.on('error', () => {});
    await new Promise((resolve) => stream.once('data', resolve));
    stream.close(constants.NGHTTP2_CANCEL);
    await waitFor(() => upstream?.closed, 5_000, 'the app\'s stream closed');
    expect(upstream!.rstCode).to.equal(constants.NGHTTP2_CANCEL);
  });

  it('retries a stream the upstream refused (REFUSED_STREAM) as refused-stream', async () => {
    let refused = 0;
    direct.handler = (stream, headers) => {
      if (refused === 0) {
        refused++;
        return void stream.close(constants.NGHTTP2_REFUSED_STREAM);
      }
      stream.respond({ ':status': 200 });
      stream.end(`ok ${headers[':path']}`);
    };
    const retries: MeshEvents['retry.attempt'][] = [];
    const off = client.events.on('retry.attempt', (e) => retries.push(e));
    // POST: not idempotent, yet the request never reached the app. The route leaves retries to
    // idempotent methods, so a GET here.
    const reply = await h2request(session, { ':path': '/refused', ':authority': 'direct' });
    off();
    expect(reply.status).to.equal(200);
    expect(reply.body.toString()).to.equal('ok /refused');
    expect(reply.headers['x-faultline-attempts']).to.equal('2');
    expect(retries.map((r) => r.reason)).to.deep.equal(['refused-stream']);
  });

  it('on an upstream GOAWAY lets the streams in flight finish, retries those above its lastStreamID, opens a new session for new ones', async () => {
    const held: ServerHttp2Stream[] = [];
    direct.handler = (stream, headers) => {
      if (headers[':path'] === '/hold') return void held.push(stream);
      stream.respond({ ':status': 200 });
      stream.end(`answered on session ${direct.sessions.indexOf(stream.session as ServerHttp2Session)}`);
    };
    const before = direct.sessions.length;
    const retries: MeshEvents['retry.attempt'][] = [];
    const off = client.events.on('retry.attempt', (e) => retries.push(e));
    const first = h2request(session, { ':path': '/hold', ':authority': 'direct' });
    const second = h2request(session, { ':path': '/hold', ':authority': 'direct' });
    await waitFor(() => held.length === 2, 5_000, 'two streams held');
    const old = held[0]!.session as ServerHttp2Session;
    // GOAWAY saying only the first stream was processed: the second must be sent again, elsewhere.
    old.goaway(constants.NGHTTP2_NO_ERROR, held[0]!.id!);
    await waitFor(() => held.length === 3, 5_000, 'the second stream sent again');
    expect(held[2]!.session).to.not.equal(old);
    // A new request goes to the new session, not the one going away.
    const fresh = await h2request(session, { ':path': '/new', ':authority': 'direct' });
    expect(fresh.body.toString()).to.equal(`answered on session ${direct.sessions.indexOf(held[2]!.session as ServerHttp2Session)}`);
    for (const stream of [held[0]!, held[2]!]) {
      stream.respond({ ':status': 200 });
      stream.end(`held ${stream.id}`);
    }
    const replies = await Promise.all([first, second]);
    off();
    expect(replies.map((r) => r.status)).to.deep.equal([200, 200]);
    expect(replies[0]!.body.toString()).to.equal(`held ${held[0]!.id}`);
    expect(retries.map((r) => r.reason)).to.deep.equal(['refused-stream']);
    expect(direct.sessions.length).to.equal(before + 1);
  });

  it('on an upstream GOAWAY with an error code fails the streams it had taken (UC), retries those above its lastStreamID', async () => {
    const held: ServerHttp2Stream[] = [];
    direct.handler = (stream, headers) => {
      if (headers[':path'] === '/hold') return void held.push(stream);
      stream.respond({ ':status': 200 });
      stream.end('fresh');
    };
    const retries: MeshEvents['retry.attempt'][] = [];
    const off = client.events.on('retry.attempt', (e) => retries.push(e));
    const first = h2request(session, { ':path': '/hold', ':authority': 'direct' });
    const second = h2request(session, { ':path': '/hold', ':authority': 'direct' });
    await waitFor(() => held.length === 2, 5_000, 'two streams held');
    const old = held[0]!.session as ServerHttp2Session;
    old.goaway(constants.NGHTTP2_INTERNAL_ERROR, held[0]!.id!);
    await waitFor(() => held.length === 3, 5_000, 'the second stream sent again');
    expect(held[2]!.session).to.not.equal(old);
    held[2]!.respond({ ':status': 200 });
    held[2]!.end('second, again');
    const [a, b] = await Promise.all([first, second]);
    off();
    // The first was taken by the app, then cut: a reset the route does not retry (retryOn: refused-stream).
    expect(a.status).to.equal(503);
    expect(a.headers['x-faultline-flags']).to.equal('UC');
    expect(b.body.toString()).to.equal('second, again');
    expect(retries.map((r) => r.reason)).to.deep.equal(['refused-stream']);
  });

  it('ends a rapid-reset flood (HEADERS then RST_STREAM, over and over) with the session closed, and serves others', async () => {
    const flooder = connect(`http://${outbound}`);
    flooder.on('error', () => {});
    let goaway: number | undefined;
    flooder.on('goaway', (code: number) => (goaway = code));
    let closed = false;
    flooder.once('close', () => (closed = true));
    await new Promise((resolve) => flooder.once('connect', resolve));
    let sent = 0;
    for (; sent < 5_000 && !flooder.closed && !flooder.destroyed; sent++) {
      try {
        const stream = flooder.request({ ':path': '/flood', ':authority': 'echo' });
        stream.on('error', () => {});
        stream.close(constants.NGHTTP2_CANCEL);
      } catch {
        break;
      }
      // Let the frames out and the server's answer in, every so often.
      if (sent % 100 === 99) await new Promise((resolve) => setImmediate(resolve));
    }
    await waitFor(() => closed, 10_000, 'the flooding session closed');
    // nghttp2 ends it with GOAWAY INTERNAL_ERROR once the resets pass streamResetBurst (h2-limits.ts).
    expect(goaway, 'GOAWAY code').to.be.oneOf([constants.NGHTTP2_ENHANCE_YOUR_CALM, constants.NGHTTP2_INTERNAL_ERROR]);
    expect(sent).to.be.below(5_000);
    const reply = await h2request(session, { ':path': '/after-flood', ':authority': 'echo' });
    expect(reply.status).to.equal(200);
  });
});
