// HTTP/2 between sidecars over the mesh's mTLS: a node:http2 client's calls cross the pair in HTTP/2
// chosen by ALPN (the inbound sidecar sees an HTTP/2 caller whose certificate says who it is), to an
// HTTP/2 app and to an HTTP/1.1 app, trailers kept; HTTP/1.1 callers keep working over the same
// inbound port (ALPN http/1.1); the HTTP/2 pool checks the server's SPIFFE ID as the HTTP/1.1 one does.
// Permissive mode takes h2c and h2 over mTLS on one port.
import { expect } from 'chai';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { connect, createServer, type ClientHttp2Session, type Http2Server, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { startControlledSidecar, type ControlledSidecar } from '../../src/control/agent.ts';
import { startControlPlane, type RunningControlPlane } from '../../src/control/server.ts';
import type { MeshEvents } from '../../src/telemetry/events.ts';
import { send } from '../helpers/client.ts';
import { sidecarEntry } from '../helpers/mesh.ts';
import { freeAddress, startUpstream, waitFor, type Upstream } from '../helpers/net.ts';

const TOKEN = 'h2-mtls-test-token';

interface H2Reply {
  status: number;
  headers: IncomingHttpHeaders;
  trailers: IncomingHttpHeaders | undefined;
  body: string;
}

function h2request(session: ClientHttp2Session, headers: OutgoingHttpHeaders): Promise<H2Reply> {
  return new Promise((resolve, reject) => {
    const stream = session.request(headers);
    let head: IncomingHttpHeaders = {};
    let trailers: IncomingHttpHeaders | undefined;
    let body = '';
    stream.once('response', (h) => (head = h));
    stream.once('trailers', (t) => (trailers = t));
    stream.setEncoding('utf8');
    stream.on('data', (c: string) => (body += c));
    stream.once('end', () => resolve({ status: Number(head[':status']), headers: head, trailers, body }));
    stream.once('error', reject);
  });
}

async function startH2App(): Promise<{ address: string; server: Http2Server }> {
  const address = await freeAddress();
  const server = createServer();
  server.on('session', (session) => session.on('error', () => {}));
  server.on('stream', (stream, headers) => {
    stream.respond({ ':status': 200, 'content-type': 'application/json' }, { waitForTrailers: true });
    stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    stream.end(JSON.stringify({ app: 'h2', path: headers[':path'], source: headers['x-faultline-source'] }));
  });
  await new Promise<void>((resolve) => server.listen(Number(address.split(':')[1]), '127.0.0.1', resolve));
  return { address, server };
}

async function mesh(mode: 'strict' | 'permissive', h2app: string, h1app: Upstream) {
  const dir = await mkdtemp(join(tmpdir(), 'faultline-h2-mtls-'));
  const checkoutApp = await freeAddress();
  const config = {
    mesh: { name: 'h2-mtls' },
    mtls: { mode, trustDomain: 'shop.test' },
    services: [
      { name: 'checkout', endpoints: [{ address: checkoutApp }] },
      { name: 'payments', protocol: 'http2', endpoints: [{ address: h2app }] },
      { name: 'ledger', endpoints: [{ address: h1app.address }] },
      // stock's one endpoint is payments' app: reached through payments' sidecar, which is not stock.
      { name: 'stock', protocol: 'http2', endpoints: [{ address: h2app }] },
    ],
    sidecars: [await sidecarEntry('checkout', checkoutApp), await sidecarEntry('payments', h2app), await sidecarEntry('ledger', h1app.address)],
  };
  await writeFile(join(dir, 'mesh.yaml'), stringify(config));
  const control = await startControlPlane({ listen: '127.0.0.1:0', token: TOKEN, stateDir: join(dir, 'control'), configFile: join(dir, 'mesh.yaml') });
  const start = (name: string) => startControlledSidecar({ url: control.url, token: TOKEN, name, stateDir: join(dir, name), waitMs: 2_000 });
  return { control, checkout: await start('checkout'), payments: await start('payments'), ledger: await start('ledger') };
}

for (const mode of ['strict', 'permissive'] as const) {
  describe(`HTTP/2 between sidecars over mTLS (${mode})`, function () {
    this.timeout(30_000);
    let h2app: Awaited<ReturnType<typeof startH2App>>;
    let h1app: Upstream;
    let m: { control: RunningControlPlane; checkout: ControlledSidecar; payments: ControlledSidecar; ledger: ControlledSidecar };
    let session: ClientHttp2Session;

    before(async () => {
      h2app = await startH2App();
      h1app = await startUpstream('ledger');
      h1app.handler = (req, res) => res.end(JSON.stringify({ app: 'h1', httpVersion: req.httpVersion, source: req.headers['x-faultline-source'] }));
      m = await mesh(mode, h2app.address, h1app);
      session = connect(`http://${m.checkout.sidecar.addresses.outbound!}`);
      session.on('error', () => {});
    });

    after(async () => {
      session?.destroy();
      for (const s of [m?.checkout, m?.payments, m?.ledger]) await s?.close();
      await m?.control.close();
      await h1app?.close();
      await new Promise((resolve) => h2app?.server.close(resolve));
    });

    /** The request.done events of a sidecar's inbound side while `task` runs. */
    async function inboundDone(sidecar: ControlledSidecar, task: () => Promise<unknown>): Promise<MeshEvents['request.done'][]> {
      const done: MeshEvents['request.done'][] = [];
      const off = sidecar.sidecar.events.on('request.done', (e) => e.direction === 'inbound' && done.push(e));
      try {
        await task();
        // request.done is handed out at the end of the turn it was built in.
        await waitFor(() => done.length > 0, 5_000, 'the inbound request.done');
      } finally {
        off();
      }
      return done;
    }

    it('carries an HTTP/2 call to an HTTP/2 app in HTTP/2 chosen by ALPN, the caller named by its certificate, trailers kept', async () => {
      let reply: H2Reply | undefined;
      const done = await inboundDone(m.payments, async () => (reply = await h2request(session, { ':path': '/pay', ':authority': 'payments', 'x-faultline-source': 'impostor' })));
      expect(reply!.status).to.equal(200);
      expect(JSON.parse(reply!.body)).to.deep.equal({ app: 'h2', path: '/pay', source: 'checkout' });
      expect(reply!.trailers).to.include({ 'grpc-status': '0' });
      expect(done.map((e) => [e.protocol, e.source, e.status])).to.deep.equal([['http2', 'checkout', 200]]);
    });

    it('carries an HTTP/2 call to an HTTP/1.1 app: HTTP/2 between the sidecars, HTTP/1.1 to the app', async () => {
      let reply: H2Reply | undefined;
      const done = await inboundDone(m.ledger, async () => (reply = await h2request(session, { ':path': '/entries', ':authority': 'ledger' })));
      expect(JSON.parse(reply!.body)).to.deep.equal({ app: 'h1', httpVersion: '1.1', source: 'checkout' });
      expect(done.map((e) => [e.protocol, e.source])).to.deep.equal([['http2', 'checkout']]);
    });

    it('keeps HTTP/1.1 callers on HTTP/1.1 (ALPN http/1.1) over the same inbound port', async () => {
      let reply: Awaited<ReturnType<typeof send>> | undefined;
      const done = await inboundDone(m.ledger, async () => (reply = await send(m.checkout.sidecar.addresses.outbound!, { path: '/h1', headers: { host: 'ledger' } })));
      expect(reply!.json()).to.deep.equal({ app: 'h1', httpVersion: '1.1', source: 'checkout' });
      expect(done.map((e) => [e.protocol, e.source])).to.deep.equal([['http1', 'checkout']]);
    });

    it('refuses, over HTTP/2 too, a server whose SPIFFE ID is not the destination\'s', async () => {
      const reply = await h2request(session, { ':path': '/', ':authority': 'stock' });
      expect(reply.status).to.equal(503);
      expect(reply.headers['x-faultline-flags']).to.equal('UF');
      expect((JSON.parse(reply.body) as { error: { message: string } }).error.message).to.include('not spiffe://shop.test/ns/default/sa/stock');
    });

    if (mode === 'permissive') {
      it('takes h2c (prior knowledge) on the inbound port too, the caller then named by its header', async () => {
        const plain = connect(`http://${m.payments.sidecar.addresses.inbound!}`);
        plain.on('error', () => {});
        try {
          const reply = await h2request(plain, { ':path': '/plain', ':authority': 'payments', 'x-faultline-source': 'legacy' });
          expect(JSON.parse(reply.body)).to.deep.equal({ app: 'h2', path: '/plain', source: 'legacy' });
        } finally {
          plain.destroy();
        }
      });
    }
  });
}
