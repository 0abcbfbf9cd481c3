// A listener's overload guards (sidecars[].listeners): a client that trickles its request head is
// answered 408 and cut at the head deadline, and a connection beyond the cap is closed as it arrives
// while those within it are served.
import { expect } from 'chai';
import { connect, type Socket } from 'node:net';
import type { Sidecar } from '../../src/proxy/sidecar.ts';
import { call } from '../helpers/client.ts';
import { sidecarEntry, startSidecar } from '../helpers/mesh.ts';
import { freeAddress, startUpstream, waitFor, type Upstream } from '../helpers/net.ts';

interface Watched {
  readonly socket: Socket;
  received: string;
  closed: boolean;
}

async function open(address: string): Promise<Watched> {
  const colon = address.lastIndexOf(':');
  const socket = connect(Number(address.slice(colon + 1)), address.slice(0, colon));
  const watched: Watched = { socket, received: '', closed: false };
  socket.on('data', (chunk: Buffer) => (watched.received += chunk.toString()));
  socket.on('error', () => {});
  socket.once('close', () => (watched.closed = true));
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  return watched;
}

describe('listener overload guards', function () {
  this.timeout(20_000);
  let upstream: Upstream;
  const sidecars: Sidecar[] = [];
  const sockets: Socket[] = [];

  async function sidecarWith(listeners: Record<string, unknown>): Promise<Sidecar> {
    const entry = { ...(await sidecarEntry('client', await freeAddress())), listeners };
    const sidecar = await startSidecar({
      mesh: { name: 'overload' },
      services: [{ name: 'client', endpoints: [{ address: entry.app }] }, { name: 'app', endpoints: [{ address: upstream.address }] }],
      sidecars: [entry],
    }, 'client');
    sidecars.push(sidecar);
    return sidecar;
  }

  before(async () => {
    upstream = await startUpstream('app');
  });

  after(async () => {
    for (const socket of sockets) socket.destroy();
    await Promise.all(sidecars.map((s) => s.close()));
    await upstream.close();
  });

  it('cuts a head that trickles in past headersTimeout with a 408, while it is still sending', async () => {
    const sidecar = await sidecarWith({ headersTimeout: '500ms' });
    const slow = await open(sidecar.addresses.outbound!);
    sockets.push(slow.socket);
    slow.socket.write('GET / HTTP/1.1\r\nhost: app\r\n');
    // One header byte every 100 ms: never idle, never done (bounded: 300 bytes, 30 s, far past the test).
    let sent = 0;
    const trickle = setInterval(() => (slow.closed || ++sent > 300 ? clearInterval(trickle) : slow.socket.write('x')), 100);
    try {
      await waitFor(() => slow.closed, 8_000, 'the slow connection to be cut');
    } finally {
      clearInterval(trickle);
    }
    expect(slow.received).to.match(/^HTTP\/1\.1 408 /);
    expect(sent).to.be.below(300);
    // The listener still serves.
    expect((await call(sidecar.addresses.outbound!, 'app')).status).to.equal(200);
  });

  it('closes a connection beyond maxConnections as it arrives and serves those within it', async () => {
    const sidecar = await sidecarWith({ maxConnections: 3 });
    const within = [await open(sidecar.addresses.outbound!), await open(sidecar.addresses.outbound!), await open(sidecar.addresses.outbound!)];
    sockets.push(...within.map((w) => w.socket));
    const beyond = await open(sidecar.addresses.outbound!);
    sockets.push(beyond.socket);
    await waitFor(() => beyond.closed, 5_000, 'the connection beyond the cap to be closed');
    expect(beyond.received).to.equal('');
    expect(within.map((w) => w.closed)).to.deep.equal([false, false, false]);
    // A connection within the cap is served.
    within[0]!.socket.write('GET / HTTP/1.1\r\nhost: app\r\nconnection: close\r\n\r\n');
    await waitFor(() => within[0]!.closed, 5_000, 'the response on a connection within the cap');
    expect(within[0]!.received).to.match(/^HTTP\/1\.1 200 /);
  });
});
