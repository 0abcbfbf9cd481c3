// A game day for latency ejection: three instances of a service, a delay fault on one of them (one
// line: `endpoints: {count: 1}`), latency-based outlier detection at the caller. The slow instance is
// ejected with its reason and numbers, the fault acts on no call after that, and the caller's p99 in
// the report's buckets after the ejection is below the injected delay again — asserted from the
// recording and the report alone.
import { expect } from 'chai';
import { createServer, type Server } from 'node:http';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { stringify } from 'yaml';
import { up, type Mesh } from '../../src/control/up.ts';
import { MeshClient } from '../../src/experiments/mesh-client.ts';
import { runExperiment } from '../../src/experiments/runner.ts';
import { writeReportsLine } from '../../src/reports/write.ts';
import { freeAddress, waitFor } from '../helpers/net.ts';

const quiet = { write: () => true, isTTY: false } as unknown as NodeJS.WriteStream;
const DELAY_MS = 1_000;

async function lines(file: string): Promise<Record<string, unknown>[]> {
  return (await readFile(file, 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
}

function listen(address: string, handler: Parameters<typeof createServer>[1]): Promise<Server> {
  const server = createServer(handler);
  return new Promise((resolve) => server.listen(Number(address.slice(address.lastIndexOf(':') + 1)), '127.0.0.1', () => resolve(server)));
}

describe('game day: one slow instance of three, ejected by latency', function () {
  this.timeout(60_000);
  const servers: Server[] = [];
  // No cap on connections: a cap would queue calls behind those held by the slow instance.
  const agent = new Agent();
  let mesh: Mesh | undefined;
  after(async () => {
    await mesh?.close();
    await agent.close();
    for (const server of servers) server.closeAllConnections();
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  });

  it('ejects the slow instance with its numbers, and the caller\'s p99 recovers while the fault is still in force', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'faultline-ejection-'));
    const [front, frontOutbound] = [await freeAddress(), await freeAddress()];
    const backs = [await freeAddress(), await freeAddress(), await freeAddress()];
    // The back instances answer at once; the front app calls back through its sidecar, as a meshed app does.
    for (const address of backs) servers.push(await listen(address, (_req, res) => res.end(address)));
    servers.push(await listen(front, (req, res) => {
      request(`http://${frontOutbound}/`, { headers: { host: 'back', 'x-request-id': String(req.headers['x-request-id'] ?? '') }, dispatcher: agent })
        .then(async (r) => res.writeHead(r.statusCode).end(await r.body.text()), () => res.writeHead(502).end());
    }));
    await writeFile(join(dir, 'mesh.yaml'), stringify({
      mesh: { name: 'ejection' },
      services: [
        { name: 'front', endpoints: [{ address: front }] },
        {
          name: 'back',
          loadBalancer: 'round-robin',
          endpoints: backs.map((address) => ({ address })),
          outlierDetection: {
            interval: '1s',
            baseEjectionTime: '30s',
            maxEjectionPercent: 34,
            latency: { percentile: 90, factor: 3, minimum: '50ms', requestVolume: 10, minimumHosts: 3 },
          },
        },
      ],
      sidecars: [{ service: 'front', app: front, outbound: frontOutbound, inbound: await freeAddress(), admin: await freeAddress() }],
    }));
    mesh = await up({ file: join(dir, 'mesh.yaml'), listen: '127.0.0.1:0', stateDir: join(dir, 'state') });
    await writeFile(join(dir, 'token'), mesh.token);
    // As the control plane sees it (the preflight asks it): the sidecar's first acknowledgement can lag its start.
    const client = new MeshClient(mesh.control.url, mesh.token);
    await waitFor(async () => {
      const { version, sidecars } = await client.sidecars();
      return sidecars.length === 1 && sidecars.every((s) => s.connected && s.health === 'ready' && s.version === version);
    }, 10_000, 'the sidecar to be ready as the control plane sees it');
    const file = join(dir, 'slow-one.yaml');
    await writeFile(file, stringify({
      name: 'slow-one',
      target: { control: mesh.control.url, tokenFile: join(dir, 'token') },
      load: { entry: 'front', rate: 60 },
      phases: { warmup: '500ms', baseline: '1s', recovery: '1s' },
      steadyState: [{ availability: { service: 'front', min: 99 } }],
      method: [{ at: '0s', duration: '8s', fault: { id: 'slow-one', seed: 4, at: 'attempt', match: { destination: 'back', endpoints: { count: 1 } }, delay: { fixed: `${DELAY_MS}ms` } } }],
      expect: [{ outlierEjects: { service: 'back', within: '5s' } }],
    }));
    const result = await runExperiment({ file, out: join(dir, 'reports'), seed: 4, stream: quiet, report: writeReportsLine });
    expect(result.outcome, `${result.journal.reason} ${JSON.stringify(result.journal.verdicts)}`).to.equal('passed');

    const events = await lines(join(result.dir, 'events.ndjson'));
    const applied = events.filter((e) => e.type === 'fault.applied' && e.faultId === 'slow-one');
    const slow = String(applied[0]?.endpoint);
    expect(backs).to.include(slow);
    expect(new Set(applied.map((e) => e.endpoint)), 'one instance, every time').to.deep.equal(new Set([slow]));
    const ejections = events.filter((e) => e.type === 'outlier.ejected');
    expect(ejections, 'one ejection: the slow instance').to.have.length(1);
    const ejected = ejections[0]!;
    expect(ejected).to.deep.include({ service: 'back', endpoint: slow, detector: 'latency', sidecar: 'front' });
    const figures = ejected.figures as Record<string, number>;
    expect(figures.latencyMs).to.be.at.least(DELAY_MS);
    expect(figures.latencyMs).to.be.above(3 * figures.siblingsMedianMs!);
    expect(String(ejected.reason)).to.match(/^p90 \d+(\.\d)? ms over \d+ tries > 3 × the siblings' median p90 [\d.]+ ms \(and > minimum 50 ms\)$/);
    // Ejected, the instance is picked no more: the fault, still in force, acts on no later call.
    const order = (e: Record<string, unknown>) => Number(e.sourceSeq ?? e.seq);
    expect(applied.filter((e) => order(e) > order(ejected))).to.deep.equal([]);
    const faultEnd = Date.parse(result.journal.faults[0]!.removedAt!);
    expect(ejected.time as number, 'ejected while the fault was in force').to.be.below(faultEnd - 3_000);

    const report = JSON.parse(await readFile(join(result.dir, 'report.json'), 'utf8'));
    expect(report.faults[0].instances).to.deep.equal([{ endpoint: slow, count: applied.length }]);
    expect(report.policies.ejections).to.have.length(1);
    expect(report.policies.ejections[0]).to.include({ service: 'back', endpoint: slow, sidecar: 'front', detector: 'latency', reason: ejected.reason });
    // The caller's p99, per bucket of the fault's window (buckets hold responses by when they came): at
    // the delay or above while the calls sent to the slow instance before the ejection come back (a third
    // of the calls), below it in every bucket that begins once they all have (the delay, and half a
    // second's margin for a busy machine): a call that does not go to the slow instance has nothing that
    // takes a second.
    const method = report.windows.find((w: { kind: string }) => w.kind === 'fault');
    const buckets = (report.timeseries as { service: string; t: number; to: number; p99: number; requests: number }[]).filter((b) => b.service === 'front' && b.t >= method.from && b.to <= method.to);
    const before = buckets.filter((b) => b.t < (ejected.time as number) + DELAY_MS);
    const afterwards = buckets.filter((b) => b.t >= (ejected.time as number) + DELAY_MS + 500);
    expect(before.length, JSON.stringify(buckets)).to.be.at.least(1);
    expect(Math.max(...before.map((b) => b.p99))).to.be.at.least(DELAY_MS);
    expect(afterwards.length, JSON.stringify(buckets)).to.be.at.least(1);
    for (const b of afterwards) expect(b.p99, JSON.stringify(b)).to.be.below(DELAY_MS);
    const markdown = await readFile(join(result.dir, 'report.md'), 'utf8');
    expect(markdown).to.include(`${slow} ×${applied.length}`);
    expect(markdown).to.match(/## Outlier ejections[\s\S]*\| back \| [\d.:]+ \| front \| latency \| p90 /);
  });
});
