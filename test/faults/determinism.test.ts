// Reproducible faults across processes: two separate sidecar processes with the same faults and seed,
// sent the same sequence of requests, fault the same requests with the same delays — and another
// seed faults others.
import { expect } from 'chai';
import type { ChildProcess } from 'node:child_process';
import { request } from 'undici';
import { call } from '../helpers/client.ts';
import { writeMesh } from '../helpers/mesh.ts';
import { freeAddress, startUpstream, type Upstream } from '../helpers/net.ts';
import { startSidecarProcess, stopProcess } from '../helpers/process.ts';

const REQUESTS = 150;

/** Reads a sidecar's /events NDJSON from the start until `count` events of `type` have come. */
async function eventsOf(admin: string, type: string, count: number): Promise<Record<string, unknown>[]> {
  const controller = new AbortController();
  const response = await request(`http://${admin}/events?since=0`, { signal: controller.signal });
  const found: Record<string, unknown>[] = [];
  let buffer = '';
  const deadline = setTimeout(() => controller.abort(new Error(`fewer than ${count} ${type} events`)), 5_000);
  try {
    for await (const chunk of response.body) {
      buffer += String(chunk);
      let newline: number;
      while ((newline = buffer.indexOf('\n')) !== -1) {
        const event = JSON.parse(buffer.slice(0, newline)) as Record<string, unknown>;
        buffer = buffer.slice(newline + 1);
        if (event.type === type) found.push(event);
      }
      if (found.length >= count) break;
    }
  } finally {
    clearTimeout(deadline);
    controller.abort();
  }
  return found;
}

describe('fault determinism across processes', function () {
  this.timeout(60_000);
  let upstream: Upstream;
  const children: ChildProcess[] = [];

  before(async () => {
    upstream = await startUpstream('upstream');
  });

  after(async () => {
    await Promise.all(children.map(stopProcess));
    await upstream.close();
  });

  /** Starts a sidecar process with the faults under `seed` and sends it the fixed request sequence. */
  async function run(seed: number): Promise<{ faulted: string[]; delays: [number, unknown][] }> {
    const config = {
      mesh: { name: 'determinism' },
      faultInjection: { responseHeader: true },
      services: [{ name: 'client', endpoints: [{ address: await freeAddress() }] }, { name: 'upstream', endpoints: [{ address: upstream.address }] }],
      sidecars: [{ service: 'client', outbound: await freeAddress(), inbound: await freeAddress(), admin: await freeAddress(), app: await freeAddress() }],
      faults: [
        { id: 'errors', match: { destination: 'upstream', pathPrefix: '/pay' }, percent: 30, seed, abort: { status: 503 } },
        { id: 'slow', match: { destination: 'upstream' }, percent: 20, seed, delay: { uniform: { min: '1ms', max: '5ms' } } },
      ],
    };
    const { child, addresses } = await startSidecarProcess(await writeMesh(config), 'client');
    children.push(child);
    const faulted: string[] = [];
    for (let i = 0; i < REQUESTS; i++) {
      const reply = await call(addresses.outbound!, 'upstream', i % 3 === 0 ? '/stock' : '/pay');
      faulted.push(String(reply.headers['x-faultline-fault'] ?? '-'));
    }
    const slow = faulted.filter((f) => f.includes('slow')).length;
    const events = await eventsOf(addresses.admin!, 'fault.applied', faulted.filter((f) => f !== '-').join(',').split(',').length);
    const delays = events
      .filter((e) => e.faultId === 'slow')
      .map((e): [number, unknown] => [e.ordinal as number, (e.details as Record<string, unknown>).delayMs]);
    expect(delays).to.have.length(slow);
    return { faulted, delays };
  }

  it('faults the same requests with the same delays in two processes, and others under another seed', async () => {
    const [first, second, other] = await Promise.all([run(42), run(42), run(7)]);
    expect(first.faulted.filter((f) => f !== '-').length).to.be.within(40, 90);
    expect(second.faulted).to.deep.equal(first.faulted);
    expect(second.delays).to.deep.equal(first.delays);
    expect(other.faulted).to.not.deep.equal(first.faulted);
  });
});
