// Bodies stream through a sidecar with bounded memory: 1 GB up and 1 GB down through a real
// `faultline sidecar` process, whose RSS is sampled throughout.
import { expect } from 'chai';
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { sidecarEntry, writeMesh } from '../helpers/mesh.ts';
import { freeAddress, readEvents, startUpstream, type Upstream } from '../helpers/net.ts';
import { rssOf, startSidecarProcess, stopProcess } from '../helpers/process.ts';
import { source as streamOf } from '../helpers/streams.ts';

const GIB = Number(process.env.STREAM_BYTES ?? 1024 ** 3);
const CHUNK = Buffer.alloc(256 * 1024, 0x61);
// Measured: ~205 MiB peak whether 128 MiB or 2 GiB pass (young-generation growth under a fast stream), so
// memory is bounded by the stream, not the body; 1 GiB buffered would show as well over 1 GiB.
const RSS_LIMIT = 320 * 1024 * 1024;
/**
 * What the upstream may send while the caller reads nothing: what the kernel buffers on the two
 * connections (each socket's receive and send buffer, which grow up to tcp_rmem's and tcp_wmem's
 * maximum; a kept-alive upstream connection that carried the 1 GB has grown its own), plus the
 * streams' few KiB. Measured: 9.5 MiB on fresh connections, 46 MiB after the 1 GB download. The slow
 * caller's body is at least three times that.
 */
const HELD_LIMIT = 2 * (tcpBufferMax('tcp_rmem') + tcpBufferMax('tcp_wmem')) + 16 * 1024 ** 2;
const SLOW_BYTES = Math.max(256 * 1024 ** 2, 3 * HELD_LIMIT);

function tcpBufferMax(name: string): number {
  try {
    return Number(readFileSync(`/proc/sys/net/ipv4/${name}`, 'utf8').trim().split(/\s+/)[2]);
  } catch {
    return 16 * 1024 ** 2;
  }
}

const source = (bytes: number, pulled?: (n: number) => void): Readable => streamOf(bytes, CHUNK, pulled);

describe('streaming through a sidecar process', function () {
  this.timeout(120_000);
  let upstream: Upstream;
  let sidecar: { child: ChildProcess; addresses: Record<string, string> };
  let peakRss = 0;
  let slowPulled = 0;
  let sampler: NodeJS.Timeout;

  before(async () => {
    upstream = await startUpstream('sink');
    upstream.handler = (req, res) => {
      if (req.method === 'POST') {
        let bytes = 0;
        req.on('data', (c: Buffer) => (bytes += c.length));
        req.on('end', () => res.end(String(bytes)));
      } else if (req.url === '/slow') {
        res.writeHead(200, { 'content-length': SLOW_BYTES });
        source(SLOW_BYTES, (n) => (slowPulled += n)).pipe(res);
      } else {
        res.writeHead(200, { 'content-length': GIB });
        source(GIB).pipe(res);
      }
    };
    const file = await writeMesh({
      mesh: { name: 'stream' },
      services: [{ name: 'client', endpoints: [{ address: await freeAddress() }] }, { name: 'sink', endpoints: [{ address: upstream.address }] }],
      sidecars: [await sidecarEntry('client', await freeAddress())],
    });
    sidecar = await startSidecarProcess(file, 'client');
    sampler = setInterval(() => (peakRss = Math.max(peakRss, rssOf(sidecar.child.pid!))), 25);
  });

  after(async () => {
    clearInterval(sampler);
    await stopProcess(sidecar.child);
    await upstream.close();
  });

  function exchange(method: 'POST' | 'GET'): Promise<{ status: number; received: number; body: string }> {
    const [host, port] = sidecar.addresses.outbound!.split(':');
    return new Promise((resolve, reject) => {
      const req = httpRequest({ host, port: Number(port), method, path: '/', headers: { host: 'sink', ...(method === 'POST' && { 'content-length': GIB }) } }, (res) => {
        let received = 0;
        let body = '';
        res.on('data', (c: Buffer) => {
          received += c.length;
          if (body.length < 32) body += c.toString('latin1', 0, 32);
        });
        res.on('end', () => resolve({ status: res.statusCode!, received, body }));
        res.on('error', reject);
      });
      req.on('error', reject);
      if (method === 'POST') source(GIB).pipe(req);
      else req.end();
    });
  }

  it('uploads 1 GB with bounded memory', async () => {
    const reply = await exchange('POST');
    expect(reply.status).to.equal(200);
    expect(reply.body).to.equal(String(GIB));
    expect(peakRss, `peak RSS ${Math.round(peakRss / 2 ** 20)} MiB`).to.be.below(RSS_LIMIT);
  });

  it('downloads 1 GB with bounded memory', async () => {
    const reply = await exchange('GET');
    expect(reply.status).to.equal(200);
    expect(reply.received).to.equal(GIB);
    expect(peakRss, `peak RSS ${Math.round(peakRss / 2 ** 20)} MiB`).to.be.below(RSS_LIMIT);
  });

  it('holds the upstream back while the caller does not read, and counts every byte it sent', async () => {
    const [host, port] = sidecar.addresses.outbound!.split(':');
    const requestId = `slow-${Date.now()}`;
    // request.done is read as it happens (a sidecar keeps request.done for later readers only once one reads them).
    const reading = readEvents(sidecar.addresses.admin!, '/events', (read) => read.some((e) => e.requestId === requestId && e.type === 'request.done'));
    const response = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = httpRequest({ host, port: Number(port), path: '/slow', headers: { host: 'sink', 'x-request-id': requestId } }, resolve);
      req.on('error', reject).end();
    });
    response.pause();
    // The upstream is read only as fast as the caller reads: its progress stops while the caller is paused.
    let last = -1;
    for (const deadline = Date.now() + 20_000; slowPulled === 0 || slowPulled !== last; ) {
      expect(Date.now(), `the upstream kept going: ${slowPulled} bytes`).to.be.below(deadline);
      last = slowPulled;
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
    expect(slowPulled, 'bytes the upstream sent while the caller read nothing').to.be.below(HELD_LIMIT);
    let received = 0;
    response.on('data', (c: Buffer) => (received += c.length));
    await new Promise((resolve) => response.on('end', resolve).resume());
    expect(received).to.equal(SLOW_BYTES);
    // request.done counts what the caller was sent.
    const lines = await reading;
    const done = lines.find((e) => e.requestId === requestId && e.type === 'request.done')!;
    expect(done.responseBytes).to.equal(SLOW_BYTES);
  });
});
