// `node bench/slow-clients.ts`: a sidecar's overload guards under a slowloris. 2,000 connections to
// its outbound listener each send a request head one byte a second, while a steady 50 requests a
// second go through the same listener: the normal requests should still be served, and the slow
// connections cut (408) at the listener's headersTimeout (10 s unless the mesh config says otherwise).
// Bounded: 25 s at most, whatever happens.
import { connect, type Socket } from 'node:net';
import { Pool } from 'undici';
import { percentiles } from './load.ts';
import { Processes, clientMeshFile } from './processes.ts';

const SLOW = Number(process.argv[2] ?? 2_000);
const RATE = 50;
/** The listener's default (sidecars[].listeners.headersTimeout): the mesh file here sets none. */
const HEADERS_TIMEOUT_MS = 10_000;
const RUN_MS = 16_000;
const HARD_STOP_MS = 25_000;

interface SlowConnection {
  readonly socket: Socket;
  readonly openedAt: number;
  closedAt?: number;
  answer: string;
}

function openSlow(address: string, sockets: SlowConnection[]): void {
  const colon = address.lastIndexOf(':');
  const socket = connect(Number(address.slice(colon + 1)), address.slice(0, colon));
  const slow: SlowConnection = { socket, openedAt: performance.now(), answer: '' };
  sockets.push(slow);
  // Queued now, so it goes out before any trickled byte, however long the connect takes.
  socket.write('GET / HTTP/1.1\r\nhost: upstream\r\n');
  socket.on('data', (chunk: Buffer) => (slow.answer ||= chunk.toString().split('\r\n')[0]!));
  socket.on('error', () => {});
  socket.once('close', () => (slow.closedAt = performance.now()));
}

const processes = new Processes();
const started = performance.now();
const hardStop = setTimeout(() => {
  process.stderr.write('hard stop after 25 s\n');
  void processes.stopAll().then(() => process.exit(1));
}, HARD_STOP_MS);
try {
  const upstream = Number(await processes.start('upstream', ['bench/upstream.ts']));
  const sidecar = await processes.startSidecar('client', await clientMeshFile('bench-slow-clients', upstream, { enabled: false }));
  const outbound = sidecar.addresses.outbound;
  const pool = new Pool(`http://${outbound}`, { connections: 8 });
  const normal: { at: number; ms: number; status: number }[] = [];
  const slow: SlowConnection[] = [];

  // The steady load, from the start: the first second is the baseline, before any slow connection.
  const begin = performance.now();
  const ticker = setInterval(() => {
    const at = performance.now();
    pool.request({ path: '/', method: 'GET', headers: { host: 'upstream' } })
      .then(async (res) => {
        await res.body.dump();
        normal.push({ at: at - begin, ms: performance.now() - at, status: res.statusCode });
      })
      .catch(() => normal.push({ at: at - begin, ms: performance.now() - at, status: 0 }));
  }, 1_000 / RATE);
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  for (let i = 0; i < SLOW; i++) openSlow(outbound, slow);
  const trickle = setInterval(() => {
    for (const s of slow) if (s.closedAt === undefined && !s.socket.destroyed) s.socket.write('x');
  }, 1_000);
  await new Promise((resolve) => setTimeout(resolve, RUN_MS - 1_000));
  clearInterval(ticker);
  clearInterval(trickle);

  const lifetimes = slow.filter((s) => s.closedAt !== undefined).map((s) => (s.closedAt! - s.openedAt) / 1_000).sort((a, b) => a - b);
  const answers = new Map<string, number>();
  const outcome = (s: SlowConnection) => s.answer || (s.closedAt === undefined ? 'still open' : 'closed, no answer');
  for (const s of slow) answers.set(outcome(s), (answers.get(outcome(s)) ?? 0) + 1);
  const during = normal.filter((n) => n.at >= 1_000);
  const before = normal.filter((n) => n.at < 1_000);
  const lat = (xs: typeof normal) => percentiles(xs.map((n) => n.ms));
  const ok = (xs: typeof normal) => xs.filter((n) => n.status === 200).length;
  const fmt = (p: { p50: number; p99: number; max: number }) => `p50 ${p.p50.toFixed(1)} ms, p99 ${p.p99.toFixed(1)} ms, max ${p.max.toFixed(1)} ms`;
  console.log(`slow connections: ${SLOW} (a head byte a second), headersTimeout ${HEADERS_TIMEOUT_MS / 1_000} s`);
  console.log(`  answers: ${[...answers].map(([a, n]) => `${n} × ${a}`).join('; ')}`);
  if (lifetimes.length > 0) console.log(`  lifetime of the cut ones: min ${lifetimes[0]!.toFixed(1)} s, median ${lifetimes[Math.floor(lifetimes.length / 2)]!.toFixed(1)} s, max ${lifetimes.at(-1)!.toFixed(1)} s`);
  console.log(`normal requests at ${RATE}/s: before the slow ones ${ok(before)}/${before.length} ok, ${fmt(lat(before))}`);
  console.log(`  with ${SLOW} slow ones open: ${ok(during)}/${during.length} ok, ${fmt(lat(during))}`);
  console.log(`bench took ${((performance.now() - started) / 1_000).toFixed(1)} s`);
  for (const s of slow) s.socket.destroy();
  await pool.close();
} finally {
  clearTimeout(hardStop);
  await processes.stopAll();
}
